#!/bin/bash
# Run once by each database container on its first start (/docker-entrypoint-initdb.d/), as
# the image's mysql user, on its temporary server: Baton's and the application's accounts,
# with the grants of deploy/local/sandbox.sh's node_users (without its TLS requirements: the
# compose stack has no CA). Passwords come from the mounted secrets file. Nothing is
# binlogged and the binlog is reset at the end, so every node starts with an empty GTID
# history and `baton cluster add --attach` replicates from the primary's first transaction.
set -euo pipefail
SECRETS=${BATON_SECRETS_FILE:-/run/secrets/baton}
HOST=${BATON_ACCOUNT_HOST:?docker-compose.yml sets the addresses Baton and the HAProxies connect from}
# Compose mounts the file as it is on the host, and this runs as the image's mysql user.
[ -r "$SECRETS" ] || { echo "node-users: cannot read $SECRETS; make deploy/docker/secrets.env readable (chmod 644)" >&2; exit 1; }

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }
# secret KEY: its value read as Baton reads the file (internal/envfile): KEY=VALUE lines,
# blank lines and # comments skipped, surrounding quotes removed, the last line wins.
secret() {
  local line k v found=""
  while IFS= read -r line || [ -n "$line" ]; do
    line=$(trim "$line")
    [[ -z $line || $line == \#* || $line != *=* ]] && continue
    k=$(trim "${line%%=*}")
    [ "$k" = "$1" ] || continue
    v=$(trim "${line#*=}")
    while [[ $v == [\"\']* ]]; do v=${v:1}; done
    while [[ $v == *[\"\'] ]]; do v=${v%?}; done
    found=1
  done <"$SECRETS"
  [ -n "$found" ] || { echo "node-users: $1 is not set in $SECRETS" >&2; return 1; }
  printf '%s' "$v"
}
# sqlq quotes a value as an SQL string literal.
sqlq() { local v=${1//\\/\\\\}; v=${v//\'/\\\'}; printf "'%s'" "$v"; }

# One assignment a line, so that a missing key stops the script (set -e).
admin_user=$(secret MYSQL_ADMIN_USER)
admin_password=$(secret MYSQL_ADMIN_PASSWORD)
repl_user=$(secret MYSQL_REPL_USER)
repl_password=$(secret MYSQL_REPL_PASSWORD)
hb_user=$(secret MYSQL_HEARTBEAT_USER)
hb_password=$(secret MYSQL_HEARTBEAT_PASSWORD)
guard_user=$(secret MYSQL_GUARD_USER)
guard_password=$(secret MYSQL_GUARD_PASSWORD)
app_user=$(secret MYSQL_APP_USER)
app_password=$(secret MYSQL_APP_PASSWORD)
at=@$(sqlq "$HOST")

if command -v mariadb >/dev/null; then # MariaDB 10.11
  client=mariadb repl="REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR" reset="RESET MASTER"
  guard="PROCESS, CONNECTION ADMIN, READ_ONLY ADMIN, REPLICATION MASTER ADMIN, SLAVE MONITOR"
else # MySQL 8.4
  client=mysql repl="REPLICATION SLAVE, REPLICATION CLIENT" reset="RESET BINARY LOGS AND GTIDS"
  guard="PROCESS, CONNECTION_ADMIN, SYSTEM_VARIABLES_ADMIN, REPLICATION CLIENT"
fi

MYSQL_PWD=$MYSQL_ROOT_PASSWORD "$client" --protocol=socket -uroot <<SQL
SET sql_log_bin=0;
CREATE USER IF NOT EXISTS $(sqlq "$admin_user")$at IDENTIFIED BY $(sqlq "$admin_password");
GRANT ALL PRIVILEGES ON *.* TO $(sqlq "$admin_user")$at WITH GRANT OPTION;
CREATE USER IF NOT EXISTS $(sqlq "$repl_user")$at IDENTIFIED BY $(sqlq "$repl_password");
GRANT $repl ON *.* TO $(sqlq "$repl_user")$at;
CREATE USER IF NOT EXISTS $(sqlq "$hb_user")$at IDENTIFIED BY $(sqlq "$hb_password");
GRANT SELECT, INSERT, UPDATE ON baton.* TO $(sqlq "$hb_user")$at;
CREATE USER IF NOT EXISTS $(sqlq "$guard_user")$at IDENTIFIED BY $(sqlq "$guard_password");
GRANT $guard ON *.* TO $(sqlq "$guard_user")$at;
CREATE USER IF NOT EXISTS $(sqlq "$app_user")$at IDENTIFIED BY $(sqlq "$app_password");
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON app.* TO $(sqlq "$app_user")$at;
CREATE USER IF NOT EXISTS 'haproxy_check'$at;
SET sql_log_bin=1;
$reset;
SQL
echo "node-users: Baton's accounts created for $HOST"
