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
/// Name of the volume with the agent's token.
pub const TOKEN_VOLUME: &str = "agent-token";
/// Where the agent's token, CA and namespace are mounted (where in-cluster
/// clients look).
pub const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The agent's settings for a pair, from the operator's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentOptions {
    /// The agent's image (the operator's own); no agent when `None`.
    pub image: Option<String>,
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
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            EnvVar {
                name: "MYSQL_AA_LEASE".into(),
                value: Some(names.writer_lease()),
                ..EnvVar::default()
            },
            admin_password,
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("agent".into()),
            container_port: AGENT_PORT.into(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        volume_mounts: Some(vec![
            run,
            VolumeMount {
                name: TOKEN_VOLUME.into(),
                mount_path: TOKEN_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("10m".into())),
                ("memory".to_string(), Quantity("32Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("64Mi".into()),
            )])),
            ..ResourceRequirements::default()
        }),
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
