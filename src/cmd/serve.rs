//! `gatehouse serve`: the control plane alone (xDS over mTLS), without Envoy.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use gatehouse_certs::{
    CaStore, Identity, LeafRequest, ReloadableCert, RotationOutcome, Rotator, SystemClock, rfc3339,
};
use gatehouse_controller::SnapshotCache;
use gatehouse_controller::xds::{ProxyRegistry, XdsServer, XdsServerConfig};

/// How often the gateways' certificates in the store are checked for renewal.
const GATEWAY_ROTATION_CHECK: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where the configuration comes from: `file:DIR` (with the translation issue) or
    /// `kubernetes` (with the Kubernetes issue). Without a source every gateway is served an
    /// empty configuration, which checks that Envoy connects over mTLS.
    #[arg(long, value_name = "file:DIR|kubernetes")]
    source: Option<String>,
    /// xDS listen address.
    #[arg(long, default_value = "127.0.0.1:18000", env = "GATEHOUSE_LISTEN")]
    listen: SocketAddr,
    /// The CA store (`gatehouse certs init`): the controller's serving certificate is issued
    /// and rotated from it, and the gateways' certificates in it are renewed at half-life.
    #[arg(long, value_name = "DIR", env = "GATEHOUSE_CERTS")]
    certs: PathBuf,
    /// Quiet window before a batch of configuration changes is pushed.
    #[arg(long, default_value = "10ms", value_parser = super::certs::parse_duration)]
    coalesce_quiet: Duration,
    /// Longest a configuration change waits for its batch to be pushed.
    #[arg(long, default_value = "100ms", value_parser = super::certs::parse_duration)]
    coalesce_max: Duration,
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(source) = &args.source {
        anyhow::bail!(
            "source `{source}` is not available in this version: the file source arrives with the Gateway API translation, the Kubernetes source after it (run without --source to serve empty configurations)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let store = CaStore::open(&args.certs)?;
    let now = SystemTime::now();
    let ca = Arc::new(store.load(now)?);
    let anchors = store.trust_anchors()?;

    // The serving certificate keeps the SANs of the stored one (default: localhost, 127.0.0.1).
    let mut req = LeafRequest::new(Identity::Controller);
    match store
        .leaves()?
        .into_iter()
        .find(|l| l.identity == Identity::Controller)
    {
        Some(stored) => {
            req.dns_names = stored.dns_names;
            req.ip_addresses = stored.ip_addresses;
        }
        None => {
            req.dns_names = vec!["localhost".into()];
            req.ip_addresses = vec![IpAddr::from([127, 0, 0, 1])];
        }
    }
    let leaf = ca.issue(&req, now)?;
    store.write_leaf(&leaf, &anchors)?;
    let slot = Arc::new(ReloadableCert::new(&leaf)?);
    let tls = gatehouse_certs::server_config(&anchors, slot.clone(), Arc::new(SystemClock))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // Rotate the serving certificate in place, and keep a copy in the store for `certs inspect`.
    let (ca2, store2, anchors2) = (ca.clone(), store.clone(), anchors.clone());
    let rotator = Rotator::new(Arc::new(SystemClock), slot, move |now| {
        let leaf = ca2.issue(&req, now)?;
        store2.write_leaf(&leaf, &anchors2)?;
        Ok(leaf)
    });
    tokio::spawn(rotator.run(stopped(stop_rx.clone())));

    // Renew the gateways' client certificates on disk; Envoy picks them up through its
    // watched directory.
    let store3 = store.clone();
    let mut stop3 = stop_rx.clone();
    tokio::spawn(async move {
        loop {
            match gatehouse_certs::rotate_store(&store3, SystemTime::now()) {
                Ok(outcomes) => {
                    for o in outcomes {
                        match o {
                            RotationOutcome::Renewed {
                                identity,
                                new_not_after,
                                ..
                            } => {
                                tracing::info!(%identity, not_after = %rfc3339(new_not_after), "certificate renewed");
                            }
                            RotationOutcome::Failed { identity, error } => {
                                tracing::warn!(%identity, %error, "certificate renewal failed");
                            }
                            RotationOutcome::Kept { .. } => {}
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "certificate renewal failed"),
            }
            tokio::select! {
                _ = stop3.wait_for(|s| *s) => return,
                () = tokio::time::sleep(GATEWAY_ROTATION_CHECK) => {}
            }
        }
    });

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on `{}` (is another process using it?)",
                args.listen
            )
        })?;
    let cache = Arc::new(SnapshotCache::new());
    let registry = Arc::new(ProxyRegistry::new());
    let config = XdsServerConfig {
        trust_domain: ca.trust_domain().clone(),
        quiet: args.coalesce_quiet,
        max_delay: args.coalesce_max,
        ..XdsServerConfig::default()
    };
    tracing::info!(listen = %args.listen, trust_domain = %ca.trust_domain(), certs = %args.certs.display(), "xds server starting");
    eprintln!(
        "gatehouse: serving xDS on {} (mTLS, trust domain {})",
        args.listen,
        ca.trust_domain()
    );
    XdsServer::new(cache, registry, config)
        .serve(listener, Arc::new(tls), async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        })
        .await?;
    tracing::info!("xds server stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
