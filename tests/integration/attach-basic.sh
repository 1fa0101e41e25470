#!/bin/sh
# attach-basic.sh - photos attached to records: sealed at once, named in the
# record, uploaded after the batches, receipted, stored once by content,
# opened only by the audited admin command; refusals (not enrolled, empty,
# over the limit, wrong type, twice on one record); a tampered stream is
# refused by the platform; an attachment that never arrived is flagged.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

# A small JPEG-like file: the JPEG magic, then random bytes.
jpeg() { { printf '\377\330\377\340'; head -c "$2" /dev/urandom; } >"$1"; }
# The first hash of a record's attachments field.
att_hash() { ag show "$1" --json --reveal | "$PY" -c '
import json, sys
print(json.load(sys.stdin)["fields"]["attachments"][int(sys.argv[1])]["hash"])' "${2:-0}"; }
status_att() { ag status --json | "$PY" -c '
import json, sys
print(json.load(sys.stdin)["attachments"][sys.argv[1]])' "$1"; }
event() {
	ag collect event category=CM_MANHOLE title=井盖破损 place=鹏城社区 \
		occurred_at=2026-04-01T10:00:00Z urgency=URGENT
}

jpeg "$T_TMP/photo.jpg" 300000
jpeg "$T_TMP/after.jpg" 2000
jpeg "$T_TMP/big.jpg" 1200000
: >"$T_TMP/empty.jpg"

# ---- not enrolled: nothing can be sealed yet
ag init --grid 110101001 --worker w001 --passphrase-file "$AG_PASS" >/dev/null 2>&1
E1=$(event)
expect_exit 77 "attach before enrollment is refused (77)" \
	ag attach "$E1" "$T_TMP/photo.jpg"
grep -q "enroll" "$T_TMP/err" && ok "... and says to enroll" || fail "... and says to enroll"

# ---- a platform with a 1 MB attachment limit
pf init --public-url http://127.0.0.1:9 >/dev/null 2>&1
pf attachment limit 1000000 >/dev/null
[ "$(pf attachment limit)" = 1000000 ] && ok "the platform's limit is set" ||
	fail "the platform's limit is set"
start_platform "$PH" || { fail "platform starts"; done_testing; exit 1; }
curl -s "$PF_URL/v1/health" | grep -q '"max_attachment":1000000' &&
	ok "health announces max_attachment" || fail "health announces max_attachment"
sync_enroll "$AH" || fail "enroll"
# The enroll answer carries the limit: a fresh device refuses an
# over-limit file before its first sync.
[ "$(sqlite3 "$AH/agent.db" "SELECT value FROM meta WHERE key = 'max_attachment'")" = 1000000 ] &&
	ok "enroll stores the platform's max_attachment" ||
	fail "enroll stores the platform's max_attachment"
E0=$(event)
expect_exit 65 "before its first sync, a fresh device refuses an over-limit file (65)" \
	ag attach "$E0" "$T_TMP/big.jpg"
grep -q "at most 1000000\|at most 976" "$T_TMP/err" && ok "... naming the enrolled limit" ||
	fail "... naming the enrolled limit ($(cat "$T_TMP/err"))"
check "a first sync" ag sync

E1=$(event)
E2=$(event)
P1=$("$GRIDGEN" --type person --count 1 --seed 5 | ag collect person --json -)
expect_exit 0 "attach a photo with phase, note and location" \
	ag attach "$E1" "$T_TMP/photo.jpg" --phase BEFORE --note "井盖缺失" \
	--location 22.59,114.48,8,GCJ02 --json
H1=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["hash"])' "$T_TMP/out")
[ "$(att_hash "$E1")" = "$H1" ] && ok "the record names the attachment's hash" ||
	fail "the record names the attachment's hash"
ag show "$E1" --json --reveal | "$PY" -c '
import json, sys
a = json.load(sys.stdin)["fields"]["attachments"][0]
assert a["mime"] == "image/jpeg" and a["size"] == 300004, a
assert a["phase"] == "BEFORE" and a["location"]["coord_sys"] == "GCJ02", a
assert a["taken_at"] > 0' && ok "mime sniffed, size, phase, location, taken_at" ||
	fail "mime sniffed, size, phase, location, taken_at"
[ -f "$AH/attachments/sealed/$H1" ] && ok "sealed into attachments/sealed/HASH" ||
	fail "sealed into attachments/sealed/HASH"
[ ! -e "$AH/attachments/plain" ] && ok "no plaintext copy kept without --keep" ||
	fail "no plaintext copy kept without --keep"
"$PY" -c '
import sys
photo = open(sys.argv[1], "rb").read(); sealed = open(sys.argv[2], "rb").read()
sys.exit(1 if photo[4:4100] in sealed else 0)' "$T_TMP/photo.jpg" "$AH/attachments/sealed/$H1" &&
	ok "the sealed file does not hold the photo in clear" ||
	fail "the sealed file does not hold the photo in clear"
expect_exit 0 "the same photo on a second record" ag attach "$E2" "$T_TMP/photo.jpg" --json
grep -q '"reused":true' "$T_TMP/out" && ok "... is not sealed again (reused)" ||
	fail "... is not sealed again (reused)"
expect_exit 73 "the same photo twice on one record is refused (73)" \
	ag attach "$E1" "$T_TMP/photo.jpg"
expect_exit 0 "a second photo (after) with --keep" ag attach "$E1" "$T_TMP/after.jpg" --phase AFTER --keep
H2=$(att_hash "$E1" 1)
[ -f "$AH/attachments/plain/$H2" ] && ok "--keep keeps a plaintext copy" ||
	fail "--keep keeps a plaintext copy"
expect_exit 65 "a file over the platform's limit is refused (65)" \
	ag attach "$E1" "$T_TMP/big.jpg"
grep -q "at most" "$T_TMP/err" && ok "... saying what the limit is" ||
	fail "... saying what the limit is"
# (64 is also any usage error, an empty uuid's included: each says why.)
expect_exit 64 "an empty file is refused (64)" ag attach "$E1" "$T_TMP/empty.jpg"
check "... saying it is empty" grep -q 'empty.jpg is empty: nothing to attach' "$T_TMP/err"
expect_exit 64 "a person takes no attachments (64)" ag attach "$P1" "$T_TMP/after.jpg"
check "... saying so" grep -q 'records of type person take no attachments' "$T_TMP/err"
expect_exit 64 "a bad --location is refused (64)" \
	ag attach "$E2" "$T_TMP/after.jpg" --location 22.5,north,,GCJ02
check "... naming the part" grep -q "location: 'north' is not a number" "$T_TMP/err"
expect_exit 65 "an unknown phase fails validation (65)" \
	ag attach "$E2" "$T_TMP/after.jpg" --phase LATER
[ "$(status_att pending)" = 2 ] && ok "status: 2 attachments pending" ||
	fail "status: 2 attachments pending ($(status_att pending))"
[ "$(status_att records_waiting)" = 2 ] && ok "status: 2 records wait for attachments" ||
	fail "status: 2 records wait for attachments"
sqlite3 "$AH/agent.db" \
	"SELECT count(*) FROM audit WHERE action = 'attach'" | grep -qx 3 &&
	ok "three attach audit rows" || fail "three attach audit rows"

# ---- upload
check "sync uploads records, then attachments" ag sync
[ "$(status_att done)" = 2 ] && ok "status: 2 attachments done" ||
	fail "status: 2 attachments done ($(status_att done))"
[ "$(status_att records_waiting)" = 0 ] && ok "status: no record waits" ||
	fail "status: no record waits"
[ -z "$(ls "$AH/attachments/sealed")" ] && ok "sealed files deleted after the receipt" ||
	fail "sealed files deleted after the receipt"
[ ! -e "$AH/attachments/plain/$H2" ] && ok "the kept plaintext is deleted after the receipt" ||
	fail "the kept plaintext is deleted after the receipt"
n=$(ls "$PH/attachments" | grep -c '^[0-9a-f]\{64\}$')
[ "$n" = 2 ] && ok "the platform stores 2 files for 3 attachments (dedup)" ||
	fail "the platform stores 2 files for 3 attachments ($n)"
[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM attachments")" = 2 ] &&
	ok "two attachment rows" || fail "two attachment rows"
pf attachment list >"$T_TMP/list"
grep -q "complete 2, missing attachments 0" "$T_TMP/list" &&
	ok "attachment list: both records complete" || fail "attachment list: both records complete"
expect_exit 0 "attachment get opens the photo" \
	pf attachment get "$H1" --out "$T_TMP/back.jpg" --as auditor7
cmp -s "$T_TMP/back.jpg" "$T_TMP/photo.jpg" && ok "... byte for byte" || fail "... byte for byte"
[ "$(sqlite3 "$PH/platform.db" "SELECT actor || ' ' || action FROM attachment_access")" = "auditor7 open" ] &&
	ok "... and the open is audited" || fail "... and the open is audited"
expect_exit 65 "attachment get of an unknown hash: not found (65)" \
	pf attachment get "$(printf '0%.0s' $(seq 64))" --out "$T_TMP/x"

# ---- a record whose attachment never arrives is flagged
E3=$(event)
ag attach "$E3" "$T_TMP/after.jpg" >/dev/null 2>&1 && ok "attach to a third record (known file)" ||
	fail "attach to a third record (known file)"
jpeg "$T_TMP/lost.jpg" 5000
H3=$(ag attach "$E3" "$T_TMP/lost.jpg")
rm -f "$AH/attachments/sealed/$H3"
expect_exit 65 "sync with a sealed file lost on the device: not found (65)" ag sync
pf attachment list --missing >"$T_TMP/list"
grep -q "$E3.*MISSING $H3" "$T_TMP/list" && ok "the platform flags the record's missing attachment" ||
	fail "the platform flags the record's missing attachment"
pf attachment list --json --missing | grep -q '"status":"missing"' &&
	ok "... also in --json" || fail "... also in --json"

# ---- the platform refuses a tampered stream and keeps nothing of it
E4=$(event)
jpeg "$T_TMP/t.jpg" 200000
H4=$(ag attach "$E4" "$T_TMP/t.jpg")
# Nobody but the device may add to its upload: a chunk without the
# device's signature is refused before a byte is kept.
code=$(curl -s -o "$T_TMP/put.out" -w '%{http_code}' -X PUT \
	--data-binary @"$AH/attachments/sealed/$H4" \
	-H 'Content-Type: application/octet-stream' \
	"$PF_URL/v1/devices/$DEV_ID/attachments/$H4?offset=0&sig=$(printf '0%.0s' $(seq 128))")
[ "$code" = 401 ] && grep -q bad_signature "$T_TMP/put.out" &&
	ok "an unsigned chunk is refused (401 bad_signature)" ||
	fail "an unsigned chunk is refused ($code $(cat "$T_TMP/put.out"))"
code=$(curl -s -o "$T_TMP/put.out" -w '%{http_code}' -X PUT --data-binary @"$T_TMP/t.jpg" \
	"$PF_URL/v1/devices/$DEV_ID/attachments/$H4?offset=7&sig=$(printf '0%.0s' $(seq 128))")
[ "$code" = 409 ] && grep -q '"offset":0' "$T_TMP/put.out" &&
	ok "a PUT at the wrong offset: 409 with the platform's offset" ||
	fail "a PUT at the wrong offset: 409 ($code)"
# The sealed file damaged on the device (a bad flash block): the device
# signs and sends it unknowing; the platform's final check refuses it.
cp "$AH/attachments/sealed/$H4" "$T_TMP/t.sealed"
"$PY" -c '
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b)//2] ^= 1
open(p, "wb").write(b)' "$AH/attachments/sealed/$H4"
expect_exit 65 "a tampered stream is refused (exit 65)" ag sync
grep -q "does not verify" "$PH/serve.log" && ok "... by the platform's check of every message" ||
	fail "... by the platform's check of every message"
[ ! -e "$PH/attachments/$H4" ] && [ -z "$(ls "$PH/attachments/partial")" ] &&
	ok "... and nothing of it is kept" || fail "... and nothing of it is kept"
cp "$T_TMP/t.sealed" "$AH/attachments/sealed/$H4"
expect_exit 65 "the genuine stream then goes through (the lost one still fails)" ag sync
[ -f "$PH/attachments/$H4" ] && ok "... and is stored" || fail "... and is stored"

done_testing
