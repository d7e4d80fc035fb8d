//! The gRPC face of the xDS server: authenticates each stream, then runs the delta or
//! state-of-the-world state machine against the gateway's snapshot.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::AggregatedDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use gatehouse_certs::{GatewayName, Identity, TrustDomain};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::authz;
use super::coalesce::coalesce;
use super::delta::DeltaState;
use super::sotw::SotwState;
use super::status::{ProxyRegistry, StreamGuard};
use crate::discover::DiscoverSnapshots;
use crate::snapshot::Snapshot;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How long a new stream may take to send its first request.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The ADS service, generic over where snapshots come from.
#[derive(Debug)]
pub struct AdsService<S> {
    source: Arc<S>,
    registry: Arc<ProxyRegistry>,
    trust_domain: TrustDomain,
    quiet: Duration,
    max_delay: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl<S> Clone for AdsService<S> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            registry: self.registry.clone(),
            trust_domain: self.trust_domain.clone(),
            quiet: self.quiet,
            max_delay: self.max_delay,
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<S: DiscoverSnapshots> AdsService<S> {
    /// A service serving `source`'s snapshots to proxies of `trust_domain`, batching changes
    /// with a `quiet` window and a `max_delay`. Open streams end when `shutdown` turns true.
    pub fn new(
        source: Arc<S>,
        registry: Arc<ProxyRegistry>,
        trust_domain: TrustDomain,
        quiet: Duration,
        max_delay: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            source,
            registry,
            trust_domain,
            quiet,
            max_delay,
            shutdown,
        }
    }

    /// Identifies the proxy from its certificate and checks the node id of its first request.
    async fn authenticate<T: prost::Message + Default>(
        &self,
        req: Request<Streaming<T>>,
        node_id: impl Fn(&T) -> Option<String>,
    ) -> Result<
        (
            GatewayName,
            Option<SocketAddr>,
            (String, String),
            T,
            Streaming<T>,
        ),
        Status,
    > {
        let peer = req.remote_addr();
        let certs = req.peer_certs();
        let cert_info = certs
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|der| {
                gatehouse_certs::inspect_der(der, 0, 0, std::time::SystemTime::now()).ok()
            })
            .map(|i| (i.sha256_fingerprint, i.not_after))
            .unwrap_or_default();
        let gateway = authz::gateway_of(certs.as_ref().map(|c| c.as_slice()), &self.trust_domain)
            .map_err(|detail| {
            self.registry
                .security_event("client_identity_rejected", peer, None, detail.clone());
            Status::unauthenticated(detail)
        })?;
        let spiffe = Identity::Gateway(gateway.clone()).spiffe_id(&self.trust_domain);
        let mut inbound = req.into_inner();
        let first = match tokio::time::timeout(FIRST_REQUEST_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => {
                return Err(Status::cancelled("stream closed before the first request"));
            }
            Ok(Err(status)) => return Err(status),
            Err(_) => return Err(Status::deadline_exceeded("no request within 15s")),
        };
        let claimed = node_id(&first).unwrap_or_default();
        if claimed != spiffe {
            let detail =
                format!("node id `{claimed}` does not match the certificate identity `{spiffe}`");
            self.registry
                .security_event("node_id_mismatch", peer, Some(spiffe), detail.clone());
            return Err(Status::permission_denied(detail));
        }
        tracing::info!(gateway = %gateway, peer = ?peer, "proxy connected");
        Ok((gateway, peer, cert_info, first, inbound))
    }

    /// Starts a coalescer for the gateway's snapshot; returns its receiver of ticks.
    fn ticks(
        &self,
        gateway: &GatewayName,
    ) -> (
        tokio::sync::watch::Receiver<Arc<Snapshot>>,
        mpsc::Receiver<()>,
        AbortOnDrop,
    ) {
        let snap_rx = self.source.watch(gateway);
        let (tick_tx, tick_rx) = mpsc::channel(1);
        let task = tokio::spawn(coalesce(
            snap_rx.clone(),
            tick_tx,
            self.quiet,
            self.max_delay,
        ));
        (snap_rx, tick_rx, AbortOnDrop(task))
    }

    fn denied(&self, guard_identity: &str, peer: Option<SocketAddr>, names: Vec<String>) {
        for name in names {
            self.registry.security_event(
                "secret_not_granted",
                peer,
                Some(guard_identity.to_owned()),
                format!("secret `{name}` is not referenced by this gateway's configuration; nothing served"),
            );
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What handling one request produced.
#[derive(Debug)]
pub(crate) struct RequestOutcome<R> {
    pub(crate) responses: Vec<R>,
    /// Secret names asked for that this gateway does not have.
    pub(crate) denied_secrets: Vec<String>,
}

impl<R> Default for RequestOutcome<R> {
    fn default() -> Self {
        Self {
            responses: Vec::new(),
            denied_secrets: Vec::new(),
        }
    }
}

/// A stream variant's state machine, as the service drives it.
pub(crate) trait Machine: Default + Send + 'static {
    type Req: prost::Message + Default + Send + 'static;
    type Resp: Send + 'static;
    /// `delta` or `sotw`.
    const VARIANT: &'static str;
    fn node_id(req: &Self::Req) -> Option<String>;
    /// Handles a request: an ACK or NACK, subscription changes, and what they ask for.
    fn on_request(
        &mut self,
        req: &Self::Req,
        snap: &Arc<Snapshot>,
        guard: &StreamGuard,
    ) -> RequestOutcome<Self::Resp>;
    fn on_snapshot(&mut self, snap: &Arc<Snapshot>) -> Vec<Self::Resp>;
    /// Records a response in the registry and the log.
    fn record(guard: &StreamGuard, r: &Self::Resp);
}

impl<S: DiscoverSnapshots> AdsService<S> {
    /// Authenticates a stream and runs machine `M` on it until either side closes.
    async fn open<M: Machine>(
        &self,
        req: Request<Streaming<M::Req>>,
    ) -> Result<Response<ResponseStream<M::Resp>>, Status> {
        let (gateway, peer, cert_info, first, mut inbound) =
            self.authenticate(req, M::node_id).await?;
        let spiffe = Identity::Gateway(gateway.clone()).spiffe_id(&self.trust_domain);
        let guard = self.registry.register(
            spiffe.clone(),
            gateway.to_string(),
            peer,
            M::VARIANT,
            cert_info,
        );
        let (snap_rx, mut ticks, coalescer) = self.ticks(&gateway);
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let _coalescer = coalescer;
            let mut machine = M::default();
            // Changes reach the proxy only through `on_snapshot`, in make-before-break order;
            // requests are answered from the snapshot already applied, never a newer one.
            let mut applied = snap_rx.borrow().clone();
            let mut next = Some(first);
            loop {
                let responses = if let Some(req) = next.take() {
                    let out = machine.on_request(&req, &applied, &guard);
                    this.denied(&spiffe, peer, out.denied_secrets);
                    out.responses
                } else {
                    tokio::select! {
                        _ = shutdown.wait_for(|stop| *stop) => break,
                        msg = inbound.message() => match msg {
                            Ok(Some(req)) => { next = Some(req); continue; }
                            Ok(None) => break,
                            Err(status) => { tracing::debug!(%status, "stream ended"); break; }
                        },
                        Some(()) = ticks.recv() => {
                            applied = snap_rx.borrow().clone();
                            machine.on_snapshot(&applied)
                        }
                    }
                };
                for r in responses {
                    M::record(&guard, &r);
                    if tx.send(Ok(r)).await.is_err() {
                        return;
                    }
                }
            }
            tracing::info!(gateway = %gateway, "proxy disconnected");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[tonic::async_trait]
impl<S: DiscoverSnapshots> AggregatedDiscoveryService for AdsService<S> {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        self.open::<SotwState>(req).await
    }

    async fn delta_aggregated_resources(
        &self,
        req: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        self.open::<DeltaState>(req).await
    }
}
