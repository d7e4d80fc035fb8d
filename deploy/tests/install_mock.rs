//! `install` against kube's `tower-test` mock service: there is no Kubernetes API server on
//! the machines these tests run on (none can be installed, and there is no container
//! runtime), so the mock plays the API server. It answers every request the way the API
//! server does, with real-shaped JSON (objects with `uid`, `resourceVersion`, `generation` and
//! `managedFields`; Deployments with a status; `Status` objects for errors), and records the
//! requests: their order, method, path, query parameters, content type and body.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_deploy::install::{InstallError, InstallOptions, Progress, install};
use gatehouse_deploy::kubernetes::{Object, Stage};
use gatehouse_deploy::{HardenedParams, hardened_objects};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the mock API server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    content_type: String,
    body: Value,
}

/// How the mock answers.
#[derive(Clone, Default)]
struct Script {
    /// Refuse the apply of this path with 403.
    forbid: Option<String>,
    /// GETs of a Deployment answered "1 of 2 available" before it is rolled out.
    not_ready_polls: usize,
    /// Never roll out.
    never_ready: bool,
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(body: &Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// Plays the API server until the client is dropped; returns what it saw.
async fn api_server(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    script: Script,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut stored: BTreeMap<String, Value> = BTreeMap::new();
    let mut polls: BTreeMap<String, usize> = BTreeMap::new();
    let mut uid = 0u32;
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let query: BTreeMap<String, String> = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let path = parts.uri.path().to_owned();
        let body_json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        seen.push(Seen {
            method: parts.method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type: parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            body: body_json.clone(),
        });
        let response = match parts.method {
            Method::PATCH if script.forbid.as_deref() == Some(path.as_str()) => status(
                403,
                "Forbidden",
                "clusterroles.rbac.authorization.k8s.io \"gatehouse-controller\" is forbidden: user \"dev\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held",
            ),
            Method::PATCH => {
                uid += 1;
                let mut object = body_json.clone();
                let meta = object["metadata"].as_object_mut().unwrap();
                meta.insert(
                    "uid".into(),
                    json!(format!("5f1c3d2e-0000-4000-8000-{uid:012}")),
                );
                meta.insert("resourceVersion".into(), json!(format!("{}", 1000 + uid)));
                meta.insert("generation".into(), json!(1));
                meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
                meta.insert(
                    "managedFields".into(),
                    json!([{
                        "manager": query.get("fieldManager").cloned().unwrap_or_default(),
                        "operation": "Apply",
                        "apiVersion": body_json["apiVersion"],
                        "time": "2026-01-01T00:00:00Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {}},
                    }]),
                );
                if !query.contains_key("dryRun") {
                    stored.insert(path.clone(), object.clone());
                }
                ok(&object)
            }
            Method::GET => match stored.get(&path) {
                Some(object) => {
                    let n = polls.entry(path.clone()).or_insert(0);
                    *n += 1;
                    let ready = !script.never_ready && *n > script.not_ready_polls;
                    let mut object = object.clone();
                    object["status"] = json!({
                        "observedGeneration": 1,
                        "replicas": 2,
                        "updatedReplicas": 2,
                        "readyReplicas": if ready { 2 } else { 1 },
                        "availableReplicas": if ready { 2 } else { 1 },
                        "conditions": [{
                            "type": "Available",
                            "status": if ready { "True" } else { "False" },
                            "reason": if ready { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                            "lastUpdateTime": "2026-01-01T00:00:00Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                        }],
                    });
                    ok(&object)
                }
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            _ => status(
                405,
                "MethodNotAllowed",
                "the mock answers PATCH and GET only",
            ),
        };
        send.send_response(response);
    }
    seen
}

fn crd() -> CustomResourceDefinition {
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some("backends.gatehouse.dev".into()),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: "gatehouse.dev".into(),
            names: CustomResourceDefinitionNames {
                kind: "Backend".into(),
                plural: "backends".into(),
                ..CustomResourceDefinitionNames::default()
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: "v1alpha1".into(),
                served: true,
                storage: true,
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        ..CustomResourceDefinition::default()
    }
}

/// Runs `install` against the mock; returns its result, the requests and the progress.
async fn run(
    objects: &[Object],
    options: InstallOptions,
    script: Script,
) -> (Result<(), InstallError>, Vec<Seen>, Vec<Progress>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(api_server(handle, script));
    let client = kube::Client::new(service, "default");
    let progress = Arc::new(Mutex::new(Vec::new()));
    let sink = progress.clone();
    let result = install(&client, objects, &options, &mut move |p| {
        sink.lock().unwrap().push(p)
    })
    .await;
    drop(client);
    let seen = server.await.unwrap();
    let progress = progress.lock().unwrap().clone();
    (result, seen, progress)
}

fn url_path(o: &Object) -> String {
    let base = if o.group.is_empty() {
        format!("/api/{}", o.version)
    } else {
        format!("/apis/{}/{}", o.group, o.version)
    };
    match &o.namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}/{}", o.plural, o.name),
        None => format!("{base}/{}/{}", o.plural, o.name),
    }
}

#[tokio::test(start_paused = true)]
async fn install_applies_every_object_in_order_then_waits_for_the_rollouts() {
    let objects = hardened_objects(&HardenedParams::default(), &[crd()]).unwrap();
    let script = Script {
        not_ready_polls: 2,
        ..Script::default()
    };
    let (result, seen, progress) = run(&objects, InstallOptions::default(), script).await;
    result.unwrap();

    let applies: Vec<&Seen> = seen.iter().filter(|s| s.method == Method::PATCH).collect();
    // One server-side apply per object, in the order of the stages.
    assert_eq!(applies.len(), objects.len());
    for (seen, object) in applies.iter().zip(&objects) {
        assert_eq!(seen.path, url_path(object), "{}", object.id());
        assert_eq!(seen.content_type, "application/apply-patch+yaml");
        assert_eq!(
            seen.query.get("fieldManager").map(String::as_str),
            Some("gatehouse")
        );
        assert_eq!(seen.query.get("force").map(String::as_str), Some("true"));
        assert_eq!(
            seen.query.get("fieldValidation").map(String::as_str),
            Some("Strict")
        );
        assert!(!seen.query.contains_key("dryRun"));
        assert_eq!(seen.body, object.value, "the body is the rendered object");
    }
    let kinds: Vec<&str> = applies
        .iter()
        .map(|s| s.body["kind"].as_str().unwrap())
        .collect();
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    let last = |kind: &str| kinds.iter().rposition(|k| *k == kind).unwrap();
    assert_eq!(kinds[0], "CustomResourceDefinition");
    assert!(last("CustomResourceDefinition") < position("Namespace"));
    assert!(last("Namespace") < position("ServiceAccount"));
    for rbac in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ] {
        assert!(last(rbac) < position("ConfigMap"), "{rbac}");
    }
    for config in ["ConfigMap", "NetworkPolicy"] {
        assert!(last(config) < position("Service"), "{config}");
        assert!(last(config) < position("Deployment"), "{config}");
    }
    assert!(last("NetworkPolicy") < position("PodDisruptionBudget"));

    // Then it waits: GETs of each Deployment until it is rolled out (3 polls each here).
    let first_get = seen.iter().position(|s| s.method == Method::GET).unwrap();
    assert!(seen[..first_get].iter().all(|s| s.method == Method::PATCH));
    let gets: Vec<&str> = seen
        .iter()
        .filter(|s| s.method == Method::GET)
        .map(|s| s.path.as_str())
        .collect();
    let deployments: Vec<String> = objects
        .iter()
        .filter(|o| o.kind == "Deployment")
        .map(url_path)
        .collect();
    assert_eq!(gets.len(), 3 * deployments.len());
    for d in &deployments {
        assert_eq!(gets.iter().filter(|g| **g == d).count(), 3);
    }

    let stages: Vec<Stage> = progress
        .iter()
        .filter_map(|p| match p {
            Progress::Stage(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        [
            Stage::Crds,
            Stage::Namespaces,
            Stage::Rbac,
            Stage::Config,
            Stage::Workloads
        ]
    );
    assert!(progress.iter().any(|p| matches!(
        p,
        Progress::Waiting { status, .. } if status == "1 of 2 updated replicas available"
    )));
    assert_eq!(
        progress
            .iter()
            .filter(|p| matches!(p, Progress::RolledOut { .. }))
            .count(),
        deployments.len()
    );
}

#[tokio::test(start_paused = true)]
async fn without_crds_the_first_request_is_a_namespace() {
    let objects = hardened_objects(&HardenedParams::default(), &[]).unwrap();
    let (result, seen, _) = run(&objects, InstallOptions::default(), Script::default()).await;
    result.unwrap();
    assert_eq!(seen[0].path, "/api/v1/namespaces/gatehouse-system");
    assert_eq!(seen[0].method, Method::PATCH);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_sends_the_same_applies_with_dry_run_and_does_not_wait() {
    let objects = hardened_objects(&HardenedParams::default(), &[]).unwrap();
    let mut options = InstallOptions::default();
    options.dry_run = true;
    let (result, seen, _) = run(&objects, options, Script::default()).await;
    result.unwrap();
    assert_eq!(seen.len(), objects.len());
    for s in &seen {
        assert_eq!(s.method, Method::PATCH);
        assert_eq!(s.query.get("dryRun").map(String::as_str), Some("All"));
        assert_eq!(
            s.query.get("fieldManager").map(String::as_str),
            Some("gatehouse")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_object_stops_the_install_and_names_the_object() {
    let objects = hardened_objects(&HardenedParams::default(), &[]).unwrap();
    let script = Script {
        forbid: Some("/apis/rbac.authorization.k8s.io/v1/clusterroles/gatehouse-controller".into()),
        ..Script::default()
    };
    let (result, seen, _) = run(&objects, InstallOptions::default(), script).await;
    let e = result.unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with("cannot apply ClusterRole/gatehouse-controller: "),
        "{message}"
    );
    assert!(message.contains("forbidden"), "{message}");
    assert!(matches!(e, InstallError::Apply { .. }));
    // Nothing after it was sent.
    assert_eq!(
        seen.last().unwrap().path,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/gatehouse-controller"
    );
    assert!(!seen.iter().any(|s| s.body["kind"] == "Deployment"));
}

#[tokio::test(start_paused = true)]
async fn waiting_is_bounded() {
    let objects = hardened_objects(&HardenedParams::default(), &[]).unwrap();
    let mut options = InstallOptions::default();
    options.rollout_timeout = Duration::from_secs(30);
    options.poll_interval = Duration::from_secs(2);
    let script = Script {
        never_ready: true,
        ..Script::default()
    };
    let started = tokio::time::Instant::now();
    let (result, seen, _) = run(&objects, options, script).await;
    let e = result.unwrap_err();
    assert!(matches!(e, InstallError::Timeout { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.starts_with("timed out after 30s waiting for "),
        "{message}"
    );
    assert!(
        message.contains("Deployment/gatehouse-gateways/gatehouse-envoy-edge"),
        "{message}"
    );
    assert!(
        message.contains("1 of 2 updated replicas available"),
        "{message}"
    );
    assert!(started.elapsed() <= Duration::from_secs(30));
    let polls = seen.iter().filter(|s| s.method == Method::GET).count();
    assert!((20..=32).contains(&polls), "{polls} polls");
}
