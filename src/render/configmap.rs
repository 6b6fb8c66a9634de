//! The ConfigMap: one my.cnf per ordinal plus the pod scripts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use crate::api::{MySQLActiveActive, PAIR_SIZE};

use super::meta::{Names, object_meta};
use super::mycnf::{mycnf_key, render_mycnf};
use super::scripts::{BOOTSTRAP_KEY, START_KEY, bootstrap_script, start_script};

/// Builds the ConfigMap `<name>-config`.
pub fn build_config_map(pair: &MySQLActiveActive, names: &Names) -> ConfigMap {
    let mut data = BTreeMap::new();
    for ordinal in 0..PAIR_SIZE {
        data.insert(mycnf_key(ordinal), render_mycnf(&pair.spec, names, ordinal));
    }
    data.insert(BOOTSTRAP_KEY.into(), bootstrap_script(pair.spec.engine));
    data.insert(START_KEY.into(), start_script(pair.spec.engine));
    ConfigMap {
        metadata: object_meta(pair, names, names.config_map()),
        data: Some(data),
        ..ConfigMap::default()
    }
}
