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
# Fuzzing (after the tests): every target of fuzz/ on a copy of its seed corpus, built with
# clang + ASan + UBSan in build-fuzz; fails on any crash, leak, UB report or FUZZ_CHECK. Each
# target stops at 1M inputs or 30 s, whichever comes first, two at a time (about 2 minutes on
# the 2-core CI VM), from a fixed seed so that CI explores the same inputs first every run: a
# finding fails every run of that commit, not one in ten. Open-ended fuzzing with new seeds is
# `scripts/fuzz` (docs/reliability.md, "Fuzzing"); FUZZ_MAX_TIME=0 runs every target to 1M.
if [ "${SLIPSTREAM_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz --runs 1000000 --max-time "${FUZZ_MAX_TIME:-30}" --seed "${FUZZ_SEED:-1}"
fi
