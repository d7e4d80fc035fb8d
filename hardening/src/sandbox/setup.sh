set -eu
umask 022
fail() { printf 'gatehouse sandbox: %s\n' "$*" >&2; exit 125; }
root=$1 uid=$2 gid=$3 size=$4
shift 4
mount -t tmpfs -o size=1m,mode=0755,nosuid,nodev,noexec gatehouse-root "$root" ||
  fail "cannot mount the new root (a tmpfs) on $root"
while [ "$#" -gt 0 ]; do
  step=$1
  shift
  p=${step#*:}
  case $step in
  --) break ;;
  mkdir:*) mkdir -p -- "$root$p" || fail "cannot create directory $p" ;;
  mkfile:*) { : >"$root$p"; } || fail "cannot create file $p" ;;
  bind:*) mount --bind -o ro,nosuid,nodev -- "$p" "$root$p" || fail "cannot bind $p read-only" ;;
  dev:*) mount --bind -o ro,nosuid -- "$p" "$root$p" || fail "cannot bind device $p" ;;
  tmpfs:*)
    mount -t tmpfs -o "size=$size,mode=0700,uid=$uid,gid=$gid,nosuid,nodev,noexec" \
      gatehouse-tmpfs "$root$p" || fail "cannot mount a writable tmpfs on $p" ;;
  hide-dir:*)
    mount -t tmpfs -o ro,size=4k,mode=000,nosuid,nodev,noexec gatehouse-hidden "$root$p" ||
      fail "cannot hide directory $p" ;;
  hide-file:*)
    mount --bind -o ro,nosuid,nodev,noexec -- /dev/null "$root$p" || fail "cannot hide file $p" ;;
  proc:*)
    mount -t proc -o nosuid,nodev,noexec,hidepid=invisible gatehouse-proc "$root$p" ||
      fail "cannot mount proc on $p" ;;
  proc-bind:*) mount --bind -o ro,nosuid,nodev,noexec -- /proc "$root$p" || fail "cannot bind /proc" ;;
  symlink:*)
    [ "$#" -gt 0 ] || fail "no target for symbolic link $p"
    ln -s -- "$1" "$root$p" || fail "cannot create symbolic link $p"
    shift ;;
  *) fail "unknown step $step" ;;
  esac
done
mount -o remount,bind,ro,nosuid,nodev,noexec -- "$root" || fail "cannot make the new root read-only"
exec chroot -- "$root" "$@"
