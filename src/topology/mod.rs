//! The MySQL half of a reconcile: from what was observed of both nodes to a
//! plan. [`decide`] is a pure function; `crate::controller::pairloop`
//! observes and executes.
//!
//! Words used here, in the code, in status and in Events:
//! - a node is **reachable** when its pod exists, is not terminating, and
//!   the operator could query its server this cycle;
//! - a node is **writable** when neither `read_only` nor `super_read_only`
//!   is on ([`Observation::writable`]); it is **fenced** when no ordinary
//!   account can write: `super_read_only` on MySQL, `read_only` on MariaDB
//!   ([`Observation::fenced`]; `read_only` alone is not a fence on MySQL).
//!   **Fencing** makes a node fenced, **unfencing** writable;
//! - the **writer** (SingleWriter) is the one node that should be writable
//!   and labelled `mysql-aa.io/role=writer`; the other is the **replica**;
//! - a node is **wired as wanted** when its channel points at its peer
//!   with the replication account, GTID auto-position and the TLS the spec
//!   asks ([`crate::mysql::ReplicaStatus::wired_as`]), and **replicating**
//!   when it is and both threads run;
//! - a node is **halted** when its applier stopped on an error
//!   ([`halted`]).
//!
//! Invariants the plan keeps (tested below):
//! 1. SingleWriter: a plan never leaves two nodes writable, and never
//!    labels two pods writer: fencing and the replica label come before
//!    unfencing and the writer label. A writer that cannot be reached to be
//!    fenced has its pod deleted (its kubelet stops the server) before its
//!    replica is promoted.
//! 2. A writer is first elected only among reachable nodes whose executed
//!    GTIDs contain the peer's (so nothing the peer committed is missing);
//!    diverged nodes elect nobody.
//! 3. Auto-increment settings are in the rendered my.cnf, never changed here.
//! 4. An applier error is skipped only under `SkipAndRecord`, and only the
//!    failing transaction; under `Halt` it is reported and left alone.
//! 5. A healthy, settled pair gives an empty plan: nothing is written.
//! 6. SingleWriter: the writer's channel from its peer is wired only when
//!    the peer is fenced and has nothing the writer lacks.
//! 7. Every change of the writer starts with an epoch claim
//!    (compare-and-set in status). Under `SemiSync` only the writer waits
//!    for acknowledgements; a failover first stops the candidate's
//!    receiver; a replica is recorded stale before the writer commits
//!    without it, and a stale node is never promoted by a failover.

use crate::api::{ApplierErrorPolicy, DurabilityMode, Engine, RoleChangeKind, WriteMode};
use crate::mysql::{
    ApplierFailure, ChannelTls, DumpSession, Flavor, Observation, ThreadState, gtid,
};

mod reseed;
pub use reseed::{SeedInput, SeedReason, SeedVerdict};

/// Role of a node, as in the `mysql-aa.io/role` pod label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Takes writes.
    Writer,
    /// Read-only.
    Replica,
    /// Read-only and out of both Services: it awaits, or receives, a copy
    /// of the writer's data (its own is empty or cannot catch up).
    Seeding,
    /// A replica too far behind to serve reads
    /// (`spec.replication.maxReadLagSeconds`): out of both Services.
    Lagging,
}

impl Role {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Role::Writer => crate::render::meta::ROLE_WRITER,
            Role::Replica => crate::render::meta::ROLE_REPLICA,
            Role::Seeding => crate::render::meta::ROLE_SEEDING,
            Role::Lagging => crate::render::meta::ROLE_LAGGING,
        }
    }

    /// Parses a label value.
    pub fn from_label(v: &str) -> Option<Self> {
        match v {
            "writer" => Some(Role::Writer),
            "replica" => Some(Role::Replica),
            "seeding" => Some(Role::Seeding),
            "lagging" => Some(Role::Lagging),
            _ => None,
        }
    }
}

/// What the operator knows of one node this cycle.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeFacts {
    /// Pod ordinal.
    pub ordinal: u32,
    /// Whether the pod exists.
    pub pod_exists: bool,
    /// Whether the pod is Ready.
    pub pod_ready: bool,
    /// Whether the pod is being deleted.
    pub terminating: bool,
    /// Address peers and the operator use for this node (DNS name or IP).
    pub address: Option<String>,
    /// Current `mysql-aa.io/role` label.
    pub role_label: Option<Role>,
    /// The server, if it answered; else why not.
    pub server: Result<Observation, String>,
    /// The transaction the applier stopped on, when halted.
    pub failure: Option<ApplierFailure>,
    /// The pod runs an older revision of the StatefulSet's template (its
    /// configuration changed): it must be restarted onto the new one.
    pub outdated: bool,
}

impl NodeFacts {
    /// Reachable: pod present and not terminating, server answered.
    pub fn reachable(&self) -> bool {
        self.pod_exists && !self.terminating && self.server.is_ok()
    }

    /// What its server said, if its pod is present and not terminating.
    pub fn observation(&self) -> Option<&Observation> {
        self.server
            .as_ref()
            .ok()
            .filter(|_| self.pod_exists && !self.terminating)
    }
}

/// Automatic failover settings and what the caller measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailoverInput {
    /// `spec.failover.automatic`.
    pub automatic: bool,
    /// The writer has been unreachable for at least the detection window.
    pub writer_down_long_enough: bool,
}

/// What is known of the writer from earlier cycles (status), for the errant
/// check of a failover candidate when the writer cannot be asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterHistory {
    /// The writer's executed GTID set at its last observation.
    pub gtid_executed: String,
    /// Where its own transactions come from: its server uuid (MySQL) or
    /// server_id (MariaDB).
    pub source: String,
}

/// Everything [`decide`] needs.
#[derive(Clone, Debug)]
pub struct Input {
    /// Routing of writes.
    pub mode: WriteMode,
    /// Engine the spec declares.
    pub engine: Engine,
    /// What to do on applier errors.
    pub policy: ApplierErrorPolicy,
    /// The replication account (to recognise a correctly wired channel).
    pub replication_user: String,
    /// Port the servers listen on.
    pub port: u16,
    /// TLS the channels must use.
    pub tls: ChannelTls,
    /// The writer recorded in status, if any.
    pub current_writer: Option<u32>,
    /// Both nodes, ordinal 0 then 1.
    pub nodes: [NodeFacts; 2],
    /// Automatic failover.
    pub failover: FailoverInput,
    /// The writer's last known GTID set and identity (from status).
    pub writer_history: Option<WriterHistory>,
    /// A pending switchover request: the ordinal that should take writes.
    pub switchover: Option<u32>,
    /// `status.writerEpoch`.
    pub epoch: u64,
    /// Durability asked for and what is known of acknowledgements.
    pub durability: DurabilityInput,
    /// The writer Lease (SingleWriter).
    pub lease: LeaseInput,
    /// Re-seeds running or backing off.
    pub seed: SeedInput,
    /// `spec.replication.maxReadLagSeconds`: a replica further behind
    /// serves no reads.
    pub max_read_lag: Option<u32>,
    /// A change of the writer to `current_writer` claimed at `epoch` and
    /// not finished (`status.pendingRoleChange`).
    pub pending: Option<PendingChange>,
}

/// A change of the writer claimed at the current epoch whose claiming
/// cycle did not finish it (its operator was killed, or lost its
/// leadership): status already names its new writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingChange {
    /// The writer it replaces.
    pub from: u32,
    /// A failover or a switchover.
    pub kind: RoleChangeKind,
    /// The old writer's pod is no longer the one it ran in when the change
    /// was claimed: the StatefulSet's re-creation, which boots read-only
    /// (a resumed failover does not delete it again).
    pub old_pod_replaced: bool,
}

/// The writer Lease (SingleWriter), as the operator sees it
/// ([`crate::lease`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseInput {
    /// The Lease exists (the reconcile creates it).
    pub exists: bool,
    /// The ordinal it names (`None`: given back, or never handed).
    pub holder: Option<u32>,
    /// The writer epoch it was handed at.
    pub epoch: u64,
    /// Renewed within its duration, by the operator's own clock from when
    /// it saw the last renewal.
    pub live: bool,
    /// It carries both nodes' current addresses.
    pub addresses_current: bool,
}

/// Durability (SingleWriter) as the spec asks, status records and the
/// caller measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurabilityInput {
    /// `SemiSync` or `Async` (in force: the spec's, or the mode's default).
    pub mode: DurabilityMode,
    /// The node `status.staleReplica` names.
    pub stale: Option<u32>,
    /// The writer's commits have had no acknowledgement for the detection
    /// window (no semi-sync replica connected, or commits waiting and none
    /// acknowledged since the last look).
    pub acks_missing_long_enough: bool,
}

/// A named action of the plan. Its name (the Event reason) is in
/// `crate::controller::events::StepName`.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Create the operator's accounts on `node` (replication auth failed).
    EnsureUsers {
        /// Ordinal.
        node: u32,
    },
    /// Point `node` at `source` with auto-position and start it.
    WireReplication {
        /// The replica.
        node: u32,
        /// The source.
        source: u32,
    },
    /// Make `node` read-only for everyone and end client connections.
    Fence {
        /// Ordinal.
        node: u32,
    },
    /// Make `node` writable.
    Unfence {
        /// Ordinal.
        node: u32,
    },
    /// Set the `mysql-aa.io/role` label of `node`'s pod.
    Label {
        /// Ordinal.
        node: u32,
        /// The role.
        role: Role,
    },
    /// Make `node` the writer in place of the unreachable `from`: first it
    /// applies every transaction it received from `from` (bounded by
    /// `failover.applyTimeoutSeconds`).
    Promote {
        /// The new writer.
        node: u32,
        /// The failed writer.
        from: u32,
    },
    /// Failover: delete the pod of the unreachable old writer `node`, so its
    /// kubelet stops the server (ending every client connection it may
    /// still serve) before the replica is promoted. The StatefulSet
    /// recreates it; it boots read-only.
    Isolate {
        /// The old writer.
        node: u32,
    },
    /// Rolling update: delete the outdated pod `node` (a graceful shutdown),
    /// so the StatefulSet recreates it on the new configuration. Only the
    /// replica (SingleWriter) or one node at a time (MultiWriter) of a
    /// healthy pair.
    Restart {
        /// Ordinal.
        node: u32,
    },
    /// Switchover: wait until `node` has applied every transaction the
    /// fenced writer `from` executed (bounded by
    /// `failover.applyTimeoutSeconds`).
    CatchUp {
        /// The new writer.
        node: u32,
        /// The fenced old writer.
        from: u32,
    },
    /// First step of every change of the writer: record in status, if the
    /// epoch is still `epoch - 1` (compare-and-set), that `node` takes
    /// writes from epoch `epoch` on, and which node is `stale` (a failover's
    /// old writer under `SemiSync`).
    /// Hand the writer Lease to `node` at `epoch` (its agent renews it
    /// from then on), with both nodes' addresses.
    HandLease {
        /// The writer.
        node: u32,
        /// The epoch it takes writes at.
        epoch: u64,
    },
    /// Failover of a writer whose agent held the Lease: wait until any
    /// confirmation the old writer got from the candidate (before its
    /// receiver stopped) has run out: the old writer's agent has fenced it
    /// by then (the wait is what the candidate's agent says is left).
    AwaitFence {
        /// The old writer.
        from: u32,
    },
    ClaimEpoch {
        /// The new epoch.
        epoch: u64,
        /// The new writer.
        node: u32,
        /// The node not promotable from now on, if any.
        stale: Option<u32>,
        /// The writer it replaces and why (`None`: a first election),
        /// recorded as `status.pendingRoleChange` until the change is done.
        replaces: Option<(u32, RoleChangeKind)>,
    },
    /// `SemiSync` failover: stop `node`'s receiver, so the old writer gets
    /// no acknowledgement and can commit nothing more.
    StopReceiving {
        /// The candidate.
        node: u32,
    },
    /// `SemiSync`: record in status (compare-and-set on `epoch`) that
    /// `node` is stale, before the writer commits without it.
    MarkStale {
        /// The replica.
        node: u32,
        /// The current epoch.
        epoch: u64,
    },
    /// `SemiSync`: `node`'s commits wait for the replica's acknowledgement.
    SemiSyncOn {
        /// Ordinal.
        node: u32,
    },
    /// `node`'s commits no longer wait (a replica, or the writer of a
    /// stale replica).
    SemiSyncOff {
        /// Ordinal.
        node: u32,
    },
    /// `SemiSync`: `node` has every transaction of the writer and
    /// acknowledges again: remove `status.staleReplica` (compare-and-set on
    /// `epoch`).
    ClearStale {
        /// The replica.
        node: u32,
        /// The current epoch.
        epoch: u64,
    },
    /// Copy the writer `from`'s data into `node` (which cannot catch up by
    /// replication), then restart it on the copy. Runs beside the loop; the
    /// node is not promotable until it replicates again.
    Reseed {
        /// The recipient.
        node: u32,
        /// The donor: the writer.
        from: u32,
        /// Why.
        reason: SeedReason,
        /// Transactions only the recipient has, which the copy discards
        /// (a requested re-seed of an errant node).
        discards: Option<String>,
    },
    /// End `sessions` on the source `node`: binary log dump sessions of
    /// the replication account left by a replica that is gone. A replica
    /// that vanished without closing its connection (its node cut off, its
    /// pod deleted) leaves its dump session blocked in a write for up to
    /// `net_write_timeout` (60 s); on MariaDB its replacement, which has
    /// the same `server_id`, receives nothing until that session ends.
    EndStaleSessions {
        /// The source.
        node: u32,
        /// Connection ids.
        sessions: Vec<u64>,
    },
    /// Skip exactly the failing transaction on `node` (SkipAndRecord).
    SkipTransaction {
        /// Ordinal.
        node: u32,
        /// The transaction.
        failure: ApplierFailure,
    },
}

/// Something wrong with one node, as the decision sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The node's pod does not exist.
    PodMissing {
        /// Ordinal.
        node: u32,
    },
    /// The server did not answer.
    Unreachable {
        /// Ordinal.
        node: u32,
        /// What the seam said.
        error: String,
    },
    /// The server is not the engine the spec declares.
    WrongEngine {
        /// Ordinal.
        node: u32,
        /// What it runs.
        runs: Flavor,
        /// What the spec says.
        want: Engine,
    },
    /// The pod is not Ready.
    PodNotReady {
        /// Ordinal.
        node: u32,
    },
    /// The applier stopped on an error the seam could not read in full.
    ApplierStopped {
        /// Ordinal.
        node: u32,
        /// The error number.
        errno: u32,
    },
    /// The peer refused the replication account (error 1045).
    AccountRefused {
        /// The replica.
        node: u32,
        /// The source that refused it.
        peer: u32,
    },
    /// The replica executed transactions the writer does not have.
    Errant {
        /// Ordinal.
        node: u32,
        /// The transactions.
        set: String,
    },
    /// `SemiSync`: the node is recorded stale: the writer commits without
    /// its acknowledgement and it is not promotable.
    Stale {
        /// Ordinal.
        node: u32,
    },
    /// The node is being re-seeded from the writer.
    Seeding {
        /// Ordinal.
        node: u32,
    },
    /// The node needs a copy of the writer's data, and none starts now.
    SeedHeld {
        /// Ordinal.
        node: u32,
        /// Why none starts.
        why: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::PodMissing { node } => write!(f, "pod of ordinal {node} does not exist"),
            Problem::Unreachable { node, error } => {
                write!(f, "ordinal {node} is unreachable: {error}")
            }
            Problem::WrongEngine { node, runs, want } => {
                write!(f, "ordinal {node} runs {runs} but spec.engine is {want:?}")
            }
            Problem::PodNotReady { node } => write!(f, "pod of ordinal {node} is not ready"),
            Problem::Stale { node } => write!(
                f,
                "ordinal {node} is stale: the writer commits without its acknowledgement, and it is not promotable until it has caught up"
            ),
            Problem::ApplierStopped { node, errno } => {
                write!(f, "ordinal {node}: applier stopped on error {errno}")
            }
            Problem::AccountRefused { node, peer } => write!(
                f,
                "ordinal {node}: replication account refused by ordinal {peer}"
            ),
            Problem::Errant { node, set } => write!(
                f,
                "ordinal {node} has errant transactions (executed, but not on the writer): {set}"
            ),
            Problem::Seeding { node } => write!(
                f,
                "ordinal {node} is being re-seeded from the writer (status.seed); it is not promotable until it replicates again"
            ),
            Problem::SeedHeld { node, why } => write!(
                f,
                "ordinal {node} cannot catch up (the writer purged binary logs it needs) and needs a re-seed: {why}"
            ),
        }
    }
}

/// Why the lost writer's peer is not promoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// `spec.failover.automatic` is false.
    AutomaticFailoverOff,
    /// The writer has not been unreachable for the detection window yet.
    WithinDetectionWindow,
    /// The candidate is not reachable and ready (or runs another engine).
    CandidateNotReady {
        /// Ordinal.
        candidate: u32,
    },
    /// The candidate did not replicate from the writer.
    CandidateNotReplicating {
        /// Ordinal.
        candidate: u32,
    },
    /// The candidate has transactions the writer did not.
    CandidateErrant {
        /// Ordinal.
        candidate: u32,
        /// The transactions.
        set: String,
    },
    /// `SemiSync`: the candidate is recorded stale (it stopped
    /// acknowledging; the writer then committed without it).
    CandidateStale {
        /// Ordinal.
        candidate: u32,
    },
    /// The candidate lacks data the writer purged from its binary logs, or
    /// is being re-seeded.
    CandidateNeedsSeed {
        /// Ordinal.
        candidate: u32,
    },
    /// The writer's agent still renews the writer Lease: the writer is
    /// alive and cut off from the operator only (it keeps its clients);
    /// a failover waits until the Lease expires.
    WriterLeaseLive,
}

/// Why no writer could be chosen (SingleWriter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoWriter {
    /// The recorded writer is unreachable and its peer is held back.
    WriterLost {
        /// The lost writer.
        writer: u32,
        /// Why its peer is not promoted.
        hold: Hold,
    },
    /// A first election waits for both nodes to be ready.
    WaitingForBothNodes,
    /// A first election had no observation of a node.
    NotObserved,
    /// Neither node has every transaction of the other.
    Diverged,
    /// Both nodes started on empty volumes of a pair that had data: no node
    /// has the pair's data to copy from.
    BothAwaitingSeed,
}

impl std::fmt::Display for NoWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoWriter::WriterLost { writer, hold } => {
                write!(f, "the writer (ordinal {writer}) is unreachable; ")?;
                match hold {
                    Hold::AutomaticFailoverOff => write!(f, "automatic failover is off"),
                    Hold::WithinDetectionWindow => write!(f, "within the detection window"),
                    Hold::CandidateNotReady { candidate } => write!(
                        f,
                        "ordinal {candidate} cannot take over: not reachable and ready"
                    ),
                    Hold::CandidateNotReplicating { candidate } => write!(
                        f,
                        "ordinal {candidate} cannot take over: it was not replicating from the writer"
                    ),
                    Hold::CandidateErrant { candidate, set } => write!(
                        f,
                        "ordinal {candidate} cannot take over: it has errant transactions {set}"
                    ),
                    Hold::CandidateStale { candidate } => write!(
                        f,
                        "ordinal {candidate} cannot take over: it is stale (status.staleReplica: the writer committed without its acknowledgement)"
                    ),
                    Hold::CandidateNeedsSeed { candidate } => write!(
                        f,
                        "ordinal {candidate} cannot take over: it lacks data the writer purged from its binary logs (it needs a re-seed)"
                    ),
                    Hold::WriterLeaseLive => write!(
                        f,
                        "its agent still renews the writer Lease (the writer is alive, cut off from the operator only); waiting for the Lease to expire"
                    ),
                }
            }
            NoWriter::WaitingForBothNodes => {
                write!(
                    f,
                    "waiting for both nodes to be ready before electing a writer"
                )
            }
            NoWriter::NotObserved => write!(f, "no observation"),
            NoWriter::Diverged => write!(
                f,
                "the nodes have diverged: neither has every transaction of the other"
            ),
            NoWriter::BothAwaitingSeed => write!(
                f,
                "both nodes started on empty volumes of a pair that had data: neither has the pair's data (restore it, or recreate the pair: README, runbook)"
            ),
        }
    }
}

/// Health of the pair as observed (before the plan runs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Both channels run.
    pub replicating: bool,
    /// The writer(s) are reachable, writable and labelled.
    pub writer_available: bool,
    /// Why the pair is degraded (empty: it is not).
    pub degraded: Vec<Problem>,
    /// Applier stops: node and the transaction.
    pub halted: Vec<(u32, ApplierFailure)>,
    /// Why no writer could be chosen, when none was.
    pub no_writer_reason: Option<NoWriter>,
    /// A replica with errant transactions (SingleWriter): its ordinal and
    /// the transactions the writer does not have.
    pub errant: Option<(u32, String)>,
}

/// What a plan does with a pending switchover request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Switchover {
    /// The writer moves: fence `from`, catch `to` up, promote `to`.
    Move {
        /// The old writer.
        from: u32,
        /// The new writer.
        to: u32,
    },
    /// The target already is the writer: nothing to do.
    AlreadyWriter,
    /// A rolling update moves the writer off an outdated node: as `Move`,
    /// asked by no one (the writer restarts next).
    Rolling {
        /// The old (outdated) writer.
        from: u32,
        /// The new writer.
        to: u32,
    },
    /// A precondition does not hold; nothing changes.
    Refused(String),
}

/// The outcome of [`decide`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Steps, in the order they must run.
    pub steps: Vec<Step>,
    /// The writer (SingleWriter) after the plan.
    pub writer: Option<u32>,
    /// An automatic failover this plan performs: (from, to).
    pub failover: Option<(u32, u32)>,
    /// What happens to the pending switchover request, if any.
    pub switchover: Option<Switchover>,
    /// Health before the plan.
    pub health: Health,
    /// The re-seed verdict, if a node needs one or one is asked for.
    pub seed: Option<SeedVerdict>,
}

fn flavor_of(engine: Engine) -> Flavor {
    match engine {
        Engine::MySQL => Flavor::MySQL,
        Engine::MariaDB => Flavor::MariaDB,
    }
}

/// Whether `node` is wired to `peer` as wanted (TLS included).
fn wired_to(input: &Input, node: &NodeFacts, peer: &NodeFacts) -> bool {
    let (Some(o), Some(addr)) = (node.observation(), peer.address.as_deref()) else {
        return false;
    };
    o.replica
        .as_ref()
        .is_some_and(|r| r.wired_as(addr, input.port, &input.replication_user, &input.tls))
}

/// The binary log dump sessions of `replication_user` on a source that a
/// replica left behind: each but the newest, once there are two or more
/// (the peer is the only replica of the account, and its current session
/// is the newest; a newer one means it reconnected). Pure.
pub fn stale_dump_sessions(sessions: &[DumpSession], replication_user: &str) -> Vec<u64> {
    let ours = || sessions.iter().filter(|s| s.user == replication_user);
    // The newest: fewest seconds, then the highest (latest) id.
    let newest = ours()
        .min_by_key(|s| (s.seconds, std::cmp::Reverse(s.id)))
        .map(|s| s.id);
    let mut ids: Vec<u64> = ours()
        .map(|s| s.id)
        .filter(|id| Some(*id) != newest)
        .collect();
    ids.sort_unstable();
    ids
}

/// Whether the node's applier stopped on an error.
pub fn halted(o: &Observation) -> bool {
    o.replica.as_ref().is_some_and(|r| r.halted())
}

/// Whether replica `n` is too far behind to serve reads under
/// `spec.replication.maxReadLagSeconds` (`max`): further behind its source
/// than `max`, or its applier stopped (it then falls behind without bound).
/// A node not yet wired, or not observed, is judged by nothing here.
pub fn too_far_behind(n: &NodeFacts, max: Option<u32>) -> bool {
    let (Some(max), Some(r)) = (max, n.observation().and_then(|o| o.replica.as_ref())) else {
        return false;
    };
    r.sql_running != ThreadState::Yes || r.seconds_behind_source.is_some_and(|s| s > i64::from(max))
}

/// Errant transactions of a failover candidate, judged against what status
/// last recorded of the writer.
fn candidate_errant(input: &Input, candidate: &NodeFacts) -> Option<String> {
    let (h, o) = (input.writer_history.as_ref()?, candidate.observation()?);
    let errant = gtid::errant(
        flavor_of(input.engine),
        &o.gtid_executed,
        &h.gtid_executed,
        &h.source,
    );
    (!errant.is_empty()).then(|| errant.join(","))
}

/// The most a switchover target may lag: the writer stays fenced while the
/// target applies what it is behind.
pub const MAX_SWITCHOVER_LAG_SECONDS: i64 = 5;

/// Whether `target` may take the writer role from the reachable writer `w`
/// by a switchover; `Err` says why not.
fn switchover_ready(input: &Input, w: u32, target: u32, errant: bool) -> Result<(), String> {
    let (writer, t) = (
        &input.nodes[w as usize % 2],
        &input.nodes[target as usize % 2],
    );
    let flavor = flavor_of(input.engine);
    let replica = t.observation().and_then(|o| o.replica.as_ref());
    if !(t.reachable() && t.pod_ready) {
        Err(format!("ordinal {target} is not reachable and ready"))
    } else if !t.observation().is_some_and(|o| o.info.flavor == flavor) {
        Err(format!("ordinal {target} does not run {:?}", input.engine))
    } else if !wired_to(input, t, writer) {
        Err(format!(
            "ordinal {target} does not replicate from the writer"
        ))
    } else if !replica.is_some_and(|r| r.running()) {
        Err(format!(
            "ordinal {target}'s replication threads are not both running"
        ))
    } else if errant {
        Err(format!("ordinal {target} has errant transactions"))
    } else if let Some(lag) = replica
        .and_then(|r| r.seconds_behind_source)
        .filter(|l| *l > MAX_SWITCHOVER_LAG_SECONDS)
    {
        // The writer would stay fenced while the target catches up.
        Err(format!(
            "ordinal {target} is {lag}s behind the writer (at most {MAX_SWITCHOVER_LAG_SECONDS}s): writes would stop while it catches up"
        ))
    } else {
        Ok(())
    }
}

/// Chooses the writer (SingleWriter).
fn elect(input: &Input) -> (Option<u32>, Option<NoWriter>) {
    let [a, b] = &input.nodes;
    let usable = |n: &NodeFacts| n.reachable() && n.pod_ready;
    if let Some(w) = input.current_writer {
        let node = &input.nodes[w as usize % 2];
        if node.reachable() {
            return (Some(w), None);
        }
        let candidate = &input.nodes[1 - w as usize % 2];
        let f = input.failover;
        let engine_ok = candidate
            .observation()
            .is_some_and(|o| o.info.flavor == flavor_of(input.engine));
        let c = candidate.ordinal;
        let hold = if !f.automatic {
            Hold::AutomaticFailoverOff
        } else if !f.writer_down_long_enough {
            Hold::WithinDetectionWindow
        } else if input.lease.live && input.lease.holder == Some(w) {
            Hold::WriterLeaseLive
        } else if !(usable(candidate) && engine_ok) {
            Hold::CandidateNotReady { candidate: c }
        } else if reseed::needs_seed(candidate) || input.seed.running == Some(c) {
            Hold::CandidateNeedsSeed { candidate: c }
        } else if !wired_to(input, candidate, node) {
            Hold::CandidateNotReplicating { candidate: c }
        } else if let Some(set) = candidate_errant(input, candidate) {
            Hold::CandidateErrant { candidate: c, set }
        } else if input.durability.mode == DurabilityMode::SemiSync
            && input.durability.stale == Some(c)
        {
            Hold::CandidateStale { candidate: c }
        } else {
            return (Some(c), None);
        };
        return (None, Some(NoWriter::WriterLost { writer: w, hold }));
    }
    // A node awaiting a copy of the pair's data is never elected: its
    // peer is, alone, or none.
    let awaiting = |n: &NodeFacts| n.observation().is_some_and(|o| o.awaiting_seed);
    match (awaiting(a), awaiting(b)) {
        (true, true) => return (None, Some(NoWriter::BothAwaitingSeed)),
        (true, false) | (false, true) => {
            let other = if awaiting(a) { b } else { a };
            return if usable(other) {
                (Some(other.ordinal), None)
            } else {
                (None, Some(NoWriter::WaitingForBothNodes))
            };
        }
        (false, false) => {}
    }
    let writable: Vec<&NodeFacts> = input
        .nodes
        .iter()
        .filter(|n| n.observation().is_some_and(Observation::writable))
        .collect();
    if writable.len() == 1 {
        return (Some(writable[0].ordinal), None);
    }
    if !(usable(a) && usable(b)) {
        return (None, Some(NoWriter::WaitingForBothNodes));
    }
    let flavor = flavor_of(input.engine);
    let (ga, gb) = match (a.observation(), b.observation()) {
        (Some(x), Some(y)) => (&x.gtid_executed, &y.gtid_executed),
        _ => return (None, Some(NoWriter::NotObserved)),
    };
    if gtid::contains(flavor, ga, gb) {
        (Some(0), None)
    } else if gtid::contains(flavor, gb, ga) {
        (Some(1), None)
    } else {
        (None, Some(NoWriter::Diverged))
    }
}

/// SingleWriter: the current writer is unreachable, no failover replaces
/// it (within the detection window, or automatic failover off), and its pod
/// still carries the writer label and is not terminating. It keeps the
/// label: writes sent to it fail until its server answers again (it boots
/// fenced and is unfenced by the next plan), and no other node is writable.
fn keeps_writer_label(input: &Input, plan: &Plan, n: &NodeFacts) -> bool {
    input.mode == WriteMode::SingleWriter
        && !n.reachable()
        && n.pod_exists
        && !n.terminating
        && n.role_label == Some(Role::Writer)
        && input.current_writer == Some(n.ordinal)
        && plan.failover.is_none()
        && plan.writer.is_none()
}

/// Invariant 6 (SingleWriter): the writer's channel from its peer is wired
/// or restarted only when the peer is fenced and has no transaction the
/// writer lacks. An old writer that is cut off, or that came back with
/// transactions it committed (or had pending) after it lost the role, is
/// never replicated into the writer: its late writes would make two
/// writers, and under `SemiSync` the new writer's receiver would give the
/// old one the acknowledgements it waits for.
fn keep_writer_channel_safe(input: &Input, plan: &mut Plan) {
    let (WriteMode::SingleWriter, Some(w)) = (input.mode, plan.writer) else {
        return;
    };
    let flavor = flavor_of(input.engine);
    let writer = &input.nodes[w as usize % 2];
    let peer = &input.nodes[1 - w as usize % 2];
    let safe = match (writer.observation(), peer.observation()) {
        (Some(wo), Some(po)) => {
            po.fenced() && gtid::contains(flavor, &wo.gtid_executed, &po.gtid_executed)
        }
        _ => false,
    };
    if !safe {
        plan.steps
            .retain(|s| !matches!(s, Step::WireReplication { node, .. } if *node == w));
    }
}

/// How a change of the writer left unfinished is finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resumed {
    /// As a failover (its steps are idempotent): the candidate's receiver
    /// stopped, the old writer's fence awaited, the old writer fenced (if
    /// it came back) or its pod deleted, the candidate caught up on what it
    /// received.
    Failover { from: u32, to: u32 },
    /// A switchover whose old writer answers: fenced (as any replica), then
    /// the new writer applies all it executed before it takes writes.
    CatchUp { from: u32, to: u32 },
}

/// A change of the writer that an earlier cycle claimed (status names its
/// new writer already) and did not finish, when the election keeps that
/// writer: it is finished before the writer takes writes. The role never
/// goes back to the node the change replaced: the claim made it the
/// writer's at this epoch.
fn resumed_change(input: &Input, writer: Option<u32>) -> Option<Resumed> {
    let p = input.pending?;
    let to = writer.filter(|w| input.current_writer == Some(*w) && *w != p.from)?;
    let old_answers = input.nodes[p.from as usize % 2].reachable();
    Some(match p.kind {
        RoleChangeKind::Switchover if old_answers => Resumed::CatchUp { from: p.from, to },
        _ => Resumed::Failover { from: p.from, to },
    })
}

/// The first step of a change of the writer (SingleWriter): the epoch
/// claim. A failover under `SemiSync` records the old writer stale in the
/// same write (it may hold commits the new writer never acknowledged, and
/// the new writer must not wait for a node that is down).
fn claim_epoch(input: &Input, plan: &Plan) -> Option<Step> {
    let w = plan
        .writer
        .filter(|_| input.mode == WriteMode::SingleWriter)?;
    if input.current_writer == Some(w) {
        return None;
    }
    let stale = plan
        .failover
        .filter(|_| input.durability.mode == DurabilityMode::SemiSync)
        .map(|(from, _)| from);
    let replaces = match (plan.failover, &plan.switchover) {
        (Some((from, _)), _) => Some((from, RoleChangeKind::Failover)),
        (None, Some(Switchover::Move { from, .. } | Switchover::Rolling { from, .. })) => {
            Some((*from, RoleChangeKind::Switchover))
        }
        _ => None,
    };
    Some(Step::ClaimEpoch {
        epoch: input.epoch + 1,
        node: w,
        stale,
        replaces,
    })
}

/// SingleWriter: the writer Lease is handed to the writer (at the epoch
/// this plan claims, if it claims one) when it names another node or
/// epoch, or old addresses; before the writer is unfenced, so its agent
/// holds the Lease whenever it takes writes. Only a reachable writer gets
/// it (a lost one's agent would give it back at once).
fn hand_lease(input: &Input, plan: &mut Plan, claim: Option<&Step>) {
    let (WriteMode::SingleWriter, Some(w), true) = (input.mode, plan.writer, input.lease.exists)
    else {
        return;
    };
    if !input.nodes[w as usize % 2].reachable() {
        return;
    }
    let epoch = match claim {
        Some(Step::ClaimEpoch { epoch, .. }) => *epoch,
        _ => input.epoch,
    };
    let l = input.lease;
    if l.holder == Some(w) && l.epoch == epoch && l.addresses_current {
        return;
    }
    let step = Step::HandLease { node: w, epoch };
    let at = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::Unfence { node } if *node == w))
        .unwrap_or(plan.steps.len());
    plan.steps.insert(at, step);
}

/// Durability steps of a plan: before unfencing, and at its end.
#[derive(Default)]
struct DurabilitySteps {
    before_unfence: Vec<Step>,
    last: Vec<Step>,
}

/// Whether `o` has (executed or received) every transaction of `set`.
fn holds(flavor: Flavor, o: &Observation, set: &str) -> bool {
    gtid::contains(flavor, &o.gtid_executed, set)
        || o.replica
            .as_ref()
            .is_some_and(|r| gtid::contains(flavor, &r.retrieved_gtid_set, set))
}

/// `SemiSync` (SingleWriter): only the writer waits for acknowledgements;
/// when they have been missing for the detection window its replica is
/// first recorded stale (compare-and-set), then the writer goes on without
/// them; once the stale replica has received everything the writer
/// executed it acknowledges again, and once the writer waits and is
/// acknowledged the record is removed. `Async`: a record left from
/// `SemiSync` is removed. Pure.
fn durability_steps(input: &Input, plan: &Plan) -> DurabilitySteps {
    let mut out = DurabilitySteps::default();
    let (WriteMode::SingleWriter, Some(w)) = (input.mode, plan.writer) else {
        return out;
    };
    let role_change = input.current_writer != Some(w);
    let epoch = input.epoch + u64::from(role_change);
    // The stale node once this plan's epoch claim is written.
    let stale = if role_change {
        claim_epoch(input, plan).and_then(|c| match c {
            Step::ClaimEpoch { stale, .. } => stale,
            _ => None,
        })
    } else {
        input.durability.stale
    };
    let r = 1 - w % 2;
    if input.durability.mode == DurabilityMode::Async {
        if let Some(node) = stale {
            out.last.push(Step::ClearStale { node, epoch });
        }
        // A change to Async holds at once on the writer: until the rolling
        // update restarts it, its server runs the SemiSync configuration
        // and would wait, with no fallback, for a replica restarted without
        // semi-sync (a fault bench run saw every commit, and then the
        // rolling update's fence behind them, wait for good). The rolling
        // update starts only once a cycle plans nothing, so after this.
        if waits_for_acks(&input.nodes[w as usize % 2]) {
            out.before_unfence.push(Step::SemiSyncOff { node: w });
        }
        return out;
    }
    let flavor = flavor_of(input.engine);
    let (writer, replica) = (&input.nodes[w as usize % 2], &input.nodes[r as usize]);
    if waits_for_acks(replica) {
        out.before_unfence.push(Step::SemiSyncOff { node: r });
    }
    let Some(wo) = writer.observation() else {
        return out;
    };
    let Some(semi) = wo.semi_sync else {
        // Not loaded yet (the pods still run the Async configuration).
        return out;
    };
    let caught_up = replica
        .observation()
        .filter(|o| {
            o.replica
                .as_ref()
                .is_some_and(|c| c.running() && wired_to(input, replica, writer))
        })
        .is_some_and(|o| holds(flavor, o, &wo.gtid_executed));
    let steady = !role_change && plan.switchover.is_none();
    match (stale == Some(r), semi.enabled) {
        (true, true) if semi.acknowledging() && caught_up => {
            out.last.push(Step::ClearStale { node: r, epoch });
        }
        (true, true) if input.durability.acks_missing_long_enough && steady => {
            out.before_unfence.push(Step::SemiSyncOff { node: w });
        }
        (true, false) if caught_up => out.before_unfence.push(Step::SemiSyncOn { node: w }),
        (false, false) => out.before_unfence.push(Step::SemiSyncOn { node: w }),
        (false, true) if input.durability.acks_missing_long_enough && steady => {
            out.before_unfence.extend([
                Step::MarkStale { node: r, epoch },
                Step::SemiSyncOff { node: w },
            ]);
        }
        _ => {}
    }
    out
}

/// Errant transactions (SingleWriter): what the replica executed that the
/// writer `w` does not have. Such a node is reported and never promoted.
fn errant_replica(input: &Input, w: u32) -> Option<(u32, String)> {
    let flavor = flavor_of(input.engine);
    let (writer, replica) = (
        &input.nodes[w as usize % 2],
        &input.nodes[1 - w as usize % 2],
    );
    let (wo, ro) = (writer.observation()?, replica.observation()?);
    if ro.info.flavor != flavor || gtid::contains(flavor, &wo.gtid_executed, &ro.gtid_executed) {
        return None;
    }
    let parts: Vec<String> = gtid::missing(flavor, &wo.gtid_executed, &ro.gtid_executed)
        .into_iter()
        .map(|p| p.text)
        .collect();
    Some((replica.ordinal, parts.join(",")))
}

/// Whether the node was observed making its commits wait for an
/// acknowledgement (semi-sync source enabled).
fn waits_for_acks(n: &NodeFacts) -> bool {
    n.observation()
        .and_then(|o| o.semi_sync)
        .is_some_and(|s| s.enabled)
}

/// Rolling update of a settled, healthy pair (empty plan so far): restart
/// the outdated replica first; when only the writer is outdated, move the
/// writer role to the replica (a switchover), so the old writer restarts as
/// a replica next. MultiWriter: one outdated node at a time, the highest
/// ordinal first.
fn roll(input: &Input, plan: &mut Plan, health: &Health) {
    let healthy = health.replicating
        && health.degraded.is_empty()
        && health.halted.is_empty()
        && input.nodes.iter().all(|n| n.reachable() && n.pod_ready);
    if !healthy || !input.nodes.iter().any(|n| n.outdated) {
        return;
    }
    match (input.mode, plan.writer) {
        (WriteMode::SingleWriter, Some(w)) => {
            let r = 1 - w % 2;
            if input.nodes[r as usize].outdated {
                plan.steps.push(Step::Restart { node: r });
            } else if switchover_ready(input, w, r, health.errant.is_some()).is_ok() {
                plan.switchover = Some(Switchover::Rolling { from: w, to: r });
                plan.writer = Some(r);
                plan.steps.extend([
                    Step::Fence { node: w },
                    Step::Label {
                        node: w,
                        role: Role::Replica,
                    },
                    Step::CatchUp { node: r, from: w },
                ]);
                // The new writer waits for acknowledgements (SemiSync)
                // before it is unfenced, as in a requested switchover.
                plan.steps
                    .extend(durability_steps(input, plan).before_unfence);
                plan.steps.extend([
                    Step::Unfence { node: r },
                    Step::Label {
                        node: r,
                        role: Role::Writer,
                    },
                ]);
            }
        }
        (WriteMode::MultiWriter, _) => {
            if let Some(n) = input.nodes.iter().rev().find(|n| n.outdated) {
                plan.steps.push(Step::Restart { node: n.ordinal });
            }
        }
        (WriteMode::SingleWriter, None) => {}
    }
}

/// Computes the plan for one cycle. Pure.
pub fn decide(input: &Input) -> Plan {
    let mut plan = Plan::default();
    let mut resumed_catch_up = None;
    let flavor = flavor_of(input.engine);
    let mut health = Health::default();

    // Observation-level health.
    for n in &input.nodes {
        match (&n.server, n.pod_exists) {
            (_, false) => health
                .degraded
                .push(Problem::PodMissing { node: n.ordinal }),
            (Err(e), true) => health.degraded.push(Problem::Unreachable {
                node: n.ordinal,
                error: e.clone(),
            }),
            (Ok(o), true) => {
                if o.info.flavor != flavor {
                    health.degraded.push(Problem::WrongEngine {
                        node: n.ordinal,
                        runs: o.info.flavor,
                        want: input.engine,
                    });
                }
                if !n.pod_ready {
                    health
                        .degraded
                        .push(Problem::PodNotReady { node: n.ordinal });
                }
            }
        }
    }
    let engine_ok = |n: &NodeFacts| n.observation().is_some_and(|o| o.info.flavor == flavor);

    // Replication, both directions.
    for i in 0..2usize {
        let (node, peer) = (&input.nodes[i], &input.nodes[1 - i]);
        let Some(o) = node.observation().filter(|_| engine_ok(node)) else {
            continue;
        };
        let stale = stale_dump_sessions(&o.dump_sessions, &input.replication_user);
        if !stale.is_empty() {
            plan.steps.push(Step::EndStaleSessions {
                node: node.ordinal,
                sessions: stale,
            });
        }
        if peer.address.is_none() {
            continue;
        }
        // Replication cannot bring it back: the re-seed (below) does; and
        // nothing is replicated from a node awaiting or receiving a copy.
        let seeding =
            |n: &NodeFacts| reseed::needs_seed(n) || input.seed.running == Some(n.ordinal);
        if seeding(node) || seeding(peer) {
            continue;
        }
        let wired = wired_to(input, node, peer);
        let replica = o.replica.as_ref();
        if wired && halted(o) {
            if let Some(f) = &node.failure {
                health.halted.push((node.ordinal, f.clone()));
                if input.policy == ApplierErrorPolicy::SkipAndRecord {
                    plan.steps.push(Step::SkipTransaction {
                        node: node.ordinal,
                        failure: f.clone(),
                    });
                }
            } else {
                health.degraded.push(Problem::ApplierStopped {
                    node: node.ordinal,
                    errno: replica.map(|r| r.last_sql_errno).unwrap_or(0),
                });
            }
            continue;
        }
        if let Some(r) = replica.filter(|_| wired)
            && r.last_io_errno == 1045
        {
            health.degraded.push(Problem::AccountRefused {
                node: node.ordinal,
                peer: peer.ordinal,
            });
            if peer.reachable() {
                plan.steps.push(Step::EnsureUsers { node: peer.ordinal });
            }
        }
        let running = replica
            .is_some_and(|r| r.sql_running == ThreadState::Yes && r.io_running != ThreadState::No);
        if !wired || !running {
            plan.steps.push(Step::WireReplication {
                node: node.ordinal,
                source: peer.ordinal,
            });
        }
    }
    health.replicating = input.nodes.iter().all(|n| {
        n.observation()
            .and_then(|o| o.replica.as_ref())
            .is_some_and(|r| r.running())
            && wired_to(input, n, &input.nodes[1 - n.ordinal as usize % 2])
    });

    // Who should be writable, and the labels.
    let desired: [Option<Role>; 2] = match input.mode {
        WriteMode::MultiWriter => {
            if input.switchover.is_some() {
                plan.switchover = Some(Switchover::Refused(
                    "MultiWriter: both nodes take writes; there is no writer to move".into(),
                ));
            }
            [Some(Role::Writer), Some(Role::Writer)]
        }
        WriteMode::SingleWriter => {
            let (mut writer, why) = elect(input);
            if let (Some(w), Some(old)) = (writer, input.current_writer)
                && w != old
            {
                plan.failover = Some((old, w));
            }
            match resumed_change(input, writer) {
                Some(Resumed::Failover { from, to }) => plan.failover = Some((from, to)),
                Some(Resumed::CatchUp { from, to }) => resumed_catch_up = Some((from, to)),
                None => {}
            }
            health.no_writer_reason = why;
            health.errant = writer
                .filter(|_| plan.failover.is_none())
                .and_then(|w| errant_replica(input, w));
            if let Some(t) = input.switchover {
                let verdict = match writer {
                    _ if plan.failover.is_some() => {
                        Switchover::Refused("a failover is in progress".into())
                    }
                    None => Switchover::Refused(format!(
                        "there is no writer to move: {}",
                        health
                            .no_writer_reason
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    )),
                    Some(w) if w == t => Switchover::AlreadyWriter,
                    Some(w) => {
                        let errant = health.errant.as_ref().is_some_and(|(n, _)| *n == t);
                        match switchover_ready(input, w, t, errant) {
                            Ok(()) => {
                                writer = Some(t);
                                Switchover::Move { from: w, to: t }
                            }
                            Err(why) => Switchover::Refused(why),
                        }
                    }
                };
                plan.switchover = Some(verdict);
            }
            plan.writer = writer;
            match writer {
                Some(w) => {
                    let mut d = [Some(Role::Replica), Some(Role::Replica)];
                    d[w as usize % 2] = Some(Role::Writer);
                    d
                }
                // No writer: every reachable node stays (or becomes) read-only.
                None => [Some(Role::Replica), Some(Role::Replica)],
            }
        }
    };
    let mut fences = Vec::new();
    let mut unfences = Vec::new();
    let mut replica_labels = Vec::new();
    let mut writer_labels = Vec::new();
    for n in &input.nodes {
        let i = n.ordinal as usize % 2;
        let Some(want) = desired[i] else { continue };
        // A copy lowers its recipient to read_only (the clone drops its
        // tables): it is not fenced again under it.
        let receiving = input.seed.running == Some(n.ordinal);
        if let Some(o) = n.observation().filter(|_| engine_ok(n)) {
            match want {
                Role::Replica if !o.fenced() && !receiving => {
                    fences.push(Step::Fence { node: n.ordinal })
                }
                Role::Writer if !o.writable() => unfences.push(Step::Unfence { node: n.ordinal }),
                _ => {}
            }
        }
        // Labels follow the decision. A pod that is not reachable loses the
        // writer label (so the writer Service sends writes to the other
        // node), except the SingleWriter writer that is lost but not yet
        // replaced: no other node may take its writes, and its server,
        // restarted in place, boots fenced, so it keeps the label and takes
        // writes the moment it is unfenced, with no Service update between.
        if keeps_writer_label(input, &plan, n) {
            continue;
        }
        let seeding = want == Role::Replica
            && (reseed::needs_seed(n) || input.seed.running == Some(n.ordinal));
        let want_label = match (n.reachable(), seeding) {
            // Out of the reader Service until it replicates on the copy.
            (_, true) => Role::Seeding,
            (true, false) if want == Role::Replica && too_far_behind(n, input.max_read_lag) => {
                Role::Lagging
            }
            (true, false) => want,
            (false, false) => Role::Replica,
        };
        // A terminating pod still loses the writer label (it may linger).
        if n.pod_exists
            && (!n.terminating || want_label == Role::Replica)
            && n.role_label != Some(want_label)
        {
            let step = Step::Label {
                node: n.ordinal,
                role: want_label,
            };
            match want_label {
                Role::Replica | Role::Seeding | Role::Lagging => replica_labels.push(step),
                Role::Writer => writer_labels.push(step),
            }
        }
    }
    if let (WriteMode::SingleWriter, DurabilityMode::SemiSync, Some(node)) =
        (input.mode, input.durability.mode, input.durability.stale)
    {
        health.degraded.push(Problem::Stale { node });
    }
    if let Some((n, set)) = &health.errant {
        health.degraded.push(Problem::Errant {
            node: *n,
            set: set.clone(),
        });
    }
    // Invariant 1: take away before giving. A failover first has the lost
    // writer's pod stopped (it could not be fenced), then the replica
    // catches up and is promoted.
    if let Some((from, to)) = plan.failover {
        let old = &input.nodes[from as usize % 2];
        // The old writer, reachable by clients or not, gets no
        // acknowledgement (SemiSync: it commits nothing more) and no
        // confirmation for its agent from here on.
        plan.steps.push(Step::StopReceiving { node: to });
        // Its agent fences it once a confirmation it may hold has run out,
        // before its pod is deleted (a graceful shutdown of a semi-sync
        // source releases the commits waiting for an acknowledgement) and
        // before the candidate takes writes (under Async it never waits).
        // None is needed when the agent gave the Lease back: its server
        // was not running.
        if input.lease.holder == Some(from) {
            plan.steps.push(Step::AwaitFence { from });
        }
        if old.reachable() {
            // Only a change resumed by a later cycle finds its old writer
            // reachable (it came back): fenced before the candidate is
            // promoted, not deleted.
            if let Some(i) = fences
                .iter()
                .position(|s| matches!(s, Step::Fence { node } if *node == from))
            {
                plan.steps.push(fences.remove(i));
            }
        } else if old.pod_exists
            && !old.terminating
            && !input
                .pending
                .is_some_and(|p| p.from == from && p.old_pod_replaced)
        {
            plan.steps.push(Step::Isolate { node: from });
        }
        plan.steps.push(Step::Promote { node: to, from });
    }
    keep_writer_channel_safe(input, &mut plan);
    let durability = durability_steps(input, &plan);
    plan.steps.extend(fences);
    plan.steps.extend(replica_labels);
    if let Some(Switchover::Move { from, to }) = plan.switchover {
        plan.steps.push(Step::CatchUp { node: to, from });
    } else if let Some((from, to)) = resumed_catch_up {
        plan.steps.push(Step::CatchUp { node: to, from });
    }
    plan.steps.extend(durability.before_unfence);
    plan.steps.extend(unfences);
    plan.steps.extend(writer_labels);
    plan.steps.extend(durability.last);
    if plan.steps.is_empty() && plan.switchover.is_none() {
        roll(input, &mut plan, &health);
    }
    if let Some(n) = input.seed.running {
        health.degraded.push(Problem::Seeding { node: n });
    }
    plan.seed = reseed::verdict(input, plan.writer, plan.failover.is_some());
    match plan.seed.clone() {
        Some(SeedVerdict::Start {
            node,
            from,
            reason,
            discards,
        }) => {
            health.degraded.push(Problem::Seeding { node });
            plan.steps.push(Step::Reseed {
                node,
                from,
                reason,
                discards,
            });
        }
        Some(SeedVerdict::Held {
            node,
            why,
            reason: SeedReason::SourcePurgedLogs | SeedReason::EmptyDataDirectory,
        }) => {
            health.degraded.push(Problem::SeedHeld { node, why });
        }
        // A refused request is answered, not a lasting problem.
        Some(SeedVerdict::Held { .. }) | None => {}
    }
    let claim = claim_epoch(input, &plan);
    hand_lease(input, &mut plan, claim.as_ref());
    if let Some(claim) = claim {
        plan.steps.insert(0, claim);
    }

    health.writer_available = match input.mode {
        WriteMode::MultiWriter => input.nodes.iter().all(|n| {
            n.observation().is_some_and(Observation::writable) && n.role_label == Some(Role::Writer)
        }),
        WriteMode::SingleWriter => plan.writer.is_some_and(|w| {
            let n = &input.nodes[w as usize % 2];
            n.observation().is_some_and(Observation::writable) && n.role_label == Some(Role::Writer)
        }),
    };
    plan.health = health;
    plan
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
