//! Admission of custom resources against a CRD's `openAPIV3Schema`, the way
//! kube-apiserver does it: apply schema defaults, check the structural
//! schema (types, required, enums, ranges, lengths, patterns, list and map
//! bounds, unknown fields), then evaluate the `x-kubernetes-validations`
//! CEL rules (transition rules against the old object on update).
//!
//! What is approximated compared with a real API server:
//! - unknown fields are always errors (kubectl's default
//!   `--validate=strict`), never silently pruned;
//! - `format` is checked only for `int32`/`int64` ranges;
//! - `metadata` is not validated here (the API server validates it apart);
//! - CEL cost budgets are not enforced.

use std::fmt;

use regex::Regex;
use serde_json::{Map, Value};

/// One field that failed admission, in the API server's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `spec.serverIdBase`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every field that failed, never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection(pub Vec<FieldError>);

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", parts.join("; "))
    }
}

impl std::error::Error for Rejection {}

/// Admits `object` (a whole custom resource) against `schema` (a CRD
/// version's `openAPIV3Schema`). Returns the object with schema defaults
/// applied, or every field that failed.
pub fn admit(schema: &Value, object: &Value, old: Option<&Value>) -> Result<Value, Rejection> {
    let defaulted = kube_cel::apply_defaults(schema, object);
    let mut errors = Vec::new();
    check(schema, &defaulted, "", &mut errors, true);
    if errors.is_empty() {
        let old_defaulted = old.map(|o| kube_cel::apply_defaults(schema, o));
        if let Err(cel_errors) =
            kube_cel::Validator::new().validate(schema, &defaulted, old_defaulted.as_ref())
        {
            errors.extend(cel_errors.iter().map(|e| FieldError {
                path: e.field_path.clone(),
                message: e.message.clone(),
            }));
        }
    }
    if errors.is_empty() {
        Ok(defaulted)
    } else {
        Err(Rejection(errors))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(errors: &mut Vec<FieldError>, path: &str, value: &Value, what: String) {
    errors.push(FieldError {
        path: path.to_string(),
        message: format!("Invalid value: {}: {what}", short(value)),
    });
}

fn short(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn type_matches(schema: &Value, value: &Value) -> Result<(), String> {
    if flag(schema, "x-kubernetes-int-or-string") {
        return match value {
            Value::String(_) => Ok(()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
            _ => Err("must be an integer or a string".into()),
        };
    }
    let Some(ty) = schema.get("type").and_then(Value::as_str) else {
        return Ok(());
    };
    let ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("must be of type {ty}"))
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>, root: bool) {
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            invalid(errors, path, value, "must not be null".into());
        }
        return;
    }
    if let Err(msg) = type_matches(schema, value) {
        invalid(errors, path, value, msg);
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        {
            let names: Vec<String> = allowed.iter().map(short).collect();
            errors.push(FieldError {
                path: path.to_string(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    short(value),
                    names.join(", ")
                ),
            });
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(subs) = schema.get(key).and_then(Value::as_array) {
            let passing = subs
                .iter()
                .filter(|s| {
                    let mut e = Vec::new();
                    check_values_only(s, value, path, &mut e);
                    e.is_empty()
                })
                .count();
            let ok = match key {
                "allOf" => passing == subs.len(),
                "anyOf" => passing > 0,
                _ => passing == 1,
            };
            if !ok {
                invalid(
                    errors,
                    path,
                    value,
                    format!("must validate {key} of the schema"),
                );
            }
        }
    }
    match value {
        Value::String(s) => check_string(schema, s, value, path, errors),
        Value::Number(_) => check_number(schema, value, path, errors),
        Value::Array(items) => check_array(schema, items, value, path, errors),
        Value::Object(map) => check_object(schema, map, value, path, errors, root),
        _ => {}
    }
}

/// Value constraints of a junctor branch (no unknown-field checks there, as
/// in structural schemas).
fn check_values_only(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut relaxed = schema.clone();
    if let Some(obj) = relaxed.as_object_mut() {
        obj.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
    check(&relaxed, value, path, errors, false);
}

/// Lower and upper bounds on a count (string length, items, properties).
fn check_count(
    schema: &Value,
    (min_key, max_key): (&str, &str),
    n: u64,
    path: &str,
    value: &Value,
    errors: &mut Vec<FieldError>,
) {
    if let Some(min) = schema.get(min_key).and_then(Value::as_u64)
        && n < min
    {
        invalid(
            errors,
            path,
            value,
            format!("should have at least {min} ({min_key})"),
        );
    }
    if let Some(max) = schema.get(max_key).and_then(Value::as_u64)
        && n > max
    {
        errors.push(FieldError {
            path: path.to_string(),
            message: format!("Too long: {n}: may have at most {max} ({max_key})"),
        });
    }
}

fn check_string(schema: &Value, s: &str, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    check_count(schema, ("minLength", "maxLength"), len, path, value, errors);
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => {
                invalid(errors, path, value, format!("should match '{pattern}'"))
            }
            Ok(_) => {}
            Err(e) => invalid(
                errors,
                path,
                value,
                format!("schema pattern is invalid: {e}"),
            ),
        }
    }
}

fn check_number(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(v) = value.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if v < min || (exclusive && v == min) {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            invalid(errors, path, value, format!("should be {op} {min}"));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if v > max || (exclusive && v == max) {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            invalid(errors, path, value, format!("should be {op} {max}"));
        }
    }
    let range = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => Some((i32::MIN as f64, i32::MAX as f64)),
        Some("int64") => Some((i64::MIN as f64, i64::MAX as f64)),
        _ => None,
    };
    if let Some((lo, hi)) = range
        && (v < lo || v > hi)
    {
        invalid(errors, path, value, "is out of range for its format".into());
    }
}

fn check_array(
    schema: &Value,
    items: &[Value],
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    check_count(
        schema,
        ("minItems", "maxItems"),
        items.len() as u64,
        path,
        value,
        errors,
    );
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), errors, false);
        }
    }
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let identity = |item: &Value| -> Value {
        match list_type {
            Some("map") => Value::Array(
                keys.iter()
                    .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                    .collect(),
            ),
            _ => item.clone(),
        }
    };
    if matches!(list_type, Some("set") | Some("map")) || flag(schema, "uniqueItems") {
        for (i, item) in items.iter().enumerate() {
            let id = identity(item);
            if items[..i].iter().any(|earlier| identity(earlier) == id) {
                errors.push(FieldError {
                    path: format!("{path}[{i}]"),
                    message: format!("Duplicate value: {}", short(&id)),
                });
            }
        }
    }
}

fn check_object(
    schema: &Value,
    map: &Map<String, Value>,
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
    root: bool,
) {
    check_count(
        schema,
        ("minProperties", "maxProperties"),
        map.len() as u64,
        path,
        value,
        errors,
    );
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                errors.push(FieldError {
                    path: join(path, name),
                    message: "Required value".into(),
                });
            }
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields")
        || flag(schema, "x-kubernetes-embedded-resource");
    for (key, child) in map {
        let child_path = join(path, key);
        if root && key == "metadata" {
            continue;
        }
        if let Some(prop) = props.and_then(|p| p.get(key)) {
            check(prop, child, &child_path, errors, false);
        } else if let Some(extra) = additional.filter(|a| a.is_object()) {
            check(extra, child, &child_path, errors, false);
        } else if !preserve && additional != Some(&Value::Bool(true)) {
            if root && (key == "apiVersion" || key == "kind") {
                continue;
            }
            errors.push(FieldError {
                path: child_path,
                message: "field not declared in schema".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                        "count": {"type": "integer", "minimum": 1, "maximum": 3, "default": 2},
                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "x-kubernetes-list-type": "set"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
                        "opt": {"type": "string", "nullable": true},
                        "ios": {"x-kubernetes-int-or-string": true}
                    },
                    "x-kubernetes-validations": [{"rule": "self.count != 3 || self.mode == 'B'", "message": "count 3 needs mode B"}]
                }
            }
        })
    }

    fn errors(spec: Value) -> Vec<String> {
        match admit(
            &schema(),
            &json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": spec}),
            None,
        ) {
            Ok(_) => vec![],
            Err(r) => r.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_are_applied_and_valid_objects_pass() {
        let out = admit(&schema(), &json!({"spec": {"name": "abc"}}), None).unwrap();
        assert_eq!(out["spec"]["mode"], "A");
        assert_eq!(out["spec"]["count"], 2);
        assert!(errors(json!({"name": "ab", "opt": null, "ios": 3, "tags": ["x"]})).is_empty());
    }

    #[test]
    fn each_constraint_rejects() {
        let cases: &[(Value, &str)] = &[
            (json!({}), "spec.name: Required value"),
            (json!({"name": ""}), "at least 1 (minLength)"),
            (json!({"name": "abcdefg"}), "Too long"),
            (json!({"name": "AB"}), "should match"),
            (
                json!({"name": "a", "mode": "C"}),
                "Unsupported value: \"C\"",
            ),
            (
                json!({"name": "a", "count": 0}),
                "greater than or equal to 1",
            ),
            (json!({"name": "a", "count": 9}), "less than or equal to 3"),
            (
                json!({"name": "a", "count": "2"}),
                "must be of type integer",
            ),
            (
                json!({"name": "a", "tags": ["x", "y", "z"]}),
                "at most 2 (maxItems)",
            ),
            (json!({"name": "a", "tags": ["x", "x"]}), "Duplicate value"),
            (
                json!({"name": "a", "labels": {"a": "1", "b": "2"}}),
                "at most 1 (maxProperties)",
            ),
            (json!({"name": "a", "labels": {"a": 1}}), "spec.labels.a"),
            (
                json!({"name": "a", "bogus": 1}),
                "spec.bogus: field not declared",
            ),
            (json!({"name": "a", "ios": true}), "integer or a string"),
            (json!({"name": "a", "count": 3}), "count 3 needs mode B"),
        ];
        for (spec, want) in cases {
            let got = errors(spec.clone());
            assert!(
                got.iter().any(|e| e.contains(want)),
                "{spec}: want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn transition_rules_see_the_old_object() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "engine": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "engine is immutable"}]}
        }}}});
        let old = json!({"spec": {"engine": "a"}});
        assert!(admit(&schema, &json!({"spec": {"engine": "a"}}), Some(&old)).is_ok());
        let err = admit(&schema, &json!({"spec": {"engine": "b"}}), Some(&old)).unwrap_err();
        assert!(err.to_string().contains("engine is immutable"), "{err}");
    }
}
