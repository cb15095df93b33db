#!/bin/sh
# The issue 11 measurements (docs/snapshots.md), with this checkout's bin/tmemu.js:
#   boot     ready for the first command, cold vs from the boot snapshot: N interleaved pairs, medians
#   save     memtouch 190 MiB in a 128 MiB guest with frontswap, saved SAVE_AT s in, restored anew
#   refuse   the saved file cut in half, and re-signed as from other images: refused
#   migrate  a live migration MIGRATE_AT s into a memtouch verify loop, to a receiver on PORT
# Usage: sh docs/snapshots-measure.sh [boot] [save] [refuse] [migrate]   (default: all)
# Env: N=10 SAVE_AT=25 MIGRATE_AT=30 PORT=7711 OUT=<temporary folder>
set -u
cd "$(dirname "$0")/.."
TMEMU="node bin/tmemu.js"
OUT=${OUT:-$(mktemp -d /tmp/tmemu-snapshots-XXXXXX)}
STEPS=${*:-boot save refuse migrate}
GUEST="--memory-mib 128 --swap-mib 256 --store-mib 256"
mkdir -p "$OUT"
echo "results in $OUT"

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
boot_s() { sed -n 's/^tmemu: boot \([0-9.]*\) s,.*/\1/p'; }

for step in $STEPS; do
  echo "== $step: $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
  case $step in
  boot)
    $TMEMU boot --cmd true >/dev/null 2>&1 # the snapshot for these options exists afterwards
    : >"$OUT/cold" && : >"$OUT/warm"
    for i in $(seq 1 "${N:-10}"); do
      c=$($TMEMU boot --cold-boot --cmd true --stats 2>&1 | boot_s)
      w=$($TMEMU boot --cmd true --stats 2>&1 | boot_s)
      if [ -z "$c" ] || [ -z "$w" ]; then
        echo "pair $i: a boot failed (no 'tmemu: boot S s' line): no medians"
        exit 1
      fi
      echo "pair $i cold $c warm $w"
      echo "$c" >>"$OUT/cold" && echo "$w" >>"$OUT/warm"
    done
    c=$(median <"$OUT/cold") && w=$(median <"$OUT/warm")
    echo "median cold $c s, from the snapshot $w s, ratio $(awk "BEGIN { printf \"%.1f\", $c / $w }")"
    ;;
  save)
    rm -f "$OUT/mt.snap"
    $TMEMU boot $GUEST --save "$OUT/mt.snap" --save-at "${SAVE_AT:-25}" --cmd "memtouch 190 1 3 512" --stats
    echo "exit $?"
    $TMEMU boot --store-mib 256 --restore "$OUT/mt.snap" --stats
    echo "exit $?"
    ;;
  refuse)
    [ -f "$OUT/mt.snap" ] || { echo "run the save step first"; continue; }
    head -c $(($(stat -c %s "$OUT/mt.snap") / 2)) "$OUT/mt.snap" >"$OUT/cut.snap"
    $TMEMU boot --restore "$OUT/cut.snap"
    echo "exit $?"
    node --import tsx -e "
      const { readFileSync } = await import('node:fs');
      const f = await import('$(pwd)/emulator/snapshot-file.ts');
      const bytes = readFileSync('$OUT/mt.snap');
      const ours = JSON.parse(bytes.subarray(16, 16 + bytes.readUInt32LE(12)).toString()).imagesKey;
      const { header, sections } = f.decodeSnapshot(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'mt.snap', { kind: 'save', imagesKey: ours });
      delete header.sections;
      f.writeSnapshotFile('$OUT/other.snap', { ...header, imagesKey: '0123456789abcdef01234567.89abcdef0123456789abcdef.1.16.2-1' }, sections);
    "
    $TMEMU boot --restore "$OUT/other.snap"
    echo "exit $?"
    ;;
  migrate)
    $TMEMU migrate --listen "127.0.0.1:${PORT:-7711}" --store-mib 256 --stats >"$OUT/receiver.out" 2>"$OUT/receiver.err" &
    receiver=$!
    sleep 3
    $TMEMU boot $GUEST --migrate-to "127.0.0.1:${PORT:-7711}" --migrate-at "${MIGRATE_AT:-30}" --cmd "memtouch 190 1 4 512" --stats
    echo "sender exit $?"
    wait $receiver
    echo "receiver exit $?"
    cat "$OUT/receiver.out" "$OUT/receiver.err"
    ;;
  *) echo "unknown step $step (boot, save, refuse, migrate)" ;;
  esac
done
echo "== done: $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
