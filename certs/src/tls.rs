//! rustls configurations for the xDS connection: TLS 1.3 only, client certificates required
//! and verified against our CA, time read from the injected clock.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::clock::{Clock, ClockTime};
use crate::error::{CertsError, Result};

/// The one crypto provider Gatehouse uses (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(anchors: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for a in anchors {
        roots.add(a.clone())?;
    }
    if roots.is_empty() {
        return Err(CertsError::Verifier("no trust anchors".to_owned()));
    }
    Ok(Arc::new(roots))
}

/// The xDS server's configuration: TLS 1.3 only; every client must present a certificate that
/// chains to `anchors` and carries the clientAuth EKU; ALPN `h2`; no session resumption.
pub fn server_config(
    anchors: &[CertificateDer<'static>],
    cert: Arc<dyn ResolvesServerCert>,
    clock: Arc<dyn Clock>,
) -> Result<ServerConfig> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(anchors)?, provider.clone())
        .build()
        .map_err(|e| CertsError::Verifier(e.to_string()))?;
    let mut cfg = ServerConfig::builder_with_details(provider, Arc::new(ClockTime(clock)))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    // No session resumption: every connection is a full handshake, so every client
    // certificate is verified (expiry included) and every client sees the current server
    // certificate. xDS connections are long-lived; the cost is one handshake per connection.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(cfg)
}

/// A client configuration for connecting to the xDS server: TLS 1.3 only; the server must
/// chain to `anchors`, carry the serverAuth EKU and match the name dialled; presents `cert`;
/// no session resumption.
pub fn client_config(
    anchors: &[CertificateDer<'static>],
    cert: Arc<dyn ResolvesClientCert>,
    clock: Arc<dyn Clock>,
) -> Result<ClientConfig> {
    let mut cfg = ClientConfig::builder_with_details(provider(), Arc::new(ClockTime(clock)))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(anchors)?)
        .with_client_cert_resolver(cert);
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(cfg)
}
