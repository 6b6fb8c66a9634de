//! The ConfigMap: one my.cnf per ordinal, the pod scripts, and (once the
//! pair was Ready) the mark that the pair has data.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use crate::api::{MySQLActiveActive, PAIR_SIZE};

use super::meta::{Names, object_meta};
use super::mycnf::{mycnf_key, render_mycnf};
use super::scripts::{BOOTSTRAP_KEY, INITIALIZED_KEY, START_KEY, bootstrap_script, start_script};

/// Builds the ConfigMap `<name>-config`.
pub fn build_config_map(pair: &MySQLActiveActive, names: &Names) -> ConfigMap {
    let mut data = BTreeMap::new();
    for ordinal in 0..PAIR_SIZE {
        data.insert(mycnf_key(ordinal), render_mycnf(&pair.spec, names, ordinal));
    }
    data.insert(BOOTSTRAP_KEY.into(), bootstrap_script(pair.spec.engine));
    data.insert(START_KEY.into(), start_script(pair.spec.engine));
    // From status: a pod started after this has a peer with the pair's data.
    if let Some(t) = pair.status.as_ref().and_then(|s| s.initialized_at.as_ref()) {
        data.insert(INITIALIZED_KEY.into(), format!("{}\n", t.0));
    }
    ConfigMap {
        metadata: object_meta(pair, names, names.config_map()),
        data: Some(data),
        ..ConfigMap::default()
    }
}
