//! The SQL each flavour and version needs. Pure functions, table tested.
//!
//! | what | MySQL 8.0.23+ | MariaDB 10.6+ |
//! |---|---|---|
//! | replica status | `SHOW REPLICA STATUS` | `SHOW REPLICA STATUS` (columns still `Slave_*`/`Master_*`) |
//! | point at a source | `CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION=1` | `CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos` |
//! | executed GTIDs | `@@GLOBAL.gtid_executed` | `@@GLOBAL.gtid_current_pos` |
//! | read-only for all | `super_read_only` | `read_only` (users without READ ONLY ADMIN) |
//! | wait for GTIDs | `WAIT_FOR_EXECUTED_GTID_SET(set, s)` | `MASTER_GTID_WAIT(pos, s)` |
//! | skip one transaction | empty transaction with `gtid_next` | `sql_slave_skip_counter = 1` (one event group) |
//! | semi-sync source state | `rpl_semi_sync_source_enabled`, `Rpl_semi_sync_source_*` | `rpl_semi_sync_master_enabled`, `Rpl_semi_sync_master_*` |
//!
//! An observation never asks for the binary log status: MariaDB 10.11's
//! `SHOW BINLOG STATUS` waits while a group commit waits for a semi-sync
//! acknowledgement, which made a writer cut off from its replica look
//! unreachable (seam test `observed_while_a_connected_replica_does_not_acknowledge`).

use super::version::{Flavor, Version};
use super::{ChannelTls, SemiSyncSource, SourceSpec};

/// Seconds between reconnection attempts of a replica's receiver: one, so
/// a writer restarted in place gets its semi-sync replica back (and can
/// commit again) at most a second after it answers.
pub const CONNECT_RETRY_SECONDS: u32 = 1;
/// Reconnection attempts before a receiver gives up (about a day).
pub const RETRY_COUNT: u32 = 86400;

/// Quotes `s` as a SQL string literal. Connections of the operator run
/// without `NO_BACKSLASH_ESCAPES`, so backslashes are escaped too.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `SHOW REPLICA STATUS`, for both flavours' supported versions.
pub fn show_replica_status() -> &'static str {
    "SHOW REPLICA STATUS"
}

/// Query of the executed GTID set.
pub fn executed_gtid_query(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MySQL => "SELECT @@GLOBAL.gtid_executed",
        Flavor::MariaDB => "SELECT @@GLOBAL.gtid_current_pos",
    }
}

/// Query of the binary log dump sessions (`Binlog Dump`, `Binlog Dump
/// GTID`, and `Killed` ones still ending) as rows of `id`, `user` and
/// `seconds`. MySQL reads `performance_schema.processlist` (its
/// `information_schema` table is deprecated).
pub fn dump_sessions_query(flavor: Flavor) -> String {
    let table = match flavor {
        Flavor::MySQL => "performance_schema.processlist",
        Flavor::MariaDB => "information_schema.PROCESSLIST",
    };
    format!(
        "SELECT ID AS id, USER AS user, TIME AS seconds FROM {table} \
         WHERE COMMAND LIKE 'Binlog Dump%' OR COMMAND = 'Killed'"
    )
}

/// Ends the session `id` (its socket is shut down at once, which also
/// ends a write blocked on a peer that vanished).
pub fn kill_connection(id: u64) -> String {
    format!("KILL CONNECTION {id}")
}

/// Queries of the semi-synchronous source's state, as (`Variable_name`,
/// `Value`) rows: whether waiting is on (the variable `..._enabled`), its
/// `..._status` (ON while commits wait for acknowledgements), `..._clients`
/// (replicas connected in semi-sync mode), `..._wait_sessions` (commits
/// waiting now) and `..._yes_tx` (commits acknowledged so far). No rows
/// when semi-sync is not loaded.
pub fn semi_sync_source_state(flavor: Flavor) -> [&'static str; 2] {
    match flavor {
        Flavor::MySQL => [
            "SHOW GLOBAL VARIABLES WHERE Variable_name = 'rpl_semi_sync_source_enabled'",
            "SHOW GLOBAL STATUS WHERE Variable_name IN \
             ('Rpl_semi_sync_source_status', 'Rpl_semi_sync_source_clients', \
              'Rpl_semi_sync_source_wait_sessions', 'Rpl_semi_sync_source_yes_tx')",
        ],
        Flavor::MariaDB => [
            "SHOW GLOBAL VARIABLES WHERE Variable_name = 'rpl_semi_sync_master_enabled'",
            "SHOW GLOBAL STATUS WHERE Variable_name IN \
             ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients', \
              'Rpl_semi_sync_master_wait_sessions', 'Rpl_semi_sync_master_yes_tx')",
        ],
    }
}

/// The semi-sync source state from the rows of [`semi_sync_source_state`];
/// `None` when semi-sync is not loaded (no `..._enabled` row).
pub fn semi_sync_source(rows: &[(String, String)]) -> Option<SemiSyncSource> {
    let get = |suffix: &str| {
        rows.iter()
            .find(|(k, _)| k.to_ascii_lowercase().ends_with(suffix))
            .map(|(_, v)| v.as_str())
    };
    let on = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case("ON") || v == "1");
    let number = |suffix: &str| get(suffix).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let enabled = get("_enabled")?;
    Some(SemiSyncSource {
        enabled: on(Some(enabled)),
        waiting_for_acks: on(get("_status")),
        clients: number("_clients"),
        waiting_sessions: number("_wait_sessions"),
        acknowledged: number("_yes_tx"),
    })
}

/// Turns waiting for acknowledgements on or off.
pub fn set_semi_sync_source(flavor: Flavor, on: bool) -> String {
    let value = if on { "ON" } else { "OFF" };
    match flavor {
        Flavor::MySQL => format!("SET GLOBAL rpl_semi_sync_source_enabled = {value}"),
        Flavor::MariaDB => format!("SET GLOBAL rpl_semi_sync_master_enabled = {value}"),
    }
}

/// Stops the receiver (IO thread) only: the applier goes on with what was
/// received.
pub fn stop_receiver() -> &'static str {
    "STOP REPLICA IO_THREAD"
}

/// Schemas that hold user data: every schema but the servers' own.
pub const USER_SCHEMAS: &str = "SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA \
     WHERE SCHEMA_NAME NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema') \
     ORDER BY SCHEMA_NAME";

/// Starts both replication threads.
pub fn start_replica() -> &'static str {
    "START REPLICA"
}

/// Stops both replication threads.
pub fn stop_replica() -> &'static str {
    "STOP REPLICA"
}

/// Points the replica at `source` with GTID auto-position.
pub fn change_source(flavor: Flavor, source: &SourceSpec) -> String {
    let (ssl, ca, verify) = match &source.tls {
        ChannelTls::Disabled => (false, None, false),
        ChannelTls::Required => (true, None, false),
        ChannelTls::VerifyCa { ca_file } => (true, Some(ca_file.as_str()), false),
        ChannelTls::VerifyIdentity { ca_file } => (true, Some(ca_file.as_str()), true),
    };
    let host = quote(&source.endpoint.host);
    let port = source.endpoint.port;
    let user = quote(&source.user);
    let password = quote(source.password.expose());
    match flavor {
        Flavor::MySQL => {
            let mut sql = format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST={host}, SOURCE_PORT={port}, \
                 SOURCE_USER={user}, SOURCE_PASSWORD={password}, SOURCE_AUTO_POSITION=1, \
                 SOURCE_CONNECT_RETRY={CONNECT_RETRY_SECONDS}, SOURCE_RETRY_COUNT={RETRY_COUNT}, \
                 GET_SOURCE_PUBLIC_KEY=1, SOURCE_SSL={}, SOURCE_SSL_VERIFY_SERVER_CERT={}",
                u8::from(ssl),
                u8::from(verify)
            );
            sql.push_str(&format!(", SOURCE_SSL_CA={}", quote(ca.unwrap_or(""))));
            sql
        }
        Flavor::MariaDB => {
            format!(
                "CHANGE MASTER TO MASTER_HOST={host}, MASTER_PORT={port}, MASTER_USER={user}, \
                 MASTER_PASSWORD={password}, MASTER_USE_GTID=slave_pos, \
                 MASTER_CONNECT_RETRY={CONNECT_RETRY_SECONDS}, MASTER_SSL={}, \
                 MASTER_SSL_VERIFY_SERVER_CERT={}, MASTER_SSL_CA={}",
                u8::from(ssl),
                u8::from(verify),
                quote(ca.unwrap_or(""))
            )
        }
    }
}

/// Statements creating `user`@'%' with `password` and granting
/// `privileges` on everything.
pub fn create_account(
    user: &str,
    password: &super::Password,
    privileges: &str,
    grant_option: bool,
) -> [String; 2] {
    [
        format!(
            "CREATE USER {}@'%' IDENTIFIED BY {}",
            quote(user),
            quote(password.expose())
        ),
        format!(
            "GRANT {privileges} ON *.* TO {}@'%'{}",
            quote(user),
            if grant_option {
                " WITH GRANT OPTION"
            } else {
                ""
            }
        ),
    ]
}

/// The error a clone recipient without a supervisor answers once the
/// donor's data is in place: "Restart server failed (mysqld is not managed
/// by supervisor process)".
pub const CLONE_RESTART_NEEDED: u16 = 3707;

/// MySQL: drops the server's binary logs and executed GTID set.
pub fn reset_binary_logs(version: Version) -> &'static str {
    if version >= Version::new(8, 2, 0) {
        "RESET BINARY LOGS AND GTIDS"
    } else {
        "RESET MASTER"
    }
}

/// MySQL: the statements that clone `donor` into the server they run on:
/// the donor is the only valid one, then the copy (over TLS when the
/// channel asks for it).
pub fn clone_instance(donor: &SourceSpec) -> [String; 2] {
    let at = format!("{}:{}", donor.endpoint.host, donor.endpoint.port);
    let ssl = match donor.tls {
        ChannelTls::Disabled => "NO SSL",
        _ => "SSL",
    };
    [
        format!("SET GLOBAL clone_valid_donor_list = {}", quote(&at)),
        format!(
            "CLONE INSTANCE FROM {}@{}:{} IDENTIFIED BY {} REQUIRE {ssl}",
            quote(&donor.user),
            quote(&donor.endpoint.host),
            donor.endpoint.port,
            quote(donor.password.expose())
        ),
    ]
}

/// MySQL: the last clone's state, and its bytes copied of those estimated.
pub const CLONE_STATUS: &str = "SELECT s.STATE AS state, s.ERROR_NO AS error, \
     s.ERROR_MESSAGE AS message, s.GTID_EXECUTED AS gtid, \
     (SELECT COALESCE(SUM(p.DATA), 0) FROM performance_schema.clone_progress p) AS done, \
     (SELECT COALESCE(SUM(p.ESTIMATE), 0) FROM performance_schema.clone_progress p) AS total, \
     (SELECT g.VARIABLE_VALUE FROM performance_schema.global_status g \
      WHERE g.VARIABLE_NAME = 'Uptime') AS uptime \
     FROM performance_schema.clone_status s";

/// MariaDB: where replication from the source starts.
pub fn set_replica_position(gtid: &str) -> String {
    format!("SET GLOBAL gtid_slave_pos = {}", quote(gtid))
}

/// MySQL: 0 when `user`@'%' holds `BACKUP_ADMIN` (the clone donor's
/// privilege), 1 when it lacks it.
pub fn missing_backup_admin(user: &str) -> String {
    format!(
        "SELECT 1 - COUNT(*) FROM mysql.global_grants \
         WHERE USER = {} AND HOST = '%' AND PRIV = 'BACKUP_ADMIN'",
        quote(user)
    )
}

/// Statements that make the server read-only for every client.
pub fn fence(flavor: Flavor) -> &'static [&'static str] {
    match flavor {
        Flavor::MySQL => &["SET GLOBAL super_read_only = ON"],
        Flavor::MariaDB => &["SET GLOBAL read_only = ON"],
    }
}

/// Statements that make the server writable.
pub fn unfence(flavor: Flavor) -> &'static [&'static str] {
    match flavor {
        Flavor::MySQL => &[
            "SET GLOBAL super_read_only = OFF",
            "SET GLOBAL read_only = OFF",
        ],
        Flavor::MariaDB => &["SET GLOBAL read_only = OFF"],
    }
}

/// A query returning 0 once `gtid_set` is applied, non-zero on timeout.
pub fn wait_for_gtid_set(flavor: Flavor, gtid_set: &str, seconds: f64) -> String {
    match flavor {
        Flavor::MySQL => format!(
            "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {seconds:.3})",
            quote(gtid_set)
        ),
        Flavor::MariaDB => format!("SELECT MASTER_GTID_WAIT({}, {seconds:.3})", quote(gtid_set)),
    }
}

/// Statements that skip exactly the transaction `gtid` (MySQL: commit an
/// empty transaction under its GTID; the replica then never applies it).
/// MariaDB has no GTID-addressed skip: the caller uses [`mariadb_skip_one`]
/// after checking that the applier is stopped on `gtid`.
pub fn mysql_skip_transaction(gtid: &str) -> Vec<String> {
    vec![
        format!("SET GTID_NEXT = {}", quote(gtid)),
        "BEGIN".into(),
        "COMMIT".into(),
        "SET GTID_NEXT = 'AUTOMATIC'".into(),
    ]
}

/// MariaDB: skip the next event group of the stopped applier.
pub fn mariadb_skip_one() -> &'static str {
    "SET GLOBAL sql_slave_skip_counter = 1"
}

/// Users whose connections fencing keeps: replication and server threads.
pub const KEEP_USERS: &[&str] = &["system user", "event_scheduler", "system", "DELAYED"];

/// Commands of connections fencing keeps (replication streams to the peer).
pub const KEEP_COMMANDS: &[&str] = &[
    "Binlog Dump",
    "Binlog Dump GTID",
    "Daemon",
    "Slave_IO",
    "Slave_SQL",
    "Slave_worker",
];

/// Which connections fencing ends: every client connection except the
/// operator's own (`operator_users`), replication and server threads.
pub fn connections_to_end(
    processlist: &[(u64, String, String)],
    own_id: u64,
    operator_users: &[&str],
) -> Vec<u64> {
    processlist
        .iter()
        .filter(|(id, user, command)| {
            *id != own_id
                && !KEEP_USERS.contains(&user.as_str())
                && !operator_users.contains(&user.as_str())
                && !KEEP_COMMANDS.contains(&command.as_str())
        })
        .map(|(id, _, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Endpoint, Password};
    use super::*;

    fn source(tls: ChannelTls) -> SourceSpec {
        SourceSpec {
            endpoint: Endpoint {
                host: "db-1.db-headless.ns.svc".into(),
                port: 3306,
            },
            user: "mysqlaa_repl".into(),
            password: Password::new("p'w\\d"),
            tls,
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quote("a\\b"), "'a\\\\b'");
        assert_eq!(quote("x\ny"), "'x\\ny'");
    }

    #[test]
    fn semi_sync_source_state_both_flavours() {
        let rows = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mysql = rows(&[
            ("rpl_semi_sync_source_enabled", "ON"),
            ("Rpl_semi_sync_source_status", "ON"),
            ("Rpl_semi_sync_source_clients", "1"),
            ("Rpl_semi_sync_source_wait_sessions", "2"),
            ("Rpl_semi_sync_source_yes_tx", "41"),
        ]);
        let s = semi_sync_source(&mysql).unwrap();
        assert!(s.enabled && s.waiting_for_acks && s.acknowledging());
        assert_eq!((s.clients, s.waiting_sessions, s.acknowledged), (1, 2, 41));
        let maria = rows(&[
            ("RPL_SEMI_SYNC_MASTER_ENABLED", "OFF"),
            ("RPL_SEMI_SYNC_MASTER_STATUS", "OFF"),
            ("RPL_SEMI_SYNC_MASTER_CLIENTS", "1"),
        ]);
        let s = semi_sync_source(&maria).unwrap();
        assert!(!s.enabled && !s.acknowledging());
        // Waiting on, nobody connected to acknowledge.
        let alone = rows(&[
            ("rpl_semi_sync_source_enabled", "ON"),
            ("Rpl_semi_sync_source_status", "ON"),
            ("Rpl_semi_sync_source_clients", "0"),
        ]);
        assert!(!semi_sync_source(&alone).unwrap().acknowledging());
        // Not loaded.
        assert_eq!(semi_sync_source(&[]), None);
        assert_eq!(
            set_semi_sync_source(Flavor::MariaDB, false),
            "SET GLOBAL rpl_semi_sync_master_enabled = OFF"
        );
    }

    #[test]
    fn change_source_per_flavour() {
        let mysql = change_source(Flavor::MySQL, &source(ChannelTls::Disabled));
        assert!(mysql.starts_with(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='db-1.db-headless.ns.svc', SOURCE_PORT=3306"
        ));
        assert!(mysql.contains("SOURCE_AUTO_POSITION=1"));
        assert!(mysql.contains("SOURCE_PASSWORD='p''w\\\\d'"));
        assert!(mysql.contains("GET_SOURCE_PUBLIC_KEY=1"));
        assert!(mysql.contains("SOURCE_SSL=0"));
        let verify = change_source(
            Flavor::MySQL,
            &source(ChannelTls::VerifyIdentity {
                ca_file: "/etc/mysql-aa-tls/ca.crt".into(),
            }),
        );
        assert!(verify.contains("SOURCE_SSL=1, SOURCE_SSL_VERIFY_SERVER_CERT=1, SOURCE_SSL_CA='/etc/mysql-aa-tls/ca.crt'"));
        let maria = change_source(Flavor::MariaDB, &source(ChannelTls::Required));
        assert!(maria.starts_with(
            "CHANGE MASTER TO MASTER_HOST='db-1.db-headless.ns.svc', MASTER_PORT=3306"
        ));
        assert!(maria.contains("MASTER_USE_GTID=slave_pos"));
        assert!(maria.contains("MASTER_SSL=1"));
        assert!(!maria.contains("SOURCE_"));
    }

    #[test]
    fn flavour_dependent_statements() {
        assert_eq!(reset_binary_logs(Version::new(8, 0, 40)), "RESET MASTER");
        assert_eq!(
            reset_binary_logs(Version::new(9, 7, 0)),
            "RESET BINARY LOGS AND GTIDS"
        );
        assert_eq!(fence(Flavor::MySQL), ["SET GLOBAL super_read_only = ON"]);
        assert_eq!(fence(Flavor::MariaDB), ["SET GLOBAL read_only = ON"]);
        assert!(
            wait_for_gtid_set(Flavor::MySQL, "u:1-3", 2.0)
                .starts_with("SELECT WAIT_FOR_EXECUTED_GTID_SET('u:1-3', 2.000)")
        );
        assert!(
            wait_for_gtid_set(Flavor::MariaDB, "1-1-3", 0.5)
                .starts_with("SELECT MASTER_GTID_WAIT('1-1-3', 0.500)")
        );
        assert_eq!(mysql_skip_transaction("u:7")[0], "SET GTID_NEXT = 'u:7'");
    }

    #[test]
    fn clone_statements() {
        let donor = |tls| SourceSpec {
            endpoint: Endpoint {
                host: "db-0.db-headless.ns.svc".into(),
                port: 3306,
            },
            user: "mysqlaa_repl".into(),
            password: Password::new("it's"),
            tls,
        };
        let [list, clone] = clone_instance(&donor(ChannelTls::Disabled));
        assert_eq!(
            list,
            "SET GLOBAL clone_valid_donor_list = 'db-0.db-headless.ns.svc:3306'"
        );
        assert_eq!(
            clone,
            "CLONE INSTANCE FROM 'mysqlaa_repl'@'db-0.db-headless.ns.svc':3306 \
             IDENTIFIED BY 'it''s' REQUIRE NO SSL"
        );
        let [_, tls] = clone_instance(&donor(ChannelTls::Required));
        assert!(tls.ends_with("REQUIRE SSL"), "{tls}");
    }

    #[test]
    fn fencing_keeps_replication_and_the_operator() {
        let list = vec![
            (1, "system user".to_string(), "Connect".to_string()),
            (5, "event_scheduler".to_string(), "Daemon".to_string()),
            (10, "app".to_string(), "Query".to_string()),
            (11, "app".to_string(), "Sleep".to_string()),
            (
                12,
                "mysqlaa_repl".to_string(),
                "Binlog Dump GTID".to_string(),
            ),
            (13, "mysqlaa_admin".to_string(), "Sleep".to_string()),
            (14, "root".to_string(), "Sleep".to_string()),
        ];
        assert_eq!(
            connections_to_end(&list, 13, &["mysqlaa_admin"]),
            [10, 11, 14]
        );
        assert_eq!(connections_to_end(&list, 99, &[]), [10, 11, 13, 14]);
    }
}
