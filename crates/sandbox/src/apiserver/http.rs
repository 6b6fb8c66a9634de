//! The HTTP face of the stand-in: URL routing as kube-apiserver does it,
//! discovery, `Table` output for kubectl, watch streams, and the request log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::registry::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector, labels_of};
use super::store::{ApiError, ChangeType, PatchType, Store};
use super::{openapi, table};

/// One request, as the stand-in saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection (or the HTTP method for non-resource URLs).
    pub verb: String,
    /// API group of the resource ("" for core).
    pub group: String,
    /// Resource plural, with `/status` for the subresource.
    pub resource: String,
    /// Namespace, if any.
    pub namespace: Option<String>,
    /// URL path.
    pub path: String,
    /// Who called: the bearer token's user name, else `agent:<program>`
    /// from the User-Agent, else `anonymous`.
    pub caller: String,
    /// HTTP status answered.
    pub code: u16,
}

impl RequestRecord {
    /// Whether the request could change state.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

/// Settings of the stand-in.
#[derive(Clone, Debug)]
pub struct Config {
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Users whose requests RBAC authorizes against the Roles, ClusterRoles
    /// and bindings in the store (403 when no rule allows); others are
    /// unrestricted.
    pub rbac_users: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(2),
            rbac_users: Vec::new(),
        }
    }
}

/// State shared by the request handlers.
pub struct Shared {
    /// The storage.
    pub store: Mutex<Store>,
    /// Every request so far.
    pub log: Mutex<Vec<RequestRecord>>,
    /// Settings.
    pub config: Config,
    /// The address clients use, for `/api`'s serverAddressByClientCIDRs.
    pub address: String,
}

type Shared_ = Arc<Shared>;

/// What a resource URL names.
#[derive(Debug)]
struct Target {
    ri: ResourceInfo,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.status(),
    )
}

/// Who is calling: the user a bearer token names (the token is the user
/// name, e.g. `system:serviceaccount:ns:name`), else the client program
/// from its User-Agent (kubectl sends no token over plain HTTP).
fn caller(headers: &HeaderMap) -> String {
    let header_str = |h| {
        headers
            .get(h)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    if let Some(token) = header_str(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer ")) {
        return token.to_string();
    }
    header_str(header::USER_AGENT)
        .and_then(|ua| ua.split('/').next())
        .map(|program| format!("agent:{program}"))
        .unwrap_or_else(|| "anonymous".into())
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    q.map(|q| {
        q.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Percent-decoding of a query or path component (`+` is a space).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (c, None) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .or_else(|_| serde_saphyr::from_slice(bytes))
        .map_err(|e| {
            ApiError::bad_request(format!("the request body is neither JSON nor YAML: {e}"))
        })
}

/// The single handler: routes every request.
pub async fn handle(State(shared): State<Shared_>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = query_map(parts.uri.query());
    let who = caller(&parts.headers);
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();

    let discovery = discovery(&shared, &seg);
    if let Some(resp) = discovery {
        log(
            &shared,
            parts.method.as_str().to_ascii_lowercase(),
            "",
            "",
            None,
            &path,
            &who,
            resp.status().as_u16(),
        );
        return resp;
    }
    let target = {
        let store = shared.store.lock().expect("store lock");
        resolve(&store, &seg)
    };
    let Some(target) = target else {
        let e = ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ({path})"),
        };
        log(
            &shared,
            parts.method.as_str().to_ascii_lowercase(),
            "",
            "",
            None,
            &path,
            &who,
            404,
        );
        return error_response(&e);
    };
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (&parts.method, target.name.is_some(), watch) {
        (&Method::GET, _, true) => "watch",
        (&Method::GET, true, _) => "get",
        (&Method::GET, false, _) => "list",
        (&Method::POST, _, _) => "create",
        (&Method::PUT, _, _) => "update",
        (&Method::PATCH, _, _) => "patch",
        (&Method::DELETE, true, _) => "delete",
        (&Method::DELETE, false, _) => "deletecollection",
        _ => "unknown",
    };
    let resource = if target.status {
        format!("{}/status", target.ri.plural)
    } else {
        target.ri.plural.clone()
    };
    let table = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    if content_type.contains("protobuf") && !bytes.is_empty() {
        let e = ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the sandbox API speaks JSON and YAML only, not protobuf (imperative `kubectl create <kind>` sends protobuf: use `kubectl apply -f`)".into(),
        };
        log(
            &shared,
            verb.to_string(),
            &target.ri.group,
            &target.ri.plural,
            target.namespace.clone(),
            &path,
            &who,
            415,
        );
        return error_response(&e);
    }
    if shared.config.rbac_users.contains(&who) {
        let denied = {
            let store = shared.store.lock().expect("store lock");
            super::rbac::authorize(
                &store,
                &super::rbac::Attributes {
                    user: &who,
                    verb,
                    group: &target.ri.group,
                    resource: &resource,
                    namespace: target.namespace.as_deref(),
                    name: target.name.as_deref(),
                },
            )
            .err()
        };
        if let Some(message) = denied {
            log(
                &shared,
                verb.to_string(),
                &target.ri.group,
                &resource,
                target.namespace.clone(),
                &path,
                &who,
                403,
            );
            return error_response(&ApiError {
                code: 403,
                reason: "Forbidden",
                message,
            });
        }
    }
    let resp = if verb == "watch" {
        watch_response(&shared, &target, &query)
    } else {
        match serve(&shared, &target, verb, &query, &bytes, &content_type, table) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    };
    log(
        &shared,
        verb.to_string(),
        &target.ri.group,
        &resource,
        target.namespace.clone(),
        &path,
        &who,
        resp.status().as_u16(),
    );
    resp
}

#[allow(clippy::too_many_arguments)]
fn log(
    shared: &Shared,
    verb: String,
    group: &str,
    resource: &str,
    namespace: Option<String>,
    path: &str,
    who: &str,
    code: u16,
) {
    if let Ok(mut l) = shared.log.lock() {
        l.push(RequestRecord {
            verb,
            group: group.into(),
            resource: resource.into(),
            namespace,
            path: path.into(),
            caller: who.into(),
            code,
        });
    }
}

fn discovery(shared: &Shared, seg: &[&str]) -> Option<Response> {
    let store = shared.store.lock().expect("store lock");
    let resources = store.resources();
    let resource_list = |gv: &str, group: &str, version: &str| {
        let list: Vec<Value> = resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .flat_map(ResourceInfo::discovery)
            .collect();
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
    };
    let groups = || {
        let mut names: Vec<&str> = resources
            .iter()
            .filter(|r| !r.group.is_empty())
            .map(|r| r.group.as_str())
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|g| {
                let mut versions: Vec<Value> = resources
                    .iter()
                    .filter(|r| r.group == g)
                    .map(|r| json!({"groupVersion": format!("{g}/{}", r.version), "version": r.version}))
                    .collect();
                versions.dedup();
                json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
            })
            .collect::<Vec<Value>>()
    };
    let body = match seg {
        ["version"] => json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-mysql-aa-sandbox",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "none", "compiler": "none", "platform": "linux/amd64"
        }),
        ["healthz"] | ["readyz"] | ["livez"] => {
            return Some((StatusCode::OK, "ok").into_response());
        }
        ["api"] => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.address}]
        }),
        ["api", "v1"] => resource_list("v1", "", "v1"),
        ["apis"] => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups()}),
        ["apis", g] => {
            let found = groups().into_iter().find(|x| x["name"] == *g)?;
            let mut grp = found;
            grp["kind"] = json!("APIGroup");
            grp["apiVersion"] = json!("v1");
            grp
        }
        ["apis", g, v] => {
            if !resources.iter().any(|r| r.group == *g && r.version == *v) {
                return None;
            }
            resource_list(&format!("{g}/{v}"), g, v)
        }
        ["openapi", "v3"] => openapi::index(resources),
        ["openapi", "v3", "api", "v1"] => openapi::group_version(resources, "", "v1"),
        ["openapi", "v3", "apis", g, v] => {
            if !resources.iter().any(|r| r.group == *g && r.version == *v) {
                return None;
            }
            openapi::group_version(resources, g, v)
        }
        _ => return None,
    };
    Some(json_response(StatusCode::OK, &body))
}

/// Maps URL segments to a resource target.
fn resolve(store: &Store, seg: &[&str]) -> Option<Target> {
    let (group, version, rest) = match seg {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let find = |plural: &str| store.find_version(group, version, plural).cloned();
    let (ri, namespace, name, sub) = match rest {
        // /namespaces/{ns}/{plural}[/{name}[/{sub}]]
        ["namespaces", ns, plural, tail @ ..]
            if !(group.is_empty() && matches!(*plural, "status" | "finalize")) =>
        {
            let ri = find(plural)?;
            if !ri.namespaced {
                return None;
            }
            (
                ri,
                Some(ns.to_string()),
                tail.first().map(|s| s.to_string()),
                tail.get(1).copied(),
            )
        }
        [plural, tail @ ..] => {
            let ri = find(plural)?;
            (
                ri,
                None,
                tail.first().map(|s| s.to_string()),
                tail.get(1).copied(),
            )
        }
        [] => return None,
    };
    let status = match sub {
        None => false,
        Some("status") if ri.status_subresource => true,
        Some(_) => return None,
    };
    Some(Target {
        ri,
        namespace,
        name,
        status,
    })
}

fn selectors(query: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn serve(
    shared: &Shared,
    t: &Target,
    verb: &str,
    query: &HashMap<String, String>,
    body: &Bytes,
    content_type: &str,
    as_table: bool,
) -> Result<Response, ApiError> {
    let mut store = shared.store.lock().expect("store lock");
    let ns = t.namespace.as_deref();
    let name = t.name.as_deref().unwrap_or("");
    match verb {
        "get" => {
            let obj = store.get(&t.ri, ns, name)?;
            let rv = store.resource_version();
            let body = if as_table {
                table::table(&t.ri, &[obj], rv)
            } else {
                obj
            };
            Ok(json_response(StatusCode::OK, &body))
        }
        "list" => {
            let (labels, fields) = selectors(query)?;
            let items = store.list(&t.ri, ns, &labels, &fields);
            let rv = store.resource_version();
            let body = if as_table {
                table::table(&t.ri, &items, rv)
            } else {
                json!({
                    "kind": format!("{}List", t.ri.kind),
                    "apiVersion": t.ri.api_version(),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": items,
                })
            };
            Ok(json_response(StatusCode::OK, &body))
        }
        "create" => {
            let obj = parse_body(body)?;
            let created = store.create(&t.ri, ns, obj)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        "update" => {
            let obj = parse_body(body)?;
            let updated = store.update(&t.ri, ns, name, obj, t.status, true)?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        "patch" => {
            let kind = match content_type.split(';').next().unwrap_or("").trim() {
                "application/merge-patch+json" => PatchType::Merge,
                "application/json-patch+json" => PatchType::Json,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
                other => {
                    return Err(ApiError {
                        code: 415,
                        reason: "UnsupportedMediaType",
                        message: format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other})"
                        ),
                    });
                }
            };
            if kind == PatchType::Apply && !query.contains_key("fieldManager") {
                return Err(ApiError::bad_request(
                    "PATCH with an apply patch requires a fieldManager",
                ));
            }
            let patch = parse_body(body)?;
            let patched = store.patch(&t.ri, ns, name, kind, patch, t.status)?;
            Ok(json_response(StatusCode::OK, &patched))
        }
        "delete" => {
            let opts = parse_body(body).unwrap_or(Value::Null);
            let policy = query
                .get("propagationPolicy")
                .cloned()
                .or_else(|| opts["propagationPolicy"].as_str().map(String::from));
            let force = query.get("gracePeriodSeconds").map(String::as_str) == Some("0")
                || opts["gracePeriodSeconds"].as_i64() == Some(0);
            let deleted =
                store.delete_with(&t.ri, ns, name, policy.as_deref() == Some("Orphan"), force)?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
        "deletecollection" => {
            let (labels, fields) = selectors(query)?;
            let items = store.list(&t.ri, ns, &labels, &fields);
            for item in &items {
                let iname = item["metadata"]["name"].as_str().unwrap_or("");
                let ins = item["metadata"]["namespace"].as_str();
                let _ = store.delete(&t.ri, ins, iname, false);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}),
            ))
        }
        _ => Err(ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!("{verb} is not supported"),
        }),
    }
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch_response(shared: &Arc<Shared>, t: &Target, query: &HashMap<String, String>) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let ns = t.namespace.clone();
    let ri = t.ri.clone();
    let matches = move |obj: &Value| -> bool {
        let in_ns = ns.is_none()
            || !ri.namespaced
            || obj["metadata"]["namespace"].as_str() == ns.as_deref();
        in_ns && labels.matches(&labels_of(obj)) && fields.matches(obj)
    };
    let key = t.ri.key();
    let (mut rx, initial, start_rv) = {
        let store = shared.store.lock().expect("store lock");
        let rx = store.subscribe();
        let requested = query.get("resourceVersion").cloned().unwrap_or_default();
        let mut initial: Vec<Bytes> = Vec::new();
        let start = if requested.is_empty() || requested == "0" {
            let items = store.list(
                &t.ri,
                t.namespace.as_deref(),
                &LabelSelector::default(),
                &FieldSelector::default(),
            );
            for item in items.iter().filter(|o| matches(o)) {
                initial.push(watch_line("ADDED", item));
            }
            store.resource_version()
        } else {
            let rv: u64 = requested.parse().unwrap_or(0);
            match store.changes_since(&key, rv) {
                None => {
                    let gone = ApiError {
                        code: 410,
                        reason: "Expired",
                        message: format!("too old resource version: {rv} ({})", store.compacted()),
                    };
                    let body = watch_line("ERROR", &gone.status());
                    return (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                        .into_response();
                }
                Some(changes) => {
                    for c in changes.iter().filter(|c| matches(&c.object)) {
                        initial.push(watch_line(c.kind.as_str(), &c.object));
                    }
                    changes.last().map(|c| c.rv).unwrap_or(rv).max(rv)
                }
            }
        };
        (rx, initial, start)
    };
    let (tx, out) = mpsc::channel::<Bytes>(256);
    let interval = shared.config.bookmark_interval;
    let api_version = t.ri.api_version();
    let kind = t.ri.kind.clone();
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_rv = start_rv;
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tick.tick(), if bookmarks => {
                    let mark = json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(watch_line("BOOKMARK", &mark)).await.is_err() { return; }
                }
                change = rx.recv() => {
                    let Ok(change) = change else { return };
                    if change.key != key || change.rv <= last_rv {
                        continue;
                    }
                    last_rv = change.rv;
                    if matches(&change.object) {
                        let t = match change.kind { ChangeType::Added => "ADDED", ChangeType::Modified => "MODIFIED", ChangeType::Deleted => "DELETED" };
                        if tx.send(watch_line(t, &change.object)).await.is_err() { return; }
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out).map(Ok::<Bytes, std::io::Error>);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
