#!/bin/sh
# pii-at-rest.sh - personal data on a lost handheld stays unreadable
# (issue 6), through the real binaries:
#   - after collecting and editing generated people, agent.db, its WAL and
#     anything else in the home hold none of their id numbers, phones,
#     names or addresses in a form grep finds (plain UTF-8, upper/lower
#     hex, base64 of the UTF-8);
#   - list and show mask unless --reveal, which the audit records;
#   - lock: collect/edit/show --reveal exit 77, masked list still works,
#     sync uploads what was sealed and leaves the rest waiting;
#   - a wrong passphrase unlocks nothing, the failure limit destroys the
#     key and status says so;
#   - receipted records are purged to a stub (retention), WAL truncated;
#   - the unlock session expires after the idle time;
#   - a short numeric PIN is refused at init;
#   - list --id-number finds a person through the blind index.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready

# ---- what a thief finds in the files
"$GRIDGEN" --type person --count 200 --seed 61 >"$T_TMP/people.ndjson"
expect_exit 0 "collect 200 people" ag collect person --json "$T_TMP/people.ndjson"
u=$(head -n 1 "$T_TMP/out")
expect_exit 0 "edit one (phone and name)" ag edit "$u" phone=13912345678 name=欧阳娜娜
expect_exit 0 "sync: sealed and uploaded" ag sync
"$GRIDGEN" --type person --count 50 --seed 62 | ag collect person --json - >/dev/null ||
	fail "collect 50 more (unsent)"
"$PY" - "$T_TMP/people.ndjson" "$T_TMP/needles" <<'EOF'
import base64, json, sys
out = open(sys.argv[2], "w")
seen = set()
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    for k in ("id_number", "phone", "name", "address"):
        v = r.get(k)
        if not v or v in seen:
            continue
        seen.add(v)
        b = v.encode()
        for form in (v, b.hex(), b.hex().upper(),
                     base64.b64encode(b).decode().rstrip("="),
                     base64.urlsafe_b64encode(b).decode().rstrip("=")):
            if len(form) >= 6:
                out.write(form + "\n")
for v in ("13912345678", "欧阳娜娜"):
    out.write(v + "\n")
    out.write(v.encode().hex() + "\n")
EOF
[ "$(wc -l <"$T_TMP/needles")" -gt 500 ] && ok "needles: id numbers, phones, names, addresses in 5 forms" ||
	fail "needles: id numbers, phones, names, addresses in 5 forms"
# Every file in the home (agent.db, -wal, -shm, session, anything else).
found=$(find "$AH" -type f -exec cat {} + | LC_ALL=C grep -a -c -F -f "$T_TMP/needles")
# (A scan that reads nothing finds nothing: the same scan must find what
# the home does keep in clear, the saved record's uuid.)
seen=$(find "$AH" -type f -exec cat {} + | LC_ALL=C grep -a -c -F "$u")
[ "$found" = 0 ] && [ -n "$u" ] && [ "$seen" -gt 0 ] &&
	ok "no file of the home holds any of them" ||
	fail "no file of the home holds any of them ($found lines; the uuid in $seen)"
# The check above can fail: the same needles are found in the input.
[ "$(LC_ALL=C grep -a -c -F -f "$T_TMP/needles" "$T_TMP/people.ndjson")" -gt 100 ] &&
	ok "... and the needles do match the plain input" ||
	fail "... and the needles do match the plain input"

# ---- display
ag list person >"$T_TMP/list" 2>/dev/null
grep -q '\*' "$T_TMP/list" && ok "list masks names" || fail "list masks names"
ag show "$u" --json >"$T_TMP/show"
grep -q '"phone":"139\*\*\*\*5678"' "$T_TMP/show" && ok "show masks the phone (139****5678)" ||
	fail "show masks the phone (139****5678)"
grep -Eq '"id_number":"[0-9]{4}\*{10}[0-9X]{4}"' "$T_TMP/show" &&
	ok "show masks the id number (4403**********1234)" ||
	fail "show masks the id number (4403**********1234)"
expect_exit 0 "show --reveal" ag show "$u" --json --reveal
grep -q '13912345678' "$T_TMP/out" && ok "... shows the phone" || fail "... shows the phone"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM audit WHERE action = 'reveal' AND uuid = '$u'")" = 1 ] &&
	ok "... and the audit records the reveal" || fail "... and the audit records the reveal"

# ---- the blind index
id=$(head -n 5 "$T_TMP/people.ndjson" | tail -n 1 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id_number"])')
expect_exit 0 "list --id-number" ag list person --id-number "$id"
[ "$(wc -l <"$T_TMP/out")" = 1 ] && ok "... finds exactly one person" ||
	fail "... finds exactly one person ($(wc -l <"$T_TMP/out"))"
expect_exit 0 "list --id-number of nobody" ag list person --id-number 110105194912310021
[ ! -s "$T_TMP/out" ] && ok "... finds none" || fail "... finds none"

# ---- locked
expect_exit 0 "lock" ag lock
expect_exit 77 "collect while locked (77)" ag collect person name=x
grep -q 'locked: run gridagent unlock' "$T_TMP/err" && ok "... says to unlock" ||
	fail "... says to unlock"
expect_exit 77 "edit while locked (77)" ag edit "$u" phone=13800138000
check "... saying locked" grep -q "^gridagent: locked: run gridagent unlock" "$T_TMP/err"
expect_exit 77 "show --reveal while locked (77)" ag show "$u" --reveal
check "... saying locked" grep -q "^gridagent: locked: run gridagent unlock" "$T_TMP/err"
expect_exit 77 "list --reveal while locked (77)" ag list --reveal
check "... saying locked" grep -q "^gridagent: locked: run gridagent unlock" "$T_TMP/err"
expect_exit 0 "list while locked (masked)" ag list person
# 77, not 0 ("all acked"): 50 changes are not on the platform.
expect_exit 77 "sync while locked: nothing sealed, nothing lost (77)" ag sync --json
[ "$(json_get "$T_TMP/out" 'd["result"]')" = not_permitted ] &&
	[ "$(json_get "$T_TMP/out" 'd["unsent"]')" = 50 ] &&
	ok "... --json says not_permitted, 50 unsent" ||
	fail "... --json says not_permitted, 50 unsent"
grep -q "^gridagent: locked: 50 change(s) wait for 'gridagent unlock'" "$T_TMP/err" &&
	[ "$(wc -l <"$T_TMP/err")" = 1 ] &&
	ok "... in one line, saying why" || fail "... in one line, saying why"
[ "$(json_get "$T_TMP/out" 'd["sealed_batches"]')" = 0 ] &&
	ok "... 50 changes wait for unlock" || fail "... 50 changes wait for unlock"
grep -q 'wait for' "$T_TMP/err" && ok "... and it says so" || fail "... and it says so"
[ "$(sqlite3 "$AH/agent.db" "SELECT (SELECT count(*) FROM change WHERE state = 0) + (SELECT count(*) FROM pending_creation)")" = 50 ] &&
	ok "... still 50 unsent" || fail "... still 50 unsent"

# ---- wrong passphrases
printf 'not the passphrase\n' >"$T_TMP/wrong"
expect_exit 77 "a wrong passphrase unlocks nothing (77)" ag unlock --passphrase-file "$T_TMP/wrong"
check "... saying wrong passphrase" grep -q "^gridagent: wrong passphrase" "$T_TMP/err"
expect_exit 77 "... collect still refused" ag collect person name=x
check "... saying locked" grep -q "^gridagent: locked: run gridagent unlock" "$T_TMP/err"
expect_exit 0 "the right one unlocks" ag unlock --passphrase-file "$AG_PASS"
expect_exit 0 "sync now seals and uploads the 50" ag sync --json
[ "$(json_get "$T_TMP/out" 'd["sealed_records"]')" = 50 ] &&
	ok "... 50 sealed" || fail "... 50 sealed"
# ---- retention: receipted records lose their pii, a stub stays
expect_exit 0 "purge --days 0 after the receipts" ag purge --days 0
n=$(sed -n 's/^\([0-9]*\) records purged$/\1/p' "$T_TMP/out")
[ "${n:-0}" -ge 250 ] && ok "... purges the 250 receipted records ($n)" ||
	fail "... purges the 250 receipted records ($n)"
expect_exit 0 "show --reveal of a purged record" ag show "$u" --json --reveal
grep -q '"pop_type"' "$T_TMP/out" && ! grep -q '13912345678' "$T_TMP/out" &&
	ok "... keeps the stub (type, rev, non-pii fields), no pii" ||
	fail "... keeps the stub (type, rev, non-pii fields), no pii"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM record WHERE purged_at IS NOT NULL")" -ge 250 ] &&
	[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM record WHERE fields LIKE '%\$pii%'")" = 0 ] &&
	[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM change WHERE state = 2 AND fields LIKE '%\$pii%'")" = 0 ] &&
	ok "... no sealed pii left in records or delivered changes" ||
	fail "... no sealed pii left in records or delivered changes"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM audit WHERE action = 'purge'")" = 1 ] &&
	ok "... one audit row" || fail "... one audit row"
[ ! -s "$AH/agent.db-wal" ] && ok "... the WAL was truncated" ||
	fail "... the WAL was truncated ($(wc -c <"$AH/agent.db-wal"))"

# ---- config: the value in force with its unit, and one JSON document
# with --json (it printed a bare value, "(default)" when unset, and
# refused --json; then a bare "900 (default)", unit unsaid)
[ "$(ag config lock-idle-seconds)" = "900 s = 15 min (default)" ] &&
	ok "config lock-idle-seconds: 900 s = 15 min, the default" ||
	fail "config lock-idle-seconds: 900 s = 15 min, the default ($(ag config lock-idle-seconds))"
[ "$(ag config retention-days)" = "30 days (default)" ] &&
	ok "config retention-days: 30 days, the default" ||
	fail "config retention-days: 30 days, the default ($(ag config retention-days))"
for s in retention-days lock-idle-seconds max-failed-unlocks; do
	expect_exit 0 "config $s --json" ag config "$s" --json
	"$PY" - "$T_TMP/out" "$s" <<'PY' && ok "... one JSON object naming it, the value in force and the default" || fail "... one JSON object naming it, the value in force and the default"
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert d["setting"] == sys.argv[2] and isinstance(d["value"], int), d
assert isinstance(d["default"], int) and isinstance(d["set"], bool), d
PY
done
ag config lock-idle-seconds 600 --json >"$T_TMP/cfg.json"
[ "$(json_get "$T_TMP/cfg.json" '(d["value"], d["default"], d["set"])')" = "(600, 900, True)" ] &&
	ok "config SETTING VALUE --json: what is now in force" ||
	{ fail "config SETTING VALUE --json: what is now in force"; sed 's/^/# /' "$T_TMP/cfg.json"; }
expect_exit 0 "config --help" ag config --help
grep -q -- "--json" "$T_TMP/out" && ok "... names --json" || fail "... names --json"

# ---- idle lock
expect_exit 0 "config lock-idle-seconds 1" ag config lock-idle-seconds 1
expect_exit 0 "unlock (1 s idle)" ag unlock --passphrase-file "$AG_PASS"
sleep 2
expect_exit 77 "after 2 s idle the store is locked again" ag collect person name=x
check "... saying locked" grep -q "^gridagent: locked: run gridagent unlock" "$T_TMP/err"
[ ! -e "$AH/session" ] && ok "... and the session file is gone" ||
	fail "... and the session file is gone"
expect_exit 0 "config lock-idle-seconds 900" ag config lock-idle-seconds 900
expect_exit 0 "unlock" ag unlock --passphrase-file "$AG_PASS"

expect_exit 0 "config max-failed-unlocks 3" ag config max-failed-unlocks 3
expect_exit 0 "lock" ag lock
for i in 1 2; do
	expect_exit 77 "wrong passphrase $i of 3" ag unlock --passphrase-file "$T_TMP/wrong"
done
grep -q '1 attempts left' "$T_TMP/err" && ok "... says how many are left" ||
	fail "... says how many are left"
expect_exit 77 "wrong passphrase 3 of 3 destroys the key" ag unlock --passphrase-file "$T_TMP/wrong"
expect_exit 77 "the right passphrase is too late" ag unlock --passphrase-file "$AG_PASS"
check "... saying the key was destroyed" grep -q "^gridagent: the data key was destroyed" "$T_TMP/err"
expect_exit 0 "status --json" ag status --json
[ "$(json_get "$T_TMP/out" 'd["pii"]["destroyed"]')" = True ] &&
	ok "status says the key is destroyed" || fail "status says the key is destroyed"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM keyring WHERE dek_wrap IS NULL")" = 1 ] &&
	ok "... no wrapped key left in the store" || fail "... no wrapped key left in the store"

# ---- the passphrase policy
expect_exit 64 "init with a 6-digit PIN is refused (64)" "$GRIDAGENT" --home "$T_TMP/pin" \
	init --passphrase-file /dev/stdin <<EOF
123456
EOF
check "... saying it is too short" grep -q "passphrase needs at least 10 characters" "$T_TMP/err"
[ ! -e "$T_TMP/pin" ] && ok "... and nothing is made" || fail "... and nothing is made"

# ---- the session file in $XDG_RUNTIME_DIR (a tmpfs on most systems)
mkdir -m 700 "$T_TMP/run"
X="$T_TMP/x"
expect_exit 0 "init with XDG_RUNTIME_DIR set" env XDG_RUNTIME_DIR="$T_TMP/run" \
	"$GRIDAGENT" --home "$X" init --passphrase-file "$AG_PASS"
ls "$T_TMP/run"/gridagent-*.session >/dev/null 2>&1 && [ ! -e "$X/session" ] &&
	[ "$(stat -c %a "$T_TMP"/run/gridagent-*.session)" = 600 ] &&
	ok "... the session key is there (0600), not in the home" ||
	fail "... the session key is there (0600), not in the home"
expect_exit 0 "... a command with it is unlocked" env XDG_RUNTIME_DIR="$T_TMP/run" \
	"$GRIDAGENT" --home "$X" collect person name=张三 pop_type=REGISTERED address=x \
	id_number=11010519491231002X
expect_exit 77 "... without it (the database alone) is locked" \
	"$GRIDAGENT" --home "$X" collect person name=李四 pop_type=REGISTERED \
	id_number=11010519491231002X
check "... saying locked" grep -q "^gridagent: locked: run gridagent unlock" "$T_TMP/err"

done_testing
