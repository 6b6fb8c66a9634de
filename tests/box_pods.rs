//! The rendered objects applied to the cluster-in-a-box (the real API
//! server, StatefulSet controller, scheduler and hostpath provisioner): two
//! real server processes started by the pods' own commands, Ready in pod
//! status;
//! restarts after `kill -9`; data surviving pod deletion; the reader
//! Service's endpoints following the role label, the writer Service's
//! following the EndpointSlice the operator writes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt};
use mysql_async::prelude::Queryable;
use sandbox::{Cluster, Options};
use serde_json::{Value, json};

const ADMIN_PW: &str = "box-admin-password";

/// `examples/<example>` for `engine`.
fn example_pair(example: &str, engine: &str) -> Value {
    let text =
        std::fs::read_to_string(format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut pair: Value = serde_saphyr::from_str(&text).unwrap();
    pair["spec"]["engine"] = json!(engine);
    pair["spec"]["image"] = json!(if engine == "MariaDB" {
        "mariadb:11.4"
    } else {
        "mysql:8.4"
    });
    pair
}

/// Waits until `service`'s ready addresses are `want`.
async fn wait_endpoints(client: &Client, service: &str, want: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ips = sandbox::service_endpoints(client, "shop", service).await;
        if ips == want {
            return;
        }
        assert!(Instant::now() < deadline, "{service} endpoints {ips:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn render(example: &str, engine: &str) -> Vec<Value> {
    let pair = example_pair(example, engine);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mysql-aa-operator"))
        .args(["render", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(serde_json::to_string(&pair).unwrap().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

async fn apply_all(client: &Client, docs: Vec<Value>) {
    for mut doc in docs {
        if doc["kind"] == "Secret" {
            // What the operator does for a generated Secret: a password.
            let pw = if doc["metadata"]["name"]
                .as_str()
                .unwrap()
                .ends_with("-admin")
            {
                ADMIN_PW
            } else {
                "box-repl-password"
            };
            doc["stringData"] = json!({"password": pw});
        }
        let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                doc["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let kind = doc["kind"].as_str().unwrap().to_string();
        let plural = match kind.as_str() {
            "PodDisruptionBudget" => "poddisruptionbudgets".to_string(),
            k => format!("{}s", k.to_lowercase()),
        };
        let ar = ApiResource {
            group: group.clone(),
            version: version.clone(),
            api_version: doc["apiVersion"].as_str().unwrap().into(),
            kind,
            plural,
        };
        let ns = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let obj: DynamicObject = serde_json::from_value(doc).unwrap();
        api.patch(
            &obj.name_any(),
            &PatchParams::apply("box-test"),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn wait_pods<F: Fn(&[Pod]) -> bool>(pods: &Api<Pod>, what: &str, ok: F) -> Vec<Pod> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = pods.list(&Default::default()).await.unwrap().items;
        if ok(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {:#?}",
            list.iter()
                .map(|p| (p.name_any(), p.status.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn sql(ip: &str, query: &str) -> Vec<mysql_async::Row> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(3306)
        .user(Some("mysqlaa_admin"))
        .pass(Some(ADMIN_PW))
        .prefer_socket(false);
    let mut c = mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connect {ip}: {e}"));
    let rows = c.query(query).await.unwrap();
    c.disconnect().await.unwrap();
    rows
}

fn ip_of(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("pod IP")
}

async fn rendered_statefulset_runs_real_servers(engine: &str) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!(".cache/boxes/pods-{engine}-{}", std::process::id()));
    let cluster = Cluster::start(root, Options::default()).await.unwrap();
    let client: Client = cluster.client();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "shop",
            &PatchParams::apply("box-test"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            ),
        )
        .await
        .unwrap();
    apply_all(&client, render("pair.yaml", engine)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let started = Instant::now();
    let list = wait_pods(&pods, "both pods Ready", |l| {
        l.len() == 2 && l.iter().all(ready)
    })
    .await;
    eprintln!(
        "{engine}: two pods Ready {:?} after apply",
        started.elapsed()
    );
    // Each runs with its ordinal's my.cnf.
    for (ord, pod) in list.iter().enumerate() {
        assert_eq!(pod.name_any(), format!("orders-{ord}"));
        let rows = sql(
            &ip_of(pod),
            "SELECT @@server_id, @@auto_increment_offset, @@auto_increment_increment, @@hostname",
        )
        .await;
        let (sid, off, inc, host): (u32, u32, u32, String) = mysql_async::from_row(rows[0].clone());
        assert_eq!((sid, off, inc), (1000 + ord as u32, ord as u32 + 1, 2));
        assert_eq!(host, format!("orders-{ord}"));
    }
    // The real scheduler spreads the pair over two of the three virtual
    // nodes (the rendered pod anti-affinity).
    let nodes: Vec<String> = list
        .iter()
        .map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap())
        .collect();
    assert_ne!(nodes[0], nodes[1], "both servers on one node");
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), "shop");
    assert_eq!(pvcs.list(&Default::default()).await.unwrap().items.len(), 2);
    // Data written now must survive the pod's deletion.
    let ip0 = ip_of(&list[0]);
    let writable = if engine == "MariaDB" {
        "SET GLOBAL read_only = OFF"
    } else {
        "SET GLOBAL super_read_only = OFF"
    };
    sql(&ip0, writable).await;
    sql(&ip0, "CREATE DATABASE keep").await;
    // kill -9 of the server: the container restarts.
    let pid = cluster
        .container_pid("shop", "orders-1", "mysqld")
        .await
        .expect("pid");
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_pods(&pods, "orders-1 restarted and Ready", |l| {
        l.iter().any(|p| {
            p.name_any() == "orders-1"
                && ready(p)
                && p.status
                    .as_ref()
                    .unwrap()
                    .container_statuses
                    .as_ref()
                    .unwrap()[0]
                    .restart_count
                    >= 1
        })
    })
    .await;
    eprintln!(
        "{engine}: restarted after kill -9 at {:?}",
        started.elapsed()
    );
    // Delete a pod: recreated on the same claim, data intact.
    let old_uid = list[0].uid();
    pods.delete("orders-0", &DeleteParams::default())
        .await
        .unwrap();
    let list = wait_pods(&pods, "orders-0 recreated and Ready", |l| {
        l.iter()
            .any(|p| p.name_any() == "orders-0" && p.uid() != old_uid && ready(p))
    })
    .await;
    eprintln!(
        "{engine}: recreated after delete at {:?}",
        started.elapsed()
    );
    let pod0 = list.iter().find(|p| p.name_any() == "orders-0").unwrap();
    let rows = sql(
        &ip_of(pod0),
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'keep'",
    )
    .await;
    assert_eq!(
        mysql_async::from_row::<u64>(rows[0].clone()),
        1,
        "data survived the pod"
    );
    // The reader Service's endpoints (the real EndpointSlice controller's)
    // follow the role label.
    for (pod, role) in [("orders-1", "writer"), ("orders-0", "replica")] {
        pods.patch(
            pod,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"mysql-aa.io/role": role}}})),
        )
        .await
        .unwrap();
    }
    let p1 = pods.get("orders-1").await.unwrap();
    let p0 = pods.get("orders-0").await.unwrap();
    wait_endpoints(&client, "orders-reader", &[ip_of(&p0)]).await;
    // The writer Service (SingleWriter) has no selector: its EndpointSlice
    // is the one the operator's loop writes (rendered here the same way).
    let writer_ips = || sandbox::service_endpoints(&client, "shop", "orders-writer");
    assert!(
        writer_ips().await.is_empty(),
        "no EndpointSlice for the writer yet, and no other"
    );
    let pair =
        mysql_aa_operator::admission::admit(&example_pair("pair.yaml", engine), None).unwrap();
    let slice = mysql_aa_operator::render::writerslice::build_writer_slice(
        &pair,
        &mysql_aa_operator::render::Names::of(&pair),
        &[mysql_aa_operator::render::writerslice::WriterEndpoint {
            pod: "orders-1".into(),
            ip: ip_of(&p1),
            node: p1.spec.as_ref().and_then(|s| s.node_name.clone()),
        }],
    );
    apply_all(&client, vec![serde_json::to_value(&slice).unwrap()]).await;
    wait_endpoints(&client, "orders-writer", &[ip_of(&p1)]).await;
    // Through the writer Service's endpoint, the server answers as orders-1.
    let rows = sql(&writer_ips().await[0], "SELECT @@server_id").await;
    assert_eq!(mysql_async::from_row::<u32>(rows[0].clone()), 1001);
    // Through the writer Service's ClusterIP (kube-proxy in the box's
    // router), from the host, the same server answers.
    let cluster_ip = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), "shop")
        .get("orders-writer")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(cluster_ip.as_str())
            .tcp_port(3306)
            .user(Some("mysqlaa_admin"))
            .pass(Some(ADMIN_PW))
            .prefer_socket(false);
        if let Ok(Ok(mut c)) =
            tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts)).await
        {
            let id: Option<u32> = c.query_first("SELECT @@server_id").await.unwrap();
            c.disconnect().await.unwrap();
            assert_eq!(
                id,
                Some(1001),
                "the writer Service's ClusterIP reaches orders-1"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{cluster_ip} never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_rendered_statefulset_runs_real_servers() {
    rendered_statefulset_runs_real_servers("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_rendered_statefulset_runs_real_servers() {
    rendered_statefulset_runs_real_servers("MariaDB").await;
}

/// A pod spec that would fail in a real cluster fails here too: a missing
/// Secret, a command that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_pod_specs_fail_as_in_a_cluster() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!(".cache/boxes/broken-{}", std::process::id()));
    let cluster = Cluster::start(root, Options::default()).await.unwrap();
    let client: Client = cluster.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = |name: &str, command: &str, env: Value| -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "mysql:8.4", "command": [command, "--version"], "env": env}]}
        }))
        .unwrap()
    };
    pods.create(
        &Default::default(),
        &pod(
            "nosecret",
            "/bin/sleep",
            json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]),
        ),
    )
    .await
    .unwrap();
    pods.create(
        &Default::default(),
        &pod("badcommand", "/no/such/program", json!([])),
    )
    .await
    .unwrap();
    let reason = |p: &Pod| -> Option<String> {
        p.status.as_ref()?.container_statuses.as_ref()?[0]
            .state
            .as_ref()?
            .waiting
            .as_ref()?
            .reason
            .clone()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = pods.get("nosecret").await.unwrap();
        let b = pods.get("badcommand").await.unwrap();
        let restarts = b
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|c| c[0].restart_count)
            .unwrap_or(0);
        if reason(&a).as_deref() == Some("CreateContainerConfigError")
            && restarts >= 1
            && !ready(&b)
        {
            let msg = a.status.unwrap().container_statuses.unwrap()[0]
                .state
                .clone()
                .unwrap()
                .waiting
                .unwrap()
                .message
                .unwrap_or_default();
            assert!(msg.contains("absent"), "{msg}");
            break;
        }
        assert!(Instant::now() < deadline, "{:?} / {:?}", a.status, b.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.shutdown().await;
}
