/*
 * test_smtp_data.c - the DATA scanner (smtp_data.c): end marker, dot
 * unstuffing, bare LF/CR, NUL counting, Received: counting, line lengths,
 * and that the result does not depend on how the input is split into chunks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_int.h"

struct scan_result {
	char out[4096];
	size_t outlen;
	size_t consumed;
	struct smtp_data_scan sc;
};

/* scan - feed in in pieces of step bytes (0 = all at once). */
static void scan(const char *in, size_t len, size_t step, struct scan_result *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_scan_init(&r->sc);
	while (off < len && !r->sc.done) {
		size_t n = step == 0 || len - off < step ? len - off : step;
		char tmp[2 * 4096 + 4];
		size_t olen = 0;
		size_t used = smtp_data_scan_feed(&r->sc, in + off, n, tmp, &olen);

		assert_true(r->outlen + olen <= sizeof(r->out));
		memcpy(r->out + r->outlen, tmp, olen);
		r->outlen += olen;
		off += used;
		if (used < n)
			assert_true(r->sc.done);
	}
	r->consumed = off;
}

static void test_table(void **state)
{
	static const struct {
		const char *name;
		const char *in;
		const char *want;       /* message bytes */
		bool done;
		size_t rest;            /* bytes left after the end marker */
	} cases[] = {
		{"simple", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", true, 0},
		{"empty message", ".\r\n", "", true, 0},
		{"pipelined rest", "x\r\n.\r\nQUIT\r\n", "x\r\n", true, 6},
		{"unstuff", "..a\r\n..\r\n.b\r\n.\r\n", ".a\r\n.\r\nb\r\n", true, 0},
		{"bare LF normalised", "a\nb\r\n.\r\n", "a\r\nb\r\n", true, 0},
		{"CRLF needed before the end", "a\n.\r\n", "a\r\n\r\n", false, 0},
		{"LF.LF is content", "a\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n", true, 0},
		{"LF.CRLF after bare LF is content", "a\n.\r\nb\r\n.\r\n",
			"a\r\n\r\nb\r\n", true, 0},
		{"CRLF.LF is content", "a\r\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n", true, 0},
		{"bare CR kept", "a\rb\r\n.\r\n", "a\rb\r\n", true, 0},
		{"CR CR LF", "a\r\r\n.\r\n", "a\r\r\n", true, 0},
		{".CR x", ".\rx\r\n.\r\n", "\rx\r\n", true, 0},
		{"not finished", "a\r\n.", "a\r\n", false, 0},
		{"dot inside", "a.b\r\n.\r\n", "a.b\r\n", true, 0},
	};
	size_t i, step;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (step = 0; step <= 3; step++) {
			struct scan_result r;
			size_t len = strlen(cases[i].in);

			scan(cases[i].in, len, step, &r);
			if (r.sc.done != cases[i].done)
				fail_msg("%s (step %zu): done got %d want %d", cases[i].name, step,
					r.sc.done, cases[i].done);
			if (r.outlen != strlen(cases[i].want) ||
				memcmp(r.out, cases[i].want, r.outlen) != 0)
				fail_msg("%s (step %zu): output differs (len %zu want %zu)",
					cases[i].name, step, r.outlen, strlen(cases[i].want));
			if (cases[i].done && len - r.consumed != cases[i].rest)
				fail_msg("%s (step %zu): rest got %zu want %zu", cases[i].name, step,
					len - r.consumed, cases[i].rest);
		}
	}
}

static void test_counts(void **state)
{
	static const char in[] = "Received: a\r\nReceived : b\r\nreceived:\tc\r\n"
		"X-Received: no\r\nReceivedX: no\r\n Received: continuation\r\n"
		"Subject: \0nul\r\n\r\nReceived: in body\r\na\0\0b\nc\r\n.\r\n";
	struct scan_result r;

	(void)state;
	scan(in, sizeof(in) - 1, 0, &r);
	assert_true(r.sc.done);
	assert_int_equal(r.sc.received, 3);
	assert_int_equal(r.sc.nul_bytes, 3);
	assert_int_equal(r.sc.bare_lf, 1);
	assert_int_equal(r.sc.long_lines, 0);
}

/* scan_discard - like scan, in 4 KiB pieces, output discarded (long input). */
static void scan_discard(const char *in, size_t len, struct scan_result *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_scan_init(&r->sc);
	while (off < len && !r->sc.done) {
		size_t n = len - off < 4096 ? len - off : 4096;
		char tmp[2 * 4096 + 4];
		size_t olen = 0;

		off += smtp_data_scan_feed(&r->sc, in + off, n, tmp, &olen);
	}
	r->consumed = off;
}

static void test_line_length(void **state)
{
	const size_t max = SMTP_TEXT_LINE_MAX;   /* octets incl. CRLF */
	size_t len = max + 16;
	char *in = malloc(len);
	struct scan_result r;

	(void)state;
	assert_non_null(in);
	/* 999 + CRLF (over RFC 5321's 1000): accepted, real mail has such lines */
	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	scan(in, 1004, 7, &r);
	assert_true(r.sc.done);
	assert_int_equal(r.sc.long_lines, 0);
	/* max - 2 + CRLF: ok */
	memset(in, 'x', max - 2);
	memcpy(in + max - 2, "\r\n.\r\n", 5);
	scan_discard(in, max + 3, &r);
	assert_true(r.sc.done);
	assert_int_equal(r.sc.long_lines, 0);
	/* max - 1 + CRLF: too long */
	memset(in, 'x', max - 1);
	memcpy(in + max - 1, "\r\n.\r\n", 5);
	scan_discard(in, max + 4, &r);
	assert_true(r.sc.done);
	assert_int_equal(r.sc.long_lines, 1);
	/* dot-stuffed max - 2: the stuffing dot does not count */
	in[0] = '.';
	memset(in + 1, 'x', max - 2);
	memcpy(in + max - 1, "\r\n.\r\n", 5);
	scan_discard(in, max + 4, &r);
	assert_int_equal(r.sc.long_lines, 0);
	free(in);
}

/* A long stream through a small output buffer: O(1) state, any chunking. */
static void test_chunking_equivalence(void **state)
{
	static const char in[] = "H: v\r\n..dot\r\nbare\nlf\r\ncr\rx\r\n.\n"
		"..\r\nend\r\n.\r\nNEXT";
	struct scan_result whole, bytewise;
	size_t step;

	(void)state;
	scan(in, sizeof(in) - 1, 0, &whole);
	for (step = 1; step < sizeof(in); step++) {
		scan(in, sizeof(in) - 1, step, &bytewise);
		assert_int_equal(bytewise.outlen, whole.outlen);
		assert_memory_equal(bytewise.out, whole.out, whole.outlen);
		assert_int_equal(bytewise.consumed, whole.consumed);
	}
	assert_int_equal(sizeof(in) - 1 - whole.consumed, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_chunking_equivalence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
