//! The control-plane loop of Kubernetes mode: watch, translate through the same pipeline as
//! file mode, publish to the snapshot cache (every replica), and, on the leader only, write
//! status and keep the gateways' certificate Secrets fresh.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_certs::GatewayName;
use kube::Client;
use tokio::sync::{mpsc, watch};

use super::gateway_certs::{CertState, GatewayCertificates, secret_name};
use super::state::ClusterState;
use super::status::{StatusPlanner, spawn_writer};
use super::watch::{Change, spawn_watches};
use crate::discover::SnapshotCache;
use crate::run::Pipeline;
use crate::status_file::StatusReport;
use crate::translate::TranslateOptions;
use crate::xds::ProxyRegistry;

/// How often status and certificates are looked at again without a change (failed writes are
/// retried then).
const RESYNC: Duration = Duration::from_secs(30);
/// When to retry a certificate Secret that could not be written.
const CERT_RETRY: Duration = Duration::from_secs(10);

/// What Kubernetes mode needs.
pub struct KubeControlPlane {
    /// The API client.
    pub client: Client,
    /// Translation options.
    pub options: TranslateOptions,
    /// Where snapshots are published.
    pub cache: Arc<SnapshotCache>,
    /// The xDS server's registry (for the status file).
    pub registry: Arc<ProxyRegistry>,
    /// The namespaces whose Secrets the controller may read (the gateway namespaces): one
    /// namespaced watch each, never a cluster-wide one.
    pub secret_namespaces: Vec<String>,
    /// Quiet window for batching changes.
    pub quiet: Duration,
    /// Longest a change waits for its batch.
    pub max_delay: Duration,
    /// Where to write the status report for `gatehouse status`, if anywhere.
    pub status_file: Option<PathBuf>,
    /// The gateways' xDS client certificates, kept in Secrets by the leader (`None`: the
    /// operator provides them).
    pub certificates: Option<GatewayCertificates>,
    /// The longest time between two looks at the certificate Secrets (they are also looked at
    /// when the gateways, the Secrets or the leadership change, and when one is due).
    pub certificate_check: Duration,
}

impl std::fmt::Debug for KubeControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeControlPlane")
            .field("secret_namespaces", &self.secret_namespaces)
            .finish_non_exhaustive()
    }
}

impl KubeControlPlane {
    /// Runs until `shutdown` turns true. `leader` says whether this replica leads (writes
    /// status and certificates); `gateways` receives the gateways with a configuration after
    /// every change.
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut leader: watch::Receiver<bool>,
        gateways: watch::Sender<BTreeSet<GatewayName>>,
    ) {
        let (tx, mut rx) = mpsc::channel::<Change>(1024);
        let tasks = spawn_watches(&self.client, &self.secret_namespaces, &tx);
        drop(tx);
        let mut state = ClusterState::default();
        let mut pipeline = Pipeline::new(self.options.clone(), self.cache.clone(), None);
        let mut planner = StatusPlanner::default();
        let (plans, writer) = spawn_writer(self.client.clone());
        let mut next_cert_check: Option<tokio::time::Instant> = None;
        let mut cert_inputs: Option<(BTreeSet<GatewayName>, u64)> = None;
        let mut synced = false;
        loop {
            let mut dirty = false;
            let mut lead_changed = false;
            let cert_due = async {
                match next_cert_check {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
                change = rx.recv() => match change {
                    Some(c) => {
                        state.apply(c);
                        dirty = true;
                        // Batch: a short quiet window, bounded by the maximum delay.
                        let deadline = tokio::time::Instant::now() + self.max_delay;
                        loop {
                            let quiet = tokio::time::sleep(self.quiet);
                            tokio::select! {
                                more = rx.recv() => match more {
                                    Some(c) => state.apply(c),
                                    None => break,
                                },
                                () = quiet => break,
                            }
                            if tokio::time::Instant::now() >= deadline {
                                break;
                            }
                        }
                    }
                    None => break,
                },
                Ok(()) = leader.changed() => lead_changed = true,
                () = cert_due => next_cert_check = None,
                () = tokio::time::sleep(RESYNC) => {}
            }
            if !state.synced(&self.secret_namespaces) {
                continue;
            }
            if !synced {
                synced = true;
                tracing::info!("every watch has listed: configuration complete");
                dirty = true;
            }
            if dirty {
                let changes = state.take_changes();
                let current = pipeline.apply(None, &state.config, &changes, state.diagnostics());
                let _ = gateways.send(current);
            }
            let leading = *leader.borrow();
            if lead_changed {
                tracing::info!(leader = leading, "leadership changed");
                if !leading {
                    // Stop writing at once.
                    let _ = plans.send(Arc::new(Vec::new()));
                }
            }
            if leading {
                // Status goes to its own task: xDS never waits for the API.
                let policies = policy_statuses(&state, &pipeline.diagnostics);
                let _ = plans.send(Arc::new(planner.plan(&state, &pipeline.objects, &policies)));
                // Certificates: when something they depend on changed, or one is due.
                if let Some(certs) = &self.certificates {
                    let inputs = (
                        pipeline.snapshots.keys().cloned().collect::<BTreeSet<_>>(),
                        state.secret_changes,
                    );
                    if lead_changed
                        || next_cert_check.is_none()
                        || cert_inputs.as_ref() != Some(&inputs)
                    {
                        next_cert_check =
                            Some(self.keep_certificates(certs, &pipeline, &state).await);
                        cert_inputs = Some(inputs);
                    }
                }
            }
            if let Some(path) = &self.status_file {
                let report = StatusReport::new(
                    Path::new("kubernetes"),
                    &pipeline.diagnostics,
                    &pipeline.objects,
                    &pipeline.snapshots,
                    &self.registry.proxies(),
                    &self.registry.last_nacks(),
                    &self.registry.security_events(),
                );
                if let Err(error) = report.write(path) {
                    tracing::warn!(%error, path = %path.display(), "cannot write the status file");
                }
            }
        }
        for t in tasks {
            t.abort();
        }
        writer.abort();
    }

    /// Creates or renews each gateway's certificate Secret; returns when to look again.
    async fn keep_certificates(
        &self,
        certs: &GatewayCertificates,
        pipeline: &Pipeline,
        state: &ClusterState,
    ) -> tokio::time::Instant {
        let now = certs.now();
        let mut next = now + self.certificate_check;
        for gw in pipeline.snapshots.keys() {
            if !self.secret_namespaces.iter().any(|n| n == gw.namespace()) {
                tracing::warn!(gateway = %gw, "the gateway's namespace is not a secret namespace of the controller (--secret-namespace): its certificate Secret cannot be written");
                continue;
            }
            let existing = state
                .secrets
                .get(&(gw.namespace().to_owned(), secret_name(gw)));
            match certs.ensure(gw, existing).await {
                Ok(st) => {
                    match &st {
                        CertState::Created { .. } => {
                            tracing::info!(gateway = %gw, "gateway certificate Secret created");
                        }
                        CertState::Renewed { reason, .. } => {
                            tracing::info!(gateway = %gw, %reason, "gateway certificate renewed");
                        }
                        _ => {}
                    }
                    next = next.min(st.next_due());
                }
                Err(error) => {
                    tracing::warn!(gateway = %gw, %error, "cannot write the gateway's certificate Secret; will retry");
                    next = next.min(now + CERT_RETRY);
                }
            }
        }
        tokio::time::Instant::now() + next.duration_since(now).unwrap_or_default()
    }
}

/// The status of each GatewayPolicy: accepted unless its policies have errors.
fn policy_statuses(
    state: &ClusterState,
    diagnostics: &[crate::model::Diagnostic],
) -> Vec<crate::translate::ObjectStatus> {
    use crate::translate::{Condition, ObjectStatus};
    state
        .config
        .gateway_policies
        .iter()
        .map(|((_, name), (_, origin))| {
            let errors: Vec<&crate::model::Diagnostic> = diagnostics
                .iter()
                .filter(|d| d.file == origin.file && d.message.starts_with("policy error"))
                .collect();
            let cond = match errors.first() {
                None => Condition::ok("Accepted", "Accepted", "policies compiled and in force"),
                Some(d) => Condition::fail("Accepted", "Invalid", d.message.clone()),
            };
            ObjectStatus {
                object: crate::model::ObjectKey::new(crate::model::Kind::GatewayPolicy, "", name),
                origin: origin.clone(),
                conditions: vec![cond],
                parts: vec![],
            }
        })
        .collect()
}
