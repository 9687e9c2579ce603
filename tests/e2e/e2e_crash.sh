#!/bin/bash
# e2e_crash - no loss under crash (F-FLOW-1): 1,000 messages from 8 concurrent
# clients while sealgated is killed with SIGKILL at random moments (5 times)
# and restarted. Every message that got a 250 must reach the receiver (checked
# by Message-ID); none may be lost. Duplicates (delivered, then the crash came
# before the delivery state was saved) are allowed by SMTP's at-least-once
# semantics and are reported, not hidden.
. "$(dirname "$0")/harness/lib.sh"
sg_begin crash
sg_skip_unless_built

N=${SG_CRASH_MESSAGES:-1000}
KILLS=${SG_CRASH_KILLS:-5}
sg_recv_start recv accept --discard
SG_NEXT_HOP=127.0.0.1:${SG_PORTS[recv]}
sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"
sg_daemon_start

# The sender retries refused connections with new messages until N got a 250.
$SGSMTP send --server "127.0.0.1:$SG_PORT" --count "$N" --concurrency 8 --size 3000 \
	--transcript "$T/send.tsv" --timeout 30 --retry-delay 0.1 >"$T/send.out" 2>&1 &
sender=$!

for k in $(seq 1 "$KILLS"); do
	# a random moment 0.2 .. 0.8 s after the last (re)start
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.2 + (r % 600) / 1000 }')"
	kill -0 $sender 2>/dev/null || break
	sg_log "kill -9 number $k"
	sg_daemon_kill9
	sleep 0.2
	sg_daemon_start
done
wait $sender || sg_fail "sender did not get $N acceptances: $(cat "$T/send.out")"
sg_log "sender: $(cat "$T/send.out")"

awk -F'\t' '$2 == 250 { print $1 }' "$T/send.tsv" | sort -u >"$T/accepted.ids"
sg_assert_eq "$(wc -l <"$T/accepted.ids")" "$N" "distinct messages answered 250"
sg_wait_until 300 "every accepted message at the receiver" sh -c \
	"$SG_PY - '$T/recv' '$T/accepted.ids' <<'PY'
import glob, json, sys
got = set()
for p in glob.glob(sys.argv[1] + '/*.json'):
    try:
        got.add(json.load(open(p)).get('message_id'))
    except ValueError:
        pass
want = set(l.strip() for l in open(sys.argv[2]) if l.strip())
sys.exit(0 if want <= got else 1)
PY"
sg_msg_ids "$T/recv" >"$T/delivered.ids"
lost=$(comm -23 "$T/accepted.ids" <(sort -u "$T/delivered.ids") | wc -l)
dups=$(uniq -d "$T/delivered.ids" | wc -l)
sg_assert_eq "$lost" 0 "accepted messages lost"
sg_log "result: accepted=$N delivered=$(wc -l <"$T/delivered.ids") lost=$lost duplicates=$dups kills=$KILLS"
echo "crash-test: accepted=$N lost=$lost duplicates=$dups kills=$KILLS"
# Nothing is left behind: every queue drains.
sg_wait_until 60 "an empty spool" sh -c "[ \"\$($SGC -c $SG_CONF queue list --json | tr -d ' \n')\" = '[]' ]"
sg_daemon_stop
