//! Encoding, snapshot building and the per-stream delta diff (`cargo bench -p
//! gatehouse-controller --bench xds`), on W3. Benchmarks, not tests: nothing here asserts a
//! time.

#[path = "../../bench/src/workload.rs"]
#[allow(dead_code, unreachable_pub, reason = "shared with the load harness")]
mod workload;

/// The allocator the `gatehouse` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use gatehouse_controller::model::Config;
use gatehouse_controller::translate::{TranslateOptions, Translator};
use gatehouse_controller::xds::DeltaProbe;
use gatehouse_controller::{Resource, Snapshot};
use workload::{TlsPair, Workload, load_into};

fn table(n: usize) -> RouteConfiguration {
    let routes = (0..n)
        .map(|i| Route {
            name: format!("r{i}"),
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix(format!("/r{i}"))),
                ..Default::default()
            }),
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(format!(
                    "team-{}/b-{i}",
                    i % 10
                ))),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    RouteConfiguration {
        name: "http-8080".into(),
        virtual_hosts: vec![VirtualHost {
            name: "h".into(),
            domains: vec!["h.bench.local".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn snapshots() -> (Arc<Snapshot>, Arc<Snapshot>, Arc<Snapshot>) {
    let cert = TlsPair::generate().expect("a certificate");
    let w = Workload::w3();
    let mut config = w.config(&cert);
    let mut t = Translator::new(TranslateOptions::default());
    let gw = "bench/edge".parse().expect("a gateway name");
    let base = t
        .translate(&config)
        .snapshots
        .remove(&gw)
        .expect("a snapshot");
    let mut c = Config::default();
    load_into(&mut c, "b.yaml", &w.backend_doc(17, 1));
    config.backends.extend(c.backends);
    let endpoint = t
        .translate(&config)
        .snapshots
        .remove(&gw)
        .expect("a snapshot");
    let mut c = Config::default();
    load_into(&mut c, "r.yaml", &w.route_doc(4_321, 1));
    config.http_routes.extend(c.http_routes);
    let route = t
        .translate(&config)
        .snapshots
        .remove(&gw)
        .expect("a snapshot");
    (Arc::new(base), Arc::new(endpoint), Arc::new(route))
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for n in [20, 1_000, 10_000] {
        let rc = table(n);
        g.bench_function(format!("route_table_{n}"), |b| {
            b.iter(|| Resource::new(rc.name.clone(), &rc))
        });
    }
    g.finish();
}

fn snapshot_and_delta(c: &mut Criterion) {
    let (base, endpoint, route) = snapshots();
    let mut g = c.benchmark_group("snapshot");
    g.bench_function("w3_rebuild", |b| b.iter(|| base.to_builder().build()));
    g.bench_function("w3_compare_equal", |b| {
        let copy = base.to_builder().build();
        b.iter(|| copy == *base)
    });
    g.finish();

    let mut g = c.benchmark_group("delta_diff");
    let probe = DeltaProbe::new(&base);
    for (name, to) in [
        ("w3_endpoint_change", &endpoint),
        ("w3_route_change", &route),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || probe.clone(),
                // The probe is returned so that criterion drops it outside the timing.
                |mut p| {
                    let sent = p.advance(to);
                    (p, sent)
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.bench_function("w3_initial_full", |b| b.iter(|| DeltaProbe::new(&base)));
    g.finish();
}

criterion_group!(benches, encode, snapshot_and_delta);
criterion_main!(benches);
