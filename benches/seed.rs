//! Seed time against a plain copy (issue 14): for each engine and data
//! size, a donor server is filled, then a fresh recipient gets its data the
//! way the operator re-seeds a node (MySQL: the clone plugin over the
//! MySQL protocol, until the recipient asks for its restart; MariaDB: the
//! streamed `mariadb-backup` over TCP, unpacked and prepared), and the
//! same data directory is copied with `cp -a` for comparison. Real servers
//! (`scripts/install-test-servers`), on this machine's loopback.
//!
//! `cargo bench --bench seed`; `SEED_ENGINES` (default `MySQL,MariaDB`),
//! `SEED_SIZES_MB` (default `100,1000`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench may panic

use std::time::{Duration, Instant};

use mysql_aa_operator::accounts::{ADMIN_USER, REPLICATION_USER};
use mysql_aa_operator::api::MySQLActiveActiveSpec;
use mysql_aa_operator::mysql::client::{ConnectOptions, MySqlClient};
use mysql_aa_operator::mysql::{
    AccountPasswords, CloneOutcome, Endpoint, Password, Server, SourceSpec,
};
use mysql_aa_operator::render::Names;
use mysql_aa_operator::render::mycnf::render_mycnf;
use mysql_async::prelude::Queryable;
use test_servers::{Instance, Kind};

#[path = "../tests/support/mariadb_stream.rs"]
mod mariadb_stream;

const ADMIN_PW: &str = "bench-admin";
const REPL_PW: &str = "bench-repl";

fn client(i: &Instance, user: &str, password: &str) -> MySqlClient {
    MySqlClient::new(ConnectOptions::new(
        Endpoint {
            host: i.host.clone(),
            port: i.port,
        },
        user,
        Password::new(password),
    ))
}

async fn start(kind: Kind, ordinal: u32) -> Instance {
    let engine = match kind {
        Kind::MySql => "MySQL",
        Kind::MariaDb => "MariaDB",
    };
    let spec: MySQLActiveActiveSpec =
        serde_json::from_value(serde_json::json!({ "engine": engine })).unwrap();
    let names = Names {
        pair: "seed".into(),
        namespace: "bench".into(),
    };
    let i = Instance::start(
        kind,
        &format!("seed{ordinal}"),
        &render_mycnf(&spec, &names, ordinal),
    );
    let root = client(&i, "root", "");
    root.ensure_users(&AccountPasswords {
        admin: Password::new(ADMIN_PW),
        replication: Password::new(REPL_PW),
    })
    .await
    .unwrap();
    root.disconnect().await;
    i
}

/// Fills `i` with about `mb` MB of InnoDB rows; returns the bytes the
/// tables take.
async fn fill(i: &Instance, mb: u64) -> u64 {
    let url = format!("mysql://{ADMIN_USER}:{ADMIN_PW}@{}:{}", i.host, i.port);
    let mut c = mysql_async::Conn::from_url(url).await.unwrap();
    for sql in [
        "SET GLOBAL read_only = OFF",
        "CREATE DATABASE app",
        "USE app",
        "CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(1000))",
        "INSERT INTO app.t (v) VALUES (REPEAT(SHA2(RAND(), 256), 15))",
    ] {
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    loop {
        let bytes: u64 = c
            .query_first(
                "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = 'app'",
            )
            .await
            .unwrap()
            .unwrap();
        let rows: u64 = c
            .query_first("SELECT COUNT(*) FROM app.t")
            .await
            .unwrap()
            .unwrap();
        if bytes >= mb * 1_000_000 {
            c.query_drop("ANALYZE TABLE app.t").await.unwrap();
            c.disconnect().await.unwrap();
            return bytes;
        }
        // Double the rows, at most 200k at a time.
        c.query_drop(format!(
            "INSERT INTO app.t (v) SELECT REPEAT(SHA2(RAND(), 256), 15) FROM app.t LIMIT {}",
            rows.min(200_000)
        ))
        .await
        .unwrap();
        c.query_drop("ANALYZE TABLE app.t").await.unwrap();
    }
}

fn du(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-sb"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Seconds to `cp -a` the donor's data directory.
fn plain_copy(donor: &Instance) -> f64 {
    let target = donor.dir.join("tmp/plain-copy");
    let _ = std::fs::remove_dir_all(&target);
    let t = Instant::now();
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(donor.data_dir())
        .arg(&target)
        .status()
        .unwrap()
        .success();
    let secs = t.elapsed().as_secs_f64();
    assert!(ok, "cp -a failed");
    std::fs::remove_dir_all(&target).unwrap();
    secs
}

/// Seconds the seed takes, and the bytes it moved.
async fn seed(kind: Kind, donor: &Instance, recipient: &mut Instance) -> (f64, u64) {
    match kind {
        Kind::MySql => {
            let r = client(recipient, ADMIN_USER, ADMIN_PW);
            let source = SourceSpec {
                endpoint: Endpoint {
                    host: donor.host.clone(),
                    port: donor.port,
                },
                user: REPLICATION_USER.into(),
                password: Password::new(REPL_PW),
                tls: Default::default(),
            };
            let t = Instant::now();
            let outcome = r
                .clone_data_from(&source, Duration::from_secs(3600))
                .await
                .unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(outcome, CloneOutcome::RestartNeeded);
            recipient.wait_exit(Duration::from_secs(60));
            recipient.restart();
            let status = client(recipient, ADMIN_USER, ADMIN_PW)
                .clone_status()
                .await
                .unwrap()
                .unwrap();
            assert_eq!(status.state, "Completed", "{status:?}");
            (secs, status.bytes_total)
        }
        Kind::MariaDb => {
            let target = recipient.dir.join("tmp/seeded");
            let t = Instant::now();
            let copy = mariadb_stream::stream_backup(donor, ADMIN_USER, ADMIN_PW, &target).await;
            assert!(copy.position.is_some(), "a GTID position");
            let sent = copy.bytes;
            let secs = t.elapsed().as_secs_f64();
            recipient.replace_data_with(|data| std::fs::rename(&target, data).unwrap());
            (secs, sent)
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let engines = std::env::var("SEED_ENGINES").unwrap_or_else(|_| "MySQL,MariaDB".into());
    let sizes: Vec<u64> = std::env::var("SEED_SIZES_MB")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut rows = Vec::new();
    for engine in engines.split(',').map(str::trim) {
        let kind = match engine {
            "MySQL" => Kind::MySql,
            "MariaDB" => Kind::MariaDb,
            other => panic!("unknown engine {other}"),
        };
        for &mb in &sizes {
            let donor = start(kind, 0).await;
            let mut recipient = start(kind, 1).await;
            let tables = fill(&donor, mb).await;
            let datadir = du(&donor.data_dir());
            let copy = plain_copy(&donor);
            let (secs, moved) = seed(kind, &donor, &mut recipient).await;
            eprintln!(
                "{engine} {mb} MB: tables {tables} B, data directory {datadir} B, plain copy {copy:.2} s, seed {secs:.2} s ({moved} B)"
            );
            rows.push((engine.to_string(), mb, datadir, copy, secs, moved));
        }
    }
    println!(
        "| engine | table data | data directory | plain copy (`cp -a`) | seed | bytes the seed moved | seed / copy |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (engine, mb, datadir, copy, secs, moved) in rows {
        println!(
            "| {engine} | {mb} MB | {:.0} MB | {copy:.2} s | {secs:.2} s | {:.0} MB | {:.1} |",
            datadir as f64 / 1e6,
            moved as f64 / 1e6,
            secs / copy
        );
    }
}
