//! Step `observe` of the pair loop: both nodes' pods (from the reflector
//! store) and servers (concurrently, with timeouts), as
//! [`crate::topology::NodeFacts`]; and the decision's input from them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::super::context::Context;
use super::super::settings::AddressMode;
use crate::accounts::{ADMIN_USER, REPLICATION_USER};
use crate::api::{MySQLActiveActive, TlsMode};
use crate::mysql::{
    AccountPasswords, ChannelTls, ConnectOptions, Endpoint, MySqlClient, Password, Server,
};
use crate::render::Names;
use crate::render::meta::LABEL_ROLE;
use crate::render::mycnf::{MYSQL_PORT, TLS_DIR};
use crate::topology::{self, Input, NodeFacts, Role};

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What one cycle saw.
#[derive(Clone)]
pub struct Observed {
    /// Both nodes.
    pub facts: [NodeFacts; 2],
    clients: [Option<Arc<MySqlClient>>; 2],
    /// The UIDs of both nodes' pods, when they exist.
    pub pod_uids: [Option<String>; 2],
}

impl Observed {
    /// The client of `ordinal`'s server, when it has an address.
    pub fn client(&self, ordinal: u32) -> Option<&Arc<MySqlClient>> {
        self.clients[ordinal as usize % 2].as_ref()
    }
}

/// The key of a cached server client: its address and a digest of the
/// password, so a changed address or a rotated password gets a new client
/// (and the password itself is not kept in the key).
fn client_cache_key(address: &str, password: &str) -> String {
    format!("{address}#{}", crate::render::meta::digest(password))
}

/// The loop's server clients, one per node, kept while the node's address
/// and the admin password stay the same.
#[derive(Default)]
pub struct Clients {
    slots: [Option<(String, Arc<MySqlClient>)>; 2],
}

impl Clients {
    fn get(
        &mut self,
        ordinal: u32,
        address: &str,
        password: &Password,
        connect_timeout: Duration,
        statement_timeout: Duration,
    ) -> Arc<MySqlClient> {
        let slot = &mut self.slots[ordinal as usize % 2];
        let key = client_cache_key(address, password.expose());
        if let Some((k, c)) = slot
            && *k == key
        {
            return c.clone();
        }
        let mut opts = ConnectOptions::new(
            Endpoint {
                host: address.to_string(),
                port: MYSQL_PORT,
            },
            ADMIN_USER,
            password.clone(),
        );
        opts.connect_timeout = connect_timeout;
        opts.statement_timeout = statement_timeout;
        let client = Arc::new(MySqlClient::new(opts));
        *slot = Some((key, client.clone()));
        client
    }
}

/// The longest an observation of one server may take (a few cheap
/// statements): a server that does not answer within it counts as
/// unreachable for this cycle, so a hung server or a dropped network is
/// detected as quickly as a refused connection.
pub const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest wait for a writer already known unreachable: long enough
/// for a server that is back to answer on the pod network.
pub const DOWN_WRITER_PATIENCE: Duration = Duration::from_millis(300);

/// How long to wait for an answer from a node: [`OBSERVE_TIMEOUT`], except
/// for a writer already unreachable whose detection window ends at
/// `window_end`: no longer than that (but [`DOWN_WRITER_PATIENCE`] at
/// least), so the failover is decided when the window ends rather than up
/// to a whole timeout later. Pure.
pub fn patience(now: Instant, window_end: Option<Instant>) -> Duration {
    window_end.map_or(OBSERVE_TIMEOUT, |end| {
        end.saturating_duration_since(now)
            .clamp(DOWN_WRITER_PATIENCE, OBSERVE_TIMEOUT)
    })
}

/// What one look saw of the writer as a semi-sync source: when, its
/// acknowledged count, and whether commits were waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckLook {
    pub at: Instant,
    pub acknowledged: u64,
    pub waiting: bool,
}

/// `SemiSync`: since when the writer's commits have gone without an
/// acknowledgement, from this look and the previous one; `None` when they
/// have not. No semi-sync replica connected: since this look (when it left
/// is not known). Commits waiting and the count unchanged since the
/// previous look: since that look when commits were already waiting then
/// (none of them got an answer after it), so the detection window of a
/// replica cut off under load does not start a whole interval late;
/// otherwise since this look (an idle writer's replica was not failing to
/// answer anything). Pure.
pub fn unacknowledged_since(
    previous: Option<AckLook>,
    now: AckLook,
    semi: &crate::mysql::SemiSyncSource,
) -> Option<Instant> {
    if !semi.enabled {
        return None;
    }
    if semi.clients == 0 {
        return Some(now.at);
    }
    let previous = previous.filter(|p| now.waiting && p.acknowledged == now.acknowledged)?;
    Some(if previous.waiting {
        previous.at
    } else {
        now.at
    })
}

/// Step `observe`. `writer_window_end`: when the detection window of the
/// current writer, unreachable since the last look, ends.
pub async fn observe(
    pair: &MySQLActiveActive,
    ctx: &Context,
    clients: &mut Clients,
    passwords: &AccountPasswords,
    writer_window_end: Option<Instant>,
) -> Observed {
    let writer = current_writer(pair);
    let names = Names::of(pair);
    let pod = |ordinal: u32| {
        ctx.stores
            .pods
            .get(&ObjectRef::new(&names.pod(ordinal)).within(&names.namespace))
    };
    // The revision pods should run (OnDelete: the operator rolls them).
    let update_revision = ctx
        .stores
        .statefulsets
        .get(&ObjectRef::new(&names.statefulset()).within(&names.namespace))
        .and_then(|s| s.status.clone())
        .and_then(|s| s.update_revision);
    let pod_uids = [0, 1].map(|ordinal| pod(ordinal).and_then(|p| p.metadata.uid.clone()));
    let mut prepared = (0..2u32).map(|ordinal| {
        let pod = pod(ordinal);
        let pod = pod.as_deref();
        let address = match ctx.settings.address_mode {
            AddressMode::Dns => Some(names.pod_fqdn(ordinal)),
            AddressMode::PodIp => pod
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.pod_ip.clone()),
        };
        let terminating = pod.is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        let facts = NodeFacts {
            ordinal,
            pod_exists: pod.is_some(),
            pod_ready: pod.is_some_and(ready),
            terminating,
            address: address.clone(),
            role_label: pod
                .and_then(|p| p.labels().get(LABEL_ROLE))
                .and_then(|v| Role::from_label(v)),
            server: Err("not observed".into()),
            failure: None,
            outdated: match (pod, update_revision.as_deref()) {
                (Some(p), Some(rev)) => p
                    .labels()
                    .get("controller-revision-hash")
                    .is_some_and(|h| h != rev),
                _ => false,
            },
        };
        let client = match (&address, pod) {
            (Some(a), Some(_)) if !terminating => Some(clients.get(
                ordinal,
                a,
                &passwords.admin,
                ctx.settings.connect_timeout,
                ctx.settings.statement_timeout,
            )),
            _ => None,
        };
        (facts, client)
    });
    let (Some((mut f0, c0)), Some((mut f1, c1))) = (prepared.next(), prepared.next()) else {
        unreachable!("two ordinals")
    };
    async fn look(c: &Option<Arc<MySqlClient>>, f: &mut NodeFacts, patience: Duration) {
        let Some(c) = c else {
            f.server = Err(if f.pod_exists {
                "no address yet".into()
            } else {
                "pod does not exist".into()
            });
            return;
        };
        // A hung server or a dropped network answers nothing: what the
        // decision needs is that it did not answer in time, not the
        // statement timeout of a long step.
        f.server = match tokio::time::timeout(patience, c.observe()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", patience.as_millis())),
        };
        if f.server.as_ref().is_ok_and(topology::halted) {
            f.failure = c.applier_failure().await.ok().flatten();
        }
    }
    let now = Instant::now();
    let patience =
        |ordinal: u32| patience(now, writer_window_end.filter(|_| writer == Some(ordinal)));
    tokio::join!(
        look(&c0, &mut f0, patience(0)),
        look(&c1, &mut f1, patience(1))
    );
    Observed {
        facts: [f0, f1],
        clients: [c0, c1],
        pod_uids,
    }
}

/// The decision input for `pair`; `writer_down_long_enough` and
/// `acks_missing_long_enough` come from the caller's clock.
pub fn input(
    pair: &MySQLActiveActive,
    observed: &Observed,
    writer_down_long_enough: bool,
    acks_missing_long_enough: bool,
    lease: topology::LeaseInput,
    seed: topology::SeedInput,
) -> Input {
    let names = Names::of(pair);
    let current_writer = pair
        .status
        .as_ref()
        .and_then(|s| s.writer.as_ref())
        .and_then(|w| (0..2).find(|o| names.pod(*o) == *w));
    let writer_history = current_writer.and_then(|w| history_of(pair, w));
    Input {
        mode: pair.spec.write_mode,
        engine: pair.spec.engine,
        policy: pair.spec.replication.applier_error_policy,
        replication_user: REPLICATION_USER.into(),
        port: MYSQL_PORT,
        tls: channel_tls(pair),
        current_writer,
        nodes: observed.facts.clone(),
        failover: topology::FailoverInput {
            automatic: pair.spec.failover.automatic,
            writer_down_long_enough,
        },
        writer_history,
        switchover: pending_switchover(pair).and_then(|(_, target)| target.ok()),
        epoch: pair.status.as_ref().map_or(0, |s| s.writer_epoch),
        durability: topology::DurabilityInput {
            mode: pair.spec.durability(),
            stale: stale_replica(pair),
            acks_missing_long_enough,
        },
        lease,
        seed,
        max_read_lag: pair.spec.replication.max_read_lag_seconds,
        pending: pending_change(pair, &observed.pod_uids),
    }
}

/// What status last recorded of node `ordinal` as a writer: its executed
/// GTID set and identity.
pub fn history_of(pair: &MySQLActiveActive, ordinal: u32) -> Option<topology::WriterHistory> {
    let n = pair
        .status
        .as_ref()?
        .nodes
        .iter()
        .find(|n| n.ordinal == ordinal)?;
    Some(topology::WriterHistory {
        gtid_executed: n.executed_gtid_set.clone()?,
        source: match pair.spec.engine {
            crate::api::Engine::MySQL => n.server_uuid.clone()?,
            crate::api::Engine::MariaDB => n.server_id?.to_string(),
        },
    })
}

/// `status.pendingRoleChange`, when it is the change to the recorded
/// writer claimed at the current epoch (any other is an old record);
/// `pod_uids` are the UIDs of both nodes' pods now ([`Observed::pod_uids`]).
pub fn pending_change(
    pair: &MySQLActiveActive,
    pod_uids: &[Option<String>; 2],
) -> Option<topology::PendingChange> {
    let names = Names::of(pair);
    let s = pair.status.as_ref()?;
    let p = s.pending_role_change.as_ref()?;
    let from = (0..2).find(|o| names.pod(*o) == p.from)?;
    let old_pod_replaced = replaced(
        p.from_pod_uid.as_deref(),
        pod_uids[from as usize % 2].as_deref(),
    );
    (p.epoch == s.writer_epoch && s.writer.as_deref() == Some(p.to.as_str())).then_some(
        topology::PendingChange {
            from,
            kind: p.kind,
            old_pod_replaced,
        },
    )
}

/// Whether the pod whose UID a claim recorded (`claimed`) was replaced by
/// the one there now (`now`). Unknown either way: not replaced (the pod is
/// deleted again, which costs a restart of a read-only server). Pure.
fn replaced(claimed: Option<&str>, now: Option<&str>) -> bool {
    matches!((claimed, now), (Some(c), Some(n)) if c != n)
}

/// The node `status.staleReplica` names.
pub fn stale_replica(pair: &MySQLActiveActive) -> Option<u32> {
    let names = Names::of(pair);
    let stale = pair.status.as_ref()?.stale_replica.as_ref()?;
    (0..2).find(|o| names.pod(*o) == stale.node)
}

/// The switchover request not yet answered in status, if any, with the
/// ordinal of its target (`Err`: the target is not a pod of this pair).
pub fn pending_switchover(
    pair: &MySQLActiveActive,
) -> Option<(&crate::api::SwitchoverRequest, Result<u32, String>)> {
    let req = pair.spec.switchover.as_ref()?;
    let answered = pair
        .status
        .as_ref()
        .and_then(|s| s.answered_switchover_request.as_deref());
    if answered == Some(req.request_id.as_str()) {
        return None;
    }
    let names = Names::of(pair);
    let target = (0..2u32)
        .find(|o| names.pod(*o) == req.target)
        .ok_or_else(|| {
            format!(
                "target {:?} is not a pod of this pair (expected {} or {})",
                req.target,
                names.pod(0),
                names.pod(1)
            )
        });
    Some((req, target))
}

/// The unanswered `spec.reseed` request, with the ordinal it names (or why
/// it names none).
pub fn pending_reseed(
    pair: &MySQLActiveActive,
) -> Option<(&crate::api::ReseedRequest, Result<u32, String>)> {
    let req = pair.spec.reseed.as_ref()?;
    let answered = pair
        .status
        .as_ref()
        .and_then(|s| s.answered_reseed_request.as_deref());
    if answered == Some(req.request_id.as_str()) {
        return None;
    }
    let names = Names::of(pair);
    let node = (0..2u32)
        .find(|o| names.pod(*o) == req.node)
        .ok_or_else(|| {
            format!(
                "node {:?} is not a pod of this pair (expected {} or {})",
                req.node,
                names.pod(0),
                names.pod(1)
            )
        });
    Some((req, node))
}

/// The writer recorded in status, if any.
pub fn current_writer(pair: &MySQLActiveActive) -> Option<u32> {
    let names = Names::of(pair);
    pair.status
        .as_ref()
        .and_then(|s| s.writer.as_ref())
        .and_then(|w| (0..2).find(|o| names.pod(*o) == *w))
}

/// The TLS the spec asks of the replication channels.
pub fn channel_tls(pair: &MySQLActiveActive) -> ChannelTls {
    let ca_file = format!("{TLS_DIR}/ca.crt");
    match pair.spec.replication.tls.mode {
        TlsMode::Disabled => ChannelTls::Disabled,
        TlsMode::Required => ChannelTls::Required,
        TlsMode::VerifyCA => ChannelTls::VerifyCa { ca_file },
        TlsMode::VerifyIdentity => ChannelTls::VerifyIdentity { ca_file },
    }
}

#[cfg(test)]
mod cache_key_tests {
    use super::client_cache_key;

    #[test]
    fn a_rotated_password_or_a_new_address_gets_a_new_client() {
        let base = client_cache_key("10.0.0.2", "first-password");
        assert_eq!(base, client_cache_key("10.0.0.2", "first-password"));
        assert_ne!(base, client_cache_key("10.0.0.2", "rotated-password"));
        assert_ne!(base, client_cache_key("10.0.0.3", "first-password"));
        assert!(!base.contains("first-password"));
    }
}

#[cfg(test)]
mod replaced_tests {
    use super::replaced;

    #[test]
    fn only_another_pod_than_the_claimed_one_is_a_replacement() {
        // (claimed uid, uid now, replaced)
        let rows = [
            (Some("a"), Some("a"), false),
            (Some("a"), Some("b"), true),
            (Some("a"), None, false),
            (None, Some("b"), false),
            (None, None, false),
        ];
        for (claimed, now, want) in rows {
            assert_eq!(replaced(claimed, now), want, "{claimed:?} {now:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_ends_with_the_detection_window() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let cases = [
            // No writer known down: the full timeout.
            (None, OBSERVE_TIMEOUT),
            // The window ends later than a whole timeout.
            (Some(now + ms(4_000)), OBSERVE_TIMEOUT),
            // ... within one: no longer than that.
            (Some(now + ms(1_200)), ms(1_200)),
            // ... within the least patience, or already over.
            (Some(now + ms(100)), DOWN_WRITER_PATIENCE),
            (Some(now), DOWN_WRITER_PATIENCE),
        ];
        for (end, want) in cases {
            assert_eq!(patience(now, end), want, "{end:?}");
        }
        // A window that ended before `now` (saturating, no panic).
        let later = now + ms(50);
        assert_eq!(patience(later, Some(now)), DOWN_WRITER_PATIENCE);
    }

    #[test]
    fn unacknowledged_since_the_last_look_that_saw_an_acknowledgement() {
        let now = Instant::now();
        let before = now - Duration::from_secs(2);
        let semi =
            |enabled, clients, waiting_sessions, acknowledged| crate::mysql::SemiSyncSource {
                enabled,
                waiting_for_acks: enabled,
                clients,
                waiting_sessions,
                acknowledged,
            };
        let look = |at, acknowledged, waiting| AckLook {
            at,
            acknowledged,
            waiting,
        };
        let cases = [
            // Acknowledgements came since the previous look.
            (Some(look(before, 10, true)), semi(true, 1, 1, 12), None),
            // None came, commits wait now and waited then: since then.
            (
                Some(look(before, 10, true)),
                semi(true, 1, 2, 10),
                Some(before),
            ),
            // None came, commits wait now, none waited then (the writer
            // was idle): since now.
            (
                Some(look(before, 10, false)),
                semi(true, 1, 1, 10),
                Some(now),
            ),
            // None came, but nothing waits (no writes): nothing missing.
            (Some(look(before, 10, true)), semi(true, 1, 0, 10), None),
            // No previous look to compare with.
            (None, semi(true, 1, 2, 10), None),
            // No semi-sync replica connected: since this look.
            (
                Some(look(before, 10, true)),
                semi(true, 0, 0, 10),
                Some(now),
            ),
            (None, semi(true, 0, 3, 10), Some(now)),
            // Not waiting for acknowledgements at all.
            (Some(look(before, 10, true)), semi(false, 0, 2, 10), None),
        ];
        for (previous, s, want) in cases {
            let this = look(now, s.acknowledged, s.waiting_sessions > 0);
            assert_eq!(
                unacknowledged_since(previous, this, &s),
                want,
                "{previous:?} {s:?}"
            );
        }
    }
}
