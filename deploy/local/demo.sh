#!/usr/bin/env bash
# Baton's main job on the sandbox: bring everything up, run a planned switchover, then
# kill -9 the primary under a write load and let the detector and UnplannedFailover
# replace it; print both timelines and the outage the client saw. Leaves the sandbox
# running; stop it with deploy/local/sandbox.sh down.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
deploy/deps.sh
deploy/local/sandbox.sh up
# shellcheck source=/dev/null # written by sandbox.sh up
. deploy/local/state/env
baton() { "$BATON_BIN" --config "$BATON_CONFIG" "$@"; }
token=$(grep '^CONSUL_HTTP_TOKEN=' "$SECRETS_FILE" | cut -d= -f2) # Consul's ACLs deny anonymous reads
primary() { curl -sf -H "X-Consul-Token: $token" "http://$CONSUL_HTTP_ADDR/v1/kv/baton/clusters/$BATON_CLUSTER/primary?raw" | sed -E 's/.*"name":"([^"]+)".*/\1/'; }

echo; echo "== status"; baton status --cluster "$BATON_CLUSTER"

echo; echo "== 1. planned switchover (baton switchover --cluster $BATON_CLUSTER), under a write load"
acked1=$SANDBOX_STATE/logs/demo-load-1.acked acked2=$SANDBOX_STATE/logs/demo-load-2.acked
rm -f "$acked1" "$acked2" # a run that writes none must not leave an earlier demo's ids to verify
"$SANDBOX_STATE/bin/baton-loadgen" --env "$SANDBOX_STATE/env" --duration 6s --acked "$acked1" > "$SANDBOX_STATE/logs/demo-load-1.log" &
load=$!
sleep 2
baton switchover --cluster "$BATON_CLUSTER"
wait $load && cat "$SANDBOX_STATE/logs/demo-load-1.log"

old=$(primary)
echo; echo "== 2. unplanned failover: kill -9 the primary ($old) under a write load"
"$SANDBOX_STATE/bin/baton-loadgen" --env "$SANDBOX_STATE/env" --duration 8s --acked "$acked2" > "$SANDBOX_STATE/logs/demo-load-2.log" &
load=$!
sleep 2
lines=$(wc -l < "$SANDBOX_STATE/logs/detector.log")
echo "$(date +%T.%3N) kill -9 mariadbd of $old (pid $(cat "$SANDBOX_STATE/pids/mariadb-$old.pid"))"
kill -9 "$(cat "$SANDBOX_STATE/pids/mariadb-$old.pid")"
for _ in $(seq 1 100); do [ "$(primary)" != "$old" ] && break; sleep 0.1; done
wait $load || true
echo; echo "-- detector timeline"
tail -n +"$((lines + 1))" "$SANDBOX_STATE/logs/detector.log" | grep -E "dropped|DeadPrimary|Unreachable|watching" | cut -c1-330
echo; echo "-- workflow timeline (baton watch --cluster $BATON_CLUSTER)"
baton watch --cluster "$BATON_CLUSTER"
echo; echo "-- what the client saw"
cat "$SANDBOX_STATE/logs/demo-load-2.log"

echo; echo "== 3. restart $old and bring it back (baton rejoin --cluster $BATON_CLUSTER --host $old)"
deploy/local/sandbox.sh up >/dev/null 2>&1
if ! out=$(baton rejoin --cluster "$BATON_CLUSTER" --host "$old" 2>&1); then
  echo "$out"
  # Refused because the crash left it diverged (a transaction only it logged, or one its
  # recovery truncated): rebuild it from the primary, as the message says, then rejoin.
  case "$out" in
    *ErrantGTIDs* | *MissingOwnGTIDs*)
      echo "-- rebuilding $old from the primary (deploy/local/sandbox.sh rebuild-node $old)"
      deploy/local/sandbox.sh rebuild-node "$old"
      baton rejoin --cluster "$BATON_CLUSTER" --host "$old" ;;
    *) exit 1 ;;
  esac
else
  echo "$out"
fi
echo; baton status --cluster "$BATON_CLUSTER"

echo; echo "== 4. every acknowledged write on every member"
# Both load runs' acked ids, read on each node of MYSQL_NODES directly (not through
# HAProxy); fails the demo if any node misses one or does not answer.
"$SANDBOX_STATE/bin/baton-loadgen" --env "$SANDBOX_STATE/env" --verify "$acked1,$acked2"
cat <<MSG

Temporal Web UI: $TEMPORAL_UI_URL/namespaces/$TEMPORAL_NAMESPACE/workflows
  every failover of this cluster: BatonCluster="$BATON_CLUSTER" in the search box
Stop the sandbox with: deploy/local/sandbox.sh down   (add --purge to delete its data)
MSG
