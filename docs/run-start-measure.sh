#!/bin/sh
# The default `tmemu run` (3 guests, refault), cold (--cold-boot) vs from the boot snapshot,
# N pairs interleaved (default 2), after one warm-up run that makes the run's boot snapshots
# (its probe's and its guests'). Prints per run: wall time, the summary's seconds and workload
# window, how each guest started, the MemTotal probe's setup time; then the medians.
# Usage: sh docs/run-start-measure.sh [N]   (from the repository root; writes /tmp/run-start-*.json)
set -e
N=${1:-2}
rm -f /tmp/run-start-cold-*.json /tmp/run-start-snap-*.json # only this invocation's runs count
node bin/tmemu.js run --duration-s 1 >/tmp/run-start-warm.out 2>&1 || true
i=1
while [ "$i" -le "$N" ]; do
  for mode in cold snap; do
    flag=""; [ "$mode" = cold ] && flag="--cold-boot"
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    s=$(date +%s.%N)
    rc=0
    node bin/tmemu.js run $flag --json /tmp/run-start-$mode-$i.json >/tmp/run-start-$mode-$i.out 2>&1 || rc=$?
    e=$(date +%s.%N)
    if [ "$rc" -ne 0 ] || [ ! -f /tmp/run-start-$mode-$i.json ]; then
      echo "$mode $i: FAILED (exit $rc; see /tmp/run-start-$mode-$i.out): not counted" | tee -a /tmp/run-start-results.txt
      rm -f /tmp/run-start-$mode-$i.json
      continue
    fi
    python3 -c "
import json; d = json.load(open('/tmp/run-start-$mode-$i.json'))
print('$mode $i load %s: wall %.1f s, summary %.1f s, window %.1f s, outside the window %.1f s, started %s, probe %s s, valid %s' % ('$load', $e - $s, d['seconds'], d['window']['seconds'], $e - $s - d['window']['seconds'], [g.get('start') for g in d['guests']], d['setup'] and round(d['setup']['seconds'], 1), d['valid']))
" | tee -a /tmp/run-start-results.txt
  done
  i=$((i + 1))
done
python3 - <<'PY'
import json, glob, statistics as st, os
for mode in ("cold", "snap"):
    every = [json.load(open(f)) for f in sorted(glob.glob(f"/tmp/run-start-{mode}-*.json"))]
    runs = [r for r in every if r.get("valid") is True]
    if len(runs) < len(every):
        print(f"{mode}: {len(every) - len(runs)} invalid run(s) not counted")
    if runs:
        print(f"{mode}: median summary {st.median(r['seconds'] for r in runs):.1f} s, window {st.median(r['window']['seconds'] for r in runs):.1f} s, outside the window {st.median(r['seconds'] - r['window']['seconds'] for r in runs):.1f} s (n={len(runs)})")
PY
