//! What the sandbox crate's tests share.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A fresh box folder for the test `name`.
pub fn root(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.cache/boxes"))
        .join(format!("{name}-{}", std::process::id()))
}

/// Polls `f` every 250 ms until it is true; panics with `what` after
/// `limit`.
pub async fn wait<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
