//! The box's control plane and virtual kubelet, as a user of the real
//! `kubectl` sees them: the version, the nodes, a pod with its status,
//! logs, Events, and the node lifecycle when a node stops.

mod common;

use common::{root, wait};

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use sandbox::{Cluster, Options};
use serde_json::json;

fn kubectl(cluster: &Cluster, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(sandbox::controlplane::binary("kubectl").unwrap())
        .arg("--kubeconfig")
        .arg(cluster.admin_kubeconfig())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn node_ready(n: &Node) -> Option<String> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

/// A MariaDB pod (the quickest server to start) that logs and stays up.
fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "main", "image": "mariadb:11.4",
                "command": ["/bin/sh", "-c", "echo hello from $(hostname) on $NODE; exec sleep 600"],
                "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
            }],
        },
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_box_is_a_real_control_plane_with_virtual_nodes() {
    let mut cluster = Cluster::start(root("control-plane"), Options::default())
        .await
        .unwrap();
    // The server's version is the pinned one (Helm reads it).
    let (ok, out) = kubectl(&cluster, &["version"]);
    assert!(ok, "{out}");
    assert!(out.contains("Server Version: v1.37.2"), "{out}");
    // Three virtual nodes, Ready.
    let nodes: Api<Node> = Api::all(cluster.client());
    wait("three Ready nodes", Duration::from_secs(60), || async {
        let l = nodes.list(&Default::default()).await.unwrap().items;
        l.len() == 3 && l.iter().all(|n| node_ready(n).as_deref() == Some("True"))
    })
    .await;
    let (_, out) = kubectl(&cluster, &["get", "nodes"]);
    assert_eq!(out.matches(" Ready ").count(), 3, "{out}");

    // A pod is scheduled by the real scheduler, run, and reported.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    pods.create(&PostParams::default(), &pod("hello"))
        .await
        .unwrap();
    wait("the pod Ready", Duration::from_secs(60), || async {
        pods.get("hello").await.unwrap().status.is_some_and(|s| {
            s.conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let (_, out) = kubectl(&cluster, &["get", "pods", "-o", "wide"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("hello"))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("1/1") && line.contains("Running"), "{out}");
    let node = pods
        .get("hello")
        .await
        .unwrap()
        .spec
        .unwrap()
        .node_name
        .unwrap();
    // kubectl logs reaches the virtual kubelet through the API server.
    let (ok, out) = kubectl(&cluster, &["logs", "hello"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("hello from hello on {node}")),
        "{out}"
    );
    // The scheduler's Event is there.
    let (_, out) = kubectl(&cluster, &["get", "events", "-n", "default"]);
    assert!(out.contains("Scheduled"), "{out}");

    // A stopped node goes NotReady through the real node lifecycle
    // controller, and its pod is marked not ready.
    cluster.stop_node(&node).await;
    wait("the node NotReady", Duration::from_secs(60), || async {
        node_ready(&nodes.get(&node).await.unwrap()).as_deref() == Some("Unknown")
    })
    .await;
    wait("the pod not ready", Duration::from_secs(60), || async {
        pods.get("hello").await.unwrap().status.is_some_and(|s| {
            s.conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "False")
        })
    })
    .await;
    // A deletion waits for the node: the pod stays Terminating.
    pods.delete("hello", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(pods.get_opt("hello").await.unwrap().is_some());
    cluster.start_node(&node).await;
    wait("the node Ready again", Duration::from_secs(60), || async {
        node_ready(&nodes.get(&node).await.unwrap()).as_deref() == Some("True")
    })
    .await;
    wait("the pod gone", Duration::from_secs(60), || async {
        pods.get_opt("hello").await.unwrap().is_none()
    })
    .await;

    // etcd and the API server restarted as after a crash: what was stored
    // survives (etcd's data directory), and the kubelet's heartbeats keep
    // the nodes Ready.
    kubectl(&cluster, &["create", "configmap", "kept", "-n", "default"]);
    cluster
        .restart_control_plane(&["etcd", "kube-apiserver"])
        .await
        .unwrap();
    let (ok, out) = kubectl(&cluster, &["get", "configmap", "kept", "-n", "default"]);
    assert!(ok, "{out}");
    let nodes: Api<Node> = Api::all(cluster.client());
    wait(
        "three Ready nodes after the restart",
        Duration::from_secs(60),
        || async {
            nodes.list(&Default::default()).await.is_ok_and(|l| {
                l.items.len() == 3
                    && l.items
                        .iter()
                        .all(|n| node_ready(n).as_deref() == Some("True"))
            })
        },
    )
    .await;
    cluster.shutdown().await;
}
