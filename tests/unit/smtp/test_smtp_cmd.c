/*
 * test_smtp_cmd.c - the SMTP command parser (smtp_cmd.c), table-driven:
 * verbs, MAIL and RCPT paths and ESMTP parameters (SIZE, BODY, SMTPUTF8,
 * DSN RET/ENVID/NOTIFY/ORCPT), UTF-8 validation, HELO arguments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp/smtp_int.h"

static void test_verbs(void **state)
{
	static const struct {
		const char *line;
		enum smtp_verb want;
		const char *args;
	} cases[] = {
		{"EHLO x.example", SMTP_V_EHLO, "x.example"},
		{"ehlo x", SMTP_V_EHLO, "x"},
		{"HELO", SMTP_V_HELO, ""},
		{"MAIL FROM:<a@b>", SMTP_V_MAIL, "FROM:<a@b>"},
		{"rcpt TO:<a@b>", SMTP_V_RCPT, "TO:<a@b>"},
		{"DATA", SMTP_V_DATA, ""},
		{"RSET", SMTP_V_RSET, ""},
		{"NoOp", SMTP_V_NOOP, ""},
		{"QUIT", SMTP_V_QUIT, ""},
		{"VRFY x", SMTP_V_VRFY, "x"},
		{"EXPN x", SMTP_V_EXPN, "x"},
		{"HELP", SMTP_V_HELP, ""},
		{"STARTTLS", SMTP_V_STARTTLS, ""},
		{"AUTH PLAIN", SMTP_V_AUTH, "PLAIN"},
		{"BDAT 10", SMTP_V_BDAT, "10"},
		{"MAILFROM:<a@b>", SMTP_V_UNKNOWN, ""},
		{"DATAX", SMTP_V_UNKNOWN, ""},
		{"", SMTP_V_UNKNOWN, ""},
		{" DATA", SMTP_V_UNKNOWN, "DATA"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args = NULL;
		enum smtp_verb got = smtp_cmd_verb(cases[i].line, strlen(cases[i].line), &args);

		if (got != cases[i].want)
			fail_msg("%s: got verb %d want %d", cases[i].line, got, cases[i].want);
		if (cases[i].want != SMTP_V_UNKNOWN)
			assert_string_equal(args, cases[i].args);
	}
	assert_string_equal(smtp_verb_name(SMTP_V_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_V_UNKNOWN), "UNKNOWN");
}

static void test_mail(void **state)
{
	static const struct {
		const char *args;
		int want_code;          /* 0 = ok */
		const char *want_addr;
	} cases[] = {
		{"FROM:<a@b.example>", 0, "a@b.example"},
		{"from:<a@b.example>", 0, "a@b.example"},
		{"FROM: <a@b.example>", 0, "a@b.example"},
		{"FROM:<>", 0, ""},
		{"FROM:<@r1.example,@r2.example:a@b.example>", 0, "a@b.example"},
		{"FROM:<\"q u\"@b.example>", 0, "\"q u\"@b.example"},
		{"FROM:<a@[192.0.2.1]>", 0, "a@[192.0.2.1]"},
		{"FROM:<a@[IPv6:2001:db8::1]>", 0, "a@[IPv6:2001:db8::1]"},
		{"FROM:<a@b.example> SIZE=100 BODY=8BITMIME", 0, "a@b.example"},
		{"FROM:<a@b.example> BODY=7BIT", 0, "a@b.example"},
		{"FROM:a@b.example", 501, NULL},
		{"FROM:<a@b.example", 501, NULL},
		{"FROM:<a@>", 501, NULL},
		{"FROM:<@b.example>", 501, NULL},
		{"FROM:<a b@c.example>", 501, NULL},
		{"FROM:<a@-b.example>", 501, NULL},
		{"FROM:<a@b-.example>", 501, NULL},
		{"FROM:<a@[999.1.1.1]>", 501, NULL},
		{"FROM:<a@b.example>x", 501, NULL},
		{"TO:<a@b.example>", 501, NULL},
		{"", 501, NULL},
		{"FROM:<a@b.example> SIZE=", 501, NULL},
		{"FROM:<a@b.example> SIZE=12x", 501, NULL},
		{"FROM:<a@b.example> SIZE=1 SIZE=2", 501, NULL},
		{"FROM:<a@b.example> BODY=BINARYMIME", 501, NULL},
		{"FROM:<a@b.example> SMTPUTF8=yes", 501, NULL},
		{"FROM:<a@b.example> RET=ALL", 501, NULL},
		{"FROM:<a@b.example> ENVID=has=equals", 501, NULL},
		{"FROM:<a@b.example> ENVID=bad+zz", 501, NULL},
		{"FROM:<a@b.example> XFOO=1", 555, NULL},
		{"FROM:<a@b.example> AUTH=<>", 555, NULL},
		{"FROM:<j\xc3\xb6rg@b.example>", 553, NULL},
		{"FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", 0, "j\xc3\xb6rg@b.example"},
		{"FROM:<j\xc3@b.example> SMTPUTF8", 553, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_mail_args a;
		struct smtp_status st = {0, NULL, NULL};
		int rc = smtp_cmd_mail(cases[i].args, &a, &st);

		if (cases[i].want_code == 0) {
			if (rc != 0)
				fail_msg("%s: got %d %s want ok", cases[i].args, st.code, st.text);
			assert_string_equal(a.addr, cases[i].want_addr);
		} else if (rc != -1 || st.code != cases[i].want_code) {
			fail_msg("%s: got rc %d code %d want %d", cases[i].args, rc, st.code,
				cases[i].want_code);
		}
	}
}

static void test_mail_params_values(void **state)
{
	struct smtp_mail_args a;
	struct smtp_status st;
	char line[400];

	(void)state;
	assert_int_equal(smtp_cmd_mail("FROM:<a@b.example> SIZE=12345 BODY=8bitmime "
		"SMTPUTF8 RET=hdrs ENVID=abc+2Bd", &a, &st), 0);
	assert_true(a.has_size);
	assert_int_equal(a.size, 12345);
	assert_int_equal(a.body, SMTP_BODY_8BITMIME);
	assert_true(a.smtputf8);
	assert_int_equal(a.ret, SMTP_RET_HDRS);
	assert_string_equal(a.envid, "abc+2Bd");
	assert_int_equal(smtp_cmd_mail("FROM:<a@b.example> RET=FULL", &a, &st), 0);
	assert_int_equal(a.ret, SMTP_RET_FULL);
	assert_false(a.has_size);
	assert_int_equal(a.envid[0], '\0');
	/* a 20-digit SIZE is "over every limit", not an error */
	assert_int_equal(smtp_cmd_mail("FROM:<a@b.example> SIZE=99999999999999999999",
		&a, &st), 0);
	assert_int_equal(a.size, UINT64_MAX);
	assert_int_equal(smtp_cmd_mail("FROM:<a@b.example> SIZE=999999999999999999999",
		&a, &st), -1);
	/* ENVID longer than 100 */
	memset(line, 0, sizeof(line));
	strcpy(line, "FROM:<a@b.example> ENVID=");
	memset(line + strlen(line), 'e', 101);
	assert_int_equal(smtp_cmd_mail(line, &a, &st), -1);
	assert_int_equal(st.code, 501);
	/* local part over 64 octets */
	memset(line, 0, sizeof(line));
	strcpy(line, "FROM:<");
	memset(line + 6, 'l', 65);
	strcat(line, "@b.example>");
	assert_int_equal(smtp_cmd_mail(line, &a, &st), -1);
}

static void test_rcpt(void **state)
{
	static const struct {
		const char *args;
		bool utf8;
		int want_code;
		unsigned want_notify;
		const char *want_orcpt;
	} cases[] = {
		{"TO:<r@b.example>", false, 0, 0, ""},
		{"To: <r@b.example>", false, 0, 0, ""},
		{"TO:<r@b.example> NOTIFY=NEVER", false, 0, SMTP_NOTIFY_NEVER, ""},
		{"TO:<r@b.example> NOTIFY=success,failure,delay", false, 0,
			SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, ""},
		{"TO:<r@b.example> ORCPT=rfc822;r@b.example", false, 0, 0,
			"rfc822;r@b.example"},
		{"TO:<r@b.example> ORCPT=utf-8;r\xc3\xa9@b.example", true, 0, 0,
			"utf-8;r\xc3\xa9@b.example"},
		{"TO:<>", false, 501, 0, NULL},
		{"TO:<r@b.example> NOTIFY=", false, 501, 0, NULL},
		{"TO:<r@b.example> NOTIFY=NEVER,DELAY", false, 501, 0, NULL},
		{"TO:<r@b.example> NOTIFY=SUCCESS,SUCCESS", false, 501, 0, NULL},
		{"TO:<r@b.example> NOTIFY=SUCCESS,", false, 501, 0, NULL},
		{"TO:<r@b.example> NOTIFY=SOMETIMES", false, 501, 0, NULL},
		{"TO:<r@b.example> ORCPT=;x", false, 501, 0, NULL},
		{"TO:<r@b.example> ORCPT=rfc822;", false, 501, 0, NULL},
		{"TO:<r@b.example> ORCPT=rfc822;r\xc3\xa9@b.example", false, 501, 0, NULL},
		{"TO:<r@b.example> SIZE=1", false, 555, 0, NULL},
		{"TO:<r@b.example> NOTIFY=NEVER NOTIFY=NEVER", false, 501, 0, NULL},
		{"TO:<r\xc3\xa9@b.example>", false, 553, 0, NULL},
		{"TO:<r\xc3\xa9@b.example>", true, 0, 0, ""},
		{"TO:<r\xed\xa0\x80@b.example>", true, 553, 0, NULL},
		{"FROM:<r@b.example>", false, 501, 0, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_rcpt_args a;
		struct smtp_status st = {0, NULL, NULL};
		int rc = smtp_cmd_rcpt(cases[i].args, cases[i].utf8, &a, &st);

		if (cases[i].want_code == 0) {
			if (rc != 0)
				fail_msg("%s: got %d %s want ok", cases[i].args, st.code, st.text);
			assert_int_equal(a.notify, cases[i].want_notify);
			assert_string_equal(a.orcpt, cases[i].want_orcpt);
		} else if (rc != -1 || st.code != cases[i].want_code) {
			fail_msg("%s: got rc %d code %d want %d", cases[i].args, rc, st.code,
				cases[i].want_code);
		}
	}
}

static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		bool want;
	} cases[] = {
		{"plain", true},
		{"\xc3\xa9", true},
		{"\xe2\x82\xac", true},
		{"\xf0\x9f\x98\x80", true},
		{"\xc3", false},           /* truncated */
		{"\xc0\xaf", false},       /* overlong */
		{"\xe0\x80\xaf", false},   /* overlong */
		{"\xed\xa0\x80", false},   /* surrogate */
		{"\xf4\x90\x80\x80", false}, /* > U+10FFFF */
		{"\xff", false},
		{"\x80", false},
		{"a\xe2\x82", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = smtp_utf8_is_valid((const unsigned char *)cases[i].s,
			strlen(cases[i].s));

		if (got != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, got, cases[i].want);
	}
}

static void test_helo(void **state)
{
	char long_name[300];

	(void)state;
	assert_true(smtp_cmd_helo_ok("mx.example.org"));
	assert_true(smtp_cmd_helo_ok("[192.0.2.1]"));
	assert_false(smtp_cmd_helo_ok(""));
	assert_false(smtp_cmd_helo_ok("two words"));
	assert_false(smtp_cmd_helo_ok("tab\there"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(smtp_cmd_helo_ok(long_name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_mail_params_values),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
