//! Builders of decision inputs for table tests (the decision's own, and
//! the controller's status tests).

#![allow(clippy::expect_used)]

use super::*;
use crate::mysql::{ReplicaStatus, ServerInfo, Version};

/// Server uuid of ordinal 0.
pub const U0: &str = "00000000-0000-0000-0000-000000000000";
/// Server uuid of ordinal 1.
pub const U1: &str = "11111111-1111-1111-1111-111111111111";

/// The address of ordinal `i`.
pub fn addr(i: u32) -> String {
    format!("10.0.0.{}", i + 10)
}

/// A channel from `source` with these thread states.
pub fn replica(source: u32, io: ThreadState, sql: ThreadState) -> ReplicaStatus {
    ReplicaStatus {
        source_host: addr(source),
        source_port: 3306,
        source_user: "mysqlaa_repl".into(),
        auto_position: true,
        ssl: false,
        ssl_ca_file: String::new(),
        ssl_verify_server_cert: false,
        io_running: io,
        sql_running: sql,
        last_io_errno: 0,
        last_io_error: String::new(),
        last_sql_errno: 0,
        last_sql_error: String::new(),
        seconds_behind_source: Some(0),
        retrieved_gtid_set: String::new(),
        executed_gtid_set: String::new(),
        relay_log_file: String::new(),
        relay_log_pos: 0,
    }
}

/// A node of a decision-table row: `node(1).wired().gtids(..).label(Replica)`.
/// By default its pod exists and is Ready, its MySQL 9.7 server answers,
/// read-only (fenced), with no channel, no transactions and no role label.
pub fn node(ordinal: u32) -> NodeBuilder {
    NodeBuilder(NodeFacts {
        ordinal,
        pod_exists: true,
        pod_ready: true,
        terminating: false,
        address: Some(addr(ordinal)),
        role_label: None,
        server: Ok(Observation {
            info: ServerInfo {
                flavor: Flavor::MySQL,
                version: Version::new(9, 7, 4),
                version_string: "9.7.4".into(),
                server_id: 1000 + ordinal,
                server_uuid: Some(if ordinal == 0 { U0 } else { U1 }.into()),
            },
            gtid_executed: String::new(),
            read_only: true,
            super_read_only: Some(true),
            replica: None,
            semi_sync: None,
            awaiting_seed: false,
            dump_sessions: Vec::new(),
        }),
        failure: None,
        outdated: false,
    })
}

/// A semi-sync source that waits and is acknowledged.
pub fn acking() -> crate::mysql::SemiSyncSource {
    crate::mysql::SemiSyncSource {
        enabled: true,
        waiting_for_acks: true,
        clients: 1,
        waiting_sessions: 0,
        acknowledged: 7,
    }
}

/// A semi-sync source that waits with no replica connected.
pub fn alone() -> crate::mysql::SemiSyncSource {
    crate::mysql::SemiSyncSource {
        clients: 0,
        ..acking()
    }
}

/// A semi-sync source that does not wait.
pub fn not_waiting() -> crate::mysql::SemiSyncSource {
    crate::mysql::SemiSyncSource {
        enabled: false,
        ..acking()
    }
}

/// Builds a [`NodeFacts`] for a table row.
pub struct NodeBuilder(NodeFacts);

impl NodeBuilder {
    /// Neither read-only flag on.
    pub fn writable(mut self) -> Self {
        let o = obs(&mut self.0);
        o.read_only = false;
        o.super_read_only = Some(false);
        self
    }

    /// Replicating from its peer, both threads running.
    pub fn wired(mut self) -> Self {
        let peer = 1 - self.0.ordinal;
        obs(&mut self.0).replica = Some(replica(peer, ThreadState::Yes, ThreadState::Yes));
        self
    }

    /// Its executed GTID set.
    pub fn gtids(mut self, set: &str) -> Self {
        obs(&mut self.0).gtid_executed = set.into();
        self
    }

    /// Its state as a semi-synchronous source.
    pub fn semi(mut self, state: crate::mysql::SemiSyncSource) -> Self {
        obs(&mut self.0).semi_sync = Some(state);
        self
    }

    /// Its pod's role label.
    pub fn label(mut self, role: Role) -> Self {
        self.0.role_label = Some(role);
        self
    }

    pub fn build(self) -> NodeFacts {
        self.0
    }
}

/// The observation of a node built here.
pub fn obs(n: &mut NodeFacts) -> &mut Observation {
    n.server.as_mut().expect("an observed node")
}

/// A decision input: MySQL, `Halt`, automatic failover within its window.
pub fn input(mode: WriteMode, current_writer: Option<u32>, nodes: [NodeFacts; 2]) -> Input {
    Input {
        mode,
        engine: Engine::MySQL,
        policy: ApplierErrorPolicy::Halt,
        replication_user: "mysqlaa_repl".into(),
        port: 3306,
        tls: ChannelTls::Disabled,
        current_writer,
        nodes,
        failover: FailoverInput {
            automatic: true,
            writer_down_long_enough: false,
        },
        writer_history: None,
        switchover: None,
        epoch: 0,
        durability: DurabilityInput {
            mode: DurabilityMode::Async,
            stale: None,
            acks_missing_long_enough: false,
        },
        // No Lease (as before the reconcile creates it): rows about the
        // Lease set one with `leased`.
        lease: LeaseInput::default(),
        seed: SeedInput::default(),
        pending: None,
        max_read_lag: None,
    }
}

/// `i` with a writer Lease naming `holder` at `epoch`, current addresses.
pub fn leased(mut i: Input, holder: Option<u32>, epoch: u64, live: bool) -> Input {
    i.lease = LeaseInput {
        exists: true,
        holder,
        epoch,
        live,
        addresses_current: true,
    };
    i
}
