//! Cluster-in-a-box for mysql-aa-operator: test and trial infrastructure,
//! kept out of the operator binary.
//!
//! - [`apiserver`]: a Kubernetes API stand-in (storage, watches, discovery,
//!   CRD admission, garbage collection) for kube-rs and kubectl.

pub mod apiserver;
