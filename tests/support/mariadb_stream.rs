//! The MariaDB re-seed's copy between two test servers, as between two
//! pods: the donor's `mariadb-backup` streamed over TCP
//! (`reseed::mariadb::send`), unpacked and prepared on the other side
//! (`reseed::mariadb::receive`). Shared by the seam test and the seed bench
//! (`#[path]`), so both copy the way the operator does.

use std::path::Path;

use mysql_aa_operator::mysql::Password;
use mysql_aa_operator::reseed::mariadb;
use test_servers::Instance;

/// What one streamed copy moved.
pub struct Streamed {
    /// Bytes the donor sent.
    pub bytes: u64,
    /// The GTID position the backup records, if any.
    pub position: Option<String>,
}

/// Streams `donor`'s data, read as `user`, into the directory `target`
/// (prepared, ready to be a data directory).
pub async fn stream_backup(
    donor: &Instance,
    user: &str,
    password: &str,
    target: &Path,
) -> Streamed {
    let bin = donor.installation.prefix.join("usr/bin");
    let from = mariadb::Donor {
        program: bin.join("mariadb-backup"),
        datadir: donor.data_dir(),
        host: donor.host.clone(),
        port: donor.port,
        user: user.into(),
        password: Password::new(password),
        scratch: donor.dir.join("tmp/seed"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let sender = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        mariadb::send(&from, &mut socket).await
    });
    let mut socket = tokio::net::TcpStream::connect(at).await.unwrap();
    let position = mariadb::receive(
        &bin.join("mariadb-backup"),
        &bin.join("mbstream"),
        &mut socket,
        target,
    )
    .await
    .unwrap();
    let bytes = sender.await.unwrap().unwrap();
    Streamed { bytes, position }
}
