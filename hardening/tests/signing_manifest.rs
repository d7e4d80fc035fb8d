//! Signed directory manifests: exactly the findings for exactly the files that differ.

use std::path::Path;

use gatehouse_hardening::signing::keys::{self, SigningKey, VerifyingKey};
use gatehouse_hardening::signing::manifest::{self, Finding, FindingId};
use gatehouse_hardening::signing::password::Password;

struct Keys {
    _dir: tempfile::TempDir,
    signing: SigningKey,
    verifying: VerifyingKey,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let files = keys::generate_key_pair(&dir.path().join("k"), &Password::new("pw")).unwrap();
    Keys {
        signing: SigningKey::load(&files.private_key, &Password::new("pw")).unwrap(),
        verifying: VerifyingKey::load(&files.public_key).unwrap(),
        _dir: dir,
    }
}

/// A rendered-profile-like tree.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("crds")).unwrap();
    std::fs::create_dir_all(p.join("policies/tenants")).unwrap();
    for (name, body) in [
        ("deployment.yaml", "kind: Deployment\n"),
        ("crds/gateway.yaml", "kind: CustomResourceDefinition\n"),
        (
            "policies/base.cedar",
            "permit(principal, action, resource);\n",
        ),
        (
            "policies/tenants/a.cedar",
            "forbid(principal, action, resource);\n",
        ),
        (".hidden", "still covered\n"),
    ] {
        std::fs::write(p.join(name), body).unwrap();
    }
    dir
}

fn ids(findings: &[Finding]) -> Vec<(FindingId, &str)> {
    findings.iter().map(|f| (f.id, f.path.as_str())).collect()
}

#[test]
fn an_untouched_directory_verifies_and_the_manifest_is_sha256sum_format() {
    let k = keys();
    let dir = tree();
    let signed = manifest::sign_dir(dir.path(), &k.signing).unwrap();
    assert_eq!(signed.files, 5);
    let text = std::fs::read_to_string(dir.path().join("SHA256SUMS")).unwrap();
    let paths: Vec<&str> = text.lines().map(|l| &l[66..]).collect();
    assert_eq!(
        paths,
        [
            ".hidden",
            "crds/gateway.yaml",
            "deployment.yaml",
            "policies/base.cedar",
            "policies/tenants/a.cedar"
        ]
    );
    // `sha256sum -c` agrees with every line.
    let out = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .expect("sha256sum is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        manifest::verify_dir(dir.path(), &k.verifying).unwrap(),
        vec![]
    );
    // Signing again gives the same manifest.
    manifest::sign_dir(dir.path(), &k.signing).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("SHA256SUMS")).unwrap(),
        text
    );
}

#[test]
fn a_changed_a_removed_and_an_added_file_are_each_reported() {
    let k = keys();
    let dir = tree();
    manifest::sign_dir(dir.path(), &k.signing).unwrap();
    std::fs::write(
        dir.path().join("policies/base.cedar"),
        "forbid(principal, action, resource);\n",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("crds/gateway.yaml")).unwrap();
    std::fs::write(
        dir.path().join("policies/tenants/b.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();

    let findings = manifest::verify_dir(dir.path(), &k.verifying).unwrap();
    assert_eq!(
        ids(&findings),
        [
            (FindingId::FileChanged, "policies/base.cedar"),
            (FindingId::FileMissing, "crds/gateway.yaml"),
            (FindingId::FileNotListed, "policies/tenants/b.cedar"),
        ]
    );
    assert!(
        findings[0].message.starts_with("changed: its sha256 is "),
        "{}",
        findings[0]
    );
    assert_eq!(
        findings[1].to_string(),
        "SIG-003 crds/gateway.yaml: listed in the manifest but missing"
    );
    assert_eq!(
        findings[2].to_string(),
        "SIG-004 policies/tenants/b.cedar: present but not listed in the manifest"
    );
    let json = serde_json::to_value(&findings).unwrap();
    assert_eq!(json[0]["id"], "SIG-002");
    assert_eq!(json[2]["path"], "policies/tenants/b.cedar");
}

#[test]
fn a_tampered_manifest_or_signature_is_sig_001_and_nothing_else() {
    let k = keys();
    let dir = tree();
    let manifest_path = dir.path().join("SHA256SUMS");
    let sig_path = dir.path().join("SHA256SUMS.sig");
    let check = |setup: &dyn Fn(), expect_path: &str, expect_message: &str| {
        manifest::sign_dir(dir.path(), &k.signing).unwrap();
        setup();
        let findings = manifest::verify_dir(dir.path(), &k.verifying).unwrap();
        assert_eq!(
            ids(&findings),
            [(FindingId::BadManifestSignature, expect_path)]
        );
        assert!(
            findings[0].message.contains(expect_message),
            "{}",
            findings[0]
        );
    };

    // The manifest edited to match a changed file: the signature no longer covers it.
    check(
        &|| {
            let path = dir.path().join("deployment.yaml");
            std::fs::write(&path, "kind: DaemonSet\n").unwrap();
            let text = std::fs::read_to_string(&manifest_path).unwrap();
            let digest = sha256_hex(&path);
            let text: String = text
                .lines()
                .map(|l| {
                    if l.ends_with("  deployment.yaml") {
                        format!("{digest}  deployment.yaml\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            std::fs::write(&manifest_path, text).unwrap();
        },
        "SHA256SUMS",
        "the manifest signature does not verify with",
    );
    // A line removed from the manifest (to hide a file).
    check(
        &|| {
            let text = std::fs::read_to_string(&manifest_path).unwrap();
            let text: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
            std::fs::write(&manifest_path, text).unwrap();
        },
        "SHA256SUMS",
        "does not verify",
    );
    // The signature altered.
    check(
        &|| {
            let sig = std::fs::read_to_string(&sig_path).unwrap();
            let flipped = if sig.starts_with('M') { "N" } else { "M" };
            std::fs::write(&sig_path, format!("{flipped}{}", &sig[1..])).unwrap();
        },
        "SHA256SUMS",
        "does not verify",
    );
    // The signature replaced by garbage, or removed.
    check(
        &|| std::fs::write(&sig_path, "not base64!").unwrap(),
        "SHA256SUMS.sig",
        "the manifest signature is not base64",
    );
    check(
        &|| std::fs::remove_file(&sig_path).unwrap(),
        "SHA256SUMS.sig",
        "the manifest signature is missing",
    );
    check(
        &|| std::fs::remove_file(&manifest_path).unwrap(),
        "SHA256SUMS",
        "the manifest is missing",
    );
    // Signed by another key.
    let other = keys();
    check(
        &|| {
            manifest::sign_dir(dir.path(), &other.signing).unwrap();
        },
        "SHA256SUMS",
        "another key signed them",
    );
}

#[test]
fn a_signed_manifest_that_points_outside_the_directory_is_refused() {
    let k = keys();
    let dir = tree();
    manifest::sign_dir(dir.path(), &k.signing).unwrap();
    let manifest_path = dir.path().join("SHA256SUMS");
    let mut text = std::fs::read_to_string(&manifest_path).unwrap();
    text.push_str(&format!("{}  ../outside\n", "00".repeat(32)));
    std::fs::write(&manifest_path, &text).unwrap();
    // Re-sign the manifest as it is now (as if a careless signer had written it).
    gatehouse_hardening::signing::blob::sign_file(&k.signing, &manifest_path).unwrap();
    let findings = manifest::verify_dir(dir.path(), &k.verifying).unwrap();
    assert_eq!(
        ids(&findings),
        [(FindingId::BadManifestSignature, "SHA256SUMS")]
    );
    assert!(
        findings[0]
            .message
            .contains("`../outside` is not a plain relative path")
    );
}

#[test]
fn symlinks_are_refused_when_signing_and_reported_when_verifying() {
    let k = keys();
    let dir = tree();
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let err = manifest::sign_dir(dir.path(), &k.signing).unwrap_err();
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    assert!(!dir.path().join("SHA256SUMS").exists());

    std::fs::remove_file(&link).unwrap();
    manifest::sign_dir(dir.path(), &k.signing).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    // A listed file swapped for a link.
    std::fs::remove_file(dir.path().join("deployment.yaml")).unwrap();
    std::os::unix::fs::symlink("crds/gateway.yaml", dir.path().join("deployment.yaml")).unwrap();
    let findings = manifest::verify_dir(dir.path(), &k.verifying).unwrap();
    assert_eq!(
        ids(&findings),
        [
            (FindingId::FileChanged, "deployment.yaml"),
            (FindingId::FileNotListed, "link.yaml"),
        ]
    );
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}
