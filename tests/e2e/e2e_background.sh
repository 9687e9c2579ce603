#!/bin/bash
# e2e_background - the daemon's background jobs: an SMS queued with the CLI
# (F-SMS-1) is sent by the running daemon through the configured transport
# (the file transport here) within its 10 s round, and leaves the queue; a
# certificate request queued for the delayed CA handler (F-CA-3) is issued
# by the running daemon.
. "$(dirname "$0")/harness/lib.sh"
sg_begin background
sg_skip_unless_built

sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"
sg_cli sms settings set transport=file "file.path=$T/sms.out" >/dev/null || sg_fail "sms settings"
sg_cli ca create --name E2E --key p256 >/dev/null || sg_fail "ca create"
out=$(sg_cli ca issue carol@corp.e2e.test --handler delayed) || sg_fail "ca issue: $out"
sg_assert_match "$out" 'queued' "delayed request queued"
sg_daemon_start
out=$(sg_cli sms add +31201234567 "Your password is 1234") || sg_fail "sms add: $out"
sg_assert_match "$out" '^queued [0-9]+ \+31201234567' "sms add output"
sg_wait_until 30 "the daemon to send the SMS" grep -qs 'Your password is 1234' "$T/sms.out"
sg_assert_file_has "$T/sms.out" '\+31201234567' "SMS recipient in the transport output"
# the row is removed right after the transport accepted the text
sg_wait_until 10 "an empty SMS queue" sh -c \
	"[ \"\$($SGC -c $SG_CONF sms list --json | $SG_PY -c 'import json,sys; print(len(json.load(sys.stdin)))')\" = 0 ]"
sg_assert_file_has "$SG_LOG" 'sms: sent=1' "daemon logged the sent SMS"
sg_wait_until 30 "the daemon to issue the delayed certificate" sh -c \
	"$SGC -c $SG_CONF cert list --email carol@corp.e2e.test --json | grep -q thumbprint"
sg_assert_file_has "$SG_LOG" 'ca worker: issued 1 certificate' "daemon logged the issued certificate"
sg_daemon_stop
