//! The state-of-the-world ADS state machine of one stream, independent of gRPC.
//!
//! Each response carries the whole set of a type (or of the requested names); its version is a
//! hash of that set, so a set that did not change is not sent again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::service::{Machine, RequestOutcome};
use super::status::StreamGuard;
use crate::snapshot::{ResourceType, Snapshot};

#[derive(Debug, Default)]
struct TypeState {
    wildcard: bool,
    names: BTreeSet<String>,
    sent_version: Option<String>,
    sent_nonce: String,
    sent_names: BTreeSet<String>,
}

/// One state-of-the-world stream's state.
#[derive(Debug, Default)]
pub(crate) struct SotwState {
    types: BTreeMap<ResourceType, TypeState>,
    next_nonce: u64,
    in_flight: HashMap<String, String>,
}

impl Machine for SotwState {
    type Req = DiscoveryRequest;
    type Resp = DiscoveryResponse;
    const VARIANT: &'static str = "sotw";

    fn node_id(req: &Self::Req) -> Option<String> {
        req.node.as_ref().map(|n| n.id.clone())
    }

    fn record(guard: &StreamGuard, r: &Self::Resp) {
        if let Some(t) = ResourceType::from_type_url(&r.type_url) {
            guard.sent(t, &r.version_info, &r.nonce);
        }
        tracing::debug!(type_url = %r.type_url, nonce = %r.nonce, resources = r.resources.len(), "sotw push");
    }

    fn on_request(
        &mut self,
        req: &DiscoveryRequest,
        snap: &Arc<Snapshot>,
        guard: &StreamGuard,
    ) -> RequestOutcome<DiscoveryResponse> {
        let mut out = RequestOutcome::default();
        let Some(t) = ResourceType::from_type_url(&req.type_url) else {
            tracing::debug!(type_url = %req.type_url, "ignoring request for a type Gatehouse does not serve");
            return out;
        };
        let state = self.types.entry(t).or_default();
        if !req.response_nonce.is_empty() {
            if req.response_nonce != state.sent_nonce {
                // A reply to a response that has since been superseded.
                return out;
            }
            let version = self
                .in_flight
                .remove(&req.response_nonce)
                .unwrap_or_default();
            if let Some(status) = &req.error_detail {
                tracing::warn!(type_url = %req.type_url, nonce = %req.response_nonce, %version, error = %status.message, "configuration rejected by proxy (NACK)");
                guard.nacked(t, &req.response_nonce, &version, &status.message);
                return out;
            }
            guard.acked(t, &req.version_info);
        }
        let names: BTreeSet<String> = req.resource_names.iter().cloned().collect();
        let wildcard = names.contains("*")
            || (names.is_empty() && matches!(t, ResourceType::Cluster | ResourceType::Listener));
        let changed =
            names != state.names || wildcard != state.wildcard || state.sent_version.is_none();
        state.names = names;
        state.wildcard = wildcard;
        if t == ResourceType::Secret {
            out.denied_secrets = state
                .names
                .iter()
                .filter(|n| snap.get(t, n).is_none())
                .cloned()
                .collect();
        }
        if let Some(r) = self.response(t, snap, changed) {
            out.responses.push(r);
        }
        out
    }

    /// Responses for a new snapshot: sets that only grow or change go first in make-before-break
    /// order; sets that lose resources go last, in reverse order.
    fn on_snapshot(&mut self, snap: &Arc<Snapshot>) -> Vec<DiscoveryResponse> {
        let mut shrinking = Vec::new();
        let mut out = Vec::new();
        for t in ResourceType::ALL {
            let Some(state) = self.types.get(&t) else {
                continue;
            };
            let (names, _) = selection(state, snap, t);
            if state.sent_names.iter().any(|n| !names.contains(n)) {
                shrinking.push(t);
            } else if let Some(r) = self.response(t, snap, false) {
                out.push(r);
            }
        }
        for t in shrinking.into_iter().rev() {
            if let Some(r) = self.response(t, snap, false) {
                out.push(r);
            }
        }
        out
    }
}

impl SotwState {
    fn response(
        &mut self,
        t: ResourceType,
        snap: &Snapshot,
        force: bool,
    ) -> Option<DiscoveryResponse> {
        let state = self.types.get_mut(&t)?;
        let (names, version) = selection(state, snap, t);
        if !force && state.sent_version.as_deref() == Some(version.as_str()) {
            return None;
        }
        let resources = names
            .iter()
            .filter_map(|n| snap.get(t, n))
            .map(|r| r.body().clone())
            .collect();
        self.next_nonce += 1;
        let nonce = self.next_nonce.to_string();
        state.sent_version = Some(version.clone());
        state.sent_nonce = nonce.clone();
        state.sent_names = names;
        self.in_flight.insert(nonce.clone(), version.clone());
        Some(DiscoveryResponse {
            version_info: version,
            resources,
            type_url: t.type_url().to_owned(),
            nonce,
            ..Default::default()
        })
    }
}

/// The names this client gets of type `t`, and the version of that set.
fn selection(state: &TypeState, snap: &Snapshot, t: ResourceType) -> (BTreeSet<String>, String) {
    let table = snap.resources(t);
    let names: BTreeSet<String> = if state.wildcard {
        table.keys().cloned().collect()
    } else {
        state
            .names
            .iter()
            .filter(|n| table.contains_key(*n))
            .cloned()
            .collect()
    };
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for n in &names {
        if let Some(r) = table.get(n) {
            ctx.update(n.as_bytes());
            ctx.update(&[0]);
            ctx.update(r.version().as_bytes());
            ctx.update(&[0]);
        }
    }
    let version = ctx
        .finish()
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    (names, version)
}
