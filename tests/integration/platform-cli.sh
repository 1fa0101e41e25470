#!/bin/sh
# platform-cli.sh - gridplatform's CLI and HTTP surface on loopback: init,
# serve, health with limits, enroll codes, 404 / 405 / 413 JSON errors,
# devices, revoke, export, quarantine, clean stop on SIGTERM.
. "$GS_TOP/tests/lib.sh"

H="$T_TMP/pf"
PF="$GRIDPLATFORM"

# http METHOD PATH [curl args...]: body in $T_TMP/body, status echoed.
http() {
	m=$1 p=$2
	shift 2
	curl -s -o "$T_TMP/body" -w '%{http_code}' -X "$m" "$@" "$PF_URL$p"
}

expect_exit 0 "--version" "$PF" --version
grep -q '^gridplatform ' "$T_TMP/out" && ok "--version prints the name" ||
	fail "--version prints the name"
expect_exit 0 "--help" "$PF" --help
expect_exit 0 "enroll --help" "$PF" enroll --help
grep -q 'usage: gridplatform enroll' "$T_TMP/out" &&
	ok "enroll --help shows the usage" || fail "enroll --help shows the usage"
expect_exit 64 "unknown command is a usage error" "$PF" --home "$H" frobnicate
grep -q '^gridplatform: ' "$T_TMP/err" && ok "errors start with the name" ||
	fail "errors start with the name"
expect_exit 64 "no command is a usage error" "$PF"
# An empty --home (an unset variable) must not fall back to the default
# home: that would act on another deployment's store.
mkdir -p "$T_TMP/fakehome"
for at in before after; do
	if [ $at = before ]; then
		set -- --home "" init
	else
		set -- init --home ""
	fi
	expect_exit 64 "an empty --home $at the command is a usage error" \
	    env HOME="$T_TMP/fakehome" GRIDPLATFORM_HOME= "$PF" "$@"
	check "... says --home needs a directory" \
		grep -q '^gridplatform: --home needs a directory' "$T_TMP/err"
	check "... and made no home" test ! -e "$T_TMP/fakehome/.gridplatform"
done
check "no command: the first line starts with the name" sh -c \
	'head -n 1 "$1" | grep -q "^gridplatform: "' - "$T_TMP/err"
for c in init serve enroll devices keys revoke export quarantine conflicts \
    resolve reconcile review task stats reference attachment; do
	"$PF" "$c" --help >"$T_TMP/help.$c" 2>&1 || fail "$c --help exits 0"
done
check "review --help: the comment is optional" \
	grep -q -- "\[--comment TEXT\]" "$T_TMP/help.review"
check "task --help: the subject is optional" \
	grep -q -- "\[--subject UUID\]" "$T_TMP/help.task"
check "export --help names --headers" grep -q -- "--headers" "$T_TMP/help.export"
expect_exit 0 "attachment get --help" "$PF" attachment get --help
check "... shows the attachment usage" \
	grep -q "usage: gridplatform attachment get" "$T_TMP/out"
expect_exit 0 "attachment -h" "$PF" attachment -h

# 77 like the agent's commands before its init (DESIGN 7: not permitted,
# not enrolled; nothing is invalid data): it was 65.
for c in devices reconcile "reference --json" "attachment list" "keys list"; do
	# shellcheck disable=SC2086
	expect_exit 77 "$c before init says so (77)" "$PF" --home "$H" $c
	check "... in one line, saying what to do" sh -c \
	    'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: no deployment in .*run .gridplatform init. first" "$1"' \
	    - "$T_TMP/err"
done
check "... and nothing created" test ! -e "$H/platform.db"
expect_exit 64 "init with a bad URL is refused" "$PF" --home "$H" init \
	--public-url "ftp://x"
# Malformed public URLs went into every enrollment code ("http://", no
# host, was accepted): each refused with its reason, nothing created.
while IFS='|' read -r url why; do
	expect_exit 64 "init --public-url '$url' is refused" "$PF" --home "$H" \
		init --public-url "$url"
	check "... one line: $why" sh -c 'test "$(wc -l <"$1")" = 1 &&
		grep -qF "$2" "$1" && grep -q "^gridplatform: public URL" "$1"' \
		- "$T_TMP/err" "$why"
	check "... nothing created" test ! -e "$H"
done <<'URLS'
http://|no host
https://|no host
http://:8480|no host
http://h:0|port 0 is out of range
http://h:65536|port 65536 is out of range
http://h:|the port must be a number
http://h:80x|the port must be a number
http://a b|a space, control or non-ASCII character
http://h/p?x=1|no query (?) or fragment (#)
http://h/#top|no query (?) or fragment (#)
gopher://h|expected http://... or https://...
http://u:pw@h|no user name or password
http://[::1|not an [IPv6] address
URLS
expect_exit 64 "init --public-url with a tab is refused" "$PF" --home "$H" \
	init --public-url "$(printf 'http://h\t/')"
check "... nothing created" test ! -e "$H"
# A home that cannot be created: 73 (DESIGN 7 "cannot create", as
# gridagent init), naming it; a missing parent was 74.
expect_exit 73 "init under a missing parent (73)" "$PF" --home "$T_TMP/no/such/h" init
check "... one line naming the home and its missing parent" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: cannot create the home .*/no/such/h: .*parent directory does not exist" "$1"' \
	- "$T_TMP/err"
check "... nothing created" test ! -e "$T_TMP/no"
printf 'x\n' >"$T_TMP/pfile"
expect_exit 73 "init under a file (73)" "$PF" --home "$T_TMP/pfile/h" init
expect_exit 73 "init with a file for a home (73)" "$PF" --home "$T_TMP/pfile" init
check "... saying it is not a directory" grep -q "^gridplatform: cannot create the home .*pfile: it exists and is not a directory" "$T_TMP/err"
if [ "$(id -u)" != 0 ]; then
	mkdir "$T_TMP/ro" && chmod 500 "$T_TMP/ro"
	expect_exit 73 "init under a parent it may not write (73)" "$PF" \
		--home "$T_TMP/ro/h" init
	chmod 700 "$T_TMP/ro"
fi
for url in http://127.0.0.1:65535 "http://[::1]:8480/gs" https://platform.example/gs/; do
	expect_exit 0 "init --public-url $url" "$PF" --home "$T_TMP/url" init \
		--public-url "$url"
	rm -rf "$T_TMP/url"
done

expect_exit 0 "init" "$PF" --home "$H" init --public-url http://127.0.0.1:9
[ "$(stat -c %a "$H")" = 700 ] && ok "home is 0700" || fail "home is 0700"
[ "$(stat -c %a "$H/batch.key")" = 600 ] &&
	[ "$(stat -c %a "$H/receipt.key")" = 600 ] &&
	ok "secret key files are 0600" || fail "secret key files are 0600"
[ "$(stat -c %a "$H/platform.db")" = 600 ] && ok "the store is 0600" ||
	fail "the store is 0600"
cp "$H/batch.key" "$T_TMP/bk"
expect_exit 73 "a second init refuses to overwrite" "$PF" --home "$H" init
cmp -s "$H/batch.key" "$T_TMP/bk" && ok "... and changes nothing" ||
	fail "... and changes nothing"
GRIDPLATFORM_HOME="$H" "$PF" devices >/dev/null 2>&1 &&
	ok "\$GRIDPLATFORM_HOME is honoured" || fail "\$GRIDPLATFORM_HOME is honoured"

expect_exit 0 "enroll prints a code" "$PF" --home "$H" enroll --worker w001 \
	--name "张三" --grid 110101001 --ttl 600
grep -q '^GS1-[A-Z2-7]*-[A-Za-z0-9_-]*$' "$T_TMP/out" &&
	ok "the code has the GS1 form" || fail "the code has the GS1 form"
expect_exit 64 "enroll without --grid is a usage error" "$PF" --home "$H" \
	enroll --worker w --name n
expect_exit 64 "enroll with a bad --ttl is a usage error" "$PF" --home "$H" \
	enroll --worker w --name n --grid g --ttl 0

expect_exit 0 "devices (none yet)" "$PF" --home "$H" devices
expect_exit 0 "devices --json" "$PF" --home "$H" devices --json
[ "$(cat "$T_TMP/out")" = "[]" ] && ok "devices --json is []" ||
	fail "devices --json is []"
expect_exit 65 "revoke of an unknown device" "$PF" --home "$H" revoke \
	0123456789abcdef0123456789abcdef
grep -q '^gridplatform: no device 0123' "$T_TMP/err" &&
	ok "... says which device" || fail "... says which device"
expect_exit 64 "revoke of a malformed id" "$PF" --home "$H" revoke xyz
expect_exit 0 "quarantine --json" "$PF" --home "$H" quarantine --json
[ "$(cat "$T_TMP/out")" = "[]" ] && ok "quarantine --json is []" ||
	fail "quarantine --json is []"
expect_exit 0 "conflicts --json" "$PF" --home "$H" conflicts --json
[ "$(cat "$T_TMP/out")" = "[]" ] && ok "conflicts --json is []" ||
	fail "conflicts --json is []"
expect_exit 0 "reconcile --json" "$PF" --home "$H" reconcile --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["devices"] == [] and d["issues"] == 0 else 1)' "$T_TMP/out" &&
	ok "reconcile --json is one document" ||
	fail "reconcile --json is one document"
expect_exit 0 "export csv" "$PF" --home "$H" export --format csv
head -c 3 "$T_TMP/out" | od -An -tx1 | grep -q 'ef bb bf' &&
	ok "csv starts with a UTF-8 BOM" || fail "csv starts with a UTF-8 BOM"
grep -q 'uuid,type,grid,rev' "$T_TMP/out" && ok "csv has a header row" ||
	fail "csv has a header row"
expect_exit 64 "export with a bad format" "$PF" --home "$H" export --format xml
expect_exit 64 "keys with an unknown subcommand" "$PF" --home "$H" keys frob
check "... one line starting with the name" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: " "$1"' - "$T_TMP/err"
expect_exit 64 "keys retire without a key id" "$PF" --home "$H" keys retire
check "... one line starting with the name" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: " "$1"' - "$T_TMP/err"
# "keys" alone is "keys list"; "keys --json" was a usage error (64)
# although every read command takes --json (DESIGN 7).
expect_exit 0 "keys list --json" "$PF" --home "$H" keys list --json
cp "$T_TMP/out" "$T_TMP/keys-list.json"
expect_exit 0 "keys --json" "$PF" --home "$H" keys --json
cmp -s "$T_TMP/out" "$T_TMP/keys-list.json" && [ -s "$T_TMP/out" ] &&
	ok "... the same as keys list --json" || fail "... the same as keys list --json"
expect_exit 64 "keys --frob" "$PF" --home "$H" keys --frob

if start_platform "$H"; then
	ok "serve prints 'listening on' with the port"
else
	fail "serve prints 'listening on' with the port"
	done_testing
	exit 1
fi
case "$PF_URL" in
http://127.0.0.1:[1-9]*) ok "the URL names the real port" ;;
*) fail "the URL names the real port ($PF_URL)" ;;
esac

st=$(http GET /v1/health)
[ "$st" = 200 ] && ok "health is 200" || fail "health is 200 ($st)"
grep -q '"max_envelope":[0-9]' "$T_TMP/body" &&
	grep -q '"max_records":[0-9]' "$T_TMP/body" &&
	grep -q '"max_plain":[0-9]' "$T_TMP/body" &&
	ok "health shows the limits" || fail "health shows the limits"
grep -q '"deployment":"[0-9a-f]\{32\}"' "$T_TMP/body" &&
	ok "health names the deployment" || fail "health names the deployment"

st=$(http GET /v1/nothing-here)
[ "$st" = 404 ] && grep -q '"code":"not_found"' "$T_TMP/body" &&
	ok "unknown path is 404 JSON" || fail "unknown path is 404 JSON ($st)"
st=$(http DELETE /v1/health)
[ "$st" = 405 ] && grep -q '"code":"method_not_allowed"' "$T_TMP/body" &&
	ok "wrong method is 405 JSON" || fail "wrong method is 405 JSON ($st)"
B=/v1/devices/00112233445566778899aabbccddeeff/batches/00112233445566778899aabbccddeeff
st=$(http GET "$B")
[ "$st" = 405 ] && ok "GET on a batch path is 405" ||
	fail "GET on a batch path is 405 ($st)"

# Body-less requests keep the connection: a probe, a 404, a 405 and a
# pull page each on a new TCP connection (and TLS handshake) cost a link
# more than the answers.  curl counts the connects of each transfer.
out=$(curl -s -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
	-w '%{http_code}:%{num_connects} ' "$PF_URL/v1/health" \
	"$PF_URL/v1/nothing-here" "$PF_URL$B" "$PF_URL/v1/health")
[ "$out" = "200:1 404:0 405:0 200:0 " ] &&
	ok "body-less requests share one kept-alive connection" ||
	fail "body-less requests share one kept-alive connection ($out)"
# A GET that sends a body anyway is answered at once (the body unread),
# on a connection that is then closed.
out=$(curl -s -o /dev/null -o /dev/null -X GET --data-binary 'x=1' \
	-w '%{http_code}:%{num_connects} ' "$PF_URL/v1/health" "$PF_URL/v1/health")
[ "$out" = "200:1 200:1 " ] &&
	ok "a GET with a body is answered, then its connection closed" ||
	fail "a GET with a body is answered, then its connection closed ($out)"

# 20 MB against a 16 MiB cap: refused from the declared length, before
# the body is read (curl's 100-continue means no body byte is sent).
head -c 20000000 /dev/zero >"$T_TMP/big"
out=$(curl -s -o "$T_TMP/body" -w '%{http_code} %{size_upload}' -X PUT \
	-T "$T_TMP/big" -H 'Content-Type: application/octet-stream' "$PF_URL$B")
set -- $out
[ "$1" = 413 ] && grep -q '"code":"too_large"' "$T_TMP/body" &&
	ok "an oversized body is 413 JSON" || fail "an oversized body is 413 ($out)"
[ "${2%.*}" -lt 20000000 ] && ok "... answered before reading it all ($2 bytes sent)" ||
	fail "... answered before reading it all ($2 bytes sent)"
# Without 100-continue the client pushes bytes anyway; the server answers
# 413 and closes, and a client still sending may see the close (a reset)
# before it reads the answer (000).  Never anything else.
# (000 is also what a dead port gives: the platform must have logged
# the refusal.)
out=$(curl -s -o "$T_TMP/body" -w '%{http_code}' -X PUT -H 'Expect:' \
	--data-binary @"$T_TMP/big" "$PF_URL$B")
n=$(grep -c 'body of 20000000 bytes refused (limit' "$H/serve.log")
case "$out" in
413 | 000) [ "$n" -eq 2 ] && ok "oversized without Expect is refused ($out)" ||
	fail "oversized without Expect is refused ($out, $n refusals logged)" ;;
*) fail "oversized without Expect is refused ($out)" ;;
esac

# A chunked body (no declared length) past the cap is cut off.  (Its
# refusal is logged only as the server's generic "internal error,
# closing connection": the log must have grown.)
n0=$(wc -l <"$H/serve.log")
out=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Expect:' \
	-H 'Transfer-Encoding: chunked' --data-binary @"$T_TMP/big" "$PF_URL$B")
n1=$(wc -l <"$H/serve.log")
case "$out" in
2*) fail "an oversized chunked body is refused ($out)" ;;
*) [ "$n1" -gt "$n0" ] && ok "an oversized chunked body is refused ($out)" ||
	fail "an oversized chunked body is refused ($out, nothing logged)" ;;
esac

st=$(http PUT "$B" --data-binary 'not an envelope')
[ "$st" = 400 ] && grep -q '"code":"bad_envelope"' "$T_TMP/body" &&
	ok "garbage batch is 400 bad_envelope" ||
	fail "garbage batch is 400 bad_envelope ($st)"
grep -q 'warning: batch 0011.* refused: bad_envelope' "$H/serve.log" &&
	ok "the refusal is logged as a warning" ||
	fail "the refusal is logged as a warning"
st=$(http PUT /v1/devices/xyz/batches/00112233445566778899aabbccddeeff \
	--data-binary 'x')
[ "$st" = 404 ] && ok "malformed ids in the path are 404" ||
	fail "malformed ids in the path are 404 ($st)"
# Ids of the right length not spelled in lower-case hex (upper case
# included) are 400 invalid_argument on every device route, before
# anything else: they were taken on some (batch, rekey), 404 on others
# (heartbeat, pull, reference) and 400 on attachments.
UD=00112233445566778899AABBCCDDEEFF
UH=00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
LH=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
for r in "PUT /v1/devices/$UD/batches/00112233445566778899aabbccddeeff" \
    "PUT /v1/devices/00112233445566778899aabbccddeeff/batches/$UD" \
    "POST /v1/devices/$UD/rekey" "POST /v1/devices/$UD/heartbeat" \
    "GET /v1/devices/$UD/pull" "GET /v1/devices/$UD/reference/$LH" \
    "GET /v1/devices/00112233445566778899aabbccddeeff/reference/$UH" \
    "GET /v1/devices/$UD/attachments/$LH" \
    "PUT /v1/devices/00112233445566778899aabbccddeeff/attachments/$UH"; do
	case ${r%% *} in
	GET) st=$(http GET "${r#* }") ;;
	*) st=$(http "${r%% *}" "${r#* }" --data-binary 'x') ;;
	esac
	[ "$st" = 400 ] && grep -q '"code":"invalid_argument".*lower-case hex' "$T_TMP/body" &&
		ok "upper-case id: $r is 400 invalid_argument" ||
		{ fail "upper-case id: $r is 400 invalid_argument ($st)"; sed 's/^/# /' "$T_TMP/body"; }
done

st=$(http POST /v1/enroll --data-binary '{"nope":1}')
[ "$st" = 400 ] && grep -q '"code":"malformed"' "$T_TMP/body" &&
	ok "malformed enroll body is 400" || fail "malformed enroll body is 400 ($st)"
Z32=0000000000000000000000000000000000000000000000000000000000000000
st=$(http POST /v1/enroll --data-binary "{\"token_id\":\"00112233445566778899aabbccddeeff\",\"device_id\":\"00112233445566778899aabbccddeeff\",\"device_pk\":\"$Z32\",\"proof\":\"$Z32\",\"self_sig\":\"$Z32$Z32\",\"agent_version\":\"t\"}")
[ "$st" = 403 ] && grep -q '"code":"enrollment_refused"' "$T_TMP/body" &&
	ok "a wrong enrollment is 403 enrollment_refused" ||
	fail "a wrong enrollment is 403 enrollment_refused ($st)"
grep -q 'enroll from 127.0.0.1 refused' "$H/serve.log" &&
	ok "failed enrollment is logged with the address" ||
	fail "failed enrollment is logged with the address"
i=0
while [ $i -lt 12 ]; do
	st=$(http POST /v1/enroll --data-binary '{}')
	i=$((i + 1))
done
[ "$st" = 429 ] && ok "repeated failures are rate-limited (429)" ||
	fail "repeated failures are rate-limited ($st)"
st=$(http GET /v1/health)
[ "$st" = 200 ] && ok "the server still answers" || fail "the server still answers"

# A second server on the same port fails cleanly.
port=${PF_URL##*:}
"$PF" --home "$H" serve --listen "127.0.0.1:$port" >"$T_TMP/out2" 2>"$T_TMP/err2"
rc=$?
[ "$rc" -ne 0 ] && grep -q '^gridplatform: cannot listen' "$T_TMP/err2" &&
	ok "a taken port is a clear error (exit $rc)" ||
	fail "a taken port is a clear error (exit $rc)"
# ... in one line: libmicrohttpd's own "gridplatform: info: http: Failed
# to bind ..." came first; its reason is now part of our line.
[ "$(wc -l <"$T_TMP/err2")" = 1 ] &&
	grep -q "^gridplatform: cannot listen on 127.0.0.1:$port: .*in use" "$T_TMP/err2" &&
	ok "... in one line, saying why" ||
	{ fail "... in one line, saying why"; sed 's/^/#   /' "$T_TMP/err2"; }
expect_exit 64 "a bad --listen is a usage error" "$PF" --home "$H" serve \
	--listen localhost

# A damaged database is a clear error (74), on every command, and is left
# as it was: it crashed (SIGSEGV) when the store failed to open.  So is a
# database that is not the platform's: the agent's store (it failed in
# migration 0011, "no such table: batches") or any other SQLite database
# at user_version 0 (it was migrated: our tables written into it, then
# "store has no deployment"), and an empty file (the same).
D="$T_TMP/damaged"
"$PF" --home "$D" init --public-url http://127.0.0.1:9 >/dev/null 2>&1
printf 'correct horse battery staple\n' >"$T_TMP/pass"
"$GRIDAGENT" --home "$T_TMP/agent" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$T_TMP/pass" >/dev/null 2>&1
for kind in garbage header truncated agent foreign empty; do
	case $kind in
	empty) : >"$D/platform.db" ;;
	garbage) head -c 8192 /dev/urandom >"$D/platform.db" ;;
	header) printf 'SQLite format 3\000garbage' >"$D/platform.db" ;;
	truncated) cp "$H/platform.db" "$T_TMP/whole.db"
		head -c 5000 "$T_TMP/whole.db" >"$D/platform.db" ;;
	agent) cp "$T_TMP/agent/agent.db" "$D/platform.db" ;;
	foreign) rm -f "$D/platform.db"
		sqlite3 "$D/platform.db" 'PRAGMA user_version=0; CREATE TABLE t(x);'
		;;
	esac
	cp "$D/platform.db" "$T_TMP/damaged.db"
	for c in devices export "serve --listen 127.0.0.1:0" \
	    "enroll --worker w --name n --grid 110101001"; do
		# shellcheck disable=SC2086
		expect_exit 74 "$kind database: $c exits 74" "$PF" --home "$D" $c
		check "... one line naming the file" sh -c \
		    'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: .*platform.db: " "$1"' \
		    - "$T_TMP/err"
	done
	check "$kind database: left as it was" cmp -s "$D/platform.db" \
	    "$T_TMP/damaged.db"
	case $kind in agent | foreign)
		check "... and says it is not the platform's" grep -q \
		    "not the platform's database" "$T_TMP/err" ;;
	esac
done

# A store of ours that lost a table, an index or a trigger is damaged:
# refused on every command (74), one line naming what is missing, left as
# it was.  Before, a dropped device_keys or feed table was found only by
# the request that needed it, and a dropped index or trigger never.
for obj in "table device_keys" "table feed" "index feed_by_grid" \
    "trigger feed_task_new" "view revision_fields"; do
	cp "$H/platform.db" "$D/platform.db"
	sqlite3 "$D/platform.db" "DROP $obj"
	cp "$D/platform.db" "$T_TMP/damaged.db"
	for c in devices export "serve --listen 127.0.0.1:0" \
	    "enroll --worker w --name n --grid 110101001"; do
		# shellcheck disable=SC2086
		expect_exit 74 "$obj dropped: ${c%% *} exits 74" "$PF" \
		    --home "$D" $c
		check "... one line: $obj is missing" sh -c \
		    'test "$(wc -l <"$1")" = 1 &&
		    grep -q "^gridplatform: .*platform.db: damaged: $2 is missing" "$1"' \
		    - "$T_TMP/err" "$obj"
	done
	check "$obj dropped: left as it was" cmp -s "$D/platform.db" \
	    "$T_TMP/damaged.db"
done

# A store whose user_version was set back to 3 is left as it was: the
# open ran migration 0004 again (it rebuilds the changes ledger, and
# succeeded), committed schema 4, then failed in 0005 on a table it had.
cp "$H/platform.db" "$D/platform.db"
sqlite3 "$D/platform.db" 'PRAGMA user_version = 3' >/dev/null
cp "$D/platform.db" "$T_TMP/damaged.db"
for c in devices export; do
	expect_exit 74 "user_version set back: $c exits 74" "$PF" --home "$D" $c
	check "... one line naming the file" sh -c \
	    'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: .*platform.db: " "$1"' \
	    - "$T_TMP/err"
done
check "user_version set back: left as it was" cmp -s "$D/platform.db" \
    "$T_TMP/damaged.db"

# A published form is listed, and the listing does not also say that
# nothing is published.
sed 's/"version": 1,/"version": 2,/' "$GS_TOP/schema/forms/event.json" \
	>"$T_TMP/event-v2.json"
expect_exit 66 "reference add of a file that is not there (66)" \
	"$PF" --home "$H" reference add "$T_TMP/no-such-form.json"
check "... names the file" grep -q \
	"^gridplatform: $T_TMP/no-such-form.json: No such file" "$T_TMP/err"
expect_exit 0 "reference add of a form version" "$PF" --home "$H" \
	reference add "$T_TMP/event-v2.json"
expect_exit 0 "reference lists it" "$PF" --home "$H" reference
check "... the form, v2" grep -q "form  *event  *v2" "$T_TMP/out"
check "... and not 'no reference data published'" sh -c \
	'! grep -q "no reference data published" "$1"' - "$T_TMP/out"

# Output nobody can read (a full disk, stdout closed) is an I/O error,
# one line, never exit 0 with nothing shown: least of all enroll's code.
for c in "devices --json" "reconcile --json" stats keys reference --version; do
	expect_exit 74 "$c to /dev/full exits 74" sh -c \
	    '"$0" --home "$1" $2 >/dev/full' "$PF" "$H" "$c"
	check "... one line saying so" sh -c 'test "$(wc -l <"$1")" = 1 &&
	    grep -q "^gridplatform: cannot write the output" "$1"' - "$T_TMP/err"
done
expect_exit 74 "devices with stdout closed exits 74" sh -c \
    '"$0" --home "$1" devices --json >&-' "$PF" "$H"
expect_exit 74 "enroll to /dev/full exits 74" sh -c '"$0" --home "$1" \
    enroll --worker w9 --name x --grid 440307001001 >/dev/full' "$PF" "$H"
check "... saying the code was not shown" grep -q \
    '^gridplatform: cannot write the enrollment code.*make a new one' \
    "$T_TMP/err"

kill -TERM "$PF_PID"
wait "$PF_PID"
rc=$?
[ "$rc" -eq 0 ] && ok "SIGTERM stops serve cleanly" ||
	fail "SIGTERM stops serve cleanly (exit $rc)"

# "help COMMAND", as gridagent's: the command's own --help.
"$GRIDPLATFORM" export --help >"$T_TMP/h1" 2>&1
"$GRIDPLATFORM" help export >"$T_TMP/h2" 2>"$T_TMP/err"
rc=$?
[ $rc -eq 0 ] && [ -s "$T_TMP/h1" ] && cmp -s "$T_TMP/h1" "$T_TMP/h2" &&
	ok "help export prints export --help" ||
	fail "help export prints export --help (exit $rc)"
"$GRIDPLATFORM" help >"$T_TMP/h2" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "help COMMAND" "$T_TMP/h2" && ok "help alone prints the usage" ||
	fail "help alone prints the usage (exit $rc)"
"$GRIDPLATFORM" help nosuch >/dev/null 2>"$T_TMP/err"
rc=$?
[ $rc -eq 64 ] && grep -q "unknown command nosuch" "$T_TMP/err" &&
	ok "help nosuch: 64, naming it" || fail "help nosuch: 64, naming it (exit $rc)"
done_testing
