/* test_lib_util.c - helpers of lib/: buffers, parsing, host:port, addresses,
 * mail IDs, log escaping, durable files, error table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/lib.h"

static void test_buf_cap(void **state)
{
	struct sg_buf b;
	struct sg_error err;

	(void)state;
	sg_buf_init(&b, 8);
	assert_int_equal(sg_buf_append_str(&b, "12345678", &err), 0);
	assert_int_equal(sg_buf_append_str(&b, "9", &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_string_equal(b.data, "12345678");
	sg_buf_deinit(&b);
}

static void test_hostport(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *host;
		unsigned port;
		bool bracketed;
	} cases[] = {
		{"127.0.0.1:25", 0, "127.0.0.1", 25, false},
		{"[::1]:10025", 0, "::1", 10025, true},
		{"[relay.example]:587", 0, "relay.example", 587, true},
		{"relay.example", 0, "relay.example", 25, false},
		{"::1:25", -1, NULL, 0, false},
		{"host:0", -1, NULL, 0, false},
		{"host:abc", -1, NULL, 0, false},
		{"[::1", -1, NULL, 0, false},
		{"", -1, NULL, 0, false},
		{"a..b:25", -1, NULL, 0, false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_hostport hp;
		struct sg_error err;
		int rc = sg_hostport_parse(cases[i].in, 25, &hp, &err);

		if (rc != cases[i].rc)
			fail_msg("%s: got rc %d want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0) {
			assert_string_equal(hp.host, cases[i].host);
			assert_int_equal(hp.port, cases[i].port);
			assert_int_equal(hp.is_bracketed, cases[i].bracketed);
		}
	}
}

static void test_addr(void **state)
{
	(void)state;
	assert_true(sg_addr_is_valid("a@example.com"));
	assert_true(sg_addr_is_valid("\"x y\"@example.com") == false);
	assert_true(sg_addr_is_valid("user@[127.0.0.1]"));
	assert_false(sg_addr_is_valid("noat"));
	assert_false(sg_addr_is_valid("@example.com"));
	assert_false(sg_addr_is_valid("a@"));
	assert_false(sg_addr_is_valid("a b@example.com"));
	assert_false(sg_addr_is_valid("a@exa mple.com"));
	assert_string_equal(sg_addr_domain("a@b@example.com"), "example.com");
}

static void test_parse(void **state)
{
	uint64_t v;
	int64_t i;
	bool b;

	(void)state;
	assert_int_equal(sg_parse_size("10M", &v), 0);
	assert_int_equal(v, 10 * 1024 * 1024);
	assert_int_equal(sg_parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(sg_parse_size("x", &v), -1);
	assert_int_equal(sg_parse_size("-1", &v), -1);
	assert_int_equal(sg_parse_i64("-1", -1, 10, &i), 0);
	assert_int_equal(i, -1);
	assert_int_equal(sg_parse_i64("11", -1, 10, &i), -1);
	assert_int_equal(sg_parse_i64(" 1", -1, 10, &i), -1);
	assert_int_equal(sg_parse_u64("18446744073709551616", UINT64_MAX, &v), -1);
	assert_int_equal(sg_parse_bool("Yes", &b), 0);
	assert_true(b);
	assert_int_equal(sg_parse_bool("maybe", &b), -1);
}

static void test_mail_id(void **state)
{
	char a[SG_MAIL_ID_LEN + 1], b[SG_MAIL_ID_LEN + 1];

	(void)state;
	sg_mail_id_new(a);
	sg_mail_id_new(b);
	assert_true(sg_mail_id_is_valid(a));
	assert_string_not_equal(a, b);
	assert_false(sg_mail_id_is_valid("../../etc/passwd"));
	assert_false(sg_mail_id_is_valid("0123456789abcdef"));
}

static void test_log_esc(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(sg_log_esc(out, sizeof(out), "a\r\nb", 4), "a\\x0d\\x0ab");
	sg_log_esc(out, sizeof(out), "0123456789abcdefghij", 20);
	assert_true(strlen(out) < sizeof(out));
	assert_non_null(strstr(out, "..."));
}

static void test_atomic_file(void **state)
{
	char dir[] = "/tmp/sg-test-XXXXXX";
	char path[128];
	char *data = NULL;
	size_t len = 0;
	struct sg_error err;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a/b/f", dir);
	assert_int_equal(sg_mkdir_p(path, 0700, &err), 0);
	snprintf(path, sizeof(path), "%s/a/b/f/file", dir);
	assert_int_equal(sg_file_write_atomic(path, "hello", 5, 0600, &err), 0);
	assert_int_equal(sg_file_read(path, 100, &data, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_string_equal(data, "hello");
	free(data);
	assert_int_equal(sg_file_read(path, 3, &data, &len, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(sg_file_read("/nonexistent", 3, &data, &len, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	unlink(path);
}

static void test_error_table(void **state)
{
	struct sg_error err;

	(void)state;
	assert_int_equal(sg_errc_smtp(SG_E_NOSPACE)->smtp_code, 452);
	assert_int_equal(sg_errc_smtp(SG_E_STORE)->smtp_code, 451);
	assert_int_equal(sg_errc_smtp(SG_E_LIMIT)->smtp_code, 552);
	assert_int_equal(sg_errc_class(SG_E_PEER_TEMP), SG_EC_TEMPORARY);
	assert_int_equal(sg_errc_class(SG_E_PEER_PERM), SG_EC_PERMANENT);
	sg_error_set_errno(&err, SG_E_IO, 28 /* ENOSPC */, "write %s", "x");
	assert_int_equal(err.code, SG_E_NOSPACE);
	sg_error_prefix(&err, "spool: ");
	assert_true(strncmp(err.msg, "spool: write x: ", 16) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_mail_id),
		cmocka_unit_test(test_log_esc),
		cmocka_unit_test(test_atomic_file),
		cmocka_unit_test(test_error_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
