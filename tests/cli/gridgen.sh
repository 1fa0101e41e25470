#!/bin/sh
# gridgen.sh - the synthetic data generator: deterministic output, --count,
# --type, --bad, and usage errors (exit 64).
. "$GS_TOP/tests/lib.sh"
: "${GRIDGEN:?}"
G=$GRIDGEN
D=$T_TMP

expect_exit 0 "--version" "$G" --version
grep -q '^gridgen ' "$T_TMP/out" && ok "--version prints the name" ||
	fail "--version prints the name"
expect_exit 0 "--help" "$G" --help
grep -q '^usage: gridgen' "$T_TMP/out" && ok "--help prints usage" ||
	fail "--help prints usage"

# Deterministic: the same seed gives the same bytes, another seed differs.
for t in person house org event visit; do
	"$G" --seed 42 --count 200 --type "$t" >"$D/a.$t" &&
		"$G" --type "$t" --count 200 --seed 42 >"$D/b.$t" &&
		cmp -s "$D/a.$t" "$D/b.$t" && ok "$t: same seed, same bytes" ||
		fail "$t: same seed, same bytes"
	"$G" --seed 43 --count 200 --type "$t" >"$D/c.$t"
	if cmp -s "$D/a.$t" "$D/c.$t"; then
		fail "$t: another seed, other bytes"
	else
		ok "$t: another seed, other bytes"
	fi
	n=$(wc -l <"$D/a.$t")
	[ "$n" -eq 200 ] && ok "$t: --count 200 gives 200 lines" ||
		fail "$t: --count 200 gives $n lines"
done

# Defaults: 10 person records; each line is one JSON object.
"$G" >"$D/def"
[ "$(wc -l <"$D/def")" -eq 10 ] && ok "default count is 10" ||
	fail "default count is 10"
grep -q '"pop_type"' "$D/def" && ok "default type is person" ||
	fail "default type is person"
bad=$(grep -cv '^{.*}$' "$D/def")
[ "$bad" -eq 0 ] && ok "one object per line" || fail "one object per line"
grep -q '"id_number":"[0-9]\{17\}[0-9X]"' "$D/def" &&
	ok "persons carry 18-character id numbers" ||
	fail "persons carry 18-character id numbers"
"$G" --count 0 >"$D/zero" && [ ! -s "$D/zero" ] &&
	ok "--count 0 writes nothing" || fail "--count 0 writes nothing"

# The bad catalogue: every line names the rule and the field.
"$G" --bad >"$D/bad"
n=$(wc -l <"$D/bad")
r=$(grep -c '"rule":"[a-z_0-9]*","field":"[a-z_0-9]*"}$' "$D/bad")
[ "$n" -gt 40 ] && [ "$n" -eq "$r" ] &&
	ok "--bad: $n cases, each with rule and field" ||
	fail "--bad: $n lines, $r with rule and field"
for rule in check_digit date length charset province sex_mismatch \
	required control_char utf8 org_code coord_sys format enum duplicate \
	unknown_field future_date order range type; do
	grep -q "\"rule\":\"$rule\"" "$D/bad" && ok "--bad has a $rule case" ||
		fail "--bad has a $rule case"
done
"$G" --bad --type org >"$D/badorg"
# (An empty output has no other type either: it must hold org cases.)
if ! grep -q '"type":"org"' "$D/badorg" || grep -qv '"type":"org"' "$D/badorg"; then
	fail "--bad --type org: only org cases"
else
	ok "--bad --type org: only org cases"
fi
"$G" --bad --count 100 >"$D/bad100"
[ "$(wc -l <"$D/bad100")" -eq 100 ] && ok "--bad --count 100 cycles" ||
	fail "--bad --count 100 cycles"

# Usage errors exit 64 and say what is wrong.
expect_exit 64 "unknown option" "$G" --frobnicate
grep -q 'unknown argument' "$T_TMP/err" && ok "names the unknown option" ||
	fail "names the unknown option"
expect_exit 64 "--count not a number" "$G" --count ten
expect_exit 64 "--count negative" "$G" --count -1
expect_exit 64 "--count without value" "$G" --count
expect_exit 64 "--seed not a number" "$G" --seed 0x10
expect_exit 64 "--type unknown" "$G" --type grid
grep -q 'unknown type "grid"' "$T_TMP/err" && ok "names the unknown type" ||
	fail "names the unknown type"

# Output errors are reported (74), not silently truncated.
if [ -w /dev/full ]; then
	"$G" --count 1000 >/dev/full 2>"$D/fullerr"
	rc=$?
	[ "$rc" -eq 74 ] && ok "write error exits 74" ||
		fail "write error exits 74 (got $rc)"
fi

done_testing
