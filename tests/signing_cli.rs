//! End-to-end tests of `gatehouse sign` and `gatehouse verify-signature`: the real binary, the
//! real filesystem, and the `openssl` command line as the independent judge of our signatures.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PASSWORD: &str = "a long and unlikely password";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const KUBEWARDEN: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";

/// Runs gatehouse with no terminal on stdin, and the signing password in the environment
/// when `password` is given (or neither variable set when it is not).
fn run(args: &[&str], password: Option<(&str, &str)>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("GATEHOUSE_SIGNING_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::null());
    if let Some((var, value)) = password {
        cmd.env(var, value);
    }
    let out = cmd.output().expect("run gatehouse");
    for stream in [&out.stdout, &out.stderr] {
        let s = String::from_utf8_lossy(stream);
        assert!(!s.contains("-----BEGIN"), "output shows PEM: {s}");
        assert!(!s.contains(PASSWORD), "output shows the password: {s}");
    }
    out
}

fn with_password(args: &[&str]) -> Output {
    run(args, Some(("GATEHOUSE_SIGNING_PASSWORD", PASSWORD)))
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A command that must fail with exit code 1 and one `error:` line; returns that line.
fn fails(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is installed")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A key pair `DIR/cosign.key`, `DIR/cosign.pub` made by the CLI.
fn key_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("cosign");
    let out = ok(with_password(&[
        "sign",
        "generate-key-pair",
        "--output-prefix",
        s(&prefix),
    ]));
    assert!(out.contains("cosign.key (encrypted, mode 0600)"), "{out}");
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("hardening/tests/fixtures/sigstore")
        .join(name)
}

#[test]
fn openssl_verifies_our_signatures_and_both_refuse_a_changed_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = key_pair(tmp.path());
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&public).unwrap().mode() & 0o777, 0o644);
    let file = tmp.path().join("profile.yaml");
    std::fs::write(&file, "apiVersion: apps/v1\nkind: Deployment\n").unwrap();

    let out = ok(with_password(&["sign", "--key", s(&key), s(&file)]));
    let sig = tmp.path().join("profile.yaml.sig");
    assert_eq!(
        out.trim(),
        format!("signed {} -> {}", file.display(), sig.display())
    );

    // The .sig is base64 of a DER signature: decode it and let openssl judge.
    let der = tmp.path().join("profile.yaml.sig.der");
    let out = openssl(&["base64", "-d", "-A", "-in", s(&sig), "-out", s(&der)]);
    assert!(out.status.success());
    let judge = || {
        openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            s(&public),
            "-signature",
            s(&der),
            s(&file),
        ])
    };
    let out = judge();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
    let out = ok(run(
        &["verify-signature", "--key", s(&public), s(&file)],
        None,
    ));
    assert!(out.starts_with("verified "), "{out}");
    let out = ok(run(
        &[
            "verify-signature",
            "--key",
            s(&public),
            "--signature",
            s(&sig),
            s(&file),
            "-o",
            "json",
        ],
        None,
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true);

    // One byte changed: both refuse.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[7] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();
    let out = judge();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verification failure"));
    let err = fails(run(
        &["verify-signature", "--key", s(&public), s(&file)],
        None,
    ));
    assert_eq!(
        err.trim_end(),
        format!(
            "error: the signature `{}` does not verify `{}` with the key `{}`",
            sig.display(),
            file.display(),
            public.display()
        )
    );
}

#[test]
fn passwords_come_from_either_variable_and_a_wrong_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("release");
    ok(run(
        &[
            "sign",
            "generate-key-pair",
            "--output-prefix",
            s(&prefix),
            "-o",
            "json",
        ],
        Some(("COSIGN_PASSWORD", PASSWORD)),
    ));
    let key = tmp.path().join("release.key");
    let file = tmp.path().join("a.txt");
    std::fs::write(&file, "a").unwrap();

    // cosign's variable works for signing too.
    ok(run(
        &["sign", "--key", s(&key), s(&file)],
        Some(("COSIGN_PASSWORD", PASSWORD)),
    ));
    std::fs::remove_file(tmp.path().join("a.txt.sig")).unwrap();

    let err = fails(run(
        &["sign", "--key", s(&key), s(&file)],
        Some(("GATEHOUSE_SIGNING_PASSWORD", "wrong")),
    ));
    assert_eq!(
        err.trim_end(),
        format!(
            "error: cannot decrypt the private key in `{}`: wrong password",
            key.display()
        )
    );
    // No password and no terminal to ask on.
    let err = fails(run(&["sign", "--key", s(&key), s(&file)], None));
    assert!(
        err.starts_with("error: no signing password: set GATEHOUSE_SIGNING_PASSWORD"),
        "{err}"
    );
    assert!(
        !tmp.path().join("a.txt.sig").exists(),
        "a failed sign wrote a signature"
    );
}

#[test]
fn generate_key_pair_never_replaces_keys_nor_accepts_an_empty_password() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = key_pair(tmp.path());
    let before = std::fs::read(&key).unwrap();
    let prefix = tmp.path().join("cosign");
    let err = fails(with_password(&[
        "sign",
        "generate-key-pair",
        "--output-prefix",
        s(&prefix),
    ]));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let prefix = tmp.path().join("empty");
    let err = fails(run(
        &["sign", "generate-key-pair", "--output-prefix", s(&prefix)],
        Some(("GATEHOUSE_SIGNING_PASSWORD", "")),
    ));
    assert_eq!(
        err.trim_end(),
        "error: refusing to protect a new key with an empty password"
    );
    assert!(!tmp.path().join("empty.key").exists());
}

#[test]
fn a_signed_directory_lists_every_finding_with_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = key_pair(tmp.path());
    let dir = tmp.path().join("rendered");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("deployment.yaml"), "kind: Deployment\n").unwrap();
    std::fs::write(dir.join("service.yaml"), "kind: Service\n").unwrap();
    std::fs::write(
        dir.join("policies/admission.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    let out = ok(with_password(&[
        "sign",
        "--key",
        s(&key),
        "--manifest",
        s(&dir),
    ]));
    assert!(out.starts_with("signed 3 files in "), "{out}");
    let verify = |format: &str| {
        run(
            &[
                "verify-signature",
                "--key",
                s(&public),
                "--manifest",
                s(&dir),
                "-o",
                format,
            ],
            None,
        )
    };
    let out = ok(verify("text"));
    assert!(out.starts_with("verified "), "{out}");

    std::fs::write(dir.join("deployment.yaml"), "kind: DaemonSet\n").unwrap();
    std::fs::remove_file(dir.join("service.yaml")).unwrap();
    std::fs::write(
        dir.join("policies/backdoor.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    let out = verify("text");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("SIG-002 deployment.yaml: changed: its sha256 is "),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        "SIG-003 service.yaml: listed in the manifest but missing"
    );
    assert_eq!(
        lines[2],
        "SIG-004 policies/backdoor.cedar: present but not listed in the manifest"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 findings"));

    let out = verify("json");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], false);
    let ids: Vec<(&str, &str)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("SIG-002", "deployment.yaml"),
            ("SIG-003", "service.yaml"),
            ("SIG-004", "policies/backdoor.cedar")
        ]
    );

    // A signature that does not verify hides nothing behind it: SIG-001 alone.
    std::fs::write(
        dir.join("SHA256SUMS.sig"),
        "MEUCIQDfakefakefakefakefakefakefakefakefakefakefakefakeAiB=",
    )
    .unwrap();
    let out = verify("text");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("SIG-001 SHA256SUMS"), "{stdout}");
}

#[test]
fn a_keyless_bundle_verifies_offline_and_tampered_copies_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fixture("sigstore_trusted_root.json");
    let genuine = fixture("bundle_v03.json");
    let verify = |bundle: &Path, target: &[&str]| {
        let mut args = vec![
            "verify-signature",
            "--bundle",
            s(bundle),
            "--trusted-root",
            s(&root),
            "--certificate-identity",
            KUBEWARDEN,
            "--certificate-oidc-issuer",
            ISSUER,
        ];
        args.extend_from_slice(target);
        run(&args, None)
    };
    // The signed artifact itself is not published with the fixture: verify by its digest.
    let out = ok(verify(&genuine, &["--digest", KUBEWARDEN_DIGEST]));
    assert!(
        out.contains(&format!("signed by {KUBEWARDEN} (issuer {ISSUER})")),
        "{out}"
    );
    assert!(
        out.contains("logged in https://rekor.sigstore.dev at index 1261105807"),
        "{out}"
    );
    let out = ok(verify(
        &genuine,
        &["--digest", KUBEWARDEN_DIGEST, "-o", "json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["tree_size"], 1139201557);

    // Other artifact bytes.
    let artifact = tmp.path().join("artifact.bin");
    std::fs::write(&artifact, "something else").unwrap();
    let err = fails(verify(&genuine, &[s(&artifact)]));
    assert!(
        err.contains("the bundle does not sign this artifact"),
        "{err}"
    );

    // One inclusion-proof hash changed (one base64 digit).
    let text = std::fs::read_to_string(&genuine).unwrap();
    let tampered = tmp.path().join("tampered.json");
    std::fs::write(
        &tampered,
        text.replacen(
            "\"ynK6JkEVT4LOkZgxnqtpnzY0",
            "\"ynK6JkEVT4LOkZgxnqtpnzY1",
            1,
        ),
    )
    .unwrap();
    let err = fails(verify(&tampered, &["--digest", KUBEWARDEN_DIGEST]));
    assert!(
        err.contains("transparency log: the inclusion proof does not lead from the log entry to its root hash"),
        "{err}"
    );
    // The checkpoint's text changed.
    std::fs::write(
        &tampered,
        text.replacen("1193050959916656506", "1193050959916656507", 1),
    )
    .unwrap();
    let err = fails(verify(&tampered, &["--digest", KUBEWARDEN_DIGEST]));
    assert!(
        err.contains(
            "the checkpoint signature by `rekor.sigstore.dev` does not verify with the log key"
        ),
        "{err}"
    );

    // Usage errors are exit code 2: a digest needs a bundle.
    let out = run(
        &[
            "verify-signature",
            "--key",
            s(&root),
            "--digest",
            KUBEWARDEN_DIGEST,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}
