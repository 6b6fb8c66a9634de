//! The three Services: headless (stable pod DNS), writer and reader.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{MySQLActiveActive, WriteMode};

use super::meta::{LABEL_ROLE, Names, ROLE_REPLICA, ROLE_WRITER, object_meta, selector_labels};
use super::mycnf::MYSQL_PORT;

fn mysql_port() -> ServicePort {
    ServicePort {
        name: Some("mysql".into()),
        port: MYSQL_PORT.into(),
        target_port: Some(IntOrString::String("mysql".into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

fn service(
    pair: &MySQLActiveActive,
    names: &Names,
    name: String,
    selector: BTreeMap<String, String>,
    headless: bool,
    publish_not_ready: bool,
) -> Service {
    Service {
        metadata: object_meta(pair, names, name),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![mysql_port()]),
            cluster_ip: headless.then(|| "None".to_string()),
            publish_not_ready_addresses: publish_not_ready.then_some(true),
            type_: Some("ClusterIP".into()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Headless Service `<name>-headless`: a stable DNS name per pod, published
/// even while a pod is not ready so the two servers always find each other.
pub fn build_headless_service(pair: &MySQLActiveActive, names: &Names) -> Service {
    service(
        pair,
        names,
        names.headless_service(),
        selector_labels(names),
        true,
        true,
    )
}

/// Writer Service `<name>-writer`. MultiWriter: it selects the pods
/// labelled `mysql-aa.io/role=writer` (both). SingleWriter: it has no
/// selector; the pair loop writes its EndpointSlice
/// ([`super::writerslice`]) naming the writer the plan elects, from the
/// moment it elects it, so a failover moves writes with one write, before
/// its other steps. Either way routing does not wait for the readiness
/// probe: a writer restarted in place takes writes as soon as it is
/// unfenced.
pub fn build_writer_service(pair: &MySQLActiveActive, names: &Names) -> Service {
    let mut selector = selector_labels(names);
    selector.insert(LABEL_ROLE.into(), ROLE_WRITER.into());
    let mut svc = service(pair, names, names.writer_service(), selector, false, true);
    if pair.spec.write_mode == WriteMode::SingleWriter
        && let Some(spec) = svc.spec.as_mut()
    {
        spec.selector = None;
    }
    svc
}

/// Reader Service `<name>-reader`: in SingleWriter the read-only node
/// (`mysql-aa.io/role=replica`); in MultiWriter every ready node.
pub fn build_reader_service(pair: &MySQLActiveActive, names: &Names) -> Service {
    let mut selector = selector_labels(names);
    if pair.spec.write_mode == WriteMode::SingleWriter {
        selector.insert(LABEL_ROLE.into(), ROLE_REPLICA.into());
    }
    service(pair, names, names.reader_service(), selector, false, false)
}
