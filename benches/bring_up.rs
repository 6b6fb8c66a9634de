//! Benchmark: how long a pair takes to become Ready through the operator,
//! next to how long the same two servers need just to initialise and
//! start (the rendered objects applied directly, pods Ready). The ratio is
//! the operator's overhead. Prints figures; asserts nothing about time.
//!
//! Run: `cargo bench --bench bring_up` (root; real servers installed by
//! `scripts/install-test-servers`, Kubernetes by
//! `scripts/install-kubernetes`). `BRING_UP_RUNS` sets the runs per case.
//! Both cases run on the real control plane (scheduler, StatefulSet
//! controller, hostpath provisioner included); the time to start the
//! control plane itself is printed apart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt};
use sandbox::{Cluster, Options};
use serde_json::{Value, json};

const OPERATOR: &str = env!("CARGO_BIN_EXE_mysql-aa-operator");

fn pair(engine: &str) -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pair.yaml"))
        .unwrap();
    let mut p: Value = serde_saphyr::from_str(&text).unwrap();
    p["spec"]["engine"] = json!(engine);
    p["spec"]["image"] = json!(if engine == "MariaDB" {
        "mariadb:11.4"
    } else {
        "mysql:8.4"
    });
    p
}

async fn apply(client: &Client, doc: &Value) {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = doc["kind"].as_str().unwrap();
    let plural = match kind {
        "PodDisruptionBudget" => "poddisruptionbudgets".to_string(),
        "MySQLActiveActive" => "mysqlactiveactives".to_string(),
        "CustomResourceDefinition" => "customresourcedefinitions".to_string(),
        "Namespace" => "namespaces".to_string(),
        k => format!("{}s", k.to_lowercase()),
    };
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural,
    };
    let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
    let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None if kind == "Namespace" || kind == "CustomResourceDefinition" => {
            Api::all_with(client.clone(), &ar)
        }
        None => Api::namespaced_with(client.clone(), "default", &ar),
    };
    api.patch(
        &obj.name_any(),
        &PatchParams::apply("bench"),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

async fn until(limit: Duration, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok().await {
        assert!(start.elapsed() < limit, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

async fn setup(name: &str) -> (Cluster, Client) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!(".cache/boxes/bench-{name}-{}", std::process::id()));
    let cluster = Cluster::start(root, Options::default()).await.unwrap();
    let c = cluster.client();
    apply(
        &c,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    )
    .await;
    (cluster, c)
}

/// The servers alone: rendered objects applied, until both pods are Ready.
async fn servers_only(engine: &str) -> Duration {
    let (cluster, c) = setup("servers").await;
    let input = serde_json::to_string(&pair(engine)).unwrap();
    let mut child = Command::new(OPERATOR)
        .args(["render", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let start = Instant::now();
    for mut doc in docs {
        if doc["kind"] == "Secret" {
            doc["stringData"] = json!({"password": "benchmarkpassword0123456789abcd"});
        }
        apply(&c, &doc).await;
    }
    let pods: Api<Pod> = Api::namespaced(c.clone(), "shop");
    until(Duration::from_secs(300), async || {
        let items = pods.list(&Default::default()).await.unwrap().items;
        items.len() == 2
            && items.iter().all(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
    })
    .await;
    let took = start.elapsed();
    cluster.shutdown().await;
    took
}

/// Through the operator: the resource applied, until Ready=True.
async fn through_operator(engine: &str) -> Duration {
    let (cluster, c) = setup("operator").await;
    let crd: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/mysqlactiveactives.mysql-aa.io.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    apply(&c, &crd).await;
    // Established before the operator looks for it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kubeconfig = cluster.admin_kubeconfig().to_path_buf();
    let mut operator = Command::new(OPERATOR)
        .args([
            "run",
            "--address-mode",
            "pod-ip",
            "--observe-interval-seconds",
            "2",
            "--metrics-address",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = pair(engine);
    p["metadata"]["namespace"] = json!("shop");
    let start = Instant::now();
    apply(&c, &p).await;
    let api: Api<mysql_aa_operator::api::MySQLActiveActive> = Api::namespaced(c.clone(), "shop");
    until(Duration::from_secs(300), async || {
        api.get("orders")
            .await
            .ok()
            .and_then(|p| p.status)
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
    })
    .await;
    let took = start.elapsed();
    let _ = operator.kill();
    let _ = operator.wait();
    cluster.shutdown().await;
    took
}

fn summary(xs: &[Duration]) -> String {
    let secs: Vec<f64> = xs.iter().map(Duration::as_secs_f64).collect();
    let mean = secs.iter().sum::<f64>() / secs.len() as f64;
    let min = secs.iter().cloned().fold(f64::MAX, f64::min);
    let max = secs.iter().cloned().fold(0.0, f64::max);
    format!(
        "mean {mean:6.2}s  min {min:6.2}s  max {max:6.2}s  (n={})",
        secs.len()
    )
}

fn mean(xs: &[Duration]) -> f64 {
    xs.iter().map(Duration::as_secs_f64).sum::<f64>() / xs.len() as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("BRING_UP_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    println!("bring-up benchmark: {runs} run(s) per case, observe interval 2 s, pod-ip addressing");
    for engine in ["MySQL", "MariaDB"] {
        let mut servers = Vec::new();
        let mut operator = Vec::new();
        for _ in 0..runs {
            servers.push(servers_only(engine).await);
            operator.push(through_operator(engine).await);
        }
        println!(
            "{engine:8} servers initialise+start (pods Ready):  {}",
            summary(&servers)
        );
        println!(
            "{engine:8} through the operator (Ready=True):   {}",
            summary(&operator)
        );
        println!(
            "{engine:8} operator overhead: {:+.2}s, ratio {:.2}",
            mean(&operator) - mean(&servers),
            mean(&operator) / mean(&servers)
        );
    }
}
