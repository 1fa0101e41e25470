#!/bin/sh
# hostile-platform.sh - hostile input to the platform, each refused with a
# specific answer while an honest device keeps syncing:
#   oversized bodies (declared, and chunked without a length), a slow
#   sender (one byte a second: dropped at the body deadline), headers sent
#   one byte a second (slowloris: dropped at the header deadline), a flood of
#   connections from one address (per-address cap), JSON nested 100,000
#   deep and invalid UTF-8 (enroll body, agent input), SQL metacharacters
#   in every text field (stored verbatim, tables intact), forged, replayed
#   and cross-deployment envelopes, and a brute force of enrollment codes
#   (rate limited and logged).
# Attackers use other loopback addresses (127.0.0.2-6) than the honest
# device (127.0.0.1), as a real attacker would.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

export GRIDPLATFORM_BODY_DEADLINE=3 GRIDPLATFORM_HEADER_DEADLINE=3
sync_ready
PF_PORT=${PF_URL##*:}
n_honest=0

# honest WHAT: the honest device saves 3 records and syncs them.
honest() {
	n_honest=$((n_honest + 1))
	if collect_people 3 $((900 + n_honest)) &&
		ag sync >/dev/null 2>"$T_TMP/honest.err"; then
		ok "$1: the honest device still syncs"
	else
		fail "$1: the honest device still syncs"
		sed 's/^/#   /' "$T_TMP/honest.err" | head -n 5
	fi
}

cp "$GS_TOP/tests/integration/fakeplatform.py" "$T_TMP/"
cat >"$T_TMP/hc.py" <<'EOF'
# hc.py - the hostile client.  hc.py PORT COMMAND ARGS... prints results.
import json, os, socket, sys, time

from fakeplatform import whole_answer

port = int(sys.argv[1])
cmd = sys.argv[2]
args = sys.argv[3:]


def conn(src="127.0.0.2", timeout=20):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def answer(s):
    """Status and body of one answer, or (0, why) if the line died."""
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
            if whole_answer(data):
                break
    except (ConnectionResetError, socket.timeout) as e:
        if not data:
            return 0, type(e).__name__
    if not data:
        return 0, "closed"
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")


def request(method, path, body=b"", src="127.0.0.2", extra=""):
    s = conn(src)
    s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s"
               "Connection: close\r\n\r\n" % (method, path, len(body), extra)
               ).encode() + body)
    st, b = answer(s)
    s.close()
    return st, b


def code(b):
    try:
        return json.loads(b)["error"]["code"]
    except Exception:
        return "-"


if cmd == "declared-too-big":
    s = conn()
    s.sendall(b"PUT /v1/devices/%s/batches/%s HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n" % (b"ab" * 16, b"cd" * 16,
                                               17 << 20))
    st, b = answer(s)
    print(st, code(b))
elif cmd == "chunked-too-big":
    s = conn()
    s.sendall(b"PUT /v1/devices/%s/batches/%s HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" % (b"ab" * 16, b"cd" * 16))
    chunk = b"%x\r\n" % (1 << 20) + b"G" * (1 << 20) + b"\r\n"
    sent = 0
    try:
        for i in range(40):
            s.sendall(chunk)
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
    st, b = answer(s)
    # 413 if the answer made it, else the connection was closed.
    print(st if st else "closed", code(b) if st else "-", sent)
elif cmd == "slow":
    # One byte a second of a declared 1000-byte body: how long until
    # the platform drops us?
    s = conn(timeout=30)
    t0 = time.time()
    s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 1000\r\n\r\n")
    dropped = None
    for i in range(30):
        try:
            s.sendall(b"{" if i == 0 else b" ")
            s.settimeout(1.0)
            d = s.recv(4096)
            if d == b"" or d:
                dropped = time.time() - t0
                break
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            dropped = time.time() - t0
            break
    print("dropped after %.1f s" % dropped if dropped else "never dropped")
elif cmd == "slowhdr":
    # Headers one byte a second (never idle, never complete): how long
    # until the platform drops us?
    s = conn(src="127.0.0.6", timeout=30)
    t0 = time.time()
    hdr = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 40
    dropped = None
    for c in hdr:
        try:
            s.sendall(bytes([c]))
            s.settimeout(1.0)
            s.recv(4096)
            dropped = time.time() - t0
            break
        except socket.timeout:
            if time.time() - t0 > 20:
                break
        except (BrokenPipeError, ConnectionResetError):
            dropped = time.time() - t0
            break
    print("dropped after %.1f s" % dropped if dropped else "never dropped")
elif cmd == "flood":
    n = int(args[0])
    socks, refused = [], 0
    for i in range(n):
        try:
            s = conn("127.0.0.3", timeout=2)
            socks.append(s)
        except OSError:
            refused += 1
    time.sleep(0.5)
    for s in socks:
        # A refused connection is closed at once: recv gives b"".
        s.settimeout(0.2)
        try:
            if s.recv(1) == b"":
                refused += 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            refused += 1
    print(refused, n - refused)
    sys.stdout.flush()
    time.sleep(float(args[1]) if len(args) > 1 else 0)
    for s in socks:
        s.close()
elif cmd == "enroll-body":
    body = open(args[0], "rb").read()
    st, b = request("POST", "/v1/enroll", body, src=args[1] if len(args) > 1
                    else "127.0.0.2")
    print(st, code(b))
elif cmd == "put":
    body = open(args[1], "rb").read()
    st, b = request("PUT", args[0], body, src="127.0.0.5")
    print(st, code(b))
elif cmd == "brute":
    out = []
    for i in range(int(args[0])):
        body = json.dumps({"token_id": os.urandom(16).hex(),
                           "device_id": os.urandom(16).hex(),
                           "device_pk": os.urandom(32).hex(),
                           "proof": os.urandom(32).hex(),
                           "self_sig": os.urandom(64).hex()}).encode()
        st, b = request("POST", "/v1/enroll", body, src="127.0.0.4")
        out.append("%d:%s" % (st, code(b)))
    print(" ".join(out))
EOF
hc() { "$PY" "$T_TMP/hc.py" "$PF_PORT" "$@"; }

# ---- oversized bodies
set -- $(hc declared-too-big)
[ "$1" = 413 ] && [ "$2" = too_large ] &&
	ok "a declared 17 MiB body: 413 too_large before any byte is read" ||
	fail "a declared 17 MiB body: 413 too_large (got $*)"
set -- $(hc chunked-too-big)
# A closed line is also what a crashed platform gives: it must still be
# running and answer its health check.
h=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$PF_URL/v1/health")
{ [ "$1" = 413 ] || [ "$1" = closed ]; } && kill -0 "$PF_PID" 2>/dev/null &&
	[ "$h" = 200 ] &&
	ok "a chunked body past 16 MiB: refused ($1, after $3 MiB sent), the platform still up" ||
	fail "a chunked body past 16 MiB: refused, the platform still up (got $*, health $h)"
honest "after oversized bodies"

# dropped MODE WHAT LOG: a client of `hc MODE` that sends one byte a
# second, while the honest device syncs: it is dropped in 2-10 s (the
# deadlines are 3 s here) and the platform logs LOG.
dropped() {
	hc "$1" >"$T_TMP/$1.out" 2>&1 &
	slow=$!
	sleep 0.5
	honest "during a $1 sender"
	wait $slow
	s=$(sed -n 's/^dropped after \([0-9]*\)\..*/\1/p' "$T_TMP/$1.out")
	[ -n "$s" ] && [ "$s" -ge 2 ] && [ "$s" -le 10 ] &&
		ok "$2 ($(cat "$T_TMP/$1.out"), deadline 3 s)" ||
		fail "$2 ($(cat "$T_TMP/$1.out"))"
	grep -q "$3" "$PH/serve.log" && ok "... and the platform logged it ($3)" ||
		fail "... and the platform logged it ($3)"
}

# ---- a slow sender, and headers one byte a second (slowloris)
dropped slow "a sender of one byte a second is dropped at the body deadline" \
	"body too slow"
dropped slowhdr "headers sent one byte a second are dropped at the header deadline" \
	"headers too slow"

# ---- a flood of connections from one address
hc flood 60 4 >"$T_TMP/flood.out" 2>&1 &
flood=$!
i=0
while [ ! -s "$T_TMP/flood.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
honest "during a flood of 60 connections from one address"
wait $flood
set -- $(cat "$T_TMP/flood.out")
[ "${1:-0}" -ge 50 ] && [ "${2:-99}" -le 10 ] &&
	ok "60 connections from one address: $1 refused at once, $2 held (cap 8)" ||
	fail "60 connections from one address: refused/held = $*"

# ---- JSON nested 100,000 deep; invalid UTF-8
"$PY" -c 'import sys; sys.stdout.write("[" * 100000 + "]" * 100000)' >"$T_TMP/deep.json"
set -- $(hc enroll-body "$T_TMP/deep.json")
[ "$1" = 413 ] && ok "an enroll body nested 100,000 deep: 413 $2 (over the enroll body cap, never parsed)" ||
	fail "an enroll body nested 100,000 deep: 413 (got $*)"
# Deep enough to matter, small enough to reach the parser.
"$PY" -c 'import sys; sys.stdout.write("[" * 5000 + "]" * 5000)' >"$T_TMP/deep5k.json"
set -- $(hc enroll-body "$T_TMP/deep5k.json" 127.0.0.7)
# (Any malformed enroll body is 400 malformed, and any incomplete record
# 65: the refusals must be the parser's, 'not a JSON object' in the
# platform's log, from the sender's address.)
[ "$1" = 400 ] && grep -q 'enroll from 127.0.0.7 refused: enroll body is not a JSON object' "$PH/serve.log" &&
	ok "an enroll body nested 5,000 deep: 400 $2" ||
	fail "an enroll body nested 5,000 deep: 400, not parsed (got $*)"
printf '{"token_id":"\377\376","device_id":"a"}' >"$T_TMP/utf8.json"
set -- $(hc enroll-body "$T_TMP/utf8.json" 127.0.0.6)
[ "$1" = 400 ] && grep -q 'enroll from 127.0.0.6 refused: enroll body is not a JSON object' "$PH/serve.log" &&
	ok "an enroll body with invalid UTF-8: 400 $2" ||
	fail "an enroll body with invalid UTF-8: 400, not parsed (got $*)"
# (From files, not pipes: expect_exit at the end of a pipe ran in a
# subshell, and its count of checks was lost.)
"$PY" -c 'import sys; sys.stdout.write("{\"name\":" + "[" * 100000 + "]" * 100000 + "}")' \
	>"$T_TMP/deep-agent.json"
expect_exit 65 "agent input nested 100,000 deep: exit 65" ag collect person --json - \
	<"$T_TMP/deep-agent.json"
check "... as nested too deeply" grep -q '^gridagent: line 1: not valid JSON: .*nested too deeply' "$T_TMP/err"
printf '{"name":"\377abc","pop_type":"REGISTERED"}' >"$T_TMP/utf8-agent.json"
expect_exit 65 "agent input with invalid UTF-8: exit 65" ag collect person --json - \
	<"$T_TMP/utf8-agent.json"
check "... as invalid UTF-8" grep -q '^gridagent: line 1: not valid JSON: .*invalid UTF-8' "$T_TMP/err"
honest "after deep and broken JSON"

# ---- SQL metacharacters in every text field: stored verbatim
SQLX="x'); DROP TABLE records;-- \" % _ \\\\ ; /* */ OR 1=1"
"$PY" - "$GS_TOP/tests/data/valid/person-registered.json" "$SQLX" >"$T_TMP/sqlx.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("note", "address", "employer"):
    d[k] = sys.argv[2][:40] if k != "note" else sys.argv[2]
print(json.dumps(d, ensure_ascii=False))
EOF
u=$(ag collect person --json - <"$T_TMP/sqlx.json" 2>"$T_TMP/sqlx.err")
if [ -n "$u" ] && ag sync >/dev/null 2>&1; then
	pf export --format ndjson >"$T_TMP/export.ndjson"
	"$PY" - "$T_TMP/export.ndjson" "$u" "$SQLX" <<'EOF' && ok "SQL metacharacters in note, address, employer: stored verbatim" || fail "SQL metacharacters stored verbatim"
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    if d["uuid"] == sys.argv[2]:
        f = d["fields"]
        ok = (f["note"] == sys.argv[3] and f["address"] == sys.argv[3][:40]
              and f["employer"] == sys.argv[3][:40])
        sys.exit(0 if ok else 1)
sys.exit(1)
EOF
else
	fail "a record with SQL metacharacters is saved and synced"
	sed 's/^/#   /' "$T_TMP/sqlx.err" | head -n 5
fi
[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM sqlite_master WHERE name='records'")" = 1 ] &&
	[ "$(sqlite3 "$PH/platform.db" 'PRAGMA integrity_check')" = ok ] &&
	ok "... the platform's tables are intact" || fail "... the platform's tables are intact"

# ---- forged, replayed and cross-deployment envelopes
sqlite3 "$AH/agent.db" "SELECT hex(envelope) FROM outbox_envelope ORDER BY seq DESC LIMIT 1" |
	"$PY" -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' >"$T_TMP/env"
dev=$(sqlite3 "$AH/agent.db" "SELECT lower(hex(device_id)) FROM device")
bid=$(sqlite3 "$AH/agent.db" "SELECT lower(hex(batch_id)) FROM outbox ORDER BY seq DESC LIMIT 1")
path="/v1/devices/$dev/batches/$bid"
before=$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches")
set -- $(hc put "$path" "$T_TMP/env")
after=$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches")
[ "$1" = 200 ] && [ "$before" = "$after" ] &&
	ok "a replayed envelope: 200 with the stored receipt, nothing new stored" ||
	fail "a replayed envelope: 200, nothing new (got $*, batches $before -> $after)"
"$PY" -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-5] ^= 0x40
open(sys.argv[2], "wb").write(b)' "$T_TMP/env" "$T_TMP/forged"
set -- $(hc put "$path" "$T_TMP/forged")
[ "$1" = 401 ] && [ "$2" = bad_signature ] &&
	ok "a forged envelope (signature changed): 401 bad_signature" ||
	fail "a forged envelope: 401 bad_signature (got $*)"
# Another deployment's platform, same port scheme: the envelope is not its.
PH2="$T_TMP/pf2"
"$GRIDPLATFORM" --home "$PH2" init --public-url http://127.0.0.1:9 >/dev/null 2>&1
A_URL=$PF_URL A_PID=$PF_PID
start_platform "$PH2" || fail "second platform"
P2=${PF_URL##*:}
set -- $("$PY" "$T_TMP/hc.py" "$P2" put "$path" "$T_TMP/env")
# Stopped, and gone, before its database is read: a platform that is
# closing may hold the database's lock for a moment (its last close).
stop_platform
PF_URL=$A_URL PF_PID=$A_PID
[ "$1" = 421 ] && [ "$2" = wrong_deployment ] &&
	ok "an envelope of another deployment: 421 wrong_deployment" ||
	fail "an envelope of another deployment: 421 wrong_deployment (got $*)"
[ "$(sqlite3 "$PH2/platform.db" "SELECT count(*) FROM batches")" = 0 ] &&
	ok "... nothing stored there" || fail "... nothing stored there"
honest "after forged and replayed envelopes"

# ---- brute force of enrollment codes from one address
hc brute 14 >"$T_TMP/brute.out"
n403=$(tr ' ' '\n' <"$T_TMP/brute.out" | grep -c '^403:')
n429=$(tr ' ' '\n' <"$T_TMP/brute.out" | grep -c '^429:rate_limited')
[ "$n429" -ge 3 ] && [ "$n403" -le 10 ] &&
	ok "14 guessed enrollment codes: $n403 refused, then $n429 rate limited (429)" ||
	fail "14 guessed enrollment codes: rate limited (got $(cat "$T_TMP/brute.out"))"
grep -q 'enroll from 127.0.0.4 refused: too many failed attempts' "$PH/serve.log" &&
	ok "... and the attempts are logged" || fail "... and the attempts are logged"
AH2="$T_TMP/ag2"
sync_enroll "$AH2" && ok "an honest enrollment from another address still works" ||
	fail "an honest enrollment from another address still works"
honest "after a brute force of enrollment codes"

done_testing
