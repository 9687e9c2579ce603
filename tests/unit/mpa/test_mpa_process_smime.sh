#!/bin/sh
# test_mpa_process_smime.sh - `sealgate process -c CONF` runs the same S/MIME
# stages as the daemon: with certificates and keys imported through the CLI,
# mail from alice (signing key) to bob (certificate) comes out signed and
# encrypted (openssl decrypts and verifies it), and mail encrypted to dave
# (internal, key imported) comes out decrypted with the X-Sealgate-Info
# fields.
set -eu
SG=${SG_BUILD:?}/sealgate
dir=$(mktemp -d /tmp/sg-test-mpa-process-smime-XXXXXX)
trap 'rm -rf "$dir"' EXIT
printf '[general]\ndata_dir = %s\nhostname = gw.example.com\n' "$dir" > "$dir/c.ini"
sg() { "$SG" -c "$dir/c.ini" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# a CA and three users
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3 \
	-subj "/CN=Process Root" -addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign >/dev/null 2>&1 || fail "CA"
printf 'pw\n' > "$dir/pw"
for u in alice:alice@example.com bob:bob@partner.net dave:dave@example.com; do
	n=${u%%:*}; e=${u#*:}
	openssl req -newkey rsa:2048 -nodes -keyout "$dir/$n.key" -out "$dir/$n.csr" \
		-subj "/CN=$n" >/dev/null 2>&1 || fail "req $n"
	printf 'subjectAltName=email:%s\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n' \
		"$e" > "$dir/$n.ext"
	openssl x509 -req -in "$dir/$n.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 3 -extfile "$dir/$n.ext" -out "$dir/$n.pem" >/dev/null 2>&1 || fail "x509 $n"
	openssl pkcs12 -export -in "$dir/$n.pem" -inkey "$dir/$n.key" -passout "file:$dir/pw" \
		-out "$dir/$n.p12" || fail "p12 $n"
done

sg init >/dev/null
sg mta set relay_domains=example.com >/dev/null
sg domain set example.com locality=internal >/dev/null
sg cert import --roots "$dir/ca.pem" >/dev/null
sg cert import "$dir/bob.pem" >/dev/null
sg key import "$dir/alice.p12" --password-file "$dir/pw" >/dev/null
sg key import "$dir/dave.p12" --password-file "$dir/pw" >/dev/null

cat > "$dir/out.eml" <<'MSG'
From: Alice <alice@example.com>
To: bob@partner.net
Subject: Offer
Content-Type: text/plain; charset=us-ascii

OUT-SECRET-77
MSG
sg process --from alice@example.com --to bob@partner.net --out-dir "$dir/o1" "$dir/out.eml" \
	>/dev/null
[ -f "$dir/o1/1.eml" ] && [ ! -e "$dir/o1/2.eml" ] || fail "outgoing: want exactly 1 output"
grep -q 'OUT-SECRET-77' "$dir/o1/1.eml" && fail "outgoing: plain text in the output"
openssl cms -decrypt -in "$dir/o1/1.eml" -recip "$dir/bob.pem" -inkey "$dir/bob.key" \
	-out "$dir/o1.dec" 2>/dev/null || fail "outgoing: openssl cannot decrypt"
openssl cms -verify -in "$dir/o1.dec" -CAfile "$dir/ca.pem" -out "$dir/o1.txt" 2>/dev/null ||
	fail "outgoing: openssl cannot verify"
grep -q 'OUT-SECRET-77' "$dir/o1.txt" || fail "outgoing: content lost"

printf 'Content-Type: text/plain\r\n\r\nIN-SECRET-88\r\n' > "$dir/in.txt"
openssl cms -encrypt -aes128 -in "$dir/in.txt" -from bob@partner.net -to dave@example.com \
	-subject Report -out "$dir/in.eml" "$dir/dave.pem" || fail "openssl encrypt"
sg process --from bob@partner.net --to dave@example.com --out-dir "$dir/o2" "$dir/in.eml" \
	>/dev/null
[ -f "$dir/o2/1.eml" ] || fail "incoming: no output"
grep -q 'IN-SECRET-88' "$dir/o2/1.eml" || fail "incoming: not decrypted"
grep -q '^X-Sealgate-Info-Encrypted-0: True' "$dir/o2/1.eml" || fail "incoming: no info field"
grep -q '^X-Sealgate-Info-Encryption-Algorithm-0: AES-128-CBC' "$dir/o2/1.eml" ||
	fail "incoming: algorithm field"
exit 0
