#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches the containerd releases the compatibility tests run besides bookworm's 1.6:
#   1.7.x from Debian trixie -> /opt/slipstream-compat/containerd-1.7/
#   2.1.x from Debian sid    -> /opt/slipstream-compat/containerd-2.1/
# Each is the Debian `containerd` .deb unpacked with `dpkg -x` (never installed: the system's
# containerd 1.6 and its apt sources stay as they are). apt runs with a private configuration
# (own sources list, state and cache under /var/cache/slipstream-compat/apt), so the system
# never sees trixie or sid. Both .debs need only libc6 >= 2.34 and run with bookworm's runc
# (sid's runc needs libc6 >= 2.38, so it could not run here anyway).
#
# Idempotent: a release already unpacked (its usr/bin/containerd present) is skipped without
# touching the network. Reads no stdin. Fails with a clear message when the mirror lacks a
# release. Environment: SLIPSTREAM_COMPAT_DIR (default /opt/slipstream-compat),
# SLIPSTREAM_COMPAT_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

COMPAT_DIR="${SLIPSTREAM_COMPAT_DIR:-/opt/slipstream-compat}"
MIRROR="${SLIPSTREAM_COMPAT_MIRROR:-http://deb.debian.org/debian}"
APT_DIR=/var/cache/slipstream-compat/apt
# "<major.minor> <suite>": the release the tests expect and the Debian suite carrying it.
RELEASES=("1.7 trixie" "2.1 sid")

die() { echo "fetch-containerd: $*" >&2; exit 1; }

missing=()
for r in "${RELEASES[@]}"; do
  read -r minor suite <<<"$r"
  [ -x "$COMPAT_DIR/containerd-$minor/usr/bin/containerd" ] || missing+=("$r")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "fetch-containerd: containerd $(printf '%s ' "${RELEASES[@]%% *}")already in $COMPAT_DIR"
  exit 0
fi

# The private apt world: only trixie and sid main, amd64, nothing shared with the system's.
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial" "$APT_DIR/etc/preferences.d"
: >"$APT_DIR/status"
{
  for r in "${missing[@]}"; do
    read -r _ suite <<<"$r"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $suite main"
  done
} | sort -u >"$APT_DIR/etc/sources.list"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APT_DIR/etc/sources.list"
  -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::Etc::Preferences=/nonexistent"
  -o "Dir::Etc::PreferencesParts=$APT_DIR/etc/preferences.d"
  -o "Dir::State=$APT_DIR"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::State::status=$APT_DIR/status"
  -o "Dir::Cache=$APT_DIR"
  -o "Dir::Cache::archives=$APT_DIR/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  -o "APT::Architectures::=amd64"
  -o "APT::Sandbox::User=root"
  -o "Acquire::Retries=3"
)
echo "fetch-containerd: apt update (trixie/sid, private lists in $APT_DIR)"
apt-get -qq --error-on=any "${APT_OPTS[@]}" update </dev/null || die "apt-get update against $MIRROR failed"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in "${missing[@]}"; do
  read -r minor suite <<<"$r"
  # madison lines: "containerd | 2.1.9+ds1-5 | http://deb.debian.org/debian sid/main amd64 Packages"
  version=$(apt-cache "${APT_OPTS[@]}" madison containerd </dev/null |
            awk -F' *[|] *' -v s=" $suite/main " -v m="$minor." \
                'index($3, s) && index($2, m) == 1 { print $2; exit }')
  [ -n "$version" ] || die "$MIRROR $suite carries no containerd $minor.x (madison: $(
    apt-cache "${APT_OPTS[@]}" madison containerd </dev/null | tr '\n' ';'))"
  echo "fetch-containerd: containerd $version ($suite) -> $COMPAT_DIR/containerd-$minor"
  (cd "$work" && apt-get -qq "${APT_OPTS[@]}" download "containerd=$version" </dev/null) ||
    die "apt-get download containerd=$version failed"
  deb=$(ls "$work"/containerd_*.deb)
  # Unpack next to the target and rename, so an interrupted run leaves nothing half-made.
  mkdir -p "$COMPAT_DIR"
  stage="$COMPAT_DIR/.containerd-$minor.tmp"
  rm -rf "$stage"
  dpkg -x "$deb" "$stage"
  [ -x "$stage/usr/bin/containerd" ] || die "$deb has no usr/bin/containerd"
  echo "$version" >"$stage/VERSION"
  rm -rf "$COMPAT_DIR/containerd-$minor"
  mv "$stage" "$COMPAT_DIR/containerd-$minor"
  rm -f "$deb"
  "$COMPAT_DIR/containerd-$minor/usr/bin/containerd" --version
done
