//! Envoy resource builders with Gatehouse's edge defaults (use the remote address, normalise
//! paths, reject headers with underscores, bounded buffers, timeouts and HTTP/2 limits).

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, Http2ProtocolOptions,
    HttpProtocolOptions, SocketAddress, TransportSocket, address, config_source,
    http_protocol_options, socket_address, transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, TlsParameters, UpstreamTlsContext,
    common_tls_context::ValidationContextType, tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions as UpstreamHttpOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};
use prost::{Message, Name};

/// Per-connection buffer limit on listeners and clusters (Envoy's edge guidance).
pub(crate) const BUFFER_LIMIT: u32 = 32 * 1024;

pub(crate) fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

pub(crate) fn secs(s: i64) -> Option<Duration> {
    Some(Duration {
        seconds: s,
        nanos: 0,
    })
}

pub(crate) fn millis(ms: u64) -> Option<Duration> {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let nanos = i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0);
    Some(Duration {
        seconds: secs,
        nanos,
    })
}

pub(crate) fn ads() -> Option<ConfigSource> {
    Some(ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    })
}

pub(crate) fn socket(ip: &str, port: u16) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_owned(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    })
}

pub(crate) fn sds(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_owned(),
        sds_config: ads(),
    }
}

/// An HTTP connection manager with the edge defaults, routes from RDS `route_name`, and the
/// given HTTP filters before the router.
pub(crate) fn http_connection_manager(
    stat_prefix: &str,
    route_name: &str,
    mut filters: Vec<HttpFilter>,
) -> HttpConnectionManager {
    filters.push(HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(
            any(&Router::default()),
        )),
        ..Default::default()
    });
    HttpConnectionManager {
        codec_type: http_connection_manager::CodecType::Auto as i32,
        stat_prefix: stat_prefix.to_owned(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: ads(),
            route_config_name: route_name.to_owned(),
        })),
        http_filters: filters,
        // The client address is the peer's, never an X-Forwarded-For a client wrote.
        use_remote_address: Some(BoolValue { value: true }),
        xff_num_trusted_hops: 0,
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        path_with_escaped_slashes_action:
            http_connection_manager::PathWithEscapedSlashesAction::UnescapeAndRedirect as i32,
        strip_port_mode: Some(http_connection_manager::StripPortMode::StripAnyHostPort(
            true,
        )),
        common_http_protocol_options: Some(HttpProtocolOptions {
            idle_timeout: secs(3600),
            headers_with_underscores_action:
                http_protocol_options::HeadersWithUnderscoresAction::RejectRequest as i32,
            ..Default::default()
        }),
        http2_protocol_options: Some(Http2ProtocolOptions {
            max_concurrent_streams: Some(UInt32Value { value: 100 }),
            initial_stream_window_size: Some(UInt32Value { value: 65_536 }),
            initial_connection_window_size: Some(UInt32Value { value: 1_048_576 }),
            ..Default::default()
        }),
        stream_idle_timeout: secs(300),
        request_timeout: secs(300),
        request_headers_timeout: secs(10),
        server_name: "gatehouse".into(),
        ..Default::default()
    }
}

fn hcm_filter(hcm: &HttpConnectionManager) -> Filter {
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(hcm))),
    }
}

/// A plain-HTTP listener on `port` with one filter chain.
pub(crate) fn http_listener(
    name: &str,
    bind: &str,
    port: u16,
    hcm: &HttpConnectionManager,
) -> Listener {
    Listener {
        name: name.to_owned(),
        address: socket(bind, port),
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: BUFFER_LIMIT,
        }),
        filter_chains: vec![FilterChain {
            filters: vec![hcm_filter(hcm)],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One TLS filter chain of an HTTPS listener.
pub(crate) struct TlsChain {
    /// SNI names (empty: the catch-all chain).
    pub(crate) server_names: Vec<String>,
    /// SDS names of the serving certificates.
    pub(crate) certificates: Vec<String>,
    /// SDS name of a CA to require client certificates against, with required SANs.
    pub(crate) client_ca: Option<(String, Vec<String>)>,
    pub(crate) hcm: HttpConnectionManager,
}

/// An HTTPS listener on `port`: TLS 1.2+ with SNI-selected chains.
pub(crate) fn https_listener(name: &str, bind: &str, port: u16, chains: &[TlsChain]) -> Listener {
    let filter_chains = chains
        .iter()
        .map(|c| {
            let mut common = CommonTlsContext {
                tls_params: Some(TlsParameters {
                    tls_minimum_protocol_version: TlsProtocol::TlSv12 as i32,
                    ..Default::default()
                }),
                tls_certificate_sds_secret_configs: c.certificates.iter().map(|n| sds(n)).collect(),
                alpn_protocols: vec!["h2".into(), "http/1.1".into()],
                ..Default::default()
            };
            let mut require = false;
            if let Some((ca, sans)) = &c.client_ca {
                require = true;
                if sans.is_empty() {
                    common.validation_context_type = Some(
                        ValidationContextType::ValidationContextSdsSecretConfig(sds(ca)),
                    );
                } else {
                    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
                        CertificateValidationContext, SubjectAltNameMatcher,
                        common_tls_context::CombinedCertificateValidationContext,
                        subject_alt_name_matcher::SanType,
                    };
                    use envoy_types::pb::envoy::r#type::matcher::v3::{
                        StringMatcher, string_matcher::MatchPattern,
                    };
                    common.validation_context_type =
                        Some(ValidationContextType::CombinedValidationContext(
                            CombinedCertificateValidationContext {
                                default_validation_context: Some(CertificateValidationContext {
                                    match_typed_subject_alt_names: sans
                                        .iter()
                                        .flat_map(|s| {
                                            [SanType::Dns, SanType::Uri, SanType::Email]
                                                .into_iter()
                                                .map(move |t| SubjectAltNameMatcher {
                                                    san_type: t as i32,
                                                    matcher: Some(StringMatcher {
                                                        match_pattern: Some(MatchPattern::Exact(
                                                            s.clone(),
                                                        )),
                                                        ignore_case: false,
                                                    }),
                                                    ..Default::default()
                                                })
                                        })
                                        .collect(),
                                    ..Default::default()
                                }),
                                validation_context_sds_secret_config: Some(sds(ca)),
                                ..Default::default()
                            },
                        ));
                }
            }
            let tls = DownstreamTlsContext {
                common_tls_context: Some(common),
                require_client_certificate: Some(BoolValue { value: require }),
                ..Default::default()
            };
            FilterChain {
                filter_chain_match: (!c.server_names.is_empty()).then(|| FilterChainMatch {
                    server_names: c.server_names.clone(),
                    ..Default::default()
                }),
                filters: vec![hcm_filter(&c.hcm)],
                transport_socket: Some(TransportSocket {
                    name: "envoy.transport_sockets.tls".into(),
                    config_type: Some(transport_socket::ConfigType::TypedConfig(any(&tls))),
                }),
                transport_socket_connect_timeout: secs(10),
                ..Default::default()
            }
        })
        .collect();
    Listener {
        name: name.to_owned(),
        address: socket(bind, port),
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: BUFFER_LIMIT,
        }),
        listener_filters: vec![ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(any(
                &TlsInspector::default(),
            ))),
            ..Default::default()
        }],
        filter_chains,
        ..Default::default()
    }
}

/// An EDS cluster (endpoints come as a separate ClusterLoadAssignment), optionally over TLS
/// and optionally speaking HTTP/2 (gRPC backends).
pub(crate) fn eds_cluster(name: &str, http2: bool, tls: Option<(&str, &str)>) -> Cluster {
    let mut c = Cluster {
        name: name.to_owned(),
        connect_timeout: secs(5),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: ads(),
            service_name: String::new(),
        }),
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: BUFFER_LIMIT,
        }),
        ..Default::default()
    };
    if http2 {
        let opts = UpstreamHttpOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(
                        explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                            Http2ProtocolOptions {
                                max_concurrent_streams: Some(UInt32Value { value: 100 }),
                                initial_stream_window_size: Some(UInt32Value { value: 65_536 }),
                                initial_connection_window_size: Some(UInt32Value {
                                    value: 1_048_576,
                                }),
                                ..Default::default()
                            },
                        ),
                    ),
                },
            )),
            ..Default::default()
        };
        c.typed_extension_protocol_options.insert(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
            any(&opts),
        );
    }
    if let Some((sni, ca)) = tls {
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, SubjectAltNameMatcher,
            common_tls_context::CombinedCertificateValidationContext,
            subject_alt_name_matcher::SanType,
        };
        use envoy_types::pb::envoy::r#type::matcher::v3::{
            StringMatcher, string_matcher::MatchPattern,
        };
        let ctx = UpstreamTlsContext {
            sni: sni.to_owned(),
            common_tls_context: Some(CommonTlsContext {
                tls_params: Some(TlsParameters {
                    tls_minimum_protocol_version: TlsProtocol::TlSv12 as i32,
                    ..Default::default()
                }),
                validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(CertificateValidationContext {
                            match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                                san_type: SanType::Dns as i32,
                                matcher: Some(StringMatcher {
                                    match_pattern: Some(MatchPattern::Exact(sni.to_owned())),
                                    ignore_case: false,
                                }),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                        validation_context_sds_secret_config: Some(sds(ca)),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        c.transport_socket = Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(any(&ctx))),
        });
    }
    c
}

/// The endpoints of an EDS cluster.
pub(crate) fn load_assignment(cluster: &str, endpoints: &[(String, u16)]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster.to_owned(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: endpoints
                .iter()
                .map(|(ip, port)| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: socket(ip, *port),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}
