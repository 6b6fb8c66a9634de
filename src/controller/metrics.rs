//! Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::gauges::{CONDITIONS, DURABILITIES, PairGauges};

/// Labels of per-node metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    /// Namespace of the pair.
    pub namespace: String,
    /// Name of the pair.
    pub pair: String,
    /// Pod name.
    pub node: String,
}

/// Labels of counters by outcome or step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Result, error label or step name.
    pub kind: String,
}

/// Labels of per-pair metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PairLabels {
    /// Namespace of the pair.
    pub namespace: String,
    /// Name of the pair.
    pub pair: String,
}

/// Labels of per-pair counters by outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PairKindLabels {
    /// Namespace of the pair.
    pub namespace: String,
    /// Name of the pair.
    pub pair: String,
    /// Result or outcome.
    pub kind: String,
}

/// Labels of `mysqlaa_pair_condition`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    /// Namespace of the pair.
    pub namespace: String,
    /// Name of the pair.
    pub pair: String,
    /// Condition type (`Ready`, `Lagging`, ...).
    pub condition: String,
}

/// Labels of `mysqlaa_pair_durability`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurabilityLabels {
    /// Namespace of the pair.
    pub namespace: String,
    /// Name of the pair.
    pub pair: String,
    /// An effective durability (`SemiSynchronous`, ...).
    pub durability: String,
}

fn role_change_histogram() -> Histogram {
    Histogram::new([0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0])
}

/// Every metric of the operator.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result (`ok` or an error label).
    pub reconciles: Family<KindLabels, Counter>,
    /// Reconcile duration.
    pub reconcile_seconds: Histogram,
    /// Steps executed, by step name.
    pub steps: Family<KindLabels, Counter>,
    /// Seconds behind the source (-1: unknown).
    pub lag_seconds: Family<NodeLabels, Gauge>,
    /// Receiver thread running (1) or not (0).
    pub io_running: Family<NodeLabels, Gauge>,
    /// Applier thread running (1) or not (0).
    pub sql_running: Family<NodeLabels, Gauge>,
    /// Applier halted on an error (1) or not (0).
    pub applier_halted: Family<NodeLabels, Gauge>,
    /// Transactions skipped under SkipAndRecord.
    pub skipped_transactions: Family<NodeLabels, Counter>,
    /// Automatic failovers per pair, by result (`promoted`).
    pub failovers: Family<PairKindLabels, Counter>,
    /// Duration of writer role changes (failovers from first detection,
    /// switchovers from the fence), by kind (`failover`, `switchover`).
    pub role_change_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// Switchover requests, by outcome (`Succeeded`, `Refused`, `Failed`).
    pub switchovers: Family<KindLabels, Counter>,
    /// Tables found diverged by the last divergence check of a pair.
    pub diverged_tables: Family<PairLabels, Gauge>,
    /// Cycles of the pair loops, by what woke them (`tick`, `nudge`,
    /// `retry`).
    pub loop_cycles: Family<KindLabels, Counter>,
    /// Status writes, by why (`changed`: something other than GTID positions
    /// and small lag moves; `refresh`: positions only, at most once a
    /// minute).
    pub status_writes: Family<KindLabels, Counter>,
    /// Re-seeds, by result (`started`, `finished`, `failed`).
    pub seeds: Family<KindLabels, Counter>,
    /// Duration of finished re-seeds, from the start of the copy until the
    /// node replicates again.
    pub seed_seconds: Histogram,
    /// Per pair and condition type: 1 True, 0 False, -1 Unknown.
    pub pair_condition: Family<ConditionLabels, Gauge>,
    /// Nodes observed reachable and writable (`read_only` off).
    pub writable_nodes: Family<PairLabels, Gauge>,
    /// Nodes allowed to take writes (1 SingleWriter, 2 MultiWriter).
    pub writers_allowed: Family<PairLabels, Gauge>,
    /// The effective durability as a state set (1 on the current one).
    pub durability: Family<DurabilityLabels, Gauge>,
    /// Node holds errant transactions (1) or not (0).
    pub errant: Family<NodeLabels, Gauge>,
    /// Node is the writer (1) or not (0), as status says.
    pub writer: Family<NodeLabels, Gauge>,
    /// The pair's `spec.replication.lagThresholdSeconds`.
    pub lag_threshold: Family<PairLabels, Gauge>,
    /// Unix time of the pair's last completed observation.
    pub last_observed: Family<PairLabels, Gauge>,
    /// Set once the controller's cache is synced.
    pub ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mysqlaa");
        let m = Self {
            reconciles: Family::default(),
            reconcile_seconds: Histogram::new([
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            steps: Family::default(),
            lag_seconds: Family::default(),
            io_running: Family::default(),
            sql_running: Family::default(),
            applier_halted: Family::default(),
            skipped_transactions: Family::default(),
            failovers: Family::default(),
            role_change_seconds: Family::new_with_constructor(
                role_change_histogram as fn() -> Histogram,
            ),
            switchovers: Family::default(),
            diverged_tables: Family::default(),
            loop_cycles: Family::default(),
            status_writes: Family::default(),
            seeds: Family::default(),
            seed_seconds: Histogram::new([
                5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
            ]),
            pair_condition: Family::default(),
            writable_nodes: Family::default(),
            writers_allowed: Family::default(),
            durability: Family::default(),
            errant: Family::default(),
            writer: Family::default(),
            lag_threshold: Family::default(),
            last_observed: Family::default(),
            ready: AtomicBool::new(false),
            registry: Registry::default(),
        };
        registry.register("reconciles", "Reconciles by result", m.reconciles.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            m.reconcile_seconds.clone(),
        );
        registry.register("steps", "Steps executed against the pairs", m.steps.clone());
        registry.register(
            "replication_lag_seconds",
            "Seconds behind the source (-1 unknown)",
            m.lag_seconds.clone(),
        );
        registry.register(
            "replication_io_running",
            "Receiver thread running",
            m.io_running.clone(),
        );
        registry.register(
            "replication_sql_running",
            "Applier thread running",
            m.sql_running.clone(),
        );
        registry.register(
            "applier_halted",
            "Applier stopped on an error",
            m.applier_halted.clone(),
        );
        registry.register(
            "skipped_transactions",
            "Transactions skipped under SkipAndRecord",
            m.skipped_transactions.clone(),
        );
        registry.register(
            "failovers",
            "Automatic failovers per pair",
            m.failovers.clone(),
        );
        registry.register(
            "role_change_duration_seconds",
            "Duration of writer role changes",
            m.role_change_seconds.clone(),
        );
        registry.register(
            "switchovers",
            "Switchover requests by outcome",
            m.switchovers.clone(),
        );
        registry.register(
            "diverged_tables",
            "Tables found diverged by the last divergence check",
            m.diverged_tables.clone(),
        );
        registry.register(
            "pair_loop_cycles",
            "Pair loop cycles by what woke them",
            m.loop_cycles.clone(),
        );
        registry.register(
            "status_writes",
            "Status writes by why",
            m.status_writes.clone(),
        );
        registry.register("seeds", "Re-seeds by result", m.seeds.clone());
        registry.register(
            "seed_duration_seconds",
            "Duration of finished re-seeds",
            m.seed_seconds.clone(),
        );
        registry.register(
            "pair_condition",
            "Condition of the pair: 1 True, 0 False, -1 Unknown",
            m.pair_condition.clone(),
        );
        registry.register(
            "pair_writable_nodes",
            "Nodes observed reachable with read_only off",
            m.writable_nodes.clone(),
        );
        registry.register(
            "pair_writers_allowed",
            "Nodes allowed to take writes (1 SingleWriter, 2 MultiWriter)",
            m.writers_allowed.clone(),
        );
        registry.register(
            "pair_durability",
            "Effective durability of the writer's commits (1 on the current one)",
            m.durability.clone(),
        );
        registry.register(
            "errant_transactions",
            "Node holds transactions the writer does not have",
            m.errant.clone(),
        );
        registry.register(
            "node_writer",
            "Node is the writer, as status says",
            m.writer.clone(),
        );
        registry.register(
            "replication_lag_threshold_seconds",
            "The pair's spec.replication.lagThresholdSeconds",
            m.lag_threshold.clone(),
        );
        registry.register(
            "pair_last_observed_timestamp_seconds",
            "Unix time of the pair's last completed observation",
            m.last_observed.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Counts one under `kind` in `family`.
    pub fn count(family: &Family<KindLabels, Counter>, kind: &str) {
        family
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    /// Counts a failover of a pair under `kind`.
    pub fn count_failover(&self, namespace: &str, pair: &str, kind: &str) {
        self.failovers
            .get_or_create(&PairKindLabels {
                namespace: namespace.into(),
                pair: pair.into(),
                kind: kind.into(),
            })
            .inc();
    }

    /// Sets the per-pair gauges of `g`, observed at `now` (Unix seconds).
    pub fn record_pair(&self, namespace: &str, pair: &str, g: &PairGauges, now: i64) {
        let p = PairLabels {
            namespace: namespace.into(),
            pair: pair.into(),
        };
        for (condition, v) in &g.conditions {
            self.pair_condition
                .get_or_create(&ConditionLabels {
                    namespace: namespace.into(),
                    pair: pair.into(),
                    condition: (*condition).into(),
                })
                .set(*v);
        }
        self.writable_nodes.get_or_create(&p).set(g.writable_nodes);
        self.writers_allowed
            .get_or_create(&p)
            .set(g.writers_allowed);
        self.lag_threshold
            .get_or_create(&p)
            .set(g.lag_threshold_seconds);
        for d in DURABILITIES {
            self.durability
                .get_or_create(&DurabilityLabels {
                    namespace: namespace.into(),
                    pair: pair.into(),
                    durability: d.to_string(),
                })
                .set(i64::from(g.durability == Some(d)));
        }
        for n in &g.nodes {
            let labels = NodeLabels {
                namespace: namespace.into(),
                pair: pair.into(),
                node: n.name.clone(),
            };
            self.errant.get_or_create(&labels).set(i64::from(n.errant));
            self.writer.get_or_create(&labels).set(i64::from(n.writer));
        }
        self.last_observed.get_or_create(&p).set(now);
        // The failover counter exists from the first observation at 0, so
        // the first failover is an increase (a series born at 1 is not).
        let _ = self.failovers.get_or_create(&PairKindLabels {
            namespace: namespace.into(),
            pair: pair.into(),
            kind: "promoted".into(),
        });
    }

    /// Drops the series of a deleted pair.
    pub fn forget_pair(&self, namespace: &str, pair: &str) {
        for ordinal in 0..2 {
            let labels = NodeLabels {
                namespace: namespace.into(),
                pair: pair.into(),
                node: format!("{pair}-{ordinal}"),
            };
            self.lag_seconds.remove(&labels);
            self.io_running.remove(&labels);
            self.sql_running.remove(&labels);
            self.applier_halted.remove(&labels);
            self.skipped_transactions.remove(&labels);
            self.errant.remove(&labels);
            self.writer.remove(&labels);
        }
        let p = PairLabels {
            namespace: namespace.into(),
            pair: pair.into(),
        };
        for family in [
            &self.diverged_tables,
            &self.writable_nodes,
            &self.writers_allowed,
            &self.lag_threshold,
            &self.last_observed,
        ] {
            family.remove(&p);
        }
        for condition in CONDITIONS {
            self.pair_condition.remove(&ConditionLabels {
                namespace: namespace.into(),
                pair: pair.into(),
                condition: condition.into(),
            });
        }
        for d in DURABILITIES {
            self.durability.remove(&DurabilityLabels {
                namespace: namespace.into(),
                pair: pair.into(),
                durability: d.to_string(),
            });
        }
        // Failover counts stay: a counter that vanishes and comes back at
        // 0 would read as a reset, and a re-created pair keeps its history.
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    use axum::routing::get;
    let m1 = metrics.clone();
    let m2 = metrics.clone();
    let app = axum::Router::new()
        .route("/metrics", get(move || async move { m1.encode() }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if m2.ready.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, "ok")
                } else {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "caches not synced",
                    )
                }
            }),
        );
    let _ = axum::serve(listener, app).await;
}
