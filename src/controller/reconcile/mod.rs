//! The Kubernetes reconcile of one pair, as named steps:
//!
//! | step | module | does | on failure |
//! |---|---|---|---|
//! | `validate` | [`validate`] | admission's schema and rules, once | `InvalidSpec` (status, Event) |
//! | `credentials` | [`credentials`] | the passwords; creates generated Secrets | `CredentialsMissing` |
//! | `build` | [`build`] | the owned objects, from the validated pair | — (pure) |
//! | `apply` | [`apply`] | server-side apply of what is missing, changed or drifted | `ObjectRefused`; API errors retry |
//! | `hand off` | here | gives the pair loop what to run on (and wakes it) | — |
//!
//! Reads come from the reflector stores; Secrets (not watched: least
//! privilege) are read with GETs. The reconcile runs when the pair's spec
//! changes (its generation), when an owned object or a pod changes, and
//! once per [`RESYNC`]; status changes do not wake it. The MySQL work —
//! observing, deciding, failing over, writing status — is the pair loop's.

pub mod apply;
pub mod build;
pub mod credentials;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::Instrument;

use super::context::{Context, key};
use super::error::Error;
use super::events::Reason;
use super::locked;
use super::metrics::Metrics;
use super::pairloop::Desired;

/// A reconcile runs at least this often (re-reads the Secrets, re-checks
/// the owned objects against the stores).
pub const RESYNC: Duration = Duration::from_secs(60);

/// The reconcile of one pair.
pub async fn reconcile(
    pair: Arc<crate::api::MySQLActiveActive>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", pair = %pair.name_any(), namespace = pair.namespace().unwrap_or_default(), generation = pair.metadata.generation.unwrap_or_default());
    let started = Instant::now();
    let result = steps(&pair, &ctx).instrument(span).await;
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    Metrics::count(
        &ctx.metrics.reconciles,
        match &result {
            Ok(_) => "ok",
            Err(e) => e.label(),
        },
    );
    if result.is_ok() {
        locked(&ctx.failures).remove(&key(&pair));
    }
    result
}

async fn steps(
    pair: &Arc<crate::api::MySQLActiveActive>,
    ctx: &Arc<Context>,
) -> Result<Action, Error> {
    if !ctx.is_synced() {
        // A missing object may only be not yet seen: wait for the stores.
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    if pair.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the resource (ownerReferences); PVCs follow
        // spec.pvcRetentionPolicy through the StatefulSet.
        ctx.loops.stop(&key(pair));
        ctx.forget(&key(pair));
        return Ok(Action::await_change());
    }
    let desired = desired(pair, ctx).await?;
    // A blocked pair is looked at again soon: what blocks it (a Secret, not
    // watched) can be mended without any change the watches see.
    let again = match &desired {
        Desired::Blocked { .. } => ctx.settings.observe_interval() * 4,
        Desired::Run { .. } => RESYNC,
    };
    ctx.loops.hand_off(ctx, desired);
    Ok(Action::requeue(again))
}

fn blocked(pair: &Arc<crate::api::MySQLActiveActive>, reason: Reason, message: String) -> Desired {
    tracing::warn!(reason = %reason, %message, "blocked");
    Desired::Blocked {
        pair: pair.clone(),
        reason,
        message,
    }
}

/// The steps up to the hand-off.
async fn desired(
    pair: &Arc<crate::api::MySQLActiveActive>,
    ctx: &Context,
) -> Result<Desired, Error> {
    let validated = match tracing::info_span!("validate").in_scope(|| validate::validate(pair)) {
        Ok(v) => v,
        Err(message) => return Ok(blocked(pair, Reason::InvalidSpec, message)),
    };
    let passwords = match credentials::credentials(&validated, ctx)
        .instrument(tracing::info_span!("credentials"))
        .await?
    {
        Ok(p) => p,
        Err(message) => return Ok(blocked(pair, Reason::CredentialsMissing, message)),
    };
    if !pair.spec.paused {
        let objects = tracing::info_span!("build")
            .in_scope(|| build::build(validated, &ctx.settings.render_options()));
        match apply::apply(ctx, objects)
            .instrument(tracing::info_span!("apply"))
            .await
        {
            Ok(applied) => {
                if !applied.changed.is_empty() {
                    ctx.publish(
                        pair,
                        Reason::ObjectsApplied,
                        format!("created or updated {}", applied.changed.join(", ")),
                    )
                    .await;
                }
                if !applied.repaired.is_empty() {
                    ctx.publish(
                        pair,
                        Reason::ObjectsRepaired,
                        format!(
                            "repaired {} (changed or deleted by someone else)",
                            applied.repaired.join(", ")
                        ),
                    )
                    .await;
                }
            }
            Err(e @ Error::Refused { .. }) => {
                return Ok(blocked(pair, Reason::ObjectRefused, e.to_string()));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Desired::Run {
        pair: pair.clone(),
        passwords,
    })
}

/// Back-off of a failed reconcile (Kubernetes API errors): 1, 2, 4 ... 60
/// seconds. (The pair loop, not the reconcile, retries MySQL steps.)
pub fn error_policy(
    pair: Arc<crate::api::MySQLActiveActive>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let mut failures = locked(&ctx.failures);
    let n = failures.entry(key(&pair)).or_insert(0);
    *n += 1;
    let delay = Duration::from_secs((1u64 << (*n).min(6)).min(60));
    tracing::warn!(pair = %key(&pair), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
