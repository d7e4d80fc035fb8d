//! Rendering a [`Report`]: a table grouped like `linkerd check`, JSON with a versioned
//! schema, SARIF 2.1.0 (one rule per check id), JUnit XML. Every format carries the same
//! findings; the exit code does not depend on the format.

mod json;
mod junit;
mod sarif;
mod table;

use std::path::PathBuf;

use super::{FailOn, Report};

/// The output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// For people: checks grouped by family, ✔ ‼ ✘, a summary line.
    #[default]
    Table,
    /// For programs: `{"schemaVersion": 1, …}`.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// JUnit XML for CI test tabs.
    Junit,
}

/// How to render.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// The `--fail-on` threshold (it decides the status line and which JUnit cases fail).
    pub fail_on: FailOn,
    /// ANSI colours in the table (only on a terminal, never under `NO_COLOR`: the caller
    /// decides).
    pub color: bool,
    /// The version of the tool.
    pub tool_version: String,
    /// The working directory relative paths are relative to (SARIF `SRCROOT`).
    pub cwd: Option<PathBuf>,
}

/// Renders `report` in `format`. The text ends with a newline.
#[must_use]
pub fn render(report: &Report, format: Format, options: &RenderOptions) -> String {
    match format {
        Format::Table => table::render(report, options),
        Format::Json => json::render(report, options),
        Format::Sarif => sarif::render(report, options),
        Format::Junit => junit::render(report, options),
    }
}

/// The `list` output: every check, by family.
#[must_use]
pub fn list(json: bool) -> String {
    use super::{Category, catalog};
    if json {
        let checks: Vec<serde_json::Value> = catalog::checks()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id, "name": c.name, "title": c.title, "category": c.category,
                    "severity": c.severity, "why": c.why, "fix": c.fix, "references": c.references,
                })
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&serde_json::json!({
            "schemaVersion": super::SCHEMA_VERSION, "checks": checks,
        }))
        .unwrap_or_default();
        text.push('\n');
        return text;
    }
    let mut out = String::new();
    for category in Category::ALL {
        out.push_str(category.title());
        out.push('\n');
        out.push_str(&"-".repeat(category.title().chars().count()));
        out.push('\n');
        for c in catalog::checks().iter().filter(|c| c.category == category) {
            out.push_str(&format!(
                "{:<10} {:<8} {}\n",
                c.id,
                c.severity.as_str(),
                c.title
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "gatehouse verify explain ID prints why a check matters and how to fix a finding.\n",
    );
    out
}
