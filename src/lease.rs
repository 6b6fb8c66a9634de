//! The writer Lease (`coordination.k8s.io/v1`) of a SingleWriter pair, as
//! the operator and the agents read and write it.
//!
//! The operator hands it to the writer at each writer epoch (`HandLease`):
//! `holderIdentity` is the writer's pod, the annotations carry the epoch and
//! both pods' addresses (where an agent asks its peer), `renewTime` is now.
//! The writer's agent renews it while its server answers; it fences its own
//! server when it can renew neither through the API server nor by its peer's
//! confirmation (see [`crate::agent`]). The operator promotes another node
//! only once the Lease has not been renewed for `leaseDurationSeconds`, by
//! its own clock from when it saw the last renewal (client-go's rule:
//! robust to clock offsets between machines).

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;

/// Annotation: the writer epoch the Lease was handed at.
pub const EPOCH_ANNOTATION: &str = "mysql-aa.io/epoch";
/// Annotation: `pod=address` of both pods, comma separated.
pub const ADDRESSES_ANNOTATION: &str = "mysql-aa.io/addresses";

/// Where a pod finds its pair's writer Lease, from the environment the
/// pod is rendered with ([`crate::render::agent::lease_env`]): the agent's,
/// and `seed-receive`'s.
#[derive(clap::Args, Debug, Clone)]
pub struct PodLease {
    /// This pod's name.
    #[arg(long, env = "POD_NAME")]
    pub pod: String,
    /// This pod's namespace.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: String,
    /// The pair's writer Lease.
    #[arg(long, env = "MYSQL_AA_LEASE")]
    pub lease: String,
}

/// What a writer Lease says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterLease {
    /// The pod that holds it.
    pub holder: Option<String>,
    /// The writer epoch it was handed at.
    pub epoch: u64,
    /// `leaseDurationSeconds`.
    pub duration_seconds: u32,
    /// Pod name to address.
    pub addresses: BTreeMap<String, String>,
    /// `renewTime`, as written (compared, never trusted as a clock).
    pub renew_time: Option<String>,
}

impl WriterLease {
    /// Reads `lease`.
    pub fn of(lease: &Lease) -> Self {
        let annotations = lease.metadata.annotations.clone().unwrap_or_default();
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            epoch: annotations
                .get(EPOCH_ANNOTATION)
                .and_then(|e| e.parse().ok())
                .unwrap_or(0),
            duration_seconds: spec
                .lease_duration_seconds
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(0),
            addresses: annotations
                .get(ADDRESSES_ANNOTATION)
                .map(|a| parse_addresses(a))
                .unwrap_or_default(),
            renew_time: spec.renew_time.map(|t| t.0.to_string()),
        }
    }

    /// The other pod's address, seen from `me`.
    pub fn peer_address(&self, me: &str) -> Option<&str> {
        self.addresses
            .iter()
            .find(|(pod, _)| pod.as_str() != me)
            .map(|(_, a)| a.as_str())
    }
}

/// `pod=address,pod=address`.
pub fn encode_addresses(addresses: &BTreeMap<String, String>) -> String {
    addresses
        .iter()
        .map(|(p, a)| format!("{p}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The inverse of [`encode_addresses`]; malformed entries are left out.
pub fn parse_addresses(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|e| e.split_once('='))
        .filter(|(p, a)| !p.is_empty() && !a.is_empty())
        .map(|(p, a)| (p.trim().to_string(), a.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_round_trip_and_malformed_entries_are_dropped() {
        let a = BTreeMap::from([
            ("db-0".to_string(), "10.0.0.2".to_string()),
            ("db-1".to_string(), "db-1.db-headless.shop.svc".to_string()),
        ]);
        assert_eq!(parse_addresses(&encode_addresses(&a)), a);
        assert_eq!(
            parse_addresses("db-0=10.0.0.2,=x,db-1=,junk"),
            BTreeMap::from([("db-0".to_string(), "10.0.0.2".to_string())])
        );
    }

    #[test]
    fn a_lease_is_read_with_its_epoch_and_peer() {
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": "db-writer", "annotations": {
                EPOCH_ANNOTATION: "7",
                ADDRESSES_ANNOTATION: "db-0=10.0.0.2,db-1=10.0.0.3",
            }},
            "spec": {"holderIdentity": "db-0", "leaseDurationSeconds": 5,
                     "renewTime": "2026-12-03T10:00:00.000000Z"},
        }))
        .unwrap_or_default();
        let w = WriterLease::of(&lease);
        assert_eq!(w.holder.as_deref(), Some("db-0"));
        assert_eq!(w.epoch, 7);
        assert_eq!(w.duration_seconds, 5);
        assert_eq!(w.peer_address("db-0"), Some("10.0.0.3"));
        assert_eq!(w.peer_address("db-1"), Some("10.0.0.2"));
        assert!(w.renew_time.is_some());
        let released: Lease =
            serde_json::from_value(json!({"spec": {"holderIdentity": ""}})).unwrap_or_default();
        assert_eq!(WriterLease::of(&released).holder, None);
    }
}
