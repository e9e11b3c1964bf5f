#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every package slipstream needs to build, test, benchmark and demo. Idempotent:
# packages already present are skipped by apt; safe to run on every CI run.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates ccache
  # fuzzing (scripts/fuzz): clang 14 with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev llvm
  # libraries
  libcurl4-openssl-dev libssl-dev zlib1g-dev libzstd-dev libisal-dev libabsl-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libfuse3-dev libflatbuffers-dev flatbuffers-compiler libsqlite3-dev
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libnghttp2-dev libre2-dev
  libgtest-dev libgmock-dev
  # real peers used by tests, benchmarks and the demo
  docker-registry containerd runc fuse3 apache2-utils openssl curl
  isal pigz zstd tar jq debootstrap golang-github-containerd-containerd-dev
  busybox-static
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-registry's package starts a service on :5000 where an init system exists; tests run
# their own registries on free ports, so a stray one is harmless but we do not rely on it.
echo "setup: all packages present"
# containerd 1.7 (trixie) and 2.1 (sid), unpacked under /opt/slipstream-compat for the
# compatibility tests (tests/integration/compat_test.cc); skipped when already there.
"$(dirname "$0")/fetch-containerd.sh"
