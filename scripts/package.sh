#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Debian package from a configured build directory and checks it: control fields,
# the files it ships, the conffile, and that the unpacked binaries run.
# Usage: scripts/package.sh [BUILD_DIR] [OUT_DIR]   (defaults: build, BUILD_DIR/package)
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
out="${2:-$build/package}"
mkdir -p "$out"
fail() { echo "package: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) ||
  { cat "$out/cpack.log" >&2; fail "cpack failed"; }
deb="$(ls "$out"/slipstream_*_amd64.deb 2>/dev/null | head -1)"
[ -n "$deb" ] || fail "no slipstream_*_amd64.deb in $out"

info="$(dpkg-deb --info "$deb")"
grep -q '^ Package: slipstream$' <<<"$info" || fail "Package field"
grep -q '^ Depends: .*fuse3' <<<"$info" || fail "Depends lacks fuse3: $(grep Depends <<<"$info")"
grep -q 'libgrpc++' <<<"$info" || fail "Depends lacks the shared libraries (shlibdeps)"
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/slipstream/config.toml ] ||
  fail "conffiles"

contents="$(dpkg-deb --contents "$deb")"
for f in ./usr/bin/slipstreamd ./usr/bin/slipstream ./usr/bin/slipstream-fuse-holder \
         ./etc/slipstream/config.toml ./usr/lib/systemd/system/slipstreamd.service \
         ./usr/lib/systemd/system/slipstream-fuse-holder.service \
         ./usr/share/slipstream/containerd/config-1.6.toml \
         ./usr/share/slipstream/containerd/config-2.x.toml \
         ./usr/share/slipstream/kubernetes/kubelet-image-service.yaml; do
  grep -q " $f\$" <<<"$contents" || fail "missing $f"
done

root="$out/root"
rm -rf "$root"
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/slipstream" --help >/dev/null || fail "slipstream --help"
"$root/usr/bin/slipstreamd" --help >/dev/null || fail "slipstreamd --help"
# (the holder has no --help: it answers with its usage line and exit code 2)
usage="$("$root/usr/bin/slipstream-fuse-holder" --help 2>&1 || true)"
grep -q '^usage: slipstream-fuse-holder' <<<"$usage" || fail "slipstream-fuse-holder: $usage"
# The units start the binaries where the package puts them.
grep -q '^ExecStart=/usr/bin/slipstreamd ' "$root/usr/lib/systemd/system/slipstreamd.service" ||
  fail "slipstreamd.service ExecStart"
echo "package: $deb ($(du -h "$deb" | cut -f1)) ok"
