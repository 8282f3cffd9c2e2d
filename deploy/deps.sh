#!/usr/bin/env bash
# Installs what Baton's sandbox needs on Debian, only when something is missing.
set -Eeuo pipefail
PKGS=(mariadb-server mariadb-client haproxy socat iptables curl ca-certificates chromium shellcheck gettext-base postgresql-15 prometheus systemd)
need=0
for c in mariadbd mariadb haproxy socat iptables curl chromium shellcheck envsubst prometheus promtool systemd-analyze; do
  command -v "$c" >/dev/null 2>&1 || need=1
done
[ -x /usr/lib/postgresql/15/bin/postgres ] || need=1 # the production Temporal's database
if [ "$need" = 1 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"
fi
command -v go >/dev/null || { echo "Go 1.26 is required (https://go.dev/dl)" >&2; exit 1; }
