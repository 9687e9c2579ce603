/* test_mpa_smime_sig.c - signature features of the S/MIME methods:
 * F-SMIME-2 opaque signing on request (the sender's smime_signing_mode:
 * application/pkcs7-mime signed-data, sign-only and sign-then-encrypt,
 * verified by `openssl cms -verify` and by our own incoming path; clear
 * stays the default) and F-SMIME-4 CRLs carried in signatures (collected
 * into the CRL store only when a valid issuer - stored, a root, or carried
 * in the same signature - verifies them; the revocation takes effect, for
 * the signer of the same message too; bad signatures, unknown or fake
 * issuers and older CRLs change nothing). Messages signed with `openssl cms
 * -sign -crlfile`. SQLite store in a temp dir, or (built with MPA_SIG_PG)
 * a PostgreSQL database of its own per test (SG_TEST_PG_URL or a private
 * server); certificates from tests/unit/pki's helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/wait.h>

#include <openssl/cms.h>
#include <openssl/pem.h>

#include "mpa_test.h"
#include "mime/mime.h"
#include "mta/mta.h"
#include "pki/pki.h"
#include "pki/pki_key.h"
#include "policy/policy.h"
#include "../pki/pki_test.h"
#include "../store/store_test_pg.h"

#ifdef MPA_SIG_PG
#define IS_PG true
#else
#define IS_PG false
#endif

#define MAXOUT 4

#include "mpa_smime_fixture.h"
#define NKEYS 5

static EVP_PKEY *keys[NKEYS];  /* RSA-2048, made once */
static struct store_test_env E;

static int group_setup(void **state)
{
	size_t i;

	(void)state;
	if (store_test_env_begin(&E, "mpasig", IS_PG) < 0)
		return -1;
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
	store_test_env_end(&E);
	return 0;
}

/* export_crl - a DER CRL as PEM file dir/<name> (for openssl -crlfile) */
static void export_crl(const struct fixture *f, const unsigned char *der, size_t len,
	const char *name)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	FILE *fp = fopen(fpath(f, name), "w");

	assert_non_null(crl);
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509_CRL(fp, crl), 1);
	fclose(fp);
	X509_CRL_free(crl);
}

/* leaf - an RSA end-entity certificate under issuer (NULL: the root) */
static struct tcert *leaf(struct fixture *f, const struct tcert *issuer, const char *cn,
	const char *email, int key, long serial)
{
	char san[200];

	snprintf(san, sizeof(san), "email:%s", email);
	return tcert_make(&(struct tspec){.cn = cn, .san = san,
		.issuer = issuer != NULL ? issuer : f->root, .nb_days = -1, .na_days = 0,
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
	assert_int_equal(store_test_db_open(&E, "mpasig", &f->tdb), 0);
	f->db = f->tdb.db;
	assert_int_equal(store_backend(f->db), IS_PG ? STORE_POSTGRES : STORE_SQLITE);
	fixture_contexts_open(f, "MPA Sig Root", keys[0]);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fixture_contexts_close(f);
	f->db = NULL;
	store_test_db_drop(&E, &f->tdb);
	spool_close(&f->sp);
	mt_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* run - msg from sender to rcpt through a fresh pipeline: exactly one
 * output into *x (caller frees with outs_free), the log into *log_r (caller
 * frees), the mail ID into id (SG_MAIL_ID_LEN + 1) */
static void run(struct fixture *f, const char *sender, const char *rcpt, const char *msg,
	size_t len, struct outs *o, char **log_r, char *id)
{
	struct mpa_conf conf = {.cfg = f->cfg, .db = f->db, .max_size = 0};
	struct spool_env env;
	struct sg_error err;
	struct mpa *mpa;
	struct mt_log log;
	int rc;

	clear_outgoing(f);
	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup(sender);
	env.arrival = 1700000000;
	spool_env_add_rcpt(&env, rcpt, NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, msg, len, id), 0);
	spool_env_free_fields(&env);
	mpa = mpa_new(&conf, &err);
	assert_non_null(mpa);
	mt_log_start(&log);
	rc = mpa_process_spooled(mpa, f->sp, id, &err);
	*log_r = mt_log_stop(&log);
	mpa_free(&mpa);
	if (rc != 0)
		fail_msg("process: %s\n%s", err.msg, *log_r);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	collect(f, o);
	if (o->n != 1)
		fail_msg("%zu outputs, want 1\n%s", o->n, *log_r);
}

/* crlf - s with every bare LF made CRLF (malloc'ed) */
static char *crlf(const char *s, size_t *len_r)
{
	size_t len = strlen(s), i, k = 0;
	char *o = sg_xmalloc(2 * len + 1);

	for (i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			o[k++] = '\r';
		o[k++] = s[i];
	}
	o[k] = '\0';
	*len_r = k;
	return o;
}

/* file_is - dir/name holds exactly want (LF made CRLF) */
static void file_is(struct fixture *f, const char *name, const char *want)
{
	size_t len, wlen;
	char *got = read_file(fpath(f, name), &len);
	char *w = crlf(want, &wlen);

	assert_non_null(got);
	assert_int_equal(len, wlen);
	assert_memory_equal(got, w, wlen);
	free(got);
	free(w);
}

#define ENTITY "Content-Type: text/plain; charset=utf-8\n" \
	"Content-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9f" "e SECRET-4711\nline two\n"
#define OUT_MSG "From: Alice <alice@example.com>\nTo: someone\nSubject: Offer\n" \
	"MIME-Version: 1.0\n" ENTITY

/* ------------------------------------------------------ signing mode */

/* The factory value is clear; the catalogue offers exactly clear|opaque. */
static void test_signing_mode_property(void **state)
{
	const struct policy_prop_def *d;
	enum policy_prop_id id;
	struct sg_error err;
	char *norm = NULL;

	(void)state;
	assert_int_equal(policy_prop_find("smime_signing_mode", &id), 1);
	d = policy_prop_def(id);
	assert_string_equal(d->def, "clear");
	assert_int_equal(policy_prop_validate(id, "opaque", POLICY_LEVEL_USER, &norm, &err), 0);
	assert_string_equal(norm, "opaque");
	free(norm);
	norm = NULL;
	assert_int_equal(policy_prop_validate(id, "detached", POLICY_LEVEL_USER, &norm, &err),
		-1);
	assert_null(norm);
}

/* Sign only (plain method), default: multipart/signed. With the sender's
 * smime_signing_mode=opaque: application/pkcs7-mime signed-data whose
 * content is not readable in the clear, verified by openssl against the
 * root, giving the original entity byte for byte (CRLF). */
static void test_opaque_sign_only(void **state)
{
	struct fixture *f = *state;
	struct tcert *alice = leaf(f, NULL, "Alice", "alice@example.com", 2, 102);
	char id[SG_MAIL_ID_LEN + 1];
	struct outs o;
	char *log;

	add_key(f, alice);
	run(f, "alice@example.com", "dave@plain.org", OUT_MSG, strlen(OUT_MSG), &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "multipart/signed"));
	assert_null(strstr(o.v[0].body, "signed-data"));
	outs_free(&o);
	free(log);

	set(f, POLICY_KIND_USER, "alice@example.com", "smime_signing_mode", "opaque");
	run(f, "alice@example.com", "dave@plain.org", OUT_MSG, strlen(OUT_MSG), &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "application/pkcs7-mime"));
	assert_non_null(strstr(o.v[0].body, "smime-type=signed-data"));
	assert_null(strstr(o.v[0].body, "multipart/signed"));
	assert_null(strstr(o.v[0].body, "SECRET-4711"));   /* inside the CMS, base64 */
	assert_non_null(strstr(o.v[0].body, "Subject: Offer"));
	assert_non_null(strstr(log, "action=smime-sign"));
	write_file(fpath(f, "opaque.eml"), o.v[0].body, o.v[0].len);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "opaque.eml"), f->dir, fpath(f, "ver.out")), 0);
	file_is(f, "ver.out", ENTITY);
	outs_free(&o);
	free(log);
	tcert_free(&alice);
}

/* Our own incoming path reads the opaque signature: an internal recipient
 * gets the fields Signed/Signer-Verified/Signer-Trusted True, and with
 * remove_signature the content in the clear. */
static void test_opaque_incoming_verifies(void **state)
{
	struct fixture *f = *state;
	struct tcert *alice = leaf(f, NULL, "Alice", "alice@example.com", 2, 102);
	char id[SG_MAIL_ID_LEN + 1];
	struct outs o;
	char *log, *signed_msg;
	size_t len;

	add_key(f, alice);
	set(f, POLICY_KIND_USER, "alice@example.com", "smime_signing_mode", "opaque");
	run(f, "alice@example.com", "dave@plain.org", OUT_MSG, strlen(OUT_MSG), &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "smime-type=signed-data"));
	signed_msg = o.v[0].body;
	len = o.v[0].len;
	o.v[0].body = NULL;
	outs_free(&o);
	free(log);

	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_DOMAIN, "example.com", "smime_remove_signature", "true");
	run(f, "bob@partner.net", "dave@example.com", signed_msg, len, &o, &log, id);
	if (strstr(o.v[0].body, "X-Sealgate-Info-Signer-Verified-0-0: True") == NULL)
		fail_msg("not verified:\n%s\n%s", o.v[0].body, log);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signed-0: True"));
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: True"));
	assert_non_null(strstr(o.v[0].body,
		"X-Sealgate-Info-Signer-Email-0-0: alice@example.com"));
	assert_non_null(strstr(o.v[0].body, "SECRET-4711"));
	assert_null(strstr(o.v[0].body, "pkcs7-mime"));
	outs_free(&o);
	free(log);
	free(signed_msg);
	tcert_free(&alice);
}

/* Sign then encrypt with opaque mode: the decrypted entity is
 * application/pkcs7-mime signed-data that openssl verifies, giving the
 * original entity. The mode set on the RECIPIENT's domain is not used (it
 * is the sender's property): clear there unless the sender says opaque. */
static void test_opaque_sign_encrypt(void **state)
{
	struct fixture *f = *state;
	struct tcert *alice = leaf(f, NULL, "Alice", "alice@example.com", 2, 102);
	struct tcert *bob = leaf(f, NULL, "Bob", "bob@partner.net", 1, 101);
	char id[SG_MAIL_ID_LEN + 1];
	struct outs o;
	char *log, *dec;
	size_t dlen;

	add_key(f, alice);
	add(f, bob, 0);
	export(f, bob, "bob");
	set(f, POLICY_KIND_DOMAIN, "partner.net", "smime_signing_mode", "opaque");
	run(f, "alice@example.com", "bob@partner.net", OUT_MSG, strlen(OUT_MSG), &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "enveloped-data"));
	write_file(fpath(f, "enc.eml"), o.v[0].body, o.v[0].len);
	assert_int_equal(sh(f, "openssl cms -decrypt -in %s -recip %s/bob.pem -inkey "
		"%s/bob.key -out %s", fpath(f, "enc.eml"), f->dir, f->dir,
		fpath(f, "dec.out")), 0);
	dec = read_file(fpath(f, "dec.out"), &dlen);
	assert_non_null(dec);
	assert_non_null(strstr(dec, "multipart/signed"));   /* the recipient's setting: no */
	free(dec);
	outs_free(&o);
	free(log);

	set(f, POLICY_KIND_DOMAIN, "example.com", "smime_signing_mode", "opaque");
	run(f, "alice@example.com", "bob@partner.net", OUT_MSG, strlen(OUT_MSG), &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "enveloped-data"));
	assert_non_null(strstr(log, "action=smime-sign-encrypt"));
	write_file(fpath(f, "enc.eml"), o.v[0].body, o.v[0].len);
	assert_int_equal(sh(f, "openssl cms -decrypt -in %s -recip %s/bob.pem -inkey "
		"%s/bob.key -out %s", fpath(f, "enc.eml"), f->dir, f->dir,
		fpath(f, "dec.out")), 0);
	dec = read_file(fpath(f, "dec.out"), &dlen);
	assert_non_null(dec);
	assert_non_null(strstr(dec, "application/pkcs7-mime"));
	assert_non_null(strstr(dec, "signed-data"));
	assert_null(strstr(dec, "multipart/signed"));
	free(dec);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem -out %s",
		fpath(f, "dec.out"), f->dir, fpath(f, "ver.out")), 0);
	file_is(f, "ver.out", ENTITY);
	outs_free(&o);
	free(log);
	tcert_free(&bob);
	tcert_free(&alice);
}

/* ---------------------------------------------------- CRLs in signatures */

#define IN_BODY "Content-Type: text/plain; charset=utf-8\n" \
	"Content-Transfer-Encoding: 8bit\n\nHall\xc3\xb6 INCOMING-SECRET-99\n"

/* pem_x509 / pem_key / pem_crl - read dir/name (PEM) */
static X509 *pem_x509(struct fixture *f, const char *name)
{
	FILE *fp = fopen(fpath(f, name), "r");
	X509 *x;

	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *pem_key(struct fixture *f, const char *name)
{
	FILE *fp = fopen(fpath(f, name), "r");
	EVP_PKEY *k;

	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	return k;
}

static X509_CRL *pem_crl(struct fixture *f, const char *name)
{
	FILE *fp = fopen(fpath(f, name), "r");
	X509_CRL *c;

	assert_non_null(fp);
	c = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(c);
	return c;
}

/*
 * make_signed - IN_BODY clear-signed (multipart/signed) by signer (exported
 * name) carrying the CRL files crls (space-separated names in dir, or NULL)
 * and the extra certificate file certs (or NULL), with outer fields;
 * malloc'ed. OpenSSL 3.0's `openssl cms -sign` has no -crlfile (3.2+ has),
 * so the signature is made with OpenSSL's CMS API (CMS_add1_crl) and then
 * checked by the openssl binary: `openssl cms -verify` accepts it and
 * `-cmsout -print` lists the CRLs.
 */
static char *make_signed(struct fixture *f, const char *signer, const char *crls,
	const char *certs, size_t *len_r)
{
	char name[300];
	X509 *x;
	EVP_PKEY *k;
	STACK_OF(X509) *extra = NULL;
	CMS_ContentInfo *cms;
	BIO *in, *out;
	BUF_MEM *bm;
	size_t len, ncrl = 0;
	char *body, *msg;
	const char *p;

	snprintf(name, sizeof(name), "%s.pem", signer);
	x = pem_x509(f, name);
	snprintf(name, sizeof(name), "%s.key", signer);
	k = pem_key(f, name);
	if (certs != NULL) {
		extra = sk_X509_new_null();
		assert_non_null(extra);
		assert_true(sk_X509_push(extra, pem_x509(f, certs)) > 0);
	}
	/* streaming, as `openssl cms -sign` does: the signature is finished
	 * while SMIME_write_CMS writes, after the CRLs were added */
	in = BIO_new_mem_buf(IN_BODY, (int)strlen(IN_BODY));
	cms = CMS_sign(x, k, extra, in, CMS_DETACHED | CMS_STREAM);
	assert_non_null(cms);
	for (p = crls; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		X509_CRL *crl;

		snprintf(name, sizeof(name), "%.*s", (int)n, p);
		crl = pem_crl(f, name);
		assert_int_equal(CMS_add1_crl(cms, crl), 1);
		X509_CRL_free(crl);
		ncrl++;
		p += n + (e != NULL);
	}
	out = BIO_new(BIO_s_mem());
	assert_int_equal(SMIME_write_CMS(out, cms, in, CMS_DETACHED | CMS_STREAM), 1);
	BIO_get_mem_ptr(out, &bm);
	write_file(fpath(f, "in.sig"), bm->data, bm->length);
	BIO_free(out);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	sk_X509_pop_free(extra, X509_free);
	EVP_PKEY_free(k);
	X509_free(x);
	/* the real openssl reads it: a valid signature, and the CRLs in it */
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s/root.pem "
		"-out /dev/null", fpath(f, "in.sig"), f->dir), 0);
	assert_int_equal(sh(f, "test \"$(openssl cms -cmsout -print -in %s | grep -c "
		"'lastUpdate:')\" = %zu", fpath(f, "in.sig"), ncrl), 0);
	body = read_file(fpath(f, "in.sig"), &len);
	assert_non_null(body);
	msg = sg_xasprintf("From: bob@partner.net\nTo: dave@example.com\nSubject: Report\n"
		"MIME-Version: 1.0\n%s", body);
	free(body);
	*len_r = strlen(msg);
	return msg;
}

struct crl_list {
	struct pki_crl_info v[8];
	size_t n;
};

static int crl_list_cb(const struct pki_crl_info *i, void *arg, struct sg_error *err)
{
	struct crl_list *l = arg;

	(void)err;
	if (l->n < 8)
		l->v[l->n++] = *i;
	return 0;
}

static void crls(struct fixture *f, struct crl_list *l)
{
	struct sg_error err;

	memset(l, 0, sizeof(*l));
	assert_int_equal(pki_crl_list(f->pki, crl_list_cb, l, &err), 0);
}

/* is_valid - pki's verdict on t for signing now: 1 valid, 0 not (reason) */
static int is_valid(struct fixture *f, const struct tcert *t, char *reason, size_t n)
{
	size_t len;
	unsigned char *der = tcert_der(t, &len);
	struct sg_error err;
	struct pki_cert *c = pki_cert_from_der(der, len, &err);
	struct pki_verdict v;

	assert_non_null(c);
	assert_int_equal(pki_cert_verify(f->pki, c, PKI_PURPOSE_SIGN, 0, PKI_VERIFY_NO_CACHE,
		&v, &err), 0);
	pki_cert_free(&c);
	free(der);
	if (reason != NULL)
		sg_strlcpy(reason, v.reason, n);
	return v.is_valid ? 1 : 0;
}

/* in_run - msg into the pipeline for internal dave@example.com; the one
 * output's body into *x, the log into *log_r */
static void in_run(struct fixture *f, const char *msg, size_t len, struct outs *o,
	char **log_r, char *id)
{
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	run(f, "bob@partner.net", "dave@example.com", msg, len, o, log_r, id);
}

/* A CRL of the root carried in a valid signature goes into the CRL store
 * (source names the mail), and the revocation it lists takes effect for a
 * certificate that was valid before. */
static void test_crl_from_signature_imported(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, NULL, "Bob", "bob@partner.net", 1, 602);
	struct tcert *carol = leaf(f, NULL, "Carol", "carol@partner.net", 3, 777);
	const long revoked[] = {777};
	char id[SG_MAIL_ID_LEN + 1], reason[PKI_REASON_MAX], src[64];
	unsigned char *crl;
	struct crl_list l;
	struct outs o;
	size_t len;
	char *msg, *log;

	export(f, bob, "bob");
	add(f, carol, 0);
	assert_int_equal(is_valid(f, carol, NULL, 0), 1);
	crl = tcrl_make(f->root, revoked, 1, -1, 30, NULL, 7, &len);
	export_crl(f, crl, len, "root.crl");
	free(crl);
	msg = make_signed(f, "bob", "root.crl", NULL, &len);
	in_run(f, msg, len, &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Verified-0-0: True"));
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: True"));
	assert_non_null(strstr(o.v[0].body, "INCOMING-SECRET-99"));
	assert_non_null(strstr(log, "CRL of CN=MPA Sig Root from the signature added"));
	crls(f, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].issuer, "CN=MPA Sig Root");
	assert_string_equal(l.v[0].crl_number, "7");
	assert_int_equal(l.v[0].n_entries, 1);
	snprintf(src, sizeof(src), "signature of %s", id);
	assert_string_equal(l.v[0].source, src);
	assert_string_equal(l.v[0].signer, f->root->thumb);
	assert_int_equal(is_valid(f, carol, reason, sizeof(reason)), 0);
	assert_non_null(strstr(reason, "revoked"));
	assert_int_equal(is_valid(f, bob, NULL, 0), 1);
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&carol);
	tcert_free(&bob);
}

/* The CRL is imported before the signers are checked: a signer revoked by
 * the CRL its own message carries is reported not trusted (revoked), while
 * the signature itself is intact. */
static void test_crl_revokes_own_signer(void **state)
{
	struct fixture *f = *state;
	struct tcert *mal = leaf(f, NULL, "Mallory", "mallory@partner.net", 1, 778);
	const long revoked[] = {778};
	char id[SG_MAIL_ID_LEN + 1];
	unsigned char *crl;
	struct outs o;
	size_t len;
	char *msg, *log, *p;

	export(f, mal, "mal");
	crl = tcrl_make(f->root, revoked, 1, -1, 30, NULL, 8, &len);
	export_crl(f, crl, len, "root.crl");
	free(crl);
	msg = make_signed(f, "mal", "root.crl", NULL, &len);
	in_run(f, msg, len, &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Verified-0-0: True"));
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: False"));
	p = strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-Info-0-0: ");
	assert_non_null(p);
	assert_non_null(strstr(p, "revoked"));
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&mal);
}

/* A CRL whose signature does not verify with the issuer's key (signed by
 * another key) is not imported: logged with the mail ID, the message is
 * processed as usual and nothing is revoked. */
static void test_crl_bad_signature_not_imported(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, NULL, "Bob", "bob@partner.net", 1, 602);
	struct tcert *carol = leaf(f, NULL, "Carol", "carol@partner.net", 3, 777);
	const long revoked[] = {777};
	char id[SG_MAIL_ID_LEN + 1], want[128];
	unsigned char *crl;
	struct crl_list l;
	struct outs o;
	size_t len;
	char *msg, *log;

	export(f, bob, "bob");
	add(f, carol, 0);
	crl = tcrl_make(f->root, revoked, 1, -1, 30, keys[4], 9, &len);
	export_crl(f, crl, len, "bad.crl");
	free(crl);
	msg = make_signed(f, "bob", "bad.crl", NULL, &len);
	in_run(f, msg, len, &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Verified-0-0: True"));
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: True"));
	assert_non_null(strstr(o.v[0].body, "INCOMING-SECRET-99"));
	snprintf(want, sizeof(want), "%s: CRL in the signature not imported: ", id);
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "signature does not verify"));
	crls(f, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(is_valid(f, carol, NULL, 0), 1);
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&carol);
	tcert_free(&bob);
}

/* A CRL of an issuer the PKI does not know (not stored, not in the
 * signature) is not imported; neither is one signed by a fake issuer that
 * the signature carries (same name as the root, another key, no path to a
 * root): the real CRL stored before stays, with its revocation. */
static void test_crl_unknown_or_fake_issuer(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, NULL, "Bob", "bob@partner.net", 1, 602);
	struct tcert *carol = leaf(f, NULL, "Carol", "carol@partner.net", 3, 777);
	struct tcert *other = tcert_make(&(struct tspec){.cn = "Other CA", .ca = true,
		.nb_days = -2, .na_days = 3650, .key = keys[4]});
	struct tcert *fake = tcert_make(&(struct tspec){.cn = "MPA Sig Root", .ca = true,
		.nb_days = -2, .na_days = 3650, .key = keys[4]});
	const long revoked[] = {777}, none[] = {0};
	char id[SG_MAIL_ID_LEN + 1];
	unsigned char *crl;
	struct crl_list l;
	struct sg_error err;
	struct outs o;
	size_t len;
	char *msg, *log;

	export(f, bob, "bob");
	export(f, fake, "fake");
	add(f, carol, 0);
	/* unknown issuer */
	crl = tcrl_make(other, revoked, 1, -1, 30, NULL, 3, &len);
	export_crl(f, crl, len, "other.crl");
	free(crl);
	msg = make_signed(f, "bob", "other.crl", NULL, &len);
	in_run(f, msg, len, &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: True"));
	assert_non_null(strstr(log, "CRL in the signature not imported: CRL of CN=Other CA: "
		"no issuer certificate in the store"));
	crls(f, &l);
	assert_int_equal(l.n, 0);
	outs_free(&o);
	free(log);
	free(msg);

	/* the real CRL (number 5, revokes carol), then a fake one (number 50,
	 * empty) signed by a look-alike root carried in the signature */
	crl = tcrl_make(f->root, revoked, 1, -1, 30, NULL, 5, &len);
	assert_int_equal(pki_crl_import(f->pki, crl, len, "import", NULL, &err), PKI_CRL_ADDED);
	free(crl);
	assert_int_equal(is_valid(f, carol, NULL, 0), 0);
	crl = tcrl_make(fake, none, 0, 0, 30, NULL, 50, &len);
	export_crl(f, crl, len, "fake.crl");
	free(crl);
	msg = make_signed(f, "bob", "fake.crl", "fake.pem", &len);
	in_run(f, msg, len, &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: True"));
	assert_non_null(strstr(log, "CRL in the signature not imported: CRL of CN=MPA Sig Root: "
		"issuer certificate not valid"));
	crls(f, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].crl_number, "5");
	assert_string_equal(l.v[0].source, "import");
	assert_int_equal(is_valid(f, carol, NULL, 0), 0);
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&fake);
	tcert_free(&other);
	tcert_free(&carol);
	tcert_free(&bob);
}

/* A CRL not newer than the stored one of the same issuer (lower cRLNumber,
 * older thisUpdate) does not replace it, as with `sealgate crl import`. */
static void test_crl_older_keeps_stored(void **state)
{
	struct fixture *f = *state;
	struct tcert *bob = leaf(f, NULL, "Bob", "bob@partner.net", 1, 602);
	struct tcert *carol = leaf(f, NULL, "Carol", "carol@partner.net", 3, 777);
	const long revoked[] = {777}, none[] = {0};
	char id[SG_MAIL_ID_LEN + 1];
	unsigned char *crl;
	struct crl_list l;
	struct sg_error err;
	struct outs o;
	size_t len;
	char *msg, *log;

	export(f, bob, "bob");
	add(f, carol, 0);
	crl = tcrl_make(f->root, revoked, 1, -1, 30, NULL, 5, &len);
	assert_int_equal(pki_crl_import(f->pki, crl, len, "import", NULL, &err), PKI_CRL_ADDED);
	free(crl);
	crl = tcrl_make(f->root, none, 0, -3, 30, NULL, 4, &len);
	export_crl(f, crl, len, "old.crl");
	free(crl);
	msg = make_signed(f, "bob", "old.crl", NULL, &len);
	in_run(f, msg, len, &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: True"));
	assert_non_null(strstr(log, "is not newer than the stored one: kept the stored one"));
	crls(f, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].crl_number, "5");
	assert_int_equal(l.v[0].n_entries, 1);
	assert_int_equal(is_valid(f, carol, NULL, 0), 0);
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&carol);
	tcert_free(&bob);
}

/* The issuer certificate may come with the signature: a sub CA the store
 * did not know, carried in the signature and chaining to the root, verifies
 * its CRL, which is imported (and the sub CA collected); two CRLs in one
 * signature (root's and sub CA's) are both taken. */
static void test_crl_issuer_in_signature(void **state)
{
	struct fixture *f = *state;
	struct tcert *sub = tcert_make(&(struct tspec){.cn = "MPA Sig Sub CA", .ca = true,
		.issuer = f->root, .nb_days = -2, .na_days = 3000, .serial = 55,
		.key = keys[3]});
	struct tcert *erin = leaf(f, sub, "Erin", "erin@partner.net", 1, 901);
	struct tcert *frank = leaf(f, sub, "Frank", "frank@partner.net", 2, 902);
	const long rev_sub[] = {902}, none[] = {0};
	char id[SG_MAIL_ID_LEN + 1];
	unsigned char *crl;
	struct crl_list l;
	struct outs o;
	size_t len, i;
	char *msg, *log;
	bool seen_sub = false, seen_root = false;

	export(f, erin, "erin");
	export(f, sub, "sub");
	add(f, frank, 0);
	crl = tcrl_make(sub, rev_sub, 1, -1, 30, NULL, 2, &len);
	export_crl(f, crl, len, "sub.crl");
	free(crl);
	crl = tcrl_make(f->root, none, 0, -1, 30, NULL, 3, &len);
	export_crl(f, crl, len, "root.crl");
	free(crl);
	msg = make_signed(f, "erin", "sub.crl root.crl", "sub.pem", &len);
	in_run(f, msg, len, &o, &log, id);
	assert_non_null(strstr(o.v[0].body, "X-Sealgate-Info-Signer-Trusted-0-0: True"));
	crls(f, &l);
	assert_int_equal(l.n, 2);
	for (i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].issuer, "CN=MPA Sig Sub CA") == 0) {
			seen_sub = true;
			assert_string_equal(l.v[i].signer, sub->thumb);
			assert_int_equal(l.v[i].n_entries, 1);
		} else if (strcmp(l.v[i].issuer, "CN=MPA Sig Root") == 0) {
			seen_root = true;
		}
	}
	assert_true(seen_sub && seen_root);
	assert_int_equal(is_valid(f, frank, NULL, 0), 0);
	assert_int_equal(is_valid(f, erin, NULL, 0), 1);
	outs_free(&o);
	free(log);
	free(msg);
	tcert_free(&frank);
	tcert_free(&erin);
	tcert_free(&sub);
}

/* The import rule behind it (pki_crl_import_ex, PKI_CRL_IMPORT_TRUSTED_ISSUER):
 * an issuer CA without cRLSign in its key usage is refused (SG_E_POLICY),
 * an unknown issuer is SG_E_NOTFOUND; nothing is stored in either case,
 * while the plain import (sealgate crl import) still stores the CRL of an
 * unknown issuer to verify it when first used. */
static void test_crl_import_trusted_issuer_rules(void **state)
{
	struct fixture *f = *state;
	struct tcert *nocrl = tcert_make(&(struct tspec){.cn = "No CRL Sign CA",
		.issuer = f->root, .nb_days = -2, .na_days = 3000, .ku = "keyCertSign",
		.serial = 66, .key = keys[3]});
	struct tcert *other = tcert_make(&(struct tspec){.cn = "Other CA", .ca = true,
		.nb_days = -2, .na_days = 3650, .key = keys[4]});
	const long none[] = {0};
	unsigned char *crl;
	struct crl_list l;
	struct sg_error err;
	size_t len;

	add(f, nocrl, 0);
	crl = tcrl_make(nocrl, none, 0, -1, 30, NULL, 1, &len);
	assert_int_equal(pki_crl_import_ex(f->pki, crl, len, "test",
		PKI_CRL_IMPORT_TRUSTED_ISSUER, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_POLICY);
	assert_non_null(strstr(err.msg, "cRLSign"));
	free(crl);
	crl = tcrl_make(other, none, 0, -1, 30, NULL, 1, &len);
	assert_int_equal(pki_crl_import_ex(f->pki, crl, len, "test",
		PKI_CRL_IMPORT_TRUSTED_ISSUER, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	crls(f, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(pki_crl_import(f->pki, crl, len, "import", NULL, &err), PKI_CRL_ADDED);
	crls(f, &l);
	assert_int_equal(l.n, 1);
	free(crl);
	tcert_free(&other);
	tcert_free(&nocrl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signing_mode_property),
		cmocka_unit_test_setup_teardown(test_opaque_sign_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opaque_incoming_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opaque_sign_encrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_from_signature_imported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_revokes_own_signer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_bad_signature_not_imported, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_crl_unknown_or_fake_issuer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_older_keeps_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_issuer_in_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_import_trusted_issuer_rules, setup,
			teardown),
	};

	sg_log_init("test_mpa_smime_sig", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
