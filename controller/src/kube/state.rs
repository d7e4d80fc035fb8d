//! What the watches have seen, as the same [`Config`] file mode reads: each object parsed into
//! the model when it arrives. An object that does not parse is reported and its last valid
//! version stays in force, as a bad file does in file mode.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use kube::api::DynamicObject;
use serde::de::DeserializeOwned;

use super::watch::{Change, Watched};
use crate::model::{Config, Diagnostic, Objects, Origin};

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

fn put<T>(map: &mut Objects<T>, ns: &str, name: &str, v: T, kind: Watched) {
    map.insert(
        (ns.to_owned(), name.to_owned()),
        (v, origin(kind, ns, name)),
    );
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
                c.namespace_labels.insert(
                    name.clone(),
                    object.metadata.labels.clone().unwrap_or_default(),
                );
                Ok(())
            }
            Watched::Secret => {
                parse::<k8s_openapi::api::core::v1::Secret>(value.clone()).and_then(|raw| {
                    let model = parse(value)?;
                    put(&mut c.secrets, &ns, &name, model, kind);
                    self.secrets.insert((ns.clone(), name.clone()), raw);
                    self.secret_changes += 1;
                    Ok(())
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
            Ok(()) => {
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
        let c = &mut self.config;
        match kind {
            Watched::GatewayClass => drop(c.gateway_classes.remove(&key)),
            Watched::Gateway => drop(c.gateways.remove(&key)),
            Watched::HttpRoute => drop(c.http_routes.remove(&key)),
            Watched::GrpcRoute => drop(c.grpc_routes.remove(&key)),
            Watched::ReferenceGrant => drop(c.reference_grants.remove(&key)),
            Watched::Service => drop(c.services.remove(&key)),
            Watched::EndpointSlice => drop(c.endpoint_slices.remove(&key)),
            Watched::Namespace => drop(c.namespace_labels.remove(name)),
            Watched::Secret => {
                c.secrets.remove(&key);
                self.secrets.remove(&key);
                self.secret_changes += 1;
            }
            Watched::Backend => drop(c.backends.remove(&key)),
            Watched::SecurityPolicy => drop(c.security_policies.remove(&key)),
            Watched::GatewayPolicy => drop(c.gateway_policies.remove(&key)),
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
