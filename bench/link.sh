#!/bin/sh
# link.sh - a sync over a slow link: one batch under way at a time against
# two (`gridagent sync --in-flight 1` against the default, which follows
# the platform's "in_flight", 2), through tests/tools/gsproxy delaying
# every chunk it relays by DELAY ms, for each DELAY in DELAYS.  Writes its
# section of bench/RESULTS.md (between the bench-link markers).
#
#   BUILD=build sh bench/link.sh   [COUNT=20000] [DELAYS="0 20 50"] [RUNS=3]
#
# Timed: `gridagent sync` of COUNT gridgen persons until every batch is
# acknowledged by a verified receipt, RUNS times per cell on fresh homes,
# the two ways alternating; the table shows the median seconds and the
# range.  gsproxy's delay is per chunk read (a request or an answer of
# one batch is one to a few chunks), so it stands for a link's latency
# and slowness together, not for a particular network.
set -eu
BUILD=${BUILD:-build}
COUNT=${COUNT:-20000}
DELAYS=${DELAYS:-0 20 50}
RUNS=${RUNS:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
bench=link
. "$top/bench/lib.sh"
bench_positive RUNS "$RUNS"
for d in $DELAYS; do
	case "$d" in '' | *[!0-9]*)
		echo "bench-link: DELAYS must be numbers of ms" >&2
		exit 64 ;;
	esac
done
GA=$top/$BUILD/gridagent
GP=$top/$BUILD/gridplatform
GEN=$top/$BUILD/gridgen
PROXY=$top/$BUILD/tools/gsproxy
results=${RESULTS:-$top/bench/RESULTS.md}
bench_need "make BUILD=$BUILD all $BUILD/tools/gsproxy" "$GA" "$GP" "$GEN" "$PROXY"
bench_work

load=$(cut -d' ' -f1-3 /proc/loadavg)
"$GEN" --type person --count "$COUNT" --seed 42 >"$work/persons.ndjson"
printf 'bench passphrase, not a secret\n' >"$work/pass"

# one_run DIR DELAY INFLIGHT: prints the sync's seconds.
one_run() {
	d=$1
	mkdir -p "$d"
	platform_up "$d"
	proxy_up "$d" --delay-ms "$2"
	device_up "$d" "$px_url" "$work/pass"
	"$GA" --home "$d/dev" collect person --json "$work/persons.ndjson" >/dev/null 2>&1
	t0=$(now)
	"$GA" --home "$d/dev" sync --in-flight "$3" >/dev/null
	t1=$(now)
	held=$("$GP" --home "$d/pf" export --type person --format ndjson | wc -l)
	if [ "$held" -ne "$COUNT" ]; then
		echo "bench-link: the platform holds $held records, not $COUNT" >&2
		exit 70
	fi
	stop_run
	rm -rf "$d"
	echo "$t1 - $t0" | bc -l
}

# median and range of the numbers in a file, one per line.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		printf "%.2f s (%.2f-%.2f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
median() {
	sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }'
}

rows=""
for delay in $DELAYS; do
	: >"$work/one.$delay"
	: >"$work/two.$delay"
	i=1
	while [ "$i" -le "$RUNS" ]; do
		one_run "$work/r" "$delay" 1 >>"$work/one.$delay"
		one_run "$work/r" "$delay" 2 >>"$work/two.$delay"
		i=$((i + 1))
	done
	m1=$(median "$work/one.$delay")
	m2=$(median "$work/two.$delay")
	echo "delay $delay ms: one at a time $m1 s, two at once $m2 s" >&2
	rows="$rows
| $delay | $(stats "$work/one.$delay") | $(stats "$work/two.$delay") | $(echo "$m1 / $m2" | bc -l | xargs printf '%.2f') |"
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
section=$(cat <<EOF
<!-- bench-link:begin (written by bench/link.sh; rerun it to update) -->
## A slow link: one batch under way, or two (bench/link.sh)

$(date -u '+%Y-%m-%d %H:%M UTC'), $cpu, $(nproc) cores, Linux $(uname -r),
build \`$BUILD\`, load average at start: $load.  \`gridagent sync\` of
$COUNT gridgen persons (batches of 1,000, personal data sealed at rest)
through \`gsproxy --delay-ms DELAY\`, which holds every chunk it relays
for DELAY ms, to a \`gridplatform serve\` on 127.0.0.1; until every batch
is acknowledged by a verified receipt.  \`--in-flight 1\`: the next batch
goes when the last one's receipt is in; the default (the platform's
\`in_flight\`, 2): it goes on a second connection while the last one is
under way (\`?follows=SEQ\`, docs/PROTOCOL.md section 6).  Median of $RUNS
runs each on fresh homes, the two ways alternating; the range in
brackets.

| delay per chunk (ms) | one at a time | two at once | speed-up |
|---|---|---|---|$rows

Rerun: \`BUILD=$BUILD sh bench/link.sh\`.
<!-- bench-link:end -->
EOF
)
write_section bench-link "$section"
echo "$section"
