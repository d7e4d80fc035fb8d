//! JUnit XML: one test suite per family, one test case per evaluated check. A case fails
//! when it has unsuppressed findings at or above `--fail-on`; findings below the threshold
//! and suppressed ones are listed in its `system-out`.

use std::fmt::Write as _;

use super::super::{Category, Finding, Report};
use super::RenderOptions;

/// Escapes text for XML attributes and content, dropping characters XML 1.0 forbids.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

fn line(f: &Finding) -> String {
    let at = f
        .location
        .as_ref()
        .map_or_else(String::new, |l| format!("{l}: "));
    let mut text = format!("{at}{} [{}] {}", f.object.target(), f.severity(), f.message);
    if let Some(s) = &f.suppression {
        if s.expired {
            let _ = write!(
                text,
                " (suppression expired on {}: {})",
                s.expires, s.reason
            );
        } else {
            let _ = write!(text, " (suppressed until {}: {})", s.expires, s.reason);
        }
    }
    text
}

pub(super) fn render(report: &Report, options: &RenderOptions) -> String {
    let mut suites = String::new();
    let (mut total, mut total_failures) = (0usize, 0usize);
    for category in Category::ALL {
        let checks: Vec<_> = report
            .evaluated
            .iter()
            .filter(|c| c.category == category)
            .collect();
        if checks.is_empty() {
            continue;
        }
        let mut cases = String::new();
        let mut failures = 0usize;
        for check in &checks {
            let all: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.check.id == check.id)
                .collect();
            let failing: Vec<&&Finding> = all
                .iter()
                .filter(|f| !f.is_suppressed() && options.fail_on.fails(f.severity()))
                .collect();
            let others: Vec<&&Finding> = all
                .iter()
                .filter(|f| f.is_suppressed() || !options.fail_on.fails(f.severity()))
                .collect();
            let _ = writeln!(
                cases,
                "    <testcase classname=\"gatehouse.verify.{}\" name=\"{} {}\">",
                category.title(),
                check.id,
                xml(check.title)
            );
            if !failing.is_empty() {
                failures += 1;
                let body: Vec<String> = failing.iter().map(|f| line(f)).collect();
                let _ = write!(
                    cases,
                    "      <failure type=\"{}\" message=\"{} finding{}\">{}\n\nwhy: {}\nfix: {}</failure>\n",
                    check.severity,
                    failing.len(),
                    if failing.len() == 1 { "" } else { "s" },
                    xml(&body.join("\n")),
                    xml(check.why),
                    xml(check.fix)
                );
            }
            if !others.is_empty() {
                let body: Vec<String> = others.iter().map(|f| line(f)).collect();
                let _ = writeln!(
                    cases,
                    "      <system-out>{}</system-out>",
                    xml(&body.join("\n"))
                );
            }
            cases.push_str("    </testcase>\n");
        }
        total += checks.len();
        total_failures += failures;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n{cases}  </testsuite>\n",
            category.title(),
            checks.len()
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"gatehouse verify\" tests=\"{total}\" failures=\"{total_failures}\" errors=\"0\" skipped=\"0\">\n{suites}</testsuites>\n"
    )
}
