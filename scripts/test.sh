#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Command 2: installs every dependency, builds, and runs the whole test suite (unit tests
# and integration tests against real registry processes), then the unit tests again under
# ASan + UBSan, then the fuzz targets (scripts/fuzz). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh default
ctest --preset default -j "$(nproc)" --no-tests=error
if [ "${SLIPSTREAM_SKIP_ASAN:-0}" != 1 ]; then
  scripts/build.sh debug-asan
  ctest --preset debug-asan -L unit -j "$(nproc)" --no-tests=error
fi
# Fuzzing (after the tests): each listed target for 1M inputs on a copy of its seed corpus,
# built with clang + ASan + UBSan in build-fuzz; fails on any crash, leak or UB report.
if [ "${SLIPSTREAM_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz --runs 1000000 ztoc_fuzzer checkpoints_fuzzer
fi
