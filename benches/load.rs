//! Benchmark: what the operator costs the API server and the machine.
//!
//! - Load: one MultiWriter pair (observe interval 2 s), 30 s idle, then
//!   30 s under a continuous insert load on both nodes; per minute:
//!   reconciles, pair loop cycles, status writes, and the operator's API
//!   requests (reads and writes, from the API server's audit log; the
//!   leader-election Lease apart).
//! - Scale: 1, 5 and 10 SingleWriter pairs (servers with a 32 MB buffer pool
//!   and no performance schema); once all are Ready and settled, over a
//!   minute: the operator's RSS, CPU, API requests, reconciles and loop
//!   cycles per minute.
//!
//! Prints tables; asserts nothing about time or rates. Run: `cargo bench
//! --bench load`. Environment: `LOAD_ENGINE` (default `MySQL`),
//! `LOAD_SECONDS` (default 30), `SCALE_SIZES` (default `1,5,10`),
//! `SCALE_SECONDS` (default 60).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kube::api::{Api, Patch, PatchParams};
use mysql_aa_operator::api::MySQLActiveActive;
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

/// What the operator had done by one instant.
struct Snap {
    at: Instant,
    reconciles: f64,
    cycles: f64,
    status_writes: f64,
    api_reads: usize,
    api_writes: usize,
    cpu_ticks: u64,
    rss_kib: u64,
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

async fn snap(b: &TestBox) -> Snap {
    let events = b.cluster.audit_events();
    let ours = events
        .iter()
        .filter(|e| e.user == OPERATOR_USER && e.resource != "leases");
    let (reads, writes) = ours.fold(
        (0, 0),
        |(r, w), e| {
            if e.is_write() { (r, w + 1) } else { (r + 1, w) }
        },
    );
    let (cpu_ticks, rss_kib) = proc_stat(b.operator.as_ref().unwrap().id());
    Snap {
        at: Instant::now(),
        reconciles: b.operator_metric("mysqlaa_reconciles_total").await,
        cycles: b.operator_metric("mysqlaa_pair_loop_cycles_total").await,
        status_writes: b.operator_metric("mysqlaa_status_writes_total").await,
        api_reads: reads,
        api_writes: writes,
        cpu_ticks,
        rss_kib,
    }
}

/// Per-minute rates between two snapshots: reconciles, cycles, status
/// writes, API reads, API writes, CPU (percent of one core).
fn rates(a: &Snap, z: &Snap) -> [f64; 6] {
    let minutes = (z.at - a.at).as_secs_f64() / 60.0;
    let seconds = (z.at - a.at).as_secs_f64();
    [
        (z.reconciles - a.reconciles) / minutes,
        (z.cycles - a.cycles) / minutes,
        (z.status_writes - a.status_writes) / minutes,
        (z.api_reads - a.api_reads) as f64 / minutes,
        (z.api_writes - a.api_writes) as f64 / minutes,
        (z.cpu_ticks - a.cpu_ticks) as f64 / 100.0 / seconds * 100.0,
    ]
}

/// Applies a pair named `name` from `examples/pair.yaml` with small servers.
async fn apply_pair(b: &TestBox, name: &str, engine: &str, mode: &str) {
    let text =
        std::fs::read_to_string(format!("{}/examples/pair.yaml", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut pair: Value = serde_saphyr::from_str(&text).unwrap();
    pair["metadata"]["name"] = json!(name);
    pair["metadata"]["namespace"] = json!("shop");
    pair["spec"]["engine"] = json!(engine);
    pair["spec"]["image"] = json!(if engine == "MariaDB" {
        "mariadb:11.4"
    } else {
        "mysql:8.4"
    });
    pair["spec"]["writeMode"] = json!(mode);
    pair["spec"]["resources"] = json!({"requests": {"cpu": "50m", "memory": "128Mi"}});
    pair["spec"]["mysqldConfig"] = json!({
        "innodb_buffer_pool_size": "32M",
        "performance_schema": "OFF",
        "max_connections": "50"
    });
    let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    api.patch(name, &PatchParams::apply("bench"), &Patch::Apply(&pair))
        .await
        .unwrap();
}

/// Inserts as fast as one connection per node allows until stopped.
fn insert_load(ips: Vec<String>, pw: String, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) {
    for ip in ips {
        let (pw, stop, count) = (pw.clone(), stop.clone(), count.clone());
        tokio::spawn(async move {
            let mut c = conn(&ip, &pw).await;
            c.query_drop("CREATE DATABASE IF NOT EXISTS bench")
                .await
                .unwrap();
            c.query_drop(
                "CREATE TABLE IF NOT EXISTS bench.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)",
            )
            .await
            .unwrap();
            while !stop.load(Ordering::SeqCst) {
                if c.query_drop("INSERT INTO bench.t (v) VALUES (1)")
                    .await
                    .is_ok()
                {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
}

async fn load(engine: &str, seconds: u64) {
    let b = TestBox::start(&format!("bench-load-{engine}")).await;
    apply_pair(&b, "sessions", engine, "MultiWriter").await;
    b.wait_ready("sessions", Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pw = b.admin_password("sessions").await;
    let idle0 = snap(&b).await;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let idle1 = snap(&b).await;
    let (stop, count) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    insert_load(
        b.endpoint_ips("sessions-writer").await,
        pw,
        stop.clone(),
        count.clone(),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (load0, n0) = (snap(&b).await, count.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (load1, n1) = (snap(&b).await, count.load(Ordering::SeqCst));
    stop.store(true, Ordering::SeqCst);
    let inserts = (n1 - n0) as f64 / (load1.at - load0.at).as_secs_f64();
    println!("{engine}: one MultiWriter pair, observe interval {OBSERVE_SECONDS} s, per minute:");
    println!(
        "| phase | reconciles | loop cycles | status writes | API reads | API writes | CPU % |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (phase, r) in [
        ("idle".to_string(), rates(&idle0, &idle1)),
        (format!("{inserts:.0} inserts/s"), rates(&load0, &load1)),
    ] {
        println!(
            "| {phase} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
    }
    b.shutdown().await;
}

async fn scale(engine: &str, sizes: &[usize], seconds: u64) {
    let b = TestBox::start(&format!("bench-scale-{engine}")).await;
    let mut rows = Vec::new();
    let mut applied = 0;
    for &n in sizes {
        let started = Instant::now();
        for i in applied..n {
            apply_pair(&b, &format!("p{i}"), engine, "SingleWriter").await;
        }
        for i in 0..n {
            b.wait_ready(&format!("p{i}"), Duration::from_secs(900))
                .await;
        }
        let ready_in = started.elapsed();
        applied = n;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let a = snap(&b).await;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let z = snap(&b).await;
        rows.push((n, ready_in, rates(&a, &z), z.rss_kib));
    }
    println!(
        "{engine}: settled SingleWriter pairs, observe interval {OBSERVE_SECONDS} s, per minute:"
    );
    println!(
        "| pairs | Ready after | operator RSS | CPU % | API reads | API writes | reconciles | loop cycles |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (n, ready_in, r, rss) in rows {
        println!(
            "| {n} | {:.0} s | {:.1} MiB | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
            ready_in.as_secs_f64(),
            rss as f64 / 1024.0,
            r[5],
            r[3],
            r[4],
            r[0],
            r[1]
        );
    }
    b.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let engine = std::env::var("LOAD_ENGINE").unwrap_or_else(|_| "MySQL".into());
    load(&engine, env_or("LOAD_SECONDS", 30)).await;
    let sizes: Vec<usize> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "1,5,10".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    scale(&engine, &sizes, env_or("SCALE_SECONDS", 60)).await;
}
