//! The self-fencing agent of a SingleWriter pair ([`crate::agent`]): its
//! container in each server pod, and its ServiceAccount, Role and
//! RoleBinding (the one Lease of its pair, `get` and `update`, nothing
//! else), and the writer Lease itself.
//!
//! The agent's token is mounted in the agent's container only (a projected
//! volume); the server's container gets none. The pod shares one process
//! namespace so the agent can fence the server by SIGKILL, as the same user.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, Container, ContainerPort, DownwardAPIProjection, DownwardAPIVolumeFile,
    EnvVar, EnvVarSource, KeyToPath, ObjectFieldSelector, ProjectedVolumeSource,
    ResourceRequirements, ServiceAccount, ServiceAccountTokenProjection, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::agent::AGENT_PORT;
use crate::api::MySQLActiveActive;

use super::meta::{Names, object_meta};

/// Name of the agent's container.
pub const AGENT_CONTAINER: &str = "agent";
/// Name of the init container that copies the operator's binary into the
/// pod (MariaDB: the agent and `seed-receive` run in the server's image).
pub const INSTALL_CONTAINER: &str = "install-agent";
/// Name of the volume (an emptyDir) with the copied binary.
pub const BIN_VOLUME: &str = "agent-bin";
/// Name of the volume with the agent's token.
pub const TOKEN_VOLUME: &str = "agent-token";
/// Where the agent's token, CA and namespace are mounted (where in-cluster
/// clients look).
pub const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What the renderer takes from the operator's settings, beside the pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// The agent's image (the operator's own); no agent when `None`.
    pub image: Option<String>,
    /// The operator's namespace: a pair's NetworkPolicy lets the operator's
    /// pods in from there (from any namespace when `None`).
    pub operator_namespace: Option<String>,
}

/// The writer Lease of `pair` (SingleWriter): its duration is the failover
/// detection window. Holder and times are written by the operator's
/// `HandLease` step and the agent, never applied.
pub fn build_writer_lease(pair: &MySQLActiveActive, names: &Names) -> Lease {
    Lease {
        metadata: object_meta(pair, names, names.writer_lease()),
        spec: Some(LeaseSpec {
            lease_duration_seconds: Some(
                i32::try_from(pair.spec.failover.detection_window_seconds).unwrap_or(i32::MAX),
            ),
            ..LeaseSpec::default()
        }),
    }
}

/// The agents' ServiceAccount.
pub fn build_service_account(pair: &MySQLActiveActive, names: &Names) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(pair, names, names.agent_account()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The agents' Role: read and renew (or give back) the pair's writer Lease.
pub fn build_role(pair: &MySQLActiveActive, names: &Names) -> Role {
    Role {
        metadata: object_meta(pair, names, names.agent_account()),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["coordination.k8s.io".into()]),
            resources: Some(vec!["leases".into()]),
            resource_names: Some(vec![names.writer_lease()]),
            verbs: vec!["get".into(), "update".into()],
            ..PolicyRule::default()
        }]),
    }
}

/// Binds the agents' Role to their ServiceAccount.
pub fn build_role_binding(pair: &MySQLActiveActive, names: &Names) -> RoleBinding {
    RoleBinding {
        metadata: object_meta(pair, names, names.agent_account()),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: names.agent_account(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: names.agent_account(),
            namespace: Some(names.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

/// The environment that names the pod and its pair's writer Lease (the
/// agent's, and `seed-receive`'s).
pub fn lease_env(names: &Names) -> Vec<EnvVar> {
    vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        EnvVar {
            name: "MYSQL_AA_LEASE".into(),
            value: Some(names.writer_lease()),
            ..EnvVar::default()
        },
    ]
}

/// The token's mount (the agent's container, and the MariaDB bootstrap
/// that finds its donor through the Lease).
pub fn token_mount() -> VolumeMount {
    VolumeMount {
        name: TOKEN_VOLUME.into(),
        mount_path: TOKEN_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The init container that copies the operator's binary (from its
/// `image`) into [`BIN_VOLUME`].
pub fn build_install_container(
    image: &str,
    security: k8s_openapi::api::core::v1::SecurityContext,
) -> Container {
    Container {
        name: INSTALL_CONTAINER.into(),
        image: Some(image.into()),
        command: Some(vec![
            "mysql-aa-operator".into(),
            "install-self".into(),
            crate::render::scripts::AGENT_BIN_DIR.into(),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: BIN_VOLUME.into(),
            mount_path: crate::render::scripts::AGENT_BIN_DIR.into(),
            ..VolumeMount::default()
        }]),
        resources: Some(small_resources("64Mi")),
        security_context: Some(security),
        ..Container::default()
    }
}

/// The emptyDir the binary is copied into.
pub fn build_bin_volume() -> Volume {
    Volume {
        name: BIN_VOLUME.into(),
        empty_dir: Some(k8s_openapi::api::core::v1::EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// Turns the agent's container into a MariaDB seed donor: it runs the
/// copied binary in the server's `image` (beside `mariadb-backup`), reads
/// the data volume (`data`, read-only) and has scratch space (`tmp`).
pub fn make_seed_donor(
    agent: &mut Container,
    image: &str,
    pull_policy: Option<String>,
    data: VolumeMount,
    tmp: VolumeMount,
) {
    agent.image = Some(image.into());
    agent.image_pull_policy = pull_policy;
    agent.command = Some(vec![
        format!(
            "{}/mysql-aa-operator",
            crate::render::scripts::AGENT_BIN_DIR
        ),
        "agent".into(),
    ]);
    agent.env.get_or_insert_with(Vec::new).push(EnvVar {
        name: "MYSQL_AA_SEED_DONOR".into(),
        value: Some("true".into()),
        ..EnvVar::default()
    });
    let mounts = agent.volume_mounts.get_or_insert_with(Vec::new);
    mounts.push(bin_mount());
    mounts.push(data);
    mounts.push(tmp);
    // mariadb-backup reads the data files through the page cache, with its
    // own buffers: more than the fencing alone needs.
    agent.resources = Some(small_resources("256Mi"));
}

/// The copied binary's mount (read-only).
pub fn bin_mount() -> VolumeMount {
    VolumeMount {
        name: BIN_VOLUME.into(),
        mount_path: crate::render::scripts::AGENT_BIN_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn small_resources(memory_limit: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("10m".into())),
            ("memory".to_string(), Quantity("32Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity(memory_limit.into()),
        )])),
        ..ResourceRequirements::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The agent's container. `admin_password`: the admin password's env var
/// (a Secret reference), `run`: the server's run directory mount.
pub fn build_container(
    image: &str,
    names: &Names,
    admin_password: EnvVar,
    run: VolumeMount,
    security: k8s_openapi::api::core::v1::SecurityContext,
) -> Container {
    Container {
        name: AGENT_CONTAINER.into(),
        image: Some(image.into()),
        command: Some(vec!["mysql-aa-operator".into(), "agent".into()]),
        env: Some({
            let mut env = lease_env(names);
            env.push(admin_password);
            env
        }),
        ports: Some(vec![ContainerPort {
            name: Some("agent".into()),
            container_port: AGENT_PORT.into(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        volume_mounts: Some(vec![run, token_mount()]),
        resources: Some(small_resources("64Mi")),
        security_context: Some(security),
        ..Container::default()
    }
}

/// The projected volume with the agent's token (bound to its pod, one
/// hour, renewed by the kubelet), the cluster's CA and the namespace.
pub fn build_token_volume() -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o440),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        expiration_seconds: Some(3607),
                        path: "token".into(),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            ..KeyToPath::default()
                        }]),
                        ..ConfigMapProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                field_path: "metadata.namespace".into(),
                                ..ObjectFieldSelector::default()
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}
