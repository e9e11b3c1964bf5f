#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CRI pull benchmark: what kubelet waits for. One CRI PullImage (`slipstream cri pull`, the
# same RPC kubelet sends) of the large benchmark image through the same containerd 1.6 binary,
# in one run against one local registry (127.0.0.1, plain HTTP via hosts.toml):
#   1. containerd CRI with snapshotter = "slipstream" (slipstreamd as proxy snapshotter,
#      disable_snapshot_annotations = false: slipstream pulls every layer itself)
#   2. containerd CRI with snapshotter = "overlayfs" (containerd fetches, then applies each
#      layer; its defaults: 3 concurrent downloads)
# Each run is cold: fresh containerd root/state and a fresh slipstreamd root. Before each
# run the layer blobs are read once from the registry, so both runs find the registry's files
# in the page cache (BENCH_DROP_CACHES=1 drops the page cache instead, root only).
# Prints seconds (the PullImage RPC's duration, as `slipstream cri pull` reports it), the
# ratio slipstream/overlayfs (goal <= 0.3) and the daemons' peak RSS.
#
# The image is the large realistic one from scripts/bench-image.sh (pushed from its cache;
# built first if needed, which needs root and the Debian mirror). With BENCH_SYNTHETIC=1, or
# when bench-image.sh fails, a generated ~1 GB multi-file image is used instead.
#
# Usage: bench/cri-pull/run.sh
# Environment: BUILD_DIR (default build), SLIPSTREAM_BENCH_CACHE (default
# /var/cache/slipstream-bench), BENCH_WORK (scratch parent, default /var/tmp),
# BENCH_SYNTHETIC=1, BENCH_DROP_CACHES=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCH_NAME=bench-cri-pull
# shellcheck source=bench/cri_env.sh
. bench/cri_env.sh

# --- image --------------------------------------------------------------------------------
if [ "${BENCH_SYNTHETIC:-0}" != 1 ] &&
   BUILD_DIR="$build_dir" BENCH_IMAGE_PUSH="$build_dir/bench/bench_image_push" \
   scripts/bench-image.sh "$ref" >&2; then
  image_desc="bench-image.sh (debootstrap rootfs + Debian package files, gzip)"
else
  log "using a generated ~1 GB image"
  src="$work/synthetic"
  mkdir -p "$src"
  for d in $(seq 0 15); do
    mkdir -p "$src/d$d"
    for f in $(seq 0 63); do
      # Half random, half repetitive: compresses about 2:1, like real binaries.
      # (yes in a process substitution: its SIGPIPE must not trip pipefail)
      { head -c 524288 /dev/urandom; head -c 524288 < <(yes "slipstream $d $f"); } >"$src/d$d/f$f"
    done
  done
  "$slip" image build --dir "$src" --compression gzip --work-dir "$work/oci" --push "$ref" >&2
  rm -rf "$src" "$work/oci"
  image_desc="synthetic 1 GiB (16x64 files of 1 MiB, gzip)"
fi
manifest="$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$host/v2/bench/image/manifests/1")"
mapfile -t layers < <(printf '%s' "$manifest" | python3 -c \
  'import json,sys; [print(l["digest"], l["size"]) for l in json.load(sys.stdin)["layers"]]')
compressed=0
for l in "${layers[@]}"; do compressed=$((compressed + ${l#* })); done
log "image $ref: ${#layers[@]} layers, $((compressed >> 20)) MiB compressed"

# Same starting point for every run: the registry's blob files in the page cache, or (with
# BENCH_DROP_CACHES=1) nothing cached at all.
prepare_caches() {
  sync
  if [ "${BENCH_DROP_CACHES:-0}" = 1 ]; then
    echo 3 >/proc/sys/vm/drop_caches
  else
    for l in "${layers[@]}"; do
      curl -fsS -o /dev/null "http://$host/v2/bench/image/blobs/${l% *}"
    done
  fi
}
wall() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
rss_mib() { awk -F': ' '/Maximum resident set size/ { printf "%d", $2 / 1024 }' "$1"; }

# Starts a daemon under /usr/bin/time -v (report in $1.time, output in $1.log).
start_timed() {
  local name="$1"; shift
  /usr/bin/time -v -o "$name.time" "$@" >"$name.log" 2>&1 &
  pids+=($!)
  last_pid=$!
}
# Stops a daemon started by start_timed (its pid in $1) and waits for the report.
stop_timed() {
  local p="$1" c
  for c in $(pgrep -P "$p" 2>/dev/null); do kill -TERM "$c" 2>/dev/null || true; done
  wait "$p" 2>/dev/null || true
}

# run_pull NAME SNAPSHOTTER: a cold containerd (+ slipstreamd for "slipstream"), one CRI
# PullImage; sets pull_s, ctd_rss, slip_rss.
run_pull() {
  local name="$1" snapshotter="$2" dir="$work/run-$1"
  mkdir -p "$dir/cni"
  local slip_pid="" ctd_pid proxy=""
  slip_rss="-"
  if [ "$snapshotter" = slipstream ]; then
    cat >"$dir/slipstreamd.toml" <<TOML
[registry]
hosts_dir = "$work/certs.d"
TOML
    start_timed "$dir/slipstreamd" "$slipd" --config "$dir/slipstreamd.toml" \
      --root "$dir/slipstream" --address "$dir/slipstream.sock"
    slip_pid=$last_pid
    for _ in $(seq 300); do [ -S "$dir/slipstream.sock" ] && break; sleep 0.1; done
    [ -S "$dir/slipstream.sock" ] || die "slipstreamd did not start; see $dir/slipstreamd.log"
    proxy="[proxy_plugins.slipstream]
  type = \"snapshot\"
  address = \"$dir/slipstream.sock\""
  fi
  cat >"$dir/containerd.toml" <<TOML
version = 2
root = "$dir/containerd-root"
state = "$dir/containerd-state"
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
$proxy
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$snapshotter"
    disable_snapshot_annotations = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "$dir/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
TOML
  start_timed "$dir/containerd" containerd --config "$dir/containerd.toml"
  ctd_pid=$last_pid
  local ready=0
  for _ in $(seq 300); do
    if "$slip" cri images --endpoint "$dir/containerd.sock" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
  done
  [ "$ready" = 1 ] || die "containerd's CRI did not start; see $dir/containerd.log"

  prepare_caches
  log "CRI PullImage with snapshotter=$snapshotter"
  local start end
  start="$(date +%s%N)"
  "$slip" cri pull "$ref" --endpoint "$dir/containerd.sock" >"$dir/pull.out" 2>&1 ||
    { cat "$dir/pull.out" >&2; die "cri pull ($snapshotter) failed"; }
  end="$(date +%s%N)"
  cat "$dir/pull.out" >&2
  pull_s="$(awk '/^Pulled / { print $(NF - 1) }' "$dir/pull.out")"
  [ -n "$pull_s" ] || pull_s="$(wall "$start" "$end")"
  # Sanity: with slipstream, containerd must not have downloaded a single layer blob.
  if [ "$snapshotter" = slipstream ]; then
    local content l
    content="$(ctr -a "$dir/containerd.sock" -n k8s.io content ls -q)"
    for l in "${layers[@]}"; do
      if grep -qF "${l% *}" <<<"$content"; then
        die "containerd downloaded layer ${l% *}: slipstream did not take the pull over"
      fi
    done
  fi

  stop_timed "$ctd_pid"
  ctd_rss="$(rss_mib "$dir/containerd.time")"
  if [ -n "$slip_pid" ]; then
    stop_timed "$slip_pid"
    slip_rss="$(rss_mib "$dir/slipstreamd.time")"
  fi
  umount -R "$dir/containerd-root" 2>/dev/null || true
  rm -rf "$dir"
}

run_pull slipstream slipstream
ss_t="$pull_s"; ss_ctd_rss="$ctd_rss"; ss_rss="$slip_rss"
run_pull overlayfs overlayfs
ov_t="$pull_s"; ov_ctd_rss="$ctd_rss"

# --- report -----------------------------------------------------------------------------------
mibs() { awk -v s="$1" -v c="$compressed" 'BEGIN { printf "%.0f", (s > 0 ? c / s / 1048576 : 0) }'; }
ratio="$(awk -v a="$ss_t" -v b="$ov_t" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Image: $image_desc; ${#layers[@]} layers, $((compressed >> 20)) MiB compressed; registry on 127.0.0.1"
echo "containerd $(containerd --version | awk '{ print $3 }'), CRI PullImage via slipstream cri pull; cold roots each"
echo
echo "| snapshotter | PullImage seconds | compressed MiB/s | containerd peak RSS MiB | slipstreamd peak RSS MiB |"
echo "|---|---|---|---|---|"
echo "| slipstream (proxy, parallel mode) | $ss_t | $(mibs "$ss_t") | $ss_ctd_rss | $ss_rss |"
echo "| overlayfs (containerd's own pull) | $ov_t | $(mibs "$ov_t") | $ov_ctd_rss | - |"
echo
echo "slipstream / overlayfs = $ratio (goal <= 0.30)"
