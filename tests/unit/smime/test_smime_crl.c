/*
 * test_smime_crl.c - CRLs carried in signatures (F-SMIME-4): smime_open
 * offers each CRL of a signed layer (clear and opaque) to opts->crl, with
 * the certificates of the signature, BEFORE the signers' trust is checked;
 * counts them in layer.n_crls; offers at most SMIME_MAX_CRLS; a callback
 * error fails smime_open; without a callback they are only counted.
 * Signatures with CRLs are made with OpenSSL's CMS API (CMS_add1_crl: the
 * openssl 3.0 command line has no -crlfile); CRLs are signed by the test CA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "smime_test.h"

#define ENTITY "Content-Type: text/plain\r\n\r\nhello CRL\r\n"

/* make_crl - a CRL of the test CA with cRLNumber num (caller frees) */
static X509_CRL *
make_crl(long num)
{
	char path[600];
	EVP_PKEY *ca_key;
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *tm = ASN1_TIME_new();
	ASN1_INTEGER *n = ASN1_INTEGER_new();
	time_t now = time(NULL);

	snprintf(path, sizeof(path), "%s/ca.key", tenv_dir());
	ca_key = tload_key(path, NULL);
	assert_non_null(ca_key);
	assert_non_null(crl);
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(tenv_ca()));
	X509_time_adj_ex(tm, -1, 0, &now);
	X509_CRL_set1_lastUpdate(crl, tm);
	X509_time_adj_ex(tm, 30, 0, &now);
	X509_CRL_set1_nextUpdate(crl, tm);
	ASN1_INTEGER_set(n, num);
	assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0), 1);
	assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
	ASN1_INTEGER_free(n);
	ASN1_TIME_free(tm);
	EVP_PKEY_free(ca_key);
	return crl;
}

/* crl_number - the cRLNumber of crl */
static long
crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	long v;

	assert_non_null(n);
	v = ASN1_INTEGER_get(n);
	ASN1_INTEGER_free(n);
	return v;
}

/* sign_with_crls - ENTITY signed by k (clear or opaque) carrying CRLs
 * numbered 1..ncrl; the whole message (outer fields + S/MIME) into out.
 * Streaming, as `openssl cms -sign` does: the signature is finished while
 * SMIME_write_CMS writes, after the CRLs were added. */
static void
sign_with_crls(struct tkey *k, int opaque, int ncrl, struct sg_buf *out)
{
	unsigned flags = CMS_STREAM | CMS_BINARY | (opaque ? 0 : CMS_DETACHED);
	BIO *in = BIO_new_mem_buf(ENTITY, (int)strlen(ENTITY));
	BIO *mem = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms;
	BUF_MEM *bm;
	struct sg_error e;

	cms = CMS_sign(k->cert, k->pkey, NULL, in, flags);
	assert_non_null(cms);
	for (int i = 1; i <= ncrl; i++) {
		X509_CRL *crl = make_crl(i);

		assert_int_equal(CMS_add1_crl(cms, crl), 1);
		X509_CRL_free(crl);
	}
	if (SMIME_write_CMS(mem, cms, in, flags) != 1) {
		ERR_print_errors_fp(stderr);
		fail();
	}
	BIO_get_mem_ptr(mem, &bm);
	sg_buf_init(out, 1 << 20);
	assert_int_equal(sg_buf_append_str(out, "From: a@example.com\r\nSubject: crl\r\n"
		"MIME-Version: 1.0\r\n", &e), 0);
	assert_int_equal(sg_buf_append(out, bm->data, bm->length, &e), 0);
	BIO_free(mem);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
}

/* What the callbacks saw. */
struct seen {
	int crl_calls;
	long numbers[32];
	int certs_had_signer;   /* every call's certs held the signer */
	int trust_calls;
	int crl_after_trust;    /* a CRL came after a trust check */
	X509 *signer;
	int fail_at;            /* crl call number that fails (0: none) */
	int idx_wrong;          /* an idx was not the call's position */
	X509_STORE *st;
};

static int
crl_cb(void *arg, X509_CRL *crl, size_t idx, STACK_OF(X509) *certs, struct sg_error *err)
{
	struct seen *s = arg;
	int found = 0;

	if (idx != (size_t)s->crl_calls)
		s->idx_wrong = 1;   /* one layer per test: idx counts from 0 */

	if (s->trust_calls > 0)
		s->crl_after_trust = 1;
	if (s->crl_calls < 32)
		s->numbers[s->crl_calls] = crl_number(crl);
	s->crl_calls++;
	for (int i = 0; i < sk_X509_num(certs); i++)
		if (X509_cmp(sk_X509_value(certs, i), s->signer) == 0)
			found = 1;
	if (!found)
		s->certs_had_signer = 0;
	if (s->fail_at == s->crl_calls) {
		sg_error_set(err, SG_E_STORE, "store down");
		return -1;
	}
	return 0;
}

static int
trust_cb(void *arg, X509 *signer, STACK_OF(X509) *certs, int64_t at, char *info,
	size_t infolen, struct sg_error *err)
{
	struct seen *s = arg;

	s->trust_calls++;
	return ttrust_cb(s->st, signer, certs, at, info, infolen, err);
}

/* open_with - smime_open with both callbacks recording into s; returns its
 * result, res and out filled */
static int
open_with(const struct sg_buf *msg, struct seen *s, int with_crl_cb, struct smime_result *res,
	struct sg_buf *out, struct sg_error *e)
{
	struct smime_open_opts o = {
		.trust = trust_cb, .trust_arg = s,
		.crl = with_crl_cb ? crl_cb : NULL, .crl_arg = s,
	};

	memset(res, 0, sizeof(*res));
	sg_buf_init(out, 1 << 20);
	return smime_open(msg->data, msg->len, &o, res, out, e);
}

static void
seen_init(struct seen *s, struct tkey *k)
{
	memset(s, 0, sizeof(*s));
	s->certs_had_signer = 1;
	s->signer = k->cert;
	s->st = tstore();
}

/* Clear-signed with two CRLs: each offered once, in order, with the
 * signature's certificates, before the trust check; signer valid, trusted. */
static void
test_crl_clear_offered_before_trust(void **state)
{
	struct tkey *k = tkey_get("crlsigner", "rsa2048");
	struct smime_result res;
	struct sg_buf msg, out;
	struct sg_error e;
	struct seen s;

	(void)state;
	seen_init(&s, k);
	sign_with_crls(k, 0, 2, &msg);
	assert_true(tmem_find(msg.data, msg.len, "multipart/signed"));
	if (open_with(&msg, &s, 1, &res, &out, &e) < 0)
		fail_msg("smime_open: %s", e.msg);
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].kind, SMIME_LAYER_SIGNED_CLEAR);
	assert_int_equal(res.layers[0].n_crls, 2);
	assert_int_equal(s.crl_calls, 2);
	assert_int_equal(s.numbers[0] + s.numbers[1], 3);   /* 1 and 2, each once */
	assert_int_not_equal(s.numbers[0], s.numbers[1]);
	assert_true(s.certs_had_signer);
	assert_false(s.idx_wrong);
	assert_int_equal(s.trust_calls, 1);
	assert_false(s.crl_after_trust);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	assert_int_equal(res.layers[0].signers[0].trusted, 1);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&msg);
	X509_STORE_free(s.st);
}

/* Opaque signed-data with one CRL: offered too. */
static void
test_crl_opaque(void **state)
{
	struct tkey *k = tkey_get("crlsigner", "rsa2048");
	struct smime_result res;
	struct sg_buf msg, out;
	struct sg_error e;
	struct seen s;

	(void)state;
	seen_init(&s, k);
	sign_with_crls(k, 1, 1, &msg);
	assert_true(tmem_find(msg.data, msg.len, "signed-data"));
	if (open_with(&msg, &s, 1, &res, &out, &e) < 0)
		fail_msg("smime_open: %s", e.msg);
	assert_int_equal(res.n_layers, 1);
	assert_int_equal(res.layers[0].kind, SMIME_LAYER_SIGNED_OPAQUE);
	assert_int_equal(res.layers[0].n_crls, 1);
	assert_int_equal(s.crl_calls, 1);
	assert_int_equal(s.numbers[0], 1);
	assert_false(s.crl_after_trust);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&msg);
	X509_STORE_free(s.st);
}

/* No CRLs: the callback is never called, n_crls 0. No callback: CRLs are
 * counted, nothing else happens. */
static void
test_crl_none_or_no_callback(void **state)
{
	struct tkey *k = tkey_get("crlsigner", "rsa2048");
	struct smime_result res;
	struct sg_buf msg, out;
	struct sg_error e;
	struct seen s;

	(void)state;
	seen_init(&s, k);
	sign_with_crls(k, 0, 0, &msg);
	assert_int_equal(open_with(&msg, &s, 1, &res, &out, &e), 0);
	assert_int_equal(res.layers[0].n_crls, 0);
	assert_int_equal(s.crl_calls, 0);
	assert_int_equal(s.trust_calls, 1);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&msg);

	sign_with_crls(k, 0, 3, &msg);
	assert_int_equal(open_with(&msg, &s, 0, &res, &out, &e), 0);
	assert_int_equal(res.layers[0].n_crls, 3);
	assert_int_equal(s.crl_calls, 0);
	assert_int_equal(res.layers[0].signers[0].status, SMIME_SIG_VALID);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&msg);
	X509_STORE_free(s.st);
}

/* More than SMIME_MAX_CRLS (hostile input): only the first
 * SMIME_MAX_CRLS are offered, all are counted. */
static void
test_crl_cap(void **state)
{
	struct tkey *k = tkey_get("crlsigner", "rsa2048");
	struct smime_result res;
	struct sg_buf msg, out;
	struct sg_error e;
	struct seen s;

	(void)state;
	seen_init(&s, k);
	sign_with_crls(k, 0, SMIME_MAX_CRLS + 3, &msg);
	assert_int_equal(open_with(&msg, &s, 1, &res, &out, &e), 0);
	assert_int_equal(res.layers[0].n_crls, SMIME_MAX_CRLS + 3);
	assert_int_equal(s.crl_calls, SMIME_MAX_CRLS);
	assert_false(s.idx_wrong);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&msg);
	X509_STORE_free(s.st);
}

/* A callback error (e.g. the store is down) fails smime_open with it; the
 * output holds nothing. */
static void
test_crl_callback_error(void **state)
{
	struct tkey *k = tkey_get("crlsigner", "rsa2048");
	struct smime_result res;
	struct sg_buf msg, out;
	struct sg_error e;
	struct seen s;

	(void)state;
	seen_init(&s, k);
	s.fail_at = 2;
	sign_with_crls(k, 0, 2, &msg);
	assert_int_equal(open_with(&msg, &s, 1, &res, &out, &e), -1);
	assert_int_equal(e.code, SG_E_STORE);
	assert_non_null(strstr(e.msg, "store down"));
	assert_non_null(strstr(e.msg, "CRL 1"));
	assert_int_equal(out.len, 0);
	assert_int_equal(s.trust_calls, 0);
	smime_result_deinit(&res);
	sg_buf_deinit(&out);
	sg_buf_deinit(&msg);
	X509_STORE_free(s.st);
}

static int
group_setup(void **state)
{
	(void)state;
	tenv_init();
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	tenv_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crl_clear_offered_before_trust),
		cmocka_unit_test(test_crl_opaque),
		cmocka_unit_test(test_crl_none_or_no_callback),
		cmocka_unit_test(test_crl_cap),
		cmocka_unit_test(test_crl_callback_error),
	};

	g_mime_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
