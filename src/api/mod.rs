//! The `MySQLActiveActive` API (`mysql-aa.io/v1alpha1`).
//!
//! Every field carries a doc comment: it becomes the CRD's `description` and
//! so the text `kubectl explain myaa.spec...` prints. Admission-time checks
//! live next to the fields as schema constraints and CEL rules (see
//! [`rules`]); the CRD YAML in `crds/` is generated from these types by
//! `mysql-aa-operator crd` and checked for drift by a test.

pub mod rules;
mod status;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use status::*;

/// API group of every resource this operator serves.
pub const GROUP: &str = "mysql-aa.io";
/// Number of MySQL servers in a pair. `auto_increment_increment` equals it.
pub const PAIR_SIZE: u32 = 2;

/// Desired state of a master-master (active-active) MySQL or MariaDB pair.
///
/// The operator renders a StatefulSet of two servers, wires GTID
/// auto-position replication in both directions and routes writes to one
/// node (`SingleWriter`, the default) or to both (`MultiWriter`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mysql-aa.io",
    version = "v1alpha1",
    kind = "MySQLActiveActive",
    plural = "mysqlactiveactives",
    singular = "mysqlactiveactive",
    shortname = "myaa",
    category = "mysql",
    namespaced,
    status = "MySQLActiveActiveStatus",
    derive = "PartialEq",
    cel,
    doc = "A master-master (active-active) MySQL or MariaDB pair managed by mysql-aa-operator.",
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#, description = "Whether the pair serves writes and replicates in both directions"),
    printcolumn(name = "Writer", type_ = "string", json_path = ".status.writer", description = "Pod that currently takes writes (SingleWriter)"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.writeMode", description = "SingleWriter or MultiWriter"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.lagSeconds", description = "Largest replication lag of the two directions, in seconds"),
    printcolumn(name = "Durability", type_ = "string", json_path = ".status.durability", description = "Effective durability of the writer's commits: SemiSynchronous, WaitingForReplica, AsynchronousFallback or Asynchronous"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version", priority = "1", description = "Server flavour and version detected on the running servers"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = rules::name_rule(),
    validation = rules::durability_rule(),
    validation = rules::read_lag_rule(),
)]
#[serde(rename_all = "camelCase")]
pub struct MySQLActiveActiveSpec {
    /// Server engine: `MySQL` (8.0.23+, 8.4 LTS, 9.x) or `MariaDB` (10.6+,
    /// 11.x). It decides the rendered my.cnf and the replication dialect, so
    /// it must be known before a server runs; the operator also detects the
    /// flavour of the running server and reports a mismatch. Immutable.
    #[serde(default)]
    #[x_kube(validation = rules::immutable("engine"))]
    pub engine: Engine,

    /// Container image of the server. Defaults to `mysql:8.4` (MySQL LTS) for
    /// `engine: MySQL` and `mariadb:11.4` (MariaDB LTS) for `engine: MariaDB`.
    /// Supported: MySQL 8.0.23 and later, 8.4, 9.x; MariaDB 10.6 and later,
    /// 11.x. The image must provide `mysqld`/`mariadbd` and the client tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::image_rule())]
    pub image: Option<String>,

    /// Pull policy of the server image: `Always`, `IfNotPresent` or `Never`.
    /// Left to the Kubernetes default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// How writes are routed. `SingleWriter` (default): one node takes
    /// writes, the other is `super_read_only` and serves reads; on failure
    /// writes move to it. `MultiWriter`: both nodes take writes (true
    /// active-active); conflicting writes are detected and reported.
    #[serde(default)]
    pub write_mode: WriteMode,

    /// Persistent storage of each server's data directory. Immutable.
    #[serde(default)]
    #[x_kube(validation = rules::immutable("storage"))]
    pub storage: StorageSpec,

    /// CPU and memory requests and limits of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Extra `[mysqld]` settings, as option name to value (for example
    /// `max_connections: "500"`). Settings the operator owns (server-id,
    /// auto-increment, GTID, binary and relay log, read-only, replica start,
    /// semi-sync, paths and networking) are rejected, in either dash or underscore
    /// spelling and with or without the `loose-` prefix. At most 200
    /// settings, each value at most 1024 characters on one line.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = rules::config_keys_rule())]
    #[x_kube(validation = rules::config_key_syntax_rule())]
    #[x_kube(validation = rules::config_values_rule())]
    #[schemars(extend("maxProperties" = 200, "additionalProperties" = {"type": "string", "maxLength": 1024}))]
    pub mysqld_config: BTreeMap<String, String>,

    /// First `server_id` of the pair: pod ordinal N gets `serverIdBase + N`.
    /// Pick distinct bases for pairs that replicate with each other or with
    /// other servers. 1 to 4294967294. Immutable.
    #[serde(default = "default_server_id_base")]
    #[schemars(range(min = 1, max = 4294967294u32))]
    #[x_kube(validation = rules::immutable("serverIdBase"))]
    pub server_id_base: u32,

    /// Secrets holding the passwords of the accounts the operator uses.
    /// Secrets that are not named are generated (and never regenerated).
    #[serde(default)]
    pub credentials: CredentialsSpec,

    /// How the two servers replicate from each other.
    #[serde(default)]
    #[x_kube(validation = rules::tls_secret_rule())]
    pub replication: ReplicationSpec,

    /// When and how the writer role moves to the other node (SingleWriter).
    #[serde(default)]
    pub failover: FailoverSpec,

    /// A request to move the writer role to `target` (SingleWriter). The
    /// operator fences the writer, waits until the target has applied every
    /// transaction, promotes it and moves the writer label. Each request is
    /// carried out once: its outcome is recorded in `status.lastSwitchover`
    /// under the same `requestId`; set a new `requestId` to ask again.
    /// `mysql-aa-operator switchover` writes this field for you.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<SwitchoverRequest>,

    /// A request to re-seed `node`: its data is replaced by a copy of the
    /// writer's (MySQL: the clone plugin), as the operator does by itself
    /// for a node that cannot catch up. Transactions only that node has
    /// (errant) are discarded, and recorded in `status.seed` and the
    /// `SeedStarted` Event first. Carried out once per `requestId`
    /// (`status.answeredReseedRequest`); refused, with the reason in
    /// `status.seed`, when the pair has no settled writer or `node` is the
    /// writer. `mysql-aa-operator reseed NAME --node POD` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseed: Option<ReseedRequest>,

    /// Checks that both nodes hold the same data, table by table
    /// (`CHECKSUM TABLE` at a point where both have executed the same GTID
    /// set). Reports diverged tables in `status.divergence`.
    #[serde(default)]
    pub divergence_check: DivergenceCheckSpec,

    /// Where and how the two server pods are scheduled.
    #[serde(default)]
    pub placement: PlacementSpec,

    /// A NetworkPolicy `<name>` for the two server pods: when set, nothing
    /// reaches them but the pair's own pods (MySQL's port and the agents'),
    /// the operator (the same two ports) and the `clients` it names (MySQL's
    /// port only). Unset (default): no NetworkPolicy. It is enforced only
    /// where the cluster's network plugin enforces NetworkPolicies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,

    /// What happens to the data volumes when this resource is deleted:
    /// `Retain` (default) keeps the PersistentVolumeClaims, `Delete`
    /// removes them with the StatefulSet.
    #[serde(default)]
    pub pvc_retention_policy: PvcRetentionPolicy,

    /// Stop reconciling: the operator changes nothing in Kubernetes or MySQL
    /// while `true`, but keeps reporting status.
    #[serde(default)]
    pub paused: bool,
}

/// Default of `spec.serverIdBase`.
pub fn default_server_id_base() -> u32 {
    1000
}

/// Server engine; decides my.cnf spellings and the replication dialect.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Engine {
    /// Oracle MySQL 8.0.23 or later (8.4 LTS and 9.x included).
    #[default]
    MySQL,
    /// MariaDB 10.6 or later (11.x included).
    MariaDB,
}

impl Engine {
    /// The image used when `spec.image` is not set: each engine's LTS line.
    pub fn default_image(self) -> &'static str {
        match self {
            Engine::MySQL => "mysql:8.4",
            Engine::MariaDB => "mariadb:11.4",
        }
    }
}

/// Image pull policy, as in a Pod's container.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ImagePullPolicy {
    /// Always pull the image.
    Always,
    /// Pull only when the image is not on the node.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    /// The value in a container's `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// How writes are routed between the two servers.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum WriteMode {
    /// One writable node at a time; the other is super_read_only.
    #[default]
    SingleWriter,
    /// Both nodes writable (true active-active).
    MultiWriter,
}

/// How commits are made durable (`spec.replication.durability`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum DurabilityMode {
    /// The writer waits for its replica's acknowledgement of each commit.
    SemiSync,
    /// Commits never wait for the replica.
    Async,
}

impl DurabilityMode {
    /// The name used in the spec, status and Events.
    pub fn as_str(self) -> &'static str {
        match self {
            DurabilityMode::SemiSync => "SemiSync",
            DurabilityMode::Async => "Async",
        }
    }
}

/// Persistent storage of a server's data directory.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each server's PersistentVolumeClaim, as a Kubernetes quantity
    /// (for example `10Gi`). Default `10Gi`.
    #[serde(default = "default_storage_size")]
    #[x_kube(validation = rules::quantity_rule())]
    pub size: String,

    /// StorageClass of the claims; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

fn default_storage_size() -> String {
    "10Gi".into()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

/// Names of Secrets with the operator's account passwords (key `password`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    /// Secret (in this namespace) whose key `password` is the password of the
    /// operator's administrative account `mysqlaa_admin` (also used for the
    /// local `root` account). Generated as `<name>-admin` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub admin_secret_name: Option<String>,

    /// Secret (in this namespace) whose key `password` is the password of the
    /// replication account `mysqlaa_repl` (granted only REPLICATION SLAVE).
    /// Generated as `<name>-replication` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub replication_secret_name: Option<String>,
}

/// Replication options.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSpec {
    /// TLS of the replication connections between the two servers.
    #[serde(default)]
    pub tls: ReplicationTls,

    /// How a commit on the writer is made durable (SingleWriter).
    /// `SemiSync` (the SingleWriter default): the writer commits only once
    /// its replica has the transaction in its relay log (semi-synchronous
    /// replication, wait point AFTER_SYNC, never falling back to
    /// asynchronous by itself), so a failover loses no acknowledged write
    /// and an isolated old writer cannot commit once its replica stops
    /// receiving from it. When the replica stops acknowledging for the
    /// detection window, the operator records in status that it is no
    /// longer promotable, then lets the writer commit without
    /// acknowledgements until the replica has caught up (status and Events
    /// say so and for how long). `Async`: commits never wait; a failover
    /// may lose what the replica had not received (status says so). Only
    /// `Async` is allowed (and the default) in `MultiWriter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<DurabilityMode>,

    /// What the operator does when a replica's applier stops on an error
    /// (duplicate key 1062, missing row 1032, ...). `Halt` (default): leave
    /// it stopped and report. `SkipAndRecord`: skip exactly the failing
    /// transaction, resume, and record its GTID and error in status, an Event
    /// and a metric. Errors are never skipped silently.
    #[serde(default)]
    pub applier_error_policy: ApplierErrorPolicy,

    /// Seconds a replica may be behind its source (`Seconds_Behind_Source`)
    /// before the pair reports it: a `Lagging` condition and a
    /// `ReplicaLagging` Event, until it is back within the threshold. 1 to
    /// 86400, default 30 (investigate lag above 30 seconds).
    #[serde(default = "default_lag_threshold")]
    #[schemars(range(min = 1, max = 86400))]
    pub lag_threshold_seconds: u32,

    /// Most seconds a replica may be behind its source and still serve
    /// reads (SingleWriter): a replica further behind, or whose applier is
    /// stopped, is labelled `mysql-aa.io/role=lagging` and so leaves the
    /// reader Service until it is back within this bound (reads then find
    /// no endpoint rather than stale data). Unset (the default): a replica
    /// serves reads however far behind it is. 1 to 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub max_read_lag_seconds: Option<u32>,
}

fn default_lag_threshold() -> u32 {
    30
}

impl Default for ReplicationSpec {
    fn default() -> Self {
        Self {
            tls: ReplicationTls::default(),
            durability: None,
            applier_error_policy: ApplierErrorPolicy::default(),
            lag_threshold_seconds: default_lag_threshold(),
            max_read_lag_seconds: None,
        }
    }
}

/// A request to move the writer role (`spec.switchover`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchoverRequest {
    /// Pod that should take writes, e.g. `mypair-1`.
    #[schemars(length(min = 1, max = 63))]
    pub target: String,

    /// Names this request. The operator acts on a request whose `requestId`
    /// differs from `status.answeredSwitchoverRequest` (the last request it
    /// answered, whatever the outcome), once; reusing an id does nothing, so
    /// re-applying the same manifest is safe.
    #[schemars(length(min = 1, max = 63))]
    pub request_id: String,
}

/// A request to re-seed a node from the writer (`spec.reseed`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReseedRequest {
    /// Pod to re-seed, e.g. `mypair-1`: never the writer.
    #[schemars(length(min = 1, max = 63))]
    pub node: String,

    /// Names this request. The operator acts on a request whose `requestId`
    /// differs from `status.answeredReseedRequest`, once; reusing an id
    /// does nothing, so re-applying the same manifest is safe.
    #[schemars(length(min = 1, max = 63))]
    pub request_id: String,
}

/// Divergence check settings (`spec.divergenceCheck`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DivergenceCheckSpec {
    /// Run the check every this many minutes; `0` (default) runs it only on
    /// request. Each check reads every table of every user schema on both
    /// nodes (`CHECKSUM TABLE`): its cost grows with the data size.
    #[serde(default)]
    #[schemars(range(max = 10080))]
    pub interval_minutes: u32,

    /// Ask for one check now: the operator runs it when this differs from
    /// `status.divergence.requestId`, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub request_id: Option<String>,
}

/// TLS settings of the replication channels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationTls {
    /// `Disabled` (default): plain connections (the replication password is
    /// still exchanged with RSA key exchange). `Required`: encrypted, the
    /// server certificate is not verified. `VerifyCA`: encrypted and the
    /// certificate must be signed by the CA in `secretName`.
    /// `VerifyIdentity`: as `VerifyCA`, and the host name must match.
    #[serde(default)]
    pub mode: TlsMode,

    /// Secret of type `kubernetes.io/tls` with `ca.crt`, `tls.crt` and
    /// `tls.key`, mounted into both servers and used as their server and
    /// client certificate. Required for `VerifyCA` and `VerifyIdentity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
}

/// TLS mode of a replication channel.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum TlsMode {
    /// No TLS.
    #[default]
    Disabled,
    /// TLS without certificate verification.
    Required,
    /// TLS, certificate verified against the CA.
    VerifyCA,
    /// TLS, certificate and host name verified.
    VerifyIdentity,
}

/// What to do when a replica's applier (SQL thread) stops on an error.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ApplierErrorPolicy {
    /// Leave the applier stopped; report errno, message and GTID.
    #[default]
    Halt,
    /// Skip exactly the failing transaction and record it.
    SkipAndRecord,
}

/// Failover options (SingleWriter).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverSpec {
    /// Move the writer role automatically when the writer fails. When
    /// `false`, a failed writer is reported and writes stop until it
    /// returns or a switchover is requested.
    #[serde(default = "default_true")]
    pub automatic: bool,

    /// How long, in seconds, the writer's server must stay unreachable (it
    /// does not answer the operator's connection) before it is declared
    /// failed; a pod that is only not ready does not count. A slow writer
    /// within this window never causes a failover. 3 to 3600, default 5
    /// (under `SemiSync` the fence makes a needless failover harmless: no
    /// write is lost and the old writer takes none; the fault matrix,
    /// `cargo bench --bench faults`, shows both).
    #[serde(default = "default_detection_window")]
    #[schemars(range(min = 3, max = 3600))]
    pub detection_window_seconds: u32,

    /// How long, in seconds, a candidate may take to apply the transactions
    /// it has already received before it is promoted. 1 to 3600, default 60.
    #[serde(default = "default_apply_timeout")]
    #[schemars(range(min = 1, max = 3600))]
    pub apply_timeout_seconds: u32,

    /// Promote the candidate even when it could not apply everything it had
    /// received within `applyTimeoutSeconds`. Transactions can be lost; status
    /// says so when it happens. Default `false`: wait instead.
    #[serde(default)]
    pub accept_data_loss: bool,
}

fn default_true() -> bool {
    true
}
fn default_detection_window() -> u32 {
    5
}
fn default_apply_timeout() -> u32 {
    60
}

impl Default for FailoverSpec {
    fn default() -> Self {
        Self {
            automatic: true,
            detection_window_seconds: default_detection_window(),
            apply_timeout_seconds: default_apply_timeout(),
            accept_data_loss: false,
        }
    }
}

/// Who may reach the servers (`spec.networkPolicy`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// The clients allowed to connect to MySQL's port 3306, as
    /// NetworkPolicy peers (pod and namespace selectors, IP blocks; at most
    /// 32). Empty: no client, only the pair's own pods and the operator.
    #[serde(default)]
    #[x_kube(validation = rules::peers_rule("networkPolicy.clients"))]
    #[schemars(extend("maxItems" = 32))]
    pub clients: Vec<NetworkPolicyPeer>,

    /// Where the operator runs, as NetworkPolicy peers (at most 8). Unset:
    /// the pods labelled `app.kubernetes.io/name: mysql-aa-operator` in the
    /// operator's namespace (as the Helm chart runs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::peers_rule("networkPolicy.operator"))]
    #[schemars(extend("maxItems" = 8))]
    pub operator: Option<Vec<NetworkPolicyPeer>>,
}

/// Scheduling and metadata of the two server pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    /// Affinity of the server pods. When unset, a preferred pod
    /// anti-affinity spreads the two servers over different nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Tolerations of the server pods (at most 32), checked at admission as
    /// the API server checks a pod's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = rules::toleration_operator_rule())]
    #[x_kube(validation = rules::toleration_effect_rule())]
    #[x_kube(validation = rules::toleration_fields_rule())]
    #[schemars(extend("maxItems" = 32))]
    pub tolerations: Vec<Toleration>,

    /// Node labels the server pods must run on (at most 64; keys and values
    /// are label keys and values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = rules::label_keys_rule("placement.nodeSelector"))]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}))]
    pub node_selector: BTreeMap<String, String>,

    /// PriorityClass of the server pods (a DNS subdomain name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = rules::DNS_SUBDOMAIN_PATTERN))]
    pub priority_class_name: Option<String>,

    /// Extra labels of the server pods. Keys under `app.kubernetes.io/` and
    /// `mysql-aa.io/` belong to the operator and are rejected; values are
    /// label values (at most 63 characters).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = rules::reserved_label_rule())]
    #[x_kube(validation = rules::label_keys_rule("placement.podLabels"))]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}))]
    pub pod_labels: BTreeMap<String, String>,

    /// Extra annotations of the server pods (at most 64; keys are
    /// qualified names, like label keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = rules::label_keys_rule("placement.podAnnotations"))]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 65536}))]
    pub pod_annotations: BTreeMap<String, String>,
}

/// What happens to the PersistentVolumeClaims when the resource is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PvcRetentionPolicy {
    /// Keep the claims (and the data).
    #[default]
    Retain,
    /// Delete the claims with the StatefulSet.
    Delete,
}

impl MySQLActiveActiveSpec {
    /// The image the pods run: `spec.image`, or the engine's default.
    pub fn effective_image(&self) -> &str {
        self.image
            .as_deref()
            .unwrap_or_else(|| self.engine.default_image())
    }

    /// The durability in force: `spec.replication.durability`, or
    /// `SemiSync` in SingleWriter and `Async` in MultiWriter.
    pub fn durability(&self) -> DurabilityMode {
        match (self.replication.durability, self.write_mode) {
            (Some(d), _) => d,
            (None, WriteMode::SingleWriter) => DurabilityMode::SemiSync,
            (None, WriteMode::MultiWriter) => DurabilityMode::Async,
        }
    }
}

/// The CRD of [`MySQLActiveActive`], as the API server is given it: the
/// derived definition with integer formats the API server knows (schemars
/// writes `uint32`/`uint64`, which `kubectl apply` warns about as
/// unrecognized; their `minimum: 0` stays).
pub fn crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    fn fix(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(f) = m.get_mut("format")
                    && matches!(f.as_str(), Some("uint32" | "uint64" | "uint"))
                {
                    *f = serde_json::Value::from("int64");
                }
                m.values_mut().for_each(fix);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(fix),
            _ => {}
        }
    }
    /// Bounds every array (16 items), map (16 keys) and string (317
    /// characters: a qualified label key) under `v` that has no bound.
    fn bound(v: &mut serde_json::Value) {
        use serde_json::Value;
        let Value::Object(m) = v else { return };
        let bounds = match m.get("type").and_then(Value::as_str) {
            Some("array") => Some(("maxItems", 16)),
            Some("object") if m.contains_key("additionalProperties") => Some(("maxProperties", 16)),
            Some("string") => Some(("maxLength", 317)),
            _ => None,
        };
        if let Some((key, n)) = bounds {
            m.entry(key).or_insert(n.into());
        }
        for child in ["items", "additionalProperties"] {
            if let Some(c) = m.get_mut(child) {
                bound(c);
            }
        }
        if let Some(Value::Object(props)) = m.get_mut("properties") {
            props.values_mut().for_each(bound);
        }
    }
    let crd = MySQLActiveActive::crd();
    let mut value = serde_json::to_value(&crd).unwrap_or_default();
    fix(&mut value);
    // spec.networkPolicy embeds NetworkPolicyPeers (core type) whose lists,
    // maps and strings are unbounded: bounded for the cost of its CEL rules,
    // well above what a real peer holds.
    if let Some(np) = value.pointer_mut(
        "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/networkPolicy",
    ) {
        bound(np);
    }
    // spec.resources embeds a core type whose schema has unbounded maps:
    // bounded here, with the API server's checks as CEL rules.
    let resources = value.pointer_mut(
        "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/resources",
    );
    if let Some(serde_json::Value::Object(r)) = resources {
        for m in ["limits", "requests"] {
            if let Some(serde_json::Value::Object(map)) =
                r.get_mut("properties").and_then(|p| p.get_mut(m))
            {
                map.insert("maxProperties".into(), 16.into());
                if let Some(serde_json::Value::Object(v)) = map.get_mut("additionalProperties") {
                    v.insert("maxLength".into(), 64.into());
                }
            }
        }
        r.insert(
            "x-kubernetes-validations".into(),
            serde_json::to_value(rules::resources_rules()).unwrap_or_default(),
        );
    }
    serde_json::from_value(value).unwrap_or(crd)
}
