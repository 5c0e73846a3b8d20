#!/usr/bin/env bash
# Builds asterism, starts the constellation on a private root, shows
# `ipc status`, puts a process under a memory and a CPU limit, and stops
# everything again, leaving nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
bin=target/release
root=$(mktemp -d /tmp/asterism-demo.XXXXXX)
log=$root.log

"$bin/init" --root "$root" >"$log" 2>&1 &
init_pid=$!
sleep_pid=""
cleanup() {
  [ -n "$sleep_pid" ] && kill "$sleep_pid" 2>/dev/null || true
  "$bin/ipc" --root "$root" memory-controller delete demo --force >/dev/null 2>&1 || true
  "$bin/ipc" --root "$root" cpu-controller delete demo --force >/dev/null 2>&1 || true
  kill -TERM "$init_pid" 2>/dev/null || true
  wait "$init_pid" 2>/dev/null || true
  rm -rf "$root" "$log"
}
trap cleanup EXIT

for _ in $(seq 100); do grep -qx ready "$log" 2>/dev/null && break; sleep 0.1; done
grep -qx ready "$log" || { cat "$log"; echo "init did not become ready" >&2; exit 1; }

ipc() { echo "\$ ipc $*"; "$bin/ipc" --root "$root" "$@"; echo; }
ipc status
sleep 300 & sleep_pid=$!
ipc memory-controller create demo --limit 64M
ipc memory-controller attach demo "$sleep_pid"
ipc cpu-controller create demo --quota 20000 --period 100000 --pids-max 16
ipc cpu-controller attach demo "$sleep_pid"
ipc memory-controller stat demo
ipc cpu-controller stat demo
ipc status
