//! `gatehouse`: the one binary. Parsing and dispatch live in `cli`; each subcommand in `cmd/`.

mod cli;
mod cmd;
mod logging;

use std::process::ExitCode;

/// jemalloc instead of glibc malloc: the control plane replaces persistent maps' nodes from
/// several threads; glibc's per-thread arenas kept that freed memory, and mimalloc's pages held
/// by idle worker threads were not returned either (see BENCHMARKS.md). jemalloc's background
/// thread purges freed pages on a timer, whichever thread freed them.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("error: a TLS crypto provider was already installed");
        return ExitCode::FAILURE;
    }
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("warning: jemalloc background purging not enabled: {e}");
    }
    cli::run()
}
