/*
 * test_ca_issue.c - F-CA-3: the S/MIME end-user profile of issued
 * certificates (checked with the OpenSSL API and the pki module's
 * validation), key into the store, PKCS#12 export (F-CA-8 rules) and send.
 */
#include "ca_test.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

static void want_valid(struct cenv *e, const struct pki_cert *c, enum pki_purpose p)
{
	struct pki_verdict v;
	struct sg_error err;

	assert_int_equal(pki_cert_verify(e->pki, c, p, 0, PKI_VERIFY_NO_CACHE, &v, &err), 0);
	if (!v.is_valid)
		fail_msg("not valid: %s", v.reason);
}

/* the profile: SAN email, EKU emailProtection, KU, AKI = issuer SKI, serial */
static void test_issue_smime_profile_rsa(void **state)
{
	struct cenv *e = *state;
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;
	struct ca_issued r;
	struct ca_info info;
	struct pki_cert *c, *inter;
	struct sg_error err;
	GENERAL_NAMES *san;
	GENERAL_NAME *g;
	const ASN1_OCTET_STRING *ski;
	const ASN1_OCTET_STRING *akid;
	BIGNUM *bn;
	uint32_t ku, xku;
	char buf[256];

	cenv_ca(e, "corp", CA_KEY_RSA2048, CA_MD_SHA256);
	assert_int_equal(ca_get(e->ca, NULL, &info, &err), 1);
	o.subject.email = "Alice@Example.COM";
	o.subject.cn = "Alice Example";
	o.subject.org = "Example";
	o.subject.first_name = "Alice";
	o.subject.last_name = "Example";
	o.days = 30;
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), 0);
	assert_string_equal(r.ca_name, "corp");
	c = cenv_cert(e, r.thumbprint);
	inter = cenv_cert(e, info.inter_thumbprint);
	assert_true(c->has_key);
	assert_false(c->is_ca);
	assert_int_equal(c->n_emails, 1);
	assert_string_equal(c->emails[0], "alice@example.com");
	san = X509_get_ext_d2i(c->x509, NID_subject_alt_name, NULL, NULL);
	assert_non_null(san);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	g = sk_GENERAL_NAME_value(san, 0);
	assert_int_equal(g->type, GEN_EMAIL);
	assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.rfc822Name),
		"alice@example.com");
	GENERAL_NAMES_free(san);
	ku = X509_get_key_usage(c->x509);
	assert_true(ku & KU_DIGITAL_SIGNATURE);
	assert_true(ku & KU_KEY_ENCIPHERMENT);
	assert_false(ku & KU_KEY_CERT_SIGN);
	xku = X509_get_extended_key_usage(c->x509);
	assert_int_equal(xku, XKU_SMIME);
	ski = X509_get0_subject_key_id(inter->x509);
	akid = X509_get0_authority_key_id(c->x509);
	assert_non_null(ski);
	assert_non_null(akid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(ski, akid), 0);
	assert_non_null(X509_get0_subject_key_id(c->x509));
	assert_null(X509_get_ext_d2i(c->x509, NID_crl_distribution_points, NULL, NULL));
	assert_int_equal(X509_check_issued(inter->x509, c->x509), X509_V_OK);
	assert_int_equal(X509_check_ca(c->x509), 0);
	/* random serial of 127 bits, reported in hex */
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->x509), NULL);
	assert_int_equal(BN_num_bits(bn), 127);
	BN_free(bn);
	assert_string_equal(r.serial, c->serial);
	X509_NAME_get_text_by_NID(X509_get_subject_name(c->x509), NID_givenName, buf,
		sizeof(buf));
	assert_string_equal(buf, "Alice");
	X509_NAME_get_text_by_NID(X509_get_subject_name(c->x509), NID_commonName, buf,
		sizeof(buf));
	assert_string_equal(buf, "Alice Example");
	assert_true(c->not_after - c->not_before <= 30 * 86400L + 301);
	want_valid(e, c, PKI_PURPOSE_SIGN);
	want_valid(e, c, PKI_PURPOSE_ENCRYPT);
	pki_cert_free(&c);
	pki_cert_free(&inter);
}

/* EC end-user keys: keyAgreement instead of keyEncipherment; the CA's own
 * signature digest and key type differ from the end-user's */
static void test_issue_ec_key_from_rsa_ca(void **state)
{
	struct cenv *e = *state;
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;
	struct ca_issued r;
	struct pki_cert *c;
	struct sg_error err;
	uint32_t ku;

	cenv_ca(e, "corp", CA_KEY_RSA2048, CA_MD_SHA256);
	o.subject.email = "bob@example.com";
	o.key = CA_KEY_P256;
	o.md = CA_MD_SHA384;
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), 0);
	c = cenv_cert(e, r.thumbprint);
	ku = X509_get_key_usage(c->x509);
	assert_true(ku & KU_DIGITAL_SIGNATURE);
	assert_true(ku & KU_KEY_AGREEMENT);
	assert_false(ku & KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_get_signature_nid(c->x509), NID_sha384WithRSAEncryption);
	assert_true(EVP_PKEY_is_a(X509_get0_pubkey(c->x509), "EC"));
	want_valid(e, c, PKI_PURPOSE_SIGN);
	want_valid(e, c, PKI_PURPOSE_ENCRYPT);
	pki_cert_free(&c);
}

/* settings feed the defaults: key type, validity, CRL distribution point */
static void test_issue_uses_settings_and_crl_dp(void **state)
{
	struct cenv *e = *state;
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;
	struct ca_issued r;
	struct pki_cert *c;
	struct sg_error err;
	CRL_DIST_POINTS *dps;
	GENERAL_NAME *g;

	cenv_ca(e, "ec", CA_KEY_P384, CA_MD_SHA384);
	assert_int_equal(ca_setting_set(e->ca, "key_type", "p384", &err), 0);
	assert_int_equal(ca_setting_set(e->ca, "validity_days", "10", &err), 0);
	assert_int_equal(ca_setting_set(e->ca, "crl_dp", "http://ca.example.com/a,b.crl",
		&err), 0);
	assert_int_equal(ca_setting_set(e->ca, "add_crl_dp", "true", &err), 0);
	o.subject.email = "carol@example.com";
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), 0);
	c = cenv_cert(e, r.thumbprint);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(c->x509)), 384);
	assert_true(c->not_after - c->not_before <= 10 * 86400L + 301);
	assert_true(c->not_after - c->not_before >= 10 * 86400L);
	dps = X509_get_ext_d2i(c->x509, NID_crl_distribution_points, NULL, NULL);
	assert_non_null(dps);
	assert_int_equal(sk_DIST_POINT_num(dps), 1);
	assert_int_equal(sk_GENERAL_NAME_num(sk_DIST_POINT_value(dps, 0)->distpoint->
		name.fullname), 1);   /* the comma did not split the URL */
	g = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);
	assert_int_equal(g->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
		"http://ca.example.com/a,b.crl");
	CRL_DIST_POINTS_free(dps);
	pki_cert_free(&c);
}

static void test_issue_errors(void **state)
{
	struct cenv *e = *state;
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;
	struct ca_issued r;
	struct sg_error err;
	char long_cn[CA_VALUE_MAX + 2];

	o.subject.email = "a@example.com";
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), -1);   /* no CA at all */
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_non_null(strstr(err.msg, "no default CA"));
	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	o.ca_name = "other";
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	o.ca_name = NULL;
	o.subject.email = "not-an-address";
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.subject.email = "a,b@example.com";
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), -1);
	o.subject.email = "j\xc3\xbcrgen@example.com";   /* no SmtpUTF8Mailbox */
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.subject.email = "a@example.com";
	memset(long_cn, 'x', sizeof(long_cn) - 1);
	long_cn[sizeof(long_cn) - 1] = '\0';
	o.subject.cn = long_cn;
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	o.subject.cn = "line\nbreak";
	assert_int_equal(ca_issue(e->ca, &o, &r, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

/* two certificates for the same address: distinct serials and keys */
static void test_issue_twice_distinct(void **state)
{
	struct cenv *e = *state;
	struct ca_issued a, b;

	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	cenv_issue(e, "d@example.com", &a);
	cenv_issue(e, "d@example.com", &b);
	assert_string_not_equal(a.thumbprint, b.thumbprint);
	assert_string_not_equal(a.serial, b.serial);
}

/* PKCS#12 export opens with the password and holds key + chain; CA
 * certificates are refused; the address must match unless allowed */
static void test_pfx_export_rules(void **state)
{
	struct cenv *e = *state;
	struct ca_issued r;
	struct ca_info info;
	struct sg_buf out;
	struct sg_error err;
	const char *t[1];
	char *pw = NULL;
	const unsigned char *p;
	PKCS12 *p12;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;

	cenv_ca(e, "corp", CA_KEY_RSA2048, CA_MD_SHA256);
	cenv_issue(e, "eve@example.com", &r);
	assert_int_equal(ca_pfx_password_new(e->ca, 0, &pw, &err), 0);
	assert_true(strlen(pw) >= 21);   /* 16 bytes -> 22 base64url characters */
	assert_null(strpbrk(pw, "+/="));
	sg_buf_init(&out, 1 << 20);
	t[0] = r.thumbprint;
	assert_int_equal(ca_pfx_export(e->ca, t, 1, pw, "eve@example.com", 0, &out, &err), 0);
	p = (const unsigned char *)out.data;
	p12 = d2i_PKCS12(NULL, &p, (long)out.len);
	assert_non_null(p12);
	assert_int_equal(PKCS12_parse(p12, "wrong", &k, &x, &chain), 0);
	assert_int_equal(PKCS12_parse(p12, pw, &k, &x, &chain), 1);
	assert_non_null(k);
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_true(sk_X509_num(chain) >= 1);   /* intermediate (and root) */
	EVP_PKEY_free(k);
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	PKCS12_free(p12);
	sg_buf_reset(&out);
	assert_int_equal(ca_pfx_export(e->ca, t, 1, pw, "mallory@example.com", 0, &out,
		&err), -1);
	assert_int_equal(err.code, SG_E_POLICY);
	assert_int_equal(ca_pfx_export(e->ca, t, 1, pw, "mallory@example.com",
		CA_PFX_ALLOW_MISMATCH, &out, &err), 0);
	assert_int_equal(ca_get(e->ca, NULL, &info, &err), 1);
	t[0] = info.inter_thumbprint;
	sg_buf_reset(&out);
	assert_int_equal(ca_pfx_export(e->ca, t, 1, pw, NULL, 0, &out, &err), -1);
	assert_int_equal(err.code, SG_E_POLICY);
	assert_non_null(strstr(err.msg, "CA certificate"));
	sg_buf_deinit(&out);
	free(pw);
}

struct sent {
	char from[256], to[256], pw[128], stored[128];
	size_t len;
};

static int hook_send(void *arg, const char *from, const char *to, const void *p12,
	size_t len, struct sg_error *err)
{
	struct sent *s = arg;

	(void)p12;
	(void)err;
	sg_strlcpy(s->from, from, sizeof(s->from));
	sg_strlcpy(s->to, to, sizeof(s->to));
	s->len = len;
	return 0;
}

static int hook_store(void *arg, const char *email, const char *pw, struct sg_error *err)
{
	struct sent *s = arg;

	(void)email;
	(void)err;
	sg_strlcpy(s->stored, pw, sizeof(s->stored));
	return 0;
}

/* F-CA-8: send needs the CA email and the hooks; the store hook gets the password */
static void test_send_hooks(void **state)
{
	struct cenv *e = *state;
	struct ca_issued r;
	struct sg_error err;
	struct sent s = {0};
	struct ca_delivery d = {hook_send, NULL, hook_store, &s};
	const char *t[1];

	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	cenv_issue(e, "f@example.com", &r);
	t[0] = r.thumbprint;
	assert_int_equal(ca_send(e->ca, t, 1, "f@example.com", "pw-123456", 0, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_CONFIG);
	assert_int_equal(ca_send(e->ca, t, 1, "f@example.com", "pw-123456", 0, &d, &err), -1);
	assert_non_null(strstr(err.msg, "ca_email"));
	assert_int_equal(ca_setting_set(e->ca, "ca_email", "ca@example.com", &err), 0);
	assert_int_equal(ca_send(e->ca, t, 1, "f@example.com", "pw-123456", CA_SEND_SMS, &d,
		&err), -1);   /* no SMS hook */
	assert_int_equal(ca_send(e->ca, t, 1, "f@example.com", "pw-123456",
		CA_SEND_STORE_PASSWORD, &d, &err), 0);
	assert_string_equal(s.from, "ca@example.com");
	assert_string_equal(s.to, "f@example.com");
	assert_true(s.len > 100);
	assert_string_equal(s.stored, "pw-123456");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_issue_smime_profile_rsa, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_issue_ec_key_from_rsa_ca, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_issue_uses_settings_and_crl_dp, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_issue_errors, cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_issue_twice_distinct, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_pfx_export_rules, cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_send_hooks, cenv_setup, cenv_teardown),
	};

	return cmocka_run_group_tests(tests, cenv_group_setup, cenv_group_teardown);
}
