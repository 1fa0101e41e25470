#!/bin/sh
# pii.sh - what field encryption costs the agent (issue 6), written into
# bench/RESULTS.md between the bench-pii markers (the rest of the file is
# left alone).
#
#   BUILD=build sh bench/pii.sh     [REPEAT=3] [COUNT=100000] [SAVES=2000]
#
# bench/pii.c runs a plain store and a protected store side by side on the
# same gridgen persons: single saves (fsync'd, latency), bulk import
# (records/s), a masked listing, and the key: protect and unlock
# (Argon2id, opslimit 3, 64 MiB) wall time.  The disk's 4 KiB write +
# fdatasync p50 is measured before each profile's saves (bench/lat.h, as
# bench/save.c does): a save cannot be faster.  Medians of REPEAT runs; the
# load average at the start is recorded with them, because other work on
# the machine shows up in every number.
set -eu
BUILD=${BUILD:-build}
REPEAT=${REPEAT:-3}
COUNT=${COUNT:-100000}
SAVES=${SAVES:-2000}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/$BUILD/bench/pii
gridgen=$top/$BUILD/gridgen
results=$top/bench/RESULTS.md
for f in "$bin" "$gridgen"; do
	[ -x "$f" ] || { echo "pii.sh: $f missing (make BUILD=$BUILD $BUILD/bench/pii)" >&2; exit 66; }
done
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gs-bench-pii.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$gridgen" --type person --count "$COUNT" --seed 1 >"$work/persons.ndjson"
load=$(cut -d' ' -f1-3 /proc/loadavg)
i=0
while [ $i -lt "$REPEAT" ]; do
	"$bin" --dir "$work/run$i" --saves "$SAVES" --ndjson "$work/persons.ndjson" >>"$work/all"
	rm -rf "$work/run$i"
	i=$((i + 1))
done
# median of each key
med() { awk -v k="$1" '$1 == k { print $2 }' "$work/all" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
{
	echo "<!-- bench-pii:begin (written by bench/pii.sh; rerun it to update) -->"
	echo "## pii (bench/pii.c): field encryption at rest"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M') UTC, $COUNT gridgen persons, $SAVES single saves, median of $REPEAT runs;"
	echo "load average at the start: $load, at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared with other work)."
	echo "The saves are timed as bench/save.c times them (bench/lat.h): after a sync"
	echo "and the disk's own fdatasync p50, both profiles before either bulk import."
	echo
	echo "| | plain store | protected store (pii sealed) |"
	echo "|---|---:|---:|"
	echo "| disk: 4 KiB write + fdatasync p50 before the saves (ms) | $(med plain_fsync_p50) | $(med pii_fsync_p50) |"
	echo "| single save p50 (ms) | $(med plain_single_p50) | $(med pii_single_p50) |"
	echo "| single save p90 (ms) | $(med plain_single_p90) | $(med pii_single_p90) |"
	echo "| single save p99 (ms) | $(med plain_single_p99) | $(med pii_single_p99) |"
	echo "| bulk import (records/s) | $(med plain_bulk_rate) | $(med pii_bulk_rate) |"
	echo "| masked list (records/s) | $(med plain_list_masked_rate) | $(med pii_list_masked_rate) |"
	echo
	echo "A protected import is bound by its inserting thread, not by the readers that"
	echo "seal: SQLite with the blind index (random inserts), about 30k instructions per"
	echo "record against 20k plain, and the WAL writes (bench/pii-callgrind.sh; bench-save's notes)."
	echo
	echo "Key: protect (Argon2id derive + wrap) $(med protect_median) ms, unlock $(med unlock_median) ms"
	echo "(median of 5 each per run; opslimit 3, memlimit 64 MiB)."
	echo "<!-- bench-pii:end -->"
} >"$work/section"
if grep -q '<!-- bench-pii:begin' "$results"; then
	awk -v f="$work/section" '
		/<!-- bench-pii:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
		/<!-- bench-pii:end/ { skip = 0; next }
		!skip { print }' "$results" >"$work/new"
	cat "$work/new" >"$results"
else
	{ echo; cat "$work/section"; } >>"$results"
fi
cat "$work/section"
