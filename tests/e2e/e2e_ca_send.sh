#!/bin/bash
# e2e_ca_send - F-CA-8 end to end: `sealgate ca send THUMBPRINT --to ADDR --sms`
# puts the PFX email (template pfx_email, PKCS#12 attached, own-mail marker,
# envelope <>) into the spool and the password into the SMS queue; the running
# daemon delivers both; the delivered PKCS#12 opens with the password from the
# SMS and holds the user's certificate and key. Then F-CA-5: with
# smime_auto_request_certificate, a message from a user without a signing
# certificate makes the built-in CA issue one, and the message leaves signed.
. "$(dirname "$0")/harness/lib.sh"
sg_begin ca-send
sg_skip_unless_built

sg_recv_start recv
SG_NEXT_HOP=127.0.0.1:${SG_PORTS[recv]}
sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"
sg_cli sms settings set transport=file "file.path=$T/sms.out" >/dev/null || sg_fail "sms settings"
sg_cli ca create --name E2E --key p256 >/dev/null || sg_fail "ca create"
sg_cli ca settings ca_email=ca@corp.e2e.test >/dev/null || sg_fail "ca settings"
th=$(sg_cli ca issue dave@corp.e2e.test | tail -1)
[[ $th =~ ^[0-9a-f]{128}$ ]] || sg_fail "ca issue: no thumbprint ($th)"
sg_cli user add dave@corp.e2e.test >/dev/null
sg_cli user set dave@corp.e2e.test sms_phone_number=+31612345678 >/dev/null || sg_fail "phone"
sg_daemon_start
sg_cli ca send "$th" --to dave@corp.e2e.test --sms >"$T/send.out" 2>&1 || sg_fail "ca send: $(cat "$T/send.out")"

sg_wait_msgs "$T/recv" 1 30
sg_wait_until 30 "the password SMS" grep -qs '+31612345678' "$T/sms.out"
# the password is the rest of the line (its alphabet includes - and _)
pw=$(sed -n 's/.*certificate of dave@corp\.e2e\.test: //p' "$T/sms.out" | head -1)
[ -n "$pw" ] || sg_fail "no password in the SMS: $(cat "$T/sms.out")"
j=$(ls "$T/recv"/*.json | head -1)
$SG_PY - "$j" "${j%.json}.eml" "$T/got.p12" <<'PY' || sg_fail "PFX email malformed"
import json, sys, email
meta = json.load(open(sys.argv[1]))
assert meta["from"] == "", meta["from"]
assert meta["to"] == ["dave@corp.e2e.test"], meta["to"]
m = email.message_from_binary_file(open(sys.argv[2], "rb"))
assert m["X-Sealgate-Marker"], "no own-mail marker"
assert "ca@corp.e2e.test" in m["From"], m["From"]
parts = [p for p in m.walk() if p.get_content_type() == "application/x-pkcs12"]
assert len(parts) == 1, [p.get_content_type() for p in m.walk()]
open(sys.argv[3], "wb").write(parts[0].get_payload(decode=True))
PY
openssl pkcs12 -in "$T/got.p12" -passin "pass:$pw" -nodes -out "$T/got.pem" 2>"$T/p12.err" \
	|| openssl pkcs12 -legacy -in "$T/got.p12" -passin "pass:$pw" -nodes -out "$T/got.pem" 2>>"$T/p12.err" \
	|| sg_fail "PKCS#12 does not open with the SMS password: $(cat "$T/p12.err")"
grep -q 'PRIVATE KEY' "$T/got.pem" || sg_fail "no private key in the PKCS#12"
openssl x509 -in "$T/got.pem" -noout -ext subjectAltName | grep -q 'dave@corp.e2e.test' \
	|| sg_fail "certificate of the PKCS#12 is not dave's"
# a wrong password does not open it
if openssl pkcs12 -in "$T/got.p12" -passin pass:wrong -nodes -out /dev/null 2>/dev/null; then
	sg_fail "PKCS#12 opens with a wrong password"
fi

# F-CA-5 auto request: erin has no certificate; her mail to an external
# recipient is signed with one the default CA issues on the fly.
sg_cli user add erin@corp.e2e.test >/dev/null
sg_cli user set erin@corp.e2e.test smime_auto_request_certificate=true >/dev/null || sg_fail "auto request property"
out=$(sg_swaks --server "127.0.0.1:$SG_PORT" --from erin@corp.e2e.test --to partner@ext.e2e.test \
	--header "From: erin@corp.e2e.test" --header "Message-Id: <auto-1@e2e.test>" --body "please sign me")
sg_assert_match "$out" '250 2\.0\.0 Ok: queued as' "message accepted"
sg_wait_msgs "$T/recv" 2 30
f=$(grep -l 'auto-1@e2e.test' "$T/recv"/*.eml | head -1)
[ -n "$f" ] || sg_fail "signed message not delivered"
grep -qi 'multipart/signed' "$f" || sg_fail "message not signed after the auto request"
sg_assert_file_has "$SG_LOG" 'signing certificate issued for <erin@corp.e2e.test>' "auto request logged"
sg_cli cert list --email erin@corp.e2e.test --json | grep -q thumbprint || sg_fail "no certificate for erin in the store"
openssl cms -verify -noverify -in "$f" -out "$T/verified.txt" 2>"$T/verify.err" || sg_fail "signature does not verify: $(cat "$T/verify.err")"
grep -q 'please sign me' "$T/verified.txt" || sg_fail "signed content differs"
sg_daemon_stop
