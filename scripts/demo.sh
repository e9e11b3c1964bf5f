#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Command 1: installs, builds, and runs the demo on an embedded default:
#   1. a local registry (docker-registry on 127.0.0.1) and a generated sample image
#      (busybox + a 256 MiB data layer) pushed with slipstream's own push code;
#   2. `slipstream inspect`, a parallel-range `slipstream fetch` checked against its digest,
#      and the same fetch through the chunk cache;
#   3. `slipstream pull --rootfs`: every layer fetched in chunks and unpacked while it downloads;
#   4. slipstreamd behind a private containerd 1.6 with CRI: `slipstream cri pull` in parallel
#      mode (slipstream fetches and unpacks every layer) and in lazy mode (a SOCI index pushed
#      with `slipstream index push`, the big layer mounted through FUSE), each followed by a
#      container that runs (`slipstream cri run`).
# Everything runs in a temp dir and is stopped and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh default >/dev/null
ss=$PWD/build/cmd/slipstream
ssd=$PWD/build/cmd/slipstreamd

work=$(mktemp -d /tmp/slipstream-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  umount -R "$work/containerd-state" 2>/dev/null || true
  # Lazy mode's FUSE mount outlives slipstreamd on purpose (the fd holder keeps it for the
  # next one): tear both down, as an operator removing slipstream would.
  umount -l "$work/slipstream-root/fuse" 2>/dev/null || true
  "$PWD/build/cmd/slipstream-fuse-holder" --socket "$work/slipstream-root/fuse-holder.sock" \
    --stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_for() {  # wait_for PATH WHAT: poll (bounded) until PATH exists
  for _ in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.1; done
  echo "$2 did not start" >&2
  exit 1
}

step "starting a local registry (docker-registry on 127.0.0.1, free port)"
"$ss" registry serve --ready-file "$work/registry" &
pids+=($!)
wait_for "$work/registry" registry
registry=$(cat "$work/registry")
image="$registry/demo/sample:latest"

step "generating a sample image: busybox rootfs layer + 256 MiB data layer"
mkdir -p "$work/base/bin" "$work/base/etc" "$work/data/srv/model"
cp /bin/busybox "$work/base/bin/busybox"
for applet in sh echo cat ls wc head; do ln -s busybox "$work/base/bin/$applet"; done
echo "hello from a slipstream snapshot" > "$work/base/etc/motd"
head -c $((256 << 20)) /dev/urandom > "$work/data/srv/model/weights.bin"
"$ss" image build --dir "$work/base" --dir "$work/data" --compression gzip \
  --cmd /bin/sh --push "$image"

step "slipstream inspect $image"
"$ss" inspect "$image"

step "slipstream fetch (parallel Range requests) of layer 1"
"$ss" fetch "$image" --layer 1 -o "$work/layer1.tar.gz"
want=$("$ss" inspect --json "$image" | jq -r '.layers[1].digest')
got="sha256:$(sha256sum "$work/layer1.tar.gz" | cut -d' ' -f1)"
echo "manifest digest: $want"
echo "fetched digest:  $got"
[ "$want" = "$got" ] || { echo "digest mismatch" >&2; exit 1; }

step "the same fetch twice through the chunk cache: the second asks the registry for nothing"
"$ss" fetch "$image" --layer 1 -o "$work/cached1.tar.gz" --cache-dir "$work/cache"
"$ss" fetch "$image" --layer 1 -o "$work/cached2.tar.gz" --cache-dir "$work/cache"
cmp "$work/cached2.tar.gz" "$work/layer1.tar.gz"

step "slipstream pull --rootfs: all layers at once, unpacked while downloading"
"$ss" pull "$image" --dest "$work/pulled" --rootfs
ls -l "$work/pulled/rootfs/bin/busybox" "$work/pulled/rootfs/srv/model/weights.bin"

step "slipstreamd behind containerd 1.6 (CRI): a pull in each mode, and containers that run"
# The sandbox (pause) image and a second image for lazy mode come from the same registry: no
# image is ever downloaded from the internet.
mkdir -p "$work/pause/bin" "$work/lazy/srv/model"
cp /bin/busybox "$work/pause/bin/busybox"
ln -s busybox "$work/pause/bin/sleep"
"$ss" image build --dir "$work/pause" --compression gzip --cmd /bin/sleep 2147483647 \
  --push "$registry/demo/pause:1" >/dev/null
lazy_image="$registry/demo/lazy:latest"
head -c $((256 << 20)) /dev/urandom > "$work/lazy/srv/model/weights.bin"
echo "read lazily through FUSE" > "$work/lazy/srv/model/README"
"$ss" image build --dir "$work/base" --dir "$work/lazy" --compression gzip \
  --cmd /bin/sh --push "$lazy_image" >/dev/null
# Containerd's hosts.toml layout, read by containerd's CRI and by slipstreamd alike.
mkdir -p "$work/hosts/$registry"
printf 'server = "http://%s"\n' "$registry" > "$work/hosts/$registry/hosts.toml"

start_slipstreamd() {  # start_slipstreamd MODE
  printf 'default_mode = "%s"\n[metrics]\naddress = "127.0.0.1:0"\n[registry]\nhosts_dir = "%s"\n' \
    "$1" "$work/hosts" > "$work/slipstreamd.toml"
  rm -f "$work/run/slipstream.sock"
  "$ssd" --config "$work/slipstreamd.toml" --root "$work/slipstream-root" \
    --address "$work/run/slipstream.sock" 2>> "$work/slipstreamd.log" &
  ssd_pid=$!
  pids+=($ssd_pid)
  wait_for "$work/run/slipstream.sock" slipstreamd
}
mkdir -p "$work/run" "$work/cni"
start_slipstreamd parallel
cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/containerd-root"
state = "$work/containerd-state"
[grpc]
  address = "$work/run/containerd.sock"
[ttrpc]
  address = "$work/run/containerd.sock.ttrpc"
[proxy_plugins]
  [proxy_plugins.slipstream]
    type = "snapshot"
    address = "$work/run/slipstream.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$registry/demo/pause:1"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "slipstream"
    disable_snapshot_annotations = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/hosts"
TOML
containerd --config "$work/containerd.toml" 2> "$work/containerd.log" &
pids+=($!)
cri() {  # cri SUBCOMMAND ARGS...: slipstream's own CRI client against our containerd
  local sub=$1
  shift
  "$ss" cri "$sub" --endpoint "$work/run/containerd.sock" "$@"
}
for _ in $(seq 300); do cri images >/dev/null 2>&1 && break; sleep 0.1; done
"$ss" doctor --containerd-config "$work/containerd.toml" --address "$work/run/slipstream.sock" \
  --root "$work/slipstream-root" || true

step "parallel mode: CRI PullImage; slipstream fetches and unpacks every layer itself"
cri pull "$image"
cri run "$image" -- /bin/cat /etc/motd
echo "layer blobs in containerd's content store: $(ctr -a "$work/run/containerd.sock" -n k8s.io \
  content ls -q | wc -l) (manifests and configs only: no layer)"

step "lazy mode: a SOCI index for the second image, then a pull that mounts it at once"
"$ss" index push "$lazy_image" --v1 --span-size $((1 << 20))
kill "$ssd_pid"; wait "$ssd_pid" 2>/dev/null || true
start_slipstreamd lazy
cri pull "$lazy_image"
cri run "$lazy_image" -- /bin/cat /srv/model/README
snap=(ctr -a "$work/run/containerd.sock" -n k8s.io snapshot --snapshotter slipstream)
for key in $("${snap[@]}" ls | awk 'NR > 1 && $NF == "Committed" { print $1 }'); do
  mode=$("${snap[@]}" info "$key" | jq -r '.Labels["slipstream.io/mode"] // "local"')
  echo "snapshot $key: $mode"
done

step "slipstreamd's status and a few of its Prometheus metrics"
"$ss" status --address "$work/run/slipstream.sock"
metrics=$("$ss" status --address "$work/run/slipstream.sock" --json | jq -r .metricsAddress)
curl -fsS "http://$metrics/metrics" | grep -E '^slipstream_(prepare_seconds_count|registry_bytes_total|lazy_compressed_bytes|span_fetch_seconds_count)' || true

step "done: registry → slipstream fetch/pull → slipstreamd (parallel and lazy) → running containers"
