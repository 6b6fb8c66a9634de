//! The MariaDB seed's wire: the recipient's init container
//! (`mysql-aa-operator seed-receive`) asks the writer's agent for a copy
//! on the agents' port, proves it belongs to the pair, and reads the
//! streamed `mariadb-backup` in frames.
//!
//! Protocol (after the agents' one-line request `SEED <pod>`):
//!
//! 1. donor: `NONCE <hex>` (fresh random bytes per connection) or `NO <why>`;
//! 2. recipient: `PROOF <hex>`: HMAC-SHA256 keyed with the pair's admin
//!    password over the pod's name and the nonce ([`proof`]): the password
//!    never crosses the network, and a recorded proof is worth nothing on
//!    another connection;
//! 3. donor: `OK` (then the stream) or `NO <why>` (not the writer, a bad
//!    proof, a seed already running);
//! 4. donor: frames of `u32` big-endian length and bytes; a frame of length
//!    0 ends the stream and is followed by one line, `DONE <bytes>` or
//!    `FAILED <why>`: a copy cut short is never taken for a complete one.
//!
//! The stream itself is not encrypted (like replication without
//! `spec.replication.tls`): it carries the writer's data between the pair's
//! own pods.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::mariadb::{Donor, receive, send};
use crate::mysql::Password;

/// The largest frame the donor sends.
pub const FRAME: usize = 64 * 1024;

/// The proof that the asker knows the pair's admin password: HMAC-SHA256
/// of `pod` and `nonce`, as hex. Pure.
pub fn proof(password: &Password, pod: &str, nonce: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, password.expose().as_bytes());
    let tag = ring::hmac::sign(&key, message(pod, nonce).as_bytes());
    hex(tag.as_ref())
}

/// Whether `claimed` is the proof for `pod` and `nonce` (compared in
/// constant time). Pure.
pub fn verify(password: &Password, pod: &str, nonce: &str, claimed: &str) -> bool {
    let Some(bytes) = unhex(claimed) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, password.expose().as_bytes());
    ring::hmac::verify(&key, message(pod, nonce).as_bytes(), &bytes).is_ok()
}

fn message(pod: &str, nonce: &str) -> String {
    format!("mysql-aa seed\n{pod}\n{nonce}\n")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where a donation stands, as the donor's agent reports it (`SEEDING`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Donation {
    /// The recipient pod.
    pub pod: String,
    /// Bytes sent so far.
    pub bytes: u64,
    /// `Sending`, `Sent` or `Failed: <why>`.
    pub state: String,
    /// When it started.
    pub started: Instant,
    /// When bytes last moved.
    pub progressed: Instant,
}

/// A donation that moved no byte for this long no longer holds back the
/// next one (its peer is gone in a way the stream did not notice).
pub const STALLED: Duration = Duration::from_secs(300);

/// Whether `d` is still being sent at `now`: `Sending`, and bytes moved
/// within [`STALLED`]. Pure.
pub fn still_sending(d: &Donation, now: Instant) -> bool {
    d.state == "Sending" && now.saturating_duration_since(d.progressed) < STALLED
}

/// Line of a donation (`SEEDING <pod> <bytes> <seconds> <state>`, or
/// `SEEDING none`). Pure.
pub fn donation_line(d: Option<&Donation>, now: Instant) -> String {
    match d {
        None => "SEEDING none".into(),
        Some(d) => format!(
            "SEEDING {} {} {} {}",
            d.pod,
            d.bytes,
            now.saturating_duration_since(d.started).as_secs(),
            d.state
        ),
    }
}

/// A donation read back from its line; `None` for `SEEDING none` or
/// anything else. Pure.
pub fn parse_donation(line: &str) -> Option<(String, u64, u64, String)> {
    let rest = line.trim().strip_prefix("SEEDING ")?;
    let mut parts = rest.splitn(4, ' ');
    let pod = parts.next()?.to_string();
    let bytes = parts.next()?.parse().ok()?;
    let secs = parts.next()?.parse().ok()?;
    let state = parts.next()?.to_string();
    Some((pod, bytes, secs, state))
}

/// What the donor's agent needs to give a copy.
pub struct DonorSide {
    /// How `mariadb-backup` reaches the local server.
    pub donor: Donor,
    /// The pair's admin password (the proofs' key).
    pub password: Password,
    /// Until when this node is the writer (its agent's Lease validity);
    /// `None`: not the writer.
    pub writer_until: Arc<Mutex<Option<Instant>>>,
    /// The last donation.
    pub donation: Arc<Mutex<Option<Donation>>>,
}

impl DonorSide {
    fn is_writer(&self) -> bool {
        self.writer_until
            .lock()
            .ok()
            .and_then(|u| *u)
            .is_some_and(|u| Instant::now() < u)
    }

    fn running(&self) -> bool {
        let now = Instant::now();
        self.donation
            .lock()
            .ok()
            .is_some_and(|d| d.as_ref().is_some_and(|d| still_sending(d, now)))
    }

    fn set(&self, f: impl FnOnce(&mut Option<Donation>)) {
        if let Ok(mut d) = self.donation.lock() {
            f(&mut d);
        }
    }
}

/// Serves one `SEED <pod>` request: `reader` has read the request line,
/// `write` is the connection's other half. `writable`: whether the local
/// server takes writes now.
pub async fn donate<R, W>(
    side: &DonorSide,
    pod: &str,
    reader: &mut BufReader<R>,
    write: &mut W,
    writable: bool,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let nonce = hex(&rand::random::<[u8; 16]>());
    write
        .write_all(format!("NONCE {nonce}\n").as_bytes())
        .await?;
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::other("no proof in time"))??;
    let claimed = line.trim().strip_prefix("PROOF ").unwrap_or_default();
    let refusal = if !verify(&side.password, pod, &nonce, claimed) {
        Some("the proof does not match the pair's password")
    } else if !side.is_writer() || !writable {
        Some("this node is not the writer")
    } else if side.running() {
        Some("a copy is being sent already")
    } else {
        None
    };
    if let Some(why) = refusal {
        tracing::warn!(recipient = pod, why, "seed refused");
        write.write_all(format!("NO {why}\n").as_bytes()).await?;
        return Ok(());
    }
    write.write_all(b"OK\n").await?;
    tracing::info!(recipient = pod, "seed: sending a copy (mariadb-backup)");
    side.set(|d| {
        *d = Some(Donation {
            pod: pod.to_string(),
            bytes: 0,
            state: "Sending".into(),
            started: Instant::now(),
            progressed: Instant::now(),
        })
    });
    // Each half is owned by its side: a side that ends drops its half, so
    // the other one ends too (a recipient gone stops the backup, a backup
    // that failed ends the stream) instead of waiting forever.
    let (mut into, mut from) = tokio::io::duplex(FRAME);
    let backup = async move {
        let r = send(&side.donor, &mut into).await;
        drop(into);
        r
    };
    let sink = &mut *write;
    let frames = async move {
        let mut buf = vec![0u8; FRAME];
        let mut sent = 0u64;
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<u64, io::Error>(sent);
            }
            let len = u32::try_from(n).map_err(io::Error::other)?;
            sink.write_all(&len.to_be_bytes()).await?;
            sink.write_all(&buf[..n]).await?;
            sent += n as u64;
            side.set(|d| {
                if let Some(d) = d {
                    d.bytes = sent;
                    d.progressed = Instant::now();
                }
            });
        }
    };
    let (backup, frames) = tokio::join!(backup, frames);
    let outcome = match (backup, frames) {
        (Ok(_), Ok(sent)) => Ok(sent),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let trailer = match &outcome {
        Ok(sent) => format!("DONE {sent}\n"),
        Err(e) => format!("FAILED {}\n", e.to_string().replace('\n', " ")),
    };
    // The recipient may be gone (its failure is the outcome): best effort.
    let _ = write.write_all(&0u32.to_be_bytes()).await;
    let _ = write.write_all(trailer.as_bytes()).await;
    let _ = write.flush().await;
    match &outcome {
        Ok(sent) => tracing::info!(recipient = pod, bytes = sent, "seed: copy sent"),
        Err(e) => tracing::warn!(recipient = pod, error = %e, "seed: copy failed"),
    }
    side.set(|d| {
        if let Some(d) = d {
            d.state = match &outcome {
                Ok(_) => "Sent".into(),
                Err(e) => format!("Failed: {e}"),
            };
        }
    });
    outcome.map(drop)
}

/// Reads the donor's frames from `source` into `sink` until the end frame;
/// the bytes received, or why the copy is not complete.
pub async fn unframe<R, W>(source: &mut BufReader<R>, sink: &mut W) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut got = 0u64;
    let mut buf = vec![0u8; FRAME];
    loop {
        let mut len = [0u8; 4];
        source.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            break;
        }
        if len > FRAME {
            return Err(io::Error::other(format!("a frame of {len} bytes")));
        }
        source.read_exact(&mut buf[..len]).await?;
        sink.write_all(&buf[..len]).await?;
        got += len as u64;
    }
    sink.flush().await?;
    let mut line = String::new();
    source.read_line(&mut line).await?;
    match line.trim().split_once(' ') {
        Some(("DONE", n)) if n.parse() == Ok(got) => Ok(got),
        Some(("DONE", n)) => Err(io::Error::other(format!(
            "the donor sent {n} bytes, {got} arrived"
        ))),
        _ => Err(io::Error::other(format!(
            "the donor's copy failed: {}",
            line.trim().strip_prefix("FAILED ").unwrap_or(line.trim())
        ))),
    }
}

/// The recipient's side: asks the agent at `peer:port` for a copy as
/// `pod`, unpacks and prepares it into `target` (a fresh directory; one
/// left by an interrupted attempt is removed first) with the programs
/// `backup` and `mbstream`. Returns the bytes received and the GTID
/// position to replicate from.
pub async fn fetch(
    peer: &str,
    port: u16,
    pod: &str,
    password: &Password,
    programs: (&std::path::Path, &std::path::Path),
    target: &std::path::Path,
) -> io::Result<(u64, Option<String>)> {
    let stream = TcpStream::connect((peer, port)).await?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(format!("SEED {pod}\n").as_bytes()).await?;
    let answer = |line: &str| {
        line.trim()
            .strip_prefix("NO ")
            .map(|why| io::Error::other(format!("the writer's agent refused: {why}")))
    };
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    if let Some(e) = answer(&line) {
        return Err(e);
    }
    let nonce = line
        .trim()
        .strip_prefix("NONCE ")
        .ok_or_else(|| io::Error::other(format!("unexpected answer {:?}", line.trim())))?
        .to_string();
    write
        .write_all(format!("PROOF {}\n", proof(password, pod, &nonce)).as_bytes())
        .await?;
    line.clear();
    reader.read_line(&mut line).await?;
    if let Some(e) = answer(&line) {
        return Err(e);
    }
    if line.trim() != "OK" {
        return Err(io::Error::other(format!(
            "unexpected answer {:?}",
            line.trim()
        )));
    }
    if tokio::fs::metadata(target).await.is_ok() {
        tokio::fs::remove_dir_all(target).await?;
    }
    // Each half is owned by its side (see `donate`): an unpacking that
    // failed ends the reading of the stream.
    let (mut into, mut from) = tokio::io::duplex(FRAME);
    let frames = async move {
        let r = unframe(&mut reader, &mut into).await;
        drop(into);
        r
    };
    let unpack = async move { receive(programs.0, programs.1, &mut from, target).await };
    let (frames, unpacked) = tokio::join!(frames, unpack);
    let bytes = frames?;
    let gtid = unpacked?;
    Ok((bytes, gtid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_the_password_the_pod_and_the_nonce() {
        let pw = Password::new("s3cret");
        let p = proof(&pw, "db-1", "00ff");
        assert_eq!(p.len(), 64);
        assert!(verify(&pw, "db-1", "00ff", &p));
        // (what, password, pod, nonce, claimed)
        let rows = [
            ("another password", "other", "db-1", "00ff", p.clone()),
            ("another pod", "s3cret", "db-0", "00ff", p.clone()),
            ("another nonce", "s3cret", "db-1", "0100", p.clone()),
            ("not hex", "s3cret", "db-1", "00ff", "zz".repeat(32)),
            ("odd length", "s3cret", "db-1", "00ff", p[1..].to_string()),
            ("empty", "s3cret", "db-1", "00ff", String::new()),
        ];
        for (what, pw, pod, nonce, claimed) in rows {
            assert!(
                !verify(&Password::new(pw), pod, nonce, &claimed),
                "{what} must not verify"
            );
        }
    }

    #[test]
    fn a_stalled_donation_no_longer_holds_the_next_back() {
        let now = Instant::now();
        let d = |state: &str, idle: Duration| {
            Donation {
                pod: "db-1".into(),
                bytes: 1,
                state: state.into(),
                started: now,
                progressed: now,
            }
            .with_idle(idle)
        };
        // (what, (donation, when), still sending)
        let rows = [
            ("moving", d("Sending", Duration::from_secs(1)), true),
            ("stalled", d("Sending", STALLED), false),
            ("sent", d("Sent", Duration::ZERO), false),
            ("failed", d("Failed: x", Duration::ZERO), false),
        ];
        for (what, (donation, at), want) in rows {
            assert_eq!(still_sending(&donation, at), want, "{what}");
        }
    }

    impl Donation {
        /// The donation and the moment it has been idle for `idle`.
        fn with_idle(self, idle: Duration) -> (Self, Instant) {
            let at = self.progressed + idle;
            (self, at)
        }
    }

    #[test]
    fn donation_lines_round_trip() {
        let now = Instant::now();
        let d = Donation {
            pod: "db-1".into(),
            bytes: 1234,
            state: "Failed: mariadb-backup --backup failed: x y".into(),
            started: now,
            progressed: now,
        };
        let line = donation_line(Some(&d), now + Duration::from_secs(7));
        assert_eq!(
            parse_donation(&line),
            Some((
                "db-1".into(),
                1234,
                7,
                "Failed: mariadb-backup --backup failed: x y".into()
            ))
        );
        assert_eq!(donation_line(None, now), "SEEDING none");
        assert_eq!(parse_donation("SEEDING none"), None);
    }

    async fn framed(body: &[u8], trailer: &str) -> io::Result<(u64, Vec<u8>)> {
        let mut wire = Vec::new();
        for chunk in body.chunks(FRAME) {
            wire.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            wire.extend_from_slice(chunk);
        }
        wire.extend_from_slice(&0u32.to_be_bytes());
        wire.extend_from_slice(trailer.as_bytes());
        let mut reader = BufReader::new(&wire[..]);
        let mut out = Vec::new();
        let n = unframe(&mut reader, &mut out).await?;
        Ok((n, out))
    }

    #[tokio::test]
    async fn only_a_complete_stream_is_taken() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (n, out) = framed(&body, "DONE 200000\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((n, out.len()), (200_000, 200_000));
        assert_eq!(out, body);
        for trailer in ["FAILED mariadb-backup died\n", "DONE 5\n", ""] {
            let r = framed(&body, trailer).await;
            assert!(r.is_err(), "{trailer:?}: {r:?}");
        }
        // Cut in the middle of a frame.
        let mut reader = BufReader::new(&[0u8, 0, 1, 0, 7][..]);
        let mut out = Vec::new();
        assert!(unframe(&mut reader, &mut out).await.is_err());
    }
}
