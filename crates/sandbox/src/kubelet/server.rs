//! The kubelet endpoint the API server calls for `kubectl logs`:
//! `GET /containerLogs/{namespace}/{pod}/{container}` over TLS (the box's
//! CA signs its certificate), with `tailLines`, `limitBytes` and `follow`.
//! A container's output is the file the pod runner writes it to.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::stores::Stores;
use crate::controlplane::pki::Identity;

/// The running endpoint.
pub struct Server {
    /// Its port.
    pub port: u16,
    /// The accept loop.
    pub task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Ctx {
    stores: Stores,
    root: PathBuf,
}

/// The log file of `container` in the pod `namespace/name` as it runs now
/// (the pod's current UID; a recreated pod has a folder of its own).
pub fn log_file(
    root: &Path,
    stores: &Stores,
    namespace: &str,
    name: &str,
    container: &str,
) -> Option<PathBuf> {
    let uid = stores.pod(namespace, name)?["metadata"]["uid"]
        .as_str()?
        .to_string();
    let dir = root
        .join("pods")
        .join(format!("{namespace}_{name}_{}", &uid[..8.min(uid.len())]));
    Some(dir.join(format!("{container}.log")))
}

fn tail(text: &[u8], lines: usize) -> &[u8] {
    let mut end = text.len();
    if end > 0 && text[end - 1] == b'\n' {
        end -= 1;
    }
    let mut seen = 0;
    for i in (0..end).rev() {
        if text[i] == b'\n' {
            seen += 1;
            if seen == lines {
                return &text[i + 1..];
            }
        }
    }
    text
}

async fn container_logs(
    State(ctx): State<Arc<Ctx>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(path) = log_file(&ctx.root, &ctx.stores, &namespace, &pod, &container) else {
        return (
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod} is not running here\n"),
        )
            .into_response();
    };
    let Ok(text) = tokio::fs::read(&path).await else {
        return (
            StatusCode::BAD_REQUEST,
            format!("container \"{container}\" in pod \"{pod}\" is waiting to start\n"),
        )
            .into_response();
    };
    let mut body: Vec<u8> = match q.get("tailLines").and_then(|t| t.parse().ok()) {
        Some(n) => tail(&text, n).to_vec(),
        None => text.clone(),
    };
    if let Some(limit) = q.get("limitBytes").and_then(|l| l.parse::<usize>().ok()) {
        body.truncate(limit);
    }
    if q.get("follow").map(String::as_str) != Some("true") {
        return body.into_response();
    }
    // follow: what is there, then what is appended, until the client goes.
    let start = text.len() as u64;
    let stream = futures::stream::unfold(
        (path, start, Some(body)),
        |(path, offset, first)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, std::io::Error>(first), (path, offset, None)));
            }
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let data = tokio::fs::read(&path).await.ok()?;
                if (data.len() as u64) > offset {
                    let chunk = data[offset as usize..].to_vec();
                    let next = data.len() as u64;
                    return Some((Ok(chunk), (path, next, None)));
                }
            }
        },
    );
    Response::new(Body::from_stream(stream))
}

impl Server {
    /// Serves on `ip` (a free port) with the `serving` identity.
    pub async fn start(
        ip: &str,
        serving: Identity,
        stores: Stores,
        root: PathBuf,
    ) -> std::io::Result<Self> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&serving.cert)
            .map_err(std::io::Error::other)?
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
        let key = PrivateKeyDer::from_pem_file(&serving.key).map_err(std::io::Error::other)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
        let port = listener.local_addr()?.port();
        let app = Router::new()
            .route(
                "/containerLogs/{namespace}/{pod}/{container}",
                get(container_logs),
            )
            .with_state(Arc::new(Ctx { stores, root }));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Ok(Self { port, task })
    }
}
