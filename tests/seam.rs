//! The MySQL seam against real servers: every test runs for MySQL 9.7 and
//! for MariaDB 10.11, each node a real server process started with the
//! operator's own rendered my.cnf.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::{Duration, Instant};

use mysql_aa_operator::accounts::{ADMIN_USER, REPLICATION_USER};
use mysql_aa_operator::api::{Engine, MySQLActiveActiveSpec};
use mysql_aa_operator::mysql::{
    AccountPasswords, ConnectOptions, Endpoint, Flavor, MySqlClient, Observation, Password, Server,
    SourceSpec, SqlError, ThreadState, WireOutcome, diverged_tables,
};
use mysql_aa_operator::render::Names;
use mysql_aa_operator::render::mycnf::render_mycnf;
use mysql_async::prelude::Queryable;
use test_servers::{Instance, Kind};

#[path = "support/mariadb_stream.rs"]
mod mariadb_stream;

const ADMIN_PW: &str = "admin-Pa55'word\\x";
const REPL_PW: &str = "repl-Pa55word";
const WAIT: Duration = Duration::from_secs(60);

fn passwords() -> AccountPasswords {
    AccountPasswords {
        admin: Password::new(ADMIN_PW),
        replication: Password::new(REPL_PW),
    }
}

fn engine(kind: Kind) -> Engine {
    match kind {
        Kind::MySql => Engine::MySQL,
        Kind::MariaDb => Engine::MariaDB,
    }
}

fn spec(kind: Kind) -> MySQLActiveActiveSpec {
    let value = serde_json::json!({ "engine": format!("{:?}", engine(kind)) });
    serde_json::from_value(value).unwrap()
}

fn endpoint(i: &Instance) -> Endpoint {
    Endpoint {
        host: i.host.clone(),
        port: i.port,
    }
}

fn client(i: &Instance, user: &str, password: &str) -> MySqlClient {
    MySqlClient::new(ConnectOptions::new(
        endpoint(i),
        user,
        Password::new(password),
    ))
}

/// Two servers with the rendered my.cnf of ordinals 0 and 1, the
/// operator's accounts created through the seam, not yet replicating.
struct Pair {
    kind: Kind,
    nodes: [Instance; 2],
    admin: [MySqlClient; 2],
}

impl Pair {
    async fn start(kind: Kind) -> Self {
        let spec = spec(kind);
        let names = Names {
            pair: "seam".into(),
            namespace: "test".into(),
        };
        let nodes = [0, 1].map(|ord| {
            Instance::start(
                kind,
                &format!("seam{ord}"),
                &render_mycnf(&spec, &names, ord),
            )
        });
        for node in &nodes {
            let root = client(node, "root", "");
            assert!(
                root.ensure_users(&passwords()).await.unwrap(),
                "accounts created"
            );
            assert!(
                !root.ensure_users(&passwords()).await.unwrap(),
                "second call changes nothing"
            );
            root.disconnect().await;
        }
        let admin = [0, 1].map(|i| client(&nodes[i], ADMIN_USER, ADMIN_PW));
        Pair { kind, nodes, admin }
    }

    fn flavor(&self) -> Flavor {
        match self.kind {
            Kind::MySql => Flavor::MySQL,
            Kind::MariaDb => Flavor::MariaDB,
        }
    }

    /// The source node `ord` replicates from: the other node.
    fn source_for(&self, ord: usize) -> SourceSpec {
        SourceSpec {
            endpoint: endpoint(&self.nodes[1 - ord]),
            user: REPLICATION_USER.into(),
            password: Password::new(REPL_PW),
            tls: Default::default(),
        }
    }

    async fn wire(&self) -> [WireOutcome; 2] {
        let a = self.admin[0]
            .ensure_replication(&self.source_for(0))
            .await
            .unwrap();
        let b = self.admin[1]
            .ensure_replication(&self.source_for(1))
            .await
            .unwrap();
        [a, b]
    }

    async fn unfence_both(&self) {
        for a in &self.admin {
            a.unfence().await.unwrap();
        }
    }

    /// A plain client connection (the test's own, not the seam).
    async fn conn(&self, ord: usize, user: &str, password: &str) -> mysql_async::Conn {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.nodes[ord].host.clone())
            .tcp_port(self.nodes[ord].port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false);
        mysql_async::Conn::new(opts).await.unwrap()
    }

    async fn sql(&self, ord: usize, statements: &[&str]) {
        let mut c = self.conn(ord, ADMIN_USER, ADMIN_PW).await;
        for s in statements {
            c.query_drop(*s)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        c.disconnect().await.unwrap();
    }

    async fn observe(&self, ord: usize) -> Observation {
        self.admin[ord].observe().await.unwrap()
    }

    /// Waits until each node has applied everything the other executed.
    async fn converge(&self) {
        for ord in 0..2 {
            let other = self.observe(1 - ord).await.gtid_executed;
            let applied = self.admin[ord]
                .wait_for_gtid_set(&other, WAIT)
                .await
                .unwrap();
            assert!(applied, "node {ord} did not apply {other} within {WAIT:?}");
        }
    }

    async fn wait_until<F>(&self, ord: usize, what: &str, ok: F) -> Observation
    where
        F: Fn(&Observation) -> bool,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            let o = self.observe(ord).await;
            if ok(&o) {
                return o;
            }
            assert!(
                Instant::now() < deadline,
                "node {ord}: {what} not reached: {o:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Node `ord`'s `auto_increment_offset` and the rows of `app.t`.
    async fn offset_and_rows(&self, ord: usize) -> (u32, u64) {
        let mut c = self.conn(ord, ADMIN_USER, ADMIN_PW).await;
        let got = c
            .query_first("SELECT @@auto_increment_offset, (SELECT COUNT(*) FROM app.t)")
            .await
            .unwrap()
            .unwrap();
        c.disconnect().await.unwrap();
        got
    }

    /// Ids of the replication threads on each node (to tell a restart).
    async fn replication_thread_ids(&self, ord: usize) -> Vec<u64> {
        let mut c = self.conn(ord, ADMIN_USER, ADMIN_PW).await;
        let rows: Vec<(u64, String, String)> = c
            .query("SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST")
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        let mut ids: Vec<u64> = rows
            .into_iter()
            .filter(|(_, user, command)| {
                user == "system user"
                    || user == REPLICATION_USER
                    || command.starts_with("Binlog Dump")
                    || command.starts_with("Slave")
            })
            .map(|(id, _, _)| id)
            .collect();
        ids.sort();
        ids
    }
}

/// Sends `sig` (`-STOP`, `-CONT`) to the server process of `node`.
fn signal_node(node: &Instance, sig: &str) {
    let pid = node.pid().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

fn running(o: &Observation) -> bool {
    o.replica.as_ref().is_some_and(|r| r.running())
}

// a. Wire both directions from scratch; write on both; both converge.
async fn wires_both_directions_and_converges(kind: Kind) {
    let pair = Pair::start(kind).await;
    assert_eq!(
        pair.wire().await,
        [WireOutcome::Reconfigured, WireOutcome::Reconfigured]
    );
    pair.unfence_both().await;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO app.t (v) VALUES ('from-0')",
        ],
    )
    .await;
    pair.converge().await;
    pair.sql(
        1,
        &[
            "INSERT INTO app.t (v) VALUES ('from-1')",
            "CREATE TABLE app.u (k INT PRIMARY KEY)",
            "INSERT INTO app.u VALUES (1), (2)",
        ],
    )
    .await;
    pair.converge().await;
    let (a, b) = (pair.observe(0).await, pair.observe(1).await);
    assert!(running(&a) && running(&b), "{a:#?}\n{b:#?}");
    assert_eq!(a.gtid_executed, b.gtid_executed);
    assert!(!a.gtid_executed.is_empty());
    assert_eq!(a.info.flavor, pair.flavor());
    assert_ne!(a.info.server_id, b.info.server_id);
    let replica = a.replica.as_ref().unwrap();
    assert_eq!(replica.source_port, pair.nodes[1].port);
    assert_eq!(replica.source_user, REPLICATION_USER);
    assert!(replica.auto_position);
    let (ca, cb) = (
        pair.admin[0].table_checksums("app").await.unwrap(),
        pair.admin[1].table_checksums("app").await.unwrap(),
    );
    assert_eq!(ca.len(), 2);
    assert!(ca.values().all(Option::is_some));
    assert_eq!(ca, cb);
}

// b. Two concurrent writers, 5,000 AUTO_INCREMENT inserts each.
async fn concurrent_inserts_never_collide(kind: Kind) {
    const ROWS: usize = 5000;
    let pair = Pair::start(kind).await;
    pair.wire().await;
    pair.unfence_both().await;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, origin INT NOT NULL)",
        ],
    )
    .await;
    pair.converge().await;
    let started = Instant::now();
    let (w0, w1) = tokio::join!(insert_rows(&pair, 0, ROWS), insert_rows(&pair, 1, ROWS));
    let ids = [w0, w1];
    eprintln!(
        "{kind:?}: {} inserts on two nodes in {:?}",
        2 * ROWS,
        started.elapsed()
    );
    for (ord, ids) in ids.iter().enumerate() {
        assert_eq!(ids.len(), ROWS);
        // increment 2, offset ordinal + 1
        assert!(
            ids.iter().all(|id| id % 2 == (ord as u64 + 1) % 2),
            "node {ord} ids off its offset"
        );
    }
    pair.converge().await;
    for ord in 0..2 {
        let mut c = pair.conn(ord, ADMIN_USER, ADMIN_PW).await;
        let (total, distinct, wrong): (u64, u64, u64) = c
            .query_first(
                "SELECT COUNT(*), COUNT(DISTINCT id), SUM(id % 2 <> (origin + 1) % 2) FROM app.t",
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (total, distinct, wrong),
            (2 * ROWS as u64, 2 * ROWS as u64, 0),
            "node {ord}"
        );
        assert!(running(&pair.observe(ord).await));
    }
    assert_eq!(
        pair.admin[0].table_checksums("app").await.unwrap(),
        pair.admin[1].table_checksums("app").await.unwrap()
    );
}

/// Inserts `n` rows one transaction each on node `ord`; returns their ids.
async fn insert_rows(pair: &Pair, ord: usize, n: usize) -> Vec<u64> {
    let mut c = pair.conn(ord, ADMIN_USER, ADMIN_PW).await;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        c.query_drop(format!("INSERT INTO app.t (origin) VALUES ({ord})"))
            .await
            .unwrap();
        ids.push(c.last_insert_id().unwrap());
    }
    c.disconnect().await.unwrap();
    ids
}

// c. Wiring an already-wired pair again changes nothing.
async fn rewiring_changes_nothing(kind: Kind) {
    let pair = Pair::start(kind).await;
    pair.wire().await;
    pair.wait_until(0, "replicating", running).await;
    pair.wait_until(1, "replicating", running).await;
    let before = [
        pair.replication_thread_ids(0).await,
        pair.replication_thread_ids(1).await,
    ];
    assert!(before.iter().all(|ids| ids.len() >= 2), "{before:?}");
    assert_eq!(
        pair.wire().await,
        [WireOutcome::Unchanged, WireOutcome::Unchanged]
    );
    let after = [
        pair.replication_thread_ids(0).await,
        pair.replication_thread_ids(1).await,
    ];
    assert_eq!(before, after, "replication threads were restarted");
}

// d. A duplicate-key conflict stops the applier; halted by default; skip-one resumes.
async fn duplicate_key_halts_and_skip_one_resumes(kind: Kind) {
    let pair = Pair::start(kind).await;
    pair.wire().await;
    pair.unfence_both().await;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
        ],
    )
    .await;
    pair.converge().await;
    for a in &pair.admin {
        a.stop_replica().await.unwrap();
    }
    // The conflicting insert, then one more transaction that must still apply.
    pair.sql(
        0,
        &[
            "INSERT INTO app.t VALUES (1, 'zero')",
            "INSERT INTO app.t VALUES (2, 'after')",
        ],
    )
    .await;
    pair.sql(1, &["INSERT INTO app.t VALUES (1, 'one')"]).await;
    let origin = pair.observe(0).await;
    pair.admin[1].start_replica().await.unwrap();
    let halted = pair
        .wait_until(1, "applier stopped", |o| {
            o.replica
                .as_ref()
                .is_some_and(|r| r.sql_running == ThreadState::No && r.last_sql_errno != 0)
        })
        .await;
    assert_eq!(halted.replica.as_ref().unwrap().last_sql_errno, 1062);
    let failure = pair.admin[1]
        .applier_failure()
        .await
        .unwrap()
        .expect("a failure");
    assert_eq!(failure.errno, 1062);
    assert!(failure.message.contains("Duplicate"), "{}", failure.message);
    match pair.kind {
        Kind::MySql => {
            let uuid = origin.info.server_uuid.clone().unwrap();
            assert!(
                failure.gtid.starts_with(&uuid),
                "{} is not from node 0 ({uuid})",
                failure.gtid
            );
            assert!(origin.gtid_executed.contains(&uuid));
        }
        Kind::MariaDb => {
            let domain = format!("{}-{}-", origin.info.server_id, origin.info.server_id);
            assert!(
                failure.gtid.starts_with(&domain),
                "{} is not from node 0",
                failure.gtid
            );
        }
    }
    // Halt is the default: wiring again leaves it stopped on the same transaction.
    assert_eq!(
        pair.admin[1]
            .ensure_replication(&pair.source_for(1))
            .await
            .unwrap(),
        WireOutcome::HaltedOnError
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = pair.admin[1]
        .applier_failure()
        .await
        .unwrap()
        .expect("still halted");
    assert_eq!(still.gtid, failure.gtid);
    // Skip exactly that transaction.
    pair.admin[1]
        .skip_failed_transaction(&failure)
        .await
        .unwrap();
    let resumed = pair.wait_until(1, "replicating again", running).await;
    assert_eq!(resumed.replica.as_ref().unwrap().last_sql_errno, 0);
    assert!(pair.admin[1].applier_failure().await.unwrap().is_none());
    let applied = pair.admin[1]
        .wait_for_gtid_set(&origin.gtid_executed, WAIT)
        .await
        .unwrap();
    assert!(applied, "the skipped GTID counts as applied");
    // Exactly one skipped: node 1 kept its own row 1, and row 2 was applied.
    let mut c = pair.conn(1, ADMIN_USER, ADMIN_PW).await;
    let rows: Vec<(i32, String)> = c
        .query("SELECT id, v FROM app.t ORDER BY id")
        .await
        .unwrap();
    assert_eq!(rows, [(1, "one".to_string()), (2, "after".to_string())]);
    // Skipping again is refused: the applier is not stopped on it any more.
    assert!(
        pair.admin[1]
            .skip_failed_transaction(&failure)
            .await
            .is_err()
    );
}

// e. The same row updated on both sides while paused: green replication, diverged data.
async fn concurrent_updates_diverge_silently_and_checksums_tell(kind: Kind) {
    let pair = Pair::start(kind).await;
    pair.wire().await;
    pair.unfence_both().await;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.accounts (id INT PRIMARY KEY, balance INT)",
            "CREATE TABLE app.other (id INT PRIMARY KEY)",
            "INSERT INTO app.accounts VALUES (1, 100), (2, 200)",
            "INSERT INTO app.other VALUES (1)",
        ],
    )
    .await;
    pair.converge().await;
    for a in &pair.admin {
        a.stop_replica().await.unwrap();
    }
    pair.sql(0, &["UPDATE app.accounts SET balance = 150 WHERE id = 1"])
        .await;
    pair.sql(1, &["UPDATE app.accounts SET balance = 50 WHERE id = 1"])
        .await;
    for a in &pair.admin {
        a.start_replica().await.unwrap();
    }
    pair.converge().await;
    for ord in 0..2 {
        let o = pair.observe(ord).await;
        let r = o.replica.as_ref().unwrap();
        assert!(
            r.running() && r.last_sql_errno == 0,
            "replication is green: {r:#?}"
        );
    }
    let a = pair.admin[0].table_checksums("app").await.unwrap();
    let b = pair.admin[1].table_checksums("app").await.unwrap();
    assert_eq!(diverged_tables(&a, &b), ["accounts"]);
}

// f. Fence: an application's write fails read-only and its connection is gone.
async fn fence_blocks_writes_and_ends_connections(kind: Kind) {
    let pair = Pair::start(kind).await;
    pair.wire().await;
    pair.unfence_both().await;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY)",
            "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'",
            "GRANT SELECT, INSERT ON app.* TO 'app'@'%'",
        ],
    )
    .await;
    pair.converge().await;
    let mut idle = pair.conn(0, "app", "app-pw").await;
    idle.query_drop("INSERT INTO app.t VALUES ()")
        .await
        .unwrap();
    let ended = pair.admin[0].fence().await.unwrap();
    assert!(ended >= 1, "the application's connection was ended");
    assert!(
        idle.query_drop("SELECT 1").await.is_err(),
        "the open connection is gone"
    );
    let mut fresh = pair.conn(0, "app", "app-pw").await;
    match fresh.query_drop("INSERT INTO app.t VALUES ()").await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1290, "{}", e.message),
        other => panic!("expected the read-only error 1290, got {other:?}"),
    }
    let fenced = pair.observe(0).await;
    assert!(!fenced.writable());
    // Replication kept running through the fence, both ways.
    pair.sql(1, &["INSERT INTO app.t VALUES ()"]).await;
    pair.converge().await;
    assert!(running(&pair.observe(0).await) && running(&pair.observe(1).await));
    pair.admin[0].unfence().await.unwrap();
    assert!(pair.observe(0).await.writable());
    fresh
        .query_drop("INSERT INTO app.t VALUES ()")
        .await
        .unwrap();
}

// g. kill -9 one server and start it again: replication resumes both ways.
async fn kill9_and_restart_resumes_replication(kind: Kind) {
    let mut pair = Pair::start(kind).await;
    pair.wire().await;
    pair.unfence_both().await;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, origin INT)",
            "INSERT INTO app.t (origin) VALUES (0)",
        ],
    )
    .await;
    pair.converge().await;
    pair.nodes[0].kill9();
    // The survivor keeps taking writes while its peer is down.
    pair.sql(1, &["INSERT INTO app.t (origin) VALUES (1)"])
        .await;
    pair.nodes[0].restart();
    let restarted = pair.observe(0).await;
    assert!(!restarted.writable(), "a restarted node boots read-only");
    assert!(
        !running(&restarted),
        "replication does not start by itself (skip_replica_start)"
    );
    // The operator's normal wiring brings it back; nothing else.
    let outcome = pair.admin[0]
        .ensure_replication(&pair.source_for(0))
        .await
        .unwrap();
    assert_eq!(outcome, WireOutcome::Started);
    pair.admin[0].unfence().await.unwrap();
    pair.sql(0, &["INSERT INTO app.t (origin) VALUES (0)"])
        .await;
    pair.wait_until(1, "receiver reconnected", running).await;
    pair.converge().await;
    let a = pair.admin[0].table_checksums("app").await.unwrap();
    assert_eq!(a, pair.admin[1].table_checksums("app").await.unwrap());
    let mut c = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
    let n: Option<u64> = c.query_first("SELECT COUNT(*) FROM app.t").await.unwrap();
    assert_eq!(n, Some(3));
}

// h. Bad input: typed errors within the timeout, never a hang or a panic.
async fn bad_input_gives_typed_errors_in_time(kind: Kind) {
    let pair = Pair::start(kind).await;
    let node = &pair.nodes[0];
    let quick = |host: &str, port: u16, user: &str, pw: &str| {
        let mut o = ConnectOptions::new(
            Endpoint {
                host: host.into(),
                port,
            },
            user,
            Password::new(pw),
        );
        o.connect_timeout = Duration::from_secs(2);
        o.statement_timeout = Duration::from_secs(2);
        MySqlClient::new(o)
    };
    let timed = |started: Instant| {
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "took {took:?}, beyond the timeout"
        );
    };
    // Wrong password.
    let t = Instant::now();
    let err = quick(&node.host, node.port, ADMIN_USER, "wrong")
        .observe()
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::AccessDenied { .. }), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the password is not in the error"
    );
    timed(t);
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let err = quick("127.0.0.1", closed, ADMIN_USER, ADMIN_PW)
        .detect()
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Connect { .. }), "{err}");
    timed(t);
    // Unreachable address (TEST-NET-1, never routed): times out.
    let t = Instant::now();
    let err = quick("192.0.2.1", 3306, ADMIN_USER, ADMIN_PW)
        .detect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SqlError::Timeout { .. } | SqlError::Connect { .. }),
        "{err}"
    );
    timed(t);
    // A port that accepts but never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let t = Instant::now();
    let err = quick("127.0.0.1", silent_port, ADMIN_USER, ADMIN_PW)
        .detect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SqlError::Timeout { op: "detect", .. }),
        "{err}"
    );
    timed(t);
    // A port that speaks something else (HTTP).
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in http.incoming().take(4) {
            use std::io::Write;
            if let Ok(mut s) = stream {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            }
        }
    });
    let t = Instant::now();
    let err = quick("127.0.0.1", http_port, ADMIN_USER, ADMIN_PW)
        .detect()
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Protocol { .. }), "{err}");
    timed(t);
    // A statement that would block (a lock held elsewhere) hits the statement timeout.
    pair.admin[0].unfence().await.unwrap();
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY)",
        ],
    )
    .await;
    let mut holder = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
    holder.query_drop("LOCK TABLES app.t WRITE").await.unwrap();
    let t = Instant::now();
    let err = quick(&node.host, node.port, ADMIN_USER, ADMIN_PW)
        .table_checksums("app")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SqlError::Timeout {
                op: "table_checksums",
                ..
            }
        ),
        "{err}"
    );
    timed(t);
    drop(holder);
    drop(silent);
}

// An unsupported server version is refused with a typed error (simulated:
// MariaDB accepts a version string at startup).
async fn unsupported_version_is_refused(kind: Kind) {
    let spec = spec(Kind::MariaDb);
    let names = Names {
        pair: "old".into(),
        namespace: "test".into(),
    };
    let fake = match kind {
        Kind::MySql => "5.7.44-log",
        Kind::MariaDb => "10.5.99-MariaDB",
    };
    let mycnf = format!("{}version = {fake}\n", render_mycnf(&spec, &names, 0));
    let node = Instance::start(Kind::MariaDb, "old", &mycnf);
    let err = client(&node, "root", "").detect().await.unwrap_err();
    match &err {
        SqlError::Unsupported { found, .. } => assert!(found.starts_with(fake), "{found}"),
        other => panic!("expected Unsupported, got {other}"),
    }
    assert!(err.to_string().contains("not supported"));
}

// j. SemiSync (the SingleWriter default): waiting is off at boot on both
// nodes; turned on on the writer, its commits are acknowledged by the
// replica's receiver; once that receiver stops (what a failover does first)
// the writer commits nothing more, whoever asks; turning waiting off (what
// the operator does only after recording the replica stale) releases it.
/// A wired pair whose ordinal 0 is writable and waits for ordinal 1's
/// acknowledgements, with the table `app.t (id)`.
async fn semi_sync_pair(kind: Kind) -> Pair {
    let pair = Pair::start(kind).await;
    pair.wire().await;
    pair.admin[0].unfence().await.unwrap();
    for ord in 0..2 {
        let semi = pair.observe(ord).await.semi_sync.expect("semi-sync loaded");
        assert!(!semi.enabled, "node {ord}: waiting is off at boot");
    }
    pair.admin[0].set_semi_sync(true).await.unwrap();
    // The replica's receiver registers as a semi-sync replica when it
    // (re)connects.
    pair.admin[1].stop_replica().await.unwrap();
    pair.admin[1].start_replica().await.unwrap();
    pair.wait_until(0, "a semi-sync replica connected", |o| {
        o.semi_sync.is_some_and(|s| s.acknowledging())
    })
    .await;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT PRIMARY KEY)",
        ],
    )
    .await;
    pair
}

async fn semi_sync_holds_commits_without_the_replica(kind: Kind) {
    let pair = semi_sync_pair(kind).await;
    pair.sql(0, &["INSERT INTO app.t VALUES (1)"]).await;
    let acked = pair.observe(0).await.semi_sync.unwrap().acknowledged;
    assert!(acked >= 3, "the replica acknowledged the commits: {acked}");
    // The candidate stops receiving: the next commit waits. It is still a
    // semi-sync replica, and acknowledges again once it receives again.
    pair.admin[1].stop_receiver().await.unwrap();
    let replica_enabled = match kind {
        Kind::MySql => "SELECT @@GLOBAL.rpl_semi_sync_replica_enabled",
        Kind::MariaDb => "SELECT @@GLOBAL.rpl_semi_sync_slave_enabled",
    };
    let mut r = pair.conn(1, ADMIN_USER, ADMIN_PW).await;
    let enabled: Option<u8> = r.query_first(replica_enabled).await.unwrap();
    assert_eq!(enabled, Some(1), "{kind:?}: still a semi-sync replica");
    r.disconnect().await.unwrap();
    let mut c = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
    let insert = tokio::spawn(async move {
        c.query_drop("INSERT INTO app.t VALUES (2)").await.unwrap();
        c
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !insert.is_finished(),
        "a commit went through unacknowledged"
    );
    let held = pair
        .wait_until(0, "the commit waiting", |o| {
            o.semi_sync.is_some_and(|s| s.waiting_sessions >= 1)
        })
        .await;
    assert_eq!(held.semi_sync.unwrap().acknowledged, acked);
    // Waiting off: the held commit returns.
    pair.admin[0].set_semi_sync(false).await.unwrap();
    let c = tokio::time::timeout(WAIT, insert)
        .await
        .expect("released")
        .unwrap();
    c.disconnect().await.unwrap();
    assert!(!pair.observe(0).await.semi_sync.unwrap().enabled);
    // The replica receives again and catches up, as a semi-sync replica.
    pair.admin[1].start_replica().await.unwrap();
    pair.converge().await;
    pair.admin[0].set_semi_sync(true).await.unwrap();
    pair.wait_until(0, "the replica acknowledges again", |o| {
        o.semi_sync.is_some_and(|s| s.acknowledging())
    })
    .await;
}

/// A writer whose replica stopped acknowledging while still connected (a
/// partition, or here a SIGSTOPped replica) is still observed: nothing the
/// operator asks blocks behind the commit that waits. MariaDB 10.11's
/// `SHOW BINLOG STATUS` does (it waits for the binary log that the waiting
/// group commit holds), which left a partitioned MariaDB writer
/// "unreachable" for the whole partition, its writes held.
async fn observed_while_a_connected_replica_does_not_acknowledge(kind: Kind) {
    let pair = semi_sync_pair(kind).await;
    let signal = |sig: &str| signal_node(&pair.nodes[1], sig);
    signal("-STOP");
    // Two clients: the second commit queues behind the first, which waits.
    let mut inserts = Vec::new();
    for id in [3, 4] {
        let mut c = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
        inserts.push(tokio::spawn(async move {
            c.query_drop(format!("INSERT INTO app.t VALUES ({id})"))
                .await
                .unwrap();
            c
        }));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + WAIT;
    let held = loop {
        let o = tokio::time::timeout(Duration::from_secs(5), pair.admin[0].observe())
            .await
            .expect("the observation answers while a commit waits")
            .expect("observed");
        let semi = o.semi_sync.expect("semi-sync loaded");
        if semi.waiting_sessions >= 1 {
            break semi;
        }
        assert!(Instant::now() < deadline, "no commit waiting: {semi:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(held.clients, 1, "the stopped replica is still connected");
    assert!(inserts.iter().all(|i| !i.is_finished()));
    // What the operator does once the replica is recorded stale.
    pair.admin[0].set_semi_sync(false).await.unwrap();
    for insert in inserts {
        let c = tokio::time::timeout(WAIT, insert)
            .await
            .expect("released")
            .unwrap();
        c.disconnect().await.unwrap();
    }
    signal("-CONT");
    pair.converge().await;
}

/// Why a cut-off writer's pod is deleted only after its agent has killed
/// it (`AwaitFence`): a commit waiting for an acknowledgement when the
/// server is asked to shut down gracefully (SIGTERM, what a pod deletion
/// sends first). MySQL 9.7 answers it "committed" although the replica
/// never received it; MariaDB 10.11 closes the connection. Either way the
/// row is in the old writer's binary log after a restart (the errant
/// tail). SIGKILL, the agent's fence, never answers a waiting commit.
async fn graceful_shutdown_and_waiting_commits(kind: Kind) {
    let mut pair = semi_sync_pair(kind).await;
    pair.admin[1].stop_receiver().await.unwrap();
    let mut c = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
    let insert = tokio::spawn(async move { c.query_drop("INSERT INTO app.t VALUES (2)").await });
    pair.wait_until(0, "the commit waiting", |o| {
        o.semi_sync.is_some_and(|s| s.waiting_sessions >= 1)
    })
    .await;
    let pid = pair.nodes[0].pid().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), insert)
        .await
        .expect("the waiting commit is answered by the shutdown")
        .unwrap();
    eprintln!("{kind:?}: a commit waiting for an acknowledgement, on SIGTERM: {answer:?}");
    let released = answer.is_ok();
    assert_eq!(
        released,
        kind == Kind::MySql,
        "MySQL releases the waiting commit as committed; MariaDB ends the connection"
    );
    // Restarted: the row is there either way (it was in the binary log).
    pair.nodes[0].restart();
    let mut c = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
    let n: Option<u64> = c
        .query_first("SELECT COUNT(*) FROM app.t WHERE id = 2")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    assert_eq!(n, Some(1), "the row is in the old writer's binary log");
    if released {
        // The client was told "committed" for a row the replica never
        // received: only SIGKILL before the deletion prevents it.
        let mut r = pair.conn(1, ADMIN_USER, ADMIN_PW).await;
        let on_replica: Option<u64> = r
            .query_first("SELECT COUNT(*) FROM app.t WHERE id = 2")
            .await
            .unwrap();
        r.disconnect().await.unwrap();
        assert_eq!(on_replica, Some(0), "the replica never received it");
    }
}

// Binary log dump sessions: a source shows its replica's one session of
// the replication account; ending it (what the operator does to a session
// a vanished replica left behind) makes the replica reconnect with a new
// one, and replication goes on.
async fn dump_sessions_are_observed_and_ended(kind: Kind) {
    let pair = Pair::start(kind).await;
    pair.wire().await;
    pair.unfence_both().await;
    let ours = |o: &Observation| -> Vec<u64> {
        o.dump_sessions
            .iter()
            .filter(|s| s.user == REPLICATION_USER)
            .map(|s| s.id)
            .collect()
    };
    let o = pair
        .wait_until(0, "one dump session of the replication account", |o| {
            ours(o).len() == 1
        })
        .await;
    let first = ours(&o)[0];
    assert_eq!(pair.admin[0].end_sessions(&[first]).await.unwrap(), 1);
    let o = pair
        .wait_until(0, "the replica reconnected with a new session", |o| {
            ours(o).len() == 1 && ours(o)[0] != first
        })
        .await;
    assert!(!ours(&o).contains(&first));
    // Gone (no longer listed, not even as Killed): not an error, nothing
    // ended. (Just after the KILL it may still be ending, and a second
    // KILL of it succeeds.)
    assert_eq!(pair.admin[0].end_sessions(&[first]).await.unwrap(), 0);
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO app.t (v) VALUES ('after')",
        ],
    )
    .await;
    pair.converge().await;
}

// A replica that vanished without closing its connection (frozen here by
// SIGSTOP, as a node cut off from the network looks to its source) leaves
// its dump session blocked in a write. On MariaDB a new replica with the
// same server_id (its replacement) then receives nothing until that
// session ends: the source's `net_write_timeout` (raised to an hour here,
// so only the ending can unblock it). The operator's rule names the stale
// session and ending it lets the replacement stream.
async fn a_vanished_replicas_session_is_ended_for_its_replacement(kind: Kind) {
    let pair = Pair::start(kind).await;
    pair.sql(0, &["SET GLOBAL net_write_timeout = 3600"]).await;
    pair.admin[1]
        .ensure_replication(&pair.source_for(1))
        .await
        .unwrap();
    pair.admin[0].unfence().await.unwrap();
    // Where a new replica starts (MariaDB): before the schema, which it
    // receives too.
    let start = pair.observe(0).await.gtid_executed;
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(2000))",
        ],
    )
    .await;
    let first = pair.observe(0).await.gtid_executed;
    assert!(
        pair.admin[1].wait_for_gtid_set(&first, WAIT).await.unwrap(),
        "the replica received the schema"
    );
    let signal = |sig: &str| signal_node(&pair.nodes[1], sig);
    signal("-STOP");
    // Far more than the socket buffers hold: the dump session's write
    // blocks on the frozen replica.
    let mut c = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
    for _ in 0..400 {
        c.query_drop(
            "INSERT INTO app.t (v) VALUES (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000)), (REPEAT('x', 2000))",
        )
        .await
        .unwrap();
    }
    c.disconnect().await.unwrap();
    // The replacement: the frozen node's my.cnf (its server_id), the
    // operator's accounts, replication from the source.
    let spec = spec(kind);
    let names = Names {
        pair: "seam".into(),
        namespace: "test".into(),
    };
    let replacement = Instance::start(kind, "seam1b", &render_mycnf(&spec, &names, 1));
    let root = client(&replacement, "root", "");
    root.ensure_users(&passwords()).await.unwrap();
    root.disconnect().await;
    let admin = client(&replacement, ADMIN_USER, ADMIN_PW);
    if kind == Kind::MariaDb {
        admin.set_replica_position(&start).await.unwrap();
    }
    admin.ensure_replication(&pair.source_for(1)).await.unwrap();
    let o = pair
        .wait_until(0, "the replacement's session beside the stale one", |o| {
            o.dump_sessions
                .iter()
                .filter(|s| s.user == REPLICATION_USER)
                .count()
                == 2
        })
        .await;
    let stale =
        mysql_aa_operator::topology::stale_dump_sessions(&o.dump_sessions, REPLICATION_USER);
    assert_eq!(stale.len(), 1, "{:?}", o.dump_sessions);
    assert_eq!(pair.admin[0].end_sessions(&stale).await.unwrap(), 1);
    let all = pair.observe(0).await.gtid_executed;
    let received = admin.wait_for_gtid_set(&all, WAIT).await.unwrap();
    signal("-CONT");
    assert!(
        received,
        "the replacement did not receive the source's transactions"
    );
}

macro_rules! for_both_servers {
    ($($name:ident),* $(,)?) => {
        mod mysql_9_7 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(test_servers::Kind::MySql).await
                }
            )*
        }
        mod mariadb_10_11 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(test_servers::Kind::MariaDb).await
                }
            )*
        }
    };
}

for_both_servers!(
    wires_both_directions_and_converges,
    concurrent_inserts_never_collide,
    rewiring_changes_nothing,
    duplicate_key_halts_and_skip_one_resumes,
    concurrent_updates_diverge_silently_and_checksums_tell,
    fence_blocks_writes_and_ends_connections,
    kill9_and_restart_resumes_replication,
    bad_input_gives_typed_errors_in_time,
    unsupported_version_is_refused,
    semi_sync_holds_commits_without_the_replica,
    observed_while_a_connected_replica_does_not_acknowledge,
    graceful_shutdown_and_waiting_commits,
    dump_sessions_are_observed_and_ended,
    a_vanished_replicas_session_is_ended_for_its_replacement,
);

/// TLS: the operator's own connection and the replication channel, on
/// MySQL (which generates its certificates at initialization; MariaDB 10.11
/// has none unless given some).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_9_7_tls_client_and_replication_channel() {
    use mysql_aa_operator::mysql::ChannelTls;
    use mysql_aa_operator::mysql::client::ClientTls;
    let pair = Pair::start(Kind::MySql).await;
    // The operator's connection over TLS (certificate not verified).
    let mut opts = ConnectOptions::new(
        endpoint(&pair.nodes[0]),
        ADMIN_USER,
        Password::new(ADMIN_PW),
    );
    opts.tls = ClientTls::Required;
    let tls_client = MySqlClient::new(opts);
    // (mysql_async refuses to go on without TLS when TLS options are set.)
    tls_client.observe().await.unwrap();
    // Replication channels that require TLS.
    for ord in 0..2 {
        let mut source = pair.source_for(ord);
        source.tls = ChannelTls::Required;
        assert_eq!(
            pair.admin[ord].ensure_replication(&source).await.unwrap(),
            WireOutcome::Reconfigured
        );
    }
    for ord in 0..2 {
        let o = pair.wait_until(ord, "replicating over TLS", running).await;
        assert!(o.replica.as_ref().unwrap().ssl, "the channel requires TLS");
    }
    pair.unfence_both().await;
    pair.sql(0, &["CREATE DATABASE tls_ok"]).await;
    pair.converge().await;
    // Switching the channel back to plain is a change; the same settings are not.
    let mut plain = pair.source_for(1);
    plain.tls = ChannelTls::Required;
    assert_eq!(
        pair.admin[1].ensure_replication(&plain).await.unwrap(),
        WireOutcome::Unchanged
    );
    plain.tls = ChannelTls::Disabled;
    assert_eq!(
        pair.admin[1].ensure_replication(&plain).await.unwrap(),
        WireOutcome::Reconfigured
    );
}

/// A wired pair whose ordinal 0 took 16 rows, then purged its binary
/// logs, and whose ordinal 1 lost its disk (a fresh data directory, the
/// operator's accounts) and is stuck: its receiver stopped on the purged
/// logs. Returns the pair, the writer's observation and node 1's identity
/// before the loss.
async fn replica_lost_its_disk(
    kind: Kind,
) -> (Pair, Observation, mysql_aa_operator::mysql::ServerInfo) {
    let mut pair = Pair::start(kind).await;
    pair.wire().await;
    pair.admin[0].unfence().await.unwrap();
    pair.sql(
        0,
        &[
            "CREATE DATABASE app",
            "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200))",
            "INSERT INTO app.t (v) VALUES (REPEAT('a', 200)), (REPEAT('b', 200))",
            "INSERT INTO app.t (v) SELECT v FROM app.t",
            "INSERT INTO app.t (v) SELECT v FROM app.t",
            "INSERT INTO app.t (v) SELECT v FROM app.t",
        ],
    )
    .await;
    pair.converge().await;
    let before = pair.observe(1).await.info;
    // The writer keeps only a fresh binary log: what it executed so far
    // can no longer be sent. (A log a dump thread still reads is not
    // purged: the replica stops first, and the purge is repeated until it
    // took.)
    pair.admin[1].stop_replica().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        pair.sql(
            0,
            &[
                "FLUSH BINARY LOGS",
                "PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 DAY",
            ],
        )
        .await;
        let mut c = pair.conn(0, ADMIN_USER, ADMIN_PW).await;
        let logs: Vec<mysql_async::Row> = c.query("SHOW BINARY LOGS").await.unwrap();
        c.disconnect().await.unwrap();
        if logs.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{} binary logs left", logs.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let writer = pair.observe(0).await;
    pair.nodes[1].wipe();
    assert!(
        client(&pair.nodes[1], "root", "")
            .ensure_users(&passwords())
            .await
            .unwrap()
    );
    pair.admin[1]
        .ensure_replication(&pair.source_for(1))
        .await
        .unwrap();
    pair.wait_until(1, "the receiver failing on purged logs", |o| {
        o.replica
            .as_ref()
            .is_some_and(|r| r.source_purged_needed_logs())
    })
    .await;
    (pair, writer, before)
}

/// Re-seed on MySQL: a node that lost its disk (a fresh data directory)
/// cannot catch up from a writer that purged its binary logs (receiver
/// error 1236); the clone plugin copies the writer's data into it through
/// the replication account (BACKUP_ADMIN), the server asks for a restart
/// (3707: no supervisor), and once restarted it keeps its own identity
/// (server_id, auto_increment_offset, server_uuid), has every transaction
/// of the writer, and replicates both ways again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_9_7_reseed_by_clone() {
    use mysql_aa_operator::mysql::CloneOutcome;
    let (mut pair, writer, before) = replica_lost_its_disk(Kind::MySql).await;
    let stuck = pair.observe(1).await;
    assert_eq!(stuck.gtid_executed, "", "a fresh node has executed nothing");
    pair.admin[1].stop_replica().await.unwrap();
    // With tables of its own (the clone drops them), fenced as the
    // operator keeps a replica (super_read_only). Written outside its
    // binary log: the writer's channel from this node (wired before it lost
    // its disk) would otherwise copy them to the writer, and the clone back
    // (the test failed 1 run in several so).
    pair.admin[1].unfence().await.unwrap();
    pair.sql(
        1,
        &[
            "SET SESSION sql_log_bin = 0",
            "CREATE DATABASE own",
            "CREATE TABLE own.t (id INT PRIMARY KEY)",
        ],
    )
    .await;
    pair.admin[1].fence().await.unwrap();
    // The pod's bootstrap marker, in the data directory.
    let marker = pair.nodes[1].data_dir().join(".mysql-aa-bootstrapped");
    std::fs::write(&marker, "").unwrap();
    let outcome = pair.admin[1]
        .clone_data_from(&pair.source_for(1), Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(outcome, CloneOutcome::RestartNeeded);
    let exited = pair.nodes[1].wait_exit(Duration::from_secs(30));
    eprintln!("after the clone the recipient exited by itself: {exited}");
    assert!(
        marker.exists(),
        "the bootstrap marker survives the clone (the pod's init container keeps the data)"
    );
    pair.nodes[1].restart();
    let status = pair.admin[1]
        .clone_status()
        .await
        .unwrap()
        .expect("a clone");
    assert_eq!(
        (status.state.as_str(), status.error),
        ("Completed", 0),
        "{status:?}"
    );
    assert!(
        status.bytes_total > 0 && status.bytes_done == status.bytes_total,
        "the last clone's figures survive the restart: {status:?}"
    );
    let after = pair.observe(1).await;
    assert_eq!(
        after.gtid_executed, writer.gtid_executed,
        "every transaction of the writer"
    );
    assert_eq!(status.gtid_executed, writer.gtid_executed);
    assert_eq!(after.info.server_id, before.server_id, "its own server_id");
    assert_ne!(
        after.info.server_uuid, writer.info.server_uuid,
        "its own server_uuid"
    );
    assert!(after.read_only, "a re-seeded node starts read-only");
    assert_eq!(
        pair.offset_and_rows(1).await,
        (2, 16),
        "its own offset (my.cnf), the writer's rows"
    );
    // Re-paired both ways, from the cloned state.
    pair.wire().await;
    pair.sql(0, &["INSERT INTO app.t (v) VALUES ('after')"])
        .await;
    pair.converge().await;
    for ord in 0..2 {
        let o = pair
            .wait_until(ord, "its channel running", |o| {
                o.replica.as_ref().is_some_and(|r| r.running())
            })
            .await;
        eprintln!(
            "node {ord}: {:?}",
            o.replica.map(|r| (r.last_io_errno, r.last_io_error))
        );
    }
}

/// Re-seed on MariaDB: a node that lost its disk cannot catch up from a
/// writer that purged its binary logs (receiver error 1236); the writer's
/// backup is streamed over TCP as it is taken (`mariadb-backup --backup
/// --stream=xbstream`), unpacked and prepared on the recipient, which
/// starts on it, replicates from the GTID position the backup recorded,
/// keeps its own server_id and auto_increment_offset, and replicates both
/// ways again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_10_11_reseed_by_streamed_backup() {
    let (mut pair, writer, before) = replica_lost_its_disk(Kind::MariaDb).await;
    // The stream, over TCP as between two pods.
    let target = pair.nodes[1].dir.join("tmp/seeded");
    let copy = mariadb_stream::stream_backup(&pair.nodes[0], ADMIN_USER, ADMIN_PW, &target).await;
    let (sent, position) = (
        copy.bytes,
        copy.position.expect("the backup records a GTID position"),
    );
    eprintln!("streamed {sent} bytes; position {position}");
    assert!(sent > 1_000_000, "a whole data directory: {sent} bytes");
    assert_eq!(position, writer.gtid_executed, "the writer's position");
    pair.nodes[1].replace_data_with(|data| std::fs::rename(&target, data).unwrap());
    pair.admin[1].stop_replica().await.unwrap();
    pair.admin[1].set_replica_position(&position).await.unwrap();
    pair.wire().await;
    pair.sql(0, &["INSERT INTO app.t (v) VALUES ('after')"])
        .await;
    pair.converge().await;
    let after = pair.observe(1).await;
    assert!(
        after.replica.as_ref().is_some_and(|r| r.running()),
        "{after:?}"
    );
    assert_eq!(after.info.server_id, before.server_id, "its own server_id");
    assert!(after.read_only, "a re-seeded node starts read-only");
    assert_eq!(
        pair.offset_and_rows(1).await,
        (2, 17),
        "its own offset (my.cnf), every row"
    );
}
