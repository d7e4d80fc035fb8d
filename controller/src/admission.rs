//! Cedar admission in the control plane: the configuration is translated once to learn what
//! each route would get (its listeners, hostnames and effective security), decomposed into
//! claims, and judged by the operator's policies. A route denied by a `deny` policy (or by any
//! evaluation error) is translated as absent, so it is never programmed; it
//! gets `Accepted=False` with reason `NotAllowedByPolicy` naming the policy, its message and
//! the claim. A `warn` policy programs the route and adds a `PolicyWarning` condition; a
//! `dryrun` policy is only reported.
//!
//! ```text
//! Config ─▶ probe translation ─▶ claims ─▶ Engine ─▶ Report ─┬─ nothing denied: the probe is it
//!                                                           └─ Config, denied as absent ─▶ translation
//! ```
//!
//! After a change, only the routes the change names or whose effective security changed are
//! judged again, and only the statuses whose translation or decision changed are redone.

mod cases;
mod claims;
mod sources;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use gatehouse_policies::{
    ClaimDecision, Decision, Enforcement, Engine, InvalidPolicySet, PolicyDiagnostic, PolicySource,
    Severity,
};

pub use cases::{CaseResult, TestFile, TestOutcome, run_test_file, test_files};
pub use claims::{ObjectClaim, claims};
pub use sources::{admission_data, cedar_files, data_warnings, file_sources, object_sources};

use crate::model::{Changes, Config, Kind, ObjectKey, Origin};
use crate::translate::{Condition, ObjectStatus, TranslateOptions, Translation, Translator};

/// The reason of the `Accepted=False` condition of a route a policy denies.
pub const NOT_ALLOWED: &str = "NotAllowedByPolicy";
/// The type of the condition a `warn` policy adds.
pub const POLICY_WARNING: &str = "PolicyWarning";

/// One reason an object is not simply allowed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ObjectFinding {
    /// The policy id.
    pub policy: String,
    /// Its enforcement (an evaluation error always denies).
    pub enforcement: Enforcement,
    /// The policy's message, or what went wrong.
    pub message: String,
    /// An evaluation error.
    pub error: bool,
    /// The claim, for people.
    pub claim: String,
}

impl std::fmt::Display for ObjectFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.error {
            write!(f, "{} (claim: {})", self.message, self.claim)
        } else {
            write!(
                f,
                "policy `{}` ({}): {} (claim: {})",
                self.policy, self.enforcement, self.message, self.claim
            )
        }
    }
}

/// The decision on one object.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ObjectDecision {
    /// The object.
    pub object: ObjectKey,
    /// Where it is defined.
    pub origin: Origin,
    /// The worst decision over its claims.
    pub decision: Decision,
    /// How many claims it makes.
    pub claims: usize,
    /// Every finding (deny, warn, dryrun, errors).
    pub findings: Vec<ObjectFinding>,
}

impl ObjectDecision {
    /// The findings that decide `decision`.
    pub fn deciding(&self) -> impl Iterator<Item = &ObjectFinding> {
        self.findings.iter().filter(move |f| match self.decision {
            Decision::Deny => f.enforcement == Enforcement::Deny,
            Decision::Warn => f.enforcement == Enforcement::Warn,
            Decision::Allow => false,
        })
    }

    /// The ids of every determining policy.
    pub fn policies(&self) -> BTreeSet<&str> {
        self.findings.iter().map(|f| f.policy.as_str()).collect()
    }

    fn summary(&self) -> String {
        let deciding: Vec<&ObjectFinding> = self.deciding().collect();
        match deciding.as_slice() {
            [] => String::new(),
            [one] => one.to_string(),
            [first, rest @ ..] => {
                let others: BTreeSet<&str> = rest.iter().map(|f| f.policy.as_str()).collect();
                format!(
                    "{first}; and {} more ({})",
                    rest.len(),
                    others.into_iter().collect::<Vec<_>>().join(", ")
                )
            }
        }
    }
}

/// The decisions on every object that makes claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// By object (a persistent map: a change to a few routes shares the rest).
    pub objects: imbl::OrdMap<ObjectKey, ObjectDecision>,
}

impl Report {
    /// Objects denied.
    pub fn denied(&self) -> impl Iterator<Item = &ObjectDecision> {
        self.objects
            .values()
            .filter(|o| o.decision == Decision::Deny)
    }

    /// The decision on `object` (allow when it makes no claim).
    pub fn decision(&self, object: &ObjectKey) -> Decision {
        self.objects
            .get(object)
            .map_or(Decision::Allow, |o| o.decision)
    }
}

/// Every claim with its decision, and the decisions by object.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Each claim and its decision.
    pub claims: Vec<(ObjectClaim, ClaimDecision)>,
    /// By object.
    pub report: Report,
}

fn origin_of(config: &Config, key: &ObjectKey) -> Origin {
    let id = (key.namespace.clone(), key.name.clone());
    match key.kind {
        Kind::HTTPRoute => config.http_routes.get(&id).map(|(_, o)| o.clone()),
        Kind::GRPCRoute => config.grpc_routes.get(&id).map(|(_, o)| o.clone()),
        _ => None,
    }
    .unwrap_or_default()
}

/// Decisions of the last evaluation, by claim, valid for one policy set and one set of data:
/// a change to one route re-evaluates only that route's claims.
#[derive(Debug, Default)]
pub struct DecisionCache {
    key: u64,
    decisions: HashMap<gatehouse_policies::Claim, ClaimDecision>,
}

/// Judges every claim of `config` (translated as `translation`) with `engine`.
pub fn evaluate(engine: &Engine, config: &Config, translation: &Translation) -> Evaluation {
    evaluate_cached(engine, config, translation, &mut DecisionCache::default())
}

/// [`evaluate`], reusing the decisions of `cache` for claims already judged with the same
/// policies and data.
pub fn evaluate_cached(
    engine: &Engine,
    config: &Config,
    translation: &Translation,
    cache: &mut DecisionCache,
) -> Evaluation {
    let claims = claims(config, translation);
    let data = admission_data(config);
    let key = {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.fingerprint().hash(&mut h);
        data.hash(&mut h);
        h.finish()
    };
    if cache.key != key {
        cache.key = key;
        cache.decisions.clear();
    }
    let decisions = decide(engine, &data, &claims, cache, true);
    let mut report = Report::default();
    for (c, d) in claims.iter().zip(&decisions) {
        fold(&mut report, config, c, d);
    }
    Evaluation {
        claims: claims.into_iter().zip(decisions).collect(),
        report,
    }
}

/// The decision on each of `claims`: from `cache` when judged before with the same policies
/// and data, else by `engine` (and then cached). With `only_these`, the cache keeps only
/// `claims` (a whole configuration's).
fn decide(
    engine: &Engine,
    data: &gatehouse_policies::AdmissionData,
    claims: &[ObjectClaim],
    cache: &mut DecisionCache,
    only_these: bool,
) -> Vec<ClaimDecision> {
    let missing: Vec<gatehouse_policies::Claim> = claims
        .iter()
        .filter(|c| !cache.decisions.contains_key(&c.claim))
        .map(|c| c.claim.clone())
        .collect();
    let fresh = engine.evaluate(&missing, data);
    cache.decisions.extend(missing.into_iter().zip(fresh));
    let decisions: Vec<ClaimDecision> = claims
        .iter()
        .map(|c| {
            cache
                .decisions
                .get(&c.claim)
                .cloned()
                .unwrap_or_else(|| ClaimDecision {
                    decision: Decision::Deny,
                    findings: vec![gatehouse_policies::Finding {
                        policy: gatehouse_policies::ADMISSION_ID.into(),
                        enforcement: Enforcement::Deny,
                        message: "the claim was not evaluated, which counts as a deny".into(),
                        error: true,
                    }],
                })
        })
        .collect();
    if only_these {
        // Keep only what this configuration claims.
        let current: std::collections::HashSet<&gatehouse_policies::Claim> =
            claims.iter().map(|c| &c.claim).collect();
        cache.decisions.retain(|k, _| current.contains(k));
    }
    decisions
}

/// Adds one claim's decision to its object's.
fn fold(report: &mut Report, config: &Config, c: &ObjectClaim, d: &ClaimDecision) {
    let o = report
        .objects
        .entry(c.object.clone())
        .or_insert_with(|| ObjectDecision {
            object: c.object.clone(),
            origin: origin_of(config, &c.object),
            decision: Decision::Allow,
            claims: 0,
            findings: Vec::new(),
        });
    o.claims += 1;
    o.decision = o.decision.max(d.decision);
    for f in &d.findings {
        let finding = ObjectFinding {
            policy: f.policy.clone(),
            enforcement: f.enforcement,
            message: f.message.clone(),
            error: f.error,
            claim: c.claim.to_string(),
        };
        if !o.findings.contains(&finding) {
            o.findings.push(finding);
        }
    }
}

/// A report that denies every route: the fail-closed answer when no valid policy set was ever
/// loaded.
fn refuse_all(config: &Config, translation: &Translation, why: &str) -> Report {
    let mut report = Report::default();
    for rs in &translation.security {
        report
            .objects
            .entry(rs.route.clone())
            .or_insert_with(|| ObjectDecision {
                object: rs.route.clone(),
                origin: origin_of(config, &rs.route),
                decision: Decision::Deny,
                claims: 0,
                findings: vec![ObjectFinding {
                    policy: gatehouse_policies::ADMISSION_ID.into(),
                    enforcement: Enforcement::Deny,
                    message: why.to_owned(),
                    error: true,
                    claim: "every claim".into(),
                }],
            });
    }
    report
}

/// The policies the control plane enforces.
#[derive(Clone, Debug, Default)]
pub enum Policies {
    /// No policy: admission allows everything.
    #[default]
    Off,
    /// A valid policy set.
    Enforce(Arc<Engine>),
    /// No valid policy set was ever loaded (fail closed: nothing is programmed).
    RefuseAll(String),
}

/// A translation after admission, and the decisions.
#[derive(Clone, Debug, Default)]
pub struct Admitted {
    /// What is programmed, with the statuses of denied and warned routes.
    pub translation: Translation,
    /// The decisions.
    pub report: Report,
}

/// A translator that admits: it keeps two incremental translators, one for the whole
/// configuration (to learn what each route would get) and one for what is admitted, so each
/// stays incremental across changes. Decisions are kept too: after a change, only the routes
/// whose claims may have changed are judged again.
#[derive(Debug)]
pub struct Admitter {
    probe: Translator,
    publish: Translator,
    /// Whether `publish` translated the last configuration (it is skipped while nothing is
    /// denied, and then starts over).
    publish_synced: bool,
    cache: DecisionCache,
    judged: Option<Judged>,
    last: Option<LastAdmission>,
    /// The routes denied by the last admission.
    denied: BTreeSet<ObjectKey>,
}

/// The last evaluation, to judge again only what changed.
#[derive(Debug)]
struct Judged {
    /// The policy set and data it is valid for.
    key: u64,
    /// The attachments it judged.
    security: crate::translate::Securities,
    report: Report,
    /// Each route's claims.
    claims: HashMap<ObjectKey, Vec<gatehouse_policies::Claim>>,
}

impl Admitter {
    /// An admitter translating with `options`.
    pub fn new(options: TranslateOptions) -> Self {
        Self {
            probe: Translator::new(options.clone()),
            publish: Translator::new(options),
            publish_synced: false,
            cache: DecisionCache::default(),
            judged: None,
            last: None,
            denied: BTreeSet::new(),
        }
    }

    /// Translates `config`, admitting it with `policies`.
    pub fn translate(&mut self, config: &Config, policies: &Policies) -> Admitted {
        self.translate_changes(config, &Changes::everything(), policies)
    }

    /// Translates `config`, of which only `changes` changed since the last call (see
    /// [`Translator::translate_changes`]), admitting it with `policies`. Only the routes whose
    /// claims may have changed are judged again, unless the policies or their data changed.
    pub fn translate_changes(
        &mut self,
        config: &Config,
        changes: &Changes,
        policies: &Policies,
    ) -> Admitted {
        let probe = self.probe.translate_changes(config, changes);
        let report = match policies {
            Policies::Off => {
                self.judged = None;
                Report::default()
            }
            Policies::Enforce(e) if e.is_empty() => {
                self.judged = None;
                Report::default()
            }
            Policies::Enforce(e) => self.evaluate(e, config, changes, &probe),
            Policies::RefuseAll(why) => {
                self.judged = None;
                refuse_all(config, &probe, why)
            }
        };
        self.admit(config, changes, probe, report)
    }

    /// The decisions on `probe`: the routes that changed are judged again, the others keep
    /// theirs while the policies and their data stay the same.
    fn evaluate(
        &mut self,
        engine: &Engine,
        config: &Config,
        changes: &Changes,
        probe: &Translation,
    ) -> Report {
        let data = admission_data(config);
        let key = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.fingerprint().hash(&mut h);
            data.hash(&mut h);
            h.finish()
        };
        if let Some(j) = &mut self.judged
            && j.key == key
            && !changes.everything
        {
            let mut routes: BTreeSet<ObjectKey> = j
                .security
                .changed_since(&probe.security)
                .into_iter()
                .collect();
            routes.extend(changes.route_keys());
            for r in &routes {
                j.report.objects.remove(r);
                for c in j.claims.remove(r).unwrap_or_default() {
                    self.cache.decisions.remove(&c);
                }
            }
            let claims =
                claims::claims_of(config, routes.iter().flat_map(|r| probe.security.of(r)));
            let decisions = decide(engine, &data, &claims, &mut self.cache, false);
            for (c, d) in claims.iter().zip(&decisions) {
                fold(&mut j.report, config, c, d);
                j.claims
                    .entry(c.object.clone())
                    .or_default()
                    .push(c.claim.clone());
            }
            j.security = probe.security.clone();
            return j.report.clone();
        }
        let ev = evaluate_cached(engine, config, probe, &mut self.cache);
        let mut by_route: HashMap<ObjectKey, Vec<gatehouse_policies::Claim>> = HashMap::new();
        for (c, _) in &ev.claims {
            by_route
                .entry(c.object.clone())
                .or_default()
                .push(c.claim.clone());
        }
        self.judged = Some(Judged {
            key,
            security: probe.security.clone(),
            report: ev.report.clone(),
            claims: by_route,
        });
        ev.report
    }

    /// Applies `report` to the probe translation: denied routes are translated as absent
    /// and get their conditions; warned routes get a warning condition. Only the statuses of
    /// objects whose translation or decision changed are worked out again.
    fn admit(
        &mut self,
        config: &Config,
        changes: &Changes,
        probe: Translation,
        report: Report,
    ) -> Admitted {
        // Which routes are denied: what changed since the last admission.
        let mut flips: Vec<ObjectKey> = Vec::new();
        match &self.last {
            Some(last) => {
                for k in report_changes(&last.report, &report) {
                    let denied = report.decision(&k) == Decision::Deny;
                    let flipped = if denied {
                        self.denied.insert(k.clone())
                    } else {
                        self.denied.remove(&k)
                    };
                    if flipped {
                        flips.push(k);
                    }
                }
            }
            None => {
                self.denied = report.denied().map(|d| d.object.clone()).collect();
                self.publish_synced = false;
            }
        }
        let use_publish = !self.denied.is_empty();
        let mut translation = if use_publish {
            let changes = if self.publish_synced {
                let mut changes = changes.clone();
                for k in &flips {
                    self.publish.exclude(k, self.denied.contains(k));
                    changes.add_route(k);
                }
                changes
            } else {
                self.publish.set_excluded(self.denied.clone());
                Changes::everything()
            };
            self.publish_synced = true;
            self.publish.translate_changes(config, &changes)
        } else {
            self.publish_synced = false;
            probe.clone()
        };
        let base = translation.status.clone();
        let status = match self.last.take() {
            Some(last) if last.used_publish == use_publish => {
                let mut out = last.out;
                let mut keys: BTreeSet<ObjectKey> = last
                    .probe
                    .changed_since(&probe.status)
                    .into_iter()
                    .collect();
                keys.extend(last.base.changed_since(&base));
                keys.extend(report_changes(&last.report, &report));
                for k in &keys {
                    match admitted_status(k, &probe.status, &base, &report) {
                        Some(s) => out.push(s),
                        None => {
                            out.remove(k);
                        }
                    }
                }
                out
            }
            _ => {
                let mut out = base.clone();
                for o in report.objects.values() {
                    if o.decision != Decision::Allow
                        && let Some(s) = admitted_status(&o.object, &probe.status, &base, &report)
                    {
                        out.push(s);
                    }
                }
                out
            }
        };
        self.last = Some(LastAdmission {
            used_publish: use_publish,
            probe: probe.status.clone(),
            base,
            report: report.clone(),
            out: status.clone(),
        });
        translation.status = status;
        Admitted {
            translation,
            report,
        }
    }
}

/// The objects whose decision differs between two reports (shared parts are skipped).
fn report_changes(old: &Report, new: &Report) -> Vec<ObjectKey> {
    crate::translate::changed_keys(&old.objects, &new.objects)
}

/// What the last admission started from and gave, to redo only what changes.
#[derive(Debug)]
struct LastAdmission {
    /// Whether denied routes were translated away (`publish`) or nothing was denied.
    used_publish: bool,
    /// The probe translation's statuses.
    probe: crate::translate::Statuses,
    /// The programmed translation's statuses.
    base: crate::translate::Statuses,
    report: Report,
    /// The statuses after admission.
    out: crate::translate::Statuses,
}

/// The status of `k` after admission: a denied route's says which policy denied it (on every
/// parent), a warned route's carries a warning condition.
fn admitted_status(
    k: &ObjectKey,
    probe: &crate::translate::Statuses,
    base: &crate::translate::Statuses,
    report: &Report,
) -> Option<ObjectStatus> {
    match report.objects.get(k) {
        Some(d) if d.decision == Decision::Deny => {
            let cond = Condition::fail("Accepted", NOT_ALLOWED, d.summary());
            let parts = probe
                .get(k)
                .map(|s| {
                    s.parts
                        .iter()
                        .map(|(label, conds)| {
                            let conds = conds
                                .iter()
                                .map(|c| {
                                    if c.condition_type == "Accepted" {
                                        cond.clone()
                                    } else {
                                        c.clone()
                                    }
                                })
                                .collect();
                            (label.clone(), conds)
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(ObjectStatus {
                object: k.clone(),
                origin: d.origin.clone(),
                conditions: vec![cond],
                parts,
            })
        }
        Some(o) if o.decision == Decision::Warn => base.get(k).cloned().map(|mut s| {
            s.conditions
                .push(Condition::ok(POLICY_WARNING, "WarnedByPolicy", o.summary()));
            s
        }),
        _ => base.get(k).cloned(),
    }
}

/// What reloading the policies found.
#[derive(Clone, Debug, Default)]
pub struct PolicyUpdate {
    /// A new policy set is in force.
    pub changed: bool,
    /// The sources do not make a valid set: it was refused, and the last valid set stays.
    pub refused: bool,
    /// Problems (errors when refused; warnings otherwise).
    pub diagnostics: Vec<PolicyDiagnostic>,
}

/// The policies of the file control plane: `*.cedar` files of the configuration directory and
/// GatewayPolicy objects, compiled when they change. An invalid set is refused as a whole and
/// the last valid one stays in force.
#[derive(Default)]
pub struct PolicyLoader {
    in_force: Option<Arc<Engine>>,
    sources: Option<u64>,
    last: PolicyUpdate,
    verifier: Option<PolicyVerifier>,
}

/// Checks the signature of the policy files of a configuration directory before they are
/// loaded (`Err` says why they may not be). The controller crate does not sign or verify itself:
/// the binary supplies this.
#[derive(Clone)]
pub struct PolicyVerifier(pub Arc<VerifyFn>);

/// `(configuration directory, policy files) -> Ok, or why not`.
pub type VerifyFn = dyn Fn(&Path, &[std::path::PathBuf]) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for PolicyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyVerifier")
    }
}

impl std::fmt::Debug for PolicyLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyLoader")
            .field(
                "in_force",
                &self.in_force.as_ref().map(|e| e.policies().len()),
            )
            .field("refused", &self.last.refused)
            .field("verified", &self.verifier.is_some())
            .finish()
    }
}

impl PolicyLoader {
    /// A loader that loads only policy sets `verifier` accepts; `GatewayPolicy` objects, which
    /// cannot carry a signature in file mode, are then refused.
    pub fn with_verifier(verifier: PolicyVerifier) -> Self {
        Self {
            verifier: Some(verifier),
            ..Self::default()
        }
    }

    /// Reads the policies of `dir` and `config` again.
    pub fn reload(&mut self, dir: &Path, config: &Config) -> PolicyUpdate {
        self.reload_from(Some(dir), config)
    }

    /// Reads the policies of `config` (GatewayPolicy objects) and, when given, the `*.cedar`
    /// files of `dir` again. Kubernetes mode has no directory.
    pub fn reload_from(&mut self, dir: Option<&Path>, config: &Config) -> PolicyUpdate {
        let where_ = dir.map_or_else(|| "kubernetes".to_owned(), |d| d.display().to_string());
        let (mut sources, mut diags) = match dir.map(cedar_files).transpose() {
            Ok(files) => file_sources(&files.unwrap_or_default()),
            Err(e) => (
                Vec::new(),
                vec![PolicyDiagnostic {
                    severity: Severity::Error,
                    file: where_.clone(),
                    line: 0,
                    column: 0,
                    policy: None,
                    message: format!("cannot list policy files: {e}"),
                    help: None,
                }],
            ),
        };
        let (objects, object_diags) = object_sources(config);
        if let Some(verify) = &self.verifier {
            let files = dir.map(cedar_files).transpose().unwrap_or_default();
            let verdict = match dir {
                Some(dir) => (verify.0)(dir, &files.unwrap_or_default()),
                None => Err("policies from the Kubernetes API carry no signature".to_owned()),
            };
            if let Err(why) = verdict {
                diags.push(PolicyDiagnostic {
                    severity: Severity::Error,
                    file: where_.clone(),
                    line: 0,
                    column: 0,
                    policy: None,
                    message: format!("the policy set is not signed by the trusted key: {why}"),
                    help: Some(
                        "sign the policy directory with `gatehouse sign --key KEY --manifest DIR`"
                            .into(),
                    ),
                });
            }
            if !objects.is_empty() {
                diags.push(PolicyDiagnostic {
                    severity: Severity::Error,
                    file: where_.clone(),
                    line: 0,
                    column: 0,
                    policy: None,
                    message:
                        "GatewayPolicy objects cannot be verified against the policy signing key"
                            .into(),
                    help: Some("ship the policies as signed `*.cedar` files instead".into()),
                });
            }
        }
        sources.extend(objects);
        diags.extend(object_diags);
        let fingerprint = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            sources.hash(&mut h);
            diags.hash(&mut h);
            admission_data(config).hash(&mut h);
            h.finish()
        };
        if self.sources == Some(fingerprint) {
            let mut same = self.last.clone();
            same.changed = false;
            return same;
        }
        self.sources = Some(fingerprint);
        let update = match compile(&sources, diags) {
            Ok((engine, mut warnings)) => {
                warnings.extend(data_warnings(config, engine.policies()));
                self.in_force = Some(Arc::new(engine));
                PolicyUpdate {
                    changed: true,
                    refused: false,
                    diagnostics: warnings,
                }
            }
            Err(invalid) => PolicyUpdate {
                changed: false,
                refused: true,
                diagnostics: invalid.diagnostics,
            },
        };
        self.last = update.clone();
        update
    }

    /// The policies in force.
    pub fn policies(&self) -> Policies {
        match (&self.in_force, self.last.refused) {
            (Some(e), _) if e.policies().is_empty() => Policies::Off,
            (Some(e), _) => Policies::Enforce(e.clone()),
            (None, true) => Policies::RefuseAll(
                "the policy set is invalid and no valid set was loaded before: nothing is programmed until the policies are fixed".into(),
            ),
            (None, false) => Policies::Off,
        }
    }
}

/// Compiles sources, refusing the set if gathering them already found errors.
pub fn compile(
    sources: &[PolicySource],
    mut diags: Vec<PolicyDiagnostic>,
) -> Result<(Engine, Vec<PolicyDiagnostic>), InvalidPolicySet> {
    match Engine::compile(sources) {
        Ok(c) => {
            if diags.iter().any(|d| d.severity == Severity::Error) {
                diags.extend(c.warnings);
                return Err(InvalidPolicySet { diagnostics: diags });
            }
            diags.extend(c.warnings);
            Ok((c.engine, diags))
        }
        Err(mut e) => {
            diags.append(&mut e.diagnostics);
            Err(InvalidPolicySet { diagnostics: diags })
        }
    }
}

/// The policies of `dirs` (their `*.cedar` files) and of the GatewayPolicy objects of
/// `config`, compiled, with the warnings; or every problem.
pub fn load_policies(
    dirs: &[&Path],
    config: &Config,
) -> Result<(Engine, Vec<PolicyDiagnostic>), InvalidPolicySet> {
    let mut sources = Vec::new();
    let mut diags = Vec::new();
    let mut seen = BTreeSet::new();
    for dir in dirs {
        match cedar_files(dir) {
            Ok(files) => {
                let files: Vec<_> = files
                    .into_iter()
                    .filter(|f| seen.insert(f.clone()))
                    .collect();
                let (s, d) = file_sources(&files);
                sources.extend(s);
                diags.extend(d);
            }
            Err(e) => diags.push(PolicyDiagnostic {
                severity: Severity::Error,
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                policy: None,
                message: format!("cannot list policy files: {e}"),
                help: None,
            }),
        }
    }
    let (objects, object_diags) = object_sources(config);
    sources.extend(objects);
    diags.extend(object_diags);
    let (engine, mut warnings) = compile(&sources, diags)?;
    warnings.extend(data_warnings(config, engine.policies()));
    Ok((engine, warnings))
}

/// The GatewayPolicy documents of the YAML files of `dir` (other documents are ignored; test
/// files, `*.test.yaml`, are skipped).
pub fn policy_objects(dir: &Path) -> crate::model::Objects<crate::model::GatewayPolicy> {
    let mut config = Config::default();
    for f in crate::model::config_files(dir).unwrap_or_default() {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.contains(".test.") {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&f)
            && text.contains("GatewayPolicy")
        {
            let mut diags = Vec::new();
            crate::model::load_text(&mut config, &mut diags, &f, &text);
        }
    }
    config.gateway_policies
}
