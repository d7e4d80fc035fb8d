//! Gateway API to Envoy: each Gateway of a Gatehouse GatewayClass becomes one snapshot (the
//! configuration of that gateway's Envoy), plus the status of every object.
//!
//! Translation is change-driven: given the objects that changed ([`Changes`]), the translator
//! takes back what each changed route contributed (its route tables, the clusters it holds),
//! translates it again and rebuilds only those tables and clusters; a Backend or Service
//! endpoint change rebuilds its clusters and re-resolves the routes that refer to it (reverse
//! indexes kept from the last translation). Nothing else is visited. Any other change
//! translates everything, reusing every output whose inputs hash the same. Snapshots, statuses
//! and effective security are persistent maps, so a translation shares what did not change
//! with the last one. [`TranslateStats`] counts what was translated and what was reused.

mod envoy;
mod hostnames;
mod json;
mod routes;
mod security;
mod static_config;
mod status;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret as EnvoySecret, TlsCertificate, secret,
};
use gatehouse_certs::GatewayName;

use crate::model::{
    BackendObjectReference, CONTROLLER_NAME, Changes, Config, Gateway, HttpBackendRef, Kind,
    NsName, ObjectKey, Origin, ParentReference,
};
use crate::snapshot::{Resource, ResourceType, Snapshot};
pub use json::to_json;
use routes::{ResolvedBackends, RouteEntry};
pub use security::EffectiveSecurity;
pub use static_config::{StaticConfigError, static_bootstrap};
pub use status::{Condition, ObjectStatus};

/// How translation adapts to where Envoy runs.
#[derive(Clone, Debug)]
pub struct TranslateOptions {
    /// The address Envoy's listeners bind (`0.0.0.0` in a cluster, `127.0.0.1` for `up`).
    pub bind_address: String,
    /// The lowest listener port accepted (1024 for a non-root Envoy).
    pub min_port: u16,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        Self {
            bind_address: "0.0.0.0".into(),
            min_port: 1,
        }
    }
}

/// What one translation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TranslateStats {
    /// Route attachments (route × listener) translated to Envoy routes.
    pub routes_translated: usize,
    /// Route attachments reused from the previous translation.
    pub routes_reused: usize,
    /// Route configurations built and encoded.
    pub route_tables_built: usize,
    /// Route configurations reused.
    pub route_tables_reused: usize,
    /// Clusters (and their endpoints) built.
    pub clusters_built: usize,
    /// Clusters reused.
    pub clusters_reused: usize,
    /// Listeners built.
    pub listeners_built: usize,
    /// Listeners reused.
    pub listeners_reused: usize,
}

/// The result of a translation.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// Each gateway's configuration.
    pub snapshots: BTreeMap<GatewayName, Snapshot>,
    /// The status of every object.
    pub status: Statuses,
    /// The effective authentication and authorization of every programmed route attachment.
    pub security: Securities,
    /// What this translation did.
    pub stats: TranslateStats,
}

/// The effective security of one route on one listener, for admission and for `translate`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RouteSecurity {
    /// The route.
    pub route: ObjectKey,
    /// The Gateway, `NAMESPACE/NAME`.
    pub gateway: String,
    /// The listener (section) name.
    pub listener: String,
    /// The hostnames the route serves there.
    pub hostnames: Vec<String>,
    /// The effective security.
    pub security: EffectiveSecurity,
}

/// The security a route on listener `section` of Gateway `gw_ns/gw_name` inherits from the
/// Gateway's policies (what `disableInheritedAuthentication` drops), for admission.
pub(crate) fn gateway_security(
    config: &Config,
    gw_ns: &str,
    gw_name: &str,
    section: &str,
) -> EffectiveSecurity {
    security::effective(config, gw_ns, gw_name, section, Kind::Gateway, "", "")
}

/// The keys added, changed or removed between two versions of a persistent map; the parts the
/// two share are skipped without being compared.
pub(crate) fn changed_keys<K: Ord + Clone, V: PartialEq + Clone>(
    old: &imbl::OrdMap<K, V>,
    new: &imbl::OrdMap<K, V>,
) -> Vec<K> {
    if old.ptr_eq(new) {
        return Vec::new();
    }
    old.diff(new)
        .map(|d| match d {
            imbl::ordmap::DiffItem::Add(k, _)
            | imbl::ordmap::DiffItem::Update { new: (k, _), .. }
            | imbl::ordmap::DiffItem::Remove(k, _) => k.clone(),
        })
        .collect()
}

fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// A cache of outputs keyed by name, each valid for one input hash.
#[derive(Debug)]
struct Cache<V> {
    entries: HashMap<String, (u64, V)>,
    /// During a full translation: the keys it used (the others are forgotten at the end).
    used: Option<BTreeSet<String>>,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            used: None,
        }
    }
}

impl<V: Clone> Cache<V> {
    /// The cached value if its inputs hash to `input`, else builds it. Returns whether it was
    /// built.
    fn get_or_build(&mut self, key: &str, input: u64, build: impl FnOnce() -> V) -> (V, bool) {
        if let Some(used) = &mut self.used {
            used.insert(key.to_owned());
        }
        if let Some((h, v)) = self.entries.get(key)
            && *h == input
        {
            return (v.clone(), false);
        }
        let v = build();
        self.entries.insert(key.to_owned(), (input, v.clone()));
        (v, true)
    }

    /// Starts a full translation: what it does not use is forgotten by [`Cache::sweep`].
    fn start(&mut self) {
        self.used = Some(BTreeSet::new());
    }

    /// Forgets what this full translation did not use.
    fn sweep(&mut self) {
        if let Some(used) = self.used.take() {
            self.entries.retain(|k, _| used.contains(k));
        }
    }

    /// Forgets one output (its object is gone).
    fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// The status of every object, by object: a persistent map, so that a translation that
/// changes a few statuses shares the rest with the previous one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Statuses(imbl::OrdMap<ObjectKey, Arc<ObjectStatus>>);

impl Statuses {
    /// Every status, by object.
    pub fn iter(&self) -> impl Iterator<Item = &ObjectStatus> {
        self.0.values().map(Arc::as_ref)
    }

    /// Sets the status of `status.object`.
    pub fn push(&mut self, status: ObjectStatus) {
        self.0.insert(status.object.clone(), Arc::new(status));
    }

    /// The status of `object`.
    pub fn get(&self, object: &ObjectKey) -> Option<&ObjectStatus> {
        self.0.get(object).map(Arc::as_ref)
    }

    /// The status of `object`, to change it.
    pub fn get_mut(&mut self, object: &ObjectKey) -> Option<&mut ObjectStatus> {
        self.0.get_mut(object).map(Arc::make_mut)
    }

    /// Removes the status of `object`.
    pub fn remove(&mut self, object: &ObjectKey) -> Option<ObjectStatus> {
        self.0
            .remove(object)
            .map(|s| Arc::try_unwrap(s).unwrap_or_else(|s| (*s).clone()))
    }

    /// Number of statuses.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The objects whose status differs between `self` and `newer` (added, changed or
    /// removed). Shared parts of the two maps are not compared.
    pub fn changed_since(&self, newer: &Statuses) -> Vec<ObjectKey> {
        changed_keys(&self.0, &newer.0)
    }
}

impl<'a> IntoIterator for &'a Statuses {
    type Item = &'a ObjectStatus;
    type IntoIter = Box<dyn Iterator<Item = &'a ObjectStatus> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.0.values().map(Arc::as_ref))
    }
}

impl Extend<ObjectStatus> for Statuses {
    fn extend<I: IntoIterator<Item = ObjectStatus>>(&mut self, iter: I) {
        for s in iter {
            self.push(s);
        }
    }
}

impl FromIterator<ObjectStatus> for Statuses {
    fn from_iter<I: IntoIterator<Item = ObjectStatus>>(iter: I) -> Self {
        let mut s = Self::default();
        s.extend(iter);
        s
    }
}

impl serde::Serialize for Statuses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The effective security of every programmed route attachment, by route (persistent, like
/// [`Statuses`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Securities(imbl::OrdMap<ObjectKey, Arc<Vec<RouteSecurity>>>);

impl Securities {
    /// Every route attachment's security, by route.
    pub fn iter(&self) -> impl Iterator<Item = &RouteSecurity> {
        self.0.values().flat_map(|v| v.iter())
    }

    /// Adds one attachment's security.
    pub fn push(&mut self, rs: RouteSecurity) {
        Arc::make_mut(self.0.entry(rs.route.clone()).or_default()).push(rs);
    }

    /// Forgets a route's.
    fn remove(&mut self, route: &ObjectKey) {
        self.0.remove(route);
    }

    /// The attachments of `route`.
    pub fn of(&self, route: &ObjectKey) -> &[RouteSecurity] {
        self.0.get(route).map(|v| v.as_slice()).unwrap_or_default()
    }

    /// The routes whose security differs between `self` and `newer`.
    pub fn changed_since(&self, newer: &Securities) -> Vec<ObjectKey> {
        changed_keys(&self.0, &newer.0)
    }

    /// Number of attachments.
    pub fn len(&self) -> usize {
        self.0.values().map(|v| v.len()).sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Securities {
    type Item = &'a RouteSecurity;
    type IntoIter = Box<dyn Iterator<Item = &'a RouteSecurity> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.0.values().flat_map(|v| v.iter()))
    }
}

impl serde::Serialize for Securities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A listener of a Gateway that passed validation.
#[derive(Clone, Debug, Hash)]
struct ListenerInfo {
    name: String,
    port: u16,
    https: bool,
    hostname: Option<String>,
    certificates: Vec<String>,
    allowed_from: String,
    allowed_selector: BTreeMap<String, String>,
    allowed_kinds: Vec<String>,
}

/// One route attached to one listener.
#[derive(Clone, Debug)]
struct Attachment {
    listener: String,
    hostnames: Vec<String>,
}

/// A Backend (`false`) or Service (`true`) by namespace and name.
type BackendId = (bool, String, String);

/// What `r` refers to (resolved or not), from namespace `default_ns`.
fn backend_id(r: &BackendObjectReference, default_ns: &str) -> BackendId {
    let service = r.kind.as_deref().unwrap_or("Service") == "Service";
    let ns = r.namespace.as_deref().unwrap_or(default_ns);
    (service, ns.to_owned(), r.name.clone())
}

/// What one route contributed to the last translation, to take it back when it changes.
#[derive(Debug, Default)]
struct RouteState {
    /// (gateway, route table) it is in.
    tables: BTreeSet<(GatewayName, String)>,
    /// (gateway, cluster) it uses.
    clusters: BTreeSet<(GatewayName, String)>,
    /// The Backends and Services it refers to (resolved or not), directly or through its
    /// security policies.
    backends: BTreeSet<BackendId>,
    /// Its route cache entries.
    cache_keys: Vec<String>,
}

/// What the last translation built, kept to change only what a change touches.
#[derive(Debug, Default)]
struct State {
    gateways: BTreeMap<GatewayName, GatewayWork>,
    routes: HashMap<ObjectKey, RouteState>,
    /// The routes that refer to each Backend or Service.
    backend_users: HashMap<BackendId, BTreeSet<ObjectKey>>,
    /// The clusters (gateway, cluster) built from each Backend or Service.
    cluster_users: HashMap<BackendId, BTreeSet<(GatewayName, String)>>,
    status: Statuses,
    security: Securities,
    /// Whether each SecurityPolicy is valid (SecurityPolicies do not change between full
    /// translations).
    policy_valid: HashMap<NsName, bool>,
}

/// Keeps the previous translation's outputs to translate incrementally.
#[derive(Debug, Default)]
pub struct Translator {
    options: TranslateOptions,
    routes: Cache<TranslatedRoute>,
    tables: Cache<Arc<Resource>>,
    clusters: Cache<(Arc<Resource>, Arc<Resource>)>,
    listeners: Cache<Arc<Resource>>,
    state: Option<State>,
    /// Routes translated as if they did not exist (denied by admission).
    excluded: BTreeSet<ObjectKey>,
}

impl Translator {
    /// A translator with `options`.
    pub fn new(options: TranslateOptions) -> Self {
        Self {
            options,
            ..Default::default()
        }
    }

    /// Translates `config` (everything is looked at; unchanged outputs are reused).
    pub fn translate(&mut self, config: &Config) -> Translation {
        self.translate_changes(config, &Changes::everything())
    }

    /// Translates route `route` as if it did not exist (`true`: admission denied it), or as it
    /// is again. The next translation's changes must name the route (or be everything).
    pub fn exclude(&mut self, route: &ObjectKey, excluded: bool) {
        if excluded {
            self.excluded.insert(route.clone());
        } else {
            self.excluded.remove(route);
        }
    }

    /// Replaces the set of routes translated as absent. The next translation must be of
    /// everything (or name every route that changed set).
    pub fn set_excluded(&mut self, excluded: BTreeSet<ObjectKey>) {
        self.excluded = excluded;
    }

    /// Translates `config`, knowing that only `changes` changed since the last translation:
    /// only the routes, clusters and route tables those objects feed are built again, and
    /// every other output is shared with the last translation. Without a last translation,
    /// or when `changes` names anything else than routes, Backends and Service endpoints,
    /// everything is looked at.
    pub fn translate_changes(&mut self, config: &Config, changes: &Changes) -> Translation {
        let mut stats = TranslateStats::default();
        match self.state.take() {
            Some(state) if !changes.everything => {
                self.state = Some(state);
                self.patch(config, changes, &mut stats);
            }
            _ => self.full(config, &mut stats),
        }
        let state = self.state.as_ref();
        Translation {
            snapshots: state
                .map(|s| {
                    s.gateways
                        .iter()
                        .map(|(g, w)| (g.clone(), w.snapshot.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            status: state.map(|s| s.status.clone()).unwrap_or_default(),
            security: state.map(|s| s.security.clone()).unwrap_or_default(),
            stats,
        }
    }

    /// Translates everything.
    fn full(&mut self, config: &Config, stats: &mut TranslateStats) {
        self.routes.start();
        self.tables.start();
        self.clusters.start();
        self.listeners.start();
        let mut state = State::default();
        let ours = self.classes(config, &mut state.status);
        for ((ns, name), (gw, origin)) in &config.gateways {
            if !ours.contains(&gw.spec.gateway_class_name) {
                continue;
            }
            let Ok(gw_name) = format!("{ns}/{name}").parse::<GatewayName>() else {
                continue;
            };
            let (work, status) = self.gateway(config, ns, gw, origin);
            state.status.push(status);
            state.gateways.insert(gw_name, work);
        }
        let index = security::PolicyIndex::with_validity(config, |ns, name, p| {
            let valid = security::validate(p).is_ok();
            state
                .policy_valid
                .insert((ns.to_owned(), name.to_owned()), valid);
            valid
        });
        let routes: Vec<ObjectKey> = config
            .http_routes
            .keys()
            .map(|(ns, n)| ObjectKey::new(Kind::HTTPRoute, ns, n))
            .chain(
                config
                    .grpc_routes
                    .keys()
                    .map(|(ns, n)| ObjectKey::new(Kind::GRPCRoute, ns, n)),
            )
            .collect();
        for key in &routes {
            self.route(config, &index, &mut state, key, stats);
        }
        for work in state.gateways.values_mut() {
            self.assemble(config, &index, work, true, stats);
        }
        for ((ns, name), (backend, origin)) in &config.backends {
            state.status.push(backend_status(ns, name, backend, origin));
        }
        state.status.extend(security::statuses(config));
        self.routes.sweep();
        self.tables.sweep();
        self.clusters.sweep();
        self.listeners.sweep();
        self.state = Some(state);
    }

    /// Translates what `changes` touches, from the last translation.
    fn patch(&mut self, config: &Config, changes: &Changes, stats: &mut TranslateStats) {
        let Some(mut state) = self.state.take() else {
            return self.full(config, stats);
        };
        let mut redo: BTreeSet<ObjectKey> = changes.route_keys().collect();
        let mut touched: Vec<BackendId> = Vec::new();
        for (ns, name) in &changes.backends {
            let id = (false, ns.clone(), name.clone());
            let key = ObjectKey::new(Kind::Backend, ns, name);
            match config.backends.get(&(ns.clone(), name.clone())) {
                Some((b, origin)) => state.status.push(backend_status(ns, name, b, origin)),
                None => {
                    state.status.remove(&key);
                }
            }
            redo.extend(state.backend_users.get(&id).into_iter().flatten().cloned());
            touched.push(id);
        }
        touched.extend(
            changes
                .service_endpoints
                .iter()
                .map(|(ns, n)| (true, ns.clone(), n.clone())),
        );
        let policy_valid = std::mem::take(&mut state.policy_valid);
        let index = security::PolicyIndex::scanning(config, &policy_valid);
        for key in &redo {
            self.unroute(&mut state, key);
            self.route(config, &index, &mut state, key, stats);
        }
        for id in &touched {
            for (gw, cluster) in state.cluster_users.get(id).into_iter().flatten() {
                if let Some(work) = state.gateways.get_mut(gw) {
                    work.dirty_clusters.insert(cluster.clone());
                }
            }
        }
        for work in state.gateways.values_mut() {
            if !work.dirty_clusters.is_empty() || !work.dirty_tables.is_empty() {
                self.assemble(config, &index, work, false, stats);
            }
        }
        drop(index);
        state.policy_valid = policy_valid;
        self.state = Some(state);
    }

    fn classes(&self, config: &Config, status: &mut Statuses) -> BTreeSet<String> {
        let mut ours = BTreeSet::new();
        for ((_, name), (class, origin)) in &config.gateway_classes {
            if class.spec.controller_name != CONTROLLER_NAME {
                continue;
            }
            ours.insert(name.clone());
            status.push(ObjectStatus {
                object: ObjectKey::new(Kind::GatewayClass, "", name),
                origin: origin.clone(),
                conditions: vec![Condition::ok(
                    "Accepted",
                    "Accepted",
                    "handled by Gatehouse",
                )],
                parts: vec![],
            });
        }
        ours
    }

    fn gateway(
        &self,
        config: &Config,
        ns: &str,
        gw: &Gateway,
        origin: &Origin,
    ) -> (GatewayWork, ObjectStatus) {
        let mut parts = Vec::new();
        let mut listeners = Vec::new();
        let mut by_port: BTreeMap<u16, (bool, Vec<Option<String>>)> = BTreeMap::new();
        for l in &gw.spec.listeners {
            let e = by_port
                .entry(l.port)
                .or_insert((l.protocol == "HTTPS", Vec::new()));
            e.1.push(l.hostname.clone());
        }
        for l in &gw.spec.listeners {
            let mut conds = Vec::new();
            let https = l.protocol == "HTTPS";
            let mut accepted = true;
            if l.protocol != "HTTP" && l.protocol != "HTTPS" {
                conds.push(Condition::fail(
                    "Accepted",
                    "UnsupportedProtocol",
                    format!("protocol `{}` is not supported (HTTP, HTTPS)", l.protocol),
                ));
                accepted = false;
            } else if l.port < self.options.min_port {
                conds.push(Condition::fail(
                    "Accepted",
                    "PortUnavailable",
                    format!("port {} is below {}: Envoy runs without privileges; use a port of {} or more", l.port, self.options.min_port, self.options.min_port),
                ));
                accepted = false;
            } else if l.hostname.as_deref().is_some_and(|h| !hostnames::valid(h)) {
                conds.push(Condition::fail(
                    "Accepted",
                    "UnsupportedValue",
                    format!(
                        "hostname `{}` is not a valid hostname",
                        l.hostname.as_deref().unwrap_or_default()
                    ),
                ));
                accepted = false;
            }
            let (port_https, hosts) = &by_port[&l.port];
            if *port_https != https {
                conds.push(Condition::ok(
                    "Conflicted",
                    "ProtocolConflict",
                    format!("port {} is used with another protocol", l.port),
                ));
                accepted = false;
            } else if hosts.iter().filter(|h| **h == l.hostname).count() > 1 {
                conds.push(Condition::ok(
                    "Conflicted",
                    "HostnameConflict",
                    format!("another listener on port {} has the same hostname", l.port),
                ));
                accepted = false;
            } else {
                conds.push(Condition::fail("Conflicted", "NoConflicts", "no conflicts"));
            }
            let mut certificates = Vec::new();
            let mut refs_ok = true;
            if https {
                let tls = l.tls.as_ref();
                if tls
                    .and_then(|t| t.mode.as_deref())
                    .is_some_and(|m| m != "Terminate")
                {
                    conds.push(Condition::fail(
                        "Accepted",
                        "UnsupportedValue",
                        "TLS mode must be Terminate",
                    ));
                    accepted = false;
                }
                let refs = tls
                    .map(|t| t.certificate_refs.as_slice())
                    .unwrap_or_default();
                if refs.is_empty() {
                    conds.push(Condition::fail(
                        "ResolvedRefs",
                        "InvalidCertificateRef",
                        "an HTTPS listener needs tls.certificateRefs",
                    ));
                    refs_ok = false;
                }
                for r in refs {
                    let r_ns = r.namespace.as_deref().unwrap_or(ns);
                    if r.kind.as_deref().is_some_and(|k| k != "Secret")
                        || r.group.as_deref().is_some_and(|g| !g.is_empty())
                    {
                        conds.push(Condition::fail(
                            "ResolvedRefs",
                            "InvalidCertificateRef",
                            format!("`{}` is not a Secret", r.name),
                        ));
                        refs_ok = false;
                    } else if !config.reference_granted(
                        "gateway.networking.k8s.io",
                        "Gateway",
                        ns,
                        "",
                        "Secret",
                        r_ns,
                        &r.name,
                    ) {
                        conds.push(Condition::fail(
                            "ResolvedRefs",
                            "RefNotPermitted",
                            format!(
                                "no ReferenceGrant in `{r_ns}` lets this Gateway use Secret `{}`",
                                r.name
                            ),
                        ));
                        refs_ok = false;
                    } else {
                        match tls_secret(config, r_ns, &r.name) {
                            Ok(_) => certificates.push(format!("tls/{r_ns}/{}", r.name)),
                            Err(e) => {
                                conds.push(Condition::fail(
                                    "ResolvedRefs",
                                    "InvalidCertificateRef",
                                    e,
                                ));
                                refs_ok = false;
                            }
                        }
                    }
                }
            }
            if refs_ok {
                conds.push(Condition::ok(
                    "ResolvedRefs",
                    "ResolvedRefs",
                    "references resolved",
                ));
            }
            if accepted {
                conds.push(Condition::ok("Accepted", "Accepted", "listener accepted"));
            }
            let programmed = accepted && refs_ok;
            conds.push(if programmed {
                Condition::ok("Programmed", "Programmed", "listener programmed")
            } else {
                Condition::fail("Programmed", "Invalid", "listener not programmed")
            });
            parts.push((l.name.clone(), conds));
            if programmed {
                let ar = l.allowed_routes.as_ref();
                let nsr = ar.and_then(|a| a.namespaces.as_ref());
                listeners.push(ListenerInfo {
                    name: l.name.clone(),
                    port: l.port,
                    https,
                    hostname: l.hostname.clone(),
                    certificates,
                    allowed_from: nsr
                        .and_then(|n| n.from.clone())
                        .unwrap_or_else(|| "Same".into()),
                    allowed_selector: nsr
                        .and_then(|n| n.selector.as_ref())
                        .map(|s| s.match_labels.clone())
                        .unwrap_or_default(),
                    allowed_kinds: ar
                        .map(|a| a.kinds.iter().map(|k| k.kind.clone()).collect())
                        .unwrap_or_default(),
                });
            }
        }
        let any = !listeners.is_empty();
        let status = ObjectStatus {
            object: ObjectKey::new(Kind::Gateway, ns, &gw.metadata.name),
            origin: origin.clone(),
            conditions: vec![
                Condition::ok("Accepted", "Accepted", "gateway accepted"),
                if any {
                    Condition::ok(
                        "Programmed",
                        "Programmed",
                        "configuration sent to the gateway's Envoy",
                    )
                } else {
                    Condition::fail("Programmed", "Invalid", "no listener could be programmed")
                },
            ],
            parts,
        };
        (
            GatewayWork {
                namespace: ns.to_owned(),
                name: gw.metadata.name.clone(),
                listeners,
                routes: BTreeMap::new(),
                clusters: BTreeMap::new(),
                filters: BTreeMap::new(),
                dirty_tables: BTreeSet::new(),
                dirty_clusters: BTreeSet::new(),
                snapshot: Snapshot::empty(),
            },
            status,
        )
    }
}

/// The Envoy routes of one route attachment, or why it could not be translated.
type TranslatedRoute = Arc<Result<Vec<RouteEntry>, String>>;

/// One route's attachments to one route table: per attachment, its hostnames, its Envoy
/// routes, its effective security and the hash of what its Envoy routes were built from.
type TableEntries = Vec<(Vec<String>, TranslatedRoute, EffectiveSecurity, u64)>;

/// One gateway: what its snapshot is assembled from, and the snapshot.
#[derive(Debug)]
struct GatewayWork {
    namespace: String,
    name: String,
    listeners: Vec<ListenerInfo>,
    /// Route table name → the attachments of each route in it, in route order.
    routes: BTreeMap<String, BTreeMap<ObjectKey, TableEntries>>,
    /// Cluster name → (backend key, http2, number of routes using it).
    clusters: BTreeMap<String, (BackendKey, bool, usize)>,
    /// The HTTP filters of each route table's connection manager, as last built.
    filters: BTreeMap<String, Vec<HttpFilter>>,
    /// Route tables whose routes changed since the snapshot was built.
    dirty_tables: BTreeSet<String>,
    /// Clusters added, removed or whose backend changed since the snapshot was built.
    dirty_clusters: BTreeSet<String>,
    snapshot: Snapshot,
}

/// A resolved backend: a `gatehouse.dev` Backend by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct BackendKey {
    namespace: String,
    name: String,
    /// The Service port, for a Service (Kubernetes mode); `None` for a Backend.
    port: Option<u16>,
}

/// Reads a `kubernetes.io/tls` Secret: certificate chain and key, checked to belong together.
fn tls_secret(config: &Config, ns: &str, name: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    use rustls::pki_types::pem::PemObject as _;
    let Some((s, _)) = config.secrets.get(&(ns.to_owned(), name.to_owned())) else {
        return Err(format!("Secret `{ns}/{name}` not found"));
    };
    if s.secret_type.as_deref() != Some("kubernetes.io/tls") {
        return Err(format!(
            "Secret `{ns}/{name}` is not of type kubernetes.io/tls"
        ));
    }
    let (Some(crt), Some(key)) = (s.value("tls.crt"), s.value("tls.key")) else {
        return Err(format!("Secret `{ns}/{name}` lacks tls.crt or tls.key"));
    };
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&crt)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("Secret `{ns}/{name}`: tls.crt is not PEM certificates: {e}"))?;
    let der_key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| format!("Secret `{ns}/{name}`: tls.key is not a PEM private key: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "Secret `{ns}/{name}`: tls.crt holds no certificate"
        ));
    }
    rustls::sign::CertifiedKey::from_der(chain, der_key, &gatehouse_certs::provider()).map_err(
        |e| format!("Secret `{ns}/{name}`: tls.key does not match tls.crt or is unsupported ({e})"),
    )?;
    Ok((crt, key))
}

fn route_ns_allowed(config: &Config, l: &ListenerInfo, gw_ns: &str, route_ns: &str) -> bool {
    match l.allowed_from.as_str() {
        "All" => true,
        "Selector" => match config.namespace_labels.get(route_ns) {
            // Kubernetes mode: the namespace's labels.
            Some(labels) => l
                .allowed_selector
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v)),
            // File mode: only the name label is known.
            None => l
                .allowed_selector
                .iter()
                .all(|(k, v)| k == "kubernetes.io/metadata.name" && v == route_ns),
        },
        _ => gw_ns == route_ns,
    }
}

/// A route of either kind.
enum AnyRoute<'a> {
    Http(&'a crate::model::HttpRoute),
    Grpc(&'a crate::model::GrpcRoute),
}

impl AnyRoute<'_> {
    fn parent_refs(&self) -> &[ParentReference] {
        match self {
            Self::Http(r) => &r.spec.parent_refs,
            Self::Grpc(r) => &r.spec.parent_refs,
        }
    }

    fn hostnames(&self) -> &[String] {
        match self {
            Self::Http(r) => &r.spec.hostnames,
            Self::Grpc(r) => &r.spec.hostnames,
        }
    }

    fn rule_backends(&self) -> Vec<&[HttpBackendRef]> {
        match self {
            Self::Http(r) => r
                .spec
                .rules
                .iter()
                .map(|x| x.backend_refs.as_slice())
                .collect(),
            Self::Grpc(r) => r
                .spec
                .rules
                .iter()
                .map(|x| x.backend_refs.as_slice())
                .collect(),
        }
    }

    fn mirrors(&self) -> Vec<Vec<BackendObjectReference>> {
        match self {
            Self::Http(r) => r
                .spec
                .rules
                .iter()
                .map(|rule| {
                    rule.filters
                        .iter()
                        .filter_map(|f| f.request_mirror.as_ref())
                        .map(|m| m.backend_ref.clone())
                        .collect()
                })
                .collect(),
            Self::Grpc(r) => r.spec.rules.iter().map(|_| Vec::new()).collect(),
        }
    }
}

/// A backend reference resolved to a cluster.
type Resolved = (String, BackendKey, bool);

/// The route table of a listener: one per HTTP port, one per HTTPS listener.
fn table_name(l: &ListenerInfo) -> String {
    if l.https {
        format!("https-{}-{}", l.port, l.name)
    } else {
        format!("http-{}", l.port)
    }
}

impl Translator {
    /// Takes back what route `key` contributed to the last translation.
    fn unroute(&mut self, state: &mut State, key: &ObjectKey) {
        let Some(old) = state.routes.remove(key) else {
            return;
        };
        for (gw, table) in &old.tables {
            if let Some(work) = state.gateways.get_mut(gw) {
                if let Some(t) = work.routes.get_mut(table) {
                    t.remove(key);
                }
                work.dirty_tables.insert(table.clone());
            }
        }
        for (gw, cluster) in &old.clusters {
            let Some(work) = state.gateways.get_mut(gw) else {
                continue;
            };
            let gone = match work.clusters.get_mut(cluster) {
                Some(c) => {
                    c.2 = c.2.saturating_sub(1);
                    (c.2 == 0).then(|| c.0.clone())
                }
                None => None,
            };
            if let Some(bk) = gone {
                work.clusters.remove(cluster);
                work.dirty_clusters.insert(cluster.clone());
                let id = (bk.port.is_some(), bk.namespace, bk.name);
                if let Some(users) = state.cluster_users.get_mut(&id) {
                    users.remove(&(gw.clone(), cluster.clone()));
                    if users.is_empty() {
                        state.cluster_users.remove(&id);
                    }
                }
            }
        }
        for id in &old.backends {
            if let Some(users) = state.backend_users.get_mut(id) {
                users.remove(key);
                if users.is_empty() {
                    state.backend_users.remove(id);
                }
            }
        }
        for k in &old.cache_keys {
            self.routes.forget(k);
        }
        state.status.remove(key);
        state.security.remove(key);
    }

    /// Translates route `key` (if it exists) into the gateways' route tables, and records
    /// what it contributed.
    fn route(
        &mut self,
        config: &Config,
        index: &security::PolicyIndex<'_>,
        state: &mut State,
        key: &ObjectKey,
        stats: &mut TranslateStats,
    ) {
        if self.excluded.contains(key) {
            return;
        }
        let id = (key.namespace.clone(), key.name.clone());
        let (route, origin) = match key.kind {
            Kind::HTTPRoute => match config.http_routes.get(&id) {
                Some((r, o)) => (AnyRoute::Http(r), o),
                None => return,
            },
            Kind::GRPCRoute => match config.grpc_routes.get(&id) {
                Some((r, o)) => (AnyRoute::Grpc(r), o),
                None => return,
            },
            _ => return,
        };
        let (ns, name) = (key.namespace.as_str(), key.name.as_str());
        let kind = key.kind;
        let mut rs = RouteState::default();
        let mut used_clusters: Vec<(GatewayName, String, BackendKey, bool)> = Vec::new();
        let mut parts = Vec::new();
        for pr in route.parent_refs() {
            let Some((gw_name, attachments, accepted)) =
                attach_one(config, &state.gateways, ns, kind, pr, route.hostnames())
            else {
                continue;
            };
            let label = format!(
                "{gw_name}{}",
                pr.section_name
                    .as_ref()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            );
            let grpc = kind == Kind::GRPCRoute;
            let mut problems = Vec::new();
            let mut clusters: Vec<Resolved> = Vec::new();
            let mut record = |r: &BackendObjectReference| {
                rs.backends.insert(backend_id(r, ns));
            };
            let backends: Vec<ResolvedBackends> = route
                .rule_backends()
                .iter()
                .map(|refs| {
                    refs.iter()
                        .map(|r| {
                            let o = r.object_ref();
                            record(&o);
                            match resolve_backend(config, ns, kind, &o, grpc) {
                                Ok(res) => {
                                    let c = res.0.clone();
                                    clusters.push(res);
                                    (Some(c), r.weight.unwrap_or(1))
                                }
                                Err(p) => {
                                    problems.push(p);
                                    (None, r.weight.unwrap_or(1))
                                }
                            }
                        })
                        .collect()
                })
                .collect();
            let mirrors: Vec<Vec<Option<String>>> = route
                .mirrors()
                .iter()
                .map(|ms| {
                    ms.iter()
                        .map(|m| {
                            record(m);
                            match resolve_backend(config, ns, kind, m, false) {
                                Ok(res) => {
                                    let c = res.0.clone();
                                    clusters.push(res);
                                    Some(c)
                                }
                                Err(p) => {
                                    problems.push(p);
                                    None
                                }
                            }
                        })
                        .collect()
                })
                .collect();
            let refs_cond = match problems.first() {
                None => Condition::ok("ResolvedRefs", "ResolvedRefs", "references resolved"),
                Some((reason, msg)) => Condition::fail("ResolvedRefs", reason, msg.clone()),
            };
            let mut accepted = accepted;
            if accepted.status == "True" {
                let route_name = format!("{kind}/{ns}/{name}");
                for att in &attachments {
                    let Some(work) = state.gateways.get_mut(&gw_name) else {
                        continue;
                    };
                    let Some(listener) = work
                        .listeners
                        .iter()
                        .find(|l| l.name == att.listener)
                        .cloned()
                    else {
                        continue;
                    };
                    for (c, key, h2) in &clusters {
                        used_clusters.push((gw_name.clone(), c.clone(), key.clone(), *h2));
                    }
                    let (gw_ns, gw_nm) = (work.namespace.clone(), work.name.clone());
                    if let Some((policy, why)) = security::route_blocked_by(
                        index,
                        &gw_ns,
                        &gw_nm,
                        &att.listener,
                        kind,
                        ns,
                        name,
                    ) {
                        accepted = Condition::fail(
                            "Accepted",
                            "UnsupportedValue",
                            format!(
                                "SecurityPolicy `{policy}` is invalid ({why}); the route is not programmed until it is fixed"
                            ),
                        );
                        continue;
                    }
                    let eff = security::effective_indexed(
                        index,
                        &gw_ns,
                        &gw_nm,
                        &att.listener,
                        kind,
                        ns,
                        name,
                    );
                    for (r, _, policy_ns) in security::backend_refs(&eff) {
                        rs.backends.insert(backend_id(&r, &policy_ns));
                    }
                    let (policy_clusters, resolved, problems) = policy_backends(config, &eff);
                    for (c, key, h2) in resolved {
                        used_clusters.push((gw_name.clone(), c, key, h2));
                    }
                    if let Some(msg) = problems.first() {
                        accepted = Condition::fail(
                            "Accepted",
                            "UnsupportedValue",
                            format!("security policy backend: {msg}"),
                        );
                    }
                    if accepted.status != "True" {
                        continue;
                    }
                    let per_filter =
                        match security::per_route(&eff, &policy_clusters, &|policy, secret| {
                            htpasswd(config, policy, secret)
                        }) {
                            Ok(m) => m,
                            Err(e) => {
                                accepted = Condition::fail("Accepted", "UnsupportedValue", e);
                                continue;
                            }
                        };
                    let cache_key = format!("{gw_name}|{}|{route_name}", att.listener);
                    let per_filter_bytes: Vec<(&String, &Vec<u8>)> =
                        per_filter.iter().map(|(k, v)| (k, &v.value)).collect();
                    let input = match &route {
                        AnyRoute::Http(r) => hash_of(&(
                            &r.spec.rules,
                            &backends,
                            &mirrors,
                            &per_filter_bytes,
                            listener.port,
                        )),
                        AnyRoute::Grpc(r) => {
                            hash_of(&(&r.spec.rules, &backends, &per_filter_bytes))
                        }
                    };
                    let (entries, built) = self.routes.get_or_build(&cache_key, input, || {
                        Arc::new(translate_rules(
                            &route,
                            listener.port,
                            &route_name,
                            &backends,
                            &mirrors,
                            &per_filter,
                        ))
                    });
                    rs.cache_keys.push(cache_key);
                    tally(
                        built,
                        &mut stats.routes_translated,
                        &mut stats.routes_reused,
                    );
                    if let Err(e) = entries.as_ref() {
                        accepted = Condition::fail("Accepted", "UnsupportedValue", e.clone());
                        continue;
                    }
                    let table = table_name(&listener);
                    work.routes
                        .entry(table.clone())
                        .or_default()
                        .entry(key.clone())
                        .or_default()
                        .push((att.hostnames.clone(), entries, eff.clone(), input));
                    work.dirty_tables.insert(table.clone());
                    rs.tables.insert((gw_name.clone(), table));
                    state.security.push(RouteSecurity {
                        route: key.clone(),
                        gateway: gw_name.to_string(),
                        listener: att.listener.clone(),
                        hostnames: att.hostnames.clone(),
                        security: eff,
                    });
                }
            }
            parts.push((label, vec![accepted, refs_cond]));
        }
        for (gw, cluster, bk, h2) in used_clusters {
            if !rs.clusters.insert((gw.clone(), cluster.clone())) {
                continue;
            }
            let Some(work) = state.gateways.get_mut(&gw) else {
                continue;
            };
            let entry = work.clusters.entry(cluster.clone()).or_insert_with(|| {
                work.dirty_clusters.insert(cluster.clone());
                (bk.clone(), h2, 0)
            });
            entry.2 += 1;
            if entry.2 == 1 {
                state
                    .cluster_users
                    .entry((bk.port.is_some(), bk.namespace, bk.name))
                    .or_default()
                    .insert((gw, cluster));
            }
        }
        for id in &rs.backends {
            state
                .backend_users
                .entry(id.clone())
                .or_default()
                .insert(key.clone());
        }
        state.status.push(ObjectStatus {
            object: key.clone(),
            origin: origin.clone(),
            conditions: vec![],
            parts,
        });
        state.routes.insert(key.clone(), rs);
    }

    /// Brings the gateway's snapshot up to date: everything when `full`, else the clusters and
    /// route tables marked dirty (and the listeners, if a table's filters changed), reusing
    /// whatever did not change.
    fn assemble(
        &mut self,
        config: &Config,
        index: &security::PolicyIndex<'_>,
        work: &mut GatewayWork,
        full: bool,
        stats: &mut TranslateStats,
    ) {
        let mut b = if full {
            Snapshot::builder()
        } else {
            work.snapshot.to_builder()
        };
        let gw_key = format!("{}/{}", work.namespace, work.name);
        let clusters: Vec<String> = if full {
            work.clusters.keys().cloned().collect()
        } else {
            std::mem::take(&mut work.dirty_clusters)
                .into_iter()
                .collect()
        };
        for cluster in &clusters {
            let cache_key = format!("{gw_key}|{cluster}");
            let built = work
                .clusters
                .get(cluster)
                .and_then(|(key, h2, _)| self.cluster(config, &cache_key, cluster, key, *h2));
            match built {
                Some(((c, e), secrets, built)) => {
                    tally(built, &mut stats.clusters_built, &mut stats.clusters_reused);
                    b.insert_shared(ResourceType::Cluster, c);
                    b.insert_shared(ResourceType::Endpoint, e);
                    for s in &secrets {
                        b.secret(s);
                    }
                }
                None => {
                    b.remove(ResourceType::Cluster, cluster);
                    b.remove(ResourceType::Endpoint, cluster);
                    self.clusters.forget(&cache_key);
                }
            }
        }
        // Route tables: one per HTTP port and one per HTTPS listener, virtual hosts by
        // hostname, routes in Gateway API precedence.
        let all_tables: BTreeSet<String> = work.listeners.iter().map(table_name).collect();
        let tables: Vec<String> = if full {
            all_tables.iter().cloned().collect()
        } else {
            std::mem::take(&mut work.dirty_tables)
                .into_iter()
                .filter(|t| all_tables.contains(t))
                .collect()
        };
        work.dirty_tables.clear();
        work.dirty_clusters.clear();
        let mut filters_changed = full;
        for table in &tables {
            let empty = BTreeMap::new();
            let attached = work.routes.get(table).unwrap_or(&empty);
            // What each route's Envoy routes were built from identifies them (a pointer would
            // not: a freed route's memory can be reused by its replacement).
            let input = hash_of(
                &attached
                    .iter()
                    .flat_map(|(k, v)| v.iter().map(move |(h, _, _, i)| (k, h, i)))
                    .collect::<Vec<_>>(),
            );
            let (rc, built) = self
                .tables
                .get_or_build(&format!("{gw_key}|{table}"), input, || {
                    let mut hosts: BTreeMap<&String, Vec<&RouteEntry>> = BTreeMap::new();
                    for (hostnames, entries, _, _) in attached.values().flatten() {
                        if let Ok(entries) = entries.as_ref() {
                            for h in hostnames {
                                hosts.entry(h).or_default().extend(entries.iter());
                            }
                        }
                    }
                    for entries in hosts.values_mut() {
                        entries.sort_by(|a, b| a.precedence.cmp(&b.precedence));
                    }
                    Arc::new(Resource::from_any(
                        table.clone(),
                        envoy_types::pb::google::protobuf::Any {
                            type_url: <RouteConfiguration as prost::Name>::type_url(),
                            value: encode_table(table, &hosts),
                        },
                    ))
                });
            tally(
                built,
                &mut stats.route_tables_built,
                &mut stats.route_tables_reused,
            );
            b.insert_shared(ResourceType::Route, rc);
            // The HTTP filters the table's connection manager needs.
            let effs: Vec<&EffectiveSecurity> =
                attached.values().flatten().map(|(_, _, e, _)| e).collect();
            let mut policy_clusters = security::PolicyClusters::new();
            for e in &effs {
                policy_clusters.extend(policy_backends(config, e).0);
            }
            let fs = security::http_filters(&effs, &policy_clusters, &|policy, secret| {
                htpasswd(config, policy, secret)
            })
            .unwrap_or_default();
            if work.filters.get(table) != Some(&fs) {
                work.filters.insert(table.clone(), fs);
                filters_changed = true;
            }
        }
        if full {
            work.filters.retain(|t, _| all_tables.contains(t));
        }
        if filters_changed {
            self.listeners_of(config, index, work, &mut b, full, stats);
        }
        work.snapshot = b.build();
    }

    /// The cluster and endpoints of `cluster` (cached under `cache_key`), the CA secrets it
    /// needs, and whether it was built; `None` if its backend is gone.
    #[allow(clippy::type_complexity, reason = "a private helper's tuple")]
    fn cluster(
        &mut self,
        config: &Config,
        cache_key: &str,
        cluster: &str,
        key: &BackendKey,
        h2: bool,
    ) -> Option<((Arc<Resource>, Arc<Resource>), Vec<EnvoySecret>, bool)> {
        if let Some(port) = key.port {
            // A Service: the cluster depends on nothing but its name; the endpoints come from
            // the EndpointSlices, so endpoint churn changes the EDS resource only.
            let eps = service_endpoints(config, &key.namespace, &key.name, port);
            let input = hash_of(&(&eps, h2));
            let (ce, built) = self.clusters.get_or_build(cache_key, input, || {
                let c = envoy::eds_cluster(cluster, h2, None);
                let e = envoy::load_assignment(cluster, &eps);
                (
                    Arc::new(Resource::new(cluster, &c)),
                    Arc::new(Resource::new(cluster, &e)),
                )
            });
            return Some((ce, Vec::new(), built));
        }
        let (backend, _) = config
            .backends
            .get(&(key.namespace.clone(), key.name.clone()))?;
        let input = hash_of(&(&backend.spec, h2));
        let (ce, built) = self.clusters.get_or_build(cache_key, input, || {
            let tls = backend.spec.tls.as_ref().and_then(|t| {
                t.ca_certificate_refs
                    .first()
                    .map(|r| (t.sni.clone(), format!("ca/{}/{}", key.namespace, r.name)))
            });
            let c = envoy::eds_cluster(
                cluster,
                h2,
                tls.as_ref().map(|(s, c)| (s.as_str(), c.as_str())),
            );
            let eps: Vec<(String, u16)> = backend
                .spec
                .endpoints
                .iter()
                .map(|e| (e.address.clone(), e.port))
                .collect();
            let e = envoy::load_assignment(cluster, &eps);
            (
                Arc::new(Resource::new(cluster, &c)),
                Arc::new(Resource::new(cluster, &e)),
            )
        });
        let secrets = backend
            .spec
            .tls
            .iter()
            .flat_map(|t| &t.ca_certificate_refs)
            .filter_map(|r| ca_secret(config, &key.namespace, &r.name))
            .collect();
        Some((ce, secrets, built))
    }

    /// Builds the gateway's listeners (one per port) into `b`; with `full`, also the secrets
    /// they refer to (listener certificates and client CAs).
    fn listeners_of(
        &mut self,
        config: &Config,
        index: &security::PolicyIndex<'_>,
        work: &GatewayWork,
        b: &mut crate::snapshot::SnapshotBuilder,
        full: bool,
        stats: &mut TranslateStats,
    ) {
        let mut ports: BTreeMap<u16, Vec<&ListenerInfo>> = BTreeMap::new();
        for l in &work.listeners {
            ports.entry(l.port).or_default().push(l);
        }
        let filters = &work.filters;
        // Client certificates required on HTTPS listeners by Gateway policies.
        let client_ca = |l: &ListenerInfo| -> Option<(String, Vec<String>)> {
            let eff = security::effective_indexed(
                index,
                &work.namespace,
                &work.name,
                &l.name,
                Kind::Gateway,
                "",
                "",
            );
            let (policy, cc) = eff.client_certificate?;
            let policy_ns = policy.split('/').next().unwrap_or_default().to_owned();
            let r = cc.ca_certificate_refs.first()?;
            Some((
                format!("ca/{policy_ns}/{}", r.name),
                cc.required_sans.clone(),
            ))
        };
        if full {
            for l in work.listeners.iter().filter(|l| l.https) {
                if let Some((ca, _)) = client_ca(l) {
                    let mut parts = ca.splitn(3, '/').skip(1);
                    if let (Some(ns), Some(name)) = (parts.next(), parts.next())
                        && let Some(s) = ca_secret(config, ns, name)
                    {
                        b.secret(&s);
                    }
                }
            }
        }
        let gw_key = format!("{}/{}", work.namespace, work.name);
        for (port, ls) in ports {
            let https = ls.iter().any(|l| l.https);
            let name = if https {
                format!("https-{port}")
            } else {
                format!("http-{port}")
            };
            let filter_bytes: Vec<Vec<u8>> = ls
                .iter()
                .flat_map(|l| filters.get(&table_name(l)).into_iter().flatten())
                .map(prost::Message::encode_to_vec)
                .collect();
            let cas: Vec<Option<(String, Vec<String>)>> = ls
                .iter()
                .map(|l| if l.https { client_ca(l) } else { None })
                .collect();
            let input = hash_of(&(&ls, &self.options.bind_address, &filter_bytes, &cas));
            let (listener, built) =
                self.listeners
                    .get_or_build(&format!("{gw_key}|{name}"), input, || {
                        let l = if https {
                            let mut chains: Vec<envoy::TlsChain> = ls
                                .iter()
                                .map(|l| envoy::TlsChain {
                                    server_names: l.hostname.iter().cloned().collect(),
                                    certificates: l.certificates.clone(),
                                    client_ca: client_ca(l),
                                    hcm: envoy::http_connection_manager(
                                        &table_name(l),
                                        &table_name(l),
                                        filters.get(&table_name(l)).cloned().unwrap_or_default(),
                                    ),
                                })
                                .collect();
                            // The catch-all chain (no SNI) goes last.
                            chains.sort_by_key(|c| c.server_names.is_empty());
                            envoy::https_listener(&name, &self.options.bind_address, port, &chains)
                        } else {
                            let hcm = envoy::http_connection_manager(
                                &name,
                                &name,
                                filters.get(&name).cloned().unwrap_or_default(),
                            );
                            envoy::http_listener(&name, &self.options.bind_address, port, &hcm)
                        };
                        Arc::new(Resource::new(name.clone(), &l))
                    });
            tally(
                built,
                &mut stats.listeners_built,
                &mut stats.listeners_reused,
            );
            b.insert_shared(ResourceType::Listener, listener);
        }
        if full {
            // Listener certificates.
            for l in &work.listeners {
                for cert in &l.certificates {
                    let mut parts = cert.splitn(3, '/').skip(1);
                    if let (Some(ns), Some(name)) = (parts.next(), parts.next())
                        && let Ok((crt, key)) = tls_secret(config, ns, name)
                    {
                        b.secret(&EnvoySecret {
                            name: cert.clone(),
                            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                                certificate_chain: Some(inline(crt)),
                                private_key: Some(inline(key)),
                                ..Default::default()
                            })),
                        });
                    }
                }
            }
        }
    }
}

/// The status of a Backend.
fn backend_status(
    ns: &str,
    name: &str,
    backend: &crate::model::Backend,
    origin: &Origin,
) -> ObjectStatus {
    let bad: Vec<&String> = backend
        .spec
        .endpoints
        .iter()
        .filter(|e| e.address.parse::<std::net::IpAddr>().is_err())
        .map(|e| &e.address)
        .collect();
    let cond = if backend.spec.endpoints.is_empty() {
        Condition::fail(
            "Accepted",
            "Invalid",
            "a Backend needs at least one endpoint",
        )
    } else if let Some(b) = bad.first() {
        Condition::fail(
            "Accepted",
            "Invalid",
            format!("endpoint address `{b}` is not an IP address (file mode resolves no names)"),
        )
    } else {
        Condition::ok("Accepted", "Accepted", "backend accepted")
    };
    ObjectStatus {
        object: ObjectKey::new(Kind::Backend, ns, name),
        origin: origin.clone(),
        conditions: vec![cond],
        parts: vec![],
    }
}

/// A `RouteConfiguration` named `name` with one virtual host per hostname (its name and only
/// domain), routes in the given order, written from the routes' own encodings: the bytes prost
/// writes for the same message, without copying a route.
fn encode_table(name: &str, hosts: &BTreeMap<&String, Vec<&RouteEntry>>) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    fn field(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(bytes.len() as u64, buf);
        buf.extend_from_slice(bytes);
    }
    // An empty string is not written (a proto3 default); a message always is.
    fn string_len(tag: u32, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            key_len(tag) + encoded_len_varint(len as u64) + len
        }
    }
    fn message_len(tag: u32, len: usize) -> usize {
        key_len(tag) + encoded_len_varint(len as u64) + len
    }
    let mut buf = Vec::new();
    // RouteConfiguration: name = 1, virtual_hosts = 2. VirtualHost: name = 1, domains = 2
    // (repeated: every element written), routes = 3.
    if !name.is_empty() {
        field(1, name.as_bytes(), &mut buf);
    }
    for (host, routes) in hosts {
        let vh_len = string_len(1, host.len())
            + message_len(2, host.len())
            + routes
                .iter()
                .map(|r| message_len(3, r.route.len()))
                .sum::<usize>();
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(vh_len as u64, &mut buf);
        if !host.is_empty() {
            field(1, host.as_bytes(), &mut buf);
        }
        field(2, host.as_bytes(), &mut buf);
        for r in routes {
            field(3, &r.route, &mut buf);
        }
    }
    buf
}

fn inline(bytes: Vec<u8>) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes)),
        ..Default::default()
    }
}

/// A CA bundle Secret (`ca.crt`) as an SDS validation context.
fn ca_secret(config: &Config, ns: &str, name: &str) -> Option<EnvoySecret> {
    let (s, _) = config.secrets.get(&(ns.to_owned(), name.to_owned()))?;
    let ca = s.value("ca.crt")?;
    Some(EnvoySecret {
        name: format!("ca/{ns}/{name}"),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(ca)),
                ..Default::default()
            },
        )),
    })
}

fn translate_rules(
    route: &AnyRoute<'_>,
    listener_port: u16,
    route_name: &str,
    backends: &[ResolvedBackends],
    mirrors: &[Vec<Option<String>>],
    per_filter: &BTreeMap<String, envoy_types::pb::google::protobuf::Any>,
) -> Result<Vec<RouteEntry>, String> {
    let none = per_filter;
    let mut all = Vec::new();
    match route {
        AnyRoute::Http(r) => {
            for (i, rule) in r.spec.rules.iter().enumerate() {
                let m = mirrors.get(i).map(Vec::as_slice).unwrap_or_default();
                all.extend(
                    routes::http_rule(listener_port, route_name, i, rule, &backends[i], m, none)
                        .map_err(|e| format!("rule {i}: {e}"))?,
                );
            }
        }
        AnyRoute::Grpc(r) => {
            for (i, rule) in r.spec.rules.iter().enumerate() {
                all.extend(
                    routes::grpc_rule(route_name, i, rule, &backends[i], none)
                        .map_err(|e| format!("rule {i}: {e}"))?,
                );
            }
        }
    }
    Ok(all)
}

/// Resolves a backend reference of a route in `ns` to a cluster, or says why not
/// (`(reason, message)`).
fn resolve_backend(
    config: &Config,
    ns: &str,
    kind: Kind,
    r: &BackendObjectReference,
    h2: bool,
) -> Result<Resolved, (&'static str, String)> {
    let group = r.group.as_deref().unwrap_or("");
    let k = r.kind.as_deref().unwrap_or("Service");
    let target_ns = r.namespace.as_deref().unwrap_or(ns);
    match (group, k) {
        ("gatehouse.dev", "Backend") => {}
        ("", "Service") => return resolve_service(config, ns, kind, r, h2),
        _ => {
            return Err((
                "InvalidKind",
                format!(
                    "backend kind `{group}/{k}` is not supported (Service, gatehouse.dev/Backend)"
                ),
            ));
        }
    }
    if !config.reference_granted(
        "gateway.networking.k8s.io",
        kind.as_str(),
        ns,
        "gatehouse.dev",
        "Backend",
        target_ns,
        &r.name,
    ) {
        return Err((
            "RefNotPermitted",
            format!(
                "no ReferenceGrant in `{target_ns}` lets {kind}s in `{ns}` use Backend `{}`",
                r.name
            ),
        ));
    }
    let Some((b, _)) = config.backends.get(&(target_ns.to_owned(), r.name.clone())) else {
        return Err((
            "BackendNotFound",
            format!("Backend `{target_ns}/{}` not found", r.name),
        ));
    };
    if b.spec.endpoints.is_empty()
        || b.spec
            .endpoints
            .iter()
            .any(|e| e.address.parse::<std::net::IpAddr>().is_err())
    {
        return Err((
            "BackendNotFound",
            format!(
                "Backend `{target_ns}/{}` is not valid (see its status)",
                r.name
            ),
        ));
    }
    let cluster = format!(
        "backend/{target_ns}/{}{}",
        r.name,
        if h2 { "/h2" } else { "" }
    );
    Ok((
        cluster,
        BackendKey {
            namespace: target_ns.to_owned(),
            name: r.name.clone(),
            port: None,
        },
        h2,
    ))
}

/// Resolves a reference to a Service port (Kubernetes mode): the cluster's endpoints come
/// from the Service's EndpointSlices, through EDS.
fn resolve_service(
    config: &Config,
    ns: &str,
    kind: Kind,
    r: &BackendObjectReference,
    h2: bool,
) -> Result<Resolved, (&'static str, String)> {
    let target_ns = r.namespace.as_deref().unwrap_or(ns);
    if !config.reference_granted(
        "gateway.networking.k8s.io",
        kind.as_str(),
        ns,
        "",
        "Service",
        target_ns,
        &r.name,
    ) {
        return Err((
            "RefNotPermitted",
            format!(
                "no ReferenceGrant in `{target_ns}` lets {kind}s in `{ns}` use Service `{}`",
                r.name
            ),
        ));
    }
    let Some((svc, _)) = config.services.get(&(target_ns.to_owned(), r.name.clone())) else {
        let hint = if config.services.is_empty() && config.endpoint_slices.is_empty() {
            "; Services need Kubernetes mode: in file mode use a gatehouse.dev Backend"
        } else {
            ""
        };
        return Err((
            "BackendNotFound",
            format!("Service `{target_ns}/{}` not found{hint}", r.name),
        ));
    };
    let Some(port) = r.port else {
        return Err((
            "UnsupportedValue",
            format!(
                "a reference to Service `{target_ns}/{}` needs a port",
                r.name
            ),
        ));
    };
    let has_port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ps| ps.iter().any(|p| i32::from(port) == p.port));
    if !has_port {
        return Err((
            "BackendNotFound",
            format!("Service `{target_ns}/{}` has no port {port}", r.name),
        ));
    }
    let cluster = format!(
        "service/{target_ns}/{}/{port}{}",
        r.name,
        if h2 { "/h2" } else { "" }
    );
    Ok((
        cluster,
        BackendKey {
            namespace: target_ns.to_owned(),
            name: r.name.clone(),
            port: Some(port),
        },
        h2,
    ))
}

/// The ready endpoints of port `port` of Service `ns/name`, from its EndpointSlices (IPv4 and
/// IPv6 slices; FQDN slices are ignored), sorted and without duplicates.
fn service_endpoints(config: &Config, ns: &str, name: &str, port: u16) -> Vec<(String, u16)> {
    let Some((svc, _)) = config.services.get(&(ns.to_owned(), name.to_owned())) else {
        return Vec::new();
    };
    let port_name = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ps| ps.iter().find(|p| p.port == i32::from(port)))
        .map(|p| p.name.clone().unwrap_or_default())
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for ((slice_ns, _), (slice, _)) in &config.endpoint_slices {
        if slice_ns != ns
            || slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(crate::model::SERVICE_NAME_LABEL))
                .map(String::as_str)
                != Some(name)
            || !matches!(slice.address_type.as_str(), "IPv4" | "IPv6")
        {
            continue;
        }
        let Some(target) = slice.ports.iter().flatten().find_map(|p| {
            (p.name.clone().unwrap_or_default() == port_name)
                .then_some(p.port)
                .flatten()
                .and_then(|p| u16::try_from(p).ok())
        }) else {
            continue;
        };
        for e in &slice.endpoints {
            // Ready unless said otherwise (the API's meaning of an absent condition).
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for a in &e.addresses {
                if a.parse::<std::net::IpAddr>().is_ok() {
                    out.insert((a.clone(), target));
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Attaches a route to the listeners a parent reference selects. `None` when the parent is not
/// a Gatehouse Gateway (another controller's business: no status from us).
fn attach_one(
    config: &Config,
    gateways: &BTreeMap<GatewayName, GatewayWork>,
    route_ns: &str,
    kind: Kind,
    pr: &ParentReference,
    route_hosts: &[String],
) -> Option<(GatewayName, Vec<Attachment>, Condition)> {
    if pr
        .group
        .as_deref()
        .is_some_and(|g| g != "gateway.networking.k8s.io")
        || pr.kind.as_deref().is_some_and(|k| k != "Gateway")
    {
        return None;
    }
    let gw_ns = pr.namespace.as_deref().unwrap_or(route_ns);
    let gw_name: GatewayName = format!("{gw_ns}/{}", pr.name).parse().ok()?;
    let Some(work) = gateways.get(&gw_name) else {
        // A Gateway that does not exist at all is reported; one of another class is not ours.
        if config
            .gateways
            .contains_key(&(gw_ns.to_owned(), pr.name.clone()))
        {
            return None;
        }
        return Some((
            gw_name,
            vec![],
            Condition::fail(
                "Accepted",
                "NoMatchingParent",
                format!("Gateway `{gw_ns}/{}` not found", pr.name),
            ),
        ));
    };
    let candidates: Vec<&ListenerInfo> = work
        .listeners
        .iter()
        .filter(|l| {
            pr.section_name.as_ref().is_none_or(|s| *s == l.name)
                && pr.port.is_none_or(|p| p == l.port)
        })
        .collect();
    if candidates.is_empty() {
        return Some((
            gw_name,
            vec![],
            Condition::fail(
                "Accepted",
                "NoMatchingParent",
                "no listener of the Gateway matches the parent reference's sectionName and port",
            ),
        ));
    }
    let allowed: Vec<&&ListenerInfo> = candidates
        .iter()
        .filter(|l| route_ns_allowed(config, l, gw_ns, route_ns))
        .filter(|l| {
            l.allowed_kinds.is_empty() || l.allowed_kinds.iter().any(|k| k == kind.as_str())
        })
        .collect();
    if allowed.is_empty() {
        return Some((
            gw_name,
            vec![],
            Condition::fail(
                "Accepted",
                "NotAllowedByListeners",
                format!("the listeners do not allow {kind}s from namespace `{route_ns}`"),
            ),
        ));
    }
    let attachments: Vec<Attachment> = allowed
        .iter()
        .filter_map(|l| {
            hostnames::intersect(l.hostname.as_deref(), route_hosts).map(|hostnames| Attachment {
                listener: l.name.clone(),
                hostnames,
            })
        })
        .collect();
    if attachments.is_empty() {
        return Some((
            gw_name,
            vec![],
            Condition::fail(
                "Accepted",
                "NoMatchingListenerHostname",
                "no listener hostname matches the route's hostnames",
            ),
        ));
    }
    Some((
        gw_name,
        attachments,
        Condition::ok("Accepted", "Accepted", "route accepted"),
    ))
}

/// The `.htpasswd` of a basic-auth Secret in the namespace of `policy` (`ns/name`).
fn htpasswd(config: &Config, policy: &str, secret: &str) -> Option<String> {
    let ns = policy.split('/').next()?;
    let (s, _) = config.secrets.get(&(ns.to_owned(), secret.to_owned()))?;
    String::from_utf8(s.value(".htpasswd")?).ok()
}

/// Resolves the backends an effective security needs (JWKS, extAuth): the cluster of each
/// reference, the clusters to add, and what could not be resolved.
fn policy_backends(
    config: &Config,
    e: &EffectiveSecurity,
) -> (security::PolicyClusters, Vec<Resolved>, Vec<String>) {
    let mut clusters = security::PolicyClusters::new();
    let mut resolved = Vec::new();
    let mut problems = Vec::new();
    for (r, h2, policy_ns) in security::backend_refs(e) {
        match resolve_backend(config, &policy_ns, Kind::SecurityPolicy, &r, h2) {
            Ok(res) => {
                clusters.insert(r, res.0.clone());
                resolved.push(res);
            }
            Err((_, msg)) => problems.push(msg),
        }
    }
    (clusters, resolved, problems)
}

/// Counts one output as built or reused.
fn tally(built: bool, built_count: &mut usize, reused_count: &mut usize) {
    *(if built { built_count } else { reused_count }) += 1;
}
