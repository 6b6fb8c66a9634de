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
use super::super::status::Claim;
use super::observe::{Observed, channel_tls};
use crate::accounts::REPLICATION_USER;
use crate::api::{MySQLActiveActive, PendingRoleChange, SkippedTransaction, StaleReplica};
use crate::mysql::{AccountPasswords, Endpoint, MySqlClient, Server, SourceSpec};
use crate::render::Names;
use crate::render::meta::LABEL_ROLE;
use crate::render::mycnf::MYSQL_PORT;
use crate::topology::Role;
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
            "{} labelled {LABEL_ROLE}={}{}",
            names.pod(*node),
            role.label(),
            match role {
                Role::Lagging =>
                    ": further behind than spec.replication.maxReadLagSeconds, out of the reader Service",
                Role::Seeding => ": out of both Services while it awaits or receives a copy",
                Role::Writer | Role::Replica => "",
            }
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
        Step::ClaimEpoch {
            epoch, node, stale, ..
        } => format!(
            "writer epoch {epoch}: {} is to take writes{}",
            names.pod(*node),
            stale.map_or(String::new(), |s| format!(
                "; {} is stale (it was the writer: it may hold commits never acknowledged) and is not promotable until it has caught up",
                names.pod(s)
            ))
        ),
        Step::StopReceiving { node } => format!(
            "{} stopped receiving from the old writer: the old writer gets no acknowledgement (under SemiSync it can commit nothing more) and its agent no confirmation",
            names.pod(*node)
        ),
        Step::HandLease { node, epoch } => format!(
            "writer Lease {} handed to {} at epoch {epoch}: its agent renews it, and fences its server if it can neither renew nor be confirmed by its peer",
            names.writer_lease(),
            names.pod(*node)
        ),
        Step::AwaitFence { from } => format!(
            "after the candidate stopped receiving, waited out the last confirmation {}'s agent got (at most {} ms): it has fenced its server unless it renewed the Lease",
            names.pod(*from),
            crate::agent::deadline::CONFIRMATION_VALIDITY.as_millis(),
        ),
        Step::MarkStale { node, epoch } => format!(
            "{} stopped acknowledging the writer's commits for the detection window: recorded stale at epoch {epoch} (not promotable until it has caught up)",
            names.pod(*node)
        ),
        Step::SemiSyncOn { node } => format!(
            "{}'s commits wait for the replica's acknowledgement",
            names.pod(*node)
        ),
        Step::SemiSyncOff { node } => format!(
            "{}'s commits no longer wait for an acknowledgement",
            names.pod(*node)
        ),
        Step::ClearStale { node, .. } => format!(
            "{} has every transaction of the writer and acknowledges again: promotable",
            names.pod(*node)
        ),
        Step::EndStaleSessions { node, sessions } => format!(
            "{} ended binary log dump sessions {sessions:?} left by a replica that is gone (they blocked its new session for up to net_write_timeout)",
            names.pod(*node)
        ),
        Step::SkipTransaction { node, failure } => format!(
            "{} skipped transaction {} (error {}: {})",
            names.pod(*node),
            failure.gtid,
            failure.errno,
            failure.message
        ),
        Step::Reseed {
            node,
            from,
            reason,
            discards,
        } => format!(
            "re-seed of {} ({}): copying {}'s data into it; it is not promotable until it replicates again{}",
            names.pod(*node),
            reason.as_str(),
            names.pod(*from),
            discards.as_ref().map_or_else(String::new, |set| format!(
                "; its transactions {set}, which the writer does not have, are discarded"
            ))
        ),
    }
}

/// The replication channel's view of `source`: its address, the
/// replication account, the TLS the spec asks for.
fn source_spec(
    pair: &MySQLActiveActive,
    observed: &Observed,
    passwords: &AccountPasswords,
    step: &'static str,
    source: u32,
) -> Result<SourceSpec, Error> {
    let address = observed.facts[source as usize % 2]
        .address
        .clone()
        .ok_or(Error::NoAddress { step, node: source })?;
    Ok(SourceSpec {
        endpoint: Endpoint {
            host: address,
            port: MYSQL_PORT,
        },
        user: REPLICATION_USER.into(),
        password: passwords.replication.clone(),
        tls: channel_tls(pair),
    })
}

/// A re-seed a plan started: the loop runs it (seed.rs).
#[derive(Debug)]
pub struct SeedStart {
    /// The recipient.
    pub node: u32,
    /// The donor.
    pub from: u32,
    /// Why.
    pub reason: crate::topology::SeedReason,
    /// Transactions only the recipient had, discarded.
    pub discards: Option<String>,
    /// The recipient's client.
    pub client: Arc<MySqlClient>,
    /// The donor, as the channel reaches it.
    pub source: SourceSpec,
    /// MariaDB: the copy is streamed into the recipient's bootstrap (its
    /// pod is restarted to receive it), not cloned over SQL.
    pub streamed: bool,
}

/// What the steps did that status records.
#[derive(Debug, Default)]
pub struct Acted {
    /// A re-seed to run beside the loop.
    pub seed: Option<SeedStart>,
    /// Transactions skipped under SkipAndRecord.
    pub skipped: Vec<SkippedTransaction>,
    /// Whether a promotion gave up transactions it could not apply in time.
    pub data_loss_accepted: bool,
    /// Whether the plan stopped early because the spec changed.
    pub superseded: bool,
    /// The writer epoch claimed.
    pub epoch: Option<u64>,
    /// `status.staleReplica` as written (`Some(None)`: removed).
    pub stale: Option<Option<StaleReplica>>,
    /// Role labels given, in order.
    pub labelled: Vec<(u32, Role)>,
    /// What the epoch claim wrote besides the epoch.
    pub claim: Option<Claim>,
}

/// A JSON patch of the pair's status that applies only while
/// `status.writerEpoch` is still `epoch` (compare-and-set: the API server
/// refuses it otherwise, and the step fails).
async fn status_at_epoch(
    ctx: &Context,
    pair: &MySQLActiveActive,
    step: &'static str,
    epoch: u64,
    ops: Vec<serde_json::Value>,
) -> Result<(), Error> {
    let names = Names::of(pair);
    let api = Api::<MySQLActiveActive>::namespaced(ctx.client.clone(), &names.namespace);
    match super::epoch::patch_status_at_epoch(&api, &names.pair, epoch, ops).await {
        Ok(r) => r.map_err(kube(
            step,
            format!(
                "MySQLActiveActive {}/{} (status at writer epoch {epoch}; a 422 means the epoch moved: the role changed elsewhere, and the next cycle decides again)",
                names.namespace, names.pair
            ),
        )),
        Err(e) => Err(Error::Encode(e)),
    }
}

/// The `staleReplica` entry for `node`.
fn stale_entry(names: &Names, node: u32, epoch: u64, reason: &str) -> StaleReplica {
    StaleReplica {
        node: names.pod(node),
        since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        epoch,
        reason: reason.into(),
    }
}

/// Waits until `node` applied `set`, within `limit`.
/// Step `AwaitFence`: asks the candidate's agent (its receiver from the old
/// writer is stopped now, so it confirms nothing more) how long ago it last
/// confirmed the old writer, and waits what is left of that confirmation's
/// validity; the whole validity when it cannot say. Returns the wait.
async fn await_fence(observed: &Observed, candidate: u32) -> Duration {
    use crate::agent::deadline::CONFIRMATION_VALIDITY;
    let since = match observed.facts[candidate as usize % 2].address.as_deref() {
        Some(a) => crate::agent::peer::since_last_confirmation(
            a,
            crate::agent::AGENT_PORT,
            Duration::from_millis(300),
        )
        .await
        .map_err(|e| tracing::debug!(error = %e, "the candidate's agent did not say")),
        None => Err(()),
    };
    let wait = match since {
        Ok(None) => Duration::ZERO,
        Ok(Some(ago)) => CONFIRMATION_VALIDITY.saturating_sub(ago),
        Err(()) => CONFIRMATION_VALIDITY,
    };
    tokio::time::sleep(wait).await;
    wait
}

/// Step `HandLease`: the writer Lease names `node` at `epoch`, renewed
/// now, with both nodes' addresses (a merge patch: the operator is the
/// Lease's authority; the agent renews by replace at a resourceVersion).
async fn hand_lease(
    ctx: &Context,
    names: &Names,
    observed: &Observed,
    node: u32,
    epoch: u64,
) -> Result<(), kube::Error> {
    use crate::lease::{ADDRESSES_ANNOTATION, EPOCH_ANNOTATION, encode_addresses};
    let addresses = (0..2u32)
        .filter_map(|o| {
            let a = observed.facts[o as usize].address.clone()?;
            Some((names.pod(o), a))
        })
        .collect();
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now());
    let patch = json!({
        "metadata": {"annotations": {
            EPOCH_ANNOTATION: epoch.to_string(),
            ADDRESSES_ANNOTATION: encode_addresses(&addresses),
        }},
        "spec": {"holderIdentity": names.pod(node), "acquireTime": now, "renewTime": now},
    });
    Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        ctx.client.clone(),
        &names.namespace,
    )
    .patch(
        &names.writer_lease(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(drop)
}

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
/// latest (checked before each step). What the steps that ran did is
/// returned beside the first failure, if any (an epoch claimed before a
/// later step failed stays claimed).
pub async fn act(
    pair: &MySQLActiveActive,
    ctx: &Context,
    observed: &Observed,
    plan: &Plan,
    passwords: &AccountPasswords,
    current: &(dyn Fn() -> bool + Sync),
) -> (Acted, Result<(), Error>) {
    let mut acted = Acted::default();
    let result = run_steps(pair, ctx, observed, plan, passwords, current, &mut acted).await;
    (acted, result)
}

async fn run_steps(
    pair: &MySQLActiveActive,
    ctx: &Context,
    observed: &Observed,
    plan: &Plan,
    passwords: &AccountPasswords,
    current: &(dyn Fn() -> bool + Sync),
    acted: &mut Acted,
) -> Result<(), Error> {
    let names = Names::of(pair);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &names.namespace);
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
                let spec = source_spec(pair, observed, passwords, step_name, *source)?;
                sql(*node)?
                    .ensure_replication(&spec)
                    .await
                    .map(drop)
                    .map_err(sql_err(*node))
            }
            Step::Reseed {
                node,
                from,
                reason,
                discards,
            } => {
                // The copy runs beside the loop (seed.rs): this hands it
                // over.
                let source = source_spec(pair, observed, passwords, step_name, *from)?;
                acted.seed = Some(SeedStart {
                    node: *node,
                    from: *from,
                    reason: *reason,
                    discards: discards.clone(),
                    client: sql(*node)?.clone(),
                    source,
                    streamed: pair.spec.engine == crate::api::Engine::MariaDB,
                });
                Ok(())
            }
            Step::Fence { node } => sql(*node)?.fence().await.map(drop).map_err(sql_err(*node)),
            Step::Promote { node, .. } => {
                // Catch up on what was received from the failed writer, as
                // it stands now (a receiver stopped by this plan has its
                // final set only now).
                let received = match sql(*node)?.observe().await {
                    Ok(o) => o.replica.map(|r| r.retrieved_gtid_set),
                    Err(_) => observed.facts[*node as usize % 2]
                        .server
                        .as_ref()
                        .ok()
                        .and_then(|o| o.replica.as_ref())
                        .map(|r| r.retrieved_gtid_set.clone()),
                }
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
            Step::ClaimEpoch {
                epoch,
                node,
                stale,
                replaces,
            } => {
                // The claim names the new writer, and the change until it is
                // done: an operator that stops before then is followed by
                // one that finishes it, never undoes it.
                let pending = replaces.map(|(from, kind)| PendingRoleChange {
                    from: names.pod(from),
                    to: names.pod(*node),
                    epoch: *epoch,
                    kind,
                    claimed_at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        jiff::Timestamp::now(),
                    ),
                    from_pod_uid: observed.pod_uids[from as usize % 2].clone(),
                });
                let mut ops = vec![
                    json!({"op": "replace", "path": "/status/writerEpoch", "value": epoch}),
                    json!({"op": "add", "path": "/status/writer", "value": names.pod(*node)}),
                ];
                let had_pending = pair
                    .status
                    .as_ref()
                    .is_some_and(|s| s.pending_role_change.is_some());
                match &pending {
                    Some(p) => ops.push(
                        json!({"op": "add", "path": "/status/pendingRoleChange", "value": p}),
                    ),
                    None if had_pending => {
                        ops.push(json!({"op": "remove", "path": "/status/pendingRoleChange"}))
                    }
                    None => {}
                }
                let entry = stale.map(|s| {
                    stale_entry(&names, s, *epoch, "it was the writer a failover replaced")
                });
                match &entry {
                    Some(e) => {
                        ops.push(json!({"op": "add", "path": "/status/staleReplica", "value": e}))
                    }
                    None if pair
                        .status
                        .as_ref()
                        .is_some_and(|s| s.stale_replica.is_some()) =>
                    {
                        ops.push(json!({"op": "remove", "path": "/status/staleReplica"}))
                    }
                    None => {}
                }
                let r = status_at_epoch(ctx, pair, step_name, epoch.saturating_sub(1), ops).await;
                if r.is_ok() {
                    tracing::info!(epoch, writer = %names.pod(*node), "writer epoch claimed");
                    acted.epoch = Some(*epoch);
                    acted.stale = Some(entry);
                    acted.claim = Some(Claim {
                        writer: names.pod(*node),
                        pending,
                    });
                }
                r
            }
            Step::StopReceiving { node } => {
                sql(*node)?.stop_receiver().await.map_err(sql_err(*node))
            }
            Step::HandLease { node, epoch } => hand_lease(ctx, &names, observed, *node, *epoch)
                .await
                .map_err(kube(
                    step_name,
                    format!("Lease {}/{}", names.namespace, names.writer_lease()),
                )),
            Step::AwaitFence { from } => {
                let waited = await_fence(observed, 1 - *from % 2).await;
                tracing::info!(
                    waited_ms = waited.as_millis() as u64,
                    "old writer's fence awaited"
                );
                Ok(())
            }
            Step::MarkStale { node, epoch } => {
                let entry = stale_entry(
                    &names,
                    *node,
                    *epoch,
                    "it stopped acknowledging the writer's commits",
                );
                let r = status_at_epoch(
                    ctx,
                    pair,
                    step_name,
                    *epoch,
                    vec![json!({"op": "add", "path": "/status/staleReplica", "value": entry})],
                )
                .await;
                if r.is_ok() {
                    acted.stale = Some(Some(entry));
                }
                r
            }
            Step::EndStaleSessions { node, sessions } => sql(*node)?
                .end_sessions(sessions)
                .await
                .map(|_| ())
                .map_err(sql_err(*node)),
            Step::SemiSyncOn { node } => sql(*node)?
                .set_semi_sync(true)
                .await
                .map_err(sql_err(*node)),
            Step::SemiSyncOff { node } => sql(*node)?
                .set_semi_sync(false)
                .await
                .map_err(sql_err(*node)),
            Step::ClearStale { epoch, .. } => {
                let r = status_at_epoch(
                    ctx,
                    pair,
                    step_name,
                    *epoch,
                    vec![json!({"op": "remove", "path": "/status/staleReplica"})],
                )
                .await;
                if r.is_ok() {
                    acted.stale = Some(None);
                }
                r
            }
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
                if let Step::Label { node, role } = step {
                    acted.labelled.push((*node, *role));
                }
                let mut detail = describe(step, &names);
                let since = pair
                    .status
                    .as_ref()
                    .and_then(|s| s.stale_replica.as_ref())
                    .map(|s| s.since.0);
                if let (Step::ClearStale { .. }, Some(since)) = (step, since) {
                    let secs = jiff::Timestamp::now()
                        .duration_since(since)
                        .as_secs()
                        .max(0);
                    detail.push_str(&format!(
                        "; the writer's commits ran without its acknowledgement for {secs} s (since {since})"
                    ));
                }
                // The writer of a stale replica going on alone is news.
                let warning =
                    matches!(step, Step::SemiSyncOff { node } if plan.writer == Some(*node));
                tracing::info!(step = step_name, detail = %detail, "step done");
                ctx.publish_typed(
                    pair,
                    Reason::Step(name),
                    Reason::Step(name).type_for(warning),
                    detail,
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(step = step_name, error = %e, "step failed");
                ctx.publish(pair, Reason::StepFailed, e.to_string()).await;
                return Err(e);
            }
        }
    }
    Ok(())
}
