#!/usr/bin/env bash
# Prints deploy/prometheus/prometheus.yml filled in:
#   render.sh RULES WORKER_METRICS WORKER2_METRICS DETECTOR_METRICS AGENT_ADDR...
# (addresses as host:port; RULES the path of baton-rules.yml).
set -Eeuo pipefail
[ $# -ge 5 ] || { echo "usage: $0 RULES WORKER_METRICS WORKER2_METRICS DETECTOR_METRICS AGENT_ADDR..." >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
RULES=$1 WORKER_METRICS=$2 WORKER2_METRICS=$3 DETECTOR_METRICS=$4
shift 4
AGENT_TARGETS=$(printf "'%s', " "$@")
AGENT_TARGETS=${AGENT_TARGETS%, }
export RULES WORKER_METRICS WORKER2_METRICS DETECTOR_METRICS AGENT_TARGETS
# shellcheck disable=SC2016 # the variables envsubst fills, by name
envsubst '${RULES} ${WORKER_METRICS} ${WORKER2_METRICS} ${DETECTOR_METRICS} ${AGENT_TARGETS}' <"$HERE/prometheus.yml"
