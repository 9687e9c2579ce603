#!/bin/bash
# e2e_outage - outages lose nothing (F-FLOW-1, issue 2 "Outages"):
#  1. next hop down: accepted mail is deferred, and delivered when it is back;
#  2. next hop answers 5xx: a DSN bounce (RFC 3464) reaches the envelope
#     sender, and a bounce is never bounced;
#  3. spool disk full (a small tmpfs): 452 at SMTP, nothing already accepted
#     is lost;
#  4. database (PostgreSQL) down: 451 at SMTP, accepted mail still flows,
#     service resumes when the database is back.
. "$(dirname "$0")/harness/lib.sh"
sg_begin outage
sg_skip_unless_built

send_one() { # PORT MSGID FROM TO -> prints the final reply code
	sg_swaks --server "127.0.0.1:$1" --from "$3" --to "$4" --header "Message-Id: <$2>" \
		--body "outage test $2" >"$T/swaks-$2.out" || true
	sed -n 's/^<[-*]* *\([0-9][0-9][0-9]\) .*/\1/p' "$T/swaks-$2.out" | tail -2 | head -1
}
wait_queue() { # QUEUE N
	sg_wait_until 30 "$2 message(s) in queue $1" sh -c "[ \"\$(sg_queue_count_raw $1)\" -ge $2 ]"
}
sg_queue_count_raw() { sg_queue_count "$1"; }
export -f sg_queue_count sg_queue_count_raw 2>/dev/null || true

# ------------------------------------------------ 1. next hop down, then back
sec1() {
	local hop; hop=$(sg_free_port)
	SG_NEXT_HOP=127.0.0.1:$hop
	SG_PORT=$(sg_free_port)
	sg_daemon_config smtp.mode=postfix
	sg_cli init >/dev/null || sg_fail "sealgate init"
	sg_mta_set backoff_min=1s backoff_max=2s
	sg_daemon_start
	for i in 1 2 3; do
		sg_assert_eq "$(send_one "$SG_PORT" "down-$i@e2e.test" a@ext.e2e.test b@dest.e2e.test)" 250 "250 while the next hop is down ($i)"
	done
	sg_wait_until 30 "3 deferred messages" sh -c "[ \$($SGC -c $SG_CONF queue list deferred --json | $SG_PY -c 'import json,sys; print(len(json.load(sys.stdin)))') -ge 3 ]"
	sg_assert_file_has "$SG_LOG" '[0-9A-F]{16}: .*defer' "deferral logged with the mail ID"
	SG_PORT_WANT=$hop sg_recv_start hop1
	sg_wait_msgs "$T/hop1" 3 60
	sg_assert_eq "$(sg_msg_ids "$T/hop1" | tr '\n' ' ')" "<down-1@e2e.test> <down-2@e2e.test> <down-3@e2e.test> " "delivered after the outage"
	sg_daemon_stop
	sg_stop hop1
}

# ------------------------------------------- 2. 5xx -> bounce to the sender
# Bounces go to internal senders only (SPEC D-4: no backscatter), so the
# sender is in the relay domain and the refused recipient is external.
sec2() {
	rm -rf "$T/sg"; unset SG_PORT
	sg_recv_start internal accept
	sg_recv_start external reject-rcpt
	SG_PORT=$(sg_free_port)
	sg_daemon_config smtp.mode=standalone
	sg_cli init >/dev/null || sg_fail "sealgate init"
	sg_mta_set relay_domains=corp.e2e.test my_networks=127.0.0.0/8 \
		"internal_relay_host=[127.0.0.1]:${SG_PORTS[internal]}" \
		"external_relay_host=[127.0.0.1]:${SG_PORTS[external]}" backoff_min=1s backoff_max=2s
	sg_daemon_start
	sg_assert_eq "$(send_one "$SG_PORT" "bounce-1@e2e.test" alice@corp.e2e.test nobody@ext.e2e.test)" 250 "accepted for a recipient the next hop refuses"
	sg_wait_msgs "$T/internal" 1 60
	local j; j=$(ls "$T/internal"/*.json | head -1)
	local e=${j%.json}.eml
	$SG_PY - "$j" "$e" <<'PY' || sg_fail "the bounce is not a correct DSN"
import json, sys, email
meta = json.load(open(sys.argv[1]))
assert meta["from"] == "", "bounce envelope sender must be null, got %r" % meta["from"]
assert meta["to"] == ["alice@corp.e2e.test"], meta["to"]
m = email.message_from_binary_file(open(sys.argv[2], "rb"))
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
assert m["Auto-Submitted"] == "auto-generated", m["Auto-Submitted"]
# own mail (F-FLOW-7): the daemon signs its bounces with the server secret
import re
assert re.match(r"^[0-9A-F]{16}; [A-Za-z0-9+/=]{40,}$", m["X-Sealgate-Marker"] or ""), m["X-Sealgate-Marker"]
status = [p for p in m.walk() if p.get_content_type() == "message/delivery-status"]
assert status, "no message/delivery-status part"
text = status[0].as_string()
assert "nobody@ext.e2e.test" in text, text
assert "Action: failed" in text, text
assert "Status: 5." in text, text
PY
	sg_wait_until 30 "an empty queue" sh -c "[ \"\$($SGC -c $SG_CONF queue list --json | tr -d ' \n')\" = '[]' ]"
	# An external sender gets no bounce (no backscatter), the message is done.
	sg_assert_eq "$(send_one "$SG_PORT" "bounce-2@e2e.test" someone@ext.e2e.test nobody@ext.e2e.test)" 250 "relayed from my networks"
	sg_wait_until 30 "an empty queue" sh -c "[ \"\$($SGC -c $SG_CONF queue list --json | tr -d ' \n')\" = '[]' ]"
	# The bounce itself is never bounced: the internal side refuses it too.
	sg_recv_mode internal reject-rcpt
	sg_assert_eq "$(send_one "$SG_PORT" "bounce-3@e2e.test" alice@corp.e2e.test nobody@ext.e2e.test)" 250 "third message accepted"
	sg_wait_until 60 "the refused bounce to be dropped" grep -Eq 'status=bounced' "$SG_LOG"
	sg_wait_until 30 "an empty queue" sh -c "[ \"\$($SGC -c $SG_CONF queue list --json | tr -d ' \n')\" = '[]' ]"
	sleep 2
	sg_assert_eq "$(sg_msg_count "$T/internal")" 1 "bounces received (none for the external sender, none for the bounce)"
	sg_daemon_stop
	sg_stop internal; sg_stop external
}

# ---------------------------------------- 3. spool disk full -> 452, no loss
sec3() {
	rm -rf "$T/sg"; unset SG_PORT
	local hop; hop=$(sg_free_port)
	SG_NEXT_HOP=127.0.0.1:$hop
	SG_PORT=$(sg_free_port)
	sg_daemon_config smtp.mode=postfix "general.database=sqlite:$T/db.sqlite"
	sg_tmpfs "$SG_DATA" 3m
	sg_cli init >/dev/null || sg_fail "sealgate init"
	sg_mta_set backoff_min=1s backoff_max=2s
	sg_daemon_start
	head -c 200000 /dev/urandom | base64 >"$T/big.txt"
	local i code accepted=0 got452=0
	for i in $(seq 1 40); do
		code=$(sg_swaks --server "127.0.0.1:$SG_PORT" --from a@ext.e2e.test --to b@dest.e2e.test \
			--header "Message-Id: <full-$i@e2e.test>" --body "@$T/big.txt" >"$T/full-$i.out"; \
			sed -n 's/^<[-*]* *\([0-9][0-9][0-9]\) .*/\1/p' "$T/full-$i.out" | tail -2 | head -1)
		if [ "$code" = 250 ]; then
			accepted=$((accepted + 1)); echo "<full-$i@e2e.test>" >>"$T/full-accepted"
		elif [ "$code" = 452 ]; then
			got452=1; break
		else
			sg_fail "message $i: reply $code, want 250 or 452: $(tail -5 "$T/full-$i.out")"
		fi
	done
	sg_assert_eq "$got452" 1 "452 once the spool disk is full (after $accepted messages)"
	sg_assert_ge "$accepted" 1 "messages accepted before the disk was full"
	sg_assert_alive "after disk full"
	SG_PORT_WANT=$hop sg_recv_start hop3
	sg_wait_msgs "$T/hop3" "$accepted" 90
	sort "$T/full-accepted" >"$T/want3"
	sg_msg_ids "$T/hop3" | sort -u >"$T/got3"
	diff -u "$T/want3" "$T/got3" >&2 || sg_fail "messages accepted before the disk filled were lost"
	sg_daemon_stop
	sg_stop hop3
	umount "$SG_DATA"
}

# ---------------------------------------------- 4. database down -> 451
sec4() {
	rm -rf "$T/sg"; unset SG_PORT
	sg_pg_start pg
	sg_recv_start hop4
	SG_NEXT_HOP=127.0.0.1:${SG_PORTS[hop4]}
	SG_PORT=$(sg_free_port)
	sg_daemon_config smtp.mode=postfix "general.database=$SG_PG_URL"
	sg_cli init >/dev/null || sg_fail "sealgate init (PostgreSQL)"
	sg_daemon_start
	sg_assert_eq "$(send_one "$SG_PORT" "db-1@e2e.test" a@ext.e2e.test b@dest.e2e.test)" 250 "250 with the database up"
	sg_pg_stop pg
	sg_wait_until 30 "the daemon to notice the database outage" grep -q 'database unavailable' "$SG_LOG"
	sg_assert_eq "$(send_one "$SG_PORT" "db-2@e2e.test" a@ext.e2e.test b@dest.e2e.test)" 451 "451 while the database is down"
	sg_assert_alive "during the database outage"
	sg_pg_restart pg
	sg_wait_until 30 "the daemon to see the database again" grep -q 'database available again' "$SG_LOG"
	sg_assert_eq "$(send_one "$SG_PORT" "db-3@e2e.test" a@ext.e2e.test b@dest.e2e.test)" 250 "250 after the database is back"
	sg_wait_msgs "$T/hop4" 2 60
	sg_assert_eq "$(sg_msg_ids "$T/hop4" | tr '\n' ' ')" "<db-1@e2e.test> <db-3@e2e.test> " "accepted messages delivered"
	sg_daemon_stop
}

case ${1:-all} in
all) sec1; sec2; sec3; sec4 ;;
*) "sec$1" ;;
esac
