/*
 * test_ca_crl.c - F-CA-7: CRLs of the built-in CA revoke what they list in
 * the pki module's validation, updates keep earlier serials, a new CRL starts
 * over, bad serials are refused, the CRL number grows.
 */
#include "ca_test.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

static bool is_valid(struct cenv *e, const char *thumb)
{
	struct pki_cert *c = cenv_cert(e, thumb);
	struct pki_verdict v;
	struct sg_error err;

	assert_int_equal(pki_cert_verify(e->pki, c, PKI_PURPOSE_SIGN, 0, PKI_VERIFY_NO_CACHE,
		&v, &err), 0);
	if (!v.is_valid && strstr(v.reason, "revoked") == NULL)
		fail_msg("invalid for another reason: %s", v.reason);
	pki_cert_free(&c);
	return v.is_valid;
}

struct reasons {
	char serial[4][64];
	int reason[4];
	size_t n;
};

static int reasons_cb(const char *serial, int64_t at, int reason, void *arg,
	struct sg_error *err)
{
	struct reasons *r = arg;

	(void)at;
	(void)err;
	if (r->n < 4) {
		sg_strlcpy(r->serial[r->n], serial, sizeof(r->serial[0]));
		r->reason[r->n++] = reason;
	}
	return 0;
}

static int reason_of(const struct reasons *r, const char *serial)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->serial[i], serial) == 0)
			return r->reason[i];
	fail_msg("serial %s not in the CRL", serial);
	return -2;
}

static X509_CRL *crl_parse(const struct sg_buf *b)
{
	const unsigned char *p = (const unsigned char *)b->data;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)b->len);

	assert_non_null(crl);
	return crl;
}

static void test_crl_revokes_in_pki(void **state)
{
	struct cenv *e = *state;
	struct ca_issued a, b;
	struct ca_crl_opts o = {0};
	struct pki_crl_info info;
	struct ca_info ci;
	struct sg_buf der;
	struct sg_error err;
	const char *serials[1];
	X509_CRL *crl;
	ASN1_INTEGER *num;
	struct pki_cert *inter;

	cenv_ca(e, "corp", CA_KEY_RSA2048, CA_MD_SHA256);
	cenv_issue(e, "a@example.com", &a);
	cenv_issue(e, "b@example.com", &b);
	assert_true(is_valid(e, a.thumbprint));
	serials[0] = a.serial;
	o.serials = serials;
	o.n_serials = 1;
	o.next_update_days = 3;
	o.md = -1;
	o.reason = -1;
	sg_buf_init(&der, 1 << 20);
	assert_int_equal(ca_crl(e->ca, &o, &der, &info, &err), 0);
	assert_int_equal(info.n_entries, 1);
	assert_true(info.next_update - info.this_update == 3 * 86400L);
	assert_false(is_valid(e, a.thumbprint));
	assert_true(is_valid(e, b.thumbprint));
	/* the exported CRL verifies with the intermediate's key, number 1 */
	crl = crl_parse(&der);
	assert_int_equal(ca_get(e->ca, NULL, &ci, &err), 1);
	inter = cenv_cert(e, ci.inter_thumbprint);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(inter->x509)), 1);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_int_equal(ASN1_INTEGER_get(num), 1);
	ASN1_INTEGER_free(num);
	{
		AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier,
			NULL, NULL);

		assert_non_null(akid);
		assert_non_null(akid->keyid);
		assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid,
			X509_get0_subject_key_id(inter->x509)), 0);
		AUTHORITY_KEYID_free(akid);
	}
	X509_CRL_free(crl);
	pki_cert_free(&inter);
	sg_buf_deinit(&der);
	assert_int_equal(ca_get(e->ca, NULL, &ci, &err), 1);
	assert_int_equal(ci.crl_number, 1);
}

/* update adds, CA_CRL_NEW starts over (guide §12.8) */
static void test_crl_update_and_new(void **state)
{
	struct cenv *e = *state;
	struct ca_issued a, b;
	struct ca_crl_opts o = {0};
	struct pki_crl_info info;
	struct sg_error err;
	const char *s1[1], *s2[1];
	char up[80];

	cenv_ca(e, "ec", CA_KEY_P256, CA_MD_SHA256);
	cenv_issue(e, "a@example.com", &a);
	cenv_issue(e, "b@example.com", &b);
	s1[0] = a.serial;
	o.serials = s1;
	o.n_serials = 1;
	o.md = CA_MD_SHA512;
	o.reason = ca_crl_reason_parse("certificateHold");
	assert_int_equal(o.reason, 6);
	assert_int_equal(ca_crl(e->ca, &o, NULL, &info, &err), 0);
	/* update with b given with upper case, colons and 0x */
	{
		size_t i, j = 0;

		j += (size_t)snprintf(up, sizeof(up), "0x");
		for (i = 0; b.serial[i] != '\0' && j + 3 < sizeof(up); i++) {
			up[j++] = (char)(b.serial[i] >= 'a' ? b.serial[i] - 32 : b.serial[i]);
			if (i % 2 == 1 && b.serial[i + 1] != '\0')
				up[j++] = ':';
		}
		up[j] = '\0';
		s2[0] = up;
		o.serials = s2;
		o.reason = -1;
		assert_int_equal(ca_crl(e->ca, &o, NULL, &info, &err), 0);
	}
	assert_int_equal(info.n_entries, 2);
	/* a hold becomes a key compromise; b has no reason */
	o.serials = s1;
	o.reason = ca_crl_reason_parse("KEYCOMPROMISE");
	{
		struct reasons got = {0};
		struct sg_buf der;
		X509_CRL *crl;
		STACK_OF(X509_REVOKED) *revs;
		int i, with_reason = 0;

		sg_buf_init(&der, 1 << 20);
		assert_int_equal(ca_crl(e->ca, &o, &der, &info, &err), 0);
		/* the pki module reads the reason back */
		assert_int_equal(pki_crl_entries(e->pki, info.id, reasons_cb, &got, &err), 0);
		assert_int_equal(got.n, 2);
		assert_int_equal(reason_of(&got, a.serial), 1);
		/* and only a's entry carries a reasonCode */
		crl = crl_parse(&der);
		revs = X509_CRL_get_REVOKED(crl);
		for (i = 0; i < sk_X509_REVOKED_num(revs); i++) {
			ASN1_ENUMERATED *why = X509_REVOKED_get_ext_d2i(sk_X509_REVOKED_value(revs, i),
				NID_crl_reason, NULL, NULL);

			if (why != NULL) {
				with_reason++;
				assert_int_equal(ASN1_ENUMERATED_get(why), 1);
			}
			ASN1_ENUMERATED_free(why);
		}
		assert_int_equal(with_reason, 1);
		X509_CRL_free(crl);
		sg_buf_deinit(&der);
	}
	o.serials = s2;
	o.reason = -1;
	assert_false(is_valid(e, a.thumbprint));
	assert_false(is_valid(e, b.thumbprint));
	/* a new CRL with only b: a is valid again */
	o.flags = CA_CRL_NEW;
	assert_int_equal(ca_crl(e->ca, &o, NULL, &info, &err), 0);
	assert_int_equal(info.n_entries, 1);
	assert_true(is_valid(e, a.thumbprint));
	assert_false(is_valid(e, b.thumbprint));
	/* an empty CRL is allowed (n_serials 0) */
	o.n_serials = 0;
	assert_int_equal(ca_crl(e->ca, &o, NULL, &info, &err), 0);
	assert_int_equal(info.n_entries, 0);
	assert_true(is_valid(e, b.thumbprint));
}

static void test_crl_errors(void **state)
{
	struct cenv *e = *state;
	struct ca_crl_opts o = {0};
	struct sg_error err;
	static const char *bad[] = {"xyz", "", "12 34",
		"10000000000000000000000000000000000000000"};
	const char *one[1];
	size_t i;

	o.md = -1;
	o.reason = -1;
	assert_int_equal(ca_crl_reason_parse("removeFromCRL"), -1);
	assert_int_equal(ca_crl_reason_parse("nonsense"), -1);
	assert_int_equal(ca_crl(e->ca, &o, NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	o.ca_name = "nope";
	assert_int_equal(ca_crl(e->ca, &o, NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	o.ca_name = "corp";
	o.n_serials = 1;
	o.serials = one;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		one[0] = bad[i];
		if (ca_crl(e->ca, &o, NULL, NULL, &err) != -1 || err.code != SG_E_INVAL)
			fail_msg("serial '%s' accepted", bad[i]);
	}
	/* nothing was committed by the failures: the first CRL is number 1 */
	one[0] = "0A";
	assert_int_equal(ca_crl(e->ca, &o, NULL, NULL, &err), 0);
	{
		struct ca_info ci;

		assert_int_equal(ca_get(e->ca, "corp", &ci, &err), 1);
		assert_int_equal(ci.crl_number, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crl_revokes_in_pki, cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_crl_update_and_new, cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_crl_errors, cenv_setup, cenv_teardown),
	};

	return cmocka_run_group_tests(tests, cenv_group_setup, cenv_group_teardown);
}
