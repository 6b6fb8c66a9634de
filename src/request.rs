//! Requests a user makes of a running pair from the command line: a
//! switchover, a re-seed and a divergence check. Each writes the declarative request
//! into the pair's spec (what `kubectl patch` or a GitOps commit would do)
//! and waits for the operator's answer in status.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::api::MySQLActiveActive;

/// Where the pair is and how long to wait for the answer.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Name of the MySQLActiveActive.
    pub name: String,
    /// Its namespace; the kubeconfig's current namespace when unset.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Seconds to wait for the operator's answer; 0 returns once the request
    /// is written.
    #[arg(long, default_value_t = 180)]
    pub wait_seconds: u64,
}

/// A fresh request id: the CLI's prefix and the time in milliseconds.
fn request_id() -> String {
    format!("cli-{}", jiff::Timestamp::now().as_millisecond())
}

async fn api(t: &Target) -> Result<Api<MySQLActiveActive>> {
    pairs_in(t.namespace.as_deref()).await
}

/// The pairs of `namespace` (the kubeconfig's current one when unset).
async fn pairs_in(namespace: Option<&str>) -> Result<Api<MySQLActiveActive>> {
    let client = crate::apiclient::client(crate::apiclient::Use::Requests).await?;
    let ns = namespace.map_or_else(|| client.default_namespace().to_string(), str::to_string);
    Ok(Api::namespaced(client, &ns))
}

async fn wait_for<T>(
    api: &Api<MySQLActiveActive>,
    t: &Target,
    mut answered: impl FnMut(&MySQLActiveActive) -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(t.wait_seconds);
    loop {
        let pair = api.get(&t.name).await.context("reading the pair")?;
        if let Some(v) = answered(&pair) {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!(
                "no answer from the operator within {}s (is it running?)",
                t.wait_seconds
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `switchover`: asks for the writer role to move to `to` (default: the
/// pod that is not the writer), waits for the outcome and prints it.
pub async fn switchover(t: &Target, to: Option<String>, out: &mut dyn Write) -> Result<()> {
    let api = api(t).await?;
    let pair = api
        .get(&t.name)
        .await
        .with_context(|| format!("reading MySQLActiveActive {}", t.name))?;
    let writer = pair.status.as_ref().and_then(|s| s.writer.clone());
    let target = match (to, &writer) {
        (Some(to), _) => to,
        (None, Some(w)) => {
            let names = crate::render::Names::of(&pair);
            if *w == names.pod(0) {
                names.pod(1)
            } else {
                names.pod(0)
            }
        }
        (None, None) => bail!("the pair has no writer now; name the target with --to"),
    };
    let id = request_id();
    api.patch(
        &t.name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"switchover": {"target": target, "requestId": id}}})),
    )
    .await
    .context("writing spec.switchover")?;
    writeln!(out, "switchover to {target} requested (requestId {id})")?;
    if t.wait_seconds == 0 {
        return Ok(());
    }
    let change = wait_for(&api, t, |p| {
        p.status
            .as_ref()?
            .last_switchover
            .clone()
            .filter(|c| c.request_id.as_deref() == Some(id.as_str()))
    })
    .await?;
    let outcome = change
        .outcome
        .map_or("(no outcome)", crate::api::RoleChangeOutcome::as_str);
    writeln!(
        out,
        "{outcome}: {} -> {} in {} ms: {}",
        change.from, change.to, change.duration_millis, change.message
    )?;
    if change.outcome != Some(crate::api::RoleChangeOutcome::Succeeded) {
        bail!("switchover {outcome}");
    }
    Ok(())
}

/// `status`: prints the pair as [`crate::report::status_text`] lays it out.
pub async fn status(name: &str, namespace: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let pair = pairs_in(namespace)
        .await?
        .get(name)
        .await
        .with_context(|| format!("reading MySQLActiveActive {name}"))?;
    write!(out, "{}", crate::report::status_text(&pair))?;
    Ok(())
}

/// `reseed`: asks for `node` to be re-seeded from the writer, waits until
/// it replicates again (or the request is refused or fails) and prints the
/// outcome.
pub async fn reseed(t: &Target, node: &str, out: &mut dyn Write) -> Result<()> {
    use crate::api::SeedPhase;
    let api = api(t).await?;
    let id = request_id();
    api.patch(
        &t.name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"reseed": {"node": node, "requestId": id}}})),
    )
    .await
    .context("writing spec.reseed")?;
    writeln!(out, "re-seed of {node} requested (requestId {id})")?;
    if t.wait_seconds == 0 {
        return Ok(());
    }
    let seed = wait_for(&api, t, |p| {
        p.status
            .as_ref()?
            .seed
            .clone()
            .filter(|s| s.request_id.as_deref() == Some(id.as_str()))
            .filter(|s| !matches!(s.phase, SeedPhase::Seeding | SeedPhase::Restarting))
    })
    .await?;
    // MariaDB's stream tells no total.
    let bytes = match seed.bytes_total {
        0 => format!("{} bytes", seed.bytes_done),
        total => format!("{} of {total} bytes", seed.bytes_done),
    };
    writeln!(
        out,
        "{:?}: {} from {} ({bytes}): {}",
        seed.phase, seed.node, seed.donor, seed.message
    )?;
    if let Some(set) = &seed.discarded_gtid_set {
        writeln!(out, "discarded: {set}")?;
    }
    if seed.phase != SeedPhase::Finished {
        bail!("re-seed {:?}", seed.phase);
    }
    Ok(())
}

/// `check-divergence`: asks for one divergence check and prints its result.
pub async fn check_divergence(t: &Target, out: &mut dyn Write) -> Result<()> {
    let api = api(t).await?;
    let id = request_id();
    api.patch(
        &t.name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"divergenceCheck": {"requestId": id}}})),
    )
    .await
    .context("writing spec.divergenceCheck.requestId")?;
    writeln!(out, "divergence check requested (requestId {id})")?;
    if t.wait_seconds == 0 {
        return Ok(());
    }
    let report = wait_for(&api, t, |p| {
        p.status
            .as_ref()?
            .divergence
            .clone()
            .filter(|d| d.request_id.as_deref() == Some(id.as_str()))
    })
    .await?;
    writeln!(out, "{}: {}", report.result, report.message)?;
    for table in &report.diverged_tables {
        writeln!(out, "diverged: {table}")?;
    }
    match report.result.as_str() {
        "Consistent" => Ok(()),
        other => bail!("divergence check: {other}"),
    }
}
