#!/bin/sh
# test_policy_cli.sh - the `sealgate user|domain|global|policy` commands as an
# administrator runs them (SPEC §13): exit codes, refusals with a message on
# stderr, show --json (every property -> {"value","level"}, secrets *** unless
# --reveal), list --json, policy explain (text and --json).
set -eu
SG=${SG_BUILD:?}/sealgate
dir=$(mktemp -d /tmp/sg-test-policy-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
printf '[general]\ndata_dir = %s\n' "$dir" > "$dir/c.ini"
sg() { "$SG" -c "$dir/c.ini" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# refused: non-zero exit and a message naming $2 on stderr
refused() {
	want=$1; shift
	if sg "$@" >"$dir/out" 2>"$dir/err"; then fail "accepted: $*"; fi
	grep -q -- "$want" "$dir/err" || fail "'$*': stderr lacks '$want': $(cat "$dir/err")"
}
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

sg init >/dev/null
sg user add Alice@Example.COM
sg user set alice@example.com locality=internal password=TopSecret1 smime_max_size=1M
sg domain set '*.example.com' encrypt_mode=mandatory
sg global set smime_strict=true

# show --json: every property, value + level, secrets hidden
sg user show alice@example.com --json > "$dir/show.json"
jq_py '
from_cat = 68  # SPEC §11 rows + smime_signing_mode (F-SMIME-2 opaque)
assert len(d) == from_cat, len(d)
assert all(set(v) >= {"value", "level"} for v in d.values())
assert d["locality"] == {"value": "internal", "level": "user", "from": "alice@example.com"}, d["locality"]
assert d["password"]["value"] == "***" and d["password"]["level"] == "user"
assert d["smime_max_size"]["value"] == 1048576
assert d["encrypt_mode"]["value"] == "mandatory" and d["encrypt_mode"]["level"] == "wildcard"
assert d["smime_strict"] == {"value": True, "level": "global"}
assert d["pdf_max_size"] == {"value": 26214400, "level": "factory"}
assert d["password_id"] == {"value": None, "level": "factory"}
' < "$dir/show.json" || fail "user show --json"
grep -q TopSecret1 "$dir/show.json" && fail "secret printed without --reveal"
sg user show alice@example.com --json --reveal | jq_py 'assert d["password"]["value"] == "TopSecret1"' \
	|| fail "--reveal"
sg user show alice@example.com | grep -q '^password  *\*\*\*$' || fail "text show hides secrets"
sg user show alice@example.com | grep -q '^encrypt_mode .*(inherited: wildcard \*\.example\.com)' \
	|| fail "text show marks inherited values"
sg global show --json | jq_py 'assert d["smime_strict"]["level"] == "global"; assert d["server_secret"]["value"] == "***"' \
	|| fail "global show"
sg domain show '*.example.com' --json | jq_py 'assert d["encrypt_mode"]["level"] == "wildcard"' \
	|| fail "domain show"

# refusals
refused "unknown property 'colour'" user set bob@example.com colour=red
refused "smime_allowed" user set bob@example.com smime_allowed=perhaps
refused "global level" domain set example.com portal_base_url=https://x.example/p
refused "global level" user set bob@example.com crl_required=true
refused "missing closing parenthesis" user set bob@example.com 'subject_trigger=(x' subject_trigger_is_regex=true
refused "NAME=VALUE" user set bob@example.com locality
refused "still has users" domain delete '*.example.com'
refused "does not exist" user delete nobody@example.com
refused "already exists" user add alice@example.com
sg user list --json | jq_py 'assert [u["name"] for u in d] == ["alice@example.com"], d' \
	|| fail "refused changes left objects behind"

# list with search and paging
for i in 1 2 3; do sg user add "u$i@list.example"; done
sg user list list --limit 2 --json | jq_py 'assert [u["name"] for u in d] == ["u1@list.example", "u2@list.example"]' \
	|| fail "list --limit"
sg user list list --limit 2 --offset 2 --json | jq_py 'assert [u["name"] for u in d] == ["u3@list.example"]' \
	|| fail "list --offset"
sg domain list --json | jq_py 'assert d[0]["name"] == "*.example.com" and d[0]["properties"] == 1' \
	|| fail "domain list"
sg user unset alice@example.com locality
sg user show alice@example.com --json | jq_py 'assert d["locality"]["level"] == "factory"' || fail "unset"

# policy explain: From header of the file beats --from; subject trigger
sg global set subject_trigger_enabled=true
printf 'From: Carol <carol@corp.example>\r\nSubject: report [encrypt]\r\n\r\nhi\r\n' > "$dir/m.eml"
sg policy explain --json --from bounce@corp.example --to x@out.example --to y@out.example \
	--pdf-available "$dir/m.eml" > "$dir/ex.json"
jq_py '
assert d["originator"] == "carol@corp.example" and d["origin"] == "from"
assert d["subject_trigger"] is True and d["subject"] == "report"
r = d["recipients"]
assert [x["method"] for x in r] == ["pdf", "pdf"], r
assert r[0]["encrypt"] == "required" and "subject_trigger" in r[0]["why"]
assert r[0]["group"] != r[1]["group"] and d["groups"] == 2
assert r[0]["properties"]["encrypt_mode"]["level"] == "factory"
' < "$dir/ex.json" || fail "policy explain --json"
sg policy explain --from a@corp.example --to alice@example.com > "$dir/ex.txt"
grep -q 'decision: encrypt=required method=none' "$dir/ex.txt" || fail "explain text: $(cat "$dir/ex.txt")"
grep -q 'why: recipient_mandatory' "$dir/ex.txt" || fail "explain why"
refused "usage" policy explain --from a@b.example
sg policy properties --json | jq_py 'assert len(d) == 68 and d[0]["name"] == "locality"' || fail "properties"
echo "ok"
