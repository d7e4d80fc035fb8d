//! Gateway API semantics checked with real requests through a real Envoy: match precedence,
//! hostnames, weighted splits, and a listener that requires client certificates.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_certs::{CertificateAuthority, GatewayName, Identity, LeafRequest};
use gatehouse_controller::SnapshotCache;
use gatehouse_controller::model::{Config, load_text};
use gatehouse_controller::translate::{TranslateOptions, Translator};
use gatehouse_controller::xds::{ProxyRegistry, XdsServer, XdsServerConfig};
use support::*;

const DAY: Duration = Duration::from_secs(86_400);

/// A control plane serving `yaml` (translated) to one Envoy for gateway `apps/edge`.
struct Rig {
    _tmp: tempfile::TempDir,
    _envoy: Envoy,
    _stop: tokio::sync::oneshot::Sender<()>,
    ca: CertificateAuthority,
}

async fn rig(yaml: &str) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let gw: GatewayName = "apps/edge".parse().unwrap();
    let TestPki { store, ca, tls } = test_pki(tmp.path(), &gw);

    let mut config = Config::default();
    let mut diags = Vec::new();
    load_text(&mut config, &mut diags, Path::new("test.yaml"), yaml);
    assert!(diags.is_empty(), "{diags:?}");
    let t = Translator::new(TranslateOptions {
        bind_address: "127.0.0.1".into(),
        min_port: 1024,
    })
    .translate(&config);
    let problems: Vec<String> = t.status.iter().flat_map(|s| s.problems()).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    // What the translator produced is also a valid static Envoy configuration.
    let static_pb = tmp.path().join("static.pb");
    std::fs::write(
        &static_pb,
        prost::Message::encode_to_vec(
            &gatehouse_controller::translate::static_bootstrap(&t.snapshots[&gw]).unwrap(),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(envoy_bin())
        .args([
            "--mode",
            "validate",
            "-c",
            static_pb.to_str().unwrap(),
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
        out.status.success() && !text.contains("[warning]") && !text.contains("[error]"),
        "{text}"
    );
    let cache = Arc::new(SnapshotCache::new());
    cache.set(&gw, t.snapshots[&gw].clone());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let xds: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = XdsServer::new(
        cache,
        Arc::new(ProxyRegistry::new()),
        XdsServerConfig::default(),
    );
    tokio::spawn(server.serve(listener, tls, async {
        let _ = stopped.await;
    }));
    let work = tmp.path().join("envoy");
    let bootstrap = write_bootstrap(&store, &gw, xds, &work, gatehouse_deploy::AdsMode::Delta);
    let envoy = Envoy::start(&bootstrap, &work);
    Rig {
        _tmp: tmp,
        _envoy: envoy,
        _stop: stop,
        ca,
    }
}

fn backend(name: &str, addr: SocketAddr) -> String {
    format!(
        "---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: {name}, namespace: apps}}
spec: {{endpoints: [{{address: 127.0.0.1, port: {}}}]}}
",
        addr.port()
    )
}

const HEAD: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: gatehouse.dev/gateway-controller}
";

fn route(name: &str, hostnames: &str, rules: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: {hostnames}
  rules:
{rules}"
    )
}

fn to(b: &str) -> String {
    format!("    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: {b}}}]\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_precedence_hostnames_and_weights_with_real_requests() {
    let (u1, u2, u3, u4) = (
        upstream("u1").await,
        upstream("u2").await,
        upstream("u3").await,
        upstream("u4").await,
    );
    let port = free_port();
    let mut yaml = format!(
        "{HEAD}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: apps}}
spec:
  gatewayClassName: gatehouse
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
{}{}{}{}",
        backend("u1", u1),
        backend("u2", u2),
        backend("u3", u3),
        backend("u4", u4)
    );
    yaml += &route(
        "exact-host",
        "[api.example.com]",
        &format!("  - matches: [{{path: {{value: /host}}}}]\n{}", to("u1")),
    );
    yaml += &route(
        "wildcard-host",
        "['*.example.com']",
        &format!("  - matches: [{{path: {{value: /host}}}}]\n{}", to("u2")),
    );
    yaml += &route(
        "paths",
        "[]",
        &[
            format!("  - matches: [{{path: {{type: PathPrefix, value: /exact}}}}]\n{}", to("u4")),
            format!("  - matches: [{{path: {{type: Exact, value: /exact}}}}]\n{}", to("u3")),
            format!("  - matches: [{{path: {{value: /p}}}}]\n{}", to("u2")),
            format!("  - matches: [{{path: {{value: /p/longer}}}}]\n{}", to("u1")),
            format!("  - matches: [{{path: {{value: /h}}}}]\n{}", to("u4")),
            format!("  - matches: [{{path: {{value: /h}}, headers: [{{name: x-t, value: '1'}}]}}]\n{}", to("u3")),
            format!("  - matches: [{{path: {{value: /m}}}}]\n{}", to("u2")),
            format!("  - matches: [{{path: {{value: /m}}, method: POST}}]\n{}", to("u1")),
            format!("  - matches: [{{path: {{value: /q}}}}]\n{}", to("u4")),
            format!("  - matches: [{{path: {{value: /q}}, queryParams: [{{name: v, value: '1'}}]}}]\n{}", to("u3")),
            "  - matches: [{path: {value: /w}}]\n    backendRefs:\n    - {group: gatehouse.dev, kind: Backend, name: u1, weight: 80}\n    - {group: gatehouse.dev, kind: Backend, name: u2, weight: 20}\n".to_owned(),
        ]
        .concat(),
    );
    let _rig = rig(&yaml).await;
    let http = client();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    assert!(
        wait_for_status(&http, &url("/exact"), 200, Duration::from_secs(30))
            .await
            .is_some(),
        "Envoy did not come up"
    );

    let body = |r: Option<(u16, String)>| r.map(|(s, b)| format!("{s} {b}"));
    // Exact beats prefix, the longest prefix wins, prefixes match whole path elements.
    assert_eq!(body(get(&http, &url("/exact")).await).unwrap(), "200 u3");
    assert_eq!(
        body(get(&http, &url("/exact/more")).await).unwrap(),
        "200 u4"
    );
    assert_eq!(
        body(get(&http, &url("/p/longer/x")).await).unwrap(),
        "200 u1"
    );
    assert_eq!(body(get(&http, &url("/p/other")).await).unwrap(), "200 u2");
    assert_eq!(get(&http, &url("/pother")).await.unwrap().0, 404);
    // A header match beats the same path without one; so do a method and a query match.
    assert_eq!(
        body(get_with(&http, &url("/h"), &[("x-t", "1")]).await).unwrap(),
        "200 u3"
    );
    assert_eq!(body(get(&http, &url("/h")).await).unwrap(), "200 u4");
    assert_eq!(body(get(&http, &url("/q?v=1")).await).unwrap(), "200 u3");
    assert_eq!(body(get(&http, &url("/q?v=2")).await).unwrap(), "200 u4");
    let post = hyper::Request::post(url("/m"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = http.request(post).await.unwrap();
    assert_eq!(
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes(),
        "u1"
    );
    assert_eq!(body(get(&http, &url("/m")).await).unwrap(), "200 u2");
    // An exact hostname beats a wildcard; a host matching neither is not routed.
    assert_eq!(
        body(get_with(&http, &url("/host"), &[("host", "api.example.com")]).await).unwrap(),
        "200 u1"
    );
    assert_eq!(
        body(get_with(&http, &url("/host"), &[("host", "www.example.com")]).await).unwrap(),
        "200 u2"
    );
    assert_eq!(
        get_with(&http, &url("/host"), &[("host", "example.org")])
            .await
            .unwrap()
            .0,
        404
    );
    // An 80/20 split.
    let mut u1_hits = 0;
    for _ in 0..300 {
        if get(&http, &url("/w")).await.unwrap().1 == "u1" {
            u1_hits += 1;
        }
    }
    println!("weighted 80/20 split: {u1_hits}/300 to the 80 side");
    assert!((210..=270).contains(&u1_hits), "{u1_hits}/300");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_listener_refuses_clients_without_one() {
    use base64::Engine as _;
    let u1 = upstream("u1").await;
    let port = free_port();
    let qs = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let listener_cert = std::fs::read_to_string(qs.join("05-listener-certificate.yaml"))
        .unwrap()
        .replace("namespace: quickstart", "namespace: apps");
    // A CA for clients, and a client certificate from it.
    let client_ca = CertificateAuthority::generate(
        "clients.example".parse().unwrap(),
        365 * DAY,
        SystemTime::now(),
    )
    .unwrap();
    let client = client_ca
        .issue(
            &LeafRequest::new(Identity::Gateway("partners/acme".parse().unwrap())),
            SystemTime::now(),
        )
        .unwrap();
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(client_ca.chain_pem());
    let mut yaml = format!(
        "{HEAD}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: apps}}
spec:
  gatewayClassName: gatehouse
  listeners:
  - {{name: https, port: {port}, protocol: HTTPS, hostname: secure.localhost, tls: {{certificateRefs: [{{name: secure-localhost}}]}}}}
---
{listener_cert}---
apiVersion: v1
kind: Secret
metadata: {{name: partner-ca, namespace: apps}}
data: {{ca.crt: {ca_b64}}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: SecurityPolicy
metadata: {{name: partners-only, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: edge}}]
  clientCertificate: {{caCertificateRefs: [{{name: partner-ca}}]}}
{}",
        backend("u1", u1)
    );
    yaml += &route("r", "[]", &format!("  - {}", to("u1").trim_start()));
    let _rig = rig(&yaml).await;
    let ca = std::fs::read(qs.join("quickstart-ca.crt")).unwrap();
    let creds = || Some((client.chain(), client.key().to_rustls()));
    let mut ok = None;
    for _ in 0..150 {
        if let Ok(r) = https_get(port, "secure.localhost", "/", &ca, creds()).await {
            ok = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ok,
        Some((200, "u1".to_owned())),
        "a client with a certificate from the partner CA gets through"
    );
    let without = https_get(port, "secure.localhost", "/", &ca, None).await;
    assert!(
        without.is_err(),
        "no client certificate must be refused: {without:?}"
    );
    // A certificate from another CA is refused too.
    let stranger = _rig
        .ca
        .issue(
            &LeafRequest::new(Identity::Gateway("x/y".parse().unwrap())),
            SystemTime::now(),
        )
        .unwrap();
    let r = https_get(
        port,
        "secure.localhost",
        "/",
        &ca,
        Some((stranger.chain(), stranger.key().to_rustls())),
    )
    .await;
    assert!(r.is_err(), "{r:?}");
}
