//! `gatehouse completion SHELL`

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct CompletionArgs {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub(crate) fn run(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::cli::command();
    clap_complete::generate(args.shell, &mut cmd, "gatehouse", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
