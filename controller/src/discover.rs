//! The seam between configuration and serving: the xDS server asks a [`DiscoverSnapshots`] for
//! a gateway's snapshot and never sees files or Kubernetes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gatehouse_certs::GatewayName;
use tokio::sync::watch;

use crate::snapshot::Snapshot;

/// Yields each gateway's current snapshot and its changes.
pub trait DiscoverSnapshots: Send + Sync + 'static {
    /// A receiver of the gateway's snapshot. A gateway with no configuration yet gets an empty
    /// snapshot, and sees its configuration when it arrives.
    fn watch(&self, gateway: &GatewayName) -> watch::Receiver<Arc<Snapshot>>;
}

/// An in-memory snapshot per gateway; the translator writes, the xDS server reads.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    gateways: Mutex<HashMap<GatewayName, watch::Sender<Arc<Snapshot>>>>,
}

impl SnapshotCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn sender(&self, gateway: &GatewayName) -> watch::Sender<Arc<Snapshot>> {
        let mut map = self.gateways.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(gateway.clone())
            .or_insert_with(|| watch::Sender::new(Arc::new(Snapshot::empty())))
            .clone()
    }

    /// Replaces the gateway's snapshot. Watchers are woken only if it changed.
    pub fn set(&self, gateway: &GatewayName, snapshot: Snapshot) {
        self.sender(gateway).send_if_modified(|cur| {
            if **cur == snapshot {
                false
            } else {
                *cur = Arc::new(snapshot);
                true
            }
        });
    }

    /// The gateway's current snapshot.
    pub fn get(&self, gateway: &GatewayName) -> Arc<Snapshot> {
        self.sender(gateway).borrow().clone()
    }

    /// Gateways that have a snapshot or a watcher.
    pub fn gateways(&self) -> Vec<GatewayName> {
        let mut v: Vec<_> = self
            .gateways
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

impl DiscoverSnapshots for SnapshotCache {
    fn watch(&self, gateway: &GatewayName) -> watch::Receiver<Arc<Snapshot>> {
        self.sender(gateway).subscribe()
    }
}
