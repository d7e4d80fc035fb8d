//! A certificate that can be replaced while TLS servers and clients keep running.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::Result;
use crate::leaf::IssuedLeaf;

struct Current {
    key: Arc<CertifiedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
}

/// The certificate a TLS endpoint presents, swappable in place.
///
/// Use it as the server's certificate resolver (and as a client's): new handshakes see the
/// certificate swapped in last; connections already open are not touched.
pub struct ReloadableCert {
    current: RwLock<Current>,
}

impl std::fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (nb, na, _) = self.validity();
        f.debug_struct("ReloadableCert")
            .field("not_before", &nb)
            .field("not_after", &na)
            .finish_non_exhaustive()
    }
}

impl ReloadableCert {
    /// Starts with `leaf`.
    pub fn new(leaf: &IssuedLeaf) -> Result<Self> {
        Ok(Self {
            current: RwLock::new(Current {
                key: leaf.certified_key()?,
                not_before: leaf.not_before(),
                not_after: leaf.not_after(),
            }),
        })
    }

    /// Replaces the certificate with `leaf` (checked to match its key first).
    pub fn swap(&self, leaf: &IssuedLeaf) -> Result<()> {
        let next = Current {
            key: leaf.certified_key()?,
            not_before: leaf.not_before(),
            not_after: leaf.not_after(),
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// The certificate chain and key currently presented.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .key
            .clone()
    }

    /// The current certificate's validity and DER bytes (the rotation schedule's seed).
    pub fn validity(&self) -> (SystemTime, SystemTime, Vec<u8>) {
        let cur = self.current.read().unwrap_or_else(|p| p.into_inner());
        let der = cur
            .key
            .end_entity_cert()
            .map(|c| c.to_vec())
            .unwrap_or_default();
        (cur.not_before, cur.not_after, der)
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for ReloadableCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
