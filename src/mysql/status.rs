//! Parsing what servers report about replication. Pure: a row is a map
//! from column name to its text value.

use std::collections::HashMap;

use regex::Regex;

/// One result row, column name to text (`None` for SQL NULL).
pub type Row = HashMap<String, Option<String>>;

/// State of a replication thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThreadState {
    /// Running.
    Yes,
    /// Stopped.
    #[default]
    No,
    /// The receiver is (re)connecting to the source.
    Connecting,
}

impl ThreadState {
    fn parse(s: &str) -> Self {
        match s {
            "Yes" => ThreadState::Yes,
            "Connecting" | "Preparing" => ThreadState::Connecting,
            _ => ThreadState::No,
        }
    }

    /// As `SHOW REPLICA STATUS` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadState::Yes => "Yes",
            ThreadState::No => "No",
            ThreadState::Connecting => "Connecting",
        }
    }
}

/// The replica side of a node: its channel from the peer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaStatus {
    /// Source host.
    pub source_host: String,
    /// Source port.
    pub source_port: u16,
    /// Replication account used.
    pub source_user: String,
    /// GTID auto-position (MySQL) / `Using_Gtid: Slave_Pos` (MariaDB).
    pub auto_position: bool,
    /// TLS required on the channel.
    pub ssl: bool,
    /// CA file of the channel, if any.
    pub ssl_ca_file: String,
    /// Whether the source's certificate is verified.
    pub ssl_verify_server_cert: bool,
    /// Receiver thread.
    pub io_running: ThreadState,
    /// Applier thread.
    pub sql_running: ThreadState,
    /// Last receiver error number (0: none).
    pub last_io_errno: u32,
    /// Last receiver error message.
    pub last_io_error: String,
    /// Last applier error number (0: none).
    pub last_sql_errno: u32,
    /// Last applier error message.
    pub last_sql_error: String,
    /// Seconds the applier is behind; `None` when unknown.
    pub seconds_behind_source: Option<i64>,
    /// GTIDs received (MySQL `Retrieved_Gtid_Set`; MariaDB `Gtid_IO_Pos`).
    pub retrieved_gtid_set: String,
    /// GTIDs applied by this channel (MySQL `Executed_Gtid_Set`; MariaDB
    /// `Gtid_Slave_Pos`).
    pub executed_gtid_set: String,
    /// Relay log file the applier is at.
    pub relay_log_file: String,
    /// Position in it of the next event group to apply.
    pub relay_log_pos: u64,
}

/// The source's error for a replica asking for transactions it purged
/// from its binary logs (MariaDB reports it as the receiver's error;
/// MySQL wraps it in its own 13114, "Got fatal error 1236 from source").
pub const SOURCE_PURGED_LOGS: u32 = 1236;
/// MySQL's receiver error carrying a fatal error of the source.
pub const SOURCE_FATAL_ERROR: u32 = 13114;

impl ReplicaStatus {
    /// The receiver stopped because the source no longer has binary logs
    /// this replica needs: it can only catch up by a re-seed. Error 1236
    /// covers other binary log errors of the source too ("could not find
    /// next log": a source whose logs changed under a running dump, which a
    /// reconnection mends), so the message must say the logs were purged.
    pub fn source_purged_needed_logs(&self) -> bool {
        let purged = self.last_io_error.contains("purged");
        purged
            && (self.last_io_errno == SOURCE_PURGED_LOGS
                || (self.last_io_errno == SOURCE_FATAL_ERROR
                    && self
                        .last_io_error
                        .contains(&format!("fatal error {SOURCE_PURGED_LOGS} "))))
    }

    /// Both threads running.
    pub fn running(&self) -> bool {
        self.io_running == ThreadState::Yes && self.sql_running == ThreadState::Yes
    }

    /// Whether the applier stopped on an error (the node is *halted*).
    pub fn halted(&self) -> bool {
        self.sql_running != ThreadState::Yes && self.last_sql_errno != 0
    }

    /// Whether the channel is configured as wanted: this host, port and
    /// account, GTID auto-position, and this TLS (encryption, CA file,
    /// verification of the source's certificate). The one definition of
    /// *wired as wanted*, for the seam and for the decision.
    pub fn wired_as(&self, host: &str, port: u16, user: &str, tls: &super::ChannelTls) -> bool {
        let (ssl, ca, verify) = match tls {
            super::ChannelTls::Disabled => (false, "", false),
            super::ChannelTls::Required => (true, "", false),
            super::ChannelTls::VerifyCa { ca_file } => (true, ca_file.as_str(), false),
            super::ChannelTls::VerifyIdentity { ca_file } => (true, ca_file.as_str(), true),
        };
        self.source_host == host
            && self.source_port == port
            && self.source_user == user
            && self.auto_position
            && self.ssl == ssl
            && self.ssl_ca_file == ca
            && self.ssl_verify_server_cert == verify
    }
}

/// Value of the first of `names` present in `row` (MySQL and MariaDB name
/// the same column differently).
fn col<'a>(row: &'a Row, names: &[&str]) -> &'a str {
    names
        .iter()
        .find_map(|n| row.get(*n).and_then(|v| v.as_deref()))
        .unwrap_or("")
}

fn num<T: std::str::FromStr + Default>(row: &Row, names: &[&str]) -> T {
    col(row, names).trim().parse().unwrap_or_default()
}

fn yes(row: &Row, names: &[&str]) -> bool {
    matches!(col(row, names), "Yes" | "1" | "ON")
}

/// Parses one row of `SHOW REPLICA STATUS` (either flavour's column names).
/// GTID sets lose their line breaks (MySQL wraps long sets).
pub fn parse_replica_status(row: &Row) -> ReplicaStatus {
    let gtid = |names: &[&str]| col(row, names).replace('\n', "");
    let using_gtid = col(row, &["Using_Gtid"]);
    ReplicaStatus {
        source_host: col(row, &["Source_Host", "Master_Host"]).to_string(),
        source_port: num(row, &["Source_Port", "Master_Port"]),
        source_user: col(row, &["Source_User", "Master_User"]).to_string(),
        auto_position: yes(row, &["Auto_Position"])
            || using_gtid.eq_ignore_ascii_case("Slave_Pos")
            || using_gtid.eq_ignore_ascii_case("Current_Pos"),
        ssl: yes(row, &["Source_SSL_Allowed", "Master_SSL_Allowed"]),
        ssl_ca_file: col(row, &["Source_SSL_CA_File", "Master_SSL_CA_File"]).to_string(),
        ssl_verify_server_cert: yes(
            row,
            &[
                "Source_SSL_Verify_Server_Cert",
                "Master_SSL_Verify_Server_Cert",
            ],
        ),
        io_running: ThreadState::parse(col(row, &["Replica_IO_Running", "Slave_IO_Running"])),
        sql_running: ThreadState::parse(col(row, &["Replica_SQL_Running", "Slave_SQL_Running"])),
        last_io_errno: num(row, &["Last_IO_Errno"]),
        last_io_error: col(row, &["Last_IO_Error"]).to_string(),
        last_sql_errno: num(row, &["Last_SQL_Errno"]),
        last_sql_error: col(row, &["Last_SQL_Error"]).to_string(),
        seconds_behind_source: col(row, &["Seconds_Behind_Source", "Seconds_Behind_Master"])
            .trim()
            .parse()
            .ok(),
        retrieved_gtid_set: gtid(&["Retrieved_Gtid_Set", "Gtid_IO_Pos"]),
        executed_gtid_set: gtid(&["Executed_Gtid_Set", "Gtid_Slave_Pos"]),
        relay_log_file: col(row, &["Relay_Log_File"]).to_string(),
        relay_log_pos: num(row, &["Relay_Log_Pos"]),
    }
}

/// The transaction an applier stopped on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplierFailure {
    /// Its GTID (`uuid:N` on MySQL, `domain-server-seq` on MariaDB).
    pub gtid: String,
    /// Error number (e.g. 1062 duplicate key, 1032 row not found).
    pub errno: u32,
    /// Error message.
    pub message: String,
}

/// Finds the GTID of the failing transaction in an applier error message:
/// MySQL says `... failed executing transaction 'uuid:N' at ...`, MariaDB
/// `..., Gtid D-S-N, Internal MariaDB error code: ...`.
pub fn gtid_in_error_message(message: &str) -> Option<String> {
    let mysql = Regex::new(r"transaction '([0-9a-fA-F-]{36}(?::[A-Za-z0-9_]+)?:\d+)'").ok()?;
    if let Some(c) = mysql.captures(message) {
        return Some(c[1].to_string());
    }
    let mariadb = Regex::new(r"Gtid (\d+-\d+-\d+)").ok()?;
    mariadb.captures(message).map(|c| c[1].to_string())
}

/// The GTID a relay log `Gtid` event starts, from its `Info` column:
/// MariaDB `BEGIN GTID 3000-3000-4` (or `GTID 3000-3000-4`), MySQL
/// `SET @@SESSION.GTID_NEXT= 'uuid:4'`.
pub fn gtid_in_event_info(info: &str) -> Option<String> {
    let re = Regex::new(r"(?:^|\s)GTID (\d+-\d+-\d+)|GTID_NEXT\s*=\s*'([^']+)'").ok()?;
    let c = re.captures(info)?;
    c.get(1)
        .or_else(|| c.get(2))
        .map(|m| m.as_str().to_string())
}

/// Parses a MariaDB GTID position (`D-S-N,D-S-N,...`) into domain to
/// sequence number. `None` when malformed.
pub fn parse_mariadb_pos(pos: &str) -> Option<HashMap<u32, u64>> {
    let mut out = HashMap::new();
    for part in pos.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = part.split('-');
        let (d, _s, n) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        out.insert(d.parse().ok()?, n.parse().ok()?);
    }
    Some(out)
}

/// Whether MariaDB position `current` includes every transaction of
/// `wanted` (per domain, a sequence number at least as high).
pub fn mariadb_pos_covers(current: &str, wanted: &str) -> bool {
    match (parse_mariadb_pos(current), parse_mariadb_pos(wanted)) {
        (Some(cur), Some(want)) => want.iter().all(|(d, n)| cur.get(d).is_some_and(|c| c >= n)),
        _ => false,
    }
}

#[cfg(test)]
mod purged_logs_tests {
    use super::*;

    #[test]
    fn purged_logs_on_both_flavours() {
        let mysql = "Got fatal error 1236 from source when reading data from binary log: \
                     'Cannot replicate because the source purged required binary logs.'";
        let cases = [
            (
                1236,
                "Could not find GTID state requested by slave in any binlog files. Probably the \
                 slave state is too old and required binlog files have been purged.",
                true,
            ),
            (
                13114,
                "Got fatal error 1236 from source when reading data from binary log: \
                 'could not find next log; the first event '' at 4'",
                false,
            ),
            (1236, "binlog truncated in the middle of event", false),
            (13114, mysql, true),
            (13114, "Got fatal error 1593 from source: server ids", false),
            (2003, "error connecting to source", false),
            (0, "", false),
        ];
        for (errno, error, want) in cases {
            let r = ReplicaStatus {
                last_io_errno: errno,
                last_io_error: error.into(),
                ..Default::default()
            };
            assert_eq!(r.source_purged_needed_logs(), want, "{errno} {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn mysql_columns() {
        let r = row(&[
            ("Source_Host", "10.0.0.2"),
            ("Source_Port", "3306"),
            ("Source_User", "mysqlaa_repl"),
            ("Auto_Position", "1"),
            ("Source_SSL_Allowed", "No"),
            ("Replica_IO_Running", "Yes"),
            ("Replica_SQL_Running", "No"),
            ("Last_SQL_Errno", "1062"),
            ("Last_SQL_Error", "dup"),
            ("Seconds_Behind_Source", ""),
            ("Retrieved_Gtid_Set", "3e7f:1-5,\n4a1b:1-3"),
            ("Executed_Gtid_Set", "3e7f:1-4"),
        ]);
        let s = parse_replica_status(&r);
        assert_eq!(s.source_host, "10.0.0.2");
        assert_eq!(s.source_port, 3306);
        assert!(s.auto_position);
        assert!(!s.ssl);
        assert_eq!(s.io_running, ThreadState::Yes);
        assert_eq!(s.sql_running, ThreadState::No);
        assert!(!s.running());
        assert_eq!(s.last_sql_errno, 1062);
        assert_eq!(s.seconds_behind_source, None);
        assert_eq!(s.retrieved_gtid_set, "3e7f:1-5,4a1b:1-3");
    }

    #[test]
    fn mariadb_columns() {
        let r = row(&[
            ("Master_Host", "127.0.0.1"),
            ("Master_Port", "3307"),
            ("Master_User", "mysqlaa_repl"),
            ("Using_Gtid", "Slave_Pos"),
            ("Master_SSL_Allowed", "Yes"),
            ("Slave_IO_Running", "Connecting"),
            ("Slave_SQL_Running", "Yes"),
            ("Seconds_Behind_Master", "7"),
            ("Gtid_IO_Pos", "3001-3001-9"),
            ("Gtid_Slave_Pos", "3001-3001-8"),
        ]);
        let s = parse_replica_status(&r);
        assert_eq!(s.source_port, 3307);
        assert!(s.auto_position);
        assert!(s.ssl);
        assert_eq!(s.io_running, ThreadState::Connecting);
        assert_eq!(s.seconds_behind_source, Some(7));
        assert_eq!(s.executed_gtid_set, "3001-3001-8");
    }

    #[test]
    fn gtid_in_relay_events() {
        let cases = [
            ("BEGIN GTID 3000-3000-4", Some("3000-3000-4")),
            ("GTID 0-1-15 cid=7", Some("0-1-15")),
            (
                "SET @@SESSION.GTID_NEXT= '3e7fdfd4-e7cc-11f1-a620-02fc00000001:9'",
                Some("3e7fdfd4-e7cc-11f1-a620-02fc00000001:9"),
            ),
            ("BEGIN", None),
            ("use `app`; CREATE TABLE t (id INT)", None),
        ];
        for (info, want) in cases {
            assert_eq!(gtid_in_event_info(info).as_deref(), want, "{info}");
        }
    }

    #[test]
    fn mariadb_positions() {
        let cases = [
            ("1-1-5,2-2-3", "1-1-5", true),
            ("1-1-5,2-2-3", "1-1-6", false),
            ("1-1-5,2-2-3", "2-2-3,1-1-2", true),
            ("1-1-5", "2-2-1", false),
            ("", "", true),
            ("1-1-5", "", true),
            ("garbage", "1-1-1", false),
            ("1-1-5", "1-1-x", false),
        ];
        for (cur, want, covers) in cases {
            assert_eq!(mariadb_pos_covers(cur, want), covers, "{cur} >= {want}");
        }
    }

    #[test]
    fn gtid_in_messages() {
        let cases = [
            (
                "Worker 1 failed executing transaction '3e7fdfd4-e7cc-11f1-a620-02fc00000001:7' at source log mysql-bin.000002, end_log_pos 2300; Could not execute Write_rows event on table t.a; Duplicate entry '1' for key 'a.PRIMARY', Error_code: 1062",
                Some("3e7fdfd4-e7cc-11f1-a620-02fc00000001:7"),
            ),
            (
                "Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 1 failed executing transaction '3e7fdfd4-e7cc-11f1-a620-02fc00000001:tag_1:12' at source log x",
                Some("3e7fdfd4-e7cc-11f1-a620-02fc00000001:tag_1:12"),
            ),
            (
                "Could not execute Write_rows_v1 event on table t.a; Duplicate entry '1' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log mysql-bin.000001, end_log_pos 1554, Gtid 3001-3001-4, Internal MariaDB error code: 1062",
                Some("3001-3001-4"),
            ),
            ("Error 'Unknown table' on query", None),
        ];
        for (msg, want) in cases {
            assert_eq!(gtid_in_error_message(msg).as_deref(), want, "{msg}");
        }
    }
}
