#!/bin/bash
# e2e_postfix_mode - the production deployment (SPEC F-FLOW-2a): a real
# Postfix with the shipped docs/postfix/main.cf and master.cf snippets
# (ports rewritten to free test ports) hands mail to sealgated as a
# content_filter; sealgated re-injects it into Postfix, which delivers to
# smtp-sink. Every message arrives exactly once, after passing sealgated.
. "$(dirname "$0")/harness/lib.sh"
sg_begin postfix-mode
sg_skip_unless_built

sg_sink_start sink
pf_port=$(sg_free_port)
reinject_port=$(sg_free_port)
SG_PORT=$(sg_free_port)

# The shipped snippets, with the documented ports replaced by the test's.
sed -e "s/127\.0\.0\.1\]:10025/127.0.0.1]:$SG_PORT/" "$SG_SRC/docs/postfix/main.cf" >"$T/pf.main.extra"
sed -e "s/^127\.0\.0\.1:10026 /127.0.0.1:$reinject_port /" "$SG_SRC/docs/postfix/master.cf" >"$T/pf.master.extra"
grep -q "$SG_PORT" "$T/pf.main.extra" || sg_fail "docs/postfix/main.cf has no content_filter on 127.0.0.1:10025"
grep -q "$reinject_port" "$T/pf.master.extra" || sg_fail "docs/postfix/master.cf has no 127.0.0.1:10026 listener"

SG_NEXT_HOP=127.0.0.1:$reinject_port
sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"
sg_daemon_start
sg_postfix_start pf "$pf_port" "${SG_PORTS[sink]}"

# 1. swaks through Postfix: arrives once, with our Received header below
#    Postfix's re-injection one.
out=$(sg_swaks --server "127.0.0.1:$pf_port" --from a@ext.e2e.test --to b@dest.e2e.test \
	--header "Message-Id: <pfmode-1@e2e.test>" --body "through the content filter")
sg_assert_match "$out" '250 2\.0\.0 Ok: queued as' "Postfix accepted the message"
sg_wait_msgs "$T/sink" 1 60
f=$(grep -rl 'pfmode-1@e2e.test' "$T/sink" | head -1)
[ -n "$f" ] || sg_fail "message not delivered to the sink"
grep -q '(Sealgate)' "$f" || sg_fail "delivered message did not pass through sealgated (no Sealgate Received header)"
sg_assert_file_has "$SG_LOG" '[0-9A-F]{16}: .*from=<a@ext.e2e.test>' "sealgated logged the message"

# 2. smtp-source: 200 messages over 10 connections, all delivered exactly once.
smtp-source -c -l 2048 -m 200 -s 10 -f sender@ext.e2e.test -t rcpt@dest.e2e.test \
	"127.0.0.1:$pf_port" >"$T/smtp-source.log" 2>&1 || sg_fail "smtp-source failed: $(tail -3 "$T/smtp-source.log")"
sg_wait_msgs "$T/sink" 201 180
sg_postfix_wait_empty pf 60
sleep 1
sg_assert_eq "$(sg_msg_count "$T/sink")" 201 "messages at the sink (no duplicates)"
sg_assert_eq "$(grep -rl '(Sealgate)' "$T/sink" | wc -l)" 201 "messages that passed sealgated"
sg_daemon_stop
