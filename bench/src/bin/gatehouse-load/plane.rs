//! An in-process control plane: the configuration, the incremental translator, the snapshot
//! cache and the real xDS server over mTLS on 127.0.0.1, with its own CA. Changes are sent to
//! one task that applies every pending change, translates once and publishes, the way the
//! file control plane does after a batch of file events.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use gatehouse_bench::workload::{TlsPair, Workload, apply_doc};
use gatehouse_certs::{
    CaStore, CertificateAuthority, GatewayName, Identity, LeafRequest, ReloadableCert, SystemClock,
    TrustDomain,
};
use gatehouse_controller::model::{Changes, Config};
use gatehouse_controller::run::Pipeline;
use gatehouse_controller::translate::TranslateOptions;
use gatehouse_controller::xds::{ProxyRegistry, XdsServer, XdsServerConfig};
use gatehouse_controller::{Snapshot, SnapshotCache};
use tokio::sync::{mpsc, watch};

/// The gateway every workload configures.
pub(crate) const GATEWAY: &str = "bench/edge";

/// A change to the configuration.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// Route `i` at a variant (its path becomes `/r{i}-v{variant}`).
    Route(usize, u32),
    /// Backend `j` at a variant (its last endpoint's port moves by `variant`).
    Backend(usize, u16),
}

/// What the plane did for one batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Applied {
    /// Batches translated so far.
    pub(crate) batches: u64,
    /// Changes applied so far.
    pub(crate) changes: u64,
    /// The last translation's duration.
    pub(crate) last_translate: Duration,
}

/// A CA on disk (for Envoy's bootstrap) and the controller's TLS configuration.
pub(crate) struct Pki {
    pub(crate) store: CaStore,
    pub(crate) ca: CertificateAuthority,
    pub(crate) dir: PathBuf,
}

impl Pki {
    pub(crate) fn new(dir: &Path) -> Result<Self> {
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki)?;
        let store = CaStore::open(&pki)?;
        let ca = CertificateAuthority::generate(
            TrustDomain::default(),
            Duration::from_secs(30 * 86_400),
            SystemTime::now() - Duration::from_secs(3600),
        )?;
        store.init(&ca, false)?;
        Ok(Self {
            store,
            ca,
            dir: pki,
        })
    }

    pub(crate) fn gateway(&self) -> Result<GatewayName> {
        GATEWAY.parse().context("gateway name")
    }

    /// Issues the gateway's client certificate into the store; returns (chain, key) PEM.
    pub(crate) fn gateway_leaf(&self) -> Result<(String, String)> {
        let leaf = self.ca.issue(
            &LeafRequest::new(Identity::Gateway(self.gateway()?)),
            SystemTime::now(),
        )?;
        self.store.write_leaf(&leaf, &self.ca.trust_anchors())?;
        Ok((leaf.chain_pem(), leaf.key().to_pem().to_string()))
    }

    fn server_tls(&self) -> Result<Arc<rustls::ServerConfig>> {
        let mut req = LeafRequest::new(Identity::Controller);
        req.ip_addresses = vec!["127.0.0.1".parse()?];
        req.dns_names = vec!["localhost".into()];
        let cert = ReloadableCert::new(&self.ca.issue(&req, SystemTime::now())?)?;
        Ok(Arc::new(gatehouse_certs::server_config(
            &self.ca.trust_anchors(),
            Arc::new(cert),
            Arc::new(SystemClock),
        )?))
    }
}

/// A running in-process control plane.
pub(crate) struct Plane {
    pub(crate) addr: SocketAddr,
    pub(crate) cache: Arc<SnapshotCache>,
    pub(crate) registry: Arc<ProxyRegistry>,
    pub(crate) gateway: GatewayName,
    changes: mpsc::UnboundedSender<Change>,
    pub(crate) applied: watch::Receiver<Applied>,
    /// Duration of the first (full) translation.
    pub(crate) initial_translate: Duration,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Plane {
    pub(crate) async fn start(pki: &Pki, workload: &Workload, tls_pair: &TlsPair) -> Result<Self> {
        let config = workload.config(tls_pair);
        let gateway = pki.gateway()?;
        let cache = Arc::new(SnapshotCache::new());
        let mut pipeline = Pipeline::new(
            TranslateOptions {
                bind_address: "127.0.0.1".into(),
                min_port: 1024,
            },
            cache.clone(),
            None,
        );
        let started = Instant::now();
        let gateways = pipeline.apply(None, &config, &Changes::everything(), Vec::new());
        let initial_translate = started.elapsed();
        anyhow::ensure!(
            gateways.contains(&gateway),
            "the workload configures the gateway"
        );
        let registry = Arc::new(ProxyRegistry::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = XdsServer::new(cache.clone(), registry.clone(), XdsServerConfig::default());
        let tls = pki.server_tls()?;
        tokio::spawn(server.serve(listener, tls, async {
            let _ = stopped.await;
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        let (applied_tx, applied) = watch::channel(Applied::default());
        let w = workload.clone();
        tokio::task::spawn_blocking(move || {
            apply_loop(w, config, pipeline, rx, applied_tx);
        });
        Ok(Self {
            addr,
            cache,
            registry,
            gateway,
            changes: tx,
            applied,
            initial_translate,
            _stop: stop,
        })
    }

    /// Submits a change; returns the time it was submitted.
    pub(crate) fn change(&self, c: Change) -> Instant {
        let at = Instant::now();
        let _ = self.changes.send(c);
        at
    }

    /// The current snapshot.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.cache.get(&self.gateway)
    }

    /// Waits until `n` changes in all have been applied.
    pub(crate) async fn wait_applied(&mut self, n: u64) -> Result<Applied> {
        let a = tokio::time::timeout(
            Duration::from_secs(120),
            self.applied.wait_for(|a| a.changes >= n),
        )
        .await
        .context("changes not applied within 120 s")??;
        Ok(a.clone())
    }
}

fn apply_loop(
    w: Workload,
    mut config: Config,
    mut pipeline: Pipeline,
    mut rx: mpsc::UnboundedReceiver<Change>,
    applied: watch::Sender<Applied>,
) {
    let mut state = Applied::default();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(c) = rx.try_recv() {
            batch.push(c);
        }
        let mut changes = Changes::default();
        for c in &batch {
            changes.extend(match c {
                Change::Route(i, v) => apply_doc(&mut config, "change.yaml", &w.route_doc(*i, *v)),
                Change::Backend(j, v) => {
                    apply_doc(&mut config, "change.yaml", &w.backend_doc(*j, *v))
                }
            });
        }
        // The control plane's own path: admission, translation of what changed, problem
        // reporting and publication to the snapshot cache.
        let started = Instant::now();
        pipeline.apply(None, &config, &changes, Vec::new());
        let elapsed = started.elapsed();
        state.batches += 1;
        state.changes += batch.len() as u64;
        state.last_translate = elapsed;
        let _ = applied.send(state.clone());
    }
}
