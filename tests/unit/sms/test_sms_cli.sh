#!/bin/sh
# test_sms_cli.sh - `sealgate sms list|add|delete|retry|run|settings` as an
# administrator runs them (SPEC §13, F-SMS-1..3): numbers normalised (guide
# §4.5, default country code from the global property), list text and --json,
# delivery through the file transport, refusals with non-zero exit and a
# message on stderr, secrets hidden in `sms settings` unless --reveal.
set -eu
SG=${SG_BUILD:?}/sealgate
dir=$(mktemp -d /tmp/sg-test-sms-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
printf '[general]\ndata_dir = %s\n' "$dir" > "$dir/c.ini"
sg() { "$SG" -c "$dir/c.ini" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
refused() {
	want=$1; shift
	if sg "$@" >"$dir/out" 2>"$dir/err"; then fail "accepted: $*"; fi
	grep -q -- "$want" "$dir/err" || fail "'$*': stderr lacks '$want': $(cat "$dir/err")"
}
py() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

sg init >/dev/null
sg sms list --json | py 'assert d == [], d' || fail "empty list --json"
[ -z "$(sg sms list)" ] || fail "empty list prints nothing"

# add: guide §4.5 forms
sg sms add '+31-(123)456' 'first message' > "$dir/out"
grep -q '^queued 1 +31123456$' "$dir/out" || fail "add prints the id: $(cat "$dir/out")"
sg sms add '0044 20 7946 0000' 'second' --ref 18F3A2B4C5D6E7F8 >/dev/null
refused "bad phone number '0612345678'" sms add 0612345678 'x'
sg global set sms_default_country_code=31
sg sms add '06 1234 5678' 'third' --json | py 'assert d == {"id": 3, "phone": "+31612345678"}, d' \
	|| fail "national number with the global default country code"
sg sms add '06 1234 5678' 'fourth' --country +49 | grep -q '+49612345678$' || fail "--country"
refused "bad phone number '31=456'" sms add '31=456' 'x'
refused "SMS text is empty" sms add '+31612345678' ''
refused "usage" sms add '+31612345678'

sg sms list --json > "$dir/list.json"
py '
assert [e["id"] for e in d] == [1, 2, 3, 4], d
e = d[1]
assert e["phone"] == "+442079460000" and e["text"] == "second", e
assert e["ref"] == "18F3A2B4C5D6E7F8" and e["status"] == "queued" and e["attempts"] == 0, e
assert e["last_error"] is None and e["created"].endswith("Z"), e
' < "$dir/list.json" || fail "list --json"
sg sms list | grep -q '^2  *queued  *0  .* +442079460000  *second$' || fail "list text: $(sg sms list)"

# delete
sg sms delete 4
refused "no SMS with id 4" sms delete 4
refused "bad id" sms delete four

# transport none: run sends nothing
sg sms run | grep -q '^sent 0, deferred 0, failed 0$' || fail "run with transport none"

# settings: refusals, secrets
refused "unknown SMS setting 'colour'" sms settings set colour=red
refused "sms.http.method: bad value" sms settings set transport=http http.method=PUT
sg sms settings --json | py 'assert d["transport"] == "none"' || fail "nothing changed on refusal"
sg sms settings set http.password=Sup3r-S3cret http.username=gw
sg sms settings | grep -q '^http.password *= \*\*\*$' || fail "password hidden"
sg sms settings --json > "$dir/set.json"
grep -q Sup3r-S3cret "$dir/set.json" && fail "secret printed without --reveal"
py 'assert d["http.password"] == "***" and d["http.username"] == "gw" and d["http.timeout"] == 30' \
	< "$dir/set.json" || fail "settings --json"
sg sms settings --json --reveal | py 'assert d["http.password"] == "Sup3r-S3cret"' || fail "--reveal"

# file transport delivers and removes the sent messages
sg sms settings set transport=file "file.path=$dir/sms.txt"
sg sms run --json | py 'assert d == {"sent": 3, "deferred": 0, "failed": 0}, d' || fail "run file"
grep -q "	1	+31123456	first message$" "$dir/sms.txt" || fail "file transport: $(cat "$dir/sms.txt")"
[ "$(wc -l < "$dir/sms.txt")" -eq 3 ] || fail "three lines"
sg sms list --json | py 'assert d == []' || fail "sent messages removed"

# a failing transport: deferred with the error shown, retry makes it due
sg sms settings set transport=http http.url=http://127.0.0.1:1/ http.timeout=2
sg sms add '+31612345678' 'will fail' >/dev/null
sg sms run | grep -q '^sent 0, deferred 1, failed 0$' || fail "deferred"
sg sms list --json | py 'e = d[0]; assert e["attempts"] == 1 and "http transport" in e["last_error"], e' \
	|| fail "last_error"
sg sms list | grep -q 'error: http transport' || fail "list text shows the error"
sg sms retry 5
refused "no SMS with id 99" sms retry 99
echo ok
