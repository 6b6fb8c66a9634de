//! The Helm chart and the plain manifests, checked with real tools: the
//! real Helm v4 CLI (built by scripts/install-kubernetes) renders and lints
//! the chart for several value sets with values-schema enforcement;
//! every rendered object must parse into its Kubernetes type and back
//! without losing a field; `kubectl kustomize` builds deploy/; derived
//! files must match what generates them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::process::Command;

use common::{chart_dir, chart_docs, chart_text, helm_result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `helm <args> <chart> --values <values>`: (success, output).
fn helm_chart(args: &[&str], values: &Value) -> (bool, String) {
    let chart = chart_dir();
    let mut all: Vec<&str> = args.to_vec();
    all.push(&chart);
    let (ok, out, err) = helm_result(None, &all, values);
    (ok, format!("{out}{err}"))
}

/// Drops nulls and empty objects/arrays, which serializers may add or omit.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(_, v)| {
                    !(v.is_null()
                        || v.as_object().is_some_and(|o| o.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty()))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Parses `doc` as `T` and checks nothing was lost (a misspelt field would be).
fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!("{} does not parse: {e}", doc["kind"]);
    });
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        normalize(&back),
        normalize(doc),
        "{} {} lost or changed fields in its type",
        doc["kind"],
        doc["metadata"]["name"]
    );
    typed
}

/// Every document of a render, checked against its type; returns them.
fn render_and_parse(values: &Value) -> Vec<Value> {
    let docs = chart_docs(&values.to_string());
    for d in &docs {
        match d["kind"].as_str().unwrap() {
            "CustomResourceDefinition" => drop(round_trip::<CustomResourceDefinition>(d)),
            "Deployment" => drop(round_trip::<Deployment>(d)),
            "ServiceAccount" => drop(round_trip::<ServiceAccount>(d)),
            "ClusterRole" => drop(round_trip::<ClusterRole>(d)),
            "ClusterRoleBinding" => drop(round_trip::<ClusterRoleBinding>(d)),
            "Role" => drop(round_trip::<Role>(d)),
            "RoleBinding" => drop(round_trip::<RoleBinding>(d)),
            "Service" => drop(round_trip::<Service>(d)),
            "NetworkPolicy" => drop(round_trip::<NetworkPolicy>(d)),
            "ServiceMonitor" => {
                assert_eq!(d["apiVersion"], "monitoring.coreos.com/v1");
                assert_eq!(d["spec"]["endpoints"][0]["port"], "metrics");
            }
            "ConfigMap" => drop(round_trip::<k8s_openapi::api::core::v1::ConfigMap>(d)),
            "PrometheusRule" => {
                assert_eq!(d["apiVersion"], "monitoring.coreos.com/v1");
                assert!(d["spec"]["groups"][0]["rules"].as_array().is_some());
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    docs
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    k.sort();
    k
}

fn deployment(docs: &[Value]) -> Deployment {
    let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    serde_json::from_value(d.clone()).unwrap()
}

#[test]
fn default_values_render_a_restricted_cluster_wide_operator() {
    let docs = render_and_parse(&json!({}));
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole/mysql-aa-operator",
            "ClusterRoleBinding/mysql-aa-operator",
            "CustomResourceDefinition/mysqlactiveactives.mysql-aa.io",
            "Deployment/mysql-aa-operator",
            "Role/mysql-aa-operator-leader-election",
            "RoleBinding/mysql-aa-operator-leader-election",
            "Service/mysql-aa-operator-metrics",
            "ServiceAccount/mysql-aa-operator",
        ]
    );
    let d = deployment(&docs);
    let pod = d.spec.template.spec.unwrap();
    // The "restricted" Pod Security Standard.
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.unwrap() > 0);
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let c = &pod.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    assert!(pod.volumes.is_none(), "no volumes, so no hostPath");
    assert_eq!(
        c.liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        c.readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/readyz")
    );
    assert!(c.resources.as_ref().unwrap().limits.is_some());
    let args = c.args.clone().unwrap();
    assert!(args.contains(&"--leader-election=true".to_string()));
    // Every flag the chart passes is one the operator accepts.
    let out = Command::new(env!("CARGO_BIN_EXE_mysql-aa-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for a in args.iter().skip(1) {
        let flag = a.split('=').next().unwrap();
        assert!(help.contains(flag), "the operator has no {flag}");
    }
    // The CRD is kept on uninstall and is the generated one.
    let crd = docs
        .iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .unwrap();
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let generated: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{ROOT}/crds/mysqlactiveactives.mysql-aa.io.yaml"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(crd["spec"], generated["spec"]);
}

#[test]
fn namespaced_mode_grants_roles_in_the_listed_namespaces_only() {
    let docs = render_and_parse(&json!({"watchNamespaces": ["shop", "billing"]}));
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding")
    );
    let mut roles: Vec<(&str, &str)> = docs
        .iter()
        .filter(|d| d["kind"] == "Role")
        .map(|d| {
            (
                d["metadata"]["namespace"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("billing", "mysql-aa-operator"),
            ("mysql-aa-system", "mysql-aa-operator-leader-election"),
            ("shop", "mysql-aa-operator"),
        ]
    );
    let env = deployment(&docs).spec.template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let ns = env
        .iter()
        .find(|e| e.name == "MYSQL_AA_NAMESPACES")
        .unwrap();
    assert_eq!(ns.value.as_deref(), Some("shop,billing"));
}

#[test]
fn optional_objects_follow_their_values() {
    let docs = render_and_parse(
        &json!({"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}}),
    );
    let sm = docs.iter().find(|d| d["kind"] == "ServiceMonitor").unwrap();
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    let docs = render_and_parse(&json!({
        "networkPolicy": {"enabled": true, "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]}
    }));
    let np: NetworkPolicy = serde_json::from_value(
        docs.iter()
            .find(|d| d["kind"] == "NetworkPolicy")
            .unwrap()
            .clone(),
    )
    .unwrap();
    let spec = np.spec.unwrap();
    assert_eq!(spec.ingress.unwrap().len(), 1);
    let egress_ports: Vec<String> = spec
        .egress
        .unwrap()
        .iter()
        .flat_map(|e| e.ports.clone().unwrap_or_default())
        .map(|p| format!("{:?}", p.port.unwrap()))
        .collect();
    for port in ["53", "443", "6443", "3306"] {
        assert!(
            egress_ports.iter().any(|p| p.contains(port)),
            "{egress_ports:?}"
        );
    }
    let docs = render_and_parse(&json!({"replicas": 2, "crds": {"install": false}}));
    assert_eq!(deployment(&docs).spec.replicas, Some(2));
    assert!(!docs.iter().any(|d| d["kind"] == "CustomResourceDefinition"));
}

#[test]
fn the_chart_lints_strictly_for_every_value_set() {
    for values in [
        json!({}),
        json!({"watchNamespaces": ["shop"]}),
        json!({"serviceMonitor": {"enabled": true}}),
        json!({"networkPolicy": {"enabled": true}}),
        json!({"prometheusRule": {"enabled": true}}),
        json!({"dashboard": {"enabled": true, "annotations": {"grafana_folder": "Databases"}}}),
        json!({"replicas": 2}),
    ] {
        let (ok, out) = helm_chart(&["lint", "--strict", "--kube-version", "v1.37.2"], &values);
        assert!(ok, "lint {values}: {out}");
        eprintln!("lint {values}: {}", out.lines().last().unwrap_or_default());
    }
}

#[test]
fn the_values_schema_rejects_what_cannot_work() {
    for (values, why) in [
        (json!({"replica": 2}), "replica"),
        (
            json!({"image": {"repository": "x", "pullPolicy": "Sometimes"}}),
            "pullPolicy",
        ),
        (
            json!({"replicas": 2, "leaderElection": {"enabled": false}}),
            "enabled",
        ),
        (
            json!({"watchNamespaces": ["Not_A_Namespace"]}),
            "watchNamespaces",
        ),
        (
            json!({"serviceMonitor": {"enabled": true}, "metrics": {"service": {"enabled": false}}}),
            "enabled",
        ),
        (json!({"operator": {"addressMode": "magic"}}), "addressMode"),
    ] {
        let (ok, out) = helm_chart(&["template", "mysql-aa-operator"], &values);
        assert!(!ok, "{values} rendered");
        assert!(out.contains(why), "{values}: {out}");
    }
    for values in [json!({"replicas": 3}), json!({"replicas": 0})] {
        let (ok, out) = helm_chart(&["template", "mysql-aa-operator"], &values);
        assert!(ok, "{values}: {out}");
    }
}

#[test]
fn plain_manifests_match_the_chart_and_kustomize_builds_them() {
    let committed =
        std::fs::read_to_string(format!("{ROOT}/deploy/mysql-aa-operator.yaml")).unwrap();
    let body: String = committed
        .lines()
        .skip_while(|l| {
            l.starts_with("# Generated by scripts/generate") || l.starts_with("# values (")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body.trim_end(),
        chart_text("{}").trim_end(),
        "deploy/mysql-aa-operator.yaml drifted from the chart: run scripts/generate"
    );
    let out = Command::new(sandbox::controlplane::binary("kubectl").unwrap())
        .args(["kustomize", &format!("{ROOT}/deploy")])
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let ns = docs.iter().find(|d| d["kind"] == "Namespace").unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_eq!(docs.len(), chart_docs("{}").len() + 1);
}

#[test]
fn the_charts_crd_copy_is_the_generated_crd() {
    let generated = mysql_aa_operator::cli::crd_yaml().unwrap();
    let copy = std::fs::read_to_string(format!(
        "{ROOT}/charts/mysql-aa-operator/files/mysqlactiveactives.mysql-aa.io.yaml"
    ))
    .unwrap();
    assert_eq!(
        copy, generated,
        "the chart's CRD copy drifted: run scripts/generate"
    );
}

fn argocd_health(obj: &Value) -> (String, String) {
    let mut child = Command::new(format!("{ROOT}/.cache/venv/bin/python"))
        .arg(format!("{ROOT}/scripts/argocd_health.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run scripts/install-test-tools first");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(obj.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["status"].as_str().unwrap().to_string(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn the_argocd_health_check_reads_ready_and_observed_generation() {
    let cond = |t: &str, s: &str, r: &str| json!({"type": t, "status": s, "reason": r, "message": format!("{t} {r}")});
    let pair = |generation: i64, observed: Option<i64>, conditions: Vec<Value>| {
        let mut p = json!({"metadata": {"name": "orders", "generation": generation}, "spec": {}});
        if let Some(o) = observed {
            p["status"] = json!({"observedGeneration": o, "conditions": conditions});
        }
        p
    };
    let cases = [
        (pair(1, None, vec![]), "Progressing"),
        (
            pair(3, Some(2), vec![cond("Ready", "True", "PairReady")]),
            "Progressing",
        ),
        (
            pair(3, Some(3), vec![cond("Ready", "True", "PairReady")]),
            "Healthy",
        ),
        (
            pair(
                3,
                Some(3),
                vec![
                    cond("Ready", "True", "PairReady"),
                    cond("ConflictDetected", "True", "TablesDiverged"),
                ],
            ),
            "Degraded",
        ),
        (
            pair(
                3,
                Some(3),
                vec![
                    cond("Ready", "True", "PairReady"),
                    cond("ConflictDetected", "False", "NoConflict"),
                ],
            ),
            "Healthy",
        ),
        (
            pair(
                1,
                Some(1),
                vec![cond("Ready", "False", "CredentialsMissing")],
            ),
            "Degraded",
        ),
        (
            pair(
                1,
                Some(1),
                vec![cond("Ready", "False", "ReplicationHalted")],
            ),
            "Degraded",
        ),
        (
            pair(1, Some(1), vec![cond("Ready", "False", "StepFailed")]),
            "Degraded",
        ),
        (
            pair(1, Some(1), vec![cond("Ready", "False", "Paused")]),
            "Suspended",
        ),
        (
            pair(1, Some(1), vec![cond("Ready", "False", "Reconciling")]),
            "Progressing",
        ),
    ];
    for (obj, want) in cases {
        let (status, message) = argocd_health(&obj);
        assert_eq!(status, want, "{obj}: {message}");
    }
}

const PROMTOOL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/.cache/tools/prometheus/usr/bin/promtool"
);

/// Runs the real promtool (scripts/install-test-tools) in `dir`.
fn promtool(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool: run scripts/install-test-tools");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

/// A fresh directory under .cache for files a tool reads (removed by the
/// test once the tool passed; kept for a look when it failed).
fn scratch_dir(what: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(ROOT).join(format!(
        ".cache/scratch/{what}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The PrometheusRule the chart renders with `values`.
fn prometheus_rule(values: &Value) -> Value {
    render_and_parse(values)
        .into_iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule")
}

fn alert_names(rule: &Value) -> Vec<String> {
    rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect()
}

/// Issue 15: the alerts the chart installs pass `promtool check rules`
/// (expressions and annotation templates), and `promtool test rules` shows
/// each one firing on the series of its fault and silent otherwise
/// (tests/alerts/alerts.test.yaml).
#[test]
fn the_alerts_pass_promtool_check_and_their_unit_tests() {
    let rule = prometheus_rule(&json!({"prometheusRule": {"enabled": true}}));
    let dir = scratch_dir("alerts");
    std::fs::write(
        dir.as_path().join("full.yaml"),
        serde_json::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    let checked = promtool(dir.as_path(), &["check", "rules", "full.yaml"]);
    let names = alert_names(&rule);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", names.len())),
        "{checked}"
    );
    // The unit tests compare labels only: the annotations (checked above)
    // are left out of what they evaluate.
    let mut bare = rule["spec"].clone();
    for r in bare["groups"][0]["rules"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("annotations");
    }
    std::fs::write(
        dir.as_path().join("rules.yaml"),
        serde_json::to_string(&bare).unwrap(),
    )
    .unwrap();
    let tests = std::fs::read_to_string(format!("{ROOT}/tests/alerts/alerts.test.yaml")).unwrap();
    std::fs::write(dir.as_path().join("alerts.test.yaml"), &tests).unwrap();
    let out = promtool(dir.as_path(), &["test", "rules", "alerts.test.yaml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    // Every alert is shown both firing and silent.
    let cases: Value = serde_saphyr::from_str(&tests).unwrap();
    let evals: Vec<&Value> = cases["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .collect();
    for name in &names {
        let of = |firing: bool| {
            evals.iter().any(|e| {
                e["alertname"] == name.as_str()
                    && e["exp_alerts"].as_array().unwrap().is_empty() != firing
            })
        };
        assert!(of(true), "{name} is never shown firing");
        assert!(of(false), "{name} is never shown silent");
        // Each links to its runbook entry.
        let r = rule["spec"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["alert"] == name.as_str())
            .unwrap();
        assert!(
            r["annotations"]["runbook_url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("README.md#{}", name.to_lowercase())),
            "{r}"
        );
        for a in ["summary", "description"] {
            assert!(
                !r["annotations"][a].as_str().unwrap().is_empty(),
                "{name} {a}"
            );
        }
    }
    eprintln!("{} alerts: {out}", names.len());
}

/// Every metric the alerts and the dashboard read is one the operator
/// exports (a renamed metric would leave an alert silent forever).
#[test]
fn the_alerts_read_only_metrics_the_operator_exports() {
    use mysql_aa_operator::controller::gauges::{NodeGauges, PairGauges};
    use mysql_aa_operator::controller::metrics::{Metrics, NodeLabels, PairLabels};
    // Families show in the exposition once they have a series: one of each.
    let m = Metrics::default();
    let gauges = PairGauges {
        conditions: vec![("Ready", 1)],
        writable_nodes: 1,
        writers_allowed: 1,
        durability: None,
        nodes: vec![NodeGauges {
            name: "orders-0".into(),
            writer: true,
            errant: false,
        }],
        lag_threshold_seconds: 30,
    };
    m.record_pair("shop", "orders", &gauges, 0);
    m.count_failover("shop", "orders", "promoted");
    Metrics::count(&m.switchovers, "Succeeded");
    Metrics::count(&m.reconciles, "ok");
    m.role_change_seconds
        .get_or_create(&mysql_aa_operator::controller::metrics::KindLabels {
            kind: "failover".into(),
        })
        .observe(1.0);
    let node = NodeLabels {
        namespace: "shop".into(),
        pair: "orders".into(),
        node: "orders-0".into(),
    };
    for family in [
        &m.lag_seconds,
        &m.io_running,
        &m.sql_running,
        &m.applier_halted,
    ] {
        family.get_or_create(&node).set(0);
    }
    let _ = m.skipped_transactions.get_or_create(&node);
    m.diverged_tables
        .get_or_create(&PairLabels {
            namespace: "shop".into(),
            pair: "orders".into(),
        })
        .set(0);
    let exported = m.encode();
    let families: Vec<&str> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(families.len() > 10, "{exported}");
    let alerts = ["alerts.yaml", "dashboard.json"]
        .map(|f| {
            std::fs::read_to_string(format!("{ROOT}/charts/mysql-aa-operator/files/{f}")).unwrap()
        })
        .join("\n");
    let mut used: Vec<&str> = alerts
        .match_indices("mysqlaa_")
        .map(|(i, _)| {
            let rest = &alerts[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| n.len() > "mysqlaa_".len())
        .collect();
    used.sort();
    used.dedup();
    assert!(used.len() > 10, "{used:?}");
    for name in used {
        let family = ["_total", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            families.contains(&family),
            "{name} is not exported: {families:?}"
        );
    }
}

/// The values give each alert its `for`, severity and labels, and drop
/// the alerts a user does not want.
#[test]
fn the_alerts_follow_their_values() {
    let rule = prometheus_rule(&json!({"prometheusRule": {
        "enabled": true,
        "labels": {"release": "prom"},
        "alertLabels": {"team": "db"},
        "disabled": ["MySQLAAVersionMismatch"],
        "for": {"MySQLAAReplicaLagging": "5m"},
        "severity": {"MySQLAAFailover": "critical"},
        "window": "1h",
        "operatorJob": "myaa",
        "staleObservationSeconds": 300
    }}));
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let get = |n: &str| rules.iter().find(|r| r["alert"] == n).cloned();
    assert!(get("MySQLAAVersionMismatch").is_none());
    assert_eq!(get("MySQLAAReplicaLagging").unwrap()["for"], "5m");
    assert_eq!(get("MySQLAANoWriter").unwrap()["for"], "1m");
    let failover = get("MySQLAAFailover").unwrap();
    assert_eq!(failover["labels"]["severity"], "critical");
    assert_eq!(failover["labels"]["team"], "db");
    assert!(failover["expr"].as_str().unwrap().contains("[1h]"));
    assert!(
        get("MySQLAAOperatorDown").unwrap()["expr"]
            .as_str()
            .unwrap()
            .contains(r#"up{job="myaa"}"#)
    );
    assert!(
        get("MySQLAAOperatorNotReconciling").unwrap()["expr"]
            .as_str()
            .unwrap()
            .ends_with("> 300")
    );
    for r in rules {
        assert_eq!(r["labels"]["team"], "db", "{r}");
    }
    // A misspelt alert name or an unknown severity is refused.
    for (values, why) in [
        (
            json!({"prometheusRule": {"severity": {"MySQLAAFailover": "page"}}}),
            "severity",
        ),
        (
            json!({"prometheusRule": {"for": {"MySQLAAFailover": "soon"}}}),
            "for",
        ),
    ] {
        let (ok, out) = helm_chart(&["template", "mysql-aa-operator"], &values);
        assert!(!ok, "{values} rendered");
        assert!(out.contains(why), "{values}: {out}");
    }
}

/// Issue 15: the dashboard the chart installs (a ConfigMap for Grafana's
/// sidecar): every PromQL query in it, with Grafana's variables given
/// values, passes `promtool check rules` (as recording rules); each panel
/// says what it shows, and per-pair queries follow the namespace and pair
/// chosen at the top.
#[test]
fn the_dashboards_queries_pass_promtool() {
    let docs = render_and_parse(&json!({"dashboard": {"enabled": true}}));
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the dashboard ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: Value =
        serde_json::from_str(cm["data"]["mysql-aa-pairs.json"].as_str().unwrap()).unwrap();
    let mut queries: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        assert!(
            !panel["description"].as_str().unwrap_or_default().is_empty(),
            "{title} says nothing of what it shows"
        );
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let global = ["switchovers", "role_change", "reconciles"]
                .iter()
                .any(|m| expr.contains(m));
            assert!(
                global || expr.contains(r#"namespace="$namespace", pair=~"$pair""#),
                "{title}: {expr} ignores the chosen pair"
            );
            queries.push(expr.to_string());
        }
    }
    // The variables' label_values(<selector>, label): the selector is PromQL.
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(sel, _)| sel.to_string())
                .unwrap();
            queries.push(inner);
        }
    }
    assert!(queries.len() >= 15, "{queries:?}");
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let q = q
                .replace("$namespace", "shop")
                .replace("$pair", "orders")
                .replace("$__rate_interval", "2m");
            json!({"record": format!("dashboard:query_{i}"), "expr": q})
        })
        .collect();
    let dir = scratch_dir("dashboard");
    std::fs::write(
        dir.join("queries.yaml"),
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let out = promtool(&dir, &["check", "rules", "queries.yaml"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
    eprintln!("{} dashboard queries: {out}", queries.len());
}
