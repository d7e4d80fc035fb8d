//! `gatehouse up` on the quickstart, as a user runs it: the real binary, a real Envoy in the
//! sandbox, real HTTP and HTTPS, JWT and IP rules, hot reload under traffic, a broken file,
//! Envoy dying and coming back, and a clean stop. Ports are rewritten to free ones so the test
//! can run beside `make up`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

struct Ports {
    http: u16,
    https: u16,
    echo_a: u16,
    echo_b: u16,
    xds: u16,
    admin: u16,
}

/// The quickstart, copied with its ports replaced.
fn quickstart_copy(dst: &Path, p: &Ports) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    copy_dir(&src, dst);
    for entry in std::fs::read_dir(dst).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("port: 8080", &format!("port: {}", p.http))
                .replace("port: 8443", &format!("port: {}", p.https))
                .replace("port: 9081", &format!("port: {}", p.echo_a))
                .replace("port: 9082", &format!("port: {}", p.echo_b));
            std::fs::write(&path, text).unwrap();
        }
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

fn echo(port: u16, name: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "echo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--name",
                name,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn envoy_pid(state: &Path) -> Option<u32> {
    std::fs::read_to_string(state.join("envoy/quickstart_edge/envoy.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or("")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatehouse_up_serves_the_quickstart_from_a_sandboxed_envoy() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Ports {
        http: free_port(),
        https: free_port(),
        echo_a: free_port(),
        echo_b: free_port(),
        xds: free_port(),
        admin: free_port(),
    };
    let config = tmp.path().join("quickstart");
    quickstart_copy(&config, &p);
    let state: PathBuf = tmp.path().join("state");
    let _a = echo(p.echo_a, "echo-a");
    let _b = echo(p.echo_b, "echo-b");
    let log = tmp.path().join("up.log");
    let mut up = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "up",
                config.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
            ])
            .args([
                "--xds-port",
                &p.xds.to_string(),
                "--admin-port",
                &p.admin.to_string(),
            ])
            .env("GATEHOUSE_ENVOY", envoy_bin())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let http = client();
    let base = format!("http://127.0.0.1:{}", p.http);
    let up_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let envoy_log = || {
        std::fs::read_to_string(state.join("envoy/quickstart_edge/envoy.log")).unwrap_or_default()
    };
    assert!(
        wait_for_status(&http, &format!("{base}/a"), 200, Duration::from_secs(40))
            .await
            .is_some(),
        "the quickstart is not served.\nup:\n{}\nenvoy:\n{}",
        up_log(),
        envoy_log()
    );
    assert!(up_log().contains("gatehouse is up"), "{}", up_log());

    // Path and header routing to the two services.
    let body = |r: Option<(u16, String)>| {
        r.map(|(s, b)| {
            (
                s,
                serde_json::from_str::<serde_json::Value>(&b)
                    .ok()
                    .map(|v| v["service"].as_str().unwrap_or_default().to_owned()),
            )
        })
    };
    assert_eq!(
        body(get(&http, &format!("{base}/a")).await),
        Some((200, Some("echo-a".into())))
    );
    assert_eq!(
        body(get(&http, &format!("{base}/b/deeper")).await),
        Some((200, Some("echo-b".into())))
    );
    assert_eq!(
        body(get(&http, &format!("{base}/app")).await),
        Some((200, Some("echo-a".into())))
    );
    let v2 = get_with(&http, &format!("{base}/app"), &[("x-version", "v2")])
        .await
        .unwrap();
    assert_eq!(v2.0, 200);
    let v2: serde_json::Value = serde_json::from_str(&v2.1).unwrap();
    assert_eq!(
        (
            v2["service"].as_str(),
            v2["headers"]["x-routed-by"].as_str()
        ),
        (Some("echo-b"), Some("gatehouse"))
    );
    assert_eq!(
        get(&http, &format!("{base}/nothing-here")).await.unwrap().0,
        404
    );
    assert_eq!(get(&http, &format!("{base}/old")).await.unwrap().0, 301);

    // JWT: no token, expired, wrong issuer: 401; the sample token: 200 with the subject forwarded.
    let token = |f: &str| {
        std::fs::read_to_string(config.join("jwt").join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(get(&http, &format!("{base}/api")).await.unwrap().0, 401);
    for bad in ["token-expired.jwt", "token-wrong-issuer.jwt"] {
        let auth = format!("Bearer {}", token(bad));
        assert_eq!(
            get_with(&http, &format!("{base}/api"), &[("authorization", &auth)])
                .await
                .unwrap()
                .0,
            401,
            "{bad}"
        );
    }
    let auth = format!("Bearer {}", token("token.jwt"));
    let ok = get_with(&http, &format!("{base}/api"), &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(ok.0, 200);
    let ok: serde_json::Value = serde_json::from_str(&ok.1).unwrap();
    assert_eq!(ok["headers"]["x-user"], "alice");

    // The IP rule: 127.0.0.1 is not in 10.0.0.0/8.
    assert_eq!(
        get(&http, &format!("{base}/internal")).await.unwrap().0,
        403
    );

    // HTTPS with SNI.
    let ca = std::fs::read(config.join("quickstart-ca.crt")).unwrap();
    let (status, body) = https_get(p.https, "secure.localhost", "/", &ca, None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("echo-b"));
    assert!(
        https_get(p.https, "other.localhost", "/", &ca, None)
            .await
            .is_err(),
        "no certificate for another name"
    );

    // The sandbox, as the host sees it.
    let pid = envoy_pid(&state).expect("envoy.pid");
    let st = proc_status(pid);
    if is_root() {
        assert_eq!(
            field(&st, "Uid:").split_whitespace().collect::<Vec<_>>(),
            ["65532"; 4],
            "{st}"
        );
        assert_eq!(
            field(&st, "Gid:").split_whitespace().collect::<Vec<_>>(),
            ["65532"; 4],
            "{st}"
        );
        for cap in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
            assert_eq!(field(&st, cap), "0000000000000000", "{cap} {st}");
        }
        let violations = gatehouse_hardening::sandbox::inspect_process(pid)
            .unwrap()
            .violations();
        assert!(violations.is_empty(), "{violations:?}");
        // Its user cannot write outside its tmpfs, seen from inside its mount namespace.
        for target in [
            "/etc/gatehouse-test",
            "/gatehouse-test",
            state.join("pki/x").to_str().unwrap(),
        ] {
            let out = Command::new("nsenter")
                .args([
                    "-t",
                    &pid.to_string(),
                    "-m",
                    "--",
                    "setpriv",
                    "--reuid=65532",
                    "--regid=65532",
                    "--clear-groups",
                    "sh",
                    "-c",
                ])
                .arg(format!("echo x > '{target}'"))
                .output()
                .unwrap();
            assert!(!out.status.success(), "{target} was writable");
        }
        // The CA key is not even visible to it.
        let out = Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-m",
                "--",
                "setpriv",
                "--reuid=65532",
                "--regid=65532",
                "--clear-groups",
                "cat",
            ])
            .arg(state.join("pki/ca/ca.key"))
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
    assert_eq!(field(&st, "NoNewPrivs:"), "1");

    // Hot reload under traffic: a new route is served within seconds; unchanged routes see
    // no errors.
    let load = Load::start(p.http, &["/a", "/b"]);
    assert_eq!(get(&http, &format!("{base}/c")).await.unwrap().0, 404);
    let routes = config.join("20-routes.yaml");
    let text = std::fs::read_to_string(&routes).unwrap();
    let added = text.replace(
        "  # An old path, redirected.",
        "  - matches:\n    - path: {type: PathPrefix, value: /c}\n    backendRefs:\n    - {group: gatehouse.dev, kind: Backend, name: echo-a}\n  # An old path, redirected.",
    );
    std::fs::write(&routes, &added).unwrap();
    let took = wait_for_status(&http, &format!("{base}/c"), 200, Duration::from_secs(10)).await;
    assert!(took.is_some(), "edit not served.\n{}", up_log());
    println!("edited route served after {:?}", took.unwrap());

    // A broken file: traffic unchanged, the problem reported with file and line.
    std::fs::write(&routes, format!("{added}\n  - this is: [not yaml\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        get(&http, &format!("{base}/c")).await.unwrap().0,
        200,
        "the last good version stays"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["status", "--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(
        status.contains("20-routes.yaml:") && status.contains("last good version"),
        "{status}"
    );
    assert!(
        status.contains("spiffe://gatehouse.local/gateway/quickstart/edge"),
        "{status}"
    );
    std::fs::write(&routes, &added).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (total, bad, failures) = load.finish().await;
    println!(
        "requests on unchanged routes during the edit and the broken file: {total}, non-2xx: {bad}"
    );
    assert!(total > 50, "the load ran ({total})");
    assert_eq!(bad, 0, "{failures:?}");

    // Envoy dies: it is restarted, and serves again.
    let old = envoy_pid(&state).unwrap();
    Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status()
        .unwrap();
    let mut restarted = None;
    for _ in 0..100 {
        if let Some(new) = envoy_pid(&state).filter(|n| *n != old) {
            restarted = Some(new);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        restarted.is_some(),
        "Envoy was not restarted.\n{}",
        up_log()
    );
    let back = wait_for_status(&http, &format!("{base}/c"), 200, Duration::from_secs(20)).await;
    assert!(back.is_some(), "{}", up_log());
    println!(
        "Envoy killed and serving again (with the edited routes) after {:?}",
        back.unwrap()
    );

    // Ctrl-C: both stop, cleanly.
    let envoy = envoy_pid(&state).unwrap();
    Command::new("kill")
        .args(["-INT", &up.0.id().to_string()])
        .status()
        .unwrap();
    let mut code = None;
    for _ in 0..150 {
        if let Some(s) = up.0.try_wait().unwrap() {
            code = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        code.is_some_and(|c| c.success()),
        "up did not stop cleanly: {code:?}\n{}",
        up_log()
    );
    assert!(
        !Path::new(&format!("/proc/{envoy}")).exists() || proc_status(envoy).is_empty(),
        "Envoy still running"
    );
}

/// Requests `paths` in a loop until stopped; counts and keeps answers that are not 2xx.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(u64, Vec<String>)>,
}

impl Load {
    fn start(port: u16, paths: &'static [&'static str]) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let c = client();
            let (mut total, mut failures) = (0, Vec::new());
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                for path in paths {
                    let r = get(&c, &format!("http://127.0.0.1:{port}{path}")).await;
                    total += 1;
                    if !matches!(r, Some((200..=299, _))) {
                        failures.push(format!("{path}: {:?}", r.map(|(s, _)| s)));
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (total, failures)
        });
        Self { stop, task }
    }

    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (total, failures) = self.task.await.unwrap();
        (total, failures.len() as u64, failures)
    }
}
