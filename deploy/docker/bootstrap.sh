#!/bin/bash
# docker-compose.yml's bootstrap, run once the servers are up, with Baton's own commands
# only (the sandbox runs the same): Temporal's namespace and search attributes, then the demo
# cluster made from new servers and onboarded into Consul. Run again (a restart), it leaves a
# cluster that Consul already has alone. The worker starts after this, so the cluster verbs
# run here with --local: in this process, with the full config and its secrets.
set -euo pipefail

baton --config /etc/baton/baton.yaml setup

clusters=$(baton --config /etc/baton/baton.yaml cluster list --local)
if grep -q '^demo[[:space:]]' <<<"$clusters"; then
  echo "bootstrap: Consul has the cluster demo already; nothing to onboard"
  exit 0
fi

# --init opens node1 as the primary (semi-sync on, Baton's heartbeat schema); --attach makes
# node2 and node3 its replicas with Baton's replication account.
baton --config /etc/baton/baton.yaml cluster add --local --name demo --primary node1.demo.baton.test:3306 --init \
  --attach node2.demo.baton.test:3306,node3.demo.baton.test:3306 \
  --names node1.demo.baton.test=node1,node2.demo.baton.test=node2,node3.demo.baton.test=node3 \
  --zones node1.demo.baton.test=a,node2.demo.baton.test=b,node3.demo.baton.test=a
