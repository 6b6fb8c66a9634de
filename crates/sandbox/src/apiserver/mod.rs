//! A Kubernetes API stand-in, serving HTTP on 127.0.0.1, faithful enough for
//! kube-rs (clients, watchers, controllers) and for the real `kubectl`.
//!
//! What it approximates or leaves out, compared with kube-apiserver:
//! - server-side apply is "create if missing, else JSON merge patch": no
//!   managedFields, no field ownership or conflicts, lists are replaced;
//! - strategic merge patches are applied as JSON merge patches;
//! - unknown fields of custom resources are rejected (kubectl's default
//!   strict validation), never pruned; built-in kinds are not validated;
//! - a label-selector watch does not send DELETED when an object stops
//!   matching; watch history keeps the last 10,000 changes;
//! - request bodies are JSON or YAML, never protobuf (imperative
//!   `kubectl create <built-in kind>` sends protobuf and gets 415: use
//!   `kubectl apply -f`);
//! - `dryRun` is not supported; the OpenAPI v3 description is minimal (the
//!   PATCH parameters kubectl checks, the custom resources' schemas; built-in
//!   kinds have no schema, so kubectl needs `--validate=false` for them), no admission webhooks, no
//!   authentication beyond naming the caller from its bearer token, and no
//!   authorization yet;
//! - garbage collection is immediate and background-only (`Orphan` is
//!   honoured); namespace deletion removes the contents at once.

pub mod http;
pub mod openapi;
pub mod rbac;
pub mod registry;
pub mod selectors;
pub mod store;
pub mod table;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub use http::{Config, RequestRecord};
pub use store::Store;

/// A running stand-in.
pub struct ApiServer {
    addr: SocketAddr,
    shared: Arc<http::Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ApiServer {
    /// Starts a stand-in on 127.0.0.1 with a random port.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(http::Shared {
            store: Mutex::new(Store::new()),
            log: Mutex::new(Vec::new()),
            config,
            address: addr.to_string(),
        });
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The storage, for tests and the controllers of the box.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.store.lock().expect("store lock")
    }

    /// State shared with the box's controllers.
    pub(crate) fn shared(&self) -> Arc<http::Shared> {
        self.shared.clone()
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// A kubeconfig whose user `user` authenticates with a bearer token
    /// naming it (the stand-in records it as the caller).
    pub fn kubeconfig(&self, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {url}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: {user}\n    namespace: default\ncurrent-context: sandbox\nusers:\n- name: {user}\n  user:\n    token: {user}\n",
            url = self.url()
        )
    }

    /// Writes [`ApiServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, user: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(user))
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
