//! `gatehouse verify -o sarif` judged by Microsoft's SARIF validator (`sarif-multitool
//! validate`, npm package `@microsoft/sarif-multitool`), over output with every kind of
//! result: file and line locations, related objects, a suppressed result, and process
//! findings without a file.
//!
//! The validator is `$GATEHOUSE_SARIF_MULTITOOL`, else `npx --no-install --prefix
//! .venv-npm sarif-multitool` (installed by `make deps`: `npm install --prefix .venv-npm
//! @microsoft/sarif-multitool@5.7.0`). A missing validator fails the test, it does not skip.
//!
//! The validator exits 0 even when it finds errors, and when it cannot read a log it reports
//! nothing at all; so the test reads its own SARIF log of results, and first shows that the
//! validator does flag a broken copy of our output (a canary).

use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL: &str = "npm install --prefix .venv-npm @microsoft/sarif-multitool@5.7.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> Command {
    if let Some(tool) = std::env::var_os("GATEHOUSE_SARIF_MULTITOOL") {
        return Command::new(tool);
    }
    let prefix = root().join(".venv-npm");
    assert!(
        prefix.join("node_modules/.bin/sarif-multitool").exists(),
        "the SARIF validator is not installed in {}: run `{INSTALL}` (part of `make deps`), or set GATEHOUSE_SARIF_MULTITOOL",
        prefix.display()
    );
    let mut cmd = Command::new("npx");
    cmd.args(["--no-install", "--prefix"])
        .arg(prefix)
        .arg("sarif-multitool");
    cmd
}

/// Validates `file`; returns the (rule id, level, message) of every result the validator
/// reports.
fn validate(file: &Path) -> Vec<(String, String, String)> {
    let log = file.with_extension("validation.sarif");
    let _ = std::fs::remove_file(&log);
    let out = validator()
        .arg("validate")
        .arg(file)
        .arg("--output")
        .arg(&log)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the SARIF validator ({e}): run `{INSTALL}`"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && log.is_file(),
        "sarif-multitool validate failed (run `{INSTALL}`):\n{stdout}\n{stderr}"
    );
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let run = &log["runs"][0];
    assert_eq!(
        run["invocations"][0]["executionSuccessful"], true,
        "{stdout}\n{stderr}"
    );
    run["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| {
                    (
                        r["ruleId"].as_str().unwrap_or_default().to_owned(),
                        // SARIF's default level is warning.
                        r["level"].as_str().unwrap_or("warning").to_owned(),
                        r["message"]["text"]
                            .as_str()
                            .or_else(|| r["message"]["id"].as_str())
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn our_sarif_passes_microsofts_validator_with_no_error() {
    let tmp = tempfile::tempdir().unwrap();
    let suppressions = tmp.path().join("suppressions.yaml");
    std::fs::write(
        &suppressions,
        "- id: RBAC-005\n  target: ClusterRole/row-05-role\n  reason: reviewed\n  expires: 2999-12-31\n- id: RBAC-011\n  target: ClusterRole/row-11-role\n  reason: expired on purpose\n  expires: 2001-01-01\n",
    )
    .unwrap();
    let pid = std::process::id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .current_dir(root())
        .args([
            "verify",
            "-f",
            "hardening/tests/fixtures/verify",
            "-f",
            "deploy/profiles/kubernetes-hardened",
            "--envoy-bootstrap",
            "hardening/tests/fixtures/verify/envoy-tls12-unpinned-bootstrap.yaml",
            "--unit",
            "deploy/profiles/standalone/gatehouse-envoy-certs.service",
            "--process",
            &pid,
            "--suppressions",
        ])
        .arg(&suppressions)
        .args(["-o", "sarif"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    // Every shape of result is in this log.
    assert!(results.len() > 100, "{}", results.len());
    assert!(results.iter().any(|r| r["suppressions"].is_array()));
    assert!(results.iter().any(|r| r["relatedLocations"].is_array()));
    assert!(
        results
            .iter()
            .any(|r| r["locations"][0]["physicalLocation"].is_null())
    );
    assert!(results.iter().any(|r| r["level"] == "note"));
    assert!(results.iter().any(|r| r["level"] == "warning"));
    let file = tmp.path().join("verify.sarif");
    std::fs::write(&file, &out.stdout).unwrap();

    // The canary: a broken copy (startLine 0) is flagged, so the validator read the log.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        serde_json::json!(0);
    let broken_file = tmp.path().join("broken.sarif");
    std::fs::write(&broken_file, serde_json::to_vec_pretty(&broken).unwrap()).unwrap();
    let flagged = validate(&broken_file);
    assert!(
        flagged
            .iter()
            .any(|(id, level, _)| id == "JSON1008" && level == "error"),
        "the validator did not flag startLine 0: {flagged:?}"
    );

    let reported = validate(&file);
    for (id, level, message) in &reported {
        eprintln!("sarif-multitool: {level} {id}: {message}");
    }
    let errors: Vec<_> = reported
        .iter()
        .filter(|(_, level, _)| level == "error")
        .collect();
    assert!(errors.is_empty(), "validator errors: {errors:#?}");
}
