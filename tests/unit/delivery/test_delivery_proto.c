/* test_delivery_proto.c - the connection-less SMTP pieces of the delivery
 * client (delivery_proto.c): reply parser (multi-line, enhanced codes,
 * limits, malformed lines), EHLO extension parser, dot-stuffing across chunk
 * boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "delivery/delivery_int.h"

/* ------------------------------------------------------------ reply parser */

static void test_reply_parse(void **state)
{
	struct delivery_reply r;
	struct sg_error err;
	char sum[256], enh[16];

	(void)state;
	delivery_reply_init(&r);
	assert_int_equal(delivery_reply_feed(&r, "250-first", 9, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "250-SIZE 100", 12, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "250 PIPELINING", 14, &err), 1);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 3);
	delivery_reply_summary(&r, sum, sizeof(sum));
	assert_string_equal(sum, "250 first SIZE 100 PIPELINING");

	assert_int_equal(delivery_reply_feed(&r, "550 5.1.1 <x@y>: unknown", 24, &err), 1);
	assert_string_equal(r.enh, "5.1.1");
	assert_string_equal(delivery_reply_enh(&r, enh, sizeof(enh)), "5.1.1");
	assert_int_equal(delivery_reply_feed(&r, "451 try later", 13, &err), 1);
	assert_string_equal(r.enh, "");
	assert_string_equal(delivery_reply_enh(&r, enh, sizeof(enh)), "4.0.0");
	/* enhanced code of another class is not taken */
	assert_int_equal(delivery_reply_feed(&r, "450 5.1.1 mixed", 15, &err), 1);
	assert_string_equal(r.enh, "");
	assert_int_equal(delivery_reply_feed(&r, "220", 3, &err), 1);
	assert_int_equal(r.code, 220);
	delivery_reply_deinit(&r);
}

static void test_reply_bad(void **state)
{
	static const char *const bad[] = {"hello", "25", "199 x", "600 x", "2x0 x", "250x"};
	struct delivery_reply r;
	struct sg_error err;
	char longline[DELIVERY_REPLY_LINE_MAX + 10];
	size_t i;

	(void)state;
	delivery_reply_init(&r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		delivery_reply_reset(&r);
		if (delivery_reply_feed(&r, bad[i], strlen(bad[i]), &err) != -1)
			fail_msg("'%s': accepted, want rejected", bad[i]);
		assert_int_equal(err.code, SG_E_PARSE);
	}
	delivery_reply_reset(&r);
	assert_int_equal(delivery_reply_feed(&r, "250-a", 5, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "251 b", 5, &err), -1);
	delivery_reply_reset(&r);
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "250 ", 4);
	assert_int_equal(delivery_reply_feed(&r, longline, sizeof(longline), &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	delivery_reply_reset(&r);
	for (i = 0; i < DELIVERY_REPLY_LINES_MAX; i++)
		assert_int_equal(delivery_reply_feed(&r, "250-x", 5, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "250 x", 5, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	delivery_reply_deinit(&r);
}

static void test_caps_parse(void **state)
{
	static const char *const lines[] = {"250-stub.test", "250-PIPELINING",
		"250-SIZE 1000", "250-STARTTLS", "250-AUTH LOGIN PLAIN CRAM-MD5", "250-8BITMIME",
		"250-DSN", "250 SMTPUTF8"};
	struct delivery_reply r;
	struct delivery_caps caps;
	struct sg_error err;
	size_t i;

	(void)state;
	delivery_reply_init(&r);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		delivery_reply_feed(&r, lines[i], strlen(lines[i]), &err);
	delivery_caps_parse(&r, &caps);
	assert_int_equal(caps.ext, DELIVERY_EXT_PIPELINING | DELIVERY_EXT_SIZE |
		DELIVERY_EXT_STARTTLS | DELIVERY_EXT_AUTH_LOGIN | DELIVERY_EXT_AUTH_PLAIN |
		DELIVERY_EXT_8BITMIME | DELIVERY_EXT_DSN | DELIVERY_EXT_SMTPUTF8);
	assert_int_equal(caps.size_max, 1000);
	/* The greeting line never counts as an extension. */
	delivery_reply_reset(&r);
	delivery_reply_feed(&r, "250-STARTTLS", 12, &err);
	delivery_reply_feed(&r, "250 AUTH LOGIN", 14, &err);
	delivery_caps_parse(&r, &caps);
	assert_int_equal(caps.ext, DELIVERY_EXT_AUTH_LOGIN);
	delivery_reply_deinit(&r);
}

/* ----------------------------------------------------------- dot-stuffing */

static void test_dot_stuff(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{".x\r\n", "..x\r\n.\r\n"},
		{"a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
		{"bare\nlf\n", "bare\r\nlf\r\n.\r\n"},
		{"cr\rin line\r\n", "cr\rin line\r\n.\r\n"},
		{"no eol", "no eol\r\n.\r\n"},
		{"", ".\r\n"},
		{"end cr\r", "end cr\r\n.\r\n"},
		{"a.b\r\n..\r\n", "a.b\r\n...\r\n.\r\n"},
	};
	char out[256];
	size_t i, split;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);

		/* every split point: state carries across chunk boundaries */
		for (split = 0; split <= len; split++) {
			unsigned st = 0;
			size_t n = delivery_dot_stuff(&st, cases[i].in, split, out);

			n += delivery_dot_stuff(&st, cases[i].in + split, len - split, out + n);
			n += delivery_dot_stuff_end(st, out + n);
			out[n] = '\0';
			if (strcmp(out, cases[i].want) != 0)
				fail_msg("case %zu split %zu: got '%s' want '%s'", i, split, out,
					cases[i].want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_parse),
		cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_caps_parse),
		cmocka_unit_test(test_dot_stuff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
