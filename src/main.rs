//! `gatehouse`: the one binary. Parsing and dispatch live in `cli`; each subcommand in `cmd/`.

mod allocator;
mod cli;
mod cmd;
mod logging;

use std::process::ExitCode;

fn main() -> ExitCode {
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("error: a TLS crypto provider was already installed");
        return ExitCode::FAILURE;
    }
    cli::run()
}
