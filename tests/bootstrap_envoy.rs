//! End-to-end tests of `gatehouse bootstrap`: a real PKI from `gatehouse certs`, the real binary,
//! and the real Envoy (`envoy --mode validate`, and once a running Envoy) as the judge.
//!
//! Envoy comes from `GATEHOUSE_ENVOY`, else `.venv/bin/envoy` (installed by `make deps`). A missing
//! Envoy fails these tests: it is not a reason to skip them.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const XDS: &str = "127.0.0.1:18000";

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
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with `code`; returns its stderr.
fn fails(code: i32, args: &[&str]) -> String {
    let out = gatehouse(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "gatehouse {args:?} should fail"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    String::from_utf8(out.stderr).unwrap()
}

/// Runs a command that must fail as a command (exit 1) with a one-line error.
fn fails_one_line(args: &[&str]) -> String {
    let err = fails(1, args);
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn envoy() -> PathBuf {
    let path = std::env::var_os("GATEHOUSE_ENVOY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/envoy"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "Envoy not found at `{}`: run `make deps` (or set GATEHOUSE_ENVOY to an Envoy 1.40 binary)",
        path.display()
    );
    path
}

/// A CA store with the certificate of gateway `edge/public`; returns (tempdir, store, the
/// gateway's certificate directory).
fn pki() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("pki");
    ok(&["certs", "init", "--dir", s(&store)]);
    ok(&[
        "certs",
        "issue",
        "--dir",
        s(&store),
        "--gateway",
        "edge/public",
    ]);
    let certs = store.join("gateways/edge/public");
    (tmp, store, certs)
}

/// `envoy --mode validate -c FILE`. Ok with Envoy's output when it exits 0, says OK, and logs no
/// warning or error. Validate mode exits 0 even when it rejects a file-based SDS resource (it
/// only logs a warning), so the log is part of the verdict.
fn validate(config: &Path) -> Result<String, String> {
    let out = Command::new(envoy())
        .args(["--mode", "validate", "-c", s(config)])
        .output()
        .expect("run envoy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("exit {:?}: {text}", out.status.code()));
    }
    if !text.contains(&format!("configuration '{}' OK", config.display())) {
        return Err(format!("no OK: {text}"));
    }
    if let Some(line) = text.lines().find(|l| {
        ["][warning][", "][error][", "][critical]["]
            .iter()
            .any(|level| l.contains(level))
    }) {
        return Err(format!("logged `{line}`:\n{text}"));
    }
    Ok(text)
}

/// Renders with `-o OUT/envoy.yaml` and the extra flags; checks the three files; returns the
/// bootstrap's path and text.
fn render(out_dir: &Path, certs: &Path, xds: &str, extra: &[&str]) -> (PathBuf, String) {
    let file = out_dir.join("envoy.yaml");
    let mut args = vec![
        "bootstrap",
        "--gateway",
        "edge/public",
        "--xds",
        xds,
        "--certs",
        s(certs),
        "-o",
        s(&file),
    ];
    args.extend_from_slice(extra);
    let stdout = ok(&args);
    assert!(stdout.contains(s(&file)), "{stdout}");
    for name in [
        "envoy.yaml",
        "xds-client-certificate.sds.yaml",
        "xds-trust-bundle.sds.yaml",
    ] {
        let meta = std::fs::metadata(out_dir.join(name)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644, "{name}");
    }
    // Nothing left behind by the atomic writes.
    let entries: Vec<_> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries.len(), 3, "{entries:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    (file, text)
}

fn assert_valid(file: &Path, text: &str) {
    if let Err(e) = validate(file) {
        panic!(
            "Envoy rejects the bootstrap: {e}\n--- {}\n{text}",
            file.display()
        );
    }
}

#[test]
fn bootstrap_passes_envoy_validation() {
    let (tmp, _store, certs) = pki();
    let out = tmp.path().join("out");
    let (file, text) = render(&out, &certs, XDS, &[]);
    assert_valid(&file, &text);

    // What the file says, as Envoy reads it.
    for needle in [
        "id: spiffe://gatehouse.local/gateway/edge/public",
        "cluster: edge/public",
        "api_type: DELTA_GRPC",
        "tls_minimum_protocol_version: TLSv1_3",
        "tls_maximum_protocol_version: TLSv1_3",
        "exact: spiffe://gatehouse.local/controller",
        "type: STATIC",
        "port_value: 19000",
    ] {
        assert!(text.contains(needle), "missing `{needle}`:\n{text}");
    }
    assert!(!text.contains("sni:"), "no SNI for an IP:\n{text}");
    assert!(!text.contains("0.0.0.0"), "{text}");
    assert!(text.contains(&format!(
        "path: {}",
        out.join("xds-client-certificate.sds.yaml").display()
    )));
    let sds = std::fs::read_to_string(out.join("xds-client-certificate.sds.yaml")).unwrap();
    assert!(sds.contains(&format!("filename: {}/key.pem", certs.display())));
    let sds = std::fs::read_to_string(out.join("xds-trust-bundle.sds.yaml")).unwrap();
    assert!(sds.contains(&format!("filename: {}/ca.pem", certs.display())));
}

#[test]
fn sotw_passes_envoy_validation() {
    let (tmp, _store, certs) = pki();
    let (file, text) = render(&tmp.path().join("out"), &certs, XDS, &["--sotw"]);
    assert!(text.contains("api_type: GRPC\n"), "{text}");
    assert_valid(&file, &text);
}

#[test]
fn admin_socket_passes_envoy_validation() {
    let (tmp, _store, certs) = pki();
    let sock = tmp.path().join("admin.sock");
    let (file, text) = render(
        &tmp.path().join("out"),
        &certs,
        XDS,
        &["--admin-socket", s(&sock)],
    );
    assert!(
        text.contains(&format!("path: {}", sock.display())),
        "{text}"
    );
    assert!(text.contains("mode: 384"), "0600:\n{text}");
    assert!(!text.contains("socket_address:\n      address"), "{text}");
    assert_valid(&file, &text);
}

#[test]
fn no_admin_passes_envoy_validation() {
    let (tmp, _store, certs) = pki();
    let (file, text) = render(&tmp.path().join("out"), &certs, XDS, &["--no-admin"]);
    assert!(!text.contains("admin:"), "{text}");
    assert_valid(&file, &text);
}

#[test]
fn dns_host_passes_envoy_validation() {
    let (tmp, _store, certs) = pki();
    let (file, text) = render(&tmp.path().join("out"), &certs, "localhost:18000", &[]);
    assert!(text.contains("type: STRICT_DNS"), "{text}");
    assert!(text.contains("sni: localhost"), "{text}");
    assert_valid(&file, &text);
}

#[test]
fn limits_and_trust_domain_pass_envoy_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("pki");
    ok(&[
        "certs",
        "init",
        "--dir",
        s(&store),
        "--trust-domain",
        "prod.example",
    ]);
    ok(&[
        "certs",
        "issue",
        "--dir",
        s(&store),
        "--gateway",
        "edge/public",
    ]);
    let (file, text) = render(
        &tmp.path().join("out"),
        &store.join("gateways/edge/public"),
        "[::1]:18443",
        &[
            "--trust-domain",
            "prod.example",
            "--max-heap",
            "512MiB",
            "--max-connections",
            "1000",
            "--admin-port",
            "9901",
        ],
    );
    for needle in [
        "id: spiffe://prod.example/gateway/edge/public",
        "exact: spiffe://prod.example/controller",
        "max_heap_size_bytes: 536870912",
        "max_active_downstream_connections: 1000",
        "port_value: 9901",
        "port_value: 18443",
    ] {
        assert!(text.contains(needle), "missing `{needle}`:\n{text}");
    }
    assert_valid(&file, &text);
}

#[test]
fn stdout_is_the_same_bootstrap_byte_for_byte() {
    let (tmp, _store, certs) = pki();
    let out = tmp.path().join("out");
    let (file, text) = render(&out, &certs, XDS, &[]);
    let args = [
        "bootstrap",
        "--gateway",
        "edge/public",
        "--xds",
        XDS,
        "--certs",
        s(&certs),
        "--sds-dir",
        s(&out),
    ];
    let printed = ok(&args);
    assert_eq!(printed, text);
    assert_eq!(ok(&args), printed, "deterministic");
    // Rendering again over the same files replaces them with the same bytes.
    render(&out, &certs, XDS, &[]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // Without -o, --sds-dir is required (a usage error).
    let err = fails(
        2,
        &[
            "bootstrap",
            "--gateway",
            "edge/public",
            "--xds",
            XDS,
            "--certs",
            s(&certs),
        ],
    );
    assert!(err.contains("--sds-dir"), "{err}");
}

#[test]
fn a_broken_field_fails_envoy_validation() {
    let (tmp, _store, certs) = pki();
    let (file, text) = render(&tmp.path().join("out"), &certs, XDS, &[]);
    assert_valid(&file, &text);
    let broken = text.replace(
        "tls_maximum_protocol_version",
        "tls_maximum_protocol_versionn",
    );
    assert_ne!(broken, text);
    let bad = file.with_file_name("broken.yaml");
    std::fs::write(&bad, broken).unwrap();
    let err = validate(&bad).unwrap_err();
    assert!(err.contains("exit Some(1)"), "{err}");
    // Envoy's protobuf error text varies its whitespace from run to run, on purpose
    // (goo.gle/debugproto): compare with the whitespace squashed.
    let squashed = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        squashed.contains("no such field: 'tls_maximum_protocol_versionn'"),
        "{err}"
    );
}

#[test]
fn a_rejected_sds_file_fails_the_check() {
    let (tmp, _store, certs) = pki();
    let out = tmp.path().join("out");
    let (file, text) = render(&out, &certs, XDS, &[]);
    let cert_sds = out.join("xds-client-certificate.sds.yaml");
    let original = std::fs::read_to_string(&cert_sds).unwrap();

    // Both secrets in one file: Envoy's file-based SDS wants exactly one, and validate mode
    // still exits 0. This is why there are two SDS files.
    let bundle = std::fs::read_to_string(out.join("xds-trust-bundle.sds.yaml")).unwrap();
    let second = bundle.split_once("resources:\n").unwrap().1;
    std::fs::write(&cert_sds, format!("{original}{second}")).unwrap();
    let err = validate(&file).unwrap_err();
    assert!(err.contains("Unexpected SDS secrets length"), "{err}");
    assert!(err.contains("exit") || err.contains("logged"), "{err}");

    // A key file that is not there.
    std::fs::write(&cert_sds, original.replace("key.pem", "missing.pem")).unwrap();
    let err = validate(&file).unwrap_err();
    assert!(err.contains("missing.pem"), "{err}");

    std::fs::write(&cert_sds, &original).unwrap();
    assert_valid(&file, &text);
}

#[test]
fn a_certificate_of_another_identity_is_refused() {
    let (tmp, _store, certs) = pki();
    let out = tmp.path().join("out/envoy.yaml");
    let base = [
        "bootstrap",
        "--xds",
        XDS,
        "--certs",
        s(&certs),
        "-o",
        s(&out),
    ];
    let err = fails_one_line(&[&base[..], &["--gateway", "edge/private"]].concat());
    assert!(
        err.contains("has `spiffe://gatehouse.local/gateway/edge/public`, not the node id `spiffe://gatehouse.local/gateway/edge/private`"),
        "{err}"
    );
    let err = fails_one_line(
        &[
            &base[..],
            &[
                "--gateway",
                "edge/public",
                "--trust-domain",
                "other.example",
            ],
        ]
        .concat(),
    );
    assert!(
        err.contains("not the node id `spiffe://other.example/gateway/edge/public`"),
        "{err}"
    );
    assert!(
        !out.parent().unwrap().exists(),
        "nothing written on failure"
    );
}

#[test]
fn bad_input_is_a_clear_one_line_error() {
    let (tmp, _store, certs) = pki();
    let out = tmp.path().join("out");
    let run = |xds: &str, certs: &str, extra: &[&str]| {
        let file = out.join("envoy.yaml");
        let mut args = vec![
            "bootstrap",
            "--gateway",
            "edge/public",
            "--xds",
            xds,
            "--certs",
            certs,
            "-o",
            s(&file),
        ];
        args.extend_from_slice(extra);
        fails_one_line(&args)
    };
    let err = run("127.0.0.1", s(&certs), &[]);
    assert!(
        err.contains("invalid xDS address `127.0.0.1`: there is no `:PORT`"),
        "{err}"
    );
    let err = run("xds.example.com:99999", s(&certs), &[]);
    assert!(err.contains("the port is above 65535"), "{err}");
    let err = run(XDS, "pki/gateways/edge/public", &[]);
    assert!(err.contains("is not an absolute path"), "{err}");
    let err = run(XDS, s(&certs), &["--max-heap", "1024"]);
    assert!(err.contains("1 GiB is 1073741824"), "{err}");
    let err = run(XDS, s(&certs), &["--admin-socket", "admin.sock"]);
    assert!(
        err.contains("`admin.sock` is not an absolute path"),
        "{err}"
    );

    // -o must name a file, not an existing directory.
    std::fs::create_dir_all(&out).unwrap();
    let err = fails_one_line(&[
        "bootstrap",
        "--gateway",
        "edge/public",
        "--xds",
        XDS,
        "--certs",
        s(&certs),
        "-o",
        s(&out),
    ]);
    assert!(err.contains("is a directory"), "{err}");

    // Admin choices exclude each other (usage error).
    let err = fails(
        2,
        &[
            "bootstrap",
            "--gateway",
            "edge/public",
            "--xds",
            XDS,
            "--certs",
            s(&certs),
            "--sds-dir",
            s(&out),
            "--no-admin",
            "--admin-port",
            "9901",
        ],
    );
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn certificates_absent_here_are_a_warning_only() {
    // The directory is where Envoy will see it, e.g. inside its container.
    let out = ok(&[
        "bootstrap",
        "--gateway",
        "edge/public",
        "--xds",
        XDS,
        "--certs",
        "/nonexistent/gatehouse/certs",
        "--sds-dir",
        "/etc/envoy",
    ]);
    assert!(
        out.contains("path: /etc/envoy/xds-trust-bundle.sds.yaml"),
        "{out}"
    );
    let err = String::from_utf8(
        gatehouse(&[
            "bootstrap",
            "--gateway",
            "edge/public",
            "--xds",
            XDS,
            "--certs",
            "/nonexistent/gatehouse/certs",
            "--sds-dir",
            "/etc/envoy",
        ])
        .stderr,
    )
    .unwrap();
    assert!(
        err.contains("has no chain.pem, key.pem, ca.pem here"),
        "{err}"
    );
}

/// Kills the Envoy it holds when dropped, so a failing test leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on Envoy's admin unix socket; the raw HTTP response.
fn admin_get(sock: &Path, path: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(sock)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn leaf_serial(certs: &Path) -> String {
    let json = ok(&["certs", "inspect", "-o", "json", s(&certs.join("cert.pem"))]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v[0]["serial"].as_str().unwrap().replace(':', "")
}

/// Waits until Envoy's `/certs` shows `serial`; returns the last response on timeout.
fn wait_for_serial(sock: &Path, serial: &str, envoy: &mut Running) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(Some(status)) = envoy.0.try_wait() {
            return Err(format!("Envoy exited with {status}"));
        }
        if let Ok(r) = admin_get(sock, "/certs") {
            if r.contains(serial) {
                return Ok(());
            }
            last = r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("`{serial}` not in /certs: {last}"))
}

#[test]
fn a_running_envoy_reloads_a_reissued_certificate() {
    let (tmp, store, certs) = pki();
    let sock = tmp.path().join("admin.sock");
    // Nothing listens on the discard port: the test needs the secrets, not a control plane.
    let (file, text) = render(
        &tmp.path().join("out"),
        &certs,
        "127.0.0.1:9",
        &["--admin-socket", s(&sock)],
    );
    assert_valid(&file, &text);
    let log = tmp.path().join("envoy.log");
    let base_id = 20_000 + std::process::id() % 10_000;
    let mut envoy = Running(
        Command::new(envoy())
            .args(["-c", s(&file), "--base-id", &base_id.to_string()])
            .args(["--log-path", s(&log)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start envoy"),
    );
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    let first = leaf_serial(&certs);
    if let Err(e) = wait_for_serial(&sock, &first, &mut envoy) {
        panic!("Envoy did not load the client certificate: {e}\n{}", logs());
    }
    // `certs issue` swaps the directory's `..data` link: Envoy must follow without a restart.
    ok(&[
        "certs",
        "issue",
        "--dir",
        s(&store),
        "--gateway",
        "edge/public",
    ]);
    let second = leaf_serial(&certs);
    assert_ne!(first, second);
    if let Err(e) = wait_for_serial(&sock, &second, &mut envoy) {
        panic!(
            "Envoy did not reload the reissued certificate: {e}\n{}",
            logs()
        );
    }
    assert!(envoy.0.try_wait().unwrap().is_none(), "Envoy still runs");
}
