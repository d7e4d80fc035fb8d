//! `verify --cluster` against kube's `tower-test` mock service: no Kubernetes API server can
//! run on the machines these tests run on, so `support/mock_api.rs` plays one, answering LIST
//! requests with real-shaped JSON (kind-less items, `resourceVersion`, `continue`).
//!
//! What is asserted: the hardened profile read from the "cluster" gives exactly the findings
//! `-f` gives on the same files, with `cluster:` locations; the known-bad fixtures give their
//! ids (and exit 1 in the JSON report); a 403 on one list is an error naming the missing
//! permission, never a partial report; `continue` tokens are followed (also when the server
//! caps pages below `limit`); `--namespace` limits the paths; Secrets are never asked for.

#[path = "support/mock_api.rs"]
mod mock_api;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gatehouse_hardening::verify::cluster::{self, ClusterError, KINDS, Scope, Snapshot};
use gatehouse_hardening::verify::{self, FailOn, Inputs, Options, Report, output};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use kube::client::Body;
use mock_api::MockApi;
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn profile() -> PathBuf {
    workspace().join("deploy/profiles/kubernetes-hardened")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verify")
        .join(name)
}

/// Plays the API server behind the tower-test handle until the client is dropped.
async fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    mut api: MockApi,
) -> MockApi {
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let _ = body.collect().await.unwrap();
        let (code, json) = api.answer(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or_default(),
        );
        send.send_response(
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&json).unwrap()))
                .unwrap(),
        );
    }
    api
}

/// Reads the mock cluster through a real `kube::Client`; returns the result and the mock.
async fn read(api: MockApi, scope: &Scope) -> (Result<Snapshot, ClusterError>, MockApi) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(serve(handle, api));
    let client = kube::Client::new(service, "default");
    let result = cluster::read(&client, "https://mock.invalid:6443", scope).await;
    drop(client);
    (result, server.await.unwrap())
}

fn evaluate(inputs: &Inputs) -> Report {
    verify::run(inputs, &Options::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn from_cluster(snapshot: Snapshot) -> Report {
    evaluate(&Inputs {
        cluster: Some(snapshot),
        ..Inputs::default()
    })
}

fn from_files(paths: &[PathBuf]) -> Report {
    evaluate(&Inputs {
        manifests: paths.to_vec(),
        ..Inputs::default()
    })
}

/// `(id, Kind/namespace/name, message)` of every finding, sorted.
fn findings(report: &Report) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.check.id.to_owned(), f.object.target(), f.message.clone()))
        .collect();
    out.sort();
    out
}

fn ids(report: &Report) -> BTreeSet<&'static str> {
    report.findings.iter().map(|f| f.check.id).collect()
}

/// Every request was a GET of a list, none of Secrets.
fn assert_read_only(api: &MockApi) {
    assert!(!api.seen.is_empty());
    for seen in &api.seen {
        assert_eq!(seen.method, "GET", "{seen:?}");
        assert!(!seen.path.contains("secrets"), "{seen:?}");
    }
}

#[tokio::test]
async fn the_hardened_profile_in_a_cluster_gives_the_same_findings_as_its_files() {
    let api = MockApi::from_yaml(&[&profile()]);
    let stored = api.objects.len();
    let (result, api) = read(api, &Scope::default()).await;
    let snapshot = result.unwrap_or_else(|e| panic!("{e}"));
    assert_read_only(&api);
    // One request per kind (every list fits a page of 500), at the documented paths.
    let paths: Vec<&str> = api.seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths.len(), KINDS.len(), "{paths:?}");
    for path in [
        "/api/v1/namespaces",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/apis/rbac.authorization.k8s.io/v1/roles",
        "/apis/rbac.authorization.k8s.io/v1/rolebindings",
        "/api/v1/serviceaccounts",
        "/api/v1/configmaps",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/daemonsets",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/replicasets",
        "/apis/batch/v1/jobs",
        "/apis/batch/v1/cronjobs",
        "/api/v1/pods",
    ] {
        assert!(paths.contains(&path), "{path} not requested: {paths:?}");
    }
    assert!(
        api.seen
            .iter()
            .all(|s| s.query.get("limit").map(String::as_str) == Some("500"))
    );
    // Every object of a listed kind came back, with the kind the list item lacked.
    let listed: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
    let expected = api
        .objects
        .iter()
        .filter(|o| listed.contains(&o["kind"].as_str().unwrap()))
        .count();
    assert!(
        expected >= 17 && expected < stored,
        "{expected} of {stored}"
    );
    assert_eq!(snapshot.objects.len(), expected);
    assert!(snapshot.objects.iter().all(|o| o["kind"].is_string()
        && o["apiVersion"].is_string()
        && o["metadata"]["resourceVersion"].is_string()));
    assert_eq!(
        snapshot.counts.iter().find(|(k, _)| *k == "NetworkPolicy"),
        Some(&("NetworkPolicy", 4))
    );

    let live = from_cluster(snapshot);
    let files = from_files(&[profile()]);
    assert_eq!(live.exit_code(FailOn::Error), 0, "{:#?}", findings(&live));
    assert_eq!(findings(&live), findings(&files));
    assert_eq!(
        ids(&live),
        BTreeSet::from(["RBAC-027", "RBAC-028", "POD-022"])
    );
    for f in &live.findings {
        let location = f.location.as_ref().unwrap();
        assert_eq!(location.file, format!("cluster:{}", f.object.target()));
        assert_eq!(location.line, None);
    }
    assert_eq!(live.evaluated, files.evaluated);
    // The Envoy bootstrap inside the ConfigMap was read from the cluster too.
    assert!(
        live.inputs
            .iter()
            .any(|i| i.starts_with("cluster:ConfigMap/gatehouse-gateways/")
                && i.contains("Envoy bootstrap")),
        "{:?}",
        live.inputs
    );
    assert!(
        live.inputs[0].starts_with("cluster https://mock.invalid:6443/")
            || live.inputs[0].starts_with("cluster https://mock.invalid:6443:"),
        "{:?}",
        live.inputs
    );
}

/// The bad fixtures, plus what a real cluster holds next to them: the ReplicaSet and the
/// pods of the Envoy Deployment (owned by it, so not reported twice).
fn bad_cluster() -> MockApi {
    let mut api = MockApi::from_yaml(&[
        &fixture("gateway-colocated-with-control-plane.yaml"),
        &fixture("envoy-root-with-token.yaml"),
    ]);
    let deployment = api
        .of_kind("Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "edge-envoy")
        .unwrap()
        .clone();
    let owner = |kind: &str, name: &str| {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": name,
                "uid": "00000000-0000-4000-8000-000000000001",
                "controller": true, "blockOwnerDeletion": true}])
    };
    api.add(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "edge-envoy-5d4f8b9c7", "namespace": "edge-system",
                     "labels": deployment["spec"]["template"]["metadata"]["labels"],
                     "ownerReferences": owner("Deployment", "edge-envoy")},
        "spec": {"replicas": 2, "selector": deployment["spec"]["selector"],
                 "template": deployment["spec"]["template"]},
    }));
    for suffix in ["x7k2p", "q9m4d"] {
        api.add(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": format!("edge-envoy-5d4f8b9c7-{suffix}"), "namespace": "edge-system",
                         "labels": deployment["spec"]["template"]["metadata"]["labels"],
                         "ownerReferences": owner("ReplicaSet", "edge-envoy-5d4f8b9c7")},
            "spec": deployment["spec"]["template"]["spec"],
            "status": {"phase": "Running"},
        }));
    }
    api
}

#[tokio::test]
async fn a_known_bad_cluster_gives_the_expected_ids_and_fails_in_json() {
    let (result, api) = read(bad_cluster(), &Scope::default()).await;
    let snapshot = result.unwrap_or_else(|e| panic!("{e}"));
    assert_read_only(&api);
    assert_eq!(snapshot.owned, 3, "the ReplicaSet and its two pods");
    let live = from_cluster(snapshot);
    let found = ids(&live);
    for id in [
        "RBAC-001",
        "RBAC-003",
        "POD-028",
        "RBAC-026",
        "POD-015",
        "POD-016",
        "POD-023",
        "ENVOY-008",
    ] {
        assert!(found.contains(id), "{id} missing: {:#?}", findings(&live));
    }
    assert_eq!(live.exit_code(FailOn::Error), 1);
    // The same ids as the files give: the cluster adds nothing and loses nothing.
    let files = from_files(&[
        fixture("gateway-colocated-with-control-plane.yaml"),
        fixture("envoy-root-with-token.yaml"),
    ]);
    assert_eq!(found, ids(&files));
    // The owned ReplicaSet and pods were not reported on their own.
    assert!(
        live.findings
            .iter()
            .all(|f| f.object.kind != "ReplicaSet" && !f.object.name.starts_with("edge-envoy-")),
        "{:#?}",
        findings(&live)
    );

    let render = output::RenderOptions {
        fail_on: FailOn::Error,
        color: false,
        tool_version: "test".to_owned(),
        cwd: None,
    };
    let json: Value =
        serde_json::from_str(&output::render(&live, output::Format::Json, &render)).unwrap();
    assert_eq!(json["exitCode"], 1);
    assert_eq!(json["status"], "failed");
    assert!(
        json["inputs"][0]
            .as_str()
            .unwrap()
            .starts_with("cluster https://mock.invalid:6443")
    );
    let secrets_read = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "RBAC-003")
        .unwrap();
    assert_eq!(
        secrets_read["object"],
        json!({"kind": "ClusterRole", "name": "edge-controller"})
    );
    assert_eq!(
        secrets_read["location"],
        json!({"file": "cluster:ClusterRole/edge-controller"})
    );
    let root = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "POD-015")
        .unwrap();
    assert_eq!(
        root["object"],
        json!({"kind": "Pod", "namespace": "default", "name": "envoy"})
    );
    assert_eq!(root["location"]["file"], "cluster:Pod/default/envoy");
    // SARIF: no file to point at, the object as the logical location.
    let sarif: Value =
        serde_json::from_str(&output::render(&live, output::Format::Sarif, &render)).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(r["locations"][0].get("physicalLocation").is_none(), "{r}");
        assert!(
            r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                .as_str()
                .is_some_and(|n| n.contains('/'))
        );
    }
}

#[tokio::test]
async fn a_forbidden_list_names_the_missing_permission_and_reports_nothing() {
    let mut api = bad_cluster();
    api.forbid
        .push("/apis/rbac.authorization.k8s.io/v1/clusterroles".to_owned());
    let (result, api) = read(api, &Scope::default()).await;
    let error = result.expect_err("a partial read must not give a report");
    assert_eq!(error.exit_code(), 4);
    let message = error.to_string();
    assert!(
        message.contains("verify --cluster needs list on rbac.authorization.k8s.io/clusterroles"),
        "{message}"
    );
    assert!(message.contains("403"), "{message}");
    assert!(
        matches!(
            &error,
            ClusterError::Forbidden {
                kind: "ClusterRole",
                ..
            }
        ),
        "{error:?}"
    );
    // It stopped at the refused list.
    assert_eq!(
        api.seen.last().unwrap().path,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    );

    // A namespaced kind in one namespace says so.
    let mut api = bad_cluster();
    api.forbid
        .push("/api/v1/namespaces/edge-system/pods".to_owned());
    let scope = Scope {
        namespace: Some("edge-system".to_owned()),
        ..Scope::default()
    };
    let (result, _) = read(api, &scope).await;
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("verify --cluster needs list on pods in namespace edge-system"),
        "{message}"
    );
}

#[tokio::test]
async fn continue_tokens_are_followed_to_the_last_page() {
    let api = MockApi::from_yaml(&[&profile()]);
    let (whole, _) = read(api.clone(), &Scope::default()).await;
    let whole = whole.unwrap();
    let scope = Scope {
        page_size: 1,
        ..Scope::default()
    };
    let (paged, api) = read(api, &scope).await;
    let paged = paged.unwrap();
    assert_eq!(paged.objects, whole.objects);
    assert!(api.seen.iter().all(|s| s.query["limit"] == "1"));
    // Four NetworkPolicies: four pages, the last three each with the previous page's token.
    let policies: Vec<_> = api
        .seen
        .iter()
        .filter(|s| s.path.ends_with("/networkpolicies"))
        .collect();
    assert_eq!(policies.len(), 4);
    assert!(!policies[0].query.contains_key("continue"));
    let sent: BTreeSet<&str> = api
        .seen
        .iter()
        .filter_map(|s| s.query.get("continue").map(String::as_str))
        .collect();
    let issued = api.tokens_issued();
    assert!(!issued.is_empty());
    assert_eq!(
        sent,
        issued.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert_eq!(paged.requests, api.seen.len());

    // A server that caps pages below `limit` is followed too.
    let mut api = MockApi::from_yaml(&[&profile()]);
    api.max_page = Some(2);
    let (capped, api) = read(api, &Scope::default()).await;
    assert_eq!(capped.unwrap().objects, whole.objects);
    assert!(api.seen.iter().any(|s| s.query.contains_key("continue")));
}

#[tokio::test]
async fn a_namespace_limits_the_namespaced_lists() {
    let api = MockApi::from_yaml(&[&profile()]);
    let scope = Scope {
        namespace: Some("gatehouse-gateways".to_owned()),
        ..Scope::default()
    };
    let (result, api) = read(api, &scope).await;
    let snapshot = result.unwrap();
    for seen in &api.seen {
        let cluster_scoped = seen.path.ends_with("/clusterroles")
            || seen.path.ends_with("/clusterrolebindings")
            || seen.path == "/api/v1/namespaces";
        assert!(
            cluster_scoped || seen.path.contains("/namespaces/gatehouse-gateways/"),
            "{seen:?}"
        );
    }
    let namespaces = api
        .seen
        .iter()
        .find(|s| s.path == "/api/v1/namespaces")
        .unwrap();
    assert_eq!(
        namespaces.query["fieldSelector"],
        "metadata.name=gatehouse-gateways"
    );
    assert!(!snapshot.objects.is_empty());
    for object in &snapshot.objects {
        let ns = object["metadata"]["namespace"].as_str();
        let name = object["metadata"]["name"].as_str();
        assert!(
            ns == Some("gatehouse-gateways")
                || (object["kind"] == "Namespace" && name == Some("gatehouse-gateways"))
                || object["kind"].as_str().unwrap().starts_with("ClusterRole"),
            "{object}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_api_server_could_not_be_evaluated() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        if let Some((_, send)) = handle.next_request().await {
            send.send_error(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            ));
        }
    });
    let client = kube::Client::new(service, "default");
    let error = cluster::read(&client, "https://mock.invalid:6443", &Scope::default())
        .await
        .unwrap_err();
    drop(client);
    server.await.unwrap();
    assert!(
        matches!(error, ClusterError::Unreachable { .. }),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), 4);
    assert!(error.to_string().contains("/api/v1/namespaces"), "{error}");

    // A body that is not a list is unparsable input.
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        if let Some((_, send)) = handle.next_request().await {
            send.send_response(
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from(b"{\"kind\":\"Status\"}".to_vec()))
                    .unwrap(),
            );
        }
    });
    let client = kube::Client::new(service, "default");
    let error = cluster::read(&client, "https://mock.invalid:6443", &Scope::default())
        .await
        .unwrap_err();
    drop(client);
    server.await.unwrap();
    assert_eq!(error.exit_code(), 3, "{error}");
}
