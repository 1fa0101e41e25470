#!/bin/sh
# sync-callgrind.sh - instructions per synced record on each side, under
# valgrind's callgrind: stable while the machine is shared, where the
# timings of bench/e2e.sh are not.  The figures of the "End to end"
# section of bench/RESULTS.md ("Where a synced record's time goes").
#
#   BUILD=build sh bench/sync-callgrind.sh     [COUNT=2000] [OUT=dir]
#
# One platform (`gridplatform serve` under callgrind) and one device
# holding COUNT gridgen persons (collected beforehand, personal data
# sealed at rest), then `gridagent sync` under callgrind: batches of
# 1,000, every receipt verified.  Prints each side's total instructions
# and the total divided by COUNT.  The platform's total includes its start
# (schema, keys: about 30M instructions, i.e. 15k per record at 2,000).
# The callgrind files are kept in OUT for callgrind_annotate.
set -eu
BUILD=${BUILD:-build}
COUNT=${COUNT:-2000}
top=$(cd "$(dirname "$0")/.." && pwd)
GA=$top/$BUILD/gridagent
GP=$top/$BUILD/gridplatform
GEN=$top/$BUILD/gridgen
for f in "$GA" "$GP" "$GEN"; do
	[ -x "$f" ] || { echo "sync-callgrind: $f missing (make BUILD=$BUILD)" >&2; exit 66; }
done
command -v valgrind >/dev/null || { echo "sync-callgrind: no valgrind" >&2; exit 69; }
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gs-bench-cg.XXXXXX")
OUT=${OUT:-$work/out}
mkdir -p "$OUT"
pf_pid=""
cleanup() {
	if [ -n "$pf_pid" ]; then
		kill "$pf_pid" 2>/dev/null || true
		wait "$pf_pid" 2>/dev/null || true
	fi
	# The callgrind files stay (in OUT); the rest goes, and the work
	# directory too when OUT is elsewhere.
	rm -rf "$work/pf" "$work/dev" "$work/persons.ndjson" "$work/pass" \
	    "$work"/*.log "$work"/*.out
	case "$OUT" in "$work"/*) ;; *) rmdir "$work" 2>/dev/null || true ;; esac
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$GP" --home "$work/pf" init --public-url http://127.0.0.1:1 >/dev/null
valgrind --tool=callgrind --callgrind-out-file="$OUT/platform.out" \
	"$GP" --home "$work/pf" serve --listen 127.0.0.1:0 \
	>"$work/pf.out" 2>"$work/pf.log" &
pf_pid=$!
i=0
until grep -q '^listening on' "$work/pf.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 600 ] || { echo "sync-callgrind: the platform did not start" >&2; exit 70; }
	sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/pf.out")
code=$("$GP" --home "$work/pf" enroll --worker W0001 --name 测试 --grid 440307001001)
printf 'bench passphrase, not a secret\n' >"$work/pass"
"$GA" --home "$work/dev" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$work/pass" >/dev/null
"$GA" --home "$work/dev" enroll "$code" --platform "$url" \
	--passphrase-file "$work/pass" >/dev/null
"$GEN" --type person --count "$COUNT" --seed 42 >"$work/persons.ndjson"
"$GA" --home "$work/dev" collect person --json "$work/persons.ndjson" >/dev/null 2>&1
valgrind --tool=callgrind --callgrind-out-file="$OUT/agent.out" \
	"$GA" --home "$work/dev" sync >/dev/null 2>"$work/ag.log"
kill -TERM "$pf_pid"
wait "$pf_pid" || true
pf_pid=""
held=$("$GP" --home "$work/pf" export --type person --format ndjson | wc -l)
[ "$held" -eq "$COUNT" ] ||
	{ echo "sync-callgrind: the platform holds $held records, not $COUNT" >&2; exit 70; }
for side in agent platform; do
	t=$(callgrind_annotate "$OUT/$side.out" 2>/dev/null |
		awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	echo "$side: $t instructions, $((t / COUNT)) per record ($COUNT persons)"
done
echo "callgrind files: $OUT"
