//! The Kubernetes half: `mysql-aa-operator run`.
//!
//! One kube-runtime Controller for `MySQLActiveActive` (per watched
//! namespace, or one over all) that owns the ConfigMap, StatefulSet,
//! Services and PodDisruptionBudget, and also watches the pairs' pods.
//! Secrets are not watched (least privilege: no list/watch of Secrets); a
//! deleted generated Secret is recreated at the next timed observation. Each reconcile runs the pipeline in
//! [`reconcile`] and then the pair loop in [`pairloop`]; MySQL state is
//! invisible to watches, so every pair is also requeued on a timer
//! (`--observe-interval-seconds`). Leader election on a Lease keeps two
//! operator replicas from acting at once.

pub mod divergence;
pub mod error;
pub mod events;
pub mod metrics;
pub mod pairloop;
pub mod reconcile;
pub mod status;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Event, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};

use crate::api::MySQLActiveActive;
use crate::mysql::MySqlClient;
use crate::render::meta::{LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER as MANAGED_BY};

pub use pairloop::AddressMode;

/// Field manager of every write, and the Event reporter.
pub const MANAGER: &str = "mysql-aa-operator";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    /// How the operator and replication channels address the pods: `dns`
    /// (stable names under the headless Service) or `pod-ip` (no cluster DNS).
    #[arg(long, env = "MYSQL_AA_ADDRESS_MODE", value_enum, default_value = "dns")]
    pub address_mode: AddressMode,
    /// Seconds between observations of each pair (MySQL changes are
    /// invisible to Kubernetes watches).
    #[arg(long, env = "MYSQL_AA_OBSERVE_INTERVAL_SECONDS", default_value_t = 5)]
    pub observe_interval_seconds: u64,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "MYSQL_AA_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: String,
    /// Log format.
    #[arg(long, env = "MYSQL_AA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Take a Lease before acting, so that only one replica acts.
    #[arg(long, env = "MYSQL_AA_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "mysql-aa-operator")]
    pub lease_name: String,
    /// Watch only these namespaces (repeat the flag, or separate with
    /// commas); default: all namespaces. With a list, the operator needs
    /// permissions in those namespaces only (the Helm chart's namespaced
    /// mode grants exactly that).
    #[arg(long = "namespace", env = "MYSQL_AA_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Seconds to wait for a connection to a server.
    #[arg(long, default_value_t = 3)]
    pub connect_timeout_seconds: u64,
    /// Seconds any one statement may take.
    #[arg(long, default_value_t = 10)]
    pub statement_timeout_seconds: u64,
    /// Runtime copies of the timeouts.
    #[arg(skip = Duration::from_secs(3))]
    pub connect_timeout: Duration,
    /// Runtime copies of the timeouts.
    #[arg(skip = Duration::from_secs(10))]
    pub statement_timeout: Duration,
}

impl Settings {
    /// The observe interval.
    pub fn observe_interval(&self) -> Duration {
        Duration::from_secs(self.observe_interval_seconds.max(1))
    }
}

/// State shared by reconciles.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Event recorder.
    pub recorder: Recorder,
    /// One seam client per node (keyed by pair, ordinal and address).
    pub clients: Mutex<HashMap<String, Arc<MySqlClient>>>,
    /// Consecutive failures per pair, for back-off.
    pub failures: Mutex<HashMap<String, u32>>,
    /// When each pair's writer was first seen unreachable (the failover
    /// detection window).
    pub writer_down_since: Mutex<HashMap<String, std::time::Instant>>,
}

impl Context {
    /// Publishes an Event; a failure to publish is logged, never fatal.
    pub async fn publish(&self, event: Event, reference: &ObjectReference) {
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!(reason = %event.reason, error = %e, "could not publish an Event");
        }
    }
}

/// An Api over `ns`, or all namespaces.
fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Runs the operator until SIGTERM/SIGINT (Ok) or lost leadership (Err).
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    init_logging(settings.log_format);
    settings.connect_timeout = Duration::from_secs(settings.connect_timeout_seconds);
    settings.statement_timeout = Duration::from_secs(settings.statement_timeout_seconds);
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    // One controller per watched namespace (or one over all of them).
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    for ns in &scopes {
        let pairs = scoped::<MySQLActiveActive>(&client, ns.as_deref());
        if let Err(e) = pairs.list(&ListParams::default().limit(1)).await {
            match e {
                kube::Error::Api(s) if s.code == 404 => bail!(
                    "the MySQLActiveActive CRD is not installed: kubectl apply -f crds/mysqlactiveactives.mysql-aa.io.yaml"
                ),
                other => {
                    return Err(other).context(format!(
                        "listing MySQLActiveActive resources in {}",
                        ns.as_deref().unwrap_or("all namespaces")
                    ));
                }
            }
        }
    }
    let metrics = Arc::new(metrics::Metrics::default());
    let listener = tokio::net::TcpListener::bind(&settings.metrics_address)
        .await
        .with_context(|| format!("binding the metrics address {}", settings.metrics_address))?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    tokio::spawn(metrics::serve(listener, metrics.clone()));

    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let _lease = if settings.leader_election {
        let manager =
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &settings.lease_name)
                .with_namespace(&settings.lease_namespace)
                .with_duration(15)
                .with_grace(5)
                .build()
                .await
                .context("creating the leader-election Lease manager")?;
        let (mut leading, task) = manager.watch().await;
        tracing::info!(lease = %settings.lease_name, "waiting for leadership");
        while !*leading.borrow_and_update() {
            leading.changed().await.context("leader election stopped")?;
        }
        tracing::info!("leading");
        tokio::spawn(async move {
            while leading.changed().await.is_ok() {
                if !*leading.borrow_and_update() {
                    break;
                }
            }
            tracing::error!("lost leadership: stopping");
            let _ = lost_tx.send(());
        });
        Some(task)
    } else {
        drop(lost_tx);
        None
    };

    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        settings: settings.clone(),
        metrics: metrics.clone(),
        clients: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        writer_down_since: Mutex::new(HashMap::new()),
    });
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    {
        let (lost, stop_tx) = (lost.clone(), stop_tx.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown_signal() => tracing::info!("shutting down"),
                r = lost_rx => if r.is_ok() { lost.store(true, Ordering::SeqCst) },
            }
            let _ = stop_tx.send(());
        });
    }
    let mut runs = Vec::new();
    let mut stores = Vec::new();
    for ns in &scopes {
        let ns = ns.as_deref();
        let ours = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
        let mut stop = stop_tx.subscribe();
        let controller = Controller::new(
            scoped::<MySQLActiveActive>(&client, ns),
            watcher::Config::default(),
        )
        .owns(scoped::<StatefulSet>(&client, ns), ours.clone())
        .owns(scoped::<ConfigMap>(&client, ns), ours.clone())
        .owns(scoped::<Service>(&client, ns), ours.clone())
        .owns(scoped::<PodDisruptionBudget>(&client, ns), ours.clone())
        .watches(scoped::<Pod>(&client, ns), ours, |pod: Pod| {
            let ns = pod.namespace()?;
            let pair = pod.labels().get(LABEL_INSTANCE)?.clone();
            Some(ObjectRef::<MySQLActiveActive>::new(&pair).within(&ns))
        })
        .graceful_shutdown_on(async move {
            let _ = stop.recv().await;
        });
        stores.push(controller.store());
        runs.push(
            controller
                .run(reconcile::reconcile, reconcile::error_policy, ctx.clone())
                .for_each(|result| async move {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "reconcile error");
                    }
                }),
        );
    }
    let ready_metrics = metrics.clone();
    tokio::spawn(async move {
        // Re-poll: the store's readiness does not always wake its waiter
        // (seen with kube-runtime 5.0), but a new poll sees it at once.
        for store in stores {
            loop {
                match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready())
                    .await
                {
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return,
                    Err(_) => continue,
                }
            }
        }
        ready_metrics.ready.store(true, Ordering::SeqCst);
        tracing::info!("caches synced: ready");
    });
    futures::future::join_all(runs).await;
    if lost.load(Ordering::SeqCst) {
        bail!("lost the leader-election Lease");
    }
    Ok(())
}
