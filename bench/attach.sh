#!/bin/sh
# attach.sh - attachments: sealing speed, upload throughput on loopback and
# the bytes sent again after a cut.  Writes its section of bench/RESULTS.md
# (between the bench-attach markers; the rest of the file is left alone).
#
#   BUILD=build sh bench/attach.sh    [MB=64] [REPEAT=3] [CUT_MB=20]
#
# What is measured, with the real programs (gridagent, gridplatform,
# tests/tools/gsproxy) on 127.0.0.1, homes under $BENCH_DIR (default
# /var/tmp, a disk: every upload chunk is fdatasync'd on the platform):
#   seal     `gridagent attach` of an MB MiB file: hash + seal + fsync
#   upload   `gridagent sync` of that one sealed file (the records are
#            synced before, so the run is the attachment alone): sealed
#            bytes / wall time, GET + PUT chunks + final verification
#   cut      a CUT_MB MiB file through gsproxy --cut-every N (N = 256 KiB
#            and 1 MiB): cuts, bytes on the wire beyond the sealed length,
#            and that per cut, against the chunk size in flight
set -eu
BUILD=${BUILD:-build}
MB=${MB:-64}
REPEAT=${REPEAT:-3}
CUT_MB=${CUT_MB:-20}
top=$(cd "$(dirname "$0")/.." && pwd)
AG=$top/$BUILD/gridagent
PF=$top/$BUILD/gridplatform
PROXY=$top/$BUILD/tools/gsproxy
results=$top/bench/RESULTS.md
for f in "$AG" "$PF" "$PROXY"; do
	[ -x "$f" ] || { echo "attach bench: $f missing (make BUILD=$BUILD all $BUILD/tools/gsproxy)" >&2; exit 66; }
done
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gs-bench-attach.XXXXXX")
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
load=$(cut -d' ' -f1-3 /proc/loadavg)

ag() { "$AG" --home "$work/ag" "$@"; }
pf() { "$PF" --home "$work/pf" "$@"; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
jpeg() { { printf '\377\330\377\340'; head -c "$(($2 * 1024 * 1024))" /dev/urandom; } >"$1"; }
event() {
	ag collect event category=CM_MANHOLE title=bench place=bench \
		occurred_at=2026-04-01T10:00:00Z urgency=NORMAL
}
sealed_len() {
	sqlite3 "$work/ag/agent.db" "SELECT sealed_len FROM attachment WHERE hex(hash) = upper('$1')"
}

pf init >/dev/null
pf attachment limit $((1024 * 1024 * 1024)) >/dev/null
# Not through pf(): $! must be the platform itself, for its CPU time.
"$PF" --home "$work/pf" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
PF_PID=$!
PIDS="$PIDS $PF_PID"
# CPU seconds the platform has used so far (utime + stime).
pf_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$PF_PID/stat"; }
i=0
while [ -z "$(sed -n 's/^listening on //p' "$work/serve.out")" ] && [ $i -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
URL=$(sed -n 's/^listening on //p' "$work/serve.out")
PORT=${URL##*:}
# A home is protected by a passphrase from enrollment on (issue 6).
printf 'correct horse battery staple\n' >"$work/pass"
ag enroll "$(pf enroll --worker b --name bench --grid 110101001 --ttl 600)" \
	--platform "$URL" --passphrase-file "$work/pass" >/dev/null
ag sync >/dev/null

seal_rates=""
up_rates=""
cpu_secs=""
cpu_rates=""
r=0
while [ $r -lt "$REPEAT" ]; do
	jpeg "$work/p.jpg" "$MB"
	e=$(event)
	ag sync >/dev/null
	t0=$(now)
	h=$(ag attach "$e" "$work/p.jpg")
	t1=$(now)
	c0=$(pf_cpu)
	/usr/bin/time -f '%U %S' -o "$work/agtime" "$AG" --home "$work/ag" sync >/dev/null
	t2=$(now)
	c1=$(pf_cpu)
	len=$(sealed_len "$h")
	seal_rates="$seal_rates $(echo "$MB / $(secs "$t0" "$t1")" | bc -l)"
	up_rates="$up_rates $(echo "$len / 1048576 / $(secs "$t1" "$t2")" | bc -l)"
	# CPU seconds of both ends for the upload: what the load cannot
	# inflate (the wall time above includes waiting for the CPU).
	cpu=$(echo "$c1 - $c0 + $(awk '{print $1 + $2}' "$work/agtime")" | bc -l)
	cpu_secs="$cpu_secs $cpu"
	cpu_rates="$cpu_rates $(echo "$len / 1048576 / $cpu" | bc -l)"
	rm -f "$work/p.jpg" "$work/pf/attachments/$h"
	r=$((r + 1))
done
med() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}'; }
medf() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}'; }
minmaxf() { printf '%s\n' $1 | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
minmax() { printf '%s\n' $1 | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.0f-%.0f", lo, hi}'; }

# cut N: the CUT_MB file through cuts every N bytes; prints a table row.
cut_row() {
	n=$1
	stats="$work/proxy.$n"
	"$PROXY" --to "$PORT" --cut-every "$n" --stats "$stats" >"$work/proxy.out" &
	pp=$!
	PIDS="$PIDS $pp"
	i=0
	while [ -z "$(sed -n 's/^listening on //p' "$work/proxy.out")" ] && [ $i -lt 100 ]; do
		sleep 0.02
		i=$((i + 1))
	done
	purl="http://127.0.0.1:$(sed -n 's/^listening on //p' "$work/proxy.out")"
	jpeg "$work/c.jpg" "$CUT_MB"
	e=$(event)
	ag sync >/dev/null
	h=$(ag attach "$e" "$work/c.jpg")
	len=$(sealed_len "$h")
	t0=$(now)
	k=0
	until ag sync --platform "$purl" --retries 50 >/dev/null 2>&1; do
		k=$((k + 1))
		[ $k -ge 20 ] && break
	done
	t1=$(now)
	kill "$pp" 2>/dev/null
	wait "$pp" 2>/dev/null || true
	up=$(sed -n 's/^up //p' "$stats")
	conns=$(sed -n 's/^connections //p' "$stats")
	cuts=$((conns - 1))
	extra=$((up - len))
	resent=$(sqlite3 "$work/ag/agent.db" "SELECT resent FROM attachment WHERE hex(hash) = upper('$h')")
	printf '| %s KiB | %s | %s | %s | %s | %s KiB | %.1f s |\n' $((n / 1024)) "$len" "$cuts" \
		"$up" "$extra" $((extra / (cuts > 0 ? cuts : 1) / 1024)) "$(secs "$t0" "$t1")"
	rm -f "$work/c.jpg"
}
row256=$(cut_row 262144)
row1m=$(cut_row 1048576)

machine="$(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
section=$(cat <<EOF
<!-- bench-attach:begin -->
## Attachments (bench/attach.sh)

$(date -u +%Y-%m-%d), $machine; load average at start: $load; homes on
$(df -P "$work" | awk 'NR==2 {print $1}') (BENCH_DIR=${BENCH_DIR:-/var/tmp}).

| measure | median | range ($REPEAT runs) | target |
|---|---|---|---|
| seal at attach ($MB MiB: hash + secretstream + fsync) | $(med "$seal_rates") MiB/s | $(minmax "$seal_rates") MiB/s | |
| upload on loopback ($MB MiB sealed, chunks up to 8 MiB of whole messages, each authenticated then fdatasync'd) | $(med "$up_rates") MiB/s | $(minmax "$up_rates") MiB/s | >= 100 MB/s |
| CPU time of the upload, platform + agent | $(medf "$cpu_secs") s | $(minmaxf "$cpu_secs") s | |
| sealed MiB per CPU second (platform + agent) | $(med "$cpu_rates") MiB/s | $(minmax "$cpu_rates") MiB/s | |

Cut every N bytes (gsproxy --cut-every N), one $CUT_MB MiB photo; "extra"
is the bytes that crossed the link beyond the sealed length (HTTP headers,
the GET after each cut, and the chunk a cut broke):

| cut every | sealed bytes | cuts | bytes up | extra | extra per cut | time |
|---|---|---|---|---|---|---|
$row256
$row1m

A cut loses at most the one chunk in flight (the platform keeps whole
PUTs only, each durable before its answer); the agent halves its chunk
after a broken transfer (1 MiB at first, down to 64 KiB), doubles it
after 2 successes (up to 8 MiB) but not back to a size that broke until
32 chunks went through, so on a link that breaks every 256 KiB the chunk
settles at 64 KiB and each cut costs less than one chunk.

Rerun: \`BUILD=build sh bench/attach.sh\` (MB, REPEAT, CUT_MB).
<!-- bench-attach:end -->
EOF
)

touch "$results"
SEC=$section awk '
	BEGIN { sec = ENVIRON["SEC"] }
	/^<!-- bench-attach:begin/ { print sec; skip = 1; done = 1; next }
	/^<!-- bench-attach:end/ { skip = 0; next }
	!skip { print }
	END { if (!done) { if (NR) print ""; print sec } }' "$results" >"$work/RESULTS.md"
cp "$work/RESULTS.md" "$results"
echo "$section"
