//! `gatehouse certs init`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use gatehouse_certs::{
    CaStore, CertificateAuthority, CertsError, TrustDomain, human_duration, rfc3339,
};

#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The CA store directory (created if its parent exists).
    #[arg(long)]
    dir: PathBuf,
    /// SPIFFE trust domain of the identities this CA issues.
    #[arg(long, default_value = gatehouse_certs::DEFAULT_TRUST_DOMAIN)]
    trust_domain: TrustDomain,
    /// Lifetime of a new CA.
    #[arg(long, default_value = "365d", value_parser = super::parse_duration, conflicts_with = "ca_cert")]
    ca_validity: Duration,
    /// Upper bound on the lifetime of the leaf certificates this CA issues.
    #[arg(long, default_value = "30d", value_parser = super::parse_duration)]
    max_leaf_validity: Duration,
    /// Bring an existing CA or intermediate: its certificate (PEM; parents may follow it).
    #[arg(long, requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// The private key of --ca-cert (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long, requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Replace an existing CA (certificates it issued stop being trusted).
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    // Everything is checked before anything is written.
    let ca = match (&args.ca_cert, &args.ca_key) {
        (Some(cert), Some(key)) => {
            CertificateAuthority::from_pem_files(cert, key, args.trust_domain.clone(), now)?
        }
        _ => CertificateAuthority::generate(args.trust_domain.clone(), args.ca_validity, now)?,
    }
    .with_max_leaf_validity(args.max_leaf_validity);

    let store = open_or_create(&args.dir)?;
    let replacing = store.has_ca();
    if replacing && !args.force {
        return Err(CertsError::CaExists {
            dir: args.dir.clone(),
        }
        .into());
    }
    store.init(&ca, args.force)?;

    let left = ca.not_after().duration_since(now).unwrap_or_default();
    println!(
        "{} CA for trust domain {} in {}",
        if replacing { "replaced" } else { "created" },
        ca.trust_domain(),
        store.ca_dir().display()
    );
    println!(
        "  valid until {} ({})",
        rfc3339(ca.not_after()),
        human_duration(left)
    );
    println!("  key {}/ca.key (mode 0600)", store.ca_dir().display());
    if replacing {
        println!("  certificates issued by the previous CA are no longer trusted: re-issue them");
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens DIR, creating it (mode 0700) when its parent exists.
fn open_or_create(dir: &Path) -> anyhow::Result<CaStore> {
    if !dir.exists() {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(CertsError::MissingDir {
                path: parent.to_owned(),
            }
            .into());
        }
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|source| CertsError::Write {
                path: dir.to_owned(),
                source,
            })
            .with_context(|| format!("creating the CA store `{}`", dir.display()))?;
    }
    Ok(CaStore::open(dir)?)
}
