//! Certificates (`CERT-0xx`) of a `gatehouse certs` store: the CA (`ca/ca.pem`, `ca/ca.key`)
//! and every leaf (`controller/`, `gateways/NS/NAME/`): valid now, not expiring within the
//! warning threshold, lifetime within the maximum, key type and size, EKU matching the
//! role, SPIFFE ID shape, issued by the store's CA, keys mode 0600.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_certs::{CertificateInfo, CertsError, inspect_file};

use super::catalog::{self, Check};
use super::{Category, Ctx, Location, ObjectRef, Options, VerifyError};

/// What `ca/ca.json` says.
#[derive(serde::Deserialize)]
struct CaMeta {
    trust_domain: String,
    max_leaf_validity_secs: u64,
}

/// The role of a leaf, from its directory.
enum Role {
    Controller,
    Gateway { namespace: String, name: String },
}

fn certs_error(e: CertsError) -> VerifyError {
    match e {
        CertsError::Pem { path, line, reason } | CertsError::Certificate { path, line, reason } => {
            VerifyError::unparsable(&path.display().to_string(), line, reason)
        }
        other => VerifyError::could_not("the certificate store", other),
    }
}

fn human(d: Duration) -> String {
    gatehouse_certs::human_duration(d)
}

pub(crate) fn check(ctx: &mut Ctx, dir: &Path, options: &Options) -> Result<(), VerifyError> {
    ctx.evaluated_family(Category::Certificate);
    let meta_path = dir.join("ca").join("ca.json");
    let meta_text = std::fs::read_to_string(&meta_path).map_err(|e| {
        VerifyError::could_not(
            dir.display().to_string(),
            format!(
                "not a gatehouse certs store ({}: {e}; create one with `gatehouse certs init --dir DIR`)",
                meta_path.display()
            ),
        )
    })?;
    let meta: CaMeta = serde_json::from_str(&meta_text).map_err(|e| {
        VerifyError::unparsable(&meta_path.display().to_string(), e.line(), e.to_string())
    })?;
    let max_lifetime = options
        .cert_max_lifetime
        .unwrap_or(Duration::from_secs(meta.max_leaf_validity_secs));

    let ca_path = dir.join("ca").join("ca.pem");
    let ca_infos = inspect_file(&ca_path, options.now).map_err(certs_error)?;
    let Some(ca) = ca_infos.first() else {
        return Err(VerifyError::unparsable(
            &ca_path.display().to_string(),
            1,
            "no certificate",
        ));
    };
    let ca_object = ObjectRef::new("Certificate", "ca");
    check_common(ctx, &ca_object, &ca_path, ca, options);
    check_key_mode(ctx, &ca_object, &dir.join("ca").join("ca.key"))?;

    let mut leaves: Vec<(PathBuf, Role)> = Vec::new();
    let controller = dir.join("controller");
    if controller.join("cert.pem").exists() {
        leaves.push((controller, Role::Controller));
    }
    for ns in sorted_dirs(&dir.join("gateways"))? {
        for gw in sorted_dirs(&ns)? {
            if gw.join("cert.pem").exists() {
                let name = |p: &Path| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                leaves.push((
                    gw.clone(),
                    Role::Gateway {
                        namespace: name(&ns),
                        name: name(&gw),
                    },
                ));
            }
        }
    }
    for (leaf_dir, role) in leaves {
        let cert_path = leaf_dir.join("cert.pem");
        let infos = inspect_file(&cert_path, options.now).map_err(certs_error)?;
        let Some(info) = infos.first() else { continue };
        let (object, expected_id, expected_eku) = match &role {
            Role::Controller => (
                ObjectRef::new("Certificate", "controller"),
                format!("spiffe://{}/controller", meta.trust_domain),
                "serverAuth",
            ),
            Role::Gateway { namespace, name } => (
                ObjectRef::new("Certificate", &format!("gateway/{namespace}/{name}")),
                format!("spiffe://{}/gateway/{namespace}/{name}", meta.trust_domain),
                "clientAuth",
            ),
        };
        check_common(ctx, &object, &cert_path, info, options);
        let at = Some(Location::at(&cert_path.display().to_string(), info.line));
        let mut emit = |check: &'static Check, message: String| {
            ctx.report(check, object.clone(), at.clone(), message);
        };
        if let (Ok(start), Ok(end)) = (
            humantime::parse_rfc3339(&info.not_before),
            humantime::parse_rfc3339(&info.not_after),
        ) {
            let lifetime = end
                .duration_since(start)
                .unwrap_or_default()
                .saturating_sub(gatehouse_certs::BACKDATE);
            if lifetime > max_lifetime {
                emit(
                    catalog::CERT_003,
                    format!(
                        "lifetime {} exceeds the maximum {}",
                        human(lifetime),
                        human(max_lifetime)
                    ),
                );
            }
        }
        if info.extended_key_usage != [expected_eku] {
            emit(
                catalog::CERT_005,
                if info.extended_key_usage.is_empty() {
                    format!("no extended key usage (any purpose); want exactly {expected_eku}")
                } else {
                    format!(
                        "extended key usage {}; want exactly {expected_eku}",
                        info.extended_key_usage.join(", ")
                    )
                },
            );
        }
        if info.sans.uri != [expected_id.clone()] {
            emit(
                catalog::CERT_006,
                format!(
                    "URI SANs [{}]; want exactly {expected_id}",
                    info.sans.uri.join(", ")
                ),
            );
        }
        match issued_by(&cert_path, &ca_path) {
            Ok(true) => {}
            Ok(false) => emit(
                catalog::CERT_008,
                format!(
                    "its signature does not verify with the store's CA key (issuer \"{}\", CA \"{}\")",
                    info.issuer, ca.subject
                ),
            ),
            Err(reason) if info.issuer != ca.subject => emit(
                catalog::CERT_008,
                format!(
                    "issued by \"{}\", not by the store's CA \"{}\" ({reason})",
                    info.issuer, ca.subject
                ),
            ),
            Err(_) => {}
        }
        check_key_mode(ctx, &object, &leaf_dir.join("key.pem"))?;
    }
    Ok(())
}

/// The first certificate of a PEM file, as DER.
fn first_der(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| e.to_string())?;
        if pem.label == "CERTIFICATE" {
            return Ok(pem.contents);
        }
    }
    Err("no certificate".to_owned())
}

/// Whether the leaf's signature verifies with the CA's public key. `Err` when it cannot be
/// decided (a signature algorithm this build does not verify).
fn issued_by(leaf: &Path, ca: &Path) -> Result<bool, String> {
    use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    let leaf_der = first_der(leaf)?;
    let ca_der = first_der(ca)?;
    let (_, leaf) = X509Certificate::from_der(&leaf_der).map_err(|e| e.to_string())?;
    let (_, ca) = X509Certificate::from_der(&ca_der).map_err(|e| e.to_string())?;
    let spki = ca.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    let algorithm: &'static dyn VerificationAlgorithm = match (
        leaf.signature_algorithm.algorithm.to_id_string().as_str(),
        curve.as_deref(),
    ) {
        ("1.2.840.10045.4.3.2", Some(P256)) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", Some(P256)) => &signature::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.2", Some(P384)) => &signature::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", Some(P384)) => &signature::ECDSA_P384_SHA384_ASN1,
        ("1.3.101.112", _) => &signature::ED25519,
        ("1.2.840.113549.1.1.11", _) => &signature::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", _) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (other, _) => return Err(format!("signature algorithm {other} is not verified here")),
    };
    Ok(
        UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
            .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
            .is_ok(),
    )
}

/// CERT-001, CERT-002 and CERT-004: for the CA and every leaf.
fn check_common(
    ctx: &mut Ctx,
    object: &ObjectRef,
    path: &Path,
    info: &CertificateInfo,
    options: &Options,
) {
    let at = Some(Location::at(&path.display().to_string(), info.line));
    match info.status {
        "expired" => {
            ctx.report(
                catalog::CERT_001,
                object.clone(),
                at.clone(),
                format!("expired at {}", info.not_after),
            );
        }
        "not yet valid" => {
            ctx.report(
                catalog::CERT_001,
                object.clone(),
                at.clone(),
                format!("not valid before {}", info.not_before),
            );
        }
        _ => {
            let left = Duration::from_secs(info.seconds_left.unsigned_abs());
            // Short-lived leaves are renewed at half-life: for them the threshold is at most
            // half the lifetime, so a 24 h leaf warns only once rotation is late.
            let lifetime = match (
                humantime::parse_rfc3339(&info.not_before),
                humantime::parse_rfc3339(&info.not_after),
            ) {
                (Ok(start), Ok(end)) => end.duration_since(start).unwrap_or_default(),
                _ => Duration::MAX,
            };
            let threshold = options.cert_warn.min(lifetime / 2);
            if left < threshold {
                ctx.report(
                    catalog::CERT_002,
                    object.clone(),
                    at.clone(),
                    format!(
                        "expires in {} (at {}; threshold {}{})",
                        human(left),
                        info.not_after,
                        human(threshold),
                        if threshold < options.cert_warn {
                            ": half its lifetime, when rotation should have renewed it"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
    }
    let strong = match info.key_type.as_str() {
        "ECDSA P-256" | "ECDSA P-384" | "ECDSA P-521" | "Ed25519" | "Ed448" => true,
        other => other
            .strip_prefix("RSA ")
            .and_then(|bits| bits.parse::<usize>().ok())
            .is_some_and(|bits| bits >= 2048),
    };
    if !strong {
        ctx.report(
            catalog::CERT_004,
            object.clone(),
            at,
            format!("key type {}", info.key_type),
        );
    }
}

/// CERT-007: a private key readable by group or others.
fn check_key_mode(ctx: &mut Ctx, object: &ObjectRef, key: &Path) -> Result<(), VerifyError> {
    let meta = match std::fs::metadata(key) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(VerifyError::could_not(key.display().to_string(), e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        ctx.report(
            catalog::CERT_007,
            object.clone(),
            Some(Location::file(&key.display().to_string())),
            format!("private key mode {mode:04o}: readable by group or others"),
        );
    }
    Ok(())
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>, VerifyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(VerifyError::could_not(dir.display().to_string(), e)),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}
