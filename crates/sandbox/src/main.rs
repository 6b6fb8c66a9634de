//! `sandbox`: try mysql-aa-operator without a cluster.
//!
//! `sandbox up [FILE]` starts the cluster-in-a-box (API stand-in, pods as
//! real server processes), installs the CRD, applies FILE (default
//! `examples/pair.yaml`), writes `.sandbox/kubeconfig`, shows the pair
//! coming up and prints how to connect; it runs until Ctrl-C or
//! `sandbox down`, then stops every process it started and removes
//! `.sandbox`.
//!
//! The operator is the real `mysql-aa-operator run` binary (found beside
//! `sandbox`), started against the box with its own kubeconfig and
//! `--address-mode pod-ip` (the box has no cluster DNS); its log is
//! `.sandbox/operator.log`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sandbox::apiserver::Config;
use sandbox::apiserver::store::PatchType;
use sandbox::cluster::Cluster;
use serde_json::{Value, json};

const CRD: &str = include_str!("../../../crds/mysqlactiveactives.mysql-aa.io.yaml");

fn usage() -> ExitCode {
    eprintln!(
        "usage: sandbox up [FILE]   start the box and apply FILE (default examples/pair.yaml)\n       sandbox down        stop a running box"
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

fn operator_binary() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mysql-aa-operator")));
    match beside {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("mysql-aa-operator"),
    }
}

/// Creates or merges `obj` through the store (as the box's own admin).
fn apply(cluster: &Cluster, obj: Value) -> Result<(), String> {
    let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let kind = obj["kind"].as_str().unwrap_or("").to_string();
    let mut store = cluster.api.store();
    let ri = store
        .resources()
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .cloned()
        .ok_or_else(|| format!("{api_version} {kind} is not served"))?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .map(String::from)
        .or_else(|| ri.namespaced.then(|| "default".to_string()));
    store
        .patch(&ri, ns.as_deref(), &name, PatchType::Apply, obj, false)
        .map(drop)
        .map_err(|e| format!("{kind} {name}: {}", e.message))
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
        println!(
            "sandbox: installing the servers that stand in for the images (scripts/install-test-servers)"
        );
        let ok = std::process::Command::new("scripts/install-test-servers")
            .status()
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("scripts/install-test-servers failed".into());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;
    let cluster = Cluster::start(dir.join("box"), Config::default())
        .await
        .map_err(|e| format!("starting the box: {e}"))?;
    let kubeconfig = dir.join("kubeconfig");
    cluster
        .api
        .write_kubeconfig(&kubeconfig, "sandbox-admin")
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("sandbox.pid"), std::process::id().to_string())
        .map_err(|e| e.to_string())?;
    println!(
        "sandbox: API at {} (kubeconfig: {})",
        cluster.api.url(),
        kubeconfig.display()
    );

    let crd: Value = serde_saphyr::from_str(CRD).map_err(|e| e.to_string())?;
    apply(&cluster, crd)?;
    let ns = pair["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = pair["metadata"]["name"].as_str().unwrap_or("").to_string();
    apply(
        &cluster,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )?;
    apply(&cluster, pair.clone())?;
    println!("sandbox: applied {} ({ns}/{name})", file.display());

    let operator_kubeconfig = dir.join("operator.kubeconfig");
    cluster
        .api
        .write_kubeconfig(&operator_kubeconfig, "mysql-aa-operator")
        .map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("operator.log")).map_err(|e| e.to_string())?;
    let mut operator = tokio::process::Command::new(operator_binary())
        .args([
            "run",
            "--address-mode",
            "pod-ip",
            "--observe-interval-seconds",
            "2",
            "--metrics-address",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &operator_kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("starting mysql-aa-operator run: {e} (build it with `cargo build`)")
        })?;
    println!(
        "sandbox: operator started (log: {})",
        dir.join("operator.log").display()
    );
    let shown = watch_pair(&cluster, &ns, &name).await;
    if shown {
        print_connection(&cluster, &dir, &ns, &name);
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let interrupt = tokio::signal::ctrl_c();
    println!("sandbox: running; stop with Ctrl-C or `sandbox down`");
    tokio::select! {
        _ = interrupt => {}
        _ = term.recv() => {}
    }
    println!("sandbox: stopping");
    if let Some(pid) = operator.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), operator.wait()).await;
    let _ = operator.kill().await;
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn pods_of(cluster: &Cluster, ns: &str, pair: &str) -> Vec<Value> {
    let store = cluster.api.store();
    let Some(ri) = store.find("", "pods").cloned() else {
        return vec![];
    };
    let sel = sandbox::apiserver::selectors::LabelSelector::parse(&format!(
        "app.kubernetes.io/instance={pair}"
    ))
    .unwrap_or_default();
    store.list(&ri, Some(ns), &sel, &Default::default())
}

fn describe(pod: &Value) -> String {
    let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    let waiting = pod["status"]["initContainerStatuses"]
        .as_array()
        .into_iter()
        .chain(pod["status"]["containerStatuses"].as_array())
        .flatten()
        .find_map(|c| {
            c["state"]["waiting"]["reason"]
                .as_str()
                .map(|r| format!("{} {r}", c["name"].as_str().unwrap_or("")))
        });
    format!(
        "{} {}{}{}",
        pod["metadata"]["name"].as_str().unwrap_or(""),
        pod["status"]["phase"].as_str().unwrap_or("Pending"),
        if ready { ", Ready" } else { "" },
        waiting.map(|w| format!(" ({w})")).unwrap_or_default()
    )
}

fn pair_ready(cluster: &Cluster, ns: &str, pair: &str) -> Option<(bool, String)> {
    let store = cluster.api.store();
    let ri = store.find("mysql-aa.io", "mysqlactiveactives").cloned()?;
    let obj = store.get(&ri, Some(ns), pair).ok()?;
    let ready = obj["status"]["conditions"]
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
async fn watch_pair(cluster: &Cluster, ns: &str, pair: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = String::new();
    loop {
        let pods = pods_of(cluster, ns, pair);
        let mut line = pods.iter().map(describe).collect::<Vec<_>>().join("; ");
        let ready = pair_ready(cluster, ns, pair);
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

fn print_connection(cluster: &Cluster, dir: &Path, ns: &str, pair: &str) {
    let pods = pods_of(cluster, ns, pair);
    let image = pods
        .first()
        .and_then(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_default();
    let client_dir = if image.contains("mariadb") {
        "mariadb"
    } else {
        "mysql"
    };
    let client = dir.join("box/images").join(client_dir).join("bin/mysql");
    let kc = dir.join("kubeconfig");
    println!();
    println!(
        "  kubectl --kubeconfig {} get myaa,pods,svc,endpoints -n {ns}",
        kc.display()
    );
    println!("  # the admin password:");
    println!(
        "  kubectl --kubeconfig {} get secret {pair}-admin -n {ns} -o jsonpath='{{.data.password}}' | base64 -d; echo",
        kc.display()
    );
    for svc in ["writer", "reader"] {
        let store = cluster.api.store();
        let ips: Vec<String> = store
            .find("", "endpoints")
            .cloned()
            .and_then(|ri| store.get(&ri, Some(ns), &format!("{pair}-{svc}")).ok())
            .and_then(|e| e["subsets"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(String::from))
            .collect();
        match ips.first() {
            Some(ip) => println!(
                "  # the {svc} Service ({pair}-{svc}):\n  {} -h {ip} -P 3306 -u mysqlaa_admin -p",
                client.display()
            ),
            None => println!(
                "  # the {svc} Service ({pair}-{svc}) has no endpoints yet (the operator labels the pods)"
            ),
        }
    }
    for p in &pods {
        let ip = p["status"]["podIP"].as_str().unwrap_or("?");
        println!("  # {}:", p["metadata"]["name"].as_str().unwrap_or(""));
        println!("  {} -h {ip} -P 3306 -u mysqlaa_admin -p", client.display());
    }
    println!();
}
