#!/bin/sh
# agent-sync-offline.sh - coverage comes and goes: sync with the platform
# down exits 75 and keeps everything, then succeeds once it is up; a bare
# 200, a forged receipt or a proxy's error page never acks a batch;
# `sync --watch` probes with backoff and syncs the moment the platform is
# back, and stops cleanly on SIGTERM; a sync stopped mid-pull says so.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
HOSTPORT=${PF_URL#http://}

# ---- the platform is down
stop_platform
collect_people 500 11 && ok "collect 500 while out of coverage" ||
	fail "collect 500 while out of coverage"
agent_uuids "$T_TMP/a0"
expect_exit 75 "sync with the platform down exits 75" ag sync --retries 1
grep -q 'unreachable' "$T_TMP/err" && ok "... saying unreachable" ||
	fail "... saying unreachable"
expect_exit 75 "sync --json with the platform down exits 75" ag sync --json \
	--retries 0
[ "$(json_get "$T_TMP/out" 'd["result"]')" = unreachable ] &&
	ok "... and reports result unreachable" ||
	fail "... and reports result unreachable"
expect_exit 0 "status" ag status --json
cp "$T_TMP/out" "$T_TMP/st"
[ "$(json_get "$T_TMP/st" 'd["outbox"]["sealed_records"]')" = 500 ] &&
	[ "$(json_get "$T_TMP/st" 'd["changes"]["batched"]')" = 500 ] &&
	ok "status: everything kept, sealed in the outbox" ||
	fail "status: everything kept, sealed in the outbox"
json_get "$T_TMP/st" 'd["last_sync_result"]' | grep -q '^unreachable' &&
	ok "status: last sync unreachable" || fail "status: last sync unreachable"
agent_uuids "$T_TMP/a1"
[ "$(wc -l <"$T_TMP/a0")" -eq 500 ] && cmp -s "$T_TMP/a0" "$T_TMP/a1" &&
	ok "no record changed" || fail "no record changed"

# ---- something answers, but it is not the platform committing the batch
start_platform_at "$HOSTPORT" || fail "platform restarts"
curl -s "$PF_URL/v1/health" >"$T_TMP/health"
stop_platform
FAKE_PORT_FILE="$T_TMP/fake.port"
"$PY" - "$T_TMP/health" "$FAKE_PORT_FILE" <<'PY' &
import http.server, os, sys
health = open(sys.argv[1], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200, "application/json", health)
    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        mode = open(sys.argv[2] + ".mode").read().strip()
        # What it answered, for the checks (a refused connection is 75 too).
        with open(sys.argv[2] + ".log", "a") as log:
            log.write(mode + "\n")
        if mode == "bare":
            self.reply(200, "text/plain", b"OK")
        elif mode == "hang":
            import time
            time.sleep(8)
            self.reply(200, "text/plain", b"late")
        elif mode == "forged":
            body = ('{"receipt":"%s","results":"[]"}' % ("47535231" + "00" * 205)).encode()
            self.reply(200, "application/json", body)
        else:
            self.reply(403, "text/html", b"<html>Access denied by proxy</html>")
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2] + ".tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
PY
FAKE_PID=$!
T_PIDS="$T_PIDS $FAKE_PID"
i=0
while [ ! -s "$FAKE_PORT_FILE" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
FAKE="http://127.0.0.1:$(cat "$FAKE_PORT_FILE")"
for mode in bare forged proxy; do
	echo "$mode" >"$FAKE_PORT_FILE.mode"
	expect_exit 75 "a $mode answer is not an ack (75)" ag sync --retries 0 \
		--platform "$FAKE"
	n=$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox WHERE state = 'sealed'")
	b=$(sqlite3 "$AH/agent.db" "SELECT (SELECT count(*) FROM change WHERE state = 1) + (SELECT count(*) FROM sealed_creation AS s JOIN outbox AS o ON o.seq = s.batch_seq WHERE o.state = 'sealed')")
	[ "$n" -ge 1 ] && [ "$b" = 500 ] && ok "... the batch stays sealed" ||
		fail "... the batch stays sealed ($n sealed, $b batched)"
	grep -qx "$mode" "$FAKE_PORT_FILE.log" 2>/dev/null &&
		ok "... and the fake platform did give the $mode answer" ||
		fail "... and the fake platform did give the $mode answer"
done
sqlite3 "$AH/agent.db" "SELECT last_error FROM outbox" | grep -q '403' &&
	ok "the outbox records why" ||
	fail "the outbox records why: $(sqlite3 "$AH/agent.db" \
		"SELECT seq, last_error FROM outbox" | tr '\n' ' ')"
# A platform that takes the bytes and never answers: the request times out.
echo hang >"$FAKE_PORT_FILE.mode"
t0=$(date +%s)
expect_exit 75 "an answer that never comes times out (75)" \
	env GRIDAGENT_TIMEOUT_MS=1500 "$GRIDAGENT" --home "$AH" sync --retries 0 \
	--platform "$FAKE"
[ $(( $(date +%s) - t0 )) -le 6 ] && ok "... within the configured timeout" ||
	fail "... within the configured timeout"
grep -qi 'timed out\|timeout' "$T_TMP/err" && grep -qx hang "$FAKE_PORT_FILE.log" &&
	ok "... saying it timed out" ||
	fail "... saying it timed out: $(tr '\n' ' ' <"$T_TMP/err")"
kill "$FAKE_PID" 2>/dev/null

# ---- the platform is back: everything arrives, once
start_platform_at "$HOSTPORT" || fail "platform restarts"
expect_exit 0 "sync once the platform is up" ag sync
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
cmp -s "$T_TMP/a" "$T_TMP/p" && [ "$(wc -l <"$T_TMP/p")" -eq 500 ] &&
	ok "the platform holds exactly the 500" || fail "the platform holds exactly the 500"

# ---- --watch: down, then up, then SIGTERM
expect_exit 64 "--pull-interval not a number is refused" ag sync --watch \
	--pull-interval soon
expect_exit 64 "--pull-interval above a day is refused" ag sync --watch \
	--pull-interval 86401
stop_platform
collect_people 300 12 || fail "collect 300 more"
# (the binary itself in the background, not the ag shell function, so
# that $! is the agent's pid)
"$GRIDAGENT" --home "$AH" sync --watch --json --max-backoff 1 --interval 1 \
	--pull-interval 1 >"$T_TMP/watch.out" \
	2>"$T_TMP/watch.err" &
W=$!
sleep 2
kill -0 "$W" 2>/dev/null && ok "--watch keeps going while the platform is down" ||
	fail "--watch keeps going while the platform is down"
start_platform_at "$HOSTPORT" || fail "platform restarts"
i=0
while [ $i -lt 100 ]; do
	n=$(pf export --format ndjson | wc -l)
	[ "$n" -ge 800 ] && break
	sleep 0.1
	i=$((i + 1))
done
[ "$n" -eq 800 ] && ok "--watch syncs soon after the platform is back" ||
	fail "--watch syncs soon after the platform is back ($n)"
# New saves while watching are picked up too.
collect_people 7 13 || fail "collect 7 more"
i=0
while [ $i -lt 60 ]; do
	n=$(pf export --format ndjson | wc -l)
	[ "$n" -ge 807 ] && break
	sleep 0.1
	i=$((i + 1))
done
[ "$n" -eq 807 ] && ok "--watch sends new saves" || fail "--watch sends new saves ($n)"
# Nothing left to send: the watch still comes to the platform every
# --pull-interval, so what an admin hands down reaches the device without
# a new save to carry it (it never did before --pull-interval).
U=$(ag list --json | uuids_of | head -n 1)
T=$(pf task add --worker w001 --kind VISIT --subject "$U" --due 2026-12-01 \
	--title "回访")
pf review "$U" --state has_issues --comment "电话号码不对" >/dev/null ||
	fail "review a record"
i=0
while [ $i -lt 100 ]; do
	ag tasks --json >"$T_TMP/t.json" 2>/dev/null
	ag show "$U" --json >"$T_TMP/show.json" 2>/dev/null
	grep -q "$T" "$T_TMP/t.json" &&
		grep -q '"has_issues"' "$T_TMP/show.json" && break
	sleep 0.1
	i=$((i + 1))
done
[ -n "$T" ] && grep -q "$T" "$T_TMP/t.json" &&
	ok "--watch with nothing to send brings a new task down" ||
	fail "--watch with nothing to send brings a new task down"
[ "$(json_get "$T_TMP/show.json" 'd["review"]["state"]')" = has_issues ] &&
	ok "... and a review verdict" || fail "... and a review verdict"
kill -TERM "$W"
wait "$W"
rc=$?
[ "$rc" -eq 0 ] && ok "--watch stops cleanly on SIGTERM (exit 0)" ||
	fail "--watch stops cleanly on SIGTERM (exit $rc)"
grep -q '"result":"ok"' "$T_TMP/watch.out" && ok "... printing its summary" ||
	fail "... printing its summary"
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
[ "$(wc -l <"$T_TMP/p")" -eq 807 ] && cmp -s "$T_TMP/a" "$T_TMP/p" &&
	ok "both sides hold the same 807" ||
	fail "both sides hold the same 807"
agent_integrity "$AH" && ok "agent store integrity_check ok" ||
	fail "agent store integrity_check ok"

# ---- SIGTERM while a new device pulls the 807 through a slow link: 75,
# saying it was stopped (it said "platform unreachable (platform
# unreachable)"), and the next sync brings the rest, each record once.
counting_proxy "$T_TMP/slow.stats" --delay-ms 100
AH2=$T_TMP/ag2
code=$(pf enroll --worker w002 --name 李四 --grid 110101001 --ttl 600)
"$GRIDAGENT" --home "$AH2" enroll "$code" --platform "$PX_URL" \
	--passphrase-file "$AG_PASS" >/dev/null 2>&1 || fail "enroll a second device"
"$GRIDAGENT" --home "$AH2" sync >"$T_TMP/slow.out" 2>"$T_TMP/slow.err" &
S=$!
sleep 1
kill -TERM "$S"
wait "$S"
rc=$?
[ "$rc" -eq 75 ] && ok "SIGTERM mid-pull: sync exits 75" ||
	fail "SIGTERM mid-pull: sync exits 75 (exit $rc)"
grep -q '^gridagent: stopped by a signal' "$T_TMP/slow.err" &&
	ok "... saying it was stopped" || fail "... saying it was stopped"
"$GRIDAGENT" --home "$AH2" sync >/dev/null 2>&1 &&
	ok "the next sync completes" || fail "the next sync completes"
"$GRIDAGENT" --home "$AH2" list --json | uuids_of >"$T_TMP/a2"
cmp -s "$T_TMP/a2" "$T_TMP/p" && ok "the second device holds the 807 once" ||
	fail "the second device holds the 807 once"

done_testing
