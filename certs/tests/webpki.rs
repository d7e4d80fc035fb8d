//! Every certificate we issue, checked by an independent verifier (rustls-webpki) for its
//! purpose, and parsed back with x509-parser.

use std::path::Path;
use std::time::{Duration, SystemTime};

use gatehouse_certs::{
    CertificateAuthority, CertsError, Identity, IssuedLeaf, LeafRequest, TrustDomain,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const DAY: Duration = Duration::from_secs(86_400);

fn verify(
    leaf: &IssuedLeaf,
    anchors: &[CertificateDer<'static>],
    usage: KeyUsage,
) -> Result<(), webpki::Error> {
    let anchors: Vec<_> = anchors
        .iter()
        .map(|a| webpki::anchor_from_trusted_cert(a).unwrap().to_owned())
        .collect();
    let chain = leaf.chain();
    let ee = EndEntityCert::try_from(leaf.certificate()).unwrap();
    let now = UnixTime::since_unix_epoch(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap(),
    );
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        now,
        usage,
        None,
        None,
    )
    .map(|_| ())
}

fn uris(der: &[u8]) -> Vec<String> {
    let (_, x) = X509Certificate::from_der(der).unwrap();
    let san = x.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn controller_certificate_is_a_server_certificate_only() {
    let ca = CertificateAuthority::generate(TrustDomain::default(), 365 * DAY, SystemTime::now())
        .unwrap();
    let mut req = LeafRequest::new(Identity::Controller);
    req.dns_names = vec!["gatehouse-controller.gatehouse-system.svc".into()];
    req.ip_addresses = vec!["127.0.0.1".parse().unwrap()];
    let leaf = ca.issue(&req, SystemTime::now()).unwrap();

    verify(&leaf, &ca.trust_anchors(), KeyUsage::server_auth())
        .expect("valid TLS server certificate");
    assert!(
        verify(&leaf, &ca.trust_anchors(), KeyUsage::client_auth()).is_err(),
        "not a client certificate"
    );
    let ee = EndEntityCert::try_from(leaf.certificate()).unwrap();
    ee.verify_is_valid_for_subject_name(
        &ServerName::try_from("gatehouse-controller.gatehouse-system.svc").unwrap(),
    )
    .unwrap();
    ee.verify_is_valid_for_subject_name(&ServerName::try_from("127.0.0.1").unwrap())
        .unwrap();
    assert!(
        ee.verify_is_valid_for_subject_name(&ServerName::try_from("evil.example").unwrap())
            .is_err()
    );
    assert_eq!(
        uris(leaf.certificate()),
        vec!["spiffe://gatehouse.local/controller"]
    );
}

#[test]
fn gateway_certificate_is_a_client_certificate_only() {
    let td: TrustDomain = "prod.example".parse().unwrap();
    let ca = CertificateAuthority::generate(td, 365 * DAY, SystemTime::now()).unwrap();
    let leaf = ca
        .issue(
            &LeafRequest::new(Identity::Gateway("tenant-a/edge".parse().unwrap())),
            SystemTime::now(),
        )
        .unwrap();
    verify(&leaf, &ca.trust_anchors(), KeyUsage::client_auth())
        .expect("valid TLS client certificate");
    assert!(
        verify(&leaf, &ca.trust_anchors(), KeyUsage::server_auth()).is_err(),
        "not a server certificate"
    );
    assert_eq!(
        uris(leaf.certificate()),
        vec!["spiffe://prod.example/gateway/tenant-a/edge"]
    );
    let (_, x) = X509Certificate::from_der(leaf.certificate()).unwrap();
    assert!(!x.is_ca());
    let lifetime = asn1(x.validity().not_after) - asn1(x.validity().not_before);
    assert_eq!(
        lifetime,
        (DAY + gatehouse_certs::BACKDATE).as_secs() as i64,
        "24 h plus the backdating"
    );
}

#[test]
fn each_leaf_gets_its_own_key() {
    let ca = CertificateAuthority::generate(TrustDomain::default(), 365 * DAY, SystemTime::now())
        .unwrap();
    let req = LeafRequest::new(Identity::Gateway("edge/a".parse().unwrap()));
    let a = ca.issue(&req, SystemTime::now()).unwrap();
    let b = ca.issue(&req, SystemTime::now()).unwrap();
    let spki = |l: &IssuedLeaf| {
        let (_, x) = X509Certificate::from_der(l.certificate()).unwrap();
        x.public_key().raw.to_vec()
    };
    assert_ne!(spki(&a), spki(&b));
    let (_, ca_x) = X509Certificate::from_der(ca.certificate()).unwrap();
    assert_ne!(spki(&a), ca_x.public_key().raw.to_vec());
}

fn asn1(t: x509_parser::time::ASN1Time) -> i64 {
    t.timestamp()
}

/// A root and an intermediate made with rcgen directly, not with our CA code.
fn external_pki(
    dir: &Path,
) -> (
    CertificateDer<'static>,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params
        .distinguished_name
        .push(DnType::CommonName, "External Root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_key = KeyPair::generate().unwrap();
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);

    let mut int_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    int_params
        .distinguished_name
        .push(DnType::CommonName, "External Intermediate");
    int_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    int_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    int_params.use_authority_key_identifier_extension = true;
    let int_key = KeyPair::generate().unwrap();
    let int = int_params.signed_by(&int_key, &root_issuer).unwrap();

    let cert_path = dir.join("intermediate-chain.pem");
    std::fs::write(&cert_path, format!("{}{}", int.pem(), root.pem())).unwrap();
    let key_path = dir.join("intermediate.key");
    std::fs::write(&key_path, int_key.serialize_pem()).unwrap();
    (root.der().clone(), cert_path, key_path)
}

#[test]
fn a_brought_intermediate_issues_leaves_that_chain_to_its_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cert_path, key_path) = external_pki(tmp.path());
    let ca = CertificateAuthority::from_pem_files(
        &cert_path,
        &key_path,
        TrustDomain::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        ca.trust_anchors(),
        vec![root.clone()],
        "the root is the trust anchor"
    );
    let leaf = ca
        .issue(
            &LeafRequest::new(Identity::Gateway("edge/public".parse().unwrap())),
            SystemTime::now(),
        )
        .unwrap();
    assert_eq!(leaf.chain().len(), 3, "leaf, intermediate, root");
    verify(&leaf, &[root], KeyUsage::client_auth())
        .expect("chains through the intermediate to the root");
}

#[test]
fn bringing_a_ca_checks_key_and_constraints() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, cert_path, key_path) = external_pki(tmp.path());
    let now = SystemTime::now();

    // A key that is not the certificate's.
    let other_key = tmp.path().join("other.key");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let err =
        CertificateAuthority::from_pem_files(&cert_path, &other_key, TrustDomain::default(), now)
            .unwrap_err();
    assert!(matches!(err, CertsError::KeyMismatch { .. }), "{err}");

    // A leaf certificate is not a CA.
    let ca = CertificateAuthority::generate(TrustDomain::default(), 365 * DAY, now).unwrap();
    let leaf = ca
        .issue(&LeafRequest::new(Identity::Controller), now)
        .unwrap();
    let leaf_cert = tmp.path().join("leaf.pem");
    let leaf_key = tmp.path().join("leaf.key");
    std::fs::write(&leaf_cert, leaf.cert_pem()).unwrap();
    std::fs::write(&leaf_key, leaf.key().to_pem().as_bytes()).unwrap();
    let err =
        CertificateAuthority::from_pem_files(&leaf_cert, &leaf_key, TrustDomain::default(), now)
            .unwrap_err();
    assert!(err.to_string().contains("is not a CA certificate"), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");

    // An expired CA.
    let err = CertificateAuthority::from_pem_files(
        &cert_path,
        &key_path,
        TrustDomain::default(),
        now + 365 * 5000 * DAY,
    )
    .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn issuing_refuses_bad_lifetimes() {
    let now = SystemTime::now();
    let ca = CertificateAuthority::generate(TrustDomain::default(), 2 * DAY, now).unwrap();
    let mut req = LeafRequest::new(Identity::Controller);
    req.validity = 3 * DAY;
    let err = ca.issue(&req, now).unwrap_err().to_string();
    assert!(
        err.contains("ends after the CA certificate expires"),
        "{err}"
    );
    req.validity = 31 * DAY;
    let err = ca.issue(&req, now).unwrap_err().to_string();
    assert!(err.contains("maximum leaf lifetime of 30days"), "{err}");
    req.validity = Duration::from_secs(1);
    assert!(ca.issue(&req, now).is_err());
    req.validity = DAY;
    let err = ca.issue(&req, now + 3 * DAY).unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");
}
