//! The load harness end to end at a tiny size, so that it does not rot: synthetic delta
//! clients over mTLS against the real xDS server, a burst, no-op pushes and a reconnect storm.
//! Asserts what must hold (every client synced, no no-op push), never a time.

use std::process::Command;

use gatehouse_bench::workload::{TlsPair, Workload, load_into};
use gatehouse_controller::model::Config;
use gatehouse_controller::translate::{TranslateOptions, Translator};

fn metric(results: &[serde_json::Value], section_prefix: &str, metric: &str) -> Vec<f64> {
    results
        .iter()
        .filter(|e| {
            e["section"]
                .as_str()
                .is_some_and(|s| s.starts_with(section_prefix))
                && e["metric"].as_str() == Some(metric)
        })
        .filter_map(|e| e["value"].as_f64())
        .collect()
}

#[test]
fn the_fleet_runs_end_to_end_at_a_tiny_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let status = Command::new(env!("CARGO_BIN_EXE_gatehouse-load"))
        .args([
            "--out",
            out.to_str().unwrap(),
            "fleet",
            "--workload",
            "w3",
            "--routes",
            "200",
            "--clients",
            "1,4",
            "--changes",
            "3",
            "--burst",
            "50",
            "--storm",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let results: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        metric(&results, "fleet/", "no-op pushes in the whole run"),
        vec![0.0, 0.0]
    );
    assert_eq!(
        metric(
            &results,
            "fleet/",
            "pushes after a change to identical content"
        ),
        vec![0.0, 0.0]
    );
    assert_eq!(
        metric(&results, "fleet/", "endpoint change to ACK n"),
        vec![3.0, 12.0]
    );
    assert_eq!(
        metric(&results, "fleet/", "reconnect storm: all synced after").len(),
        1
    );
}

#[test]
fn the_workloads_parse_and_translate_cleanly() {
    let tls = TlsPair::generate().unwrap();
    let mut w = Workload::w3();
    w.routes = 400;
    w.backends = 40;
    w.tls_hostnames = 20;
    for w in [Workload::w1(), w] {
        let mut config = Config::default();
        for (name, text) in w.files(&tls) {
            assert_eq!(load_into(&mut config, &name, &text), 0, "{name}");
        }
        assert_eq!(config.http_routes.len(), w.routes);
        let t = Translator::new(TranslateOptions {
            bind_address: "127.0.0.1".into(),
            min_port: 1024,
        })
        .translate(&config);
        let problems: Vec<String> = t.status.iter().flat_map(|s| s.problems()).collect();
        assert!(problems.is_empty(), "{problems:?}");
        let snap = &t.snapshots[&"bench/edge".parse().unwrap()];
        assert_eq!(
            snap.resources(gatehouse_controller::ResourceType::Route)
                .len(),
            w.tables()
        );
        assert_eq!(t.stats.routes_translated, w.routes);
    }
}
