//! Real database servers for the tests: MySQL 9.7 and MariaDB 10.11,
//! installed into private prefixes by `scripts/install-test-servers`, each
//! instance a separate `mysqld`/`mariadbd` process on 127.0.0.1 with a port
//! of its own.
//!
//! An instance runs with the my.cnf the caller gives (the operator's own
//! rendered per-ordinal my.cnf) plus only the path and network overrides a
//! local run needs, as command-line options after `--defaults-file`. Its
//! data directory is a copy of a template initialized once per machine
//! (`.cache/templates`), with a fresh server UUID. Dropping an instance
//! kills its process (SIGKILL, by PID) and removes its directory.
//!
//! A missing installation is a test failure, never a skip.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// MySQL 9.7 from Debian sid, run through its prefix's own loader.
    MySql,
    /// MariaDB 10.11 from Debian bookworm.
    MariaDb,
}

impl Kind {
    fn dir_name(self) -> &'static str {
        match self {
            Kind::MySql => "mysql-9.7",
            Kind::MariaDb => "mariadb-10.11",
        }
    }
}

/// Where `scripts/install-test-servers` put the servers.
pub fn servers_dir() -> PathBuf {
    std::env::var_os("MYSQL_AA_SERVERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/servers"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An installed server: how to run its programs here.
#[derive(Clone, Debug)]
pub struct Installation {
    /// Which server.
    pub kind: Kind,
    /// The prefix it was unpacked into.
    pub prefix: PathBuf,
}

impl Installation {
    /// The installation of `kind`. Panics (failing the test) with the
    /// command to run when it is missing.
    pub fn get(kind: Kind) -> Self {
        let prefix = servers_dir().join(kind.dir_name());
        assert!(
            prefix.join(".complete").exists(),
            "{} is not installed in {}: run scripts/install-test-servers",
            kind.dir_name(),
            prefix.display()
        );
        Self { kind, prefix }
    }

    fn lib_dir(&self) -> PathBuf {
        self.prefix.join("usr/lib/x86_64-linux-gnu")
    }

    /// A command running `program` (a path inside the prefix).
    pub fn command(&self, program: &str) -> Command {
        let path = self.prefix.join(program);
        match self.kind {
            Kind::MySql => {
                let mut c = Command::new(self.lib_dir().join("ld-linux-x86-64.so.2"));
                c.arg("--library-path").arg(self.lib_dir()).arg(path);
                c
            }
            Kind::MariaDb => Command::new(path),
        }
    }

    fn server_program(&self) -> &'static str {
        match self.kind {
            Kind::MySql => "usr/sbin/mysqld",
            Kind::MariaDb => "usr/sbin/mariadbd",
        }
    }

    /// Options that locate the server's own files (started through a
    /// loader or from a prefix, it cannot find them itself).
    fn location_args(&self) -> Vec<String> {
        let p = self.prefix.display();
        let mut args = vec![
            format!("--basedir={p}/usr"),
            format!("--lc-messages-dir={p}/usr/share/mysql"),
            format!("--character-sets-dir={p}/usr/share/mysql/charsets"),
            format!("--plugin-dir={p}/usr/lib/mysql/plugin"),
            "--user=root".to_string(),
        ];
        if self.kind == Kind::MySql {
            args.push("--mysqlx=OFF".to_string());
        }
        args
    }

    /// The template data directory, initialized once (under a file lock, so
    /// concurrent test processes share one initialization).
    fn template(&self, mycnf: &Path) -> PathBuf {
        let templates = workspace_root().join(".cache/templates");
        fs::create_dir_all(&templates).expect("create .cache/templates");
        let dir = templates.join(self.kind.dir_name());
        let lock = fs::File::create(templates.join(format!("{}.lock", self.kind.dir_name())))
            .expect("create template lock");
        lock.lock().expect("lock template");
        if !dir.join(".complete").exists() {
            let _ = fs::remove_dir_all(&dir);
            let work = templates.join(format!("{}.work", self.kind.dir_name()));
            let _ = fs::remove_dir_all(&work);
            fs::create_dir_all(&work).expect("create template work dir");
            fs::create_dir_all(&dir).expect("create template dir");
            let data = dir.join("data");
            let log = work.join("init.log");
            let status = match self.kind {
                Kind::MySql => self
                    .command(self.server_program())
                    .arg(format!("--defaults-file={}", mycnf.display()))
                    .arg("--initialize-insecure")
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--log-error={}", log.display()))
                    .args(self.location_args())
                    .status(),
                Kind::MariaDb => self
                    .command("usr/bin/mariadb-install-db")
                    .arg(format!("--defaults-file={}", mycnf.display()))
                    .arg(format!("--basedir={}/usr", self.prefix.display()))
                    .arg(format!("--datadir={}", data.display()))
                    .arg("--user=root")
                    .arg("--auth-root-authentication-method=normal")
                    .arg("--skip-test-db")
                    .stdout(fs::File::create(&log).expect("init log"))
                    .stderr(Stdio::inherit())
                    .status(),
            }
            .expect("run the server's initialization");
            assert!(
                status.success(),
                "initializing the {} template failed: {}",
                self.kind.dir_name(),
                fs::read_to_string(&log).unwrap_or_default()
            );
            // Each copy must get its own server UUID.
            let _ = fs::remove_file(data.join("auto.cnf"));
            fs::write(dir.join(".complete"), "").expect("mark template complete");
            let _ = fs::remove_dir_all(&work);
        }
        dir.join("data")
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// One running server process.
pub struct Instance {
    /// Its installation.
    pub installation: Installation,
    /// Directory holding its data, my.cnf, socket and log.
    pub dir: PathBuf,
    /// Address it listens on.
    pub host: String,
    /// Port it listens on.
    pub port: u16,
    child: Option<Child>,
}

impl Instance {
    /// Starts a new server of `kind` with `mycnf` (the rendered my.cnf) from
    /// a copy of the template, and waits until it accepts connections.
    /// Its `root@localhost` account has no password.
    pub fn start(kind: Kind, name: &str, mycnf: &str) -> Self {
        let installation = Installation::get(kind);
        let base = std::env::var_os("MYSQL_AA_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join("mysql-aa-tests");
        let dir = base.join(format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["files", "tmp"] {
            fs::create_dir_all(dir.join(sub)).expect("create instance dirs");
        }
        let cnf = dir.join("my.cnf");
        fs::write(&cnf, mycnf).expect("write my.cnf");
        let template = installation.template(&cnf);
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(dir.join("data"))
            .status()
            .expect("copy the template");
        assert!(copied.success(), "copying {} failed", template.display());
        let mut instance = Self {
            installation,
            dir,
            host: "127.0.0.1".into(),
            port: 0,
            child: None,
        };
        instance.spawn_with_retries();
        instance
    }

    fn spawn_with_retries(&mut self) {
        for attempt in 0..3 {
            if self.port == 0 || attempt > 0 {
                self.port = free_port();
            }
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(log) if log.contains("already in use") && attempt < 2 => continue,
                Err(log) => panic!(
                    "{} in {} did not start:\n{log}",
                    self.installation.kind.dir_name(),
                    self.dir.display()
                ),
            }
        }
    }

    fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    fn args(&self) -> Vec<String> {
        let d = self.dir.display();
        let mut args = vec![format!("--defaults-file={d}/my.cnf")];
        args.extend(self.installation.location_args());
        args.extend([
            format!("--datadir={d}/data"),
            format!("--socket={d}/mysqld.sock"),
            format!("--pid-file={d}/mysqld.pid"),
            format!("--port={}", self.port),
            format!("--bind-address={}", self.host),
            format!("--report-host={}", self.host),
            format!("--report-port={}", self.port),
            format!("--secure-file-priv={d}/files"),
            format!("--tmpdir={d}/tmp"),
            format!("--log-error={}", self.error_log().display()),
        ]);
        args
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log_start = fs::metadata(self.error_log()).map(|m| m.len()).unwrap_or(0);
        let child = self
            .installation
            .command(self.installation.server_program())
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn failed: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let log = self.log_since(log_start);
            if log.contains("ready for connections") {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status}:\n{log}"));
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(format!("not ready after 90 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(self.error_log()) {
            let _ = f.seek(SeekFrom::Start(offset));
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// The whole error log so far.
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    /// PID of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, like `kill -9`: no clean shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A node that lost its disk: SIGKILL, then a freshly initialized data
    /// directory (root without a password, no other account) in place of
    /// the old one, started on the same port with the same my.cnf.
    pub fn wipe(&mut self) {
        let template = self.installation.template(&self.dir.join("my.cnf"));
        self.replace_data_with(|data| {
            let copied = Command::new("cp")
                .arg("-a")
                .arg(&template)
                .arg(data)
                .status()
                .expect("copy the template");
            assert!(copied.success(), "copying {} failed", template.display());
        });
    }

    /// SIGKILL, then `fill` makes the (removed) data directory anew, then
    /// the server starts on it, same port and my.cnf.
    pub fn replace_data_with(&mut self, fill: impl FnOnce(&Path)) {
        self.kill9();
        let data = self.data_dir();
        fs::remove_dir_all(&data).expect("remove the data directory");
        fill(&data);
        if let Err(log) = self.spawn_and_wait() {
            panic!("start of {} failed:\n{log}", self.dir.display());
        }
    }

    /// Waits up to `limit` for the server to exit by itself; whether it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while let Some(child) = self.child.as_mut() {
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        if let Err(log) = self.spawn_and_wait() {
            panic!("restart of {} failed:\n{log}", self.dir.display());
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
        if std::env::var_os("MYSQL_AA_KEEP_TEST_DIRS").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
