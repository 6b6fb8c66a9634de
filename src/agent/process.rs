//! The local server's process: found by the pid file it writes in the run
//! directory (an emptyDir the agent shares; the pod shares one process
//! namespace), and fenced by SIGKILL.
//!
//! Why SIGKILL: it is immediate and takes every session with it, including
//! commits held waiting for an acknowledgement (`SET GLOBAL
//! super_read_only` would wait behind those for ever), and it loses nothing
//! a client was told is committed (`sync_binlog=1`,
//! `innodb_flush_log_at_trx_commit=1`; under `SemiSync` a commit not yet
//! acknowledged was never reported to its client). The kubelet restarts the
//! server, which boots fenced (`super_read_only` in its my.cnf): only the
//! operator unfences a writer.

use std::path::Path;

/// File names of the server programs.
const SERVERS: [&str; 2] = ["mysqld", "mariadbd"];

/// Whether `cmdline` (NUL separated, as `/proc/PID/cmdline`) runs a server
/// program (directly, or through a loader or a wrapper's `exec`). Pure.
pub fn is_server(cmdline: &[u8]) -> bool {
    cmdline
        .split(|b| *b == 0)
        .take(4)
        .filter_map(|a| std::str::from_utf8(a).ok())
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .any(|f| SERVERS.contains(&f))
}

/// The pid of the running server of `run_dir`, if one runs.
pub fn server_pid(run_dir: &Path, pid_file: &str) -> Option<i32> {
    let text = std::fs::read_to_string(run_dir.join(pid_file)).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    is_server(&cmdline).then_some(pid)
}

/// Sends SIGKILL to `pid`.
pub fn kill(pid: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory effects; `pid` was read from the
    // server's pid file and checked to run a server program just before.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_programs_are_recognised() {
        let rows: [(&[u8], bool); 6] = [
            (b"/usr/sbin/mysqld\0--defaults-file=/etc/my.cnf\0", true),
            (b"mariadbd\0", true),
            (
                b"/lib64/ld-linux-x86-64.so.2\0--library-path\0/opt/lib\0/opt/usr/sbin/mysqld\0",
                true,
            ),
            (b"/bin/sh\0/etc/mysql/start.sh\0", false),
            (b"/usr/bin/mysqld_safe\0", false),
            (b"", false),
        ];
        for (cmdline, want) in rows {
            assert_eq!(
                is_server(cmdline),
                want,
                "{:?}",
                String::from_utf8_lossy(cmdline)
            );
        }
    }

    #[test]
    fn a_pid_file_naming_another_program_is_not_the_server() {
        let dir = std::env::temp_dir().join(format!("agent-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        // This test's own process is not a server.
        std::fs::write(dir.join("mysqld.pid"), std::process::id().to_string()).unwrap_or_default();
        assert_eq!(server_pid(&dir, "mysqld.pid"), None);
        assert_eq!(server_pid(&dir, "missing.pid"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
