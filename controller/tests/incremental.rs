//! Change-driven translation gives exactly what a full translation gives: a seeded sequence
//! of route, Backend and Service-endpoint changes is applied both ways, and after every step
//! the snapshots (every resource's name and content hash), the statuses and the effective
//! security must be equal.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gatehouse_controller::ResourceType;
use gatehouse_controller::admission::{Admitter, Policies, load_policies};
use gatehouse_controller::model::{Changes, Config, Origin, load_text};
use gatehouse_controller::translate::{TranslateOptions, Translation, Translator};

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart")
}

fn load(c: &mut Config, yaml: &str) {
    let mut diags = Vec::new();
    load_text(c, &mut diags, Path::new("test.yaml"), yaml);
    assert!(diags.is_empty(), "{diags:?}\n{yaml}");
}

/// A small deterministic generator (no dependency on a random crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn base() -> String {
    let tls = std::fs::read_to_string(quickstart().join("05-listener-certificate.yaml"))
        .unwrap()
        .replace("namespace: quickstart", "namespace: apps");
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: gatehouse}}
spec: {{controllerName: gatehouse.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: apps}}
spec:
  gatewayClassName: gatehouse
  listeners:
  - {{name: a, port: 8080, protocol: HTTP, hostname: '*.a.example.com'}}
  - {{name: b, port: 8080, protocol: HTTP, hostname: '*.b.example.com'}}
  - {{name: c, port: 8081, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: secure, namespace: apps}}
spec:
  gatewayClassName: gatehouse
  listeners:
  - name: https
    port: 8443
    protocol: HTTPS
    hostname: secure.localhost
    tls: {{certificateRefs: [{{name: secure-localhost}}]}}
---
{tls}---
apiVersion: v1
kind: Secret
metadata: {{name: users, namespace: apps}}
stringData: {{.htpasswd: 'admin:{{SHA}}0DPiKuNIrrVmD8IUCuw1hQxNqZc='}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: extauth, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r3}}, {{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r7}}]
  extAuth: {{backendRef: {{group: gatehouse.dev, kind: Backend, name: b1}}, timeout: 500ms}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: basic, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r5}}]
  basicAuth: {{users: {{name: users}}}}
"
    )
}

const HOSTS: [&str; 5] = [
    "x.a.example.com",
    "y.b.example.com",
    "secure.localhost",
    "other.example.org",
    "z.a.example.com",
];

fn route(i: u64, rng: &mut Rng) -> String {
    let ns = if rng.below(6) == 0 { "other" } else { "apps" };
    let parent = match rng.below(5) {
        0 => "{name: secure, namespace: apps}".to_owned(),
        1 => "{name: edge, namespace: apps, sectionName: c}".to_owned(),
        2 => "{name: missing, namespace: apps}".to_owned(),
        _ => "{name: edge, namespace: apps}".to_owned(),
    };
    let host = HOSTS[rng.below(HOSTS.len() as u64) as usize];
    let backend = match rng.below(8) {
        0 => "{name: api, port: 80}".to_owned(),
        1 => "{name: web, port: 8080}".to_owned(),
        2 => "{group: gatehouse.dev, kind: Backend, name: nowhere}".to_owned(),
        n => format!(
            "{{group: gatehouse.dev, kind: Backend, name: b{}, namespace: apps, weight: {}}}",
            n % 4,
            1 + rng.below(3)
        ),
    };
    let mirror = if rng.below(4) == 0 {
        ", filters: [{type: RequestMirror, requestMirror: {backendRef: {group: gatehouse.dev, kind: Backend, name: b2, namespace: apps}}}]"
    } else {
        ""
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r{i}, namespace: {ns}}}
spec:
  parentRefs: [{parent}]
  hostnames: [{host}]
  rules: [{{matches: [{{path: {{type: PathPrefix, value: /p{}}}}}], backendRefs: [{backend}]{mirror}}}]
",
        rng.below(5)
    )
}

fn grpc_route(i: u64, rng: &mut Rng) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: g{i}, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: [{}]
  rules: [{{matches: [{{method: {{service: svc.V{}}}}}], backendRefs: [{{group: gatehouse.dev, kind: Backend, name: b{}}}]}}]
",
        HOSTS[rng.below(2) as usize],
        rng.below(3),
        rng.below(4)
    )
}

fn backend(i: u64, rng: &mut Rng) -> String {
    let endpoints = match rng.below(6) {
        0 => "[]".to_owned(),
        1 => "[{address: not-an-ip, port: 9000}]".to_owned(),
        _ => format!(
            "[{{address: 127.0.0.{}, port: {}}}]",
            1 + rng.below(3),
            9000 + rng.below(3)
        ),
    };
    format!(
        "apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: b{i}, namespace: apps}}
spec: {{endpoints: {endpoints}}}
"
    )
}

fn origin() -> Origin {
    Origin {
        file: PathBuf::from("kubernetes:test"),
        line: 0,
    }
}

fn service(c: &mut Config, name: &str, port: u16) {
    let svc = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"ports": [{"name": "http", "port": port}]}
    }))
    .unwrap();
    c.services
        .insert(("apps".into(), name.into()), (svc, origin()));
}

fn slice(c: &mut Config, service: &str, n: u64, rng: &mut Rng) {
    let endpoints: Vec<serde_json::Value> = (0..1 + rng.below(3))
        .map(|j| {
            serde_json::json!({
                "addresses": [format!("10.0.{n}.{}", j + rng.below(4))],
                "conditions": {"ready": rng.below(4) != 0}
            })
        })
        .collect();
    let s = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{service}-{n}"), "namespace": "apps",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8000 + n}],
        "endpoints": endpoints
    }))
    .unwrap();
    c.endpoint_slices
        .insert(("apps".into(), format!("{service}-{n}")), (s, origin()));
}

/// A gateway, a type, and the name and version of each of its resources of that type.
type Fingerprint = Vec<(String, ResourceType, Vec<(String, String)>)>;

/// Every resource's name and version, per gateway and type.
fn fingerprint(t: &Translation) -> Fingerprint {
    let mut out = Vec::new();
    for (gw, snap) in &t.snapshots {
        for ty in ResourceType::ALL {
            out.push((
                gw.to_string(),
                ty,
                snap.resources(ty)
                    .iter()
                    .map(|(n, r)| (n.clone(), r.version().to_owned()))
                    .collect(),
            ));
        }
    }
    out
}

fn assert_same(step: usize, what: &str, incremental: &Translation, full: &Translation) {
    assert_eq!(
        fingerprint(incremental),
        fingerprint(full),
        "step {step} ({what}): snapshots differ"
    );
    for (gw, snap) in &full.snapshots {
        assert_eq!(
            &incremental.snapshots[gw], snap,
            "step {step} ({what}): snapshot versions differ"
        );
    }
    let a: Vec<_> = incremental.status.iter().collect();
    let b: Vec<_> = full.status.iter().collect();
    assert_eq!(a, b, "step {step} ({what}): statuses differ");
    let a: Vec<_> = incremental.security.iter().collect();
    let b: Vec<_> = full.security.iter().collect();
    assert_eq!(a, b, "step {step} ({what}): security differs");
}

/// The starting configuration of the seeded sequences.
fn start(rng: &mut Rng) -> Config {
    let mut c = Config::default();
    load(&mut c, &base());
    for i in 0..4 {
        load(&mut c, &backend(i, rng));
    }
    for i in 0..20 {
        load(&mut c, &route(i, rng));
    }
    for i in 0..3 {
        load(&mut c, &grpc_route(i, rng));
    }
    service(&mut c, "api", 80);
    service(&mut c, "web", 8080);
    for n in 0..3 {
        slice(&mut c, if n == 2 { "web" } else { "api" }, n, rng);
    }
    c
}

/// One seeded change to `c`: what kind of change, and the change set a source would report.
fn step(c: &mut Config, rng: &mut Rng) -> (&'static str, Changes) {
    let mut changes = Changes::default();
    let what = match rng.below(10) {
        0..=3 => {
            let i = rng.below(26);
            // Drop any version of the route, in either namespace, then maybe re-add it.
            for ns in ["apps", "other"] {
                let k = (ns.to_owned(), format!("r{i}"));
                if c.http_routes.remove(&k).is_some() {
                    changes.http_routes.insert(k);
                }
            }
            if rng.below(5) != 0 {
                let before = c.http_routes.len();
                let yaml = route(i, rng);
                load(c, &yaml);
                assert_eq!(c.http_routes.len(), before + 1);
                let ns = if yaml.contains("namespace: other}") {
                    "other"
                } else {
                    "apps"
                };
                changes.http_routes.insert((ns.into(), format!("r{i}")));
            }
            "route"
        }
        4 => {
            let i = rng.below(4);
            let k = ("apps".to_owned(), format!("g{i}"));
            c.grpc_routes.remove(&k);
            if rng.below(4) != 0 {
                load(c, &grpc_route(i, rng));
            }
            changes.grpc_routes.insert(k);
            "grpc route"
        }
        5..=7 => {
            let i = rng.below(5);
            let k = ("apps".to_owned(), format!("b{i}"));
            c.backends.remove(&k);
            if rng.below(5) != 0 {
                load(c, &backend(i, rng));
            }
            changes.backends.insert(k);
            "backend"
        }
        _ => {
            let n = rng.below(4);
            let svc = if n >= 2 { "web" } else { "api" };
            let k = ("apps".to_owned(), format!("{svc}-{n}"));
            c.endpoint_slices.remove(&k);
            if rng.below(4) != 0 {
                slice(c, svc, n, rng);
            }
            changes
                .service_endpoints
                .insert(("apps".into(), svc.into()));
            "endpoints"
        }
    };
    (what, changes)
}

#[test]
fn change_driven_translation_equals_full_translation() {
    let mut rng = Rng(7);
    let mut c = start(&mut rng);
    let mut incremental = Translator::default();
    let first = incremental.translate(&c);
    assert!(
        first.snapshots.values().any(|s| s.len() > 5),
        "the starting point programs something"
    );
    let mut patched = 0;
    for n in 0..400 {
        let (what, changes) = step(&mut c, &mut rng);
        let t = incremental.translate_changes(&c, &changes);
        let full = Translator::default().translate(&c);
        assert_same(n, what, &t, &full);
        if t.stats.routes_reused == 0 && t.stats.route_tables_reused == 0 {
            patched += 1;
        }
    }
    assert!(
        patched > 100,
        "most steps are patches that reuse nothing: {patched}"
    );
}

/// Routes on `/p1` are denied, on `/p2` warned.
const POLICIES: &str = "@id(\"no-p1\")
@message(\"no p1\")
forbid (principal, action == Gatehouse::Action::\"exposePath\", resource)
when { context.path.lower like \"/p1*\" };

@id(\"warn-p2\")
@enforcement(\"warn\")
@message(\"p2 is deprecated\")
forbid (principal, action == Gatehouse::Action::\"exposePath\", resource)
when { context.path.lower like \"/p2*\" };
";

#[test]
fn change_driven_admission_equals_admission_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("guard.cedar"), POLICIES).unwrap();
    let mut rng = Rng(11);
    let mut c = start(&mut rng);
    let (engine, diags) = load_policies(&[dir.path()], &c).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let mut policies = Policies::Enforce(std::sync::Arc::new(engine));
    let mut incremental = Admitter::new(TranslateOptions::default());
    incremental.translate(&c, &policies);
    let (mut denied, mut warned) = (0, 0);
    for n in 0..300 {
        let (what, changes) = if n % 100 == 50 {
            // The policy set changes and the configuration does not.
            // n = 50, 150, 250: what is warned changes, what is denied not (then only the
            // decisions say which statuses change), then what is denied changes too.
            let (deny, warn) = [(1, 0), (1, 4), (3, 2)][n / 100];
            let text = POLICIES
                .replace("/p2*", "WARN")
                .replace("/p1*", &format!("/p{deny}*"))
                .replace("WARN", &format!("/p{warn}*"));
            std::fs::write(dir.path().join("guard.cedar"), text).unwrap();
            let (engine, _) = load_policies(&[dir.path()], &c).unwrap();
            policies = Policies::Enforce(std::sync::Arc::new(engine));
            ("policies", Changes::default())
        } else {
            step(&mut c, &mut rng)
        };
        let a = incremental.translate_changes(&c, &changes, &policies);
        let full = Admitter::new(TranslateOptions::default()).translate(&c, &policies);
        assert_same(n, what, &a.translation, &full.translation);
        assert_eq!(a.report, full.report, "step {n} ({what}): decisions differ");
        denied += a.report.denied().count();
        warned += a
            .translation
            .status
            .iter()
            .filter(|s| s.conditions.iter().any(|c| c.reason == "WarnedByPolicy"))
            .count();
    }
    assert!(
        denied > 100 && warned > 100,
        "the sequence exercises denials ({denied}) and warnings ({warned})"
    );
}

#[test]
fn one_route_change_touches_one_route_without_walking_the_rest() {
    let mut s = base();
    for i in 0..2_000 {
        write!(
            s,
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r{i}, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: [h{}.a.example.com]
  rules: [{{matches: [{{path: {{type: PathPrefix, value: /p{i}}}}}], backendRefs: [{{group: gatehouse.dev, kind: Backend, name: b0}}]}}]
",
            i % 10
        )
        .unwrap();
    }
    s.push_str("---\n");
    s.push_str(&backend(0, &mut Rng(3)).replace("[]", "[{address: 127.0.0.1, port: 1}]"));
    let mut c = Config::default();
    load(&mut c, &s);
    let mut t = Translator::default();
    let first = t.translate(&c);
    c.http_routes.remove(&("apps".to_owned(), "r42".to_owned()));
    // Each route is on listeners `a` and `c`; r3 and r7 need Backend b1 (for extAuth), which
    // does not exist.
    assert_eq!(first.stats.routes_translated, 4_000 - 2 * 2);
    load(
        &mut c,
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r42, namespace: apps}
spec:
  parentRefs: [{name: edge}]
  hostnames: [h2.a.example.com]
  rules: [{matches: [{path: {type: PathPrefix, value: /changed}}], backendRefs: [{group: gatehouse.dev, kind: Backend, name: b0}]}]
",
    );
    let mut changes = Changes::default();
    changes.http_routes.insert(("apps".into(), "r42".into()));
    let after = t.translate_changes(&c, &changes);
    // Only the changed route is looked at: nothing is counted as reused, because nothing
    // else is visited.
    assert_eq!(
        (after.stats.routes_translated, after.stats.routes_reused),
        (2, 0)
    );
    assert_eq!(
        (
            after.stats.route_tables_built,
            after.stats.clusters_built,
            after.stats.listeners_built
        ),
        (2, 0, 0),
        "the route's two tables (ports 8080 and 8081)"
    );
    assert_same(0, "one route", &after, &Translator::default().translate(&c));
}
