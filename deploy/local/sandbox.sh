#!/usr/bin/env bash
# The Baton sandbox: every real server as a local process on loopback.
#   usage: deploy/local/sandbox.sh up | down [--purge] | status | start-node NAME | rebuild-node NAME | start-temporal | start-worker | haproxy-reload NAME
# Topology and addresses are in ARCHITECTURE.md. State lives in deploy/local/state (git-ignored).
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=${BATON_STATE:-$HERE/state}
PIDS=$STATE/pids
CLUSTER=demo
KV=baton/clusters/$CLUSTER
CONSUL_ADDR=127.0.0.1:8500
TEMPORAL_ADDR=127.0.0.1:7233
TEMPORAL_UI=http://127.0.0.1:8233
NAMESPACE=baton
# name ip zone server_id
NODES=("node1 127.0.1.1 a 101" "node2 127.0.1.2 b 102" "node3 127.0.1.3 a 103")
MYSQL_PORT=3306
# remote HAProxy (layer 2): name ip zone
REMOTES=("a 127.0.2.1 a" "b 127.0.2.2 b")
LOCAL_IP=127.0.3.1 # layer-1 HAProxy next to the application, which lives in zone a
DETECTOR_IP=127.0.4.1 WORKER_IP=127.0.4.2 # Baton's own processes, so tests can cut their links alone
DETECTOR_METRICS=127.0.0.1:9464 WORKER_METRICS=127.0.0.1:9466
WRITER_PORT=3306 READER_PORT=3307 STATS_PORT=8404
SEARCH_ATTRS=(BatonCluster BatonKind BatonOldPrimary BatonNewPrimary BatonStep BatonOutcome)

trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
# sqlq quotes a value as a MariaDB string literal (the replication password holds a comma,
# a double quote and a backslash, so that redaction is tested against them).
sqlq() { local v=${1//\\/\\\\}; v=${v//\'/\\\'}; printf "'%s'" "$v"; }
log() { printf '%s sandbox: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }
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

secrets() { # Baton's secrets, and the sandbox's own Consul management token (not Baton's)
  local f=$STATE/secrets.env
  mkdir -p "$STATE"
  uuid() { cat /proc/sys/kernel/random/uuid; }
  umask 077
  [ -f "$STATE/consul-management.token" ] || uuid >"$STATE/consul-management.token"
  [ -f "$STATE/consul-template.token" ] || uuid >"$STATE/consul-template.token"
  local spec
  mkdir -p "$STATE/agents"
  for spec in "${NODES[@]}"; do # each heartbeat agent: a Consul token of its own
    set -- $spec
    [ -f "$STATE/agents/$1.token" ] || uuid >"$STATE/agents/$1.token"
  done
  umask 022
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
MYSQL_APP_USER=app
MYSQL_APP_PASSWORD=$(gen)
EOF
  umask 022
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
    for spec in "${NODES[@]}"; do set -- $spec; issue "$1" "IP:$2,DNS:$1.$CLUSTER.baton.test"; done
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
  cat >"$d/my.cnf" <<EOF
[mariadbd]
user=root
bind-address=$2
port=$MYSQL_PORT
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
datadir=$d/data
log-error=$d/error.log
server_id=$3
report_host=$2
report_port=$MYSQL_PORT
skip-name-resolve
log_bin=$d/data/binlog
log_slave_updates=ON
binlog_format=ROW
gtid_strict_mode=ON
gtid_domain_id=0
relay_log=$d/data/relay
# Replicas notice a dead source fast: heartbeat every 0.5 s, give up after 1 s of silence
# (also the IO thread's connect timeout, which STOP SLAVE waits out during a failover).
slave_net_timeout=1
# Semi-sync: replicas always ack; only the current primary waits for an ack (switched at run time).
rpl_semi_sync_master_enabled=OFF
rpl_semi_sync_slave_enabled=ON
rpl_semi_sync_master_wait_point=AFTER_SYNC
rpl_semi_sync_master_timeout=10000
# STOP SLAVE on a replica of a silent host otherwise waits 2 s for the semi-sync "kill the
# dump thread" connection to the old primary to give up.
rpl_semi_sync_slave_kill_conn_timeout=1
read_only=ON
# A restarted node truncates binlog transactions no replica acknowledged (semi-sync recovery),
# so a crashed primary can rejoin without them.
init_rpl_role=SLAVE
innodb_buffer_pool_size=64M
innodb_log_file_size=48M
innodb_flush_log_at_trx_commit=1
sync_binlog=1
performance_schema=OFF
max_connections=300
ssl_ca=$TLS_DIR/ca.pem
ssl_cert=$TLS_DIR/$1.pem
ssl_key=$TLS_DIR/$1-key.pem
[client]
socket=$d/mysqld.sock
EOF
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
    CREATE USER IF NOT EXISTS '$MYSQL_APP_USER'@'127.%' IDENTIFIED BY '$MYSQL_APP_PASSWORD';
    GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON app.* TO '$MYSQL_APP_USER'@'127.%';
    CREATE USER IF NOT EXISTS 'haproxy_check'@'127.%';
    ALTER USER '$MYSQL_ADMIN_USER'@'127.%' REQUIRE X509;
    ALTER USER '$MYSQL_REPL_USER'@'127.%' REQUIRE SSL;
    ALTER USER '$MYSQL_HEARTBEAT_USER'@'127.%' REQUIRE SSL;
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
    local p pip pzone acks; set -- ${NODES[0]}; p=$1 pip=$2 pzone=$3
    sql "$p" "SET GLOBAL rpl_semi_sync_master_enabled=ON; SET GLOBAL read_only=OFF;
      CREATE DATABASE IF NOT EXISTS app; CREATE DATABASE IF NOT EXISTS baton;
      CREATE TABLE IF NOT EXISTS baton.heartbeat (ts varchar(26) NOT NULL,
        server_id int unsigned NOT NULL PRIMARY KEY, file varchar(255) DEFAULT NULL,
        position bigint unsigned DEFAULT NULL, relay_master_log_file varchar(255) DEFAULT NULL,
        exec_master_log_pos bigint unsigned DEFAULT NULL);"
    for spec in "${NODES[@]:1}"; do
      set -- $spec
      acks=ON; [ "$3" = "$pzone" ] && acks=OFF # durability cross_zone: only the other zone acknowledges
      sql "$1" "SET GLOBAL rpl_semi_sync_slave_enabled=$acks; CHANGE MASTER TO MASTER_HOST='$pip', MASTER_PORT=$MYSQL_PORT,
        MASTER_USER='$MYSQL_REPL_USER', MASTER_PASSWORD=$(sqlq "$MYSQL_REPL_PASSWORD"),
        MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=0.5,
        MASTER_SSL=1, MASTER_SSL_CA='$TLS_DIR/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1;
        START SLAVE;"
    done
  fi
}

node_ip() { # name
  local want=$1 spec
  for spec in "${NODES[@]}"; do set -- $spec; if [ "$1" = "$want" ]; then echo "$2"; fi; done
  return 0
}
mariadb_primary_node() { # the node Consul names as primary
  local ip spec node=""
  ip=$(kv get "$KV/primary" | sed -E 's/.*"ipv4":"([^"]+)".*/\1/')
  for spec in "${NODES[@]}"; do
    set -- $spec
    if [ "$2" = "$ip" ]; then node=$1; fi
  done
  [ -n "$node" ] || die "Consul names no known primary ($ip)"
  echo "$node"
}
mariadb_open_primary() { # after a restart every node is read-only: open the one Consul names
  local node
  node=$(mariadb_primary_node)
  sql "$node" "SET GLOBAL rpl_semi_sync_master_enabled=ON; SET GLOBAL read_only=OFF"
  echo "$node"
}

# ---------- Consul ----------
# The sandbox itself acts with the management token; Baton gets its own, narrower one.
MGMT_TOKEN_FILE=$STATE/consul-management.token
kv() { "$CONSUL_BIN" kv "$1" -http-addr="$CONSUL_ADDR" -token-file="$MGMT_TOKEN_FILE" "${@:2}"; }
capi() { curl -sf -H "X-Consul-Token: $(cat "$MGMT_TOKEN_FILE")" "$@"; }
node_json() { # name ip zone server_id
  printf '{"name":"%s","fqdn":"%s.%s.baton.test","ipv4":"%s","ipv6":"","port":%s,"zone":"%s","server_id":%s}' \
    "$1" "$1" "$CLUSTER" "$2" "$MYSQL_PORT" "$3" "$4"
}
consul_up() {
  consul_services
  consul_acl_config
  spawn consul "$CONSUL_BIN" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -http-port 8500 \
    -grpc-port -1 -dns-port -1 -enable-local-script-checks -config-dir "$STATE/consul.d" -log-level warn
  wait_for consul 300 sh -c "curl -sf http://$CONSUL_ADDR/v1/status/leader | grep -q 127.0.0.1"
  wait_for "consul kv" 100 kv get -recurse baton/
  consul_acl_tokens
  if ! kv get "$KV/primary" >/dev/null 2>&1; then
    if [ -f "$STATE/consul-kv.json" ]; then
      kv import "@$STATE/consul-kv.json" >/dev/null
      log "consul: topology restored from the last down"
    else
      local spec
      set -- ${NODES[0]}
      kv put "$KV/primary" "$(node_json "$@")" >/dev/null
      for spec in "${NODES[@]:1}"; do
        set -- $spec
        kv put "$KV/replicas/$1" "$(node_json "$@")" >/dev/null
      done
      kv put "$KV/epoch" 1 >/dev/null
      kv put "$KV/maintenance" false >/dev/null
      log "consul: topology seeded (primary ${NODES[0]%% *})"
    fi
  fi
}
consul_acl_config() { # ACLs on, default deny: every client needs a token
  cat >"$STATE/consul.d/acl.json" <<EOF
{"acl": {"enabled": true, "default_policy": "deny", "down_policy": "extend-cache",
  "tokens": {"initial_management": "$(cat "$MGMT_TOKEN_FILE")", "agent": "$(cat "$MGMT_TOKEN_FILE")"}}}
EOF
  chmod 600 "$STATE/consul.d/acl.json"
}
consul_acl_tokens() { # dev mode keeps ACLs in memory: (re)create Baton's and consul-template's
  acl_token baton "Baton: worker, detector, CLI and heartbeat agents" \
    "$(grep '^CONSUL_HTTP_TOKEN=' "$STATE/secrets.env" | cut -d= -f2)" \
    'key_prefix \"baton/\" { policy = \"write\" } service \"haproxy\" { policy = \"read\" } node_prefix \"\" { policy = \"read\" }'
  acl_token consul-template "consul-template on the remote HAProxy hosts: reads the topology" \
    "$(cat "$STATE/consul-template.token")" 'key_prefix \"baton/\" { policy = \"read\" }'
  local spec
  for spec in "${NODES[@]}"; do # a heartbeat agent reads its cluster and writes its own reach key
    set -- $spec
    acl_token "agent-$1" "heartbeat agent of $1" "$(cat "$STATE/agents/$1.token")" \
      "key_prefix \\\"$KV/\\\" { policy = \\\"read\\\" } key \\\"baton/reach/$CLUSTER/$1\\\" { policy = \\\"write\\\" }"
  done
}
acl_token() { # name description secret rules
  capi "http://$CONSUL_ADDR/v1/acl/policy/name/$1" >/dev/null 2>&1 \
    || capi -X PUT "http://$CONSUL_ADDR/v1/acl/policy" -d "{\"Name\": \"$1\", \"Rules\": \"$4\"}" >/dev/null
  curl -sf -H "X-Consul-Token: $3" "http://$CONSUL_ADDR/v1/acl/token/self" >/dev/null 2>&1 \
    || capi -X PUT "http://$CONSUL_ADDR/v1/acl/token" \
      -d "{\"SecretID\": \"$3\", \"Description\": \"$2\", \"Policies\": [{\"Name\": \"$1\"}]}" >/dev/null
}
consul_services() { # each remote HAProxy host: one service, a check for HAProxy and one for consul-template
  # Script checks are only allowed from the agent's own config files, so they are written there.
  local spec
  mkdir -p "$STATE/consul.d"
  for spec in "${REMOTES[@]}"; do
    set -- $spec
    cat >"$STATE/consul.d/haproxy-$1.json" <<EOF
{"service": {"id": "haproxy-$1", "name": "haproxy", "address": "$2", "port": $WRITER_PORT,
 "token": "$(cat "$MGMT_TOKEN_FILE")",
 "meta": {"zone": "$3", "writer": "$2:$WRITER_PORT", "reader": "$2:$READER_PORT"},
 "checks": [
  {"id": "haproxy-$1:haproxy", "name": "haproxy", "tcp": "$2:$STATS_PORT", "interval": "1s", "timeout": "500ms"},
  {"id": "haproxy-$1:consul-template", "name": "consul-template",
   "args": ["sh", "-c", "kill -0 \$(cat $PIDS/consul-template-$1.pid) 2>/dev/null || exit 2"], "interval": "1s", "timeout": "500ms"}]}}
EOF
  done
  chmod 600 "$STATE"/consul.d/*.json # they carry the registration token
}

# ---------- HAProxy + consul-template ----------
haproxy_global() { # dir
  cat <<EOF
global
    log stdout format raw local0 notice
    stats socket $1/admin.sock mode 600 level admin expose-fd listeners
    stats timeout 30s
    server-state-file $1/server-state
    # After a reload the old worker keeps its sessions, and on a remote HAProxy they all lead
    # to the old primary: end them soon, so clients reconnect instead of hanging.
    hard-stop-after 500ms
defaults
    mode tcp
    log global
    timeout connect 1s
    timeout client 1h
    timeout server 1h
    load-server-state-from-file global
EOF
}
remote_template() { # name ip: layer 2 knows the primary; server names embed the address (state-file trap)
  # A node whose name, ipv4 or port is not a plain token is dropped, never printed: a value
  # written to Consul by hand cannot add lines to the HAProxy configuration.
  # One "tree" query feeds both backends: a publish (one Consul transaction) renders once, from
  # one index, instead of once per changed key with a writer and reader of different moments.
  local d=$STATE/haproxy-$1
  haproxy_global "$d"
  cat <<EOF
    source $2
frontend writer
    bind $2:$WRITER_PORT
    default_backend writer
backend writer
    # A refused connect to the one primary is not retried (HAProxy waits up to 1 s between
    # retries): the client gets an error at once and reconnects, by then to the new primary.
    retries 0
    option mysql-check user haproxy_check post-41
{{- range tree "$KV" }}{{ if eq .Key "primary" }}{{ with \$p := .Value | parseJSON }}{{ if and (regexMatch "^[a-z0-9][a-z0-9_-]{0,62}\$" (print \$p.name)) (regexMatch "^[0-9]{1,3}([.][0-9]{1,3}){3}\$" (print \$p.ipv4)) (regexMatch "^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])\$" (print \$p.port)) }}
    server {{ \$p.name }}_{{ \$p.ipv4 | replaceAll "." "_" }}_{{ \$p.port }} {{ \$p.ipv4 }}:{{ \$p.port }} check inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{{- end }}{{ end }}{{ end }}{{ end }}
frontend reader
    bind $2:$READER_PORT
    default_backend reader
backend reader
    balance roundrobin
    option mysql-check user haproxy_check post-41
{{- range tree "$KV" }}{{ if .Key | regexMatch "^replicas/" }}{{ with \$r := .Value | parseJSON }}{{ if and (regexMatch "^[a-z0-9][a-z0-9_-]{0,62}\$" (print \$r.name)) (regexMatch "^[0-9]{1,3}([.][0-9]{1,3}){3}\$" (print \$r.ipv4)) (regexMatch "^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])\$" (print \$r.port)) }}
    server {{ \$r.name }}_{{ \$r.ipv4 | replaceAll "." "_" }}_{{ \$r.port }} {{ \$r.ipv4 }}:{{ \$r.port }} check inter 500ms fall 2 rise 1
{{- end }}{{ end }}{{ end }}{{ end }}
listen stats
    mode http
    bind $2:$STATS_PORT
    stats enable
    stats uri /stats
EOF
}
local_config() { # layer 1: forward to the remote HAProxy of the other zone (b), zone a as backup
  local d=$STATE/haproxy-local
  haproxy_global "$d"
  cat <<EOF
    source $LOCAL_IP
frontend writer
    bind $LOCAL_IP:$WRITER_PORT
    default_backend writer
backend writer
    server remote_b 127.0.2.2:$WRITER_PORT check inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
    server remote_a 127.0.2.1:$WRITER_PORT check inter 500ms fall 2 rise 1 backup on-marked-down shutdown-sessions
frontend reader
    bind $LOCAL_IP:$READER_PORT
    default_backend reader
backend reader
    server remote_b 127.0.2.2:$READER_PORT check inter 500ms fall 2 rise 1
    server remote_a 127.0.2.1:$READER_PORT check inter 500ms fall 2 rise 1 backup
listen stats
    mode http
    bind $LOCAL_IP:$STATS_PORT
    stats enable
    stats uri /stats
EOF
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
  cat >"$d/consul-template.hcl" <<EOF
consul {
  address = "$CONSUL_ADDR"
  token = "$(cat "$STATE/consul-template.token")"
  # Keep retrying a lost Consul every second at most: the default backs off to a minute
  # (routing would lag a failover by that much after a Consul blip) and exits after 12 tries.
  retry {
    enabled = true
    attempts = 0
    backoff = "100ms"
    max_backoff = "1s"
  }
}
log_level = "info"
kill_signal = "SIGINT"
wait { min = "0s" max = "0s" }
template {
  source = "$d/haproxy.cfg.ctmpl"
  destination = "$d/haproxy.cfg"
  command = "$HERE/haproxy-reload.sh $1"
  command_timeout = "10s"
}
EOF
  "$CONSUL_TEMPLATE_BIN" -config "$d/consul-template.hcl" -once >>"$STATE/logs/consul-template-$1.log" 2>&1
  haproxy_start "$1"
  spawn "consul-template-$1" "$CONSUL_TEMPLATE_BIN" -config "$d/consul-template.hcl"
}

# ---------- Temporal ----------
temporal_up() {
  mkdir -p "$STATE/temporal"
  local sa=() a
  for a in "${SEARCH_ATTRS[@]}"; do sa+=(--search-attribute "$a=Keyword"); done
  spawn temporal "$TEMPORAL_BIN" server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
    --http-port 7243 --metrics-port 7234 --db-filename "$STATE/temporal/dev.db" --log-level warn \
    --namespace "$NAMESPACE" "${sa[@]}" --dynamic-config-value system.enableActivityEagerExecution=true
  wait_for temporal 600 "$TEMPORAL_BIN" operator namespace describe --address "$TEMPORAL_ADDR" -n "$NAMESPACE"
}

# ---------- Baton's own processes ----------
baton_build() {
  mkdir -p "$STATE/bin"
  (cd "$ROOT" && go build -o "$STATE/bin/baton.new" ./starter && go build -o "$STATE/bin/baton-worker.new" ./worker \
    && go build -o "$STATE/bin/baton-heartbeat.new" ./heartbeat && go build -o "$STATE/bin/baton-detector.new" ./detectors \
    && go build -o "$STATE/bin/baton-loadgen.new" ./deploy/local/loadgen)
  local b
  for b in baton baton-worker baton-heartbeat baton-detector baton-loadgen; do
    if cmp -s "$STATE/bin/$b.new" "$STATE/bin/$b"; then rm "$STATE/bin/$b.new"; else
      mv "$STATE/bin/$b.new" "$STATE/bin/$b"; touch "$STATE/bin/.$b.changed"; fi
  done
}
agent_config() { # name: a heartbeat agent's own config and secrets, as on a database host
  local f=$STATE/agents/$1
  umask 077
  { grep -E '^MYSQL_HEARTBEAT_(USER|PASSWORD)=' "$STATE/secrets.env"
    echo "CONSUL_HTTP_TOKEN=$(cat "$f.token")"; } >"$f.env"
  umask 022
  cat >"$f.yaml" <<EOF
# Generated by deploy/local/sandbox.sh: the heartbeat agent of $1. No cluster list, no admin
# or replication password; its Consul token reads $KV/ and writes baton/reach/$CLUSTER/$1 only.
secrets_file: $f.env
consul:
  address: $CONSUL_ADDR
  kv_prefix: baton/clusters
mysql:
  tls: {mode: verify_identity, ca_file: $TLS_DIR/ca.pem}
EOF
}
baton_config() {
  cat >"$STATE/baton.yaml" <<EOF
# Generated by deploy/local/sandbox.sh. Passwords are in secrets_file, never here.
secrets_file: $STATE/secrets.env
temporal:
  address: $TEMPORAL_ADDR
  namespace: $NAMESPACE
  task_queue: baton
consul:
  address: $CONSUL_ADDR
  kv_prefix: baton/clusters
mysql:
  source_addr: $WORKER_IP
  tls: {mode: verify_identity, ca_file: $TLS_DIR/ca.pem, cert_file: $TLS_DIR/baton.pem, key_file: $TLS_DIR/baton-key.pem}
  replication_tls: {enabled: true, ca_file: $TLS_DIR/ca.pem, verify_server_cert: true}
detector:
  probe_interval: 250ms # tuned for speed; three timeouts in a row (1.2 s) still outlast a 1 s stall
  probe_timeout: 400ms
  failure_threshold: 3
  confirm_window: 1s
  metrics_addr: $DETECTOR_METRICS
telemetry:
  prometheus_addr: $WORKER_METRICS
clusters:
  $CLUSTER:
    flavor: mariadb
    max_lag: 2s
    long_dml: 2s
    catchup_timeout: 10s
    routing_timeout: 10s
    anti_flap: 20s
    durability: cross_zone
    require_approval: never
    approvers: [alice, bob]
    approval_timeout: 10m
    local_writer: $LOCAL_IP:$WRITER_PORT
    haproxies:
      - {name: a, zone: a, writer: 127.0.2.1:$WRITER_PORT}
      - {name: b, zone: b, writer: 127.0.2.2:$WRITER_PORT}
EOF
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
  for spec in "${NODES[@]}"; do
    set -- $spec
    agent_config "$1"
    baton_proc "heartbeat-$1" baton-heartbeat --config "$STATE/agents/$1.yaml" --cluster "$CLUSTER" --node "$1" --source-addr "$2"
  done
  baton_proc detector baton-detector --config "$STATE/baton.yaml" --source-addr "$DETECTOR_IP"
  rm -f "$STATE"/bin/.*.changed
}

write_env() {
  local nodes="" spec
  for spec in "${NODES[@]}"; do set -- $spec; nodes="$nodes $2:$MYSQL_PORT"; done
  cat >"$STATE/env" <<EOF
LOCAL_WRITER_ADDR=$LOCAL_IP:$WRITER_PORT
LOCAL_READER_ADDR=$LOCAL_IP:$READER_PORT
REMOTE_A_WRITER_ADDR=127.0.2.1:$WRITER_PORT
REMOTE_B_WRITER_ADDR=127.0.2.2:$WRITER_PORT
REMOTE_A_READER_ADDR=127.0.2.1:$READER_PORT
REMOTE_B_READER_ADDR=127.0.2.2:$READER_PORT
MYSQL_NODES="${nodes# }"
CONSUL_HTTP_ADDR=$CONSUL_ADDR
TEMPORAL_ADDRESS=$TEMPORAL_ADDR
TEMPORAL_NAMESPACE=$NAMESPACE
TEMPORAL_UI_URL=$TEMPORAL_UI
SECRETS_FILE=$STATE/secrets.env
MYSQL_TLS_CA=$TLS_DIR/ca.pem
MYSQL_TLS_CERT=$TLS_DIR/baton.pem
MYSQL_TLS_KEY=$TLS_DIR/baton-key.pem
BATON_CONFIG=$STATE/baton.yaml
BATON_BIN=$STATE/bin/baton
BATON_CLUSTER=$CLUSTER
SANDBOX_STATE=$STATE
DETECTOR_ADDR=$DETECTOR_IP
WORKER_ADDR=$WORKER_IP
DETECTOR_METRICS_URL=http://$DETECTOR_METRICS/metrics
WORKER_METRICS_URL=http://$WORKER_METRICS/metrics
EOF
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
  local t0=$SECONDS
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
  local primary; primary=$(mariadb_open_primary)
  for spec in "${REMOTES[@]}"; do remote_up $spec; done
  mkdir -p "$STATE/haproxy-local"
  local_config >"$STATE/haproxy-local/haproxy.cfg"
  haproxy_start local
  write_env
  baton_up
  # Up means usable: every HAProxy host's checks pass in Consul, so pre-failover checks pass.
  wait_for "HAProxy and consul-template checks in Consul" 150 sh -c \
    "[ \$(curl -sf -H 'X-Consul-Token: $(cat "$MGMT_TOKEN_FILE")' --get --data-urlencode 'filter=Status == \"passing\"' \
      http://$CONSUL_ADDR/v1/health/checks/haproxy | grep -o '\"CheckID\"' | wc -l) -eq $((2 * ${#REMOTES[@]})) ]"
  cat >&2 <<EOF

Baton sandbox up in $((SECONDS - t0))s (cluster $CLUSTER, primary $primary)
  MariaDB 10.11   node1 127.0.1.1:3306  node2 127.0.1.2:3306  node3 127.0.1.3:3306
  HAProxy L2      zone a writer 127.0.2.1:3306 reader :3307 | zone b writer 127.0.2.2:3306 reader :3307
  HAProxy L1      app writer $LOCAL_IP:$WRITER_PORT  reader $LOCAL_IP:$READER_PORT
  Consul          http://$CONSUL_ADDR   (KV $KV/)
  Temporal        $TEMPORAL_ADDR namespace $NAMESPACE   Web UI $TEMPORAL_UI
  Baton           worker (from $WORKER_IP), detector (from $DETECTOR_IP, metrics http://$DETECTOR_METRICS/metrics),
                  heartbeat agents (logs: $STATE/logs)
  env file        $STATE/env
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
  local f name
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    case $name in
      consul-template-*) stop_pid "$name" INT ;;  # consul-template forwards SIGTERM instead of exiting
      *) stop_pid "$name" TERM ;;
    esac
    log "stopped $name"
  done
  if [ "${1:-}" = --purge ]; then rm -rf "$STATE"; log "purged $STATE"; fi
}

status() {
  local f name
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if alive "$name"; then echo "$name running (pid $(cat "$f"))"; else echo "$name dead"; fi
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
  for spec in "${NODES[@]}"; do set -- $spec; if [ "$1" = "$NODE" ]; then name=$1 ip=$2 sid=$4; fi; done
  [ -n "${name:-}" ] || die "unknown node $NODE"
  primary=$(mariadb_primary_node); pip=$(node_ip "$primary")
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
  sql "$name" "RESET MASTER; SET GLOBAL gtid_binlog_state='$state';
    CHANGE MASTER TO MASTER_HOST='$pip', MASTER_PORT=$MYSQL_PORT,
    MASTER_USER='$MYSQL_REPL_USER', MASTER_PASSWORD=$(sqlq "$MYSQL_REPL_PASSWORD"),
    MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=0.5,
    MASTER_SSL=1, MASTER_SSL_CA='$TLS_DIR/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1; START SLAVE;"
  log "$name rebuilt and replicating from $primary; run: baton rejoin --cluster $CLUSTER --host $name"
}

start_node() { # name: restart one MariaDB node (after a crash test), read-only like every start
  local spec
  for spec in "${NODES[@]}"; do
    set -- $spec
    [ "$1" = "$NODE" ] || continue
    for _ in $(seq 1 100); do alive "mariadb-$1" || break; sleep 0.1; done # a killed mysqld takes a moment to exit
    spawn "mariadb-$1" mariadbd --defaults-file="$(node_dir "$1")/my.cnf"
    for _ in $(seq 1 300); do
      mariadb-admin --defaults-file="$(node_dir "$1")/my.cnf" -uroot ping >/dev/null 2>&1 && return 0
      alive "mariadb-$1" || break # it died in crash recovery
      sleep 0.1
    done
    # MariaDB 10.11 occasionally aborts in crash recovery after kill -9 (an InnoDB assertion
    # in trx0purge.cc); such a node cannot come back as it is.
    log "mariadb $1 did not recover from its crash (see $(node_dir "$1")/error.log); rebuilding it"
    rebuild_node
    return 0
  done
  die "unknown node $NODE"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) up ;;
  down)
    tenv=${BATON_CACHE:-$HOME/.cache/baton}/tools.env
    # shellcheck source=/dev/null
    if [ -f "$tenv" ]; then . "$tenv"; fi
    down "$@" ;;
  status) status ;;
  haproxy-reload) exec "$HERE/haproxy-reload.sh" "$1" ;; # the script consul-template runs
  start-node) tools; NODE=$1 start_node ;;
  rebuild-node) tools; NODE=$1 rebuild_node ;;
  start-temporal) tools; temporal_up ;;
  start-worker) BATON_FAULT_CRASH_FILE=$STATE/fault-crash spawn worker "$STATE/bin/baton-worker" --config "$STATE/baton.yaml" ;;
  *) echo "usage: $0 up | down [--purge] | status | start-node NAME | rebuild-node NAME | start-temporal | start-worker | haproxy-reload NAME" >&2; exit 2 ;;
esac
