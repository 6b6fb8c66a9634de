//! The image-to-binary mapping: a pod's image stands for a server installed
//! on the host by `scripts/install-test-servers`.
//!
//! | image | host programs |
//! |---|---|
//! | `mysql:*` (any registry, any tag) | MySQL 9.7 from `.cache/servers/mysql-9.7`: `mysqld`, `mysql`, `mysqladmin` |
//! | `mariadb:*` | MariaDB 10.11 from `.cache/servers/mariadb-10.11`: `mariadbd`, `mariadb`, `mariadb-admin`, `mariadb-install-db`, `mariadb-backup`, `mbstream` (and the `mysql*` names) |
//! | anything else | the pod fails to start (`ErrImagePull`) |
//!
//! Each image gets a directory of small wrapper scripts, first on the
//! containers' `PATH`, that run the host's binaries with the location
//! options a private prefix needs (MySQL through its prefix's own loader).
//! The tag is not honoured: every `mysql:*` runs 9.7.

use std::path::{Path, PathBuf};

use test_servers::{Installation, Kind};

/// Whether an image is the operator's (its agent runs from it).
pub fn is_operator(image: &str) -> bool {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split([':', '@'])
        .next()
        .is_some_and(|n| n == "mysql-aa-operator")
}

/// Which installed server an image stands for.
pub fn kind_of(image: &str) -> Option<Kind> {
    if is_operator(image) {
        return None;
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    let name = name.split([':', '@']).next().unwrap_or(name);
    match name {
        n if n.contains("mariadb") => Some(Kind::MariaDb),
        n if n.contains("mysql") => Some(Kind::MySql),
        _ => None,
    }
}

/// Writes an executable script, atomically: containers and exec probes run
/// these wrappers while others start, and a script rewritten in place can
/// be seen empty, or refused (`ETXTBSY`: the shell exits 126), by an exec
/// racing the write. One already holding `body` is left as it is.
fn write_script(path: &Path, body: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::read(path).is_ok_and(|old| old == body.as_bytes()) {
        return Ok(());
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&tmp)?;
    f.write_all(body.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The wrapper directory of `image` under `root`: a server's, or the
/// operator's (`mysql-aa-operator` running `operator`, the host's binary).
pub fn wrappers_of(root: &Path, image: &str, operator: Option<&Path>) -> Result<PathBuf, String> {
    if is_operator(image) {
        let binary = operator.ok_or_else(|| {
            format!("image {image:?}: this box was started without the operator's binary")
        })?;
        let dir = root.join("images/operator/bin");
        let target = dir.join("mysql-aa-operator");
        if !target.exists() {
            // The pod's user may not reach the build's folder (/root is
            // 0700): the box keeps its own copy (a hard link when it can).
            // Two pods starting at once may both get here: the copy goes
            // to a file of its own, renamed into place (never a write into
            // a binary another container may be running).
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            if std::fs::hard_link(binary, &target).is_err() && !target.exists() {
                let tmp = dir.join(format!(".mysql-aa-operator.{}.tmp", std::process::id()));
                std::fs::copy(binary, &tmp)
                    .map_err(|e| format!("copying {}: {e}", binary.display()))?;
                let _ = std::fs::set_permissions(
                    &tmp,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                );
                std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
            }
        }
        return Ok(dir);
    }
    let kind = kind_of(image).ok_or_else(|| {
        format!("image {image:?} has no host binaries in the sandbox (mysql:*, mariadb:* or the operator's only)")
    })?;
    wrappers(root, kind).map_err(|e| e.to_string())
}

/// Writes (when changed) and returns the wrapper directory of `kind` under `root`.
pub fn wrappers(root: &Path, kind: Kind) -> std::io::Result<PathBuf> {
    let inst = Installation::get(kind);
    let p = inst.prefix.display().to_string();
    let dir = root.join(match kind {
        Kind::MySql => "images/mysql/bin",
        Kind::MariaDb => "images/mariadb/bin",
    });
    std::fs::create_dir_all(&dir)?;
    let loc = format!(
        "--basedir={p}/usr --lc-messages-dir={p}/usr/share/mysql --character-sets-dir={p}/usr/share/mysql/charsets --plugin-dir={p}/usr/lib/mysql/plugin"
    );
    // Options must come after --defaults-file when it is first.
    let server = |binary: &str, extra: &str, run: &str| {
        format!(
            "#!/bin/sh\nloc=\"{loc}{extra}\"\ncase \"$1\" in --defaults-file=*|--defaults-extra-file=*|--no-defaults) first=$1; shift; set -- \"$first\" $loc \"$@\";; *) set -- $loc \"$@\";; esac\nexec {run}{p}/usr/sbin/{binary} \"$@\"\n"
        )
    };
    match kind {
        Kind::MySql => {
            let run = format!(
                "{p}/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path {p}/usr/lib/x86_64-linux-gnu "
            );
            write_script(
                &dir.join("mysqld"),
                &server("mysqld", " --mysqlx=OFF", &run),
            )?;
            for tool in ["mysql", "mysqladmin", "mysqlbinlog", "mysqldump"] {
                write_script(
                    &dir.join(tool),
                    &format!("#!/bin/sh\nexec {run}{p}/usr/bin/{tool} \"$@\"\n"),
                )?;
            }
        }
        Kind::MariaDb => {
            let body = server("mariadbd", "", "");
            write_script(&dir.join("mariadbd"), &body)?;
            write_script(&dir.join("mysqld"), &body)?;
            let install = format!(
                "#!/bin/sh\ncase \"$1\" in --defaults-file=*) first=$1; shift; set -- \"$first\" --basedir={p}/usr \"$@\";; *) set -- --basedir={p}/usr \"$@\";; esac\nexec {p}/usr/bin/mariadb-install-db \"$@\"\n"
            );
            write_script(&dir.join("mariadb-install-db"), &install)?;
            for (tool, real) in [
                ("mariadb", "mariadb"),
                ("mysql", "mariadb"),
                ("mariadb-admin", "mariadb-admin"),
                ("mysqladmin", "mariadb-admin"),
                ("mariadb-binlog", "mariadb-binlog"),
                ("mariadb-backup", "mariadb-backup"),
                ("mbstream", "mbstream"),
            ] {
                write_script(
                    &dir.join(tool),
                    &format!("#!/bin/sh\nexec {p}/usr/bin/{real} \"$@\"\n"),
                )?;
            }
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_map_to_servers() {
        let cases = [
            ("mysql:8.4", Some(Kind::MySql)),
            ("docker.io/library/mysql:9.1", Some(Kind::MySql)),
            ("mariadb:11.4", Some(Kind::MariaDb)),
            (
                "registry.example.com/db/mariadb@sha256:abc",
                Some(Kind::MariaDb),
            ),
            ("postgres:16", None),
            ("ghcr.io/mysql-aa/mysql-aa-operator:0.1.0", None),
        ];
        for (image, want) in cases {
            assert_eq!(kind_of(image), want, "{image}");
        }
        assert!(is_operator("ghcr.io/mysql-aa/mysql-aa-operator:0.1.0"));
        assert!(is_operator("mysql-aa-operator"));
        assert!(!is_operator("mysql:8.4"));
    }
}
