//! Step `Reseed`, beside the loop: the copy of the writer's data into a
//! node that cannot catch up runs as a task (it takes as long as the data
//! takes to copy, and must never hold a failover back); each cycle collects
//! its progress and its end, and tells the decision which node is being
//! re-seeded. One re-seed at a time per pair; a failed automatic attempt is
//! retried after a back-off that doubles up to [`MAX_BACKOFF`]; a requested
//! one is answered once (`status.answeredReseedRequest`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::api::{SeedPhase, SeedStatus};
use crate::controller::context::Context;
use crate::controller::events::Reason;
use crate::mysql::{CloneOutcome, CloneStatus, MySqlClient, Server, SqlError};
use crate::render::Names;
use crate::topology::{SeedInput, SeedReason};

use super::observe::Observed;

/// The longest a clone statement may run.
pub const CLONE_LIMIT: Duration = Duration::from_secs(6 * 3600);
/// How long a node that has its copy may take to restart onto it before the
/// attempt counts as failed.
pub const RESTART_LIMIT: Duration = Duration::from_secs(180);
/// The first back-off after a failed attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What the recipient's clone status says once its server answers again
/// after going down (restarted onto the copy, or killed during it): the
/// copy completed, or failed (and why; no status at all: the server went
/// down before the copy was complete, and reverted it); `None`: nothing to
/// tell yet. Pure.
pub fn after_restart(status: Option<&CloneStatus>) -> Option<Result<(), String>> {
    let Some(s) = status else {
        return Some(Err(
            "the node restarted without the copy (its server went down before the copy was complete, and reverted it)".into(),
        ));
    };
    match s.state.as_str() {
        "Completed" => Some(Ok(())),
        "Failed" => Some(Err(format!(
            "the copy failed (error {}: {})",
            s.error, s.message
        ))),
        _ => None,
    }
}

/// The back-off after `failures` failed attempts in a row: 10 s, 20 s, 40
/// s, ... at most [`MAX_BACKOFF`]. Pure.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * (1u32 << exp)).min(MAX_BACKOFF)
}

struct Run {
    node: u32,
    donor: u32,
    reason: SeedReason,
    request_id: Option<String>,
    discards: Option<String>,
    started: Instant,
    started_at: Time,
    attempt: u32,
    phase: SeedPhase,
    message: String,
    bytes: (u64, u64),
    /// The copy (`None` once it ended).
    task: Option<JoinHandle<Result<CloneOutcome, SqlError>>>,
    /// The copy ended: the node has been seen down since (its restart).
    restarting_since: Option<Instant>,
    finished_at: Option<Time>,
    client: Arc<MySqlClient>,
}

/// A MariaDB copy streamed by the writer's agent into a new pod's
/// bootstrap, as the loop follows it (the pod asks for it by itself).
struct Streamed {
    node: u32,
    donor: u32,
    reason: SeedReason,
    request_id: Option<String>,
    discards: Option<String>,
    /// When the donation followed started (by the donor agent's clock
    /// read through its report); `None`: asked for, none seen yet.
    donation: Option<Instant>,
    /// Asking the bootstrap failed: the plan may start another attempt
    /// after the back-off.
    abandoned: bool,
    started: Instant,
    started_at: Time,
    attempt: u32,
    phase: SeedPhase,
    message: String,
    bytes: u64,
    finished_at: Option<Time>,
}

/// What the writer agent's report of a streamed copy (`state`: `Sending`,
/// `Sent` or `Failed: why`) means for the recipient, whose server
/// `answers` or not (it starts only once its bootstrap placed the copy):
/// its phase and what to say. Pure.
pub fn streamed_phase(state: &str, answers: bool, pod: &str) -> (SeedPhase, String) {
    match state {
        "Sending" => (
            SeedPhase::Seeding,
            format!("the writer's agent streams a copy (mariadb-backup) into {pod}'s bootstrap"),
        ),
        "Sent" if answers => (
            SeedPhase::Finished,
            format!(
                "{pod} started on the copy; it replicates from the writer's GTID position at the copy"
            ),
        ),
        "Sent" => (
            SeedPhase::Restarting,
            format!("the copy is sent; {pod} prepares it and starts on it"),
        ),
        other => (
            SeedPhase::Failed,
            format!(
                "{}; the writer is untouched; {pod}'s bootstrap asks again by itself",
                other.strip_prefix("Failed: ").unwrap_or(other)
            ),
        ),
    }
}

/// The pair's re-seeds, as the loop keeps them.
#[derive(Default)]
pub struct Seeds {
    run: Option<Run>,
    streamed: Option<Streamed>,
    /// The request to a MariaDB bootstrap (ConfigMap, pod deletion).
    asking: Option<JoinHandle<Result<(), String>>>,
    failures: u32,
    retry_after: Option<Instant>,
    /// The status to record this cycle, when it changed.
    news: Option<SeedStatus>,
}

impl Seeds {
    /// What the decision needs; `requested`: the node an unanswered
    /// `spec.reseed` names.
    /// `streams`: the pods run agents that stream MariaDB copies.
    pub fn input(&self, requested: Option<u32>, streams: bool) -> SeedInput {
        SeedInput {
            requested,
            streams,
            running: self
                .run
                .as_ref()
                .filter(|r| matches!(r.phase, SeedPhase::Seeding | SeedPhase::Restarting))
                .map(|r| r.node)
                .or_else(|| {
                    // A bootstrap that failed to get its copy asks again by
                    // itself: still running.
                    self.streamed
                        .as_ref()
                        .filter(|s| s.phase != SeedPhase::Finished && !s.abandoned)
                        .map(|s| s.node)
                }),
            backing_off: self.retry_after.is_some_and(|t| Instant::now() < t),
        }
    }

    /// Starts copying the donor's data into the recipient as `start` says
    /// (answering `request_id`, if a request asked for it).
    pub fn start(
        &mut self,
        ctx: &Context,
        names: &Names,
        start: super::act::SeedStart,
        request_id: Option<String>,
    ) -> String {
        let attempt = if request_id.is_some() {
            1
        } else {
            self.failures + 1
        };
        if start.streamed {
            return self.ask_bootstrap(ctx, names, start, request_id, attempt);
        }
        let c = start.client.clone();
        let source = start.source;
        let task = tokio::spawn(async move {
            c.stop_replica().await?;
            c.clone_data_from(&source, CLONE_LIMIT).await
        });
        self.streamed = None;
        self.run = Some(Run {
            node: start.node,
            donor: start.from,
            reason: start.reason,
            request_id,
            discards: start.discards,
            started: Instant::now(),
            started_at: Time(jiff::Timestamp::now()),
            attempt,
            phase: SeedPhase::Seeding,
            message: String::new(),
            bytes: (0, 0),
            task: Some(task),
            restarting_since: None,
            finished_at: None,
            client: start.client,
        });
        self.news = self.status(names);
        format!(
            "re-seed of {} ({}) from {} started (attempt {attempt})",
            names.pod(start.node),
            start.reason.as_str(),
            names.pod(start.from)
        )
    }

    /// MariaDB: the recipient's bootstrap receives the copy. The ConfigMap
    /// asks it for one (`reseed-<pod>`, a fresh token: the bootstrap moves
    /// the data directory aside, once per token), then the pod is deleted
    /// (a replica's graceful restart); [`Seeds::follow_stream`] follows the
    /// copy through the writer's agent.
    fn ask_bootstrap(
        &mut self,
        ctx: &Context,
        names: &Names,
        start: super::act::SeedStart,
        request_id: Option<String>,
        attempt: u32,
    ) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let (client, ns, config, pod) = (
            ctx.client.clone(),
            names.namespace.clone(),
            names.config_map(),
            names.pod(start.node),
        );
        let key = crate::render::scripts::reseed_key(&pod);
        let ask = async move {
            use kube::api::{Api, DeleteParams, Patch, PatchParams};
            let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
                Api::namespaced(client.clone(), &ns);
            let patch = serde_json::json!({"data": {key: format!("{token}\n")}});
            maps.patch(&config, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    format!("asking {pod}'s bootstrap for a copy (ConfigMap {config}): {e}")
                })?;
            let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, &ns);
            pods.delete(&pod, &DeleteParams::default())
                .await
                .map_err(|e| format!("restarting {pod} to receive the copy: {e}"))?;
            Ok::<(), String>(())
        };
        self.run = None;
        self.streamed = Some(Streamed {
            node: start.node,
            donor: start.from,
            reason: start.reason,
            request_id,
            discards: start.discards,
            donation: None,
            abandoned: false,
            started: Instant::now(),
            started_at: Time(jiff::Timestamp::now()),
            attempt,
            phase: SeedPhase::Seeding,
            message: format!(
                "{} restarts to receive a copy (mariadb-backup) from {}'s agent in its bootstrap; its data directory is kept beside the copy (data.before-reseed) until the next re-seed",
                names.pod(start.node),
                names.pod(start.from)
            ),
            bytes: 0,
            finished_at: None,
        });
        self.asking = Some(tokio::spawn(ask));
        self.news = self.status(names);
        format!(
            "re-seed of {} ({}) from {} started (attempt {attempt}): its bootstrap receives the copy",
            names.pod(start.node),
            start.reason.as_str(),
            names.pod(start.from)
        )
    }

    /// Answers a `spec.reseed` request that cannot be carried out: status
    /// says why, nothing changes (`SeedFailed`).
    pub async fn refuse(
        &mut self,
        ctx: &Context,
        pair: &crate::api::MySQLActiveActive,
        node: &str,
        request_id: &str,
        why: &str,
    ) {
        let now = Time(jiff::Timestamp::now());
        let names = Names::of(pair);
        let writer = pair
            .status
            .as_ref()
            .and_then(|s| s.writer.clone())
            .unwrap_or_default();
        self.news = Some(SeedStatus {
            node: node.to_string(),
            donor: writer,
            reason: SeedReason::Requested.as_str().into(),
            request_id: Some(request_id.to_string()),
            discarded_gtid_set: None,
            phase: SeedPhase::Refused,
            message: format!("refused: {why}; nothing changed"),
            started_at: now.clone(),
            finished_at: Some(now),
            bytes_done: 0,
            bytes_total: 0,
            attempt: 0,
        });
        crate::controller::metrics::Metrics::count(&ctx.metrics.seeds, "refused");
        let message = format!(
            "re-seed of {node} (requestId {request_id}) refused: {why}; nothing changed (pair {})",
            names.pair
        );
        ctx.publish(pair, Reason::SeedFailed, message).await;
    }

    /// Collects the copy's progress and end, and the node's restart onto
    /// it; publishes `SeedFinished`/`SeedFailed`.
    pub async fn collect(
        &mut self,
        ctx: &Context,
        pair: &crate::api::MySQLActiveActive,
        observed: &Observed,
    ) {
        let names = Names::of(pair);
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let mut ended: Option<Result<String, String>> = None;
        match run.phase {
            SeedPhase::Seeding => {
                if let Ok(Some(s)) =
                    tokio::time::timeout(Duration::from_secs(2), run.client.clone_status())
                        .await
                        .unwrap_or(Ok(None))
                    && s.state == "In Progress"
                {
                    run.bytes = (s.bytes_done, s.bytes_total);
                }
                if let Some(t) = run.task.take_if(|t| t.is_finished()) {
                    match t.await {
                        Ok(Ok(_)) => {
                            // The copy is complete: all that was estimated.
                            run.bytes.0 = run.bytes.0.max(run.bytes.1);
                            run.phase = SeedPhase::Restarting;
                            run.restarting_since = Some(Instant::now());
                            run.message = format!(
                                "the copy is in place; {} restarts onto it",
                                names.pod(run.node)
                            );
                        }
                        Ok(Err(e)) => ended = Some(Err(e.to_string())),
                        Err(e) => ended = Some(Err(format!("the copy's task ended: {e}"))),
                    }
                }
            }
            SeedPhase::Restarting => {
                let facts = &observed.facts[run.node as usize % 2];
                // A restart may be quicker than a cycle: the clone status
                // tells (Completed or Failed only after it; none at all on
                // a server killed before the copy began).
                let verdict = if facts.reachable() {
                    tokio::time::timeout(Duration::from_secs(2), run.client.clone_status())
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .and_then(|last| Some((after_restart(last.as_ref())?, last)))
                } else {
                    None
                };
                if let Some((verdict, last)) = verdict {
                    // The recipient keeps the last clone's figures.
                    if let Some(last) = &last {
                        run.bytes = (last.bytes_done, last.bytes_total);
                    }
                    ended = Some(verdict.map(|()| {
                        format!(
                            "{} restarted on {}'s data and replicates from it again ({} bytes copied in {:.1} s)",
                            names.pod(run.node),
                            names.pod(run.donor),
                            run.bytes.0,
                            run.started.elapsed().as_secs_f64()
                        )
                    }));
                } else if run
                    .restarting_since
                    .is_some_and(|t| t.elapsed() > RESTART_LIMIT)
                {
                    ended = Some(Err(format!(
                        "the copy is in place but {} did not restart onto it within {} s: delete its pod",
                        names.pod(run.node),
                        RESTART_LIMIT.as_secs()
                    )));
                }
            }
            SeedPhase::Finished | SeedPhase::Failed | SeedPhase::Refused => {}
        }
        match ended {
            Some(Ok(message)) => {
                let elapsed = run.started.elapsed();
                run.phase = SeedPhase::Finished;
                run.finished_at = Some(Time(jiff::Timestamp::now()));
                run.message = message.clone();
                self.failures = 0;
                self.retry_after = None;
                crate::controller::metrics::Metrics::count(&ctx.metrics.seeds, "finished");
                ctx.metrics.seed_seconds.observe(elapsed.as_secs_f64());
                ctx.publish(pair, Reason::SeedFinished, message).await;
            }
            Some(Err(error)) => {
                run.phase = SeedPhase::Failed;
                run.finished_at = Some(Time(jiff::Timestamp::now()));
                run.message = if run.request_id.is_some() {
                    format!("{error}; the writer is untouched; ask again with a new requestId")
                } else {
                    self.failures += 1;
                    let wait = backoff(self.failures);
                    self.retry_after = Some(Instant::now() + wait);
                    format!(
                        "{error}; the writer is untouched; retried in {} s",
                        wait.as_secs()
                    )
                };
                crate::controller::metrics::Metrics::count(&ctx.metrics.seeds, "failed");
                let message = format!(
                    "re-seed of {} from {} failed: {}",
                    names.pod(run.node),
                    names.pod(run.donor),
                    run.message
                );
                ctx.publish(pair, Reason::SeedFailed, message).await;
            }
            None => {}
        }
        self.news = self.status(&names);
    }

    /// Follows a MariaDB copy streamed into a new pod's bootstrap: asks the
    /// writer's agent (`SEEDING`) while its peer does not replicate or a
    /// copy is followed; publishes `SeedStarted`/`SeedFinished`/`SeedFailed`
    /// as its phase changes.
    pub async fn follow_stream(
        &mut self,
        ctx: &Context,
        pair: &crate::api::MySQLActiveActive,
        observed: &Observed,
    ) {
        use crate::api::{Engine, WriteMode};
        if pair.spec.engine != Engine::MariaDB
            || pair.spec.write_mode != WriteMode::SingleWriter
            || ctx.settings.agent_image.is_none()
        {
            return;
        }
        let names = Names::of(pair);
        if let Some(ask) = self.asking.take_if(|t| t.is_finished()) {
            let failed = match ask.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => Some(format!("asking the bootstrap: {e}")),
            };
            if let (Some(error), Some(s)) = (failed, self.streamed.as_mut()) {
                s.phase = SeedPhase::Failed;
                s.abandoned = true;
                s.finished_at = Some(Time(jiff::Timestamp::now()));
                self.failures += 1;
                let wait = backoff(self.failures);
                self.retry_after = Some(Instant::now() + wait);
                s.message = format!(
                    "{error}; the writer is untouched; retried in {} s",
                    wait.as_secs()
                );
                crate::controller::metrics::Metrics::count(&ctx.metrics.seeds, "failed");
                let text = format!("re-seed of {} failed: {}", names.pod(s.node), s.message);
                ctx.publish(pair, Reason::SeedFailed, text).await;
                self.news = self.status(&names);
                return;
            }
        }
        let Some(w) = pair
            .status
            .as_ref()
            .and_then(|s| s.writer.as_deref())
            .and_then(|w| (0..2).find(|o| names.pod(*o) == w))
        else {
            return;
        };
        let node = 1 - w;
        let answers = observed.facts[node as usize]
            .observation()
            .is_some_and(|o| !o.awaiting_seed);
        let followed = self
            .streamed
            .as_ref()
            .is_some_and(|s| !matches!(s.phase, SeedPhase::Finished) && !s.abandoned);
        if answers && !followed {
            return;
        }
        let Some(address) = observed.facts[w as usize].address.as_deref() else {
            return;
        };
        let Ok(Some((pod, bytes, secs, state))) = crate::agent::peer::donation(
            address,
            crate::agent::AGENT_PORT,
            Duration::from_millis(300),
        )
        .await
        else {
            return;
        };
        if pod != names.pod(node) {
            return;
        }
        let (phase, message) = streamed_phase(&state, answers, &pod);
        let donated = Instant::now()
            .checked_sub(Duration::from_secs(secs))
            .unwrap_or_else(Instant::now);
        match self
            .streamed
            .as_mut()
            .filter(|s| s.node == node && !s.abandoned)
        {
            // Asked for by this loop: the first donation is its copy.
            Some(s) if s.donation.is_none() => {
                if donated + Duration::from_secs(1) < s.started {
                    return; // an older donation
                }
                s.donation = Some(donated);
            }
            // The bootstrap asked again (after a failure): a new attempt.
            Some(s)
                if s.donation
                    .is_some_and(|d| donated > d + Duration::from_secs(1)) =>
            {
                s.donation = Some(donated);
                s.attempt += 1;
                s.finished_at = None;
                let text = format!(
                    "re-seed of {pod} ({}) from {}: attempt {}: {message}",
                    s.reason.as_str(),
                    names.pod(w),
                    s.attempt
                );
                ctx.publish(
                    pair,
                    Reason::Step(crate::controller::events::StepName::SeedStarted),
                    text,
                )
                .await;
            }
            Some(_) => {}
            // A new pod's bootstrap asked by itself (its volume was empty).
            None => {
                if phase != SeedPhase::Seeding && secs > 120 {
                    return; // an old donation
                }
                self.run = None;
                self.streamed = Some(Streamed {
                    node,
                    donor: w,
                    reason: SeedReason::EmptyDataDirectory,
                    request_id: None,
                    discards: None,
                    donation: Some(donated),
                    abandoned: false,
                    started: donated,
                    started_at: Time(
                        jiff::Timestamp::now()
                            .checked_sub(jiff::SignedDuration::from_secs(
                                i64::try_from(secs).unwrap_or(0),
                            ))
                            .unwrap_or_else(|_| jiff::Timestamp::now()),
                    ),
                    attempt: 1,
                    phase: SeedPhase::Seeding,
                    message: message.clone(),
                    bytes,
                    finished_at: None,
                });
                crate::controller::metrics::Metrics::count(&ctx.metrics.seeds, "started");
                let text = format!(
                    "re-seed of {pod} ({}) from {} started (attempt 1): {message}",
                    SeedReason::EmptyDataDirectory.as_str(),
                    names.pod(w)
                );
                ctx.publish(
                    pair,
                    Reason::Step(crate::controller::events::StepName::SeedStarted),
                    text,
                )
                .await;
            }
        }
        let Some(s) = self.streamed.as_mut() else {
            return;
        };
        let changed = s.phase != phase;
        s.bytes = bytes;
        s.phase = phase;
        s.message = message.clone();
        if changed {
            match phase {
                SeedPhase::Finished => {
                    s.finished_at = Some(Time(jiff::Timestamp::now()));
                    self.failures = 0;
                    self.retry_after = None;
                    let elapsed = s.started.elapsed();
                    crate::controller::metrics::Metrics::count(&ctx.metrics.seeds, "finished");
                    ctx.metrics.seed_seconds.observe(elapsed.as_secs_f64());
                    let text = format!(
                        "{message} ({bytes} bytes copied in {:.1} s)",
                        elapsed.as_secs_f64()
                    );
                    s.message = text.clone();
                    ctx.publish(pair, Reason::SeedFinished, text).await;
                }
                SeedPhase::Failed => {
                    s.finished_at = Some(Time(jiff::Timestamp::now()));
                    crate::controller::metrics::Metrics::count(&ctx.metrics.seeds, "failed");
                    let text = format!("re-seed of {pod} failed: {message}");
                    ctx.publish(pair, Reason::SeedFailed, text).await;
                }
                _ => {}
            }
        }
        self.news = self.status(&names);
    }

    /// `status.seed` as this loop knows it.
    pub fn status(&self, names: &Names) -> Option<SeedStatus> {
        if self.run.is_none()
            && let Some(s) = &self.streamed
        {
            return Some(SeedStatus {
                node: names.pod(s.node),
                donor: names.pod(s.donor),
                reason: s.reason.as_str().into(),
                request_id: s.request_id.clone(),
                discarded_gtid_set: s.discards.clone(),
                phase: s.phase,
                message: s.message.clone(),
                started_at: s.started_at.clone(),
                finished_at: s.finished_at.clone(),
                bytes_done: s.bytes,
                bytes_total: 0,
                attempt: s.attempt,
            });
        }
        let run = self.run.as_ref()?;
        Some(SeedStatus {
            node: names.pod(run.node),
            donor: names.pod(run.donor),
            reason: run.reason.as_str().into(),
            request_id: run.request_id.clone(),
            discarded_gtid_set: run.discards.clone(),
            phase: run.phase,
            message: run.message.clone(),
            started_at: run.started_at.clone(),
            finished_at: run.finished_at.clone(),
            bytes_done: run.bytes.0,
            bytes_total: run.bytes.1,
            attempt: run.attempt,
        })
    }

    /// The status to record this cycle (taken once).
    pub fn take_news(&mut self) -> Option<SeedStatus> {
        self.news.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clone_status_tells_how_a_restart_ended() {
        let status = |state: &str| CloneStatus {
            state: state.into(),
            error: if state == "Failed" { 3862 } else { 0 },
            message: if state == "Failed" {
                "Clone Donor Error: interrupted".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        assert!(matches!(after_restart(None), Some(Err(_))));
        assert_eq!(after_restart(Some(&status("Completed"))), Some(Ok(())));
        assert_eq!(after_restart(Some(&status("In Progress"))), None);
        assert_eq!(after_restart(Some(&status("Not Started"))), None);
        assert_eq!(
            after_restart(Some(&status("Failed"))),
            Some(Err(
                "the copy failed (error 3862: Clone Donor Error: interrupted)".into()
            ))
        );
    }

    #[test]
    fn streamed_copies_report_their_phase() {
        // (state, the recipient's server answers, phase, message says)
        let rows = [
            ("Sending", false, SeedPhase::Seeding, "streams a copy"),
            ("Sent", false, SeedPhase::Restarting, "prepares it"),
            ("Sent", true, SeedPhase::Finished, "started on the copy"),
            (
                "Failed: mariadb-backup --backup failed: x",
                false,
                SeedPhase::Failed,
                "mariadb-backup --backup failed: x; the writer is untouched",
            ),
        ];
        for (state, answers, phase, says) in rows {
            let (p, m) = streamed_phase(state, answers, "db-1");
            assert_eq!(p, phase, "{state}");
            assert!(m.contains(says), "{state}: {m}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let s = Duration::from_secs;
        let cases = [
            (1, s(10)),
            (2, s(20)),
            (3, s(40)),
            (7, s(600)),
            (40, s(600)),
        ];
        for (failures, want) in cases {
            assert_eq!(backoff(failures), want, "{failures}");
        }
    }
}
