#!/bin/sh
# reconcile.sh - how long `gridplatform reconcile --json` takes over a big
# deployment: DEVICES devices (default 1000) holding RECORDS records
# (default 1,000,000), written straight into a platform store (SQL through
# the sqlite3 shell, not over HTTP, so the set-up takes a minute, not an
# hour).  The store's triggers (schema/platform/0002-reconcile.sql) run as
# they do at ingest, so the per-device tallies reconcile reads are the
# ones ingest would have kept.
#
#   BUILD=build sh bench/reconcile.sh        [DEVICES=1000] [RECORDS=1000000]
#                                            [RUNS=5] [BENCH_DIR=/var/tmp]
#
# The data: each device sent RECORDS/DEVICES records in batches of 100
# (one revision each); every 100th device has one seq missing, every 50th
# a quarantined change and a conflict; every device has a heartbeat.  The
# result (best and median of RUNS) is printed; with WRITE=1 it replaces
# the "reconcile" section of bench/RESULTS.md.
set -eu
BUILD=${BUILD:-build}
DEVICES=${DEVICES:-1000}
RECORDS=${RECORDS:-1000000}
RUNS=${RUNS:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
pfbin=$top/$BUILD/gridplatform
[ -x "$pfbin" ] || { echo "reconcile.sh: $pfbin missing (make BUILD=$BUILD)" >&2; exit 66; }
command -v sqlite3 >/dev/null || { echo "reconcile.sh: needs the sqlite3 shell" >&2; exit 69; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gs-bench-reconcile.XXXXXX")
[ "${KEEP:-0}" = 1 ] && echo "reconcile.sh: keeping $dir" || trap 'rm -rf "$dir"' EXIT INT TERM
per=$((RECORDS / DEVICES))
batches=$(((per + 99) / 100))

"$pfbin" --home "$dir/pf" init >/dev/null
t0=$(date +%s)
sqlite3 "$dir/pf/platform.db" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE d(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM d WHERE i < $DEVICES)
INSERT INTO devices (device_id, device_pk, token_id, worker, name, grid,
    enrolled_at, last_seq, chain_head, batches, last_contact)
SELECT CAST(printf('%016d', i) AS BLOB), zeroblob(32), zeroblob(16),
    printf('w%04d', i), '网格员', printf('4401%04d', i / 20), 0, $batches,
    zeroblob(32), $batches - (i % 100 = 0), 1764140000000 FROM d;
WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b
    WHERE n < $DEVICES * $batches - 1)
INSERT INTO batches (device_id, batch_id, seq, prev_hash, envelope_hash,
    envelope, received_at, status, http_status, applied, conflicted,
    quarantined, chain, receipt, results)
SELECT CAST(printf('%016d', n / $batches + 1) AS BLOB),
    CAST(printf('%016d', n) AS BLOB), n % $batches + 1, zeroblob(32),
    zeroblob(32), zeroblob(2048), 1764140000000, 1, 200, 100, 0, 0, 'ok',
    zeroblob(209), '[]' FROM b
WHERE NOT ((n / $batches + 1) % 100 = 0 AND n % $batches + 1 = 5);
WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r
    WHERE n < $DEVICES * $per - 1)
INSERT INTO records (uuid, type, form_version, grid, rev, fields, deleted,
    created_at, updated_at, author, device_id, batch)
SELECT printf('0190a6e2-%04x-7000-8000-%012x', n / 65536 % 65536, n),
    CASE n % 10 WHEN 0 THEN 'visit' WHEN 1 THEN 'house' WHEN 2 THEN 'event'
        ELSE 'person' END, 1, printf('4401%04d', (n / $per + 1) / 20), 1,
    '{"name":"张三","address":"广州市天河区某路1号"}', 0,
    1764140000000 + n, 1764140000000 + n, printf('w%04d', n / $per + 1),
    CAST(printf('%016d', n / $per + 1) AS BLOB), 1 FROM r;
INSERT INTO revisions (uuid, rev, change_id, base_rev, device_id, batch,
    change, fields, deleted, applied_at)
SELECT uuid, 1, uuid, 0, device_id, 1, '{}', fields, 0, created_at FROM records;
-- The per-device tallies, as ingest writes them (platform/ingest.c).
INSERT INTO device_tally (device_id, key, n)
SELECT device_id, 'rec:' || type, count(*) FROM records GROUP BY device_id, type;
INSERT INTO device_tally (device_id, key, n)
SELECT device_id, 'rev', count(*) FROM revisions GROUP BY device_id;
WITH RECURSIVE d(i) AS (SELECT 50 UNION ALL SELECT i + 50 FROM d WHERE i + 50 <= $DEVICES)
INSERT INTO quarantine (batch, device_id, change_id, uuid, type, grid, cause,
    change, reasons, created_at)
SELECT 1, CAST(printf('%016d', i) AS BLOB), printf('q%d', i), printf('q%d', i),
    'person', 'g', 'invalid', '{}', '[]', 0 FROM d;
WITH RECURSIVE d(i) AS (SELECT 50 UNION ALL SELECT i + 50 FROM d WHERE i + 50 <= $DEVICES)
INSERT INTO conflicts (uuid, change_id, device_id, batch, base_rev,
    current_rev, change, current_fields, created_at)
SELECT printf('c%d', i), printf('c%d', i), CAST(printf('%016d', i) AS BLOB),
    1, 1, 2, '{}', '{}', 0 FROM d;
INSERT INTO heartbeats (device_id, received_at, device_time, unsent, outbox,
    last_seq, acked_seq, rejected, quarantined, chain_head, version,
    free_bytes, report)
SELECT device_id, 1764140000000, 1764140000000, 0, 0, last_seq, last_seq, 0,
    0, chain_head, '0.1.0', 1000000000, '{}' FROM devices;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
ANALYZE;
SQL
t1=$(date +%s)
echo "reconcile.sh: $DEVICES devices, $RECORDS records, $((DEVICES * batches)) batches written in $((t1 - t0)) s"
[ "$(sqlite3 "$dir/pf/platform.db" 'SELECT count(*) FROM records')" -eq "$((DEVICES * per))" ] ||
	{ echo "reconcile.sh: record count wrong" >&2; exit 70; }

times=""
i=0
while [ $i -lt "$RUNS" ]; do
	s=$(date +%s%N)
	"$pfbin" --home "$dir/pf" reconcile --json >"$dir/out.json"
	e=$(date +%s%N)
	times="$times $(((e - s) / 1000000))"
	i=$((i + 1))
done
issues=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["devices"]), d["issues"])' "$dir/out.json")
sorted=$(echo $times | tr ' ' '\n' | sort -n)
best=$(echo "$sorted" | head -n 1)
median=$(echo "$sorted" | sed -n "$(((RUNS + 1) / 2))p")
size=$(wc -c <"$dir/out.json")
machine="$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reconcile --json: best $best ms, median $median ms of $RUNS (ms:$times); devices and issues: $issues; output $size bytes"
echo "machine: $machine"
if [ "${WRITE:-0}" = 1 ]; then
	results=$top/bench/RESULTS.md
	python3 - "$results" <<PY
import sys
p = sys.argv[1]
s = open(p).read()
sec = """## reconcile (bench/reconcile.sh)

\`gridplatform reconcile --json\` over $DEVICES devices and $((DEVICES * per)) records
($((DEVICES * batches)) batches, one revision per record; every 100th device
missing a seq, every 50th with a quarantined change and a conflict; a
heartbeat for every device), data written straight into the store, with
the tallies ingest keeps.  $(date -u +%Y-%m-%d), $machine.

| runs | best | median | output |
|---|---|---|---|
| $RUNS | $best ms | $median ms | $size bytes JSON, $issues (devices, issues) |

Why it is fast: reconcile never counts records; it reads the per-device
tallies (device_tally) that ingest keeps, plus one pass each over
the (device, seq) index for gaps and forks.  Target: under 1 s.

Rerun: \`BUILD=build sh bench/reconcile.sh\` (DEVICES, RECORDS, RUNS;
\`WRITE=1\` rewrites this section; \`KEEP=1\` keeps the generated store).

"""
start = s.find("## reconcile")
if start >= 0:
    end = s.find("\n## ", start + 1)
    s = s[:start] + sec + (s[end + 1:] if end >= 0 else "")
else:
    s = s.rstrip("\n") + "\n\n" + sec
open(p, "w").write(s.rstrip("\n") + "\n")
PY
	echo "written into bench/RESULTS.md"
fi
