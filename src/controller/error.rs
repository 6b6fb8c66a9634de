//! Errors of a reconcile, one variant per pipeline step.

use crate::mysql::SqlError;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing Kubernetes objects failed.
    #[error("{step}: {source}")]
    Kube {
        /// The step.
        step: &'static str,
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
    /// Rendering refused the spec.
    #[error("render: {0}")]
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
}

impl Error {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Sql { .. } => "sql",
            Error::Render(_) => "render",
            Error::Refused { .. } => "refused",
        }
    }
}

/// Attaches a step name to a kube error.
pub fn kube(step: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { step, source }
}
