#!/usr/bin/env bash
# Builds asterism as it ships and puts the binaries in target/dist:
#
# - init, the servers and the helpers: release, for the host triple
#   (glibc, static and not position-independent: .cargo/config.toml);
# - ipc: release, static against musl (x86_64-unknown-linux-musl, also
#   not position-independent). ipc is exec'd for every command an engine
#   runs, and a static glibc binary spends its first ~0.2 ms probing the
#   CPU (init_cpu_features: dozens of CPUID instructions, each a trap on a
#   virtual machine); musl does none of that. Measured on one
#   constellation, the two ipc binaries taking turns over 280 runs each:
#   `ipc run` + delete 4.71 against 4.89 ms at the median, 2.8 against
#   3.6 MiB peak RSS. The servers stay on glibc: they are long-lived and
#   threaded, where glibc's malloc is the better one.
#
# Prints the directory. `ASTERISM_BIN_DIR=<it>` points the tests and the
# benchmark at these binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

host="$(rustc -vV | sed -n 's/^host: //p')"
musl="${host%-gnu}-musl"
target="${CARGO_TARGET_DIR:-$PWD/target}"
dist="$target/dist"

if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
  echo "scripts/dist.sh: the $musl target is not installed (rustup target add $musl)" >&2
  exit 1
fi

echo "building (release): cargo build --release --workspace --bins" >&2
cargo build --release --workspace --bins
echo "building (release, $musl): cargo build --release --target $musl -p asterism-init --bin ipc" >&2
cargo build --release --target "$musl" -p asterism-init --bin ipc

mkdir -p "$dist"
for f in "$target/$host/release"/*; do
  if [ -f "$f" ] && [ -x "$f" ]; then
    cp --remove-destination "$f" "$dist/"
  fi
done
cp --remove-destination "$target/$musl/release/ipc" "$dist/ipc"
echo "$dist"
