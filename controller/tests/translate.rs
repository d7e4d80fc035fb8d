//! Translation of Gateway API configuration: statuses, the Envoy resources produced (judged by
//! `envoy --mode validate` as a static bootstrap), and incremental re-translation.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gatehouse_controller::model::{Config, load_dir, load_text};
use gatehouse_controller::translate::{TranslateOptions, Translator, static_bootstrap};
use gatehouse_controller::{ResourceType, Snapshot};
use prost::Message;

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart")
}

fn envoy() -> PathBuf {
    let p = std::env::var_os("GATEHOUSE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/envoy"));
    assert!(
        p.exists(),
        "Envoy not found at {}: run `make deps`",
        p.display()
    );
    p
}

/// `envoy --mode validate` on the snapshot as a static bootstrap (binary proto). Fails on a
/// non-zero exit and on any warning or error line.
pub fn envoy_validates(snap: &Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("static.pb");
    std::fs::write(&file, static_bootstrap(snap).unwrap().encode_to_vec()).unwrap();
    let out = std::process::Command::new(envoy())
        .args([
            "--mode",
            "validate",
            "-c",
            file.to_str().unwrap(),
            "-l",
            "warning",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "envoy rejected the translation:\n{text}"
    );
    assert!(
        !text.contains("[warning]") && !text.contains("[error]") && !text.contains("[critical]"),
        "{text}"
    );
}

fn config(yaml: &str) -> Config {
    let mut c = Config::default();
    let mut diags = Vec::new();
    load_text(&mut c, &mut diags, Path::new("test.yaml"), yaml);
    assert!(diags.is_empty(), "{diags:?}");
    c
}

const GATEWAY: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: gatehouse.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: apps}
spec:
  gatewayClassName: gatehouse
  listeners:
  - {name: http, port: 8080, protocol: HTTP, hostname: '*.example.com'}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {name: svc, namespace: apps}
spec: {endpoints: [{address: 127.0.0.1, port: 9000}]}
";

#[test]
fn the_quickstart_translates_cleanly_and_envoy_accepts_it() {
    let (config, diags) = load_dir(&quickstart()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let t = Translator::new(TranslateOptions {
        bind_address: "127.0.0.1".into(),
        min_port: 1024,
    })
    .translate(&config);
    let problems: Vec<String> = t.status.iter().flat_map(|s| s.problems()).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let snap = &t.snapshots[&"quickstart/edge".parse().unwrap()];
    let names = |ty| snap.resources(ty).keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ResourceType::Listener), ["http-8080", "https-8443"]);
    assert_eq!(
        names(ResourceType::Route),
        ["http-8080", "https-8443-https"]
    );
    assert_eq!(
        names(ResourceType::Cluster),
        ["backend/quickstart/echo-a", "backend/quickstart/echo-b"]
    );
    assert_eq!(
        names(ResourceType::Secret),
        ["tls/quickstart/secure-localhost"]
    );
    envoy_validates(snap);
}

#[test]
fn statuses_say_what_is_wrong_with_the_specifications_reasons() {
    let yaml = format!(
        "{GATEWAY}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: missing-backend, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  rules: [{{backendRefs: [{{group: gatehouse.dev, kind: Backend, name: nope}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: other-namespace, namespace: tenant}}
spec:
  parentRefs: [{{name: edge, namespace: apps}}]
  rules: [{{backendRefs: [{{group: gatehouse.dev, kind: Backend, name: svc, namespace: apps}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: wrong-host, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: [api.other.org]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: no-gateway, namespace: apps}}
spec:
  parentRefs: [{{name: ghost}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: service-backend, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  rules: [{{backendRefs: [{{name: my-service, port: 80}}]}}]
"
    );
    let t = Translator::default().translate(&config(&yaml));
    let reason = |name: &str, ty: &str| -> String {
        let s = t
            .status
            .iter()
            .find(|s| s.object.name == name)
            .unwrap_or_else(|| panic!("no status for {name}"));
        let c = s.parts[0]
            .1
            .iter()
            .find(|c| c.condition_type == ty)
            .unwrap();
        format!("{}/{}", c.status, c.reason)
    };
    assert_eq!(reason("missing-backend", "Accepted"), "True/Accepted");
    assert_eq!(
        reason("missing-backend", "ResolvedRefs"),
        "False/BackendNotFound"
    );
    assert_eq!(
        reason("other-namespace", "Accepted"),
        "False/NotAllowedByListeners"
    );
    assert_eq!(
        reason("wrong-host", "Accepted"),
        "False/NoMatchingListenerHostname"
    );
    assert_eq!(reason("no-gateway", "Accepted"), "False/NoMatchingParent");
    assert_eq!(
        reason("service-backend", "ResolvedRefs"),
        "False/BackendNotFound"
    );
    // A route whose backend is missing still programs: its requests answer 500.
    let snap = &t.snapshots[&"apps/edge".parse().unwrap()];
    envoy_validates(snap);
}

#[test]
fn cross_namespace_backends_need_a_reference_grant() {
    let route = "
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shared, namespace: infra}
spec:
  gatewayClassName: gatehouse
  listeners: [{name: http, port: 8081, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: tenant}
spec:
  parentRefs: [{name: shared, namespace: infra}]
  rules: [{backendRefs: [{group: gatehouse.dev, kind: Backend, name: svc, namespace: apps}]}]
";
    let without = Translator::default().translate(&config(&format!("{GATEWAY}{route}")));
    let st = without
        .status
        .iter()
        .find(|s| s.object.name == "r")
        .unwrap();
    assert_eq!(st.parts[0].1[1].reason, "RefNotPermitted");
    let grant = "
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: tenant-may-use-svc, namespace: apps}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: tenant}]
  to: [{group: gatehouse.dev, kind: Backend, name: svc}]
";
    let with = Translator::default().translate(&config(&format!("{GATEWAY}{route}{grant}")));
    let st = with.status.iter().find(|s| s.object.name == "r").unwrap();
    assert!(st.healthy(), "{:?}", st.problems());
    let snap = &with.snapshots[&"infra/shared".parse().unwrap()];
    assert!(
        snap.get(ResourceType::Cluster, "backend/apps/svc")
            .is_some()
    );
}

#[test]
fn privileged_ports_are_refused_for_an_unprivileged_envoy() {
    let yaml = GATEWAY.replace("port: 8080", "port: 80");
    let t = Translator::new(TranslateOptions {
        min_port: 1024,
        ..Default::default()
    })
    .translate(&config(&yaml));
    let gw = t.status.iter().find(|s| s.object.name == "edge").unwrap();
    let accepted = gw.parts[0]
        .1
        .iter()
        .find(|c| c.condition_type == "Accepted")
        .unwrap();
    assert_eq!(
        (accepted.status, accepted.reason),
        ("False", "PortUnavailable")
    );
    assert!(accepted.message.contains("1024"));
}

/// A configuration with `n` routes spread over `hosts` hostnames.
fn many_routes(n: usize, hosts: usize) -> String {
    let mut s = GATEWAY.to_owned();
    for i in 0..n {
        write!(
            s,
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r{i}, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: [h{}.example.com]
  rules: [{{matches: [{{path: {{type: PathPrefix, value: /p{i}}}}}], backendRefs: [{{group: gatehouse.dev, kind: Backend, name: svc}}]}}]
",
            i % hosts
        )
        .unwrap();
    }
    s
}

#[test]
fn one_route_changed_in_1000_retranslates_one_route_and_one_table() {
    let mut translator = Translator::default();
    let before = config(&many_routes(1000, 10));
    let first = translator.translate(&before);
    assert_eq!(first.stats.routes_translated, 1000);
    assert_eq!(first.stats.route_tables_built, 1);

    // Nothing changed: nothing is translated again.
    let again = translator.translate(&before);
    assert_eq!(
        (again.stats.routes_translated, again.stats.routes_reused),
        (0, 1000)
    );
    assert_eq!(
        (
            again.stats.route_tables_built,
            again.stats.clusters_built,
            again.stats.listeners_built
        ),
        (0, 0, 0)
    );
    assert_eq!(again.snapshots, first.snapshots);

    // One route changes.
    let after = config(&many_routes(1000, 10).replace("value: /p500}", "value: /changed}"));
    let t = translator.translate(&after);
    assert_eq!(t.stats.routes_translated, 1, "{:?}", t.stats);
    assert_eq!(t.stats.routes_reused, 999);
    assert_eq!(t.stats.route_tables_built, 1);
    assert_eq!((t.stats.clusters_built, t.stats.listeners_built), (0, 0));
    let gw = "apps/edge".parse().unwrap();
    assert_ne!(
        t.snapshots[&gw].version(ResourceType::Route),
        first.snapshots[&gw].version(ResourceType::Route)
    );
    assert_eq!(
        t.snapshots[&gw].version(ResourceType::Cluster),
        first.snapshots[&gw].version(ResourceType::Cluster)
    );
    envoy_validates(&t.snapshots[&gw]);

    // Route tables are written from the routes' own encodings: exactly the bytes prost writes
    // for the decoded message, one virtual host per hostname with that hostname as its domain.
    for r in t.snapshots[&gw].resources(ResourceType::Route).values() {
        let rc = envoy_types::pb::envoy::config::route::v3::RouteConfiguration::decode(
            r.body().value.as_slice(),
        )
        .unwrap();
        assert_eq!(rc.encode_to_vec(), r.body().value, "{}", rc.name);
        assert_eq!(rc.name, r.name());
        assert_eq!(rc.virtual_hosts.len(), 10);
        for vh in &rc.virtual_hosts {
            assert_eq!(vh.domains, std::slice::from_ref(&vh.name));
            assert_eq!(vh.routes.len(), 100, "{}", vh.name);
        }
    }
}

#[test]
fn every_kind_of_security_policy_becomes_envoy_filters_that_envoy_accepts() {
    use base64::Engine as _;
    let ca = std::fs::read(quickstart().join("quickstart-ca.crt")).unwrap();
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
    let tls = std::fs::read_to_string(quickstart().join("05-listener-certificate.yaml"))
        .unwrap()
        .replace("namespace: quickstart", "namespace: apps");
    let yaml = format!(
        "{GATEWAY}---
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
metadata: {{name: client-ca, namespace: apps}}
data: {{ca.crt: {ca_b64}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: users, namespace: apps}}
stringData: {{.htpasswd: 'admin:{{SHA}}0DPiKuNIrrVmD8IUCuw1hQxNqZc='}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: authz, namespace: apps}}
spec: {{endpoints: [{{address: 127.0.0.1, port: 9100}}]}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: idp, namespace: apps}}
spec: {{endpoints: [{{address: 127.0.0.1, port: 9200}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: everything, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  rules: [{{backendRefs: [{{group: gatehouse.dev, kind: Backend, name: svc}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: public, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  rules: [{{matches: [{{path: {{value: /public}}}}], backendRefs: [{{group: gatehouse.dev, kind: Backend, name: svc}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: mtls, namespace: apps}}
spec:
  parentRefs: [{{name: secure}}]
  rules: [{{backendRefs: [{{group: gatehouse.dev, kind: Backend, name: svc}}]}}]
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: gateway-wide, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: edge}}]
  jwt:
    providers:
    - name: idp
      issuer: https://idp.example.com
      audiences: [api]
      remoteJwks: {{uri: 'http://127.0.0.1:9200/jwks.json', backendRef: {{group: gatehouse.dev, kind: Backend, name: idp}}}}
  ipDeny: [192.0.2.0/24]
  cors: {{allowOrigins: [https://app.example.com], allowMethods: [GET, POST], maxAge: 1h}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: route-extra, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: everything}}]
  extAuth: {{backendRef: {{group: gatehouse.dev, kind: Backend, name: authz}}, timeout: 500ms}}
  basicAuth: {{users: {{name: users}}}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: public-opt-out, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: public}}]
  disableInheritedAuthentication: true
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: client-certs, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: secure}}]
  clientCertificate: {{caCertificateRefs: [{{name: client-ca}}], requiredSans: [client.example.com]}}
"
    );
    let t = Translator::default().translate(&config(&yaml));
    let problems: Vec<String> = t.status.iter().flat_map(|s| s.problems()).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let eff = |name: &str| {
        t.security
            .iter()
            .find(|s| s.route.name == name)
            .unwrap()
            .security
            .clone()
    };
    let everything = eff("everything");
    assert!(
        everything.jwt.is_some()
            && everything.ext_auth.is_some()
            && everything.basic_auth.is_some()
    );
    assert_eq!(everything.ip_deny, ["192.0.2.0/24"]);
    let public = eff("public");
    assert!(public.authentication_disabled && public.jwt.is_none() && !public.authenticated());
    assert_eq!(
        public.ip_deny,
        ["192.0.2.0/24"],
        "authorization is still inherited"
    );
    assert!(eff("mtls").client_certificate.is_some());

    let edge = &t.snapshots[&"apps/edge".parse().unwrap()];
    assert!(
        edge.get(ResourceType::Cluster, "backend/apps/authz/h2")
            .is_some(),
        "extAuth speaks gRPC"
    );
    assert!(
        edge.get(ResourceType::Cluster, "backend/apps/idp")
            .is_some()
    );
    envoy_validates(edge);
    let secure = &t.snapshots[&"apps/secure".parse().unwrap()];
    assert!(
        secure
            .get(ResourceType::Secret, "ca/apps/client-ca")
            .is_some()
    );
    envoy_validates(secure);
}

#[test]
fn an_invalid_security_policy_keeps_its_routes_unprogrammed() {
    let yaml = format!(
        "{GATEWAY}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  rules: [{{backendRefs: [{{group: gatehouse.dev, kind: Backend, name: svc}}]}}]
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: fail-open, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}}]
  extAuth: {{backendRef: {{group: gatehouse.dev, kind: Backend, name: svc}}, failOpen: true}}
"
    );
    let t = Translator::default().translate(&config(&yaml));
    let policy = t
        .status
        .iter()
        .find(|s| s.object.name == "fail-open")
        .unwrap();
    assert_eq!(policy.conditions[0].reason, "Invalid");
    assert!(policy.conditions[0].message.contains("never fails open"));
    let route = t.status.iter().find(|s| s.object.name == "r").unwrap();
    assert_eq!(route.parts[0].1[0].status, "False");
    assert!(route.parts[0].1[0].message.contains("fail-open"));
    let snap = &t.snapshots[&"apps/edge".parse().unwrap()];
    let rc = snap.get(ResourceType::Route, "http-8080").unwrap();
    let rc = envoy_types::pb::envoy::config::route::v3::RouteConfiguration::decode(
        rc.body().value.as_slice(),
    )
    .unwrap();
    assert!(
        rc.virtual_hosts.iter().all(|v| v.routes.is_empty()),
        "the route is not served: {rc:?}"
    );
}
