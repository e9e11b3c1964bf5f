#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Command 2: installs every dependency, builds, and runs the whole test suite (unit tests
# and integration tests against real registry processes), then the unit tests again under
# ASan + UBSan. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh default
ctest --preset default -j "$(nproc)" --no-tests=error
if [ "${SLIPSTREAM_SKIP_ASAN:-0}" != 1 ]; then
  scripts/build.sh debug-asan
  ctest --preset debug-asan -L unit -j "$(nproc)" --no-tests=error
fi
