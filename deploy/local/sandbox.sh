#!/usr/bin/env bash
# The Baton sandbox: every real server as a local process on loopback.
#   usage: deploy/local/sandbox.sh up [--temporal dev|postgres] | down [--purge] | status | start-node NAME | rebuild-node NAME | node-up NAME [CLUSTER] | node-down NAME | start-temporal | start-consul-server N | start-worker | start-worker2 | stop-worker2 | start-detector | haproxy-reload NAME | remote-template NAME
#   start-node exits 3 when mysqld could not recover from its crash and the node was rebuilt from the primary.
# Topology and addresses are in ARCHITECTURE.md. State lives in deploy/local/state (git-ignored).
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=${BATON_STATE:-$HERE/state}
PIDS=$STATE/pids
CLUSTER=demo # the first cluster: the tests' and the demo's
# shellcheck disable=SC2034 # read by render (agent.yaml)
KV=baton/clusters/$CLUSTER
CONSUL_ADDR=127.0.0.1:8500
TEMPORAL_ADDR=127.0.0.1:7233
TEMPORAL_UI=http://127.0.0.1:8233
# dev: `temporal server start-dev` (SQLite, Web UI); postgres: the production server, one
# process per service, on PostgreSQL 15 (no Web UI). Chosen by `up --temporal MODE`.
TEMPORAL_MODE=${BATON_TEMPORAL:-$(cat "$STATE/temporal-mode" 2>/dev/null || echo dev)}
PG_ADDR=127.0.0.1:5433
NAMESPACE=baton
# name ip zone server_id cluster: two clusters, each with nodes in both zones, behind the
# same HAProxy hosts (one frontend pair per cluster, as WePay runs them)
NODES=("node1 127.0.1.1 a 101 demo" "node2 127.0.1.2 b 102 demo" "node3 127.0.1.3 a 103 demo"
  "node4 127.0.1.4 a 104 demo2" "node5 127.0.1.5 b 105 demo2")
CLUSTERS=(demo demo2)
# Spare nodes, same columns: `up` never starts them. `node-up NAME [CLUSTER]` starts one (a
# fresh MariaDB and its heartbeat agent) for a cluster a test adds at run time (demo3 unless
# told otherwise) or for `baton node add`; `node-down NAME` removes it. The cluster node-up
# was given is kept in the node's directory and replaces the last column (node_spec).
SPARE_NODES=("node6 127.0.1.6 a 106 demo3" "node7 127.0.1.7 b 107 demo3")
cluster_nodes() { # cluster: its node specs, the first primary when new (the running clusters only)
  local c=$1 spec
  for spec in "${NODES[@]}"; do set -- $spec; if [ "$5" = "$c" ]; then echo "$spec"; fi; done
}
spare_spec() { # name: the spare node's spec as in SPARE_NODES; fails for any other name
  local n=$1 spec
  for spec in "${SPARE_NODES[@]}"; do set -- $spec; if [ "$1" = "$n" ]; then echo "$spec"; return 0; fi; done
  return 1
}
node_spec() { # name: a node's spec, spare nodes too (with the cluster node-up gave them); empty if unknown
  local n=$1 spec
  for spec in "${NODES[@]}"; do set -- $spec; if [ "$1" = "$n" ]; then echo "$spec"; return 0; fi; done
  if spec=$(spare_spec "$n"); then
    set -- $spec
    echo "$1 $2 $3 $4 $(cat "$(node_dir "$1")/cluster" 2>/dev/null || echo "$5")"
  fi
  return 0
}
all_nodes() { printf '%s\n' "${NODES[@]}" "${SPARE_NODES[@]}"; } # every spec, one a line (for lookups)
# Each cluster's writer and reader ports on every HAProxy (the catalog's haproxies name the
# same addresses: `baton cluster add` takes them from baton.yaml, the reader at writer + 1);
# the local HAProxy's backends' names end in suffix_of.
writer_port() { case $1 in demo) echo "$WRITER_PORT" ;; *) echo "$DEMO2_WRITER_PORT" ;; esac; }
reader_port() { case $1 in demo) echo "$READER_PORT" ;; *) echo "$DEMO2_READER_PORT" ;; esac; }
suffix_of() { if [ "$1" != demo ]; then echo "_$1"; fi; }
MYSQL_PORT=3306
# remote HAProxy (layer 2): name ip zone
REMOTES=("a 127.0.2.1 a" "b 127.0.2.2 b")
LOCAL_IP=127.0.3.1 # layer-1 HAProxy next to the application, which lives in zone a
DETECTOR_IP=127.0.4.1 WORKER_IP=127.0.4.2 # Baton's own processes, so tests can cut their links alone
WORKER2_IP=127.0.4.3 WORKER2_METRICS=127.0.0.1:9467 # the second worker (start-worker2), on the same task queue
# shellcheck disable=SC2034 # some are read only by render, from the templates
DETECTOR_METRICS=127.0.0.1:9464 WORKER_METRICS=127.0.0.1:9466
AGENT_METRICS_PORT=9470 # each heartbeat agent serves /metrics, /healthz, /readyz on its node's address
# shellcheck disable=SC2034
WRITER_PORT=3306 READER_PORT=3307 STATS_PORT=8404 DEMO2_WRITER_PORT=3316 DEMO2_READER_PORT=3317

trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
# sqlq quotes a value as a MariaDB string literal (the replication password holds a comma,
# a double quote and a backslash, so that redaction is tested against them).
sqlq() { local v=${1//\\/\\\\}; v=${v//\'/\\\'}; printf "'%s'" "$v"; }
log() { printf '%s sandbox: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# A killed process stays a zombie until it is reaped, which can take a second here: it is not alive.
alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null && [ "$(ps -o stat= -p "$(cat "$PIDS/$1.pid")" | cut -c1)" != Z ]; }
wait_for() { # $1=what $2=tries(0.1s) $3...=command
  local what=$1 n=$2; shift 2
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "$what did not come up; see the logs under $STATE"
}
spawn() { # $1=name, rest=command; starts it in the background unless already running
  local name=$1; shift
  if alive "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return 0; fi
  mkdir -p "$PIDS" "$STATE/logs"
  nohup "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

tools() {
  local env
  env=$("$ROOT/deploy/tools/build.sh")
  # shellcheck disable=SC1090
  . "$env"
}

uuid() { cat /proc/sys/kernel/random/uuid; }
agent_token() { # name: each heartbeat agent has a Consul token of its own
  mkdir -p "$STATE/agents"
  [ -f "$STATE/agents/$1.token" ] || (umask 077; uuid >"$STATE/agents/$1.token")
}
secrets() { # Baton's secrets, and the sandbox's own Consul management token (not Baton's)
  local f=$STATE/secrets.env
  mkdir -p "$STATE"
  umask 077
  [ -f "$STATE/consul-management.token" ] || uuid >"$STATE/consul-management.token"
  [ -f "$STATE/consul-template.token" ] || uuid >"$STATE/consul-template.token"
  umask 022
  local spec
  for spec in "${NODES[@]}"; do set -- $spec; agent_token "$1"; done
  [ -f "$f" ] && return 0
  gen() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  umask 077
  cat >"$f" <<EOF
CONSUL_HTTP_TOKEN=$(uuid)
MYSQL_ADMIN_USER=baton_admin
MYSQL_ADMIN_PASSWORD=$(gen)
MYSQL_REPL_USER=baton_repl
MYSQL_REPL_PASSWORD='$(gen),"\\$(gen)'
MYSQL_HEARTBEAT_USER=baton_hb
MYSQL_HEARTBEAT_PASSWORD=$(gen)
MYSQL_GUARD_USER=baton_guard
MYSQL_GUARD_PASSWORD=$(gen)
MYSQL_APP_USER=app
MYSQL_APP_PASSWORD=$(gen)
EOF
  umask 022
}

# render prints one of deploy/local/templates with its ${KEY}s filled: from KEY=VALUE arguments,
# else from the script's variables. A key with no value is an error, never an empty string.
render() { # template [KEY=VALUE...]
  local tpl=$HERE/templates/$1 kv v list="" envs=()
  shift
  local -A val=()
  for kv in "$@"; do val[${kv%%=*}]=${kv#*=}; done
  for v in $({ grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$tpl" || true; } | tr -d '${}' | sort -u); do
    if [ -n "${val[$v]+x}" ]; then envs+=("$v=${val[$v]}")
    elif [ -n "${!v+x}" ]; then envs+=("$v=${!v}")
    else die "template $tpl: \${$v} has no value"; fi
    list+=" \${$v}"
  done
  env "${envs[@]}" envsubst "$list" <"$tpl"
}

# ---------- TLS ----------
# A sandbox CA; a server certificate per MariaDB node (naming its address), and a client
# certificate for Baton's admin user, which must present one (REQUIRE X509).
TLS_DIR=$STATE/tls
tls_files() {
  mkdir -p "$TLS_DIR"
  local d=$TLS_DIR spec
  ( umask 077
    if [ ! -f "$d/ca.pem" ]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=Baton sandbox CA" -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
    fi
    issue() { # name subjectAltName
      [ -f "$d/$1.pem" ] && return 0
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
        -keyout "$d/$1-key.pem" -out "$d/$1.csr" 2>/dev/null
      openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial -days 3650 \
        -extfile <(printf 'subjectAltName=%s' "$2") -out "$d/$1.pem" 2>/dev/null
      rm -f "$d/$1.csr"
    }
    for spec in "${NODES[@]}" "${SPARE_NODES[@]}"; do set -- $spec; issue "$1" "IP:$2,DNS:$1.$5.baton.test"; done
    issue baton "DNS:baton"
  )
  chmod 644 "$d/ca.pem"
}

# ---------- MariaDB ----------
node_dir() { echo "$STATE/mariadb/$1"; }
sql() { # $1=node, rest=SQL, as OS root over the node's Unix socket
  local n=$1; shift
  mariadb --defaults-file="$(node_dir "$n")/my.cnf" -uroot -N -B -e "$*"
}
mariadb_cnf() { # name ip server_id
  local d; d=$(node_dir "$1")
  mkdir -p "$d"
  render my.cnf NAME="$1" IP="$2" SERVER_ID="$3" DIR="$d" >"$d/my.cnf"
}

node_users() { # name: Baton's and the application's users; not binlogged, so GTID histories stay identical
  . "$STATE/secrets.env"
  sql "$1" "SET sql_log_bin=0;
    CREATE USER IF NOT EXISTS '$MYSQL_ADMIN_USER'@'127.%' IDENTIFIED BY '$MYSQL_ADMIN_PASSWORD';
    GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_ADMIN_USER'@'127.%' WITH GRANT OPTION;
    CREATE USER IF NOT EXISTS '$MYSQL_REPL_USER'@'127.%' IDENTIFIED BY $(sqlq "$MYSQL_REPL_PASSWORD");
    GRANT REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR ON *.* TO '$MYSQL_REPL_USER'@'127.%';
    CREATE USER IF NOT EXISTS '$MYSQL_HEARTBEAT_USER'@'127.%' IDENTIFIED BY '$MYSQL_HEARTBEAT_PASSWORD';
    GRANT SELECT, INSERT, UPDATE ON baton.* TO '$MYSQL_HEARTBEAT_USER'@'127.%';
    CREATE USER IF NOT EXISTS '$MYSQL_GUARD_USER'@'127.%' IDENTIFIED BY '$MYSQL_GUARD_PASSWORD';
    GRANT PROCESS, CONNECTION ADMIN, READ_ONLY ADMIN, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO '$MYSQL_GUARD_USER'@'127.%';
    CREATE USER IF NOT EXISTS '$MYSQL_APP_USER'@'127.%' IDENTIFIED BY '$MYSQL_APP_PASSWORD';
    GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON app.* TO '$MYSQL_APP_USER'@'127.%';
    CREATE USER IF NOT EXISTS 'haproxy_check'@'127.%';
    ALTER USER '$MYSQL_ADMIN_USER'@'127.%' REQUIRE X509;
    ALTER USER '$MYSQL_REPL_USER'@'127.%' REQUIRE SSL;
    ALTER USER '$MYSQL_HEARTBEAT_USER'@'127.%' REQUIRE SSL;
    ALTER USER '$MYSQL_GUARD_USER'@'127.%' REQUIRE SSL;
    FLUSH PRIVILEGES;"
}
mariadb_up() {
  . "$STATE/secrets.env"
  local fresh=0
  for spec in "${NODES[@]}"; do
    set -- $spec
    local d; d=$(node_dir "$1")
    mariadb_cnf "$1" "$2" "$4"
    if [ ! -d "$d/data/mysql" ]; then
      mariadb-install-db --defaults-file="$d/my.cnf" --skip-test-db \
        --auth-root-authentication-method=socket >"$d/install-db.log" 2>&1
      fresh=1
    fi
    spawn "mariadb-$1" mariadbd --defaults-file="$d/my.cnf"
  done
  for spec in "${NODES[@]}"; do
    set -- $spec
    wait_for "mariadb $1" 300 mariadb-admin --defaults-file="$(node_dir "$1")/my.cnf" -uroot ping
    node_users "$1"
  done
  if [ "$fresh" = 1 ]; then
    local c
    for c in "${CLUSTERS[@]}"; do
      local first; first=$(cluster_nodes "$c" | head -1)
      set -- $first
      sql "$1" "CREATE DATABASE IF NOT EXISTS app"
    done
    FRESH=1
  fi
}

replicate_from() { # name primary_ip: GTID replication over verified TLS, started
  . "$STATE/secrets.env"
  sql "$1" "CHANGE MASTER TO MASTER_HOST='$2', MASTER_PORT=$MYSQL_PORT,
    MASTER_USER='$MYSQL_REPL_USER', MASTER_PASSWORD=$(sqlq "$MYSQL_REPL_PASSWORD"),
    MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=0.5,
    MASTER_SSL=1, MASTER_SSL_CA='$TLS_DIR/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1; START SLAVE;"
}
node_ip() { # name (a spare node too)
  local spec
  spec=$(node_spec "$1")
  if [ -n "$spec" ]; then set -- $spec; echo "$2"; fi
  return 0
}
mariadb_primary_node() { # [cluster]: the node Consul names as primary (a spare node too)
  local ip spec node=""
  ip=$(kv get "baton/clusters/${1:-$CLUSTER}/primary" | sed -E 's/.*"ipv4":"([^"]+)".*/\1/')
  while read -r spec; do
    set -- $spec
    if [ "$2" = "$ip" ]; then node=$1; fi
  done < <(all_nodes)
  [ -n "$node" ] || die "Consul names no known primary ($ip)"
  echo "$node"
}
mariadb_open_primary() { # after a restart every node is read-only: open the one Consul names, per cluster
  local node c
  for c in "${CLUSTERS[@]}"; do
    node=$(mariadb_primary_node "$c")
    sql "$node" "SET GLOBAL rpl_semi_sync_master_enabled=ON; SET GLOBAL read_only=OFF"
  done
  mariadb_primary_node
}

# ---------- Consul ----------
# As production runs it: three servers (raft quorum, state on disk in each one's data dir)
# on 127.0.5.1-3, and a client agent on every host that uses Consul. 127.0.0.1:8500, which
# Baton, the CLI and the tests use, is the client agent of Baton's hosts (process "consul";
# stopping it makes Consul unavailable to Baton); each HAProxy host has its own.
CONSUL_SERVERS=(127.0.5.1 127.0.5.2 127.0.5.3)
# The sandbox itself acts with the management token; Baton gets its own, narrower one.
MGMT_TOKEN_FILE=$STATE/consul-management.token
kv() { "$CONSUL_BIN" kv "$1" -http-addr="$CONSUL_ADDR" -token-file="$MGMT_TOKEN_FILE" "${@:2}"; }
capi() { curl -sf -H "X-Consul-Token: $(cat "$MGMT_TOKEN_FILE")" "$@"; }
retry_join_flags() { local ip; for ip in "${CONSUL_SERVERS[@]}"; do printf -- '-retry-join\n%s\n' "$ip"; done; }
consul_server_up() { # n (1-3): one server, its data and config under $STATE/consul-server-n
  local n=$1 ip=${CONSUL_SERVERS[$(($1 - 1))]} d=$STATE/consul-server-$1 join="" s
  mkdir -p "$d/config" "$d/data"
  for s in "${CONSUL_SERVERS[@]}"; do join+="${join:+, }\"$s\""; done
  render consul-server.json N="$n" IP="$ip" DIR="$d" JOIN="$join" >"$d/config/server.json"
  ( umask 077; render consul-acl.json TOKEN="$(cat "$MGMT_TOKEN_FILE")" >"$d/config/acl.json" )
  spawn "consul-server-$n" "$CONSUL_BIN" agent -config-dir "$d/config"
}
consul_up() {
  local t0=$SECONDS n
  mkdir -p "$STATE/consul.d" "$STATE/consul/data"
  rm -f "$STATE"/consul.d/haproxy-*.json # registered by each host's own agent now
  consul_acl_config
  for n in 1 2 3; do consul_server_up "$n"; done
  local join; mapfile -t join < <(retry_join_flags)
  spawn consul "$CONSUL_BIN" agent -node baton-local -bind 127.0.0.1 -client 127.0.0.1 -http-port 8500 \
    -grpc-port -1 -dns-port -1 -data-dir "$STATE/consul/data" "${join[@]}" -retry-interval 500ms \
    -enable-local-script-checks -config-dir "$STATE/consul.d" -log-level warn
  # Up means a leader is elected and the KV answers through the client agent.
  wait_for "consul leader" 600 sh -c "curl -sf http://$CONSUL_ADDR/v1/status/leader | grep -q ':8300'"
  wait_for "consul kv" 300 kv get -recurse baton/
  consul_acl_tokens
  # Restored only into an empty KV (a purged state keeps no backup either; harmless).
  if [ -z "$(kv get -recurse baton/ 2>/dev/null)" ] && [ -f "$STATE/consul-kv.json" ]; then
    kv import "@$STATE/consul-kv.json" >/dev/null
    log "consul: KV restored from the last down"
  fi
  log "consul: 3 servers and the client agent up in $((SECONDS - t0))s (leader $(curl -sf "http://$CONSUL_ADDR/v1/status/leader"))"
}
# onboard seeds a new cluster's topology as a user would: `baton cluster add --local` (no worker runs
# yet: the CLI does the steps itself with the full config) discovers the
# replicas from the primary and checks every node (a fresh sandbox only; a restart keeps it).
# New servers are made a cluster by the same command (--init opens the primary, --attach
# makes the others its replicas), as docker-compose's bootstrap does.
onboard() { # cluster
  local c=$1 spec names="" zones="" attach="" p extra=()
  kv get "baton/clusters/$c/primary" >/dev/null 2>&1 && return 0
  local first; first=$(cluster_nodes "$c" | head -1)
  set -- $first; p=$1
  while read -r spec; do
    set -- $spec
    names+="${names:+,}$2=$1" zones+="${zones:+,}$2=$3"
    [ "$1" = "$p" ] || attach+="${attach:+,}$2:$MYSQL_PORT"
  done < <(cluster_nodes "$c")
  if [ "${FRESH:-0}" = 1 ]; then extra=(--init --attach "$attach"); else
    wait_for "every replica connected to $p" 100 sh -c \
      "[ \$(mariadb --defaults-file='$(node_dir "$p")/my.cnf' -uroot -N -e 'SHOW SLAVE HOSTS' | wc -l) -eq $(($(cluster_nodes "$c" | wc -l) - 1)) ]"
  fi
  set -- $first
  "$STATE/bin/baton" --config "$STATE/baton.yaml" cluster add --local --name "$c" --primary "$2:$MYSQL_PORT" \
    --names "$names" --zones "$zones" "${extra[@]}" >&2
}
consul_acl_config() { # ACLs on, default deny: every client needs a token (the servers' own acl.json creates the management token)
  ( umask 077; render consul-agent-acl.json TOKEN="$(cat "$MGMT_TOKEN_FILE")" >"$STATE/consul.d/acl.json" )
  render consul-client.json >"$STATE/consul.d/client.json"
}
consul_acl_tokens() { # (re)create or update Baton's, consul-template's and the agents' policies and tokens
  acl_token baton "Baton: worker, detector, CLI and heartbeat agents" \
    "$(grep '^CONSUL_HTTP_TOKEN=' "$STATE/secrets.env" | cut -d= -f2)" \
    'key_prefix "baton/" { policy = "write" } service "haproxy" { policy = "read" } node_prefix "" { policy = "read" } service "baton-detector" { policy = "write" } session_prefix "" { policy = "write" }'
  acl_token consul-template "consul-template on the remote HAProxy hosts: reads the topology" \
    "$(cat "$STATE/consul-template.token")" 'key_prefix "baton/" { policy = "read" }'
  local spec
  for spec in "${NODES[@]}"; do set -- $spec; agent_acl "$1" "$5"; done
}
agent_acl() { # name cluster: an agent reads its cluster, writes its own reach key, its own node's fencing and its cluster's lease
  acl_token "agent-$1" "heartbeat agent of $1" "$(cat "$STATE/agents/$1.token")" \
    "key_prefix \"baton/clusters/$2/\" { policy = \"read\" } key \"baton/reach/$2/$1\" { policy = \"write\" } key \"baton/clusters/$2/fenced/$1\" { policy = \"write\" } key \"baton/lease/$2\" { policy = \"write\" }"
}
acl_drop() { # name secret: an agent's token and policy deleted (node-down); quiet when either is gone
  local cur id
  jfield() { grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed -E 's/.*"([^"]*)"$/\1/'; } # the first string field $1
  if cur=$(curl -sf -H "X-Consul-Token: $2" "http://$CONSUL_ADDR/v1/acl/token/self" 2>/dev/null); then
    id=$(jfield AccessorID <<<"$cur")
    capi -X DELETE "http://$CONSUL_ADDR/v1/acl/token/$id" >/dev/null || log "consul: token of $1 ($id) not deleted"
  fi
  if cur=$(capi "http://$CONSUL_ADDR/v1/acl/policy/name/$1" 2>/dev/null); then
    id=$(jfield ID <<<"$cur")
    capi -X DELETE "http://$CONSUL_ADDR/v1/acl/policy/$id" >/dev/null || log "consul: policy $1 ($id) not deleted"
  fi
}
jstr() { local v=${1//\\/\\\\}; v=${v//\"/\\\"}; printf '"%s"' "$v"; } # a JSON string (no control characters)
acl_token() { # name description secret rules: the policy created, or its rules updated; the token created
  local cur id want
  want=$(jstr "$4")
  if cur=$(capi "http://$CONSUL_ADDR/v1/acl/policy/name/$1"); then
    if ! grep -qF "\"Rules\":$want" <<<"$cur"; then # Consul answers compact JSON
      id=$(sed -E 's/.*"ID":"([^"]+)".*/\1/' <<<"$cur")
      capi -X PUT "http://$CONSUL_ADDR/v1/acl/policy/$id" -d "{\"Name\": $(jstr "$1"), \"Rules\": $want}" >/dev/null \
        || die "consul: update of policy $1 refused"
      log "consul: policy $1 updated"
    fi
  else
    capi -X PUT "http://$CONSUL_ADDR/v1/acl/policy" -d "{\"Name\": $(jstr "$1"), \"Rules\": $want}" >/dev/null \
      || die "consul: policy $1 refused"
  fi
  curl -sf -H "X-Consul-Token: $3" "http://$CONSUL_ADDR/v1/acl/token/self" >/dev/null 2>&1 \
    || capi -X PUT "http://$CONSUL_ADDR/v1/acl/token" \
      -d "{\"SecretID\": $(jstr "$3"), \"Description\": $(jstr "$2"), \"Policies\": [{\"Name\": $(jstr "$1")}]}" >/dev/null \
      || die "consul: token for $1 refused"
}
# Each remote HAProxy host runs its own Consul client agent, as in production: it registers
# the host's service and checks, and consul-template reads through it. A dead agent fails the
# host's serfHealth node check, which Baton's pre-checks count.
consul_agent_up() { # name ip zone
  local d=$STATE/consul-agent-$1
  mkdir -p "$d/config" "$d/data"
  ( umask 077
    render consul-agent-acl.json TOKEN="$(cat "$MGMT_TOKEN_FILE")" >"$d/config/acl.json"
    render consul-client.json >"$d/config/client.json"
    # Script checks are only allowed from the agent's own config files, so they are written there.
    render consul-haproxy-service.json NAME="$1" IP="$2" ZONE="$3" TOKEN="$(cat "$MGMT_TOKEN_FILE")" >"$d/config/haproxy.json" )
  local join; mapfile -t join < <(retry_join_flags)
  spawn "consul-agent-$1" "$CONSUL_BIN" agent -node "haproxy-$1" -bind "$2" -client "$2" -http-port 8500 \
    -grpc-port -1 -dns-port -1 "${join[@]}" -retry-interval 1s -data-dir "$d/data" -config-dir "$d/config" \
    -enable-local-script-checks -log-level warn
  wait_for "consul agent of haproxy-$1" 300 sh -c "curl -sf http://$2:8500/v1/status/leader | grep -q 8300"
}

# ---------- HAProxy + consul-template ----------
remote_template() { # name ip: layer 2 knows the primary and routes every cluster of Consul's catalog
  # One template block ranges over baton/catalog/ and routes each cluster that names this host
  # among its haproxies (writer_<c>, reader_<c>), from one "tree" query of its topology; what
  # it validates and why is in the template's own comments.
  render haproxy-global.cfg DIR="$STATE/haproxy-$1"
  render haproxy-remote.cfg.ctmpl IP="$2" NAME="$1"
}
remote_serves() { # name cluster: the host's HAProxy runs writer_<cluster> with a server (its primary)
  echo "show servers state writer_$2" | socat -t 2 - "UNIX-CONNECT:$STATE/haproxy-$1/admin.sock" | grep -Eq "^[0-9]+ writer_$2 [0-9]+ "
}
local_config() { # layer 1: forward to the remote HAProxy of the other zone (b), zone a as backup
  local c
  render haproxy-global.cfg DIR="$STATE/haproxy-local"
  render haproxy-local.cfg
  for c in "${CLUSTERS[@]}"; do
    render haproxy-local-cluster.cfg SUFFIX="$(suffix_of "$c")" WRITER_PORT="$(writer_port "$c")" READER_PORT="$(reader_port "$c")"
  done
}
haproxy_start() { # name
  local d=$STATE/haproxy-$1
  touch "$d/server-state"
  haproxy -c -q -f "$d/haproxy.cfg"
  spawn "haproxy-$1" haproxy -W -S "$d/master.sock,mode,600" -f "$d/haproxy.cfg"
  wait_for "haproxy-$1" 100 sh -c "echo 'show info' | socat -t 2 - UNIX-CONNECT:$d/admin.sock"
}
remote_up() { # name ip zone
  local d=$STATE/haproxy-$1
  mkdir -p "$d"
  remote_template "$1" "$2" >"$d/haproxy.cfg.ctmpl"
  consul_agent_up "$1" "$2" "$3"
  render consul-template.hcl NAME="$1" DIR="$d" CONSUL_ADDR="$2:8500" TOKEN="$(cat "$STATE/consul-template.token")" >"$d/consul-template.hcl"
  "$CONSUL_TEMPLATE_BIN" -config "$d/consul-template.hcl" -once >>"$STATE/logs/consul-template-$1.log" 2>&1
  haproxy_start "$1"
  spawn "consul-template-$1" "$CONSUL_TEMPLATE_BIN" -config "$d/consul-template.hcl"
}

# ---------- Temporal ----------
temporal_up() {
  if [ "$TEMPORAL_MODE" = postgres ]; then temporal_prod_up; else
    mkdir -p "$STATE/temporal"
    spawn temporal "$TEMPORAL_BIN" server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
      --http-port 7243 --metrics-port 7234 --db-filename "$STATE/temporal/dev.db" --log-level warn \
      --dynamic-config-value system.enableActivityEagerExecution=true
  fi
  wait_for temporal 600 "$TEMPORAL_BIN" operator cluster health --address "$TEMPORAL_ADDR"
  # The namespace and search attributes come from `baton setup`, as on any Temporal.
  "$STATE/bin/baton" --config "$STATE/baton.yaml" setup --retention 72h >&2
}
# PostgreSQL 15 as its own instance (not the system's), run as the postgres user.
PG_BIN=/usr/lib/postgresql/15/bin
as_pg() { setpriv --reuid postgres --regid postgres --init-groups -- "$@"; }
postgres_up() {
  local d=$STATE/postgres
  mkdir -p "$d"
  chown postgres: "$d"
  [ -f "$d/password" ] || (umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$d/password")
  if [ ! -f "$d/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$d/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 >"$STATE/logs/postgres-initdb.log" 2>&1
  fi
  spawn postgres setpriv --reuid postgres --regid postgres --init-groups -- "$PG_BIN/postgres" -D "$d/data" \
    -p "${PG_ADDR##*:}" -k "$d" -c listen_addresses="${PG_ADDR%:*}" -c max_connections=200
  wait_for postgres 300 "$PG_BIN/pg_isready" -q -h "${PG_ADDR%:*}" -p "${PG_ADDR##*:}"
  as_pg "$PG_BIN/psql" -h "$d" -p "${PG_ADDR##*:}" -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='temporal'" | grep -q 1 \
    || as_pg "$PG_BIN/psql" -h "$d" -p "${PG_ADDR##*:}" -U postgres -qc "CREATE ROLE temporal LOGIN CREATEDB PASSWORD '$(cat "$d/password")'"
}
temporal_prod_up() { # the schema tool creates and migrates both databases, then each service starts
  local d=$STATE/temporal-prod schema pw db
  postgres_up
  pw=$(cat "$STATE/postgres/password")
  schema=$(cd "$ROOT/deploy/tools/temporal-server" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' go.temporal.io/server)/schema/postgresql/v12
  for db in temporal visibility; do
    local name=temporal; [ "$db" = visibility ] && name=temporal_visibility
    local sqltool=("$TEMPORAL_SQL_TOOL_BIN" --plugin postgres12 --ep "${PG_ADDR%:*}" -p "${PG_ADDR##*:}" -u temporal --pw "$pw" --db "$name")
    "${sqltool[@]}" create-database >>"$STATE/logs/temporal-schema.log" 2>&1 || true # exists already after a restart
    "${sqltool[@]}" setup-schema -v 0.0 >>"$STATE/logs/temporal-schema.log" 2>&1 || true
    "${sqltool[@]}" update-schema -d "$schema/$db/versioned" >>"$STATE/logs/temporal-schema.log" 2>&1 \
      || die "temporal schema $name: see $STATE/logs/temporal-schema.log"
  done
  mkdir -p "$d/config"
  ( umask 077; render temporal-postgres.yaml PG_PASSWORD="$pw" DIR="$d" >"$d/config/production.yaml" )
  render temporal-dynamicconfig.yaml >"$d/dynamicconfig.yaml"
  # One at a time: each initializes the cluster's metadata on its first start, and two
  # doing it at once collide on the same row.
  local svc port
  for svc in history:6934 matching:6935 frontend:6933 worker:6939; do # membership ports
    port=${svc#*:} svc=${svc%:*}
    spawn "temporal-$svc" "$TEMPORAL_SERVER_BIN" --root "$d" --config config --env production --allow-no-auth start --service "$svc"
    wait_for "temporal $svc" 600 bash -c "echo >/dev/tcp/127.0.0.1/$port"
  done
}

# ---------- Baton's own processes ----------
baton_build() {
  mkdir -p "$STATE/bin"
  # The commit, stamped in every binary (baton version, baton_build_info) also where the
  # toolchain's own stamp is off (GOFLAGS=-buildvcs=false).
  local rev
  rev=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || true)
  if [ -n "$rev" ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev=$rev-dirty; fi
  local b=(go build -ldflags "-X github.com/baton-db/baton/internal/version.revision=$rev")
  (cd "$ROOT" && "${b[@]}" -o "$STATE/bin/baton.new" ./starter && "${b[@]}" -o "$STATE/bin/baton-worker.new" ./worker \
    && "${b[@]}" -o "$STATE/bin/baton-heartbeat.new" ./heartbeat && "${b[@]}" -o "$STATE/bin/baton-detector.new" ./detectors \
    && "${b[@]}" -o "$STATE/bin/baton-loadgen.new" ./deploy/local/loadgen \
    && "${b[@]}" -o "$STATE/bin/baton-haproxy-reload.new" ./deploy/haproxy-reload)
  local b
  for b in baton baton-worker baton-heartbeat baton-detector baton-loadgen baton-haproxy-reload; do
    if cmp -s "$STATE/bin/$b.new" "$STATE/bin/$b"; then rm "$STATE/bin/$b.new"; else
      mv "$STATE/bin/$b.new" "$STATE/bin/$b"; touch "$STATE/bin/.$b.changed"; fi
  done
}
agent_config() { # name cluster: a heartbeat agent's own config and secrets, as on a database host
  local f=$STATE/agents/$1
  umask 077
  { grep -E '^MYSQL_(HEARTBEAT|GUARD)_(USER|PASSWORD)=' "$STATE/secrets.env"
    echo "CONSUL_HTTP_TOKEN=$(cat "$f.token")"; } >"$f.env"
  umask 022
  render agent.yaml NAME="$1" FILE="$f" CLUSTER="$2" KV="baton/clusters/$2" >"$f.yaml"
}
agent_start() { # name ip cluster: the node's heartbeat agent (restarted when its binary changed)
  agent_config "$1" "$3"
  # Nothing but its own files: a caller's exported secrets (a test's environment, where the
  # secrets file was sourced into exported variables) must not reach it; it refuses them.
  ( unset MYSQL_ADMIN_USER MYSQL_ADMIN_PASSWORD MYSQL_REPL_USER MYSQL_REPL_PASSWORD CONSUL_HTTP_TOKEN
  baton_proc "heartbeat-$1" baton-heartbeat --config "$STATE/agents/$1.yaml" --cluster "$3" --node "$1" --source-addr "$2" --mysqld-pid-file "$(node_dir "$1")/mysqld.pid" --metrics-addr "$2:$AGENT_METRICS_PORT" )
}
baton_config() {
  render baton.yaml >"$STATE/baton.yaml"
  render baton.yaml WORKER_IP="$WORKER2_IP" WORKER_METRICS="$WORKER2_METRICS" >"$STATE/baton-worker2.yaml"
}
baton_proc() { # name, binary, args... ; restarted when its binary changed
  local name=$1 bin=$2; shift 2
  if [ -f "$STATE/bin/.$bin.changed" ] && alive "$name"; then stop_pid "$name" TERM; fi
  spawn "$name" "$STATE/bin/$bin" "$@"
}
baton_up() {
  # The fault suite's crash hook (worker/faults.go): inert until the file names a step.
  export BATON_FAULT_CRASH_FILE=$STATE/fault-crash
  baton_proc worker baton-worker --config "$STATE/baton.yaml"
  local spec
  for spec in "${NODES[@]}"; do set -- $spec; agent_start "$1" "$2" "$5"; done
  for spec in "${SPARE_NODES[@]}"; do # a spare node's agent is never started here, only kept on the new binary
    set -- $spec
    if alive "heartbeat-$1"; then spec=$(node_spec "$1"); set -- $spec; agent_start "$1" "$2" "$5"; fi
  done
  baton_proc detector baton-detector --config "$STATE/baton.yaml" --source-addr "$DETECTOR_IP" --id detector-1
  rm -f "$STATE"/bin/.*.changed
}

# Prometheus (deploy/prometheus) scrapes every Baton process and evaluates Baton's alert
# rules; skipped, with a word, when the package is missing.
PROMETHEUS_ADDR=127.0.0.1:9090
prometheus_up() {
  command -v prometheus >/dev/null || { log "prometheus not installed (deploy/deps.sh installs it): not started"; return 0; }
  local d=$STATE/prometheus agents=() spec
  for spec in "${NODES[@]}"; do set -- $spec; agents+=("$2:$AGENT_METRICS_PORT"); done
  mkdir -p "$d/data"
  "$ROOT/deploy/prometheus/render.sh" "$ROOT/deploy/prometheus/baton-rules.yml" "$WORKER_METRICS" "$WORKER2_METRICS" \
    "$DETECTOR_METRICS" "${agents[@]}" >"$d/prometheus.yml"
  if alive prometheus; then kill -HUP "$(cat "$PIDS/prometheus.pid")"; return 0; fi # reload the new config
  spawn prometheus prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/data" \
    --storage.tsdb.retention.time=2d --web.listen-address="$PROMETHEUS_ADDR"
  wait_for prometheus 300 curl -sf "http://$PROMETHEUS_ADDR/-/ready"
}

write_env() {
  local nodes="" nodes2="" spec
  for spec in $(cluster_nodes demo | tr ' ' ,); do IFS=, read -r _ ip _ <<<"$spec"; nodes="$nodes $ip:$MYSQL_PORT"; done
  for spec in $(cluster_nodes demo2 | tr ' ' ,); do IFS=, read -r _ ip _ <<<"$spec"; nodes2="$nodes2 $ip:$MYSQL_PORT"; done
  local servers; servers=$(printf '%s:8500 ' "${CONSUL_SERVERS[@]}")
  render env NODE_ADDRS="${nodes# }" DEMO2_NODE_ADDRS="${nodes2# }" DEMO2_WRITER_PORT="$(writer_port demo2)" \
    CONSUL_SERVER_ADDRS="${servers% }" >"$STATE/env"
}

# A test that was killed before its cleanup can leave an iptables rule that cuts two
# sandbox addresses apart; such a rule would fail every later run in ways that look like bugs.
clear_cuts() {
  command -v iptables >/dev/null || return 0
  local rule
  { iptables -S INPUT 2>/dev/null || true; } | { grep -E -- '-[sd] 127\.0\.[1-4]\.' || true; } | while read -r rule; do
    # shellcheck disable=SC2086
    iptables ${rule/-A /-D } && log "removed a leftover test rule: $rule"
  done
}
up() {
  local t0=$SECONDS c
  clear_cuts
  command -v mariadbd >/dev/null && command -v haproxy >/dev/null && command -v socat >/dev/null \
    || die "missing Debian packages; run: apt-get install -y mariadb-server mariadb-client haproxy socat iptables"
  tools
  secrets
  tls_files
  baton_build
  baton_config
  temporal_up
  consul_up
  mariadb_up
  for c in "${CLUSTERS[@]}"; do onboard "$c"; done
  local primary; primary=$(mariadb_open_primary)
  for spec in "${REMOTES[@]}"; do remote_up $spec; done
  mkdir -p "$STATE/haproxy-local"
  local_config >"$STATE/haproxy-local/haproxy.cfg"
  haproxy_start local
  write_env
  baton_up
  prometheus_up
  # Up means usable: every HAProxy host's checks pass in Consul, so pre-failover checks pass.
  wait_for "HAProxy and consul-template checks in Consul" 150 sh -c \
    "[ \$(curl -sf -H 'X-Consul-Token: $(cat "$MGMT_TOKEN_FILE")' --get --data-urlencode 'filter=Status == \"passing\"' \
      http://$CONSUL_ADDR/v1/health/checks/haproxy | grep -o '\"CheckID\"' | wc -l) -eq $((2 * ${#REMOTES[@]})) ]"
  # and every remote HAProxy routes every cluster: its frontends come from the catalog (written
  # by `baton cluster add`, or by Baton's bootstrap from baton.yaml for a state from before it).
  for spec in "${REMOTES[@]}"; do
    set -- $spec
    for c in "${CLUSTERS[@]}"; do
      wait_for "remote HAProxy $1's writer_$c backend with its primary (catalog entry baton/catalog/$c)" 300 remote_serves "$1" "$c"
    done
  done
  cat >&2 <<EOF

Baton sandbox up in $((SECONDS - t0))s (clusters ${CLUSTERS[*]}; $CLUSTER's primary $primary)
  MariaDB 10.11   demo:  node1 127.0.1.1:3306  node2 127.0.1.2:3306  node3 127.0.1.3:3306
                  demo2: node4 127.0.1.4:3306  node5 127.0.1.5:3306
  HAProxy L2      zone a 127.0.2.1, zone b 127.0.2.2: every cluster of baton/catalog/ (backends writer_<c>, reader_<c>):
                  demo writer :3306 reader :3307, demo2 writer :3316 reader :3317
  HAProxy L1      app writer $LOCAL_IP:$WRITER_PORT reader :$READER_PORT (demo), writer :3316 reader :3317 (demo2)
  Consul          http://$CONSUL_ADDR   (KV baton/clusters/)
  Temporal        $TEMPORAL_ADDR namespace $NAMESPACE   Web UI $TEMPORAL_UI
  Baton           worker (from $WORKER_IP), detector (from $DETECTOR_IP, metrics http://$DETECTOR_METRICS/metrics),
                  heartbeat agents (logs: $STATE/logs)
  Prometheus      http://$PROMETHEUS_ADDR   (alerts /alerts, rules deploy/prometheus/baton-rules.yml)
  env file        $STATE/env
  spare nodes     $(for spec in "${SPARE_NODES[@]}"; do set -- $spec; printf '%s %s:3306 (zone %s)  ' "$1" "$2" "$3"; done)not started by up: $0 node-up NAME [CLUSTER]
EOF
}

stop_pid() { # name signal
  local f=$PIDS/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  clear_cuts
  if alive consul && [ -x "${CONSUL_BIN:-}" ]; then
    kv export baton/ >"$STATE/consul-kv.json.tmp" 2>/dev/null \
      && mv "$STATE/consul-kv.json.tmp" "$STATE/consul-kv.json"
  fi
  local f name last
  # The Consul servers last: the client agents leave through them, and everything else
  # stops before its Consul does.
  for last in 0 1; do
    for f in "$PIDS"/*.pid; do
      [ -e "$f" ] || continue
      name=$(basename "$f" .pid)
      case $name in consul-server-*) [ "$last" = 1 ] || continue ;; *) [ "$last" = 0 ] || continue ;; esac
      case $name in
        consul-template-*) stop_pid "$name" INT ;;  # consul-template forwards SIGTERM instead of exiting
        postgres) stop_pid "$name" INT ;;           # fast shutdown: it does not wait for clients
        *) stop_pid "$name" TERM ;;
      esac
      log "stopped $name"
    done
  done
  if [ "${1:-}" = --purge ]; then rm -rf "$STATE"; log "purged $STATE"; fi
}

status() {
  local f name spec
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if alive "$name"; then echo "$name running (pid $(cat "$f"))"; else echo "$name dead"; fi
  done
  for spec in "${SPARE_NODES[@]}"; do
    set -- $spec
    if [ ! -f "$(node_dir "$1")/cluster" ]; then echo "spare node $1 ($2, zone $3) not up: node-up $1 [CLUSTER]"
    elif alive "mariadb-$1"; then echo "spare node $1 ($2) up for cluster $(cat "$(node_dir "$1")/cluster")"
    else echo "spare node $1 ($2) stopped, its state kept for cluster $(cat "$(node_dir "$1")/cluster"): node-up $1 $(cat "$(node_dir "$1")/cluster"), or node-down $1"; fi
  done
}

cap_state() { # binlog state, GTID position: each state entry capped at its domain's position
  local entry d srv n out="" pos=",$2,"
  local IFS=,
  for entry in $1; do
    IFS=- read -r d srv n <<<"$entry"
    local p=${pos#*,"$d"-*-}
    if [ "$p" != "$pos" ]; then p=${p%%,*}; [ "$n" -gt "$p" ] && n=$p; fi
    out+="${out:+,}$d-$srv-$n"
  done
  echo "$out"
}
rebuild_node() { # name: a node that cannot recover (or holds errant GTIDs): new datadir, data from the primary
  local spec name ip sid primary pip
  local c
  spec=$(node_spec "$NODE")
  [ -n "$spec" ] || die "unknown node $NODE"
  set -- $spec; name=$1 ip=$2 sid=$4 c=$5
  [ -f "$(node_dir "$name")/my.cnf" ] || die "$name has never run; a spare node starts with node-up"
  primary=$(mariadb_primary_node "$c"); pip=$(node_ip "$primary")
  [ "$primary" != "$name" ] || die "$name is the primary in Consul; fail over first"
  log "rebuilding $name from the primary $primary"
  stop_pid "mariadb-$name" KILL
  rm -rf "$(node_dir "$name")/data"
  mariadb_cnf "$name" "$ip" "$sid"
  mariadb-install-db --defaults-file="$(node_dir "$name")/my.cnf" --skip-test-db \
    --auth-root-authentication-method=socket >"$(node_dir "$name")/install-db.log" 2>&1
  spawn "mariadb-$name" mariadbd --defaults-file="$(node_dir "$name")/my.cnf"
  wait_for "mariadb $name" 300 mariadb-admin --defaults-file="$(node_dir "$name")/my.cnf" -uroot ping
  node_users "$name"
  # The primary's binlog state (every server's last GTID; only the primary's own entry moves,
  # and replication keeps that one current), so candidate checks compare like with like.
  local state; state=$(sql "$primary" "SELECT @@GLOBAL.gtid_binlog_state")
  # A consistent snapshot with its GTID position; loaded without binlogging (no errant GTIDs).
  { echo "SET sql_log_bin=0;"
    mariadb-dump --defaults-file="$(node_dir "$primary")/my.cnf" -uroot --single-transaction --gtid \
      --master-data=1 --databases app baton
  } | mariadb --defaults-file="$(node_dir "$name")/my.cnf" -uroot
  . "$STATE/secrets.env"
  # No entry may be ahead of the position the dump loaded: what follows it in the primary's
  # binlog arrives by replication, and an entry ahead of it would stop the SQL thread
  # ("out-of-order sequence number" in strict mode).
  state=$(cap_state "$state" "$(sql "$name" "SELECT @@GLOBAL.gtid_slave_pos")")
  sql "$name" "RESET MASTER; SET GLOBAL gtid_binlog_state='$state'"
  replicate_from "$name" "$pip"
  log "$name rebuilt and replicating from $primary; run: baton rejoin --cluster $c --host $name"
}

start_node() { # name: restart one MariaDB node (after a crash test), read-only like every start
  local spec
  spec=$(node_spec "$NODE")
  [ -n "$spec" ] || die "unknown node $NODE"
  set -- $spec
  [ -f "$(node_dir "$1")/my.cnf" ] || die "$1 is a spare node that is not up: node-up $1 [CLUSTER]"
  for _ in $(seq 1 100); do alive "mariadb-$1" || break; sleep 0.1; done # a killed mysqld takes a moment to exit
  spawn "mariadb-$1" mariadbd --defaults-file="$(node_dir "$1")/my.cnf"
  for _ in $(seq 1 300); do
    mariadb-admin --defaults-file="$(node_dir "$1")/my.cnf" -uroot ping >/dev/null 2>&1 && return 0
    alive "mariadb-$1" || break # it died in crash recovery
    sleep 0.1
  done
  # MariaDB 10.11 occasionally aborts in crash recovery after kill -9 (an InnoDB assertion
  # in trx0purge.cc); such a node cannot come back as it is.
  # The caller must know its node was rebuilt: the data it held is gone (exit 3, not 0).
  log "mariadb $1 did not recover from its crash (see $(node_dir "$1")/error.log); rebuilding it"
  rebuild_node
  echo "REBUILT $1: mysqld aborted in crash recovery; its datadir was replaced by a copy of the primary's" >&2
  exit 3
}

# ---------- spare nodes ----------
# node-up NAME [CLUSTER]: a fresh MariaDB for a spare node (read-only, no replication, no
# GTID: `baton cluster add --init/--attach` or `baton node add` makes it a member) and its
# heartbeat agent, whose Consul token reads CLUSTER (demo3 by default). Again on a node that
# is up: nothing new (the same CLUSTER) or refused (another one; node-down first).
node_up() { # name [cluster]
  local name=$1 c=${2:-} spec d fresh=0 was
  spec=$(spare_spec "$name") || die "$name is not a spare node ($(all_spares)); the clusters' own nodes start with up and start-node"
  set -- $spec
  local ip=$2 zone=$3 sid=$4
  c=${c:-$5}
  [[ $c =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]] || die "cluster name $c: lower-case letters, digits, _ and -"
  [ -f "$STATE/secrets.env" ] && alive consul || die "the sandbox is not up (run: $0 up)"
  d=$(node_dir "$name")
  was=$(cat "$d/cluster" 2>/dev/null || true)
  if [ -n "$was" ] && [ "$was" != "$c" ] && { alive "mariadb-$name" || alive "heartbeat-$name"; }; then
    die "$name is up for cluster $was; run: $0 node-down $name"
  fi
  tls_files # its server certificate (made by up for every spare node; here for a state from before them)
  mariadb_cnf "$name" "$ip" "$sid"
  if [ ! -d "$d/data/mysql" ]; then
    mariadb-install-db --defaults-file="$d/my.cnf" --skip-test-db \
      --auth-root-authentication-method=socket >"$d/install-db.log" 2>&1
    fresh=1
  fi
  spawn "mariadb-$name" mariadbd --defaults-file="$d/my.cnf"
  wait_for "mariadb $name" 300 mariadb-admin --defaults-file="$d/my.cnf" -uroot ping
  node_users "$name"
  # The application's database, not binlogged: the node carries no GTID of its own, so
  # `cluster add --init` or `--attach` and `node add` take it as it is.
  sql "$name" "SET sql_log_bin=0; CREATE DATABASE IF NOT EXISTS app"
  echo "$c" >"$d/cluster"
  agent_token "$name"
  agent_acl "$name" "$c"
  agent_start "$name" "$ip" "$c"
  wait_for "heartbeat agent of $name" 100 curl -sf "http://$ip:$AGENT_METRICS_PORT/healthz"
  local how="started on its datadir"
  if [ "$fresh" = 1 ]; then how="fresh datadir"; fi
  cat <<EOF
$name up for cluster $c:
  MariaDB       $ip:$MYSQL_PORT (zone $zone, server_id $sid; $how; read-only, no replication; database app, no GTID), pid $(cat "$PIDS/mariadb-$name.pid")
                $d (my.cnf, error.log)
  agent         heartbeat-$name, pid $(cat "$PIDS/heartbeat-$name.pid"), http://$ip:$AGENT_METRICS_PORT/metrics, log $STATE/logs/heartbeat-$name.log
  Consul        token $STATE/agents/$name.token, policy agent-$name: reads baton/clusters/$c/, writes baton/reach/$c/$name, baton/clusters/$c/fenced/$name, baton/lease/$c
  remove with   $0 node-down $name
EOF
}
all_spares() { local spec out=""; for spec in "${SPARE_NODES[@]}"; do set -- $spec; out+="${out:+, }$1"; done; echo "$out"; }
# node-down NAME: its agent and its MariaDB stopped, its directory, agent files and pid files
# removed, its Consul token, policy and reach key deleted. Nothing of it keeps running.
node_down() { # name
  local name=$1 spec c
  spec=$(spare_spec "$name") || die "$name is not a spare node ($(all_spares))"
  c=$(node_spec "$name"); c=${c##* }
  stop_pid "heartbeat-$name" TERM
  stop_pid "mariadb-$name" TERM
  if alive consul && [ -f "$STATE/agents/$name.token" ]; then
    acl_drop "agent-$name" "$(cat "$STATE/agents/$name.token")"
    capi -X DELETE "http://$CONSUL_ADDR/v1/kv/baton/reach/$c/$name" >/dev/null || true
  fi
  rm -rf "$(node_dir "$name")"
  rm -f "$STATE/agents/$name".{env,yaml,token}
  echo "$name down: heartbeat-$name and mariadb-$name stopped, $(node_dir "$name") removed, Consul token and policy agent-$name deleted"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up)
    if [ "${1:-}" = --temporal ]; then TEMPORAL_MODE=$2; fi
    case $TEMPORAL_MODE in dev | postgres) ;; *) die "--temporal $TEMPORAL_MODE: use dev or postgres" ;; esac
    if [ "$TEMPORAL_MODE" = dev ] && alive temporal-frontend; then die "the production Temporal runs; run down first"; fi
    if [ "$TEMPORAL_MODE" = postgres ] && alive temporal; then die "the dev Temporal runs; run down first"; fi
    mkdir -p "$STATE" && echo "$TEMPORAL_MODE" >"$STATE/temporal-mode"
    up ;;
  down)
    tenv=${BATON_CACHE:-$HOME/.cache/baton}/tools.env
    # shellcheck source=/dev/null
    if [ -f "$tenv" ]; then . "$tenv"; fi
    down "$@" ;;
  status) status ;;
  haproxy-reload) exec "$STATE/bin/baton-haproxy-reload" --dir "$STATE/haproxy-$1" ;; # consul-template's command
  start-node) tools; NODE=$1 start_node ;;
  rebuild-node) tools; NODE=$1 rebuild_node ;;
  # A spare node (SPARE_NODES) for a cluster added at run time, and its removal.
  node-up) [ $# -ge 1 ] || die "usage: $0 node-up NAME [CLUSTER]"; node_up "$@" ;;
  node-down) [ $# -eq 1 ] || die "usage: $0 node-down NAME"; node_down "$1" ;;
  # The template consul-template renders on remote HAProxy host NAME (a, b), for checks.
  remote-template)
    want=${1:-}
    for spec in "${REMOTES[@]}"; do set -- $spec; if [ "$1" = "$want" ]; then remote_template "$1" "$2"; exit 0; fi; done
    die "usage: $0 remote-template NAME (a remote HAProxy host: a or b)" ;;
  start-temporal) tools; temporal_up ;;
  # A Consul server (1-3) started again after a test killed it; it rejoins the others from its data dir.
  start-consul-server)
    case ${1:-} in 1 | 2 | 3) ;; *) die "start-consul-server N: N is 1, 2 or 3" ;; esac
    for _ in $(seq 1 100); do alive "consul-server-$1" || break; sleep 0.1; done # a killed server takes a moment to exit
    tools; consul_server_up "$1"
    wait_for "consul-server-$1" 300 sh -c "curl -sf http://${CONSUL_SERVERS[$(($1 - 1))]}:8500/v1/status/leader | grep -q ':8300'" ;;
  start-worker) BATON_FAULT_CRASH_FILE=$STATE/fault-crash spawn worker "$STATE/bin/baton-worker" --config "$STATE/baton.yaml" ;;
  # A second worker (its MySQL connections from another address) shares the task queue and the crash hook.
  start-worker2) BATON_FAULT_CRASH_FILE=$STATE/fault-crash spawn worker2 "$STATE/bin/baton-worker" --config "$STATE/baton-worker2.yaml" ;;
  stop-worker2) stop_pid worker2 TERM ;;
  start-detector) spawn detector "$STATE/bin/baton-detector" --config "$STATE/baton.yaml" --source-addr "$DETECTOR_IP" --id detector-1 ;;
  *) echo "usage: $0 up [--temporal dev|postgres] | down [--purge] | status | start-node NAME | rebuild-node NAME | node-up NAME [CLUSTER] | node-down NAME | start-temporal | start-consul-server N | start-worker | start-worker2 | stop-worker2 | start-detector | haproxy-reload NAME | remote-template NAME" >&2; exit 2 ;;
esac
