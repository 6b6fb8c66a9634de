//! The PodDisruptionBudget: voluntary disruptions take one server at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::MySQLActiveActive;

use super::meta::{Names, object_meta, selector_labels};

/// Builds the PodDisruptionBudget `<name>` with `maxUnavailable: 1`.
pub fn build_pdb(pair: &MySQLActiveActive, names: &Names) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: object_meta(pair, names, names.statefulset()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
