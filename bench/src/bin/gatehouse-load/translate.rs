//! Translation percentiles (criterion gives means; the targets are p99): full translation,
//! and one route or one endpoint changed, with and without admission by the guardrail
//! library.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use gatehouse_bench::workload::{TlsPair, Workload, apply_doc};
use gatehouse_controller::admission::{Admitter, Policies, load_policies};
use gatehouse_controller::translate::{TranslateOptions, Translator};

use crate::report::Report;

fn options() -> TranslateOptions {
    TranslateOptions {
        bind_address: "127.0.0.1".into(),
        min_port: 1024,
    }
}

pub(crate) fn run(
    w: &Workload,
    iterations: usize,
    library: Option<&Path>,
    report: &mut Report,
) -> Result<()> {
    let section = format!("translate/{}", w.name);
    let tls = TlsPair::generate()?;
    let started = Instant::now();
    let mut config = w.config(&tls);
    report.add(
        &section,
        "generate and parse the YAML",
        started.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    let mut full = Vec::new();
    let runs = if w.routes >= 50_000 { 2 } else { 3 };
    for _ in 0..runs {
        let started = Instant::now();
        let t = Translator::new(options()).translate(&config);
        full.push(started.elapsed());
        drop(t);
    }
    report.latencies(&section, "full translation", &full);
    report.add(
        &section,
        "full translation per route (best)",
        full.iter()
            .min()
            .map_or(0.0, |d| d.as_secs_f64() * 1e6 / w.routes as f64),
        "us",
    );

    let mut t = Translator::new(options());
    t.translate(&config);
    let i = 4_321 % w.routes;
    let mut lat = Vec::new();
    let mut stats = None;
    for k in 0..iterations {
        let changes = apply_doc(&mut config, "r.yaml", &w.route_doc(i, 1 + (k % 2) as u32));
        let started = Instant::now();
        let out = t.translate_changes(&config, &changes);
        lat.push(started.elapsed());
        stats = Some(out.stats);
    }
    report.latencies(&section, "incremental, 1 route changed", &lat);
    // The same when the source cannot say what changed (a re-list): every object is looked
    // at, unchanged outputs reused.
    let mut walk = Vec::new();
    for k in 0..iterations.min(10) {
        apply_doc(&mut config, "r.yaml", &w.route_doc(i, 1 + (k % 2) as u32));
        let started = Instant::now();
        t.translate(&config);
        walk.push(started.elapsed());
    }
    report.latencies(
        &section,
        "1 route changed, change not known (every object looked at)",
        &walk,
    );
    if let Some(s) = stats {
        report.note(
            &section,
            &format!("incremental stats: {}", serde_json::to_string(&s)?),
        );
    }
    let mut lat = Vec::new();
    for k in 0..iterations {
        let changes = apply_doc(
            &mut config,
            "b.yaml",
            &w.backend_doc(17 % w.backends, 1 + (k % 2) as u16),
        );
        let started = Instant::now();
        let out = t.translate_changes(&config, &changes);
        lat.push(started.elapsed());
        stats = Some(out.stats);
    }
    report.latencies(&section, "incremental, 1 endpoint changed", &lat);
    if let Some(s) = stats {
        report.note(
            &section,
            &format!("endpoint change stats: {}", serde_json::to_string(&s)?),
        );
    }

    if let Some(lib) = library {
        let started = Instant::now();
        let (engine, _) = load_policies(&[lib], &config).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        report.add(
            &section,
            "compile the guardrail library",
            started.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        let policies = Policies::Enforce(Arc::new(engine));
        let mut a = Admitter::new(options());
        let started = Instant::now();
        a.translate(&config, &policies);
        report.add(
            &section,
            "full translation + admission (guardrails)",
            started.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        let mut lat = Vec::new();
        for k in 0..iterations {
            let changes = apply_doc(&mut config, "r.yaml", &w.route_doc(i, 3 + (k % 2) as u32));
            let started = Instant::now();
            a.translate_changes(&config, &changes, &policies);
            lat.push(started.elapsed());
        }
        report.latencies(&section, "incremental + admission, 1 route changed", &lat);
    }
    Ok(())
}
