/*
 * test_mta_settings.c - F-ADM-5 MTA settings against a real store: factory
 * defaults, set/load round trip with normalisation, aliases, reset, atomic
 * multi-setting update, consistency rules, refusal of every kind of bad input
 * naming the setting, relay host forms, SASL credentials per host (masked in
 * the listing unless revealed), bad and unknown stored values.
 *
 * test_mta_settings_sqlite (label unit) uses a temp SQLite file per test;
 * test_mta_settings_pg (MTA_TEST_PG=1, label e2e) a fresh database per test on
 * SG_TEST_PG_URL, or on a private server started with scripts/test-pg.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/lib.h"
#include "mta/mta.h"
#include "store/store.h"
#include "store_test_pg.h"

#ifdef MTA_TEST_PG
#define IS_PG 1
#else
#define IS_PG 0
#endif

static struct {
	char tmpdir[256];
	char admin_url[512];
	bool own_server;
	unsigned seq;
} E;

struct fx {
	struct store *db;
	char url[768];
	char dbname[96];
	char path[512];
};

static int group_setup(void **state)
{
	const char *env = getenv("SG_TEST_PG_URL");
	char dir[300];

	(void)state;
	snprintf(E.tmpdir, sizeof(E.tmpdir), "/tmp/sg-test-mta-XXXXXX");
	if (mkdtemp(E.tmpdir) == NULL)
		return -1;
	if (!IS_PG)
		return 0;
	if (env != NULL && *env != '\0') {
		snprintf(E.admin_url, sizeof(E.admin_url), "%s", env);
		return 0;
	}
	chmod(E.tmpdir, 0755); /* the postgres user must reach the server dir */
	snprintf(dir, sizeof(dir), "%s/pg", E.tmpdir);
	if (pg_server_start(dir, E.admin_url, sizeof(E.admin_url)) < 0)
		return -1;
	E.own_server = true;
	return 0;
}

static int group_teardown(void **state)
{
	char *rm[] = {"rm", "-rf", E.tmpdir, NULL};
	char dir[300];

	(void)state;
	if (E.own_server) {
		snprintf(dir, sizeof(dir), "%s/pg", E.tmpdir);
		pg_server_stop(dir);
	}
	run_cmd(rm, NULL, 0);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sg_error err;

	if (f == NULL)
		return -1;
	if (!IS_PG) {
		snprintf(f->path, sizeof(f->path), "%s/t%u.db", E.tmpdir, E.seq++);
		snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	} else {
		unsigned char r[4];
		char hex[9];

		sg_random_bytes(r, sizeof(r), NULL);
		sg_hex(hex, r, sizeof(r));
		snprintf(f->dbname, sizeof(f->dbname), "sg_mta_%d_%u_%s", (int)getpid(),
			E.seq++, hex);
		if (pg_db_create(E.admin_url, f->dbname) < 0)
			return -1;
		pg_url_with_db(E.admin_url, f->dbname, f->url, sizeof(f->url));
	}
	f->db = store_open(f->url, &err);
	if (f->db == NULL || store_migrate(f->db, &err) < 0) {
		fprintf(stderr, "store %s: %s\n", f->url, err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(&f->db);
	if (IS_PG)
		pg_db_drop(E.admin_url, f->dbname);
	free(f);
	return 0;
}

/* update1 - one assignment through mta_settings_update. */
static int update1(struct fx *f, const char *a, struct sg_error *err)
{
	return mta_settings_update(f->db, &a, 1, err);
}

static struct mta_settings *load(struct fx *f)
{
	struct sg_error err;
	struct mta_settings *s = mta_settings_load(f->db, "gw.example", &err);

	if (s == NULL)
		fail_msg("load: %s", err.msg);
	return s;
}

/* stored - the raw stored value of key, or NULL when absent. */
static char *stored(struct fx *f, const char *key)
{
	struct sg_error err;
	char *v = NULL;
	int rc = store_setting_get(f->db, key, &v, &err);

	assert_true(rc >= 0);
	return rc == 1 ? v : NULL;
}

/* count_mta_keys - how many "mta.*" keys are stored. */
static int count_mta_keys(struct fx *f)
{
	struct sg_error err;
	struct store_stmt *st = store_prepare(f->db,
		"SELECT count(*) FROM settings WHERE substr(key, 1, 4) = 'mta.'", &err);
	int n;

	assert_non_null(st);
	assert_int_equal(store_stmt_step(st, &err), 1);
	n = (int)store_col_int64(st, 0);
	store_stmt_free(&st);
	return n;
}

/* F-ADM-5: factory values (queue lifetime 5 days, loopback my_networks ...). */
static void test_defaults(void **state)
{
	struct mta_settings *s = mta_settings_defaults("gw.example");

	(void)state;
	assert_int_equal(s->n_relay_domains, 0);
	assert_true(s->relay_domains_match_subdomains);
	assert_int_equal(s->n_my_networks, 2);
	assert_string_equal(s->my_networks[0], "127.0.0.0/8");
	assert_string_equal(s->my_networks[1], "::1/128");
	assert_string_equal(s->hostname, "gw.example");
	assert_string_equal(s->helo_name, "gw.example");
	assert_null(s->internal_relay.host);
	assert_int_equal(s->internal_relay.port, 25);
	assert_false(s->internal_relay.use_mx);
	assert_null(s->external_relay.host);
	assert_int_equal(s->external_relay.port, 25);
	assert_false(s->external_relay.use_mx);
	assert_int_equal(s->before_filter_size, 10240000);
	assert_int_equal(s->after_filter_size, 512000000);
	assert_int_equal(s->max_received_headers, 100);
	assert_int_equal(s->max_recipients, 1000);
	assert_false(s->reject_unverified_recipient);
	assert_int_equal(s->unverified_recipient_code, 450);
	assert_int_equal(s->verify_cache_positive, 31 * 86400);
	assert_int_equal(s->verify_cache_negative, 3 * 86400);
	assert_int_equal(s->tls_level, MTA_TLS_MAY);
	assert_int_equal(s->max_queue_lifetime, 5 * 86400);
	assert_int_equal(s->backoff_min, 300);
	assert_int_equal(s->backoff_max, 4000);
	assert_int_equal(s->n_sasl, 0);
	mta_settings_free(&s);

	s = mta_settings_defaults(NULL);
	assert_string_equal(s->hostname, "localhost");
	assert_string_equal(s->helo_name, "localhost");
	mta_settings_free(&s);
}

/* F-ADM-5: an empty database loads the factory values. */
static void test_load_empty_is_defaults(void **state)
{
	struct fx *f = *state;
	struct mta_settings *d = mta_settings_defaults("gw.example");
	struct mta_settings *s = load(f);
	char *a = mta_settings_format(d, MTA_PRINT_TEXT);
	char *b = mta_settings_format(s, MTA_PRINT_TEXT);

	assert_int_equal(store_backend(f->db), IS_PG ? STORE_POSTGRES : STORE_SQLITE);
	assert_string_equal(a, b);
	free(a);
	free(b);
	mta_settings_free(&d);
	mta_settings_free(&s);
}

/* F-ADM-5: every setting survives set -> store -> load, normalised. */
static void test_roundtrip(void **state)
{
	struct fx *f = *state;
	static const char *const a[] = {
		"relay_domains=Example.COM., sub.Example.org  other.test",
		"relay_domains_match_subdomains=no",
		"my_networks=10.1.2.0/24,[2001:DB8::]/32 ::ffff:192.0.2.0/120 198.51.100.7",
		"hostname=MX.Example.COM.",
		"helo_name=helo.example.com",
		"internal_relay_host=[192.0.2.10]:2525",
		"internal_relay_mx=no",
		"external_relay_host=Smarthost.Example.net:587",
		"external_relay_mx=yes",
		"before_filter_size=20M",
		"after_filter_size=1G",
		"max_received_headers=30",
		"max_recipients=50",
		"reject_unverified_recipient=yes",
		"unverified_recipient_code=550",
		"verify_cache_positive=2h",
		"verify_cache_negative=10m",
		"tls_level=VERIFY",
		"max_queue_lifetime=2d",
		"backoff_min=60s",
		"backoff_max=1w",
	};
	struct sg_error err;
	struct mta_settings *s;
	char *v;

	assert_int_equal(mta_settings_update(f->db, a, sizeof(a) / sizeof(a[0]), &err), 0);
	s = load(f);
	assert_int_equal(s->n_relay_domains, 3);
	assert_string_equal(s->relay_domains[0], "example.com");
	assert_string_equal(s->relay_domains[1], "sub.example.org");
	assert_string_equal(s->relay_domains[2], "other.test");
	assert_false(s->relay_domains_match_subdomains);
	assert_int_equal(s->n_my_networks, 4);
	assert_string_equal(s->my_networks[0], "10.1.2.0/24");
	assert_string_equal(s->my_networks[1], "2001:db8::/32");
	assert_string_equal(s->my_networks[2], "192.0.2.0/24");
	assert_string_equal(s->my_networks[3], "198.51.100.7/32");
	assert_string_equal(s->hostname, "mx.example.com");
	assert_string_equal(s->helo_name, "helo.example.com");
	assert_string_equal(s->internal_relay.host, "192.0.2.10");
	assert_int_equal(s->internal_relay.port, 2525);
	assert_false(s->internal_relay.use_mx);
	assert_string_equal(s->external_relay.host, "smarthost.example.net");
	assert_int_equal(s->external_relay.port, 587);
	assert_true(s->external_relay.use_mx);
	assert_int_equal(s->before_filter_size, 20 * 1024 * 1024);
	assert_int_equal(s->after_filter_size, 1024ull * 1024 * 1024);
	assert_int_equal(s->max_received_headers, 30);
	assert_int_equal(s->max_recipients, 50);
	assert_true(s->reject_unverified_recipient);
	assert_int_equal(s->unverified_recipient_code, 550);
	assert_int_equal(s->verify_cache_positive, 7200);
	assert_int_equal(s->verify_cache_negative, 600);
	assert_int_equal(s->tls_level, MTA_TLS_VERIFY);
	assert_int_equal(s->max_queue_lifetime, 2 * 86400);
	assert_int_equal(s->backoff_min, 60);
	assert_int_equal(s->backoff_max, 7 * 86400);
	mta_settings_free(&s);

	/* The stored text is the normalised form. */
	v = stored(f, "mta.relay_domains");
	assert_string_equal(v, "example.com, sub.example.org, other.test");
	free(v);
	v = stored(f, "mta.before_filter_size");
	assert_string_equal(v, "20971520");
	free(v);
	v = stored(f, "mta.max_queue_lifetime");
	assert_string_equal(v, "172800");
	free(v);
	v = stored(f, "mta.internal_relay_host");
	assert_string_equal(v, "192.0.2.10:2525");
	free(v);
	v = stored(f, "mta.tls_level");
	assert_string_equal(v, "verify");
	free(v);
}

/* F-ADM-5: the helo name follows the hostname unless set. */
static void test_helo_follows_hostname(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct mta_settings *s;

	assert_int_equal(update1(f, "hostname=relay.example.net", &err), 0);
	s = load(f);
	assert_string_equal(s->hostname, "relay.example.net");
	assert_string_equal(s->helo_name, "relay.example.net");
	mta_settings_free(&s);
	assert_int_equal(update1(f, "hostname=", &err), 0);
	s = load(f);
	assert_string_equal(s->hostname, "gw.example");
	assert_string_equal(s->helo_name, "gw.example");
	mta_settings_free(&s);
}

/* F-ADM-5: relay host forms: IP literal in brackets, name:port, IPv6 literal,
 * bare IPv4, default port 25, and "" = none. */
static void test_relay_host_forms(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *in, *host;
		unsigned port;
		const char *stored;
	} cases[] = {
		{"[1.2.3.4]:25", "1.2.3.4", 25, "1.2.3.4:25"},
		{"1.2.3.4", "1.2.3.4", 25, "1.2.3.4:25"},
		{"[1.2.3.4]", "1.2.3.4", 25, "1.2.3.4:25"},
		{"mail.example.com:587", "mail.example.com", 587, "mail.example.com:587"},
		{"MAIL.example.com", "mail.example.com", 25, "mail.example.com:25"},
		{"[mail.example.com]:2525", "mail.example.com", 2525, "mail.example.com:2525"},
		{"[2001:db8::1]:25", "2001:db8::1", 25, "[2001:db8::1]:25"},
		{"[2001:DB8:0:0::1]:10025", "2001:db8::1", 10025, "[2001:db8::1]:10025"},
		{"[::1]", "::1", 25, "[::1]:25"},
		{"localhost:65535", "localhost", 65535, "localhost:65535"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		struct mta_settings *s;
		char a[128];
		char *v;

		snprintf(a, sizeof(a), "internal_relay_host=%s", cases[i].in);
		if (update1(f, a, &err) != 0)
			fail_msg("%s: %s", a, err.msg);
		s = load(f);
		assert_string_equal(s->internal_relay.host, cases[i].host);
		assert_int_equal(s->internal_relay.port, cases[i].port);
		mta_settings_free(&s);
		v = stored(f, "mta.internal_relay_host");
		assert_string_equal(v, cases[i].stored);
		free(v);
	}
	{
		struct sg_error err;
		struct mta_settings *s;

		/* the MX flag belongs with a host name */
		assert_int_equal(update1(f, "internal_relay_host=mx.example.com", &err), 0);
		assert_int_equal(update1(f, "internal_relay_mx=yes", &err), 0);
		s = load(f);
		assert_true(s->internal_relay.use_mx);
		assert_string_equal(s->internal_relay.host, "mx.example.com");
		mta_settings_free(&s);
		assert_int_equal(update1(f, "internal_relay_mx=no", &err), 0);
		/* "" = no relay host: DNS MX delivery */
		assert_int_equal(update1(f, "internal_relay_host=", &err), 0);
		s = load(f);
		assert_null(s->internal_relay.host);
		assert_int_equal(s->internal_relay.port, 25);
		mta_settings_free(&s);
		assert_null(stored(f, "mta.internal_relay_host"));
	}
}

/* F-ADM-5: the documented input aliases store under the canonical names. */
static void test_aliases(void **state)
{
	struct fx *f = *state;
	static const char *const a[] = {
		"internal_relay=[127.0.0.1]:2525", "external_relay=[::1]:2526",
		"max_message_size=5M", "reject_unverified_code=550", "queue_lifetime=1d",
	};
	struct sg_error err;
	struct mta_settings *s;
	char *v;

	assert_true(mta_setting_is_known("internal_relay"));
	assert_true(mta_setting_is_known("max_message_size"));
	assert_true(mta_setting_is_known("before_filter_size"));
	assert_false(mta_setting_is_known("relay_domain"));
	assert_false(mta_setting_is_known(NULL));
	assert_int_equal(mta_settings_update(f->db, a, 5, &err), 0);
	s = load(f);
	assert_string_equal(s->internal_relay.host, "127.0.0.1");
	assert_int_equal(s->internal_relay.port, 2525);
	assert_string_equal(s->external_relay.host, "::1");
	assert_int_equal(s->external_relay.port, 2526);
	assert_int_equal(s->before_filter_size, 5 * 1024 * 1024);
	assert_int_equal(s->unverified_recipient_code, 550);
	assert_int_equal(s->max_queue_lifetime, 86400);
	mta_settings_free(&s);
	v = stored(f, "mta.before_filter_size");
	assert_string_equal(v, "5242880");
	free(v);
	assert_null(stored(f, "mta.max_message_size"));
}

/* F-ADM-5: "NAME=" and mta_setting_set(NULL) reset to the factory value;
 * "none" is the explicit empty list. */
static void test_reset_and_none(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct mta_settings *s;
	char *v;

	assert_int_equal(mta_setting_set(f->db, "max_recipients", "7", &err), 0);
	assert_int_equal(mta_setting_set(f->db, "my_networks", "none", &err), 0);
	s = load(f);
	assert_int_equal(s->max_recipients, 7);
	assert_int_equal(s->n_my_networks, 0);
	mta_settings_free(&s);
	v = stored(f, "mta.my_networks");
	assert_string_equal(v, "");
	free(v);

	assert_int_equal(mta_setting_set(f->db, "max_recipients", NULL, &err), 0);
	assert_int_equal(update1(f, "my_networks=", &err), 0);
	s = load(f);
	assert_int_equal(s->max_recipients, 1000);
	assert_int_equal(s->n_my_networks, 2);
	mta_settings_free(&s);
	assert_int_equal(count_mta_keys(f), 0);
}

/* F-ADM-5: every kind of bad input is refused with SG_E_INVAL, the message
 * names the setting, and nothing is stored. */
static void test_invalid_refused(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *a, *want;  /* want: text the error must contain */
	} cases[] = {
		/* networks */
		{"my_networks=10.0.0.0/33", "my_networks"},
		{"my_networks=10.1.2.3/8", "my_networks"},
		{"my_networks=127.0.0.0/8 1.2.3/24", "my_networks"},
		{"my_networks=::1/129", "my_networks"},
		{"my_networks=fe80::1%eth0/128", "my_networks"},
		{"my_networks=10.0.0.0/", "my_networks"},
		{"my_networks=example.com", "my_networks"},
		/* relay hosts */
		{"internal_relay_host=mail.example.com:0", "internal_relay_host"},
		{"internal_relay_host=mail.example.com:65536", "internal_relay_host"},
		{"internal_relay_host=mail.example.com:25x", "internal_relay_host"},
		{"internal_relay_host=mail.example.com:", "internal_relay_host"},
		{"internal_relay_host=:25", "internal_relay_host"},
		{"external_relay_host=2001:db8::1:25", "external_relay_host"},
		{"external_relay_host=[2001:db8::zz]:25", "external_relay_host"},
		{"external_relay_host=[999.1.1.1]:25", "external_relay_host"},
		{"external_relay_host=1.2.3:25", "external_relay_host"},
		{"external_relay_host=[::1]x", "external_relay_host"},
		{"external_relay_host=[::1", "external_relay_host"},
		{"external_relay_host=-bad.example.com", "external_relay_host"},
		{"external_relay_host=bad-.example.com", "external_relay_host"},
		{"external_relay_host=a..example.com", "external_relay_host"},
		{"external_relay_host=under_score.example.com", "external_relay_host"},
		{"internal_relay=mail example.com", "internal_relay_host"},
		/* domains and host names */
		{"relay_domains=exa_mple.com", "relay_domains"},
		{"relay_domains=ok.example -bad.example", "relay_domains"},
		{"relay_domains=a-.example", "relay_domains"},
		{"relay_domains=1.2.3.4", "relay_domains"},
		{"relay_domains=.example.com", "relay_domains"},
		{"relay_domains=example..com", "relay_domains"},
		{"relay_domains=*.example.com", "relay_domains"},
		{"relay_domains=x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
			"relay_domains"},
		{"hostname=bad_host.example", "hostname"},
		{"helo_name=-x.example", "helo_name"},
		{"helo_name=[192.0.2.1]", "helo_name"},
		/* sizes and numbers: negative, zero, too large, junk */
		{"before_filter_size=-1", "before_filter_size"},
		{"before_filter_size=1023", "before_filter_size"},
		{"before_filter_size=2048G", "before_filter_size"},
		{"before_filter_size=10 M", "before_filter_size"},
		{"max_message_size=ten", "before_filter_size"},
		{"after_filter_size=-5M", "after_filter_size"},
		{"max_received_headers=0", "max_received_headers"},
		{"max_received_headers=1001", "max_received_headers"},
		{"max_received_headers=-3", "max_received_headers"},
		{"max_recipients=0", "max_recipients"},
		{"max_recipients=100001", "max_recipients"},
		{"max_recipients=+5", "max_recipients"},
		{"max_recipients=5.5", "max_recipients"},
		{"max_queue_lifetime=-1d", "max_queue_lifetime"},
		{"max_queue_lifetime=101d", "max_queue_lifetime"},
		{"max_queue_lifetime=5y", "max_queue_lifetime"},
		{"queue_lifetime=d", "max_queue_lifetime"},
		{"backoff_min=0", "backoff_min"},
		{"backoff_max=8d", "backoff_max"},
		{"verify_cache_positive=366d", "verify_cache_positive"},
		/* enumerations */
		{"reject_unverified_recipient=maybe", "reject_unverified_recipient"},
		{"relay_domains_match_subdomains=2", "relay_domains_match_subdomains"},
		{"unverified_recipient_code=451", "unverified_recipient_code"},
		{"reject_unverified_code=5xx", "unverified_recipient_code"},
		{"tls_level=required", "tls_level"},
		/* names and syntax */
		{"relay_domain=example.com", "unknown setting 'relay_domain'"},
		{"nosuch=1", "unknown setting 'nosuch'"},
		{"RELAY_DOMAINS=example.com", "unknown setting"},
		{"relay_domains", "expected NAME=VALUE"},
		{"=example.com", "expected NAME=VALUE"},
		{"mta.relay_domains=example.com", "unknown setting"},
		/* SASL entries */
		{"sasl.mail.example.com:587=nouser", "sasl.mail.example.com:587"},
		{"sasl.mail.example.com:587=:pw", "sasl.mail.example.com:587"},
		{"sasl.mail.example.com:587=user:", "sasl.mail.example.com:587"},
		{"sasl.bad_host:25=u:p", "sasl.bad_host:25"},
		{"sasl.[::1]:0=u:p", "sasl.[::1]:0"},
		{"sasl.=u:p", "sasl."},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;

		err.code = SG_E_OK;
		err.msg[0] = '\0';
		if (update1(f, cases[i].a, &err) != -1)
			fail_msg("'%s': accepted, want an error", cases[i].a);
		if (err.code != SG_E_INVAL || strstr(err.msg, cases[i].want) == NULL)
			fail_msg("'%s': got %s '%s', want SG_E_INVAL naming '%s'", cases[i].a,
				sg_errc_name(err.code), err.msg, cases[i].want);
	}
	assert_int_equal(count_mta_keys(f), 0);
}

/* F-ADM-5: one bad assignment leaves every setting of the call unchanged. */
static void test_update_atomic(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"relay_domains=new.example", "max_recipients=50", "my_networks=10.0.0.0/33",
	};
	static const char *const good[] = {
		"relay_domains=new.example", "max_recipients=50", "my_networks=10.0.0.0/8",
	};
	struct sg_error err;
	struct mta_settings *s;

	assert_int_equal(update1(f, "relay_domains=keep.example", &err), 0);
	assert_int_equal(mta_settings_update(f->db, bad, 3, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_non_null(strstr(err.msg, "my_networks"));
	s = load(f);
	assert_int_equal(s->n_relay_domains, 1);
	assert_string_equal(s->relay_domains[0], "keep.example");
	assert_int_equal(s->max_recipients, 1000);
	assert_string_equal(s->my_networks[0], "127.0.0.0/8");
	mta_settings_free(&s);

	assert_int_equal(mta_settings_update(f->db, good, 3, &err), 0);
	s = load(f);
	assert_string_equal(s->relay_domains[0], "new.example");
	assert_int_equal(s->max_recipients, 50);
	assert_int_equal(s->n_my_networks, 1);
	assert_string_equal(s->my_networks[0], "10.0.0.0/8");
	mta_settings_free(&s);

	/* no assignment at all is a usage error, not a silent success */
	assert_int_equal(mta_settings_update(f->db, NULL, 0, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

/* F-ADM-5: a setting named twice (also through an alias) is refused. */
static void test_update_duplicate(void **state)
{
	struct fx *f = *state;
	static const char *const twice[] = {"max_recipients=5", "max_recipients=6"};
	static const char *const alias[] = {"before_filter_size=1M", "max_message_size=2M"};
	struct sg_error err;

	assert_int_equal(mta_settings_update(f->db, twice, 2, &err), -1);
	assert_non_null(strstr(err.msg, "max_recipients given twice"));
	assert_int_equal(mta_settings_update(f->db, alias, 2, &err), -1);
	assert_non_null(strstr(err.msg, "before_filter_size given twice"));
	assert_int_equal(count_mta_keys(f), 0);
}

/* F-ADM-5: rules between settings are checked against the stored values. */
static void test_update_consistency(void **state)
{
	struct fx *f = *state;
	static const char *const sizes_ok[] = {"before_filter_size=600M",
		"after_filter_size=1G"};
	static const char *const mx_ip[] = {"external_relay_host=[192.0.2.1]:25",
		"external_relay_mx=yes"};
	struct sg_error err;
	struct mta_settings *s;

	/* after_filter_size defaults to 512000000 */
	assert_int_equal(update1(f, "before_filter_size=600M", &err), -1);
	assert_non_null(strstr(err.msg, "after_filter_size"));
	assert_non_null(strstr(err.msg, "before_filter_size"));
	assert_int_equal(mta_settings_update(f->db, sizes_ok, 2, &err), 0);
	assert_int_equal(update1(f, "after_filter_size=500M", &err), -1);
	assert_non_null(strstr(err.msg, "after_filter_size"));

	assert_int_equal(update1(f, "backoff_min=5000", &err), -1);
	assert_non_null(strstr(err.msg, "backoff_max"));
	assert_int_equal(update1(f, "backoff_max=100", &err), -1);
	assert_non_null(strstr(err.msg, "backoff_max"));

	assert_int_equal(mta_settings_update(f->db, mx_ip, 2, &err), -1);
	assert_non_null(strstr(err.msg, "external_relay_mx"));
	assert_int_equal(update1(f, "external_relay_host=smtp.example.net", &err), 0);
	assert_int_equal(update1(f, "external_relay_mx=yes", &err), 0);
	/* now changing the host to an address conflicts with the stored flag */
	assert_int_equal(update1(f, "external_relay_host=[2001:db8::5]", &err), -1);
	assert_non_null(strstr(err.msg, "external_relay_mx"));
	s = load(f);
	assert_int_equal(s->before_filter_size, 600ull * 1024 * 1024);
	assert_int_equal(s->after_filter_size, 1024ull * 1024 * 1024);
	assert_int_equal(s->backoff_min, 300);
	assert_int_equal(s->backoff_max, 4000);
	assert_string_equal(s->external_relay.host, "smtp.example.net");
	assert_true(s->external_relay.use_mx);
	mta_settings_free(&s);
}

struct upd_arg {
	struct store *db;
	int rc;
	struct sg_error err;
	volatile int done;  /* read by the main thread while polling */
};

static void *upd_thread(void *p)
{
	struct upd_arg *a = p;
	const char *as = "after_filter_size=20M";

	a->rc = mta_settings_update(a->db, &as, 1, &a->err);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* F-ADM-5: updates are serialised (SQLite write lock, PostgreSQL advisory
 * lock), so two concurrent updates cannot each pass the consistency check
 * against the other's old values: an update waits while another writer holds
 * the lock, then checks against the committed values. */
static void test_update_serialised(void **state)
{
	struct fx *f = *state;
	struct upd_arg a;
	struct sg_error err;
	struct mta_settings *s;
	pthread_t th;
	struct timespec ts = {0, 300 * 1000 * 1000};

	memset(&a, 0, sizeof(a));
	a.db = store_open(f->url, &err);
	assert_non_null(a.db);
	/* hold the writers' lock as another `mta set` would */
	assert_int_equal(store_begin(f->db, &err), 0);
	if (IS_PG)
		assert_int_equal(store_exec(f->db, "SELECT pg_advisory_xact_lock(1397181780)",
			&err), 0);
	assert_int_equal(store_setting_set(f->db, "mta.before_filter_size", "104857600",
		&err), 0);
	assert_int_equal(pthread_create(&th, NULL, upd_thread, &a), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE), 0);
	assert_int_equal(store_commit(f->db, &err), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* it saw before_filter_size=100M and refused after_filter_size=20M */
	assert_int_equal(a.rc, -1);
	assert_non_null(strstr(a.err.msg, "after_filter_size"));
	store_close(&a.db);
	s = load(f);
	assert_int_equal(s->before_filter_size, 104857600);
	assert_int_equal(s->after_filter_size, 512000000);
	mta_settings_free(&s);
}

/* F-ADM-5: SASL credentials per relay host: set, find by host (any case) and
 * port, replace, IPv6 hosts, remove, removing an absent entry. */
static void test_sasl_per_host(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct mta_settings *s;
	const struct mta_sasl *a;
	char *v;

	assert_int_equal(mta_sasl_set(f->db, "Mail.Example.com", 587, "alice",
		"pw:with:colons", &err), 0);
	assert_int_equal(update1(f, "sasl.[2001:db8::1]:25=bob:b0b pass", &err), 0);
	assert_int_equal(update1(f, "sasl.relay.example.net=carol:c", &err), 0);
	assert_int_equal(update1(f, "external_relay_host=mail.example.com:587", &err), 0);
	s = load(f);
	assert_int_equal(s->n_sasl, 3);
	a = mta_sasl_find(s, s->external_relay.host, s->external_relay.port);
	assert_non_null(a);
	assert_string_equal(a->username, "alice");
	assert_string_equal(a->password, "pw:with:colons");
	a = mta_sasl_find(s, "MAIL.example.COM", 587);
	assert_non_null(a);
	assert_null(mta_sasl_find(s, "mail.example.com", 25));
	assert_null(mta_sasl_find(s, "other.example.com", 587));
	a = mta_sasl_find(s, "2001:db8::1", 25);
	assert_non_null(a);
	assert_string_equal(a->username, "bob");
	assert_string_equal(a->password, "b0b pass");
	a = mta_sasl_find(s, "relay.example.net", 25);
	assert_non_null(a);
	assert_string_equal(a->username, "carol");
	mta_settings_free(&s);
	v = stored(f, "mta.sasl.mail.example.com:587");
	assert_non_null(v);
	assert_string_equal(v, "alice\npw:with:colons");
	free(v);

	/* replace, then remove */
	assert_int_equal(mta_sasl_set(f->db, "mail.example.com", 587, "alice2", "new",
		&err), 0);
	assert_int_equal(mta_sasl_set(f->db, "2001:db8::1", 25, NULL, NULL, &err), 0);
	assert_int_equal(update1(f, "sasl.relay.example.net:25=", &err), 0);
	s = load(f);
	assert_int_equal(s->n_sasl, 1);
	a = mta_sasl_find(s, "mail.example.com", 587);
	assert_non_null(a);
	assert_string_equal(a->username, "alice2");
	assert_string_equal(a->password, "new");
	assert_null(mta_sasl_find(s, "2001:db8::1", 25));
	mta_settings_free(&s);

	assert_int_equal(mta_sasl_set(f->db, "2001:db8::1", 25, NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(update1(f, "sasl.nothere.example=", &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	/* bad credentials through the C API */
	assert_int_equal(mta_sasl_set(f->db, "mail.example.com", 587, "", "x", &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(mta_sasl_set(f->db, "mail.example.com", 587, "a:b", "x", &err), -1);
	assert_int_equal(mta_sasl_set(f->db, "mail.example.com", 587, "a", "x\ny", &err), -1);
	assert_int_equal(mta_sasl_set(f->db, "mail.example.com", 0, "a", "x", &err), -1);
	assert_int_equal(mta_sasl_set(f->db, "[::1]", 25, "a", "x", &err), -1);
	assert_int_equal(mta_sasl_set(f->db, "bad_host", 25, "a", "x", &err), -1);
}

/* F-ADM-5: the listing masks SASL passwords unless revealed; JSON is typed. */
static void test_format_masks_secret(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct mta_settings *s;
	char *text, *json, *rtext, *rjson;
	json_t *root, *sasl;
	json_error_t jerr;

	assert_int_equal(mta_sasl_set(f->db, "smtp.example.net", 587, "alice",
		"Sup3rSecret", &err), 0);
	assert_int_equal(update1(f, "relay_domains=a.example b.example", &err), 0);
	s = load(f);
	text = mta_settings_format(s, MTA_PRINT_TEXT);
	json = mta_settings_format(s, MTA_PRINT_JSON);
	rtext = mta_settings_format(s, MTA_PRINT_TEXT | MTA_PRINT_REVEAL);
	rjson = mta_settings_format(s, MTA_PRINT_JSON | MTA_PRINT_REVEAL);
	assert_null(strstr(text, "Sup3rSecret"));
	assert_null(strstr(json, "Sup3rSecret"));
	assert_non_null(strstr(text, "sasl.smtp.example.net:587 = alice:***\n"));
	assert_non_null(strstr(rtext, "sasl.smtp.example.net:587 = alice:Sup3rSecret\n"));
	assert_non_null(strstr(text, "relay_domains = a.example, b.example\n"));
	assert_non_null(strstr(text, "max_queue_lifetime = 432000\n"));
	assert_non_null(strstr(rjson, "Sup3rSecret"));

	root = json_loads(json, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_array(json_object_get(root, "relay_domains")));
	assert_int_equal(json_array_size(json_object_get(root, "relay_domains")), 2);
	assert_true(json_is_array(json_object_get(root, "my_networks")));
	assert_true(json_is_true(json_object_get(root, "relay_domains_match_subdomains")));
	assert_true(json_is_false(json_object_get(root, "reject_unverified_recipient")));
	assert_int_equal(json_integer_value(json_object_get(root, "max_recipients")), 1000);
	assert_int_equal(json_integer_value(json_object_get(root, "max_queue_lifetime")),
		432000);
	assert_string_equal(json_string_value(json_object_get(root, "tls_level")), "may");
	assert_string_equal(json_string_value(json_object_get(root, "internal_relay_host")),
		"");
	sasl = json_object_get(root, "sasl");
	assert_int_equal(json_array_size(sasl), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(sasl, 0),
		"host")), "smtp.example.net");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(sasl, 0),
		"port")), 587);
	assert_string_equal(json_string_value(json_object_get(json_array_get(sasl, 0),
		"password")), "***");
	json_decref(root);
	free(text);
	free(json);
	free(rtext);
	free(rjson);
	mta_settings_free(&s);

	/* an empty list is listed as "none", the value that sets it */
	s = mta_settings_defaults(NULL);
	text = mta_settings_format(s, MTA_PRINT_TEXT);
	assert_non_null(strstr(text, "relay_domains = none\n"));
	free(text);
	mta_settings_free(&s);
}

/* F-ADM-5: a bad stored value fails the load with SG_E_CONFIG naming it, and
 * `mta set` can still repair it; unknown stored keys are ignored. */
static void test_bad_stored_value(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct mta_settings *s;

	assert_int_equal(store_setting_set(f->db, "mta.future_setting", "x", &err), 0);
	assert_int_equal(store_setting_set(f->db, "mta.internal_relay", "bogus value",
		&err), 0);
	s = load(f);
	mta_settings_free(&s);

	assert_int_equal(store_setting_set(f->db, "mta.my_networks", "10.0.0.0/33", &err), 0);
	assert_null(mta_settings_load(f->db, "gw.example", &err));
	assert_int_equal(err.code, SG_E_CONFIG);
	assert_non_null(strstr(err.msg, "my_networks"));
	assert_int_equal(update1(f, "my_networks=10.0.0.0/8", &err), 0);
	s = load(f);
	assert_string_equal(s->my_networks[0], "10.0.0.0/8");
	mta_settings_free(&s);

	assert_int_equal(store_setting_set(f->db, "mta.sasl.mail.example.com:25",
		"no-newline", &err), 0);
	assert_null(mta_settings_load(f->db, "gw.example", &err));
	assert_int_equal(err.code, SG_E_CONFIG);
	assert_non_null(strstr(err.msg, "mta.sasl.mail.example.com:25"));
	assert_int_equal(store_setting_delete(f->db, "mta.sasl.mail.example.com:25", &err), 0);

	/* stored inconsistencies are made safe at load, not fatal */
	assert_int_equal(store_setting_set(f->db, "mta.backoff_max", "10", &err), 0);
	assert_int_equal(store_setting_set(f->db, "mta.internal_relay_host", "192.0.2.1:25",
		&err), 0);
	assert_int_equal(store_setting_set(f->db, "mta.internal_relay_mx", "yes", &err), 0);
	s = load(f);
	assert_int_equal(s->backoff_max, s->backoff_min);
	assert_false(s->internal_relay.use_mx);
	mta_settings_free(&s);
}

/* F-ADM-5: a database failure is SG_E_STORE (the daemon keeps its snapshot). */
static void test_load_store_error(void **state)
{
	struct fx *f = *state;
	struct sg_error err;

	assert_int_equal(store_exec(f->db, "DROP TABLE settings", &err), 0);
	assert_null(mta_settings_load(f->db, "gw.example", &err));
	assert_int_equal(err.code, SG_E_STORE);
	assert_int_equal(update1(f, "max_recipients=5", &err), -1);
	assert_int_equal(err.code, SG_E_STORE);
}

/* F-ADM-5: mta_setting_check validates without storing. */
static void test_setting_check(void **state)
{
	struct fx *f = *state;
	struct sg_error err;

	assert_int_equal(mta_setting_check("my_networks", "10.0.0.0/8", &err), 0);
	assert_int_equal(mta_setting_check("tls_level", NULL, &err), 0);
	assert_int_equal(mta_setting_check("queue_lifetime", "3d", &err), 0);
	assert_int_equal(mta_setting_check("my_networks", "10.0.0.0/33", &err), -1);
	assert_non_null(strstr(err.msg, "my_networks"));
	assert_int_equal(mta_setting_check("nosuch", "1", &err), -1);
	assert_non_null(strstr(err.msg, "nosuch"));
	assert_int_equal(mta_setting_check(NULL, "1", &err), -1);
	assert_int_equal(count_mta_keys(f), 0);
}

/* Snapshots are shared by reference count. */
static void test_refcount(void **state)
{
	struct mta_settings *s = mta_settings_defaults(NULL);
	struct mta_settings *r = mta_settings_ref(s);

	(void)state;
	assert_ptr_equal(r, s);
	mta_settings_free(&s);
	assert_null(s);
	assert_int_equal(r->max_recipients, 1000); /* still valid (ASan checks) */
	mta_settings_free(&r);
	mta_settings_free(&r);
	mta_settings_free(NULL);
	assert_null(mta_settings_ref(NULL));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		T(test_load_empty_is_defaults),
		T(test_roundtrip),
		T(test_helo_follows_hostname),
		T(test_relay_host_forms),
		T(test_aliases),
		T(test_reset_and_none),
		T(test_invalid_refused),
		T(test_update_atomic),
		T(test_update_duplicate),
		T(test_update_consistency),
		T(test_update_serialised),
		T(test_sasl_per_host),
		T(test_format_masks_secret),
		T(test_bad_stored_value),
		T(test_load_store_error),
		T(test_setting_check),
		cmocka_unit_test(test_refcount),
	};

	sg_log_init("test_mta_settings", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests_name(IS_PG ? "mta-settings-postgresql" :
		"mta-settings-sqlite", tests, group_setup, group_teardown);
}
