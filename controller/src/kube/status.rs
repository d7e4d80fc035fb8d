//! Status, the Gateway API way: conditions with `observedGeneration` and the specification's
//! reasons on GatewayClasses, Gateways (and their listeners), routes (one entry per parent, next
//! to other controllers' entries) and our own kinds. Only the leader writes, and only what
//! differs from what the API shows: an unchanged configuration writes nothing.

use std::collections::HashMap;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::state::{ClusterState, Observed};
use super::watch::Watched;
use crate::model::{CONTROLLER_NAME, Kind, ParentReference};
use crate::translate::{Condition, ObjectStatus};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "gatehouse";

/// The kind whose status is written for a model kind.
fn watched(kind: Kind) -> Option<Watched> {
    Some(match kind {
        Kind::GatewayClass => Watched::GatewayClass,
        Kind::Gateway => Watched::Gateway,
        Kind::HTTPRoute => Watched::HttpRoute,
        Kind::GRPCRoute => Watched::GrpcRoute,
        Kind::Backend => Watched::Backend,
        Kind::SecurityPolicy => Watched::SecurityPolicy,
        Kind::GatewayPolicy => Watched::GatewayPolicy,
        Kind::ReferenceGrant | Kind::Secret => return None,
    })
}

/// Conditions as the API wants them, keeping the transition time of a condition whose status
/// did not change.
fn conditions(conds: &[Condition], generation: Option<i64>, previous: &Value, now: &str) -> Value {
    let mut seen = std::collections::BTreeSet::new();
    let out: Vec<Value> = conds
        .iter()
        // One condition per type (the API's list is a map keyed by type): the first wins.
        .filter(|c| seen.insert(c.condition_type))
        .map(|c| {
            let prev = previous.as_array().and_then(|a| {
                a.iter()
                    .find(|p| p.get("type").and_then(Value::as_str) == Some(c.condition_type))
            });
            let since = prev
                .filter(|p| p.get("status").and_then(Value::as_str) == Some(c.status))
                .and_then(|p| p.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| Value::String(now.to_owned()));
            let mut v = json!({
                "type": c.condition_type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": since,
            });
            if let (Some(g), Some(m)) = (generation, v.as_object_mut()) {
                m.insert("observedGeneration".into(), json!(g));
            }
            v
        })
        .collect();
    Value::Array(out)
}

fn parent_ref_json(pr: &ParentReference, route_ns: &str) -> Value {
    let mut v = serde_json::Map::new();
    v.insert(
        "group".into(),
        json!(pr.group.as_deref().unwrap_or("gateway.networking.k8s.io")),
    );
    v.insert(
        "kind".into(),
        json!(pr.kind.as_deref().unwrap_or("Gateway")),
    );
    v.insert(
        "namespace".into(),
        json!(pr.namespace.as_deref().unwrap_or(route_ns)),
    );
    v.insert("name".into(), json!(pr.name));
    if let Some(s) = &pr.section_name {
        v.insert("sectionName".into(), json!(s));
    }
    if let Some(p) = pr.port {
        v.insert("port".into(), json!(p));
    }
    Value::Object(v)
}

/// The status `object` should have (the fields Gatehouse owns), given what the API shows.
pub(crate) fn desired(
    state: &ClusterState,
    os: &ObjectStatus,
    all: &[ObjectStatus],
    now: &str,
) -> Option<(Watched, Value)> {
    let kind = watched(os.object.kind)?;
    let key = (kind, os.object.namespace.clone(), os.object.name.clone());
    let observed = state.observed.get(&key).cloned().unwrap_or_default();
    let Observed {
        generation, status, ..
    } = observed;
    let value = match kind {
        Watched::HttpRoute | Watched::GrpcRoute => {
            let ns = &os.object.namespace;
            let refs: Vec<ParentReference> = match kind {
                Watched::HttpRoute => state
                    .config
                    .http_routes
                    .get(&(ns.clone(), os.object.name.clone()))
                    .map(|(r, _)| r.spec.parent_refs.clone()),
                _ => state
                    .config
                    .grpc_routes
                    .get(&(ns.clone(), os.object.name.clone()))
                    .map(|(r, _)| r.spec.parent_refs.clone()),
            }
            .unwrap_or_default();
            let previous = status.get("parents").and_then(Value::as_array);
            // Other controllers' entries stay as they are.
            let mut parents: Vec<Value> = previous
                .map(|ps| {
                    ps.iter()
                        .filter(|p| {
                            p.get("controllerName").and_then(Value::as_str) != Some(CONTROLLER_NAME)
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for (label, conds) in &os.parts {
                let Some(pr) = refs.iter().find(|pr| {
                    let gw_ns = pr.namespace.as_deref().unwrap_or(ns);
                    let l = format!(
                        "{gw_ns}/{}{}",
                        pr.name,
                        pr.section_name
                            .as_ref()
                            .map(|s| format!("/{s}"))
                            .unwrap_or_default()
                    );
                    l == *label
                }) else {
                    continue;
                };
                let parent_ref = parent_ref_json(pr, ns);
                let prev = previous
                    .and_then(|ps| {
                        ps.iter().find(|p| {
                            p.get("parentRef") == Some(&parent_ref)
                                && p.get("controllerName").and_then(Value::as_str)
                                    == Some(CONTROLLER_NAME)
                        })
                    })
                    .and_then(|p| p.get("conditions").cloned())
                    .unwrap_or(Value::Null);
                parents.push(json!({
                    "parentRef": parent_ref,
                    "controllerName": CONTROLLER_NAME,
                    "conditions": conditions(conds, generation, &prev, now),
                }));
            }
            json!({ "parents": parents })
        }
        Watched::Gateway => {
            let gw_label = format!("{}/{}", os.object.namespace, os.object.name);
            let prev_listeners = status.get("listeners").and_then(Value::as_array);
            let listeners: Vec<Value> = os
                .parts
                .iter()
                .map(|(listener, conds)| {
                    let attached = all
                        .iter()
                        .filter(|o| matches!(o.object.kind, Kind::HTTPRoute | Kind::GRPCRoute))
                        .filter(|o| {
                            o.parts.iter().any(|(label, cs)| {
                                (*label == gw_label || *label == format!("{gw_label}/{listener}"))
                                    && cs.iter().any(|c| {
                                        c.condition_type == "Accepted" && c.status == "True"
                                    })
                            })
                        })
                        .count();
                    let prev = prev_listeners
                        .and_then(|ls| {
                            ls.iter().find(|l| {
                                l.get("name").and_then(Value::as_str) == Some(listener.as_str())
                            })
                        })
                        .and_then(|l| l.get("conditions").cloned())
                        .unwrap_or(Value::Null);
                    json!({
                        "name": listener,
                        "supportedKinds": supported_kinds(state, &os.object.namespace, &os.object.name, listener),
                        "attachedRoutes": attached,
                        "conditions": conditions(conds, generation, &prev, now),
                    })
                })
                .collect();
            json!({
                "conditions": conditions(&os.conditions, generation, status.get("conditions").unwrap_or(&Value::Null), now),
                "listeners": listeners,
            })
        }
        _ => json!({
            "conditions": conditions(&os.conditions, generation, status.get("conditions").unwrap_or(&Value::Null), now),
        }),
    };
    // Unchanged when every field Gatehouse owns already reads as desired.
    let same = value
        .as_object()
        .is_some_and(|m| m.iter().all(|(k, v)| status.get(k) == Some(v)));
    (!same).then_some((kind, value))
}

fn supported_kinds(state: &ClusterState, ns: &str, name: &str, listener: &str) -> Value {
    let kinds: Vec<String> = state
        .config
        .gateways
        .get(&(ns.to_owned(), name.to_owned()))
        .and_then(|(g, _)| g.spec.listeners.iter().find(|l| l.name == listener))
        .and_then(|l| l.allowed_routes.as_ref())
        .map(|a| a.kinds.iter().map(|k| k.kind.clone()).collect())
        .filter(|k: &Vec<String>| !k.is_empty())
        .unwrap_or_else(|| vec!["HTTPRoute".into(), "GRPCRoute".into()]);
    Value::Array(
        kinds
            .into_iter()
            .map(|k| json!({"group": "gateway.networking.k8s.io", "kind": k}))
            .collect(),
    )
}

/// Writes statuses; remembers what it wrote so that it does not write it again before the
/// watch has shown the result.
pub(crate) struct StatusWriter {
    client: Client,
    written: HashMap<(Watched, String, String), (Value, Value)>,
}

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("written", &self.written.len())
            .finish_non_exhaustive()
    }
}

impl StatusWriter {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            written: HashMap::new(),
        }
    }

    /// Writes every status that differs from what the API shows. Failures are logged and
    /// retried on the next round. Returns the number of writes that succeeded.
    pub(crate) async fn write(&mut self, state: &ClusterState, objects: &[ObjectStatus]) -> usize {
        let now = gatehouse_certs::rfc3339(std::time::SystemTime::now());
        let mut done = 0;
        for os in objects {
            let Some((kind, value)) = desired(state, os, objects, &now) else {
                continue;
            };
            let key = (kind, os.object.namespace.clone(), os.object.name.clone());
            let observed = state
                .observed
                .get(&key)
                .map(|o| o.status.clone())
                .unwrap_or(Value::Null);
            if self.written.get(&key).is_some_and(|(w, seen)| {
                without_times(w) == without_times(&value) && *seen == observed
            }) {
                continue;
            }
            let ar = kind.api_resource();
            let api: Api<DynamicObject> = if kind.namespaced() {
                Api::namespaced_with(self.client.clone(), &os.object.namespace, &ar)
            } else {
                Api::all_with(self.client.clone(), &ar)
            };
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            // A route's `parents` is one list shared with other controllers: write it only
            // over the version it was computed from (a conflict is retried next round).
            let rv = state
                .observed
                .get(&key)
                .and_then(|o| o.resource_version.clone());
            let patch = match (kind, rv) {
                (Watched::HttpRoute | Watched::GrpcRoute, Some(rv)) => {
                    Patch::Merge(json!({ "metadata": { "resourceVersion": rv }, "status": value }))
                }
                _ => Patch::Merge(json!({ "status": value })),
            };
            match api.patch_status(&os.object.name, &params, &patch).await {
                Ok(_) => {
                    done += 1;
                    self.written.insert(key, (value, observed));
                }
                Err(error) => {
                    tracing::warn!(object = %os.object, %error, "cannot write status; will retry");
                }
            }
        }
        done
    }
}

/// A status without `lastTransitionTime`s, to compare two renderings made at different times.
fn without_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "lastTransitionTime")
                .map(|(k, v)| (k.clone(), without_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_times).collect()),
        other => other.clone(),
    }
}
