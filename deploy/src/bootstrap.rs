//! The Envoy bootstrap of one gateway, and the file-based SDS resources it references.
//!
//! The bootstrap gives Envoy exactly one static cluster, `xds_cluster`, and fetches everything
//! else (clusters, listeners) over ADS from the control plane. That connection is mutual TLS 1.3:
//!
//! - Envoy presents the gateway's client certificate; its node id is the certificate's SPIFFE
//!   ID, which the control plane requires.
//! - Envoy accepts the control plane only if its certificate chains to the trust bundle **and**
//!   carries the URI SAN `spiffe://TD/controller`.
//! - Both the certificate and the trust bundle come through file-based SDS with a
//!   `watched_directory`, so a rotation in the certificate directory (an atomic `..data` swap,
//!   see `gatehouse certs`) is picked up without a restart. Envoy only honours
//!   `watched_directory` on SDS-delivered secrets, and its file-based SDS subscription accepts
//!   exactly one secret per file, so there are two SDS files.
//!
//! The edge settings that belong to the bootstrap rather than to listeners are here too: an
//! admin endpoint on loopback or a unix socket only, and the overload manager (heap limit and
//! global downstream connection limit).
//!
//! Rendering is pure and deterministic: the same [`BootstrapParams`] give the same bytes.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use gatehouse_certs::{BUNDLE_FILE, CHAIN_FILE, GatewayName, Identity, KEY_FILE, TrustDomain};
use serde_json::{Value, json};

/// Name of the static cluster that reaches the control plane.
pub const XDS_CLUSTER: &str = "xds_cluster";
/// SDS name of the gateway's client certificate and key.
pub const CLIENT_CERTIFICATE_SECRET: &str = "xds-client-certificate";
/// SDS name of the trust bundle that verifies the control plane.
pub const TRUST_BUNDLE_SECRET: &str = "xds-trust-bundle";
/// File name, in [`BootstrapParams::sds_dir`], of the client certificate's SDS resource.
pub const CLIENT_CERTIFICATE_SDS_FILE: &str = "xds-client-certificate.sds.yaml";
/// File name, in [`BootstrapParams::sds_dir`], of the trust bundle's SDS resource.
pub const TRUST_BUNDLE_SDS_FILE: &str = "xds-trust-bundle.sds.yaml";
/// Default admin port on `127.0.0.1`.
pub const DEFAULT_ADMIN_PORT: u16 = 19000;
/// Default heap limit of the overload manager: 1 GiB.
pub const DEFAULT_MAX_HEAP_BYTES: u64 = 1 << 30;
/// Smallest accepted heap limit: 64 MiB. Below that Envoy would refuse requests as soon as it
/// starts, and the value is most likely a unit mistake.
pub const MIN_MAX_HEAP_BYTES: u64 = 64 << 20;
/// Default limit of active downstream connections, all listeners together.
pub const DEFAULT_MAX_DOWNSTREAM_CONNECTIONS: u64 = 50_000;

const SECRET_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
const FIXED_HEAP: &str = "envoy.resource_monitors.fixed_heap";
const DOWNSTREAM_CONNECTIONS: &str = "envoy.resource_monitors.global_downstream_max_connections";
/// `sun_path` holds 108 bytes, one of them the terminating NUL.
const MAX_UNIX_SOCKET_PATH: usize = 107;

/// What can be wrong with [`BootstrapParams`].
///
/// Messages are lowercase, quote the offending input in backticks and say how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The xDS address is not `HOST:PORT`.
    #[error(
        "invalid xDS address `{input}`: {reason} (expected `HOST:PORT`, e.g. `xds.example.com:18000`, `10.0.0.5:18000` or `[fd00::5]:18000`)"
    )]
    XdsAddress {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A path Envoy reads is relative.
    #[error(
        "{what} `{}` is not an absolute path (Envoy resolves relative paths against its own working directory: pass an absolute path as Envoy will see it)",
        path.display()
    )]
    RelativePath {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A path is not UTF-8, so it cannot be written into Envoy's configuration.
    #[error("{what} `{}` is not valid UTF-8 (Envoy's configuration is UTF-8 text: rename it)", path.display())]
    NonUtf8Path {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The admin endpoint cannot be used.
    #[error("invalid admin endpoint: {reason}")]
    Admin {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The heap limit is too small to be meant.
    #[error(
        "maximum heap of {bytes} bytes is below the minimum of {MIN_MAX_HEAP_BYTES} bytes (64 MiB); the value is in bytes: 1 GiB is 1073741824"
    )]
    MaxHeap {
        /// What was given.
        bytes: u64,
    },
    /// The connection limit is zero or does not fit Envoy's int64.
    #[error(
        "maximum downstream connections must be between 1 and {}, not {value}",
        i64::MAX
    )]
    MaxConnections {
        /// What was given.
        value: u64,
    },
    /// The YAML serialiser failed (a bug: the input is plain JSON values).
    #[error("cannot write the bootstrap as YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

/// The host part of an [`XdsAddress`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum XdsHost {
    /// An IP address: the cluster is `STATIC` and no SNI is sent.
    Ip(IpAddr),
    /// A DNS name (lowercased): the cluster is `STRICT_DNS` and the name is sent as SNI.
    Dns(String),
}

impl fmt::Display for XdsHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Dns(name) => f.write_str(name),
        }
    }
}

/// Where the control plane's xDS server listens: `HOST:PORT`, the host an IP address (IPv6 in
/// brackets) or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XdsAddress {
    host: XdsHost,
    port: u16,
}

impl XdsAddress {
    /// The host.
    pub fn host(&self) -> &XdsHost {
        &self.host
    }

    /// The TCP port (never 0).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for XdsAddress {
    type Err = BootstrapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| BootstrapError::XdsAddress {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.contains("://") {
            return Err(err("it has a URL scheme; give only the host and port"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((ip, port)) = rest.split_once(']') else {
                return Err(err("the `[` of an IPv6 address is not closed by `]`"));
            };
            let Some(port) = port.strip_prefix(':') else {
                return Err(err("there is no `:PORT` after the IPv6 address"));
            };
            let ip = ip
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| err("the text between `[` and `]` is not an IPv6 address"))?;
            (XdsHost::Ip(IpAddr::V6(ip)), port)
        } else {
            let Some((host, port)) = s.rsplit_once(':') else {
                return Err(err("there is no `:PORT`"));
            };
            if host.contains(':') {
                return Err(err(
                    "an IPv6 address must be in brackets, like `[::1]:18000`",
                ));
            }
            (parse_host(host).map_err(|r| err(&r))?, port)
        };
        if port.is_empty() {
            return Err(err("the port is empty"));
        }
        let port = match port.parse::<u16>() {
            Ok(0) => return Err(err("port 0 is not a port a server listens on")),
            Ok(p) => p,
            Err(_) if port.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(err("the port is above 65535"));
            }
            Err(_) => return Err(err("the port is not a number")),
        };
        Ok(Self { host, port })
    }
}

impl fmt::Display for XdsAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// An IPv4 address or a DNS name (RFC 1123 labels, ASCII).
fn parse_host(host: &str) -> Result<XdsHost, String> {
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(XdsHost::Ip(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters".to_owned());
    }
    for label in name.split('.') {
        let b = label.as_bytes();
        if b.is_empty()
            || b.len() > 63
            || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            || b.first() == Some(&b'-')
            || b.last() == Some(&b'-')
        {
            return Err(format!(
                "host `{host}` is neither an IP address nor a DNS name (labels of `a-z`, `0-9` and `-`, separated by `.`)"
            ));
        }
    }
    // No top-level domain is all digits: `10.0.0.300` is a mistyped address, not a name.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("host `{host}` is not a valid IP address"));
    }
    Ok(XdsHost::Dns(name.to_ascii_lowercase()))
}

/// Envoy's admin endpoint. It never listens on anything but loopback.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AdminEndpoint {
    /// TCP on `127.0.0.1:PORT`.
    Loopback {
        /// The port, 1–65535.
        port: u16,
    },
    /// A unix socket at this absolute path, mode 0600.
    UnixSocket {
        /// The socket's path as Envoy will see it.
        path: PathBuf,
    },
    /// No admin endpoint at all.
    Disabled,
}

impl Default for AdminEndpoint {
    fn default() -> Self {
        Self::Loopback {
            port: DEFAULT_ADMIN_PORT,
        }
    }
}

/// Which ADS protocol Envoy speaks to the control plane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AdsMode {
    /// Incremental (delta) xDS: `DELTA_GRPC`.
    #[default]
    Delta,
    /// State-of-the-world xDS: `GRPC`.
    StateOfTheWorld,
}

/// Everything the bootstrap of one gateway depends on.
///
/// Build it with [`BootstrapParams::new`], then change the public fields that need other values
/// than the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BootstrapParams {
    /// The gateway this Envoy serves: its node id and cluster.
    pub gateway: GatewayName,
    /// The trust domain of the gateway's and the controller's SPIFFE IDs.
    pub trust_domain: TrustDomain,
    /// The control plane's xDS address.
    pub xds: XdsAddress,
    /// The gateway's certificate directory, as Envoy will see it: `chain.pem` (client
    /// certificate and CA chain), `key.pem` and `ca.pem` (trust bundle).
    pub certs_dir: PathBuf,
    /// The directory that will hold the two SDS files ([`CLIENT_CERTIFICATE_SDS_FILE`],
    /// [`TRUST_BUNDLE_SDS_FILE`]), as Envoy will see it.
    pub sds_dir: PathBuf,
    /// The admin endpoint.
    pub admin: AdminEndpoint,
    /// Delta or state-of-the-world ADS.
    pub ads: AdsMode,
    /// Heap size at which the overload manager acts (95 %: shrink the heap, 98 %: refuse new
    /// requests).
    pub max_heap_bytes: u64,
    /// Limit of active downstream connections over all listeners.
    pub max_downstream_connections: u64,
}

impl BootstrapParams {
    /// Parameters with the defaults: trust domain `gatehouse.local`, admin on
    /// `127.0.0.1:19000`, delta ADS, 1 GiB heap, 50000 connections.
    pub fn new(
        gateway: GatewayName,
        xds: XdsAddress,
        certs_dir: PathBuf,
        sds_dir: PathBuf,
    ) -> Self {
        Self {
            gateway,
            trust_domain: TrustDomain::default(),
            xds,
            certs_dir,
            sds_dir,
            admin: AdminEndpoint::default(),
            ads: AdsMode::default(),
            max_heap_bytes: DEFAULT_MAX_HEAP_BYTES,
            max_downstream_connections: DEFAULT_MAX_DOWNSTREAM_CONNECTIONS,
        }
    }

    /// The gateway's SPIFFE ID: Envoy's node id, which must equal the URI SAN of its client
    /// certificate.
    pub fn node_id(&self) -> String {
        Identity::Gateway(self.gateway.clone()).spiffe_id(&self.trust_domain)
    }

    /// The controller's SPIFFE ID, which Envoy requires in the control plane's certificate.
    pub fn controller_id(&self) -> String {
        Identity::Controller.spiffe_id(&self.trust_domain)
    }
}

/// The rendered files: the bootstrap and the two SDS resources it references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedBootstrap {
    /// The Envoy bootstrap (`envoy -c FILE`).
    pub bootstrap: String,
    /// The SDS file [`CLIENT_CERTIFICATE_SDS_FILE`].
    pub client_certificate_sds: String,
    /// The SDS file [`TRUST_BUNDLE_SDS_FILE`].
    pub trust_bundle_sds: String,
}

impl RenderedBootstrap {
    /// The SDS files, by their file name in [`BootstrapParams::sds_dir`].
    pub fn sds_files(&self) -> [(&'static str, &str); 2] {
        [
            (CLIENT_CERTIFICATE_SDS_FILE, &self.client_certificate_sds),
            (TRUST_BUNDLE_SDS_FILE, &self.trust_bundle_sds),
        ]
    }
}

/// Renders the bootstrap and its SDS files. Pure: reads no file, and the same parameters give
/// the same bytes.
pub fn render(params: &BootstrapParams) -> Result<RenderedBootstrap, BootstrapError> {
    let certs_dir = absolute_utf8("the certificate directory", &params.certs_dir)?;
    let sds_dir = absolute_utf8("the SDS directory", &params.sds_dir)?;
    let admin = admin(&params.admin)?;
    if params.max_heap_bytes < MIN_MAX_HEAP_BYTES {
        return Err(BootstrapError::MaxHeap {
            bytes: params.max_heap_bytes,
        });
    }
    let max_connections = i64::try_from(params.max_downstream_connections)
        .ok()
        .filter(|n| *n > 0)
        .ok_or(BootstrapError::MaxConnections {
            value: params.max_downstream_connections,
        })?;

    let file = |dir: &str, name: &str| format!("{}/{name}", dir.trim_end_matches('/'));
    let sds_config = |sds_file: &str| {
        json!({
            "resource_api_version": "V3",
            "path_config_source": {
                "path": file(sds_dir, sds_file),
                "watched_directory": { "path": certs_dir },
            },
        })
    };

    // An IP gives a STATIC cluster and no SNI; a DNS name a STRICT_DNS cluster, the name as
    // SNI, and `dns_lookup_family`. Absent fields are `null` here and dropped below.
    let (host, cluster_type, sni, dns_lookup_family) = match params.xds.host() {
        XdsHost::Ip(ip) => (ip.to_string(), "STATIC", None, None),
        // Envoy's default (AUTO) uses only IPv6 answers when there are any, so `localhost`
        // would resolve to `::1` even for a control plane that listens on 127.0.0.1 only.
        // V4_PREFERRED still falls back to IPv6 on an IPv6-only network.
        XdsHost::Dns(name) => (
            name.clone(),
            "STRICT_DNS",
            Some(name.as_str()),
            Some("V4_PREFERRED"),
        ),
    };
    let tls_context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": sni,
        "common_tls_context": {
            // Envoy's upstream maximum defaults to TLS 1.2: without the maximum, a minimum of
            // 1.3 validates but every handshake fails with NO_SUPPORTED_VERSIONS_ENABLED.
            "tls_params": {
                "tls_minimum_protocol_version": "TLSv1_3",
                "tls_maximum_protocol_version": "TLSv1_3",
            },
            "tls_certificate_sds_secret_configs": [{
                "name": CLIENT_CERTIFICATE_SECRET,
                "sds_config": sds_config(CLIENT_CERTIFICATE_SDS_FILE),
            }],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_typed_subject_alt_names": [{
                        "san_type": "URI",
                        "matcher": { "exact": params.controller_id() },
                    }],
                },
                "validation_context_sds_secret_config": {
                    "name": TRUST_BUNDLE_SECRET,
                    "sds_config": sds_config(TRUST_BUNDLE_SDS_FILE),
                },
            },
        },
    });
    let xds_cluster = json!({
        "name": XDS_CLUSTER,
        "type": cluster_type,
        "dns_lookup_family": dns_lookup_family,
        "connect_timeout": "5s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": { "interval": "30s", "timeout": "5s" },
                    },
                },
            },
        },
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [{
                "lb_endpoints": [{
                    "endpoint": {
                        "address": {
                            "socket_address": { "address": host, "port_value": params.xds.port() },
                        },
                    },
                }],
            }],
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": tls_context,
        },
    });

    let ads_api_type = match params.ads {
        AdsMode::Delta => "DELTA_GRPC",
        AdsMode::StateOfTheWorld => "GRPC",
    };
    let bootstrap = json!({
        "admin": admin,
        "node": {
            "id": params.node_id(),
            "cluster": params.gateway.to_string(),
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": ads_api_type,
                "transport_api_version": "V3",
                "set_node_on_first_message_only": true,
                "grpc_services": [{ "envoy_grpc": { "cluster_name": XDS_CLUSTER } }],
            },
            "cds_config": { "ads": {}, "resource_api_version": "V3" },
            "lds_config": { "ads": {}, "resource_api_version": "V3" },
        },
        "static_resources": { "clusters": [xds_cluster] },
        "overload_manager": {
            "refresh_interval": "0.25s",
            "resource_monitors": [
                {
                    "name": FIXED_HEAP,
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                        "max_heap_size_bytes": params.max_heap_bytes,
                    },
                },
                {
                    "name": DOWNSTREAM_CONNECTIONS,
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": max_connections,
                    },
                },
            ],
            "actions": [
                heap_action("envoy.overload_actions.shrink_heap", 0.95),
                heap_action("envoy.overload_actions.stop_accepting_requests", 0.98),
            ],
        },
    });

    // Envoy's file-based SDS takes exactly one secret per file.
    let client_certificate = json!({
        "resources": [{
            "@type": SECRET_TYPE,
            "name": CLIENT_CERTIFICATE_SECRET,
            "tls_certificate": {
                "certificate_chain": { "filename": file(certs_dir, CHAIN_FILE) },
                "private_key": { "filename": file(certs_dir, KEY_FILE) },
                "watched_directory": { "path": certs_dir },
            },
        }],
    });
    let trust_bundle = json!({
        "resources": [{
            "@type": SECRET_TYPE,
            "name": TRUST_BUNDLE_SECRET,
            "validation_context": {
                "trusted_ca": { "filename": file(certs_dir, BUNDLE_FILE) },
                "watched_directory": { "path": certs_dir },
            },
        }],
    });

    let header = |what: &str| {
        format!(
            "# {what} of gateway {}, rendered by `gatehouse bootstrap`: re-render it, do not edit it.\n",
            params.gateway
        )
    };
    Ok(RenderedBootstrap {
        bootstrap: header("Envoy bootstrap") + &to_yaml(bootstrap)?,
        client_certificate_sds: header("SDS client certificate") + &to_yaml(client_certificate)?,
        trust_bundle_sds: header("SDS trust bundle") + &to_yaml(trust_bundle)?,
    })
}

fn heap_action(name: &str, threshold: f64) -> Value {
    json!({
        "name": name,
        "triggers": [{ "name": FIXED_HEAP, "threshold": { "value": threshold } }],
    })
}

fn admin(admin: &AdminEndpoint) -> Result<Option<Value>, BootstrapError> {
    let address = match admin {
        AdminEndpoint::Disabled => return Ok(None),
        AdminEndpoint::Loopback { port: 0 } => {
            return Err(BootstrapError::Admin {
                reason: "port 0 would pick a random port (give a port from 1 to 65535)".to_owned(),
            });
        }
        AdminEndpoint::Loopback { port } => json!({
            "socket_address": { "address": "127.0.0.1", "port_value": port },
        }),
        AdminEndpoint::UnixSocket { path } => {
            let path = absolute_utf8("the admin socket", path)?;
            if path.len() > MAX_UNIX_SOCKET_PATH {
                return Err(BootstrapError::Admin {
                    reason: format!(
                        "the socket path `{path}` is longer than {MAX_UNIX_SOCKET_PATH} bytes, the limit of unix sockets (choose a shorter path)"
                    ),
                });
            }
            json!({ "pipe": { "path": path, "mode": 0o600 } })
        }
    };
    Ok(Some(json!({ "address": address })))
}

/// The path as text, if it is absolute and UTF-8, without trailing `/`.
fn absolute_utf8<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, BootstrapError> {
    let Some(s) = path.to_str() else {
        return Err(BootstrapError::NonUtf8Path {
            what,
            path: path.to_owned(),
        });
    };
    if !path.is_absolute() {
        return Err(BootstrapError::RelativePath {
            what,
            path: path.to_owned(),
        });
    }
    let trimmed = s.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed })
}

/// Drops the `null` fields of objects, at any depth: an absent optional setting.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn to_yaml(v: Value) -> Result<String, BootstrapError> {
    // Sorted keys whatever serde_json's `preserve_order` (which another crate in the graph
    // switches on), long strings as plain scalars: see `crate::yaml`.
    Ok(crate::yaml::to_yaml(&without_nulls(v))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(xds: &str) -> BootstrapParams {
        BootstrapParams::new(
            "edge/public".parse().unwrap(),
            xds.parse().unwrap(),
            PathBuf::from("/etc/gatehouse/certs"),
            PathBuf::from("/etc/envoy"),
        )
    }

    fn yaml(s: &str) -> Value {
        serde_saphyr::from_str(s).unwrap()
    }

    fn bootstrap(p: &BootstrapParams) -> Value {
        yaml(&render(p).unwrap().bootstrap)
    }

    fn xds_cluster(b: &Value) -> &Value {
        &b["static_resources"]["clusters"][0]
    }

    fn tls(b: &Value) -> &Value {
        &xds_cluster(b)["transport_socket"]["typed_config"]
    }

    #[test]
    fn rendering_is_deterministic() {
        for xds in ["127.0.0.1:18000", "xds.example.com:18000"] {
            let p = params(xds);
            let a = render(&p).unwrap();
            let b = render(&p.clone()).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.bootstrap.as_bytes(), b.bootstrap.as_bytes());
        }
    }

    #[test]
    fn tls_is_1_3_only_in_both_directions() {
        let b = bootstrap(&params("127.0.0.1:18000"));
        let tls_params = &tls(&b)["common_tls_context"]["tls_params"];
        assert_eq!(tls_params["tls_minimum_protocol_version"], "TLSv1_3");
        assert_eq!(tls_params["tls_maximum_protocol_version"], "TLSv1_3");
    }

    #[test]
    fn node_id_is_the_gateway_spiffe_id() {
        let mut p = params("127.0.0.1:18000");
        let b = bootstrap(&p);
        assert_eq!(
            b["node"]["id"],
            "spiffe://gatehouse.local/gateway/edge/public"
        );
        assert_eq!(b["node"]["cluster"], "edge/public");

        p.trust_domain = "prod.example".parse().unwrap();
        let b = bootstrap(&p);
        assert_eq!(b["node"]["id"], "spiffe://prod.example/gateway/edge/public");
        let san = &tls(&b)["common_tls_context"]["combined_validation_context"]["default_validation_context"]
            ["match_typed_subject_alt_names"];
        assert_eq!(san[0]["san_type"], "URI");
        assert_eq!(
            san[0]["matcher"]["exact"],
            "spiffe://prod.example/controller"
        );
    }

    #[test]
    fn admin_binds_loopback_or_a_socket_or_nothing() {
        let mut p = params("127.0.0.1:18000");
        let b = bootstrap(&p);
        let sa = &b["admin"]["address"]["socket_address"];
        assert_eq!(sa["address"], "127.0.0.1");
        assert_eq!(sa["port_value"], 19000);

        p.admin = AdminEndpoint::Loopback { port: 9901 };
        let b = bootstrap(&p);
        assert_eq!(b["admin"]["address"]["socket_address"]["port_value"], 9901);

        p.admin = AdminEndpoint::UnixSocket {
            path: PathBuf::from("/run/envoy/admin.sock"),
        };
        let b = bootstrap(&p);
        assert_eq!(
            b["admin"]["address"],
            json!({ "pipe": { "path": "/run/envoy/admin.sock", "mode": 0o600 } })
        );

        p.admin = AdminEndpoint::Disabled;
        let out = render(&p).unwrap().bootstrap;
        assert!(yaml(&out).get("admin").is_none(), "{out}");

        // Whatever the admin setting, no address in the bootstrap is a wildcard.
        for admin in [
            AdminEndpoint::default(),
            AdminEndpoint::Disabled,
            AdminEndpoint::UnixSocket {
                path: "/run/a.sock".into(),
            },
        ] {
            p.admin = admin;
            let out = render(&p).unwrap().bootstrap;
            assert!(!out.contains("0.0.0.0") && !out.contains("'::'"), "{out}");
        }
    }

    #[test]
    fn bad_admin_endpoints_are_rejected() {
        let mut p = params("127.0.0.1:18000");
        p.admin = AdminEndpoint::Loopback { port: 0 };
        assert!(render(&p).unwrap_err().to_string().contains("port 0"));
        p.admin = AdminEndpoint::UnixSocket {
            path: "admin.sock".into(),
        };
        let e = render(&p).unwrap_err().to_string();
        assert!(e.contains("`admin.sock` is not an absolute path"), "{e}");
        p.admin = AdminEndpoint::UnixSocket {
            path: PathBuf::from(format!("/{}", "a".repeat(107))),
        };
        let e = render(&p).unwrap_err().to_string();
        assert!(e.contains("longer than 107 bytes"), "{e}");
    }

    #[test]
    fn an_ip_host_is_static_without_sni() {
        for (xds, address) in [("127.0.0.1:18000", "127.0.0.1"), ("[::1]:18000", "::1")] {
            let b = bootstrap(&params(xds));
            let c = xds_cluster(&b);
            assert_eq!(c["type"], "STATIC", "{xds}");
            assert!(c.get("dns_lookup_family").is_none());
            assert!(tls(&b).get("sni").is_none(), "{xds}: no SNI for an IP");
            let sa = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"];
            assert_eq!(sa["address"], address);
            assert_eq!(sa["port_value"], 18000);
        }
    }

    #[test]
    fn a_dns_host_is_strict_dns_with_sni() {
        let b = bootstrap(&params("XDS.Example.com:18443"));
        let c = xds_cluster(&b);
        assert_eq!(c["type"], "STRICT_DNS");
        assert_eq!(c["dns_lookup_family"], "V4_PREFERRED");
        assert_eq!(tls(&b)["sni"], "xds.example.com");
        let sa = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(sa["address"], "xds.example.com");
        assert_eq!(sa["port_value"], 18443);
    }

    #[test]
    fn bad_xds_addresses_are_rejected_with_the_reason() {
        for (input, reason) in [
            ("127.0.0.1", "there is no `:PORT`"),
            ("xds.example.com", "there is no `:PORT`"),
            ("xds.example.com:", "the port is empty"),
            ("xds.example.com:http", "the port is not a number"),
            ("xds.example.com:65536", "the port is above 65535"),
            ("xds.example.com:0", "port 0"),
            (":18000", "the host is empty"),
            ("::1:18000", "must be in brackets"),
            ("[::1:18000", "not closed"),
            ("[::1]18000", "no `:PORT` after"),
            ("[10.0.0.1]:18000", "not an IPv6 address"),
            ("10.0.0.300:18000", "not a valid IP address"),
            ("xds_server:18000", "neither an IP address nor a DNS name"),
            (
                "-xds.example.com:18000",
                "neither an IP address nor a DNS name",
            ),
            ("https://xds.example.com:18000", "URL scheme"),
        ] {
            let e = input.parse::<XdsAddress>().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid xDS address `{input}`: ")),
                "{input}: {e}"
            );
            assert!(e.contains(reason), "{input}: {e}");
            assert!(e.contains("expected `HOST:PORT`"), "{input}: {e}");
        }
        for ok in [
            "127.0.0.1:1",
            "[fd00::5]:18000",
            "localhost:18000",
            "xds.:443",
        ] {
            let a: XdsAddress = ok.parse().unwrap();
            assert_eq!(a.to_string(), ok.replace(".:", ":"));
        }
    }

    #[test]
    fn ads_mode_selects_the_api_type() {
        let mut p = params("127.0.0.1:18000");
        let b = bootstrap(&p);
        let ads = &b["dynamic_resources"]["ads_config"];
        assert_eq!(ads["api_type"], "DELTA_GRPC");
        assert_eq!(ads["transport_api_version"], "V3");
        assert_eq!(ads["set_node_on_first_message_only"], true);
        assert_eq!(
            ads["grpc_services"][0]["envoy_grpc"]["cluster_name"],
            XDS_CLUSTER
        );
        for config in ["cds_config", "lds_config"] {
            assert_eq!(
                b["dynamic_resources"][config],
                json!({ "ads": {}, "resource_api_version": "V3" })
            );
        }
        p.ads = AdsMode::StateOfTheWorld;
        assert_eq!(
            bootstrap(&p)["dynamic_resources"]["ads_config"]["api_type"],
            "GRPC"
        );
    }

    #[test]
    fn secrets_come_from_file_sds_watching_the_certificate_directory() {
        let p = params("127.0.0.1:18000");
        let r = render(&p).unwrap();
        let b = yaml(&r.bootstrap);
        let ctx = &tls(&b)["common_tls_context"];
        let sds = |file: &str| {
            json!({
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": format!("/etc/envoy/{file}"),
                    "watched_directory": { "path": "/etc/gatehouse/certs" },
                },
            })
        };
        assert_eq!(
            ctx["tls_certificate_sds_secret_configs"],
            json!([{ "name": "xds-client-certificate", "sds_config": sds(CLIENT_CERTIFICATE_SDS_FILE) }])
        );
        assert_eq!(
            ctx["combined_validation_context"]["validation_context_sds_secret_config"],
            json!({ "name": "xds-trust-bundle", "sds_config": sds(TRUST_BUNDLE_SDS_FILE) })
        );
        assert!(ctx.get("tls_certificates").is_none() && ctx.get("validation_context").is_none());

        // Envoy's file-based SDS takes exactly one secret per file.
        let cert = yaml(&r.client_certificate_sds);
        assert_eq!(
            cert,
            json!({ "resources": [{
                "@type": SECRET_TYPE,
                "name": "xds-client-certificate",
                "tls_certificate": {
                    "certificate_chain": { "filename": "/etc/gatehouse/certs/chain.pem" },
                    "private_key": { "filename": "/etc/gatehouse/certs/key.pem" },
                    "watched_directory": { "path": "/etc/gatehouse/certs" },
                },
            }]})
        );
        let bundle = yaml(&r.trust_bundle_sds);
        assert_eq!(
            bundle,
            json!({ "resources": [{
                "@type": SECRET_TYPE,
                "name": "xds-trust-bundle",
                "validation_context": {
                    "trusted_ca": { "filename": "/etc/gatehouse/certs/ca.pem" },
                    "watched_directory": { "path": "/etc/gatehouse/certs" },
                },
            }]})
        );
        assert_eq!(
            r.sds_files().map(|(name, _)| name),
            [CLIENT_CERTIFICATE_SDS_FILE, TRUST_BUNDLE_SDS_FILE]
        );
    }

    #[test]
    fn overload_manager_limits_heap_and_connections() {
        let mut p = params("127.0.0.1:18000");
        p.max_heap_bytes = 2 << 30;
        p.max_downstream_connections = 1234;
        let b = bootstrap(&p);
        let om = &b["overload_manager"];
        assert_eq!(om["refresh_interval"], "0.25s");
        assert_eq!(om["resource_monitors"][0]["name"], FIXED_HEAP);
        assert_eq!(
            om["resource_monitors"][0]["typed_config"]["max_heap_size_bytes"],
            2u64 << 30
        );
        assert_eq!(om["resource_monitors"][1]["name"], DOWNSTREAM_CONNECTIONS);
        assert_eq!(
            om["resource_monitors"][1]["typed_config"]["max_active_downstream_connections"],
            1234
        );
        assert_eq!(
            om["actions"][0],
            heap_action("envoy.overload_actions.shrink_heap", 0.95)
        );
        assert_eq!(
            om["actions"][1],
            heap_action("envoy.overload_actions.stop_accepting_requests", 0.98)
        );

        let d = bootstrap(&params("127.0.0.1:18000"));
        let monitors = &d["overload_manager"]["resource_monitors"];
        assert_eq!(
            monitors[0]["typed_config"]["max_heap_size_bytes"],
            1u64 << 30
        );
        assert_eq!(
            monitors[1]["typed_config"]["max_active_downstream_connections"],
            50000
        );
    }

    #[test]
    fn limits_and_paths_are_checked() {
        let mut p = params("127.0.0.1:18000");
        p.max_heap_bytes = 1024;
        let e = render(&p).unwrap_err().to_string();
        assert!(
            e.contains("1024 bytes is below") && e.contains("in bytes"),
            "{e}"
        );

        for n in [0, u64::MAX] {
            let mut p = params("127.0.0.1:18000");
            p.max_downstream_connections = n;
            let e = render(&p).unwrap_err().to_string();
            assert!(
                e.contains("maximum downstream connections must be between 1"),
                "{e}"
            );
        }

        let mut p = params("127.0.0.1:18000");
        p.certs_dir = "certs/gateways/edge/public".into();
        let e = render(&p).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "the certificate directory `certs/gateways/edge/public` is not an absolute path"
            ),
            "{e}"
        );
        let mut p = params("127.0.0.1:18000");
        p.sds_dir = "out".into();
        let e = render(&p).unwrap_err().to_string();
        assert!(
            e.starts_with("the SDS directory `out` is not an absolute path"),
            "{e}"
        );

        let mut p = params("127.0.0.1:18000");
        p.certs_dir = PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/etc/\xff"),
        );
        let e = render(&p).unwrap_err().to_string();
        assert!(e.contains("is not valid UTF-8"), "{e}");
    }

    #[test]
    fn long_strings_stay_plain_scalars() {
        let mut p = params("127.0.0.1:18000");
        p.certs_dir = PathBuf::from(format!("/{}", "very-long-directory-name/".repeat(6)));
        let r = render(&p).unwrap();
        for text in [&r.bootstrap, &r.client_certificate_sds, &r.trust_bundle_sds] {
            assert!(!text.contains(": >") && !text.contains(": |"), "{text}");
        }
        // A trailing `/` does not double up in file names.
        assert!(
            r.client_certificate_sds
                .contains("very-long-directory-name/chain.pem")
        );
        assert!(!r.client_certificate_sds.contains("//"));
    }
}
