#!/usr/bin/env bash
# Checks deploy/systemd's units with systemd-analyze verify, in a throwaway root that holds
# the units, stand-ins for Baton's binaries at their ExecStart paths, and the host's own
# system units (the targets they order against). Any message fails: systemd-analyze
# exits 0 on an unknown key, which it only warns about.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
UNITS=$HERE/../systemd
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (apt-get install systemd)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd/system"
cp -a /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
for b in baton-worker baton-detector baton-heartbeat; do
  printf '#!/bin/sh\n' >"$root/usr/local/bin/$b"
  chmod +x "$root/usr/local/bin/$b"
done
cp "$UNITS"/*.service "$root/etc/systemd/system/"
units=()
for f in "$UNITS"/*.service; do
  u=$(basename "$f")
  case $u in *@.service) u=${u%@.service}@node1.service ;; esac # a template, as one instance
  units+=("$u")
done
if ! out=$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1) || [ -n "$out" ]; then
  echo "systemd-analyze verify ${units[*]}:" >&2
  echo "${out//$root/}" >&2
  exit 1
fi
echo "systemd units verified: ${units[*]}"
