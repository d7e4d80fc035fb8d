//! A fake Kubernetes API server for tests: kube's `tower-test` mock service answering with
//! real-shaped API JSON (lists with `resourceVersion`, watch streams of `ADDED`/`MODIFIED`/
//! `DELETED` events, `Status` errors, create/replace/patch with optimistic concurrency, status
//! subresources). No API server can be installed on these machines; this is what Kubernetes
//! mode is tested against. Every request is recorded (verb, group, resource, subresource,
//! namespace, name) for assertions and for the RBAC self-consistency test.

#![allow(dead_code, unreachable_pub, reason = "each test file uses a part")]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The response body: whole, or a stream (watches).
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One request, as an authorizer sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource (`status`), if any.
    pub subresource: Option<String>,
    /// Namespace, if any.
    pub namespace: Option<String>,
    /// Object name, if any.
    pub name: Option<String>,
    /// HTTP method and path with query, for assertions.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// The body, as JSON (Null when empty).
    pub body: String,
    /// Which client sent it ([`FakeApi::client_tagged`]; empty otherwise).
    pub client: String,
}

impl Request {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A query parameter.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.uri.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| v.to_owned())
        })
    }
}

struct Watch {
    group: String,
    resource: String,
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<Result<hyper::body::Frame<Bytes>, Infallible>>,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    /// (group, resource) → (namespace, name) → object
    objects: BTreeMap<(String, String), BTreeMap<(String, String), Value>>,
    watches: Vec<Watch>,
    /// Every event: (resourceVersion, group, resource, namespace, line), replayed to a watch
    /// that starts from an older resourceVersion (as the API server's watch cache does).
    log: Vec<(u64, String, String, String, String)>,
    requests: Vec<Request>,
    outage: bool,
    /// (verb, resource) → HTTP status to answer with instead.
    failures: BTreeMap<(String, String), u16>,
}

/// The fake API server.
#[derive(Clone, Default)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
}

/// Where a request points.
struct Target {
    group: String,
    version: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match *segs.first()? {
        "api" => (String::new(), (*segs.get(1)?).to_owned(), &segs[2..]),
        "apis" => (
            (*segs.get(1)?).to_owned(),
            (*segs.get(2)?).to_owned(),
            &segs[3..],
        ),
        _ => return None,
    };
    let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" {
        (Some(rest[1].to_owned()), &rest[2..])
    } else {
        (None, rest)
    };
    Some(Target {
        group,
        version,
        resource: (*rest.first()?).to_owned(),
        namespace,
        name: rest.get(1).map(|s| (*s).to_owned()),
        subresource: rest.get(2).map(|s| (*s).to_owned()),
    })
}

fn full(v: &Value) -> Body {
    http_body_util::Full::new(Bytes::from(serde_json::to_vec(v).unwrap()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn response(code: u16, v: &Value) -> http::Response<Body> {
    http::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(v))
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> http::Response<Body> {
    response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

fn list_kind(resource: &str) -> &'static str {
    match resource {
        "gatewayclasses" => "GatewayClassList",
        "gateways" => "GatewayList",
        "httproutes" => "HTTPRouteList",
        "grpcroutes" => "GRPCRouteList",
        "referencegrants" => "ReferenceGrantList",
        "services" => "ServiceList",
        "endpointslices" => "EndpointSliceList",
        "namespaces" => "NamespaceList",
        "secrets" => "SecretList",
        "leases" => "LeaseList",
        "backends" => "BackendList",
        "securitypolicies" => "SecurityPolicyList",
        "gatewaypolicies" => "GatewayPolicyList",
        _ => "List",
    }
}

/// The plural of a kind (the ones the tests use).
pub fn plural(kind: &str) -> String {
    match kind {
        "GatewayClass" => "gatewayclasses".into(),
        "Gateway" => "gateways".into(),
        "HTTPRoute" => "httproutes".into(),
        "GRPCRoute" => "grpcroutes".into(),
        "ReferenceGrant" => "referencegrants".into(),
        "Service" => "services".into(),
        "EndpointSlice" => "endpointslices".into(),
        "Namespace" => "namespaces".into(),
        "Secret" => "secrets".into(),
        "Lease" => "leases".into(),
        "Backend" => "backends".into(),
        "SecurityPolicy" => "securitypolicies".into(),
        "GatewayPolicy" => "gatewaypolicies".into(),
        other => panic!("no plural for {other}"),
    }
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

impl Inner {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn notify(&mut self, group: &str, resource: &str, ns: &str, event: &str, object: &Value) {
        let line = format!("{}\n", json!({"type": event, "object": object}));
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.rv);
        self.log.push((
            rv,
            group.to_owned(),
            resource.to_owned(),
            ns.to_owned(),
            line.clone(),
        ));
        self.watches.retain(|w| {
            if w.group != group || w.resource != resource {
                return true;
            }
            if w.namespace.as_deref().is_some_and(|n| n != ns) {
                return true;
            }
            w.tx.send(Ok(hyper::body::Frame::data(Bytes::from(line.clone()))))
                .is_ok()
        });
    }

    /// Stores `object` (create or replace), as the API server would: resourceVersion, uid,
    /// generation bumped when the spec changes.
    fn store(
        &mut self,
        group: &str,
        resource: &str,
        mut object: Value,
        status_only: bool,
    ) -> Value {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let rv = self.next_rv();
        let map = self
            .objects
            .entry((group.to_owned(), resource.to_owned()))
            .or_default();
        let existing = map.get(&(ns.clone(), name.clone())).cloned();
        let event = if existing.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let generation = match &existing {
            Some(e) => {
                let g = e["metadata"]["generation"].as_i64().unwrap_or(1);
                if !status_only && e.get("spec") != object.get("spec") {
                    g + 1
                } else {
                    g
                }
            }
            None => 1,
        };
        {
            let m = object["metadata"].as_object_mut().unwrap();
            m.insert("resourceVersion".into(), json!(rv));
            m.insert("generation".into(), json!(generation));
            m.entry("uid").or_insert(json!(format!("uid-{name}-{rv}")));
            m.entry("creationTimestamp")
                .or_insert(json!("2026-11-27T00:00:00Z"));
        }
        map.insert((ns.clone(), name), object.clone());
        self.notify(group, resource, &ns, event, &object);
        object
    }
}

impl FakeApi {
    /// A kube client talking to this fake, and the task serving it.
    pub fn client(&self) -> kube::Client {
        self.client_tagged("")
    }

    /// A kube client whose requests are recorded with `tag` (to tell replicas apart).
    pub fn client_tagged(&self, tag: &str) -> kube::Client {
        let tag = tag.to_owned();
        let (svc, mut handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let resp = api.handle_from(req, &tag).await;
                send.send_response(resp);
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Serves this fake over plain HTTP on 127.0.0.1 (for the real binary, through a
    /// kubeconfig); returns its URL. Runs until the runtime ends.
    pub async fn serve_http(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let api = api.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let api = api.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let bytes = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let req = http::Request::from_parts(
                                    parts,
                                    kube::client::Body::from(bytes.to_vec()),
                                );
                                Ok::<_, Infallible>(api.handle(req).await)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}")
    }

    /// A kubeconfig for [`FakeApi::serve_http`]'s URL, written to `path`.
    pub fn write_kubeconfig(path: &std::path::Path, url: &str) {
        std::fs::write(
            path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: controller\nusers:\n- name: controller\n  user:\n    token: not-a-secret\n"
            ),
        )
        .unwrap();
    }

    /// Adds or replaces an object (as another client of the API would), notifying watches.
    pub fn apply(&self, object: Value) -> Value {
        let (group, _) = group_version(&object);
        let resource = plural(object["kind"].as_str().unwrap());
        let mut inner = self.inner.lock().unwrap();
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        // Keep the status the controller wrote, as the API server does for spec updates.
        let mut object = object;
        if object.get("status").is_none()
            && let Some(prev) = inner
                .objects
                .get(&(group.clone(), resource.clone()))
                .and_then(|m| m.get(&(ns, name)))
                .and_then(|p| p.get("status"))
                .cloned()
        {
            object["status"] = prev;
        }
        inner.store(&group, &resource, object, false)
    }

    /// Deletes an object, notifying watches.
    pub fn delete(&self, kind: &str, group: &str, ns: &str, name: &str) {
        let resource = plural(kind);
        let mut inner = self.inner.lock().unwrap();
        let removed = inner
            .objects
            .get_mut(&(group.to_owned(), resource.clone()))
            .and_then(|m| m.remove(&(ns.to_owned(), name.to_owned())));
        if let Some(mut o) = removed {
            let rv = inner.next_rv();
            o["metadata"]["resourceVersion"] = json!(rv);
            inner.notify(group, &resource, ns, "DELETED", &o);
        }
    }

    /// The stored object.
    pub fn get(&self, kind: &str, group: &str, ns: &str, name: &str) -> Option<Value> {
        self.inner
            .lock()
            .unwrap()
            .objects
            .get(&(group.to_owned(), plural(kind)))
            .and_then(|m| m.get(&(ns.to_owned(), name.to_owned())))
            .cloned()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.inner.lock().unwrap().requests.clear();
    }

    /// An API outage: every request fails with 503 and open watches end.
    pub fn set_outage(&self, on: bool) {
        let mut inner = self.inner.lock().unwrap();
        inner.outage = on;
        if on {
            inner.watches.clear();
        }
    }

    /// Answers requests of `verb` on `resource` with `code` (0 to stop).
    pub fn fail(&self, verb: &str, resource: &str, code: u16) {
        let mut inner = self.inner.lock().unwrap();
        if code == 0 {
            inner.failures.remove(&(verb.into(), resource.into()));
        } else {
            inner.failures.insert((verb.into(), resource.into()), code);
        }
    }

    async fn handle(&self, req: http::Request<kube::client::Body>) -> http::Response<Body> {
        self.handle_from(req, "").await
    }

    async fn handle_from(
        &self,
        req: http::Request<kube::client::Body>,
        tag: &str,
    ) -> http::Response<Body> {
        let (parts, body) = req.into_parts();
        let body = body.collect_bytes().await.unwrap_or_default();
        let path = parts.uri.path().to_owned();
        let uri = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| path.clone());
        let Some(t) = parse_path(&path) else {
            return status(404, "NotFound", &format!("no route for {path}"));
        };
        let query = parts.uri.query().unwrap_or("").to_owned();
        let is_watch = query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        let method = parts.method.as_str().to_owned();
        let verb = match (method.as_str(), &t.name) {
            ("GET", None) if is_watch => "watch",
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            _ => "unknown",
        }
        .to_owned();
        let record = Request {
            verb: verb.clone(),
            group: t.group.clone(),
            resource: t.resource.clone(),
            subresource: t.subresource.clone(),
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            method: method.clone(),
            uri: uri.clone(),
            content_type: parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(&body).into_owned(),
            client: tag.to_owned(),
        };
        let mut inner = self.inner.lock().unwrap();
        inner.requests.push(record);
        if inner.outage {
            return status(503, "ServiceUnavailable", "the API server is unavailable");
        }
        if let Some(code) = inner.failures.get(&(verb.clone(), t.resource.clone())) {
            let code = *code;
            return status(code, "InternalError", "injected failure");
        }
        let key = (t.group.clone(), t.resource.clone());
        let api_version = if t.group.is_empty() {
            t.version.clone()
        } else {
            format!("{}/{}", t.group, t.version)
        };
        match verb.as_str() {
            "list" => {
                let items: Vec<Value> = inner
                    .objects
                    .get(&key)
                    .map(|m| {
                        m.iter()
                            .filter(|((ns, _), _)| t.namespace.as_ref().is_none_or(|n| n == ns))
                            .map(|(_, o)| o.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let rv = inner.rv.to_string();
                response(
                    200,
                    &json!({"apiVersion": api_version, "kind": list_kind(&t.resource),
                            "metadata": {"resourceVersion": rv}, "items": items}),
                )
            }
            "watch" => {
                let (tx, rx) = mpsc::unbounded_channel();
                let since: u64 = record_query(&query, "resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(inner.rv);
                for (rv, g, r, ns, line) in &inner.log {
                    if *rv > since
                        && *g == t.group
                        && *r == t.resource
                        && t.namespace.as_ref().is_none_or(|n| n == ns)
                    {
                        let _ = tx.send(Ok(hyper::body::Frame::data(Bytes::from(line.clone()))));
                    }
                }
                inner.watches.push(Watch {
                    group: t.group.clone(),
                    resource: t.resource.clone(),
                    namespace: t.namespace.clone(),
                    tx,
                });
                let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
                let body = http_body_util::StreamBody::new(stream).boxed_unsync();
                http::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(body)
                    .unwrap()
            }
            "get" => {
                let name = t.name.clone().unwrap_or_default();
                let ns = t.namespace.clone().unwrap_or_default();
                match inner
                    .objects
                    .get(&key)
                    .and_then(|m| m.get(&(ns, name.clone())))
                {
                    Some(o) => response(200, o),
                    None => status(
                        404,
                        "NotFound",
                        &format!("{} \"{name}\" not found", t.resource),
                    ),
                }
            }
            "create" => {
                let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "body is not JSON");
                };
                let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
                let ns = t.namespace.clone().unwrap_or_default();
                if inner
                    .objects
                    .get(&key)
                    .is_some_and(|m| m.contains_key(&(ns.clone(), name.clone())))
                {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("{} \"{name}\" already exists", t.resource),
                    );
                }
                if let Some(n) = &t.namespace {
                    object["metadata"]["namespace"] = json!(n);
                }
                let stored = inner.store(&t.group, &t.resource, object, false);
                response(201, &stored)
            }
            "update" | "patch" => {
                let name = t.name.clone().unwrap_or_default();
                let ns = t.namespace.clone().unwrap_or_default();
                let Some(current) = inner
                    .objects
                    .get(&key)
                    .and_then(|m| m.get(&(ns.clone(), name.clone())))
                    .cloned()
                else {
                    return status(
                        404,
                        "NotFound",
                        &format!("{} \"{name}\" not found", t.resource),
                    );
                };
                let Ok(incoming) = serde_json::from_slice::<Value>(&body) else {
                    return status(400, "BadRequest", "body is not JSON");
                };
                if let Some(rv) = incoming["metadata"]["resourceVersion"].as_str()
                    && Some(rv) != current["metadata"]["resourceVersion"].as_str()
                {
                    return status(
                        409,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                            t.resource
                        ),
                    );
                }
                let status_only = t.subresource.as_deref() == Some("status");
                let mut next = if verb == "update" {
                    incoming.clone()
                } else {
                    current.clone()
                };
                if verb == "patch" {
                    if status_only {
                        merge(
                            &mut next,
                            &json!({"status": incoming.get("status").cloned().unwrap_or(Value::Null)}),
                        );
                    } else {
                        merge(&mut next, &incoming);
                    }
                } else if status_only {
                    next = current.clone();
                    next["status"] = incoming["status"].clone();
                }
                next["metadata"]["namespace"] = current["metadata"]["namespace"].clone();
                if next["metadata"]["namespace"].is_null() {
                    next["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .remove("namespace");
                }
                next["metadata"]["name"] = json!(name);
                let stored = inner.store(&t.group, &t.resource, next, status_only);
                response(200, &stored)
            }
            "delete" => {
                let name = t.name.clone().unwrap_or_default();
                let ns = t.namespace.clone().unwrap_or_default();
                drop(inner);
                self.delete_raw(&t.group, &t.resource, &ns, &name)
            }
            _ => status(405, "MethodNotAllowed", "not supported by the fake"),
        }
    }

    fn delete_raw(
        &self,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> http::Response<Body> {
        let mut inner = self.inner.lock().unwrap();
        let removed = inner
            .objects
            .get_mut(&(group.to_owned(), resource.to_owned()))
            .and_then(|m| m.remove(&(ns.to_owned(), name.to_owned())));
        match removed {
            Some(mut o) => {
                let rv = inner.next_rv();
                o["metadata"]["resourceVersion"] = json!(rv);
                inner.notify(group, resource, ns, "DELETED", &o);
                response(200, &o)
            }
            None => status(404, "NotFound", "not found"),
        }
    }
}

/// Group and version of an object's `apiVersion`.
pub fn group_version(object: &Value) -> (String, String) {
    let av = object["apiVersion"].as_str().unwrap_or("v1");
    match av.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), av.to_owned()),
    }
}

fn record_query(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_owned())
    })
}
