//! Status from what a cycle observed and did. Pure.
//!
//! Conditions (kstatus): `Ready` is always present; `Replicating`,
//! `WriterAvailable`, `Degraded` and `ConflictDetected` follow. Each
//! carries the generation it was computed from; a condition's
//! `lastTransitionTime` changes only when its status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{
    Durability, DurabilityMode, MySQLActiveActiveStatus, NodeRole, NodeStatus, ReplicationStatus,
    SkippedTransaction, ThreadStatus, WriteMode,
};
use crate::render::mycnf;
use crate::topology::{NodeFacts, Plan};

/// Most skipped transactions kept in status.
pub const MAX_SKIPPED: usize = 20;

/// What the cycle did besides observing.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Why the pipeline stopped before the pair loop, if it did
    /// (reason, message): `CredentialsMissing`, `InvalidSpec`, `Paused`.
    pub blocked: Option<(String, String)>,
    /// A step that failed (step name, message).
    pub failed: Option<(String, String)>,
    /// Whether any step ran (the pair is changing).
    pub acted: bool,
    /// Transactions skipped this cycle.
    pub skipped: Vec<SkippedTransaction>,
    /// An automatic failover completed this cycle.
    pub failover: Option<crate::api::RoleChange>,
    /// A switchover request answered this cycle.
    pub switchover: Option<crate::api::RoleChange>,
    /// A divergence check that ran this cycle.
    pub divergence: Option<crate::api::DivergenceReport>,
    /// The writer epoch a step claimed this cycle.
    pub epoch: Option<u64>,
    /// `status.staleReplica` as a step wrote it this cycle (`Some(None)`:
    /// removed).
    pub stale: Option<Option<crate::api::StaleReplica>>,
    /// The re-seed running or last finished, as the loop knows it (`None`:
    /// status keeps what it had).
    pub seed: Option<crate::api::SeedStatus>,
    /// What an epoch claim of this cycle wrote besides the epoch.
    pub claim: Option<Claim>,
    /// The plan stopped early (the spec changed): a change it claimed is
    /// not done.
    pub superseded: bool,
}

/// What an epoch claim wrote in status besides the epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claim {
    /// `status.writer`: the new writer.
    pub writer: String,
    /// `status.pendingRoleChange` (`None`: removed, or none).
    pub pending: Option<crate::api::PendingRoleChange>,
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    old: &[Condition],
    now: &Time,
) -> Condition {
    let status = if ok { "True" } else { "False" }.to_string();
    let last = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: last,
    }
}

/// Problems, as one message.
fn problems(p: &[crate::topology::Problem]) -> String {
    p.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A thread's state as status spells it.
pub fn thread_status(t: crate::mysql::ThreadState) -> ThreadStatus {
    match t {
        crate::mysql::ThreadState::Yes => ThreadStatus::Yes,
        crate::mysql::ThreadState::No => ThreadStatus::No,
        crate::mysql::ThreadState::Connecting => ThreadStatus::Connecting,
    }
}

/// Per-node status.
pub fn node_status(
    pair_name: &str,
    spec: &crate::api::MySQLActiveActiveSpec,
    n: &NodeFacts,
    plan: &Plan,
    mode: WriteMode,
    previous: Option<&NodeStatus>,
) -> NodeStatus {
    let writer = plan.writer;
    // What identifies a node and its data is kept from the last successful
    // observation while it cannot be asked (a failover judges the candidate
    // against the lost writer's last executed set).
    let last = |f: fn(&NodeStatus) -> Option<String>| previous.and_then(f);
    let o = n.server.as_ref().ok();
    let role = match (mode, writer, n.reachable()) {
        (_, _, false) => NodeRole::Unknown,
        (WriteMode::MultiWriter, _, true) => NodeRole::Writer,
        (WriteMode::SingleWriter, Some(w), true) if w == n.ordinal => NodeRole::Writer,
        _ => NodeRole::Replica,
    };
    NodeStatus {
        name: format!("{pair_name}-{}", n.ordinal),
        ordinal: n.ordinal,
        server_id: o
            .map(|o| o.info.server_id)
            .or(Some(mycnf::server_id(spec, n.ordinal))),
        auto_increment_offset: Some(mycnf::auto_increment_offset(n.ordinal)),
        role: Some(role),
        reachable: n.reachable(),
        read_only: o.map(|o| o.read_only),
        super_read_only: o.and_then(|o| o.super_read_only),
        server_uuid: match o {
            Some(o) => o.info.server_uuid.clone(),
            None => last(|p| p.server_uuid.clone()),
        },
        version: match o {
            Some(o) => Some(o.info.version_string.clone()),
            None => last(|p| p.version.clone()),
        },
        errant_gtid_set: plan
            .health
            .errant
            .as_ref()
            .filter(|(e, _)| *e == n.ordinal)
            .map(|(_, set)| set.clone()),
        semi_sync_source_active: o.and_then(|o| o.semi_sync.map(|s| s.acknowledging())),
        executed_gtid_set: match o {
            Some(o) => Some(o.gtid_executed.clone()),
            None => last(|p| p.executed_gtid_set.clone()),
        },
        replication: o
            .and_then(|o| o.replica.as_ref())
            .map(|r| ReplicationStatus {
                source_host: Some(r.source_host.clone()),
                io_running: thread_status(r.io_running),
                sql_running: thread_status(r.sql_running),
                last_io_errno: r.last_io_errno,
                last_io_error: r.last_io_error.clone(),
                last_sql_errno: r.last_sql_errno,
                last_sql_error: r.last_sql_error.clone(),
                seconds_behind_source: r.seconds_behind_source,
                retrieved_gtid_set: Some(r.retrieved_gtid_set.clone()).filter(|s| !s.is_empty()),
            }),
    }
}

/// `status.pendingRoleChange` after a cycle: the change claimed this
/// cycle, or the one recorded before; removed once a cycle with no failed
/// step, not cut short, leaves its new writer the writer (every step of
/// the change ran),
/// and when a step failed in the cycle that claimed it (status keeps the
/// old writer then).
fn pending_role_change(
    old: Option<crate::api::PendingRoleChange>,
    outcome: &Outcome,
    writer: Option<&str>,
) -> Option<crate::api::PendingRoleChange> {
    if outcome.failed.is_some() {
        return old;
    }
    let pending = match &outcome.claim {
        Some(c) => c.pending.clone(),
        None => old,
    };
    pending.filter(|p| outcome.superseded || writer != Some(p.to.as_str()))
}

/// Effective durability of commits (`status.durability`).
pub fn durability(
    pair: &crate::api::MySQLActiveActive,
    facts: &[NodeFacts; 2],
    plan: &Plan,
    stale: bool,
) -> Durability {
    if pair.spec.durability() == DurabilityMode::Async {
        return Durability::Asynchronous;
    }
    if stale {
        return Durability::AsynchronousFallback;
    }
    let semi = plan
        .writer
        .and_then(|w| facts[w as usize % 2].server.as_ref().ok())
        .and_then(|o| o.semi_sync);
    match semi {
        Some(s) if s.acknowledging() => Durability::SemiSynchronous,
        Some(s) if s.enabled => Durability::WaitingForReplica,
        // Not waiting yet (the plan turns it on) or not loaded yet (the pods
        // still run the Async configuration): commits do not wait.
        _ => Durability::AsynchronousFallback,
    }
}

/// The whole status.
pub fn build(
    pair: &crate::api::MySQLActiveActive,
    facts: Option<&[NodeFacts; 2]>,
    plan: Option<&Plan>,
    outcome: &Outcome,
    now: Time,
) -> MySQLActiveActiveStatus {
    let name = pair.metadata.name.clone().unwrap_or_default();
    let generation = pair.metadata.generation;
    let old = pair.status.clone().unwrap_or_default();
    let oc = &old.conditions;
    let mut status = MySQLActiveActiveStatus {
        observed_generation: generation,
        last_failover: outcome.failover.clone().or(old.last_failover.clone()),
        last_switchover: outcome.switchover.clone().or(old.last_switchover.clone()),
        answered_switchover_request: outcome
            .switchover
            .as_ref()
            .and_then(|c| c.request_id.clone())
            .or(old.answered_switchover_request.clone()),
        divergence: outcome.divergence.clone().or(old.divergence.clone()),
        seed: outcome.seed.clone().or(old.seed.clone()),
        answered_reseed_request: outcome
            .seed
            .as_ref()
            .and_then(|s| s.request_id.clone())
            .or(old.answered_reseed_request.clone()),
        skipped_transactions: old.skipped_transactions.clone(),
        writer_epoch: outcome.epoch.unwrap_or(old.writer_epoch),
        stale_replica: outcome.stale.clone().unwrap_or(old.stale_replica.clone()),
        pending_role_change: old.pending_role_change.clone(),
        initialized_at: old.initialized_at.clone(),
        ..Default::default()
    };
    status
        .skipped_transactions
        .extend(outcome.skipped.iter().cloned());
    let excess = status
        .skipped_transactions
        .len()
        .saturating_sub(MAX_SKIPPED);
    status.skipped_transactions.drain(..excess);

    let (Some(facts), Some(plan)) = (facts, plan) else {
        let (reason, message) = outcome
            .blocked
            .clone()
            .unwrap_or(("Reconciling".into(), "not observed yet".into()));
        status.conditions = vec![condition(
            "Ready", false, &reason, message, generation, oc, &now,
        )];
        status.writer = old.writer;
        status.nodes = old.nodes;
        return status;
    };
    let h = &plan.health;
    status.nodes = facts
        .iter()
        .map(|n| {
            let previous = old.nodes.iter().find(|p| p.ordinal == n.ordinal);
            node_status(&name, &pair.spec, n, plan, pair.spec.write_mode, previous)
        })
        .collect();
    // The designated writer stays recorded while it is unreachable (until a
    // failover names another): it is what the next cycle measures against.
    // A plan whose step failed did not happen: the writer stays recorded
    // (a change this cycle claimed is given up; one claimed earlier stays
    // pending, and the next cycle finishes it).
    status.writer = match pair.spec.write_mode {
        WriteMode::SingleWriter if outcome.failed.is_some() => old.writer.clone(),
        WriteMode::SingleWriter => plan
            .writer
            .map(|w| format!("{name}-{w}"))
            .or(old.writer.clone()),
        WriteMode::MultiWriter => None,
    };
    status.pending_role_change = pending_role_change(
        old.pending_role_change.clone(),
        outcome,
        status.writer.as_deref(),
    );
    status.durability = Some(durability(
        pair,
        facts,
        plan,
        status.stale_replica.is_some(),
    ));
    if let Some(o) = facts.iter().find_map(|n| n.server.as_ref().ok()) {
        status.engine = Some(o.info.flavor.to_string());
        status.version = Some(o.info.version.to_string());
    }
    let lags: Vec<Option<i64>> = facts
        .iter()
        .map(|n| {
            n.server
                .as_ref()
                .ok()
                .and_then(|o| o.replica.as_ref())
                .filter(|r| r.running())
                .and_then(|r| r.seconds_behind_source)
        })
        .collect();
    status.lag_seconds = if lags.iter().all(Option::is_some) {
        lags.iter().flatten().max().copied()
    } else {
        None
    };

    let halted_msg = h
        .halted
        .iter()
        .map(|(n, f)| {
            format!(
                "{name}-{n} stopped on {} (error {}: {})",
                f.gtid, f.errno, f.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let diverged = status
        .divergence
        .as_ref()
        .filter(|d| !d.diverged_tables.is_empty())
        .map(|d| {
            format!(
                "the last divergence check found tables that differ between the nodes: {}",
                d.diverged_tables.join(", ")
            )
        });
    let degraded = !h.degraded.is_empty() || !h.halted.is_empty();
    let (ready, reason, message) = if let Some((reason, msg)) = &outcome.blocked {
        (false, reason.clone(), msg.clone())
    } else if let Some((step, msg)) = &outcome.failed {
        (false, format!("{step}Failed"), msg.clone())
    } else if !h.halted.is_empty() {
        (false, "ReplicationHalted".to_string(), halted_msg.clone())
    } else if pair.spec.write_mode == WriteMode::SingleWriter && plan.writer.is_none() {
        (
            false,
            "NoWriter".to_string(),
            h.no_writer_reason
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        )
    } else if outcome.acted || !plan.steps.is_empty() {
        (
            false,
            "Reconciling".to_string(),
            "the operator is changing the pair".to_string(),
        )
    } else if !h.replicating || !h.writer_available || degraded {
        let mut why: Vec<String> = h.degraded.iter().map(ToString::to_string).collect();
        if !h.replicating {
            why.push("replication does not run in both directions".into());
        }
        if !h.writer_available {
            why.push("no writer takes writes".into());
        }
        (false, "Degraded".to_string(), why.join("; "))
    } else {
        (
            true,
            "PairReady".to_string(),
            "both nodes replicate and the writer takes writes".to_string(),
        )
    };
    if ready && status.initialized_at.is_none() {
        status.initialized_at = Some(now.clone());
    }
    let writer_msg = match (
        pair.spec.write_mode,
        plan.writer.map(|w| format!("{name}-{w}")),
    ) {
        (WriteMode::SingleWriter, Some(w)) => format!("{w} takes writes"),
        (WriteMode::SingleWriter, None) => h
            .no_writer_reason
            .as_ref()
            .map_or_else(|| "no writer".into(), ToString::to_string),
        (WriteMode::MultiWriter, _) => "both nodes take writes".into(),
    };
    status.conditions = vec![
        condition("Ready", ready, &reason, message, generation, oc, &now),
        condition(
            "Replicating",
            h.replicating,
            if h.replicating {
                "BothDirections"
            } else {
                "NotReplicating"
            },
            if h.replicating {
                "both nodes replicate from each other".into()
            } else {
                "a replication channel is not running".into()
            },
            generation,
            oc,
            &now,
        ),
        condition(
            "WriterAvailable",
            h.writer_available,
            if h.writer_available {
                "WriterReady"
            } else {
                "WriterUnavailable"
            },
            writer_msg,
            generation,
            oc,
            &now,
        ),
        condition(
            "Degraded",
            degraded,
            if degraded { "NodeProblems" } else { "Healthy" },
            if degraded {
                [problems(&h.degraded), halted_msg.clone()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                String::new()
            },
            generation,
            oc,
            &now,
        ),
        condition(
            "ConflictDetected",
            !h.halted.is_empty() || diverged.is_some(),
            match (h.halted.is_empty(), &diverged) {
                (false, _) => "ApplierHalted",
                (true, Some(_)) => "TablesDiverged",
                (true, None) => "NoConflict",
            },
            [Some(halted_msg), diverged]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            generation,
            oc,
            &now,
        ),
    ];
    // Conditions that are True while a problem is found, with its text.
    let found = [
        (
            ("Lagging", "AboveThreshold", "WithinThreshold"),
            lagging(&status.nodes, pair.spec.replication.lag_threshold_seconds),
        ),
        (
            ("VersionMismatch", "VersionsDiffer", "SameVersion"),
            version_skew(&status.nodes, facts),
        ),
    ];
    for ((type_, when_found, otherwise), problem) in found {
        let reason = if problem.is_some() {
            when_found
        } else {
            otherwise
        };
        status.conditions.push(condition(
            type_,
            problem.is_some(),
            reason,
            problem.unwrap_or_default(),
            generation,
            oc,
            &now,
        ));
    }
    status
}

/// Which replicas are more than `threshold` seconds behind their source,
/// and by how much; `None` when none is (a channel that does not run has
/// no lag to tell: `Replicating` reports it). Pure.
pub fn lagging(nodes: &[NodeStatus], threshold: u32) -> Option<String> {
    let behind: Vec<String> = nodes
        .iter()
        .filter_map(|n| {
            let lag = n.replication.as_ref()?.seconds_behind_source?;
            (lag > i64::from(threshold)).then(|| format!("{} is {lag} s behind its source", n.name))
        })
        .collect();
    (!behind.is_empty()).then(|| {
        format!(
            "{} (spec.replication.lagThresholdSeconds: {threshold})",
            behind.join("; ")
        )
    })
}

/// Why the nodes run different server versions outside a rolling update
/// (a pod that runs an older template is being rolled: a difference is
/// expected then); `None` when they agree, or one is not known. Pure.
pub fn version_skew(nodes: &[NodeStatus], facts: &[NodeFacts; 2]) -> Option<String> {
    if facts.iter().any(|f| f.outdated) {
        return None;
    }
    let versions: Vec<(&str, &str)> = nodes
        .iter()
        .filter_map(|n| Some((n.name.as_str(), n.version.as_deref()?)))
        .collect();
    match versions.as_slice() {
        [(a, va), (b, vb)] if va != vb => Some(format!(
            "{a} runs {va} and {b} runs {vb}, outside a rolling update: replication between versions is supported only from the older to the newer; run the same version on both (spec.image)"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MySQLActiveActive, NodeRole};
    use crate::topology::testkit::{U0, input, node, obs};
    use crate::topology::{Role, decide};
    use serde_json::json;

    fn pair(status: Option<MySQLActiveActiveStatus>) -> MySQLActiveActive {
        let mut p = crate::admission::admit(
            &json!({
                "apiVersion": "mysql-aa.io/v1alpha1",
                "kind": "MySQLActiveActive",
                "metadata": {"name": "orders", "namespace": "shop", "generation": 3},
                "spec": {"engine": "MySQL"}
            }),
            None,
        )
        .expect("a valid pair");
        p.metadata.generation = Some(3);
        p.status = status;
        p
    }

    #[test]
    fn replicas_above_the_lag_threshold_are_reported() {
        let node = |i: u32, lag: Option<Option<i64>>| NodeStatus {
            name: format!("orders-{i}"),
            ordinal: i,
            replication: lag.map(|l| crate::api::ReplicationStatus {
                seconds_behind_source: l,
                ..Default::default()
            }),
            ..NodeStatus::default()
        };
        // (what, nodes, reported, names)
        let rows = [
            (
                "within",
                vec![node(0, Some(Some(0))), node(1, Some(Some(30)))],
                None,
            ),
            (
                "above",
                vec![node(0, Some(Some(0))), node(1, Some(Some(31)))],
                Some("orders-1 is 31 s behind"),
            ),
            (
                "unknown lag",
                vec![node(0, Some(None)), node(1, None)],
                None,
            ),
        ];
        for (what, nodes, want) in rows {
            let got = lagging(&nodes, 30);
            assert_eq!(got.is_some(), want.is_some(), "{what}: {got:?}");
            if let (Some(g), Some(w)) = (got, want) {
                assert!(
                    g.contains(w) && g.contains("lagThresholdSeconds: 30"),
                    "{g}"
                );
            }
        }
    }

    #[test]
    fn versions_differing_outside_a_rolling_update_are_reported() {
        let nodes = |a: Option<&str>, b: Option<&str>| {
            [a, b]
                .iter()
                .enumerate()
                .map(|(i, v)| NodeStatus {
                    name: format!("orders-{i}"),
                    ordinal: i as u32,
                    version: v.map(String::from),
                    ..NodeStatus::default()
                })
                .collect::<Vec<_>>()
        };
        let facts = |outdated: bool| {
            let mut f = healthy();
            f[1].outdated = outdated;
            f
        };
        // (what, versions, a pod being rolled, reported)
        let rows = [
            ("same", nodes(Some("9.7.4"), Some("9.7.4")), false, false),
            (
                "different",
                nodes(Some("8.4.3"), Some("9.7.4")),
                false,
                true,
            ),
            (
                "different, rolling",
                nodes(Some("8.4.3"), Some("9.7.4")),
                true,
                false,
            ),
            ("one unknown", nodes(Some("8.4.3"), None), false, false),
        ];
        for (what, n, rolling, reported) in rows {
            let got = version_skew(&n, &facts(rolling));
            assert_eq!(got.is_some(), reported, "{what}: {got:?}");
            if let Some(m) = got {
                assert!(m.contains("8.4.3") && m.contains("9.7.4"), "{m}");
            }
        }
    }

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + second).expect("a time"))
    }

    fn healthy() -> [NodeFacts; 2] {
        let set = format!("{U0}:1-5");
        [
            node(0)
                .writable()
                .wired()
                .gtids(&set)
                .label(Role::Writer)
                .build(),
            node(1).wired().gtids(&set).label(Role::Replica).build(),
        ]
    }

    fn ready(s: &MySQLActiveActiveStatus) -> &Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready is always present")
    }

    #[test]
    fn durability_follows_the_spec_the_writer_and_the_stale_record() {
        use crate::api::DurabilityMode;
        use crate::topology::testkit::{acking, alone, not_waiting};
        let (acking, alone, off) = (acking(), alone(), not_waiting());
        let cases = [
            (
                DurabilityMode::Async,
                Some(acking),
                false,
                Durability::Asynchronous,
            ),
            (
                DurabilityMode::SemiSync,
                Some(acking),
                false,
                Durability::SemiSynchronous,
            ),
            (
                DurabilityMode::SemiSync,
                Some(alone),
                false,
                Durability::WaitingForReplica,
            ),
            (
                DurabilityMode::SemiSync,
                Some(off),
                true,
                Durability::AsynchronousFallback,
            ),
            (
                DurabilityMode::SemiSync,
                Some(off),
                false,
                Durability::AsynchronousFallback,
            ),
            (
                DurabilityMode::SemiSync,
                None,
                false,
                Durability::AsynchronousFallback,
            ),
        ];
        for (mode, semi, stale, want) in cases {
            let mut facts = healthy();
            obs(&mut facts[0]).semi_sync = semi;
            let mut p = pair(None);
            p.spec.replication.durability = Some(mode);
            let plan = decide(&input(WriteMode::SingleWriter, Some(0), facts.clone()));
            assert_eq!(
                durability(&p, &facts, &plan, stale),
                want,
                "{mode:?} {semi:?} stale={stale}"
            );
        }
    }

    #[test]
    fn a_healthy_pair_is_ready_with_its_writer_and_nodes() {
        let facts = healthy();
        let p = pair(None);
        let plan = decide(&input(WriteMode::SingleWriter, Some(0), facts.clone()));
        let s = build(&p, Some(&facts), Some(&plan), &Outcome::default(), at(0));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.writer.as_deref(), Some("orders-0"));
        assert_eq!(
            (ready(&s).status.as_str(), ready(&s).reason.as_str()),
            ("True", "PairReady")
        );
        // SemiSync (the SingleWriter default) asked, the writer not waiting.
        assert_eq!(s.durability, Some(Durability::AsynchronousFallback));
        assert_eq!(
            s.nodes.iter().map(|n| n.role).collect::<Vec<_>>(),
            [Some(NodeRole::Writer), Some(NodeRole::Replica)]
        );
        assert_eq!(s.lag_seconds, Some(0));
        for c in &s.conditions {
            assert_eq!(c.observed_generation, Some(3), "{}", c.type_);
        }
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let facts = healthy();
        let plan = decide(&input(WriteMode::SingleWriter, Some(0), facts.clone()));
        let first = build(
            &pair(None),
            Some(&facts),
            Some(&plan),
            &Outcome::default(),
            at(0),
        );
        let again = build(
            &pair(Some(first.clone())),
            Some(&facts),
            Some(&plan),
            &Outcome::default(),
            at(60),
        );
        assert_eq!(ready(&again).last_transition_time, at(0));
        let blocked = Outcome {
            blocked: Some(("Paused".into(), "spec.paused is true".into())),
            ..Default::default()
        };
        let paused = build(
            &pair(Some(again)),
            Some(&facts),
            Some(&plan),
            &blocked,
            at(90),
        );
        assert_eq!(ready(&paused).status, "False");
        assert_eq!(ready(&paused).reason, "Paused");
        assert_eq!(ready(&paused).last_transition_time, at(90));
    }

    #[test]
    fn a_pending_change_of_the_writer_is_removed_only_once_done() {
        let change = |to: &str| crate::api::PendingRoleChange {
            from: "orders-0".into(),
            to: to.into(),
            epoch: 4,
            kind: crate::api::RoleChangeKind::Failover,
            claimed_at: at(0),
            from_pod_uid: None,
        };
        let claimed = |to: &str| Claim {
            writer: to.into(),
            pending: Some(change(to)),
        };
        let failed = Some(("Step".into(), "WriterPromoted: timeout".into()));
        // (what, recorded before, this cycle's outcome, the writer after, want)
        let rows: Vec<(&str, Option<_>, Outcome, Option<&str>, Option<_>)> = vec![
            (
                "claimed and done in one cycle",
                None,
                Outcome {
                    claim: Some(claimed("orders-1")),
                    ..Default::default()
                },
                Some("orders-1"),
                None,
            ),
            (
                "claimed, then a step failed: given up with the cycle (the old writer stays recorded)",
                None,
                Outcome {
                    claim: Some(claimed("orders-1")),
                    failed: failed.clone(),
                    ..Default::default()
                },
                Some("orders-0"),
                None,
            ),
            (
                "claimed, then the spec changed: not done",
                None,
                Outcome {
                    claim: Some(claimed("orders-1")),
                    superseded: true,
                    ..Default::default()
                },
                Some("orders-1"),
                Some(change("orders-1")),
            ),
            (
                "resumed by a later cycle and done",
                Some(change("orders-1")),
                Outcome::default(),
                Some("orders-1"),
                None,
            ),
            (
                "resumed, a step failed: still pending",
                Some(change("orders-1")),
                Outcome {
                    failed: failed.clone(),
                    ..Default::default()
                },
                Some("orders-1"),
                Some(change("orders-1")),
            ),
            (
                "the claimed writer is not the writer after the cycle: still pending",
                Some(change("orders-1")),
                Outcome::default(),
                None,
                Some(change("orders-1")),
            ),
            (
                "a first election records none",
                None,
                Outcome {
                    claim: Some(Claim {
                        writer: "orders-0".into(),
                        pending: None,
                    }),
                    ..Default::default()
                },
                Some("orders-0"),
                None,
            ),
        ];
        for (what, before, outcome, writer, want) in rows {
            assert_eq!(
                pending_role_change(before, &outcome, writer),
                want,
                "{what}"
            );
        }
        // A cycle that stopped before the plan (paused, credentials
        // missing) keeps the record.
        let old = MySQLActiveActiveStatus {
            writer: Some("orders-1".into()),
            pending_role_change: Some(change("orders-1")),
            ..Default::default()
        };
        let blocked = Outcome {
            blocked: Some(("Paused".into(), "spec.paused is true".into())),
            ..Default::default()
        };
        let s = build(&pair(Some(old)), None, None, &blocked, at(0));
        assert_eq!(s.pending_role_change, Some(change("orders-1")));
    }

    #[test]
    fn a_failed_step_keeps_the_recorded_writer() {
        let facts = healthy();
        let mut plan = decide(&input(WriteMode::SingleWriter, Some(0), facts.clone()));
        plan.writer = Some(1);
        let old = MySQLActiveActiveStatus {
            writer: Some("orders-0".into()),
            ..Default::default()
        };
        let failed = Outcome {
            failed: Some(("Step".into(), "WriterCaughtUp on ordinal 1: timeout".into())),
            ..Default::default()
        };
        let s = build(&pair(Some(old)), Some(&facts), Some(&plan), &failed, at(0));
        assert_eq!(s.writer.as_deref(), Some("orders-0"));
        assert_eq!(ready(&s).reason, "StepFailed");
        assert!(ready(&s).message.contains("timeout"));
    }

    #[test]
    fn a_blocked_pair_reports_why_and_keeps_what_was_observed() {
        let old = MySQLActiveActiveStatus {
            writer: Some("orders-1".into()),
            nodes: build(
                &pair(None),
                Some(&healthy()),
                Some(&decide(&input(WriteMode::SingleWriter, Some(0), healthy()))),
                &Outcome::default(),
                at(0),
            )
            .nodes,
            ..Default::default()
        };
        let blocked = Outcome {
            blocked: Some((
                "CredentialsMissing".into(),
                "Secret x does not exist".into(),
            )),
            ..Default::default()
        };
        let s = build(&pair(Some(old.clone())), None, None, &blocked, at(5));
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(ready(&s).reason, "CredentialsMissing");
        assert_eq!(ready(&s).message, "Secret x does not exist");
        assert_eq!(s.writer, old.writer);
        assert_eq!(s.nodes, old.nodes);
    }

    #[test]
    fn skipped_transactions_keep_the_newest() {
        let facts = healthy();
        let plan = decide(&input(WriteMode::SingleWriter, Some(0), facts.clone()));
        let skip = |i: usize| crate::api::SkippedTransaction {
            node: "orders-1".into(),
            gtid: format!("{U0}:{i}"),
            errno: 1062,
            message: String::new(),
            skipped_at: at(i as i64),
        };
        let old = MySQLActiveActiveStatus {
            skipped_transactions: (0..MAX_SKIPPED).map(skip).collect(),
            ..Default::default()
        };
        let outcome = Outcome {
            skipped: vec![skip(MAX_SKIPPED), skip(MAX_SKIPPED + 1)],
            ..Default::default()
        };
        let s = build(&pair(Some(old)), Some(&facts), Some(&plan), &outcome, at(0));
        assert_eq!(s.skipped_transactions.len(), MAX_SKIPPED);
        assert_eq!(s.skipped_transactions[0].gtid, format!("{U0}:2"));
        assert_eq!(
            s.skipped_transactions[MAX_SKIPPED - 1].gtid,
            format!("{U0}:{}", MAX_SKIPPED + 1)
        );
    }
}
