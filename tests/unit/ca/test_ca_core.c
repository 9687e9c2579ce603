/*
 * test_ca_core.c - F-CA-1/2: creating CAs (root + intermediate, key types,
 * digests, subject fields), unique names and common names, the default CA,
 * and the CA settings.
 */
#include "ca_test.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

struct names {
	char list[8][CA_NAME_MAX + 1];
	bool dflt[8];
	size_t n;
};

static int names_cb(const struct ca_info *i, void *arg, struct sg_error *err)
{
	struct names *n = arg;

	(void)err;
	if (n->n < 8) {
		sg_strlcpy(n->list[n->n], i->name, sizeof(n->list[0]));
		n->dflt[n->n++] = i->is_default;
	}
	return 0;
}

/* F-CA-1: a root in the roots store, an intermediate below it, both with keys */
static void test_create_rsa_root_and_intermediate(void **state)
{
	struct cenv *e = *state;
	struct ca_create_opts o;
	struct ca_info info;
	struct pki_cert *root, *inter;
	struct pki_verdict v;
	struct sg_error err;
	X509_NAME *n;
	char buf[256];

	memset(&o, 0, sizeof(o));
	o.name = "Corp";
	o.key = CA_KEY_RSA2048;
	o.md = CA_MD_SHA256;
	o.root.org = "Corp Ltd";
	o.root.cn = "Corp Root";
	o.inter.cn = "Corp Issuing";
	o.root_days = 1000;
	o.inter_days = 500;
	assert_int_equal(ca_create(e->ca, &o, &info, &err), 0);
	assert_string_equal(info.name, "Corp");
	assert_true(info.is_default);   /* the first CA becomes the default */
	root = cenv_cert(e, info.root_thumbprint);
	inter = cenv_cert(e, info.inter_thumbprint);
	assert_true(root->is_root);
	assert_true(root->is_ca);
	assert_true(root->has_key);
	assert_false(inter->is_root);
	assert_true(inter->is_ca);
	assert_true(inter->has_key);
	assert_int_equal(X509_check_issued(root->x509, inter->x509), X509_V_OK);
	n = X509_get_subject_name(root->x509);
	assert_true(X509_NAME_get_text_by_NID(n, NID_organizationName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "Corp Ltd");
	n = X509_get_subject_name(inter->x509);
	assert_true(X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "Corp Issuing");
	/* intermediate org defaults to the root's */
	assert_true(X509_NAME_get_text_by_NID(n, NID_organizationName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "Corp Ltd");
	assert_int_equal(X509_get_signature_nid(inter->x509), NID_sha256WithRSAEncryption);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(inter->x509)), 2048);
	/* validity as asked (days from now, 5 minutes back-dated) */
	assert_true(inter->not_after - inter->not_before >= 500 * 86400L);
	assert_true(inter->not_after - inter->not_before <= 500 * 86400L + 301);
	assert_true(X509_get_pathlen(inter->x509) == 0);
	/* the PKI module's own validation accepts the intermediate */
	assert_int_equal(pki_cert_verify(e->pki, inter, PKI_PURPOSE_ANY, 0, 0, &v, &err), 0);
	assert_true(v.is_valid);
	pki_cert_free(&root);
	pki_cert_free(&inter);
}

/* F-CA-1: EC P-384 with SHA-384 and P-256 with SHA-512 */
static void test_create_ec_keys_and_digests(void **state)
{
	struct cenv *e = *state;
	struct ca_info info;
	struct sg_error err;
	struct pki_cert *inter;

	cenv_ca(e, "ec384", CA_KEY_P384, CA_MD_SHA384);
	assert_int_equal(ca_get(e->ca, "EC384", &info, &err), 1);  /* case-insensitive */
	inter = cenv_cert(e, info.inter_thumbprint);
	assert_int_equal(X509_get_signature_nid(inter->x509), NID_ecdsa_with_SHA384);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(inter->x509)), 384);
	pki_cert_free(&inter);
	cenv_ca(e, "ec256", CA_KEY_P256, CA_MD_SHA512);
	assert_int_equal(ca_get(e->ca, "ec256", &info, &err), 1);
	inter = cenv_cert(e, info.inter_thumbprint);
	assert_int_equal(X509_get_signature_nid(inter->x509), NID_ecdsa_with_SHA512);
	assert_false(info.is_default);    /* the second CA is not the default */
	pki_cert_free(&inter);
}

/* guide §12.1: names and common names must be unique */
static void test_create_unique_names(void **state)
{
	struct cenv *e = *state;
	struct ca_create_opts o;
	struct sg_error err;

	cenv_ca(e, "one", CA_KEY_P256, CA_MD_SHA256);
	memset(&o, 0, sizeof(o));
	o.key = CA_KEY_P256;
	o.name = "ONE";
	o.root.cn = "other root";
	o.inter.cn = "other inter";
	assert_int_equal(ca_create(e->ca, &o, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	o.name = "two";
	o.root.cn = "one Root CA";       /* the first CA's root CN, other case */
	assert_int_equal(ca_create(e->ca, &o, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	assert_non_null(strstr(err.msg, "common name"));
	o.root.cn = "same";
	o.inter.cn = "SAME";
	assert_int_equal(ca_create(e->ca, &o, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.name = "bad name";
	o.root.cn = "x";
	o.inter.cn = "y";
	assert_int_equal(ca_create(e->ca, &o, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	/* nothing of the failed attempts was kept: "two" can still be created */
	o.name = "two";
	o.root.cn = "two root";
	o.inter.cn = "two inter";
	assert_int_equal(ca_create(e->ca, &o, NULL, &err), 0);
}

static void test_default_ca(void **state)
{
	struct cenv *e = *state;
	struct ca_create_opts o;
	struct ca_info info;
	struct names n = {0};
	struct sg_error err;

	assert_int_equal(ca_get(e->ca, NULL, &info, &err), 0);  /* no CA yet */
	cenv_ca(e, "b", CA_KEY_P256, CA_MD_SHA256);
	cenv_ca(e, "a", CA_KEY_P256, CA_MD_SHA256);
	assert_int_equal(ca_get(e->ca, NULL, &info, &err), 1);
	assert_string_equal(info.name, "b");
	assert_int_equal(ca_default_set(e->ca, "A", &err), 0);
	assert_int_equal(ca_get(e->ca, NULL, &info, &err), 1);
	assert_string_equal(info.name, "a");
	assert_int_equal(ca_default_set(e->ca, "nope", &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	memset(&o, 0, sizeof(o));
	o.name = "c";
	o.key = CA_KEY_P256;
	o.flags = CA_CREATE_DEFAULT;
	assert_int_equal(ca_create(e->ca, &o, NULL, &err), 0);
	assert_int_equal(ca_list(e->ca, names_cb, &n, &err), 0);
	assert_int_equal(n.n, 3);
	assert_string_equal(n.list[0], "a");
	assert_string_equal(n.list[2], "c");
	assert_false(n.dflt[0]);
	assert_false(n.dflt[1]);
	assert_true(n.dflt[2]);
}

/* F-CA-2: defaults, validation, reset */
static void test_settings(void **state)
{
	struct cenv *e = *state;
	struct sg_error err;
	char *v = NULL;
	static const struct {
		const char *name, *value;
		int want;
	} cases[] = {
		{"validity_days", "365", 0}, {"validity_days", "0", -1},
		{"validity_days", "x", -1}, {"key_type", "p384", 0}, {"key_type", "rsa1024", -1},
		{"signature_algorithm", "sha512", 0}, {"signature_algorithm", "md5", -1},
		{"crl_dp", "http://ca.example.com/ca.crl", 0}, {"crl_dp", "ftp://x/y", -1},
		{"crl_dp", "http://x/a b", -1}, {"ca_email", "ca@example.com", 0},
		{"ca_email", "not an address", -1}, {"pfx_password_length", "7", -1},
		{"pfx_password_length", "32", 0}, {"handler", "delayed", 0},
		{"handler", "comodo", -1}, {"pfx_encryption", "legacy3des", 0},
		{"pfx_encryption", "rc2", -1}, {"add_crl_dp", "yes", 0},
		{"no_such_setting", "1", -1},
	};
	size_t i;

	assert_int_equal(ca_setting_get(e->ca, "validity_days", &v, &err), 1);
	assert_string_equal(v, "1095");
	free(v);
	assert_int_equal(ca_setting_get(e->ca, "ca_email", &v, &err), 0);
	assert_null(v);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = ca_setting_set(e->ca, cases[i].name, cases[i].value, &err);

		if (got != cases[i].want)
			fail_msg("%s=%s: got %d want %d", cases[i].name, cases[i].value, got,
				cases[i].want);
	}
	assert_int_equal(ca_setting_get(e->ca, "key_type", &v, &err), 1);
	assert_string_equal(v, "p384");
	free(v);
	assert_int_equal(ca_setting_set(e->ca, "key_type", NULL, &err), 0);
	assert_int_equal(ca_setting_get(e->ca, "key_type", &v, &err), 1);
	assert_string_equal(v, "rsa2048");
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_rsa_root_and_intermediate,
			cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_create_ec_keys_and_digests, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_create_unique_names, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_default_ca, cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_settings, cenv_setup, cenv_teardown),
	};

	return cmocka_run_group_tests(tests, cenv_group_setup, cenv_group_teardown);
}
