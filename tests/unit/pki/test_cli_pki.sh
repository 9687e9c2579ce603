#!/bin/sh
# test_cli_pki.sh - the `sealgate cert|key|crl|ctl|... select-cert` commands
# end to end (SPEC §13): a chain made here with the openssl CLI, imported,
# listed as JSON (fields of `cert show --json`), exported, keys via PKCS#12
# with a password file, CRL revocation, CTL, selection, delete refused in use.
set -eu
B=${SG_BUILD:?}
SG=$B/sealgate
T=$(mktemp -d /tmp/sg-cli-pki-XXXXXX)
trap 'rm -rf "$T"' EXIT
cat > "$T/sealgate.conf" <<CONF
[general]
data_dir = $T/data
CONF
export SEALGATE_CONF="$T/sealgate.conf"
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T"
$SG init >/dev/null

# root -> intermediate -> leaf (with CRL distribution point), openssl CLI
cat > ext.cnf <<'CNF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
basicConstraints = CA:FALSE
keyUsage = digitalSignature,keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = email:Carol@Example.ORG
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 30 \
	-subj "/CN=CLI Root" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout mid.key -out mid.csr -subj "/CN=CLI Mid" 2>/dev/null
openssl x509 -req -in mid.csr -CA root.pem -CAkey root.key -CAcreateserial -days 20 \
	-extfile ext.cnf -extensions ca -out mid.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=Carol" 2>/dev/null
openssl x509 -req -in leaf.csr -CA mid.pem -CAkey mid.key -set_serial 4660 -days 10 \
	-extfile ext.cnf -extensions leaf -out leaf.pem 2>/dev/null
TL=$(openssl x509 -in leaf.pem -outform DER | openssl dgst -sha512 -r | cut -d' ' -f1)
TM=$(openssl x509 -in mid.pem -outform DER | openssl dgst -sha512 -r | cut -d' ' -f1)

out=$($SG cert import root.pem --roots)
echo "$out" | grep -q '^imported [0-9a-f]\{128\}$' || fail "root import: $out"
cat mid.pem leaf.pem > both.pem
out=$($SG cert import both.pem)
[ "$(echo "$out" | grep -c '^imported ')" = 2 ] || fail "import both: $out"
out=$($SG cert import leaf.pem)
[ "$out" = "exists $TL" ] || fail "duplicate: $out"
printf 'garbage\n' > junk.pem
if $SG cert import junk.pem 2>err.txt; then fail "garbage imported"; fi
grep -q 'not a DER' err.txt || fail "garbage message: $(cat err.txt)"

# cert show --json carries the contract fields
$SG cert show "$TL" --json > show.json
for f in thumbprint subject issuer serial not_before not_after emails has_key is_root valid reason; do
	grep -q "\"$f\"" show.json || fail "cert show --json lacks $f"
done
grep -q '"serial": "1234"' show.json || fail "serial hex: $(cat show.json)"
grep -q '"carol@example.org"' show.json || fail "emails"
grep -q '"valid": true' show.json || fail "not valid: $(cat show.json)"
$SG cert list --email CAROL@example.org --json | grep -q "$TL" || fail "list by email"
[ "$($SG cert list --roots --json | grep -c '"thumbprint"')" = 1 ] || fail "roots list"

# export with chain: three certificates, read by openssl
$SG cert export "$TL" --chain > chain.pem
[ "$(grep -c 'BEGIN CERTIFICATE' chain.pem)" = 3 ] || fail "export chain"
$SG cert export "$TL" --format p7b --chain > chain.p7b
openssl pkcs7 -inform DER -in chain.p7b -print_certs -noout | grep -q 'CLI Root' || fail "p7b"

# keys: PKCS#12 with a password file, wrong password refused
openssl pkcs12 -export -inkey leaf.key -in leaf.pem -passout pass:s3cret -out leaf.p12
printf 's3cret\n' > pw
printf 'wrong\n' > badpw
if $SG key import leaf.p12 --password-file badpw 2>err.txt; then fail "wrong password"; fi
grep -q 'wrong password' err.txt || fail "wrong password message"
out=$($SG key import leaf.p12 --password-file pw)
[ "$out" = "imported $TL (key added)" ] || fail "key import: $out"
[ "$(stat -c %a data/pki.kek)" = 600 ] || fail "kek mode"
$SG key export "$TL" --password-file pw --out out.p12
openssl pkcs12 -in out.p12 -passin pass:s3cret -nodes 2>/dev/null | grep -q 'PRIVATE KEY' || fail "key export"
$SG cert show "$TL" --json | grep -q '"has_key": true' || fail "has_key"

# selection; delete refused while selected
$SG user select-cert carol@example.org "$TL" | grep -q "^selected" || fail "select"
$SG user select-signing-cert carol@example.org "$TL" >/dev/null
$SG user certs carol@example.org --json | grep -q '"usable": true' || fail "user certs"
if $SG cert delete "$TL" 2>err.txt; then fail "deleted a selected certificate"; fi
grep -q 'in use by user carol@example.org' err.txt || fail "in use message: $(cat err.txt)"
$SG cert usage "$TL" | grep -q 'user carol@example.org' || fail "usage"

# CTL: black-listed intermediate invalidates the leaf
$SG ctl add "$TM" --black
$SG ctl list --json | grep -q '"black"' || fail "ctl list"
$SG cert show "$TL" --json | grep -q '"valid": false' || fail "black not applied"
$SG cert show "$TL" | grep -q 'black-listed' || fail "black reason"
$SG ctl delete "$TM"
$SG cert show "$TL" --json | grep -q '"valid": true' || fail "ctl delete"

# CRL revoking the leaf
cat > ca.cnf <<CNF
[ca]
default_ca = d
[d]
database = $T/index.txt
crlnumber = $T/crlnumber
default_md = sha256
default_crl_days = 7
CNF
printf 'R\t%s\t%s\t1234\tunknown\t/CN=Carol\n' "$(date -u -d '+10 days' +%y%m%d%H%M%SZ)" \
	"$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" > index.txt
echo 01 > crlnumber
openssl ca -config ca.cnf -gencrl -keyfile mid.key -cert mid.pem -out mid.crl 2>/dev/null
$SG crl import mid.crl | grep -q '^imported' || fail "crl import"
$SG crl list --json | grep -q '"entries": 1' || fail "crl list"
$SG cert show "$TL" --json | grep -q '"valid": false' || fail "revoked still valid"
$SG cert show "$TL" | grep -q 'revoked on' || fail "revoked reason"

# crl update: download from a distribution point served on 127.0.0.1
python3 -u -m http.server --bind 127.0.0.1 --directory "$T" 0 > http.log 2>&1 &
HP=$!
trap 'kill $HP 2>/dev/null; rm -rf "$T"' EXIT
i=0
while ! grep -q 'port' http.log && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' http.log)
[ -n "$PORT" ] || fail "http server"
echo 02 > crlnumber
openssl ca -config ca.cnf -gencrl -keyfile mid.key -cert mid.pem -out mid2.crl 2>/dev/null
openssl crl -in mid2.crl -outform DER -out mid2.der
printf '[cdp]\nbasicConstraints = CA:FALSE\ncrlDistributionPoints = URI:http://127.0.0.1:%s/mid2.der\n' \
	"$PORT" > cdp.cnf
openssl req -newkey rsa:2048 -nodes -keyout d.key -out d.csr -subj "/CN=Dee" 2>/dev/null
openssl x509 -req -in d.csr -CA mid.pem -CAkey mid.key -set_serial 99 -days 5 \
	-extfile cdp.cnf -extensions cdp -out d.pem 2>/dev/null
$SG cert import d.pem >/dev/null
# crl proxy (F-ADM-7): refused when not a URL; a configured proxy is used by
# crl update (one that does not answer makes the download fail); none clears it
if $SG crl proxy "not a url" 2>/dev/null; then fail "bad proxy accepted"; fi
[ "$($SG crl proxy)" = none ] || fail "crl proxy default"
$SG crl proxy http://127.0.0.1:1 || fail "crl proxy set"
[ "$($SG crl proxy)" = http://127.0.0.1:1 ] || fail "crl proxy show"
if out=$($SG crl update 2>&1); then fail "crl update ignored the configured proxy: $out"; fi
echo "$out" | grep -q "^failed http://127.0.0.1:$PORT/mid2.der" || fail "crl update via proxy: $out"
$SG crl proxy none || fail "crl proxy none"
out=$($SG crl update)
echo "$out" | grep -q "^ok http://127.0.0.1:$PORT/mid2.der" || fail "crl update: $out"
$SG crl list --json | grep -q '"source": "http://127.0.0.1' || fail "downloaded CRL not stored"
echo "ok"
