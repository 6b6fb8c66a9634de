//! Step `record` of the pair loop: status, Events on transitions, role
//! change records and metrics.
//!
//! Status is written by the pair loop only (one writer, no races), as a
//! JSON merge patch from what was last written. Under a write load the
//! executed GTID sets change at every observation; writing them each cycle
//! would cost a write per pair every few seconds. So a status whose only
//! news is positions (GTID sets, a lag that stays in its band) is written
//! at most once per [`REFRESH`]; anything else is written at once.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::super::context::Context;
use super::super::error::{Error, kube};
use super::super::events::Reason;
use super::super::metrics::{KindLabels, Metrics, NodeLabels};
use super::observe::pending_switchover;
use crate::api::{
    Durability, MySQLActiveActive, MySQLActiveActiveStatus, RoleChange, RoleChangeOutcome,
};
use crate::render::Names;
use crate::topology::{NodeFacts, Plan, Switchover};

/// The longest a status with only new positions waits to be written.
pub const REFRESH: Duration = Duration::from_secs(60);

/// Lag bands: a lag that moves within its band is a position, not news.
fn lag_band(lag: &Value) -> Value {
    match lag.as_i64() {
        None => Value::Null,
        Some(l) if l < 5 => json!("0-4s"),
        Some(l) if l < 30 => json!("5-29s"),
        Some(l) if l < 300 => json!("30-299s"),
        Some(_) => json!("300s+"),
    }
}

/// `status` with its positions masked: GTID sets blanked, lags in bands.
pub fn settled_view(status: &Value) -> Value {
    let mut v = status.clone();
    if let Some(l) = v.get_mut("lagSeconds") {
        *l = lag_band(l);
    }
    if let Some(nodes) = v.get_mut("nodes").and_then(Value::as_array_mut) {
        for n in nodes {
            if let Some(s) = n.get_mut("executedGtidSet") {
                *s = json!("(position)");
            }
            if let Some(r) = n.get_mut("replication") {
                if let Some(s) = r.get_mut("retrievedGtidSet") {
                    *s = json!("(position)");
                }
                if let Some(l) = r.get_mut("secondsBehindSource") {
                    *l = lag_band(l);
                }
            }
        }
    }
    v
}

/// Why a status is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteWhy {
    /// Something besides positions changed.
    Changed,
    /// Only positions changed, and the last write is [`REFRESH`] old.
    Refresh,
}

impl WriteWhy {
    fn label(self) -> &'static str {
        match self {
            WriteWhy::Changed => "changed",
            WriteWhy::Refresh => "refresh",
        }
    }
}

/// Whether to write `new` when `written` was written `age` ago. Pure.
pub fn should_write(written: &Value, new: &Value, age: Duration) -> Option<WriteWhy> {
    if written == new {
        None
    } else if settled_view(written) != settled_view(new) {
        Some(WriteWhy::Changed)
    } else if age >= REFRESH {
        Some(WriteWhy::Refresh)
    } else {
        None
    }
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
pub fn status_patch(old: &Value, new: &Value) -> Value {
    json!({ "status": merge_patch(old, new) })
}

/// Writes `new` as a merge patch from `written` (what the API server
/// has); returns whether it wrote.
pub async fn write_status(
    ctx: &Context,
    pair: &MySQLActiveActive,
    written: &Value,
    new: &MySQLActiveActiveStatus,
    age: Duration,
) -> Result<Option<Value>, Error> {
    let new_v = serde_json::to_value(new).map_err(Error::encode)?;
    let Some(why) = should_write(written, &new_v, age) else {
        return Ok(None);
    };
    let names = Names::of(pair);
    let api: Api<MySQLActiveActive> = Api::namespaced(ctx.client.clone(), &names.namespace);
    api.patch_status(
        &names.pair,
        &PatchParams::default(),
        &Patch::Merge(status_patch(written, &new_v)),
    )
    .await
    .map_err(kube(
        "record",
        format!(
            "MySQLActiveActive {}/{} status",
            names.namespace, names.pair
        ),
    ))?;
    Metrics::count(&ctx.metrics.status_writes, why.label());
    Ok(Some(new_v))
}

/// Events for news in status: errant transactions found, a durability
/// change, an applier halted.
pub async fn announce_transitions(
    ctx: &Context,
    pair: &MySQLActiveActive,
    old: &MySQLActiveActiveStatus,
    new: &MySQLActiveActiveStatus,
) {
    for n in &new.nodes {
        let had = old
            .nodes
            .iter()
            .any(|o| o.name == n.name && o.errant_gtid_set.is_some());
        if let (Some(set), false) = (&n.errant_gtid_set, had) {
            ctx.publish(
                pair,
                Reason::ErrantTransactions,
                format!(
                    "{} executed transactions the writer does not have: {set}; it will not be promoted",
                    n.name
                ),
            )
            .await;
        }
    }
    if new.durability != old.durability
        && let Some(d) = new.durability
        && old.durability.is_some()
    {
        ctx.publish_typed(
            pair,
            Reason::DurabilityChanged,
            Reason::DurabilityChanged.type_for(d == Durability::AsynchronousFallback),
            format!("commits are now {d}"),
        )
        .await;
    }
    let halted = |s: &MySQLActiveActiveStatus| {
        s.conditions
            .iter()
            .find(|c| {
                c.type_ == "ConflictDetected" && c.status == "True" && c.reason == "ApplierHalted"
            })
            .map(|c| c.message.clone())
    };
    if let (Some(message), None) = (halted(new), halted(old)) {
        ctx.publish(pair, Reason::ApplierHalted, message).await;
    }
    let lagging = |s: &MySQLActiveActiveStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Lagging" && c.status == "True")
            .map(|c| c.message.clone())
    };
    if let (Some(message), None) = (lagging(new), lagging(old)) {
        ctx.publish(pair, Reason::ReplicaLagging, message).await;
    }
}

/// The record of an automatic failover this cycle carried out.
/// What the old writer had executed when last observed (`history`) that
/// the candidate (`candidate`, as observed before its promotion) had
/// neither executed nor received; `None` when nothing. Pure.
pub fn unreceived(
    flavor: crate::mysql::Flavor,
    history: &str,
    candidate: &crate::mysql::Observation,
) -> Option<String> {
    let retrieved = candidate
        .replica
        .as_ref()
        .map(|r| r.retrieved_gtid_set.as_str())
        .unwrap_or_default();
    use crate::mysql::gtid::missing;
    let lost: Vec<String> = missing(flavor, &candidate.gtid_executed, history)
        .into_iter()
        .flat_map(|p| {
            if retrieved.is_empty() {
                vec![p]
            } else {
                missing(flavor, retrieved, &p.text)
            }
        })
        .map(|p| p.text)
        .collect();
    (!lost.is_empty()).then(|| lost.join(","))
}

/// The record of a failover from `from` to `to`; `lost`: see
/// [`unreceived`].
pub fn failover_record(
    pair: &MySQLActiveActive,
    (from, to): (u32, u32),
    down_for: Duration,
    data_loss_accepted: bool,
    lost: Option<String>,
) -> RoleChange {
    let names = Names::of(pair);
    let message = lost.as_ref().map_or_else(String::new, |set| {
        format!(
            "{} never received transactions {set} of {}: lost unless {} comes back",
            names.pod(to),
            names.pod(from),
            names.pod(from)
        )
    });
    RoleChange {
        from: names.pod(from),
        to: names.pod(to),
        reason: format!(
            "{} was unreachable for at least {}s",
            names.pod(from),
            pair.spec.failover.detection_window_seconds
        ),
        started_at: Time(
            jiff::Timestamp::now() - jiff::SignedDuration::try_from(down_for).unwrap_or_default(),
        ),
        duration_millis: down_for.as_millis() as u64,
        data_loss_accepted,
        lost_gtid_set: lost,
        request_id: None,
        outcome: Some(RoleChangeOutcome::Succeeded),
        message,
    }
}

/// What status records of a pending switchover request after this cycle.
pub fn switchover_record(
    pair: &MySQLActiveActive,
    plan: &Plan,
    step_error: Option<&Error>,
    started_at: Time,
    elapsed: Duration,
) -> Option<RoleChange> {
    let names = Names::of(pair);
    if let Some(Switchover::Rolling { from, to }) = plan.switchover {
        let (outcome, message) = match step_error {
            None => (
                RoleChangeOutcome::Succeeded,
                format!(
                    "{} takes writes; {} restarts onto the new configuration next",
                    names.pod(to),
                    names.pod(from)
                ),
            ),
            Some(e) => (
                RoleChangeOutcome::Failed,
                format!("{e}; {} stays the writer", names.pod(from)),
            ),
        };
        return Some(RoleChange {
            from: names.pod(from),
            to: names.pod(to),
            reason: "rolling update: the writer's pod runs an older configuration".into(),
            started_at,
            duration_millis: elapsed.as_millis() as u64,
            data_loss_accepted: false,
            lost_gtid_set: None,
            request_id: None,
            outcome: Some(outcome),
            message,
        });
    }
    let (req, target) = pending_switchover(pair)?;
    let writer = pair.status.as_ref().and_then(|s| s.writer.clone());
    let (from, to, outcome, message) = match (target, &plan.switchover) {
        (Err(why), _) => (
            writer.unwrap_or_default(),
            req.target.clone(),
            RoleChangeOutcome::Refused,
            why,
        ),
        (Ok(_), None | Some(Switchover::Rolling { .. })) => return None,
        (Ok(_), Some(Switchover::Refused(why))) => (
            writer.unwrap_or_default(),
            req.target.clone(),
            RoleChangeOutcome::Refused,
            why.clone(),
        ),
        (Ok(t), Some(Switchover::AlreadyWriter)) => (
            names.pod(t),
            names.pod(t),
            RoleChangeOutcome::Succeeded,
            format!("{} already takes writes", names.pod(t)),
        ),
        (Ok(_), Some(Switchover::Move { from, to })) => match step_error {
            None => (
                names.pod(*from),
                names.pod(*to),
                RoleChangeOutcome::Succeeded,
                format!(
                    "{} takes writes; {} replicates from it",
                    names.pod(*to),
                    names.pod(*from)
                ),
            ),
            Some(e) => (
                names.pod(*from),
                names.pod(*to),
                RoleChangeOutcome::Failed,
                format!("{e}; {} stays the writer", names.pod(*from)),
            ),
        },
    };
    Some(RoleChange {
        from,
        to,
        reason: format!("switchover requested (requestId {})", req.request_id),
        started_at,
        duration_millis: if outcome == RoleChangeOutcome::Refused {
            0
        } else {
            elapsed.as_millis() as u64
        },
        data_loss_accepted: false,
        lost_gtid_set: None,
        request_id: Some(req.request_id.clone()),
        outcome: Some(outcome),
        message,
    })
}

/// The switchover's Event and metrics.
pub async fn announce_switchover(
    ctx: &Context,
    pair: &MySQLActiveActive,
    change: &RoleChange,
    elapsed: Duration,
) {
    let outcome = change.outcome.unwrap_or(RoleChangeOutcome::Failed);
    Metrics::count(&ctx.metrics.switchovers, outcome.as_str());
    if outcome == RoleChangeOutcome::Succeeded && change.from != change.to {
        ctx.metrics
            .role_change_seconds
            .get_or_create(&KindLabels {
                kind: "switchover".into(),
            })
            .observe(elapsed.as_secs_f64());
    }
    tracing::info!(outcome = %outcome, from = %change.from, to = %change.to, detail = %change.message, "switchover answered");
    let reason = match outcome {
        RoleChangeOutcome::Succeeded => Reason::SwitchoverSucceeded,
        RoleChangeOutcome::Refused => Reason::SwitchoverRefused,
        RoleChangeOutcome::Failed => Reason::SwitchoverFailed,
    };
    ctx.publish(pair, reason, change.message.clone()).await;
}

/// The per-node gauges.
pub fn record_metrics(ctx: &Context, pair: &MySQLActiveActive, facts: &[NodeFacts; 2]) {
    let names = Names::of(pair);
    for n in facts {
        let labels = NodeLabels {
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
        // Born at 0, so the first skip is an increase.
        let _ = ctx.metrics.skipped_transactions.get_or_create(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_failover_loses_is_what_the_candidate_never_received() {
        use crate::mysql::Flavor;
        use crate::topology::testkit::{U0, node, obs};
        let candidate = |executed: &str, received: &str| {
            let mut n = node(1).wired().gtids(executed).build();
            obs(&mut n).replica.as_mut().unwrap().retrieved_gtid_set = received.into();
            obs(&mut n).clone()
        };
        let history = format!("{U0}:1-10");
        let cases = [
            // Received everything (SemiSync): nothing lost, even unapplied.
            (format!("{U0}:1-5"), format!("{U0}:1-10"), None),
            // Async: 9 and 10 never arrived.
            (
                format!("{U0}:1-5"),
                format!("{U0}:1-8"),
                Some(format!("{U0}:9-10")),
            ),
            // Applied all, nothing retrieved on this channel.
            (format!("{U0}:1-10"), String::new(), None),
            (
                format!("{U0}:1-7"),
                String::new(),
                Some(format!("{U0}:8-10")),
            ),
        ];
        for (executed, received, want) in cases {
            assert_eq!(
                unreceived(Flavor::MySQL, &history, &candidate(&executed, &received)),
                want,
                "{executed} + {received}"
            );
        }
    }

    fn pair(target: &str, request: &str, answered: Option<&str>) -> MySQLActiveActive {
        let mut p = crate::admission::admit(
            &json!({
                "apiVersion": "mysql-aa.io/v1alpha1",
                "kind": "MySQLActiveActive",
                "metadata": {"name": "orders", "namespace": "shop"},
                "spec": {"engine": "MySQL", "switchover": {"target": target, "requestId": request}}
            }),
            None,
        )
        .expect("a valid pair");
        p.status = Some(MySQLActiveActiveStatus {
            writer: Some("orders-0".into()),
            answered_switchover_request: answered.map(str::to_string),
            ..Default::default()
        });
        p
    }

    fn plan(switchover: Option<Switchover>) -> Plan {
        Plan {
            switchover,
            ..Default::default()
        }
    }

    fn record(p: &MySQLActiveActive, plan: &Plan, error: Option<&Error>) -> Option<RoleChange> {
        switchover_record(
            p,
            plan,
            error,
            Time(jiff::Timestamp::UNIX_EPOCH),
            Duration::from_millis(700),
        )
    }

    #[test]
    fn switchover_requests_are_answered_once_with_their_outcome() {
        let moved = plan(Some(Switchover::Move { from: 0, to: 1 }));
        let done = record(&pair("orders-1", "r1", None), &moved, None).expect("answered");
        assert_eq!(done.outcome, Some(RoleChangeOutcome::Succeeded));
        assert_eq!(
            (done.from.as_str(), done.to.as_str()),
            ("orders-0", "orders-1")
        );
        assert_eq!(done.request_id.as_deref(), Some("r1"));
        assert_eq!(done.duration_millis, 700);

        let failed_step = Error::NoAddress {
            step: "WriterCaughtUp",
            node: 1,
        };
        let failed =
            record(&pair("orders-1", "r1", None), &moved, Some(&failed_step)).expect("answered");
        assert_eq!(failed.outcome, Some(RoleChangeOutcome::Failed));
        assert!(
            failed.message.ends_with("orders-0 stays the writer"),
            "{}",
            failed.message
        );

        let refused = record(
            &pair("orders-1", "r2", None),
            &plan(Some(Switchover::Refused("ordinal 1 is 9s behind".into()))),
            None,
        )
        .expect("answered");
        assert_eq!(refused.outcome, Some(RoleChangeOutcome::Refused));
        assert_eq!(refused.duration_millis, 0);
        assert_eq!(refused.message, "ordinal 1 is 9s behind");

        let elsewhere =
            record(&pair("inventory-1", "r3", None), &plan(None), None).expect("answered");
        assert_eq!(elsewhere.outcome, Some(RoleChangeOutcome::Refused));
        assert!(
            elsewhere.message.contains("is not a pod of this pair"),
            "{}",
            elsewhere.message
        );

        let already = record(
            &pair("orders-0", "r4", None),
            &plan(Some(Switchover::AlreadyWriter)),
            None,
        )
        .expect("answered");
        assert_eq!(already.outcome, Some(RoleChangeOutcome::Succeeded));
        assert_eq!(already.from, already.to);

        assert_eq!(
            record(&pair("orders-1", "r1", Some("r1")), &moved, None),
            None,
            "answered before"
        );
    }

    #[test]
    fn a_rolling_switchover_is_recorded_without_a_request() {
        let p = pair("orders-1", "r1", Some("r1"));
        let rolled = record(
            &p,
            &plan(Some(Switchover::Rolling { from: 0, to: 1 })),
            None,
        )
        .expect("recorded");
        assert_eq!(rolled.request_id, None);
        assert_eq!(rolled.outcome, Some(RoleChangeOutcome::Succeeded));
        assert!(rolled.reason.contains("rolling update"));
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

    /// Under a write load the executed sets move at every observation:
    /// status is written at once for news, at most once per REFRESH for
    /// positions only.
    #[test]
    fn positions_alone_are_written_at_most_once_a_minute() {
        let status = |gtid: &str, lag: i64, writer: &str| {
            json!({"writer": writer, "lagSeconds": lag, "nodes": [
                {"name": "p-0", "executedGtidSet": gtid,
                 "replication": {"ioRunning": "Yes", "secondsBehindSource": lag, "retrievedGtidSet": gtid}},
            ]})
        };
        let written = status("u:1-10", 0, "p-0");
        let young = Duration::from_secs(5);
        let old = REFRESH;
        let rows = [
            ("nothing new", status("u:1-10", 0, "p-0"), young, None),
            ("positions moved", status("u:1-900", 1, "p-0"), young, None),
            (
                "positions moved, a minute later",
                status("u:1-900", 1, "p-0"),
                old,
                Some(WriteWhy::Refresh),
            ),
            (
                "lag left its band",
                status("u:1-900", 40, "p-0"),
                young,
                Some(WriteWhy::Changed),
            ),
            (
                "the writer moved",
                status("u:1-10", 0, "p-1"),
                young,
                Some(WriteWhy::Changed),
            ),
        ];
        for (what, new, age, want) in rows {
            assert_eq!(should_write(&written, &new, age), want, "{what}");
        }
        let stopped = json!({"writer": "p-0", "lagSeconds": 0, "nodes": [
            {"name": "p-0", "executedGtidSet": "u:1-10",
             "replication": {"ioRunning": "No", "secondsBehindSource": 0, "retrievedGtidSet": "u:1-10"}},
        ]});
        assert_eq!(
            should_write(&written, &stopped, young),
            Some(WriteWhy::Changed)
        );
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
