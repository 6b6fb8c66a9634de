//! The test kit of the whole-system tests and benchmarks: a cluster-in-a-box
//! with the real operator binary, and helpers to talk to the pods' servers,
//! run a write load through the writer Service and watch for two writable
//! nodes.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use mysql_aa_operator::api::MySQLActiveActive;
use mysql_async::prelude::Queryable;
use sandbox::{Cluster, Options};
use serde_json::{Value, json};

/// Namespace the operator runs in (the chart's release namespace).
pub const OPERATOR_NAMESPACE: &str = "mysql-aa-system";
/// The operator's identity: the chart's ServiceAccount, with a token from
/// the TokenRequest API; the API server's RBAC authorizer applies the
/// chart's rules to it and the audit log records its every request.
pub const OPERATOR_USER: &str = "system:serviceaccount:mysql-aa-system:mysql-aa-operator";
pub const OBSERVE_SECONDS: u64 = 2;

/// The agents' image (the box runs the operator's binary for it).
pub const AGENT_IMAGE: &str = "ghcr.io/mysql-aa/mysql-aa-operator:test";

pub struct TestBox {
    pub cluster: Cluster,
    pub client: Client,
    /// The operator's kubeconfig (the chart's ServiceAccount, RBAC enforced).
    pub kubeconfig: PathBuf,
    /// An unrestricted user's kubeconfig (for the CLI and kubectl).
    pub admin_kubeconfig: PathBuf,
    /// Namespaces the operator watches (all when empty).
    pub namespaces: Vec<String>,
    pub operator: Option<Child>,
}

impl TestBox {
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, &[]).await
    }

    /// A box whose operator watches only `namespaces` (the chart's
    /// namespaced mode: Roles in those namespaces, no ClusterRole); all
    /// namespaces when empty. The namespaces are created, the chart is
    /// installed with the real `helm install` (CRD, ServiceAccount, RBAC;
    /// no operator pod: the operator runs on the host) and the operator is
    /// started as the chart's ServiceAccount.
    pub async fn start_with(name: &str, namespaces: &[&str]) -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!(".cache/boxes/{name}-{}", std::process::id()));
        let cluster = Cluster::start(
            root.clone(),
            Options {
                audited_users: vec![OPERATOR_USER.into()],
                operator_binary: Some(operator_binary()),
                ..Options::default()
            },
        )
        .await
        .unwrap();
        let client = cluster.client();
        let mut all = vec!["shop", OPERATOR_NAMESPACE];
        all.extend(
            namespaces
                .iter()
                .filter(|n| !["shop", OPERATOR_NAMESPACE].contains(n)),
        );
        for name in all {
            let ns: Namespace =
                serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
            Api::<Namespace>::all(client.clone())
                .create(&PostParams::default(), &ns)
                .await
                .unwrap();
        }
        let admin_kubeconfig = cluster.admin_kubeconfig().to_path_buf();
        helm(
            &admin_kubeconfig,
            &[
                "install",
                "mysql-aa-operator",
                &chart_dir(),
                "--namespace",
                OPERATOR_NAMESPACE,
            ],
            &json!({ "watchNamespaces": namespaces, "replicas": 0 }),
        );
        let kubeconfig = cluster.root().join("operator.kubeconfig");
        cluster
            .write_service_account_kubeconfig(OPERATOR_NAMESPACE, "mysql-aa-operator", &kubeconfig)
            .await
            .unwrap();
        let mut b = TestBox {
            cluster,
            client,
            kubeconfig,
            admin_kubeconfig,
            operator: None,
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        };
        b.start_operator();
        b
    }

    pub fn start_operator(&mut self) {
        // Appended: a restarted operator's log follows the first one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cluster.root().join("operator.log"))
            .unwrap();
        let mut cmd = Command::new(operator_binary());
        cmd.args([
            "run",
            "--address-mode",
            "pod-ip",
            "--observe-interval-seconds",
            &OBSERVE_SECONDS.to_string(),
            "--metrics-address",
            "127.0.0.1:0",
            "--lease-namespace",
            OPERATOR_NAMESPACE,
            "--agent-image",
            AGENT_IMAGE,
        ])
        .args(
            self.namespaces
                .iter()
                .flat_map(|n| ["--namespace", n.as_str()]),
        )
        .env("KUBECONFIG", &self.kubeconfig)
        .env(
            "RUST_LOG",
            std::env::var("OPERATOR_RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(log);
        // SAFETY: prctl is async-signal-safe; it only sets this child's
        // parent-death signal between fork and exec (an operator must not
        // outlive a killed test or bench).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        self.operator = Some(child);
    }

    pub fn kill9_operator(&mut self) {
        if let Some(mut c) = self.operator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The sum of every series of the operator's metric `name` (from its
    /// /metrics endpoint, whose address its log names).
    pub async fn operator_metric(&self, name: &str) -> f64 {
        self.operator_series(name, &[]).await.iter().sum()
    }

    /// The operator's /metrics exposition.
    pub async fn operator_metrics_text(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let log = self.operator_log();
        let address = log
            .lines()
            .filter(|l| l.contains("serving /metrics"))
            .filter_map(|l| l.split("address=").nth(1))
            .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
            .next_back()
            .expect("the operator logs its metrics address");
        let mut s = tokio::net::TcpStream::connect(&address).await.unwrap();
        s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        text
    }

    /// The values of the series of metric `name` carrying every label of
    /// `labels` (`key="value"`).
    pub async fn operator_series(&self, name: &str, labels: &[&str]) -> Vec<f64> {
        series_values(&self.operator_metrics_text().await, name, labels)
    }

    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(self.cluster.root().join("operator.log")).unwrap_or_default()
    }

    pub async fn apply_example(&self, file: &str, engine: &str) -> (String, Value) {
        let text =
            std::fs::read_to_string(format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        let mut pair: Value = serde_saphyr::from_str(&text).unwrap();
        pair["spec"]["engine"] = json!(engine);
        pair["spec"]["image"] = json!(if engine == "MariaDB" {
            "mariadb:11.4"
        } else {
            "mysql:8.4"
        });
        pair["metadata"]["namespace"] = json!("shop");
        // The box tests were written for a 10 s window (a loaded CI
        // machine may stall a server for seconds): those that measure a
        // failover set their own.
        pair["spec"]["failover"]["detectionWindowSeconds"] = json!(10);
        let name = pair["metadata"]["name"].as_str().unwrap().to_string();
        let api: Api<MySQLActiveActive> = Api::namespaced(self.client.clone(), "shop");
        api.patch(&name, &PatchParams::apply("test"), &Patch::Apply(&pair))
            .await
            .unwrap();
        (name, pair)
    }

    /// Applies `examples/pair.yaml` for `engine`, waits until it is Ready,
    /// sets its detection window, and waits until it is Ready with it;
    /// returns its name and the admin password (the benches' start).
    pub async fn ready_pair_with_window(&self, engine: &str, window: u64) -> (String, String) {
        let (name, _) = self.apply_example("pair.yaml", engine).await;
        self.wait_ready(&name, Duration::from_secs(300)).await;
        self.patch_spec(
            &name,
            json!({"failover": {"detectionWindowSeconds": window}}),
        )
        .await
        .unwrap();
        self.wait_ready(&name, Duration::from_secs(60)).await;
        let pw = self.admin_password(&name).await;
        (name, pw)
    }

    pub async fn wait_ready(&self, name: &str, limit: Duration) -> MySQLActiveActive {
        let api: Api<MySQLActiveActive> = Api::namespaced(self.client.clone(), "shop");
        let deadline = Instant::now() + limit;
        loop {
            let p = api.get(name).await.unwrap();
            let ready = p.status.as_ref().is_some_and(is_ready);
            if ready && p.status.as_ref().unwrap().observed_generation == p.metadata.generation {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "{name} not Ready: {:#?}\noperator log tail:\n{}",
                p.status,
                tail(&self.operator_log())
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the pair is Ready at its generation, or until a node is
    /// reported errant (it then waits for the user: the pair is never Ready
    /// by itself). Returns that node's name in the second case.
    pub async fn wait_ready_or_errant(&self, name: &str, limit: Duration) -> Option<String> {
        let api: Api<MySQLActiveActive> = Api::namespaced(self.client.clone(), "shop");
        let deadline = Instant::now() + limit;
        loop {
            let p = api.get(name).await.unwrap();
            let s = p.status.clone().unwrap_or_default();
            let ready = is_ready(&s);
            if ready && s.observed_generation == p.metadata.generation {
                return None;
            }
            if let Some(n) = s.nodes.iter().find(|n| n.errant_gtid_set.is_some()) {
                return Some(n.name.clone());
            }
            assert!(
                Instant::now() < deadline,
                "{name} neither Ready nor errant: {s:#?}\noperator log tail:\n{}",
                tail(&self.operator_log())
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The ready addresses of `service`, sorted (from its EndpointSlices,
    /// as kube-proxy reads them).
    pub async fn endpoint_ips(&self, service: &str) -> Vec<String> {
        service_ips(&self.client, service).await
    }

    /// Merge-patches the pair's spec (as a user editing it would).
    pub async fn patch_spec(
        &self,
        name: &str,
        spec: Value,
    ) -> Result<MySQLActiveActive, kube::Error> {
        let api: Api<MySQLActiveActive> = Api::namespaced(self.client.clone(), "shop");
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
    }

    /// Merge-patches the pair's spec and waits until the operator has
    /// observed that generation (a reconcile that read the spec before the
    /// patch may still act until then: a pause takes effect from here).
    pub async fn patch_spec_observed(&self, name: &str, spec: Value) -> MySQLActiveActive {
        let patched = self.patch_spec(name, spec).await.unwrap();
        let api: Api<MySQLActiveActive> = Api::namespaced(self.client.clone(), "shop");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = api.get(name).await.unwrap();
            if p.status.as_ref().and_then(|s| s.observed_generation) >= patched.metadata.generation
            {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "generation {:?} never observed",
                patched.metadata.generation
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks the operator to re-seed `node` from the writer (`spec.reseed`,
    /// what the runbook says for a node that came back errant) and waits
    /// until the request is answered and the pair is Ready. Returns the
    /// transactions the re-seed discarded (`status.seed.discardedGtidSet`)
    /// and how long it took, or `None` when the pair was not Ready within
    /// `limit`.
    pub async fn reseed(
        &self,
        name: &str,
        node: &str,
        limit: Duration,
    ) -> Option<(String, Duration)> {
        let id = format!("test-{}", jiff::Timestamp::now().as_millisecond());
        let t = Instant::now();
        self.patch_spec(name, json!({"reseed": {"node": node, "requestId": id}}))
            .await
            .unwrap();
        let api: Api<MySQLActiveActive> = Api::namespaced(self.client.clone(), "shop");
        loop {
            let s = api.get(name).await.unwrap().status.unwrap_or_default();
            let answered = s.answered_reseed_request.as_deref() == Some(id.as_str());
            let ready = is_ready(&s);
            if answered && ready {
                let discarded = s
                    .seed
                    .and_then(|s| s.discarded_gtid_set)
                    .unwrap_or_default();
                return Some((discarded, t.elapsed()));
            }
            if t.elapsed() > limit {
                eprintln!(
                    "{node}: not Ready {limit:?} after the re-seed request: {:?}",
                    s.seed
                );
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn admin_password(&self, pair: &str) -> String {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), "shop");
        let s = api.get(&format!("{pair}-admin")).await.unwrap();
        String::from_utf8(s.data.unwrap()["password"].0.clone()).unwrap()
    }

    /// Runs the operator's CLI as an unrestricted user (as a person would);
    /// returns (success, stdout and stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(operator_binary())
            .args(args)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .output()
            .unwrap();
        (out.status.success(), output_text(&out))
    }

    /// Requests of the operator that RBAC refused (from the audit log).
    pub fn forbidden(&self) -> Vec<String> {
        self.cluster
            .audit_events()
            .into_iter()
            .filter(|r| r.user == OPERATOR_USER && r.code == 403)
            .map(|r| format!("{} {} {}", r.verb, r.resource, r.uri))
            .collect()
    }

    /// Stops everything without the RBAC check (for a test that provoked a
    /// 403 on purpose and checks the rest itself).
    pub async fn kill_operator_and_shutdown_without_rbac_check(mut self) {
        self.kill9_operator();
        self.cluster.shutdown().await;
    }

    /// Stops everything; fails when the chart's RBAC refused the operator
    /// anything.
    pub async fn shutdown(mut self) {
        self.kill9_operator();
        let forbidden = self.forbidden();
        self.cluster.shutdown().await;
        assert!(
            forbidden.is_empty(),
            "the chart's RBAC refused the operator: {forbidden:#?}"
        );
    }
}

/// Polls `probe` every 200 ms until it returns `Some`, and returns that;
/// panics with `what` once `limit` has passed. The one deadline-and-poll
/// helper of the tests.
/// The reasons of every Event in namespace `shop`.
/// Whether the pair's `Ready` condition is true.
pub fn is_ready(s: &mysql_aa_operator::api::MySQLActiveActiveStatus) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

pub async fn event_reasons(client: &Client) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "shop");
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl TestBox {
    /// Runs the real kubectl as an unrestricted user; returns its output,
    /// panicking when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .output()
            .expect("kubectl on PATH");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The environment variable `key` parsed, or `default` (benches' settings).
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn tail(s: &str) -> String {
    s.lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn conn(ip: &str, password: &str) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(3306)
        .user(Some("mysqlaa_admin"))
        .pass(Some(password))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.unwrap()
}

pub async fn wait_row(ip: &str, password: &str, query: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = conn(ip, password).await;
        let got: Option<u64> = c.query_first(query).await.ok().flatten();
        c.disconnect().await.unwrap();
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query} on {ip}: {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operator binary: the one cargo built for this test or benchmark.
fn operator_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mysql-aa-operator"))
}

/// Options of a server connection as the admin account.
pub fn admin_opts(ip: &str, password: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(3306)
        .user(Some("mysqlaa_admin"))
        .pass(Some(password))
        .prefer_socket(false)
}

/// The ready pod IPs the EndpointSlices of `service` list now.
pub async fn service_ips(client: &Client, service: &str) -> Vec<String> {
    sandbox::service_endpoints(client, "shop", service).await
}

/// The ClusterIP of `service` (kube-proxy in the box routes it).
pub async fn cluster_ip(client: &Client, service: &str) -> String {
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), "shop");
    services
        .get(service)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap()
}

/// A continuous write load through the writer Service's ClusterIP (the
/// real data path: EndpointSlices, kube-proxy): one connection per insert,
/// as a client of the Service would, each row carrying a client-side
/// sequence number; the acknowledged numbers are kept. A connection that
/// is not set up within [`LOAD_CONNECT_TIMEOUT`] is given up and tried
/// again, as a client on the pod network would: a connection to a Service
/// still routed to a dead pod hangs (its packets are dropped), and how long
/// the client waits on it adds to the write pause it sees.
pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeSet<u64>>>,
    /// When each acknowledged write returned, and the server (its host
    /// name: the pod's) that took it.
    pub acked_at: Arc<Mutex<Vec<(Instant, String)>>>,
    /// When each attempt failed, and why (the client's error, or which
    /// step timed out).
    failed_at: Arc<Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

/// One kind of failure the load met: how often, first and last time.
pub struct LoadFailures {
    /// The error, as the client reported it.
    pub error: String,
    /// How many attempts failed so.
    pub count: usize,
    /// When the first of them failed.
    pub first: Instant,
    /// When the last of them failed.
    pub last: Instant,
}

/// The load's connection timeout (set-up and handshake).
pub const LOAD_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

impl WriteLoad {
    /// Creates `app.load` and an application account (`app`: ordinary
    /// privileges on `app.*`, as a client should have: the operator's admin
    /// account is not stopped by a fence on MariaDB, whose READ ONLY ADMIN
    /// privilege it holds) through the writer Service, and starts writing
    /// as that account.
    pub async fn start(b: &TestBox, pair: &str, password: &str) -> Self {
        let service = cluster_ip(&b.client, &format!("{pair}-writer")).await;
        // Tried again: a Service briefly without endpoints refuses (a fault
        // bench run stopped on "no route to host" right after a re-seed).
        let mut c = eventually(
            "the writer Service answers",
            Duration::from_secs(30),
            || async {
                mysql_async::Conn::new(admin_opts(&service, password))
                    .await
                    .ok()
            },
        )
        .await;
        c.query_drop("CREATE DATABASE IF NOT EXISTS app")
            .await
            .unwrap();
        c.query_drop("CREATE TABLE IF NOT EXISTS app.load (id BIGINT AUTO_INCREMENT PRIMARY KEY, seq BIGINT NOT NULL UNIQUE)")
            .await
            .unwrap();
        c.query_drop(format!(
            "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{password}'"
        ))
        .await
        .unwrap();
        c.query_drop("GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'app'@'%'")
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let acked_at = Arc::new(Mutex::new(Vec::new()));
        let failed_at = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (stop, acked, acked_at, failed_at, pw) = (
                stop.clone(),
                acked.clone(),
                acked_at.clone(),
                failed_at.clone(),
                password.to_string(),
            );
            tokio::spawn(async move {
                // Numbered from the start time: rows an earlier load left
                // on a node can never stand in for this load's writes.
                let mut seq = jiff::Timestamp::now().as_millisecond() as u64 * 1000;
                let failed = |why: String| failed_at.lock().unwrap().push((Instant::now(), why));
                while !stop.load(Ordering::SeqCst) {
                    let connected = tokio::time::timeout(
                        LOAD_CONNECT_TIMEOUT,
                        mysql_async::Conn::new(admin_opts(&service, &pw).user(Some("app"))),
                    )
                    .await;
                    match &connected {
                        Err(_) => failed("connect: timed out".into()),
                        Ok(Err(e)) => failed(format!("connect: {e}")),
                        Ok(Ok(_)) => {}
                    }
                    if let Ok(Ok(mut c)) = connected {
                        seq += 1;
                        let insert = format!("INSERT INTO app.load (seq) VALUES ({seq})");
                        let done =
                            tokio::time::timeout(Duration::from_secs(5), c.query_drop(insert))
                                .await;
                        match &done {
                            Err(_) => failed("insert: no answer within 5 s".into()),
                            Ok(Err(e)) => failed(format!("insert: {e}")),
                            Ok(Ok(())) => {}
                        }
                        if let Ok(Ok(())) = done {
                            let at = Instant::now();
                            acked.lock().unwrap().insert(seq);
                            // Bounded like every step of this client: a
                            // server paused after the commit must not hold it.
                            let host: String = tokio::time::timeout(
                                Duration::from_secs(2),
                                c.query_first("SELECT @@hostname"),
                            )
                            .await
                            .ok()
                            .and_then(|r| r.ok())
                            .flatten()
                            .unwrap_or_default();
                            acked_at.lock().unwrap().push((at, host));
                        }
                        let _ = tokio::time::timeout(Duration::from_secs(2), c.disconnect()).await;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        WriteLoad {
            stop,
            acked,
            acked_at,
            failed_at,
            task,
        }
    }

    /// The attempts that failed after `t`, grouped by error, the most
    /// frequent first.
    pub fn failures_since(&self, t: Instant) -> Vec<LoadFailures> {
        let mut kinds: Vec<LoadFailures> = Vec::new();
        for (at, error) in self
            .failed_at
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at > t)
        {
            match kinds.iter_mut().find(|k| k.error == *error) {
                Some(k) => {
                    k.count += 1;
                    k.last = *at;
                }
                None => kinds.push(LoadFailures {
                    error: error.clone(),
                    count: 1,
                    first: *at,
                    last: *at,
                }),
            }
        }
        kinds.sort_by_key(|k| std::cmp::Reverse(k.count));
        kinds
    }

    /// The longest pause between two acknowledged writes that overlaps
    /// `from..to`.
    pub fn longest_gap(&self, from: Instant, to: Instant) -> Duration {
        self.acked_at
            .lock()
            .unwrap()
            .windows(2)
            .filter(|w| w[1].0 >= from && w[0].0 <= to)
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap_or_default()
    }

    /// When the first write after `t` acknowledged by the server of pod
    /// `pod` returned.
    pub fn first_ack_on(&self, pod: &str, t: Instant) -> Option<Instant> {
        self.acked_at
            .lock()
            .unwrap()
            .iter()
            .find(|(at, on)| *at > t && on == pod)
            .map(|(at, _)| *at)
    }

    /// How many writes were acknowledged so far.
    pub fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the load; returns the acknowledged sequence numbers.
    pub async fn stop(self) -> BTreeSet<u64> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        self.acked.lock().unwrap().clone()
    }
}

/// Every acknowledged write is on the server at `ip` (waits for replication).
pub async fn assert_all_present(ip: &str, password: &str, acked: &BTreeSet<u64>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = conn(ip, password).await;
        let present: Vec<u64> = c.query("SELECT seq FROM app.load").await.unwrap();
        c.disconnect().await.unwrap();
        let present: BTreeSet<u64> = present.into_iter().collect();
        let missing: Vec<&u64> = acked.difference(&present).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged write(s) missing on {ip}: {:?}",
            missing.len(),
            missing.iter().take(20).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Watches both servers' `read_only` and counts the moments both were
/// writable. The two servers cannot be read at one instant, so each sample
/// reads A, B, A, B: both count as writable at once only when one node was
/// writable both before and after the other was seen writable (two reads
/// alone could straddle a switchover, seeing the old writer before its
/// fence and the new one after its promotion).
pub struct WritableWatch {
    stop: Arc<AtomicBool>,
    two: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

async fn writable(ip: &str, password: &str) -> bool {
    let Ok(Ok(mut c)) = tokio::time::timeout(
        Duration::from_millis(500),
        mysql_async::Conn::new(admin_opts(ip, password)),
    )
    .await
    else {
        return false;
    };
    let ro: Option<u8> = c
        .query_first("SELECT @@GLOBAL.read_only")
        .await
        .ok()
        .flatten();
    let _ = c.disconnect().await;
    ro == Some(0)
}

impl WritableWatch {
    /// Starts watching the two servers of `pair`, wherever its pods are
    /// (a recreated pod has a new address).
    pub fn start(client: &Client, pair: &str, password: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let two = Arc::new(AtomicUsize::new(0));
        let task = {
            let (stop, two, pw, client, pair) = (
                stop.clone(),
                two.clone(),
                password.to_string(),
                client.clone(),
                pair.to_string(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let ips = current_pod_ips(&client, &pair).await;
                    if let [a, b] = ips.as_slice() {
                        let mut seen = Vec::with_capacity(4);
                        for ip in [a, b, a, b] {
                            seen.push(writable(ip, &pw).await);
                        }
                        if seen.windows(3).any(|w| w.iter().all(|x| *x)) {
                            two.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        WritableWatch { stop, two, task }
    }

    /// How many observations saw two writable nodes so far.
    pub fn seen(&self) -> usize {
        self.two.load(Ordering::SeqCst)
    }

    /// Stops; returns how many observations saw two writable nodes.
    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        self.two.load(Ordering::SeqCst)
    }
}

/// The IPs of the pair's pods that have one now (any order).
pub async fn current_pod_ips(client: &Client, pair: &str) -> Vec<String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "shop");
    let mut out = Vec::new();
    for o in 0..2 {
        if let Ok(Some(p)) = pods.get_opt(&format!("{pair}-{o}")).await
            && let Some(ip) = p.status.and_then(|s| s.pod_ip)
        {
            out.push(ip);
        }
    }
    out
}

/// The pods' IPs, ordinal 0 then 1.
pub async fn pod_ips(client: &Client, pair: &str) -> Vec<String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "shop");
    let mut out = Vec::new();
    for o in 0..2 {
        let p = pods.get(&format!("{pair}-{o}")).await.unwrap();
        out.push(p.status.unwrap().pod_ip.unwrap());
    }
    out
}

/// The chart's folder.
pub fn chart_dir() -> String {
    format!("{}/charts/mysql-aa-operator", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the real Helm CLI (scripts/install-kubernetes builds it) with
/// `values` (JSON) given as a values file; panics with Helm's output when
/// it fails. Returns stdout.
pub fn helm(kubeconfig: &std::path::Path, args: &[&str], values: &Value) -> String {
    let (ok, out, err) = helm_result(Some(kubeconfig), args, values);
    assert!(ok, "helm {}: {out}{err}", args.join(" "));
    out
}

/// [`helm`] without the panic: (success, stdout, stderr).
pub fn helm_result(
    kubeconfig: Option<&std::path::Path>,
    args: &[&str],
    values: &Value,
) -> (bool, String, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/helm-values");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!(
        "{}-{}.json",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&file, values.to_string()).unwrap();
    let mut cmd = Command::new(sandbox::controlplane::binary("helm").unwrap());
    cmd.args(args).arg("--values").arg(&file);
    if let Some(kc) = kubeconfig {
        cmd.arg("--kubeconfig").arg(kc);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_file(&file);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A finished command's stdout then stderr, as text.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The values of the series of metric `name` in the exposition `text`
/// carrying every label of `labels` (`key="value"`; empty ones match all).
pub fn series_values(text: &str, name: &str, labels: &[&str]) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|kv| l.contains(kv)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect()
}

/// The chart rendered by the real `helm template` with `values` (JSON)
/// (release mysql-aa-operator in mysql-aa-system), as YAML text.
pub fn chart_text(values: &str) -> String {
    let values: Value = serde_json::from_str(values).unwrap();
    let (ok, out, err) = helm_result(
        None,
        &[
            "template",
            "mysql-aa-operator",
            &chart_dir(),
            "--namespace",
            OPERATOR_NAMESPACE,
        ],
        &values,
    );
    assert!(ok, "helm template {values}: {err}");
    out
}

/// The chart rendered by `helm template` with `values` (JSON), as documents.
pub fn chart_docs(values: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&chart_text(values))
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}
