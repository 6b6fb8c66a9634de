//! `Table` responses for kubectl (`Accept: ...;as=Table`): the name, the
//! CRD's printer columns (a JSONPath subset), and the age.

use serde_json::{Value, json};

use super::registry::ResourceInfo;

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0]`,
/// `.a[?(@.k=="v")].b`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("[?(@.") {
            let close = r.find(")]")?;
            let cond = &r[..close];
            let (k, v) = cond.split_once("==")?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            cur = cur
                .as_array()?
                .iter()
                .find(|e| e[k.trim()].as_str() == Some(v))?;
            rest = &r[close + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let idx: usize = r[..close].parse().ok()?;
            cur = cur.as_array()?.get(idx)?;
            rest = &r[close + 1..];
        } else {
            return None;
        }
    }
    Some(cur)
}

fn cell(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => json!("<none>"),
        Some(Value::String(s)) => json!(s),
        Some(other) => other.clone(),
    }
}

fn age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = jiff::Timestamp::now().duration_since(t).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A `meta.k8s.io/v1` Table of `items`.
pub fn table(ri: &ResourceInfo, items: &[Value], rv: u64) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}),
    ];
    let custom: Vec<&Value> = ri
        .printer_columns
        .iter()
        .filter(|c| c["jsonPath"] != ".metadata.creationTimestamp")
        .collect();
    for c in &custom {
        columns.push(json!({
            "name": c["name"], "type": c["type"], "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    columns.push(
        json!({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0}),
    );
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &custom {
                cells.push(cell(json_path(o, c["jsonPath"].as_str().unwrap_or(""))));
            }
            cells.push(json!(age(o["metadata"]["creationTimestamp"].as_str())));
            json!({"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"],
            }})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_column_paths() {
        let o = json!({"status": {"writer": "db-0", "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}, "spec": {"ports": [{"port": 3306}]}});
        assert_eq!(json_path(&o, ".status.writer"), Some(&json!("db-0")));
        assert_eq!(
            json_path(&o, r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(&json!("True"))
        );
        assert_eq!(json_path(&o, ".spec.ports[0].port"), Some(&json!(3306)));
        assert_eq!(json_path(&o, ".status.lag"), None);
    }
}
