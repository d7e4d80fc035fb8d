//! `gatehouse verify` as a user runs it: the real binary, exit codes 0/1/2/3/4 (the same for
//! every output format), the rendered profiles with no argument and with explicit inputs,
//! the known-bad fixtures, stdin, suppressions, certificates made by `gatehouse certs`,
//! `list` and `explain`, and no colour outside a terminal or under NO_COLOR. JUnit output is
//! judged by Python's XML parser.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    format!("hardening/tests/fixtures/verify/{name}")
}

fn gatehouse_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("run gatehouse")
}

fn gatehouse(args: &[&str]) -> Output {
    gatehouse_in(&root(), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn ids(report: &serde_json::Value, severity: Option<&str>) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["suppression"].is_null() || f["suppression"]["expired"] == true)
        .filter(|f| severity.is_none_or(|s| f["severity"] == s))
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn with_no_argument_in_the_checkout_the_rendered_profiles_pass() {
    let out = gatehouse(&["verify"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}\n{}", text(&out.stderr));
    for input in [
        "deploy/profiles/kubernetes-hardened/03-clusterroles.yaml: 1 Kubernetes object",
        "deploy/profiles/standalone/envoy/envoy.yaml: Envoy bootstrap",
        "deploy/profiles/standalone/gatehouse-envoy.service: systemd unit",
        "deploy/profiles/standalone/gatehouse-controller.service: systemd unit",
    ] {
        assert!(stdout.contains(input), "{input}:\n{stdout}");
    }
    assert!(stdout.contains("\nrbac\n----\n✔ [RBAC-001]"), "{stdout}");
    assert!(stdout.contains(" 0 failed · "), "{stdout}");
    assert!(
        stdout.contains(
            "Status: ‼ passed with findings below the threshold (--fail-on error) → exit 0"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    // From a subdirectory of the checkout too.
    let out = gatehouse_in(&root().join("docs"), &["verify", "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json(&out)["summary"]["failed"], 0);
}

#[test]
fn the_profiles_given_explicitly_pass_in_every_format() {
    let mut args = vec![
        "verify",
        "-f",
        "deploy/profiles/kubernetes-hardened",
        "--envoy-bootstrap",
        "deploy/profiles/standalone/envoy/envoy.yaml",
        "--unit",
    ];
    let units = [
        "deploy/profiles/standalone/gatehouse-controller.service",
        "deploy/profiles/standalone/gatehouse-envoy-certs.service",
        "deploy/profiles/standalone/gatehouse-envoy.service",
    ];
    args.extend(units);
    for format in ["table", "json", "sarif", "junit"] {
        let mut a = args.clone();
        a.extend(["-o", format]);
        let out = gatehouse(&a);
        assert_eq!(
            code(&out),
            0,
            "{format}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let mut a = args.clone();
    a.extend(["-o", "json"]);
    let report = json(&gatehouse(&a));
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["status"], "passed");
    assert_eq!(ids(&report, Some("error")), BTreeSet::new());
    // The same run with --fail-on warning fails, in every format, with the same code.
    for format in ["table", "json", "sarif", "junit"] {
        let mut a = args.clone();
        a.extend(["-o", format, "--fail-on", "warning"]);
        assert_eq!(code(&gatehouse(&a)), 1, "{format}");
    }
}

#[test]
fn known_bad_fixtures_exit_1_with_their_ids_in_every_format() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "gateway-colocated-with-control-plane.yaml",
            &["-f"],
            &["POD-028", "RBAC-003", "RBAC-001"],
        ),
        (
            "envoy-root-with-token.yaml",
            &["-f"],
            &["RBAC-026", "POD-015", "POD-016", "ENVOY-008"],
        ),
        ("aggregated-clusterrole.yaml", &["-f"], &["RBAC-003"]),
        (
            "data-plane-bound-through-group.yaml",
            &["-f"],
            &["RBAC-024", "RBAC-025"],
        ),
        (
            "envoy-unsandboxed.service",
            &["--unit"],
            &["UNIT-001", "UNIT-003", "UNIT-004", "UNIT-005"],
        ),
        (
            "envoy-open-bootstrap.yaml",
            &["--envoy-bootstrap"],
            &["ENVOY-001", "ENVOY-003"],
        ),
        (
            "envoy-tls12-unpinned-bootstrap.yaml",
            &["--envoy-bootstrap"],
            &["ENVOY-004", "ENVOY-006"],
        ),
    ];
    let mut rows: Vec<(String, Vec<&str>, Vec<String>)> = cases
        .iter()
        .map(|(f, flag, want)| {
            (
                fixture(f),
                flag.to_vec(),
                want.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect();
    for row in 1..=23 {
        rows.push((
            fixture(&format!("rbac-rows/row-{row:02}.yaml")),
            vec!["-f"],
            vec![format!("RBAC-{row:03}")],
        ));
    }
    for (file, flag, want) in &rows {
        let mut args = vec!["verify"];
        args.extend(flag.iter().copied());
        args.push(file);
        let mut a = args.clone();
        a.extend(["-o", "json"]);
        let out = gatehouse(&a);
        assert_eq!(code(&out), 1, "{file}: {}", text(&out.stderr));
        let report = json(&out);
        let errors = ids(&report, Some("error"));
        for id in want {
            assert!(errors.contains(id), "{file}: {id} not in {errors:?}");
        }
        assert_eq!(report["exitCode"], 1);
        for f in report["findings"].as_array().unwrap() {
            let location = &f["location"];
            assert_eq!(location["file"], file.as_str(), "{f}");
            assert!(location["line"].as_u64().unwrap() >= 1, "{f}");
            assert!(!f["why"].as_str().unwrap().is_empty());
            assert!(!f["fix"].as_str().unwrap().is_empty());
        }
        for format in ["table", "sarif", "junit"] {
            let mut a = args.clone();
            a.extend(["-o", format]);
            let out = gatehouse(&a);
            assert_eq!(code(&out), 1, "{file} -o {format}");
            let stdout = text(&out.stdout);
            for id in want {
                assert!(stdout.contains(id.as_str()), "{file} -o {format}: {id}");
            }
        }
        let mut a = args.clone();
        a.extend(["--fail-on", "never"]);
        assert_eq!(code(&gatehouse(&a)), 0, "{file} --fail-on never");
    }
}

#[test]
fn the_table_names_file_line_why_fix_and_explain() {
    let file = fixture("rbac-rows/row-05.yaml");
    let out = gatehouse(&["verify", "-f", &file]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 1);
    assert!(
        stdout.contains("✘ [RBAC-005] no role can exec into pods (pods/exec)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ClusterRole/row-05-role  {file}:18")),
        "{stdout}"
    );
    assert!(
        stdout.contains("    why  pods/exec runs commands in other pods"),
        "{stdout}"
    );
    assert!(stdout.contains("    fix  Remove pods/exec"), "{stdout}");
    assert!(
        stdout.contains("    see  gatehouse verify explain RBAC-005"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Status: ✘ failed (--fail-on error) → exit 1"),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'));
    // --color always colours, but never under NO_COLOR.
    let coloured = gatehouse(&["verify", "-f", &file, "--color", "always"]);
    assert!(text(&coloured.stdout).contains("\x1b[1;31m✘\x1b[0m"));
    let no_color = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["verify", "-f", &file, "--color", "always"])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!text(&no_color.stdout).contains('\x1b'));
    assert_eq!(code(&no_color), 1);
}

#[test]
fn stdin_is_read_with_dash() {
    let yaml = std::fs::read(root().join(fixture("rbac-rows/row-11.yaml"))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["verify", "-f", "-", "-o", "json"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&yaml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(
        ids(&report, Some("error")),
        BTreeSet::from(["RBAC-011".to_owned()])
    );
    assert_eq!(report["findings"][0]["location"]["file"], "<stdin>");
}

#[test]
fn usage_errors_exit_2() {
    for (args, wanted) in [
        // The kubeconfig flags only go with --cluster.
        (vec!["verify", "-n", "gatehouse-gateways"], "--cluster"),
        (
            vec!["verify", "--kubeconfig", "kubeconfig.yaml"],
            "--cluster",
        ),
        (
            vec!["verify", "explain", "RBAC-999"],
            "unknown check id `RBAC-999`",
        ),
        (vec!["verify", "-o", "yaml"], "invalid value 'yaml'"),
        (vec!["verify", "--manifest", "x"], "--signature-key"),
        (
            vec!["verify", "--fail-on", "sometimes"],
            "invalid value 'sometimes'",
        ),
        (
            vec!["verify", "-f", "-", "-f", "-"],
            "`-f -` (stdin) may be given once",
        ),
    ] {
        let out = gatehouse(&args);
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Nothing to verify outside a checkout.
    let dir = tempfile::tempdir().unwrap();
    let out = gatehouse_in(dir.path(), &["verify"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).starts_with("error: nothing to verify"));
}

#[test]
fn unparsable_input_exits_3_and_unreadable_input_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: Role\napiVersion: v1\nrules:\n- verbs: [get\n").unwrap();
    let bad = bad.to_str().unwrap();
    for format in ["table", "json", "sarif", "junit"] {
        let out = gatehouse(&["verify", "-f", bad, "-o", format]);
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 3, "{format}: {stderr}");
        assert!(stderr.starts_with(&format!("error: {bad}:")), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let suppressions = dir.path().join("s.yaml");
    std::fs::write(&suppressions, "- id: RBAC-001\n  target: x\n  reason: y\n").unwrap();
    let out = gatehouse(&[
        "verify",
        "-f",
        &fixture("rbac-rows/row-01.yaml"),
        "--suppressions",
        suppressions.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3);
    assert!(
        text(&out.stderr)
            .contains("a suppression needs id, target, reason and expires; `expires` is missing"),
        "{}",
        text(&out.stderr)
    );
    for args in [
        vec!["verify", "-f", "/nonexistent/manifests"],
        vec!["verify", "--process", "4294967000"],
        vec!["verify", "--certs", "/nonexistent/pki"],
        vec!["verify", "--unit", "/nonexistent/x.service"],
    ] {
        for format in ["table", "json"] {
            let mut a = args.clone();
            a.extend(["-o", format]);
            let out = gatehouse(&a);
            assert_eq!(code(&out), 4, "{a:?}: {}", text(&out.stderr));
            assert!(text(&out.stderr).starts_with("error: could not evaluate"));
        }
    }
}

#[test]
fn suppressions_from_a_file_and_their_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("suppressions.yaml");
    let write = |expires: &str| {
        std::fs::write(
            &file,
            format!(
                "suppressions:\n- id: RBAC-005\n  target: ClusterRole/row-05-role\n  reason: reviewed break-glass role (ticket 42)\n  expires: {expires}\n"
            ),
        )
        .unwrap();
    };
    let args = |format: &'static str| {
        vec![
            "verify".to_owned(),
            "-f".to_owned(),
            fixture("rbac-rows/row-05.yaml"),
            "--suppressions".to_owned(),
            file.to_str().unwrap().to_owned(),
            "-o".to_owned(),
            format.to_owned(),
        ]
    };
    write("2999-01-01");
    let out = gatehouse(&args("json").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["summary"]["suppressed"], 1);
    assert_eq!(report["findings"][0]["suppression"]["expired"], false);
    let sarif = json(&gatehouse(
        &args("sarif").iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["suppressions"][0]["kind"], "external");
    assert_eq!(result["suppressions"][0]["status"], "accepted");

    write("2001-01-01");
    let out = gatehouse(&args("table").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&out), 1);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("suppression expired on 2001-01-01 (reviewed break-glass role (ticket 42)"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("warning: the suppression of RBAC-005 ClusterRole/row-05-role"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn certificates_made_by_gatehouse_certs_pass_until_a_key_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki_s = pki.to_str().unwrap();
    for args in [
        vec!["certs", "init", "--dir", pki_s],
        vec!["certs", "issue", "--dir", pki_s, "--controller"],
        vec!["certs", "issue", "--dir", pki_s, "--gateway", "gw/edge"],
    ] {
        let out = gatehouse(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
    }
    let out = gatehouse(&["verify", "--certs", pki_s, "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    let report = json(&out);
    assert_eq!(report["summary"]["checks"], 8);
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);

    use std::os::unix::fs::PermissionsExt as _;
    let key = std::fs::canonicalize(pki.join("gateways/gw/edge/key.pem")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = gatehouse(&[
        "verify",
        "--certs",
        pki_s,
        "--cert-max-lifetime",
        "1h",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 1);
    let report = json(&out);
    assert_eq!(
        ids(&report, None),
        BTreeSet::from(["CERT-003".to_owned(), "CERT-007".to_owned()])
    );
}

#[test]
fn junit_is_well_formed_xml_with_one_case_per_check() {
    let out = gatehouse(&[
        "verify",
        "-f",
        &fixture("gateway-colocated-with-control-plane.yaml"),
        "-o",
        "junit",
    ]);
    assert_eq!(code(&out), 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    std::fs::write(&file, &out.stdout).unwrap();
    let script = "import sys, xml.etree.ElementTree as ET\n\
        root = ET.parse(sys.argv[1]).getroot()\n\
        assert root.tag == 'testsuites', root.tag\n\
        cases = root.findall('./testsuite/testcase')\n\
        failed = [c.get('name').split()[0] for c in cases if c.find('failure') is not None]\n\
        print(len(cases), root.get('tests'), root.get('failures'), ' '.join(failed))\n";
    let py = Command::new("python3")
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .expect("python3 (the XML judge) must be installed");
    assert!(py.status.success(), "{}", text(&py.stderr));
    let line = text(&py.stdout);
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        parts[0], parts[1],
        "testcase count = tests attribute: {line}"
    );
    let failed: BTreeSet<&str> = parts[3..].iter().copied().collect();
    assert_eq!(parts[2].parse::<usize>().unwrap(), failed.len());
    for id in ["POD-028", "RBAC-001", "RBAC-003"] {
        assert!(failed.contains(id), "{id}: {line}");
    }
}

#[test]
fn list_and_explain_work_offline() {
    let out = gatehouse(&["verify", "list"]);
    assert_eq!(code(&out), 0);
    let stdout = text(&out.stdout);
    for id in [
        "RBAC-001",
        "RBAC-023",
        "POD-028",
        "ENVOY-008",
        "CERT-007",
        "UNIT-014",
        "SIG-004",
        "PROC-005",
    ] {
        assert!(stdout.contains(id), "{id}");
    }
    let list = json(&gatehouse(&["verify", "list", "-o", "json"]));
    assert_eq!(list["schemaVersion"], 1);
    assert!(list["checks"].as_array().unwrap().len() >= 100);
    // docs/verify.md documents every check, with the anchor SARIF's helpUri points at.
    let docs = std::fs::read_to_string(root().join("docs/verify.md")).unwrap();
    for check in list["checks"].as_array().unwrap() {
        let id = check["id"].as_str().unwrap();
        assert!(
            docs.contains(&format!("<a id=\"{}\"></a>`{id}`", id.to_ascii_lowercase())),
            "docs/verify.md does not document {id}"
        );
    }
    let out = gatehouse(&["verify", "explain", "rbac-003"]);
    assert_eq!(code(&out), 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("RBAC-003  error  rbac\nno ClusterRole reads Secrets"),
        "{stdout}"
    );
    assert!(stdout.contains("Why it matters") && stdout.contains("How to fix it"));
}
