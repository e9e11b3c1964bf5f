#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds slipstream. Usage: scripts/build.sh [preset]   (default | debug-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
