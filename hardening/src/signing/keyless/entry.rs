//! The transparency-log evidence of one bundle entry, checked here because the sigstore crate
//! leaves it unchecked: the Merkle inclusion proof up to the checkpoint's root, the checkpoint
//! signature, the signed entry timestamp, and that the logged body is this bundle's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sigstore_protobuf_specs::dev::sigstore::rekor::v1::TransparencyLogEntry;

use super::super::digest::{Digest, hex, sha256, unhex};
use super::super::pem;
use super::checkpoint::Checkpoint;
use super::error::TransparencyError;
use super::merkle::{self, Hash};
use super::trust::LogKey;

/// What the log evidence proves, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvidence {
    /// The checkpoint's origin line.
    pub origin: String,
    /// The size of the tree the entry was proven in.
    pub tree_size: u64,
    /// The entry's index in that tree.
    pub tree_index: u64,
    /// The entry's global log index.
    pub log_index: i64,
    /// When the log integrated the entry (Unix seconds), as the signed entry timestamp attests.
    pub integrated_time: i64,
}

/// Verifies the inclusion proof of `entry` (RFC 6962 leaf hash of its canonicalized body up to
/// the proof's root), that the checkpoint is for that tree size and root, that the log `key`
/// signed the checkpoint, and that it signed the entry timestamp.
pub fn verify_log_evidence(
    entry: &TransparencyLogEntry,
    key: &LogKey,
) -> Result<LogEvidence, TransparencyError> {
    // (a) The entry is in the tree the proof describes.
    let proof = entry
        .inclusion_proof
        .as_ref()
        .ok_or(TransparencyError::NoInclusionProof)?;
    let malformed = |why: &str| TransparencyError::ProofMalformed(why.to_owned());
    let tree_index = u64::try_from(proof.log_index).map_err(|_| malformed("negative log index"))?;
    let tree_size = u64::try_from(proof.tree_size).map_err(|_| malformed("negative tree size"))?;
    let claimed: Hash = proof
        .root_hash
        .clone()
        .try_into()
        .map_err(|_| malformed("the root hash is not 32 bytes"))?;
    let hashes = proof
        .hashes
        .iter()
        .map(|h| Hash::try_from(h.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| malformed("a proof hash is not 32 bytes"))?;
    let leaf = merkle::leaf_hash(&entry.canonicalized_body);
    let computed = merkle::root_from_inclusion_proof(tree_index, tree_size, &leaf, &hashes)
        .map_err(TransparencyError::ProofMalformed)?;
    if computed != claimed {
        return Err(TransparencyError::RootMismatch {
            computed: STANDARD.encode(computed),
            claimed: STANDARD.encode(claimed),
        });
    }

    // (b) The checkpoint is for that tree.
    let envelope = proof
        .checkpoint
        .as_ref()
        .map(|c| c.envelope.as_str())
        .ok_or(TransparencyError::NoCheckpoint)?;
    let checkpoint = Checkpoint::parse(envelope)?;
    if checkpoint.tree_size != tree_size {
        return Err(TransparencyError::TreeSizeMismatch {
            checkpoint: checkpoint.tree_size,
            proof: tree_size,
        });
    }
    if checkpoint.root_hash != claimed {
        return Err(TransparencyError::RootHashMismatch {
            checkpoint: STANDARD.encode(checkpoint.root_hash),
            proof: STANDARD.encode(claimed),
        });
    }

    // (c) The log signed the checkpoint.
    checkpoint.verify(key)?;

    // The log signed the entry's integration time and index (the signed entry timestamp).
    let set = entry
        .inclusion_promise
        .as_ref()
        .map(|p| p.signed_entry_timestamp.as_slice())
        .filter(|s| !s.is_empty())
        .ok_or(TransparencyError::NoSignedEntryTimestamp)?;
    if !key.verify(&set_payload(entry, &key.log_id), set) {
        return Err(TransparencyError::SignedEntryTimestamp);
    }

    Ok(LogEvidence {
        origin: checkpoint.origin,
        tree_size,
        tree_index,
        log_index: entry.log_index,
        integrated_time: entry.integrated_time,
    })
}

/// What Rekor signs as the signed entry timestamp: the canonical JSON (RFC 8785: sorted keys, no
/// spaces) of the entry's body, integration time, log id and log index.
fn set_payload(entry: &TransparencyLogEntry, log_id: &[u8]) -> Vec<u8> {
    format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        STANDARD.encode(&entry.canonicalized_body),
        entry.integrated_time,
        hex(log_id),
        entry.log_index
    )
    .into_bytes()
}

/// The bundle content a log entry must describe.
#[derive(Clone, Copy, Debug)]
pub enum Content<'a> {
    /// A DSSE envelope with one signature.
    Dsse {
        /// The envelope's payload.
        payload: &'a [u8],
        /// The envelope's payload type.
        payload_type: &'a str,
        /// The signature's key id (usually empty).
        keyid: &'a str,
    },
    /// A signature over the artifact's digest.
    MessageSignature,
}

/// Checks that the logged `body` describes this bundle: the same signature, made by the same
/// certificate, over the same content. For a `hashedrekord` entry, returns the artifact digest
/// it names (which the caller matches against the artifact).
pub fn check_body(
    body: &[u8],
    content: Content<'_>,
    signature: &[u8],
    certificate_der: &[u8],
) -> Result<Option<Digest>, TransparencyError> {
    let malformed = |e: serde_json::Error| TransparencyError::BodyMalformed(e.to_string());
    let head: BodyHead = serde_json::from_slice(body).map_err(malformed)?;
    let mismatch = |why: String| Err(TransparencyError::BodyMismatch(why));
    match (head.kind.as_str(), head.api_version.as_str(), content) {
        (
            "dsse",
            "0.0.1",
            Content::Dsse {
                payload,
                payload_type,
                keyid,
            },
        ) => {
            let body: DsseBody = serde_json::from_slice(body).map_err(malformed)?;
            let spec = body.spec;
            if !hash_matches(&spec.payload_hash, &sha256(payload)) {
                return mismatch(
                    "its payload hash is not the SHA-256 of the envelope's payload".to_owned(),
                );
            }
            let envelope = canonical_envelope(payload, payload_type, keyid, signature);
            if !hash_matches(&spec.envelope_hash, &sha256(envelope.as_bytes())) {
                return mismatch("its envelope hash is not the SHA-256 of the envelope".to_owned());
            }
            let [logged] = spec.signatures.as_slice() else {
                return mismatch(format!(
                    "it lists {} signatures, the envelope has one",
                    spec.signatures.len()
                ));
            };
            check_signature_and_certificate(
                &logged.signature,
                &logged.verifier,
                signature,
                certificate_der,
            )?;
            Ok(None)
        }
        ("hashedrekord", "0.0.1", Content::MessageSignature) => {
            let body: HashedRekordBody = serde_json::from_slice(body).map_err(malformed)?;
            let spec = body.spec;
            check_signature_and_certificate(
                &spec.signature.content,
                &spec.signature.public_key.content,
                signature,
                certificate_der,
            )?;
            let hash = &spec.data.hash;
            let digest = Digest::from_hex(&hash.algorithm, &hash.value)
                .filter(|d| matches!(d, Digest::Sha256(_)))
                .ok_or_else(|| {
                    TransparencyError::BodyMalformed(format!(
                        "the artifact hash `{}:{}` is not a SHA-256",
                        hash.algorithm, hash.value
                    ))
                })?;
            Ok(Some(digest))
        }
        ("dsse" | "hashedrekord", "0.0.1", _) => mismatch(format!(
            "it is a `{}` entry, the bundle holds {}",
            head.kind,
            match content {
                Content::Dsse { .. } => "a DSSE envelope",
                Content::MessageSignature => "a message signature",
            }
        )),
        _ => Err(TransparencyError::UnsupportedKind {
            kind: head.kind,
            version: head.api_version,
        }),
    }
}

fn check_signature_and_certificate(
    logged_signature_b64: &str,
    logged_certificate_b64: &str,
    signature: &[u8],
    certificate_der: &[u8],
) -> Result<(), TransparencyError> {
    let logged = STANDARD
        .decode(logged_signature_b64)
        .map_err(|_| TransparencyError::BodyMalformed("the signature is not base64".to_owned()))?;
    if logged != signature {
        return Err(TransparencyError::BodyMismatch(
            "its signature is not the bundle's signature".to_owned(),
        ));
    }
    let pem_bytes = STANDARD
        .decode(logged_certificate_b64)
        .map_err(|_| TransparencyError::BodyMalformed("the verifier is not base64".to_owned()))?;
    let pem_text = String::from_utf8(pem_bytes)
        .map_err(|_| TransparencyError::BodyMalformed("the verifier is not PEM".to_owned()))?;
    let (label, der) = pem::decode(&pem_text).map_err(TransparencyError::BodyMalformed)?;
    if label != "CERTIFICATE" || der != certificate_der {
        return Err(TransparencyError::BodyMismatch(
            "its certificate is not the bundle's signing certificate".to_owned(),
        ));
    }
    Ok(())
}

fn hash_matches(logged: &LoggedHash, expected: &[u8; 32]) -> bool {
    logged.algorithm == "sha256" && unhex(&logged.value).as_deref() == Some(expected.as_slice())
}

/// The envelope as Rekor hashes it: canonical JSON, the `keyid` left out when empty.
fn canonical_envelope(payload: &[u8], payload_type: &str, keyid: &str, sig: &[u8]) -> String {
    let json_string = |s: &str| serde_json::Value::from(s).to_string();
    let signature = if keyid.is_empty() {
        format!(r#"{{"sig":"{}"}}"#, STANDARD.encode(sig))
    } else {
        format!(
            r#"{{"keyid":{},"sig":"{}"}}"#,
            json_string(keyid),
            STANDARD.encode(sig)
        )
    };
    format!(
        r#"{{"payload":"{}","payloadType":{},"signatures":[{signature}]}}"#,
        STANDARD.encode(payload),
        json_string(payload_type)
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BodyHead {
    kind: String,
    api_version: String,
}

#[derive(Deserialize)]
struct DsseBody {
    spec: DsseSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseSpec {
    envelope_hash: LoggedHash,
    payload_hash: LoggedHash,
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    signature: String,
    verifier: String,
}

#[derive(Deserialize)]
struct LoggedHash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct HashedRekordBody {
    spec: HashedRekordSpec,
}

#[derive(Deserialize)]
struct HashedRekordSpec {
    data: HashedRekordData,
    signature: HashedRekordSignature,
}

#[derive(Deserialize)]
struct HashedRekordData {
    hash: LoggedHash,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordSignature {
    content: String,
    public_key: HashedRekordKey,
}

#[derive(Deserialize)]
struct HashedRekordKey {
    content: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_b64(der: &[u8]) -> String {
        STANDARD.encode(pem::encode("CERTIFICATE", der))
    }

    fn hashedrekord(hash: &str, sig: &[u8], cert: &[u8]) -> Vec<u8> {
        serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hash}},
                "signature": {"content": STANDARD.encode(sig), "publicKey": {"content": pem_b64(cert)}}
            }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn hashedrekord_body_must_name_the_bundles_signature_and_certificate() {
        let hash = "ab".repeat(32);
        let body = hashedrekord(&hash, b"sig", b"cert");
        let got = check_body(&body, Content::MessageSignature, b"sig", b"cert").unwrap();
        assert_eq!(got, Some(Digest::Sha256([0xab; 32])));
        assert_eq!(
            check_body(&body, Content::MessageSignature, b"other", b"cert"),
            Err(TransparencyError::BodyMismatch(
                "its signature is not the bundle's signature".to_owned()
            ))
        );
        assert_eq!(
            check_body(&body, Content::MessageSignature, b"sig", b"other"),
            Err(TransparencyError::BodyMismatch(
                "its certificate is not the bundle's signing certificate".to_owned()
            ))
        );
        let dsse = Content::Dsse {
            payload: b"{}",
            payload_type: "application/vnd.in-toto+json",
            keyid: "",
        };
        assert!(matches!(
            check_body(&body, dsse, b"sig", b"cert"),
            Err(TransparencyError::BodyMismatch(_))
        ));
        let other = br#"{"apiVersion":"0.0.2","kind":"hashedrekord","spec":{}}"#;
        assert!(matches!(
            check_body(other, Content::MessageSignature, b"sig", b"cert"),
            Err(TransparencyError::UnsupportedKind { .. })
        ));
    }

    #[test]
    fn canonical_envelope_leaves_out_an_empty_keyid() {
        assert_eq!(
            canonical_envelope(b"{}", "t", "", b"s"),
            r#"{"payload":"e30=","payloadType":"t","signatures":[{"sig":"cw=="}]}"#
        );
        assert_eq!(
            canonical_envelope(b"{}", "t", "k\"", b"s"),
            r#"{"payload":"e30=","payloadType":"t","signatures":[{"keyid":"k\"","sig":"cw=="}]}"#
        );
    }
}
