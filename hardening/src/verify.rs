//! `gatehouse verify`: audits what we generate, and what others generate too.
//!
//! Inputs ([`Inputs`]): Kubernetes manifests (multi-document YAML, files, directories or
//! stdin, including other projects' charts), live objects of a cluster ([`cluster`]), Envoy
//! bootstraps, a `gatehouse certs` store, systemd units, running processes, and a signed
//! directory. Every check has a stable id ([`catalog`]), a severity, and produces
//! [`Finding`]s that name the object, its file and line, why it matters and how to fix it. [`run`] evaluates everything and returns a
//! [`Report`]; [`output`] renders it as a table (like `linkerd check`), JSON (versioned
//! schema), SARIF 2.1.0 or JUnit XML.
//!
//! One check family per file: [`rbac`](self) (`RBAC-0xx`), pods (`POD-0xx`), Envoy
//! (`ENVOY-0xx`), certificates (`CERT-0xx`), systemd units (`UNIT-0xx`), signatures
//! (`SIG-00x`, from [`crate::signing::manifest::verify_dir`]) and processes (`PROC-0xx`, from
//! [`crate::sandbox::inspect_process`]).
//!
//! Exit codes (the same for every output format): 0 clean, 1 findings at or above the
//! `--fail-on` threshold, 2 usage error, 3 unparsable input ([`VerifyError::Unparsable`]),
//! 4 could not evaluate ([`VerifyError::CouldNotEvaluate`]).

pub mod catalog;
mod certs;
pub mod cluster;
mod envoy;
mod input;
mod k8s;
pub mod output;
mod pod;
mod process;
mod rbac;
mod signature;
pub mod suppress;
mod unit;
pub mod yaml;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use catalog::Check;
pub use suppress::Suppression;

/// The version of the JSON report's schema (`"schemaVersion"`). Bumped only when a field
/// changes meaning or disappears; new fields may be added within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a run.
    Info,
    /// A weakness; fails the run with `--fail-on warning`.
    Warning,
    /// A hardening requirement is not met; fails the run by default.
    Error,
}

impl Severity {
    /// `error`, `warning` or `info`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The check families, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Roles, bindings, service accounts and tokens (`RBAC-0xx`).
    Rbac,
    /// Pod security (`POD-0xx`).
    Pod,
    /// Envoy bootstraps and arguments (`ENVOY-0xx`).
    Envoy,
    /// A `gatehouse certs` store (`CERT-0xx`).
    Certificate,
    /// systemd units (`UNIT-0xx`).
    Unit,
    /// A signed directory (`SIG-00x`).
    Signature,
    /// A running process (`PROC-0xx`).
    Process,
}

impl Category {
    /// Every family, in report order.
    pub const ALL: [Category; 7] = [
        Self::Rbac,
        Self::Pod,
        Self::Envoy,
        Self::Certificate,
        Self::Unit,
        Self::Signature,
        Self::Process,
    ];

    /// The heading of the family in the table (`rbac`, `pod-security` …).
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Rbac => "rbac",
            Self::Pod => "pod-security",
            Self::Envoy => "envoy",
            Self::Certificate => "certificates",
            Self::Unit => "systemd-units",
            Self::Signature => "signatures",
            Self::Process => "processes",
        }
    }

    /// The id prefix of its checks (`RBAC`, `POD` …).
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Rbac => "RBAC",
            Self::Pod => "POD",
            Self::Envoy => "ENVOY",
            Self::Certificate => "CERT",
            Self::Unit => "UNIT",
            Self::Signature => "SIG",
            Self::Process => "PROC",
        }
    }
}

/// What a finding is about: a Kubernetes object (`Kind/namespace/name`), a unit, a
/// certificate, a process, a file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ObjectRef {
    /// `ClusterRole`, `Deployment`, `Unit`, `Certificate`, `Process`, `EnvoyBootstrap`, `File`.
    pub kind: String,
    /// The namespace of a namespaced Kubernetes object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// An object without namespace.
    #[must_use]
    pub fn new(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: None,
            name: name.to_owned(),
        }
    }

    /// What suppressions match: `Kind/namespace/name`, or `Kind/name` without namespace.
    #[must_use]
    pub fn target(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target())
    }
}

/// Where a finding is: a file as it was given (or found in a directory), and a line when
/// the finding is about one (1-based).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Location {
    /// The file, as given on the command line or found under a given directory; `<stdin>`
    /// for `-f -`.
    pub file: String,
    /// The line (1-based), when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Location {
    /// `file` at `line` (a line of 0 means unknown).
    #[must_use]
    pub fn at(file: &str, line: usize) -> Self {
        Self {
            file: file.to_owned(),
            line: (line > 0).then_some(line),
        }
    }

    /// The whole file.
    #[must_use]
    pub fn file(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// One problem found by one check.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The check.
    pub check: &'static Check,
    /// The object it is about.
    pub object: ObjectRef,
    /// Where, when it is in a file.
    pub location: Option<Location>,
    /// What is wrong with this object, in one sentence.
    pub message: String,
    /// Other objects involved: the bindings that give a role to subjects, the control-plane
    /// workload next to a gateway …
    pub related: Vec<ObjectRef>,
    /// The suppression that matched, if one did (expired or not).
    pub suppression: Option<suppress::Applied>,
}

impl Finding {
    /// The finding's severity (its check's).
    #[must_use]
    pub fn severity(&self) -> Severity {
        self.check.severity
    }

    /// Whether a current (unexpired) suppression hides it.
    #[must_use]
    pub fn is_suppressed(&self) -> bool {
        self.suppression.as_ref().is_some_and(|s| !s.expired)
    }
}

/// Which severities make the run fail (exit 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Errors only (the default).
    #[default]
    Error,
    /// Warnings and errors.
    Warning,
    /// Nothing: always exit 0 when the inputs could be evaluated.
    Never,
}

impl FailOn {
    /// Whether a finding of `severity` fails the run.
    #[must_use]
    pub fn fails(self, severity: Severity) -> bool {
        match self {
            Self::Error => severity >= Severity::Error,
            Self::Warning => severity >= Severity::Warning,
            Self::Never => false,
        }
    }

    /// `error`, `warning` or `never`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Never => "never",
        }
    }
}

/// The signed directory to check, and the key its manifest must be signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureInput {
    /// The public key (`cosign.pub`).
    pub key: PathBuf,
    /// The directory holding `SHA256SUMS` and `SHA256SUMS.sig`.
    pub manifest: PathBuf,
}

/// What to verify.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Manifests: files or directories (every `*.yaml`, `*.yml` and `*.json` below it, and
    /// `*.service` units); `-` for [`Inputs::stdin`].
    pub manifests: Vec<PathBuf>,
    /// The text read from stdin for `-f -`.
    pub stdin: Option<String>,
    /// Running processes to inspect.
    pub processes: Vec<u32>,
    /// Envoy bootstrap files.
    pub bootstraps: Vec<PathBuf>,
    /// `gatehouse certs` store directories.
    pub certs: Vec<PathBuf>,
    /// systemd unit files.
    pub units: Vec<PathBuf>,
    /// A signed directory.
    pub signature: Option<SignatureInput>,
    /// Live objects read from a cluster ([`cluster::read`]), evaluated like manifests.
    pub cluster: Option<cluster::Snapshot>,
}

impl Inputs {
    /// Whether nothing was asked for.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty()
            && self.processes.is_empty()
            && self.bootstraps.is_empty()
            && self.certs.is_empty()
            && self.units.is_empty()
            && self.signature.is_none()
            && self.cluster.is_none()
    }
}

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct Options {
    /// The time certificates and suppression expiry dates are judged at.
    pub now: SystemTime,
    /// A certificate expiring within this is a warning (`CERT-002`).
    pub cert_warn: Duration,
    /// The longest leaf lifetime allowed (`CERT-003`); by default the store's own maximum
    /// (`ca/ca.json`).
    pub cert_max_lifetime: Option<Duration>,
    /// Accepted findings.
    pub suppressions: Vec<Suppression>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            now: SystemTime::now(),
            cert_warn: Duration::from_secs(7 * 24 * 3600),
            cert_max_lifetime: None,
            suppressions: Vec::new(),
        }
    }
}

/// Inputs that stop the run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An input does not parse: exit code 3.
    #[error("{}: {reason}", Location::at(file, *line))]
    Unparsable {
        /// The file.
        file: String,
        /// The line (0 when unknown).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An input cannot be read or inspected: exit code 4.
    #[error("could not evaluate {what}: {reason}")]
    CouldNotEvaluate {
        /// What could not be evaluated (a file, a process, a store).
        what: String,
        /// Why.
        reason: String,
    },
}

impl VerifyError {
    /// The exit code: 3 unparsable input, 4 could not evaluate.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unparsable { .. } => 3,
            Self::CouldNotEvaluate { .. } => 4,
        }
    }

    pub(crate) fn unparsable(file: &str, line: usize, reason: impl Into<String>) -> Self {
        Self::Unparsable {
            file: file.to_owned(),
            line,
            reason: reason.into(),
        }
    }

    pub(crate) fn could_not(what: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::CouldNotEvaluate {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// The result of a run: every finding and every check that was evaluated.
#[derive(Clone, Debug)]
pub struct Report {
    /// The findings, in input order within each family.
    pub findings: Vec<Finding>,
    /// The checks that ran (their inputs were given), in catalog order.
    pub evaluated: Vec<&'static Check>,
    /// What was read: one line per input (`deploy/profiles/kubernetes-hardened: 23 objects`).
    pub inputs: Vec<String>,
    /// Suppressions that matched no finding.
    pub unused_suppressions: Vec<Suppression>,
}

/// The outcome of one check over all inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// No finding, or only suppressed ones.
    Passed,
    /// Unsuppressed findings of severity info.
    Info,
    /// Unsuppressed findings of severity warning.
    Warning,
    /// Unsuppressed findings of severity error.
    Failed,
}

/// The counts of the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Checks evaluated.
    pub checks: usize,
    /// Checks with no unsuppressed finding.
    pub passed: usize,
    /// Checks with error findings.
    pub failed: usize,
    /// Checks with warning findings.
    pub warnings: usize,
    /// Checks with info findings.
    pub info: usize,
    /// Findings (unsuppressed, any severity).
    pub findings: usize,
    /// Findings hidden by a current suppression.
    pub suppressed: usize,
}

impl Report {
    /// The unsuppressed findings of `check`.
    pub fn findings_of<'a>(&'a self, check: &'a Check) -> impl Iterator<Item = &'a Finding> {
        self.findings
            .iter()
            .filter(move |f| f.check.id == check.id && !f.is_suppressed())
    }

    /// The outcome of `check`.
    #[must_use]
    pub fn outcome(&self, check: &Check) -> CheckOutcome {
        if self.findings_of(check).next().is_none() {
            return CheckOutcome::Passed;
        }
        match check.severity {
            Severity::Error => CheckOutcome::Failed,
            Severity::Warning => CheckOutcome::Warning,
            Severity::Info => CheckOutcome::Info,
        }
    }

    /// The counts for the summary line.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            checks: self.evaluated.len(),
            ..Summary::default()
        };
        for check in &self.evaluated {
            match self.outcome(check) {
                CheckOutcome::Passed => s.passed += 1,
                CheckOutcome::Info => s.info += 1,
                CheckOutcome::Warning => s.warnings += 1,
                CheckOutcome::Failed => s.failed += 1,
            }
        }
        s.findings = self.findings.iter().filter(|f| !f.is_suppressed()).count();
        s.suppressed = self.findings.iter().filter(|f| f.is_suppressed()).count();
        s
    }

    /// Whether the run fails at `fail_on` (exit code 1).
    #[must_use]
    pub fn fails(&self, fail_on: FailOn) -> bool {
        self.findings
            .iter()
            .any(|f| !f.is_suppressed() && fail_on.fails(f.severity()))
    }

    /// The exit code for `fail_on`: 1 when the run fails, else 0.
    #[must_use]
    pub fn exit_code(&self, fail_on: FailOn) -> u8 {
        u8::from(self.fails(fail_on))
    }
}

/// Collects findings while the families run.
#[derive(Default)]
pub(crate) struct Ctx {
    findings: Vec<Finding>,
    evaluated: BTreeSet<&'static str>,
}

impl Ctx {
    /// Records a finding; returns it so that related objects can be added.
    pub(crate) fn report(
        &mut self,
        check: &'static Check,
        object: ObjectRef,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> &mut Finding {
        self.findings.push(Finding {
            check,
            object,
            location,
            message: message.into(),
            related: Vec::new(),
            suppression: None,
        });
        let last = self.findings.len() - 1;
        // `last` is in bounds: we just pushed.
        #[allow(clippy::indexing_slicing)]
        &mut self.findings[last]
    }

    /// Marks checks as evaluated.
    pub(crate) fn evaluated(&mut self, checks: &[&'static Check]) {
        self.evaluated.extend(checks.iter().map(|c| c.id));
    }

    /// Marks every check of a family as evaluated.
    pub(crate) fn evaluated_family(&mut self, category: Category) {
        self.evaluated.extend(
            catalog::checks()
                .iter()
                .filter(|c| c.category == category)
                .map(|c| c.id),
        );
    }
}

/// Evaluates every input and returns the report. Suppressions of `options` are applied.
///
/// # Errors
///
/// [`VerifyError::Unparsable`] for an input that does not parse (with file and line),
/// [`VerifyError::CouldNotEvaluate`] for one that cannot be read or inspected.
pub fn run(inputs: &Inputs, options: &Options) -> Result<Report, VerifyError> {
    let mut ctx = Ctx::default();
    let mut described = Vec::new();

    let loaded = input::load(inputs)?;
    described.extend(loaded.descriptions.iter().cloned());

    if !loaded.objects.is_empty() || !inputs.manifests.is_empty() || inputs.cluster.is_some() {
        let cluster = k8s::Cluster::new(&loaded.objects);
        ctx.evaluated_family(Category::Rbac);
        rbac::check(&mut ctx, &cluster);
        ctx.evaluated_family(Category::Pod);
        pod::check(&mut ctx, &cluster);
        ctx.evaluated(&[catalog::ENVOY_008]);
        envoy::check_workloads(&mut ctx, &cluster);
        for (object, key, bootstrap) in cluster.embedded_bootstraps() {
            envoy::check_bootstrap(&mut ctx, &bootstrap, object.object_ref(), &object.src.path);
            described.push(format!(
                "{}: Envoy bootstrap `{key}` of {}",
                object.src.path,
                object.object_ref()
            ));
        }
    }
    for bootstrap in &loaded.bootstraps {
        envoy::check_bootstrap(
            &mut ctx,
            &bootstrap.node,
            ObjectRef::new("EnvoyBootstrap", &bootstrap.src.path),
            &bootstrap.src.path,
        );
    }
    for unit in &loaded.units {
        unit::check(&mut ctx, unit);
    }
    for dir in &inputs.certs {
        certs::check(&mut ctx, dir, options)?;
        described.push(format!("{}: certificate store", dir.display()));
    }
    if let Some(sig) = &inputs.signature {
        signature::check(&mut ctx, sig)?;
        described.push(format!(
            "{}: signed with {}",
            sig.manifest.display(),
            sig.key.display()
        ));
    }
    for pid in &inputs.processes {
        let name = process::check(&mut ctx, *pid)?;
        described.push(format!("process {pid} ({name})"));
    }

    let Ctx {
        mut findings,
        evaluated,
    } = ctx;
    let unused_suppressions = suppress::apply(&options.suppressions, &mut findings, options.now);
    let evaluated = catalog::checks()
        .iter()
        .copied()
        .filter(|c| evaluated.contains(c.id))
        .collect();
    Ok(Report {
        findings,
        evaluated,
        inputs: described,
        unused_suppressions,
    })
}
