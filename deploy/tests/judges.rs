//! External judges on every rendered artifact: `kubernetes-validate --strict` and `checkov` on
//! the Kubernetes profile, `envoy --mode validate` on every Envoy bootstrap, and
//! `systemd-analyze security --offline=yes` on the standalone units. Each judge is also shown
//! rejecting a deliberately broken artifact, so that a judge that accepts everything cannot
//! pass these tests.
//!
//! The judges come from the venv `make deps` creates (`$GATEHOUSE_VENV`, else `.venv`);
//! `systemd-analyze` from the PATH. A missing judge fails the test.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gatehouse_deploy::kubernetes::{self, Object};
use gatehouse_deploy::standalone;
use gatehouse_deploy::{
    HardenedParams, Rendering, StandaloneParams, hardened_objects, render_hardened,
    render_standalone,
};
use serde_json::Value;
use support::{envoy_validate, pki, run, text, venv_bin};

/// Renderings the judges see: the default, and one with three gateways over two namespaces,
/// backends, API server ranges, another trust domain and real-looking digests.
fn renderings() -> Vec<(&'static str, HardenedParams)> {
    let mut wide = HardenedParams::default();
    wide.namespace = "gh-control".into();
    wide.gateways = vec![
        "edge/public".parse().unwrap(),
        "edge/internal".parse().unwrap(),
        "partners/api".parse().unwrap(),
    ];
    wide.backend_namespaces = vec!["shop".into()];
    wide.api_server_cidrs = vec!["10.0.0.1/32".into(), "fd00::1/128".into()];
    wide.trust_domain = "prod.example".parse().unwrap();
    wide.envoy_image = format!("registry.local/envoy:v1.40.0@sha256:{}", "1f".repeat(32))
        .parse()
        .unwrap();
    wide.controller_image = format!("registry.local/gatehouse@sha256:{}", "2e".repeat(32))
        .parse()
        .unwrap();
    vec![("default", HardenedParams::default()), ("wide", wide)]
}

/// A temporary directory whose name does not start with `.`: checkov skips hidden
/// directories, and would judge nothing.
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gatehouse-")
        .tempdir()
        .unwrap()
}

fn write(rendering: &Rendering) -> tempfile::TempDir {
    let dir = tempdir();
    rendering.write_to(dir.path()).unwrap();
    dir
}

fn kubernetes_validate(files: &[PathBuf]) -> Result<String, String> {
    let out = run(Command::new(venv_bin("kubernetes-validate"))
        .args(["--strict", "-k", "1.35.0"])
        .args(files));
    let t = text(&out);
    if out.status.success() && !t.contains("ERROR") {
        Ok(t)
    } else {
        Err(t)
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_validate_strict_accepts_every_object() {
    for (what, params) in renderings() {
        let objects = hardened_objects(&params, &[]).unwrap();
        let dir = write(&render_hardened(&params, &[]).unwrap());
        let files = yaml_files(dir.path());
        let out = kubernetes_validate(&files).unwrap_or_else(|e| panic!("{what}: {e}"));
        // Every object was judged, not just read.
        for o in &objects {
            let needle = format!("passed for resource {}/{}", o.kind.to_lowercase(), o.name);
            assert!(out.contains(&needle), "{what}: {needle} missing in:\n{out}");
        }
        assert_eq!(
            out.matches(" passed for resource ").count(),
            objects.len(),
            "{what}: {out}"
        );
    }
}

#[test]
fn kubernetes_validate_rejects_an_unknown_field() {
    let dir = write(&render_hardened(&HardenedParams::default(), &[]).unwrap());
    let path = dir.path().join("10-deployments.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("readOnlyRootFilesystem:", "readOnlyRootFileSystem:", 1),
    )
    .unwrap();
    let e = kubernetes_validate(&[path]).unwrap_err();
    assert!(e.contains("readOnlyRootFileSystem"), "{e}");
}

/// checkov over a directory: (failed check ids with their resource, skipped checks as
/// (id, reason), passed count).
fn checkov(dir: &Path) -> (Vec<String>, Vec<(String, String)>, u64) {
    let out = run(Command::new(venv_bin("checkov")).arg("-d").arg(dir).args([
        "--framework",
        "kubernetes",
        "--skip-download",
        "--compact",
        "--quiet",
        "-o",
        "json",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("checkov did not print JSON ({e}):\n{}", text(&out)));
    // One report per framework: a list when there are several, an object for one.
    let reports: Vec<&Value> = match &report {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    let mut passed = 0;
    for r in reports {
        assert_eq!(r["check_type"], "kubernetes", "{r}");
        assert_eq!(r["summary"]["parsing_errors"], 0, "{r}");
        passed += r["summary"]["passed"].as_u64().unwrap();
        for c in r["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            failed.push(format!(
                "{} {} ({})",
                field("check_id"),
                field("resource"),
                field("check_name")
            ));
        }
        for c in r["results"]["skipped_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            skipped.push((
                c["check_id"].as_str().unwrap().to_owned(),
                c["suppress_comment"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
        // checkov's exit code agrees with its report.
        assert_eq!(
            out.status.success(),
            r["summary"]["failed"] == 0,
            "exit {:?}",
            out.status.code()
        );
    }
    (failed, skipped, passed)
}

fn docs() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/profiles.md"))
        .expect("docs/profiles.md")
}

#[test]
fn checkov_finds_nothing_and_every_suppression_is_documented() {
    let docs = docs();
    for (what, params) in renderings() {
        let dir = write(&render_hardened(&params, &[]).unwrap());
        let (failed, skipped, passed) = checkov(dir.path());
        assert!(
            failed.is_empty(),
            "{what}: checkov failed:\n{}",
            failed.join("\n")
        );
        assert!(passed > 200, "{what}: only {passed} checks ran");
        for (id, reason) in &skipped {
            assert!(
                !reason.trim().is_empty(),
                "{what}: {id} is suppressed without a reason"
            );
            assert!(
                docs.contains(id.as_str()),
                "{what}: {id} is suppressed but not in docs/profiles.md"
            );
        }
        eprintln!(
            "{what}: checkov passed {passed}, failed 0, skipped {}",
            skipped.len()
        );
    }
    // Inline suppressions are written `checkov.io/skipN: CKV_K8S_XX=reason`; any in the
    // profile must be in the docs too.
    let rendering = render_hardened(&HardenedParams::default(), &[]).unwrap();
    for f in &rendering.files {
        for line in f.contents.lines().filter(|l| l.contains("checkov.io/skip")) {
            let id = line
                .split(':')
                .nth(1)
                .unwrap_or_default()
                .trim()
                .split('=')
                .next()
                .unwrap();
            assert!(
                docs.contains(id),
                "{}: {line} is not in docs/profiles.md",
                f.name
            );
        }
    }
}

#[test]
fn checkov_flags_a_weakened_deployment() {
    let dir = write(&render_hardened(&HardenedParams::default(), &[]).unwrap());
    let path = dir.path().join("10-deployments.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            1,
        )
        .replacen(
            "automountServiceAccountToken: false",
            "automountServiceAccountToken: true",
            1,
        ),
    )
    .unwrap();
    let (failed, _, _) = checkov(dir.path());
    assert!(
        failed.iter().any(|f| f.starts_with("CKV_K8S_22 ")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|f| f.starts_with("CKV_K8S_38 ")),
        "{failed:?}"
    );
}

/// Every Envoy bootstrap of the Kubernetes profile, from its ConfigMap, with a real
/// certificate: `envoy --mode validate` accepts it. The pod's paths (`/etc/gatehouse/envoy`,
/// `/etc/gatehouse/certs`) are replaced by directories here; nothing else changes.
#[test]
fn envoy_validates_every_kubernetes_bootstrap() {
    for (what, params) in renderings() {
        let objects = hardened_objects(&params, &[]).unwrap();
        let configmaps: Vec<&Object> = objects.iter().filter(|o| o.kind == "ConfigMap").collect();
        assert_eq!(configmaps.len(), params.gateways.len(), "{what}");
        for cm in configmaps {
            let gateway = cm.value["metadata"]["labels"]["app.kubernetes.io/instance"]
                .as_str()
                .unwrap();
            let gateway = format!("{}/{gateway}", cm.namespace.as_deref().unwrap());
            let tmp = tempdir();
            let store = tmp.path().join("pki");
            pki(&store, params.trust_domain.as_str(), &[&gateway]);
            let certs = store.join("gateways").join(&gateway);
            let config = tmp.path().join("envoy");
            std::fs::create_dir(&config).unwrap();
            let data: BTreeMap<String, String> =
                serde_json::from_value(cm.value["data"].clone()).unwrap();
            for (name, contents) in &data {
                let contents = contents
                    .replace(kubernetes::ENVOY_CERTS_DIR, certs.to_str().unwrap())
                    .replace(kubernetes::ENVOY_CONFIG_DIR, config.to_str().unwrap());
                std::fs::write(config.join(name), contents).unwrap();
            }
            envoy_validate(&config.join("envoy.yaml"))
                .unwrap_or_else(|e| panic!("{what}: {}: {e}", cm.id()));
        }
    }
}

#[test]
fn envoy_validates_the_standalone_bootstrap_and_rejects_a_broken_one() {
    let params = StandaloneParams::default();
    let rendering = render_standalone(&params).unwrap();
    let tmp = tempdir();
    let store = tmp.path().join("pki");
    pki(&store, "gatehouse.local", &["gatehouse-gateways/edge"]);
    let certs = store.join("gateways/gatehouse-gateways/edge");
    let config = tmp.path().join("envoy");
    std::fs::create_dir(&config).unwrap();
    let admin = tmp.path().join("run");
    std::fs::create_dir(&admin).unwrap();
    for f in rendering
        .files
        .iter()
        .filter(|f| f.name.starts_with("envoy/"))
    {
        let contents = f
            .contents
            .replace(standalone::CREDENTIALS_DIR, certs.to_str().unwrap())
            .replace(standalone::ENVOY_CONFIG_DIR, config.to_str().unwrap())
            .replace("/run/gatehouse-envoy", admin.to_str().unwrap());
        std::fs::write(config.join(f.name.trim_start_matches("envoy/")), contents).unwrap();
    }
    let boot = config.join("envoy.yaml");
    envoy_validate(&boot).unwrap();

    // The judge can say no: a field Envoy does not know.
    let text = std::fs::read_to_string(&boot).unwrap();
    std::fs::write(
        &boot,
        text.replacen("connect_timeout:", "connect_timeuot:", 1),
    )
    .unwrap();
    let e = envoy_validate(&boot).unwrap_err();
    assert!(e.contains("connect_timeuot"), "{e}");
    // And a warning about an SDS file is a failure even though Envoy exits 0.
    std::fs::write(&boot, &text).unwrap();
    std::fs::write(config.join("xds-trust-bundle.sds.yaml"), "resources: []\n").unwrap();
    assert!(envoy_validate(&boot).is_err());
}

/// `systemd-analyze security --offline=yes UNIT`: (exposure, full output).
fn exposure(unit: &Path) -> (f64, String) {
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit));
    let t = text(&out);
    let line = t
        .lines()
        .find(|l| l.contains("Overall exposure level for"))
        .unwrap_or_else(|| panic!("no exposure in:\n{t}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read `{line}`"));
    (score, t)
}

#[test]
fn systemd_analyze_scores_both_units_at_most_1_5() {
    let rendering = render_standalone(&StandaloneParams::default()).unwrap();
    let dir = write(&rendering);
    for unit in [standalone::CONTROLLER_UNIT, standalone::ENVOY_UNIT] {
        let (score, out) = exposure(&dir.path().join(unit));
        eprintln!("{unit}: exposure {score}");
        assert!(score <= 1.5, "{unit}: exposure {score}:\n{out}");
    }
    // The restart helper runs as root (it talks to systemd); it is sandboxed too.
    let (score, out) = exposure(&dir.path().join(standalone::CERTS_RESTART_UNIT));
    eprintln!("{}: exposure {score}", standalone::CERTS_RESTART_UNIT);
    assert!(score <= 5.0, "{out}");
}

#[test]
fn systemd_analyze_scores_an_unsandboxed_unit_high() {
    let rendering = render_standalone(&StandaloneParams::default()).unwrap();
    let dir = write(&rendering);
    let path = dir.path().join(standalone::ENVOY_UNIT);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("# Sandbox").unwrap();
    let end = text.find("[Install]").unwrap();
    std::fs::write(&path, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let (score, _) = exposure(&path);
    assert!(
        score > 5.0,
        "without its sandbox the unit still scores {score}"
    );
}

#[test]
fn every_sandbox_directive_of_the_reference_is_in_both_units() {
    let rendering = render_standalone(&StandaloneParams::default()).unwrap();
    for unit in [standalone::CONTROLLER_UNIT, standalone::ENVOY_UNIT] {
        let text = &rendering
            .files
            .iter()
            .find(|f| f.name == unit)
            .unwrap()
            .contents;
        for directive in [
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=\n",
            "AmbientCapabilities=\n",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectKernelLogs=yes",
            "ProtectControlGroups=yes",
            "ProtectClock=yes",
            "ProtectHostname=yes",
            "ProtectProc=invisible",
            "ProcSubset=pid",
            "RestrictNamespaces=yes",
            "RestrictRealtime=yes",
            "RestrictSUIDSGID=yes",
            "LockPersonality=yes",
            "MemoryDenyWriteExecute=yes",
            "RestrictAddressFamilies=AF_INET AF_INET6",
            "SystemCallArchitectures=native",
            "SystemCallFilter=@system-service",
            "SystemCallFilter=~@privileged @resources",
            "UMask=0077",
            "DevicePolicy=closed",
        ] {
            assert!(text.contains(directive), "{unit} lacks {directive:?}");
        }
        assert!(!text.contains("User=root"), "{unit}");
    }
}
