#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs fetch_bench: slipstream's parallel Range download vs single-stream curl against a
# registry on 127.0.0.1 that the benchmark starts itself.
#
# Usage: bench/fetch/run.sh [--record] [fetch_bench flags, e.g. --reps 5 --size-mib 2048]
#   --record   append the Markdown table (with machine and date) to docs/benchmarks.md
# The blob is the largest layer of the benchmark image (scripts/bench-image.sh) when it has
# been built, else 1 GiB of pseudo-random data. Environment: BUILD_DIR (default build),
# SLIPSTREAM_BENCH_CACHE (default /var/cache/slipstream-bench), FETCH_BENCH (binary path).
set -euo pipefail
cd "$(dirname "$0")/../.."

record=0
if [ "${1:-}" = "--record" ]; then
  record=1
  shift
fi
build_dir="${BUILD_DIR:-build}"
cache="${SLIPSTREAM_BENCH_CACHE:-/var/cache/slipstream-bench}"
bench="${FETCH_BENCH:-$build_dir/bench/fetch_bench}"
if [ ! -x "$bench" ]; then
  [ -f "$build_dir/CMakeCache.txt" ] ||
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" --target fetch_bench
fi

args=("$@")
blobs="$cache/oci/blobs/sha256"
has_blob=0
for a in "$@"; do
  if [ "$a" = "--blob" ] || [ "$a" = "--size-mib" ]; then has_blob=1; fi
done
if [ "$has_blob" = 0 ] && [ -d "$blobs" ]; then
  largest="$(ls -S "$blobs" | grep -v '^\.' | head -1 || true)"
  if [ -n "$largest" ]; then
    echo "using the benchmark image's largest layer sha256:$largest" >&2
    args+=(--blob "$blobs/$largest")
  fi
fi

if [ "$record" = 1 ]; then
  table="$("$bench" --markdown "${args[@]}")"
  printf '\n%s\n' "$table" >>docs/benchmarks.md
  echo "$table"
else
  "$bench" "${args[@]}"
fi
