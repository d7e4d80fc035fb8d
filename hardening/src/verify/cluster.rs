//! `gatehouse verify --cluster`: the live objects of a cluster, read through the Kubernetes
//! API so that the same checks as `-f` evaluate them.
//!
//! Only LIST requests are made ([`KINDS`], paginated with `limit` and `continue`); Secrets are
//! never listed. [`read`] takes any [`kube::Client`], so the tests drive it with kube's
//! `tower-test` mock; [`connect`] builds the real one from a kubeconfig (or the pod's service
//! account). Every list must succeed: a refused or failed list is an error
//! ([`ClusterError`]), never a partial report.
//!
//! The objects keep the JSON the API server sent (items of a list have no `kind` and
//! `apiVersion`: they are filled in from the list). A Pod, ReplicaSet or Job whose controller
//! (`ownerReferences` with `controller: true`) was listed too is left out: the checks see its
//! pod template on the controller, and each problem is reported once. Findings name the object
//! (`Kind/namespace/name`) and their location is `cluster:Kind/namespace/name`, with no line.

use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::params::ListParams;
use serde_json::{Map, Value as Json};

use super::input::Source;
use super::k8s::Object;
use super::yaml::{Node, Value};

/// One kind `--cluster` lists: where its list is and what RBAC permission reading it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedKind {
    /// `ClusterRole`, `Pod` …
    pub kind: &'static str,
    /// The API group (empty for the core group).
    pub group: &'static str,
    /// The version (`v1`).
    pub version: &'static str,
    /// `group/version`, or the version for the core group.
    pub api_version: &'static str,
    /// The resource (`clusterroles`): the URL path segment and the RBAC resource.
    pub plural: &'static str,
    /// Whether objects of the kind live in namespaces.
    pub namespaced: bool,
}

const fn listed<K: k8s_openapi::Resource>(namespaced: bool) -> ListedKind {
    ListedKind {
        kind: K::KIND,
        group: K::GROUP,
        version: K::VERSION,
        api_version: K::API_VERSION,
        plural: K::URL_PATH_SEGMENT,
        namespaced,
    }
}

/// Every kind `--cluster` lists, in the order it lists them: what the RBAC, pod-security and
/// Envoy checks evaluate. Secrets are not among them, on purpose.
pub const KINDS: [ListedKind; 15] = [
    listed::<Namespace>(false),
    listed::<ClusterRole>(false),
    listed::<ClusterRoleBinding>(false),
    listed::<Role>(true),
    listed::<RoleBinding>(true),
    listed::<ServiceAccount>(true),
    listed::<ConfigMap>(true),
    listed::<NetworkPolicy>(true),
    listed::<Deployment>(true),
    listed::<DaemonSet>(true),
    listed::<StatefulSet>(true),
    listed::<ReplicaSet>(true),
    listed::<Job>(true),
    listed::<CronJob>(true),
    listed::<Pod>(true),
];

/// Kinds left out when their controller was listed: the controller's pod template is checked.
const OWNED_KINDS: [&str; 3] = ["Pod", "ReplicaSet", "Job"];

impl ListedKind {
    /// The RBAC resource as `group/resource` (`rbac.authorization.k8s.io/clusterroles`), or
    /// the resource alone for the core group (`pods`).
    #[must_use]
    pub fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}/{}", self.group, self.plural)
        }
    }

    /// The path of the list: `/apis/GROUP/VERSION[/namespaces/NS]/PLURAL` (`/api/v1/…` for
    /// the core group). `namespace` applies to namespaced kinds only.
    #[must_use]
    pub fn path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }
}

/// What to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Only this namespace for namespaced kinds (and only its Namespace object); cluster-scoped
    /// kinds are read whole. `None`: every namespace.
    pub namespace: Option<String>,
    /// Objects per page (`limit`); the rest is fetched with `continue`.
    pub page_size: u32,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            namespace: None,
            page_size: 500,
        }
    }
}

/// The objects read from a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The API server's URL, as the kubeconfig names it.
    pub server: String,
    /// The namespace the read was limited to.
    pub namespace: Option<String>,
    /// The objects, each with `apiVersion` and `kind`, as the API server sent them, minus
    /// those whose controller was listed too.
    pub objects: Vec<Json>,
    /// How many objects of each kind were listed (before leaving out owned ones).
    pub counts: Vec<(&'static str, usize)>,
    /// Pods, ReplicaSets and Jobs left out because their controller was listed.
    pub owned: usize,
    /// LIST requests made (one per page).
    pub requests: usize,
}

impl Snapshot {
    /// One line for the report's inputs: the server, the namespace and the counts of the kinds
    /// that had objects.
    #[must_use]
    pub fn describe(&self) -> String {
        let counts = self
            .counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let scope = match &self.namespace {
            Some(ns) => format!(" (namespace {ns})"),
            None => String::new(),
        };
        let mut line = format!(
            "cluster {}{scope}: {} objects evaluated ({counts}",
            self.server,
            self.objects.len()
        );
        if self.owned > 0 {
            line.push_str(&format!(
                "; {} owned by a listed controller, checked through it",
                self.owned
            ));
        }
        line.push(')');
        line
    }
}

/// Why the cluster could not be read. Each one means "could not evaluate" (exit code 4),
/// except a list that does not parse (exit code 3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No kubeconfig (nor in-cluster configuration), or one that cannot be used.
    #[error(
        "could not evaluate the cluster: no usable kubernetes configuration: {reason} (set KUBECONFIG, pass --kubeconfig FILE, or run inside a cluster)"
    )]
    Config {
        /// What kube said.
        reason: String,
    },
    /// The API server refused a list (403): the permission that is missing.
    #[error(
        "could not evaluate the cluster: verify --cluster needs list on {resource}{scope}: the api server answered 403 forbidden ({message})"
    )]
    Forbidden {
        /// The kind that could not be listed.
        kind: &'static str,
        /// The RBAC resource (`rbac.authorization.k8s.io/clusterroles`).
        resource: String,
        /// ` in namespace NS`, ` in every namespace` or empty (cluster-scoped).
        scope: String,
        /// The API server's message.
        message: String,
    },
    /// The API server answered a list with another error (401, 404, 410, 500 …).
    #[error(
        "could not evaluate the cluster: listing {kind} ({path}) failed: the api server answered {code}: {message}"
    )]
    Api {
        /// The kind.
        kind: &'static str,
        /// The request path.
        path: String,
        /// The HTTP status code.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The API server could not be reached (connection, TLS, authentication plugin).
    #[error(
        "could not evaluate the cluster: the api server could not be reached while listing {kind} ({path}): {reason}"
    )]
    Unreachable {
        /// The kind.
        kind: &'static str,
        /// The request path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A list is not JSON, or not a list.
    #[error("cluster:{path}: the list of {kind} does not parse: {reason}")]
    Unparsable {
        /// The kind.
        kind: &'static str,
        /// The request path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl ClusterError {
    /// The exit code: 3 for a list that does not parse, 4 for everything else (could not
    /// evaluate).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unparsable { .. } => 3,
            _ => 4,
        }
    }
}

/// A client for the cluster of a kubeconfig, and the API server's URL.
///
/// With neither argument, the standard inference (`kube::Config::infer`): `KUBECONFIG`,
/// `~/.kube/config`, then the pod's service account. `kubeconfig` reads that file instead;
/// `context` picks a context other than the current one.
///
/// # Errors
///
/// [`ClusterError::Config`] when no configuration can be found or used.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<(kube::Client, String), ClusterError> {
    let config_error = |reason: String| ClusterError::Config { reason };
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match (kubeconfig, context) {
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| config_error(e.to_string()))?,
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|e| config_error(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| config_error(e.to_string()))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| config_error(e.to_string()))?,
    };
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| config_error(e.to_string()))?;
    Ok((client, server))
}

/// Lists every kind of [`KINDS`] (`scope.namespace` limits the namespaced ones), following
/// `continue` tokens, and leaves out the objects whose controller was listed. `server` is only
/// recorded (for the report).
///
/// # Errors
///
/// The first list that fails: [`ClusterError::Forbidden`] names the permission that is
/// missing; nothing is returned for the kinds that were read before it.
pub async fn read(
    client: &kube::Client,
    server: &str,
    scope: &Scope,
) -> Result<Snapshot, ClusterError> {
    let mut snapshot = Snapshot {
        server: server.to_owned(),
        namespace: scope.namespace.clone(),
        ..Snapshot::default()
    };
    for kind in &KINDS {
        let before = snapshot.objects.len();
        snapshot.requests += list_all(client, kind, scope, &mut snapshot.objects).await?;
        snapshot
            .counts
            .push((kind.kind, snapshot.objects.len() - before));
    }
    snapshot.owned = drop_owned(&mut snapshot.objects);
    tracing::info!(
        server,
        namespace = scope.namespace.as_deref().unwrap_or("*"),
        objects = snapshot.objects.len(),
        owned = snapshot.owned,
        requests = snapshot.requests,
        "read the cluster"
    );
    Ok(snapshot)
}

/// Lists one kind page by page into `out`; returns the number of requests.
async fn list_all(
    client: &kube::Client,
    kind: &ListedKind,
    scope: &Scope,
    out: &mut Vec<Json>,
) -> Result<usize, ClusterError> {
    let path = kind.path(scope.namespace.as_deref());
    let unparsable = |reason: String| ClusterError::Unparsable {
        kind: kind.kind,
        path: path.clone(),
        reason,
    };
    let mut token: Option<String> = None;
    let mut requests = 0usize;
    loop {
        let mut params = ListParams::default().limit(scope.page_size);
        if !kind.namespaced
            && kind.kind == "Namespace"
            && let Some(ns) = &scope.namespace
        {
            params = params.fields(&format!("metadata.name={ns}"));
        }
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let request = kube::core::Request::new(path.clone())
            .list(&params)
            .map_err(|e| unparsable(format!("cannot build the request: {e}")))?;
        requests += 1;
        tracing::debug!(kind = kind.kind, path = %path, page = requests, "list");
        let list: Json = client
            .request(request)
            .await
            .map_err(|e| classify(kind, &path, scope, e))?;
        let Json::Object(mut list) = list else {
            return Err(unparsable("not a JSON object".to_owned()));
        };
        match list.remove("items") {
            Some(Json::Array(items)) => {
                for item in items {
                    let Json::Object(mut item) = item else {
                        return Err(unparsable("an item is not an object".to_owned()));
                    };
                    // Items of a list carry no kind and apiVersion: the list's kind says them.
                    item.entry("apiVersion")
                        .or_insert_with(|| Json::String(kind.api_version.to_owned()));
                    item.entry("kind")
                        .or_insert_with(|| Json::String(kind.kind.to_owned()));
                    out.push(Json::Object(item));
                }
            }
            Some(Json::Null) => {}
            _ => return Err(unparsable("no `items`: not a list".to_owned())),
        }
        let next = list
            .get("metadata")
            .and_then(|m| m.get("continue"))
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        match next {
            None => return Ok(requests),
            Some(next) if token.as_deref() == Some(next.as_str()) => {
                return Err(unparsable(format!(
                    "the api server sent the continue token `{next}` twice"
                )));
            }
            Some(next) => token = Some(next),
        }
    }
}

fn classify(kind: &ListedKind, path: &str, scope: &Scope, error: kube::Error) -> ClusterError {
    match error {
        kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden {
            kind: kind.kind,
            resource: kind.resource(),
            scope: match (&scope.namespace, kind.namespaced) {
                (_, false) => String::new(),
                (Some(ns), true) => format!(" in namespace {ns}"),
                (None, true) => " in every namespace".to_owned(),
            },
            message: status.message.clone(),
        },
        kube::Error::Api(status) => ClusterError::Api {
            kind: kind.kind,
            path: path.to_owned(),
            code: status.code,
            message: status.message.clone(),
        },
        kube::Error::SerdeError(e) => ClusterError::Unparsable {
            kind: kind.kind,
            path: path.to_owned(),
            reason: e.to_string(),
        },
        other => ClusterError::Unreachable {
            kind: kind.kind,
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

fn text<'a>(object: &'a Json, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Json::as_str)
}

/// `(kind, namespace, name)` of an object.
fn key(object: &Json) -> (String, String, String) {
    (
        text(object, "/kind").unwrap_or_default().to_owned(),
        text(object, "/metadata/namespace")
            .unwrap_or_default()
            .to_owned(),
        text(object, "/metadata/name")
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Leaves out Pods, ReplicaSets and Jobs whose controller is among `objects`; returns how
/// many.
fn drop_owned(objects: &mut Vec<Json>) -> usize {
    let listed: BTreeSet<(String, String, String)> = objects.iter().map(key).collect();
    let before = objects.len();
    objects.retain(|object| {
        let (kind, namespace, _) = key(object);
        if !OWNED_KINDS.contains(&kind.as_str()) {
            return true;
        }
        let controller = object
            .pointer("/metadata/ownerReferences")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .find(|r| r.get("controller").and_then(Json::as_bool) == Some(true));
        !controller.is_some_and(|r| {
            listed.contains(&(
                text(r, "/kind").unwrap_or_default().to_owned(),
                namespace.clone(),
                text(r, "/name").unwrap_or_default().to_owned(),
            ))
        })
    });
    before - objects.len()
}

/// A JSON value as a [`Node`] with no line (line 0).
fn node(value: &Json) -> Node {
    let value = match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i128::from(i)),
            (None, Some(u), _) => Value::Int(i128::from(u)),
            (None, None, Some(f)) => Value::Float(f),
            (None, None, None) => Value::Str(n.to_string()),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::Seq(items.iter().map(node).collect()),
        Json::Object(entries) => Value::Map(entries_of(entries)),
    };
    Node { line: 0, value }
}

fn entries_of(entries: &Map<String, Json>) -> Vec<(String, Node)> {
    entries.iter().map(|(k, v)| (k.clone(), node(v))).collect()
}

/// The snapshot's objects as the checks read them: each its own source,
/// `cluster:Kind/namespace/name` (`cluster:Kind/name` when cluster-scoped), without lines.
pub(crate) fn objects(snapshot: &Snapshot) -> Vec<Object> {
    snapshot
        .objects
        .iter()
        .filter_map(|json| {
            let (kind, namespace, name) = key(json);
            let path = if namespace.is_empty() {
                format!("cluster:{kind}/{name}")
            } else {
                format!("cluster:{kind}/{namespace}/{name}")
            };
            let src = Rc::new(Source {
                path,
                text: String::new(),
            });
            Object::new(&src, node(json))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_permissions() {
        let by_kind = |k: &str| KINDS.iter().find(|x| x.kind == k).copied().unwrap();
        let cr = by_kind("ClusterRole");
        assert_eq!(
            cr.path(Some("ns")),
            "/apis/rbac.authorization.k8s.io/v1/clusterroles"
        );
        assert_eq!(cr.resource(), "rbac.authorization.k8s.io/clusterroles");
        let pod = by_kind("Pod");
        assert_eq!(pod.path(None), "/api/v1/pods");
        assert_eq!(pod.path(Some("gw")), "/api/v1/namespaces/gw/pods");
        assert_eq!(pod.resource(), "pods");
        assert_eq!(
            by_kind("CronJob").path(None),
            "/apis/batch/v1/cronjobs",
            "CronJobs are batch/v1"
        );
        assert!(KINDS.iter().all(|k| k.kind != "Secret"));
    }

    #[test]
    fn owned_objects_are_left_out_only_when_their_controller_was_listed() {
        let rs = |name: &str, owner: &str| {
            serde_json::json!({"kind": "ReplicaSet", "metadata": {"name": name, "namespace": "a",
                "ownerReferences": [{"kind": "Deployment", "name": owner, "controller": true}]}})
        };
        let mut objects = vec![
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "a"}}),
            rs("web-1", "web"),
            rs("orphan-1", "gone"),
        ];
        assert_eq!(drop_owned(&mut objects), 1);
        let names: Vec<_> = objects.iter().map(|o| key(o).2).collect();
        assert_eq!(names, ["web", "orphan-1"]);
    }

    #[test]
    fn json_becomes_nodes_without_lines() {
        let n = node(&serde_json::json!({"a": [1, "x", true, null, 0.5], "b": {"c": -2}}));
        assert_eq!(n.line, 0);
        let a = n.get("a").unwrap().items();
        assert_eq!(a[0].value, Value::Int(1));
        assert_eq!(a[1].as_str(), Some("x"));
        assert_eq!(a[2].as_bool(), Some(true));
        assert!(a[3].is_null());
        assert_eq!(a[4].value, Value::Float(0.5));
        assert_eq!(n.path(&["b", "c"]).unwrap().value, Value::Int(-2));
    }
}
