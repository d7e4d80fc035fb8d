//! The peer, side by side on W2: sovereign (Python, REST-JSON xDS polling) rendering the same
//! clusters, endpoints, listener and route table from the same 1,000 routes, against
//! `gatehouse serve` translating the W2 Gateway API files and serving them over delta ADS. For
//! each: CPU seconds of the server process tree and bytes on the wire to produce the whole
//! configuration for one client, then the cost of staying in sync while nothing changes
//! (sovereign: Envoy polls every type; Gatehouse: an open stream, nothing sent).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use gatehouse_bench::workload::{NAMESPACES, TlsPair, Workload};
use gatehouse_certs::{Identity, TrustDomain};
use http_body_util::{BodyExt as _, Full};
use serde_json::json;

use crate::client::{self, Creds, Log, SharedLog};
use crate::envoy::free_port;
use crate::plane::Pki;
use crate::report::{Report, cpu_seconds};

const TEMPLATES: [(&str, &str); 4] = [
    (
        "clusters",
        r#"resources:
{% for b in instances[0].backends %}
  - '@type': type.googleapis.com/envoy.config.cluster.v3.Cluster
    name: {{ b.name }}
    type: EDS
    connect_timeout: 5s
    eds_cluster_config:
      eds_config:
        resource_api_version: V3
        api_config_source: {api_type: REST, transport_api_version: V3, cluster_names: [sovereign], refresh_delay: 1s}
{% endfor %}
"#,
    ),
    (
        "endpoints",
        r#"resources:
{% for b in instances[0].backends %}
  - '@type': type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
    cluster_name: {{ b.name }}
    endpoints:
      - lb_endpoints:
{% for e in b.endpoints %}
          - endpoint: {address: {socket_address: {address: {{ e.address }}, port_value: {{ e.port }}}}}
{% endfor %}
{% endfor %}
"#,
    ),
    (
        "listeners",
        r#"resources:
  - '@type': type.googleapis.com/envoy.config.listener.v3.Listener
    name: http-8080
    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
    filter_chains:
      - filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: http-8080
              rds:
                route_config_name: http-8080
                config_source:
                  resource_api_version: V3
                  api_config_source: {api_type: REST, transport_api_version: V3, cluster_names: [sovereign], refresh_delay: 1s}
              http_filters:
                - name: envoy.filters.http.router
                  typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"#,
    ),
    (
        "routes",
        r#"resources:
  - '@type': type.googleapis.com/envoy.config.route.v3.RouteConfiguration
    name: http-8080
    virtual_hosts:
{% for h in instances[0].hosts %}
      - name: {{ h.name }}
        domains: [{{ h.name }}]
        routes:
{% for r in h.routes %}
          - name: {{ r.name }}
            match: {path_separated_prefix: {{ r.path }}}
            route: {cluster: {{ r.backend }}}
{% endfor %}
{% endfor %}
"#,
    ),
];

/// Sovereign's inline source: one instance holding the backends and the routes by host.
fn instance(w: &Workload) -> serde_json::Value {
    let backends: Vec<_> = (0..w.backends)
        .map(|j| {
            let eps: Vec<_> = (0..w.endpoints)
                .map(|e| json!({"address": "127.0.0.1", "port": w.upstream_ports[e]}))
                .collect();
            json!({"name": format!("team-{}_b-{j}", j % NAMESPACES), "endpoints": eps})
        })
        .collect();
    let mut hosts: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    for i in 0..w.routes {
        let (_, host) = w.placement(i);
        let b = i % w.backends;
        hosts.entry(host).or_default().push(json!({
            "name": format!("team-{}/r-{i}", i % NAMESPACES),
            "path": format!("/r{i}"),
            "backend": format!("team-{}_b-{b}", b % NAMESPACES),
        }));
    }
    let hosts: Vec<_> = hosts
        .into_iter()
        .map(|(name, routes)| json!({"name": name, "routes": routes}))
        .collect();
    json!({"name": "bench", "service_clusters": ["bench"], "backends": backends, "hosts": hosts})
}

struct Tree(Child);

impl Tree {
    /// CPU seconds of the process and all its descendants.
    fn cpu(&self) -> f64 {
        let mut total = 0.0;
        let mut pids = vec![self.0.id()];
        while let Some(p) = pids.pop() {
            total += cpu_seconds(p);
            let children =
                std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        total
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // gunicorn stops its workers on SIGTERM; `kill` sends SIGKILL to the master only, so
        // ask with SIGTERM first through the `kill` command.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sovereign_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SOVEREIGN_BIN") {
        return Ok(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-bench/bin/sovereign");
    if p.exists() {
        return Ok(p);
    }
    bail!("sovereign not found: run `make bench-deps` or set SOVEREIGN_BIN")
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

async fn discover(
    client: &HttpClient,
    port: u16,
    xds: &str,
    names: &[String],
    version: &str,
) -> Result<(u16, usize, String)> {
    let body = json!({
        "version_info": version,
        "node": {"id": "bench", "cluster": "bench", "build_version": "e5f864a82d4f27110359daa2fbdcb12d99e415b9/1.40.0/Clean/RELEASE/BoringSSL", "locality": {"zone": "local"}},
        "resource_names": names,
    });
    let req = hyper::Request::post(format!("http://127.0.0.1:{port}/v3/discovery:{xds}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let version = v["version_info"].as_str().unwrap_or_default().to_owned();
    Ok((status, bytes.len(), version))
}

pub(crate) async fn run(report: &mut Report) -> Result<()> {
    let w = Workload::w2();
    let section = "peer/w2";
    // --- sovereign ---
    let dir = tempfile::tempdir()?;
    let mut templates = serde_json::Map::new();
    for (t, text) in TEMPLATES {
        let f = dir.path().join(format!("{t}.j2.yaml"));
        std::fs::write(&f, text)?;
        templates.insert(t.into(), json!(format!("file+jinja2://{}", f.display())));
    }
    let config = json!({
        "sources": [{"type": "inline", "scope": "default", "config": {"instances": [instance(&w)]}}],
        "templates": {"default": templates},
    });
    let cfg = dir.path().join("sovereign.json");
    std::fs::write(&cfg, config.to_string())?;
    let port = free_port()?;
    let started = Instant::now();
    let child = Command::new(sovereign_bin()?)
        .env("SOVEREIGN_CONFIG", format!("file+json://{}", cfg.display()))
        .env("SOVEREIGN_HOST", "127.0.0.1")
        .env("SOVEREIGN_PORT", port.to_string())
        .env("SOVEREIGN_WORKERS", "2")
        .env("SOVEREIGN_ENABLE_ACCESS_LOGS", "False")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("sovereign.log"))?)
        .spawn()
        .context("start sovereign")?;
    let tree = Tree(child);
    let client: HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let cluster_names: Vec<String> = (0..w.backends)
        .map(|j| format!("team-{}_b-{j}", j % NAMESPACES))
        .collect();
    // Wait until it answers.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((200, _, _)) = discover(&client, port, "listeners", &[], "").await {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "sovereign did not answer within 120 s: {}",
                std::fs::read_to_string(dir.path().join("sovereign.log")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.add(
        section,
        "sovereign: start to first answer",
        started.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu0 = tree.cpu();
    let mut bytes = 0;
    let mut versions = Vec::new();
    let t0 = Instant::now();
    for (xds, names) in [
        ("clusters", vec![]),
        ("endpoints", cluster_names.clone()),
        ("listeners", vec![]),
        ("routes", vec!["http-8080".to_owned()]),
    ] {
        let (status, n, v) = discover(&client, port, xds, &names, "").await?;
        if status != 200 {
            bail!("sovereign answered {status} for {xds}");
        }
        bytes += n;
        versions.push((xds, names, v));
    }
    report.add(
        section,
        "sovereign: wall time to produce the whole configuration",
        t0.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    report.add(
        section,
        "sovereign: CPU to produce the whole configuration",
        tree.cpu() - cpu0,
        "s",
    );
    report.add(
        section,
        "sovereign: bytes for the whole configuration (JSON)",
        bytes as f64,
        "bytes",
    );
    // Staying in sync: 10 polling rounds of every type with nothing changed (304s).
    let cpu1 = tree.cpu();
    let mut poll_bytes = 0;
    let mut not_modified = 0;
    for _ in 0..10 {
        for (xds, names, v) in &versions {
            let (status, n, _) = discover(&client, port, xds, names, v).await?;
            poll_bytes += n;
            not_modified += usize::from(status == 304);
        }
    }
    report.add(
        section,
        "sovereign: CPU per polling round, nothing changed (4 types)",
        (tree.cpu() - cpu1) / 10.0,
        "s",
    );
    report.add(
        section,
        "sovereign: 304 answers in 40 unchanged polls",
        not_modified as f64,
        "answers",
    );
    report.add(
        section,
        "sovereign: bytes per polling round, nothing changed",
        poll_bytes as f64 / 10.0,
        "bytes",
    );
    drop(tree);

    // --- Gatehouse, the same W2 ---
    let tls = TlsPair::generate()?;
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    let (chain_pem, key_pem) = pki.gateway_leaf()?;
    let creds = Creds {
        ca_pem: pki.ca.chain_pem(),
        chain_pem,
        key_pem,
        node_id: Identity::Gateway(pki.gateway()?).spiffe_id(&TrustDomain::default()),
    };
    let cfg = dir.path().join("config");
    std::fs::create_dir_all(&cfg)?;
    w.write(&cfg, &tls)?;
    let port = free_port()?;
    let gatehouse = std::env::current_exe()?.with_file_name("gatehouse");
    let child = Command::new(&gatehouse)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--certs")
        .arg(&pki.dir)
        .arg("--source")
        .arg(format!("file:{}", cfg.display()))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", gatehouse.display()))?;
    let tree = Tree(child);
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let t0 = Instant::now();
    tokio::spawn(client::run(
        format!("127.0.0.1:{port}").parse()?,
        creds,
        Vec::new(),
        log.clone(),
        rx,
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = log
            .lock()
            .map(|l| {
                l.events.len() >= 4
                    && l.events
                        .last()
                        .is_some_and(|e| e.at.elapsed() > Duration::from_millis(500))
            })
            .unwrap_or(false);
        if done {
            break;
        }
        if Instant::now() > deadline {
            bail!("gatehouse serve did not serve W2 within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (bytes, last) = log
        .lock()
        .map(|l| {
            (
                l.events.iter().map(|e| e.bytes).sum::<usize>(),
                l.events.last().map(|e| e.at),
            )
        })
        .unwrap_or_default();
    report.add(
        section,
        "gatehouse: start to whole configuration served (includes translation)",
        last.map_or(0.0, |l| (l - t0).as_secs_f64() * 1e3),
        "ms",
    );
    report.add(
        section,
        "gatehouse: CPU to translate and serve the whole configuration (process total)",
        tree.cpu(),
        "s",
    );
    report.add(
        section,
        "gatehouse: bytes for the whole configuration (delta ADS, protobuf)",
        bytes as f64,
        "bytes",
    );
    let cpu1 = tree.cpu();
    tokio::time::sleep(Duration::from_secs(10)).await;
    report.add(
        section,
        "gatehouse: CPU per 1 s of staying in sync, nothing changed",
        (tree.cpu() - cpu1) / 10.0,
        "s",
    );
    let _ = stop.send(true);
    Ok(())
}
