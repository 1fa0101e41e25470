#!/bin/sh
# hostile-expect.sh - "Expect: 100-continue" at the platform.  A client
# that sends it waits for "100 Continue" before it sends the body.  A
# request that its headers already show will be refused (an unknown
# device, an id that is not lower-case hex, a body too big, no body at
# all) gets its JSON error at once, never "100 Continue": before, the
# platform said "100 Continue" to all of them and then waited for a body
# the client had no reason to send, until the 30 s idle timeout closed
# the connection with no answer.  A request that will be read gets "100
# Continue" and is answered once its body is in.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
PF_PORT=${PF_URL##*:}

cp "$GS_TOP/tests/integration/fakeplatform.py" "$T_TMP/"
cat >"$T_TMP/expect.py" <<'EOF'
# expect.py PORT METHOD PATH BODYLEN|chunked|- [SEND]: sends the headers
# of a request with "Expect: 100-continue" and Content-Length: BODYLEN (or
# a chunked body, or "-": no length, no body), and no body; prints what
# came within 5 s: "STATUS CODE continue=0|1 SECONDS".  With SEND, a "100
# Continue" is answered with BODYLEN bytes of junk, and the final answer
# is waited for (5 s more).
import json, socket, sys, time

from fakeplatform import whole_answer

port, method, path, blen = int(sys.argv[1]), sys.argv[2], sys.argv[3], \
    sys.argv[4]
send = len(sys.argv) > 5
s = socket.socket()
s.settimeout(0.1)
s.connect(("127.0.0.1", port))
t0 = time.time()
if blen == "-":
    length = ""
elif blen == "chunked":
    length = "Transfer-Encoding: chunked\r\n"
else:
    length = "Content-Length: %s\r\n" % blen
s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\n%sExpect: 100-continue\r\n\r\n"
           % (method, path, length)).encode())
data, cont, sent, limit = b"", 0, False, 5.0
while time.time() - t0 < limit:
    try:
        d = s.recv(65536)
    except socket.timeout:
        continue
    except ConnectionResetError:
        break
    if not d:
        break
    data += d
    if data.startswith(b"HTTP/1.1 100"):
        cont = 1
        data = data.partition(b"\r\n\r\n")[2]
        if send and not sent:
            # Answered only once the body is in: nothing before it.
            time.sleep(0.5)
            s.setblocking(False)
            try:
                early = s.recv(65536)
            except BlockingIOError:
                early = b""
            s.settimeout(0.1)
            if early:
                print("answered before the body:", early[:80])
                sys.exit(1)
            s.sendall(b"J" * int(blen))
            sent, limit = True, time.time() - t0 + 5.0
    if whole_answer(data):
        break
el = time.time() - t0
if not data:
    print("none - continue=%d %.1f" % (cont, el))
    sys.exit(0)
head, _, body = data.partition(b"\r\n\r\n")
try:
    code = json.loads(body).get("error", {}).get("code", "ok")
except ValueError:
    code = "not-json"
print("%s %s continue=%d %.1f" % (head.split()[1].decode(), code, cont, el))
EOF

# expect WHAT WANT PORT... : the first three words of expect.py's answer
# are WANT, well within the 5 s (and the 30 s idle timeout).
expect() {
	what=$1 want=$2
	shift 2
	got=$("$PY" "$T_TMP/expect.py" "$PF_PORT" "$@" 2>&1)
	case $got in
	"$want "*) ok "$what: $want (${got##* } s)" ;;
	*) fail "$what: wanted $want, got: $got" ;;
	esac
}

UNKNOWN=$(printf 'ab%.0s' $(seq 16))
BID=$(printf 'cd%.0s' $(seq 16))
HASH=$(printf 'ef%.0s' $(seq 32))
UPPER=$(echo "$DEV_ID" | tr a-f A-F)

expect "batch of an unknown device" "401 unknown_device continue=0" \
	PUT "/v1/devices/$UNKNOWN/batches/$BID" 100
expect "batch of an unknown device, chunked" \
	"401 unknown_device continue=0" \
	PUT "/v1/devices/$UNKNOWN/batches/$BID" chunked
expect "batch whose device id is upper case" \
	"400 invalid_argument continue=0" \
	PUT "/v1/devices/$UPPER/batches/$BID" 100
expect "batch too big" "413 too_large continue=0" \
	PUT "/v1/devices/$DEV_ID/batches/$BID" 999999999
expect "batch with no Content-Length (no body)" \
	"400 bad_envelope continue=0" \
	PUT "/v1/devices/$DEV_ID/batches/$BID" -
expect "batch with Content-Length: 0" "400 bad_envelope continue=0" \
	PUT "/v1/devices/$DEV_ID/batches/$BID" 0
expect "attachment of an unknown device" "401 unknown_device continue=0" \
	PUT "/v1/devices/$UNKNOWN/attachments/$HASH" 100
expect "rekey of an unknown device" "401 unknown_device continue=0" \
	POST "/v1/devices/$UNKNOWN/rekey" 100
expect "heartbeat of an unknown device" "401 unknown_device continue=0" \
	POST "/v1/devices/$UNKNOWN/heartbeat" 100
expect "a path that takes no body" "404 not_found continue=0" \
	PUT "/v1/nothing" 100
expect "health (no body), not 100 Continue first" "200 ok continue=0" \
	GET "/v1/health" -
# Requests that will be read: "100 Continue", then the answer to the body.
expect "batch of the enrolled device: 100 Continue, then the body's answer" \
	"400 bad_envelope continue=1" \
	PUT "/v1/devices/$DEV_ID/batches/$BID" 100 send
expect "enrollment: 100 Continue, then the body's answer" \
	"400 malformed continue=1" POST "/v1/enroll" 100 send
# A client that promised a body and sends none is left to the idle
# timeout (not shortened for everyone): nothing within the 5 s.
expect "enrollment whose body never comes: no answer yet" \
	"none - continue=1" POST "/v1/enroll" 100

# A revoked device's batch is read (it is quarantined, with a receipt):
# "100 Continue"; its attachment is refused whatever it holds.
OURS=$DEV_ID
if sync_enroll "$T_TMP/ag2" w002 && pf revoke "$DEV_ID" >/dev/null 2>&1; then
	expect "batch of a revoked device: 100 Continue, then the body's answer" \
		"400 bad_envelope continue=1" \
		PUT "/v1/devices/$DEV_ID/batches/$BID" 100 send
	expect "attachment of a revoked device" "403 device_revoked continue=0" \
		PUT "/v1/devices/$DEV_ID/attachments/$HASH" 100
else
	fail "a second device, enrolled and revoked"
fi
DEV_ID=$OURS

collect_people 3 1 && ag sync >/dev/null 2>"$T_TMP/sync.err" &&
	ok "the enrolled device still syncs" ||
	{ fail "the enrolled device still syncs"; sed 's/^/#   /' "$T_TMP/sync.err"; }
done_testing
