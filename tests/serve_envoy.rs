//! `gatehouse serve` and `gatehouse bootstrap` as a user runs them: a real Envoy connects to the
//! served control plane over mTLS, and the server stops cleanly on SIGTERM.

mod support;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gatehouse(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gatehouse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn envoy_connects_to_gatehouse_serve_over_mtls() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    let p = |s: &std::path::Path| s.to_str().unwrap().to_owned();
    gatehouse(&["certs", "init", "--dir", &p(&pki)]);
    gatehouse(&[
        "certs",
        "issue",
        "--dir",
        &p(&pki),
        "--gateway",
        "edge/public",
    ]);
    let port = support::free_port();
    let xds = format!("127.0.0.1:{port}");
    let envoy_dir = tmp.path().join("envoy");
    std::fs::create_dir(&envoy_dir).unwrap();
    let bootstrap = envoy_dir.join("envoy.yaml");
    gatehouse(&[
        "bootstrap",
        "--gateway",
        "edge/public",
        "--xds",
        &xds,
        "--certs",
        &p(&pki.join("gateways/edge/public")),
        "--admin-port",
        &support::free_port().to_string(),
        "-o",
        &p(&bootstrap),
    ]);

    let log = tmp.path().join("serve.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--certs", &p(&pki), "--listen", &xds])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let envoy = support::Envoy::start(&bootstrap, &envoy_dir);

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("proxy connected") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        text.contains("proxy connected") && text.contains("edge/public"),
        "Envoy did not connect.\nserve log:\n{text}\nEnvoy log:\n{}",
        envoy.log_tail()
    );
    assert!(!text.contains("security event"), "{text}");
    // The serving certificate was issued into the store, with the default SANs.
    assert!(pki.join("controller/cert.pem").exists());

    // SIGTERM: the server ends its streams and exits 0.
    assert!(
        Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = serve.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut rest = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut rest)
        .unwrap();
    assert!(rest.contains("xds server stopped"), "{rest}");
    // No key material in the log.
    assert!(!rest.contains("PRIVATE KEY"));
    drop(envoy);
}
