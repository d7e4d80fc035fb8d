//! What `gatehouse certs inspect` shows of a certificate.

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::ca::asn1_to_system;
use crate::clock::human_duration;
use crate::error::{CertsError, Result};
use crate::pem;

/// Everything `inspect` reports about one certificate. Serialises to the JSON output.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CertificateInfo {
    /// Position in the file (0 = first certificate).
    pub index: usize,
    /// Line of the PEM block in the file.
    pub line: usize,
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// Subject alternative names.
    pub sans: Sans,
    /// Key usage names (`digitalSignature`, `keyCertSign`, ...).
    pub key_usage: Vec<String>,
    /// Extended key usage names (`serverAuth`, `clientAuth`, ...).
    pub extended_key_usage: Vec<String>,
    /// Key type and size, e.g. `ECDSA P-256`.
    pub key_type: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Seconds of validity left (negative once expired).
    pub seconds_left: i64,
    /// `valid`, `expired` or `not yet valid`.
    pub status: &'static str,
    /// SHA-256 fingerprint of the DER, colon-separated hex.
    pub sha256_fingerprint: String,
}

/// Subject alternative names by kind.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Sans {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ip: Vec<String>,
    /// URIs (SPIFFE IDs).
    pub uri: Vec<String>,
}

/// Inspects every certificate of a PEM file at time `now`. Private key blocks are skipped and
/// never printed.
pub fn inspect_file(path: &Path, now: SystemTime) -> Result<Vec<CertificateInfo>> {
    let blocks = pem::parse(path, &pem::read_text(path)?)?;
    let mut out = Vec::new();
    for b in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
        let info = inspect_der(&b.der, out.len(), b.line, now).map_err(|reason| {
            CertsError::Certificate {
                path: path.to_owned(),
                line: b.line,
                reason,
            }
        })?;
        out.push(info);
    }
    if out.is_empty() {
        return Err(CertsError::Certificate {
            path: path.to_owned(),
            line: blocks.first().map_or(1, |b| b.line),
            reason: "contains no certificate (inspect reads certificates, never keys)".to_owned(),
        });
    }
    Ok(out)
}

/// Inspects one DER certificate.
pub fn inspect_der(
    der: &[u8],
    index: usize,
    line: usize,
    now: SystemTime,
) -> Result<CertificateInfo, String> {
    let (_, x) = X509Certificate::from_der(der)
        .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
    let mut sans = Sans::default();
    if let Some(san) = x.subject_alternative_name().map_err(|e| e.to_string())? {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.dns.push((*d).to_owned()),
                GeneralName::URI(u) => sans.uri.push((*u).to_owned()),
                GeneralName::IPAddress(b) => {
                    sans.ip.push(
                        ip_from_bytes(b).map_or_else(|| format!("{b:02x?}"), |ip| ip.to_string()),
                    );
                }
                other => sans.uri.push(other.to_string()),
            }
        }
    }
    let mut key_usage = Vec::new();
    if let Some(ku) = x.key_usage().map_err(|e| e.to_string())? {
        let k = ku.value;
        for (set, name) in [
            (k.digital_signature(), "digitalSignature"),
            (k.non_repudiation(), "contentCommitment"),
            (k.key_encipherment(), "keyEncipherment"),
            (k.data_encipherment(), "dataEncipherment"),
            (k.key_agreement(), "keyAgreement"),
            (k.key_cert_sign(), "keyCertSign"),
            (k.crl_sign(), "cRLSign"),
            (k.encipher_only(), "encipherOnly"),
            (k.decipher_only(), "decipherOnly"),
        ] {
            if set {
                key_usage.push(name.to_owned());
            }
        }
    }
    let mut extended_key_usage = Vec::new();
    if let Some(eku) = x.extended_key_usage().map_err(|e| e.to_string())? {
        let e = eku.value;
        for (set, name) in [
            (e.any, "any"),
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.code_signing, "codeSigning"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
        ] {
            if set {
                extended_key_usage.push(name.to_owned());
            }
        }
        extended_key_usage.extend(e.other.iter().map(|o| o.to_id_string()));
    }
    let not_before = asn1_to_system(x.validity().not_before);
    let not_after = asn1_to_system(x.validity().not_after);
    let seconds_left = match not_after.duration_since(now) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let status = if now < not_before {
        "not yet valid"
    } else if now >= not_after {
        "expired"
    } else {
        "valid"
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    Ok(CertificateInfo {
        index,
        line,
        subject: x.subject().to_string(),
        issuer: x.issuer().to_string(),
        serial: x.raw_serial_as_string(),
        is_ca: x.is_ca(),
        sans,
        key_usage,
        extended_key_usage,
        key_type: key_type(&x),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        seconds_left,
        status,
        sha256_fingerprint: digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    })
}

fn key_type(x: &X509Certificate<'_>) -> String {
    let spki = x.public_key();
    match spki.parsed() {
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_owned(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_owned(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_owned(),
                Some(other) => format!("ECDSA (curve {other})"),
                None => "ECDSA (unknown curve)".to_owned(),
            }
        }
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => "Ed25519".to_owned(),
            "1.3.101.113" => "Ed448".to_owned(),
            other => format!("unknown ({other})"),
        },
    }
}

/// Formats a time as RFC 3339 UTC, seconds precision.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(crate) fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

impl CertificateInfo {
    /// The text form of `inspect`.
    pub fn to_text(&self) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                v.join(", ")
            }
        };
        let left = if self.seconds_left >= 0 {
            format!(
                "{} left",
                human_duration(std::time::Duration::from_secs(
                    self.seconds_left.unsigned_abs()
                ))
            )
        } else {
            format!(
                "expired {} ago",
                human_duration(std::time::Duration::from_secs(
                    self.seconds_left.unsigned_abs()
                ))
            )
        };
        let mut s = String::new();
        let mut row = |k: &str, v: String| s.push_str(&format!("{k:<20}{v}\n"));
        row(
            "Certificate",
            format!("#{} (line {})", self.index, self.line),
        );
        row("Subject", self.subject.clone());
        row("Issuer", self.issuer.clone());
        row("Serial", self.serial.clone());
        row("CA", if self.is_ca { "yes" } else { "no" }.to_owned());
        row("URI SANs", list(&self.sans.uri));
        row("DNS SANs", list(&self.sans.dns));
        row("IP SANs", list(&self.sans.ip));
        row("Key usage", list(&self.key_usage));
        row("Extended key usage", list(&self.extended_key_usage));
        row("Key type", self.key_type.clone());
        row("Not before", self.not_before.clone());
        row("Not after", self.not_after.clone());
        row("Status", format!("{} ({left})", self.status));
        row("SHA-256", self.sha256_fingerprint.clone());
        s
    }
}
