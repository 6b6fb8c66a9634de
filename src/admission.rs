//! Admission of a `MySQLActiveActive` outside the API server: the same
//! schema, defaults and CEL rules as the generated CRD, so `render` (and the
//! controller, as defence in depth) refuse exactly what `kubectl apply`
//! would, with the same messages.

use crd_admission::Rejection;
use kube::core::Resource;
use serde_json::Value;

use crate::api::MySQLActiveActive;

/// Why an object is not an admissible `MySQLActiveActive`.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// `apiVersion`/`kind` name another resource.
    #[error("expected apiVersion {expected_api_version} and kind {expected_kind}, found {found}")]
    WrongKind {
        /// The apiVersion this operator serves.
        expected_api_version: String,
        /// The kind this operator serves.
        expected_kind: String,
        /// What the object says it is.
        found: String,
    },
    /// The CRD's schema or CEL rules reject the object; `hint` names what
    /// the API server's static messages cannot (the operator-owned keys).
    #[error("invalid MySQLActiveActive: {rejection}{hint}")]
    Rejected {
        /// What the rules said.
        rejection: Rejection,
        /// Extra detail, empty or starting with a separator.
        hint: String,
    },
    /// The admitted object does not decode into the Rust types (a bug: the
    /// schema is generated from them).
    #[error("admitted object does not decode: {0}")]
    Decode(#[from] serde_json::Error),
}

/// The CRD's `openAPIV3Schema`, as JSON.
pub fn schema() -> Value {
    let crd = crate::api::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(serde_json::to_value);
    match schema {
        Some(Ok(v)) => v,
        _ => Value::Null,
    }
}

/// Admits `object` (and `old`, on update) as the API server would and
/// returns the defaulted resource.
pub fn admit(object: &Value, old: Option<&Value>) -> Result<MySQLActiveActive, AdmissionError> {
    let api_version = MySQLActiveActive::api_version(&());
    let kind = MySQLActiveActive::kind(&());
    let found_api = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let found_kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if found_api != api_version || found_kind != kind {
        return Err(AdmissionError::WrongKind {
            expected_api_version: api_version.into_owned(),
            expected_kind: kind.into_owned(),
            found: format!("apiVersion {found_api:?}, kind {found_kind:?}"),
        });
    }
    let defaulted = crd_admission::admit(&schema(), object, old).map_err(|rejection| {
        AdmissionError::Rejected {
            rejection,
            hint: owned_keys_hint(object),
        }
    })?;
    Ok(serde_json::from_value(defaulted)?)
}

/// `" (operator-owned: k1, k2)"` when `spec.mysqldConfig` sets keys the
/// operator owns, else empty.
fn owned_keys_hint(object: &Value) -> String {
    let owned: Vec<&str> = object
        .pointer("/spec/mysqldConfig")
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .map(String::as_str)
                .filter(|k| crate::api::rules::is_owned_key(k))
                .collect()
        })
        .unwrap_or_default();
    if owned.is_empty() {
        String::new()
    } else {
        format!(" (operator-owned: {})", owned.join(", "))
    }
}
