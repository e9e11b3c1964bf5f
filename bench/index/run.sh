#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# zTOC index benchmark on one large gzip layer:
#   1. `slipstream index create` of a one-layer image holding the layer (registry on
#      127.0.0.1) vs one `gzip -dc LAYER >/dev/null`                          goal <= 1.1
#   2. index::InflateAllSpans of the layer's spans on 2 threads (index_bench, the layer read
#      from local disk) vs one single-thread `igzip -dc LAYER >/dev/null`     goal <= 0.6
#      (also on 1 thread, and on 2 without the per-span sha256 a full pull can skip)
#   3. zTOC size / layer size (default 4 MiB spans)
# Every timing is the best (wall) of BENCH_REPS runs on a warm page cache, with its CPU
# seconds; prints each ratio of both (CPU ratios are what the wall ratios would be on idle
# cores, for when other work shares the machine).
#
# The layer: LAYER.tar.gz when given; else the largest layer of the benchmark image
# (scripts/bench-image.sh: built if needed, which needs root and the Debian mirror); with
# BENCH_SYNTHETIC=1, or when that fails, a generated ~1 GB layer (16x64 files of 1 MiB, half
# random, half text, gzip level 6).
#
# Usage: bench/index/run.sh [LAYER.tar.gz]
# Environment: BUILD_DIR (default build), SLIPSTREAM_BENCH_CACHE (default
# /var/cache/slipstream-bench), BENCH_WORK (scratch parent, default /var/tmp), BENCH_REPS
# (default 3), BENCH_THREADS (inflate threads, default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."

build_dir="${BUILD_DIR:-build}"
cache="${SLIPSTREAM_BENCH_CACHE:-/var/cache/slipstream-bench}"
reps="${BENCH_REPS:-3}"
threads="${BENCH_THREADS:-2}"
log() { printf '%s bench-index: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in gzip igzip /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
done
slip="$build_dir/cmd/slipstream"
driver="$build_dir/bench/index_bench"
if [ ! -x "$slip" ] || [ ! -x "$driver" ]; then
  [ -f "$build_dir/CMakeCache.txt" ] ||
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" --target slipstream index_bench
fi

work="$(mktemp -d "${BENCH_WORK:-/var/tmp}/slipstream-bench-index.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry -------------------------------------------------------------------------------
"$slip" registry serve --ready-file "$work/ready" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$work/ready" ] && break; sleep 0.1; done
[ -s "$work/ready" ] || die "registry did not start; see $work/registry.log"
host="$(cat "$work/ready")"
ref="$host/bench/index:1"

# --- the layer ------------------------------------------------------------------------------
largest_blob() { ls -S "$1" | grep -v '^\.' | head -1; }
layer="${1:-}"
if [ -n "$layer" ]; then
  [ -f "$layer" ] || die "$layer does not exist"
  layer_desc="$(basename "$layer")"
elif [ "${BENCH_SYNTHETIC:-0}" != 1 ] &&
     { [ -d "$cache/oci/blobs/sha256" ] ||
       BUILD_DIR="$build_dir" scripts/bench-image.sh >&2; }; then
  layer="$cache/oci/blobs/sha256/$(largest_blob "$cache/oci/blobs/sha256")"
  layer_desc="largest layer of bench-image.sh (Debian package files, gzip)"
else
  log "generating a ~1 GB layer"
  src="$work/synthetic"
  for d in $(seq 0 15); do
    mkdir -p "$src/d$d"
    for f in $(seq 0 63); do
      # `yes` dies of SIGPIPE when head has enough, which pipefail would count as a failure.
      { head -c 524288 /dev/urandom; { yes "slipstream $d $f" | head -c 524288; } || true; } \
        >"$src/d$d/f$f"
    done
  done
  "$slip" image build --dir "$src" --compression gzip --work-dir "$work/oci" \
    --push "$host/bench/synthetic:1" --hosts-dir "$work" >&2
  rm -rf "$src"
  layer="$work/oci/blobs/sha256/$(largest_blob "$work/oci/blobs/sha256")"
  layer_desc="synthetic (16x64 files of 1 MiB, half random, gzip)"
fi
layer_bytes="$(stat -c %s "$layer")"
log "layer $layer: $((layer_bytes >> 20)) MiB"
cat "$layer" >/dev/null  # warm the page cache: every run reads it from memory

# best_of NAME CMD...: runs CMD $reps times (stdout discarded) and sets NAME_t and NAME_c to
# the wall and CPU seconds of the fastest run. CPU is user + system of CMD and its threads
# (/usr/bin/time): on a busy machine it says what the wall time would be on idle cores.
best_of() {
  local name="$1" wall cpu best_wall="" best_cpu=""
  shift
  for _ in $(seq "$reps"); do
    /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null || die "$* failed"
    read -r wall cpu < <(awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$work/time")
    if [ -z "$best_wall" ] || awk -v s="$wall" -v b="$best_wall" 'BEGIN { exit !(s < b) }'; then
      best_wall="$wall"
      best_cpu="$cpu"
    fi
  done
  printf -v "${name}_t" '%s' "$best_wall"
  printf -v "${name}_c" '%s' "$best_cpu"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# --- 1. index create vs gzip -dc ---------------------------------------------------------------
"$driver" push --layer "$layer" --ref "$ref" >&2

log "gzip -dc x$reps"
best_of gzip sh -c 'gzip -dc "$1" >/dev/null' gzip "$layer"
log "slipstream index create x$reps"
best_of create "$slip" index create "$ref" --min-layer-size 0 --hosts-dir "$work"
"$slip" index create "$ref" --min-layer-size 0 --hosts-dir "$work" >&2

# --- 2. parallel span inflate vs igzip -dc --------------------------------------------------
log "igzip -dc x$reps"
best_of igzip sh -c 'igzip -dc "$1" >/dev/null' igzip "$layer"
log "index_bench inflate ($threads threads) x$reps"
"$driver" inflate --layer "$layer" --threads "$threads" --reps "$reps" >"$work/inflate.out"
cat "$work/inflate.out" >&2
value() { sed -n "s/^$1=//p" "$work/inflate.out"; }
secs() { printf '%.3f' "$(value "$1")"; }
inflate_t="$(secs inflate_seconds)"; inflate_c="$(secs inflate_cpu_seconds)"
inflate1_t="$(secs inflate_1t_seconds)"; inflate1_c="$(secs inflate_1t_cpu_seconds)"
build_t="$(secs build_seconds)"; build_c="$(secs build_cpu_seconds)"
trusted_t="$(secs inflate_trusted_seconds)"; trusted_c="$(secs inflate_trusted_cpu_seconds)"
ztoc_bytes="$(value ztoc_bytes)"

# --- report -----------------------------------------------------------------------------------
echo
echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Layer: $layer_desc; $((layer_bytes >> 20)) MiB compressed, $(( $(value uncompressed_bytes) >> 20 )) MiB uncompressed, $(value spans) spans of 4 MiB; best of $reps, warm page cache"
echo
cpu_ratio() { awk -v a="$1" -v n="$2" -v b="$3" 'BEGIN { printf "%.2f", (b > 0 ? a / n / b : 0) }'; }
echo "| measure | wall s | CPU s | wall ratio | CPU ratio | goal |"
echo "|---|---|---|---|---|---|"
echo "| gzip -dc LAYER >/dev/null | $gzip_t | $gzip_c | 1.00 | 1.00 | |"
echo "| slipstream index create (registry on 127.0.0.1) | $create_t | $create_c | $(ratio "$create_t" "$gzip_t") | $(cpu_ratio "$create_c" 1 "$gzip_c") | <= 1.1 |"
echo "| zTOC build from the local file (index_bench) | $build_t | $build_c | $(ratio "$build_t" "$gzip_t") | $(cpu_ratio "$build_c" 1 "$gzip_c") | |"
echo "| igzip -dc LAYER >/dev/null | $igzip_t | $igzip_c | 1.00 | 1.00 | |"
echo "| InflateAllSpans, $threads threads | $inflate_t | $inflate_c | $(ratio "$inflate_t" "$igzip_t") | $(cpu_ratio "$inflate_c" "$threads" "$igzip_c") | <= 0.6 |"
echo "| InflateAllSpans, 1 thread | $inflate1_t | $inflate1_c | $(ratio "$inflate1_t" "$igzip_t") | $(cpu_ratio "$inflate1_c" 1 "$igzip_c") | |"
echo "| InflateAllSpans, $threads threads, no per-span sha256 (SpanCheck::kSize) | $trusted_t | $trusted_c | $(ratio "$trusted_t" "$igzip_t") | $(cpu_ratio "$trusted_c" "$threads" "$igzip_c") | |"
echo "| zTOC size / layer size | $ztoc_bytes B | | $(awk -v z="$ztoc_bytes" -v l="$layer_bytes" 'BEGIN { printf "%.4f", z / l }') | | |"
echo
echo "CPU ratio: CPU seconds (divided by the thread count for InflateAllSpans) over the"
echo "baseline's, i.e. the wall ratio on otherwise idle cores; index create's CPU excludes the"
echo "registry's. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
