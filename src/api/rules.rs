//! Admission-time CEL rules of the CRD, and the operator-owned my.cnf keys.
//!
//! The rules are written once here and end up in the CRD's
//! `x-kubernetes-validations`; the same key list is used by the renderer
//! (defence in depth: a spec that reached the operator without passing
//! admission is still refused).

use std::sync::LazyLock;

use kube::core::{Message, Reason, Rule};
use regex::Regex;

/// Longest `metadata.name` of a pair. The StatefulSet's pods get the label
/// `controller-revision-hash: <name>-<10 chars>`, which must fit in 63
/// characters, and the Services add suffixes such as `-headless`.
pub const MAX_NAME_LEN: usize = 45;

/// my.cnf options owned by the operator, in normalized spelling (lower case,
/// `-` replaced by `_`). Setting any of them in `spec.mysqldConfig` would
/// break the pair's invariants (unique server-ids, auto-increment offsets,
/// GTID replication, read-only at boot, the paths the probes rely on).
pub const OPERATOR_OWNED_KEYS: &[&str] = &[
    "server_id",
    "auto_increment_increment",
    "auto_increment_offset",
    "gtid_mode",
    "enforce_gtid_consistency",
    "gtid_domain_id",
    "log_bin",
    "log_bin_index",
    "binlog_format",
    "log_replica_updates",
    "log_slave_updates",
    "relay_log",
    "relay_log_index",
    "relay_log_recovery",
    "report_host",
    "report_port",
    "read_only",
    "super_read_only",
    "skip_replica_start",
    "skip_slave_start",
    "datadir",
    "socket",
    "port",
    "bind_address",
    "skip_networking",
    "pid_file",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    // semi-synchronous replication: the durability the spec asks for
    "rpl_semi_sync_[a-z_]+",
];

/// A regular expression (RE2 and Rust `regex` compatible) matching a
/// normalized key that names an operator-owned option, with MySQL's option
/// modifiers: the `loose_` prefix and the boolean `skip_`/`disable_`/
/// `enable_` prefixes.
pub fn owned_key_regex() -> String {
    format!(
        "^(loose_)?((skip|disable|enable)_)?({})$",
        OPERATOR_OWNED_KEYS.join("|")
    )
}

/// Normalizes a my.cnf option name the way mysqld compares them.
pub fn normalize_key(key: &str) -> String {
    key.to_ascii_lowercase().replace('-', "_")
}

/// Whether `key` (any spelling) names an operator-owned option. Uses the
/// same regular expression as the CEL rule.
pub fn is_owned_key(key: &str) -> bool {
    static RE: LazyLock<Result<Regex, regex::Error>> =
        LazyLock::new(|| Regex::new(&owned_key_regex()));
    // Fails closed (every key owned) should the expression not compile; a
    // unit test compiles it.
    RE.as_ref()
        .map_or(true, |re| re.is_match(&normalize_key(key)))
}

/// `self == oldSelf` with a message naming the field.
pub fn immutable(field: &str) -> Rule {
    Rule::new("self == oldSelf")
        .message(Message::Message(format!(
            "{field} is immutable: it cannot change after the pair is created"
        )))
        .reason(Reason::FieldValueForbidden)
}

/// `metadata.name` must be a DNS-1035 label short enough for the objects
/// derived from it.
pub fn name_rule() -> Rule {
    Rule::new(format!(
        "self.metadata.name.size() <= {MAX_NAME_LEN} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    ))
    .message(Message::Message(format!(
        "metadata.name must be at most {MAX_NAME_LEN} characters of lower-case letters, digits and '-', start with a letter and end with a letter or digit (it names Services and pods)"
    )))
}

/// A set image is a non-empty reference without white space.
pub fn image_rule() -> Rule {
    Rule::new("self.matches('^[^\\\\s]+$')").message(Message::Message(
        "image must be a non-empty image reference without white space, e.g. mysql:8.4".into(),
    ))
}

/// A positive Kubernetes quantity.
pub fn quantity_rule() -> Rule {
    Rule::new("isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))").message(
        Message::Message(
            "storage.size must be a positive Kubernetes quantity such as 10Gi or 500Mi".into(),
        ),
    )
}

/// No operator-owned key in `mysqldConfig`. The message is static: a
/// message expression naming the keys (`filter(...).join(...)`) exceeds the
/// API server's CEL cost budget on a map with unbounded keys, and the real
/// API server refuses such a CRD. The operator's own validation (status
/// condition, `render`) names the offending key.
pub fn config_keys_rule() -> Rule {
    let re = owned_key_regex();
    Rule::new(format!(
        "self.all(k, !k.lowerAscii().replace('-', '_').matches('{re}'))"
    ))
    .message(Message::Message(OWNED_KEYS_MESSAGE.into()))
    .reason(Reason::FieldValueForbidden)
}

/// What admission says of an operator-owned key in `mysqldConfig`.
pub const OWNED_KEYS_MESSAGE: &str = "mysqldConfig must not set options the operator owns (server_id, auto_increment_*, gtid_mode, enforce_gtid_consistency, gtid_domain_id, log_bin*, binlog_format, log_replica_updates, relay_log*, report_*, read_only, super_read_only, skip_replica_start, datadir, socket, port, bind_address, skip_networking, pid_file, ssl_*, rpl_semi_sync_*), in any spelling or with loose-/skip-/disable-/enable- prefixes";

/// Option names are plain identifiers (no `=`, spaces, brackets or new lines
/// that could inject other settings or sections).
pub fn config_key_syntax_rule() -> Rule {
    Rule::new("self.all(k, k.matches('^[A-Za-z][A-Za-z0-9_.-]*$'))").message(Message::Message(
        "mysqldConfig keys must be option names: a letter, then letters, digits, '_', '-' or '.'"
            .into(),
    ))
}

/// Values fit on one my.cnf line.
pub fn config_values_rule() -> Rule {
    Rule::new("self.all(k, !self[k].contains('\\n') && !self[k].contains('\\r'))").message(
        Message::Message("mysqldConfig values must not contain line breaks".into()),
    )
}

/// Certificate verification needs the certificates.
pub fn tls_secret_rule() -> Rule {
    Rule::new(
        "!has(self.tls) || !has(self.tls.mode) || !(self.tls.mode in ['VerifyCA', 'VerifyIdentity']) || has(self.tls.secretName)",
    )
    .message(Message::Message(
        "replication.tls.secretName is required when replication.tls.mode is VerifyCA or VerifyIdentity".into(),
    ))
    .reason(Reason::FieldValueRequired)
}

/// Semi-synchronous durability needs one writer: in MultiWriter each node
/// would wait for the other's acknowledgement of its own writes and of the
/// writes it applies.
pub fn durability_rule() -> Rule {
    Rule::new(
        "!has(self.spec.writeMode) || self.spec.writeMode != 'MultiWriter' || !has(self.spec.replication) || !has(self.spec.replication.durability) || self.spec.replication.durability == 'Async'",
    )
    .message(Message::Message(
        "spec.replication.durability must be Async (or unset) when spec.writeMode is MultiWriter: SemiSync needs a single writer".into(),
    ))
    .reason(Reason::FieldValueForbidden)
}

/// A read-lag bound routes the reader Service, which selects the replica
/// in SingleWriter only (in MultiWriter it selects both writers).
pub fn read_lag_rule() -> Rule {
    Rule::new(
        "!has(self.spec.writeMode) || self.spec.writeMode != 'MultiWriter' || !has(self.spec.replication) || !has(self.spec.replication.maxReadLagSeconds)",
    )
    .message(Message::Message(
        "spec.replication.maxReadLagSeconds needs spec.writeMode SingleWriter: in MultiWriter both nodes take writes and the reader Service selects both".into(),
    ))
    .reason(Reason::FieldValueForbidden)
}

/// A label value, as the API server checks one (at most 63 characters,
/// bounded by the schema's `maxLength`).
pub const LABEL_VALUE_PATTERN: &str = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/// A DNS-1123 subdomain (names of PriorityClasses, Secrets, ...), at most 253
/// characters (the schema's `maxLength`).
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Label and annotation keys (`nodeSelector`, `podLabels`,
/// `podAnnotations`) as the API server checks them:
/// an optional DNS subdomain prefix (at most 253) and `/`, then a name of at
/// most 63 characters.
pub fn label_keys_rule(field: &str) -> Rule {
    Rule::new(
        r"self.all(k, k.size() <= 317 && (k.indexOf('/') < 0 || k.indexOf('/') <= 253) && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",
    )
    .message(Message::Message(format!(
        "{field} keys must be label keys: an optional DNS subdomain prefix and '/', then at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    )))
    .reason(Reason::FieldValueInvalid)
}

/// Toleration operators, as the API server accepts them.
pub fn toleration_operator_rule() -> Rule {
    Rule::new("self.all(t, !has(t.operator) || t.operator in ['', 'Exists', 'Equal'])")
        .message(Message::Message(
            "placement.tolerations[].operator must be Exists or Equal".into(),
        ))
        .reason(Reason::FieldValueInvalid)
}

/// Toleration effects, as the API server accepts them.
pub fn toleration_effect_rule() -> Rule {
    Rule::new(
        "self.all(t, !has(t.effect) || t.effect in ['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute'])",
    )
    .message(Message::Message(
        "placement.tolerations[].effect must be NoSchedule, PreferNoSchedule or NoExecute (or empty: every effect)".into(),
    ))
    .reason(Reason::FieldValueInvalid)
}

/// How the fields of a toleration go together, as the API server checks
/// them.
pub fn toleration_fields_rule() -> Rule {
    Rule::new(
        "self.all(t, (has(t.key) && t.key != '' || has(t.operator) && t.operator == 'Exists') && (!has(t.operator) || t.operator != 'Exists' || !has(t.value) || t.value == '') && (!has(t.tolerationSeconds) || has(t.effect) && t.effect == 'NoExecute'))",
    )
    .message(Message::Message(
        "placement.tolerations[]: an empty key needs operator Exists, operator Exists takes no value, and tolerationSeconds needs effect NoExecute".into(),
    ))
    .reason(Reason::FieldValueInvalid)
}

/// The CEL rules of `spec.resources` (a core ResourceRequirements): what
/// the API server checks of a container's resources, so a bad value is
/// refused at admission, not when the operator applies the StatefulSet.
/// [`crate::api::crd`] bounds its maps so their cost fits the budget.
pub fn resources_rules() -> Vec<Rule> {
    let each = |m: &str, check: &str| {
        format!(
            "!has(self.{m}) || self.{m}.all(k, {})",
            check.replace("V", &format!("string(self.{m}[k])"))
        )
    };
    let names = "k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-') || k.contains('/')";
    vec![
        Rule::new(format!(
            "({}) && ({})",
            each("limits", names),
            each("requests", names)
        ))
        .message(Message::Message(
            "resources: the resource names are cpu, memory, ephemeral-storage, hugepages-<size> or a name with a domain prefix".into(),
        ))
        .reason(Reason::FieldValueInvalid),
        Rule::new(format!(
            "({}) && ({})",
            each("limits", "isQuantity(V) && !quantity(V).isLessThan(quantity('0'))"),
            each("requests", "isQuantity(V) && !quantity(V).isLessThan(quantity('0'))")
        ))
        .message(Message::Message(
            "resources.limits and resources.requests must be quantities of at least 0, such as 500m, 2 or 1Gi".into(),
        ))
        .reason(Reason::FieldValueInvalid),
        Rule::new(
            "!has(self.limits) || !has(self.requests) || self.requests.all(k, !(k in self.limits) || !isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",
        )
        .message(Message::Message(
            "resources.requests must not be greater than resources.limits of the same resource".into(),
        ))
        .reason(Reason::FieldValueInvalid),
    ]
}

/// NetworkPolicy peers (`spec.networkPolicy.clients`, `.operator`) as the
/// API server checks them in a NetworkPolicy: IP blocks are CIDRs, and the
/// selectors' expressions use the four operators (with values exactly when
/// `In`/`NotIn`).
pub fn peers_rule(field: &str) -> Rule {
    let selector = |s: &str| {
        format!(
            "(!has(p.{s}) || !has(p.{s}.matchExpressions) || p.{s}.matchExpressions.all(e, e.operator in ['In', 'NotIn'] ? (has(e.values) && e.values.size() > 0) : (e.operator in ['Exists', 'DoesNotExist'] && (!has(e.values) || e.values.size() == 0))))"
        )
    };
    Rule::new(format!(
        "self.all(p, (!has(p.ipBlock) || isCIDR(p.ipBlock.cidr) && (!has(p.ipBlock.except) || p.ipBlock.except.all(e, isCIDR(e)))) && {} && {})",
        selector("podSelector"),
        selector("namespaceSelector")
    ))
    .message(Message::Message(format!(
        "{field}: ipBlock.cidr and ipBlock.except must be CIDRs (e.g. 10.0.0.0/16), and selector expressions use In or NotIn with values, or Exists or DoesNotExist without"
    )))
    .reason(Reason::FieldValueInvalid)
}

/// Pod labels must not collide with the operator's own.
pub fn reserved_label_rule() -> Rule {
    Rule::new("self.all(k, !k.startsWith('app.kubernetes.io/') && !k.startsWith('mysql-aa.io/'))")
        .message(Message::Message(
            "placement.podLabels must not use the app.kubernetes.io/ or mysql-aa.io/ prefixes: the operator owns them".into(),
        ))
        .reason(Reason::FieldValueForbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_keys_in_every_spelling() {
        for key in [
            "server-id",
            "server_id",
            "SERVER_ID",
            "Auto-Increment-Offset",
            "loose-gtid-mode",
            "skip-log-bin",
            "disable_log_bin",
            "skip-replica-start",
            "skip_slave_start",
            "loose_skip_replica_start",
            "gtid_domain_id",
            "super-read-only",
            "rpl-semi-sync-source-timeout",
            "loose_rpl_semi_sync_master_enabled",
        ] {
            assert!(is_owned_key(key), "{key} should be owned");
        }
        for key in [
            "max_connections",
            "innodb_buffer_pool_size",
            "server_id_bits",
            "log_error",
            "read_buffer_size",
        ] {
            assert!(!is_owned_key(key), "{key} should be allowed");
        }
    }
}
