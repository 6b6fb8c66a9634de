//! What `status` (and `kubectl myaa status`) prints: both nodes side by
//! side — what one would otherwise piece together from `SHOW REPLICA
//! STATUS` on each server — then the pair's conditions and its last role
//! changes. Pure: from the resource as the API server holds it.

use std::fmt::Write as _;

use crate::api::{MySQLActiveActive, MySQLActiveActiveStatus, NodeStatus, RoleChange};

/// A value, or `-` when there is none.
fn or_dash(v: Option<String>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

fn on_off(v: Option<bool>) -> String {
    or_dash(v.map(|b| if b { "on" } else { "off" }.to_string()))
}

/// The rows of the side-by-side table: a label, then one value per node.
fn rows(nodes: &[NodeStatus]) -> Vec<(&'static str, Vec<String>)> {
    let each = |f: &dyn Fn(&NodeStatus) -> String| nodes.iter().map(f).collect::<Vec<_>>();
    let repl = |n: &NodeStatus, f: &dyn Fn(&crate::api::ReplicationStatus) -> String| {
        n.replication.as_ref().map_or_else(|| "-".into(), f)
    };
    let error = |errno: u32, msg: &str| {
        if errno == 0 && msg.is_empty() {
            "-".to_string()
        } else {
            format!("{errno} {msg}")
        }
    };
    vec![
        (
            "role",
            each(&|n| or_dash(n.role.map(|r| r.as_str().to_string()))),
        ),
        (
            "reachable",
            each(&|n| if n.reachable { "yes" } else { "no" }.into()),
        ),
        ("read_only", each(&|n| on_off(n.read_only))),
        ("super_read_only", each(&|n| on_off(n.super_read_only))),
        (
            "server_id",
            each(&|n| or_dash(n.server_id.map(|v| v.to_string()))),
        ),
        ("version", each(&|n| or_dash(n.version.clone()))),
        (
            "receiver (IO)",
            each(&|n| repl(n, &|r| r.io_running.as_str().to_string())),
        ),
        (
            "applier (SQL)",
            each(&|n| repl(n, &|r| r.sql_running.as_str().to_string())),
        ),
        (
            "lag",
            each(&|n| {
                repl(n, &|r| {
                    or_dash(r.seconds_behind_source.map(|s| format!("{s} s")))
                })
            }),
        ),
        (
            "source",
            each(&|n| repl(n, &|r| or_dash(r.source_host.clone()))),
        ),
        (
            "last IO error",
            each(&|n| repl(n, &|r| error(r.last_io_errno, &r.last_io_error))),
        ),
        (
            "last SQL error",
            each(&|n| repl(n, &|r| error(r.last_sql_errno, &r.last_sql_error))),
        ),
        (
            "semi-sync source",
            each(&|n| on_off(n.semi_sync_source_active)),
        ),
        (
            "executed GTIDs",
            each(&|n| or_dash(n.executed_gtid_set.clone().map(|s| s.replace('\n', "")))),
        ),
        (
            "errant GTIDs",
            each(&|n| or_dash(n.errant_gtid_set.clone())),
        ),
    ]
}

fn role_change(what: &str, c: &RoleChange) -> String {
    let mut line = format!(
        "{what}: {} -> {} at {} ({} ms): {}",
        c.from,
        c.to,
        c.started_at.0,
        c.duration_millis,
        if c.message.is_empty() {
            &c.reason
        } else {
            &c.message
        }
    );
    if let Some(lost) = &c.lost_gtid_set {
        let _ = write!(line, "; never received by the new writer: {lost}");
    }
    line
}

/// The text `status` prints for `pair`.
pub fn status_text(pair: &MySQLActiveActive) -> String {
    let name = pair.metadata.name.clone().unwrap_or_default();
    let ns = pair.metadata.namespace.clone().unwrap_or_default();
    let empty = MySQLActiveActiveStatus::default();
    let st = pair.status.as_ref().unwrap_or(&empty);
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{ns}/{name}: Ready={} ({}) · {:?} · {} · writer {} (epoch {}) · durability {}",
        ready.map_or("Unknown", |c| c.status.as_str()),
        ready.map_or("", |c| c.reason.as_str()),
        pair.spec.write_mode,
        or_dash(st.version.clone()),
        or_dash(st.writer.clone()),
        st.writer_epoch,
        or_dash(st.durability.map(|d| d.to_string())),
    );
    if let Some(c) = ready.filter(|c| c.status != "True" && !c.message.is_empty()) {
        let _ = writeln!(out, "  {}", c.message);
    }
    let _ = writeln!(out);
    let mut nodes = st.nodes.clone();
    nodes.sort_by_key(|n| n.ordinal);
    if nodes.is_empty() {
        let _ = writeln!(out, "no node observed yet");
    } else {
        let table = rows(&nodes);
        let label_width = table.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..nodes.len())
            .map(|i| {
                table
                    .iter()
                    .map(|(_, v)| v[i].chars().count())
                    .chain([nodes[i].name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |label: &str, values: Vec<String>| {
            let cells: Vec<String> = values
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            format!("{label:<label_width$}  {}", cells.join("  "))
                .trim_end()
                .to_string()
        };
        let _ = writeln!(
            out,
            "{}",
            line("", nodes.iter().map(|n| n.name.clone()).collect())
        );
        for (label, values) in table {
            let _ = writeln!(out, "{}", line(label, values));
        }
    }
    let _ = writeln!(out);
    for c in &st.conditions {
        let _ = write!(out, "{}={} {}", c.type_, c.status, c.reason);
        if c.status == "True" && c.type_ != "Ready" && !c.message.is_empty()
            || c.type_ == "Degraded" && c.status == "True"
        {
            let _ = write!(out, ": {}", c.message);
        }
        let _ = writeln!(out);
    }
    if let Some(s) = &st.stale_replica {
        let _ = writeln!(
            out,
            "stale replica: {} since {} (epoch {}): {}",
            s.node, s.since.0, s.epoch, s.reason
        );
    }
    if let Some(c) = &st.last_failover {
        let _ = writeln!(out, "{}", role_change("last failover", c));
    }
    if let Some(c) = &st.last_switchover {
        let _ = writeln!(out, "{}", role_change("last switchover", c));
    }
    if let Some(s) = &st.seed {
        let _ = writeln!(
            out,
            "seed: {} from {} ({:?}, attempt {}, {} bytes): {}",
            s.node, s.donor, s.phase, s.attempt, s.bytes_done, s.message
        );
    }
    if let Some(d) = &st.divergence {
        let _ = write!(out, "divergence check at {}: {}", d.checked_at.0, d.result);
        if !d.diverged_tables.is_empty() {
            let _ = write!(out, " ({})", d.diverged_tables.join(", "));
        }
        let _ = writeln!(out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pair(status: serde_json::Value) -> MySQLActiveActive {
        let mut p = crate::admission::admit(
            &json!({
                "apiVersion": "mysql-aa.io/v1alpha1",
                "kind": "MySQLActiveActive",
                "metadata": {"name": "orders", "namespace": "shop"},
                "spec": {"engine": "MySQL"}
            }),
            None,
        )
        .expect("a valid pair");
        p.status = Some(serde_json::from_value(status).expect("a status"));
        p
    }

    fn node(name: &str, ordinal: u32, writer: bool) -> serde_json::Value {
        json!({
            "name": name, "ordinal": ordinal, "serverId": 1000 + ordinal,
            "role": if writer { "Writer" } else { "Replica" },
            "reachable": true, "readOnly": !writer, "superReadOnly": !writer,
            "version": "9.7.0", "executedGtidSet": "u:1-10",
            "semiSyncSourceActive": writer,
            "replication": {
                "sourceHost": if writer { "orders-1" } else { "orders-0" },
                "ioRunning": "Yes", "sqlRunning": if writer { "Yes" } else { "No" },
                "lastSqlErrno": if writer { 0 } else { 1062 },
                "lastSqlError": if writer { "" } else { "Duplicate entry '7'" },
                "secondsBehindSource": if writer { json!(0) } else { json!(null) }
            }
        })
    }

    #[test]
    fn both_nodes_side_by_side() {
        let p = pair(json!({
            "writer": "orders-0", "writerEpoch": 4, "durability": "SemiSynchronous",
            "version": "MySQL 9.7.0",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "ReplicationHalted",
                 "message": "orders-1: applier stopped", "lastTransitionTime": "2026-12-01T00:00:00Z"},
                {"type": "ConflictDetected", "status": "True", "reason": "ApplierHalted",
                 "message": "orders-1 1062", "lastTransitionTime": "2026-12-01T00:00:00Z"},
                {"type": "Lagging", "status": "False", "reason": "WithinThreshold",
                 "message": "", "lastTransitionTime": "2026-12-01T00:00:00Z"}
            ],
            // Listed out of order: printed by ordinal.
            "nodes": [node("orders-1", 1, false), node("orders-0", 0, true)],
            "lastFailover": {"from": "orders-1", "to": "orders-0", "reason": "WriterUnreachable",
                             "startedAt": "2026-12-01T00:00:00Z", "durationMillis": 6200,
                             "lostGtidSet": "u:11"}
        }));
        let text = status_text(&p);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("shop/orders: Ready=False (ReplicationHalted)")
                && lines[0].contains("writer orders-0 (epoch 4)")
                && lines[0].contains("durability SemiSynchronous"),
            "{text}"
        );
        assert_eq!(lines[1], "  orders-1: applier stopped");
        let row = |label: &str| -> Vec<&str> {
            let l = lines
                .iter()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} row in\n{text}"));
            l[label.len()..]
                .split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        };
        let header = lines
            .iter()
            .find(|l| l.trim_start().starts_with("orders-0"))
            .unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["orders-0", "orders-1"]
        );
        assert_eq!(row("role"), ["Writer", "Replica"]);
        assert_eq!(row("read_only"), ["off", "on"]);
        assert_eq!(row("applier (SQL)"), ["Yes", "No"]);
        assert_eq!(row("lag"), ["0 s", "-"]);
        assert_eq!(row("last SQL error"), ["-", "1062 Duplicate entry '7'"]);
        assert_eq!(row("executed GTIDs"), ["u:1-10", "u:1-10"]);
        assert_eq!(row("semi-sync source"), ["on", "off"]);
        // Columns line up: each value starts where its node's name does.
        let col = header.find("orders-1");
        assert_eq!(
            lines
                .iter()
                .find(|l| l.starts_with("role"))
                .unwrap()
                .find("Replica"),
            col
        );
        assert!(text.contains("ConflictDetected=True ApplierHalted: orders-1 1062"));
        assert!(text.contains("Lagging=False WithinThreshold\n"));
        assert!(text.contains(
            "last failover: orders-1 -> orders-0 at 2026-12-01T00:00:00Z (6200 ms): WriterUnreachable; never received by the new writer: u:11"
        ));
    }

    #[test]
    fn a_pair_not_observed_yet_says_so() {
        let p = pair(json!({}));
        let text = status_text(&p);
        assert!(text.starts_with("shop/orders: Ready=Unknown () · SingleWriter · - · writer - (epoch 0) · durability -"), "{text}");
        assert!(text.contains("no node observed yet"));
    }
}
