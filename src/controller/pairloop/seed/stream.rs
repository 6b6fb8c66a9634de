//! The MariaDB re-seed as the loop follows it: a copy streamed by the
//! writer's agent into the recipient's bootstrap. The operator asks a
//! bootstrap for one (a ConfigMap token and a pod restart) when the node's
//! volume is not new; a new volume's bootstrap asks by itself. Either way
//! the loop learns how the copy goes from the writer's agent (`SEEDING`).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant;

use crate::api::SeedPhase;
use crate::controller::context::Context;
use crate::controller::events::Reason;
use crate::render::Names;
use crate::topology::SeedReason;

use super::super::observe::Observed;
use super::{Seeds, backoff};

/// A MariaDB copy streamed by the writer's agent into a new pod's
/// bootstrap, as the loop follows it (the pod asks for it by itself).
pub(super) struct Streamed {
    pub(super) node: u32,
    pub(super) donor: u32,
    pub(super) reason: SeedReason,
    pub(super) request_id: Option<String>,
    pub(super) discards: Option<String>,
    /// When the donation followed started (by the donor agent's clock
    /// read through its report); `None`: asked for, none seen yet.
    pub(super) donation: Option<Instant>,
    /// Asking the bootstrap failed: the plan may start another attempt
    /// after the back-off.
    pub(super) abandoned: bool,
    pub(super) started: Instant,
    pub(super) started_at: Time,
    pub(super) attempt: u32,
    pub(super) phase: SeedPhase,
    pub(super) message: String,
    pub(super) bytes: u64,
    pub(super) finished_at: Option<Time>,
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

impl Seeds {
    /// MariaDB: the recipient's bootstrap receives the copy. The ConfigMap
    /// asks it for one (`reseed-<pod>`, a fresh token: the bootstrap moves
    /// the data directory aside, once per token), then the pod is deleted
    /// (a replica's graceful restart); [`Seeds::follow_stream`] follows the
    /// copy through the writer's agent.
    pub(super) fn ask_bootstrap(
        &mut self,
        ctx: &Context,
        names: &Names,
        start: super::super::act::SeedStart,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
