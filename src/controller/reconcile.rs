//! One reconcile: read → validate → credentials → render → apply → pair
//! loop → status. A spec that cannot work becomes a condition and an Event,
//! never a change to what exists.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::Instrument;

use super::error::{Error, kube};
use super::status::{self, Outcome};
use super::{Context, MANAGER, events};
use super::{divergence, pairloop};
use crate::accounts::PASSWORD_KEY;
use crate::api::MySQLActiveActive;
use crate::mysql::{AccountPasswords, Password};
use crate::render::{self, Credential, Names, secrets};

/// Annotation with the hash of what the operator last applied, so an
/// unchanged object is not written again.
pub const APPLIED_HASH: &str = "mysql-aa.io/applied-hash";

fn hash(v: &Value) -> String {
    render::meta::digest(&v.to_string())
}

/// Server-side applies `obj` unless the live object carries the same hash.
async fn apply<K>(api: &Api<K>, mut obj: K) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
{
    let digest = hash(&serde_json::to_value(&obj).unwrap_or(Value::Null));
    obj.meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(APPLIED_HASH.into(), digest.clone());
    let name = obj.meta().name.clone().unwrap_or_default();
    let live = api.get_opt(&name).await.map_err(kube("apply"))?;
    if live.is_some_and(|l| {
        l.meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_HASH))
            == Some(&digest)
    }) {
        return Ok(false);
    }
    match api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if is_refusal(s.code, &s.message) => Err(Error::Refused {
            object: format!(
                "{} {}/{}",
                K::kind(&()),
                obj.meta().namespace.clone().unwrap_or_default(),
                name
            ),
            message: s.message,
        }),
        Err(e) => Err(kube("apply")(e)),
    }
}

/// Whether an API error answering an apply means the object itself is
/// refused (retrying cannot help until the spec changes): 400 and 422, and
/// the 500 a server-side apply gets when a field of a built-in type does not
/// convert (an invalid quantity, seen on kube-apiserver v1.37).
fn is_refusal(code: u16, message: &str) -> bool {
    code == 400 || code == 422 || (code == 500 && message.contains("failed to convert new object"))
}

/// Reads the passwords; creates generated Secrets that are missing.
/// `Ok(Err(message))`: a Secret the user named is missing.
async fn credentials(
    pair: &MySQLActiveActive,
    ctx: &Context,
) -> Result<Result<AccountPasswords, String>, Error> {
    let names = Names::of(pair);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let mut found = Vec::new();
    for cred in Credential::ALL {
        let name = cred.secret_name(pair, &names);
        let existing = api.get_opt(&name).await.map_err(kube("credentials"))?;
        let password = existing
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(PASSWORD_KEY))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .filter(|p| !p.is_empty());
        let password = match (password, existing.is_some(), cred.is_generated(pair)) {
            (Some(p), _, _) => p,
            (None, false, true) => {
                let p = secrets::generate_password();
                let secret = secrets::build_secret(pair, &names, cred, Some(&p));
                api.create(
                    &PostParams {
                        field_manager: Some(MANAGER.into()),
                        ..Default::default()
                    },
                    &secret,
                )
                .await
                .map_err(kube("credentials"))?;
                ctx.publish(
                    Event {
                        type_: EventType::Normal,
                        reason: events::SECRET_GENERATED.into(),
                        note: Some(format!("generated Secret {name}")),
                        action: "GenerateSecret".into(),
                        secondary: None,
                    },
                    &pair.object_ref(&()),
                )
                .await;
                p
            }
            (None, true, true) => {
                // A generated Secret lost its key. Before the servers exist it
                // is filled; once they were initialized with the password it
                // held, a new one would lock the operator and the replicas
                // out: report it and change nothing.
                let servers = Api::<StatefulSet>::namespaced(ctx.client.clone(), &names.namespace)
                    .get_opt(&names.statefulset())
                    .await
                    .map_err(kube("credentials"))?;
                if servers.is_some() {
                    return Ok(Err(format!(
                        "Secret {name} lost its key {PASSWORD_KEY:?}, and the servers were initialized with the password it held: restore it (the operator never replaces a password the servers use)"
                    )));
                }
                let p = secrets::generate_password();
                api.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"stringData": {PASSWORD_KEY: p}})),
                )
                .await
                .map_err(kube("credentials"))?;
                p
            }
            (None, exists, false) => {
                return Ok(Err(if exists {
                    format!("Secret {name} has no key {PASSWORD_KEY:?}")
                } else {
                    format!("Secret {name} (named in spec.credentials) does not exist")
                }));
            }
        };
        if cred == Credential::Replication && password.chars().count() > secrets::PASSWORD_LEN {
            return Ok(Err(format!(
                "the password in Secret {name} is longer than {} characters, MySQL's limit for replication credentials",
                secrets::PASSWORD_LEN
            )));
        }
        found.push(password);
    }
    Ok(Ok(AccountPasswords {
        admin: Password::new(found[0].clone()),
        replication: Password::new(found[1].clone()),
    }))
}

/// Applies every rendered object; returns how many changed.
async fn apply_objects(pair: &MySQLActiveActive, ctx: &Context) -> Result<usize, Error> {
    let rendered = render::render(pair)?;
    let ns = Names::of(pair).namespace;
    let c = &ctx.client;
    let mut changed = 0;
    changed += usize::from(
        apply(
            &Api::<ConfigMap>::namespaced(c.clone(), &ns),
            rendered.config_map,
        )
        .await?,
    );
    for svc in rendered.services {
        changed += usize::from(apply(&Api::<Service>::namespaced(c.clone(), &ns), svc).await?);
    }
    changed += usize::from(
        apply(
            &Api::<PodDisruptionBudget>::namespaced(c.clone(), &ns),
            rendered.pdb,
        )
        .await?,
    );
    changed += usize::from(
        apply(
            &Api::<StatefulSet>::namespaced(c.clone(), &ns),
            rendered.statefulset,
        )
        .await?,
    );
    Ok(changed)
}

/// A JSON merge patch (RFC 7386) turning `old` into `new`: keys that are
/// gone become `null` at every depth (a merge patch merges nested objects,
/// so a key left out would survive), arrays and scalars are replaced.
fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old.as_object(), new.as_object()) {
        (Some(o), Some(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) => {
                        patch.insert(k.clone(), merge_patch(ov, v));
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// The status patch turning `old` status into `new`.
fn status_patch(old: &Value, new: &Value) -> Value {
    json!({ "status": merge_patch(old, new) })
}

async fn write_status(
    pair: &MySQLActiveActive,
    ctx: &Context,
    new: crate::api::MySQLActiveActiveStatus,
) -> Result<(), Error> {
    let old = serde_json::to_value(pair.status.clone().unwrap_or_default()).unwrap_or(Value::Null);
    let new_v = serde_json::to_value(&new).unwrap_or(Value::Null);
    if old == new_v {
        return Ok(());
    }
    let names = Names::of(pair);
    let api: Api<MySQLActiveActive> = Api::namespaced(ctx.client.clone(), &names.namespace);
    api.patch_status(
        &names.pair,
        &PatchParams::default(),
        &Patch::Merge(status_patch(&old, &new_v)),
    )
    .await
    .map_err(kube("status"))?;
    // Transitions worth an Event of their own.
    let old_status = pair.status.clone().unwrap_or_default();
    for n in &new.nodes {
        let had = old_status
            .nodes
            .iter()
            .any(|o| o.name == n.name && o.errant_gtid_set.is_some());
        if let (Some(set), false) = (&n.errant_gtid_set, had) {
            ctx.publish(
                Event {
                    type_: EventType::Warning,
                    reason: events::ERRANT_TRANSACTIONS.into(),
                    note: Some(format!(
                        "{} executed transactions the writer does not have: {set}; it will not be promoted",
                        n.name
                    )),
                    action: "Observe".into(),
                    secondary: None,
                },
                &pair.object_ref(&()),
            )
            .await;
        }
    }
    if new.durability != old_status.durability
        && let Some(d) = new.durability.as_deref()
        && old_status.durability.is_some()
    {
        ctx.publish(
            Event {
                type_: if d == "AsynchronousFallback" {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: events::DURABILITY_CHANGED.into(),
                note: Some(format!("commits are now {d}")),
                action: "Observe".into(),
                secondary: None,
            },
            &pair.object_ref(&()),
        )
        .await;
    }
    let was_halted = pair.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "ConflictDetected" && c.status == "True")
    });
    if let Some(c) = new
        .conditions
        .iter()
        .find(|c| c.type_ == "ConflictDetected" && c.status == "True")
        && !was_halted
    {
        ctx.publish(
            Event {
                type_: EventType::Warning,
                reason: events::APPLIER_HALTED.into(),
                note: Some(c.message.clone()),
                action: "Observe".into(),
                secondary: None,
            },
            &pair.object_ref(&()),
        )
        .await;
    }
    Ok(())
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn blocked_reason(pair: &MySQLActiveActive) -> Option<String> {
    pair.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.reason.clone())
}

/// Publishes a Warning once per entry into a blocked state, and writes
/// the blocked status.
async fn block(
    pair: &MySQLActiveActive,
    ctx: &Context,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    if blocked_reason(pair).as_deref() != Some(reason) {
        ctx.publish(
            Event {
                type_: EventType::Warning,
                reason: reason.into(),
                note: Some(message.clone()),
                action: "Validate".into(),
                secondary: None,
            },
            &pair.object_ref(&()),
        )
        .await;
    }
    let outcome = Outcome {
        blocked: Some((reason.into(), message)),
        ..Default::default()
    };
    write_status(pair, ctx, status::build(pair, None, None, &outcome, now())).await?;
    Ok(Action::requeue(ctx.settings.observe_interval() * 4))
}

/// The reconcile of one pair.
pub async fn reconcile(pair: Arc<MySQLActiveActive>, ctx: Arc<Context>) -> Result<Action, Error> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("reconcile", reconcile_id = %id[..12], pair = %pair.name_any(), namespace = pair.namespace().unwrap_or_default());
    let started = Instant::now();
    let result = reconcile_inner(&pair, &ctx).instrument(span).await;
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    let kind = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.label().to_string(),
    };
    ctx.metrics
        .reconciles
        .get_or_create(&super::metrics::KindLabels { kind })
        .inc();
    if result.is_ok() {
        ctx.failures.lock().expect("failures").remove(&key(&pair));
    }
    result
}

fn key(pair: &MySQLActiveActive) -> String {
    format!(
        "{}/{}",
        pair.namespace().unwrap_or_default(),
        pair.name_any()
    )
}

async fn reconcile_inner(cached: &MySQLActiveActive, ctx: &Context) -> Result<Action, Error> {
    // Decisions read status (the designated writer): read it fresh, as the
    // watch cache may not have seen the status this operator just wrote.
    let api: Api<MySQLActiveActive> =
        Api::namespaced(ctx.client.clone(), &cached.namespace().unwrap_or_default());
    let Some(fresh) = api
        .get_opt(&cached.name_any())
        .await
        .map_err(kube("read"))?
    else {
        return Ok(Action::await_change());
    };
    let pair = &fresh;
    if pair.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the resource (ownerReferences); PVCs follow
        // spec.pvcRetentionPolicy through the StatefulSet.
        return Ok(Action::await_change());
    }
    // Validate: the same schema and rules as admission.
    let value = serde_json::to_value(pair).unwrap_or(Value::Null);
    if let Err(e) = crate::admission::admit(&value, None) {
        return block(pair, ctx, events::INVALID_SPEC, e.to_string()).await;
    }
    if let Err(e) = render::check_spec(pair) {
        return block(pair, ctx, events::INVALID_SPEC, e.to_string()).await;
    }
    let passwords = match credentials(pair, ctx).await? {
        Ok(p) => p,
        Err(message) => return block(pair, ctx, events::CREDENTIALS_MISSING, message).await,
    };
    let paused = pair.spec.paused;
    if !paused {
        let changed = match apply_objects(pair, ctx).await {
            Err(e @ Error::Refused { .. }) => {
                return block(pair, ctx, events::OBJECT_REFUSED, e.to_string()).await;
            }
            other => other?,
        };
        if changed > 0 {
            tracing::info!(changed, "applied owned objects");
            ctx.publish(
                Event {
                    type_: EventType::Normal,
                    reason: events::OBJECTS_APPLIED.into(),
                    note: Some(format!("{changed} object(s) created or updated")),
                    action: "Apply".into(),
                    secondary: None,
                },
                &pair.object_ref(&()),
            )
            .await;
        }
    }
    let cycle_started = (jiff::Timestamp::now(), Instant::now());
    let (observed, plan, acted) = pairloop::cycle(pair, ctx, &passwords, !paused).await?;
    let cycle_elapsed = cycle_started.1.elapsed();
    record_metrics(pair, ctx, &observed.facts);
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
    let step_error = match acted {
        Ok(done) => {
            outcome.skipped = done.skipped;
            if let Some((from, to)) = plan.failover {
                let names = Names::of(pair);
                let started = ctx
                    .writer_down_since
                    .lock()
                    .expect("writer_down_since")
                    .remove(&key(pair));
                let duration = started.map(|s| s.elapsed()).unwrap_or_default();
                ctx.metrics
                    .failovers
                    .get_or_create(&super::metrics::KindLabels {
                        kind: "promoted".into(),
                    })
                    .inc();
                outcome.failover = Some(crate::api::RoleChange {
                    from: names.pod(from),
                    to: names.pod(to),
                    reason: format!(
                        "{} was unreachable for at least {}s",
                        names.pod(from),
                        pair.spec.failover.detection_window_seconds
                    ),
                    started_at: Time(
                        jiff::Timestamp::now()
                            - jiff::SignedDuration::try_from(duration).unwrap_or_default(),
                    ),
                    duration_millis: duration.as_millis() as u64,
                    data_loss_accepted: done.data_loss_accepted,
                    request_id: None,
                    outcome: Some("Succeeded".into()),
                    message: String::new(),
                });
                ctx.metrics
                    .role_change_seconds
                    .get_or_create(&super::metrics::KindLabels {
                        kind: "failover".into(),
                    })
                    .observe(duration.as_secs_f64());
            }
            None
        }
        Err(e) => {
            outcome.failed = Some(("Step".into(), e.to_string()));
            Some(e)
        }
    };
    if !paused {
        outcome.switchover = switchover_record(
            pair,
            &plan,
            step_error.as_ref(),
            Time(cycle_started.0),
            cycle_elapsed,
        );
        if let Some(change) = &outcome.switchover {
            announce_switchover(pair, ctx, change, cycle_elapsed).await;
        }
        if step_error.is_none() && divergence::due(pair, jiff::Timestamp::now()) {
            let report = divergence::check(pair, &observed).await;
            divergence::announce(pair, ctx, &report).await;
            outcome.divergence = Some(report);
        }
    }
    write_status(
        pair,
        ctx,
        status::build(pair, Some(&observed.facts), Some(&plan), &outcome, now()),
    )
    .await?;
    match step_error {
        Some(e) => Err(e),
        None if outcome.acted => Ok(Action::requeue(Duration::from_millis(500))),
        None => Ok(Action::requeue(ctx.settings.observe_interval())),
    }
}

/// What status records of a pending switchover request after this cycle.
fn switchover_record(
    pair: &MySQLActiveActive,
    plan: &crate::topology::Plan,
    step_error: Option<&Error>,
    started_at: Time,
    elapsed: Duration,
) -> Option<crate::api::RoleChange> {
    use crate::topology::Switchover;
    let names = Names::of(pair);
    if let Some(Switchover::Rolling { from, to }) = plan.switchover {
        let (outcome, message) = match step_error {
            None => (
                "Succeeded",
                format!(
                    "{} takes writes; {} restarts onto the new configuration next",
                    names.pod(to),
                    names.pod(from)
                ),
            ),
            Some(e) => (
                "Failed",
                format!("{e}; {} stays the writer", names.pod(from)),
            ),
        };
        return Some(crate::api::RoleChange {
            from: names.pod(from),
            to: names.pod(to),
            reason: "rolling update: the writer's pod runs an older configuration".into(),
            started_at,
            duration_millis: elapsed.as_millis() as u64,
            data_loss_accepted: false,
            request_id: None,
            outcome: Some(outcome.into()),
            message,
        });
    }
    let (req, target) = pairloop::pending_switchover(pair)?;
    let writer = pair.status.as_ref().and_then(|s| s.writer.clone());
    let (from, to, outcome, message) = match (target, &plan.switchover) {
        (Err(why), _) => (
            writer.unwrap_or_default(),
            req.target.clone(),
            "Refused",
            why,
        ),
        (Ok(_), None | Some(Switchover::Rolling { .. })) => return None,
        (Ok(_), Some(Switchover::Refused(why))) => (
            writer.unwrap_or_default(),
            req.target.clone(),
            "Refused",
            why.clone(),
        ),
        (Ok(t), Some(Switchover::AlreadyWriter)) => (
            names.pod(t),
            names.pod(t),
            "Succeeded",
            format!("{} already takes writes", names.pod(t)),
        ),
        (Ok(_), Some(Switchover::Move { from, to })) => match step_error {
            None => (
                names.pod(*from),
                names.pod(*to),
                "Succeeded",
                format!(
                    "{} takes writes; {} replicates from it",
                    names.pod(*to),
                    names.pod(*from)
                ),
            ),
            Some(e) => (
                names.pod(*from),
                names.pod(*to),
                "Failed",
                format!("{e}; {} stays the writer", names.pod(*from)),
            ),
        },
    };
    Some(crate::api::RoleChange {
        from,
        to,
        reason: format!("switchover requested (requestId {})", req.request_id),
        started_at,
        duration_millis: if outcome == "Refused" {
            0
        } else {
            elapsed.as_millis() as u64
        },
        data_loss_accepted: false,
        request_id: Some(req.request_id.clone()),
        outcome: Some(outcome.into()),
        message,
    })
}

async fn announce_switchover(
    pair: &MySQLActiveActive,
    ctx: &Context,
    change: &crate::api::RoleChange,
    elapsed: Duration,
) {
    let outcome = change.outcome.clone().unwrap_or_default();
    ctx.metrics
        .switchovers
        .get_or_create(&super::metrics::KindLabels {
            kind: outcome.clone(),
        })
        .inc();
    if outcome == "Succeeded" && change.from != change.to {
        ctx.metrics
            .role_change_seconds
            .get_or_create(&super::metrics::KindLabels {
                kind: "switchover".into(),
            })
            .observe(elapsed.as_secs_f64());
    }
    tracing::info!(outcome = %outcome, from = %change.from, to = %change.to, detail = %change.message, "switchover answered");
    ctx.publish(
        Event {
            type_: if outcome == "Succeeded" {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: format!("Switchover{outcome}"),
            note: Some(change.message.clone()),
            action: "Switchover".into(),
            secondary: None,
        },
        &pair.object_ref(&()),
    )
    .await;
}

fn record_metrics(
    pair: &MySQLActiveActive,
    ctx: &Context,
    facts: &[crate::topology::NodeFacts; 2],
) {
    let names = Names::of(pair);
    for n in facts {
        let labels = super::metrics::NodeLabels {
            namespace: names.namespace.clone(),
            pair: names.pair.clone(),
            node: names.pod(n.ordinal),
        };
        let replica = n.server.as_ref().ok().and_then(|o| o.replica.as_ref());
        let yes = |s: Option<crate::mysql::ThreadState>| {
            i64::from(s == Some(crate::mysql::ThreadState::Yes))
        };
        ctx.metrics
            .io_running
            .get_or_create(&labels)
            .set(yes(replica.map(|r| r.io_running)));
        ctx.metrics
            .sql_running
            .get_or_create(&labels)
            .set(yes(replica.map(|r| r.sql_running)));
        ctx.metrics
            .lag_seconds
            .get_or_create(&labels)
            .set(replica.and_then(|r| r.seconds_behind_source).unwrap_or(-1));
        ctx.metrics
            .applier_halted
            .get_or_create(&labels)
            .set(i64::from(n.failure.is_some()));
    }
}

/// Back-off per pair: 1, 2, 4 ... 300 seconds.
pub fn error_policy(pair: Arc<MySQLActiveActive>, error: &Error, ctx: Arc<Context>) -> Action {
    let mut failures = ctx.failures.lock().expect("failures");
    let n = failures.entry(key(&pair)).or_insert(0);
    *n += 1;
    let delay = Duration::from_secs((1u64 << (*n).min(9)).min(300));
    tracing::warn!(pair = %key(&pair), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_apply_errors_are_refusals() {
        let cases = [
            (422, "StatefulSet.apps \"x\" is invalid", true),
            (400, "bad request", true),
            (
                500,
                "failed to convert new object (shop/orders; apps/v1, Kind=StatefulSet) to proper version",
                true,
            ),
            (500, "etcdserver: request timed out", false),
            (409, "conflict", false),
            (403, "forbidden", false),
            (503, "unavailable", false),
        ];
        for (code, message, want) in cases {
            assert_eq!(is_refusal(code, message), want, "{code} {message}");
        }
    }

    /// RFC 7386 application, to check the patches.
    fn apply(target: &Value, patch: &Value) -> Value {
        match (target.as_object(), patch.as_object()) {
            (_, None) => patch.clone(),
            (t, Some(p)) => {
                let mut out = t.cloned().unwrap_or_default();
                for (k, v) in p {
                    if v.is_null() {
                        out.remove(k);
                    } else {
                        let cur = out.get(k).cloned().unwrap_or(Value::Null);
                        out.insert(k.clone(), apply(&cur, v));
                    }
                }
                Value::Object(out)
            }
        }
    }

    #[test]
    fn merge_patches_remove_nested_keys_and_replace_arrays() {
        let cases = [
            (json!({"a": 1}), json!({"a": 2})),
            (json!({"a": 1, "b": 2}), json!({"a": 1})),
            (
                json!({"d": {"result": "Diverged", "divergedTables": ["app.t"]}}),
                json!({"d": {"result": "Consistent"}}),
            ),
            (json!({"n": [{"x": 1}, {"x": 2}]}), json!({"n": [{"x": 1}]})),
            (json!({}), json!({"w": "p-0", "c": {"k": [1]}})),
            (json!({"w": "p-0"}), json!({})),
        ];
        for (old, new) in cases {
            let patch = merge_patch(&old, &new);
            assert_eq!(apply(&old, &patch), new, "{old} -> {new} via {patch}");
        }
        assert_eq!(merge_patch(&json!({"a": 1}), &json!({"a": 1})), json!({}));
    }
}
