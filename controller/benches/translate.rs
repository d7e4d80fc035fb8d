//! Translation at scale (`cargo bench -p gatehouse-controller --bench translate`): full
//! translation of W2, W3 and W4, the incremental path for one route changed in W3, and the
//! same with Cedar admission over the guardrail library (the file-mode control plane's path).
//! Workloads are described in `bench/src/workload.rs`. Benchmarks, not tests: nothing here
//! asserts a time.

#[path = "../../bench/src/workload.rs"]
#[allow(dead_code, unreachable_pub, reason = "shared with the load harness")]
mod workload;

/// The allocator the `gatehouse` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gatehouse_controller::admission::{Admitter, Policies, load_policies};
use gatehouse_controller::model::{Changes, Config, HttpRoute};
use gatehouse_controller::translate::{TranslateOptions, Translator};
use workload::{TlsPair, Workload, load_into};

fn options() -> TranslateOptions {
    TranslateOptions {
        bind_address: "127.0.0.1".into(),
        min_port: 1024,
    }
}

/// Route `i` of `w` at `variant`, parsed.
fn route(w: &Workload, i: usize, variant: u32) -> ((String, String), HttpRoute) {
    let mut c = Config::default();
    load_into(&mut c, "route.yaml", &w.route_doc(i, variant));
    let (k, (r, _)) = c.http_routes.into_iter().next().expect("one route");
    (k, r)
}

fn full(c: &mut Criterion) {
    let cert = TlsPair::generate().expect("a certificate");
    let mut g = c.benchmark_group("translate_full");
    g.sample_size(10);
    for w in [Workload::w2(), Workload::w3(), Workload::w4()] {
        let config = w.config(&cert);
        let time = if w.name == "w4" { 40 } else { 10 };
        g.measurement_time(Duration::from_secs(time));
        g.bench_function(&w.name, |b| {
            b.iter_batched(
                || Translator::new(options()),
                |mut t| t.translate(&config),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn incremental(c: &mut Criterion) {
    let cert = TlsPair::generate().expect("a certificate");
    let w = Workload::w3();
    let mut config = w.config(&cert);
    let i = 4_321;
    let (key, a) = route(&w, i, 1);
    let (_, b2) = route(&w, i, 2);
    let mut g = c.benchmark_group("translate_incremental");
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(10));
    let mut t = Translator::new(options());
    t.translate(&config);
    let mut flip = false;
    // What the control plane does: the source says which route changed.
    let mut one_route = Changes::default();
    one_route.http_routes.insert(key.clone());
    g.bench_function("w3_one_route", |b| {
        b.iter(|| {
            flip = !flip;
            let r = if flip { a.clone() } else { b2.clone() };
            if let Some(e) = config.http_routes.get_mut(&key) {
                e.0 = r;
            }
            t.translate_changes(&config, &one_route)
        })
    });
    // The same change when the source cannot say what changed: every object is looked at
    // (outputs are reused), as on a re-list.
    g.sample_size(10);
    g.bench_function("w3_one_route_unknown_change", |b| {
        b.iter(|| {
            flip = !flip;
            let r = if flip { a.clone() } else { b2.clone() };
            if let Some(e) = config.http_routes.get_mut(&key) {
                e.0 = r;
            }
            t.translate(&config)
        })
    });
    g.sample_size(50);
    // One endpoint of one backend changed.
    let (bkey, b_a, b_b) = {
        let mut c1 = Config::default();
        load_into(&mut c1, "b.yaml", &w.backend_doc(17, 1));
        let mut c2 = Config::default();
        load_into(&mut c2, "b.yaml", &w.backend_doc(17, 2));
        let (k, (x, _)) = c1.backends.into_iter().next().expect("a backend");
        let (_, (y, _)) = c2.backends.into_iter().next().expect("a backend");
        (k, x, y)
    };
    let mut one_backend = Changes::default();
    one_backend.backends.insert(bkey.clone());
    g.bench_function("w3_one_endpoint", |b| {
        b.iter(|| {
            flip = !flip;
            let r = if flip { b_a.clone() } else { b_b.clone() };
            if let Some(e) = config.backends.get_mut(&bkey) {
                e.0 = r;
            }
            t.translate_changes(&config, &one_backend)
        })
    });

    // The file-mode path: translation plus Cedar admission with the guardrail library.
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/library");
    let (engine, _) = load_policies(&[library.as_path()], &config).expect("the library compiles");
    let policies = Policies::Enforce(Arc::new(engine));
    let mut admitter = Admitter::new(options());
    admitter.translate(&config, &policies);
    g.bench_function("w3_one_route_admitted_guardrails", |b| {
        b.iter(|| {
            flip = !flip;
            let r = if flip { a.clone() } else { b2.clone() };
            if let Some(e) = config.http_routes.get_mut(&key) {
                e.0 = r;
            }
            admitter.translate_changes(&config, &one_route, &policies)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("admit_full");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("w3_guardrails", |b| {
        b.iter_batched(
            || Admitter::new(options()),
            |mut a| a.translate(&config, &policies),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, full, incremental);
criterion_main!(benches);
