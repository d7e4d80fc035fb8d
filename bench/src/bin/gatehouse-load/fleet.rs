//! Synthetic delta ADS clients against the in-process control plane: change-to-ACK latency,
//! bytes per change per client, pushes per burst, no-op pushes and a reconnect storm.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use gatehouse_bench::workload::{TlsPair, Workload};
use gatehouse_certs::Identity;
use gatehouse_controller::ResourceType;
use tokio::sync::watch;

use crate::client::{self, Creds, Log, SharedLog};
use crate::plane::{Change, Pki, Plane};
use crate::report::Report;

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct FleetOptions {
    pub(crate) clients: usize,
    /// Endpoint changes (and route changes) to time.
    pub(crate) changes: usize,
    /// Route changes in the burst.
    pub(crate) burst: usize,
    /// Run the reconnect storm.
    pub(crate) storm: bool,
}

struct Fleet {
    logs: Vec<SharedLog>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    /// Starts `n` clients, spread over `spread`.
    fn spawn(plane: &Plane, creds: &Creds, secrets: &[String], n: usize, spread: Duration) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let mut logs = Vec::with_capacity(n);
        for k in 0..n {
            let log: SharedLog = Arc::new(Mutex::new(Log::default()));
            logs.push(log.clone());
            let delay = spread.mul_f64(k as f64 / n.max(1) as f64);
            let (addr, creds, secrets, stop) =
                (plane.addr, creds.clone(), secrets.to_vec(), stop_rx.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                client::run(addr, creds, secrets, log, stop).await;
            });
        }
        Self { logs, stop }
    }

    fn marks(&self) -> Vec<usize> {
        self.logs
            .iter()
            .map(|l| l.lock().map(|l| l.events.len()).unwrap_or(0))
            .collect()
    }

    /// Events of each client since `marks`.
    fn since(&self, marks: &[usize]) -> Vec<Vec<client::Event>> {
        self.logs
            .iter()
            .zip(marks)
            .map(|(l, m)| {
                l.lock()
                    .map(|l| l.events.get(*m..).unwrap_or_default().to_vec())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Waits until every client has an event of type `t` since `marks`.
    async fn wait_all(&self, marks: &[usize], t: ResourceType, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let done = AtomicUsize::new(0);
        loop {
            let since = self.since(marks);
            let n = since
                .iter()
                .filter(|ev| ev.iter().any(|e| e.t == t))
                .count();
            done.store(n, Ordering::Relaxed);
            if n == self.logs.len() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until every client has received every type that has resources.
    async fn wait_synced(&self, types: &[ResourceType], limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let mut last = None::<Instant>;
            let mut all = true;
            for l in &self.logs {
                let l = l.lock().ok()?;
                for t in types {
                    match l.events.iter().find(|e| e.t == *t) {
                        Some(e) => last = Some(last.map_or(e.at, |x| x.max(e.at))),
                        None => all = false,
                    }
                }
                if !all {
                    break;
                }
            }
            if all {
                return last;
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn errors(&self) -> usize {
        self.logs
            .iter()
            .map(|l| l.lock().map(|l| l.errors.len()).unwrap_or(0))
            .sum()
    }

    fn noops(&self) -> usize {
        self.logs
            .iter()
            .map(|l| {
                l.lock()
                    .map(|l| l.events.iter().filter(|e| e.noop).count())
                    .unwrap_or(0)
            })
            .sum()
    }
}

/// Runs the fleet measurements for one workload and client count.
pub(crate) async fn run(w: &Workload, o: &FleetOptions, report: &mut Report) -> Result<()> {
    let section = format!("fleet/{}/{}", w.name, o.clients);
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(dir.path())?;
    let (chain_pem, key_pem) = pki.gateway_leaf()?;
    let creds = Creds {
        ca_pem: pki.ca.chain_pem(),
        chain_pem,
        key_pem,
        node_id: Identity::Gateway(pki.gateway()?)
            .spiffe_id(&gatehouse_certs::TrustDomain::default()),
    };
    let tls = TlsPair::generate()?;
    let mut plane = Plane::start(&pki, w, &tls).await?;
    let snap = plane.snapshot();
    let types: Vec<ResourceType> = ResourceType::ALL
        .into_iter()
        .filter(|t| !snap.resources(*t).is_empty())
        .collect();
    let secrets: Vec<String> = snap
        .resources(ResourceType::Secret)
        .keys()
        .cloned()
        .collect();
    report.add(
        &section,
        "initial full translation",
        plane.initial_translate.as_secs_f64() * 1e3,
        "ms",
    );
    report.add(
        &section,
        "resources in the snapshot",
        snap.len() as f64,
        "resources",
    );

    // Initial sync.
    let started = Instant::now();
    let fleet = Fleet::spawn(&plane, &creds, &secrets, o.clients, Duration::ZERO);
    let synced = fleet
        .wait_synced(&types, Duration::from_secs(600))
        .await
        .context("the clients did not sync within 600 s")?;
    report.add(
        &section,
        "initial sync, all clients",
        (synced - started).as_secs_f64() * 1e3,
        "ms",
    );
    let initial_bytes: usize = fleet
        .since(&vec![0; o.clients])
        .iter()
        .flatten()
        .map(|e| e.bytes)
        .sum();
    report.add(
        &section,
        "initial bytes per client",
        initial_bytes as f64 / o.clients as f64,
        "bytes",
    );
    report.add(
        &section,
        "connect errors (retried)",
        fleet.errors() as f64,
        "errors",
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Endpoint changes and route changes, one at a time.
    let mut applied = plane.applied.borrow().changes;
    for (kind, t) in [
        ("endpoint", ResourceType::Endpoint),
        ("route", ResourceType::Route),
    ] {
        let mut lat = Vec::new();
        let mut bytes = Vec::new();
        let mut pushed: BTreeMap<ResourceType, usize> = BTreeMap::new();
        let mut timeouts = 0;
        for k in 0..o.changes {
            let marks = fleet.marks();
            let variant = 1 + (k % 2);
            let change = match t {
                ResourceType::Endpoint => Change::Backend(17, variant as u16),
                _ => Change::Route(4_321 % w.routes.max(1), variant as u32),
            };
            let t0 = plane.change(change);
            applied += 1;
            if !fleet.wait_all(&marks, t, Duration::from_secs(30)).await {
                timeouts += 1;
            }
            // Let anything else caused by this change arrive.
            tokio::time::sleep(Duration::from_millis(30)).await;
            plane.wait_applied(applied).await?;
            for ev in fleet.since(&marks) {
                if let Some(e) = ev.iter().find(|e| e.t == t) {
                    lat.push(e.at - t0);
                }
                bytes.push(ev.iter().map(|e| e.bytes).sum::<usize>());
                for e in &ev {
                    *pushed.entry(e.t).or_default() += 1;
                }
            }
        }
        report.latencies(&section, &format!("{kind} change to ACK"), &lat);
        let mean = bytes.iter().sum::<usize>() as f64 / bytes.len().max(1) as f64;
        report.add(
            &section,
            &format!("{kind} change bytes per client"),
            mean,
            "bytes",
        );
        report.note(
            &section,
            &format!(
                "{kind} change: types pushed {:?} over {} changes x {} clients; {timeouts} timeouts",
                pushed, o.changes, o.clients
            ),
        );
        report.add(
            &section,
            &format!("{kind} change translation (last)"),
            plane.applied.borrow().last_translate.as_secs_f64() * 1e3,
            "ms",
        );
    }

    // A change that changes nothing: no push at all.
    let marks = fleet.marks();
    let variant = 1 + ((o.changes.max(1) - 1) % 2) as u32;
    plane.change(Change::Route(4_321 % w.routes.max(1), variant));
    applied += 1;
    plane.wait_applied(applied).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: usize = fleet.since(&marks).iter().map(Vec::len).sum();
    report.add(
        &section,
        "pushes after a change to identical content",
        after as f64,
        "pushes",
    );

    // A burst of route changes submitted at once, then the same spread over one second.
    for (label, spread) in [
        ("at once", Duration::ZERO),
        ("over 1 s", Duration::from_secs(1)),
    ] {
        let marks = fleet.marks();
        let n = o.burst.min(w.routes);
        let batches0 = plane.applied.borrow().batches;
        let started = Instant::now();
        for i in 0..n {
            if !spread.is_zero() {
                let due = started + spread.mul_f64(i as f64 / n as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            plane.change(Change::Route(i, 7 + u32::from(!spread.is_zero())));
        }
        // With many clients on the same cores, submitting the burst may take longer than planned.
        let submitted = started.elapsed();
        applied += n as u64;
        let a = plane.wait_applied(applied).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let since = fleet.since(&marks);
        let mut per_type: BTreeMap<ResourceType, usize> = BTreeMap::new();
        for ev in &since {
            // A push is one version of a type, however many responses it took.
            let mut mine: BTreeMap<ResourceType, usize> = BTreeMap::new();
            let mut seen: std::collections::BTreeSet<(ResourceType, &str)> = Default::default();
            for e in ev {
                if seen.insert((e.t, e.version.as_str())) {
                    *mine.entry(e.t).or_default() += 1;
                }
            }
            for (t, c) in mine {
                let m = per_type.entry(t).or_default();
                *m = (*m).max(c);
            }
        }
        let noop: usize = since.iter().flatten().filter(|e| e.noop).count();
        let max = per_type.values().copied().max().unwrap_or(0);
        report.add(
            &section,
            &format!("burst of {n} route changes {label}: max pushes per client per type"),
            max as f64,
            "pushes",
        );
        report.note(
            &section,
            &format!(
                "burst {label}: per type (max over clients) {per_type:?}; translations {}; \
                 submitted in {} ms",
                a.batches - batches0,
                submitted.as_millis()
            ),
        );
        report.add(
            &section,
            &format!("burst {label}: no-op pushes"),
            noop as f64,
            "pushes",
        );
    }
    report.add(
        &section,
        "no-op pushes in the whole run",
        fleet.noops() as f64,
        "pushes",
    );

    if o.storm {
        let _ = fleet.stop.send(true);
        drop(fleet);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss0, _) = crate::report::rss_of(None);
        let started = Instant::now();
        let storm = Fleet::spawn(&plane, &creds, &secrets, o.clients, Duration::from_secs(1));
        let mut peak = rss0;
        let synced = loop {
            let (rss, _) = crate::report::rss_of(None);
            peak = peak.max(rss);
            if let Some(s) = storm.wait_synced(&types, Duration::from_millis(1)).await {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(300) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        match synced {
            Some(s) => report.add(
                &section,
                "reconnect storm: all synced after",
                (s - started).as_secs_f64() * 1e3,
                "ms",
            ),
            None => report.note(&section, "reconnect storm: not all synced within 300 s"),
        }
        report.add(
            &section,
            "reconnect storm: connect errors (retried)",
            storm.errors() as f64,
            "errors",
        );
        report.add(&section, "reconnect storm: process RSS before", rss0, "MB");
        report.add(
            &section,
            "reconnect storm: process RSS peak (server and clients)",
            peak,
            "MB",
        );
        let _ = storm.stop.send(true);
    } else {
        let _ = fleet.stop.send(true);
    }
    Ok(())
}
