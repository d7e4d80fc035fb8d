//! What can go wrong while rendering, checking or installing a profile.

use std::path::PathBuf;

use crate::bootstrap::BootstrapError;

/// An error of a profile: bad parameters, or a file that cannot be written or read.
///
/// Messages are lowercase, quote the offending input in backticks and say how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// An image reference is not `REPOSITORY[:TAG]@sha256:DIGEST`.
    #[error(
        "invalid image `{input}`: {reason} (expected `REPOSITORY[:TAG]@sha256:<64 hex digits>`, e.g. `docker.io/envoyproxy/envoy:distroless-v1.40.0@sha256:…`)"
    )]
    Image {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A namespace cannot be used.
    #[error("invalid namespace `{input}`: {reason}")]
    Namespace {
        /// What was given.
        input: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A gateway cannot be rendered in this profile.
    #[error("invalid gateway `{input}`: {reason}")]
    Gateway {
        /// What was given.
        input: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A CIDR is not `ADDRESS/PREFIX`.
    #[error("invalid CIDR `{input}`: {reason} (expected e.g. `10.0.0.1/32` or `fd00::1/128`)")]
    Cidr {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// An extra object handed to the renderer is unusable.
    #[error("invalid extra object: {0}")]
    ExtraObject(String),
    /// The Envoy bootstrap could not be rendered.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// An object could not be turned into YAML (a bug: the input is plain data).
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
    /// An object could not be turned into JSON (a bug: the input is plain data).
    #[error("cannot serialise an object: {0}")]
    Json(#[from] serde_json::Error),
    /// A rendered bootstrap could not be read back (a bug).
    #[error("cannot read back the rendered bootstrap: {0}")]
    ReadBack(String),
    /// A file or directory could not be read or written.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done: `write`, `read`, `create directory`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ProfileError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
