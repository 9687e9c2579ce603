#!/bin/sh
# test_cmp_ca.sh - the CMP request handler (F-CA-4) end to end against
# OpenSSL's CMP mock server (`openssl cmp -port`): IR with a pre-shared
# secret, CR with a client certificate (signature-protected both ways), and
# the client's refusal of a certificate that does not match its key.
#
# The mock server always answers with the one certificate given by -rsp_cert,
# so the positive cases enrol a key made here (--key-file) for which that
# certificate was issued; a fresh key (the default) must be refused.
# `openssl cmp -port` listens on every interface: the test re-runs itself in
# a private network namespace (unshare -rn: loopback only) when it can.
set -eu
if [ -z "${SG_CMP_NETNS:-}" ] && unshare -rn true 2>/dev/null; then
	SG_CMP_NETNS=1 exec unshare -rn sh -c 'ip link set lo up 2>/dev/null || true; exec "$0"' "$0"
fi
B=${SG_BUILD:?}
SG=$B/sealgate
T=$(mktemp -d /tmp/sg-cmp-ca-XXXXXX)
MOCK=
cleanup() {
	[ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
cat > "$T/sealgate.conf" <<CONF
[general]
data_dir = $T/data
CONF
export SEALGATE_CONF="$T/sealgate.conf"
fail() { echo "FAIL: $*" >&2; [ -f "$T/mock.log" ] && tail -5 "$T/mock.log" >&2; exit 1; }
cd "$T"
$SG init >/dev/null

# the mock CA (it also protects the server's responses) and its certificates
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
	-out ca.pem -subj "/CN=Mock CMP CA" -days 30 -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
issue() { # issue NAME EMAIL KEYALG
	openssl genpkey -algorithm "$3" $( [ "$3" = RSA ] && echo -pkeyopt rsa_keygen_bits:2048 ||
		echo -pkeyopt ec_paramgen_curve:P-256) -out "$1.key" 2>/dev/null
	openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
	printf 'subjectAltName=email:%s\nextendedKeyUsage=emailProtection\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
		"$2" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
issue user1 user1@example.com RSA
issue user2 user2@example.com EC
issue client cmp-client@example.com EC

free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
start_mock() { # start_mock RSP_CERT EXTRA_ARGS...
	rsp=$1
	shift
	PORT=$(free_port)
	openssl cmp -port "$PORT" -srv_cert ca.pem -srv_key ca.key -rsp_cert "$rsp" \
		-rsp_capubs ca.pem "$@" > mock.log 2>&1 &
	MOCK=$!
	i=0
	until grep -q "ACCEPT" mock.log 2>/dev/null || [ $i -ge 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$MOCK" || fail "mock server did not start"
	$SG ca settings "cmp_url=http://127.0.0.1:$PORT/pkix/"
}
stop_mock() {
	kill "$MOCK" 2>/dev/null || true
	wait "$MOCK" 2>/dev/null || true
	MOCK=
}

# 1. IR with a pre-shared secret (MAC protection)
start_mock user1.pem -srv_ref 1234 -srv_secret pass:test-secret
$SG ca settings cmp_ref=1234 cmp_secret=test-secret
$SG ca issue user1@example.com --handler cmp --key-file user1.key > out.txt ||
	fail "IR: $(cat out.txt)"
T1=$(tail -n 1 out.txt)
$SG cert show "$T1" --json > show.json
[ "$(jq -r .has_key show.json)" = true ] || fail "IR: no key stored"
[ "$(jq -r '.emails[0]' show.json)" = user1@example.com ] || fail "IR: wrong certificate"
[ "$(openssl x509 -in user1.pem -noout -fingerprint -sha512 | sed 's/.*=//; s/://g' |
	tr A-F a-f)" = "$T1" ] || fail "IR: stored certificate is not the issued one"
# the caPubs certificate is stored, but not trusted as a root
$SG cert list --json | jq -e '.[] | select(.subject == "CN=Mock CMP CA") | .is_root == false' \
	>/dev/null || fail "caPubs not stored as an untrusted certificate"
grep -q "Received request" mock.log || fail "mock server saw no request"
# with an explicit recipient name (EJBCA wants the CA's DN there)
$SG ca settings "cmp_recipient=/CN=Mock CMP CA"
$SG ca issue user1@example.com --handler cmp --key-file user1.key > out.txt 2>&1 ||
	fail "IR with recipient: $(cat out.txt)"
if $SG ca settings "cmp_recipient=CN=no slash" 2>/dev/null; then fail "bad recipient set"; fi
$SG ca settings cmp_recipient=
# a fresh key: the mock's certificate does not match it -> refused, nothing stored
if $SG ca issue user1@example.com --handler cmp 2>err.txt; then fail "mismatching cert accepted"; fi
grep -q "CMP IR" err.txt || fail "refusal message: $(cat err.txt)"
[ "$($SG cert list --email user1@example.com --json | jq length)" = 1 ] ||
	fail "a refused certificate was stored"
# a wrong secret fails
$SG ca settings cmp_secret=wrong-secret
if $SG ca issue user1@example.com --handler cmp --key-file user1.key 2>err.txt; then
	fail "wrong secret accepted"
fi
stop_mock

# 2. CR with a client certificate; the server's signed responses are checked
#    against cmp_trusted
start_mock user2.pem -srv_trusted ca.pem
$SG ca settings cmp_secret= cmp_ref= "cmp_client_cert=$T/client.pem" \
	"cmp_client_key=$T/client.key" "cmp_trusted=$T/ca.pem"
$SG ca issue user2@example.com --handler cmp --key-file user2.key > out.txt 2>&1 ||
	fail "CR: $(cat out.txt)"
T2=$(tail -n 1 out.txt)
[ "$($SG cert show "$T2" --json | jq -r .has_key)" = true ] || fail "CR: no key"
# responses signed by an untrusted key are refused
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
	-out other.pem -subj "/CN=Other" -days 30 2>/dev/null
$SG ca settings "cmp_trusted=$T/other.pem"
if $SG ca issue user2@example.com --handler cmp --key-file user2.key 2>err.txt; then
	fail "untrusted server accepted"
fi
stop_mock

# 3. no server configured: a clear configuration error
$SG ca settings cmp_url=
if $SG ca issue x@example.com --handler cmp 2>err.txt; then fail "no cmp_url accepted"; fi
grep -q "cmp_url is not set" err.txt || fail "no-url message: $(cat err.txt)"
echo "test_cmp_ca: ok"
