#!/bin/sh
# mutant-sync-retries.sh - the retry rules of `gridagent sync`
# (tests/MUTANTS.md, third campaign, SY6-SY8):
#   SY7  a one-shot `sync --retries N` makes N + 1 attempts of a batch the
#        platform answers 503, not one more;
#   SY8  a platform's Retry-After is capped by --max-backoff: 503 with
#        Retry-After: 60 under --max-backoff 1 is answered again within
#        seconds;
#   SY6  `sync --watch` goes on over a refusal for good (an attachment whose
#        sealed file is lost: one-shot exit 65): later saves still reach
#        the platform.
# A fake platform in front of the real one answers PUT .../batches/UUID with
# 503 (logging each answer, so no check can pass against a dead port) and
# forwards everything else.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
PF_PORT=${PF_URL##*:}

cp "$GS_TOP/tests/integration/fakeplatform.py" "$T_TMP/"
cat >"$T_TMP/fake.py" <<'PYEOF'
# fake.py UPSTREAM RETRY_AFTER: forwards every request to the platform on
# port UPSTREAM but PUT .../batches/..., answered 503 (with Retry-After:
# RETRY_AFTER unless it is "-"), each logged "ANSWERED 503 PATH" on stderr.
# Prints "listening on PORT".
import functools, socketserver, sys

import fakeplatform
from fakeplatform import requests, send

up, ra = int(sys.argv[1]), sys.argv[2]


forward = functools.partial(fakeplatform.forward, up)


class H(socketserver.StreamRequestHandler):
    def handle(self):
        for rq in requests(self.rfile):
            meth, path = rq[0].split()[0].decode(), rq[0].split()[1].decode()
            if meth != "PUT" or "/batches/" not in path:
                send(self.wfile, *forward(*rq))
                continue
            sys.stderr.write("ANSWERED 503 %s\n" % path)
            sys.stderr.flush()
            send(self.wfile, 503,
                 b'{"error":"unavailable","message":"busy"}',
                 b"" if ra == "-" else b"Retry-After: %s\r\n" % ra.encode())


fakeplatform.serve(H)
PYEOF

# fake RETRY_AFTER: the fake platform at $FU (pid $FP), its log $T_TMP/fake.err.
fake() {
	rm -f "$T_TMP/fake.out" "$T_TMP/fake.err"
	"$PY" "$T_TMP/fake.py" "$PF_PORT" "$1" >"$T_TMP/fake.out" 2>"$T_TMP/fake.err" &
	FP=$!
	T_PIDS="$T_PIDS $FP"
	wait_listening "$T_TMP/fake.out" "$FP"
	if [ -z "$LISTEN" ]; then
		fail "the fake platform listens"
		sed 's/^/#   /' "$T_TMP/fake.err" | head -n 5
		done_testing
		exit 1
	fi
	FU="http://127.0.0.1:$LISTEN"
}
unfake() { kill "$FP" 2>/dev/null; wait "$FP" 2>/dev/null; }
answered() { grep -c '^ANSWERED 503 /v1/devices/.*/batches/' "$T_TMP/fake.err"; }

# bg_sync SECONDS ARGS...: gridagent sync ARGS in the background, killed
# after SECONDS if still running; sets $RC (or "killed") and $SECS.
bg_sync() {
	lim=$1
	shift
	t0=$(date +%s)
	"$GRIDAGENT" --home "$AH" sync "$@" >"$T_TMP/out" 2>"$T_TMP/err" &
	wait_or_kill $! "$lim"
	SECS=$(($(date +%s) - t0))
}

collect_people 3 61 || fail "collect 3"

# ---- SY7: --retries 2 is three attempts of the batch, no more
fake -
bg_sync 20 --retries 2 --in-flight 1 --max-backoff 1 --platform "$FU"
unfake
n=$(answered)
[ "$RC" = 75 ] && [ "$n" = 3 ] &&
	ok "--retries 2 against a busy platform: 3 attempts, exit 75" ||
	fail "--retries 2 against a busy platform: 3 attempts, exit 75 (got $n attempt(s), exit $RC)"
a=$(sqlite3 "$AH/agent.db" "SELECT max(attempts) FROM outbox")
[ "$a" = 3 ] && ok "... and the outbox counts 3 attempts" ||
	fail "... and the outbox counts 3 attempts ($a)"

# ---- SY8: Retry-After: 60 under --max-backoff 1 is waited 1 s, not 60
fake 60
bg_sync 12 --retries 1 --in-flight 1 --max-backoff 1 --platform "$FU"
unfake
n=$(answered)
[ "$RC" = 75 ] && [ "$n" = 2 ] && [ "$SECS" -le 8 ] &&
	ok "Retry-After: 60 under --max-backoff 1: asked again at once, exit 75 in ${SECS}s" ||
	fail "Retry-After: 60 under --max-backoff 1: asked again at once (exit $RC in ${SECS}s, $n attempt(s))"

expect_exit 0 "then the real platform takes the batch" ag sync
[ "$(pf export --format ndjson | wc -l)" -eq 3 ] &&
	ok "... all 3 records on the platform" || fail "... all 3 records on the platform"

# ---- SY6: --watch goes on over an attachment refused for good
jpeg() { { printf '\377\330\377\340'; head -c "$2" /dev/urandom; } >"$1"; }
jpeg "$T_TMP/lost.jpg" 5000
E=$(ag collect event category=CM_MANHOLE title=井盖破损 place=鹏城社区 \
	occurred_at=2026-04-01T10:00:00Z urgency=URGENT)
H=$(ag attach "$E" "$T_TMP/lost.jpg") || fail "attach a photo"
rm -f "$AH/attachments/sealed/$H"
"$GRIDAGENT" --home "$AH" sync --watch --max-backoff 1 --interval 1 \
	--pull-interval 1 >"$T_TMP/watch.out" 2>"$T_TMP/watch.err" &
W=$!
T_PIDS="$T_PIDS $W"
# The first pass: the record goes, its photo cannot.
i=0
while [ $i -lt 100 ] && ! grep -q 'cannot be sent' "$T_TMP/watch.err"; do
	sleep 0.1
	i=$((i + 1))
done
grep -q 'cannot be sent' "$T_TMP/watch.err" &&
	ok "--watch: the lost photo cannot be sent" ||
	fail "--watch: the lost photo cannot be sent ($(head -c 300 "$T_TMP/watch.err"))"
collect_people 2 62 || fail "collect 2 while watching"
i=0
while [ $i -lt 100 ] && [ "$(pf export --format ndjson | wc -l)" -lt 6 ]; do
	sleep 0.1
	i=$((i + 1))
done
n=$(pf export --format ndjson | wc -l)
[ "$n" -eq 6 ] && ok "--watch went on: the saves after the refusal reach the platform" ||
	fail "--watch went on: the saves after the refusal reach the platform ($n of 6 records)"
if kill -0 "$W" 2>/dev/null; then
	ok "... and --watch is still running"
	kill "$W" 2>/dev/null
	wait "$W" 2>/dev/null
else
	wait "$W"
	fail "... and --watch is still running (ended with $?)"
fi

done_testing
