//! The re-seed on the real control plane (issue 14): a replica that lost
//! its disk (its PVC and pod deleted: the StatefulSet recreates both, the
//! new volume empty) cannot catch up from a writer that purged its binary
//! logs; the operator copies the writer's data into it (MySQL's clone
//! plugin), the node restarts on the copy and the pair comes back Ready by
//! itself, with every acknowledged write on both nodes and no table
//! diverged, under a continuous write load. Then a re-seed on request
//! (`mysql-aa-operator reseed`), refused for the writer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::time::{Duration, Instant};

use common::*;
use kube::api::Api;
use mysql_aa_operator::api::{DivergenceResult, MySQLActiveActive, SeedPhase};
use mysql_async::prelude::Queryable;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_replica_that_lost_its_disk_is_reseeded_from_the_writer() {
    let b = TestBox::start("reseed").await;
    let (name, _) = b.apply_example("pair.yaml", "MySQL").await;
    let ready = b.wait_ready(&name, Duration::from_secs(300)).await;
    let writer = ready.status.as_ref().unwrap().writer.clone().unwrap();
    let replica = if writer.ends_with("-0") {
        format!("{name}-1")
    } else {
        format!("{name}-0")
    };
    let pw = b.admin_password(&name).await;
    let load = WriteLoad::start(&b, &name, &pw).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The replica's disk is lost.
    let t = Instant::now();
    b.kubectl(&[
        "delete",
        "pvc",
        &format!("data-{replica}"),
        "-n",
        "shop",
        "--wait=false",
    ]);
    b.kubectl(&["delete", "pod", &replica, "-n", "shop"]);
    // The writer keeps only a fresh binary log: a node starting from
    // nothing can no longer catch up by replication. (Purged once the old
    // replica's dump thread is gone: a log being read is not purged.)
    let writer_ip = b.endpoint_ips(&format!("{name}-writer")).await[0].clone();
    eventually(
        "the writer's binary logs purged",
        Duration::from_secs(30),
        || async {
            let mut w = conn(&writer_ip, &pw).await;
            w.query_drop("FLUSH BINARY LOGS").await.unwrap();
            w.query_drop("PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 DAY")
                .await
                .unwrap();
            let logs: Vec<mysql_async::Row> = w.query("SHOW BINARY LOGS").await.unwrap();
            w.disconnect().await.unwrap();
            (logs.len() == 1).then_some(())
        },
    )
    .await;
    let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    let seed = eventually(
        "the replica is re-seeded from the writer",
        Duration::from_secs(400),
        || async {
            let p = api.get(&name).await.unwrap();
            let seed = p.status?.seed?;
            assert_ne!(
                seed.phase,
                SeedPhase::Failed,
                "{seed:?}\n{}",
                tail(&b.operator_log())
            );
            (seed.phase == SeedPhase::Finished).then_some(seed)
        },
    )
    .await;
    eprintln!(
        "re-seeded in {:.1} s after the disk was lost: {seed:?}",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        (seed.node.as_str(), seed.donor.as_str()),
        (replica.as_str(), writer.as_str())
    );
    assert_eq!(seed.reason, "SourcePurgedLogs");
    assert!(
        seed.bytes_total > 0 && seed.bytes_done == seed.bytes_total,
        "{seed:?}"
    );
    let p = b.wait_ready(&name, Duration::from_secs(120)).await;
    assert_eq!(
        p.status.as_ref().unwrap().writer.as_deref(),
        Some(writer.as_str()),
        "the writer is untouched"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.stop().await;
    assert!(acked.len() > 20, "the load ran: {}", acked.len());
    for ip in pod_ips(&b.client, &name).await {
        assert_all_present(&ip, &pw, &acked).await;
    }
    // The node keeps its own identity: server_id and offset from its
    // my.cnf, a server_uuid of its own.
    let nodes = &p.status.as_ref().unwrap().nodes;
    assert_ne!(nodes[0].server_uuid, nodes[1].server_uuid, "{nodes:?}");
    assert_eq!(
        nodes
            .iter()
            .map(|n| n.auto_increment_offset)
            .collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    // A re-seed on request (`mysql-aa-operator reseed`), of the replica;
    // refused for the writer, changing nothing.
    let (ok, out) = b.cli(&["reseed", &name, "-n", "shop", "--node", &writer]);
    assert!(
        !ok && out.contains("Refused") && out.contains("never re-seeded"),
        "{out}"
    );
    let t = Instant::now();
    let (ok, out) = b.cli(&["reseed", &name, "-n", "shop", "--node", &replica]);
    assert!(ok && out.contains("Finished"), "{out}");
    eprintln!(
        "requested re-seed: {:.1} s: {out}",
        t.elapsed().as_secs_f64()
    );
    let p = b.wait_ready(&name, Duration::from_secs(120)).await;
    let status = p.status.unwrap();
    assert_eq!(status.writer.as_deref(), Some(writer.as_str()));
    assert_eq!(
        status.seed.as_ref().map(|s| (s.reason.as_str(), s.phase)),
        Some(("Requested", SeedPhase::Finished))
    );
    assert_eq!(
        status.answered_reseed_request,
        status.seed.and_then(|s| s.request_id)
    );
    for ip in pod_ips(&b.client, &name).await {
        assert_all_present(&ip, &pw, &acked).await;
    }
    // Both nodes hold the same data, table by table.
    b.patch_spec(
        &name,
        json!({"divergenceCheck": {"requestId": "after-reseed"}}),
    )
    .await
    .unwrap();
    let report = eventually("a divergence check", Duration::from_secs(120), || async {
        let d = api.get(&name).await.unwrap().status?.divergence?;
        (d.request_id.as_deref() == Some("after-reseed")).then_some(d)
    })
    .await;
    assert_eq!(report.result, DivergenceResult::Consistent, "{report:?}");
    let reasons = event_reasons(&b.client).await;
    for want in ["SeedStarted", "SeedFinished"] {
        assert!(
            reasons.iter().any(|r| r == want),
            "no {want} Event: {reasons:?}"
        );
    }
    // Started and finished.
    assert!(b.operator_metric("mysqlaa_seeds_total").await >= 2.0);
    b.shutdown().await;
}
