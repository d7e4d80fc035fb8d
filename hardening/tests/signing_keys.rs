//! Key pairs, encrypted private keys and detached signatures (the library half; the command
//! line and openssl as the independent judge are in the workspace's `tests/signing_cli.rs`).

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_hardening::signing::keys::{self, KeyPairFiles, SigningKey, VerifyingKey};
use gatehouse_hardening::signing::password::Password;
use gatehouse_hardening::signing::{SigningError, blob};

fn pair(dir: &Path, password: &str) -> KeyPairFiles {
    keys::generate_key_pair(&dir.join("cosign"), &Password::new(password)).unwrap()
}

#[test]
fn encrypted_key_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "correct horse");
    assert_eq!(files.private_key, dir.path().join("cosign.key"));
    assert_eq!(files.public_key, dir.path().join("cosign.pub"));

    let private = std::fs::read_to_string(&files.private_key).unwrap();
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert!(!private.contains("BEGIN PRIVATE KEY"));
    let public = std::fs::read_to_string(&files.public_key).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(
        std::fs::metadata(&files.private_key).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&files.public_key).unwrap().mode() & 0o777,
        0o644
    );
    // Written atomically: no temporary file is left beside them.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

    let key = SigningKey::load(&files.private_key, &Password::new("correct horse")).unwrap();
    assert_eq!(format!("{key:?}"), "SigningKey([redacted])");
    let public = VerifyingKey::load(&files.public_key).unwrap();
    let sig = key.sign(b"message").unwrap();
    assert!(public.verify(&sig, b"message"));
    assert!(!public.verify(&sig, b"messagE"));
    // The key read back is the key that was written.
    let derived = key.verifying_key().unwrap();
    assert!(derived.verify(&key.sign(b"x").unwrap(), b"x"));
    assert!(public.verify(&key.sign(b"x").unwrap(), b"x"));
}

#[test]
fn a_wrong_password_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "right");
    let err = SigningKey::load(&files.private_key, &Password::new("wrong")).unwrap_err();
    assert!(matches!(err, SigningError::WrongPassword { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot decrypt the private key in `{}`: wrong password",
            files.private_key.display()
        )
    );
    let err = SigningKey::load(&files.private_key, &Password::new("")).unwrap_err();
    assert!(matches!(err, SigningError::WrongPassword { .. }), "{err}");
}

#[test]
fn the_password_is_asked_for_only_after_the_key_file_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let err = SigningKey::load_with(&missing, || panic!("asked for a password")).unwrap_err();
    assert!(matches!(err, SigningError::Read { .. }), "{err}");
    let files = pair(dir.path(), "pw");
    let err = keys::generate_key_pair_with(&dir.path().join("cosign"), || {
        panic!("asked for a password")
    })
    .unwrap_err();
    assert!(matches!(err, SigningError::Exists { .. }), "{err}");
    // Existing files are left as they were.
    assert!(SigningKey::load(&files.private_key, &Password::new("pw")).is_ok());
}

#[test]
fn existing_key_files_are_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cosign.pub"), b"keep me").unwrap();
    let err =
        keys::generate_key_pair(&dir.path().join("cosign"), &Password::new("pw")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` already exists (remove it, or choose another output prefix)",
            dir.path().join("cosign.pub").display()
        )
    );
    assert_eq!(
        std::fs::read(dir.path().join("cosign.pub")).unwrap(),
        b"keep me"
    );
    assert!(!dir.path().join("cosign.key").exists());
}

/// Rewrites the sealed JSON inside an encrypted key file.
fn reseal(key_file: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut sealed: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(b64).unwrap()).unwrap();
    edit(&mut sealed);
    format!(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        STANDARD.encode(sealed.to_string())
    )
}

#[test]
fn malformed_key_files_are_refused_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "pw");
    let bad = dir.path().join("bad.key");
    let cases: Vec<(&str, String)> = vec![
        ("not PEM", "hello".to_owned()),
        (
            "the public key",
            std::fs::read_to_string(&files.public_key).unwrap(),
        ),
        (
            // The sigstore crate panics on this one (NaCl nonce of the wrong length).
            "23-byte nonce",
            reseal(&files.private_key, |s| {
                s["cipher"]["nonce"] = STANDARD.encode([0u8; 23]).into();
            }),
        ),
        (
            "unusual scrypt cost",
            reseal(&files.private_key, |s| {
                s["kdf"]["params"]["N"] = 1024.into()
            }),
        ),
        (
            "another cipher",
            reseal(&files.private_key, |s| s["cipher"]["name"] = "aes".into()),
        ),
    ];
    for (what, contents) in cases {
        std::fs::write(&bad, contents).unwrap();
        let err = SigningKey::load(&bad, &Password::new("pw")).unwrap_err();
        assert!(matches!(err, SigningError::Key { .. }), "{what}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("`{}` is not a usable key: ", bad.display())),
            "{what}: {err}"
        );
        assert!(!err.to_string().contains("PRIVATE KEY-----"), "{err}");
    }
}

#[test]
fn only_p256_public_keys_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let p384 = dir.path().join("p384.pub");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl ecparam -name secp384r1 -genkey -noout | openssl ec -pubout -out {}",
            p384.display()
        ))
        .output()
        .expect("the openssl CLI is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = VerifyingKey::load(&p384).unwrap_err();
    assert!(err.to_string().contains("not an ECDSA P-256 key"), "{err}");
}

#[test]
fn detached_signatures_verify_and_a_one_byte_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "pw");
    let key = SigningKey::load(&files.private_key, &Password::new("pw")).unwrap();
    let public = VerifyingKey::load(&files.public_key).unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, b"kind: Deployment\n").unwrap();
    std::fs::write(&b, b"kind: Service\n").unwrap();
    let sigs = blob::sign_files(&key, &[a.clone(), b.clone()]).unwrap();
    assert_eq!(
        sigs,
        vec![blob::signature_path(&a), blob::signature_path(&b)]
    );
    blob::verify_file(&public, &sigs[0], &a).unwrap();
    blob::verify_file(&public, &sigs[1], &b).unwrap();
    // One file's signature is not the other's.
    let err = blob::verify_file(&public, &sigs[1], &a).unwrap_err();
    assert!(matches!(err, SigningError::BadSignature { .. }), "{err}");

    std::fs::write(&a, b"kind: Deploymenu\n").unwrap();
    let err = blob::verify_file(&public, &sigs[0], &a).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the signature `{}` does not verify `{}` with the key `{}`",
            sigs[0].display(),
            a.display(),
            files.public_key.display()
        )
    );

    // Another key's signature.
    let other_dir = tempfile::tempdir().unwrap();
    let other = pair(other_dir.path(), "pw");
    let other_key = VerifyingKey::load(&other.public_key).unwrap();
    let err = blob::verify_file(&other_key, &sigs[1], &b).unwrap_err();
    assert!(matches!(err, SigningError::BadSignature { .. }), "{err}");

    // Not a signature at all.
    std::fs::write(&sigs[1], b"%%%").unwrap();
    let err = blob::verify_file(&public, &sigs[1], &b).unwrap_err();
    assert!(matches!(err, SigningError::SignatureFormat { .. }), "{err}");
}

#[test]
fn signing_several_files_writes_nothing_when_one_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let files = pair(dir.path(), "pw");
    let key = SigningKey::load(&files.private_key, &Password::new("pw")).unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"a").unwrap();
    let err = blob::sign_files(&key, &[a.clone(), dir.path().join("missing")]).unwrap_err();
    assert!(matches!(err, SigningError::Read { .. }), "{err}");
    assert!(!blob::signature_path(&a).exists());
}
