//! The divergence check: compares every user table of the two nodes with
//! `CHECKSUM TABLE` at a point where both have executed the same GTID set.
//!
//! Method: read both executed sets; when they are equal, checksum every
//! base table of every user schema on both nodes (concurrently), then read
//! the sets again. Only when neither moved is the comparison valid (no
//! transaction landed in between); otherwise it retries a few times and
//! reports `NotCompared`. Cost: each check reads every row of every table
//! on both nodes, once per attempt; run it on request or at a long interval
//! on large data sets.

use std::time::Duration;

use super::context::Context;
use super::events::Reason;
use super::pairloop::observe::Observed;
use crate::api::{DivergenceReport, DivergenceResult, Engine, MySQLActiveActive};
use crate::mysql::{Checksums, Flavor, MySqlClient, Server, SqlError, diverged_tables, gtid};

/// How many times the check looks for a quiet point.
pub const ATTEMPTS: u32 = 10;
/// Pause between attempts.
const RETRY: Duration = Duration::from_millis(300);

/// The `spec.divergenceCheck.requestId` not yet answered in status.
pub fn pending_request(pair: &MySQLActiveActive) -> Option<&str> {
    let id = pair.spec.divergence_check.request_id.as_deref()?;
    let answered = pair
        .status
        .as_ref()
        .and_then(|s| s.divergence.as_ref())
        .and_then(|d| d.request_id.as_deref());
    (answered != Some(id)).then_some(id)
}

/// Whether a check should run now: requested, or the interval has passed.
pub fn due(pair: &MySQLActiveActive, now: jiff::Timestamp) -> bool {
    if pending_request(pair).is_some() {
        return true;
    }
    let minutes = pair.spec.divergence_check.interval_minutes;
    if minutes == 0 {
        return false;
    }
    let last = pair
        .status
        .as_ref()
        .and_then(|s| s.divergence.as_ref())
        .map(|d| d.checked_at.0);
    last.is_none_or(|t| now.duration_since(t).as_secs() >= i64::from(minutes) * 60)
}

fn flavor(engine: Engine) -> Flavor {
    match engine {
        Engine::MySQL => Flavor::MySQL,
        Engine::MariaDB => Flavor::MariaDB,
    }
}

async fn all_checksums(c: &MySqlClient) -> Result<Checksums, SqlError> {
    let mut out = Checksums::new();
    for schema in c.user_schemas().await? {
        for (table, sum) in c.table_checksums(&schema).await? {
            out.insert(format!("{schema}.{table}"), sum);
        }
    }
    Ok(out)
}

async fn executed(c: &MySqlClient) -> Result<String, SqlError> {
    Ok(c.observe().await?.gtid_executed)
}

/// Runs the check on the clients of this cycle.
pub async fn check(pair: &MySQLActiveActive, observed: &Observed) -> DivergenceReport {
    let mut report = DivergenceReport {
        request_id: pending_request(pair).map(str::to_string),
        result: DivergenceResult::NotCompared,
        checked_at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        gtid_set: None,
        tables_checked: 0,
        diverged_tables: vec![],
        message: String::new(),
    };
    let (Some(a), Some(b)) = (
        observed.client(0).map(|c| c.as_ref()),
        observed.client(1).map(|c| c.as_ref()),
    ) else {
        report.message = "a node has no address".into();
        return report;
    };
    let f = flavor(pair.spec.engine);
    let same = |x: &str, y: &str| gtid::contains(f, x, y) && gtid::contains(f, y, x);
    for _ in 0..ATTEMPTS {
        let result: Result<Option<(String, Checksums, Checksums)>, SqlError> = async {
            let (ga, gb) = tokio::try_join!(executed(a), executed(b))?;
            if !same(&ga, &gb) {
                return Ok(None);
            }
            let (ca, cb) = tokio::try_join!(all_checksums(a), all_checksums(b))?;
            let (ga2, gb2) = tokio::try_join!(executed(a), executed(b))?;
            Ok((same(&ga, &ga2) && same(&gb, &gb2)).then_some((ga, ca, cb)))
        }
        .await;
        match result {
            Ok(Some((set, ca, cb))) => {
                report.diverged_tables = diverged_tables(&ca, &cb);
                report.tables_checked = ca
                    .keys()
                    .chain(cb.keys())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len() as u32;
                report.result = if report.diverged_tables.is_empty() {
                    DivergenceResult::Consistent
                } else {
                    DivergenceResult::Diverged
                };
                report.message = format!(
                    "compared {} table(s) at the same executed GTID set",
                    report.tables_checked
                );
                report.gtid_set = Some(set);
                return report;
            }
            Ok(None) => tokio::time::sleep(RETRY).await,
            Err(e) => {
                report.message = format!("could not read a node: {e}");
                return report;
            }
        }
    }
    report.message = format!(
        "the nodes never had the same executed GTID set with no write in between ({ATTEMPTS} attempts): writes were in progress"
    );
    report
}

/// Publishes the check's Event and metric.
pub async fn announce(ctx: &Context, pair: &MySQLActiveActive, report: &DivergenceReport) {
    let names = crate::render::Names::of(pair);
    ctx.metrics
        .diverged_tables
        .get_or_create(&super::metrics::PairLabels {
            namespace: names.namespace.clone(),
            pair: names.pair.clone(),
        })
        .set(report.diverged_tables.len() as i64);
    let (reason, note) = match report.result {
        DivergenceResult::Diverged => (
            Reason::DivergenceFound,
            format!(
                "tables differ between the nodes: {}",
                report.diverged_tables.join(", ")
            ),
        ),
        DivergenceResult::Consistent => (Reason::DivergenceChecked, report.message.clone()),
        DivergenceResult::NotCompared => (Reason::DivergenceNotCompared, report.message.clone()),
    };
    tracing::info!(result = %report.result, tables = report.tables_checked, diverged = ?report.diverged_tables, "divergence check");
    ctx.publish(pair, reason, note).await;
}
