#!/usr/bin/env bash
# Re-makes the documents in this folder. Each step is one tmemu command (bin/tmemu.js of this
# checkout, never another tmemu that npx might find); its stdout/stderr go to
# logs/<step>.log and its exit code to logs/<step>.rc (a bench or run that found an invalid run
# exits 1: a result to read, not a failure of this script).
#   measure.sh              every step, in two lanes side by side (2 cores; each tmemu process
#                           emulates its guests in one Node thread)
#   measure.sh STEP...      these steps, one after the other
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../../.."
mkdir -p "$here/logs"

command_of() {
  case "$1" in
    run-default) echo "node bin/tmemu.js run --json $here/run-default.json" ;;
    run-phased-static) echo "node bin/tmemu.js run --workload phased --policy static --json $here/run-phased-static.json" ;;
    run-phased-selfballoon) echo "node bin/tmemu.js run --workload phased --policy selfballoon --json $here/run-phased-selfballoon.json" ;;
    bench-refault-1) echo "node bin/tmemu.js bench --workload refault --guests 1 --repeat 2 --out $here/refault-1guest" ;;
    bench-swap-1) echo "node bin/tmemu.js bench --workload swap --guests 1 --repeat 2 --out $here/swap-1guest" ;;
    bench-refault-3) echo "node bin/tmemu.js bench --workload refault --repeat 1 --out $here/refault-3guests" ;;
    bench-swap-3) echo "node bin/tmemu.js bench --workload swap --repeat 1 --out $here/swap-3guests" ;;
    bench-phased-3) echo "node bin/tmemu.js bench --workload phased --configs disk tmem tmem+selfballoon --repeat 1 --out $here/phased-3guests" ;;
    bench-mixed-1) echo "node bin/tmemu.js bench --workload mixed --guests 1 --repeat 1 --out $here/mixed-1guest" ;;
    npm-run-bench) echo "npm run -s bench -- --repeats 5 --json $here/npm-run-bench.json" ;;
    *) return 1 ;;
  esac
}

step() {
  local name="$1" cmd t0=$SECONDS
  cmd="$(command_of "$name")" || { echo "measure.sh: unknown step $name" >&2; return 2; }
  echo "[measure] $(date -u +%H:%M:%S) $name: $cmd"
  $cmd >"$here/logs/$name.log" 2>&1
  local rc=$?
  echo "$rc" >"$here/logs/$name.rc"
  echo "[measure] $(date -u +%H:%M:%S) $name: exit $rc after $((SECONDS - t0)) s"
}

steps() { for s in "$@"; do step "$s"; done; }

if [ $# -gt 0 ]; then
  steps "$@"
else
  steps run-default bench-refault-1 bench-swap-3 run-phased-static bench-mixed-1 &
  steps bench-swap-1 bench-refault-3 run-phased-selfballoon bench-phased-3 npm-run-bench &
  wait
fi
