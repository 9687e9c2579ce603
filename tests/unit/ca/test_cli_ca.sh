#!/bin/sh
# test_cli_ca.sh - `sealgate ca ...` end to end (SPEC §13, F-CA-1..8) with
# independent verifiers: openssl verify -purpose smimesign/smimeencrypt and
# -crl_check, NSS certutil/vfychain and pk12util, openssl pkcs12; the pki
# module's own verdict via `cert show --json`; bulk CSV (guide App. G).
set -eu
B=${SG_BUILD:?}
SG=$B/sealgate
T=$(mktemp -d /tmp/sg-cli-ca-XXXXXX)
trap 'rm -rf "$T"' EXIT
cat > "$T/sealgate.conf" <<CONF
[general]
data_dir = $T/data
CONF
export SEALGATE_CONF="$T/sealgate.conf"
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T"
$SG init >/dev/null

# F-CA-1: two CAs, the first is the default
$SG ca create --name Corp --org "Corp Ltd" --key rsa2048 --sig sha256 >/dev/null
$SG ca create --name Ec --key p384 --sig sha384 --root-cn "EC Root" --cn "EC Issuing" >/dev/null
$SG ca create --name Third --key p256 --default >/dev/null
[ "$($SG ca list --json | jq -r '.[] | select(.default) | .name')" = Third ] ||
	fail "create --default"
$SG ca default Corp
$SG ca list --json > cas.json
[ "$(jq -r '.[] | select(.default) | .name' cas.json)" = Corp ] || fail "default CA"
[ "$(jq length cas.json)" = 3 ] || fail "three CAs"
if $SG ca create --name other --root-cn "EC Root" 2>err.txt; then fail "CN reused"; fi
grep -q "common name" err.txt || fail "CN reuse message: $(cat err.txt)"
ROOT=$(jq -r '.[] | select(.name=="Corp") | .root_thumbprint' cas.json)
INTER=$(jq -r '.[] | select(.name=="Corp") | .intermediate_thumbprint' cas.json)
$SG cert export "$ROOT" > root.pem
$SG cert export "$INTER" > inter.pem

# F-CA-3: issue; the thumbprint is the last line; PKCS#12 with a password file
printf 'secret-pass-1\n' > pw
$SG ca issue alice@example.com --cn "Alice Example" --org "Corp Ltd" --pfx alice.p12 \
	--password-file pw --store-password > issue.txt
A=$(tail -n 1 issue.txt)
[ ${#A} -eq 128 ] || fail "thumbprint line: $A"
ASERIAL=$(sed -n 's/^serial //p' issue.txt)
$SG cert export "$A" > alice.pem
$SG user show alice@example.com --json --reveal > alice.json
[ "$(jq -r .last_used_pfx_password.value alice.json)" = secret-pass-1 ] ||
	fail "last_used_pfx_password not stored"
B2=$($SG ca issue bob@example.com | tail -n 1)
$SG cert export "$B2" > bob.pem

# openssl: both S/MIME purposes
for p in smimesign smimeencrypt; do
	openssl verify -purpose $p -CAfile root.pem -untrusted inter.pem alice.pem >v.txt 2>&1 ||
		fail "openssl verify $p: $(cat v.txt)"
done
openssl x509 -in alice.pem -noout -ext subjectAltName,extendedKeyUsage,keyUsage > ext.txt
grep -q "email:alice@example.com" ext.txt || fail "SAN"
grep -q "E-mail Protection" ext.txt || fail "EKU"
grep -q "Digital Signature, Key Encipherment" ext.txt || fail "KU"

# NSS: vfychain for email signer (4) and recipient (5)
mkdir nss
certutil -N -d sql:nss --empty-password
certutil -A -d sql:nss -n corp-root -t "C,C,C" -a -i root.pem
certutil -A -d sql:nss -n corp-inter -t ",," -a -i inter.pem
for u in 4 5; do
	vfychain -d sql:nss -u $u -a alice.pem >vf.txt 2>&1 || fail "vfychain -u $u: $(cat vf.txt)"
	grep -q "Chain is good" vf.txt || fail "vfychain -u $u: $(cat vf.txt)"
done
certutil -A -d sql:nss -n alice -t ",," -a -i alice.pem
for u in S R; do
	certutil -V -d sql:nss -n alice -u $u >cv.txt 2>&1 || fail "certutil -V -u $u: $(cat cv.txt)"
	grep -q "certificate is valid" cv.txt || fail "certutil -V -u $u: $(cat cv.txt)"
done

# PKCS#12: openssl pkcs12 and NSS pk12util with the password
openssl pkcs12 -in alice.p12 -passin file:pw -nodes -out p12.pem 2>p12err.txt ||
	fail "openssl pkcs12: $(cat p12err.txt)"
grep -q "PRIVATE KEY" p12.pem || fail "no key in the PKCS#12"
if openssl pkcs12 -in alice.p12 -passin pass:wrong -nodes -out /dev/null 2>/dev/null; then
	fail "wrong password accepted"
fi
mkdir nss2
certutil -N -d sql:nss2 --empty-password
pk12util -i alice.p12 -d sql:nss2 -W secret-pass-1 >pk.txt 2>&1 || fail "pk12util: $(cat pk.txt)"
certutil -K -d sql:nss2 | grep -q "rsa" || fail "pk12util: no key imported"
# a generated password, legacy 3DES container (gpgsm/old Windows)
$SG ca issue carol@example.com --pfx carol.p12 --legacy --password-out carol.pw >/dev/null
openssl pkcs12 -legacy -in carol.p12 -passin file:carol.pw -info -nokeys -out /dev/null \
	2>info.txt || fail "legacy pfx: $(cat info.txt)"
grep -q "pbeWithSHA1And3-KeyTripleDES-CBC" info.txt || fail "legacy pfx is not 3DES"
# gpgsm imports only 3DES PKCS#12 (NOTES): the legacy file must import with its key
if command -v gpgsm >/dev/null; then
	mkdir -m 700 gpghome
	timeout 60 gpgsm --homedir gpghome --batch --pinentry-mode loopback --passphrase-fd 3 \
		--import carol.p12 3<carol.pw >gpg.txt 2>&1 || true
	gpgconf --homedir gpghome --kill all 2>/dev/null || true
	grep -q "secret keys imported: 1" gpg.txt || fail "gpgsm import: $(cat gpg.txt)"
fi

# EC CA, EC end-user key: keyAgreement, verifies with openssl and NSS
ROOT2=$(jq -r '.[] | select(.name=="Ec") | .root_thumbprint' cas.json)
INTER2=$(jq -r '.[] | select(.name=="Ec") | .intermediate_thumbprint' cas.json)
$SG cert export "$ROOT2" > root2.pem
$SG cert export "$INTER2" > inter2.pem
D=$($SG ca issue dave@example.com --ca Ec --key p256 | tail -n 1)
$SG cert export "$D" > dave.pem
openssl verify -purpose smimesign -CAfile root2.pem -untrusted inter2.pem dave.pem >v.txt 2>&1 ||
	fail "EC verify: $(cat v.txt)"
certutil -A -d sql:nss -n ec-root -t "C,C,C" -a -i root2.pem
certutil -A -d sql:nss -n ec-inter -t ",," -a -i inter2.pem
vfychain -d sql:nss -u 4 -a dave.pem >vf.txt 2>&1 || fail "EC vfychain: $(cat vf.txt)"

# F-CA-7: revoke alice; openssl -crl_check and the pki module say revoked
$SG ca crl --ca Corp --revoke "$ASERIAL" --reason keyCompromise --next-update 5 --out corp.crl \
	> crl.txt
grep -q "entries 1" crl.txt || fail "crl output: $(cat crl.txt)"
openssl crl -inform DER -in corp.crl -out corp.crl.pem
openssl crl -in corp.crl.pem -noout -text > crltext.txt
grep -q "Key Compromise" crltext.txt || fail "no reasonCode in the CRL"
grep -qi "X509v3 CRL Number" crltext.txt || fail "no CRL number"
if $SG ca crl --revoke 01 --reason bogus 2>/dev/null; then fail "bad reason accepted"; fi
if openssl verify -crl_check -CRLfile corp.crl.pem -CAfile root.pem -untrusted inter.pem \
	alice.pem >v.txt 2>&1; then
	fail "revoked certificate verified"
fi
grep -q "certificate revoked" v.txt || fail "openssl reason: $(cat v.txt)"
openssl verify -crl_check -CRLfile corp.crl.pem -CAfile root.pem -untrusted inter.pem \
	bob.pem >v.txt 2>&1 || fail "bob should stay valid: $(cat v.txt)"
$SG cert show "$A" --json > show.json
[ "$(jq -r .valid show.json)" = false ] || fail "pki still says valid"
jq -r .reason show.json | grep -qi revoked || fail "pki reason: $(jq -r .reason show.json)"
$SG crl list --json | jq -e 'length == 1' >/dev/null || fail "CRL not in the store"
[ "$($SG cert show "$B2" --json | jq -r .valid)" = true ] || fail "bob invalid"
if $SG ca crl --revoke zz 2>err.txt; then fail "bad serial accepted"; fi

# F-CA-6: the guide's examples; preview changes nothing; bad files name the line
printf '"e","org","COMMONNAME","fn","surname"\n"test0@example.com","organisation 0","user 0","first name 0","last name 0"\n"test1@example.com","organisation 1","user 1","first name 1","last name 1"\n' > g1.csv
printf 'e,cn\ntestA1@example.com, cn1\nalice@example.com, Alice\n' > g2.csv
$SG ca bulk g1.csv --preview --json > prev.json
[ "$(jq length prev.json)" = 2 ] || fail "preview rows"
[ "$(jq -r '.[1].lastname' prev.json)" = "last name 1" ] || fail "preview values"
[ -z "$($SG cert list --email test0@example.com)" ] || fail "preview issued"
$SG ca bulk g1.csv > bulk.txt || fail "bulk g1: $(cat bulk.txt)"
[ "$(grep -c ': issued ' bulk.txt)" = 2 ] || fail "bulk g1 output: $(cat bulk.txt)"
$SG ca bulk g2.csv > bulk2.txt
grep -q "line 2 testA1@example.com: issued" bulk2.txt || fail "bulk g2: $(cat bulk2.txt)"
# alice's certificate is revoked, so she is not skipped: she gets a new one
grep -q "line 3 alice@example.com: issued" bulk2.txt || fail "bulk g2 alice: $(cat bulk2.txt)"
$SG ca bulk g2.csv > bulk3.txt
[ "$(grep -c 'skipped (valid signing certificate)' bulk3.txt)" = 2 ] || fail "no skip"
printf 'e,cn\na@example.com,"open\n' > bad.csv
if $SG ca bulk bad.csv 2>err.txt; then fail "unbalanced quotes accepted"; fi
grep -q "line 2: unbalanced quotes" err.txt || fail "bad.csv message: $(cat err.txt)"

# delayed handler + pending list/run
$SG ca settings handler=delayed
printf 'e,cn\nlater@example.com,Later\n' > later.csv
$SG ca bulk later.csv | grep -q "queued" || fail "not queued"
$SG ca pending --json | jq -e '.[0].email == "later@example.com"' >/dev/null || fail "pending"
$SG ca pending run | grep -q "issued 1" || fail "worker"
$SG cert list --email later@example.com | grep -q valid || fail "no certificate after run"
$SG ca settings --json | jq -e '.handler == "delayed"' >/dev/null || fail "settings json"
Q=$($SG ca issue queued@example.com --handler delayed | sed -n 's/^queued //p')
[ -n "$Q" ] || fail "issue --handler delayed did not queue"
$SG ca pending cancel "$Q"
$SG ca pending --json | jq -e 'length == 0' >/dev/null || fail "cancelled request still listed"
$SG ca pending --state cancelled --json | jq -e '.[0].state == "cancelled"' >/dev/null ||
	fail "cancelled state"
$SG ca pending retry "$Q"
$SG ca pending run | grep -q "issued 1" || fail "retried request not issued"
if $SG ca pending cancel 99999 2>/dev/null; then fail "cancel of an unknown request"; fi
$SG ca settings --json | jq -e '.cmp_secret == null' >/dev/null || fail "cmp_secret default"
$SG ca settings cmp_secret=s3cret
$SG ca settings --json | jq -e '.cmp_secret == "***"' >/dev/null || fail "secret shown"
$SG ca settings --json --reveal | jq -e '.cmp_secret == "s3cret"' >/dev/null ||
	fail "secret not revealed"
if $SG ca settings handler=nope 2>/dev/null; then fail "bad setting accepted"; fi

# ca default, and ca send without a CA email sender refuses clearly (the
# positive path, delivered by the daemon, is tests/e2e/e2e_ca_send.sh)
$SG ca default Ec
[ "$($SG ca list --json | jq -r '.[] | select(.default) | .name')" = Ec ] || fail "ca default"
if $SG ca send "$B2" --to bob@example.com 2>err.txt; then fail "send without ca_email"; fi
grep -q "ca_email must be set" err.txt || fail "send message: $(cat err.txt)"
$SG ca settings ca_email=ca@example.com >/dev/null || fail "ca_email"
if $SG ca send "$INTER" --to bob@example.com 2>err.txt; then fail "CA cert sent"; fi
grep -q "CA certificate" err.txt || fail "send CA message: $(cat err.txt)"
if $SG ca send "$B2" --to eve@example.com 2>err.txt; then fail "mismatch sent"; fi
grep -q "address mismatch" err.txt || fail "mismatch message: $(cat err.txt)"
# a built-in CA's own certificates cannot be deleted (the CA would break)
if $SG cert delete "$INTER" 2>err.txt; then fail "CA certificate deleted"; fi
grep -q "certificate of the built-in CA Corp" err.txt || fail "cert delete CA message: $(cat err.txt)"
$SG cert show "$INTER" >/dev/null || fail "CA certificate gone after a refused delete"
echo "test_cli_ca: ok"
