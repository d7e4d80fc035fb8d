//! Per-proxy xDS state for `gatehouse status`: who is connected, what each has ACKed, the last
//! NACK, and recent security events.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::snapshot::ResourceType;

const MAX_SECURITY_EVENTS: usize = 256;

/// A rejected configuration push.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NackRecord {
    /// The resource type.
    pub type_url: String,
    /// The nonce of the rejected response.
    pub nonce: String,
    /// The version that was rejected.
    pub rejected_version: String,
    /// Envoy's error detail.
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
}

/// What one proxy has of one resource type.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TypeStatus {
    /// Version of the last response sent.
    pub sent_version: String,
    /// Nonce of the last response sent.
    pub sent_nonce: String,
    /// Version of the last response the proxy ACKed (the one in force).
    pub acked_version: String,
    /// Responses sent on this stream for this type.
    pub responses: u64,
    /// The last NACK, if any.
    pub last_nack: Option<NackRecord>,
}

/// One connected proxy (one ADS stream).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProxyStatus {
    /// Stream number (unique per process).
    pub stream: u64,
    /// The identity from the client certificate.
    pub identity: String,
    /// The gateway, `NAMESPACE/NAME`.
    pub gateway: String,
    /// The peer address.
    pub peer: Option<SocketAddr>,
    /// `delta` or `sotw`.
    pub variant: &'static str,
    /// When the stream opened (RFC 3339).
    pub connected_since: String,
    /// SHA-256 fingerprint of the client certificate the stream was opened with.
    pub client_certificate_sha256: String,
    /// When that certificate expires (RFC 3339).
    pub client_certificate_not_after: String,
    /// Per resource type (CDS, EDS, SDS, LDS, RDS).
    pub types: BTreeMap<String, TypeStatus>,
}

/// A refused connection or request.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SecurityEvent {
    /// What happened, e.g. `node_id_mismatch`.
    pub kind: &'static str,
    /// The peer address.
    pub peer: Option<SocketAddr>,
    /// The identity, when known.
    pub identity: Option<String>,
    /// Details.
    pub detail: String,
    /// When (RFC 3339).
    pub at: String,
}

/// Shared registry of streams, NACKs and security events.
#[derive(Debug, Default)]
pub struct ProxyRegistry {
    next: AtomicU64,
    streams: Mutex<HashMap<u64, ProxyStatus>>,
    last_nack_by_gateway: Mutex<BTreeMap<String, NackRecord>>,
    security: Mutex<VecDeque<SecurityEvent>>,
}

fn now() -> String {
    gatehouse_certs::rfc3339(SystemTime::now())
}

impl ProxyRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a stream; it is removed when the returned guard drops.
    pub(crate) fn register(
        self: &Arc<Self>,
        identity: String,
        gateway: String,
        peer: Option<SocketAddr>,
        variant: &'static str,
        client_certificate: (String, String),
    ) -> StreamGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id,
                ProxyStatus {
                    stream: id,
                    identity,
                    gateway,
                    peer,
                    variant,
                    connected_since: now(),
                    client_certificate_sha256: client_certificate.0,
                    client_certificate_not_after: client_certificate.1,
                    types: BTreeMap::new(),
                },
            );
        StreamGuard {
            registry: self.clone(),
            id,
        }
    }

    /// Connected proxies, by stream number.
    pub fn proxies(&self) -> Vec<ProxyStatus> {
        let mut v: Vec<_> = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|p| p.stream);
        v
    }

    /// The last NACK of each gateway, kept after its stream closes.
    pub fn last_nacks(&self) -> BTreeMap<String, NackRecord> {
        self.last_nack_by_gateway
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Recent security events, oldest first.
    pub fn security_events(&self) -> Vec<SecurityEvent> {
        self.security
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Records (and logs) a security event.
    pub(crate) fn security_event(
        &self,
        kind: &'static str,
        peer: Option<SocketAddr>,
        identity: Option<String>,
        detail: String,
    ) {
        tracing::warn!(
            target: super::SECURITY_TARGET,
            event = kind,
            peer = ?peer,
            identity = identity.as_deref().unwrap_or("-"),
            %detail,
            "security event"
        );
        let mut q = self.security.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == MAX_SECURITY_EVENTS {
            q.pop_front();
        }
        q.push_back(SecurityEvent {
            kind,
            peer,
            identity,
            detail,
            at: now(),
        });
    }
}

/// A registered stream; updates its entry and removes it on drop.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    registry: Arc<ProxyRegistry>,
    id: u64,
}

impl StreamGuard {
    fn with<R>(&self, f: impl FnOnce(&mut ProxyStatus) -> R) -> Option<R> {
        self.registry
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&self.id)
            .map(f)
    }

    pub(crate) fn sent(&self, t: ResourceType, version: &str, nonce: &str) {
        self.with(|p| {
            let ts = p.types.entry(t.short().to_owned()).or_default();
            ts.sent_version = version.to_owned();
            ts.sent_nonce = nonce.to_owned();
            ts.responses += 1;
        });
    }

    pub(crate) fn acked(&self, t: ResourceType, version: &str) {
        self.with(|p| {
            p.types
                .entry(t.short().to_owned())
                .or_default()
                .acked_version = version.to_owned();
        });
    }

    pub(crate) fn nacked(&self, t: ResourceType, nonce: &str, version: &str, message: &str) {
        let record = NackRecord {
            type_url: t.type_url().to_owned(),
            nonce: nonce.to_owned(),
            rejected_version: version.to_owned(),
            message: message.to_owned(),
            at: now(),
        };
        let gateway = self.with(|p| {
            p.types.entry(t.short().to_owned()).or_default().last_nack = Some(record.clone());
            p.gateway.clone()
        });
        if let Some(gw) = gateway {
            self.registry
                .last_nack_by_gateway
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(gw, record);
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.registry
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}
