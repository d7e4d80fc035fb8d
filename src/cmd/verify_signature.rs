//! `gatehouse verify-signature`: key-based signatures, signed directories and keyless bundles,
//! all offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gatehouse_hardening::signing::keyless::{self, Bundle, Signer, TrustedRoot};
use gatehouse_hardening::signing::{Digest, blob, keys, manifest};

use crate::cmd::Output;

#[derive(Debug, clap::Args)]
#[command(
    group = clap::ArgGroup::new("mode").required(true).args(["key", "bundle"]),
    group = clap::ArgGroup::new("target").required(true).args(["file", "manifest", "digest"]),
    after_help = "Exit status: 0 when the signature verifies, 1 (with the reason) when it does not. \
                  With --manifest every finding is listed: SIG-001 bad manifest signature, SIG-002 \
                  file changed, SIG-003 file missing, SIG-004 file not listed."
)]
pub(crate) struct VerifySignatureArgs {
    /// The public key (`cosign.pub`) of a key-based signature.
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
    /// The signature of FILE (base64 DER, as `cosign sign-blob` writes). Default: FILE.sig.
    #[arg(
        long,
        value_name = "SIG",
        requires = "key",
        conflicts_with = "manifest"
    )]
    signature: Option<PathBuf>,
    /// Verify the signed directory DIR: its SHA256SUMS signature, then every file.
    #[arg(long, value_name = "DIR", requires = "key")]
    manifest: Option<PathBuf>,
    /// A keyless sigstore bundle (v0.3 `*.sigstore.json`).
    #[arg(
        long,
        value_name = "BUNDLE",
        requires_all = ["trusted_root", "certificate_identity", "certificate_oidc_issuer"]
    )]
    bundle: Option<PathBuf>,
    /// The sigstore trusted root (`trusted_root.json`) to verify BUNDLE against.
    #[arg(long, value_name = "FILE", requires = "bundle")]
    trusted_root: Option<PathBuf>,
    /// The identity the signing certificate must name (its SAN, matched exactly).
    #[arg(long, value_name = "ID", requires = "bundle")]
    certificate_identity: Option<String>,
    /// The OIDC issuer the signing certificate must name (matched exactly).
    #[arg(long, value_name = "URL", requires = "bundle")]
    certificate_oidc_issuer: Option<String>,
    /// With --bundle, the artifact's digest instead of the artifact (`sha256:HEX` or `sha512:HEX`).
    #[arg(long, value_name = "ALG:HEX", requires = "bundle")]
    digest: Option<Digest>,
    /// The signed file.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &VerifySignatureArgs) -> anyhow::Result<ExitCode> {
    match (&args.key, &args.bundle) {
        (Some(key), None) => {
            let key = keys::VerifyingKey::load(key)?;
            match (&args.manifest, &args.file) {
                (Some(dir), None) => verify_dir(args, &key, dir),
                (None, Some(file)) => verify_file(args, &key, file),
                _ => anyhow::bail!("give either FILE or --manifest DIR with --key"),
            }
        }
        (None, Some(bundle)) => verify_bundle(args, bundle),
        _ => anyhow::bail!("give either --key or --bundle"),
    }
}

fn verify_file(
    args: &VerifySignatureArgs,
    key: &keys::VerifyingKey,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let signature = args
        .signature
        .clone()
        .unwrap_or_else(|| blob::signature_path(file));
    blob::verify_file(key, &signature, file)?;
    match args.output {
        Output::Text => println!(
            "verified {} with {} (signature {})",
            file.display(),
            key.path().display(),
            signature.display()
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "verified": true, "file": file, "signature": signature, "key": key.path(),
            })
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_dir(
    args: &VerifySignatureArgs,
    key: &keys::VerifyingKey,
    dir: &Path,
) -> anyhow::Result<ExitCode> {
    let findings = manifest::verify_dir(dir, key)?;
    match args.output {
        Output::Text => {
            for f in &findings {
                println!("{f}");
            }
            if findings.is_empty() {
                println!(
                    "verified {}: every file matches the manifest signed by {}",
                    dir.display(),
                    key.path().display()
                );
            }
        }
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "verified": findings.is_empty(), "dir": dir, "key": key.path(), "findings": findings,
            })
        ),
    }
    if findings.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: `{}` does not match its signed manifest: {} finding{}",
            dir.display(),
            findings.len(),
            if findings.len() == 1 { "" } else { "s" }
        );
        Ok(ExitCode::FAILURE)
    }
}

fn verify_bundle(args: &VerifySignatureArgs, bundle_path: &Path) -> anyhow::Result<ExitCode> {
    let (Some(root), Some(identity), Some(issuer)) = (
        &args.trusted_root,
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
    ) else {
        anyhow::bail!(
            "--bundle needs --trusted-root, --certificate-identity and --certificate-oidc-issuer"
        );
    };
    let digests = match (&args.file, args.digest) {
        (Some(file), None) => keyless::file_digests(file)?,
        (None, Some(digest)) => vec![digest],
        _ => anyhow::bail!("give either FILE or --digest with --bundle"),
    };
    let bundle = Bundle::load(bundle_path)?;
    let root = TrustedRoot::load(root)?;
    let signer = Signer {
        identity: identity.clone(),
        issuer: issuer.clone(),
    };
    let verified = keyless::verify(&bundle, &root, &signer, &digests)
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", bundle_path.display()))?;
    match args.output {
        Output::Text => {
            let artifact = match &args.file {
                Some(f) => format!("{} ({})", f.display(), verified.artifact),
                None => verified.artifact.clone(),
            };
            println!(
                "verified {artifact}: signed by {} (issuer {}), logged in {} at index {} on {}",
                verified.identity,
                verified.issuer,
                verified.log,
                verified.log_index,
                verified.integrated_time
            );
        }
        Output::Json => {
            let mut v = serde_json::to_value(&verified)?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("verified".to_owned(), true.into());
                obj.insert("bundle".to_owned(), serde_json::json!(bundle_path));
            }
            println!("{v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
