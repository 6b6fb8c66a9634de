//! The real Kubernetes control plane of the box, as processes: etcd,
//! kube-apiserver, kube-controller-manager and kube-scheduler, built from
//! their published Go modules by `scripts/install-kubernetes` (pinned in
//! `tools/*/go.mod`).
//!
//! - etcd keeps its data in the box's folder (`--unsafe-no-fsync`: a test
//!   box needs no durability of its own);
//! - kube-apiserver serves TLS on a free loopback port with the box's CA
//!   ([`pki`]), authorizes with RBAC (and Node), signs service-account
//!   tokens, and writes an audit log of the users the box names (the RBAC
//!   proof reads it);
//! - kube-controller-manager runs the default controllers (StatefulSet,
//!   garbage collector, EndpointSlices, node lifecycle with a short grace
//!   period, service-account tokens, root-CA publishing, PV binding) with
//!   its built-in hostpath provisioner for the PVCs (a default StorageClass
//!   `standard` names it);
//! - kube-scheduler places the pods on the virtual kubelet's nodes.
//!
//! Every process is in its own process group and is told to die with the
//! box (parent-death signal); [`ControlPlane::stop`] stops them in reverse
//! order.

pub mod audit;
pub mod pki;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub use pki::Pki;

/// The Kubernetes version the box runs (tools/kubernetes/go.mod).
pub const KUBERNETES_VERSION: &str = "v1.37.2";

/// Where `scripts/install-kubernetes` put the binaries:
/// `$MYSQL_AA_KUBE_BIN` or `<workspace>/.cache/kubernetes/bin`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("MYSQL_AA_KUBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/kubernetes/bin"))
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The path of one of the box's binaries; an error naming the command
/// that installs it when it is missing (a test fails, never skips).
pub fn binary(name: &str) -> std::io::Result<PathBuf> {
    let p = bin_dir().join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(std::io::Error::other(format!(
            "{} is missing: run scripts/install-kubernetes (scripts/test does)",
            p.display()
        )))
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One process of the box.
struct Proc {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    child: Child,
}

/// Starts `program` with `args` in its own process group, killed with
/// SIGKILL when the box's process dies; its output goes to `log`.
pub fn spawn(program: &Path, args: &[String], log: &Path) -> std::io::Result<Child> {
    spawn_with_env(program, args, log, &[])
}

/// [`spawn`] with extra environment variables.
pub fn spawn_with_env(
    program: &Path,
    args: &[String],
    log: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> std::io::Result<Child> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it only sets this child's
    // parent-death signal between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends `signal` to the process group of `pid`.
pub fn signal_group(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// Options of a control plane.
#[derive(Clone, Debug)]
pub struct Options {
    /// Users whose every request the audit log records (at Metadata
    /// level): what the RBAC proof reads.
    pub audited_users: Vec<String>,
    /// The address the API server listens on (the host's end of the box's
    /// uplink, so kube-proxy in the router namespace reaches it).
    pub bind_address: String,
    /// The range ClusterIPs come from (a /24 per box).
    pub service_cidr: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            audited_users: Vec::new(),
            bind_address: "127.0.0.1".into(),
            service_cidr: "10.96.0.0/24".into(),
        }
    }
}

/// A running control plane.
pub struct ControlPlane {
    /// The box folder it keeps its files in.
    pub dir: PathBuf,
    /// The PKI.
    pub pki: Pki,
    /// The API server's URL.
    pub url: String,
    /// The administrator's kubeconfig (system:masters).
    pub admin_kubeconfig: PathBuf,
    /// The audit log file.
    pub audit_log: PathBuf,
    procs: Vec<Proc>,
}

fn arg(k: &str, v: impl std::fmt::Display) -> String {
    format!("--{k}={v}")
}

impl ControlPlane {
    /// Starts etcd, the API server, the controller manager and the
    /// scheduler under `dir`, and waits until the API server is ready and
    /// the controller manager has made the `default` ServiceAccount.
    pub async fn start(dir: &Path, options: &Options) -> std::io::Result<Self> {
        let t0 = Instant::now();
        std::fs::create_dir_all(dir.join("logs"))?;
        let pki = Pki::create(
            &dir.join("pki"),
            &[
                &crate::net::first_address(&options.service_cidr),
                &options.bind_address,
            ],
        )?;
        let mut cp = Self {
            dir: dir.to_path_buf(),
            url: String::new(),
            admin_kubeconfig: dir.join("admin.kubeconfig"),
            audit_log: dir.join("logs/audit.log"),
            pki,
            procs: Vec::new(),
        };
        let (etcd_client, etcd_peer, api_port) = (free_port()?, free_port()?, free_port()?);
        cp.url = format!("https://{}:{api_port}", options.bind_address);
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        cp.run(
            "etcd",
            &[
                arg("name", "box"),
                arg("data-dir", dir.join("etcd").display()),
                arg("listen-client-urls", &etcd_url),
                arg("advertise-client-urls", &etcd_url),
                arg("listen-peer-urls", &peer_url),
                arg("initial-advertise-peer-urls", &peer_url),
                arg("initial-cluster", format!("box={peer_url}")),
                "--unsafe-no-fsync".into(),
                arg("log-level", "warn"),
            ],
        )?;
        let policy = dir.join("audit-policy.yaml");
        std::fs::write(&policy, audit_policy(&options.audited_users))?;
        let pki = cp.pki.clone();
        let kubelet_client = pki.client("apiserver-kubelet-client");
        cp.run(
            "kube-apiserver",
            &[
                arg("etcd-servers", &etcd_url),
                arg("bind-address", &options.bind_address),
                arg("advertise-address", &options.bind_address),
                // The `kubernetes` Service's endpoint (pods reach the API
                // through it) needs a non-loopback address.
                arg(
                    "endpoint-reconciler-type",
                    if options.bind_address.starts_with("127.") {
                        "none"
                    } else {
                        "lease"
                    },
                ),
                arg("secure-port", api_port),
                arg("cert-dir", dir.join("apiserver-certs").display()),
                arg("tls-cert-file", pki.apiserver.cert.display()),
                arg("tls-private-key-file", pki.apiserver.key.display()),
                arg("client-ca-file", pki.ca.display()),
                arg("authorization-mode", "Node,RBAC"),
                arg(
                    "service-account-issuer",
                    "https://kubernetes.default.svc.cluster.local",
                ),
                arg("service-account-key-file", pki.sa_pub.display()),
                arg("service-account-signing-key-file", pki.sa_key.display()),
                arg("service-cluster-ip-range", &options.service_cidr),
                arg("kubelet-client-certificate", kubelet_client.cert.display()),
                arg("kubelet-client-key", kubelet_client.key.display()),
                arg("kubelet-preferred-address-types", "InternalIP"),
                arg("audit-policy-file", policy.display()),
                arg("audit-log-path", cp.audit_log.display()),
                arg("audit-log-format", "json"),
                "--allow-privileged=true".into(),
                "--profiling=false".into(),
                arg("event-ttl", "2h"),
                arg("v", 1),
            ],
        )?;
        std::fs::write(&cp.admin_kubeconfig, cp.pki.kubeconfig(&cp.url, "admin"))?;
        let client = cp.admin_client().await?;
        cp.wait_ready(&client, Duration::from_secs(120)).await?;
        let mut kcm = cp.component_args("kube-controller-manager")?;
        kcm.extend([
            "--use-service-account-credentials=true".into(),
            arg("service-account-private-key-file", pki.sa_key.display()),
            arg("root-ca-file", pki.ca.display()),
            arg("cluster-signing-cert-file", pki.ca.display()),
            arg("cluster-signing-key-file", pki.ca_key().display()),
            arg("service-cluster-ip-range", &options.service_cidr),
            "--enable-hostpath-provisioner=true".into(),
            // A node whose heartbeats stop is NotReady after 10 s (the
            // default is 50 s), so a test sees the node lifecycle.
            arg("node-monitor-grace-period", "10s"),
            arg("node-monitor-period", "2s"),
        ]);
        cp.run("kube-controller-manager", &kcm)?;
        let scheduler = cp.component_args("kube-scheduler")?;
        cp.run("kube-scheduler", &scheduler)?;
        // The default StorageClass: the controller manager's hostpath
        // provisioner makes a directory per PVC.
        let sc: StorageClass = serde_json::from_value(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/host-path",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }))
        .map_err(std::io::Error::other)?;
        Api::<StorageClass>::all(client.clone())
            .patch(
                "standard",
                &PatchParams::apply("sandbox"),
                &Patch::Apply(&sc),
            )
            .await
            .map_err(|e| std::io::Error::other(format!("creating StorageClass standard: {e}")))?;
        // The controller manager is up once it made the default
        // ServiceAccount (pods cannot be admitted before).
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        let deadline = Instant::now() + Duration::from_secs(120);
        while sas.get_opt("default").await.ok().flatten().is_none() {
            cp.check_alive()?;
            if Instant::now() > deadline {
                return Err(std::io::Error::other(
                    "kube-controller-manager made no default ServiceAccount within 120 s (see logs/kube-controller-manager.log)",
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing_line(&format!(
            "control plane {KUBERNETES_VERSION} ready at {} in {:.1} s",
            cp.url,
            t0.elapsed().as_secs_f64()
        ));
        Ok(cp)
    }

    /// The flags the controller manager and the scheduler share: a
    /// kubeconfig with the component's own client certificate (also for
    /// delegated authentication and authorization), a free loopback port
    /// for their own endpoint, no leader election. Writes the kubeconfig.
    fn component_args(&self, name: &str) -> std::io::Result<Vec<String>> {
        let kubeconfig = self.dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&kubeconfig, self.pki.kubeconfig(&self.url, name))?;
        let kc = kubeconfig.display();
        Ok(vec![
            arg("kubeconfig", &kc),
            arg("authentication-kubeconfig", &kc),
            arg("authorization-kubeconfig", &kc),
            arg("bind-address", "127.0.0.1"),
            arg("secure-port", free_port()?),
            arg("cert-dir", self.dir.join(format!("{name}-certs")).display()),
            "--leader-elect=false".into(),
            arg("v", 1),
        ])
    }

    /// Starts kube-proxy (nftables mode) in the network namespace `netns`
    /// (the box's router), for the pods' range `cluster_cidr`. Every
    /// Service's ClusterIP then routes to its ready endpoints, from the
    /// pods and from the host. Traffic to a ClusterIP is masqueraded, as
    /// the pods share one bridge (a reply would otherwise bypass the
    /// router's connection tracking).
    pub fn start_kube_proxy(&mut self, netns: &str, cluster_cidr: &str) -> std::io::Result<()> {
        let kubeconfig = self.dir.join("kube-proxy.kubeconfig");
        std::fs::write(&kubeconfig, self.pki.kubeconfig(&self.url, "kube-proxy"))?;
        let program = binary("kube-proxy")?;
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            netns.into(),
            program.display().to_string(),
        ];
        args.extend([
            arg("kubeconfig", kubeconfig.display()),
            arg("proxy-mode", "nftables"),
            arg("hostname-override", "node-1"),
            arg("cluster-cidr", cluster_cidr),
            "--masquerade-all=true".into(),
            arg("conntrack-max-per-core", 0),
            arg("metrics-bind-address", "127.0.0.1:10249"),
            arg("healthz-bind-address", "127.0.0.1:10256"),
            arg("v", 1),
        ]);
        self.run_program("kube-proxy", Path::new("ip"), &args)
    }

    fn run(&mut self, name: &str, args: &[String]) -> std::io::Result<()> {
        let program = binary(name)?;
        self.run_program(name, &program, args)
    }

    fn run_program(&mut self, name: &str, program: &Path, args: &[String]) -> std::io::Result<()> {
        let child = spawn(
            program,
            args,
            &self.dir.join("logs").join(format!("{name}.log")),
        )
        .map_err(|e| std::io::Error::other(format!("starting {name}: {e}")))?;
        self.procs.push(Proc {
            name: name.into(),
            program: program.to_path_buf(),
            args: args.to_vec(),
            child,
        });
        Ok(())
    }

    /// Restarts the named components (`etcd`, `kube-apiserver`, ...) as
    /// after a crash: SIGKILL, then the same program and arguments, in the
    /// order they first started (the earlier run's log is kept as
    /// `<name>.log.1`); waits until the API server is ready again.
    pub async fn restart(&mut self, names: &[&str]) -> std::io::Result<()> {
        for p in self
            .procs
            .iter_mut()
            .filter(|p| names.contains(&p.name.as_str()))
        {
            signal_group(p.child.id(), libc::SIGKILL);
            let _ = p.child.wait();
        }
        for p in self
            .procs
            .iter_mut()
            .filter(|p| names.contains(&p.name.as_str()))
        {
            let log = self.dir.join("logs").join(format!("{}.log", p.name));
            let _ = std::fs::rename(&log, log.with_extension("log.1"));
            p.child = spawn(&p.program, &p.args, &log)
                .map_err(|e| std::io::Error::other(format!("restarting {}: {e}", p.name)))?;
        }
        let client = self.admin_client().await?;
        self.wait_ready(&client, Duration::from_secs(60)).await
    }

    /// An error naming the first component that exited, with its log's tail.
    pub fn check_alive(&mut self) -> std::io::Result<()> {
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.join("logs").join(format!("{}.log", p.name)))
                        .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                return Err(std::io::Error::other(format!(
                    "{} exited ({status}):\n{}",
                    p.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )));
            }
        }
        Ok(())
    }

    async fn wait_ready(&mut self, client: &Client, limit: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            self.check_alive()?;
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(std::io::Error::other)?;
            if let Ok(body) = client.request_text(req).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "kube-apiserver not ready within {limit:?} (see {})",
                    self.dir.join("logs/kube-apiserver.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A client as the box's administrator.
    pub async fn admin_client(&self) -> std::io::Result<Client> {
        client_from(&self.admin_kubeconfig).await
    }

    /// PIDs of the control plane's processes (to check none is left).
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Stops the components, newest first (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        for mut p in self.procs.drain(..).rev() {
            signal_group(p.child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        signal_group(p.child.id(), libc::SIGKILL);
                        let _ = p.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for p in &mut self.procs {
            signal_group(p.child.id(), libc::SIGKILL);
            let _ = p.child.wait();
        }
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> std::io::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(std::io::Error::other)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(std::io::Error::other)?;
    Client::try_from(config).map_err(std::io::Error::other)
}

/// The audit policy: every request of the named users at Metadata level
/// (who, verb, resource, response code), nothing else.
fn audit_policy(users: &[String]) -> String {
    let mut p = String::from(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n",
    );
    if !users.is_empty() {
        p.push_str("- level: Metadata\n  users:\n");
        for u in users {
            p.push_str(&format!("  - {u:?}\n"));
        }
    }
    p.push_str("- level: None\n");
    p
}

fn tracing_line(s: &str) {
    if std::env::var_os("SANDBOX_QUIET").is_none() {
        eprintln!("sandbox: {s}");
    }
}
