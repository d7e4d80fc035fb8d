//! Why a keyless bundle was refused.

use std::path::PathBuf;

/// Why a keyless bundle does not verify. Messages are lowercase and name what was expected and
/// what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeylessError {
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The bundle is malformed or of an unsupported shape.
    #[error("not a usable sigstore bundle: {reason}")]
    Bundle {
        /// What is wrong.
        reason: String,
    },
    /// The trusted root is malformed.
    #[error("not a usable trusted root: {reason}")]
    TrustedRoot {
        /// What is wrong.
        reason: String,
    },
    /// The log entry is from a log the trusted root does not list.
    #[error(
        "the log entry comes from a log that the trusted root does not list (log id `{log_id}`)"
    )]
    UnknownLog {
        /// The entry's log id, base64.
        log_id: String,
    },
    /// The log's key was not in force when the entry was logged.
    #[error(
        "the key of the log `{log}` was not valid at the entry's integration time ({integrated_time})"
    )]
    LogKeyNotValid {
        /// The log's base URL.
        log: String,
        /// The entry's integration time (RFC 3339).
        integrated_time: String,
    },
    /// The transparency-log evidence does not hold.
    #[error("transparency log: {0}")]
    Transparency(#[from] TransparencyError),
    /// The bundle signs another artifact.
    #[error("the bundle does not sign this artifact: {reason}")]
    ArtifactMismatch {
        /// What the bundle names and what the artifact is.
        reason: String,
    },
    /// The signing certificate is not for the expected identity or issuer.
    #[error("the signing certificate is not for the expected signer: {reason}")]
    Identity {
        /// The difference.
        reason: String,
    },
    /// The signing certificate does not chain to the trusted root, or its SCT does not verify.
    #[error("the signing certificate does not verify against the trusted root: {reason}")]
    Certificate {
        /// The verifier's reason.
        reason: String,
    },
    /// The signature over the content does not verify.
    #[error("the bundle's signature does not verify: {reason}")]
    Signature {
        /// The verifier's reason.
        reason: String,
    },
}

/// Why the transparency-log evidence of a bundle does not hold: the checks the sigstore crate
/// does not make.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransparencyError {
    /// The bundle does not have exactly one log entry.
    #[error("the bundle must carry exactly one log entry, it has {0}")]
    EntryCount(usize),
    /// The log entry has no inclusion proof.
    #[error("the log entry has no inclusion proof")]
    NoInclusionProof,
    /// The inclusion proof has no checkpoint.
    #[error("the inclusion proof has no checkpoint")]
    NoCheckpoint,
    /// The log entry has no signed entry timestamp, so its integration time is not proven.
    #[error(
        "the log entry has no signed entry timestamp, so its integration time is unproven (RFC 3161 timestamps are not supported)"
    )]
    NoSignedEntryTimestamp,
    /// The inclusion proof is malformed.
    #[error("the inclusion proof is malformed: {0}")]
    ProofMalformed(String),
    /// The inclusion proof does not lead from the entry to the root hash it claims.
    #[error(
        "the inclusion proof does not lead from the log entry to its root hash: computed `{computed}`, the proof says `{claimed}`"
    )]
    RootMismatch {
        /// The root computed from the entry and the proof's hashes (base64).
        computed: String,
        /// The root the proof claims (base64).
        claimed: String,
    },
    /// The checkpoint is malformed.
    #[error("the checkpoint is malformed: {0}")]
    CheckpointMalformed(String),
    /// The checkpoint is for a tree of another size than the proof.
    #[error(
        "the checkpoint's tree size {checkpoint} differs from the inclusion proof's tree size {proof}"
    )]
    TreeSizeMismatch {
        /// The checkpoint's tree size.
        checkpoint: u64,
        /// The proof's tree size.
        proof: u64,
    },
    /// The checkpoint's root hash is not the proof's.
    #[error(
        "the checkpoint's root hash `{checkpoint}` differs from the inclusion proof's root hash `{proof}`"
    )]
    RootHashMismatch {
        /// The checkpoint's root hash (base64).
        checkpoint: String,
        /// The proof's root hash (base64).
        proof: String,
    },
    /// No signature line of the checkpoint is by the log's key.
    #[error("the checkpoint carries no signature by the log key (key id `{key_hint}`)")]
    NoLogSignature {
        /// The 4-byte key id expected in a signature line (hex).
        key_hint: String,
    },
    /// A checkpoint signature by the log's key does not verify.
    #[error("the checkpoint signature by `{name}` does not verify with the log key")]
    CheckpointSignature {
        /// The key name on the signature line.
        name: String,
    },
    /// The signed entry timestamp does not verify.
    #[error(
        "the signed entry timestamp does not verify with the log key (entry body, integration time, log index or log id changed)"
    )]
    SignedEntryTimestamp,
    /// The log entry body does not parse.
    #[error("the log entry body is malformed: {0}")]
    BodyMalformed(String),
    /// The log entry is of a kind this verifier does not know.
    #[error(
        "log entries of kind `{kind}` version `{version}` are not supported (dsse 0.0.1 and hashedrekord 0.0.1 are)"
    )]
    UnsupportedKind {
        /// The entry's kind.
        kind: String,
        /// The entry's API version.
        version: String,
    },
    /// The log entry describes another signature, key or content than the bundle's.
    #[error("the log entry does not describe this bundle: {0}")]
    BodyMismatch(String),
}
