//! The default renderings checked in under `deploy/profiles/` are exactly what the code
//! renders, and rendering is deterministic.
//!
//! After a deliberate change, refresh them with
//! `GATEHOUSE_BLESS=1 cargo test -p gatehouse-deploy --test committed` (or
//! `gatehouse render --profile hardened --output-dir deploy/profiles/kubernetes-hardened` and
//! `gatehouse render --profile standalone --output-dir deploy/profiles/standalone`), and
//! review the diff.

use std::path::{Path, PathBuf};

use gatehouse_deploy::{
    HardenedParams, Rendering, StandaloneParams, render_hardened, render_standalone,
};

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

fn check_or_bless(dir: &Path, rendering: &Rendering) {
    if std::env::var_os("GATEHOUSE_BLESS").is_some() {
        rendering.write_to(dir).unwrap();
    }
    let report = rendering.check(dir).unwrap();
    assert!(
        report.is_clean(),
        "{} is not the default rendering ({}); re-render it (see this file's doc):\n{}",
        dir.display(),
        report.summary(),
        report.diff(dir, rendering)
    );
}

#[test]
fn committed_hardened_profile_is_the_default_rendering() {
    // The committed profile also holds Gatehouse's CRDs (`00-customresourcedefinitions.yaml`),
    // which come from the controller crate: `gatehouse render` adds them, and
    // `tests/profiles_cli.rs` checks the whole directory. Here, everything else.
    let rendering = render_hardened(&HardenedParams::default(), &[]).unwrap();
    let committed = profiles().join("kubernetes-hardened");
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&committed).unwrap().flatten() {
        if entry.file_name() != "00-customresourcedefinitions.yaml" {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    if std::env::var_os("GATEHOUSE_BLESS").is_some() {
        check_or_bless(&committed, &rendering);
    } else {
        check_or_bless(copy.path(), &rendering);
    }
}

#[test]
fn committed_standalone_profile_is_the_default_rendering() {
    let rendering = render_standalone(&StandaloneParams::default()).unwrap();
    check_or_bless(&profiles().join("standalone"), &rendering);
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    let a = render_hardened(&HardenedParams::default(), &[]).unwrap();
    let b = render_hardened(&HardenedParams::default(), &[]).unwrap();
    assert_eq!(a, b);
    let a = render_standalone(&StandaloneParams::default()).unwrap();
    let b = render_standalone(&StandaloneParams::default()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_order_of_flags_does_not_change_the_output() {
    let mut one = HardenedParams::default();
    one.gateways = vec![
        "edge/b".parse().unwrap(),
        "edge/a".parse().unwrap(),
        "web/a".parse().unwrap(),
    ];
    one.backend_namespaces = vec!["shop".into(), "blog".into()];
    one.api_server_cidrs = vec!["10.0.0.2/32".into(), "10.0.0.1/32".into()];
    let mut two = one.clone();
    two.gateways.reverse();
    two.backend_namespaces.reverse();
    two.api_server_cidrs.reverse();
    assert_eq!(
        render_hardened(&one, &[]).unwrap(),
        render_hardened(&two, &[]).unwrap()
    );
}
