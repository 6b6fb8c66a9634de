//! The whole system in the cluster-in-a-box: the real operator binary
//! against the real Kubernetes control plane, pods running real MySQL 9.7 /
//! MariaDB 10.11 on the virtual kubelet's nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use mysql_aa_operator::api::MySQLActiveActive;
use mysql_async::prelude::Queryable;
use sandbox::{Cluster, Options};
use serde_json::{Value, json};

async fn single_writer_pair(engine: &str) {
    let b = TestBox::start(&format!("sw-{engine}")).await;
    let t = Instant::now();
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    let pair = b.wait_ready(&name, Duration::from_secs(240)).await;
    eprintln!(
        "{engine} SingleWriter: Ready {:.1}s after apply",
        t.elapsed().as_secs_f64()
    );
    let st = pair.status.clone().unwrap();
    let writer = st.writer.clone().expect("a writer");
    assert_eq!(
        st.engine.as_deref(),
        Some(if engine == "MariaDB" {
            "MariaDB"
        } else {
            "MySQL"
        })
    );
    assert_eq!(st.nodes.len(), 2);
    for (i, n) in st.nodes.iter().enumerate() {
        assert!(n.reachable);
        assert_eq!(n.server_id, Some(1000 + i as u32));
        assert_eq!(n.auto_increment_offset, Some(i as u32 + 1));
        let r = n.replication.as_ref().expect("replicating");
        assert_eq!(
            (r.io_running.as_str(), r.sql_running.as_str()),
            ("Yes", "Yes")
        );
        assert_eq!(
            n.role.map(|r| r.as_str()),
            Some(if n.name == writer {
                "Writer"
            } else {
                "Replica"
            })
        );
    }
    for cond in ["Replicating", "WriterAvailable"] {
        assert!(
            st.conditions.iter().any(|c| c.type_ == cond
                && c.status == "True"
                && c.observed_generation == pair.metadata.generation),
            "{cond}"
        );
    }
    assert!(st.lag_seconds.is_some());
    // A row written through the writer Service's address is read on the other node.
    let pw = b.admin_password(&name).await;
    let writer_ips = b.endpoint_ips(&format!("{name}-writer")).await;
    let reader_ips = b.endpoint_ips(&format!("{name}-reader")).await;
    assert_eq!(writer_ips.len(), 1, "the writer Service selects one pod");
    assert_eq!(reader_ips.len(), 1);
    assert_ne!(writer_ips, reader_ips);
    let mut w = conn(&writer_ips[0], &pw).await;
    w.query_drop("CREATE DATABASE app").await.unwrap();
    w.query_drop("CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    w.query_drop("INSERT INTO app.t (v) VALUES ('through the writer service')")
        .await
        .unwrap();
    w.disconnect().await.unwrap();
    wait_row(
        &reader_ips[0],
        &pw,
        "SELECT COUNT(*) FROM app.t WHERE v = 'through the writer service'",
        1,
    )
    .await;
    // The replica refuses writes.
    let mut r = conn(&reader_ips[0], &pw).await;
    let read_only: Option<u8> = r.query_first("SELECT @@GLOBAL.read_only").await.unwrap();
    assert_eq!(read_only, Some(1), "the replica is read-only");
    if engine == "MySQL" {
        // super_read_only refuses even the operator's own account.
        match r.query_drop("INSERT INTO app.t (v) VALUES ('x')").await {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1290),
            other => panic!("the replica took a write: {other:?}"),
        }
    }
    r.disconnect().await.unwrap();
    // Steady state: no write requests from the operator over three observe
    // cycles, once status has caught up with the writes above. When only
    // GTID positions move, status is written at most once a minute
    // (pairloop::record::REFRESH): right after that write, a quiet window.
    let mut w = conn(&writer_ips[0], &pw).await;
    let gtid_query = if engine == "MariaDB" {
        "SELECT @@GLOBAL.gtid_current_pos"
    } else {
        "SELECT @@GLOBAL.gtid_executed"
    };
    let executed: String = w.query_first(gtid_query).await.unwrap().unwrap_or_default();
    w.disconnect().await.unwrap();
    let executed = executed.replace('\n', "");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let p = b.wait_ready(&name, Duration::from_secs(30)).await;
        let nodes = p.status.unwrap().nodes;
        if nodes
            .iter()
            .all(|n| n.executed_gtid_set.as_deref() == Some(executed.as_str()))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never caught up with {executed}: {nodes:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cycles_before = b.operator_metric("mysqlaa_pair_loop_cycles_total").await;
    tokio::time::sleep(Duration::from_secs(OBSERVE_SECONDS)).await;
    let before = b.cluster.audit_events().len();
    tokio::time::sleep(Duration::from_secs(OBSERVE_SECONDS * 3 + 1)).await;
    let after: Vec<_> = b.cluster.audit_events()[before..].to_vec();
    let reads = after
        .iter()
        .filter(|r| r.user == OPERATOR_USER && !r.is_write())
        .count();
    let writes: Vec<_> = after
        .iter()
        .filter(|r| r.user == OPERATOR_USER && r.is_write() && r.resource != "leases")
        .collect();
    let cycles = b.operator_metric("mysqlaa_pair_loop_cycles_total").await - cycles_before;
    assert!(
        cycles >= 3.0,
        "the operator kept observing: {cycles} pair loop cycles"
    );
    if !writes.is_empty() {
        let p = Api::<MySQLActiveActive>::namespaced(b.client.clone(), "shop")
            .get(&name)
            .await
            .unwrap();
        panic!(
            "steady state made writes: {writes:#?}\nstatus now: {:#?}",
            p.status
        );
    }
    eprintln!(
        "{engine}: steady state over {}s: {cycles} observations, {reads} API reads, 0 writes",
        OBSERVE_SECONDS * 3 + 1
    );
    // What the chart's alerts read (issue 15): a healthy SingleWriter pair.
    let pair_label = format!("pair=\"{name}\"");
    let text = b.operator_metrics_text().await;
    let series = |metric: &str, extra: &str| -> Vec<f64> {
        common::series_values(&text, metric, &[&pair_label, extra])
    };
    for (metric, extra, want) in [
        ("mysqlaa_pair_condition", "condition=\"Ready\"", vec![1.0]),
        (
            "mysqlaa_pair_condition",
            "condition=\"WriterAvailable\"",
            vec![1.0],
        ),
        (
            "mysqlaa_pair_condition",
            "condition=\"ConflictDetected\"",
            vec![0.0],
        ),
        ("mysqlaa_pair_condition", "condition=\"Lagging\"", vec![0.0]),
        ("mysqlaa_pair_writable_nodes", "", vec![1.0]),
        ("mysqlaa_pair_writers_allowed", "", vec![1.0]),
        (
            "mysqlaa_pair_durability",
            "durability=\"SemiSynchronous\"",
            vec![1.0],
        ),
        (
            "mysqlaa_pair_durability",
            "durability=\"AsynchronousFallback\"",
            vec![0.0],
        ),
        ("mysqlaa_errant_transactions", "", vec![0.0, 0.0]),
        ("mysqlaa_failovers_total", "kind=\"promoted\"", vec![0.0]),
        ("mysqlaa_skipped_transactions_total", "", vec![0.0, 0.0]),
        ("mysqlaa_replication_lag_threshold_seconds", "", vec![30.0]),
    ] {
        assert_eq!(series(metric, extra), want, "{metric} {extra}");
    }
    let writer_node = format!("node=\"{writer}\"");
    assert_eq!(series("mysqlaa_node_writer", &writer_node), [1.0]);
    let mut writers = series("mysqlaa_node_writer", "");
    writers.sort_by(f64::total_cmp);
    assert_eq!(writers, [0.0, 1.0], "one writer");
    let observed = series("mysqlaa_pair_last_observed_timestamp_seconds", "");
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!(
        observed.len() == 1 && now - observed[0] < 30.0,
        "last observed {observed:?}, now {now}"
    );
    read_lag_bound(&b, &name, &writer, &writer_ips[0], &reader_ips[0], &pw).await;
    b.shutdown().await;
}

/// Issue 15: with `replication.maxReadLagSeconds` set on a running pair, a
/// replica whose applier is held behind a lock (its lag growing under
/// writes) leaves the reader Service, labelled `lagging`, and returns once
/// it has caught up. Prints how long each took.
async fn read_lag_bound(
    b: &TestBox,
    name: &str,
    writer: &str,
    writer_ip: &str,
    replica_ip: &str,
    pw: &str,
) {
    const MAX: u64 = 3;
    b.patch_spec_observed(name, json!({"replication": {"maxReadLagSeconds": MAX}}))
        .await;
    let replica = if writer.ends_with("-0") {
        format!("{name}-1")
    } else {
        format!("{name}-0")
    };
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "shop");
    let label = || async { pods.get(&replica).await.unwrap().labels()["mysql-aa.io/role"].clone() };
    let reader = format!("{name}-reader");
    assert_eq!(b.endpoint_ips(&reader).await, [replica_ip]);
    // Hold the replica's applier behind a lock while the writer takes writes.
    let mut lock = conn(replica_ip, pw).await;
    lock.query_drop("LOCK TABLES app.t READ").await.unwrap();
    let held = Instant::now();
    let mut w = conn(writer_ip, pw).await;
    let mut out_after = None;
    while out_after.is_none() {
        w.query_drop("INSERT INTO app.t (v) VALUES ('while the replica is held')")
            .await
            .unwrap();
        if b.endpoint_ips(&reader).await.is_empty() {
            assert_eq!(label().await, "lagging");
            out_after = Some(held.elapsed());
        }
        assert!(
            held.elapsed() < Duration::from_secs(60),
            "the held replica never left the reader Service (label {})",
            label().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.disconnect().await.unwrap();
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    lock.disconnect().await.unwrap();
    let released = Instant::now();
    while b.endpoint_ips(&reader).await != [replica_ip] {
        assert!(
            released.elapsed() < Duration::from_secs(60),
            "the caught-up replica never came back (label {})",
            label().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(label().await, "replica");
    eprintln!(
        "maxReadLagSeconds {MAX}: the held replica left the reader Service {:.1} s after its applier was held, and came back {:.1} s after it was released",
        out_after.unwrap().as_secs_f64(),
        released.elapsed().as_secs_f64()
    );
}

async fn multi_writer_pair(engine: &str) {
    let b = TestBox::start(&format!("mw-{engine}")).await;
    let (name, _) = b.apply_example("active-active.yaml", engine).await;
    let pair = b.wait_ready(&name, Duration::from_secs(240)).await;
    assert!(pair.status.as_ref().unwrap().writer.is_none());
    let ips = b.endpoint_ips(&format!("{name}-writer")).await;
    assert_eq!(ips.len(), 2, "both pods take writes");
    let pw = b.admin_password(&name).await;
    let mut c = conn(&ips[0], &pw).await;
    c.query_drop("CREATE DATABASE app").await.unwrap();
    c.query_drop("CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, origin VARCHAR(20))")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    wait_row(
        &ips[1],
        &pw,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'",
        1,
    )
    .await;
    const N: usize = 1000;
    let insert = |ip: String, pw: String| async move {
        let mut c = conn(&ip, &pw).await;
        for _ in 0..N {
            c.query_drop(format!("INSERT INTO app.t (origin) VALUES ('{ip}')"))
                .await
                .unwrap();
        }
        c.disconnect().await.unwrap();
    };
    tokio::join!(
        insert(ips[0].clone(), pw.clone()),
        insert(ips[1].clone(), pw.clone())
    );
    for ip in &ips {
        wait_row(
            ip,
            &pw,
            "SELECT COUNT(DISTINCT id) FROM app.t",
            2 * N as u64,
        )
        .await;
    }
    let p = b.wait_ready(&name, Duration::from_secs(30)).await;
    assert!(
        p.status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == "ConflictDetected" && c.status == "False")
    );
    b.shutdown().await;
}

async fn operator_killed_during_bring_up(engine: &str) {
    let mut b = TestBox::start(&format!("kill-{engine}")).await;
    let (name, _) = b.apply_example("pair.yaml", engine).await;
    // Kill the operator once it has started changing the pair.
    let sts: Api<StatefulSet> = Api::namespaced(b.client.clone(), "shop");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sts.get_opt(&name).await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the operator never applied the StatefulSet"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "shop");
    loop {
        let running = pods
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.clone()).is_some())
            .count();
        if running == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.kill9_operator();
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.start_operator();
    let p = b.wait_ready(&name, Duration::from_secs(240)).await;
    let st = p.status.unwrap();
    assert!(
        st.conditions
            .iter()
            .all(|c| c.type_ != "Degraded" || c.status == "False"),
        "{:#?}",
        st.conditions
    );
    assert!(st.nodes.iter().all(|n| {
        n.replication
            .as_ref()
            .is_some_and(|r| r.last_sql_errno == 0 && r.last_io_errno == 0)
    }));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_single_writer_pair() {
    single_writer_pair("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_single_writer_pair() {
    single_writer_pair("MariaDB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_multi_writer_pair() {
    multi_writer_pair("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_multi_writer_pair() {
    multi_writer_pair("MariaDB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_operator_killed_during_bring_up() {
    operator_killed_during_bring_up("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_operator_killed_during_bring_up() {
    operator_killed_during_bring_up("MariaDB").await;
}

/// Issue 12, bug 4 and bug 3, in the box: changes made by hand to the
/// objects the operator owns are repaired (the old apply skipped any object
/// whose live copy kept its hash annotation, and `kubectl scale` keeps it);
/// and a pair deleted and created again under the same name comes back
/// Ready with its data (the generated Secrets used to be garbage-collected
/// with the pair while the claims stayed: new passwords, locked out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_and_a_recreated_pair_keeps_its_data() {
    let b = TestBox::start("drift").await;
    let (name, pair) = b.apply_example("pair.yaml", "MySQL").await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    let pw = b.admin_password(&name).await;
    let writer = b.endpoint_ips(&format!("{name}-writer")).await[0].clone();
    let mut w = conn(&writer, &pw).await;
    w.query_drop("CREATE DATABASE app").await.unwrap();
    w.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    w.query_drop("INSERT INTO app.t VALUES (1, 'kept across the re-creation')")
        .await
        .unwrap();
    w.disconnect().await.unwrap();
    let reconciles = || b.operator_metric("mysqlaa_reconciles_total");

    let sts: Api<StatefulSet> = Api::namespaced(b.client.clone(), "shop");
    let before = reconciles().await;
    let generation = sts
        .get(&name)
        .await
        .unwrap()
        .metadata
        .generation
        .unwrap_or_default();
    let t = Instant::now();
    b.kubectl(&["scale", "sts", &name, "-n", "shop", "--replicas=3"]);
    eventually(
        "kubectl scale is undone",
        Duration::from_secs(30),
        || async {
            let s = sts.get(&name).await.unwrap();
            // Scaled (one generation), then restored (another).
            (s.spec.replicas == Some(2) && s.metadata.generation >= Some(generation + 2))
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "scale repaired in {:.2}s, {} reconcile(s)",
        t.elapsed().as_secs_f64(),
        reconciles().await - before
    );

    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(b.client.clone(), "shop");
    let writer_service = format!("{name}-writer");
    let wanted = services
        .get(&writer_service)
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector;
    let before = reconciles().await;
    let t = Instant::now();
    b.kubectl(&[
        "patch",
        "svc",
        &writer_service,
        "-n",
        "shop",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"selector":{"mysql-aa.io/role":"replica"}}}"#,
    ]);
    eventually(
        "the writer Service's selector is restored",
        Duration::from_secs(30),
        || async {
            let s = services.get(&writer_service).await.unwrap();
            (s.spec.unwrap().selector == wanted).then_some(())
        },
    )
    .await;
    eprintln!(
        "Service selector repaired in {:.2}s, {} reconcile(s)",
        t.elapsed().as_secs_f64(),
        reconciles().await - before
    );
    // The writer Service's EndpointSlice, which the loop writes itself
    // (SingleWriter): emptied by hand, written again at the next look.
    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
        Api::namespaced(b.client.clone(), "shop");
    let routed = |s: &k8s_openapi::api::discovery::v1::EndpointSlice| -> Vec<String> {
        s.endpoints
            .iter()
            .flatten()
            .filter_map(|e| e.target_ref.as_ref()?.name.clone())
            .collect()
    };
    let writer_pod = routed(&slices.get(&writer_service).await.unwrap());
    assert_eq!(writer_pod.len(), 1, "the slice names the writer");
    let t = Instant::now();
    slices
        .patch(
            &writer_service,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"endpoints": []})),
        )
        .await
        .unwrap();
    eventually(
        "the writer's EndpointSlice is written again",
        Duration::from_secs(30),
        || async {
            (routed(&slices.get(&writer_service).await.unwrap()) == writer_pod).then_some(())
        },
    )
    .await;
    eprintln!(
        "writer EndpointSlice repaired in {:.2}s",
        t.elapsed().as_secs_f64()
    );

    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(b.client.clone(), "shop");
    let config = format!("{name}-config");
    let old_uid = config_maps.get(&config).await.unwrap().uid();
    let before = reconciles().await;
    let t = Instant::now();
    b.kubectl(&["delete", "configmap", &config, "-n", "shop"]);
    eventually(
        "the deleted ConfigMap is recreated",
        Duration::from_secs(30),
        || async {
            let c = config_maps.get_opt(&config).await.unwrap()?;
            (c.uid() != old_uid).then_some(())
        },
    )
    .await;
    eprintln!(
        "ConfigMap recreated in {:.2}s, {} reconcile(s)",
        t.elapsed().as_secs_f64(),
        reconciles().await - before
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(b.client.clone(), "shop");
    eventually(
        "an ObjectsRepaired Event names the first repair",
        Duration::from_secs(15),
        || async {
            let notes: Vec<String> = events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("ObjectsRepaired"))
                .filter_map(|e| e.note)
                .collect();
            let named = |what: &str| {
                notes
                    .iter()
                    .any(|n| n.starts_with("repaired") && n.contains(what))
            };
            named("StatefulSet orders").then_some(())
        },
    )
    .await;
    b.wait_ready(&name, Duration::from_secs(60)).await;

    // Delete the pair (as `kubectl delete` does: background propagation,
    // the garbage collector removes what it owns) and create it again.
    b.kubectl(&[
        "delete",
        "mysqlactiveactive",
        &name,
        "-n",
        "shop",
        "--wait=true",
    ]);
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "shop");
    eventually(
        "the pair's pods are gone",
        Duration::from_secs(120),
        || async {
            pods.list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let claims = b.kubectl(&["get", "pvc", "-n", "shop", "-o", "name"]);
    assert!(claims.contains(&format!("data-{name}-0")), "{claims}");
    let secrets = b.kubectl(&["get", "secrets", "-n", "shop", "-o", "name"]);
    assert!(
        secrets.contains(&format!("{name}-admin")),
        "the Secrets outlive the pair with its data: {secrets}"
    );
    let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    api.patch(
        &name,
        &kube::api::PatchParams::apply("test"),
        &kube::api::Patch::Apply(&pair),
    )
    .await
    .unwrap();
    b.wait_ready(&name, Duration::from_secs(240)).await;
    assert_eq!(b.admin_password(&name).await, pw, "the same passwords");
    let writer = b.endpoint_ips(&format!("{name}-writer")).await[0].clone();
    let mut w = conn(&writer, &pw).await;
    let kept: Option<String> = w
        .query_first("SELECT v FROM app.t WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("kept across the re-creation"));
    w.disconnect().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resources_are_refused_or_reported_and_change_nothing() {
    let b = TestBox::start("bad").await;
    let pairs: Api<kube::api::DynamicObject> = Api::namespaced_with(
        b.client.clone(),
        "shop",
        &kube::discovery::ApiResource::erase::<MySQLActiveActive>(&()),
    );
    let object = |name: &str, spec: Value| -> kube::api::DynamicObject {
        serde_json::from_value(json!({"apiVersion": "mysql-aa.io/v1alpha1", "kind": "MySQLActiveActive", "metadata": {"name": name}, "spec": spec})).unwrap()
    };
    let refused = [
        ("engine", json!({"engine": "Oracle"}), "Unsupported value"),
        (
            "serverid",
            json!({"serverIdBase": 0}),
            "greater than or equal to 1",
        ),
        (
            "owned",
            json!({"mysqldConfig": {"server-id": "3"}}),
            "mysqldConfig must not set options the operator owns (server_id",
        ),
        (
            "loose",
            json!({"mysqldConfig": {"loose_gtid_mode": "OFF"}}),
            "in any spelling",
        ),
        (
            "newline",
            json!({"mysqldConfig": {"max_connections": "1\nskip-log-bin"}}),
            "line breaks",
        ),
        ("image", json!({"image": ""}), "image must be a non-empty"),
        (
            "size",
            json!({"storage": {"size": "lots"}}),
            "positive Kubernetes quantity",
        ),
        (
            "tls",
            json!({"replication": {"tls": {"mode": "VerifyIdentity"}}}),
            "secretName is required",
        ),
        (
            "window",
            json!({"failover": {"detectionWindowSeconds": 0}}),
            "detectionWindowSeconds",
        ),
        (
            "label",
            json!({"placement": {"podLabels": {"app.kubernetes.io/instance": "x"}}}),
            "must not use",
        ),
        (
            "policy",
            json!({"replication": {"applierErrorPolicy": "Ignore"}}),
            "Unsupported value",
        ),
    ];
    for (name, spec, want) in refused {
        match pairs
            .create(&PostParams::default(), &object(name, spec))
            .await
        {
            Err(kube::Error::Api(s)) => assert!(
                s.code == 422 && s.message.contains(want),
                "{name}: {}",
                s.message
            ),
            other => panic!("{name}: expected a 422, got {other:?}"),
        }
    }
    // Only the running system can tell: a named Secret that does not exist.
    pairs
        .create(
            &PostParams::default(),
            &object(
                "nosecret",
                json!({"credentials": {"adminSecretName": "missing-secret"}}),
            ),
        )
        .await
        .unwrap();
    let typed: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = typed.get("nosecret").await.unwrap();
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
        if let Some(c) = ready.filter(|c| c.reason == "CredentialsMissing") {
            assert_eq!(c.status, "False");
            assert!(c.message.contains("missing-secret"), "{}", c.message);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no CredentialsMissing condition: {:?}\n{}",
            p.status,
            tail(&b.operator_log())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sts: Api<StatefulSet> = Api::namespaced(b.client.clone(), "shop");
    assert!(
        sts.get_opt("nosecret").await.unwrap().is_none(),
        "nothing was created for it"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(b.client.clone(), "shop");
    let list = events.list(&Default::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("CredentialsMissing")),
        "an Event says so"
    );
    // An immutable change on a running pair is refused; the pair is untouched.
    let (name, _) = b.apply_example("pair.yaml", "MySQL").await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    let before = sts.get(&name).await.unwrap().resource_version();
    let err = b
        .patch_spec(&name, json!({"serverIdBase": 7}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("immutable")),
        "{err}"
    );
    // A credentials change to a missing Secret is reported; nothing existing changes.
    b.patch_spec(
        &name,
        json!({"credentials": {"replicationSecretName": "nope"}}),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = typed.get(&name).await.unwrap();
        if p.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "CredentialsMissing")
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", p.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        sts.get(&name).await.unwrap().resource_version(),
        before,
        "the StatefulSet was not changed"
    );
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), "shop");
    assert_eq!(
        pods.list(&Default::default()).await.unwrap().items.len(),
        2,
        "the pods keep running"
    );
    // Back to the generated Secret: Ready again.
    b.patch_spec(
        &name,
        json!({"credentials": {"replicationSecretName": null}}),
    )
    .await
    .unwrap();
    b.wait_ready(&name, Duration::from_secs(60)).await;
    // A spec the CRD admits but whose StatefulSet the real API server
    // refuses (a node-affinity operator that does not exist: affinity is
    // the one core-type field not checked at admission): a condition that
    // names the object and quotes the API server, an Event, nothing
    // running changed.
    let before = sts.get(&name).await.unwrap().resource_version();
    let bad_affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "Near"}]}]}}});
    b.patch_spec(&name, json!({"placement": {"affinity": bad_affinity}}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let p = typed.get(&name).await.unwrap();
        if let Some(c) = p.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "Ready" && c.reason == "ObjectRefused")
                .cloned()
        }) {
            break c;
        }
        assert!(Instant::now() < deadline, "{:?}", p.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused.status, "False");
    assert!(
        refused
            .message
            .contains(&format!("StatefulSet shop/{name}"))
            && refused.message.contains("Near"),
        "{}",
        refused.message
    );
    assert_eq!(sts.get(&name).await.unwrap().resource_version(), before);
    assert_eq!(pods.list(&Default::default()).await.unwrap().items.len(), 2);
    assert!(
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("ObjectRefused")),
        "an Event says so"
    );
    b.patch_spec(&name, json!({"placement": {"affinity": null}}))
        .await
        .unwrap();
    b.wait_ready(&name, Duration::from_secs(60)).await;
    // A generated Secret loses its key once the servers use it: reported,
    // never replaced by a new password (which would lock everyone out).
    let password = b.admin_password(&name).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(b.client.clone(), "shop");
    secrets
        .patch(
            &format!("{name}-admin"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"data": {"password": null}})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = typed.get(&name).await.unwrap();
        if let Some(c) = p.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "Ready" && c.reason == "CredentialsMissing")
        }) {
            assert!(c.message.contains("lost its key"), "{}", c.message);
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", p.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(OBSERVE_SECONDS * 2)).await;
    let s = secrets.get(&format!("{name}-admin")).await.unwrap();
    assert!(
        !s.data.unwrap_or_default().contains_key("password"),
        "the operator did not put a new password in"
    );
    secrets
        .patch(
            &format!("{name}-admin"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"stringData": {"password": password}})),
        )
        .await
        .unwrap();
    b.wait_ready(&name, Duration::from_secs(60)).await;
    b.shutdown().await;
}

async fn applier_errors_follow_the_policy(engine: &str) {
    let b = TestBox::start(&format!("policy-{engine}")).await;
    let (name, _) = b.apply_example("active-active.yaml", engine).await;
    b.wait_ready(&name, Duration::from_secs(240)).await;
    let typed: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "shop");
    // Pause the operator, make the same key on both sides while replication is stopped.
    b.patch_spec_observed(
        &name,
        json!({"paused": true, "replication": {"applierErrorPolicy": "Halt"}}),
    )
    .await;
    let pw = b.admin_password(&name).await;
    let ips = b.endpoint_ips(&format!("{name}-writer")).await;
    let mut c0 = conn(&ips[0], &pw).await;
    c0.query_drop("CREATE DATABASE app").await.unwrap();
    c0.query_drop("CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    wait_row(
        &ips[1],
        &pw,
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'",
        1,
    )
    .await;
    let mut c1 = conn(&ips[1], &pw).await;
    c0.query_drop("STOP REPLICA").await.unwrap();
    c1.query_drop("STOP REPLICA").await.unwrap();
    c0.query_drop("INSERT INTO app.t VALUES (1, 'zero')")
        .await
        .unwrap();
    c1.query_drop("INSERT INTO app.t VALUES (1, 'one')")
        .await
        .unwrap();
    c0.query_drop("START REPLICA").await.unwrap();
    c1.query_drop("START REPLICA").await.unwrap();
    // Unpaused under Halt: reported, left stopped.
    b.patch_spec(&name, json!({"paused": false})).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let conflict = loop {
        let p = typed.get(&name).await.unwrap();
        if let Some(c) = p.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "ConflictDetected" && c.status == "True")
        }) {
            break c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no ConflictDetected: {:#?}",
            p.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(conflict.message.contains("1062"), "{}", conflict.message);
    tokio::time::sleep(Duration::from_secs(OBSERVE_SECONDS * 2)).await;
    let p = typed.get(&name).await.unwrap();
    assert!(
        p.status.as_ref().unwrap().skipped_transactions.is_empty(),
        "Halt skips nothing"
    );
    assert!(p.status.as_ref().unwrap().nodes.iter().any(|n| {
        n.replication
            .as_ref()
            .is_some_and(|r| r.sql_running.as_str() == "No" && r.last_sql_errno == 1062)
    }));
    // SkipAndRecord: exactly the failing transactions are skipped and recorded.
    b.patch_spec(
        &name,
        json!({"replication": {"applierErrorPolicy": "SkipAndRecord"}}),
    )
    .await
    .unwrap();
    let p = b.wait_ready(&name, Duration::from_secs(60)).await;
    let skipped = p.status.unwrap().skipped_transactions;
    assert!(
        !skipped.is_empty()
            && skipped
                .iter()
                .all(|s| s.errno == 1062 && !s.gtid.is_empty()),
        "{skipped:#?}"
    );
    let reasons = event_reasons(&b.client).await;
    assert!(
        reasons.iter().any(|r| r == "ApplierHalted")
            && reasons.iter().any(|r| r == "TransactionSkipped"),
        "{reasons:?}"
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_applier_errors_follow_the_policy() {
    applier_errors_follow_the_policy("MySQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_applier_errors_follow_the_policy() {
    applier_errors_follow_the_policy("MariaDB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_refuses_to_start_without_the_crd_and_serves_health() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!(".cache/boxes/nocrd-{}", std::process::id()));
    let cluster = Cluster::start(root, Options::default()).await.unwrap();
    let kubeconfig = cluster.admin_kubeconfig().to_path_buf();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mysql-aa-operator"))
        .args(["run", "--metrics-address", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the MySQLActiveActive CRD is not installed"),
        "{err}"
    );
    // With the CRD: health, readiness and metrics are served.
    let crd: CustomResourceDefinition = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/mysqlactiveactives.mysql-aa.io.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let client: Client = cluster.client();
    let crds = Api::<CustomResourceDefinition>::all(client);
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !crds
        .get("mysqlactiveactives.mysql-aa.io")
        .await
        .unwrap()
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True")
    {
        assert!(Instant::now() < deadline, "the CRD was never Established");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mysql-aa-operator"))
        .args([
            "run",
            "--metrics-address",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stderr(std::fs::File::create(cluster.root().join("operator.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let get = |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).await.ok()?;
        Some(body)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if get("/readyz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {}",
            std::fs::read_to_string(cluster.root().join("operator.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(get("/healthz").await.unwrap().contains("ok"));
    let metrics = get("/metrics").await.unwrap();
    assert!(
        metrics.contains("mysqlaa_reconcile_duration_seconds"),
        "{metrics}"
    );
    // SIGTERM: a clean exit.
    let pid = child.id().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(cluster.root().join("operator.log")).unwrap();
    let first = log.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<Value>(first).is_ok(),
        "JSON logs: {first}"
    );
    cluster.shutdown().await;
}

/// Writer-epoch claims are compare-and-set on the real API server: a claim
/// made from an old view of the epoch (a stale operator, or a second one)
/// is refused and changes nothing; a claim from the current epoch applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_epoch_claims_are_compare_and_set() {
    use mysql_aa_operator::controller::pairloop::epoch::patch_status_at_epoch;
    // The operator watches `shop` only: the pair below, elsewhere, is left
    // to the test.
    let b = TestBox::start_with("epoch", &["shop"]).await;
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "elsewhere"}})).unwrap();
    Api::all(b.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<MySQLActiveActive> = Api::namespaced(b.client.clone(), "elsewhere");
    let pair: MySQLActiveActive = serde_json::from_value(json!({
        "apiVersion": "mysql-aa.io/v1alpha1", "kind": "MySQLActiveActive",
        "metadata": {"name": "orders", "namespace": "elsewhere"},
        "spec": {"engine": "MySQL"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pair).await.unwrap();
    api.patch_status(
        "orders",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"status": {"writerEpoch": 3, "writer": "orders-0"}})),
    )
    .await
    .unwrap();
    let claim = |to: u64| {
        vec![
            json!({"op": "replace", "path": "/status/writerEpoch", "value": to}),
            json!({"op": "replace", "path": "/status/writer", "value": "orders-1"}),
        ]
    };
    let status = || async { api.get("orders").await.unwrap().status.unwrap() };
    // From epoch 2: refused, nothing changed.
    let refused = patch_status_at_epoch(&api, "orders", 2, claim(3))
        .await
        .unwrap()
        .unwrap_err();
    eprintln!("a claim from an old epoch: {refused}");
    let st = status().await;
    assert_eq!(
        (st.writer_epoch, st.writer.as_deref()),
        (3, Some("orders-0"))
    );
    // From epoch 3: applied.
    patch_status_at_epoch(&api, "orders", 3, claim(4))
        .await
        .unwrap()
        .unwrap();
    let st = status().await;
    assert_eq!(
        (st.writer_epoch, st.writer.as_deref()),
        (4, Some("orders-1"))
    );
    // The same claim again (a second operator that also saw epoch 3):
    // refused.
    assert!(
        patch_status_at_epoch(&api, "orders", 3, claim(4))
            .await
            .unwrap()
            .is_err()
    );
    assert_eq!(status().await.writer_epoch, 4);
    b.shutdown().await;
}
