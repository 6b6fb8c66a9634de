//! The per-pair gauges the alerts read, derived from the status a cycle
//! just built: one pure function ([`pair_gauges`]), so what an alert sees is
//! exactly what `kubectl get` shows.

use crate::api::{Durability, MySQLActiveActiveStatus, NodeRole};
use crate::api::{MySQLActiveActive, WriteMode};

/// The condition types exported as `mysqlaa_pair_condition`, every one on
/// every pair (a type missing from status reads 0), so an alert's series
/// never goes stale while the pair exists.
pub const CONDITIONS: [&str; 7] = [
    "Ready",
    "Replicating",
    "WriterAvailable",
    "Degraded",
    "ConflictDetected",
    "Lagging",
    "VersionMismatch",
];

/// Every effective durability, exported as a state set
/// (`mysqlaa_pair_durability{durability}`: 1 on the current one).
pub const DURABILITIES: [Durability; 4] = [
    Durability::Asynchronous,
    Durability::SemiSynchronous,
    Durability::WaitingForReplica,
    Durability::AsynchronousFallback,
];

/// What the alerts and the dashboard read of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeGauges {
    /// Pod name.
    pub name: String,
    /// Its status role is `Writer`.
    pub writer: bool,
    /// It holds errant transactions.
    pub errant: bool,
}

/// What the alerts read of one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairGauges {
    /// Per type of [`CONDITIONS`]: 1 True, 0 False or absent, -1 Unknown.
    pub conditions: Vec<(&'static str, i64)>,
    /// Nodes observed reachable with `read_only` off.
    pub writable_nodes: i64,
    /// Nodes allowed to take writes: 1 in SingleWriter, 2 in MultiWriter.
    pub writers_allowed: i64,
    /// The effective durability, when known.
    pub durability: Option<Durability>,
    /// Per node: is it the writer (status role), does it hold errant
    /// transactions?
    pub nodes: Vec<NodeGauges>,
    /// `spec.replication.lagThresholdSeconds`.
    pub lag_threshold_seconds: i64,
}

/// The gauges of `pair` whose status is now `status`.
pub fn pair_gauges(pair: &MySQLActiveActive, status: &MySQLActiveActiveStatus) -> PairGauges {
    let conditions = CONDITIONS
        .iter()
        .map(|t| {
            let v = match status.conditions.iter().find(|c| c.type_ == *t) {
                Some(c) if c.status == "True" => 1,
                Some(c) if c.status == "Unknown" => -1,
                _ => 0,
            };
            (*t, v)
        })
        .collect();
    let writable_nodes = status
        .nodes
        .iter()
        .filter(|n| n.reachable && n.read_only == Some(false))
        .count() as i64;
    PairGauges {
        conditions,
        writable_nodes,
        writers_allowed: match pair.spec.write_mode {
            WriteMode::SingleWriter => 1,
            WriteMode::MultiWriter => 2,
        },
        durability: status.durability,
        nodes: status
            .nodes
            .iter()
            .map(|n| NodeGauges {
                name: n.name.clone(),
                writer: n.role == Some(NodeRole::Writer),
                errant: n.errant_gtid_set.is_some(),
            })
            .collect(),
        lag_threshold_seconds: i64::from(pair.spec.replication.lag_threshold_seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NodeStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use serde_json::json;

    fn pair(mode: &str, threshold: u32) -> MySQLActiveActive {
        crate::admission::admit(
            &json!({
                "apiVersion": "mysql-aa.io/v1alpha1",
                "kind": "MySQLActiveActive",
                "metadata": {"name": "orders", "namespace": "shop"},
                "spec": {"engine": "MySQL", "writeMode": mode,
                         "replication": {"lagThresholdSeconds": threshold}}
            }),
            None,
        )
        .expect("a valid pair")
    }

    fn cond(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    fn node(name: &str, reachable: bool, read_only: Option<bool>, errant: bool) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            reachable,
            read_only,
            errant_gtid_set: errant.then(|| "u:1".to_string()),
            role: Some(if read_only == Some(false) {
                NodeRole::Writer
            } else {
                NodeRole::Replica
            }),
            ..Default::default()
        }
    }

    fn status(conditions: Vec<Condition>, nodes: Vec<NodeStatus>) -> MySQLActiveActiveStatus {
        MySQLActiveActiveStatus {
            conditions,
            nodes,
            durability: Some(Durability::SemiSynchronous),
            ..Default::default()
        }
    }

    #[test]
    fn gauges_follow_the_status_table() {
        let healthy = vec![
            node("orders-0", true, Some(false), false),
            node("orders-1", true, Some(true), false),
        ];
        let split = vec![
            node("orders-0", true, Some(false), false),
            node("orders-1", true, Some(false), true),
        ];
        let unreachable_writable = vec![
            node("orders-0", false, Some(false), false),
            node("orders-1", true, Some(true), false),
        ];
        // (mode, nodes, conditions, writable, allowed, errant of orders-1)
        let rows = [
            (
                "SingleWriter",
                healthy.clone(),
                vec![cond("Ready", "True")],
                1,
                1,
                false,
            ),
            (
                "SingleWriter",
                split.clone(),
                vec![cond("Ready", "False")],
                2,
                1,
                true,
            ),
            (
                "MultiWriter",
                split,
                vec![cond("Ready", "True")],
                2,
                2,
                true,
            ),
            // A node last seen writable but unreachable is not counted.
            ("SingleWriter", unreachable_writable, vec![], 0, 1, false),
            (
                "SingleWriter",
                vec![],
                vec![cond("Ready", "Unknown")],
                0,
                1,
                false,
            ),
        ];
        for (mode, nodes, conditions, writable, allowed, errant) in rows {
            let ready = conditions.first().map_or(0, |c| match c.status.as_str() {
                "True" => 1,
                "Unknown" => -1,
                _ => 0,
            });
            let g = pair_gauges(&pair(mode, 45), &status(conditions, nodes.clone()));
            assert_eq!(g.writable_nodes, writable, "{mode} {nodes:?}");
            assert_eq!(g.writers_allowed, allowed, "{mode}");
            assert_eq!(g.lag_threshold_seconds, 45);
            assert_eq!(g.durability, Some(Durability::SemiSynchronous));
            // Every type is exported, a missing one as 0.
            assert_eq!(g.conditions.len(), CONDITIONS.len());
            assert_eq!(g.conditions[0], ("Ready", ready), "{mode}");
            assert!(g.conditions[1..].iter().all(|(_, v)| *v == 0));
            let n1 = g.nodes.iter().find(|n| n.name == "orders-1");
            assert_eq!(n1.map(|n| n.errant), (!nodes.is_empty()).then_some(errant));
            assert_eq!(
                g.nodes.iter().filter(|n| n.writer).count(),
                nodes.iter().filter(|n| n.read_only == Some(false)).count()
            );
        }
    }

    #[test]
    fn a_problem_condition_reads_one() {
        let g = pair_gauges(
            &pair("SingleWriter", 30),
            &status(
                vec![cond("Lagging", "True"), cond("ConflictDetected", "False")],
                vec![],
            ),
        );
        let get = |t: &str| g.conditions.iter().find(|(n, _)| *n == t).map(|c| c.1);
        assert_eq!(get("Lagging"), Some(1));
        assert_eq!(get("ConflictDetected"), Some(0));
        assert_eq!(get("Ready"), Some(0));
    }
}
