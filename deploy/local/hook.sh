#!/bin/bash
# The sandbox's hook (hooks: in baton.yaml): it appends every event it is given to
# DIR/<point>.jsonl. As a pre hook it vetoes while DIR/veto exists (the file's text is
# the reason, like a change freeze) and hangs while DIR/hang exists. Tests use both.
# A veto is exit status 42 (activities.HookVetoExitCode): any other failure of a hook is
# not a veto, and a pre-failover hook that fails so is passed over.
# A pre-failover hook runs on the failover's critical path: this one forks nothing but
# bash itself (builtins only, unless it vetoes or hangs).
set -euo pipefail
dir=$1
[ -d "$dir" ] || mkdir -p "$dir"
IFS= read -r -d '' event || true
printf '%s\n' "${event%$'\n'}" >>"$dir/$BATON_HOOK_POINT.jsonl"
case $BATON_HOOK_POINT in
pre-*)
  if [ -e "$dir/hang" ]; then sleep 600; fi
  if [ -e "$dir/veto" ]; then
    echo "change freeze: $(<"$dir/veto")" >&2
    exit 42
  fi
  ;;
esac
