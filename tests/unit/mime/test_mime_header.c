/* test_mime_header.c - top-level header get/set/remove (F-SMIME-5 stripping
 * of X-Sealgate-* relies on mime_msg_header_remove_prefix). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mime_test.h"

static const char msg_text[] =
	"From: Alice <alice@example.com>\n"
	"To: bob@example.net\n"
	"X-Sealgate-Info-Signed-0: True\n"
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
	"x-sealgate-info-encrypted-0: True\n"
	"Received: from a\n"
	"Received: from b\n"
	"X-SEALGATE-Marker: forged\n"
	"X-Sealgatex: not ours\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"X-Sealgate-Info-Body: this is body text, not a header\n";

static void test_header_get(void **state)
{
	struct mime_msg *m = test_parse_str(msg_text);

	(void)state;
	assert_string_equal(mime_msg_header_get(m, "subject"), "Gr\xc3\xbc\xc3\x9f" "e");
	assert_string_equal(mime_msg_header_get_raw(m, "Subject"),
		" =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n");
	assert_null(mime_msg_header_get(m, "Cc"));
	assert_null(mime_msg_header_get_raw(m, "Cc"));
	assert_int_equal(mime_msg_header_count(m, "received"), 2);
	assert_string_equal(mime_msg_header_get_nth(m, "RECEIVED", 0), "from a");
	assert_string_equal(mime_msg_header_get_nth(m, "received", 1), "from b");
	assert_null(mime_msg_header_get_nth(m, "received", 2));
	assert_string_equal(mime_msg_header_get_nth(m, "Subject", 0),
		"Gr\xc3\xbc\xc3\x9f" "e");
	assert_null(mime_msg_header_get_nth(m, "Cc", 0));
	assert_int_equal(mime_msg_header_count(m, "Cc"), 0);
	assert_false(mime_msg_is_modified(m));
	mime_msg_free(&m);
}

/* F-SMIME-5: every incoming X-Sealgate-* field goes, whatever its case; the
 * body and look-alike names stay. */
static void test_header_remove_prefix(void **state)
{
	struct mime_msg *m = test_parse_str(msg_text);
	char *out;

	(void)state;
	assert_int_equal(mime_msg_header_remove_prefix(m, "X-Sealgate-"), 3);
	assert_true(mime_msg_is_modified(m));
	out = test_serialise(m, NULL);
	assert_null(strstr(out, "X-Sealgate-Info-Signed"));
	assert_null(strstr(out, "x-sealgate-info-encrypted"));
	assert_null(strstr(out, "X-SEALGATE-Marker"));
	assert_non_null(strstr(out, "X-Sealgatex: not ours\n"));
	assert_non_null(strstr(out, "\n\nX-Sealgate-Info-Body: this is body text"));
	assert_non_null(strstr(out, "Received: from a\nReceived: from b\n"));
	free(out);
	assert_int_equal(mime_msg_header_remove_prefix(m, "X-Sealgate-"), 0);
	mime_msg_free(&m);
}

static void test_header_remove(void **state)
{
	struct mime_msg *m = test_parse_str(msg_text);
	char *out;

	(void)state;
	assert_int_equal(mime_msg_header_remove(m, "Cc"), 0);
	assert_false(mime_msg_is_modified(m));
	assert_int_equal(mime_msg_header_remove(m, "RECEIVED"), 2);
	assert_true(mime_msg_is_modified(m));
	assert_int_equal(mime_msg_header_count(m, "Received"), 0);
	out = test_serialise(m, NULL);
	assert_null(strstr(out, "Received:"));
	assert_non_null(strstr(out, "From: Alice <alice@example.com>\n"));
	free(out);
	mime_msg_free(&m);
}

static void test_header_set_append(void **state)
{
	struct mime_msg *m = test_parse_str(msg_text);
	struct sg_error err;
	char *out;

	(void)state;
	assert_int_equal(mime_msg_header_set(m, "Received", "from c", &err), 0);
	assert_int_equal(mime_msg_header_count(m, "Received"), 1);
	assert_string_equal(mime_msg_header_get(m, "Received"), "from c");
	assert_int_equal(mime_msg_header_set(m, "X-New", "v1", &err), 0);
	assert_int_equal(mime_msg_header_append(m, "X-New", "v2", &err), 0);
	assert_int_equal(mime_msg_header_count(m, "X-New"), 2);
	assert_int_equal(mime_msg_header_set(m, "Subject", "Gr\xc3\xbc\xc3\x9f" "e 2", &err), 0);
	out = test_serialise(m, NULL);
	assert_non_null(strstr(out, "X-New: v1\nX-New: v2\n"));
	/* non-ASCII values are written as RFC 2047 encoded-words */
	assert_null(strstr(out, "Gr\xc3\xbc"));
	assert_non_null(strstr(out, "Subject: =?"));
	free(out);
	mime_msg_free(&m);
}

/* Header injection and bad names are refused, nothing changes. */
static void test_header_bad(void **state)
{
	static const struct {
		const char *name;
		const char *value;
	} cases[] = {
		{"", "v"},
		{"Bad Name", "v"},
		{"Bad:Name", "v"},
		{"Bad\x7f", "v"},
		{"Caf\xc3\xa9", "v"},
		{"X-Ok", "a\r\nBcc: evil@example.com"},
		{"X-Ok", "a\nb"},
		{"X-Ok", NULL},
	};
	struct mime_msg *m = test_parse_str(msg_text);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;

		memset(&err, 0, sizeof(err));
		if (mime_msg_header_set(m, cases[i].name, cases[i].value, &err) != -1)
			fail_msg("case %zu: set accepted", i);
		assert_int_equal(err.code, SG_E_INVAL);
		if (mime_msg_header_append(m, cases[i].name, cases[i].value, &err) != -1)
			fail_msg("case %zu: append accepted", i);
	}
	assert_false(mime_msg_is_modified(m));
	assert_null(mime_msg_header_get(m, "Bcc"));
	mime_msg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_get),
		cmocka_unit_test(test_header_remove_prefix),
		cmocka_unit_test(test_header_remove),
		cmocka_unit_test(test_header_set_append),
		cmocka_unit_test(test_header_bad),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
