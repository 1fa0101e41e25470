#!/bin/sh
# hostile-network.sh - hostile or broken answers reaching the agent.  A
# fake platform on 127.0.0.1 (a man in the middle in front of the real
# one) answers the chosen endpoint wrongly: redirects to another port, a
# hostname, file:// and ftp://; a 1 MiB header line and 1 MiB of header
# lines; an endless chunked body; a Content-Length shorter and longer than
# the body; gzip and deflate bodies and a gzip bomb; HTTP/0.9 garbage; a
# TLS handshake; silence; a body that stops half way; 1xx answers; 204 and
# 304; replayed and forged receipts; a proxy named in the environment.  Each time the agent exits 75 (69 for
# an enrollment) with one line, never follows the redirect, keeps every
# record and marks nothing delivered; then a clean sync delivers all once.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

# Short stalls: a silent peer is dropped after 2 s without 100 B/s.
export GRIDAGENT_LOW_SPEED_TIME=2 GRIDAGENT_TIMEOUT_MS=8000
sync_ready
PF_PORT=${PF_URL##*:}

cp "$GS_TOP/tests/integration/fakeplatform.py" "$T_TMP/"
cat >"$T_TMP/mitm.py" <<'PYEOF'
# mitm.py UPSTREAM MODE REGEX [ARG]: forwards every request to the real
# platform on port UPSTREAM, except those whose path matches REGEX, which
# get the hostile answer MODE.  Prints "listening on PORT".
import functools, gzip, re, socket, socketserver, sys, time, zlib

import fakeplatform
from fakeplatform import requests, send

up, mode, rx = int(sys.argv[1]), sys.argv[2], re.compile(sys.argv[3])
arg = sys.argv[4] if len(sys.argv) > 4 else ""
saved = {}


forward = functools.partial(fakeplatform.forward, up)


class H(socketserver.StreamRequestHandler):
    def handle(self):
        for rq in requests(self.rfile):
            path = rq[0].split()[1].decode()
            if not rx.search(path):
                send(self.wfile, *forward(*rq))
                continue
            # Logged first: the checks require the hostile answer to
            # have been given (an agent that never reached us would
            # exit 75 too).
            sys.stderr.write("HOSTILE %s %s\n" % (mode, path))
            sys.stderr.flush()
            if self.hostile(*rq) == "close":
                return

    def hostile(self, line, hdrs, body):
        w = self.wfile
        if mode == "redirect":
            # With an error object in the body, as a hostile one may.
            code, loc = arg.split(" ", 1)
            send(w, int(code),
                 b'{"error":{"code":"not_found","message":"moved"}}',
                 b"Location: %s\r\n" % loc.encode())
        elif mode == "status-json":
            code, js = arg.split(" ", 1)
            send(w, int(code), js.encode())
        elif mode == "onehdr":
            w.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) +
                    b"\r\nContent-Length: 2\r\n\r\n{}")
        elif mode == "manyhdr":
            w.write(b"HTTP/1.1 200 OK\r\n")
            for i in range(20000):
                w.write(b"X-Junk-%d: %s\r\n" % (i, b"a" * 50))
            w.write(b"Content-Length: 2\r\n\r\n{}")
        elif mode == "endless":
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                while True:
                    w.write(b"10000\r\n" + b"x" * 65536 + b"\r\n")
            except OSError:
                return "close"
        elif mode in ("short", "long", "gzip", "deflate", "stall"):
            st, b = forward(line, hdrs, body)
            if mode == "short":
                send(w, st, b, cl=len(b) // 2)
            elif mode in ("long", "stall"):
                send(w, st, b if mode == "long" else b[:len(b) // 2],
                     cl=len(b) + 100 if mode == "long" else len(b))
                time.sleep(20)
                return "close"
            else:
                z = gzip.compress(b) if mode == "gzip" else zlib.compress(b)
                send(w, st, z, b"Content-Encoding: %s\r\n" % mode.encode())
        elif mode == "bomb":
            send(w, 200, gzip.compress(b"0" * (64 << 20)),
                 b"Content-Encoding: gzip\r\n")
        elif mode == "http09":
            w.write(b"garbage that is no HTTP at all\n" * 10)
            return "close"
        elif mode == "tls":
            w.write(bytes.fromhex("160303007a020000760303") + b"\0" * 200)
            w.flush()
            time.sleep(1)
            return "close"
        elif mode == "silent":
            time.sleep(20)
            return "close"
        elif mode == "1xx":
            st, b = forward(line, hdrs, body)
            w.write(b"HTTP/1.1 %s X\r\n\r\n" % arg.encode() * 3)
            send(w, st, b)
        elif mode == "status":
            w.write(b"HTTP/1.1 %s X\r\n\r\n" % arg.encode())
        elif mode == "replay":
            # The first answer (a genuine receipt) for every later batch.
            if "r" not in saved:
                saved["r"] = forward(line, hdrs, body)
            send(w, *saved["r"])
        elif mode == "flipsig":
            st, b = forward(line, hdrs, body)
            send(w, st, flip(b))
        w.flush()


def flip(b):
    import json
    d = json.loads(b)
    r = bytearray.fromhex(d["receipt"])
    r[-3] ^= 1
    d["receipt"] = r.hex()
    return json.dumps(d).encode()


fakeplatform.serve(H)
PYEOF

# A redirect target that must never be reached: it logs any connection.
cat >"$T_TMP/sink.py" <<'PYEOF'
import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        sys.stderr.write("HIT %r\n" % self.rfile.readline()); sys.stderr.flush()
s = socketserver.TCPServer(("127.0.0.1", 0), H)
print("listening on %d" % s.server_address[1], flush=True)
s.serve_forever()
PYEOF

# listen_py SCRIPT OUT ARGS...: starts it, waits for its port in $PORT.
listen_py() {
	s=$1 o=$2
	shift 2
	# (Removed first: see wait_listening in tests/lib.sh.)
	rm -f "$o" "$o.err"
	"$PY" "$s" "$@" >"$o" 2>"$o.err" &
	LAST_PID=$!
	T_PIDS="$T_PIDS $LAST_PID"
	# A fake platform that never listened would make the agent exit 75
	# (connection refused), which every "hostile" check would count as a
	# pass: no port, the test ends here, failed.
	wait_listening "$o" "$LAST_PID"
	PORT=$LISTEN
	if [ -z "$PORT" ]; then
		fail "$s did not start listening"
		sed 's/^/#   /' "$o.err" | head -n 5
		done_testing
		exit 1
	fi
}
listen_py "$T_TMP/sink.py" "$T_TMP/sink"
SINK=$PORT

# mitm MODE REGEX [ARG]: a fake platform at $MU.
mitm() {
	listen_py "$T_TMP/mitm.py" "$T_TMP/mitm" "$PF_PORT" "$@"
	MP=$LAST_PID
	MU="http://127.0.0.1:$PORT"
}
unmitm() { kill "$MP" 2>/dev/null; wait "$MP" 2>/dev/null; }

delivered() {
	ag status --json | "$PY" -c '
import json, sys
print(json.load(sys.stdin)["changes"]["delivered"])'
}
n_seed=0
# hostile WANT WHAT MODE REGEX [ARG]: a new record, one sync through the
# fake platform; it exits WANT with one line on stderr, and when the
# batch or the health probe is answered wrongly, nothing more is marked
# delivered than before (a hostile heartbeat or pull comes after the
# batch went through to the real platform).
hostile() {
	want=$1 what=$2
	shift 2
	n_seed=$((n_seed + 1))
	collect_people 1 $((500 + n_seed)) 2>/dev/null
	d0=$(delivered)
	mitm "$@"
	t0=$(date +%s)
	"$GRIDAGENT" --home "$AH" sync --retries 0 --in-flight 1 \
		--platform "$MU" >"$T_TMP/out" 2>"$T_TMP/err"
	got=$?
	t=$(($(date +%s) - t0))
	unmitm
	d1=$(delivered)
	case $2 in /batches | /health) ;; *) d0=$d1 ;; esac
	lines=$(wc -l <"$T_TMP/err")
	# (d1 = d0 holds too when neither count was read.)
	if [ "$got" = "$want" ] && [ "$lines" = 1 ] && [ -n "$d1" ] && [ "$d1" = "$d0" ] &&
		[ "$t" -le 15 ] && grep -q '^HOSTILE ' "$T_TMP/mitm.err"; then
		ok "$what: exit $want in ${t}s, one line, nothing delivered"
	else
		fail "$what: exit $got (wanted $want) in ${t}s, $lines lines, delivered $d0 -> $d1, $(grep -c '^HOSTILE ' "$T_TMP/mitm.err") hostile answer(s) given"
		sed 's/^/#   err: /' "$T_TMP/err" | head -n 3 | cut -c1-300
	fi
}

# ---- redirects: never followed, never believed
for c in 301 302 307 308; do
	hostile 75 "batch PUT answered $c with an error object" \
		redirect /batches "$c http://127.0.0.1:$SINK/"
done
hostile 75 "heartbeat answered 302 with an error object" \
	redirect /heartbeat "302 http://localhost:$SINK/"
hostile 75 "pull answered 307 with an error object" \
	redirect /pull "307 http://127.0.0.1:$SINK/"
hostile 75 "health answered 308 to file://" redirect /health "308 file:///etc/passwd"
hostile 75 "health answered 301 to ftp://" redirect /health "301 ftp://127.0.0.1:$SINK/"
code=$(pf enroll --worker w002 --name "李四" --grid 110101001 --ttl 600)
mitm redirect /enroll "307 http://127.0.0.1:$SINK/"
expect_exit 69 "enrollment answered 307: exit 69, not followed" \
	"$GRIDAGENT" --home "$T_TMP/ag2" enroll "$code" --platform "$MU" \
	--passphrase-file "$AG_PASS"
unmitm
# (69 is also what a refused connection gives: the fake must have answered.)
grep -q '^HOSTILE redirect /v1/enroll' "$T_TMP/mitm.err" &&
	ok "... the fake platform did answer the enrollment 307" ||
	fail "... the fake platform did answer the enrollment 307"
key0=$(sqlite3 "$AH/agent.db" "SELECT hex(sign_pk) FROM device")
mitm redirect /rekey "308 http://127.0.0.1:$SINK/"
expect_exit 69 "rekey answered 308 with an error object: exit 69" \
	"$GRIDAGENT" --home "$AH" rekey --platform "$MU"
unmitm
grep -q '^HOSTILE redirect /v1/devices/.*/rekey' "$T_TMP/mitm.err" &&
	ok "... the fake platform did answer the rekey 308" ||
	fail "... the fake platform did answer the rekey 308"
[ "$(sqlite3 "$AH/agent.db" "SELECT hex(sign_pk) FROM device")" = "$key0" ] &&
	ok "... the device key is kept" || fail "... the device key is kept"
[ ! -s "$T_TMP/sink.err" ] && ok "no redirect was followed (the target saw nothing)" ||
	fail "a redirect was followed: $(head -n 3 "$T_TMP/sink.err")"

# ---- a proxy named in the environment is not used either
collect_people 1 600 2>/dev/null
expect_exit 0 "sync with http_proxy and ALL_PROXY set: straight to the platform" \
	env http_proxy="http://127.0.0.1:$SINK" ALL_PROXY="http://127.0.0.1:$SINK" \
	"$GRIDAGENT" --home "$AH" sync --retries 0
[ ! -s "$T_TMP/sink.err" ] && ok "... the proxy saw nothing" ||
	fail "... the proxy saw nothing: $(head -n 3 "$T_TMP/sink.err")"

# ---- headers
hostile 75 "batch answer with one 1 MiB header line" onehdr /batches
hostile 75 "health answer with one 1 MiB header line" onehdr /health
hostile 75 "pull answer with 1 MiB of header lines" manyhdr /pull

# ---- bodies
hostile 75 "batch answer with an endless chunked body" endless /batches
hostile 75 "batch answer with a Content-Length shorter than its body" short /batches
hostile 75 "batch answer with a Content-Length longer than its body" long /batches
hostile 75 "batch answer gzip-encoded (not asked for, not decoded)" gzip /batches
hostile 75 "pull answer deflate-encoded" deflate /pull
hostile 75 "batch answer a gzip bomb (64 MiB of zeros)" bomb /batches
hostile 75 "batch answer HTTP/0.9 garbage" http09 /batches
hostile 75 "health answer a TLS handshake" tls /health
hostile 75 "batch request never answered" silent /batches
hostile 75 "pull answer stops half way" stall /pull
hostile 75 "batch answer 101 without an upgrade" 1xx /batches 101
hostile 75 "batch answer 204 (no receipt)" status /batches 204
hostile 75 "pull answer 304 (no feed)" status /pull 304
hostile 75 "batch answer 429 naming a permanent code" status-json /batches \
	'429 {"error":{"code":"not_found","message":"x"}}'

# ---- receipts
hostile 75 "a receipt with a signature bit flipped" flipsig /batches
collect_people 2 700 2>/dev/null
d0=$(delivered)
mitm replay /batches
"$GRIDAGENT" --home "$AH" sync --retries 0 --in-flight 1 --batch-records 1 \
	--platform "$MU" >"$T_TMP/out" 2>"$T_TMP/err"
got=$?
unmitm
[ "$got" = 75 ] && grep -q "another batch" "$T_TMP/err" &&
	ok "the first batch's receipt replayed for the next: exit 75 ($(cut -c1-80 "$T_TMP/err"))" ||
	fail "a replayed receipt: exit $got $(head -c 200 "$T_TMP/err")"

# ---- then everything arrives, once
expect_exit 0 "a clean sync delivers everything kept" ag sync
agent_uuids "$T_TMP/a.uuids"
platform_uuids "$T_TMP/p.uuids"
[ "$(ag status --json | "$PY" -c 'import json,sys; c=json.load(sys.stdin)["changes"]; print(c["unsent"], c["batched"])')" = "0 0" ] &&
	cmp -s "$T_TMP/a.uuids" "$T_TMP/p.uuids" &&
	ok "the platform holds every record of the device ($(wc -l <"$T_TMP/a.uuids"))" ||
	fail "the platform holds every record of the device"
[ "$(sqlite3 "$PH/platform.db" 'SELECT count(*) - count(DISTINCT uuid) FROM revisions')" = 0 ] &&
	ok "... each applied once (one revision each)" || fail "... none twice"
agent_integrity "$AH" && ok "agent store intact" || fail "agent store intact"

done_testing
