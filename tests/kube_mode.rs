//! Kubernetes mode against a fake API server (kube's `tower-test` mock answering real-shaped API
//! JSON; no API server can be installed on these machines): lists then watch events for each
//! kind end in the expected xDS snapshot, cross-namespace references need a ReferenceGrant,
//! endpoint churn changes only EDS, status is written the Gateway API way by the leader only,
//! and an API outage withdraws nothing.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use gatehouse_certs::GatewayName;
use gatehouse_controller::kube::KubeControlPlane;
use gatehouse_controller::translate::TranslateOptions;
use gatehouse_controller::xds::ProxyRegistry;
use gatehouse_controller::{ResourceType, Snapshot, SnapshotCache};
use prost::Message as _;
use serde_json::{Value, json};
use support::kube_api::FakeApi;
use tokio::sync::watch;

const GW_API: &str = "gateway.networking.k8s.io";

fn class() -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
           "metadata": {"name": "gatehouse"},
           "spec": {"controllerName": "gatehouse.dev/gateway-controller"}})
}

fn gateway(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"gatewayClassName": "gatehouse",
                    "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP",
                                   "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
}

fn route(ns: &str, name: &str, path: &str, backend: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"parentRefs": [{"name": "edge", "namespace": "gw"}],
                    "hostnames": ["app.example.com"],
                    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                               "backendRefs": [backend]}]}})
}

fn service_ref(ns: Option<&str>, name: &str) -> Value {
    let mut v = json!({"name": name, "port": 80});
    if let Some(ns) = ns {
        v["namespace"] = json!(ns);
    }
    v
}

fn service(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                    "selector": {"app": name}, "type": "ClusterIP"}})
}

fn slice(ns: &str, service: &str, name: &str, ips: &[&str]) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": ns,
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4",
           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
           "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>()})
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}})
}

/// The fake cluster every scenario starts from: our class, Gateway `gw/edge`, Service
/// `apps/echo` with two endpoints, and a route in `apps` to it.
fn base_cluster() -> FakeApi {
    let api = FakeApi::default();
    for ns in ["gw", "apps", "other"] {
        api.apply(namespace(ns));
    }
    api.apply(class());
    api.apply(gateway("gw", "edge"));
    api.apply(service("apps", "echo"));
    api.apply(slice("apps", "echo", "echo-1", &["10.0.0.1", "10.0.0.2"]));
    api.apply(route("apps", "web", "/", service_ref(None, "echo")));
    api
}

struct Running {
    cache: Arc<SnapshotCache>,
    stop: watch::Sender<bool>,
    leader: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

fn start(api: &FakeApi, leader: bool) -> Running {
    let cache = Arc::new(SnapshotCache::new());
    let cp = KubeControlPlane {
        client: api.client(),
        options: TranslateOptions::default(),
        cache: cache.clone(),
        registry: Arc::new(ProxyRegistry::new()),
        secret_namespaces: vec!["gw".into()],
        quiet: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        status_file: None,
        certificates: None,
        certificate_check: Duration::from_secs(60),
    };
    let (stop, stop_rx) = watch::channel(false);
    let (leader_tx, leader_rx) = watch::channel(leader);
    let (gw_tx, _gw_rx) = watch::channel(BTreeSet::new());
    let task = tokio::spawn(cp.run(stop_rx, leader_rx, gw_tx));
    Running {
        cache,
        stop,
        leader: leader_tx,
        task,
    }
}

fn edge() -> GatewayName {
    "gw/edge".parse().unwrap()
}

/// Polls until `ok` holds (at most 10 s: a bound, not a timing assertion).
async fn until<T>(what: &str, mut ok: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1000 {
        if let Some(v) = ok() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn routes(s: &Snapshot) -> Vec<RouteConfiguration> {
    s.resources(ResourceType::Route)
        .values()
        .map(|r| RouteConfiguration::decode(r.body().value.as_slice()).unwrap())
        .collect()
}

fn prefixes(s: &Snapshot) -> BTreeSet<String> {
    routes(s)
        .iter()
        .flat_map(|rc| rc.virtual_hosts.iter())
        .flat_map(|vh| vh.routes.iter())
        .filter_map(|r| r.r#match.as_ref())
        .filter_map(|m| m.path_specifier.as_ref())
        .map(|p| format!("{p:?}"))
        .collect()
}

fn endpoints(s: &Snapshot, cluster: &str) -> Vec<String> {
    let Some(r) = s.get(ResourceType::Endpoint, cluster) else {
        return Vec::new();
    };
    let cla = ClusterLoadAssignment::decode(r.body().value.as_slice()).unwrap();
    let mut out: Vec<String> = cla
        .endpoints
        .iter()
        .flat_map(|l| l.lb_endpoints.iter())
        .map(|e| format!("{e:?}"))
        .map(|d| {
            let a = d
                .split("address: \"")
                .nth(1)
                .unwrap_or("")
                .split('"')
                .next()
                .unwrap_or("")
                .to_owned();
            let p = d
                .split("PortValue(")
                .nth(1)
                .unwrap_or("")
                .split(')')
                .next()
                .unwrap_or("")
                .to_owned();
            format!("{a}:{p}")
        })
        .collect();
    out.sort();
    out
}

/// A self-signed certificate and key for `host`, made by the `openssl` command line.
fn self_signed_pem(host: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .arg("-subj")
        .arg(format!("/CN={host}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{host}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(crt).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

const ECHO: &str = "service/apps/echo/80";

/// The base cluster's snapshot, once published: the echo Service with its two endpoints.
async fn initial_snapshot(run: &Running) -> Arc<Snapshot> {
    until("the initial snapshot", || {
        let s = run.cache.get(&edge());
        (endpoints(&s, ECHO).len() == 2).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_then_watch_events_end_in_the_expected_snapshot() {
    let api = base_cluster();
    let run = start(&api, true);
    let snap = until("the initial snapshot", || {
        let s = run.cache.get(&edge());
        (!s.resources(ResourceType::Route).is_empty() && !endpoints(&s, ECHO).is_empty())
            .then_some(s)
    })
    .await;
    assert_eq!(endpoints(&snap, ECHO), ["10.0.0.1:8080", "10.0.0.2:8080"]);
    assert!(snap.get(ResourceType::Cluster, ECHO).is_some());
    assert!(snap.get(ResourceType::Listener, "http-8080").is_some());

    // Added: a second route; modified: its path; deleted: it again.
    api.apply(route("apps", "api", "/api", service_ref(None, "echo")));
    until("the added route", || {
        prefixes(&run.cache.get(&edge()))
            .iter()
            .any(|p| p.contains("/api"))
            .then_some(())
    })
    .await;
    api.apply(route("apps", "api", "/v2", service_ref(None, "echo")));
    until("the modified route", || {
        let p = prefixes(&run.cache.get(&edge()));
        (p.iter().any(|p| p.contains("/v2")) && !p.iter().any(|p| p.contains("/api"))).then_some(())
    })
    .await;
    api.delete("HTTPRoute", GW_API, "apps", "api");
    until("the deleted route", || {
        (!prefixes(&run.cache.get(&edge()))
            .iter()
            .any(|p| p.contains("/v2")))
        .then_some(())
    })
    .await;

    // A Backend (our CRD) and a GRPCRoute.
    api.apply(
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "Backend",
                     "metadata": {"name": "static", "namespace": "apps"},
                     "spec": {"endpoints": [{"address": "10.9.9.9", "port": 9000}]}}),
    );
    api.apply(route(
        "apps",
        "legacy",
        "/legacy",
        json!({"group": "gatehouse.dev", "kind": "Backend", "name": "static", "port": 9000}),
    ));
    until("the Backend's cluster", || {
        let s = run.cache.get(&edge());
        (endpoints(&s, "backend/apps/static") == ["10.9.9.9:9000"]).then_some(())
    })
    .await;
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
                     "metadata": {"name": "rpc", "namespace": "apps"},
                     "spec": {"parentRefs": [{"name": "edge", "namespace": "gw"}],
                              "hostnames": ["grpc.example.com"],
                              "rules": [{"backendRefs": [{"name": "echo", "port": 80}]}]}}),
    );
    until("the GRPCRoute's h2 cluster", || {
        run.cache
            .get(&edge())
            .get(ResourceType::Cluster, "service/apps/echo/80/h2")
            .map(|_| ())
    })
    .await;

    // A SecurityPolicy on the route: an IP allow list becomes an RBAC filter config.
    api.apply(
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "SecurityPolicy",
                     "metadata": {"name": "office", "namespace": "apps"},
                     "spec": {"targetRefs": [{"group": GW_API, "kind": "HTTPRoute", "name": "web"}],
                              "ipAllow": ["192.0.2.0/24"]}}),
    );
    until("the policy's RBAC filter", || {
        let s = run.cache.get(&edge());
        routes(&s)
            .iter()
            .flat_map(|rc| rc.virtual_hosts.iter())
            .flat_map(|vh| vh.routes.iter())
            .any(|r| r.typed_per_filter_config.keys().any(|k| k.contains("rbac")))
            .then_some(())
    })
    .await;

    // A listener certificate from a Secret in the gateway's namespace reaches SDS.
    let (crt, key) = self_signed_pem("secure.example.com");
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    api.apply(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": "secure-cert", "namespace": "gw"},
                     "data": {"tls.crt": b64(&crt), "tls.key": b64(&key)}}),
    );
    let mut gw = gateway("gw", "edge");
    gw["spec"]["listeners"].as_array_mut().unwrap().push(json!({
        "name": "https", "port": 8443, "protocol": "HTTPS", "hostname": "secure.example.com",
        "tls": {"mode": "Terminate", "certificateRefs": [{"name": "secure-cert"}]},
        "allowedRoutes": {"namespaces": {"from": "All"}}}));
    api.apply(gw);
    until("the listener certificate in SDS", || {
        run.cache
            .get(&edge())
            .get(ResourceType::Secret, "tls/gw/secure-cert")
            .map(|_| ())
    })
    .await;

    // A deleted Gateway withdraws its configuration.
    api.delete("Gateway", GW_API, "gw", "edge");
    until("the withdrawn gateway", || {
        run.cache.get(&edge()).is_empty().then_some(())
    })
    .await;

    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slice_churn_changes_only_endpoints() {
    let api = base_cluster();
    let run = start(&api, false);
    let before = initial_snapshot(&run).await;
    api.apply(slice(
        "apps",
        "echo",
        "echo-1",
        &["10.0.0.1", "10.0.0.3", "10.0.0.4"],
    ));
    let after = until("the new endpoints", || {
        let s = run.cache.get(&edge());
        (endpoints(&s, ECHO) == ["10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.4:8080"]).then_some(s)
    })
    .await;
    assert_ne!(
        before.version(ResourceType::Endpoint),
        after.version(ResourceType::Endpoint)
    );
    for t in [
        ResourceType::Cluster,
        ResourceType::Listener,
        ResourceType::Route,
        ResourceType::Secret,
    ] {
        assert_eq!(
            before.version(t),
            after.version(t),
            "{t:?} changed on endpoint churn"
        );
        for (name, r) in before.resources(t) {
            assert_eq!(
                after.get(t, name).map(|a| a.version()),
                Some(r.version()),
                "{t:?} {name}"
            );
        }
    }
    // A not-ready endpoint is not served.
    let mut s = slice("apps", "echo", "echo-1", &["10.0.0.1", "10.0.0.3"]);
    s["endpoints"][1]["conditions"]["ready"] = json!(false);
    api.apply(s);
    until("the not-ready endpoint removed", || {
        (endpoints(&run.cache.get(&edge()), ECHO) == ["10.0.0.1:8080"]).then_some(())
    })
    .await;
    run.stop().await;
}

fn route_status(api: &FakeApi, ns: &str, name: &str) -> Option<Value> {
    let r = api.get("HTTPRoute", GW_API, ns, name)?;
    r["status"]["parents"]
        .as_array()?
        .iter()
        .find(|p| p["controllerName"] == "gatehouse.dev/gateway-controller")
        .cloned()
}

fn condition<'a>(parent: &'a Value, t: &str) -> &'a Value {
    parent["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_service_needs_a_reference_grant() {
    let api = base_cluster();
    api.apply(service("other", "billing"));
    api.apply(slice("other", "billing", "billing-1", &["10.1.0.1"]));
    api.apply(route(
        "apps",
        "pay",
        "/pay",
        service_ref(Some("other"), "billing"),
    ));
    let run = start(&api, true);
    let parent = until("the route's status", || {
        route_status(&api, "apps", "pay")
            .filter(|p| condition(p, "ResolvedRefs")["reason"] == "RefNotPermitted")
    })
    .await;
    assert_eq!(condition(&parent, "ResolvedRefs")["status"], "False");
    assert_eq!(parent["parentRef"]["name"], "edge");
    assert_eq!(parent["parentRef"]["namespace"], "gw");
    assert!(
        run.cache
            .get(&edge())
            .get(ResourceType::Cluster, "service/other/billing/80")
            .is_none()
    );

    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                     "metadata": {"name": "apps-to-billing", "namespace": "other"},
                     "spec": {"from": [{"group": GW_API, "kind": "HTTPRoute", "namespace": "apps"}],
                              "to": [{"group": "", "kind": "Service"}]}}),
    );
    until("the granted reference", || {
        route_status(&api, "apps", "pay")
            .filter(|p| condition(p, "ResolvedRefs")["status"] == "True")
    })
    .await;
    until("the granted cluster", || {
        run.cache
            .get(&edge())
            .get(ResourceType::Cluster, "service/other/billing/80")
            .map(|_| ())
    })
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_status_the_gateway_api_way() {
    let api = base_cluster();
    let run = start(&api, false);
    initial_snapshot(&run).await;
    // A follower serves xDS and writes nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writes: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.verb != "list" && r.verb != "watch")
        .collect();
    assert!(writes.is_empty(), "a follower wrote: {writes:?}");

    run.leader.send(true).unwrap();
    let parent = until("the route's status", || {
        route_status(&api, "apps", "web").filter(|p| condition(p, "Accepted")["status"] == "True")
    })
    .await;
    assert_eq!(condition(&parent, "ResolvedRefs")["status"], "True");
    assert_eq!(condition(&parent, "Accepted")["observedGeneration"], 1);
    assert!(condition(&parent, "Accepted")["lastTransitionTime"].is_string());
    let patch = api
        .requests()
        .into_iter()
        .find(|r| r.resource == "httproutes" && r.subresource.as_deref() == Some("status"))
        .unwrap();
    assert_eq!(patch.method, "PATCH");
    assert!(
        patch.uri.starts_with(
            "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes/web/status?"
        ),
        "{}",
        patch.uri
    );
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(patch.query("fieldManager").as_deref(), Some("gatehouse"));

    // The Gateway and its listener; the class.
    let gw = until("the gateway's status", || {
        api.get("Gateway", GW_API, "gw", "edge")
            .filter(|g| g["status"]["listeners"].is_array())
    })
    .await;
    let listener = &gw["status"]["listeners"][0];
    assert_eq!(listener["name"], "http");
    assert_eq!(listener["attachedRoutes"], 1);
    assert!(
        gw["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Programmed" && c["status"] == "True")
    );
    let class = until("the class's status", || {
        api.get("GatewayClass", GW_API, "", "gatehouse")
            .filter(|c| c["status"]["conditions"].is_array())
    })
    .await;
    assert_eq!(class["status"]["conditions"][0]["type"], "Accepted");

    // Nothing changes: nothing is written again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.clear_requests();
    api.apply(slice(
        "apps",
        "echo",
        "echo-1",
        &["10.0.0.1", "10.0.0.2", "10.0.0.5"],
    ));
    until("the new endpoint", || {
        (endpoints(&run.cache.get(&edge()), ECHO).len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.verb == "patch")
        .collect();
    assert!(
        again.is_empty(),
        "unchanged statuses written again: {again:?}"
    );

    // A Cedar denial appears on the route's status with the policy id and message.
    let mut admin = route("apps", "admin", "/admin", service_ref(None, "echo"));
    admin["metadata"]["name"] = json!("admin");
    api.apply(admin);
    api.apply(json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "GatewayPolicy",
        "metadata": {"name": "platform"},
        "spec": {"enforcement": "deny", "policies": "@id(\"no-admin\")\n@message(\"admin paths are internal only\")\nforbid (principal, action == Gatehouse::Action::\"exposePath\", resource)\nwhen { context.path.lower like \"*/admin*\" };\n"}}));
    let denied = until("the denial on the route's status", || {
        route_status(&api, "apps", "admin")
            .filter(|p| condition(p, "Accepted")["reason"] == "NotAllowedByPolicy")
    })
    .await;
    let msg = condition(&denied, "Accepted")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("no-admin") && msg.contains("admin paths are internal only"),
        "{msg}"
    );
    assert!(
        !prefixes(&run.cache.get(&edge()))
            .iter()
            .any(|p| p.contains("/admin"))
    );

    // Losing the lead stops writes.
    run.leader.send(false).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.clear_requests();
    api.apply(route(
        "apps",
        "late",
        "/late",
        service_ref(Some("other"), "nothing"),
    ));
    until("the late route", || {
        Some(()).filter(|_| api.get("HTTPRoute", GW_API, "apps", "late").is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        api.requests().iter().all(|r| r.verb != "patch"),
        "a follower wrote status"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_withdraws_nothing_and_watches_resync() {
    let api = base_cluster();
    let run = start(&api, false);
    let before = initial_snapshot(&run).await;
    api.set_outage(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = run.cache.get(&edge());
    assert_eq!(
        during.version(ResourceType::Route),
        before.version(ResourceType::Route)
    );
    assert_eq!(
        endpoints(&during, ECHO).len(),
        2,
        "an outage withdrew endpoints"
    );
    // Changes made while the controller could not see them arrive after the re-list.
    api.set_outage(false);
    api.apply(route("apps", "after", "/after", service_ref(None, "echo")));
    api.delete("HTTPRoute", GW_API, "apps", "web");
    until("the resync", || {
        let p = prefixes(&run.cache.get(&edge()));
        (p.iter().any(|p| p.contains("/after")) && p.len() == 1).then_some(())
    })
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_write_is_retried() {
    let api = base_cluster();
    api.fail("patch", "httproutes", 500);
    let run = start(&api, true);
    until("the gateway's status", || {
        api.get("Gateway", GW_API, "gw", "edge")
            .filter(|g| g["status"]["listeners"].is_array())
    })
    .await;
    // Statuses are written in order (classes, Gateways, then routes): the route's write may
    // still be on its way when the Gateway's shows.
    until("the route's status write to be tried", || {
        api.requests()
            .iter()
            .any(|r| r.resource == "httproutes" && r.verb == "patch")
            .then_some(())
    })
    .await;
    assert!(route_status(&api, "apps", "web").is_none());
    api.fail("patch", "httproutes", 0);
    // The next change (or the periodic resync) writes it.
    api.apply(namespace("late"));
    until("the route's status after the failure", || {
        route_status(&api, "apps", "web").filter(|p| condition(p, "Accepted")["status"] == "True")
    })
    .await;
    run.stop().await;
}
