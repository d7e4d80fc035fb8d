//! The command line: global flags, the subcommand tree, and how errors become exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::logging::{self, LogFormat};

/// Gatehouse: a security-hardened Envoy gateway.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "GATEHOUSE_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Manage the certificate authority and the xDS mTLS certificates.
    #[command(subcommand)]
    Certs(cmd::certs::CertsCommand),
    /// Render the Envoy bootstrap of one gateway, and the SDS files it reads its certificates from.
    Bootstrap(cmd::bootstrap::BootstrapArgs),
    /// Run the control plane: xDS over mTLS, certificate rotation.
    Serve(cmd::serve::ServeArgs),
    /// Print version, git commit, rustc and target.
    Version(cmd::version::VersionArgs),
    /// Print a shell completion script.
    Completion(cmd::completion::CompletionArgs),
}

/// Parses the command line, runs the subcommand and turns its result into an exit code:
/// 0 on success, 1 when the command failed, 2 for usage errors (from clap).
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    // Long-running commands log their progress; one-shot commands only warnings.
    let level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, level);
    let result = match cli.command {
        Command::Certs(c) => cmd::certs::run(c),
        Command::Bootstrap(a) => cmd::bootstrap::run(&a),
        Command::Serve(a) => cmd::serve::run(&a),
        Command::Version(a) => cmd::version::run(&a),
        Command::Completion(a) => cmd::completion::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping causes its message already states.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg.replace('\n', " ")
}

/// The clap command, for completion scripts.
pub(crate) fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
