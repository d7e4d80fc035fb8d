//! `gatehouse certs issue`

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use gatehouse_certs::{CaStore, GatewayName, Identity, LeafRequest, human_duration, rfc3339};

use crate::cmd::Output;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["controller", "gateway"]))]
pub(crate) struct IssueArgs {
    /// The CA store directory.
    #[arg(long)]
    dir: PathBuf,
    /// Issue the controller's xDS serving certificate (serverAuth, spiffe://TD/controller).
    #[arg(long)]
    controller: bool,
    /// Issue a gateway's client certificate (clientAuth, spiffe://TD/gateway/NAMESPACE/NAME).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    gateway: Option<String>,
    /// DNS SAN for the controller (repeatable). Default: `localhost` when no --dns or --ip is given.
    #[arg(long = "dns", value_name = "NAME", requires = "controller")]
    dns: Vec<String>,
    /// IP SAN for the controller (repeatable). Default: `127.0.0.1` when no --dns or --ip is given.
    #[arg(long = "ip", value_name = "IP", requires = "controller")]
    ip: Vec<IpAddr>,
    /// Lifetime of the certificate.
    #[arg(long, default_value = "24h", value_parser = super::parse_duration)]
    validity: Duration,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

pub(crate) fn run(args: &IssueArgs) -> anyhow::Result<ExitCode> {
    let identity = match &args.gateway {
        Some(gw) => Identity::Gateway(gw.parse::<GatewayName>()?),
        None => Identity::Controller,
    };
    let mut req = LeafRequest::new(identity);
    req.validity = args.validity;
    req.dns_names = args.dns.clone();
    req.ip_addresses = args.ip.clone();
    if req.identity == Identity::Controller
        && req.dns_names.is_empty()
        && req.ip_addresses.is_empty()
    {
        req.dns_names.push("localhost".to_owned());
        req.ip_addresses.push(IpAddr::from([127, 0, 0, 1]));
    }

    let now = SystemTime::now();
    let store = CaStore::open(&args.dir)?;
    let ca = store.load(now)?;
    let anchors = store.trust_anchors()?;
    let leaf = ca.issue(&req, now)?;
    let dir = store.write_leaf(&leaf, &anchors)?;

    let spiffe = leaf.identity().spiffe_id(ca.trust_domain());
    match args.output {
        Output::Text => {
            println!("issued {} certificate {spiffe}", leaf.identity());
            println!(
                "  valid until {} ({})",
                rfc3339(leaf.not_after()),
                human_duration(leaf.not_after().duration_since(now).unwrap_or_default())
            );
            for f in [
                gatehouse_certs::CERT_FILE,
                gatehouse_certs::CHAIN_FILE,
                gatehouse_certs::KEY_FILE,
                gatehouse_certs::BUNDLE_FILE,
            ] {
                println!("  {}", dir.join(f).display());
            }
        }
        Output::Json => {
            let v = serde_json::json!({
                "identity": spiffe,
                "not_after": rfc3339(leaf.not_after()),
                "dir": dir,
                "certificate": dir.join(gatehouse_certs::CERT_FILE),
                "chain": dir.join(gatehouse_certs::CHAIN_FILE),
                "key": dir.join(gatehouse_certs::KEY_FILE),
                "trust_bundle": dir.join(gatehouse_certs::BUNDLE_FILE),
            });
            println!("{v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
