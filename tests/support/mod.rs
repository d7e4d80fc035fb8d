//! Shared pieces of the end-to-end tests: a real Envoy process, a real upstream HTTP server and
//! client on loopback, and Envoy resources to push.

#![allow(dead_code, unreachable_pub, reason = "each test file uses a part")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::Address;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, SocketAddress, address, config_source,
    socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::google::protobuf::Any;
use http_body_util::{BodyExt as _, Full};
use prost::{Message, Name};

/// The Envoy binary: `$GATEHOUSE_ENVOY`, else `.venv/bin/envoy` in the checkout.
pub fn envoy_bin() -> PathBuf {
    let p = std::env::var_os("GATEHOUSE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/envoy"));
    assert!(
        p.exists(),
        "Envoy not found at {}: run `make deps`",
        p.display()
    );
    p
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Envoy, killed when dropped. Its log is kept in a file for failure messages.
pub struct Envoy {
    child: Child,
    pub log: PathBuf,
}

impl Envoy {
    pub fn start(bootstrap: &Path, workdir: &Path) -> Self {
        let log = workdir.join("envoy.log");
        let base_id = u32::from(free_port());
        let child = Command::new(envoy_bin())
            .args([
                "-c",
                bootstrap.to_str().unwrap(),
                "--base-id",
                &base_id.to_string(),
                "--disable-hot-restart",
            ])
            .args(["-l", "info", "--log-path", log.to_str().unwrap()])
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start envoy");
        Self { child, log }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An upstream HTTP/1.1 server on 127.0.0.1 that answers every request with `body`.
pub async fn upstream(body: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        body.as_bytes(),
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// An HTTP client.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// GET `url`: the status and body, or `None` if no response came within 2 s.
pub async fn get(client: &Client, url: &str) -> Option<(u16, String)> {
    let req = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(2), client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Polls `url` until it answers `status`, for at most `within`; returns how long it took.
pub async fn wait_for_status(
    client: &Client,
    url: &str,
    status: u16,
    within: Duration,
) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    while start.elapsed() < within {
        if get(client, url).await.map(|(s, _)| s) == Some(status) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

pub fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn socket(ip: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

/// A static cluster pointing at `upstream`.
pub fn static_cluster(name: &str, upstream: SocketAddr) -> Cluster {
    Cluster {
        name: name.into(),
        connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
            seconds: 1,
            nanos: 0,
        }),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket(&upstream.ip().to_string(), upstream.port())),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An HTTP listener on 127.0.0.1:`port` whose routes come from RDS `route_name` over ADS.
pub fn http_listener(name: &str, port: u16, route_name: &str) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: name.into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ConfigSource {
                resource_api_version: ApiVersion::V3 as i32,
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
            route_config_name: route_name.into(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(
                any(&Router::default()),
            )),
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: name.into(),
        address: Some(socket("127.0.0.1", port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A route configuration: each `(prefix, cluster)` pair is a prefix route.
pub fn routes(name: &str, table: &[(&str, &str)]) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: table
                .iter()
                .map(|(prefix, cluster)| Route {
                    r#match: Some(RouteMatch {
                        path_specifier: Some(route_match::PathSpecifier::Prefix((*prefix).into())),
                        ..Default::default()
                    }),
                    action: Some(route::Action::Route(RouteAction {
                        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                            (*cluster).into(),
                        )),
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

/// GET `https://HOST:PORT/PATH` on 127.0.0.1 with SNI `host`, trusting `ca_pem`, optionally
/// presenting a client certificate. `Err` carries the TLS or HTTP error.
pub async fn https_get(
    port: u16,
    host: &str,
    path: &str,
    ca_pem: &[u8],
    client: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let cfg = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name =
        rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| format!("http: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// GET with headers on 127.0.0.1.
pub async fn get_with(
    client: &Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let mut req = hyper::Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(req.body(Full::new(Bytes::new())).unwrap()),
    )
    .await
    .ok()?
    .ok()?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Kills the process (and waits for it) when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA store for tests: the CA, one gateway's client certificate in the store, and the
/// controller's TLS server configuration (serving certificate for 127.0.0.1).
pub struct TestPki {
    pub store: gatehouse_certs::CaStore,
    pub ca: gatehouse_certs::CertificateAuthority,
    pub tls: std::sync::Arc<rustls::ServerConfig>,
}

/// Creates `DIR/pki` with a new CA and `gateway`'s certificate.
pub fn test_pki(dir: &Path, gateway: &gatehouse_certs::GatewayName) -> TestPki {
    use gatehouse_certs::{
        CaStore, CertificateAuthority, Identity, LeafRequest, ReloadableCert, SystemClock,
        TrustDomain,
    };
    use std::sync::Arc;
    use std::time::SystemTime;
    let pki = dir.join("pki");
    std::fs::create_dir(&pki).unwrap();
    let store = CaStore::open(&pki).unwrap();
    let ca = CertificateAuthority::generate(
        TrustDomain::default(),
        Duration::from_secs(365 * 86_400),
        SystemTime::now(),
    )
    .unwrap();
    store.init(&ca, false).unwrap();
    let leaf = ca
        .issue(
            &LeafRequest::new(Identity::Gateway(gateway.clone())),
            SystemTime::now(),
        )
        .unwrap();
    store.write_leaf(&leaf, &ca.trust_anchors()).unwrap();
    let mut req = LeafRequest::new(Identity::Controller);
    req.ip_addresses = vec!["127.0.0.1".parse().unwrap()];
    let cert = ReloadableCert::new(&ca.issue(&req, SystemTime::now()).unwrap()).unwrap();
    let tls = Arc::new(
        gatehouse_certs::server_config(&ca.trust_anchors(), Arc::new(cert), Arc::new(SystemClock))
            .unwrap(),
    );
    TestPki { store, ca, tls }
}

/// Writes `gateway`'s Envoy bootstrap and SDS files into `workdir` (created), xDS at `xds`,
/// admin on a free loopback port; returns the bootstrap's path.
pub fn write_bootstrap(
    store: &gatehouse_certs::CaStore,
    gateway: &gatehouse_certs::GatewayName,
    xds: SocketAddr,
    workdir: &Path,
    ads: gatehouse_deploy::AdsMode,
) -> PathBuf {
    use gatehouse_deploy::{AdminEndpoint, BootstrapParams, XdsAddress};
    std::fs::create_dir_all(workdir).unwrap();
    let mut params = BootstrapParams::new(
        gateway.clone(),
        xds.to_string().parse::<XdsAddress>().unwrap(),
        store.leaf_dir(&gatehouse_certs::Identity::Gateway(gateway.clone())),
        workdir.to_owned(),
    );
    params.admin = AdminEndpoint::Loopback { port: free_port() };
    params.ads = ads;
    let rendered = gatehouse_deploy::render_bootstrap(&params).unwrap();
    let bootstrap = workdir.join("envoy.yaml");
    std::fs::write(&bootstrap, &rendered.bootstrap).unwrap();
    for (name, content) in rendered.sds_files() {
        std::fs::write(workdir.join(name), content).unwrap();
    }
    bootstrap
}
pub mod kube_api;
