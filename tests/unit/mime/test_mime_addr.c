/* test_mime_addr.c - F-POL-3 identities: addresses from header values and
 * the originator fallbacks (From -> Sender -> envelope sender). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mime_test.h"

/* mime_addr_first on hostile and unusual header values. */
static void test_addr_first(void **state)
{
	static const struct {
		const char *name;
		const char *raw;
		const char *want; /* NULL = none */
	} cases[] = {
		{"plain", " a@b.example\n", "a@b.example"},
		{"display name", " Alice <alice@b.example>", "alice@b.example"},
		{"multiple -> first", "A <a@b.example>, C <c@d.example>", "a@b.example"},
		{"first unusable -> next", "noat, c@d.example", "c@d.example"},
		{"encoded-word name", " =?utf-8?q?J=C3=B6rg?= <j@x.example>", "j@x.example"},
		{"encoded-word as address", "=?utf-8?q?a=40evil.example?=", NULL},
		{"encoded-word name looks like addr",
			"=?utf-8?q?a=40evil.example?= <good@c.example>", "good@c.example"},
		{"quoted name with angle addr", "\"Evil <a@b>\" <real@c.example>",
			"real@c.example"},
		{"group", "grp: x@y.example, z@w.example;", "x@y.example"},
		{"empty group", "undisclosed-recipients:;", NULL},
		{"empty group then mailbox", "undisclosed-recipients:;, m@n.example",
			"m@n.example"},
		{"<<<", "<<<", NULL},
		{"no at", "noat", NULL},
		{"empty", "", NULL},
		{"angle only", "<>", NULL},
		{"at only", "@", NULL},
		{"no domain", "a@", NULL},
		{"unclosed angle", "Name <a@b.example", "a@b.example"},
		{"comments", "(comment) a@b.example (c2)", "a@b.example"},
		{"source route", "<@route:a@b.example>", "a@b.example"},
		{"address literal", "a@[192.0.2.1]", "a@[192.0.2.1]"},
		{"utf-8 local and IDN domain", "j\xc3\xb6rg@b\xc3\xbc" "cher.example",
			"j\xc3\xb6rg@xn--bcher-kva.example"},
		{"punycode kept", "x@xn--bcher-kva.example", "x@xn--bcher-kva.example"},
		{"invalid utf-8 name", "\xff\xfe <x@y.example>", "x@y.example"},
		{"invalid utf-8 address", "\xff\xfe@y.example", NULL},
		{"crlf folded", " Alice\r\n <alice@b.example>\r\n", "alice@b.example"},
		{"NULL", NULL, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = NULL;
		int rc = mime_addr_first(cases[i].raw, &got);

		if (cases[i].want == NULL) {
			if (rc != 0)
				fail_msg("%s: got rc %d (%s) want none", cases[i].name, rc, got);
			assert_null(got);
			continue;
		}
		if (rc != 1)
			fail_msg("%s: got rc %d want 1", cases[i].name, rc);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got %s want %s", cases[i].name, got, cases[i].want);
		free(got);
	}
}

/* F-POL-3: From, else Sender, else envelope sender, else none. */
static void test_originator(void **state)
{
	static const struct {
		const char *name;
		const char *msg;
		const char *env;
		enum mime_origin want_src;
		const char *want;
	} cases[] = {
		{"from", "From: A <a@from.example>\nSender: s@sender.example\n\nx\n",
			"e@env.example", MIME_ORIGIN_FROM, "a@from.example"},
		{"no from -> sender", "Sender: s@sender.example\nSubject: x\n\nx\n",
			"e@env.example", MIME_ORIGIN_SENDER, "s@sender.example"},
		{"malformed from -> sender", "From: <<<\nSender: s@sender.example\n\nx\n",
			"e@env.example", MIME_ORIGIN_SENDER, "s@sender.example"},
		{"no from no sender -> envelope", "Subject: x\n\nbody\n", "e@env.example",
			MIME_ORIGIN_ENVELOPE, "e@env.example"},
		{"from without @ -> envelope", "From: noat\n\nbody\n", "e@env.example",
			MIME_ORIGIN_ENVELOPE, "e@env.example"},
		{"nothing", "Subject: x\n\nbody\n", "", MIME_ORIGIN_NONE, ""},
		{"nothing, NULL envelope", "Subject: x\n\nbody\n", NULL, MIME_ORIGIN_NONE, ""},
		{"two From fields -> first", "From: a@first.example\nFrom: b@second.example\n\nx\n",
			"e@env.example", MIME_ORIGIN_FROM, "a@first.example"},
		{"multiple addresses -> first", "From: a@one.example, b@two.example\n\nx\n",
			NULL, MIME_ORIGIN_FROM, "a@one.example"},
		{"group syntax", "From: team: m@team.example;\n\nx\n", NULL, MIME_ORIGIN_FROM,
			"m@team.example"},
		{"encoded-word", "From: =?iso-8859-1?q?J=F6rg?= <j@x.example>\n\nx\n", NULL,
			MIME_ORIGIN_FROM, "j@x.example"},
		{"invalid utf-8 header", "From: \xc3\xa0\xa1\xff <u@x.example>\n\nx\n", NULL,
			MIME_ORIGIN_FROM, "u@x.example"},
		{"unclosed comment -> envelope", "From: \xc3( <u@x.example>\n\nx\n",
			"e@env.example", MIME_ORIGIN_ENVELOPE, "e@env.example"},
		{"no headers at all", "just a line of text\n", "e@env.example",
			MIME_ORIGIN_ENVELOPE, "e@env.example"},
		{"crlf", "From: Alice <alice@crlf.example>\r\n\r\nx\r\n", NULL, MIME_ORIGIN_FROM,
			"alice@crlf.example"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mime_msg *m = test_parse_str(cases[i].msg);
		char *got = NULL;
		enum mime_origin src = mime_msg_originator(m, cases[i].env, &got);

		if (src != cases[i].want_src)
			fail_msg("%s: got source %s want %s", cases[i].name, mime_origin_name(src),
				mime_origin_name(cases[i].want_src));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got %s want %s", cases[i].name, got, cases[i].want);
		free(got);
		mime_msg_free(&m);
	}
}

static void test_origin_names(void **state)
{
	(void)state;
	assert_string_equal(mime_origin_name(MIME_ORIGIN_FROM), "from");
	assert_string_equal(mime_origin_name(MIME_ORIGIN_SENDER), "sender");
	assert_string_equal(mime_origin_name(MIME_ORIGIN_ENVELOPE), "envelope");
	assert_string_equal(mime_origin_name(MIME_ORIGIN_NONE), "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_first),
		cmocka_unit_test(test_originator),
		cmocka_unit_test(test_origin_names),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
