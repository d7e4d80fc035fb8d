//! Problems found in policy sources, with file, line and column, and a hint where there is one.

use std::fmt;

use serde::Serialize;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy set is refused.
    Error,
    /// Worth fixing; the policy set is used.
    Warning,
}

/// One problem in a policy source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PolicyDiagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file (or object, for a GatewayPolicy) the policy came from.
    pub file: String,
    /// 1-based line (0: the whole source).
    pub line: usize,
    /// 1-based column (0: unknown).
    pub column: usize,
    /// The policy id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Display for PolicyDiagnostic {
    /// `FILE:LINE:COL: error: MESSAGE (policy ID) (help: HINT)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {sev}: {}", self.message)?;
        if let Some(p) = &self.policy
            && !self.message.contains(p.as_str())
        {
            write!(f, " (policy `{p}`)")?;
        }
        if let Some(h) = &self.help {
            write!(f, " (help: {h})")?;
        }
        Ok(())
    }
}

/// A policy set that cannot be used, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the policy set is invalid: {}", summary(.diagnostics))]
pub struct InvalidPolicySet {
    /// Every problem, errors first.
    pub diagnostics: Vec<PolicyDiagnostic>,
}

fn summary(d: &[PolicyDiagnostic]) -> String {
    let errors: Vec<&PolicyDiagnostic> =
        d.iter().filter(|d| d.severity == Severity::Error).collect();
    match errors.as_slice() {
        [] => "no errors".to_owned(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |i| {
        before.get(i + 1..).unwrap_or("").chars().count()
    }) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let t = "ab\ncd\n\nef";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 1), (1, 2));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 7), (4, 1));
        assert_eq!(line_col(t, 99), (4, 3));
    }
}
