//! `gatehouse render`: the deployment profiles, deterministically, to a directory or stdout;
//! `--check DIR` compares a directory with what would be rendered.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use gatehouse_certs::{GatewayName, TrustDomain};
use gatehouse_deploy::kubernetes::{self, HardenedParams};
use gatehouse_deploy::standalone::{self, StandaloneParams};
use gatehouse_deploy::{ImageRef, Rendering};

const AFTER_HELP: &str = "\
Profiles:
  hardened     Kubernetes: namespaces (Pod Security restricted), the controller with least-
               privilege RBAC, one Envoy Deployment per --gateway with no token and no role,
               default-deny NetworkPolicies. One YAML file per kind, in apply order
               (01-namespaces.yaml, 02-serviceaccounts.yaml, ...).
  standalone   systemd: gatehouse-controller.service and gatehouse-envoy.service, each under its
               own user and sandboxed, Envoy's bootstrap in envoy/, and INSTALL.md.

The output depends only on the flags: no timestamp, no key. The images default to placeholder
digests (all zeros): pass the real ones with --image-envoy and --image-controller.

Examples:
  gatehouse render --profile hardened --output-dir deploy/profiles/kubernetes-hardened
  gatehouse render --profile hardened --gateway edge/public --gateway edge/internal \\
      --image-envoy docker.io/envoyproxy/envoy:distroless-v1.40.0@sha256:<digest> | kubectl apply -f -
  gatehouse render --profile standalone --output-dir /tmp/gatehouse-standalone
  gatehouse render --profile hardened --check deploy/profiles/kubernetes-hardened   # CI drift gate";

/// Which profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Profile {
    /// Kubernetes, hardened.
    Hardened,
    /// systemd units on one host.
    Standalone,
}

/// The flags that describe a profile, shared by `render` and `install`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProfileArgs {
    /// The profile to render.
    #[arg(long, value_enum)]
    pub(crate) profile: Profile,
    /// The control plane's namespace (hardened).
    #[arg(long, value_name = "NS", default_value = kubernetes::DEFAULT_NAMESPACE)]
    namespace: String,
    /// A gateway: one Envoy Deployment in NAMESPACE (hardened; repeat for more), or the gateway
    /// of the standalone Envoy [default: gatehouse-gateways/edge].
    #[arg(long = "gateway", value_name = "NAMESPACE/NAME")]
    gateways: Vec<String>,
    /// The Envoy image, by digest (hardened) [default: Envoy 1.40.0 distroless, placeholder
    /// digest].
    #[arg(long, value_name = "REF@sha256:DIGEST")]
    image_envoy: Option<String>,
    /// The controller image, by digest (hardened) [default: placeholder digest].
    #[arg(long, value_name = "REF@sha256:DIGEST")]
    image_controller: Option<String>,
    /// Trust domain of the SPIFFE IDs: must be the CA's (`certs init --trust-domain`).
    #[arg(long, value_name = "TD", default_value = gatehouse_certs::DEFAULT_TRUST_DOMAIN)]
    trust_domain: String,
    /// A namespace whose pods Envoy may connect to, its backends (hardened; repeatable).
    /// Without it, Envoy's NetworkPolicy allows only the controller and DNS.
    #[arg(long = "backend-namespace", value_name = "NS")]
    backend_namespaces: Vec<String>,
    /// The API server's address range, to narrow the controller's egress (hardened;
    /// repeatable). Without it, the controller may reach any address on ports 443 and 6443.
    #[arg(long = "api-server-cidr", value_name = "CIDR")]
    api_server_cidrs: Vec<String>,
}

impl ProfileArgs {
    /// The parameters of the hardened profile.
    pub(crate) fn hardened(&self) -> anyhow::Result<HardenedParams> {
        let mut params = HardenedParams::default();
        params.namespace = self.namespace.clone();
        if !self.gateways.is_empty() {
            params.gateways = self
                .gateways
                .iter()
                .map(|g| g.parse::<GatewayName>())
                .collect::<Result<_, _>>()?;
        }
        if let Some(image) = &self.image_envoy {
            params.envoy_image = image.parse()?;
        }
        if let Some(image) = &self.image_controller {
            params.controller_image = image.parse()?;
        }
        params.trust_domain = self.trust_domain.parse::<TrustDomain>()?;
        params.backend_namespaces = self.backend_namespaces.clone();
        params.api_server_cidrs = self.api_server_cidrs.clone();
        Ok(params)
    }

    fn standalone(&self) -> anyhow::Result<StandaloneParams> {
        let hardened_only = [
            (
                "--namespace",
                self.namespace != kubernetes::DEFAULT_NAMESPACE,
            ),
            ("--image-envoy", self.image_envoy.is_some()),
            ("--image-controller", self.image_controller.is_some()),
            ("--backend-namespace", !self.backend_namespaces.is_empty()),
            ("--api-server-cidr", !self.api_server_cidrs.is_empty()),
        ];
        if let Some((flag, _)) = hardened_only.iter().find(|(_, given)| *given) {
            bail!(
                "{flag} applies to the hardened profile only (the standalone profile runs the binaries installed on the host)"
            );
        }
        let mut params = StandaloneParams::default();
        match self.gateways.as_slice() {
            [] => {}
            [one] => params.gateway = one.parse()?,
            _ => bail!(
                "the standalone profile runs one Envoy, for one --gateway (render each gateway's host separately)"
            ),
        }
        params.trust_domain = self.trust_domain.parse::<TrustDomain>()?;
        Ok(params)
    }
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct RenderArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Write the files into DIR (created if missing), or `-` for stdout (hardened only, one YAML
    /// stream) [default: -].
    #[arg(long, value_name = "DIR|-", conflicts_with = "check")]
    output_dir: Option<PathBuf>,
    /// Compare DIR with what would be rendered: print a unified diff and exit 1 if any file
    /// differs, is missing, or is not rendered.
    #[arg(long, value_name = "DIR")]
    check: Option<PathBuf>,
    /// Sign the rendered directory as a whole with this cosign-compatible key: a manifest of
    /// every file's SHA-256 (`SHA256SUMS`) and its signature (`SHA256SUMS.sig`); check it with
    /// `gatehouse verify-signature --key PUB --manifest DIR`. The key's password comes from
    /// GATEHOUSE_SIGNING_PASSWORD (or COSIGN_PASSWORD) or a prompt.
    #[arg(long, value_name = "KEY", requires = "output_dir")]
    sign_key: Option<PathBuf>,
}

pub(crate) fn run(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let rendering = match args.profile.profile {
        Profile::Hardened => {
            let params = args.profile.hardened()?;
            warn_placeholders(&[&params.envoy_image, &params.controller_image]);
            // The controller's CRDs (gatehouse-controller) will be passed here once they exist.
            gatehouse_deploy::render_hardened(&params, &gatehouse_controller::model::crds())?
        }
        Profile::Standalone => {
            let params = args.profile.standalone()?;
            standalone::render_standalone(&params)?
        }
    };
    if let Some(dir) = &args.check {
        return check(dir, &rendering);
    }
    match args.output_dir.as_deref() {
        None => to_stdout(args.profile.profile, &rendering),
        Some(dir) if dir == Path::new("-") => to_stdout(args.profile.profile, &rendering),
        Some(dir) => {
            let written = rendering.write_to(dir)?;
            let report = rendering.check(dir)?;
            for extra in report.differences {
                tracing::warn!(
                    "`{}` is in `{}` but was not rendered: remove it if it is a leftover",
                    extra.name(),
                    dir.display()
                );
            }
            println!("wrote {} files to {}", written.len(), dir.display());
            for path in written {
                println!("  {}", path.display());
            }
            if let Some(key_path) = &args.sign_key {
                use gatehouse_hardening::signing::password::{Password, Prompt};
                let key =
                    gatehouse_hardening::signing::keys::SigningKey::load_with(key_path, || {
                        Password::from_env_or_prompt(Prompt::Once)
                    })?;
                let signed = gatehouse_hardening::signing::manifest::sign_dir(dir, &key)?;
                println!(
                    "signed {} and {}",
                    signed.manifest.display(),
                    signed.signature.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn to_stdout(profile: Profile, rendering: &Rendering) -> anyhow::Result<ExitCode> {
    if profile == Profile::Standalone {
        bail!(
            "the standalone profile is several kinds of files (units, bootstrap, INSTALL.md): give --output-dir DIR"
        );
    }
    print!("{}", rendering.to_stream());
    Ok(ExitCode::SUCCESS)
}

fn check(dir: &Path, rendering: &Rendering) -> anyhow::Result<ExitCode> {
    let report = rendering.check(dir)?;
    if report.is_clean() {
        println!(
            "`{}` matches the rendering ({} files)",
            dir.display(),
            rendering.files.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", report.diff(dir, rendering));
    bail!(
        "`{}` differs from the rendering: {} (diff on stdout; re-render with --output-dir to update it)",
        dir.display(),
        report.summary()
    )
}

fn warn_placeholders(images: &[&ImageRef]) {
    let placeholders: Vec<String> = images
        .iter()
        .filter(|i| i.is_placeholder())
        .map(|i| format!("`{i}`"))
        .collect();
    if !placeholders.is_empty() {
        tracing::warn!(
            "placeholder digests (not real images): {}; pass the real ones with --image-envoy and --image-controller before installing",
            placeholders.join(", ")
        );
    }
}
