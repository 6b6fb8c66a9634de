//! The StatefulSet of the two servers.
//!
//! Each pod runs the `bootstrap` init container (initialize the data
//! directory once) and the `mysqld` container (start with the pod's own
//! my.cnf). Passwords come only from Secret references. The security
//! context passes the "restricted" Pod Security Standard: non-root numeric
//! user, no privilege escalation, all capabilities dropped, RuntimeDefault
//! seccomp, read-only root file system (writable paths are volumes).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, ExecAction, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::accounts::{ADMIN_PASSWORD_ENV, PASSWORD_KEY, REPLICATION_PASSWORD_ENV};
use crate::api::{MySQLActiveActive, PAIR_SIZE, PvcRetentionPolicy};

use super::meta::{Names, object_meta, selector_labels};
use super::mycnf::{CONFIG_DIR, DATA_MOUNT, MYSQL_PORT, RUN_DIR, TLS_DIR};
use super::scripts::{BOOTSTRAP_KEY, START_KEY, liveness_command, readiness_command};
use super::secrets::Credential;

/// User and group id of `mysql` in the official MySQL and MariaDB images.
pub const MYSQL_UID: i64 = 999;
/// Name of the server container.
pub const SERVER_CONTAINER: &str = "mysqld";
/// Name of the init container.
pub const BOOTSTRAP_CONTAINER: &str = "bootstrap";
/// Name of the data volume claim template.
pub const DATA_VOLUME: &str = "data";

fn secret_env(env: &str, secret: String) -> EnvVar {
    EnvVar {
        name: env.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret,
                key: PASSWORD_KEY.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(MYSQL_UID),
        run_as_group: Some(MYSQL_UID),
        ..SecurityContext::default()
    }
}

fn exec_probe(command: Vec<String>, period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn default_anti_affinity(names: &Names) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector_labels(names)),
                            ..LabelSelector::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// Builds the StatefulSet `<name>` of two servers.
/// `agent`: the agent's image (SingleWriter only), if one runs.
pub fn build_statefulset(
    pair: &MySQLActiveActive,
    names: &Names,
    agent: Option<&str>,
) -> StatefulSet {
    let spec = &pair.spec;
    let engine = spec.engine;
    let image = spec.effective_image().to_string();
    let pull_policy = spec.image_pull_policy.map(|p| p.as_str().to_string());
    let env = vec![
        secret_env(
            ADMIN_PASSWORD_ENV,
            Credential::Admin.secret_name(pair, names),
        ),
        secret_env(
            REPLICATION_PASSWORD_ENV,
            Credential::Replication.secret_name(pair, names),
        ),
    ];
    let mut mounts = vec![
        mount(DATA_VOLUME, DATA_MOUNT, false),
        mount("config", CONFIG_DIR, true),
        mount("run", RUN_DIR, false),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.config_map(),
                default_mode: Some(0o444),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "run".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    if let Some(tls) = &spec.replication.tls.secret_name {
        mounts.push(mount("tls", TLS_DIR, true));
        volumes.push(Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.clone()),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    let script = |key: &str| vec!["/bin/sh".to_string(), format!("{CONFIG_DIR}/{key}")];
    // MariaDB re-seeds by a streamed mariadb-backup, which runs in the
    // server's image: there the agent gives copies, and the bootstrap of an
    // empty volume receives one (both with the operator's binary, copied in
    // by an init container).
    let seed_by_stream = engine == crate::api::Engine::MariaDB && agent.is_some();
    let mut bootstrap_env = env.clone();
    let mut bootstrap_mounts = mounts.clone();
    if seed_by_stream {
        bootstrap_env.extend(super::agent::lease_env(names));
        bootstrap_mounts.push(super::agent::bin_mount());
        bootstrap_mounts.push(super::agent::token_mount());
    }
    let bootstrap = Container {
        name: BOOTSTRAP_CONTAINER.into(),
        image: Some(image.clone()),
        image_pull_policy: pull_policy.clone(),
        command: Some(script(BOOTSTRAP_KEY)),
        env: Some(bootstrap_env),
        volume_mounts: Some(bootstrap_mounts),
        resources: spec.resources.clone(),
        security_context: Some(container_security_context()),
        ..Container::default()
    };
    let server = Container {
        name: SERVER_CONTAINER.into(),
        image: Some(image.clone()),
        image_pull_policy: pull_policy.clone(),
        command: Some(script(START_KEY)),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("mysql".into()),
            container_port: MYSQL_PORT.into(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        volume_mounts: Some(mounts),
        resources: spec.resources.clone(),
        security_context: Some(container_security_context()),
        // Crash recovery may take long: liveness starts once startup passed.
        startup_probe: Some(exec_probe(liveness_command(engine), 10, 60)),
        liveness_probe: Some(exec_probe(liveness_command(engine), 10, 6)),
        readiness_probe: Some(exec_probe(readiness_command(engine), 5, 3)),
        ..Container::default()
    };
    let mut containers = vec![server];
    let mut init_containers = vec![bootstrap];
    if let Some(agent_image) = agent {
        let mut container = super::agent::build_container(
            agent_image,
            names,
            secret_env(
                ADMIN_PASSWORD_ENV,
                Credential::Admin.secret_name(pair, names),
            ),
            mount("run", RUN_DIR, false),
            container_security_context(),
        );
        volumes.push(super::agent::build_token_volume());
        if seed_by_stream {
            super::agent::make_seed_donor(
                &mut container,
                &image,
                pull_policy.clone(),
                mount(DATA_VOLUME, DATA_MOUNT, true),
                mount("tmp", "/tmp", false),
            );
            init_containers.insert(
                0,
                super::agent::build_install_container(agent_image, container_security_context()),
            );
            volumes.push(super::agent::build_bin_volume());
        }
        containers.push(container);
    }
    let mut pod_labels = selector_labels(names);
    pod_labels.extend(spec.placement.pod_labels.clone());
    pod_labels.extend(super::meta::common_labels(names));
    let placement = &spec.placement;
    let pod_spec = PodSpec {
        init_containers: Some(init_containers),
        containers,
        volumes: Some(volumes),
        // The agent fences its server by SIGKILL (same user).
        share_process_namespace: agent.map(|_| true),
        service_account_name: agent.map(|_| names.agent_account()),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(MYSQL_UID),
            run_as_group: Some(MYSQL_UID),
            fs_group: Some(MYSQL_UID),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        affinity: Some(
            placement
                .affinity
                .clone()
                .unwrap_or_else(|| default_anti_affinity(names)),
        ),
        tolerations: (!placement.tolerations.is_empty()).then(|| placement.tolerations.clone()),
        node_selector: (!placement.node_selector.is_empty())
            .then(|| placement.node_selector.clone()),
        priority_class_name: placement.priority_class_name.clone(),
        enable_service_links: Some(false),
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(60),
        ..PodSpec::default()
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(selector_labels(names)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(spec.storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    let when_deleted = match spec.pvc_retention_policy {
        PvcRetentionPolicy::Retain => "Retain",
        PvcRetentionPolicy::Delete => "Delete",
    };
    StatefulSet {
        metadata: object_meta(pair, names, names.statefulset()),
        spec: StatefulSetSpec {
            replicas: Some(PAIR_SIZE as i32),
            service_name: Some(names.headless_service()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            },
            // Both servers start together: neither waits for the other.
            pod_management_policy: Some("Parallel".into()),
            // The operator rolls the pods itself (replica first, then a
            // switchover, then the old writer), so a configuration change
            // never takes the writer down under its clients.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(when_deleted.into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: (!placement.pod_annotations.is_empty())
                        .then(|| placement.pod_annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}
