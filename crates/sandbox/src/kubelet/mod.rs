//! The virtual kubelet: a client of the real API server that registers the
//! box's Nodes, renews their Leases in `kube-node-lease`, runs every pod the
//! scheduler binds to them as real processes ([`pods`]), writes pod status
//! as a kubelet does, and serves the kubelet's `containerLogs` endpoint so
//! `kubectl logs` works ([`server`]).
//!
//! A node can be stopped ([`VirtualKubelet::stop_node`]): its heartbeats
//! stop, its pods' processes are killed and nothing is reported for them,
//! so what a test sees next is the real node lifecycle controller's doing
//! (NodeNotReady, pods marked not ready, deletions left Terminating). A
//! started node reports again and restarts its pods' containers.

pub mod pods;
pub mod server;
pub mod stores;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::net::Network;
use pods::Pods;
use stores::Stores;

/// The address every virtual node has (its kubelet listens there).
pub const NODE_IP: &str = "127.0.0.1";
/// How often a node renews its Lease.
const LEASE_RENEW: Duration = Duration::from_secs(2);
/// The Lease duration a node declares.
const LEASE_SECONDS: i32 = 10;
const FIELD_MANAGER: &str = "virtual-kubelet";

/// A running virtual kubelet.
pub struct VirtualKubelet {
    client: kube::Client,
    nodes: Vec<String>,
    down: Arc<Mutex<BTreeSet<String>>>,
    pods: Arc<tokio::sync::Mutex<Pods>>,
    stores: Stores,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The port of the kubelet endpoint (logs).
    pub port: u16,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn node_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "type": "virtual-kubelet",
        }},
        "spec": {},
    })
}

fn node_status(port: u16) -> Value {
    let t = now();
    let cond = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": t, "lastTransitionTime": t})
    };
    json!({"status": {
        "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
        "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "virtual kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": NODE_IP}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
            "osImage": "cluster-in-a-box", "containerRuntimeVersion": "sandbox://0.1",
            "kubeletVersion": crate::controlplane::KUBERNETES_VERSION,
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
        },
    }})
}

impl VirtualKubelet {
    /// Registers `nodes` and starts running their pods, keeping pod files
    /// under `root`.
    pub async fn start(
        client: kube::Client,
        root: PathBuf,
        network: Arc<Mutex<Network>>,
        nodes: Vec<String>,
        serving: crate::controlplane::pki::Identity,
        operator: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let stores = Stores::start(&client);
        let (stop, stop_rx) = watch::channel(false);
        let server = server::Server::start(NODE_IP, serving, stores.clone(), root.clone()).await?;
        let port = server.port;
        let node_api: Api<Node> = Api::all(client.clone());
        for name in &nodes {
            let obj: Node =
                serde_json::from_value(node_object(name)).map_err(std::io::Error::other)?;
            node_api
                .patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&obj),
                )
                .await
                .map_err(|e| std::io::Error::other(format!("registering node {name}: {e}")))?;
            node_api
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(&node_status(port)),
                )
                .await
                .map_err(|e| std::io::Error::other(format!("node {name} status: {e}")))?;
        }
        stores.wait_synced().await;
        let down = Arc::new(Mutex::new(BTreeSet::new()));
        let pods = Arc::new(tokio::sync::Mutex::new(Pods::new(
            client.clone(),
            stores.clone(),
            root,
            network,
            nodes.clone(),
            down.clone(),
            pods::Host {
                ip: NODE_IP.to_string(),
                operator,
            },
        )));
        let mut tasks = vec![server.task];
        tasks.push(tokio::spawn(heartbeats(
            client.clone(),
            nodes.clone(),
            down.clone(),
            port,
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(run_pods(
            pods.clone(),
            stores.clone(),
            stop_rx,
        )));
        Ok(Self {
            client,
            nodes,
            down,
            pods,
            stores,
            stop,
            tasks,
            port,
        })
    }

    /// The names of the nodes.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The node `pod` is bound to, if it is one of ours.
    pub async fn node_of(&self, namespace: &str, pod: &str) -> Option<String> {
        self.pods.lock().await.node_of(namespace, pod)
    }

    /// Stops `node`: no more heartbeats or status, its pods' processes
    /// killed and not restarted until [`VirtualKubelet::start_node`].
    pub async fn stop_node(&self, node: &str) {
        self.down
            .lock()
            .expect("down lock")
            .insert(node.to_string());
        self.stores.changed.notify_one();
    }

    /// Starts `node` again: it reports Ready and runs its pods again.
    pub async fn start_node(&self, node: &str) {
        self.down.lock().expect("down lock").remove(node);
        self.pods.lock().await.node_returned(node);
        let _ = Api::<Node>::all(self.client.clone())
            .patch_status(
                node,
                &PatchParams::default(),
                &Patch::Merge(&node_status(self.port)),
            )
            .await;
        self.stores.changed.notify_one();
    }

    /// Main PID of a running container (tests use it for `kill -9`).
    pub async fn container_pid(&self, namespace: &str, pod: &str, container: &str) -> Option<u32> {
        self.pods
            .lock()
            .await
            .container_pid(namespace, pod, container)
    }

    /// Stops the loops and every pod's processes (the objects stay).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        self.pods.lock().await.stop_all().await;
        self.stores.stop();
    }
}

/// Runs the pods: a pass on every pod change, and at least every 300 ms
/// (probes, restarts).
async fn run_pods(
    pods: Arc<tokio::sync::Mutex<Pods>>,
    stores: Stores,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        pods.lock().await.sync().await;
        tokio::select! {
            _ = stop.changed() => return,
            _ = stores.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
}

/// Renews each running node's Lease every 2 s and reposts its status every
/// 20 s (and whenever the node lifecycle controller marked it otherwise).
async fn heartbeats(
    client: kube::Client,
    nodes: Vec<String>,
    down: Arc<Mutex<BTreeSet<String>>>,
    port: u16,
    mut stop: watch::Receiver<bool>,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let node_api: Api<Node> = Api::all(client.clone());
    let mut ticks = 0u64;
    loop {
        let down_now = down.lock().expect("down lock").clone();
        for name in nodes.iter().filter(|n| !down_now.contains(*n)) {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS,
                         "renewTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()},
            });
            let _ = leases
                .patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&lease),
                )
                .await;
            let repost = ticks.is_multiple_of(10)
                || node_api
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|n| {
                        !n.status
                            .and_then(|s| s.conditions)
                            .unwrap_or_default()
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    });
            if repost {
                let _ = node_api
                    .patch_status(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(&node_status(port)),
                    )
                    .await;
            }
        }
        ticks += 1;
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(LEASE_RENEW) => {}
        }
    }
}
