//! The sandbox that runs the standalone Envoy (`gatehouse up`), and a checker of a running
//! process (`gatehouse verify --process PID`).
//!
//! [`SandboxSpec::command`] turns "run this program with these arguments" into a
//! [`std::process::Command`] that, when started as root:
//!
//! - gives the program a private mount namespace (`unshare --mount --propagation private`)
//!   whose root is a new, read-only tmpfs holding only what the program needs: the paths of
//!   [`SandboxSpec::readable`] and [`SandboxSpec::system_paths`] (shared libraries, DNS files)
//!   bound read-only (`ro,nosuid,nodev`) at the same paths, the program itself, `setpriv`,
//!   `/dev/null`, `/dev/zero`, `/dev/random`, `/dev/urandom`, a proc instance that shows
//!   only the sandbox user's own processes (`hidepid=invisible`), and the directories of
//!   [`SandboxSpec::writable_tmpfs`] as small tmpfs owned by the sandbox user (`noexec`).
//!   Nothing else of the host's filesystem is visible; [`SandboxSpec::hidden`] additionally
//!   covers paths inside a readable directory with an empty mount;
//! - then `chroot`s into it and runs `setpriv --reuid=65532 --regid=65532 --clear-groups
//!   --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs -- PROGRAM ARGS`.
//!
//! So the program runs as uid and gid 65532 (non-root as the host sees it: there is no user
//! namespace), with no supplementary groups, all five capability sets empty, `no_new_privs`
//! set, and a filesystem it can write only in its tmpfs. Every step `exec`s the next
//! (`unshare` → `sh` → `chroot` → `setpriv` → the program), so the spawned child's pid *is*
//! the program's pid. The environment is cleared except `PATH`; add variables with
//! [`Command::env`]. The program starts in `/` of the new root, so give it absolute paths.
//!
//! The exact script is [`SETUP_SCRIPT`]; the command line is
//!
//! ```text
//! unshare --mount --propagation private -- /usr/bin/sh -c SETUP_SCRIPT gatehouse-sandbox \
//!     STAGING UID GID TMPFS_BYTES STEP... -- \
//!     /usr/bin/setpriv --reuid=UID --regid=GID --clear-groups --inh-caps=-all \
//!     --ambient-caps=-all --bounding-set=-all --no-new-privs -- PROGRAM ARGS...
//! ```
//!
//! where each `STEP` is one argument `OP:PATH` (`mkdir:`, `mkfile:`, `bind:`, `dev:`, `tmpfs:`,
//! `hide-dir:`, `hide-file:`, `proc:`, `proc-bind:`, and `symlink:PATH TARGET`), computed and
//! checked in Rust. Paths are only ever passed as separate arguments and used quoted; the
//! script never evaluates them.
//!
//! When **not** started as root (or [`SandboxMode::Unprivileged`] is asked for), the command is
//! only `setpriv --no-new-privs --inh-caps=-all --ambient-caps=-all -- PROGRAM ARGS`: the
//! program keeps the current user and the host's filesystem, and [`SandboxedCommand::warnings`]
//! says so. Started as root but without the capabilities to mount and change users (in a
//! restricted container), [`SandboxSpec::command`] refuses rather than run the program as
//! root.
//!
//! What it does not do: it shares the host's network (Envoy must listen) and pid namespaces
//! (other processes of the same uid are visible to it; run each gateway with its own uid), and
//! installs no seccomp filter. It needs Linux 5.8 or later for the private proc instance
//! (earlier kernels get the host's `/proc` bound read-only, with a warning), and
//! `unshare`/`setpriv`/`mount` from util-linux and `chroot`/`mkdir`/`ln` from coreutils.

mod inspect;
mod plan;

use std::ffi::OsString;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use inspect::{
    Capabilities, CapabilitySet, Ids, ProcessSecurity, Violation, capability_names, inspect_process,
};

use plan::{Request, Want};

/// The uid the sandboxed program runs as by default (the distroless `nonroot` user).
pub const DEFAULT_UID: u32 = 65532;
/// The gid the sandboxed program runs as by default.
pub const DEFAULT_GID: u32 = 65532;
/// The default size limit of each writable tmpfs: 16 MiB.
pub const DEFAULT_TMPFS_BYTES: u64 = 16 * 1024 * 1024;

#[doc = concat!(
    "The shell script `sh -c` runs inside the new mount namespace, as root, before dropping ",
    "privileges. Its arguments: `$0` is `gatehouse-sandbox`, then the staging directory (where ",
    "the new root is assembled: a tmpfs is mounted on it, in the private namespace only), the ",
    "uid, the gid, the size of each writable tmpfs in bytes, the steps, `--`, and the command ",
    "to run in the new root. It exits 125 with a `gatehouse sandbox: …` line on stderr when a ",
    "step fails, before the program starts.\n\n```sh\n",
    include_str!("sandbox/setup.sh"),
    "```"
)]
pub const SETUP_SCRIPT: &str = include_str!("sandbox/setup.sh");

/// The device nodes every sandbox gets (bound from the host, read-only, still writable).
const DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];

/// Symbolic links every sandbox gets (as in a normal `/dev`).
const DEV_LINKS: [(&str, &str); 4] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// Where tools are looked for after `PATH`.
const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Capabilities the full sandbox needs (bit numbers): setgid, setuid, setpcap (to drop the
/// bounding set), sys_chroot, sys_admin (to mount).
const NEEDED_CAPABILITIES: [(u32, &str); 5] = [
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (8, "CAP_SETPCAP"),
    (18, "CAP_SYS_CHROOT"),
    (21, "CAP_SYS_ADMIN"),
];

/// What to run a program with: the user, what it may read, where it may write, what to hide.
///
/// Paths must be absolute. Each readable, writable and hidden path is resolved on the host
/// (symbolic links included: the links met on the way are recreated in the new root, and the
/// mount is made at the canonical path), and appears at the same path in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The uid to run as when started as root; not 0. Default [`DEFAULT_UID`].
    pub uid: u32,
    /// The gid to run as when started as root; not 0. Default [`DEFAULT_GID`].
    pub gid: u32,
    /// Files and directories the program may read (bound read-only, `nosuid`, `nodev`); each
    /// must exist. For Envoy: its bootstrap directory and its own certificate directory. The
    /// program itself is always added. A directory is bound without what is mounted below
    /// it on the host: list such mounts separately.
    pub readable: Vec<PathBuf>,
    /// System files and directories bound read-only when they exist, skipped when not.
    /// Default [`SandboxSpec::default_system_paths`]: the shared-library directories, the
    /// dynamic loader's cache, and the files DNS resolution reads.
    pub system_paths: Vec<PathBuf>,
    /// Directories that get a fresh tmpfs owned by the sandbox user (mode 0700, `nosuid`,
    /// `nodev`, `noexec`, at most [`SandboxSpec::tmpfs_size_bytes`]); the only places it can
    /// write. Default `/tmp`. Envoy with `--disable-hot-restart` and its logs on stderr
    /// writes nowhere else.
    pub writable_tmpfs: Vec<PathBuf>,
    /// The size limit of each writable tmpfs, in bytes. Default [`DEFAULT_TMPFS_BYTES`].
    pub tmpfs_size_bytes: u64,
    /// Paths inside a readable directory to make unreadable: a directory is covered by an
    /// empty read-only tmpfs with mode 000, a file by `/dev/null` (`nodev`, so opening it
    /// fails). A path that does not exist when the command is built, or that the sandbox
    /// does not show anyway, is skipped. Default none.
    pub hidden: Vec<PathBuf>,
    /// An existing directory the new root is assembled on: a tmpfs is mounted over it in the
    /// sandbox's private mount namespace only, so the host never sees anything written there.
    /// Nothing readable or writable may be inside it. Default `/dev/shm`.
    pub staging_dir: PathBuf,
}

impl Default for SandboxSpec {
    fn default() -> Self {
        Self {
            uid: DEFAULT_UID,
            gid: DEFAULT_GID,
            readable: Vec::new(),
            system_paths: Self::default_system_paths(),
            writable_tmpfs: vec![PathBuf::from("/tmp")],
            tmpfs_size_bytes: DEFAULT_TMPFS_BYTES,
            hidden: Vec::new(),
            staging_dir: PathBuf::from("/dev/shm"),
        }
    }
}

/// How much of the sandbox can be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Started as root with the needed capabilities: the whole sandbox.
    Full,
    /// Not root: only `no_new_privs` and clearing the inheritable and ambient capabilities;
    /// the program keeps the current user and sees the host's filesystem.
    Unprivileged,
}

impl SandboxMode {
    /// [`SandboxMode::Full`] when this process's effective uid is 0 and it holds
    /// `CAP_SETGID`, `CAP_SETUID`, `CAP_SETPCAP`, `CAP_SYS_CHROOT` and `CAP_SYS_ADMIN`;
    /// [`SandboxMode::Unprivileged`] when the effective uid is not 0.
    ///
    /// # Errors
    ///
    /// [`SandboxError::MissingCapabilities`] when running as root without one of those
    /// capabilities (the program would stay root), and the errors of reading
    /// `/proc/self/status`.
    pub fn detect() -> Result<Self, SandboxError> {
        let path = PathBuf::from("/proc/self/status");
        let text = std::fs::read_to_string(&path).map_err(|source| SandboxError::ReadProc {
            path: path.clone(),
            pid: std::process::id(),
            source,
        })?;
        let me = inspect::parse_status(std::process::id(), &text)
            .map_err(|detail| SandboxError::ParseProc { path, detail })?;
        if me.uid.effective != 0 {
            return Ok(Self::Unprivileged);
        }
        let missing: Vec<&str> = NEEDED_CAPABILITIES
            .iter()
            .filter(|(bit, _)| me.capabilities.effective & (1u64 << bit) == 0)
            .map(|(_, name)| *name)
            .collect();
        if missing.is_empty() {
            Ok(Self::Full)
        } else {
            Err(SandboxError::MissingCapabilities {
                missing: missing.join(", "),
            })
        }
    }
}

/// A command ready to spawn, and what it could not apply.
#[derive(Debug)]
pub struct SandboxedCommand {
    /// The command. Its spawned child's pid is the program's pid. Set its stdio, environment
    /// and process group as needed before spawning.
    pub command: Command,
    /// Which sandbox it applies.
    pub mode: SandboxMode,
    /// What the sandbox could not apply or has to mention, one sentence each (empty for a
    /// full sandbox of a binary program). Log them.
    pub warnings: Vec<String>,
}

/// Why a sandboxed command could not be built, or a process could not be inspected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A tool the sandbox runs is not installed.
    #[error(
        "`{tool}` not found in PATH nor in /usr/sbin, /usr/bin, /sbin or /bin: install {package}"
    )]
    ToolNotFound {
        /// The tool (`unshare` …).
        tool: &'static str,
        /// The package that has it.
        package: &'static str,
    },
    /// The program to run does not exist.
    #[error(
        "program `{}` not found (as a path, or in PATH): give the path of an executable file",
        program.display()
    )]
    ProgramNotFound {
        /// The program as given.
        program: PathBuf,
    },
    /// The sandbox user or group is root.
    #[error("the sandbox {what} is 0 (root): use an unprivileged id such as 65532")]
    RootId {
        /// `uid` or `gid`.
        what: &'static str,
    },
    /// Root without the capabilities to build the sandbox.
    #[error(
        "running as root without {missing}, which the sandbox needs to mount its filesystem and drop privileges: run with full root privileges, or as an unprivileged user"
    )]
    MissingCapabilities {
        /// The missing capabilities, comma-separated.
        missing: String,
    },
    /// The staging directory is not a directory.
    #[error(
        "the sandbox staging directory `{}` is not an existing directory ({source}): set `staging_dir` to an empty directory",
        path.display()
    )]
    Staging {
        /// The staging directory.
        path: PathBuf,
        /// What was wrong.
        source: std::io::Error,
    },
    /// A path of the spec is relative.
    #[error("{role} path `{}` is not absolute: give an absolute path", path.display())]
    RelativePath {
        /// The path.
        path: PathBuf,
        /// What it was given as (`readable` …).
        role: &'static str,
    },
    /// A path of the spec is `/`.
    #[error(
        "{role} path `{}` is the whole filesystem: list only the directories the program needs",
        path.display()
    )]
    WholeRoot {
        /// The path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
    },
    /// A path of the spec could not be resolved.
    #[error("{role} path `{}` cannot be resolved: {source}: fix it or remove it", path.display())]
    Resolve {
        /// The path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// Resolving a path met too many symbolic links.
    #[error(
        "{role} path `{}` goes through more than 40 symbolic links (a loop?): fix the links",
        path.display()
    )]
    SymlinkLoop {
        /// The path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
    },
    /// A required path does not exist.
    #[error("{role} path `{}` does not exist: create it or remove it", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
    },
    /// A writable path is not a directory.
    #[error("{role} path `{}` is not a directory: a tmpfs can only cover a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
    },
    /// A path is under `/proc`.
    #[error("{role} path `{}` is under /proc, which the sandbox mounts itself: remove it", path.display())]
    UnderProc {
        /// The path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
    },
    /// A path is inside the staging directory.
    #[error(
        "{role} path `{}` is inside the staging directory `{}`, which the sandbox covers: set `staging_dir` to another directory",
        path.display(),
        staging.display()
    )]
    InsideStaging {
        /// The path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
        /// The staging directory.
        staging: PathBuf,
    },
    /// The same path was asked for twice, differently.
    #[error("`{}` is both {first} and {second}: list it once", path.display())]
    Conflict {
        /// The canonical path.
        path: PathBuf,
        /// The first role.
        first: &'static str,
        /// The second role.
        second: &'static str,
    },
    /// A mount point inside a read-only directory is missing on the host.
    #[error(
        "{role} path `{}` is inside readable directory `{}` but does not exist on the host, and the sandbox cannot create it there: create it on the host first",
        path.display(),
        parent.display()
    )]
    NestedMissing {
        /// The canonical path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
        /// The enclosing readable directory.
        parent: PathBuf,
    },
    /// A path is inside a hidden path, or inside `/proc` or a device.
    #[error(
        "{role} path `{}` is inside {parent_role} path `{}`, which cannot contain it: remove one of them",
        path.display(),
        parent.display()
    )]
    Nested {
        /// The canonical path.
        path: PathBuf,
        /// What it was given as.
        role: &'static str,
        /// The enclosing path.
        parent: PathBuf,
        /// What the enclosing path is.
        parent_role: &'static str,
    },
    /// A file of `/proc` could not be read.
    #[error("cannot read `{}`: {source}: is process {pid} running, and are we root?", path.display())]
    ReadProc {
        /// The file.
        path: PathBuf,
        /// The process.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
    /// A file of `/proc` is not what `proc(5)` describes.
    #[error("`{}` is malformed: {detail}", path.display())]
    ParseProc {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl SandboxSpec {
    /// The default spec: uid and gid 65532, the system paths, a 16 MiB tmpfs on `/tmp`,
    /// nothing else readable, nothing hidden, staging on `/dev/shm`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The default spec, reading also Envoy's bootstrap directory and its certificate
    /// directory (`DIR/gateways/NS/NAME`). Nothing else of the certificate store is visible:
    /// not the CA, not the other gateways.
    #[must_use]
    pub fn for_envoy(bootstrap_dir: &Path, cert_dir: &Path) -> Self {
        Self {
            readable: vec![bootstrap_dir.to_path_buf(), cert_dir.to_path_buf()],
            ..Self::default()
        }
    }

    /// The default [`SandboxSpec::system_paths`]: `/lib`, `/lib64`, `/usr/lib`, `/usr/lib64`,
    /// `/etc/ld.so.cache`, `/etc/resolv.conf`, `/etc/hosts`, `/etc/nsswitch.conf`,
    /// `/etc/host.conf`, `/etc/gai.conf`.
    #[must_use]
    pub fn default_system_paths() -> Vec<PathBuf> {
        [
            "/lib",
            "/lib64",
            "/usr/lib",
            "/usr/lib64",
            "/etc/ld.so.cache",
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/nsswitch.conf",
            "/etc/host.conf",
            "/etc/gai.conf",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect()
    }

    /// The command that runs `program` with `args` in this sandbox, as much of it as this
    /// process can apply ([`SandboxMode::detect`]).
    ///
    /// # Errors
    ///
    /// See [`SandboxSpec::command_in_mode`] and [`SandboxMode::detect`].
    pub fn command(
        &self,
        program: &Path,
        args: &[OsString],
    ) -> Result<SandboxedCommand, SandboxError> {
        self.command_in_mode(SandboxMode::detect()?, program, args)
    }

    /// The command that runs `program` (a path, or a name looked up in `PATH`) with `args`,
    /// applying `mode`. Everything is checked now: the tools, the program, every path of the
    /// spec; nothing is written anywhere. [`SandboxMode::Full`] needs root when spawned.
    ///
    /// # Errors
    ///
    /// A [`SandboxError`] saying which tool, path or id is wrong and how to fix it.
    pub fn command_in_mode(
        &self,
        mode: SandboxMode,
        program: &Path,
        args: &[OsString],
    ) -> Result<SandboxedCommand, SandboxError> {
        let program = locate_program(program)?;
        let setpriv = find_tool("setpriv", "util-linux")?;
        let mut warnings = Vec::new();
        match mode {
            SandboxMode::Unprivileged => {
                let mut command = Command::new(&setpriv);
                command
                    .args([
                        "--no-new-privs",
                        "--inh-caps=-all",
                        "--ambient-caps=-all",
                        // If the supervisor dies, the program is told to stop too.
                        "--pdeathsig=TERM",
                        "--",
                    ])
                    .arg(&program)
                    .args(args);
                clear_env(&mut command, &[&setpriv]);
                warnings.push(format!(
                    "not started as root: `{}` runs as the current user, not as uid {} and gid {}, and sees the host's filesystem (no read-only root, no tmpfs, nothing hidden); only no_new_privs is set and the inheritable and ambient capabilities are cleared",
                    program.display(),
                    self.uid,
                    self.gid
                ));
                Ok(SandboxedCommand {
                    command,
                    mode,
                    warnings,
                })
            }
            SandboxMode::Full => {
                let command = self.full(&program, &setpriv, args, &mut warnings)?;
                Ok(SandboxedCommand {
                    command,
                    mode,
                    warnings,
                })
            }
        }
    }

    fn full(
        &self,
        program: &Path,
        setpriv: &Path,
        args: &[OsString],
        warnings: &mut Vec<String>,
    ) -> Result<Command, SandboxError> {
        if self.uid == 0 {
            return Err(SandboxError::RootId { what: "uid" });
        }
        if self.gid == 0 {
            return Err(SandboxError::RootId { what: "gid" });
        }
        let unshare = find_tool("unshare", "util-linux")?;
        let shell = find_tool("sh", "a POSIX shell (dash or bash)")?;
        let tools = [
            find_tool("mount", "util-linux (mount)")?,
            find_tool("chroot", "coreutils")?,
            find_tool("mkdir", "coreutils")?,
            find_tool("ln", "coreutils")?,
        ];
        let staging = std::fs::canonicalize(&self.staging_dir)
            .and_then(|p| {
                if p.is_dir() {
                    Ok(p)
                } else {
                    Err(std::io::Error::other("not a directory"))
                }
            })
            .map_err(|source| SandboxError::Staging {
                path: self.staging_dir.clone(),
                source,
            })?;

        let mut requests: Vec<Request> = Vec::new();
        let mut add = |paths: &[PathBuf], what: Want, role: &'static str| {
            requests.extend(paths.iter().map(|path| Request {
                path: path.clone(),
                what,
                role,
            }));
        };
        add(&self.system_paths, Want::ReadableIfPresent, "system");
        add(&self.readable, Want::Readable, "readable");
        add(&[program.to_path_buf()], Want::Readable, "program");
        add(&[setpriv.to_path_buf()], Want::Readable, "setpriv");
        if let Some(interpreter) = script_interpreter(program) {
            warnings.push(format!(
                "`{}` is a script run by `{}`: the interpreter is made readable, but whatever else it loads must be listed in `readable`; prefer running the binary itself",
                program.display(),
                interpreter.display()
            ));
            add(&[interpreter], Want::Readable, "interpreter");
        }
        let devices: Vec<PathBuf> = DEVICES.iter().map(PathBuf::from).collect();
        add(&devices, Want::Device, "device");
        add(&self.writable_tmpfs, Want::Writable, "writable");
        add(&self.hidden, Want::Hidden, "hidden");
        let per_mount_options = proc_has_per_mount_options();
        if !per_mount_options {
            warnings.push(
                "this kernel is older than 5.8, so the sandbox cannot have a private proc instance: it gets the host's /proc, read-only, and can list every process".to_owned(),
            );
        }
        add(
            &[PathBuf::from("/proc")],
            Want::Proc { per_mount_options },
            "proc",
        );
        let links: Vec<(PathBuf, PathBuf)> = DEV_LINKS
            .iter()
            .map(|(at, target)| (PathBuf::from(at), PathBuf::from(target)))
            .collect();
        let steps = plan::plan(&requests, &staging, &links)?;

        let mut command = Command::new(&unshare);
        command
            .args(["--mount", "--propagation", "private", "--"])
            .arg(&shell)
            .arg("-c")
            .arg(SETUP_SCRIPT)
            .arg("gatehouse-sandbox")
            .arg(&staging)
            .arg(self.uid.to_string())
            .arg(self.gid.to_string())
            .arg(self.tmpfs_size_bytes.to_string());
        for step in &steps {
            command.args(step.args());
        }
        command
            .arg("--")
            .arg(setpriv)
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args([
                "--clear-groups",
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                // If the supervisor dies (even by SIGKILL), the program gets SIGTERM: no
                // orphaned Envoy keeps serving a configuration nobody manages.
                "--pdeathsig=TERM",
                "--",
            ])
            .arg(program)
            .args(args);
        let mut tool_paths: Vec<&Path> = tools.iter().map(PathBuf::as_path).collect();
        tool_paths.push(&unshare);
        clear_env(&mut command, &tool_paths);
        Ok(command)
    }
}

/// Clears the environment but for a `PATH` of the tools' directories and the usual ones.
fn clear_env(command: &mut Command, tools: &[&Path]) {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in tools
        .iter()
        .filter_map(|t| t.parent().map(Path::to_path_buf))
        .chain(TOOL_DIRS.iter().map(PathBuf::from))
    {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    command.env_clear();
    if let Ok(path) = std::env::join_paths(dirs) {
        command.env("PATH", path);
    }
}

/// `program` as an absolute path: looked up in `PATH` when it is a bare name, made absolute
/// otherwise. It must be an executable file.
fn locate_program(program: &Path) -> Result<PathBuf, SandboxError> {
    let not_found = || SandboxError::ProgramNotFound {
        program: program.to_path_buf(),
    };
    let bare = program.components().count() == 1 && !program.is_absolute();
    let found = if bare {
        search_path(program.as_os_str())
    } else {
        std::path::absolute(program)
            .ok()
            .filter(|p| is_executable(p))
    };
    found.ok_or_else(not_found)
}

fn find_tool(tool: &'static str, package: &'static str) -> Result<PathBuf, SandboxError> {
    search_path(tool.as_ref()).ok_or(SandboxError::ToolNotFound { tool, package })
}

fn search_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    let from_env: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    from_env
        .into_iter()
        .filter(|dir| dir.is_absolute())
        .chain(TOOL_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The interpreter of a `#!` script (its first word), if `program` is one.
fn script_interpreter(program: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(program)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let head = head.get(..n)?;
    let line = head.strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.split_whitespace().next().map(PathBuf::from)
}

/// Whether each proc mount has its own options (`hidepid=invisible`): Linux 5.8 and later.
fn proc_has_per_mount_options() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    release_at_least(&release, (5, 8))
}

/// Whether a kernel release string (`6.18.44-fc-v657`) is at least `major.minor`; false when
/// it cannot be read.
fn release_at_least(release: &str, wanted: (u32, u32)) -> bool {
    let mut numbers = release
        .trim()
        .split(['.', '-'])
        .map(|part| part.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= wanted,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_valid_shell() {
        let out = Command::new("sh")
            .args(["-n", "-c", SETUP_SCRIPT])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    #[test]
    fn root_ids_are_refused() {
        for (uid, gid, what) in [(0, 65532, "uid"), (65532, 0, "gid")] {
            let spec = SandboxSpec {
                uid,
                gid,
                ..SandboxSpec::default()
            };
            let err = spec
                .command_in_mode(SandboxMode::Full, Path::new("sleep"), &[])
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the sandbox {what} is 0 (root): use an unprivileged id such as 65532")
            );
        }
    }

    #[test]
    fn a_missing_program_is_refused() {
        let err = SandboxSpec::default()
            .command_in_mode(
                SandboxMode::Full,
                Path::new("no-such-program-gatehouse"),
                &[],
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("program `no-such-program-gatehouse` not found"),
            "{err}"
        );
    }

    #[test]
    fn the_unprivileged_command_only_sets_no_new_privs() {
        let built = SandboxSpec::default()
            .command_in_mode(SandboxMode::Unprivileged, Path::new("sleep"), &["1".into()])
            .unwrap();
        let args: Vec<_> = built.command.get_args().collect();
        assert_eq!(
            args.get(..5).unwrap(),
            [
                "--no-new-privs",
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--pdeathsig=TERM",
                "--"
            ]
        );
        assert_eq!(built.warnings.len(), 1);
        assert!(
            built
                .warnings
                .first()
                .unwrap()
                .starts_with("not started as root")
        );
    }

    #[test]
    fn kernel_releases_and_scripts() {
        assert!(release_at_least("6.18.44-fc-v657\n", (5, 8)));
        assert!(release_at_least("5.8.0", (5, 8)));
        assert!(release_at_least("5.10", (5, 8)));
        assert!(!release_at_least("5.7.19", (5, 8)));
        assert!(!release_at_least("4.18.0-553.el8_10.x86_64", (5, 8)));
        assert!(!release_at_least("", (5, 8)));
        assert!(!release_at_least("six", (5, 8)));

        let tmp = tempfile::tempdir().unwrap();
        let script = tmp.path().join("envoy");
        std::fs::write(&script, "#!/opt/venv/bin/python3 -u\nimport sys\n").unwrap();
        assert_eq!(
            script_interpreter(&script),
            Some(PathBuf::from("/opt/venv/bin/python3"))
        );
        let binary = tmp.path().join("bin");
        std::fs::write(&binary, b"\x7fELF\x02\x01").unwrap();
        assert_eq!(script_interpreter(&binary), None);
        assert_eq!(script_interpreter(Path::new("/no/such/file")), None);
    }
}
