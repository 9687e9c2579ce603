/* test_mpa_smime.c - the S/MIME methods of the pipeline (F-SMIME-0..5,
 * F-FLOW-8): outgoing encryption read back by `openssl cms -decrypt`
 * byte-identical, sign+encrypt verified by `openssl cms -verify`, one output
 * per group naming only its recipients, fail closed (no certificate,
 * expired, revoked, black-listed, too large) with the notification while
 * other recipients are unaffected, signing alone for plain mail; incoming
 * decryption with X-Sealgate-Info fields, signer certificates collected,
 * strict mode rules a/b/c and the archiver example (guide §4.1.4), spoofed
 * fields removed, a tampered signature reported invalid with a reason.
 * SQLite store in a temp dir, certificates from tests/unit/pki's helpers,
 * peers through the openssl command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/wait.h>

#include <openssl/pem.h>

#include "mpa_test.h"
#include "mime/mime.h"
#include "mta/mta.h"
#include "pki/pki.h"
#include "pki/pki_key.h"
#include "policy/policy.h"
#include "../pki/pki_test.h"
#include "mpa/mpa_smime_int.h"

#define MAXOUT 8

#include "mpa_smime_fixture.h"
#define NKEYS 4

static EVP_PKEY *keys[NKEYS];  /* RSA-2048, made once */

static int group_setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NKEYS; i++) {
		keys[i] = EVP_RSA_gen(2048);
		assert_non_null(keys[i]);
	}
	return 0;
}

static int group_teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NKEYS; i++)
		EVP_PKEY_free(keys[i]);
	return 0;
}

/* leaf - an RSA certificate under the fixture root for email */
static struct tcert *leaf(struct fixture *f, const char *cn, const char *email, int key,
	long serial, long na_days)
{
	char san[200];

	snprintf(san, sizeof(san), "email:%s", email);
	return tcert_make(&(struct tspec){.cn = cn, .san = email != NULL ? san : NULL,
		.issuer = f->root, .nb_days = -1, .na_days = na_days,
		.ku = "digitalSignature,keyEncipherment", .eku = "emailProtection",
		.serial = serial, .key = keys[key]});
}

static int setup(void **state)
{
	struct fixture *f = sg_xcalloc(1, sizeof(*f));
	struct sg_error err;

	f->dir = mt_tmpdir();
	f->sp = spool_open(f->dir, &err);
	assert_non_null(f->sp);
	f->url = sg_xasprintf("sqlite:%s/sealgate.db", f->dir);
	f->db = store_open(f->url, &err);
	assert_non_null(f->db);
	assert_int_equal(store_migrate(f->db, &err), 0);
	fixture_contexts_open(f, "MPA S/MIME Root", keys[0]);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_contexts_close(f);
	store_close(&f->db);
	spool_close(&f->sp);
	mt_rm_rf(f->dir);
	free(f->dir);
	free(f->url);
	free(f);
	return 0;
}

/* find_to - the output whose first envelope recipient is addr */
static const struct out *find_to(const struct outs *o, const char *addr)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].env.nrcpts > 0 && strcmp(o->v[i].env.rcpts[0].addr, addr) == 0)
			return &o->v[i];
	return NULL;
}

static bool has_rcpt(const struct out *x, const char *addr)
{
	size_t i;

	for (i = 0; i < x->env.nrcpts; i++)
		if (strcmp(x->env.rcpts[i].addr, addr) == 0)
			return true;
	return false;
}

/* run_on - msg (len bytes) from sender to rcpts through pipeline mpa (kept
 * across messages by the caller); outputs into o, the log into *log_r. */
static void run_on(struct fixture *f, struct mpa *mpa, const char *sender,
	const char *const *rcpts, const char *msg, size_t len, struct outs *o, char **log_r)
{
	struct spool_env env;
	struct sg_error err;
	struct mt_log log;
	char id[SG_MAIL_ID_LEN + 1];
	size_t i;
	int rc;

	clear_outgoing(f);
	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup(sender);
	env.arrival = 1700000000;
	for (i = 0; rcpts[i] != NULL; i++)
		spool_env_add_rcpt(&env, rcpts[i], NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, msg, len, id), 0);
	spool_env_free_fields(&env);
	mt_log_start(&log);
	rc = mpa_process_spooled(mpa, f->sp, id, &err);
	*log_r = mt_log_stop(&log);
	if (rc != 0)
		fail_msg("process: %s\n%s", err.msg, *log_r);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	collect(f, o);
}

/* run - msg (len bytes) from sender to rcpts through a fresh pipeline;
 * outputs into o, the log into *log_r. */
static void run(struct fixture *f, const char *sender, const char *const *rcpts,
	const char *msg, size_t len, struct outs *o, char **log_r)
{
	struct mpa_conf conf = {.cfg = f->cfg, .db = f->db, .max_size = 0};
	struct sg_error err;
	struct mpa *mpa = mpa_new(&conf, &err);

	assert_non_null(mpa);
	run_on(f, mpa, sender, rcpts, msg, len, o, log_r);
	mpa_free(&mpa);
}

/* crlf - s with every bare LF made CRLF (malloc'ed) */
static char *crlf(const char *s, size_t len, size_t *len_r)
{
	char *o = sg_xmalloc(2 * len + 1);
	size_t i, k = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			o[k++] = '\r';
		o[k++] = s[i];
	}
	o[k] = '\0';
	*len_r = k;
	return o;
}

/* decrypt_as - `openssl cms -decrypt` of x with name's key into dir/dec.out;
 * returns the exit code */
static int decrypt_as(struct fixture *f, const struct out *x, const char *name)
{
	write_file(fpath(f, "enc.eml"), x->body, x->len);
	return sh(f, "openssl cms -decrypt -in %s -recip %s/%s.pem -inkey %s/%s.key -out %s",
		fpath(f, "enc.eml"), f->dir, name, f->dir, name, fpath(f, "dec.out"));
}

#define ENTITY_HDR "Content-Type: multipart/mixed; boundary=\"b1\"\n"
#define ENTITY_BODY \
	"\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" \
	"Gr\xc3\xbc\xc3\x9f" "e, \xe6\x97\xa5\xe6\x9c\xac SECRET-4711\nline two \n\n" \
	"--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n" \
	"Content-Disposition: attachment; filename=\"b.bin\"\n\n" \
	"\x01\x02\x7f\x80\x81\xfe\xff\r\x03\tbinary\n--b1--\n"
#define OUT_MSG "From: Alice <alice@example.com>\nTo: bob@partner.net\n" \
	"Subject: Offer\nMIME-Version: 1.0\n" ENTITY_HDR ENTITY_BODY

/* A recipient with a valid certificate gets application/pkcs7-mime
 * enveloped-data (AES-256-CBC) that openssl decrypts to the original entity
 * byte for byte (8-bit text, a binary attachment; CRLF canonical form). */
static void test_encrypt_openssl_byte_identical(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log, *dec, *want;
	size_t dlen, wlen;

	add(f, bob, 0);
	export(f, bob, "bob");
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "application/pkcs7-mime"));
	assert_non_null(strstr(x->body, "enveloped-data"));
	assert_null(strstr(x->body, "SECRET-4711"));
	assert_non_null(strstr(x->body, "Subject: Offer"));
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	dec = read_file(fpath(f, "dec.out"), &dlen);
	assert_non_null(dec);
	want = crlf(ENTITY_HDR ENTITY_BODY, strlen(ENTITY_HDR ENTITY_BODY), &wlen);
	assert_int_equal(dlen, wlen);
	assert_memory_equal(dec, want, wlen);
	/* the cipher is the default AES-256-CBC */
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -q aes-256-cbc",
		fpath(f, "enc.eml")), 0);
	assert_non_null(strstr(log, "S/MIME encrypted"));
	free(dec);
	free(want);
	outs_free(&o);
	free(log);
	tcert_free(&bob);
}

/* Sign then encrypt: the originator's signing certificate (with key)
 * signs; the decrypted entity is multipart/signed that openssl verifies
 * against the root, giving the original entity. SHA-512 as configured. */
static void test_sign_encrypt_verify(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	struct tcert *alice = leaf(f, "Alice", "alice@example.com", 2, 102, 0);
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log, *dec, *want;
	size_t dlen, wlen;

	add(f, bob, 0);
	export(f, bob, "bob");
	add_key(f, alice);
	set(f, POLICY_KIND_DOMAIN, "partner.net", "smime_signing_algorithm", "sha512");
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	dec = read_file(fpath(f, "dec.out"), &dlen);
	assert_non_null(strstr(dec, "multipart/signed"));
	assert_non_null(strstr(dec, "sha-512"));
	free(dec);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "dec.out"), f->dir, fpath(f, "ver.out")), 0);
	dec = read_file(fpath(f, "ver.out"), &dlen);
	want = crlf(ENTITY_HDR ENTITY_BODY, strlen(ENTITY_HDR ENTITY_BODY), &wlen);
	assert_int_equal(dlen, wlen);
	assert_memory_equal(dec, want, wlen);
	assert_non_null(strstr(log, "signed"));
	free(dec);
	free(want);
	outs_free(&o);
	free(log);
	tcert_free(&alice);
	tcert_free(&bob);
}

/* Encryption notification (sender property encryption_notification): the
 * internal originator is told which recipients got the message S/MIME
 * encrypted; the log names what was done. */
static void test_encryption_notification(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	const char *rcpts[] = {"bob@partner.net", "dave@plain.org", NULL};
	const struct out *n;
	struct outs o;
	char *log;

	add(f, bob, 0);
	set(f, POLICY_KIND_USER, "alice@example.com", "encryption_notification", "true");
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 3);
	assert_non_null(strstr(find_to(&o, "bob@partner.net")->body, "application/pkcs7-mime"));
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	assert_int_equal(n->env.kind, SPOOL_KIND_NOTIFICATION);
	assert_string_equal(n->env.sender, "");
	assert_non_null(strstr(n->body, "Message sent encrypted: Offer"));
	assert_non_null(strstr(n->body, "(S/MIME)"));
	assert_non_null(strstr(n->body, "bob@partner.net"));
	assert_null(strstr(n->body, "dave@plain.org"));
	assert_null(strstr(n->body, "SECRET-4711"));
	assert_non_null(strstr(log, "action=smime-encrypt,pass, outputs=3"));
	outs_free(&o);
	free(log);
	tcert_free(&bob);
}

/* Plain method with signing: a recipient without a certificate gets a
 * clear-signed multipart/signed that openssl verifies. */
static void test_plain_signed(void **state)
{
	struct fixture *f = *state;
	struct tcert *alice = leaf(f, "Alice", "alice@example.com", 2, 102, 0);
	const char *rcpts[] = {"dave@plain.org", NULL};
	const struct out *x;
	struct outs o;
	char *log, *ver, *want;
	size_t vlen, wlen;

	add_key(f, alice);
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "dave@plain.org");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "multipart/signed"));
	assert_non_null(strstr(x->body, "SECRET-4711"));
	write_file(fpath(f, "signed.eml"), x->body, x->len);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "signed.eml"), f->dir, fpath(f, "ver.out")), 0);
	ver = read_file(fpath(f, "ver.out"), &vlen);
	want = crlf(ENTITY_HDR ENTITY_BODY, strlen(ENTITY_HDR ENTITY_BODY), &wlen);
	assert_int_equal(vlen, wlen);
	assert_memory_equal(ver, want, wlen);
	free(ver);
	free(want);
	outs_free(&o);
	free(log);
	tcert_free(&alice);
}

/* signer_serial - sign plain mail for dave@plain.org and return the serial
 * (hex, as openssl prints it) of the certificate that signed it */
static char *signer_serial(struct fixture *f)
{
	const char *rcpts[] = {"dave@plain.org", NULL};
	struct outs o;
	char *log, *ser;
	size_t len;

	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 1);
	write_file(fpath(f, "signed.eml"), o.v[0].body, o.v[0].len);
	assert_int_equal(sh(f, "{ openssl cms -verify -in %s -CAfile %s/root.pem -signer %s "
		"-out /dev/null && openssl x509 -in %s -noout -serial > %s; }",
		fpath(f, "signed.eml"), f->dir, fpath(f, "signer.pem"), fpath(f, "signer.pem"),
		fpath(f, "serial.txt")), 0);
	ser = read_file(fpath(f, "serial.txt"), &len);
	assert_non_null(ser);
	outs_free(&o);
	free(log);
	return ser;
}

/* Signing certificate selection (guide §4.2.4): the first usable one (oldest
 * import) by default, the latest notBefore with "always use freshest". */
static void test_freshest_signing_cert(void **state)
{
	struct fixture *f = *state;
	struct tcert *old = tcert_make(&(struct tspec){.cn = "Alice old",
		.san = "email:alice@example.com", .issuer = f->root, .nb_days = -10,
		.ku = "digitalSignature,keyEncipherment", .eku = "emailProtection",
		.serial = 111, .key = keys[2]});
	struct tcert *fresh = tcert_make(&(struct tspec){.cn = "Alice new",
		.san = "email:alice@example.com", .issuer = f->root, .nb_days = -1,
		.ku = "digitalSignature,keyEncipherment", .eku = "emailProtection",
		.serial = 112, .key = keys[3]});
	char *ser;

	add_key(f, old);
	sleep(1);   /* import times in seconds: "oldest import" must be old */
	add_key(f, fresh);
	ser = signer_serial(f);
	assert_string_equal(ser, "serial=6F\n");
	free(ser);
	set(f, POLICY_KIND_USER, "alice@example.com",
		"smime_always_use_freshest_signing_certificate", "true");
	ser = signer_serial(f);
	assert_string_equal(ser, "serial=70\n");
	free(ser);
	tcert_free(&fresh);
	tcert_free(&old);
}

/* Two recipients with different decisions (carol's domain uses AES-128 and
 * "add user") get two outputs; each names only its own recipient's
 * certificate, so neither can decrypt the other's. */
static void test_groups_separate_outputs(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	struct tcert *carol = leaf(f, "Carol", "carol@other.org", 3, 303, 0);
	const char *rcpts[] = {"bob@partner.net", "carol@other.org", NULL};
	const struct out *xb, *xc;
	struct sg_error err;
	struct outs o;
	char *log;

	add(f, bob, 0);
	add(f, carol, 0);
	export(f, bob, "bob");
	export(f, carol, "carol");
	set(f, POLICY_KIND_DOMAIN, "other.org", "smime_encryption_algorithm", "aes128");
	set(f, POLICY_KIND_DOMAIN, "other.org", "smime_add_user", "true");
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 2);
	/* "add user" (guide §4.2.4): a user object for carol, none for bob */
	assert_int_equal(policy_object_exists(f->pol, POLICY_KIND_USER, "carol@other.org",
		&err), 1);
	assert_int_equal(policy_object_exists(f->pol, POLICY_KIND_USER, "bob@partner.net",
		&err), 0);
	xb = find_to(&o, "bob@partner.net");
	xc = find_to(&o, "carol@other.org");
	assert_non_null(xb);
	assert_non_null(xc);
	assert_int_equal(xb->env.nrcpts, 1);
	assert_int_equal(xc->env.nrcpts, 1);
	assert_false(has_rcpt(xb, "carol@other.org"));
	assert_int_equal(decrypt_as(f, xb, "bob"), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -c 'd.ktri' | "
		"grep -qx 1", fpath(f, "enc.eml")), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -q 'serialNumber: 101'",
		fpath(f, "enc.eml")), 0);
	assert_int_not_equal(decrypt_as(f, xb, "carol"), 0);
	assert_int_equal(decrypt_as(f, xc, "carol"), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -q aes-128-cbc",
		fpath(f, "enc.eml")), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -c 'd.ktri' | "
		"grep -qx 1", fpath(f, "enc.eml")), 0);
	assert_int_not_equal(decrypt_as(f, xc, "bob"), 0);
	outs_free(&o);
	free(log);
	tcert_free(&carol);
	tcert_free(&bob);
}

/* Bcc privacy (issue 7): recipients with the same decision named in To/Cc
 * share one encrypted output whose recipient infos name both; a Bcc
 * recipient (in the envelope only) gets a copy of its own whose recipient
 * infos name only it, so neither output reveals it to the others. */
static void test_bcc_own_copy(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 111, 0);
	struct tcert *carol = leaf(f, "Carol", "carol@partner.net", 1, 112, 0);
	struct tcert *dave = leaf(f, "Dave", "dave@partner.net", 1, 113, 0);
	const char *rcpts[] = {"bob@partner.net", "carol@partner.net", "dave@partner.net",
		NULL};
	static const char msg[] = "From: Alice <alice@example.com>\nTo: Bob <Bob@Partner.net>\n"
		"Cc: carol@partner.net\nSubject: Offer\nMIME-Version: 1.0\n" ENTITY_HDR
		ENTITY_BODY;
	const struct out *xb, *xd;
	struct outs o;
	char *log;

	add(f, bob, 0);
	add(f, carol, 0);
	add(f, dave, 0);
	export(f, bob, "bob");
	export(f, dave, "dave");
	run(f, "alice@example.com", rcpts, msg, strlen(msg), &o, &log);
	assert_int_equal(o.n, 2);
	xb = find_to(&o, "bob@partner.net");
	xd = find_to(&o, "dave@partner.net");
	assert_non_null(xb);
	assert_non_null(xd);
	assert_true(xb != xd);
	assert_int_equal(xb->env.nrcpts, 2);
	assert_true(has_rcpt(xb, "carol@partner.net"));
	assert_false(has_rcpt(xb, "dave@partner.net"));
	assert_int_equal(xd->env.nrcpts, 1);
	/* To/Cc output: two recipient infos, not dave's (serial 113) */
	assert_int_equal(decrypt_as(f, xb, "bob"), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -c 'd.ktri' | "
		"grep -qx 2", fpath(f, "enc.eml")), 0);
	assert_int_not_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -q "
		"'serialNumber: 113'", fpath(f, "enc.eml")), 0);
	assert_int_not_equal(decrypt_as(f, xb, "dave"), 0);
	/* Bcc output: one recipient info, dave's */
	assert_int_equal(decrypt_as(f, xd, "dave"), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -c 'd.ktri' | "
		"grep -qx 1", fpath(f, "enc.eml")), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -q "
		"'serialNumber: 113'", fpath(f, "enc.eml")), 0);
	outs_free(&o);
	free(log);
	tcert_free(&dave);
	tcert_free(&carol);
	tcert_free(&bob);
}

/* Must-encrypt recipients with no certificate, an expired one, a revoked
 * one (CRL), a black-listed one, or a message over the S/MIME maximum size
 * get nothing; the originator gets the encryption-failed notification
 * naming them; the recipient with a valid certificate gets the encrypted
 * message. */
static void test_fail_closed(void **state)
{
	struct fixture *f = *state;
	struct tcert *ok = leaf(f, "Ok", "ok@secure.org", 1, 501, 0);
	struct tcert *exp = leaf(f, "Exp", "exp@secure.org", 1, 502, -1);
	struct tcert *rev = leaf(f, "Rev", "rev@secure.org", 1, 503, 0);
	struct tcert *blk = leaf(f, "Blk", "blk@secure.org", 1, 504, 0);
	struct tcert *big = leaf(f, "Big", "big@small.org", 1, 505, 0);
	const char *rcpts[] = {"ok@secure.org", "none@secure.org", "exp@secure.org",
		"rev@secure.org", "blk@secure.org", "big@small.org", NULL};
	const long revoked[] = {503};
	const struct out *x, *n;
	unsigned char *crl;
	size_t crl_len, i;
	struct sg_error err;
	struct outs o;
	char *log;

	add(f, ok, 0);
	add(f, exp, 0);
	add(f, rev, 0);
	add(f, blk, 0);
	add(f, big, 0);
	export(f, ok, "ok");
	crl = tcrl_make(f->root, revoked, 1, -1, 30, NULL, 1, &crl_len);
	assert_int_equal(pki_crl_import(f->pki, crl, crl_len, "import", NULL, &err),
		PKI_CRL_ADDED);
	free(crl);
	assert_int_equal(pki_ctl_set(f->pki, blk->thumb, PKI_CTL_BLACK, 0, &err), 0);
	set(f, POLICY_KIND_DOMAIN, "secure.org", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_DOMAIN, "small.org", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_DOMAIN, "small.org", "smime_max_size", "100");
	set(f, POLICY_KIND_DOMAIN, "small.org", "pdf_encryption_allowed", "false");
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	x = find_to(&o, "ok@secure.org");
	assert_non_null(x);
	assert_int_equal(x->env.nrcpts, 1);
	assert_int_equal(decrypt_as(f, x, "ok"), 0);
	for (i = 0; i < o.n; i++) {
		assert_false(has_rcpt(&o.v[i], "none@secure.org"));
		assert_false(has_rcpt(&o.v[i], "exp@secure.org"));
		assert_false(has_rcpt(&o.v[i], "rev@secure.org"));
		assert_false(has_rcpt(&o.v[i], "blk@secure.org"));
		assert_false(has_rcpt(&o.v[i], "big@small.org"));
		assert_null(strstr(o.v[i].body, "SECRET-4711"));
	}
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	assert_int_equal(n->env.kind, SPOOL_KIND_NOTIFICATION);
	assert_non_null(strstr(n->body, "none@secure.org"));
	assert_non_null(strstr(n->body, "exp@secure.org"));
	assert_non_null(strstr(n->body, "rev@secure.org"));
	assert_non_null(strstr(n->body, "blk@secure.org"));
	assert_non_null(strstr(n->body, "big@small.org"));
	assert_null(strstr(n->body, "ok@secure.org"));
	assert_non_null(strstr(log, "encrypt-failed"));
	outs_free(&o);
	free(log);
	tcert_free(&big);
	tcert_free(&blk);
	tcert_free(&rev);
	tcert_free(&exp);
	tcert_free(&ok);
}

/* One pipeline (its PKI context and caches kept) for several messages: a
 * change to the store between two messages - made through another context,
 * as the CLI would - is seen by the next message: the signer black-listed
 * (not signed), the recipient revoked by an imported CRL (fail closed), the
 * recipient's new certificate (encrypted to it). */
static void test_caches_see_changes_between_messages(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 801, 0);
	struct tcert *bob2 = leaf(f, "Bob 2", "bob@partner.net", 3, 803, 0);
	struct tcert *alice = leaf(f, "Alice", "alice@example.com", 2, 802, 0);
	const char *rcpts[] = {"bob@partner.net", NULL};
	const long revoked[] = {801};
	struct mpa_conf conf = {.cfg = f->cfg, .db = f->db, .max_size = 0};
	const struct out *x;
	struct sg_error err;
	unsigned char *crl;
	size_t crl_len;
	struct mpa *mpa;
	struct outs o;
	char *log;

	add(f, bob, 0);
	export(f, bob, "bob");
	export(f, bob2, "bob2");
	add_key(f, alice);
	set(f, POLICY_KIND_DOMAIN, "partner.net", "encrypt_mode", "mandatory");
	mpa = mpa_new(&conf, &err);
	assert_non_null(mpa);
	/* 1: signed and encrypted (the caches filled) */
	run_on(f, mpa, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	assert_non_null(strstr(log, ", signed"));
	outs_free(&o);
	free(log);
	/* 2: the signer black-listed meanwhile: encrypted, not signed */
	assert_int_equal(pki_ctl_set(f->pki, alice->thumb, PKI_CTL_BLACK, 0, &err), 0);
	run_on(f, mpa, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	assert_null(strstr(log, ", signed"));
	assert_non_null(strstr(log, "not signed"));
	outs_free(&o);
	free(log);
	/* 3: the recipient's certificate revoked meanwhile: nothing to bob */
	assert_int_equal(pki_ctl_delete(f->pki, alice->thumb, &err), 0);
	crl = tcrl_make(f->root, revoked, 1, -1, 30, NULL, 1, &crl_len);
	assert_int_equal(pki_crl_import(f->pki, crl, crl_len, "import", NULL, &err),
		PKI_CRL_ADDED);
	free(crl);
	run_on(f, mpa, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_null(find_to(&o, "bob@partner.net"));
	assert_non_null(strstr(log, "encrypt-failed"));
	outs_free(&o);
	free(log);
	/* 4: a new certificate for bob meanwhile: encrypted to it, signed again */
	add(f, bob2, 0);
	run_on(f, mpa, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_int_equal(decrypt_as(f, x, "bob2"), 0);
	assert_non_null(strstr(log, ", signed"));
	outs_free(&o);
	free(log);
	mpa_free(&mpa);
	tcert_free(&alice);
	tcert_free(&bob2);
	tcert_free(&bob);
}

/* fd_size - the length of the file behind fd */
static off_t fd_size(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

/* Scratch files: a file put back is cut to what was written in its last
 * use (nothing older is left past it) and handed out again at offset 0; a
 * file over MPA_SCRATCH_KEEP is closed, not kept; at most MPA_SCRATCH_FDS
 * are kept. */
static void test_scratch_files(void **state)
{
	struct fixture *f = *state;
	struct mpa_conf conf = {.cfg = f->cfg, .db = f->db, .max_size = 0};
	struct sg_error err;
	struct mpa *mpa = mpa_new(&conf, &err);
	char *big = sg_xmalloc(MPA_SCRATCH_KEEP + 1);
	int a, b, c, kept;

	assert_non_null(mpa);
	memset(big, 'x', MPA_SCRATCH_KEEP + 1);
	a = mpa_scratch_get(mpa, &err);
	assert_true(a >= 0);
	assert_int_equal(sg_write_all(a, big, 100), 0);
	kept = a;
	mpa_scratch_put(mpa, &a);
	assert_int_equal(a, -1);
	b = mpa_scratch_get(mpa, &err);
	assert_int_equal(b, kept);                  /* the same file again */
	assert_int_equal(lseek(b, 0, SEEK_CUR), 0);
	assert_int_equal(sg_write_all(b, "short", 5), 0);
	mpa_scratch_put(mpa, &b);
	assert_int_equal(fd_size(kept), 5);          /* the old 95 bytes are gone */
	b = mpa_scratch_get(mpa, &err);
	/* too large to keep: closed */
	assert_int_equal(sg_write_all(b, big, MPA_SCRATCH_KEEP + 1), 0);
	mpa_scratch_put(mpa, &b);
	assert_int_equal(fcntl(kept, F_GETFD), -1);
	/* at most MPA_SCRATCH_FDS kept */
	a = mpa_scratch_get(mpa, &err);
	b = mpa_scratch_get(mpa, &err);
	c = mpa_scratch_get(mpa, &err);
	assert_true(a >= 0 && b >= 0 && c >= 0);
	kept = c;
	mpa_scratch_put(mpa, &a);
	mpa_scratch_put(mpa, &b);
	mpa_scratch_put(mpa, &c);
	assert_int_equal(fcntl(kept, F_GETFD), -1);
	mpa_free(&mpa);
	free(big);
}

/* Through one pipeline (scratch files kept), a long message and then a
 * short one: the short one's output decrypts to exactly its own entity,
 * nothing of the long one in it. */
static void test_scratch_long_then_short(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 811, 0);
	struct tcert *alice = leaf(f, "Alice", "alice@example.com", 2, 812, 0);
	const char *rcpts[] = {"bob@partner.net", NULL};
	const char *hdr = "From: Alice <alice@example.com>\nTo: bob@partner.net\n"
		"Subject: s\nMIME-Version: 1.0\nContent-Type: text/plain\n\n";
	struct mpa_conf conf = {.cfg = f->cfg, .db = f->db, .max_size = 0};
	struct sg_error err;
	struct mpa *mpa;
	struct outs o;
	struct sg_buf m;
	char *log, *dec, *want;
	size_t dlen, wlen, i;

	add(f, bob, 0);
	export(f, bob, "bob");
	add_key(f, alice);
	mpa = mpa_new(&conf, &err);
	assert_non_null(mpa);
	sg_buf_init(&m, 1u << 20);
	assert_int_equal(sg_buf_append_str(&m, hdr, &err), 0);
	for (i = 0; i < 2000; i++)
		assert_int_equal(sg_buf_append_str(&m, "LONG-MESSAGE-LINE 0123456789\n", &err), 0);
	run_on(f, mpa, "alice@example.com", rcpts, m.data, m.len, &o, &log);
	assert_int_equal(o.n, 1);
	assert_int_equal(decrypt_as(f, &o.v[0], "bob"), 0);
	outs_free(&o);
	free(log);
	sg_buf_reset(&m);
	assert_int_equal(sg_buf_append_str(&m, hdr, &err), 0);
	assert_int_equal(sg_buf_append_str(&m, "short body\n", &err), 0);
	run_on(f, mpa, "alice@example.com", rcpts, m.data, m.len, &o, &log);
	assert_int_equal(o.n, 1);
	assert_null(memmem(o.v[0].body, o.v[0].len, "LONG-MESSAGE", 12));
	assert_int_equal(decrypt_as(f, &o.v[0], "bob"), 0);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "dec.out"), f->dir, fpath(f, "ver.out")), 0);
	dec = read_file(fpath(f, "ver.out"), &dlen);
	want = crlf("Content-Type: text/plain\n\nshort body\n",
		strlen("Content-Type: text/plain\n\nshort body\n"), &wlen);
	assert_int_equal(dlen, wlen);
	assert_memory_equal(dec, want, wlen);
	free(dec);
	free(want);
	outs_free(&o);
	free(log);
	sg_buf_deinit(&m);
	mpa_free(&mpa);
	tcert_free(&alice);
	tcert_free(&bob);
}

/* The recipient's algorithm properties: AES-256-GCM (AuthEnvelopedData),
 * RSA-OAEP key transport, encrypted headers (the whole message inside,
 * Subject "..." outside); openssl still decrypts it. */
static void test_recipient_algorithms(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log, *dec;
	size_t dlen;

	add(f, bob, 0);
	export(f, bob, "bob");
	set(f, POLICY_KIND_USER, "bob@partner.net", "smime_encryption_algorithm", "aes256-gcm");
	set(f, POLICY_KIND_USER, "bob@partner.net", "smime_key_transport", "oaep");
	set(f, POLICY_KIND_USER, "bob@partner.net", "smime_encrypt_headers", "true");
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "authEnveloped-data"));
	assert_null(strstr(x->body, "Subject: Offer"));
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -q rsaesOaep",
		fpath(f, "enc.eml")), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -qi aes-256-gcm",
		fpath(f, "enc.eml")), 0);
	dec = read_file(fpath(f, "dec.out"), &dlen);
	assert_non_null(dec);
	assert_non_null(strstr(dec, "Subject: Offer"));
	assert_non_null(strstr(dec, "SECRET-4711"));
	free(dec);
	outs_free(&o);
	free(log);
	tcert_free(&bob);
}

/* Only sign when encrypted (sender property): a recipient without a
 * certificate gets the message unsigned, byte for byte. */
static void test_only_sign_when_encrypt(void **state)
{
	struct fixture *f = *state;
	struct tcert *alice = leaf(f, "Alice", "alice@example.com", 2, 102, 0);
	const char *rcpts[] = {"dave@plain.org", NULL};
	struct outs o;
	char *log;

	add_key(f, alice);
	set(f, POLICY_KIND_USER, "alice@example.com", "smime_only_sign_when_encrypt", "true");
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.v[0].len, strlen(OUT_MSG));
	assert_memory_equal(o.v[0].body, OUT_MSG, strlen(OUT_MSG));
	outs_free(&o);
	free(log);
	tcert_free(&alice);
}

/* EC P-256 certificates: ECDH key agreement to the recipient, ECDSA
 * signature by the originator; openssl decrypts and verifies. */
static void test_ec_certificates(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = tcert_make(&(struct tspec){.cn = "Bob EC",
		.san = "email:bob@partner.net", .issuer = f->root, .nb_days = -1,
		.ku = "digitalSignature,keyAgreement", .eku = "emailProtection", .serial = 121});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice EC",
		.san = "email:alice@example.com", .issuer = f->root, .nb_days = -1,
		.ku = "digitalSignature", .eku = "emailProtection", .serial = 122});
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log, *ver;
	size_t vlen;

	add(f, bob, 0);
	export(f, bob, "bob");
	add_key(f, alice);
	run(f, "alice@example.com", rcpts, OUT_MSG, strlen(OUT_MSG), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	assert_int_equal(sh(f, "openssl cms -cmsout -print -in %s | grep -q 'd.kari'",
		fpath(f, "enc.eml")), 0);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "dec.out"), f->dir, fpath(f, "ver.out")), 0);
	ver = read_file(fpath(f, "ver.out"), &vlen);
	assert_non_null(strstr(ver, "SECRET-4711"));
	free(ver);
	outs_free(&o);
	free(log);
	tcert_free(&alice);
	tcert_free(&bob);
}

/* Already encrypted mail passes unchanged (F-SMIME-0). */
static void test_already_encrypted_passes(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	const char *msg = "From: alice@example.com\nTo: bob@partner.net\nSubject: PGP\n"
		"MIME-Version: 1.0\nContent-Type: multipart/encrypted; "
		"protocol=\"application/pgp-encrypted\"; boundary=\"p\"\n\n--p\n"
		"Content-Type: application/pgp-encrypted\n\nVersion: 1\n--p\n"
		"Content-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\nxx\n"
		"-----END PGP MESSAGE-----\n--p--\n";
	const char *rcpts[] = {"bob@partner.net", NULL};
	struct outs o;
	char *log;

	add(f, bob, 0);
	run(f, "alice@example.com", rcpts, msg, strlen(msg), &o, &log);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.v[0].len, strlen(msg));
	assert_memory_equal(o.v[0].body, msg, strlen(msg));
	outs_free(&o);
	free(log);
	tcert_free(&bob);
}

/* ------------------------------------------------------------ incoming */

#define IN_BODY "Content-Type: text/plain; charset=utf-8\n" \
	"Content-Transfer-Encoding: 8bit\n\nHall\xc3\xb6 INCOMING-SECRET-99\n"

/* make_in - an incoming message: IN_BODY signed by signer (name of exported
 * files, or NULL) then encrypted to the certificates in to (space-separated
 * file names, or NULL), with outer header fields; malloc'ed */
static char *make_in(struct fixture *f, const char *signer, const char *to, size_t *len_r)
{
	const char *cur = fpath(f, "in.txt");

	write_file(cur, IN_BODY, strlen(IN_BODY));
	if (signer != NULL) {
		assert_int_equal(sh(f, "openssl cms -sign -in %s -signer %s/%s.pem -inkey "
			"%s/%s.key -out %s", cur, f->dir, signer, f->dir, signer,
			fpath(f, "in.sig")), 0);
		cur = fpath(f, "in.sig");
	}
	if (to != NULL) {
		assert_int_equal(sh(f, "cd %s && openssl cms -encrypt -aes256 -in %s -out %s %s",
			f->dir, cur, fpath(f, "in.enc"), to), 0);
		cur = fpath(f, "in.enc");
	}
	{
		size_t len;
		char *body = read_file(cur, &len);
		char *msg = sg_xasprintf("From: bob@partner.net\nTo: dave@example.com\n"
			"Subject: Report\nX-Sealgate-Info-Signed-0: True\n"
			"X-Sealgate-Info-Signer-Verified-0-0: True\nMIME-Version: 1.0\n%s", body);

		free(body);
		*len_r = strlen(msg);
		return msg;
	}
}

/* An encrypted and signed message for an internal user with a key is
 * delivered decrypted; the X-Sealgate-Info fields describe both layers; the
 * spoofed ones are gone; the signer's certificate is now in the store. */
static void test_incoming_decrypt_verify(void **state)
{
	struct fixture *f = *state;
	struct tcert *dave = leaf(f, "Dave", "dave@example.com", 1, 601, 0);
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 2, 602, 0);
	const char *rcpts[] = {"dave@example.com", NULL};
	char thumbs[2][PKI_THUMBPRINT_LEN + 1];
	const struct out *x;
	struct sg_error err;
	struct outs o;
	char *log, *msg;
	size_t len;

	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_DOMAIN, "example.com", "add_security_info", "true");
	add_key(f, dave);
	export(f, dave, "dave");
	export(f, bob, "bob");
	msg = make_in(f, "bob", "dave.pem", &len);
	assert_int_equal(pki_cert_find_email(f->pki, "bob@partner.net", thumbs, 2, &err), 0);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "dave@example.com");
	assert_non_null(x);
	if (strstr(x->body, "INCOMING-SECRET-99") == NULL)
		fail_msg("not decrypted:\n%s\n%s", x->body, log);
	assert_non_null(strstr(x->body, "Hall\xc3\xb6 INCOMING-SECRET-99"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Encrypted-0: True"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Encryption-Algorithm-0: AES-256-CBC"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Encryption-Recipient-0-0: issuer="));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signed-1: True"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Verified-0-1: True"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Trusted-0-1: True"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Email-0-1: bob@partner.net"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Mismatch-0-1: False"));
	assert_non_null(strstr(x->body, "serial=25a"));   /* 602 */
	assert_null(strstr(x->body, "Decryption-Key-Not-Found"));
	/* the spoofed fields of the input are gone */
	assert_null(strstr(x->body, "X-Sealgate-Info-Signed-0:"));
	assert_null(strstr(x->body, "X-Sealgate-Info-Signer-Verified-0-0:"));
	assert_non_null(strstr(x->body, "Subject: Report [decrypted] [signed]"));
	assert_int_equal(pki_cert_find_email(f->pki, "bob@partner.net", thumbs, 2, &err), 1);
	assert_string_equal(thumbs[0], bob->thumb);
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&bob);
	tcert_free(&dave);
}

/* A tampered clear-signed message is reported invalid with a reason, and
 * tagged; spoofed fields on a plain message are removed too. */
static void test_incoming_tampered(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 2, 602, 0);
	const char *rcpts[] = {"dave@example.com", NULL};
	const char *plain = "From: bob@partner.net\nSubject: Hi\n"
		"X-Sealgate-Info-Signed-0: True\nx-sealgate-info-encrypted-0: True\n\nhello\n";
	const struct out *x;
	struct outs o;
	char *log, *msg, *p;
	size_t len;

	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_DOMAIN, "example.com", "add_security_info", "true");
	export(f, bob, "bob");
	msg = make_in(f, "bob", NULL, &len);
	p = strstr(msg, "INCOMING-SECRET-99");
	assert_non_null(p);
	p[0] = 'X';   /* tamper with the signed content */
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_int_equal(o.n, 1);
	x = &o.v[0];
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signed-0: True"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Verified-0-0: False"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Verification-Info-0-0: "));
	assert_non_null(strstr(x->body, "[invalid signature!]"));
	assert_null(strstr(x->body, "[signed]"));
	outs_free(&o);
	free(log);
	run(f, "bob@partner.net", rcpts, plain, strlen(plain), &o, &log);
	assert_int_equal(o.n, 1);
	assert_null(strstr(o.v[0].body, "X-Sealgate"));
	assert_null(strstr(o.v[0].body, "x-sealgate"));
	assert_non_null(strstr(o.v[0].body, "hello"));
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&bob);
}

/* Remove signature (recipient property): the signed content is delivered
 * without the signature, the fields still say it was signed; the From
 * address is not the signer's: Signer-Mismatch and the signed-by tag. */
static void test_incoming_remove_signature_signed_by(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 2, 602, 0);
	const char *rcpts[] = {"dave@example.com", NULL};
	const struct out *x;
	struct outs o;
	char *log, *msg, *p;
	size_t len;

	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_DOMAIN, "example.com", "add_security_info", "true");
	set(f, POLICY_KIND_USER, "dave@example.com", "smime_remove_signature", "true");
	export(f, bob, "bob");
	msg = make_in(f, "bob", NULL, &len);
	p = strstr(msg, "From: bob@");
	assert_non_null(p);
	memcpy(p, "From: eve@", 10);   /* someone else's address, same length */
	run(f, "eve@partner.net", rcpts, msg, len, &o, &log);
	assert_int_equal(o.n, 1);
	x = &o.v[0];
	assert_null(strstr(x->body, "multipart/signed"));
	assert_null(strstr(x->body, "pkcs7-signature"));
	assert_non_null(strstr(x->body, "Hall\xc3\xb6 INCOMING-SECRET-99"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signed-0: True"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Verified-0-0: True"));
	assert_non_null(strstr(x->body, "X-Sealgate-Info-Signer-Mismatch-0-0: True"));
	assert_non_null(strstr(x->body, "Subject: Report [signed by: bob@partner.net]"));
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&bob);
}

/* A message the client already signed is encrypted with its signature
 * inside, not signed a second time by the gateway. */
static void test_client_signed_encrypted_once(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	struct tcert *alice = leaf(f, "Alice", "alice@example.com", 2, 102, 0);
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log, *msg, *p, *dec;
	size_t len, dlen;

	add(f, bob, 0);
	export(f, bob, "bob");
	export(f, alice, "alice");
	add_key(f, alice);
	p = make_in(f, "alice", NULL, &len);
	assert_non_null(strstr(p, "\nSubject:"));
	msg = sg_xasprintf("From: alice@example.com\nTo: bob@partner.net%s",
		strstr(p, "\nSubject:"));
	free(p);
	run(f, "alice@example.com", rcpts, msg, strlen(msg), &o, &log);
	free(msg);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	dec = read_file(fpath(f, "dec.out"), &dlen);
	assert_non_null(strstr(dec, "application/pkcs7-signature"));
	assert_null(strstr(strstr(dec, "application/pkcs7-signature") + 1,
		"application/pkcs7-signature\""));
	free(dec);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "dec.out"), f->dir, fpath(f, "ver.out")), 0);
	dec = read_file(fpath(f, "ver.out"), &dlen);
	assert_non_null(strstr(dec, "INCOMING-SECRET-99"));
	assert_null(strstr(dec, "multipart/signed"));
	free(dec);
	outs_free(&o);
	free(log);
	tcert_free(&alice);
	tcert_free(&bob);
}

/* is_decrypted - out x carries the plain text */
static bool is_decrypted(const struct out *x)
{
	return x != NULL && strstr(x->body, "INCOMING-SECRET-99") != NULL &&
		strstr(x->body, "Decryption-Key-Not-Found") == NULL;
}

/* Strict mode (F-SMIME-3): a key may decrypt for a recipient only if its
 * certificate (a) has the recipient's address, (b) is selected for the
 * recipient, or (c) for the recipient's domain; otherwise the message stays
 * encrypted (Decryption-Key-Not-Found). Non-strict: any stored key. */
static void test_strict_rules(void **state)
{
	struct fixture *f = *state;
	struct tcert *dave = leaf(f, "Dave", "dave@example.com", 1, 701, 0);
	struct tcert *sel = leaf(f, "Shared", "shared@example.com", 2, 702, 0);
	struct tcert *dom = leaf(f, "Domain", "gateway@example.com", 3, 703, 0);
	struct tcert *other = leaf(f, "Other", "other@elsewhere.org", 3, 704, 0);
	const struct pki_owner u = {PKI_OWNER_USER, "dave@example.com"};
	const struct pki_owner d = {PKI_OWNER_DOMAIN, "example.com"};
	const char *rcpts[] = {"dave@example.com", NULL};
	struct sg_error err;
	struct outs o;
	char *log, *msg;
	size_t len;

	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_GLOBAL, NULL, "smime_strict", "true");
	add_key(f, dave);
	add_key(f, sel);
	add_key(f, dom);
	add_key(f, other);
	export(f, dave, "dave");
	export(f, sel, "sel");
	export(f, dom, "dom");
	export(f, other, "other");
	/* (a) the recipient's own address */
	msg = make_in(f, NULL, "dave.pem", &len);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_true(is_decrypted(find_to(&o, "dave@example.com")));
	outs_free(&o);
	free(log);
	free(msg);
	/* (b) not selected yet: stays encrypted; selected for the user: decrypted */
	msg = make_in(f, NULL, "sel.pem", &len);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_false(is_decrypted(find_to(&o, "dave@example.com")));
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Decryption-Key-Not-Found-0: True"));
	assert_non_null(strstr(o.v[0].body, "application/pkcs7-mime"));
	outs_free(&o);
	free(log);
	assert_int_equal(pki_select_add(f->pki, &u, PKI_SEL_ENCRYPT, sel->thumb, &err), 1);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_true(is_decrypted(find_to(&o, "dave@example.com")));
	outs_free(&o);
	free(log);
	free(msg);
	/* (c) selected for the domain */
	msg = make_in(f, NULL, "dom.pem", &len);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_false(is_decrypted(find_to(&o, "dave@example.com")));
	outs_free(&o);
	free(log);
	assert_int_equal(pki_select_add(f->pki, &d, PKI_SEL_ENCRYPT, dom->thumb, &err), 1);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_true(is_decrypted(find_to(&o, "dave@example.com")));
	outs_free(&o);
	free(log);
	free(msg);
	/* a key of an unrelated certificate: only without strict mode */
	msg = make_in(f, NULL, "other.pem", &len);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_false(is_decrypted(find_to(&o, "dave@example.com")));
	outs_free(&o);
	free(log);
	set(f, POLICY_KIND_GLOBAL, NULL, "smime_strict", "false");
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_true(is_decrypted(find_to(&o, "dave@example.com")));
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&other);
	tcert_free(&dom);
	tcert_free(&sel);
	tcert_free(&dave);
}

/* Guide §4.1.4: strict mode globally, off for the archiver. A message for
 * dave (Bcc to the archiver and to eve) is decrypted for dave (rule a) and
 * for the archiver (non-strict), and stays encrypted for eve. */
static void test_strict_archiver(void **state)
{
	struct fixture *f = *state;
	struct tcert *dave = leaf(f, "Dave", "dave@example.com", 1, 801, 0);
	const char *rcpts[] = {"dave@example.com", "archive@example.com", "eve@example.com",
		NULL};
	struct outs o;
	char *log, *msg;
	size_t len;

	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_GLOBAL, NULL, "smime_strict", "true");
	set(f, POLICY_KIND_USER, "archive@example.com", "smime_strict", "false");
	add_key(f, dave);
	export(f, dave, "dave");
	msg = make_in(f, NULL, "dave.pem", &len);
	run(f, "bob@partner.net", rcpts, msg, len, &o, &log);
	assert_int_equal(o.n, 3);
	assert_true(is_decrypted(find_to(&o, "dave@example.com")));
	assert_true(is_decrypted(find_to(&o, "archive@example.com")));
	assert_non_null(find_to(&o, "eve@example.com"));
	assert_false(is_decrypted(find_to(&o, "eve@example.com")));
	assert_non_null(strstr(find_to(&o, "eve@example.com")->body,
		"X-Sealgate-Info-Decryption-Key-Not-Found-0: True"));
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&dave);
}

/* corpus_dir - $SMIME_CORPUS or $SG_SRC/../shared/interop-corpus */
static void corpus_dir(char *out, size_t n)
{
	const char *c = getenv("SMIME_CORPUS"), *src = getenv("SG_SRC");

	if (c != NULL)
		snprintf(out, n, "%s", c);
	else
		snprintf(out, n, "%s/../shared/interop-corpus", src != NULL ? src : ".");
}

/* The Thunderbird/NSS corpus (02-thunderbird-nss/smime, expectations from its
 * expected.tsv) through the pipeline for an internal recipient with Bob's
 * key (PKCS#12 import) and TestCA as the root: every message listed with
 * decrypt(Bob)=OK is decrypted (Thunderbird's text visible, signatures
 * removed on request), every outermost signature is reported as the OpenSSL
 * reference says (valid / content verify error), and the valid ones with
 * Thunderbird's sig_good=true are trusted. */
static void test_corpus_thunderbird(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@example.com", NULL};
	char dir[600], path[1200], line[2048];
	struct pki_cert_list roots = {0};
	struct sg_error err;
	char *data, *log;
	size_t len, i, rows = 0;
	FILE *tsv;

	corpus_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/02-thunderbird-nss/expected.tsv", dir);
	tsv = fopen(path, "r");
	if (tsv == NULL)
		fail_msg("missing corpus file %s", path);
	snprintf(path, sizeof(path), "%s/02-thunderbird-nss/smime/TestCA.pem", dir);
	data = read_file(path, &len);
	assert_non_null(data);
	assert_int_equal(pki_certs_parse(data, len, &roots, &err), 0);
	free(data);
	for (i = 0; i < roots.n; i++)
		assert_true(pki_cert_add(f->pki, roots.v[i], PKI_ADD_ROOT, &err) >= 0);
	pki_cert_list_free(&roots);
	snprintf(path, sizeof(path), "%s/02-thunderbird-nss/smime/Bob.p12", dir);
	data = read_file(path, &len);
	assert_non_null(data);
	if (pki_key_import_p12(f->keys, data, len, "nss", NULL, NULL, &err) < 0)
		fail_msg("Bob.p12: %s", err.msg);
	free(data);
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_DOMAIN, "example.com", "smime_remove_signature", "true");
	while (fgets(line, sizeof(line), tsv) != NULL) {
		char *file = line, *tb, *ref, *text, want[256], fld[96];
		bool dec, ok, bad, good;
		int level;
		struct outs o;
		const struct out *x;

		if (strncmp(line, "smime/", 6) != 0)
			continue;
		tb = strchr(line, '\t');
		assert_non_null(tb);
		*tb++ = '\0';
		ref = strchr(tb, '\t');
		assert_non_null(ref);
		*ref++ = '\0';
		dec = strstr(ref, "decrypt(Bob)=OK") != NULL;
		ok = strstr(ref, "verify=CMS Verification successful") != NULL;
		bad = strstr(ref, "verify=CMS_verify") != NULL;
		good = strstr(tb, "sig_good=true") != NULL;
		want[0] = '\0';
		text = strstr(tb, "text=\"");
		if (text != NULL) {
			char *q = strchr(text + 6, '"');

			if (q != NULL)
				snprintf(want, sizeof(want), "%.*s", (int)(q - text - 6), text + 6);
		}
		snprintf(path, sizeof(path), "%s/02-thunderbird-nss/%s", dir, file);
		data = read_file(path, &len);
		if (data == NULL)
			fail_msg("missing corpus file %s", path);
		run(f, "alice@example.com", rcpts, data, len, &o, &log);
		free(data);
		x = find_to(&o, "bob@example.com");
		if (x == NULL)
			fail_msg("%s: no output\n%s", file, log);
		if (dec && (strstr(x->body, "X-Sealgate-Info-Encrypted-0: True") == NULL ||
		    strstr(x->body, "Decryption-Key-Not-Found") != NULL))
			fail_msg("%s: not decrypted\n%s", file, log);
		if (dec && want[0] != '\0' && strstr(x->body, want) == NULL)
			fail_msg("%s: text \"%s\" missing:\n%s", file, want, x->body);
		level = dec ? 1 : 0;
		snprintf(fld, sizeof(fld), "X-Sealgate-Info-Signer-Verified-0-%d: %s", level,
			ok ? "True" : "False");
		if ((ok || bad) && strstr(x->body, fld) == NULL)
			fail_msg("%s: \"%s\" missing:\n%s", file, fld, x->body);
		snprintf(fld, sizeof(fld), "X-Sealgate-Info-Signer-Trusted-0-%d: True", level);
		if (ok && good && strstr(x->body, fld) == NULL)
			fail_msg("%s: \"%s\" missing:\n%s", file, fld, x->body);
		outs_free(&o);
		free(log);
		rows++;
	}
	fclose(tsv);
	assert_true(rows >= 50);
}

#if defined(__SANITIZE_ADDRESS__)
#define MPA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPA_TEST_ASAN 1
#endif
#endif
#ifndef MPA_TEST_ASAN
#define MPA_TEST_ASAN 0
#endif

#define BIG_HDR "From: Alice <alice@example.com>\nTo: bob@partner.net\nSubject: Big\n" \
	"MIME-Version: 1.0\n"
#define BIG_ENTITY_HDR "Content-Type: text/plain; charset=utf-8\n" \
	"Content-Transfer-Encoding: 8bit\n\n"

struct mem_report {
	int rc;
	long grow;      /* KB of peak RSS growth over mpa_process_spooled */
	char err[256];
};

/*
 * A 20 MB message signed and encrypted by the pipeline (mpa_process_spooled
 * in a forked child, so that its peak RSS is its own): the peak grows by
 * less than 12 MB - the message, the signed and the encrypted one stream
 * between files (smime.h "Memory"); the output decrypts and verifies with
 * openssl cms to the original entity in canonical form, byte for byte.
 * Under ASan (quarantine, shadow memory) the bound is doubled.
 */
static void test_memory_sign_encrypt_20mb(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, "Bob", "bob@partner.net", 1, 101, 0);
	struct tcert *alice = leaf(f, "Alice", "alice@example.com", 2, 102, 0);
	struct spool_env env;
	struct mem_report rep;
	struct sg_error err;
	struct sg_buf m;
	const struct out *x;
	struct outs o;
	char id[SG_MAIL_ID_LEN + 1], *dec, *want;
	size_t dlen, wlen, line = 0, ent;
	int pfd[2], status;
	pid_t pid;

	add(f, bob, 0);
	export(f, bob, "bob");
	add_key(f, alice);
	sg_buf_init(&m, 24u << 20);
	assert_int_equal(sg_buf_append_str(&m, BIG_HDR BIG_ENTITY_HDR, &err), 0);
	ent = strlen(BIG_HDR);
	while (m.len < (20u << 20))
		assert_int_equal(sg_buf_printf(&m, &err, "line %zu: Gr\xc3\xbc\xc3\x9f" "e "
			"\xe6\x97\xa5\xe6\x9c\xac the quick brown fox\n", line++), 0);
	clear_outgoing(f);
	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup("alice@example.com");
	env.arrival = 1700000000;
	spool_env_add_rcpt(&env, "bob@partner.net", NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, m.data, m.len, id), 0);
	spool_env_free_fields(&env);
	want = crlf(m.data + ent, m.len - ent, &wlen);
	sg_buf_deinit(&m);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* own spool and store handles: nothing of the parent's is used */
		struct spool *sp = spool_open(f->dir, &err);
		struct store *db = sp != NULL ? store_open(f->url, &err) : NULL;
		struct mpa_conf conf = {.cfg = f->cfg, .db = db, .max_size = 0};
		struct mpa *mpa = db != NULL ? mpa_new(&conf, &err) : NULL;
		struct rusage ru;
		long before;

		memset(&rep, 0, sizeof(rep));
		close(pfd[0]);
		getrusage(RUSAGE_SELF, &ru);
		before = ru.ru_maxrss;
		rep.rc = mpa != NULL ? mpa_process_spooled(mpa, sp, id, &err) : -1;
		getrusage(RUSAGE_SELF, &ru);
		rep.grow = ru.ru_maxrss - before;
		if (rep.rc != 0)
			snprintf(rep.err, sizeof(rep.err), "%s", err.msg);
		_exit(write(pfd[1], &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : 1);
	}
	close(pfd[1]);
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(read(pfd[0], &rep, sizeof(rep)), (ssize_t)sizeof(rep));
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (rep.rc != 0)
		fail_msg("process: %s", rep.err);
	print_message("pipeline sign+encrypt of %zu bytes: peak RSS +%ld KB%s\n", wlen,
		rep.grow, MPA_TEST_ASAN ? " (ASan build)" : "");
	if (rep.grow >= (MPA_TEST_ASAN ? 24 : 12) * 1024)
		fail_msg("sign+encrypt of a 20 MB message grew the peak RSS by %ld KB", rep.grow);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	collect(f, &o);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_true(memmem(x->body, x->len, "enveloped-data", 14) != NULL);
	assert_int_equal(decrypt_as(f, x, "bob"), 0);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "dec.out"), f->dir, fpath(f, "ver.out")), 0);
	dec = read_file(fpath(f, "ver.out"), &dlen);
	assert_int_equal(dlen, wlen);
	assert_memory_equal(dec, want, wlen);
	free(dec);
	free(want);
	outs_free(&o);
	tcert_free(&alice);
	tcert_free(&bob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_encrypt_openssl_byte_identical, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_sign_encrypt_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encryption_notification, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_signed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freshest_signing_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_groups_separate_outputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bcc_own_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caches_see_changes_between_messages, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_scratch_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scratch_long_then_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_algorithms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_sign_when_encrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ec_certificates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_already_encrypted_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_signed_encrypted_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incoming_decrypt_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incoming_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incoming_remove_signature_signed_by, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_strict_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_archiver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corpus_thunderbird, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_sign_encrypt_20mb, setup, teardown),
	};

	sg_log_init("test_mpa_smime", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
