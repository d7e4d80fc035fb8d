//! Declarative policy tests (`policy test`): YAML or JSON files (`*.test.yaml`,
//! `*.test.yml`, `*.test.json`) of cases, each a configuration snippet (or, for facts the
//! translator cannot produce, claims given directly), the expected decision and the ids of
//! the determining policies. Cases run through the same translation and engine as the control
//! plane.
//!
//! ```yaml
//! policies: [../public-requires-authn.cedar]   # default: every *.cedar of the tested directory
//! include: [fixtures/gateways.yaml]            # configuration every case starts from
//! cases:
//! - name: a public route without authentication is denied
//!   config: |
//!     apiVersion: gateway.networking.k8s.io/v1
//!     kind: HTTPRoute
//!     ...
//!   expect:
//!     object: HTTPRoute/shop/web               # default: every object; the worst decision
//!     decision: deny                           # allow | warn | deny
//!     policies: [public-requires-authn]        # exactly the determining policies
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gatehouse_policies::{AdmissionData, Claim, Decision, PolicySource};
use serde::Deserialize;

use super::{evaluate, file_sources, object_sources};
use crate::model::{Config, Diagnostic, load_text};
use crate::translate::{TranslateOptions, Translator};

/// Configuration as YAML text, or as a list of objects.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Snippet {
    /// YAML documents.
    Text(String),
    /// Objects.
    Objects(Vec<serde_json::Value>),
}

/// What a case expects.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// `allow`, `warn` or `deny`.
    pub decision: Decision,
    /// Exactly the determining policies (violated, in any mode, or erroring).
    #[serde(default)]
    pub policies: Vec<String>,
    /// Only this object (`Kind/namespace/name`); default: all of them.
    #[serde(default)]
    pub object: Option<String>,
}

/// One case.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestCase {
    /// What it shows.
    pub name: String,
    /// Configuration added to the file's base.
    #[serde(default)]
    pub config: Option<Snippet>,
    /// Claims judged directly (instead of a configuration).
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Exemptions and tenants for `claims`.
    #[serde(default)]
    pub data: Option<AdmissionData>,
    /// The expected outcome.
    pub expect: Expect,
}

/// A test file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestFile {
    /// Policy files, relative to the test file (default: the tested directory's).
    #[serde(default)]
    pub policies: Option<Vec<PathBuf>>,
    /// Configuration files every case starts from, relative to the test file.
    #[serde(default)]
    pub include: Vec<PathBuf>,
    /// Configuration every case starts from.
    #[serde(default)]
    pub base: Option<Snippet>,
    /// The cases.
    pub cases: Vec<TestCase>,
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CaseResult {
    /// Its name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was decided (and, when it failed, what was expected).
    pub detail: String,
}

/// The outcome of one test file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TestOutcome {
    /// The file.
    pub file: PathBuf,
    /// Each case.
    pub cases: Vec<CaseResult>,
}

/// The test files under `dir` (recursively, sorted).
pub fn test_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    crate::model::walk_files(dir, |n| {
        [".test.yaml", ".test.yml", ".test.json"]
            .iter()
            .any(|s| n.ends_with(s))
    })
}

fn snippet_text(s: &Snippet) -> Result<String, String> {
    match s {
        Snippet::Text(t) => Ok(t.clone()),
        Snippet::Objects(objects) => objects
            .iter()
            .map(|o| serde_json::to_string(o).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(|docs| docs.join("\n---\n")),
    }
}

fn load(config: &mut Config, file: &Path, text: &str) -> Result<(), String> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    load_text(config, &mut diags, file, text);
    match diags.first() {
        None => Ok(()),
        Some(d) => Err(format!("configuration: {d}")),
    }
}

fn run_case(
    file: &Path,
    case: &TestCase,
    base: &Config,
    policy_sources: &[PolicySource],
) -> Result<String, String> {
    let mut config = base.clone();
    if let Some(c) = &case.config {
        let text = snippet_text(c)?;
        load(&mut config, file, &text).map_err(|e| format!("{e} (in the case's config)"))?;
    }
    let (objects, object_diags) = object_sources(&config);
    let mut sources = policy_sources.to_vec();
    sources.extend(objects);
    let engine = match super::compile(&sources, object_diags) {
        Ok((e, _)) => e,
        Err(e) => {
            let errors: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
            return Err(format!("the policies are invalid: {}", errors.join("; ")));
        }
    };
    let (decision, policies): (Decision, BTreeSet<String>) = if case.claims.is_empty() {
        let t = Translator::new(TranslateOptions::default()).translate(&config);
        let eval = evaluate(&engine, &config, &t);
        let objects: Vec<&super::ObjectDecision> = match &case.expect.object {
            Some(o) => {
                let found: Vec<_> = eval
                    .report
                    .objects
                    .values()
                    .filter(|d| d.object.to_string() == *o)
                    .collect();
                if found.is_empty() {
                    let known: Vec<String> = eval
                        .report
                        .objects
                        .keys()
                        .map(ToString::to_string)
                        .collect();
                    return Err(format!(
                        "`{o}` makes no claim (objects with claims: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
                found
            }
            None => {
                if eval.report.objects.is_empty() {
                    let problems: Vec<String> =
                        t.status.iter().flat_map(|s| s.problems()).collect();
                    return Err(format!(
                        "nothing to judge: no route is attached to a listener{}",
                        if problems.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", problems.join("; "))
                        }
                    ));
                }
                eval.report.objects.values().collect()
            }
        };
        (
            objects
                .iter()
                .map(|o| o.decision)
                .max()
                .unwrap_or(Decision::Allow),
            objects
                .iter()
                .flat_map(|o| o.findings.iter().map(|f| f.policy.clone()))
                .collect(),
        )
    } else {
        let data = case.data.clone().unwrap_or_default();
        let decisions = engine.evaluate(&case.claims, &data);
        (
            decisions
                .iter()
                .map(|d| d.decision)
                .max()
                .unwrap_or(Decision::Allow),
            decisions
                .iter()
                .flat_map(|d| d.findings.iter().map(|f| f.policy.clone()))
                .collect(),
        )
    };
    let expected: BTreeSet<String> = case.expect.policies.iter().cloned().collect();
    let got = format!(
        "{decision} by [{}]",
        policies.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    if decision == case.expect.decision && policies == expected {
        Ok(got)
    } else {
        Err(format!(
            "expected {} by [{}], got {got}",
            case.expect.decision,
            expected.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Runs every case of `file`. `default_policies` are the policy files used when the test file
/// names none. `Err` when the file itself cannot be used.
pub fn run_test_file(file: &Path, default_policies: &[PathBuf]) -> Result<TestOutcome, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    let tf: TestFile = if file.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)
            .map_err(|e| format!("line {}: not a test file: {e}", e.line()))?
    } else {
        serde_saphyr::from_str(&text).map_err(|e| {
            let msg = e.to_string();
            format!(
                "not a test file: {}",
                msg.lines().next().unwrap_or_default()
            )
        })?
    };
    let here = file.parent().unwrap_or(Path::new("."));
    let policy_files: Vec<PathBuf> = match &tf.policies {
        Some(p) => p.iter().map(|p| here.join(p)).collect(),
        None => default_policies.to_vec(),
    };
    let (sources, diags) = file_sources(&policy_files);
    if let Some(d) = diags.first() {
        return Err(d.to_string());
    }
    let mut base = Config::default();
    for inc in &tf.include {
        let path = here.join(inc);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("include `{}`: cannot read: {e}", path.display()))?;
        load(&mut base, &path, &text)?;
    }
    if let Some(b) = &tf.base {
        load(&mut base, file, &snippet_text(b)?)?;
    }
    let cases = tf
        .cases
        .iter()
        .map(|case| match run_case(file, case, &base, &sources) {
            Ok(detail) => CaseResult {
                name: case.name.clone(),
                passed: true,
                detail,
            },
            Err(detail) => CaseResult {
                name: case.name.clone(),
                passed: false,
                detail,
            },
        })
        .collect();
    Ok(TestOutcome {
        file: file.to_owned(),
        cases,
    })
}
