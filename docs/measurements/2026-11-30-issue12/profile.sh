#!/bin/bash
# Profiling runs, one after the other, from the worktree at the committed code.
cd /tmp/wt-c
T=/tmp/c/prof
run() { local name=$1; shift; echo "[prof] $(date -u +%T) $name: $* (load $(cut -d' ' -f1-3 /proc/loadavg))"; ( /usr/bin/time -f "%e s wall %U user %S sys" node bin/tmemu.js "$@" ) 2>&1 | perl /tmp/c/ts.pl > $T/$name.log; echo "[prof] $(date -u +%T) $name done (load $(cut -d' ' -f1-3 /proc/loadavg))"; }
STAMP='stamp() { echo "phase: $1 $(cut -d" " -f1 /proc/uptime)"; }'
run verifiers-notmem run --guests 1 --policy static --no-tmem --files /tmp/c/set159 --json $T/verifiers-notmem.json --cmd "$STAMP; stamp cat1; cat /data/set/* > /dev/null; stamp md5; md5sum /data/set/* | md5sum; stamp setcheck; setcheck /data/set 1 40704 1024; stamp cat2; cat /data/set/* > /dev/null; stamp md5b; md5sum /data/set/* | md5sum; stamp setcheckb; setcheck /data/set 1 40704 1024; stamp end"
run run-default run --json $T/run-default.json
for w in refault swap mixed phased; do run wl-$w run --workload $w --guests 1 --json $T/wl-$w.json; done
