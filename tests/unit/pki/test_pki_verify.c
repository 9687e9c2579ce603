/*
 * test_pki_verify.c - F-PKI-3/F-PKI-6: path validation verdicts with exact
 * reasons (expired, not yet valid, KU/EKU per purpose, missing intermediate,
 * untrusted root, cross-signed paths), the CTL (black-listed intermediate
 * makes children invalid, white-listed leaf without root, white +
 * allow-expired) and cache invalidation when roots or the CTL change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pki_test.h"

/* verdict - verify t (parsed from DER) for purpose at now */
static struct pki_verdict verdict(struct tenv *e, const struct tcert *t,
	enum pki_purpose purpose, unsigned flags)
{
	struct pki_verdict v;
	struct pki_cert *c;
	struct sg_error err;
	size_t len;
	unsigned char *der = tcert_der(t, &len);

	c = pki_cert_from_der(der, len, &err);
	assert_non_null(c);
	if (pki_cert_verify(e->pki, c, purpose, 0, flags, &v, &err) < 0)
		fail_msg("verify: %s", err.msg);
	pki_cert_free(&c);
	free(der);
	return v;
}

#define EXPECT_VALID(e, t, p) do { \
	struct pki_verdict v_ = verdict(e, t, p, 0); \
	if (!v_.is_valid) \
		fail_msg("got invalid (%s) want valid", v_.reason); \
} while (0)

#define EXPECT_INVALID(e, t, p, want) do { \
	struct pki_verdict v_ = verdict(e, t, p, 0); \
	if (v_.is_valid || strstr(v_.reason, want) == NULL) \
		fail_msg("got %s \"%s\" want invalid \"%s\"", \
			v_.is_valid ? "valid" : "invalid", v_.reason, want); \
} while (0)

struct chain {
	struct tcert *root, *mid, *leaf;
};

static void chain_make(struct chain *c, const struct tspec *leaf)
{
	struct tspec l = *leaf;

	c->root = tcert_make(&(struct tspec){.cn = "Test Root", .ca = true, .na_days = 3650});
	c->mid = tcert_make(&(struct tspec){.cn = "Test Mid", .ca = true, .issuer = c->root,
		.na_days = 3000});
	l.issuer = c->mid;
	c->leaf = tcert_make(&l);
}

static void chain_store(struct tenv *e, struct chain *c)
{
	tenv_add(e, c->root, PKI_ADD_ROOT);
	tenv_add(e, c->mid, 0);
	tenv_add(e, c->leaf, 0);
}

static void chain_free(struct chain *c)
{
	tcert_free(&c->root);
	tcert_free(&c->mid);
	tcert_free(&c->leaf);
}

static void test_valid_chain(void **state)
{
	struct tenv *e = *state;
	struct chain c;

	chain_make(&c, &(struct tspec){.cn = "Leaf", .email = "l@x.org",
		.ku = "digitalSignature,keyAgreement", .eku = "emailProtection"});
	chain_store(e, &c);
	EXPECT_VALID(e, c.leaf, PKI_PURPOSE_SIGN);
	EXPECT_VALID(e, c.leaf, PKI_PURPOSE_ENCRYPT);  /* EC: keyAgreement */
	EXPECT_VALID(e, c.leaf, PKI_PURPOSE_ANY);
	chain_free(&c);
}

static void test_dates(void **state)
{
	struct tenv *e = *state;
	struct chain c;
	struct tcert *future;

	chain_make(&c, &(struct tspec){.cn = "Old", .nb_days = -30, .na_days = -2});
	chain_store(e, &c);
	EXPECT_INVALID(e, c.leaf, PKI_PURPOSE_ANY, "expired on ");
	future = tcert_make(&(struct tspec){.cn = "Future", .issuer = c.mid, .nb_days = 5,
		.na_days = 30});
	EXPECT_INVALID(e, future, PKI_PURPOSE_ANY, "not valid before ");
	tcert_free(&future);
	chain_free(&c);
}

static void test_expired_intermediate(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "R", .ca = true});
	struct tcert *mid = tcert_make(&(struct tspec){.cn = "Old Mid", .ca = true,
		.issuer = root, .nb_days = -100, .na_days = -1});
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "L", .issuer = mid,
		.nb_days = -50});

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, mid, 0);
	EXPECT_INVALID(e, leaf, PKI_PURPOSE_ANY, "issuer \"CN=Old Mid\" expired on ");
	tcert_free(&root);
	tcert_free(&mid);
	tcert_free(&leaf);
}

static void test_key_usage(void **state)
{
	struct tenv *e = *state;
	struct chain c;
	struct tcert *rsa_sign, *rsa_enc, *bad_eku, *any_eku, *no_ext;

	chain_make(&c, &(struct tspec){.cn = "EC sign only", .ku = "digitalSignature"});
	chain_store(e, &c);
	EXPECT_VALID(e, c.leaf, PKI_PURPOSE_SIGN);
	EXPECT_INVALID(e, c.leaf, PKI_PURPOSE_ENCRYPT,
		"key usage does not allow encryption (keyAgreement missing)");
	rsa_sign = tcert_make(&(struct tspec){.cn = "RSA sign", .issuer = c.mid, .rsa = true,
		.ku = "nonRepudiation"});
	EXPECT_VALID(e, rsa_sign, PKI_PURPOSE_SIGN);
	EXPECT_INVALID(e, rsa_sign, PKI_PURPOSE_ENCRYPT, "keyEncipherment missing");
	rsa_enc = tcert_make(&(struct tspec){.cn = "RSA enc", .issuer = c.mid, .rsa = true,
		.ku = "keyEncipherment"});
	EXPECT_VALID(e, rsa_enc, PKI_PURPOSE_ENCRYPT);
	EXPECT_INVALID(e, rsa_enc, PKI_PURPOSE_SIGN,
		"key usage does not allow signing (digitalSignature/nonRepudiation missing)");
	bad_eku = tcert_make(&(struct tspec){.cn = "TLS only", .issuer = c.mid,
		.eku = "serverAuth,clientAuth"});
	EXPECT_INVALID(e, bad_eku, PKI_PURPOSE_SIGN,
		"extended key usage does not include emailProtection");
	EXPECT_INVALID(e, bad_eku, PKI_PURPOSE_ENCRYPT, "emailProtection");
	any_eku = tcert_make(&(struct tspec){.cn = "Any EKU", .issuer = c.mid,
		.eku = "anyExtendedKeyUsage"});
	EXPECT_VALID(e, any_eku, PKI_PURPOSE_ENCRYPT);
	no_ext = tcert_make(&(struct tspec){.cn = "No KU", .issuer = c.mid});
	EXPECT_VALID(e, no_ext, PKI_PURPOSE_SIGN);
	EXPECT_VALID(e, no_ext, PKI_PURPOSE_ENCRYPT);
	tcert_free(&rsa_sign);
	tcert_free(&rsa_enc);
	tcert_free(&bad_eku);
	tcert_free(&any_eku);
	tcert_free(&no_ext);
	chain_free(&c);
}

static void test_missing_and_untrusted(void **state)
{
	struct tenv *e = *state;
	struct chain c;
	struct tcert *self;

	chain_make(&c, &(struct tspec){.cn = "Orphan"});
	/* no intermediate stored */
	tenv_add(e, c.root, PKI_ADD_ROOT);
	EXPECT_INVALID(e, c.leaf, PKI_PURPOSE_ANY, "no path to a trusted root");
	/* intermediate stored, root only as an ordinary certificate: untrusted */
	chain_free(&c);
	chain_make(&c, &(struct tspec){.cn = "Untrusted"});
	tenv_add(e, c.root, 0);
	tenv_add(e, c.mid, 0);
	EXPECT_INVALID(e, c.leaf, PKI_PURPOSE_ANY, "no path to a trusted root");
	/* a self-signed end-entity */
	self = tcert_make(&(struct tspec){.cn = "Self"});
	EXPECT_INVALID(e, self, PKI_PURPOSE_ANY, "no path to a trusted root");
	/* adding the root into the roots store fixes the path (cache invalidated) */
	EXPECT_INVALID(e, c.leaf, PKI_PURPOSE_ANY, "no path");
	tenv_add(e, c.root, PKI_ADD_ROOT);
	EXPECT_VALID(e, c.leaf, PKI_PURPOSE_ANY);
	tcert_free(&self);
	chain_free(&c);
}

static void test_bad_signature(void **state)
{
	struct tenv *e = *state;
	struct chain c;
	struct tcert *fake_mid, *leaf;

	chain_make(&c, &(struct tspec){.cn = "Real"});
	chain_store(e, &c);
	/* a leaf naming "Test Mid" as issuer but signed by another key */
	fake_mid = tcert_make(&(struct tspec){.cn = "Test Mid", .ca = true, .issuer = c.root});
	leaf = tcert_make(&(struct tspec){.cn = "Forged", .issuer = fake_mid});
	{
		struct pki_verdict v = verdict(e, leaf, PKI_PURPOSE_ANY, 0);

		assert_false(v.is_valid);
	}
	tcert_free(&fake_mid);
	tcert_free(&leaf);
	chain_free(&c);
}

static void test_cross_signed(void **state)
{
	struct tenv *e = *state;
	struct tcert *old_root = tcert_make(&(struct tspec){.cn = "Old Root", .ca = true});
	struct tcert *new_root = tcert_make(&(struct tspec){.cn = "New Root", .ca = true});
	/* "New Root" cross-signed by the old one: same subject and key */
	struct tcert *cross = tcert_make(&(struct tspec){.cn = "New Root", .ca = true,
		.issuer = old_root, .key = new_root->k});
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "Crossed", .issuer = new_root});

	/* only the old root is trusted: the path goes through the cross cert */
	tenv_add(e, old_root, PKI_ADD_ROOT);
	tenv_add(e, cross, 0);
	EXPECT_VALID(e, leaf, PKI_PURPOSE_ANY);
	tcert_free(&old_root);
	tcert_free(&new_root);
	tcert_free(&cross);
	tcert_free(&leaf);
}

static void test_ctl(void **state)
{
	struct tenv *e = *state;
	struct chain c;
	struct tcert *lone, *old;
	struct pki_ctl_entry ent;
	struct sg_error err;

	chain_make(&c, &(struct tspec){.cn = "Child"});
	chain_store(e, &c);
	EXPECT_VALID(e, c.leaf, PKI_PURPOSE_ANY);
	/* black-listed intermediate: children become invalid */
	assert_int_equal(pki_ctl_set(e->pki, c.mid->thumb, PKI_CTL_BLACK, 0, &err), 0);
	EXPECT_INVALID(e, c.leaf, PKI_PURPOSE_ANY,
		"black-listed (issuer \"CN=Test Mid\" is black-listed)");
	EXPECT_INVALID(e, c.mid, PKI_PURPOSE_ANY, "black-listed");
	assert_int_equal(pki_ctl_get(e->pki, c.mid->thumb, &ent, &err), 1);
	assert_int_equal(ent.kind, PKI_CTL_BLACK);
	assert_int_equal(pki_ctl_delete(e->pki, c.mid->thumb, &err), 0);
	EXPECT_VALID(e, c.leaf, PKI_PURPOSE_ANY);
	assert_int_equal(pki_ctl_delete(e->pki, c.mid->thumb, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	/* white is not inherited: a white intermediate does not trust an
	 * unrelated root's children, but a white leaf needs no root at all */
	lone = tcert_make(&(struct tspec){.cn = "Lone"});
	EXPECT_INVALID(e, lone, PKI_PURPOSE_ANY, "no path");
	assert_int_equal(pki_ctl_set(e->pki, lone->thumb, PKI_CTL_WHITE, 0, &err), 0);
	EXPECT_VALID(e, lone, PKI_PURPOSE_ANY);
	/* white + expired: invalid unless allow-expired */
	old = tcert_make(&(struct tspec){.cn = "Old white", .nb_days = -40, .na_days = -3});
	assert_int_equal(pki_ctl_set(e->pki, old->thumb, PKI_CTL_WHITE, 0, &err), 0);
	EXPECT_INVALID(e, old, PKI_PURPOSE_ANY, "expired on");
	assert_int_equal(pki_ctl_set(e->pki, old->thumb, PKI_CTL_WHITE, PKI_CTL_ALLOW_EXPIRED,
		&err), 0);
	EXPECT_VALID(e, old, PKI_PURPOSE_ANY);
	/* black wins over white */
	assert_int_equal(pki_ctl_set(e->pki, lone->thumb, PKI_CTL_BLACK, 0, &err), 0);
	EXPECT_INVALID(e, lone, PKI_PURPOSE_ANY, "black-listed");
	/* allow-expired only for white */
	assert_int_equal(pki_ctl_set(e->pki, lone->thumb, PKI_CTL_BLACK,
		PKI_CTL_ALLOW_EXPIRED, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pki_ctl_set(e->pki, "abc", PKI_CTL_BLACK, 0, &err), -1);
	tcert_free(&lone);
	tcert_free(&old);
	chain_free(&c);
}

static void test_white_intermediate_not_inherited_to_expired(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Unknown Root", .ca = true});
	struct tcert *mid = tcert_make(&(struct tspec){.cn = "White Mid", .ca = true,
		.issuer = root});
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "Expired child", .issuer = mid,
		.nb_days = -20, .na_days = -1});
	struct sg_error err;

	tenv_add(e, mid, 0);
	assert_int_equal(pki_ctl_set(e->pki, mid->thumb, PKI_CTL_WHITE, PKI_CTL_ALLOW_EXPIRED,
		&err), 0);
	/* the white intermediate is an anchor, its allow-expired is not inherited */
	EXPECT_INVALID(e, leaf, PKI_PURPOSE_ANY, "expired on");
	tcert_free(&root);
	tcert_free(&mid);
	tcert_free(&leaf);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tenv_setup, tenv_teardown)
	const struct CMUnitTest tests[] = {
		T(test_valid_chain),
		T(test_dates),
		T(test_expired_intermediate),
		T(test_key_usage),
		T(test_missing_and_untrusted),
		T(test_bad_signature),
		T(test_cross_signed),
		T(test_ctl),
		T(test_white_intermediate_not_inherited_to_expired),
	};

	return cmocka_run_group_tests(tests, tenv_group_setup, tenv_group_teardown);
}
