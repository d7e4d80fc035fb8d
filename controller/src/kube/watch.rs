//! The watches of Kubernetes mode: one kube-runtime watcher per kind (per namespace for
//! Secrets), each feeding changes into one channel. A watch that fails backs off and restarts
//! with a fresh list; a re-list replaces that kind's objects at once, so a resync never
//! withdraws objects transiently, and an outage changes nothing.

use futures_util::StreamExt as _;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::mpsc;

/// A kind Kubernetes mode watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Watched {
    /// `gateway.networking.k8s.io/v1 GatewayClass`
    GatewayClass,
    /// `gateway.networking.k8s.io/v1 Gateway`
    Gateway,
    /// `gateway.networking.k8s.io/v1 HTTPRoute`
    HttpRoute,
    /// `gateway.networking.k8s.io/v1 GRPCRoute`
    GrpcRoute,
    /// `gateway.networking.k8s.io/v1beta1 ReferenceGrant`
    ReferenceGrant,
    /// `v1 Service`
    Service,
    /// `discovery.k8s.io/v1 EndpointSlice`
    EndpointSlice,
    /// `v1 Namespace` (labels, for `allowedRoutes` selectors)
    Namespace,
    /// `v1 Secret`, in the namespaces the controller may read only
    Secret,
    /// `gatehouse.dev/v1alpha1 Backend`
    Backend,
    /// `gatehouse.dev/v1alpha1 SecurityPolicy`
    SecurityPolicy,
    /// `gatehouse.dev/v1alpha1 GatewayPolicy` (cluster-scoped)
    GatewayPolicy,
}

impl Watched {
    /// Every kind watched cluster-wide (everything but Secrets).
    pub const CLUSTER_WIDE: [Watched; 11] = [
        Watched::GatewayClass,
        Watched::Gateway,
        Watched::HttpRoute,
        Watched::GrpcRoute,
        Watched::ReferenceGrant,
        Watched::Service,
        Watched::EndpointSlice,
        Watched::Namespace,
        Watched::Backend,
        Watched::SecurityPolicy,
        Watched::GatewayPolicy,
    ];

    /// Group, version, kind, plural and whether it is namespaced.
    pub fn coordinates(self) -> (&'static str, &'static str, &'static str, &'static str, bool) {
        const GW: &str = "gateway.networking.k8s.io";
        const GH: &str = "gatehouse.dev";
        match self {
            Self::GatewayClass => (GW, "v1", "GatewayClass", "gatewayclasses", false),
            Self::Gateway => (GW, "v1", "Gateway", "gateways", true),
            Self::HttpRoute => (GW, "v1", "HTTPRoute", "httproutes", true),
            Self::GrpcRoute => (GW, "v1", "GRPCRoute", "grpcroutes", true),
            Self::ReferenceGrant => (GW, "v1beta1", "ReferenceGrant", "referencegrants", true),
            Self::Service => ("", "v1", "Service", "services", true),
            Self::EndpointSlice => (
                "discovery.k8s.io",
                "v1",
                "EndpointSlice",
                "endpointslices",
                true,
            ),
            Self::Namespace => ("", "v1", "Namespace", "namespaces", false),
            Self::Secret => ("", "v1", "Secret", "secrets", true),
            Self::Backend => (GH, "v1alpha1", "Backend", "backends", true),
            Self::SecurityPolicy => (GH, "v1alpha1", "SecurityPolicy", "securitypolicies", true),
            Self::GatewayPolicy => (GH, "v1alpha1", "GatewayPolicy", "gatewaypolicies", false),
        }
    }

    /// The kind's name.
    pub fn kind(self) -> &'static str {
        self.coordinates().2
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.coordinates().4
    }

    /// kube's description of the kind.
    pub fn api_resource(self) -> ApiResource {
        let (group, version, kind, plural, _) = self.coordinates();
        ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: if group.is_empty() {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.to_owned(),
            plural: plural.to_owned(),
        }
    }
}

impl std::fmt::Display for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// A change seen by a watch.
#[derive(Debug)]
pub(crate) enum Change {
    /// The watch (re)listed `kind` (in `namespace`, for a namespaced watch): these are all the
    /// objects; any other object of that kind and scope is gone.
    Listed {
        kind: Watched,
        namespace: Option<String>,
        objects: Vec<DynamicObject>,
    },
    /// An object was added or modified.
    Applied {
        kind: Watched,
        object: DynamicObject,
    },
    /// An object was deleted.
    Deleted {
        kind: Watched,
        object: DynamicObject,
    },
}

/// Starts one watch per kind (and one per namespace in `secret_namespaces` for Secrets: never a
/// cluster-wide Secret watch). They run until the receiver is dropped.
pub(crate) fn spawn_watches(
    client: &Client,
    secret_namespaces: &[String],
    tx: &mpsc::Sender<Change>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for kind in Watched::CLUSTER_WIDE {
        tasks.push(tokio::spawn(watch_kind(
            client.clone(),
            kind,
            None,
            tx.clone(),
        )));
    }
    for ns in secret_namespaces {
        tasks.push(tokio::spawn(watch_kind(
            client.clone(),
            Watched::Secret,
            Some(ns.clone()),
            tx.clone(),
        )));
    }
    tasks
}

async fn watch_kind(
    client: Client,
    kind: Watched,
    namespace: Option<String>,
    tx: mpsc::Sender<Change>,
) {
    let ar = kind.api_resource();
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    };
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed = Vec::new();
    let mut failing = false;
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Init) => {
                listed.clear();
                continue;
            }
            Ok(Event::InitApply(o)) => {
                listed.push(o);
                continue;
            }
            Ok(Event::InitDone) => {
                if failing {
                    tracing::info!(%kind, namespace = namespace.as_deref().unwrap_or(""), "watch resumed");
                    failing = false;
                }
                Change::Listed {
                    kind,
                    namespace: namespace.clone(),
                    objects: std::mem::take(&mut listed),
                }
            }
            Ok(Event::Apply(object)) => Change::Applied { kind, object },
            Ok(Event::Delete(object)) => Change::Deleted { kind, object },
            Err(error) => {
                let hint = if error.to_string().contains("403") {
                    "; the controller's RBAC must allow list and watch on this kind (see the hardened profile's roles)"
                } else {
                    "; retrying with backoff, the configuration in force stays"
                };
                tracing::warn!(%kind, namespace = namespace.as_deref().unwrap_or(""), %error, "watch failed{hint}");
                failing = true;
                continue;
            }
        };
        if tx.send(change).await.is_err() {
            return;
        }
    }
}
