//! Kubernetes mode end to end: the real `gatehouse serve --source kubernetes` binary, through a
//! kubeconfig, against a fake API server on loopback (real-shaped API JSON; no API server can be
//! installed on these machines), and a real Envoy that authenticates with the certificate the
//! controller wrote into the gateway's Secret, serving real HTTP to loopback upstreams chosen by
//! a Service's EndpointSlice.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::kube_api::FakeApi;

const GW_API: &str = "gateway.networking.k8s.io";

fn slice(port: u16) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-1", "namespace": "apps",
                     "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]})
}

async fn until<T>(what: &str, secs: u64, mut ok: impl FnMut() -> Option<T>) -> T {
    for _ in 0..secs * 20 {
        if let Some(v) = ok() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_serves_a_service_from_kubernetes_mode_with_the_secrets_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let gw: gatehouse_certs::GatewayName = "gw/edge".parse().unwrap();
    let pki = support::test_pki(dir.path(), &gw);
    let first = support::upstream("from-endpoint-one").await;
    let second = support::upstream("from-endpoint-two").await;
    let listen_port = support::free_port();

    let api = FakeApi::default();
    for ns in ["gw", "apps", "gatehouse-system"] {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "gatehouse"},
        "spec": {"controllerName": "gatehouse.dev/gateway-controller"}}),
    );
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "gw"},
        "spec": {"gatewayClassName": "gatehouse",
                 "listeners": [{"name": "http", "port": listen_port, "protocol": "HTTP",
                                "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
    );
    api.apply(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "echo", "namespace": "apps"},
        "spec": {"ports": [{"name": "http", "port": 80}]}}));
    api.apply(slice(first.port()));
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "edge", "namespace": "gw"}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/echo"}}],
                            "backendRefs": [{"name": "echo", "port": 80}]}]}}),
    );
    let url = api.serve_http().await;
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    FakeApi::write_kubeconfig(&kubeconfig, &url);

    let xds_port = support::free_port();
    let log = dir.path().join("serve.log");
    let _serve = support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--source", "kubernetes", "--certs"])
            .arg(dir.path().join("pki"))
            .args([
                "--listen",
                &format!("127.0.0.1:{xds_port}"),
                "--bind-address",
                "127.0.0.1",
                "--secret-namespace",
                "gw",
                "--namespace",
                "gatehouse-system",
                "--identity",
                "e2e-0",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );

    // The leader writes the gateway's certificate Secret; Envoy mounts it (here: its files).
    let secret = until("the gateway's certificate Secret", 30, || {
        api.get("Secret", "", "gw", "gatehouse-xds-edge")
    })
    .await;
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    for key in ["chain.pem", "key.pem", "ca.pem"] {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret["data"][key].as_str().unwrap())
            .unwrap();
        std::fs::write(certs.join(key), bytes).unwrap();
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        certs.join("key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let _ = &pki;
    let envoy_dir = dir.path().join("envoy");
    std::fs::create_dir_all(&envoy_dir).unwrap();
    let mut params = gatehouse_deploy::BootstrapParams::new(
        gw.clone(),
        format!("127.0.0.1:{xds_port}")
            .parse::<gatehouse_deploy::XdsAddress>()
            .unwrap(),
        certs.clone(),
        envoy_dir.clone(),
    );
    params.admin = gatehouse_deploy::AdminEndpoint::Loopback {
        port: support::free_port(),
    };
    let rendered = gatehouse_deploy::render_bootstrap(&params).unwrap();
    let bootstrap = envoy_dir.join("envoy.yaml");
    std::fs::write(&bootstrap, &rendered.bootstrap).unwrap();
    for (name, content) in rendered.sds_files() {
        std::fs::write(envoy_dir.join(name), content).unwrap();
    }
    let envoy = support::Envoy::start(&bootstrap, &envoy_dir);

    let client = support::client();
    let target = format!("http://127.0.0.1:{listen_port}/echo");
    let served = support::wait_for_status(&client, &target, 200, Duration::from_secs(30)).await;
    assert!(
        served.is_some(),
        "Envoy never served the route.\nserve log:\n{}\nEnvoy log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        envoy.log_tail()
    );
    assert_eq!(
        support::get(&client, &target).await.unwrap().1,
        "from-endpoint-one"
    );

    // The Service's endpoints move: traffic follows through EDS, with no failed request.
    api.apply(slice(second.port()));
    let mut failures = 0;
    let mut moved = false;
    for _ in 0..300 {
        match support::get(&client, &target).await {
            Some((200, body)) if body == "from-endpoint-two" => {
                moved = true;
                break;
            }
            Some((200, _)) => {}
            _ => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(moved, "traffic did not move to the new endpoint");
    assert_eq!(failures, 0, "requests failed while the endpoints changed");

    // The route's status says so, written by the controller through the API.
    let route = api.get("HTTPRoute", GW_API, "apps", "web").unwrap();
    let parent = &route["status"]["parents"][0];
    assert_eq!(parent["controllerName"], "gatehouse.dev/gateway-controller");
    assert!(
        parent["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Accepted" && c["status"] == "True"),
        "{route}"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("-----BEGIN"), "the log holds PEM");
}
