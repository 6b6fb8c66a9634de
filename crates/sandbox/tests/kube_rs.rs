//! The API stand-in driven by kube-rs: CRUD, selectors, patches, status,
//! generation, watches (resume, 410, bookmarks), garbage collection,
//! finalizers, CRD admission, and a kube-runtime Controller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
use sandbox::apiserver::{ApiServer, Config};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

async fn start() -> (ApiServer, Client) {
    let server = ApiServer::start(Config {
        bookmark_interval: Duration::from_millis(300),
        ..Config::default()
    })
    .await
    .unwrap();
    let client = client_for(&server, "tester").await;
    (server, client)
}

async fn client_for(server: &ApiServer, user: &str) -> Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig(user)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn cm(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    c.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    c
}

/// A small custom resource with a status subresource and a CEL rule.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "test.mysql-aa.io",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
#[kube(printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size"))]
pub struct WidgetSpec {
    /// Size.
    #[schemars(range(min = 1, max = 10))]
    size: i32,
}

/// Status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
pub struct WidgetStatus {
    /// Observed size.
    observed: i32,
}

async fn install_widget_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "widgets.test.mysql-aa.io",
        &PatchParams::apply("test"),
        &Patch::Apply(Widget::crd()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn crud_selectors_and_conflicts() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = api
        .create(
            &PostParams::default(),
            &cm("a", &[("app", "x")], &[("k", "1")]),
        )
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    api.create(&PostParams::default(), &cm("b", &[("app", "y")], &[]))
        .await
        .unwrap();
    let err = api
        .create(&PostParams::default(), &cm("a", &[], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err}"
    );
    let got = api.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "1");
    let names = |l: kube::api::ObjectList<ConfigMap>| {
        l.items.iter().map(|c| c.name_any()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app=x"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app in (x,y)"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    // Replace with the current resourceVersion works; a stale one is a conflict.
    let mut fresh = api.get("a").await.unwrap();
    let stale = fresh.clone();
    fresh.data = Some(BTreeMap::from([("k".into(), "2".into())]));
    api.replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    let err = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err}"
    );
    // Delete, then 404.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let err = api.get("a").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );
    // Objects in a namespace that does not exist are refused.
    let other: Api<ConfigMap> = Api::namespaced(client, "nope");
    assert!(
        other
            .create(&PostParams::default(), &cm("c", &[], &[]))
            .await
            .is_err()
    );
    let log = server.requests();
    assert!(
        log.iter()
            .any(|r| r.verb == "create" && r.resource == "configmaps" && r.caller == "tester")
    );
    assert!(log.iter().any(|r| r.verb == "list"));
}

#[tokio::test]
async fn merge_json_strategic_and_apply_patches() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    // Apply creates when missing, then merges.
    let pp = PatchParams::apply("test-manager");
    api.patch("p", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {"a": "1"}})))
        .await
        .unwrap();
    api.patch("p", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {"b": "2"}})))
        .await
        .unwrap();
    let data = api.get("p").await.unwrap().data.unwrap();
    assert_eq!((data["a"].as_str(), data["b"].as_str()), ("1", "2"));
    api.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
    )
    .await
    .unwrap();
    let patch: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/b", "value": "20"}]))
            .unwrap();
    api.patch("p", &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .unwrap();
    api.patch(
        "p",
        &PatchParams::default(),
        &Patch::Strategic(json!({"metadata": {"labels": {"s": "t"}}})),
    )
    .await
    .unwrap();
    let p = api.get("p").await.unwrap();
    let data = p.data.unwrap();
    assert!(!data.contains_key("a"));
    assert_eq!((data["b"].as_str(), data["c"].as_str()), ("20", "3"));
    assert_eq!(p.metadata.labels.unwrap()["s"], "t");
    // A merge patch naming a stale resourceVersion is a conflict.
    let err = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err}"
    );
    // Patching what does not exist is 404 (only apply creates).
    let err = api
        .patch(
            "missing",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let (_server, client) = start().await;
    install_widget_crd(&client).await;
    let api: Api<Widget> = Api::namespaced(client, "default");
    let mut w = Widget::new("w", WidgetSpec { size: 1 });
    w.status = Some(WidgetStatus { observed: 99 });
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.status.is_none(),
        "status is not set through the main resource"
    );
    let st = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observed": 1}, "spec": {"size": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(st.status.unwrap().observed, 1);
    assert_eq!(
        st.spec.size, 1,
        "the status subresource does not change spec"
    );
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status changes do not bump generation"
    );
    let mut labelled = api.get("w").await.unwrap();
    labelled.metadata.labels = Some(BTreeMap::from([("a".into(), "b".into())]));
    let labelled = api
        .replace("w", &PostParams::default(), &labelled)
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );
    let resized = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"observed": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(resized.metadata.generation, Some(2));
    assert_eq!(
        resized.status.unwrap().observed,
        1,
        "status is not changed through the main resource"
    );
    // A no-op update changes nothing, not even the resourceVersion.
    let again = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        resized.metadata.resource_version
    );
}

#[tokio::test]
async fn crd_schema_and_cel_rules_are_enforced() {
    let (_server, client) = start().await;
    let crd_yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crds/mysqlactiveactives.mysql-aa.io.yaml"
    ))
    .unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&crd_yaml).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = crds.get("mysqlactiveactives.mysql-aa.io").await.unwrap();
    let conditions = established.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let gvk = kube::api::GroupVersionKind::gvk("mysql-aa.io", "v1alpha1", "MySQLActiveActive");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "mysqlactiveactives");
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let good: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "mysql-aa.io/v1alpha1", "kind": "MySQLActiveActive",
        "metadata": {"name": "db"}, "spec": {"mysqldConfig": {"max_connections": "100"}}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &good).await.unwrap();
    assert_eq!(
        created.data["spec"]["serverIdBase"], 1000,
        "schema defaults are applied"
    );
    let bad: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "mysql-aa.io/v1alpha1", "kind": "MySQLActiveActive",
        "metadata": {"name": "bad"}, "spec": {"mysqldConfig": {"server-id": "1"}}
    }))
    .unwrap();
    let err = api.create(&PostParams::default(), &bad).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message
                    .contains("mysqldConfig must not set options the operator owns: server-id"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 422, got {other}"),
    }
    // Transition rules see the old object.
    let err = api
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engine": "MariaDB"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("engine is immutable")),
        "{err}"
    );
}

#[tokio::test]
async fn watches_resume_expire_and_bookmark() {
    let (server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = api
        .create(&PostParams::default(), &cm("w1", &[], &[]))
        .await
        .unwrap();
    let rv = first.resource_version().unwrap();
    api.create(&PostParams::default(), &cm("w2", &[], &[]))
        .await
        .unwrap();
    api.delete("w1", &DeleteParams::default()).await.unwrap();
    // Resume after the first create: exactly the two later changes.
    let mut stream = api
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while let Some(ev) = stream.try_next().await.unwrap() {
        match ev {
            WatchEvent::Added(c) => seen.push(format!("ADDED {}", c.name_any())),
            WatchEvent::Deleted(c) => seen.push(format!("DELETED {}", c.name_any())),
            WatchEvent::Modified(c) => seen.push(format!("MODIFIED {}", c.name_any())),
            _ => {}
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, ["ADDED w2", "DELETED w1"]);
    // Bookmarks arrive when asked for.
    let latest = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &latest)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ev, Some(WatchEvent::Bookmark(_))), "{ev:?}");
    // After compaction, an old resourceVersion is 410 Gone.
    server.store().compact();
    let mut stream = api
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_watcher_follows_changes() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut events = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    api.create(&PostParams::default(), &cm("seen", &[], &[("v", "1")]))
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.name_any(), "seen");
    api.patch(
        "seen",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.data.unwrap()["v"], "2");
}

#[tokio::test]
async fn garbage_collection_and_finalizers() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner", &[], &[]))
        .await
        .unwrap();
    let oref = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner.uid().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    for name in ["dep1", "dep2"] {
        let mut d = cm(name, &[], &[]);
        d.metadata.owner_references = Some(vec![oref.clone()]);
        api.create(&PostParams::default(), &d).await.unwrap();
    }
    api.delete("owner", &DeleteParams::default()).await.unwrap();
    assert!(
        api.get_opt("dep1").await.unwrap().is_none(),
        "dependents are collected"
    );
    assert!(api.get_opt("dep2").await.unwrap().is_none());
    // Orphan keeps dependents.
    let owner = api
        .create(&PostParams::default(), &cm("owner2", &[], &[]))
        .await
        .unwrap();
    let mut d = cm("kept", &[], &[]);
    d.metadata.owner_references = Some(vec![OwnerReference {
        uid: owner.uid().unwrap(),
        name: "owner2".into(),
        ..oref.clone()
    }]);
    api.create(&PostParams::default(), &d).await.unwrap();
    api.delete("owner2", &DeleteParams::orphan()).await.unwrap();
    assert!(api.get_opt("kept").await.unwrap().is_some());
    // Finalizers hold deletion until removed.
    let mut f = cm("held", &[], &[]);
    f.metadata.finalizers = Some(vec!["test/hold".into()]);
    api.create(&PostParams::default(), &f).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn a_kube_runtime_controller_reconciles() {
    let (server, client) = start().await;
    install_widget_crd(&client).await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let runs = Arc::new(AtomicUsize::new(0));
    struct Ctx {
        client: Client,
        runs: Arc<AtomicUsize>,
    }
    async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
        ctx.runs.fetch_add(1, Ordering::SeqCst);
        let ns = w.namespace().unwrap();
        let owned = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("{}-cm", w.name_any())),
                owner_references: w.controller_owner_ref(&()).map(|o| vec![o]),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("size".into(), w.spec.size.to_string())])),
            ..Default::default()
        };
        let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
        cms.patch(
            &format!("{}-cm", w.name_any()),
            &PatchParams::apply("widget-controller").force(),
            &Patch::Apply(owned),
        )
        .await?;
        let api: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch_status(
            &w.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observed": w.spec.size}})),
        )
        .await?;
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<Widget>, _: &kube::Error, _: Arc<Ctx>) -> Action {
        Action::requeue(Duration::from_millis(200))
    }
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        runs: runs.clone(),
    });
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(config_maps.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("gizmo", WidgetSpec { size: 3 }),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let w = widgets.get("gizmo").await.unwrap();
        let cm = config_maps.get_opt("gizmo-cm").await.unwrap();
        if w.status.as_ref().map(|s| s.observed) == Some(3) && cm.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "controller did not reconcile"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A spec change reconciles again.
    widgets
        .patch(
            "gizmo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    loop {
        let cm = config_maps.get("gizmo-cm").await.unwrap();
        if cm.data.unwrap()["size"] == "4" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "controller did not follow the change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(runs.load(Ordering::SeqCst) >= 2);
    // Deleting the owner collects the ConfigMap.
    widgets
        .delete("gizmo", &DeleteParams::default())
        .await
        .unwrap();
    assert!(config_maps.get_opt("gizmo-cm").await.unwrap().is_none());
    handle.abort();
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.verb == "watch" && r.resource == "widgets")
    );
}

#[tokio::test]
async fn a_controller_store_becomes_ready() {
    let (server, client) = start().await;
    install_widget_crd(&client).await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let controller = Controller::new(widgets, watcher::Config::default());
    let store = controller.store();
    let handle = tokio::spawn(
        controller
            .run(
                |_w: Arc<Widget>, _c: Arc<()>| async {
                    Ok::<_, kube::Error>(Action::await_change())
                },
                |_, _, _| Action::await_change(),
                Arc::new(()),
            )
            .for_each(|_| async {}),
    );
    // The reader's readiness is re-polled: its wake-up is not always
    // delivered (kube-runtime 5.0), but the state is right after the list.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) =
            tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()).await
        {
            r.unwrap();
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store never became ready"
        );
    }
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.verb == "list" && r.resource == "widgets")
    );
    handle.abort();
}

#[tokio::test]
async fn rbac_is_enforced_for_the_restricted_users() {
    let sa = "system:serviceaccount:ops:robot";
    let server = ApiServer::start(Config {
        rbac_users: vec![sa.into()],
        ..Config::default()
    })
    .await
    .unwrap();
    let admin = client_for(&server, "tester").await;
    let robot = client_for(&server, sa).await;
    for ns in ["app", "other"] {
        let n: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
        Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
        Api::<ConfigMap>::namespaced(admin.clone(), ns)
            .create(&PostParams::default(), &cm("c", &[], &[("k", "v")]))
            .await
            .unwrap();
    }
    let robot_app: Api<ConfigMap> = Api::namespaced(robot.clone(), "app");
    let forbidden = |r: Result<ConfigMap, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403 && s.reason == "Forbidden");
    assert!(
        forbidden(robot_app.get("c").await),
        "nothing is granted yet"
    );
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "read", "namespace": "app"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(admin.clone(), "app")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: k8s_openapi::api::rbac::v1::RoleBinding =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "read", "namespace": "app"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "ops"}]
        }))
        .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), "app")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    assert_eq!(robot_app.get("c").await.unwrap().data.unwrap()["k"], "v");
    assert_eq!(
        robot_app
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(forbidden(
        robot_app
            .patch(
                "c",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"data": {"k": "w"}}))
            )
            .await
    ));
    assert!(forbidden(
        Api::<ConfigMap>::namespaced(robot.clone(), "other")
            .get("c")
            .await
    ));
    assert!(
        Api::<ConfigMap>::all(robot)
            .list(&Default::default())
            .await
            .is_err(),
        "a Role grants nothing cluster-wide"
    );
    // The admin is not restricted.
    assert!(
        Api::<ConfigMap>::namespaced(admin, "other")
            .get("c")
            .await
            .is_ok()
    );
}
