#!/bin/sh
# pull.sh - the way down: a new device of a grid pulls what the grid holds.
# One device collects COUNT gridgen persons and syncs them (not timed);
# then, RUNS times, a new device of another worker in the same grid is
# enrolled and runs `gridagent sync` through tests/tools/gsproxy, which
# counts the bytes and connections between it and the platform.  Writes
# its section of bench/RESULTS.md (between the bench-pull markers).
#
#   BUILD=build sh bench/pull.sh   [COUNT=100000] [RUNS=3]
#
# This is what a worker's replacement handheld does first (a stolen or
# broken one), and, a page at a time, what every device of a grid does
# with what the others collect.  BEFORE, when set, is a sentence added
# to the section (a comparison measured with an older build).
set -eu
BUILD=${BUILD:-build}
COUNT=${COUNT:-100000}
RUNS=${RUNS:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
bench=pull
. "$top/bench/lib.sh"
bench_positive RUNS "$RUNS"
bench_positive COUNT "$COUNT"
GA=$top/$BUILD/gridagent
GP=$top/$BUILD/gridplatform
GEN=$top/$BUILD/gridgen
PROXY=$top/$BUILD/tools/gsproxy
results=${RESULTS:-$top/bench/RESULTS.md}
bench_need "make BUILD=$BUILD bench-pull" "$GA" "$GP" "$GEN" "$PROXY"
bench_work
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
json_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$2" "$1"; }

load=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'bench passphrase, not a secret\n' >"$work/pass"
"$GEN" --type person --count "$COUNT" --seed 42 >"$work/persons.ndjson"

# The grid: one device collects and syncs everything.
platform_up "$work"
device_up "$work" "$pf_url" "$work/pass"
"$GA" --home "$work/dev" collect person --json "$work/persons.ndjson" >/dev/null 2>&1
"$GA" --home "$work/dev" sync >/dev/null
proxy_up "$work" --stats "$work/proxy.stats"

i=1
while [ "$i" -le "$RUNS" ]; do
	d=$work/new$i
	code=$("$GP" --home "$work/pf" enroll --worker "W10$i" --name 新机 --grid 440307001001)
	"$GA" --home "$d" init --grid 440307001001 --worker "W10$i" \
		--passphrase-file "$work/pass" >/dev/null
	"$GA" --home "$d" enroll "$code" --platform "$pf_url" \
		--passphrase-file "$work/pass" >/dev/null
	sleep 0.2
	up0=$(stat_of up "$work/proxy.stats")
	down0=$(stat_of down "$work/proxy.stats")
	c0=$(stat_of connections "$work/proxy.stats")
	t0=$(now)
	"$GA" --home "$d" sync --json --platform "$px_url" >"$work/sync$i.json"
	t1=$(now)
	sleep 0.2
	got=$(json_of pulled_records "$work/sync$i.json")
	if [ "$got" -ne "$COUNT" ]; then
		echo "bench-pull: run $i received $got records, not $COUNT" >&2
		exit 70
	fi
	cat >"$work/m$i" <<M
t=$(elapsed "$t0" "$t1")
down=$(( $(stat_of down "$work/proxy.stats") - down0 ))
up=$(( $(stat_of up "$work/proxy.stats") - up0 ))
conns=$(( $(stat_of connections "$work/proxy.stats") - c0 ))
requests=$(json_of requests "$work/sync$i.json")
M
	echo "run $i: $(grep '^t=' "$work/m$i" | cut -d= -f2) s" >&2
	i=$((i + 1))
done
med=$(for f in "$work"/m*; do echo "$(grep '^t=' "$f" | cut -d= -f2) $f"; done |
	sort -n | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }')
range=$(for f in "$work"/m*; do grep '^t=' "$f" | cut -d= -f2; done |
	sort -n | awk '{ v[NR] = $1 } END { if (NR > 1) printf "%.2f-%.2f", v[1], v[NR]; else printf "%.2f", v[1] }')
. "$med"

cpu=$(grep -m 1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: //')
ncpu=$(nproc)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo "?")
write_section bench-pull "<!-- bench-pull:begin (written by bench/pull.sh; rerun it to update) -->
## Pull (bench/pull.sh)

$(date -u '+%Y-%m-%d %H:%M') UTC, $cpu, $ncpu cores, $mem, commit $rev,
build \`$BUILD\`, load average at start: $load.  A grid of $COUNT gridgen
persons, collected and synced by one device; then a new device of the
grid (another worker) syncs through \`gsproxy\`, which counts the bytes
and the connections, $RUNS times (a new device each time).

| measure | value |
|---|---|
| wall seconds, median (all runs) | $(printf '%.2f' "$t") ($range) |
| records/s received | $(echo "$COUNT / $t" | bc) |
| bytes down per record (HTTP included) | $(echo "scale=1; $down / $COUNT" | bc) |
| bytes up per record | $(echo "scale=1; $up / $COUNT" | bc) |
| requests; connections | $requests; $conns |

Pages come deflated (PROTOCOL.md 9.4, \`deflate=1\`), on two kept-alive
connections: the next page is fetched on the second while one is applied.${BEFORE:+  $BEFORE}
<!-- bench-pull:end -->"
echo "bench-pull: wrote its section of $results" >&2
