//! `gatehouse version`

use std::process::ExitCode;

use super::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct VersionArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &VersionArgs) -> anyhow::Result<ExitCode> {
    let fields = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("commit", env!("GATEHOUSE_GIT_COMMIT")),
        ("rustc", env!("GATEHOUSE_RUSTC_VERSION")),
        ("target", env!("GATEHOUSE_TARGET")),
    ];
    match args.output {
        Output::Text => {
            for (k, v) in fields {
                println!("{k:<8} {v}");
            }
        }
        Output::Json => {
            let map: serde_json::Map<_, _> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            println!("{}", serde_json::Value::Object(map));
        }
    }
    Ok(ExitCode::SUCCESS)
}
