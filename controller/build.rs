//! Compiles the descriptors of the Envoy API (from the `.proto` files that ship inside the
//! `envoy-types` crate) so `gatehouse translate` can print resources as protobuf JSON/YAML.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_default();
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &target,
            "--manifest-path",
        ])
        .arg(PathBuf::from(&manifest).join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let envoy_types = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "envoy-types")
        .and_then(|p| p["manifest_path"].as_str())
        .map(PathBuf::from)
        .expect("envoy-types is a dependency");
    let proto = envoy_types.parent().expect("a directory").join("proto");
    let includes = [
        proto.join("data-plane-api"),
        proto.join("xds"),
        proto.join("googleapis"),
        proto.join("protoc-gen-validate"),
        proto.join("cel-spec/proto"),
        proto.join("opentelemetry-proto"),
        proto.join("client_model"),
    ];
    let files = [
        "envoy/config/bootstrap/v3/bootstrap.proto",
        "envoy/config/cluster/v3/cluster.proto",
        "envoy/config/endpoint/v3/endpoint.proto",
        "envoy/config/listener/v3/listener.proto",
        "envoy/config/route/v3/route.proto",
        "envoy/extensions/transport_sockets/tls/v3/tls.proto",
        "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
        "envoy/extensions/filters/http/router/v3/router.proto",
        "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
        "envoy/extensions/filters/http/rbac/v3/rbac.proto",
        "envoy/extensions/filters/http/cors/v3/cors.proto",
        "envoy/extensions/filters/http/basic_auth/v3/basic_auth.proto",
        "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
        "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
        "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    ];
    let existing: Vec<PathBuf> = includes.iter().filter(|p| p.exists()).cloned().collect();
    let fds = protox::compile(files, existing).expect("the Envoy protos compile");
    let bytes = prost::Message::encode_to_vec(&fds);
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("envoy_descriptors.bin");
    std::fs::write(dest, bytes).expect("write descriptors");
}
