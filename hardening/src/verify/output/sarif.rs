//! SARIF 2.1.0 (`reference/hardening.md` (e)): one `reportingDescriptor` per check id (the
//! whole registry, so `ruleIndex` is stable), results with `physicalLocation` (file
//! relative to `SRCROOT`, the working directory, and the line) and a `logicalLocation` (the
//! object), `partialFingerprints`, and accepted findings as `suppressions`.

use std::path::Path;

use serde_json::{Value, json};

use super::super::{Finding, Report, Severity, catalog};
use super::RenderOptions;

const INFORMATION_URI: &str = "https://github.com/gatehouse-dev/gatehouse/blob/main/docs/verify.md";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "8.0",
        Severity::Warning => "5.0",
        Severity::Info => "2.0",
    }
}

/// Percent-encodes a path for a URI (RFC 3986: unreserved characters and `/` stay).
fn encode(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `artifactLocation` for a file as it appears in the report.
fn artifact(file: &str, cwd: Option<&Path>) -> Option<Value> {
    // Standard input and live cluster objects (`cluster:Kind/namespace/name`) are no
    // artifact: their findings keep the logical location only.
    if file == "<stdin>" || file.starts_with("cluster:") {
        return None;
    }
    let path = Path::new(file);
    if path.is_absolute() {
        if let Some(rel) = cwd.and_then(|c| path.strip_prefix(c).ok()) {
            return Some(json!({"uri": encode(&rel.to_string_lossy()), "uriBaseId": "SRCROOT"}));
        }
        return Some(json!({"uri": format!("file://{}", encode(file))}));
    }
    let clean = file.trim_start_matches("./");
    if clean.starts_with("../") {
        // Outside the working directory: resolve it to an absolute URI.
        if let Some(abs) = cwd.and_then(|c| c.join(clean).canonicalize().ok()) {
            return Some(json!({"uri": format!("file://{}", encode(&abs.to_string_lossy()))}));
        }
    }
    Some(json!({"uri": encode(clean), "uriBaseId": "SRCROOT"}))
}

fn result(f: &Finding, index: usize, cwd: Option<&Path>, ordinal: usize) -> Value {
    let mut location = serde_json::Map::new();
    if let Some(loc) = &f.location
        && let Some(artifact) = artifact(&loc.file, cwd)
    {
        let mut physical = serde_json::Map::new();
        physical.insert("artifactLocation".to_owned(), artifact);
        if let Some(line) = loc.line {
            physical.insert("region".to_owned(), json!({"startLine": line}));
        }
        location.insert("physicalLocation".to_owned(), Value::Object(physical));
    }
    location.insert(
        "logicalLocations".to_owned(),
        json!([{"fullyQualifiedName": f.object.target(), "name": f.object.name, "kind": "resource"}]),
    );
    let mut message = f.message.clone();
    if let Some(s) = f.suppression.as_ref().filter(|s| s.expired) {
        message.push_str(&format!(
            " (a suppression of this finding expired on {}: {})",
            s.expires, s.reason
        ));
    }
    let mut result = json!({
        "ruleId": f.check.id,
        "ruleIndex": index,
        "level": level(f.severity()),
        "message": {"text": message},
        "locations": [Value::Object(location)],
        "partialFingerprints": {
            "gatehouseFinding/v1": format!("{}|{}|{}", f.check.id, f.object.target(), ordinal),
        },
    });
    if !f.related.is_empty()
        && let Some(obj) = result.as_object_mut()
    {
        let related: Vec<Value> = f
            .related
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "id": i,
                    "logicalLocations": [{"fullyQualifiedName": r.target(), "name": r.name, "kind": "resource"}],
                    "message": {"text": r.target()},
                })
            })
            .collect();
        obj.insert("relatedLocations".to_owned(), Value::Array(related));
    }
    if let Some(s) = f.suppression.as_ref().filter(|s| !s.expired)
        && let Some(obj) = result.as_object_mut()
    {
        obj.insert(
            "suppressions".to_owned(),
            json!([{
                "kind": "external",
                "status": "accepted",
                "justification": format!("{} (until {}; {})", s.reason, s.expires, s.source),
            }]),
        );
    }
    result
}

pub(super) fn render(report: &Report, options: &RenderOptions) -> String {
    let rules: Vec<Value> = catalog::checks()
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": c.why},
                "help": {"text": format!("{} (gatehouse verify explain {})", c.fix, c.id)},
                "helpUri": format!("{INFORMATION_URI}#{}", c.id.to_ascii_lowercase()),
                "defaultConfiguration": {"level": level(c.severity)},
                "properties": {
                    "tags": ["security", c.category.title()],
                    "security-severity": security_severity(c.severity),
                },
            })
        })
        .collect();
    let cwd = options.cwd.as_deref();
    let mut ordinals: std::collections::BTreeMap<(String, String), usize> = Default::default();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = catalog::checks()
                .iter()
                .position(|c| c.id == f.check.id)
                .unwrap_or(0);
            let ordinal = ordinals
                .entry((f.check.id.to_owned(), f.object.target()))
                .or_insert(0);
            *ordinal += 1;
            result(f, index, cwd, *ordinal)
        })
        .collect();
    let mut run = json!({
        "tool": {"driver": {
            "name": "gatehouse",
            "fullName": "gatehouse verify",
            "version": options.tool_version,
            "semanticVersion": options.tool_version,
            "informationUri": INFORMATION_URI,
            "rules": rules,
        }},
        "invocations": [{"executionSuccessful": true}],
        "results": results,
        "columnKind": "unicodeCodePoints",
    });
    if let Some(cwd) = cwd
        && let Some(obj) = run.as_object_mut()
    {
        let mut base = format!("file://{}", encode(&cwd.to_string_lossy()));
        if !base.ends_with('/') {
            base.push('/');
        }
        obj.insert(
            "originalUriBaseIds".to_owned(),
            json!({"SRCROOT": {"uri": base}}),
        );
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(encode("a b/c%d"), "a%20b/c%25d");
        let cwd = Path::new("/work/main");
        assert_eq!(
            artifact("deploy/x.yaml", Some(cwd)),
            Some(json!({"uri": "deploy/x.yaml", "uriBaseId": "SRCROOT"}))
        );
        assert_eq!(
            artifact("/work/main/deploy/x.yaml", Some(cwd)),
            Some(json!({"uri": "deploy/x.yaml", "uriBaseId": "SRCROOT"}))
        );
        assert_eq!(
            artifact("/etc/x.service", Some(cwd)),
            Some(json!({"uri": "file:///etc/x.service"}))
        );
        assert_eq!(artifact("<stdin>", Some(cwd)), None);
        assert_eq!(artifact("cluster:Deployment/gw/envoy", Some(cwd)), None);
    }
}
