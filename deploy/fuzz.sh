#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed number of inputs each (default
# 100000x), one after another: go test runs one fuzz target per invocation. Seed corpora live
# in each package's testdata/fuzz/ and also run as plain tests in every `go test`.
# The budget is a count, not a duration: with a duration, Go's fuzzing coordinator can fail a
# target with a bare "context deadline exceeded" when a starved worker misses the stop
# deadline (golang/go#75804; it failed CI here once, on a target that reads ~1 µs per input).
#   usage: deploy/fuzz.sh [COUNTx | DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
time=${1:-100000x}
n=0
while read -r pkg; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $target for $time"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg"
    n=$((n + 1))
  done
done < <(go list ./... | grep -v '/tests$')
echo "fuzz: $n targets, $time each, nothing found"
