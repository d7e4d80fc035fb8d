//! `gatehouse bootstrap`

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use gatehouse_certs::{BUNDLE_FILE, CHAIN_FILE, GatewayName, KEY_FILE, TrustDomain};
use gatehouse_deploy::bootstrap::{
    self, AdminEndpoint, AdsMode, BootstrapParams, DEFAULT_ADMIN_PORT, XdsAddress,
};

const AFTER_HELP: &str = "\
Files:
  With -o FILE, three files are written, each atomically (temporary file, then rename), mode 0644:
    FILE                                      the bootstrap (envoy -c FILE)
    DIR/xds-client-certificate.sds.yaml       SDS: chain.pem + key.pem of --certs
    DIR/xds-trust-bundle.sds.yaml             SDS: ca.pem of --certs
  where DIR is FILE's directory. The bootstrap refers to the SDS files in --sds-dir if given
  (where Envoy will see them, e.g. inside its container), else in DIR.
  Without -o, only the bootstrap is printed on stdout and --sds-dir is required: put the SDS
  files there yourself (render them once with -o; they depend only on --certs).

  Envoy's file-based SDS takes one secret per file, hence two SDS files. They watch --certs, so
  `gatehouse certs rotate` is picked up without restarting Envoy.

Examples:
  gatehouse bootstrap --gateway edge/public --xds 127.0.0.1:18000 \\
      --certs /var/lib/gatehouse/pki/gateways/edge/public -o /etc/envoy/envoy.yaml
  gatehouse bootstrap --gateway edge/public --xds xds.gatehouse-system.svc:18000 \\
      --certs /etc/gatehouse/certs --sds-dir /etc/envoy --admin-socket /run/envoy/admin.sock";

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = AFTER_HELP,
    group = clap::ArgGroup::new("admin").args(["admin_port", "admin_socket", "no_admin"]),
)]
pub(crate) struct BootstrapArgs {
    /// The gateway; Envoy's node id becomes spiffe://TD/gateway/NAMESPACE/NAME.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    gateway: String,
    /// The control plane's xDS address: an IP address (IPv6 in brackets) or a DNS name.
    #[arg(long, value_name = "HOST:PORT")]
    xds: String,
    /// The gateway's certificate directory as Envoy will see it (absolute): chain.pem, key.pem
    /// and ca.pem, as `gatehouse certs issue --gateway` writes in STORE/gateways/NAMESPACE/NAME.
    #[arg(long, value_name = "DIR")]
    certs: PathBuf,
    /// Write the bootstrap to FILE and the two SDS files next to it. Without it, the bootstrap
    /// goes to stdout and --sds-dir is required.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Where Envoy will find the SDS files (absolute). Required without -o; with -o, defaults
    /// to FILE's directory.
    #[arg(long, value_name = "DIR", required_unless_present = "output")]
    sds_dir: Option<PathBuf>,
    /// Trust domain of the gateway's and the controller's SPIFFE IDs.
    #[arg(long, value_name = "TD", default_value = gatehouse_certs::DEFAULT_TRUST_DOMAIN)]
    trust_domain: String,
    /// Admin endpoint on 127.0.0.1:PORT [default: 19000].
    #[arg(long, value_name = "PORT")]
    admin_port: Option<u16>,
    /// Admin endpoint on a unix socket at PATH (absolute), mode 0600, instead of TCP.
    #[arg(long, value_name = "PATH")]
    admin_socket: Option<PathBuf>,
    /// No admin endpoint at all.
    #[arg(long)]
    no_admin: bool,
    /// State-of-the-world ADS (GRPC) instead of delta ADS (DELTA_GRPC).
    #[arg(long)]
    sotw: bool,
    /// Heap size at which the overload manager acts (shrink at 95 %, refuse requests at 98 %):
    /// bytes, or with a KiB, MiB, GiB or TiB suffix.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    max_heap: u64,
    /// Limit of active downstream connections, all listeners together.
    #[arg(long, value_name = "N", default_value_t = bootstrap::DEFAULT_MAX_DOWNSTREAM_CONNECTIONS)]
    max_connections: u64,
}

pub(crate) fn run(args: &BootstrapArgs) -> anyhow::Result<ExitCode> {
    let gateway: GatewayName = args.gateway.parse()?;
    let trust_domain: TrustDomain = args.trust_domain.parse()?;
    let xds: XdsAddress = args.xds.parse()?;

    // Where the files go here, and where Envoy will find the SDS files.
    let out = args.output.as_deref().map(output_paths).transpose()?;
    let sds_dir = match (&args.sds_dir, &out) {
        (Some(dir), _) => dir.clone(),
        (None, Some((dir, _))) => dir.clone(),
        (None, None) => bail!("--sds-dir is required without -o"),
    };

    let mut params = BootstrapParams::new(gateway, xds, args.certs.clone(), sds_dir);
    params.trust_domain = trust_domain;
    params.admin = if args.no_admin {
        AdminEndpoint::Disabled
    } else if let Some(path) = &args.admin_socket {
        AdminEndpoint::UnixSocket { path: path.clone() }
    } else {
        AdminEndpoint::Loopback {
            port: args.admin_port.unwrap_or(DEFAULT_ADMIN_PORT),
        }
    };
    params.ads = if args.sotw {
        AdsMode::StateOfTheWorld
    } else {
        AdsMode::Delta
    };
    params.max_heap_bytes = args.max_heap;
    params.max_downstream_connections = args.max_connections;

    let rendered = bootstrap::render(&params)?;
    check_certs(&args.certs, &params.node_id())?;

    let Some((dir, file)) = out else {
        print!("{}", rendered.bootstrap);
        return Ok(ExitCode::SUCCESS);
    };
    fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
    // The SDS files first: the bootstrap never refers to files that are not there yet.
    let mut written = Vec::new();
    for (name, contents) in rendered.sds_files() {
        let path = dir.join(name);
        write_atomic(&path, contents)?;
        written.push(path);
    }
    write_atomic(&file, &rendered.bootstrap)?;
    println!(
        "wrote the Envoy bootstrap of gateway {} (node {})",
        params.gateway,
        params.node_id()
    );
    println!("  {}", file.display());
    for path in &written {
        println!("  {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The absolute directory of `-o FILE` and FILE in it. Touches nothing: the directory is
/// created only once everything is checked.
fn output_paths(file: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let not_a_file = || {
        anyhow::anyhow!(
            "-o `{}` is a directory (give the bootstrap's file, e.g. `{}`)",
            file.display(),
            file.join("envoy.yaml").display()
        )
    };
    if file.is_dir() {
        return Err(not_a_file());
    }
    let file = std::path::absolute(file)
        .with_context(|| format!("cannot resolve `{}`", file.display()))?;
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return Err(not_a_file());
    };
    let sds_files = [
        bootstrap::CLIENT_CERTIFICATE_SDS_FILE,
        bootstrap::TRUST_BUNDLE_SDS_FILE,
    ];
    if sds_files.iter().any(|f| name == *f) {
        bail!(
            "-o `{}` would be overwritten by an SDS file of the same name (choose another name, e.g. `envoy.yaml`)",
            file.display()
        );
    }
    Ok((dir.to_owned(), file.clone()))
}

/// If the certificate directory exists here, its certificate must be the gateway's: the
/// control plane refuses an Envoy whose node id is not its certificate's SPIFFE ID.
fn check_certs(certs: &Path, node_id: &str) -> anyhow::Result<()> {
    let missing: Vec<&str> = [CHAIN_FILE, KEY_FILE, BUNDLE_FILE]
        .into_iter()
        .filter(|f| !certs.join(f).exists())
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "`{}` has no {} here: Envoy will not start unless they exist where it runs",
            certs.display(),
            missing.join(", ")
        );
    }
    let chain = certs.join(CHAIN_FILE);
    if !chain.exists() {
        return Ok(());
    }
    let infos = gatehouse_certs::inspect_file(&chain, SystemTime::now())?;
    let uris = infos
        .first()
        .map(|c| c.sans.uri.clone())
        .unwrap_or_default();
    if !uris.iter().any(|u| u == node_id) {
        let found = if uris.is_empty() {
            "no URI SAN".to_owned()
        } else {
            uris.iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        bail!(
            "the certificate in `{}` has {found}, not the node id `{node_id}`, so the control plane would refuse this Envoy (pass the --gateway and --trust-domain it was issued for, or the gateway's own --certs directory)",
            chain.display()
        );
    }
    Ok(())
}

fn write_atomic(path: &Path, contents: &str) -> anyhow::Result<()> {
    Ok(gatehouse_deploy::output::write_atomic(path, contents)?)
}

/// Parses `1073741824`, `1GiB`, `512MiB` or `64KiB` for clap.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let shift = match unit.trim_start() {
        "" | "B" => 0,
        "KiB" | "Ki" => 10,
        "MiB" | "Mi" => 20,
        "GiB" | "Gi" => 30,
        "TiB" | "Ti" => 40,
        other => {
            return Err(format!(
                "unknown unit `{other}` (give bytes, or a KiB, MiB, GiB or TiB suffix: `1GiB`)"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a number of bytes, e.g. `1073741824` or `1GiB`".to_owned())?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::{AFTER_HELP, bootstrap, parse_bytes};

    #[test]
    fn help_names_the_files_written() {
        for name in [
            bootstrap::CLIENT_CERTIFICATE_SDS_FILE,
            bootstrap::TRUST_BUNDLE_SDS_FILE,
        ] {
            assert!(AFTER_HELP.contains(&format!("DIR/{name} ")), "{name}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("512 Mi"), Ok(512 << 20));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert!(
            parse_bytes("1GB")
                .unwrap_err()
                .contains("unknown unit `GB`")
        );
        assert!(
            parse_bytes("GiB")
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(parse_bytes("-1").unwrap_err().contains("unknown unit"));
        assert!(
            parse_bytes("99999999999TiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
