#!/bin/sh
# test_mpa_process_policy.sh - `sealgate process -c CONF` applies the policy
# set with `sealgate user|domain|global set` (SPEC §13, F-POL-6..8, D-4):
# the external recipient whose policy requires encryption (no certificate)
# gets nothing, the internal originator an encryption-failed notification
# (N.json kind "notification", from ""), the internal recipient the message
# with the subject trigger removed; with the factory policy the output is the
# input byte for byte.
set -eu
SG=${SG_BUILD:?}/sealgate
dir=$(mktemp -d /tmp/sg-test-mpa-process-XXXXXX)
trap 'rm -rf "$dir"' EXIT
printf '[general]\ndata_dir = %s\nhostname = gw.example.com\n' "$dir" > "$dir/c.ini"
sg() { "$SG" -c "$dir/c.ini" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
py() { code=$1; shift; python3 -c "import json,sys; $code" "$@"; }

cat > "$dir/msg.eml" <<'MSG'
From: Alice <alice@example.com>
To: bob@partner.net, carol@example.com
Subject: Contract [encrypt] draft
Message-ID: <t1@example.com>

SECRET-BODY-4711
MSG

sg init >/dev/null
sg mta set relay_domains=example.com >/dev/null

# factory policy: one output, byte-identical
sg process --from alice@example.com --to bob@partner.net carol@example.com \
	--out-dir "$dir/o0" "$dir/msg.eml" >/dev/null
[ -f "$dir/o0/1.eml" ] && [ ! -e "$dir/o0/2.eml" ] || fail "factory: want exactly 1 output"
cmp -s "$dir/msg.eml" "$dir/o0/1.eml" || fail "factory: output differs from the input"

sg global set subject_trigger_enabled=true
sg domain set example.com locality=internal
sg process --from alice@example.com --to bob@partner.net carol@example.com \
	--out-dir "$dir/o1" "$dir/msg.eml" >/dev/null
[ -f "$dir/o1/2.eml" ] && [ ! -e "$dir/o1/3.eml" ] || fail "trigger: want exactly 2 outputs"
py '
m = json.load(open(sys.argv[1] + "/1.json")); n = json.load(open(sys.argv[1] + "/2.json"))
assert m == {"from": "alice@example.com", "to": ["carol@example.com"], "kind": "message"}, m
assert n == {"from": "", "to": ["alice@example.com"], "kind": "notification"}, n
' "$dir/o1" || fail "trigger: envelopes"
grep -q '^Subject: Contract draft$' "$dir/o1/1.eml" || fail "trigger not removed from the subject"
grep -q 'SECRET-BODY-4711' "$dir/o1/1.eml" || fail "internal recipient lost the body"
grep -q '^Subject: Message not sent: encryption failed' "$dir/o1/2.eml" || fail "notification subject"
grep -q 'bob@partner.net' "$dir/o1/2.eml" || fail "notification names the recipient"
grep -q '^From: .*postmaster@gw.example.com' "$dir/o1/2.eml" || fail "notification From (system_mail_from)"
grep -q 'SECRET-BODY-4711' "$dir/o1/2.eml" && fail "notification carries the content"

# a user-level mandatory recipient, no trigger in the subject: only the
# notification comes out; system_mail_from set globally is its From
sg global set subject_trigger_enabled=false system_mail_from=gateway@example.com
sg user set bob@partner.net encrypt_mode=mandatory
sed 's/ \[encrypt\]//' "$dir/msg.eml" > "$dir/msg2.eml"
sg process --from alice@example.com --to bob@partner.net --out-dir "$dir/o2" "$dir/msg2.eml" \
	>/dev/null
[ -f "$dir/o2/1.eml" ] && [ ! -e "$dir/o2/2.eml" ] || fail "mandatory: want exactly 1 output"
py 'n = json.load(open(sys.argv[1])); assert n["kind"] == "notification" and n["to"] == ["alice@example.com"], n' \
	"$dir/o2/1.json" || fail "mandatory: notification envelope"
grep -q '^From: .*gateway@example.com' "$dir/o2/1.eml" || fail "system_mail_from not used"
echo ok
