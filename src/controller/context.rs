//! What the reconciles and the pair loops of one watched scope share: the
//! client, the reflector stores (every read of a pair, its owned objects
//! and its pods is answered from them), the Event recorder, the metrics and
//! the registry of pair loops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::runtime::events::{Event, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};

use super::events::Reason;
use super::metrics::Metrics;
use super::pairloop::Loops;
use super::reconcile::apply::AppliedMemo;
use super::settings::Settings;
use crate::api::MySQLActiveActive;

/// The reflector stores of one scope.
#[derive(Clone)]
pub struct Stores {
    /// The pairs.
    pub pairs: Store<MySQLActiveActive>,
    /// Owned StatefulSets.
    pub statefulsets: Store<StatefulSet>,
    /// Owned ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// Owned Services.
    pub services: Store<Service>,
    /// Owned PodDisruptionBudgets.
    pub pdbs: Store<PodDisruptionBudget>,
    /// Owned NetworkPolicies.
    pub network_policies: Store<NetworkPolicy>,
    /// The writer Services' EndpointSlices (SingleWriter), written by the
    /// pair loops.
    pub endpoint_slices: Store<EndpointSlice>,
    /// The pairs' pods.
    pub pods: Store<Pod>,
    /// The pairs' writer Leases (not owned streams: a renewal wakes no
    /// reconcile).
    pub leases: Store<Lease>,
    /// The agents' ServiceAccounts.
    pub service_accounts: Store<ServiceAccount>,
    /// The agents' Roles.
    pub roles: Store<Role>,
    /// The agents' RoleBindings.
    pub role_bindings: Store<RoleBinding>,
}

/// The key of a pair: `namespace/name`.
pub fn key(pair: &MySQLActiveActive) -> String {
    format!(
        "{}/{}",
        pair.meta().namespace.as_deref().unwrap_or_default(),
        pair.meta().name.as_deref().unwrap_or_default()
    )
}

/// State shared by the reconciles and pair loops of one scope.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Events to publish, in order, by [`Publisher`]'s task: publishing
    /// never holds up a plan's next step.
    pub events: Publisher,
    /// Reflector stores.
    pub stores: Stores,
    /// Whether every store has its first list (until then a missing object
    /// may only be not yet seen).
    pub synced: AtomicBool,
    /// The pair loops.
    pub loops: Loops,
    /// What apply last wrote, to tell drift from the server's own changes.
    pub applied: AppliedMemo,
    /// Consecutive failed reconciles per pair (back-off).
    pub failures: Mutex<HashMap<String, u32>>,
    /// When each writer Lease was last seen to change.
    pub lease_clock: Arc<super::leases::LeaseClock>,
}

/// Publishes Events in the order they were asked for, from a task of its
/// own, so that a plan's steps never wait for the API server's answer.
#[derive(Clone)]
pub struct Publisher {
    tx: tokio::sync::mpsc::UnboundedSender<(k8s_openapi::api::core::v1::ObjectReference, Event)>,
}

impl Publisher {
    /// Starts the publishing task of `recorder`.
    pub fn start(recorder: Recorder) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(
            k8s_openapi::api::core::v1::ObjectReference,
            Event,
        )>();
        tokio::spawn(async move {
            while let Some((object, event)) = rx.recv().await {
                if let Err(e) = recorder.publish(&event, &object).await {
                    tracing::warn!(reason = %event.reason, error = %e, "could not publish an Event");
                }
            }
        });
        Self { tx }
    }
}

impl Context {
    /// Publishes an Event about `pair` (queued; a failure to publish is
    /// logged, never fatal).
    pub async fn publish(&self, pair: &MySQLActiveActive, reason: Reason, note: String) {
        self.publish_typed(pair, reason, reason.type_(), note).await;
    }

    /// As [`Context::publish`], with the type given (see
    /// [`Reason::type_for`]).
    pub async fn publish_typed(
        &self,
        pair: &MySQLActiveActive,
        reason: Reason,
        type_: kube::runtime::events::EventType,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.as_str().into(),
            note: Some(note),
            action: reason.action().into(),
            secondary: None,
        };
        if self.events.tx.send((pair.object_ref(&()), event)).is_err() {
            tracing::warn!(reason = %reason, "could not publish an Event: the publisher stopped");
        }
    }

    /// The pair as the store has it now.
    pub fn pair(&self, namespace: &str, name: &str) -> Option<Arc<MySQLActiveActive>> {
        self.stores
            .pairs
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// Whether the stores are synced.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// Forgets what is kept about a deleted pair (`namespace/name`): its
    /// back-off count, what apply remembered, its metric series.
    pub fn forget(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
        self.applied.forget_pair(key);
        if let Some((ns, name)) = key.split_once('/') {
            self.metrics.forget_pair(ns, name);
        }
    }
}
