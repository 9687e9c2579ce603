/*
 * test_policy_decide.c - policy_decide end to end on a SQLite store:
 * F-POL-6 encrypt-mode matrix (4x4 modes x triggers x certificate x PDF),
 * F-POL-3 originator fallbacks, F-POL-7/8 triggers, F-POL-5 internal
 * recipients, D-3 calendar, size limits and F-POL-9 grouping.
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

#include "policy_test.h"

#define U POLICY_KIND_USER
#define D POLICY_KIND_DOMAIN
#define G POLICY_KIND_GLOBAL

static const char *const modes[] = {"no_encryption", "allow", "mandatory", "force"};

/* ------------------------------------------------------------ test doubles */

struct envfx {
	int has_cert;  /* 1, 0 or -1 (error) */
	int can_pdf;
	unsigned cert_calls, pdf_calls;
};

static int env_cert(void *arg, const char *rcpt, const struct policy_props *rp,
	struct sg_error *err)
{
	struct envfx *e = arg;

	(void)rcpt;
	(void)rp;
	e->cert_calls++;
	if (e->has_cert < 0)
		sg_error_set(err, SG_E_STORE, "pki down");
	return e->has_cert;
}

static int env_pdf(void *arg, const char *rcpt, const struct policy_props *rp,
	struct sg_error *err)
{
	struct envfx *e = arg;

	(void)rcpt;
	(void)rp;
	(void)err;
	e->pdf_calls++;
	return e->can_pdf;
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

static struct policy_result *decide(struct policy *p, const struct policy_msg *msg,
	const char *rcpt, struct envfx *e)
{
	struct policy_env env = {env_cert, env_pdf, e};
	struct policy_result *r = NULL;
	struct sg_error err;
	const char *rcpts[1] = {rcpt};

	if (policy_decide(p, msg, rcpts, 1, &env, &r, &err) < 0)
		fail_msg("decide: %s", err.msg);
	return r;
}

/* ----------------------------------------------------------------- matrix */

/* F-POL-6 without triggers, [sender][recipient] */
static const enum policy_encrypt mode_table[4][4] = {
	/* recipient:  no_encryption      allow                mandatory            force */
	/* s no  */ {POLICY_ENC_NO, POLICY_ENC_NO, POLICY_ENC_BLOCKED, POLICY_ENC_REQUIRED},
	/* s allow */ {POLICY_ENC_NO, POLICY_ENC_IF_POSSIBLE, POLICY_ENC_REQUIRED,
		POLICY_ENC_REQUIRED},
	/* s mand */ {POLICY_ENC_BLOCKED, POLICY_ENC_REQUIRED, POLICY_ENC_REQUIRED,
		POLICY_ENC_REQUIRED},
	/* s force */ {POLICY_ENC_REQUIRED, POLICY_ENC_REQUIRED, POLICY_ENC_REQUIRED,
		POLICY_ENC_REQUIRED},
};

/* method by [encrypt][has cert][can pdf] */
static const enum policy_method method_table[4][2][2] = {
	[POLICY_ENC_NO] = {{POLICY_METHOD_PLAIN, POLICY_METHOD_PLAIN},
		{POLICY_METHOD_PLAIN, POLICY_METHOD_PLAIN}},
	[POLICY_ENC_IF_POSSIBLE] = {{POLICY_METHOD_PLAIN, POLICY_METHOD_PDF},
		{POLICY_METHOD_SMIME, POLICY_METHOD_SMIME}},
	[POLICY_ENC_REQUIRED] = {{POLICY_METHOD_NONE, POLICY_METHOD_PDF},
		{POLICY_METHOD_SMIME, POLICY_METHOD_SMIME}},
	[POLICY_ENC_BLOCKED] = {{POLICY_METHOD_NONE, POLICY_METHOD_NONE},
		{POLICY_METHOD_NONE, POLICY_METHOD_NONE}},
};

enum trig { T_NONE, T_SUBJECT, T_HEADER, T_HEADER_NOT_ALLOWED, T_DLP, T__N };
static const char *const trig_names[] = {"none", "subject", "header",
	"header-not-allowed", "dlp"};

static void test_encrypt_mode_matrix(void **state)
{
	struct ptest_fx *f = *state;
	char who[64];
	unsigned s, r, t, c, pdf, n = 0;

	ptest_set(f->p, G, NULL, "subject_trigger_enabled", "true");
	for (s = 0; s < 4; s++) {
		snprintf(who, sizeof(who), "s-%s@in.example", modes[s]);
		ptest_set(f->p, U, who, "encrypt_mode", modes[s]);
		snprintf(who, sizeof(who), "s-%s-fa@in.example", modes[s]);
		ptest_set(f->p, U, who, "encrypt_mode", modes[s]);
		ptest_set(f->p, U, who, "force_encrypt_allowed", "true");
		snprintf(who, sizeof(who), "r-%s@out.example", modes[s]);
		ptest_set(f->p, U, who, "encrypt_mode", modes[s]);
	}
	for (s = 0; s < 4; s++)
	for (r = 0; r < 4; r++)
	for (t = 0; t < T__N; t++)
	for (c = 0; c < 2; c++)
	for (pdf = 0; pdf < 2; pdf++) {
		char from[80], rcpt[80];
		struct hdrs h = {{"X-Sealgate-Encrypt"}, {"yes"}};
		struct policy_msg msg = {.from_header = from, .subject = "quarterly report",
			.size = 1000};
		struct envfx e = {(int)c, (int)pdf, 0, 0};
		struct policy_result *res;
		enum policy_encrypt want;
		enum policy_method want_m;
		const struct policy_decision *d;

		snprintf(from, sizeof(from), "Sender <s-%s%s@in.example>", modes[s],
			t == T_HEADER ? "-fa" : "");
		snprintf(rcpt, sizeof(rcpt), "r-%s@out.example", modes[r]);
		if (t == T_SUBJECT)
			msg.subject = "quarterly report [Encrypt]";
		if (t == T_HEADER || t == T_HEADER_NOT_ALLOWED) {
			msg.header_fn = hdr_fn;
			msg.header_arg = &h;
		}
		if (t == T_DLP)
			msg.flags |= POLICY_MSG_DLP_MUST_ENCRYPT;
		want = (t == T_NONE || t == T_HEADER_NOT_ALLOWED) ? mode_table[s][r] :
			POLICY_ENC_REQUIRED;
		want_m = method_table[want][c][pdf];
		res = decide(f->p, &msg, rcpt, &e);
		d = &res->rcpt[0];
		if (d->encrypt != want || d->method != want_m)
			fail_msg("sender %s recipient %s trigger %s cert %u pdf %u: got %s/%s "
				"want %s/%s", modes[s], modes[r], trig_names[t], c, pdf,
				policy_encrypt_name(d->encrypt), policy_method_name(d->method),
				policy_encrypt_name(want), policy_method_name(want_m));
		assert_false(d->is_internal);
		/* fail closed: nothing goes out => the sender hears about it */
		assert_int_equal(!!(d->flags & POLICY_D_NOTIFY_FAILED),
			want_m == POLICY_METHOD_NONE);
		assert_int_equal(res->is_subject_triggered, t == T_SUBJECT);
		assert_int_equal(res->is_header_encrypt_triggered, t == T_HEADER);
		/* the trigger header is removed only when the sender may use it */
		if (t == T_HEADER)
			assert_string_equal(res->remove_headers[0], "X-Sealgate-Encrypt");
		else
			assert_null(res->remove_headers[0]);
		if (t == T_SUBJECT)
			assert_string_equal(d->subject, "quarterly report");
		else
			assert_null(d->subject);
		/* certificates/PDF are only asked for when encryption may happen */
		if (want == POLICY_ENC_NO || want == POLICY_ENC_BLOCKED)
			assert_int_equal(e.cert_calls + e.pdf_calls, 0);
		policy_result_free(&res);
		n++;
	}
	assert_int_equal(n, 4 * 4 * T__N * 2 * 2);
}

/* --------------------------------------------------------------- identity */

static void test_originator_fallbacks(void **state)
{
	struct ptest_fx *f = *state;
	static const struct {
		const char *from, *sender, *env, *want;
		enum policy_origin origin;
	} cases[] = {
		{"Alice <Alice@Example.com>", "b@x.com", "c@x.com", "alice@example.com",
			POLICY_ORIG_FROM},
		{NULL, "Bob <b@x.com>", "c@x.com", "b@x.com", POLICY_ORIG_SENDER},
		{NULL, NULL, "C@X.com", "c@x.com", POLICY_ORIG_ENVELOPE},
		{NULL, NULL, "", "", POLICY_ORIG_NONE},
		{NULL, NULL, NULL, "", POLICY_ORIG_NONE},
		/* several From mailboxes: the first counts */
		{"a@x.com, b@y.com", "s@z.com", NULL, "a@x.com", POLICY_ORIG_FROM},
		/* malformed From: as if absent */
		{"<<<>>>", "s@z.com", NULL, "s@z.com", POLICY_ORIG_SENDER},
		{"undisclosed-recipients:;", NULL, "e@z.com", "e@z.com", POLICY_ORIG_ENVELOPE},
		{"no address here", "", "e@z.com", "e@z.com", POLICY_ORIG_ENVELOPE},
		{"", "", "bad address", "", POLICY_ORIG_NONE},
		/* a display name that looks like an address is not the address */
		{"\"boss@corp.com\" <mallory@evil.example>", NULL, NULL,
			"mallory@evil.example", POLICY_ORIG_FROM},
		{"=?utf-8?q?J=C3=B6rg?= <joerg@b\xc3\xbc" "cher.example>", NULL, NULL,
			"joerg@xn--bcher-kva.example", POLICY_ORIG_FROM},
		{"team: x@y.com, z@y.com;", NULL, NULL, "x@y.com", POLICY_ORIG_FROM},
		{"Folded\r\n <folded@x.com>", NULL, NULL, "folded@x.com", POLICY_ORIG_FROM},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_msg msg = {.from_header = cases[i].from,
			.sender_header = cases[i].sender, .envelope_sender = cases[i].env};
		struct envfx e = {0, 0, 0, 0};
		struct policy_result *res = decide(f->p, &msg, "r@out.example", &e);

		if (strcmp(res->originator, cases[i].want) != 0 || res->origin != cases[i].origin)
			fail_msg("case %zu: got '%s' (%s) want '%s' (%s)", i, res->originator,
				policy_origin_name(res->origin), cases[i].want,
				policy_origin_name(cases[i].origin));
		policy_result_free(&res);
	}
}

/* the From header, not the envelope sender, picks the sender's policy */
static void test_sender_policy_from_header(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_msg msg = {.from_header = "boss@in.example",
		.envelope_sender = "bounces@in.example"};
	struct envfx e = {0, 0, 0, 0};
	struct policy_result *res;

	ptest_set(f->p, U, "boss@in.example", "encrypt_mode", "mandatory");
	ptest_set(f->p, U, "nope@out.example", "encrypt_mode", "no_encryption");
	res = decide(f->p, &msg, "Nope@Out.Example", &e);
	assert_string_equal(res->rcpt[0].recipient, "nope@out.example");
	assert_int_equal(res->rcpt[0].encrypt, POLICY_ENC_BLOCKED);
	assert_true(res->rcpt[0].why & POLICY_WHY_SENDER_MANDATORY);
	assert_true(res->rcpt[0].why & POLICY_WHY_RECIPIENT_NO_ENCRYPTION);
	policy_result_free(&res);
	msg.from_header = NULL;
	msg.envelope_sender = "other@in.example";
	res = decide(f->p, &msg, "nope@out.example", &e);
	assert_int_equal(res->rcpt[0].encrypt, POLICY_ENC_NO);
	policy_result_free(&res);
}

/* --------------------------------------------------------------- triggers */

static void test_subject_trigger_regex_and_phone(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_change ch[] = {
		{"subject_trigger", "(?i)(\\[secure\\]|\\[encrypt\\])"},
		{"subject_trigger_is_regex", "true"},
		{"subject_trigger_enabled", "true"},
		{"sms_phone_number_in_subject_allowed", "true"},
		{"sms_default_country_code", "+31"},
	};
	struct sg_error err;
	struct policy_msg msg = {.from_header = "a@in.example"};
	struct envfx e = {0, 1, 0, 0};
	struct policy_result *res;

	assert_int_equal(policy_object_apply(f->p, D, "in.example", ch, 5, &err), 0);
	msg.subject = "Your statement [SECURE] 06-123 456 78";
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_true(res->is_subject_triggered);
	assert_string_equal(res->phone, "+31612345678");
	assert_string_equal(res->subject_out, "Your statement");
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_PDF);
	policy_result_free(&res);
	/* a number before the trigger is not a number after it */
	msg.subject = "+31123456 call me [encrypt]";
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_true(res->is_subject_triggered);
	assert_string_equal(res->phone, "");
	assert_string_equal(res->subject_out, "+31123456 call me");
	policy_result_free(&res);
	/* remove_match off: subject untouched */
	ptest_set(f->p, D, "in.example", "subject_trigger_remove_match", "false");
	msg.subject = "x [encrypt] +31-(123)456";
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_true(res->is_subject_triggered);
	assert_string_equal(res->phone, "+31123456");
	assert_null(res->subject_out);
	assert_null(res->rcpt[0].subject);
	policy_result_free(&res);
	/* disabled: nothing fires */
	ptest_set(f->p, D, "in.example", "subject_trigger_enabled", "false");
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_false(res->is_subject_triggered);
	assert_int_equal(res->rcpt[0].encrypt, POLICY_ENC_IF_POSSIBLE);
	policy_result_free(&res);
}

static void test_header_triggers(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_change ch[] = {
		{"force_encrypt_allowed", "true"},
		{"force_encrypt_trigger", "X-Secure:(?i)^\\s*true\\s*$"},
		{"force_signing_allowed", "true"},
		{"force_signing_trigger", "X-Sign"},
		{"smime_only_sign_when_encrypt", "true"},
		{"encrypt_mode", "no_encryption"},
	};
	struct sg_error err;
	struct hdrs h = {{"x-secure", "X-SECURE", "x-sign"}, {"false", " TRUE ", "whatever"}};
	struct policy_msg msg = {.from_header = "app@in.example", .header_fn = hdr_fn,
		.header_arg = &h};
	struct envfx e = {1, 0, 0, 0};
	struct policy_result *res;

	assert_int_equal(policy_object_apply(f->p, U, "app@in.example", ch, 6, &err), 0);
	/* the second occurrence matches the value regex */
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_true(res->is_header_encrypt_triggered);
	assert_true(res->is_header_sign_triggered);
	assert_int_equal(res->rcpt[0].encrypt, POLICY_ENC_REQUIRED);
	assert_true(res->rcpt[0].why & POLICY_WHY_HEADER_TRIGGER);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_SMIME);
	assert_true(res->rcpt[0].flags & POLICY_D_SIGN_FORCED);
	assert_string_equal(res->remove_headers[0], "X-Secure");
	assert_string_equal(res->remove_headers[1], "X-Sign");
	policy_result_free(&res);
	/* no occurrence matches: not triggered, header still removed; the force
	 * sign trigger overrides "only sign when encrypt" for a plain message */
	h.values[1] = "nope";
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_false(res->is_header_encrypt_triggered);
	assert_string_equal(res->remove_headers[0], "X-Secure");
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_PLAIN);
	assert_int_equal(res->rcpt[0].sign, POLICY_SIGN_YES);
	assert_true(res->rcpt[0].flags & POLICY_D_SIGN_OUTPUT);
	policy_result_free(&res);
	/* without the sign header: only-sign-when-encrypt keeps plain mail unsigned */
	h.names[2] = NULL;
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_false(res->is_header_sign_triggered);
	assert_int_equal(res->rcpt[0].sign, POLICY_SIGN_WHEN_ENCRYPTED);
	assert_false(res->rcpt[0].flags & POLICY_D_SIGN_OUTPUT);
	policy_result_free(&res);
	/* "HEADER:*." from the reference guide means any value */
	ptest_set(f->p, U, "app@in.example", "force_encrypt_trigger", "x-secure:*.");
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_true(res->is_header_encrypt_triggered);
	policy_result_free(&res);
}

/* --------------------------------------------------- internal, calendar, size */

static void test_internal_recipient(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_msg msg = {.from_header = "x@ext.example",
		.subject = "Re: hello [decrypted] [signed]"};
	struct envfx e = {1, 1, 0, 0};
	struct policy_result *res;
	const struct policy_decision *d;

	ptest_set(f->p, D, "corp.example", "locality", "internal");
	ptest_set(f->p, D, "corp.example", "subject_filter_enabled", "true");
	ptest_set(f->p, U, "archive@corp.example", "smime_strict", "true");
	ptest_set(f->p, G, NULL, "encrypt_mode", "force");
	res = decide(f->p, &msg, "archive@corp.example", &e);
	d = &res->rcpt[0];
	assert_true(d->is_internal);
	assert_int_equal(d->method, POLICY_METHOD_DECRYPT);
	assert_int_equal(d->encrypt, POLICY_ENC_NO);
	assert_true(d->flags & POLICY_D_DECRYPT_STRICT);
	assert_true(d->flags & POLICY_D_SUBJECT_FILTER);
	/* the factory filter strips the spoofable tags, repeatedly */
	assert_string_equal(d->subject, "Re: hello");
	assert_int_equal(e.cert_calls + e.pdf_calls, 0);
	policy_result_free(&res);
	/* a trigger that fired is gone from the filtered subject too */
	ptest_set(f->p, G, NULL, "subject_trigger_enabled", "true");
	ptest_set(f->p, G, NULL, "subject_trigger", "[encrypt]");
	msg.subject = "Re: hello [encrypt] [signed]";
	res = decide(f->p, &msg, "archive@corp.example", &e);
	assert_true(res->is_subject_triggered);
	assert_string_equal(res->rcpt[0].subject, "Re: hello");
	policy_result_free(&res);
}

static void test_calendar_and_size(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_msg msg = {.from_header = "a@in.example",
		.flags = POLICY_MSG_CALENDAR, .size = 100};
	struct envfx e = {1, 1, 0, 0};
	struct policy_result *res;

	/* D-3: allow/allow calendar -> skipped, not signed */
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_int_equal(res->rcpt[0].encrypt, POLICY_ENC_NO);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_PLAIN);
	assert_true(res->rcpt[0].why & POLICY_WHY_CALENDAR_SKIP);
	assert_int_equal(res->rcpt[0].sign, POLICY_SIGN_NO);
	policy_result_free(&res);
	/* required encryption is never skipped */
	ptest_set(f->p, U, "m@out.example", "encrypt_mode", "mandatory");
	res = decide(f->p, &msg, "m@out.example", &e);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_SMIME);
	assert_false(res->rcpt[0].why & POLICY_WHY_CALENDAR_SKIP);
	policy_result_free(&res);
	/* too big for S/MIME (smaller limit wins), small enough for PDF */
	msg.flags = 0;
	msg.size = 5000;
	ptest_set(f->p, U, "a@in.example", "smime_max_size", "100000");
	ptest_set(f->p, U, "m@out.example", "smime_max_size", "4k");
	res = decide(f->p, &msg, "m@out.example", &e);
	assert_int_equal(res->rcpt[0].smime_max_size, 4096);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_PDF);
	assert_true(res->rcpt[0].why & POLICY_WHY_TOO_BIG);
	policy_result_free(&res);
	/* and too big for PDF as well: required + impossible -> nothing goes out */
	ptest_set(f->p, G, NULL, "pdf_max_size", "1k");
	res = decide(f->p, &msg, "m@out.example", &e);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_NONE);
	assert_true(res->rcpt[0].flags & POLICY_D_NOTIFY_FAILED);
	policy_result_free(&res);
}

static void test_combination_rules(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_msg msg = {.from_header = "a@in.example", .size = 10};
	struct envfx e = {1, 1, 0, 0};
	struct policy_result *res;

	/* *_allowed must hold on both sides */
	ptest_set(f->p, U, "a@in.example", "smime_allowed", "false");
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_PDF);
	assert_int_equal(e.cert_calls, 0);
	policy_result_free(&res);
	/* pdf_only_if_mandatory on either side: allow/allow gets no PDF */
	ptest_set(f->p, U, "r@out.example", "pdf_only_if_mandatory", "true");
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_PLAIN);
	policy_result_free(&res);
	ptest_set(f->p, U, "r@out.example", "encrypt_mode", "mandatory");
	ptest_set(f->p, U, "a@in.example", "encryption_notification", "true");
	ptest_set(f->p, U, "a@in.example", "password_send_to_originator", "true");
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_PDF);
	assert_true(res->rcpt[0].flags & POLICY_D_NOTIFY_ENCRYPTED);
	assert_true(res->rcpt[0].flags & POLICY_D_PASSWORDS_TO_ORIGINATOR);
	policy_result_free(&res);
	/* algorithms come from the recipient */
	ptest_set(f->p, U, "a@in.example", "smime_allowed", "true");
	ptest_set(f->p, U, "a@in.example", "smime_encryption_algorithm", "3des");
	ptest_set(f->p, U, "r@out.example", "smime_encryption_algorithm", "aes128-gcm");
	res = decide(f->p, &msg, "r@out.example", &e);
	assert_int_equal(res->rcpt[0].method, POLICY_METHOD_SMIME);
	assert_string_equal(res->rcpt[0].enc_alg, "aes128-gcm");
	policy_result_free(&res);
}

static void test_grouping(void **state)
{
	struct ptest_fx *f = *state;
	const char *rcpts[] = {"s1@smime.example", "p1@pdf.example", "s2@smime.example",
		"p2@pdf.example", "i1@corp.example", "i2@corp.example", "g@gcm.example",
		"plain@plain.example"};
	struct policy_msg msg = {.from_header = "a@in.example", .size = 10};
	struct envfx e = {0, 0, 0, 0};
	size_t groups[8], n;
	struct policy_result *res = NULL;
	struct sg_error err;
	struct policy_env env = {NULL, NULL, &e};

	(void)env;
	ptest_set(f->p, D, "corp.example", "locality", "internal");
	ptest_set(f->p, D, "pdf.example", "smime_allowed", "false");
	ptest_set(f->p, D, "plain.example", "smime_allowed", "false");
	ptest_set(f->p, D, "plain.example", "pdf_encryption_allowed", "false");
	ptest_set(f->p, D, "gcm.example", "smime_encryption_algorithm", "aes256-gcm");
	e.has_cert = 1;
	e.can_pdf = 1;
	{
		struct policy_env env2 = {env_cert, env_pdf, &e};

		assert_int_equal(policy_decide(f->p, &msg, rcpts, 8, &env2, &res, &err), 0);
	}
	n = policy_result_group(res, groups);
	/* s1+s2 | p1 | p2 | i1+i2 | g | plain */
	assert_int_equal(n, 6);
	assert_int_equal(groups[0], groups[2]);
	assert_int_not_equal(groups[1], groups[3]);
	assert_int_equal(groups[4], groups[5]);
	assert_int_not_equal(groups[6], groups[0]);
	assert_int_equal(res->rcpt[7].method, POLICY_METHOD_PLAIN);
	assert_int_equal(groups[0], 0);
	assert_int_equal(groups[7], 5);
	policy_result_free(&res);
}

static void test_errors_fail_closed(void **state)
{
	struct ptest_fx *f = *state;
	struct policy_msg msg = {.from_header = "a@in.example"};
	struct envfx e = {-1, 1, 0, 0};
	struct policy_env env = {env_cert, env_pdf, &e};
	struct policy_result *res = NULL;
	struct sg_error err;
	const char *bad[] = {"ok@out.example", "not-an-address"};

	/* a failing certificate lookup fails the whole decision */
	assert_int_equal(policy_decide(f->p, &msg, bad, 1, &env, &res, &err), -1);
	assert_null(res);
	assert_int_equal(err.code, SG_E_STORE);
	e.has_cert = 0;
	assert_int_equal(policy_decide(f->p, &msg, bad, 2, &env, &res, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_encrypt_mode_matrix, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_originator_fallbacks, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_sender_policy_from_header, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_subject_trigger_regex_and_phone,
			ptest_setup, ptest_teardown),
		cmocka_unit_test_setup_teardown(test_header_triggers, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_internal_recipient, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_calendar_and_size, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_combination_rules, ptest_setup,
			ptest_teardown),
		cmocka_unit_test_setup_teardown(test_grouping, ptest_setup, ptest_teardown),
		cmocka_unit_test_setup_teardown(test_errors_fail_closed, ptest_setup,
			ptest_teardown),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests_name("policy_decide", tests, ptest_group_setup,
		ptest_group_teardown);
	g_mime_shutdown();
	return rc;
}
