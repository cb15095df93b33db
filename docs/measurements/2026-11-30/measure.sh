#!/usr/bin/env bash
# Re-makes every document in this folder: two lanes of commands run side by side (the machine has
# 2 cores and each tmemu run emulates its guests in one Node thread). Each command's stdout/stderr
# go to logs/<name>.log and its exit code to logs/<name>.rc: a bench or run that found an invalid
# run exits 1, which is a result to read, not a failure of this script.
# Usage: docs/measurements/2026-11-30/measure.sh [lane]   (lane: a, b, or both when omitted)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../../.."
mkdir -p "$here/logs"

step() {
  local name="$1"
  shift
  local t0=$SECONDS
  echo "[measure] $(date -u +%H:%M:%S) $name: $*"
  "$@" >"$here/logs/$name.log" 2>&1
  local rc=$?
  echo "$rc" >"$here/logs/$name.rc"
  echo "[measure] $(date -u +%H:%M:%S) $name: exit $rc after $((SECONDS - t0)) s"
}

lane_a() {
  step run-default npx tmemu run --json "$here/run-default.json"
  step bench-refault-1 npx tmemu bench --workload refault --guests 1 --repeat 2 --out "$here/refault-1guest"
  step bench-swap-3 npx tmemu bench --workload swap --repeat 1 --out "$here/swap-3guests"
  step run-phased-static npx tmemu run --workload phased --policy static --json "$here/run-phased-static.json"
  step bench-mixed-1 npx tmemu bench --workload mixed --guests 1 --repeat 1 --out "$here/mixed-1guest"
}

lane_b() {
  step bench-swap-1 npx tmemu bench --workload swap --guests 1 --repeat 2 --out "$here/swap-1guest"
  step bench-refault-3 npx tmemu bench --workload refault --repeat 1 --out "$here/refault-3guests"
  step run-phased-selfballoon npx tmemu run --workload phased --policy selfballoon --json "$here/run-phased-selfballoon.json"
  step bench-phased-3 npx tmemu bench --workload phased --configs disk tmem tmem+selfballoon --repeat 1 --out "$here/phased-3guests"
  step npm-run-bench npm run -s bench -- --repeats 5 --json "$here/npm-run-bench.json"
}

case "${1:-both}" in
  a) lane_a ;;
  b) lane_b ;;
  both)
    lane_a &
    lane_b &
    wait
    ;;
  *) echo "usage: $0 [a|b]" >&2; exit 2 ;;
esac
