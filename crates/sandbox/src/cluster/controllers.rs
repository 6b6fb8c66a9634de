//! The StatefulSet and Endpoints controllers of the box: pure passes over
//! the store, run after every change.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::apiserver::registry::ResourceInfo;
use crate::apiserver::selectors::{FieldSelector, LabelSelector, labels_of};
use crate::apiserver::store::Store;

fn ri(store: &Store, group: &str, plural: &str) -> Option<ResourceInfo> {
    store.find(group, plural).cloned()
}

fn all(store: &Store, ri: &ResourceInfo, ns: Option<&str>) -> Vec<Value> {
    store.list(ri, ns, &LabelSelector::default(), &FieldSelector::default())
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn revision(template: &Value) -> String {
    // FNV-1a of the template: stable across runs.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in template.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

fn owner_ref(owner: &Value, kind: &str, api_version: &str, controller: bool) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind,
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": controller, "blockOwnerDeletion": true,
    })
}

/// One pass of the StatefulSet controller: PVCs per claim template, pods
/// per ordinal (Parallel or OrderedReady), rolling updates one pod at a
/// time (or none with `updateStrategy: OnDelete`), scale-down, status.
pub fn sync_statefulsets(store: &mut Store) {
    let (Some(sts_ri), Some(pod_ri), Some(pvc_ri)) = (
        ri(store, "apps", "statefulsets"),
        ri(store, "", "pods"),
        ri(store, "", "persistentvolumeclaims"),
    ) else {
        return;
    };
    for sts in all(store, &sts_ri, None) {
        if sts["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ns = sts["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = sts["metadata"]["name"].as_str().unwrap_or("").to_string();
        let spec = &sts["spec"];
        let replicas = spec["replicas"].as_u64().unwrap_or(1);
        let template = &spec["template"];
        let rev = format!("{name}-{}", revision(template));
        let parallel = spec["podManagementPolicy"] == "Parallel";
        let delete_claims = spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete";
        let pods: BTreeMap<u64, Value> = all(store, &pod_ri, Some(&ns))
            .into_iter()
            .filter(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|o| o["uid"] == sts["metadata"]["uid"]))
            })
            .filter_map(|p| {
                let ord = p["metadata"]["name"]
                    .as_str()?
                    .rsplit('-')
                    .next()?
                    .parse()
                    .ok()?;
                Some((ord, p))
            })
            .collect();
        for ord in 0..replicas {
            let pod_name = format!("{name}-{ord}");
            for claim in spec["volumeClaimTemplates"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let claim_name = format!(
                    "{}-{pod_name}",
                    claim["metadata"]["name"].as_str().unwrap_or("data")
                );
                if store.get(&pvc_ri, Some(&ns), &claim_name).is_err() {
                    let mut pvc = json!({
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim_name, "namespace": ns, "labels": claim["metadata"]["labels"]},
                        "spec": claim["spec"],
                    });
                    if delete_claims {
                        pvc["metadata"]["ownerReferences"] =
                            json!([owner_ref(&sts, "StatefulSet", "apps/v1", false)]);
                    }
                    if let Ok(created) = store.create(&pvc_ri, Some(&ns), pvc) {
                        let capacity = created["spec"]["resources"]["requests"].clone();
                        let _ = store.update(
                            &pvc_ri,
                            Some(&ns),
                            &claim_name,
                            json!({"status": {"phase": "Bound", "accessModes": created["spec"]["accessModes"], "capacity": capacity}}),
                            true,
                            false,
                        );
                    }
                }
            }
            if pods.contains_key(&ord) {
                continue;
            }
            let previous_ready = (0..ord).all(|o| pods.get(&o).is_some_and(is_ready));
            if !parallel && !previous_ready {
                break;
            }
            let mut pod_spec = template["spec"].clone();
            pod_spec["hostname"] = json!(pod_name);
            if let Some(svc) = spec["serviceName"].as_str() {
                pod_spec["subdomain"] = json!(svc);
            }
            let mut volumes = pod_spec["volumes"].as_array().cloned().unwrap_or_default();
            for claim in spec["volumeClaimTemplates"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let cname = claim["metadata"]["name"].as_str().unwrap_or("data");
                volumes.push(json!({"name": cname, "persistentVolumeClaim": {"claimName": format!("{cname}-{pod_name}")}}));
            }
            pod_spec["volumes"] = json!(volumes);
            let mut labels = template["metadata"]["labels"].clone();
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            labels["apps.kubernetes.io/pod-index"] = json!(ord.to_string());
            labels["controller-revision-hash"] = json!(rev);
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod_name, "namespace": ns, "labels": labels,
                    "annotations": template["metadata"]["annotations"],
                    "ownerReferences": [owner_ref(&sts, "StatefulSet", "apps/v1", true)],
                },
                "spec": pod_spec,
            });
            let _ = store.create(&pod_ri, Some(&ns), pod);
        }
        // Scale down: highest ordinal first.
        if let Some((&ord, p)) = pods.iter().next_back().filter(|(o, _)| **o >= replicas)
            && !p["metadata"]["deletionTimestamp"].is_string()
        {
            let _ = store.delete(&pod_ri, Some(&ns), &format!("{name}-{ord}"), false);
        }
        // Rolling update: one outdated pod at a time, highest ordinal first,
        // only while every pod is ready.
        // (`OnDelete`: the controller never deletes pods; whoever deletes an
        // outdated pod gets it back on the new revision.)
        let all_ready = (0..replicas).all(|o| pods.get(&o).is_some_and(is_ready));
        let on_delete = spec["updateStrategy"]["type"] == "OnDelete";
        if all_ready
            && !on_delete
            && let Some((ord, _)) = pods.iter().rev().find(|(o, p)| {
                **o < replicas
                    && p["metadata"]["labels"]["controller-revision-hash"] != rev.as_str()
            })
        {
            let _ = store.delete(&pod_ri, Some(&ns), &format!("{name}-{ord}"), false);
        }
        let current: Vec<&Value> = pods
            .values()
            .filter(|p| !p["metadata"]["deletionTimestamp"].is_string())
            .collect();
        let ready = current.iter().filter(|p| is_ready(p)).count();
        let updated = current
            .iter()
            .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == rev.as_str())
            .count();
        let status = json!({
            "observedGeneration": sts["metadata"]["generation"],
            "replicas": current.len(), "readyReplicas": ready, "availableReplicas": ready,
            "currentReplicas": updated, "updatedReplicas": updated,
            "currentRevision": rev, "updateRevision": rev, "collisionCount": 0,
        });
        if sts["status"] != status {
            let _ = store.update(
                &sts_ri,
                Some(&ns),
                &name,
                json!({"status": status}),
                true,
                false,
            );
        }
    }
}

/// One pass of the Endpoints controller: an Endpoints object per Service
/// with a selector, listing the selected pods' addresses (ready ones, or
/// all with `publishNotReadyAddresses`).
pub fn sync_endpoints(store: &mut Store) {
    let (Some(svc_ri), Some(pod_ri), Some(ep_ri)) = (
        ri(store, "", "services"),
        ri(store, "", "pods"),
        ri(store, "", "endpoints"),
    ) else {
        return;
    };
    for svc in all(store, &svc_ri, None) {
        let Some(selector) = svc["spec"]["selector"]
            .as_object()
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let ns = svc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
        let all_ready = svc["spec"]["publishNotReadyAddresses"].as_bool() == Some(true);
        let mut ready = Vec::new();
        let mut not_ready = Vec::new();
        for pod in all(store, &pod_ri, Some(&ns)) {
            let labels = labels_of(&pod);
            if !selector
                .iter()
                .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
            {
                continue;
            }
            let Some(ip) = pod["status"]["podIP"].as_str() else {
                continue;
            };
            if pod["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let mut addr = json!({"ip": ip, "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": ns, "uid": pod["metadata"]["uid"]}});
            if let Some(h) = pod["spec"]["hostname"].as_str() {
                addr["hostname"] = json!(h);
            }
            if all_ready || is_ready(&pod) {
                ready.push(addr);
            } else {
                not_ready.push(addr);
            }
        }
        let ports: Vec<Value> = svc["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let port = p["targetPort"].as_u64().or(p["port"].as_u64()).unwrap_or(0);
                json!({"name": p["name"], "port": port, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))})
            })
            .collect();
        let mut subset = json!({"ports": ports});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        let subsets = if ready.is_empty() && not_ready.is_empty() {
            json!([])
        } else {
            json!([subset])
        };
        let desired = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"]["labels"],
                         "ownerReferences": [owner_ref(&svc, "Service", "v1", true)]},
            "subsets": subsets,
        });
        match store.get(&ep_ri, Some(&ns), &name) {
            Err(_) => {
                let _ = store.create(&ep_ri, Some(&ns), desired);
            }
            Ok(existing) if existing["subsets"] != desired["subsets"] => {
                let _ = store.patch(
                    &ep_ri,
                    Some(&ns),
                    &name,
                    crate::apiserver::store::PatchType::Merge,
                    json!({"subsets": desired["subsets"]}),
                    false,
                );
            }
            Ok(_) => {}
        }
    }
}
