//! The pair loop: observe both nodes (concurrently, with timeouts), decide
//! with [`crate::topology::decide`], and run the plan's named steps.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::Context;
use super::error::{Error, kube};
use crate::accounts::{ADMIN_USER, REPLICATION_USER};
use crate::api::{MySQLActiveActive, SkippedTransaction, TlsMode};
use crate::mysql::{
    AccountPasswords, ChannelTls, ConnectOptions, Endpoint, MySqlClient, Password, Server,
    SourceSpec,
};
use crate::render::Names;
use crate::render::meta::{LABEL_INSTANCE, LABEL_ROLE};
use crate::render::mycnf::{MYSQL_PORT, TLS_DIR};
use crate::topology::{self, Input, NodeFacts, Plan, Role, Step};

/// How the operator and the replicas address the pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AddressMode {
    /// `<pod>.<headless service>.<namespace>.svc` (needs cluster DNS).
    Dns,
    /// The pod's IP (environments without cluster DNS, such as the sandbox).
    PodIp,
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What one cycle saw.
pub struct Observed {
    /// Both nodes.
    pub facts: [NodeFacts; 2],
    clients: [Option<Arc<MySqlClient>>; 2],
}

impl Observed {
    /// The client of `ordinal`'s server, when it has an address.
    pub fn client(&self, ordinal: u32) -> Option<&MySqlClient> {
        self.clients[ordinal as usize % 2].as_deref()
    }
}

/// The key of a cached server client: the node, its address and a digest
/// of the password, so a changed address or a rotated password gets a new
/// client (and the password itself is not kept in the key).
fn client_cache_key(node: &str, address: &str, password: &str) -> String {
    format!("{node}@{address}#{}", crate::render::meta::digest(password))
}

impl Context {
    fn client_for(&self, key: String, address: &str, password: &str) -> Arc<MySqlClient> {
        let mut cache = self.clients.lock().expect("client cache");
        let wanted = client_cache_key(&key, address, password);
        if let Some(c) = cache.get(&wanted) {
            return c.clone();
        }
        cache.retain(|k, _| !k.starts_with(&format!("{key}@")));
        let mut opts = ConnectOptions::new(
            Endpoint {
                host: address.to_string(),
                port: MYSQL_PORT,
            },
            ADMIN_USER,
            Password::new(password),
        );
        opts.connect_timeout = self.settings.connect_timeout;
        opts.statement_timeout = self.settings.statement_timeout;
        let client = Arc::new(MySqlClient::new(opts));
        cache.insert(wanted, client.clone());
        client
    }
}

/// Observes both nodes.
pub async fn observe(
    pair: &MySQLActiveActive,
    ctx: &Context,
    passwords: &AccountPasswords,
) -> Result<Observed, Error> {
    let names = Names::of(pair);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("{LABEL_INSTANCE}={}", names.pair)))
        .await
        .map_err(kube("observe"))?;
    let by_name: HashMap<String, Pod> = list.items.into_iter().map(|p| (p.name_any(), p)).collect();
    // The revision pods should run (OnDelete: the operator rolls them).
    let update_revision = Api::<StatefulSet>::namespaced(ctx.client.clone(), &names.namespace)
        .get_opt(&names.statefulset())
        .await
        .map_err(kube("observe"))?
        .and_then(|s| s.status)
        .and_then(|s| s.update_revision);
    let prepared: Vec<(NodeFacts, Option<Arc<MySqlClient>>)> = (0..2u32)
        .map(|ordinal| {
            let pod = by_name.get(&names.pod(ordinal));
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
                (Some(a), Some(_)) if !terminating => Some(ctx.client_for(
                    format!("{}/{}/{ordinal}", names.namespace, names.pair),
                    a,
                    passwords.admin.expose(),
                )),
                _ => None,
            };
            (facts, client)
        })
        .collect();
    let [(mut f0, c0), (mut f1, c1)]: [(NodeFacts, Option<Arc<MySqlClient>>); 2] = prepared
        .try_into()
        .unwrap_or_else(|_| unreachable!("two nodes"));
    async fn look(c: &Option<Arc<MySqlClient>>, f: &mut NodeFacts) {
        let Some(c) = c else {
            f.server = Err(if f.pod_exists {
                "no address yet".into()
            } else {
                "pod does not exist".into()
            });
            return;
        };
        f.server = c.observe().await.map_err(|e| e.to_string());
        let halted = f
            .server
            .as_ref()
            .ok()
            .and_then(|o| o.replica.as_ref())
            .is_some_and(|r| {
                r.last_sql_errno != 0 && r.sql_running != crate::mysql::ThreadState::Yes
            });
        if halted {
            f.failure = c.applier_failure().await.ok().flatten();
        }
    }
    tokio::join!(look(&c0, &mut f0), look(&c1, &mut f1));
    Ok(Observed {
        facts: [f0, f1],
        clients: [c0, c1],
    })
}

/// The decision input for `pair`; `writer_down_long_enough` comes from the
/// caller's clock.
pub fn input(
    pair: &MySQLActiveActive,
    observed: &Observed,
    writer_down_long_enough: bool,
) -> Input {
    let names = Names::of(pair);
    let current_writer = pair
        .status
        .as_ref()
        .and_then(|s| s.writer.as_ref())
        .and_then(|w| (0..2).find(|o| names.pod(*o) == *w));
    let writer_history = current_writer.and_then(|w| {
        let n = pair
            .status
            .as_ref()?
            .nodes
            .iter()
            .find(|n| n.ordinal == w)?;
        Some(topology::WriterHistory {
            gtid_executed: n.executed_gtid_set.clone()?,
            source: match pair.spec.engine {
                crate::api::Engine::MySQL => n.server_uuid.clone()?,
                crate::api::Engine::MariaDB => n.server_id?.to_string(),
            },
        })
    });
    Input {
        mode: pair.spec.write_mode,
        engine: pair.spec.engine,
        policy: pair.spec.replication.applier_error_policy,
        replication_user: REPLICATION_USER.into(),
        port: MYSQL_PORT,
        current_writer,
        nodes: observed.facts.clone(),
        failover: topology::FailoverInput {
            automatic: pair.spec.failover.automatic,
            writer_down_long_enough,
        },
        writer_history,
        switchover: pending_switchover(pair).and_then(|(_, target)| target.ok()),
    }
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

/// The writer recorded in status, if any.
fn current_writer(pair: &MySQLActiveActive) -> Option<u32> {
    let names = Names::of(pair);
    pair.status
        .as_ref()
        .and_then(|s| s.writer.as_ref())
        .and_then(|w| (0..2).find(|o| names.pod(*o) == *w))
}

fn channel_tls(pair: &MySQLActiveActive) -> ChannelTls {
    let ca_file = format!("{TLS_DIR}/ca.crt");
    match pair.spec.replication.tls.mode {
        TlsMode::Disabled => ChannelTls::Disabled,
        TlsMode::Required => ChannelTls::Required,
        TlsMode::VerifyCA => ChannelTls::VerifyCa { ca_file },
        TlsMode::VerifyIdentity => ChannelTls::VerifyIdentity { ca_file },
    }
}

fn describe(step: &Step, names: &Names) -> String {
    match step {
        Step::EnsureUsers { node } => {
            format!("created the operator's accounts on {}", names.pod(*node))
        }
        Step::WireReplication { node, source } => format!(
            "{} replicates from {} (GTID auto-position)",
            names.pod(*node),
            names.pod(*source)
        ),
        Step::Fence { node } => format!(
            "{} is read-only; client connections ended",
            names.pod(*node)
        ),
        Step::Unfence { node } => format!("{} is writable", names.pod(*node)),
        Step::Label { node, role } => format!(
            "{} labelled {LABEL_ROLE}={}",
            names.pod(*node),
            role.label()
        ),
        Step::Promote { node, from } => format!(
            "{} promoted to writer in place of the unreachable {}",
            names.pod(*node),
            names.pod(*from)
        ),
        Step::Restart { node } => format!(
            "{} restarted onto the new configuration (rolling update)",
            names.pod(*node)
        ),
        Step::Isolate { node } => format!(
            "{} deleted: it could not be reached to be fenced, so its kubelet stops the server (the StatefulSet recreates it read-only)",
            names.pod(*node)
        ),
        Step::CatchUp { node, from } => format!(
            "{} applied every transaction of the fenced {}",
            names.pod(*node),
            names.pod(*from)
        ),
        Step::SkipTransaction { node, failure } => format!(
            "{} skipped transaction {} (error {}: {})",
            names.pod(*node),
            failure.gtid,
            failure.errno,
            failure.message
        ),
    }
}

/// What the steps did that status records.
#[derive(Debug, Default)]
pub struct Acted {
    /// Transactions skipped under SkipAndRecord.
    pub skipped: Vec<SkippedTransaction>,
    /// Whether a promotion gave up transactions it could not apply in time.
    pub data_loss_accepted: bool,
}

/// Runs the plan's steps in order; stops at the first failure.
pub async fn act(
    pair: &MySQLActiveActive,
    ctx: &Context,
    observed: &Observed,
    plan: &Plan,
    passwords: &AccountPasswords,
) -> Result<Acted, Error> {
    let names = Names::of(pair);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let mut skipped = Vec::new();
    let mut data_loss_accepted = false;
    let sql = |node: u32| -> Result<&Arc<MySqlClient>, Error> {
        observed.clients[node as usize % 2]
            .as_ref()
            .ok_or_else(|| Error::Sql {
                step: "connect",
                node,
                source: crate::mysql::SqlError::Unexpected {
                    op: "connect",
                    endpoint: Endpoint {
                        host: String::new(),
                        port: MYSQL_PORT,
                    },
                    message: "the node has no address".into(),
                },
            })
    };
    for step in &plan.steps {
        let name = step.name();
        let sql_err = |node: u32| {
            move |source| Error::Sql {
                step: name,
                node,
                source,
            }
        };
        let result: Result<(), Error> = match step {
            Step::EnsureUsers { node } => sql(*node)?
                .ensure_users(passwords)
                .await
                .map(drop)
                .map_err(sql_err(*node)),
            Step::WireReplication { node, source } => {
                let address = observed.facts[*source as usize % 2]
                    .address
                    .clone()
                    .unwrap_or_default();
                let spec = SourceSpec {
                    endpoint: Endpoint {
                        host: address,
                        port: MYSQL_PORT,
                    },
                    user: REPLICATION_USER.into(),
                    password: passwords.replication.clone(),
                    tls: channel_tls(pair),
                };
                sql(*node)?
                    .ensure_replication(&spec)
                    .await
                    .map(drop)
                    .map_err(sql_err(*node))
            }
            Step::Fence { node } => sql(*node)?.fence().await.map(drop).map_err(sql_err(*node)),
            Step::Promote { node, .. } => {
                // Catch up on what was received from the failed writer.
                let received = observed.facts[*node as usize % 2]
                    .server
                    .as_ref()
                    .ok()
                    .and_then(|o| o.replica.as_ref())
                    .map(|r| r.retrieved_gtid_set.clone())
                    .unwrap_or_default();
                let limit = std::time::Duration::from_secs(u64::from(
                    pair.spec.failover.apply_timeout_seconds,
                ));
                match sql(*node)?.wait_for_gtid_set(&received, limit).await {
                    Ok(true) => Ok(()),
                    Ok(false) if pair.spec.failover.accept_data_loss => {
                        data_loss_accepted = true;
                        Ok(())
                    }
                    Ok(false) => Err(Error::Sql {
                        step: name,
                        node: *node,
                        source: crate::mysql::SqlError::Unexpected {
                            op: "promote",
                            endpoint: sql(*node)?.endpoint().clone(),
                            message: format!(
                                "did not apply the received transactions {received} within {limit:?}; not promoted (failover.acceptDataLoss is false)"
                            ),
                        },
                    }),
                    Err(e) => Err(sql_err(*node)(e)),
                }
            }
            Step::CatchUp { node, from } => async {
                // The old writer is fenced: its executed set is final.
                let target = sql(*from)?
                    .observe()
                    .await
                    .map_err(sql_err(*from))?
                    .gtid_executed;
                let limit = std::time::Duration::from_secs(u64::from(
                    pair.spec.failover.apply_timeout_seconds,
                ));
                match sql(*node)?.wait_for_gtid_set(&target, limit).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(Error::Sql {
                        step: name,
                        node: *node,
                        source: crate::mysql::SqlError::Unexpected {
                            op: "catch_up",
                            endpoint: sql(*node)?.endpoint().clone(),
                            message: format!(
                                "did not apply {target} within {limit:?} (failover.applyTimeoutSeconds)"
                            ),
                        },
                    }),
                    Err(e) => Err(sql_err(*node)(e)),
                }
            }
            .await,
            Step::Unfence { node } => sql(*node)?.unfence().await.map_err(sql_err(*node)),
            Step::Restart { node } => pods
                .delete(&names.pod(*node), &kube::api::DeleteParams::default())
                .await
                .map(drop)
                .map_err(kube(name)),
            Step::Isolate { node } => pods
                .delete(
                    &names.pod(*node),
                    // Kubelet-confirmed (never a forced deletion, which could
                    // leave the old server running beside its replacement),
                    // with a short grace: the server is already lost.
                    &kube::api::DeleteParams {
                        grace_period_seconds: Some(1),
                        ..Default::default()
                    },
                )
                .await
                .map(drop)
                .or_else(|e| match e {
                    kube::Error::Api(s) if s.code == 404 => Ok(()),
                    other => Err(other),
                })
                .map_err(kube(name)),
            Step::Label { node, role } => pods
                .patch(
                    &names.pod(*node),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {LABEL_ROLE: role.label()}}})),
                )
                .await
                .map(drop)
                .map_err(kube(name)),
            Step::SkipTransaction { node, failure } => {
                let r = sql(*node)?
                    .skip_failed_transaction(failure)
                    .await
                    .map_err(sql_err(*node));
                if r.is_ok() {
                    skipped.push(SkippedTransaction {
                        node: names.pod(*node),
                        gtid: failure.gtid.clone(),
                        errno: failure.errno,
                        message: failure.message.clone(),
                        skipped_at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            jiff::Timestamp::now(),
                        ),
                    });
                    ctx.metrics
                        .skipped_transactions
                        .get_or_create(&super::metrics::NodeLabels {
                            namespace: names.namespace.clone(),
                            pair: names.pair.clone(),
                            node: names.pod(*node),
                        })
                        .inc();
                }
                r
            }
        };
        ctx.metrics
            .steps
            .get_or_create(&super::metrics::KindLabels { kind: name.into() })
            .inc();
        let reference = pair.object_ref(&());
        match result {
            Ok(()) => {
                tracing::info!(step = name, detail = %describe(step, &names), "step done");
                let type_ = if matches!(step, Step::SkipTransaction { .. }) {
                    EventType::Warning
                } else {
                    EventType::Normal
                };
                ctx.publish(
                    Event {
                        type_,
                        reason: name.into(),
                        note: Some(describe(step, &names)),
                        action: name.into(),
                        secondary: None,
                    },
                    &reference,
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(step = name, error = %e, "step failed");
                ctx.publish(
                    Event {
                        type_: EventType::Warning,
                        reason: super::events::STEP_FAILED.into(),
                        note: Some(format!("{name}: {e}")),
                        action: name.into(),
                        secondary: None,
                    },
                    &reference,
                )
                .await;
                return Err(e);
            }
        }
    }
    Ok(Acted {
        skipped,
        data_loss_accepted,
    })
}

/// Observes, decides, acts: one cycle of the pair loop.
pub async fn cycle(
    pair: &MySQLActiveActive,
    ctx: &Context,
    passwords: &AccountPasswords,
    act_allowed: bool,
) -> Result<(Observed, Plan, Result<Acted, Error>), Error> {
    let observed = observe(pair, ctx, passwords).await?;
    // The detection window: how long the writer has been unreachable.
    let key = format!("{}/{}", Names::of(pair).namespace, Names::of(pair).pair);
    let writer_down =
        current_writer(pair).is_some_and(|w| !observed.facts[w as usize % 2].reachable());
    let long_enough = {
        let mut since = ctx.writer_down_since.lock().expect("writer_down_since");
        if writer_down {
            let first = *since
                .entry(key.clone())
                .or_insert_with(std::time::Instant::now);
            first.elapsed()
                >= std::time::Duration::from_secs(u64::from(
                    pair.spec.failover.detection_window_seconds,
                ))
        } else {
            since.remove(&key);
            false
        }
    };
    let plan = topology::decide(&input(pair, &observed, long_enough));
    let outcome = if act_allowed && !plan.steps.is_empty() {
        act(pair, ctx, &observed, &plan, passwords).await
    } else {
        Ok(Acted::default())
    };
    Ok((observed, plan, outcome))
}

/// Password helper for tests and callers.
pub fn passwords(admin: &str, replication: &str) -> AccountPasswords {
    AccountPasswords {
        admin: Password::new(admin),
        replication: Password::new(replication),
    }
}

#[cfg(test)]
mod cache_key_tests {
    use super::client_cache_key;

    #[test]
    fn a_rotated_password_or_a_new_address_gets_a_new_client() {
        let base = client_cache_key("shop/orders/0", "10.0.0.2", "first-password");
        assert_eq!(
            base,
            client_cache_key("shop/orders/0", "10.0.0.2", "first-password")
        );
        assert_ne!(
            base,
            client_cache_key("shop/orders/0", "10.0.0.2", "rotated-password")
        );
        assert_ne!(
            base,
            client_cache_key("shop/orders/0", "10.0.0.3", "first-password")
        );
        assert!(!base.contains("first-password"));
        assert!(
            base.starts_with("shop/orders/0@"),
            "the old clients of the node are found by prefix"
        );
    }
}
