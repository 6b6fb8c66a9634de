//! Observed state of a pair, written by the operator only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Deserialize, Serialize};

/// Observed state of the pair. Written by the operator; never edit it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MySQLActiveActiveStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions with kstatus semantics. `Ready` is always present; others
    /// are `Replicating`, `WriterAvailable`, `Degraded` and
    /// `ConflictDetected`. Each carries the generation it was computed from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Pod that currently takes writes (SingleWriter). Empty when no node is
    /// writable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,

    /// Server flavour detected on the running servers: `MySQL` or `MariaDB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,

    /// Server version detected on the running servers, e.g. `8.4.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// Largest replication lag of the two directions, in seconds; unset when
    /// unknown (a replication thread is stopped or a node is unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<i64>,

    /// Per-node details, one entry per pod ordinal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,

    /// The last automatic failover, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<RoleChange>,

    /// The last switchover, if any: one asked for in `spec.switchover` (with
    /// its `requestId` and outcome), or one a rolling update made to move
    /// the writer off a node about to restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_switchover: Option<RoleChange>,

    /// Transactions skipped under `applierErrorPolicy: SkipAndRecord`, newest
    /// last, at most 20 entries (older ones remain in Events and metrics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_transactions: Vec<SkippedTransaction>,

    /// The last `spec.switchover.requestId` the operator answered (a request
    /// with this id is not carried out again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_switchover_request: Option<String>,

    /// Effective durability of commits: `Asynchronous` (`durability:
    /// Async`), `SemiSynchronous` (the writer's commits wait for its
    /// replica's acknowledgement and get it), `WaitingForReplica` (they wait
    /// and no acknowledgement comes: writes are held until the replica is
    /// back or, after the detection window, marked stale) or
    /// `AsynchronousFallback` (`SemiSync` is asked for, but the replica is
    /// stale and the writer commits without it; see `staleReplica`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<Durability>,

    /// Writer epoch: incremented, compare-and-set, before every change of
    /// the writer (first election, failover, switchover). An operator whose
    /// view of the epoch is old cannot move the role.
    #[serde(default)]
    pub writer_epoch: u64,

    /// `durability: SemiSync`: the replica that stopped acknowledging the
    /// writer's commits. It was recorded here (compare-and-set on the
    /// epoch) before the writer went on without acknowledgements, and it
    /// is not promotable until it has every transaction of the writer and
    /// acknowledges again; then this entry is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_replica: Option<StaleReplica>,

    /// A change of the writer claimed at `writerEpoch` and not finished
    /// yet: `writer` already names its new writer (the claim wrote both,
    /// compare-and-set). An operator that stopped in the middle of it
    /// (killed, or its leadership lost) is followed by one that finishes it
    /// at the same epoch — the candidate's receiver stopped, the old writer
    /// fenced or its pod deleted, the candidate caught up — and never gives
    /// the role back to the node the change replaced. Removed once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_role_change: Option<PendingRoleChange>,

    /// The last divergence check, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<DivergenceReport>,

    /// The re-seed running now, or the last one: a node given a copy of the
    /// writer's data because it could not catch up otherwise, or because
    /// `spec.reseed` asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<SeedStatus>,

    /// The last `spec.reseed.requestId` the operator answered (a request
    /// with this id is not carried out again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_reseed_request: Option<String>,

    /// When the pair was first Ready. From then on a pod that starts with an
    /// empty data volume (a new PVC) is given a copy of the writer's data;
    /// it never initializes a new, unrelated server that would pass for
    /// the writer's peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialized_at: Option<Time>,
}

/// A re-seed of one node from the writer (`status.seed`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedStatus {
    /// Pod re-seeded.
    pub node: String,
    /// Pod its data comes from (the writer).
    pub donor: String,
    /// Why: `SourcePurgedLogs` (the writer no longer has binary logs the
    /// node needs) or `Requested` (`spec.reseed`).
    pub reason: String,
    /// The `spec.reseed.requestId` this re-seed answers (requested ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Transactions only the node had (errant), discarded by a requested
    /// re-seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discarded_gtid_set: Option<String>,
    /// `Seeding` (copying), `Restarting` (the copy is in place; the server
    /// restarts on it), `Finished` (it replicates from the writer again),
    /// `Failed` (see `message`; the writer untouched; an automatic re-seed
    /// is retried with back-off) or `Refused` (a request whose guards did
    /// not hold; nothing changed).
    pub phase: SeedPhase,
    /// Details: what failed, what to do.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When this attempt started.
    pub started_at: Time,
    /// When it finished or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Bytes copied so far (MySQL's clone reports them).
    #[serde(default)]
    pub bytes_done: u64,
    /// Bytes to copy, as the donor estimated them.
    #[serde(default)]
    pub bytes_total: u64,
    /// Attempts for this node and reason so far (1 for the first).
    pub attempt: u32,
}

/// Phase of a re-seed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SeedPhase {
    /// The copy is running.
    Seeding,
    /// The copy is in place; the server restarts on it.
    Restarting,
    /// The node replicates from the writer again.
    Finished,
    /// The attempt failed; it is retried with back-off.
    Failed,
    /// A request was refused; nothing changed.
    Refused,
}

/// A replica that is not promotable (`status.staleReplica`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaleReplica {
    /// The replica's pod.
    pub node: String,
    /// Since when the writer commits without its acknowledgement.
    pub since: Time,
    /// The writer epoch at which it was recorded.
    pub epoch: u64,
    /// Why: it stopped acknowledging, or it was the writer a failover
    /// replaced.
    pub reason: String,
}

/// A change of the writer claimed and not finished
/// (`status.pendingRoleChange`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingRoleChange {
    /// The pod that held the writer role.
    pub from: String,
    /// The pod taking it (`status.writer`).
    pub to: String,
    /// The writer epoch claimed for it.
    pub epoch: u64,
    /// `Failover` or `Switchover` (a rolling update's move included).
    pub kind: RoleChangeKind,
    /// When the claim was written (the claiming operator's clock).
    pub claimed_at: Time,
    /// The UID of the old writer's pod when the change was claimed: an
    /// operator that finishes the change deletes that pod only, never the
    /// StatefulSet's re-creation of it (which boots read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_pod_uid: Option<String>,
}

/// Result of a divergence check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DivergenceReport {
    /// `spec.divergenceCheck.requestId` this check answered, when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `Consistent`, `Diverged`, or `NotCompared` (no point where both
    /// nodes had executed the same GTID set was found, or a node could not
    /// be read; see `message`).
    pub result: DivergenceResult,
    /// When the check ran.
    pub checked_at: Time,
    /// The GTID set both nodes had executed when their tables were compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_set: Option<String>,
    /// How many tables were compared.
    #[serde(default)]
    pub tables_checked: u32,
    /// Tables (`schema.table`) whose checksums differ or that exist on one
    /// node only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diverged_tables: Vec<String>,
    /// Details, e.g. why nothing was compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Observed state of one server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Pod name.
    pub name: String,
    /// Pod ordinal (0 or 1).
    pub ordinal: u32,
    /// `server_id` the node runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    /// `auto_increment_offset` the node runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_increment_offset: Option<u32>,
    /// Role: `Writer`, `Replica`, or `Unknown` when not observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<NodeRole>,
    /// Whether the operator could connect to the server at the last
    /// observation.
    #[serde(default)]
    pub reachable: bool,
    /// `read_only` at the last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `super_read_only` at the last observation (MySQL only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_read_only: Option<bool>,
    /// `server_uuid` (MySQL only), as last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_uuid: Option<String>,
    /// The server's version (`@@version`), as last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Transactions this node executed that the writer does not have
    /// (SingleWriter). A node with errant transactions is never promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errant_gtid_set: Option<String>,
    /// Executed GTID set (`gtid_executed`, or `gtid_current_pos` on MariaDB)
    /// at the last successful observation (kept while the node is
    /// unreachable: a failover checks the candidate against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_gtid_set: Option<String>,
    /// Whether this node, as a source, waits for semi-synchronous
    /// acknowledgements and has a replica connected to give them (unset
    /// when semi-sync is not loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semi_sync_source_active: Option<bool>,
    /// State of the channel replicating from the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationStatus>,
}

/// State of a node's replication channel from its peer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationStatus {
    /// Host the channel replicates from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_host: Option<String>,
    /// Receiver (IO) thread state: `Yes`, `No` or `Connecting`.
    pub io_running: ThreadStatus,
    /// Applier (SQL) thread state: `Yes` or `No`.
    pub sql_running: ThreadStatus,
    /// Last receiver error number, 0 when none.
    #[serde(default)]
    pub last_io_errno: u32,
    /// Last receiver error message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_io_error: String,
    /// Last applier error number, 0 when none.
    #[serde(default)]
    pub last_sql_errno: u32,
    /// Last applier error message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_sql_error: String,
    /// Seconds the applier is behind the source; unset when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_behind_source: Option<i64>,
    /// GTID set received from the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved_gtid_set: Option<String>,
}

/// A move of the writer role from one node to the other.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleChange {
    /// Pod that held the writer role.
    pub from: String,
    /// Pod that holds it now.
    pub to: String,
    /// Why the role moved.
    pub reason: String,
    /// When the operator started the change.
    pub started_at: Time,
    /// How long the change took, in milliseconds: a failover from the
    /// writer's first missed observation, a switchover from its fence. A
    /// failover a restarted operator finished counts from the claim's time
    /// in status (`pendingRoleChange.claimedAt`, the claiming operator's
    /// clock) when that is longer than its own observation.
    pub duration_millis: u64,
    /// Whether transactions received but not applied by the new writer were
    /// given up (only with `failover.acceptDataLoss: true`).
    #[serde(default)]
    pub data_loss_accepted: bool,
    /// Failovers: transactions the old writer had executed when last
    /// observed that the new writer had neither executed nor received — lost
    /// unless the old writer comes back. Unset when there were none (always
    /// so under `SemiSync`, where the new writer acknowledged every commit
    /// first); under `Async` a lower bound (what the old writer committed
    /// after its last observation is not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_gtid_set: Option<String>,
    /// The `spec.switchover.requestId` this change answered (switchovers
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `Succeeded`, `Refused` (a precondition did not hold; nothing was
    /// changed) or `Failed` (a step failed; the old writer was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RoleChangeOutcome>,
    /// Details of the outcome.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A transaction skipped under `SkipAndRecord`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTransaction {
    /// Pod whose applier stopped.
    pub node: String,
    /// GTID of the skipped transaction.
    pub gtid: String,
    /// Error number that stopped the applier (e.g. 1062).
    pub errno: u32,
    /// Error message that stopped the applier.
    pub message: String,
    /// When it was skipped.
    pub skipped_at: Time,
}

/// Declares a status enumeration: serialized as its variant's name, an
/// `enum` in the CRD's schema, `as_str` for messages and metrics.
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The name, as in status.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant)),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(
    /// Role as observed: `Writer`, `Replica`, or `Unknown` when the node
    /// could not be observed.
    NodeRole {
        /// Takes writes.
        Writer,
        /// Read-only, replicating from the writer.
        Replica,
        /// Not observed (unreachable).
        Unknown,
    }
);

status_enum!(
    /// Effective durability of commits: `Asynchronous`, `SemiSynchronous`,
    /// `WaitingForReplica` or `AsynchronousFallback` (see
    /// `status.durability`).
    Durability {
        /// `durability: Async`: commits never wait.
        Asynchronous,
        /// The writer's commits wait for its replica's acknowledgement and
        /// get it.
        SemiSynchronous,
        /// Commits wait for an acknowledgement that does not come.
        WaitingForReplica,
        /// Semi-sync is asked for, but the writer commits without the
        /// stale replica's acknowledgement.
        AsynchronousFallback,
    }
);

status_enum!(
    /// Why the writer moves: `Failover` (the writer was lost) or
    /// `Switchover` (asked for, or a rolling update).
    RoleChangeKind {
        /// The writer was lost: its replica takes over.
        Failover,
        /// A planned move: the writer is fenced and the target catches up.
        Switchover,
    }
);

status_enum!(
    /// How the change ended: `Succeeded`, `Refused` (a precondition did not
    /// hold; nothing was changed) or `Failed` (a step failed; the old writer
    /// was kept).
    RoleChangeOutcome {
        /// Carried out (or the target already was the writer).
        Succeeded,
        /// A precondition did not hold; nothing changed.
        Refused,
        /// A step failed; the old writer was kept.
        Failed,
    }
);

status_enum!(
    /// What the check found: `Consistent`, `Diverged`, or `NotCompared` (no
    /// point where both nodes had executed the same GTID set was found, or a
    /// node could not be read; see `message`).
    DivergenceResult {
        /// Every table has the same checksum on both nodes.
        Consistent,
        /// Some tables differ (see `divergedTables`).
        Diverged,
        /// Nothing was compared (see `message`).
        NotCompared,
    }
);

status_enum!(
    /// Thread state as `SHOW REPLICA STATUS` reports it: `Yes`, `No`, or
    /// `Connecting` (the receiver is reconnecting to the source).
    #[derive(Default)]
    ThreadStatus {
        /// Running.
        Yes,
        /// Stopped.
        #[default]
        No,
        /// The receiver is (re)connecting to the source.
        Connecting,
    }
);
