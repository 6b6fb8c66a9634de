//! Benchmark: how long writes stop when the writer role moves.
//!
//! - Failover: `kill -9` of the writer's server (its node stays down) under a
//!   continuous write load through the writer Service; the figure is the
//!   time from the kill to the first acknowledged write through the Service
//!   (on the survivor), next to the configured detection window.
//! - Switchover (`mysql-aa-operator switchover`) under the same load; the
//!   figure is the longest pause between two acknowledged writes.
//! - Crash and restart in place: `kill -9` of the writer's mysqld, which
//!   its kubelet restarts (a detection window long enough that nothing
//!   fails over); the figures are the time until the new server answers on
//!   the pod's address, from then until it is writable (the operator
//!   unfences it: its part), and until the first acknowledged write through
//!   the writer Service (the readiness probe, the EndpointSlice and
//!   kube-proxy's sync add the data path).
//!
//! Prints min / median / max per engine; asserts nothing about time.
//! Run: `cargo bench --bench roles`. Environment: `ROLES_TRIALS` (default
//! 5), `ROLES_WINDOW_SECONDS` (default 3), `ROLES_ENGINES` (default
//! `MySQL,MariaDB`), `ROLES_PARTS` (default `failover,crash,switchover`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use kube::api::Api;
use mysql_aa_operator::api::MySQLActiveActive;
use serde_json::json;

fn summary(label: &str, mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return format!("{label}: not measured");
    }
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

async fn engine(engine: &str, trials: usize, window: u32, parts: &str) {
    let b = TestBox::start(&format!("bench-roles-{engine}")).await;
    let (name, pw) = b.ready_pair_with_window(engine, u64::from(window)).await;
    let load = WriteLoad::start(&b, &name, &pw).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut failovers = Vec::new();
    for trial in (1..=trials).filter(|_| parts.contains("failover")) {
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

    let (restarts, unfences, resumes) = if parts.contains("crash") {
        crashes(&b, &name, &load, trials, window).await
    } else {
        Default::default()
    };

    let mut switchovers = Vec::new();
    for trial in (1..=trials).filter(|_| parts.contains("switchover")) {
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
    println!(
        "{engine}: {}",
        summary(
            "crash, kill -9 of mysqld -> the restarted server answers",
            restarts
        )
    );
    println!(
        "{engine}: {}",
        summary(
            "crash, the restarted server answers -> writable (the operator unfenced it)",
            unfences
        )
    );
    println!(
        "{engine}: {}",
        summary(
            "crash, the restarted server answers -> first write through the writer Service",
            resumes
        )
    );
    println!("{engine}: {} acknowledged writes over the run", acked.len());
    b.shutdown().await;
}

/// Kills the writer's mysqld `trials` times; returns the restart times,
/// and from each restart the time until the server is writable and until
/// the first write through the Service.
async fn crashes(
    b: &TestBox,
    name: &str,
    load: &WriteLoad,
    trials: usize,
    window: u32,
) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    b.patch_spec(name, json!({"failover": {"detectionWindowSeconds": 60}}))
        .await
        .unwrap();
    b.wait_ready(name, Duration::from_secs(60)).await;
    let pw = b.admin_password(name).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(b.client.clone(), "shop");
    let (mut restarts, mut unfences, mut resumes) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 1..=trials {
        let w = writer(b, name).await;
        let ip = pods.get(&w).await.unwrap().status.unwrap().pod_ip.unwrap();
        let pid = b.cluster.container_pid("shop", &w, "mysqld").await.unwrap();
        let killed = Instant::now();
        assert!(
            std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let deadline = killed + Duration::from_secs(120);
        let answered = loop {
            let new_pid = b.cluster.container_pid("shop", &w, "mysqld").await;
            if new_pid.is_some_and(|p| p != pid)
                && let Ok(Ok(mut c)) = tokio::time::timeout(
                    Duration::from_millis(500),
                    mysql_async::Conn::new(admin_opts(&ip, &pw)),
                )
                .await
                && mysql_async::prelude::Queryable::query_drop(&mut c, "SELECT 1")
                    .await
                    .is_ok()
            {
                break Instant::now();
            }
            assert!(Instant::now() < deadline, "mysqld never came back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let writable = loop {
            if let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_millis(500),
                mysql_async::Conn::new(admin_opts(&ip, &pw)),
            )
            .await
                && let Ok(Some(0u8)) = mysql_async::prelude::Queryable::query_first(
                    &mut c,
                    "SELECT @@GLOBAL.read_only",
                )
                .await
            {
                break Instant::now();
            }
            assert!(Instant::now() < deadline, "{w} was never unfenced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let resumed = loop {
            if let Some(at) = load.first_ack_on(&w, answered.max(killed)) {
                break at;
            }
            assert!(Instant::now() < deadline, "writes never resumed on {w}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(writer(b, name).await, w, "restarted in place, no failover");
        let (restart, unfence, resume) = (
            answered - killed,
            writable.saturating_duration_since(answered),
            resumed.saturating_duration_since(answered),
        );
        eprintln!(
            "crash {trial}: {w}'s mysqld back after {} ms, writable {} ms later, writes through the Service {} ms later",
            restart.as_millis(),
            unfence.as_millis(),
            resume.as_millis()
        );
        restarts.push(restart);
        unfences.push(unfence);
        resumes.push(resume);
        b.wait_ready(name, Duration::from_secs(120)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    b.patch_spec(
        name,
        json!({"failover": {"detectionWindowSeconds": window}}),
    )
    .await
    .unwrap();
    b.wait_ready(name, Duration::from_secs(60)).await;
    (restarts, unfences, resumes)
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
    let parts = std::env::var("ROLES_PARTS").unwrap_or_else(|_| "failover,crash,switchover".into());
    for e in engines.split(',') {
        engine(e.trim(), trials, window, &parts).await;
    }
}
