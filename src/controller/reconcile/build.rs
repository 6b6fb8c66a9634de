//! Step `build`: the objects the operator owns, from a validated pair
//! (pure: [`crate::render`]). Generated Secrets are not among them: the
//! `credentials` step creates those once, with their passwords.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::validate::Validated;

/// The objects `apply` writes.
#[derive(Clone, Debug)]
pub struct Objects {
    /// my.cnf per ordinal and the scripts.
    pub config_map: ConfigMap,
    /// Headless, writer and reader Services.
    pub services: Vec<Service>,
    /// The PodDisruptionBudget.
    pub pdb: PodDisruptionBudget,
    /// The two servers.
    pub statefulset: StatefulSet,
    /// The writer Lease (SingleWriter).
    pub lease: Option<Lease>,
    /// The agents' account (SingleWriter, with an agent image).
    pub agent: Option<crate::render::AgentAccess>,
    /// The NetworkPolicy (`spec.networkPolicy`); `None`: there must be none.
    pub network_policy: Option<NetworkPolicy>,
}

/// Step `build`.
pub fn build(pair: Validated<'_>, agent: &crate::render::RenderOptions) -> Objects {
    let r = crate::render::render_checked(pair.pair(), agent);
    Objects {
        config_map: r.config_map,
        services: r.services,
        pdb: r.pdb,
        statefulset: r.statefulset,
        lease: r.lease,
        agent: r.agent,
        network_policy: r.network_policy,
    }
}
