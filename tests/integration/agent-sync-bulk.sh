#!/bin/sh
# agent-sync-bulk.sh - 10,000 records over many batches arrive exactly
# once: the uuid sets on both sides are equal and nothing is doubled; a
# second sync sends nothing; an edit and a delete follow with the right
# revisions; the device's hash chain matches the platform's ledger.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready

N=10000
collect_people $N 7 && ok "collect $N people" || fail "collect $N people"
expect_exit 0 "sync --json exits 0" ag sync --json --batch-records 700
cp "$T_TMP/out" "$T_TMP/sum"
[ "$(json_get "$T_TMP/sum" 'd["acked_records"]')" = $N ] &&
	ok "all $N records acked" || fail "all $N records acked"
nb=$(json_get "$T_TMP/sum" 'd["acked_batches"]')
[ "$nb" -ge 15 ] && ok "over many batches ($nb)" || fail "over many batches ($nb)"
echo "# $(cat "$T_TMP/sum")"

agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
[ "$(wc -l <"$T_TMP/a")" -eq $N ] && ok "the agent lists $N" ||
	fail "the agent lists $N"
cmp -s "$T_TMP/a" "$T_TMP/p" && ok "the platform holds exactly the same uuids" ||
	fail "the platform holds exactly the same uuids"
[ -z "$(uniq -d "$T_TMP/p")" ] && ok "no uuid twice on the platform" ||
	fail "no uuid twice on the platform"

expect_exit 0 "status --json" ag status --json
cp "$T_TMP/out" "$T_TMP/st"
[ "$(json_get "$T_TMP/st" 'd["changes"]["delivered"]')" = $N ] &&
	[ "$(json_get "$T_TMP/st" 'd["changes"]["unsent"]')" = 0 ] &&
	[ "$(json_get "$T_TMP/st" 'd["outbox"]["sealed"]')" = 0 ] &&
	ok "status: all delivered, nothing pending" ||
	fail "status: all delivered, nothing pending"
[ "$(json_get "$T_TMP/st" 'd["last_seq"]')" = "$nb" ] &&
	ok "status: last seq = batches" || fail "status: last seq = batches"
head=$(json_get "$T_TMP/st" 'd["chain_head"]')
pf devices --json >"$T_TMP/devs"
echo "$head" | grep -Eq '^[0-9a-f]{64}$' && grep -q "$head" "$T_TMP/devs" && ok "the platform's ledger has the same chain head" ||
	fail "the platform's ledger has the same chain head"

expect_exit 0 "a second sync" ag sync --json
[ "$(json_get "$T_TMP/out" 'd["sealed_batches"]')" = 0 ] &&
	[ "$(json_get "$T_TMP/out" 'd["acked_batches"]')" = 0 ] &&
	ok "... sends nothing" || fail "... sends nothing"

# Edits and deletes after delivery: rev follows the platform.
u1=$(sed -n 1p "$T_TMP/a")
u2=$(sed -n 2p "$T_TMP/a")
expect_exit 0 "show a delivered record" ag show "$u1" --json
[ "$(json_get "$T_TMP/out" 'd["rev"]')" = 1 ] && ok "... at rev 1" ||
	fail "... at rev 1"
expect_exit 0 "edit it" ag edit "$u1" phone=13800138000
expect_exit 0 "delete another" ag delete "$u2" --reason "moved away"
expect_exit 0 "sync the edit and the delete" ag sync
expect_exit 0 "show the edited record" ag show "$u1" --json
[ "$(json_get "$T_TMP/out" 'd["rev"]')" = 2 ] && ok "... now at rev 2" ||
	fail "... now at rev 2"
pf export --format ndjson >"$T_TMP/exp"
"$PY" - "$T_TMP/exp" "$u1" "$u2" <<'PY' && ok "the platform has the edit (rev 2) and the tombstone" || fail "the platform has the edit (rev 2) and the tombstone"
import json, sys
recs = {}
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        recs[r["uuid"]] = r
a, b = recs.get(sys.argv[2]), recs.get(sys.argv[3])
ok = (a and a["rev"] == 2 and a["fields"].get("phone") == "13800138000"
      and b is not None and b["deleted"])
sys.exit(0 if ok else 1)
PY

# The feed: the device hears none of its own fast-forwards, yet its
# cursor moves past them (platform/pull.c page): a pull that walked them
# all once does not walk them again.  What another device of the grid
# sends afterwards still comes down.
top=$(sqlite3 "$PH/platform.db" "SELECT max(seq) FROM feed")
cur=$(sqlite3 "$AH/agent.db" "SELECT value FROM meta WHERE key = 'pull_cursor'")
[ -n "$top" ] && [ "$cur" = "$top" ] &&
	ok "the device's feed cursor is at the platform's last feed row ($top)" ||
	fail "the device's feed cursor is at the platform's last feed row (${cur:-none}, ${top:-none})"
AH2="$T_TMP/ag2"
if sync_enroll "$AH2" w002 &&
    u3=$("$GRIDGEN" --type person --count 1 --seed 99 |
    "$GRIDAGENT" --home "$AH2" collect person --json -) && [ -n "$u3" ] &&
    "$GRIDAGENT" --home "$AH2" sync >/dev/null 2>&1; then
	expect_exit 0 "the first device syncs again" ag sync
	ag list --json | uuids_of | grep -qx "$u3" &&
		ok "... and holds the record a second device of its grid sent" ||
		fail "... and holds the record a second device of its grid sent ($u3)"
else
	fail "a second device of the grid sends a record"
fi

agent_integrity "$AH" && ok "agent store integrity_check ok" ||
	fail "agent store integrity_check ok"
[ "$(sqlite3 "$PH/platform.db" 'PRAGMA integrity_check')" = ok ] &&
	ok "platform store integrity_check ok" || fail "platform store integrity_check ok"

done_testing
