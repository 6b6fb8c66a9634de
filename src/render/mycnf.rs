//! The per-ordinal my.cnf: identity, auto-increment spacing, GTID
//! replication, read-only at boot, then the user's extra settings.

use std::fmt::Write;

use crate::api::{DurabilityMode, Engine, MySQLActiveActiveSpec, PAIR_SIZE};

use super::meta::Names;

/// Where the data volume (the PVC) is mounted.
pub const DATA_MOUNT: &str = "/var/lib/mysql";
/// The server's data directory: a sub-directory of the volume, so a file
/// system's own entries (such as `lost+found`) never confuse initialization.
pub const DATA_DIR: &str = "/var/lib/mysql/data";
/// Directory (an emptyDir) for the socket, the pid file and the probe's
/// client option file.
pub const RUN_DIR: &str = "/var/run/mysqld";
/// The server's Unix socket.
pub const SOCKET: &str = "/var/run/mysqld/mysqld.sock";
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/mysql-aa";
/// Where the replication TLS Secret is mounted, when configured.
pub const TLS_DIR: &str = "/etc/mysql-aa-tls";
/// The MySQL protocol port.
pub const MYSQL_PORT: u16 = 3306;
/// Base name of the binary log files.
pub const BINLOG_BASENAME: &str = "mysql-bin";
/// Base name of the relay log files (independent of the host name, so a
/// node's data directory stays valid wherever its pod runs).
pub const RELAY_LOG_BASENAME: &str = "relay-bin";

/// Semi-sync timeout under `SemiSync`, in milliseconds: the largest MySQL
/// accepts (2^32 - 1, about 49.7 days), so a commit never falls back to
/// asynchronous by itself; only the operator lets the writer go on
/// without acknowledgements, after recording that its replica is stale.
pub const SEMI_SYNC_TIMEOUT_MS: u64 = 4_294_967_295;

/// MariaDB's `rpl_semi_sync_slave_kill_conn_timeout` under `SemiSync`, in
/// seconds: how long `STOP SLAVE` on a semi-sync replica waits for the
/// connection that kills its dump thread on the source. The smallest
/// non-zero bound (0 would set no timeout on that connection): a failover
/// stops the candidate's receiver from an old writer that may not answer,
/// and the fault matrix measured that stop at 2.0 s with the default, 5
/// (1.0 s now). Turning `rpl_semi_sync_slave_enabled` off around the stop
/// does not avoid the wait on 10.11: tried, the kill is still attempted.
pub const SEMI_SYNC_KILL_CONN_TIMEOUT_SECONDS: u64 = 1;

/// ConfigMap key of `ordinal`'s my.cnf.
pub fn mycnf_key(ordinal: u32) -> String {
    format!("my-{ordinal}.cnf")
}

/// `server_id` of `ordinal`.
pub fn server_id(spec: &MySQLActiveActiveSpec, ordinal: u32) -> u32 {
    spec.server_id_base + ordinal
}

/// `auto_increment_offset` of `ordinal` (1-based, fixed for the node's life).
pub fn auto_increment_offset(ordinal: u32) -> u32 {
    ordinal + 1
}

/// A my.cnf being written: option lines and comments.
#[derive(Default)]
struct Cnf(String);

impl Cnf {
    fn set(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{key} = {value}");
    }
    fn text(&mut self, text: &str) {
        let _ = writeln!(self.0, "{text}");
    }
}

/// Renders `ordinal`'s my.cnf.
pub fn render_mycnf(spec: &MySQLActiveActiveSpec, names: &Names, ordinal: u32) -> String {
    let mut c = Cnf::default();
    let sid = server_id(spec, ordinal);
    c.text(&format!(
        "# my.cnf of {} (ordinal {ordinal}) of {}/{}, rendered by mysql-aa-operator.",
        names.pod(ordinal),
        names.namespace,
        names.pair
    ));
    c.text("# The operator owns this file; add settings through spec.mysqldConfig.");
    c.text("[mysqld]");
    c.text("# identity: unique within the pair");
    c.set("server_id", sid);
    c.set("report_host", names.pod_fqdn(ordinal));
    c.set("report_port", MYSQL_PORT);
    c.text("# both nodes may insert: AUTO_INCREMENT keys interleave and never collide");
    c.set("auto_increment_increment", PAIR_SIZE);
    c.set("auto_increment_offset", auto_increment_offset(ordinal));
    c.text("# GTID replication with every change in the binary log");
    match spec.engine {
        Engine::MySQL => {
            c.set("gtid_mode", "ON");
            c.set("enforce_gtid_consistency", "ON");
            c.set("log_bin", BINLOG_BASENAME);
            c.text("# loose_: each server version uses the name it knows and ignores the other");
            c.set("loose_binlog_format", "ROW");
            c.set("loose_log_replica_updates", "ON");
            c.set("loose_log_slave_updates", "ON");
            c.set("relay_log", RELAY_LOG_BASENAME);
            c.set("relay_log_recovery", "ON");
            c.text("# the clone plugin: a node that lost its data is re-seeded from the writer");
            c.set("plugin_load_add", "mysql_clone.so");
            c.text("# replication starts only when the operator says so");
            c.set("loose_skip_replica_start", "ON");
            c.set("loose_skip_slave_start", "ON");
            c.text("# a (re)started node never takes writes before the operator decides");
            c.set("read_only", "ON");
            c.set("super_read_only", "ON");
            c.text("# no file import/export (the image's default directory may not exist)");
            c.set("secure_file_priv", "NULL");
        }
        Engine::MariaDB => {
            c.text("# GTIDs are always on in MariaDB; each node writes in its own domain");
            c.set("gtid_domain_id", sid);
            c.set("log_bin", BINLOG_BASENAME);
            c.set("binlog_format", "ROW");
            c.set("log_slave_updates", "ON");
            c.set("relay_log", RELAY_LOG_BASENAME);
            c.set("relay_log_recovery", "ON");
            c.text("# replication starts only when the operator says so");
            c.set("skip_slave_start", "ON");
            c.text("# a (re)started node never takes writes before the operator decides");
            c.set("read_only", "ON");
        }
    }
    if spec.durability() == DurabilityMode::SemiSync {
        c.text("# durability SemiSync: the writer commits only once its replica has the");
        c.text("# transaction (AFTER_SYNC), with no replica connected too, and never falls");
        c.text("# back to asynchronous by itself (a timeout of 49 days). Waiting is off");
        c.text("# at boot: the operator turns it on on the writer only, before unfencing it");
        match spec.engine {
            Engine::MySQL => {
                c.set("plugin_load_add", "semisync_source.so");
                c.set("plugin_load_add", "semisync_replica.so");
                c.set("loose_rpl_semi_sync_source_enabled", "OFF");
                c.set("loose_rpl_semi_sync_source_wait_point", "AFTER_SYNC");
                c.set("loose_rpl_semi_sync_source_wait_no_replica", "ON");
                c.set("loose_rpl_semi_sync_source_wait_for_replica_count", 1);
                c.set("loose_rpl_semi_sync_source_timeout", SEMI_SYNC_TIMEOUT_MS);
                c.set("loose_rpl_semi_sync_replica_enabled", "ON");
            }
            Engine::MariaDB => {
                c.set("rpl_semi_sync_master_enabled", "OFF");
                c.set("rpl_semi_sync_master_wait_point", "AFTER_SYNC");
                c.set("rpl_semi_sync_master_wait_no_slave", "ON");
                c.set("rpl_semi_sync_master_timeout", SEMI_SYNC_TIMEOUT_MS);
                c.set("rpl_semi_sync_slave_enabled", "ON");
                c.text("# STOP SLAVE on a semi-sync replica kills its dump thread on the source");
                c.text("# over a new connection; against an unanswering source (a failover's");
                c.text(
                    "# first step) that wait is bounded to 1 s (the default, 5, slowed failovers)",
                );
                c.set(
                    "rpl_semi_sync_slave_kill_conn_timeout",
                    SEMI_SYNC_KILL_CONN_TIMEOUT_SECONDS,
                );
            }
        }
    }
    if spec.replication.tls.secret_name.is_some() {
        c.text("# certificates of spec.replication.tls.secretName");
        c.set("ssl_ca", format!("{TLS_DIR}/ca.crt"));
        c.set("ssl_cert", format!("{TLS_DIR}/tls.crt"));
        c.set("ssl_key", format!("{TLS_DIR}/tls.key"));
    }
    c.text("# paths and network");
    c.set("datadir", DATA_DIR);
    c.set("socket", SOCKET);
    c.set("pid_file", format!("{RUN_DIR}/mysqld.pid"));
    c.set("port", MYSQL_PORT);
    if !spec.mysqld_config.is_empty() {
        c.text("# spec.mysqldConfig");
        for (k, v) in &spec.mysqld_config {
            c.set(k, v);
        }
    }
    c.0
}
