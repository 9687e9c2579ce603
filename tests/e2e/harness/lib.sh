# lib.sh - harness for the Sealgate end-to-end tests (STYLE §11). Source it from
# a test script, then call sg_begin NAME first.
#
# Everything a test starts binds 127.0.0.1 on a free port and lives in a temp
# dir ($T) that is removed when the test passes and kept (path printed, log
# tails shown) when it fails. SG_KEEP=1 keeps it always.
#
# Peers: sealgated ($SG_BUILD/sealgated), smtp-sink (Postfix's), a scriptable
# Python receiver/sender (harness/sgsmtp.py), a private Postfix instance, and a
# private PostgreSQL server (scripts/test-pg).
#
# Variables after sg_begin: T (temp dir), SG_SRC, SG_BUILD, SGD (daemon), SGC (cli).
# After sg_daemon_config: SG_CONF, SG_PORT, SG_DATA, SG_LOG; after
# sg_daemon_start: SG_PID.

set -euo pipefail

SG_SRC=${SG_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
SG_BUILD=${SG_BUILD:-$SG_SRC/build}
SGD=$SG_BUILD/sealgated
SGC=$SG_BUILD/sealgate
SG_HARNESS=$SG_SRC/tests/e2e/harness
SG_PY=${SG_PY:-python3}
SGSMTP="$SG_PY $SG_HARNESS/sgsmtp.py"

declare -A SG_PIDS=()        # name -> pid of background helpers
declare -A SG_PORTS=()       # name -> port of started peers
SG_POSTFIX_DIRS=()           # private Postfix instances to stop
SG_PG_DIRS=()                # private PostgreSQL servers to stop
SG_MOUNTS=()                 # tmpfs mounts to unmount
SG_PID=
SG_T0=$(date +%s)

sg_log() { printf '[%s +%ss] %s\n' "${SG_NAME:-e2e}" "$(( $(date +%s) - SG_T0 ))" "$*" >&2; }

# sg_fail MSG - print, show diagnostics, exit 1 (the EXIT trap keeps $T).
sg_fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

sg_skip_unless_built() {
	if [ ! -x "$SGD" ] || [ ! -x "$SGC" ]; then
		sg_fail "$SGD or $SGC not built (build the project first)"
	fi
}

# sg_begin NAME - temp dir, cleanup trap.
sg_begin() {
	SG_NAME=$1
	T=$(mktemp -d "/tmp/sg-e2e-$SG_NAME.XXXXXX")
	chmod 755 "$T"     # Postfix and smtp-sink run as user postfix inside $T
	trap sg__exit EXIT
	trap 'exit 130' INT TERM
	sg_log "temp dir $T"
}

sg__exit() {
	local rc=$? n pid d
	set +e
	if [ -n "$SG_PID" ] && kill -0 "$SG_PID" 2>/dev/null; then
		kill -TERM "$SG_PID" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$SG_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SG_PID" 2>/dev/null
	fi
	for n in "${!SG_PIDS[@]}"; do
		pid=${SG_PIDS[$n]}
		kill -TERM "$pid" 2>/dev/null
	done
	for d in "${SG_POSTFIX_DIRS[@]}"; do
		postfix -c "$d/conf" stop >/dev/null 2>&1
	done
	for d in "${SG_PG_DIRS[@]}"; do
		"$SG_SRC/scripts/test-pg" stop "$d" >/dev/null 2>&1
	done
	wait 2>/dev/null
	for d in "${SG_MOUNTS[@]}"; do
		umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null
	done
	if [ $rc -eq 0 ] && [ -z "${SG_KEEP:-}" ]; then
		rm -rf "$T"
		printf 'PASS: %s (%ss)\n' "$SG_NAME" "$(( $(date +%s) - SG_T0 ))" >&2
	else
		if [ -n "${SG_LOG:-}" ] && [ -f "$SG_LOG" ]; then
			printf -- '--- last lines of %s\n' "$SG_LOG" >&2
			tail -n 40 "$SG_LOG" >&2
		fi
		for d in "${SG_POSTFIX_DIRS[@]}"; do
			[ -f "$d/maillog" ] && { printf -- '--- last lines of %s\n' "$d/maillog" >&2; tail -n 15 "$d/maillog" >&2; }
		done
		printf 'kept: %s (exit %s)\n' "$T" "$rc" >&2
	fi
	exit $rc
}

# sg_free_port - print a free TCP port on 127.0.0.1.
sg_free_port() {
	$SG_PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# sg_wait_port PORT [TIMEOUT] - wait for an SMTP 220 greeting.
sg_wait_port() {
	$SGSMTP wait --server "127.0.0.1:$1" --timeout "${2:-20}"
}

# sg_bg NAME CMD... - run CMD in the background, output to $T/NAME.log.
sg_bg() {
	local name=$1; shift
	"$@" >"$T/$name.log" 2>&1 &
	SG_PIDS[$name]=$!
}

# sg_stop NAME - stop a background helper started with sg_bg.
sg_stop() {
	local pid=${SG_PIDS[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "SG_PIDS[$1]"
}

# ------------------------------------------------------------------ assertions

sg_assert_eq() { # GOT WANT WHAT
	[ "$1" = "$2" ] || sg_fail "$3: got '$1' want '$2'"
}
sg_assert_le() { # GOT MAX WHAT
	[ "$1" -le "$2" ] || sg_fail "$3: got $1 want <= $2"
}
sg_assert_ge() { # GOT MIN WHAT
	[ "$1" -ge "$2" ] || sg_fail "$3: got $1 want >= $2"
}
sg_assert_match() { # STRING ERE WHAT
	[[ $1 =~ $2 ]] || sg_fail "$3: got '$1' want a match of /$2/"
}
sg_assert_file_has() { # FILE ERE WHAT
	grep -Eq -- "$2" "$1" || sg_fail "$3: no line matching /$2/ in $1"
}
sg_assert_alive() { # WHAT
	[ -n "$SG_PID" ] && kill -0 "$SG_PID" 2>/dev/null || sg_fail "$1: sealgated (pid ${SG_PID:-none}) is not running"
}

# sg_wait_until TIMEOUT WHAT CMD... - poll CMD every 0.2 s until it succeeds.
sg_wait_until() {
	local timeout=$1 what=$2; shift 2
	local end=$(( $(date +%s) + timeout ))
	while ! "$@"; do
		[ "$(date +%s)" -lt "$end" ] || sg_fail "timed out after ${timeout}s waiting for $what"
		sleep 0.2
	done
}

# --------------------------------------------------------------------- sealgated

# sg_daemon_config [section.key=value ...] - write $T/sg/sealgate.conf with a
# free listen port (SG_PORT) and data dir $T/sg/data; arguments override or add
# keys (next_hop defaults to SG_NEXT_HOP or 127.0.0.1:9). Does not start it.
sg_daemon_config() {
	SG_DATA=$T/sg/data
	mkdir -p "$SG_DATA"
	SG_CONF=$T/sg/sealgate.conf
	SG_LOG=$T/sg/sealgated.log
	SG_PORT=${SG_PORT:-$(sg_free_port)}
	declare -A kv=(
		[general.data_dir]=$SG_DATA
		[general.hostname]=sealgate.e2e.test
		[general.log_level]=info
		[smtp.mode]=standalone
		[smtp.listen]=127.0.0.1:$SG_PORT
		[smtp.next_hop]=${SG_NEXT_HOP:-127.0.0.1:9}
		[http.listen]=
	)
	local a sec key
	for a in "$@"; do kv[${a%%=*}]=${a#*=}; done
	: >"$SG_CONF"
	for sec in general smtp mpa delivery http; do
		printf '[%s]\n' "$sec" >>"$SG_CONF"
		for key in "${!kv[@]}"; do
			[ "${key%%.*}" = "$sec" ] && printf '%s = %s\n' "${key#*.}" "${kv[$key]}" >>"$SG_CONF"
		done
	done
	return 0
}

# sg_cli ARGS... - run the sealgate CLI against the test config.
sg_cli() {
	"$SGC" -c "$SG_CONF" "$@"
}

# sg_mta_set NAME=VALUE... - standalone MTA settings (before the daemon starts).
sg_mta_set() {
	sg_cli mta set "$@" >>"$T/sg/cli.log" 2>&1 || { cat "$T/sg/cli.log" >&2; sg_fail "sealgate mta set $*"; }
}

# sg_daemon_start - start sealgated in the foreground (background job), wait for
# its 220 greeting; fails if it exits first.
sg_daemon_start() {
	printf -- '--- start %s\n' "$(date -u +%FT%TZ)" >>"$SG_LOG"
	"$SGD" -c "$SG_CONF" >>"$SG_LOG" 2>&1 &
	SG_PID=$!
	local end=$(( $(date +%s) + 30 ))
	while ! $SGSMTP wait --server "127.0.0.1:$SG_PORT" --timeout 1; do
		kill -0 "$SG_PID" 2>/dev/null || { wait "$SG_PID"; sg_fail "sealgated exited during start-up (status $?)"; }
		[ "$(date +%s)" -lt "$end" ] || sg_fail "sealgated did not greet on port $SG_PORT within 30s"
	done
	sg_log "sealgated pid $SG_PID on 127.0.0.1:$SG_PORT"
}

# sg_daemon_stop - SIGTERM; asserts a clean exit (0) within 60 s.
sg_daemon_stop() {
	local rc=0
	kill -TERM "$SG_PID"
	for _ in $(seq 1 600); do kill -0 "$SG_PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$SG_PID" 2>/dev/null && sg_fail "sealgated did not exit within 60s of SIGTERM"
	wait "$SG_PID" || rc=$?
	SG_PID=
	sg_assert_eq "$rc" 0 "sealgated exit status after SIGTERM"
}

# sg_daemon_kill9 - crash the daemon.
sg_daemon_kill9() {
	kill -KILL "$SG_PID" 2>/dev/null || true
	wait "$SG_PID" 2>/dev/null || true
	printf -- '--- kill -9 %s\n' "$(date -u +%FT%TZ)" >>"$SG_LOG"
	SG_PID=
}

# sg_daemon_vmhwm - peak RSS (VmHWM) of the running daemon in kB.
sg_daemon_vmhwm() {
	awk '/^VmHWM:/ {print $2}' "/proc/$SG_PID/status"
}

# sg_queue_count QUEUE - number of messages `sealgate queue list QUEUE --json` shows.
sg_queue_count() {
	sg_cli queue list "$1" --json 2>>"$T/sg/cli.log" | $SG_PY -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict):
    for k in ("messages", "queue", "items"):
        if k in d:
            d = d[k]
            break
print(len(d))'
}

# ------------------------------------------------------------------ SMTP peers

# sg_sink_start NAME [smtp-sink options...] - smtp-sink on a free port, one dump
# file per message under $T/NAME/. Port in SG_PORTS[NAME].
sg_sink_start() {
	local name=$1; shift
	local port=${SG_PORT_WANT:-$(sg_free_port)}
	mkdir -p "$T/$name"
	chown postfix "$T/$name"
	(cd "$T/$name" && exec smtp-sink -u postfix -h "$name.e2e.test" -d "$T/$name/%Y%m%d%H/%M." "$@" \
		"127.0.0.1:$port" 1000) >"$T/$name.log" 2>&1 &
	SG_PIDS[$name]=$!
	SG_PORTS[$name]=$port
	sg_wait_port "$port" 10 || sg_fail "smtp-sink $name did not start on $port"
}

# sg_recv_start NAME [MODE] [--discard] - Python receiver on a free port (or
# SG_PORT_WANT); messages in $T/NAME/*.eml + *.json; mode in $T/NAME.mode.
sg_recv_start() {
	local name=$1 mode=${2:-accept}; shift; [ $# -gt 0 ] && shift
	local port=${SG_PORT_WANT:-$(sg_free_port)}
	mkdir -p "$T/$name"
	[ -f "$T/$name.mode" ] || printf '%s\n' "$mode" >"$T/$name.mode"
	$SGSMTP recv --listen "127.0.0.1:$port" --dir "$T/$name" --mode-file "$T/$name.mode" \
		--name "$name" "$@" >>"$T/$name.log" 2>&1 &
	SG_PIDS[$name]=$!
	SG_PORTS[$name]=$port
	sg_wait_port "$port" 10 || sg_fail "receiver $name did not start on $port"
}

# sg_recv_mode NAME MODE - change the receiver's reply policy.
sg_recv_mode() { printf '%s\n' "$2" >"$T/$1.mode"; }

# sg_msg_count DIR - number of delivered messages (receiver .eml/.json or smtp-sink dumps).
sg_msg_count() {
	local d=$1
	if compgen -G "$d/*.json" >/dev/null; then
		find "$d" -maxdepth 1 -name '*.json' | wc -l
	else
		find "$d" -type f ! -name '.*' | wc -l
	fi
}

# sg_msg_ids DIR - Message-IDs of delivered messages, sorted (duplicates kept).
sg_msg_ids() {
	if compgen -G "$1/*.json" >/dev/null; then
		$SG_PY -c '
import json, sys, glob
for p in glob.glob(sys.argv[1] + "/*.json"):
    print(json.load(open(p)).get("message_id"))' "$1" | sort
	else
		$SGSMTP ids "$1" | sort
	fi
}

# sg_wait_msgs DIR N TIMEOUT - wait until DIR holds at least N messages.
sg_wait_msgs() {
	local d=$1 n=$2 timeout=$3
	sg_wait_until "$timeout" "$n message(s) in $d (have \$(sg_msg_count $d))" sg__has_msgs "$d" "$n"
}
sg__has_msgs() { [ "$(sg_msg_count "$1")" -ge "$2" ]; }

# sg_swaks ARGS... - swaks with quiet defaults; transcript on stdout.
sg_swaks() {
	swaks --hide-informational --helo sender.e2e.test "$@" 2>&1
}

# sg_sink_strip FILE - print a smtp-sink dump without smtp-sink's own records
# (X-Client-*, X-Helo-Args, X-Mail-Args, X-Rcpt-Args and its 3-line Received).
sg_sink_strip() {
	awk 'state == 2 { print; next }
	     state == 0 && /^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): / { next }
	     state == 0 && /^Received: .*\(\[/ { state = 1; next }
	     state == 1 && /^[ \t]/ { next }
	     state == 1 { state = 2; print; next }
	     { state = 2; print }' "$1"
}

# ---------------------------------------------------------------- private Postfix

# sg_postfix_start NAME SMTPD_PORT RELAYHOST_PORT - a private Postfix instance in
# $T/NAME listening on 127.0.0.1:SMTPD_PORT and relaying everything to
# [127.0.0.1]:RELAYHOST_PORT. Extra main.cf lines: $T/NAME.main.extra; extra
# master.cf entries: $T/NAME.master.extra (appended before start).
sg_postfix_start() {
	local name=$1 port=$2 relay=$3
	local d=$T/$name
	mkdir -p "$d/conf" "$d/queue" "$d/data"
	chown postfix: "$d/data"; chmod 700 "$d/data"
	sg__postfix_register "$d/conf"
	cp /usr/share/postfix/master.cf.dist "$d/conf/master.cf"
	cat >"$d/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $d
myhostname = $name.e2e.test
mydomain = e2e.test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$relay
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
message_size_limit = 0
default_process_limit = 100
EOF
	[ -f "$T/$name.main.extra" ] && cat "$T/$name.main.extra" >>"$d/conf/main.cf"
	postconf -c "$d/conf" -M "smtp/inet=127.0.0.1:$port inet n - n - - smtpd"
	[ -f "$T/$name.master.extra" ] && cat "$T/$name.master.extra" >>"$d/conf/master.cf"
	postconf -c "$d/conf" -F '*/*/chroot = n'
	SG_POSTFIX_DIRS+=("$d")
	SG_PORTS[$name]=$port
	# Postfix reports start-up problems only on a terminal or in its log.
	script -qec "postfix -c $d/conf start" /dev/null >"$d/start.log" 2>&1 \
		|| { cat "$d/start.log" >&2; sg_fail "postfix $name did not start"; }
	sg_wait_port "$port" 20 || { cat "$d/start.log" >&2; sg_fail "postfix $name not listening on $port"; }
	sg_log "postfix $name on 127.0.0.1:$port relaying to 127.0.0.1:$relay"
}

# The default /etc/postfix/main.cf must list every alternate configuration
# directory (Postfix refuses others). Serialised with flock; entries of
# directories that no longer exist are pruned.
sg__postfix_register() {
	local conf=$1
	(
		flock 9
		[ -f /etc/postfix/main.cf ] || printf 'compatibility_level = 3.6\n' >/etc/postfix/main.cf
		local cur new="" d
		cur=$(postconf -h alternate_config_directories 2>/dev/null | tr ',' ' ')
		for d in $cur; do
			[ -d "$d" ] && [ "$d" != "$conf" ] && new="$new $d"
		done
		postconf -e "alternate_config_directories =$new $conf"
	) 9>/etc/postfix/.sealgate-e2e.lock
}

# sg_postfix_wait_empty NAME TIMEOUT - wait until the instance's queue is empty.
sg_postfix_wait_empty() {
	sg_wait_until "$2" "postfix $1 queue to drain" sg__postfix_empty "$T/$1"
}
sg__postfix_empty() { postqueue -c "$1/conf" -p 2>/dev/null | grep -q 'Mail queue is empty'; }

# ------------------------------------------------------------- private PostgreSQL

# sg_pg_start NAME - start a private PostgreSQL; URL in SG_PG_URL.
sg_pg_start() {
	local d=$T/$1
	SG_PG_URL=$("$SG_SRC/scripts/test-pg" start "$d") || sg_fail "scripts/test-pg start failed: $(cat "$d"/*.log 2>/dev/null | tail -5)"
	SG_PG_DIRS+=("$d")
	sg_log "postgresql $SG_PG_URL"
}

# sg_pg_stop NAME / sg_pg_restart NAME - stop (immediate) and start again on the
# same port with the options scripts/test-pg uses.
sg_pg_stop() {
	"$SG_SRC/scripts/test-pg" stop "$T/$1"
}
sg_pg_restart() {
	local d=$T/$1 bindir port
	bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	port=${SG_PG_URL##*:}; port=${port%%/*}
	runuser -u postgres -- "$bindir/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$d -c fsync=off -c max_connections=200" \
		start >/dev/null || sg_fail "postgresql restart failed"
}

# ---------------------------------------------------------------------- tmpfs

# sg_tmpfs DIR SIZE - mount a tmpfs of SIZE (e.g. 4m) on DIR; fails loudly when
# mounting is not permitted.
sg_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1" || sg_fail "cannot mount tmpfs on $1 (need root / CAP_SYS_ADMIN)"
	SG_MOUNTS+=("$1")
}

# sg_swaks_data TRANSCRIPT - the message swaks sent (DATA content, dots
# unstuffed, LF line ends), taken from its transcript.
sg_swaks_data() {
	awk '/^<-  354/ { on = 1; next }
	     on && /^ -> \.$/ { exit }
	     on && /^ -> / { l = substr($0, 5); if (substr(l, 1, 1) == ".") l = substr(l, 2); print l }' "$1"
}
