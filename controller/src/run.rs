//! The control-plane loop of file mode: read the directory and its Cedar policies, translate,
//! admit, publish the snapshots, report; again on every change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_certs::GatewayName;
use tokio::sync::watch;

use crate::admission::{Admitter, POLICY_WARNING, Policies, PolicyLoader, Report};
use crate::discover::SnapshotCache;
use crate::model::{Config, ObjectKey};
use crate::source::{FileSource, Touched};
use crate::status_file::StatusReport;
use crate::translate::TranslateOptions;
use crate::xds::ProxyRegistry;

/// What the file control plane needs.
#[derive(Debug)]
pub struct FileControlPlane {
    /// The configuration directory.
    pub dir: PathBuf,
    /// Translation options.
    pub options: TranslateOptions,
    /// Where snapshots are published.
    pub cache: Arc<SnapshotCache>,
    /// The xDS server's registry (for the status report).
    pub registry: Arc<ProxyRegistry>,
    /// Where to write the status report, if anywhere.
    pub status_file: Option<PathBuf>,
    /// Quiet window for batching file changes.
    pub quiet: Duration,
    /// When set, only policy sets this accepts are loaded (signed policies).
    pub policy_verifier: Option<crate::admission::PolicyVerifier>,
}

impl FileControlPlane {
    /// Runs until `shutdown` turns true. `gateways` receives the set of gateways with a
    /// configuration after every change.
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        gateways: watch::Sender<BTreeSet<GatewayName>>,
    ) {
        let mut source = FileSource::new(&self.dir);
        let mut pipeline = Pipeline::new(
            self.options.clone(),
            self.cache.clone(),
            self.policy_verifier.clone(),
        );
        let (_watcher, mut changes) = match source.watch(self.quiet) {
            Ok((w, rx)) => (Some(w), rx),
            Err(error) => {
                tracing::warn!(%error, dir = %self.dir.display(), "cannot watch the configuration directory; changes will be picked up every 2s");
                (None, tokio::sync::mpsc::channel(1).1)
            }
        };
        let mut reload = Some(Touched::All);
        loop {
            if let Some(touched) = reload.take() {
                let r = source.reload_touched(&touched);
                let current =
                    pipeline.apply(Some(&self.dir), source.config(), &r.changes, r.diagnostics);
                let _ = gateways.send(current);
            }
            if let Some(path) = &self.status_file {
                let report = StatusReport::new(
                    &self.dir,
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
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                Some(touched) = changes.recv() => reload = Some(touched),
                () = tokio::time::sleep(Duration::from_secs(2)) => {
                    // Refresh the status (proxies) and catch changes a watcher may have missed.
                    reload = _watcher.is_none().then_some(Touched::All);
                }
            }
        }
    }
}

/// The stages every source shares: policies, admission, translation, publication to the
/// snapshot cache, and reporting. A source hands it the whole configuration after each change;
/// translation is incremental, so what did not change is reused.
pub struct Pipeline {
    cache: Arc<SnapshotCache>,
    admitter: Admitter,
    policies: PolicyLoader,
    last_report: Report,
    published: BTreeSet<GatewayName>,
    reported: BTreeSet<String>,
    /// Number of problems in the statuses of `objects`.
    status_problems: usize,
    /// The snapshots of the last application.
    pub snapshots: BTreeMap<GatewayName, crate::Snapshot>,
    /// The configuration problems of the last application.
    pub diagnostics: Vec<crate::model::Diagnostic>,
    /// The status of every object after the last application (with admission decisions).
    pub objects: crate::translate::Statuses,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("gateways", &self.published)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline publishing to `cache`; with `verifier`, only signed policy sets load.
    pub fn new(
        options: TranslateOptions,
        cache: Arc<SnapshotCache>,
        verifier: Option<crate::admission::PolicyVerifier>,
    ) -> Self {
        Self {
            cache,
            admitter: Admitter::new(options),
            policies: match verifier {
                Some(v) => PolicyLoader::with_verifier(v),
                None => PolicyLoader::default(),
            },
            last_report: Report::default(),
            published: BTreeSet::new(),
            reported: BTreeSet::new(),
            status_problems: 0,
            snapshots: BTreeMap::new(),
            diagnostics: Vec::new(),
            objects: Default::default(),
        }
    }

    /// Applies a new configuration (with the problems its source found): policies from
    /// `policy_dir`'s `*.cedar` files (file mode) and GatewayPolicy objects, admission,
    /// translation, publication. A Gateway that is gone is withdrawn. Returns the gateways
    /// that now have a configuration.
    pub fn apply(
        &mut self,
        policy_dir: Option<&Path>,
        config: &Config,
        changes: &crate::model::Changes,
        mut diagnostics: Vec<crate::model::Diagnostic>,
    ) -> BTreeSet<GatewayName> {
        // Policies: `*.cedar` files and GatewayPolicy self.objects. A set that does not
        // compile is refused whole; the last valid one stays in force.
        let update = self.policies.reload_from(policy_dir, config);
        if update.refused {
            tracing::error!(
                errors = update.diagnostics.len(),
                "the policy set is invalid and was refused as a whole; the last valid set stays in force"
            );
        }
        diagnostics.extend(update.diagnostics.iter().map(|d| crate::model::Diagnostic {
            file: d.file.clone().into(),
            line: d.line,
            message: format!(
                    "policy {}: {}{}{}",
                    match d.severity {
                        gatehouse_policies::Severity::Error => "error",
                        gatehouse_policies::Severity::Warning => "warning",
                    },
                    d.message,
                    d.help.as_deref().map(|h| format!(" (help: {h})")).unwrap_or_default(),
                    if update.refused {
                        "; the policy set is refused and the last valid set stays in force"
                    } else {
                        ""
                    }
                ),
        }));
        let in_force = self.policies.policies();
        let a = self.admitter.translate_changes(config, changes, &in_force);
        if update.changed {
            // A policy change re-evaluates everything: say what it changes before the
            // new decisions reach Envoy.
            let count = match &in_force {
                Policies::Enforce(e) => e.policies().len(),
                _ => 0,
            };
            tracing::info!(policies = count, "policy set loaded");
            for o in a.report.denied() {
                if self.last_report.decision(&o.object) != gatehouse_policies::Decision::Deny {
                    for f in o.deciding() {
                        tracing::warn!(object = %o.object, policy = %f.policy, claim = %f.claim, message = %f.message, "policy change: now denied, will not be programmed");
                    }
                }
            }
            for o in self.last_report.denied() {
                if a.report.decision(&o.object) != gatehouse_policies::Decision::Deny {
                    tracing::info!(object = %o.object, "policy change: no longer denied, will be programmed");
                }
            }
        }
        // Warnings and dry-run findings, each once while it lasts (looked at for the objects
        // whose decision changed).
        let findings = |o: Option<&crate::admission::ObjectDecision>| -> BTreeSet<(bool, String)> {
            o.into_iter()
                .flat_map(|o| {
                    o.findings
                        .iter()
                        .filter(|f| f.enforcement != gatehouse_policies::Enforcement::Deny)
                        .map(move |f| {
                            (
                                f.enforcement == gatehouse_policies::Enforcement::Warn,
                                format!("{}: {}: {f}", o.origin, o.object),
                            )
                        })
                })
                .collect()
        };
        let changed: Vec<ObjectKey> =
            crate::translate::changed_keys(&self.last_report.objects, &a.report.objects);
        for k in changed {
            let old = findings(self.last_report.objects.get(&k));
            for (warn, f) in findings(a.report.objects.get(&k)).difference(&old) {
                if *warn {
                    tracing::warn!(finding = %f, "{POLICY_WARNING}: programmed with a policy warning");
                } else {
                    tracing::info!(finding = %f, "policy dry run: would be denied");
                }
            }
        }
        self.last_report = a.report;
        let t = a.translation;
        // Report each problem once, while it lasts: the source's diagnostics, and the
        // problems in the statuses that changed since the last application.
        let now: BTreeSet<String> = diagnostics.iter().map(ToString::to_string).collect();
        for p in now.difference(&self.reported) {
            tracing::warn!(problem = %p, "configuration problem");
        }
        for p in self.reported.difference(&now) {
            tracing::info!(problem = %p, "configuration problem resolved");
        }
        self.reported = now;
        let problems = |s: Option<&crate::translate::ObjectStatus>| -> BTreeSet<String> {
            s.map(|s| s.problems().into_iter().collect())
                .unwrap_or_default()
        };
        for key in self.objects.changed_since(&t.status) {
            let (old, new) = (
                problems(self.objects.get(&key)),
                problems(t.status.get(&key)),
            );
            for p in new.difference(&old) {
                tracing::warn!(problem = %p, "configuration problem");
            }
            for p in old.difference(&new) {
                tracing::info!(problem = %p, "configuration problem resolved");
            }
            self.status_problems = (self.status_problems + new.len()).saturating_sub(old.len());
        }
        let current: BTreeSet<GatewayName> = t.snapshots.keys().cloned().collect();
        for gw in self.published.difference(&current) {
            // A Gateway that is gone: withdraw its configuration.
            self.cache.set(gw, crate::Snapshot::empty());
        }
        for (gw, snap) in &t.snapshots {
            self.cache.set(gw, snap.clone());
        }
        let changed = t.snapshots != self.snapshots || diagnostics != self.diagnostics;
        if changed {
            tracing::info!(
                gateways = current.len(),
                routes_translated = t.stats.routes_translated,
                routes_reused = t.stats.routes_reused,
                problems = self.reported.len() + self.status_problems,
                "configuration applied"
            );
        }
        self.published = current.clone();
        self.snapshots = t.snapshots;
        self.diagnostics = diagnostics;
        self.objects = t.status;
        self.published.clone()
    }
}
