#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds slipstream. Usage: scripts/build.sh [preset]   (default | debug-asan)
# Compiles through ccache when it is installed (scripts/setup.sh installs it): in depend mode
# (no extra preprocessor pass on a miss) with paths relative to the checkout, so a second
# clone or a CI run on the same machine reuses objects. CCACHE_DISABLE=1 builds cold.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD" CCACHE_DEPEND=1 CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake --preset "$preset" "${launcher[@]}" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
