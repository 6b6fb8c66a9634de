//! Step `route` (SingleWriter): the writer Service's EndpointSlice follows
//! the writer label, written by the loop in the cycle that moved the label
//! ([`crate::render::writerslice`]). One write per change; none in a steady
//! state (the store's copy is compared first).

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use super::super::MANAGER;
use super::super::context::Context;
use super::super::error::{Error, kube};
use crate::api::MySQLActiveActive;
use crate::render::Names;
use crate::render::writerslice::{WriterEndpoint, build_writer_slice};
use crate::topology::{NodeFacts, Role};

/// Where the writer Service sends writes: to the writer the plan elects
/// (`writer`) as soon as the plan is made — before its steps, so that
/// kube-proxy applies the move while the failover's other steps run (a
/// candidate not yet promoted refuses writes: it is fenced) — and
/// otherwise to the pods labelled writer. Pure.
pub fn routed(writer: Option<u32>, facts: &[NodeFacts; 2], labelled: &[(u32, Role)]) -> Vec<u32> {
    match writer.filter(|w| facts[*w as usize % 2].pod_exists) {
        Some(w) => vec![w],
        None => writer_pods(facts, labelled),
    }
}

/// The ordinals whose pods carry the writer label once the labels given
/// this cycle (`labelled`, in order) are applied over the observed ones.
/// Pure.
pub fn writer_pods(facts: &[NodeFacts; 2], labelled: &[(u32, Role)]) -> Vec<u32> {
    facts
        .iter()
        .filter(|f| f.pod_exists)
        .filter(|f| {
            let given = labelled
                .iter()
                .rev()
                .find(|(n, _)| *n == f.ordinal)
                .map(|(_, r)| *r);
            given.or(f.role_label) == Some(Role::Writer)
        })
        .map(|f| f.ordinal)
        .collect()
}

/// The addresses (pod IP, node) of `ordinals`, from the pods store; a pod
/// without an IP yet is left out.
fn endpoints(ctx: &Context, names: &Names, ordinals: &[u32]) -> Vec<WriterEndpoint> {
    ordinals
        .iter()
        .filter_map(|o| {
            let pod = ctx
                .stores
                .pods
                .get(&ObjectRef::new(&names.pod(*o)).within(&names.namespace))?;
            let ip = pod.status.as_ref()?.pod_ip.clone()?;
            Some(WriterEndpoint {
                pod: names.pod(*o),
                ip,
                node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            })
        })
        .collect()
}

/// What routing an EndpointSlice does: (pod, address) per endpoint.
fn routes(slice: &EndpointSlice) -> Vec<(String, Vec<String>)> {
    slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| {
            (
                e.target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
                e.addresses.clone(),
            )
        })
        .collect()
}

/// Step `route`: writes the writer Service's EndpointSlice when it does not
/// name exactly the pods of `ordinals` ([`routed`]). Returns the pods it now
/// names when it wrote.
pub async fn route(
    ctx: &Context,
    pair: &MySQLActiveActive,
    ordinals: &[u32],
) -> Result<Option<Vec<String>>, Error> {
    let names = Names::of(pair);
    let wanted = build_writer_slice(pair, &names, &endpoints(ctx, &names, ordinals));
    let live = ctx
        .stores
        .endpoint_slices
        .get(&ObjectRef::new(&names.writer_service()).within(&names.namespace));
    if live.is_some_and(|l| routes(&l) == routes(&wanted) && l.address_type == wanted.address_type)
    {
        return Ok(None);
    }
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &names.namespace);
    api.patch(
        &names.writer_service(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&wanted),
    )
    .await
    .map_err(kube(
        "route",
        format!(
            "EndpointSlice {}/{}",
            names.namespace,
            names.writer_service()
        ),
    ))?;
    Ok(Some(routes(&wanted).into_iter().map(|(p, _)| p).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::testkit::node;

    #[test]
    fn the_writer_pods_follow_the_labels_given_this_cycle() {
        let labelled = |r0: Option<Role>, r1: Option<Role>| {
            let mut f = [node(0).build(), node(1).build()];
            f[0].role_label = r0;
            f[1].role_label = r1;
            f
        };
        use Role::{Replica, Seeding, Writer};
        // (what, observed labels, labels given this cycle, routed)
        type Row = (&'static str, [NodeFacts; 2], Vec<(u32, Role)>, Vec<u32>);
        let rows: Vec<Row> = vec![
            (
                "steady",
                labelled(Some(Writer), Some(Replica)),
                vec![],
                vec![0],
            ),
            (
                "no writer",
                labelled(Some(Replica), Some(Replica)),
                vec![],
                vec![],
            ),
            (
                "a failover: the old writer relabelled, the new one labelled",
                labelled(Some(Writer), Some(Replica)),
                vec![(0, Replica), (1, Writer)],
                vec![1],
            ),
            (
                "the last label given wins",
                labelled(Some(Replica), Some(Replica)),
                vec![(1, Writer), (1, Seeding)],
                vec![],
            ),
            (
                "unlabelled pods are not routed",
                labelled(None, None),
                vec![],
                vec![],
            ),
        ];
        for (what, facts, given, want) in rows {
            assert_eq!(writer_pods(&facts, &given), want, "{what}");
        }
        // A missing pod is never routed, whatever its last label.
        let mut facts = labelled(Some(Writer), Some(Replica));
        facts[0].pod_exists = false;
        assert_eq!(writer_pods(&facts, &[]), Vec::<u32>::new());
    }

    #[test]
    fn writes_go_to_the_elected_writer_from_the_plan_on() {
        use Role::{Replica, Writer};
        let mut facts = [node(0).build(), node(1).build()];
        facts[0].role_label = Some(Writer);
        facts[1].role_label = Some(Replica);
        // A failover to 1: routed there before any step ran.
        assert_eq!(routed(Some(1), &facts, &[]), [1]);
        // No writer elected: the labels decide (the lost writer keeps its
        // label while it may restart in place).
        assert_eq!(routed(None, &facts, &[]), [0]);
        // The elected writer's pod is gone: the labels decide.
        facts[1].pod_exists = false;
        assert_eq!(routed(Some(1), &facts, &[]), [0]);
    }
}
