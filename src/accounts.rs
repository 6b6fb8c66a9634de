//! The MySQL accounts the operator creates on each node, and where their
//! passwords come from. Passwords live only in Secrets and reach the
//! containers as environment variables from `secretKeyRef`, never as
//! arguments.

/// The operator's administrative account (all privileges). Its password is
/// also the local `root@localhost` password.
pub const ADMIN_USER: &str = "mysqlaa_admin";
/// The replication account: REPLICATION SLAVE only.
pub const REPLICATION_USER: &str = "mysqlaa_repl";
/// Key of the password in a credentials Secret.
pub const PASSWORD_KEY: &str = "password";
/// Container environment variable with the admin password.
pub const ADMIN_PASSWORD_ENV: &str = "MYSQLAA_ADMIN_PASSWORD";
/// Container environment variable with the replication password.
pub const REPLICATION_PASSWORD_ENV: &str = "MYSQLAA_REPLICATION_PASSWORD";
