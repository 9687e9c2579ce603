#!/bin/bash
# e2e_bad_input - hostile SMTP input gets a clear reply, never a crash, and
# loses nothing: malformed commands, bare LF / bare CR, NUL bytes, a 10 MB
# line, 100k recipients, broken MIME, invalid UTF-8. After every case the
# daemon still answers and a normal message still passes.
. "$(dirname "$0")/harness/lib.sh"
sg_begin bad-input
sg_skip_unless_built

sg_recv_start recv
SG_NEXT_HOP=127.0.0.1:${SG_PORTS[recv]}
sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"
sg_daemon_start

raw() { $SGSMTP raw --server "127.0.0.1:$SG_PORT" --timeout 30 "$@" 2>&1; }
# expect NAME ERE OUTPUT
expect() { [[ $3 =~ $2 ]] || { printf '%s\n' "$3" >&2; sg_fail "$1: replies do not match /$2/"; }; sg_assert_alive "$1"; }

out=$(raw R "S:EHLO x\r\n" R "S:FROBNICATE\r\n" R "S:MAIL FROM:<a@b\r\n" R "S:RCPT TO:<c@d>\r\n" R "S:DATA\r\n" R "S:QUIT\r\n" R)
expect "malformed commands" $'500 [^\n]*\n501 [^\n]*\n503 [^\n]*\n503 [^\n]*\n221' "$out"

out=$(raw R "S:EHLO x\n" R "S:MAIL FROM:<a@ext.e2e.test>\rRCPT TO:<b@x>\r\n" "R*" "S:QUIT\r\n" R)
expect "bare LF / bare CR in commands" '^220 .*(250|500|501)' "$out"

out=$(raw R "S:EHLO x\r\n" R "S:MAIL FROM:<a\x00b@ext.e2e.test>\r\n" R "S:QUIT\r\n" R)
expect "NUL byte in a command" $'250[^\n]*\n5[0-9][0-9] ' "$out"

out=$(raw R "S:EHLO x\r\n" R "B:10485760:A" "S:\r\n" "R*" "S:QUIT\r\n" "R*")
expect "10 MB command line" '(500 |CLOSED|421 )' "$out"

out=$(raw R "S:EHLO x\r\n" R "S:MAIL FROM:<a@ext.e2e.test>\r\n" R "P:100000:RCPT TO:<r%n@dest.e2e.test>" "S:RSET\r\n" R "S:QUIT\r\n" R)
expect "100k recipients" 'PIPELINE 250=1000 421=1 452=[0-9]+' "$out"

# A 10 MB line inside DATA: refused or accepted, but answered and not crashing.
out=$(raw R "S:EHLO x\r\n" R "S:MAIL FROM:<a@ext.e2e.test>\r\n" R "S:RCPT TO:<b@dest.e2e.test>\r\n" R "S:DATA\r\n" R \
	"S:Subject: long\r\n\r\n" "B:10485760:B" "S:\r\n.\r\n" R "S:QUIT\r\n" R)
expect "10 MB line in DATA" $'354 [^\n]*\n(250|5[0-9][0-9]) ' "$out"

# NUL bytes in the body are refused clearly (RFC 5321 text is NUL-free).
printf 'Subject: nul\r\nMessage-ID: <nul-1@e2e.test>\r\n\r\na NUL \x00 here\r\n' >"$T/nul.eml"
r=$($SGSMTP send-file --server "127.0.0.1:$SG_PORT" --file "$T/nul.eml" --sender a@ext.e2e.test --rcpt b@dest.e2e.test || true)
sg_assert_match "$r" '^554 554 5\.6\.0 ' "NUL byte in DATA refused"
sg_assert_alive "NUL in DATA"

# Broken MIME, invalid UTF-8 and a bare LF: accepted and delivered unchanged
# (we are a relay, not a validator), except that the bare LF becomes CRLF.
printf 'Subject: broken \xff\xfe mime\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\nMessage-ID: <broken-1@e2e.test>\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nno closing boundary, a bare LF\nand \xc3\x28 invalid UTF-8\r\n' >"$T/broken.eml"
r=$($SGSMTP send-file --server "127.0.0.1:$SG_PORT" --file "$T/broken.eml" --sender a@ext.e2e.test --rcpt b@dest.e2e.test || true)
sg_assert_match "$r" '^250 ' "broken MIME accepted"
sg_wait_msgs "$T/recv" 1 30
got=$(ls "$T/recv"/*.eml | head -1)
# drop our Received header (first header + continuation lines)
awk 'NR == 1 && /^Received: / { skip = 1; next } skip && /^[ \t]/ { next } { skip = 0; print }' "$got" >"$T/broken.got"
sed 's/a bare LF$/a bare LF\r/' "$T/broken.eml" >"$T/broken.want"
cmp "$T/broken.want" "$T/broken.got" || sg_fail "broken MIME message was changed in transit"

# Still healthy: a normal message passes.
out=$(sg_swaks --server "127.0.0.1:$SG_PORT" --from a@ext.e2e.test --to b@dest.e2e.test --header "Message-Id: <after@e2e.test>")
sg_assert_match "$out" '250 2\.0\.0 Ok: queued as' "normal message after the hostile input"
sg_wait_msgs "$T/recv" 2 30
sg_daemon_stop
