//! The re-seed decision (pure): which node gets a copy of the writer's
//! data, or why none can start yet. A node needs one when it started on an
//! empty volume of a pair that has data (its bootstrap marked it awaiting
//! a copy), or when its receiver stopped because the writer no longer has
//! binary logs it needs (a node that lost its disk, or one that was away
//! longer than the writer keeps its logs): replication alone cannot bring
//! it back.

use super::{Input, NodeFacts, flavor_of, gtid};
use crate::api::{Engine, WriteMode};

/// What the caller knows of re-seeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedInput {
    /// The node a copy runs into now (the caller's task), if any.
    pub running: Option<u32>,
    /// The back-off after a failed attempt is not over yet.
    pub backing_off: bool,
    /// The node an unanswered `spec.reseed` names.
    pub requested: Option<u32>,
    /// MariaDB copies can be made: the pods run agents (in the server's
    /// image, beside `mariadb-backup`), and a restarted pod's bootstrap
    /// receives the copy.
    pub streams: bool,
}

/// Why a node needs the writer's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedReason {
    /// The node started on an empty volume of a pair that has data.
    EmptyDataDirectory,
    /// The writer purged binary logs the node needs (receiver error 1236).
    SourcePurgedLogs,
    /// `spec.reseed` asks for it.
    Requested,
}

impl SeedReason {
    /// As status and Events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SeedReason::EmptyDataDirectory => "EmptyDataDirectory",
            SeedReason::SourcePurgedLogs => "SourcePurgedLogs",
            SeedReason::Requested => "Requested",
        }
    }
}

/// The verdict for the node that needs a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeedVerdict {
    /// Copy the writer `from`'s data into `node`.
    Start {
        /// The recipient.
        node: u32,
        /// The donor: the writer.
        from: u32,
        /// Why.
        reason: SeedReason,
        /// Transactions only `node` has, which the copy discards (a
        /// requested re-seed of an errant node).
        discards: Option<String>,
    },
    /// `node` needs a copy (or one is asked for); none starts now, because
    /// of `why`.
    Held {
        /// The node.
        node: u32,
        /// Why it needs one.
        reason: SeedReason,
        /// Why none starts.
        why: String,
    },
}

/// Whether `n` needs a copy of the writer's data.
pub fn needs_seed(n: &NodeFacts) -> bool {
    seed_reason(n).is_some()
}

/// Why `n` needs a copy of the writer's data, if it does: it awaits one
/// since its bootstrap, or its receiver stopped on logs its source purged.
pub fn seed_reason(n: &NodeFacts) -> Option<SeedReason> {
    let o = n.observation()?;
    if o.awaiting_seed {
        return Some(SeedReason::EmptyDataDirectory);
    }
    o.replica
        .as_ref()
        .is_some_and(|r| r.source_purged_needed_logs())
        .then_some(SeedReason::SourcePurgedLogs)
}

/// The re-seed verdict of a plan whose writer is `writer` (SingleWriter),
/// `failover` telling whether the plan replaces a lost writer. `None`:
/// no node needs a copy, or one is being made. Pure.
pub fn verdict(input: &Input, writer: Option<u32>, failover: bool) -> Option<SeedVerdict> {
    let (node, reason) = match input.seed.requested {
        Some(n) => (&input.nodes[n as usize % 2], SeedReason::Requested),
        None => input
            .nodes
            .iter()
            .filter(|n| input.seed.running != Some(n.ordinal))
            .find_map(|n| Some((n, seed_reason(n)?)))?,
    };
    let held = |why: &str| {
        Some(SeedVerdict::Held {
            node: node.ordinal,
            reason,
            why: why.to_string(),
        })
    };
    if input.seed.running.is_some() {
        return match reason {
            SeedReason::Requested => held("a re-seed is running"),
            SeedReason::SourcePurgedLogs | SeedReason::EmptyDataDirectory => None,
        };
    }
    if input.mode == WriteMode::MultiWriter {
        return held(
            "a re-seed copies the writer's data, and a MultiWriter pair has no single writer: rebuild the node by hand (README, runbook)",
        );
    }
    let Some(w) = writer.filter(|_| !failover) else {
        return held("the pair has no settled writer to copy from");
    };
    if w == node.ordinal {
        return held("the writer itself is never re-seeded");
    }
    let Some(wo) = input.nodes[w as usize % 2]
        .observation()
        .filter(|o| o.writable())
    else {
        return held("the writer is not reachable and writable");
    };
    if input.engine == Engine::MariaDB && !input.seed.streams {
        return held(match reason {
            SeedReason::EmptyDataDirectory => {
                "MariaDB receives its copy in the pod's bootstrap, from the writer's agent, and this pod has none (agents off): delete its PVC and pod once agents run, or rebuild it by hand (README, runbook)"
            }
            _ => {
                "a MariaDB copy is streamed by the writer's agent, and this pair runs none (the operator runs without an agent image): rebuild the node by hand (README, runbook)"
            }
        });
    }
    let Some(o) = node.observation() else {
        return held("its server does not answer");
    };
    let flavor = flavor_of(input.engine);
    let discards = (!gtid::contains(flavor, &wo.gtid_executed, &o.gtid_executed)).then(|| {
        gtid::missing(flavor, &wo.gtid_executed, &o.gtid_executed)
            .into_iter()
            .map(|p| p.text)
            .collect::<Vec<_>>()
            .join(",")
    });
    if discards.is_some() && reason != SeedReason::Requested {
        return held(
            "it executed transactions the writer does not have (errant): a copy would discard them; ask for it (spec.reseed) once they are saved, or rebuild it by hand (README, runbook)",
        );
    }
    if input.seed.backing_off && reason != SeedReason::Requested {
        return held("the last attempt failed: retrying after a back-off");
    }
    Some(SeedVerdict::Start {
        node: node.ordinal,
        from: w,
        reason,
        discards,
    })
}
