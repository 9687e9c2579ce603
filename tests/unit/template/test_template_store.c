/*
 * test_template_store.c - F-TPL-1: stored templates with user <- domain <-
 * wildcard <- global <- factory inheritance, global-only templates, save
 * validation, reset, listing, owner strings; run on SQLite and (with
 * POLICY_TEST_PG) on PostgreSQL, using the policy tests' database fixture.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../policy/policy_test.h"
#include "template/template.h"

static const char *text_at(const char *level)
{
	static char buf[512];

	snprintf(buf, sizeof(buf),
		"From: ${from}\nTo: ${to}\nSubject: [%s] ${subject}\n\nFailed: ${reason}\n", level);
	return buf;
}

static void save(struct store *db, enum template_id id, const char *owner, const char *text)
{
	struct sg_error err;

	if (template_save(db, id, owner, text, strlen(text), &err) < 0)
		fail_msg("save %s: %s", owner, err.msg);
}

/* expect_level - load for email's chain; check the level, owner and text. */
static void expect_level(struct ptest_fx *f, const char *email, enum template_id id,
	enum policy_level level, const char *owner, const char *text)
{
	struct policy_props *pp = NULL;
	struct template_src *src = NULL;
	struct sg_error err;

	if (policy_resolve_user(f->p, email, &pp, &err) < 0)
		fail_msg("resolve %s: %s", email, err.msg);
	if (template_load_props(f->db, id, pp, &src, &err) < 0)
		fail_msg("load: %s", err.msg);
	if (src->level != level)
		fail_msg("%s: got level %s want %s", email, policy_level_name(src->level),
			policy_level_name(level));
	assert_string_equal(src->owner, owner);
	assert_string_equal(src->text, text);
	if (level == POLICY_LEVEL_FACTORY)
		assert_int_equal(src->updated, 0);
	else
		assert_true(src->updated > 0);
	template_src_free(&src);
	policy_props_free(&pp);
}

static void test_inheritance_each_level(void **state)
{
	struct ptest_fx *f = *state;
	const char *factory = template_def(TEMPLATE_ENCRYPTION_FAILED)->factory;
	const enum template_id id = TEMPLATE_ENCRYPTION_FAILED;
	struct sg_error err;
	char g[512], w[512], d[512], u[512];

	assert_int_equal(policy_object_add(f->p, POLICY_KIND_DOMAIN, "*.example.com", &err), 0);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_FACTORY, "", factory);
	snprintf(g, sizeof(g), "%s", text_at("global"));
	save(f->db, id, "global", g);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_GLOBAL, "global", g);
	snprintf(w, sizeof(w), "%s", text_at("wildcard"));
	save(f->db, id, "wildcard:*.example.com", w);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_WILDCARD,
		"wildcard:*.example.com", w);
	snprintf(d, sizeof(d), "%s", text_at("domain"));
	save(f->db, id, "domain:sub.example.com", d);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_DOMAIN, "domain:sub.example.com",
		d);
	snprintf(u, sizeof(u), "%s", text_at("user"));
	save(f->db, id, "user:alice@sub.example.com", u);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_USER,
		"user:alice@sub.example.com", u);
	/* neighbours see only what applies to them */
	expect_level(f, "bob@sub.example.com", id, POLICY_LEVEL_DOMAIN, "domain:sub.example.com",
		d);
	expect_level(f, "carol@other.example.com", id, POLICY_LEVEL_WILDCARD,
		"wildcard:*.example.com", w);
	expect_level(f, "dave@example.org", id, POLICY_LEVEL_GLOBAL, "global", g);
	/* other templates are untouched */
	expect_level(f, "alice@sub.example.com", TEMPLATE_DLP_BLOCK, POLICY_LEVEL_FACTORY, "",
		template_def(TEMPLATE_DLP_BLOCK)->factory);
	/* saving again replaces */
	save(f->db, id, "global", text_at("global2"));
	expect_level(f, "dave@example.org", id, POLICY_LEVEL_GLOBAL, "global", text_at("global2"));
	snprintf(g, sizeof(g), "%s", text_at("global2"));
	/* reset walks back up one level at a time */
	assert_int_equal(template_reset(f->db, id, "user:alice@sub.example.com", &err), 1);
	assert_int_equal(template_reset(f->db, id, "user:alice@sub.example.com", &err), 0);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_DOMAIN, "domain:sub.example.com",
		d);
	assert_int_equal(template_reset(f->db, id, "domain:sub.example.com", &err), 1);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_WILDCARD,
		"wildcard:*.example.com", w);
	assert_int_equal(template_reset(f->db, id, "wildcard:*.example.com", &err), 1);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_GLOBAL, "global", g);
	assert_int_equal(template_reset(f->db, id, "global", &err), 1);
	expect_level(f, "alice@sub.example.com", id, POLICY_LEVEL_FACTORY, "", factory);
}

/* An explicit chain (as the CLI and callers without props pass it). */
static void test_load_explicit_chain(void **state)
{
	struct ptest_fx *f = *state;
	const char *owners[] = {"user:a@x.example", "domain:x.example", "global"};
	struct template_src *src;
	struct sg_error err;

	save(f->db, TEMPLATE_ENCRYPTION_FAILED, "domain:x.example", text_at("d"));
	assert_int_equal(template_load(f->db, TEMPLATE_ENCRYPTION_FAILED, owners, 3, &src, &err),
		0);
	assert_int_equal(src->level, POLICY_LEVEL_DOMAIN);
	assert_int_equal(src->id, TEMPLATE_ENCRYPTION_FAILED);
	template_src_free(&src);
	/* no owners: global only */
	assert_int_equal(template_load(f->db, TEMPLATE_ENCRYPTION_FAILED, NULL, 0, &src, &err), 0);
	assert_int_equal(src->level, POLICY_LEVEL_FACTORY);
	template_src_free(&src);
	owners[1] = "nonsense";
	assert_int_equal(template_load(f->db, TEMPLATE_ENCRYPTION_FAILED, owners, 3, &src, &err),
		-1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(src);
}

static void test_global_only(void **state)
{
	struct ptest_fx *f = *state;
	const char *sms = "PFX password for ${email}: ${password}";
	struct sg_error err;
	struct store_stmt *st;

	assert_int_equal(template_save(f->db, TEMPLATE_SMS_PFX_PASSWORD, "domain:example.com", sms,
		strlen(sms), &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_non_null(strstr(err.msg, "only be set at the global level"));
	assert_int_equal(template_reset(f->db, TEMPLATE_PFX_EMAIL, "user:a@example.com", &err),
		-1);
	save(f->db, TEMPLATE_SMS_PFX_PASSWORD, "global", sms);
	/* a row below global (written behind the API's back) is ignored */
	st = store_prepare(f->db, "INSERT INTO template (owner, name, body, updated) VALUES "
		"('user:a@example.com', 'sms_pfx_password', 'x', 1)", &err);
	assert_non_null(st);
	assert_int_equal(store_stmt_step(st, &err), 0);
	store_stmt_free(&st);
	expect_level(f, "a@example.com", TEMPLATE_SMS_PFX_PASSWORD, POLICY_LEVEL_GLOBAL, "global",
		sms);
}

static void test_save_validates(void **state)
{
	struct ptest_fx *f = *state;
	const char *bad = "From: ${from}\nTo: ${to}\nSubject: ${nope}\n\nx\n";
	struct sg_error err;

	assert_int_equal(template_save(f->db, TEMPLATE_ENCRYPTION_FAILED, "global", bad,
		strlen(bad), &err), -1);
	assert_int_equal(err.code, SG_E_PARSE);
	assert_non_null(strstr(err.msg, "line 3, column 10: unknown variable 'nope'"));
	expect_level(f, "a@example.com", TEMPLATE_ENCRYPTION_FAILED, POLICY_LEVEL_FACTORY, "",
		template_def(TEMPLATE_ENCRYPTION_FAILED)->factory);
	assert_int_equal(template_save(f->db, TEMPLATE_ENCRYPTION_FAILED, "bogus", text_at("x"),
		10, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

static void test_owner_strings(void **state)
{
	static const struct {
		enum policy_kind kind;
		const char *name;
		const char *want;  /* NULL: refused */
	} cases[] = {
		{POLICY_KIND_USER, "Alice@Example.COM", "user:alice@example.com"},
		{POLICY_KIND_DOMAIN, "Example.COM.", "domain:example.com"},
		{POLICY_KIND_DOMAIN, "*.Example.com", "wildcard:*.example.com"},
		{POLICY_KIND_GLOBAL, NULL, "global"},
		{POLICY_KIND_USER, "not an address", NULL},
		{POLICY_KIND_DOMAIN, "bad..domain", NULL},
		{POLICY_KIND_USER, NULL, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[POLICY_OWNER_MAX];
		struct sg_error err;
		int rc = template_owner(cases[i].kind, cases[i].name, out, sizeof(out), &err);

		if (cases[i].want == NULL) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(out, cases[i].want);
	}
}

static void test_list_stored(void **state)
{
	struct ptest_fx *f = *state;
	struct template_stored *items;
	struct sg_error err;
	size_t n;

	save(f->db, TEMPLATE_ENCRYPTION_FAILED, "global", text_at("g"));
	save(f->db, TEMPLATE_ENCRYPTION_FAILED, "domain:example.com", text_at("d"));
	save(f->db, TEMPLATE_SMS_PASSWORD, "domain:example.com", "pw ${password}");
	assert_int_equal(template_list_stored(f->db, NULL, 0, &items, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(items[0].id, TEMPLATE_ENCRYPTION_FAILED);
	assert_string_equal(items[0].owner, "domain:example.com");
	assert_string_equal(items[1].owner, "global");
	assert_int_equal(items[2].id, TEMPLATE_SMS_PASSWORD);
	template_stored_free(items, n);
	assert_int_equal(template_list_stored(f->db, "domain:example.com", 0, &items, &n, &err), 0);
	assert_int_equal(n, 2);
	template_stored_free(items, n);
	assert_int_equal(template_list_stored(f->db, NULL, 1, &items, &n, &err), 0);
	assert_int_equal(n, 1);
	template_stored_free(items, n);
}

/* What the S/MIME and PDF stages do: load for the sender, render. */
static void test_load_and_render(void **state)
{
	struct ptest_fx *f = *state;
	struct template_var v[] = {{"subject", "Budget"}, {"to", "alice@example.com"},
		{"from", "postmaster@example.com"}, {"reason", "no certificate"}};
	struct policy_props *pp;
	struct template_src *src;
	struct mime_msg *m;
	struct sg_error err;

	save(f->db, TEMPLATE_ENCRYPTION_FAILED, "domain:example.com", text_at("ACME"));
	assert_int_equal(policy_resolve_user(f->p, "alice@example.com", &pp, &err), 0);
	assert_int_equal(template_load_props(f->db, TEMPLATE_ENCRYPTION_FAILED, pp, &src, &err), 0);
	assert_int_equal(template_render_mail(src->id, src->text, v, 4, NULL, &m, &err), 0);
	assert_string_equal(g_mime_message_get_subject(mime_msg_get0_gmime(m)), "[ACME] Budget");
	mime_msg_free(&m);
	template_src_free(&src);
	policy_props_free(&pp);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, ptest_setup, ptest_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_inheritance_each_level),
		T(test_load_explicit_chain),
		T(test_global_only),
		T(test_save_validates),
		cmocka_unit_test(test_owner_strings),
		T(test_list_stored),
		T(test_load_and_render),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, ptest_group_setup, ptest_group_teardown);
	g_mime_shutdown();
	return rc;
}
