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
    /// Run the control plane and a sandboxed Envoy per gateway on this machine.
    Up(cmd::up::UpArgs),
    /// Run the control plane: xDS over mTLS, certificate rotation.
    Serve(cmd::serve::ServeArgs),
    /// Translate a configuration directory offline: what each gateway's Envoy would receive.
    Translate(cmd::translate::TranslateArgs),
    /// Show what a running control plane reports: gateways, objects, conditions, proxies.
    Status(cmd::status::StatusArgs),
    /// A small HTTP echo server (the quickstart's upstream services).
    Echo(cmd::echo::EchoArgs),
    /// Render a deployment profile (Kubernetes hardened, or standalone systemd units), or check a
    /// directory against it.
    Render(cmd::render::RenderArgs),
    /// Apply the hardened profile to a Kubernetes cluster (server-side apply) and wait for it.
    Install(cmd::install::InstallArgs),
    /// Cedar admission offline: validate, format and test policies; check a configuration
    /// against them and explain the decisions.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Sign files or a directory with a cosign-compatible key, or create a key pair.
    Sign(cmd::sign::SignArgs),
    /// Verify a signature, a signed directory or a keyless sigstore bundle, offline.
    VerifySignature(cmd::verify_signature::VerifySignatureArgs),
    /// Audit manifests, Envoy bootstraps, certificates, systemd units, signatures and running
    /// processes against Gatehouse's hardening checks.
    Verify(cmd::verify::VerifyArgs),
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
    let level = if matches!(cli.command, Command::Serve(_) | Command::Up(_)) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, level);
    let result = match cli.command {
        Command::Certs(c) => cmd::certs::run(c),
        Command::Bootstrap(a) => cmd::bootstrap::run(&a),
        Command::Up(a) => cmd::up::run(&a),
        Command::Serve(a) => cmd::serve::run(&a),
        Command::Translate(a) => cmd::translate::run(&a),
        Command::Status(a) => cmd::status::run(&a),
        Command::Echo(a) => cmd::echo::run(&a),
        Command::Render(a) => cmd::render::run(&a),
        Command::Install(a) => cmd::install::run(&a),
        Command::Policy(c) => cmd::policy::run(c),
        Command::Sign(a) => cmd::sign::run(&a),
        Command::VerifySignature(a) => cmd::verify_signature::run(&a),
        Command::Verify(a) => cmd::verify::run(&a),
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
