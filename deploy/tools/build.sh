#!/usr/bin/env bash
# Build consul, consul-template and the temporal CLI from their pinned tools modules,
# one at a time, into a cache outside git keyed by version. A cached binary is reused.
#   usage: deploy/tools/build.sh            prints the bin folder of each tool on stdout
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${BATON_CACHE:-$HOME/.cache/baton}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# tool  version  package  [tools module folder, default the tool's name]
TOOLS=(
  "consul-template v0.43.0 github.com/hashicorp/consul-template"
  "temporal v1.5.1 github.com/temporalio/cli/cmd/temporal"
  "consul v1.22.7 github.com/hashicorp/consul"
  "workflowcheck v0.6.0 go.temporal.io/sdk/contrib/tools/workflowcheck"
  "staticcheck v0.8.2 honnef.co/go/tools/cmd/staticcheck"
  # The production Temporal server and its schema tool (the sandbox's --temporal postgres).
  "temporal-server v1.29.1 go.temporal.io/server/cmd/server"
  "temporal-sql-tool v1.29.1 go.temporal.io/server/cmd/tools/sql temporal-server"
)

bin_path() { echo "$CACHE/$1-$2/$1"; }

build_one() {
  local tool=$1 version=$2 pkg=$3 dir=${4:-$1} out
  out=$(bin_path "$tool" "$version")
  if [ -x "$out" ]; then
    echo "tools: $tool $version cached at $out" >&2
    return 0
  fi
  mkdir -p "$(dirname "$out")"
  local start=$SECONDS ldflags='-s -w'
  [ "$tool" = temporal ] && ldflags="$ldflags -X github.com/temporalio/cli/temporalcli.Version=${version#v}"
  echo "tools: building $tool $version (cold builds take minutes)" >&2
  (cd "$HERE/$dir" && go build -trimpath -ldflags="$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "tools: built $tool $version in $((SECONDS - start))s" >&2
}

for t in "${TOOLS[@]}"; do
  # shellcheck disable=SC2086
  build_one $t
done
# A file that scripts source to find the binaries.
{
  for t in "${TOOLS[@]}"; do
    set -- $t
    var=$(echo "$1" | tr 'a-z-' 'A-Z_')_BIN
    echo "$var=$(bin_path "$1" "$2")"
  done
} >"$CACHE/tools.env"
echo "$CACHE/tools.env"
