/*
 * test_pki_select.c - F-PKI-4: encryption certificates as the union of the
 * manual selections over user, domain, wildcard domain and global plus the
 * automatic ones by address; invalid ones never returned (listed with the
 * reason when asked); additional certificates; the signing certificate
 * (manual, automatic first-imported, freshest), keys required for signing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pki_test.h"
#include "pki/pki_key.h"

struct world {
	struct tcert *root, *mid;
	struct tcert *personal, *personal2, *tunnel, *wild, *global, *expired, *escrow;
};

static void world_make(struct tenv *e, struct world *w)
{
	w->root = tcert_make(&(struct tspec){.cn = "Sel Root", .ca = true});
	w->mid = tcert_make(&(struct tspec){.cn = "Sel Mid", .ca = true, .issuer = w->root});
	w->personal = tcert_make(&(struct tspec){.cn = "Alice", .issuer = w->mid,
		.san = "email:Alice@Partner.example", .nb_days = -10});
	w->personal2 = tcert_make(&(struct tspec){.cn = "Alice new", .issuer = w->mid,
		.email = "alice@partner.example", .nb_days = -1});
	w->tunnel = tcert_make(&(struct tspec){.cn = "Partner tunnel", .issuer = w->mid,
		.san = "email:gateway@partner.example"});
	w->wild = tcert_make(&(struct tspec){.cn = "Wildcard", .issuer = w->mid});
	w->global = tcert_make(&(struct tspec){.cn = "Global", .issuer = w->mid});
	w->expired = tcert_make(&(struct tspec){.cn = "Alice old", .issuer = w->mid,
		.email = "alice@partner.example", .nb_days = -100, .na_days = -5});
	w->escrow = tcert_make(&(struct tspec){.cn = "Escrow", .issuer = w->mid});
	tenv_add(e, w->root, PKI_ADD_ROOT);
	tenv_add(e, w->mid, 0);
	tenv_add(e, w->personal, 0);
	tenv_add(e, w->personal2, 0);
	tenv_add(e, w->tunnel, 0);
	tenv_add(e, w->wild, 0);
	tenv_add(e, w->global, 0);
	tenv_add(e, w->expired, 0);
	tenv_add(e, w->escrow, 0);
}

static void world_free(struct world *w)
{
	struct tcert **all[] = {&w->root, &w->mid, &w->personal, &w->personal2, &w->tunnel,
		&w->wild, &w->global, &w->expired, &w->escrow};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		tcert_free(all[i]);
}

static const struct pki_owner chain[] = {
	{PKI_OWNER_USER, "alice@partner.example"},
	{PKI_OWNER_DOMAIN, "partner.example"},
	{PKI_OWNER_DOMAIN, "*.example"},
	{PKI_OWNER_GLOBAL, ""},
};

/* find - index of thumb in sel or -1 */
static int find(const struct pki_selection *sel, const char *thumb)
{
	size_t i;

	for (i = 0; i < sel->n; i++) {
		if (strcmp(sel->v[i].thumbprint, thumb) == 0)
			return (int)i;
	}
	return -1;
}

static void sel(struct tenv *e, const struct pki_owner *o, enum pki_sel_kind k,
	const struct tcert *t)
{
	struct sg_error err;

	if (pki_select_add(e->pki, o, k, t->thumb, &err) < 0)
		fail_msg("select: %s", err.msg);
}

static void test_encryption_union(void **state)
{
	struct tenv *e = *state;
	struct pki_selection s;
	struct sg_error err;
	struct world w;
	int i;

	world_make(e, &w);
	sel(e, &chain[1], PKI_SEL_ENCRYPT, w.tunnel);
	sel(e, &chain[2], PKI_SEL_ENCRYPT, w.wild);
	sel(e, &chain[3], PKI_SEL_ENCRYPT, w.global);
	sel(e, &chain[0], PKI_SEL_ENCRYPT, w.expired);  /* invalid: never used */
	/* manual only */
	assert_int_equal(pki_select_encryption(e->pki, "Alice@partner.example", chain, 4, 0, 0,
		&s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(find(&s, w.expired->thumb), -1);
	i = find(&s, w.tunnel->thumb);
	assert_true(i >= 0);
	assert_string_equal(s.v[i].origin, "domain partner.example");
	assert_string_equal(s.v[find(&s, w.wild->thumb)].origin, "domain *.example");
	assert_string_equal(s.v[find(&s, w.global->thumb)].origin, "global");
	pki_selection_free(&s);
	/* + automatic by address: the personal certificates are added */
	assert_int_equal(pki_select_encryption(e->pki, "ALICE@partner.example", chain, 4,
		PKI_SELECT_AUTO, 0, &s, &err), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.v[find(&s, w.personal->thumb)].origin, "auto");
	assert_true(find(&s, w.personal2->thumb) >= 0);
	assert_true(find(&s, w.tunnel->thumb) >= 0);
	pki_selection_free(&s);
	/* explain: the expired one is listed with its reason */
	assert_int_equal(pki_select_encryption(e->pki, "alice@partner.example", chain, 4,
		PKI_SELECT_AUTO | PKI_SELECT_UNUSABLE, 0, &s, &err), 0);
	assert_int_equal(s.n, 6);  /* expired selected manually and found by address: once */
	i = find(&s, w.expired->thumb);
	assert_true(i >= 0);
	assert_false(s.v[i].is_usable);
	assert_string_equal(s.v[i].origin, "user alice@partner.example");
	assert_non_null(strstr(s.v[i].reason, "expired on"));
	pki_selection_free(&s);
	/* a user of another domain gets only the global one */
	assert_int_equal(pki_select_encryption(e->pki, "bob@other.test",
		(struct pki_owner[]){{PKI_OWNER_USER, "bob@other.test"},
			{PKI_OWNER_DOMAIN, "other.test"}, {PKI_OWNER_GLOBAL, NULL}}, 3,
		PKI_SELECT_AUTO, 0, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].thumbprint, w.global->thumb);
	pki_selection_free(&s);
	world_free(&w);
}

static void test_select_errors(void **state)
{
	struct tenv *e = *state;
	struct sg_error err;
	struct world w;
	char missing[PKI_THUMBPRINT_LEN + 1];

	world_make(e, &w);
	memset(missing, 'b', PKI_THUMBPRINT_LEN);
	missing[PKI_THUMBPRINT_LEN] = '\0';
	assert_int_equal(pki_select_add(e->pki, &chain[0], PKI_SEL_ENCRYPT, missing, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(pki_select_add(e->pki, &(struct pki_owner){PKI_OWNER_USER, "nope"},
		PKI_SEL_ENCRYPT, w.personal->thumb, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pki_select_add(e->pki, &(struct pki_owner){PKI_OWNER_GLOBAL, "x"},
		PKI_SEL_ENCRYPT, w.personal->thumb, &err), -1);
	assert_int_equal(pki_select_add(e->pki, &chain[0], PKI_SEL_ENCRYPT, w.root->thumb,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pki_select_add(e->pki, &chain[0], PKI_SEL_ENCRYPT, w.personal->thumb,
		&err), 1);
	assert_int_equal(pki_select_add(e->pki, &chain[0], PKI_SEL_ENCRYPT, w.personal->thumb,
		&err), 0);
	assert_int_equal(pki_select_clear(e->pki, &chain[0], PKI_SEL_ENCRYPT, &err), 1);
	world_free(&w);
}

static void test_additional(void **state)
{
	struct tenv *e = *state;
	struct pki_selection s;
	struct sg_error err;
	struct world w;

	world_make(e, &w);
	sel(e, &chain[3], PKI_SEL_ADDITIONAL, w.escrow);
	sel(e, &chain[1], PKI_SEL_ADDITIONAL, w.escrow);
	sel(e, &chain[1], PKI_SEL_ADDITIONAL, w.expired);
	assert_int_equal(pki_select_additional(e->pki, chain, 4, 0, 0, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].thumbprint, w.escrow->thumb);
	pki_selection_free(&s);
	world_free(&w);
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

/* give_key - import t with its key through a PKCS#12 */
static void give_key(struct tenv *e, struct pki_keys *keys, const struct tcert *t)
{
	struct sg_error err;
	size_t len;
	unsigned char *p12 = tp12_make(t, NULL, 0, "k", &len);

	(void)e;
	if (pki_key_import_p12(keys, p12, len, "k", noop_cb, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	free(p12);
}

static void test_signing(void **state)
{
	struct tenv *e = *state;
	struct pki_keys *keys = pki_keys_open(e->pki, e->dir, &(struct sg_error){0});
	struct pki_selected s;
	struct sg_error err;
	struct world w;

	assert_non_null(keys);
	world_make(e, &w);
	/* no key yet: nothing to sign with */
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 4,
		PKI_SELECT_AUTO, 0, &s, &err), 0);
	give_key(e, keys, w.personal2);  /* imported first, notBefore -1 day */
	give_key(e, keys, w.personal);   /* imported second, notBefore -10 days */
	give_key(e, keys, w.expired);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 4,
		PKI_SELECT_AUTO, 0, &s, &err), 1);
	assert_string_equal(s.origin, "auto");
	/* first imported with a key (created order; ties broken by thumbprint) */
	assert_true(strcmp(s.thumbprint, w.personal2->thumb) == 0 ||
		strcmp(s.thumbprint, w.personal->thumb) == 0);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 4,
		PKI_SELECT_AUTO | PKI_SELECT_FRESHEST, 0, &s, &err), 1);
	assert_string_equal(s.thumbprint, w.personal2->thumb);
	/* manual choice wins */
	sel(e, &chain[0], PKI_SEL_SIGN, w.personal);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 4,
		PKI_SELECT_AUTO | PKI_SELECT_FRESHEST, 0, &s, &err), 1);
	assert_string_equal(s.thumbprint, w.personal->thumb);
	assert_string_equal(s.origin, "user alice@partner.example");
	/* one signing certificate per owner: selecting another replaces it */
	sel(e, &chain[0], PKI_SEL_SIGN, w.expired);
	{
		struct pki_selection l;

		assert_int_equal(pki_select_list(e->pki, &chain[0], 0, &l, &err), 0);
		assert_int_equal(l.n, 1);
		assert_string_equal(l.v[0].thumbprint, w.expired->thumb);
		assert_false(l.v[0].is_usable);
		pki_selection_free(&l);
	}
	/* an invalid manual choice is never used: back to automatic */
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 4,
		PKI_SELECT_AUTO | PKI_SELECT_FRESHEST, 0, &s, &err), 1);
	assert_string_equal(s.thumbprint, w.personal2->thumb);
	assert_int_equal(pki_select_signing(e->pki, "alice@partner.example", chain, 4, 0, 0,
		&s, &err), 0);
	/* a manual choice without a key is not usable */
	sel(e, &chain[1], PKI_SEL_SIGN, w.tunnel);
	assert_int_equal(pki_select_signing(e->pki, NULL, &chain[1], 1, 0, 0, &s, &err), 0);
	pki_keys_close(&keys);
	world_free(&w);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tenv_setup, tenv_teardown)
	const struct CMUnitTest tests[] = {
		T(test_encryption_union),
		T(test_select_errors),
		T(test_additional),
		T(test_signing),
	};

	return cmocka_run_group_tests(tests, tenv_group_setup, tenv_group_teardown);
}
