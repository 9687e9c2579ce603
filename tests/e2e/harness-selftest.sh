#!/bin/bash
# harness-selftest - the e2e harness itself, without Sealgate: a private Postfix
# relays swaks and sgsmtp.py mail to smtp-sink and to the Python receiver, whose
# reply modes (tempfail, reject) work. If this fails, the other e2e failures are
# about the harness, not the gateway.
. "$(dirname "$0")/harness/lib.sh"
sg_begin harness-selftest

sg_sink_start sink
pf_port=$(sg_free_port)
sg_postfix_start pf "$pf_port" "${SG_PORTS[sink]}"

# 1. swaks -> Postfix -> smtp-sink: content arrives unchanged (dots included).
printf 'From: a@ext.test\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nSubject: selftest\r\nMessage-Id: <selftest-1@e2e>\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\nlast\r\n' >"$T/msg.eml"
out=$(sg_swaks --server "127.0.0.1:$pf_port" --from a@ext.test --to b@dest.test --data "@$T/msg.eml")
sg_assert_match "$out" '250 2\.0\.0 Ok: queued as' "Postfix 250 reply"
sg_wait_msgs "$T/sink" 1 20
f=$(find "$T/sink" -type f | head -1)
sg_sink_strip "$f" >"$T/stripped.eml"
# Postfix adds one Received header (3 lines) at the top.
# Compared without CRs, and without the blank line smtp-sink adds at the end.
tail -n +4 "$T/stripped.eml" | tr -d '\r' | sed -e '$ { /^$/d }' >"$T/got.eml"
printf '%s\n' "$out" >"$T/swaks.out"
sg_swaks_data "$T/swaks.out" | tr -d '\r' >"$T/want.eml"
diff -u "$T/want.eml" "$T/got.eml" >&2 || sg_fail "message changed on the way through Postfix"
sg_assert_eq "$(sg_msg_ids "$T/sink")" "<selftest-1@e2e>" "Message-ID in the sink"

# 2. sgsmtp send -> Postfix -> smtp-sink: 50 messages, 5 connections.
$SGSMTP send --server "127.0.0.1:$pf_port" --count 50 --concurrency 5 --size 4000 \
	--transcript "$T/send.tsv" >"$T/send.out"
sg_assert_eq "$(awk -F'\t' '$2 == 250' "$T/send.tsv" | wc -l)" 50 "250 replies from Postfix"
sg_wait_msgs "$T/sink" 51 30
sg_postfix_wait_empty pf 30
sort -u <(cut -f1 "$T/send.tsv") >"$T/sent.ids"
sg_msg_ids "$T/sink" | grep -v selftest >"$T/got.ids"
diff "$T/sent.ids" "$T/got.ids" >&2 || sg_fail "Message-IDs sent vs delivered differ"

# 3. Python receiver modes.
sg_recv_start rx accept
rxp=${SG_PORTS[rx]}
out=$(sg_swaks --server "127.0.0.1:$rxp" --from a@x.test --to b@y.test --header 'Message-Id: <rx-1@e2e>')
sg_assert_match "$out" '250 2\.0\.0 Ok: queued as R' "receiver accept"
sg_recv_mode rx tempfail
out=$(sg_swaks --server "127.0.0.1:$rxp" --from a@x.test --to b@y.test --header 'Message-Id: <rx-2@e2e>' || true)
sg_assert_match "$out" '451 4\.3\.0' "receiver tempfail"
sg_recv_mode rx reject-rcpt
out=$(sg_swaks --server "127.0.0.1:$rxp" --from a@x.test --to b@y.test || true)
sg_assert_match "$out" '550 5\.1\.1' "receiver reject-rcpt"
sg_assert_eq "$(sg_msg_ids "$T/rx")" "<rx-1@e2e>" "receiver kept only the accepted message"

# 4. send-file streams a file with dot lines intact.
sg_recv_mode rx accept
printf 'Message-Id: <rx-3@e2e>\n\n.x\n..y\nz\n' >"$T/f.eml"
$SGSMTP send-file --server "127.0.0.1:$rxp" --file "$T/f.eml" >"$T/sf.out"
sg_wait_msgs "$T/rx" 2 10
got=$(tr -d '\r' <"$(ls "$T"/rx/*.eml | tail -1)")
sg_assert_eq "$got" "$(cat "$T/f.eml")" "send-file content"
exit 0
