#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs slipstream on a node from its Debian package and switches containerd to it. Run by
# the DaemonSet installer (kubernetes/daemonset.yaml: the node's / mounted at --host-root) or
# by hand. Idempotent: a second run changes nothing and restarts nothing.
#   node-install.sh --deb FILE [--host-root DIR] [--no-restart]
# Puts the binaries in /usr/bin, the units in /usr/lib/systemd/system, the containerd and
# kubelet snippets in /usr/share/slipstream, /etc/slipstream/config.toml unless it exists,
# then `slipstream containerd-config enable` on /etc/containerd/config.toml (backed up once to
# config.toml.before-slipstream). Unless --no-restart: systemctl daemon-reload, enable --now
# slipstream-fuse-holder and slipstreamd, restart containerd (in the host's namespaces when
# --host-root is not /).
set -eu
deb="" root="/" restart=1
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb="$2"; shift 2 ;;
    --host-root) root="$2"; shift 2 ;;
    --no-restart) restart=0; shift ;;
    *) echo "node-install: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$deb" ] && [ -f "$deb" ] || { echo "node-install: --deb FILE is required" >&2; exit 2; }
[ -d "$root" ] || { echo "node-install: host root $root is not a directory" >&2; exit 2; }
ctd_config="$root/etc/containerd/config.toml"
[ -f "$ctd_config" ] || {
  echo "node-install: $ctd_config missing (containerd config default > it first)" >&2; exit 1; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dpkg-deb -x "$deb" "$stage"

changed=0
# Copies $1 (relative to the package) to the same path under the host root when it differs.
place() {
  if ! cmp -s "$stage/$1" "$root/$1"; then
    install -D -m "$2" "$stage/$1" "$root/$1"
    changed=1
  fi
}
for f in usr/bin/slipstreamd usr/bin/slipstream usr/bin/slipstream-fuse-holder; do place "$f" 0755; done
for f in usr/lib/systemd/system/slipstreamd.service usr/lib/systemd/system/slipstream-fuse-holder.service; do
  place "$f" 0644
done
for f in $(cd "$stage" && find usr/share/slipstream -type f); do place "$f" 0644; done
if [ ! -e "$root/etc/slipstream/config.toml" ]; then
  install -D -m 0644 "$stage/etc/slipstream/config.toml" "$root/etc/slipstream/config.toml"
  changed=1
fi
mkdir -p "$root/var/lib/slipstream"

report="$("$stage/usr/bin/slipstream" containerd-config enable --in "$ctd_config")"
echo "node-install: $report"
case "$report" in *unchanged*) ;; *) changed=1 ;; esac

if [ "$changed" = 0 ]; then
  echo "node-install: slipstream already installed, nothing to do"
  exit 0
fi
if [ "$restart" = 1 ]; then
  run() { if [ "$root" = / ]; then "$@"; else nsenter -t 1 -m -u -i -n -p -- "$@"; fi; }
  run systemctl daemon-reload
  run systemctl enable --now slipstream-fuse-holder.service slipstreamd.service
  run systemctl restart containerd.service
fi
echo "node-install: slipstream installed under $root"
