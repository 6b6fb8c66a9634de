//! `sandbox`: try mysql-aa-operator without a cluster.
//!
//! `sandbox up [FILE]` starts the cluster-in-a-box (the real Kubernetes
//! control plane as processes, the virtual kubelet running pods as real
//! server processes), installs the chart (CRD, RBAC, ServiceAccount) with
//! the real `helm install`, starts the operator, applies FILE (default
//! `examples/pair.yaml`), writes `.sandbox/kubeconfig`, shows the pair
//! coming up and prints how to connect; it runs until Ctrl-C or
//! `sandbox down`, then stops every process it started and removes
//! `.sandbox`. A `sandbox up` after a killed one first removes what that
//! one left (processes, network namespaces, veths).
//!
//! The operator is the real `mysql-aa-operator run` binary (found beside
//! `sandbox`), run on the host (no image can be built here) as the chart's
//! ServiceAccount, with `--address-mode pod-ip` (the box has no cluster
//! DNS); its log is `.sandbox/operator.log`.
//!
//! `sandbox fault kill|pause|resume|isolate|cut-host|heal POD` and `sandbox fault
//! partition POD PEER` (pods of the namespace `shop`, or `NAMESPACE/POD`)
//! inject a fault into the running box, to watch what the operator does
//! (`kubectl describe myaa`): `kill` is `kill -9` of the pod's server
//! (its kubelet restarts it), `pause`/`resume` SIGSTOP/SIGCONT every process
//! of the pod, `isolate` drops every packet from and to the pod, `cut-host`
//! those between the pod and the host (the API server, the operator,
//! Services: its peer still reaches it), `partition`
//! every packet between two pods, `heal` removes the network faults naming
//! the pod (`heal all`: every fault); `sandbox fault node-down|node-up
//! NODE-OR-POD` stops or starts a virtual node (heartbeats and its pods'
//! processes), through the running `sandbox up`, which owns the kubelet.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::Discovery;
use sandbox::Cluster;
use serde_json::Value;

const OPERATOR_NAMESPACE: &str = "mysql-aa-system";
const OPERATOR_ACCOUNT: &str = "mysql-aa-operator";
/// The agents' image: the box runs the operator's binary for it.
const AGENT_IMAGE: &str = "ghcr.io/mysql-aa/mysql-aa-operator:sandbox";

fn usage() -> ExitCode {
    eprintln!(
        "usage: sandbox up [FILE]   start the box and apply FILE (default examples/pair.yaml)\n       sandbox down        stop a running box\n       sandbox fault kill|pause|resume|isolate|cut-host|heal POD\n       sandbox fault partition POD PEER\n       sandbox fault heal all\n       sandbox fault node-down|node-up NODE-OR-POD"
    );
    ExitCode::from(2)
}

fn state_dir() -> PathBuf {
    std::env::var_os("SANDBOX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".sandbox"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") if args.len() <= 2 => {
            let file = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| "examples/pair.yaml".into());
            tokio::runtime::Runtime::new()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(up(Path::new(&file))))
        }
        Some("down") if args.len() == 1 => down(),
        Some("fault") if (3..=4).contains(&args.len()) => tokio::runtime::Runtime::new()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(fault(&args[1], &args[2], args.get(3).map(String::as_str)))),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `pid` runs (a zombie waiting for its parent does not).
fn pid_alive(pid: &str) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid).join("stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .map(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn down() -> Result<(), String> {
    let dir = state_dir();
    let pid = std::fs::read_to_string(dir.join("sandbox.pid")).map_err(|_| {
        format!(
            "no sandbox is running here ({} has no pid file)",
            dir.display()
        )
    })?;
    let pid = pid.trim().to_string();
    if !pid_alive(&pid) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "the sandbox (pid {pid}) is not running; removed {}",
            dir.display()
        ));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while pid_alive(&pid) {
        if Instant::now() > deadline {
            return Err(format!("the sandbox (pid {pid}) did not stop within 90 s"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("sandbox: stopped");
    Ok(())
}

/// The address of `pod` (`NAMESPACE/POD`, or a pod of `shop`) in the
/// running box.
async fn pod_ip(client: &kube::Client, pod: &str) -> Result<String, String> {
    let (ns, name) = pod.split_once('/').unwrap_or(("shop", pod));
    Api::<Pod>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|p| p.status?.pod_ip)
        .ok_or_else(|| format!("pod {ns}/{name} has no address (does it run?)"))
}

/// Where `sandbox fault node-down|node-up` leaves its request for the
/// running `sandbox up` (which owns the virtual kubelet), and where the
/// answer comes back.
const NODE_REQUEST: &str = "node.request";
const NODE_ANSWER: &str = "node.answer";

/// Serves node requests until the process stops: `down X` / `up X`, X a
/// node or a pod (`NAMESPACE/POD`, or a pod of `shop`) whose node is meant.
async fn serve_node_requests(cluster: &Cluster, dir: &Path) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(request) = std::fs::read_to_string(dir.join(NODE_REQUEST)) else {
            continue;
        };
        let _ = std::fs::remove_file(dir.join(NODE_REQUEST));
        let answer = node_request(cluster, request.trim()).await;
        let tmp = dir.join(format!("{NODE_ANSWER}.tmp"));
        if std::fs::write(&tmp, &answer).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(NODE_ANSWER));
        }
    }
}

async fn node_request(cluster: &Cluster, request: &str) -> String {
    let Some((what, target)) = request.split_once(' ') else {
        return format!("error: bad request {request:?}");
    };
    let node = if cluster.nodes().iter().any(|n| n == target) {
        target.to_string()
    } else {
        let (ns, pod) = target.split_once('/').unwrap_or(("shop", target));
        match cluster.node_of(ns, pod).await {
            Some(n) => n,
            None => return format!("error: {target} is neither a node nor a pod of the box"),
        }
    };
    match what {
        "down" => {
            cluster.stop_node(&node).await;
            format!(
                "node {node} is down: no heartbeats, its pods' processes killed; `sandbox fault node-up {node}` starts it"
            )
        }
        "up" => {
            cluster.start_node(&node).await;
            format!("node {node} is up again")
        }
        other => format!("error: unknown node request {other:?}"),
    }
}

/// Asks the running `sandbox up` to stop or start a node; waits for it.
fn ask_node(dir: &Path, what: &str, target: &str) -> Result<String, String> {
    let _ = std::fs::remove_file(dir.join(NODE_ANSWER));
    let tmp = dir.join(format!("{NODE_REQUEST}.tmp"));
    std::fs::write(&tmp, format!("{what} {target}\n")).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(NODE_REQUEST)).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = std::fs::read_to_string(dir.join(NODE_ANSWER)) {
            let _ = std::fs::remove_file(dir.join(NODE_ANSWER));
            return match answer.strip_prefix("error: ") {
                Some(e) => Err(e.to_string()),
                None => Ok(answer),
            };
        }
        if Instant::now() > deadline {
            let _ = std::fs::remove_file(dir.join(NODE_REQUEST));
            return Err("the running sandbox did not answer within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sandbox fault ...`.
async fn fault(what: &str, pod: &str, peer: Option<&str>) -> Result<(), String> {
    let dir = state_dir();
    let faults = sandbox::fault::Faults::of_box(&dir.join("box"))
        .map_err(|e| format!("{e} (is `sandbox up` running here?)"))?;
    if let ("node-down" | "node-up", None) = (what, peer) {
        let done = ask_node(&dir, what.trim_start_matches("node-"), pod)?;
        println!("sandbox: {done}");
        return Ok(());
    }
    if (what, pod, peer) == ("heal", "all", None) {
        faults.heal_all().map_err(|e| e.to_string())?;
        println!("sandbox: every fault healed");
        return Ok(());
    }
    let config =
        kube::config::Kubeconfig::read_from(dir.join("kubeconfig")).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    let ip = pod_ip(&client, pod).await?;
    let servers = ["mysqld", "mariadbd"];
    let done = match (what, peer) {
        ("kill", None) => faults
            .signal(&ip, "KILL", &servers)
            .map(|p| format!("killed the server of {pod} (pid {p:?}); its kubelet restarts it")),
        ("pause", None) => faults
            .signal(&ip, "STOP", &[])
            .map(|p| format!("paused {pod} (pids {p:?}); `sandbox fault resume {pod}` resumes it")),
        ("resume", None) => faults
            .signal(&ip, "CONT", &[])
            .map(|p| format!("resumed {pod} (pids {p:?})")),
        ("isolate", None) => faults
            .isolate(&ip)
            .map(|()| format!("isolated {pod} ({ip}): every packet from and to it is dropped")),
        ("cut-host", None) => faults.cut_from_host(&ip).map(|()| {
            format!("cut {pod} ({ip}) off from the API server, the operator and Services; its peer still reaches it")
        }),
        ("heal", None) => faults
            .heal(&ip)
            .map(|()| format!("healed the network faults naming {pod} ({ip})")),
        ("partition", Some(peer)) => {
            let peer_ip = pod_ip(&client, peer).await?;
            faults.partition(&ip, &peer_ip).map(|()| {
                format!(
                    "partitioned {pod} ({ip}) from {peer} ({peer_ip}); their Services still pass"
                )
            })
        }
        _ => {
            return Err(format!(
                "unknown fault {what:?} (see `sandbox` for the usage)"
            ));
        }
    }
    .map_err(|e| e.to_string())?;
    println!("sandbox: {done}");
    Ok(())
}

fn operator_binary() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mysql-aa-operator")));
    match beside {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("mysql-aa-operator"),
    }
}

/// Server-side applies `obj` as the box's administrator.
async fn apply(client: &kube::Client, discovery: &Discovery, obj: &Value) -> Result<(), String> {
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let kind = obj["kind"].as_str().unwrap_or("");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .ok_or_else(|| format!("{api_version} {kind} is not served"))?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let api: Api<DynamicObject> = match caps.scope {
        kube::discovery::Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            obj["metadata"]["namespace"].as_str().unwrap_or("default"),
            &ar,
        ),
        kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    let dynamic: DynamicObject = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    api.patch(
        name,
        &PatchParams::apply("sandbox"),
        &Patch::Apply(&dynamic),
    )
    .await
    .map(drop)
    .map_err(|e| format!("{kind} {name}: {e}"))
}

fn run_script(script: &str, why: &str) -> Result<(), String> {
    println!("sandbox: {why} ({script})");
    let ok = std::process::Command::new(script)
        .status()
        .map_err(|e| format!("{script}: {e}"))?;
    if ok.success() {
        Ok(())
    } else {
        Err(format!("{script} failed"))
    }
}

/// Installs the chart with the real Helm CLI: CRD, RBAC, ServiceAccount,
/// and no operator pod (`replicas=0`: the operator runs on the host, as no
/// image can be built here).
fn helm_install(kubeconfig: &Path) -> Result<(), String> {
    let helm = sandbox::controlplane::binary("helm").map_err(|e| e.to_string())?;
    let out = std::process::Command::new(helm)
        .args([
            "install",
            "mysql-aa-operator",
            "charts/mysql-aa-operator",
            "--namespace",
            OPERATOR_NAMESPACE,
            "--create-namespace",
            "--set",
            "replicas=0",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "helm install: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

async fn up(file: &Path) -> Result<(), String> {
    let dir = state_dir();
    if let Ok(pid) = std::fs::read_to_string(dir.join("sandbox.pid"))
        && pid_alive(pid.trim())
    {
        return Err(format!(
            "a sandbox is already running (pid {}); run `sandbox down` first",
            pid.trim()
        ));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let pair: Value = serde_saphyr::from_str(&text)
        .map_err(|e| format!("{} is not YAML: {e}", file.display()))?;
    if !Path::new(".cache/servers/mysql-9.7/.complete").exists()
        || !Path::new(".cache/servers/mariadb-10.11/.complete").exists()
    {
        run_script(
            "scripts/install-test-servers",
            "installing the servers that stand in for the images",
        )?;
    }
    if sandbox::controlplane::binary("kube-apiserver").is_err()
        || sandbox::controlplane::binary("helm").is_err()
    {
        run_script(
            "scripts/install-kubernetes",
            "building Kubernetes v1.37.2, etcd and Helm from their Go modules: about 10 minutes on 2 cores the first time, reused afterwards",
        )?;
    }
    // What a killed sandbox left behind goes first.
    sandbox::clean_leftovers(&dir.join("box"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;
    std::fs::write(dir.join("sandbox.pid"), std::process::id().to_string())
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let cluster = Cluster::start(
        dir.join("box"),
        sandbox::Options {
            operator_binary: Some(operator_binary()),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("starting the box: {e}"))?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::copy(cluster.admin_kubeconfig(), &kubeconfig).map_err(|e| e.to_string())?;
    println!(
        "sandbox: Kubernetes {} at {} with nodes {} ({:.1} s; kubeconfig: {})",
        sandbox::controlplane::KUBERNETES_VERSION,
        cluster.url(),
        cluster.nodes().join(", "),
        t0.elapsed().as_secs_f64(),
        kubeconfig.display()
    );
    helm_install(&kubeconfig)?;
    println!(
        "sandbox: helm installed charts/mysql-aa-operator (CRD, RBAC, ServiceAccount) in {OPERATOR_NAMESPACE}"
    );
    let client = cluster.client();
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| e.to_string())?;
    let ns = pair["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = pair["metadata"]["name"].as_str().unwrap_or("").to_string();
    apply(
        &client,
        &discovery,
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await?;
    apply(&client, &discovery, &pair).await?;
    println!("sandbox: applied {} ({ns}/{name})", file.display());

    let operator_kubeconfig = dir.join("operator.kubeconfig");
    cluster
        .write_service_account_kubeconfig(
            OPERATOR_NAMESPACE,
            OPERATOR_ACCOUNT,
            &operator_kubeconfig,
        )
        .await
        .map_err(|e| e.to_string())?;
    let log = dir.join("operator.log");
    let mut operator = sandbox::controlplane::spawn_with_env(
        &operator_binary(),
        &[
            "run",
            "--address-mode",
            "pod-ip",
            "--observe-interval-seconds",
            "2",
            "--metrics-address",
            "127.0.0.1:0",
            "--lease-namespace",
            OPERATOR_NAMESPACE,
            "--agent-image",
            AGENT_IMAGE,
        ]
        .map(String::from),
        &log,
        &[("KUBECONFIG", operator_kubeconfig.as_os_str())],
    )
    .map_err(|e| format!("starting mysql-aa-operator run: {e} (build it with `cargo build`)"))?;
    sandbox::record_pid(cluster.root(), operator.id());
    println!(
        "sandbox: operator started as the chart's ServiceAccount (log: {})",
        log.display()
    );
    let shown = watch_pair(&client, &ns, &name).await;
    if shown {
        print_connection(&client, &dir, &ns, &name).await;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let interrupt = tokio::signal::ctrl_c();
    println!("sandbox: running; stop with Ctrl-C or `sandbox down`");
    let requests = serve_node_requests(&cluster, &dir);
    tokio::select! {
        _ = interrupt => {}
        _ = term.recv() => {}
        _ = requests => {}
    }
    println!("sandbox: stopping");
    sandbox::controlplane::signal_group(operator.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while operator.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = operator.kill();
    let _ = operator.wait();
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("sandbox: stopped");
    Ok(())
}

fn describe(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let waiting = status
        .init_container_statuses
        .unwrap_or_default()
        .into_iter()
        .chain(status.container_statuses.unwrap_or_default())
        .find_map(|c| {
            c.state
                .and_then(|s| s.waiting)
                .and_then(|w| w.reason)
                .map(|r| format!("{} {r}", c.name))
        });
    format!(
        "{} {}{}{}{}",
        pod.metadata.name.clone().unwrap_or_default(),
        status.phase.unwrap_or_else(|| "Pending".into()),
        if ready { ", Ready" } else { "" },
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .map(|n| format!(" on {n}"))
            .unwrap_or_default(),
        waiting.map(|w| format!(" ({w})")).unwrap_or_default()
    )
}

async fn pods_of(client: &kube::Client, ns: &str, pair: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={pair}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

async fn pair_ready(client: &kube::Client, ns: &str, pair: &str) -> Option<(bool, String)> {
    let ar = kube::api::ApiResource {
        group: "mysql-aa.io".into(),
        version: "v1alpha1".into(),
        api_version: "mysql-aa.io/v1alpha1".into(),
        kind: "MySQLActiveActive".into(),
        plural: "mysqlactiveactives".into(),
    };
    let obj = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar)
        .get(pair)
        .await
        .ok()?;
    let ready = obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    Some((
        ready["status"] == "True",
        format!(
            "{}: {}",
            ready["reason"].as_str().unwrap_or(""),
            ready["message"].as_str().unwrap_or("")
        ),
    ))
}

/// Prints pod and pair progress until the pair is Ready (or 5 minutes pass).
async fn watch_pair(client: &kube::Client, ns: &str, pair: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = String::new();
    loop {
        let pods = pods_of(client, ns, pair).await;
        let mut line = pods.iter().map(describe).collect::<Vec<_>>().join("; ");
        let ready = pair_ready(client, ns, pair).await;
        if let Some((_, why)) = &ready {
            line = format!("{line} | {pair}: {why}");
        }
        if line != last && !line.is_empty() {
            println!("sandbox: {line}");
            last = line;
        }
        if ready.is_some_and(|(ok, _)| ok) {
            println!("sandbox: pair {ns}/{pair} is Ready");
            return true;
        }
        if Instant::now() > deadline {
            println!(
                "sandbox: the pair is not Ready after 5 minutes; see `kubectl describe myaa` and {}/operator.log",
                state_dir().display()
            );
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn print_connection(client: &kube::Client, dir: &Path, ns: &str, pair: &str) {
    let pods = pods_of(client, ns, pair).await;
    let image = pods
        .first()
        .and_then(|p| p.spec.as_ref()?.containers.first()?.image.clone())
        .unwrap_or_default();
    let client_dir = if image.contains("mariadb") {
        "mariadb"
    } else {
        "mysql"
    };
    let mysql = dir.join("box/images").join(client_dir).join("bin/mysql");
    let kc = dir.join("kubeconfig");
    let bin = sandbox::controlplane::bin_dir();
    println!();
    println!(
        "  export KUBECONFIG={} PATH={}:$PATH",
        kc.display(),
        bin.display()
    );
    println!("  kubectl get nodes");
    println!("  kubectl get myaa,pods,svc -n {ns}");
    println!("  kubectl describe myaa {pair} -n {ns}");
    println!("  kubectl logs {pair}-0 -n {ns}");
    println!("  # the admin password:");
    println!(
        "  kubectl get secret {pair}-admin -n {ns} -o jsonpath='{{.data.password}}' | base64 -d; echo"
    );
    for svc in ["writer", "reader"] {
        let cluster_ip = Api::<Service>::namespaced(client.clone(), ns)
            .get(&format!("{pair}-{svc}"))
            .await
            .ok()
            .and_then(|s| s.spec?.cluster_ip)
            .unwrap_or_default();
        let endpoints = sandbox::service_endpoints(client, ns, &format!("{pair}-{svc}")).await;
        println!(
            "  # the {svc} Service ({pair}-{svc}, ClusterIP {cluster_ip}, routed by kube-proxy; endpoints now: {}):\n  {} -h {cluster_ip} -P 3306 -u mysqlaa_admin -p",
            if endpoints.is_empty() {
                "none".to_string()
            } else {
                endpoints.join(", ")
            },
            mysql.display()
        );
    }
    for p in &pods {
        let ip = p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_else(|| "?".into());
        println!("  # {}:", p.metadata.name.clone().unwrap_or_default());
        println!("  {} -h {ip} -P 3306 -u mysqlaa_admin -p", mysql.display());
    }
    println!();
}
