#!/usr/bin/env bash
# `make up`: the quickstart on this machine. Starts the two echo services the quickstart routes
# to, then `gatehouse up` (the control plane and a sandboxed Envoy), which prints where to send
# requests. Ctrl-C stops everything.
set -euo pipefail
state="${1:?usage: up.sh STATE_DIR [CONFIG_DIR]}"
config="${2:-examples/quickstart}"
bin="${CARGO_TARGET_DIR:-target}/debug/gatehouse"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$bin" echo --listen 127.0.0.1:9081 --name echo-a 2>/dev/null &
pids+=($!)
"$bin" echo --listen 127.0.0.1:9082 --name echo-b 2>/dev/null &
pids+=($!)

if [ "$(id -u)" != 0 ]; then
  echo "note: not running as root, so Envoy cannot be switched to its own user; it runs as you with no_new_privs (see SECURITY.md)" >&2
fi
"$bin" up "$config" --state-dir "$state"
