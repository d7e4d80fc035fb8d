//! The on-disk CA store.
//!
//! ```text
//! DIR/
//!   ca/            ca.pem (CA certificate, then any parents), ca.key (0600),
//!                  bundle.pem (trust anchors), ca.json (trust domain, limits)
//!   controller/    cert.pem, chain.pem, key.pem (0600), ca.pem
//!   gateways/NAMESPACE/NAME/
//!                  cert.pem, chain.pem, key.pem (0600), ca.pem
//! ```
//!
//! Each of these directories is replaced as a whole (see [`crate::atomic`]): the visible files
//! are symlinks through `..data` to a hidden version directory, so a reader never sees a
//! certificate next to the wrong key.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::atomic::{self, FileSpec};
use crate::ca::{BACKDATE, CertificateAuthority, asn1_to_system, certificates};
use crate::error::{CertsError, Result};
use crate::identity::{Identity, TrustDomain};
use crate::leaf::IssuedLeaf;
use crate::pem;

const CA_DIR: &str = "ca";
const CA_META: &str = "ca.json";
/// File names inside a leaf directory.
pub const CERT_FILE: &str = "cert.pem";
/// The leaf followed by the CA chain.
pub const CHAIN_FILE: &str = "chain.pem";
/// The leaf's private key (mode 0600).
pub const KEY_FILE: &str = "key.pem";
/// The trust anchors to verify peers with.
pub const BUNDLE_FILE: &str = "ca.pem";

#[derive(serde::Serialize, serde::Deserialize)]
struct CaMeta {
    format: u32,
    trust_domain: TrustDomain,
    max_leaf_validity_secs: u64,
}

/// A CA store directory.
#[derive(Clone, Debug)]
pub struct CaStore {
    dir: PathBuf,
}

/// A leaf certificate found in the store.
#[derive(Clone, Debug)]
pub struct StoredLeaf {
    /// Who it is for.
    pub identity: Identity,
    /// Its directory.
    pub dir: PathBuf,
    /// The certificate.
    pub certificate: CertificateDer<'static>,
    /// Its DNS SANs.
    pub dns_names: Vec<String>,
    /// Its IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl StoredLeaf {
    /// The lifetime it was issued with (without the clock-skew backdating).
    pub fn requested_validity(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
            .saturating_sub(BACKDATE)
    }
}

impl CaStore {
    /// Opens the store at `dir`, which must be an existing directory.
    pub fn open(dir: &Path) -> Result<Self> {
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CertsError::MissingDir {
                path: dir.to_owned(),
            }),
            Err(source) => Err(CertsError::Read {
                path: dir.to_owned(),
                source,
            }),
            Ok(m) if !m.is_dir() => Err(CertsError::NotADirectory {
                path: dir.to_owned(),
            }),
            Ok(_) => Ok(Self {
                dir: dir.to_owned(),
            }),
        }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the CA files.
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.join(CA_DIR)
    }

    /// Whether a CA is present.
    pub fn has_ca(&self) -> bool {
        let ca = self.ca_dir();
        ca.join(CA_META).exists() || ca.join("ca.pem").exists() || ca.join("ca.key").exists()
    }

    /// Writes `ca` into the store. Refuses to replace an existing CA unless `force`.
    pub fn init(&self, ca: &CertificateAuthority, force: bool) -> Result<()> {
        if self.has_ca() && !force {
            return Err(CertsError::CaExists {
                dir: self.dir.clone(),
            });
        }
        let meta = serde_json::to_vec_pretty(&CaMeta {
            format: 1,
            trust_domain: ca.trust_domain().clone(),
            max_leaf_validity_secs: ca.max_leaf_validity().as_secs(),
        })
        .map_err(|e| CertsError::Metadata {
            path: self.ca_dir().join(CA_META),
            reason: e.to_string(),
        })?;
        let key = ca.private_key().to_pem();
        let bundle: String = ca
            .trust_anchors()
            .iter()
            .map(|c| pem::encode("CERTIFICATE", c))
            .collect();
        atomic::write_set(
            &self.ca_dir(),
            &[
                FileSpec {
                    name: "ca.pem",
                    contents: ca.chain_pem().as_bytes(),
                    mode: 0o644,
                },
                FileSpec {
                    name: "ca.key",
                    contents: key.as_bytes(),
                    mode: 0o600,
                },
                FileSpec {
                    name: "bundle.pem",
                    contents: bundle.as_bytes(),
                    mode: 0o644,
                },
                FileSpec {
                    name: CA_META,
                    contents: &meta,
                    mode: 0o644,
                },
            ],
        )?;
        tracing::info!(dir = %self.dir.display(), trust_domain = %ca.trust_domain(), "ca written");
        Ok(())
    }

    /// The trust domain recorded in the store.
    pub fn trust_domain(&self) -> Result<TrustDomain> {
        Ok(self.meta()?.trust_domain)
    }

    fn meta(&self) -> Result<CaMeta> {
        let path = self.ca_dir().join(CA_META);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CertsError::NoCa {
                    dir: self.dir.clone(),
                });
            }
            Err(source) => return Err(CertsError::Read { path, source }),
        };
        serde_json::from_str(&text).map_err(|e| CertsError::Metadata {
            path,
            reason: format!(
                "line {}: {e} (re-create the CA with `gatehouse certs init --force`)",
                e.line()
            ),
        })
    }

    /// Loads the CA, checking that it is usable at `now`.
    pub fn load(&self, now: SystemTime) -> Result<CertificateAuthority> {
        let meta = self.meta()?;
        let ca_dir = self.ca_dir();
        Ok(CertificateAuthority::from_pem_files(
            &ca_dir.join("ca.pem"),
            &ca_dir.join("ca.key"),
            meta.trust_domain,
            now,
        )?
        .with_max_leaf_validity(Duration::from_secs(meta.max_leaf_validity_secs)))
    }

    /// The trust anchors (`ca/bundle.pem`).
    pub fn trust_anchors(&self) -> Result<Vec<CertificateDer<'static>>> {
        let path = self.ca_dir().join("bundle.pem");
        if !path.exists() {
            return Err(CertsError::NoCa {
                dir: self.dir.clone(),
            });
        }
        certificates(&path, &pem::parse(&path, &pem::read_text(&path)?)?)
    }

    /// Where the files of `identity` live.
    pub fn leaf_dir(&self, identity: &Identity) -> PathBuf {
        match identity {
            Identity::Controller => self.dir.join("controller"),
            Identity::Gateway(gw) => self
                .dir
                .join("gateways")
                .join(gw.namespace())
                .join(gw.name()),
        }
    }

    /// Writes an issued leaf (certificate, chain, key, trust bundle) as one atomic set.
    pub fn write_leaf(
        &self,
        leaf: &IssuedLeaf,
        anchors: &[CertificateDer<'static>],
    ) -> Result<PathBuf> {
        let dir = self.leaf_dir(leaf.identity());
        let key = leaf.key().to_pem();
        let bundle: String = anchors
            .iter()
            .map(|c| pem::encode("CERTIFICATE", c))
            .collect();
        atomic::write_set(
            &dir,
            &[
                FileSpec {
                    name: CERT_FILE,
                    contents: leaf.cert_pem().as_bytes(),
                    mode: 0o644,
                },
                FileSpec {
                    name: CHAIN_FILE,
                    contents: leaf.chain_pem().as_bytes(),
                    mode: 0o644,
                },
                FileSpec {
                    name: KEY_FILE,
                    contents: key.as_bytes(),
                    mode: 0o600,
                },
                FileSpec {
                    name: BUNDLE_FILE,
                    contents: bundle.as_bytes(),
                    mode: 0o644,
                },
            ],
        )?;
        tracing::info!(identity = %leaf.identity(), dir = %dir.display(), "certificate written");
        Ok(dir)
    }

    /// Gives `identity`'s current certificate files to `uid`:`gid` (for an Envoy that runs as
    /// that user); renewals keep that owner. Keys stay mode 0600.
    pub fn set_leaf_owner(&self, identity: &Identity, uid: u32, gid: u32) -> Result<()> {
        atomic::chown_current(&self.leaf_dir(identity), uid, gid)
    }

    /// Every leaf in the store, the controller first, then gateways by name.
    pub fn leaves(&self) -> Result<Vec<StoredLeaf>> {
        let td = self.trust_domain()?;
        let mut out = Vec::new();
        let controller = self.dir.join("controller");
        if controller.join(CERT_FILE).exists() {
            out.push(read_leaf(&controller, &td)?);
        }
        let gateways = self.dir.join("gateways");
        for ns in sorted_dirs(&gateways)? {
            for gw in sorted_dirs(&ns)? {
                if gw.join(CERT_FILE).exists() {
                    out.push(read_leaf(&gw, &td)?);
                }
            }
        }
        Ok(out)
    }
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CertsError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
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

/// Reads a leaf directory's certificate.
pub fn read_leaf(dir: &Path, td: &TrustDomain) -> Result<StoredLeaf> {
    let path = dir.join(CERT_FILE);
    let blocks = pem::parse(&path, &pem::read_text(&path)?)?;
    let certs = certificates(&path, &blocks)?;
    let (Some(der), Some(block)) = (certs.into_iter().next(), blocks.first()) else {
        return Err(CertsError::Certificate {
            path,
            line: 1,
            reason: "no certificate found".to_owned(),
        });
    };
    let err = |reason: String| CertsError::Certificate {
        path: path.clone(),
        line: block.line,
        reason,
    };
    let (_, x509) = X509Certificate::from_der(&der).map_err(|e| err(e.to_string()))?;
    let mut identity = None;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Some(san) = x509
        .subject_alternative_name()
        .map_err(|e| err(e.to_string()))?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) => identity = Some(Identity::from_spiffe_id(uri, td)?),
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = crate::inspect::ip_from_bytes(b) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let Some(identity) = identity else {
        return Err(err(
            "has no SPIFFE URI SAN; it was not issued by Gatehouse".to_owned()
        ));
    };
    let not_before = asn1_to_system(x509.validity().not_before);
    let not_after = asn1_to_system(x509.validity().not_after);
    Ok(StoredLeaf {
        identity,
        dir: dir.to_owned(),
        certificate: der.clone(),
        dns_names,
        ip_addresses,
        not_before,
        not_after,
    })
}
