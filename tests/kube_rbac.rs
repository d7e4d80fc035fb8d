//! The leader's duties in Kubernetes mode, and the RBAC they need — against a fake API server
//! (kube's `tower-test` mock answering real-shaped API JSON; no API server can be installed on
//! these machines).
//!
//! One scenario runs everything the controller does with the API: the watches of every kind,
//! leader election on the Lease (create, renew, release), status on every kind that has one,
//! and each gateway's xDS client-certificate Secret (created, then rotated before half-life; the
//! rotated certificate is accepted by the real xDS server over mTLS). Every request it makes is
//! recorded and checked against the Roles and ClusterRoles the `hardened` profile renders —
//! verb, group, resource, subresource, namespace and name — and every rule the profile grants
//! must have been needed by some request.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use gatehouse_certs::{
    CertificateAuthority, Identity, LeafRequest, ManualClock, ReloadableCert, SystemClock,
    TrustDomain,
};
use gatehouse_controller::kube::KubeControlPlane;
use gatehouse_controller::kube::gateway_certs::GatewayCertificates;
use gatehouse_controller::kube::lease::{LeaderElector, LeaseConfig};
use gatehouse_controller::translate::TranslateOptions;
use gatehouse_controller::xds::{ProxyRegistry, XdsServer, XdsServerConfig};
use gatehouse_controller::{ResourceType, SnapshotCache};
use gatehouse_deploy::kubernetes::{self, HardenedParams, hardened_objects};
use serde_json::{Value, json};
use support::kube_api::{FakeApi, Request};
use tokio::sync::watch;

const GW_API: &str = "gateway.networking.k8s.io";
const CP_NS: &str = "gatehouse-system";
const GW_NS: &str = "gatehouse-gateways";
const DAY: Duration = Duration::from_secs(86_400);

/// Polls until `ok` holds (at most 20 s: a bound, not a timing assertion).
async fn until<T>(what: &str, mut ok: impl FnMut() -> Option<T>) -> T {
    for _ in 0..2000 {
        if let Some(v) = ok() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The default profile's gateway (`gatehouse-gateways/edge`) with one of everything.
fn cluster() -> FakeApi {
    let api = FakeApi::default();
    for ns in [CP_NS, GW_NS, "apps"] {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}));
    }
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "gatehouse"},
        "spec": {"controllerName": "gatehouse.dev/gateway-controller"}}),
    );
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": GW_NS},
        "spec": {"gatewayClassName": "gatehouse",
                 "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP",
                                "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
    );
    api.apply(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "echo", "namespace": "apps"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
    api.apply(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-1", "namespace": "apps",
                     "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["10.0.0.1"]}]}),
    );
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "edge", "namespace": GW_NS}],
                 "rules": [{"backendRefs": [{"name": "echo", "port": 80}]},
                           {"matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                            "backendRefs": [{"group": "gatehouse.dev", "kind": "Backend", "name": "cdn", "port": 9000}]}]}}));
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "rpc", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "edge", "namespace": GW_NS}],
                 "hostnames": ["grpc.example.com"],
                 "rules": [{"backendRefs": [{"name": "echo", "namespace": "apps", "port": 80}]}]}}),
    );
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": "routes", "namespace": "apps"},
        "spec": {"from": [{"group": GW_API, "kind": "HTTPRoute", "namespace": "apps"}],
                 "to": [{"group": "", "kind": "Service"}]}}),
    );
    api.apply(
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "Backend",
        "metadata": {"name": "cdn", "namespace": "apps"},
        "spec": {"endpoints": [{"address": "10.2.0.1", "port": 9000}]}}),
    );
    api.apply(
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "SecurityPolicy",
        "metadata": {"name": "office", "namespace": "apps"},
        "spec": {"targetRefs": [{"group": GW_API, "kind": "HTTPRoute", "name": "web"}],
                 "ipAllow": ["192.0.2.0/24"]}}),
    );
    api.apply(json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "GatewayPolicy",
        "metadata": {"name": "platform"},
        "spec": {"enforcement": "deny", "policies": "@id(\"no-admin\")\nforbid (principal, action == Gatehouse::Action::\"exposePath\", resource)\nwhen { context.path.lower like \"*/admin*\" };\n"}}));
    api.apply(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "unrelated", "namespace": GW_NS}, "data": {"a": "Yg=="}}),
    );
    api
}

/// A rule of a Role or ClusterRole bound to the controller's account, with where it applies.
#[derive(Debug)]
struct Grant {
    role: String,
    /// `None`: every namespace (a ClusterRole through a ClusterRoleBinding).
    namespace: Option<String>,
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    names: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The controller's rules as the hardened profile renders them for this cluster.
fn rendered_grants() -> Vec<Grant> {
    let params = HardenedParams::default();
    let objects = hardened_objects(&params, &[]).unwrap();
    let is_controller = |b: &Value| {
        b["subjects"].as_array().is_some_and(|s| {
            s.iter().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == kubernetes::CONTROLLER
                    && s["namespace"] == CP_NS
            })
        })
    };
    let role = |kind: &str, ns: Option<&str>, name: &str| -> Value {
        objects
            .iter()
            .find(|o| {
                o.kind == kind
                    && o.namespace.as_deref() == ns
                    && o.value["metadata"]["name"] == name
            })
            .unwrap_or_else(|| panic!("{kind} {name} not rendered"))
            .value
            .clone()
    };
    let mut grants = Vec::new();
    for b in &objects {
        let (role_value, namespace) = match b.kind.as_str() {
            "ClusterRoleBinding" if is_controller(&b.value) => (
                role(
                    "ClusterRole",
                    None,
                    b.value["roleRef"]["name"].as_str().unwrap(),
                ),
                None,
            ),
            "RoleBinding" if is_controller(&b.value) => {
                let ns = b.namespace.clone().unwrap();
                assert_eq!(b.value["roleRef"]["kind"], "Role", "{}", b.id());
                (
                    role(
                        "Role",
                        Some(&ns),
                        b.value["roleRef"]["name"].as_str().unwrap(),
                    ),
                    Some(ns),
                )
            }
            _ => continue,
        };
        for r in role_value["rules"].as_array().unwrap() {
            grants.push(Grant {
                role: format!(
                    "{}/{}",
                    namespace.as_deref().unwrap_or("*"),
                    role_value["metadata"]["name"].as_str().unwrap()
                ),
                namespace: namespace.clone(),
                groups: strings(&r["apiGroups"]),
                resources: strings(&r["resources"]),
                verbs: strings(&r["verbs"]),
                names: strings(&r["resourceNames"]),
            });
        }
    }
    assert!(!grants.is_empty());
    grants
}

fn resource_of(r: &Request) -> String {
    match &r.subresource {
        Some(s) => format!("{}/{s}", r.resource),
        None => r.resource.clone(),
    }
}

/// Whether `g` allows `r` (Kubernetes RBAC semantics: a rule with resourceNames allows only
/// requests naming one of them; a create or a list carries no name).
fn allows(g: &Grant, r: &Request) -> bool {
    g.namespace
        .as_ref()
        .is_none_or(|ns| r.namespace.as_ref() == Some(ns))
        && g.groups.contains(&r.group)
        && g.resources.contains(&resource_of(r))
        && g.verbs.contains(&r.verb)
        && (g.names.is_empty() || r.name.as_ref().is_some_and(|n| g.names.contains(n)))
}

fn secret_serial(api: &FakeApi) -> Option<(String, String, String)> {
    let s = api.get("Secret", "", GW_NS, "gatehouse-xds-edge")?;
    let decode = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(s["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    Some((decode("chain.pem"), decode("key.pem"), decode("ca.pem")))
}

/// A delta ADS request for clusters with the Secret's certificate: the real xDS server must
/// accept it and answer with the gateway's clusters.
async fn xds_with(addr: std::net::SocketAddr, chain: &str, key: &str, ca: &str) -> Vec<String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity as TlsIdentity};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(TlsIdentity::from_pem(chain, key))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("the xDS server refused the Secret's certificate");
    let mut client = AggregatedDiscoveryServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(DeltaDiscoveryRequest {
        node: Some(Node {
            id: format!("spiffe://gatehouse.local/gateway/{GW_NS}/edge"),
            ..Node::default()
        }),
        type_url: ResourceType::Cluster.type_url().into(),
        ..DeltaDiscoveryRequest::default()
    })
    .await
    .unwrap();
    let mut stream = client
        .delta_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("no xDS response")
        .unwrap()
        .unwrap();
    let mut names: Vec<String> = resp.resources.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_granted_and_every_grant_is_used() {
    let api = cluster();
    // The CA the operator provides; the certificate clock starts 13 h back so that, moved
    // forward past half-life, it reads about now (the xDS server verifies with the real clock).
    let real_now = SystemTime::now();
    let ca = Arc::new(
        CertificateAuthority::generate(TrustDomain::default(), 365 * DAY, real_now - 3 * DAY)
            .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(real_now - Duration::from_secs(13 * 3600)));

    // The real xDS server, serving the snapshots Kubernetes mode publishes.
    let mut req = LeafRequest::new(Identity::Controller);
    req.dns_names = vec!["localhost".into()];
    let serving = ReloadableCert::new(&ca.issue(&req, real_now).unwrap()).unwrap();
    let tls = gatehouse_certs::server_config(
        &ca.trust_anchors(),
        Arc::new(serving),
        Arc::new(SystemClock),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cache = Arc::new(SnapshotCache::new());
    let registry = Arc::new(ProxyRegistry::new());
    let (stop, stop_rx) = watch::channel(false);
    let mut server_stop = stop_rx.clone();
    tokio::spawn(
        XdsServer::new(cache.clone(), registry.clone(), XdsServerConfig::default()).serve(
            listener,
            Arc::new(tls),
            async move {
                let _ = server_stop.wait_for(|s| *s).await;
            },
        ),
    );

    // Leader election with short timings, and the control plane.
    let mut lease = LeaseConfig::new(CP_NS, kubernetes::LEASE, "controller-0");
    lease.lease_duration = Duration::from_secs(2);
    lease.renew_deadline = Duration::from_millis(1500);
    lease.retry_period = Duration::from_millis(100);
    let elector = LeaderElector::new(api.client(), lease).unwrap();
    let (leader_tx, leader_rx) = watch::channel(false);
    let elector_task = tokio::spawn(elector.run(stop_rx.clone(), leader_tx));
    let cp = KubeControlPlane {
        client: api.client(),
        options: TranslateOptions::default(),
        cache: cache.clone(),
        registry,
        secret_namespaces: vec![GW_NS.into()],
        quiet: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        status_file: None,
        certificates: Some(GatewayCertificates::new(
            api.client(),
            ca.clone(),
            clock.clone(),
        )),
        certificate_check: Duration::from_millis(200),
    };
    let (gw_tx, _gw_rx) = watch::channel(BTreeSet::new());
    let cp_task = tokio::spawn(cp.run(stop_rx, leader_rx, gw_tx));

    // Leader: the Lease is ours and renewed.
    let lease_obj = until("the Lease", || {
        api.get("Lease", "coordination.k8s.io", CP_NS, kubernetes::LEASE)
            .filter(|l| l["spec"]["holderIdentity"] == "controller-0")
    })
    .await;
    until("a renewal", || {
        api.get("Lease", "coordination.k8s.io", CP_NS, kubernetes::LEASE)
            .filter(|l| l["spec"]["renewTime"] != lease_obj["spec"]["renewTime"])
    })
    .await;

    // Status on every kind that has one.
    for (kind, group, ns, name) in [
        ("GatewayClass", GW_API, "", "gatehouse"),
        ("Gateway", GW_API, GW_NS, "edge"),
        ("HTTPRoute", GW_API, "apps", "web"),
        ("GRPCRoute", GW_API, "apps", "rpc"),
        ("Backend", "gatehouse.dev", "apps", "cdn"),
        ("SecurityPolicy", "gatehouse.dev", "apps", "office"),
        ("GatewayPolicy", "gatehouse.dev", "", "platform"),
    ] {
        until(&format!("the status of {kind} {name}"), || {
            api.get(kind, group, ns, name)
                .filter(|o| !o["status"].is_null())
        })
        .await;
    }

    // The gateway's certificate Secret, accepted by the xDS server.
    let (chain, key, ca_pem) =
        until("the gateway's certificate Secret", || secret_serial(&api)).await;
    let first = api.get("Secret", "", GW_NS, "gatehouse-xds-edge").unwrap();
    assert_eq!(first["type"], "Opaque");
    let clusters = until("the gateway's snapshot", || {
        let s = cache.get(&format!("{GW_NS}/edge").parse().unwrap());
        (!s.resources(ResourceType::Cluster).is_empty()).then_some(())
    });
    clusters.await;
    let served = xds_with(addr, &chain, &key, &ca_pem).await;
    assert!(
        served.contains(&"service/apps/echo/80".to_owned()),
        "{served:?}"
    );

    // Past half-life: renewed in place, and the new certificate is accepted too.
    clock.advance(Duration::from_secs(13 * 3600));
    api.apply(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-1", "namespace": "apps",
                     "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}),
    );
    let (chain2, key2, ca2) = until("the rotated Secret", || {
        secret_serial(&api).filter(|(c, _, _)| *c != chain)
    })
    .await;
    assert_ne!(key2, key);
    let served = xds_with(addr, &chain2, &key2, &ca2).await;
    assert!(
        served.contains(&"backend/apps/cdn".to_owned()),
        "{served:?}"
    );

    // Shutdown releases the Lease.
    stop.send(true).unwrap();
    elector_task.await.unwrap();
    cp_task.await.unwrap();
    let released = api
        .get("Lease", "coordination.k8s.io", CP_NS, kubernetes::LEASE)
        .unwrap();
    assert_eq!(
        released["spec"]["holderIdentity"].as_str().unwrap_or(""),
        ""
    );

    // Every request was granted by the rendered roles...
    let requests = api.requests();
    let grants = rendered_grants();
    let denied: Vec<String> = requests
        .iter()
        .filter(|r| !grants.iter().any(|g| allows(g, r)))
        .map(|r| format!("{} {} {}", r.verb, r.method, r.uri))
        .collect();
    assert!(
        denied.is_empty(),
        "requests the hardened profile does not grant:\n{}",
        denied.join("\n")
    );
    // ... no Secret was read outside the gateway namespaces, nor cluster-wide ...
    assert!(
        requests
            .iter()
            .filter(|r| r.resource == "secrets")
            .all(|r| r.namespace.as_deref() == Some(GW_NS))
    );
    // ... and every grant was needed: each (group, resource, verb[, name]) of each rule.
    let mut unused = Vec::new();
    for g in &grants {
        for group in &g.groups {
            for res in &g.resources {
                for verb in &g.verbs {
                    let names: Vec<Option<&String>> = if g.names.is_empty() {
                        vec![None]
                    } else {
                        g.names.iter().map(Some).collect()
                    };
                    for name in names {
                        let used = requests.iter().any(|r| {
                            r.group == *group
                                && resource_of(r) == *res
                                && r.verb == *verb
                                && g.namespace
                                    .as_ref()
                                    .is_none_or(|ns| r.namespace.as_ref() == Some(ns))
                                && name.is_none_or(|n| r.name.as_ref() == Some(n))
                        });
                        if !used {
                            unused.push(format!(
                                "{}: {verb} {group}/{res} {}",
                                g.role,
                                name.map(String::as_str).unwrap_or("")
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "granted but never needed:\n{}",
        unused.join("\n")
    );
}

/// The Secret name the controller writes is the one the profile mounts and names in its Role.
#[test]
fn the_certificate_secret_name_is_the_profiles() {
    let gw: gatehouse_certs::GatewayName = "gatehouse-gateways/edge".parse().unwrap();
    assert_eq!(
        gatehouse_controller::kube::gateway_certs::secret_name(&gw),
        kubernetes::xds_secret_name(&gw)
    );
}

struct Replica {
    cache: Arc<SnapshotCache>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn replica(api: &FakeApi, name: &str, ca: &Arc<CertificateAuthority>) -> Replica {
    let mut lease = LeaseConfig::new(CP_NS, kubernetes::LEASE, name);
    lease.lease_duration = Duration::from_secs(2);
    lease.renew_deadline = Duration::from_millis(1500);
    lease.retry_period = Duration::from_millis(100);
    let elector = LeaderElector::new(api.client_tagged(name), lease).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let (leader_tx, leader_rx) = watch::channel(false);
    let cache = Arc::new(SnapshotCache::new());
    let cp = KubeControlPlane {
        client: api.client_tagged(name),
        options: TranslateOptions::default(),
        cache: cache.clone(),
        registry: Arc::new(ProxyRegistry::new()),
        secret_namespaces: vec![GW_NS.into()],
        quiet: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        status_file: None,
        certificates: Some(GatewayCertificates::new(
            api.client_tagged(name),
            ca.clone(),
            Arc::new(SystemClock),
        )),
        certificate_check: Duration::from_secs(60),
    };
    let (gw_tx, _gw_rx) = watch::channel(BTreeSet::new());
    let tasks = vec![
        tokio::spawn(elector.run(stop_rx.clone(), leader_tx)),
        tokio::spawn(cp.run(stop_rx, leader_rx, gw_tx)),
    ];
    Replica { cache, stop, tasks }
}

fn holder(api: &FakeApi) -> Option<String> {
    api.get("Lease", "coordination.k8s.io", CP_NS, kubernetes::LEASE)
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
        .filter(|h| !h.is_empty())
}

/// Writes other than the Lease's: status and certificate Secrets, by replica.
fn writers(api: &FakeApi) -> BTreeSet<String> {
    api.requests()
        .iter()
        .filter(|r| matches!(r.verb.as_str(), "create" | "update" | "patch"))
        .filter(|r| r.resource != "leases")
        .map(|r| r.client.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_xds_and_only_the_leader_writes() {
    let api = cluster();
    let ca = Arc::new(
        CertificateAuthority::generate(TrustDomain::default(), 365 * DAY, SystemTime::now())
            .unwrap(),
    );
    let a = replica(&api, "replica-a", &ca);
    let b = replica(&api, "replica-b", &ca);
    let edge: gatehouse_certs::GatewayName = format!("{GW_NS}/edge").parse().unwrap();
    // Both serve the configuration.
    for r in [&a, &b] {
        until("each replica's snapshot", || {
            r.cache
                .get(&edge)
                .get(ResourceType::Cluster, "service/apps/echo/80")
                .map(|_| ())
        })
        .await;
    }
    // One leads, and only it writes status and the certificate Secret.
    let first = until("a leader", || holder(&api)).await;
    until("the route's status", || {
        api.get("HTTPRoute", GW_API, "apps", "web")
            .filter(|r| !r["status"].is_null())
    })
    .await;
    until("the certificate Secret", || secret_serial(&api)).await;
    assert_eq!(writers(&api), BTreeSet::from([first.clone()]));

    // The leader stops: it releases the Lease, the other takes over and writes from then on.
    let (leaving, staying) = if first == "replica-a" { (a, b) } else { (b, a) };
    leaving.stop.send(true).unwrap();
    for t in leaving.tasks {
        t.await.unwrap();
    }
    let second = until("the other replica leading", || {
        holder(&api).filter(|h| *h != first)
    })
    .await;
    api.clear_requests();
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "later", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "edge", "namespace": GW_NS}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/later"}}],
                            "backendRefs": [{"name": "echo", "port": 80}]}]}}),
    );
    until("the new route's status from the new leader", || {
        api.get("HTTPRoute", GW_API, "apps", "later")
            .filter(|r| !r["status"].is_null())
    })
    .await;
    assert_eq!(writers(&api), BTreeSet::from([second]));
    staying.stop.send(true).unwrap();
    for t in staying.tasks {
        t.await.unwrap();
    }
}
