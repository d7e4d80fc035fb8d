//! `gatehouse translate` as a user runs it.

mod support;

use std::path::Path;
use std::process::Command;

fn translate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("translate")
        .args(args)
        .output()
        .unwrap()
}

fn quickstart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/quickstart")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn translate_prints_what_envoy_receives_without_keys() {
    let out = translate(&["-f", &quickstart(), "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let gw = &v["gateways"]["quickstart/edge"];
    assert_eq!(gw["LDS"].as_array().unwrap().len(), 2);
    let http = gw["LDS"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "http-8080")
        .unwrap();
    let hcm = &http["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["use_remote_address"], true, "edge default");
    assert_eq!(
        hcm["common_http_protocol_options"]["headers_with_underscores_action"],
        "REJECT_REQUEST"
    );
    // The listener key is in the snapshot, but never in the output.
    let secret_yaml =
        std::fs::read_to_string(Path::new(&quickstart()).join("05-listener-certificate.yaml"))
            .unwrap();
    let key_b64 = secret_yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("tls.key: "))
        .unwrap();
    assert!(!text.contains(&key_b64[..40]) && !text.contains("PRIVATE KEY"));
    assert!(text.contains("[redacted]"));
    // YAML is the same content.
    let yaml = translate(&["-f", &quickstart(), "-o", "yaml", "--type", "route"]);
    assert!(
        String::from_utf8(yaml.stdout)
            .unwrap()
            .contains("path_separated_prefix: /api")
    );
}

#[test]
fn translate_writes_static_bootstraps_envoy_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = translate(&[
        "-f",
        &quickstart(),
        "--static-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let pb = tmp.path().join("quickstart_edge.pb");
    let v = Command::new(support::envoy_bin())
        .args(["--mode", "validate", "-c", pb.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn a_broken_file_is_reported_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("gw.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: x\n  listeners:\n  - {name: a, port: eighty, protocol: HTTP}\n",
    )
    .unwrap();
    let out = translate(&["-f", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("gw.yaml:7: invalid Gateway"), "{text}");
}
