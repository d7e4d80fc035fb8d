//! `gatehouse sign` and `gatehouse sign generate-key-pair`

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_hardening::signing::password::{Password, Prompt};
use gatehouse_hardening::signing::{blob, keys, manifest};

use crate::cmd::Output;

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    group = clap::ArgGroup::new("what").required(true).args(["files", "manifest"]),
    after_help = "The password of KEY comes from GATEHOUSE_SIGNING_PASSWORD (or COSIGN_PASSWORD), \
                  or from a prompt when stdin is a terminal."
)]
pub(crate) struct SignArgs {
    #[command(subcommand)]
    command: Option<SignCommand>,
    /// The encrypted private key (cosign format, from `sign generate-key-pair` or cosign).
    #[arg(long, value_name = "KEY", required = true)]
    key: Option<PathBuf>,
    /// Sign the directory DIR: write DIR/SHA256SUMS (the SHA-256 of every file) and
    /// DIR/SHA256SUMS.sig.
    #[arg(long, value_name = "DIR")]
    manifest: Option<PathBuf>,
    /// Files to sign; each gets FILE.sig (base64 DER ECDSA, as `cosign sign-blob` writes).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SignCommand {
    /// Create a cosign-compatible ECDSA P-256 key pair: PREFIX.key (encrypted, mode 0600) and
    /// PREFIX.pub.
    GenerateKeyPair(GenerateKeyPairArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The password comes from GATEHOUSE_SIGNING_PASSWORD (or COSIGN_PASSWORD), or from \
                  a prompt (asked twice) when stdin is a terminal. Existing files are never replaced."
)]
pub(crate) struct GenerateKeyPairArgs {
    /// Where to write the key pair: PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PATH", default_value = "cosign")]
    output_prefix: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &SignArgs) -> anyhow::Result<ExitCode> {
    if let Some(SignCommand::GenerateKeyPair(a)) = &args.command {
        return generate_key_pair(a);
    }
    let Some(key_path) = &args.key else {
        anyhow::bail!("--key is required");
    };
    let key = keys::SigningKey::load_with(key_path, || Password::from_env_or_prompt(Prompt::Once))?;

    if let Some(dir) = &args.manifest {
        let signed = manifest::sign_dir(dir, &key)?;
        match args.output {
            Output::Text => println!(
                "signed {} files in {}: {} and {}",
                signed.files,
                dir.display(),
                signed.manifest.display(),
                signed.signature.display()
            ),
            Output::Json => println!("{}", serde_json::to_value(&signed)?),
        }
        return Ok(ExitCode::SUCCESS);
    }

    let signatures = blob::sign_files(&key, &args.files)?;
    match args.output {
        Output::Text => {
            for (file, sig) in args.files.iter().zip(&signatures) {
                println!("signed {} -> {}", file.display(), sig.display());
            }
        }
        Output::Json => {
            let rows: Vec<_> = args
                .files
                .iter()
                .zip(&signatures)
                .map(|(file, sig)| serde_json::json!({ "file": file, "signature": sig }))
                .collect();
            println!("{}", serde_json::Value::Array(rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn generate_key_pair(args: &GenerateKeyPairArgs) -> anyhow::Result<ExitCode> {
    let files = keys::generate_key_pair_with(&args.output_prefix, || {
        Password::from_env_or_prompt(Prompt::Confirm)
    })?;
    match args.output {
        Output::Text => println!(
            "wrote the private key {} (encrypted, mode 0600) and the public key {}",
            files.private_key.display(),
            files.public_key.display()
        ),
        Output::Json => println!("{}", serde_json::to_value(&files)?),
    }
    Ok(ExitCode::SUCCESS)
}
