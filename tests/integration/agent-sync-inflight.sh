#!/bin/sh
# agent-sync-inflight.sh - two batches of a device under way at once
# (?follows=SEQ, docs/PROTOCOL.md): the platform advertises "in_flight" 2;
# the agent sends batch N+1 on a second connection before N is answered;
# the platform commits them in seq order.  With the platform told to
# answer the first three of those "too early" (GRIDPLATFORM_FAULT), the
# agent sends each again after the batch before it, without counting a
# failed attempt: every record arrives exactly once, every batch acked at
# its first counted attempt.  Through gsproxy, which relays connections
# at the same time, with a delay per chunk (a slow link): the same.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

GRIDPLATFORM_FAULT=too-early=3
export GRIDPLATFORM_FAULT
sync_ready
unset GRIDPLATFORM_FAULT

"$PY" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1] + "/v1/health").read().decode())' "$PF_URL" >"$T_TMP/health"
[ "$(json_get "$T_TMP/health" 'd["limits"]["in_flight"]')" = 2 ] &&
	ok "the platform advertises in_flight 2" ||
	fail "the platform advertises in_flight 2"

N=3000
collect_people $N 11 && ok "collect $N people" || fail "collect $N people"
expect_exit 0 "sync --json exits 0" ag sync --json --batch-records 150
cp "$T_TMP/out" "$T_TMP/sum"
[ "$(json_get "$T_TMP/sum" 'd["acked_records"]')" = $N ] &&
	[ "$(json_get "$T_TMP/sum" 'd["acked_batches"]')" = 20 ] &&
	ok "all $N records acked in 20 batches" ||
	fail "all $N records acked in 20 batches ($(cat "$T_TMP/sum"))"

agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
[ "$(wc -l <"$T_TMP/p")" -eq $N ] && cmp -s "$T_TMP/a" "$T_TMP/p" &&
	ok "the platform holds exactly the agent's $N uuids" ||
	fail "the platform holds exactly the agent's $N uuids"
[ -z "$(uniq -d "$T_TMP/p")" ] && ok "no uuid twice" || fail "no uuid twice"

log="$PH/serve.log"
early=$(grep -c 'refused: too_early.*GRIDPLATFORM_FAULT' "$log")
real=$(grep 'refused: too_early' "$log" | grep -vc GRIDPLATFORM_FAULT || true)
echo "# batches told too early besides the three: $real"
ahead=$(grep -c 'quarantined (sent ahead)' "$log")
[ "$early" -eq 3 ] && ok "three batches were told too early" ||
	fail "three batches were told too early ($early)"
[ "$ahead" -ge 5 ] && ok "batches were committed after being sent ahead ($ahead)" ||
	fail "batches were committed after being sent ahead ($ahead)"
# Commits in seq order: the platform's log lists seq 1, 2, ... 20.
grep -o 'seq [0-9]* from device' "$log" | awk '{ print $2 }' >"$T_TMP/seqs"
seq 1 20 | cmp -s - "$T_TMP/seqs" && ok "committed in seq order" ||
	fail "committed in seq order ($(tr '\n' ' ' <"$T_TMP/seqs"))"
att=$(sqlite3 "$AH/agent.db" 'SELECT max(attempts) FROM outbox')
[ "$att" = 1 ] && ok "no batch has a failed attempt counted" ||
	fail "no batch has a failed attempt counted (max $att)"

# A slow link: gsproxy delays every chunk; connections go at once.
counting_proxy "$T_TMP/px.stats" --delay-ms 20
px=$PX_URL
collect_people 1000 12 >/dev/null
expect_exit 0 "sync through a slow proxy" ag sync --json --batch-records 100 \
	--platform "$px"
[ "$(json_get "$T_TMP/out" 'd["acked_records"]')" = 1000 ] &&
	ok "... 1000 more records acked" || fail "... 1000 more records acked"
platform_uuids "$T_TMP/p2"
agent_uuids "$T_TMP/a2"
[ "$(wc -l <"$T_TMP/p2")" -eq $((N + 1000)) ] && cmp -s "$T_TMP/a2" "$T_TMP/p2" &&
	ok "the platform holds exactly the agent's $((N + 1000)) uuids" ||
	fail "the platform holds exactly the agent's $((N + 1000)) uuids"
# Nothing to send: one health probe, the heartbeat and one pull page, on
# one kept-alive connection (were 5 requests on 4 connections: the pull
# asked the platform's time twice more, and body-less answers closed
# theirs).  --watch makes such a pass every --pull-interval.
sleep 0.2
c0=$(awk '$1 == "connections" { print $2 }' "$T_TMP/px.stats")
expect_exit 0 "an empty sync through the proxy" ag sync --json --platform "$px"
[ "$(json_get "$T_TMP/out" 'd["requests"]')" = 3 ] &&
	ok "... makes 3 requests" ||
	fail "... makes 3 requests ($(json_get "$T_TMP/out" 'd["requests"]'))"
sleep 0.2
c1=$(awk '$1 == "connections" { print $2 }' "$T_TMP/px.stats")
[ $((c1 - c0)) -eq 1 ] && ok "... on one connection" ||
	fail "... on one connection ($((c1 - c0)))"
# --in-flight 1: one at a time, nothing sent ahead.
expect_exit 64 "--in-flight 3 is refused" ag sync --in-flight 3
expect_exit 64 "--in-flight 0 is refused" ag sync --in-flight 0
ahead0=$(grep -c '(sent ahead)' "$log")
collect_people 500 13 >/dev/null
expect_exit 0 "sync --in-flight 1" ag sync --json --batch-records 100 \
	--in-flight 1
[ "$(json_get "$T_TMP/out" 'd["acked_records"]')" = 500 ] &&
	[ "$(grep -c '(sent ahead)' "$log")" -eq "$ahead0" ] &&
	ok "... 500 more acked, none sent ahead" ||
	fail "... 500 more acked, none sent ahead"
[ "$(pf export --format ndjson | wc -l)" -eq $((N + 1500)) ] &&
	ok "the platform holds $((N + 1500)) records" ||
	fail "the platform holds $((N + 1500)) records"
agent_integrity "$AH" && ok "agent store integrity_check ok" ||
	fail "agent store integrity_check ok"

done_testing
