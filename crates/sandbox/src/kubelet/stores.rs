//! What the virtual kubelet reads, from watches (kube-runtime reflectors)
//! rather than GETs: pods, ConfigMaps, Secrets, PVCs and PVs. A change of a
//! pod wakes the kubelet's loop.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

/// The kubelet's read caches.
#[derive(Clone)]
pub struct Stores {
    pods: Store<Pod>,
    configmaps: Store<ConfigMap>,
    secrets: Store<Secret>,
    pvcs: Store<PersistentVolumeClaim>,
    pvs: Store<PersistentVolume>,
    /// Notified on every pod change.
    pub changed: Arc<Notify>,
    tasks: Arc<Vec<tokio::task::AbortHandle>>,
}

fn reflect<K>(
    api: Api<K>,
    changed: Option<Arc<Notify>>,
    tasks: &mut Vec<tokio::task::AbortHandle>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {
            if let Some(n) = &changed {
                n.notify_one();
            }
        }
    });
    tasks.push(task.abort_handle());
    reader
}

fn to_value<K: Serialize>(k: &K) -> Value {
    serde_json::to_value(k).unwrap_or(Value::Null)
}

impl Stores {
    /// Starts the watches.
    pub fn start(client: &kube::Client) -> Self {
        let changed = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let pods = reflect(Api::all(client.clone()), Some(changed.clone()), &mut tasks);
        let configmaps = reflect(Api::all(client.clone()), None, &mut tasks);
        let secrets = reflect(Api::all(client.clone()), None, &mut tasks);
        let pvcs = reflect(Api::all(client.clone()), Some(changed.clone()), &mut tasks);
        let pvs = reflect(Api::all(client.clone()), Some(changed.clone()), &mut tasks);
        Self {
            pods,
            configmaps,
            secrets,
            pvcs,
            pvs,
            changed,
            tasks: Arc::new(tasks),
        }
    }

    /// Waits until every watch has listed once.
    pub async fn wait_synced(&self) {
        // Each wait is re-polled: kube-runtime 5.0's readiness future did
        // not always wake its waiter (seen in the operator's /readyz).
        async fn ready<K>(s: &Store<K>)
        where
            K: kube::Resource<DynamicType = ()> + Clone + 'static,
        {
            while tokio::time::timeout(std::time::Duration::from_millis(250), s.wait_until_ready())
                .await
                .is_err()
            {}
        }
        ready(&self.pods).await;
        ready(&self.configmaps).await;
        ready(&self.secrets).await;
        ready(&self.pvcs).await;
        ready(&self.pvs).await;
    }

    /// Every pod, as JSON.
    pub fn pods(&self) -> Vec<Value> {
        self.pods.state().iter().map(|p| to_value(&**p)).collect()
    }

    /// One pod, as JSON.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get("pods", namespace, name)
    }

    /// One object of a kind the kubelet watches (`plural`), as JSON; PVs
    /// take an empty namespace.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        fn find<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Value>
        where
            K: kube::Resource<DynamicType = ()> + Clone + Serialize + 'static,
        {
            let mut r = ObjectRef::<K>::new(name);
            if !namespace.is_empty() {
                r = r.within(namespace);
            }
            store.get(&r).map(|o| to_value(&*o))
        }
        match plural {
            "pods" => find(&self.pods, namespace, name),
            "configmaps" => find(&self.configmaps, namespace, name),
            "secrets" => find(&self.secrets, namespace, name),
            "persistentvolumeclaims" => find(&self.pvcs, namespace, name),
            "persistentvolumes" => find(&self.pvs, "", name),
            _ => None,
        }
    }

    /// Stops the watches.
    pub fn stop(&self) {
        for t in self.tasks.iter() {
            t.abort();
        }
    }
}
