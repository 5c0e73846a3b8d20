#!/usr/bin/env bash
# Builds asterism, starts the constellation on a private root, shows
# `ipc status`, runs a sample busybox container (memory and CPU limits from
# its config), and stops everything again, leaving nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "scripts/demo.sh: containers need root" >&2
  exit 1
fi
if [ ! -x /bin/busybox ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static
fi
# The binaries as they ship (ipc built against musl): target/dist.
bin=$(bash scripts/dist.sh | tail -n 1)
root=$(mktemp -d /tmp/asterism-demo.XXXXXX)
bundle=$(mktemp -d /tmp/asterism-bundle.XXXXXX)
cleanup() {
  "$bin/ipc" --root "$root" delete --force demo >/dev/null 2>&1 || true
  if [ -f "$root/init.pid" ]; then
    pid=$(cat "$root/init.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$root" "$bundle"
}
trap cleanup EXIT

# A busybox rootfs and a config like `runc spec` writes.
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in sh echo cat hostname id ls sleep head; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
(cd "$bundle" && "$bin/ipc" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c",
    "echo hello from $(hostname), $(id); echo memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); ls /"]
c["hostname"] = "asterism-demo"
c["linux"]["resources"]["memory"] = {"limit": 67108864}
c["linux"]["resources"]["cpu"] = {"quota": 50000, "period": 100000}
json.dump(c, open(path, "w"), indent=2)
PY

ipc() { echo "\$ ipc $*"; "$bin/ipc" --root "$root" "$@"; echo; }
# Any OCI command starts the constellation when none runs on the root.
ipc run --bundle "$bundle" demo
ipc status
