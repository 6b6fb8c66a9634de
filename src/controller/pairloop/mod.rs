//! The pair loop: one task per pair (the shape of MOCO's clustering
//! manager) that observes both servers, decides with
//! [`crate::topology::decide`], acts, and records status.
//!
//! The Kubernetes reconcile hands the loop what it should run on (a
//! [`Desired`]: the validated pair and its passwords, or why the pair is
//! blocked) through a `watch` channel: the latest hand-off wins, and each
//! one wakes the loop at once (a coalescing nudge). Otherwise the loop
//! wakes on its ticker (`--observe-interval-seconds`), [`SOON`] after it
//! acted, every [`WRITER_DOWN_POLL`] while the writer is unreachable, at
//! once when a ping of the writer between two observations fails
//! ([`HEARTBEAT`]), and after a step
//! failed with a back-off that never exceeds the interval. The loop owns the
//! pair's server clients, the writer-down timer, its back-off and its
//! divergence check (which runs beside it, never blocking a failover);
//! when the pair is deleted the loop ends and all of it is dropped.
//!
//! Steps of one cycle: `observe` → decide → `act` → `record`.

pub mod act;
pub mod epoch;
pub mod observe;
pub mod record;
pub mod route;
pub mod seed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::context::{Context, key};
use super::divergence;
use super::error::Error;
use super::events::Reason;
use super::locked;
use super::metrics::Metrics;
use super::status::{self, Outcome};
use crate::api::{DivergenceReport, MySQLActiveActive, MySQLActiveActiveStatus};
use crate::mysql::{AccountPasswords, MySqlClient, Server};
use crate::topology;

/// What the reconcile hands the pair loop.
#[derive(Clone)]
pub enum Desired {
    /// Observe and act on this pair (observe only while `spec.paused`).
    Run {
        /// The validated pair, as the reconcile saw it.
        pair: Arc<MySQLActiveActive>,
        /// The accounts' passwords.
        passwords: AccountPasswords,
    },
    /// The pair cannot run as specified: report it, change nothing.
    Blocked {
        /// The pair.
        pair: Arc<MySQLActiveActive>,
        /// Why (the Event reason and the Ready condition's reason).
        reason: Reason,
        /// What is wrong and what to do.
        message: String,
    },
}

impl Desired {
    /// The pair.
    pub fn pair(&self) -> &Arc<MySQLActiveActive> {
        match self {
            Desired::Run { pair, .. } | Desired::Blocked { pair, .. } => pair,
        }
    }

    /// Whether the loop may act: runnable, not paused.
    fn may_act(&self) -> bool {
        matches!(self, Desired::Run { pair, .. } if !pair.spec.paused)
    }
}

struct Handle {
    uid: String,
    tx: watch::Sender<Desired>,
    task: JoinHandle<()>,
}

/// The running pair loops, by pair key.
#[derive(Default)]
pub struct Loops {
    inner: Mutex<HashMap<String, Handle>>,
}

impl Loops {
    /// Hands `desired` to its pair's loop, starting the loop if there is
    /// none (or the pair was created again under the same name).
    pub fn hand_off(&self, ctx: &Arc<Context>, desired: Desired) {
        let pair = desired.pair().clone();
        let key = key(&pair);
        let uid = pair.uid().unwrap_or_default();
        let mut loops = locked(&self.inner);
        if let Some(h) = loops.get(&key)
            && h.uid == uid
            && !h.task.is_finished()
        {
            h.tx.send_replace(desired);
            return;
        }
        if let Some(old) = loops.remove(&key) {
            old.task.abort();
        }
        let (tx, rx) = watch::channel(desired);
        let span = tracing::info_span!(parent: None, "pair_loop", pair = %pair.name_any(), namespace = pair.namespace().unwrap_or_default());
        let task = tokio::spawn(run(ctx.clone(), key.clone(), uid.clone(), rx).instrument(span));
        loops.insert(key, Handle { uid, tx, task });
    }

    /// Stops the loop of `key` (the pair is being deleted).
    pub fn stop(&self, key: &str) {
        if let Some(h) = locked(&self.inner).remove(key) {
            h.task.abort();
        }
    }

    /// How many loops run.
    pub fn len(&self) -> usize {
        locked(&self.inner).len()
    }

    /// Whether no loop runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finished(&self, key: &str, uid: &str) {
        let mut loops = locked(&self.inner);
        if loops.get(key).is_some_and(|h| h.uid == uid) {
            loops.remove(key);
        }
    }
}

/// How soon the loop looks again after acting.
pub const SOON: Duration = Duration::from_millis(500);

/// How soon the loop looks again while the writer is unreachable: a server
/// restarted in place boots fenced and keeps the writer label, so from its
/// first answer to its first write is this long at most plus one unfence.
/// A dead server refuses a connection at once; a cut-off one costs an
/// observation timeout per cycle, which bounds the rate by itself.
pub const WRITER_DOWN_POLL: Duration = Duration::from_millis(200);

/// How often the loop pings the writer between two observations (SingleWriter,
/// healthy): a writer that stops answering starts a cycle at once and its
/// detection window counts from the failed ping, so a failover does not
/// wait for the next observe tick. A ping is one pooled query.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// Waits until a ping of `writer` fails; returns when that ping started.
/// Never returns without a writer. `in_flight` holds the start of the ping
/// under way, so that a cycle beginning before that ping has failed (the
/// ticker won the race: a hung writer takes a whole timeout to fail it)
/// still counts the writer unanswered since the ping was sent.
async fn writer_stops_answering(
    writer: Option<Arc<MySqlClient>>,
    in_flight: &std::sync::Mutex<Option<Instant>>,
) -> Instant {
    let Some(writer) = writer else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let started = Instant::now();
        *in_flight.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        match tokio::time::timeout(observe::OBSERVE_TIMEOUT, writer.detect()).await {
            Ok(Ok(_)) => *in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None,
            _ => return started,
        }
    }
}

/// Delay before the next cycle after `failures` failed cycles in a row:
/// 0.25 s, 0.5 s, 1 s, ... never more than the observe interval (a
/// promotion that failed in the middle of an outage is retried at least
/// that often). Pure.
pub fn retry_delay(failures: u32, interval: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (Duration::from_millis(250) * (1u32 << exp)).min(interval)
}

/// A loop's task: cycles until the pair is gone.
async fn run(ctx: Arc<Context>, key: String, uid: String, mut rx: watch::Receiver<Desired>) {
    let (ns, name) = key.split_once('/').unwrap_or_default();
    let (ns, name) = (ns.to_string(), name.to_string());
    let first = rx.borrow().pair().clone();
    let mut state = PairLoop::new(&first);
    let interval = ctx.settings.observe_interval();
    let mut wake = "nudge";
    tracing::info!("pair loop started");
    loop {
        match ctx.pair(&ns, &name) {
            Some(p)
                if p.uid().as_deref() == Some(uid.as_str())
                    && p.metadata.deletion_timestamp.is_none() => {}
            _ => break,
        }
        let desired = rx.borrow_and_update().clone();
        Metrics::count(&ctx.metrics.loop_cycles, wake);
        let generation = desired.pair().metadata.generation;
        let current = || {
            let d = rx.borrow();
            d.may_act() && d.pair().metadata.generation == generation
        };
        let delay = state.cycle(&ctx, &desired, &current).await;
        // Between two observations of a healthy pair, the writer is pinged.
        let heartbeat = state.writer_client.clone().filter(|_| delay >= interval);
        let in_flight = std::sync::Mutex::new(None);
        wake = tokio::select! {
            _ = tokio::time::sleep(delay) => if delay < interval { "retry" } else { "tick" },
            failed = writer_stops_answering(heartbeat, &in_flight) => {
                *in_flight.lock().unwrap_or_else(|e| e.into_inner()) = Some(failed);
                "heartbeat"
            }
            changed = rx.changed() => match changed {
                Ok(()) => "nudge",
                Err(_) => break,
            },
        };
        // A ping failed, or is still unanswered: if this cycle finds the
        // writer unreachable, its window counts from that ping.
        state.heartbeat_failed_at = *in_flight.lock().unwrap_or_else(|e| e.into_inner());
    }
    tracing::info!("pair loop ended: the pair is gone");
    if let Some(d) = state.divergence.take() {
        d.abort();
    }
    ctx.forget(&key);
    ctx.loops.finished(&key, &uid);
}

/// What one pair's loop keeps between cycles.
struct PairLoop {
    /// The pair's status as this loop knows it (it is status's only writer).
    status: MySQLActiveActiveStatus,
    /// What the API server holds (the last write), and when it was written.
    written: Value,
    written_at: Instant,
    clients: observe::Clients,
    writer_down_since: Option<Instant>,
    /// Since when the writer's commits have had no acknowledgement
    /// (`SemiSync`), and what the last look saw.
    acks_missing_since: Option<Instant>,
    last_acknowledged: Option<observe::AckLook>,
    /// The writer's client, pinged between observations (SingleWriter).
    writer_client: Option<Arc<MySqlClient>>,
    /// When a ping of the writer started that failed, or that had not been
    /// answered when the cycle began.
    heartbeat_failed_at: Option<Instant>,
    failures: u32,
    divergence: Option<JoinHandle<DivergenceReport>>,
    /// Re-seeds running beside the loop.
    seeds: seed::Seeds,
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

impl PairLoop {
    fn new(pair: &MySQLActiveActive) -> Self {
        let status = pair.status.clone().unwrap_or_default();
        let mut written = serde_json::to_value(&status).unwrap_or(Value::Null);
        // Written on the first record whatever it is: the epoch claims
        // compare against it, so it must exist in the stored status (a
        // status written by an older version has none).
        if let Some(m) = written.as_object_mut() {
            m.remove("writerEpoch");
        }
        Self {
            written,
            status,
            written_at: Instant::now(),
            clients: observe::Clients::default(),
            writer_down_since: None,
            acks_missing_since: None,
            last_acknowledged: None,
            writer_client: None,
            heartbeat_failed_at: None,
            failures: 0,
            divergence: None,
            seeds: seed::Seeds::default(),
        }
    }

    /// One cycle; returns the delay before the next.
    async fn cycle(
        &mut self,
        ctx: &Context,
        desired: &Desired,
        current: &(dyn Fn() -> bool + Sync),
    ) -> Duration {
        let interval = ctx.settings.observe_interval();
        match self.run_cycle(ctx, desired, current).await {
            Ok(next) => {
                self.failures = 0;
                next.min(interval)
            }
            Err(e) => {
                self.failures += 1;
                let delay = retry_delay(self.failures, interval);
                tracing::warn!(error = %e, retry_in = ?delay, "cycle failed");
                delay
            }
        }
    }

    /// Whether the writer is unreachable, and whether it has been for the
    /// detection window.
    /// `looked`: when the observation started (the writer has not
    /// answered since then).
    fn detection(
        &mut self,
        pair: &MySQLActiveActive,
        observed: &observe::Observed,
        looked: Instant,
    ) -> (bool, bool) {
        let window = Duration::from_secs(u64::from(pair.spec.failover.detection_window_seconds));
        let down = observe::current_writer(pair)
            .is_some_and(|w| !observed.facts[w as usize % 2].reachable());
        let failed_ping = self.heartbeat_failed_at.take();
        if !down {
            self.writer_down_since = None;
            return (false, false);
        }
        let since = *self
            .writer_down_since
            .get_or_insert(failed_ping.map_or(looked, |p| p.min(looked)));
        (true, since.elapsed() >= window)
    }

    /// `SemiSync`: whether the writer's commits have had no acknowledgement
    /// for the detection window ([`observe::unacknowledged_since`]).
    fn acks_missing(
        &mut self,
        pair: &MySQLActiveActive,
        observed: &observe::Observed,
        looked: Instant,
    ) -> bool {
        let window = Duration::from_secs(u64::from(pair.spec.failover.detection_window_seconds));
        let semi = observe::current_writer(pair)
            .and_then(|w| observed.facts[w as usize % 2].server.as_ref().ok())
            .and_then(|o| o.semi_sync)
            .filter(|_| pair.spec.durability() == crate::api::DurabilityMode::SemiSync);
        let previous = self.last_acknowledged;
        let this = semi.map(|s| observe::AckLook {
            at: looked,
            acknowledged: s.acknowledged,
            waiting: s.waiting_sessions > 0,
        });
        self.last_acknowledged = this;
        let Some(from) = semi
            .zip(this)
            .and_then(|(s, this)| observe::unacknowledged_since(previous, this, &s))
        else {
            self.acks_missing_since = None;
            return false;
        };
        let since = *self.acks_missing_since.get_or_insert(from);
        since.elapsed() >= window
    }

    async fn run_cycle(
        &mut self,
        ctx: &Context,
        desired: &Desired,
        current: &(dyn Fn() -> bool + Sync),
    ) -> Result<Duration, Error> {
        let interval = ctx.settings.observe_interval();
        let mut pair = (**desired.pair()).clone();
        pair.status = Some(self.status.clone());
        let (passwords, paused) = match desired {
            Desired::Blocked {
                reason, message, ..
            } => {
                let was = self
                    .status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.reason.clone());
                if was.as_deref() != Some(reason.as_str()) {
                    ctx.publish(&pair, *reason, message.clone()).await;
                }
                let outcome = Outcome {
                    blocked: Some((reason.as_str().into(), message.clone())),
                    ..Default::default()
                };
                let new = status::build(&pair, None, None, &outcome, now());
                self.record(ctx, &pair, new).await?;
                return Ok(interval);
            }
            Desired::Run { passwords, pair: p } => (passwords, p.spec.paused),
        };
        let looked = Instant::now();
        let window = Duration::from_secs(u64::from(pair.spec.failover.detection_window_seconds));
        let writer_window_end = self.writer_down_since.map(|s| s + window);
        let observed =
            observe::observe(&pair, ctx, &mut self.clients, passwords, writer_window_end).await;
        let (writer_down, long_enough) = self.detection(&pair, &observed, looked);
        let acks_missing = self.acks_missing(&pair, &observed, looked);
        let lease = crate::controller::leases::input(
            &ctx.stores.leases,
            &ctx.lease_clock,
            &crate::render::Names::of(&pair),
            [0, 1].map(|o: usize| observed.facts[o].address.as_deref()),
            Instant::now(),
        );
        self.seeds.collect(ctx, &pair, &observed).await;
        self.seeds.follow_stream(ctx, &pair, &observed).await;
        let reseed_request = observe::pending_reseed(&pair)
            .map(|(req, node)| (req.node.clone(), req.request_id.clone(), node));
        let input = observe::input(
            &pair,
            &observed,
            long_enough,
            acks_missing,
            lease,
            self.seeds.input(
                reseed_request.as_ref().and_then(|(_, _, n)| n.clone().ok()),
                ctx.settings.agent_image.is_some(),
            ),
        );
        let plan = topology::decide(&input);
        self.writer_client = plan
            .writer
            .filter(|w| {
                pair.spec.write_mode == crate::api::WriteMode::SingleWriter
                    && observed.facts[*w as usize % 2].reachable()
            })
            .and_then(|w| observed.client(w).cloned());
        let single = pair.spec.write_mode == crate::api::WriteMode::SingleWriter;
        // Writes go to the elected writer from now on (one write moves
        // them; a candidate refuses them until it is promoted).
        let routed_before =
            (!paused && single).then(|| route::routed(plan.writer, &observed.facts, &[]));
        if let Some(to) = &routed_before {
            route_writes(ctx, &pair, to).await;
        }
        let started = (jiff::Timestamp::now(), Instant::now());
        let (done, acted) = if !paused && !plan.steps.is_empty() {
            act::act(&pair, ctx, &observed, &plan, passwords, current).await
        } else {
            (act::Acted::default(), Ok(()))
        };
        let elapsed = started.1.elapsed();
        // Once more only if the labels given moved the route (no writer
        // elected): the store may not show the first write yet, and the
        // same route would be written twice.
        if let Some(before) = routed_before {
            let to = route::routed(plan.writer, &observed.facts, &done.labelled);
            if to != before {
                route_writes(ctx, &pair, &to).await;
            }
        }
        record::record_metrics(ctx, &pair, &observed.facts);
        let mut outcome = Outcome {
            acted: !plan.steps.is_empty() && !paused,
            ..Default::default()
        };
        if paused {
            outcome.blocked = Some((
                "Paused".into(),
                "spec.paused is true: the operator changes nothing".into(),
            ));
        }
        let mut superseded = false;
        if let Some(start) = done.seed {
            let request_id = reseed_request
                .as_ref()
                .filter(|_| start.reason == topology::SeedReason::Requested)
                .map(|(_, id, _)| id.clone());
            let names = crate::render::Names::of(&pair);
            tracing::info!("{}", self.seeds.start(ctx, &names, start, request_id));
            Metrics::count(&ctx.metrics.seeds, "started");
        } else if let (Some((node, id, n)), false) = (&reseed_request, paused) {
            // A request that was not started is refused, with why.
            let why = match (n, &plan.seed) {
                (Err(e), _) => Some(e.clone()),
                (
                    Ok(_),
                    Some(topology::SeedVerdict::Held {
                        reason: topology::SeedReason::Requested,
                        why,
                        ..
                    }),
                ) => Some(why.clone()),
                _ => None,
            };
            if let Some(why) = why {
                self.seeds.refuse(ctx, &pair, node, id, &why).await;
            }
        }
        outcome.seed = self.seeds.take_news();
        outcome.skipped = done.skipped;
        outcome.epoch = done.epoch;
        outcome.stale = done.stale;
        if let (Some(claim), Some(w)) = (&done.claim, self.written.as_object_mut()) {
            // The claim's JSON patch changed these on the API server: the
            // merge patch of this cycle's status is computed against them.
            w.insert("writer".into(), claim.writer.clone().into());
            match &claim.pending {
                Some(p) => {
                    w.insert(
                        "pendingRoleChange".into(),
                        serde_json::to_value(p).unwrap_or(Value::Null),
                    );
                }
                None => {
                    w.remove("pendingRoleChange");
                }
            }
        }
        outcome.claim = done.claim.clone();
        let step_error = match acted {
            Ok(()) => {
                superseded = done.superseded;
                outcome.superseded = done.superseded;
                if let (Some(change), false) = (plan.failover, done.superseded) {
                    // A failover this operator resumed began before it
                    // looked: counted from its claim.
                    let claimed_for = pair
                        .status
                        .as_ref()
                        .and_then(|s| s.pending_role_change.as_ref())
                        .filter(|_| input.pending.is_some())
                        .and_then(|p| {
                            Duration::try_from(
                                jiff::Timestamp::now().duration_since(p.claimed_at.0),
                            )
                            .ok()
                        });
                    let down_for = self
                        .writer_down_since
                        .take()
                        .map(|s| s.elapsed())
                        .unwrap_or_default()
                        .max(claimed_for.unwrap_or_default());
                    let names = crate::render::Names::of(&pair);
                    ctx.metrics
                        .count_failover(&names.namespace, &names.pair, "promoted");
                    ctx.metrics
                        .role_change_seconds
                        .get_or_create(&super::metrics::KindLabels {
                            kind: "failover".into(),
                        })
                        .observe(down_for.as_secs_f64());
                    let lost = observe::history_of(&pair, change.0).and_then(|h| {
                        let candidate =
                            observed.facts[change.1 as usize % 2].server.as_ref().ok()?;
                        record::unreceived(candidate.info.flavor, &h.gtid_executed, candidate)
                    });
                    if let Some(set) = &lost {
                        tracing::warn!(lost = %set, "failover: transactions the new writer never received");
                    }
                    outcome.failover = Some(record::failover_record(
                        &pair,
                        change,
                        down_for,
                        done.data_loss_accepted,
                        lost,
                    ));
                }
                None
            }
            Err(e) => {
                outcome.failed = Some(("Step".into(), e.to_string()));
                Some(e)
            }
        };
        if !paused && !superseded {
            outcome.switchover = record::switchover_record(
                &pair,
                &plan,
                step_error.as_ref(),
                Time(started.0),
                elapsed,
            );
            if let Some(change) = &outcome.switchover {
                record::announce_switchover(ctx, &pair, change, elapsed).await;
            }
            outcome.divergence = self
                .divergence_check(ctx, &pair, &observed, step_error.is_none())
                .await;
        }
        let new = status::build(&pair, Some(&observed.facts), Some(&plan), &outcome, now());
        self.record(ctx, &pair, new).await?;
        match step_error {
            Some(e) => Err(e),
            None if outcome.acted => Ok(SOON),
            // While the writer is down, look again soon: a server restarted
            // in place is back in business within WRITER_DOWN_POLL of
            // answering, and the detection window ends on time.
            None if writer_down => Ok(WRITER_DOWN_POLL),
            // While the writer's commits get no acknowledgement, look again
            // when the detection window ends.
            None => Ok(self.acks_missing_since.map_or(interval, |since| {
                (since + window)
                    .saturating_duration_since(Instant::now())
                    .clamp(WRITER_DOWN_POLL, interval)
            })),
        }
    }

    /// Collects a finished divergence check; starts one when due. The check
    /// runs beside the loop: it never delays a failover.
    async fn divergence_check(
        &mut self,
        ctx: &Context,
        pair: &MySQLActiveActive,
        observed: &observe::Observed,
        settled: bool,
    ) -> Option<DivergenceReport> {
        if let Some(h) = self.divergence.take_if(|h| h.is_finished()) {
            let report = h.await.ok()?;
            divergence::announce(ctx, pair, &report).await;
            return Some(report);
        }
        if self.divergence.is_none() && settled && divergence::due(pair, jiff::Timestamp::now()) {
            let (p, o) = (pair.clone(), observed.clone());
            self.divergence = Some(tokio::spawn(async move { divergence::check(&p, &o).await }));
        }
        None
    }

    /// Step `record`: Events for news, then status (throttled).
    async fn record(
        &mut self,
        ctx: &Context,
        pair: &MySQLActiveActive,
        new: MySQLActiveActiveStatus,
    ) -> Result<(), Error> {
        record::announce_transitions(ctx, pair, &self.status, &new).await;
        let names = crate::render::Names::of(pair);
        ctx.metrics.record_pair(
            &names.namespace,
            &names.pair,
            &super::gauges::pair_gauges(pair, &new),
            jiff::Timestamp::now().as_second(),
        );
        if let Some(v) =
            record::write_status(ctx, pair, &self.written, &new, self.written_at.elapsed()).await?
        {
            self.written = v;
            self.written_at = Instant::now();
        }
        self.status = new;
        Ok(())
    }
}

/// Step `route`, logged; a failure is tried again at the next look.
async fn route_writes(ctx: &Context, pair: &MySQLActiveActive, to: &[u32]) {
    match route::route(ctx, pair, to).await {
        Ok(Some(pods)) => {
            tracing::info!(pods = ?pods, "route: the writer Service's EndpointSlice now names {pods:?}");
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "route failed; tried again next cycle"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12, bug 5: the reconcile's back-off grew to 300 s also for a
    /// promotion that failed in the middle of an outage.
    #[test]
    fn retries_never_wait_longer_than_the_observe_interval() {
        let interval = Duration::from_secs(5);
        let rows = [
            (1, Duration::from_millis(250)),
            (2, Duration::from_millis(500)),
            (3, Duration::from_secs(1)),
            (5, Duration::from_secs(4)),
            (6, interval),
            (50, interval),
            (u32::MAX, interval),
        ];
        for (failures, want) in rows {
            assert_eq!(retry_delay(failures, interval), want, "{failures}");
        }
        assert_eq!(
            retry_delay(9, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
