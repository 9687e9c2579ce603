/*
 * test_pki_crl.c - F-PKI-5: CRL import (DER/PEM), signature check against the
 * stored issuer (badly signed CRLs are refused), newest per issuer kept,
 * revocation verdicts with reasons, expired CRL still revokes (warning),
 * crl_required, entries listing, delete; plus the CRL import fuzz seeds'
 * error paths (garbage, truncated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/pem.h>

#include "pki_test.h"

static struct pki_verdict verdict(struct tenv *e, const struct tcert *t, unsigned flags)
{
	struct pki_verdict v;
	struct pki_cert *c;
	struct sg_error err;
	size_t len;
	unsigned char *der = tcert_der(t, &len);

	c = pki_cert_from_der(der, len, &err);
	assert_non_null(c);
	if (pki_cert_verify(e->pki, c, PKI_PURPOSE_ANY, 0, flags, &v, &err) < 0)
		fail_msg("verify: %s", err.msg);
	pki_cert_free(&c);
	free(der);
	return v;
}

struct ca {
	struct tcert *root, *mid;
};

static void ca_make(struct tenv *e, struct ca *ca)
{
	ca->root = tcert_make(&(struct tspec){.cn = "CRL Root", .ca = true});
	ca->mid = tcert_make(&(struct tspec){.cn = "CRL Mid", .ca = true, .issuer = ca->root,
		.cdp = "URI:http://127.0.0.1:1/mid.crl"});
	tenv_add(e, ca->root, PKI_ADD_ROOT);
	tenv_add(e, ca->mid, 0);
}

static void ca_free(struct ca *ca)
{
	tcert_free(&ca->root);
	tcert_free(&ca->mid);
}

static int import(struct tenv *e, const void *d, size_t len, struct pki_crl_info *i,
	struct sg_error *err)
{
	return pki_crl_import(e->pki, d, len, NULL, i, err);
}

static void test_revoked(void **state)
{
	struct tenv *e = *state;
	struct ca ca;
	struct tcert *bad, *good;
	struct pki_crl_info info;
	struct pki_verdict v;
	struct sg_error err;
	long serials[] = {0x1001, 0x77};
	unsigned char *crl;
	size_t len;

	ca_make(e, &ca);
	bad = tcert_make(&(struct tspec){.cn = "Revoked", .issuer = ca.mid, .serial = 0x1001});
	good = tcert_make(&(struct tspec){.cn = "Fine", .issuer = ca.mid, .serial = 0x1002});
	assert_true(verdict(e, bad, 0).is_valid);
	crl = tcrl_make(ca.mid, serials, 2, -1, 7, NULL, 5, &len);
	assert_int_equal(import(e, crl, len, &info, &err), PKI_CRL_ADDED);
	assert_int_equal(info.n_entries, 2);
	assert_string_equal(info.crl_number, "5");
	assert_string_equal(info.issuer, "CN=CRL Mid");
	assert_string_equal(info.signer, ca.mid->thumb);
	v = verdict(e, bad, 0);
	assert_false(v.is_valid);
	if (strstr(v.reason, "revoked on ") != v.reason || !strstr(v.reason, "by CRL of CN=CRL Mid"))
		fail_msg("reason \"%s\"", v.reason);
	assert_true(verdict(e, good, 0).is_valid);
	/* importing the same CRL again: not newer */
	assert_int_equal(import(e, crl, len, &info, &err), PKI_CRL_OLDER);
	free(crl);
	tcert_free(&bad);
	tcert_free(&good);
	ca_free(&ca);
}

static void test_revoked_intermediate(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "R2", .ca = true});
	struct tcert *mid = tcert_make(&(struct tspec){.cn = "Mid Revoked", .ca = true,
		.issuer = root, .serial = 42});
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "Under", .issuer = mid});
	struct sg_error err;
	long s[] = {42};
	size_t len;
	unsigned char *crl = tcrl_make(root, s, 1, -1, 7, NULL, 1, &len);
	struct pki_verdict v;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, mid, 0);
	assert_int_equal(import(e, crl, len, NULL, &err), PKI_CRL_ADDED);
	v = verdict(e, leaf, 0);
	assert_false(v.is_valid);
	assert_non_null(strstr(v.reason, "issuer \"CN=Mid Revoked\" revoked on "));
	free(crl);
	tcert_free(&root);
	tcert_free(&mid);
	tcert_free(&leaf);
}

static void test_bad_signature_refused(void **state)
{
	struct tenv *e = *state;
	struct ca ca;
	struct tcert *other = tcert_make(&(struct tspec){.cn = "Other"});
	struct sg_error err;
	long s[] = {1};
	size_t len;
	unsigned char *crl;

	ca_make(e, &ca);
	crl = tcrl_make(ca.mid, s, 1, -1, 7, other->k, 1, &len);
	assert_int_equal(import(e, crl, len, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_CRYPTO);
	assert_non_null(strstr(err.msg, "signature does not verify"));
	free(crl);
	tcert_free(&other);
	ca_free(&ca);
}

static void test_unknown_issuer_bad_sig_ignored(void **state)
{
	struct tenv *e = *state;
	struct ca ca;
	struct tcert *leaf, *other = tcert_make(&(struct tspec){.cn = "Other"});
	struct pki_verdict v;
	struct sg_error err;
	long s[] = {9};
	size_t len;
	unsigned char *crl;

	ca_make(e, &ca);
	leaf = tcert_make(&(struct tspec){.cn = "Nine", .issuer = ca.mid, .serial = 9});
	/* the issuer certificate is deleted before import, so the signature is
	 * only checked at use: a badly signed CRL must then be ignored */
	assert_int_equal(pki_cert_delete(e->pki, ca.mid->thumb, &err), 0);
	crl = tcrl_make(ca.mid, s, 1, -1, 7, other->k, 1, &len);
	assert_int_equal(import(e, crl, len, NULL, &err), PKI_CRL_ADDED);
	tenv_add(e, ca.mid, 0);
	v = verdict(e, leaf, 0);
	assert_true(v.is_valid);
	assert_non_null(strstr(v.warning, "bad signature"));
	/* crl_required: no usable CRL makes it invalid */
	v = verdict(e, leaf, PKI_VERIFY_CRL_REQUIRED);
	assert_false(v.is_valid);
	assert_non_null(strstr(v.reason, "no current CRL of CN=CRL Mid"));
	free(crl);
	tcert_free(&leaf);
	tcert_free(&other);
	ca_free(&ca);
}

static void test_expired_crl_and_newest(void **state)
{
	struct tenv *e = *state;
	struct ca ca;
	struct tcert *leaf;
	struct pki_crl_info info;
	struct pki_verdict v;
	struct sg_error err;
	long none[] = {0}, s[] = {0x55};
	size_t len;
	unsigned char *old, *newer;

	ca_make(e, &ca);
	leaf = tcert_make(&(struct tspec){.cn = "Five", .issuer = ca.mid, .serial = 0x55});
	/* an expired CRL listing the leaf still revokes it */
	old = tcrl_make(ca.mid, s, 1, -10, -2, NULL, 1, &len);
	assert_int_equal(import(e, old, len, NULL, &err), PKI_CRL_ADDED);
	v = verdict(e, leaf, 0);
	assert_false(v.is_valid);
	assert_non_null(strstr(v.reason, "revoked"));
	free(old);
	/* an expired CRL not listing it: valid with a warning; invalid if required */
	old = tcrl_make(ca.mid, none, 0, -9, -1, NULL, 2, &len);
	assert_int_equal(import(e, old, len, NULL, &err), PKI_CRL_ADDED);
	v = verdict(e, leaf, 0);
	assert_true(v.is_valid);
	assert_non_null(strstr(v.warning, "CRL of CN=CRL Mid expired on "));
	v = verdict(e, leaf, PKI_VERIFY_CRL_REQUIRED);
	assert_false(v.is_valid);
	assert_non_null(strstr(v.reason, "no current CRL"));
	/* a newer one replaces it; an older one is kept out */
	newer = tcrl_make(ca.mid, none, 0, -1, 7, NULL, 3, &len);
	assert_int_equal(import(e, newer, len, &info, &err), PKI_CRL_ADDED);
	/* crl_required applies to every link: the root's CRL is missing */
	v = verdict(e, leaf, PKI_VERIFY_CRL_REQUIRED);
	assert_false(v.is_valid);
	assert_non_null(strstr(v.reason, "no current CRL of CN=CRL Root"));
	free(newer);
	newer = tcrl_make(ca.root, none, 0, -1, 7, NULL, 1, &len);
	assert_int_equal(import(e, newer, len, NULL, &err), PKI_CRL_ADDED);
	assert_true(verdict(e, leaf, PKI_VERIFY_CRL_REQUIRED).is_valid);
	free(newer);
	free(old);
	old = tcrl_make(ca.mid, s, 1, -10, -2, NULL, 1, &len);
	assert_int_equal(import(e, old, len, &info, &err), PKI_CRL_OLDER);
	assert_string_equal(info.crl_number, "3");
	free(old);
	{
		int n = 0;
		struct pki_crl_info i2;

		assert_int_equal(pki_crl_get(e->pki, info.id, &i2, &err), 1);
		assert_int_equal(i2.n_entries, 0);
		(void)n;
	}
	tcert_free(&leaf);
	ca_free(&ca);
}

struct ents {
	int n;
	char first[32];
	int reason;
};

static int ent_cb(const char *serial, int64_t at, int reason, void *arg,
	struct sg_error *err)
{
	struct ents *e = arg;

	(void)at;
	(void)err;
	if (e->n++ == 0) {
		sg_strlcpy(e->first, serial, sizeof(e->first));
		e->reason = reason;
	}
	return 0;
}

static int list_cb(const struct pki_crl_info *i, void *arg, struct sg_error *err)
{
	(void)i;
	(void)err;
	(*(int *)arg)++;
	return 0;
}

static void test_pem_entries_delete(void **state)
{
	struct tenv *e = *state;
	struct ca ca;
	struct pki_crl_info info;
	struct sg_error err;
	struct ents ents = {0};
	long s[] = {0xabc, 0x10, 0xfff};
	size_t len;
	unsigned char *der;
	int n = 0;

	ca_make(e, &ca);
	der = tcrl_make(ca.mid, s, 3, -1, 7, NULL, 9, &len);
	{
		const unsigned char *p = der;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
		BIO *b = BIO_new(BIO_s_mem());
		char *pem = NULL;
		long plen;

		PEM_write_bio_X509_CRL(b, crl);
		plen = BIO_get_mem_data(b, &pem);
		assert_int_equal(import(e, pem, (size_t)plen, &info, &err), PKI_CRL_ADDED);
		BIO_free(b);
		X509_CRL_free(crl);
	}
	assert_int_equal(pki_crl_entries(e->pki, info.id, ent_cb, &ents, &err), 0);
	assert_int_equal(ents.n, 3);
	assert_string_equal(ents.first, "10");
	assert_int_equal(pki_crl_list(e->pki, list_cb, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pki_crl_delete(e->pki, info.id, &err), 0);
	assert_int_equal(pki_crl_delete(e->pki, info.id, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	/* garbage and truncation */
	assert_int_equal(import(e, "garbage", 7, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_PARSE);
	assert_int_equal(import(e, der, len - 5, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_PARSE);
	free(der);
	ca_free(&ca);
}

static void test_crl_update_unreachable(void **state)
{
	struct tenv *e = *state;
	struct ca ca;
	struct sg_error err;
	struct store_stmt *st;

	ca_make(e, &ca);  /* mid has a CDP on 127.0.0.1:1 (nothing listens) */
	/* the CDP of the (non-root) intermediate was recorded */
	assert_int_equal(pki_crl_update(e->pki, NULL, PKI_CRL_UPDATE_ALL, NULL, NULL, &err), 1);
	st = store_prepare(e->db, "SELECT failures, next_try, last_error FROM pki_cdp", &err);
	assert_int_equal(store_stmt_step(st, &err), 1);
	assert_int_equal(store_col_int64(st, 0), 1);
	assert_true(store_col_int64(st, 1) > sg_now());
	assert_true(strlen(store_col_text(st, 2)) > 0);
	store_stmt_free(&st);
	/* backoff: not due again right away */
	assert_int_equal(pki_crl_update(e->pki, NULL, 0, NULL, NULL, &err), 0);
	ca_free(&ca);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tenv_setup, tenv_teardown)
	const struct CMUnitTest tests[] = {
		T(test_revoked),
		T(test_revoked_intermediate),
		T(test_bad_signature_refused),
		T(test_unknown_issuer_bad_sig_ignored),
		T(test_expired_crl_and_newest),
		T(test_pem_entries_delete),
		T(test_crl_update_unreachable),
	};

	return cmocka_run_group_tests(tests, tenv_group_setup, tenv_group_teardown);
}
