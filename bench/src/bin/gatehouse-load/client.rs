//! A synthetic delta ADS client over mTLS: subscribes to every type (wildcard for CDS, EDS,
//! LDS and RDS; SDS by name, as Envoy does), ACKs every response at once, and records when
//! each response arrived, its size and whether it changed anything (a no-op push).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use gatehouse_controller::ResourceType;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};

/// One response as the client saw it.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) at: Instant,
    pub(crate) t: ResourceType,
    pub(crate) bytes: usize,
    /// The type's version the response brings the client to: the responses of one push (a
    /// large push comes in several) share it.
    pub(crate) version: String,
    /// Every resource already held at the same version and nothing removed.
    pub(crate) noop: bool,
}

/// What a client recorded.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub(crate) events: Vec<Event>,
    pub(crate) connected: Option<Instant>,
    pub(crate) errors: Vec<String>,
    /// Resources held now, by type.
    pub(crate) held: HashMap<ResourceType, usize>,
}

pub(crate) type SharedLog = Arc<Mutex<Log>>;

/// Client credentials: the CA bundle and one gateway identity, shared by every synthetic
/// client (node id = the certificate's SPIFFE id).
#[derive(Clone)]
pub(crate) struct Creds {
    pub(crate) ca_pem: String,
    pub(crate) chain_pem: String,
    pub(crate) key_pem: String,
    pub(crate) node_id: String,
}

pub(crate) async fn connect(addr: SocketAddr, creds: &Creds) -> Result<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&creds.ca_pem))
        .identity(TlsIdentity::from_pem(&creds.chain_pem, &creds.key_pem))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    Ok(channel)
}

/// Runs one client until the stream ends or `stop` fires. Connect failures are retried with a
/// short backoff (as Envoy does) until `stop`.
pub(crate) async fn run(
    addr: SocketAddr,
    creds: Creds,
    secrets: Vec<String>,
    log: SharedLog,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut attempt = 0u64;
    loop {
        if *stop.borrow() {
            return;
        }
        match session(addr, &creds, &secrets, &log, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                attempt += 1;
                if let Ok(mut l) = log.lock() {
                    l.errors.push(format!("{e:#}"));
                }
                let backoff = Duration::from_millis(50 + (attempt * 37) % 200);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

fn request(t: ResourceType, names: Vec<String>, node: Option<Node>) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node,
        type_url: t.type_url().to_owned(),
        resource_names_subscribe: names,
        ..Default::default()
    }
}

async fn session(
    addr: SocketAddr,
    creds: &Creds,
    secrets: &[String],
    log: &SharedLog,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let channel = connect(addr, creds).await?;
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(256 * 1024 * 1024);
    let (tx, rx) = mpsc::channel(64);
    let node = Some(Node {
        id: creds.node_id.clone(),
        cluster: "bench".into(),
        ..Default::default()
    });
    tx.send(request(ResourceType::Cluster, vec!["*".into()], node))
        .await?;
    for t in [
        ResourceType::Endpoint,
        ResourceType::Listener,
        ResourceType::Route,
    ] {
        tx.send(request(t, vec!["*".into()], None)).await?;
    }
    if !secrets.is_empty() {
        tx.send(request(ResourceType::Secret, secrets.to_vec(), None))
            .await?;
    }
    let mut stream = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    if let Ok(mut l) = log.lock() {
        l.connected = Some(Instant::now());
    }
    let mut known: HashMap<ResourceType, HashMap<String, String>> = HashMap::new();
    loop {
        let msg = tokio::select! {
            m = stream.message() => m?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let Some(resp) = msg else {
            anyhow::bail!("stream closed by the server");
        };
        let at = Instant::now();
        let t = ResourceType::from_type_url(&resp.type_url).context("an unknown type")?;
        // ACK at once.
        tx.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        })
        .await?;
        let held = known.entry(t).or_default();
        let noop = resp.removed_resources.is_empty()
            && resp
                .resources
                .iter()
                .all(|r| held.get(&r.name) == Some(&r.version));
        for r in &resp.resources {
            held.insert(r.name.clone(), r.version.clone());
        }
        for n in &resp.removed_resources {
            held.remove(n);
        }
        let e = Event {
            at,
            t,
            bytes: prost::Message::encoded_len(&resp),
            version: resp.system_version_info.clone(),
            noop,
        };
        let count = held.len();
        if let Ok(mut l) = log.lock() {
            l.events.push(e);
            l.held.insert(t, count);
        }
    }
}
