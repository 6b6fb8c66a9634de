//! Step `apply`: server-side apply of the built objects, read from the
//! reflector stores, never fetched. An object is written when it is
//! missing, when what the operator wants changed, or when someone changed
//! a field the operator sets (`kubectl scale`, `kubectl edit`): drift is
//! repaired. A settled pair sends no write.
//!
//! How drift is told from the API server's own changes (defaults, a
//! quantity written in canonical form): after each apply the operator
//! keeps the *projection* of the object the server returned — the live
//! values at exactly the paths the operator sets. Later, the live object
//! from the store is projected the same way; a different projection is
//! drift. After a restart of the operator nothing is kept: an object whose
//! applied-hash annotation matches and whose live values equal the wanted
//! ones is taken as is; otherwise it is applied once.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::super::context::Context;
use super::super::error::Error;
use super::super::{MANAGER, locked};
use super::build::Objects;
use crate::render;

/// Annotation with the hash of what the operator last applied.
pub const APPLIED_HASH: &str = "mysql-aa.io/applied-hash";

/// Per object (`Kind/namespace/name`): the hash of what was applied and
/// the digest of the projection of what the server returned.
#[derive(Default)]
pub struct AppliedMemo {
    inner: Mutex<HashMap<String, (String, String)>>,
}

impl AppliedMemo {
    fn get(&self, key: &str) -> Option<(String, String)> {
        locked(&self.inner).get(key).cloned()
    }

    fn put(&self, key: String, hash: String, projection: String) {
        locked(&self.inner).insert(key, (hash, projection));
    }

    /// Drops what is kept of the objects of the pair `namespace/name`.
    pub fn forget_pair(&self, pair_key: &str) {
        let Some((ns, name)) = pair_key.split_once('/') else {
            return;
        };
        locked(&self.inner).retain(|k, _| {
            let mut parts = k.splitn(3, '/');
            let (_, kns, kname) = (parts.next(), parts.next(), parts.next());
            !(kns == Some(ns)
                && kname.is_some_and(|n| n == name || n.starts_with(&format!("{name}-"))))
        });
    }
}

/// The live values of `live` at the paths `wanted` sets: objects by key,
/// arrays element by element (as many as `wanted` has); a path missing
/// from `live` projects to `null`.
pub fn projection(wanted: &Value, live: &Value) -> Value {
    match wanted {
        Value::Object(w) => Value::Object(
            w.iter()
                .map(|(k, wv)| {
                    let lv = live.get(k).unwrap_or(&Value::Null);
                    (k.clone(), projection(wv, lv))
                })
                .collect(),
        ),
        Value::Array(w) => {
            let empty = Vec::new();
            let l = live.as_array().unwrap_or(&empty);
            Value::Array(
                w.iter()
                    .enumerate()
                    .map(|(i, wv)| projection(wv, l.get(i).unwrap_or(&Value::Null)))
                    .collect(),
            )
        }
        _ => live.clone(),
    }
}

/// What to do with one object.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Live and as wanted.
    Keep,
    /// Missing (never applied by this operator process).
    Create,
    /// What the operator wants changed.
    Update,
    /// Someone changed a field the operator sets, or deleted the object.
    Repair,
}

/// Decides for one object. `remembered`: the hash and projection digest
/// kept from the last apply, if any. Pure.
pub fn verdict(
    wanted: &Value,
    wanted_hash: &str,
    live: Option<&Value>,
    remembered: Option<&(String, String)>,
) -> Verdict {
    let Some(live) = live else {
        // Applied before, gone now: someone deleted it.
        return if remembered.is_some() {
            Verdict::Repair
        } else {
            Verdict::Create
        };
    };
    let projected = projection(wanted, live);
    match remembered {
        Some((hash, digest)) if hash == wanted_hash => {
            if render::meta::digest(&projected.to_string()) == *digest {
                Verdict::Keep
            } else {
                Verdict::Repair
            }
        }
        Some(_) => Verdict::Update,
        None => {
            let live_hash = live
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(APPLIED_HASH))
                .and_then(Value::as_str);
            match (live_hash == Some(wanted_hash), projected == *wanted) {
                (true, true) => Verdict::Keep,
                (true, false) => Verdict::Repair,
                (false, _) => Verdict::Update,
            }
        }
    }
}

fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// Applies `obj` unless the store's copy is as wanted; returns the verdict.
async fn apply_one<K>(ctx: &Context, store: &Store<K>, mut obj: K) -> Result<Verdict, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let hash = render::meta::digest(
        &serde_json::to_value(&obj)
            .map_err(Error::encode)?
            .to_string(),
    );
    obj.annotations_mut()
        .insert(APPLIED_HASH.into(), hash.clone());
    let wanted = serde_json::to_value(&obj).map_err(Error::encode)?;
    let key = object_key(&obj);
    let name = obj.name_any();
    let ns = obj.namespace().unwrap_or_default();
    let live = store
        .get(&ObjectRef::new(&name).within(&ns))
        .map(|l| serde_json::to_value(&*l))
        .transpose()
        .map_err(Error::encode)?;
    let v = verdict(
        &wanted,
        &hash,
        live.as_ref(),
        ctx.applied.get(&key).as_ref(),
    );
    if v == Verdict::Keep {
        if ctx.applied.get(&key).is_none()
            && let Some(live) = &live
        {
            let digest = render::meta::digest(&projection(&wanted, live).to_string());
            ctx.applied.put(key, hash, digest);
        }
        return Ok(v);
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let written = match api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
    {
        Ok(w) => w,
        Err(kube::Error::Api(s)) if is_refusal(s.code, &s.message) => {
            return Err(Error::Refused {
                object: format!("{} {ns}/{name}", K::kind(&())),
                message: s.message,
            });
        }
        Err(e) => return Err(Error::kube("apply", &key, e)),
    };
    let written = serde_json::to_value(&written).map_err(Error::encode)?;
    let digest = render::meta::digest(&projection(&wanted, &written).to_string());
    ctx.applied.put(key.clone(), hash, digest);
    tracing::info!(object = %key, verdict = ?v, "applied");
    Ok(v)
}

/// Removes the selector of the Service `namespace/name` when the store's
/// copy has one; returns whether it did.
async fn clear_selector(
    ctx: &Context,
    store: &Store<k8s_openapi::api::core::v1::Service>,
    namespace: &str,
    name: &str,
) -> Result<bool, Error> {
    let has = store
        .get(&ObjectRef::new(name).within(namespace))
        .and_then(|s| s.spec.clone())
        .and_then(|s| s.selector)
        .is_some_and(|m| !m.is_empty());
    if !has {
        return Ok(false);
    }
    let key = format!("Service/{namespace}/{name}");
    let api: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(ctx.client.clone(), namespace);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"selector": null}})),
    )
    .await
    .map_err(|e| Error::kube("apply", &key, e))?;
    tracing::info!(object = %key, "selector removed: the pair loop routes this Service");
    Ok(true)
}

/// Deletes the owned object `namespace/name` the spec no longer asks for,
/// when the store holds one; returns whether it did.
async fn delete_unwanted<K>(
    ctx: &Context,
    store: &Store<K>,
    namespace: &str,
    name: &str,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    if store.get(&ObjectRef::new(name).within(namespace)).is_none() {
        return Ok(false);
    }
    let key = format!("{}/{namespace}/{name}", K::kind(&()));
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &Default::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(Error::kube("apply", &key, e)),
    }
    tracing::info!(object = %key, "deleted: the spec no longer asks for it");
    Ok(true)
}

/// Whether an API error answering an apply means the object itself is
/// refused (retrying cannot help until the spec changes): 400 and 422, and
/// the 500 a server-side apply gets when a field of a built-in type does not
/// convert (an invalid quantity, seen on kube-apiserver v1.37).
pub fn is_refusal(code: u16, message: &str) -> bool {
    code == 400 || code == 422 || (code == 500 && message.contains("failed to convert new object"))
}

/// What apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Objects created or updated because the spec asks for something new.
    pub changed: Vec<String>,
    /// Objects restored after someone else changed or deleted them.
    pub repaired: Vec<String>,
}

/// Step `apply`: every built object, the agents' account and the writer
/// Lease first, StatefulSet last.
pub async fn apply(ctx: &Context, objects: Objects) -> Result<Applied, Error> {
    let s = &ctx.stores;
    let mut out = Applied::default();
    let mut note = |what: String, v: Verdict| match v {
        Verdict::Keep => {}
        Verdict::Create | Verdict::Update => out.changed.push(what),
        Verdict::Repair => out.repaired.push(what),
    };
    let what = |kind: &str, name: &Option<String>| {
        format!("{kind} {}", name.as_deref().unwrap_or_default())
    };
    // The agents' account first: pods naming it are refused until it exists.
    if let Some(agent) = objects.agent {
        let w = what("ServiceAccount", &agent.service_account.metadata.name);
        note(
            w,
            apply_one(ctx, &s.service_accounts, agent.service_account).await?,
        );
        let w = what("Role", &agent.role.metadata.name);
        note(w, apply_one(ctx, &s.roles, agent.role).await?);
        let w = what("RoleBinding", &agent.role_binding.metadata.name);
        note(
            w,
            apply_one(ctx, &s.role_bindings, agent.role_binding).await?,
        );
    }
    if let Some(lease) = objects.lease {
        let w = what("Lease", &lease.metadata.name);
        note(w, apply_one(ctx, &s.leases, lease).await?);
    }
    let w = what("ConfigMap", &objects.config_map.metadata.name);
    note(w, apply_one(ctx, &s.config_maps, objects.config_map).await?);
    for svc in objects.services {
        let w = what("Service", &svc.metadata.name);
        let selectorless = svc.spec.as_ref().is_some_and(|s| s.selector.is_none());
        let name = svc.metadata.name.clone().unwrap_or_default();
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        note(w.clone(), apply_one(ctx, &s.services, svc).await?);
        // A selector added by hand to the writer Service the loop routes
        // itself (SingleWriter) would make the EndpointSlice controller add
        // its own endpoints beside the loop's: removed (an apply leaves a
        // field it does not set).
        if selectorless && clear_selector(ctx, &s.services, &ns, &name).await? {
            note(w, Verdict::Repair);
        }
    }
    let w = what("PodDisruptionBudget", &objects.pdb.metadata.name);
    // The NetworkPolicy has the StatefulSet's name.
    let (ns, name) = (
        objects
            .statefulset
            .metadata
            .namespace
            .clone()
            .unwrap_or_default(),
        objects
            .statefulset
            .metadata
            .name
            .clone()
            .unwrap_or_default(),
    );
    note(w, apply_one(ctx, &s.pdbs, objects.pdb).await?);
    match objects.network_policy {
        Some(np) => {
            let w = what("NetworkPolicy", &np.metadata.name);
            note(w, apply_one(ctx, &s.network_policies, np).await?);
        }
        None => {
            if delete_unwanted(ctx, &s.network_policies, &ns, &name).await? {
                note(format!("NetworkPolicy {name} (deleted)"), Verdict::Update);
            }
        }
    }
    let w = what("StatefulSet", &objects.statefulset.metadata.name);
    note(
        w,
        apply_one(ctx, &s.statefulsets, objects.statefulset).await?,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn which_apply_errors_are_refusals() {
        let cases = [
            (422, "StatefulSet.apps \"x\" is invalid", true),
            (400, "bad request", true),
            (
                500,
                "failed to convert new object (shop/orders; apps/v1, Kind=StatefulSet) to proper version",
                true,
            ),
            (500, "etcdserver: request timed out", false),
            (409, "conflict", false),
            (403, "forbidden", false),
            (503, "unavailable", false),
        ];
        for (code, message, want) in cases {
            assert_eq!(is_refusal(code, message), want, "{code} {message}");
        }
    }

    #[test]
    fn projections_keep_only_the_wanted_paths() {
        let wanted =
            json!({"spec": {"replicas": 2, "template": {"c": [{"name": "m", "image": "x"}]}}});
        let live = json!({"spec": {"replicas": 3, "extra": 1, "template": {"c": [{"name": "m", "image": "x", "default": true}, {"name": "sidecar"}]}}, "status": {}});
        assert_eq!(
            projection(&wanted, &live),
            json!({"spec": {"replicas": 3, "template": {"c": [{"name": "m", "image": "x"}]}}})
        );
        assert_eq!(
            projection(&json!({"a": {"b": 1}}), &json!({})),
            json!({"a": {"b": null}})
        );
    }

    fn annotated(v: Value, hash: &str) -> Value {
        let mut v = v;
        v["metadata"]["annotations"][APPLIED_HASH] = json!(hash);
        v
    }

    /// What, live, remembered, verdict.
    type Row<'a> = (
        &'a str,
        Option<&'a Value>,
        Option<(String, String)>,
        Verdict,
    );

    /// Bug 4 of issue 12: `kubectl scale` keeps the hash annotation, and the
    /// old apply skipped any object carrying it. Each row: what the
    /// operator wants, what is live, what was remembered, the verdict.
    #[test]
    fn drift_is_told_from_the_servers_own_changes() {
        let wanted = annotated(json!({"spec": {"replicas": 2, "cpu": "500m"}}), "h1");
        let digest = |v: &Value| render::meta::digest(&projection(&wanted, v).to_string());
        let as_applied = annotated(
            json!({"spec": {"replicas": 2, "cpu": "500m", "default": 1}}),
            "h1",
        );
        let scaled = annotated(
            json!({"spec": {"replicas": 3, "cpu": "500m", "default": 1}}),
            "h1",
        );
        // The server wrote the quantity in canonical form.
        let canonical = annotated(json!({"spec": {"replicas": 2, "cpu": "0.5"}}), "h1");
        let other = annotated(json!({"spec": {}}), "h0");
        let rows: Vec<Row> = vec![
            ("missing", None, None, Verdict::Create),
            (
                "deleted by hand",
                None,
                Some(("h1".into(), digest(&as_applied))),
                Verdict::Repair,
            ),
            (
                "settled",
                Some(&as_applied),
                Some(("h1".into(), digest(&as_applied))),
                Verdict::Keep,
            ),
            (
                "scaled by hand",
                Some(&scaled),
                Some(("h1".into(), digest(&as_applied))),
                Verdict::Repair,
            ),
            (
                "new spec",
                Some(&as_applied),
                Some(("h0".into(), digest(&as_applied))),
                Verdict::Update,
            ),
            (
                "server normalised",
                Some(&canonical),
                Some(("h1".into(), digest(&canonical))),
                Verdict::Keep,
            ),
            (
                "after a restart, settled",
                Some(&as_applied),
                None,
                Verdict::Keep,
            ),
            (
                "after a restart, scaled",
                Some(&scaled),
                None,
                Verdict::Repair,
            ),
            (
                "after a restart, normalised",
                Some(&canonical),
                None,
                Verdict::Repair,
            ),
            (
                "after a restart, other hash",
                Some(&other),
                None,
                Verdict::Update,
            ),
        ];
        for (what, live, remembered, want) in rows {
            assert_eq!(
                verdict(&wanted, "h1", live, remembered.as_ref()),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn forgetting_a_pair_drops_its_objects_only() {
        let memo = AppliedMemo::default();
        for k in [
            "ConfigMap/shop/orders-config",
            "StatefulSet/shop/orders",
            "StatefulSet/shop/ordersx",
            "StatefulSet/other/orders",
        ] {
            memo.put(k.into(), "h".into(), "d".into());
        }
        memo.forget_pair("shop/orders");
        assert!(memo.get("ConfigMap/shop/orders-config").is_none());
        assert!(memo.get("StatefulSet/shop/orders").is_none());
        assert!(memo.get("StatefulSet/shop/ordersx").is_some());
        assert!(memo.get("StatefulSet/other/orders").is_some());
    }
}
