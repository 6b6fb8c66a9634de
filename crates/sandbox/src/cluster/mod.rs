//! The cluster-in-a-box: the API stand-in plus a StatefulSet controller, an
//! Endpoints controller and a kubelet that runs pods as real processes.

pub mod controllers;
pub mod images;
pub mod kubelet;
pub mod net;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::apiserver::{ApiServer, Config};

/// A running box.
pub struct Cluster {
    /// The API stand-in.
    pub api: ApiServer,
    network: Arc<Mutex<net::Network>>,
    kubelet: Arc<tokio::sync::Mutex<kubelet::Kubelet>>,
    stop: Option<watch::Sender<bool>>,
    done: Option<oneshot::Receiver<()>>,
    root: PathBuf,
}

impl Cluster {
    /// Starts a box keeping its files (pod volumes, logs, wrappers) under
    /// `root`, which must not be under `/tmp` (pods mount their own /tmp).
    pub async fn start(root: PathBuf, config: Config) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        let api = ApiServer::start(config).await?;
        api.store().set_graceful_pod_deletion(true);
        let network = Arc::new(Mutex::new(net::Network::create()?));
        let shared = api.shared();
        let kubelet = Arc::new(tokio::sync::Mutex::new(kubelet::Kubelet::new(
            shared.clone(),
            root.clone(),
            network.clone(),
        )));
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = oneshot::channel();
        let k = kubelet.clone();
        tokio::spawn(async move {
            let mut changes = shared.store.lock().expect("store lock").subscribe();
            loop {
                {
                    let mut store = shared.store.lock().expect("store lock");
                    controllers::sync_statefulsets(&mut store);
                    controllers::sync_endpoints(&mut store);
                }
                k.lock().await.sync().await;
                {
                    let mut store = shared.store.lock().expect("store lock");
                    controllers::sync_endpoints(&mut store);
                }
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    _ = changes.recv() => {}
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                }
                while changes.try_recv().is_ok() {}
            }
            k.lock().await.stop_all().await;
            let _ = done_tx.send(());
        });
        Ok(Self {
            api,
            network,
            kubelet,
            stop: Some(stop_tx),
            done: Some(done_rx),
            root,
        })
    }

    /// Main PID of a running container (tests use it for `kill -9`).
    pub async fn container_pid(&self, namespace: &str, pod: &str, container: &str) -> Option<u32> {
        self.kubelet
            .lock()
            .await
            .container_pid(namespace, pod, container)
    }

    /// Simulates the loss of `pod`'s node: its processes are killed and not
    /// restarted until [`Cluster::recover_node`].
    pub async fn fail_node(&self, namespace: &str, pod: &str) {
        self.kubelet.lock().await.fail(namespace, pod);
    }

    /// Brings `pod`'s node back: its containers start again.
    pub async fn recover_node(&self, namespace: &str, pod: &str) {
        self.kubelet.lock().await.recover(namespace, pod);
    }

    /// Where the box keeps its files.
    pub fn root(&self) -> &PathBuf {
        &self.root
    }

    /// Stops every pod and the network, and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(60), done).await;
        }
        self.network.lock().expect("network lock").cleanup();
        self.remove_files();
    }

    fn remove_files(&self) {
        if std::env::var_os("MYSQL_AA_KEEP_BOXES").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        // Whatever still runs in the pods' namespaces dies with them.
        if let Ok(mut n) = self.network.lock() {
            n.cleanup();
        }
        self.remove_files();
    }
}
