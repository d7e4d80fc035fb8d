//! The certificate authority: a new ECDSA P-256 CA, or an existing CA (or intermediate)
//! brought from files; it issues the controller's and the gateways' leaf certificates.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::clock::{human_duration, to_offset};
use crate::error::{CertsError, Result};
use crate::identity::{Identity, Role, TrustDomain, check_dns_san};
use crate::leaf::IssuedLeaf;
use crate::pem::{self, PemBlock};
use crate::secret::SecretKey;

/// Certificates are backdated by this much to tolerate clock skew between hosts.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The default lifetime of a new CA.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// The default lifetime of a leaf certificate.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// The default upper bound on a leaf certificate's lifetime.
pub const DEFAULT_MAX_LEAF_VALIDITY: Duration = Duration::from_secs(30 * 86_400);

/// What to issue: an identity, extra SANs and a lifetime.
#[derive(Clone, Debug)]
pub struct LeafRequest {
    /// The workload identity (decides the URI SAN and the EKU).
    pub identity: Identity,
    /// DNS SANs (the controller's service names).
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// Lifetime, counted from the time of issuance.
    pub validity: Duration,
}

impl LeafRequest {
    /// A request for `identity` with the default lifetime and no extra SANs.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            validity: DEFAULT_LEAF_VALIDITY,
        }
    }
}

/// A certificate authority that can sign leaf certificates.
pub struct CertificateAuthority {
    trust_domain: TrustDomain,
    /// The CA certificate (the issuer of every leaf).
    certificate: CertificateDer<'static>,
    /// The CA certificate first, then the certificates above it (if it is an intermediate).
    chain: Vec<CertificateDer<'static>>,
    issuer: Issuer<'static, KeyPair>,
    not_before: SystemTime,
    not_after: SystemTime,
    max_leaf_validity: Duration,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a new self-signed ECDSA P-256 CA valid for `validity` from `now`.
    pub fn generate(
        trust_domain: TrustDomain,
        validity: Duration,
        now: SystemTime,
    ) -> Result<Self> {
        if validity < Duration::from_secs(3600) {
            return Err(CertsError::Validity {
                requested: humantime::format_duration(validity).to_string(),
                reason: "is shorter than the minimum CA lifetime of 1h".to_owned(),
            });
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Gatehouse");
        dn.push(DnType::CommonName, format!("Gatehouse CA {trust_domain}"));
        params.distinguished_name = dn;
        // Path length 0: this CA signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let not_before = now - BACKDATE;
        let not_after = now + validity;
        params.not_before = to_offset(not_before);
        params.not_after = to_offset(not_after);
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        let der = cert.der().clone();
        Ok(Self {
            trust_domain,
            certificate: der.clone(),
            chain: vec![der],
            issuer: Issuer::new(params, key),
            not_before: truncate_secs(not_before),
            not_after: truncate_secs(not_after),
            max_leaf_validity: DEFAULT_MAX_LEAF_VALIDITY,
        })
    }

    /// Loads an existing CA (or intermediate) from a PEM certificate file and a PEM key file.
    ///
    /// The certificate file holds the CA certificate first, optionally followed by the
    /// certificates above it; the last one is the trust anchor. The CA must have the CA basic
    /// constraint, may sign certificates, must be valid at `now`, and the key must be its key.
    pub fn from_pem_files(
        cert_path: &Path,
        key_path: &Path,
        trust_domain: TrustDomain,
        now: SystemTime,
    ) -> Result<Self> {
        let cert_blocks = pem::parse(cert_path, &pem::read_text(cert_path)?)?;
        let key_blocks = pem::parse(key_path, &pem::read_text(key_path)?)?;
        let chain = certificates(cert_path, &cert_blocks)?;
        let Some((ca_block, ca_der)) = cert_blocks
            .iter()
            .filter(|b| b.label == "CERTIFICATE")
            .zip(chain.iter())
            .next()
        else {
            return Err(CertsError::Certificate {
                path: cert_path.to_owned(),
                line: 1,
                reason: "no certificate found".to_owned(),
            });
        };
        let cert_err = |reason: String| CertsError::Certificate {
            path: cert_path.to_owned(),
            line: ca_block.line,
            reason,
        };
        let (_, x509) = X509Certificate::from_der(ca_der)
            .map_err(|e| cert_err(format!("invalid certificate: {e}")))?;
        let bc = x509
            .basic_constraints()
            .map_err(|e| cert_err(format!("invalid basic constraints: {e}")))?;
        if !bc.is_some_and(|bc| bc.value.ca) {
            return Err(cert_err(
                "is not a CA certificate (its basic constraints do not say CA:TRUE)".to_owned(),
            ));
        }
        let ku = x509
            .key_usage()
            .map_err(|e| cert_err(format!("invalid key usage: {e}")))?;
        if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
            return Err(cert_err(
                "may not sign certificates (its key usage lacks keyCertSign)".to_owned(),
            ));
        }
        let not_before = asn1_to_system(x509.validity().not_before);
        let not_after = asn1_to_system(x509.validity().not_after);
        if now >= not_after {
            return Err(cert_err(format!(
                "expired at {}",
                x509.validity().not_after
            )));
        }
        if now < not_before {
            return Err(cert_err(format!(
                "is not valid before {}",
                x509.validity().not_before
            )));
        }

        let key = load_key(key_path, &key_blocks)?;
        if key.der_bytes() != x509.public_key().subject_public_key.data.as_ref() {
            return Err(CertsError::KeyMismatch {
                key: key_path.to_owned(),
                cert: cert_path.to_owned(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(ca_der, key).map_err(|e| cert_err(e.to_string()))?;
        Ok(Self {
            trust_domain,
            certificate: ca_der.clone(),
            chain,
            issuer,
            not_before,
            not_after,
            max_leaf_validity: DEFAULT_MAX_LEAF_VALIDITY,
        })
    }

    /// Sets the longest lifetime this CA will give a leaf certificate.
    pub fn with_max_leaf_validity(mut self, max: Duration) -> Self {
        self.max_leaf_validity = max;
        self
    }

    /// The longest lifetime this CA gives a leaf certificate.
    pub fn max_leaf_validity(&self) -> Duration {
        self.max_leaf_validity
    }

    /// The trust domain of the identities this CA issues.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The CA certificate followed by the certificates above it.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The trust anchors to verify this CA's leaves with: the last certificate of the chain.
    pub fn trust_anchors(&self) -> Vec<CertificateDer<'static>> {
        self.chain.last().cloned().into_iter().collect()
    }

    /// When the CA certificate stops being valid.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// When the CA certificate starts being valid.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// The CA's private key as PKCS#8 (for the store; never log it).
    pub fn private_key(&self) -> SecretKey {
        SecretKey::from_pkcs8(self.issuer.key().serialize_der())
    }

    /// The CA certificate chain as PEM.
    pub fn chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| pem::encode("CERTIFICATE", c))
            .collect()
    }

    /// Issues a leaf certificate with a new ECDSA P-256 key, valid from `now`.
    ///
    /// Refuses a lifetime of zero, one above the CA's maximum, and one that would outlive the
    /// CA certificate.
    pub fn issue(&self, req: &LeafRequest, now: SystemTime) -> Result<IssuedLeaf> {
        let requested = humantime::format_duration(req.validity).to_string();
        if req.validity < Duration::from_secs(60) {
            return Err(CertsError::Validity {
                requested,
                reason: "is shorter than the minimum of 1m".to_owned(),
            });
        }
        if req.validity > self.max_leaf_validity {
            return Err(CertsError::Validity {
                requested,
                reason: format!(
                    "is longer than this CA's maximum leaf lifetime of {} (choose a shorter --validity)",
                    humantime::format_duration(self.max_leaf_validity)
                ),
            });
        }
        if now < self.not_before {
            return Err(CertsError::CaUnusable {
                reason: "is not valid yet (check the system clock)".to_owned(),
            });
        }
        let Ok(ca_left) = self.not_after.duration_since(now) else {
            return Err(CertsError::CaUnusable {
                reason: format!("expired at {}", crate::inspect::rfc3339(self.not_after)),
            });
        };
        if req.validity > ca_left {
            return Err(CertsError::Validity {
                requested,
                reason: format!(
                    "ends after the CA certificate expires (at {}, in {}); choose a shorter --validity or renew the CA",
                    crate::inspect::rfc3339(self.not_after),
                    human_duration(ca_left)
                ),
            });
        }
        for dns in &req.dns_names {
            check_dns_san(dns)?;
        }

        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Gatehouse");
        dn.push(
            DnType::CommonName,
            match &req.identity {
                Identity::Controller => "controller".to_owned(),
                Identity::Gateway(gw) => gw.to_string(),
            },
        );
        params.distinguished_name = dn;
        let uri = req.identity.spiffe_id(&self.trust_domain);
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into()?));
        for dns in &req.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into()?));
        }
        for ip in &req.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match req.identity.role() {
            Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        let not_before = now - BACKDATE;
        let not_after = now + req.validity;
        params.not_before = to_offset(not_before);
        params.not_after = to_offset(not_after);
        params.serial_number = Some(random_serial()?);

        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedLeaf::new(
            req.identity.clone(),
            cert.der().clone(),
            self.chain.clone(),
            SecretKey::from_pkcs8(key.serialize_der()),
            truncate_secs(not_before),
            truncate_secs(not_after),
        ))
    }
}

/// Parses every `CERTIFICATE` block of a file (other blocks are an error in a certificate file).
pub(crate) fn certificates(
    path: &Path,
    blocks: &[PemBlock],
) -> Result<Vec<CertificateDer<'static>>> {
    let mut out = Vec::new();
    for b in blocks {
        if b.label != "CERTIFICATE" {
            return Err(CertsError::Certificate {
                path: path.to_owned(),
                line: b.line,
                reason: format!("expected a `CERTIFICATE` block, found `{}`", b.label),
            });
        }
        X509Certificate::from_der(&b.der).map_err(|e| CertsError::Certificate {
            path: path.to_owned(),
            line: b.line,
            reason: format!("not a valid X.509 certificate: {e}"),
        })?;
        out.push(CertificateDer::from(b.der.clone()));
    }
    Ok(out)
}

/// Loads the one private key of a key file (PKCS#8, SEC1 or PKCS#1).
fn load_key(path: &Path, blocks: &[PemBlock]) -> Result<KeyPair> {
    let mut keys = blocks.iter().filter(|b| b.label.ends_with("PRIVATE KEY"));
    let Some(block) = keys.next() else {
        return Err(CertsError::Key {
            path: path.to_owned(),
            line: blocks.first().map_or(1, |b| b.line),
            reason: "no private key found (expected `-----BEGIN PRIVATE KEY-----`)".to_owned(),
        });
    };
    if let Some(second) = keys.next() {
        return Err(CertsError::Key {
            path: path.to_owned(),
            line: second.line,
            reason: "more than one private key in the file".to_owned(),
        });
    }
    if block.label.contains("ENCRYPTED") {
        return Err(CertsError::Key {
            path: path.to_owned(),
            line: block.line,
            reason: "the key is encrypted (decrypt it first, e.g. `openssl pkcs8 -topk8 -nocrypt`)"
                .to_owned(),
        });
    }
    KeyPair::try_from(block.der.as_slice()).map_err(|e| CertsError::Key {
        path: path.to_owned(),
        line: block.line,
        reason: format!(
            "unsupported or invalid private key ({e}); use ECDSA P-256/P-384, Ed25519 or RSA"
        ),
    })
}

/// A random, positive 128-bit serial number.
fn random_serial() -> Result<SerialNumber> {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CertsError::Generate(rcgen::Error::RingUnspecified))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// X.509 stores whole seconds: drop the sub-second part so stored and parsed times agree.
fn truncate_secs(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// Converts an X.509 time to a `SystemTime`.
pub(crate) fn asn1_to_system(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}
