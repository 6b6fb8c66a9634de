//! Benchmark: how long writes stop when the writer role moves.
//!
//! - Failover: `kill -9` of the writer's server (its node stays down) under a
//!   continuous write load through the writer Service; the figure is the
//!   time from the kill to the first acknowledged write through the Service
//!   (on the survivor), next to the configured detection window.
//! - Switchover (`mysql-aa-operator switchover`) under the same load; the
//!   figure is the longest pause between two acknowledged writes.
//!
//! Prints min / median / max per engine; asserts nothing about time.
//! Run: `cargo bench --bench roles`. Environment: `ROLES_TRIALS` (default
//! 5), `ROLES_WINDOW_SECONDS` (default 3), `ROLES_ENGINES` (default
//! `MySQL,MariaDB`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use kube::api::Api;
use mysql_aa_operator::api::MySQLActiveActive;
use serde_json::json;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn summary(label: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_millis();
    format!(
        "{label}: n={} min={} ms median={} ms max={} ms",
        v.len(),
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    )
}

async fn writer(b: &TestBox, name: &str) -> String {
    let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    api.get(name).await.unwrap().status.unwrap().writer.unwrap()
}

async fn engine(engine: &str, trials: usize, window: u32) {
    let b = TestBox::start(&format!("bench-roles-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    b.wait_ready(&name, Duration::from_secs(300)).await;
    b.patch_spec(
        &name,
        json!({"failover": {"detectionWindowSeconds": window}}),
    )
    .await
    .unwrap();
    b.wait_ready(&name, Duration::from_secs(60)).await;
    let pw = b.admin_password(&name).await;
    let load = WriteLoad::start(&b, &name, &pw).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut failovers = Vec::new();
    for trial in 1..=trials {
        let old = writer(&b, &name).await;
        let survivor = format!("{name}-{}", if old.ends_with("-0") { 1 } else { 0 });
        let killed = Instant::now();
        b.cluster.fail_node("shop", &old).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        let resumed = loop {
            if let Some(at) = load.first_ack_on(&survivor, killed) {
                break at;
            }
            assert!(Instant::now() < deadline, "writes never resumed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let took = resumed - killed;
        eprintln!(
            "{engine} failover {trial}: writer {old} killed; writes resumed after {} ms",
            took.as_millis()
        );
        failovers.push(took);
        b.cluster.recover_node("shop", &old).await;
        b.wait_ready(&name, Duration::from_secs(180)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let mut switchovers = Vec::new();
    for trial in 1..=trials {
        let asked = Instant::now();
        let (ok, out) = b.cli(&["switchover", &name, "-n", "shop"]);
        assert!(ok, "{out}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let gap = load.longest_gap(asked, Instant::now());
        eprintln!(
            "{engine} switchover {trial}: {} ; longest write pause {} ms",
            out.lines().last().unwrap_or_default(),
            gap.as_millis()
        );
        switchovers.push(gap);
        b.wait_ready(&name, Duration::from_secs(60)).await;
    }
    let acked = load.stop().await;
    println!(
        "{engine}: {} (detection window {window} s)",
        summary(
            "failover, kill -9 -> first write through the writer Service",
            failovers
        )
    );
    println!(
        "{engine}: {}",
        summary("switchover, longest write pause", switchovers)
    );
    println!("{engine}: {} acknowledged writes over the run", acked.len());
    b.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // we need. Run only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let trials = env_or("ROLES_TRIALS", 5usize);
    let window = env_or("ROLES_WINDOW_SECONDS", 3u32);
    let engines = std::env::var("ROLES_ENGINES").unwrap_or_else(|_| "MySQL,MariaDB".into());
    for e in engines.split(',') {
        engine(e.trim(), trials, window).await;
    }
}
