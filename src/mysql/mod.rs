//! The one seam to MySQL and MariaDB: everything the operator says to a
//! server goes through [`Server`], implemented over `mysql_async` by
//! [`client::MySqlClient`].
//!
//! - [`version`]: flavour and version detection; unsupported servers are
//!   refused with a typed error.
//! - [`dialect`]: the SQL each flavour and version needs (pure, table tested).
//! - [`status`]: parsing `SHOW REPLICA STATUS` and friends (pure).
//! - [`client`]: connections (small pool, rustls, a timeout on connect and
//!   on every statement) and the operations.
//!
//! Passwords are held in [`Password`], whose `Debug` and `Display` print
//! nothing, so they never reach logs or errors.

pub mod client;
pub mod dialect;
pub mod gtid;
pub mod status;
pub mod version;

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use client::{ConnectOptions, MySqlClient};
pub use status::{ApplierFailure, ReplicaStatus, ThreadState};
pub use version::{Flavor, ServerInfo, Version};

/// A password; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }
    /// The password itself, for the wire only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// An error talking to a server. Every variant names the server; none
/// carries a password.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// TCP connection refused, unreachable host, or the connection broke.
    #[error("cannot connect to {endpoint}: {message}")]
    Connect {
        /// The server.
        endpoint: Endpoint,
        /// What the network said.
        message: String,
    },
    /// The operation did not finish within its timeout.
    #[error("{op} on {endpoint} timed out after {after:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The server.
        endpoint: Endpoint,
        /// The timeout that expired.
        after: Duration,
    },
    /// The server refused the credentials.
    #[error("access denied on {endpoint}: {message}")]
    AccessDenied {
        /// The server.
        endpoint: Endpoint,
        /// The server's message.
        message: String,
    },
    /// The peer is not a MySQL server, or broke the protocol.
    #[error("{endpoint} does not speak the MySQL protocol as expected: {message}")]
    Protocol {
        /// The server.
        endpoint: Endpoint,
        /// What went wrong.
        message: String,
    },
    /// The server's flavour or version is not supported.
    #[error(
        "{endpoint} runs {found}, which is not supported (MySQL 8.0.23 or later, MariaDB 10.6 or later)"
    )]
    Unsupported {
        /// The server.
        endpoint: Endpoint,
        /// Version string reported by the server.
        found: String,
    },
    /// A statement failed.
    #[error("{op} on {endpoint} failed: error {code}: {message}")]
    Statement {
        /// The operation.
        op: &'static str,
        /// The server.
        endpoint: Endpoint,
        /// MySQL error number.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// The server answered something the operator cannot interpret.
    #[error("{op} on {endpoint}: unexpected answer: {message}")]
    Unexpected {
        /// The operation.
        op: &'static str,
        /// The server.
        endpoint: Endpoint,
        /// What was unexpected.
        message: String,
    },
}

impl SqlError {
    /// A short stable label, for metrics and Event reasons.
    pub fn label(&self) -> &'static str {
        match self {
            SqlError::Connect { .. } => "connect",
            SqlError::Timeout { .. } => "timeout",
            SqlError::AccessDenied { .. } => "access_denied",
            SqlError::Protocol { .. } => "protocol",
            SqlError::Unsupported { .. } => "unsupported",
            SqlError::Statement { .. } => "statement",
            SqlError::Unexpected { .. } => "unexpected",
        }
    }
}

/// What the operator observed on one server.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Flavour, version and identity.
    pub info: ServerInfo,
    /// Executed GTID set: `gtid_executed` (MySQL) or `gtid_current_pos`
    /// (MariaDB).
    pub gtid_executed: String,
    /// `read_only`.
    pub read_only: bool,
    /// `super_read_only` (MySQL only).
    pub super_read_only: Option<bool>,
    /// The replication channel from the peer, if one is configured.
    pub replica: Option<ReplicaStatus>,
    /// The server as a semi-synchronous source; `None` when semi-sync is
    /// not loaded.
    pub semi_sync: Option<SemiSyncSource>,
    /// The server was initialized, on a pair that has data, to await a
    /// copy of the writer's data (it carries
    /// [`crate::render::scripts::AWAITING_SEED_SCHEMA`]).
    pub awaiting_seed: bool,
    /// The sessions sending this server's binary log to replicas (and
    /// those killed but not yet gone).
    pub dump_sessions: Vec<DumpSession>,
}

/// A session sending the server's binary log to a replica (`Binlog Dump`,
/// or `Killed` while it ends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpSession {
    /// Its connection id (what `KILL CONNECTION` takes).
    pub id: u64,
    /// The account it logged in with.
    pub user: String,
    /// Seconds in its current state.
    pub seconds: u64,
}

/// A server's state as a semi-synchronous source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SemiSyncSource {
    /// Waiting is on (`rpl_semi_sync_source_enabled`,
    /// `rpl_semi_sync_master_enabled`).
    pub enabled: bool,
    /// Commits wait for acknowledgements (`Rpl_semi_sync_source_status`);
    /// off when the server fell back to asynchronous.
    pub waiting_for_acks: bool,
    /// Replicas connected in semi-sync mode.
    pub clients: u64,
    /// Commits waiting for an acknowledgement now.
    pub waiting_sessions: u64,
    /// Commits acknowledged since the server started.
    pub acknowledged: u64,
}

impl SemiSyncSource {
    /// Commits wait for acknowledgements and a replica is connected to give
    /// them.
    pub fn acknowledging(&self) -> bool {
        self.enabled && self.waiting_for_acks && self.clients > 0
    }
}

impl Observation {
    /// *Writable*: ordinary clients can write (neither read-only flag is
    /// on). What the writer must be.
    pub fn writable(&self) -> bool {
        !self.read_only && self.super_read_only != Some(true)
    }

    /// *Fenced*: no account can write, but those the engine lets past
    /// its strongest switch: `super_read_only` on MySQL (`read_only` alone
    /// still lets accounts with SUPER or CONNECTION_ADMIN write), `read_only`
    /// on MariaDB (which accounts with READ ONLY ADMIN bypass; MariaDB has
    /// nothing stronger). What every node that is not the writer must be.
    pub fn fenced(&self) -> bool {
        match self.info.flavor {
            Flavor::MySQL => self.super_read_only == Some(true),
            Flavor::MariaDB => self.read_only,
        }
    }
}

/// Passwords of the operator's accounts.
#[derive(Clone, Debug)]
pub struct AccountPasswords {
    /// Password of [`crate::accounts::ADMIN_USER`].
    pub admin: Password,
    /// Password of [`crate::accounts::REPLICATION_USER`].
    pub replication: Password,
}

/// TLS of a replication channel, as the replica uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ChannelTls {
    /// Plain connection; the password is exchanged with the source's RSA
    /// public key (`GET_SOURCE_PUBLIC_KEY=1` on MySQL).
    #[default]
    Disabled,
    /// Encrypted, certificate not verified.
    Required,
    /// Encrypted, certificate verified against the CA file on the replica.
    VerifyCa {
        /// Path of the CA certificate on the replica's file system.
        ca_file: String,
    },
    /// As `VerifyCa`, and the host name must match the certificate.
    VerifyIdentity {
        /// Path of the CA certificate on the replica's file system.
        ca_file: String,
    },
}

/// The source a replica should replicate from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// Where the source listens, as the replica reaches it.
    pub endpoint: Endpoint,
    /// Replication account.
    pub user: String,
    /// Its password.
    pub password: Password,
    /// TLS of the channel.
    pub tls: ChannelTls,
}

/// What wiring a replica changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireOutcome {
    /// Already pointing at the source with these settings, threads running:
    /// nothing was done.
    Unchanged,
    /// Already pointing at the source; stopped threads were started.
    Started,
    /// The channel was (re)configured and started.
    Reconfigured,
    /// Already configured, but the applier is stopped on an error: left
    /// halted for the caller's policy to decide.
    HaltedOnError,
}

/// How a clone the recipient asked for ended (MySQL's clone plugin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneOutcome {
    /// The donor's data is in place; the server, which has no supervisor
    /// to restart it (error 3707), must be restarted to run on it (in a
    /// pod: its container restarts).
    RestartNeeded,
    /// The server ended the connection to restart itself on the new data.
    Restarting,
}

/// A clone as the recipient reports it (`performance_schema.clone_status`
/// and `clone_progress`): the last one, running or finished.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloneStatus {
    /// `Not Started`, `In Progress`, `Completed` or `Failed`.
    pub state: String,
    /// The error that ended it (0 when none).
    pub error: u32,
    /// Its message.
    pub message: String,
    /// Bytes copied so far, of the `bytes_total` the donor estimated.
    pub bytes_done: u64,
    /// The donor's estimate of the bytes to copy.
    pub bytes_total: u64,
    /// The donor's executed GTID set the copy holds (once completed).
    pub gtid_executed: String,
    /// Seconds the recipient's server has been up (`Uptime`), when read.
    pub uptime_seconds: Option<u64>,
}

/// Table checksums of one schema: table name to `CHECKSUM TABLE` value
/// (`None` when the server could not compute one).
pub type Checksums = std::collections::BTreeMap<String, Option<u64>>;

/// Everything the operator says to a server. Implementations time out
/// every operation; none prints a password.
pub trait Server {
    /// The server this talks to.
    fn endpoint(&self) -> &Endpoint;

    /// Flavour, version and identity; refuses unsupported servers.
    fn detect(&self) -> impl Future<Output = Result<ServerInfo, SqlError>> + Send;

    /// Version, identity, GTID set, read-only state and replica state.
    fn observe(&self) -> impl Future<Output = Result<Observation, SqlError>> + Send;

    /// Creates the admin and replication accounts when missing (binary log
    /// off for the session, so nothing replicates) and grants what is
    /// missing. Returns whether anything changed.
    fn ensure_users(
        &self,
        passwords: &AccountPasswords,
    ) -> impl Future<Output = Result<bool, SqlError>> + Send;

    /// Points replication at `source` with GTID auto-position and starts
    /// it; changes nothing when it already points there, running.
    fn ensure_replication(
        &self,
        source: &SourceSpec,
    ) -> impl Future<Output = Result<WireOutcome, SqlError>> + Send;

    /// Starts both replication threads.
    fn start_replica(&self) -> impl Future<Output = Result<(), SqlError>> + Send;

    /// Stops both replication threads.
    fn stop_replica(&self) -> impl Future<Output = Result<(), SqlError>> + Send;

    /// Stops the receiver (IO thread) only: nothing more arrives from the
    /// source, whose semi-synchronous commits then wait for an
    /// acknowledgement that cannot come; the applier goes on with what was
    /// received.
    fn stop_receiver(&self) -> impl Future<Output = Result<(), SqlError>> + Send;

    /// Turns waiting for semi-synchronous acknowledgements on or off
    /// (turning it off releases commits waiting now).
    fn set_semi_sync(&self, on: bool) -> impl Future<Output = Result<(), SqlError>> + Send;

    /// Makes the server read-only for everyone (`super_read_only` on MySQL,
    /// `read_only` on MariaDB), then ends every client connection except
    /// replication threads and the operator's own. Returns how many
    /// connections were ended.
    fn fence(&self) -> impl Future<Output = Result<usize, SqlError>> + Send;

    /// Makes the server writable.
    fn unfence(&self) -> impl Future<Output = Result<(), SqlError>> + Send;

    /// Ends the sessions `ids` (`KILL CONNECTION`); one already gone is not
    /// an error. Returns how many were ended.
    fn end_sessions(&self, ids: &[u64]) -> impl Future<Output = Result<usize, SqlError>> + Send;

    /// Waits until `gtid_set` is applied; `Ok(false)` on timeout.
    fn wait_for_gtid_set(
        &self,
        gtid_set: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<bool, SqlError>> + Send;

    /// The transaction the applier stopped on, if it is stopped on an error.
    fn applier_failure(
        &self,
    ) -> impl Future<Output = Result<Option<ApplierFailure>, SqlError>> + Send;

    /// Skips exactly the transaction `failure` names and restarts the
    /// replica. Refuses when the applier is no longer stopped on it.
    fn skip_failed_transaction(
        &self,
        failure: &ApplierFailure,
    ) -> impl Future<Output = Result<(), SqlError>> + Send;

    /// MySQL: replaces this server's data with a copy of `donor`'s (the
    /// clone plugin; `donor`'s account needs `BACKUP_ADMIN`), within
    /// `limit`. Replication must be stopped. Keeps the server's own
    /// `server_id`, `auto_increment_offset` (my.cnf) and `server_uuid`.
    /// A fenced recipient is lowered to `read_only` for the copy (which
    /// drops its tables); it restarts fenced.
    fn clone_data_from(
        &self,
        donor: &SourceSpec,
        limit: Duration,
    ) -> impl Future<Output = Result<CloneOutcome, SqlError>> + Send;

    /// MariaDB: the GTID position replication from the source starts at
    /// (`gtid_slave_pos`): a re-seeded node's, from its backup. Replication
    /// must be stopped.
    fn set_replica_position(&self, gtid: &str)
    -> impl Future<Output = Result<(), SqlError>> + Send;

    /// MySQL: the last clone into this server, `None` when there was none.
    fn clone_status(&self) -> impl Future<Output = Result<Option<CloneStatus>, SqlError>> + Send;

    /// Schemas holding user data (all but `mysql`, `sys` and the two
    /// metadata schemas).
    fn user_schemas(&self) -> impl Future<Output = Result<Vec<String>, SqlError>> + Send;

    /// `CHECKSUM TABLE` of every base table of `schema`.
    fn table_checksums(
        &self,
        schema: &str,
    ) -> impl Future<Output = Result<Checksums, SqlError>> + Send;
}

/// Tables whose checksums differ between two nodes (or exist on one only).
pub fn diverged_tables(a: &Checksums, b: &Checksums) -> Vec<String> {
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|t| a.get(*t) != b.get(*t))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        let spec = SourceSpec {
            endpoint: Endpoint {
                host: "h".into(),
                port: 1,
            },
            user: "u".into(),
            password: p,
            tls: ChannelTls::Disabled,
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn diverged_tables_compares_both_sides() {
        let a = Checksums::from([
            ("t1".into(), Some(1)),
            ("t2".into(), Some(2)),
            ("only_a".into(), Some(3)),
        ]);
        let b = Checksums::from([
            ("t1".into(), Some(1)),
            ("t2".into(), Some(9)),
            ("only_b".into(), None),
        ]);
        assert_eq!(diverged_tables(&a, &b), ["only_a", "only_b", "t2"]);
        assert!(diverged_tables(&a, &a).is_empty());
    }
}
