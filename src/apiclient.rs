//! The clients of the Kubernetes API, every call bounded in time.
//!
//! kube-client sets no read timeout by default: a request sent on a
//! connection whose server died without closing it (a kube-apiserver killed
//! while the connection sat in its accept queue, or a network that drops
//! packets) waits forever. The fault matrix found exactly that after
//! kube-apiserver and etcd restarts: the pair loop stuck on one status
//! write, and watches that never resumed, so the operator acted on stale
//! copies (labels and the writer EndpointSlice rewritten every cycle).
//!
//! Two clients, so that a bound fits each use: [`Use::Requests`] (gets,
//! patches, Events, the leader Lease) gives up after a few seconds, and
//! [`Use::Watches`] asks the server to end each watch after
//! [`WATCH_SECONDS`] and gives up on a connection silent for longer than
//! that, so a watch or list left on a dead connection is started anew.

use std::time::Duration;

use anyhow::{Context as _, Result};
use kube::{Client, Config};

/// What a client is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// Single requests: an answer within [`REQUEST_READ_TIMEOUT`].
    Requests,
    /// Lists and watches: a server-side watch timeout of [`WATCH_SECONDS`]
    /// and a silence bound of [`WATCH_READ_TIMEOUT`].
    Watches,
}

/// Bound on opening a connection (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a request's answer (counted from the moment it was sent): an
/// API server answers in milliseconds; one that has not answered in this
/// long is not going to.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on sending a request.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds after which the API server ends each watch (the watcher then
/// resumes it from the last resource version it saw).
/// (client-go notices a dead connection in about 45 s through HTTP/2 pings;
/// kube-client speaks HTTP/1.1, so the watch's own end is the probe: one
/// request per watch every 50 s, about 14 a minute for the operator's 12.)
pub const WATCH_SECONDS: u32 = 50;
/// Bound on a watch connection's silence: longer than [`WATCH_SECONDS`], so
/// a healthy quiet watch ends on the server's side first.
pub const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(WATCH_SECONDS as u64 + 5);

/// `config` with the bounds of `usage`. Pure.
pub fn bounded(mut config: Config, usage: Use) -> Config {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    config.read_timeout = Some(match usage {
        Use::Requests => REQUEST_READ_TIMEOUT,
        Use::Watches => WATCH_READ_TIMEOUT,
    });
    // The read bound counts from the request, not from when its pooled
    // connection went idle.
    config.reset_reader_on_write = true;
    config
}

/// A client for `usage` from the environment (KUBECONFIG, ~/.kube/config or
/// in-cluster).
pub async fn client(usage: Use) -> Result<Client> {
    let config = Config::infer().await.context(
        "reading the Kubernetes client configuration (KUBECONFIG, ~/.kube/config or in-cluster)",
    )?;
    Client::try_from(bounded(config, usage)).context("building the Kubernetes API client")
}

/// The watcher configuration for [`Use::Watches`] clients: the server ends
/// each watch within [`WATCH_SECONDS`].
pub fn watch_config() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default().timeout(WATCH_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new("https://127.0.0.1:6443".parse().unwrap())
    }

    #[test]
    fn every_call_is_bounded_and_a_quiet_watch_ends_on_the_server_first() {
        // (use, read bound)
        let rows = [
            (Use::Requests, REQUEST_READ_TIMEOUT),
            (Use::Watches, WATCH_READ_TIMEOUT),
        ];
        for (usage, read) in rows {
            let c = bounded(config(), usage);
            assert_eq!(c.read_timeout, Some(read), "{usage:?}");
            assert_eq!(c.connect_timeout, Some(CONNECT_TIMEOUT), "{usage:?}");
            assert_eq!(c.write_timeout, Some(WRITE_TIMEOUT), "{usage:?}");
            assert!(c.reset_reader_on_write, "{usage:?}");
        }
        assert!(Duration::from_secs(WATCH_SECONDS.into()) < WATCH_READ_TIMEOUT);
        assert_eq!(watch_config().timeout, Some(WATCH_SECONDS));
    }
}
