//! What a delta client is sent after a change, computed by the server's own per-stream state
//! machine ([`DeltaProbe`]): an endpoint-only change is EDS only, a route change is RDS only,
//! and a change to identical content sends nothing (no no-op pushes).

use std::path::Path;
use std::sync::Arc;

use gatehouse_controller::model::{Config, load_text};
use gatehouse_controller::translate::{TranslateOptions, Translator};
use gatehouse_controller::xds::DeltaProbe;
use gatehouse_controller::{ResourceType, Snapshot};

const GATEWAY: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: gatehouse.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: infra}
spec:
  gatewayClassName: gatehouse
  listeners:
  - {name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
";

fn backend(name: &str, port: u16) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: {name}, namespace: team}}
spec:
  endpoints:
  - {{address: 127.0.0.1, port: 9001}}
  - {{address: 127.0.0.1, port: {port}}}
"
    )
}

fn route(name: &str, path: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: team}}
spec:
  parentRefs: [{{name: edge, namespace: infra, sectionName: http}}]
  hostnames: [app.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: {backend}}}]
"
    )
}

fn config(docs: &[String]) -> Config {
    let mut c = Config::default();
    let mut diags = Vec::new();
    load_text(&mut c, &mut diags, Path::new("t.yaml"), &docs.join("---\n"));
    assert!(diags.is_empty(), "{diags:?}");
    c
}

fn docs(b_port: u16, path_a: &str) -> Vec<String> {
    let mut d = vec![GATEWAY.to_owned()];
    for i in 0..20 {
        d.push(backend(
            &format!("b{i}"),
            if i == 3 { b_port } else { 9002 },
        ));
        let path = if i == 5 {
            path_a.to_owned()
        } else {
            format!("/r{i}")
        };
        d.push(route(&format!("r{i}"), &path, &format!("b{i}")));
    }
    d
}

fn snap(t: &mut Translator, c: &Config) -> Arc<Snapshot> {
    Arc::new(
        t.translate(c)
            .snapshots
            .remove(&"infra/edge".parse().unwrap())
            .unwrap(),
    )
}

fn types(sent: &[(ResourceType, usize, usize, usize)]) -> Vec<(ResourceType, usize, usize)> {
    sent.iter().map(|s| (s.0, s.1, s.2)).collect()
}

#[test]
fn an_endpoint_change_is_eds_only_and_a_route_change_rds_only() {
    let mut t = Translator::new(TranslateOptions::default());
    let base = snap(&mut t, &config(&docs(9002, "/r5")));
    let mut probe = DeltaProbe::new(&base);

    // One endpoint of one backend moves: one ClusterLoadAssignment, nothing else.
    let s = snap(&mut t, &config(&docs(9003, "/r5")));
    assert_eq!(
        types(&probe.advance(&s)),
        vec![(ResourceType::Endpoint, 1, 0)]
    );

    // One route's path changes: its route table only.
    let s = snap(&mut t, &config(&docs(9003, "/r5-new")));
    assert_eq!(types(&probe.advance(&s)), vec![(ResourceType::Route, 1, 0)]);

    // The same content again (re-translated from scratch): nothing at all.
    let mut fresh = Translator::new(TranslateOptions::default());
    let s = snap(&mut fresh, &config(&docs(9003, "/r5-new")));
    assert!(probe.advance(&s).is_empty(), "a no-op push");
}

#[test]
fn removing_a_route_and_its_backend_removes_the_cluster_after_the_table() {
    let mut t = Translator::new(TranslateOptions::default());
    let base = snap(&mut t, &config(&docs(9002, "/r5")));
    let mut probe = DeltaProbe::new(&base);
    let mut d = docs(9002, "/r5");
    // Drop route r7 and backend b7 (documents 1 + 2*7 and 2 + 2*7).
    d.remove(2 + 2 * 7);
    d.remove(1 + 2 * 7);
    let s = snap(&mut t, &config(&d));
    // Make-before-break: the table that no longer uses the cluster first, then the removals
    // in reverse type order.
    assert_eq!(
        types(&probe.advance(&s)),
        vec![
            (ResourceType::Route, 1, 0),
            (ResourceType::Endpoint, 0, 1),
            (ResourceType::Cluster, 0, 1),
        ]
    );
}

fn jwt_policy(route: &str) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: jwt-{route}, namespace: team}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: {route}}}]
  jwt:
    providers:
    - name: idp
      issuer: https://idp.example.com
      localJwks: '{{\"keys\": []}}'
"
    )
}

/// Regression: the JWT filter's provider and requirement maps were encoded in hash-map order,
/// so every translation gave the listener new bytes and a new version, and every change of
/// anything pushed the listeners again.
#[test]
fn several_jwt_policies_encode_the_same_every_time() {
    let mut d = docs(9002, "/r5");
    for r in ["r1", "r2", "r3", "r4", "r6", "r8"] {
        d.push(jwt_policy(r));
    }
    let c = config(&d);
    let first = snap(&mut Translator::new(TranslateOptions::default()), &c);
    let mut probe = DeltaProbe::new(&first);
    for _ in 0..5 {
        let again = snap(&mut Translator::new(TranslateOptions::default()), &c);
        assert_eq!(
            again.version(ResourceType::Listener),
            first.version(ResourceType::Listener)
        );
        assert!(probe.advance(&again).is_empty(), "a no-op push");
    }
}
