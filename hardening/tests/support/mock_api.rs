//! The LIST endpoints of a Kubernetes API server, without transport, for the
//! `verify --cluster` tests: there is no API server on the machines these tests run on (none
//! can be installed), so this plays one. `hardening/tests/verify_cluster.rs` puts it behind
//! kube's `tower-test` mock service; `tests/verify_cluster.rs` (the CLI) behind a loopback
//! HTTP server named by a kubeconfig.
//!
//! It answers the way the API server does: a `…List` object with `apiVersion`, `kind`,
//! `metadata.resourceVersion` (and `continue` and `remainingItemCount` while more remain),
//! items without `kind` and `apiVersion` but with `uid`, `resourceVersion` and
//! `creationTimestamp`; `limit` and `continue` paginate (a server-side cap can return fewer
//! than `limit`); `fieldSelector=metadata.name=…` filters; unknown paths get a 404 `Status`,
//! forbidden ones a 403 `Status` worded like the API server's. Every request is recorded.
//! The paths are written out here, not taken from the code under test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// Kind, apiVersion, resource, namespaced: what this API server serves.
const SERVED: &[(&str, &str, &str, bool)] = &[
    ("Namespace", "v1", "namespaces", false),
    ("ServiceAccount", "v1", "serviceaccounts", true),
    ("ConfigMap", "v1", "configmaps", true),
    ("Pod", "v1", "pods", true),
    ("Secret", "v1", "secrets", true),
    ("Service", "v1", "services", true),
    (
        "ClusterRole",
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        false,
    ),
    (
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        false,
    ),
    ("Role", "rbac.authorization.k8s.io/v1", "roles", true),
    (
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        true,
    ),
    (
        "NetworkPolicy",
        "networking.k8s.io/v1",
        "networkpolicies",
        true,
    ),
    ("Deployment", "apps/v1", "deployments", true),
    ("DaemonSet", "apps/v1", "daemonsets", true),
    ("StatefulSet", "apps/v1", "statefulsets", true),
    ("ReplicaSet", "apps/v1", "replicasets", true),
    ("Job", "batch/v1", "jobs", true),
    ("CronJob", "batch/v1", "cronjobs", true),
    (
        "CustomResourceDefinition",
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        false,
    ),
];

/// One request as the API server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: BTreeMap<String, String>,
}

/// The API server's objects, its script and what it saw.
#[derive(Clone, Debug, Default)]
pub(crate) struct MockApi {
    /// Stored objects, as they were created (with kind and apiVersion).
    pub(crate) objects: Vec<Value>,
    /// Paths answered 403 Forbidden.
    pub(crate) forbid: Vec<String>,
    /// The most items one page holds, whatever `limit` asks.
    pub(crate) max_page: Option<usize>,
    /// Requests, in order.
    pub(crate) seen: Vec<Seen>,
    /// Continue tokens handed out: token → (path, offset).
    tokens: BTreeMap<String, (String, usize)>,
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A `Status` object, as the API server sends with an error.
pub(crate) fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

impl MockApi {
    /// Every object of every document of the YAML files (a directory: its `*.yaml` files),
    /// stored the way the API server stores them: namespaced objects without a namespace land
    /// in `default`, and each gets a uid, a resourceVersion and a creationTimestamp.
    pub(crate) fn from_yaml(paths: &[&Path]) -> Self {
        let mut api = Self::default();
        for path in paths {
            let files: Vec<_> = if path.is_dir() {
                let mut files: Vec<_> = std::fs::read_dir(path)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                    .collect();
                files.sort();
                files
            } else {
                vec![path.to_path_buf()]
            };
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
                    if doc.is_object() {
                        api.add(doc);
                    }
                }
            }
        }
        api
    }

    /// Stores one object.
    pub(crate) fn add(&mut self, mut object: Value) {
        let kind = object["kind"].as_str().unwrap().to_owned();
        let namespaced = SERVED.iter().find(|s| s.0 == kind).is_none_or(|s| s.3);
        let n = self.objects.len() + 1;
        let meta = object["metadata"].as_object_mut().unwrap();
        if namespaced && !meta.contains_key("namespace") {
            meta.insert("namespace".into(), json!("default"));
        }
        meta.insert(
            "uid".into(),
            json!(format!("6d1c7a52-0000-4000-8000-{n:012}")),
        );
        meta.insert("resourceVersion".into(), json!(format!("{}", 1000 + n)));
        meta.insert("creationTimestamp".into(), json!("2026-11-27T09:00:00Z"));
        self.objects.push(object);
    }

    /// The stored objects of `kind`.
    pub(crate) fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    /// Answers one request: the status code and the JSON body.
    pub(crate) fn answer(&mut self, method: &str, path: &str, query: &str) -> (u16, Value) {
        let query: BTreeMap<String, String> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        self.seen.push(Seen {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.clone(),
        });
        if method != "GET" {
            return (405, status(405, "MethodNotAllowed", "only GET here"));
        }
        let Some((kind, api_version, resource, namespace)) = route(path) else {
            return (
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
        };
        if self.forbid.iter().any(|f| f == path) {
            let (group, scope) = match (api_version.split_once('/'), &namespace) {
                (Some((g, _)), None) => (g.to_owned(), "at the cluster scope".to_owned()),
                (Some((g, _)), Some(ns)) => (g.to_owned(), format!("in the namespace \"{ns}\"")),
                (None, None) => (String::new(), "at the cluster scope".to_owned()),
                (None, Some(ns)) => (String::new(), format!("in the namespace \"{ns}\"")),
            };
            let qualified = if group.is_empty() {
                resource.to_owned()
            } else {
                format!("{resource}.{group}")
            };
            let mut body = status(
                403,
                "Forbidden",
                &format!(
                    "{qualified} is forbidden: User \"system:serviceaccount:ci:verify\" cannot list resource \"{resource}\" in API group \"{group}\" {scope}"
                ),
            );
            body["details"] = json!({"group": group, "kind": resource});
            return (403, body);
        }
        let name_selector = query
            .get("fieldSelector")
            .and_then(|f| f.strip_prefix("metadata.name="))
            .map(str::to_owned);
        let matching: Vec<Value> = self
            .objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .filter(|o| {
                namespace
                    .as_deref()
                    .is_none_or(|ns| o["metadata"]["namespace"] == ns)
            })
            .filter(|o| {
                name_selector
                    .as_deref()
                    .is_none_or(|n| o["metadata"]["name"] == n)
            })
            .cloned()
            .collect();
        let offset = match query.get("continue") {
            None => 0,
            Some(token) => match self.tokens.get(token) {
                Some((p, offset)) if p == path => *offset,
                _ => {
                    return (
                        410,
                        status(
                            410,
                            "Expired",
                            "The provided continue parameter is too old to display a consistent list result.",
                        ),
                    );
                }
            },
        };
        let mut page = query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        if let Some(max) = self.max_page {
            page = page.min(max);
        }
        let end = offset.saturating_add(page).min(matching.len());
        let items: Vec<Value> = matching[offset.min(end)..end]
            .iter()
            .map(|o| {
                let mut item = o.clone();
                let map = item.as_object_mut().unwrap();
                map.remove("kind");
                map.remove("apiVersion");
                item
            })
            .collect();
        let mut metadata = json!({"resourceVersion": "4711"});
        if end < matching.len() {
            // Opaque to clients, like the API server's base64 tokens.
            let token = format!("eyJydiI6NDcxMSwic3RhcnQiOi{:04}", self.tokens.len());
            self.tokens.insert(token.clone(), (path.to_owned(), end));
            metadata["continue"] = json!(token);
            metadata["remainingItemCount"] = json!(matching.len() - end);
        }
        (
            200,
            json!({
                "kind": format!("{kind}List"),
                "apiVersion": api_version,
                "metadata": metadata,
                "items": items,
            }),
        )
    }

    /// The continue tokens handed out so far.
    pub(crate) fn tokens_issued(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }
}

/// Kind, apiVersion, resource and namespace of a list path.
fn route(path: &str) -> Option<(&'static str, &'static str, &'static str, Option<String>)> {
    for (kind, api_version, resource, namespaced) in SERVED {
        let base = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        if path == format!("{base}/{resource}") {
            return Some((kind, api_version, resource, None));
        }
        if *namespaced
            && let Some(rest) = path.strip_prefix(&format!("{base}/namespaces/"))
            && let Some((ns, r)) = rest.split_once('/')
            && r == *resource
        {
            return Some((kind, api_version, resource, Some(ns.to_owned())));
        }
    }
    None
}
