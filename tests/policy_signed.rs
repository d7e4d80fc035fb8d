//! `serve --policy-verify-key`: a Cedar policy set is loaded only when its signature verifies;
//! a tampered set is refused and the last good set stays in force.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

fn gatehouse(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("GATEHOUSE_SIGNING_PASSWORD", "policy signing")
        .output()
        .unwrap()
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

/// The status of the `admin` route, or `None` before the first report.
fn admin_status(status_file: &Path) -> Option<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(status_file).ok()?).ok()?;
    let o = v["objects"]
        .as_array()?
        .iter()
        .find(|o| o["object"]["name"] == "admin")?;
    Some(o.to_string())
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn only_a_signed_policy_set_is_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"),
        &config,
    );
    // A route that the `no-sensitive-paths-public` guardrail (deny) refuses.
    std::fs::write(
        config.join("40-admin.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: admin, namespace: quickstart}\nspec:\n  parentRefs: [{name: edge, sectionName: http}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /admin}}]\n    backendRefs: [{group: gatehouse.dev, kind: Backend, name: echo-a}]\n",
    )
    .unwrap();
    let prefix = tmp.path().join("policy");
    assert!(
        gatehouse(&[
            "sign",
            "generate-key-pair",
            "--output-prefix",
            prefix.to_str().unwrap()
        ])
        .status
        .success()
    );
    let (key, public) = (tmp.path().join("policy.key"), tmp.path().join("policy.pub"));
    let policies = config.join("policies");
    let sign = || {
        let out = gatehouse(&[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--manifest",
            policies.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sign();

    let pki = tmp.path().join("pki");
    assert!(
        gatehouse(&["certs", "init", "--dir", pki.to_str().unwrap()])
            .status
            .success()
    );
    let status = tmp.path().join("status.json");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let _serve = support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "serve",
                "--certs",
                pki.to_str().unwrap(),
                "--listen",
                &listen,
            ])
            .args(["--source", &format!("file:{}", config.display())])
            .args([
                "--policy-verify-key",
                public.to_str().unwrap(),
                "--status-file",
                status.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Signed: enforced, the admin route is denied.
    wait_until(
        "the signed set to deny /admin",
        Duration::from_secs(20),
        || {
            admin_status(&status).is_some_and(|s| {
                s.contains("NotAllowedByPolicy") && s.contains("no-sensitive-paths-public")
            })
        },
    );

    // Tampered (the guardrail weakened to `warn` without re-signing): refused, and the last good
    // set stays in force.
    let rule = policies.join("no-sensitive-paths-public.cedar");
    let text = std::fs::read_to_string(&rule).unwrap();
    assert!(!text.contains("@enforcement"), "deny by default: {text}");
    std::fs::write(
        &rule,
        text.replace(
            "@id(\"no-sensitive-paths-public\")",
            "@id(\"no-sensitive-paths-public\")\n@enforcement(\"warn\")",
        ),
    )
    .unwrap();
    wait_until(
        "the refusal to be reported",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&status)
                .is_ok_and(|s| s.contains("not signed by the trusted key") && s.contains("SIG-002"))
        },
    );
    let s = admin_status(&status).unwrap();
    assert!(
        s.contains("NotAllowedByPolicy"),
        "the last good (signed) set still denies: {s}"
    );

    // Signed again: the new set is loaded.
    sign();
    wait_until(
        "the re-signed set to be loaded",
        Duration::from_secs(20),
        || {
            admin_status(&status)
                .is_some_and(|s| !s.contains("NotAllowedByPolicy") && s.contains("PolicyWarning"))
        },
    );
}
