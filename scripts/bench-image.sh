#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the large, realistic benchmark image and optionally pushes it:
#   layer 1: a Debian bookworm rootfs (debootstrap --variant=minbase) ~ 170 MB
#   layer 2: ~1.9 GB of real files from big Debian packages (compilers, JDK, Go, Rust std,
#            LLVM, LibreOffice, a kernel with its modules, TeX), unpacked with dpkg -x
# Everything is cached outside the repository and reused on later runs: the two trees, the
# downloaded .debs and the compressed layer blobs (OCI layout under $CACHE/oci).
#
# Usage: scripts/bench-image.sh [REFERENCE]
#   REFERENCE   where to push, e.g. 127.0.0.1:5000/bench/debian-big:gzip (omit to only build)
# Environment:
#   SLIPSTREAM_BENCH_CACHE   cache directory (default /var/cache/slipstream-bench)
#   BENCH_COMPRESSION        gzip | zstd | none (default gzip)
#   BENCH_GZIP_MEMBERS_MIB   start a new gzip member every N MiB (default 0 = one member)
#   BENCH_PACKAGES           space-separated package list replacing the default one
#   BENCH_MIRROR             Debian mirror (default: the first one apt is configured with)
#   BENCH_IMAGE_PUSH         path of the bench_image_push binary (default: build/bench/...)
#   BUILD_DIR                build directory used to find or build it (default: build)
# Needs root (debootstrap, dpkg -x ownership) and the Debian mirror; nothing else is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

ref="${1:-}"
cache="${SLIPSTREAM_BENCH_CACHE:-/var/cache/slipstream-bench}"
compression="${BENCH_COMPRESSION:-gzip}"
members="${BENCH_GZIP_MEMBERS_MIB:-0}"
build_dir="${BUILD_DIR:-build}"

log() { printf '%s bench-image: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and dpkg -x need it)"
for tool in debootstrap apt-get apt-cache dpkg; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install $tool)"
done

# The mirror apt already uses: a deb line of sources.list, else the first non-security
# URIs of a deb822 .sources file.
apt_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list ]; then
    m="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)"
  fi
  if [ -z "$m" ]; then
    m="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
         awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }')"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}
mirror="${BENCH_MIRROR:-$(apt_mirror)}"

# Big packages with many real files; the kernel package name is resolved from its
# metapackage so that the list survives point releases.
default_packages() {
  local kernel
  kernel="$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')"
  echo "golang-1.19-go golang-1.19-src openjdk-17-jre-headless openjdk-17-jdk-headless" \
       "libllvm15 libclang-cpp15 gcc-12 cpp-12 g++-12 libreoffice-core libstd-rust-dev" \
       "libstd-rust-1.63 libgl1-mesa-dri libicu72 libpython3.11-dev texlive-latex-extra" \
       "${kernel}"
}

mkdir -p "$cache"

# --- layer 1: minbase rootfs -----------------------------------------------------------
rootfs="$cache/rootfs"
if [ -f "$cache/rootfs.stamp" ] && [ -d "$rootfs" ]; then
  log "reusing rootfs ($(cat "$cache/rootfs.stamp"))"
else
  log "debootstrap bookworm from $mirror"
  rm -rf "$rootfs" "$rootfs.tmp"
  debootstrap --variant=minbase bookworm "$rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $cache/debootstrap.log"
  # Caches and logs differ from run to run; they have no place in an image.
  rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb "$rootfs.tmp"/var/lib/apt/lists/* \
         "$rootfs.tmp"/var/log/* "$rootfs.tmp"/dev/*
  mv "$rootfs.tmp" "$rootfs"
  date -u +%Y%m%dT%H%M%SZ >"$cache/rootfs.stamp"
fi

# --- layer 2: files of big packages ----------------------------------------------------
packages="${BENCH_PACKAGES:-$(default_packages)}"
packages="$(echo $packages)"  # normalize whitespace so the stamp compares stably
# "merged-usr": the tree's top-level lib/bin/sbin are folded into usr/ (see below); part of
# the stamp so trees unpacked before that was done are rebuilt.
want_stamp="$(echo "$packages merged-usr" | sha256sum | cut -c1-16)"
big="$cache/big"
if [ -f "$cache/big.stamp" ] && [ "$(head -1 "$cache/big.stamp")" = "$want_stamp" ] && [ -d "$big" ]; then
  log "reusing package tree ($(tail -1 "$cache/big.stamp"))"
else
  debs="$cache/debs"
  mkdir -p "$debs"
  if ! apt-cache show golang-1.19-go >/dev/null 2>&1; then
    log "apt-get update"
    apt-get update -qq
  fi
  log "downloading: $packages"
  # apt-get download skips nothing by itself: fetch only packages not yet in the cache.
  missing=""
  for p in $packages; do
    ls "$debs/${p}_"*.deb >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root $missing) ||
      die "apt-get download failed"
  fi
  rm -rf "$big" "$big.tmp"
  mkdir -p "$big.tmp"
  for p in $packages; do
    for deb in "$debs/${p}_"*.deb; do
      log "unpacking $(basename "$deb")"
      dpkg -x "$deb" "$big.tmp"
    done
  done
  # Bookworm's rootfs is merged-usr (/lib -> usr/lib, ...). A real lib/ directory in the upper
  # layer (the kernel package ships /lib/modules) would mask that symlink in the container's
  # overlay and with it the dynamic loader (/lib64/ld-linux-x86-64.so.2 points into /lib), so
  # no binary of the image could start. Fold those directories into usr/ as dpkg does.
  for d in bin sbin lib lib32 lib64 libx32; do
    if [ -d "$big.tmp/$d" ] && [ ! -L "$big.tmp/$d" ]; then
      mkdir -p "$big.tmp/usr/$d"
      cp -a "$big.tmp/$d/." "$big.tmp/usr/$d/"
      rm -rf "$big.tmp/$d"
    fi
  done
  mv "$big.tmp" "$big"
  { echo "$want_stamp"; date -u +%Y%m%dT%H%M%SZ; } >"$cache/big.stamp"
fi
log "trees: rootfs $(du -sh "$rootfs" | cut -f1), packages $(du -sh "$big" | cut -f1)"

# --- build (reusing cached layer blobs) and push -----------------------------------------
pusher="${BENCH_IMAGE_PUSH:-$build_dir/bench/bench_image_push}"
if [ ! -x "$pusher" ]; then
  log "building bench_image_push in $build_dir"
  [ -f "$build_dir/CMakeCache.txt" ] ||
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" --target bench_image_push
fi

args=(--work-dir "$cache/oci" --compression "$compression" --platform linux/amd64
      --gzip-members-every-mib "$members"
      --layer "$rootfs" --cache-key "rootfs@$(cat "$cache/rootfs.stamp")"
      --layer "$big" --cache-key "big@$(tail -1 "$cache/big.stamp")"
      --cmd /bin/bash)
[ -n "$ref" ] && args+=(--push "$ref")
log "building image ($compression) in $cache/oci${ref:+ and pushing to $ref}"
"$pusher" "${args[@]}"
