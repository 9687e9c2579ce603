/*
 * test_policy_parse.c - the pure parts of the policy, table-driven: the
 * property catalogue and its validator (F-POL-4, SPEC §11), domain and
 * address normalisation (case, trailing dot, IDN), PCRE2 regexes with
 * Java-style flags, the subject trigger (F-POL-7), header triggers (F-POL-8),
 * the subject filter and the phone number after the trigger (guide §4.5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "policy/policy.h"

/* ---------------------------------------------------------------- catalogue */

static void test_catalogue_consistent(void **state)
{
	unsigned i, j;

	(void)state;
	for (i = 0; i < POLICY_P__COUNT; i++) {
		const struct policy_prop_def *d = policy_prop_def((enum policy_prop_id)i);
		enum policy_prop_id id;
		struct sg_error err;
		char *norm = NULL;

		assert_non_null(d->name);
		assert_int_equal(policy_prop_find(d->name, &id), 1);
		assert_int_equal(id, i);
		for (j = 0; j < i; j++)
			assert_string_not_equal(policy_prop_def((enum policy_prop_id)j)->name, d->name);
		/* every factory value passes its own validator, unchanged */
		if (d->def != NULL) {
			if (policy_prop_validate((enum policy_prop_id)i, d->def, POLICY_LEVEL_GLOBAL,
				&norm, &err) < 0)
				fail_msg("factory value of %s refused: %s", d->name, err.msg);
			assert_string_equal(norm, d->def);
			free(norm);
		}
		assert_true(d->max_len > 0);
		assert_non_null(d->help);
	}
	assert_null(policy_prop_def(POLICY_P__COUNT));
	assert_int_equal(policy_prop_find("Locality", &(enum policy_prop_id){0}), 0);
}

static void test_validate_table(void **state)
{
	static const struct {
		const char *prop, *in, *want;  /* want NULL: refused */
		enum policy_level level;
		const char *msg;               /* part of the error */
	} cases[] = {
		{"smime_allowed", "yes", "true", POLICY_LEVEL_USER, NULL},
		{"smime_allowed", "OFF", "false", POLICY_LEVEL_USER, NULL},
		{"smime_allowed", "maybe", NULL, POLICY_LEVEL_USER, "true or false"},
		{"encrypt_mode", "Mandatory", "mandatory", POLICY_LEVEL_DOMAIN, NULL},
		{"encrypt_mode", "always", NULL, POLICY_LEVEL_DOMAIN, "no_encryption, allow"},
		{"password_validity_minutes", "-1", "-1", POLICY_LEVEL_USER, NULL},
		{"password_validity_minutes", "-2", NULL, POLICY_LEVEL_USER, "-1 to"},
		{"password_length", "3", NULL, POLICY_LEVEL_USER, "from 4"},
		{"smime_max_size", "50M", "52428800", POLICY_LEVEL_USER, NULL},
		{"smime_max_size", " 1k ", "1024", POLICY_LEVEL_USER, NULL},
		{"smime_max_size", "0", NULL, POLICY_LEVEL_USER, "size"},
		{"smime_max_size", "", NULL, POLICY_LEVEL_USER, "use unset"},
		{"portal_base_url", "https://mail.example.com/web/portal", NULL,
			POLICY_LEVEL_USER, "global level"},
		{"portal_base_url", "https://mail.example.com/web/portal",
			"https://mail.example.com/web/portal", POLICY_LEVEL_GLOBAL, NULL},
		{"portal_base_url", "ftp://x", NULL, POLICY_LEVEL_GLOBAL, "http"},
		{"subject_filter", "/x/", NULL, POLICY_LEVEL_WILDCARD, "global level"},
		{"subject_filter", "/(/ y", NULL, POLICY_LEVEL_GLOBAL, "missing closing"},
		{"pdf_reply_sender", "Reply@Example.COM.", "reply@example.com",
			POLICY_LEVEL_USER, NULL},
		{"pdf_reply_sender", "reply", NULL, POLICY_LEVEL_USER, "pdf_reply_sender"},
		{"force_encrypt_trigger", "X-Encrypt:(?i)^\\s*true\\s*$",
			"X-Encrypt:(?i)^\\s*true\\s*$", POLICY_LEVEL_USER, NULL},
		{"force_encrypt_trigger", "X Bad:", NULL, POLICY_LEVEL_USER, "header name"},
		{"force_encrypt_trigger", "X-E:[a-", NULL, POLICY_LEVEL_USER,
			"missing terminating ]"},
		{"sms_phone_number", "+31 (6) 123-45678", "+31612345678", POLICY_LEVEL_USER, NULL},
		{"sms_phone_number", "0612345678", NULL, POLICY_LEVEL_USER, "international"},
		{"sms_default_country_code", "+31", "31", POLICY_LEVEL_GLOBAL, NULL},
		{"sms_default_country_code", "0031", NULL, POLICY_LEVEL_GLOBAL, "country"},
		{"password_date_set", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z",
			POLICY_LEVEL_USER, NULL},
		{"password_date_set", "0", "1970-01-01T00:00:00Z", POLICY_LEVEL_USER, NULL},
		{"password_date_set", "yesterday", NULL, POLICY_LEVEL_USER, "YYYY"},
		{"security_info_signed_by_tag", "[by %s]", "[by %s]", POLICY_LEVEL_GLOBAL, NULL},
		{"security_info_signed_by_tag", "[by %s %s]", NULL, POLICY_LEVEL_GLOBAL, "%s"},
		{"security_info_signed_by_tag", "[by %n]", NULL, POLICY_LEVEL_GLOBAL, "%s"},
		{"subject_trigger", "", NULL, POLICY_LEVEL_USER, "empty"},
		{"subject_trigger", "[Secure]", "[Secure]", POLICY_LEVEL_USER, NULL},
		{"subject_trigger", "a\x01" "b", NULL, POLICY_LEVEL_USER, "control"},
		{"subject_trigger", "\xff", NULL, POLICY_LEVEL_USER, "UTF-8"},
		{"portal_password", "hunter2", NULL, POLICY_LEVEL_USER, "Argon2id"},
		{"locality", "internal", NULL, POLICY_LEVEL_FACTORY, "read-only"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum policy_prop_id id;
		struct sg_error err;
		char *norm = NULL;
		int rc;

		assert_int_equal(policy_prop_find(cases[i].prop, &id), 1);
		memset(&err, 0, sizeof(err));
		rc = policy_prop_validate(id, cases[i].in, cases[i].level, &norm, &err);
		if (cases[i].want != NULL) {
			if (rc != 0)
				fail_msg("%s=%s: refused: %s", cases[i].prop, cases[i].in, err.msg);
			assert_string_equal(norm, cases[i].want);
		} else {
			if (rc != -1)
				fail_msg("%s=%s: accepted as '%s'", cases[i].prop, cases[i].in, norm);
			assert_null(norm);
			assert_int_equal(err.code, SG_E_INVAL);
			if (strstr(err.msg, cases[i].msg) == NULL)
				fail_msg("%s=%s: message '%s' lacks '%s'", cases[i].prop, cases[i].in,
					err.msg, cases[i].msg);
		}
		free(norm);
	}
}

/* a refused secret never appears in the message */
static void test_secret_not_in_error(void **state)
{
	static const char *const secrets[] = {"password", "otp_client_secret",
		"server_secret", "last_used_pfx_password", "portal_password"};
	char big[600];
	size_t i;

	(void)state;
	memset(big, 'S', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "TopSecret", 9);
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		enum policy_prop_id id;
		struct sg_error err;
		char *norm = NULL;

		assert_int_equal(policy_prop_find(secrets[i], &id), 1);
		assert_true(policy_prop_def(id)->flags & POLICY_PF_SECRET);
		assert_int_equal(policy_prop_validate(id, big, POLICY_LEVEL_GLOBAL, &norm, &err),
			-1);
		assert_null(strstr(err.msg, "TopSecret"));
	}
}

/* -------------------------------------------------------------------- names */

static void test_domain_normalize(void **state)
{
	static const struct {
		const char *in, *want;
		unsigned flags;
	} cases[] = {
		{"Example.COM", "example.com", 0},
		{"example.com.", "example.com", 0},
		{"*.Example.com.", "*.example.com", POLICY_DOM_ALLOW_WILDCARD},
		{"*.example.com", NULL, 0},
		{"bücher.example", "xn--bcher-kva.example", 0},
		{"BÜCHER.example", "xn--bcher-kva.example", 0},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", 0},
		{"*.münchen.de", "*.xn--mnchen-3ya.de", POLICY_DOM_ALLOW_WILDCARD},
		{"a..b", NULL, 0},
		{".a.b", NULL, 0},
		{"a.b..", NULL, 0},
		{"-a.b", NULL, 0},
		{"a b.c", NULL, 0},
		{"*", NULL, POLICY_DOM_ALLOW_WILDCARD},
		{"a.*.b", NULL, POLICY_DOM_ALLOW_WILDCARD},
		{"", NULL, 0},
		{"\xff.com", NULL, 0},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", NULL, 0},
		{"localhost", "localhost", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[POLICY_DOMAIN_MAX];
		struct sg_error err;
		int rc = policy_domain_normalize(cases[i].in, cases[i].flags, out, sizeof(out),
			&err);

		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("'%s' accepted as '%s'", cases[i].in, out);
		} else {
			if (rc != 0)
				fail_msg("'%s' refused: %s", cases[i].in, err.msg);
			assert_string_equal(out, cases[i].want);
		}
	}
}

static void test_addr_normalize(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"Alice@Example.COM", "alice@example.com"},
		{"alice@example.com.", "alice@example.com"},
		{"a.b+tag@x.org", "a.b+tag@x.org"},
		{"\"a b\"@x.org", "\"a b\"@x.org"},
		{"jörg@bücher.example", "jörg@xn--bcher-kva.example"},
		{"a@localhost", NULL},
		{"a@", NULL},
		{"@x.org", NULL},
		{"a..b@x.org", NULL},
		{".a@x.org", NULL},
		{"a b@x.org", NULL},
		{"noat", NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[POLICY_ADDR_MAX];
		int rc = policy_addr_normalize(cases[i].in, out, sizeof(out), NULL);

		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("'%s' accepted as '%s'", cases[i].in, out);
		} else {
			if (rc != 0)
				fail_msg("'%s' refused", cases[i].in);
			assert_string_equal(out, cases[i].want);
		}
	}
}

/* ----------------------------------------------------------------- regexes */

static void test_regex_java_flags(void **state)
{
	static const struct {
		const char *re, *subject;
		int want;  /* 1 match, 0 none, -1 refused */
	} cases[] = {
		{"(?i)(\\[secure\\]|\\[encrypt\\])", "Hello [ENCRYPT]", 1},
		{"(\\[secure\\]|\\[encrypt\\])", "Hello [ENCRYPT]", 0},
		{"(?iu)été", "ÉTÉ", 1},                /* (?u) dropped, (?i) kept */
		{"(?U)a+?b", "aaab", 1},               /* Java (?U) is not "ungreedy" */
		{"(?u)x", "x", 1},
		{"(?d:a)b", "ab", 1},
		{"[(?u)]", "u", 1},                    /* inside a class: untouched */
		{"\\Q(?u)\\E", "(?u)", 1},             /* quoted: untouched */
		{"\\w+", "日本", 1},                    /* Unicode classes */
		{"(?i)^\\s*true\\s*$", "  TRUE ", 1},
		{"(", "", -1},
		{"a{2,1}", "", -1},
		{"*.", "", -1},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		struct policy_regex *re = policy_regex_new(cases[i].re, 0, &err);
		int rc;

		if (cases[i].want < 0) {
			if (re != NULL)
				fail_msg("'%s' compiled", cases[i].re);
			assert_non_null(strstr(err.msg, "bad regular expression at offset"));
			continue;
		}
		if (re == NULL)
			fail_msg("'%s': %s", cases[i].re, err.msg);
		rc = policy_regex_find(re, cases[i].subject, strlen(cases[i].subject), 0, NULL,
			NULL, &err);
		if (rc != cases[i].want)
			fail_msg("'%s' on '%s': got %d want %d", cases[i].re, cases[i].subject, rc,
				cases[i].want);
		policy_regex_free(&re);
	}
}

static void test_regex_limits(void **state)
{
	char big[POLICY_REGEX_MAX + 2];
	char subj[64];
	struct sg_error err;
	struct policy_regex *re;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_null(policy_regex_new(big, 0, &err));
	/* catastrophic backtracking stops at the match limit: an error, not a hang */
	re = policy_regex_new("^(a+)+$", 0, &err);
	assert_non_null(re);
	memset(subj, 'a', 40);
	strcpy(subj + 40, "!");
	assert_int_equal(policy_regex_find(re, subj, strlen(subj), 0, NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	policy_regex_free(&re);
	/* invalid UTF-8 in the subject never matches, never fails */
	re = policy_regex_new("x", 0, &err);
	assert_int_equal(policy_regex_find(re, "\xff\xfe", 2, 0, NULL, NULL, &err), 0);
	assert_int_equal(policy_regex_find(re, "\xffx", 2, 0, NULL, NULL, &err), 1);
	policy_regex_free(&re);
}

static void test_subject_trigger(void **state)
{
	static const struct {
		const char *subject, *trigger;
		unsigned flags;
		int want;
		const char *out;   /* with POLICY_SUBJ_REMOVE */
		const char *tail;  /* text after the last match */
	} cases[] = {
		{"your bank statement [encrypt]", "[encrypt]", 2, 1, "your bank statement", ""},
		{"[Encrypt] hello", "[encrypt]", 2, 1, "hello", " hello"},
		{"a [encrypt] b [ENCRYPT] c", "[encrypt]", 2, 1, "a b c", " c"},
		{"nothing here", "[encrypt]", 2, 0, NULL, NULL},
		{"x.y", ".", 2, 1, "xy", "y"},                      /* keyword: no regex */
		{"x [secure] y", "(?i)\\[(secure|encrypt)\\]", 3, 1, "x y", " y"},
		{"[SECURE]", "\\[secure\\]", 3, 0, NULL, NULL},     /* regex is case-sensitive */
		{"x [encrypt] y", "[encrypt]", 0, 1, NULL, " y"},   /* fired, no removal */
		{"ab", "x*", 3, 1, "ab", ""},                       /* empty matches */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		char *out = NULL;
		size_t tail = 99;
		int rc = policy_subject_trigger(cases[i].subject, cases[i].trigger,
			cases[i].flags, &out, &tail, &err);

		if (rc != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, rc, cases[i].want);
		if (cases[i].out == NULL)
			assert_null(out);
		else if (out == NULL || strcmp(out, cases[i].out) != 0)
			fail_msg("case %zu: got '%s' want '%s'", i, out ? out : "(null)",
				cases[i].out);
		if (cases[i].tail != NULL)
			assert_string_equal(cases[i].subject + tail, cases[i].tail);
		free(out);
	}
	{
		struct sg_error err;
		char *out = NULL;

		assert_int_equal(policy_subject_trigger("x", "(", POLICY_SUBJ_REGEX, &out, NULL,
			&err), -1);
		assert_non_null(strstr(err.msg, "missing closing parenthesis"));
	}
}

static void test_phone_from_tail(void **state)
{
	static const struct {
		const char *tail, *cc, *want;  /* want NULL: no number */
	} cases[] = {
		{" +31123456", NULL, "+31123456"},
		{" +31-(123)456", NULL, "+31123456"},
		{"  0612345678 ", "31", "+31612345678"},
		{" 0031612345678", NULL, "+31612345678"},
		{" 0612345678", NULL, NULL},     /* national without a default code */
		{" 31=456", "31", NULL},
		{" +31 123", NULL, NULL},        /* too short */
		{" +1234567890123456", NULL, NULL},  /* too long */
		{" call +31123456", NULL, NULL},
		{"", "31", NULL},
		{" 612345678", "31", NULL},      /* neither international nor national */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[24];
		int rc = policy_phone_from_tail(cases[i].tail, cases[i].cc, out, sizeof(out));

		if (cases[i].want == NULL) {
			if (rc != 0)
				fail_msg("'%s': got '%s'", cases[i].tail, out);
		} else {
			if (rc != 1)
				fail_msg("'%s': no number", cases[i].tail);
			assert_string_equal(out, cases[i].want);
		}
	}
}

struct hdrs {
	const char *names[4];
	const char *values[4];
};

static const char *hdr_fn(void *arg, const char *name, size_t idx)
{
	struct hdrs *h = arg;
	size_t i, seen = 0;

	for (i = 0; i < 4 && h->names[i] != NULL; i++) {
		if (strcasecmp(h->names[i], name) == 0 && seen++ == idx)
			return h->values[i];
	}
	return NULL;
}

static void test_header_trigger(void **state)
{
	static const struct {
		const char *spec;
		const char *name;  /* NULL: refused */
		int want;          /* on the headers below */
	} cases[] = {
		{"X-Djigzo-Encrypt", "X-Djigzo-Encrypt", 1},
		{"X-Djigzo-Encrypt:", "X-Djigzo-Encrypt", 1},
		{"X-Djigzo-Encrypt:*.", "X-Djigzo-Encrypt", 1},
		{" x-djigzo-encrypt : (?i)^\\s*true\\s*$ ", "x-djigzo-encrypt", 1},
		{"X-Djigzo-Encrypt:^true$", "X-Djigzo-Encrypt", 0},  /* case-sensitive */
		{"X-Other", "X-Other", 0},
		{"X-Multi:second", "X-Multi", 1},                     /* any occurrence */
		{":abc", NULL, 0},
		{"", NULL, 0},
		{"X Y", NULL, 0},
		{"X-Y:(", NULL, 0},
	};
	struct hdrs h = {{"x-djigzo-encrypt", "X-Multi", "x-multi"},
		{" True ", "first", "the second one"}};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		struct policy_header_trigger *t = policy_header_trigger_parse(cases[i].spec, &err);

		if (cases[i].name == NULL) {
			if (t != NULL)
				fail_msg("'%s' accepted", cases[i].spec);
			assert_int_equal(err.code, SG_E_INVAL);
			continue;
		}
		if (t == NULL)
			fail_msg("'%s' refused: %s", cases[i].spec, err.msg);
		assert_string_equal(policy_header_trigger_name(t), cases[i].name);
		if (policy_header_trigger_match(t, hdr_fn, &h, &err) != cases[i].want)
			fail_msg("'%s': want %d", cases[i].spec, cases[i].want);
		assert_int_equal(policy_header_trigger_match(t, NULL, NULL, &err), 0);
		policy_header_trigger_free(&t);
	}
}

static void test_subject_filter(void **state)
{
	static const struct {
		const char *spec, *in, *want;  /* want NULL: unchanged */
	} cases[] = {
		{"/\\[(decrypted|signed|signed by:.*|invalid signature!)\\]$/",
			"Re: x [decrypted] [signed]", "Re: x"},
		{"/\\[(decrypted|signed|signed by:.*|invalid signature!)\\]$/",
			"Re: [signed] x", NULL},
		{"/foo/ bar", "a foo b foo", "a bar b bar"},
		{"/a\\/b/ X", "1 a/b 2", "1 X 2"},
		{"/(?i)spam/", "SPAM offer", "offer"},
	};
	static const char *const bad[] = {"foo", "/foo", "//", "/foo/bar", "/(/"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		struct policy_subject_filter *f = policy_subject_filter_parse(cases[i].spec, &err);
		char *out = NULL;
		int rc;

		if (f == NULL)
			fail_msg("'%s' refused: %s", cases[i].spec, err.msg);
		rc = policy_subject_filter_apply(f, cases[i].in, &out, &err);
		if (cases[i].want == NULL) {
			assert_int_equal(rc, 0);
			assert_null(out);
		} else {
			assert_int_equal(rc, 1);
			assert_string_equal(out, cases[i].want);
		}
		free(out);
		policy_subject_filter_free(&f);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sg_error err;

		if (policy_subject_filter_parse(bad[i], &err) != NULL)
			fail_msg("'%s' accepted", bad[i]);
	}
}

static void test_first_mailbox(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"Alice <ALICE@example.com>", "alice@example.com"},
		{"a@x.com, b@y.com", "a@x.com"},
		{"\"b@evil.example\" <good@x.com>", "good@x.com"},
		{"<<<", NULL},
		{"", NULL},
		{"group:;", NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[POLICY_ADDR_MAX];
		int rc = policy_addr_first_mailbox(cases[i].in, out, sizeof(out));

		if (cases[i].want == NULL) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, "");
		} else {
			if (rc != 1)
				fail_msg("'%s': none", cases[i].in);
			assert_string_equal(out, cases[i].want);
		}
	}
	assert_int_equal(policy_addr_first_mailbox(NULL, (char[8]){0}, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalogue_consistent),
		cmocka_unit_test(test_validate_table),
		cmocka_unit_test(test_secret_not_in_error),
		cmocka_unit_test(test_domain_normalize),
		cmocka_unit_test(test_addr_normalize),
		cmocka_unit_test(test_regex_java_flags),
		cmocka_unit_test(test_regex_limits),
		cmocka_unit_test(test_subject_trigger),
		cmocka_unit_test(test_phone_from_tail),
		cmocka_unit_test(test_header_trigger),
		cmocka_unit_test(test_subject_filter),
		cmocka_unit_test(test_first_mailbox),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests_name("policy_parse", tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
