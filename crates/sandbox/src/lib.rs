//! Cluster-in-a-box for mysql-aa-operator: test and trial infrastructure,
//! kept out of the operator binary.
//!
//! - [`apiserver`]: a Kubernetes API stand-in (storage, watches, discovery,
//!   CRD admission, garbage collection) for kube-rs and kubectl.
//! - [`cluster`]: the box around it: StatefulSet and Endpoints controllers
//!   and a kubelet running pods as real processes.

pub mod apiserver;
pub mod cluster;
