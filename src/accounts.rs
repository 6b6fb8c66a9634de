//! The MySQL accounts the operator creates on each node, and where their
//! passwords come from. Passwords live only in Secrets and reach the
//! containers as environment variables from `secretKeyRef`, never as
//! arguments.

/// The operator's administrative account (all privileges). Its password is
/// also the local `root@localhost` password.
pub const ADMIN_USER: &str = "mysqlaa_admin";
/// The replication account: what [`replication_privileges`] lists.
pub const REPLICATION_USER: &str = "mysqlaa_repl";

/// The replication account's privileges: `REPLICATION SLAVE` (it reads
/// every change of the binary log), and on MySQL `BACKUP_ADMIN` too, so
/// the same account is the clone plugin's donor account when a node is
/// re-seeded from the writer: it reads the same data a replica receives,
/// and nothing more is given to anyone.
pub fn replication_privileges(engine: crate::api::Engine) -> &'static str {
    match engine {
        crate::api::Engine::MySQL => "REPLICATION SLAVE, BACKUP_ADMIN",
        crate::api::Engine::MariaDB => "REPLICATION SLAVE",
    }
}
/// Key of the password in a credentials Secret.
pub const PASSWORD_KEY: &str = "password";
/// Container environment variable with the admin password.
pub const ADMIN_PASSWORD_ENV: &str = "MYSQLAA_ADMIN_PASSWORD";
/// Container environment variable with the replication password.
pub const REPLICATION_PASSWORD_ENV: &str = "MYSQLAA_REPLICATION_PASSWORD";
