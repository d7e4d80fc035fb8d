//! Suppressions: accepted findings, each with a check id, a target, a reason and an expiry
//! date (all four required). An expired suppression no longer hides its findings, and the
//! report says it expired.
//!
//! ```yaml
//! suppressions:            # or the list itself at the top level
//! - id: RBAC-027
//!   target: Role/gatehouse-gateways/gatehouse-controller   # Kind/namespace/name; `*` matches anything
//!   reason: the controller serves listener certificates over SDS (docs/profiles.md)
//!   expires: 2026-12-31
//! ```

use std::path::Path;
use std::time::SystemTime;

use time::{Date, Month, OffsetDateTime};

use super::yaml::{self, Node};
use super::{Finding, VerifyError, catalog};

/// One accepted finding pattern.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Suppression {
    /// The check id (`RBAC-027`).
    pub id: String,
    /// What it applies to: a finding's target (`Kind/namespace/name`, `Kind/name`,
    /// `Unit/NAME.service`, `Certificate/gateway/NS/NAME`, `Process/envoy[PID]`), where `*`
    /// matches any run of characters.
    pub target: String,
    /// Why it is accepted.
    pub reason: String,
    /// The last day it applies (`YYYY-MM-DD`, UTC).
    pub expires: String,
    /// The suppressions file.
    pub file: String,
    /// The line of the entry.
    pub line: usize,
    #[serde(skip)]
    date: Option<Date>,
}

/// A suppression as applied to a finding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Why it is accepted.
    pub reason: String,
    /// The last day it applies.
    pub expires: String,
    /// Whether it has expired: then the finding counts again.
    pub expired: bool,
    /// The suppression's target pattern.
    pub target: String,
    /// Where the suppression is written (`FILE:LINE`).
    pub source: String,
}

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// Reads a suppressions file.
///
/// # Errors
///
/// [`VerifyError::CouldNotEvaluate`] when it cannot be read, [`VerifyError::Unparsable`]
/// (with the line) when it is not YAML, an entry lacks one of `id`, `target`, `reason` and
/// `expires`, names an unknown check, or has a date that is not `YYYY-MM-DD`.
pub fn load(path: &Path) -> Result<Vec<Suppression>, VerifyError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| VerifyError::could_not(&file, e))?;
    let docs = yaml::parse_documents(&text)
        .map_err(|e| VerifyError::unparsable(&file, e.line, e.reason))?;
    let Some(doc) = docs.first() else {
        return Ok(Vec::new());
    };
    let list = match doc.get("suppressions") {
        Some(list) => list,
        None => doc,
    };
    if !matches!(list.value, yaml::Value::Seq(_)) {
        return Err(VerifyError::unparsable(
            &file,
            list.line,
            "expected a list of suppressions (or `suppressions:` with a list)",
        ));
    }
    let mut out = Vec::new();
    for entry in list.items() {
        let field = |key: &str| -> Result<String, VerifyError> {
            entry
                .get(key)
                .and_then(Node::scalar_text)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    VerifyError::unparsable(
                        &file,
                        entry.line,
                        format!(
                            "a suppression needs id, target, reason and expires; `{key}` is missing or empty"
                        ),
                    )
                })
        };
        let id = field("id")?;
        let target = field("target")?;
        let reason = field("reason")?;
        let expires = field("expires")?;
        let Some(check) = catalog::find(&id) else {
            return Err(VerifyError::unparsable(
                &file,
                entry.line_of("id"),
                format!("unknown check id `{id}` (see `gatehouse verify list`)"),
            ));
        };
        let Some(date) = parse_date(&expires) else {
            return Err(VerifyError::unparsable(
                &file,
                entry.line_of("expires"),
                format!("expires `{expires}` is not a date (YYYY-MM-DD)"),
            ));
        };
        out.push(Suppression {
            id: check.id.to_owned(),
            target,
            reason,
            expires,
            file: file.clone(),
            line: entry.line,
            date: Some(date),
        });
    }
    Ok(out)
}

impl Suppression {
    /// A suppression built in code (tests, other front ends).
    #[must_use]
    pub fn new(id: &str, target: &str, reason: &str, expires: &str) -> Option<Self> {
        let check = catalog::find(id)?;
        let date = parse_date(expires)?;
        Some(Self {
            id: check.id.to_owned(),
            target: target.to_owned(),
            reason: reason.to_owned(),
            expires: expires.to_owned(),
            file: "<inline>".to_owned(),
            line: 0,
            date: Some(date),
        })
    }

    fn matches(&self, finding: &Finding) -> bool {
        self.id == finding.check.id && glob(&self.target, &finding.object.target())
    }

    fn expired(&self, today: Date) -> bool {
        self.date.is_none_or(|d| d < today)
    }
}

/// `*` matches any run of characters (slashes included); everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = text
        .get(first.len()..text.len() - last.len())
        .unwrap_or_default();
    for middle in parts.iter().skip(1).take(parts.len().saturating_sub(2)) {
        match rest.find(middle) {
            Some(i) => rest = rest.get(i + middle.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    true
}

/// Applies suppressions to findings; returns the ones that matched nothing.
pub(crate) fn apply(
    suppressions: &[Suppression],
    findings: &mut [Finding],
    now: SystemTime,
) -> Vec<Suppression> {
    let today = OffsetDateTime::from(now).date();
    let mut used = vec![false; suppressions.len()];
    for finding in findings.iter_mut() {
        let matching: Vec<(usize, &Suppression)> = suppressions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.matches(finding))
            .collect();
        let chosen = matching
            .iter()
            .find(|(_, s)| !s.expired(today))
            .or_else(|| matching.first());
        if let Some((index, s)) = chosen {
            if let Some(u) = used.get_mut(*index) {
                *u = true;
            }
            finding.suppression = Some(Applied {
                reason: s.reason.clone(),
                expires: s.expires.clone(),
                expired: s.expired(today),
                target: s.target.clone(),
                source: super::Location::at(&s.file, s.line).to_string(),
            });
        }
    }
    suppressions
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|(s, _)| s.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("Role/ns/name", "Role/ns/name"));
        assert!(!glob("Role/ns/name", "Role/ns/other"));
        assert!(glob("Role/*", "Role/ns/name"));
        assert!(glob("*/ns/*", "Role/ns/name"));
        assert!(glob("*", "anything"));
        assert!(glob("Process/envoy*", "Process/envoy[12]"));
        assert!(!glob("Process/envoy*", "Process/sleep[12]"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn dates() {
        assert!(parse_date("2026-01-31").is_some());
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("31/01/2026").is_none());
    }
}
