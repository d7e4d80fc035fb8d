//! Keyless sigstore bundles (v0.3, also v0.1/v0.2), verified offline against a trusted root.
//!
//! Who verifies what:
//!
//! | check | by |
//! |---|---|
//! | the signing certificate chains to a Fulcio CA of the trusted root | sigstore crate |
//! | its embedded SCT is signed by a CT log of the trusted root | sigstore crate |
//! | its identity (SAN) and OIDC issuer are the expected ones | sigstore crate |
//! | the signature over the content (DSSE PAE, or the artifact digest) | sigstore crate |
//! | the certificate was valid when the entry was logged | sigstore crate |
//! | the entry's Merkle inclusion proof leads to the proof's root hash | [`entry`] |
//! | the checkpoint is for that tree size and root, and signed by the log key | [`entry`], [`checkpoint`] |
//! | the signed entry timestamp (integration time, index, body) is signed by the log key | [`entry`] |
//! | the logged body names this bundle's signature, certificate and content | [`entry`] |
//! | the artifact is the statement's subject, or the logged digest | here |
//! | CAs, CT log keys and the log key are used only inside their validity periods | here, [`trust`] |
//!
//! Our checks run first, so a tampered bundle is refused with a specific reason. RFC 3161
//! timestamps in the bundle are not checked: the integration time comes from the signed entry
//! timestamp, which is required.

pub mod checkpoint;
pub mod entry;
mod error;
pub mod merkle;
pub mod trust;

use std::path::Path;

use serde::Deserialize;
use sigstore::bundle::verify::{ArtifactDigest, VerificationError, Verifier, policy::Identity};
use sigstore::rekor::apis::configuration::Configuration as RekorConfiguration;
use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{bundle, verification_material};
use x509_parser::prelude::FromDer as _;

use super::digest::Digest;
use entry::Content;
pub use error::{KeylessError, TransparencyError};
pub use trust::TrustedRoot;

/// The payload type of in-toto statements in DSSE envelopes.
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Statements with more subjects are refused (the same bound as sigstore-go's).
const MAX_SUBJECTS: usize = 1024;

/// A sigstore bundle, parsed.
#[derive(Clone, Debug)]
pub struct Bundle(sigstore::bundle::Bundle);

impl Bundle {
    /// Reads a bundle (`*.sigstore.json`).
    pub fn load(path: &Path) -> Result<Self, KeylessError> {
        let bytes = std::fs::read(path).map_err(|source| KeylessError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    /// Parses the JSON of a bundle.
    pub fn from_json(json: &[u8]) -> Result<Self, KeylessError> {
        serde_json::from_slice(json)
            .map(Self)
            .map_err(|e| KeylessError::Bundle {
                reason: e.to_string(),
            })
    }
}

/// Who must have signed: the certificate's identity (SAN: a URI or an e-mail address) and the
/// OIDC issuer that vouched for it, both matched exactly.
#[derive(Clone, Debug)]
pub struct Signer {
    /// The expected identity, e.g.
    /// `https://github.com/ORG/REPO/.github/workflows/release.yml@refs/tags/v1.0.0`.
    pub identity: String,
    /// The expected OIDC issuer, e.g. `https://token.actions.githubusercontent.com`.
    pub issuer: String,
}

/// What a verified bundle proves.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verified {
    /// The signer's identity.
    pub identity: String,
    /// The signer's OIDC issuer.
    pub issuer: String,
    /// The artifact digest the bundle signs (`sha256:…` or `sha512:…`).
    pub artifact: String,
    /// The transparency log's base URL.
    pub log: String,
    /// The checkpoint's origin line.
    pub checkpoint_origin: String,
    /// The entry's global log index.
    pub log_index: i64,
    /// The size of the tree the entry was proven in.
    pub tree_size: u64,
    /// When the log integrated the entry (RFC 3339).
    pub integrated_time: String,
}

/// Verifies `bundle` for an artifact known by its `digests` (one per algorithm; a file's
/// SHA-256 and SHA-512, or the one digest given), signed by `signer`, against `root`.
pub fn verify(
    bundle: &Bundle,
    root: &TrustedRoot,
    signer: &Signer,
    digests: &[Digest],
) -> Result<Verified, KeylessError> {
    let malformed = |reason: &str| KeylessError::Bundle {
        reason: reason.to_owned(),
    };
    let material = bundle
        .0
        .verification_material
        .as_ref()
        .ok_or_else(|| malformed("it has no verification material"))?;
    let [entry] = material.tlog_entries.as_slice() else {
        return Err(TransparencyError::EntryCount(material.tlog_entries.len()).into());
    };
    let log_id = entry
        .log_id
        .as_ref()
        .map(|l| l.key_id.as_slice())
        .unwrap_or_default();
    let log = root.log(log_id).ok_or_else(|| KeylessError::UnknownLog {
        log_id: {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(log_id)
        },
    })?;

    // (a)–(c) and the signed entry timestamp.
    let evidence = entry::verify_log_evidence(entry, log)?;
    if !log.valid_at(evidence.integrated_time) {
        return Err(KeylessError::LogKeyNotValid {
            log: log.base_url.clone(),
            integrated_time: rfc3339(evidence.integrated_time),
        });
    }

    // (d) The logged body is this bundle's signature, certificate and content.
    let certificate = match &material.content {
        Some(verification_material::Content::Certificate(c)) => c.raw_bytes.as_slice(),
        Some(verification_material::Content::X509CertificateChain(chain)) => chain
            .certificates
            .first()
            .map(|c| c.raw_bytes.as_slice())
            .ok_or_else(|| malformed("its certificate chain is empty"))?,
        Some(verification_material::Content::PublicKey(_)) => {
            return Err(malformed(
                "it is signed with a public key, not a certificate; verify key-based signatures with --key",
            ));
        }
        None => return Err(malformed("it has no certificate")),
    };
    let (content, signature) = match &bundle.0.content {
        Some(bundle::Content::DsseEnvelope(env)) => {
            let [sig] = env.signatures.as_slice() else {
                return Err(malformed(
                    "its DSSE envelope must have exactly one signature",
                ));
            };
            let content = Content::Dsse {
                payload: &env.payload,
                payload_type: &env.payload_type,
                keyid: &sig.keyid,
            };
            (content, sig.sig.as_slice())
        }
        Some(bundle::Content::MessageSignature(m)) => {
            (Content::MessageSignature, m.signature.as_slice())
        }
        None => return Err(malformed("it has no signature")),
    };
    let logged_digest =
        entry::check_body(&entry.canonicalized_body, content, signature, certificate)?;

    // The bundle is about this artifact.
    let artifact = match content {
        Content::Dsse {
            payload,
            payload_type,
            ..
        } => statement_subject(payload, payload_type, digests)?,
        Content::MessageSignature => {
            let logged = logged_digest.ok_or_else(|| malformed("its log entry names no digest"))?;
            if let Some(d) = message_digest(&bundle.0)
                && d != logged
            {
                return Err(TransparencyError::BodyMismatch(format!(
                    "it logs {logged}, the bundle's message digest is {d}"
                ))
                .into());
            }
            if !digests.contains(&logged) {
                return Err(KeylessError::ArtifactMismatch {
                    reason: format!("it signs {logged}, this artifact is {}", list(digests)),
                });
            }
            logged
        }
    };

    // The certificate, identity and signature, by the sigstore crate.
    let issued_at = x509_parser::certificate::X509Certificate::from_der(certificate)
        .map(|(_, c)| c.validity().not_before.timestamp())
        .map_err(|e| malformed(&format!("its certificate does not parse: {e}")))?;
    let verifier = Verifier::new(RekorConfiguration::default(), root.sigstore_root(issued_at))
        .map_err(|e| KeylessError::TrustedRoot {
            reason: e.to_string(),
        })?;
    let policy = Identity::new(&signer.identity, &signer.issuer);
    let sigstore_digest = match artifact {
        Digest::Sha256(d) => ArtifactDigest::from(d),
        Digest::Sha512(d) => ArtifactDigest::from(d),
    };
    let outcome =
        poll_offline(verifier.verify_digest_with(sigstore_digest, bundle.0.clone(), &policy, true))
            .ok_or_else(|| KeylessError::Signature {
                reason:
                    "the sigstore verifier waited for I/O, which offline verification never needs"
                        .to_owned(),
            })?;
    outcome.map_err(from_sigstore)?;

    Ok(Verified {
        identity: signer.identity.clone(),
        issuer: signer.issuer.clone(),
        artifact: artifact.to_string(),
        log: log.base_url.clone(),
        checkpoint_origin: evidence.origin,
        log_index: evidence.log_index,
        tree_size: evidence.tree_size,
        integrated_time: rfc3339(evidence.integrated_time),
    })
}

/// The SHA-256 and SHA-512 of the file at `path`: what [`verify`] matches a bundle against.
pub fn file_digests(path: &Path) -> Result<Vec<Digest>, KeylessError> {
    let (sha256, sha512) = super::digest::file_digests(path).map_err(|e| match e {
        super::SigningError::Read { path, source } => KeylessError::Read { path, source },
        other => KeylessError::Read {
            path: path.to_owned(),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    Ok(vec![sha256, sha512])
}

/// The first of `digests` that is a subject of the in-toto statement in `payload`.
fn statement_subject(
    payload: &[u8],
    payload_type: &str,
    digests: &[Digest],
) -> Result<Digest, KeylessError> {
    #[derive(Deserialize)]
    struct Statement {
        subject: Vec<Subject>,
    }
    #[derive(Deserialize)]
    struct Subject {
        digest: std::collections::BTreeMap<String, String>,
    }
    let malformed = |reason: String| KeylessError::Bundle { reason };
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(malformed(format!(
            "its DSSE payload type is `{payload_type}`, not `{IN_TOTO_PAYLOAD_TYPE}`"
        )));
    }
    let statement: Statement = serde_json::from_slice(payload)
        .map_err(|e| malformed(format!("its DSSE payload is not an in-toto statement: {e}")))?;
    if statement.subject.len() > MAX_SUBJECTS {
        return Err(malformed(format!(
            "its statement has {} subjects, more than {MAX_SUBJECTS}",
            statement.subject.len()
        )));
    }
    let subjects: Vec<Digest> = statement
        .subject
        .iter()
        .flat_map(|s| s.digest.iter())
        .filter_map(|(alg, value)| Digest::from_hex(alg, value))
        .collect();
    digests
        .iter()
        .find(|d| subjects.contains(d))
        .copied()
        .ok_or_else(|| KeylessError::ArtifactMismatch {
            reason: format!(
                "its statement's subjects are {}, this artifact is {}",
                list(&subjects),
                list(digests)
            ),
        })
}

fn message_digest(bundle: &sigstore::bundle::Bundle) -> Option<Digest> {
    let Some(bundle::Content::MessageSignature(m)) = &bundle.content else {
        return None;
    };
    let d = m.message_digest.as_ref()?;
    d.digest.clone().try_into().ok().map(Digest::Sha256)
}

fn list(digests: &[Digest]) -> String {
    if digests.is_empty() {
        return "(none)".to_owned();
    }
    digests
        .iter()
        .map(Digest::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Runs a future that needs no I/O to completion by polling it once. The sigstore verifier is
/// `async` but, offline, never waits; this avoids starting (or nesting) a Tokio runtime.
fn poll_offline<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// The sigstore crate's verdict, with its causes on one line.
fn from_sigstore(e: VerificationError) -> KeylessError {
    let reason = chain(&e);
    match e {
        VerificationError::Policy(_) => KeylessError::Identity { reason },
        VerificationError::Certificate(_) => KeylessError::Certificate { reason },
        VerificationError::Bundle(_) | VerificationError::Input(_) => {
            KeylessError::Bundle { reason }
        }
        VerificationError::Signature(_) => KeylessError::Signature { reason },
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}
