#!/bin/bash
# e2e_crash_smime - no loss under crash on the processed path (F-FLOW-1,
# issues 2 and 7). Like e2e_crash.sh, but every message is changed by the
# pipeline: alice@corp (internal, signing key) -> bob@ext (certificate,
# encrypt_mode=mandatory), so each message is signed and encrypted and leaves
# the MPA as a one-output batch (nothing fsync'ed: the input moves to done/
# and the output into outgoing/; the input goes when the output is
# delivered; recovery checks an output whose input still exists and keeps
# it; see src/spool/spool_batch.c). 400 messages from 8 concurrent clients while
# sealgated is killed with SIGKILL 4 times at random moments and restarted.
#
# Asserts: every Message-ID that got a 250 arrives (the Message-ID field stays
# outside the encryption); every delivered message is enveloped-data without
# the plain text, and a sample decrypts (openssl cms, bob's key) to a
# signature openssl verifies over the original text; no input was processed
# twice (two deliveries of one Message-ID with different ciphertexts: a
# second processing, which the one-output batch rules out under kill -9);
# every queue drains, the error queue is empty, and spool/tmp, spool/batch
# and spool/done are empty after a clean stop. Redeliveries of the same output (delivered,
# then the crash came before the delivery state was saved) are allowed by
# SMTP's at-least-once semantics and are counted and printed, not failed.
#
# A second round (outputs=2) does the same with encryption_notification=true
# for alice: each input makes two outputs (bob's message and alice's
# notification) and takes the manifest path of spool_batch_commit; then every
# accepted message must also have its notification, and none may have two
# different ones.
#
# Environment: SG_CRASH_MESSAGES (400), SG_CRASH_KILLS (4) per round;
# SG_CRASH_OUTPUTS=1 or 2 runs only that round (default: 1, then 2).
if [ -z "${SG_CRASH_OUTPUTS:-}" ]; then
	SG_CRASH_OUTPUTS=1 "$0" || exit 1
	SG_CRASH_OUTPUTS=2 exec "$0"
fi
OUTPUTS=$SG_CRASH_OUTPUTS
. "$(dirname "$0")/harness/lib.sh"
sg_begin "crash_smime_outputs$OUTPUTS"
sg_skip_unless_built

N=${SG_CRASH_MESSAGES:-400}
KILLS=${SG_CRASH_KILLS:-4}
FROM=alice@corp.e2e.test
TO=bob@ext.e2e.test
[ "$OUTPUTS" = 1 ] || [ "$OUTPUTS" = 2 ] || sg_fail "SG_CRASH_OUTPUTS must be 1 or 2"
sg_recv_start recv accept
SG_NEXT_HOP=127.0.0.1:${SG_PORTS[recv]}
sg_daemon_config smtp.mode=postfix
sg_cli init >/dev/null || sg_fail "sealgate init"

# --- a CA, alice (signing key) and bob (certificate; his key stays here)
P=$T/pki
mkdir -p "$P"
printf 'secret\n' >"$P/pw"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 30 \
	-subj "/CN=E2E Crash Root" -addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 || sg_fail "openssl req CA"
mkuser() { # NAME EMAIL
	openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" \
		-subj "/CN=$1" >/dev/null 2>&1 || sg_fail "openssl req $1"
	printf 'subjectAltName=email:%s\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nbasicConstraints=CA:FALSE\n' "$2" >"$P/$1.ext"
	openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
		-days 30 -extfile "$P/$1.ext" -out "$P/$1.pem" >/dev/null 2>&1 || sg_fail "openssl x509 $1"
}
mkuser alice "$FROM"
mkuser bob "$TO"
openssl pkcs12 -export -in "$P/alice.pem" -inkey "$P/alice.key" -certfile "$P/ca.pem" \
	-passout "file:$P/pw" -out "$P/alice.p12" || sg_fail "openssl pkcs12 alice"

sg_cli cert import --roots "$P/ca.pem" >>"$T/cli.log" 2>&1 || sg_fail "cert import --roots"
sg_cli cert import "$P/bob.pem" >>"$T/cli.log" 2>&1 || sg_fail "cert import bob"
sg_cli key import "$P/alice.p12" --password-file "$P/pw" >>"$T/cli.log" 2>&1 ||
	sg_fail "key import alice"
sg_cli domain set corp.e2e.test locality=internal >>"$T/cli.log" 2>&1 || sg_fail "domain set corp"
# mandatory: a message that cannot be encrypted never reaches bob (the test
# would count it lost) and never reaches him in clear
sg_cli domain set ext.e2e.test encrypt_mode=mandatory pdf_encryption_allowed=false \
	>>"$T/cli.log" 2>&1 || sg_fail "domain set ext"
if [ "$OUTPUTS" = 2 ]; then
	sg_cli user set "$FROM" encryption_notification=true >>"$T/cli.log" 2>&1 ||
		sg_fail "user set alice"
	# notifications go to internal originators only (D-4): corp is ours
	sg_mta_set relay_domains=corp.e2e.test
fi
sg_daemon_start

# The sender retries refused connections with new messages until N got a 250.
$SGSMTP send --server "127.0.0.1:$SG_PORT" --count "$N" --concurrency 8 --size 3000 \
	--sender "$FROM" --rcpt "$TO" --transcript "$T/send.tsv" --timeout 30 \
	--retry-delay 0.1 >"$T/send.out" 2>&1 &
sender=$!

# Kills go on while the sender runs or processed mail is still to come (the
# MPA may lag behind the SMTP side). in_work counts the kills that found
# messages in incoming/ (the MPA's input): those hit the processed path.
kills=0
in_work=0
nfiles() { find "$SG_DATA/spool/$1" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
for k in $(seq 1 "$KILLS"); do
	# a random moment 0.02 .. 0.15 s after the last (re)start (the whole run
	# takes a few seconds: longer pauses would miss it)
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.02 + (r % 130) / 1000 }')"
	if ! kill -0 $sender 2>/dev/null && [ "$(sg_msg_count "$T/recv")" -ge $((N * OUTPUTS)) ]; then
		break
	fi
	# aim at the processed path: wait up to 1 s for input in incoming/
	for _ in $(seq 1 50); do
		inc=$(nfiles incoming)
		[ "$inc" -eq 0 ] || break
		sleep 0.02
	done
	sg_daemon_kill9
	kills=$((kills + 1))
	[ "$inc" -gt 0 ] && in_work=$((in_work + 1))
	sg_log "kill -9 number $k: incoming=$inc outgoing=$(nfiles outgoing) delivered=$(sg_msg_count "$T/recv")"
	sleep 0.05
	sg_daemon_start
done
wait $sender || sg_fail "sender did not get $N acceptances: $(cat "$T/send.out")"
sg_log "sender: $(cat "$T/send.out")"
sg_assert_ge "$in_work" 1 "kills while the MPA had input (of $kills kills)"

awk -F'\t' '$2 == 250 { print $1 }' "$T/send.tsv" | sort -u >"$T/accepted.ids"
sg_assert_eq "$(wc -l <"$T/accepted.ids")" "$N" "distinct messages answered 250"
# all_arrived - every accepted Message-ID is at the receiver
all_arrived() {
	$SG_PY - "$T/recv" "$T/accepted.ids" <<'PY'
import glob, json, sys
got = set()
for p in glob.glob(sys.argv[1] + '/*.json'):
    try:
        got.add(json.load(open(p)).get('message_id'))
    except ValueError:
        pass
want = set(l.strip() for l in open(sys.argv[2]) if l.strip())
sys.exit(0 if want <= got else 1)
PY
}
# spool_empty - nothing left in any queue: no more deliveries will come
spool_empty() { [ "$(sg_cli queue list --json | tr -d ' \n')" = '[]' ]; }
# A lost message never arrives: stop waiting once the spool is empty.
arrived_or_empty() { all_arrived || spool_empty; }
sg_wait_until 120 "every accepted message at the receiver or an empty spool" arrived_or_empty
# Nothing is left behind: every queue drains (deliveries after the last
# arrival, e.g. redeliveries, finish too).
sg_wait_until 60 "an empty spool" spool_empty

# --- what arrived: one line per delivery: Message-ID, SHA-256 of the body
# (the CMS; a new processing encrypts with a new random key, a redelivery of
# the same output sends the same bytes), verdict on the form.
$SG_PY - "$T/recv" "$TO" "$FROM" >"$T/delivered.tsv" <<'PY' || sg_fail "reading the receiver's files"
import email, email.policy, glob, hashlib, json, os, sys
d, to, frm = sys.argv[1], sys.argv[2], sys.argv[3]
plain = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.,:;+*/"
for p in sorted(glob.glob(d + "/*.json")):
    meta = json.load(open(p))
    raw = open(p[:-5] + ".eml", "rb").read()
    sep = raw.find(b"\r\n\r\n")
    head, body = (raw, b"") if sep < 0 else (raw[:sep], raw[sep + 4:])
    hl = head.lower()
    orig = "-"
    if meta.get("to") == [frm]:
        # the encryption notification: its subject names the message's
        subj = str(email.message_from_bytes(raw, policy=email.policy.default)["subject"])
        pre = "Message sent encrypted: e2e "
        form = "notification" if subj.startswith(pre) else "unknown-to-sender:" + subj
        orig = subj[len(pre):] if subj.startswith(pre) else "-"
    elif meta.get("to") != [to]:
        form = "wrong-recipient:%s" % ",".join(meta.get("to") or [])
    elif plain in raw:
        form = "plain-text"
    elif b"application/pkcs7-mime" not in hl or b"enveloped-data" not in hl:
        form = "not-enveloped"
    else:
        form = "enveloped"
    print("%s\t%s\t%s\t%s\t%s" % (meta.get("message_id"), hashlib.sha256(body).hexdigest(),
                                  form, os.path.basename(p[:-5] + ".eml"), orig))
PY
bad=$(awk -F'\t' -v n="$OUTPUTS" '$3 != "enveloped" && (n == 1 || $3 != "notification")' "$T/delivered.tsv")
[ -z "$bad" ] || sg_fail "delivered messages that are not encrypted for $TO: $(echo "$bad" | head -3)"
if [ "$OUTPUTS" = 2 ]; then
	# the second output of each batch: one notification per accepted message
	awk -F'\t' '$3 == "notification" { print $5 }' "$T/delivered.tsv" | sort >"$T/notified.ids"
	nlost=$(comm -23 "$T/accepted.ids" <(sort -u "$T/notified.ids") | wc -l)
	[ "$nlost" -eq 0 ] || sg_fail "accepted messages without their notification: $nlost (e.g. $(comm -23 "$T/accepted.ids" <(sort -u "$T/notified.ids") | head -3 | tr '\n' ' '))"
	# a second processing makes a second notification with a new Message-ID
	nreproc=$(awk -F'\t' '$3 == "notification" { print $5 "\t" $1 }' "$T/delivered.tsv" |
		sort -u | cut -f1 | uniq -d | wc -l)
	sg_log "notifications: $(wc -l <"$T/notified.ids") for $(sort -u "$T/notified.ids" | wc -l) messages, $nreproc with two different ones"
	sg_assert_eq "$nreproc" 0 "messages with two different notifications (processed twice)"
fi
awk -F'\t' '$3 == "enveloped"' "$T/delivered.tsv" >"$T/enveloped.tsv"
cut -f1 "$T/enveloped.tsv" | sort >"$T/delivered.ids"
lost=$(comm -23 "$T/accepted.ids" <(sort -u "$T/delivered.ids") | wc -l)
# delivered without a 250: the kill came after the commit, before the client
# read the reply (allowed); every delivery must be one the sender attempted
extra=$(comm -13 "$T/accepted.ids" <(sort -u "$T/delivered.ids") | wc -l)
cut -f1 "$T/send.tsv" | sort -u >"$T/attempted.ids"
unknown=$(comm -13 "$T/attempted.ids" <(sort -u "$T/delivered.ids") | wc -l)
dups=$(uniq -d "$T/delivered.ids" | wc -l)
# processed twice: one Message-ID, two different ciphertexts
reproc=$(cut -f1,2 "$T/enveloped.tsv" | sort -u | cut -f1 | uniq -d | wc -l)
[ "$lost" -eq 0 ] || sg_fail "accepted messages lost: $lost (e.g. $(comm -23 "$T/accepted.ids" <(sort -u "$T/delivered.ids") | head -3 | tr '\n' ' '))"
sg_assert_eq "$unknown" 0 "delivered Message-IDs the sender never sent"

# --- a sample decrypts with bob's key, and inside is alice's signature over
# the text the sender wrote; the Message-ID of the delivery is the one sent
for f in $(cut -f4 "$T/enveloped.tsv" | shuf -n 3); do
	id=$(awk -F'\t' -v f="$f" '$4 == f { print $1 }' "$T/enveloped.tsv")
	grep -qF "Message-ID: $id" "$T/recv/$f" || sg_fail "$f: no Message-ID field $id"
	openssl cms -decrypt -in "$T/recv/$f" -recip "$P/bob.pem" -inkey "$P/bob.key" \
		-out "$T/$f.dec" 2>"$T/openssl.err" || sg_fail "openssl cms -decrypt $f: $(cat "$T/openssl.err")"
	grep -q 'multipart/signed' "$T/$f.dec" || sg_fail "$f: decrypted content is not multipart/signed"
	openssl cms -verify -in "$T/$f.dec" -CAfile "$P/ca.pem" -out "$T/$f.ver" \
		2>"$T/openssl.err" || sg_fail "openssl cms -verify $f: $(cat "$T/openssl.err")"
	grep -q '^0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\.,:;+\*/' "$T/$f.ver" ||
		sg_fail "$f: verified content lacks the text that was sent"
	sg_log "$f ($id): decrypted and verified"
done

# --- how the daemon saw it: processings per daemon run, recoveries
processed=$(grep -c "to=<$TO>, action=smime-sign-encrypt, outputs=$OUTPUTS" "$SG_LOG" || true)
runs=$(awk -v pat="action=smime-sign-encrypt, outputs=$OUTPUTS" '/^--- start / { n++; c[n] = 0 }
	index($0, pat) { c[n]++ }
	END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), c[i] }' "$SG_LOG")
recov=$(grep -o 'spool recovery: tmp_removed=[0-9]*, batches_completed=[0-9]*' "$SG_LOG" |
	sed 's/spool recovery: //; s/, / /' | tr '\n' ';')
sg_log "processings logged per daemon run: $runs (total $processed); recoveries: $recov"

sg_daemon_stop
errq=$(sg_queue_count error)
sg_assert_eq "$errq" 0 "messages in the error queue (sealgate queue list error)"
sg_assert_eq "$(nfiles error)" 0 "files in spool/error"
left=$(find "$SG_DATA/spool/tmp" "$SG_DATA/spool/batch" "$SG_DATA/spool/done" -mindepth 1 2>/dev/null | wc -l)
[ -d "$SG_DATA/spool/tmp" ] && [ -d "$SG_DATA/spool/batch" ] && [ -d "$SG_DATA/spool/done" ] ||
	sg_fail "no spool/tmp, spool/batch or spool/done under $SG_DATA"
[ "$left" -eq 0 ] || sg_fail "files left after a clean stop: $(find "$SG_DATA/spool/tmp" "$SG_DATA/spool/batch" "$SG_DATA/spool/done" -mindepth 1 | head -5)"

sg_log "result: outputs=$OUTPUTS accepted=$N delivered=$(wc -l <"$T/delivered.ids") lost=$lost duplicates=$dups processed_twice=$reproc unacknowledged_delivered=$extra kills=$kills kills_with_input=$in_work"
echo "crash-smime-test: outputs=$OUTPUTS accepted=$N lost=$lost duplicates=$dups processed_twice=$reproc kills=$kills kills_with_input=$in_work processings=$processed"
# A second processing of one input after kill -9 means the one-output batch
# did not remove its input (or recovery did not): not SMTP's at-least-once.
sg_assert_eq "$reproc" 0 "messages processed twice (same Message-ID, different ciphertexts)"
