#!/bin/sh
# pii-callgrind.sh - instructions per bulk-imported record, plain and with
# pii sealed, under valgrind's callgrind: stable while the machine is
# shared, where bench/pii.sh's timings are not.
#
#   BUILD=build sh bench/pii-callgrind.sh     [COUNT=10000] [OUT=dir]
#
# bench/pii.c --only plain-bulk / pii-bulk imports COUNT gridgen persons
# (seed 1) into a fresh store; only ag_import_ndjson and its reader
# threads are counted (--toggle-collect), not the store's creation or the
# Argon2id of protecting it.  The callgrind files are kept in OUT for
# callgrind_annotate (--inclusive=yes shows where a record goes).
set -eu
BUILD=${BUILD:-build}
COUNT=${COUNT:-10000}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/$BUILD/bench/pii
gridgen=$top/$BUILD/gridgen
for f in "$bin" "$gridgen"; do
	[ -x "$f" ] || { echo "pii-callgrind: $f missing (make BUILD=$BUILD $BUILD/bench/pii)" >&2; exit 66; }
done
command -v valgrind >/dev/null || { echo "pii-callgrind: no valgrind" >&2; exit 69; }
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gs-bench-piicg.XXXXXX")
if [ -n "${OUT:-}" ]; then
	trap 'rm -rf "$work"' EXIT
else
	OUT=$work/out
	trap 'rm -rf "$work/run" "$work/persons.ndjson"' EXIT
fi
mkdir -p "$OUT"
"$gridgen" --type person --count "$COUNT" --seed 1 >"$work/persons.ndjson"
for part in plain-bulk pii-bulk; do
	valgrind --tool=callgrind --callgrind-out-file="$OUT/$part.out" \
		--toggle-collect=ag_import_ndjson --toggle-collect=import_reader \
		"$bin" --dir "$work/run" --only "$part" \
		--ndjson "$work/persons.ndjson" >"$work/$part.txt" 2>"$work/$part.log"
	rm -rf "$work/run"
	n=$(awk '$1 ~ /_bulk_records$/ { print $2 }' "$work/$part.txt")
	[ "$n" = "$COUNT" ] || { echo "pii-callgrind: $part imported '$n' records, not $COUNT" >&2; exit 70; }
	t=$(callgrind_annotate "$OUT/$part.out" 2>/dev/null |
		awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	echo "$part: $t instructions, $((t / COUNT)) per record ($COUNT persons)"
done
echo "callgrind files: $OUT"
