//! Compiling policy sources into an [`Engine`] (parse, check annotations, re-id by `@id`,
//! strict schema validation: an invalid set is refused as a whole), and judging claims with it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::str::FromStr as _;
use std::sync::OnceLock;

use cedar_policy::{
    Authorizer, Decision as CedarDecision, Effect, Entities, Policy, PolicyId, PolicySet, Schema,
    ValidationMode, Validator,
};
use miette::Diagnostic as _;
use serde::{Deserialize, Serialize};

use crate::claims::{AdmissionData, Claim};
use crate::diagnostic::{InvalidPolicySet, PolicyDiagnostic, Severity, line_col};
use crate::entities::{Types, build_entities, request};

/// The schema policies are validated against, as Cedar schema text.
pub const SCHEMA: &str = include_str!("gatehouse.cedarschema");

/// The id of the permit every claim starts from; guardrails are `forbid` policies over it.
pub const BASELINE_ID: &str = "gatehouse-baseline";

const BASELINE: &str = r#"@id("gatehouse-baseline")
permit (principal, action in Gatehouse::Action::"admission", resource);"#;

/// The parsed schema.
pub fn schema() -> &'static Schema {
    static SCHEMA_CELL: OnceLock<Schema> = OnceLock::new();
    SCHEMA_CELL.get_or_init(|| {
        #[allow(clippy::expect_used, reason = "the built-in schema is tested to parse")]
        Schema::from_cedarschema_str(SCHEMA)
            .expect("the built-in schema parses")
            .0
    })
}

/// What a violated policy does.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// The object is not programmed.
    #[default]
    Deny,
    /// The object is programmed, with a warning.
    Warn,
    /// Only reported.
    Dryrun,
}

impl Enforcement {
    /// `deny`, `warn` or `dryrun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Warn => "warn",
            Self::Dryrun => "dryrun",
        }
    }

    /// Parses `deny`, `warn` or `dryrun`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deny" => Some(Self::Deny),
            "warn" => Some(Self::Warn),
            "dryrun" => Some(Self::Dryrun),
            _ => None,
        }
    }
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cedar text and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicySource {
    /// A file path, or an object (`GatewayPolicy/NAME`).
    pub name: String,
    /// The line of `name` where `text` starts (1 for a file).
    pub first_line: usize,
    /// Cedar policies.
    pub text: String,
    /// The enforcement of policies without `@enforcement` (default: deny).
    pub default_enforcement: Option<Enforcement>,
}

impl PolicySource {
    /// A whole file.
    pub fn file(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            first_line: 1,
            text: text.into(),
            default_enforcement: None,
        }
    }
}

/// What is known of one policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    /// Its `@id`.
    pub id: String,
    /// Its `@message` (or a default naming the id).
    pub message: String,
    /// Its `@enforcement` (or the source's default).
    pub enforcement: Enforcement,
    /// `permit` or `forbid`.
    pub forbid: bool,
    /// Where it is.
    pub file: String,
    /// The line where it starts.
    pub line: usize,
}

/// A validated policy set, ready to judge claims.
#[derive(Debug)]
pub struct Engine {
    policies: PolicySet,
    info: BTreeMap<String, PolicyInfo>,
    zones: BTreeSet<String>,
    fingerprint: u64,
    authorizer: Authorizer,
    types: Types,
}

/// An engine and the warnings found while compiling it.
#[derive(Debug)]
pub struct Compiled {
    /// The engine.
    pub engine: Engine,
    /// Problems that do not make the set invalid.
    pub warnings: Vec<PolicyDiagnostic>,
}

/// The decision on a claim (or an object), after enforcement modes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Programmed.
    #[default]
    Allow,
    /// Programmed, with a warning.
    Warn,
    /// Not programmed.
    Deny,
}

impl Decision {
    /// `allow`, `warn` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Warn => "warn",
            Self::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a claim is not simply allowed: a policy it violates, or an evaluation error.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Finding {
    /// The policy id (`gatehouse-admission` when the claim itself could not be evaluated).
    pub policy: String,
    /// What the finding does. An evaluation error always denies.
    pub enforcement: Enforcement,
    /// The policy's `@message`, or what went wrong.
    pub message: String,
    /// The policy errored (or the claim could not be evaluated): counted as a deny.
    pub error: bool,
}

/// The outcome of one claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClaimDecision {
    /// Allow, warn or deny.
    pub decision: Decision,
    /// The determining forbid policies and the errors.
    pub findings: Vec<Finding>,
}

impl ClaimDecision {
    fn from_findings(findings: Vec<Finding>) -> Self {
        let decision = findings
            .iter()
            .map(|f| match f.enforcement {
                Enforcement::Deny => Decision::Deny,
                Enforcement::Warn => Decision::Warn,
                Enforcement::Dryrun => Decision::Allow,
            })
            .max()
            .unwrap_or(Decision::Allow);
        Self { decision, findings }
    }

    /// The ids of the determining policies (violated or erroring), sorted.
    pub fn policies(&self) -> BTreeSet<&str> {
        self.findings.iter().map(|f| f.policy.as_str()).collect()
    }
}

/// Below twice this many claims, evaluation stays on the calling thread.
const PARALLEL_CHUNK: usize = 512;

/// The pseudo-policy of findings about a claim that could not be evaluated at all.
pub const ADMISSION_ID: &str = "gatehouse-admission";

fn id_ok(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && id.len() <= 128
}

impl Engine {
    /// Compiles `sources`: every policy must parse, carry a unique `@id`, a valid
    /// `@enforcement` if any, and pass strict validation against the schema. Any error refuses
    /// the whole set.
    pub fn compile(sources: &[PolicySource]) -> Result<Compiled, InvalidPolicySet> {
        let schema = schema();
        let mut diags = Vec::new();
        let mut set = PolicySet::new();
        let mut info: BTreeMap<String, PolicyInfo> = BTreeMap::new();
        // Policy id → (source index).
        let mut origin: HashMap<String, usize> = HashMap::new();
        for (si, src) in sources.iter().enumerate() {
            let at = |offset: usize| {
                let (l, c) = line_col(&src.text, offset);
                (l + src.first_line - 1, c)
            };
            let diag = |severity,
                        offset: Option<usize>,
                        policy: Option<&str>,
                        message: String,
                        help: Option<String>| {
                let (line, column) = offset.map_or((src.first_line.max(1), 0), at);
                PolicyDiagnostic {
                    severity,
                    file: src.name.clone(),
                    line,
                    column,
                    policy: policy.map(str::to_owned),
                    message,
                    help,
                }
            };
            let parsed = match PolicySet::from_str(&src.text) {
                Ok(p) => p,
                Err(errs) => {
                    for e in errs.iter() {
                        let offset = e.labels().and_then(|mut l| l.next()).map(|l| l.offset());
                        diags.push(diag(
                            Severity::Error,
                            offset,
                            None,
                            e.to_string(),
                            e.help().map(|h| h.to_string()),
                        ));
                    }
                    continue;
                }
            };
            for t in parsed.templates() {
                let offset = src.text.find(&t.to_string());
                diags.push(diag(
                    Severity::Error,
                    offset,
                    t.annotation("id"),
                    "policy templates are not supported".into(),
                    Some("write a static policy; exempt namespaces with data (GatewayPolicy spec.exemptions), not links".into()),
                ));
            }
            // In the order they appear (the parser names them policy0, policy1, ...).
            let mut policies: Vec<&Policy> = parsed.policies().collect();
            policies.sort_by_key(|p| {
                p.id()
                    .to_string()
                    .trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            });
            let mut search_from = 0;
            for p in policies {
                let text = p.to_string();
                let offset = src
                    .text
                    .get(search_from..)
                    .and_then(|rest| rest.find(&text))
                    .map(|o| o + search_from);
                if let Some(o) = offset {
                    search_from = o + text.len();
                }
                let line = offset.map_or(src.first_line, |o| at(o).0);
                let Some(id) = p.annotation("id") else {
                    diags.push(diag(
                        Severity::Error,
                        offset,
                        None,
                        "a policy without an `@id` annotation".into(),
                        Some("add `@id(\"my-guardrail\")` before it: decisions, statuses and exemptions name policies by their id".into()),
                    ));
                    continue;
                };
                if !id_ok(id) {
                    diags.push(diag(
                        Severity::Error,
                        offset,
                        Some(id),
                        format!("`{id}` is not a valid policy id"),
                        Some("use letters, digits, `-`, `_` and `.`, starting with a letter or digit".into()),
                    ));
                    continue;
                }
                if id == BASELINE_ID || id == ADMISSION_ID {
                    diags.push(diag(
                        Severity::Error,
                        offset,
                        Some(id),
                        format!("the id `{id}` is reserved"),
                        None,
                    ));
                    continue;
                }
                if let Some(prev) = info.get(id) {
                    diags.push(diag(
                        Severity::Error,
                        offset,
                        Some(id),
                        format!(
                            "policy id `{id}` is used twice (first at {}:{})",
                            prev.file, prev.line
                        ),
                        Some("every policy needs its own `@id`".into()),
                    ));
                    continue;
                }
                let enforcement = match p.annotation("enforcement") {
                    None => src.default_enforcement.unwrap_or_default(),
                    Some(e) => match Enforcement::parse(e) {
                        Some(e) => e,
                        None => {
                            diags.push(diag(
                                Severity::Error,
                                offset,
                                Some(id),
                                format!("`@enforcement(\"{e}\")` is not one of deny, warn, dryrun"),
                                Some("a policy without `@enforcement` denies".into()),
                            ));
                            continue;
                        }
                    },
                };
                for (key, _) in p.annotations() {
                    if !matches!(key, "id" | "message" | "enforcement") {
                        diags.push(diag(
                            Severity::Warning,
                            offset,
                            Some(id),
                            format!("annotation `@{key}` is not used by Gatehouse"),
                            Some("Gatehouse reads @id, @message and @enforcement".into()),
                        ));
                    }
                }
                let forbid = p.effect() == Effect::Forbid;
                if !forbid {
                    diags.push(diag(
                        Severity::Warning,
                        offset,
                        Some(id),
                        format!("`permit` policy `{id}` has no effect: admission allows every claim that no `forbid` policy denies"),
                        Some("write guardrails as `forbid` policies".into()),
                    ));
                }
                let message = match p.annotation("message") {
                    Some(m) => m.to_owned(),
                    None => {
                        if forbid {
                            diags.push(diag(
                                Severity::Warning,
                                offset,
                                Some(id),
                                format!("policy `{id}` has no `@message`"),
                                Some("say what is not allowed and how to fix it: it is shown to the route's author".into()),
                            ));
                        }
                        format!("forbidden by policy `{id}`")
                    }
                };
                if let Err(e) = set.add(p.new_id(PolicyId::new(id))) {
                    diags.push(diag(Severity::Error, offset, Some(id), e.to_string(), None));
                    continue;
                }
                origin.insert(id.to_owned(), si);
                info.insert(
                    id.to_owned(),
                    PolicyInfo {
                        id: id.to_owned(),
                        message,
                        enforcement,
                        forbid,
                        file: src.name.clone(),
                        line,
                    },
                );
            }
        }
        #[allow(clippy::expect_used, reason = "a constant, tested")]
        let baseline = Policy::parse(Some(PolicyId::new(BASELINE_ID)), BASELINE)
            .expect("the baseline policy parses");
        if let Err(e) = set.add(baseline) {
            diags.push(PolicyDiagnostic {
                severity: Severity::Error,
                file: "(built in)".into(),
                line: 0,
                column: 0,
                policy: Some(BASELINE_ID.into()),
                message: e.to_string(),
                help: None,
            });
        }
        // Strict validation against the schema, located in the policy's own source.
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        let locate = |policy: &str, offset: Option<usize>| -> (String, usize, usize) {
            match origin.get(policy).and_then(|i| sources.get(*i)) {
                Some(src) => {
                    let (l, c) = offset.map_or_else(
                        || (info.get(policy).map_or(src.first_line, |i| i.line), 0),
                        |o| {
                            let (l, c) = line_col(&src.text, o);
                            (l + src.first_line - 1, c)
                        },
                    );
                    (src.name.clone(), l, c)
                }
                None => ("(built in)".into(), 0, 0),
            }
        };
        for e in result.validation_errors() {
            let policy = e.policy_id().to_string();
            let offset = e.labels().and_then(|mut l| l.next()).map(|l| l.offset());
            let (file, line, column) = locate(&policy, offset);
            diags.push(PolicyDiagnostic {
                severity: Severity::Error,
                file,
                line,
                column,
                policy: Some(policy),
                message: e.to_string(),
                help: e.help().map(|h| h.to_string()),
            });
        }
        for w in result.validation_warnings() {
            let policy = w.policy_id().to_string();
            let offset = w.labels().and_then(|mut l| l.next()).map(|l| l.offset());
            let (file, line, column) = locate(&policy, offset);
            diags.push(PolicyDiagnostic {
                severity: Severity::Warning,
                file,
                line,
                column,
                policy: Some(policy),
                message: w.to_string(),
                help: w.help().map(|h| h.to_string()),
            });
        }
        diags.sort_by(|a, b| {
            (a.severity, &a.file, a.line, a.column).cmp(&(b.severity, &b.file, b.line, b.column))
        });
        diags.dedup();
        if diags.iter().any(|d| d.severity == Severity::Error) {
            return Err(InvalidPolicySet { diagnostics: diags });
        }
        let zones = set
            .policies()
            .flat_map(Policy::entity_literals)
            .filter(|e| e.type_name().to_string() == "Gatehouse::Zone")
            .map(|e| e.id().unescaped().to_owned())
            .collect();
        let mut h = DefaultHasher::new();
        sources.hash(&mut h);
        Ok(Compiled {
            engine: Engine {
                policies: set,
                info,
                zones,
                fingerprint: h.finish(),
                authorizer: Authorizer::new(),
                types: Types::new(),
            },
            warnings: diags,
        })
    }

    /// An engine with no policies: every claim is allowed.
    pub fn empty() -> Self {
        #[allow(clippy::expect_used, reason = "no sources cannot be invalid")]
        Self::compile(&[]).expect("an empty set is valid").engine
    }

    /// The policies (not the baseline), by id.
    pub fn policies(&self) -> &BTreeMap<String, PolicyInfo> {
        &self.info
    }

    /// Whether there is no guardrail at all.
    pub fn is_empty(&self) -> bool {
        self.info.values().all(|p| !p.forbid)
    }

    /// A hash of the sources the engine was compiled from.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Judges every claim. Each claim gets its own decision; the entities they refer to are
    /// built once for all of them.
    pub fn evaluate(&self, claims: &[Claim], data: &AdmissionData) -> Vec<ClaimDecision> {
        let entities = match build_entities(&self.types, claims, data, &self.zones) {
            Ok(e) => e,
            Err(e) => {
                let f = self.unevaluable(&format!("the configuration's entities are invalid: {e}"));
                return claims.iter().map(|_| f.clone()).collect();
            }
        };
        // Claims are independent: judge them on every core when there are many.
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        if threads < 2 || claims.len() < 2 * PARALLEL_CHUNK {
            return claims
                .iter()
                .map(|c| self.evaluate_one(c, &entities))
                .collect();
        }
        let chunk = claims.len().div_ceil(threads).max(PARALLEL_CHUNK);
        std::thread::scope(|scope| {
            let handles: Vec<_> = claims
                .chunks(chunk)
                .map(|part| {
                    let entities = &entities;
                    let handle = scope.spawn(move || {
                        part.iter()
                            .map(|c| self.evaluate_one(c, entities))
                            .collect::<Vec<_>>()
                    });
                    (part.len(), handle)
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|(len, h)| {
                    // One decision per claim, whatever happens: a panic denies its claims.
                    h.join().unwrap_or_else(|_| {
                        vec![self.unevaluable("the evaluation thread panicked"); len]
                    })
                })
                .collect()
        })
    }

    fn unevaluable(&self, why: &str) -> ClaimDecision {
        ClaimDecision::from_findings(vec![Finding {
            policy: ADMISSION_ID.into(),
            enforcement: Enforcement::Deny,
            message: format!("the claim could not be evaluated, which counts as a deny: {why}"),
            error: true,
        }])
    }

    fn evaluate_one(&self, claim: &Claim, entities: &Entities) -> ClaimDecision {
        let req = match request(&self.types, claim) {
            Ok(r) => r,
            Err(e) => return self.unevaluable(&e),
        };
        let resp = self
            .authorizer
            .is_authorized(&req, &self.policies, entities);
        let mut findings = Vec::new();
        for e in resp.diagnostics().errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
            let id = e.policy_id().to_string();
            findings.push(Finding {
                message: format!(
                    "policy `{id}` failed to evaluate, which counts as a deny: {}",
                    e.inner()
                ),
                policy: id,
                enforcement: Enforcement::Deny,
                error: true,
            });
        }
        if resp.decision() == CedarDecision::Deny {
            for id in resp.diagnostics().reason() {
                let id = id.to_string();
                match self.info.get(&id) {
                    Some(p) => findings.push(Finding {
                        policy: id,
                        enforcement: p.enforcement,
                        message: p.message.clone(),
                        error: false,
                    }),
                    None => findings.push(Finding {
                        message: format!("denied by `{id}`"),
                        policy: id,
                        enforcement: Enforcement::Deny,
                        error: false,
                    }),
                }
            }
            if findings.is_empty() {
                return self.unevaluable("no policy permitted it");
            }
        }
        findings.sort_by(|a, b| a.policy.cmp(&b.policy));
        ClaimDecision::from_findings(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_and_the_baseline_are_valid() {
        let _ = schema();
        let e = Engine::empty();
        assert!(e.is_empty());
        assert!(e.policies().is_empty());
    }

    #[test]
    fn ids_come_from_the_annotation_and_must_be_unique() {
        let src = PolicySource::file(
            "a.cedar",
            "@id(\"one\")\n@message(\"m\")\nforbid (principal, action, resource);\n\n@id(\"one\")\n@message(\"m\")\nforbid (principal, action, resource);\n",
        );
        let err = Engine::compile(&[src]).unwrap_err();
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        let d = &err.diagnostics[0];
        assert_eq!((d.file.as_str(), d.line), ("a.cedar", 5), "{d}");
        assert!(d.message.contains("used twice (first at a.cedar:1)"), "{d}");
    }
}
