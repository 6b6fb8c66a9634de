//! `mysql-aa-operator agent`: the self-fencing agent, a small container
//! beside each server of a SingleWriter pair.
//!
//! While the writer Lease ([`crate::lease`]) names its pod, the agent
//! renews it every [`deadline::period`] as long as its server answers. When
//! a renewal fails it asks its peer's agent to confirm ([`peer`]); when
//! neither a renewal nor a confirmation is valid any more (the Lease's
//! duration minus a margin after the last renewal), it fences its server
//! at once by SIGKILL ([`process`]): the kubelet restarts it fenced, so
//! writes and reads on a cut-off node stop within that bound, and the
//! operator, which waits the whole duration from when it saw the last
//! renewal, promotes the other node only after. A server that is not
//! running has the Lease given back, so the operator need not wait.

pub mod deadline;
pub mod peer;
pub mod process;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};

use crate::accounts::{ADMIN_PASSWORD_ENV, ADMIN_USER};
use crate::lease::WriterLease;
use crate::mysql::{ConnectOptions, Endpoint, MySqlClient, Password, Server};
use deadline::{Look, Process, Verdict};

/// Port the agents answer confirmations on.
pub const AGENT_PORT: u16 = 3380;
/// The marker (in the run directory, which outlives a restart of the
/// agent's container) saying this pod held the Lease: an agent restarted
/// while cut off still fences its server.
const HOLDER_MARK: &str = "agent.holder";

/// Settings of `mysql-aa-operator agent` (from the pod's environment; the
/// admin password only from `MYSQLAA_ADMIN_PASSWORD`, never an argument).
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// This pod and its pair's writer Lease.
    #[command(flatten)]
    pub at: crate::lease::PodLease,
    /// The server's port on this pod.
    #[arg(long, default_value_t = 3306)]
    pub mysql_port: u16,
    /// The server's run directory (pid file).
    #[arg(long, default_value = crate::render::mycnf::RUN_DIR)]
    pub run_dir: PathBuf,
    /// The pid file's name in the run directory.
    #[arg(long, default_value = "mysqld.pid")]
    pub pid_file: String,
    /// Port to answer confirmations on (and to ask the peer's on).
    #[arg(long, default_value_t = AGENT_PORT)]
    pub port: u16,
    /// Give copies of this server's data to a peer that lost its own
    /// (MariaDB: the agent then runs in the server's image, beside
    /// `mariadb-backup`, with the data volume mounted).
    #[arg(long, env = "MYSQL_AA_SEED_DONOR", default_value_t = false)]
    pub seed_donor: bool,
    /// The server's data directory (for the copies).
    #[arg(long, default_value = crate::render::mycnf::DATA_DIR)]
    pub data_dir: PathBuf,
    /// A private scratch directory (for the copies).
    #[arg(long, default_value = "/tmp/mysql-aa-seed")]
    pub scratch: PathBuf,
}

/// What one agent keeps between looks.
struct State {
    holder: bool,
    duration: Duration,
    valid_until: Option<Instant>,
    fenced: bool,
    last: WriterLease,
}

/// Runs the agent until the process is stopped.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    crate::controller::init_logging(crate::controller::LogFormat::Text);
    let password = std::env::var(ADMIN_PASSWORD_ENV)
        .with_context(|| format!("{ADMIN_PASSWORD_ENV} is not set"))?;
    let mut opts = ConnectOptions::new(
        Endpoint {
            host: "127.0.0.1".into(),
            port: settings.mysql_port,
        },
        ADMIN_USER,
        Password::new(password.clone()),
    );
    opts.connect_timeout = Duration::from_millis(800);
    opts.statement_timeout = Duration::from_millis(800);
    let server = Arc::new(MySqlClient::new(opts));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.port))
        .await
        .with_context(|| format!("binding the agent port {}", settings.port))?;
    let writer_until: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let seed = settings.seed_donor.then(|| {
        Arc::new(crate::reseed::stream::DonorSide {
            donor: crate::reseed::mariadb::Donor {
                program: "mariadb-backup".into(),
                datadir: settings.data_dir.clone(),
                host: "127.0.0.1".into(),
                port: settings.mysql_port,
                user: ADMIN_USER.into(),
                password: Password::new(password.clone()),
                scratch: settings.scratch.clone(),
            },
            password: Password::new(password.clone()),
            writer_until: writer_until.clone(),
            donation: Arc::default(),
        })
    });
    tokio::spawn(peer::serve(listener, server.clone(), seed));
    let client = crate::apiclient::client(crate::apiclient::Use::Requests).await?;
    let leases: Api<Lease> = Api::namespaced(client, &settings.at.namespace);
    let mark = settings.run_dir.join(HOLDER_MARK);
    let mut state = State {
        holder: mark.exists(),
        duration: Duration::from_secs(5),
        valid_until: None,
        fenced: false,
        last: WriterLease::default(),
    };
    tracing::info!(pod = %settings.at.pod, lease = %settings.at.lease, holder = state.holder, "agent started");
    loop {
        let period = deadline::period(state.duration);
        let started = Instant::now();
        // A look blocked on an unreachable API server or peer never holds
        // the fence back: at the validity's end it is cut short.
        let until = state.valid_until.filter(|_| state.holder && !state.fenced);
        let looked = look(&settings, &leases, &server, &mut state);
        let cut_short = match until {
            Some(v) => tokio::time::timeout_at(v.into(), looked).await.is_err(),
            None => {
                looked.await;
                false
            }
        };
        if cut_short {
            fence_now(&settings, &mut state);
        }
        if let Ok(mut w) = writer_until.lock() {
            *w = state.valid_until.filter(|_| state.holder && !state.fenced);
        }
        if state.holder {
            let _ = std::fs::write(&mark, b"");
        } else {
            let _ = std::fs::remove_file(&mark);
        }
        tokio::time::sleep(period.saturating_sub(started.elapsed())).await;
    }
}

/// Fences the server at once (the validity ran out during a look).
fn fence_now(settings: &Settings, state: &mut State) {
    if let Some(pid) = process::server_pid(&settings.run_dir, &settings.pid_file) {
        match process::kill(pid) {
            Ok(()) => tracing::warn!(
                pid,
                "writer Lease neither renewed nor confirmed in time: server fenced (SIGKILL)"
            ),
            Err(e) => {
                tracing::error!(pid, error = %e, "fencing the server failed");
                return;
            }
        }
    }
    state.fenced = true;
}

/// The local server's process.
async fn process(settings: &Settings, server: &MySqlClient) -> Process {
    if process::server_pid(&settings.run_dir, &settings.pid_file).is_none() {
        return Process::Gone;
    }
    // Once more on a fresh connection: the operator's fence (a switchover)
    // ends client connections, this agent's pooled one too, and a server
    // that answers must not be taken for a silent one (a holder with
    // nothing valid yet would be fenced at once).
    for _ in 0..2 {
        if server.detect().await.is_ok() {
            return Process::Answering;
        }
    }
    Process::Silent
}

/// Reads the Lease into `state` (who holds it, its duration, the peers'
/// addresses); `None` when it could not be read.
async fn read(
    settings: &Settings,
    leases: &Api<Lease>,
    state: &mut State,
    limit: Duration,
) -> Option<Lease> {
    let l = tokio::time::timeout(limit, leases.get(&settings.at.lease))
        .await
        .ok()?
        .ok()?;
    let w = WriterLease::of(&l);
    let holder = w.holder.as_deref() == Some(settings.at.pod.as_str());
    if holder && !state.holder {
        tracing::info!(epoch = w.epoch, "writer Lease handed to this pod");
        state.valid_until = None;
        state.fenced = false;
    }
    state.holder = holder;
    if w.duration_seconds > 0 {
        state.duration = Duration::from_secs(w.duration_seconds.into());
    }
    state.last = w;
    Some(l)
}

/// Why a renewal failed.
#[derive(Debug)]
enum Renewal {
    /// The Lease changed since it was read (409).
    Conflict,
    /// Anything else: unreachable, refused, not held.
    Failed(String),
}

impl std::fmt::Display for Renewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Renewal::Conflict => f.write_str("the Lease changed since it was read"),
            Renewal::Failed(why) => f.write_str(why),
        }
    }
}

/// One look: read the Lease, renew or ask the peer, then act on the
/// verdict.
async fn look(settings: &Settings, leases: &Api<Lease>, server: &MySqlClient, state: &mut State) {
    let limit = deadline::period(state.duration).max(Duration::from_millis(500));
    let lease = read(settings, leases, state, limit).await;
    if !state.holder {
        state.valid_until = None;
        state.fenced = false;
        return;
    }
    let proc_state = process(settings, server).await;
    if proc_state == Process::Answering {
        let sent = Instant::now();
        let mut renewed = renew(leases, lease, &settings.at.pod, limit).await;
        if let Err(Renewal::Conflict) = renewed {
            // The operator wrote the Lease meanwhile. Handed on: this node
            // is deposed by an operator that reaches the API server and
            // fences it itself, nothing to fence here. Handed again to
            // this node (new addresses): renew that.
            let fresh = read(settings, leases, state, limit).await;
            if !state.holder {
                return;
            }
            renewed = renew(leases, fresh, &settings.at.pod, limit).await;
        }
        match renewed {
            Ok(()) => {
                state.valid_until = Some(deadline::renewed_until(sent, state.duration));
                state.fenced = false;
            }
            Err(why) => {
                let confirmed = match state.last.peer_address(&settings.at.pod) {
                    Some(peer) => {
                        peer::ask(
                            peer,
                            settings.port,
                            &settings.at.pod,
                            Duration::from_millis(400),
                        )
                        .await
                    }
                    None => Err("no peer address in the Lease".into()),
                };
                match confirmed {
                    Ok(()) => {
                        let until = deadline::confirmed_until(sent);
                        state.valid_until = Some(state.valid_until.map_or(until, |v| v.max(until)));
                        tracing::debug!(%why, "renewal failed; the peer confirmed");
                    }
                    Err(no) => {
                        tracing::warn!(renewal = %why, peer = %no, "writer Lease neither renewed nor confirmed")
                    }
                }
            }
        }
    }
    let look = Look {
        holder: state.holder,
        process: proc_state,
        valid_until: state.valid_until,
        fenced: state.fenced,
        now: Instant::now(),
    };
    match deadline::verdict(&look) {
        Verdict::Idle | Verdict::Hold => {}
        Verdict::Fence => fence_now(settings, state),
        Verdict::Release => {
            if release(leases, &settings.at.lease, &settings.at.pod, limit)
                .await
                .is_ok()
            {
                tracing::info!("server not running: writer Lease given back");
                state.holder = false;
                state.valid_until = None;
            }
        }
    }
}

/// Renews `lease` (as read this look) if it still names `me`: a replace
/// at its resourceVersion, so a Lease the operator handed on meanwhile is
/// never renewed.
async fn renew(
    leases: &Api<Lease>,
    lease: Option<Lease>,
    me: &str,
    limit: Duration,
) -> Result<(), Renewal> {
    let mut lease = lease.ok_or(Renewal::Failed("the Lease could not be read".into()))?;
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(me) {
        return Err(Renewal::Failed("the Lease names another pod".into()));
    }
    spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
    let name = lease.metadata.name.clone().unwrap_or_default();
    match tokio::time::timeout(limit, leases.replace(&name, &PostParams::default(), &lease)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(s))) if s.code == 409 => Err(Renewal::Conflict),
        Ok(Err(e)) => Err(Renewal::Failed(e.to_string())),
        Err(_) => Err(Renewal::Failed(
            "the API server did not answer in time".into(),
        )),
    }
}

/// Gives the Lease back (empty holder) if it still names `me`.
async fn release(leases: &Api<Lease>, name: &str, me: &str, limit: Duration) -> Result<(), String> {
    let work = async {
        let mut lease = leases.get(name).await.map_err(|e| e.to_string())?;
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(me) {
            return Ok(());
        }
        spec.holder_identity = None;
        leases
            .replace(name, &PostParams::default(), &lease)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err("the API server did not answer in time".into()))
}
