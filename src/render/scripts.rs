//! Shell scripts shipped in the ConfigMap and run by the server pods with the
//! server image's own `sh`: one-time data directory bootstrap, and the
//! server start that picks the pod's own my.cnf.

use crate::accounts::{ADMIN_PASSWORD_ENV, ADMIN_USER, REPLICATION_PASSWORD_ENV, REPLICATION_USER};
use crate::api::Engine;

use super::mycnf::{CONFIG_DIR, DATA_DIR, RUN_DIR, SOCKET};

/// ConfigMap key of the bootstrap script (init container).
pub const BOOTSTRAP_KEY: &str = "bootstrap.sh";
/// ConfigMap key of the start script (server container).
pub const START_KEY: &str = "start.sh";
/// Client option file written by the start script for the probes.
pub const PROBE_CNF: &str = "/var/run/mysqld/probe.cnf";
/// File that marks a data directory whose bootstrap completed.
pub const BOOTSTRAP_MARKER: &str = ".mysql-aa-bootstrapped";

/// Names of an engine's programs inside its image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Programs {
    /// The server.
    pub server: &'static str,
    /// The command-line client.
    pub client: &'static str,
    /// The administration client (`ping`).
    pub admin: &'static str,
}

impl Programs {
    /// Programs of `engine`.
    pub fn of(engine: Engine) -> Self {
        match engine {
            Engine::MySQL => Self {
                server: "mysqld",
                client: "mysql",
                admin: "mysqladmin",
            },
            Engine::MariaDB => Self {
                server: "mariadbd",
                client: "mariadb",
                admin: "mariadb-admin",
            },
        }
    }
}

const COMMON_PRELUDE: &str = r#"set -eu
ordinal="${HOSTNAME##*-}"
cnf="@CONFIG_DIR@/my-${ordinal}.cnf"
"#;

/// ConfigMap key (a file in the config directory) present once the pair
/// has been Ready (`status.initializedAt`): a pod that then starts with an
/// empty volume is given a copy of the writer's data, never a new server.
pub const INITIALIZED_KEY: &str = "pair-initialized";
/// ConfigMap key (a file in the config directory) asking `pod`'s
/// bootstrap for a re-seed (MariaDB): its value is a token; the bootstrap
/// moves the data directory aside and receives a copy once per token.
pub fn reseed_key(pod: &str) -> String {
    format!("reseed-{pod}")
}

/// Where the operator's binary is copied for the MariaDB seed (the agent
/// and `seed-receive` run in the server's image).
pub const AGENT_BIN_DIR: &str = "/opt/mysql-aa/bin";
/// The schema a node initialized while awaiting a copy carries (created
/// with binary logging off): the operator re-seeds it before anything else
/// (MySQL: CLONE drops it with the rest).
pub const AWAITING_SEED_SCHEMA: &str = "mysql_aa_awaiting_seed";

/// The init container's script: initialize the data directory once, create
/// the operator's accounts with binary logging off (so they never
/// replicate), and stop. A directory left by an interrupted bootstrap is
/// moved aside, never deleted. On a pair that has data
/// ([`INITIALIZED_KEY`]) an empty volume is filled with a copy of the
/// writer's data where this pod can receive one (MariaDB: `seed-receive`,
/// with the copied operator binary), or else initialized and marked
/// [`AWAITING_SEED_SCHEMA`] for the operator (MySQL: CLONE).
pub fn bootstrap_script(engine: Engine) -> String {
    let p = Programs::of(engine);
    let (initialize, writable) = match engine {
        Engine::MySQL => (
            format!(r#""{}" --defaults-file="$cnf" --initialize-insecure"#, p.server),
            "--read-only=OFF --super-read-only=OFF",
        ),
        Engine::MariaDB => (
            r#"mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=normal --skip-test-db"#
                .to_string(),
            "--read-only=OFF",
        ),
    };
    let repl_privileges = crate::accounts::replication_privileges(engine);
    let script = r#"#!/bin/sh
# Initializes this node's data directory once. Rendered by mysql-aa-operator.
@PRELUDE@datadir="@DATA_DIR@"
# A re-seed asked for by the operator (MariaDB): once per token.
token=$(cat "@CONFIG_DIR@/reseed-${HOSTNAME}" 2>/dev/null || true)
case "$token" in *[!0-9a-f]*) token="" ;; esac
if [ -f "$datadir/@MARKER@" ]; then
  if [ -n "$token" ] && [ -x "@AGENT_BIN@" ] && [ ! -f "$datadir/.mysql-aa-reseed-$token" ]; then
    echo "bootstrap: a re-seed is asked for: keeping this data directory as $datadir.before-reseed (the previous one there is removed)"
    rm -rf "$datadir.before-reseed"
    mv "$datadir" "$datadir.before-reseed"
  else
    echo "bootstrap: $datadir is initialized"
    exit 0
  fi
fi
if [ -e "$datadir" ]; then
  aside="$datadir.incomplete-$(date +%s)"
  echo "bootstrap: moving an unfinished bootstrap aside to $aside"
  mv "$datadir" "$aside"
fi
: "${@ADMIN_ENV@:?is not set}"
: "${@REPL_ENV@:?is not set}"
sql_quote() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g"; }
admin_pw=$(sql_quote "$@ADMIN_ENV@")
repl_pw=$(sql_quote "$@REPL_ENV@")
sock=/tmp/bootstrap.sock
start_local() {
  "@SERVER@" --defaults-file="$cnf" --skip-networking --socket="$sock" @WRITABLE@ &
  pid=$!
  tries=0
  until "@ADMIN@" --socket="$sock" -uroot ping >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "bootstrap: server exited during bootstrap"; exit 1; }
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "bootstrap: server did not start"; kill "$pid"; exit 1; }
    sleep 1
  done
}
stop_local() {
  kill -TERM "$pid"
  wait "$pid" || true
}
awaiting=""
if [ -f "@CONFIG_DIR@/@INITIALIZED@" ] || [ -n "$token" ]; then
  if [ -x "@AGENT_BIN@" ]; then
    echo "bootstrap: the pair has data and this volume is empty: copying the writer's data"
    seeding="$datadir.seeding"
    gtid=$("@AGENT_BIN@" seed-receive --target "$seeding")
    mv "$seeding" "$datadir"
    start_local
    umask 077
    pw=$(printf '%s' "$@ADMIN_ENV@" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
    printf '[client]\nuser=root\npassword="%s"\n' "$pw" > /tmp/bootstrap-client.cnf
    unset pw
    "@CLIENT@" --defaults-extra-file=/tmp/bootstrap-client.cnf --socket="$sock" -e "SET GLOBAL gtid_slave_pos = '$gtid'"
    rm -f /tmp/bootstrap-client.cnf
    stop_local
    [ -z "$token" ] || touch "$datadir/.mysql-aa-reseed-$token"
    touch "$datadir/@MARKER@"
    echo "bootstrap: copy of the writer's data in place (GTID position $gtid)"
    exit 0
  fi
  echo "bootstrap: the pair has data and this volume is empty: initializing a server that awaits a copy of the writer's data"
  awaiting="CREATE DATABASE IF NOT EXISTS @AWAITING@;"
fi
echo "bootstrap: initializing $datadir"
@INITIALIZE@ @WRITABLE@
start_local
"@CLIENT@" --socket="$sock" -uroot <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS '@ADMIN_USER@'@'%' IDENTIFIED BY '$admin_pw';
GRANT ALL PRIVILEGES ON *.* TO '@ADMIN_USER@'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '@REPL_USER@'@'%' IDENTIFIED BY '$repl_pw';
GRANT @REPL_PRIVILEGES@ ON *.* TO '@REPL_USER@'@'%';
ALTER USER 'root'@'localhost' IDENTIFIED BY '$admin_pw';
$awaiting
SQL
stop_local
touch "$datadir/@MARKER@"
echo "bootstrap: done"
"#;
    script
        .replace("@PRELUDE@", COMMON_PRELUDE)
        .replace("@INITIALIZE@", &initialize)
        .replace("@WRITABLE@", writable)
        .replace("@SERVER@", p.server)
        .replace("@ADMIN@", p.admin)
        .replace("@CLIENT@", p.client)
        .replace("@ADMIN_USER@", ADMIN_USER)
        .replace("@REPL_USER@", REPLICATION_USER)
        .replace("@REPL_PRIVILEGES@", repl_privileges)
        .replace("@ADMIN_ENV@", ADMIN_PASSWORD_ENV)
        .replace("@REPL_ENV@", REPLICATION_PASSWORD_ENV)
        .replace("@MARKER@", BOOTSTRAP_MARKER)
        .replace("@DATA_DIR@", DATA_DIR)
        .replace("@CONFIG_DIR@", CONFIG_DIR)
        .replace("@INITIALIZED@", INITIALIZED_KEY)
        .replace("@AGENT_BIN@", &format!("{AGENT_BIN_DIR}/mysql-aa-operator"))
        .replace("@AWAITING@", AWAITING_SEED_SCHEMA)
}

/// The server container's script: write the probes' client option file
/// (so no password is ever an argument), then exec the server with this
/// pod's own my.cnf.
pub fn start_script(engine: Engine) -> String {
    let p = Programs::of(engine);
    let script = r#"#!/bin/sh
# Starts this node's server with its own my.cnf. Rendered by mysql-aa-operator.
@PRELUDE@umask 077
pw=$(printf '%s' "$@ADMIN_ENV@" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
printf '[client]\nuser=root\npassword="%s"\nsocket=@SOCKET@\n' "$pw" > "@PROBE_CNF@.tmp"
mv "@PROBE_CNF@.tmp" "@PROBE_CNF@"
unset pw @ADMIN_ENV@ @REPL_ENV@
exec "@SERVER@" --defaults-file="$cnf"
"#;
    script
        .replace("@PRELUDE@", COMMON_PRELUDE)
        .replace("@SERVER@", p.server)
        .replace("@ADMIN_ENV@", ADMIN_PASSWORD_ENV)
        .replace("@REPL_ENV@", REPLICATION_PASSWORD_ENV)
        .replace("@SOCKET@", SOCKET)
        .replace("@PROBE_CNF@", PROBE_CNF)
        .replace("@CONFIG_DIR@", CONFIG_DIR)
        .replace("@RUN_DIR@", RUN_DIR)
}

/// Liveness: the server process answers (`ping` succeeds even when access
/// is denied), nothing more, so a busy server is never restarted.
pub fn liveness_command(engine: Engine) -> Vec<String> {
    let p = Programs::of(engine);
    vec![
        p.admin.to_string(),
        format!("--defaults-extra-file={PROBE_CNF}"),
        "ping".to_string(),
    ]
}

/// Readiness: the server accepts an authenticated connection and runs a query.
pub fn readiness_command(engine: Engine) -> Vec<String> {
    let p = Programs::of(engine);
    vec![
        p.client.to_string(),
        format!("--defaults-extra-file={PROBE_CNF}"),
        "-e".to_string(),
        "SELECT 1".to_string(),
    ]
}
