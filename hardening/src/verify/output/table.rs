//! The table: like `linkerd check`, one section per family, one line per check (✔ passed,
//! ‼ warning, ✘ failed, ℹ info), the findings under the check with file and line, why and
//! how to fix, and a summary line.

use std::fmt::Write as _;

use super::super::{CheckOutcome, Finding, Report, Severity};
use super::RenderOptions;

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn green(&self, t: &str) -> String {
        self.wrap("1;32", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.wrap("1;33", t)
    }
    fn red(&self, t: &str) -> String {
        self.wrap("1;31", t)
    }
    fn blue(&self, t: &str) -> String {
        self.wrap("1;34", t)
    }
    fn bold(&self, t: &str) -> String {
        self.wrap("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.wrap("2", t)
    }
}

fn finding_lines(out: &mut String, paint: &Paint, f: &Finding) {
    let at = f
        .location
        .as_ref()
        .map_or_else(String::new, |l| format!("  {}", l));
    let _ = writeln!(
        out,
        "    {}{}",
        paint.bold(&f.object.target()),
        paint.dim(&at)
    );
    let _ = writeln!(out, "      {}", f.message);
    if let Some(s) = &f.suppression {
        if s.expired {
            let _ = writeln!(
                out,
                "      {}",
                paint.yellow(&format!(
                    "suppression expired on {} ({}; {}): reported again",
                    s.expires, s.reason, s.source
                ))
            );
        } else {
            let _ = writeln!(
                out,
                "      {}",
                paint.dim(&format!(
                    "suppressed until {}: {} ({})",
                    s.expires, s.reason, s.source
                ))
            );
        }
    }
}

pub(super) fn render(report: &Report, options: &RenderOptions) -> String {
    let paint = Paint { on: options.color };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        paint.bold(&format!(
            "gatehouse verify · gatehouse {} · fail on {}",
            options.tool_version,
            options.fail_on.as_str()
        ))
    );
    for input in &report.inputs {
        let _ = writeln!(out, "  {}", paint.dim(input));
    }
    out.push('\n');
    let mut current = None;
    for check in &report.evaluated {
        if current != Some(check.category) {
            if current.is_some() {
                out.push('\n');
            }
            current = Some(check.category);
            let title = check.category.title();
            let _ = writeln!(out, "{}", paint.bold(title));
            let _ = writeln!(out, "{}", "-".repeat(title.chars().count()));
        }
        let outcome = report.outcome(check);
        let mark = match outcome {
            CheckOutcome::Passed => paint.green("✔"),
            CheckOutcome::Info => paint.blue("ℹ"),
            CheckOutcome::Warning => paint.yellow("‼"),
            CheckOutcome::Failed => paint.red("✘"),
        };
        let suppressed: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.check.id == check.id && f.is_suppressed())
            .collect();
        let note = if suppressed.is_empty() {
            String::new()
        } else {
            paint.dim(&format!(" ({} suppressed)", suppressed.len()))
        };
        let _ = writeln!(out, "{mark} [{}] {}{note}", check.id, check.title);
        let active: Vec<&Finding> = report.findings_of(check).collect();
        for f in &active {
            finding_lines(&mut out, &paint, f);
        }
        for f in &suppressed {
            finding_lines(&mut out, &paint, f);
        }
        if !active.is_empty() {
            let _ = writeln!(out, "    {}  {}", paint.dim("why"), check.why);
            let _ = writeln!(out, "    {}  {}", paint.dim("fix"), check.fix);
            let _ = writeln!(
                out,
                "    {}  gatehouse verify explain {}",
                paint.dim("see"),
                check.id
            );
        }
    }
    if report.evaluated.is_empty() {
        let _ = writeln!(out, "no check applied to these inputs");
    }
    let s = report.summary();
    out.push('\n');
    let _ = writeln!(
        out,
        "{} checks · {} passed · {} failed · {} warnings · {} info · {} findings · {} suppressed",
        s.checks, s.passed, s.failed, s.warnings, s.info, s.findings, s.suppressed
    );
    for unused in &report.unused_suppressions {
        let _ = writeln!(
            out,
            "{}",
            paint.dim(&format!(
                "suppression {} {} ({}:{}) matched no finding",
                unused.id, unused.target, unused.file, unused.line
            ))
        );
    }
    let fails = report.fails(options.fail_on);
    let worst = report
        .findings
        .iter()
        .filter(|f| !f.is_suppressed())
        .map(Finding::severity)
        .max();
    let status = if fails {
        paint.red("✘ failed")
    } else if worst == Some(Severity::Error) || worst == Some(Severity::Warning) {
        paint.yellow("‼ passed with findings below the threshold")
    } else {
        paint.green("✔ passed")
    };
    let _ = writeln!(
        out,
        "Status: {status} (--fail-on {}) → exit {}",
        options.fail_on.as_str(),
        report.exit_code(options.fail_on)
    );
    out
}
