//! RBAC authorization, as the API server's RBAC authorizer does it, for the
//! users the stand-in is told to restrict (`Config::rbac_users`); every
//! other caller (the tests' own admin client) is unrestricted, like
//! `system:masters` on a real cluster.
//!
//! A request is allowed when a rule of a Role bound in the request's
//! namespace (RoleBinding) or of a ClusterRole bound cluster-wide
//! (ClusterRoleBinding) names its API group, resource (with `/status` for the
//! subresource) and verb, `*` matching anything, and `resourceNames`, when
//! set, contains the object's name. ServiceAccount subjects are the users
//! `system:serviceaccount:<namespace>:<name>`. Discovery (non-resource URLs)
//! is open to every user, as `system:discovery` is.

use serde_json::Value;

use super::selectors::{FieldSelector, LabelSelector};
use super::store::Store;

/// One request, as RBAC sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// The user.
    pub user: &'a str,
    /// Verb: get, list, watch, create, update, patch, delete, ...
    pub verb: &'a str,
    /// API group ("" for core).
    pub group: &'a str,
    /// Resource plural, `plural/status` for the subresource.
    pub resource: &'a str,
    /// Namespace of the request, if any.
    pub namespace: Option<&'a str>,
    /// Object name, if the URL names one.
    pub name: Option<&'a str>,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn subject_is(subject: &Value, user: &str) -> bool {
    match subject["kind"].as_str() {
        Some("ServiceAccount") => {
            format!(
                "system:serviceaccount:{}:{}",
                subject["namespace"].as_str().unwrap_or_default(),
                subject["name"].as_str().unwrap_or_default()
            ) == user
        }
        Some("User") => subject["name"].as_str() == Some(user),
        _ => false,
    }
}

/// Whether `rule` (a PolicyRule) allows the request.
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let any = |list: Vec<&str>, want: &str| list.iter().any(|x| *x == "*" || *x == want);
    let (plural, sub) = a.resource.split_once('/').unwrap_or((a.resource, ""));
    let resources = strings(&rule["resources"]);
    let resource_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == a.resource
            || (!sub.is_empty() && *r == format!("*/{sub}"))
            || (sub.is_empty() && *r == plural)
    });
    let names = strings(&rule["resourceNames"]);
    let name_ok = names.is_empty() || a.name.is_some_and(|n| names.contains(&n));
    any(strings(&rule["apiGroups"]), a.group)
        && resource_ok
        && any(strings(&rule["verbs"]), a.verb)
        && name_ok
}

fn list(store: &Store, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
    match store.find(group, plural) {
        Some(ri) => store.list(ri, ns, &LabelSelector::default(), &FieldSelector::default()),
        None => vec![],
    }
}

fn role_rules(store: &Store, binding: &Value, binding_ns: Option<&str>) -> Vec<Value> {
    let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
    let role = match binding["roleRef"]["kind"].as_str() {
        Some("ClusterRole") => list(store, "rbac.authorization.k8s.io", "clusterroles", None),
        Some("Role") => list(store, "rbac.authorization.k8s.io", "roles", binding_ns),
        _ => vec![],
    }
    .into_iter()
    .find(|r| r["metadata"]["name"].as_str() == Some(name));
    role.map(|r| r["rules"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// The rules that apply to `user` in `namespace` (cluster-wide rules too).
pub fn rules_for(store: &Store, user: &str, namespace: Option<&str>) -> Vec<Value> {
    let bound = |b: &Value| {
        b["subjects"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| subject_is(s, user)))
    };
    let mut rules = Vec::new();
    for b in list(
        store,
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        None,
    ) {
        if bound(&b) {
            rules.extend(role_rules(store, &b, None));
        }
    }
    if let Some(ns) = namespace {
        for b in list(store, "rbac.authorization.k8s.io", "rolebindings", Some(ns)) {
            if bound(&b) {
                rules.extend(role_rules(store, &b, Some(ns)));
            }
        }
    }
    rules
}

/// `Ok` when allowed; else the message a real API server gives.
pub fn authorize(store: &Store, a: &Attributes) -> Result<(), String> {
    if rules_for(store, a.user, a.namespace)
        .iter()
        .any(|r| rule_allows(r, a))
    {
        return Ok(());
    }
    let (plural, sub) = a.resource.split_once('/').unwrap_or((a.resource, ""));
    let what = match a.name {
        Some(n) => format!("{plural} {n:?}"),
        None => plural.to_string(),
    };
    let sub = if sub.is_empty() {
        String::new()
    } else {
        format!("/{sub}")
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".into(),
    };
    Err(format!(
        "{what} is forbidden: User {:?} cannot {} resource \"{plural}{sub}\" in API group {:?} {scope}",
        a.user, a.verb, a.group
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        name: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            user: "u",
            verb,
            group,
            resource,
            namespace: Some("ns"),
            name,
        }
    }

    #[test]
    fn rules_match_group_resource_verb_and_names() {
        let rule = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]});
        assert!(rule_allows(&rule, &at("get", "", "pods", Some("p"))));
        assert!(!rule_allows(&rule, &at("patch", "", "pods", Some("p"))));
        assert!(!rule_allows(&rule, &at("get", "apps", "pods", Some("p"))));
        assert!(
            !rule_allows(&rule, &at("get", "", "pods/status", Some("p"))),
            "subresources are separate"
        );
        let status =
            json!({"apiGroups": ["x.io"], "resources": ["things/status"], "verbs": ["patch"]});
        assert!(rule_allows(
            &status,
            &at("patch", "x.io", "things/status", Some("t"))
        ));
        assert!(!rule_allows(
            &status,
            &at("patch", "x.io", "things", Some("t"))
        ));
        let star = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        assert!(rule_allows(
            &star,
            &at("delete", "apps", "statefulsets", None)
        ));
        let named = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["a"]});
        assert!(rule_allows(&named, &at("get", "", "secrets", Some("a"))));
        assert!(!rule_allows(&named, &at("get", "", "secrets", Some("b"))));
        assert!(!rule_allows(&named, &at("get", "", "secrets", None)));
    }
}
