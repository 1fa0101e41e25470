#!/bin/sh
# reconcile-reference.sh - reference data to the field (issue 4 item 6): an
# admin publishes a code table entry (a new event category) and a form
# version with a new field; before syncing, the device refuses the new
# value (exit 65, naming the field); after `gridagent sync` it has fetched
# both (checked against the digests of the signed feed), collects with
# them, and the platform accepts the record at its form version.  Bad
# documents are refused on the platform and change nothing; a document
# changed after publication is refused by the device and changes nothing.
set -u
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

D="$T_TMP/docs"
mkdir -p "$D"
# the built-in event_category with one more code; event v2 with a field
"$PY" - "$GS_TOP/schema" "$D" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
c = json.load(open(src + "/codes/event_category.json"))
c["codes"].append({"code": "SA_DRONE", "label": "无人机违规飞行"})
json.dump(c, open(out + "/event_category.json", "w"), ensure_ascii=False)
short = dict(c, codes=c["codes"][1:])
json.dump(short, open(out + "/short.json", "w"), ensure_ascii=False)
f = json.load(open(src + "/forms/event.json"))
v1 = dict(f)
json.dump(v1, open(out + "/event-v1.json", "w"), ensure_ascii=False)
f["version"] = 2
f["fields"].append({"name": "weather", "label": "天气", "kind": "text",
                    "max": 20, "pii": False})
json.dump(f, open(out + "/event-v2.json", "w"), ensure_ascii=False)
bad = json.loads(json.dumps(f)); bad["version"] = 3
bad["fields"][-1]["requird"] = True
json.dump(bad, open(out + "/event-typo.json", "w"), ensure_ascii=False)
nocap = json.loads(json.dumps(f)); nocap["version"] = 3
del nocap["fields"][-1]["max"]
json.dump(nocap, open(out + "/event-nocap.json", "w"), ensure_ascii=False)
big = json.loads(json.dumps(c))
big["codes"] += [{"code": "X%06d" % i, "label": "填充" * 10} for i in range(5000)]
json.dump(big, open(out + "/big.json", "w"), ensure_ascii=False)
k = json.load(open(src + "/codes/visit_kind.json"))
k["codes"].append({"code": "DRONE_PATROL", "label": "无人机巡查"})
json.dump(k, open(out + "/visit_kind.json", "w"), ensure_ascii=False)
u = json.load(open(src + "/codes/event_urgency.json"))
u["codes"].append({"code": "LOW", "label": "缓办"})
json.dump(u, open(out + "/event_urgency.json", "w"), ensure_ascii=False)
PY

sync_platform || exit 1
sync_enroll "$AH" w001 || { fail "enroll"; done_testing; exit 1; }
ev() { ag collect event title=无人机扰民 place=小区广场 occurred_at=2026-11-20T09:00:00Z "$@"; }

# --- the platform: strict publication
expect_exit 0 "an empty listing" pf reference
grep -q 'no reference data published' "$T_TMP/out" && ok "... says nothing is published" ||
	fail "... says nothing is published"
expect_exit 0 "publish event_category with SA_DRONE" pf reference add "$D/event_category.json" --by admin1
grep -q 'published code table event_category, 32 codes' "$T_TMP/out" && ok "... 32 codes" ||
	{ fail "... 32 codes"; sed 's/^/# /' "$T_TMP/out"; }
expect_exit 0 "publish event form version 2" pf reference add "$D/event-v2.json"
expect_exit 73 "the same document twice: already published" pf reference add "$D/event-v2.json"
expect_exit 65 "a form version not above the one held is refused" pf reference add "$D/event-v1.json"
grep -q 'publish version 3' "$T_TMP/err" && ok "... saying which version to publish" ||
	fail "... saying which version to publish"
expect_exit 65 "a form with an unknown key is refused" pf reference add "$D/event-typo.json"
grep -q 'unknown key "requird"' "$T_TMP/err" && ok "... naming the key" || fail "... naming the key"
expect_exit 65 "a text field without a max length is refused" pf reference add "$D/event-nocap.json"
check "... naming the field" grep -q "weather: a text field needs a max length" "$T_TMP/err"
expect_exit 65 "a code table that drops a code is refused" pf reference add "$D/short.json"
grep -q 'code "CM_GARBAGE" is missing' "$T_TMP/err" && ok "... naming the code" ||
	{ fail "... naming the code"; sed 's/^/# /' "$T_TMP/err"; }
expect_exit 65 "an oversized document (over 256 KiB) is refused" pf reference add "$D/big.json"
check "... by its size" grep -q "big.json: a reference document is at most 262144 bytes" "$T_TMP/err"
printf '{"type": "event", "version": 3, "type": "x"}' >"$D/dup.json"
expect_exit 65 "a document with a duplicate key is refused" pf reference add "$D/dup.json"
# (That document is wrong in other ways too: the refusal must be the
# duplicate key.)
check "... for the duplicate key" grep -q "dup.json: line 1: duplicate object key" "$T_TMP/err"
pf reference --json >"$T_TMP/ref.json"
[ "$(json_get "$T_TMP/ref.json" 'len(d["published"])')" = 2 ] &&
	[ "$(json_get "$T_TMP/ref.json" 'd["held"]["forms"]["event"]')" = 2 ] &&
	[ "$(json_get "$T_TMP/ref.json" 'd["published"][0]["published_by"]')" = admin1 ] &&
	ok "reference --json: the two publications; event v2 held" ||
	fail "reference --json: the two publications; event v2 held"

# --- the device before it syncs: its built-in tables
expect_exit 65 "before sync the device refuses category=SA_DRONE" ev category=SA_DRONE urgency=NORMAL
grep -q 'category' "$T_TMP/err" && ok "... naming the field" || fail "... naming the field"
expect_exit 65 "... and the new field weather" ev category=OTHER urgency=NORMAL weather=晴
check "... which it does not know" grep -q "weather: is not a field of event" "$T_TMP/err"

# --- sync: the documents come with the feed
expect_exit 0 "gridagent sync" ag sync
ag status --json >"$T_TMP/st.json"
[ "$(json_get "$T_TMP/st.json" 'd["reference_stale"]')" = "[]" ] &&
	[ "$(json_get "$T_TMP/st.json" 'd["reference"]["forms"]["event"]')" = 2 ] &&
	[ "$(json_get "$T_TMP/st.json" 'd["reference"]["fetched"]')" = 2 ] &&
	ok "status: event v2 held, 2 documents fetched, nothing stale" ||
	{ fail "status: event v2 held, 2 documents fetched, nothing stale"; sed 's/^/# /' "$T_TMP/st.json"; }
U=$(ev category=SA_DRONE urgency=NORMAL weather=晴 2>"$T_TMP/err")
[ -n "$U" ] && ok "after sync the device collects SA_DRONE with weather" ||
	{ fail "after sync the device collects SA_DRONE with weather"; sed 's/^/# /' "$T_TMP/err"; }
[ "$(ag show "$U" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["form_version"])')" = 2 ] &&
	ok "... at form version 2" || fail "... at form version 2"
expect_exit 0 "the record syncs" ag sync
pf export --type event --format ndjson >"$T_TMP/ev.ndjson"
grep "$U" "$T_TMP/ev.ndjson" | "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["form_version"] == 2 and d["fields"]["weather"] == "晴" and d["fields"]["category"] == "SA_DRONE", d' &&
	ok "the platform accepted it at version 2 with the new field" ||
	fail "the platform accepted it at version 2 with the new field"
[ "$(pf quarantine --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] &&
	ok "nothing quarantined" || fail "nothing quarantined"

# --- a document changed after publication (store or wire): refused, nothing changes
expect_exit 0 "publish event_urgency with LOW" pf reference add "$D/event_urgency.json"
sqlite3 "$PH/platform.db" "UPDATE reference SET doc = CAST(replace(CAST(doc AS TEXT), '缓办', '篡改') AS BLOB) WHERE name = 'event_urgency'"
expect_exit 65 "sync reports the document that does not match its digest" ag sync
grep -q 'do not hash to the digest' "$T_TMP/err" && ok "... saying why" ||
	{ fail "... saying why"; sed 's/^/# /' "$T_TMP/err"; }
[ "$(wc -l <"$T_TMP/err")" -eq 1 ] && ok "... in one line (DESIGN 7)" ||
	{ fail "... in one line (DESIGN 7)"; sed 's/^/# /' "$T_TMP/err"; }
# --watch does not stop over it: the worker's saves still go up, and each
# round says which document was refused.  (The binary itself in the
# background, so that $! is the agent's pid.)
"$GRIDAGENT" --home "$AH" sync --watch --json --max-backoff 1 --interval 1 \
	--pull-interval 1 >"$T_TMP/watch.out" 2>"$T_TMP/watch.err" &
W=$!
T_PIDS="$T_PIDS $W"
i=0
while [ $i -lt 100 ] && ! grep -q 'do not hash' "$T_TMP/watch.err"; do
	sleep 0.1
	i=$((i + 1))
done
# a save made after the first refusal
UW=$(ev category=OTHER urgency=NORMAL 2>"$T_TMP/err")
i=0
while [ $i -lt 100 ]; do
	pf export --type event --format ndjson | grep -q "${UW:-none}" &&
		[ "$(grep -c 'do not hash to the digest' "$T_TMP/watch.err")" -ge 2 ] &&
		break
	sleep 0.1
	i=$((i + 1))
done
kill -0 "$W" 2>/dev/null && ok "sync --watch keeps going past a refused document" ||
	{ fail "sync --watch keeps going past a refused document"; sed 's/^/# /' "$T_TMP/watch.err"; }
[ -n "$UW" ] && pf export --type event --format ndjson | grep -q "$UW" &&
	ok "... and uploads a save made while it watches" ||
	fail "... and uploads a save made while it watches"
[ "$(grep -c 'do not hash to the digest' "$T_TMP/watch.err")" -ge 2 ] &&
	ok "... saying so each round" ||
	{ fail "... saying so each round"; sed 's/^/# /' "$T_TMP/watch.err"; }
ag status >"$T_TMP/st.txt" 2>&1
grep -q 'reference_error.*digest' "$T_TMP/st.txt" &&
	ok "... and status shows it meanwhile" ||
	{ fail "... and status shows it meanwhile"; sed 's/^/# /' "$T_TMP/st.txt"; }
kill -TERM "$W" 2>/dev/null
wait "$W"
rc=$?
[ "$rc" -eq 0 ] && ok "... and stops cleanly on SIGTERM" ||
	fail "... and stops cleanly on SIGTERM (exit $rc)"
ag status --json >"$T_TMP/st.json"
json_get "$T_TMP/st.json" 'd["reference_error"]' | grep -q 'digest' &&
	[ "$(json_get "$T_TMP/st.json" 'd["reference"]["fetched"]')" = 2 ] &&
	ok "status shows the error; still 2 documents held" ||
	fail "status shows the error; still 2 documents held"
expect_exit 65 "the device still refuses urgency=LOW" ev category=OTHER urgency=LOW
check "... as not one of its codes" grep -q 'urgency: should be one of .*, not "LOW"' "$T_TMP/err"
sqlite3 "$PH/platform.db" "UPDATE reference SET doc = CAST(replace(CAST(doc AS TEXT), '篡改', '缓办') AS BLOB) WHERE name = 'event_urgency'"
expect_exit 0 "once the platform serves the published bytes, sync succeeds" ag sync
expect_exit 0 "... and urgency=LOW is accepted" ev category=OTHER urgency=LOW
ag status --json >"$T_TMP/st.json"
[ "$(json_get "$T_TMP/st.json" 'd.get("reference_error", "")')" = "" ] &&
	ok "the error is gone from status" || fail "the error is gone from status"

# --- an oversized answer: the device reads no more than 256 KiB
expect_exit 0 "publish visit_kind with DRONE_PATROL" pf reference add "$D/visit_kind.json"
sqlite3 "$PH/platform.db" "UPDATE reference SET doc = zeroblob(300000) WHERE name = 'visit_kind'"
expect_exit 75 "sync refuses a document answer over the cap (75, kept for later)" ag sync
grep -q 'larger than 262144 bytes' "$T_TMP/err" && ok "... saying so" ||
	{ fail "... saying so"; sed 's/^/# /' "$T_TMP/err"; }
[ "$(ag status --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["reference"]["fetched"])')" = 3 ] &&
	ok "... nothing kept (3 documents held)" || fail "... nothing kept (3 documents held)"
sqlite3 "$PH/platform.db" "UPDATE reference SET doc = readfile('$D/visit_kind.json') WHERE name = 'visit_kind'"
expect_exit 0 "sync fetches it once the platform serves it" ag sync

# --- the platform restarted: the published forms load from its store
restart_platform
expect_exit 0 "sync after a platform restart" ag sync
pf export --type event --format ndjson | grep -c '"urgency":"LOW"' | grep -q 1 &&
	ok "the LOW record was accepted after the restart" ||
	fail "the LOW record was accepted after the restart"

# --- a form version the platform never published: quarantined, not guessed at
"$PY" - "$D" <<'PY'
import json, sys
f = json.load(open(sys.argv[1] + "/event-v2.json"))
f["version"] = 9
json.dump(f, open(sys.argv[1] + "/event-v9.json", "w"), ensure_ascii=False)
PY
sqlite3 "$AH/agent.db" "INSERT INTO reference_doc (digest, kind, name, version, doc, received_at) VALUES (randomblob(32), 'form', 'event', 9, readfile('$D/event-v9.json'), 0)"
U9=$(ev category=OTHER urgency=NORMAL 2>"$T_TMP/err")
[ -n "$U9" ] && ok "a device holding an event v9 collects with it" ||
	{ fail "a device holding an event v9 collects with it"; sed 's/^/# /' "$T_TMP/err"; }
ag sync >/dev/null 2>&1
pf quarantine --json >"$T_TMP/q.json"
"$PY" - "$T_TMP/q.json" "$U9" <<'PY' && ok "the platform quarantines it: unknown_form_version, naming the version" || fail "the platform quarantines it: unknown_form_version, naming the version"
import json, sys
q = [x for x in json.load(open(sys.argv[1])) if x["uuid"] == sys.argv[2]]
assert len(q) == 1, q
r = q[0]["reasons"][0]
assert r["rule"] == "unknown_form_version" and "version 9" in r["message"], r
PY

# --- the device's fetch route is signed like pull
now=$(($(date +%s) * 1000))
zero=$(printf '%0128d' 0)
dg=$(json_get "$T_TMP/ref.json" 'd["published"][0]["digest"]')
code=$(curl -s -o /dev/null -w '%{http_code}' "$PF_URL/v1/devices/$DEV_ID/reference/$dg?since=0&t=$now&sig=$zero")
[ "$code" = 401 ] && ok "an unsigned reference fetch is refused (401)" ||
	fail "an unsigned reference fetch is refused (401, got $code)"
check "agent store intact" agent_integrity "$AH"
done_testing
