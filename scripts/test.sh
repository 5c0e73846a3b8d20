#!/usr/bin/env bash
# Runs the whole test suite as root on this machine's real kernel:
# installs the Debian packages the tests need when missing, builds every
# binary, then runs every test (unit, golden bytes, end to end, fault
# injection), and the end-to-end tests once more on the release binaries
# as scripts/dist.sh assembles them (ipc built against musl).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the tests create cgroups and namespaces; run as root" >&2
  exit 1
fi

# Debian packages the tests use.
need=()
for pkg in procps iproute2 util-linux busybox-static runc libseccomp-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# The engines tests/tests/engines_real.rs drives with ipc as their runtime
# (podman through conmon, containerd through its runc shim, dockerd on
# that containerd), without the extras they recommend (networking,
# fuse-overlayfs, other runtimes).
engines=()
for pkg in podman conmon containerd docker.io; do
  dpkg -s "$pkg" >/dev/null 2>&1 || engines+=("$pkg")
done
if [ ${#engines[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${engines[@]}"
fi

cargo build --workspace --bins
cargo test --workspace --no-fail-fast

# The end-to-end tests again, on the binaries as they ship (scripts/dist.sh:
# release, with ipc built against musl).
dist=$(bash scripts/dist.sh | tail -n 1)
ASTERISM_BIN_DIR="$dist" cargo test -p asterism-tests --no-fail-fast
