/*
 * test_pki_memo.c - the per-context memos of pki_memo.c (issue 7): the
 * selections (pki_select_encryption/additional/signing) and the signers'
 * chains (pki_cert_chain_get1) are asked for again and again by the same
 * context; every change to the store - made by this context or through
 * another connection (another process) - and every certificate's expiry
 * is seen by the next call: a CRL import, a black-list entry, a selection,
 * a new or deleted certificate, a new key. Pinned (pki_pin_begin, one
 * message), changes made elsewhere wait for the next pin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pki_test.h"
#include "pki/pki_key.h"

static const struct pki_owner chain[] = {
	{PKI_OWNER_USER, "alice@partner.example"},
	{PKI_OWNER_DOMAIN, "partner.example"},
	{PKI_OWNER_GLOBAL, ""},
};

/* other - a second connection and context on the same database (what the
 * CLI or another daemon process would use) */
struct other {
	struct store *db;
	struct pki *pki;
};

static void other_open(const struct tenv *e, struct other *o)
{
	struct sg_error err;

	o->db = store_open(e->url, &err);
	assert_non_null(o->db);
	o->pki = pki_open(o->db, &err);
	assert_non_null(o->pki);
}

static void other_close(struct other *o)
{
	pki_close(&o->pki);
	store_close(&o->db);
}

/* has_enc - is thumb among the usable encryption certificates of alice
 * (manual along chain + automatic by address) as e->pki answers now? */
static bool has_enc(struct tenv *e, const char *thumb)
{
	struct pki_selection s;
	struct sg_error err;
	bool found = false;
	size_t i;

	if (pki_select_encryption(e->pki, "alice@partner.example", chain, 3, PKI_SELECT_AUTO, 0,
		&s, &err) < 0)
		fail_msg("select: %s", err.msg);
	for (i = 0; i < s.n; i++)
		found = found || (strcmp(s.v[i].thumbprint, thumb) == 0 && s.v[i].is_usable);
	pki_selection_free(&s);
	return found;
}

/* has_additional - is thumb among the additional certificates of chain? */
static bool has_additional(struct tenv *e, const char *thumb)
{
	struct pki_selection s;
	struct sg_error err;
	bool found = false;
	size_t i;

	if (pki_select_additional(e->pki, chain, 3, 0, 0, &s, &err) < 0)
		fail_msg("select: %s", err.msg);
	for (i = 0; i < s.n; i++)
		found = found || strcmp(s.v[i].thumbprint, thumb) == 0;
	pki_selection_free(&s);
	return found;
}

static void add_cert(struct pki *pki, const struct tcert *t)
{
	struct sg_error err;
	size_t len;
	unsigned char *der = tcert_der(t, &len);
	struct pki_cert *c = pki_cert_from_der(der, len, &err);

	assert_non_null(c);
	assert_true(pki_cert_add(pki, c, 0, &err) >= 0);
	pki_cert_free(&c);
	free(der);
}

/* A revocation (CRL import), a black-list entry and its removal, made
 * through another connection, change the next answer of this context. */
static void test_encryption_sees_crl_and_ctl(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Memo Root", .ca = true});
	struct tcert *mid = tcert_make(&(struct tspec){.cn = "Memo Mid", .ca = true,
		.issuer = root});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice", .issuer = mid,
		.email = "alice@partner.example", .nb_days = -1, .serial = 4242});
	const long revoked[] = {4242};
	struct other o;
	struct sg_error err;
	unsigned char *crl;
	size_t len;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, mid, 0);
	tenv_add(e, alice, 0);
	other_open(e, &o);
	assert_true(has_enc(e, alice->thumb));
	assert_true(has_enc(e, alice->thumb));   /* asked again: the same answer */
	/* black-listed elsewhere: gone at the next call */
	assert_int_equal(pki_ctl_set(o.pki, alice->thumb, PKI_CTL_BLACK, 0, &err), 0);
	assert_false(has_enc(e, alice->thumb));
	assert_int_equal(pki_ctl_delete(o.pki, alice->thumb, &err), 0);
	assert_true(has_enc(e, alice->thumb));
	/* revoked by a CRL imported elsewhere: gone at the next call */
	crl = tcrl_make(mid, revoked, 1, -1, 30, NULL, 1, &len);
	assert_int_equal(pki_crl_import(o.pki, crl, len, "import", NULL, &err), PKI_CRL_ADDED);
	free(crl);
	assert_false(has_enc(e, alice->thumb));
	other_close(&o);
	tcert_free(&alice);
	tcert_free(&mid);
	tcert_free(&root);
}

/* Manual selections added and removed, a new certificate for the address
 * and a deleted one are seen by the next call. */
static void test_selection_sees_store_changes(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Memo Root", .ca = true});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice", .issuer = root,
		.email = "alice@partner.example", .nb_days = -1});
	struct tcert *alice2 = tcert_make(&(struct tspec){.cn = "Alice 2", .issuer = root,
		.email = "alice@partner.example", .nb_days = -1});
	struct tcert *escrow = tcert_make(&(struct tspec){.cn = "Escrow", .issuer = root});
	struct other o;
	struct sg_error err;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, alice, 0);
	tenv_add(e, escrow, 0);
	other_open(e, &o);
	assert_true(has_enc(e, alice->thumb));
	assert_false(has_enc(e, escrow->thumb));
	assert_false(has_additional(e, escrow->thumb));
	/* selections made elsewhere */
	assert_int_equal(pki_select_add(o.pki, &chain[1], PKI_SEL_ENCRYPT, escrow->thumb,
		&err), 1);
	assert_int_equal(pki_select_add(o.pki, &chain[2], PKI_SEL_ADDITIONAL, escrow->thumb,
		&err), 1);
	assert_true(has_enc(e, escrow->thumb));
	assert_true(has_additional(e, escrow->thumb));
	assert_int_equal(pki_select_remove(o.pki, &chain[1], PKI_SEL_ENCRYPT, escrow->thumb,
		&err), 1);
	assert_false(has_enc(e, escrow->thumb));
	assert_int_equal(pki_select_clear(o.pki, &chain[2], PKI_SEL_ADDITIONAL, &err), 1);
	assert_false(has_additional(e, escrow->thumb));
	/* a new certificate for the address, then deleted */
	assert_false(has_enc(e, alice2->thumb));
	add_cert(o.pki, alice2);
	assert_true(has_enc(e, alice2->thumb));
	assert_int_equal(pki_cert_delete(o.pki, alice2->thumb, &err), 0);
	assert_false(has_enc(e, alice2->thumb));
	assert_true(has_enc(e, alice->thumb));
	other_close(&o);
	tcert_free(&escrow);
	tcert_free(&alice2);
	tcert_free(&alice);
	tcert_free(&root);
}

static int noop_cb(const struct pki_cert *c, enum pki_import_state st, bool k, void *a,
	struct sg_error *err)
{
	(void)c;
	(void)st;
	(void)k;
	(void)a;
	(void)err;
	return 0;
}

/* The signing certificate: a key imported elsewhere makes it usable at
 * the next call, a black-list entry unusable. */
static void test_signing_sees_key_and_ctl(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Memo Root", .ca = true});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice", .issuer = root,
		.email = "alice@partner.example", .nb_days = -1});
	struct pki_keys *keys;
	struct pki_selected s;
	struct other o;
	struct sg_error err;
	unsigned char *p12;
	size_t len;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, alice, 0);
	other_open(e, &o);
	keys = pki_keys_open(o.pki, e->dir, &err);
	assert_non_null(keys);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 3,
		PKI_SELECT_AUTO, 0, &s, &err), 0);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 3,
		PKI_SELECT_AUTO, 0, &s, &err), 0);
	p12 = tp12_make(alice, NULL, 0, "k", &len);
	assert_true(pki_key_import_p12(keys, p12, len, "k", noop_cb, NULL, &err) >= 0);
	free(p12);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 3,
		PKI_SELECT_AUTO, 0, &s, &err), 1);
	assert_string_equal(s.thumbprint, alice->thumb);
	assert_int_equal(pki_ctl_set(o.pki, alice->thumb, PKI_CTL_BLACK, 0, &err), 0);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 3,
		PKI_SELECT_AUTO, 0, &s, &err), 0);
	pki_keys_close(&keys);
	other_close(&o);
	tcert_free(&alice);
	tcert_free(&root);
}

/* verdict_valid - e->pki's (cached) verdict for t now, CRLs required */
static bool verdict_valid(struct tenv *e, const struct tcert *t)
{
	struct pki_cert *c = NULL;
	struct pki_verdict v;
	struct sg_error err;

	assert_int_equal(pki_cert_get(e->pki, t->thumb, &c, &err), 1);
	assert_int_equal(pki_cert_verify(e->pki, c, PKI_PURPOSE_ENCRYPT, 0,
		PKI_VERIFY_CRL_REQUIRED, &v, &err), 0);
	pki_cert_free(&c);
	return v.is_valid;
}

/* has_enc_crl - has_enc with CRLs required */
static bool has_enc_crl(struct tenv *e, const char *thumb)
{
	struct pki_selection s;
	struct sg_error err;
	bool found = false;
	size_t i;

	if (pki_select_encryption(e->pki, "alice@partner.example", chain, 3, PKI_SELECT_AUTO,
		PKI_VERIFY_CRL_REQUIRED, &s, &err) < 0)
		fail_msg("select: %s", err.msg);
	for (i = 0; i < s.n; i++)
		found = found || strcmp(s.v[i].thumbprint, thumb) == 0;
	pki_selection_free(&s);
	return found;
}

/* A kept "usable" answer does not outlive what time alone changes, with no
 * change to the store: a certificate's notAfter (2 s from now); with CRLs
 * required, a CRL whose nextUpdate passes (2 s from now); a revocation
 * dated 2 s from now. */
static void test_kept_answers_expire_with_time(void **state)
{
	struct tenv *e = *state;
	struct tcert *r1 = tcert_make(&(struct tspec){.cn = "Memo Root 1", .ca = true});
	struct tcert *r2 = tcert_make(&(struct tspec){.cn = "Memo Root 2", .ca = true});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice", .issuer = r1,
		.email = "alice@partner.example", .nb_days = -1, .serial = 7001});
	struct tcert *alice2 = tcert_make(&(struct tspec){.cn = "Alice 2", .issuer = r2,
		.email = "alice@partner.example", .nb_days = -1, .serial = 7002});
	struct tcert *alice3 = tcert_make(&(struct tspec){.cn = "Alice 3", .issuer = r2,
		.email = "alice@partner.example", .nb_days = -1, .na_secs = 2});
	const long revoked[] = {7002};
	struct sg_error err;
	unsigned char *crl;
	size_t len;

	tenv_add(e, r1, PKI_ADD_ROOT);
	tenv_add(e, r2, PKI_ADD_ROOT);
	tenv_add(e, alice, 0);
	tenv_add(e, alice2, 0);
	tenv_add(e, alice3, 0);
	crl = tcrl_make_secs(r1, NULL, 0, -60, 2, 0, NULL, 1, &len);
	assert_int_equal(pki_crl_import(e->pki, crl, len, "import", NULL, &err),
		PKI_CRL_ADDED);
	free(crl);
	crl = tcrl_make_secs(r2, revoked, 1, -60, DAY, 2, NULL, 1, &len);
	assert_int_equal(pki_crl_import(e->pki, crl, len, "import", NULL, &err),
		PKI_CRL_ADDED);
	free(crl);
	assert_true(verdict_valid(e, alice));
	assert_true(verdict_valid(e, alice2));
	assert_true(has_enc_crl(e, alice->thumb));
	assert_true(has_enc_crl(e, alice2->thumb));
	assert_true(has_enc(e, alice3->thumb));
	sleep(4);
	assert_false(has_enc(e, alice3->thumb));   /* expired */
	assert_false(verdict_valid(e, alice));     /* no current CRL */
	assert_false(verdict_valid(e, alice2));    /* revoked now */
	assert_false(has_enc_crl(e, alice->thumb));
	assert_false(has_enc_crl(e, alice2->thumb));
	tcert_free(&alice3);
	tcert_free(&alice2);
	tcert_free(&alice);
	tcert_free(&r2);
	tcert_free(&r1);
}

/* issuers_are - the thumbprints of sk, in order, are exactly those given */
static void issuers_are(STACK_OF(X509) *sk, const char *const *thumbs, int n)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	int i;

	assert_int_equal(sk_X509_num(sk), n);
	for (i = 0; i < n; i++) {
		tx509_thumb(sk_X509_value(sk, i), t);
		assert_string_equal(t, thumbs[i]);
	}
}

/* The signer's chain: the certificate and its issuers up to the root (as
 * the chain export has them); deleting the intermediate elsewhere breaks
 * the path at the next call, adding it back restores it. */
static void test_chain_get1(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Memo Root", .ca = true});
	struct tcert *mid = tcert_make(&(struct tspec){.cn = "Memo Mid", .ca = true,
		.issuer = root});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice", .issuer = mid,
		.email = "alice@partner.example", .nb_days = -1});
	const char *both[] = {mid->thumb, root->thumb};
	char missing[PKI_THUMBPRINT_LEN + 1], t[PKI_THUMBPRINT_LEN + 1];
	STACK_OF(X509) *sk = NULL;
	struct other o;
	struct sg_error err;
	X509 *x = NULL;
	int round;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, mid, 0);
	tenv_add(e, alice, 0);
	other_open(e, &o);
	for (round = 0; round < 2; round++) {   /* built, then kept */
		assert_int_equal(pki_cert_chain_get1(e->pki, alice->thumb, &x, &sk, &err), 1);
		tx509_thumb(x, t);
		assert_string_equal(t, alice->thumb);
		issuers_are(sk, both, 2);
		X509_free(x);
		sk_X509_pop_free(sk, X509_free);
	}
	assert_int_equal(pki_cert_delete(o.pki, mid->thumb, &err), 0);
	assert_int_equal(pki_cert_chain_get1(e->pki, alice->thumb, &x, &sk, &err), 1);
	issuers_are(sk, NULL, 0);
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	add_cert(o.pki, mid);
	assert_int_equal(pki_cert_chain_get1(e->pki, alice->thumb, &x, &sk, &err), 1);
	issuers_are(sk, both, 2);
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	/* not stored: 0, nothing returned */
	memset(missing, 'c', PKI_THUMBPRINT_LEN);
	missing[PKI_THUMBPRINT_LEN] = '\0';
	assert_int_equal(pki_cert_chain_get1(e->pki, missing, &x, &sk, &err), 0);
	assert_null(x);
	assert_null(sk);
	assert_int_equal(pki_cert_chain_get1(e->pki, "nope", &x, &sk, &err), 0);
	other_close(&o);
	tcert_free(&alice);
	tcert_free(&mid);
	tcert_free(&root);
}

/* pki_cert_x509_get1: the stored certificate (any case of the thumbprint),
 * 0 for one that is not (or no longer) stored. */
static void test_x509_get1(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Memo Root", .ca = true});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice", .issuer = root});
	char upper[PKI_THUMBPRINT_LEN + 1], t[PKI_THUMBPRINT_LEN + 1];
	struct sg_error err;
	X509 *x = NULL;
	size_t i;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, alice, 0);
	for (i = 0; i <= PKI_THUMBPRINT_LEN; i++)
		upper[i] = (char)toupper((unsigned char)alice->thumb[i]);
	assert_int_equal(pki_cert_x509_get1(e->pki, upper, &x, &err), 1);
	tx509_thumb(x, t);
	assert_string_equal(t, alice->thumb);
	assert_int_equal(X509_cmp(x, alice->x), 0);
	X509_free(x);
	assert_int_equal(pki_cert_delete(e->pki, alice->thumb, &err), 0);
	assert_int_equal(pki_cert_x509_get1(e->pki, alice->thumb, &x, &err), 0);
	assert_null(x);
	tcert_free(&alice);
	tcert_free(&root);
}

/* pki_pin_begin: while pinned, a change made elsewhere is not seen (one
 * consistent moment, e.g. one message), a change made through this context
 * is (and moves the moment to now); after pki_pin_end the next call sees
 * everything. */
static void test_pin(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Memo Root", .ca = true});
	struct tcert *alice = tcert_make(&(struct tspec){.cn = "Alice", .issuer = root,
		.email = "alice@partner.example", .nb_days = -1});
	struct tcert *bob = tcert_make(&(struct tspec){.cn = "Bob", .issuer = root,
		.email = "bob@partner.example", .nb_days = -1});
	struct other o;
	struct sg_error err;
	X509 *x = NULL;

	tenv_add(e, root, PKI_ADD_ROOT);
	tenv_add(e, alice, 0);
	tenv_add(e, bob, 0);
	other_open(e, &o);
	assert_int_equal(pki_pin_begin(e->pki, &err), 0);
	assert_true(has_enc(e, alice->thumb));
	assert_int_equal(pki_ctl_set(o.pki, alice->thumb, PKI_CTL_BLACK, 0, &err), 0);
	assert_true(has_enc(e, alice->thumb));    /* the pinned moment */
	assert_int_equal(pki_pin_begin(e->pki, &err), 0);   /* nested */
	pki_pin_end(e->pki);
	assert_true(has_enc(e, alice->thumb));    /* still pinned */
	/* our own change is seen at once (also by the certificate memo); it
	 * moves the pinned moment to now, so the other change shows too */
	assert_int_equal(pki_cert_x509_get1(e->pki, bob->thumb, &x, &err), 1);
	X509_free(x);
	assert_int_equal(pki_cert_delete(e->pki, bob->thumb, &err), 0);
	assert_int_equal(pki_cert_x509_get1(e->pki, bob->thumb, &x, &err), 0);
	assert_false(has_enc(e, alice->thumb));
	pki_pin_end(e->pki);
	assert_false(has_enc(e, alice->thumb));
	pki_pin_end(e->pki);                      /* unbalanced end: harmless */
	/* unpinned: the next call sees a change made elsewhere */
	assert_int_equal(pki_ctl_delete(o.pki, alice->thumb, &err), 0);
	assert_true(has_enc(e, alice->thumb));
	assert_int_equal(pki_pin_begin(e->pki, &err), 0);
	assert_true(has_enc(e, alice->thumb));
	assert_int_equal(pki_ctl_set(o.pki, alice->thumb, PKI_CTL_BLACK, 0, &err), 0);
	assert_true(has_enc(e, alice->thumb));
	pki_pin_end(e->pki);
	assert_false(has_enc(e, alice->thumb));
	other_close(&o);
	tcert_free(&bob);
	tcert_free(&alice);
	tcert_free(&root);
}

/* pki_x509_collect: a certificate from mail is stored once (1), then found
 * (0); the stored one is that certificate and indexed by its address. */
static void test_x509_collect(void **state)
{
	struct tenv *e = *state;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "Memo Root", .ca = true});
	struct tcert *carol = tcert_make(&(struct tspec){.cn = "Carol", .issuer = root,
		.email = "Carol@Partner.example"});
	char thumbs[2][PKI_THUMBPRINT_LEN + 1];
	struct sg_error err;
	X509 *x = NULL;

	tenv_add(e, root, PKI_ADD_ROOT);
	assert_int_equal(pki_cert_x509_get1(e->pki, carol->thumb, &x, &err), 0);
	assert_int_equal(pki_x509_collect(e->pki, carol->x, &err), 1);
	assert_int_equal(pki_x509_collect(e->pki, carol->x, &err), 0);
	assert_int_equal(pki_cert_x509_get1(e->pki, carol->thumb, &x, &err), 1);
	assert_int_equal(X509_cmp(x, carol->x), 0);
	X509_free(x);
	assert_int_equal(pki_cert_find_email(e->pki, "carol@partner.example", thumbs, 2, &err),
		1);
	assert_string_equal(thumbs[0], carol->thumb);
	tcert_free(&carol);
	tcert_free(&root);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tenv_setup, tenv_teardown)
	const struct CMUnitTest tests[] = {
		T(test_encryption_sees_crl_and_ctl),
		T(test_selection_sees_store_changes),
		T(test_signing_sees_key_and_ctl),
		T(test_kept_answers_expire_with_time),
		T(test_chain_get1),
		T(test_x509_get1),
		T(test_pin),
		T(test_x509_collect),
	};

	return cmocka_run_group_tests(tests, tenv_group_setup, tenv_group_teardown);
}
