//! `gatehouse verify`: audit manifests, live cluster objects (`--cluster`), Envoy bootstraps,
//! certificate stores, systemd units, signed directories and running processes. The checks
//! live in `gatehouse_hardening::verify` (the API reading in its `cluster` module); this file
//! is the command line.
//!
//! Exit codes, the same for every output format: 0 clean, 1 findings at or above
//! `--fail-on`, 2 usage error, 3 unparsable input, 4 could not evaluate.

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use gatehouse_hardening::verify::{self, FailOn, Inputs, Options, SignatureInput, catalog, output};

/// Exit code of a usage error (the same as clap's).
const USAGE: u8 = 2;

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "With no input, in a Gatehouse checkout: the rendered default profiles \
                  (deploy/profiles/kubernetes-hardened, the standalone units and Envoy bootstrap).\n\n\
                  Exit status, the same for every output format: 0 clean; 1 findings at or above \
                  --fail-on; 2 usage error; 3 unparsable input (file and line on stderr); 4 could \
                  not evaluate (an input cannot be read or inspected; with --cluster: no \
                  kubeconfig, API server unreachable, or a list refused, naming the RBAC \
                  permission missing).\n\n\
                  Suppressions file (YAML; every field required; an expired entry no longer hides \
                  its findings):\n  - id: RBAC-027\n    target: Role/gatehouse-gateways/gatehouse-controller\n    \
                  reason: serves listener certificates over SDS (docs/profiles.md)\n    expires: 2026-12-31"
)]
pub(crate) struct VerifyArgs {
    #[command(subcommand)]
    command: Option<VerifyCommand>,
    /// Kubernetes manifests: a file, a directory (every *.yaml, *.yml, *.json below it, and
    /// *.service units) or `-` for stdin. Multi-document YAML and `kind: List` are read.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", num_args = 1..)]
    files: Vec<PathBuf>,
    /// Live objects through the Kubernetes API: RBAC, service accounts, workloads, pods,
    /// NetworkPolicies, Namespaces and ConfigMaps (never Secrets), read with LIST only. The
    /// kubeconfig is found the standard way (KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    cluster: bool,
    /// The kubeconfig file for --cluster (instead of KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context for --cluster (default: the current context).
    #[arg(long, value_name = "NAME", requires = "cluster")]
    context: Option<String>,
    /// Limit --cluster to one namespace for namespaced kinds (cluster-scoped RBAC is still
    /// read whole). Default: every namespace.
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "cluster")]
    namespace: Option<String>,
    /// A running process to inspect through /proc (an Envoy): uid, gid, capabilities,
    /// no_new_privs, read-only root, seccomp.
    #[arg(long, value_name = "PID")]
    process: Vec<u32>,
    /// An Envoy bootstrap (YAML or JSON).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    envoy_bootstrap: Vec<PathBuf>,
    /// A `gatehouse certs` store: the CA and every leaf.
    #[arg(long, value_name = "DIR")]
    certs: Vec<PathBuf>,
    /// systemd unit files.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    unit: Vec<PathBuf>,
    /// The public key a signed directory's manifest must verify with (with --manifest).
    #[arg(long, value_name = "PUB", requires = "manifest")]
    signature_key: Option<PathBuf>,
    /// A signed directory (SHA256SUMS and SHA256SUMS.sig; with --signature-key).
    #[arg(long, value_name = "DIR", requires = "signature_key")]
    manifest: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// The lowest severity that makes the run fail (exit 1).
    #[arg(long, value_enum, default_value_t = FailOnArg::Error)]
    fail_on: FailOnArg,
    /// Accepted findings (YAML list of id, target, reason, expires).
    #[arg(long, value_name = "FILE")]
    suppressions: Option<PathBuf>,
    /// Warn about certificates expiring within this (e.g. 7d, 36h).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
    cert_warn: Duration,
    /// The longest leaf certificate lifetime allowed (default: the store's maximum).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    cert_max_lifetime: Option<Duration>,
    /// Colour in the table: auto (on a terminal, unless NO_COLOR is set), always, never.
    /// NO_COLOR always wins.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Debug, clap::Subcommand)]
enum VerifyCommand {
    /// List every check: id, severity, what it wants.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
    },
    /// Explain a check: why it matters and how to fix a finding (offline).
    Explain {
        /// The check id (RBAC-003 …).
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// For people, grouped by family like `linkerd check`.
    Table,
    /// JSON, `"schemaVersion": 1`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// JUnit XML.
    Junit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ListFormat {
    /// For people.
    Table,
    /// For programs.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FailOnArg {
    /// Errors fail the run.
    Error,
    /// Warnings and errors fail the run.
    Warning,
    /// Nothing fails the run.
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Color {
    /// On a terminal, unless NO_COLOR or TERM=dumb.
    Auto,
    /// Always, unless NO_COLOR.
    Always,
    /// Never.
    Never,
}

fn usage(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(USAGE))
}

pub(crate) fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(VerifyCommand::List { output }) => {
            print!("{}", output::list(*output == ListFormat::Json));
            return Ok(ExitCode::SUCCESS);
        }
        Some(VerifyCommand::Explain { id }) => {
            return match catalog::find(id) {
                Some(check) => {
                    print!("{}", check.explain());
                    Ok(ExitCode::SUCCESS)
                }
                None => usage(&format!(
                    "unknown check id `{id}`: `gatehouse verify list` shows them all"
                )),
            };
        }
        None => {}
    }
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return usage("`-f -` (stdin) may be given once");
    }
    let mut inputs = Inputs {
        manifests: args.files.clone(),
        stdin: None,
        processes: args.process.clone(),
        bootstraps: args.envoy_bootstrap.clone(),
        certs: args.certs.clone(),
        units: args.unit.clone(),
        signature: match (&args.signature_key, &args.manifest) {
            (Some(key), Some(manifest)) => Some(SignatureInput {
                key: key.clone(),
                manifest: manifest.clone(),
            }),
            _ => None,
        },
        cluster: None,
    };
    let cwd = std::env::current_dir().ok();
    if inputs.is_empty() && !args.cluster {
        match cwd.as_deref().and_then(default_profiles) {
            Some(defaults) => inputs = defaults,
            None => {
                return usage(
                    "nothing to verify: give -f FILE|DIR|-, --process PID, --envoy-bootstrap FILE, \
                     --certs DIR, --unit FILE, --cluster or --signature-key PUB --manifest DIR (or run it in a \
                     Gatehouse checkout to verify the rendered default profiles)",
                );
            }
        }
    }
    if inputs.manifests.iter().any(|f| f.as_os_str() == "-") {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("error: could not evaluate <stdin>: {e}");
            return Ok(ExitCode::from(4));
        }
        inputs.stdin = Some(text);
    }
    let suppressions = match &args.suppressions {
        Some(path) => match verify::suppress::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(e.exit_code()));
            }
        },
        None => Vec::new(),
    };
    // Last of the inputs: the local ones are checked before the API server is asked.
    if args.cluster {
        match read_cluster(args) {
            Ok(snapshot) => inputs.cluster = Some(snapshot),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(e.exit_code()));
            }
        }
    }
    let options = Options {
        now: SystemTime::now(),
        cert_warn: args.cert_warn,
        cert_max_lifetime: args.cert_max_lifetime,
        suppressions,
    };
    let report = match verify::run(&inputs, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    let fail_on = match args.fail_on {
        FailOnArg::Error => FailOn::Error,
        FailOnArg::Warning => FailOn::Warning,
        FailOnArg::Never => FailOn::Never,
    };
    let format = match args.output {
        OutputFormat::Table => output::Format::Table,
        OutputFormat::Json => output::Format::Json,
        OutputFormat::Sarif => output::Format::Sarif,
        OutputFormat::Junit => output::Format::Junit,
    };
    let render = output::RenderOptions {
        fail_on,
        color: format == output::Format::Table && use_color(args.color),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        cwd,
    };
    print!("{}", output::render(&report, format, &render));
    for s in &report.unused_suppressions {
        eprintln!(
            "warning: suppression {} {} ({}:{}) matched no finding",
            s.id, s.target, s.file, s.line
        );
    }
    for f in &report.findings {
        if let Some(s) = f.suppression.as_ref().filter(|s| s.expired) {
            eprintln!(
                "warning: the suppression of {} {} ({}) expired on {}: the finding counts again",
                f.check.id,
                f.object.target(),
                s.source,
                s.expires
            );
        }
    }
    Ok(ExitCode::from(report.exit_code(fail_on)))
}

/// Reads the live objects of the cluster of the kubeconfig (`--kubeconfig`, `--context`, or
/// the standard inference), limited to `--namespace` for namespaced kinds.
fn read_cluster(
    args: &VerifyArgs,
) -> Result<verify::cluster::Snapshot, verify::cluster::ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| verify::cluster::ClusterError::Config {
            reason: format!("cannot start the async runtime: {e}"),
        })?;
    let scope = verify::cluster::Scope {
        namespace: args.namespace.clone(),
        ..verify::cluster::Scope::default()
    };
    runtime.block_on(async {
        let (client, server) =
            verify::cluster::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        verify::cluster::read(&client, &server, &scope).await
    })
}

/// Colour only on a terminal, never under `NO_COLOR` (any non-empty value) or `TERM=dumb`.
fn use_color(choice: Color) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match choice {
        _ if no_color => false,
        Color::Never => false,
        Color::Always => true,
        Color::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

/// The rendered default profiles of the checkout `cwd` is in: the hardened Kubernetes
/// manifests, the standalone units and the standalone Envoy bootstrap. Paths are relative
/// when the checkout is the working directory.
fn default_profiles(cwd: &Path) -> Option<Inputs> {
    let root = cwd.ancestors().find(|dir| {
        dir.join("deploy/profiles/kubernetes-hardened").is_dir()
            && dir.join("deploy/profiles/standalone").is_dir()
    })?;
    let base = if root == cwd {
        PathBuf::new()
    } else {
        root.to_path_buf()
    };
    let profiles = base.join("deploy/profiles");
    let standalone = root.join("deploy/profiles/standalone");
    let mut units: Vec<PathBuf> = std::fs::read_dir(&standalone)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".service"))
        .map(|n| profiles.join("standalone").join(n))
        .collect();
    units.sort();
    Some(Inputs {
        manifests: vec![profiles.join("kubernetes-hardened")],
        bootstraps: vec![profiles.join("standalone/envoy/envoy.yaml")],
        units,
        ..Inputs::default()
    })
}
