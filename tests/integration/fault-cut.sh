#!/bin/sh
# fault-cut.sh - the link between agent and platform fails every way the
# cutting proxy (tests/tools/gsproxy) knows, and each upload still ends
# exactly once: the sync that follows completes, the platform holds each
# record once, the device acked only what the platform committed
# (tests/checker/gscheck.py --quiescent).
#
#   - a ~1 MiB batch cut at every GS_CUT_STEP bytes of its upload (default
#     1024: every KiB; the agent retries in-process with a 1 ms backoff, so
#     a thousand cuts cost a few seconds);
#   - the answers (health probe, then receipt) cut at every 64 bytes: the
#     platform committed, the device lost the answer and resends; the
#     platform answers with the stored receipt;
#   - random cut offsets from a seed (GS_SEED), both directions;
#   - every request duplicated onto a second connection racing the first;
#   - a stall mid-body (both sockets open, nothing moves): the agent gives
#     up after its low-speed time, well before the stall ends.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

SEED=${GS_SEED:-$(date +%s)}
# The fast profile cuts every 4 KiB from a random first offset (a
# different quarter of the offsets each run, ~6 s); the campaign sets
# GS_CUT_STEP=1024 and GS_CUT_FROM=1024 for every KiB (~25 s).
STEP=${GS_CUT_STEP:-4096}
# Under the sanitizers (make check): every 16 KiB.
if [ -z "${GS_CUT_STEP:-}" ] && ldd "$GRIDAGENT" 2>/dev/null | grep -q 'libasan'; then
	STEP=16384
fi
PROXY="$BUILD_DIR/tools/gsproxy"
CHECK="$PY $GS_TOP/tests/checker/gscheck.py"
echo "# seed $SEED (replay: GS_SEED=$SEED)"
FROM=${GS_CUT_FROM:-$((SEED % STEP + 1))}
export GRIDAGENT_BACKOFF_MS=1

if [ ! -x "$PROXY" ] || ! sync_platform || ! sync_enroll "$AH"; then
	fail "proxy, platform and enrolled agent"
	done_testing
	exit 1
fi
PF_PORT=${PF_URL##*:}
: >"$T_TMP/saved"

# proxy ARGS...: starts gsproxy in front of the platform; sets $PX_URL,
# $PX_PID and $PX_STATS.
proxy() {
	PX_STATS="$T_TMP/proxy.stats"
	# Both go first: the redirection below truncates proxy.out in the
	# child, which may run after the loop has read the stopped proxy's
	# "listening on" line (a connection refused, seen on a loaded box).
	rm -f "$PX_STATS" "$T_TMP/proxy.out"
	"$PROXY" --to "$PF_PORT" --stats "$PX_STATS" "$@" >"$T_TMP/proxy.out" &
	PX_PID=$!
	T_PIDS="$T_PIDS $PX_PID"
	wait_listening "$T_TMP/proxy.out" "$PX_PID" || return 1
	PX_URL="http://127.0.0.1:$LISTEN"
}
proxy_stop() {
	kill "$PX_PID" 2>/dev/null
	wait "$PX_PID" 2>/dev/null
}
# stat_of NAME: a proxy counter (after its last connection is done).
stat_of() { sleep 0.1; sed -n "s/^$1 //p" "$PX_STATS"; }

# sync_through N: up to N syncs through the proxy until one exits 0.
sync_through() {
	k=0
	while [ "$k" -lt "$1" ]; do
		"$GRIDAGENT" --home "$AH" sync --platform "$PX_URL" --retries 100 \
			>/dev/null 2>"$T_TMP/sync.err" && return 0
		k=$((k + 1))
	done
	sed 's/^/#   /' "$T_TMP/sync.err" | tail -n 3
	return 1
}

exactly_once() {
	if $CHECK --seed "$SEED" --quiet --quiescent --platform "$PH/platform.db" \
		--agent "$AH/agent.db:$T_TMP/saved" >"$T_TMP/check.out" 2>&1; then
		ok "$1: every record exactly once, receipts sound"
	else
		fail "$1: the checker found violations (seed $SEED)"
		sed 's/^/# /' "$T_TMP/check.out" | head -n 15
	fi
}

# visits N SEED: N visit records whose free text is random, so that they
# do not compress (N = 300 makes one batch of about 1 MiB).
visits() {
	"$GRIDGEN" --type visit --count "$1" --seed "$2" | "$PY" -c '
import json, random, sys
rnd = random.Random(int(sys.argv[1]))
for line in sys.stdin:
    d = json.loads(line)
    d["content"] = "".join(chr(0x4e00 + rnd.randrange(20000))
                           for _ in range(1400))
    print(json.dumps(d, ensure_ascii=False))
' "$2"
}

collect_visits() {
	visits "$1" "$2" | ag collect visit --json - >>"$T_TMP/saved" 2>"$T_TMP/collect.err" ||
		{ sed 's/^/#   /' "$T_TMP/collect.err" | head -n 3; return 1; }
}

# ---- 1. a ~1 MiB batch, cut at every STEP bytes of its upload
collect_visits 300 "$SEED" || fail "collect 300 visits"
proxy --sweep-up "$STEP" --sweep-from "$FROM" || fail "proxy starts"
t0=$(date +%s)
sync_through 40 && ok "the upload completes after the sweep of cuts" ||
	fail "the upload completes after the sweep of cuts"
env=$(sqlite3 "$AH/agent.db" "SELECT max(bytes) FROM outbox")
cuts=$(stat_of cuts)
echo "# envelope $env bytes, $cuts cuts every $STEP bytes from $FROM, $(( $(date +%s) - t0 ))s"
[ "$env" -ge 900000 ] && ok "the batch is about 1 MiB ($env bytes)" ||
	fail "the batch is about 1 MiB ($env bytes)"
[ "$cuts" -ge $((env / STEP - 2)) ] && ok "cut at every $STEP bytes ($cuts cuts)" ||
	fail "cut at every $STEP bytes ($cuts cuts, wanted $((env / STEP - 2)))"
[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches")" = 1 ] &&
	ok "the platform holds the batch once" || fail "the platform holds the batch once"
proxy_stop
exactly_once "after $cuts cuts of the upload"

# ---- 2. the answers cut at every 64 bytes (committed, answer lost)
collect_people 5 "$SEED" || fail "collect"
ag list --json | "$PY" -c '
import json, sys
for l in sys.stdin: print(json.loads(l)["uuid"])' >"$T_TMP/saved"
proxy --sweep-down 64 || fail "proxy starts"
sync_through 20 && ok "the sync completes after its answers were cut" ||
	fail "the sync completes after its answers were cut"
cuts=$(stat_of cuts)
down=$(stat_of down)
echo "# $cuts cuts every 64 bytes of the answers, $down bytes down"
[ "$cuts" -ge 8 ] && ok "the answers were cut at every 64 bytes ($cuts cuts)" ||
	fail "the answers were cut at every 64 bytes ($cuts cuts)"
proxy_stop
exactly_once "after $cuts cuts of the answers"

# ---- 3. random cuts, both directions, from the seed
for dir in up down; do
	collect_visits 20 $((SEED + 1)) || fail "collect"
	collect_people 300 $((SEED + 2)) || fail "collect"
	ag list --json | "$PY" -c '
import json, sys
for l in sys.stdin: print(json.loads(l)["uuid"])' >"$T_TMP/saved"
	if [ "$dir" = up ]; then max=40000; else max=600; fi
	proxy --random-$dir $max --seed "$SEED" --faults 30 || fail "proxy starts"
	"$GRIDAGENT" --home "$AH" sync --platform "$PX_URL" --retries 100 \
		--batch-records 60 >/dev/null 2>&1
	sync_through 10 && ok "random $dir cuts: the sync completes" ||
		fail "random $dir cuts: the sync completes"
	# (Offsets past every answer cut nothing: the checks after it would
	# then test a sync with no fault at all.)
	cuts=$(stat_of cuts)
	[ "${cuts:-0}" -ge 1 ] && ok "... the proxy did cut ($cuts cuts)" ||
		fail "... the proxy did cut (${cuts:-no} cuts)"
	proxy_stop
	exactly_once "after random $dir cuts"
done

# ---- 4. every request duplicated, racing the original
collect_people 200 $((SEED + 3)) || fail "collect"
ag list --json | "$PY" -c '
import json, sys
for l in sys.stdin: print(json.loads(l)["uuid"])' >"$T_TMP/saved"
before=$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches")
proxy --dup-request || fail "proxy starts"
"$GRIDAGENT" --home "$AH" sync --platform "$PX_URL" --batch-records 40 \
	>/dev/null 2>"$T_TMP/sync.err" && ok "a sync whose requests are all duplicated completes" ||
	fail "a sync whose requests are all duplicated completes"
dups=$(stat_of dups)
proxy_stop
after=$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches")
[ "$dups" -ge 1 ] && [ $((after - before)) -eq 5 ] &&
	ok "$dups duplicated connections, 5 batches stored once each" ||
	fail "$dups duplicated connections, $((after - before)) batches stored (wanted 5)"
exactly_once "after duplicated requests"

# ---- 5. a stall mid-body: the agent gives up on its own
collect_visits 30 $((SEED + 4)) || fail "collect"
proxy --stall-up 20000 --stall-ms 20000 --faults 1 || fail "proxy starts"
t0=$(date +%s)
# (3 s of no progress, not 1: on a loaded machine the platform's first
# answer alone can take a second, and the agent would give up before the
# proxy stalls anything.)
GRIDAGENT_LOW_SPEED_TIME=3 "$GRIDAGENT" --home "$AH" sync --platform "$PX_URL" \
	--retries 0 >/dev/null 2>"$T_TMP/sync.err"
rc=$?
secs=$(( $(date +%s) - t0 ))
[ "$rc" -eq 75 ] && [ "$secs" -lt 16 ] &&
	ok "a stalled upload is abandoned by the agent (exit 75 after ${secs}s, stall 20s)" ||
	fail "a stalled upload is abandoned by the agent (exit $rc after ${secs}s)"
[ "$(stat_of stalls)" = 1 ] &&
	ok "... the proxy stalled it" ||
	fail "... the proxy stalled it: $(tr '\n' ' ' <"$PX_STATS"); $(tr '\n' ' ' <"$T_TMP/sync.err")"
proxy_stop
expect_exit 0 "the next sync completes" ag sync
exactly_once "after a stall"

done_testing
