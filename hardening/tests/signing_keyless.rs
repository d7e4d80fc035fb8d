//! Keyless bundles against real, publicly logged sigstore bundles: the genuine ones verify, and
//! every tampered copy (made here, at run time) is refused for its own specific reason.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_hardening::signing::Digest;
use gatehouse_hardening::signing::keyless::{
    self, Bundle, KeylessError, Signer, TransparencyError, TrustedRoot,
};
use serde_json::Value;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const KUBEWARDEN: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const NPM: &str =
    "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
const NPM_DIGEST: &str = "sha512:849a897e81bf7b8a8541a6ae40bd3473a27a16b1cb0462ad905bd6dc96d34881053a12eb4a375233f81677fc9439f628fe0b0445e8535c60b5559597fbd5f80e";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sigstore")
        .join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap()
}

fn root() -> TrustedRoot {
    TrustedRoot::load(&fixture("sigstore_trusted_root.json")).unwrap()
}

fn kubewarden() -> Signer {
    Signer {
        identity: KUBEWARDEN.to_owned(),
        issuer: ISSUER.to_owned(),
    }
}

fn digest(s: &str) -> Digest {
    s.parse().unwrap()
}

/// Verifies a (possibly tampered) copy of `bundle_v03.json` for its genuine artifact digest.
fn verify_kubewarden(bundle: &Value) -> Result<keyless::Verified, KeylessError> {
    let bundle = Bundle::from_json(bundle.to_string().as_bytes())?;
    keyless::verify(
        &bundle,
        &root(),
        &kubewarden(),
        &[digest(KUBEWARDEN_DIGEST)],
    )
}

fn transparency(r: Result<keyless::Verified, KeylessError>) -> TransparencyError {
    match r {
        Err(KeylessError::Transparency(e)) => e,
        other => panic!("expected a transparency-log error, got {other:?}"),
    }
}

fn entry(bundle: &mut Value) -> &mut Value {
    &mut bundle["verificationMaterial"]["tlogEntries"][0]
}

fn checkpoint(bundle: &mut Value) -> &mut Value {
    &mut entry(bundle)["inclusionProof"]["checkpoint"]["envelope"]
}

fn replace_checkpoint(bundle: &mut Value, from: &str, to: &str) {
    let cp = checkpoint(bundle).as_str().unwrap().to_owned();
    assert!(cp.contains(from), "{cp:?} has no {from:?}");
    *checkpoint(bundle) = Value::from(cp.replacen(from, to, 1));
}

/// Flips one bit of the base64 field `v`.
fn flip(v: &mut Value, byte: usize) {
    let mut raw = STANDARD.decode(v.as_str().unwrap()).unwrap();
    raw[byte] ^= 0x01;
    *v = Value::from(STANDARD.encode(raw));
}

#[test]
fn genuine_bundles_verify() {
    let v = verify_kubewarden(&json("bundle_v03.json")).unwrap();
    assert_eq!(v.identity, KUBEWARDEN);
    assert_eq!(v.artifact, KUBEWARDEN_DIGEST);
    assert_eq!(v.log, "https://rekor.sigstore.dev");
    assert_eq!(
        v.checkpoint_origin,
        "rekor.sigstore.dev - 1193050959916656506"
    );
    assert_eq!(v.log_index, 1261105807);
    assert_eq!(v.tree_size, 1139201557);
    assert_eq!(v.integrated_time, "2026-04-09T07:23:29Z");

    // npm provenance: the artifact (sigstore-5.0.0.tgz) is not shipped, so by its SHA-512.
    let npm = Bundle::load(&fixture("npm_slsa_bundle_v03.json")).unwrap();
    let signer = Signer {
        identity: NPM.to_owned(),
        issuer: ISSUER.to_owned(),
    };
    let v = keyless::verify(&npm, &root(), &signer, &[digest(NPM_DIGEST)]).unwrap();
    assert_eq!(v.artifact, NPM_DIGEST);
    assert_eq!(v.log_index, 1697019812);
}

#[test]
fn a_changed_inclusion_proof_hash_is_refused() {
    for i in [0, 7, 17] {
        let mut b = json("bundle_v03.json");
        flip(&mut entry(&mut b)["inclusionProof"]["hashes"][i], 3);
        let e = transparency(verify_kubewarden(&b));
        assert!(matches!(e, TransparencyError::RootMismatch { .. }), "{e}");
        assert!(
            e.to_string().starts_with(
                "the inclusion proof does not lead from the log entry to its root hash: computed `"
            ),
            "{e}"
        );
    }
    // A hash dropped: the proof no longer fits the index and tree size.
    let mut b = json("bundle_v03.json");
    entry(&mut b)["inclusionProof"]["hashes"]
        .as_array_mut()
        .unwrap()
        .pop();
    let e = transparency(verify_kubewarden(&b));
    assert!(matches!(e, TransparencyError::ProofMalformed(_)), "{e}");
    // Another leaf index for the same entry.
    let mut b = json("bundle_v03.json");
    entry(&mut b)["inclusionProof"]["logIndex"] = Value::from("1139201546");
    let e = transparency(verify_kubewarden(&b));
    assert!(matches!(e, TransparencyError::RootMismatch { .. }), "{e}");
}

#[test]
fn a_changed_log_entry_body_is_refused() {
    let mut b = json("bundle_v03.json");
    let body_field = &mut entry(&mut b)["canonicalizedBody"];
    let body = STANDARD.decode(body_field.as_str().unwrap()).unwrap();
    let body = String::from_utf8(body)
        .unwrap()
        .replace("d46849f99a73583c", "d46849f99a73583d");
    *body_field = Value::from(STANDARD.encode(body));
    // The leaf hash changes, so the inclusion proof no longer leads to the root.
    let e = transparency(verify_kubewarden(&b));
    assert!(matches!(e, TransparencyError::RootMismatch { .. }), "{e}");
}

#[test]
fn a_changed_checkpoint_is_refused() {
    // The signed text (its origin line) changed: the signature no longer verifies.
    let mut b = json("bundle_v03.json");
    replace_checkpoint(&mut b, "1193050959916656506", "1193050959916656507");
    assert_eq!(
        transparency(verify_kubewarden(&b)),
        TransparencyError::CheckpointSignature {
            name: "rekor.sigstore.dev".to_owned()
        }
    );
    assert_eq!(
        transparency(verify_kubewarden(&b)).to_string(),
        "the checkpoint signature by `rekor.sigstore.dev` does not verify with the log key"
    );

    // Another tree size than the proof's.
    let mut b = json("bundle_v03.json");
    replace_checkpoint(&mut b, "\n1139201557\n", "\n1139201558\n");
    assert_eq!(
        transparency(verify_kubewarden(&b)),
        TransparencyError::TreeSizeMismatch {
            checkpoint: 1139201558,
            proof: 1139201557
        }
    );

    // Another root hash than the proof's.
    let mut b = json("bundle_v03.json");
    replace_checkpoint(
        &mut b,
        "5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=",
        "5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXw=",
    );
    let e = transparency(verify_kubewarden(&b));
    assert!(
        matches!(e, TransparencyError::RootHashMismatch { .. }),
        "{e}"
    );

    // The signature bytes changed (after the 4-byte key id).
    let mut b = json("bundle_v03.json");
    replace_checkpoint(&mut b, "wNI9ajBFAiEA2ZtI6", "wNI9ajBFAiEA2ZtI7");
    assert_eq!(
        transparency(verify_kubewarden(&b)),
        TransparencyError::CheckpointSignature {
            name: "rekor.sigstore.dev".to_owned()
        }
    );

    // The key id changed: no signature by the log key is left.
    let mut b = json("bundle_v03.json");
    replace_checkpoint(&mut b, "wNI9ajBF", "wNI9azBF");
    let e = transparency(verify_kubewarden(&b));
    assert_eq!(
        e,
        TransparencyError::NoLogSignature {
            key_hint: "rekor.sigstore.dev c0d23d6a".to_owned()
        }
    );
    assert_eq!(
        e.to_string(),
        "the checkpoint carries no signature by the log key (key id `rekor.sigstore.dev c0d23d6a`)"
    );

    // The signature is attributed to another key name.
    let mut b = json("bundle_v03.json");
    replace_checkpoint(
        &mut b,
        "\u{2014} rekor.sigstore.dev ",
        "\u{2014} rekor.example ",
    );
    let e = transparency(verify_kubewarden(&b));
    assert!(matches!(e, TransparencyError::NoLogSignature { .. }), "{e}");

    // No checkpoint at all.
    let mut b = json("bundle_v03.json");
    entry(&mut b)["inclusionProof"]
        .as_object_mut()
        .unwrap()
        .remove("checkpoint");
    let e = transparency(verify_kubewarden(&b));
    assert_eq!(e, TransparencyError::NoCheckpoint);
}

#[test]
fn a_changed_signed_entry_timestamp_or_what_it_covers_is_refused() {
    // Integration time, global log index: covered by the signed entry timestamp only.
    for (field, value) in [("integratedTime", "1775719410"), ("logIndex", "1261105808")] {
        let mut b = json("bundle_v03.json");
        entry(&mut b)[field] = Value::from(value);
        assert_eq!(
            transparency(verify_kubewarden(&b)),
            TransparencyError::SignedEntryTimestamp,
            "{field}"
        );
    }
    let mut b = json("bundle_v03.json");
    flip(
        &mut entry(&mut b)["inclusionPromise"]["signedEntryTimestamp"],
        20,
    );
    assert_eq!(
        transparency(verify_kubewarden(&b)),
        TransparencyError::SignedEntryTimestamp
    );
    let mut b = json("bundle_v03.json");
    entry(&mut b)
        .as_object_mut()
        .unwrap()
        .remove("inclusionPromise");
    assert_eq!(
        transparency(verify_kubewarden(&b)),
        TransparencyError::NoSignedEntryTimestamp
    );
}

#[test]
fn a_log_entry_that_describes_another_envelope_is_refused() {
    // Another signature in the envelope than the one logged (the envelope hash covers it).
    let mut b = json("bundle_v03.json");
    flip(&mut b["dsseEnvelope"]["signatures"][0]["sig"], 10);
    assert_eq!(
        transparency(verify_kubewarden(&b)),
        TransparencyError::BodyMismatch(
            "its envelope hash is not the SHA-256 of the envelope".to_owned()
        )
    );

    // Another payload (statement) than the one logged.
    let mut b = json("bundle_v03.json");
    let payload = STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let payload = String::from_utf8(payload)
        .unwrap()
        .replace("c811d58de79c92f0", "0000000000000000");
    b["dsseEnvelope"]["payload"] = Value::from(STANDARD.encode(payload));
    assert_eq!(
        transparency(verify_kubewarden(&b)),
        TransparencyError::BodyMismatch(
            "its payload hash is not the SHA-256 of the envelope's payload".to_owned()
        )
    );
}

#[test]
fn another_artifact_is_refused() {
    // Changed artifact bytes: the file's digests are not the statement's subject.
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("artifact");
    std::fs::write(&artifact, b"not the signed artifact").unwrap();
    let digests = keyless::file_digests(&artifact).unwrap();
    let bundle = Bundle::load(&fixture("bundle_v03.json")).unwrap();
    let e = keyless::verify(&bundle, &root(), &kubewarden(), &digests).unwrap_err();
    assert!(matches!(e, KeylessError::ArtifactMismatch { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "the bundle does not sign this artifact: its statement's subjects are {KUBEWARDEN_DIGEST}, this artifact is sha256:"
        )),
        "{e}"
    );
    // A SHA-256 never matches the npm bundle's SHA-512 subject.
    let npm = Bundle::load(&fixture("npm_slsa_bundle_v03.json")).unwrap();
    let signer = Signer {
        identity: NPM.to_owned(),
        issuer: ISSUER.to_owned(),
    };
    let sha256_of_npm = digest(&format!("sha256:{}", &NPM_DIGEST[7..71]));
    let e = keyless::verify(&npm, &root(), &signer, &[sha256_of_npm]).unwrap_err();
    assert!(matches!(e, KeylessError::ArtifactMismatch { .. }), "{e}");
}

#[test]
fn another_signer_is_refused() {
    let bundle = Bundle::load(&fixture("bundle_v03.json")).unwrap();
    for signer in [
        Signer {
            identity: "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.35.0".to_owned(),
            issuer: ISSUER.to_owned(),
        },
        Signer {
            identity: KUBEWARDEN.to_owned(),
            issuer: "https://accounts.google.com".to_owned(),
        },
    ] {
        let e = keyless::verify(&bundle, &root(), &signer, &[digest(KUBEWARDEN_DIGEST)])
            .unwrap_err();
        assert!(matches!(e, KeylessError::Identity { .. }), "{e}");
    }
}

#[test]
fn the_trusted_root_decides_which_log_ca_and_times_are_trusted() {
    let bundle = Bundle::load(&fixture("bundle_v03.json")).unwrap();
    let with_root = |root: Value| {
        let root = TrustedRoot::from_json(root.to_string().as_bytes()).unwrap();
        keyless::verify(&bundle, &root, &kubewarden(), &[digest(KUBEWARDEN_DIGEST)])
    };

    // Without rekor.sigstore.dev, the entry's log is unknown.
    let mut r = json("sigstore_trusted_root.json");
    r["tlogs"].as_array_mut().unwrap().remove(0);
    let e = with_root(r).unwrap_err();
    assert!(matches!(e, KeylessError::UnknownLog { .. }), "{e}");

    // The log id kept but another key: its checkpoint signature is not the log key's.
    let mut r = json("sigstore_trusted_root.json");
    r["tlogs"][0]["publicKey"]["rawBytes"] = r["ctlogs"][1]["publicKey"]["rawBytes"].clone();
    let e = with_root(r).unwrap_err();
    assert!(
        matches!(
            e,
            KeylessError::Transparency(TransparencyError::NoLogSignature { .. })
        ),
        "{e}"
    );

    // The log key had expired when the entry was logged.
    let mut r = json("sigstore_trusted_root.json");
    r["tlogs"][0]["publicKey"]["validFor"]["end"] = Value::from("2025-01-01T00:00:00Z");
    let e = with_root(r).unwrap_err();
    assert!(matches!(e, KeylessError::LogKeyNotValid { .. }), "{e}");

    // Without the Fulcio CA that issued the certificate.
    let mut r = json("sigstore_trusted_root.json");
    r["certificateAuthorities"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    let e = with_root(r).unwrap_err();
    assert!(matches!(e, KeylessError::Certificate { .. }), "{e}");

    // The CA listed, but only valid before the certificate was issued.
    let mut r = json("sigstore_trusted_root.json");
    r["certificateAuthorities"][1]["validFor"]["end"] = Value::from("2025-01-01T00:00:00Z");
    let e = with_root(r).unwrap_err();
    assert!(matches!(e, KeylessError::Certificate { .. }), "{e}");

    // Without the CT log that signed the certificate's SCT.
    let mut r = json("sigstore_trusted_root.json");
    r["ctlogs"].as_array_mut().unwrap().remove(1);
    let e = with_root(r).unwrap_err();
    assert!(matches!(e, KeylessError::Certificate { .. }), "{e}");
}

/// Why our checks exist: the sigstore crate alone accepts a bundle whose inclusion proof and
/// checkpoint were forged.
#[test]
fn the_sigstore_crate_alone_accepts_a_forged_inclusion_proof() {
    use sigstore::bundle::verify::blocking::Verifier;
    use sigstore::bundle::verify::{ArtifactDigest, policy::Identity};
    use sigstore::trust::ManualTrustRoot;

    let mut b = json("bundle_v03.json");
    flip(&mut entry(&mut b)["inclusionProof"]["hashes"][0], 0);
    replace_checkpoint(&mut b, "wNI9ajBFAiEA2ZtI6", "wNI9ajBFAiEA2ZtI7");
    let forged: sigstore::bundle::Bundle = serde_json::from_value(b.clone()).unwrap();

    let r = json("sigstore_trusted_root.json");
    let certs = r["certificateAuthorities"][1]["certChain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            rustls_pki_types::CertificateDer::from(
                STANDARD.decode(c["rawBytes"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let ctfe = STANDARD
        .decode(r["ctlogs"][1]["publicKey"]["rawBytes"].as_str().unwrap())
        .unwrap();
    let trust = ManualTrustRoot {
        fulcio_certs: certs,
        rekor_keys: Default::default(),
        ctfe_keys: [("ctfe".to_owned(), ctfe)].into(),
    };
    let verifier = Verifier::new(Default::default(), trust).unwrap();
    let Digest::Sha256(d) = digest(KUBEWARDEN_DIGEST) else {
        unreachable!()
    };
    verifier
        .verify_digest_with(
            ArtifactDigest::from(d),
            forged,
            &Identity::new(KUBEWARDEN, ISSUER),
            true,
        )
        .expect("sigstore-rs 0.15 does not check inclusion proofs or checkpoints");

    // Ours refuses it.
    let e = transparency(verify_kubewarden(&b));
    assert!(matches!(e, TransparencyError::RootMismatch { .. }), "{e}");
}
