#!/bin/sh
# attach-cut.sh - a 20 MiB photo over a link that breaks every 256 KiB
# (tests/tools/gsproxy --cut-every 262144) resumes from the platform's
# offset and arrives once, hash verified; an agent killed mid-upload loses
# nothing and the next sync sends only what the platform does not hold.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

PROXY="$BUILD_DIR/tools/gsproxy"
SIZE=${GS_ATTACH_MB:-20}

if [ ! -x "$PROXY" ] || ! sync_platform || ! sync_enroll "$AH"; then
	fail "proxy, platform and enrolled agent"
	done_testing
	exit 1
fi
PF_PORT=${PF_URL##*:}

proxy() {
	PX_STATS="$T_TMP/proxy.stats"
	# (The stopped proxy's "listening on" line must not be read as this
	# one's: see proxy() in fault-cut.sh.)
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
stat_of() { sed -n "s/^$1 //p" "$PX_STATS"; }
jpeg() { { printf '\377\330\377\340'; head -c "$2" /dev/urandom; } >"$1"; }
event() {
	ag collect event category=CM_MANHOLE title=井盖破损 place=鹏城社区 \
		occurred_at=2026-04-01T10:00:00Z urgency=URGENT
}
sealed_len() {
	sqlite3 "$AH/agent.db" "SELECT sealed_len FROM attachment WHERE hex(hash) = upper('$1')"
}

# ---- 1. 20 MiB through connections cut every 256 KiB
jpeg "$T_TMP/big.jpg" $((SIZE * 1024 * 1024))
E1=$(event)
H1=$(ag attach "$E1" "$T_TMP/big.jpg") && ok "attach a $SIZE MiB photo" ||
	fail "attach a $SIZE MiB photo"
L1=$(sealed_len "$H1")
proxy --cut-every 262144 || fail "proxy starts"
k=0
until ag sync --platform "$PX_URL" --retries 20 >/dev/null 2>"$T_TMP/sync.err"; do
	k=$((k + 1))
	[ $k -ge 10 ] && break
done
[ $k -lt 10 ] && ok "the sync completes through the cuts ($k extra runs)" ||
	{ fail "the sync completes through the cuts"; sed 's/^/#   /' "$T_TMP/sync.err" | tail -3; }
cuts=$(stat_of connections)
up=$(stat_of up)
proxy_stop
echo "# sealed $L1 bytes; $cuts connections; $up bytes up; re-sent about $((up - L1)) bytes"
[ "$cuts" -ge $((L1 / 262144 - 1)) ] && ok "the link was cut about every 256 KiB ($cuts connections)" ||
	fail "the link was cut about every 256 KiB ($cuts connections)"
[ -f "$PH/attachments/$H1" ] && ok "the platform holds the photo" || fail "the platform holds the photo"
[ "$(ls "$PH/attachments" | grep -c "^$H1")" = 1 ] && [ -z "$(ls "$PH/attachments/partial")" ] &&
	ok "... once, with no partial upload left" || fail "... once, with no partial upload left"
[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM attachments")" = 1 ] &&
	ok "one attachment row" || fail "one attachment row"
pf attachment get "$H1" --out "$T_TMP/back.jpg" >/dev/null 2>&1
cmp -s "$T_TMP/back.jpg" "$T_TMP/big.jpg" && ok "it opens to the same bytes (hash verified)" ||
	fail "it opens to the same bytes (hash verified)"
# Every cut loses at most the chunk in flight: the bytes sent beyond the
# sealed length stay under one 256 KiB chunk (plus headers) per cut.
[ $((up - L1)) -le $((cuts * (262144 + 4096))) ] &&
	ok "re-sent bytes are at most one chunk per cut" ||
	fail "re-sent bytes are at most one chunk per cut ($((up - L1)) for $cuts cuts)"
resent=$(sqlite3 "$AH/agent.db" "SELECT resent FROM attachment WHERE hex(hash) = upper('$H1')")
echo "# the agent counted $resent bytes sent again"

# ---- 2. the agent killed mid-upload loses nothing
jpeg "$T_TMP/b2.jpg" $((4 * 1024 * 1024))
E2=$(event)
H2=$(ag attach "$E2" "$T_TMP/b2.jpg")
L2=$(sealed_len "$H2")
GRIDAGENT_ATTACH_CHUNK=262144 GRIDAGENT_FAULT=kill-after-chunk=6 ag sync >/dev/null 2>&1
rc=$?
[ "$rc" -ge 128 ] && ok "the agent is killed mid-upload (exit $rc)" ||
	fail "the agent is killed mid-upload (exit $rc)"
part=$(stat -c %s "$PH/attachments/partial/$DEV_ID-$H2" 2>/dev/null || echo 0)
[ "$part" -gt 0 ] && [ "$part" -lt "$L2" ] && ok "the platform holds a durable prefix ($part bytes)" ||
	fail "the platform holds a durable prefix ($part of $L2 bytes)"
ag status --json | "$PY" -c '
import json, sys
a = json.load(sys.stdin)["attachments"]
assert a["done"] == 1 and a["pending"] + a["partial"] == 1, a' &&
	ok "status: the photo is still pending" || fail "status: the photo is still pending"
proxy || fail "proxy starts"
check "the next sync completes it" ag sync --platform "$PX_URL"
up=$(stat_of up)
proxy_stop
echo "# resumed: $up bytes up for the remaining $((L2 - part)) bytes"
[ "$up" -lt $((L2 - part + 262144)) ] && ok "... sending only what the platform lacked" ||
	fail "... sending only what the platform lacked ($up bytes for $((L2 - part)))"
pf attachment get "$H2" --out "$T_TMP/back2.jpg" >/dev/null 2>&1
cmp -s "$T_TMP/back2.jpg" "$T_TMP/b2.jpg" && ok "the resumed photo is intact" ||
	fail "the resumed photo is intact"
ag status --json | "$PY" -c '
import json, sys
a = json.load(sys.stdin)["attachments"]
assert a["done"] == 2 and a["pending"] == 0 and a["records_waiting"] == 0, a' &&
	ok "status: both done, no record waiting" || fail "status: both done, no record waiting"

# ---- 3. the platform crashed in the middle of an append: the bytes that
# do not authenticate are cut off when it comes back, and the device
# resends from the last whole message (the in-memory stream state is gone
# too, so the platform rebuilds it from the partial file)
jpeg "$T_TMP/b3.jpg" $((2 * 1024 * 1024))
E3=$(event)
H3=$(ag attach "$E3" "$T_TMP/b3.jpg")
GRIDAGENT_ATTACH_CHUNK=262144 GRIDAGENT_FAULT=kill-after-chunk=3 ag sync >/dev/null 2>&1
P3="$PH/attachments/partial/$DEV_ID-$H3"
part=$(stat -c %s "$P3" 2>/dev/null || echo 0)
stop_platform
head -c 5000 /dev/urandom >>"$P3"
start_platform "$PH" || fail "the platform restarts"
check "after a restart with a torn tail, the sync completes" ag sync --platform "$PF_URL"
grep -q "unauthenticated tail cut off at $part bytes" "$PH/serve.log" &&
	ok "... the torn tail was cut off at the last whole message ($part)" ||
	fail "... the torn tail was cut off at the last whole message ($part)"
pf attachment get "$H3" --out "$T_TMP/back3.jpg" >/dev/null 2>&1
cmp -s "$T_TMP/back3.jpg" "$T_TMP/b3.jpg" && ok "... and the photo is intact" ||
	fail "... and the photo is intact"

done_testing
