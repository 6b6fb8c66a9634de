//! `mysql-aa-operator seed-receive` and `install-self`: the recipient's
//! side of a MariaDB seed, run by the `bootstrap` init container in the
//! server's image (the operator's binary copied in by `install-self`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

use k8s_openapi::api::coordination::v1::Lease;

use crate::accounts::ADMIN_PASSWORD_ENV;
use crate::lease::WriterLease;
use crate::mysql::Password;

/// Settings of `seed-receive`.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// This pod and its pair's writer Lease.
    #[command(flatten)]
    pub at: crate::lease::PodLease,
    /// The donor agent's port.
    #[arg(long, default_value_t = crate::agent::AGENT_PORT)]
    pub port: u16,
    /// Directory to fill (must not be the data directory itself: the
    /// caller moves it into place once complete).
    #[arg(long)]
    pub target: PathBuf,
    /// How long to wait for the peer to be the writer and give a copy.
    #[arg(long, default_value_t = 600)]
    pub wait_seconds: u64,
}

/// Receives the copy; prints the GTID position (a line, maybe empty).
pub async fn run(settings: Settings, out: &mut dyn Write) -> Result<()> {
    crate::controller::init_logging(crate::controller::LogFormat::Text);
    let password = Password::new(
        std::env::var(ADMIN_PASSWORD_ENV)
            .with_context(|| format!("{ADMIN_PASSWORD_ENV} is not set"))?,
    );
    let client = crate::apiclient::client(crate::apiclient::Use::Requests).await?;
    let leases: kube::Api<Lease> = kube::Api::namespaced(client, &settings.at.namespace);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(settings.wait_seconds);
    let mut pause = Duration::from_secs(2);
    let (bytes, gtid) = loop {
        let started = std::time::Instant::now();
        let attempt = async {
            let lease = leases
                .get(&settings.at.lease)
                .await
                .map_err(|e| std::io::Error::other(format!("reading the writer Lease: {e}")))?;
            let peer = donor_address(&WriterLease::of(&lease), &settings.at.pod)
                .map_err(std::io::Error::other)?;
            tracing::info!(%peer, "seed: asking the writer's agent for a copy");
            super::stream::fetch(
                &peer,
                settings.port,
                &settings.at.pod,
                &password,
                (Path::new("mariadb-backup"), Path::new("mbstream")),
                &settings.target,
            )
            .await
        };
        match attempt.await {
            Ok(got) => {
                tracing::info!(
                    bytes = got.0,
                    seconds = started.elapsed().as_secs_f64(),
                    "seed: copy received and prepared"
                );
                break got;
            }
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, "seed: no copy yet; asking again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e).context("seed: no copy from the writer"),
        }
    };
    let gtid = gtid.unwrap_or_default();
    if !is_gtid_position(&gtid) {
        anyhow::bail!("seed: the copy's GTID position {gtid:?} is not one");
    }
    tracing::info!(bytes, gtid, "seed: done");
    writeln!(out, "{gtid}")?;
    Ok(())
}

/// The donor's address: the Lease's holder, never `me`. Pure.
pub fn donor_address(lease: &WriterLease, me: &str) -> Result<String, String> {
    let holder = lease
        .holder
        .as_deref()
        .ok_or("the pair has no writer (the Lease names no holder)")?;
    if holder == me {
        return Err("the Lease names this pod, whose data is gone: no donor".into());
    }
    lease
        .addresses
        .get(holder)
        .cloned()
        .ok_or_else(|| format!("the Lease gives no address for the writer {holder}"))
}

/// Whether `text` is a MariaDB GTID position (`domain-server-seq`, comma
/// separated, or empty): it is written into SQL by the bootstrap script.
/// Pure.
pub fn is_gtid_position(text: &str) -> bool {
    text.is_empty()
        || text.split(',').all(|g| {
            let parts: Vec<&str> = g.split('-').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Copies the running program into `dir` as `mysql-aa-operator`.
pub fn install_self(dir: &Path, out: &mut dyn Write) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let me = std::env::current_exe().context("finding this program")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let target = dir.join("mysql-aa-operator");
    let partial = dir.join(".mysql-aa-operator.partial");
    std::fs::copy(&me, &partial).with_context(|| format!("copying to {}", partial.display()))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&partial, &target)?;
    writeln!(out, "installed {}", target.display())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_donor_is_the_holder_and_never_this_pod() {
        let lease = |holder: Option<&str>, addresses: &[(&str, &str)]| WriterLease {
            holder: holder.map(String::from),
            addresses: addresses
                .iter()
                .map(|(p, a)| (p.to_string(), a.to_string()))
                .collect(),
            ..WriterLease::default()
        };
        let both = [("db-0", "10.0.0.2"), ("db-1", "10.0.0.3")];
        // (what, lease, me, donor)
        let rows = [
            (
                "peer holds",
                lease(Some("db-0"), &both),
                "db-1",
                Ok("10.0.0.2"),
            ),
            (
                "this pod holds",
                lease(Some("db-1"), &both),
                "db-1",
                Err(()),
            ),
            ("no holder", lease(None, &both), "db-1", Err(())),
            (
                "no address",
                lease(Some("db-0"), &both[1..]),
                "db-1",
                Err(()),
            ),
        ];
        for (what, l, me, want) in rows {
            let got = donor_address(&l, me);
            assert_eq!(got.as_deref().map_err(drop), want, "{what}: {got:?}");
        }
    }

    #[test]
    fn only_gtid_positions_reach_the_script() {
        for ok in ["", "0-1-5", "0-1-5,7-3000-12"] {
            assert!(is_gtid_position(ok), "{ok:?}");
        }
        for bad in ["0-1", "0-1-5'", "a-1-2", "0-1-5,", "0--5", "1-2-3; DROP"] {
            assert!(!is_gtid_position(bad), "{bad:?}");
        }
    }
}
