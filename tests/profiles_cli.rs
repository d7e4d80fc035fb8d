//! `gatehouse render` and `gatehouse install` as a user runs them: the real binary, files on
//! disk, exit codes and messages. The rendered objects themselves are judged in
//! `deploy/tests/` (kubernetes-validate, checkov, Envoy, systemd-analyze); `install` against
//! a mock API server in `deploy/tests/install_mock.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
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
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail as a command (exit 1) with a one-line error; returns it.
fn fails(args: &[&str]) -> (String, String) {
    let out = gatehouse(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "gatehouse {args:?}: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), errors[0].to_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn committed(profile: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/profiles")
        .join(profile)
}

/// Every file under `dir`, relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn render_writes_exactly_the_committed_profiles_every_time() {
    for (profile, dir) in [
        ("hardened", "kubernetes-hardened"),
        ("standalone", "standalone"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let stdout = ok(&["render", "--profile", profile, "--output-dir", s(&a)]);
        assert!(stdout.starts_with("wrote "), "{stdout}");
        ok(&["render", "--profile", profile, "--output-dir", s(&b)]);
        let (ta, tb) = (tree(&a), tree(&b));
        assert_eq!(ta, tb, "{profile}: two renderings differ");
        assert_eq!(
            ta,
            tree(&committed(dir)),
            "{profile}: differs from deploy/profiles/{dir}"
        );
        // The committed directory passes the drift check.
        let stdout = ok(&[
            "render",
            "--profile",
            profile,
            "--check",
            s(&committed(dir)),
        ]);
        assert!(stdout.contains("matches the rendering"), "{stdout}");
    }
}

#[test]
fn render_to_stdout_is_one_yaml_stream_of_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    ok(&[
        "render",
        "--profile",
        "hardened",
        "--output-dir",
        s(tmp.path()),
    ]);
    let stream = ok(&["render", "--profile", "hardened"]);
    assert_eq!(
        stream,
        ok(&["render", "--profile", "hardened", "--output-dir", "-"])
    );
    let files: String = tree(tmp.path())
        .into_values()
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    assert_eq!(stream, files);
    assert_eq!(
        stream.matches("\n---\n").count() + usize::from(stream.starts_with("---\n")),
        24
    );
}

#[test]
fn check_shows_a_diff_and_fails_when_the_directory_drifted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profile");
    ok(&["render", "--profile", "hardened", "--output-dir", s(&dir)]);
    let deployments = dir.join("10-deployments.yaml");
    let text = std::fs::read_to_string(&deployments).unwrap();
    std::fs::write(&deployments, text.replacen("replicas: 2", "replicas: 1", 1)).unwrap();
    std::fs::remove_file(dir.join("11-poddisruptionbudgets.yaml")).unwrap();
    std::fs::write(dir.join("99-extra.yaml"), "kind: Secret\n").unwrap();
    let before = tree(&dir);

    let (stdout, error) = fails(&["render", "--profile", "hardened", "--check", s(&dir)]);
    assert!(
        error.contains(
            "differs from the rendering: 1 file differs, 1 file missing, 1 file not rendered"
        ),
        "{error}"
    );
    assert!(
        stdout.contains(&format!("--- {}", deployments.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("+++ rendered/10-deployments.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-  replicas: 1\n+  replicas: 2\n"),
        "{stdout}"
    );
    assert!(stdout.contains("@@ -"), "{stdout}");
    assert!(
        stdout.contains("+++ rendered/11-poddisruptionbudgets.yaml"),
        "{stdout}"
    );
    assert!(stdout.contains("-kind: Secret"), "{stdout}");
    // --check changes nothing.
    assert_eq!(tree(&dir), before);

    // Flags are part of what is compared: another gateway is a difference.
    let clean = tmp.path().join("clean");
    ok(&["render", "--profile", "hardened", "--output-dir", s(&clean)]);
    let (stdout, _) = fails(&[
        "render",
        "--profile",
        "hardened",
        "--gateway",
        "web/shop",
        "--check",
        s(&clean),
    ]);
    assert!(stdout.contains("+  name: gatehouse-envoy-shop"), "{stdout}");
}

#[test]
fn flags_shape_the_rendering() {
    let digest = "ab".repeat(32);
    let image = format!("registry.local/envoy:v1.40.0@sha256:{digest}");
    let stream = ok(&[
        "render",
        "--profile",
        "hardened",
        "--namespace",
        "gh-cp",
        "--gateway",
        "edge/public",
        "--gateway",
        "edge/internal",
        "--image-envoy",
        &image,
        "--trust-domain",
        "prod.example",
        "--backend-namespace",
        "shop",
        "--api-server-cidr",
        "10.0.0.1/32",
    ]);
    for needle in [
        "name: gh-cp\n",
        "name: gatehouse-envoy-public\n",
        "name: gatehouse-envoy-internal\n",
        &format!("image: {image}\n"),
        "spiffe://prod.example/gateway/edge/public",
        "address: gatehouse-controller.gh-cp.svc",
        "cidr: 10.0.0.1/32",
        "- shop\n",
    ] {
        assert!(stream.contains(needle), "{needle}");
    }
    // The order of repeated flags does not matter.
    let swapped = ok(&[
        "render",
        "--profile",
        "hardened",
        "--namespace",
        "gh-cp",
        "--gateway",
        "edge/internal",
        "--gateway",
        "edge/public",
        "--image-envoy",
        &image,
        "--trust-domain",
        "prod.example",
        "--backend-namespace",
        "shop",
        "--api-server-cidr",
        "10.0.0.1/32",
    ]);
    assert_eq!(stream, swapped);

    let tmp = tempfile::tempdir().unwrap();
    ok(&[
        "render",
        "--profile",
        "standalone",
        "--gateway",
        "edge/public",
        "--output-dir",
        s(tmp.path()),
    ]);
    let unit = std::fs::read_to_string(tmp.path().join("gatehouse-envoy.service")).unwrap();
    assert!(
        unit.contains("LoadCredential=key.pem:/var/lib/gatehouse/pki/gateways/edge/public/key.pem")
    );
}

#[test]
fn bad_input_is_refused_in_one_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = s(&out);
    for (args, message) in [
        (
            vec!["--image-envoy", "envoyproxy/envoy:v1.40.0"],
            "invalid image `envoyproxy/envoy:v1.40.0`: it has no digest",
        ),
        (
            vec!["--gateway", "gatehouse-system/edge"],
            "its namespace is the control plane's",
        ),
        (vec!["--gateway", "edge"], "`edge` is not a gateway name"),
        (
            vec!["--namespace", "default"],
            "invalid namespace `default`",
        ),
        (
            vec!["--api-server-cidr", "10.0.0.1"],
            "invalid CIDR `10.0.0.1`",
        ),
    ] {
        let mut full = vec!["render", "--profile", "hardened", "--output-dir", o];
        full.extend(args);
        let (_, error) = fails(&full);
        assert!(error.contains(message), "{error}");
        assert!(!out.exists(), "{error}: wrote something");
    }
    for (args, message) in [
        (
            vec!["--image-envoy", "x"],
            "--image-envoy applies to the hardened profile only",
        ),
        (
            vec!["--namespace", "x"],
            "--namespace applies to the hardened profile only",
        ),
        (
            vec!["--gateway", "a/b", "--gateway", "c/d"],
            "one Envoy, for one --gateway",
        ),
    ] {
        let mut full = vec!["render", "--profile", "standalone", "--output-dir", o];
        full.extend(args);
        let (_, error) = fails(&full);
        assert!(error.contains(message), "{error}");
        assert!(!out.exists());
    }
    let (_, error) = fails(&["render", "--profile", "standalone"]);
    assert!(error.contains("give --output-dir DIR"), "{error}");
    let (_, error) = fails(&["render", "--profile", "hardened", "--check", o]);
    assert!(error.contains(&format!("cannot read `{o}`")), "{error}");

    // Usage errors are clap's: exit 2.
    let usage = gatehouse(&[
        "render",
        "--profile",
        "hardened",
        "--output-dir",
        o,
        "--check",
        o,
    ]);
    assert_eq!(usage.status.code(), Some(2));
    let usage = gatehouse(&["render", "--profile", "kubernetes"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn install_refuses_placeholder_images_and_says_when_there_is_no_cluster() {
    let (_, error) = fails(&["install", "--profile", "hardened"]);
    assert!(error.contains("has a placeholder digest"), "{error}");
    assert!(error.contains("--image-envoy"), "{error}");
    let (_, error) = fails(&["install", "--profile", "standalone"]);
    assert!(error.contains("follow its INSTALL.md"), "{error}");

    // Real-looking digests, and no kubeconfig and no in-cluster environment: it says so.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "install",
            "--profile",
            "hardened",
            "--image-envoy",
            &format!("registry.local/envoy@sha256:{}", "1".repeat(64)),
            "--image-controller",
            &format!("registry.local/gatehouse@sha256:{}", "2".repeat(64)),
        ])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("KUBECONFIG", tmp.path().join("missing-kubeconfig"))
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: cannot reach Kubernetes"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
