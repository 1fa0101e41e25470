#!/bin/sh
# agent-sync-enroll.sh - `gridagent enroll` against a real platform: a good
# code enrolls (keys made on the device, platform keys pinned); a damaged
# code, a reused code and a code whose fingerprint does not match the
# platform's keys are refused with a clear error and store nothing.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

if ! sync_platform; then
	fail "platform starts"
	done_testing
	exit 1
fi

# Not enrolled yet: sync says so with 77.
expect_exit 0 "init a home" ag init --grid 110101001 --worker w001 --passphrase-file "$AG_PASS"
expect_exit 77 "sync before enrollment is refused (77)" ag sync
grep -q 'not enrolled' "$T_TMP/err" && ok "... saying: not enrolled" ||
	fail "... saying: not enrolled"

code=$(pf enroll --worker w001 --name "张三" --grid 110101001 --ttl 600)
expect_exit 0 "enroll with a fresh code" ag enroll "$code" --platform "$PF_URL"
dev=$(cat "$T_TMP/out")
echo "$dev" | grep -Eq '^[0-9a-f]{32}$' && ok "prints the device id" ||
	fail "prints the device id ($dev)"
pf devices --json >"$T_TMP/devs"
[ -n "$dev" ] && grep -q "$dev" "$T_TMP/devs" && ok "the platform lists the device" ||
	fail "the platform lists the device"
expect_exit 0 "status --json" ag status --json
[ "$(json_get "$T_TMP/out" 'd["device"]["id"]')" = "$dev" ] &&
	ok "status shows the device id" || fail "status shows the device id"
[ "$(json_get "$T_TMP/out" 'd["device"]["platform"]')" = "$PF_URL" ] &&
	ok "status shows the platform URL" || fail "status shows the platform URL"
[ "$(json_get "$T_TMP/out" 'd["device"]["revoked"]')" = False ] &&
	ok "status: not revoked" || fail "status: not revoked"
# The secret key stays on the device: the platform holds only the public
# key it was sent.
pk=$(sqlite3 "$AH/agent.db" "SELECT hex(sign_pk) FROM device" | tr A-F a-f)
[ ${#pk} -eq 64 ] && ok "the device keeps its key pair" ||
	fail "the device keeps its key pair"
expect_exit 73 "a second enrollment of the same home is refused" \
	ag enroll "$(pf enroll --worker w001 --name n --grid 110101001)" \
	--platform "$PF_URL"
grep -q 'already enrolled' "$T_TMP/err" && ok "... saying so" ||
	fail "... saying so"

# A reused code: the platform refuses it; nothing is made.
B="$T_TMP/b"
expect_exit 77 "a reused code is refused (77)" "$GRIDAGENT" --home "$B" \
	enroll "$code" --platform "$PF_URL" --passphrase-file "$AG_PASS"
grep -q 'refused the enrollment code' "$T_TMP/err" &&
	ok "... with a clear message" || fail "... with a clear message"
[ ! -e "$B" ] && ok "... and nothing is stored" || fail "... and nothing is stored"
"$GRIDAGENT" enroll --help >"$T_TMP/enroll.help" 2>&1
check "enroll --help: 64 for a damaged code, 77 for a refused one" \
	sh -c "tr '\\n' ' ' <'$T_TMP/enroll.help' |
	grep -q 'Exit 64 when the code is damaged.*77 when the platform refuses it'"

# A damaged code (one character changed): caught by its checksum before
# any network traffic; the token is not spent.
code2=$(pf enroll --worker w002 --name "李四" --grid 110101001)
bad=$(echo "$code2" | "$PY" -c '
import sys
c = sys.stdin.read().strip()
i = 10
print(c[:i] + ("A" if c[i] != "A" else "B") + c[i+1:])')
expect_exit 64 "a damaged code is refused" "$GRIDAGENT" --home "$B" enroll --passphrase-file "$AG_PASS" \
	"$bad" --platform "$PF_URL"
grep -q 'damaged' "$T_TMP/err" && ok "... as damaged" || fail "... as damaged"
[ ! -e "$B" ] && ok "... and nothing is stored" || fail "... and nothing is stored"
expect_exit 64 "garbage is refused" "$GRIDAGENT" --home "$B" enroll --passphrase-file "$AG_PASS" \
	"hello" --platform "$PF_URL"
[ ! -e "$B" ] && ok "... and nothing is stored" || fail "... and nothing is stored"

# A code whose fingerprint does not match (checksum recomputed, so only
# the key pin can catch it): an impersonated platform.
tampered=$(echo "$code2" | "$PY" -c '
import sys, base64, hashlib
c = sys.stdin.read().strip()
_, b32, u64 = c.split("-", 2)
raw = bytearray(base64.b32decode(b32.upper() + "=" * (-len(b32) % 8)))
url = base64.urlsafe_b64decode(u64 + "=" * (-len(u64) % 4))
raw[48] ^= 1  # first fingerprint byte
chk = hashlib.blake2b(b"gridsync-code-v1" + bytes(raw[:64]) + url,
                      digest_size=32).digest()[:4]
raw[64:68] = chk
print("GS1-" + base64.b32encode(bytes(raw)).decode().rstrip("=") + "-" + u64)')
expect_exit 65 "a fingerprint mismatch is refused" "$GRIDAGENT" --home "$B" \
	enroll "$tampered" --platform "$PF_URL" --passphrase-file "$AG_PASS"
grep -q 'fingerprint' "$T_TMP/err" && ok "... naming the fingerprint" ||
	fail "... naming the fingerprint"
[ ! -e "$B" ] && ok "... and nothing is stored" || fail "... and nothing is stored"

# The platform unreachable: 69, nothing stored.
code3=$(pf enroll --worker w003 --name "王五" --grid 110101001)
expect_exit 69 "enroll with the platform down says unreachable (69)" \
	"$GRIDAGENT" --home "$B" enroll --passphrase-file "$AG_PASS" "$code3" --platform http://127.0.0.1:1
[ ! -e "$B" ] && ok "... and nothing is stored" || fail "... and nothing is stored"
# The code was not spent: it still works.
expect_exit 0 "the same code then enrolls" "$GRIDAGENT" --home "$B" enroll --passphrase-file "$AG_PASS" \
	"$code3" --platform "$PF_URL"

# A platform of another deployment at the URL: never send there.
PF1_URL=$PF_URL
"$GRIDPLATFORM" --home "$T_TMP/pf2" init --public-url http://127.0.0.1:9 \
	>/dev/null 2>&1 && start_platform "$T_TMP/pf2" || fail "a second platform starts"
collect_people 3 41 || fail "collect 3"
expect_exit 65 "sync to another deployment's platform is refused (65)" \
	ag sync --platform "$PF_URL"
grep -q 'deployment' "$T_TMP/err" && ok "... naming the deployment" ||
	fail "... naming the deployment"
[ "$(sqlite3 "$AH/agent.db" "SELECT (SELECT count(*) FROM change WHERE state = 0) + (SELECT count(*) FROM pending_creation)")" = 3 ] &&
	[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox")" = 0 ] &&
	ok "... and nothing was sealed or sent" ||
	fail "... and nothing was sealed or sent"
# (An export that fails prints nothing too: it must exit 0.)
GRIDPLATFORM_HOME="$T_TMP/pf2" "$GRIDPLATFORM" export --format ndjson \
	>"$T_TMP/pf2.ndjson" 2>"$T_TMP/pf2.err"
rc=$?
[ "$rc" = 0 ] && [ ! -s "$T_TMP/pf2.ndjson" ] &&
	ok "... the other platform holds nothing" ||
	fail "... the other platform holds nothing (export exit $rc)"
expect_exit 0 "the enrolled platform takes them" ag sync --platform "$PF1_URL"

# A URL with a newline or a space: one line saying so, nothing stored or
# sent.  It was echoed into the error, which became two lines.
code4=$(pf enroll --worker w004 --name "赵六" --grid 110101001)
C="$T_TMP/ctl"
expect_exit 64 "enroll to a URL with a newline is refused (64)" \
	"$GRIDAGENT" --home "$C" enroll --passphrase-file "$AG_PASS" "$code4" \
	--platform "$(printf 'http://127.0.0.1:1/\nx')"
check "... in one line, saying why" sh -c '[ "$(wc -l <"$1")" = 1 ] &&
	grep -q "control character (byte 20)" "$1"' - "$T_TMP/err"
[ ! -e "$C" ] && ok "... and nothing is stored" || fail "... and nothing is stored"
expect_exit 64 "... and one with a space" "$GRIDAGENT" --home "$C" enroll \
	--passphrase-file "$AG_PASS" "$code4" --platform "http://127.0.0.1:1/ x"
# The same URL in a damaged store (the enrolled device's row).
cp "$AH/agent.db" "$T_TMP/agent.db.before"
sqlite3 "$AH/agent.db" "UPDATE device SET platform_url = 'http://127.0.0.1:1/' || char(10) || 'x'"
expect_exit 64 "sync with a stored URL holding a newline is refused (64)" ag sync
check "... in one line" test "$(wc -l <"$T_TMP/err")" = 1
sqlite3 "$AH/agent.db" "UPDATE device SET platform_url = '$PF1_URL'"
expect_exit 0 "the mended URL syncs" ag sync

# Saves made on a home init'ed without --worker or --grid carried an
# empty author and grid, and the platform quarantined each one (author ''
# is not the enrolled worker).  Enrollment now gives the unsent ones its
# worker and grid.
N="$T_TMP/noworker"
expect_exit 0 "init without --worker or --grid" "$GRIDAGENT" --home "$N" init \
	--passphrase-file "$AG_PASS"
un=$("$GRIDAGENT" --home "$N" collect org name=某公司 org_kind=ENTERPRISE address=葵涌)
expect_exit 0 "... enroll after a save" "$GRIDAGENT" --home "$N" enroll \
	"$(pf enroll --worker w005 --name "钱七" --grid 110101005)" --platform "$PF1_URL"
expect_exit 0 "... sync" "$GRIDAGENT" --home "$N" sync
expect_exit 0 "... status --json" "$GRIDAGENT" --home "$N" status --json
[ "$(json_get "$T_TMP/out" '[d["changes"][k] for k in ("delivered", "quarantined")]')" = "[1, 0]" ] &&
	ok "... the save was applied, not quarantined" ||
	fail "... the save was applied, not quarantined ($(json_get "$T_TMP/out" 'd["changes"]'))"
expect_exit 0 "... show --json" "$GRIDAGENT" --home "$N" show "$un" --json
[ "$(json_get "$T_TMP/out" 'd["author"] + " " + d["grid"]')" = "w005 110101005" ] &&
	ok "... authored by the enrolled worker, in its grid" ||
	fail "... authored by the enrolled worker, in its grid"

# A change damaged in the store (its fields not a JSON object) cannot be
# sealed: it is marked rejected and kept, and sync says so with 65.  It
# said "all acked" and exited 0.
u=$(ag collect org name=某公司 org_kind=ENTERPRISE address=葵涌)
expect_exit 0 "a new org syncs" ag sync
expect_exit 0 "... and is edited" ag edit "$u" name=某某公司
sqlite3 "$AH/agent.db" "UPDATE change SET fields = '[1]' WHERE state = 0"
expect_exit 65 "sync with a change that cannot be sent exits 65" ag sync --json
check "... saying so on its last line" sh -c 'tail -n 1 "$1" |
	grep -q "^gridagent: 1 change(s) cannot be sent and were marked rejected; kept on this device"' \
	- "$T_TMP/err"
[ "$(json_get "$T_TMP/out" 'str(d["unsendable"]) + " " + d["outcome"]')" = \
	"1 cannot be sent, kept on the device" ] &&
	ok "... counted in --json (unsendable 1, not the platform's doing)" ||
	fail "... counted in --json (unsendable 1, not the platform's doing)"
expect_exit 0 "status --json" ag status --json
[ "$(json_get "$T_TMP/out" 'd["changes"]["rejected"]')" = 1 ] &&
	ok "... shows it rejected, kept" || fail "... shows it rejected, kept"

done_testing
