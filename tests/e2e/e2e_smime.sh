#!/bin/bash
# e2e_smime - S/MIME through the real daemon (postfix mode, Python receiver as
# the next hop), certificates and keys imported with the CLI, policy set with
# `sealgate domain set`:
#  1. alice@corp (internal, signing key) -> bob@ext (certificate only): the
#     receiver gets enveloped-data that `openssl cms -decrypt` and NSS
#     `cmsutil -D` read; inside, a signature `openssl cms -verify` accepts,
#     and the original 8-bit text byte for byte;
#  2. bob@ext -> dave@corp, encrypted by openssl to dave's certificate (key in
#     the store) and carrying a spoofed X-Sealgate-Info field: delivered
#     decrypted, with our X-Sealgate-Info fields, without the spoofed one;
#  3. a must-encrypt recipient without a certificate gets nothing; alice gets
#     the encryption-failed notification;
#  4. erin@corp (signing key, smime_signing_mode=opaque) -> carl@plain (no
#     certificate): the receiver gets opaque application/pkcs7-mime
#     signed-data that `openssl cms -verify` accepts, giving the original text;
# and alice (encryption_notification=true) is told that 1. went out encrypted.
. "$(dirname "$0")/harness/lib.sh"
sg_begin smime
sg_skip_unless_built

sg_recv_start sink
SG_NEXT_HOP=127.0.0.1:${SG_PORTS[sink]}
sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"

# --- a CA and three users (RSA-2048, S/MIME key usages)
P=$T/pki
mkdir -p "$P"
printf 'secret\n' >"$P/pw"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 30 \
	-subj "/CN=E2E S-MIME Root" -addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 || sg_fail "openssl req CA"
mkuser() { # NAME EMAIL
	openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" \
		-subj "/CN=$1" >/dev/null 2>&1 || sg_fail "openssl req $1"
	printf 'subjectAltName=email:%s\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nbasicConstraints=CA:FALSE\n' "$2" >"$P/$1.ext"
	openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
		-days 30 -extfile "$P/$1.ext" -out "$P/$1.pem" >/dev/null 2>&1 || sg_fail "openssl x509 $1"
	openssl pkcs12 -export -in "$P/$1.pem" -inkey "$P/$1.key" -certfile "$P/ca.pem" \
		-passout "file:$P/pw" -out "$P/$1.p12" || sg_fail "openssl pkcs12 $1"
}
mkuser alice alice@corp.e2e.test
mkuser bob bob@ext.e2e.test
mkuser dave dave@corp.e2e.test
mkuser erin erin@corp.e2e.test

sg_cli cert import --roots "$P/ca.pem" >>"$T/cli.log" 2>&1 || sg_fail "cert import --roots"
sg_cli cert import "$P/bob.pem" >>"$T/cli.log" 2>&1 || sg_fail "cert import bob"
sg_cli key import "$P/alice.p12" --password-file "$P/pw" >>"$T/cli.log" 2>&1 || sg_fail "key import alice"
sg_cli key import "$P/dave.p12" --password-file "$P/pw" >>"$T/cli.log" 2>&1 || sg_fail "key import dave"
sg_cli key import "$P/erin.p12" --password-file "$P/pw" >>"$T/cli.log" 2>&1 || sg_fail "key import erin"
sg_cli user set erin@corp.e2e.test smime_signing_mode=opaque >>"$T/cli.log" 2>&1 ||
	sg_fail "user set erin"
sg_cli domain set corp.e2e.test locality=internal add_security_info=true >>"$T/cli.log" 2>&1 ||
	sg_fail "domain set corp"
sg_cli user set alice@corp.e2e.test encryption_notification=true >>"$T/cli.log" 2>&1 ||
	sg_fail "user set alice"
sg_cli domain set secure.e2e.test encrypt_mode=mandatory pdf_encryption_allowed=false \
	>>"$T/cli.log" 2>&1 || sg_fail "domain set secure"
sg_mta_set relay_domains=corp.e2e.test
sg_daemon_start

# find_msg ID-TEXT - the delivered file holding ID-TEXT
find_msg() { grep -l -- "$1" "$T/sink"/*.eml 2>/dev/null | head -1; }

# --- 1. outgoing: signed and encrypted for bob
{
	printf 'From: Alice <alice@corp.e2e.test>\r\nTo: bob@ext.e2e.test\r\n'
	printf 'Subject: quarterly numbers\r\nMessage-ID: <smime-out@e2e.test>\r\n'
	printf 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n'
	printf 'Content-Transfer-Encoding: 8bit\r\n\r\n'
	printf 'Gr\xc3\xbc\xc3\x9fe OUT-SECRET-1\r\nsecond line\r\n'
} >"$T/out.eml"
sg_swaks --server "127.0.0.1:$SG_PORT" --from alice@corp.e2e.test --to bob@ext.e2e.test \
	--data "@$T/out.eml" >"$T/swaks-out.txt" || sg_fail "swaks out: $(tail -3 "$T/swaks-out.txt")"
sg_wait_until 30 "the S/MIME message at the receiver" sh -c "grep -lq 'smime-out@e2e.test' '$T/sink'/*.eml 2>/dev/null"
got=$(find_msg 'smime-out@e2e.test')
if grep -q 'OUT-SECRET-1' "$got"; then sg_fail "plain text in the encrypted output"; fi
grep -qi 'application/pkcs7-mime' "$got" || sg_fail "no application/pkcs7-mime"
openssl cms -decrypt -in "$got" -recip "$P/bob.pem" -inkey "$P/bob.key" -out "$T/out.dec" \
	2>"$T/openssl.err" || sg_fail "openssl cms -decrypt: $(cat "$T/openssl.err")"
grep -q 'multipart/signed' "$T/out.dec" || sg_fail "decrypted content is not multipart/signed"
openssl cms -verify -in "$T/out.dec" -CAfile "$P/ca.pem" -out "$T/out.ver" 2>"$T/openssl.err" ||
	sg_fail "openssl cms -verify: $(cat "$T/openssl.err")"
# the signed content is the original entity (its Content-* fields and the
# body swaks sent, CRLF), byte for byte
{
	printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
	sg_swaks_data "$T/swaks-out.txt" | tr -d '\r' | awk 'b { print } /^$/ { b = 1 }' | sed 's/$/\r/'
} >"$T/out.want"
grep -q $'Gr\xc3\xbc\xc3\x9fe OUT-SECRET-1\r' "$T/out.want" || sg_fail "swaks transcript unreadable"
cmp -s "$T/out.want" "$T/out.ver" || sg_fail "verified content differs from the original entity"
sg_log "openssl decrypted and verified the output"

# NSS (Thunderbird's engine): cmsutil decrypts the DER CMS with bob's key
mkdir -p "$T/nss"
certutil -N -d "sql:$T/nss" --empty-password >/dev/null 2>&1 || sg_fail "certutil -N"
pk12util -i "$P/bob.p12" -d "sql:$T/nss" -w "$P/pw" >/dev/null 2>&1 || sg_fail "pk12util"
awk 'b { print } /^\r?$/ { b = 1 }' "$got" | tr -d '\r' | base64 -d >"$T/out.p7m" ||
	sg_fail "base64 body"
cmsutil -D -d "sql:$T/nss" -i "$T/out.p7m" -o "$T/out.nss" >"$T/nss.log" 2>&1 ||
	sg_fail "cmsutil -D: $(cat "$T/nss.log")"
cmp -s "$T/out.dec" "$T/out.nss" || sg_fail "NSS and OpenSSL decrypt to different content"
sg_log "NSS cmsutil decrypted the output"
sg_wait_until 20 "the S/MIME log line" grep -q 'S/MIME encrypted for 1 recipient(s) to 1 certificate(s), AES-256-CBC, signed' "$SG_LOG"
sg_wait_until 20 "the pipeline's log line" grep -q 'to=<bob@ext.e2e.test>, action=smime-sign-encrypt, outputs=2' "$SG_LOG"
# the encryption notification (encryption_notification=true) to alice
sg_wait_until 30 "the encryption notification" sh -c \
	"grep -l 'Message sent encrypted: quarterly numbers' '$T/sink'/*.eml 2>/dev/null | grep -q ."
note=$(grep -l 'Message sent encrypted: quarterly numbers' "$T/sink"/*.eml | head -1)
sg_assert_file_has "$note" 'bob@ext\.e2e\.test' "notification names bob"
sg_assert_file_has "$note" '^To: alice@corp\.e2e\.test' "notification to alice"
if grep -q 'OUT-SECRET-1' "$note"; then sg_fail "notification carries the content"; fi

# --- 2. incoming: encrypted for dave, delivered decrypted
printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHall\xc3\xb6 IN-SECRET-2\r\n' >"$T/in.txt"
openssl cms -encrypt -aes256 -in "$T/in.txt" -out "$T/in.p7" -from bob@ext.e2e.test \
	-to dave@corp.e2e.test -subject "incoming report" "$P/dave.pem" || sg_fail "openssl cms -encrypt"
{
	printf 'Message-ID: <smime-in@e2e.test>\r\nX-Sealgate-Info-Signed-0: True\r\n'
	tr -d '\r' <"$T/in.p7" | sed 's/$/\r/'
} >"$T/in.eml"
sg_swaks --server "127.0.0.1:$SG_PORT" --from bob@ext.e2e.test --to dave@corp.e2e.test \
	--data "@$T/in.eml" >"$T/swaks-in.txt" || sg_fail "swaks in: $(tail -3 "$T/swaks-in.txt")"
sg_wait_until 30 "the decrypted message at the receiver" sh -c "grep -lq 'smime-in@e2e.test' '$T/sink'/*.eml"
got=$(find_msg 'smime-in@e2e.test')
grep -q 'IN-SECRET-2' "$got" || sg_fail "incoming message not decrypted: $(head -30 "$got")"
grep -q $'Hall\xc3\xb6 IN-SECRET-2' "$got" || sg_fail "8-bit text changed"
sg_assert_file_has "$got" '^X-Sealgate-Info-Encrypted-0: True' "Encrypted-0 field"
sg_assert_file_has "$got" '^X-Sealgate-Info-Encryption-Algorithm-0: AES-256-CBC' "algorithm field"
sg_assert_file_has "$got" '^Subject: incoming report \[decrypted\]' "decrypted tag"
if grep -q 'X-Sealgate-Info-Signed-0' "$got"; then sg_fail "spoofed X-Sealgate-Info field delivered"; fi
if grep -qi 'application/pkcs7-mime' "$got"; then sg_fail "still encrypted"; fi

# --- 3. fail closed: a must-encrypt recipient without a certificate
sg_swaks --server "127.0.0.1:$SG_PORT" --from alice@corp.e2e.test --to zed@secure.e2e.test \
	--header "Message-ID: <smime-fail@e2e.test>" --header "Subject: for zed" \
	--body "FAIL-SECRET-3" >"$T/swaks-fail.txt" || sg_fail "swaks fail"
sg_wait_until 30 "the encryption-failed notification" sh -c \
	"grep -l 'encryption failed' '$T/sink'/*.eml | xargs grep -l 'zed@secure.e2e.test' | grep -q ."
if grep -lq 'FAIL-SECRET-3' "$T/sink"/*.eml; then sg_fail "the failed message's content was delivered"; fi
for f in "$T/sink"/*.json; do
	if grep -q 'zed@secure.e2e.test' "$f"; then sg_fail "something was delivered to zed ($f)"; fi
done

# --- 4. opaque signing (the sender's smime_signing_mode=opaque)
sg_swaks --server "127.0.0.1:$SG_PORT" --from erin@corp.e2e.test --to carl@plain.e2e.test \
	--header "Message-ID: <smime-opaque@e2e.test>" --header "Subject: opaque" \
	--body "OPAQUE-TEXT-4" >"$T/swaks-opaque.txt" || sg_fail "swaks opaque"
sg_wait_until 30 "the opaque-signed message at the receiver" sh -c \
	"grep -lq 'smime-opaque@e2e.test' '$T/sink'/*.eml 2>/dev/null"
got=$(find_msg 'smime-opaque@e2e.test')
grep -qi 'application/pkcs7-mime' "$got" || sg_fail "not application/pkcs7-mime: $(head -30 "$got")"
grep -qi 'smime-type=signed-data' "$got" || sg_fail "not signed-data"
if grep -qi 'multipart/signed' "$got"; then sg_fail "clear-signed although opaque was set"; fi
if grep -q 'OPAQUE-TEXT-4' "$got"; then sg_fail "opaque signed-data shows the text"; fi
openssl cms -verify -in "$got" -CAfile "$P/ca.pem" -out "$T/opaque.ver" 2>"$T/openssl.err" ||
	sg_fail "openssl cms -verify (opaque): $(cat "$T/openssl.err")"
grep -q 'OPAQUE-TEXT-4' "$T/opaque.ver" || sg_fail "verified opaque content lacks the text"
sg_log "openssl verified the opaque signature"
sg_daemon_stop
