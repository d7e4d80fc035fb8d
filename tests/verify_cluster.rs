//! `gatehouse verify --cluster` as a user runs it: the real binary, its real kubeconfig path
//! (`--kubeconfig FILE`, and `KUBECONFIG`), against a loopback HTTP server that plays the
//! Kubernetes API server's LIST endpoints (`hardening/tests/support/mock_api.rs`, the same
//! mock the library tests put behind kube's tower-test service). No API server can be
//! installed on these machines. The server listens on 127.0.0.1 only.
//!
//! What is asserted: the hardened profile exits 0 with the same findings as `-f`; the
//! known-bad fixtures exit 1 with their ids in JSON (and in every other format); a 403 on one
//! list exits 4 naming the permission, with nothing on stdout; no kubeconfig exits 4.

#[path = "../hardening/tests/support/mock_api.rs"]
mod mock_api;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use mock_api::MockApi;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("hardening/tests/fixtures/verify").join(name)
}

/// The mock API server on 127.0.0.1, in its own thread and runtime; stops with the test
/// process.
struct Server {
    url: String,
    api: Arc<Mutex<MockApi>>,
}

fn start(api: MockApi) -> Server {
    let api = Arc::new(Mutex::new(api));
    let shared = api.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let api = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let api = api.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let _ = body.collect().await;
                                let (code, json) = api.lock().unwrap().answer(
                                    parts.method.as_str(),
                                    parts.uri.path(),
                                    parts.uri.query().unwrap_or_default(),
                                );
                                Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(code)
                                        .header("content-type", "application/json")
                                        .body(Full::new(Bytes::from(
                                            serde_json::to_vec(&json).unwrap(),
                                        )))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    let addr = rx.recv().unwrap();
    Server {
        url: format!("http://{addr}"),
        api,
    }
}

/// A kubeconfig naming the server, with a bearer token, in `dir`.
fn kubeconfig(dir: &Path, server: &Server) -> PathBuf {
    let path = dir.join("kubeconfig.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: mock\nclusters:\n- name: mock\n  cluster:\n    server: {}\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: verify\nusers:\n- name: verify\n  user:\n    token: not-a-secret\n",
            server.url
        ),
    )
    .unwrap();
    path
}

fn gatehouse(args: &[&str], kubeconfig_env: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    match kubeconfig_env {
        Some(path) => command.env("KUBECONFIG", path),
        None => command.env_remove("KUBECONFIG"),
    };
    command.output().expect("run gatehouse")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// `(id, object, message)` of every finding.
fn findings(report: &Value) -> BTreeSet<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["object"].to_string(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_hardened_profile_in_a_cluster_exits_0_with_the_findings_of_its_files() {
    let profile = root().join("deploy/profiles/kubernetes-hardened");
    let server = start(MockApi::from_yaml(&[&profile]));
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &server);
    // The standard way: KUBECONFIG.
    let live = gatehouse(&["verify", "--cluster", "-o", "json"], Some(&config));
    assert_eq!(live.status.code(), Some(0), "{}", text(&live.stderr));
    let files = gatehouse(
        &[
            "verify",
            "-f",
            "deploy/profiles/kubernetes-hardened",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(files.status.code(), Some(0), "{}", text(&files.stderr));
    let (live, files) = (json(&live), json(&files));
    assert_eq!(findings(&live), findings(&files));
    assert_eq!(live["summary"], files["summary"]);
    assert!(
        live["inputs"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("cluster {}", server.url)),
        "{}",
        live["inputs"]
    );
    for f in live["findings"].as_array().unwrap() {
        assert!(
            f["location"]["file"]
                .as_str()
                .unwrap()
                .starts_with("cluster:"),
            "{f}"
        );
    }
    let seen = server.api.lock().unwrap().seen.clone();
    assert!(
        seen.iter()
            .all(|s| s.method == "GET" && !s.path.contains("secrets"))
    );
    assert!(seen.iter().any(|s| s.path == "/api/v1/pods"));
}

#[test]
fn a_known_bad_cluster_exits_1_with_the_expected_ids_in_every_format() {
    let server = start(MockApi::from_yaml(&[
        &fixture("gateway-colocated-with-control-plane.yaml"),
        &fixture("envoy-root-with-token.yaml"),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &server);
    let config = config.to_str().unwrap();
    let out = gatehouse(
        &["verify", "--cluster", "--kubeconfig", config, "-o", "json"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["exitCode"], 1);
    let ids: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for id in [
        "RBAC-001", "RBAC-003", "POD-028", "RBAC-026", "POD-015", "POD-016",
    ] {
        assert!(ids.contains(id), "{id} missing: {ids:?}");
    }
    let rbac_003 = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "RBAC-003")
        .unwrap();
    assert_eq!(
        rbac_003["location"]["file"],
        "cluster:ClusterRole/edge-controller"
    );
    // The table names the object and its cluster location; SARIF and JUnit fail too.
    let table = gatehouse(
        &[
            "verify",
            "--cluster",
            "--kubeconfig",
            config,
            "--color",
            "never",
        ],
        None,
    );
    assert_eq!(table.status.code(), Some(1));
    assert!(
        text(&table.stdout)
            .contains("ClusterRole/edge-controller  cluster:ClusterRole/edge-controller")
    );
    for format in ["sarif", "junit"] {
        let out = gatehouse(
            &["verify", "--cluster", "--kubeconfig", config, "-o", format],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("RBAC-003"), "{format}");
    }
    // --fail-on never: the same findings, exit 0; a suppression hides one.
    let out = gatehouse(
        &[
            "verify",
            "--cluster",
            "--kubeconfig",
            config,
            "--fail-on",
            "never",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let suppressions = dir.path().join("suppressions.yaml");
    std::fs::write(
        &suppressions,
        "- id: RBAC-003\n  target: ClusterRole/edge-controller\n  reason: test\n  expires: 2999-12-31\n",
    )
    .unwrap();
    let out = gatehouse(
        &[
            "verify",
            "--cluster",
            "--kubeconfig",
            config,
            "--suppressions",
            suppressions.to_str().unwrap(),
            "-o",
            "json",
        ],
        None,
    );
    let report = json(&out);
    let rbac_003 = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "RBAC-003")
        .unwrap();
    assert_eq!(rbac_003["suppression"]["reason"], "test");
}

#[test]
fn a_forbidden_list_exits_4_naming_the_permission() {
    let mut api = MockApi::from_yaml(&[&fixture("gateway-colocated-with-control-plane.yaml")]);
    api.forbid
        .push("/apis/rbac.authorization.k8s.io/v1/clusterroles".to_owned());
    let server = start(api);
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &server);
    for format in ["table", "json", "sarif", "junit"] {
        let out = gatehouse(
            &[
                "verify",
                "--cluster",
                "--kubeconfig",
                config.to_str().unwrap(),
                "-o",
                format,
            ],
            None,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{format}: {stderr}");
        assert!(
            stderr
                .contains("verify --cluster needs list on rbac.authorization.k8s.io/clusterroles"),
            "{stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{format}: a partial read reports nothing"
        );
    }
}

#[test]
fn no_kubeconfig_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let out = gatehouse(
        &[
            "verify",
            "--cluster",
            "--kubeconfig",
            missing.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no usable kubernetes configuration"));
    assert!(out.stdout.is_empty());
    // Nothing at all: no KUBECONFIG, a HOME without ~/.kube, not in a pod.
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["verify", "--cluster"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("set KUBECONFIG"));
}

#[test]
fn an_unreachable_api_server_exits_4() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let server = Server {
        url: format!("http://127.0.0.1:{port}"),
        api: Arc::default(),
    };
    let config = kubeconfig(dir.path(), &server);
    let out = gatehouse(
        &[
            "verify",
            "--cluster",
            "--kubeconfig",
            config.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("could not be reached while listing Namespace"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn context_picks_another_cluster_of_the_kubeconfig() {
    let server = start(MockApi::from_yaml(&[&fixture(
        "gateway-colocated-with-control-plane.yaml",
    )]));
    // The current context points at a port nothing listens on; `mock` at the server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: broken\nclusters:\n- name: broken\n  cluster:\n    server: http://127.0.0.1:{closed}\n- name: mock\n  cluster:\n    server: {}\ncontexts:\n- name: broken\n  context:\n    cluster: broken\n    user: verify\n- name: mock\n  context:\n    cluster: mock\n    user: verify\nusers:\n- name: verify\n  user:\n    token: not-a-secret\n",
            server.url
        ),
    )
    .unwrap();
    let current = gatehouse(&["verify", "--cluster", "-o", "json"], Some(&config));
    assert_eq!(current.status.code(), Some(4), "{}", text(&current.stderr));
    for args in [
        vec!["verify", "--cluster", "--context", "mock", "-o", "json"],
        vec![
            "verify",
            "--cluster",
            "--kubeconfig",
            config.to_str().unwrap(),
            "--context",
            "mock",
            "-o",
            "json",
        ],
    ] {
        let kubeconfig_env = (!args.contains(&"--kubeconfig")).then_some(config.as_path());
        let out = gatehouse(&args, kubeconfig_env);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            json(&out)["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == "RBAC-003")
        );
    }
    // A context the kubeconfig does not have.
    let out = gatehouse(&["verify", "--cluster", "--context", "nope"], Some(&config));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no usable kubernetes configuration"));
}
