//! `gatehouse install`: the hardened profile, applied to the cluster of the current kubeconfig
//! with server-side apply (field manager `gatehouse`), then a bounded wait for the rollouts.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use gatehouse_deploy::install::{self, InstallOptions, Progress};

use super::render::{Profile, ProfileArgs};

const AFTER_HELP: &str = "\
Order: CRDs (none yet), namespaces, RBAC, ConfigMaps and NetworkPolicies, then Services,
Deployments and PodDisruptionBudgets; then it waits for the Deployments to roll out.

Before installing, create the CA Secret the controller reads (see docs/profiles.md):
  kubectl -n gatehouse-system create secret generic gatehouse-ca \\
      --from-file=ca.pem=PKI/ca/ca.pem --from-file=ca.key=PKI/ca/ca.key \\
      --from-file=bundle.pem=PKI/ca/bundle.pem --from-file=ca.json=PKI/ca/ca.json

The cluster is the current context of KUBECONFIG (or ~/.kube/config), or the pod's service
account in a cluster. Progress goes to stderr.";

#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct InstallArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Server-side dry run: the API server validates every object and runs admission, stores
    /// nothing; no waiting.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for the Deployments to roll out.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::certs::parse_duration)]
    timeout: Duration,
}

pub(crate) fn run(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    if args.profile.profile != Profile::Hardened {
        bail!(
            "install applies the hardened profile to Kubernetes; for standalone, render it and follow its INSTALL.md"
        );
    }
    let params = args.profile.hardened()?;
    if !args.dry_run {
        for (flag, image) in [
            ("--image-envoy", &params.envoy_image),
            ("--image-controller", &params.controller_image),
        ] {
            if image.is_placeholder() {
                bail!(
                    "image `{image}` has a placeholder digest, which no registry serves: pass {flag} REPOSITORY[:TAG]@sha256:DIGEST with the real digest (or --dry-run)"
                );
            }
        }
    }
    let objects =
        gatehouse_deploy::hardened_objects(&params, &gatehouse_controller::model::crds())?;
    let mut options = InstallOptions::default();
    options.dry_run = args.dry_run;
    options.rollout_timeout = args.timeout;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = install::connect().await?;
        install::install(&client, &objects, &options, &mut |p| match p {
            Progress::Stage(stage) => eprintln!("{stage:?}:"),
            Progress::Applied { id } => eprintln!("  applied {id}"),
            Progress::Waiting { id, status } => eprintln!("  waiting for {id}: {status}"),
            Progress::RolledOut { id } => eprintln!("  rolled out {id}"),
            _ => {}
        })
        .await
    })?;
    println!(
        "{} {} objects{}",
        if args.dry_run { "validated" } else { "applied" },
        objects.len(),
        if args.dry_run {
            " (server-side dry run: nothing stored)"
        } else {
            "; every Deployment is rolled out"
        }
    );
    Ok(ExitCode::SUCCESS)
}
