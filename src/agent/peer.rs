//! The peer's confirmation: a writer whose agent cannot reach the API
//! server asks its peer's agent whether it still replicates from it. The
//! peer says yes only while its own server is fenced and its receiver runs
//! — a failover stops that receiver first (`StopReceiving`) and unfences
//! the peer after, so a yes means no failover has begun. An API server
//! outage then leaves a healthy writer writing, while a writer cut off from
//! its peer too is fenced when its last renewal runs out.
//!
//! Protocol: one line `CONFIRM <pod>\n`, one line back: `YES\n` or
//! `NO <reason>\n`. The operator asks the candidate's agent `LAST\n` after
//! stopping its receiver (answer: `LAST <ms>\n` since its last yes, or
//! `LAST never\n`), and waits only what is left of that confirmation's
//! validity before it deletes the old writer's pod: a cut-off writer is
//! then killed by its own agent first (a graceful shutdown of a semi-sync
//! source releases the commits waiting for an acknowledgement).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::mysql::{MySqlClient, Observation, Server, ThreadState};

/// Whether a node that observed itself as `o` confirms the writer that
/// asks. Pure.
pub fn confirms(o: &Observation) -> Result<(), String> {
    if !o.fenced() {
        return Err("this node is writable".into());
    }
    match &o.replica {
        Some(r) if r.io_running == ThreadState::Yes => Ok(()),
        Some(r) => Err(format!("its receiver is {:?}", r.io_running)),
        None => Err("it has no replication channel".into()),
    }
}

/// Answers confirmations on `listener` from what the local server says,
/// and, where this agent can give copies (`seed`, MariaDB), the seed
/// requests of a peer that lost its data ([`crate::reseed::stream`]).
pub async fn serve(
    listener: TcpListener,
    server: Arc<MySqlClient>,
    seed: Option<Arc<crate::reseed::stream::DonorSide>>,
) {
    let last_yes: Arc<std::sync::Mutex<Option<std::time::Instant>>> = Arc::default();
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            continue;
        };
        let server = server.clone();
        let last_yes = last_yes.clone();
        let seed = seed.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read);
            let read = reader.read_line(&mut line);
            if tokio::time::timeout(Duration::from_secs(1), read)
                .await
                .is_err()
            {
                return;
            }
            if line.trim() == "LAST" {
                let since = last_yes
                    .lock()
                    .ok()
                    .and_then(|l| *l)
                    .map(|t| t.elapsed().as_millis());
                let reply = since.map_or("LAST never\n".to_string(), |ms| format!("LAST {ms}\n"));
                let _ = write.write_all(reply.as_bytes()).await;
                return;
            }
            if line.trim() == "SEEDING" {
                let reply = match &seed {
                    Some(side) => {
                        let d = side.donation.lock().ok().and_then(|d| d.clone());
                        crate::reseed::stream::donation_line(d.as_ref(), std::time::Instant::now())
                    }
                    None => "SEEDING none".into(),
                };
                let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
                return;
            }
            if let Some(recipient) = line.trim().strip_prefix("SEED ") {
                let Some(side) = &seed else {
                    let _ = write
                        .write_all(b"NO this agent gives no copies (MySQL seeds by CLONE)\n")
                        .await;
                    return;
                };
                let writable = server.observe().await.is_ok_and(|o| o.writable());
                let recipient = recipient.to_string();
                if let Err(e) = crate::reseed::stream::donate(
                    side,
                    &recipient,
                    &mut reader,
                    &mut write,
                    writable,
                )
                .await
                {
                    tracing::warn!(%recipient, %from, error = %e, "seed request failed");
                }
                return;
            }
            let Some(asker) = line.trim().strip_prefix("CONFIRM ") else {
                let _ = write.write_all(b"NO unknown request\n").await;
                return;
            };
            let answer = match server.observe().await {
                Ok(o) => confirms(&o),
                Err(e) => Err(format!("its server does not answer: {e}")),
            };
            tracing::debug!(asker, %from, ?answer, "confirmation asked");
            let reply = match answer {
                Ok(()) => {
                    if let Ok(mut l) = last_yes.lock() {
                        *l = Some(std::time::Instant::now());
                    }
                    "YES\n".to_string()
                }
                Err(why) => format!("NO {why}\n"),
            };
            let _ = write.write_all(reply.as_bytes()).await;
        });
    }
}

/// How long ago the agent at `address:port` last confirmed a writer
/// (`None`: never since it started), asked within `limit`.
pub async fn since_last_confirmation(
    address: &str,
    port: u16,
    limit: Duration,
) -> Result<Option<Duration>, String> {
    let line = exchange(address, port, "LAST", limit).await?;
    match line.strip_prefix("LAST ") {
        Some("never") => Ok(None),
        Some(ms) => ms
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| format!("unexpected answer {line:?}")),
        None => Err(format!("unexpected answer {line:?}")),
    }
}

/// Sends one request line to the agent at `address:port`; its answer line.
async fn exchange(
    address: &str,
    port: u16,
    request: &str,
    limit: Duration,
) -> Result<String, String> {
    let work = async {
        let mut stream = TcpStream::connect((address, port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        stream
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(|e| format!("asking: {e}"))?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("reading: {e}"))?;
        Ok(line.trim().to_string())
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()))
}

/// The copy the agent at `address:port` gives or last gave a peer
/// (MariaDB): `(recipient, bytes, seconds since it started, state)`;
/// `None` when it gave none since it started.
pub async fn donation(
    address: &str,
    port: u16,
    limit: Duration,
) -> Result<Option<(String, u64, u64, String)>, String> {
    let line = exchange(address, port, "SEEDING", limit).await?;
    if line == "SEEDING none" {
        return Ok(None);
    }
    crate::reseed::stream::parse_donation(&line)
        .map(Some)
        .ok_or_else(|| format!("unexpected answer {line:?}"))
}

/// Asks the agent at `address:port` to confirm `me`, within `limit`.
pub async fn ask(address: &str, port: u16, me: &str, limit: Duration) -> Result<(), String> {
    let line = exchange(address, port, &format!("CONFIRM {me}"), limit).await?;
    match line.as_str() {
        "YES" => Ok(()),
        other => Err(other.strip_prefix("NO ").unwrap_or(other).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::testkit::{node, obs, replica};

    #[test]
    fn a_peer_confirms_only_while_fenced_and_receiving() {
        let with = |io: Option<ThreadState>, writable: bool| {
            let mut b = node(1);
            if writable {
                b = b.writable();
            }
            let mut n = b.build();
            obs(&mut n).replica = io.map(|io| replica(0, io, ThreadState::Yes));
            obs(&mut n).clone()
        };
        // (what, observation, confirms)
        let rows = [
            (
                "fenced, receiving",
                with(Some(ThreadState::Yes), false),
                true,
            ),
            (
                "fenced, receiver stopped by a failover",
                with(Some(ThreadState::No), false),
                false,
            ),
            (
                "fenced, cut off from the writer",
                with(Some(ThreadState::Connecting), false),
                false,
            ),
            ("fenced, no channel", with(None, false), false),
            ("promoted", with(Some(ThreadState::Yes), true), false),
        ];
        for (what, o, want) in rows {
            assert_eq!(confirms(&o).is_ok(), want, "{what}: {:?}", confirms(&o));
        }
    }

    #[tokio::test]
    async fn an_unknown_request_or_no_agent_is_no_confirmation() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        drop(listener);
        let r = ask("127.0.0.1", port, "db-0", Duration::from_millis(300)).await;
        assert!(r.is_err(), "{r:?}");
    }
}
