//! Names, labels and ownership shared by every rendered object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::MySQLActiveActive;

/// Label naming the application (same value on every pair).
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Label naming the pair (the custom resource's name).
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// Label naming the tool that manages the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the object's role in the application.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Pod label set by the operator: `writer` or `replica`. The writer and
/// reader Services select on it; the StatefulSet's pod template never
/// carries it, so a recreated pod serves nothing until the operator decides.
pub const LABEL_ROLE: &str = "mysql-aa.io/role";
/// Value of [`LABEL_ROLE`] on a writable node.
pub const ROLE_WRITER: &str = "writer";
/// Value of [`LABEL_ROLE`] on a read-only node.
pub const ROLE_REPLICA: &str = "replica";
/// Role label value of a node that awaits or receives a copy of the
/// writer's data: in neither Service.
pub const ROLE_SEEDING: &str = "seeding";
/// Role label value of a replica further behind than
/// `spec.replication.maxReadLagSeconds`: out of the reader Service.
pub const ROLE_LAGGING: &str = "lagging";
/// Value of [`LABEL_NAME`].
pub const APP_NAME: &str = "mysql-active-active";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGER: &str = "mysql-aa-operator";
/// Annotation on Secrets the operator generates.
pub const ANNOTATION_GENERATED: &str = "mysql-aa.io/generated";

/// Names of the objects of one pair, derived from the resource's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The resource's name; also the StatefulSet's and the PDB's.
    pub pair: String,
    /// Namespace of the pair and of everything it owns.
    pub namespace: String,
}

impl Names {
    /// Names of `pair`'s objects.
    pub fn of(pair: &MySQLActiveActive) -> Self {
        Self {
            pair: pair.name_any(),
            namespace: pair.namespace().unwrap_or_else(|| "default".into()),
        }
    }
    /// StatefulSet (and PodDisruptionBudget) name.
    pub fn statefulset(&self) -> String {
        self.pair.clone()
    }
    /// ConfigMap with the per-ordinal my.cnf and the scripts.
    pub fn config_map(&self) -> String {
        format!("{}-config", self.pair)
    }
    /// Headless Service giving each pod a stable DNS name.
    pub fn headless_service(&self) -> String {
        format!("{}-headless", self.pair)
    }
    /// Service selecting the writer(s).
    pub fn writer_service(&self) -> String {
        format!("{}-writer", self.pair)
    }
    /// Service selecting the read-only node(s).
    pub fn reader_service(&self) -> String {
        format!("{}-reader", self.pair)
    }
    /// Generated admin Secret.
    pub fn admin_secret(&self) -> String {
        format!("{}-admin", self.pair)
    }
    /// Generated replication Secret.
    pub fn replication_secret(&self) -> String {
        format!("{}-replication", self.pair)
    }
    /// The writer Lease (SingleWriter): held by the writer's agent.
    pub fn writer_lease(&self) -> String {
        format!("{}-writer", self.pair)
    }
    /// ServiceAccount (and Role, RoleBinding) of the pods' agents.
    pub fn agent_account(&self) -> String {
        format!("{}-agent", self.pair)
    }
    /// Pod name of `ordinal`.
    pub fn pod(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.pair)
    }
    /// The PersistentVolumeClaim of `ordinal`'s data (the StatefulSet's
    /// claim template name, then the pod name).
    pub fn data_claim(&self, ordinal: u32) -> String {
        format!("{}-{}", super::statefulset::DATA_VOLUME, self.pod(ordinal))
    }
    /// Stable DNS name of `ordinal`'s pod under the headless Service.
    pub fn pod_fqdn(&self, ordinal: u32) -> String {
        format!(
            "{}.{}.{}.svc",
            self.pod(ordinal),
            self.headless_service(),
            self.namespace
        )
    }
}

/// Labels that select the pair's pods (the StatefulSet selector; immutable).
pub fn selector_labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), APP_NAME.to_string()),
        (LABEL_INSTANCE.to_string(), names.pair.clone()),
    ])
}

/// Labels every rendered object carries.
pub fn common_labels(names: &Names) -> BTreeMap<String, String> {
    let mut labels = selector_labels(names);
    labels.insert(LABEL_MANAGED_BY.into(), MANAGER.into());
    labels.insert(LABEL_COMPONENT.into(), "database".into());
    labels
}

/// Metadata of an object named `name` owned by `pair`.
pub fn object_meta(pair: &MySQLActiveActive, names: &Names, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(names.namespace.clone()),
        labels: Some(common_labels(names)),
        owner_references: owner_reference(pair).map(|r| vec![r]),
        ..ObjectMeta::default()
    }
}

/// Controller owner reference to `pair`; `None` before the API server
/// assigned it a uid (as in a `render` preview).
pub fn owner_reference(pair: &MySQLActiveActive) -> Option<OwnerReference> {
    pair.controller_owner_ref(&())
}

/// Pod template annotation with a digest of the ConfigMap's data: a change
/// of my.cnf or the scripts changes the template, so the StatefulSet rolls
/// the pods (one at a time) onto the new configuration.
pub const CONFIG_DIGEST: &str = "mysql-aa.io/config-digest";

/// A short, stable digest of `text` (64-bit FNV-1a, hex). Not for secrets.
pub fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}
