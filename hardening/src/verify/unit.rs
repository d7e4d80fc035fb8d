//! systemd units (`UNIT-0xx`): the sandboxing directives of `reference/hardening.md` (d),
//! read from the unit file (drop-ins are not merged: give them with `--unit` too).

use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;

use super::catalog::{self, Check};
use super::input::Source;
use super::{Category, Ctx, Location, ObjectRef, VerifyError};

/// One `Key=Value` line.
#[derive(Debug)]
struct Entry {
    key: String,
    value: String,
    line: usize,
}

#[derive(Debug)]
struct Section {
    name: String,
    line: usize,
    entries: Vec<Entry>,
}

/// A parsed unit file.
#[derive(Debug)]
pub(crate) struct UnitFile {
    src: Rc<Source>,
    sections: Vec<Section>,
}

impl UnitFile {
    /// Parses systemd's unit syntax: `[Section]` headers, `Key=Value` lines, `#` and `;`
    /// comments, and lines continued with a trailing backslash.
    pub(crate) fn parse(src: Rc<Source>) -> Result<Self, VerifyError> {
        let mut sections: Vec<Section> = Vec::new();
        let mut lines = src.text.lines().enumerate();
        while let Some((i, raw)) = lines.next() {
            let number = i + 1;
            let mut line = raw.trim().to_owned();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            while line.ends_with('\\') {
                line.pop();
                line.push(' ');
                match lines.next() {
                    Some((_, next)) => {
                        let next = next.trim();
                        if !(next.starts_with('#') || next.starts_with(';')) {
                            line.push_str(next);
                        }
                    }
                    None => break,
                }
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                sections.push(Section {
                    name: name.to_owned(),
                    line: number,
                    entries: Vec::new(),
                });
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(VerifyError::unparsable(
                    &src.path,
                    number,
                    format!("`{line}` is neither a [Section] header nor Key=Value"),
                ));
            };
            let Some(section) = sections.last_mut() else {
                return Err(VerifyError::unparsable(
                    &src.path,
                    number,
                    "an assignment before any [Section] header",
                ));
            };
            section.entries.push(Entry {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
                line: number,
            });
        }
        Ok(Self { src, sections })
    }

    fn name(&self) -> String {
        Path::new(&self.src.path).file_name().map_or_else(
            || self.src.path.clone(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

fn truthy(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A capability set as systemd builds it from successive assignments.
#[derive(Debug, PartialEq, Eq)]
enum CapSet {
    /// Every capability (the default bounding set).
    Full,
    /// Every capability but these.
    Except(BTreeSet<String>),
    /// Exactly these.
    Only(BTreeSet<String>),
}

impl CapSet {
    fn assign(self, value: &str) -> Self {
        if value.is_empty() {
            return Self::Only(BTreeSet::new());
        }
        let (invert, list) = match value.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let caps: BTreeSet<String> = list.split_whitespace().map(str::to_owned).collect();
        match (self, invert) {
            (Self::Full, true) => Self::Except(caps),
            (Self::Full, false) => Self::Full,
            (Self::Only(s), true) => Self::Only(s.difference(&caps).cloned().collect()),
            (Self::Only(s), false) => Self::Only(s.union(&caps).cloned().collect()),
            (Self::Except(e), true) => Self::Except(e.union(&caps).cloned().collect()),
            (Self::Except(e), false) => Self::Except(e.difference(&caps).cloned().collect()),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Self::Only(s) if s.is_empty())
    }

    fn describe(&self) -> String {
        match self {
            Self::Full => "every capability".to_owned(),
            Self::Except(e) => format!(
                "every capability but {}",
                e.iter().cloned().collect::<Vec<_>>().join(" ")
            ),
            Self::Only(s) => s.iter().cloned().collect::<Vec<_>>().join(" "),
        }
    }
}

struct Service<'a> {
    section: &'a Section,
}

impl<'a> Service<'a> {
    fn all<'k>(&self, key: &'k str) -> impl Iterator<Item = &'a Entry> + use<'a, 'k> {
        self.section.entries.iter().filter(move |e| e.key == key)
    }

    fn last(&self, key: &str) -> Option<&'a Entry> {
        self.all(key).last()
    }

    fn is(&self, key: &str) -> bool {
        self.last(key).and_then(|e| truthy(&e.value)) == Some(true)
    }

    fn caps(&self, key: &str, start: CapSet) -> CapSet {
        self.all(key).fold(start, |set, e| set.assign(&e.value))
    }
}

pub(crate) fn check(ctx: &mut Ctx, unit: &UnitFile) {
    ctx.evaluated_family(Category::Unit);
    let object = ObjectRef::new("Unit", &unit.name());
    let file = unit.src.path.clone();
    let Some(section) = unit.sections.iter().find(|s| s.name == "Service") else {
        return;
    };
    let service = Service { section };
    let mut out: Vec<(&'static Check, usize, String)> = Vec::new();
    let header = section.line;
    let at = |e: Option<&Entry>| e.map_or(header, |e| e.line);

    // Who it runs as.
    let user = service.last("User").filter(|e| !e.value.is_empty());
    let dynamic = service.is("DynamicUser");
    let root = !dynamic && user.is_none_or(|u| u.value == "root" || u.value == "0");
    let bounding = service.caps("CapabilityBoundingSet", CapSet::Full);
    if root {
        let who = match user {
            Some(u) => format!("User={}", u.value),
            None => "no User= or DynamicUser=".to_owned(),
        };
        if bounding.is_empty() {
            out.push((
                catalog::UNIT_002,
                at(user),
                format!("{who}: the service runs as root (without capabilities)"),
            ));
        } else {
            out.push((
                catalog::UNIT_001,
                at(user),
                format!(
                    "{who}: the service runs as root with {}",
                    bounding.describe()
                ),
            ));
        }
    }
    for exec in service.all("ExecStart").chain(service.all("ExecStartPre")) {
        let prefixes: String = exec
            .value
            .chars()
            .take_while(|c| "-@:+!".contains(*c))
            .collect();
        if prefixes.contains('+') {
            out.push((
                catalog::UNIT_001,
                exec.line,
                format!(
                    "{}= runs with full privileges (the `+` prefix ignores User= and the sandbox)",
                    exec.key
                ),
            ));
        }
    }
    if !service.is("NoNewPrivileges") {
        out.push((
            catalog::UNIT_003,
            at(service.last("NoNewPrivileges")),
            "NoNewPrivileges is not yes".to_owned(),
        ));
    }
    if !bounding.is_empty() {
        out.push((
            catalog::UNIT_004,
            at(service.last("CapabilityBoundingSet")),
            format!("CapabilityBoundingSet keeps {}", bounding.describe()),
        ));
    }
    let ambient = service.caps("AmbientCapabilities", CapSet::Only(BTreeSet::new()));
    if !ambient.is_empty() {
        out.push((
            catalog::UNIT_004,
            at(service.last("AmbientCapabilities")),
            format!("AmbientCapabilities grants {}", ambient.describe()),
        ));
    }
    let value = |key: &str| service.last(key).map(|e| e.value.as_str());
    if value("ProtectSystem") != Some("strict") {
        out.push((
            catalog::UNIT_005,
            at(service.last("ProtectSystem")),
            format!(
                "ProtectSystem is {}",
                value("ProtectSystem").unwrap_or("unset")
            ),
        ));
    }

    let group = |out: &mut Vec<(&'static Check, usize, String)>,
                 check: &'static Check,
                 problems: Vec<(Option<&Entry>, String)>| {
        if let Some((first, _)) = problems.first() {
            let line = at(*first);
            let text = problems
                .iter()
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            out.push((check, line, text));
        }
    };
    let want_yes = |keys: &[&str]| -> Vec<(Option<&Entry>, String)> {
        keys.iter()
            .filter(|k| !service.is(k))
            .map(|k| {
                let e = service.last(k);
                (
                    e,
                    format!("{k}={}", e.map_or("unset", |e| e.value.as_str())),
                )
            })
            .collect()
    };
    let mut problems = Vec::new();
    match value("ProtectHome") {
        Some(v) if truthy(v) == Some(true) || v == "read-only" || v == "tmpfs" => {}
        other => problems.push((
            service.last("ProtectHome"),
            format!("ProtectHome={}", other.unwrap_or("unset")),
        )),
    }
    problems.extend(want_yes(&["PrivateTmp"]));
    group(&mut out, catalog::UNIT_006, problems);

    let mut problems = want_yes(&["PrivateDevices"]);
    match value("DevicePolicy") {
        Some("closed" | "strict") => {}
        other => problems.push((
            service.last("DevicePolicy"),
            format!("DevicePolicy={}", other.unwrap_or("unset")),
        )),
    }
    group(&mut out, catalog::UNIT_007, problems);

    group(
        &mut out,
        catalog::UNIT_008,
        want_yes(&[
            "ProtectKernelTunables",
            "ProtectKernelModules",
            "ProtectKernelLogs",
            "ProtectControlGroups",
            "ProtectClock",
            "ProtectHostname",
        ]),
    );

    let mut problems = Vec::new();
    match value("ProtectProc") {
        Some("invisible" | "noaccess") => {}
        other => problems.push((
            service.last("ProtectProc"),
            format!("ProtectProc={}", other.unwrap_or("unset")),
        )),
    }
    if value("ProcSubset") != Some("pid") {
        problems.push((
            service.last("ProcSubset"),
            format!("ProcSubset={}", value("ProcSubset").unwrap_or("unset")),
        ));
    }
    group(&mut out, catalog::UNIT_009, problems);

    let mut problems = Vec::new();
    match value("RestrictNamespaces") {
        Some(v) if truthy(v) == Some(true) => {}
        Some(v) if truthy(v).is_none() && !v.starts_with('~') => {}
        other => problems.push((
            service.last("RestrictNamespaces"),
            format!("RestrictNamespaces={}", other.unwrap_or("unset")),
        )),
    }
    problems.extend(want_yes(&[
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "LockPersonality",
        "MemoryDenyWriteExecute",
    ]));
    group(&mut out, catalog::UNIT_010, problems);

    let families: Vec<&Entry> = service.all("RestrictAddressFamilies").collect();
    let allowed = ["AF_INET", "AF_INET6", "AF_UNIX", "none"];
    if families.is_empty() {
        out.push((
            catalog::UNIT_011,
            header,
            "RestrictAddressFamilies is unset: every socket family (netlink, packet) is allowed"
                .to_owned(),
        ));
    } else if let Some(deny) = families
        .iter()
        .find(|e| e.value.starts_with('~') || e.value.is_empty())
    {
        out.push((
            catalog::UNIT_011,
            deny.line,
            format!(
                "RestrictAddressFamilies={} is a deny list (or a reset): use an allow list",
                deny.value
            ),
        ));
    } else {
        let extra: Vec<&str> = families
            .iter()
            .flat_map(|e| e.value.split_whitespace())
            .filter(|f| !allowed.contains(f))
            .collect();
        if !extra.is_empty() {
            out.push((
                catalog::UNIT_011,
                families.last().map_or(header, |e| e.line),
                format!("RestrictAddressFamilies allows {}", extra.join(" ")),
            ));
        }
    }

    let mut problems = Vec::new();
    if value("SystemCallArchitectures") != Some("native") {
        problems.push((
            service.last("SystemCallArchitectures"),
            format!(
                "SystemCallArchitectures={}",
                value("SystemCallArchitectures").unwrap_or("unset")
            ),
        ));
    }
    let filters: Vec<&Entry> = service.all("SystemCallFilter").collect();
    if !filters
        .iter()
        .any(|e| !e.value.is_empty() && !e.value.starts_with('~'))
    {
        problems.push((
            filters.first().copied(),
            "no SystemCallFilter allow list (@system-service)".to_owned(),
        ));
    }
    for group_name in ["@privileged", "@resources"] {
        let denied = filters.iter().any(|e| {
            e.value
                .strip_prefix('~')
                .is_some_and(|rest| rest.split_whitespace().any(|g| g == group_name))
        });
        if !denied {
            problems.push((
                filters.first().copied(),
                format!("SystemCallFilter does not deny {group_name}"),
            ));
        }
    }
    group(&mut out, catalog::UNIT_012, problems);

    match value("UMask").map(|v| u32::from_str_radix(v, 8)) {
        Some(Ok(mask)) if mask & 0o077 == 0o077 => {}
        _ => out.push((
            catalog::UNIT_013,
            at(service.last("UMask")),
            format!("UMask is {}", value("UMask").unwrap_or("unset (0022)")),
        )),
    }

    let runs_envoy = service.all("ExecStart").any(|e| {
        e.value
            .trim_start_matches(|c| "-@:+!".contains(c))
            .split_whitespace()
            .next()
            .and_then(|p| Path::new(p).file_name())
            .is_some_and(|n| n == "envoy")
    });
    if runs_envoy
        && ![
            "LoadCredential",
            "LoadCredentialEncrypted",
            "SetCredential",
            "BindReadOnlyPaths",
        ]
        .iter()
        .any(|k| service.last(k).is_some())
    {
        out.push((
            catalog::UNIT_014,
            header,
            "the unit runs Envoy but hands it no certificate as a credential (LoadCredential=) or read-only bind (BindReadOnlyPaths=)".to_owned(),
        ));
    }
    if service.last("IPAddressDeny").is_none() {
        out.push((
            catalog::UNIT_015,
            header,
            "no IPAddressDeny=: the service may talk to any address".to_owned(),
        ));
    }
    for (check, line, message) in out {
        ctx.report(
            check,
            object.clone(),
            Some(Location::at(&file, line)),
            format!("{}: {message}", object.name),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets_follow_systemd() {
        assert!(CapSet::Full.assign("").is_empty());
        assert!(!CapSet::Full.assign("~CAP_SYS_ADMIN").is_empty());
        assert!(
            CapSet::Full
                .assign("")
                .assign("CAP_A")
                .assign("~CAP_A")
                .is_empty()
        );
        assert!(
            !CapSet::Only(BTreeSet::new())
                .assign("CAP_NET_BIND_SERVICE")
                .is_empty()
        );
    }

    #[test]
    fn parse_sections_and_continuations() {
        let src = Rc::new(Source {
            path: "x.service".to_owned(),
            text:
                "# c\n[Unit]\nDescription=x\n[Service]\nExecStart=/bin/envoy \\\n  -c /x\nUser=\n"
                    .to_owned(),
        });
        let unit = UnitFile::parse(src).unwrap();
        assert_eq!(unit.sections.len(), 2);
        let service = &unit.sections[1];
        assert_eq!(service.line, 4);
        assert_eq!(service.entries[0].value, "/bin/envoy  -c /x");
        assert_eq!(service.entries[1].line, 7);
        let bad = Rc::new(Source {
            path: "y.service".to_owned(),
            text: "[Service]\nnonsense\n".to_owned(),
        });
        match UnitFile::parse(bad) {
            Err(VerifyError::Unparsable { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }
}
