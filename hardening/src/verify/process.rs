//! Processes (`PROC-0xx`): what `/proc/PID` says of a running Envoy (through
//! [`crate::sandbox::inspect_process`]): not root, no group root, no capability, `no_new_privs`,
//! a read-only root; the seccomp mode is reported.

use crate::sandbox::{Violation, inspect_process};

use super::catalog;
use super::{Category, Ctx, ObjectRef, VerifyError};

/// Inspects `pid`; returns its command name.
pub(crate) fn check(ctx: &mut Ctx, pid: u32) -> Result<String, VerifyError> {
    ctx.evaluated_family(Category::Process);
    let security =
        inspect_process(pid).map_err(|e| VerifyError::could_not(format!("process {pid}"), e))?;
    let object = ObjectRef::new("Process", &format!("{}[{pid}]", security.name));
    for violation in security.violations() {
        let check = match &violation {
            Violation::RootUser { .. } => catalog::PROC_001,
            Violation::RootGroup { .. } | Violation::RootSupplementaryGroup => catalog::PROC_002,
            Violation::Capabilities { .. } => catalog::PROC_003,
            Violation::NoNewPrivsOff | Violation::NoNewPrivsUnknown => catalog::PROC_004,
            Violation::WritableRoot => catalog::PROC_005,
        };
        ctx.report(
            check,
            object.clone(),
            None,
            format!("{} (pid {pid}) {violation}", security.name),
        );
    }
    if security.seccomp != Some(2) {
        ctx.report(
            catalog::PROC_006,
            object,
            None,
            format!(
                "{} (pid {pid}) has no seccomp filter (Seccomp: {})",
                security.name,
                security
                    .seccomp
                    .map_or_else(|| "not reported".to_owned(), |m| m.to_string())
            ),
        );
    }
    Ok(security.name)
}
