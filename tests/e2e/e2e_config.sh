#!/bin/bash
# e2e_config - `sealgated -c FILE --check` (SPEC §13): a good file passes;
# unknown keys, bad values and bad addresses fail with file:line and a clear
# message; `sealgate init` is idempotent and creates the server secret once.
. "$(dirname "$0")/harness/lib.sh"
sg_begin config
sg_skip_unless_built

sg_daemon_config
"$SGD" -c "$SG_CONF" --check >"$T/ok.out" 2>&1 || sg_fail "good config refused: $(cat "$T/ok.out")"

check_bad() { # NAME LINE-TO-ADD ERE
	cp "$SG_CONF" "$T/bad-$1.conf"
	printf '%s\n' "$2" >>"$T/bad-$1.conf"
	local line; line=$(wc -l <"$T/bad-$1.conf")
	if "$SGD" -c "$T/bad-$1.conf" --check >"$T/bad-$1.out" 2>&1; then
		sg_fail "$1: accepted"
	fi
	sg_assert_file_has "$T/bad-$1.out" "bad-$1\.conf:$line: .*$3" "$1: error with file:line"
}
check_bad unknown-key 'frobnicate = 1' 'frobnicate'
check_bad bad-address 'listen = 127.0.0.1:99999' 'listen'
check_bad bad-value 'log_level = loud' 'log_level'
check_bad no-equals 'just some words' '='
if "$SGD" -c "$T/does-not-exist.conf" --check >"$T/missing.out" 2>&1; then sg_fail "missing file accepted"; fi
sg_assert_file_has "$T/missing.out" 'does-not-exist.conf' "missing file named in the error"

sg_cli init >"$T/init1.out" 2>&1 || sg_fail "init: $(cat "$T/init1.out")"
secret_of() { sqlite3 "$SG_DATA/sealgate.db" "SELECT value FROM settings WHERE key = 'server_secret'"; }
secret1=$(secret_of)
[ "${#secret1}" -ge 32 ] || sg_fail "no server secret after init (got '$secret1')"
sg_cli init >"$T/init2.out" 2>&1 || sg_fail "second init: $(cat "$T/init2.out")"
secret2=$(secret_of)
sg_assert_eq "$secret2" "$secret1" "server secret unchanged by a second init"
