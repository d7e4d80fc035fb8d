//! `gatehouse-load`: the load harness of the performance suite. Everything binds 127.0.0.1.
//!
//! ```text
//! gatehouse-load translate --workload w3            # translation percentiles
//! gatehouse-load fleet --workload w3 --clients 1000  # synthetic delta ADS clients over mTLS
//! gatehouse-load envoy --workload w3                 # a real Envoy: change to traffic, to ACK, file-xDS floor
//! gatehouse-load memory --workload w3                # peak RSS of `gatehouse serve`
//! gatehouse-load soak --minutes 10                   # churn soak, RSS slope
//! gatehouse-load peer                                # sovereign on W2, side by side
//! ```

mod client;
mod envoy;
mod fleet;
mod memory;
mod peer;
mod plane;
mod report;
mod translate;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use gatehouse_bench::workload::Workload;

#[derive(Parser)]
#[command(
    name = "gatehouse-load",
    about = "Gatehouse load harness (loopback only)"
)]
struct Cli {
    /// Append the results as JSON to this file.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Translation percentiles: full, one route changed, one endpoint changed.
    Translate {
        #[arg(long, value_delimiter = ',', default_value = "w2,w3")]
        workload: Vec<String>,
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// The guardrail library, to time admission too.
        #[arg(long)]
        library: Option<PathBuf>,
    },
    /// Synthetic delta ADS clients over mTLS against the in-process xDS server.
    Fleet {
        #[arg(long, default_value = "w3")]
        workload: String,
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        clients: Vec<usize>,
        #[arg(long, default_value_t = 20)]
        changes: usize,
        #[arg(long, default_value_t = 1000)]
        burst: usize,
        /// Run the reconnect storm with the largest client count.
        #[arg(long)]
        storm: bool,
        /// Scale the workload down to this many routes (smoke tests).
        #[arg(long)]
        routes: Option<usize>,
    },
    /// A real Envoy: route change to traffic, endpoint change to ACK, under churn, and the
    /// file-xDS floor.
    Envoy {
        #[arg(long, value_delimiter = ',', default_value = "w2,w3")]
        workload: Vec<String>,
        #[arg(long, default_value_t = 50)]
        changes: usize,
        /// Seconds of churn before the churn measurements.
        #[arg(long, default_value_t = 3)]
        churn_warmup: u64,
        #[arg(long)]
        routes: Option<usize>,
    },
    /// Peak RSS of `gatehouse serve` per workload.
    Memory {
        #[arg(long, value_delimiter = ',', default_value = "w2,w3,w4")]
        workload: Vec<String>,
        #[arg(long)]
        routes: Option<usize>,
    },
    /// Churn soak: RSS slope after warm-up, and memory after scale-down.
    Soak {
        #[arg(long, default_value = "w3")]
        workload: String,
        /// Minutes of churn (env GATEHOUSE_SOAK_MINUTES).
        #[arg(long, env = "GATEHOUSE_SOAK_MINUTES", default_value_t = 10.0)]
        minutes: f64,
        #[arg(long)]
        routes: Option<usize>,
    },
    /// Scale cycles W1 → workload → W1: live heap and RSS after each scale-down (does what
    /// stays grow per cycle?).
    Cycles {
        #[arg(long, default_value = "w3")]
        workload: String,
        #[arg(long, default_value_t = 3)]
        cycles: usize,
        #[arg(long)]
        routes: Option<usize>,
    },
    /// sovereign (Python, REST polling) beside Gatehouse on W2: CPU and bytes.
    Peer,
}

fn workload(name: &str, routes: Option<usize>) -> Result<Workload> {
    let mut w =
        Workload::by_name(name).with_context(|| format!("unknown workload `{name}` (w1..w4)"))?;
    if let Some(r) = routes {
        w.routes = r.max(1);
        w.backends = (r.max(10) / 10) * 10;
        w.tls_hostnames = w.tls_hostnames.min(r / 20);
        w.http_ports = w.http_ports.min(r.max(1));
        w.name = format!("{name}-{r}");
    }
    Ok(w)
}

/// The allocator the `gatehouse` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let mut report = report::Report::default();
    match cli.cmd {
        Cmd::Translate {
            workload: ws,
            iterations,
            library,
        } => {
            for name in ws {
                let w = workload(&name, None)?;
                translate::run(&w, iterations, library.as_deref(), &mut report)?;
            }
        }
        Cmd::Fleet {
            workload: name,
            clients,
            changes,
            burst,
            storm,
            routes,
        } => {
            let w = workload(&name, routes)?;
            let largest = clients.iter().copied().max().unwrap_or(1);
            for n in clients {
                let o = fleet::FleetOptions {
                    clients: n,
                    changes,
                    burst,
                    storm: storm && n == largest,
                };
                fleet::run(&w, &o, &mut report).await?;
            }
        }
        Cmd::Envoy {
            workload: ws,
            changes,
            churn_warmup,
            routes,
        } => {
            for name in ws {
                let w = workload(&name, routes)?;
                envoy::run(&w, changes, churn_warmup, &mut report).await?;
            }
        }
        Cmd::Memory {
            workload: ws,
            routes,
        } => {
            let ws = ws
                .iter()
                .map(|n| workload(n, routes))
                .collect::<Result<Vec<_>>>()?;
            memory::peak(&ws, &mut report).await?;
        }
        Cmd::Soak {
            workload: name,
            minutes,
            routes,
        } => {
            let w = workload(&name, routes)?;
            memory::soak(&w, minutes, &mut report).await?;
        }
        Cmd::Cycles {
            workload: name,
            cycles,
            routes,
        } => {
            let w = workload(&name, routes)?;
            memory::cycles(&w, cycles, &mut report).await?;
        }
        Cmd::Peer => peer::run(&mut report).await?,
    }
    if let Some(out) = cli.out {
        let mut all: Vec<serde_json::Value> = std::fs::read_to_string(&out)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        all.extend(report.entries);
        std::fs::write(&out, serde_json::to_string_pretty(&all)?)?;
    }
    Ok(())
}
