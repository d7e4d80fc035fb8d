//! `gatehouse render --sign-key`: the rendered profile signed as a whole, and what
//! `verify-signature --manifest` says when it is changed afterwards.

use std::process::Command;

fn gatehouse(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("GATEHOUSE_SIGNING_PASSWORD", "test password")
        .output()
        .unwrap()
}

#[test]
fn a_signed_rendering_reports_a_changed_a_removed_and_an_added_file() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("release");
    let out = gatehouse(&[
        "sign",
        "generate-key-pair",
        "--output-prefix",
        prefix.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (key, public) = (
        tmp.path().join("release.key"),
        tmp.path().join("release.pub"),
    );
    let dir = tmp.path().join("profile");
    let out = gatehouse(&[
        "render",
        "--profile",
        "hardened",
        "--output-dir",
        dir.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("SHA256SUMS").exists() && dir.join("SHA256SUMS.sig").exists());
    let verify = || {
        gatehouse(&[
            "verify-signature",
            "--key",
            public.to_str().unwrap(),
            "--manifest",
            dir.to_str().unwrap(),
        ])
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );

    // One file changed, one removed, one added.
    let deployments = dir.join("10-deployments.yaml");
    let text = std::fs::read_to_string(&deployments).unwrap();
    std::fs::write(
        &deployments,
        text.replace(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
        ),
    )
    .unwrap();
    std::fs::remove_file(dir.join("08-networkpolicies.yaml")).unwrap();
    std::fs::write(dir.join("99-extra.yaml"), "kind: ClusterRoleBinding\n").unwrap();
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    let report = String::from_utf8(bad.stdout).unwrap();
    assert!(
        report.contains("SIG-002") && report.contains("10-deployments.yaml"),
        "{report}"
    );
    assert!(
        report.contains("SIG-003") && report.contains("08-networkpolicies.yaml"),
        "{report}"
    );
    assert!(
        report.contains("SIG-004") && report.contains("99-extra.yaml"),
        "{report}"
    );
    assert_eq!(report.matches("SIG-00").count(), 3, "{report}");
}
