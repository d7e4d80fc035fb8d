//! Where policies come from: `*.cedar` files of a directory and `GatewayPolicy` objects; and
//! the data they judge with (exemptions and tenants of `GatewayPolicy` objects).

use std::path::{Path, PathBuf};

use gatehouse_policies::{AdmissionData, Enforcement, PolicyDiagnostic, PolicySource, Severity};

use crate::model::Config;

/// The `*.cedar` files of `dir` (recursively, sorted; hidden entries skipped).
pub fn cedar_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    crate::model::walk_files(dir, |n| n.ends_with(".cedar"))
}

fn error(file: &str, line: usize, message: String, help: Option<&str>) -> PolicyDiagnostic {
    PolicyDiagnostic {
        severity: Severity::Error,
        file: file.to_owned(),
        line,
        column: 0,
        policy: None,
        message,
        help: help.map(str::to_owned),
    }
}

/// The policy sources of `files`.
pub fn file_sources(files: &[PathBuf]) -> (Vec<PolicySource>, Vec<PolicyDiagnostic>) {
    let mut sources = Vec::new();
    let mut diags = Vec::new();
    for f in files {
        let name = f.display().to_string();
        match std::fs::read_to_string(f) {
            Ok(text) => sources.push(PolicySource::file(name, text)),
            Err(e) => diags.push(error(&name, 0, format!("cannot read: {e}"), None)),
        }
    }
    (sources, diags)
}

/// The line where a GatewayPolicy's `policies:` text starts in its file, best effort.
fn text_start(file: &Path, doc_line: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(file) else {
        return doc_line;
    };
    text.lines()
        .enumerate()
        .skip(doc_line.saturating_sub(1))
        .find_map(|(i, l)| {
            let t = l.trim_start();
            t.strip_prefix("policies:").map(|rest| {
                let rest = rest.trim();
                if rest.starts_with('|') || rest.starts_with('>') || rest.is_empty() {
                    i + 2
                } else {
                    i + 1
                }
            })
        })
        .unwrap_or(doc_line)
}

/// The policy sources of the GatewayPolicy objects of `config`.
pub fn object_sources(config: &Config) -> (Vec<PolicySource>, Vec<PolicyDiagnostic>) {
    let mut sources = Vec::new();
    let mut diags = Vec::new();
    for ((_, name), (p, origin)) in &config.gateway_policies {
        let file = origin.file.display().to_string();
        let default_enforcement = match p.spec.enforcement.as_deref() {
            None => None,
            Some(e) => match Enforcement::parse(e) {
                Some(e) => Some(e),
                None => {
                    diags.push(error(
                        &file,
                        origin.line,
                        format!("GatewayPolicy `{name}`: enforcement `{e}` is not one of deny, warn, dryrun"),
                        None,
                    ));
                    continue;
                }
            },
        };
        if let Some(text) = &p.spec.policies {
            sources.push(PolicySource {
                name: file,
                first_line: text_start(&origin.file, origin.line),
                text: text.clone(),
                default_enforcement,
            });
        }
    }
    (sources, diags)
}

/// Exemptions and tenants, from every GatewayPolicy.
pub fn admission_data(config: &Config) -> AdmissionData {
    let mut data = AdmissionData::default();
    for (p, _) in config.gateway_policies.values() {
        for e in &p.spec.exemptions {
            data.exemptions
                .entry(e.policy.clone())
                .or_default()
                .extend(e.namespaces.iter().cloned());
        }
        for t in &p.spec.tenants {
            for ns in &t.namespaces {
                data.tenants.insert(ns.clone(), t.name.clone());
            }
        }
    }
    data
}

/// Exemptions that name no policy of the set, and namespaces given to two tenants: warnings.
pub fn data_warnings(
    config: &Config,
    policies: &std::collections::BTreeMap<String, gatehouse_policies::PolicyInfo>,
) -> Vec<PolicyDiagnostic> {
    let mut out = Vec::new();
    let mut tenant_of: std::collections::BTreeMap<&str, &str> = Default::default();
    for ((_, name), (p, origin)) in &config.gateway_policies {
        let file = origin.file.display().to_string();
        for e in &p.spec.exemptions {
            if !policies.contains_key(&e.policy) {
                out.push(PolicyDiagnostic {
                    severity: Severity::Warning,
                    file: file.clone(),
                    line: origin.line,
                    column: 0,
                    policy: Some(e.policy.clone()),
                    message: format!(
                        "GatewayPolicy `{name}` exempts namespaces from `{}`, which is not a policy in force",
                        e.policy
                    ),
                    help: Some("exemptions name policies by their @id".into()),
                });
            }
        }
        for t in &p.spec.tenants {
            for ns in &t.namespaces {
                if let Some(prev) = tenant_of.insert(ns, &t.name)
                    && prev != t.name
                {
                    out.push(PolicyDiagnostic {
                        severity: Severity::Warning,
                        file: file.clone(),
                        line: origin.line,
                        column: 0,
                        policy: None,
                        message: format!(
                            "namespace `{ns}` is given to tenants `{prev}` and `{}`; `{}` is used",
                            t.name, t.name
                        ),
                        help: None,
                    });
                }
            }
        }
    }
    out
}
