//! The standalone units' restrictions, applied to the real processes: the controller
//! (`gatehouse serve`) and Envoy start and talk mTLS to each other under the sandbox that
//! `deploy/profiles/standalone/gatehouse-{controller,envoy}.service` describe, and a pod-like
//! Envoy runs the Kubernetes profile's bootstrap with a read-only root and answers its
//! readiness probe.
//!
//! There is no systemd PID 1 on these machines (and no container runtime), so the sandbox is
//! built the way systemd builds it, from the committed unit files, with `unshare`, `mount`,
//! `setpriv` and seccomp filters loaded through libseccomp:
//!
//! - a private PID, mount, network (loopback only), UTS and IPC namespace for the whole run;
//! - per service, its own mount namespace: `ProtectSystem=strict` (every mount read-only but
//!   its `StateDirectory=`/`RuntimeDirectory=`), `PrivateTmp=`, `PrivateDevices=` (a new
//!   `/dev` with the pseudo devices only), `ProtectHome=`, `ProtectProc=invisible`,
//!   `ProcSubset=pid`; `LoadCredential=` as systemd does it (a root-made copy, 0400, owned by
//!   the service user);
//! - `User=`/`Group=` (uids 61001 and 61002), no supplementary groups, `NoNewPrivileges=`,
//!   empty bounding, inheritable and ambient capability sets (`setpriv`), `LimitNOFILE=`
//!   (capped by this host's hard limit), `UMask=`;
//! - seccomp, as separate filters in systemd's order: `MemoryDenyWriteExecute=`,
//!   `RestrictAddressFamilies=`, `RestrictNamespaces=`, `RestrictSUIDSGID=`,
//!   `LockPersonality=`, then the `SystemCallFilter=` allow list expanded by
//!   `systemd-analyze syscall-filter`, with `SystemCallErrorNumber=EPERM`, native ABI only.
//!
//! Not applied, and listed in [`NOT_EMULATED`]: `PrivateUsers=`, `DevicePolicy=`,
//! `KeyringMode=`, `RemoveIPC=`, `IPAddressDeny=`/`IPAddressAllow=` (the whole run has no
//! network but loopback). A directive this test does not know fails it, so a new line in a
//! unit needs a decision here.
//!
//! A probe under each unit's settings shows the restrictions bite (read-only root, no
//! capabilities, no netlink socket, no W+X memory, other users' keys unreadable, ...). The pod
//! Envoy runs as uid/gid 65532 with group 65532 (`fsGroup`), no capabilities,
//! `no_new_privs`, every mount read-only, the ConfigMap (0444) and Secret (0440) mounted at
//! the paths of the Deployment; its seccomp profile (`RuntimeDefault`) is the runtime's and is
//! not applied here.
//!
//! Needs root (it switches users and mounts), `unshare`, `setpriv`, `findmnt`, `ip`, `curl`,
//! `/usr/bin/python3` and `libseccomp.so.2`; a missing one fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_deploy::kubernetes::{self, HardenedParams};

/// The whole run, as root in fresh namespaces. Prints `key=value` lines.
const SANDBOX_SH: &str = r#"# Runs as root inside `unshare --mount --net --uts --ipc --pid --fork --mount-proc`: a private
# host for the standalone units and a pod-like Envoy. Prints `key=value` lines.
set -eu
say() { printf '%s\n' "$*"; }
ip link set lo up

# The host as the units expect it: /usr/local/bin/{gatehouse,envoy}, /etc/gatehouse/envoy,
# the controller's state in /var/lib/gatehouse, an empty /run.
mount -t overlay overlay -o "lowerdir=$SB/etc-extra:/etc" /etc
mount -t overlay overlay -o "lowerdir=$SB/bin-extra:/usr/local/bin" /usr/local/bin
mount --bind "$GATEHOUSE_REAL" /usr/local/bin/gatehouse
mount --bind "$ENVOY_REAL" /usr/local/bin/envoy
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir -m 0700 "$C_WRITABLE"
cp -a "$SB/pki" "$C_WRITABLE/pki"
chown -R "$C_UID:$C_GID" "$C_WRITABLE"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sandbox
cp "$SB"/helper/* /run/sandbox/
# LoadCredential=ID:PATH, as systemd does it: a copy made by root, owned by the service user,
# 0400, in a 0500 directory.
mkdir -p "$E_CREDS_DIR"
for c in $E_CREDENTIALS; do
  id=${c%%:*}; src=${c#*:}
  cp -L "$src" "$E_CREDS_DIR/$id"
  chown "$E_UID:$E_GID" "$E_CREDS_DIR/$id"; chmod 0400 "$E_CREDS_DIR/$id"
done
chown "$E_UID:$E_GID" "$E_CREDS_DIR"; chmod 0500 "$E_CREDS_DIR"
# RuntimeDirectory=, RuntimeDirectoryMode=0700
mkdir -m 0700 "$E_WRITABLE"; chown "$E_UID:$E_GID" "$E_WRITABLE"
# The pod: its ConfigMap (0444) and its Secret (0440, group fsGroup), as the kubelet mounts them.
mkdir -p /run/pod/config /run/pod/certs
cp "$SB"/pod-config/* /run/pod/config/; chmod 0444 /run/pod/config/*
for f in chain.pem key.pem ca.pem; do cp -L "$GATEWAY_DIR/$f" /run/pod/certs/$f; done
chown root:"$POD_UID" /run/pod/certs/*; chmod 0440 /run/pod/certs/*

# One process in its sandbox: its own mount namespace (MODE=unit: the unit's file-system view;
# MODE=pod: a container's), its user, no capabilities, no_new_privs, the unit's seccomp
# filters, then its command.
service() {
  name=$1; shift
  MODE=$1 UID_=$2 GID_=$3 GROUPS_=$4 WRITABLE=$5 FAMILIES=$6 UMASK_=$7 NOFILE=$8 ALLOWED=$9
  shift 9
  BINDS=$1; shift
  export MODE UID_ GID_ GROUPS_ WRITABLE FAMILIES UMASK_ NOFILE ALLOWED BINDS
  unshare --mount --uts --propagation private /bin/sh -eu -c '
    # PrivateDevices=yes (a container gets the same): a new /dev with pseudo devices only.
    mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
    mknod -m 0666 /dev/null c 1 3; mknod -m 0666 /dev/zero c 1 5; mknod -m 0666 /dev/full c 1 7
    mknod -m 0666 /dev/random c 1 8; mknod -m 0666 /dev/urandom c 1 9
    ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
    ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
    mkdir /dev/shm; mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
    if [ "$MODE" = unit ]; then
      # ProtectProc=invisible, ProcSubset=pid
      mount -t proc -o hidepid=invisible,subset=pid,nosuid,nodev,noexec proc /proc
      # PrivateTmp=yes
      mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
      mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
      # ProtectHome=yes
      for d in /home /root /run/user; do
        if [ -d "$d" ]; then mount -t tmpfs -o ro,mode=0755,nosuid,nodev,noexec tmpfs "$d"; fi
      done
    fi
    for b in $BINDS; do mount --bind "${b%%:*}" "${b#*:}"; done
    # ProtectSystem=strict / readOnlyRootFilesystem: every mount read-only, but /dev, /proc,
    # the private /tmp and the one writable path.
    if [ "$WRITABLE" != none ]; then mount --bind "$WRITABLE" "$WRITABLE"; fi
    findmnt -rn -o TARGET | while read -r m; do
      case "$m" in
        "$WRITABLE"|/dev|/dev/*|/proc) ;;
        /tmp|/var/tmp) [ "$MODE" = unit ] || mount -o remount,bind,ro "$m" 2>/dev/null || true ;;
        *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;;
      esac
    done
    ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    if [ "$ALLOWED" = none ]; then
      exec setpriv --reuid="$UID_" --regid="$GID_" --groups="$GROUPS_" --nnp \
        --inh-caps=-all --ambient-caps=-all --bounding-set=-all "$@"
    fi
    exec setpriv --reuid="$UID_" --regid="$GID_" --clear-groups --nnp \
      --inh-caps=-all --ambient-caps=-all --bounding-set=-all \
      /usr/bin/python3 /run/sandbox/seccomp_exec.py "$ALLOWED" "$FAMILIES" "$UMASK_" -- "$@"
  ' "$name" "$@" > "$SB/$name.log" 2>&1 &
  say "$name.pid=$!"
}

admin() { curl -s --max-time 2 --unix-socket "$E_WRITABLE/admin.sock" "http://localhost$1" || true; }

C="unit $C_UID $C_GID - $C_WRITABLE $C_FAMILIES $C_UMASK $C_NOFILE /run/sandbox/controller.allowed"
E="unit $E_UID $E_GID - $E_WRITABLE $E_FAMILIES $E_UMASK $E_NOFILE /run/sandbox/envoy.allowed"
POD="pod $POD_UID $POD_UID $POD_UID none - - 65536 none"

# What the sandboxes forbid, proven by a probe under each unit's settings.
service probe-envoy $E "" /usr/bin/python3 /run/sandbox/probe.py "$E_UID" \
  "$E_CREDS_DIR/key.pem" "!$C_WRITABLE/pki/ca/ca.key" "!$GATEWAY_DIR/key.pem"
service probe-controller $C "" /usr/bin/python3 /run/sandbox/probe.py "$C_UID" \
  "$C_WRITABLE/pki/ca/ca.key" "!$E_CREDS_DIR/key.pem"
wait

service controller $C "" $C_EXEC
service envoy $E "" $E_EXEC
service pod-envoy $POD "/run/pod/config:/etc/gatehouse/envoy /run/pod/certs:/etc/gatehouse/certs" $POD_EXEC

state=
for i in $(seq 1 150); do
  state=$(admin '/stats?filter=^control_plane.connected_state$')
  case "$state" in *": 1"*) break ;; esac
  sleep 0.2
done
say "envoy.connected_state=$state"
say "envoy.server_state=$(admin /ready)"
# The pod's Envoy: its readiness listener answers once Envoy has initialised (after its first
# configuration, or the initial fetch timeouts: the controller has no configuration to send yet).
ready=
for i in $(seq 1 250); do
  ready=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:19001/ready || true)
  [ "$ready" = 200 ] && break
  sleep 0.2
done
say "pod-envoy.ready=$ready"
say "pod-envoy.other_path=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:19001/stats || true)"
say "pod-envoy.connected_state=$(curl -s --max-time 2 'http://127.0.0.1:19000/stats?filter=^control_plane.connected_state$' || true)"
say "envoy.server_state_later=$(admin /ready)"
for p in $(pgrep -x envoy) $(pgrep -x gatehouse); do
  say "proc.$p.comm=$(cat /proc/$p/comm)"
  say "proc.$p.user=$(stat -c %u /proc/$p)"
  say "proc.$p.status=$(grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/$p/status | tr -s '\t' ' ' | tr '\n' ';')"
  say "proc.$p.root=$(findmnt -N $p -n -o OPTIONS /)"
  say "proc.$p.cmdline=$(tr '\0' ' ' < /proc/$p/cmdline)"
done
say "done=1"
"#;

/// Loads a unit's seccomp filters the way systemd does, then execs the command.
const SECCOMP_EXEC_PY: &str = r#""""Applies the seccomp part of a systemd unit's sandbox, the way systemd does, then execs.

argv: ALLOWED_FILE FAMILIES UMASK -- PROGRAM ARGS...
  ALLOWED_FILE  the system calls of SystemCallFilter=, one per line (already expanded)
  FAMILIES      RestrictAddressFamilies=, comma-separated numbers
Every other call fails with EPERM (SystemCallErrorNumber=EPERM). Separate filters, as
systemd loads them: the allow list; MemoryDenyWriteExecute=; RestrictAddressFamilies=;
RestrictNamespaces=; RestrictSUIDSGID=; LockPersonality=.
"""
import ctypes, errno, os, sys

lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
lib.seccomp_release.argtypes = [ctypes.c_void_p]

class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

ALLOW = 0x7FFF0000
def ERRNO(e): return 0x00050000 | (e & 0xFFFF)
NE, LT, LE, EQ, GE, GT, MASKED_EQ = 1, 2, 3, 4, 5, 6, 7

def nr(name):
    n = lib.seccomp_syscall_resolve_name(name.encode())
    return n if n >= 0 else None

def rule(ctx, action, name, *cmps):
    n = nr(name)
    if n is None:
        return
    arr = (Cmp * max(len(cmps), 1))(*[Cmp(*c) for c in cmps])
    rc = lib.seccomp_rule_add_array(ctx, action, n, len(cmps), arr if cmps else None)
    if rc != 0:
        sys.exit(f"seccomp_rule_add {name}: {rc}")

def load(ctx):
    rc = lib.seccomp_load(ctx)
    if rc != 0:
        sys.exit(f"seccomp_load: {rc}")
    lib.seccomp_release(ctx)

allowed_file, families, umask = sys.argv[1], sys.argv[2], sys.argv[3]
assert sys.argv[4] == "--"
argv = sys.argv[5:]

# MemoryDenyWriteExecute=yes
PROT_WRITE, PROT_EXEC, SHM_EXEC = 2, 4, 0o100000
ctx = lib.seccomp_init(ALLOW)
rule(ctx, ERRNO(errno.EPERM), "mmap", (2, MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC))
rule(ctx, ERRNO(errno.EPERM), "mprotect", (2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
rule(ctx, ERRNO(errno.EPERM), "pkey_mprotect", (2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
rule(ctx, ERRNO(errno.EPERM), "shmat", (2, MASKED_EQ, SHM_EXEC, SHM_EXEC))
load(ctx)

# RestrictAddressFamilies=
allowed_af = sorted(int(f) for f in families.split(","))
ctx = lib.seccomp_init(ALLOW)
# socket(af, ...) with af not allowed: EAFNOSUPPORT, as systemd does (below the lowest, above
# the highest, and each gap in between).
rule(ctx, ERRNO(errno.EAFNOSUPPORT), "socket", (0, LT, allowed_af[0], 0))
rule(ctx, ERRNO(errno.EAFNOSUPPORT), "socket", (0, GT, allowed_af[-1], 0))
for af in range(allowed_af[0], allowed_af[-1]):
    if af not in allowed_af:
        rule(ctx, ERRNO(errno.EAFNOSUPPORT), "socket", (0, EQ, af, 0))
load(ctx)

# RestrictNamespaces=yes
CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
ctx = lib.seccomp_init(ALLOW)
rule(ctx, ERRNO(errno.EPERM), "unshare")
rule(ctx, ERRNO(errno.EPERM), "setns")
for bit in [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080]:
    rule(ctx, ERRNO(errno.EPERM), "clone", (0, MASKED_EQ, bit, bit))
rule(ctx, ERRNO(errno.ENOSYS), "clone3")
load(ctx)

# RestrictSUIDSGID=yes
S_ISUID, S_ISGID = 0o4000, 0o2000
ctx = lib.seccomp_init(ALLOW)
for bit in (S_ISUID, S_ISGID):
    rule(ctx, ERRNO(errno.EPERM), "chmod", (1, MASKED_EQ, bit, bit))
    rule(ctx, ERRNO(errno.EPERM), "fchmod", (1, MASKED_EQ, bit, bit))
    rule(ctx, ERRNO(errno.EPERM), "fchmodat", (2, MASKED_EQ, bit, bit))
load(ctx)

# LockPersonality=yes: only the current persona (PER_LINUX), as systemd does.
ctx = lib.seccomp_init(ALLOW)
rule(ctx, ERRNO(errno.EPERM), "personality", (0, NE, 0, 0))
load(ctx)

# Last, as systemd does: the allow list would block loading the filters above.
# SystemCallFilter= (allow list) + SystemCallErrorNumber=EPERM; native architecture only.
ctx = lib.seccomp_init(ERRNO(errno.EPERM))
for name in open(allowed_file).read().split():
    rule(ctx, ALLOW, name)
load(ctx)

os.umask(int(umask, 8))
os.execv(argv[0], argv)
"#;

/// Runs under a unit's sandbox as its user and reports which restrictions hold.
const PROBE_PY: &str = r#""""Runs inside a service's sandbox as the service user: prints `NAME=ok` for each
restriction that holds, `NAME=FAIL: …` otherwise."""
import errno, mmap, os, socket, sys

def check(name, fn):
    try:
        detail = fn()
    except Exception as e:  # noqa: BLE001 - the probe reports, it does not judge
        detail = f"unexpected {type(e).__name__}: {e}"
    print(f"probe.{name}=" + ("ok" if detail is None else f"FAIL: {detail}"), flush=True)

def fails(errnos, fn):
    def run():
        try:
            fn()
        except OSError as e:
            return None if e.errno in errnos else f"{errno.errorcode.get(e.errno, e.errno)}: {e}"
        return "it succeeded"
    return run

def status_field(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()

def equals(actual, expected):
    return lambda: None if actual() == expected else f"{actual()!r}, expected {expected!r}"

def write(path):
    with open(path, "w") as f:
        f.write("x")

check("uid", equals(lambda: os.getuid(), int(sys.argv[1])))
check("no_capabilities", equals(lambda: (status_field("CapEff"), status_field("CapPrm"), status_field("CapBnd"), status_field("CapAmb")), ("0000000000000000",) * 4))
check("no_new_privs", equals(lambda: status_field("NoNewPrivs"), "1"))
check("seccomp_filtered", equals(lambda: status_field("Seccomp"), "2"))
check("root_read_only", fails({errno.EROFS}, lambda: write("/etc/gatehouse/probe")))
check("usr_read_only", fails({errno.EROFS, errno.EACCES}, lambda: write("/usr/local/bin/probe")))
check("setuid_root_refused", fails({errno.EPERM}, lambda: os.setuid(0)))
check("no_netlink_socket", fails({errno.EAFNOSUPPORT}, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)))
check("no_packet_socket", fails({errno.EAFNOSUPPORT}, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)))
check("no_writable_executable_memory", fails({errno.EPERM}, lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)))
check("private_tmp_writable", lambda: (write("/tmp/probe"), None)[1])
check("umask_0077", equals(lambda: (os.open("/tmp/umask", os.O_CREAT | os.O_WRONLY, 0o666), oct(os.stat("/tmp/umask").st_mode & 0o777))[1], "0o600"))
check("no_setuid_files", fails({errno.EPERM}, lambda: os.chmod("/tmp/probe", 0o4755)))
check("other_processes_invisible", fails({errno.ENOENT}, lambda: open("/proc/1/status").read()))
check("no_kernel_tunables", fails({errno.ENOENT}, lambda: open("/proc/sys/kernel/hostname").read()))
check("no_hardware_devices", fails({errno.ENOENT}, lambda: open("/dev/mem", "rb")))
check("home_hidden", equals(lambda: os.path.exists("/root/.bashrc"), False))
for path in sys.argv[2:]:
    if path.startswith("!"):
        check("cannot_read:" + path[1:], fails({errno.EACCES, errno.ENOENT}, lambda p=path[1:]: open(p, "rb").read()))
    else:
        check("can_read:" + path, lambda p=path: (open(p, "rb").read(), None)[1])
"#;

/// Unit directives applied here (see the module doc for how).
const EMULATED: &[&str] = &[
    "Type",
    "User",
    "Group",
    "ExecStart",
    "NoNewPrivileges",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "ProtectSystem",
    "ReadOnlyPaths",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateMounts",
    "ProtectHostname",
    "ProtectProc",
    "ProcSubset",
    "LoadCredential",
    "RuntimeDirectory",
    "RuntimeDirectoryMode",
    "StateDirectory",
    "StateDirectoryMode",
    "LimitNOFILE",
    "UMask",
    "MemoryDenyWriteExecute",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "RestrictSUIDSGID",
    "LockPersonality",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "SystemCallErrorNumber",
];

/// Covered by what is applied: the mechanism that enforces them here.
const COVERED: &[(&str, &str)] = &[
    (
        "ProtectKernelTunables",
        "read-only mounts and ProcSubset=pid (no /proc/sys)",
    ),
    ("ProtectControlGroups", "read-only mounts"),
    (
        "ProtectKernelModules",
        "no capability, and ~@privileged removes the @module calls",
    ),
    ("ProtectKernelLogs", "the private /dev has no /dev/kmsg"),
    (
        "ProtectClock",
        "no capability, and ~@privileged removes the @clock calls",
    ),
    (
        "RestrictRealtime",
        "~@resources removes sched_setscheduler and friends",
    ),
];

/// Not applied here (no systemd, or no effect on a process that starts).
const NOT_EMULATED: &[&str] = &[
    "PrivateUsers",
    "DevicePolicy",
    "KeyringMode",
    "RemoveIPC",
    "IPAddressDeny",
    "IPAddressAllow",
    "Restart",
    "RestartSec",
];

const CONTROLLER_UID: u32 = 61001;
const ENVOY_UID: u32 = 61002;
const POD_UID: u32 = 65532;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `[Service]` directives of a unit file, in order (repeated keys kept).
fn service_section(unit: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(unit).unwrap();
    let mut in_service = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap();
        out.push((k.to_owned(), v.to_owned()));
    }
    out
}

fn one<'a>(directives: &'a [(String, String)], key: &str) -> &'a str {
    let values: Vec<&str> = directives
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values.len(), 1, "{key}: {values:?}");
    values[0]
}

fn all<'a>(directives: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    directives
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The system calls of a `@group`, recursively, as this host's systemd defines them.
fn expand(group: &str, cache: &mut BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    if let Some(s) = cache.get(group) {
        return s.clone();
    }
    let out = Command::new("systemd-analyze")
        .args(["syscall-filter", group])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze syscall-filter {group}"
    );
    let mut names = BTreeSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines().skip(1) {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('@') {
            names.extend(expand(t, cache));
        } else {
            names.insert(t.to_owned());
        }
    }
    cache.insert(group.to_owned(), names.clone());
    names
}

/// The allow list that the unit's `SystemCallFilter=` lines leave, in systemd's order.
fn allowed_syscalls(directives: &[(String, String)]) -> String {
    let mut cache = BTreeMap::new();
    let mut allowed: BTreeSet<String> = BTreeSet::new();
    let lines = all(directives, "SystemCallFilter");
    assert!(
        !lines.is_empty() && !lines[0].starts_with('~'),
        "an allow list comes first"
    );
    for line in lines {
        let (deny, items) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        for item in items.split_whitespace() {
            let names = if item.starts_with('@') {
                expand(item, &mut cache)
            } else {
                BTreeSet::from([item.to_owned()])
            };
            if deny {
                allowed.retain(|n| !names.contains(n));
            } else {
                allowed.extend(names);
            }
        }
    }
    assert!(
        allowed.contains("execve") && !allowed.contains("mount") && !allowed.contains("setuid")
    );
    allowed.into_iter().collect::<Vec<_>>().join("\n") + "\n"
}

fn families(directives: &[(String, String)]) -> String {
    one(directives, "RestrictAddressFamilies")
        .split_whitespace()
        .map(|f| match f {
            "AF_UNIX" => "1",
            "AF_INET" => "2",
            "AF_INET6" => "10",
            other => panic!("add {other} to this test"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn check_directives(unit: &str, directives: &[(String, String)]) {
    for (k, _) in directives {
        assert!(
            EMULATED.contains(&k.as_str())
                || COVERED.iter().any(|(c, _)| c == k)
                || NOT_EMULATED.contains(&k.as_str()),
            "{unit}: `{k}=` is neither applied nor listed as not applied by this test"
        );
    }
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().nth(1) == Some("0"))
}

fn gatehouse(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gatehouse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real Envoy binary (the venv's `envoy` is a Python launcher).
fn envoy_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_ENVOY") {
        let p = PathBuf::from(p);
        let mut head = [0u8; 4];
        fs::File::open(&p).unwrap().read_exact(&mut head).unwrap();
        if &head == b"\x7fELF" {
            return p;
        }
    }
    let venv =
        std::env::var_os("GATEHOUSE_VENV").map_or_else(|| repo().join(".venv"), PathBuf::from);
    let lib = venv.join("lib");
    let found = fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}: run `make deps`", lib.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("no Envoy binary under {}: run `make deps`", lib.display()))
}

fn kv(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn controller_and_envoy_start_and_connect_under_the_units_restrictions() {
    assert!(
        running_as_root(),
        "this test switches users and mounts file systems, as systemd would: run it as root"
    );
    for tool in [
        "unshare",
        "setpriv",
        "findmnt",
        "ip",
        "curl",
        "mount",
        "systemd-analyze",
    ] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "`{tool}` is needed by this test");
    }
    let seccomp = Command::new("/usr/bin/python3")
        .args(["-c", "import ctypes; ctypes.CDLL('libseccomp.so.2')"])
        .output()
        .unwrap();
    assert!(
        seccomp.status.success(),
        "/usr/bin/python3 with libseccomp.so.2 is needed: {seccomp:?}"
    );

    let standalone = repo().join("deploy/profiles/standalone");
    let controller = service_section(&standalone.join("gatehouse-controller.service"));
    let envoy = service_section(&standalone.join("gatehouse-envoy.service"));
    check_directives("gatehouse-controller.service", &controller);
    check_directives("gatehouse-envoy.service", &envoy);
    assert_eq!(one(&controller, "User"), "gatehouse");
    assert_eq!(one(&envoy, "User"), "gatehouse-envoy");

    // A private directory the sandboxed users can traverse (tempdir makes 0700).
    let tmp = tempfile::Builder::new()
        .prefix("gatehouse-sandbox-")
        .tempdir()
        .unwrap();
    let sb = tmp.path();
    fs::set_permissions(sb, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mkdir = |p: &str| fs::create_dir_all(sb.join(p)).unwrap();
    for d in [
        "etc-extra/gatehouse/envoy",
        "etc-extra/gatehouse/certs",
        "bin-extra",
        "helper",
        "pod-config",
    ] {
        mkdir(d);
    }
    for entry in fs::read_dir(standalone.join("envoy")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(
            entry.path(),
            sb.join("etc-extra/gatehouse/envoy").join(entry.file_name()),
        )
        .unwrap();
    }
    // The pod resolves the controller's Service name; here it is on loopback.
    let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    fs::write(
        sb.join("etc-extra/hosts"),
        format!("{hosts}\n127.0.0.1 gatehouse-controller.gatehouse-system.svc\n"),
    )
    .unwrap();
    fs::write(sb.join("bin-extra/gatehouse"), "").unwrap();
    fs::write(sb.join("bin-extra/envoy"), "").unwrap();
    fs::write(sb.join("helper/seccomp_exec.py"), SECCOMP_EXEC_PY).unwrap();
    fs::write(sb.join("helper/probe.py"), PROBE_PY).unwrap();
    fs::write(
        sb.join("helper/controller.allowed"),
        allowed_syscalls(&controller),
    )
    .unwrap();
    fs::write(sb.join("helper/envoy.allowed"), allowed_syscalls(&envoy)).unwrap();

    // The pod's ConfigMap, from the profile, and its arguments, from its Deployment.
    let objects = gatehouse_deploy::hardened_objects(&HardenedParams::default(), &[]).unwrap();
    let cm = objects.iter().find(|o| o.kind == "ConfigMap").unwrap();
    for (name, contents) in cm.value["data"].as_object().unwrap() {
        fs::write(sb.join("pod-config").join(name), contents.as_str().unwrap()).unwrap();
    }
    let deployment = objects
        .iter()
        .find(|o| {
            o.kind == "Deployment"
                && o.name == kubernetes::envoy_name(&kubernetes::DEFAULT_GATEWAY.parse().unwrap())
        })
        .unwrap();
    let container = &deployment.value["spec"]["template"]["spec"]["containers"][0];
    let pod_args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(container["securityContext"]["runAsUser"], POD_UID);

    // The PKI, as INSTALL.md makes it.
    let pki = sb.join("pki");
    let pki_s = pki.to_str().unwrap();
    gatehouse(&["certs", "init", "--dir", pki_s]);
    gatehouse(&[
        "certs",
        "issue",
        "--dir",
        pki_s,
        "--controller",
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
    ]);
    gatehouse(&[
        "certs",
        "issue",
        "--dir",
        pki_s,
        "--gateway",
        kubernetes::DEFAULT_GATEWAY,
    ]);

    let state_dir = format!("/var/lib/{}", one(&controller, "StateDirectory"));
    let runtime_dir = format!("/run/{}", one(&envoy, "RuntimeDirectory"));
    let credentials: Vec<&str> = all(&envoy, "LoadCredential");
    let gateway_dir = {
        let (_, path) = credentials[0].split_once(':').unwrap();
        Path::new(path)
            .parent()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let limit = |d: &[(String, String)]| {
        all(d, "LimitNOFILE")
            .first()
            .map_or("1024".to_owned(), |v| (*v).to_owned())
    };
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--net",
        "--uts",
        "--ipc",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--propagation",
        "private",
    ])
    .args(["/bin/bash", "-c", SANDBOX_SH])
    .env("SB", sb)
    .env("GATEHOUSE_REAL", env!("CARGO_BIN_EXE_gatehouse"))
    .env("ENVOY_REAL", envoy_binary())
    .env("C_UID", CONTROLLER_UID.to_string())
    .env("C_GID", CONTROLLER_UID.to_string())
    .env("C_WRITABLE", &state_dir)
    .env("C_FAMILIES", families(&controller))
    .env("C_UMASK", one(&controller, "UMask"))
    .env("C_NOFILE", limit(&controller))
    .env("C_EXEC", one(&controller, "ExecStart"))
    .env("E_UID", ENVOY_UID.to_string())
    .env("E_GID", ENVOY_UID.to_string())
    .env("E_WRITABLE", &runtime_dir)
    .env("E_FAMILIES", families(&envoy))
    .env("E_UMASK", one(&envoy, "UMask"))
    .env("E_NOFILE", limit(&envoy))
    .env("E_EXEC", one(&envoy, "ExecStart"))
    .env("E_CREDS_DIR", "/run/credentials/gatehouse-envoy.service")
    .env("E_CREDENTIALS", credentials.join(" "))
    .env("GATEWAY_DIR", &gateway_dir)
    .env("POD_UID", POD_UID.to_string())
    .env(
        "POD_EXEC",
        format!("/usr/local/bin/envoy {}", pod_args.join(" ")),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the sandbox run took longer than 150 s; logs in {}",
                sb.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let log = |name: &str| fs::read_to_string(sb.join(format!("{name}.log"))).unwrap_or_default();
    let context = format!(
        "stdout:\n{stdout}\nstderr:\n{stderr}\ncontroller:\n{}\nenvoy:\n{}\npod-envoy:\n{}",
        log("controller"),
        log("envoy"),
        log("pod-envoy")
    );
    assert!(status.success(), "{context}");
    let out = kv(&stdout);
    assert_eq!(out.get("done").map(String::as_str), Some("1"), "{context}");

    // What each sandbox forbids, from inside.
    for (probe, uid) in [
        ("probe-envoy", ENVOY_UID),
        ("probe-controller", CONTROLLER_UID),
    ] {
        let text = log(probe);
        let results = kv(&text);
        assert!(results.len() >= 19, "{probe}:\n{text}");
        for (name, result) in &results {
            assert_eq!(result, "ok", "{probe}: {name}: {result}\n{text}");
        }
        assert_eq!(
            results.get("probe.uid").map(String::as_str),
            Some("ok"),
            "{probe} ran as {uid}"
        );
    }

    // Envoy (standalone) connected over mTLS to the controller, and so did the pod's Envoy.
    assert!(out["envoy.connected_state"].ends_with(": 1"), "{context}");
    assert!(
        out["pod-envoy.connected_state"].ends_with(": 1"),
        "{context}"
    );
    assert!(
        ["PRE_INITIALIZING", "LIVE"].contains(&out["envoy.server_state"].as_str()),
        "{context}"
    );
    // The pod's readiness probe: 200 on /ready, nothing else served on the health port.
    assert_eq!(out["pod-envoy.ready"], "200", "{context}");
    assert_eq!(out["pod-envoy.other_path"], "404", "{context}");

    // The processes as the kernel sees them.
    let pids: BTreeSet<&str> = out
        .keys()
        .filter_map(|k| k.strip_prefix("proc.")?.strip_suffix(".comm"))
        .collect();
    let mut seen = BTreeMap::new();
    for pid in pids {
        let field = |f: &str| out[&format!("proc.{pid}.{f}")].clone();
        let uid: u32 = field("user").parse().unwrap();
        let status = field("status");
        for zero in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert!(
                status.contains(&format!("{zero}: 0000000000000000;")),
                "{pid}: {status}"
            );
        }
        assert!(status.contains("NoNewPrivs: 1;"), "{pid}: {status}");
        assert!(
            field("root").split(',').next() == Some("ro"),
            "{pid}: root is {}",
            field("root")
        );
        if uid == POD_UID {
            assert!(status.contains(&format!("Groups: {POD_UID} ;")), "{status}");
        } else {
            assert!(
                status.contains("Seccomp: 2;") && status.contains("Seccomp_filters: 6;"),
                "{pid}: {status}"
            );
            assert!(status.contains("Groups: ;"), "{pid}: {status}");
        }
        eprintln!(
            "{} (uid {uid}): {status} root {}",
            field("cmdline"),
            field("root")
        );
        seen.insert(uid, field("cmdline"));
    }
    assert_eq!(seen[&CONTROLLER_UID].trim(), one(&controller, "ExecStart"));
    assert_eq!(seen[&ENVOY_UID].trim(), one(&envoy, "ExecStart"));
    assert!(seen[&POD_UID].contains("--disable-hot-restart"));

    // Nothing failed quietly: no error, and no refused system call, in any log.
    for name in ["controller", "envoy", "pod-envoy"] {
        let text = log(name);
        for bad in [
            "][error][",
            "][critical][",
            "Operation not permitted",
            "error:",
        ] {
            assert!(!text.contains(bad), "{name} logged `{bad}`:\n{text}");
        }
    }
}
