//! The committed CRD matches the code, and every field is documented.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use mysql_aa_operator::admission;
use mysql_aa_operator::cli::crd_yaml;
use serde_json::Value;

const CRD_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crds/mysqlactiveactives.mysql-aa.io.yaml"
);

#[test]
fn committed_crd_matches_the_code() {
    let generated = crd_yaml().unwrap();
    let committed = std::fs::read_to_string(CRD_PATH).unwrap_or_default();
    assert!(
        generated == committed,
        "crds/mysqlactiveactives.mysql-aa.io.yaml is stale: run `cargo run -- crd > crds/mysqlactiveactives.mysql-aa.io.yaml`"
    );
}

/// Walks the schema; returns the paths of properties without a description.
fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let p = format!("{path}.{name}");
            let described = prop
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            // apiVersion, kind and metadata are the API server's own.
            let standard =
                path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&name.as_str());
            if !described && !standard {
                out.push(p.clone());
            }
            undocumented(prop, &p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, &format!("{path}[]"), out);
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        undocumented(extra, &format!("{path}{{}}"), out);
    }
}

#[test]
fn every_field_has_a_description_for_kubectl_explain() {
    let schema = admission::schema();
    let mut missing = Vec::new();
    undocumented(&schema, "", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:#?}"
    );
    // And the walk did see the fields (the test would pass on an empty schema otherwise).
    let spec = &schema["properties"]["spec"]["properties"];
    for field in [
        "engine",
        "writeMode",
        "serverIdBase",
        "mysqldConfig",
        "failover",
        "placement",
        "pvcRetentionPolicy",
        "paused",
    ] {
        assert!(
            spec.get(field).is_some(),
            "spec.{field} missing from the schema"
        );
    }
}

#[test]
fn crd_names_columns_and_subresources() {
    let crd: Value = serde_saphyr::from_str(&crd_yaml().unwrap()).unwrap();
    assert_eq!(crd["spec"]["group"], "mysql-aa.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "MySQLActiveActive");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "myaa");
    assert_eq!(crd["spec"]["names"]["categories"][0], "mysql");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in ["Ready", "Writer", "Mode", "Lag", "Durability", "Age"] {
        assert!(
            columns.contains(&want),
            "printer column {want} missing: {columns:?}"
        );
    }
}

/// The description of the property at `path` (dot-separated) of the schema.
fn description(schema: &Value, path: &str) -> String {
    let mut node = schema;
    for part in path.split('.') {
        node = &node["properties"][part];
    }
    node["description"].as_str().unwrap_or_default().to_string()
}

/// What `kubectl explain` says matches what the code does: a switchover
/// request is matched against `status.answeredSwitchoverRequest` (the pair
/// loop reads that field), and the detection window counts unreachable
/// time only (a pod that is only not ready does not start it).
#[test]
fn kubectl_explain_says_what_the_code_does() {
    let schema = admission::schema();
    let request_id = description(&schema, "spec.switchover.requestId");
    assert!(
        request_id.contains("status.answeredSwitchoverRequest")
            && !request_id.contains("lastSwitchover.requestId"),
        "{request_id}"
    );
    assert!(
        !description(&schema, "status.answeredSwitchoverRequest").is_empty(),
        "the field it names exists"
    );
    let window = description(&schema, "spec.failover.detectionWindowSeconds");
    assert!(
        window.contains("unreachable") && !window.contains("unreachable or not ready"),
        "{window}"
    );
}
