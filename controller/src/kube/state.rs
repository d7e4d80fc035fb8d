//! What the watches have seen, as the same [`Config`] file mode reads: each object parsed into
//! the model when it arrives. An object that does not parse is reported and its last valid
//! version stays in force, as a bad file does in file mode.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use kube::api::DynamicObject;
use serde::de::DeserializeOwned;

use super::watch::{Change, Watched};
use crate::model::{
    Changes, Config, Diagnostic, EndpointSlice, Objects, Origin, SERVICE_NAME_LABEL,
};

/// What the API last said of an object the controller writes status on.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Observed {
    /// `metadata.generation`.
    pub(crate) generation: Option<i64>,
    /// `status`, as served.
    pub(crate) status: serde_json::Value,
    /// `metadata.resourceVersion`.
    pub(crate) resource_version: Option<String>,
}

/// The cluster as the watches have seen it.
#[derive(Debug, Default)]
pub(crate) struct ClusterState {
    /// The configuration: every valid object.
    pub(crate) config: Config,
    /// Objects whose current version is invalid, with why.
    invalid: BTreeMap<(Watched, String, String), Diagnostic>,
    /// Generation and status of each object, by kind, namespace and name.
    pub(crate) observed: HashMap<(Watched, String, String), Observed>,
    /// Secrets as the API serves them (the gateways' xDS certificate Secrets among them).
    pub(crate) secrets: BTreeMap<(String, String), k8s_openapi::api::core::v1::Secret>,
    /// Counts changes to `secrets`, so that work depending on them knows when to look again.
    pub(crate) secret_changes: u64,
    /// Watches that have listed at least once: kind and namespace (for namespaced watches).
    listed: BTreeSet<(Watched, Option<String>)>,
    /// What changed in `config` since [`ClusterState::take_changes`] was last called.
    changes: Changes,
}

/// Where an object read from the API came from, for diagnostics and status.
pub(crate) fn origin(kind: Watched, ns: &str, name: &str) -> Origin {
    let path = if ns.is_empty() {
        format!("kubernetes:{kind}/{name}")
    } else {
        format!("kubernetes:{kind}/{ns}/{name}")
    };
    Origin {
        file: PathBuf::from(path),
        line: 0,
    }
}

fn parse<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Puts an object in force; whether that changed what was in force.
fn put<T: PartialEq>(map: &mut Objects<T>, ns: &str, name: &str, v: T, kind: Watched) -> bool {
    let entry = (v, origin(kind, ns, name));
    let key = (ns.to_owned(), name.to_owned());
    if map.get(&key) == Some(&entry) {
        return false;
    }
    map.insert(key, entry);
    true
}

/// The Service an EndpointSlice belongs to.
fn slice_service(slice: &EndpointSlice) -> Option<&String> {
    slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)
}

fn keys<T>(map: &Objects<T>) -> Vec<(String, String)> {
    map.keys().cloned().collect()
}

impl ClusterState {
    /// Whether every watch has listed once: before that, the configuration is partial and is
    /// not published.
    pub(crate) fn synced(&self, secret_namespaces: &[String]) -> bool {
        Watched::CLUSTER_WIDE
            .iter()
            .all(|k| self.listed.contains(&(*k, None)))
            && secret_namespaces
                .iter()
                .all(|ns| self.listed.contains(&(Watched::Secret, Some(ns.clone()))))
    }

    /// Problems with the objects read, each with the object and what to fix.
    pub(crate) fn diagnostics(&self) -> Vec<Diagnostic> {
        self.invalid.values().cloned().collect()
    }

    /// What changed in the configuration since the last call. A re-list changes everything, so
    /// the first call after the initial lists says everything.
    pub(crate) fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// Records that the object `kind` `ns`/`name` changed in the configuration.
    fn note(&mut self, kind: Watched, ns: &str, name: &str) {
        let key = (ns.to_owned(), name.to_owned());
        match kind {
            Watched::HttpRoute => {
                self.changes.http_routes.insert(key);
            }
            Watched::GrpcRoute => {
                self.changes.grpc_routes.insert(key);
            }
            Watched::Backend => {
                self.changes.backends.insert(key);
            }
            // The Service of the slice as it is now (the caller adds the one it had before).
            Watched::EndpointSlice => {
                if let Some(service) = self.endpoints_service(ns, name) {
                    self.changes.service_endpoints.insert(service);
                }
            }
            Watched::GatewayClass
            | Watched::Gateway
            | Watched::ReferenceGrant
            | Watched::Service
            | Watched::Namespace
            | Watched::Secret
            | Watched::SecurityPolicy
            | Watched::GatewayPolicy => self.changes.everything = true,
        }
    }

    /// The Service (namespace and name) of the EndpointSlice `ns`/`name` in force, if any.
    fn endpoints_service(&self, ns: &str, name: &str) -> Option<(String, String)> {
        self.config
            .endpoint_slices
            .get(&(ns.to_owned(), name.to_owned()))
            .and_then(|(s, _)| slice_service(s))
            .map(|service| (ns.to_owned(), service.clone()))
    }

    /// Applies one change.
    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Applied { kind, object } => self.upsert(kind, object),
            Change::Deleted { kind, object } => {
                let (ns, name) = ns_name(kind, &object);
                self.remove(kind, &ns, &name);
            }
            Change::Listed {
                kind,
                namespace,
                objects,
            } => {
                // A re-list may replace anything of the kind.
                self.changes.everything = true;
                let present: BTreeSet<(String, String)> =
                    objects.iter().map(|o| ns_name(kind, o)).collect();
                for (ns, name) in self.keys(kind) {
                    let in_scope = namespace.as_ref().is_none_or(|n| *n == ns);
                    if in_scope && !present.contains(&(ns.clone(), name.clone())) {
                        self.remove(kind, &ns, &name);
                    }
                }
                for o in objects {
                    self.upsert(kind, o);
                }
                self.listed.insert((kind, namespace));
            }
        }
    }

    fn keys(&self, kind: Watched) -> Vec<(String, String)> {
        let c = &self.config;
        match kind {
            Watched::GatewayClass => keys(&c.gateway_classes),
            Watched::Gateway => keys(&c.gateways),
            Watched::HttpRoute => keys(&c.http_routes),
            Watched::GrpcRoute => keys(&c.grpc_routes),
            Watched::ReferenceGrant => keys(&c.reference_grants),
            Watched::Service => keys(&c.services),
            Watched::EndpointSlice => keys(&c.endpoint_slices),
            Watched::Namespace => c
                .namespace_labels
                .keys()
                .map(|n| (String::new(), n.clone()))
                .collect(),
            Watched::Secret => self.secrets.keys().cloned().collect(),
            Watched::Backend => keys(&c.backends),
            Watched::SecurityPolicy => keys(&c.security_policies),
            Watched::GatewayPolicy => keys(&c.gateway_policies),
        }
        .into_iter()
        .chain(
            self.invalid
                .keys()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, ns, name)| (ns.clone(), name.clone())),
        )
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
    }

    fn upsert(&mut self, kind: Watched, object: DynamicObject) {
        let (ns, name) = ns_name(kind, &object);
        self.observed.insert(
            (kind, ns.clone(), name.clone()),
            Observed {
                generation: object.metadata.generation,
                status: object
                    .data
                    .get("status")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null),
                resource_version: object.metadata.resource_version.clone(),
            },
        );
        let value = match serde_json::to_value(&object) {
            Ok(v) => v,
            Err(e) => {
                self.invalid(kind, &ns, &name, e.to_string());
                return;
            }
        };
        // The Service the slice belongs to before the change.
        let service_before = match kind {
            Watched::EndpointSlice => self.endpoints_service(&ns, &name),
            _ => None,
        };
        let c = &mut self.config;
        let result = match kind {
            Watched::GatewayClass => {
                parse(value).map(|o| put(&mut c.gateway_classes, &ns, &name, o, kind))
            }
            Watched::Gateway => parse(value).map(|o| put(&mut c.gateways, &ns, &name, o, kind)),
            Watched::HttpRoute => {
                parse(value).map(|o| put(&mut c.http_routes, &ns, &name, o, kind))
            }
            Watched::GrpcRoute => {
                parse(value).map(|o| put(&mut c.grpc_routes, &ns, &name, o, kind))
            }
            Watched::ReferenceGrant => {
                parse(value).map(|o| put(&mut c.reference_grants, &ns, &name, o, kind))
            }
            Watched::Service => parse(value).map(|o| put(&mut c.services, &ns, &name, o, kind)),
            Watched::EndpointSlice => {
                parse(value).map(|o| put(&mut c.endpoint_slices, &ns, &name, o, kind))
            }
            Watched::Namespace => {
                let labels = object.metadata.labels.clone().unwrap_or_default();
                Ok(c.namespace_labels.insert(name.clone(), labels.clone()) != Some(labels))
            }
            Watched::Secret => {
                parse::<k8s_openapi::api::core::v1::Secret>(value.clone()).and_then(|raw| {
                    let model = parse(value)?;
                    let changed = put(&mut c.secrets, &ns, &name, model, kind);
                    self.secrets.insert((ns.clone(), name.clone()), raw);
                    self.secret_changes += 1;
                    Ok(changed)
                })
            }
            Watched::Backend => parse(value).map(|o| put(&mut c.backends, &ns, &name, o, kind)),
            Watched::SecurityPolicy => {
                parse(value).map(|o| put(&mut c.security_policies, &ns, &name, o, kind))
            }
            Watched::GatewayPolicy => {
                parse(value).map(|o| put(&mut c.gateway_policies, &ns, &name, o, kind))
            }
        };
        match result {
            Ok(changed) => {
                if changed {
                    self.note(kind, &ns, &name);
                    self.changes.service_endpoints.extend(service_before);
                }
                self.invalid.remove(&(kind, ns, name));
            }
            Err(e) => self.invalid(kind, &ns, &name, e),
        }
    }

    fn invalid(&mut self, kind: Watched, ns: &str, name: &str, why: String) {
        let o = origin(kind, ns, name);
        self.invalid.insert(
            (kind, ns.to_owned(), name.to_owned()),
            Diagnostic {
                file: o.file,
                line: 0,
                message: format!(
                    "invalid {kind}: {why}; its last valid version (if any) stays in force until it is fixed"
                ),
            },
        );
    }

    fn remove(&mut self, kind: Watched, ns: &str, name: &str) {
        let key = (ns.to_owned(), name.to_owned());
        let service_before = match kind {
            Watched::EndpointSlice => self.endpoints_service(ns, name),
            _ => None,
        };
        let c = &mut self.config;
        let removed = match kind {
            Watched::GatewayClass => c.gateway_classes.remove(&key).is_some(),
            Watched::Gateway => c.gateways.remove(&key).is_some(),
            Watched::HttpRoute => c.http_routes.remove(&key).is_some(),
            Watched::GrpcRoute => c.grpc_routes.remove(&key).is_some(),
            Watched::ReferenceGrant => c.reference_grants.remove(&key).is_some(),
            Watched::Service => c.services.remove(&key).is_some(),
            Watched::EndpointSlice => c.endpoint_slices.remove(&key).is_some(),
            Watched::Namespace => c.namespace_labels.remove(name).is_some(),
            Watched::Secret => {
                self.secrets.remove(&key);
                self.secret_changes += 1;
                c.secrets.remove(&key).is_some()
            }
            Watched::Backend => c.backends.remove(&key).is_some(),
            Watched::SecurityPolicy => c.security_policies.remove(&key).is_some(),
            Watched::GatewayPolicy => c.gateway_policies.remove(&key).is_some(),
        };
        if removed {
            self.note(kind, ns, name);
            self.changes.service_endpoints.extend(service_before);
        }
        self.invalid.remove(&(kind, key.0.clone(), key.1.clone()));
        self.observed.remove(&(kind, key.0, key.1));
    }
}

/// Namespace (empty for cluster-scoped kinds) and name.
fn ns_name(kind: Watched, o: &DynamicObject) -> (String, String) {
    let ns = if kind.namespaced() {
        o.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into())
    } else {
        String::new()
    };
    (ns, o.metadata.name.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{Value, json};

    use super::*;

    fn object(kind: Watched, ns: &str, name: &str, data: Value) -> DynamicObject {
        let mut o = DynamicObject::new(name, &kind.api_resource()).data(data);
        if kind.namespaced() {
            o = o.within(ns);
        }
        o
    }

    fn route(name: &str, host: &str) -> DynamicObject {
        object(
            Watched::HttpRoute,
            "ns",
            name,
            json!({"spec": {"hostnames": [host]}}),
        )
    }

    fn slice(name: &str, service: &str, address: &str) -> DynamicObject {
        let mut o = object(
            Watched::EndpointSlice,
            "ns",
            name,
            json!({"addressType": "IPv4", "endpoints": [{"addresses": [address]}]}),
        );
        o.metadata.labels = Some([(SERVICE_NAME_LABEL.to_owned(), service.to_owned())].into());
        o
    }

    fn applied(kind: Watched, object: DynamicObject) -> Change {
        Change::Applied { kind, object }
    }

    fn names(names: &[&str]) -> BTreeSet<(String, String)> {
        names
            .iter()
            .map(|n| ("ns".to_owned(), (*n).to_owned()))
            .collect()
    }

    #[test]
    fn routes_and_backends_are_named() {
        let mut state = ClusterState::default();
        assert!(state.take_changes().is_empty());

        state.apply(applied(Watched::HttpRoute, route("r1", "a.example")));
        state.apply(applied(Watched::HttpRoute, route("r2", "a.example")));
        let c = state.take_changes();
        assert_eq!(c.http_routes, names(&["r1", "r2"]));
        assert!(!c.everything);
        assert!(state.take_changes().is_empty(), "taken");

        // Only the status changed (the controller's own write): nothing in the model did.
        let mut with_status = route("r1", "a.example");
        with_status.data["status"] = json!({"parents": []});
        state.apply(applied(Watched::HttpRoute, with_status));
        assert!(state.take_changes().is_empty());

        state.apply(applied(Watched::HttpRoute, route("r1", "b.example")));
        assert_eq!(state.take_changes().http_routes, names(&["r1"]));

        // An invalid version: the last valid one stays, nothing changed.
        state.apply(applied(
            Watched::HttpRoute,
            object(
                Watched::HttpRoute,
                "ns",
                "r1",
                json!({"spec": {"hostnamez": []}}),
            ),
        ));
        assert!(state.take_changes().is_empty());
        assert_eq!(state.diagnostics().len(), 1);

        state.apply(Change::Deleted {
            kind: Watched::HttpRoute,
            object: route("r2", "a.example"),
        });
        state.apply(applied(
            Watched::GrpcRoute,
            object(Watched::GrpcRoute, "ns", "g", json!({"spec": {}})),
        ));
        state.apply(applied(
            Watched::Backend,
            object(
                Watched::Backend,
                "ns",
                "b",
                json!({"spec": {"endpoints": [{"address": "127.0.0.1", "port": 9000}]}}),
            ),
        ));
        let c = state.take_changes();
        assert_eq!(
            c,
            Changes {
                http_routes: names(&["r2"]),
                grpc_routes: names(&["g"]),
                backends: names(&["b"]),
                ..Changes::default()
            }
        );

        // Deleting what is not there changes nothing.
        state.apply(Change::Deleted {
            kind: Watched::HttpRoute,
            object: route("r2", "a.example"),
        });
        assert!(state.take_changes().is_empty());
    }

    #[test]
    fn endpoint_slices_name_their_service_before_and_after() {
        let mut state = ClusterState::default();
        state.apply(applied(
            Watched::EndpointSlice,
            slice("s1", "svc-a", "10.0.0.1"),
        ));
        assert_eq!(state.take_changes().service_endpoints, names(&["svc-a"]));

        state.apply(applied(
            Watched::EndpointSlice,
            slice("s1", "svc-a", "10.0.0.1"),
        ));
        assert!(state.take_changes().is_empty(), "the same slice again");

        state.apply(applied(
            Watched::EndpointSlice,
            slice("s1", "svc-b", "10.0.0.2"),
        ));
        let c = state.take_changes();
        assert_eq!(c.service_endpoints, names(&["svc-a", "svc-b"]));
        assert!(!c.everything && c.len() == 2);

        state.apply(Change::Deleted {
            kind: Watched::EndpointSlice,
            object: slice("s1", "svc-b", "10.0.0.2"),
        });
        assert_eq!(
            state.take_changes(),
            Changes {
                service_endpoints: names(&["svc-b"]),
                ..Changes::default()
            }
        );
    }

    #[test]
    fn other_kinds_and_lists_change_everything() {
        let mut state = ClusterState::default();
        state.apply(Change::Listed {
            kind: Watched::HttpRoute,
            namespace: None,
            objects: vec![route("r1", "a.example")],
        });
        assert!(state.take_changes().everything, "a list");
        assert!(
            state
                .config
                .http_routes
                .contains_key(&("ns".into(), "r1".into()))
        );

        let gateway = object(
            Watched::Gateway,
            "ns",
            "gw",
            json!({"spec": {"gatewayClassName": "gatehouse", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
        );
        state.apply(applied(Watched::Gateway, gateway.clone()));
        assert_eq!(state.take_changes(), Changes::everything());
        state.apply(applied(Watched::Gateway, gateway.clone()));
        assert!(state.take_changes().is_empty(), "the same Gateway again");
        state.apply(Change::Deleted {
            kind: Watched::Gateway,
            object: gateway,
        });
        assert!(state.take_changes().everything);

        let mut ns = object(Watched::Namespace, "", "team", json!({}));
        ns.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
        state.apply(applied(Watched::Namespace, ns.clone()));
        assert!(state.take_changes().everything);
        state.apply(applied(Watched::Namespace, ns));
        assert!(state.take_changes().is_empty());

        state.apply(applied(
            Watched::Service,
            object(Watched::Service, "ns", "svc", json!({"spec": {}})),
        ));
        assert!(state.take_changes().everything);
    }
}
