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
    all: &crate::translate::Statuses,
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

/// One status write: the object, and the merge patch to send.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StatusWrite {
    kind: Watched,
    namespace: String,
    name: String,
    /// The merge patch (`{"status": ...}`, with the resourceVersion precondition for routes).
    patch: Value,
    /// The status the API showed when the patch was computed.
    observed: Value,
}

/// Computes which statuses differ from what the API shows, reusing the previous computation
/// for every object whose status and observed state did not change (so that a change to one
/// route does not re-render ten thousand).
#[derive(Debug, Default)]
pub(crate) struct StatusPlanner {
    cache: HashMap<ObjectRef, (ObjectStatus, Observed, Option<StatusWrite>)>,
}

/// Kind, namespace and name.
type ObjectRef = (Watched, String, String);

impl StatusPlanner {
    /// The writes that would make the API show `objects`.
    pub(crate) fn plan(
        &mut self,
        state: &ClusterState,
        objects: &crate::translate::Statuses,
        more: &[ObjectStatus],
    ) -> Vec<StatusWrite> {
        let now = gatehouse_certs::rfc3339(std::time::SystemTime::now());
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for os in objects.iter().chain(more) {
            let Some(kind) = watched(os.object.kind) else {
                continue;
            };
            let key = (kind, os.object.namespace.clone(), os.object.name.clone());
            seen.insert(key.clone());
            let observed = state.observed.get(&key).cloned().unwrap_or_default();
            // A Gateway's status counts its routes, a class's is tiny: always computed.
            let cacheable = !matches!(kind, Watched::Gateway | Watched::GatewayClass);
            if cacheable
                && let Some((s, o, w)) = self.cache.get(&key)
                && s == os
                && *o == observed
            {
                out.extend(w.clone());
                continue;
            }
            let write = desired(state, os, objects, &now).map(|(kind, value)| {
                // A route's `parents` is one list shared with other controllers: write it only
                // over the version it was computed from (a conflict is retried next round).
                let patch = match (kind, &observed.resource_version) {
                    (Watched::HttpRoute | Watched::GrpcRoute, Some(rv)) => {
                        json!({ "metadata": { "resourceVersion": rv }, "status": value })
                    }
                    _ => json!({ "status": value }),
                };
                StatusWrite {
                    kind,
                    namespace: os.object.namespace.clone(),
                    name: os.object.name.clone(),
                    patch,
                    observed: observed.status.clone(),
                }
            });
            out.extend(write.clone());
            if cacheable {
                self.cache.insert(key, (os.clone(), observed, write));
            }
        }
        self.cache.retain(|k, _| seen.contains(k));
        out
    }
}

/// Starts the task that writes statuses: it works through the latest plan it was sent, drops
/// what is left of an older plan when a new one arrives (an empty plan stops it: leadership
/// lost), skips what it already wrote while the API has not shown anything new, and retries a
/// failed write with the next plan.
pub(crate) fn spawn_writer(
    client: Client,
) -> (
    tokio::sync::watch::Sender<std::sync::Arc<Vec<StatusWrite>>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::watch::channel(std::sync::Arc::new(Vec::<StatusWrite>::new()));
    let task = tokio::spawn(async move {
        let mut written: HashMap<ObjectRef, (Value, Value)> = HashMap::new();
        while rx.changed().await.is_ok() {
            let plan = rx.borrow_and_update().clone();
            let mut done = 0usize;
            for w in plan.iter() {
                if rx.has_changed().unwrap_or(true) {
                    break;
                }
                let key = (w.kind, w.namespace.clone(), w.name.clone());
                if written.get(&key).is_some_and(|(p, seen)| {
                    without_times(p) == without_times(&w.patch) && *seen == w.observed
                }) {
                    continue;
                }
                let ar = w.kind.api_resource();
                let api: Api<DynamicObject> = if w.kind.namespaced() {
                    Api::namespaced_with(client.clone(), &w.namespace, &ar)
                } else {
                    Api::all_with(client.clone(), &ar)
                };
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                match api
                    .patch_status(&w.name, &params, &Patch::Merge(&w.patch))
                    .await
                {
                    Ok(_) => {
                        done += 1;
                        written.insert(key, (w.patch.clone(), w.observed.clone()));
                    }
                    Err(error) => {
                        tracing::warn!(kind = %w.kind, namespace = %w.namespace, name = %w.name, %error, "cannot write status; will retry");
                    }
                }
            }
            if done > 0 {
                tracing::debug!(writes = done, "status written");
            }
        }
    });
    (tx, task)
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
