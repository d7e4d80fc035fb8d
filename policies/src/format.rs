//! `policy fmt`: Cedar's own formatter (comments kept), with Gatehouse's width and indent.

use crate::diagnostic::{PolicyDiagnostic, Severity, line_col};

/// Formats Cedar policy text: 100 columns, two-space indent. `Err` when it does not parse.
pub fn format_policies(name: &str, text: &str) -> Result<String, PolicyDiagnostic> {
    let config = cedar_policy_formatter::Config {
        line_width: 100,
        indent_width: 2,
    };
    cedar_policy_formatter::policies_str_to_pretty(text, &config).map_err(|e| {
        let offset = e.labels().and_then(|mut l| l.next()).map(|l| l.offset());
        let (line, column) = offset.map_or((0, 0), |o| line_col(text, o));
        PolicyDiagnostic {
            severity: Severity::Error,
            file: name.to_owned(),
            line,
            column,
            policy: None,
            message: format!("cannot format: {e}"),
            help: e.help().map(|h| h.to_string()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_idempotent_and_keeps_comments() {
        let src = "// keep me\n@id(\"x\") @message(\"m\") forbid(principal,action==Gatehouse::Action::\"attachRoute\",resource) when {resource.public};";
        let once = format_policies("x.cedar", src).unwrap();
        assert!(once.contains("// keep me"), "{once}");
        assert_eq!(format_policies("x.cedar", &once).unwrap(), once);
    }
}
