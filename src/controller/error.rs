//! Errors of the reconcile steps and of the pair loop's steps. Each names
//! its step and what it was acting on.

use std::time::Duration;

use crate::mysql::SqlError;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a Kubernetes object failed.
    #[error("{step}: {object}: {source}")]
    Kube {
        /// The step.
        step: &'static str,
        /// Kind, namespace and name of the object.
        object: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A step against a server failed.
    #[error("{step} on ordinal {node}: {source}")]
    Sql {
        /// The step.
        step: &'static str,
        /// The node.
        node: u32,
        /// The server error.
        #[source]
        source: SqlError,
    },
    /// A step needs a node that has no address (no pod, or no IP yet).
    #[error("{step} on ordinal {node}: the node has no address")]
    NoAddress {
        /// The step.
        step: &'static str,
        /// The node.
        node: u32,
    },
    /// A node did not apply a GTID set within its limit.
    #[error("{step} on ordinal {node}: did not apply {gtid_set} within {limit:?}{hint}")]
    NotCaughtUp {
        /// The step.
        step: &'static str,
        /// The node.
        node: u32,
        /// The set it had to apply.
        gtid_set: String,
        /// The limit.
        limit: Duration,
        /// What follows from it.
        hint: &'static str,
    },
    /// Building the objects refused the spec.
    #[error("build: {0}")]
    Render(#[from] crate::render::InvalidSpec),
    /// The API server refused a rendered object (400 or 422): the spec
    /// holds something its validation of a built-in type rejects.
    #[error("apply: the API server refused {object}: {message}")]
    Refused {
        /// Kind, namespace and name of the object.
        object: String,
        /// The API server's message.
        message: String,
    },
    /// An object could not be encoded (a bug).
    #[error("encode: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Error {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Sql { .. } | Error::NoAddress { .. } | Error::NotCaughtUp { .. } => "sql",
            Error::Render(_) => "render",
            Error::Refused { .. } => "refused",
            Error::Encode(_) => "encode",
        }
    }

    /// A Kubernetes error of `step` on `object`.
    pub fn kube(step: &'static str, object: &str, source: kube::Error) -> Self {
        Error::Kube {
            step,
            object: object.to_string(),
            source,
        }
    }

    /// An encoding error.
    pub fn encode(e: serde_json::Error) -> Self {
        Error::Encode(e)
    }
}

/// Attaches a step and an object to a kube error.
pub fn kube(step: &'static str, object: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube {
        step,
        object,
        source,
    }
}
