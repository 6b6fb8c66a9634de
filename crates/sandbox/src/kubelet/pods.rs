//! Running pods: each pod bound to one of the virtual kubelet's nodes runs
//! as real host processes.
//!
//! Per pod: a network namespace with its own address ([`super::net`]); per
//! container: a private mount namespace (`unshare --mount --uts`) where the
//! pod's volumes are bind-mounted at their mount paths, the host name is the
//! pod's, and the process runs as the pod's `runAsUser`/`runAsGroup`
//! (`setpriv`), with the container's own command, args and environment
//! (values from Secrets, ConfigMaps and the downward API resolved). Init
//! containers run in order first. Exec and TCP probes are run (startup,
//! liveness, readiness) and reflected in the pod's status; a container that
//! exits or fails liveness is restarted with back-off. A deleted pod gets
//! SIGTERM, SIGKILL after its grace period, then is removed.
//!
//! Approximations: images are mapped to host binaries ([`super::images`]);
//! `readOnlyRootFilesystem` and capabilities are not enforced; HTTP probes
//! are not supported; volumes are ConfigMap, Secret, emptyDir and PVC only.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use super::stores::Stores;
use crate::images;
use crate::net::{Network, PodNet};

/// Where a container's launcher stages its mounts (a tmpfs mounted in the
/// container's private mount namespace; the host keeps an empty folder).
const STAGE: &str = "/run/sandbox-stage";

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Probe bookkeeping of one probe of one container.
#[derive(Debug, Default)]
struct ProbeState {
    last: Option<Instant>,
    failures: i64,
    successes: i64,
}

/// One container's process and state.
#[derive(Debug)]
struct ContainerRun {
    name: String,
    spec: Value,
    child: Option<Child>,
    pid: Option<u32>,
    restarts: u32,
    next_start: Instant,
    started_at: Option<String>,
    last_exit: Option<(i32, String)>,
    waiting: Option<(String, String)>,
    started: bool,
    ready: bool,
    startup: ProbeState,
    liveness: ProbeState,
    readiness: ProbeState,
    started_instant: Option<Instant>,
}

impl ContainerRun {
    fn new(spec: &Value) -> Self {
        Self {
            name: spec["name"].as_str().unwrap_or("").to_string(),
            spec: spec.clone(),
            child: None,
            pid: None,
            restarts: 0,
            next_start: Instant::now(),
            started_at: None,
            last_exit: None,
            waiting: Some(("ContainerCreating".into(), String::new())),
            started: false,
            ready: false,
            startup: ProbeState::default(),
            liveness: ProbeState::default(),
            readiness: ProbeState::default(),
            started_instant: None,
        }
    }

    fn running(&self) -> bool {
        self.child.is_some()
    }

    fn backoff(&mut self) {
        let secs = (1u64 << self.restarts.min(4)).min(10);
        self.next_start = Instant::now() + Duration::from_secs(secs);
    }

    fn reset_probes(&mut self) {
        self.started = false;
        self.ready = false;
        self.startup = ProbeState::default();
        self.liveness = ProbeState::default();
        self.readiness = ProbeState::default();
    }
}

/// One pod being run.
struct PodRun {
    namespace: String,
    name: String,
    uid: String,
    node: String,
    net: Option<PodNet>,
    dir: PathBuf,
    inits: Vec<ContainerRun>,
    next_init: usize,
    containers: Vec<ContainerRun>,
    start_time: String,
    error: Option<(String, String)>,
    last_status: Value,
}

/// What the kubelet's host gives its pods.
pub struct Host {
    /// The address pods see as their host's.
    pub ip: String,
    /// The operator's binary (what the operator's image runs).
    pub operator: Option<PathBuf>,
}

/// The pods of the virtual kubelet's nodes.
pub struct Pods {
    client: kube::Client,
    stores: Stores,
    root: PathBuf,
    network: Arc<Mutex<Network>>,
    pods: HashMap<String, PodRun>,
    /// The nodes this kubelet runs.
    nodes: Vec<String>,
    /// Nodes that are down: their pods' containers are killed and not
    /// restarted, nothing is reported for them.
    down: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// The address pods see as their host's.
    host_ip: String,
    /// The operator's binary (what the operator's image runs).
    operator: Option<PathBuf>,
}

fn kill_group(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Pods {
    /// Runs the pods bound to `nodes`, keeping their files under `root`.
    pub fn new(
        client: kube::Client,
        stores: Stores,
        root: PathBuf,
        network: Arc<Mutex<Network>>,
        nodes: Vec<String>,
        down: Arc<Mutex<std::collections::BTreeSet<String>>>,
        host: Host,
    ) -> Self {
        Self {
            client,
            stores,
            root,
            network,
            pods: HashMap::new(),
            nodes,
            down,
            host_ip: host.ip,
            operator: host.operator,
        }
    }

    /// Forgets what was last reported for the pods of `node` (it comes
    /// back: everything is reported again).
    pub fn node_returned(&mut self, node: &str) {
        for run in self.pods.values_mut().filter(|r| r.node == node) {
            run.last_status = Value::Null;
        }
    }

    /// The node `pod` runs on, if it is one of ours.
    pub fn node_of(&self, namespace: &str, pod: &str) -> Option<String> {
        self.stores
            .pod(namespace, pod)
            .and_then(|p| p["spec"]["nodeName"].as_str().map(String::from))
            .filter(|n| self.nodes.contains(n))
    }

    /// Main PID of a running container, for tests (`kill -9`).
    pub fn container_pid(&self, namespace: &str, pod: &str, container: &str) -> Option<u32> {
        self.pods
            .values()
            .find(|p| p.namespace == namespace && p.name == pod)
            .and_then(|p| p.containers.iter().find(|c| c.name == container))
            .and_then(|c| c.pid)
    }

    /// The pods bound to this kubelet's nodes.
    fn bound_pods(&self) -> Vec<Value> {
        self.stores
            .pods()
            .into_iter()
            .filter(|p| {
                p["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| self.nodes.iter().any(|m| m == n))
            })
            .collect()
    }

    fn lookup(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.stores.get(plural, ns, name)
    }

    fn pods_api(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The final delete of a pod whose containers stopped: grace 0, only
    /// that pod (UID precondition), as the kubelet does.
    async fn finalize_delete(&self, namespace: &str, name: &str, uid: &str) {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let _ = self.pods_api(namespace).delete(name, &dp).await;
    }

    /// One pass: start, advance, probe and stop pods; write their status.
    pub async fn sync(&mut self) {
        let pods = self.bound_pods();
        let live: HashMap<String, &Value> = pods
            .iter()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(|u| (u.to_string(), p)))
            .collect();
        // A down node's kubelet cannot be told anything: its pods being
        // deleted stay Terminating (their containers stay as they are) until
        // the node is back, as on a partitioned node.
        let down = self.down.lock().expect("down lock").clone();
        let is_down = |p: &Value| down.contains(p["spec"]["nodeName"].as_str().unwrap_or(""));
        // Pods that were removed or are being deleted: stop them.
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|uid| {
                live.get(*uid)
                    .is_none_or(|p| p["metadata"]["deletionTimestamp"].is_string() && !is_down(p))
            })
            .cloned()
            .collect();
        for uid in gone {
            if let Some(run) = self.pods.remove(&uid) {
                let grace = live
                    .get(&uid)
                    .and_then(|p| p["metadata"]["deletionGracePeriodSeconds"].as_u64())
                    .unwrap_or(30);
                self.stop_pod(run, Duration::from_secs(grace), true).await;
            }
        }
        // Deleted pods the kubelet never ran (or already stopped): remove.
        for p in &pods {
            if p["metadata"]["deletionTimestamp"].is_string() && !is_down(p) {
                let ns = p["metadata"]["namespace"].as_str().unwrap_or("");
                let name = p["metadata"]["name"].as_str().unwrap_or("");
                let uid = p["metadata"]["uid"].as_str().unwrap_or("");
                self.finalize_delete(ns, name, uid).await;
            }
        }
        for p in pods
            .iter()
            .filter(|p| !p["metadata"]["deletionTimestamp"].is_string() || is_down(p))
        {
            let uid = p["metadata"]["uid"].as_str().unwrap_or("").to_string();
            if !self.pods.contains_key(&uid) {
                let run = self.admit_pod(p);
                self.pods.insert(uid.clone(), run);
            }
            let mut run = self.pods.remove(&uid).expect("pod run");
            let node_down = is_down(p);
            self.advance(&mut run, p, node_down).await;
            if !node_down {
                self.write_status(&mut run, p).await;
            }
            self.pods.insert(uid, run);
        }
    }

    fn admit_pod(&self, pod: &Value) -> PodRun {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        let dir = self
            .root
            .join("pods")
            .join(format!("{ns}_{name}_{}", &uid[..8.min(uid.len())]));
        let spec = &pod["spec"];
        let list = |k: &str| spec[k].as_array().cloned().unwrap_or_default();
        let mut run = PodRun {
            namespace: ns,
            name,
            uid,
            node,
            net: None,
            dir,
            inits: list("initContainers")
                .iter()
                .map(ContainerRun::new)
                .collect(),
            next_init: 0,
            containers: list("containers").iter().map(ContainerRun::new).collect(),
            start_time: now(),
            error: None,
            last_status: Value::Null,
        };
        if let Err(e) = std::fs::create_dir_all(run.dir.join("volumes")) {
            run.error = Some(("CreatePodSandboxError".into(), e.to_string()));
            return run;
        }
        let _ = std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o755));
        match self.network.lock().expect("network lock").add_pod() {
            Ok(net) => run.net = Some(net),
            Err(e) => run.error = Some(("CreatePodSandboxError".into(), e.to_string())),
        }
        run
    }

    /// Host directories of the pod's volumes (written or refreshed now).
    async fn volumes(
        &self,
        run: &PodRun,
        pod: &Value,
    ) -> Result<BTreeMap<String, PathBuf>, (String, String)> {
        let fs_group = pod["spec"]["securityContext"]["fsGroup"].as_u64();
        let mut out = BTreeMap::new();
        for v in pod["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let name = v["name"].as_str().unwrap_or("").to_string();
            let dir = run.dir.join("volumes").join(&name);
            let files = |source: &Value,
                         data: BTreeMap<String, Vec<u8>>|
             -> Result<(), (String, String)> {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ("CreateContainerConfigError".into(), e.to_string()))?;
                let mode = source["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                for (key, bytes) in data {
                    let path = dir.join(&key);
                    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                        std::fs::write(&path, &bytes)
                            .map_err(|e| ("CreateContainerConfigError".into(), e.to_string()))?;
                    }
                    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
                    if let Some(g) = fs_group {
                        let _ = std::os::unix::fs::chown(&path, None, Some(g as u32));
                    }
                }
                Ok(())
            };
            if let Some(cm) = v.get("configMap") {
                let cm_name = cm["name"].as_str().unwrap_or("");
                let obj = self
                    .lookup("configmaps", &run.namespace, cm_name)
                    .ok_or_else(|| {
                        (
                            "CreateContainerConfigError".to_string(),
                            format!("configmap \"{cm_name}\" not found"),
                        )
                    })?;
                let data = configmap_data(&obj);
                files(cm, data)?;
            } else if let Some(sec) = v.get("secret") {
                let sec_name = sec["secretName"].as_str().unwrap_or("");
                let obj = self
                    .lookup("secrets", &run.namespace, sec_name)
                    .ok_or_else(|| {
                        (
                            "CreateContainerConfigError".to_string(),
                            format!("secret \"{sec_name}\" not found"),
                        )
                    })?;
                files(sec, secret_data(&obj))?;
            } else if let Some(claim) = v.get("persistentVolumeClaim") {
                // The claim's bound volume: the hostpath provisioner's
                // directory, mounted as the pod's volume.
                let claim_name = claim["claimName"].as_str().unwrap_or("");
                let pvc = self
                    .lookup("persistentvolumeclaims", &run.namespace, claim_name)
                    .ok_or_else(|| {
                        (
                            "FailedMount".to_string(),
                            format!("persistentvolumeclaim \"{claim_name}\" not found"),
                        )
                    })?;
                let volume = pvc["spec"]["volumeName"].as_str().unwrap_or("");
                let path = self
                    .lookup("persistentvolumes", "", volume)
                    .and_then(|pv| pv["spec"]["hostPath"]["path"].as_str().map(PathBuf::from))
                    .ok_or_else(|| {
                        (
                            "FailedMount".to_string(),
                            format!("persistentvolumeclaim \"{claim_name}\" is not bound to a hostPath volume yet"),
                        )
                    })?;
                std::fs::create_dir_all(&path)
                    .map_err(|e| ("FailedMount".into(), e.to_string()))?;
                own_dir(&path, fs_group);
                out.insert(name, path);
                continue;
            } else if let Some(projected) = v.get("projected") {
                let data = self.projected(run, pod, projected).await?;
                files(projected, data)?;
            } else if v.get("emptyDir").is_some() {
                std::fs::create_dir_all(&dir).map_err(|e| ("FailedMount".into(), e.to_string()))?;
                own_dir(&dir, fs_group);
            } else {
                return Err((
                    "FailedMount".into(),
                    format!(
                        "volume {name}: only configMap, secret, projected, emptyDir and persistentVolumeClaim are supported"
                    ),
                ));
            }
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
            if fs_group.is_some() && v.get("emptyDir").is_some() {
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2775));
            }
            out.insert(name, dir);
        }
        Ok(out)
    }

    /// The files of a projected volume: a service-account token bound to
    /// the pod (TokenRequest), ConfigMap and Secret keys, downward API
    /// fields.
    async fn projected(
        &self,
        run: &PodRun,
        pod: &Value,
        projected: &Value,
    ) -> Result<BTreeMap<String, Vec<u8>>, (String, String)> {
        let mut out = BTreeMap::new();
        let fail = |m: String| ("FailedMount".to_string(), m);
        for source in projected["sources"].as_array().cloned().unwrap_or_default() {
            if let Some(t) = source.get("serviceAccountToken") {
                let account = pod["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap_or("default");
                let mut spec = json!({
                    "expirationSeconds": t["expirationSeconds"].as_i64().unwrap_or(3607),
                    "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": run.name, "uid": run.uid},
                });
                if let Some(a) = t["audience"].as_str() {
                    spec["audiences"] = json!([a]);
                }
                let req: TokenRequest = serde_json::from_value(json!({"spec": spec}))
                    .map_err(|e| fail(e.to_string()))?;
                let token = Api::<ServiceAccount>::namespaced(self.client.clone(), &run.namespace)
                    .create_token_request(account, &PostParams::default(), &req)
                    .await
                    .map_err(|e| fail(format!("token of serviceaccount {account}: {e}")))?
                    .status
                    .and_then(|s| s.token)
                    .unwrap_or_default();
                out.insert(
                    t["path"].as_str().unwrap_or("token").to_string(),
                    token.into_bytes(),
                );
            }
            for (key, plural) in [("configMap", "configmaps"), ("secret", "secrets")] {
                let Some(src) = source.get(key) else { continue };
                let name = src["name"].as_str().unwrap_or("");
                let Some(obj) = self.lookup(plural, &run.namespace, name) else {
                    if src["optional"].as_bool() == Some(true) {
                        continue;
                    }
                    return Err(fail(format!("{key} \"{name}\" not found")));
                };
                let data = if plural == "secrets" {
                    secret_data(&obj)
                } else {
                    configmap_data(&obj)
                };
                match src["items"].as_array() {
                    Some(items) => {
                        for i in items {
                            let k = i["key"].as_str().unwrap_or("");
                            if let Some(bytes) = data.get(k) {
                                out.insert(
                                    i["path"].as_str().unwrap_or(k).to_string(),
                                    bytes.clone(),
                                );
                            }
                        }
                    }
                    None => out.extend(data),
                }
            }
            if let Some(d) = source.get("downwardAPI") {
                for i in d["items"].as_array().cloned().unwrap_or_default() {
                    let value = match i["fieldRef"]["fieldPath"].as_str().unwrap_or("") {
                        "metadata.namespace" => run.namespace.clone(),
                        "metadata.name" => run.name.clone(),
                        "metadata.uid" => run.uid.clone(),
                        other => {
                            return Err(fail(format!("unsupported downward API field {other}")));
                        }
                    };
                    out.insert(
                        i["path"].as_str().unwrap_or("").to_string(),
                        value.into_bytes(),
                    );
                }
            }
        }
        Ok(out)
    }

    /// The container's environment, as the container sees it.
    fn env(
        &self,
        run: &PodRun,
        pod: &Value,
        c: &Value,
    ) -> Result<Vec<(String, String)>, (String, String)> {
        let mut env = vec![
            (
                "HOSTNAME".to_string(),
                pod["spec"]["hostname"]
                    .as_str()
                    .unwrap_or(&run.name)
                    .to_string(),
            ),
            ("PATH".to_string(), SYSTEM_PATH.to_string()),
        ];
        // As a kubelet does: where the API server is, through its Service
        // (kube-proxy in the box routes it).
        if let Ok(net) = self.network.lock() {
            env.push((
                "KUBERNETES_SERVICE_HOST".into(),
                crate::net::first_address(net.service_cidr()),
            ));
            env.push(("KUBERNETES_SERVICE_PORT".into(), "443".into()));
        }
        for e in c["env"].as_array().cloned().unwrap_or_default() {
            let name = e["name"].as_str().unwrap_or("").to_string();
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(r) = e["valueFrom"].get("secretKeyRef") {
                let (sname, key) = (
                    r["name"].as_str().unwrap_or(""),
                    r["key"].as_str().unwrap_or(""),
                );
                let found = self
                    .lookup("secrets", &run.namespace, sname)
                    .and_then(|s| secret_data(&s).remove(key));
                match found {
                    Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    None if r["optional"].as_bool() == Some(true) => continue,
                    None => {
                        return Err((
                            "CreateContainerConfigError".into(),
                            format!(
                                "couldn't find key {key} in Secret {}/{sname}",
                                run.namespace
                            ),
                        ));
                    }
                }
            } else if let Some(r) = e["valueFrom"].get("configMapKeyRef") {
                let (cname, key) = (
                    r["name"].as_str().unwrap_or(""),
                    r["key"].as_str().unwrap_or(""),
                );
                let found = self
                    .lookup("configmaps", &run.namespace, cname)
                    .and_then(|c| c["data"][key].as_str().map(String::from));
                match found {
                    Some(v) => v,
                    None if r["optional"].as_bool() == Some(true) => continue,
                    None => {
                        return Err((
                            "CreateContainerConfigError".into(),
                            format!(
                                "couldn't find key {key} in ConfigMap {}/{cname}",
                                run.namespace
                            ),
                        ));
                    }
                }
            } else if let Some(r) = e["valueFrom"].get("fieldRef") {
                match r["fieldPath"].as_str().unwrap_or("") {
                    "metadata.name" => run.name.clone(),
                    "metadata.namespace" => run.namespace.clone(),
                    "metadata.uid" => run.uid.clone(),
                    "status.podIP" => run.net.as_ref().map(|n| n.ip.clone()).unwrap_or_default(),
                    "spec.nodeName" => run.node.clone(),
                    "status.hostIP" => self.host_ip.clone(),
                    other => {
                        return Err((
                            "CreateContainerConfigError".into(),
                            format!("unsupported fieldRef {other}"),
                        ));
                    }
                }
            } else {
                String::new()
            };
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
        }
        Ok(env)
    }

    /// Starts `c` in the pod's namespaces.
    async fn start(
        &self,
        run: &PodRun,
        pod: &Value,
        c: &mut ContainerRun,
    ) -> Result<(), (String, String)> {
        let image = c.spec["image"].as_str().unwrap_or("");
        let wrappers = images::wrappers_of(&self.root, image, self.operator.as_deref())
            .map_err(|e| ("ErrImagePull".to_string(), e))?;
        let volumes = self.volumes(run, pod).await?;
        let mut env = self.env(run, pod, &c.spec)?;
        for (k, v) in env.iter_mut() {
            if k == "PATH" {
                *v = format!("{}:{v}", wrappers.display());
            }
        }
        let mut argv: Vec<String> = c.spec["command"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        if argv.is_empty() {
            return Err((
                "CreateContainerError".into(),
                "the sandbox runs an explicit command only (image entrypoints are not emulated)"
                    .into(),
            ));
        }
        argv.extend(
            c.spec["args"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.as_str().map(String::from)),
        );
        let psc = &pod["spec"]["securityContext"];
        let csc = &c.spec["securityContext"];
        let uid = csc["runAsUser"].as_u64().or(psc["runAsUser"].as_u64());
        let gid = csc["runAsGroup"]
            .as_u64()
            .or(psc["runAsGroup"].as_u64())
            .or(uid);
        let fs_group = psc["fsGroup"].as_u64();
        // As the kubelet does, the pod gets its own /etc/hosts and
        // /etc/resolv.conf; the box has no cluster DNS, so lookups fail fast
        // instead of waiting on the host's resolver.
        let hostname = pod["spec"]["hostname"]
            .as_str()
            .unwrap_or(&run.name)
            .to_string();
        let ip = run.net.as_ref().map(|n| n.ip.clone()).unwrap_or_default();
        let hosts = run.dir.join("hosts");
        let resolv = run.dir.join("resolv.conf");
        std::fs::write(&hosts, format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{hostname}\n"))
            .and_then(|()| std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"))
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        let mut script = String::from("set -e\n");
        script.push_str(&format!("hostname {}\n", sh_quote(&hostname)));
        for (file, target) in [(&hosts, "/etc/hosts"), (&resolv, "/etc/resolv.conf")] {
            script.push_str(&format!(
                "mount --bind {} {target}\n",
                sh_quote(&file.display().to_string())
            ));
        }
        // Every source is bound at a staging path first, then the staging
        // paths at their targets: a target such as /tmp must not hide a
        // source under it (the hostpath provisioner's volumes live in
        // /tmp/hostpath_pv).
        // Every source is bound at a staging path first (a tmpfs private
        // to the container's mount namespace), then the staging paths at
        // their targets: a target such as /tmp must not hide a source under
        // it (the hostpath provisioner's volumes live in /tmp/hostpath_pv).
        // The box's folder and the servers' prefix (wrappers, binaries) are
        // bound back at their own paths last, so a box kept under /tmp
        // works too.
        let mounts = c.spec["volumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let stage = Path::new(STAGE);
        std::fs::create_dir_all(stage)
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        script.push_str(&format!("mount -t tmpfs sandbox-stage {STAGE}\n"));
        let mut sources = Vec::new();
        for m in &mounts {
            let vname = m["name"].as_str().unwrap_or("");
            let source = volumes.get(vname).ok_or_else(|| {
                (
                    "CreateContainerConfigError".to_string(),
                    format!("volumeMount {vname:?}: no such volume"),
                )
            })?;
            sources.push(match m["subPath"].as_str() {
                Some(sub) if !sub.is_empty() => source.join(sub),
                _ => source.clone(),
            });
        }
        let keep = [self.root.clone(), test_servers::servers_dir()];
        for (i, source) in sources.iter().chain(keep.iter()).enumerate() {
            script.push_str(&format!(
                "mkdir {t}\nmount --bind {s} {t}\n",
                s = sh_quote(&source.display().to_string()),
                t = sh_quote(&stage.join(i.to_string()).display().to_string())
            ));
        }
        for (i, m) in mounts.iter().enumerate() {
            let target = m["mountPath"].as_str().unwrap_or("");
            script.push_str(&format!(
                "mkdir -p {t}\nmount --bind {s} {t}\n",
                s = sh_quote(&stage.join(i.to_string()).display().to_string()),
                t = sh_quote(target)
            ));
            if m["readOnly"].as_bool() == Some(true) {
                script.push_str(&format!("mount -o remount,bind,ro {}\n", sh_quote(target)));
            }
        }
        for (j, dir) in keep.iter().enumerate() {
            script.push_str(&format!(
                "mkdir -p {t}\nmount --bind {s} {t}\n",
                s = sh_quote(
                    &stage
                        .join((sources.len() + j).to_string())
                        .display()
                        .to_string()
                ),
                t = sh_quote(&dir.display().to_string())
            ));
        }
        if let Some(wd) = c.spec["workingDir"].as_str() {
            script.push_str(&format!("cd {}\n", sh_quote(wd)));
        }
        match uid {
            Some(u) => {
                let groups = fs_group
                    .map(|g| format!("--groups={g}"))
                    .unwrap_or_else(|| "--clear-groups".into());
                script.push_str(&format!(
                    "exec setpriv --reuid={u} --regid={} {groups} -- \"$@\"\n",
                    gid.unwrap_or(u)
                ));
            }
            None => script.push_str("exec \"$@\"\n"),
        }
        let launcher = run.dir.join(format!("launch-{}.sh", c.name));
        std::fs::write(&launcher, script)
            .map_err(|e| ("CreateContainerError".into(), e.to_string()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run.dir.join(format!("{}.log", c.name)))
            .map_err(|e| ("CreateContainerError".into(), e.to_string()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ("CreateContainerError".into(), e.to_string()))?;
        let netns = run
            .net
            .as_ref()
            .map(|n| n.netns.clone())
            .unwrap_or_default();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns,
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "/bin/sh",
            ])
            .arg(&launcher)
            .args(&argv)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ("RunContainerError".into(), e.to_string()))?;
        c.pid = child.id();
        c.child = Some(child);
        c.started_at = Some(now());
        c.started_instant = Some(Instant::now());
        c.waiting = None;
        c.reset_probes();
        Ok(())
    }

    async fn advance(&mut self, run: &mut PodRun, pod: &Value, node_down: bool) {
        if run.net.is_none() {
            return;
        }
        if node_down {
            for c in run.inits.iter_mut().chain(run.containers.iter_mut()) {
                if let Some(pid) = c.pid.take() {
                    kill_group(pid, "KILL");
                }
                if let Some(mut child) = c.child.take() {
                    let _ = child.wait().await;
                }
                c.reset_probes();
                c.waiting = Some(("NodeDown".into(), "the node of this pod is down".into()));
                c.next_start = Instant::now();
            }
            return;
        }
        // Init containers, in order; each must exit 0.
        while run.next_init < run.inits.len() {
            let i = run.next_init;
            let mut c = std::mem::replace(&mut run.inits[i], ContainerRun::new(&Value::Null));
            let mut done = false;
            if let Some(child) = c.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    c.child = None;
                    c.pid = None;
                    let code = status.code().unwrap_or(-1);
                    c.last_exit = Some((
                        code,
                        if code == 0 {
                            "Completed".into()
                        } else {
                            "Error".into()
                        },
                    ));
                    if code == 0 {
                        done = true;
                    } else {
                        c.restarts += 1;
                        c.backoff();
                    }
                }
            } else if Instant::now() >= c.next_start {
                match self.start(run, pod, &mut c).await {
                    Ok(()) => run.error = None,
                    Err(e) => {
                        c.waiting = Some(e.clone());
                        run.error = Some(e);
                        c.next_start = Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            run.inits[i] = c;
            if done {
                run.next_init += 1;
            } else {
                return;
            }
        }
        for i in 0..run.containers.len() {
            let mut c = std::mem::replace(&mut run.containers[i], ContainerRun::new(&Value::Null));
            if let Some(child) = c.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    c.child = None;
                    c.pid = None;
                    let code = status.code().unwrap_or(137);
                    c.last_exit = Some((code, "Error".into()));
                    c.restarts += 1;
                    c.reset_probes();
                    c.backoff();
                    c.waiting = Some(("CrashLoopBackOff".into(), format!("exited with {code}")));
                }
            } else if Instant::now() >= c.next_start
                && let Err(e) = self.start(run, pod, &mut c).await
            {
                c.waiting = Some(e);
                c.next_start = Instant::now() + Duration::from_secs(1);
            }
            if c.running() {
                self.probe(run, &mut c).await;
            }
            run.containers[i] = c;
        }
    }

    /// Runs the probes that are due.
    async fn probe(&self, run: &PodRun, c: &mut ContainerRun) {
        let since_start = c.started_instant.map(|t| t.elapsed()).unwrap_or_default();
        let due = |spec: &Value, state: &ProbeState| -> bool {
            let initial = Duration::from_secs(spec["initialDelaySeconds"].as_u64().unwrap_or(0));
            let period = Duration::from_secs(spec["periodSeconds"].as_u64().unwrap_or(10))
                .min(Duration::from_secs(2));
            since_start >= initial && state.last.is_none_or(|l| l.elapsed() >= period)
        };
        let startup = c.spec["startupProbe"].clone();
        if !c.started {
            if startup.is_object() {
                if due(&startup, &c.startup) {
                    c.startup.last = Some(Instant::now());
                    if self.run_probe(run, c, &startup).await {
                        c.started = true;
                    } else {
                        c.startup.failures += 1;
                        if c.startup.failures >= startup["failureThreshold"].as_i64().unwrap_or(3) {
                            self.kill_container(c, "startup probe failed");
                        }
                    }
                }
                return;
            }
            c.started = true;
        }
        let liveness = c.spec["livenessProbe"].clone();
        if liveness.is_object() && due(&liveness, &c.liveness) {
            c.liveness.last = Some(Instant::now());
            if self.run_probe(run, c, &liveness).await {
                c.liveness.failures = 0;
            } else {
                c.liveness.failures += 1;
                if c.liveness.failures >= liveness["failureThreshold"].as_i64().unwrap_or(3) {
                    self.kill_container(c, "liveness probe failed");
                    return;
                }
            }
        }
        let readiness = c.spec["readinessProbe"].clone();
        if !readiness.is_object() {
            c.ready = true;
        } else if due(&readiness, &c.readiness) {
            c.readiness.last = Some(Instant::now());
            if self.run_probe(run, c, &readiness).await {
                c.readiness.successes += 1;
                c.readiness.failures = 0;
                if c.readiness.successes >= readiness["successThreshold"].as_i64().unwrap_or(1) {
                    c.ready = true;
                }
            } else {
                c.readiness.successes = 0;
                c.readiness.failures += 1;
                if c.readiness.failures >= readiness["failureThreshold"].as_i64().unwrap_or(3)
                    || !c.ready
                {
                    c.ready = false;
                }
            }
        }
    }

    fn kill_container(&self, c: &mut ContainerRun, why: &str) {
        if let Some(pid) = c.pid {
            kill_group(pid, "KILL");
        }
        c.waiting = Some(("Killing".into(), why.into()));
    }

    async fn run_probe(&self, run: &PodRun, c: &ContainerRun, probe: &Value) -> bool {
        let timeout = Duration::from_secs(probe["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
        if let Some(cmd) = probe["exec"]["command"].as_array() {
            let Some(pid) = c.pid else { return false };
            let argv: Vec<String> = cmd
                .iter()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            let pod = self
                .lookup("pods", &run.namespace, &run.name)
                .unwrap_or(Value::Null);
            let Ok(env) = self.env(run, &pod, &c.spec) else {
                return false;
            };
            let image = c.spec["image"].as_str().unwrap_or("");
            let Ok(wrappers) = images::wrappers_of(&self.root, image, self.operator.as_deref())
            else {
                return false;
            };
            let env: Vec<(String, String)> = env
                .into_iter()
                .map(|(k, v)| {
                    if k == "PATH" {
                        (k, format!("{}:{v}", wrappers.display()))
                    } else {
                        (k, v)
                    }
                })
                .collect();
            let psc = &pod["spec"]["securityContext"];
            let uid = c.spec["securityContext"]["runAsUser"]
                .as_u64()
                .or(psc["runAsUser"].as_u64());
            let gid = c.spec["securityContext"]["runAsGroup"]
                .as_u64()
                .or(psc["runAsGroup"].as_u64())
                .or(uid);
            let mut command = Command::new("nsenter");
            command.args([
                "--target",
                &pid.to_string(),
                "--mount",
                "--uts",
                "--net",
                "--",
            ]);
            if let Some(u) = uid {
                command.args([
                    "setpriv",
                    &format!("--reuid={u}"),
                    &format!("--regid={}", gid.unwrap_or(u)),
                    "--clear-groups",
                    "--",
                ]);
            }
            command
                .args(&argv)
                .env_clear()
                .envs(env)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            match tokio::time::timeout(timeout, command.status()).await {
                Ok(Ok(status)) => status.success(),
                _ => false,
            }
        } else if let Some(port) = probe["tcpSocket"]["port"].as_u64() {
            let Some(ip) = run.net.as_ref().map(|n| n.ip.clone()) else {
                return false;
            };
            matches!(
                tokio::time::timeout(
                    timeout,
                    tokio::net::TcpStream::connect((ip.as_str(), port as u16))
                )
                .await,
                Ok(Ok(_))
            )
        } else {
            false
        }
    }

    /// Stops the pod's containers (SIGTERM, SIGKILL after `grace`) and
    /// releases its network; `finalize` then removes the pod object.
    async fn stop_pod(&self, mut run: PodRun, grace: Duration, finalize: bool) {
        let all: Vec<&mut ContainerRun> = run
            .inits
            .iter_mut()
            .chain(run.containers.iter_mut())
            .collect();
        let mut waiting = Vec::new();
        for c in all {
            if let Some(pid) = c.pid {
                kill_group(pid, "TERM");
            }
            if let Some(child) = c.child.take() {
                waiting.push(child);
            }
        }
        let deadline = Instant::now() + grace.min(Duration::from_secs(60));
        for mut child in waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, child.wait()).await.is_err() {
                if let Some(pid) = child.id() {
                    kill_group(pid, "KILL");
                }
                let _ = child.wait().await;
            }
        }
        if let Some(net) = &run.net {
            self.network.lock().expect("network lock").remove_pod(net);
        }
        if finalize {
            self.finalize_delete(&run.namespace, &run.name, &run.uid)
                .await;
        }
    }

    /// Stops every pod's processes (box shutdown); the objects stay.
    pub async fn stop_all(&mut self) {
        for (_, run) in std::mem::take(&mut self.pods) {
            self.stop_pod(run, Duration::from_secs(5), false).await;
        }
    }

    async fn write_status(&self, run: &mut PodRun, pod: &Value) {
        let status_of = |c: &ContainerRun, init: bool| -> Value {
            let state = if c.running() {
                json!({"running": {"startedAt": c.started_at}})
            } else if init && c.last_exit.as_ref().is_some_and(|e| e.0 == 0) {
                json!({"terminated": {"exitCode": 0, "reason": "Completed"}})
            } else {
                let (reason, message) = c
                    .waiting
                    .clone()
                    .unwrap_or(("Waiting".into(), String::new()));
                json!({"waiting": {"reason": reason, "message": message}})
            };
            let mut s = json!({
                "name": c.name, "image": c.spec["image"], "imageID": "", "ready": c.running() && c.ready && !init,
                "started": c.running() && c.started, "restartCount": c.restarts, "state": state,
            });
            if let Some((code, reason)) = &c.last_exit {
                s["lastState"] = json!({"terminated": {"exitCode": code, "reason": reason}});
            }
            s
        };
        let initialized = run.next_init >= run.inits.len();
        let all_running = initialized && run.containers.iter().all(ContainerRun::running);
        let ready = all_running && run.containers.iter().all(|c| c.ready);
        let cond = |t: &str, ok: bool| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": null});
        // A pod is Running once its containers were started; a container
        // that crashed and waits to restart does not make it Pending again.
        let started_once =
            initialized && run.containers.iter().any(|c| c.running() || c.restarts > 0);
        let mut status = json!({
            "phase": if all_running || started_once { "Running" } else { "Pending" },
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "startTime": run.start_time,
            "conditions": [cond("PodScheduled", true), cond("Initialized", initialized), cond("ContainersReady", ready), cond("Ready", ready)],
            "initContainerStatuses": run.inits.iter().map(|c| status_of(c, true)).collect::<Vec<_>>(),
            "containerStatuses": run.containers.iter().map(|c| status_of(c, false)).collect::<Vec<_>>(),
        });
        if let Some(net) = &run.net {
            status["podIP"] = json!(net.ip);
            status["podIPs"] = json!([{"ip": net.ip}]);
        }
        if let Some((reason, message)) = &run.error {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        if status == run.last_status {
            return;
        }
        // Transition times change only when a condition's status changes.
        let old_conditions = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(conds) = status["conditions"].as_array_mut() {
            for c in conds {
                let old = old_conditions.iter().find(|o| o["type"] == c["type"]);
                c["lastTransitionTime"] = match old {
                    Some(o) if o["status"] == c["status"] => o["lastTransitionTime"].clone(),
                    _ => json!(now()),
                };
            }
        }
        let body = json!({"status": status});
        match self
            .pods_api(&run.namespace)
            .patch_status(&run.name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => run.last_status = status_without_times(&status),
            // Written again at the next pass.
            Err(_) => run.last_status = Value::Null,
        }
    }
}

fn status_without_times(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(conds) = s["conditions"].as_array_mut() {
        for c in conds {
            c["lastTransitionTime"] = Value::Null;
        }
    }
    s
}

fn configmap_data(configmap: &Value) -> BTreeMap<String, Vec<u8>> {
    configmap["data"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

fn secret_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Some(m) = secret["data"].as_object() {
        for (k, v) in m {
            if let Some(bytes) = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            {
                out.insert(k.clone(), bytes);
            }
        }
    }
    if let Some(m) = secret["stringData"].as_object() {
        for (k, v) in m {
            out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
        }
    }
    out
}

/// Gives a volume directory to the pod's fsGroup (OnRootMismatch).
fn own_dir(dir: &Path, fs_group: Option<u64>) {
    use std::os::unix::fs::MetadataExt;
    let Some(g) = fs_group else { return };
    if std::fs::metadata(dir).is_ok_and(|m| m.gid() == g as u32) {
        return;
    }
    let _ = std::process::Command::new("chown")
        .args(["-R", &format!("{g}:{g}"), &dir.display().to_string()])
        .status();
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2775));
}
