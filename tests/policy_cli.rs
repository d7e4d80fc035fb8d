//! `gatehouse policy` as a user runs it: the library's own test cases, `check` on the
//! quickstart (and on it with a violating route), `validate` diagnostics, `fmt`, `explain`,
//! and a policy that errors at evaluation time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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

fn library_ids() -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(root().join("policies/library"))
        .unwrap()
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "cedar") {
            let t = std::fs::read_to_string(e.path()).unwrap();
            for l in t.lines() {
                if let Some(id) = l.strip_prefix("@id(\"").and_then(|r| r.strip_suffix("\")")) {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    ids.sort();
    ids
}

#[test]
fn every_library_policy_has_passing_allow_and_deny_cases() {
    let lib = root().join("policies/library");
    let out = gatehouse(&["policy", "test", lib.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failed"], 0, "{v:#}");
    let cases: Vec<(String, &serde_json::Value)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            let file = f["file"].as_str().unwrap().to_owned();
            f["cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |c| (file.clone(), c))
        })
        .collect();
    for id in library_ids() {
        let deny = cases.iter().any(|(_, c)| {
            c["passed"] == true
                && c["detail"].as_str().unwrap().starts_with("deny by [")
                && c["detail"].as_str().unwrap().contains(&id)
        });
        assert!(deny, "no passing deny case names `{id}`");
        // The allow cases of the test file that holds the policy's deny case.
        let files: Vec<&String> = cases
            .iter()
            .filter(|(_, c)| c["detail"].as_str().unwrap().contains(&id))
            .map(|(f, _)| f)
            .collect();
        let allow = cases.iter().any(|(f, c)| {
            files.contains(&f)
                && c["passed"] == true
                && c["detail"].as_str().unwrap() == "allow by []"
        });
        assert!(allow, "no passing allow case beside `{id}`'s deny cases");
    }
    // The plain text run says the same.
    let out = gatehouse(&["policy", "test", lib.to_str().unwrap()]);
    let t = text(&out);
    assert!(
        out.status.success() && t.contains(" passed, 0 failed"),
        "{t}"
    );
}

#[test]
fn a_weakened_policy_fails_its_tests() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("policies/library"), tmp.path());
    let p = tmp.path().join("public-requires-authn.cedar");
    let weakened = std::fs::read_to_string(&p)
        .unwrap()
        .replace("when { resource.public }", "when { !resource.public }");
    std::fs::write(&p, weakened).unwrap();
    let out = gatehouse(&["policy", "test", tmp.path().to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAIL") && t.contains("a public route without authentication is denied"),
        "{t}"
    );
    assert!(
        t.contains("expected deny by [public-requires-authn], got allow by []"),
        "{t}"
    );
}

#[test]
fn check_on_the_quickstart_prints_the_decisions_and_exits_0() {
    let qs = root().join("examples/quickstart");
    let out = gatehouse(&["policy", "check", "-f", qs.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("OBJECT") && t.contains("DECISION") && t.contains("POLICY"),
        "{t}"
    );
    for route in ["web", "api", "internal", "secure"] {
        assert!(t.contains(&format!("HTTPRoute/quickstart/{route}")), "{t}");
    }
    assert!(t.contains(" 0 denied"), "{t}");
    let json = gatehouse(&["policy", "check", "-f", qs.to_str().unwrap(), "-o", "json"]);
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["summary"]["denied"], 0);
    let api = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"]["name"] == "api")
        .unwrap();
    assert_eq!(
        api["decision"], "allow",
        "the JWT route passes public-requires-authn"
    );
}

#[test]
fn check_with_a_violating_route_exits_1_and_names_the_policy() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/quickstart"), tmp.path());
    std::fs::write(
        tmp.path().join("40-admin.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: admin, namespace: quickstart}
spec:
  parentRefs: [{name: edge, sectionName: http}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /admin}}]
    backendRefs: [{group: gatehouse.dev, kind: Backend, name: echo-a}]
",
    )
    .unwrap();
    let out = gatehouse(&["policy", "check", "-f", tmp.path().to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let row = t
        .lines()
        .find(|l| l.starts_with("HTTPRoute/quickstart/admin"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(row.contains("deny"), "{row}");
    assert!(t.contains("no-sensitive-paths-public"), "{t}");
    assert!(t.contains("exposePath `/admin`"), "{t}");
    assert!(t.contains(" 1 denied"), "{t}");

    // `explain` says which claim and which policy.
    let out = gatehouse(&[
        "policy",
        "explain",
        "-f",
        tmp.path().to_str().unwrap(),
        "HTTPRoute/quickstart/admin",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("deny: exposePath `/admin` on listener quickstart/edge/http (public)"),
        "{t}"
    );
    assert!(t.contains("no-sensitive-paths-public.cedar:"), "{t}");
    assert!(t.contains("decision: deny (not programmed)"), "{t}");
    let out = gatehouse(&[
        "policy",
        "explain",
        "-f",
        tmp.path().to_str().unwrap(),
        "HTTPRoute/quickstart/nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not found"), "{}", text(&out));
}

#[test]
fn the_quickstart_ships_the_library_with_only_the_enforcement_changed() {
    let lib = root().join("policies/library");
    let qs = root().join("examples/quickstart/policies");
    for e in std::fs::read_dir(&lib).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "cedar") {
            continue;
        }
        let a = std::fs::read_to_string(&p).unwrap();
        let b = std::fs::read_to_string(qs.join(p.file_name().unwrap())).unwrap();
        let strip = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("@enforcement(") && !l.starts_with("// Quickstart:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&a), strip(&b), "{}", p.display());
    }
}

#[test]
fn validate_refuses_a_set_with_file_line_and_a_hint() {
    let out = gatehouse(&[
        "policy",
        "validate",
        "-p",
        root().join("policies/library").to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("14 policies valid"), "{t}");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("ok.cedar"),
        "@id(\"ok\")\n@message(\"m\")\nforbid (principal, action == Gatehouse::Action::\"attachRoute\", resource)\nwhen { resource.public };\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("bad.cedar"),
        "// a typo\n@id(\"bad\")\n@message(\"m\")\n@enforcement(\"audit\")\nforbid (principal, action == Gatehouse::Action::\"exposePath\", resource)\nwhen { context.path.vlaue == \"/x\" };\n\n@id(\"ok\")\n@message(\"again\")\nforbid (principal, action, resource) when { context.route.authn.jtw };\n",
    )
    .unwrap();
    let out = gatehouse(&["policy", "validate", "-p", tmp.path().to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let bad = tmp.path().join("bad.cedar");
    let bad = bad.display();
    assert!(
        t.contains(&format!(
            "{bad}:2:1: error: `@enforcement(\"audit\")` is not one of deny, warn, dryrun"
        )),
        "{t}"
    );
    let ok = tmp.path().join("ok.cedar");
    assert!(
        t.contains(&format!(
            "{}:1:1: error: policy id `ok` is used twice (first at {bad}:8)",
            ok.display()
        )),
        "{t}"
    );
    assert!(t.contains("refused as a whole"), "{t}");

    // A schema error points into the file with a hint.
    std::fs::write(
        tmp.path().join("bad.cedar"),
        "@id(\"typo\")\n@message(\"m\")\nforbid (principal, action == Gatehouse::Action::\"exposePath\", resource)\nwhen { context.path.vlaue == \"/x\" };\n",
    )
    .unwrap();
    let out = gatehouse(&[
        "policy",
        "validate",
        "-p",
        tmp.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["line"], 4, "{v:#}");
    assert_eq!(d["policy"], "typo");
    assert!(d["message"].as_str().unwrap().contains("vlaue"), "{v:#}");
    assert!(d["help"].as_str().unwrap().contains("value"), "{v:#}");
}

#[test]
fn fmt_checks_and_writes() {
    let out = gatehouse(&[
        "policy",
        "fmt",
        "--check",
        "-p",
        root().join("policies/library").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("p.cedar");
    std::fs::write(&f, "// keep\n@id(\"p\") @message(\"m\") forbid(principal,action,resource) when {resource.public};\n").unwrap();
    let before = std::fs::read_to_string(&f).unwrap();
    let out = gatehouse(&[
        "policy",
        "fmt",
        "--check",
        "-p",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("p.cedar: not formatted"));
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        before,
        "--check changes nothing"
    );
    let out = gatehouse(&[
        "policy",
        "fmt",
        "--write",
        "-p",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let after = std::fs::read_to_string(&f).unwrap();
    assert!(after.starts_with("// keep\n") && after != before, "{after}");
    let out = gatehouse(&[
        "policy",
        "fmt",
        "--check",
        "-p",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_policy_that_errors_at_evaluation_time_denies_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/quickstart"), tmp.path());
    // Validates (Long * Long), but overflows for every listener port: Cedar skips an erroring
    // policy, which would allow; Gatehouse denies.
    std::fs::write(
        tmp.path().join("policies/overflow.cedar"),
        "@id(\"port-overflow\")\n@message(\"unreachable\")\n@enforcement(\"warn\")\nforbid (principal, action == Gatehouse::Action::\"attachRoute\", resource)\nwhen { resource.port * 9223372036854775807 > 0 };\n",
    )
    .unwrap();
    let out = gatehouse(&[
        "policy",
        "validate",
        "-p",
        tmp.path().join("policies").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "it validates: {}", text(&out));
    let out = gatehouse(&["policy", "check", "-f", tmp.path().to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("port-overflow") && t.contains("error"), "{t}");
    assert!(
        t.contains("failed to evaluate, which counts as a deny"),
        "{t}"
    );
    assert!(t.contains("overflow"), "{t}");
    assert!(t.contains(" 4 denied"), "{t}");
}
