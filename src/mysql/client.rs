//! [`Server`] over `mysql_async`: a small pool per server, TLS through
//! rustls, and a timeout on connecting and on every statement, so nothing
//! the operator asks of a server can hang.

use std::sync::Mutex;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, SslOpts};
use tokio::time::{Instant, timeout};

use super::dialect;
use super::status::{self, ApplierFailure, Row, parse_replica_status};
use super::version::{Flavor, ServerInfo, identify};
use super::{
    AccountPasswords, Checksums, CloneOutcome, CloneStatus, DumpSession, Endpoint, Observation,
    Password, Server, SourceSpec, SqlError, WireOutcome,
};
use crate::accounts::{ADMIN_USER, REPLICATION_USER};

/// TLS of the operator's own connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientTls {
    /// Plain TCP.
    #[default]
    Disabled,
    /// Encrypted, the server's certificate is not verified.
    Required,
    /// Encrypted and verified against this CA (PEM).
    VerifyCa {
        /// The CA certificate, PEM.
        ca_pem: Vec<u8>,
    },
}

/// How to reach and authenticate to one server.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Where it listens.
    pub endpoint: Endpoint,
    /// Account.
    pub user: String,
    /// Password.
    pub password: Password,
    /// TLS of the connection.
    pub tls: ClientTls,
    /// Limit on establishing a connection (TCP, TLS, handshake, auth).
    pub connect_timeout: Duration,
    /// Limit on any one statement.
    pub statement_timeout: Duration,
}

impl ConnectOptions {
    /// Options with the default timeouts (5 s to connect, 10 s a statement).
    pub fn new(endpoint: Endpoint, user: impl Into<String>, password: Password) -> Self {
        Self {
            endpoint,
            user: user.into(),
            password,
            tls: ClientTls::Disabled,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// A connection pool to one server, implementing [`Server`].
pub struct MySqlClient {
    opts: ConnectOptions,
    pool: Pool,
    info: Mutex<Option<ServerInfo>>,
}

impl std::fmt::Debug for MySqlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlClient")
            .field("endpoint", &self.opts.endpoint)
            .field("user", &self.opts.user)
            .finish_non_exhaustive()
    }
}

/// What a statement of an operation returned, as text rows.
type Rows = Vec<Row>;

impl MySqlClient {
    /// `KILL CONNECTION` of each of `ids`; one already gone is skipped.
    /// Returns how many were ended.
    async fn kill_connections(
        &self,
        conn: &mut Conn,
        op: &'static str,
        ids: &[u64],
    ) -> Result<usize, SqlError> {
        let mut ended = 0;
        for id in ids {
            match self.query(conn, op, &dialect::kill_connection(*id)).await {
                Ok(_) => ended += 1,
                // Already gone.
                Err(SqlError::Statement { code: 1094, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// A client for the server `opts` describes. Connects lazily.
    pub fn new(opts: ConnectOptions) -> Self {
        let ssl = match &opts.tls {
            ClientTls::Disabled => None,
            ClientTls::Required => Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
            ClientTls::VerifyCa { ca_pem } => Some(
                SslOpts::default()
                    .with_root_certs(vec![ca_pem.clone().into()])
                    .with_danger_skip_domain_validation(true),
            ),
        };
        let constraints = PoolConstraints::new(0, 2).unwrap_or_default();
        let builder = OptsBuilder::default()
            .ip_or_hostname(opts.endpoint.host.clone())
            .tcp_port(opts.endpoint.port)
            .user(Some(opts.user.clone()))
            .pass(Some(opts.password.expose().to_string()))
            .prefer_socket(false)
            .ssl_opts(ssl)
            .stmt_cache_size(0)
            .setup(vec![
                // Literals are quoted with backslash escapes (dialect::quote).
                "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
            ])
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(true)
                    .with_inactive_connection_ttl(Duration::from_secs(30)),
            );
        Self {
            pool: Pool::new(Opts::from(builder)),
            opts,
            info: Mutex::new(None),
        }
    }

    /// Closes the pool's connections.
    pub async fn disconnect(self) {
        let _ = self.pool.disconnect().await;
    }

    fn endpoint_owned(&self) -> Endpoint {
        self.opts.endpoint.clone()
    }

    fn error(&self, op: &'static str, connecting: bool, e: mysql_async::Error) -> SqlError {
        let endpoint = self.endpoint_owned();
        match e {
            mysql_async::Error::Server(s) if s.code == 1045 || s.code == 1044 => {
                SqlError::AccessDenied {
                    endpoint,
                    message: s.message,
                }
            }
            mysql_async::Error::Server(s) => SqlError::Statement {
                op,
                endpoint,
                code: s.code,
                message: s.message,
            },
            mysql_async::Error::Io(mysql_async::IoError::Io(io)) => {
                use std::io::ErrorKind::*;
                let network = matches!(
                    io.kind(),
                    ConnectionRefused
                        | HostUnreachable
                        | NetworkUnreachable
                        | AddrNotAvailable
                        | TimedOut
                        | ConnectionReset
                        | NotFound
                );
                if connecting && !network {
                    SqlError::Protocol {
                        endpoint,
                        message: format!("connection broke during the handshake: {io}"),
                    }
                } else {
                    SqlError::Connect {
                        endpoint,
                        message: io.to_string(),
                    }
                }
            }
            other if connecting => SqlError::Protocol {
                endpoint,
                message: other.to_string(),
            },
            other => SqlError::Unexpected {
                op,
                endpoint,
                message: other.to_string(),
            },
        }
    }

    /// A pooled connection, within the connect timeout.
    async fn conn(&self, op: &'static str) -> Result<Conn, SqlError> {
        match timeout(self.opts.connect_timeout, self.pool.get_conn()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(self.error(op, true, e)),
            Err(_) => Err(SqlError::Timeout {
                op,
                endpoint: self.endpoint_owned(),
                after: self.opts.connect_timeout,
            }),
        }
    }

    /// Runs `sql` (text protocol) within `limit`, returning its rows as text.
    async fn query_in(
        &self,
        conn: &mut Conn,
        op: &'static str,
        sql: &str,
        limit: Duration,
    ) -> Result<Rows, SqlError> {
        let fut = async {
            let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
            Ok::<_, mysql_async::Error>(rows.into_iter().map(text_row).collect())
        };
        match timeout(limit, fut).await {
            Ok(r) => r.map_err(|e| self.error(op, false, e)),
            Err(_) => Err(SqlError::Timeout {
                op,
                endpoint: self.endpoint_owned(),
                after: limit,
            }),
        }
    }

    async fn query(&self, conn: &mut Conn, op: &'static str, sql: &str) -> Result<Rows, SqlError> {
        self.query_in(conn, op, sql, self.opts.statement_timeout)
            .await
    }

    /// First column of the first row.
    async fn scalar(
        &self,
        conn: &mut Conn,
        op: &'static str,
        sql: &str,
    ) -> Result<Option<String>, SqlError> {
        let rows = self.query(conn, op, sql).await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.get("0").cloned().flatten()))
    }

    async fn detect_on(&self, conn: &mut Conn) -> Result<ServerInfo, SqlError> {
        const OP: &str = "detect";
        let rows = self
            .query(
                conn,
                OP,
                "SELECT @@version AS v, @@version_comment AS c, @@server_id AS id",
            )
            .await?;
        let row = rows.first().ok_or_else(|| self.unexpected(OP, "no row"))?;
        let get = |k: &str| row.get(k).cloned().flatten().unwrap_or_default();
        let version_string = get("v");
        let (flavor, version) =
            identify(&version_string, &get("c")).ok_or_else(|| SqlError::Unsupported {
                endpoint: self.endpoint_owned(),
                found: format!("{version_string} ({})", get("c")),
            })?;
        let server_uuid = match flavor {
            Flavor::MySQL => self.scalar(conn, OP, "SELECT @@server_uuid").await?,
            Flavor::MariaDB => None,
        };
        let info = ServerInfo {
            flavor,
            version,
            version_string,
            server_id: get("id").parse().unwrap_or_default(),
            server_uuid,
        };
        if let Ok(mut cached) = self.info.lock() {
            *cached = Some(info.clone());
        }
        Ok(info)
    }

    /// The server's flavour (detected once, then cached).
    async fn flavor(&self, conn: &mut Conn) -> Result<Flavor, SqlError> {
        let cached = self
            .info
            .lock()
            .ok()
            .and_then(|i| i.as_ref().map(|i| i.flavor));
        match cached {
            Some(f) => Ok(f),
            None => Ok(self.detect_on(conn).await?.flavor),
        }
    }

    fn unexpected(&self, op: &'static str, message: &str) -> SqlError {
        SqlError::Unexpected {
            op,
            endpoint: self.endpoint_owned(),
            message: message.to_string(),
        }
    }

    async fn replica_status(
        &self,
        conn: &mut Conn,
        op: &'static str,
    ) -> Result<Option<status::ReplicaStatus>, SqlError> {
        let rows = self.query(conn, op, dialect::show_replica_status()).await?;
        Ok(rows.first().map(parse_replica_status))
    }

    async fn exec_all(
        &self,
        conn: &mut Conn,
        op: &'static str,
        statements: &[String],
    ) -> Result<(), SqlError> {
        for sql in statements {
            self.query(conn, op, sql).await?;
        }
        Ok(())
    }

    /// Runs `statements` on a node that may be `super_read_only`, which
    /// refuses even the operator's own writes: lifts it for these
    /// statements only (`read_only` stays on, so ordinary clients still
    /// cannot write), then restores it, also when a statement failed.
    async fn exec_past_read_only(
        &self,
        conn: &mut Conn,
        op: &'static str,
        flavor: Flavor,
        statements: &[String],
    ) -> Result<(), SqlError> {
        let lifted = flavor == Flavor::MySQL
            && self
                .scalar(conn, op, "SELECT @@GLOBAL.super_read_only")
                .await?
                .as_deref()
                == Some("1");
        if lifted {
            self.query(conn, op, "SET GLOBAL super_read_only = OFF")
                .await?;
        }
        let result = self.exec_all(conn, op, statements).await;
        if lifted {
            self.query(conn, op, "SET GLOBAL super_read_only = ON")
                .await?;
        }
        result
    }

    async fn applier_failure_on(
        &self,
        conn: &mut Conn,
        op: &'static str,
    ) -> Result<Option<ApplierFailure>, SqlError> {
        let flavor = self.flavor(conn).await?;
        let Some(st) = self.replica_status(conn, op).await? else {
            return Ok(None);
        };
        if !st.halted() {
            return Ok(None);
        }
        let (mut errno, mut message) = (st.last_sql_errno, st.last_sql_error.clone());
        let mut gtid = status::gtid_in_error_message(&message);
        if flavor == Flavor::MySQL {
            // The coordinator's message points at the worker; the worker
            // table has the precise error and the transaction.
            let rows = self
                .query(
                    conn,
                    op,
                    "SELECT LAST_ERROR_NUMBER AS n, LAST_ERROR_MESSAGE AS m, APPLYING_TRANSACTION AS t \
                     FROM performance_schema.replication_applier_status_by_worker \
                     WHERE LAST_ERROR_NUMBER <> 0 ORDER BY LAST_ERROR_TIMESTAMP DESC LIMIT 1",
                )
                .await?;
            if let Some(w) = rows.first() {
                let get = |k: &str| w.get(k).cloned().flatten().unwrap_or_default();
                errno = get("n").parse().unwrap_or(errno);
                message = get("m");
                gtid = status::gtid_in_error_message(&message)
                    .or(gtid)
                    .or(Some(get("t")).filter(|t| !t.is_empty()));
            }
        }
        if gtid.is_none() && !st.relay_log_file.is_empty() {
            // MariaDB's message names no GTID: the applier sits at the start
            // of the failed event group in the relay log, whose first event
            // is its GTID.
            let events = self
                .query(
                    conn,
                    op,
                    &format!(
                        "SHOW RELAYLOG EVENTS IN {} FROM {} LIMIT 4",
                        dialect::quote(&st.relay_log_file),
                        st.relay_log_pos
                    ),
                )
                .await?;
            gtid = events
                .iter()
                .filter_map(|e| e.get("Info").cloned().flatten())
                .find_map(|info| status::gtid_in_event_info(&info));
        }
        let gtid = gtid.ok_or_else(|| {
            self.unexpected(op, "the applier stopped but its error names no GTID")
        })?;
        Ok(Some(ApplierFailure {
            gtid,
            errno,
            message,
        }))
    }
}

/// A row as text: column name (and position, as `"0"`, `"1"`, ...) to value.
fn text_row(row: mysql_async::Row) -> Row {
    let columns = row.columns();
    let values = row.unwrap();
    let mut out = Row::new();
    for (i, (col, value)) in columns.iter().zip(values).enumerate() {
        let text = match value {
            mysql_async::Value::NULL => None,
            mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            mysql_async::Value::Int(n) => Some(n.to_string()),
            mysql_async::Value::UInt(n) => Some(n.to_string()),
            other => Some(format!("{other:?}")),
        };
        out.insert(col.name_str().into_owned(), text.clone());
        out.insert(i.to_string(), text);
    }
    out
}

/// `name` quoted as a SQL identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl Server for MySqlClient {
    fn endpoint(&self) -> &Endpoint {
        &self.opts.endpoint
    }

    async fn detect(&self) -> Result<ServerInfo, SqlError> {
        let mut conn = self.conn("detect").await?;
        self.detect_on(&mut conn).await
    }

    async fn observe(&self) -> Result<Observation, SqlError> {
        const OP: &str = "observe";
        let mut conn = self.conn(OP).await?;
        let info = self.detect_on(&mut conn).await?;
        let sro = match info.flavor {
            Flavor::MySQL => "@@GLOBAL.super_read_only",
            Flavor::MariaDB => "NULL",
        };
        let flags = format!(
            "SELECT @@GLOBAL.read_only AS ro, {sro} AS sro, (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}) AS awaiting",
            dialect::quote(crate::render::scripts::AWAITING_SEED_SCHEMA)
        );
        let rows = self.query(&mut conn, OP, &flags).await?;
        let row = rows.first().ok_or_else(|| self.unexpected(OP, "no row"))?;
        let flag = |k: &str| row.get(k).cloned().flatten().map(|v| v == "1");
        let gtid_executed = self
            .scalar(&mut conn, OP, dialect::executed_gtid_query(info.flavor))
            .await?
            .unwrap_or_default()
            .replace('\n', "");
        let replica = self.replica_status(&mut conn, OP).await?;
        let mut semi_sync_rows: Vec<(String, String)> = Vec::new();
        for sql in dialect::semi_sync_source_state(info.flavor) {
            semi_sync_rows.extend(
                self.query(&mut conn, OP, sql)
                    .await?
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r.get("Variable_name").cloned().flatten()?,
                            r.get("Value").cloned().flatten()?,
                        ))
                    }),
            );
        }
        let semi_sync = dialect::semi_sync_source(&semi_sync_rows);
        let dump_sessions = self
            .query(&mut conn, OP, &dialect::dump_sessions_query(info.flavor))
            .await?
            .iter()
            .filter_map(|r| {
                let field = |k: &str| r.get(k).cloned().flatten();
                Some(DumpSession {
                    id: field("id")?.parse().ok()?,
                    user: field("user").unwrap_or_default(),
                    seconds: field("seconds").and_then(|t| t.parse().ok()).unwrap_or(0),
                })
            })
            .collect();
        Ok(Observation {
            dump_sessions,
            semi_sync,
            gtid_executed,
            read_only: flag("ro").unwrap_or(false),
            super_read_only: flag("sro"),
            awaiting_seed: flag("awaiting").unwrap_or(false),
            replica,
            info,
        })
    }

    async fn ensure_users(&self, passwords: &AccountPasswords) -> Result<bool, SqlError> {
        const OP: &str = "ensure_users";
        let mut conn = self.conn(OP).await?;
        let flavor = self.flavor(&mut conn).await?;
        let existing = self
            .query(
                &mut conn,
                OP,
                &format!(
                    "SELECT User AS u FROM mysql.user WHERE Host = '%' AND User IN ({}, {})",
                    dialect::quote(ADMIN_USER),
                    dialect::quote(REPLICATION_USER)
                ),
            )
            .await?;
        let has = |u: &str| {
            existing
                .iter()
                .any(|r| r.get("u").cloned().flatten().as_deref() == Some(u))
        };
        let mut statements = Vec::new();
        if !has(ADMIN_USER) {
            statements.extend(dialect::create_account(
                ADMIN_USER,
                &passwords.admin,
                "ALL PRIVILEGES",
                true,
            ));
        }
        let engine = match flavor {
            Flavor::MySQL => crate::api::Engine::MySQL,
            Flavor::MariaDB => crate::api::Engine::MariaDB,
        };
        let repl_privileges = crate::accounts::replication_privileges(engine);
        if !has(REPLICATION_USER) {
            statements.extend(dialect::create_account(
                REPLICATION_USER,
                &passwords.replication,
                repl_privileges,
                false,
            ));
        } else if flavor == Flavor::MySQL
            && self
                .scalar(
                    &mut conn,
                    OP,
                    &dialect::missing_backup_admin(REPLICATION_USER),
                )
                .await?
                .as_deref()
                != Some("0")
        {
            // An account created before the re-seed existed.
            statements.push(format!(
                "GRANT {repl_privileges} ON *.* TO {}@'%'",
                dialect::quote(REPLICATION_USER)
            ));
        }
        if statements.is_empty() {
            return Ok(false);
        }
        // Accounts must not replicate: each node creates its own.
        let mut all = vec!["SET SESSION sql_log_bin = 0".to_string()];
        all.extend(statements);
        all.push("SET SESSION sql_log_bin = 1".to_string());
        self.exec_past_read_only(&mut conn, OP, flavor, &all)
            .await?;
        Ok(true)
    }

    async fn ensure_replication(&self, source: &SourceSpec) -> Result<WireOutcome, SqlError> {
        const OP: &str = "ensure_replication";
        let mut conn = self.conn(OP).await?;
        let flavor = self.flavor(&mut conn).await?;
        let current = self.replica_status(&mut conn, OP).await?;
        if let Some(st) = current.filter(|st| {
            st.wired_as(
                &source.endpoint.host,
                source.endpoint.port,
                &source.user,
                &source.tls,
            )
        }) {
            if st.running()
                || (st.io_running == super::ThreadState::Connecting
                    && st.sql_running == super::ThreadState::Yes)
            {
                return Ok(WireOutcome::Unchanged);
            }
            if st.halted() {
                if st.io_running == super::ThreadState::No {
                    self.query(&mut conn, OP, "START REPLICA IO_THREAD").await?;
                }
                return Ok(WireOutcome::HaltedOnError);
            }
            self.query(&mut conn, OP, dialect::start_replica()).await?;
            return Ok(WireOutcome::Started);
        }
        self.query(&mut conn, OP, dialect::stop_replica()).await?;
        self.query(&mut conn, OP, &dialect::change_source(flavor, source))
            .await?;
        self.query(&mut conn, OP, dialect::start_replica()).await?;
        Ok(WireOutcome::Reconfigured)
    }

    async fn start_replica(&self) -> Result<(), SqlError> {
        let mut conn = self.conn("start_replica").await?;
        self.query(&mut conn, "start_replica", dialect::start_replica())
            .await
            .map(drop)
    }

    async fn stop_replica(&self) -> Result<(), SqlError> {
        let mut conn = self.conn("stop_replica").await?;
        self.query(&mut conn, "stop_replica", dialect::stop_replica())
            .await
            .map(drop)
    }

    async fn stop_receiver(&self) -> Result<(), SqlError> {
        const OP: &str = "stop_receiver";
        let mut conn = self.conn(OP).await?;
        self.query(&mut conn, OP, dialect::stop_receiver())
            .await
            .map(drop)
    }

    async fn set_semi_sync(&self, on: bool) -> Result<(), SqlError> {
        const OP: &str = "set_semi_sync";
        let mut conn = self.conn(OP).await?;
        let flavor = self.flavor(&mut conn).await?;
        self.query(&mut conn, OP, &dialect::set_semi_sync_source(flavor, on))
            .await
            .map(drop)
    }

    async fn fence(&self) -> Result<usize, SqlError> {
        const OP: &str = "fence";
        let mut conn = self.conn(OP).await?;
        let flavor = self.flavor(&mut conn).await?;
        for sql in dialect::fence(flavor) {
            self.query(&mut conn, OP, sql).await?;
        }
        let own: u64 = self
            .scalar(&mut conn, OP, "SELECT CONNECTION_ID()")
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let list: Vec<(u64, String, String)> = self
            .query(&mut conn, OP, "SHOW PROCESSLIST")
            .await?
            .iter()
            .map(|r| {
                let get = |k: &str| r.get(k).cloned().flatten().unwrap_or_default();
                (
                    get("Id").parse().unwrap_or_default(),
                    get("User"),
                    get("Command"),
                )
            })
            .collect();
        let operator_users = [ADMIN_USER, self.opts.user.as_str()];
        let victims = dialect::connections_to_end(&list, own, &operator_users);
        self.kill_connections(&mut conn, OP, &victims).await
    }

    async fn end_sessions(&self, ids: &[u64]) -> Result<usize, SqlError> {
        const OP: &str = "end_sessions";
        let mut conn = self.conn(OP).await?;
        self.kill_connections(&mut conn, OP, ids).await
    }

    async fn unfence(&self) -> Result<(), SqlError> {
        const OP: &str = "unfence";
        let mut conn = self.conn(OP).await?;
        let flavor = self.flavor(&mut conn).await?;
        for sql in dialect::unfence(flavor) {
            self.query(&mut conn, OP, sql).await?;
        }
        Ok(())
    }

    async fn wait_for_gtid_set(&self, gtid_set: &str, limit: Duration) -> Result<bool, SqlError> {
        const OP: &str = "wait_for_gtid_set";
        let mut conn = self.conn(OP).await?;
        let flavor = self.flavor(&mut conn).await?;
        match flavor {
            Flavor::MySQL => {
                let sql = dialect::wait_for_gtid_set(flavor, gtid_set, limit.as_secs_f64());
                let rows = self
                    .query_in(&mut conn, OP, &sql, limit + self.opts.statement_timeout)
                    .await?;
                let result = rows.first().and_then(|r| r.get("0").cloned().flatten());
                Ok(result.as_deref() == Some("0"))
            }
            Flavor::MariaDB => {
                // MASTER_GTID_WAIT follows gtid_slave_pos only; a node's own
                // writes live in gtid_binlog_pos. Poll gtid_current_pos.
                let deadline = Instant::now() + limit;
                loop {
                    let current = self
                        .scalar(&mut conn, OP, dialect::executed_gtid_query(flavor))
                        .await?
                        .unwrap_or_default();
                    if status::mariadb_pos_covers(&current, gtid_set) {
                        return Ok(true);
                    }
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn applier_failure(&self) -> Result<Option<ApplierFailure>, SqlError> {
        let mut conn = self.conn("applier_failure").await?;
        self.applier_failure_on(&mut conn, "applier_failure").await
    }

    async fn skip_failed_transaction(&self, failure: &ApplierFailure) -> Result<(), SqlError> {
        const OP: &str = "skip_failed_transaction";
        let mut conn = self.conn(OP).await?;
        let flavor = self.flavor(&mut conn).await?;
        let now = self.applier_failure_on(&mut conn, OP).await?;
        if now.as_ref().map(|f| &f.gtid) != Some(&failure.gtid) {
            return Err(self.unexpected(
                OP,
                &format!(
                    "the applier is not stopped on {} any more (now: {:?}); nothing skipped",
                    failure.gtid,
                    now.map(|f| f.gtid)
                ),
            ));
        }
        match flavor {
            Flavor::MySQL => {
                // An empty transaction under the failing GTID: the applier
                // then treats it as applied.
                let statements = dialect::mysql_skip_transaction(&failure.gtid);
                self.exec_past_read_only(&mut conn, OP, flavor, &statements)
                    .await?;
            }
            Flavor::MariaDB => {
                self.query(&mut conn, OP, "STOP REPLICA").await?;
                self.query(&mut conn, OP, dialect::mariadb_skip_one())
                    .await?;
            }
        }
        self.query(&mut conn, OP, dialect::start_replica()).await?;
        Ok(())
    }

    async fn table_checksums(&self, schema: &str) -> Result<Checksums, SqlError> {
        const OP: &str = "table_checksums";
        let mut conn = self.conn(OP).await?;
        let tables = self
            .query(
                &mut conn,
                OP,
                &format!(
                    "SELECT TABLE_NAME AS t FROM information_schema.TABLES \
                     WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                    dialect::quote(schema)
                ),
            )
            .await?;
        let names: Vec<String> = tables
            .iter()
            .filter_map(|r| r.get("t").cloned().flatten())
            .collect();
        let mut out = Checksums::new();
        if names.is_empty() {
            return Ok(out);
        }
        let list: Vec<String> = names
            .iter()
            .map(|t| format!("{}.{}", ident(schema), ident(t)))
            .collect();
        let rows = self
            .query(
                &mut conn,
                OP,
                &format!("CHECKSUM TABLE {} EXTENDED", list.join(", ")),
            )
            .await?;
        for r in rows {
            let table = r.get("Table").cloned().flatten().unwrap_or_default();
            let name = table
                .strip_prefix(&format!("{schema}."))
                .unwrap_or(&table)
                .to_string();
            let sum = r
                .get("Checksum")
                .cloned()
                .flatten()
                .and_then(|s| s.parse().ok());
            out.insert(name, sum);
        }
        Ok(out)
    }

    async fn clone_data_from(
        &self,
        donor: &SourceSpec,
        limit: Duration,
    ) -> Result<CloneOutcome, SqlError> {
        const OP: &str = "clone_data_from";
        let mut conn = self.conn(OP).await?;
        if self.flavor(&mut conn).await? != Flavor::MySQL {
            return Err(self.unexpected(
                OP,
                "MariaDB has no clone plugin: it is re-seeded from a streamed mariadb-backup",
            ));
        }
        let [list, clone] = dialect::clone_instance(donor);
        self.query(&mut conn, OP, &list).await?;
        // The clone drops the recipient's tables, which super_read_only
        // forbids even to the operator (error 1290): the node stays
        // read_only, so clients without the privilege to bypass it still
        // cannot write; it restarts fenced on the copy.
        self.query(&mut conn, OP, "SET GLOBAL read_only = ON")
            .await?;
        self.query(&mut conn, OP, "SET GLOBAL super_read_only = OFF")
            .await?;
        // Its own binary logs go too: at its restart a server adds the
        // GTIDs of its last binary log to the cloned set, which would bring
        // back transactions whose rows the copy discarded.
        let info = self.detect_on(&mut conn).await?;
        self.query(&mut conn, OP, dialect::reset_binary_logs(info.version))
            .await?;
        // The clone would drop the recipient's own schemas itself, writing
        // the drops to its fresh binary log with GTIDs of its own uuid,
        // which its restart then adds to the cloned set (1 run in 4 of the
        // seam test): they are dropped here first, outside the binary log.
        // The mark of a node awaiting a copy stays: an interrupted copy
        // (which MySQL reverts) leaves the node awaiting one still.
        self.query(&mut conn, OP, "SET SESSION sql_log_bin = 0")
            .await?;
        let schemas = self
            .query(
                &mut conn,
                OP,
                &format!(
                    "SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', {})",
                    dialect::quote(crate::render::scripts::AWAITING_SEED_SCHEMA)
                ),
            )
            .await?;
        for schema in schemas.iter().filter_map(|r| r.get("s").cloned().flatten()) {
            let drop = format!("DROP DATABASE `{}`", schema.replace('`', "``"));
            self.query(&mut conn, OP, &drop).await?;
        }
        match self.query_in(&mut conn, OP, &clone, limit).await {
            Ok(_) => Ok(CloneOutcome::Restarting),
            Err(SqlError::Statement { code, .. }) if code == dialect::CLONE_RESTART_NEEDED => {
                Ok(CloneOutcome::RestartNeeded)
            }
            // The server went down to restart itself on the new data.
            Err(SqlError::Connect { .. }) => Ok(CloneOutcome::Restarting),
            Err(e) => Err(e),
        }
    }

    async fn set_replica_position(&self, gtid: &str) -> Result<(), SqlError> {
        const OP: &str = "set_replica_position";
        let mut conn = self.conn(OP).await?;
        if self.flavor(&mut conn).await? != Flavor::MariaDB {
            return Err(
                self.unexpected(OP, "only MariaDB's replicas start at a given GTID position")
            );
        }
        self.query(&mut conn, OP, &dialect::set_replica_position(gtid))
            .await
            .map(drop)
    }

    async fn clone_status(&self) -> Result<Option<CloneStatus>, SqlError> {
        const OP: &str = "clone_status";
        let mut conn = self.conn(OP).await?;
        let rows = self.query(&mut conn, OP, dialect::CLONE_STATUS).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let text = |k: &str| row.get(k).cloned().flatten().unwrap_or_default();
        let number = |k: &str| text(k).parse::<u64>().unwrap_or(0);
        Ok(Some(CloneStatus {
            state: text("state"),
            error: number("error") as u32,
            message: text("message"),
            bytes_done: number("done"),
            bytes_total: number("total"),
            gtid_executed: text("gtid").replace('\n', ""),
            uptime_seconds: text("uptime").parse().ok(),
        }))
    }

    async fn user_schemas(&self) -> Result<Vec<String>, SqlError> {
        const OP: &str = "user_schemas";
        let mut conn = self.conn(OP).await?;
        let rows = self.query(&mut conn, OP, dialect::USER_SCHEMAS).await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get("s").cloned().flatten())
            .collect())
    }
}
