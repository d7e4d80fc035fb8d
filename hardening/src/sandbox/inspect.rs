//! Reading the security state of a running process from `/proc/PID/status` and
//! `/proc/PID/mountinfo`, as the host sees it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::SandboxError;

/// The four ids of a process, in the order of the `Uid:` and `Gid:` lines of `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// The real id.
    pub real: u32,
    /// The effective id (what permission checks use, with `filesystem` for files).
    pub effective: u32,
    /// The saved set-id (what the process can switch back to).
    pub saved: u32,
    /// The filesystem id (what file permission checks use).
    pub filesystem: u32,
}

impl Ids {
    /// Whether any of the four ids is 0 (root).
    #[must_use]
    pub fn any_root(&self) -> bool {
        [self.real, self.effective, self.saved, self.filesystem].contains(&0)
    }
}

impl fmt::Display for Ids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.real, self.effective, self.saved, self.filesystem
        )
    }
}

/// One of the five capability sets of a Linux process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilitySet {
    /// `CapInh`: preserved across `execve` for files that allow them.
    Inheritable,
    /// `CapPrm`: what the process may make effective.
    Permitted,
    /// `CapEff`: what the kernel checks now.
    Effective,
    /// `CapBnd`: the limit on what any later `execve` can gain.
    Bounding,
    /// `CapAmb`: kept across `execve` of unprivileged programs.
    Ambient,
}

impl CapabilitySet {
    /// The name of the set as `/proc/PID/status` spells its line (`CapEff` …).
    #[must_use]
    pub fn status_field(self) -> &'static str {
        match self {
            Self::Inheritable => "CapInh",
            Self::Permitted => "CapPrm",
            Self::Effective => "CapEff",
            Self::Bounding => "CapBnd",
            Self::Ambient => "CapAmb",
        }
    }
}

impl fmt::Display for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Inheritable => "inheritable",
            Self::Permitted => "permitted",
            Self::Effective => "effective",
            Self::Bounding => "bounding",
            Self::Ambient => "ambient",
        })
    }
}

/// The capability sets of a process, as bit masks (bit N is capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `CapInh`.
    pub inheritable: u64,
    /// `CapPrm`.
    pub permitted: u64,
    /// `CapEff`.
    pub effective: u64,
    /// `CapBnd`.
    pub bounding: u64,
    /// `CapAmb`; `None` on kernels without ambient capabilities (before 4.3), which means none.
    pub ambient: Option<u64>,
}

impl Capabilities {
    /// Every set with its mask, in the order inheritable, permitted, effective, bounding,
    /// ambient (a missing ambient set counts as empty).
    #[must_use]
    pub fn sets(&self) -> [(CapabilitySet, u64); 5] {
        [
            (CapabilitySet::Inheritable, self.inheritable),
            (CapabilitySet::Permitted, self.permitted),
            (CapabilitySet::Effective, self.effective),
            (CapabilitySet::Bounding, self.bounding),
            (CapabilitySet::Ambient, self.ambient.unwrap_or(0)),
        ]
    }

    /// Whether all five sets are empty.
    #[must_use]
    pub fn all_empty(&self) -> bool {
        self.sets().iter().all(|(_, mask)| *mask == 0)
    }
}

/// What `/proc` says about a process's privileges and filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSecurity {
    /// The process id (as the host sees it).
    pub pid: u32,
    /// The `Name:` line: the command name (`envoy`).
    pub name: String,
    /// The user ids (`Uid:`).
    pub uid: Ids,
    /// The group ids (`Gid:`).
    pub gid: Ids,
    /// The supplementary groups (`Groups:`).
    pub groups: Vec<u32>,
    /// The capability sets (`CapInh`, `CapPrm`, `CapEff`, `CapBnd`, `CapAmb`).
    pub capabilities: Capabilities,
    /// `NoNewPrivs:`; `None` on kernels that do not report it (before 4.10).
    pub no_new_privs: Option<bool>,
    /// `Seccomp:` mode (0 none, 1 strict, 2 filter); `None` when the kernel has no seccomp.
    /// Reported, not judged: the sandbox installs no seccomp filter (yet).
    pub seccomp: Option<u32>,
    /// Whether every mount at `/` in the process's mount namespace, as its root sees it, is
    /// read-only (the mount or its filesystem).
    pub root_read_only: bool,
    /// The mount points the process sees that are mounted read-write, as the process sees
    /// them (`/tmp`, `/proc` …), in `mountinfo` order. Informative: some must be writable.
    pub writable_mounts: Vec<PathBuf>,
}

/// Something about a process that the sandbox should have taken away.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// One of the user ids is 0.
    RootUser {
        /// The process's user ids.
        uid: Ids,
    },
    /// One of the group ids is 0.
    RootGroup {
        /// The process's group ids.
        gid: Ids,
    },
    /// Group 0 is one of the supplementary groups.
    RootSupplementaryGroup,
    /// A capability set is not empty.
    Capabilities {
        /// The set.
        set: CapabilitySet,
        /// Its mask (bit N is capability N).
        mask: u64,
    },
    /// `no_new_privs` is off: an `execve` of a set-user-id program could gain privileges.
    NoNewPrivsOff,
    /// The kernel does not report `no_new_privs`, so it cannot be checked.
    NoNewPrivsUnknown,
    /// The root filesystem, as the process sees it, is writable.
    WritableRoot,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RootUser { uid } => write!(
                f,
                "runs with user id 0 (real/effective/saved/filesystem uid {uid}): start it through the sandbox so it runs as an unprivileged user"
            ),
            Self::RootGroup { gid } => write!(
                f,
                "runs with group id 0 (real/effective/saved/filesystem gid {gid}): start it through the sandbox so it runs as an unprivileged group"
            ),
            Self::RootSupplementaryGroup => f.write_str(
                "has supplementary group 0 (root): clear its supplementary groups (`setpriv --clear-groups`)",
            ),
            Self::Capabilities { set, mask } => write!(
                f,
                "holds capabilities in its {set} set ({} {mask:016x}: {}): drop every capability (`setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all` as an unprivileged user)",
                set.status_field(),
                capability_names(*mask).join(", ")
            ),
            Self::NoNewPrivsOff => f.write_str(
                "no_new_privs is off, so executing a set-user-id program could gain privileges: set it (`setpriv --no-new-privs`)",
            ),
            Self::NoNewPrivsUnknown => f.write_str(
                "the kernel does not report no_new_privs (NoNewPrivs: in /proc/PID/status, Linux 4.10 and later), so it cannot be checked: upgrade the kernel",
            ),
            Self::WritableRoot => f.write_str(
                "its root filesystem is writable: run it in the sandbox, whose root is read-only",
            ),
        }
    }
}

impl ProcessSecurity {
    /// What is not hardened: any id 0 (user, group, supplementary group), any capability in
    /// any set, `no_new_privs` off (or not reported), a writable root filesystem. Empty for a
    /// process the sandbox started as root.
    #[must_use]
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        if self.uid.any_root() {
            out.push(Violation::RootUser { uid: self.uid });
        }
        if self.gid.any_root() {
            out.push(Violation::RootGroup { gid: self.gid });
        }
        if self.groups.contains(&0) {
            out.push(Violation::RootSupplementaryGroup);
        }
        for (set, mask) in self.capabilities.sets() {
            if mask != 0 {
                out.push(Violation::Capabilities { set, mask });
            }
        }
        match self.no_new_privs {
            Some(true) => {}
            Some(false) => out.push(Violation::NoNewPrivsOff),
            None => out.push(Violation::NoNewPrivsUnknown),
        }
        if !self.root_read_only {
            out.push(Violation::WritableRoot);
        }
        out
    }
}

/// Reads `/proc/PID/status` and `/proc/PID/mountinfo` of a running process and returns its
/// ids, capabilities, `no_new_privs`, seccomp mode and whether its root filesystem is
/// read-only. This is the host's view: a user namespace that maps the process to root shows
/// here as uid 0. Reading another user's `mountinfo` needs root (or the same user).
///
/// # Errors
///
/// [`SandboxError::ReadProc`] when a file cannot be read (the process is gone, or we may not
/// read it), [`SandboxError::ParseProc`] when a line is missing or malformed.
pub fn inspect_process(pid: u32) -> Result<ProcessSecurity, SandboxError> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let status_path = dir.join("status");
    let status = read(&status_path, pid)?;
    let mountinfo_path = dir.join("mountinfo");
    let mountinfo = read(&mountinfo_path, pid)?;
    let mut security = parse_status(pid, &status).map_err(|detail| SandboxError::ParseProc {
        path: status_path,
        detail,
    })?;
    let mounts = parse_mountinfo(&mountinfo).map_err(|detail| SandboxError::ParseProc {
        path: mountinfo_path,
        detail,
    })?;
    security.root_read_only = mounts.root_read_only;
    security.writable_mounts = mounts.writable;
    Ok(security)
}

fn read(path: &Path, pid: u32) -> Result<String, SandboxError> {
    std::fs::read_to_string(path).map_err(|source| SandboxError::ReadProc {
        path: path.to_path_buf(),
        pid,
        source,
    })
}

/// Parses `/proc/PID/status`; the mount fields are left for [`parse_mountinfo`] (read-only
/// root false, no writable mounts).
pub(crate) fn parse_status(pid: u32, text: &str) -> Result<ProcessSecurity, String> {
    let field = |name: &str| -> Option<&str> {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then_some(value.trim())
        })
    };
    let required = |name: &str| field(name).ok_or_else(|| format!("no `{name}:` line"));
    let ids = |name: &str| -> Result<Ids, String> {
        let value = required(name)?;
        let numbers = value
            .split_whitespace()
            .map(str::parse::<u32>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{name}:` line `{value}`: {e}"))?;
        match numbers.as_slice() {
            [real, effective, saved, filesystem] => Ok(Ids {
                real: *real,
                effective: *effective,
                saved: *saved,
                filesystem: *filesystem,
            }),
            _ => Err(format!("`{name}:` line `{value}` does not have four ids")),
        }
    };
    let mask = |value: &str, name: &str| -> Result<u64, String> {
        u64::from_str_radix(value, 16).map_err(|e| format!("`{name}:` line `{value}`: {e}"))
    };
    let cap = |name: &str| -> Result<u64, String> { mask(required(name)?, name) };
    let optional_cap = |name: &str| -> Result<Option<u64>, String> {
        field(name).map(|value| mask(value, name)).transpose()
    };
    let flag = |name: &str| -> Result<Option<u32>, String> {
        field(name)
            .map(|value| {
                value
                    .parse::<u32>()
                    .map_err(|e| format!("`{name}:` line `{value}`: {e}"))
            })
            .transpose()
    };
    let groups = required("Groups")?
        .split_whitespace()
        .map(str::parse::<u32>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`Groups:` line: {e}"))?;
    Ok(ProcessSecurity {
        pid,
        name: required("Name")?.to_owned(),
        uid: ids("Uid")?,
        gid: ids("Gid")?,
        groups,
        capabilities: Capabilities {
            inheritable: cap("CapInh")?,
            permitted: cap("CapPrm")?,
            effective: cap("CapEff")?,
            bounding: cap("CapBnd")?,
            ambient: optional_cap("CapAmb")?,
        },
        no_new_privs: flag("NoNewPrivs")?.map(|v| v != 0),
        seccomp: flag("Seccomp")?,
        root_read_only: false,
        writable_mounts: Vec::new(),
    })
}

/// What [`parse_mountinfo`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mounts {
    /// Every mount at `/` is read-only (and there is at least one).
    pub(crate) root_read_only: bool,
    /// The read-write mount points.
    pub(crate) writable: Vec<PathBuf>,
}

/// Parses `/proc/PID/mountinfo` (see `proc(5)`): field 5 is the mount point, field 6 the mount
/// options, and after the `-` separator come the filesystem type, the source and the
/// filesystem's options. A mount is read-only when either option list says `ro`.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Mounts, String> {
    let mut roots = 0usize;
    let mut root_read_only = true;
    let mut writable = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mount_point), Some(options)) = (fields.get(4), fields.get(5)) else {
            return Err(format!("line `{line}` has fewer than six fields"));
        };
        let super_options = fields
            .iter()
            .position(|f| *f == "-")
            .and_then(|sep| fields.get(sep + 3))
            .ok_or_else(|| format!("line `{line}` has no filesystem options after `-`"))?;
        let has_ro = |list: &str| list.split(',').any(|o| o == "ro");
        let read_only = has_ro(options) || has_ro(super_options);
        let mount_point = unescape(mount_point);
        if mount_point == "/" {
            roots += 1;
            root_read_only &= read_only;
        }
        if !read_only {
            writable.push(PathBuf::from(mount_point));
        }
    }
    if roots == 0 {
        return Err("no mount at `/`".to_owned());
    }
    Ok(Mounts {
        root_read_only,
        writable,
    })
}

/// Undoes the octal escapes (`\040` for a space …) of `mountinfo` paths.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The names of the capabilities in `mask` (`cap_sys_admin` …), lowest bit first; bits past
/// the ones this build knows show as `cap_N`.
#[must_use]
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| {
            usize::try_from(bit)
                .ok()
                .and_then(|i| CAPABILITY_NAMES.get(i))
                .map_or_else(|| format!("cap_{bit}"), |name| format!("cap_{name}"))
        })
        .collect()
}

/// `linux/capability.h`, in bit order.
const CAPABILITY_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

#[cfg(test)]
mod tests {
    use super::*;

    const HARDENED: &str = "Name:\tenvoy\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t65532\t65532\t65532\t65532\nGid:\t65532\t65532\t65532\t65532\nGroups:\t \nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t0\nSeccomp_filters:\t0\n";

    const ROOT: &str = "Name:\tsleep\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 \nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n";

    fn with_root(mut s: ProcessSecurity, read_only: bool) -> ProcessSecurity {
        s.root_read_only = read_only;
        s
    }

    #[test]
    fn a_hardened_process_has_no_violations() {
        let s = parse_status(7, HARDENED).unwrap();
        assert_eq!(s.name, "envoy");
        assert_eq!(
            s.uid,
            Ids {
                real: 65532,
                effective: 65532,
                saved: 65532,
                filesystem: 65532
            }
        );
        assert!(s.groups.is_empty());
        assert!(s.capabilities.all_empty());
        assert_eq!(s.no_new_privs, Some(true));
        assert_eq!(s.seccomp, Some(0));
        assert_eq!(with_root(s, true).violations(), vec![]);
    }

    #[test]
    fn a_root_process_has_every_violation() {
        let v = with_root(parse_status(1, ROOT).unwrap(), false).violations();
        assert!(
            matches!(v.first(), Some(Violation::RootUser { .. })),
            "{v:?}"
        );
        assert!(v.contains(&Violation::RootSupplementaryGroup));
        assert!(v.contains(&Violation::Capabilities {
            set: CapabilitySet::Effective,
            mask: 0x1fffeffffff
        }));
        assert!(v.contains(&Violation::NoNewPrivsOff));
        assert!(v.contains(&Violation::WritableRoot));
        let text = v
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("cap_sys_admin"), "{text}");
        assert!(
            !text.contains("cap_sys_resource"),
            "bit 24 is clear: {text}"
        );
        assert!(text.contains("cap_checkpoint_restore"), "{text}");
    }

    #[test]
    fn one_saved_root_uid_is_a_violation() {
        let text = HARDENED.replace(
            "Uid:\t65532\t65532\t65532\t65532",
            "Uid:\t65532\t65532\t0\t65532",
        );
        let v = with_root(parse_status(7, &text).unwrap(), true).violations();
        assert!(
            matches!(v.as_slice(), [Violation::RootUser { .. }]),
            "{v:?}"
        );
    }

    #[test]
    fn missing_and_malformed_lines_are_errors() {
        let no_uid = HARDENED.replace("Uid:", "Xid:");
        assert_eq!(parse_status(7, &no_uid).unwrap_err(), "no `Uid:` line");
        let short = HARDENED.replace("Uid:\t65532\t65532\t65532\t65532", "Uid:\t1\t2");
        assert!(parse_status(7, &short).unwrap_err().contains("four ids"));
        let bad = HARDENED.replace("CapEff:\t0000000000000000", "CapEff:\tzz");
        assert!(parse_status(7, &bad).unwrap_err().contains("CapEff"));
        let old_kernel = HARDENED.replace("NoNewPrivs:\t1\n", "");
        let v = with_root(parse_status(7, &old_kernel).unwrap(), true).violations();
        assert_eq!(v, vec![Violation::NoNewPrivsUnknown]);
    }

    #[test]
    fn mountinfo_root_and_writable_mounts() {
        let sandbox = "301 300 0:50 / / ro,nosuid,nodev,noexec,relatime - tmpfs gatehouse-root rw,size=1024k,mode=755\n\
             302 301 254:0 /usr/lib /usr/lib ro,nosuid,nodev,relatime - ext4 /dev/vda rw\n\
             303 301 0:51 / /tmp rw,nosuid,nodev,noexec,relatime - tmpfs gatehouse-tmpfs rw,size=16384k,mode=700,uid=65532,gid=65532\n\
             304 303 254:0 /tmp/a\\040b /tmp/a\\040b ro,relatime - ext4 /dev/vda rw\n\
             305 301 0:52 / /proc rw,nosuid,nodev,noexec,relatime - proc gatehouse-proc rw,hidepid=invisible\n";
        let m = parse_mountinfo(sandbox).unwrap();
        assert!(m.root_read_only);
        assert_eq!(
            m.writable,
            vec![PathBuf::from("/tmp"), PathBuf::from("/proc")]
        );
        let host = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n";
        assert!(!parse_mountinfo(host).unwrap().root_read_only);
        // A read-only filesystem under a read-write mount is read-only.
        let sb_ro = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda ro\n";
        assert!(parse_mountinfo(sb_ro).unwrap().root_read_only);
        // Two mounts stacked at `/`: both must be read-only.
        let stacked = "43 42 254:0 / / ro,relatime - ext4 /dev/vda rw\n63 43 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        assert!(!parse_mountinfo(stacked).unwrap().root_read_only);
        assert!(parse_mountinfo("1 2 3\n").is_err());
        assert!(parse_mountinfo("").is_err());
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
    }
}
