/*
 * delivery_route.c - next-hop selection for the delivery agent (F-FLOW-2,
 * D-1): relay host / next hop / DNS MX, MX ordering, null MX (RFC 7505),
 * mail-loop detection (RFC 5321 5.1), address resolution.
 *
 * Called from delivery_queue.c in delivery worker threads. DNS uses the
 * thread-safe res_ninit/res_nquery with a per-call resolver state;
 * addresses come from getaddrinfo. Tests replace the MX lookup through
 * delivery_conf.mx_lookup (no DNS in unit tests).
 */
#include "delivery_int.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_MX_MAX 32       /* MX records used per domain */
#define ROUTE_ADDRS_PER_HOST 8
#define ROUTE_ANSWER_MAX 65536

/* delivery_route_hop - see delivery_int.h. */
int delivery_route_hop(const struct delivery_conf *conf, const struct mta_settings *mta,
	const char *rcpt, struct delivery_hop *hop_r, struct sg_error *err)
{
	const struct mta_relay *relay;
	const char *domain;

	memset(hop_r, 0, sizeof(*hop_r));
	if (conf->mode == SG_MODE_POSTFIX) {
		snprintf(hop_r->host, sizeof(hop_r->host), "%s", conf->next_hop.host);
		hop_r->port = conf->next_hop.port ? conf->next_hop.port : 25;
		hop_r->is_configured = true;
		/* Re-injection into the local Postfix: opportunistic TLS only; the
		 * mta TLS level is Postfix's job towards the real next hop. */
		hop_r->tls = MTA_TLS_MAY;
		return 0;
	}
	domain = sg_addr_domain(rcpt);
	if (domain == NULL || *domain == '\0' || strlen(domain) >= sizeof(hop_r->host)) {
		sg_error_set(err, SG_E_PEER_PERM, "5.1.3 bad recipient address syntax");
		return -1;
	}
	relay = mta_is_relay_domain(mta, domain) ? &mta->internal_relay : &mta->external_relay;
	hop_r->tls = mta->tls_level;
	if (relay->host != NULL && relay->host[0] != '\0') {
		snprintf(hop_r->host, sizeof(hop_r->host), "%s", relay->host);
		hop_r->port = relay->port ? relay->port : 25;
		hop_r->use_mx = relay->use_mx;
		hop_r->is_configured = true;
		hop_r->sasl = mta_sasl_find(mta, relay->host, hop_r->port);
		return 0;
	}
	snprintf(hop_r->host, sizeof(hop_r->host), "%s", domain);
	sg_str_lower(hop_r->host);
	hop_r->port = conf->mx_port ? conf->mx_port : 25;
	hop_r->use_mx = true;
	return 0;
}

bool delivery_hop_same(const struct delivery_hop *a, const struct delivery_hop *b)
{
	return strcasecmp(a->host, b->host) == 0 && a->port == b->port &&
		a->use_mx == b->use_mx && a->is_configured == b->is_configured;
}

/* ---------------------------------------------------------------- MX order */

static int mx_cmp(const void *a, const void *b)
{
	const struct delivery_mx *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref ? 1 : 0;
}

/* mx_rand - xorshift32 step (shuffling only; not security relevant). */
static uint32_t mx_rand(uint32_t *s)
{
	uint32_t x = *s ? *s : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

int delivery_mx_order(struct delivery_mx *mx, size_t n, uint32_t seed, struct sg_error *err)
{
	size_t i, j, start;

	for (i = 0; i < n; i++) {
		if (mx[i].host[0] == '\0' || strcmp(mx[i].host, ".") == 0) {
			sg_error_set(err, SG_E_PEER_PERM,
				"5.1.10 domain does not accept mail (null MX)");
			return -1;
		}
	}
	qsort(mx, n, sizeof(*mx), mx_cmp);
	for (start = 0; start < n; start = i) {
		for (i = start + 1; i < n && mx[i].pref == mx[start].pref; i++)
			;
		for (j = i - 1; j > start; j--) { /* Fisher-Yates within [start, i) */
			size_t k = start + mx_rand(&seed) % (j - start + 1);
			struct delivery_mx t = mx[j];

			mx[j] = mx[k];
			mx[k] = t;
		}
	}
	return 0;
}

/* -------------------------------------------------------------- self check */

static bool sa_is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

static bool sa_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
			((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			&((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

/* addr_is_local_interface - ip of a is configured on one of our interfaces. */
static bool addr_is_local_interface(const struct delivery_addr *a)
{
	struct ifaddrs *ifa = NULL, *p;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (p = ifa; p != NULL && !found; p = p->ifa_next)
		if (p->ifa_addr != NULL && sa_same_ip(p->ifa_addr, (const struct sockaddr *)&a->sa))
			found = true;
	freeifaddrs(ifa);
	return found;
}

bool delivery_addr_is_self(const struct delivery_conf *conf, const struct delivery_addr *a)
{
	struct sockaddr_storage ls;
	unsigned char b[16];

	if (conf->listen.port == 0 || a->port != conf->listen.port)
		return false;
	memset(&ls, 0, sizeof(ls));
	if (inet_pton(AF_INET, conf->listen.host, b) == 1) {
		ls.ss_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ls)->sin_addr, b, 4);
	} else if (inet_pton(AF_INET6, conf->listen.host, b) == 1) {
		ls.ss_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ls)->sin6_addr, b, 16);
	} else {
		/* A host name listener: any local address on our port. */
		return addr_is_local_interface(a);
	}
	if (sa_is_wildcard(&ls))
		return addr_is_local_interface(a);
	return sa_same_ip((const struct sockaddr *)&ls, (const struct sockaddr *)&a->sa);
}

size_t delivery_addrs_cut_self(const struct delivery_conf *conf, struct delivery_addr *a,
	size_t n, const char *domain, struct sg_error *err)
{
	size_t i, j = 0;

	for (i = 0; i < n; i++) {
		if (delivery_addr_is_self(conf, &a[i])) {
			unsigned self_pref = a[i].pref;

			for (j = 0; j < n && a[j].pref < self_pref; j++)
				;
			if (j == 0)
				sg_error_set(err, SG_E_PEER_TEMP,
					"4.4.6 mail for %s loops back to myself", domain);
			return j;
		}
	}
	return n;
}

/* ------------------------------------------------------------- DNS lookups */

int delivery_mx_parse_answer(const unsigned char *msg, int len, struct delivery_mx **mx_r,
	size_t *n_r, struct sg_error *err)
{
	ns_msg h;
	ns_rr rr;
	struct delivery_mx *mx = NULL;
	size_t n = 0;
	int i, count;

	*mx_r = NULL;
	*n_r = 0;
	if (ns_initparse(msg, len, &h) < 0) {
		sg_error_set(err, SG_E_PEER_TEMP, "4.4.3 malformed DNS reply");
		return -1;
	}
	count = ns_msg_count(h, ns_s_an);
	for (i = 0; i < count && n < ROUTE_MX_MAX; i++) {
		const unsigned char *rd;
		char name[NS_MAXDNAME];

		if (ns_parserr(&h, ns_s_an, i, &rr) < 0) {
			free(mx);
			sg_error_set(err, SG_E_PEER_TEMP, "4.4.3 malformed DNS reply");
			return -1;
		}
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in)
			continue;
		if (ns_rr_rdlen(rr) < 3)
			continue;
		rd = ns_rr_rdata(rr);
		if (dn_expand(ns_msg_base(h), ns_msg_end(h), rd + 2, name, sizeof(name)) < 0)
			continue;
		if (mx == NULL)
			mx = sg_xcalloc(ROUTE_MX_MAX, sizeof(*mx));
		mx[n].pref = ns_get16(rd);
		snprintf(mx[n].host, sizeof(mx[n].host), "%s", name[0] ? name : ".");
		n++;
	}
	if (n == 0) {
		free(mx);
		return 0;
	}
	*mx_r = mx;
	*n_r = n;
	return 1;
}

/* route_dns_mx - default MX lookup with a private resolver state. */
static int route_dns_mx(void *arg, const char *domain, struct delivery_mx **mx_r,
	size_t *n_r, struct sg_error *err)
{
	struct __res_state rs;
	unsigned char *ans = NULL;
	int len, rc = -1;

	(void)arg;
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) < 0) {
		sg_error_set(err, SG_E_PEER_TEMP, "4.4.3 cannot initialise the resolver");
		return -1;
	}
	ans = sg_xmalloc(ROUTE_ANSWER_MAX);
	len = res_nquery(&rs, domain, ns_c_in, ns_t_mx, ans, ROUTE_ANSWER_MAX);
	if (len < 0) {
		switch (rs.res_h_errno) {
		case HOST_NOT_FOUND:
			sg_error_set(err, SG_E_NOTFOUND,
				"5.1.2 host or domain name not found: %s", domain);
			break;
		case NO_DATA:
			rc = 0;
			break;
		default:
			sg_error_set(err, SG_E_PEER_TEMP,
				"4.4.3 DNS lookup of MX for %s failed (try again)", domain);
			break;
		}
		goto out;
	}
	rc = delivery_mx_parse_answer(ans, len, mx_r, n_r, err);
out:
	free(ans);
	res_nclose(&rs);
	return rc;
}

/* route_add_host - append the addresses of host (pref, port) to the list. */
static int route_add_host(const char *host, unsigned pref, unsigned port,
	struct delivery_addr **a, size_t *n, size_t *cap, struct sg_error *err)
{
	struct addrinfo hints, *res = NULL, *p;
	char portstr[8];
	size_t added = 0;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", port);
	/* An address literal (a relay host such as 127.0.0.1) first: without
	 * AI_ADDRCONFIG, which asks the kernel for the local addresses over
	 * netlink on every call (1.5% of the daemon's CPU under load). */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc == EAI_NONAME) {
		hints.ai_flags = AI_ADDRCONFIG;
		rc = getaddrinfo(host, portstr, &hints, &res);
	}
	if (rc != 0) {
		if (rc == EAI_NONAME)
			sg_error_set(err, SG_E_NOTFOUND, "5.4.4 host not found: %s", host);
		else
			sg_error_set(err, SG_E_PEER_TEMP, "4.4.3 cannot resolve %s: %s", host,
				gai_strerror(rc));
		return -1;
	}
	for (p = res; p != NULL && added < ROUTE_ADDRS_PER_HOST; p = p->ai_next) {
		struct delivery_addr *d;

		if (p->ai_addrlen > sizeof(d->sa))
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 8;
			*a = sg_xrealloc(*a, *cap * sizeof(**a));
		}
		d = &(*a)[(*n)++];
		memset(d, 0, sizeof(*d));
		snprintf(d->host, sizeof(d->host), "%s", host);
		d->pref = pref;
		d->port = port;
		memcpy(&d->sa, p->ai_addr, p->ai_addrlen);
		d->salen = p->ai_addrlen;
		if (getnameinfo(p->ai_addr, p->ai_addrlen, d->ip, sizeof(d->ip), NULL, 0,
			    NI_NUMERICHOST) != 0)
			snprintf(d->ip, sizeof(d->ip), "?");
		added++;
	}
	freeaddrinfo(res);
	return 0;
}

/* route_resolve_mx - addresses of the MX hosts of hop (by preference), or of
 * the domain itself when it has no MX records (RFC 5321 5.1). */
static int route_resolve_mx(const struct delivery_conf *conf, const struct delivery_hop *hop,
	struct delivery_addr **a, size_t *n, size_t *cap, struct sg_error *err)
{
	delivery_mx_lookup_fn *lookup = conf->mx_lookup ? conf->mx_lookup : route_dns_mx;
	struct delivery_mx *mx = NULL;
	struct sg_error herr;
	size_t nmx = 0, i;
	uint32_t seed = 0;
	int rc = -1, found;

	herr.code = SG_E_OK;
	herr.msg[0] = '\0';
	found = lookup(conf->mx_lookup_arg, hop->host, &mx, &nmx, err);
	if (found < 0) {
		/* No such domain: bounce, unless it is a configured relay host
		 * (a setup or DNS problem: defer, never bounce). */
		if (err != NULL && err->code == SG_E_NOTFOUND)
			err->code = hop->is_configured ? SG_E_PEER_TEMP : SG_E_PEER_PERM;
		goto out;
	}
	if (found == 0) {
		if (route_add_host(hop->host, 0, hop->port, a, n, cap, err) < 0) {
			if (err != NULL && err->code == SG_E_NOTFOUND)
				err->code = hop->is_configured ? SG_E_PEER_TEMP : SG_E_PEER_PERM;
			goto out;
		}
		rc = 0;
		goto out;
	}
	(void)sg_random_bytes(&seed, sizeof(seed), NULL);
	if (delivery_mx_order(mx, nmx, seed, err) < 0)
		goto out;
	for (i = 0; i < nmx; i++)
		if (route_add_host(mx[i].host, mx[i].pref, hop->port, a, n, cap, &herr) < 0)
			sg_log(SG_LOG_DEBUG, "MX %s of %s: %s", mx[i].host, hop->host, herr.msg);
	if (*n == 0) {
		/* Every MX host failed to resolve: broken or unreachable MX data;
		 * retry (Postfix does the same). */
		sg_error_set(err, SG_E_PEER_TEMP, "4.4.3 no address for any MX host of %s (%s)",
			hop->host, herr.msg);
		goto out;
	}
	rc = 0;
out:
	free(mx);
	return rc;
}

int delivery_route_resolve(const struct delivery_conf *conf, const struct delivery_hop *hop,
	struct delivery_addr **addrs_r, size_t *n_r, struct sg_error *err)
{
	struct delivery_addr *a = NULL;
	size_t n = 0, cap = 0;

	*addrs_r = NULL;
	*n_r = 0;
	if (!hop->use_mx) {
		if (route_add_host(hop->host, 0, hop->port, &a, &n, &cap, err) < 0) {
			/* A configured relay host that does not resolve is a setup or
			 * DNS problem: defer, never bounce. */
			if (err != NULL)
				err->code = SG_E_PEER_TEMP;
			goto fail;
		}
	} else if (route_resolve_mx(conf, hop, &a, &n, &cap, err) < 0) {
		goto fail;
	}
	if (n == 0) {
		sg_error_set(err, SG_E_PEER_TEMP, "4.4.3 no address for %s", hop->host);
		goto fail;
	}
	/* Our own listener among the addresses (a relay host, next hop or MX
	 * that points back at us): cut it and everything after it. */
	n = delivery_addrs_cut_self(conf, a, n, hop->host, err);
	if (n == 0)
		goto fail;
	*addrs_r = a;
	*n_r = n;
	return 0;
fail:
	free(a);
	return -1;
}
