#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lazy-mode benchmark: what a pod waits for. For the large benchmark image, in one run against
# one local registry (127.0.0.1, plain HTTP via hosts.toml) and the same containerd 1.6 binary,
# the time from CRI PullImage to the first command's output (`slipstream cri pull`, then
# `slipstream cri run IMAGE -- /bin/cat /etc/debian_version` in a host-network pod; the output's
# time is the one the runtime stamped on it in the CRI log, `cri run --output-time`):
#   1. slipstream, default_mode = "lazy" (the image's SOCI index is pushed first with
#      `slipstream index push --v1`: its big layers are mounted through FUSE, not downloaded)
#   2. slipstream, default_mode = "parallel" (every layer fetched and unpacked first)
#   3. containerd's own pull (snapshotter = "overlayfs")
# then, in every run, a sequential read of a file > 100 MB from the image with an empty page
# cache (`dd` in a container, timed by dd: through the FUSE mount vs from local disk).
# Goals (issue 6): lazy / parallel <= 0.10, lazy / overlayfs <= 0.05, lazy read throughput
# >= 0.5 x local disk. Each run is cold (fresh roots); the registry's files are in the page
# cache for every run. Prints a markdown table and slipstreamd's peak RSS.
#
# Usage: bench/lazy/run.sh      Environment: BUILD_DIR (default build), BENCH_WORK (default
# /var/tmp), SLIPSTREAM_BENCH_CACHE (default /var/cache/slipstream-bench), BENCH_MODES (default
# "lazy parallel overlayfs").
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCH_NAME=bench-lazy
# shellcheck source=bench/cri_env.sh
. bench/cri_env.sh

# --- images -------------------------------------------------------------------------------
BUILD_DIR="$build_dir" BENCH_IMAGE_PUSH="$build_dir/bench/bench_image_push" \
  scripts/bench-image.sh "$ref" >&2 || die "scripts/bench-image.sh failed"
image_desc="bench-image.sh (debootstrap rootfs + Debian package files, gzip)"
big_file=/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1  # > 100 MB, in the packages layer
# The sandbox (pause) image: busybox sleeping forever; no image comes from the internet.
mkdir -p "$work/pause/bin"
cp /bin/busybox "$work/pause/bin/busybox"
ln -s busybox "$work/pause/bin/sleep"
"$slip" image build --dir "$work/pause" --compression gzip --cmd /bin/sleep 2147483647 \
  --work-dir "$work/pause-oci" --push "$host/bench/pause:1" >&2
log "SOCI index for $ref"
"$slip" index push "$ref" --v1 --hosts-dir "$work/certs.d" >&2
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

# run_mode NAME SNAPSHOTTER MODE: a cold containerd (+ slipstreamd in MODE for "slipstream"),
# one CRI PullImage and the first command; sets pull_s, first_s (PullImage to output), run_s
# (PullImage until cri run returned, after the pod's teardown),
# read_s (sequential read of $big_file in a container), slip_rss.
run_mode() {
  local name="$1" snapshotter="$2" mode="$3" dir="$work/run-$1"
  mkdir -p "$dir/cni"
  local slip_pid="" ctd_pid proxy=""
  slip_rss="-"
  if [ "$snapshotter" = slipstream ]; then
    cat >"$dir/slipstreamd.toml" <<TOML
default_mode = "$mode"
# The run dir goes at the end: unmount rather than leave the mount to the fd holder.
[lazy]
keep_mounts_on_exit = false
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
  sandbox_image = "$host/bench/pause:1"
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
  log "CRI PullImage + first command, snapshotter=$snapshotter${mode:+ mode=$mode}"
  local start end
  start="$(date +%s%N)"
  "$slip" cri pull "$ref" --endpoint "$dir/containerd.sock" >"$dir/pull.out" 2>&1 ||
    { cat "$dir/pull.out" >&2; die "cri pull ($name) failed"; }
  pull_s="$(wall "$start" "$(date +%s%N)")"
  "$slip" cri run --endpoint "$dir/containerd.sock" "$ref" --output-time -- \
    /bin/cat /etc/debian_version >"$dir/first.out" 2>"$dir/first.err" ||
    { cat "$dir/first.out" "$dir/first.err" >&2; die "cri run ($name) failed"; }
  end="$(date +%s%N)"
  # The first output's time as the runtime logged it (containerd-shim stamps each line as it
  # reads it from the container): cri run's polling for the exit and the pod's teardown
  # come after it, the same ~0.2-0.4 s in every mode.
  local output_ns
  output_ns="$(sed -n 's/^first output: \([0-9]*\)$/\1/p' "$dir/first.err")"
  [ -n "$output_ns" ] || { cat "$dir/first.err" >&2; die "no first output time ($name)"; }
  first_s="$(wall "$start" "$output_ns")"
  run_s="$(wall "$start" "$end")"
  log "$name: pulled in $pull_s s, first output ($(head -1 "$dir/first.out")) after $first_s s, cri run returned after $run_s s"
  # The big file is read cold: no page cache for it (nor for the registry's blobs), so the
  # parallel run reads the local disk under BENCH_WORK and the lazy run fetches and inflates.
  sync
  echo 3 >/proc/sys/vm/drop_caches
  start="$(date +%s%N)"
  "$slip" cri run --endpoint "$dir/containerd.sock" "$ref" -- \
    /bin/sh -c "dd if=$big_file of=/dev/null bs=1M 2>&1" \
    >"$dir/read.out" 2>&1 || { cat "$dir/read.out" >&2; die "read ($name) failed"; }
  read_s="$(wall "$start" "$(date +%s%N)")"
  # dd's own clock: the read alone, without the container's start.
  dd_s="$(sed -n 's/.* copied, \([0-9.e-]*\) s,.*/\1/p' "$dir/read.out" | tail -1)"
  [ -n "$dd_s" ] || { cat "$dir/read.out" >&2; die "no dd timing in the read ($name)"; }
  dd_s="$(awk -v s="$dd_s" 'BEGIN { printf "%.3f", s }')"
  if [ "$mode" = lazy ]; then
    "$slip" status --address "$dir/slipstream.sock" >&2 || true
  fi

  stop_timed "$ctd_pid"
  if [ -n "$slip_pid" ]; then
    stop_timed "$slip_pid"
    slip_rss="$(rss_mib "$dir/slipstreamd.time")"
  fi
  if [ -S "$dir/slipstream/fuse-holder.sock" ]; then
    # The fd holder slipstreamd started (lazy mode), and a mount a crash may have left.
    "$build_dir/cmd/slipstream-fuse-holder" --socket "$dir/slipstream/fuse-holder.sock" --stop \
      >/dev/null 2>&1 || true
    umount -l "$dir/slipstream/fuse" 2>/dev/null || true
  fi
  umount -R "$dir/containerd-root" 2>/dev/null || true
  rm -rf "$dir"
}

cache_dir="${SLIPSTREAM_BENCH_CACHE:-/var/cache/slipstream-bench}"
big_mb=$(( $(stat -c %s "$cache_dir/big$big_file") >> 20 ))

# Peer: igzip inflating the big layer on one core (blob in the page cache). A lazy read must
# inflate what it returns, so this bounds it: the file alone takes big_mb / that rate of CPU.
big_layer="$(printf '%s\n' "${layers[@]}" | sort -k2 -n | tail -1)"
big_blob="$cache_dir/oci/blobs/sha256/$(printf '%s' "${big_layer% *}" | sed 's/^sha256://')"
[ -f "$big_blob" ] || die "no blob file $big_blob"
sync
inflated="$(igzip -d -c "$big_blob" | wc -c)"  # its size; also reads the blob into the cache
start="$(date +%s%N)"
igzip -d -c "$big_blob" >/dev/null
inflate_s="$(wall "$start" "$(date +%s%N)")"
inflate_mbs="$(awk -v b="$inflated" -v s="$inflate_s" 'BEGIN { printf "%.0f", b / 1048576 / s }')"
log "igzip -d of the big layer: $((inflated >> 20)) MiB in $inflate_s s ($inflate_mbs MiB/s, one core)"
# BENCH_MODES picks a subset (e.g. "lazy" while tuning); ratios then print as 0.
modes=" ${BENCH_MODES:-lazy parallel overlayfs} "
pull_s=0 first_s=0 run_s=0 read_s=0 dd_s=0 slip_rss=-
lz_pull=0 lz_first=0 lz_run=0 lz_read=0 lz_dd=0 lz_rss=-
pa_pull=0 pa_first=0 pa_run=0 pa_read=0 pa_dd=0 pa_rss=-
ov_pull=0 ov_first=0 ov_run=0 ov_read=0 ov_dd=0
if [[ "$modes" == *" lazy "* ]]; then
  run_mode lazy slipstream lazy
  lz_pull="$pull_s"; lz_first="$first_s"; lz_run="$run_s"; lz_read="$read_s"; lz_dd="$dd_s"; lz_rss="$slip_rss"
fi
if [[ "$modes" == *" parallel "* ]]; then
  run_mode parallel slipstream parallel
  pa_pull="$pull_s"; pa_first="$first_s"; pa_run="$run_s"; pa_read="$read_s"; pa_dd="$dd_s"; pa_rss="$slip_rss"
fi
if [[ "$modes" == *" overlayfs "* ]]; then
  run_mode overlayfs overlayfs ""
  ov_pull="$pull_s"; ov_first="$first_s"; ov_run="$run_s"; ov_read="$read_s"; ov_dd="$dd_s"
fi

# --- report -----------------------------------------------------------------------------------
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
mbs() { awk -v s="$1" -v m="$big_mb" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }'; }
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Image: $image_desc; ${#layers[@]} layers, $((compressed >> 20)) MiB compressed; registry on 127.0.0.1"
echo
echo "Read: $big_mb MiB file, page cache dropped first; slipstream's root and containerd's on $(df --output=fstype "$work" | tail -1) ($work)"
echo
echo "| method | PullImage s | PullImage to first output s | cri run returned s | read s (MiB/s), dd in the container | container with the read s | slipstreamd peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| slipstream lazy | $lz_pull | $lz_first | $lz_run | $lz_dd ($(mbs "$lz_dd")) | $lz_read | $lz_rss |"
echo "| slipstream parallel | $pa_pull | $pa_first | $pa_run | $pa_dd ($(mbs "$pa_dd")) | $pa_read | $pa_rss |"
echo "| containerd overlayfs | $ov_pull | $ov_first | $ov_run | $ov_dd ($(mbs "$ov_dd")) | $ov_read | - |"
echo
echo "first output: lazy / parallel = $(r "$lz_first" "$pa_first") (goal <= 0.10), lazy / overlayfs = $(r "$lz_first" "$ov_first") (goal <= 0.05)"
echo "cri run returned (with polling and the pod's teardown): lazy / parallel = $(r "$lz_run" "$pa_run"), lazy / overlayfs = $(r "$lz_run" "$ov_run")"
echo "read through the mount vs local disk (parallel), dd time: $(r "$pa_dd" "$lz_dd")x (goal >= 0.5); with container start: $(r "$pa_read" "$lz_read")x"
floor="$(awk -v m="$big_mb" -v r="$inflate_mbs" -v n="$(nproc)" 'BEGIN { printf "%.3f", m / r / n }')"
echo "inflate floor: igzip -d $inflate_mbs MiB/s on one core; the $big_mb MiB file on all $(nproc) cores, nothing else running: $floor s = $(r "$pa_dd" "$floor")x of local disk at most; lazy read vs that floor: $(r "$floor" "$lz_dd")x"
