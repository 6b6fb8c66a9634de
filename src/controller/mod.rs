//! The Kubernetes half: `mysql-aa-operator run`.
//!
//! Per watched scope (a namespace, or all of them): reflectors over the
//! pairs, the objects they own and their pods feed one kube-runtime
//! Controller, whose reconcile ([`reconcile`]) runs named steps —
//! validate, credentials, build, apply — and hands the result to the
//! pair's loop ([`pairloop`]), which observes the servers, decides, acts
//! and writes status. Every read of a pair, an owned object or a pod is
//! answered by the stores ([`context::Stores`]). Leader election on a Lease
//! keeps two operator replicas from acting at once.

pub mod context;
pub mod divergence;
pub mod error;
pub mod events;
pub mod gauges;
pub mod leases;
pub mod metrics;
pub mod pairloop;
pub mod reconcile;
pub mod settings;
pub mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::MySQLActiveActive;
use crate::apiclient::{self, Use};
use crate::render::meta::{LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER as MANAGED_BY};

pub use settings::{AddressMode, LogFormat, Settings};

/// Field manager of every write, and the Event reporter.
pub const MANAGER: &str = "mysql-aa-operator";

/// Locks `m`, also after a panic elsewhere (the data stays usable: every
/// critical section here leaves it consistent).
pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// Installs the log subscriber (`RUST_LOG`, default `info,kube=warn`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn".into());
    // Colours only on a terminal (not in `kubectl logs` or a file).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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

/// What the rendered objects depend on: the generation (the spec), and
/// whether the pair was ever Ready (`status.initializedAt`, which the
/// ConfigMap carries): status writes otherwise do not wake the reconcile.
fn rendered_inputs(pair: &MySQLActiveActive) -> Option<u64> {
    let generation = predicates::generation(pair)?;
    let initialized = pair
        .status
        .as_ref()
        .is_some_and(|s| s.initialized_at.is_some());
    Some(generation.wrapping_mul(2) + u64::from(initialized))
}

/// Runs the operator until SIGTERM/SIGINT (Ok) or lost leadership (Err).
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    init_logging(settings.log_format);
    settings.connect_timeout = Duration::from_secs(settings.connect_timeout_seconds);
    settings.statement_timeout = Duration::from_secs(settings.statement_timeout_seconds);
    let client = apiclient::client(Use::Requests).await?;
    let watch_client = apiclient::client(Use::Watches).await?;
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
    let recorder = Recorder::new(client.clone(), reporter);
    let lost = Arc::new(AtomicBool::new(false));
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
    let mut contexts = Vec::new();
    for ns in &scopes {
        let ns = ns.as_deref();
        let ours = apiclient::watch_config().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
        let (pairs, pairs_writer) = reflector::store::<MySQLActiveActive>();
        // Status writes change the resourceVersion, not the generation: they
        // do not wake the reconcile (the pair loop writes status), except the
        // first Ready (the ConfigMap then says the pair has data).
        let pair_stream = watcher(
            scoped::<MySQLActiveActive>(&watch_client, ns),
            apiclient::watch_config(),
        )
        .default_backoff()
        .reflect(pairs_writer)
        .applied_objects();
        let pair_stream = without_errors::<MySQLActiveActive, _>(pair_stream)
            .predicate_filter(rendered_inputs, Default::default());
        let (statefulsets, sts_stream) = owned::<StatefulSet>(&watch_client, ns, &ours);
        let (config_maps, cm_stream) = owned::<ConfigMap>(&watch_client, ns, &ours);
        let (services, svc_stream) = owned::<Service>(&watch_client, ns, &ours);
        let (pdbs, pdb_stream) = owned::<PodDisruptionBudget>(&watch_client, ns, &ours);
        let (network_policies, np_stream) = owned::<NetworkPolicy>(&watch_client, ns, &ours);
        let (endpoint_slices, slice_stream) = owned::<EndpointSlice>(&watch_client, ns, &ours);
        let (pods, pod_stream) = owned::<Pod>(&watch_client, ns, &ours);
        let (service_accounts, sa_stream) = owned::<ServiceAccount>(&watch_client, ns, &ours);
        let (roles, role_stream) = owned::<Role>(&watch_client, ns, &ours);
        let (role_bindings, rb_stream) = owned::<RoleBinding>(&watch_client, ns, &ours);
        // Lease renewals only move the lease clock: no reconcile.
        let lease_clock = Arc::new(leases::LeaseClock::default());
        let (leases, lease_stream) = owned::<Lease>(&watch_client, ns, &ours);
        {
            let clock = lease_clock.clone();
            tokio::spawn(async move {
                futures::pin_mut!(lease_stream);
                while let Some(event) = lease_stream.next().await {
                    if let Ok(lease) = event {
                        clock.saw(&lease, std::time::Instant::now());
                    }
                }
            });
        }
        let stores = context::Stores {
            pairs: pairs.clone(),
            statefulsets,
            config_maps,
            services,
            pdbs,
            network_policies,
            endpoint_slices,
            pods,
            leases,
            service_accounts,
            roles,
            role_bindings,
        };
        let ctx = Arc::new(context::Context {
            client: client.clone(),
            events: context::Publisher::start(recorder.clone()),
            settings: settings.clone(),
            metrics: metrics.clone(),
            stores,
            synced: AtomicBool::new(false),
            loops: pairloop::Loops::default(),
            applied: reconcile::apply::AppliedMemo::default(),
            failures: Mutex::new(Default::default()),
            lease_clock,
        });
        contexts.push(ctx.clone());
        let mut stop = stop_tx.subscribe();
        // A pod's change (readiness, IP, deletion) reaches the pair loop at
        // once: the reconcile it triggers hands off, which wakes the loop.
        let controller = Controller::for_stream(pair_stream, pairs)
            .owns_stream(sts_stream)
            .owns_stream(cm_stream)
            .owns_stream(svc_stream)
            .owns_stream(pdb_stream)
            .owns_stream(np_stream)
            .owns_stream(slice_stream)
            .owns_stream(sa_stream)
            .owns_stream(role_stream)
            .owns_stream(rb_stream)
            .watches_stream(pod_stream, |pod: Pod| {
                let ns = pod.namespace()?;
                let pair = pod.labels().get(LABEL_INSTANCE)?.clone();
                Some(ObjectRef::<MySQLActiveActive>::new(&pair).within(&ns))
            })
            .graceful_shutdown_on(async move {
                let _ = stop.recv().await;
            });
        runs.push(
            controller
                .run(reconcile::reconcile, reconcile::error_policy, ctx)
                .for_each(|result| async move {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "reconcile error");
                    }
                }),
        );
    }
    let ready_metrics = metrics.clone();
    tokio::spawn(async move {
        for ctx in contexts {
            let s = &ctx.stores;
            wait_ready(&s.pairs).await;
            wait_ready(&s.statefulsets).await;
            wait_ready(&s.config_maps).await;
            wait_ready(&s.services).await;
            wait_ready(&s.pdbs).await;
            wait_ready(&s.network_policies).await;
            wait_ready(&s.endpoint_slices).await;
            wait_ready(&s.pods).await;
            wait_ready(&s.leases).await;
            wait_ready(&s.service_accounts).await;
            wait_ready(&s.roles).await;
            wait_ready(&s.role_bindings).await;
            ctx.synced.store(true, Ordering::SeqCst);
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

/// A reflector over the objects of kind `K` that carry the operator's
/// label, and the stream of their changes (deletions included: a deleted
/// owned object is recreated).
fn owned<K>(
    client: &Client,
    ns: Option<&str>,
    ours: &watcher::Config,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = watcher(scoped::<K>(client, ns), ours.clone())
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    (reader, without_errors::<K, _>(stream))
}

/// A watch's changes without its errors, each logged: the watch resumes
/// by itself with its own back-off. The controller must never see them:
/// it backs off all its watches together on any one's error (kube-runtime's
/// trigger back-off), so one failing watch would leave every store stale
/// (seen after kube-apiserver restarts: pods relabelled every cycle, a
/// switchover never seen).
fn without_errors<K, S>(stream: S) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Send,
    S: futures::Stream<Item = Result<K, watcher::Error>> + Send,
{
    stream.filter(|event| {
        if let Err(e) = event {
            tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed: resumed with back-off");
        }
        std::future::ready(event.is_ok())
    })
}

/// Waits until `store` has its first list. (Re-polled: a store's
/// readiness did not always wake its waiter with kube-runtime 5.0.)
async fn wait_ready<K>(store: &Store<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
            Ok(_) => return,
            Err(_) => continue,
        }
    }
}
