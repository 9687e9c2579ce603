/* test_lib_config.c - the configuration file parser (SPEC §13). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "lib/lib.h"

static struct sg_config *load(const char *text, struct sg_error *err)
{
	return sg_config_load_string("t.conf", text, strlen(text), err);
}

static void test_defaults(void **state)
{
	struct sg_error err;
	struct sg_config *c = load("", &err);

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->smtp_listen, "127.0.0.1:10025");
	assert_string_equal(c->next_hop, "127.0.0.1:10026");
	assert_string_equal(c->http_listen, "127.0.0.1:8443");
	assert_string_equal(c->database, "sqlite:/var/lib/sealgate/sealgate.db");
	assert_int_equal(c->mode, SG_MODE_STANDALONE);
	/* sized for fsync latency: several commits in flight (bench/throughput) */
	assert_int_equal(c->smtp_threads, 4);
	assert_int_equal(c->mpa_workers, 8);
	assert_int_equal(c->mpa_memory_budget_mb, 16);
	assert_int_equal(c->delivery_workers, 16);
	sg_config_free(&c);
	assert_null(c);
}

static void test_full(void **state)
{
	struct sg_error err;
	struct sg_config *c = load("# comment\n[general]\ndata_dir = /tmp/sg\n"
		"[smtp]\n listen = [::1]:2525 \nmode = postfix\nnext_hop=127.0.0.1:10026\n"
		"threads = 4\n[mpa]\nworkers=3\nmemory_budget_mb = 0\n; x\n[http]\nlisten =\n",
		&err);

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->data_dir, "/tmp/sg");
	assert_string_equal(c->database, "sqlite:/tmp/sg/sealgate.db");
	assert_string_equal(c->smtp_listen, "[::1]:2525");
	assert_int_equal(c->mode, SG_MODE_POSTFIX);
	assert_int_equal(c->smtp_threads, 4);
	assert_int_equal(c->mpa_workers, 3);
	assert_int_equal(c->mpa_memory_budget_mb, 0);
	assert_string_equal(c->http_listen, "");
	sg_config_free(&c);
}

static const struct {
	const char *name;
	const char *text;
	const char *want;  /* substring of the error */
} bad_cases[] = {
	{"unknown key", "[smtp]\nlisten = 127.0.0.1:25\nfoo = 1\n",
		"t.conf:3: unknown key 'foo' in section [smtp]"},
	{"unknown section", "[nope]\n", "t.conf:1: unknown section [nope]"},
	{"bad address", "[smtp]\nlisten = 127.0.0.1:99999\n", "t.conf:2: [smtp] listen: bad port"},
	{"bad host", "[smtp]\nnext_hop = bad host:25\n", "t.conf:2: [smtp] next_hop: bad host name"},
	{"no port", "[smtp]\nlisten = 127.0.0.1\n", "t.conf:2: [smtp] listen: port missing"},
	{"relative path", "[general]\ndata_dir = rel\n", "t.conf:2: [general] data_dir must be an absolute path"},
	{"bad number", "[mpa]\nworkers = 0\n", "t.conf:2: [mpa] workers must be a number from 1 to 256"},
	{"bad mode", "[smtp]\nmode = relay\n", "mode must be 'standalone' or 'postfix'"},
	{"bad database", "[general]\ndatabase = mysql://x\n", "database must be sqlite:/PATH or postgresql://"},
	{"key outside", "listen = 1\n", "t.conf:1: key outside of a [section]"},
	{"no equals", "[smtp]\nlisten\n", "t.conf:2: expected 'key = value'"},
	{"duplicate", "[smtp]\nthreads=1\nthreads=2\n", "t.conf:3: duplicate key 'threads'"},
	{"bad header", "[smtp\n", "t.conf:1: bad section header"},
	{"tls pair", "[smtp]\ntls_certificate = /x.pem\n", "tls_certificate and tls_key must be set together"},
	{"escaped key", "[smtp]\n\x01\x02 = 1\n", "unknown key '\\x01\\x02'"},
};

static void test_bad(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct sg_error err;
		struct sg_config *c = load(bad_cases[i].text, &err);

		if (c != NULL)
			fail_msg("%s: accepted, want error '%s'", bad_cases[i].name,
				bad_cases[i].want);
		if (strstr(err.msg, bad_cases[i].want) == NULL)
			fail_msg("%s: got '%s' want '%s'", bad_cases[i].name, err.msg,
				bad_cases[i].want);
		if (err.code != SG_E_CONFIG)
			fail_msg("%s: code %d want SG_E_CONFIG", bad_cases[i].name, err.code);
	}
}

static void test_missing_file(void **state)
{
	struct sg_error err;
	struct sg_config *c = sg_config_load("/nonexistent/sealgate.conf", &err);

	(void)state;
	assert_null(c);
	assert_int_equal(err.code, SG_E_CONFIG);
	assert_non_null(strstr(err.msg, "cannot read configuration"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
