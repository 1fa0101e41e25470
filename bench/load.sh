#!/bin/sh
# load.sh - 200 devices syncing at once against one platform on this
# machine: no errors, no loss; records/s and the sync latency percentiles
# go into bench/RESULTS.md under "## load".
#
#   BUILD=build sh bench/load.sh [DEVICES [RECORDS_PER_DEVICE]]
#
# Each device is a real gridagent home enrolled with the platform, holding
# RECORDS (default 50) gridgen persons; all DEVICES (default 200) start
# `gridagent sync --json` at the same moment.  Each sync is one probe, one
# sealed batch, one upload and its receipt, then the pull of what the
# others sent (issue 4).  The receipt latency of a device is the time from
# the common start to its outbox row's acked_at (the receipt verified and
# stored); devices still pulling after LOAD_DEADLINE (300) s are stopped
# and counted in the last column.
# Afterwards tests/checker/gscheck.py checks every device against the
# platform (invariants 1-5, quiescent).  All devices share the loopback
# address, so the platform's per-address connection cap is raised for the
# run (GRIDPLATFORM_PER_IP_LIMIT); everything else is the default.
set -u
BUILD=${BUILD:-build}
N=${1:-200}
R=${2:-50}
top=$(cd "$(dirname "$0")/.." && pwd)
GA=$top/$BUILD/gridagent
GP=$top/$BUILD/gridplatform
GEN=$top/$BUILD/gridgen
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
work=$(mktemp -d "${TMPDIR:-/tmp}/gs-bench-load.XXXXXX")
pf_pid=
cleanup() {
	[ -n "$pf_pid" ] && kill "$pf_pid" 2>/dev/null
	rm -rf "$work"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT

"$GP" --home "$work/pf" init --public-url http://127.0.0.1:9 >/dev/null || exit 1
GRIDPLATFORM_PER_IP_LIMIT=$((N + 50)) "$GP" --home "$work/pf" serve \
	--listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
pf_pid=$!
i=0
url=
while [ -z "$url" ] && [ $i -lt 100 ]; do
	sleep 0.05
	url=$(sed -n 's/^listening on //p' "$work/serve.out")
	i=$((i + 1))
done
[ -n "$url" ] || { echo "load: platform did not start" >&2; exit 1; }

# Issue 6: homes are protected by a passphrase from enrollment on (when
# this gridagent knows the option).
printf 'load test passphrase\n' >"$work/pass"
passopt=
"$GA" enroll --help 2>&1 | grep -q -- --passphrase-file &&
	passopt="--passphrase-file $work/pass"
echo "load: enrolling $N devices with $R records each..." >&2
"$GEN" --type person --count $((N * R)) --seed 77 >"$work/people"
d=1
while [ $d -le "$N" ]; do
	code=$("$GP" --home "$work/pf" enroll --worker "w$d" --name "n$d" \
		--grid 110101001 --ttl 600) || exit 1
	# shellcheck disable=SC2086
	"$GA" --home "$work/ag$d" enroll "$code" --platform "$url" $passopt \
		>/dev/null || exit 1
	sed -n "$(( (d - 1) * R + 1 )),$(( d * R ))p" "$work/people" |
		"$GA" --home "$work/ag$d" collect person --json - >"$work/saved$d" 2>/dev/null ||
		exit 1
	d=$((d + 1))
done

echo "load: $N devices sync at once..." >&2
t0=$($PY -c 'import time; print(time.time())')
d=1
pids=
while [ $d -le "$N" ]; do
	"$GA" --home "$work/ag$d" sync --json >"$work/sum$d" 2>"$work/err$d" &
	pids="$pids $!"
	d=$((d + 1))
done
# A sync is upload then pull (issue 4): the receipt latency is measured
# from the device's own record (outbox.acked_at), and after DEADLINE
# seconds the devices still pulling are stopped and counted.
DEADLINE=${LOAD_DEADLINE:-300}
i=0
while [ $i -lt $((DEADLINE * 5)) ]; do
	alive=0
	for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
	[ "$alive" -eq 0 ] && break
	sleep 0.2
	i=$((i + 1))
done
t1=$($PY -c 'import time; print(time.time())')
still=0
for p in $pids; do
	if kill -0 "$p" 2>/dev/null; then
		still=$((still + 1))
		kill "$p" 2>/dev/null
	fi
done
wait_fail=0
for p in $pids; do
	wait "$p" || wait_fail=$((wait_fail + 1))
done

args=""
d=1
while [ $d -le "$N" ]; do
	args="$args --agent $work/ag$d/agent.db:$work/saved$d"
	d=$((d + 1))
done
kill "$pf_pid" 2>/dev/null
wait "$pf_pid" 2>/dev/null
pf_pid=
# shellcheck disable=SC2086
$PY "$top/tests/checker/gscheck.py" --platform "$work/pf/platform.db" \
	--quiescent --quiet $args >"$work/check" 2>&1
check_rc=$?

$PY - "$work" "$N" "$R" "$t0" "$t1" "$wait_fail" "$check_rc" "$still" "$DEADLINE" >"$work/section" <<'EOF'
import json, os, platform, sqlite3, subprocess, sys, time
work, n, r, t0, t1, wf, crc, still, deadline = sys.argv[1:10]
n, r, t0, t1, wf, crc = int(n), int(r), float(t0), float(t1), int(wf), int(crc)
still, deadline = int(still), int(deadline)
lat, errs, acked, last = [], 0, 0, t0
synced = 0
for d in range(1, n + 1):
    db = sqlite3.connect("file:%s/ag%d/agent.db?mode=ro" % (work, d), uri=True)
    rows = db.execute("SELECT acked_at, record_count FROM outbox "
                      "WHERE state = 'acked'").fetchall()
    db.close()
    if not rows:
        errs += 1
        continue
    for at, cnt in rows:
        acked += cnt
        lat.append(at - t0 * 1000)
        last = max(last, at / 1000.0)
    try:
        s = json.load(open(os.path.join(work, "sum%d" % d)))
        synced += s.get("result") == "ok"
    except Exception:
        pass
lat.sort()
def pct(p):
    return lat[min(len(lat) - 1, int(round(p / 100.0 * len(lat) + 0.5)) - 1)] if lat else 0
wall = last - t0
cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
ncpu = os.cpu_count()
load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
print("## load")
print()
print("`bench/load.sh %d %d`: %d enrolled devices (real `gridagent` homes), each "
      "holding %d gridgen persons, all start `gridagent sync` at the same "
      "moment against one `gridplatform serve` (defaults, except the "
      "per-address connection cap raised to %d because every device shares "
      "127.0.0.1). One sync = probe, seal one batch, upload, verify and store "
      "the receipt, then pull what the others sent. Receipt latency = from "
      "the common start to the device's receipt stored (outbox.acked_at)."
      % (n, r, n, r, n + 50))
print()
print("Machine: %s, %d CPUs, load average %s at the end of the run (shared "
      "with other helpers' builds and tests). Date: %s." %
      (cpu, ncpu, load, time.strftime("%Y-%m-%d", time.gmtime())))
print()
print("| devices | records acked | devices without receipt | checker (invariants 1-5) | s to last receipt | records/s | receipt p50 ms | p90 ms | p99 ms | max ms | whole syncs (upload + pull) done in %d s |" % deadline)
print("|---|---|---|---|---|---|---|---|---|---|---|")
print("| %d | %d | %d | %s | %.2f | %.0f | %d | %d | %d | %d | %d of %d |" % (
    n, acked, errs, "0 violations" if crc == 0 else "VIOLATIONS",
    wall, acked / wall if wall > 0 else 0, pct(50), pct(90), pct(99),
    lat[-1] if lat else 0, synced, n))
print()
EOF
cat "$work/section"
cat "$work/check"
res="$top/bench/RESULTS.md"
# Replace this benchmark's own section (from "## load" to the next "## "),
# or append it.
$PY - "$res" "$work/section" <<'EOF'
import sys
path, sec = sys.argv[1], open(sys.argv[2]).read()
try:
    text = open(path).read()
except OSError:
    text = "# Benchmark results\n\n"
lines = text.split("\n")
out, i, done = [], 0, False
while i < len(lines):
    if lines[i].strip() == "## load":
        out.append(sec.rstrip("\n"))
        out.append("")
        i += 1
        while i < len(lines) and not lines[i].startswith("## "):
            i += 1
        done = True
        continue
    out.append(lines[i])
    i += 1
if not done:
    if out and out[-1] != "":
        out.append("")
    out.append(sec.rstrip("\n"))
    out.append("")
open(path, "w").write("\n".join(out).rstrip("\n") + "\n")
EOF
[ "$check_rc" -eq 0 ]
