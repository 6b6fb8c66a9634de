//! The stand-in's storage and the API semantics on top of it: resource
//! versions, generation, the status subresource, optimistic concurrency,
//! patches, finalizers, ownerReference garbage collection, CRD-driven
//! serving and admission, and the change history watches resume from.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::registry::{self, ResourceInfo};
use super::selectors::{FieldSelector, LabelSelector, labels_of};

/// How many changes the history keeps for watch resumption; a watch from an
/// older resourceVersion gets 410 Gone.
pub const HISTORY: usize = 10_000;

/// An API error, rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`, `Conflict`, `Invalid`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }
    /// 404.
    pub fn not_found(ri: &ResourceInfo, name: &str) -> Self {
        let what = if ri.group.is_empty() {
            ri.plural.clone()
        } else {
            format!("{}.{}", ri.plural, ri.group)
        };
        Self::new(404, "NotFound", format!("{what} \"{name}\" not found"))
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    /// 422.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }
    /// The `Status` body.
    pub fn status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// Kind of a change, as in a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

impl ChangeType {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Clone, Debug)]
pub struct Change {
    /// resourceVersion of the change.
    pub rv: u64,
    /// (group, plural) of the object.
    pub key: (String, String),
    /// What happened.
    pub kind: ChangeType,
    /// The object after the change (before it, for deletions).
    pub object: Value,
}

/// How a patch body is to be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch.
    Json,
    /// Strategic merge patch (approximated as a merge patch).
    Strategic,
    /// Server-side apply (approximated: create if missing, else merge).
    Apply,
}

type Objects = BTreeMap<(String, String), Value>;

/// All state of the stand-in.
pub struct Store {
    resources: Vec<ResourceInfo>,
    objects: BTreeMap<(String, String), Objects>,
    rv: u64,
    history: VecDeque<Change>,
    /// Changes at or before this resourceVersion are no longer in history.
    compacted: u64,
    tx: broadcast::Sender<Change>,
    /// Pods are deleted gracefully: a deletionTimestamp first, then removed
    /// by the kubelet once their containers stopped.
    graceful_pods: bool,
}

fn is_pod(ri: &ResourceInfo) -> bool {
    ri.group.is_empty() && ri.plural == "pods"
}

/// What the API server does to every written object of some kinds:
/// a Secret's `stringData` is merged into `data`, base64-encoded.
fn normalize(ri: &ResourceInfo, obj: &mut Value) {
    use base64::Engine;
    if ri.group.is_empty()
        && ri.plural == "secrets"
        && let Some(Value::Object(string_data)) =
            obj.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        if !obj["data"].is_object() {
            obj["data"] = json!({});
        }
        for (k, v) in string_data {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(v.as_str().unwrap_or("").as_bytes());
            obj["data"][k] = json!(encoded);
        }
    }
}

fn is_crd(ri: &ResourceInfo) -> bool {
    ri.group == "apiextensions.k8s.io" && ri.plural == "customresourcedefinitions"
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str()
}

/// The object without metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

/// RFC 7386 merge of `patch` into `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store with the built-in resources and the `default`,
    /// `kube-system` and `kube-public` namespaces.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut s = Self {
            resources: registry::builtins(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted: 0,
            tx,
            graceful_pods: false,
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let ri = s
                .find("", "namespaces")
                .cloned()
                .expect("namespaces resource");
            let _ = s.create(
                &ri,
                None,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        s
    }

    /// Every served resource.
    pub fn resources(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// The resource `group`/`plural` (any version).
    pub fn find(&self, group: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.plural == plural)
    }

    /// The resource `group`/`version`/`plural`.
    pub fn find_version(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Oldest resourceVersion a watch can resume from.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Forgets the history (as etcd compaction does): older watches get 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// A receiver of every future change.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Changes after `rv` for `key`, in order; `None` if `rv` is compacted.
    pub fn changes_since(&self, key: &(String, String), rv: u64) -> Option<Vec<Change>> {
        if rv < self.compacted {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|c| c.rv > rv && &c.key == key)
                .cloned()
                .collect(),
        )
    }

    fn record(&mut self, key: (String, String), kind: ChangeType, object: Value) {
        let change = Change {
            rv: self.rv,
            key,
            kind,
            object,
        };
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        let _ = self.tx.send(change);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn bucket(&mut self, ri: &ResourceInfo) -> &mut Objects {
        self.objects.entry(ri.key()).or_default()
    }

    fn object_key(ri: &ResourceInfo, ns: Option<&str>, name: &str) -> (String, String) {
        let ns = if ri.namespaced { ns.unwrap_or("") } else { "" };
        (ns.to_string(), name.to_string())
    }

    /// One object.
    pub fn get(&self, ri: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&ri.key())
            .and_then(|b| b.get(&Self::object_key(ri, ns, name)))
            .cloned()
            .map(|o| self.with_type(ri, o))
            .ok_or_else(|| ApiError::not_found(ri, name))
    }

    fn with_type(&self, ri: &ResourceInfo, mut obj: Value) -> Value {
        obj["apiVersion"] = json!(ri.api_version());
        obj["kind"] = json!(ri.kind);
        obj
    }

    /// Objects in `ns` (all namespaces when `None`) matching the selectors.
    pub fn list(
        &self,
        ri: &ResourceInfo,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.objects
            .get(&ri.key())
            .map(|b| {
                b.iter()
                    .filter(|((ons, _), _)| ns.is_none_or(|n| !ri.namespaced || ons == n))
                    .map(|(_, o)| self.with_type(ri, o.clone()))
                    .filter(|o| labels.matches(&labels_of(o)) && fields.matches(o))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn admit_custom(
        &self,
        ri: &ResourceInfo,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let Some(schema) = &ri.schema else {
            return Ok(obj.clone());
        };
        crd_admission::admit(schema, obj, old).map_err(|r| {
            ApiError::invalid(format!(
                "{}.{} \"{}\" is invalid: {}",
                ri.kind,
                ri.group,
                meta_str(obj, "name").unwrap_or(""),
                r
            ))
        })
    }

    fn check_namespace(&self, ri: &ResourceInfo, ns: Option<&str>) -> Result<(), ApiError> {
        if !ri.namespaced {
            return Ok(());
        }
        let ns = ns.ok_or_else(|| ApiError::bad_request("a namespace is required"))?;
        let exists = self
            .objects
            .get(&(String::new(), "namespaces".into()))
            .is_some_and(|b| b.contains_key(&(String::new(), ns.to_string())));
        if exists {
            Ok(())
        } else {
            Err(ApiError::new(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
            ))
        }
    }

    /// Creates `obj`.
    pub fn create(
        &mut self,
        ri: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body is not an object"));
        }
        if let Some(kind) = obj["kind"].as_str()
            && kind != ri.kind
        {
            return Err(ApiError::bad_request(format!(
                "kind {kind} does not match {}",
                ri.kind
            )));
        }
        let ns = if ri.namespaced {
            Some(
                meta_str(&obj, "namespace")
                    .or(ns)
                    .unwrap_or("default")
                    .to_string(),
            )
        } else {
            None
        };
        self.check_namespace(ri, ns.as_deref())?;
        let name = match meta_str(&obj, "name") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta_str(&obj, "generateName") {
                Some(prefix) => format!(
                    "{prefix}{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..5]
                ),
                None => {
                    return Err(ApiError::invalid(
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        let key = Self::object_key(ri, ns.as_deref(), &name);
        if self
            .objects
            .get(&ri.key())
            .is_some_and(|b| b.contains_key(&key))
        {
            let what = if ri.group.is_empty() {
                ri.plural.clone()
            } else {
                format!("{}.{}", ri.plural, ri.group)
            };
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{what} \"{name}\" already exists"),
            ));
        }
        obj = self.with_type(ri, obj);
        normalize(ri, &mut obj);
        if ri.status_subresource
            && ri.schema.is_some()
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        obj = self.admit_custom(ri, &obj, None)?;
        if is_crd(ri) {
            self.register_crd(&mut obj)?;
        }
        if ri.key() == (String::new(), "namespaces".to_string()) {
            obj["status"] = json!({"phase": "Active"});
        }
        let rv = self.next_rv();
        let meta = obj["metadata"]
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut meta = Value::Object(meta);
        meta["name"] = json!(name);
        if let Some(ns) = &ns {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now());
        meta["resourceVersion"] = json!(rv.to_string());
        meta["generation"] = json!(1);
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("managedFields");
        }
        obj["metadata"] = meta;
        self.bucket(ri).insert(key, obj.clone());
        self.record(ri.key(), ChangeType::Added, obj.clone());
        Ok(obj)
    }

    fn register_crd(&mut self, crd: &mut Value) -> Result<(), ApiError> {
        let served = registry::from_crd(crd);
        if served.is_empty() {
            return Err(ApiError::invalid(
                "spec.versions: Required value: a CRD needs at least one served version",
            ));
        }
        let key = served[0].key();
        self.resources.retain(|r| r.key() != key);
        self.resources.extend(served);
        crd["status"] = json!({
            "acceptedNames": crd["spec"]["names"].clone(),
            "storedVersions": crd["spec"]["versions"].as_array().map(|v| v.iter().filter(|v| v["storage"].as_bool() == Some(true)).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now()},
            ],
        });
        Ok(())
    }

    /// Replaces an object (`subresource` `status`: only its status).
    pub fn update(
        &mut self,
        ri: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        status: bool,
        require_rv: bool,
    ) -> Result<Value, ApiError> {
        let key = Self::object_key(ri, ns, name);
        let old = self
            .objects
            .get(&ri.key())
            .and_then(|b| b.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(ri, name))?;
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or("0").to_string();
        match meta_str(&body, "resourceVersion") {
            Some(rv) if rv != old_rv => {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                        ri.plural
                    ),
                ));
            }
            None if require_rv => {
                return Err(ApiError::invalid(format!(
                    "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                    ri.kind
                )));
            }
            _ => {}
        }
        if let Some(n) = meta_str(&body, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let mut new = if status {
            let mut n = old.clone();
            n["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            if n["status"].is_null()
                && let Some(m) = n.as_object_mut()
            {
                m.remove("status");
            }
            n
        } else {
            let mut n = self.with_type(ri, body);
            if ri.status_subresource {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(m) = n.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            // System-owned metadata stays.
            for field in [
                "uid",
                "creationTimestamp",
                "name",
                "namespace",
                "generation",
                "deletionTimestamp",
            ] {
                match old["metadata"].get(field) {
                    Some(v) => n["metadata"][field] = v.clone(),
                    None => {
                        if let Some(m) = n["metadata"].as_object_mut() {
                            m.remove(field);
                        }
                    }
                }
            }
            if is_crd(ri) {
                self.register_crd(&mut n)?;
            }
            n
        };
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        normalize(ri, &mut new);
        new["metadata"]["resourceVersion"] = json!(old_rv);
        if !status {
            new = self.admit_custom(ri, &new, Some(&old))?;
        }
        if new == self.with_type(ri, old.clone()) {
            return Ok(new);
        }
        if spec_part(&new) != spec_part(&old) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        let rv = self.next_rv();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let finalizers_empty = new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if new["metadata"]["deletionTimestamp"].is_string() && finalizers_empty {
            self.bucket(ri).remove(&key);
            self.record(ri.key(), ChangeType::Deleted, new.clone());
            self.collect_garbage(&new);
            return Ok(new);
        }
        self.bucket(ri).insert(key, new.clone());
        self.record(ri.key(), ChangeType::Modified, new.clone());
        Ok(new)
    }

    /// Patches an object; `Apply` creates it when missing.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        ri: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        let existing = self.get(ri, ns, name);
        let current = match (existing, kind) {
            (Ok(o), _) => o,
            (Err(e), PatchType::Apply) if e.code == 404 && !status => {
                let mut obj = body;
                obj["metadata"]["name"] = json!(name);
                if let Some(ns) = ns {
                    obj["metadata"]["namespace"] = json!(ns);
                }
                return self.create(ri, ns, obj);
            }
            (Err(e), _) => return Err(e),
        };
        let mut patched = current.clone();
        match kind {
            PatchType::Json => {
                let ops: json_patch::Patch = serde_json::from_value(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                json_patch::patch(&mut patched, &ops).map_err(|e| {
                    ApiError::invalid(format!("the JSON patch does not apply: {e}"))
                })?;
            }
            PatchType::Merge | PatchType::Strategic | PatchType::Apply => {
                let mut body = body;
                if kind == PatchType::Apply
                    && let Some(m) = body["metadata"].as_object_mut()
                {
                    // Apply never carries an optimistic lock.
                    m.remove("resourceVersion");
                }
                merge_patch(&mut patched, &body);
            }
        }
        // The patch itself decides whether it is an optimistic lock: keep
        // its resourceVersion if it set one, else the current one.
        self.update(ri, ns, name, patched, status, false)
    }

    /// Turns graceful pod deletion on (when a kubelet runs).
    pub fn set_graceful_pod_deletion(&mut self, on: bool) {
        self.graceful_pods = on;
    }

    /// Removes an object now, whatever its finalizers or grace (the
    /// kubelet, once a deleted pod's containers stopped).
    pub fn remove_now(
        &mut self,
        ri: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let key = Self::object_key(ri, ns, name);
        if let Some(obj) = self
            .objects
            .get_mut(&ri.key())
            .and_then(|b| b.get_mut(&key))
            && let Some(m) = obj["metadata"].as_object_mut()
        {
            m.remove("finalizers");
        }
        self.delete_with(ri, ns, name, false, true)
    }

    /// Deletes an object: with finalizers it only gets a deletionTimestamp.
    pub fn delete(
        &mut self,
        ri: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        orphan: bool,
    ) -> Result<Value, ApiError> {
        self.delete_with(ri, ns, name, orphan, false)
    }

    /// As [`Store::delete`]; `force` skips a pod's graceful termination.
    pub fn delete_with(
        &mut self,
        ri: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        orphan: bool,
        force: bool,
    ) -> Result<Value, ApiError> {
        let key = Self::object_key(ri, ns, name);
        let mut obj = self
            .objects
            .get(&ri.key())
            .and_then(|b| b.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(ri, name))?;
        let has_finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let graceful = is_pod(ri) && self.graceful_pods && !force;
        if has_finalizers || graceful {
            if !obj["metadata"]["deletionTimestamp"].is_string() {
                let rv = self.next_rv();
                obj["metadata"]["deletionTimestamp"] = json!(now());
                let grace = if graceful {
                    obj["spec"]["terminationGracePeriodSeconds"]
                        .as_i64()
                        .unwrap_or(30)
                } else {
                    0
                };
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                obj["metadata"]["resourceVersion"] = json!(rv.to_string());
                self.bucket(ri).insert(key, obj.clone());
                self.record(ri.key(), ChangeType::Modified, obj.clone());
            }
            return Ok(self.with_type(ri, obj));
        }
        self.bucket(ri).remove(&key);
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = self.with_type(ri, obj);
        self.record(ri.key(), ChangeType::Deleted, obj.clone());
        if is_crd(ri)
            && let Some(served) = registry::from_crd(&obj).first()
        {
            let k = served.key();
            self.resources.retain(|r| r.key() != k);
            self.objects.remove(&k);
        }
        if ri.key() == (String::new(), "namespaces".to_string()) {
            self.delete_namespace_contents(name);
        }
        if !orphan {
            self.collect_garbage(&obj);
        }
        Ok(obj)
    }

    fn delete_namespace_contents(&mut self, ns: &str) {
        let victims: Vec<(ResourceInfo, String)> = self
            .resources
            .iter()
            .filter(|r| r.namespaced)
            .flat_map(|r| {
                self.objects
                    .get(&r.key())
                    .map(|b| {
                        b.keys()
                            .filter(|(n, _)| n == ns)
                            .map(|(_, name)| (r.clone(), name.clone()))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect();
        for (ri, name) in victims {
            let _ = self.delete(&ri, Some(ns), &name, false);
        }
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .flat_map(|b| b.values())
            .any(|o| meta_str(o, "uid") == Some(uid))
    }

    /// Deletes the dependents of `owner` whose owners are all gone
    /// (background propagation).
    fn collect_garbage(&mut self, owner: &Value) {
        let Some(uid) = meta_str(owner, "uid").map(String::from) else {
            return;
        };
        let mut victims = Vec::new();
        for ri in &self.resources {
            let Some(bucket) = self.objects.get(&ri.key()) else {
                continue;
            };
            for ((ns, name), obj) in bucket {
                let owners: Vec<&str> = obj["metadata"]["ownerReferences"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|r| r["uid"].as_str()).collect())
                    .unwrap_or_default();
                if owners.contains(&uid.as_str())
                    && owners.iter().all(|o| *o == uid || !self.uid_exists(o))
                {
                    victims.push((ri.clone(), ns.clone(), name.clone()));
                }
            }
        }
        victims.dedup_by(|a, b| a.0.key() == b.0.key() && a.1 == b.1 && a.2 == b.2);
        for (ri, ns, name) in victims {
            let ns = (!ns.is_empty()).then_some(ns);
            let _ = self.delete(&ri, ns.as_deref(), &name, false);
        }
    }
}
