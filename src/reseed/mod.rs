//! The re-seed: a node that lost its data (a new, empty volume), or that
//! can no longer catch up (the writer purged binary logs it needs), gets a
//! copy of the writer's data, then replicates from the writer again.
//!
//! - MySQL: the clone plugin, driven through the seam
//!   ([`crate::mysql::Server::clone_data_from`]): the recipient copies the
//!   donor's data over the MySQL protocol, then restarts on it.
//! - MariaDB: [`mariadb`]: a physical backup of the donor streamed as it is
//!   taken (`mariadb-backup --backup --stream=xbstream`), unpacked on the
//!   recipient (`mbstream -x`) and prepared (`mariadb-backup --prepare`);
//!   the recipient then starts replicating at the GTID position the backup
//!   recorded.
//!
//! Either way the recipient keeps its own `server_id` and
//! `auto_increment_offset` (its rendered my.cnf, which no copy touches).

pub mod mariadb;
pub mod receive;
pub mod stream;
