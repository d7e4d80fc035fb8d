//! Turning a [`SandboxSpec`](super::SandboxSpec) into the ordered steps the setup script runs.
//!
//! Every path is resolved on the host first: each symbolic link met on the way is recorded (so
//! it can be recreated in the new root, where it points at the same place) and the mounts use
//! the canonical path, both as source and as target. The mounts are then ordered parents
//! first. A mount point is created by the script only where the enclosing mount is one of the
//! sandbox's own tmpfs (its root or a writable tmpfs); inside a read-only bind it must already
//! exist on the host, which is checked here. So the script never writes to the host.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::SandboxError;

/// What a path is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    /// A regular file, a device, a socket …: anything a file can be bind-mounted over.
    File,
}

/// What is mounted at a path of the new root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MountKind {
    /// The host path, bound read-only, `nosuid`, `nodev`.
    Bind,
    /// A host device node, bound read-only and `nosuid` (writes to `/dev/null` still work).
    Device,
    /// A fresh tmpfs owned by the sandbox user, mode 0700, `nosuid`, `nodev`, `noexec`.
    Tmpfs,
    /// An empty read-only tmpfs with mode 000 over a directory to hide.
    HideDir,
    /// `/dev/null` bound read-only over a file to hide.
    HideFile,
    /// A new proc instance with `hidepid=invisible` (Linux 5.8 and later).
    Proc,
    /// The host's `/proc` bound read-only (older kernels, where a new proc mount would share
    /// the host's options).
    ProcBind,
}

impl MountKind {
    fn op(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Device => "dev",
            Self::Tmpfs => "tmpfs",
            Self::HideDir => "hide-dir",
            Self::HideFile => "hide-file",
            Self::Proc => "proc",
            Self::ProcBind => "proc-bind",
        }
    }

    fn role(self) -> &'static str {
        match self {
            Self::Bind | Self::Device => "readable",
            Self::Tmpfs => "writable",
            Self::HideDir | Self::HideFile => "hidden",
            Self::Proc | Self::ProcBind => "proc",
        }
    }
}

/// One step of the setup script, relative to the new root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// `mkdir -p` on the sandbox's own tmpfs.
    Mkdir(PathBuf),
    /// Create an empty file on the sandbox's own tmpfs (a mount point for a file).
    Mkfile(PathBuf),
    /// Mount something at the path.
    Mount(MountKind, PathBuf),
    /// `ln -s TARGET PATH` on the sandbox's own tmpfs.
    Symlink { at: PathBuf, target: PathBuf },
}

impl Step {
    /// The script's arguments for this step: `OP:PATH`, plus the target for a symlink.
    pub(super) fn args(&self) -> Vec<OsString> {
        let tagged = |tag: &str, path: &Path| {
            let mut arg = OsString::from(tag);
            arg.push(":");
            arg.push(path.as_os_str());
            arg
        };
        match self {
            Self::Mkdir(p) => vec![tagged("mkdir", p)],
            Self::Mkfile(p) => vec![tagged("mkfile", p)],
            Self::Mount(kind, p) => vec![tagged(kind.op(), p)],
            Self::Symlink { at, target } => {
                vec![tagged("symlink", at), target.as_os_str().to_owned()]
            }
        }
    }
}

/// A path the new root must have, and where the request came from (for messages).
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub(super) path: PathBuf,
    pub(super) what: Want,
    pub(super) role: &'static str,
}

/// What a [`Request`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// Read-only; an error when missing.
    Readable,
    /// Read-only when it exists; skipped when missing.
    ReadableIfPresent,
    /// A device node, bound as is; skipped when missing.
    Device,
    /// A writable tmpfs.
    Writable,
    /// Hidden (an empty directory, or an empty file); skipped when missing.
    Hidden,
    /// The proc filesystem.
    Proc { per_mount_options: bool },
}

/// A symbolic link met while resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    at: PathBuf,
    target: PathBuf,
}

/// A resolved path: canonical, and what it is (`None`: it does not exist).
#[derive(Debug)]
struct Resolved {
    path: PathBuf,
    kind: Option<Kind>,
}

#[derive(Debug, Clone)]
struct Mount {
    path: PathBuf,
    kind: MountKind,
    host_kind: Option<Kind>,
    role: &'static str,
}

/// Symbolic links followed while resolving one path, at most (as the kernel's `ELOOP`).
const MAX_LINKS: u32 = 40;

/// The steps that build the new root, in order: mounts parents first, each preceded by the
/// creation of its mount point when that is on the sandbox's own tmpfs, then the symbolic
/// links.
pub(super) fn plan(
    requests: &[Request],
    staging: &Path,
    extra_links: &[(PathBuf, PathBuf)],
) -> Result<Vec<Step>, SandboxError> {
    let mut links: Vec<Link> = extra_links
        .iter()
        .map(|(at, target)| Link {
            at: at.clone(),
            target: target.clone(),
        })
        .collect();
    let mut mounts: Vec<Mount> = Vec::new();
    let mut hidden: Vec<Mount> = Vec::new();
    for request in requests {
        let path = &request.path;
        if !path.is_absolute() {
            return Err(SandboxError::RelativePath {
                path: path.clone(),
                role: request.role,
            });
        }
        let mut hops = 0;
        let resolved = resolve(path, &mut links, &mut hops).map_err(|e| match e {
            ResolveError::Io(source) => SandboxError::Resolve {
                path: path.clone(),
                role: request.role,
                source,
            },
            ResolveError::Loop => SandboxError::SymlinkLoop {
                path: path.clone(),
                role: request.role,
            },
        })?;
        let canonical = resolved.path;
        if canonical.parent().is_none() {
            return Err(SandboxError::WholeRoot {
                path: path.clone(),
                role: request.role,
            });
        }
        if canonical.starts_with(staging) {
            return Err(SandboxError::InsideStaging {
                path: path.clone(),
                role: request.role,
                staging: staging.to_path_buf(),
            });
        }
        let is_proc = matches!(request.what, Want::Proc { .. });
        if !is_proc && canonical.starts_with("/proc") {
            return Err(SandboxError::UnderProc {
                path: path.clone(),
                role: request.role,
            });
        }
        let kind = match (request.what, resolved.kind) {
            (Want::Readable, None) => {
                return Err(SandboxError::Missing {
                    path: path.clone(),
                    role: request.role,
                });
            }
            (Want::ReadableIfPresent | Want::Device | Want::Hidden, None) => continue,
            (Want::Readable | Want::ReadableIfPresent, Some(_)) => MountKind::Bind,
            (Want::Device, Some(_)) => MountKind::Device,
            (Want::Writable, Some(Kind::File)) => {
                return Err(SandboxError::NotADirectory {
                    path: path.clone(),
                    role: request.role,
                });
            }
            (Want::Writable, _) => MountKind::Tmpfs,
            (Want::Hidden, Some(Kind::Dir)) => MountKind::HideDir,
            (Want::Hidden, Some(Kind::File)) => MountKind::HideFile,
            (Want::Proc { per_mount_options }, _) => {
                if per_mount_options {
                    MountKind::Proc
                } else {
                    MountKind::ProcBind
                }
            }
        };
        let mount = Mount {
            path: canonical,
            kind,
            host_kind: resolved.kind,
            role: request.role,
        };
        if let Some(existing) = mounts
            .iter()
            .chain(hidden.iter())
            .find(|m| m.path == mount.path)
        {
            let both_read_only = matches!(existing.kind, MountKind::Bind | MountKind::Device)
                && matches!(mount.kind, MountKind::Bind | MountKind::Device);
            if both_read_only || existing.kind == mount.kind {
                continue;
            }
            return Err(SandboxError::Conflict {
                path: mount.path,
                first: existing.kind.role(),
                second: mount.kind.role(),
            });
        }
        if matches!(kind, MountKind::HideDir | MountKind::HideFile) {
            hidden.push(mount);
        } else {
            mounts.push(mount);
        }
    }

    // Hiding matters only where a read-only bind shows the host: elsewhere the path is
    // already absent from the new root.
    for h in hidden {
        if matches!(
            enclosing(&mounts, &h.path).map(|m| m.kind),
            Some(MountKind::Bind)
        ) {
            mounts.push(h);
        }
    }

    mounts.sort_by(|a, b| {
        depth(&a.path)
            .cmp(&depth(&b.path))
            .then_with(|| a.path.cmp(&b.path))
    });

    let mut steps = Vec::new();
    for (i, mount) in mounts.iter().enumerate() {
        let before = mounts.get(..i).unwrap_or_default();
        match enclosing(before, &mount.path) {
            None
            | Some(Mount {
                kind: MountKind::Tmpfs,
                ..
            }) => {
                // On our own tmpfs: create the mount point.
                let is_dir = match mount.kind {
                    MountKind::Tmpfs
                    | MountKind::HideDir
                    | MountKind::Proc
                    | MountKind::ProcBind => true,
                    MountKind::HideFile | MountKind::Device => false,
                    MountKind::Bind => mount.host_kind == Some(Kind::Dir),
                };
                if is_dir {
                    steps.push(Step::Mkdir(mount.path.clone()));
                } else {
                    if let Some(parent) = mount.path.parent() {
                        steps.push(Step::Mkdir(parent.to_path_buf()));
                    }
                    steps.push(Step::Mkfile(mount.path.clone()));
                }
            }
            Some(parent) if parent.kind == MountKind::Bind => {
                // Inside a read-only bind: the mount point is the host's and must exist.
                if mount.host_kind.is_none() {
                    return Err(SandboxError::NestedMissing {
                        path: mount.path.clone(),
                        role: mount.role,
                        parent: parent.path.clone(),
                    });
                }
            }
            Some(parent) => {
                return Err(SandboxError::Nested {
                    path: mount.path.clone(),
                    role: mount.role,
                    parent: parent.path.clone(),
                    parent_role: parent.kind.role(),
                });
            }
        }
        steps.push(Step::Mount(mount.kind, mount.path.clone()));
    }

    let mut seen: Vec<&Path> = Vec::new();
    for link in &links {
        if seen.contains(&link.at.as_path()) || mounts.iter().any(|m| m.path == link.at) {
            continue;
        }
        seen.push(&link.at);
        match enclosing(&mounts, &link.at) {
            None
            | Some(Mount {
                kind: MountKind::Tmpfs,
                ..
            }) => {
                if let Some(parent) = link.at.parent() {
                    steps.push(Step::Mkdir(parent.to_path_buf()));
                }
                steps.push(Step::Symlink {
                    at: link.at.clone(),
                    target: link.target.clone(),
                });
            }
            // Inside a bind the link is the host's own; inside a hidden or special mount it
            // is not wanted.
            Some(_) => {}
        }
    }
    // Mount points are created before anything is mounted over them and links after every
    // mount, so a second `mkdir -p` of the same directory is always redundant.
    let mut made: Vec<PathBuf> = Vec::new();
    steps.retain(|s| match s {
        Step::Mkdir(p) if p.as_os_str() == "/" || made.contains(p) => false,
        Step::Mkdir(p) => {
            made.push(p.clone());
            true
        }
        _ => true,
    });
    Ok(steps)
}

/// The deepest mount strictly above `path`.
fn enclosing<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| m.path != path && path.starts_with(&m.path))
        .max_by_key(|m| depth(&m.path))
}

fn depth(path: &Path) -> usize {
    path.components().count()
}

#[derive(Debug)]
enum ResolveError {
    Io(io::Error),
    Loop,
}

/// Resolves `path` (absolute) component by component the way the kernel would, recording
/// every symbolic link met (including links to links). A missing component ends the walk: the
/// rest is appended as is, and the result has no kind.
fn resolve(path: &Path, links: &mut Vec<Link>, hops: &mut u32) -> Result<Resolved, ResolveError> {
    let components: Vec<Component<'_>> = path.components().collect();
    let mut current = PathBuf::from("/");
    for (i, component) in components.iter().enumerate() {
        let rest = || components.iter().skip(i + 1);
        match component {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                current.pop();
            }
            Component::Normal(name) => {
                let next = current.join(name);
                match std::fs::symlink_metadata(&next) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        *hops += 1;
                        if *hops > MAX_LINKS {
                            return Err(ResolveError::Loop);
                        }
                        let target = std::fs::read_link(&next).map_err(ResolveError::Io)?;
                        // An absolute target replaces `current` when joined.
                        let absolute = current.join(&target);
                        links.push(Link { at: next, target });
                        let inner = resolve(&absolute, links, hops)?;
                        if inner.kind.is_none() {
                            return Ok(Resolved {
                                path: append(inner.path, rest()),
                                kind: None,
                            });
                        }
                        current = inner.path;
                    }
                    Ok(_) => current = next,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Ok(Resolved {
                            path: append(next, rest()),
                            kind: None,
                        });
                    }
                    Err(e) => return Err(ResolveError::Io(e)),
                }
            }
        }
    }
    let meta = std::fs::metadata(&current).map_err(ResolveError::Io)?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    Ok(Resolved {
        path: current,
        kind: Some(kind),
    })
}

fn append<'a>(mut base: PathBuf, rest: impl Iterator<Item = &'a Component<'a>>) -> PathBuf {
    for component in rest {
        match component {
            Component::ParentDir => {
                base.pop();
            }
            Component::Normal(name) => base.push(name),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn req(path: &Path, what: Want) -> Request {
        Request {
            path: path.to_path_buf(),
            what,
            role: "test",
        }
    }

    fn rendered(steps: &[Step], base: &Path) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                s.args()
                    .iter()
                    .map(|a| a.to_string_lossy().replace(&*base.to_string_lossy(), "B"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn links_are_recreated_and_mounts_are_ordered_parents_first() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("real/lib")).unwrap();
        std::fs::write(base.join("real/lib/ld.so"), "").unwrap();
        symlink("real/lib", base.join("lib")).unwrap();
        // A link to a link.
        symlink(base.join("lib/ld.so"), base.join("ld-link")).unwrap();
        symlink("ld-link", base.join("ld")).unwrap();
        std::fs::create_dir_all(base.join("etc/boot")).unwrap();
        std::fs::create_dir_all(base.join("pki/gw/a")).unwrap();
        std::fs::create_dir_all(base.join("pki/gw/b")).unwrap();

        let steps = plan(
            &[
                req(&base.join("ld"), Want::Readable),
                req(&base.join("lib"), Want::Readable),
                req(&base.join("pki/gw"), Want::Readable),
                req(&base.join("pki/gw/b"), Want::Hidden),
                req(&base.join("etc/nothing"), Want::Hidden),
                req(&base.join("missing"), Want::ReadableIfPresent),
                req(&base.join("tmp"), Want::Writable),
                req(&base.join("tmp/x/boot"), Want::Writable),
                req(&base.join("etc/boot"), Want::Readable),
                req(&base.join("lib"), Want::Readable),
            ],
            Path::new("/staging"),
            &[],
        )
        .unwrap();
        assert_eq!(
            rendered(&steps, &base),
            [
                "mkdir:B/tmp",
                "tmpfs:B/tmp",
                "mkdir:B/etc/boot",
                "bind:B/etc/boot",
                "mkdir:B/pki/gw",
                "bind:B/pki/gw",
                "mkdir:B/real/lib",
                "bind:B/real/lib",
                "hide-dir:B/pki/gw/b",
                "bind:B/real/lib/ld.so",
                "mkdir:B/tmp/x/boot",
                "tmpfs:B/tmp/x/boot",
                "mkdir:B",
                "symlink:B/ld ld-link",
                "symlink:B/ld-link B/lib/ld.so",
                "symlink:B/lib real/lib",
            ]
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("ro")).unwrap();
        std::fs::write(base.join("file"), "").unwrap();
        symlink("loop", base.join("loop")).unwrap();
        let staging = Path::new("/staging");
        let err = |requests: &[Request]| plan(requests, staging, &[]).unwrap_err().to_string();

        assert!(err(&[req(Path::new("relative"), Want::Readable)]).contains("is not absolute"),);
        assert!(err(&[req(&base.join("nope"), Want::Readable)]).contains("does not exist"));
        assert!(err(&[req(&base.join("loop"), Want::Readable)]).contains("symbolic links"));
        assert!(err(&[req(Path::new("/"), Want::Writable)]).contains("whole filesystem"));
        assert!(err(&[req(Path::new("/proc/1"), Want::Readable)]).contains("/proc"));
        assert!(err(&[req(Path::new("/staging/x"), Want::Writable)]).contains("staging"));
        assert!(err(&[req(&base.join("file"), Want::Writable)]).contains("not a directory"));
        assert!(
            err(&[
                req(&base.join("ro"), Want::Readable),
                req(&base.join("ro"), Want::Writable)
            ])
            .contains("both readable and writable")
        );
        // A writable directory inside a read-only bind must exist on the host.
        assert!(
            err(&[
                req(&base.join("ro"), Want::Readable),
                req(&base.join("ro/run"), Want::Writable)
            ])
            .contains("does not exist on the host")
        );
        // Nothing can be mounted inside a hidden directory.
        std::fs::create_dir_all(base.join("ro/secret/inner")).unwrap();
        assert!(
            err(&[
                req(&base.join("ro"), Want::Readable),
                req(&base.join("ro/secret"), Want::Hidden),
                req(&base.join("ro/secret/inner"), Want::Readable),
            ])
            .contains("inside hidden")
        );
    }
}
