//! End-to-end tests of `gatehouse certs`: the real binary, the real filesystem, and the
//! `openssl` command line as the independent judge.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run gatehouse")
}

fn ok(args: &[&str]) -> String {
    let out = gatehouse(args);
    assert!(
        out.status.success(),
        "gatehouse {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secrets(&out);
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr, which must be one line.
fn fails(args: &[&str]) -> String {
    let out = gatehouse(args);
    assert_eq!(out.status.code(), Some(1), "gatehouse {args:?} should fail");
    assert_no_secrets(&out);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn assert_no_secrets(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let s = String::from_utf8_lossy(stream);
        assert!(!s.contains("-----BEGIN"), "output shows PEM: {s}");
    }
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

/// Everything under `dir`: kind, mode, contents or link target. Used to prove a failed command
/// changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        out.insert(dir.to_owned(), (meta.mode(), Vec::new()));
    }
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let content = if meta.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.insert(p, (meta.mode(), content));
        }
    }
    out
}

/// A fresh store with a CA, a controller certificate and a gateway certificate.
fn store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ok(&["certs", "init", "--dir", s(&dir)]);
    ok(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--controller",
        "--dns",
        "xds.gatehouse.test",
        "--ip",
        "127.0.0.1",
    ]);
    ok(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--gateway",
        "edge/public",
    ]);
    (tmp, dir)
}

#[test]
fn openssl_accepts_every_certificate_for_its_purpose_only() {
    let (_tmp, dir) = store();
    let bundle = dir.join("ca/bundle.pem");
    let controller = dir.join("controller/cert.pem");
    let gateway = dir.join("gateways/edge/public/cert.pem");
    let verify = |purpose: &str, cert: &Path| {
        openssl(&[
            "verify",
            "-CAfile",
            s(&bundle),
            "-purpose",
            purpose,
            s(cert),
        ])
    };
    let out = verify("sslserver", &controller);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
    assert!(verify("sslclient", &gateway).status.success());
    // Each for its own purpose only.
    assert!(!verify("sslclient", &controller).status.success());
    assert!(!verify("sslserver", &gateway).status.success());
    // The chain file verifies the same leaf (openssl reads the first certificate).
    assert!(
        verify("sslclient", &dir.join("gateways/edge/public/chain.pem"))
            .status
            .success()
    );

    // Each key belongs to its certificate.
    for leaf in ["controller", "gateways/edge/public"] {
        let from_cert = openssl(&[
            "x509",
            "-in",
            s(&dir.join(leaf).join("cert.pem")),
            "-noout",
            "-pubkey",
        ]);
        let from_key = openssl(&["pkey", "-in", s(&dir.join(leaf).join("key.pem")), "-pubout"]);
        assert!(from_key.status.success());
        assert_eq!(
            from_cert.stdout, from_key.stdout,
            "{leaf}: key matches certificate"
        );
    }
    // openssl sees the SANs we meant.
    let text = String::from_utf8(
        openssl(&[
            "x509",
            "-in",
            s(&controller),
            "-noout",
            "-ext",
            "subjectAltName",
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        text.contains("URI:spiffe://gatehouse.local/controller"),
        "{text}"
    );
    assert!(
        text.contains("DNS:xds.gatehouse.test") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
}

#[test]
fn keys_are_0600_and_certificates_0644() {
    let (_tmp, dir) = store();
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().mode() & 0o777;
    assert_eq!(mode("ca/ca.key"), 0o600);
    assert_eq!(mode("controller/key.pem"), 0o600);
    assert_eq!(mode("gateways/edge/public/key.pem"), 0o600);
    assert_eq!(mode("gateways/edge/public/cert.pem"), 0o644);
    assert_eq!(mode("ca/bundle.pem"), 0o644);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().mode() & 0o777,
        0o700,
        "the store directory is private"
    );
    // No temporary files are left behind.
    for (path, _) in snapshot(&dir) {
        let rel = path
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(!rel.contains(".tmp"), "leftover {rel}");
    }
    // Nothing a command prints contains key material.
    let key = std::fs::read_to_string(dir.join("gateways/edge/public/key.pem")).unwrap();
    let body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for args in [
        vec!["certs", "inspect", "-o", "json"],
        vec!["certs", "rotate", "-o", "json", "--dir"],
    ] {
        let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let target = if args[1] == "inspect" {
            dir.join("gateways/edge/public/chain.pem")
        } else {
            dir.clone()
        };
        args.push(target.to_str().unwrap().to_owned());
        let out = gatehouse(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in &body {
            assert!(!all.contains(line), "key material printed by {args:?}");
        }
    }
}

#[test]
fn inspect_reports_what_openssl_sees() {
    let (_tmp, dir) = store();
    let cert = dir.join("gateways/edge/public/cert.pem");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["certs", "inspect", s(&cert), "-o", "json"])).unwrap();
    let c = &json[0];
    assert_eq!(c["key_type"], "ECDSA P-256");
    assert_eq!(c["extended_key_usage"], serde_json::json!(["clientAuth"]));
    assert_eq!(c["key_usage"], serde_json::json!(["digitalSignature"]));
    assert_eq!(
        c["sans"]["uri"],
        serde_json::json!(["spiffe://gatehouse.local/gateway/edge/public"])
    );
    assert_eq!(c["status"], "valid");
    let left = c["seconds_left"].as_i64().unwrap();
    assert!((86_000..=86_400).contains(&left), "{left}");
    let fp = String::from_utf8(
        openssl(&["x509", "-in", s(&cert), "-noout", "-fingerprint", "-sha256"]).stdout,
    )
    .unwrap();
    assert_eq!(
        fp.trim().rsplit('=').next().unwrap(),
        c["sha256_fingerprint"].as_str().unwrap()
    );

    let text = ok(&[
        "certs",
        "inspect",
        s(&dir.join("gateways/edge/public/chain.pem")),
    ]);
    assert!(
        text.contains("Certificate         #1"),
        "the chain shows two certificates: {text}"
    );
    assert!(
        text.contains("Subject             O=Gatehouse, CN=edge/public"),
        "{text}"
    );
    // A key file is not a certificate, and inspect says so without printing it.
    let err = fails(&[
        "certs",
        "inspect",
        s(&dir.join("gateways/edge/public/key.pem")),
    ]);
    assert!(err.contains("contains no certificate"), "{err}");
}

#[test]
fn rotate_renews_what_is_past_half_life_and_says_so() {
    let (_tmp, dir) = store();
    // A 2-minute certificate is past half of its lifetime (2 min + 5 min backdating) at once.
    ok(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--gateway",
        "edge/short",
        "--validity",
        "2m",
    ]);
    let before = snapshot(&dir);
    let out = ok(&["certs", "rotate", "--dir", s(&dir)]);
    assert!(out.contains("renewed gateway edge/short"), "{out}");
    assert!(out.contains("kept controller: renews after"), "{out}");
    assert!(out.contains("kept gateway edge/public"), "{out}");
    let after = snapshot(&dir);
    let read = |snap: &BTreeMap<PathBuf, (u32, Vec<u8>)>, leaf: &str| {
        let link = String::from_utf8(snap[&dir.join(leaf).join("..data")].1.clone()).unwrap();
        snap[&dir.join(leaf).join(link).join("cert.pem")].1.clone()
    };
    assert_ne!(
        read(&before, "gateways/edge/short"),
        read(&after, "gateways/edge/short")
    );
    assert_eq!(
        read(&before, "gateways/edge/public"),
        read(&after, "gateways/edge/public")
    );
    assert_eq!(read(&before, "controller"), read(&after, "controller"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["certs", "rotate", "--dir", s(&dir), "-o", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
}

#[test]
fn an_openssl_made_intermediate_can_be_brought() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let p = |n: &str| t.join(n).to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let out = openssl(args);
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // SEC1 ("EC PRIVATE KEY") keys, as `openssl ecparam` writes them.
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &p("root.key"),
    ]);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &p("root.key"),
        "-subj",
        "/CN=Ops Root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        &p("root.pem"),
    ]);
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &p("int.key"),
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        &p("int.key"),
        "-subj",
        "/CN=Ops Gatehouse Intermediate",
        "-out",
        &p("int.csr"),
    ]);
    std::fs::write(
        t.join("ext.cnf"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &p("int.csr"),
        "-CA",
        &p("root.pem"),
        "-CAkey",
        &p("root.key"),
        "-CAcreateserial",
        "-days",
        "20",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("int.pem"),
    ]);
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(p("int.pem")).unwrap(),
        std::fs::read_to_string(p("root.pem")).unwrap()
    );
    std::fs::write(t.join("int-chain.pem"), chain).unwrap();

    let dir = t.join("pki");
    ok(&[
        "certs",
        "init",
        "--dir",
        s(&dir),
        "--ca-cert",
        &p("int-chain.pem"),
        "--ca-key",
        &p("int.key"),
        "--trust-domain",
        "ops.example",
    ]);
    ok(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--gateway",
        "edge/public",
    ]);
    let out = openssl(&[
        "verify",
        "-CAfile",
        &p("root.pem"),
        "-untrusted",
        &p("int.pem"),
        "-purpose",
        "sslclient",
        s(&dir.join("gateways/edge/public/cert.pem")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The trust bundle is the operator's root.
    let bundle = openssl(&[
        "x509",
        "-in",
        s(&dir.join("ca/bundle.pem")),
        "-noout",
        "-subject",
    ]);
    assert!(String::from_utf8_lossy(&bundle.stdout).contains("Ops Root"));
    // A validity past the intermediate's 20 days is refused.
    let err = fails(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--gateway",
        "edge/long",
        "--validity",
        "25d",
    ]);
    assert!(
        err.contains("ends after the CA certificate expires"),
        "{err}"
    );
}

// ---- bad input: a one-line error that says what and where, and nothing changes on disk ----

#[test]
fn corrupt_pem_is_reported_with_file_and_line() {
    let (tmp, dir) = store();
    let bad = tmp.path().join("bad.pem");
    let good = std::fs::read_to_string(dir.join("controller/cert.pem")).unwrap();
    // Truncated in the middle of the second certificate.
    let chain = std::fs::read_to_string(dir.join("controller/chain.pem")).unwrap();
    std::fs::write(&bad, &chain[..chain.len() - 40]).unwrap();
    let err = fails(&["certs", "inspect", s(&bad)]);
    let second_begin = good.lines().count() + 1;
    assert!(
        err.contains(&format!("`{}` line {second_begin}:", bad.display())),
        "{err}"
    );
    assert!(err.contains("no END line"), "{err}");

    // Garbage inside the base64.
    std::fs::write(&bad, good.replacen('M', "!", 1)).unwrap();
    let err = fails(&["certs", "inspect", s(&bad)]);
    assert!(
        err.contains("line 1") && err.contains("not valid base64"),
        "{err}"
    );

    // A corrupt CA key in the store: issuing fails and changes nothing.
    let before = snapshot(&dir);
    let key_target = dir
        .join("ca")
        .join(std::fs::read_link(dir.join("ca/..data")).unwrap())
        .join("ca.key");
    let key_text = std::fs::read_to_string(&key_target).unwrap();
    std::fs::set_permissions(&key_target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&key_target, &key_text[..key_text.len() / 2]).unwrap();
    let before_corrupt = {
        let mut b = before.clone();
        b.insert(
            key_target.clone(),
            (b[&key_target].0, std::fs::read(&key_target).unwrap()),
        );
        b
    };
    let err = fails(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--gateway",
        "edge/other",
    ]);
    assert!(err.contains("ca.key` line 1:"), "{err}");
    assert_eq!(snapshot(&dir), before_corrupt);
}

#[test]
fn key_not_matching_its_certificate_is_refused() {
    let (tmp, dir) = store();
    let target = tmp.path().join("new");
    let err = fails(&[
        "certs",
        "init",
        "--dir",
        s(&target),
        "--ca-cert",
        s(&dir.join("ca/ca.pem")),
        "--ca-key",
        s(&dir.join("gateways/edge/public/key.pem")),
    ]);
    assert!(err.contains("does not match the certificate"), "{err}");
    assert!(err.contains("gateways/edge/public/key.pem"), "{err}");
    assert!(!target.exists(), "nothing was created");

    // A leaf brought as a CA is refused too, naming the file and line.
    let err = fails(&[
        "certs",
        "init",
        "--dir",
        s(&target),
        "--ca-cert",
        s(&dir.join("controller/cert.pem")),
        "--ca-key",
        s(&dir.join("controller/key.pem")),
    ]);
    assert!(
        err.contains("controller/cert.pem` line 1: is not a CA certificate"),
        "{err}"
    );
    assert!(!target.exists());
}

#[test]
fn missing_directories_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = fails(&["certs", "issue", "--dir", s(&missing), "--controller"]);
    assert!(
        err.contains(&format!("directory `{}` does not exist", missing.display())),
        "{err}"
    );
    let err = fails(&["certs", "rotate", "--dir", s(&missing)]);
    assert!(err.contains("does not exist"), "{err}");
    let err = fails(&["certs", "init", "--dir", s(&missing.join("deeper"))]);
    assert!(
        err.contains(&format!("directory `{}` does not exist", missing.display())),
        "{err}"
    );
    assert!(!missing.exists());
    // An existing directory without a CA.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = fails(&["certs", "issue", "--dir", s(&empty), "--controller"]);
    assert!(
        err.contains("no CA in") && err.contains("gatehouse certs init --dir"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn unwritable_directory_is_reported_and_left_alone() {
    let (tmp, dir) = store();
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .unwrap()
        .stdout
        == b"0\n";
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Hand the store to an unprivileged user (root ignores permission bits), then make the
    // store directory read-only for it.
    if root {
        let out = Command::new("chown")
            .args(["-R", "65534:65534", s(&dir)])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let out = Command::new("chmod")
        .args(["-R", "a-w", s(&dir)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let before = snapshot(&dir);
    let mut cmd = if root {
        // A copy the unprivileged user can execute wherever the target directory lives.
        let bin = tmp.path().join("gatehouse");
        std::fs::copy(env!("CARGO_BIN_EXE_gatehouse"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", s(&bin)]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
    };
    let out = cmd
        .args([
            "certs",
            "issue",
            "--dir",
            s(&dir),
            "--gateway",
            "tenant/new",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot write in `{}`",
            dir.join("gateways/tenant/new").display()
        )),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(snapshot(&dir), before);
    Command::new("chmod")
        .args(["-R", "u+w", s(&dir)])
        .output()
        .unwrap();
}

#[test]
fn unknown_gateway_name_format_is_refused() {
    let (_tmp, dir) = store();
    let before = snapshot(&dir);
    for (input, hint) in [
        ("edge", "there is no `/`"),
        ("edge/public/extra", "more than one `/`"),
        ("Edge/public", "may contain only"),
        ("edge/", "name is empty"),
    ] {
        let err = fails(&["certs", "issue", "--dir", s(&dir), "--gateway", input]);
        assert!(
            err.contains(&format!("`{input}` is not a gateway name")),
            "{err}"
        );
        assert!(err.contains(hint), "{input}: {err}");
        assert!(err.contains("NAMESPACE/NAME"), "{err}");
    }
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn validity_longer_than_the_ca_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ok(&["certs", "init", "--dir", s(&dir), "--ca-validity", "2h"]);
    let before = snapshot(&dir);
    let err = fails(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--controller",
        "--validity",
        "3h",
    ]);
    assert!(
        err.contains("validity `3h` ends after the CA certificate expires"),
        "{err}"
    );
    assert!(
        err.contains("choose a shorter --validity or renew the CA"),
        "{err}"
    );
    let err = fails(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--controller",
        "--validity",
        "31d",
    ]);
    assert!(
        err.contains("longer than this CA's maximum leaf lifetime of 30days"),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
    // A malformed duration is a usage error (exit 2) from the parser.
    let out = gatehouse(&[
        "certs",
        "issue",
        "--dir",
        s(&dir),
        "--controller",
        "--validity",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("examples: `24h`"));
}

#[test]
fn an_existing_ca_is_not_replaced_without_force() {
    let (_tmp, dir) = store();
    let before = snapshot(&dir);
    let err = fails(&["certs", "init", "--dir", s(&dir)]);
    assert!(
        err.contains("a CA already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
    let out = ok(&["certs", "init", "--dir", s(&dir), "--force"]);
    assert!(
        out.contains("replaced CA") && out.contains("no longer trusted"),
        "{out}"
    );
    assert_ne!(
        std::fs::read(dir.join("ca/ca.pem")).unwrap(),
        before[&dir.join("ca/ca.pem")].1
    );
}

#[test]
fn version_and_completion() {
    let v: serde_json::Value = serde_json::from_str(&ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["rustc"].as_str().unwrap().starts_with("rustc "));
    assert!(v["target"].as_str().unwrap().contains("linux"));
    assert!(!v["commit"].as_str().unwrap().is_empty());
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completion", shell]);
        assert!(
            script.contains("gatehouse") && script.contains("rotate"),
            "{shell}"
        );
    }
}
