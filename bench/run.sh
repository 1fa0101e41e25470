#!/bin/sh
# run.sh - every benchmark under bench/, one after the other (`make bench`).
# Each writes its own section of bench/RESULTS.md, with the machine it ran
# on; the numbers from a loaded machine are lower, so run it on a quiet one.
set -eu
BUILD=${BUILD:-build}
export BUILD
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
for b in bench/bench-save.sh bench/e2e.sh bench/link.sh bench/pull.sh bench/pii.sh bench/attach.sh bench/reconcile.sh bench/bench-*.sh; do
	[ -f "$b" ] || continue
	case " $done_list " in *" $b "*) continue ;; esac
	done_list="${done_list:-} $b"
	echo "== $b"
	sh "$b"
done
if [ -x "$BUILD/bench/wire" ]; then
	echo "== bench/wire (the batches' deflate level)"
	"$BUILD/bench/wire" 200
fi
