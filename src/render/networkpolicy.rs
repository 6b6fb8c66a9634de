//! The pair's optional NetworkPolicy (`spec.networkPolicy`): nothing
//! reaches the servers but the pair's own pods, the operator and the
//! clients the spec names.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::agent::AGENT_PORT;
use crate::api::MySQLActiveActive;

use super::RenderOptions;
use super::meta::{LABEL_NAME, Names, object_meta, selector_labels};
use super::mycnf::MYSQL_PORT;

/// The `app.kubernetes.io/name` of the operator's pods (the Helm chart's).
pub const OPERATOR_APP_NAME: &str = "mysql-aa-operator";

/// The label the API server gives every namespace, its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn ports(numbers: &[u16]) -> Vec<NetworkPolicyPort> {
    numbers
        .iter()
        .map(|p| NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(*p))),
            protocol: Some("TCP".into()),
            ..NetworkPolicyPort::default()
        })
        .collect()
}

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

/// The operator's pods, where the spec does not say: the chart's pods in
/// the operator's namespace (in any namespace when it is not known).
fn default_operator(options: &RenderOptions) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(match &options.operator_namespace {
            Some(ns) => selector(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                ns.clone(),
            )])),
            None => LabelSelector::default(),
        }),
        pod_selector: Some(selector(BTreeMap::from([(
            LABEL_NAME.to_string(),
            OPERATOR_APP_NAME.to_string(),
        )]))),
        ..NetworkPolicyPeer::default()
    }
}

/// Builds the NetworkPolicy `<name>` when the spec asks for one: ingress
/// only, three rules: the pair's pods to each other (MySQL's port for
/// replication and clones, the agents' port for peer confirmations and
/// seed streams), the operator (the same two ports), the clients (MySQL's
/// port). Egress is left open: the servers reach each other, and the
/// agents the API server, wherever it is.
pub fn build_network_policy(
    pair: &MySQLActiveActive,
    names: &Names,
    options: &RenderOptions,
) -> Option<NetworkPolicy> {
    let spec = pair.spec.network_policy.as_ref()?;
    let both = ports(&[MYSQL_PORT, AGENT_PORT]);
    let own = NetworkPolicyPeer {
        pod_selector: Some(selector(selector_labels(names))),
        ..NetworkPolicyPeer::default()
    };
    let operator = spec
        .operator
        .clone()
        .unwrap_or_else(|| vec![default_operator(options)]);
    let mut ingress = vec![
        NetworkPolicyIngressRule {
            from: Some(vec![own]),
            ports: Some(both.clone()),
        },
        NetworkPolicyIngressRule {
            from: Some(operator),
            ports: Some(both),
        },
    ];
    if !spec.clients.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(spec.clients.clone()),
            ports: Some(ports(&[MYSQL_PORT])),
        });
    }
    Some(NetworkPolicy {
        metadata: object_meta(pair, names, names.statefulset()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(selector_labels(names))),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            egress: None,
        }),
    })
}
