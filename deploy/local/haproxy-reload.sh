#!/usr/bin/env bash
# consul-template's command on a remote HAProxy host of the sandbox (kept small: it is on the
# failover's critical path). Switches the running writer at once through the runtime API,
# then reloads HAProxy and returns only once the running worker serves the new file.
#   usage: deploy/local/haproxy-reload.sh NAME      (a or b)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${BATON_STATE:-$HERE/state}
PIDS=$STATE/pids
alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }
servers_state() { # dir [backend]: the running worker's "show servers state"
  echo "show servers state ${2:-}" | socat -t 2 - "UNIX-CONNECT:$1/admin.sock" 2>/dev/null
}
servers_match() { # dir: the running worker serves exactly the servers of haproxy.cfg
  # (server names embed the address, so a changed topology always changes the names)
  local running
  running=$(servers_state "$1" | awk 'NF > 4 && $1 !~ /^#/ { print $2 "/" $4 }' | sort) || return 1
  [ -n "$running" ] && [ "$running" = "$(awk '$1 == "backend" { b = $2 } $1 == "server" { print b "/" $2 }' "$1/haproxy.cfg" | sort)" ]
}
writer_now() { # dir: point the running writer server at the new file's primary at once
  # (the runtime API takes ~1 ms; the reload that follows takes the new file's name for it)
  local want running
  want=$(awk '$1 == "backend" { b = $2 } b == "writer" && $1 == "server" { print $3 }' "$1/haproxy.cfg")
  running=$(servers_state "$1" writer | awk 'NF > 4 && $1 !~ /^#/ { print $4, $5 ":" $19 }')
  # only a backend of one server each side, with a new address, is switched this way
  [ "$(echo "$want" | wc -w)" = 1 ] && [ "$(echo "$running" | wc -l)" = 1 ] || return 0
  [ "${running#* }" != "$want" ] || return 0
  echo "set server writer/${running%% *} addr ${want%:*} port ${want##*:}" |
    socat -t 2 - "UNIX-CONNECT:$1/admin.sock" >/dev/null 2>&1 || true
}
haproxy_reload() { # name: keep runtime server state, ask the master to re-exec, report a bad config
  # HAProxy 2.6 reloads asynchronously and drops a reload that reaches its master while it
  # re-executes, so a reload counts only once the running worker serves the new file's
  # servers; one not taken up is sent again. A non-zero exit (a bad file, or three tries)
  # stops consul-template, whose Consul check then fails Baton's pre-checks.
  local d=$STATE/haproxy-$1 try
  if ! alive "haproxy-$1"; then haproxy -c -q -f "$d/haproxy.cfg"; return; fi
  writer_now "$d"
  servers_state "$d" >"$d/server-state" || true
  for try in 1 2 3; do
    for _ in $(seq 1 50); do # the master socket refuses connections while it re-executes
      echo reload | socat -t 2 - "UNIX-CONNECT:$d/master.sock" >/dev/null 2>&1 && break
      sleep 0.05
    done
    for _ in $(seq 1 40); do
      sleep 0.05
      servers_match "$d" && return 0
    done
    if ! haproxy -c -q -f "$d/haproxy.cfg" 2>/dev/null; then
      echo "haproxy-$1: the new configuration does not load; the old workers keep running:" >&2
      haproxy -c -f "$d/haproxy.cfg" >&2
      return 1
    fi
    echo "haproxy-$1: reload $try did not take effect within 2s (see haproxy-$1.log); sending it again" >&2
  done
  echo "haproxy-$1: the master did not reload after 3 tries; restart HAProxy on this host" >&2
  return 1
}

haproxy_reload "$1"
