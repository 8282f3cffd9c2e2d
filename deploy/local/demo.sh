#!/usr/bin/env bash
# Baton's main job on the sandbox: bring everything up, then a planned switchover, with
# its timeline. Leaves the sandbox running; stop it with deploy/local/sandbox.sh down.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
deploy/deps.sh
deploy/local/sandbox.sh up
. deploy/local/state/env
baton() { "$BATON_BIN" --config "$BATON_CONFIG" "$@"; }

echo; echo "== before"; baton status --cluster "$BATON_CLUSTER"
echo; echo "== planned switchover (baton switchover --cluster $BATON_CLUSTER)"
baton switchover --cluster "$BATON_CLUSTER"
echo; echo "== after"; baton status --cluster "$BATON_CLUSTER"
cat <<MSG

Watch every failover in the Temporal Web UI: $TEMPORAL_UI_URL/namespaces/$TEMPORAL_NAMESPACE/workflows
Stop the sandbox with: deploy/local/sandbox.sh down   (add --purge to delete its data)
MSG
