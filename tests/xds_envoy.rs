//! The xDS server against a real Envoy 1.40: mTLS from our CA, configuration pushed by the
//! server carrying real HTTP to loopback upstreams, live route changes under traffic, the
//! control plane going away and coming back, and Envoy's client certificate rotated on disk.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use gatehouse_certs::{CaStore, CertificateAuthority, GatewayName, Identity, LeafRequest};
use gatehouse_controller::xds::{ProxyRegistry, XdsServer, XdsServerConfig};
use gatehouse_controller::{Snapshot, SnapshotCache};
use gatehouse_deploy::AdsMode;
use support::*;

struct ControlPlane {
    registry: Arc<ProxyRegistry>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ControlPlane {
    async fn start(
        addr: SocketAddr,
        cache: Arc<SnapshotCache>,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let registry = Arc::new(ProxyRegistry::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = XdsServer::new(cache, registry.clone(), XdsServerConfig::default());
        let task = tokio::spawn(async move {
            server
                .serve(listener, tls, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            registry,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server shuts down with streams open")
            .unwrap();
    }

    /// Waits until a proxy is connected and has ACKed listeners and routes.
    async fn wait_synced(&self) -> gatehouse_controller::xds::ProxyStatus {
        for _ in 0..600 {
            if let Some(p) = self.registry.proxies().into_iter().next() {
                let acked = |t: &str| p.types.get(t).is_some_and(|s| !s.acked_version.is_empty());
                if acked("CDS") && acked("LDS") && acked("RDS") {
                    return p;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no proxy synced: {:?}", self.registry.proxies());
    }

    /// Waits until a proxy is connected. On a reconnect Envoy reports the versions it has
    /// (`initial_resource_versions`), so unchanged types are not sent (nor ACKed) again.
    async fn wait_connected(&self) -> gatehouse_controller::xds::ProxyStatus {
        for _ in 0..600 {
            if let Some(p) = self.registry.proxies().into_iter().next() {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no proxy connected");
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    store: CaStore,
    ca: CertificateAuthority,
    gateway: GatewayName,
    xds: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    bootstrap: std::path::PathBuf,
    workdir: std::path::PathBuf,
}

fn setup(ads: AdsMode) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let gateway: GatewayName = "edge/public".parse().unwrap();
    let TestPki { store, ca, tls } = test_pki(tmp.path(), &gateway);

    let xds: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let workdir = tmp.path().join("envoy");
    let bootstrap = write_bootstrap(&store, &gateway, xds, &workdir, ads);
    Setup {
        _tmp: tmp,
        store,
        ca,
        gateway,
        xds,
        tls,
        bootstrap,
        workdir,
    }
}

fn config(
    listen: u16,
    upstream_a: SocketAddr,
    upstream_b: SocketAddr,
    table: &[(&str, &str)],
) -> Snapshot {
    let mut b = Snapshot::builder();
    b.cluster(&static_cluster("a", upstream_a))
        .cluster(&static_cluster("b", upstream_b))
        .listener(&http_listener("http", listen, "http"))
        .route(&routes("http", table));
    b.build()
}

/// Requests `paths` in a loop until stopped, counting answers that are not 2xx.
struct Load {
    stop: Arc<AtomicBool>,
    total: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Load {
    fn start(port: u16, paths: &'static [&'static str]) -> Self {
        let (stop, total, bad) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, t, b) = (stop.clone(), total.clone(), bad.clone());
        let task = tokio::spawn(async move {
            let client = client();
            let mut failures = Vec::new();
            while !s.load(Ordering::Relaxed) {
                for path in paths {
                    let answer = get(&client, &format!("http://127.0.0.1:{port}{path}")).await;
                    t.fetch_add(1, Ordering::Relaxed);
                    if !matches!(answer, Some((200..=299, _))) {
                        b.fetch_add(1, Ordering::Relaxed);
                        failures.push(format!("{path}: {answer:?}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failures
        });
        Self {
            stop,
            total,
            bad,
            task,
        }
    }

    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.await.unwrap();
        (
            self.total.load(Ordering::Relaxed),
            self.bad.load(Ordering::Relaxed),
            failures,
        )
    }
}

fn fingerprint(store: &CaStore, gw: &GatewayName) -> String {
    let path = store
        .leaf_dir(&Identity::Gateway(gw.clone()))
        .join("cert.pem");
    gatehouse_certs::inspect_file(&path, SystemTime::now()).unwrap()[0]
        .sha256_fingerprint
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_serves_pushed_config_through_changes_restarts_and_rotation() {
    let s = setup(AdsMode::Delta);
    let (ua, ub) = (upstream("from A").await, upstream("from B").await);
    let listen = free_port();
    let cache = Arc::new(SnapshotCache::new());
    cache.set(
        &s.gateway,
        config(listen, ua, ub, &[("/a", "a"), ("/b", "b")]),
    );
    let cp = ControlPlane::start(s.xds, cache.clone(), s.tls.clone()).await;
    let envoy = Envoy::start(&s.bootstrap, &s.workdir);
    let http = client();
    let base = format!("http://127.0.0.1:{listen}");

    // Envoy connects over mTLS, takes the configuration, and carries real traffic.
    assert!(
        wait_for_status(&http, &format!("{base}/a"), 200, Duration::from_secs(30))
            .await
            .is_some(),
        "no traffic through Envoy; its log:\n{}",
        envoy.log_tail()
    );
    assert_eq!(
        get(&http, &format!("{base}/a")).await.unwrap(),
        (200, "from A".to_owned())
    );
    assert_eq!(
        get(&http, &format!("{base}/b")).await.unwrap(),
        (200, "from B".to_owned())
    );
    let proxy = cp.wait_synced().await;
    assert_eq!(
        proxy.identity,
        "spiffe://gatehouse.local/gateway/edge/public"
    );
    assert_eq!(
        proxy.client_certificate_sha256,
        fingerprint(&s.store, &s.gateway)
    );
    let first_fingerprint = proxy.client_certificate_sha256.clone();

    let load = Load::start(listen, &["/a", "/b"]);

    // A route change is served within seconds.
    assert_eq!(get(&http, &format!("{base}/c")).await.unwrap().0, 404);
    cache.set(
        &s.gateway,
        config(listen, ua, ub, &[("/a", "a"), ("/b", "b"), ("/c", "b")]),
    );
    let took = wait_for_status(&http, &format!("{base}/c"), 200, Duration::from_secs(10)).await;
    assert!(
        took.is_some(),
        "route change not served; Envoy log:\n{}",
        envoy.log_tail()
    );
    println!("route change served after {:?}", took.unwrap());
    assert!(
        cp.registry.last_nacks().is_empty(),
        "NACKs: {:?}",
        cp.registry.last_nacks()
    );

    // The control plane stops: Envoy keeps serving what it has.
    cp.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        get(&http, &format!("{base}/c")).await.unwrap(),
        (200, "from B".to_owned())
    );

    // Envoy's client certificate is rotated on disk while the control plane is away.
    let leaf =
        s.ca.issue(
            &LeafRequest::new(Identity::Gateway(s.gateway.clone())),
            SystemTime::now(),
        )
        .unwrap();
    s.store.write_leaf(&leaf, &s.ca.trust_anchors()).unwrap();
    let rotated = fingerprint(&s.store, &s.gateway);
    assert_ne!(rotated, first_fingerprint);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // It comes back: Envoy reconnects with the new certificate and resyncs.
    let cp = ControlPlane::start(s.xds, cache.clone(), s.tls.clone()).await;
    let proxy = cp.wait_connected().await;
    assert_eq!(
        proxy.client_certificate_sha256, rotated,
        "the new connection uses the rotated certificate"
    );
    cache.set(
        &s.gateway,
        config(
            listen,
            ua,
            ub,
            &[("/a", "a"), ("/b", "b"), ("/c", "b"), ("/d", "a")],
        ),
    );
    assert!(
        wait_for_status(&http, &format!("{base}/d"), 200, Duration::from_secs(10))
            .await
            .is_some(),
        "change after restart not served; Envoy log:\n{}",
        envoy.log_tail()
    );
    assert!(
        cp.registry.last_nacks().is_empty(),
        "NACKs: {:?}",
        cp.registry.last_nacks()
    );

    let (total, bad, failures) = load.finish().await;
    println!("requests on unchanged routes during the run: {total}, non-2xx: {bad}");
    assert!(total > 100, "the load ran ({total} requests)");
    assert_eq!(bad, 0, "requests on unchanged routes failed: {failures:?}");
    cp.stop().await;
    drop(envoy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_the_world_envoy_is_served_too() {
    let s = setup(AdsMode::StateOfTheWorld);
    let (ua, ub) = (upstream("from A").await, upstream("from B").await);
    let listen = free_port();
    let cache = Arc::new(SnapshotCache::new());
    cache.set(&s.gateway, config(listen, ua, ub, &[("/a", "a")]));
    let cp = ControlPlane::start(s.xds, cache.clone(), s.tls.clone()).await;
    let envoy = Envoy::start(&s.bootstrap, &s.workdir);
    let http = client();
    let base = format!("http://127.0.0.1:{listen}");
    assert!(
        wait_for_status(&http, &format!("{base}/a"), 200, Duration::from_secs(30))
            .await
            .is_some(),
        "no traffic through Envoy; its log:\n{}",
        envoy.log_tail()
    );
    let proxy = cp.wait_synced().await;
    assert_eq!(proxy.variant, "sotw");
    cache.set(
        &s.gateway,
        config(listen, ua, ub, &[("/a", "a"), ("/b", "b")]),
    );
    assert!(
        wait_for_status(&http, &format!("{base}/b"), 200, Duration::from_secs(10))
            .await
            .is_some()
    );
    assert_eq!(
        get(&http, &format!("{base}/b")).await.unwrap(),
        (200, "from B".to_owned())
    );
    assert!(
        cp.registry.last_nacks().is_empty(),
        "NACKs: {:?}",
        cp.registry.last_nacks()
    );
    cp.stop().await;
}
