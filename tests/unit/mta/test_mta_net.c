/*
 * test_mta_net.c - F-ADM-5 matching: CIDR parsing/formatting (IPv4, IPv6,
 * IPv4-mapped, edge prefixes /0 /32 /128), my_networks membership and relay
 * domain matching with and without match-subdomains (case-insensitive,
 * trailing dot). Settings are built through mta_settings_update on a temp
 * SQLite database so the values go through the same normalisation as in
 * production.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/lib.h"
#include "mta/mta.h"
#include "store/store.h"

static char tmpdir[256];
static unsigned dbseq;

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-mta-net-XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	char path[300];
	unsigned i;

	(void)state;
	for (i = 0; i < dbseq; i++) {
		static const char *const sfx[] = {"", "-wal", "-shm"};
		size_t k;

		for (k = 0; k < 3; k++) {
			snprintf(path, sizeof(path), "%s/t%u.db%s", tmpdir, i, sfx[k]);
			unlink(path);
		}
	}
	rmdir(tmpdir);
	return 0;
}

/* settings_with - a snapshot with the given assignments applied (or NULL). */
static struct mta_settings *settings_with(const char *const *a, size_t n)
{
	char url[320];
	struct sg_error err;
	struct store *db;
	struct mta_settings *s = NULL;

	snprintf(url, sizeof(url), "sqlite:%s/t%u.db", tmpdir, dbseq++);
	db = store_open(url, &err);
	assert_non_null(db);
	assert_int_equal(store_migrate(db, &err), 0);
	if (n == 0 || mta_settings_update(db, a, n, &err) == 0)
		s = mta_settings_load(db, "gw.example", &err);
	else
		fprintf(stderr, "update: %s\n", err.msg);
	store_close(&db);
	return s;
}

/* F-ADM-5: every accepted network form normalises to one canonical text. */
static void test_cidr_parse_canonical(void **state)
{
	static const struct {
		const char *in, *want;
		int family;
	} cases[] = {
		{"10.0.0.0/8", "10.0.0.0/8", 4},
		{"192.0.2.1", "192.0.2.1/32", 4},
		{"192.0.2.1/32", "192.0.2.1/32", 4},
		{"0.0.0.0/0", "0.0.0.0/0", 4},
		{"[10.0.0.0]/8", "10.0.0.0/8", 4},
		{"2001:DB8::/32", "2001:db8::/32", 6},
		{"2001:db8:0:0:0:0:0:1/128", "2001:db8::1/128", 6},
		{"[::1]/128", "::1/128", 6},
		{"::1", "::1/128", 6},
		{"::/0", "::/0", 6},
		{"fe80::/10", "fe80::/10", 6},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", 4},
		{"::ffff:192.0.2.1", "192.0.2.1/32", 4},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0", 4},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mta_cidr c;
		struct sg_error err;
		char out[64];

		if (mta_cidr_parse(cases[i].in, &c, &err) != 0)
			fail_msg("%s: got error '%s' want %s", cases[i].in, err.msg, cases[i].want);
		mta_cidr_format(&c, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0 || c.family != cases[i].family)
			fail_msg("%s: got %s (v%d) want %s (v%d)", cases[i].in, out, c.family,
				cases[i].want, cases[i].family);
	}
}

/* F-ADM-5: malformed networks are refused with SG_E_INVAL. */
static void test_cidr_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"", "abc", "10.0.0.0/33", "10.0.0.0/", "/8", "10.0.0.0/-1", "10.0.0.0/8x",
		"10.0.0.0/ 8", "1.2.3/8", "256.0.0.0/8", "10.1.2.3/8", "0.0.0.1/0",
		"::1/129", "2001:db8::1/32", "fe80::1%eth0/128", "[::1/128", "2001:db8::g/64",
		"::ffff:10.0.0.1/104", "10.0.0.0/8/8", "example.com/8",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mta_cidr c;
		struct sg_error err;

		err.code = SG_E_OK;
		if (mta_cidr_parse(bad[i], &c, &err) != -1)
			fail_msg("'%s': accepted, want an error", bad[i]);
		assert_int_equal(err.code, SG_E_INVAL);
	}
}

/* F-ADM-5: membership at the edges of each prefix, IPv4-mapped clients. */
static void test_cidr_contains(void **state)
{
	static const struct {
		const char *net, *addr;
		bool want;
	} cases[] = {
		{"0.0.0.0/0", "203.0.113.9", true},
		{"0.0.0.0/0", "255.255.255.255", true},
		{"0.0.0.0/0", "2001:db8::1", false},
		{"0.0.0.0/0", "::ffff:203.0.113.9", true},
		{"::/0", "2001:db8::1", true},
		{"::/0", "::", true},
		{"::/0", "203.0.113.9", false},
		{"::/0", "::ffff:203.0.113.9", false},
		{"192.0.2.1/32", "192.0.2.1", true},
		{"192.0.2.1/32", "192.0.2.0", false},
		{"192.0.2.1/32", "192.0.2.2", false},
		{"192.0.2.1/32", "::ffff:192.0.2.1", true},
		{"192.0.2.1/32", "::ffff:c000:201", true},
		{"10.0.0.0/8", "10.0.0.0", true},
		{"10.0.0.0/8", "10.255.255.255", true},
		{"10.0.0.0/8", "11.0.0.0", false},
		{"10.0.0.0/8", "9.255.255.255", false},
		{"192.0.2.0/31", "192.0.2.1", true},
		{"192.0.2.0/31", "192.0.2.2", false},
		{"172.16.0.0/12", "172.31.255.255", true},
		{"172.16.0.0/12", "172.32.0.0", false},
		{"2001:db8::1/128", "2001:db8::1", true},
		{"2001:db8::1/128", "2001:DB8:0::1", true},
		{"2001:db8::1/128", "2001:db8::2", false},
		{"2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", true},
		{"2001:db8::/64", "2001:db8:0:1::", false},
		{"2001:db8::/127", "2001:db8::1", true},
		{"2001:db8::/127", "2001:db8::2", false},
		{"fe80::/10", "fe80::1%eth0", true},
		{"fe80::/10", "fec0::1", false},
		{"::ffff:10.0.0.0/104", "10.1.2.3", true},
		{"::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true},
		{"::ffff:10.0.0.0/104", "11.1.2.3", false},
		{"10.0.0.0/8", "", false},
		{"10.0.0.0/8", "not-an-ip", false},
		{"10.0.0.0/8", "10.0.0.0/8", false},
		{"10.0.0.0/8", "[10.0.0.1]", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mta_cidr c;
		bool got;

		assert_int_equal(mta_cidr_parse(cases[i].net, &c, NULL), 0);
		got = mta_cidr_contains(&c, cases[i].addr);
		if (got != cases[i].want)
			fail_msg("%s contains '%s': got %d want %d", cases[i].net, cases[i].addr,
				got, cases[i].want);
	}
	{
		struct mta_cidr c;

		assert_int_equal(mta_cidr_parse("0.0.0.0/0", &c, NULL), 0);
		assert_false(mta_cidr_contains(&c, NULL));
	}
}

/* F-ADM-5: the factory my_networks is loopback only. */
static void test_my_networks_default(void **state)
{
	struct mta_settings *s = mta_settings_defaults(NULL);

	(void)state;
	assert_true(mta_is_my_network(s, "127.0.0.1"));
	assert_true(mta_is_my_network(s, "127.255.255.254"));
	assert_true(mta_is_my_network(s, "::1"));
	assert_true(mta_is_my_network(s, "::ffff:127.0.0.1"));
	assert_false(mta_is_my_network(s, "128.0.0.1"));
	assert_false(mta_is_my_network(s, "10.0.0.1"));
	assert_false(mta_is_my_network(s, "::2"));
	assert_false(mta_is_my_network(s, NULL));
	assert_false(mta_is_my_network(NULL, "127.0.0.1"));
	mta_settings_free(&s);
	assert_null(s);
}

/* F-ADM-5: a configured list (mixed forms) and the explicit empty list. */
static void test_my_networks_list(void **state)
{
	static const char *const a[] = {
		"my_networks=192.168.1.1/32, 10.1.2.0/24 [2001:db8::]/48,::ffff:172.16.0.0/108"};
	static const char *const none[] = {"my_networks=none"};
	struct mta_settings *s = settings_with(a, 1);

	(void)state;
	assert_non_null(s);
	assert_int_equal(s->n_my_networks, 4);
	assert_string_equal(s->my_networks[0], "192.168.1.1/32");
	assert_string_equal(s->my_networks[1], "10.1.2.0/24");
	assert_string_equal(s->my_networks[2], "2001:db8::/48");
	assert_string_equal(s->my_networks[3], "172.16.0.0/12");
	assert_true(mta_is_my_network(s, "192.168.1.1"));
	assert_false(mta_is_my_network(s, "192.168.1.2"));
	assert_true(mta_is_my_network(s, "10.1.2.255"));
	assert_false(mta_is_my_network(s, "10.1.3.0"));
	assert_true(mta_is_my_network(s, "2001:db8:0:ffff::1"));
	assert_false(mta_is_my_network(s, "2001:db8:1::1"));
	assert_true(mta_is_my_network(s, "172.20.0.1"));
	assert_true(mta_is_my_network(s, "::ffff:172.20.0.1"));
	assert_false(mta_is_my_network(s, "127.0.0.1"));
	mta_settings_free(&s);

	s = settings_with(none, 1);
	assert_non_null(s);
	assert_int_equal(s->n_my_networks, 0);
	assert_false(mta_is_my_network(s, "127.0.0.1"));
	assert_false(mta_is_my_network(s, "::1"));
	mta_settings_free(&s);
}

/* F-ADM-5: relay domains match case-insensitively, ignore one trailing dot,
 * and match subdomains only when match-subdomains is on. */
static void test_relay_domains(void **state)
{
	static const struct {
		const char *domain;
		bool exact_only, with_sub;
	} cases[] = {
		{"example.com", true, true},
		{"EXAMPLE.Com", true, true},
		{"example.com.", true, true},
		{"Example.COM.", true, true},
		{"mail.example.com", false, true},
		{"deep.sub.EXAMPLE.com.", false, true},
		{"example.org", true, true},
		{"x.example.org", false, true},
		{"badexample.com", false, false},
		{"example.com.evil.test", false, false},
		{"example.co", false, false},
		{"com", false, false},
		{".example.com", false, false},
		{"example.com..", false, false},
		{"", false, false},
		{".", false, false},
		{"other.test", false, false},
	};
	static const char *const on[] = {"relay_domains=Example.COM. example.org",
		"relay_domains_match_subdomains=yes"};
	static const char *const off[] = {"relay_domains=Example.COM., example.org",
		"relay_domains_match_subdomains=no"};
	struct mta_settings *s_on = settings_with(on, 2);
	struct mta_settings *s_off = settings_with(off, 2);
	size_t i;

	(void)state;
	assert_non_null(s_on);
	assert_non_null(s_off);
	assert_int_equal(s_on->n_relay_domains, 2);
	assert_string_equal(s_on->relay_domains[0], "example.com");
	assert_true(s_on->relay_domains_match_subdomains);
	assert_false(s_off->relay_domains_match_subdomains);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got_on = mta_is_relay_domain(s_on, cases[i].domain);
		bool got_off = mta_is_relay_domain(s_off, cases[i].domain);

		if (got_on != cases[i].with_sub)
			fail_msg("'%s' with subdomains: got %d want %d", cases[i].domain, got_on,
				cases[i].with_sub);
		if (got_off != cases[i].exact_only)
			fail_msg("'%s' exact only: got %d want %d", cases[i].domain, got_off,
				cases[i].exact_only);
	}
	assert_false(mta_is_relay_domain(s_on, NULL));
	assert_false(mta_is_relay_domain(NULL, "example.com"));
	mta_settings_free(&s_on);
	mta_settings_free(&s_off);
}

/* F-ADM-5: with no relay domains nothing is a relay domain. */
static void test_relay_domains_empty(void **state)
{
	struct mta_settings *s = mta_settings_defaults(NULL);

	(void)state;
	assert_int_equal(s->n_relay_domains, 0);
	assert_false(mta_is_relay_domain(s, "example.com"));
	assert_false(mta_is_relay_domain(s, "localhost"));
	mta_settings_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse_canonical),
		cmocka_unit_test(test_cidr_parse_invalid),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_my_networks_default),
		cmocka_unit_test(test_my_networks_list),
		cmocka_unit_test(test_relay_domains),
		cmocka_unit_test(test_relay_domains_empty),
	};

	sg_log_init("test_mta_net", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests_name("mta-net", tests, group_setup, group_teardown);
}
