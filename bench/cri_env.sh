# SPDX-License-Identifier: Apache-2.0
# Shared set-up of the CRI benchmarks (bench/cri-pull, bench/lazy), sourced after
# `set -euo pipefail` and `cd` to the repository root, with BENCH_NAME set:
#   - log/die, root and tool checks, builds slipstream, slipstreamd and bench_image_push;
#   - $work: a scratch dir under BENCH_WORK (default /var/tmp), removed on exit with every
#     process in $pids (daemons under /usr/bin/time: their child first) and any mount left;
#   - a local registry ($host, $ref = $host/bench/image:1) and $work/certs.d/<host>/hosts.toml
#     (plain HTTP), read by containerd's CRI and slipstreamd alike.
build_dir="${BUILD_DIR:-build}"
log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$BENCH_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (containerd)"
for tool in /usr/bin/time containerd ctr curl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
done
slip="$build_dir/cmd/slipstream"
slipd="$build_dir/cmd/slipstreamd"
if [ ! -x "$slip" ] || [ ! -x "$slipd" ] || [ ! -x "$build_dir/bench/bench_image_push" ]; then
  [ -f "$build_dir/CMakeCache.txt" ] ||
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" --target slipstream slipstreamd bench_image_push
fi

work="$(mktemp -d "${BENCH_WORK:-/var/tmp}/slipstream-$BENCH_NAME.XXXXXX")"
pids=()      # background processes to stop on exit (registry, daemons under /usr/bin/time)
cleanup() {
  for p in "${pids[@]}"; do
    # The daemons run under /usr/bin/time: stop the daemon (its child) first.
    for c in $(pgrep -P "$p" 2>/dev/null); do kill -TERM "$c" 2>/dev/null || true; done
    kill -TERM "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  for d in "$work"/run-*/containerd-root "$work"/run-*/slipstream; do
    if [ -d "$d" ]; then umount -R "$d" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

"$slip" registry serve --ready-file "$work/ready" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
[ -s "$work/ready" ] || die "registry did not start; see $work/registry.log"
host="$(cat "$work/ready")"
ref="$host/bench/image:1"
mkdir -p "$work/certs.d/$host"
cat >"$work/certs.d/$host/hosts.toml" <<TOML
server = "http://$host"
[host."http://$host"]
  capabilities = ["pull", "resolve"]
TOML
