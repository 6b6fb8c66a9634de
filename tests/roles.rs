//! Moving the writer role and watching the data, in the cluster-in-a-box
//! with the real operator binary and real MySQL 9.7 / MariaDB 10.11 pods:
//! failover under a write load, switchover under a write load (every
//! acknowledged write counted), semi-synchronous durability, conflicts and
//! the divergence check.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use kube::api::Api;
use mysql_aa_operator::api::{MySQLActiveActive, MySQLActiveActiveStatus};
use mysql_async::prelude::Queryable;
use serde_json::json;

async fn status(b: &TestBox, name: &str) -> MySQLActiveActiveStatus {
    let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    api.get(name).await.unwrap().status.unwrap_or_default()
}

/// Waits until `f` holds of the pair's status; returns that status.
async fn wait_status(
    b: &TestBox,
    name: &str,
    limit: Duration,
    what: &str,
    f: impl Fn(&MySQLActiveActiveStatus) -> bool,
) -> MySQLActiveActiveStatus {
    let deadline = Instant::now() + limit;
    loop {
        let st = status(b, name).await;
        if f(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {st:#?}\n{}",
            tail(&b.operator_log())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `Last_SQL_Errno` of the server's replica channel.
async fn applier_errno(c: &mut mysql_async::Conn) -> u64 {
    let rows: Vec<mysql_async::Row> = c.query("SHOW REPLICA STATUS").await.unwrap();
    rows.first()
        .and_then(|r| r.get_opt::<u64, _>("Last_SQL_Errno"))
        .and_then(Result::ok)
        .unwrap_or(0)
}

/// (acknowledged, not acknowledged) semi-synchronous commits of a source.
async fn semi_sync_counts(c: &mut mysql_async::Conn, engine: &str) -> (u64, u64) {
    let role = if engine == "MySQL" {
        "source"
    } else {
        "master"
    };
    let rows: Vec<(String, String)> = c
        .query(format!(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_{role}_yes_tx', 'Rpl_semi_sync_{role}_no_tx')"
        ))
        .await
        .unwrap();
    let get = |suffix: &str| {
        rows.iter()
            .find(|(k, _)| k.ends_with(suffix))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    (get("_yes_tx"), get("_no_tx"))
}

/// Sends `sig` to `pid`; whether it was delivered.
fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success()
}

fn other(name: &str, pod: &str) -> String {
    if pod.ends_with("-0") {
        format!("{name}-1")
    } else {
        format!("{name}-0")
    }
}

async fn writer_failure_fails_over(engine: &str) {
    let b = TestBox::start(&format!("failover-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    b.patch_spec(&name, json!({"failover": {"detectionWindowSeconds": 3}}))
        .await
        .unwrap();
    let p = b.wait_ready(&name, Duration::from_secs(60)).await;
    let old = p.status.unwrap().writer.unwrap();
    let new = other(&name, &old);
    let pw = b.admin_password(&name).await;
    let load = WriteLoad::start(&b, &name, &pw).await;
    let watch = WritableWatch::start(&b.client, &name, &pw);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(load.count() > 0, "the load writes before the failure");
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(b.client.clone(), "shop");
    let old_uid = pods.get(&old).await.unwrap().metadata.uid;
    // kill -9 of the writer's server, and its node stays down.
    let failed_at = Instant::now();
    b.cluster.fail_node("shop", &old).await;
    let st = wait_status(&b, &name, Duration::from_secs(90), "no failover", |s| {
        s.writer.as_deref() == Some(new.as_str()) && s.last_failover.is_some()
    })
    .await;
    let failover = st.last_failover.unwrap();
    let at_failover = load.count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while load.count() <= at_failover {
        assert!(Instant::now() < deadline, "writes did not resume on {new}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{engine}: writer {old} lost; writes resumed on {new} {:.1}s after the failure (lastFailover.durationMillis={} from first detection, window 3s)",
        failed_at.elapsed().as_secs_f64(),
        failover.duration_millis
    );
    assert_eq!(
        (failover.from.as_str(), failover.to.as_str()),
        (old.as_str(), new.as_str())
    );
    assert_eq!(failover.outcome.map(|o| o.as_str()), Some("Succeeded"));
    assert!(!failover.data_loss_accepted);
    // The old writer returns fenced, replicates from the new one, and does
    // not take the role back.
    b.cluster.recover_node("shop", &old).await;
    // The old writer may come back holding the commit that was waiting for
    // its acknowledgement when the node went down (crash recovery keeps it:
    // the SemiSync tail the README documents; about 1 trial in 10). It is
    // errant, never acknowledged, and the pair waits for the user, who
    // re-seeds the node as the runbook says; the acknowledged writes are
    // checked on both nodes below either way.
    if let Some(errant) = b
        .wait_ready_or_errant(&name, Duration::from_secs(120))
        .await
    {
        assert_eq!(errant, old, "only the old writer can come back errant");
        let (discarded, took) = b
            .reseed(&name, &old, Duration::from_secs(300))
            .await
            .expect("the errant old writer is re-seeded");
        eprintln!(
            "{engine}: {old} came back errant ({discarded}); re-seeded, Ready {:.1}s after the request",
            took.as_secs_f64()
        );
    }
    let p = b.wait_ready(&name, Duration::from_secs(120)).await;
    let st = p.status.unwrap();
    assert_eq!(st.writer.as_deref(), Some(new.as_str()));
    let old_node = st.nodes.iter().find(|n| n.name == old).unwrap();
    assert_eq!(old_node.role.map(|r| r.as_str()), Some("Replica"));
    assert_eq!(old_node.read_only, Some(true));
    assert_eq!(
        old_node
            .replication
            .as_ref()
            .map(|r| r.sql_running.as_str()),
        Some("Yes")
    );
    let acked = load.stop().await;
    assert_eq!(watch.stop().await, 0, "two writable nodes were observed");
    // The lost writer's pod was deleted (NodeIsolated) and, once its node
    // was back, recreated.
    assert_ne!(pods.get(&old).await.unwrap().metadata.uid, old_uid);
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(b.client.clone(), "shop");
    let isolated = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("NodeIsolated"))
        .count();
    assert_eq!(isolated, 1, "one NodeIsolated Event");
    // Every acknowledged write is on both nodes (the old writer's pod was
    // recreated: read the addresses again).
    let ips = pod_ips(&b.client, &name).await;
    for ip in &ips {
        assert_all_present(ip, &pw, &acked).await;
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_writer_failure_fails_over() {
    writer_failure_fails_over("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_writer_failure_fails_over() {
    writer_failure_fails_over("MariaDB").await;
}

async fn switchover_under_load(engine: &str) {
    let b = TestBox::start(&format!("switchover-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    let p = b.wait_ready(&name, Duration::from_secs(240)).await;
    let old = p.status.unwrap().writer.unwrap();
    let new = other(&name, &old);
    let pw = b.admin_password(&name).await;
    let ips = pod_ips(&b.client, &name).await;
    let load = WriteLoad::start(&b, &name, &pw).await;
    let watch = WritableWatch::start(&b.client, &name, &pw);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = load.count();
    assert!(before > 0, "the load writes before the switchover");

    // The CLI writes spec.switchover and waits for the outcome.
    let asked = Instant::now();
    let (ok, out) = b.cli(&["switchover", &name, "-n", "shop"]);
    let answered = Instant::now();
    assert!(ok, "switchover failed: {out}\n{}", tail(&b.operator_log()));
    assert!(out.contains("Succeeded"), "{out}");
    let st = status(&b, &name).await;
    assert_eq!(st.writer.as_deref(), Some(new.as_str()));
    let change = st.last_switchover.clone().unwrap();
    assert_eq!(
        (change.from.as_str(), change.to.as_str()),
        (old.as_str(), new.as_str())
    );
    assert!(change.request_id.as_deref().unwrap().starts_with("cli-"));
    // Writes continue on the new writer.
    let at_switch = load.count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while load.count() <= at_switch + 20 {
        assert!(Instant::now() < deadline, "writes did not resume on {new}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = b.wait_ready(&name, Duration::from_secs(60)).await;
    let st = p.status.unwrap();
    let old_node = st.nodes.iter().find(|n| n.name == old).unwrap();
    assert_eq!(old_node.role.map(|r| r.as_str()), Some("Replica"));
    assert_eq!(
        old_node
            .replication
            .as_ref()
            .map(|r| r.sql_running.as_str()),
        Some("Yes"),
        "the old writer replicates from the new one"
    );
    let gap = load.longest_gap(asked, answered + Duration::from_secs(1));
    let acked = load.stop().await;
    assert_eq!(watch.stop().await, 0, "two writable nodes were observed");
    for ip in &ips {
        assert_all_present(ip, &pw, &acked).await;
    }
    eprintln!(
        "{engine}: switchover {old} -> {new}: {} acknowledged writes all present on both nodes; operator duration {} ms; longest write pause {} ms",
        acked.len(),
        change.duration_millis,
        gap.as_millis()
    );

    // The same request again (GitOps re-applying the manifest): nothing moves.
    let spec_before = {
        let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
        api.get(&name).await.unwrap().spec.switchover.unwrap()
    };
    b.patch_spec(
        &name,
        json!({"switchover": {"target": spec_before.target, "requestId": spec_before.request_id}}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(OBSERVE_SECONDS * 2)).await;
    let st = status(&b, &name).await;
    assert_eq!(st.writer.as_deref(), Some(new.as_str()));
    assert_eq!(st.last_switchover, Some(change));

    // A request naming a pod outside the pair is refused; nothing changes.
    let (ok, out) = b.cli(&["switchover", &name, "-n", "shop", "--to", "elsewhere-3"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("Refused") && out.contains("not a pod of this pair"),
        "{out}"
    );
    let st = status(&b, &name).await;
    assert_eq!(st.writer.as_deref(), Some(new.as_str()));

    // And back again, to the original writer.
    let (ok, out) = b.cli(&["switchover", &name, "-n", "shop", "--to", &old]);
    assert!(ok, "{out}");
    b.wait_ready(&name, Duration::from_secs(60)).await;
    assert_eq!(
        status(&b, &name).await.writer.as_deref(),
        Some(old.as_str())
    );

    // Split brain by hand: the replica is made writable behind the
    // operator's back while it is paused, so the watcher (which found no
    // overlap above) must see this one; resumed, the operator fences it.
    b.patch_spec_observed(&name, json!({"paused": true})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let watch = WritableWatch::start(&b.client, &name, &pw);
    let replica_ip = &ips[if new.ends_with("-0") { 0 } else { 1 }];
    let mut r = conn(replica_ip, &pw).await;
    r.query_drop(if engine == "MySQL" {
        "SET GLOBAL super_read_only = OFF"
    } else {
        "SET GLOBAL read_only = OFF"
    })
    .await
    .unwrap();
    r.query_drop("SET GLOBAL read_only = OFF").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while watch.seen() == 0 {
        assert!(
            Instant::now() < deadline,
            "the watcher never saw the two writable nodes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = Instant::now();
    b.patch_spec(&name, json!({"paused": false})).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ro: Option<u8> = r
            .query_first("SELECT @@GLOBAL.read_only")
            .await
            .ok()
            .flatten();
        if ro == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second writer was not fenced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "{engine}: a second writable node was fenced {} ms after the operator resumed (observe interval {OBSERVE_SECONDS} s)",
        resumed.elapsed().as_millis()
    );
    watch.stop().await;
    assert_eq!(
        status(&b, &name).await.writer.as_deref(),
        Some(old.as_str()),
        "the labelled writer keeps the role"
    );
    let reasons = event_reasons(&b.client).await;
    for want in [
        "NodeFenced",
        "WriterCaughtUp",
        "SwitchoverSucceeded",
        "SwitchoverRefused",
    ] {
        assert!(
            reasons.iter().any(|r| r == want),
            "no {want} Event: {reasons:?}"
        );
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_switchover_under_load() {
    switchover_under_load("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_switchover_under_load() {
    switchover_under_load("MariaDB").await;
}

/// `durability: SemiSync` (the SingleWriter default) with the replica
/// frozen: the writer's commits wait (no fallback by itself); after the
/// detection window the replica is recorded stale, then the writer goes on
/// alone; the replica back, it catches up, acknowledges again and the record
/// goes, with an Event saying how long commits ran unacknowledged.
async fn semi_sync_reports_durability(engine: &str) {
    let b = TestBox::start(&format!("semisync-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    b.patch_spec(&name, json!({"failover": {"detectionWindowSeconds": 3}}))
        .await
        .unwrap();
    let st = wait_status(
        &b,
        &name,
        Duration::from_secs(120),
        "semi-sync never acknowledging",
        |s| s.durability.map(|d| d.as_str()) == Some("SemiSynchronous"),
    )
    .await;
    assert!(st.writer_epoch >= 1, "the first election claimed an epoch");
    let writer = st.writer.clone().unwrap();
    let replica = other(&name, &writer);
    let pw = b.admin_password(&name).await;
    let ips = pod_ips(&b.client, &name).await;
    let writer_ip = ips[if writer.ends_with("-0") { 0 } else { 1 }].clone();
    let mut c = conn(&writer_ip, &pw).await;
    c.query_drop("CREATE DATABASE app").await.unwrap();
    c.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO app.t VALUES (0)").await.unwrap();
    let (yes_before, _) = semi_sync_counts(&mut c, engine).await;
    assert!(yes_before > 0, "commits were acknowledged by the replica");
    // The replica's server stops answering (SIGSTOP: its connections stay
    // open, as in a network partition). The next commit waits until the
    // operator has recorded the replica stale and let the writer go on.
    let pid = b
        .cluster
        .container_pid("shop", &replica, "mysqld")
        .await
        .expect("the replica's server runs");
    assert!(signal(pid, "STOP"), "kill -STOP {pid}");
    let started = Instant::now();
    c.query_drop("INSERT INTO app.t VALUES (1)").await.unwrap();
    let held = started.elapsed();
    let st = status(&b, &name).await;
    let stale = st.stale_replica.clone().expect("recorded stale first");
    assert_eq!(stale.node, replica);
    eprintln!(
        "{engine}: with the replica frozen, a commit was held {} ms (detection window 3 s) until {} was recorded stale at epoch {}",
        held.as_millis(),
        stale.node,
        stale.epoch
    );
    assert!(
        held >= Duration::from_secs(2),
        "the commit did not wait for the replica ({held:?})"
    );
    // The writer goes on alone (this would wait for 49 days otherwise).
    c.query_drop("INSERT INTO app.t VALUES (2)").await.unwrap();
    wait_status(
        &b,
        &name,
        Duration::from_secs(30),
        "the fallback not reported",
        |s| s.durability.map(|d| d.as_str()) == Some("AsynchronousFallback"),
    )
    .await;
    // The replica answers again (or, if its liveness probe had it
    // restarted, comes back): it catches up, acknowledges, and is promotable
    // again.
    signal(pid, "CONT");
    let st = wait_status(
        &b,
        &name,
        Duration::from_secs(180),
        "semi-sync not restored",
        |s| {
            s.durability.map(|d| d.as_str()) == Some("SemiSynchronous") && s.stale_replica.is_none()
        },
    )
    .await;
    assert_eq!(st.writer.as_deref(), Some(writer.as_str()), "no failover");
    c.query_drop("INSERT INTO app.t VALUES (3)").await.unwrap();
    c.disconnect().await.unwrap();
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(b.client.clone(), "shop");
    let events = api.list(&Default::default()).await.unwrap().items;
    let notes = |reason: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note.clone())
            .collect()
    };
    assert!(
        notes("ReplicaMarkedStale")
            .iter()
            .any(|n| n.contains(&replica)),
        "{:?}",
        notes("ReplicaMarkedStale")
    );
    assert!(
        notes("ReplicaCaughtUp")
            .iter()
            .any(|n| n.contains("ran without its acknowledgement for")),
        "{:?}",
        notes("ReplicaCaughtUp")
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_semi_sync_reports_durability() {
    semi_sync_reports_durability("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_semi_sync_reports_durability() {
    semi_sync_reports_durability("MariaDB").await;
}

async fn conflicts_and_divergence(engine: &str) {
    let b = TestBox::start(&format!("conflicts-{engine}")).await;
    let (name, _) = b.apply_example("active-active.yaml", engine).await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    b.patch_spec(
        &name,
        json!({"replication": {"applierErrorPolicy": "Halt"}}),
    )
    .await
    .unwrap();
    b.wait_ready(&name, Duration::from_secs(60)).await;
    let pw = b.admin_password(&name).await;
    let ips = pod_ips(&b.client, &name).await;
    let mut c0 = conn(&ips[0], &pw).await;
    let mut c1 = conn(&ips[1], &pw).await;
    c0.query_drop("CREATE DATABASE app").await.unwrap();
    c0.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    c0.query_drop("INSERT INTO app.t VALUES (1, 'same')")
        .await
        .unwrap();
    c0.query_drop("CREATE TABLE app.c (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    wait_row(&ips[1], &pw, "SELECT COUNT(*) FROM app.t", 1).await;
    wait_row(
        &ips[1],
        &pw,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'",
        2,
    )
    .await;

    // A check of a consistent pair.
    let (ok, out) = b.cli(&["check-divergence", &name, "-n", "shop"]);
    assert!(ok, "{out}\n{}", tail(&b.operator_log()));
    assert!(
        out.starts_with("divergence check requested") && out.contains("Consistent"),
        "{out}"
    );
    let report = status(&b, &name).await.divergence.unwrap();
    assert_eq!(report.tables_checked, 2, "{report:?}");

    // Divergence: the same row updated on both sides while replication is
    // stopped (the operator paused so it does not restart it). Row-based
    // replication then swaps the values without an error.
    b.patch_spec_observed(&name, json!({"paused": true})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c0.query_drop("STOP REPLICA").await.unwrap();
    c1.query_drop("STOP REPLICA").await.unwrap();
    c0.query_drop("UPDATE app.t SET v = 'zero' WHERE id = 1")
        .await
        .unwrap();
    c1.query_drop("UPDATE app.t SET v = 'one' WHERE id = 1")
        .await
        .unwrap();
    c0.query_drop("START REPLICA").await.unwrap();
    c1.query_drop("START REPLICA").await.unwrap();
    b.patch_spec(&name, json!({"paused": false})).await.unwrap();
    b.wait_ready(&name, Duration::from_secs(60)).await;
    let (ok, out) = b.cli(&["check-divergence", &name, "-n", "shop"]);
    assert!(!ok, "a diverged pair is reported as a failure: {out}");
    assert!(
        out.contains("Diverged") && out.contains("diverged: app.t"),
        "{out}"
    );
    let st = status(&b, &name).await;
    let report = st.divergence.clone().unwrap();
    assert_eq!(report.diverged_tables, vec!["app.t".to_string()]);
    assert!(report.gtid_set.is_some());
    let cond = st
        .conditions
        .iter()
        .find(|c| c.type_ == "ConflictDetected")
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "TablesDiverged")
    );
    // Repaired by hand, the next check clears it.
    c0.query_drop("SET SESSION sql_log_bin = 0").await.unwrap();
    c0.query_drop("UPDATE app.t SET v = 'same' WHERE id = 1")
        .await
        .unwrap();
    c1.query_drop("SET SESSION sql_log_bin = 0").await.unwrap();
    c1.query_drop("UPDATE app.t SET v = 'same' WHERE id = 1")
        .await
        .unwrap();
    let (ok, out) = b.cli(&["check-divergence", &name, "-n", "shop"]);
    assert!(ok, "{out}");
    let st = status(&b, &name).await;
    assert!(st.divergence.as_ref().unwrap().diverged_tables.is_empty());
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "ConflictDetected" && c.status == "False")
    );
    c0.query_drop("SET SESSION sql_log_bin = 1").await.unwrap();
    c1.query_drop("SET SESSION sql_log_bin = 1").await.unwrap();

    // A conflict: the same key inserted on both sides at the same moment.
    // Each node commits its own row, then its applier meets the peer's
    // (error 1062) and halts.
    let mut injected_at = None;
    for key in 1..=20 {
        c0.query_drop("BEGIN").await.unwrap();
        c1.query_drop("BEGIN").await.unwrap();
        c0.query_drop(format!("INSERT INTO app.c VALUES ({key}, 'zero')"))
            .await
            .unwrap();
        c1.query_drop(format!("INSERT INTO app.c VALUES ({key}, 'one')"))
            .await
            .unwrap();
        let (a, b1) = tokio::join!(c0.query_drop("COMMIT"), c1.query_drop("COMMIT"));
        a.unwrap();
        b1.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let halted = applier_errno(&mut c0).await == 1062 || applier_errno(&mut c1).await == 1062;
        if halted {
            injected_at = Some(Instant::now());
            break;
        }
    }
    let injected_at = injected_at.expect("no conflict arose from 20 concurrent same-key inserts");
    let st = wait_status(
        &b,
        &name,
        Duration::from_secs(30),
        "no ConflictDetected",
        |s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "ConflictDetected" && c.reason == "ApplierHalted")
        },
    )
    .await;
    let seen_after = injected_at.elapsed();
    let cond = st
        .conditions
        .iter()
        .find(|c| c.type_ == "ConflictDetected")
        .unwrap();
    assert!(cond.message.contains("error 1062"), "{}", cond.message);
    let gtid_like = if engine == "MySQL" {
        cond.message.contains(" stopped on ")
            && cond
                .message
                .split(" stopped on ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .contains(':')
    } else {
        cond.message
            .split(" stopped on ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .split('-')
            .count()
            == 3
    };
    assert!(gtid_like, "the message names the GTID: {}", cond.message);
    eprintln!(
        "{engine}: conflict reported {} ms after the applier halted (observe interval {} s): {}",
        seen_after.as_millis(),
        OBSERVE_SECONDS,
        cond.message
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_conflicts_and_divergence() {
    conflicts_and_divergence("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_conflicts_and_divergence() {
    conflicts_and_divergence("MariaDB").await;
}

async fn errant_candidate_is_not_promoted(engine: &str) {
    let b = TestBox::start(&format!("errant-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    b.patch_spec(&name, json!({"failover": {"detectionWindowSeconds": 3}}))
        .await
        .unwrap();
    let p = b.wait_ready(&name, Duration::from_secs(60)).await;
    let writer = p.status.unwrap().writer.unwrap();
    let pw = b.admin_password(&name).await;
    let ips = pod_ips(&b.client, &name).await;
    let (wi, ri) = if writer.ends_with("-0") {
        (0, 1)
    } else {
        (1, 0)
    };
    let mut w = conn(&ips[wi], &pw).await;
    w.query_drop("CREATE DATABASE app").await.unwrap();
    w.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    wait_row(
        &ips[ri],
        &pw,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'",
        1,
    )
    .await;
    // Around the operator (paused): the writer stops pulling from the
    // replica, and someone writes on the replica. The writer never gets it.
    b.patch_spec_observed(&name, json!({"paused": true})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.query_drop("STOP REPLICA").await.unwrap();
    let mut r = conn(&ips[ri], &pw).await;
    let off = if engine == "MySQL" {
        "SET GLOBAL super_read_only = OFF"
    } else {
        "SET GLOBAL read_only = OFF"
    };
    r.query_drop(off).await.unwrap();
    r.query_drop("INSERT INTO app.t VALUES (42)").await.unwrap();
    r.query_drop("SET GLOBAL read_only = ON").await.unwrap();
    if engine == "MySQL" {
        r.query_drop("SET GLOBAL super_read_only = ON")
            .await
            .unwrap();
    }
    r.disconnect().await.unwrap();
    w.disconnect().await.unwrap();
    // The writer dies; the operator resumes. The replica has a transaction
    // the writer never had: it must not be promoted.
    b.cluster.fail_node("shop", &writer).await;
    b.patch_spec(&name, json!({"paused": false})).await.unwrap();
    let st = wait_status(&b, &name, Duration::from_secs(60), "no refusal", |s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == "NoWriter" && c.message.contains("errant"))
    })
    .await;
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    eprintln!("{engine}: {}", ready.message);
    assert!(
        ready.message.contains(&format!("ordinal {ri}")),
        "{}",
        ready.message
    );
    tokio::time::sleep(Duration::from_secs(OBSERVE_SECONDS * 3)).await;
    let st = status(&b, &name).await;
    assert_eq!(
        st.writer.as_deref(),
        Some(writer.as_str()),
        "no failover happened"
    );
    assert!(st.last_failover.is_none());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_errant_candidate_is_not_promoted() {
    errant_candidate_is_not_promoted("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_errant_candidate_is_not_promoted() {
    errant_candidate_is_not_promoted("MariaDB").await;
}

async fn config_change_rolls_without_losing_writes(engine: &str) {
    let b = TestBox::start(&format!("rolling-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    let p = b.wait_ready(&name, Duration::from_secs(240)).await;
    let old = p.status.unwrap().writer.unwrap();
    let pw = b.admin_password(&name).await;
    let load = WriteLoad::start(&b, &name, &pw).await;
    let watch = WritableWatch::start(&b.client, &name, &pw);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    b.patch_spec(&name, json!({"mysqldConfig": {"max_connections": "321"}}))
        .await
        .unwrap();
    // Both servers end up on the new my.cnf, the pair Ready again.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ips = current_pod_ips(&b.client, &name).await;
        let mut applied = 0;
        for ip in &ips {
            if let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(2),
                mysql_async::Conn::new(admin_opts(ip, &pw)),
            )
            .await
            {
                let v: Option<u64> = c
                    .query_first("SELECT @@GLOBAL.max_connections")
                    .await
                    .ok()
                    .flatten();
                applied += usize::from(v == Some(321));
                let _ = c.disconnect().await;
            }
        }
        if applied == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new configuration did not reach both servers\n{}",
            tail(&b.operator_log())
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let p = b.wait_ready(&name, Duration::from_secs(120)).await;
    let rolled = started.elapsed();
    let st = p.status.unwrap();
    let change = st
        .last_switchover
        .clone()
        .expect("the writer moved off the outdated node");
    assert!(change.reason.contains("rolling update"), "{change:?}");
    assert_eq!(change.from, old);
    assert_eq!(st.writer.as_deref(), Some(change.to.as_str()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gap = load.longest_gap(started, Instant::now());
    let acked = load.stop().await;
    assert_eq!(watch.stop().await, 0, "two writable nodes were observed");
    for ip in &pod_ips(&b.client, &name).await {
        assert_all_present(ip, &pw, &acked).await;
    }
    eprintln!(
        "{engine}: a my.cnf change rolled both servers in {:.1}s under load: replica restarted, writer moved {} -> {}, old writer restarted; {} acknowledged writes all present; longest write pause {} ms",
        rolled.as_secs_f64(),
        change.from,
        change.to,
        acked.len(),
        gap.as_millis()
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_config_change_rolls_without_losing_writes() {
    config_change_rolls_without_losing_writes("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_config_change_rolls_without_losing_writes() {
    config_change_rolls_without_losing_writes("MariaDB").await;
}
