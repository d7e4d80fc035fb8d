//! The incremental (delta) ADS state machine of one stream, independent of gRPC.
//!
//! Per type it tracks what the client subscribed to (names, wildcard) and which version of each
//! resource it has been sent (seeded from `initial_resource_versions` on reconnect). A response
//! carries only resources whose version the client does not have, plus removals; a response
//! that would carry nothing is not sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};

use super::service::{Machine, RequestOutcome};
use super::status::StreamGuard;
use crate::snapshot::{Resource as Entry, ResourceType, Snapshot};

/// Whether the client holds `r` at its current version.
fn holds(state: &TypeState, r: &Entry) -> bool {
    state.known.get(r.name()).map(|v| &**v) == Some(r.version())
}

#[derive(Clone, Debug, Default)]
struct TypeState {
    wildcard: bool,
    subscribed: BTreeSet<String>,
    /// Version of each resource the client has been sent (or told us it has). The strings are
    /// shared with the snapshot's resources: a proxy in sync costs a table of pointers.
    known: HashMap<Arc<str>, Arc<str>>,
    /// Names (re)subscribed since the last response: sent even if the client has them.
    force: BTreeSet<String>,
    /// The snapshot this type was last fully reconciled with (`known` is exactly what the
    /// client was sent of it), while the subscription has not changed since.
    base: Option<Arc<Snapshot>>,
    /// Removals found by the fast path's upsert pass, sent by the removal pass.
    pending_removed: Option<Vec<String>>,
}

/// One delta stream's state.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeltaState {
    types: BTreeMap<ResourceType, TypeState>,
    next_nonce: u64,
    /// Nonce → (type, the snapshot version of that type when it was sent).
    in_flight: HashMap<String, (ResourceType, String)>,
}

impl Machine for DeltaState {
    type Req = DeltaDiscoveryRequest;
    type Resp = DeltaDiscoveryResponse;
    const VARIANT: &'static str = "delta";

    fn node_id(req: &Self::Req) -> Option<String> {
        req.node.as_ref().map(|n| n.id.clone())
    }

    fn record(guard: &StreamGuard, r: &Self::Resp) {
        if let Some(t) = ResourceType::from_type_url(&r.type_url) {
            guard.sent(t, &r.system_version_info, &r.nonce);
        }
        tracing::debug!(type_url = %r.type_url, nonce = %r.nonce, resources = r.resources.len(), removed = r.removed_resources.len(), "delta push");
    }

    fn on_request(
        &mut self,
        req: &DeltaDiscoveryRequest,
        snap: &Arc<Snapshot>,
        guard: &StreamGuard,
    ) -> RequestOutcome<DeltaDiscoveryResponse> {
        let mut out = RequestOutcome::default();
        let Some(t) = ResourceType::from_type_url(&req.type_url) else {
            tracing::debug!(type_url = %req.type_url, "ignoring request for a type Gatehouse does not serve");
            return out;
        };
        if !req.response_nonce.is_empty()
            && let Some((_, version)) = self.in_flight.remove(&req.response_nonce)
        {
            match &req.error_detail {
                Some(status) => {
                    tracing::warn!(type_url = %req.type_url, nonce = %req.response_nonce, %version, error = %status.message, "configuration rejected by proxy (NACK)");
                    guard.nacked(t, &req.response_nonce, &version, &status.message);
                }
                None => guard.acked(t, &version),
            }
        }
        let first = !self.types.contains_key(&t);
        let state = self.types.entry(t).or_default();
        if first
            || !req.resource_names_subscribe.is_empty()
            || !req.resource_names_unsubscribe.is_empty()
        {
            // The subscription changes: the next response scans the whole table.
            state.base = None;
        }
        if first {
            state.known = req
                .initial_resource_versions
                .iter()
                .map(|(n, v)| (Arc::from(n.as_str()), Arc::from(v.as_str())))
                .collect();
            // Legacy wildcard: a first CDS/LDS request naming nothing means "everything".
            if req.resource_names_subscribe.is_empty()
                && matches!(t, ResourceType::Cluster | ResourceType::Listener)
            {
                state.wildcard = true;
            }
        }
        for name in &req.resource_names_subscribe {
            if name == "*" {
                state.wildcard = true;
            } else {
                state.subscribed.insert(name.clone());
                state.force.insert(name.clone());
            }
        }
        for name in &req.resource_names_unsubscribe {
            if name == "*" {
                state.wildcard = false;
                // The client drops everything it tracked only through the wildcard.
                let subscribed = &state.subscribed;
                state.known.retain(|n, _| subscribed.contains(&**n));
            } else {
                state.subscribed.remove(name);
                state.force.remove(name);
                if !state.wildcard {
                    state.known.remove(name.as_str());
                }
            }
        }
        if t == ResourceType::Secret {
            out.denied_secrets = req
                .resource_names_subscribe
                .iter()
                .filter(|n| snap.get(t, n).is_none())
                .cloned()
                .collect();
        }
        out.responses.extend(self.response(t, snap, true, true));
        out
    }

    /// The responses that bring the client to `snap`: upserts in make-before-break order, then
    /// removals in the reverse order.
    fn on_snapshot(&mut self, snap: &Arc<Snapshot>) -> Vec<DeltaDiscoveryResponse> {
        let mut out = Vec::new();
        for t in ResourceType::ALL {
            out.extend(self.response(t, snap, true, false));
        }
        for t in ResourceType::ALL.into_iter().rev() {
            out.extend(self.response(t, snap, false, true));
        }
        out
    }
}

impl DeltaState {
    /// The responses for type `t` (none if the client already has everything): one, or
    /// several of at most [`MAX_RESPONSE_BYTES`] of resources each, removals in the last.
    fn response(
        &mut self,
        t: ResourceType,
        snap: &Arc<Snapshot>,
        upserts: bool,
        removals: bool,
    ) -> Vec<DeltaDiscoveryResponse> {
        let Some(state) = self.types.get_mut(&t) else {
            return Vec::new();
        };
        let table = snap.resources(t);
        let mut resources: Vec<&Arc<Entry>> = Vec::new();
        let mut removed = Vec::new();
        let fast_base = state
            .base
            .clone()
            .filter(|_| state.force.is_empty() && (upserts || state.pending_removed.is_some()));
        if let Some(base) = fast_base {
            if upserts {
                let (ups, gone) = if Arc::ptr_eq(&base, snap) || base.version(t) == snap.version(t)
                {
                    (Vec::new(), Vec::new())
                } else {
                    fast_diff(state, base.resources(t), table)
                };
                resources = ups;
                state.pending_removed = Some(gone);
            }
            if removals {
                removed = state.pending_removed.take().unwrap_or_default();
                state.base = Some(snap.clone());
            }
        } else {
            state.pending_removed = None;
            if upserts {
                let wanted: Box<dyn Iterator<Item = &String>> = if state.wildcard {
                    Box::new(
                        table
                            .keys()
                            .chain(state.subscribed.iter().filter(|n| !table.contains_key(*n))),
                    )
                } else {
                    Box::new(state.subscribed.iter())
                };
                for name in wanted {
                    let Some(r) = table.get(name) else { continue };
                    if state.force.contains(name) || !holds(state, r) {
                        resources.push(r);
                    }
                }
            }
            if removals {
                // What the client has (or asked for) that no longer exists.
                let mut gone: BTreeSet<String> = state
                    .known
                    .keys()
                    .filter(|n| !table.contains_key(&***n))
                    .map(|n| n.to_string())
                    .collect();
                gone.extend(
                    state
                        .force
                        .iter()
                        .filter(|n| !table.contains_key(*n))
                        .cloned(),
                );
                removed = gone.into_iter().collect();
            }
            if upserts {
                state.force.retain(|n| !table.contains_key(n));
            }
            if removals {
                state.force.retain(|n| table.contains_key(n));
                // Reconciled with `snap` (both passes done): the fast path can start here.
                state.base = Some(snap.clone());
            }
        }
        if resources.is_empty() && removed.is_empty() {
            return Vec::new();
        }
        for r in &resources {
            let (name, version) = r.shared_name_version();
            state.known.insert(name, version);
        }
        for n in &removed {
            state.known.remove(n.as_str());
        }
        let resources = resources
            .into_iter()
            .map(|r| Resource {
                name: r.name().to_owned(),
                version: r.version().to_owned(),
                resource: Some(r.body().clone()),
                ..Default::default()
            })
            .collect();
        let version = snap.version(t).to_owned();
        let mut out = Vec::new();
        let mut chunks = chunked(resources).into_iter().peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.next_nonce += 1;
            let nonce = self.next_nonce.to_string();
            self.in_flight.insert(nonce.clone(), (t, version.clone()));
            out.push(DeltaDiscoveryResponse {
                system_version_info: version.clone(),
                type_url: t.type_url().to_owned(),
                resources: chunk,
                removed_resources: if last {
                    std::mem::take(&mut removed)
                } else {
                    Vec::new()
                },
                nonce,
                ..Default::default()
            });
        }
        out
    }
}

/// Most bytes of resources in one delta response. The gRPC layer encodes each response into a
/// buffer that it keeps, at the size of the largest response, for the stream's lifetime: one
/// response for a whole large type (W3's initial sync, ≈2.8 MB) cost every connected proxy that
/// much of the controller's memory for as long as it stays connected.
pub(crate) const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// What a resource adds to a response, near enough: its encoded body and its name.
fn wire_len(r: &Resource) -> usize {
    r.resource.as_ref().map_or(0, |a| a.value.len()) + r.name.len()
}

/// `resources` in order, cut into runs of at most [`MAX_RESPONSE_BYTES`] (a larger resource is
/// a run of its own); at least one run, possibly empty, so that removals have a response.
fn chunked(resources: Vec<Resource>) -> Vec<Vec<Resource>> {
    let mut out = vec![Vec::new()];
    let mut size = 0;
    for r in resources {
        let len = wire_len(&r);
        if size + len > MAX_RESPONSE_BYTES && size > 0 {
            out.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(run) = out.last_mut() {
            run.push(r);
        }
    }
    out
}

/// What changed between `base` (what the client was brought to) and `table`, for a client
/// whose subscription did not change since: the upserts it wants and the names it holds that
/// are gone. The tables are persistent maps: the parts they share are skipped without being
/// looked at, so the cost follows the number of changed resources, not the table size.
fn fast_diff<'t>(
    state: &TypeState,
    base: &crate::snapshot::Table,
    table: &'t crate::snapshot::Table,
) -> (Vec<&'t Arc<Entry>>, Vec<String>) {
    use imbl::ordmap::DiffItem;
    let wanted = |n: &String| state.wildcard || state.subscribed.contains(n);
    let mut ups = Vec::new();
    let mut gone = Vec::new();
    for d in base.diff(table) {
        match d {
            DiffItem::Remove(name, _) => {
                if state.known.contains_key(name.as_str()) {
                    gone.push(name.clone());
                }
            }
            DiffItem::Add(name, r) | DiffItem::Update { new: (name, r), .. } => {
                if wanted(name) && !holds(state, r) {
                    ups.push(r);
                }
            }
        }
    }
    (ups, gone)
}

/// The per-stream work of the delta server without a stream: a client subscribed to every
/// type by wildcard, brought to a snapshot and ACKing at once. The criterion benches and the
/// load harness use it to time the delta diff on its own.
#[derive(Clone, Debug, Default)]
pub struct DeltaProbe {
    state: DeltaState,
}

impl DeltaProbe {
    /// A client that has received everything in `snap`.
    pub fn new(snap: &Arc<Snapshot>) -> Self {
        let mut state = DeltaState::default();
        for t in ResourceType::ALL {
            let st = state.types.entry(t).or_default();
            st.wildcard = true;
        }
        let mut p = Self { state };
        p.advance(snap);
        p
    }

    /// The responses that bring the client from its snapshot to `snap` (make-before-break
    /// order), as `(type, resources, removals, encoded bytes)`; the client is then at `snap`.
    pub fn advance(&mut self, snap: &Arc<Snapshot>) -> Vec<(ResourceType, usize, usize, usize)> {
        let out = <DeltaState as Machine>::on_snapshot(&mut self.state, snap);
        self.state.in_flight.clear();
        out.iter()
            .filter_map(|r| {
                let t = ResourceType::from_type_url(&r.type_url)?;
                Some((
                    t,
                    r.resources.len(),
                    r.removed_resources.len(),
                    prost::Message::encoded_len(r),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;

    fn snap(clusters: &[(&str, i64)]) -> Arc<Snapshot> {
        let mut b = Snapshot::builder();
        for (name, t) in clusters {
            b.cluster(&Cluster {
                name: (*name).into(),
                connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                    seconds: *t,
                    nanos: 0,
                }),
                ..Default::default()
            });
        }
        Arc::new(b.build())
    }

    /// Type, (name, version) upserted, names removed.
    type Summary = (String, Vec<(String, String)>, Vec<String>);

    fn summary(out: &[DeltaDiscoveryResponse]) -> Vec<Summary> {
        out.iter()
            .map(|r| {
                (
                    r.type_url.clone(),
                    r.resources
                        .iter()
                        .map(|x| (x.name.clone(), x.version.clone()))
                        .collect(),
                    r.removed_resources.clone(),
                )
            })
            .collect()
    }

    /// The fast path (a merge against the last reconciled snapshot) sends exactly what a scan
    /// of the whole table sends.
    #[test]
    fn the_fast_path_sends_what_a_full_scan_sends() {
        let steps = [
            snap(&[("a", 1), ("b", 1), ("c", 1)]),
            snap(&[("a", 1), ("b", 2), ("d", 1)]),
            snap(&[("d", 1)]),
            snap(&[("d", 1)]),
            snap(&[("a", 3), ("b", 2), ("c", 1), ("d", 2), ("e", 1)]),
            snap(&[]),
            snap(&[("a", 3)]),
        ];
        let mut fast = DeltaProbe::new(&steps[0]);
        let mut slow = DeltaProbe::new(&steps[0]);
        for s in &steps[1..] {
            for t in slow.state.types.values_mut() {
                t.base = None;
            }
            let f = <DeltaState as Machine>::on_snapshot(&mut fast.state, s);
            let w = <DeltaState as Machine>::on_snapshot(&mut slow.state, s);
            assert_eq!(summary(&f), summary(&w));
            assert_eq!(
                fast.state.types[&ResourceType::Cluster].known,
                slow.state.types[&ResourceType::Cluster].known
            );
        }
    }

    /// A push larger than [`MAX_RESPONSE_BYTES`] goes out as several responses of the same
    /// version, each within the limit and in flight under its own nonce, with the removals in
    /// the last; together they carry every resource once, in order.
    #[test]
    fn a_large_push_is_split_into_responses_within_the_limit() {
        let big = |n: usize, round: i64, drop_first: usize| {
            let mut b = Snapshot::builder();
            for i in drop_first..n {
                b.cluster(&Cluster {
                    name: format!("c{i:04}"),
                    alt_stat_name: format!("{round}-{}", "x".repeat(1000)),
                    ..Default::default()
                });
            }
            Arc::new(b.build())
        };
        let mut state = DeltaState::default();
        state
            .types
            .entry(ResourceType::Cluster)
            .or_default()
            .wildcard = true;
        let first = big(700, 1, 0);
        let out = <DeltaState as Machine>::on_snapshot(&mut state, &first);
        assert!(out.len() >= 3, "{} responses", out.len());
        let mut names = Vec::new();
        for r in &out {
            let bytes: usize = r.resources.iter().map(wire_len).sum();
            assert!(bytes <= MAX_RESPONSE_BYTES, "{bytes} bytes in one response");
            assert_eq!(r.system_version_info, first.version(ResourceType::Cluster));
            assert!(state.in_flight.contains_key(&r.nonce));
            names.extend(r.resources.iter().map(|x| x.name.clone()));
        }
        let want: Vec<String> = (0..700).map(|i| format!("c{i:04}")).collect();
        assert_eq!(names, want);
        // Everything changes and the first ten are gone: removals ride on the last response.
        let second = big(700, 2, 10);
        let out = <DeltaState as Machine>::on_snapshot(&mut state, &second);
        assert!(out.len() >= 3);
        let (last, rest) = out.split_last().unwrap();
        assert!(rest.iter().all(|r| r.removed_resources.is_empty()));
        assert_eq!(last.removed_resources.len(), 10);
        assert_eq!(out.iter().map(|r| r.resources.len()).sum::<usize>(), 690);
    }
}
