//! The API server's audit log, read back: who asked for what and what the
//! authorizer answered. The RBAC proof (tests/rbac.rs) and the steady-state
//! test (no writes when nothing changes) read it.

use std::path::Path;

use serde_json::Value;

/// One audited request (stage ResponseComplete, or ResponseStarted of a
/// watch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// The user name the API server authenticated.
    pub user: String,
    /// The Kubernetes verb (get, list, watch, create, update, patch, delete, ...).
    pub verb: String,
    /// The API group ("" for core).
    pub group: String,
    /// The resource (plural), with `/subresource` when there is one.
    pub resource: String,
    /// The namespace, when namespaced.
    pub namespace: String,
    /// The object name, when one was named.
    pub name: String,
    /// The HTTP status code of the answer.
    pub code: u16,
    /// The request URI.
    pub uri: String,
}

impl AuditEvent {
    /// Whether the request changes something.
    pub fn is_write(&self) -> bool {
        !matches!(self.verb.as_str(), "get" | "list" | "watch")
    }
}

fn parse(line: &str) -> Option<AuditEvent> {
    let v: Value = serde_json::from_str(line).ok()?;
    // A watch is long-running: its ResponseStarted is what says it was
    // allowed (its ResponseComplete comes when it ends).
    let long_running = v["stage"] == "ResponseStarted" && v["verb"] == "watch";
    if v["stage"] != "ResponseComplete" && v["stage"] != "Panic" && !long_running {
        return None;
    }
    let o = &v["objectRef"];
    let s = |x: &Value| x.as_str().unwrap_or("").to_string();
    let mut resource = s(&o["resource"]);
    if let Some(sub) = o["subresource"].as_str() {
        resource = format!("{resource}/{sub}");
    }
    Some(AuditEvent {
        user: s(&v["user"]["username"]),
        verb: s(&v["verb"]),
        group: s(&o["apiGroup"]),
        resource,
        namespace: s(&o["namespace"]),
        name: s(&o["name"]),
        code: v["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
        uri: s(&v["requestURI"]),
    })
}

/// Every completed request in the audit log at `path`, oldest first.
pub fn read(path: &Path) -> Vec<AuditEvent> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_lines_parse() {
        let line = r#"{"kind":"Event","level":"Metadata","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods/orders-0/status","verb":"patch","user":{"username":"system:serviceaccount:x:y"},"objectRef":{"resource":"pods","namespace":"shop","name":"orders-0","apiVersion":"v1","subresource":"status"},"responseStatus":{"code":403}}"#;
        let e = parse(line).unwrap();
        assert_eq!(e.resource, "pods/status");
        assert_eq!(
            (e.verb.as_str(), e.code, e.group.as_str()),
            ("patch", 403, "")
        );
        assert!(e.is_write());
        assert!(parse(&line.replace("ResponseComplete", "ResponseStarted")).is_none());
    }
}
