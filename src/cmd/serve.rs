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

/// The controller's leader-election Lease (the hardened profile's Role names it).
const LEASE_NAME: &str = "gatehouse-controller";

/// How often the gateways' certificates in the store are checked for renewal.
const GATEWAY_ROTATION_CHECK: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where the configuration comes from: `file:DIR` (Gateway API YAML, watched for changes)
    /// or `kubernetes` (the API server of the kubeconfig, or of the pod: watches, status,
    /// leader election, gateway certificate Secrets). Without a source every gateway is served
    /// an empty configuration, which checks that Envoy connects over mTLS.
    #[arg(long, value_name = "file:DIR|kubernetes")]
    source: Option<String>,
    /// Write the status (objects, conditions, proxies) here as JSON, for `gatehouse status`.
    #[arg(long, value_name = "FILE")]
    status_file: Option<PathBuf>,
    /// The address Envoy's listeners bind.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: String,
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
    /// Load a Cedar policy set only when every directory holding `*.cedar` files carries a
    /// manifest signed by this public key (`gatehouse sign --key KEY --manifest DIR`);
    /// otherwise keep the last good set and say why.
    #[arg(long, value_name = "PUB")]
    policy_verify_key: Option<PathBuf>,
    /// Kubernetes mode: a namespace whose Secrets the controller may read and write (a gateway
    /// namespace: listener certificates, the gateways' xDS certificate Secrets). Repeat it;
    /// Secrets are watched in these namespaces only, never cluster-wide.
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "GATEHOUSE_SECRET_NAMESPACES",
        value_delimiter = ','
    )]
    secret_namespace: Vec<String>,
    /// Kubernetes mode: the controller's namespace (where its leader-election Lease is).
    #[arg(long, env = "POD_NAMESPACE", default_value = "gatehouse-system")]
    namespace: String,
    /// Kubernetes mode: this replica's name in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

/// Where the configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A directory.
    File(PathBuf),
    /// The Kubernetes API.
    Kubernetes,
}

/// The configuration source of `--source`.
pub(crate) fn parse_source(source: Option<&str>) -> anyhow::Result<Option<Source>> {
    match source {
        None => Ok(None),
        Some("kubernetes") => Ok(Some(Source::Kubernetes)),
        Some(s) => match s.strip_prefix("file:") {
            Some(dir) if std::path::Path::new(dir).is_dir() => {
                Ok(Some(Source::File(PathBuf::from(dir))))
            }
            Some(dir) => anyhow::bail!("configuration directory `{dir}` does not exist"),
            None => anyhow::bail!("source `{s}` is not `file:DIR` or `kubernetes`"),
        },
    }
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let source = parse_source(args.source.as_deref())?;
    let kubernetes = (source == Some(Source::Kubernetes)).then(|| KubeSettings {
        namespace: args.namespace.clone(),
        identity: args.identity.clone(),
        secret_namespaces: args.secret_namespace.clone(),
    });
    let dir = match source {
        Some(Source::File(dir)) => Some(dir),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cp = ControlPlane {
        certs: args.certs.clone(),
        listen: args.listen,
        config_dir: dir,
        status_file: args.status_file.clone(),
        bind_address: args.bind_address.clone(),
        min_port: 1,
        quiet: args.coalesce_quiet,
        max_delay: args.coalesce_max,
        policy_verify_key: args.policy_verify_key.clone(),
        kubernetes,
    };
    runtime.block_on(async move {
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let (gw_tx, _gw_rx) = tokio::sync::watch::channel(Default::default());
        cp.run(stop_rx, gw_tx).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The configured gateways, sent after each configuration change.
pub(crate) type GatewaySet = std::collections::BTreeSet<gatehouse_certs::GatewayName>;

/// The control plane: certificates, the xDS server and, with a configuration directory, the
/// file source. Shared by `serve` and `up`.
#[derive(Clone, Debug)]
pub(crate) struct ControlPlane {
    pub(crate) certs: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) config_dir: Option<PathBuf>,
    pub(crate) status_file: Option<PathBuf>,
    pub(crate) bind_address: String,
    pub(crate) min_port: u16,
    pub(crate) quiet: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) policy_verify_key: Option<PathBuf>,
    /// Kubernetes mode, instead of a configuration directory.
    pub(crate) kubernetes: Option<KubeSettings>,
}

/// What Kubernetes mode needs besides the API client.
#[derive(Clone, Debug)]
pub(crate) struct KubeSettings {
    /// The controller's namespace (its Lease).
    pub(crate) namespace: String,
    /// Its name in the Lease; the host name when absent.
    pub(crate) identity: Option<String>,
    /// Namespaces whose Secrets it may read and write.
    pub(crate) secret_namespaces: Vec<String>,
}

impl ControlPlane {
    /// Runs until `stop_rx` turns true; `gateways` receives the configured gateways after
    /// each change.
    pub(crate) async fn run(
        self,
        stop_rx: tokio::sync::watch::Receiver<bool>,
        gateways: tokio::sync::watch::Sender<GatewaySet>,
    ) -> anyhow::Result<()> {
        let args = self;
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

        // A long-running process: freed memory goes back to the system on a timer.
        crate::allocator::start_background_purge();
        tokio::spawn(crate::allocator::log_every(std::time::Duration::from_secs(
            5,
        )));

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
            quiet: args.quiet,
            max_delay: args.max_delay,
            ..XdsServerConfig::default()
        };
        let mut gateways = Some(gateways);
        if let Some(dir) = &args.config_dir
            && let Some(gateways) = gateways.take()
        {
            let file_cp = gatehouse_controller::run::FileControlPlane {
                dir: dir.clone(),
                options: gatehouse_controller::translate::TranslateOptions {
                    bind_address: args.bind_address.clone(),
                    min_port: args.min_port,
                },
                cache: cache.clone(),
                registry: registry.clone(),
                status_file: args.status_file.clone(),
                quiet: Duration::from_millis(100),
                policy_verifier: args
                    .policy_verify_key
                    .as_deref()
                    .map(policy_verifier)
                    .transpose()?,
            };
            tokio::spawn(file_cp.run(stop_rx.clone(), gateways));
        }
        if let Some(k) = &args.kubernetes
            && let Some(gateways) = gateways.take()
        {
            let client = kube::Client::try_default().await.context(
                "cannot configure the Kubernetes client: in a pod, mount the service account token (the hardened profile projects one); elsewhere set KUBECONFIG",
            )?;
            let identity = match &k.identity {
                Some(i) => i.clone(),
                None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "gatehouse-controller".into()),
            };
            let lease = gatehouse_controller::kube::lease::LeaseConfig::new(
                &k.namespace,
                LEASE_NAME,
                identity.clone(),
            );
            let elector =
                gatehouse_controller::kube::lease::LeaderElector::new(client.clone(), lease)?;
            let (leader_tx, leader_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(elector.run(stop_rx.clone(), leader_tx));
            let kube_cp = gatehouse_controller::kube::KubeControlPlane {
                client: client.clone(),
                options: gatehouse_controller::translate::TranslateOptions {
                    bind_address: args.bind_address.clone(),
                    min_port: args.min_port,
                },
                cache: cache.clone(),
                registry: registry.clone(),
                secret_namespaces: k.secret_namespaces.clone(),
                quiet: args.quiet,
                max_delay: args.max_delay,
                status_file: args.status_file.clone(),
                certificates: Some(
                    gatehouse_controller::kube::gateway_certs::GatewayCertificates::new(
                        client,
                        ca.clone(),
                        Arc::new(SystemClock),
                    ),
                ),
                certificate_check: Duration::from_secs(60),
            };
            tracing::info!(%identity, namespace = %k.namespace, secret_namespaces = ?k.secret_namespaces, "kubernetes mode");
            tokio::spawn(kube_cp.run(stop_rx.clone(), leader_rx, gateways));
        }
        tracing::info!(listen = %args.listen, trust_domain = %ca.trust_domain(), certs = %args.certs.display(), "xds server starting");
        eprintln!(
            "gatehouse: serving xDS on {} (mTLS, trust domain {})",
            args.listen,
            ca.trust_domain()
        );
        let mut stop = stop_rx.clone();
        XdsServer::new(cache, registry, config)
            .serve(listener, Arc::new(tls), async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await?;
        tracing::info!("xds server stopped");
        Ok(())
    }
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
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

/// Checks, with the public key in `key_path`, the signed manifest of every directory that holds
/// policy files.
fn policy_verifier(
    key_path: &std::path::Path,
) -> anyhow::Result<gatehouse_controller::admission::PolicyVerifier> {
    let key = gatehouse_hardening::signing::keys::VerifyingKey::load(key_path)?;
    let key = Arc::new(key);
    Ok(gatehouse_controller::admission::PolicyVerifier(Arc::new(
        move |_dir, files| {
            let dirs: std::collections::BTreeSet<&std::path::Path> =
                files.iter().filter_map(|f| f.parent()).collect();
            for d in dirs {
                let findings = gatehouse_hardening::signing::manifest::verify_dir(d, &key)
                    .map_err(|e| e.to_string())?;
                if let Some(f) = findings.first() {
                    return Err(format!("{} {}: {}", f.id.as_str(), f.path, f.message));
                }
            }
            Ok(())
        },
    )))
}
