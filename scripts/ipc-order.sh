#!/usr/bin/env bash
# Regenerates init/ipc.order, the order scripts/dist.sh has the linker lay
# out ipc's functions in: the functions the engines' commands run (run,
# create, start, state, ps, exec, kill, delete, list), in the order they
# first run, ahead of the rest of the text. ipc is exec'd for every one of
# those commands and faults its text in 64 KiB windows; laid out like this,
# one `ipc run` maps 644 KiB of text instead of 2288, takes 145 page faults
# instead of 189 (parent and launcher child), and 0.25 ms less CPU
# (`perf stat -r 60 ipc run`: 4.24/4.00 against 4.49/4.28 ms).
#
# Run it (as root) after changes that rename or add much of ipc's hot
# path; a stale list costs only locality (scripts/dist.sh says how many of
# its names the build still has). Needs python3, busybox-static and nm.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "scripts/ipc-order.sh: traces containers being made; run as root" >&2
  exit 1
fi
bin=$(bash scripts/dist.sh | tail -n 1)
work=$(mktemp -d /tmp/asterism-order.XXXXXX)
root="$work/root"
cleanup() {
  for id in o-run o-sleep o-force; do
    "$bin/ipc" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  done
  if [ -f "$root/init.pid" ]; then
    pid=$(cat "$root/init.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for applet in sh true sleep; do ln -s busybox "$work/bundle/rootfs/bin/$applet"; done
(cd "$work/bundle" && "$bin/ipc" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "60"]
json.dump(c, open(sys.argv[1], "w"))
PY
cp -r "$work/bundle" "$work/true"
sed -i 's/"sleep", "60"/"true"/' "$work/true/config.json"

"$bin/init" --root "$root" >"$work/init.log" 2>&1 &
for _ in $(seq 100); do [ -S "$root/init.sock" ] || [ -f "$root/init.pid" ] && break; sleep 0.05; done
"$bin/ipc" --root "$root" status >/dev/null

list="$work/hits"
t() { python3 scripts/ipc-order.py "$list" "$bin/ipc" --root "$root" "$@"; }
t run --bundle "$work/true" o-run
t create --bundle "$work/bundle" --pid-file "$work/pid" o-sleep
t start o-sleep
t state o-sleep >/dev/null
t ps --format json o-sleep >/dev/null
t exec o-sleep true
t exec --detach --pid-file "$work/epid" o-sleep true
t list --format json >/dev/null
t kill o-sleep 9
for _ in $(seq 100); do
  "$bin/ipc" --root "$root" state o-sleep | grep -q '"stopped"' && break
  sleep 0.05
done
t delete o-sleep
t create --bundle "$work/bundle" o-force
t delete --force o-force

# First run first; each name once.
awk '!seen[$0]++' "$list" >init/ipc.order
echo "init/ipc.order: $(wc -l <init/ipc.order) functions" >&2
