//! The trusted root (`trusted_root.json`): the Fulcio CAs, CT log keys and transparency-log
//! keys that keyless verification trusts, each with the period it is valid for.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use sigstore::crypto::{CosignVerificationKey, Signature};
use sigstore::trust::ManualTrustRoot;
use sigstore_protobuf_specs::dev::sigstore::common::v1::TimeRange;
use sigstore_protobuf_specs::dev::sigstore::trustroot::v1::TrustedRoot as ProtoTrustedRoot;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::super::digest::sha256;
use super::error::KeylessError;

/// The note signature type of Ed25519 keys (c2sp.org/signed-note).
const NOTE_ED25519: u8 = 0x01;

/// A parsed `trusted_root.json`.
#[derive(Debug)]
pub struct TrustedRoot {
    proto: ProtoTrustedRoot,
    logs: Vec<LogKey>,
}

impl TrustedRoot {
    /// Reads a `trusted_root.json` file.
    pub fn load(path: &Path) -> Result<Self, KeylessError> {
        let bytes = std::fs::read(path).map_err(|source| KeylessError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    /// Parses the JSON of a trusted root (media type
    /// `application/vnd.dev.sigstore.trustedroot+json;version=0.1` or later).
    pub fn from_json(json: &[u8]) -> Result<Self, KeylessError> {
        let err = |reason: String| KeylessError::TrustedRoot { reason };
        let proto: ProtoTrustedRoot =
            serde_json::from_slice(json).map_err(|e| err(format!("{e}")))?;
        let logs = proto
            .tlogs
            .iter()
            .map(|t| {
                let key = t
                    .public_key
                    .as_ref()
                    .and_then(|k| k.raw_bytes.as_deref())
                    .ok_or_else(|| err(format!("the log `{}` has no public key", t.base_url)))?;
                let log_id = t
                    .log_id
                    .as_ref()
                    .map(|l| l.key_id.clone())
                    .ok_or_else(|| err(format!("the log `{}` has no log id", t.base_url)))?;
                let valid_for = t.public_key.as_ref().and_then(|k| k.valid_for.as_ref());
                LogKey::new(&t.base_url, log_id, key, valid_for).map_err(err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if logs.is_empty() {
            return Err(err("it lists no transparency log".to_owned()));
        }
        Ok(Self { proto, logs })
    }

    /// The transparency log whose log id is `log_id`.
    pub(crate) fn log(&self, log_id: &[u8]) -> Option<&LogKey> {
        self.logs.iter().find(|l| l.log_id == log_id)
    }

    /// What the sigstore crate's verifier trusts for a certificate issued at `issued_at` (Unix
    /// seconds): the Fulcio CA chains and the CT log keys valid at that time. The crate itself
    /// ignores validity periods.
    pub(crate) fn sigstore_root(&self, issued_at: i64) -> ManualTrustRoot<'static> {
        let fulcio_certs = self
            .proto
            .certificate_authorities
            .iter()
            .filter(|ca| in_range(ca.valid_for.as_ref(), issued_at))
            .filter_map(|ca| ca.cert_chain.as_ref())
            .flat_map(|chain| chain.certificates.iter())
            .map(|c| CertificateDer::from(c.raw_bytes.clone()))
            .collect();
        let ctfe_keys = self
            .proto
            .ctlogs
            .iter()
            .filter_map(|ct| {
                let key = ct.public_key.as_ref()?;
                if !in_range(key.valid_for.as_ref(), issued_at) {
                    return None;
                }
                let id = ct.log_id.as_ref().map(|l| STANDARD.encode(&l.key_id))?;
                Some((id, key.raw_bytes.clone()?))
            })
            .collect::<BTreeMap<_, _>>();
        ManualTrustRoot {
            fulcio_certs,
            rekor_keys: BTreeMap::new(),
            ctfe_keys,
        }
    }
}

/// Whether `t` (Unix seconds) is within `range` (open ends are unbounded; no range is always).
fn in_range(range: Option<&TimeRange>, t: i64) -> bool {
    let Some(r) = range else { return true };
    r.start.as_ref().is_none_or(|s| s.seconds <= t) && r.end.as_ref().is_none_or(|e| t <= e.seconds)
}

/// The kinds of transparency-log key supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKeyKind {
    /// ECDSA P-256 with SHA-256 (Rekor v1, `rekor.sigstore.dev`).
    EcdsaP256,
    /// Ed25519 (Rekor v2 logs).
    Ed25519,
}

/// A transparency log's public key, from the trusted root.
#[derive(Debug)]
pub struct LogKey {
    /// The log's base URL.
    pub base_url: String,
    /// The log id (for Rekor v1, SHA-256 of the key's DER SubjectPublicKeyInfo).
    pub log_id: Vec<u8>,
    /// The key type.
    pub kind: LogKeyKind,
    spki: Vec<u8>,
    /// The raw 32-byte key for Ed25519 (it goes into the note key id); empty for ECDSA.
    raw: Vec<u8>,
    valid_for: Option<TimeRange>,
    key: CosignVerificationKey,
}

impl LogKey {
    fn new(
        base_url: &str,
        log_id: Vec<u8>,
        spki: &[u8],
        valid_for: Option<&TimeRange>,
    ) -> Result<Self, String> {
        let bad = |why: String| format!("the key of the log `{base_url}` {why}");
        let key = CosignVerificationKey::try_from_der(spki)
            .map_err(|e| bad(format!("is not a DER SubjectPublicKeyInfo: {e}")))?;
        let (kind, raw) = match key {
            CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => (LogKeyKind::EcdsaP256, Vec::new()),
            CosignVerificationKey::ED25519(_) => {
                let (_, info) = SubjectPublicKeyInfo::from_der(spki)
                    .map_err(|e| bad(format!("does not parse: {e}")))?;
                let raw = info.subject_public_key.data.to_vec();
                if raw.len() != 32 {
                    return Err(bad("is not a 32-byte Ed25519 key".to_owned()));
                }
                (LogKeyKind::Ed25519, raw)
            }
            _ => {
                return Err(bad(
                    "is neither ECDSA P-256 nor Ed25519 (the kinds Rekor uses)".to_owned(),
                ));
            }
        };
        Ok(Self {
            base_url: base_url.to_owned(),
            log_id,
            kind,
            spki: spki.to_vec(),
            raw,
            valid_for: valid_for.cloned(),
            key,
        })
    }

    /// Whether the key was in force at `t` (Unix seconds).
    pub fn valid_at(&self, t: i64) -> bool {
        in_range(self.valid_for.as_ref(), t)
    }

    /// The 4-byte key id that a checkpoint signature line by this key, under key name `name`,
    /// starts with (c2sp.org/signed-note): for ECDSA the first bytes of SHA-256 of the DER
    /// SubjectPublicKeyInfo, for Ed25519 of SHA-256(name || `\n` || 0x01 || key).
    pub fn note_key_id(&self, name: &str) -> [u8; 4] {
        let hash = match self.kind {
            LogKeyKind::EcdsaP256 => sha256(&self.spki),
            LogKeyKind::Ed25519 => {
                let mut data = Vec::with_capacity(name.len() + 2 + self.raw.len());
                data.extend_from_slice(name.as_bytes());
                data.push(b'\n');
                data.push(NOTE_ED25519);
                data.extend_from_slice(&self.raw);
                sha256(&data)
            }
        };
        let [a, b, c, d, ..] = hash;
        [a, b, c, d]
    }

    /// Whether `signature` is this key's signature of `message` (ECDSA: DER over SHA-256).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key
            .verify_signature(Signature::Raw(signature), message)
            .is_ok()
    }
}
