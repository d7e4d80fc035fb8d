//! The xDS listener: our own TLS accept loop (TLS 1.3, client certificate required, handshake
//! timeout, capped concurrent handshakes) feeding authenticated connections to tonic.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryServiceServer;
use gatehouse_certs::TrustDomain;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::service::AdsService;
use super::status::ProxyRegistry;
use crate::discover::DiscoverSnapshots;

/// Tunables of the xDS server.
#[derive(Clone, Debug)]
pub struct XdsServerConfig {
    /// Trust domain of the proxies' identities.
    pub trust_domain: TrustDomain,
    /// Quiet window before a batch of changes is pushed.
    pub quiet: Duration,
    /// Longest a change waits for its batch to be pushed.
    pub max_delay: Duration,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Most TLS handshakes in progress at once; further connections wait in the kernel's
    /// accept queue until one finishes or times out.
    pub max_concurrent_handshakes: usize,
}

impl Default for XdsServerConfig {
    fn default() -> Self {
        Self {
            trust_domain: TrustDomain::default(),
            quiet: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 64,
        }
    }
}

/// Errors of the xDS server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XdsServerError {
    /// The gRPC server failed.
    #[error("xds server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The xDS server.
#[derive(Debug)]
pub struct XdsServer<S> {
    source: Arc<S>,
    registry: Arc<ProxyRegistry>,
    config: XdsServerConfig,
}

impl<S: DiscoverSnapshots> XdsServer<S> {
    /// A server for `source`'s snapshots, reporting into `registry`.
    pub fn new(source: Arc<S>, registry: Arc<ProxyRegistry>, config: XdsServerConfig) -> Self {
        Self {
            source,
            registry,
            config,
        }
    }

    /// Serves on `listener` with the TLS configuration `tls` (see
    /// [`gatehouse_certs::server_config`]) until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), XdsServerError> {
        let (tx, rx) = mpsc::channel::<Result<TlsStream<TcpStream>, std::io::Error>>(64);
        let accept = tokio::spawn(accept_loop(
            listener,
            tokio_rustls::TlsAcceptor::from(tls),
            tx,
            self.registry.clone(),
            self.config.handshake_timeout,
            self.config.max_concurrent_handshakes,
        ));
        // Open ADS streams never finish on their own: tell them to end, so that the graceful
        // shutdown of the gRPC server completes.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let service = AdsService::new(
            self.source,
            self.registry,
            self.config.trust_domain,
            self.config.quiet,
            self.config.max_delay,
            stop_rx,
        );
        let result = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(
                AggregatedDiscoveryServiceServer::new(service)
                    .max_decoding_message_size(16 * 1024 * 1024)
                    .max_encoding_message_size(256 * 1024 * 1024),
            )
            .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown)
            .await;
        accept.abort();
        Ok(result?)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: mpsc::Sender<Result<TlsStream<TcpStream>, std::io::Error>>,
    registry: Arc<ProxyRegistry>,
    timeout: Duration,
    max_handshakes: usize,
) {
    // Accept only while a handshake slot is free: beyond that, connections wait in the
    // kernel's accept queue (bounded by the listen backlog) instead of being closed. A storm
    // of reconnecting proxies then costs each one a short wait, not a refused connection and a
    // retry; handshakes that stall hold a slot for at most `timeout`.
    let permits = Arc::new(Semaphore::new(max_handshakes.max(1)));
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                registry.security_event(
                    "handshake_capacity",
                    None,
                    None,
                    format!(
                        "{max_handshakes} handshakes in progress; new connections wait to be accepted"
                    ),
                );
                let Ok(p) = permits.clone().acquire_owned().await else {
                    return;
                };
                p
            }
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A response is written in several segments: without this, Nagle's algorithm holds
        // the last one until the client ACKs the others, which a delayed ACK can put off by
        // 40 ms (seen as ≈45 ms on every large route table push).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, %peer, "cannot set TCP_NODELAY");
        }
        let (acceptor, tx, registry) = (acceptor.clone(), tx.clone(), registry.clone());
        tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, acceptor.accept(tcp)).await;
            drop(permit);
            match result {
                Ok(Ok(tls)) => {
                    // Handshake errors are never forwarded: tonic would stop serving on one.
                    let _ = tx.send(Ok(tls)).await;
                }
                Ok(Err(error)) => handshake_rejected(&registry, peer, error.to_string()),
                Err(_) => {
                    handshake_rejected(&registry, peer, format!("no handshake within {timeout:?}"))
                }
            }
        });
    }
}

fn handshake_rejected(registry: &ProxyRegistry, peer: SocketAddr, detail: String) {
    registry.security_event("tls_handshake_rejected", Some(peer), None, detail);
}
