#!/bin/sh
# agent-sync-suite.sh - the envelope suite a device seals with
# (docs/PROTOCOL.md section 3): suite 2 (the signature over the
# ciphertext's BLAKE2b-512) once the platform's health answer lists it in
# "suites"; suite 1, which every platform opens, for batches sealed out of
# coverage and for a platform that does not list it (an older one: a fake
# in front of the real platform takes "suites" out of its answers).  Both
# kinds arrive exactly once, and the platform keeps each batch's envelope
# as it came.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
HOSTPORT=${PF_URL#http://}

# suites DB TABLE: the suite byte of every envelope in TABLE, in order
# of its rowid, one hex pair a line.
suites() {
	sqlite3 "$1" "SELECT hex(substr(envelope, 6, 1)) FROM $2 ORDER BY rowid"
}

curl -s "$PF_URL/v1/health" >"$T_TMP/health"
[ "$(json_get "$T_TMP/health" 'd["limits"]["suites"]')" = "[1, 2]" ] &&
	ok "the platform's health answer lists suites 1 and 2" ||
	fail "the platform's health answer lists suites 1 and 2: $(cat "$T_TMP/health")"

# ---- out of coverage: sealed with suite 1
stop_platform
collect_people 300 21 && ok "collect 300 out of coverage" ||
	fail "collect 300 out of coverage"
expect_exit 75 "sync with the platform down exits 75" ag sync --retries 0 \
	--batch-records 100
[ "$(suites "$AH/agent.db" outbox_envelope | sort -u)" = 01 ] &&
	ok "the batches sealed offline are suite 1" ||
	fail "the batches sealed offline are suite 1: $(suites "$AH/agent.db" outbox_envelope | sort -u | tr '\n' ' ')"

# ---- coverage returns: those go as they are, new ones are suite 2
start_platform_at "$HOSTPORT" || fail "the platform restarts"
collect_people 200 22 && ok "collect 200 more" || fail "collect 200 more"
expect_exit 0 "sync" ag sync --batch-records 100
suites "$AH/agent.db" outbox_envelope >"$T_TMP/s1"
[ "$(tr '\n' ' ' <"$T_TMP/s1")" = "01 01 01 02 02 " ] &&
	ok "three suite-1 batches from offline, then two of suite 2" ||
	fail "three suite-1 batches from offline, then two of suite 2: $(tr '\n' ' ' <"$T_TMP/s1")"
suites "$PH/platform.db" batch_envelopes | sort | uniq -c |
	awk '{ printf "%s:%s ", $2, $1 }' >"$T_TMP/p1"
[ "$(cat "$T_TMP/p1")" = "01:3 02:2 " ] &&
	ok "the platform keeps both kinds as they came" ||
	fail "the platform keeps both kinds as they came: $(cat "$T_TMP/p1")"
agent_uuids "$T_TMP/a1"
platform_uuids "$T_TMP/p1u"
[ "$(wc -l <"$T_TMP/a1")" -eq 500 ] && cmp -s "$T_TMP/a1" "$T_TMP/p1u" &&
	ok "all 500 arrived, once" || fail "all 500 arrived, once"

# ---- an older platform: its health answer has no "suites"
cp "$GS_TOP/tests/integration/fakeplatform.py" "$T_TMP/"
cat >"$T_TMP/old.py" <<'PYEOF'
# old.py UPSTREAM: forwards every request to the platform on port
# UPSTREAM; answers of GET /v1/health lose "suites" from their limits,
# as a platform from before suite 2 answers.  Prints "listening on PORT".
import functools, json, socketserver, sys

import fakeplatform
from fakeplatform import requests, send

forward = functools.partial(fakeplatform.forward, int(sys.argv[1]))


class H(socketserver.StreamRequestHandler):
    def handle(self):
        for rq in requests(self.rfile):
            st, body = forward(*rq)
            if rq[0].split()[1] == b"/v1/health" and st == 200:
                d = json.loads(body)
                del d["limits"]["suites"]
                body = json.dumps(d).encode()
                sys.stderr.write("HEALTH WITHOUT SUITES\n")
                sys.stderr.flush()
            send(self.wfile, st, body)


fakeplatform.serve(H)
PYEOF
"$PY" "$T_TMP/old.py" "${PF_URL##*:}" >"$T_TMP/old.out" 2>"$T_TMP/old.err" &
OP=$!
T_PIDS="$T_PIDS $OP"
wait_listening "$T_TMP/old.out" "$OP"
if [ -z "$LISTEN" ]; then
	fail "the older platform's stand-in listens"
	done_testing
	exit 1
fi
collect_people 200 23 && ok "collect 200 more" || fail "collect 200 more"
expect_exit 0 "sync through the older platform" ag sync --batch-records 100 \
	--platform "http://127.0.0.1:$LISTEN"
grep -q 'HEALTH WITHOUT SUITES' "$T_TMP/old.err" &&
	ok "... whose health answer listed no suites" ||
	fail "... whose health answer listed no suites"
[ "$(suites "$AH/agent.db" outbox_envelope | tail -n 2 | tr '\n' ' ')" = "01 01 " ] &&
	ok "its two batches are suite 1" ||
	fail "its two batches are suite 1: $(suites "$AH/agent.db" outbox_envelope | tr '\n' ' ')"
agent_uuids "$T_TMP/a2"
platform_uuids "$T_TMP/p2u"
[ "$(wc -l <"$T_TMP/a2")" -eq 700 ] && cmp -s "$T_TMP/a2" "$T_TMP/p2u" &&
	ok "all 700 arrived, once" || fail "all 700 arrived, once"
expect_exit 0 "status" ag status --json
[ "$(json_get "$T_TMP/out" 'd["outbox"]["acked"]')" = 7 ] &&
	ok "seven batches acked" || fail "seven batches acked: $(cat "$T_TMP/out")"

done_testing
