//! Table tests of [`decide`], plus the invariants checked on every case.

use super::testkit::*;
use super::*;

fn with_tls(mut i: Input, tls: ChannelTls) -> Input {
    i.tls = tls;
    i
}

fn with_engine(mut i: Input, engine: Engine) -> Input {
    i.engine = engine;
    i
}

fn mariadb(n: NodeFacts) -> NodeFacts {
    with(n, |n| {
        let o = obs(n);
        o.info.flavor = Flavor::MariaDB;
        o.super_read_only = None;
    })
}

fn switch_to(mut i: Input, target: u32) -> Input {
    i.switchover = Some(target);
    i
}

fn history(mut i: Input, gtids: &str, source: &str) -> Input {
    i.writer_history = Some(WriterHistory {
        gtid_executed: gtids.into(),
        source: source.into(),
    });
    i
}

fn outdated(n: NodeFacts) -> NodeFacts {
    with(n, |n| n.outdated = true)
}

fn refused(p: &Plan) -> String {
    match &p.switchover {
        Some(Switchover::Refused(why)) => why.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn after_window(mut i: Input) -> Input {
    i.failover.writer_down_long_enough = true;
    i
}

/// The epoch claim of a first change of the writer (epoch 0 to 1).
fn claim(node: u32) -> Step {
    Step::ClaimEpoch {
        epoch: 1,
        node,
        stale: None,
        replaces: None,
    }
}

/// The epoch claim (0 to 1) of a failover to `node` from its peer.
fn failover_claim(node: u32) -> Step {
    claim_of(node, RoleChangeKind::Failover)
}

/// The epoch claim (0 to 1) of a switchover to `node` from its peer.
fn switchover_claim(node: u32) -> Step {
    claim_of(node, RoleChangeKind::Switchover)
}

/// The epoch claim (0 to 1) of a change of `kind` to `node` from its peer.
fn claim_of(node: u32, kind: RoleChangeKind) -> Step {
    Step::ClaimEpoch {
        epoch: 1,
        node,
        stale: None,
        replaces: Some((1 - node, kind)),
    }
}

fn with<F: FnOnce(&mut NodeFacts)>(mut n: NodeFacts, f: F) -> NodeFacts {
    f(&mut n);
    n
}

fn failure() -> ApplierFailure {
    ApplierFailure {
        gtid: format!("{U0}:7"),
        errno: 1062,
        message: "Duplicate entry '1'".into(),
    }
}

fn halted(n: NodeFacts) -> NodeFacts {
    with(n, |n| {
        let r = obs(n).replica.as_mut().unwrap();
        r.sql_running = ThreadState::No;
        r.last_sql_errno = 1062;
        n.failure = Some(failure());
    })
}

use Role::{Replica, Writer};
use WriteMode::{MultiWriter, SingleWriter};

fn wire(node: u32) -> Step {
    Step::WireReplication {
        node,
        source: 1 - node,
    }
}
fn label(node: u32, role: Role) -> Step {
    Step::Label { node, role }
}

struct Case {
    name: &'static str,
    input: Input,
    steps: Vec<Step>,
    writer: Option<u32>,
    check: fn(&Plan),
}

fn nothing(_: &Plan) {}

/// A settled SingleWriter pair: ordinal 0 writes, both replicate, five
/// transactions each.
fn healthy() -> [NodeFacts; 2] {
    [
        node(0)
            .writable()
            .wired()
            .gtids(&format!("{U0}:1-5"))
            .label(Writer)
            .build(),
        node(1)
            .wired()
            .gtids(&format!("{U0}:1-5"))
            .label(Replica)
            .build(),
    ]
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "fresh pair: wire both ways, elect ordinal 0, label replica before unfencing the writer",
            input: input(SingleWriter, None, [node(0).build(), node(1).build()]),
            steps: vec![
                claim(0),
                wire(0),
                wire(1),
                label(1, Replica),
                Step::Unfence { node: 0 },
                label(0, Writer),
            ],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "healthy settled pair: nothing to do",
            input: input(SingleWriter, Some(0), healthy()),
            steps: vec![],
            writer: Some(0),
            check: |p| {
                assert!(p.health.replicating && p.health.writer_available);
                assert!(p.health.degraded.is_empty(), "{:?}", p.health.degraded);
            },
        },
        Case {
            name: "one pod not ready on a fresh pair: no election, wire the other",
            input: input(
                SingleWriter,
                None,
                [
                    node(0).build(),
                    with(node(1).build(), |n| n.pod_ready = false),
                ],
            ),
            steps: vec![wire(0), wire(1), label(0, Replica), label(1, Replica)],
            writer: None,
            check: |p| {
                assert_eq!(
                    p.health.no_writer_reason,
                    Some(NoWriter::WaitingForBothNodes)
                )
            },
        },
        Case {
            name: "replica unreachable: the writer stays; no steps for the lost node",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(node(1).wired().label(Replica).build(), |n| {
                        n.server = Err("timeout".into())
                    }),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| {
                assert!(!p.health.replicating);
                assert!(
                    p.health
                        .degraded
                        .iter()
                        .any(|d| matches!(d, Problem::Unreachable { node: 1, .. }))
                );
            },
        },
        Case {
            name: "writer unreachable within the window: no writer, it keeps its writer label (restarted in place, it boots fenced), the replica stays read-only",
            input: input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| {
                        n.server = Err("connection refused".into())
                    }),
                    healthy()[1].clone(),
                ],
            ),
            steps: vec![],
            writer: None,
            check: |p| {
                assert!(!p.health.writer_available);
                assert!(matches!(
                    p.health.no_writer_reason,
                    Some(NoWriter::WriterLost { .. })
                ));
            },
        },
        Case {
            name: "writer unreachable past the detection window: the replica is promoted, then unfenced and labelled",
            input: after_window(input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| {
                        n.server = Err("connection refused".into())
                    }),
                    healthy()[1].clone(),
                ],
            )),
            steps: vec![
                failover_claim(1),
                Step::StopReceiving { node: 1 },
                Step::Isolate { node: 0 },
                Step::Promote { node: 1, from: 0 },
                label(0, Replica),
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            writer: Some(1),
            check: |p| assert_eq!(p.failover, Some((0, 1))),
        },
        Case {
            name: "writer terminating within the window: it loses its writer label",
            input: input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| {
                        n.terminating = true;
                        n.server = Err("terminating".into());
                    }),
                    healthy()[1].clone(),
                ],
            ),
            steps: vec![label(0, Replica)],
            writer: None,
            check: |p| assert!(!p.health.writer_available),
        },
        Case {
            name: "a lost node that was never labelled writer is not given the label",
            input: input(
                SingleWriter,
                Some(0),
                [
                    with(node(0).writable().wired().build(), |n| {
                        n.server = Err("connection refused".into())
                    }),
                    healthy()[1].clone(),
                ],
            ),
            steps: vec![label(0, Replica)],
            writer: None,
            check: nothing,
        },
        Case {
            name: "automatic failover off: no promotion",
            input: {
                let mut i = after_window(input(
                    SingleWriter,
                    Some(0),
                    [
                        with(healthy()[0].clone(), |n| n.server = Err("down".into())),
                        healthy()[1].clone(),
                    ],
                ));
                i.failover.automatic = false;
                i
            },
            steps: vec![],
            writer: None,
            check: |p| {
                assert_eq!(
                    p.health.no_writer_reason,
                    Some(NoWriter::WriterLost {
                        writer: 0,
                        hold: Hold::AutomaticFailoverOff
                    })
                )
            },
        },
        Case {
            name: "candidate not replicating from the writer: no promotion",
            input: after_window(input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| n.server = Err("down".into())),
                    with(healthy()[1].clone(), |n| obs(n).replica = None),
                ],
            )),
            steps: vec![wire(1)],
            writer: None,
            check: |p| assert!(p.failover.is_none()),
        },
        Case {
            name: "candidate not ready: no promotion",
            input: after_window(input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| n.server = Err("down".into())),
                    with(healthy()[1].clone(), |n| n.pod_ready = false),
                ],
            )),
            steps: vec![],
            writer: None,
            check: |p| assert!(p.failover.is_none()),
        },
        Case {
            name: "old writer back after a failover: it stays a replica and is fenced",
            input: input(
                SingleWriter,
                Some(1),
                [
                    with(healthy()[0].clone(), |n| n.role_label = Some(Replica)),
                    with(healthy()[1].clone(), |n| {
                        obs(n).read_only = false;
                        obs(n).super_read_only = Some(false);
                        n.role_label = Some(Writer);
                    }),
                ],
            ),
            steps: vec![Step::Fence { node: 0 }],
            writer: Some(1),
            check: |p| assert!(p.failover.is_none()),
        },
        Case {
            name: "errant transaction on the replica: reported, nothing else",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        obs(n).gtid_executed = format!("{U0}:1-5,{U1}:1");
                    }),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| {
                assert_eq!(p.health.errant, Some((1, format!("{U1}:1"))));
                assert!(p.health.degraded.contains(&Problem::Errant {
                    node: 1,
                    set: format!("{U1}:1")
                }));
            },
        },
        Case {
            name: "a lagging replica is not errant",
            input: input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| {
                        obs(n).gtid_executed = format!("{U0}:1-9")
                    }),
                    healthy()[1].clone(),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert_eq!(p.health.errant, None),
        },
        Case {
            name: "applier halted under Halt: reported, left alone",
            input: input(
                SingleWriter,
                Some(0),
                [healthy()[0].clone(), halted(healthy()[1].clone())],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert_eq!(p.health.halted, vec![(1, failure())]),
        },
        Case {
            name: "applier halted under SkipAndRecord: skip exactly that transaction",
            input: Input {
                policy: ApplierErrorPolicy::SkipAndRecord,
                ..input(
                    SingleWriter,
                    Some(0),
                    [healthy()[0].clone(), halted(healthy()[1].clone())],
                )
            },
            steps: vec![Step::SkipTransaction {
                node: 1,
                failure: failure(),
            }],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "replication account refused: recreate accounts on the source",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        let r = obs(n).replica.as_mut().unwrap();
                        r.io_running = ThreadState::Connecting;
                        r.last_io_errno = 1045;
                    }),
                ],
            ),
            steps: vec![Step::EnsureUsers { node: 0 }],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "split brain: both writable, the replica is fenced",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        obs(n).read_only = false;
                        obs(n).super_read_only = Some(false);
                    }),
                ],
            ),
            steps: vec![Step::Fence { node: 1 }],
            writer: Some(0),
            check: nothing,
        },
        Case {
            // Issue 12, bug 2: `read_only` without `super_read_only` lets
            // accounts with SUPER or CONNECTION_ADMIN write on MySQL; it
            // counted as fenced. (Also what a failed restore in
            // `exec_past_read_only` leaves behind: the next cycle fences.)
            name: "MySQL replica read_only but not super_read_only: it is fenced",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        obs(n).read_only = true;
                        obs(n).super_read_only = Some(false);
                    }),
                ],
            ),
            steps: vec![Step::Fence { node: 1 }],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "MySQL writer read_only but not super_read_only: unfenced (clients cannot write)",
            input: input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| {
                        obs(n).read_only = true;
                        obs(n).super_read_only = Some(false);
                    }),
                    healthy()[1].clone(),
                ],
            ),
            steps: vec![Step::Unfence { node: 0 }],
            writer: Some(0),
            check: |p| assert!(!p.health.writer_available),
        },
        Case {
            name: "MariaDB replica read_only: fenced (MariaDB has no super_read_only)",
            input: with_engine(
                input(
                    SingleWriter,
                    Some(0),
                    [
                        mariadb(healthy()[0].clone()),
                        mariadb(with(healthy()[1].clone(), |n| {
                            obs(n).read_only = true;
                            obs(n).super_read_only = None;
                        })),
                    ],
                ),
                Engine::MariaDB,
            ),
            steps: vec![],
            writer: Some(0),
            check: nothing,
        },
        Case {
            // Issue 12, bug 1: a change of spec.replication.tls.mode never
            // rewired a running channel.
            name: "channels wired without TLS while the spec asks for it: both rewired",
            input: with_tls(
                input(SingleWriter, Some(0), healthy()),
                ChannelTls::Required,
            ),
            steps: vec![wire(0), wire(1)],
            writer: Some(0),
            check: |p| assert!(!p.health.replicating),
        },
        Case {
            name: "channels wired with the CA the spec names: nothing to do",
            input: with_tls(
                input(
                    SingleWriter,
                    Some(0),
                    healthy().map(|n| {
                        with(n, |n| {
                            let r = obs(n).replica.as_mut().unwrap();
                            r.ssl = true;
                            r.ssl_ca_file = "/etc/mysql-aa-tls/ca.crt".into();
                        })
                    }),
                ),
                ChannelTls::VerifyCa {
                    ca_file: "/etc/mysql-aa-tls/ca.crt".into(),
                },
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert!(p.health.replicating),
        },
        Case {
            name: "channels verifying the CA while the spec asks for the identity too: rewired",
            input: with_tls(
                input(
                    SingleWriter,
                    Some(0),
                    healthy().map(|n| {
                        with(n, |n| {
                            let r = obs(n).replica.as_mut().unwrap();
                            r.ssl = true;
                            r.ssl_ca_file = "/etc/mysql-aa-tls/ca.crt".into();
                        })
                    }),
                ),
                ChannelTls::VerifyIdentity {
                    ca_file: "/etc/mysql-aa-tls/ca.crt".into(),
                },
            ),
            steps: vec![wire(0), wire(1)],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "neither writable: the writer is unfenced",
            input: input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| {
                        obs(n).read_only = true;
                        obs(n).super_read_only = Some(true);
                    }),
                    healthy()[1].clone(),
                ],
            ),
            steps: vec![Step::Unfence { node: 0 }],
            writer: Some(0),
            check: |p| assert!(!p.health.writer_available),
        },
        Case {
            name: "operator restarted without status: the one writable node stays writer",
            input: input(
                SingleWriter,
                None,
                [healthy()[0].clone(), healthy()[1].clone()],
            ),
            steps: vec![claim(0)],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "engine mismatch: reported, the node is left alone",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        obs(n).info.flavor = Flavor::MariaDB;
                        obs(n).replica = None;
                    }),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| {
                assert!(p.health.degraded.iter().any(|d| matches!(
                    d,
                    Problem::WrongEngine {
                        runs: Flavor::MariaDB,
                        want: Engine::MySQL,
                        ..
                    }
                )))
            },
        },
        Case {
            name: "MultiWriter fresh: wire both, unfence both, label both writer",
            input: input(MultiWriter, None, [node(0).build(), node(1).build()]),
            steps: vec![
                wire(0),
                wire(1),
                Step::Unfence { node: 0 },
                Step::Unfence { node: 1 },
                label(0, Writer),
                label(1, Writer),
            ],
            writer: None,
            check: nothing,
        },
        Case {
            name: "MultiWriter settled: nothing to do",
            input: input(
                MultiWriter,
                None,
                [
                    node(0).writable().wired().label(Writer).build(),
                    node(1).writable().wired().label(Writer).build(),
                ],
            ),
            steps: vec![],
            writer: None,
            check: |p| assert!(p.health.writer_available && p.health.replicating),
        },
        Case {
            name: "MultiWriter, one node unreachable: it loses its writer label, the other takes the writes",
            input: input(
                MultiWriter,
                None,
                [
                    with(node(0).writable().wired().label(Writer).build(), |n| {
                        n.server = Err("connection refused".into())
                    }),
                    node(1).writable().wired().label(Writer).build(),
                ],
            ),
            steps: vec![label(0, Replica)],
            writer: None,
            check: nothing,
        },
        Case {
            name: "diverged fresh pair: no writer elected",
            input: input(
                SingleWriter,
                None,
                [
                    node(0).wired().gtids(&format!("{U0}:1-3")).build(),
                    node(1).wired().gtids(&format!("{U1}:1-2")).build(),
                ],
            ),
            steps: vec![label(0, Replica), label(1, Replica)],
            writer: None,
            check: |p| assert_eq!(p.health.no_writer_reason, Some(NoWriter::Diverged)),
        },
        Case {
            name: "fresh pair where ordinal 1 has more: ordinal 1 is elected",
            input: input(
                SingleWriter,
                None,
                [
                    node(0).wired().gtids(&format!("{U1}:1-2")).build(),
                    node(1).wired().gtids(&format!("{U1}:1-5")).build(),
                ],
            ),
            steps: vec![
                claim(1),
                label(0, Replica),
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            writer: Some(1),
            check: nothing,
        },
        Case {
            name: "lagging replica: reported by status, no action",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        obs(n).replica.as_mut().unwrap().seconds_behind_source = Some(120);
                    }),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "peer moved (new pod IP): rewire",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        obs(n).replica.as_mut().unwrap().source_host = "10.0.0.99".into();
                    }),
                ],
            ),
            steps: vec![wire(1)],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "restarted replica (threads stopped, no error): start again",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        let r = obs(n).replica.as_mut().unwrap();
                        r.io_running = ThreadState::No;
                        r.sql_running = ThreadState::No;
                    }),
                ],
            ),
            steps: vec![wire(1)],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "peer down: receiver connecting, applier running: wait",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(healthy()[1].clone(), |n| {
                        obs(n).replica.as_mut().unwrap().io_running = ThreadState::Connecting;
                    }),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert!(!p.health.replicating),
        },
        Case {
            name: "pod missing: no address, no wiring towards it",
            input: input(
                SingleWriter,
                Some(0),
                [
                    healthy()[0].clone(),
                    with(node(1).build(), |n| {
                        n.pod_exists = false;
                        n.address = None;
                        n.server = Err("no pod".into());
                    }),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| {
                assert!(
                    p.health
                        .degraded
                        .iter()
                        .any(|d| matches!(d, Problem::PodMissing { .. }))
                )
            },
        },
        Case {
            name: "failover when the old writer's pod is already gone (or terminating): nothing to isolate",
            input: after_window(input(
                SingleWriter,
                Some(0),
                [
                    with(healthy()[0].clone(), |n| {
                        n.terminating = true;
                        n.server = Err("terminating".into());
                    }),
                    healthy()[1].clone(),
                ],
            )),
            steps: vec![
                failover_claim(1),
                Step::StopReceiving { node: 1 },
                Step::Promote { node: 1, from: 0 },
                label(0, Replica),
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            writer: Some(1),
            check: |p| assert_eq!(p.failover, Some((0, 1))),
        },
        Case {
            name: "switchover: fence the writer, label it replica, catch the target up, then promote it",
            input: switch_to(input(SingleWriter, Some(0), healthy()), 1),
            steps: vec![
                switchover_claim(1),
                Step::Fence { node: 0 },
                label(0, Replica),
                Step::CatchUp { node: 1, from: 0 },
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            writer: Some(1),
            check: |p| {
                assert_eq!(p.switchover, Some(Switchover::Move { from: 0, to: 1 }));
                assert_eq!(p.failover, None);
            },
        },
        Case {
            name: "switchover to the current writer: nothing to do, answered",
            input: switch_to(input(SingleWriter, Some(0), healthy()), 0),
            steps: vec![],
            writer: Some(0),
            check: |p| assert_eq!(p.switchover, Some(Switchover::AlreadyWriter)),
        },
        Case {
            name: "switchover to a target whose applier is halted: refused, nothing changes",
            input: switch_to(
                input(
                    SingleWriter,
                    Some(0),
                    [healthy()[0].clone(), halted(healthy()[1].clone())],
                ),
                1,
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert!(refused(p).contains("not both running"), "{}", refused(p)),
        },
        Case {
            name: "switchover to a target that is not ready: refused",
            input: switch_to(
                input(
                    SingleWriter,
                    Some(0),
                    [
                        healthy()[0].clone(),
                        with(healthy()[1].clone(), |n| n.pod_ready = false),
                    ],
                ),
                1,
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert!(refused(p).contains("not reachable and ready")),
        },
        Case {
            name: "switchover to a target with errant transactions: refused and reported",
            input: switch_to(
                input(
                    SingleWriter,
                    Some(0),
                    [
                        healthy()[0].clone(),
                        with(healthy()[1].clone(), |n| {
                            obs(n).gtid_executed = format!("{U0}:1-5,{U1}:1-2");
                        }),
                    ],
                ),
                1,
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| {
                assert!(refused(p).contains("errant"));
                assert_eq!(p.health.errant, Some((1, format!("{U1}:1-2"))));
            },
        },
        Case {
            name: "switchover while the writer is unreachable: refused (failover's job)",
            input: switch_to(
                input(
                    SingleWriter,
                    Some(0),
                    [
                        with(healthy()[0].clone(), |n| n.server = Err("refused".into())),
                        healthy()[1].clone(),
                    ],
                ),
                1,
            ),
            steps: vec![],
            writer: None,
            check: |p| assert!(refused(p).contains("no writer")),
        },
        Case {
            name: "switchover in MultiWriter: refused",
            input: switch_to(
                input(
                    MultiWriter,
                    None,
                    [
                        node(0).writable().wired().label(Writer).build(),
                        node(1).writable().wired().label(Writer).build(),
                    ],
                ),
                1,
            ),
            steps: vec![],
            writer: None,
            check: |p| assert!(refused(p).contains("MultiWriter")),
        },
        Case {
            name: "failover candidate with transactions of its own the writer never had: not promoted",
            input: history(
                after_window(input(
                    SingleWriter,
                    Some(0),
                    [
                        with(healthy()[0].clone(), |n| n.server = Err("refused".into())),
                        with(healthy()[1].clone(), |n| {
                            obs(n).gtid_executed = format!("{U0}:1-5,{U1}:1-3");
                        }),
                    ],
                )),
                &format!("{U0}:1-5,{U1}:1"),
                U0,
            ),
            steps: vec![],
            writer: None,
            check: |p| {
                assert!(
                    matches!(
                        &p.health.no_writer_reason,
                        Some(NoWriter::WriterLost {
                            hold: Hold::CandidateErrant { candidate: 1, set },
                            ..
                        }) if set.contains(&format!("{U1}:2-3"))
                    ),
                    "{:?}",
                    p.health.no_writer_reason
                );
            },
        },
        Case {
            name: "failover candidate that received more from the writer than status recorded: promoted",
            input: history(
                after_window(input(
                    SingleWriter,
                    Some(0),
                    [
                        with(healthy()[0].clone(), |n| n.server = Err("refused".into())),
                        with(healthy()[1].clone(), |n| {
                            obs(n).gtid_executed = format!("{U0}:1-9");
                        }),
                    ],
                )),
                &format!("{U0}:1-5"),
                U0,
            ),
            steps: vec![
                failover_claim(1),
                Step::StopReceiving { node: 1 },
                Step::Isolate { node: 0 },
                Step::Promote { node: 1, from: 0 },
                label(0, Replica),
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            writer: Some(1),
            check: |p| assert_eq!(p.failover, Some((0, 1))),
        },
        Case {
            name: "rolling update: the outdated replica restarts first",
            input: input(
                SingleWriter,
                Some(0),
                [
                    outdated(healthy()[0].clone()),
                    outdated(healthy()[1].clone()),
                ],
            ),
            steps: vec![Step::Restart { node: 1 }],
            writer: Some(0),
            check: |p| assert_eq!(p.switchover, None),
        },
        Case {
            name: "rolling update: only the writer is outdated: the role moves to the replica first",
            input: input(
                SingleWriter,
                Some(0),
                [outdated(healthy()[0].clone()), healthy()[1].clone()],
            ),
            steps: vec![
                switchover_claim(1),
                Step::Fence { node: 0 },
                label(0, Replica),
                Step::CatchUp { node: 1, from: 0 },
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            writer: Some(1),
            check: |p| assert_eq!(p.switchover, Some(Switchover::Rolling { from: 0, to: 1 })),
        },
        Case {
            name: "rolling update waits while the pair is not healthy",
            input: input(
                SingleWriter,
                Some(0),
                [
                    outdated(healthy()[0].clone()),
                    outdated(with(healthy()[1].clone(), |n| {
                        obs(n).replica.as_mut().unwrap().io_running = ThreadState::Connecting;
                    })),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: nothing,
        },
        Case {
            name: "rolling update waits for a requested switchover",
            input: switch_to(
                input(
                    SingleWriter,
                    Some(0),
                    [healthy()[0].clone(), outdated(healthy()[1].clone())],
                ),
                1,
            ),
            steps: vec![
                switchover_claim(1),
                Step::Fence { node: 0 },
                label(0, Replica),
                Step::CatchUp { node: 1, from: 0 },
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            writer: Some(1),
            check: |p| assert_eq!(p.switchover, Some(Switchover::Move { from: 0, to: 1 })),
        },
        Case {
            name: "rolling update in MultiWriter: one node at a time, highest ordinal first",
            input: input(
                MultiWriter,
                None,
                [
                    outdated(node(0).writable().wired().label(Writer).build()),
                    outdated(node(1).writable().wired().label(Writer).build()),
                ],
            ),
            steps: vec![Step::Restart { node: 1 }],
            writer: None,
            check: nothing,
        },
        Case {
            name: "switchover to a lagging target: refused (the writer would stay fenced meanwhile)",
            input: switch_to(
                input(
                    SingleWriter,
                    Some(0),
                    [
                        healthy()[0].clone(),
                        with(healthy()[1].clone(), |n| {
                            obs(n).replica.as_mut().unwrap().seconds_behind_source = Some(30);
                        }),
                    ],
                ),
                1,
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert!(refused(p).contains("30s behind"), "{}", refused(p)),
        },
        Case {
            name: "rolling update waits while the replica lags",
            input: input(
                SingleWriter,
                Some(0),
                [
                    outdated(healthy()[0].clone()),
                    with(healthy()[1].clone(), |n| {
                        obs(n).replica.as_mut().unwrap().seconds_behind_source = Some(30);
                    }),
                ],
            ),
            steps: vec![],
            writer: Some(0),
            check: |p| assert_eq!(p.switchover, None),
        },
    ]
}

/// Applies a plan's steps one by one to writable flags and labels, and
/// checks invariant 1 after every step.
fn check_invariants(input: &Input, plan: &Plan) {
    if input.mode != SingleWriter {
        return;
    }
    let mut writable: Vec<bool> = input
        .nodes
        .iter()
        .map(|n| n.server.as_ref().is_ok_and(|o| !o.fenced()))
        .collect();
    let mut labels: Vec<Option<Role>> = input.nodes.iter().map(|n| n.role_label).collect();
    let before_two_writable = writable.iter().all(|w| *w);
    for step in &plan.steps {
        match step {
            Step::Fence { node } => writable[*node as usize] = false,
            Step::Unfence { node } => writable[*node as usize] = true,
            Step::Label { node, role } => labels[*node as usize] = Some(*role),
            _ => {}
        }
        if !before_two_writable {
            assert!(
                !writable.iter().all(|w| *w),
                "two writable nodes after {step:?}"
            );
        }
        assert!(
            labels.iter().filter(|l| **l == Some(Writer)).count() <= 1,
            "two writer labels after {step:?}"
        );
    }
    for step in &plan.steps {
        if let Step::Unfence { node } = step {
            assert_eq!(Some(*node), plan.writer, "only the writer is unfenced");
        }
    }
    // A reachable-but-lost writer's pod is stopped before its replica is
    // promoted.
    if let (Some(i), Some(p)) = (
        plan.steps
            .iter()
            .position(|s| matches!(s, Step::Isolate { .. })),
        plan.steps
            .iter()
            .position(|s| matches!(s, Step::Promote { .. })),
    ) {
        assert!(i < p, "isolate before promote");
    }
    // A failover stops the candidate's receiver before anything else
    // touches the old writer's role, and waits for the old writer's fence
    // (Async, Lease held) after that, before promoting.
    if let Some(p) = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::Promote { .. }))
    {
        let stop = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::StopReceiving { .. }));
        assert!(
            stop.is_some_and(|s| s < p),
            "receiver stopped before promote"
        );
        if let Some(a) = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::AwaitFence { .. }))
        {
            assert!(
                stop.is_some_and(|s| s < a) && a < p,
                "fence awaited between"
            );
        }
    }
    // A change of the writer claimed and not finished is never undone:
    // the node it replaced is not made the writer again.
    if let (Some(pending), Some(to)) = (input.pending, input.current_writer)
        && pending.from != to
    {
        assert_ne!(plan.writer, Some(pending.from), "a claimed change undone");
        assert!(
            !plan.steps.contains(&Step::Unfence { node: pending.from }),
            "the replaced writer unfenced"
        );
    }
    // The writer holds the Lease before it is unfenced.
    if input.lease.exists
        && let Some(u) = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::Unfence { .. }))
        && !(input.lease.holder == plan.writer && input.lease.addresses_current)
    {
        let h = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::HandLease { .. }));
        assert!(h.is_some_and(|h| h < u), "Lease handed before unfence");
    }
    // Invariant 2/3 of a switchover: the old writer is fenced before the
    // target catches up, and the target is unfenced only after.
    let at = |want: &Step| plan.steps.iter().position(|s| s == want);
    for step in &plan.steps {
        if let Step::CatchUp { node, from } = step {
            let catch_up = at(step).unwrap();
            if input.nodes[*from as usize]
                .server
                .as_ref()
                .is_ok_and(Observation::writable)
            {
                assert!(at(&Step::Fence { node: *from }).is_some_and(|f| f < catch_up));
            }
            assert!(at(&Step::Unfence { node: *node }).is_none_or(|u| u > catch_up));
        }
    }
}

/// The operator stopped (killed, or its leadership lost) after it claimed
/// a change of the writer and before it finished it: status names the new
/// writer (ordinal 1) at the claimed epoch, with the change pending. The
/// next cycle, of this operator or of the next one, finishes it — as a
/// failover (idempotent steps), or, for a switchover whose old writer
/// answers, by catching up — and never gives the role back to ordinal 0
/// (the fault matrix's `operator-killed`, trial 3, before this record: the
/// restarted operator unfenced the replaced writer at the new epoch).
#[test]
fn an_unfinished_change_of_the_writer_is_finished_not_undone() {
    let set = format!("{U0}:1-5");
    let old_back = || node(0).wired().gtids(&set).build();
    let candidate = || node(1).wired().gtids(&set).label(Replica).build();
    let pending = |nodes: [NodeFacts; 2], kind: RoleChangeKind| {
        let mut i = input(SingleWriter, Some(1), nodes);
        i.epoch = 4;
        i.pending = Some(PendingChange {
            from: 0,
            kind,
            old_pod_replaced: false,
        });
        i
    };
    let unreachable = with(node(0).label(Writer).build(), |n| {
        n.server = Err("connection refused".into())
    });
    // The end of every change: the old writer labelled replica, the new
    // one unfenced and labelled writer.
    let promoted = |mut steps: Vec<Step>| {
        steps.extend([
            label(0, Replica),
            Step::Unfence { node: 1 },
            label(1, Writer),
        ]);
        steps
    };
    let rows: Vec<(&str, Input, Vec<Step>)> = vec![
        (
            "failover claimed; the old writer came back read-only: its receiver stopped, the candidate caught up on what it received, unfenced",
            pending([old_back(), candidate()], RoleChangeKind::Failover),
            promoted(vec![
                Step::StopReceiving { node: 1 },
                Step::Promote { node: 1, from: 0 },
            ]),
        ),
        (
            "failover claimed; the old writer answers and is writable (it was only cut off): fenced before the candidate is promoted",
            pending(
                [
                    node(0).writable().wired().gtids(&set).label(Writer).build(),
                    candidate(),
                ],
                RoleChangeKind::Failover,
            ),
            promoted(vec![
                Step::StopReceiving { node: 1 },
                Step::Fence { node: 0 },
                Step::Promote { node: 1, from: 0 },
            ]),
        ),
        (
            "failover claimed; the old writer still lost and its agent held the Lease: as the failover would have gone on",
            leased(
                pending([unreachable.clone(), candidate()], RoleChangeKind::Failover),
                Some(0),
                3,
                false,
            ),
            vec![
                Step::StopReceiving { node: 1 },
                Step::AwaitFence { from: 0 },
                Step::Isolate { node: 0 },
                Step::Promote { node: 1, from: 0 },
                label(0, Replica),
                Step::HandLease { node: 1, epoch: 4 },
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
        ),
        (
            "failover claimed; the new writer was unfenced already: the old writer's steps are made sure of, then its label",
            pending(
                [
                    old_back(),
                    node(1)
                        .writable()
                        .wired()
                        .gtids(&set)
                        .label(Replica)
                        .build(),
                ],
                RoleChangeKind::Failover,
            ),
            vec![
                Step::StopReceiving { node: 1 },
                Step::Promote { node: 1, from: 0 },
                label(0, Replica),
                label(1, Writer),
            ],
        ),
        (
            "switchover claimed before the old writer was fenced: fenced, then the target catches up on all it executed",
            switch_to(
                pending(
                    [
                        node(0).writable().wired().gtids(&set).label(Writer).build(),
                        candidate(),
                    ],
                    RoleChangeKind::Switchover,
                ),
                1,
            ),
            vec![
                Step::Fence { node: 0 },
                label(0, Replica),
                Step::CatchUp { node: 1, from: 0 },
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
        ),
        (
            "failover claimed; the old writer's pod was deleted and re-created since (booting, not answering yet): not deleted again",
            {
                let mut i = pending([unreachable.clone(), candidate()], RoleChangeKind::Failover);
                if let Some(p) = i.pending.as_mut() {
                    p.old_pod_replaced = true;
                }
                i
            },
            promoted(vec![
                Step::StopReceiving { node: 1 },
                Step::Promote { node: 1, from: 0 },
            ]),
        ),
        (
            "switchover claimed; its old writer lost since: finished as a failover",
            pending(
                [unreachable.clone(), candidate()],
                RoleChangeKind::Switchover,
            ),
            promoted(vec![
                Step::StopReceiving { node: 1 },
                Step::Isolate { node: 0 },
                Step::Promote { node: 1, from: 0 },
            ]),
        ),
    ];
    for (name, i, steps) in rows {
        let plan = decide(&i);
        assert_eq!(plan.steps, steps, "{name}");
        assert_eq!(plan.writer, Some(1), "{name}");
        check_invariants(&i, &plan);
    }
    // The claimed writer lost in turn (within the window): nothing is
    // resumed, and the replaced node is not made the writer.
    let i = pending(
        [
            old_back(),
            with(candidate(), |n| n.server = Err("refused".into())),
        ],
        RoleChangeKind::Failover,
    );
    let plan = decide(&i);
    assert_eq!(plan.failover, None);
    assert_eq!(plan.writer, None);
    check_invariants(&i, &plan);
    // Once the claim is recorded done (no pending change), the settled
    // pair plans nothing.
    let mut settled = pending(
        [
            node(0).wired().gtids(&set).label(Replica).build(),
            node(1).writable().wired().gtids(&set).label(Writer).build(),
        ],
        RoleChangeKind::Failover,
    );
    settled.pending = None;
    assert_eq!(decide(&settled).steps, vec![]);
}

#[test]
fn decision_table() {
    let all = cases();
    assert!(all.len() >= 20);
    for case in all {
        let plan = decide(&case.input);
        assert_eq!(plan.steps, case.steps, "{}", case.name);
        assert_eq!(plan.writer, case.writer, "{}", case.name);
        (case.check)(&plan);
        check_invariants(&case.input, &plan);
    }
}

#[test]
fn a_settled_pair_stays_settled() {
    // Applying a fresh pair's plan by hand, then deciding again, is a no-op.
    let fresh = input(SingleWriter, None, [node(0).build(), node(1).build()]);
    let plan = decide(&fresh);
    let settled = input(
        SingleWriter,
        plan.writer,
        [
            node(0).writable().wired().label(Writer).build(),
            node(1).wired().label(Replica).build(),
        ],
    );
    assert!(decide(&settled).steps.is_empty());
}

/// `durability: SemiSync` rows: who waits for acknowledgements, the stale
/// record before the writer goes on alone, the failover that stops the
/// candidate's receiver, and the writer's channel kept from an unsafe peer.
#[test]
fn semi_sync_table() {
    use crate::mysql::SemiSyncSource;
    let (acking, alone, off) = (acking(), alone(), not_waiting());
    let set = format!("{U0}:1-5");
    let pair = |w: SemiSyncSource, r: SemiSyncSource, replica_set: &str| {
        [
            node(0)
                .writable()
                .wired()
                .gtids(&set)
                .label(Writer)
                .semi(w)
                .build(),
            node(1)
                .wired()
                .gtids(replica_set)
                .label(Replica)
                .semi(r)
                .build(),
        ]
    };
    let semi = |mut i: Input, stale: Option<u32>, acks_missing: bool| {
        i.durability = DurabilityInput {
            mode: DurabilityMode::SemiSync,
            stale,
            acks_missing_long_enough: acks_missing,
        };
        i.epoch = 3;
        i
    };
    let behind = format!("{U0}:1-3");
    let asynchronous = |mut i: Input| {
        i.durability = DurabilityInput {
            mode: DurabilityMode::Async,
            stale: None,
            acks_missing_long_enough: false,
        };
        i.epoch = 3;
        i
    };
    let rows: Vec<(&str, Input, Vec<Step>, Option<u32>)> = vec![
        (
            "Async, settled: nobody waits for an acknowledgement",
            asynchronous(input(SingleWriter, Some(0), pair(off, off, &set))),
            vec![],
            Some(0),
        ),
        (
            "changed to Async, the writer still waits (its server runs the SemiSync configuration until the rolling update restarts it): it stops waiting at once, before the replica, restarted without semi-sync, stops acknowledging",
            asynchronous(input(SingleWriter, Some(0), pair(acking, off, &set))),
            vec![Step::SemiSyncOff { node: 0 }],
            Some(0),
        ),
        (
            "changed to Async while the restarted replica no longer acknowledges: the writer's waiting commits are released",
            asynchronous(input(SingleWriter, Some(0), pair(alone, off, &set))),
            vec![Step::SemiSyncOff { node: 0 }],
            Some(0),
        ),
        (
            "settled: the writer waits and is acknowledged, the replica does not wait",
            semi(
                input(SingleWriter, Some(0), pair(acking, off, &set)),
                None,
                false,
            ),
            vec![],
            Some(0),
        ),
        (
            "the writer does not wait yet (restarted, or just elected): it does",
            semi(
                input(SingleWriter, Some(0), pair(off, off, &set)),
                None,
                false,
            ),
            vec![Step::SemiSyncOn { node: 0 }],
            Some(0),
        ),
        (
            "the replica waits (it was the writer): it stops waiting",
            semi(
                input(SingleWriter, Some(0), pair(acking, acking, &set)),
                None,
                false,
            ),
            vec![Step::SemiSyncOff { node: 1 }],
            Some(0),
        ),
        (
            "no acknowledgement within the window: but not for the window yet, the writer keeps waiting",
            semi(
                input(SingleWriter, Some(0), pair(alone, off, &set)),
                None,
                false,
            ),
            vec![],
            Some(0),
        ),
        (
            "no acknowledgement for the window: the replica is recorded stale first, then the writer goes on alone",
            semi(
                input(SingleWriter, Some(0), pair(alone, off, &set)),
                None,
                true,
            ),
            vec![
                Step::MarkStale { node: 1, epoch: 3 },
                Step::SemiSyncOff { node: 0 },
            ],
            Some(0),
        ),
        (
            "stale replica still behind: the writer goes on alone",
            semi(
                input(SingleWriter, Some(0), pair(off, off, &behind)),
                Some(1),
                false,
            ),
            vec![],
            Some(0),
        ),
        (
            "stale replica caught up: the writer waits again",
            semi(
                input(SingleWriter, Some(0), pair(off, off, &set)),
                Some(1),
                false,
            ),
            vec![Step::SemiSyncOn { node: 0 }],
            Some(0),
        ),
        (
            "stale replica caught up and acknowledging: promotable again",
            semi(
                input(SingleWriter, Some(0), pair(acking, off, &set)),
                Some(1),
                false,
            ),
            vec![Step::ClearStale { node: 1, epoch: 3 }],
            Some(0),
        ),
        (
            "stale replica acknowledged, then lost again for the window: the writer goes on alone (already recorded)",
            semi(
                input(SingleWriter, Some(0), pair(alone, off, &behind)),
                Some(1),
                true,
            ),
            vec![Step::SemiSyncOff { node: 0 }],
            Some(0),
        ),
        (
            "failover: claim the epoch with the old writer stale, stop the candidate's receiver, then promote; the new writer does not wait for the lost node",
            semi(
                after_window(input(
                    SingleWriter,
                    Some(0),
                    [
                        with(pair(acking, off, &set)[0].clone(), |n| {
                            n.server = Err("connection refused".into())
                        }),
                        pair(acking, off, &set)[1].clone(),
                    ],
                )),
                None,
                false,
            ),
            vec![
                Step::ClaimEpoch {
                    epoch: 4,
                    node: 1,
                    stale: Some(0),
                    replaces: Some((0, RoleChangeKind::Failover)),
                },
                Step::StopReceiving { node: 1 },
                Step::Isolate { node: 0 },
                Step::Promote { node: 1, from: 0 },
                label(0, Replica),
                Step::Unfence { node: 1 },
                label(1, Writer),
            ],
            Some(1),
        ),
        (
            "failover to a stale candidate: held",
            semi(
                after_window(input(
                    SingleWriter,
                    Some(0),
                    [
                        with(pair(off, off, &set)[0].clone(), |n| {
                            n.server = Err("connection refused".into())
                        }),
                        pair(off, off, &behind)[1].clone(),
                    ],
                )),
                Some(1),
                false,
            ),
            vec![],
            None,
        ),
        (
            "after a failover: the new writer's channel from the cut-off old writer is not restarted",
            semi(
                input(
                    SingleWriter,
                    Some(1),
                    [
                        with(node(0).wired().gtids(&set).build(), |n| {
                            n.server = Err("timeout".into())
                        }),
                        with(
                            node(1)
                                .writable()
                                .wired()
                                .gtids(&set)
                                .label(Writer)
                                .semi(off)
                                .build(),
                            |n| obs(n).replica.as_mut().unwrap().io_running = ThreadState::No,
                        ),
                    ],
                ),
                Some(0),
                false,
            ),
            vec![label(0, Replica)],
            Some(1),
        ),
        (
            "after a failover: nor from an old writer that came back with transactions the new writer lacks (it receives from the writer and acknowledges: the writer waits again)",
            semi(
                input(
                    SingleWriter,
                    Some(1),
                    [
                        node(0)
                            .wired()
                            .gtids(&format!("{U0}:1-6"))
                            .label(Replica)
                            .semi(off)
                            .build(),
                        with(
                            node(1)
                                .writable()
                                .wired()
                                .gtids(&set)
                                .label(Writer)
                                .semi(off)
                                .build(),
                            |n| obs(n).replica.as_mut().unwrap().io_running = ThreadState::No,
                        ),
                    ],
                ),
                Some(0),
                false,
            ),
            vec![Step::SemiSyncOn { node: 1 }],
            Some(1),
        ),
        (
            "Async: a stale record left from SemiSync is removed",
            input(SingleWriter, Some(0), pair(off, off, &behind)),
            vec![],
            Some(0),
        ),
    ];
    for (name, i, steps, writer) in rows {
        let plan = decide(&i);
        assert_eq!(plan.steps, steps, "{name}");
        assert_eq!(plan.writer, writer, "{name}");
        check_invariants(&i, &plan);
    }
    // A stale replica degrades the pair (the durability asked for is not
    // delivered); once cleared it does not.
    let stale = decide(&semi(
        input(SingleWriter, Some(0), pair(off, off, &behind)),
        Some(1),
        false,
    ));
    assert!(stale.health.degraded.contains(&Problem::Stale { node: 1 }));
    let settled = decide(&semi(
        input(SingleWriter, Some(0), pair(acking, off, &set)),
        None,
        false,
    ));
    assert!(settled.health.degraded.is_empty(), "{:?}", settled.health);
    // A rolling update's switchover under SemiSync: the old writer stops
    // waiting and the new one waits before it is unfenced.
    let mut rolling = semi(
        input(SingleWriter, Some(0), pair(acking, off, &set)),
        None,
        false,
    );
    rolling.nodes[0].outdated = true;
    assert_eq!(
        decide(&rolling).steps,
        vec![
            Step::ClaimEpoch {
                epoch: 4,
                node: 1,
                stale: None,
                replaces: Some((0, RoleChangeKind::Switchover)),
            },
            Step::Fence { node: 0 },
            label(0, Replica),
            Step::CatchUp { node: 1, from: 0 },
            Step::SemiSyncOff { node: 0 },
            Step::SemiSyncOn { node: 1 },
            Step::Unfence { node: 1 },
            label(1, Writer),
        ]
    );
    // Async with the record: removed at the current epoch.
    let mut i = input(SingleWriter, Some(0), pair(off, off, &behind));
    i.durability.stale = Some(1);
    i.epoch = 3;
    assert_eq!(
        decide(&i).steps,
        vec![Step::ClearStale { node: 1, epoch: 3 }]
    );
}

/// The writer Lease: handed to the writer before it is unfenced; a writer
/// whose agent still renews it is not replaced; a failover waits for the
/// old writer's fence unless its agent gave the Lease back.
#[test]
fn lease_table() {
    let lost = || {
        let [w, r] = healthy();
        [with(w, |n| n.server = Err("connection refused".into())), r]
    };
    let semi = |mut i: Input| {
        i.durability.mode = DurabilityMode::SemiSync;
        i
    };
    let old_addresses = |mut i: Input| {
        i.lease.addresses_current = false;
        i
    };
    let hand = |node, epoch| Step::HandLease { node, epoch };
    let failover_tail = vec![
        Step::Promote { node: 1, from: 0 },
        label(0, Replica),
        hand(1, 1),
        Step::Unfence { node: 1 },
        label(1, Writer),
    ];
    let with_tail = |head: Vec<Step>| {
        let mut v = head;
        v.extend(failover_tail.clone());
        v
    };
    // (what, input, steps, writer)
    let rows: Vec<(&str, Input, Vec<Step>, Option<u32>)> = vec![
        (
            "settled, the writer holds the Lease: nothing",
            leased(input(SingleWriter, Some(0), healthy()), Some(0), 0, true),
            vec![],
            Some(0),
        ),
        (
            "the Lease was never handed: handed to the writer",
            leased(input(SingleWriter, Some(0), healthy()), None, 0, false),
            vec![hand(0, 0)],
            Some(0),
        ),
        (
            "a pod's address changed: handed again with the new one",
            old_addresses(leased(
                input(SingleWriter, Some(0), healthy()),
                Some(0),
                0,
                true,
            )),
            vec![hand(0, 0)],
            Some(0),
        ),
        (
            "the writer restarted fenced (its agent gave the Lease back): handed before unfencing",
            leased(
                input(SingleWriter, Some(0), {
                    let [w, r] = healthy();
                    [with(w, |n| obs(n).read_only = true), r]
                }),
                None,
                0,
                false,
            ),
            vec![hand(0, 0), Step::Unfence { node: 0 }],
            Some(0),
        ),
        (
            "a fresh pair: the first writer gets the Lease at the first epoch, before it is unfenced",
            leased(
                input(SingleWriter, None, [node(0).build(), node(1).build()]),
                None,
                0,
                false,
            ),
            vec![
                claim(0),
                wire(0),
                wire(1),
                label(1, Replica),
                hand(0, 1),
                Step::Unfence { node: 0 },
                label(0, Writer),
            ],
            Some(0),
        ),
        (
            "writer lost past the window, its agent still renews the Lease: not replaced",
            after_window(leased(
                input(SingleWriter, Some(0), lost()),
                Some(0),
                0,
                true,
            )),
            vec![],
            None,
        ),
        (
            "lost, Lease expired (Async): the receiver stops, the old writer's fence is awaited",
            after_window(leased(
                input(SingleWriter, Some(0), lost()),
                Some(0),
                0,
                false,
            )),
            with_tail(vec![
                failover_claim(1),
                Step::StopReceiving { node: 1 },
                Step::AwaitFence { from: 0 },
                Step::Isolate { node: 0 },
            ]),
            Some(1),
        ),
        (
            "lost, Lease given back (its server was not running, Async): no wait",
            after_window(leased(input(SingleWriter, Some(0), lost()), None, 0, false)),
            with_tail(vec![
                failover_claim(1),
                Step::StopReceiving { node: 1 },
                Step::Isolate { node: 0 },
            ]),
            Some(1),
        ),
        (
            "lost, Lease expired (SemiSync): the old writer's fence is awaited before its pod is deleted",
            semi(after_window(leased(
                input(SingleWriter, Some(0), lost()),
                Some(0),
                0,
                false,
            ))),
            with_tail(vec![
                Step::ClaimEpoch {
                    epoch: 1,
                    node: 1,
                    stale: Some(0),
                    replaces: Some((0, RoleChangeKind::Failover)),
                },
                Step::StopReceiving { node: 1 },
                Step::AwaitFence { from: 0 },
                Step::Isolate { node: 0 },
            ]),
            Some(1),
        ),
        (
            "lost within the window, Lease given back: the lost writer is not handed it",
            leased(input(SingleWriter, Some(0), lost()), None, 0, false),
            vec![],
            None,
        ),
        (
            "MultiWriter: no Lease is handed",
            leased(input(MultiWriter, None, healthy()), None, 0, false),
            vec![Step::Unfence { node: 1 }, label(1, Writer)],
            None,
        ),
    ];
    for (what, input, steps, writer) in rows {
        let plan = decide(&input);
        assert_eq!(plan.steps, steps, "{what}");
        assert_eq!(plan.writer, writer, "{what}");
        check_invariants(&input, &plan);
    }
    let held = decide(&after_window(leased(
        input(SingleWriter, Some(0), lost()),
        Some(0),
        0,
        true,
    )));
    assert_eq!(
        held.health.no_writer_reason,
        Some(NoWriter::WriterLost {
            writer: 0,
            hold: Hold::WriterLeaseLive
        })
    );
}

/// Re-seeds: a replica whose receiver stopped on logs the writer purged is
/// never re-wired (replication cannot bring it back); it is re-seeded from
/// a settled, writable writer when the engine's re-seed runs in the
/// operator, and otherwise says why not; it is never promoted.
#[test]
fn reseed_table() {
    let purged = |mut n: NodeFacts| {
        let r = obs(&mut n).replica.as_mut().unwrap();
        r.io_running = ThreadState::No;
        r.last_io_errno = 1236;
        r.last_io_error = "required binlog files have been purged".into();
        n
    };
    let needing = || {
        let [w, r] = healthy();
        [w, purged(r)]
    };
    let start = Step::Reseed {
        node: 1,
        from: 0,
        reason: SeedReason::SourcePurgedLogs,
        discards: None,
    };
    let held = |p: &Plan| {
        p.health
            .degraded
            .iter()
            .find_map(|d| match d {
                Problem::SeedHeld { node: 1, why } => Some(why.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    // (what, input, a Reseed step, held because (substring, "" if not held))
    let rows: Vec<(&str, Input, bool, &str)> = vec![
        (
            "MySQL, settled writer: re-seeded",
            input(SingleWriter, Some(0), needing()),
            true,
            "",
        ),
        (
            "a copy runs into it: nothing more",
            {
                let mut i = input(SingleWriter, Some(0), needing());
                i.seed.running = Some(1);
                i
            },
            false,
            "",
        ),
        (
            "the last attempt failed: held during the back-off",
            {
                let mut i = input(SingleWriter, Some(0), needing());
                i.seed.backing_off = true;
                i
            },
            false,
            "back-off",
        ),
        (
            "MariaDB without agents: held, said why",
            {
                let mut i = input(SingleWriter, Some(0), needing());
                i.engine = Engine::MariaDB;
                i
            },
            false,
            "MariaDB",
        ),
        (
            "MariaDB with agents: re-seeded (streamed into its bootstrap)",
            {
                let mariadb = |n: NodeFacts| {
                    with(n, |n| {
                        obs(n).info.flavor = crate::mysql::Flavor::MariaDB;
                        obs(n).gtid_executed = "1000-1000-5".into();
                    })
                };
                let [w, r] = needing();
                let mut i = input(SingleWriter, Some(0), [mariadb(w), mariadb(r)]);
                i.engine = Engine::MariaDB;
                i.seed.streams = true;
                i
            },
            true,
            "",
        ),
        (
            "errant transactions: held (a copy would discard them)",
            {
                let [w, r] = needing();
                let r = with(r, |n| obs(n).gtid_executed = format!("{U0}:1-5,{U1}:1"));
                input(SingleWriter, Some(0), [w, r])
            },
            false,
            "errant",
        ),
        (
            "MultiWriter: held (no single writer to copy from)",
            input(MultiWriter, None, needing()),
            false,
            "MultiWriter",
        ),
        (
            "the writer is lost: no copy, and the node is not promoted",
            {
                let [w, r] = needing();
                let w = with(w, |n| n.server = Err("connection refused".into()));
                after_window(input(SingleWriter, Some(0), [w, r]))
            },
            false,
            "no settled writer",
        ),
    ];
    for (what, input, reseeded, why) in rows {
        let plan = decide(&input);
        check_invariants(&input, &plan);
        assert_eq!(
            plan.steps.contains(&start),
            reseeded,
            "{what}: {:?} {:?}",
            plan.steps,
            plan.seed
        );
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| matches!(s, Step::WireReplication { node: 1, .. })),
            "{what}: re-wired: {:?}",
            plan.steps
        );
        assert!(
            held(&plan).contains(why),
            "{what}: {:?}",
            plan.health.degraded
        );
        assert_eq!(held(&plan).is_empty(), why.is_empty(), "{what}");
        if input.current_writer == Some(0) && !input.nodes[0].reachable() {
            assert_eq!(plan.failover, None, "{what}");
            assert!(
                matches!(
                    plan.health.no_writer_reason,
                    Some(NoWriter::WriterLost {
                        hold: Hold::CandidateNeedsSeed { candidate: 1 },
                        ..
                    })
                ),
                "{what}: {:?}",
                plan.health.no_writer_reason
            );
        }
    }
}

/// A requested re-seed (`spec.reseed`): of a healthy replica, of an errant
/// one (its errant transactions named as discarded), refused for the
/// writer, while another runs, or with no settled writer.
#[test]
fn requested_reseed_table() {
    let requested = |mut i: Input, node: u32| {
        i.seed.requested = Some(node);
        i
    };
    let errant = || {
        let [w, r] = healthy();
        [
            w,
            with(r, |n| obs(n).gtid_executed = format!("{U0}:1-5,{U1}:1-2")),
        ]
    };
    // (what, input, expected verdict)
    let rows: Vec<(&str, Input, Option<SeedVerdict>)> = vec![
        (
            "a healthy replica: re-seeded",
            requested(input(SingleWriter, Some(0), healthy()), 1),
            Some(SeedVerdict::Start {
                node: 1,
                from: 0,
                reason: SeedReason::Requested,
                discards: None,
            }),
        ),
        (
            "an errant replica: re-seeded, its errant transactions named",
            requested(input(SingleWriter, Some(0), errant()), 1),
            Some(SeedVerdict::Start {
                node: 1,
                from: 0,
                reason: SeedReason::Requested,
                discards: Some(format!("{U1}:1-2")),
            }),
        ),
        (
            "the writer: refused",
            requested(input(SingleWriter, Some(0), healthy()), 0),
            Some(SeedVerdict::Held {
                node: 0,
                reason: SeedReason::Requested,
                why: "the writer itself is never re-seeded".into(),
            }),
        ),
        (
            "another re-seed runs: refused",
            {
                let mut i = requested(input(SingleWriter, Some(0), healthy()), 1);
                i.seed.running = Some(1);
                i
            },
            Some(SeedVerdict::Held {
                node: 1,
                reason: SeedReason::Requested,
                why: "a re-seed is running".into(),
            }),
        ),
        (
            "no settled writer: refused",
            {
                let [w, r] = healthy();
                let w = with(w, |n| n.server = Err("connection refused".into()));
                requested(input(SingleWriter, Some(0), [w, r]), 1)
            },
            Some(SeedVerdict::Held {
                node: 1,
                reason: SeedReason::Requested,
                why: "the pair has no settled writer to copy from".into(),
            }),
        ),
    ];
    for (what, input, want) in rows {
        let plan = decide(&input);
        check_invariants(&input, &plan);
        assert_eq!(plan.seed, want, "{what}");
        let started = plan.steps.iter().any(|s| matches!(s, Step::Reseed { .. }));
        assert_eq!(
            started,
            matches!(want, Some(SeedVerdict::Start { .. })),
            "{what}: {:?}",
            plan.steps
        );
    }
}

/// A node that started on an empty volume of a pair that has data (its
/// bootstrap marked it awaiting a copy): re-seeded first, never wired,
/// never promoted; with both nodes awaiting, no writer is chosen.
#[test]
fn empty_data_directory_table() {
    let awaiting = |mut n: NodeFacts| {
        let o = obs(&mut n);
        o.awaiting_seed = true;
        o.replica = None;
        o.gtid_executed = String::new();
        n
    };
    let [w, r] = healthy();
    // (what, input, the verdict: a Reseed of node 1, held because (substring))
    let rows: Vec<(&str, Input, bool, &str)> = vec![
        (
            "MySQL, the writer answers: copied from it",
            input(SingleWriter, Some(0), [w.clone(), awaiting(r.clone())]),
            true,
            "",
        ),
        (
            "MariaDB without agents: held, said why",
            {
                let mut i = input(SingleWriter, Some(0), [w.clone(), awaiting(r.clone())]);
                i.engine = Engine::MariaDB;
                i
            },
            false,
            "agents off",
        ),
        (
            "both awaiting (both volumes lost): no writer, nothing copied",
            input(
                SingleWriter,
                None,
                [awaiting(w.clone()), awaiting(r.clone())],
            ),
            false,
            "no settled writer",
        ),
    ];
    for (what, input, reseeded, why) in rows {
        let plan = decide(&input);
        check_invariants(&input, &plan);
        let start = Step::Reseed {
            node: 1,
            from: 0,
            reason: SeedReason::EmptyDataDirectory,
            discards: None,
        };
        assert_eq!(
            plan.steps.contains(&start),
            reseeded,
            "{what}: {:?}",
            plan.steps
        );
        if reseeded {
            assert!(
                plan.steps.contains(&Step::Label {
                    node: 1,
                    role: Role::Seeding
                }),
                "{what}: out of the reader Service: {:?}",
                plan.steps
            );
        }
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| matches!(s, Step::WireReplication { .. } | Step::Promote { .. })),
            "{what}: wired or promoted: {:?}",
            plan.steps
        );
        let held: Vec<String> = plan
            .health
            .degraded
            .iter()
            .filter_map(|d| match d {
                Problem::SeedHeld { why, .. } => Some(why.clone()),
                _ => None,
            })
            .collect();
        assert!(
            held.iter().any(|h| h.contains(why)) || why.is_empty(),
            "{what}: {held:?}"
        );
        assert_eq!(held.is_empty(), why.is_empty(), "{what}: {held:?}");
        if input.current_writer.is_none() {
            assert_eq!(plan.writer, None, "{what}");
        }
    }
}

/// A copy lowers its recipient to read_only (the clone drops its tables,
/// which super_read_only forbids): the node is not fenced again under it,
/// and is fenced as usual otherwise.
#[test]
fn a_recipient_is_not_fenced_during_its_copy() {
    let lowered = |mut n: NodeFacts| {
        obs(&mut n).super_read_only = Some(false);
        n
    };
    let [w, r] = healthy();
    let mut receiving = input(SingleWriter, Some(0), [w.clone(), lowered(r.clone())]);
    receiving.seed.running = Some(1);
    let idle = input(SingleWriter, Some(0), [w, lowered(r)]);
    // (what, input, fenced)
    for (what, input, fenced) in [
        ("during its copy", receiving, false),
        ("otherwise", idle, true),
    ] {
        let plan = decide(&input);
        check_invariants(&input, &plan);
        assert_eq!(
            plan.steps.contains(&Step::Fence { node: 1 }),
            fenced,
            "{what}: {:?}",
            plan.steps
        );
    }
}

/// Issue 15: `maxReadLagSeconds` takes a replica too far behind (or whose
/// applier stopped) out of the reader Service, and puts it back once it is
/// within the bound; the writer's label never follows its own channel's lag.
#[test]
fn read_lag_bound_table() {
    use crate::mysql::ThreadState::{No, Yes};
    use Role::Lagging;
    let replica = |secs: Option<i64>, sql: ThreadState, label: Role| {
        with(healthy()[1].clone(), |n| {
            let r = obs(n).replica.as_mut().unwrap();
            r.seconds_behind_source = secs;
            r.sql_running = sql;
            n.role_label = Some(label);
        })
    };
    let lagging_writer = with(healthy()[0].clone(), |n| {
        obs(n).replica.as_mut().unwrap().seconds_behind_source = Some(500);
    });
    // (what, maxReadLagSeconds, writer, replica, the replica's new label)
    let rows = [
        (
            "unset: a replica serves reads however far behind",
            None,
            healthy()[0].clone(),
            replica(Some(500), Yes, Replica),
            None,
        ),
        (
            "at the bound: stays in",
            Some(10),
            healthy()[0].clone(),
            replica(Some(10), Yes, Replica),
            None,
        ),
        (
            "beyond the bound: out",
            Some(10),
            healthy()[0].clone(),
            replica(Some(11), Yes, Replica),
            Some(Lagging),
        ),
        (
            "applier stopped: out (its lag has no bound)",
            Some(10),
            healthy()[0].clone(),
            replica(None, No, Replica),
            Some(Lagging),
        ),
        (
            "still beyond: stays out, nothing to do",
            Some(10),
            healthy()[0].clone(),
            replica(Some(50), Yes, Lagging),
            None,
        ),
        (
            "caught up: back in",
            Some(10),
            healthy()[0].clone(),
            replica(Some(2), Yes, Lagging),
            Some(Replica),
        ),
        (
            "lag unknown while applying (nothing to apply): stays in",
            Some(10),
            healthy()[0].clone(),
            replica(None, Yes, Replica),
            None,
        ),
        (
            "the writer's own channel lags: the writer keeps its label",
            Some(10),
            lagging_writer,
            replica(Some(0), Yes, Replica),
            None,
        ),
    ];
    for (what, max, writer, replica, want) in rows {
        let mut i = input(SingleWriter, Some(0), [writer, replica]);
        i.max_read_lag = max;
        let plan = decide(&i);
        check_invariants(&i, &plan);
        assert_eq!(plan.writer, Some(0), "{what}");
        let labels: Vec<(u32, Role)> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Label { node, role } => Some((*node, *role)),
                _ => None,
            })
            .collect();
        assert_eq!(
            labels,
            want.map(|r| (1, r)).into_iter().collect::<Vec<_>>(),
            "{what}: {:?}",
            plan.steps
        );
    }
}

/// Which binary log dump sessions of the replication account a source ends:
/// every one but the newest (the replica's current session), and nothing
/// of other accounts (a change-data-capture reader keeps its own).
#[test]
fn stale_dump_sessions_table() {
    let s = |id: u64, user: &str, seconds: u64| crate::mysql::DumpSession {
        id,
        user: user.into(),
        seconds,
    };
    let repl = "mysqlaa_repl";
    let rows: Vec<(&str, Vec<crate::mysql::DumpSession>, Vec<u64>)> = vec![
        ("no session", vec![], vec![]),
        ("the replica's one session", vec![s(7, repl, 900)], vec![]),
        (
            "a replacement reconnected while the vanished replica's session blocks in a write",
            vec![s(6, repl, 40), s(1066, repl, 2)],
            vec![6],
        ),
        (
            "the blocked session already killed by the new one (shown Killed), in either order",
            vec![s(1066, repl, 2), s(6, repl, 40)],
            vec![6],
        ),
        (
            "two left behind and the current one",
            vec![s(3, repl, 400), s(9, repl, 100), s(12, repl, 0)],
            vec![3, 9],
        ),
        (
            "same age: the later connection is the current one",
            vec![s(15, repl, 1), s(14, repl, 1)],
            vec![14],
        ),
        (
            "another account's reader is not ours to end",
            vec![s(4, "debezium", 5000), s(8, repl, 3)],
            vec![],
        ),
        (
            "another account's readers and two of ours",
            vec![
                s(4, "debezium", 5000),
                s(5, "debezium", 1),
                s(8, repl, 30),
                s(9, repl, 3),
            ],
            vec![8],
        ),
    ];
    for (what, sessions, want) in rows {
        assert_eq!(stale_dump_sessions(&sessions, repl), want, "{what}");
    }
}

/// A source serving a stale dump session of the replication account plans
/// to end it, first of its steps, whatever else the pair does.
#[test]
fn stale_dump_sessions_are_ended() {
    let s = |id: u64, seconds: u64| crate::mysql::DumpSession {
        id,
        user: "mysqlaa_repl".into(),
        seconds,
    };
    let [w, r] = healthy();
    let w = with(w, |n| obs(n).dump_sessions = vec![s(6, 40), s(1066, 2)]);
    let i = input(SingleWriter, Some(0), [w, r]);
    let plan = decide(&i);
    check_invariants(&i, &plan);
    assert_eq!(
        plan.steps,
        vec![Step::EndStaleSessions {
            node: 0,
            sessions: vec![6]
        }]
    );
    // The replica's one session: nothing to do.
    let [w, r] = healthy();
    let w = with(w, |n| obs(n).dump_sessions = vec![s(1066, 2)]);
    let i = input(SingleWriter, Some(0), [w, r]);
    assert_eq!(decide(&i).steps, vec![]);
}
