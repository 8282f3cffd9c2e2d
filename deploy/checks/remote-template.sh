#!/usr/bin/env bash
# The sandbox's remote HAProxy template (deploy/local/templates/haproxy-remote.cfg.ctmpl after
# haproxy-global.cfg, as `sandbox.sh remote-template NAME` assembles it for host NAME), rendered
# by the real consul-template from a throwaway Consul (`consul agent -dev` on 127.0.7.1, HTTP
# port 18500, its other ports off or unusual; never the sandbox's), then `haproxy -c`:
#   - an empty catalog renders the stats listener alone, and HAProxy starts on it (moved to
#     127.0.7.2, so the sandbox's addresses are never bound);
#   - each catalog cluster that names the host gets writer_<c> and reader_<c> on the entry's
#     addresses, the primary and the replicas from its topology; one that names only the
#     other host is not routed here;
#   - hand-written values (a bad cluster name, an address with a newline, not JSON, the wrong
#     shape, a node name with a newline) never reach the file, which still loads;
#   - an address bound twice, or not this host's, makes HAProxy refuse the file.
# Needs consul, consul-template (deploy/tools/build.sh), haproxy, socat and curl.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=/dev/null
. "${BATON_CACHE:-$HOME/.cache/baton}/tools.env"
CIP=${CHECK_CONSUL_IP:-127.0.7.1} CPORT=${CHECK_CONSUL_PORT:-18500}
CONSUL=http://$CIP:$CPORT
tmp=$(mktemp -d)
consul_pid="" haproxy_pid=""
cleanup() {
  local p
  for p in $haproxy_pid $consul_pid; do
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "remote-template: FAIL: $*" >&2; exit 1; }

if curl -s -o /dev/null "$CONSUL/v1/status/leader"; then fail "something answers on $CONSUL already; set CHECK_CONSUL_IP or CHECK_CONSUL_PORT"; fi
"$CONSUL_BIN" agent -dev -bind "$CIP" -client "$CIP" -node remote-template-check -http-port "$CPORT" \
  -https-port -1 -dns-port -1 -grpc-port -1 -grpc-tls-port -1 -server-port 18300 -serf-lan-port 18301 \
  -serf-wan-port 18302 -log-level warn >"$tmp/consul.log" 2>&1 &
consul_pid=$!
for i in $(seq 1 300); do
  curl -sf "$CONSUL/v1/status/leader" | grep -q ':18300' && break
  kill -0 "$consul_pid" 2>/dev/null || { cat "$tmp/consul.log" >&2; fail "consul agent -dev exited"; }
  [ "$i" -lt 300 ] || fail "consul agent -dev has no leader after 30 s"
  sleep 0.1
done
put() { curl -sf -X PUT --data-binary "$2" "$CONSUL/v1/kv/$1" | grep -q true || fail "kv put $1"; }
del() { curl -sf -X DELETE "$CONSUL/v1/kv/$1?recurse=true" >/dev/null; }
entry() { # cluster-agnostic catalog entry: its haproxies as JSON
  printf '{"settings":{"flavor":"mariadb","durability":"cross_zone","max_lag":"2s","haproxies":%s},"by":"check","at":"2026-01-01T00:00:00Z","change":"add"}' "$1"
}
hosts() { # writer-port: both hosts, reader at writer + 1
  printf '[{"name":"a","zone":"a","writer":"127.0.2.1:%s","reader":"127.0.2.1:%s"},{"name":"b","zone":"b","writer":"127.0.2.2:%s","reader":"127.0.2.2:%s"}]' \
    "$1" $(($1 + 1)) "$1" $(($1 + 1))
}
node() { printf '{"name":"%s","fqdn":"%s.x.baton.test","ipv4":"%s","ipv6":"","port":3306,"zone":"%s","server_id":%s}' "$1" "$1" "$2" "$3" "$4"; }

render() { # host: the rendered file's path
  local h=$1 d=$tmp/$1
  mkdir -p "$d"
  BATON_STATE=$tmp/state "$ROOT/deploy/local/sandbox.sh" remote-template "$h" >"$d/haproxy.cfg.ctmpl"
  printf 'consul { address = "%s:%s" }\nlog_level = "err"\ntemplate {\n  source = "%s"\n  destination = "%s"\n}\n' \
    "$CIP" "$CPORT" "$d/haproxy.cfg.ctmpl" "$d/haproxy.cfg" >"$d/ct.hcl"
  rm -f "$d/haproxy.cfg"
  timeout 30 "$CONSUL_TEMPLATE_BIN" -config "$d/ct.hcl" -once >"$d/ct.log" 2>&1 || { cat "$d/ct.log" >&2; fail "consul-template -once for host $h"; }
  mkdir -p "$tmp/state/haproxy-$h" && touch "$tmp/state/haproxy-$h/server-state"
  echo "$d/haproxy.cfg"
}
loads() { haproxy -c -f "$1" >"$1.check" 2>&1 || { cat "$1.check" >&2; fail "haproxy -c refuses $1"; }; }
refused() { # file, message HAProxy must give
  if haproxy -c -f "$1" >"$1.check" 2>&1; then fail "haproxy -c loads $1, which binds a conflicting address"; fi
  grep -qF "$2" "$1.check" || { cat "$1.check" "$1" >&2; fail "haproxy -c refuses $1, but not with: $2"; }
}
has() { grep -qxF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks the line: $2"; }; }
lacks() { if grep -qF -- "$2" "$1"; then cat "$1" >&2; fail "$1 holds: $2"; fi; }
section() { # file name: the lines of one section, indented ones only
  awk -v s="$2" '/^[a-z]/ { on = ($0 == s) ; next } on && /^    / { print }' "$1"
}

# 1. An empty catalog: the stats listener alone, and HAProxy starts on it.
cfg=$(render a)
loads "$cfg"
! grep -Eq '^(frontend|backend) ' "$cfg" || fail "an empty catalog renders $(grep -E '^(frontend|backend) ' "$cfg" | tr '\n' ' ')"
has "$cfg" "    bind 127.0.2.1:8404"
sed 's/127\.0\.2\.1/127.0.7.2/g' "$cfg" >"$tmp/empty.cfg"
haproxy -W -f "$tmp/empty.cfg" >"$tmp/haproxy.log" 2>&1 &
haproxy_pid=$!
for i in $(seq 1 100); do
  echo "show info" | socat -t 2 - "UNIX-CONNECT:$tmp/state/haproxy-a/admin.sock" 2>/dev/null | grep -q '^Name: HAProxy' && break
  kill -0 "$haproxy_pid" 2>/dev/null || { cat "$tmp/haproxy.log" >&2; fail "HAProxy does not start on an empty catalog"; }
  [ "$i" -lt 100 ] || fail "HAProxy on an empty catalog does not answer on its admin socket"
  sleep 0.1
done
curl -sf "http://127.0.7.2:8404/stats" >/dev/null || fail "HAProxy on an empty catalog does not serve its stats"
kill "$haproxy_pid"; wait "$haproxy_pid" 2>/dev/null || true; haproxy_pid=""

# 2. demo and demo2 on both hosts, demo3 on host b only (no topology yet).
put baton/catalog/demo "$(entry "$(hosts 3306)")"
put baton/catalog/demo2 "$(entry "$(hosts 3316)")"
put baton/catalog/demo3 "$(entry '[{"name":"b","zone":"b","writer":"127.0.2.2:3326","reader":"127.0.2.2:3327"}]')"
put baton/clusters/demo/primary "$(node node1 127.0.1.1 a 101)"
put baton/clusters/demo/replicas/node2 "$(node node2 127.0.1.2 b 102)"
put baton/clusters/demo/replicas/node3 "$(node node3 127.0.1.3 a 103)"
put baton/clusters/demo/epoch 4
put baton/clusters/demo2/primary "$(node node4 127.0.1.4 a 104)"
put baton/clusters/demo2/replicas/node5 "$(node node5 127.0.1.5 b 105)"
# Hand-written values: none may reach the file.
put baton/catalog/Evil "$(entry "$(hosts 3336)")"
put baton/catalog/evil1 "$(entry '[{"name":"a","writer":"127.0.2.1:3346\n    server injected 6.6.6.6:1","reader":"127.0.2.1:3347"}]')"
put baton/catalog/evil2 'not JSON'
put baton/catalog/evil3 '{"settings":"haproxies"}'
put baton/catalog/evil4 '{"settings":{"haproxies":["a",{"name":"a"}]}}'
put baton/catalog/evil5 '[1,2]'
put baton/clusters/demo/replicas/evil "$(node 'evil\n    server injected 6.6.6.6:1' 127.0.1.9 a 109)"
put baton/clusters/demo/replicas/evil2 '{"name":"evil2","ipv4":"6.6.6.6 backup","port":3306}'
put baton/clusters/demo/replicas/evil3 ''
for h in a b; do
  ip=127.0.2.1; [ "$h" = b ] && ip=127.0.2.2
  cfg=$(render "$h")
  loads "$cfg"
  has "$cfg" "frontend writer_demo"
  [ "$(section "$cfg" "frontend writer_demo")" = "    bind $ip:3306
    default_backend writer_demo" ] || fail "host $h: frontend writer_demo: $(section "$cfg" "frontend writer_demo")"
  [ "$(section "$cfg" "backend writer_demo" | grep server)" = "    server node1_127_0_1_1_3306 127.0.1.1:3306 check inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions" ] \
    || fail "host $h: backend writer_demo: $(section "$cfg" "backend writer_demo")"
  section "$cfg" "backend writer_demo" | grep -qx '    retries 0' || fail "host $h: writer_demo retries"
  has "$cfg" "    bind $ip:3307"
  [ "$(section "$cfg" "backend reader_demo" | grep server)" = "    server node2_127_0_1_2_3306 127.0.1.2:3306 check inter 500ms fall 2 rise 1
    server node3_127_0_1_3_3306 127.0.1.3:3306 check inter 500ms fall 2 rise 1" ] \
    || fail "host $h: backend reader_demo: $(section "$cfg" "backend reader_demo")"
  has "$cfg" "    bind $ip:3316"
  has "$cfg" "    bind $ip:3317"
  [ "$(section "$cfg" "backend writer_demo2" | grep server)" = "    server node4_127_0_1_4_3306 127.0.1.4:3306 check inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions" ] \
    || fail "host $h: backend writer_demo2: $(section "$cfg" "backend writer_demo2")"
  [ "$(section "$cfg" "backend reader_demo2" | grep server)" = "    server node5_127_0_1_5_3306 127.0.1.5:3306 check inter 500ms fall 2 rise 1" ] \
    || fail "host $h: backend reader_demo2: $(section "$cfg" "backend reader_demo2")"
  has "$cfg" "    source $ip"
  for bad in injected 6.6.6.6 evil Evil 3336 3346 127.0.1.9; do lacks "$cfg" "$bad"; done
  [ "$(grep -c '^frontend ' "$cfg")" = "$([ "$h" = b ] && echo 6 || echo 4)" ] || fail "host $h: frontends $(grep '^frontend ' "$cfg" | tr '\n' ' ')"
done
has "$cfg" "    bind 127.0.2.2:3326" # host b, demo3: routed before its topology exists
! section "$cfg" "backend writer_demo3" | grep -q server || fail "writer_demo3 has a server without a topology"
lacks "$(render a)" "demo3"

# 3. Conflicting addresses: the file is refused, never loaded with a port shared by two clusters.
put baton/catalog/demo4 "$(entry '[{"name":"a","writer":"127.0.2.1:3306","reader":"127.0.2.1:3357"}]')"
refused "$(render a)" "writer_demo4: 127.0.2.1:3306 is bound by writer_demo already; file refused"
put baton/catalog/demo4 "$(entry '[{"name":"a","writer":"127.0.2.1:3356","reader":"127.0.2.1:8404"}]')"
refused "$(render a)" "reader_demo4: 127.0.2.1:8404 is bound by the stats listener already; file refused"
put baton/catalog/demo4 "$(entry '[{"name":"a","writer":"127.0.2.1:3356","reader":"127.0.2.1:3356"}]')"
refused "$(render a)" "reader_demo4: 127.0.2.1:3356 is bound by writer_demo4 already; file refused"
put baton/catalog/demo4 "$(entry '[{"name":"a","writer":"127.0.2.2:3356","reader":"127.0.2.1:3357"}]')"
refused "$(render a)" "writer_demo4: 127.0.2.2:3356 is not an address of this host (127.0.2.1); file refused"
del baton/catalog/demo4
loads "$(render a)"

# 4. A cluster removed from the catalog is no longer routed; its topology alone does not route it.
del baton/catalog/demo2
cfg=$(render a)
loads "$cfg"
lacks "$cfg" "demo2"
has "$cfg" "frontend writer_demo"
echo "remote-template: ok (empty catalog starts; demo, demo2, demo3 routed per host; hostile values dropped; conflicts refused)"
