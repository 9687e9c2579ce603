/*
 * test_ca_csv.c - F-CA-6, guide App. G: the two examples of the guide, the
 * aliases, quoting, BOMs, limits and malformed files with errors naming the
 * line. Table-driven: {name, input, want rows | want error substring}.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"

/* the guide's App. G.1 examples, verbatim */
static const char guide1[] =
	"\"e\",\"org\",\"COMMONNAME\",\"fn\",\"surname\"\n"
	"\"test0@example.com\",\"organisation 0\",\"user 0\",\"first name 0\",\"last name 0\"\n"
	"\"test1@example.com\",\"organisation 1\",\"user 1\",\"first name 1\",\"last name 1\"\n";
static const char guide2[] =
	"e,cn\n"
	"testA1@example.com, cn1\n"
	"testA2@example.com, cn2\n";

static void test_guide_example_1(void **state)
{
	struct ca_csv csv;
	struct sg_error err;

	(void)state;
	assert_int_equal(ca_csv_parse(guide1, strlen(guide1), 0, &csv, &err), 0);
	assert_int_equal(csv.n, 2);
	assert_string_equal(csv.rows[0].email, "test0@example.com");
	assert_string_equal(csv.rows[0].org, "organisation 0");
	assert_string_equal(csv.rows[0].cn, "user 0");
	assert_string_equal(csv.rows[0].first_name, "first name 0");
	assert_string_equal(csv.rows[0].last_name, "last name 0");
	assert_int_equal(csv.rows[0].line, 2);
	assert_string_equal(csv.rows[1].last_name, "last name 1");
	assert_int_equal(csv.rows[1].line, 3);
	ca_csv_free(&csv);
}

static void test_guide_example_2(void **state)
{
	struct ca_csv csv;
	struct sg_error err;

	(void)state;
	assert_int_equal(ca_csv_parse(guide2, strlen(guide2), 0, &csv, &err), 0);
	assert_int_equal(csv.n, 2);
	assert_string_equal(csv.rows[0].email, "testA1@example.com");
	assert_string_equal(csv.rows[0].cn, "cn1");   /* unquoted values are trimmed */
	assert_null(csv.rows[0].org);
	assert_string_equal(csv.rows[1].cn, "cn2");
	ca_csv_free(&csv);
}

struct okcase {
	const char *name;
	const char *in;
	size_t len;          /* 0 = strlen */
	size_t rows;
	const char *cn0;     /* first row's common name */
	const char *org0;
};

static const struct okcase oks[] = {
	{"aliases upper/lower", "EMAIL,CommonName,O,GN,SN\r\na@x.com,A,Org,F,L\r\n", 0, 1,
		"A", "Org"},
	{"all long names", "email,organisation,commonname,firstname,lastname\n"
		"a@x.com,O,C,F,L\n", 0, 1, "C", "O"},
	{"givenname lastname ln", "e,cn,givenname,ln\na@x.com,C,F,L", 0, 1, "C", NULL},
	{"comma in quotes", "e,cn,org\na@x.com,\"Doe, John\",\"A, B and C\"\n", 0, 1,
		"Doe, John", "A, B and C"},
	{"doubled quote", "e,cn\na@x.com,\"say \"\"hi\"\"\"\n", 0, 1, "say \"hi\"", NULL},
	{"quoted keeps spaces", "e,cn\na@x.com,\"  x  \"\n", 0, 1, "  x  ", NULL},
	{"newline in quotes", "e,cn,org\na@x.com,C,\"two\nlines\"\n", 0, 0, NULL, NULL},
	{"empty lines skipped", "\n\ne,cn\n\na@x.com,C\n\n\nb@x.com,D\n", 0, 2, "C", NULL},
	{"no final newline", "e,cn\na@x.com,C", 0, 1, "C", NULL},
	{"CR only", "e,cn\ra@x.com,C\rb@x.com,D\r", 0, 2, "C", NULL},
	{"utf8 bom", "\xef\xbb\xbf" "e,cn\na@x.com,J\xc3\xbcrgen\n", 0, 1, "J\xc3\xbcrgen",
		NULL},
	{"utf16le bom", "\xff\xfe" "e\0,\0c\0n\0\n\0a\0@\0x\0.\0c\0o\0m\0,\0\xfc\0\n\0", 32,
		1, "\xc3\xbc", NULL},
	{"utf16be bom", "\xfe\xff" "\0e\0,\0c\0n\0\n\0a\0@\0x\0.\0c\0o\0m\0,\0\xfc\0\n", 32,
		1, "\xc3\xbc", NULL},
	{"empty optional value", "e,cn,org\na@x.com,C,\n", 0, 1, "C", ""},
};

/* "newline in quotes" is an error: control characters are not allowed in a
 * subject value, so rows == 0 there means "fails" (checked below). */
static void test_ok_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(oks) / sizeof(oks[0]); i++) {
		const struct okcase *c = &oks[i];
		struct ca_csv csv;
		struct sg_error err;
		size_t len = c->len ? c->len : strlen(c->in);
		int r = ca_csv_parse(c->in, len, 0, &csv, &err);

		if (c->rows == 0) {
			if (r != -1)
				fail_msg("%s: accepted", c->name);
			continue;
		}
		if (r != 0)
			fail_msg("%s: %s", c->name, err.msg);
		if (csv.n != c->rows)
			fail_msg("%s: got %zu rows want %zu", c->name, csv.n, c->rows);
		if (strcmp(csv.rows[0].cn, c->cn0) != 0)
			fail_msg("%s: got cn '%s' want '%s'", c->name, csv.rows[0].cn, c->cn0);
		if (c->org0 != NULL && (csv.rows[0].org == NULL ||
			strcmp(csv.rows[0].org, c->org0) != 0))
			fail_msg("%s: got org '%s' want '%s'", c->name,
				csv.rows[0].org ? csv.rows[0].org : "(null)", c->org0);
		ca_csv_free(&csv);
	}
}

struct badcase {
	const char *name;
	const char *in;
	size_t len;
	enum sg_errc code;
	const char *want;    /* substring of the message */
};

static const struct badcase bads[] = {
	{"unbalanced quotes", "e,cn\na@x.com,C\nb@x.com,\"open\nc@x.com,D\n", 0, SG_E_PARSE,
		"line 3: unbalanced quotes"},
	{"missing email column", "cn,org\nC,O\n", 0, SG_E_PARSE,
		"line 1: mandatory column EMAIL is missing"},
	{"missing cn column", "email,org\na@x.com,O\n", 0, SG_E_PARSE,
		"line 1: mandatory column COMMONNAME is missing"},
	{"unknown column", "e,cn,phone\na@x.com,C,1\n", 0, SG_E_PARSE,
		"line 1: unknown column 'phone'"},
	{"repeated column", "e,cn,email\na@x.com,C,b@x.com\n", 0, SG_E_PARSE,
		"column EMAIL given twice"},
	{"invalid email", "e,cn\na@x.com,A\nnot-an-email,B\n", 0, SG_E_PARSE,
		"line 3: invalid email address 'not-an-email'"},
	{"empty email", "e,cn\n,B\n", 0, SG_E_PARSE, "line 2: EMAIL is empty"},
	{"non-ascii email", "\xef\xbb\xbf" "e,cn\nj\xc3\xbcrgen@x.com,B\n", 0, SG_E_PARSE,
		"line 2: invalid email address"},
	{"comma in quoted email", "e,cn\n\"a,b@x.com\",B\n", 0, SG_E_PARSE,
		"line 2: invalid email address"},
	{"empty cn", "e,cn\na@x.com,  \n", 0, SG_E_PARSE, "line 2: COMMONNAME is empty"},
	{"too few values", "e,cn,org\na@x.com,C\n", 0, SG_E_PARSE,
		"line 2: 2 values, 3 columns expected"},
	{"too many values", "e,cn\na@x.com,C,X\n", 0, SG_E_PARSE,
		"line 2: 3 values, 2 columns expected"},
	{"text after quote", "e,cn\na@x.com,\"C\"x\n", 0, SG_E_PARSE,
		"line 2: text after a closing quote"},
	{"quote inside value", "e,cn\na@x.com,ab\"c\n", 0, SG_E_PARSE,
		"line 2: quote inside an unquoted value"},
	{"non-ascii without bom", "e,cn\na@x.com,J\xc3\xbcrgen\n", 0, SG_E_PARSE,
		"line 2: non-ASCII"},
	{"invalid utf8 with bom", "\xef\xbb\xbf" "e,cn\na@x.com,\xc3\x28\n", 0, SG_E_PARSE,
		"line 2: invalid UTF-8"},
	{"utf32 bom", "\xff\xfe\0\0e\0\0\0", 8, SG_E_PARSE, "UTF-32"},
	{"utf16 odd length", "\xff\xfe" "e\0,", 5, SG_E_PARSE, "odd number"},
	{"empty file", "", 0, SG_E_PARSE, "line 1: empty file"},
	{"header only", "e,cn\n", 0, SG_E_PARSE, "no requests"},
	{"nul byte", "e,cn\na@x.com,a\0b\n", 17, SG_E_PARSE, "line 2: NUL"},
};

static void test_bad_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct badcase *c = &bads[i];
		struct ca_csv csv;
		struct sg_error err;
		size_t len = c->len ? c->len : strlen(c->in);

		if (ca_csv_parse(c->in, len, 0, &csv, &err) != -1)
			fail_msg("%s: accepted", c->name);
		if (err.code != c->code || strstr(err.msg, c->want) == NULL)
			fail_msg("%s: got %s '%s' want %s '%s'", c->name, sg_errc_name(err.code),
				err.msg, sg_errc_name(c->code), c->want);
		assert_null(csv.rows);
	}
}

/* build "e,cn" + n rows; values of cn of length cnlen */
static char *gen(size_t n, size_t cnlen, size_t *len_r)
{
	size_t cap = 16 + n * (40 + cnlen), i, off;
	char *s = malloc(cap);

	assert_non_null(s);
	off = (size_t)snprintf(s, cap, "e,cn\n");
	for (i = 0; i < n; i++) {
		off += (size_t)snprintf(s + off, cap - off, "u%zu@example.com,", i);
		memset(s + off, 'c', cnlen);
		off += cnlen;
		s[off++] = '\n';
	}
	*len_r = off;
	return s;
}

/* limits: 10,000 rows pass, 10,001 fail naming line 10,002; 256 characters
 * pass, 257 fail; a configurable lower row limit */
static void test_limits(void **state)
{
	struct ca_csv csv;
	struct sg_error err;
	size_t len;
	char *s;

	(void)state;
	s = gen(10000, 8, &len);
	assert_int_equal(ca_csv_parse(s, len, 0, &csv, &err), 0);
	assert_int_equal(csv.n, 10000);
	assert_int_equal(csv.rows[9999].line, 10001);
	ca_csv_free(&csv);
	free(s);
	s = gen(10001, 8, &len);
	assert_int_equal(ca_csv_parse(s, len, 0, &csv, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_non_null(strstr(err.msg, "line 10002: more than 10000 requests"));
	free(s);
	s = gen(3, 8, &len);
	assert_int_equal(ca_csv_parse(s, len, 2, &csv, &err), -1);
	assert_non_null(strstr(err.msg, "line 4: more than 2 requests"));
	free(s);
	s = gen(1, 256, &len);
	assert_int_equal(ca_csv_parse(s, len, 0, &csv, &err), 0);
	assert_int_equal(strlen(csv.rows[0].cn), 256);
	ca_csv_free(&csv);
	free(s);
	s = gen(2, 257, &len);
	assert_int_equal(ca_csv_parse(s, len, 0, &csv, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_non_null(strstr(err.msg, "line 2: value 2 is longer than 256 characters"));
	free(s);
	/* 256 characters of 2-byte UTF-8 are fine (characters, not bytes) */
	{
		char buf[600];
		size_t off = (size_t)snprintf(buf, sizeof(buf), "\xef\xbb\xbf" "e,cn\na@x.com,");
		int i;

		for (i = 0; i < 256; i++) {
			buf[off++] = '\xc3';
			buf[off++] = '\xa9';
		}
		buf[off++] = '\n';
		assert_int_equal(ca_csv_parse(buf, off, 0, &csv, &err), 0);
		ca_csv_free(&csv);
		/* a quoted 257-character value fails as well */
		off = (size_t)snprintf(buf, sizeof(buf), "e,cn\na@x.com,\"");
		memset(buf + off, 'q', 257);
		off += 257;
		buf[off++] = '"';
		assert_int_equal(ca_csv_parse(buf, off, 0, &csv, &err), -1);
		assert_int_equal(err.code, SG_E_LIMIT);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guide_example_1),
		cmocka_unit_test(test_guide_example_2),
		cmocka_unit_test(test_ok_table),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
