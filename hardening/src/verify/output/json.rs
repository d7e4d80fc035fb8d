//! JSON, schema version [`SCHEMA_VERSION`](super::super::SCHEMA_VERSION):
//!
//! ```text
//! { schemaVersion, tool{name,version}, failOn, status (passed|failed), exitCode,
//!   inputs[], summary{checks,passed,failed,warnings,info,findings,suppressed},
//!   checks[{id,name,title,category,severity,outcome,findings,suppressed}],
//!   findings[{id,severity,category,title,object{kind,namespace?,name},target,
//!             location{file,line?}|null,message,why,fix,related[],suppression|null}],
//!   unusedSuppressions[] }
//! ```

use serde_json::{Value, json};

use super::super::{Finding, Report, SCHEMA_VERSION};
use super::RenderOptions;

fn finding(f: &Finding) -> Value {
    json!({
        "id": f.check.id,
        "severity": f.severity(),
        "category": f.check.category,
        "title": f.check.title,
        "object": f.object,
        "target": f.object.target(),
        "location": f.location,
        "message": f.message,
        "why": f.check.why,
        "fix": f.check.fix,
        "related": f.related,
        "suppression": f.suppression,
    })
}

pub(super) fn render(report: &Report, options: &RenderOptions) -> String {
    let checks: Vec<Value> = report
        .evaluated
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "title": c.title,
                "category": c.category,
                "severity": c.severity,
                "outcome": report.outcome(c),
                "findings": report.findings_of(c).count(),
                "suppressed": report.findings.iter().filter(|f| f.check.id == c.id && f.is_suppressed()).count(),
            })
        })
        .collect();
    let fails = report.fails(options.fail_on);
    let doc = json!({
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "gatehouse", "version": options.tool_version},
        "failOn": options.fail_on,
        "status": if fails { "failed" } else { "passed" },
        "exitCode": report.exit_code(options.fail_on),
        "inputs": report.inputs,
        "summary": report.summary(),
        "checks": checks,
        "findings": report.findings.iter().map(finding).collect::<Vec<_>>(),
        "unusedSuppressions": report.unused_suppressions,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
