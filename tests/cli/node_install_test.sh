#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package and the node installer the DaemonSet runs, against a fake host root per
# containerd release: the stock `containerd config default` of 1.6 (bookworm) and 2.1 (sid
# .deb) is switched to slipstream, containerd itself accepts the result, `slipstream doctor`
# finds nothing wrong with it, and a second run changes nothing.
# Usage: node_install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1" build="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$src/scripts/package.sh" "$build" "$work/pkg"
deb="$(ls "$work"/pkg/slipstream_*_amd64.deb)"

check() {
  local name="$1" containerd="$2" want="$3"
  [ -x "$containerd" ] || fail "containerd $name missing ($containerd): run scripts/setup.sh"
  local root="$work/host-$name"
  mkdir -p "$root/etc/containerd"
  "$containerd" config default >"$root/etc/containerd/config.toml"
  cp "$root/etc/containerd/config.toml" "$work/stock-$name.toml"
  "$src/deploy/node-install.sh" --deb "$deb" --host-root "$root" --no-restart >"$work/out1-$name"
  grep -q "set up for slipstream" "$work/out1-$name" || fail "$name: $(cat "$work/out1-$name")"
  for f in usr/bin/slipstreamd usr/bin/slipstream usr/bin/slipstream-fuse-holder \
           usr/lib/systemd/system/slipstreamd.service etc/slipstream/config.toml \
           usr/share/slipstream/containerd/config-1.6.toml; do
    [ -f "$root/$f" ] || fail "$name: $f not installed"
  done
  cmp -s "$root/etc/containerd/config.toml.before-slipstream" "$work/stock-$name.toml" ||
    fail "$name: no backup of the stock config"
  # containerd reads the edited file, with slipstream in it.
  dump="$("$containerd" --config "$root/etc/containerd/config.toml" config dump)"
  grep -Eq "snapshotter = ['\"]slipstream['\"]" <<<"$dump" || fail "$name: no CRI snapshotter"
  grep -Eq "$want" <<<"$dump" || fail "$name: dump lacks /$want/"
  # doctor's config checks pass (the socket check fails: no slipstreamd runs here).
  report="$("$root/usr/bin/slipstream" doctor --containerd-config "$root/etc/containerd/config.toml" \
    --containerd-bin "$containerd" 2>&1 || true)"
  if grep -q '^\[FAIL\] containerd' <<<"$report"; then fail "$name: doctor: $report"; fi
  grep -q '^\[ok  \] containerd config: proxy plugin' <<<"$report" || fail "$name: doctor: $report"
  # The operator's edits to slipstream's config survive a reinstall; nothing else changes.
  echo '# edited' >>"$root/etc/slipstream/config.toml"
  before="$(cat "$root/etc/containerd/config.toml")"
  "$src/deploy/node-install.sh" --deb "$deb" --host-root "$root" --no-restart >"$work/out2-$name"
  grep -q "nothing to do" "$work/out2-$name" || fail "$name: second run: $(cat "$work/out2-$name")"
  [ "$(cat "$root/etc/containerd/config.toml")" = "$before" ] || fail "$name: config rewritten"
  tail -1 "$root/etc/slipstream/config.toml" | grep -q '# edited' || fail "$name: config.toml replaced"
  echo "ok: containerd $name"
}
check 1.6 "$(command -v containerd)" "disable_snapshot_annotations = false"
check 2.1 /opt/slipstream-compat/containerd-2.1/usr/bin/containerd \
  "enable_remote_snapshot_annotations = ['\"]true['\"]"
# A node without a containerd config is refused, not half-installed.
mkdir -p "$work/bare"
if "$src/deploy/node-install.sh" --deb "$deb" --host-root "$work/bare" --no-restart 2>/dev/null; then
  fail "installed onto a node without a containerd config"
fi
[ ! -e "$work/bare/usr/bin/slipstreamd" ] || fail "bare node got binaries"
echo "node install: ok"
