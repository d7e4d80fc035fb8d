//! What one gateway's Envoy should have: its resources by type, each encoded once and
//! versioned by a hash of its encoding.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::TransportSocket;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType as TsConfig;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, Secret, UpstreamTlsContext,
    common_tls_context::ValidationContextType,
};
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

/// The xDS resource types Gatehouse serves, in make-before-break order: a resource may only
/// refer to resources of types before it (clusters and endpoints before the listeners and
/// routes that use them). Removals go in the reverse order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum ResourceType {
    /// CDS: `envoy.config.cluster.v3.Cluster`.
    Cluster,
    /// EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`.
    Endpoint,
    /// SDS: `envoy.extensions.transport_sockets.tls.v3.Secret`.
    Secret,
    /// LDS: `envoy.config.listener.v3.Listener`.
    Listener,
    /// RDS: `envoy.config.route.v3.RouteConfiguration`.
    Route,
}

impl ResourceType {
    /// Every type, in make-before-break order.
    pub const ALL: [Self; 5] = [
        Self::Cluster,
        Self::Endpoint,
        Self::Secret,
        Self::Listener,
        Self::Route,
    ];

    /// The type URL Envoy uses for this type.
    pub fn type_url(self) -> &'static str {
        match self {
            Self::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            Self::Endpoint => "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            Self::Secret => "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
            Self::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            Self::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        }
    }

    /// The type for a type URL.
    pub fn from_type_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.type_url() == url)
    }

    /// The short xDS name: CDS, EDS, SDS, LDS, RDS.
    pub fn short(self) -> &'static str {
        match self {
            Self::Cluster => "CDS",
            Self::Endpoint => "EDS",
            Self::Secret => "SDS",
            Self::Listener => "LDS",
            Self::Route => "RDS",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// One encoded resource. Encoded once when it enters a snapshot and shared by every stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// Shared with every stream that records what its client holds.
    name: Arc<str>,
    version: Arc<str>,
    body: Any,
    /// The SDS secrets a listener or cluster refers to (empty for other types).
    secrets: Vec<String>,
    /// This resource's share of its type's version: a hash of its name and version.
    digest: u128,
}

impl Resource {
    /// Encodes `message` as the resource `name`; the version is a hash of the encoding.
    pub fn new<M: Message + Name>(name: impl Into<String>, message: &M) -> Self {
        Self::from_any(
            name,
            Any {
                type_url: M::type_url(),
                value: message.encode_to_vec(),
            },
        )
    }

    /// Wraps an already encoded resource.
    pub fn from_any(name: impl Into<String>, body: Any) -> Self {
        let content = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body.value);
        let version = hex(content.as_ref().get(..12).unwrap_or_default());
        let secrets = secrets_of(&body).into_iter().collect();
        let name: String = name.into();
        let digest = share(&name, &version);
        Self {
            name: name.into(),
            version: version.into(),
            body,
            secrets,
            digest,
        }
    }

    /// The resource name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The content-hash version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The name and version as shared strings: a stream records what its client holds without
    /// copying them.
    pub(crate) fn shared_name_version(&self) -> (Arc<str>, Arc<str>) {
        (self.name.clone(), self.version.clone())
    }

    /// The encoded resource.
    pub fn body(&self) -> &Any {
        &self.body
    }

    fn digest(&self) -> u128 {
        self.digest
    }
}

/// A resource's share of its type's version: a hash of its name and version.
fn share(name: &str, version: &str) -> u128 {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(&[0]);
    ctx.update(version.as_bytes());
    let d = ctx.finish();
    let mut b = [0u8; 16];
    b.copy_from_slice(d.as_ref().get(..16).unwrap_or(&[0; 16]));
    u128::from_le_bytes(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The resources of one type, by name: a persistent map, so a snapshot that differs from the
/// last in a few resources shares everything else with it (copying one is O(1), changing one
/// resource O(log n)).
pub type Table = imbl::OrdMap<String, Arc<Resource>>;

/// The resources of one gateway, by type, plus a version per type. A type's version is a hash
/// of the set of (name, version) pairs of its resources, kept up to date as resources are
/// added and removed.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    tables: [Table; 5],
    sums: [u128; 5],
    versions: [String; 5],
}

impl PartialEq for Snapshot {
    /// Two snapshots are equal when every type's set of (name, content hash) is.
    fn eq(&self, other: &Self) -> bool {
        self.sums == other.sums
            && self
                .tables
                .iter()
                .zip(&other.tables)
                .all(|(a, b)| a.len() == b.len())
    }
}

impl Eq for Snapshot {}

impl Snapshot {
    /// An empty snapshot.
    pub fn empty() -> Self {
        Self::builder().build()
    }

    /// Starts a snapshot.
    pub fn builder() -> SnapshotBuilder {
        SnapshotBuilder::default()
    }

    /// A builder holding this snapshot's resources, to change some of them (O(1)).
    pub fn to_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder {
            tables: self.tables.clone(),
            sums: self.sums,
            secrets_dirty: false,
        }
    }

    /// The resources of type `t`, by name.
    pub fn resources(&self, t: ResourceType) -> &Table {
        &self.tables[t.index()]
    }

    /// One resource.
    pub fn get(&self, t: ResourceType, name: &str) -> Option<&Arc<Resource>> {
        self.resources(t).get(name)
    }

    /// The version of the set of resources of type `t`.
    pub fn version(&self, t: ResourceType) -> &str {
        &self.versions[t.index()]
    }

    /// Number of resources of all types.
    pub fn len(&self) -> usize {
        self.tables.iter().map(imbl::OrdMap::len).sum()
    }

    /// Whether the snapshot has no resources.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Collects resources into a [`Snapshot`].
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    tables: [Table; 5],
    sums: [u128; 5],
    /// A listener, cluster or secret was added or removed: which secrets are kept must be
    /// worked out again.
    secrets_dirty: bool,
}

impl SnapshotBuilder {
    /// Adds (or replaces) a resource of type `t`.
    pub fn insert(&mut self, t: ResourceType, resource: Resource) -> &mut Self {
        self.insert_shared(t, Arc::new(resource))
    }

    /// Adds (or replaces) a resource that is already encoded and shared.
    pub fn insert_shared(&mut self, t: ResourceType, resource: Arc<Resource>) -> &mut Self {
        let i = t.index();
        if let Some(old) = self.tables[i].get(&*resource.name) {
            if Arc::ptr_eq(old, &resource) || old.version == resource.version {
                return self;
            }
            self.sums[i] = self.sums[i].wrapping_sub(old.digest());
        }
        self.sums[i] = self.sums[i].wrapping_add(resource.digest());
        if t != ResourceType::Endpoint && t != ResourceType::Route {
            self.secrets_dirty = true;
        }
        self.tables[i].insert(resource.name.to_string(), resource);
        self
    }

    /// Removes a resource.
    pub fn remove(&mut self, t: ResourceType, name: &str) -> &mut Self {
        let i = t.index();
        if let Some(old) = self.tables[i].remove(name) {
            self.sums[i] = self.sums[i].wrapping_sub(old.digest());
            if t != ResourceType::Endpoint && t != ResourceType::Route {
                self.secrets_dirty = true;
            }
        }
        self
    }

    /// Whether a resource named `name` of type `t` is held.
    pub fn contains(&self, t: ResourceType, name: &str) -> bool {
        self.tables[t.index()].contains_key(name)
    }

    /// Adds a cluster.
    pub fn cluster(&mut self, c: &Cluster) -> &mut Self {
        self.insert(ResourceType::Cluster, Resource::new(c.name.clone(), c))
    }

    /// Adds a cluster's endpoints.
    pub fn endpoints(&mut self, e: &ClusterLoadAssignment) -> &mut Self {
        self.insert(
            ResourceType::Endpoint,
            Resource::new(e.cluster_name.clone(), e),
        )
    }

    /// Adds a listener.
    pub fn listener(&mut self, l: &Listener) -> &mut Self {
        self.insert(ResourceType::Listener, Resource::new(l.name.clone(), l))
    }

    /// Adds a route configuration.
    pub fn route(&mut self, r: &RouteConfiguration) -> &mut Self {
        self.insert(ResourceType::Route, Resource::new(r.name.clone(), r))
    }

    /// Adds a secret. It is kept only if a listener or cluster of the snapshot refers to it.
    pub fn secret(&mut self, s: &Secret) -> &mut Self {
        self.insert(ResourceType::Secret, Resource::new(s.name.clone(), s))
    }

    /// Builds the snapshot. Secrets that no listener or cluster of this snapshot refers to are
    /// dropped (and logged): a gateway's Envoy receives only the secrets its own
    /// configuration uses.
    pub fn build(mut self) -> Snapshot {
        if self.secrets_dirty {
            let mut referenced = BTreeSet::new();
            for t in [ResourceType::Listener, ResourceType::Cluster] {
                for r in self.tables[t.index()].values() {
                    referenced.extend(r.secrets.iter().map(String::as_str));
                }
            }
            let unreferenced: Vec<String> = self.tables[ResourceType::Secret.index()]
                .keys()
                .filter(|name| !referenced.contains(name.as_str()))
                .cloned()
                .collect();
            for name in unreferenced {
                tracing::warn!(secret = %name, "secret not referenced by this gateway's listeners or clusters; not served");
                self.remove(ResourceType::Secret, &name);
            }
        }
        let versions = std::array::from_fn(|i| hex(&self.sums[i].to_le_bytes()[..8]));
        Snapshot {
            tables: self.tables,
            sums: self.sums,
            versions,
        }
    }
}

/// The names of the SDS secrets a listener or cluster refers to.
fn secrets_of(body: &Any) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if body.type_url == Listener::type_url() {
        if let Ok(l) = Listener::decode(body.value.as_slice()) {
            let chains = l.filter_chains.iter().chain(l.default_filter_chain.iter());
            for ts in chains.filter_map(|c| c.transport_socket.as_ref()) {
                if let Some(ctx) = tls_context::<DownstreamTlsContext>(ts) {
                    common_secret_names(ctx.common_tls_context.as_ref(), &mut names);
                }
            }
        }
    } else if body.type_url == Cluster::type_url()
        && let Ok(c) = Cluster::decode(body.value.as_slice())
        && let Some(ctx) = c
            .transport_socket
            .as_ref()
            .and_then(tls_context::<UpstreamTlsContext>)
    {
        common_secret_names(ctx.common_tls_context.as_ref(), &mut names);
    }
    names
}

fn tls_context<M: Message + Name + Default>(ts: &TransportSocket) -> Option<M> {
    match &ts.config_type {
        Some(TsConfig::TypedConfig(any)) if any.type_url == M::type_url() => {
            M::decode(any.value.as_slice()).ok()
        }
        _ => None,
    }
}

fn common_secret_names(ctx: Option<&CommonTlsContext>, names: &mut BTreeSet<String>) {
    let Some(ctx) = ctx else { return };
    names.extend(
        ctx.tls_certificate_sds_secret_configs
            .iter()
            .map(|s| s.name.clone()),
    );
    match &ctx.validation_context_type {
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => {
            names.insert(s.name.clone());
        }
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            names.extend(
                c.validation_context_sds_secret_config
                    .iter()
                    .map(|s| s.name.clone()),
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, timeout: i64) -> Cluster {
        Cluster {
            name: name.into(),
            connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                seconds: timeout,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn versions_follow_content() {
        let mut b = Snapshot::builder();
        b.cluster(&cluster("a", 1)).cluster(&cluster("b", 1));
        let s1 = b.build();
        let mut b = s1.to_builder();
        b.cluster(&cluster("b", 1));
        let same = b.build();
        assert_eq!(s1, same, "re-adding an identical resource changes nothing");
        let mut b = s1.to_builder();
        b.cluster(&cluster("b", 2));
        let s2 = b.build();
        assert_eq!(
            s1.get(ResourceType::Cluster, "a"),
            s2.get(ResourceType::Cluster, "a")
        );
        assert_ne!(
            s1.get(ResourceType::Cluster, "b").unwrap().version(),
            s2.get(ResourceType::Cluster, "b").unwrap().version()
        );
        assert_ne!(
            s1.version(ResourceType::Cluster),
            s2.version(ResourceType::Cluster)
        );
        assert_eq!(
            s1.version(ResourceType::Listener),
            s2.version(ResourceType::Listener)
        );
    }

    #[test]
    fn unreferenced_secrets_are_dropped() {
        use envoy_types::pb::envoy::config::listener::v3::FilterChain;
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig;
        let tls = DownstreamTlsContext {
            common_tls_context: Some(CommonTlsContext {
                tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                    name: "edge/site-cert".into(),
                    sds_config: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let listener = Listener {
            name: "https".into(),
            filter_chains: vec![FilterChain {
                transport_socket: Some(TransportSocket {
                    name: "envoy.transport_sockets.tls".into(),
                    config_type: Some(TsConfig::TypedConfig(Any {
                        type_url: DownstreamTlsContext::type_url(),
                        value: tls.encode_to_vec(),
                    })),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut b = Snapshot::builder();
        b.listener(&listener)
            .secret(&Secret {
                name: "edge/site-cert".into(),
                ..Default::default()
            })
            .secret(&Secret {
                name: "other/stolen".into(),
                ..Default::default()
            });
        let s = b.build();
        let names: Vec<_> = s.resources(ResourceType::Secret).keys().cloned().collect();
        assert_eq!(names, vec!["edge/site-cert"]);
    }

    #[test]
    fn type_urls_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_type_url(t.type_url()), Some(t));
        }
        assert_eq!(
            Resource::new("x", &cluster("x", 1)).body().type_url,
            ResourceType::Cluster.type_url()
        );
    }
}
