//! Admission: the examples pass; invalid specs are refused at admission by
//! the CRD's schema and CEL rules, with messages that name the field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use mysql_aa_operator::admission::{self, AdmissionError};
use mysql_aa_operator::api::{Engine, MySQLActiveActive, WriteMode};
use serde_json::{Value, json};

fn example(name: &str) -> Value {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn pair(spec: Value) -> Value {
    json!({
        "apiVersion": "mysql-aa.io/v1alpha1",
        "kind": "MySQLActiveActive",
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": spec,
    })
}

fn rejection(object: &Value, old: Option<&Value>) -> String {
    match admission::admit(object, old) {
        Ok(_) => panic!("admitted, expected a rejection: {object}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn examples_are_admitted() {
    for name in ["pair.yaml", "active-active.yaml", "mariadb.yaml"] {
        admission::admit(&example(name), None).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn defaults_are_applied() {
    let p: MySQLActiveActive = admission::admit(&pair(json!({})), None).unwrap();
    assert_eq!(p.spec.engine, Engine::MySQL);
    assert_eq!(p.spec.write_mode, WriteMode::SingleWriter);
    assert_eq!(p.spec.server_id_base, 1000);
    assert_eq!(p.spec.storage.size, "10Gi");
    assert!(p.spec.failover.automatic);
    assert_eq!(p.spec.failover.detection_window_seconds, 5);
    assert_eq!(p.spec.effective_image(), "mysql:8.4");
}

#[test]
fn kubes_own_cel_evaluation_agrees() {
    // kube's derive-generated client-side CEL check on the typed resource.
    let good: MySQLActiveActive = admission::admit(&example("pair.yaml"), None).unwrap();
    good.validate_cel().unwrap();
    let mut bad = good.clone();
    bad.spec
        .mysqld_config
        .insert("server-id".into(), "7".into());
    let err = bad.validate_cel().unwrap_err();
    assert!(format!("{err:?}").contains("mysqldConfig must not set options the operator owns"));
    let mut changed = good.clone();
    changed.spec.engine = Engine::MariaDB;
    let err = changed.validate_cel_update(&good).unwrap_err();
    assert!(format!("{err:?}").contains("engine is immutable"));
}

#[test]
fn invalid_specs_are_rejected_with_their_message() {
    let long_name = "a".repeat(46);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown engine",
            pair(json!({"engine": "Postgres"})),
            "spec.engine: Unsupported value: \"Postgres\"",
        ),
        (
            "unknown write mode",
            pair(json!({"writeMode": "Both"})),
            "spec.writeMode: Unsupported value",
        ),
        (
            "server id base 0",
            pair(json!({"serverIdBase": 0})),
            "spec.serverIdBase: Invalid value: 0: should be greater than or equal to 1",
        ),
        (
            "server id base too big for ordinal 1",
            pair(json!({"serverIdBase": 4294967295u64})),
            "should be less than or equal to 4294967294",
        ),
        (
            "server id base not a number",
            pair(json!({"serverIdBase": "one"})),
            "must be of type integer",
        ),
        (
            "empty image",
            pair(json!({"image": ""})),
            "image must be a non-empty image reference",
        ),
        (
            "image with spaces",
            pair(json!({"image": "mysql 8"})),
            "image must be a non-empty image reference",
        ),
        (
            "storage size not a quantity",
            pair(json!({"storage": {"size": "ten gigs"}})),
            "storage.size must be a positive Kubernetes quantity",
        ),
        (
            "storage size zero",
            pair(json!({"storage": {"size": "0"}})),
            "storage.size must be a positive Kubernetes quantity",
        ),
        (
            "owned key server_id",
            pair(json!({"mysqldConfig": {"server_id": "5"}})),
            "operator-owned: server_id",
        ),
        (
            "owned key with dashes and case",
            pair(json!({"mysqldConfig": {"Auto-Increment-Offset": "3"}})),
            "operator-owned: Auto-Increment-Offset",
        ),
        (
            "owned key with loose prefix",
            pair(json!({"mysqldConfig": {"loose-gtid-mode": "OFF"}})),
            "loose-gtid-mode",
        ),
        (
            "owned key disabling the binlog",
            pair(json!({"mysqldConfig": {"skip-log-bin": "1"}})),
            "skip-log-bin",
        ),
        (
            "owned key log_slave_updates",
            pair(json!({"mysqldConfig": {"log_slave_updates": "OFF"}})),
            "log_slave_updates",
        ),
        (
            "owned key MariaDB domain",
            pair(json!({"mysqldConfig": {"gtid_domain_id": "9"}})),
            "gtid_domain_id",
        ),
        (
            "owned key super_read_only",
            pair(json!({"mysqldConfig": {"super_read_only": "OFF"}})),
            "super_read_only",
        ),
        (
            "config key injecting a section",
            pair(json!({"mysqldConfig": {"[client]": "x"}})),
            "mysqldConfig keys must be option names",
        ),
        (
            "config value with a new line",
            pair(json!({"mysqldConfig": {"max_connections": "10\nserver_id=1"}})),
            "must not contain line breaks",
        ),
        (
            "detection window too short",
            pair(json!({"failover": {"detectionWindowSeconds": 1}})),
            "spec.failover.detectionWindowSeconds",
        ),
        (
            "unknown applier policy",
            pair(json!({"replication": {"applierErrorPolicy": "Skip"}})),
            "spec.replication.applierErrorPolicy: Unsupported value",
        ),
        (
            "verify CA without certificates",
            pair(json!({"replication": {"tls": {"mode": "VerifyCA"}}})),
            "replication.tls.secretName is required",
        ),
        (
            "unknown TLS mode",
            pair(json!({"replication": {"tls": {"mode": "Maybe"}}})),
            "spec.replication.tls.mode: Unsupported value",
        ),
        (
            "unknown PVC policy",
            pair(json!({"pvcRetentionPolicy": "Archive"})),
            "spec.pvcRetentionPolicy: Unsupported value",
        ),
        (
            "reserved pod label",
            pair(json!({"placement": {"podLabels": {"mysql-aa.io/role": "writer"}}})),
            "placement.podLabels must not use",
        ),
        (
            "unknown field",
            pair(json!({"replicas": 3})),
            "spec.replicas: field not declared in schema",
        ),
        (
            "read-lag bound in MultiWriter",
            pair(json!({"writeMode": "MultiWriter", "replication": {"maxReadLagSeconds": 5}})),
            "spec.replication.maxReadLagSeconds needs spec.writeMode SingleWriter",
        ),
        (
            "read-lag bound 0",
            pair(json!({"replication": {"maxReadLagSeconds": 0}})),
            "spec.replication.maxReadLagSeconds: Invalid value: 0: should be greater than or equal to 1",
        ),
        (
            "resources with an invalid quantity",
            pair(json!({"resources": {"requests": {"cpu": "lots"}}})),
            "resources.limits and resources.requests must be quantities",
        ),
        (
            "resources with a negative quantity",
            pair(json!({"resources": {"limits": {"memory": "-1Gi"}}})),
            "resources.limits and resources.requests must be quantities of at least 0",
        ),
        (
            "resources requesting more than the limit",
            pair(
                json!({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}),
            ),
            "resources.requests must not be greater than resources.limits",
        ),
        (
            "resources with an unknown name",
            pair(json!({"resources": {"requests": {"gpus": 1}}})),
            "resources: the resource names are cpu, memory",
        ),
        (
            "toleration with an unknown operator",
            pair(json!({"placement": {"tolerations": [{"key": "a", "operator": "Sometimes"}]}})),
            "placement.tolerations[].operator must be Exists or Equal",
        ),
        (
            "toleration with an unknown effect",
            pair(
                json!({"placement": {"tolerations": [{"key": "a", "operator": "Exists", "effect": "Never"}]}}),
            ),
            "placement.tolerations[].effect must be NoSchedule",
        ),
        (
            "toleration Exists with a value",
            pair(
                json!({"placement": {"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]}}),
            ),
            "operator Exists takes no value",
        ),
        (
            "toleration seconds without NoExecute",
            pair(
                json!({"placement": {"tolerations": [{"key": "a", "operator": "Exists", "tolerationSeconds": 5}]}}),
            ),
            "tolerationSeconds needs effect NoExecute",
        ),
        (
            "priority class name not a DNS name",
            pair(json!({"placement": {"priorityClassName": "Not_A_Name"}})),
            "spec.placement.priorityClassName",
        ),
        (
            "node selector with an invalid label value",
            pair(json!({"placement": {"nodeSelector": {"disktype": "not a label value"}}})),
            "spec.placement.nodeSelector.disktype",
        ),
        (
            "node selector with an invalid label key",
            pair(json!({"placement": {"nodeSelector": {"disk type": "ssd"}}})),
            "placement.nodeSelector keys must be label keys",
        ),
        (
            "pod label with an invalid value",
            pair(json!({"placement": {"podLabels": {"team": "a/b"}}})),
            "spec.placement.podLabels.team",
        ),
        (
            "credential secret name empty",
            pair(json!({"credentials": {"adminSecretName": ""}})),
            "spec.credentials.adminSecretName",
        ),
    ];
    assert!(cases.len() >= 15);
    for (what, object, want) in &cases {
        let got = rejection(object, None);
        assert!(got.contains(want), "{what}: expected {want:?} in {got:?}");
    }
    let mut bad_name = pair(json!({}));
    bad_name["metadata"]["name"] = json!(long_name);
    assert!(rejection(&bad_name, None).contains("metadata.name must be at most 45"));
    bad_name["metadata"]["name"] = json!("Orders_DB");
    assert!(rejection(&bad_name, None).contains("metadata.name must be at most 45"));
}

#[test]
fn immutable_fields_cannot_change_on_update() {
    let old = pair(json!({"engine": "MySQL", "serverIdBase": 1000, "storage": {"size": "10Gi"}}));
    let cases = [
        (
            json!({"engine": "MariaDB", "serverIdBase": 1000, "storage": {"size": "10Gi"}}),
            "engine is immutable",
        ),
        (
            json!({"engine": "MySQL", "serverIdBase": 2000, "storage": {"size": "10Gi"}}),
            "serverIdBase is immutable",
        ),
        (
            json!({"engine": "MySQL", "serverIdBase": 1000, "storage": {"size": "20Gi"}}),
            "storage is immutable",
        ),
        // Mutable fields may change; omitted immutable fields default to the old values.
        (
            json!({"storage": {"size": "10Gi"}, "serverIdBase": 1000, "engine": "MySQL", "writeMode": "MultiWriter", "paused": true}),
            "",
        ),
        (json!({"storage": {"size": "10Gi"}}), ""),
    ];
    for (spec, want) in cases {
        let new = pair(spec.clone());
        let result = admission::admit(&new, Some(&old));
        if want.is_empty() {
            result.unwrap_or_else(|e| panic!("{spec}: {e}"));
        } else {
            let got = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(got.contains(want), "{spec}: expected {want:?} in {got:?}");
        }
    }
    // An old object that relied on the default is protected as well.
    let defaulted_old = pair(json!({}));
    let changed = pair(json!({"serverIdBase": 1001}));
    assert!(rejection(&changed, Some(&defaulted_old)).contains("serverIdBase is immutable"));
}

#[test]
fn wrong_kind_is_named() {
    let mut obj = pair(json!({}));
    obj["kind"] = json!("Deployment");
    match admission::admit(&obj, None) {
        Err(AdmissionError::WrongKind { found, .. }) => assert!(found.contains("Deployment")),
        other => panic!("expected WrongKind, got {other:?}"),
    }
}
