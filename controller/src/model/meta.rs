//! Object metadata, keys and where each object came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The subset of Kubernetes `metadata` Gatehouse reads. Other fields are accepted and ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name.
    pub name: String,
    /// The object's namespace (`default` when absent, as `kubectl apply` does).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The generation, for `observedGeneration` (Kubernetes mode; 0 in file mode).
    #[serde(default)]
    pub generation: Option<i64>,
}

impl ObjectMeta {
    /// The namespace, defaulting to `default`.
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

/// The kinds of object Gatehouse reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Kind {
    /// `gateway.networking.k8s.io/v1 GatewayClass`
    GatewayClass,
    /// `gateway.networking.k8s.io/v1 Gateway`
    Gateway,
    /// `gateway.networking.k8s.io/v1 HTTPRoute`
    HTTPRoute,
    /// `gateway.networking.k8s.io/v1 GRPCRoute`
    GRPCRoute,
    /// `gateway.networking.k8s.io/v1beta1 ReferenceGrant`
    ReferenceGrant,
    /// `v1 Secret`
    Secret,
    /// `gatehouse.dev/v1alpha1 Backend`
    Backend,
    /// `gatehouse.dev/v1alpha1 SecurityPolicy`
    SecurityPolicy,
    /// `gatehouse.dev/v1alpha1 GatewayPolicy` (cluster-scoped)
    GatewayPolicy,
}

impl Kind {
    /// The kind and the API versions accepted for it.
    pub(crate) fn from_type_meta(api_version: &str, kind: &str) -> Option<Self> {
        let k = match kind {
            "GatewayClass" => Self::GatewayClass,
            "Gateway" => Self::Gateway,
            "HTTPRoute" => Self::HTTPRoute,
            "GRPCRoute" => Self::GRPCRoute,
            "ReferenceGrant" => Self::ReferenceGrant,
            "Secret" => Self::Secret,
            "Backend" => Self::Backend,
            "SecurityPolicy" => Self::SecurityPolicy,
            "GatewayPolicy" => Self::GatewayPolicy,
            _ => return None,
        };
        let ok = match k {
            Self::ReferenceGrant => {
                matches!(
                    api_version,
                    "gateway.networking.k8s.io/v1beta1" | "gateway.networking.k8s.io/v1"
                )
            }
            Self::GatewayClass | Self::Gateway | Self::HTTPRoute | Self::GRPCRoute => {
                api_version == "gateway.networking.k8s.io/v1"
            }
            Self::Secret => api_version == "v1",
            Self::Backend | Self::SecurityPolicy | Self::GatewayPolicy => {
                api_version == "gatehouse.dev/v1alpha1"
            }
        };
        ok.then_some(k)
    }

    /// The API group (`""` for core).
    pub fn group(self) -> &'static str {
        match self {
            Self::GatewayClass
            | Self::Gateway
            | Self::HTTPRoute
            | Self::GRPCRoute
            | Self::ReferenceGrant => "gateway.networking.k8s.io",
            Self::Secret => "",
            Self::Backend | Self::SecurityPolicy | Self::GatewayPolicy => "gatehouse.dev",
        }
    }

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GatewayClass => "GatewayClass",
            Self::Gateway => "Gateway",
            Self::HTTPRoute => "HTTPRoute",
            Self::GRPCRoute => "GRPCRoute",
            Self::ReferenceGrant => "ReferenceGrant",
            Self::Secret => "Secret",
            Self::Backend => "Backend",
            Self::SecurityPolicy => "SecurityPolicy",
            Self::GatewayPolicy => "GatewayPolicy",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one object: kind, namespace, name. Cluster-scoped kinds have an empty namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjectKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// A key.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Where an object was read from.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line where its document starts.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}
