#!/bin/bash
# e2e_passthrough - swaks -> sealgated -> receiver: the message arrives
# unchanged (apart from our Received header), the 250 reply carries the mail
# ID, every log line about the message carries it, and the spool is empty
# afterwards. Also: 8-bit content, leading dots, a long (but legal) line and a
# message without a final newline pass through byte-exact.
. "$(dirname "$0")/harness/lib.sh"
sg_begin passthrough
sg_skip_unless_built

sg_recv_start sink
SG_NEXT_HOP=127.0.0.1:${SG_PORTS[sink]}
# A listener certificate: STARTTLS is offered and used by swaks below.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" \
	-days 2 -subj /CN=sealgate.e2e.test >/dev/null 2>&1 || sg_fail "openssl req"
sg_daemon_config smtp.mode=postfix "smtp.tls_certificate=$T/tls.crt" "smtp.tls_key=$T/tls.key"
sg_cli init >/dev/null || sg_fail "sealgate init"
sg_daemon_start

# strip_ours FILE - the delivered message without our own Received header
# (the first header, with its continuation lines).
strip_ours() {
	awk 'NR == 1 && /^Received: .*/ { skip = 1; next }
		skip && /^[ \t]/ { next } { skip = 0; print }' "$1"
}

n=0
for body in plain dots eightbit longline; do
	n=$((n + 1))
	f=$T/in-$body.eml
	{
		printf 'From: Alice <alice@ext.e2e.test>\r\nTo: bob@dest.e2e.test\r\n'
		printf 'Subject: passthrough %s\r\nMessage-ID: <pt-%s@e2e.test>\r\n' "$body" "$body"
		printf 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n'
		printf 'Content-Transfer-Encoding: 8bit\r\n\r\n'
		case $body in
		plain) printf 'hello\r\nworld\r\n' ;;
		dots) printf '.\r\n..\r\n.leading\r\n...three\r\nend\r\n' ;;
		eightbit) printf 'Gr\xc3\xbc\xc3\x9fe, \xe2\x82\xac 100\r\n\xff\xfe invalid utf-8\r\n' ;;
		longline) head -c 990 /dev/zero | tr '\0' 'x'; printf '\r\n' ;;
		esac
	} >"$f"
	out=$(sg_swaks --server "127.0.0.1:$SG_PORT" --from alice@ext.e2e.test \
		--to bob@dest.e2e.test --data "@$f")
	printf '%s\n' "$out" >"$T/swaks-$body.out"
	id=$(printf '%s\n' "$out" | sed -n 's/^<-  250 2\.0\.0 Ok: queued as \([0-9A-F]\{16\}\).*/\1/p' | tail -1)
	[ -n "$id" ] || sg_fail "no mail ID in the 250 reply: $(grep '^<-  250' "$T/swaks-$body.out" | tail -1)"
	sg_wait_msgs "$T/sink" "$n" 30
	got=$(grep -l "Message-ID: <pt-$body@e2e.test>" "$T/sink"/*.eml | head -1)
	[ -n "$got" ] || sg_fail "message $body not found in the sink"
	# What swaks sent: its transcript, dots unstuffed, CRLF line ends.
	sg_swaks_data "$T/swaks-$body.out" | tr -d '\r' | sed 's/$/\r/' >"$T/want-$body.eml"
	strip_ours "$got" >"$T/got-$body.eml"
	cmp -s "$T/want-$body.eml" "$T/got-$body.eml" || {
		diff -u "$T/want-$body.eml" "$T/got-$body.eml" | head -40 >&2
		sg_fail "message $body changed on the way through sealgated"
	}
	first=$(head -1 "$got")
	sg_assert_match "$first" "^Received: from " "our Received header on top ($body)"
	sg_assert_file_has "$SG_LOG" "$id: .*from=<alice@ext.e2e.test>" "log line with mail ID and sender ($body)"
	# One grep for the ID shows reception, processing and delivery: mail
	# that passes unchanged keeps its ID to the end (no parent, no copy).
	sg_wait_until 20 "the pipeline's log line for $id" grep -Eq "$id: .*action=pass, outputs=1" "$SG_LOG"
	sg_wait_until 20 "log of the delivery of $id" grep -Eq "^.*$id: to=<bob@dest.e2e.test>, relay=.*status=sent" "$SG_LOG"
done

# STARTTLS: swaks negotiates TLS (required), the message passes.
out=$(sg_swaks --server "127.0.0.1:$SG_PORT" --tls --from alice@ext.e2e.test \
	--to bob@dest.e2e.test --header "Message-ID: <pt-tls@e2e.test>" 2>&1) || sg_fail "swaks --tls: $out"
sg_assert_match "$out" 'STARTTLS' "swaks used STARTTLS"
sg_assert_match "$out" '<~  250' "replies over TLS (swaks marks them <~)"
sg_assert_match "$out" '250 2\.0\.0 Ok: queued as [0-9A-F]{16}' "250 over TLS"
sg_wait_until 30 "the TLS message at the receiver" sh -c "grep -lq 'pt-tls@e2e.test' '$T/sink'/*.eml"

# Every log line that names a message starts with its ID.
if grep -E 'from=<|to=<' "$SG_LOG" | grep -Ev '[0-9A-F]{16}: ' | grep -q .; then
	grep -E 'from=<|to=<' "$SG_LOG" | grep -Ev '[0-9A-F]{16}: ' | head -5 >&2
	sg_fail "log lines about a message without its mail ID"
fi
sg_wait_until 20 "an empty queue" sh -c "[ \"\$($SGC -c $SG_CONF queue list --json | tr -d ' \n')\" = '[]' ]"
sg_daemon_stop
