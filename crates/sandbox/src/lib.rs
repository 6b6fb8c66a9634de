//! Cluster-in-a-box for mysql-aa-operator: test and trial infrastructure,
//! kept out of the operator binary.
//!
//! - [`controlplane`]: the real Kubernetes control plane as processes
//!   (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
//!   kube-proxy) with a PKI and an audit log;
//! - [`kubelet`]: the virtual kubelet, a client of that API server that
//!   registers Nodes and runs the pods bound to them as real processes;
//! - [`net`]: a router namespace per box (bridge, kube-proxy) and a
//!   network namespace per pod;
//! - [`images`]: which host binaries an image stands for.
//!
//! [`Cluster`] puts them together.

pub mod controlplane;
pub mod fault;
pub mod images;
pub mod kubelet;
pub mod net;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{PersistentVolume, ServiceAccount};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

pub use controlplane::audit::AuditEvent;
use controlplane::{ControlPlane, Options as ControlPlaneOptions};
use kubelet::VirtualKubelet;

/// Options of a box.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many virtual nodes (at least 2).
    pub nodes: usize,
    /// Users whose requests the audit log records.
    pub audited_users: Vec<String>,
    /// The operator's binary: what an image named `mysql-aa-operator`
    /// runs (the agents beside the servers).
    pub operator_binary: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 3,
            audited_users: Vec::new(),
            operator_binary: None,
        }
    }
}

/// A running box.
pub struct Cluster {
    control_plane: ControlPlane,
    kubelet: Option<VirtualKubelet>,
    network: Arc<Mutex<net::Network>>,
    client: Client,
    root: PathBuf,
    /// Nodes stopped through a pod name (fail_node), by (namespace, pod).
    stopped: Mutex<HashMap<(String, String), String>>,
}

/// The file naming what a box started, so a later run can remove what a
/// killed one left behind ([`clean_leftovers`]).
/// The box's state file under its root (what `clean_leftovers` and
/// [`fault::Faults::of_box`] read).
pub(crate) const STATE: &str = "box.state";

impl Cluster {
    /// Starts a box keeping its files under `root` (not under `/tmp`: pods
    /// mount their own /tmp).
    pub async fn start(root: PathBuf, options: Options) -> std::io::Result<Self> {
        clean_leftovers(&root);
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        let network = net::Network::create()?;
        std::fs::write(root.join(STATE), format!("bridge {}\n", network.bridge()))?;
        let mut control_plane = ControlPlane::start(
            &root.join("control-plane"),
            &ControlPlaneOptions {
                audited_users: options.audited_users.clone(),
                bind_address: network.host_address(),
                service_cidr: network.service_cidr().to_string(),
            },
        )
        .await?;
        control_plane.start_kube_proxy(&network.router(), &network.pod_cidr())?;
        let network = Arc::new(Mutex::new(network));
        append_state(
            &root,
            control_plane.pids().iter().map(|p| format!("pid {p}")),
        );
        let client = control_plane.admin_client().await?;
        let kubelet_client = controlplane::client_from(&{
            let p = root.join("control-plane/virtual-kubelet.kubeconfig");
            std::fs::write(
                &p,
                control_plane
                    .pki
                    .kubeconfig(&control_plane.url, "virtual-kubelet"),
            )?;
            p
        })
        .await?;
        let nodes = (1..=options.nodes.max(2))
            .map(|i| format!("node-{i}"))
            .collect();
        let kubelet = VirtualKubelet::start(
            kubelet_client,
            root.clone(),
            network.clone(),
            nodes,
            control_plane.pki.kubelet_serving(),
            options.operator_binary.clone(),
        )
        .await?;
        Ok(Self {
            control_plane,
            kubelet: Some(kubelet),
            network,
            client,
            root,
            stopped: Mutex::new(HashMap::new()),
        })
    }

    /// A client as the box's administrator.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.control_plane.url
    }

    /// The administrator's kubeconfig (for kubectl and helm).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.control_plane.admin_kubeconfig
    }

    /// Writes a kubeconfig at `path` for the ServiceAccount `namespace/name`
    /// with a token from the TokenRequest API (valid for a day), so the
    /// real authorizer applies that account's RBAC.
    pub async fn write_service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        path: &Path,
    ) -> std::io::Result<()> {
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let req: TokenRequest = serde_json::from_value(json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": 86400},
        }))
        .map_err(std::io::Error::other)?;
        let token = sas
            .create_token_request(name, &PostParams::default(), &req)
            .await
            .map_err(|e| std::io::Error::other(format!("token for {namespace}/{name}: {e}")))?
            .status
            .and_then(|s| s.token)
            .ok_or_else(|| std::io::Error::other("TokenRequest answered without a token"))?;
        let user = format!("system:serviceaccount:{namespace}:{name}");
        std::fs::write(
            path,
            self.control_plane
                .pki
                .token_kubeconfig(&self.control_plane.url, &user, &token),
        )
    }

    /// Every request the audit log recorded so far (of the audited users).
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        controlplane::audit::read(&self.control_plane.audit_log)
    }

    /// Main PID of a running container (tests use it for `kill -9`).
    pub async fn container_pid(&self, namespace: &str, pod: &str, container: &str) -> Option<u32> {
        self.kubelet
            .as_ref()?
            .container_pid(namespace, pod, container)
            .await
    }

    /// The virtual nodes' names.
    pub fn nodes(&self) -> Vec<String> {
        self.kubelet
            .as_ref()
            .map(|k| k.nodes().to_vec())
            .unwrap_or_default()
    }

    /// The node a pod is bound to.
    pub async fn node_of(&self, namespace: &str, pod: &str) -> Option<String> {
        self.kubelet.as_ref()?.node_of(namespace, pod).await
    }

    /// Restarts control-plane components (`etcd`, `kube-apiserver`,
    /// `kube-controller-manager`, `kube-scheduler`) as after a crash, and
    /// waits until the API server is ready again.
    pub async fn restart_control_plane(&mut self, components: &[&str]) -> std::io::Result<()> {
        self.control_plane.restart(components).await
    }

    /// Stops a node: heartbeats stop, its pods' processes are killed.
    pub async fn stop_node(&self, node: &str) {
        if let Some(k) = &self.kubelet {
            k.stop_node(node).await;
        }
    }

    /// Starts a stopped node again.
    pub async fn start_node(&self, node: &str) {
        if let Some(k) = &self.kubelet {
            k.start_node(node).await;
        }
    }

    /// Stops the node `pod` runs on (the loss of that pod's machine);
    /// returns the node's name.
    pub async fn fail_node(&self, namespace: &str, pod: &str) -> String {
        let node = self
            .node_of(namespace, pod)
            .await
            .unwrap_or_else(|| panic!("pod {namespace}/{pod} is on no node of the box"));
        self.stopped
            .lock()
            .expect("stopped lock")
            .insert((namespace.into(), pod.into()), node.clone());
        self.stop_node(&node).await;
        node
    }

    /// Starts the node that [`Cluster::fail_node`] stopped for `pod`.
    pub async fn recover_node(&self, namespace: &str, pod: &str) {
        let node = self
            .stopped
            .lock()
            .expect("stopped lock")
            .remove(&(namespace.to_string(), pod.to_string()));
        if let Some(node) = node {
            self.start_node(&node).await;
        }
    }

    /// The box's network faults and process signals.
    pub fn faults(&self) -> fault::Faults {
        let bridge = self
            .network
            .lock()
            .map(|n| n.bridge().to_string())
            .unwrap_or_default();
        fault::Faults::for_bridge(&bridge)
    }

    /// The address of a pod (from the API server).
    pub async fn pod_ip(&self, namespace: &str, pod: &str) -> Option<String> {
        Api::<k8s_openapi::api::core::v1::Pod>::namespaced(self.client(), namespace)
            .get_opt(pod)
            .await
            .ok()??
            .status?
            .pod_ip
    }

    /// Where the box keeps its files.
    pub fn root(&self) -> &PathBuf {
        &self.root
    }

    /// Stops every pod, the kubelet, the control plane and the network,
    /// and removes the box's files and the PVs' directories.
    pub async fn shutdown(mut self) {
        let volumes = self.volume_dirs().await;
        if let Some(k) = self.kubelet.take() {
            k.shutdown().await;
        }
        self.control_plane.stop();
        self.network.lock().expect("network lock").cleanup();
        for v in volumes {
            let _ = std::fs::remove_dir_all(v);
        }
        self.remove_files();
    }

    /// The host directories of the box's hostpath PVs.
    async fn volume_dirs(&self) -> Vec<PathBuf> {
        Api::<PersistentVolume>::all(self.client.clone())
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pv| pv.spec?.host_path.map(|h| PathBuf::from(h.path)))
            .filter(|p| p.starts_with("/tmp/hostpath_pv/"))
            .collect()
    }

    fn remove_files(&self) {
        if std::env::var_os("MYSQL_AA_KEEP_BOXES").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever still runs in the pods' namespaces dies with them; the
        // control plane's processes are killed by its own Drop.
        if let Ok(mut n) = self.network.lock() {
            n.cleanup();
        }
        if self.kubelet.is_some() {
            self.remove_files();
        }
    }
}

/// The ready addresses the EndpointSlices of `service` list now (what
/// kube-proxy routes the Service's ClusterIP to).
pub async fn service_endpoints(client: &Client, namespace: &str, service: &str) -> Vec<String> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let mut ips: Vec<String> = slices
        .list(
            &kube::api::ListParams::default()
                .labels(&format!("kubernetes.io/service-name={service}")),
        )
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.endpoints)
        .flatten()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .flat_map(|e| e.addresses)
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

fn append_state(root: &Path, lines: impl Iterator<Item = String>) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join(STATE))
    {
        for l in lines {
            let _ = writeln!(f, "{l}");
        }
    }
}

/// Records a process (the operator `sandbox up` starts) so that a later
/// [`clean_leftovers`] kills it if this box is killed.
pub fn record_pid(root: &Path, pid: u32) {
    append_state(root, std::iter::once(format!("pid {pid}")));
}

/// Removes what a box under `root` that was killed left behind: its
/// processes, the processes in its pods' network namespaces, the
/// namespaces, veths and bridge. Nothing happens when no box ran there.
pub fn clean_leftovers(root: &Path) {
    let Ok(state) = std::fs::read_to_string(root.join(STATE)) else {
        return;
    };
    for line in state.lines() {
        match line.split_once(' ') {
            Some(("pid", pid)) => {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: kill(2); the pid was one of the box's.
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            Some(("bridge", bridge)) => net::remove_bridge_and_pods(bridge.trim()),
            _ => {}
        }
    }
    let _ = std::fs::remove_file(root.join(STATE));
}
