#!/bin/bash
# e2e_pdf - PDF encryption through the real daemon (postfix mode, Python
# receiver as the next hop), policy set with `sealgate user/domain set`:
#  1. static password: alice@corp -> bob@ext (encrypt_mode mandatory, no
#     certificate): the receiver gets the encrypted_pdf carrier from alice
#     with no content in clear; its PDF passes `qpdf --check`, opens with
#     `pdftotext -upw` showing the headers and the body (also CJK and
#     Arabic), fails without and with a wrong password, and `pdfdetach`
#     extracts the attachment byte for byte;
#  2. SMS: -> carol@ext (phone number stored): the password SMS leaves
#     through the file transport and opens the delivered PDF;
#  3. send to originator: frank@corp (password_send_to_originator) ->
#     dave@ext: frank gets the passwords notification (envelope <>) whose
#     password opens dave's PDF;
#  4. OTP invite: -> erin@ext (otp_enabled, portal_enabled, auto invite, no
#     portal password): the encrypted_pdf_otp_invite carrier holds the
#     invitation link <portal_base_url>/invite?p=invite&r=&i=&e=&h= whose
#     MAC, recomputed here with Python's hmac from the format in pdf.h and
#     the server secret set below, matches, for erin, the carrier's password
#     ID and an expiry 7 days ahead.
. "$(dirname "$0")/harness/lib.sh"
sg_begin pdf
sg_skip_unless_built

sg_recv_start sink
SG_NEXT_HOP=127.0.0.1:${SG_PORTS[sink]}
sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"
sg_cli sms settings set transport=file "file.path=$T/sms.out" >>"$T/cli.log" 2>&1 ||
	sg_fail "sms settings"
sg_cli domain set corp.e2e.test locality=internal >>"$T/cli.log" 2>&1 || sg_fail "domain corp"
sg_cli domain set ext.e2e.test encrypt_mode=mandatory >>"$T/cli.log" 2>&1 || sg_fail "domain ext"
sg_cli user set bob@ext.e2e.test password=E2e-Static-Pass-9 >>"$T/cli.log" 2>&1 ||
	sg_fail "user set bob"
sg_cli user set carol@ext.e2e.test sms_phone_number=+31612345678 >>"$T/cli.log" 2>&1 ||
	sg_fail "user set carol"
sg_cli user set frank@corp.e2e.test password_send_to_originator=true >>"$T/cli.log" 2>&1 ||
	sg_fail "user set frank"
E2E_SECRET=e2e-server-secret-0123456789
sg_cli global set server_secret=$E2E_SECRET portal_base_url=https://portal.e2e.test/portal/ \
	>>"$T/cli.log" 2>&1 || sg_fail "global set server_secret"
sg_cli user set erin@ext.e2e.test otp_enabled=true portal_enabled=true portal_auto_invite=true \
	>>"$T/cli.log" 2>&1 || sg_fail "user set erin"
sg_mta_set relay_domains=corp.e2e.test
sg_daemon_start

# find_msg TEXT - the delivered .eml holding TEXT
find_msg() { grep -l -- "$1" "$T/sink"/*.eml 2>/dev/null | head -1; }

# pdf_out EML OUT - the application/pdf part of EML into OUT (exactly one)
pdf_out() {
	$SG_PY - "$1" "$2" <<'PY' || sg_fail "no single PDF in $1"
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
parts = [p for p in m.walk() if p.get_content_type() == "application/pdf"]
assert len(parts) == 1, [p.get_content_type() for p in m.walk()]
open(sys.argv[2], "wb").write(parts[0].get_payload(decode=True))
PY
}

# check_pdf PDF PASSWORD WANT... - qpdf --check, pdftotext with the password
# shows every WANT, without or with a wrong password it fails
check_pdf() {
	local pdf=$1 pw=$2 w
	shift 2
	qpdf --check --password="$pw" "$pdf" >"$T/qpdf.log" 2>&1 ||
		sg_fail "qpdf --check $pdf: $(tail -3 "$T/qpdf.log")"
	grep -q 'R = 6' "$T/qpdf.log" || qpdf --show-encryption --password="$pw" "$pdf" |
		grep -q 'R = 6' || sg_fail "$pdf is not AES-256 (R6)"
	pdftotext -enc UTF-8 -upw "$pw" "$pdf" "$T/pdf.txt" 2>"$T/pdftotext.err" ||
		sg_fail "pdftotext -upw: $(cat "$T/pdftotext.err")"
	for w in "$@"; do
		grep -qF -- "$w" "$T/pdf.txt" || sg_fail "PDF text lacks '$w': $(head -20 "$T/pdf.txt")"
	done
	if pdftotext "$pdf" - >/dev/null 2>&1; then sg_fail "$pdf opens without a password"; fi
	if pdftotext -upw wrong-password "$pdf" - >/dev/null 2>&1; then
		sg_fail "$pdf opens with a wrong password"
	fi
}

# --- 1. static password, with an attachment, CJK and Arabic text
head -c 3000 /dev/urandom >"$T/blob.bin"
{
	printf 'From: Alice <alice@corp.e2e.test>\r\nTo: bob@ext.e2e.test\r\n'
	printf 'Subject: contract draft\r\nMessage-ID: <pdf-static@e2e.test>\r\n'
	printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
	printf -- '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n'
	printf 'Content-Transfer-Encoding: 8bit\r\n\r\n'
	printf 'Dear Bob, PDF-SECRET-1\r\n\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n'
	printf '\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\r\n\r\n'
	printf -- '--b1\r\nContent-Type: application/octet-stream\r\n'
	printf 'Content-Disposition: attachment; filename="blob.bin"\r\n'
	printf 'Content-Transfer-Encoding: base64\r\n\r\n'
	base64 "$T/blob.bin" | sed 's/$/\r/'
	printf -- '--b1--\r\n'
} >"$T/static.eml"
sg_swaks --server "127.0.0.1:$SG_PORT" --from alice@corp.e2e.test --to bob@ext.e2e.test \
	--data "@$T/static.eml" >"$T/swaks-static.txt" ||
	sg_fail "swaks static: $(tail -3 "$T/swaks-static.txt")"
sg_wait_until 60 "the PDF carrier for bob" sh -c \
	"grep -l 'application/pdf' '$T/sink'/*.eml 2>/dev/null | xargs -r grep -l 'To: bob@ext.e2e.test' | grep -q ."
got=$(grep -l 'application/pdf' "$T/sink"/*.eml | xargs grep -l 'To: bob@ext.e2e.test' | head -1)
if grep -q 'PDF-SECRET-1' "$got"; then sg_fail "the content is in clear in the carrier"; fi
grep -q 'Use the password you received earlier' "$got" || sg_fail "not the encrypted_pdf template"
$SG_PY - "${got%.eml}.json" <<'PY' || sg_fail "carrier envelope"
import json, sys
meta = json.load(open(sys.argv[1]))
assert meta["from"] == "alice@corp.e2e.test", meta
assert meta["to"] == ["bob@ext.e2e.test"], meta
PY
pdf_out "$got" "$T/static.pdf"
check_pdf "$T/static.pdf" E2e-Static-Pass-9 'PDF-SECRET-1' 'contract draft' \
	'alice@corp.e2e.test' $'\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e' $'\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7'
mkdir -p "$T/detach"
pdfdetach -upw E2e-Static-Pass-9 -saveall -o "$T/detach" "$T/static.pdf" >/dev/null 2>&1 ||
	sg_fail "pdfdetach -saveall"
cmp -s "$T/blob.bin" "$T/detach/blob.bin" || sg_fail "the attachment is not byte-identical"
sg_assert_file_has "$SG_LOG" 'PDF encrypted for <bob@ext.e2e.test>: route=existing' "log line"
if grep -q 'E2e-Static-Pass-9' "$SG_LOG"; then sg_fail "the password is in the log"; fi
sg_log "static password: PDF checked"

# --- 2. SMS route
sg_swaks --server "127.0.0.1:$SG_PORT" --from alice@corp.e2e.test --to carol@ext.e2e.test \
	--header "Message-ID: <pdf-sms@e2e.test>" --header "Subject: for carol" \
	--body "PDF-SECRET-2" >"$T/swaks-sms.txt" || sg_fail "swaks sms"
sg_wait_until 60 "the PDF carrier for carol" sh -c \
	"grep -l 'application/pdf' '$T/sink'/*.eml 2>/dev/null | xargs -r grep -l 'To: carol@ext.e2e.test' | grep -q ."
sg_wait_until 60 "the password SMS" grep -qs '+31612345678' "$T/sms.out"
pw=$(grep -o 'from alice@corp.e2e.test: [A-Z0-9]*' "$T/sms.out" | head -1 | sed 's/.*: //')
[ ${#pw} -eq 16 ] || sg_fail "no password in the SMS: $(cat "$T/sms.out")"
got=$(grep -l 'application/pdf' "$T/sink"/*.eml | xargs grep -l 'To: carol@ext.e2e.test' | head -1)
grep -q 'sent to you by SMS' "$got" || sg_fail "not the encrypted_pdf_sms template"
if grep -q 'PDF-SECRET-2' "$got"; then sg_fail "the content is in clear in the carrier"; fi
pdf_out "$got" "$T/sms.pdf"
check_pdf "$T/sms.pdf" "$pw" 'PDF-SECRET-2' 'for carol'
sg_log "SMS route: PDF opened with the SMS password"

# --- 3. passwords notification to the originator
sg_swaks --server "127.0.0.1:$SG_PORT" --from frank@corp.e2e.test --to dave@ext.e2e.test \
	--header "Message-ID: <pdf-orig@e2e.test>" --header "Subject: for dave" \
	--body "PDF-SECRET-3" >"$T/swaks-orig.txt" || sg_fail "swaks originator"
sg_wait_until 60 "the passwords notification" sh -c \
	"grep -l 'Passwords for your encrypted message' '$T/sink'/*.eml 2>/dev/null | grep -q ."
sg_wait_until 60 "the PDF carrier for dave" sh -c \
	"grep -l 'application/pdf' '$T/sink'/*.eml 2>/dev/null | xargs -r grep -l 'To: dave@ext.e2e.test' | grep -q ."
n=$(grep -l 'Passwords for your encrypted message' "$T/sink"/*.eml | head -1)
$SG_PY - "${n%.eml}.json" <<'PY' || sg_fail "notification envelope"
import json, sys
meta = json.load(open(sys.argv[1]))
assert meta["from"] == "", meta
assert meta["to"] == ["frank@corp.e2e.test"], meta
PY
grep -q '^X-Sealgate-Marker:' "$n" || sg_fail "no own-mail marker on the notification"
if grep -q 'PDF-SECRET-3' "$n"; then sg_fail "the content is in the notification"; fi
pw=$(grep -o 'dave@ext.e2e.test: [A-Z0-9]*' "$n" | head -1 | sed 's/.*: //')
[ ${#pw} -eq 16 ] || sg_fail "no password in the notification: $(cat "$n")"
got=$(grep -l 'application/pdf' "$T/sink"/*.eml | xargs grep -l 'To: dave@ext.e2e.test' | head -1)
pdf_out "$got" "$T/orig.pdf"
check_pdf "$T/orig.pdf" "$pw" 'PDF-SECRET-3'
sg_log "originator route: PDF opened with the notified password"

# --- 4. OTP invite: the signed invitation link
sent=$(date +%s)
sg_swaks --server "127.0.0.1:$SG_PORT" --from alice@corp.e2e.test --to erin@ext.e2e.test \
	--header "Message-ID: <pdf-invite@e2e.test>" --header "Subject: for erin" \
	--body "PDF-SECRET-4" >"$T/swaks-invite.txt" || sg_fail "swaks invite"
sg_wait_until 60 "the PDF carrier for erin" sh -c \
	"grep -l 'application/pdf' '$T/sink'/*.eml 2>/dev/null | xargs -r grep -l 'To: erin@ext.e2e.test' | grep -q ."
got=$(grep -l 'application/pdf' "$T/sink"/*.eml | xargs grep -l 'To: erin@ext.e2e.test' | head -1)
if grep -q 'PDF-SECRET-4' "$got"; then sg_fail "the content is in clear in the carrier"; fi
$SG_PY - "$got" "$E2E_SECRET" "$sent" <<'PY' || sg_fail "invitation link in $got"
import email, hashlib, hmac, re, sys, time
from urllib.parse import urlsplit, parse_qsl
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
text = "".join(p.get_payload(decode=True).decode() for p in m.walk()
               if p.get_content_type() == "text/plain")
assert "first choose your own portal" in text, text
pid = re.search(r"Password ID: ([A-Z0-9]+)", text).group(1)
url = re.search(r"https://portal\.e2e\.test/portal/invite\S*", text).group(0)
u = urlsplit(url)
assert u.path == "/portal/invite", url
q = parse_qsl(u.query, strict_parsing=True)
assert [k for k, _ in q] == ["p", "r", "i", "e", "h"], q
v = dict(q)
assert v["p"] == "invite" and v["r"] == "erin@ext.e2e.test" and v["i"] == pid, v
sent, e = int(sys.argv[3]), int(v["e"])
assert sent + 7 * 86400 <= e <= int(time.time()) + 7 * 86400, (sent, e)
data = b"sealgate-pdf-invite-v1\0" + v["r"].encode() + b"\0" + v["i"].encode() + b"\0" + v["e"].encode()
want = hmac.new(sys.argv[2].encode(), data, hashlib.sha256).hexdigest()
assert v["h"] == want, (v["h"], want)
PY
sg_assert_file_has "$SG_LOG" 'PDF encrypted for <erin@ext.e2e.test>: route=otp_invite' "invite log line"
sg_log "OTP invite: the invitation link is signed"
sg_daemon_stop
