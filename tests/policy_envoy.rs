//! Cedar admission end to end: the file control plane (configuration and `*.cedar` policies in
//! one directory) serving a real Envoy. A route that violates a `deny` guardrail is not served
//! while the others are; switching the policy to `warn` serves it and reports it; an invalid
//! policy edit is refused whole and the last valid set stays in force; back to `deny`, the
//! route is withdrawn again.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_certs::GatewayName;
use gatehouse_controller::SnapshotCache;
use gatehouse_controller::run::FileControlPlane;
use gatehouse_controller::translate::TranslateOptions;
use gatehouse_controller::xds::{ProxyRegistry, XdsServer, XdsServerConfig};
use support::*;

struct Rig {
    _envoy: Envoy,
    _stop: tokio::sync::watch::Sender<bool>,
    status: PathBuf,
}

/// The file control plane on `dir`, serving gateway `apps/edge` to a real Envoy.
async fn rig(tmp: &Path, dir: &Path) -> Rig {
    let gw: GatewayName = "apps/edge".parse().unwrap();
    let TestPki { store, tls, .. } = test_pki(tmp, &gw);

    let cache = Arc::new(SnapshotCache::new());
    let registry = Arc::new(ProxyRegistry::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (gateways, _) = tokio::sync::watch::channel(BTreeSet::new());
    let status = tmp.join("status.json");
    let cp = FileControlPlane {
        dir: dir.to_owned(),
        options: TranslateOptions {
            bind_address: "127.0.0.1".into(),
            min_port: 1024,
        },
        cache: cache.clone(),
        registry: registry.clone(),
        status_file: Some(status.clone()),
        quiet: Duration::from_millis(50),
        policy_verifier: None,
    };
    tokio::spawn(cp.run(stopped.clone(), gateways));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let xds: SocketAddr = listener.local_addr().unwrap();
    let mut stop_xds = stopped.clone();
    tokio::spawn(
        XdsServer::new(cache, registry, XdsServerConfig::default()).serve(
            listener,
            tls,
            async move {
                let _ = stop_xds.wait_for(|s| *s).await;
            },
        ),
    );
    let work = tmp.join("envoy");
    let bootstrap = write_bootstrap(&store, &gw, xds, &work, gatehouse_deploy::AdsMode::Delta);
    Rig {
        _envoy: Envoy::start(&bootstrap, &work),
        _stop: stop,
        status,
    }
}

/// The conditions of `kind/ns/name` in the status file, as `type=status reason: message`.
fn conditions(status: &Path, object: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(status) else {
        return vec![];
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return vec![];
    };
    let mut out = Vec::new();
    for o in v["objects"].as_array().into_iter().flatten() {
        let key = &o["object"];
        let name = format!(
            "{}/{}/{}",
            key["kind"].as_str().unwrap_or_default(),
            key["namespace"].as_str().unwrap_or_default(),
            key["name"].as_str().unwrap_or_default()
        );
        if name != object {
            continue;
        }
        for c in o["conditions"].as_array().into_iter().flatten() {
            out.push(format!(
                "{}={} {}: {}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

fn diagnostics(status: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(status).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["text"].as_str().map(str::to_owned))
        .collect()
}

async fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn config(port: u16, a: SocketAddr, b: SocketAddr) -> String {
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
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: shop, namespace: apps}}
spec: {{endpoints: [{{address: 127.0.0.1, port: {}}}]}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: ops, namespace: apps}}
spec: {{endpoints: [{{address: 127.0.0.1, port: {}}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /a}}}}]
    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: shop}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: console, namespace: apps}}
spec:
  parentRefs: [{{name: edge}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /admin}}}}]
    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: ops}}]
",
        a.port(),
        b.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_route_is_not_served_and_warn_serves_and_reports_it() {
    let (shop, ops) = (upstream("shop").await, upstream("ops").await);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    let port = free_port();
    std::fs::write(dir.join("gateway.yaml"), config(port, shop, ops)).unwrap();
    let library = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies/library/no-sensitive-paths-public.cedar");
    let deny = std::fs::read_to_string(&library).unwrap();
    let policy = dir.join("policies/no-sensitive-paths-public.cedar");
    std::fs::write(&policy, &deny).unwrap();
    let rig = rig(tmp.path(), &dir).await;
    let http = client();
    let base = format!("http://127.0.0.1:{port}");

    // The guardrail denies `/admin` on this public listener: `/a` is served, `/admin` is not.
    assert!(
        wait_for_status(&http, &format!("{base}/a"), 200, Duration::from_secs(30))
            .await
            .is_some(),
        "/a is not served; status: {:?}",
        std::fs::read_to_string(&rig.status).ok()
    );
    assert_eq!(get(&http, &format!("{base}/a")).await.unwrap().1, "shop");
    assert_eq!(get(&http, &format!("{base}/admin")).await.unwrap().0, 404);
    wait_until("the denial in the status", Duration::from_secs(5), || {
        !conditions(&rig.status, "HTTPRoute/apps/console").is_empty()
    })
    .await;
    let c = conditions(&rig.status, "HTTPRoute/apps/console").join("\n");
    assert!(c.contains("Accepted=False NotAllowedByPolicy"), "{c}");
    assert!(c.contains("no-sensitive-paths-public"), "{c}");
    assert!(
        c.contains("admin, debug and actuator paths may not be exposed"),
        "{c}"
    );
    assert!(
        c.contains("claim: exposePath `/admin` on listener apps/edge/http (public)"),
        "{c}"
    );
    assert!(
        conditions(&rig.status, "HTTPRoute/apps/web")
            .iter()
            .all(|c| !c.contains("NotAllowedByPolicy"))
    );

    // The same policy in `warn` mode: `/admin` is served, and reported.
    let warn = deny.replace("@message(", "@enforcement(\"warn\")\n@message(");
    assert_ne!(warn, deny);
    std::fs::write(&policy, &warn).unwrap();
    let took = wait_for_status(
        &http,
        &format!("{base}/admin"),
        200,
        Duration::from_secs(10),
    )
    .await;
    assert!(took.is_some(), "warn did not serve the route");
    assert_eq!(get(&http, &format!("{base}/admin")).await.unwrap().1, "ops");
    wait_until("the warning in the status", Duration::from_secs(5), || {
        conditions(&rig.status, "HTTPRoute/apps/console")
            .iter()
            .any(|c| c.starts_with("PolicyWarning=True WarnedByPolicy"))
    })
    .await;
    let c = conditions(&rig.status, "HTTPRoute/apps/console").join("\n");
    assert!(
        c.contains("no-sensitive-paths-public") && !c.contains("NotAllowedByPolicy"),
        "{c}"
    );

    // An invalid edit is refused whole: the `warn` set stays in force, and the status says
    // where the error is.
    std::fs::write(&policy, warn.replace("resource.public", "resource.publc")).unwrap();
    wait_until(
        "the refused policy set in the status",
        Duration::from_secs(5),
        || {
            diagnostics(&rig.status)
                .iter()
                .any(|d| d.contains("no-sensitive-paths-public.cedar:") && d.contains("publc"))
        },
    )
    .await;
    let d = diagnostics(&rig.status).join("\n");
    assert!(d.contains("the last valid set stays in force"), "{d}");
    assert_eq!(get(&http, &format!("{base}/admin")).await.unwrap().0, 200);
    assert_eq!(get(&http, &format!("{base}/a")).await.unwrap().0, 200);

    // Back to `deny`: everything is evaluated again and `/admin` is withdrawn.
    std::fs::write(&policy, &deny).unwrap();
    let took = wait_for_status(
        &http,
        &format!("{base}/admin"),
        404,
        Duration::from_secs(10),
    )
    .await;
    assert!(took.is_some(), "deny did not withdraw the route");
    assert_eq!(get(&http, &format!("{base}/a")).await.unwrap().0, 200);
}
