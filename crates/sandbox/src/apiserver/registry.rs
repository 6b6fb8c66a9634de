//! Which resources the stand-in serves: the built-in kinds the operator and
//! kubectl use, plus every resource of a stored CustomResourceDefinition.

use serde_json::{Value, json};

/// One served resource (a group/version/plural).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    /// API group, empty for the core group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name, as in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`kubectl get myaa`).
    pub short_names: Vec<String>,
    /// Categories (`kubectl get mysql`).
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource kept apart from the main resource.
    pub status_subresource: bool,
    /// For custom resources: the version's `openAPIV3Schema`.
    pub schema: Option<Value>,
    /// For custom resources: `additionalPrinterColumns`.
    pub printer_columns: Vec<Value>,
}

impl ResourceInfo {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key, independent of the version.
    pub fn key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }

    /// The entry of an `APIResourceList`.
    pub fn discovery(&self) -> Vec<Value> {
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        status_subresource: status,
        schema: None,
        printer_columns: vec![],
    }
}

/// The built-in resources served.
pub fn builtins() -> Vec<ResourceInfo> {
    vec![
        builtin("", "v1", "namespaces", "Namespace", false, &["ns"], true),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
        builtin("", "v1", "secrets", "Secret", true, &[], false),
        builtin("", "v1", "services", "Service", true, &["svc"], true),
        builtin("", "v1", "pods", "Pod", true, &["po"], true),
        builtin("", "v1", "endpoints", "Endpoints", true, &["ep"], false),
        builtin("", "v1", "events", "Event", true, &["ev"], false),
        builtin(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            true,
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            true,
        ),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
        ),
        builtin(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
        ),
        builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
        ),
        builtin(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            true,
            &[],
            false,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
        ),
    ]
}

/// The resources a stored CRD serves (one per served version).
pub fn from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let Some(versions) = spec["versions"].as_array() else {
        return vec![];
    };
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| ResourceInfo {
            group: spec["group"].as_str().unwrap_or_default().into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            plural: names["plural"].as_str().unwrap_or_default().into(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| {
                    names["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                }),
            kind: names["kind"].as_str().unwrap_or_default().into(),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status_subresource: v["subresources"]["status"].is_object(),
            schema: v["schema"]["openAPIV3Schema"]
                .as_object()
                .map(|_| v["schema"]["openAPIV3Schema"].clone()),
            printer_columns: v["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}
