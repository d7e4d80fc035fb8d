//! `gatehouse verify`'s checks on real inputs: the committed rendered profiles (no error),
//! the known-bad fixtures of `tests/fixtures/verify/` (each with its expected ids, files and
//! lines), aggregation and binding resolution, every rule evaluated, suppressions, a real
//! certificate store, a signed directory, and unparsable or unreadable inputs.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gatehouse_hardening::verify::{
    self, FailOn, Finding, Inputs, Options, Report, Severity, SignatureInput, Suppression,
    VerifyError, catalog, output,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verify")
        .join(name)
}

fn manifests(paths: &[PathBuf]) -> Inputs {
    Inputs {
        manifests: paths.to_vec(),
        ..Inputs::default()
    }
}

fn run(inputs: &Inputs) -> Report {
    verify::run(inputs, &Options::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn stdin(text: &str) -> Report {
    run(&Inputs {
        manifests: vec![PathBuf::from("-")],
        stdin: Some(text.to_owned()),
        ..Inputs::default()
    })
}

fn ids(report: &Report) -> BTreeSet<&'static str> {
    report
        .findings
        .iter()
        .filter(|f| !f.is_suppressed())
        .map(|f| f.check.id)
        .collect()
}

fn ids_at(report: &Report, severity: Severity) -> BTreeSet<&'static str> {
    report
        .findings
        .iter()
        .filter(|f| !f.is_suppressed() && f.severity() == severity)
        .map(|f| f.check.id)
        .collect()
}

fn of<'a>(report: &'a Report, id: &str) -> Vec<&'a Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.check.id == id)
        .collect()
}

fn dump(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}",
                f.check.id,
                f.object,
                f.location
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The 1-based line of the first line of `file` containing `needle` at or after line `from`.
fn line_of(file: &Path, needle: &str, from: usize) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in {}", file.display()))
}

#[test]
fn the_rendered_profiles_have_no_error_and_exactly_the_documented_warnings() {
    let profiles = workspace().join("deploy/profiles");
    let mut units: Vec<PathBuf> = std::fs::read_dir(profiles.join("standalone"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    assert_eq!(units.len(), 3, "{units:?}");
    let report = run(&Inputs {
        manifests: vec![profiles.join("kubernetes-hardened")],
        bootstraps: vec![profiles.join("standalone/envoy/envoy.yaml")],
        units,
        ..Inputs::default()
    });
    assert!(!report.fails(FailOn::Error), "{}", dump(&report));
    assert_eq!(report.exit_code(FailOn::Error), 0);
    assert_eq!(ids_at(&report, Severity::Error), BTreeSet::new());
    // What remains is documented in docs/profiles.md: the controller reads and writes Secrets
    // in the gateway namespace, the image digests are placeholders, the restart helper runs
    // as root without capabilities (and without DevicePolicy=), Envoy has no IP allow list.
    assert_eq!(
        ids(&report),
        BTreeSet::from([
            "RBAC-027", "RBAC-028", "POD-022", "UNIT-002", "UNIT-007", "UNIT-015"
        ]),
        "{}",
        dump(&report)
    );
    for f in of(&report, "RBAC-027") {
        assert_eq!(
            f.object.target(),
            "Role/gatehouse-gateways/gatehouse-controller"
        );
    }
    for f in of(&report, "UNIT-002")
        .into_iter()
        .chain(of(&report, "UNIT-007"))
    {
        assert_eq!(f.object.target(), "Unit/gatehouse-envoy-certs.service");
    }
    // Every family the inputs feed ran, and the embedded bootstrap was found.
    let evaluated: BTreeSet<&str> = report.evaluated.iter().map(|c| c.id).collect();
    for c in catalog::checks() {
        let expected = matches!(
            c.category,
            verify::Category::Rbac
                | verify::Category::Pod
                | verify::Category::Envoy
                | verify::Category::Unit
        );
        assert_eq!(evaluated.contains(c.id), expected, "{}", c.id);
    }
    assert!(
        report.inputs.iter().any(|i| i.contains(
            "Envoy bootstrap `envoy.yaml` of ConfigMap/gatehouse-gateways/gatehouse-envoy-edge"
        )),
        "{:?}",
        report.inputs
    );
    // With --fail-on warning the same run fails.
    assert!(report.fails(FailOn::Warning));
    assert!(!report.fails(FailOn::Never));
}

#[test]
fn each_dangerous_rbac_row_has_a_fixture_that_reports_exactly_its_id_at_its_rule() {
    for row in 1..=23 {
        let file = fixture(&format!("rbac-rows/row-{row:02}.yaml"));
        let report = run(&manifests(std::slice::from_ref(&file)));
        let want = format!("RBAC-{row:03}");
        assert_eq!(
            ids_at(&report, Severity::Error),
            BTreeSet::from([want.as_str()]),
            "row {row}:\n{}",
            dump(&report)
        );
        assert!(report.fails(FailOn::Error), "row {row}");
        assert_eq!(report.exit_code(FailOn::Error), 1);
        let finding = of(&report, &want)[0];
        let location = finding.location.as_ref().unwrap();
        assert_eq!(location.file, file.display().to_string());
        if ![2, 23].contains(&row) {
            // The dangerous permission is in a rule after the first: the finding points there.
            let first_rule = line_of(&file, "- apiGroups:", 1);
            let line = location.line.unwrap();
            assert!(
                line > first_rule,
                "row {row}: line {line}: {}",
                dump(&report)
            );
            assert!(finding.message.contains("rule 2"), "{}", finding.message);
            assert!(
                finding
                    .message
                    .contains("bound to ServiceAccount tenants/row-"),
                "{}",
                finding.message
            );
        } else {
            let subject = line_of(&file, "subjects:", 1);
            let line = location.line.unwrap();
            assert!(line >= subject - 4, "row {row}: {line}");
        }
    }
}

#[test]
fn a_gateway_beside_its_control_plane_with_a_secret_reading_wildcard_cluster_role() {
    let file = fixture("gateway-colocated-with-control-plane.yaml");
    let report = run(&manifests(std::slice::from_ref(&file)));
    let found = ids(&report);
    for id in ["POD-028", "RBAC-003", "RBAC-001"] {
        assert!(found.contains(id), "{id}:\n{}", dump(&report));
    }
    assert_eq!(report.exit_code(FailOn::Error), 1);
    let colocated = of(&report, "POD-028");
    assert_eq!(colocated.len(), 1);
    assert_eq!(
        colocated[0].object.target(),
        "Deployment/edge-system/edge-envoy"
    );
    assert_eq!(
        colocated[0].related[0].target(),
        "Deployment/edge-system/edge-controller"
    );
    // The Secrets rule is the second, the wildcard the third: both found, at their lines.
    let secrets_rule = line_of(&file, "resources: [secrets]", 1) - 1;
    let wildcard_rule = line_of(&file, "apiGroups: [\"*\"]", 1);
    let rbac_003: Vec<usize> = of(&report, "RBAC-003")
        .iter()
        .map(|f| f.location.as_ref().unwrap().line.unwrap())
        .collect();
    assert_eq!(
        rbac_003,
        vec![secrets_rule, wildcard_rule],
        "{}",
        dump(&report)
    );
    let wildcard = of(&report, "RBAC-001");
    assert_eq!(wildcard.len(), 1);
    assert!(
        wildcard[0].message.contains("rule 3"),
        "{}",
        wildcard[0].message
    );
    assert_eq!(
        wildcard[0].location.as_ref().unwrap().line,
        Some(wildcard_rule)
    );
    assert_eq!(
        wildcard[0].related[0].target(),
        "ClusterRoleBinding/edge-controller"
    );
}

#[test]
fn an_envoy_pod_running_as_root_with_a_mounted_token() {
    let file = fixture("envoy-root-with-token.yaml");
    let report = run(&manifests(std::slice::from_ref(&file)));
    let errors = ids_at(&report, Severity::Error);
    for id in [
        "RBAC-026",
        "POD-015",
        "POD-016",
        "POD-014",
        "POD-017",
        "POD-011",
        "POD-019",
        "ENVOY-008",
    ] {
        assert!(errors.contains(id), "{id}:\n{}", dump(&report));
    }
    assert_eq!(report.exit_code(FailOn::Error), 1);
    let root = of(&report, "POD-016");
    assert_eq!(
        root[0].location.as_ref().unwrap().line,
        Some(line_of(&file, "runAsUser: 0", 1))
    );
    assert_eq!(
        of(&report, "RBAC-026")[0].object.target(),
        "Pod/default/envoy"
    );
}

#[test]
fn aggregated_cluster_roles_are_resolved_and_bindings_reach_their_subjects() {
    let report = run(&manifests(&[fixture("aggregated-clusterrole.yaml")]));
    let findings = of(&report, "RBAC-003");
    let aggregate = findings
        .iter()
        .find(|f| f.object.target() == "ClusterRole/tenant-view")
        .unwrap_or_else(|| panic!("{}", dump(&report)));
    assert!(
        aggregate
            .message
            .contains("aggregated from ClusterRole tenant-view-extras"),
        "{}",
        aggregate.message
    );
    assert!(
        aggregate
            .message
            .contains("ServiceAccount tenants/tenant-reader")
    );
    assert_eq!(
        aggregate.related[0].target(),
        "ClusterRoleBinding/tenant-view"
    );
    // The source role is reported too, with the aggregate's binding as its reach.
    let source = findings
        .iter()
        .find(|f| f.object.target() == "ClusterRole/tenant-view-extras")
        .unwrap();
    assert!(
        source.message.contains("tenants/tenant-reader"),
        "{}",
        source.message
    );
}

#[test]
fn the_data_plane_account_bound_through_its_namespace_group() {
    let report = run(&manifests(&[fixture(
        "data-plane-bound-through-group.yaml",
    )]));
    assert_eq!(
        ids_at(&report, Severity::Error),
        BTreeSet::from(["RBAC-024", "RBAC-025"]),
        "{}",
        dump(&report)
    );
    let binding = of(&report, "RBAC-024")[0];
    assert_eq!(
        binding.object.target(),
        "RoleBinding/gateways/config-reader"
    );
    assert!(binding.message.contains("system:serviceaccounts:gateways"));
}

const ROLE_HEAD: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: apps\nrules:\n";

#[test]
fn every_rule_is_evaluated_and_rules_are_not_conflated() {
    // Only the fifth rule is dangerous.
    let mut text = ROLE_HEAD.to_owned();
    for resource in ["configmaps", "events", "services", "endpoints"] {
        text.push_str(&format!(
            "- apiGroups: [\"\"]\n  resources: [{resource}]\n  verbs: [get, list]\n"
        ));
    }
    text.push_str("- apiGroups: [\"\"]\n  resources: [pods/exec]\n  verbs: [create]\n");
    let report = stdin(&text);
    let exec = of(&report, "RBAC-005");
    assert_eq!(exec.len(), 1, "{}", dump(&report));
    assert_eq!(exec[0].location.as_ref().unwrap().line, Some(19));
    assert_eq!(exec[0].location.as_ref().unwrap().file, "<stdin>");
    assert!(exec[0].message.contains("rule 5"));
    assert!(exec[0].message.contains("no binding in these manifests"));

    // `get` on configmaps in one rule and `create` on secrets in another do not add up to
    // reading Secrets.
    let text = format!(
        "{ROLE_HEAD}- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get]\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [create]\n"
    );
    let report = stdin(&text);
    assert_eq!(
        ids(&report),
        BTreeSet::from(["RBAC-028"]),
        "{}",
        dump(&report)
    );
}

#[test]
fn secret_reads_by_scope_and_by_name() {
    // A ClusterRole bound only by a RoleBinding reads one namespace's Secrets: a warning.
    let text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: reader\n  namespace: apps\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: reader\nsubjects:\n- kind: ServiceAccount\n  name: app\n  namespace: apps\n";
    let report = stdin(text);
    assert_eq!(
        ids(&report),
        BTreeSet::from(["RBAC-027"]),
        "{}",
        dump(&report)
    );
    assert!(!report.fails(FailOn::Error));
    assert!(
        of(&report, "RBAC-027")[0]
            .message
            .contains("in namespace apps")
    );
    // The same ClusterRole bound cluster-wide: an error.
    let report = stdin(&text.replace("kind: RoleBinding", "kind: ClusterRoleBinding"));
    assert_eq!(
        ids(&report),
        BTreeSet::from(["RBAC-003"]),
        "{}",
        dump(&report)
    );
    // Limited to named Secrets: nothing.
    let report = stdin(&text.replace(
        "  verbs: [get]\n",
        "  resourceNames: [one]\n  verbs: [get]\n",
    ));
    assert_eq!(ids(&report), BTreeSet::new(), "{}", dump(&report));
}

#[test]
fn suppressions_hide_until_they_expire_and_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("rbac-rows/row-05.yaml");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let current = write(
        "current.yaml",
        "suppressions:\n- id: RBAC-005\n  target: ClusterRole/row-05-*\n  reason: break-glass role, reviewed\n  expires: 2999-12-31\n- id: POD-019\n  target: Deployment/*\n  reason: matches nothing here\n  expires: 2999-12-31\n",
    );
    let options = Options {
        suppressions: verify::suppress::load(&current).unwrap(),
        ..Options::default()
    };
    let report = verify::run(&manifests(std::slice::from_ref(&file)), &options).unwrap();
    assert!(!report.fails(FailOn::Error), "{}", dump(&report));
    let f = of(&report, "RBAC-005")[0];
    assert!(f.is_suppressed());
    assert_eq!(
        f.suppression.as_ref().unwrap().reason,
        "break-glass role, reviewed"
    );
    assert_eq!(report.summary().suppressed, 1);
    assert_eq!(report.unused_suppressions.len(), 1);
    assert_eq!(report.unused_suppressions[0].id, "POD-019");

    // Expired yesterday: the finding counts again, and says its suppression expired.
    let expired =
        Suppression::new("RBAC-005", "ClusterRole/row-05-role", "old", "2020-01-01").unwrap();
    let report = verify::run(
        &manifests(std::slice::from_ref(&file)),
        &Options {
            suppressions: vec![expired],
            ..Options::default()
        },
    )
    .unwrap();
    assert!(report.fails(FailOn::Error));
    let f = of(&report, "RBAC-005")[0];
    assert!(!f.is_suppressed());
    assert!(f.suppression.as_ref().unwrap().expired);
    let table = output::render(&report, output::Format::Table, &render_options());
    assert!(
        table.contains("suppression expired on 2020-01-01"),
        "{table}"
    );

    // All four fields are required; ids and dates are checked; errors carry the line.
    for (text, line, wanted) in [
        (
            "- id: RBAC-005\n  target: x\n  reason: y\n",
            1,
            "`expires` is missing",
        ),
        (
            "- id: RBAC-005\n  target: x\n  expires: 2999-01-01\n",
            1,
            "`reason` is missing",
        ),
        (
            "- id: RBAC-005\n  target: x\n  reason: \"\"\n  expires: 2999-01-01\n",
            1,
            "`reason` is missing or empty",
        ),
        (
            "- target: x\n  reason: y\n  expires: 2999-01-01\n",
            1,
            "`id` is missing",
        ),
        (
            "- id: RBAC-005\n  reason: y\n  target: x\n  expires: 2999-01-01\n- id: NOPE-001\n  target: x\n  reason: y\n  expires: 2999-01-01\n",
            5,
            "unknown check id `NOPE-001`",
        ),
        (
            "- id: RBAC-005\n  target: x\n  reason: y\n  expires: next week\n",
            4,
            "not a date",
        ),
    ] {
        let p = write("bad.yaml", text);
        match verify::suppress::load(&p) {
            Err(e @ VerifyError::Unparsable { .. }) => {
                assert_eq!(e.exit_code(), 3);
                let VerifyError::Unparsable {
                    line: got, reason, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(*got, line, "{text}: {e}");
                assert!(reason.contains(wanted), "{text}: {e}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn unparsable_and_unreadable_inputs_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
    )
    .unwrap();
    match verify::run(&manifests(std::slice::from_ref(&bad)), &Options::default()) {
        Err(e @ VerifyError::Unparsable { .. }) => {
            assert_eq!(e.exit_code(), 3);
            let text = e.to_string();
            assert!(text.starts_with(&format!("{}:", bad.display())), "{text}");
            let VerifyError::Unparsable { line, .. } = e else {
                unreachable!()
            };
            assert!(line >= 4, "{line}");
        }
        other => panic!("{other:?}"),
    }
    let unit = dir.path().join("x.service");
    std::fs::write(&unit, "[Service]\nUser=x\nthis is not an assignment\n").unwrap();
    match verify::run(
        &Inputs {
            units: vec![unit],
            ..Inputs::default()
        },
        &Options::default(),
    ) {
        Err(VerifyError::Unparsable { line, .. }) => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("missing.yaml");
    match verify::run(&manifests(&[missing]), &Options::default()) {
        Err(e @ VerifyError::CouldNotEvaluate { .. }) => assert_eq!(e.exit_code(), 4),
        other => panic!("{other:?}"),
    }
    match verify::run(
        &Inputs {
            processes: vec![u32::MAX - 7],
            ..Inputs::default()
        },
        &Options::default(),
    ) {
        Err(e @ VerifyError::CouldNotEvaluate { .. }) => assert_eq!(e.exit_code(), 4),
        other => panic!("{other:?}"),
    }
    match verify::run(
        &Inputs {
            certs: vec![dir.path().to_path_buf()],
            ..Inputs::default()
        },
        &Options::default(),
    ) {
        Err(e @ VerifyError::CouldNotEvaluate { .. }) => {
            assert!(e.to_string().contains("not a gatehouse certs store"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unsandboxed_unit_misses_every_directive() {
    let file = fixture("envoy-unsandboxed.service");
    let report = run(&Inputs {
        units: vec![file.clone()],
        ..Inputs::default()
    });
    assert_eq!(
        ids_at(&report, Severity::Error),
        BTreeSet::from(["UNIT-001", "UNIT-003", "UNIT-004", "UNIT-005"]),
        "{}",
        dump(&report)
    );
    let warnings = ids_at(&report, Severity::Warning);
    for n in 6..=14 {
        assert!(
            warnings.contains(format!("UNIT-{n:03}").as_str()),
            "UNIT-{n:03}: {}",
            dump(&report)
        );
    }
    let ambient = of(&report, "UNIT-004")
        .into_iter()
        .find(|f| f.message.contains("AmbientCapabilities"))
        .unwrap();
    assert_eq!(
        ambient.location.as_ref().unwrap().line,
        Some(line_of(&file, "AmbientCapabilities=", 1))
    );
}

#[test]
fn envoy_bootstraps_with_open_admin_plain_xds_old_tls_and_no_pinning() {
    let open = fixture("envoy-open-bootstrap.yaml");
    let report = run(&Inputs {
        bootstraps: vec![open.clone()],
        ..Inputs::default()
    });
    assert_eq!(
        ids_at(&report, Severity::Error),
        BTreeSet::from(["ENVOY-001", "ENVOY-003"]),
        "{}",
        dump(&report)
    );
    for id in [
        "ENVOY-007",
        "ENVOY-009",
        "ENVOY-010",
        "ENVOY-011",
        "ENVOY-012",
        "ENVOY-013",
        "ENVOY-014",
    ] {
        assert!(ids(&report).contains(id), "{id}: {}", dump(&report));
    }
    assert_eq!(
        of(&report, "ENVOY-001")[0].location.as_ref().unwrap().line,
        Some(line_of(&open, "address: 0.0.0.0", 1))
    );
    // The same file given with -f is recognised as a bootstrap.
    let with_f = run(&manifests(std::slice::from_ref(&open)));
    assert!(ids(&with_f).contains("ENVOY-001"));

    let tls12 = fixture("envoy-tls12-unpinned-bootstrap.yaml");
    let report = run(&Inputs {
        bootstraps: vec![tls12],
        ..Inputs::default()
    });
    assert_eq!(
        ids(&report),
        BTreeSet::from(["ENVOY-002", "ENVOY-004", "ENVOY-006"]),
        "{}",
        dump(&report)
    );
    assert!(
        of(&report, "ENVOY-004")[0]
            .message
            .contains("minimum TLSv1_2, no maximum")
    );
}

#[test]
fn a_bootstrap_inside_a_config_map_is_checked_at_the_manifest_lines() {
    let dir = tempfile::tempdir().unwrap();
    let original = workspace().join("deploy/profiles/kubernetes-hardened/07-configmaps.yaml");
    let text = std::fs::read_to_string(original)
        .unwrap()
        .replacen("address: \"127.0.0.1\"", "address: \"0.0.0.0\"", 1)
        .replace("tls_maximum_protocol_version: TLSv1_3\n", "");
    let file = dir.path().join("configmaps.yaml");
    std::fs::write(&file, text).unwrap();
    let report = run(&manifests(std::slice::from_ref(&file)));
    let admin = of(&report, "ENVOY-001");
    assert_eq!(admin.len(), 1, "{}", dump(&report));
    assert_eq!(
        admin[0].object.target(),
        "ConfigMap/gatehouse-gateways/gatehouse-envoy-edge"
    );
    assert_eq!(
        admin[0].location.as_ref().unwrap().line,
        Some(line_of(&file, "address: \"0.0.0.0\"", 1))
    );
    let tls = of(&report, "ENVOY-004");
    assert_eq!(tls.len(), 1, "{}", dump(&report));
    assert_eq!(
        tls[0].location.as_ref().unwrap().line,
        Some(line_of(&file, "tls_params:", 1) + 1)
    );
}

#[test]
fn hot_restart_must_be_off_for_envoy_in_kubernetes() {
    let profile = workspace().join("deploy/profiles/kubernetes-hardened/10-deployments.yaml");
    let text = std::fs::read_to_string(profile)
        .unwrap()
        .replace("        - --disable-hot-restart\n", "");
    let report = stdin(&text);
    let findings = of(&report, "ENVOY-008");
    assert_eq!(findings.len(), 1, "{}", dump(&report));
    assert_eq!(
        findings[0].object.target(),
        "Deployment/gatehouse-gateways/gatehouse-envoy-edge"
    );
}

fn store(dir: &Path) -> gatehouse_certs::CertificateAuthority {
    use gatehouse_certs::{CaStore, CertificateAuthority, Identity, LeafRequest, TrustDomain};
    let now = SystemTime::now();
    let ca = CertificateAuthority::generate(
        TrustDomain::default(),
        Duration::from_secs(365 * 24 * 3600),
        now,
    )
    .unwrap();
    let s = CaStore::open(dir).unwrap();
    s.init(&ca, false).unwrap();
    for identity in [
        Identity::Controller,
        Identity::Gateway("gw/edge".parse().unwrap()),
    ] {
        let leaf = ca.issue(&LeafRequest::new(identity), now).unwrap();
        s.write_leaf(&leaf, &ca.trust_anchors()).unwrap();
    }
    ca
}

#[test]
fn a_certificate_store_over_time_and_tampered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    std::fs::create_dir(&dir).unwrap();
    store(&dir);
    let inputs = Inputs {
        certs: vec![dir.clone()],
        ..Inputs::default()
    };
    let at = |now: SystemTime, max: Option<Duration>| {
        verify::run(
            &inputs,
            &Options {
                now,
                cert_max_lifetime: max,
                ..Options::default()
            },
        )
        .unwrap()
    };
    let now = SystemTime::now();
    let fresh = at(now, None);
    assert_eq!(ids(&fresh), BTreeSet::new(), "{}", dump(&fresh));
    assert_eq!(fresh.evaluated.len(), 8);

    // 20 h later the 24 h leaves are past half-life with less than 7 days left: rotation is
    // late. The CA (a year) is not.
    let late = at(now + Duration::from_secs(20 * 3600), None);
    let expiring: BTreeSet<String> = of(&late, "CERT-002")
        .iter()
        .map(|f| f.object.target())
        .collect();
    assert_eq!(
        expiring,
        BTreeSet::from([
            "Certificate/controller".to_owned(),
            "Certificate/gateway/gw/edge".to_owned()
        ]),
        "{}",
        dump(&late)
    );
    assert!(!late.fails(FailOn::Error));
    let expired = at(now + Duration::from_secs(25 * 3600), None);
    assert_eq!(of(&expired, "CERT-001").len(), 2, "{}", dump(&expired));
    assert!(expired.fails(FailOn::Error));
    let capped = at(now, Some(Duration::from_secs(3600)));
    assert_eq!(
        ids(&capped),
        BTreeSet::from(["CERT-003"]),
        "{}",
        dump(&capped)
    );

    // A readable key, a controller certificate in a gateway's directory, and a leaf of
    // another CA.
    let gw_key = dir.join("gateways/gw/edge/key.pem");
    std::fs::set_permissions(
        std::fs::canonicalize(&gw_key).unwrap(),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let wrong = dir.join("gateways/gw/wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(dir.join("controller").join(f), wrong.join(f)).unwrap();
        std::fs::set_permissions(wrong.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let other_dir = tmp.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    store(&other_dir);
    let foreign = dir.join("gateways/gw/foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::copy(
        other_dir.join("gateways/gw/edge/cert.pem"),
        foreign.join("cert.pem"),
    )
    .unwrap();

    let report = at(now, None);
    let by: Vec<(String, &str)> = report
        .findings
        .iter()
        .map(|f| (f.object.target(), f.check.id))
        .collect();
    for want in [
        ("Certificate/gateway/gw/edge", "CERT-007"),
        ("Certificate/gateway/gw/wrong", "CERT-005"),
        ("Certificate/gateway/gw/wrong", "CERT-006"),
        ("Certificate/gateway/gw/foreign", "CERT-006"),
        ("Certificate/gateway/gw/foreign", "CERT-008"),
    ] {
        assert!(
            by.contains(&(want.0.to_owned(), want.1)),
            "{want:?}: {}",
            dump(&report)
        );
    }
    let key = of(&report, "CERT-007")[0];
    assert_eq!(
        key.location.as_ref().unwrap().file,
        gw_key.display().to_string()
    );
    assert!(key.message.contains("0644"));
    let eku = of(&report, "CERT-005")[0];
    assert!(
        eku.message.contains("serverAuth; want exactly clientAuth"),
        "{}",
        eku.message
    );
}

#[test]
fn a_signed_directory_reports_sig_findings_at_manifest_lines() {
    use gatehouse_hardening::signing::keys::{self, SigningKey};
    use gatehouse_hardening::signing::manifest;
    use gatehouse_hardening::signing::password::Password;
    let tmp = tempfile::tempdir().unwrap();
    let files = keys::generate_key_pair(&tmp.path().join("k"), &Password::new("pw")).unwrap();
    let key = SigningKey::load(&files.private_key, &Password::new("pw")).unwrap();
    let dir = tmp.path().join("release");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), "a: 1\n").unwrap();
    std::fs::write(dir.join("b.yaml"), "b: 1\n").unwrap();
    manifest::sign_dir(&dir, &key).unwrap();
    let inputs = Inputs {
        signature: Some(SignatureInput {
            key: files.public_key.clone(),
            manifest: dir.clone(),
        }),
        ..Inputs::default()
    };
    let clean = run(&inputs);
    assert_eq!(ids(&clean), BTreeSet::new());
    assert_eq!(clean.evaluated.len(), 4);
    std::fs::write(dir.join("b.yaml"), "b: 2\n").unwrap();
    std::fs::write(dir.join("c.yaml"), "c: 1\n").unwrap();
    let report = run(&inputs);
    assert_eq!(
        ids(&report),
        BTreeSet::from(["SIG-002", "SIG-004"]),
        "{}",
        dump(&report)
    );
    let changed = of(&report, "SIG-002")[0];
    let location = changed.location.as_ref().unwrap();
    assert_eq!(location.file, dir.join("SHA256SUMS").display().to_string());
    assert_eq!(location.line, Some(2));
    assert_eq!(changed.object.target(), "File/b.yaml");
}

fn render_options() -> output::RenderOptions {
    output::RenderOptions {
        fail_on: FailOn::Error,
        color: false,
        tool_version: "0.1.0".to_owned(),
        cwd: Some(workspace()),
    }
}

#[test]
fn every_format_carries_the_same_findings() {
    let report = run(&manifests(&[fixture(
        "gateway-colocated-with-control-plane.yaml",
    )]));
    let options = render_options();
    let n = report.findings.len();

    let json: serde_json::Value =
        serde_json::from_str(&output::render(&report, output::Format::Json, &options)).unwrap();
    assert_eq!(json["schemaVersion"], 1);
    assert_eq!(json["exitCode"], 1);
    assert_eq!(json["status"], "failed");
    assert_eq!(json["findings"].as_array().unwrap().len(), n);
    let first = &json["findings"][0];
    for key in [
        "id", "severity", "object", "location", "message", "why", "fix",
    ] {
        assert!(!first[key].is_null(), "{key}: {first}");
    }
    assert!(first["location"]["line"].as_u64().unwrap() > 0);

    let sarif: serde_json::Value =
        serde_json::from_str(&output::render(&report, output::Format::Sarif, &options)).unwrap();
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), catalog::checks().len());
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    for r in results {
        let index = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[index]["id"], r["ruleId"]);
        let physical = &r["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uriBaseId"], "SRCROOT");
        assert_eq!(
            physical["artifactLocation"]["uri"],
            "hardening/tests/fixtures/verify/gateway-colocated-with-control-plane.yaml"
        );
        assert!(physical["region"]["startLine"].as_u64().unwrap() >= 1);
    }

    let junit = output::render(&report, output::Format::Junit, &options);
    assert!(junit.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    assert!(junit.contains("<failure type=\"error\""), "{junit}");
    assert!(junit.contains("name=\"RBAC-001 no wildcard (*) in verbs"));

    let table = output::render(&report, output::Format::Table, &options);
    assert!(table.contains("✘ [RBAC-003]"), "{table}");
    assert!(table.contains("✔ [RBAC-002]"), "{table}");
    assert!(
        table.contains("gateway-colocated-with-control-plane.yaml:36"),
        "{table}"
    );
    assert!(
        table.contains("Status: ✘ failed (--fail-on error) → exit 1"),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "no colour unless asked");
    let coloured = output::render(
        &report,
        output::Format::Table,
        &output::RenderOptions {
            color: true,
            ..options
        },
    );
    assert!(coloured.contains("\x1b[1;31m✘\x1b[0m"));
}

#[test]
fn explain_and_list_cover_every_check() {
    let list = output::list(false);
    for c in catalog::checks() {
        assert!(list.contains(c.id), "{}", c.id);
        let text = c.explain();
        assert!(text.contains(c.why.split_whitespace().next().unwrap()));
    }
    let json: serde_json::Value = serde_json::from_str(&output::list(true)).unwrap();
    assert_eq!(
        json["checks"].as_array().unwrap().len(),
        catalog::checks().len()
    );
}
