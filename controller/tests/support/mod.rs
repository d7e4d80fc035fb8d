//! A real xDS server on 127.0.0.1:0 over real mTLS, and a small xDS client to drive it.

#![allow(dead_code, unreachable_pub, reason = "each test file uses a part")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use gatehouse_certs::{
    CertificateAuthority, Identity, IssuedLeaf, LeafRequest, ReloadableCert, SystemClock,
    TrustDomain,
};
use gatehouse_controller::xds::{ProxyRegistry, XdsServer, XdsServerConfig};
use gatehouse_controller::{ResourceType, SnapshotCache};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};

pub const DAY: Duration = Duration::from_secs(86_400);

pub struct Harness {
    pub addr: SocketAddr,
    pub cache: Arc<SnapshotCache>,
    pub registry: Arc<ProxyRegistry>,
    pub ca: CertificateAuthority,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(XdsServerConfig::default()).await
    }

    pub async fn start_with(config: XdsServerConfig) -> Self {
        let ca = CertificateAuthority::generate(
            TrustDomain::default(),
            365 * DAY,
            SystemTime::now() - 3 * DAY,
        )
        .unwrap();
        let mut req = LeafRequest::new(Identity::Controller);
        req.dns_names = vec!["localhost".into()];
        let cert = ReloadableCert::new(&ca.issue(&req, SystemTime::now()).unwrap()).unwrap();
        let tls = gatehouse_certs::server_config(
            &ca.trust_anchors(),
            Arc::new(cert),
            Arc::new(SystemClock),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cache = Arc::new(SnapshotCache::new());
        let registry = Arc::new(ProxyRegistry::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = XdsServer::new(cache.clone(), registry.clone(), config);
        tokio::spawn(server.serve(listener, Arc::new(tls), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            cache,
            registry,
            ca,
            _stop: stop,
        }
    }

    pub fn gateway_leaf(&self, gw: &str) -> IssuedLeaf {
        self.ca
            .issue(
                &LeafRequest::new(Identity::Gateway(gw.parse().unwrap())),
                SystemTime::now(),
            )
            .unwrap()
    }

    pub async fn client(
        &self,
        leaf: &IssuedLeaf,
    ) -> Result<AggregatedDiscoveryServiceClient<Channel>, tonic::transport::Error> {
        client_for(self.addr, &self.ca.chain_pem(), leaf).await
    }

    pub fn security_kinds(&self) -> Vec<&'static str> {
        self.registry
            .security_events()
            .iter()
            .map(|e| e.kind)
            .collect()
    }

    /// Waits until a security event of `kind` is recorded.
    pub async fn wait_security(&self, kind: &str) {
        for _ in 0..100 {
            if self.security_kinds().contains(&kind) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no `{kind}` security event; have {:?}",
            self.registry.security_events()
        );
    }
}

pub async fn client_for(
    addr: SocketAddr,
    ca_pem: &str,
    leaf: &IssuedLeaf,
) -> Result<AggregatedDiscoveryServiceClient<Channel>, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(TlsIdentity::from_pem(
            leaf.chain_pem(),
            leaf.key().to_pem().as_bytes(),
        ))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(AggregatedDiscoveryServiceClient::new(channel))
}

pub fn spiffe(gw: &str) -> String {
    format!("spiffe://gatehouse.local/gateway/{gw}")
}

pub fn node(id: &str) -> Option<Node> {
    Some(Node {
        id: id.into(),
        cluster: "test".into(),
        ..Default::default()
    })
}

pub fn cluster(name: &str, timeout_secs: i64) -> Cluster {
    Cluster {
        name: name.into(),
        connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
            seconds: timeout_secs,
            nanos: 0,
        }),
        ..Default::default()
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// A delta ADS stream.
pub struct Delta {
    pub tx: mpsc::Sender<DeltaDiscoveryRequest>,
    pub rx: tonic::Streaming<DeltaDiscoveryResponse>,
}

impl Delta {
    pub async fn open(
        client: &mut AggregatedDiscoveryServiceClient<Channel>,
        first: DeltaDiscoveryRequest,
    ) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(first).await.unwrap();
        let rx = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Self { tx, rx })
    }

    pub async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a response within 5s")
            .unwrap()
            .unwrap()
    }

    /// Asserts nothing arrives for `d`.
    pub async fn silent(&mut self, d: Duration) {
        if let Ok(m) = tokio::time::timeout(d, self.rx.message()).await {
            panic!(
                "expected no response, got {:?}",
                m.map(|r| r.map(|r| (r.type_url, r.resources.len(), r.removed_resources)))
            );
        }
    }

    pub async fn send(&self, req: DeltaDiscoveryRequest) {
        self.tx.send(req).await.unwrap();
    }

    pub async fn ack(&self, r: &DeltaDiscoveryResponse) {
        self.send(DeltaDiscoveryRequest {
            type_url: r.type_url.clone(),
            response_nonce: r.nonce.clone(),
            ..Default::default()
        })
        .await;
    }
}

/// A state-of-the-world ADS stream.
pub struct Sotw {
    pub tx: mpsc::Sender<DiscoveryRequest>,
    pub rx: tonic::Streaming<DiscoveryResponse>,
}

impl Sotw {
    pub async fn open(
        client: &mut AggregatedDiscoveryServiceClient<Channel>,
        first: DiscoveryRequest,
    ) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(first).await.unwrap();
        let rx = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Self { tx, rx })
    }

    pub async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("a response within 5s")
            .unwrap()
            .unwrap()
    }

    pub async fn silent(&mut self, d: Duration) {
        if let Ok(m) = tokio::time::timeout(d, self.rx.message()).await {
            panic!(
                "expected no response, got {:?}",
                m.map(|r| r.map(|r| (r.type_url, r.version_info)))
            );
        }
    }

    pub async fn send(&self, req: DiscoveryRequest) {
        self.tx.send(req).await.unwrap();
    }

    /// ACKs `r`, asking again for `names`.
    pub async fn ack(&self, r: &DiscoveryResponse, names: &[&str]) {
        self.send(DiscoveryRequest {
            version_info: r.version_info.clone(),
            resource_names: names.iter().map(|s| (*s).to_owned()).collect(),
            type_url: r.type_url.clone(),
            response_nonce: r.nonce.clone(),
            ..Default::default()
        })
        .await;
    }
}

pub fn names(
    resources: &[envoy_types::pb::envoy::service::discovery::v3::Resource],
) -> Vec<String> {
    let mut v: Vec<_> = resources.iter().map(|r| r.name.clone()).collect();
    v.sort();
    v
}

pub fn cds() -> String {
    ResourceType::Cluster.type_url().to_owned()
}
