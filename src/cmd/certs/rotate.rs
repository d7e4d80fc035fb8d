//! `gatehouse certs rotate`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use gatehouse_certs::{CaStore, RotationOutcome, human_duration, rfc3339};

use crate::cmd::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// The CA store directory.
    #[arg(long)]
    dir: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &RotateArgs) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let store = CaStore::open(&args.dir)?;
    let outcomes = gatehouse_certs::rotate_store(&store, now)?;
    let failed = outcomes
        .iter()
        .any(|o| matches!(o, RotationOutcome::Failed { .. }));
    let rows: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| match o {
            RotationOutcome::Renewed {
                identity,
                old_not_after,
                new_not_after,
                shortened,
            } => serde_json::json!({
                "identity": identity.to_string(), "action": "renewed",
                "old_not_after": rfc3339(*old_not_after), "not_after": rfc3339(*new_not_after),
                "shortened_to_ca_expiry": shortened,
            }),
            RotationOutcome::Kept {
                identity,
                renew_at,
                not_after,
            } => serde_json::json!({
                "identity": identity.to_string(), "action": "kept",
                "renew_at": rfc3339(*renew_at), "not_after": rfc3339(*not_after),
            }),
            RotationOutcome::Failed { identity, error } => serde_json::json!({
                "identity": identity.to_string(), "action": "failed", "error": error.to_string(),
            }),
        })
        .collect();
    match args.output {
        Output::Json => println!("{}", serde_json::Value::Array(rows)),
        Output::Text => {
            if outcomes.is_empty() {
                println!("no certificates in {}", store.dir().display());
            }
            for o in &outcomes {
                match o {
                    RotationOutcome::Renewed {
                        identity,
                        old_not_after,
                        new_not_after,
                        shortened,
                    } => println!(
                        "renewed {identity}: was valid until {}, now until {}{}",
                        rfc3339(*old_not_after),
                        rfc3339(*new_not_after),
                        if *shortened {
                            " (shortened: the CA expires first)"
                        } else {
                            ""
                        }
                    ),
                    RotationOutcome::Kept {
                        identity, renew_at, ..
                    } => println!(
                        "kept {identity}: renews after {} (in {})",
                        rfc3339(*renew_at),
                        human_duration(renew_at.duration_since(now).unwrap_or_default())
                    ),
                    RotationOutcome::Failed { identity, error } => {
                        println!("failed {identity}: {error} (the old certificate stays in place)");
                    }
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
