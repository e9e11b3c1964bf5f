#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Command 1: installs, builds, and runs the demo on an embedded default:
#   1. a local registry (docker-registry on 127.0.0.1) and a generated sample image
#      (busybox + a 256 MiB data layer) pushed with slipstream's own push code;
#   2. `slipstream inspect`, a parallel-range `slipstream fetch` checked against its digest,
#      and the same fetch through the chunk cache;
#   3. `slipstream pull --rootfs`: every layer fetched in chunks and unpacked while it downloads;
#   4. slipstreamd behind a private containerd 1.6: `ctr image pull --snapshotter slipstream`
#      and a container that runs from slipstream's snapshots.
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
for applet in sh echo cat ls wc; do ln -s busybox "$work/base/bin/$applet"; done
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

step "slipstreamd behind containerd 1.6: pull and run a container on slipstream snapshots"
mkdir -p "$work/run"
"$ssd" --root "$work/slipstream-root" --address "$work/run/slipstream.sock" \
  2> "$work/slipstreamd.log" &
pids+=($!)
wait_for "$work/run/slipstream.sock" slipstreamd
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
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "slipstream"
    disable_snapshot_annotations = false
TOML
containerd --config "$work/containerd.toml" 2> "$work/containerd.log" &
pids+=($!)
wait_for "$work/run/containerd.sock" containerd
ctr=(ctr -a "$work/run/containerd.sock" -n demo)
for _ in $(seq 100); do "${ctr[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${ctr[@]}" image pull --plain-http --snapshotter slipstream "$image" | tail -3
"${ctr[@]}" run --rm --snapshotter slipstream "$image" demo /bin/cat /etc/motd
"${ctr[@]}" snapshot --snapshotter slipstream ls

step "done: registry → slipstream fetch/pull → slipstreamd snapshots → a running container"
