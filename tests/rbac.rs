//! Least privilege, proven: the operator runs as the chart's ServiceAccount
//! (a TokenRequest token) with the real API server's RBAC authorizer
//! enforcing the rules `helm install` created (every whole-system test
//! does, and fails on any 403 in the audit log). This test drives one pair through
//! bring-up, a switchover, a divergence check and a failover, lists every (verb, group,
//! resource) the operator used, and fails on any permission the chart grants
//! that was never used, unless the rule's comment says why it is kept
//! (`# kept: ...`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::Value;

type Permission = (String, String, String);

/// Indices of the rules marked `# kept:` in each Role/ClusterRole of the
/// rendered text, by (kind, name).
fn kept_rules(text: &str) -> BTreeSet<(String, String, usize)> {
    let mut out = BTreeSet::new();
    for doc in text.split("\n---\n") {
        let parsed: Value = match serde_saphyr::from_str(doc) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let (Some(kind), Some(name)) =
            (parsed["kind"].as_str(), parsed["metadata"]["name"].as_str())
        else {
            continue;
        };
        let mut index = 0usize;
        let mut kept = false;
        let mut in_rules = false;
        for line in doc.lines() {
            let t = line.trim();
            if t == "rules:" {
                in_rules = true;
                continue;
            }
            if !in_rules {
                continue;
            }
            if t.starts_with("# kept:") {
                kept = true;
            } else if t.starts_with("- apiGroups:") {
                if kept {
                    out.insert((kind.to_string(), name.to_string(), index));
                }
                index += 1;
                kept = false;
            }
        }
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Issue 15: `spec.networkPolicy` on a running pair: the operator applies
/// the NetworkPolicy (the real API server accepts it), and deletes it when
/// the spec drops it.
async fn network_policy_follows_the_spec(b: &TestBox, name: &str) {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    let api: Api<NetworkPolicy> = Api::namespaced(b.client.clone(), "shop");
    b.patch_spec(
        name,
        serde_json::json!({"networkPolicy": {"clients": [{"podSelector": {"matchLabels": {"app": "shop-frontend"}}}]}}),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let np = loop {
        if let Some(np) = api.get_opt(name).await.unwrap() {
            break np;
        }
        assert!(std::time::Instant::now() < deadline, "no NetworkPolicy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let spec = np.spec.unwrap();
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
    let ingress = spec.ingress.unwrap();
    assert_eq!(ingress.len(), 3, "{ingress:?}");
    let ports = |i: usize| -> Vec<String> {
        ingress[i]
            .ports
            .clone()
            .unwrap()
            .iter()
            .map(|p| format!("{:?}", p.port.clone().unwrap()))
            .collect()
    };
    assert_eq!(ports(0), ["Int(3306)", "Int(3380)"], "the pair's own pods");
    assert_eq!(ports(1), ["Int(3306)", "Int(3380)"], "the operator");
    assert_eq!(ports(2), ["Int(3306)"], "the clients");
    assert_eq!(
        serde_json::to_value(&ingress[2].from).unwrap()[0]["podSelector"]["matchLabels"]["app"],
        "shop-frontend"
    );
    b.patch_spec(name, serde_json::json!({"networkPolicy": null}))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the NetworkPolicy outlived the spec asking for it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_grants_only_what_the_operator_uses() {
    let text = chart_text("{}");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let kept = kept_rules(&text);
    let mut granted: BTreeSet<Permission> = BTreeSet::new();
    let mut exempt: BTreeSet<Permission> = BTreeSet::new();
    for d in &docs {
        let (Some(kind @ ("ClusterRole" | "Role")), Some(name)) =
            (d["kind"].as_str(), d["metadata"]["name"].as_str())
        else {
            continue;
        };
        for (i, rule) in d["rules"].as_array().unwrap().iter().enumerate() {
            let is_kept = kept.contains(&(kind.to_string(), name.to_string(), i));
            for g in strings(&rule["apiGroups"]) {
                for r in strings(&rule["resources"]) {
                    for v in strings(&rule["verbs"]) {
                        let p = (v.clone(), g.clone(), r.clone());
                        if is_kept {
                            exempt.insert(p);
                        } else {
                            granted.insert(p);
                        }
                    }
                }
            }
        }
    }
    assert!(!granted.is_empty(), "no rules rendered");
    assert!(!exempt.is_empty(), "the `# kept:` markers were not found");

    let b = TestBox::start("rbac").await;
    let (name, _) = b.apply_example("pair.yaml", "MySQL").await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    for command in ["switchover", "check-divergence"] {
        let (ok, out) = b.cli(&[command, &name, "-n", "shop"]);
        assert!(ok, "{command}: {out}");
    }
    network_policy_follows_the_spec(&b, &name).await;
    let p = b.wait_ready(&name, Duration::from_secs(60)).await;
    // A failover (the lost writer's pod is deleted), then its recovery.
    b.patch_spec(
        &name,
        serde_json::json!({"failover": {"detectionWindowSeconds": 3}}),
    )
    .await
    .unwrap();
    let writer = p.status.unwrap().writer.unwrap();
    b.cluster.fail_node("shop", &writer).await;
    let api: Api<mysql_aa_operator::api::MySQLActiveActive> =
        Api::namespaced(b.client.clone(), "shop");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while api
        .get(&name)
        .await
        .unwrap()
        .status
        .unwrap()
        .last_failover
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    b.cluster.recover_node("shop", &writer).await;
    b.wait_ready(&name, Duration::from_secs(180)).await;

    // Enforcement is on: what the chart does not grant is refused.
    let kc = kube::config::Kubeconfig::read_from(&b.kubeconfig).unwrap();
    let as_operator = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(as_operator, "shop");
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("listing Secrets as the operator must be forbidden: {other:?}"),
    }

    let used: BTreeSet<Permission> = b
        .cluster
        .audit_events()
        .into_iter()
        .filter(|r| r.user == OPERATOR_USER && r.code != 403)
        .flat_map(|r| {
            // A server-side apply that created its object (201) was also
            // authorized as a create.
            let created = (r.verb == "patch" && r.code == 201)
                .then(|| ("create".to_string(), r.group.clone(), r.resource.clone()));
            std::iter::once((r.verb, r.group, r.resource)).chain(created)
        })
        .collect();
    assert!(!used.is_empty(), "no request was made as {OPERATOR_USER}");
    eprintln!("the operator used:");
    for (v, g, r) in &used {
        eprintln!(
            "  {v:<6} {:<22} {r}",
            if g.is_empty() { "(core)" } else { g }
        );
    }
    let unused: Vec<&Permission> = granted
        .iter()
        .filter(|p| !used.contains(*p) && !exempt.contains(*p))
        .collect();
    // The probe above was refused; anything else refused is a missing rule.
    let forbidden: Vec<String> = b
        .forbidden()
        .into_iter()
        .filter(|f| !f.starts_with("list secrets"))
        .collect();
    b.kill_operator_and_shutdown_without_rbac_check().await;
    assert!(forbidden.is_empty(), "refused: {forbidden:#?}");
    assert!(
        unused.is_empty(),
        "the chart grants permissions the operator never used (remove them, or say why they are kept with `# kept:`): {unused:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_mode_runs_pairs_with_roles_only() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use kube::api::{Patch, PatchParams, PostParams};
    use mysql_aa_operator::api::MySQLActiveActive;

    let b = TestBox::start_with("rbac-ns", &["shop"]).await;
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(b.client.clone());
    let ours: Vec<String> = roles
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .filter(|n| n.starts_with("mysql-aa-operator"))
        .collect();
    assert!(
        ours.is_empty(),
        "namespaced mode grants no ClusterRole: {ours:?}"
    );
    // A pair in a namespace the operator does not watch stays untouched.
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "elsewhere"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(b.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let mut other: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pair.yaml"))
            .unwrap(),
    )
    .unwrap();
    other["metadata"]["namespace"] = serde_json::json!("elsewhere");
    Api::<MySQLActiveActive>::namespaced(b.client.clone(), "elsewhere")
        .patch("orders", &PatchParams::apply("test"), &Patch::Apply(&other))
        .await
        .unwrap();
    let (name, _) = b.apply_example("pair.yaml", "MariaDB").await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    tokio::time::sleep(Duration::from_secs(OBSERVE_SECONDS * 2)).await;
    let untouched = Api::<MySQLActiveActive>::namespaced(b.client.clone(), "elsewhere")
        .get("orders")
        .await
        .unwrap();
    assert!(untouched.status.is_none(), "{:?}", untouched.status);
    assert!(
        Api::<StatefulSet>::namespaced(b.client.clone(), "elsewhere")
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    b.shutdown().await;
}
