//! Step `act` of the pair loop: runs the plan's steps in order, each with
//! its name (the Event reason), and stops at the first failure. Between
//! steps it checks that the spec it acts on is still the latest one: a
//! pause, or any new generation, stops the plan (the next cycle decides
//! again on the new spec).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::super::context::Context;
use super::super::error::{Error, kube};
use super::super::events::{Reason, StepName};
use super::observe::{Observed, channel_tls};
use crate::accounts::REPLICATION_USER;
use crate::api::{MySQLActiveActive, SkippedTransaction};
use crate::mysql::{AccountPasswords, Endpoint, MySqlClient, Server, SourceSpec};
use crate::render::Names;
use crate::render::meta::LABEL_ROLE;
use crate::render::mycnf::MYSQL_PORT;
use crate::topology::{Plan, Step};

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
    /// Whether the plan stopped early because the spec changed.
    pub superseded: bool,
}

/// Waits until `node` applied `set`, within `limit`.
async fn wait_applied(
    client: &MySqlClient,
    step: &'static str,
    node: u32,
    set: &str,
    limit: Duration,
) -> Result<bool, Error> {
    client
        .wait_for_gtid_set(set, limit)
        .await
        .map_err(|source| Error::Sql { step, node, source })
}

/// Step `act`. `current` says whether the spec acted on is still the
/// latest (checked before each step).
pub async fn act(
    pair: &MySQLActiveActive,
    ctx: &Context,
    observed: &Observed,
    plan: &Plan,
    passwords: &AccountPasswords,
    current: &(dyn Fn() -> bool + Sync),
) -> Result<Acted, Error> {
    let names = Names::of(pair);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let mut acted = Acted::default();
    let limit = Duration::from_secs(u64::from(pair.spec.failover.apply_timeout_seconds));
    for step in &plan.steps {
        if !current() {
            tracing::info!("the spec changed: the rest of the plan is left to the next cycle");
            acted.superseded = true;
            break;
        }
        let name = StepName::of(step);
        let step_name = name.as_str();
        let sql = |node: u32| -> Result<&Arc<MySqlClient>, Error> {
            observed.client(node).ok_or(Error::NoAddress {
                step: step_name,
                node,
            })
        };
        let sql_err = |node: u32| {
            move |source| Error::Sql {
                step: step_name,
                node,
                source,
            }
        };
        let pod_object = |node: u32| format!("Pod {}/{}", names.namespace, names.pod(node));
        let result: Result<(), Error> = match step {
            Step::EnsureUsers { node } => sql(*node)?
                .ensure_users(passwords)
                .await
                .map(drop)
                .map_err(sql_err(*node)),
            Step::WireReplication { node, source } => {
                let address = observed.facts[*source as usize % 2].address.clone().ok_or(
                    Error::NoAddress {
                        step: step_name,
                        node: *source,
                    },
                )?;
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
                match wait_applied(sql(*node)?, step_name, *node, &received, limit).await? {
                    true => Ok(()),
                    false if pair.spec.failover.accept_data_loss => {
                        acted.data_loss_accepted = true;
                        Ok(())
                    }
                    false => Err(Error::NotCaughtUp {
                        step: step_name,
                        node: *node,
                        gtid_set: received,
                        limit,
                        hint: "; not promoted (failover.acceptDataLoss is false)",
                    }),
                }
            }
            Step::CatchUp { node, from } => {
                // The old writer is fenced: its executed set is final.
                let target = sql(*from)?
                    .observe()
                    .await
                    .map_err(sql_err(*from))?
                    .gtid_executed;
                match wait_applied(sql(*node)?, step_name, *node, &target, limit).await? {
                    true => Ok(()),
                    false => Err(Error::NotCaughtUp {
                        step: step_name,
                        node: *node,
                        gtid_set: target,
                        limit,
                        hint: " (failover.applyTimeoutSeconds)",
                    }),
                }
            }
            Step::Unfence { node } => sql(*node)?.unfence().await.map_err(sql_err(*node)),
            Step::Restart { node } => pods
                .delete(&names.pod(*node), &DeleteParams::default())
                .await
                .map(drop)
                .map_err(kube(step_name, pod_object(*node))),
            Step::Isolate { node } => pods
                .delete(
                    &names.pod(*node),
                    // Kubelet-confirmed (never a forced deletion, which could
                    // leave the old server running beside its replacement),
                    // with a short grace: the server is already lost.
                    &DeleteParams {
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
                .map_err(kube(step_name, pod_object(*node))),
            Step::Label { node, role } => pods
                .patch(
                    &names.pod(*node),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {LABEL_ROLE: role.label()}}})),
                )
                .await
                .map(drop)
                .map_err(kube(step_name, pod_object(*node))),
            Step::SkipTransaction { node, failure } => {
                let r = sql(*node)?
                    .skip_failed_transaction(failure)
                    .await
                    .map_err(sql_err(*node));
                if r.is_ok() {
                    acted.skipped.push(SkippedTransaction {
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
                        .get_or_create(&super::super::metrics::NodeLabels {
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
            .get_or_create(&super::super::metrics::KindLabels {
                kind: step_name.into(),
            })
            .inc();
        match result {
            Ok(()) => {
                let detail = describe(step, &names);
                tracing::info!(step = step_name, detail = %detail, "step done");
                ctx.publish(pair, Reason::Step(name), detail).await;
            }
            Err(e) => {
                tracing::warn!(step = step_name, error = %e, "step failed");
                ctx.publish(pair, Reason::StepFailed, e.to_string()).await;
                return Err(e);
            }
        }
    }
    Ok(acted)
}
