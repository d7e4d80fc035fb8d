//! Memory of the real controller process: `gatehouse serve --source file:DIR` on a generated
//! workload, with one synthetic delta client to know when the configuration is served. Peak
//! RSS per workload, and a churn soak: RSS sampled every 5 s, the slope after warm-up, and
//! whether memory returns after scaling down.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use gatehouse_bench::workload::{TlsPair, Workload};
use gatehouse_certs::{Identity, TrustDomain};
use gatehouse_controller::ResourceType;
use tokio::sync::watch;

use crate::client::{self, Creds, Log, SharedLog};
use crate::envoy::free_port;
use crate::plane::Pki;
use crate::report::{Report, cpu_seconds, rss_of};

/// The `gatehouse` binary: `$GATEHOUSE_BIN`, else beside this executable.
fn gatehouse_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GATEHOUSE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe()?;
    let p = me.with_file_name("gatehouse");
    if p.exists() {
        return Ok(p);
    }
    bail!(
        "`gatehouse` not found beside {}: build it (cargo build --release --bin gatehouse) or set GATEHOUSE_BIN",
        me.display()
    )
}

struct Serve {
    child: Child,
    addr: std::net::SocketAddr,
    log: PathBuf,
}

impl Serve {
    fn start(certs: &Path, config: &Path, log: &Path) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new(gatehouse_bin()?)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--certs")
            .arg(certs)
            .arg("--source")
            .arg(format!("file:{}", config.display()))
            // The allocator's figures every 5 s: live data apart from RSS.
            .env("RUST_LOG", "warn,gatehouse::allocator=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("start gatehouse serve")?;
        Ok(Self {
            child,
            addr: format!("127.0.0.1:{port}").parse()?,
            log: log.to_path_buf(),
        })
    }

    /// The last live-heap figure the process logged (jemalloc's `stats.allocated`), in MB.
    fn live_heap(&self) -> Option<f64> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let line = text
            .lines()
            .rev()
            .find(|l| l.contains("allocated_bytes="))?;
        let v = line
            .split("allocated_bytes=")
            .nth(1)?
            .split_whitespace()
            .next()?;
        Some(v.parse::<f64>().ok()? / 1_048_576.0)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Watcher {
    log: SharedLog,
    _stop: watch::Sender<bool>,
}

impl Watcher {
    fn start(addr: std::net::SocketAddr, creds: &Creds) -> Self {
        let log: SharedLog = Arc::new(Mutex::new(Log::default()));
        let (stop, rx) = watch::channel(false);
        tokio::spawn(client::run(
            addr,
            creds.clone(),
            Vec::new(),
            log.clone(),
            rx,
        ));
        Self { log, _stop: stop }
    }

    /// Waits until the route tables the client holds satisfy `pred` and nothing arrived for
    /// half a second.
    async fn wait_routes(&self, pred: impl Fn(usize) -> bool, limit: Duration) -> Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let (tables, last) = {
                let l = self.log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                (
                    l.held.get(&ResourceType::Route).copied().unwrap_or(0),
                    l.events.last().map(|e| e.at),
                )
            };
            if pred(tables) && last.is_some_and(|t| t.elapsed() > Duration::from_millis(500)) {
                return last.context("an event");
            }
            if Instant::now() > deadline {
                bail!(
                    "the controller did not serve the configuration within {limit:?} (route tables held: {tables})"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn creds(pki: &Pki) -> Result<Creds> {
    let (chain_pem, key_pem) = pki.gateway_leaf()?;
    Ok(Creds {
        ca_pem: pki.ca.chain_pem(),
        chain_pem,
        key_pem,
        node_id: Identity::Gateway(pki.gateway()?).spiffe_id(&TrustDomain::default()),
    })
}

/// Peak RSS of the controller serving each workload.
pub(crate) async fn peak(workloads: &[Workload], report: &mut Report) -> Result<()> {
    let tls = TlsPair::generate()?;
    for w in workloads {
        let section = format!("memory/{}", w.name);
        let dir = tempfile::tempdir()?;
        let pki = Pki::new(dir.path())?;
        let creds = creds(&pki)?;
        let cfg = dir.path().join("config");
        std::fs::create_dir_all(&cfg)?;
        w.write(&cfg, &tls)?;
        let started = Instant::now();
        let serve = Serve::start(&pki.dir, &cfg, &dir.path().join("serve.log"))?;
        let watcher = Watcher::start(serve.addr, &creds);
        let tables = w.tables();
        let served = watcher
            .wait_routes(|n| n >= tables, Duration::from_secs(600))
            .await
            .with_context(|| {
                std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
            })?;
        let (rss, hwm) = rss_of(Some(serve.pid()));
        report.add(
            &section,
            "start to configuration served",
            (served - started).as_secs_f64() * 1e3,
            "ms",
        );
        report.add(
            &section,
            "controller CPU to serve",
            cpu_seconds(serve.pid()),
            "s",
        );
        report.add(&section, "controller RSS when served", rss, "MB");
        report.add(&section, "controller peak RSS (VmHWM)", hwm, "MB");

        // What each further proxy costs the controller once it is in sync (the allocator's
        // live-heap figure is logged every 5 s).
        tokio::time::sleep(Duration::from_secs(6)).await;
        let heap1 = serve.live_heap();
        let (rss1, _) = rss_of(Some(serve.pid()));
        let more: Vec<Watcher> = (0..EXTRA_CLIENTS)
            .map(|_| Watcher::start(serve.addr, &creds))
            .collect();
        for m in &more {
            m.wait_routes(|n| n >= tables, Duration::from_secs(600))
                .await?;
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let heap_n = serve.live_heap();
        let (rss_n, _) = rss_of(Some(serve.pid()));
        let n = EXTRA_CLIENTS + 1;
        report.add(
            &section,
            &format!("controller RSS with {n} clients in sync"),
            rss_n,
            "MB",
        );
        report.add(
            &section,
            "controller RSS per further client",
            (rss_n - rss1) / EXTRA_CLIENTS as f64,
            "MB",
        );
        if let (Some(h1), Some(hn)) = (heap1, heap_n) {
            report.add(&section, "live heap with 1 client", h1, "MB");
            report.add(&section, &format!("live heap with {n} clients"), hn, "MB");
            report.add(
                &section,
                "live heap per further client",
                (hn - h1) / EXTRA_CLIENTS as f64,
                "MB",
            );
        }
        drop(more);
    }
    Ok(())
}

/// Proxies added after the first to measure what each costs the controller.
const EXTRA_CLIENTS: usize = 9;

/// The churn soak: W1, scale up to `w`, churn for `minutes`, scale down to W1.
pub(crate) async fn soak(w: &Workload, minutes: f64, report: &mut Report) -> Result<()> {
    let section = format!("soak/{}", w.name);
    let at = AtW1::start().await?;
    let (cfg, serve) = (&at.cfg, &at.serve);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (base, _) = rss_of(Some(serve.pid()));
    report.add(&section, "RSS at W1 before scale-up", base, "MB");
    tokio::time::sleep(Duration::from_secs(5)).await;
    if let Some(h) = serve.live_heap() {
        report.add(&section, "live heap at W1 before scale-up", h, "MB");
    }

    // Scale up: the big workload replaces the small one.
    at.scale_up(w).await?;
    let cpu0 = cpu_seconds(serve.pid());
    let (up, _) = rss_of(Some(serve.pid()));
    report.add(&section, "RSS after scale-up", up, "MB");

    // Churn: every second, 10 route changes (one route file) and 100 endpoint changes (one
    // backend file), i.e. C-b and C-a as one batch per second.
    let started = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let mut heap: Vec<(f64, f64)> = Vec::new();
    let mut next_sample = started;
    let mut k = 0u32;
    while started.elapsed() < total {
        k += 1;
        let file_no = (k as usize * 7) % w.routes.div_ceil(100);
        let mut text = String::new();
        for i in file_no * 100..((file_no + 1) * 100).min(w.routes) {
            let v = if i % 10 == 5 { k } else { 0 };
            text.push_str(&w.route_doc(i, v));
        }
        // Keep the policies of the file (JWT / RBAC) as generated.
        let (name, full) = w.route_file_with(file_no * 100, 0);
        let policies: String = full
            .split("---\n")
            .filter(|d| d.contains("kind: SecurityPolicy"))
            .map(|d| format!("{d}---\n"))
            .collect();
        write_atomic(&cfg.join(&name), &(text + &policies))?;
        let bfile = (k as usize) % w.backends.div_ceil(500);
        let mut text = String::new();
        for j in bfile * 500..((bfile + 1) * 500).min(w.backends) {
            let v = if j % 5 == 0 { (k % 2 + 1) as u16 } else { 0 };
            text.push_str(&w.backend_doc(j, v));
        }
        write_atomic(&cfg.join(format!("10-backends-{bfile:04}.yaml")), &text)?;
        if Instant::now() >= next_sample {
            let (rss, _) = rss_of(Some(serve.pid()));
            samples.push((started.elapsed().as_secs_f64(), rss));
            if let Some(h) = serve.live_heap() {
                heap.push((started.elapsed().as_secs_f64(), h));
            }
            next_sample += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu = cpu_seconds(serve.pid()) - cpu0;
    report.add(&section, "churn duration", minutes, "min");
    report.add(
        &section,
        "controller CPU during churn (average)",
        cpu / total.as_secs_f64(),
        "cores",
    );
    let series = |s: &[(f64, f64)]| -> String {
        s.iter()
            .step_by(6)
            .map(|(t, r)| format!("{t:.0}s {r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.note(
        &section,
        &format!("RSS (MB) every 30 s of churn: {}", series(&samples)),
    );
    report.note(
        &section,
        &format!(
            "live heap (MB, the allocator's own figure) every 30 s of churn: {}",
            series(&heap)
        ),
    );
    let hwarm = heap.len() / 5;
    let hafter = heap.get(hwarm..).unwrap_or_default();
    report.add(
        &section,
        "live heap slope after warm-up (first fifth)",
        slope(hafter) * 600.0,
        "MB per 10 min",
    );
    report.add(
        &section,
        "live heap max after warm-up",
        hafter.iter().map(|s| s.1).fold(0.0, f64::max),
        "MB",
    );
    let warm = samples.len() / 5;
    let after = samples.get(warm..).unwrap_or_default();
    report.add(
        &section,
        "RSS slope after warm-up (first fifth)",
        slope(after) * 600.0,
        "MB per 10 min",
    );
    report.add(
        &section,
        "RSS min after warm-up",
        after.iter().map(|s| s.1).fold(f64::INFINITY, f64::min),
        "MB",
    );
    report.add(
        &section,
        "RSS max after warm-up",
        after.iter().map(|s| s.1).fold(0.0, f64::max),
        "MB",
    );

    at.scale_down().await?;
    // The allocator returns freed pages on a timer (jemalloc's decay: 10 s): RSS 5 s and 30 s
    // after the scale-down has been served.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (soon, _) = rss_of(Some(serve.pid()));
    report.add(&section, "RSS 5 s after scale-down to W1", soon, "MB");
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (down, hwm) = rss_of(Some(serve.pid()));
    report.add(&section, "RSS 30 s after scale-down to W1", down, "MB");
    if let Some(h) = serve.live_heap() {
        report.add(&section, "live heap 30 s after scale-down to W1", h, "MB");
    }
    report.add(
        &section,
        "RSS 30 s after scale-down / before scale-up",
        down / base,
        "ratio",
    );
    report.add(&section, "peak RSS (VmHWM)", hwm, "MB");
    let errs = at
        .watcher
        .log
        .lock()
        .map(|l| l.errors.clone())
        .unwrap_or_default();
    report.add(
        &section,
        "client stream errors",
        errs.len() as f64,
        "errors",
    );
    if !errs.is_empty() {
        report.note(&section, &format!("client stream errors: {errs:?}"));
    }
    Ok(())
}

/// Scale cycles: W1, then `cycles` times `w` and back to W1, with the live heap (the
/// allocator's figure) and RSS 30 s after each scale-down.
pub(crate) async fn cycles(w: &Workload, cycles: usize, report: &mut Report) -> Result<()> {
    let section = format!("cycles/{}", w.name);
    let at = AtW1::start().await?;
    let serve = &at.serve;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (rss, _) = rss_of(Some(serve.pid()));
    report.add(&section, "RSS at W1 before the first scale-up", rss, "MB");
    if let Some(h) = serve.live_heap() {
        report.add(
            &section,
            "live heap at W1 before the first scale-up",
            h,
            "MB",
        );
    }
    for c in 1..=cycles {
        at.scale_up(w).await?;
        at.scale_down().await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        let (rss, _) = rss_of(Some(serve.pid()));
        report.add(
            &section,
            &format!("RSS 30 s after scale-down {c}"),
            rss,
            "MB",
        );
        if let Some(h) = serve.live_heap() {
            report.add(
                &section,
                &format!("live heap after scale-down {c}"),
                h,
                "MB",
            );
        }
    }
    Ok(())
}

/// `gatehouse serve` in file mode with W1 served to one client: the start of the soak and of
/// the scale cycles.
struct AtW1 {
    _dir: tempfile::TempDir,
    tls: TlsPair,
    cfg: PathBuf,
    small: Workload,
    serve: Serve,
    watcher: Watcher,
}

impl AtW1 {
    async fn start() -> Result<Self> {
        let tls = TlsPair::generate()?;
        let dir = tempfile::tempdir()?;
        let pki = Pki::new(dir.path())?;
        let creds = creds(&pki)?;
        let cfg = dir.path().join("config");
        std::fs::create_dir_all(&cfg)?;
        let small = Workload::w1();
        small.write(&cfg, &tls)?;
        let serve = Serve::start(&pki.dir, &cfg, &dir.path().join("serve.log"))?;
        let watcher = Watcher::start(serve.addr, &creds);
        watcher
            .wait_routes(|n| n >= small.tables(), Duration::from_secs(120))
            .await?;
        Ok(Self {
            _dir: dir,
            tls,
            cfg,
            small,
            serve,
            watcher,
        })
    }

    /// `w`'s files replace the current ones; returns once they are served.
    async fn scale_up(&self, w: &Workload) -> Result<()> {
        clear(&self.cfg)?;
        w.write(&self.cfg, &self.tls)?;
        self.watcher
            .wait_routes(|n| n >= w.tables(), Duration::from_secs(600))
            .await?;
        Ok(())
    }

    /// Back to W1; returns once it is served.
    async fn scale_down(&self) -> Result<()> {
        clear(&self.cfg)?;
        self.small.write(&self.cfg, &self.tls)?;
        self.watcher
            .wait_routes(|n| n <= self.small.tables(), Duration::from_secs(120))
            .await?;
        Ok(())
    }
}

fn clear(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "yaml") {
            std::fs::remove_file(p)?;
        }
    }
    Ok(())
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Least-squares slope of `(t, y)` in y per unit of t.
fn slope(s: &[(f64, f64)]) -> f64 {
    let n = s.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let mt = s.iter().map(|x| x.0).sum::<f64>() / n;
    let my = s.iter().map(|x| x.1).sum::<f64>() / n;
    let num: f64 = s.iter().map(|x| (x.0 - mt) * (x.1 - my)).sum();
    let den: f64 = s.iter().map(|x| (x.0 - mt).powi(2)).sum();
    num / den
}
