//! The rendered objects: the facts that matter, for both engines and modes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, Service};
use mysql_aa_operator::accounts::{ADMIN_PASSWORD_ENV, REPLICATION_PASSWORD_ENV};
use mysql_aa_operator::admission;
use mysql_aa_operator::api::MySQLActiveActive;
use mysql_aa_operator::render::{self, Credential, Names, Rendered, secrets};
use serde_json::{Value, json};

fn load(name: &str) -> MySQLActiveActive {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let value: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut pair = admission::admit(&value, None).unwrap();
    // As stored by the API server: a uid makes owner references possible.
    pair.metadata.uid = Some("0b5d4c8e-8f0e-4b43-9a36-3c2f1e0d9a11".into());
    pair
}

fn rendered(name: &str) -> (MySQLActiveActive, Rendered) {
    let pair = load(name);
    let r = render::render(&pair).unwrap();
    (pair, r)
}

/// `[mysqld]` options of a my.cnf (last value wins; repeated keys kept in order).
fn options(cnf: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_mysqld = false;
    for line in cnf.lines().map(str::trim) {
        if line.starts_with('[') {
            in_mysqld = line == "[mysqld]";
            continue;
        }
        if !in_mysqld || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').expect("key = value");
        out.entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

fn one<'a>(opts: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    let values = opts.get(key).unwrap_or_else(|| panic!("{key} missing"));
    assert_eq!(values.len(), 1, "{key} set more than once");
    &values[0]
}

fn cnf(r: &Rendered, ordinal: u32) -> BTreeMap<String, Vec<String>> {
    options(&r.config_map.data.as_ref().unwrap()[&format!("my-{ordinal}.cnf")])
}

#[test]
fn mysql_pair_gets_distinct_ids_and_interleaved_auto_increment() {
    let (_, r) = rendered("pair.yaml");
    let (a, b) = (cnf(&r, 0), cnf(&r, 1));
    assert_eq!(one(&a, "server_id"), "1000");
    assert_eq!(one(&b, "server_id"), "1001");
    for (opts, offset, host) in [(&a, "1", "orders-0"), (&b, "2", "orders-1")] {
        assert_eq!(one(opts, "auto_increment_increment"), "2");
        assert_eq!(one(opts, "auto_increment_offset"), offset);
        assert_eq!(one(opts, "gtid_mode"), "ON");
        assert_eq!(one(opts, "enforce_gtid_consistency"), "ON");
        assert_eq!(one(opts, "log_bin"), "mysql-bin");
        assert_eq!(one(opts, "loose_binlog_format"), "ROW");
        assert_eq!(one(opts, "loose_log_replica_updates"), "ON");
        assert_eq!(one(opts, "relay_log"), "relay-bin");
        assert_eq!(one(opts, "loose_skip_replica_start"), "ON");
        assert_eq!(one(opts, "read_only"), "ON");
        assert_eq!(one(opts, "super_read_only"), "ON");
        assert_eq!(
            one(opts, "report_host"),
            format!("{host}.orders-headless.shop.svc")
        );
        assert_eq!(one(opts, "max_connections"), "500");
        assert!(!opts.contains_key("gtid_domain_id"));
    }
}

#[test]
fn mariadb_pair_uses_its_own_spellings_and_gtid_domains() {
    let (pair, r) = rendered("mariadb.yaml");
    assert_eq!(pair.spec.effective_image(), "mariadb:11.4");
    let (a, b) = (cnf(&r, 0), cnf(&r, 1));
    assert_eq!(one(&a, "server_id"), "3000");
    assert_eq!(one(&b, "server_id"), "3001");
    assert_eq!(one(&a, "gtid_domain_id"), "3000");
    assert_eq!(one(&b, "gtid_domain_id"), "3001");
    for opts in [&a, &b] {
        assert_eq!(one(opts, "auto_increment_increment"), "2");
        assert_eq!(one(opts, "binlog_format"), "ROW");
        assert_eq!(one(opts, "log_slave_updates"), "ON");
        assert_eq!(one(opts, "skip_slave_start"), "ON");
        assert_eq!(one(opts, "read_only"), "ON");
        for mysql_only in ["gtid_mode", "enforce_gtid_consistency", "super_read_only"] {
            assert!(
                !opts.contains_key(mysql_only),
                "{mysql_only} is not a MariaDB option"
            );
        }
    }
    assert_eq!(one(&a, "auto_increment_offset"), "1");
    assert_eq!(one(&b, "auto_increment_offset"), "2");
    let sts = &r.statefulset.spec;
    let pod = sts.template.spec.as_ref().unwrap();
    let scripts = r.config_map.data.as_ref().unwrap();
    assert!(scripts["start.sh"].contains("exec \"mariadbd\""));
    assert!(scripts["bootstrap.sh"].contains("mariadb-install-db"));
    assert_eq!(
        server(pod)
            .readiness_probe
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap()
            .command
            .as_ref()
            .unwrap()[0],
        "mariadb"
    );
}

fn server(pod: &PodSpec) -> &Container {
    pod.containers.iter().find(|c| c.name == "mysqld").unwrap()
}

#[test]
fn statefulset_runs_two_servers_safely() {
    let (pair, r) = rendered("pair.yaml");
    let sts = &r.statefulset;
    let spec = &sts.spec;
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(spec.service_name.as_deref(), Some("orders-headless"));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        spec.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("OnDelete"),
        "the operator rolls the pods itself (replica, switchover, old writer)"
    );
    let selector = spec.selector.match_labels.clone().unwrap();
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    for (k, v) in &selector {
        assert_eq!(
            template_labels.get(k),
            Some(v),
            "template must carry selector label {k}"
        );
    }
    assert!(
        !template_labels.contains_key("mysql-aa.io/role"),
        "the role label is the operator's decision, never the template's"
    );
    // Claims: one per pod, size from the spec, retained by default.
    let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(claim.metadata.name.as_deref(), Some("data"));
    let requests = claim
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .clone()
        .unwrap();
    assert_eq!(requests["storage"].0, "20Gi");
    let retention = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .unwrap();
    assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));

    let pod = spec.template.spec.as_ref().unwrap();
    // Preferred anti-affinity on the hostname spreads the two servers.
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    let term = &anti
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        term.pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    // Restricted Pod Security Standard.
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let containers: Vec<&Container> = pod
        .init_containers
        .iter()
        .flatten()
        .chain(pod.containers.iter())
        .collect();
    assert_eq!(containers.len(), 2);
    for c in &containers {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(c.image.as_deref(), Some("mysql:8.4"));
        // Passwords only through Secret references, never in args or values.
        let env = c.env.as_ref().unwrap();
        for name in [ADMIN_PASSWORD_ENV, REPLICATION_PASSWORD_ENV] {
            let var = env.iter().find(|e| e.name == name).unwrap();
            assert!(var.value.is_none());
            let secret_ref = var
                .value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap();
            assert_eq!(secret_ref.key, "password");
        }
        let argv: Vec<&String> = c
            .command
            .iter()
            .flatten()
            .chain(c.args.iter().flatten())
            .collect();
        assert!(
            argv.iter().all(|a| !a.to_lowercase().contains("password")),
            "{argv:?}"
        );
    }
    let env = server(pod).env.as_ref().unwrap();
    let refs: Vec<&str> = env
        .iter()
        .map(|e| {
            e.value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap()
                .name
                .as_str()
        })
        .collect();
    assert_eq!(refs, ["orders-admin", "orders-replication"]);
    // Probes: liveness only pings; readiness runs a query; startup guards crash recovery.
    let srv = server(pod);
    let live = srv
        .liveness_probe
        .as_ref()
        .unwrap()
        .exec
        .as_ref()
        .unwrap()
        .command
        .clone()
        .unwrap();
    assert_eq!(live.first().map(String::as_str), Some("mysqladmin"));
    assert_eq!(live.last().map(String::as_str), Some("ping"));
    let ready = srv
        .readiness_probe
        .as_ref()
        .unwrap()
        .exec
        .as_ref()
        .unwrap()
        .command
        .clone()
        .unwrap();
    assert_eq!(ready.first().map(String::as_str), Some("mysql"));
    assert!(ready.contains(&"SELECT 1".to_string()));
    assert!(srv.startup_probe.is_some());
    // Volumes at the paths the my.cnf uses.
    let mounts: BTreeMap<String, String> = srv
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    assert_eq!(mounts["data"], "/var/lib/mysql");
    assert_eq!(mounts["config"], "/etc/mysql-aa");
    assert_eq!(mounts["run"], "/var/run/mysqld");
    assert_eq!(one(&cnf(&r, 0), "datadir"), "/var/lib/mysql/data");
    assert_eq!(one(&cnf(&r, 0), "socket"), "/var/run/mysqld/mysqld.sock");
    assert_eq!(srv.resources, pair.spec.resources);
}

fn selector(svc: &Service) -> BTreeMap<String, String> {
    svc.spec.as_ref().unwrap().selector.clone().unwrap()
}

#[test]
fn services_select_by_role() {
    let (_, r) = rendered("pair.yaml");
    let by_name: BTreeMap<String, &Service> = r
        .services
        .iter()
        .map(|s| (s.metadata.name.clone().unwrap(), s))
        .collect();
    let headless = by_name["orders-headless"].spec.as_ref().unwrap();
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
    assert_eq!(headless.publish_not_ready_addresses, Some(true));
    // The writer route follows the operator's label alone; readers need a
    // ready server.
    let spec = |n: &str| by_name[n].spec.as_ref().unwrap();
    assert_eq!(
        spec("orders-writer").publish_not_ready_addresses,
        Some(true)
    );
    assert_eq!(spec("orders-reader").publish_not_ready_addresses, None);
    // SingleWriter: the writer Service has no selector; the pair loop
    // writes its EndpointSlice with the writer label.
    assert_eq!(spec("orders-writer").selector, None);
    let slice = serde_json::to_value(render::writerslice::build_writer_slice(
        &load("pair.yaml"),
        &Names::of(&load("pair.yaml")),
        &[render::writerslice::WriterEndpoint {
            pod: "orders-1".into(),
            ip: "10.0.0.7".into(),
            node: Some("node-b".into()),
        }],
    ))
    .unwrap();
    assert_eq!(slice["metadata"]["name"], "orders-writer");
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "orders-writer"
    );
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "mysql-aa.io"
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "mysql", "port": 3306, "protocol": "TCP"}])
    );
    assert_eq!(
        slice["endpoints"],
        json!([{"addresses": ["10.0.0.7"], "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": "node-b", "targetRef": {"kind": "Pod", "name": "orders-1", "namespace": "shop"}}])
    );
    assert_eq!(
        selector(by_name["orders-reader"])
            .get("mysql-aa.io/role")
            .map(String::as_str),
        Some("replica")
    );
    for svc in by_name.values() {
        let ports = svc.spec.as_ref().unwrap().ports.clone().unwrap();
        assert_eq!(ports[0].port, 3306);
        if svc.metadata.name.as_deref() != Some("orders-writer") {
            assert_eq!(selector(svc)["app.kubernetes.io/instance"], "orders");
        }
    }
    // MultiWriter: the reader selects every node, the writer still by label.
    let (_, aa) = rendered("active-active.yaml");
    let reader = aa
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("sessions-reader"))
        .unwrap();
    assert!(!selector(reader).contains_key("mysql-aa.io/role"));
    let writer = aa
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("sessions-writer"))
        .unwrap();
    assert_eq!(selector(writer)["mysql-aa.io/role"], "writer");
}

#[test]
fn every_object_is_owned_and_labelled() {
    let (pair, r) = rendered("pair.yaml");
    let mut metas = vec![
        &r.config_map.metadata,
        &r.statefulset.metadata,
        &r.pdb.metadata,
    ];
    metas.extend(r.services.iter().map(|s| &s.metadata));
    assert_eq!(metas.len(), 6);
    for meta in metas {
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "MySQLActiveActive");
        assert_eq!(owner.uid, pair.metadata.uid.clone().unwrap());
        assert_eq!(owner.controller, Some(true));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/instance"], "orders");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "mysql-aa-operator");
        assert_eq!(meta.namespace.as_deref(), Some("shop"));
    }
    let pdb = r.pdb.spec.as_ref().unwrap();
    assert_eq!(
        pdb.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
}

/// Issue 12, bug 3: the generated Secrets live as long as the data they
/// open. Under `Retain` (the default) the claims outlive the resource, so
/// the Secrets carry no ownerReference (the garbage collector would delete
/// them with the resource, and a pair created again under the same name
/// would be locked out of its own data); under `Delete` they go with it.
#[test]
fn generated_secrets_outlive_the_pair_exactly_when_its_data_does() {
    let (_, retained) = rendered("pair.yaml");
    assert_eq!(retained.secrets.len(), 2);
    for s in &retained.secrets {
        assert_eq!(s.metadata.owner_references, None, "{:?}", s.metadata.name);
        let labels = s.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/instance"], "orders");
    }
    let (mut pair, _) = rendered("pair.yaml");
    pair.spec.pvc_retention_policy = mysql_aa_operator::api::PvcRetentionPolicy::Delete;
    let deleted = mysql_aa_operator::render::render(&pair).unwrap();
    for s in &deleted.secrets {
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "MySQLActiveActive");
        assert_eq!(owner.controller, Some(true));
    }
}

#[test]
fn secrets_are_generated_only_when_not_named_and_never_carry_data_in_a_preview() {
    let (_, r) = rendered("pair.yaml");
    let names: Vec<_> = r
        .secrets
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["orders-admin", "orders-replication"]);
    assert!(
        r.secrets
            .iter()
            .all(|s| s.data.is_none() && s.string_data.is_none())
    );

    let mut pair = load("pair.yaml");
    pair.spec.credentials.admin_secret_name = Some("my-admin".into());
    let r = render::render(&pair).unwrap();
    let names: Vec<_> = r
        .secrets
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["orders-replication"]);
    let env = &server(r.statefulset.spec.template.spec.as_ref().unwrap())
        .env
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        env.value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap()
            .name,
        "my-admin"
    );
}

#[test]
fn generated_passwords_are_long_random_and_distinct() {
    let a = secrets::generate_password();
    let b = secrets::generate_password();
    assert!(a.len() >= 32 && a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(a, b);
    let pair = load("pair.yaml");
    let names = Names::of(&pair);
    let secret = secrets::build_secret(&pair, &names, Credential::Admin, Some(&a));
    assert_eq!(secret.data.unwrap()["password"].0, a.as_bytes());
}

#[test]
fn durability_and_tls_settings_follow_the_spec() {
    use mysql_aa_operator::api::{DurabilityMode, WriteMode};
    let mut pair = load("pair.yaml");
    pair.spec.replication.durability = None;
    pair.spec.replication.tls.secret_name = Some("repl-tls".into());
    let r = render::render(&pair).unwrap();
    let opts = cnf(&r, 1);
    // SingleWriter defaults to SemiSync: plugins loaded (and the clone
    // plugin, for re-seeds), waiting off at boot (the operator turns it on
    // on the writer), no fallback by itself.
    assert_eq!(pair.spec.durability(), DurabilityMode::SemiSync);
    assert_eq!(
        opts["plugin_load_add"],
        [
            "mysql_clone.so",
            "semisync_source.so",
            "semisync_replica.so"
        ]
    );
    assert_eq!(one(&opts, "loose_rpl_semi_sync_source_enabled"), "OFF");
    assert_eq!(one(&opts, "loose_rpl_semi_sync_replica_enabled"), "ON");
    assert_eq!(
        one(&opts, "loose_rpl_semi_sync_source_wait_point"),
        "AFTER_SYNC"
    );
    assert_eq!(
        one(&opts, "loose_rpl_semi_sync_source_wait_no_replica"),
        "ON"
    );
    assert_eq!(
        one(&opts, "loose_rpl_semi_sync_source_timeout"),
        "4294967295"
    );
    let mut maria = load("pair.yaml");
    maria.spec.engine = mysql_aa_operator::api::Engine::MariaDB;
    let maria_opts = cnf(&render::render(&maria).unwrap(), 0);
    assert_eq!(one(&maria_opts, "rpl_semi_sync_master_enabled"), "OFF");
    assert_eq!(one(&maria_opts, "rpl_semi_sync_slave_enabled"), "ON");
    assert_eq!(one(&maria_opts, "rpl_semi_sync_master_wait_no_slave"), "ON");
    assert_eq!(
        one(&maria_opts, "rpl_semi_sync_slave_kill_conn_timeout"),
        "1"
    );
    assert_eq!(
        one(&maria_opts, "rpl_semi_sync_master_timeout"),
        "4294967295"
    );
    // Async, and MultiWriter's default: no semi-sync at all (the clone
    // plugin only).
    let mut async_pair = load("pair.yaml");
    async_pair.spec.replication.durability = Some(DurabilityMode::Async);
    let mut multi = load("pair.yaml");
    multi.spec.write_mode = WriteMode::MultiWriter;
    multi.spec.replication.durability = None;
    for p in [async_pair, multi] {
        let o = cnf(&render::render(&p).unwrap(), 0);
        assert!(o.keys().all(|k| !k.contains("semi_sync")), "{o:?}");
        assert_eq!(o["plugin_load_add"], ["mysql_clone.so"]);
    }
    assert_eq!(one(&opts, "ssl_ca"), "/etc/mysql-aa-tls/ca.crt");
    let pod = r.statefulset.spec.template.spec.as_ref().unwrap();
    let tls = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "tls")
        .unwrap();
    assert_eq!(
        tls.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("repl-tls")
    );
}

#[test]
fn renderer_refuses_owned_keys_that_bypassed_admission() {
    let mut pair = load("pair.yaml");
    pair.spec
        .mysqld_config
        .insert("Server-Id".into(), "1".into());
    let err = render::render(&pair).unwrap_err();
    assert_eq!(err.field, "spec.mysqldConfig.Server-Id");
}

#[test]
fn placement_and_retention_reach_the_pods() {
    let value = json!({
        "apiVersion": "mysql-aa.io/v1alpha1", "kind": "MySQLActiveActive",
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {
            "pvcRetentionPolicy": "Delete",
            "placement": {
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "db", "operator": "Exists", "effect": "NoSchedule"}],
                "priorityClassName": "critical",
                "podLabels": {"team": "shop"},
                "podAnnotations": {"backup": "daily"}
            }
        }
    });
    let pair = admission::admit(&value, None).unwrap();
    let r = render::render(&pair).unwrap();
    let spec = &r.statefulset.spec;
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.node_selector.as_ref().unwrap()["disk"], "ssd");
    assert_eq!(
        pod.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("db")
    );
    assert_eq!(pod.priority_class_name.as_deref(), Some("critical"));
    let meta = spec.template.metadata.as_ref().unwrap();
    assert_eq!(meta.labels.as_ref().unwrap()["team"], "shop");
    assert_eq!(meta.annotations.as_ref().unwrap()["backup"], "daily");
    assert_eq!(
        spec.persistent_volume_claim_retention_policy
            .as_ref()
            .unwrap()
            .when_deleted
            .as_deref(),
        Some("Delete")
    );
}

#[test]
fn a_config_change_rolls_the_pods_and_nothing_else_does() {
    let digest = |p: &MySQLActiveActive| {
        let r = render::render(p).unwrap();
        r.statefulset
            .spec
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()["mysql-aa.io/config-digest"]
            .clone()
    };
    let pair = load("pair.yaml");
    let base = digest(&pair);
    let mut changed = pair.clone();
    changed
        .spec
        .mysqld_config
        .insert("max_connections".into(), "900".into());
    assert_ne!(
        digest(&changed),
        base,
        "my.cnf changed: the template changes"
    );
    let mut other = pair.clone();
    other.spec.replication.durability = Some(match pair.spec.durability() {
        mysql_aa_operator::api::DurabilityMode::SemiSync => {
            mysql_aa_operator::api::DurabilityMode::Async
        }
        mysql_aa_operator::api::DurabilityMode::Async => {
            mysql_aa_operator::api::DurabilityMode::SemiSync
        }
    });
    assert_ne!(digest(&other), base);
    let mut same = pair.clone();
    same.spec.paused = true;
    same.spec.failover.detection_window_seconds = 30;
    assert_eq!(digest(&same), base, "no my.cnf change: no restart");
    // The pair's state in the ConfigMap (it has been Ready) rolls nothing.
    let mut initialized = pair.clone();
    initialized.status = Some(mysql_aa_operator::api::MySQLActiveActiveStatus {
        initialized_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        )),
        ..Default::default()
    });
    let r = render::render(&initialized).unwrap();
    assert!(
        r.config_map.data.unwrap().contains_key("pair-initialized"),
        "the ConfigMap says the pair has data"
    );
    assert_eq!(digest(&initialized), base, "state is not configuration");
}

/// MariaDB with agents: the agent runs the operator's binary (copied in by
/// an init container) in the server's image, beside mariadb-backup, with
/// the data volume read-only; the bootstrap gets the binary and the token
/// (to find the writer through the Lease); MySQL's agent stays in the
/// operator's image, its bootstrap without token.
#[test]
fn a_mariadb_agent_gives_copies_from_the_servers_image() {
    let agent_image = "ghcr.io/mysql-aa/mysql-aa-operator:0.1.0";
    let with_agent = |p: &MySQLActiveActive| {
        render::render_with(
            p,
            &render::RenderOptions {
                image: Some(agent_image.into()),
                ..Default::default()
            },
        )
        .unwrap()
        .statefulset
        .spec
        .template
        .spec
        .unwrap()
    };
    let mut pair = load("pair.yaml");
    pair.spec.engine = mysql_aa_operator::api::Engine::MariaDB;
    pair.spec.image = Some("mariadb:10.11".into());
    let pod = with_agent(&pair);
    let inits: Vec<&str> = pod
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, ["install-agent", "bootstrap"]);
    let install = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(install.image.as_deref(), Some(agent_image));
    let agent = pod.containers.iter().find(|c| c.name == "agent").unwrap();
    assert_eq!(agent.image.as_deref(), Some("mariadb:10.11"));
    assert_eq!(
        agent.command.as_ref().unwrap()[0],
        "/opt/mysql-aa/bin/mysql-aa-operator"
    );
    let data = agent
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "data")
        .unwrap();
    assert_eq!(data.read_only, Some(true), "the donor only reads its data");
    let bootstrap = &pod.init_containers.as_ref().unwrap()[1];
    let mounts: Vec<&str> = bootstrap
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.as_str())
        .collect();
    assert!(
        mounts.contains(&"agent-bin") && mounts.contains(&"agent-token"),
        "{mounts:?}"
    );
    for c in pod.init_containers.iter().flatten().chain(&pod.containers) {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.run_as_non_root, Some(true), "{}", c.name);
        assert!(c.args.is_none(), "{}: no setting in args", c.name);
    }
    let mysql = with_agent(&load("pair.yaml"));
    let inits: Vec<&str> = mysql
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, ["bootstrap"]);
    let agent = mysql.containers.iter().find(|c| c.name == "agent").unwrap();
    assert_eq!(agent.image.as_deref(), Some(agent_image));
}

/// The agent (SingleWriter, with an agent image): one container beside the
/// server, the pod's only token mounted in it alone, a Role that can do
/// nothing but read and renew its pair's Lease, the password from a
/// Secret reference, and the Lease itself lasting the detection window.
#[test]
fn the_agent_gets_only_its_lease() {
    let pair = load("pair.yaml");
    let names = Names::of(&pair);
    let r = render::render_with(
        &pair,
        &render::RenderOptions {
            image: Some("ghcr.io/mysql-aa/mysql-aa-operator:0.1.0".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let pod = r.statefulset.spec.template.spec.clone().unwrap();
    assert_eq!(
        pod.share_process_namespace,
        Some(true),
        "to fence its server"
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.service_account_name, Some(names.agent_account()));
    let agent = pod.containers.iter().find(|c| c.name == "agent").unwrap();
    assert_eq!(
        agent.command,
        Some(vec!["mysql-aa-operator".to_string(), "agent".to_string()])
    );
    assert!(agent.args.is_none(), "no secret or setting in args");
    let password = agent
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == ADMIN_PASSWORD_ENV)
        .unwrap();
    assert!(password.value.is_none() && password.value_from.is_some());
    let token_mounts = |c: &Container| {
        c.volume_mounts
            .iter()
            .flatten()
            .filter(|m| m.name == "agent-token")
            .count()
    };
    for c in &pod.containers {
        assert_eq!(
            token_mounts(c),
            usize::from(c.name == "agent"),
            "{}",
            c.name
        );
    }
    let sc = agent.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.run_as_non_root, Some(true));
    let access = r.agent.as_ref().unwrap();
    let rules = access.role.rules.as_ref().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].resources, Some(vec!["leases".to_string()]));
    assert_eq!(rules[0].resource_names, Some(vec![names.writer_lease()]));
    assert_eq!(
        rules[0].verbs,
        vec!["get".to_string(), "update".to_string()]
    );
    assert_eq!(
        access.role_binding.subjects.as_ref().unwrap()[0].name,
        names.agent_account()
    );
    let lease = r.lease.as_ref().unwrap();
    assert_eq!(
        lease.spec.as_ref().unwrap().lease_duration_seconds,
        Some(pair.spec.failover.detection_window_seconds as i32)
    );
    assert!(
        lease.spec.as_ref().unwrap().holder_identity.is_none(),
        "never applied"
    );
    // MultiWriter: no writer, no Lease, no agent.
    let multi = load("active-active.yaml");
    let m = render::render_with(
        &multi,
        &render::RenderOptions {
            image: Some("x/mysql-aa-operator:1".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(m.lease.is_none() && m.agent.is_none());
    assert_eq!(
        m.statefulset.spec.template.spec.unwrap().containers.len(),
        1
    );
}

/// Issue 15: `spec.networkPolicy` renders one ingress-only NetworkPolicy:
/// the pair's pods and the operator on MySQL's and the agents' ports, the
/// named clients on MySQL's port only; the operator is found in its own
/// namespace unless the spec says where.
#[test]
fn a_network_policy_lets_in_the_pair_the_operator_and_the_clients() {
    let mut pair = load("pair.yaml");
    assert!(render::render(&pair).unwrap().network_policy.is_none());
    let with = |p: &MySQLActiveActive, ns: Option<&str>| {
        let np = render::render_with(
            p,
            &render::RenderOptions {
                operator_namespace: ns.map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap()
        .network_policy
        .expect("a NetworkPolicy");
        serde_json::to_value(np).unwrap()
    };
    pair.spec.network_policy = Some(
        serde_json::from_value(json!({"clients": [
            {"namespaceSelector": {"matchLabels": {"team": "shop"}}},
            {"ipBlock": {"cidr": "10.1.0.0/16"}}
        ]}))
        .unwrap(),
    );
    let np = with(&pair, Some("mysql-aa-system"));
    let name = Names::of(&pair).statefulset();
    assert_eq!(np["metadata"]["name"], json!(name));
    let spec = &np["spec"];
    assert_eq!(spec["policyTypes"], json!(["Ingress"]));
    assert!(spec.get("egress").is_none());
    let pods = json!({"app.kubernetes.io/name": "mysql-active-active", "app.kubernetes.io/instance": name});
    assert_eq!(spec["podSelector"]["matchLabels"], pods);
    let tcp = |p: u16| json!({"port": p, "protocol": "TCP"});
    let rules = spec["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(
        rules[0]["from"],
        json!([{"podSelector": {"matchLabels": pods}}])
    );
    assert_eq!(rules[0]["ports"], json!([tcp(3306), tcp(3380)]));
    assert_eq!(
        rules[1]["from"],
        json!([{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mysql-aa-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "mysql-aa-operator"}}
        }])
    );
    assert_eq!(rules[1]["ports"], json!([tcp(3306), tcp(3380)]));
    assert_eq!(rules[2]["from"].as_array().unwrap().len(), 2);
    assert_eq!(rules[2]["ports"], json!([tcp(3306)]));
    // The operator's namespace not known: from any namespace.
    let np = with(&pair, None);
    assert_eq!(
        np["spec"]["ingress"][1]["from"][0]["namespaceSelector"],
        json!({})
    );
    // The operator where the spec says; no clients: no client rule.
    pair.spec.network_policy = Some(
        serde_json::from_value(json!({"operator": [{"ipBlock": {"cidr": "192.168.0.10/32"}}]}))
            .unwrap(),
    );
    let np = with(&pair, Some("mysql-aa-system"));
    let rules = np["spec"]["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[1]["from"],
        json!([{"ipBlock": {"cidr": "192.168.0.10/32"}}])
    );
}
