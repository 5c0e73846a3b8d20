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
# - ipc is optimized for size (opt-level "s"; the rest stays at 3). Its
#   time goes to syscalls and page faults, not to its own code: the parent
#   of `ipc run` faults in its text 64 KiB at a time, and the fewer bytes
#   its hot path spans, the fewer windows it maps. Measured against the
#   opt-level 3 build on two constellations taking turns: peak RSS 2860
#   against 3572 KiB; `ipc run` + delete 5.84/5.87 against 5.94/5.75 ms
#   (300 runs each, two rounds: no difference); 4 at once 240.8 against
#   228.4 containers/s, CPU per container 8.05 against 8.45 ms.
#
# Prints the directory. `ASTERISM_BIN_DIR=<it>` points the tests and the
# benchmark at these binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

host="$(rustc -vV | sed -n 's/^host: //p')"
musl="${host%-gnu}-musl"
target="${CARGO_TARGET_DIR:-$PWD/target}"
dist="$target/dist"

# The musl target comes with rustup, not with every toolchain install:
# added here when missing. Where it cannot be (no network to rustup's
# server), ipc is the glibc build, said loudly, and target/dist/ipc.target
# tells which one it is.
have_musl() { rustup target list --installed 2>/dev/null | grep -qx "$musl"; }
if ! have_musl; then
  echo "scripts/dist.sh: adding the $musl target (rustup target add $musl)" >&2
  timeout 300 rustup target add "$musl" >&2 || true
fi

echo "building (release): cargo build --release --workspace --bins" >&2
cargo build --release --workspace --bins
ipc_target="$host"
# ipc's hot functions first (init/ipc.order, made by scripts/ipc-order.sh),
# laid out by rust-lld, which rustup ships with the toolchain (its gcc-ld
# directory holds the ld.lld that `cc -fuse-ld=lld` looks for): see
# scripts/ipc-order.sh for what it saves. Without rust-lld, or for the
# glibc fallback, ipc links as it did, in the compiler's order.
gcc_ld="$(rustc --print sysroot)/lib/rustlib/$host/bin/gcc-ld"
order="$PWD/init/ipc.order"
link=()
if [ -x "$gcc_ld/ld.lld" ] && [ -f "$order" ]; then
  link=(--config "target.$musl.rustflags=[\"-Clink-arg=-fuse-ld=lld\", \"-Clink-arg=-B$gcc_ld\", \"-Clink-arg=-Wl,--symbol-ordering-file=$order\", \"-Clink-arg=-Wl,--no-warn-symbol-ordering\"]")
else
  echo "scripts/dist.sh: no rust-lld ($gcc_ld/ld.lld) or no $order: ipc's functions stay in the compiler's order" >&2
fi
if have_musl; then
  echo "building (release, $musl, opt-level s): cargo build --release --target $musl -p asterism-init --bin ipc" >&2
  cargo build --release --target "$musl" -p asterism-init --bin ipc \
    --config 'profile.release.opt-level="s"' "${link[@]}"
  ipc_target="$musl"
  if [ ${#link[@]} -gt 0 ]; then
    have=$(nm --defined-only "$target/$musl/release/ipc" | awk '{print $3}' | sort -u | comm -12 - <(sort -u "$order") | wc -l)
    echo "scripts/dist.sh: ipc laid out by init/ipc.order: $have of its $(wc -l <"$order") functions are in this build (scripts/ipc-order.sh remakes it)" >&2
  fi
else
  echo "scripts/dist.sh: WARNING: the $musl target is not installed and could not be added; ipc is the $host build" >&2
fi

mkdir -p "$dist"
for f in "$target/$host/release"/*; do
  if [ -f "$f" ] && [ -x "$f" ]; then
    cp --remove-destination "$f" "$dist/"
  fi
done
cp --remove-destination "$target/$ipc_target/release/ipc" "$dist/ipc"
echo "$ipc_target" > "$dist/ipc.target"
echo "$dist"
