//! MariaDB's re-seed: a streamed `mariadb-backup` from the donor, unpacked
//! and prepared on the recipient. The programs run beside the servers
//! (they read and write data directories); the stream between them is any
//! byte stream (a pipe, a TCP connection). Passwords reach the programs in
//! an option file readable by its owner only, never in arguments.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

use crate::mysql::Password;

/// The files `mariadb-backup --backup` writes with the binary log position
/// and the GTID position of the copy: 10.11 writes the old name, 11.x the
/// new one.
pub const BINLOG_INFO: [&str; 2] = ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"];

/// How `mariadb-backup` on the donor reaches its server.
#[derive(Clone, Debug)]
pub struct Donor {
    /// The `mariadb-backup` program.
    pub program: PathBuf,
    /// The donor server's data directory.
    pub datadir: PathBuf,
    /// Host and port of the donor server (its own, local address).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// An account with the backup privileges (RELOAD, PROCESS, LOCK
    /// TABLES, BINLOG MONITOR).
    pub user: String,
    /// Its password.
    pub password: Password,
    /// A private scratch directory (the option file, the backup's own
    /// temporary files).
    pub scratch: PathBuf,
}

/// The option file giving `user` and `password` to `mariadb-backup`: the
/// password never appears in its arguments (`/proc/*/cmdline`). Pure.
pub fn option_file(user: &str, password: &Password) -> String {
    // Option files take the value up to the end of the line; quotes keep
    // leading and trailing spaces, backslashes and quotes are escaped.
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    format!(
        "[mariadb-backup]\nuser={}\npassword={}\n",
        quote(user),
        quote(password.expose())
    )
}

/// Arguments of the donor's backup, streamed as xbstream on its standard
/// output. Pure.
pub fn backup_args(d: &Donor, options: &Path) -> Vec<String> {
    vec![
        format!("--defaults-extra-file={}", options.display()),
        "--backup".into(),
        "--stream=xbstream".into(),
        format!("--datadir={}", d.datadir.display()),
        format!("--target-dir={}", d.scratch.join("target").display()),
        format!("--host={}", d.host),
        format!("--port={}", d.port),
    ]
}

/// Arguments that unpack an xbstream from standard input into `target`.
/// Pure.
pub fn extract_args(target: &Path) -> Vec<String> {
    vec!["-x".into(), "-C".into(), target.display().to_string()]
}

/// Arguments that prepare (apply the redo log of) the backup in `target`.
/// Pure.
pub fn prepare_args(target: &Path) -> Vec<String> {
    vec![
        "--prepare".into(),
        format!("--target-dir={}", target.display()),
    ]
}

/// The GTID position in a `mariadb_backup_binlog_info` file: its third
/// field (`file<TAB>position<TAB>gtid`); `None` when the backup has none
/// (binary logging off, or nothing written yet). Pure.
pub fn gtid_position(binlog_info: &str) -> Option<String> {
    let line = binlog_info.lines().next()?;
    let gtid = line.split('\t').nth(2)?.trim();
    (!gtid.is_empty()).then(|| gtid.to_string())
}

/// The donor's side: takes the backup and writes the stream into `sink`
/// as it is produced. Returns the bytes sent.
pub async fn send<W: AsyncWrite + Unpin>(d: &Donor, sink: &mut W) -> io::Result<u64> {
    tokio::fs::create_dir_all(&d.scratch).await?;
    let options = d.scratch.join("backup.cnf");
    write_private(&options, &option_file(&d.user, &d.password)).await?;
    let _ = tokio::fs::remove_dir_all(d.scratch.join("target")).await;
    let mut child = Command::new(&d.program)
        .args(backup_args(d, &options))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("mariadb-backup: no standard output"))?;
    let copied = tokio::io::copy(&mut out, sink).await;
    drop(out);
    let flushed = match copied {
        Ok(_) => sink.flush().await,
        Err(_) => Ok(()),
    };
    if let (Err(e), _) | (_, Err(e)) = (&copied, &flushed) {
        // The stream's reader is gone: the backup would wait forever on
        // its full pipe.
        let _ = child.kill().await;
        let _ = tokio::fs::remove_file(&options).await;
        return Err(io::Error::new(e.kind(), format!("sending the backup: {e}")));
    }
    let output = child.wait_with_output().await?;
    let _ = tokio::fs::remove_file(&options).await;
    if !output.status.success() {
        return Err(program_failed("mariadb-backup --backup", &output.stderr));
    }
    copied
}

/// The recipient's side: unpacks the stream read from `source` into
/// `target` (created; must not exist), prepares it, and returns the GTID
/// position to replicate from.
pub async fn receive<R: AsyncRead + Unpin>(
    backup_program: &Path,
    mbstream_program: &Path,
    source: &mut R,
    target: &Path,
) -> io::Result<Option<String>> {
    tokio::fs::create_dir(target).await?;
    let mut child = Command::new(mbstream_program)
        .args(extract_args(target))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut input = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("mbstream: no standard input"))?;
    let copied = tokio::io::copy(source, &mut input).await;
    drop(input);
    let output = child.wait_with_output().await?;
    copied?;
    if !output.status.success() {
        return Err(program_failed("mbstream -x", &output.stderr));
    }
    let output = Command::new(backup_program)
        .args(prepare_args(target))
        .stdin(Stdio::null())
        .output()
        .await?;
    if !output.status.success() {
        return Err(program_failed("mariadb-backup --prepare", &output.stderr));
    }
    for name in BINLOG_INFO {
        if let Ok(info) = tokio::fs::read_to_string(target.join(name)).await {
            return Ok(gtid_position(&info));
        }
    }
    Ok(None)
}

async fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.to_path_buf();
    let text = text.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())
    })
    .await
    .map_err(io::Error::other)?
}

/// An error naming the program, with the end of what it said.
fn program_failed(what: &str, stderr: &[u8]) -> io::Error {
    let text = String::from_utf8_lossy(stderr);
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    io::Error::other(format!("{what} failed: {}", tail.join(" | ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_from_binlog_info() {
        let cases = [
            ("mysql-bin.000002\t41136\t0-1-5\n", Some("0-1-5")),
            (
                "mysql-bin.000002\t41136\t0-1-5,7-3000-12",
                Some("0-1-5,7-3000-12"),
            ),
            ("mysql-bin.000001\t330\t\n", None),
            ("mysql-bin.000001\t330", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(gtid_position(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn the_password_is_only_in_the_option_file() {
        let d = Donor {
            program: "mariadb-backup".into(),
            datadir: "/var/lib/mysql/data".into(),
            host: "127.0.0.1".into(),
            port: 3306,
            user: "mysqlaa_admin".into(),
            password: Password::new("s3cr\"t \\x"),
            scratch: "/tmp/seed".into(),
        };
        let options = d.scratch.join("backup.cnf");
        let args = backup_args(&d, &options);
        assert_eq!(args[0], "--defaults-extra-file=/tmp/seed/backup.cnf");
        assert!(args.iter().all(|a| !a.contains("s3cr")), "{args:?}");
        assert_eq!(
            option_file(&d.user, &d.password),
            "[mariadb-backup]\nuser=\"mysqlaa_admin\"\npassword=\"s3cr\\\"t \\\\x\"\n"
        );
        assert_eq!(
            extract_args(Path::new("/d")),
            ["-x", "-C", "/d"].map(String::from)
        );
        assert_eq!(prepare_args(Path::new("/d"))[1], "--target-dir=/d");
    }
}
