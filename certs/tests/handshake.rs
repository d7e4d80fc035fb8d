//! Loopback TLS handshakes with our rustls configurations: who gets in and who does not.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_certs::{
    CertificateAuthority, Clock, Identity, IssuedLeaf, LeafRequest, ReloadableCert, SystemClock,
    TrustDomain, client_config, server_config,
};
use rustls::{CertificateError, Error as TlsError};
use support::{connect, echo_server, tls_error};

const DAY: Duration = Duration::from_secs(86_400);

struct Pki {
    ca: CertificateAuthority,
    clock: Arc<dyn Clock>,
}

impl Pki {
    fn new() -> Self {
        // Started three days ago, so that a leaf issued two days ago has expired by now.
        let start = SystemTime::now() - 3 * DAY;
        Self {
            ca: CertificateAuthority::generate(TrustDomain::default(), 365 * DAY, start).unwrap(),
            clock: Arc::new(SystemClock),
        }
    }

    fn leaf(&self, identity: Identity, issued_at: SystemTime) -> IssuedLeaf {
        let mut req = LeafRequest::new(identity);
        if req.identity == Identity::Controller {
            req.dns_names = vec!["xds.gatehouse.test".into()];
        }
        self.ca.issue(&req, issued_at).unwrap()
    }

    fn gateway(&self) -> IssuedLeaf {
        self.leaf(
            Identity::Gateway("edge/public".parse().unwrap()),
            SystemTime::now(),
        )
    }

    async fn server(
        &self,
    ) -> (
        std::net::SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<support::Accepted>,
    ) {
        let cert =
            ReloadableCert::new(&self.leaf(Identity::Controller, SystemTime::now())).unwrap();
        let cfg =
            server_config(&self.ca.trust_anchors(), Arc::new(cert), self.clock.clone()).unwrap();
        echo_server(cfg).await
    }

    fn client(&self, leaf: &IssuedLeaf) -> rustls::ClientConfig {
        client_config(
            &self.ca.trust_anchors(),
            Arc::new(ReloadableCert::new(leaf).unwrap()),
            self.clock.clone(),
        )
        .unwrap()
    }
}

/// The server's verdict on the handshake.
async fn verdict(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<support::Accepted>,
) -> support::Accepted {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn gateway_certificate_is_accepted_and_identified() {
    let pki = Pki::new();
    let (addr, mut rx) = pki.server().await;
    let gw = pki.gateway();
    let mut client = connect(pki.client(&gw), addr, "xds.gatehouse.test")
        .await
        .unwrap();
    assert_eq!(client.echo("again").await.unwrap(), "again");
    let peer = verdict(&mut rx).await.unwrap();
    assert_eq!(peer, gw.certificate().to_vec());
    // The server can tell who connected from the URI SAN.
    let info = gatehouse_certs::inspect_der(&peer, 0, 1, SystemTime::now()).unwrap();
    assert_eq!(
        info.sans.uri,
        vec!["spiffe://gatehouse.local/gateway/edge/public"]
    );
}

#[tokio::test]
async fn client_without_certificate_is_rejected() {
    let pki = Pki::new();
    let (addr, mut rx) = pki.server().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.certificate().clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(gatehouse_certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(connect(cfg, addr, "xds.gatehouse.test").await.is_err());
    let err = verdict(&mut rx).await.unwrap_err();
    assert!(
        matches!(tls_error(&err), Some(TlsError::NoCertificatesPresented)),
        "{err}"
    );
}

#[tokio::test]
async fn certificate_from_another_ca_is_rejected() {
    let pki = Pki::new();
    let other = Pki::new();
    let stranger = Pki {
        ca: CertificateAuthority::generate(
            "other.example".parse().unwrap(),
            365 * DAY,
            SystemTime::now(),
        )
        .unwrap(),
        clock: pki.clock.clone(),
    };
    let (addr2, mut rx2) = pki.server().await;
    let cfg = client_config(
        &pki.ca.trust_anchors(),
        Arc::new(ReloadableCert::new(&stranger.gateway()).unwrap()),
        pki.clock.clone(),
    )
    .unwrap();
    assert!(connect(cfg, addr2, "xds.gatehouse.test").await.is_err());
    let err = verdict(&mut rx2).await.unwrap_err();
    assert!(
        matches!(
            tls_error(&err),
            Some(TlsError::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ),
        "{err}"
    );

    let (addr, mut rx) = pki.server().await;
    // Trusts our server, but presents a certificate from another CA.
    let foreign = other.gateway();
    let cfg = client_config(
        &pki.ca.trust_anchors(),
        Arc::new(ReloadableCert::new(&foreign).unwrap()),
        pki.clock.clone(),
    )
    .unwrap();
    assert!(connect(cfg, addr, "xds.gatehouse.test").await.is_err());
    let err = verdict(&mut rx).await.unwrap_err();
    // Both CAs are named after the same trust domain, so the issuer name matches our anchor
    // and the signature does not; a CA with another name is an unknown issuer.
    assert!(
        matches!(
            tls_error(&err),
            Some(TlsError::InvalidCertificate(
                CertificateError::BadSignature | CertificateError::UnknownIssuer
            ))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn expired_certificate_is_rejected() {
    let pki = Pki::new();
    let (addr, mut rx) = pki.server().await;
    // Issued two days ago for 24 hours.
    let expired = pki.leaf(
        Identity::Gateway("edge/public".parse().unwrap()),
        SystemTime::now() - 2 * DAY,
    );
    assert!(
        connect(pki.client(&expired), addr, "xds.gatehouse.test")
            .await
            .is_err()
    );
    let err = verdict(&mut rx).await.unwrap_err();
    assert!(
        matches!(
            tls_error(&err),
            Some(TlsError::InvalidCertificate(
                CertificateError::ExpiredContext { .. } | CertificateError::Expired
            ))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn server_certificate_used_as_client_is_rejected() {
    let pki = Pki::new();
    let (addr, mut rx) = pki.server().await;
    // The controller's serverAuth-only certificate, presented as a client certificate.
    let server_only = pki.leaf(Identity::Controller, SystemTime::now());
    assert!(
        connect(pki.client(&server_only), addr, "xds.gatehouse.test")
            .await
            .is_err()
    );
    let err = verdict(&mut rx).await.unwrap_err();
    assert!(
        matches!(
            tls_error(&err),
            Some(TlsError::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
            ))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn tls12_only_client_is_rejected() {
    let pki = Pki::new();
    let (addr, mut rx) = pki.server().await;
    let gw = pki.gateway();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.certificate().clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(gatehouse_certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(gw.chain(), gw.key().to_rustls())
        .unwrap();
    assert!(connect(cfg, addr, "xds.gatehouse.test").await.is_err());
    let err = verdict(&mut rx).await.unwrap_err();
    assert!(
        matches!(tls_error(&err), Some(TlsError::PeerIncompatible(_))),
        "{err}"
    );
}

#[tokio::test]
async fn client_refuses_a_server_with_the_wrong_name() {
    let pki = Pki::new();
    let (addr, _rx) = pki.server().await;
    let err = connect(pki.client(&pki.gateway()), addr, "not-the-controller.test")
        .await
        .err()
        .expect("name mismatch must fail");
    assert!(
        matches!(
            tls_error(&err),
            Some(TlsError::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. } | CertificateError::NotValidForName
            ))
        ),
        "{err}"
    );
}
