//! `gatehouse certs inspect`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use crate::cmd::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// A PEM file with one or more certificates (keys in it are skipped, never printed).
    file: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let infos = gatehouse_certs::inspect_file(&args.file, SystemTime::now())?;
    match args.output {
        Output::Text => {
            let texts: Vec<String> = infos.iter().map(|i| i.to_text()).collect();
            print!("{}", texts.join("\n"));
        }
        Output::Json => println!("{}", serde_json::to_string_pretty(&infos)?),
    }
    Ok(ExitCode::SUCCESS)
}
