/*
 * test_policy_store.c - users, domains, wildcards and property resolution
 * against a real store (F-POL-1, F-POL-2, F-POL-4): built twice, as
 * test_policy_store_sqlite (unit) and test_policy_store_pg (e2e).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "policy_test.h"

#define U POLICY_KIND_USER
#define D POLICY_KIND_DOMAIN
#define G POLICY_KIND_GLOBAL

/* expect_prop - resolved value and level of one property of a user */
static void expect_user(struct policy *p, const char *email, const char *prop,
	const char *want, enum policy_level want_level)
{
	struct policy_props *pp = NULL;
	struct sg_error err;
	enum policy_prop_id id;
	enum policy_level lvl;
	const char *v;

	assert_int_equal(policy_prop_find(prop, &id), 1);
	if (policy_resolve_user(p, email, &pp, &err) < 0)
		fail_msg("resolve %s: %s", email, err.msg);
	v = policy_props_get(pp, id, &lvl);
	if (want == NULL ? v != NULL : v == NULL || strcmp(v, want) != 0)
		fail_msg("%s %s: got '%s' want '%s'", email, prop, v ? v : "(null)",
			want ? want : "(null)");
	if (lvl != want_level)
		fail_msg("%s %s: got level %s want %s", email, prop, policy_level_name(lvl),
			policy_level_name(want_level));
	policy_props_free(&pp);
}

static void test_user_add_exists_delete(void **state)
{
	struct ptest_fx *f = *state;
	struct sg_error err;

	assert_int_equal(policy_object_exists(f->p, U, "Alice@Example.COM", &err), 0);
	assert_int_equal(policy_object_add(f->p, U, "Alice@Example.COM", &err), 0);
	assert_int_equal(policy_object_exists(f->p, U, "alice@example.com", &err), 1);
	/* same user whatever the case */
	assert_int_equal(policy_object_add(f->p, U, "ALICE@example.com.", &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	assert_int_equal(policy_object_add(f->p, U, "not an address", &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(policy_object_delete(f->p, U, "alice@EXAMPLE.com", &err), 0);
	assert_int_equal(policy_object_exists(f->p, U, "alice@example.com", &err), 0);
	assert_int_equal(policy_object_delete(f->p, U, "alice@example.com", &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(policy_object_add(f->p, G, NULL, &err), -1);
	assert_int_equal(policy_object_delete(f->p, G, NULL, &err), -1);
}

static void test_domain_delete_with_users(void **state)
{
	struct ptest_fx *f = *state;
	struct sg_error err;

	assert_int_equal(policy_object_add(f->p, D, "example.com", &err), 0);
	assert_int_equal(policy_object_add(f->p, D, "*.example.com", &err), 0);
	assert_int_equal(policy_object_add(f->p, D, "*.other_x.com", &err), 0);
	assert_int_equal(policy_object_add(f->p, U, "bob@deep.sub.example.com", &err), 0);
	/* the plain domain has no user of its own */
	assert_int_equal(policy_object_delete(f->p, D, "example.com", &err), 0);
	/* the wildcard covers deep.sub.example.com */
	assert_int_equal(policy_object_delete(f->p, D, "*.example.com", &err), -1);
	assert_int_equal(err.code, SG_E_POLICY);
	assert_non_null(strstr(err.msg, "still has users"));
	/* '_' in the name is not a LIKE wildcard: otherxcom users do not count */
	assert_int_equal(policy_object_add(f->p, U, "c@a.otherxxcom", &err), 0);
	assert_int_equal(policy_object_delete(f->p, D, "*.other_x.com", &err), 0);
	assert_int_equal(policy_object_add(f->p, D, "example.com", &err), 0);
	assert_int_equal(policy_object_add(f->p, U, "carol@example.com", &err), 0);
	assert_int_equal(policy_object_delete(f->p, D, "example.com", &err), -1);
	assert_int_equal(err.code, SG_E_POLICY);
	assert_int_equal(policy_object_delete(f->p, U, "carol@example.com", &err), 0);
	assert_int_equal(policy_object_delete(f->p, D, "example.com", &err), 0);
	assert_int_equal(policy_object_delete(f->p, U, "bob@deep.sub.example.com", &err), 0);
	assert_int_equal(policy_object_delete(f->p, D, "*.example.com", &err), 0);
	assert_int_equal(policy_object_delete(f->p, D, "nope.example", &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
}

static void test_list_search_paging(void **state)
{
	struct ptest_fx *f = *state;
	struct sg_error err;
	struct policy_list l;
	char name[64];
	unsigned i;

	for (i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "u%02u@%s.com", i, i % 2 ? "odd" : "even");
		assert_int_equal(policy_object_add(f->p, U, name, &err), 0);
	}
	assert_int_equal(policy_object_add(f->p, U, "x_y@pct.com", &err), 0);
	assert_int_equal(policy_object_add(f->p, U, "xzy@pct.com", &err), 0);
	ptest_set(f->p, U, "u03@odd.com", "locality", "internal");
	ptest_set(f->p, U, "u03@odd.com", "smime_strict", "true");
	assert_int_equal(policy_object_list(f->p, U, NULL, 10, 0, &l, &err), 0);
	assert_int_equal(l.total, 27);
	assert_int_equal(l.count, 10);
	assert_string_equal(l.items[0].name, "u00@even.com");
	policy_list_deinit(&l);
	assert_int_equal(policy_object_list(f->p, U, "ODD", 5, 5, &l, &err), 0);
	assert_int_equal(l.total, 12);
	assert_int_equal(l.count, 5);
	assert_string_equal(l.items[0].name, "u11@odd.com");
	policy_list_deinit(&l);
	assert_int_equal(policy_object_list(f->p, U, "u03", 0, 0, &l, &err), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.items[0].nprops, 2);
	policy_list_deinit(&l);
	/* LIKE metacharacters in the search are literal */
	assert_int_equal(policy_object_list(f->p, U, "x_y", 0, 0, &l, &err), 0);
	assert_int_equal(l.total, 1);
	assert_string_equal(l.items[0].name, "x_y@pct.com");
	policy_list_deinit(&l);
	assert_int_equal(policy_object_list(f->p, U, "%", 0, 0, &l, &err), 0);
	assert_int_equal(l.total, 0);
	policy_list_deinit(&l);
	assert_int_equal(policy_object_add(f->p, D, "*.b.com", &err), 0);
	assert_int_equal(policy_object_add(f->p, D, "a.com", &err), 0);
	ptest_set(f->p, D, "*.b.com", "locality", "internal");
	assert_int_equal(policy_object_list(f->p, D, NULL, 0, 0, &l, &err), 0);
	assert_int_equal(l.count, 2);
	assert_string_equal(l.items[0].name, "*.b.com");
	assert_int_equal(l.items[0].nprops, 1);
	assert_string_equal(l.items[1].name, "a.com");
	policy_list_deinit(&l);
}

/* every level for several properties, F-POL-2 */
static void test_inheritance_levels(void **state)
{
	struct ptest_fx *f = *state;
	static const struct {
		const char *prop, *factory, *g, *w, *d, *u;
	} cases[] = {
		{"encrypt_mode", "allow", "mandatory", "force", "no_encryption", "allow"},
		{"locality", "external", "internal", "external", "internal", "external"},
		{"smime_max_size", "52428800", "1000", "2000", "3000", "4000"},
		{"subject_trigger", "[encrypt]", "[g]", "[w]", "[d]", "[u]"},
		{"smime_encryption_algorithm", "aes256", "aes128", "aes192", "3des",
			"aes256-gcm"},
		{"password", NULL, "pw-global-123", "pw-wild", "pw-dom", "pw-user"},
	};
	const char *who = "user@sub.example.com";
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *prop = cases[i].prop;
		bool is_secret_global = strcmp(prop, "password") == 0;

		expect_user(f->p, who, prop, cases[i].factory, POLICY_LEVEL_FACTORY);
		ptest_set(f->p, G, NULL, prop, cases[i].g);
		expect_user(f->p, who, prop, cases[i].g, POLICY_LEVEL_GLOBAL);
		ptest_set(f->p, D, "*.example.com", prop, cases[i].w);
		expect_user(f->p, who, prop, cases[i].w, POLICY_LEVEL_WILDCARD);
		ptest_set(f->p, D, "sub.example.com", prop, cases[i].d);
		expect_user(f->p, who, prop, cases[i].d, POLICY_LEVEL_DOMAIN);
		ptest_set(f->p, U, who, prop, cases[i].u);
		expect_user(f->p, who, prop, cases[i].u, POLICY_LEVEL_USER);
		/* unset walks back down, level by level */
		ptest_set(f->p, U, who, prop, NULL);
		expect_user(f->p, who, prop, cases[i].d, POLICY_LEVEL_DOMAIN);
		ptest_set(f->p, D, "sub.example.com", prop, NULL);
		expect_user(f->p, who, prop, cases[i].w, POLICY_LEVEL_WILDCARD);
		ptest_set(f->p, D, "*.example.com", prop, NULL);
		expect_user(f->p, who, prop, cases[i].g, POLICY_LEVEL_GLOBAL);
		ptest_set(f->p, G, NULL, prop, NULL);
		expect_user(f->p, who, prop, cases[i].factory, POLICY_LEVEL_FACTORY);
		(void)is_secret_global;
	}
}

static void test_unknown_user_inherits(void **state)
{
	struct ptest_fx *f = *state;
	struct sg_error err;

	ptest_set(f->p, D, "example.com", "locality", "internal");
	expect_user(f->p, "nobody@example.com", "locality", "internal", POLICY_LEVEL_DOMAIN);
	assert_int_equal(policy_object_exists(f->p, U, "nobody@example.com", &err), 0);
	/* the domain of a user is the exact domain: subdomains do not inherit it */
	expect_user(f->p, "x@sub.example.com", "locality", "external", POLICY_LEVEL_FACTORY);
}

/* wildcard matching edge cases */
static void test_wildcard_matching(void **state)
{
	struct ptest_fx *f = *state;
	static const struct {
		const char *email, *want;
		enum policy_level level;
	} cases[] = {
		{"a@example.com", "mandatory", POLICY_LEVEL_WILDCARD},      /* bare domain */
		{"a@x.example.com", "mandatory", POLICY_LEVEL_WILDCARD},
		{"a@a.b.c.d.example.com", "mandatory", POLICY_LEVEL_WILDCARD},  /* any depth */
		{"a@EXAMPLE.COM.", "mandatory", POLICY_LEVEL_WILDCARD},     /* case, dot */
		{"a@b.deep.example.com", "force", POLICY_LEVEL_WILDCARD},   /* most specific */
		{"a@deep.example.com", "force", POLICY_LEVEL_WILDCARD},
		{"a@notexample.com", "allow", POLICY_LEVEL_FACTORY},        /* label boundary */
		{"a@example.org", "allow", POLICY_LEVEL_FACTORY},
		{"a@xn--bcher-kva.example", "no_encryption", POLICY_LEVEL_WILDCARD},
		{"a@sub.Bücher.example", "no_encryption", POLICY_LEVEL_WILDCARD},  /* IDN */
		{"a@exact.example.com", "allow", POLICY_LEVEL_DOMAIN},      /* domain > wildcard */
	};
	size_t i;

	ptest_set(f->p, D, "*.Example.com.", "encrypt_mode", "mandatory");
	ptest_set(f->p, D, "*.deep.example.com", "encrypt_mode", "force");
	ptest_set(f->p, D, "*.bücher.example", "encrypt_mode", "no_encryption");
	ptest_set(f->p, D, "exact.example.com", "encrypt_mode", "allow");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_user(f->p, cases[i].email, "encrypt_mode", cases[i].want, cases[i].level);
}

static void test_wildcard_existing_without_props_wins(void **state)
{
	struct ptest_fx *f = *state;
	struct sg_error err;
	struct policy_props *pp = NULL;
	char owners[4][POLICY_OWNER_MAX];
	size_t n;

	ptest_set(f->p, D, "*.example.com", "locality", "internal");
	/* a more specific wildcard that sets nothing still is "the" wildcard: the
	 * less specific one does not chain behind it */
	assert_int_equal(policy_object_add(f->p, D, "*.sub.example.com", &err), 0);
	expect_user(f->p, "a@x.sub.example.com", "locality", "external",
		POLICY_LEVEL_FACTORY);
	assert_int_equal(policy_resolve_user(f->p, "a@x.sub.example.com", &pp, &err), 0);
	assert_int_equal(policy_owner_chain(pp, owners, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(owners[0], "user:a@x.sub.example.com");
	assert_string_equal(owners[1], "domain:x.sub.example.com");
	assert_string_equal(owners[2], "wildcard:*.sub.example.com");
	assert_string_equal(owners[3], "global");
	policy_props_free(&pp);
}

static void test_set_refusals(void **state)
{
	struct ptest_fx *f = *state;
	struct sg_error err;
	struct policy_change ch[3] = {
		{"locality", "internal"},
		{"smime_max_size", "10M"},
		{"encrypt_mode", "sometimes"},
	};

	assert_int_equal(ptest_set_err(f->p, U, "a@x.com", "no_such_prop", "1", &err), -1);
	assert_non_null(strstr(err.msg, "unknown property 'no_such_prop'"));
	assert_int_equal(ptest_set_err(f->p, U, "a@x.com", "smime_allowed", "maybe", &err), -1);
	assert_non_null(strstr(err.msg, "smime_allowed"));
	assert_int_equal(ptest_set_err(f->p, D, "x.com", "portal_base_url",
		"https://x.com/p", &err), -1);
	assert_non_null(strstr(err.msg, "global level"));
	assert_int_equal(ptest_set_err(f->p, U, "a@x.com", "crl_required", NULL, &err), -1);
	/* an unset alone creates no user */
	ptest_set(f->p, U, "ghost@x.com", "locality", NULL);
	assert_int_equal(policy_object_exists(f->p, U, "ghost@x.com", &err), 0);
	ptest_set(f->p, G, NULL, "portal_base_url", "https://gw.example.com/portal/");
	/* all or nothing: the bad third change keeps the first two out */
	assert_int_equal(policy_object_apply(f->p, U, "a@x.com", ch, 3, &err), -1);
	assert_non_null(strstr(err.msg, "encrypt_mode"));
	expect_user(f->p, "a@x.com", "locality", "external", POLICY_LEVEL_FACTORY);
	assert_int_equal(policy_object_exists(f->p, U, "a@x.com", &err), 0);
	ch[2].value = "FORCE";
	assert_int_equal(policy_object_apply(f->p, U, "a@x.com", ch, 3, &err), 0);
	expect_user(f->p, "a@x.com", "smime_max_size", "10485760", POLICY_LEVEL_USER);
	expect_user(f->p, "a@x.com", "encrypt_mode", "force", POLICY_LEVEL_USER);
	/* derived factory values follow the global base URL */
	expect_user(f->p, "a@x.com", "otp_url", "https://gw.example.com/portal/otp",
		POLICY_LEVEL_FACTORY);
	expect_user(f->p, "a@x.com", "pdf_reply_url", "https://gw.example.com/portal/reply",
		POLICY_LEVEL_FACTORY);
	expect_user(f->p, "a@x.com", "system_mail_from", "postmaster@gw.example.net",
		POLICY_LEVEL_FACTORY);
}

static void test_subject_regex_refused_when_saved(void **state)
{
	struct ptest_fx *f = *state;
	struct sg_error err;
	struct policy_change ch[2] = {
		{"subject_trigger", "(?i)(\\[secure\\]|\\[encrypt\\]"},
		{"subject_trigger_is_regex", "true"},
	};

	assert_int_equal(policy_object_apply(f->p, U, "a@x.com", ch, 2, &err), -1);
	/* the PCRE2 message is passed on */
	assert_non_null(strstr(err.msg, "subject_trigger"));
	assert_non_null(strstr(err.msg, "missing closing parenthesis"));
	expect_user(f->p, "a@x.com", "subject_trigger", "[encrypt]", POLICY_LEVEL_FACTORY);
	/* as a plain keyword the same text is fine */
	ptest_set(f->p, U, "a@x.com", "subject_trigger", ch[0].value);
	/* turning regex mode on afterwards is checked against the saved trigger */
	assert_int_equal(ptest_set_err(f->p, U, "a@x.com", "subject_trigger_is_regex", "true",
		&err), -1);
	assert_non_null(strstr(err.msg, "missing closing parenthesis"));
	expect_user(f->p, "a@x.com", "subject_trigger_is_regex", "false",
		POLICY_LEVEL_FACTORY);
	ch[0].value = "(?i)(\\[secure\\]|\\[encrypt\\])";
	assert_int_equal(policy_object_apply(f->p, U, "a@x.com", ch, 2, &err), 0);
	/* header triggers: bad regex refused */
	assert_int_equal(ptest_set_err(f->p, G, NULL, "force_encrypt_trigger", "X-E:(", &err),
		-1);
	assert_non_null(strstr(err.msg, "force_encrypt_trigger"));
}

/* a change through one connection is seen by a resolver on another one */
static void test_cache_generation(void **state)
{
	struct ptest_fx *f = *state;
	struct store *db2 = ptest_open2(f);
	struct policy *p2 = policy_new(db2, NULL);
	uint64_t hits, misses;

	expect_user(p2, "a@x.com", "locality", "external", POLICY_LEVEL_FACTORY);
	expect_user(p2, "a@x.com", "locality", "external", POLICY_LEVEL_FACTORY);
	policy_cache_stats(p2, &hits, &misses);
	assert_true(hits >= 3);  /* second resolve came from the cache */
	ptest_set(f->p, D, "x.com", "locality", "internal");
	expect_user(p2, "a@x.com", "locality", "internal", POLICY_LEVEL_DOMAIN);
	ptest_set(f->p, D, "*.x.com", "locality", "external");
	assert_int_equal(policy_object_delete(f->p, D, "x.com", NULL), 0);
	expect_user(p2, "a@x.com", "locality", "external", POLICY_LEVEL_WILDCARD);
	policy_free(&p2);
	store_close(&db2);
}

static void test_server_secret_from_init(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_props *pp = NULL;
	struct sg_error err;
	enum policy_level lvl;
	const char *v;
	char *stored = NULL;

	assert_int_equal(store_setting_get(f->db, "server_secret", &stored, &err), 1);
	assert_int_equal(policy_resolve_global(f->p, &pp, &err), 0);
	v = policy_props_get(pp, POLICY_P_SERVER_SECRET, &lvl);
	assert_non_null(v);
	assert_string_equal(v, stored);
	assert_int_equal(lvl, POLICY_LEVEL_FACTORY);
	policy_props_free(&pp);
	free(stored);
	assert_int_equal(ptest_set_err(f->p, U, "a@x.com", "server_secret",
		"0123456789abcdef0123", &err), -1);
	ptest_set(f->p, G, NULL, "server_secret", "0123456789abcdef0123");
	assert_int_equal(policy_resolve_global(f->p, &pp, &err), 0);
	assert_string_equal(policy_props_get(pp, POLICY_P_SERVER_SECRET, &lvl),
		"0123456789abcdef0123");
	assert_int_equal(lvl, POLICY_LEVEL_GLOBAL);
	policy_props_free(&pp);
}

static void test_resolve_domain(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_props *pp = NULL;
	struct sg_error err;
	enum policy_level lvl;

	ptest_set(f->p, G, NULL, "smime_strict", "true");
	ptest_set(f->p, D, "*.example.com", "locality", "internal");
	ptest_set(f->p, D, "a.example.com", "pdf_max_size", "1k");
	assert_int_equal(policy_resolve_domain(f->p, "A.example.com", &pp, &err), 0);
	assert_string_equal(policy_props_get(pp, POLICY_P_LOCALITY, &lvl), "internal");
	assert_int_equal(lvl, POLICY_LEVEL_WILDCARD);
	assert_string_equal(policy_props_owner(pp, lvl), "*.example.com");
	assert_string_equal(policy_props_get(pp, POLICY_P_PDF_MAX_SIZE, &lvl), "1024");
	assert_int_equal(lvl, POLICY_LEVEL_DOMAIN);
	assert_string_equal(policy_props_get(pp, POLICY_P_SMIME_STRICT, &lvl), "true");
	assert_int_equal(lvl, POLICY_LEVEL_GLOBAL);
	policy_props_free(&pp);
	assert_int_equal(policy_resolve_domain(f->p, "*.example.com", &pp, &err), 0);
	assert_string_equal(policy_props_get(pp, POLICY_P_PDF_MAX_SIZE, &lvl), "26214400");
	assert_int_equal(lvl, POLICY_LEVEL_FACTORY);
	policy_props_free(&pp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_user_add_exists_delete, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_domain_delete_with_users, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_list_search_paging, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_inheritance_levels, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_user_inherits, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_wildcard_matching, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_wildcard_existing_without_props_wins,
			ptest_setup, ptest_teardown),
		cmocka_unit_test_setup_teardown(test_set_refusals, ptest_setup, ptest_teardown),
		cmocka_unit_test_setup_teardown(test_subject_regex_refused_when_saved,
			ptest_setup, ptest_teardown),
		cmocka_unit_test_setup_teardown(test_cache_generation, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_server_secret_from_init, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_domain, ptest_setup,
			ptest_teardown),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests_name(ptest_is_pg() ? "policy_store_pg" :
		"policy_store_sqlite", tests, ptest_group_setup, ptest_group_teardown);
	g_mime_shutdown();
	return rc;
}
