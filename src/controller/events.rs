//! The catalogue of Events: every reason the operator publishes, with its
//! type and action, in one place. A step's name (in code, logs and errors)
//! is its reason here.
//!
//! | reason | type | action | when |
//! |---|---|---|---|
//! | `SecretGenerated` | Normal | `Credentials` | a credentials Secret was created with a new password |
//! | `CredentialsMissing` | Warning | `Credentials` | a named Secret (or its `password` key) is missing, or the data of an earlier pair of that name remains without its Secret; nothing was changed |
//! | `InvalidSpec` | Warning | `Validate` | the spec fails the CRD's rules (it bypassed admission) |
//! | `ObjectsApplied` | Normal | `Apply` | owned objects were created or changed as the spec asks |
//! | `ObjectsRepaired` | Warning | `Apply` | someone changed or deleted an owned object (`kubectl scale`, `edit`, `delete`); the operator restored it |
//! | `ObjectRefused` | Warning | `Apply` | the API server refused a rendered object (names it, quotes its message); nothing running changes |
//! | `UsersEnsured` | Normal | `EnsureUsers` | the operator's accounts were (re)created on a node |
//! | `ReplicationWired` | Normal | `WireReplication` | a node was pointed at its peer (TLS as the spec asks) and started |
//! | `NodeFenced` | Normal | `Fence` | a node was made read-only and its clients disconnected |
//! | `NodeUnfenced` | Normal | `Unfence` | a node was made writable |
//! | `RoleLabelled` | Normal | `Label` | a pod's `mysql-aa.io/role` label changed |
//! | `TransactionSkipped` | Warning | `SkipTransaction` | `SkipAndRecord` skipped a failing transaction |
//! | `StaleSessionsEnded` | Normal | `EndStaleSessions` | a source still served binary log dump sessions to a replica that is gone (it vanished without closing them); they were ended so the replica's new session streams at once |
//! | `NodeRestarted` | Normal | `Restart` | rolling update: an outdated pod was deleted to come back on the new configuration |
//! | `NodeIsolated` | Normal | `Isolate` | failover: the unreachable writer's pod was deleted so its kubelet stops the server |
//! | `WriterPromoted` | Normal | `Promote` | failover: a replica applied what it had received and was promoted |
//! | `WriterCaughtUp` | Normal | `CatchUp` | switchover: the target applied every transaction of the fenced writer |
//! | `EpochClaimed` | Normal | `ClaimEpoch` | a change of the writer began: the writer epoch was incremented in status (compare-and-set) |
//! | `ReceiverStopped` | Normal | `StopReceiving` | failover: the candidate stopped receiving from the old writer, which gets no acknowledgement (`SemiSync`: it can commit nothing more) and no confirmation for its agent |
//! | `WriterLeaseHanded` | Normal | `HandLease` | the writer Lease names the writer at the current epoch; its agent renews it |
//! | `OldWriterFenceAwaited` | Normal | `AwaitFence` | failover: waited until any confirmation the old writer's agent held ran out (it has fenced its server by then), before its pod is deleted |
//! | `ReplicaMarkedStale` | Warning | `MarkStale` | `SemiSync`: the replica stopped acknowledging for the detection window; recorded not promotable before the writer goes on without it |
//! | `AcknowledgementsRequired` | Normal | `SemiSyncOn` | the writer's commits wait for its replica's acknowledgement |
//! | `AcknowledgementsWaived` | Normal/Warning | `SemiSyncOff` | a node's commits no longer wait (a replica: Normal; the writer: Warning, as it goes on without a stale replica or the pair was changed to `Async`) |
//! | `ReplicaCaughtUp` | Normal | `ClearStale` | the stale replica has everything and acknowledges again; says how long commits ran unacknowledged |
//! | `StepFailed` | Warning | (the step) | a step failed; the pair loop retries within the observe interval |
//! | `ApplierHalted` | Warning | `Observe` | a node's applier stopped on an error and is left stopped (`Halt`) |
//! | `ErrantTransactions` | Warning | `Observe` | a replica executed transactions the writer does not have; it will not be promoted |
//! | `DurabilityChanged` | Normal/Warning | `Observe` | semi-sync became active, or fell back to asynchronous (Warning) |
//! | `SwitchoverSucceeded` | Normal | `Switchover` | a `spec.switchover` request was carried out (or its target already was the writer) |
//! | `SwitchoverRefused` | Warning | `Switchover` | a `spec.switchover` request's precondition did not hold; nothing changed |
//! | `SwitchoverFailed` | Warning | `Switchover` | a switchover step failed; the old writer is kept |
//! | `DivergenceChecked` | Normal | `CheckDivergence` | a divergence check found both nodes' tables identical |
//! | `DivergenceFound` | Warning | `CheckDivergence` | a divergence check found tables that differ; names them |
//! | `DivergenceNotCompared` | Warning | `CheckDivergence` | a divergence check found no quiet point (writes in progress) or could not read a node |
//! | `SeedStarted` | Normal | `Reseed` | a node that cannot catch up (the writer purged binary logs it needs) started copying the writer's data |
//! | `SeedFinished` | Normal | `Reseed` | a re-seeded node restarted on the copy and replicates from the writer again; says how long it took and how many bytes |
//! | `SeedFailed` | Warning | `Reseed` | a re-seed attempt failed (quotes why); the writer is untouched; retried after a back-off |
//! | `ReplicaLagging` | Warning | `Observe` | a replica went above `spec.replication.lagThresholdSeconds` behind its source (the `Lagging` condition says when it is back within) |

use kube::runtime::events::EventType;

use crate::topology::Step;

/// Every Event reason the operator publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A generated credentials Secret was created.
    SecretGenerated,
    /// A credentials Secret cannot be used; nothing changed.
    CredentialsMissing,
    /// The spec fails the CRD's rules.
    InvalidSpec,
    /// Owned objects were created or changed as the spec asks.
    ObjectsApplied,
    /// Owned objects changed or deleted by someone else were restored.
    ObjectsRepaired,
    /// The API server refused a rendered object.
    ObjectRefused,
    /// A plan step ran: its name.
    Step(StepName),
    /// A step failed.
    StepFailed,
    /// An applier stopped on an error and is left stopped.
    ApplierHalted,
    /// A replica executed transactions the writer does not have.
    ErrantTransactions,
    /// The effective durability changed.
    DurabilityChanged,
    /// A switchover request was carried out.
    SwitchoverSucceeded,
    /// A switchover request was refused.
    SwitchoverRefused,
    /// A switchover failed.
    SwitchoverFailed,
    /// A divergence check found identical tables.
    DivergenceChecked,
    /// A divergence check found differing tables.
    DivergenceFound,
    /// A divergence check compared nothing.
    DivergenceNotCompared,
    /// A re-seeded node replicates again.
    SeedFinished,
    /// A re-seed attempt failed.
    SeedFailed,
    /// A replica went above the lag threshold.
    ReplicaLagging,
}

/// The plan steps, by name (the reason of the Event each one publishes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepName {
    /// [`Step::EnsureUsers`].
    UsersEnsured,
    /// [`Step::WireReplication`].
    ReplicationWired,
    /// [`Step::Fence`].
    NodeFenced,
    /// [`Step::Unfence`].
    NodeUnfenced,
    /// [`Step::Label`].
    RoleLabelled,
    /// [`Step::SkipTransaction`].
    TransactionSkipped,
    /// [`Step::EndStaleSessions`].
    StaleSessionsEnded,
    /// [`Step::Promote`].
    WriterPromoted,
    /// [`Step::CatchUp`].
    WriterCaughtUp,
    /// [`Step::Isolate`].
    NodeIsolated,
    /// [`Step::Restart`].
    NodeRestarted,
    /// [`Step::ClaimEpoch`].
    EpochClaimed,
    /// [`Step::StopReceiving`].
    ReceiverStopped,
    /// [`Step::HandLease`].
    WriterLeaseHanded,
    /// [`Step::AwaitFence`].
    OldWriterFenceAwaited,
    /// [`Step::MarkStale`].
    ReplicaMarkedStale,
    /// [`Step::SemiSyncOn`].
    AcknowledgementsRequired,
    /// [`Step::SemiSyncOff`].
    AcknowledgementsWaived,
    /// [`Step::ClearStale`].
    ReplicaCaughtUp,
    /// [`Step::Reseed`].
    SeedStarted,
}

impl StepName {
    /// The name of `step`.
    pub fn of(step: &Step) -> Self {
        match step {
            Step::EnsureUsers { .. } => StepName::UsersEnsured,
            Step::WireReplication { .. } => StepName::ReplicationWired,
            Step::Fence { .. } => StepName::NodeFenced,
            Step::Unfence { .. } => StepName::NodeUnfenced,
            Step::Label { .. } => StepName::RoleLabelled,
            Step::SkipTransaction { .. } => StepName::TransactionSkipped,
            Step::EndStaleSessions { .. } => StepName::StaleSessionsEnded,
            Step::Promote { .. } => StepName::WriterPromoted,
            Step::CatchUp { .. } => StepName::WriterCaughtUp,
            Step::Isolate { .. } => StepName::NodeIsolated,
            Step::Restart { .. } => StepName::NodeRestarted,
            Step::ClaimEpoch { .. } => StepName::EpochClaimed,
            Step::StopReceiving { .. } => StepName::ReceiverStopped,
            Step::HandLease { .. } => StepName::WriterLeaseHanded,
            Step::AwaitFence { .. } => StepName::OldWriterFenceAwaited,
            Step::MarkStale { .. } => StepName::ReplicaMarkedStale,
            Step::SemiSyncOn { .. } => StepName::AcknowledgementsRequired,
            Step::SemiSyncOff { .. } => StepName::AcknowledgementsWaived,
            Step::ClearStale { .. } => StepName::ReplicaCaughtUp,
            Step::Reseed { .. } => StepName::SeedStarted,
        }
    }

    /// The reason text.
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::UsersEnsured => "UsersEnsured",
            StepName::ReplicationWired => "ReplicationWired",
            StepName::NodeFenced => "NodeFenced",
            StepName::NodeUnfenced => "NodeUnfenced",
            StepName::RoleLabelled => "RoleLabelled",
            StepName::TransactionSkipped => "TransactionSkipped",
            StepName::StaleSessionsEnded => "StaleSessionsEnded",
            StepName::WriterPromoted => "WriterPromoted",
            StepName::WriterCaughtUp => "WriterCaughtUp",
            StepName::NodeIsolated => "NodeIsolated",
            StepName::NodeRestarted => "NodeRestarted",
            StepName::EpochClaimed => "EpochClaimed",
            StepName::ReceiverStopped => "ReceiverStopped",
            StepName::WriterLeaseHanded => "WriterLeaseHanded",
            StepName::OldWriterFenceAwaited => "OldWriterFenceAwaited",
            StepName::ReplicaMarkedStale => "ReplicaMarkedStale",
            StepName::AcknowledgementsRequired => "AcknowledgementsRequired",
            StepName::AcknowledgementsWaived => "AcknowledgementsWaived",
            StepName::ReplicaCaughtUp => "ReplicaCaughtUp",
            StepName::SeedStarted => "SeedStarted",
        }
    }

    /// The Event's action.
    pub fn action(self) -> &'static str {
        match self {
            StepName::UsersEnsured => "EnsureUsers",
            StepName::ReplicationWired => "WireReplication",
            StepName::NodeFenced => "Fence",
            StepName::NodeUnfenced => "Unfence",
            StepName::RoleLabelled => "Label",
            StepName::TransactionSkipped => "SkipTransaction",
            StepName::StaleSessionsEnded => "EndStaleSessions",
            StepName::WriterPromoted => "Promote",
            StepName::WriterCaughtUp => "CatchUp",
            StepName::NodeIsolated => "Isolate",
            StepName::NodeRestarted => "Restart",
            StepName::EpochClaimed => "ClaimEpoch",
            StepName::ReceiverStopped => "StopReceiving",
            StepName::WriterLeaseHanded => "HandLease",
            StepName::OldWriterFenceAwaited => "AwaitFence",
            StepName::ReplicaMarkedStale => "MarkStale",
            StepName::AcknowledgementsRequired => "SemiSyncOn",
            StepName::AcknowledgementsWaived => "SemiSyncOff",
            StepName::ReplicaCaughtUp => "ClearStale",
            StepName::SeedStarted => "Reseed",
        }
    }
}

impl Reason {
    /// The reason text.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SecretGenerated => "SecretGenerated",
            Reason::CredentialsMissing => "CredentialsMissing",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::ObjectsApplied => "ObjectsApplied",
            Reason::ObjectsRepaired => "ObjectsRepaired",
            Reason::ObjectRefused => "ObjectRefused",
            Reason::Step(s) => s.as_str(),
            Reason::StepFailed => "StepFailed",
            Reason::ApplierHalted => "ApplierHalted",
            Reason::ErrantTransactions => "ErrantTransactions",
            Reason::DurabilityChanged => "DurabilityChanged",
            Reason::SwitchoverSucceeded => "SwitchoverSucceeded",
            Reason::SwitchoverRefused => "SwitchoverRefused",
            Reason::SwitchoverFailed => "SwitchoverFailed",
            Reason::DivergenceChecked => "DivergenceChecked",
            Reason::DivergenceFound => "DivergenceFound",
            Reason::DivergenceNotCompared => "DivergenceNotCompared",
            Reason::SeedFinished => "SeedFinished",
            Reason::SeedFailed => "SeedFailed",
            Reason::ReplicaLagging => "ReplicaLagging",
        }
    }

    /// Normal or Warning. (`DurabilityChanged` is a Warning only for a fall
    /// back to asynchronous commits: see [`Reason::type_for`].)
    pub fn type_(self) -> EventType {
        match self {
            Reason::CredentialsMissing
            | Reason::InvalidSpec
            | Reason::ObjectRefused
            | Reason::ObjectsRepaired
            | Reason::Step(StepName::TransactionSkipped)
            | Reason::Step(StepName::ReplicaMarkedStale)
            | Reason::StepFailed
            | Reason::ApplierHalted
            | Reason::ErrantTransactions
            | Reason::SwitchoverRefused
            | Reason::SwitchoverFailed
            | Reason::DivergenceFound
            | Reason::DivergenceNotCompared
            | Reason::SeedFailed
            | Reason::ReplicaLagging => EventType::Warning,
            _ => EventType::Normal,
        }
    }

    /// The type, when it depends on the news: a durability change to an
    /// asynchronous fallback is a Warning.
    pub fn type_for(self, warning: bool) -> EventType {
        if warning {
            EventType::Warning
        } else {
            self.type_()
        }
    }

    /// The Event's action.
    pub fn action(self) -> &'static str {
        match self {
            Reason::SecretGenerated | Reason::CredentialsMissing => "Credentials",
            Reason::InvalidSpec => "Validate",
            Reason::ObjectsApplied | Reason::ObjectsRepaired | Reason::ObjectRefused => "Apply",
            Reason::Step(s) => s.action(),
            Reason::StepFailed => "Act",
            Reason::ApplierHalted
            | Reason::ErrantTransactions
            | Reason::DurabilityChanged
            | Reason::ReplicaLagging => "Observe",
            Reason::SwitchoverSucceeded | Reason::SwitchoverRefused | Reason::SwitchoverFailed => {
                "Switchover"
            }
            Reason::DivergenceChecked | Reason::DivergenceFound | Reason::DivergenceNotCompared => {
                "CheckDivergence"
            }
            Reason::SeedFinished | Reason::SeedFailed => "Reseed",
        }
    }

    /// Every reason, for the catalogue's test.
    pub const ALL: [Reason; 39] = [
        Reason::SecretGenerated,
        Reason::CredentialsMissing,
        Reason::InvalidSpec,
        Reason::ObjectsApplied,
        Reason::ObjectsRepaired,
        Reason::ObjectRefused,
        Reason::Step(StepName::UsersEnsured),
        Reason::Step(StepName::ReplicationWired),
        Reason::Step(StepName::NodeFenced),
        Reason::Step(StepName::NodeUnfenced),
        Reason::Step(StepName::RoleLabelled),
        Reason::Step(StepName::TransactionSkipped),
        Reason::Step(StepName::StaleSessionsEnded),
        Reason::Step(StepName::WriterPromoted),
        Reason::Step(StepName::WriterCaughtUp),
        Reason::Step(StepName::NodeIsolated),
        Reason::Step(StepName::NodeRestarted),
        Reason::Step(StepName::EpochClaimed),
        Reason::Step(StepName::ReceiverStopped),
        Reason::Step(StepName::WriterLeaseHanded),
        Reason::Step(StepName::OldWriterFenceAwaited),
        Reason::Step(StepName::ReplicaMarkedStale),
        Reason::Step(StepName::AcknowledgementsRequired),
        Reason::Step(StepName::AcknowledgementsWaived),
        Reason::Step(StepName::ReplicaCaughtUp),
        Reason::StepFailed,
        Reason::ApplierHalted,
        Reason::ErrantTransactions,
        Reason::DurabilityChanged,
        Reason::SwitchoverSucceeded,
        Reason::SwitchoverRefused,
        Reason::SwitchoverFailed,
        Reason::DivergenceChecked,
        Reason::DivergenceFound,
        Reason::DivergenceNotCompared,
        Reason::Step(StepName::SeedStarted),
        Reason::SeedFinished,
        Reason::SeedFailed,
        Reason::ReplicaLagging,
    ];
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in this module's documentation lists every reason with
    /// its type and action, and nothing else.
    #[test]
    fn the_catalogue_table_matches_the_code() {
        let doc = include_str!("events.rs");
        let rows: Vec<(String, String, String)> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("//! | `"))
            .map(|l| {
                let cells: Vec<&str> = l.split(" | ").collect();
                (
                    cells[0].trim_end_matches('`').to_string(),
                    cells[1].to_string(),
                    cells[2].trim_matches('`').to_string(),
                )
            })
            .collect();
        assert_eq!(rows.len(), Reason::ALL.len(), "{rows:?}");
        for r in Reason::ALL {
            let row = rows
                .iter()
                .find(|(name, _, _)| name == r.as_str())
                .unwrap_or_else(|| panic!("{r} is not in the table"));
            let want_type = match r.type_() {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            };
            assert!(row.1.starts_with(want_type), "{r}: {}", row.1);
            if r != Reason::StepFailed {
                assert_eq!(row.2, r.action(), "{r}");
            }
        }
    }
}
