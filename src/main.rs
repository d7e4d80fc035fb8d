//! `gatehouse`: the one binary. Parsing and dispatch live in `cli`; each subcommand in `cmd/`.

mod cli;
mod cmd;
mod logging;

use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the control plane replaces persistent maps' nodes from
/// several threads, and glibc's per-thread arenas kept that freed memory (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
