//! An issued leaf certificate with its key and chain.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;

use crate::error::Result;
use crate::identity::Identity;
use crate::pem;
use crate::secret::SecretKey;

/// A leaf certificate fresh from the CA: certificate, the CA chain above it, and its key.
#[derive(Debug)]
pub struct IssuedLeaf {
    identity: Identity,
    certificate: CertificateDer<'static>,
    ca_chain: Vec<CertificateDer<'static>>,
    key: SecretKey,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl IssuedLeaf {
    pub(crate) fn new(
        identity: Identity,
        certificate: CertificateDer<'static>,
        ca_chain: Vec<CertificateDer<'static>>,
        key: SecretKey,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Self {
        Self {
            identity,
            certificate,
            ca_chain,
            key,
            not_before,
            not_after,
        }
    }

    /// The identity in the certificate's URI SAN.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The leaf certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The leaf followed by the CA chain: what a TLS peer presents.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once(self.certificate.clone())
            .chain(self.ca_chain.iter().cloned())
            .collect()
    }

    /// The private key (never log it).
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Start of validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The leaf certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.certificate)
    }

    /// The leaf and the CA chain as PEM.
    pub fn chain_pem(&self) -> String {
        self.chain()
            .iter()
            .map(|c| pem::encode("CERTIFICATE", c))
            .collect()
    }

    /// The certificate chain and key as a rustls [`CertifiedKey`], checked to belong together.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>> {
        let provider = crate::tls::provider();
        Ok(Arc::new(CertifiedKey::from_der(
            self.chain(),
            self.key.to_rustls(),
            &provider,
        )?))
    }
}
