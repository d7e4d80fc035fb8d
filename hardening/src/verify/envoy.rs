//! Envoy (`ENVOY-0xx`): bootstraps (files given with `--envoy-bootstrap`, documents of
//! `-f` that are bootstraps, and bootstraps inside ConfigMaps) — admin not reachable off
//! the host, xDS over TLS 1.3 (minimum and maximum) with the controller's SPIFFE ID pinned,
//! the overload manager, and the edge settings of `reference/hardening.md` (c) on static
//! listeners — and, in Kubernetes manifests, hot restart disabled.

use std::net::IpAddr;

use super::catalog::{self, Check};
use super::k8s::Cluster;
use super::yaml::Node;
use super::{Ctx, Location, ObjectRef};

/// ENVOY-008: every Envoy container of a Kubernetes workload runs with
/// `--disable-hot-restart`.
pub(crate) fn check_workloads(ctx: &mut Ctx, cluster: &Cluster<'_>) {
    for pod in cluster.pods() {
        for container in pod.containers() {
            if !container.is_envoy() || container.role == "init container" {
                continue;
            }
            let argv = container.argv();
            if !argv.iter().any(|a| a == "--disable-hot-restart") {
                let object = pod.object;
                let line = container
                    .node
                    .get("args")
                    .or_else(|| container.node.get("command"))
                    .map_or(container.node.line, |n| n.line);
                ctx.report(
                    catalog::ENVOY_008,
                    object.object_ref(),
                    object.at(line),
                    format!(
                        "{} {}: {} runs Envoy without --disable-hot-restart",
                        object.kind,
                        object.name,
                        container.label()
                    ),
                );
            }
        }
    }
}

struct Emit<'c> {
    ctx: &'c mut Ctx,
    object: ObjectRef,
    file: String,
}

impl Emit<'_> {
    fn at(&mut self, check: &'static Check, line: usize, message: String) {
        self.ctx.report(
            check,
            self.object.clone(),
            Some(Location::at(&self.file, line)),
            message,
        );
    }
}

const BOOTSTRAP_CHECKS: [&Check; 13] = [
    catalog::ENVOY_001,
    catalog::ENVOY_002,
    catalog::ENVOY_003,
    catalog::ENVOY_004,
    catalog::ENVOY_005,
    catalog::ENVOY_006,
    catalog::ENVOY_007,
    catalog::ENVOY_009,
    catalog::ENVOY_010,
    catalog::ENVOY_011,
    catalog::ENVOY_012,
    catalog::ENVOY_013,
    catalog::ENVOY_014,
];

/// Checks one bootstrap; `object` is what findings are about (the file, or the ConfigMap
/// that holds it), `file` where its lines are.
pub(crate) fn check_bootstrap(ctx: &mut Ctx, bootstrap: &Node, object: ObjectRef, file: &str) {
    ctx.evaluated(&BOOTSTRAP_CHECKS);
    let mut e = Emit {
        ctx,
        object,
        file: file.to_owned(),
    };
    check_admin(&mut e, bootstrap);
    check_xds(&mut e, bootstrap);
    check_overload(&mut e, bootstrap);
    for listener in bootstrap
        .path(&["static_resources", "listeners"])
        .map(Node::items)
        .unwrap_or_default()
    {
        check_listener(&mut e, listener);
    }
}

fn is_loopback(address: &str) -> bool {
    address == "localhost"
        || address
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_admin(e: &mut Emit<'_>, bootstrap: &Node) {
    let Some(address) = bootstrap.path(&["admin", "address"]) else {
        return;
    };
    if let Some(socket) = address.get("socket_address") {
        let host = socket
            .get("address")
            .and_then(Node::scalar_text)
            .unwrap_or_default();
        if !is_loopback(&host) {
            let port = socket
                .get("port_value")
                .and_then(Node::scalar_text)
                .unwrap_or_else(|| "?".to_owned());
            e.at(
                catalog::ENVOY_001,
                socket.line_of("address"),
                format!(
                    "admin listens on {}:{port}, reachable from other hosts",
                    if host.is_empty() {
                        "<no address>"
                    } else {
                        &host
                    }
                ),
            );
        }
    }
    if let Some(pipe) = address.get("pipe") {
        match pipe.get("mode").and_then(Node::as_int) {
            Some(mode) if mode & 0o077 == 0 => {}
            Some(mode) => e.at(
                catalog::ENVOY_002,
                pipe.line_of("mode"),
                format!("the admin socket's mode is {mode:04o}: other users can open it"),
            ),
            None => e.at(
                catalog::ENVOY_002,
                pipe.line,
                "the admin socket has no mode: it gets the process's umask".to_owned(),
            ),
        }
    }
}

/// The xDS config sources of a bootstrap: ADS and every `api_config_source` of
/// `dynamic_resources`.
fn config_sources(bootstrap: &Node) -> Vec<&Node> {
    let Some(dynamic) = bootstrap.get("dynamic_resources") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(ads) = dynamic.get("ads_config") {
        out.push(ads);
    }
    for key in ["cds_config", "lds_config"] {
        if let Some(source) = dynamic.path(&[key, "api_config_source"]) {
            out.push(source);
        }
    }
    out
}

fn check_xds(e: &mut Emit<'_>, bootstrap: &Node) {
    let clusters = bootstrap
        .path(&["static_resources", "clusters"])
        .map(Node::items)
        .unwrap_or_default();
    let mut seen = Vec::new();
    for source in config_sources(bootstrap) {
        for service in source
            .get("grpc_services")
            .map(Node::items)
            .unwrap_or_default()
        {
            if let Some(google) = service.get("google_grpc") {
                if google
                    .path(&["channel_credentials", "ssl_credentials"])
                    .is_none()
                {
                    e.at(
                        catalog::ENVOY_003,
                        google.line,
                        "xDS uses google_grpc without ssl_credentials: the connection is not encrypted".to_owned(),
                    );
                }
                continue;
            }
            if let Some(name) = service
                .path(&["envoy_grpc", "cluster_name"])
                .and_then(Node::as_str)
                && !seen.contains(&name)
            {
                seen.push(name);
            }
        }
        for name in source
            .get("cluster_names")
            .map(Node::items)
            .unwrap_or_default()
        {
            if let Some(name) = name.as_str()
                && !seen.contains(&name)
            {
                seen.push(name);
            }
        }
    }
    for name in seen {
        let Some(cluster) = clusters
            .iter()
            .find(|c| c.get("name").and_then(Node::as_str) == Some(name))
        else {
            e.at(
                catalog::ENVOY_003,
                bootstrap.line_of("dynamic_resources"),
                format!("the xDS cluster {name} is not among the static clusters: its transport cannot be checked"),
            );
            continue;
        };
        check_xds_cluster(e, name, cluster);
    }
}

fn check_xds_cluster(e: &mut Emit<'_>, name: &str, cluster: &Node) {
    let socket = cluster.get("transport_socket");
    let tls = socket.and_then(|s| s.get("typed_config")).filter(|t| {
        t.get("@type")
            .and_then(Node::as_str)
            .is_some_and(|t| t.ends_with("UpstreamTlsContext"))
    });
    let Some(tls) = tls else {
        e.at(
            catalog::ENVOY_003,
            socket.map_or(cluster.line, |s| s.line),
            format!("the xDS cluster {name} has no TLS transport socket: xDS goes in plain text"),
        );
        return;
    };
    let common = tls.get("common_tls_context");
    let params = common.and_then(|c| c.get("tls_params"));
    let mut problems = Vec::new();
    for (key, what) in [
        ("tls_minimum_protocol_version", "minimum"),
        ("tls_maximum_protocol_version", "maximum"),
    ] {
        match params.and_then(|p| p.get(key)).and_then(Node::as_str) {
            Some("TLSv1_3") => {}
            Some(other) => problems.push(format!("{what} {other}")),
            None => problems.push(format!("no {what}")),
        }
    }
    if !problems.is_empty() {
        e.at(
            catalog::ENVOY_004,
            params.or(common).map_or(tls.line, |n| n.line),
            format!(
                "the xDS cluster {name} does not pin TLS 1.3 ({})",
                problems.join(", ")
            ),
        );
    }
    // Trust: a validation context (inline or SDS), possibly combined.
    let combined = common.and_then(|c| c.get("combined_validation_context"));
    let inline = common
        .and_then(|c| c.get("validation_context"))
        .or_else(|| combined.and_then(|c| c.get("default_validation_context")));
    let trusted = inline.is_some_and(|v| v.get("trusted_ca").is_some())
        || common
            .and_then(|c| c.get("validation_context_sds_secret_config"))
            .is_some()
        || combined
            .and_then(|c| c.get("validation_context_sds_secret_config"))
            .is_some();
    if !trusted {
        e.at(
            catalog::ENVOY_005,
            common.map_or(tls.line, |n| n.line),
            format!(
                "the xDS cluster {name} does not verify the server's certificate (no trusted CA)"
            ),
        );
    }
    let pinned = inline.is_some_and(|v| {
        let typed = v
            .get("match_typed_subject_alt_names")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .any(|m| {
                m.get("san_type").and_then(Node::as_str) == Some("URI")
                    && m.path(&["matcher", "exact"])
                        .and_then(Node::as_str)
                        .is_some_and(is_controller_id)
            });
        let legacy = v
            .get("match_subject_alt_names")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .any(|m| {
                m.get("exact")
                    .and_then(Node::as_str)
                    .is_some_and(is_controller_id)
            });
        typed || legacy
    });
    if !pinned {
        e.at(
            catalog::ENVOY_006,
            inline.or(common).map_or(tls.line, |n| n.line),
            format!(
                "the xDS cluster {name} does not pin the controller's URI SAN spiffe://TRUST-DOMAIN/controller: any certificate of the CA is accepted"
            ),
        );
    }
}

fn is_controller_id(id: &str) -> bool {
    id.strip_prefix("spiffe://")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(td, path)| !td.is_empty() && path == "controller")
}

fn check_overload(e: &mut Emit<'_>, bootstrap: &Node) {
    let Some(overload) = bootstrap.get("overload_manager") else {
        e.at(
            catalog::ENVOY_007,
            bootstrap.line,
            "no overload_manager: memory and connections are unbounded".to_owned(),
        );
        return;
    };
    let monitors: Vec<String> = overload
        .get("resource_monitors")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("name").and_then(Node::as_str).map(str::to_owned))
        .collect();
    let mut missing = Vec::new();
    for want in [
        "envoy.resource_monitors.fixed_heap",
        "envoy.resource_monitors.global_downstream_max_connections",
    ] {
        if !monitors.iter().any(|m| m == want) {
            missing.push(want);
        }
    }
    if overload
        .get("actions")
        .map(Node::items)
        .unwrap_or_default()
        .is_empty()
    {
        missing.push("any action");
    }
    if !missing.is_empty() {
        e.at(
            catalog::ENVOY_007,
            overload.line,
            format!("the overload manager lacks {}", missing.join(", ")),
        );
    }
}

fn duration_is_zero(node: &Node) -> bool {
    node.scalar_text().is_some_and(|t| {
        t.trim_end_matches('s')
            .parse::<f64>()
            .is_ok_and(|v| v == 0.0)
    })
}

fn check_listener(e: &mut Emit<'_>, listener: &Node) {
    let name = listener
        .get("name")
        .and_then(Node::as_str)
        .unwrap_or("<unnamed>")
        .to_owned();
    match listener
        .get("per_connection_buffer_limit_bytes")
        .and_then(Node::as_int)
    {
        Some(v) if v <= 32768 => {}
        Some(v) => e.at(
            catalog::ENVOY_009,
            listener.line_of("per_connection_buffer_limit_bytes"),
            format!("listener {name}: per_connection_buffer_limit_bytes {v} (want at most 32768)"),
        ),
        None => e.at(
            catalog::ENVOY_009,
            listener.line,
            format!("listener {name}: no per_connection_buffer_limit_bytes (default 1 MiB)"),
        ),
    }
    for chain in listener
        .get("filter_chains")
        .map(Node::items)
        .unwrap_or_default()
    {
        for filter in chain.get("filters").map(Node::items).unwrap_or_default() {
            let Some(hcm) = filter.get("typed_config").filter(|t| {
                t.get("@type")
                    .and_then(Node::as_str)
                    .is_some_and(|t| t.ends_with("HttpConnectionManager"))
            }) else {
                continue;
            };
            check_hcm(e, &name, hcm);
        }
    }
}

/// Whether a connection manager proxies to upstreams: RDS, or a route with a `route`
/// action. A listener that only answers itself (health checks, direct responses) has no
/// upstream to confuse with forwarded addresses or odd paths.
fn routes_upstream(hcm: &Node) -> bool {
    if hcm.get("rds").is_some() || hcm.get("scoped_routes").is_some() {
        return true;
    }
    hcm.path(&["route_config", "virtual_hosts"])
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .flat_map(|vh| vh.get("routes").map(Node::items).unwrap_or_default())
        .any(|r| r.get("route").is_some())
}

fn check_hcm(e: &mut Emit<'_>, listener: &str, hcm: &Node) {
    let line = hcm.line;
    let common = hcm.get("common_http_protocol_options");
    if routes_upstream(hcm) {
        let mut problems = Vec::new();
        if hcm.get("use_remote_address").and_then(Node::as_bool) != Some(true) {
            problems.push("use_remote_address is not true".to_owned());
        }
        if let Some(hops) = hcm
            .get("xff_num_trusted_hops")
            .and_then(Node::as_int)
            .filter(|h| *h > 0)
        {
            problems.push(format!("xff_num_trusted_hops is {hops}"));
        }
        if !problems.is_empty() {
            e.at(
                catalog::ENVOY_010,
                line,
                format!("listener {listener}: {}", problems.join(", ")),
            );
        }
        let mut problems = Vec::new();
        for key in ["normalize_path", "merge_slashes"] {
            if hcm.get(key).and_then(Node::as_bool) != Some(true) {
                problems.push(format!("{key} is not true"));
            }
        }
        match hcm
            .get("path_with_escaped_slashes_action")
            .and_then(Node::as_str)
        {
            Some("REJECT_REQUEST" | "UNESCAPE_AND_REDIRECT" | "UNESCAPE_AND_FORWARD") => {}
            other => problems.push(format!(
                "path_with_escaped_slashes_action is {}",
                other.unwrap_or("unset (KEEP_UNCHANGED)")
            )),
        }
        if !problems.is_empty() {
            e.at(
                catalog::ENVOY_011,
                line,
                format!("listener {listener}: {}", problems.join(", ")),
            );
        }
    }
    match common
        .and_then(|c| c.get("headers_with_underscores_action"))
        .and_then(Node::as_str)
    {
        Some("REJECT_REQUEST" | "DROP_HEADER") => {}
        other => e.at(
            catalog::ENVOY_012,
            common.map_or(line, |c| c.line),
            format!(
                "listener {listener}: headers_with_underscores_action is {}",
                other.unwrap_or("unset (ALLOW)")
            ),
        ),
    }
    let mut problems = Vec::new();
    match hcm.get("request_headers_timeout") {
        None => problems.push("no request_headers_timeout".to_owned()),
        Some(t) if duration_is_zero(t) => {
            problems.push("request_headers_timeout is 0 (off)".to_owned())
        }
        Some(_) => {}
    }
    if common
        .and_then(|c| c.get("idle_timeout"))
        .is_some_and(duration_is_zero)
    {
        problems.push("idle_timeout is 0 (off)".to_owned());
    }
    if hcm.get("stream_idle_timeout").is_some_and(duration_is_zero) {
        problems.push("stream_idle_timeout is 0 (off)".to_owned());
    }
    if !problems.is_empty() {
        e.at(
            catalog::ENVOY_013,
            line,
            format!("listener {listener}: {}", problems.join(", ")),
        );
    }
    if hcm.get("codec_type").and_then(Node::as_str) != Some("HTTP1") {
        let h2 = hcm.get("http2_protocol_options");
        let mut problems = Vec::new();
        for (key, max) in [
            ("max_concurrent_streams", 100),
            ("initial_stream_window_size", 65536),
            ("initial_connection_window_size", 1_048_576),
        ] {
            match h2.and_then(|h| h.get(key)).and_then(Node::as_int) {
                Some(v) if v <= max => {}
                Some(v) => problems.push(format!("{key} {v} (want at most {max})")),
                None => problems.push(format!("no {key} (want at most {max})")),
            }
        }
        if !problems.is_empty() {
            e.at(
                catalog::ENVOY_014,
                h2.map_or(line, |h| h.line),
                format!("listener {listener}: HTTP/2 {}", problems.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_controller_ids() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.0.0.2"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("0.0.0.0"));
        assert!(!is_loopback("::"));
        assert!(!is_loopback(""));
        assert!(is_controller_id("spiffe://gatehouse.local/controller"));
        assert!(!is_controller_id("spiffe://gatehouse.local/gateway/a/b"));
        assert!(!is_controller_id("spiffe:///controller"));
    }
}
