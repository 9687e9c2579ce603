/* test_delivery_route.c - next-hop selection (F-FLOW-2, D-1): Postfix next
 * hop, internal vs external relay host by relay domains, per-host SASL,
 * relay host with the MX flag, DNS MX through the lookup hook (preference
 * order, A fallback, null MX => permanent, unknown domain, MX pointing at
 * ourselves => deferred loop), and the DNS answer parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <cmocka.h>

#include "delivery/delivery_int.h"

/* ------------------------------------------------------ MX lookup table */

struct mx_entry {
	const char *domain;
	int rc;                 /* 1 records, 0 none, -1 error */
	enum sg_errc code;      /* for rc -1 */
	struct delivery_mx mx[4];
	size_t n;
};

struct mx_table {
	const struct mx_entry *e;
	size_t n;
	unsigned calls;
};

static int table_lookup(void *arg, const char *domain, struct delivery_mx **mx_r,
	size_t *n_r, struct sg_error *err)
{
	struct mx_table *t = arg;
	size_t i;

	t->calls++;
	for (i = 0; i < t->n; i++) {
		const struct mx_entry *e = &t->e[i];

		if (strcmp(e->domain, domain) != 0)
			continue;
		if (e->rc < 0) {
			sg_error_set(err, e->code, "%s %s", e->code == SG_E_NOTFOUND ?
				"5.1.2 domain not found:" : "4.4.3 DNS failure for", domain);
			return -1;
		}
		if (e->rc == 0)
			return 0;
		*mx_r = sg_xcalloc(e->n, sizeof(**mx_r));
		memcpy(*mx_r, e->mx, e->n * sizeof(**mx_r));
		*n_r = e->n;
		return 1;
	}
	sg_error_set(err, SG_E_NOTFOUND, "5.1.2 domain not found: %s", domain);
	return -1;
}

static const struct mx_entry mx_entries[] = {
	{"ordered.test", 1, 0, {{20, "127.0.0.3"}, {5, "127.0.0.2"}, {10, "127.0.0.4"}}, 3},
	{"nullmx.test", 1, 0, {{0, "."}}, 1},
	{"localhost", 0, 0, {{0, ""}}, 0},
	{"tempfail.test", -1, SG_E_PEER_TEMP, {{0, ""}}, 0},
	{"self.test", 1, 0, {{10, "127.0.0.1"}, {20, "127.0.0.2"}}, 2},
	{"selfbackup.test", 1, 0, {{10, "127.0.0.2"}, {20, "127.0.0.1"}, {30, "127.0.0.3"}}, 3},
	{"relaymx.test", 1, 0, {{10, "127.0.0.5"}}, 1},
};

static struct mta_settings *settings(void)
{
	struct mta_settings *m = mta_settings_defaults("gw.test");

	m->relay_domains = sg_xcalloc(2, sizeof(char *));
	m->relay_domains[0] = sg_xstrdup("int.test");
	m->n_relay_domains = 1;
	m->relay_domains_match_subdomains = true;
	return m;
}

static void conf_setup(struct delivery_conf *c, struct mx_table *t)
{
	delivery_conf_init(c, "gw.test");
	t->e = mx_entries;
	t->n = sizeof(mx_entries) / sizeof(mx_entries[0]);
	t->calls = 0;
	c->mx_lookup = table_lookup;
	c->mx_lookup_arg = t;
	c->mx_port = 2525;
}

static void test_route_postfix_mode(void **state)
{
	struct delivery_conf c;
	struct mx_table t;
	struct mta_settings *m = settings();
	struct delivery_hop h1, h2;
	struct sg_error err;

	(void)state;
	conf_setup(&c, &t);
	c.mode = SG_MODE_POSTFIX;
	snprintf(c.next_hop.host, sizeof(c.next_hop.host), "127.0.0.1");
	c.next_hop.port = 10026;
	m->external_relay.host = sg_xstrdup("relay.ext.test");
	m->tls_level = MTA_TLS_ENCRYPT;
	assert_int_equal(delivery_route_hop(&c, m, "a@int.test", &h1, &err), 0);
	assert_int_equal(delivery_route_hop(&c, m, "b@elsewhere.test", &h2, &err), 0);
	assert_string_equal(h1.host, "127.0.0.1");
	assert_int_equal(h1.port, 10026);
	assert_false(h1.use_mx);
	assert_true(h1.is_configured);
	assert_int_equal(h1.tls, MTA_TLS_MAY);
	assert_true(delivery_hop_same(&h1, &h2));
	mta_settings_free(&m);
}

static void test_route_standalone_relays(void **state)
{
	static const struct {
		const char *rcpt;
		const char *host;
		unsigned port;
		bool use_mx;
		bool has_sasl;
	} cases[] = {
		{"a@int.test", "10.1.1.1", 2526, false, true},
		{"a@sub.INT.test", "10.1.1.1", 2526, false, true},
		{"b@ext.test", "relay.ext.test", 587, true, false},
		{"c@notint.test", "relay.ext.test", 587, true, false},
	};
	struct delivery_conf c;
	struct mx_table t;
	struct mta_settings *m = settings();
	struct delivery_hop h;
	struct sg_error err;
	size_t i;

	(void)state;
	conf_setup(&c, &t);
	m->tls_level = MTA_TLS_VERIFY;
	m->internal_relay.host = sg_xstrdup("10.1.1.1");
	m->internal_relay.port = 2526;
	m->external_relay.host = sg_xstrdup("relay.ext.test");
	m->external_relay.port = 587;
	m->external_relay.use_mx = true;
	m->sasl = sg_xcalloc(1, sizeof(*m->sasl));
	m->sasl[0].host = sg_xstrdup("10.1.1.1");
	m->sasl[0].port = 2526;
	m->sasl[0].username = sg_xstrdup("u");
	m->sasl[0].password = sg_xstrdup("p");
	m->n_sasl = 1;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(delivery_route_hop(&c, m, cases[i].rcpt, &h, &err), 0);
		if (strcmp(h.host, cases[i].host) != 0 || h.port != cases[i].port ||
		    h.use_mx != cases[i].use_mx || (h.sasl != NULL) != cases[i].has_sasl)
			fail_msg("%s: got %s:%u mx=%d sasl=%d want %s:%u mx=%d sasl=%d",
				cases[i].rcpt, h.host, h.port, h.use_mx, h.sasl != NULL,
				cases[i].host, cases[i].port, cases[i].use_mx, cases[i].has_sasl);
		assert_true(h.is_configured);
		assert_int_equal(h.tls, MTA_TLS_VERIFY);
	}
	assert_string_equal(m->sasl[0].username, "u");
	mta_settings_free(&m);
}

static void test_route_standalone_mx(void **state)
{
	struct delivery_conf c;
	struct mx_table t;
	struct mta_settings *m = settings();
	struct delivery_hop h, h2;
	struct sg_error err;

	(void)state;
	conf_setup(&c, &t);
	/* internal relay set, external not: external recipients go by MX */
	m->internal_relay.host = sg_xstrdup("10.1.1.1");
	assert_int_equal(delivery_route_hop(&c, m, "b@Ext.Test", &h, &err), 0);
	assert_string_equal(h.host, "ext.test");
	assert_true(h.use_mx);
	assert_false(h.is_configured);
	assert_int_equal(h.port, 2525);
	assert_null(h.sasl);
	assert_int_equal(delivery_route_hop(&c, m, "a@int.test", &h2, &err), 0);
	assert_false(delivery_hop_same(&h, &h2));
	assert_int_equal(delivery_route_hop(&c, m, "no-domain", &h, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_PERM);
	mta_settings_free(&m);
}

static void test_mx_order(void **state)
{
	struct delivery_mx mx[6] = {{30, "c"}, {10, "a1"}, {20, "b"}, {10, "a2"}, {10, "a3"},
		{40, "d"}};
	struct sg_error err;
	uint32_t seed;
	bool seen_first[3] = {false, false, false};

	(void)state;
	for (seed = 1; seed < 64; seed++) {
		struct delivery_mx m[6];
		size_t i;

		memcpy(m, mx, sizeof(m));
		assert_int_equal(delivery_mx_order(m, 6, seed, &err), 0);
		for (i = 0; i + 1 < 6; i++)
			assert_true(m[i].pref <= m[i + 1].pref);
		assert_string_equal(m[3].host, "b");
		assert_string_equal(m[4].host, "c");
		assert_string_equal(m[5].host, "d");
		assert_int_equal(m[0].host[0], 'a');
		seen_first[m[0].host[1] - '1'] = true;
	}
	/* equal preferences are shuffled (RFC 5321 5.1), not fixed */
	assert_true(seen_first[0] && seen_first[1] && seen_first[2]);
}

static void test_mx_null(void **state)
{
	struct delivery_mx mx[2] = {{10, "mx.test"}, {0, "."}};
	struct sg_error err;

	(void)state;
	assert_int_equal(delivery_mx_order(mx, 2, 1, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_PERM);
	assert_non_null(strstr(err.msg, "5.1.10"));
}

static int resolve(struct delivery_conf *c, const char *domain, bool is_configured,
	struct delivery_addr **a, size_t *n, struct sg_error *err)
{
	struct delivery_hop h;

	memset(&h, 0, sizeof(h));
	snprintf(h.host, sizeof(h.host), "%s", domain);
	h.port = 2525;
	h.use_mx = true;
	h.is_configured = is_configured;
	return delivery_route_resolve(c, &h, a, n, err);
}

static void test_resolve_mx_order(void **state)
{
	struct delivery_conf c;
	struct mx_table t;
	struct delivery_addr *a = NULL;
	struct sg_error err;
	size_t n = 0;

	(void)state;
	conf_setup(&c, &t);
	assert_int_equal(resolve(&c, "ordered.test", false, &a, &n, &err), 0);
	assert_int_equal(t.calls, 1);
	assert_int_equal(n, 3);
	assert_string_equal(a[0].ip, "127.0.0.2");
	assert_int_equal(a[0].pref, 5);
	assert_string_equal(a[1].ip, "127.0.0.4");
	assert_string_equal(a[2].ip, "127.0.0.3");
	assert_int_equal(a[0].port, 2525);
	assert_int_equal(ntohs(((struct sockaddr_in *)&a[0].sa)->sin_port), 2525);
	free(a);
}

static void test_resolve_no_mx_a_fallback(void **state)
{
	struct delivery_conf c;
	struct mx_table t;
	struct delivery_addr *a = NULL;
	struct sg_error err;
	size_t n = 0, i;

	(void)state;
	conf_setup(&c, &t);
	assert_int_equal(resolve(&c, "localhost", false, &a, &n, &err), 0);
	assert_true(n >= 1);
	for (i = 0; i < n; i++)
		if (strcmp(a[i].ip, "127.0.0.1") != 0 && strcmp(a[i].ip, "::1") != 0)
			fail_msg("localhost resolved to %s", a[i].ip);
	free(a);
}

static void test_resolve_errors(void **state)
{
	struct delivery_conf c;
	struct mx_table t;
	struct delivery_addr *a = NULL;
	struct sg_error err;
	size_t n = 0;

	(void)state;
	conf_setup(&c, &t);
	/* null MX: the domain does not accept mail -> permanent (bounce) */
	assert_int_equal(resolve(&c, "nullmx.test", false, &a, &n, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_PERM);
	assert_non_null(strstr(err.msg, "5.1.10"));
	/* unknown domain: permanent for a recipient domain... */
	assert_int_equal(resolve(&c, "nowhere.test", false, &a, &n, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_PERM);
	/* ...but temporary for a configured relay host (setup problem) */
	assert_int_equal(resolve(&c, "nowhere.test", true, &a, &n, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_TEMP);
	/* DNS failure: temporary */
	assert_int_equal(resolve(&c, "tempfail.test", false, &a, &n, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_TEMP);
	assert_null(a);
}

static void test_resolve_self_loop(void **state)
{
	struct delivery_conf c;
	struct mx_table t;
	struct delivery_addr *a = NULL;
	struct delivery_hop h;
	struct sg_error err;
	size_t n = 0;

	(void)state;
	conf_setup(&c, &t);
	snprintf(c.listen.host, sizeof(c.listen.host), "127.0.0.1");
	c.listen.port = 2525;
	/* best MX is ourselves: deferred with a loop error */
	assert_int_equal(resolve(&c, "self.test", false, &a, &n, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_TEMP);
	assert_non_null(strstr(err.msg, "loops back to myself"));
	assert_non_null(strstr(err.msg, "4.4.6"));
	/* we are a backup MX: only the better ones are tried */
	assert_int_equal(resolve(&c, "selfbackup.test", false, &a, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(a[0].ip, "127.0.0.2");
	free(a);
	a = NULL;
	/* a wildcard listener on our port counts as every local address */
	snprintf(c.listen.host, sizeof(c.listen.host), "0.0.0.0");
	assert_int_equal(resolve(&c, "self.test", false, &a, &n, &err), -1);
	assert_non_null(strstr(err.msg, "loops back"));
	/* another port is not us */
	c.listen.port = 2526;
	assert_int_equal(resolve(&c, "self.test", false, &a, &n, &err), 0);
	assert_int_equal(n, 2);
	free(a);
	a = NULL;
	/* a relay host (no MX flag) that is ourselves */
	snprintf(c.listen.host, sizeof(c.listen.host), "127.0.0.1");
	c.listen.port = 2525;
	memset(&h, 0, sizeof(h));
	snprintf(h.host, sizeof(h.host), "127.0.0.1");
	h.port = 2525;
	h.is_configured = true;
	assert_int_equal(delivery_route_resolve(&c, &h, &a, &n, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_TEMP);
	assert_non_null(strstr(err.msg, "loops back"));
}

static void test_resolve_relay_with_mx_flag(void **state)
{
	struct delivery_conf c;
	struct mx_table t;
	struct mta_settings *m = settings();
	struct delivery_addr *a = NULL;
	struct delivery_hop h;
	struct sg_error err;
	size_t n = 0;

	(void)state;
	conf_setup(&c, &t);
	m->external_relay.host = sg_xstrdup("relaymx.test");
	m->external_relay.port = 26;
	m->external_relay.use_mx = true;
	assert_int_equal(delivery_route_hop(&c, m, "x@ext.test", &h, &err), 0);
	assert_int_equal(delivery_route_resolve(&c, &h, &a, &n, &err), 0);
	assert_int_equal(t.calls, 1);
	assert_int_equal(n, 1);
	assert_string_equal(a[0].ip, "127.0.0.5");
	assert_int_equal(a[0].port, 26);
	free(a);
	mta_settings_free(&m);
}

/* dns_put_name - "a.b" as DNS labels at p; returns bytes written. */
static size_t dns_put_name(unsigned char *p, const char *name)
{
	size_t o = 0;

	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t l = dot != NULL ? (size_t)(dot - name) : strlen(name);

		p[o++] = (unsigned char)l;
		memcpy(p + o, name, l);
		o += l;
		name += l + (dot != NULL);
	}
	p[o++] = 0;
	return o;
}

static void test_mx_parse_answer(void **state)
{
	unsigned char pkt[512];
	struct delivery_mx *mx = NULL;
	struct sg_error err;
	size_t o = 0, n = 0, rdlen_at, i;
	static const struct {
		unsigned pref;
		const char *host;
	} recs[] = {{10, "mx1.example.test"}, {20, "mx2.example.test"}, {0, ""}};

	(void)state;
	memset(pkt, 0, sizeof(pkt));
	pkt[2] = 0x81; /* response, RD */
	pkt[3] = 0x80; /* RA */
	pkt[5] = 1;    /* QDCOUNT */
	pkt[7] = 3;    /* ANCOUNT */
	o = 12;
	o += dns_put_name(pkt + o, "example.test");
	pkt[o++] = 0; pkt[o++] = ns_t_mx;
	pkt[o++] = 0; pkt[o++] = ns_c_in;
	for (i = 0; i < 3; i++) {
		pkt[o++] = 0xc0; pkt[o++] = 12; /* name: pointer to the question */
		pkt[o++] = 0; pkt[o++] = ns_t_mx;
		pkt[o++] = 0; pkt[o++] = ns_c_in;
		o += 4; /* TTL 0 */
		rdlen_at = o;
		o += 2;
		pkt[o++] = (unsigned char)(recs[i].pref >> 8);
		pkt[o++] = (unsigned char)recs[i].pref;
		o += dns_put_name(pkt + o, recs[i].host);
		pkt[rdlen_at] = (unsigned char)((o - rdlen_at - 2) >> 8);
		pkt[rdlen_at + 1] = (unsigned char)(o - rdlen_at - 2);
	}
	assert_int_equal(delivery_mx_parse_answer(pkt, (int)o, &mx, &n, &err), 1);
	assert_int_equal(n, 3);
	assert_int_equal(mx[0].pref, 10);
	assert_string_equal(mx[0].host, "mx1.example.test");
	assert_int_equal(mx[1].pref, 20);
	assert_string_equal(mx[1].host, "mx2.example.test");
	assert_string_equal(mx[2].host, "."); /* the root: null MX */
	free(mx);
	/* truncated packet: error, not a crash */
	assert_int_equal(delivery_mx_parse_answer(pkt, 20, &mx, &n, &err), -1);
	assert_int_equal(err.code, SG_E_PEER_TEMP);
	/* no answers: "no MX" */
	pkt[7] = 0;
	assert_int_equal(delivery_mx_parse_answer(pkt, 12 + 14 + 4, &mx, &n, &err), 0);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_postfix_mode),
		cmocka_unit_test(test_route_standalone_relays),
		cmocka_unit_test(test_route_standalone_mx),
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_mx_null),
		cmocka_unit_test(test_resolve_mx_order),
		cmocka_unit_test(test_resolve_no_mx_a_fallback),
		cmocka_unit_test(test_resolve_errors),
		cmocka_unit_test(test_resolve_self_loop),
		cmocka_unit_test(test_resolve_relay_with_mx_flag),
		cmocka_unit_test(test_mx_parse_answer),
	};

	sg_log_init("test_delivery_route", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
