//! The writer Service's EndpointSlice (SingleWriter): the writer Service has
//! no selector, and the pair loop writes its one EndpointSlice itself,
//! naming the writer its plan elects as soon as it elects it (step `route`).
//! kube-proxy applies Service changes at most once a second, for all
//! Services at once: routed by the writer label, a failover's new route
//! waited behind the sync its other changes (the old writer's pod deleted,
//! labels moved) had just caused; written first, in one write, it does not
//! (the roles box test: writes back 3.7–3.8 s after the writer's node
//! stopped with a 3 s window, 4.5–4.6 s before).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};

use crate::api::MySQLActiveActive;

use super::meta::{Names, object_meta};
use super::mycnf::MYSQL_PORT;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label that says who manages an EndpointSlice (the EndpointSlice
/// controller leaves slices managed by others alone).
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "mysql-aa.io";

/// A pod the writer Service sends writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterEndpoint {
    /// Pod name.
    pub pod: String,
    /// Its IP.
    pub ip: String,
    /// The node it runs on.
    pub node: Option<String>,
}

/// The EndpointSlice `<name>-writer` of the writer Service, naming
/// `endpoints` (the pod labelled writer; none while there is no writer:
/// connections are then refused at once).
pub fn build_writer_slice(
    pair: &MySQLActiveActive,
    names: &Names,
    endpoints: &[WriterEndpoint],
) -> EndpointSlice {
    let mut metadata = object_meta(pair, names, names.writer_service());
    let labels = metadata.labels.get_or_insert_with(Default::default);
    labels.insert(SERVICE_NAME_LABEL.into(), names.writer_service());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let v6 = endpoints.first().is_some_and(|e| e.ip.contains(':'));
    EndpointSlice {
        metadata,
        address_type: if v6 { "IPv6" } else { "IPv4" }.into(),
        endpoints: Some(
            endpoints
                .iter()
                .map(|e| Endpoint {
                    addresses: vec![e.ip.clone()],
                    // The label alone routes (as the selector did, with
                    // publishNotReadyAddresses): the operator labels a node it
                    // reached and made writable.
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        serving: Some(true),
                        terminating: Some(false),
                    }),
                    node_name: e.node.clone(),
                    target_ref: Some(ObjectReference {
                        kind: Some("Pod".into()),
                        name: Some(e.pod.clone()),
                        namespace: Some(names.namespace.clone()),
                        ..ObjectReference::default()
                    }),
                    ..Endpoint::default()
                })
                .collect(),
        ),
        ports: Some(vec![EndpointPort {
            name: Some("mysql".into()),
            port: Some(i32::from(MYSQL_PORT)),
            protocol: Some("TCP".into()),
            ..EndpointPort::default()
        }]),
    }
}
