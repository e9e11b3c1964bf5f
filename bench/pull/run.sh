#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Pull benchmark, all in one run against one local registry (127.0.0.1, plain HTTP):
#   1. slipstream pull        (parallel chunked download, unpacked while downloading)
#   2. containerd 1.6 `ctr image pull` (own root/state in a temp dir, cold content store,
#      overlayfs snapshotter; falls back to native when overlay mounts are not allowed)
#   3. `igzip -dc | tar -x` per layer, in order, on the blobs already on local disk
#      (decompress + untar only: the floor for a sequential unpack, no download at all)
# Prints wall seconds, ratio to slipstream and peak RSS (/usr/bin/time -v; for containerd
# the daemon's peak, the client's is small).
#
# The image is the large realistic one from scripts/bench-image.sh (pushed from its cache;
# built first if needed, which needs root and the Debian mirror). With BENCH_SYNTHETIC=1, or
# when bench-image.sh fails, a generated ~1 GB multi-file image is used instead.
#
# Usage: bench/pull/run.sh
# Environment: BUILD_DIR (default build), SLIPSTREAM_BENCH_CACHE (default
# /var/cache/slipstream-bench), BENCH_WORK (scratch parent, default /var/tmp),
# BENCH_DROP_CACHES=1 to drop the page cache before each run (root).
set -euo pipefail
cd "$(dirname "$0")/../.."

build_dir="${BUILD_DIR:-build}"
cache="${SLIPSTREAM_BENCH_CACHE:-/var/cache/slipstream-bench}"
log() { printf '%s bench-pull: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in /usr/bin/time containerd ctr igzip tar; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
done
slip="$build_dir/cmd/slipstream"
if [ ! -x "$slip" ] || [ ! -x "$build_dir/bench/bench_image_push" ]; then
  [ -f "$build_dir/CMakeCache.txt" ] ||
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" --target slipstream bench_image_push
fi

work="$(mktemp -d "${BENCH_WORK:-/var/tmp}/slipstream-bench-pull.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount -R "$work/ctd/root" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry ---------------------------------------------------------------------------
"$slip" registry serve --ready-file "$work/ready" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
[ -s "$work/ready" ] || die "registry did not start; see $work/registry.log"
host="$(cat "$work/ready")"
ref="$host/bench/image:1"

# --- image --------------------------------------------------------------------------------
blobs_dir=""
if [ "${BENCH_SYNTHETIC:-0}" != 1 ] &&
   BUILD_DIR="$build_dir" BENCH_IMAGE_PUSH="$build_dir/bench/bench_image_push" \
   scripts/bench-image.sh "$ref" >&2; then
  image_desc="bench-image.sh (debootstrap rootfs + Debian package files, gzip)"
  blobs_dir="$cache/oci/blobs/sha256"
else
  log "using a generated ~1 GB image"
  src="$work/synthetic"
  mkdir -p "$src"
  for d in $(seq 0 15); do
    mkdir -p "$src/d$d"
    for f in $(seq 0 63); do
      # Half random, half repetitive: compresses about 2:1, like real binaries.
      { head -c 524288 /dev/urandom; head -c 524288 < <(yes "slipstream $d $f"); } >"$src/d$d/f$f"
    done
  done
  "$slip" image build --dir "$src" --compression gzip --work-dir "$work/oci" --push "$ref" >&2
  image_desc="synthetic 1 GiB (16x64 files of 1 MiB, gzip)"
  blobs_dir="$work/oci/blobs/sha256"
fi
# The layer blobs in order, from the manifest the registry serves.
manifest="$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$host/v2/bench/image/manifests/1")"
mapfile -t layers < <(printf '%s' "$manifest" | python3 -c \
  'import json,sys; [print(l["digest"].split(":")[1]) for l in json.load(sys.stdin)["layers"]]')
compressed=0
for l in "${layers[@]}"; do compressed=$((compressed + $(stat -c %s "$blobs_dir/$l"))); done
log "image $ref: ${#layers[@]} layers, $((compressed >> 20)) MiB compressed"

drop_caches() {
  sync
  if [ "${BENCH_DROP_CACHES:-0}" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
# Reads "Elapsed (wall clock)" and "Maximum resident set size" from a time -v report.
wall() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0;
  for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.2f", s }' "$1"; }
rss_mib() { awk -F': ' '/Maximum resident set size/ { printf "%d", $2 / 1024 }' "$1"; }

# --- 1. slipstream ----------------------------------------------------------------------------
drop_caches
log "slipstream pull"
/usr/bin/time -v -o "$work/ss.time" "$slip" pull "$ref" --dest "$work/ss" --hosts-dir "$work" \
  >"$work/ss.out" 2>"$work/ss.err" || { cat "$work/ss.err" >&2; die "slipstream pull failed"; }
cat "$work/ss.out" >&2
ss_t="$(wall "$work/ss.time")"; ss_rss="$(rss_mib "$work/ss.time")"
rm -rf "$work/ss"

# --- 2. containerd ----------------------------------------------------------------------------
mkdir -p "$work/ctd"
cat >"$work/ctd/config.toml" <<TOML
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctd/containerd.sock"
TOML
/usr/bin/time -v -o "$work/ctd.time" containerd --config "$work/ctd/config.toml" \
  >"$work/ctd/containerd.log" 2>&1 &
time_pid=$!
pids+=($time_pid)
for _ in $(seq 300); do [ -S "$work/ctd/containerd.sock" ] && break; sleep 0.1; done
[ -S "$work/ctd/containerd.sock" ] || die "containerd did not start; see $work/ctd/containerd.log"
ctr_pull() {
  ctr -a "$work/ctd/containerd.sock" -n bench image pull --plain-http --snapshotter "$1" "$ref" \
    >"$work/ctr.out" 2>&1
}
drop_caches
log "ctr image pull (overlayfs)"
snap=overlayfs
start_ns="$(date +%s%N)"
if ! ctr_pull overlayfs; then
  log "overlayfs failed ($(tail -1 "$work/ctr.out")); retrying with the native snapshotter"
  ctr -a "$work/ctd/containerd.sock" -n bench image rm "$ref" >/dev/null 2>&1 || true
  ctr -a "$work/ctd/containerd.sock" -n bench content prune references >/dev/null 2>&1 || true
  snap=native
  drop_caches
  start_ns="$(date +%s%N)"
  ctr_pull native || { cat "$work/ctr.out" >&2; die "ctr image pull failed"; }
fi
ctd_t="$(awk -v a="$start_ns" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')"
kill -TERM "$(pgrep -P "$time_pid" containerd)" 2>/dev/null || true
wait "$time_pid" 2>/dev/null || true
ctd_rss="$(rss_mib "$work/ctd.time")"
umount -R "$work/ctd/root" 2>/dev/null || true
rm -rf "$work/ctd"

# --- 3. igzip | tar on local blobs ----------------------------------------------------------
drop_caches
log "igzip -dc | tar -x (blobs already local)"
script='set -e; i=0; for b in "$@"; do mkdir -p "'"$work"'/pipe/$i"; igzip -dc "$b" | tar -x --numeric-owner -p -C "'"$work"'/pipe/$i"; i=$((i+1)); done'
paths=(); for l in "${layers[@]}"; do paths+=("$blobs_dir/$l"); done
/usr/bin/time -v -o "$work/pipe.time" bash -c "$script" bench "${paths[@]}"
pipe_t="$(wall "$work/pipe.time")"; pipe_rss="$(rss_mib "$work/pipe.time")"
rm -rf "$work/pipe"

# --- report -----------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$ss_t" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
mibs() { awk -v s="$1" -v c="$compressed" 'BEGIN { printf "%.0f", (s > 0 ? c / s / 1048576 : 0) }'; }
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Image: $image_desc; ${#layers[@]} layers, $((compressed >> 20)) MiB compressed; registry on 127.0.0.1"
echo
echo "| method | seconds | vs slipstream | compressed MiB/s | peak RSS MiB |"
echo "|---|---|---|---|---|"
echo "| slipstream pull | $ss_t | 1.00x | $(mibs "$ss_t") | $ss_rss |"
echo "| containerd 1.6 ctr image pull ($snap) | $ctd_t | $(ratio "$ctd_t") | $(mibs "$ctd_t") | $ctd_rss (daemon) |"
echo "| igzip -dc \| tar -x (local blobs, no download) | $pipe_t | $(ratio "$pipe_t") | $(mibs "$pipe_t") | $pipe_rss |"
