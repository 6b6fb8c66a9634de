//! The self-fencing agent on the real control plane (issue 13, item 2):
//! a writer cut off from the API server and from its peer fences itself
//! (SIGKILL of its server, which restarts fenced) when its Lease runs out,
//! even with no operator acting; a writer cut off from the API server
//! only, whose peer still confirms it, keeps its server and its writes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use mysql_aa_operator::api::MySQLActiveActive;
use mysql_async::prelude::Queryable;
use serde_json::json;

/// The box folder of `pod` as it runs now.
async fn pod_dir(b: &TestBox, pod: &str) -> PathBuf {
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "shop");
    let uid = pods.get(pod).await.unwrap().metadata.uid.unwrap();
    b.cluster
        .root()
        .join("pods")
        .join(format!("shop_{pod}_{}", &uid[..8]))
}

/// The pid in the server's pid file of `pod`.
fn server_pid(dir: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("volumes/run/mysqld.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

async fn renew_time(b: &TestBox, lease: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(b.client.clone(), "shop");
    leases
        .get(lease)
        .await
        .ok()?
        .spec?
        .renew_time
        .map(|t| t.0.to_string())
}

/// A SingleWriter pair with a 4 s window, Ready; returns its name, the
/// writer, the replica, and the writer's pod folder.
async fn ready_pair(
    b: &TestBox,
    engine: &str,
    automatic: bool,
) -> (String, String, String, PathBuf) {
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    b.patch_spec(
        &name,
        json!({"failover": {"detectionWindowSeconds": 4, "automatic": automatic}}),
    )
    .await
    .unwrap();
    let p = b.wait_ready(&name, Duration::from_secs(60)).await;
    let writer = p.status.unwrap().writer.unwrap();
    let replica = if writer.ends_with("-0") {
        format!("{name}-1")
    } else {
        format!("{name}-0")
    };
    // The writer's agent holds the Lease and renews it.
    let lease = format!("{name}-writer");
    let first = eventually(
        "the Lease names the writer",
        Duration::from_secs(30),
        || async {
            let leases: Api<Lease> = Api::namespaced(b.client.clone(), "shop");
            let l = leases.get(&lease).await.ok()?;
            (l.spec.as_ref()?.holder_identity.as_deref() == Some(writer.as_str()))
                .then(|| l.spec?.renew_time.map(|t| t.0.to_string()))
                .flatten()
        },
    )
    .await;
    eventually(
        "the agent renews the Lease",
        Duration::from_secs(10),
        || async { (renew_time(b, &lease).await? != first).then_some(()) },
    )
    .await;
    let dir = pod_dir(b, &writer).await;
    (name, writer, replica, dir)
}

/// Cut off from everything (API server, operator, Services, its peer),
/// with automatic failover off so that only the agent can act: the
/// writer's server is killed by its agent, restarts fenced, and is the
/// writer again once healed.
async fn cut_off_writer_fences_itself(engine: &str) {
    let b = TestBox::start(&format!("selffence-{engine}")).await;
    let (name, writer, _, dir) = ready_pair(&b, engine, false).await;
    let pid = server_pid(&dir).expect("the writer's pid file");
    assert!(alive(pid));
    let faults = b.cluster.faults();
    let ip = pod_ips(&b.client, &name).await;
    let writer_ip = ip[if writer.ends_with("-0") { 0 } else { 1 }].clone();
    faults.isolate(&writer_ip).unwrap();
    eventually(
        "the agent kills the cut-off writer's server",
        Duration::from_secs(30),
        || async { (!alive(pid)).then_some(()) },
    )
    .await;
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
    assert!(
        log.contains("server fenced (SIGKILL)"),
        "the agent says why: {log}"
    );
    // Restarted fenced: read-only until the operator, which cannot reach
    // it, unfences it.
    let pw = b.admin_password(&name).await;
    let restarted = eventually("the server restarts", Duration::from_secs(60), || async {
        server_pid(&dir).filter(|p| *p != pid && alive(*p))
    })
    .await;
    eprintln!("{engine}: server {pid} fenced by its agent, restarted as {restarted}");
    let netns = faults.pod_netns(&writer_ip);
    let client = b_client(b.cluster.root(), engine);
    let read_only = eventually(
        "the restarted server answers",
        Duration::from_secs(60),
        || {
            let (netns, pw, client) = (netns.clone(), pw.clone(), client.clone());
            async move {
                let out = std::process::Command::new("ip")
                    .args(["netns", "exec", &netns])
                    .arg(client)
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-u",
                        "mysqlaa_admin",
                        "-N",
                        "-e",
                        "SELECT @@GLOBAL.read_only",
                    ])
                    .env("MYSQL_PWD", &pw)
                    .output()
                    .ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            }
        },
    )
    .await;
    assert_eq!(read_only, "1", "the restarted writer boots fenced");
    faults.heal(&writer_ip).unwrap();
    let p = b.wait_ready(&name, Duration::from_secs(120)).await;
    assert_eq!(p.status.unwrap().writer.as_deref(), Some(writer.as_str()));
    let mut c = conn(&b.endpoint_ips(&format!("{name}-writer")).await[0], &pw).await;
    c.query_drop("CREATE DATABASE IF NOT EXISTS after_heal")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    b.shutdown().await;
}

/// The box's `mysql` client for `engine`.
fn b_client(root: &std::path::Path, engine: &str) -> PathBuf {
    root.join(format!(
        "images/{}/bin/mysql",
        if engine == "MariaDB" {
            "mariadb"
        } else {
            "mysql"
        }
    ))
}

/// Both pods cut off from the API server (and the operator), for three
/// times the Lease's duration, still reaching each other: the writer's
/// agent cannot renew, its peer confirms it, and the writer keeps its
/// server and takes writes from its side throughout.
async fn api_outage_leaves_a_confirmed_writer(engine: &str) {
    let b = TestBox::start(&format!("apiout-{engine}")).await;
    let (name, writer, replica, dir) = ready_pair(&b, engine, true).await;
    let pid = server_pid(&dir).unwrap();
    let faults = b.cluster.faults();
    let ips = pod_ips(&b.client, &name).await;
    for ip in &ips {
        faults.cut_from_host(ip).unwrap();
    }
    let lease = format!("{name}-writer");
    let frozen = renew_time(&b, &lease).await;
    let pw = b.admin_password(&name).await;
    let writer_ip = ips[if writer.ends_with("-0") { 0 } else { 1 }].clone();
    let netns = faults.pod_netns(&writer_ip);
    let client = b_client(b.cluster.root(), engine);
    let mut committed = 0;
    for i in 0..24 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &netns])
            .arg(&client)
            .args(["-h", "127.0.0.1", "-u", "mysqlaa_admin", "-e"])
            .arg(format!(
                "CREATE DATABASE IF NOT EXISTS outage; CREATE TABLE IF NOT EXISTS outage.t (i INT PRIMARY KEY); INSERT INTO outage.t VALUES ({i})"
            ))
            .env("MYSQL_PWD", &pw)
            .output()
            .unwrap();
        if out.status.success() {
            committed += 1;
        }
    }
    assert_eq!(
        renew_time(&b, &lease).await,
        frozen,
        "no renewal got through during the outage"
    );
    assert!(alive(pid), "the confirmed writer's server was not fenced");
    assert_eq!(committed, 24, "every write on the writer's side committed");
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
    assert!(!log.contains("server fenced"), "{log}");
    // The writer's side first, until the operator sees it again: seen the
    // other way round (the writer unreachable past the window, its Lease
    // expired, the replica reachable), a failover is what the operator
    // must do (CI caught the heal order racing the operator's cycle).
    let replica_ip = ips[if replica.ends_with("-0") { 0 } else { 1 }].clone();
    faults.heal(&writer_ip).unwrap();
    let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    eventually(
        "the operator sees the writer again",
        Duration::from_secs(60),
        || async {
            let st = api.get(&name).await.unwrap().status.unwrap_or_default();
            st.nodes
                .iter()
                .any(|n| n.name == writer && n.reachable)
                .then_some(())
        },
    )
    .await;
    faults.heal(&replica_ip).unwrap();
    let p = b.wait_ready(&name, Duration::from_secs(120)).await;
    assert_eq!(p.status.unwrap().writer.as_deref(), Some(writer.as_str()));
    wait_row(&replica_ip, &pw, "SELECT COUNT(*) FROM outage.t", 24).await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_cut_off_writer_fences_itself() {
    cut_off_writer_fences_itself("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_api_outage_leaves_a_confirmed_writer() {
    api_outage_leaves_a_confirmed_writer("MariaDB").await;
}

/// etcd and kube-apiserver killed and started again, three times: the
/// operator's watches resume, so a later role change is seen once, not
/// written again every cycle from a stale copy (the fault matrix saw the
/// operator relabel both pods and rewrite the writer EndpointSlice every
/// cycle after ten restarts).
async fn the_operator_keeps_watching_across_control_plane_restarts(engine: &str) {
    let mut b = TestBox::start(&format!("cprestart-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    let p = b.wait_ready(&name, Duration::from_secs(240)).await;
    let old = p.status.unwrap().writer.unwrap();
    assert_eq!(b.forbidden(), Vec::<String>::new());
    for _ in 0..3 {
        b.cluster
            .restart_control_plane(&["etcd", "kube-apiserver"])
            .await
            .unwrap();
        b.wait_ready(&name, Duration::from_secs(120)).await;
    }
    let (ok, out) = b.cli(&["switchover", &name, "-n", "shop"]);
    assert!(ok, "switchover failed: {out}\n{}", tail(&b.operator_log()));
    let p = b.wait_ready(&name, Duration::from_secs(120)).await;
    assert_ne!(p.status.unwrap().writer.unwrap(), old);
    let labelled = || async {
        b.operator_series("mysqlaa_steps_total", &["kind=\"RoleLabelled\""])
            .await
            .iter()
            .sum::<f64>()
    };
    let before = labelled().await;
    // While a restarted API server's authorizer has not loaded the RBAC
    // rules yet, it refuses everyone (the audit log shows it): once the
    // pair is Ready again, nothing more is refused.
    let refused = b.forbidden();
    tokio::time::sleep(Duration::from_secs(4 * OBSERVE_SECONDS)).await;
    let after = labelled().await;
    assert_eq!(
        before,
        after,
        "{engine}: the pods were labelled again in a steady state (stale watch)\n{}",
        tail(&b.operator_log())
    );
    assert_eq!(b.forbidden(), refused, "refused after the restarts");
    b.kill_operator_and_shutdown_without_rbac_check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_the_operator_keeps_watching_across_control_plane_restarts() {
    the_operator_keeps_watching_across_control_plane_restarts("MySQL").await;
}
