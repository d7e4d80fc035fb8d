//! `gatehouse certs init|issue|inspect|rotate`

mod init;
mod inspect;
mod issue;
mod rotate;

use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CertsCommand {
    /// Create the CA (ECDSA P-256), or bring an existing CA or intermediate.
    Init(init::InitArgs),
    /// Issue the controller's serving certificate or a gateway's client certificate.
    Issue(issue::IssueArgs),
    /// Show a certificate: subject, SANs, usages, key type, validity, fingerprint.
    Inspect(inspect::InspectArgs),
    /// Renew every certificate past half of its lifetime (with jitter).
    Rotate(rotate::RotateArgs),
}

pub(crate) fn run(cmd: CertsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCommand::Init(a) => init::run(&a),
        CertsCommand::Issue(a) => issue::run(&a),
        CertsCommand::Inspect(a) => inspect::run(&a),
        CertsCommand::Rotate(a) => rotate::run(&a),
    }
}

/// Parses `24h`, `30d`, `1y 6months` (humantime syntax) for clap.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: `24h`, `90m`, `30d`)"))
}
