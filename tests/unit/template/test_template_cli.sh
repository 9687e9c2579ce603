#!/bin/sh
# test_template_cli.sh - F-TPL-1 through the built binary: `sealgate template
# list|show|set|reset` as an administrator runs them (SPEC §13): levels and
# inheritance, --json, validation refusals with line/column on stderr and a
# non-zero exit, global-only templates, stdin input, --raw round trip,
# --sample rendering.
set -eu
SG=${SG_BUILD:?}/sealgate
dir=$(mktemp -d /tmp/sg-test-template-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
printf '[general]\ndata_dir = %s\n' "$dir" > "$dir/c.ini"
sg() { "$SG" -c "$dir/c.ini" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
refused() {
	want=$1; shift
	if sg "$@" >"$dir/out" 2>"$dir/err"; then fail "accepted: $*"; fi
	grep -q -- "$want" "$dir/err" || fail "'$*': stderr lacks '$want': $(cat "$dir/err")"
}
py() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

sg init >/dev/null
sg domain add '*.example.com'

# list: every template of the guide, all factory at first
sg template list --json > "$dir/list.json"
py '
names = [t["name"] for t in d]
assert len(d) == 17, len(d)
for n in ("encrypted_pdf", "encrypted_pdf_sms", "encrypted_pdf_otp", "encrypted_pdf_otp_invite",
          "encryption_failed", "encryption_notification", "passwords_notification",
          "sms_password", "sms_pfx_password", "pfx_email", "dlp_warning", "dlp_quarantine",
          "dlp_block", "dlp_error", "dlp_release_notification", "dlp_delete_notification",
          "dlp_expire_notification"):
    assert n in names, n
assert all(t["level"] == "factory" for t in d)
g = {t["name"]: t["global_only"] for t in d}
assert g["pfx_email"] and g["sms_pfx_password"] and not g["encryption_failed"]
assert {t["name"]: t["kind"] for t in d}["sms_password"] == "sms"
' < "$dir/list.json" || fail "list --json"

# set at each level; show names the level it comes from
mk() { printf 'From: ${from}\nTo: ${to}\nSubject: [%s] ${subject}\n\nReason: ${reason}\n' "$1"; }
mk global > "$dir/g.txt"; mk wildcard > "$dir/w.txt"; mk domain > "$dir/d.txt"; mk user > "$dir/u.txt"
sg template set encryption_failed "$dir/g.txt"
sg template set encryption_failed --domain '*.Example.com' "$dir/w.txt"
sg template set encryption_failed --domain sub.example.com "$dir/d.txt"
sg template set encryption_failed --user Alice@Sub.Example.com "$dir/u.txt"
lvl() { sg template show encryption_failed "$@" --json | py 'print(d["level"], d["owner"])'; }
[ "$(lvl --user alice@sub.example.com)" = "user user:alice@sub.example.com" ] || fail "user level"
[ "$(lvl --user bob@sub.example.com)" = "domain domain:sub.example.com" ] || fail "domain level"
[ "$(lvl --domain sub.example.com)" = "domain domain:sub.example.com" ] || fail "domain show"
[ "$(lvl --user carol@x.example.com)" = "wildcard wildcard:*.example.com" ] || fail "wildcard level"
[ "$(lvl --user dave@example.org)" = "global global" ] || fail "global level"
[ "$(lvl)" = "global global" ] || fail "global show"
sg template show encryption_failed --user alice@sub.example.com --raw > "$dir/back.txt"
cmp -s "$dir/back.txt" "$dir/u.txt" || fail "--raw is not the stored text"
sg template show encryption_failed --user alice@sub.example.com | grep -q '^level: user (user:alice@sub.example.com)$' \
	|| fail "text show names the level"
sg template list --user alice@sub.example.com --json | py '
t = {x["name"]: x["level"] for x in d}
assert t["encryption_failed"] == "user" and t["dlp_block"] == "factory", t' || fail "list --user"
sg template show encryption_failed --json | py '
v = {x["name"]: x["type"] for x in d["variables"]}
assert v == {"from": "text", "to": "text", "subject": "text", "mail_id": "text",
             "recipients": "list", "reason": "text"}, v' || fail "show --json variables"
sg template show passwords_notification --json | py '
p = [x for x in d["variables"] if x["name"] == "passwords"][0]
assert p["type"] == "records" and p["fields"] == ["recipient", "password", "password_id", "expires"]' \
	|| fail "records fields"

# --sample renders a parseable message with the level's subject
sg template show encryption_failed --user alice@sub.example.com --sample > "$dir/sample.eml"
python3 - "$dir/sample.eml" <<'PY' || fail "--sample message"
import sys, email, email.policy
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
assert m["Subject"] == "[user] Quarterly report", m["Subject"]
assert m["Message-Id"] and m["Date"] and m["MIME-Version"] == "1.0"
assert "Reason: no valid certificate" in m.get_content()
PY

# stdin, UTF-8 subject
printf 'From: ${from}\nTo: ${to}\nSubject: Verschlüsselung fehlgeschlagen: ${subject}\n\nx\n' \
	| sg template set encryption_failed --domain example.org -
sg template show encryption_failed --user e@example.org --sample | grep -qi '^Subject: =?utf-8?' \
	|| fail "UTF-8 subject not RFC 2047-encoded"

# refusals: non-zero exit, message on stderr, nothing changed
printf 'From: ${from}\nTo: ${to}\nSubject: ${subjekt}\n\nx\n' > "$dir/bad.txt"
refused "line 3, column 10: unknown variable 'subjekt'" template set encryption_failed "$dir/bad.txt"
printf 'From: ${from}\nTo: ${to}\nSubject: s\n\n<#if reason>x\n' > "$dir/bad2.txt"
refused "<#if> without </#if>" template set encryption_failed "$dir/bad2.txt"
printf 'To: ${to}\nSubject: s\n\nx\n' > "$dir/bad3.txt"
refused "no From field" template set encryption_failed "$dir/bad3.txt"
[ "$(lvl)" = "global global" ] || fail "refused set changed something"
cmp -s "$(sg template show encryption_failed --raw > "$dir/g2.txt"; echo "$dir/g2.txt")" "$dir/g.txt" \
	|| fail "global text changed by a refused set"
printf 'x%.0s' $(seq 1 170) > "$dir/long.txt"; printf ' ${password}\n' >> "$dir/long.txt"
refused "at most 160" template set sms_password "$dir/long.txt"
printf 'PFX for ${email}: ${password}\n' > "$dir/pfx.txt"
refused "only be set at the global level" template set sms_pfx_password --domain example.com "$dir/pfx.txt"
sg template set sms_pfx_password "$dir/pfx.txt"
[ "$(sg template show sms_pfx_password --user a@example.com --json | py 'print(d["level"])')" = global ] \
	|| fail "global-only template from global"
refused "unknown template 'nope'" template show nope
refused "usage" template set encryption_failed
refused "" template set encryption_failed --user 'not an address' "$dir/g.txt"
refused "No such file" template set encryption_failed "$dir/missing.txt"

# reset goes back one level at a time
sg template reset encryption_failed --user alice@sub.example.com | grep -q 'reset' || fail "reset user"
[ "$(lvl --user alice@sub.example.com)" = "domain domain:sub.example.com" ] || fail "after user reset"
sg template reset encryption_failed --user alice@sub.example.com | grep -q 'was not set' || fail "reset twice"
sg template reset encryption_failed --domain sub.example.com >/dev/null
sg template reset encryption_failed --domain '*.example.com' >/dev/null
[ "$(lvl --user alice@sub.example.com)" = "global global" ] || fail "after domain resets"
sg template reset encryption_failed >/dev/null
[ "$(lvl --user alice@sub.example.com)" = "factory " ] || fail "after global reset"
echo "test_template_cli: ok"
