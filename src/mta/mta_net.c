/*
 * mta_net.c - network and domain matching for the MTA settings: CIDR parsing
 * and formatting (IPv4, IPv6, IPv4-mapped IPv6), my_networks membership and
 * relay-domain matching (case-insensitive, trailing dot, subdomains).
 * Called by the SMTP listener for every RCPT (any thread; the settings
 * snapshot is immutable) and by mta_settings.c when validating values.
 */
#include "mta.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const unsigned char mta_v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0xff, 0xff};

/* mta_addr_parse - textual IPv4/IPv6 into family + bytes; mapped v6 -> v4. */
static int mta_addr_parse(const char *s, int *family_r, unsigned char addr_r[16])
{
	char tmp[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(s);
	char *pct;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len + 1);
	memset(addr_r, 0, 16);
	if (inet_pton(AF_INET, tmp, addr_r) == 1) {
		*family_r = 4;
		return 0;
	}
	/* A zone index ("fe80::1%eth0") does not take part in matching. */
	pct = strchr(tmp, '%');
	if (pct != NULL)
		*pct = '\0';
	if (inet_pton(AF_INET6, tmp, addr_r) != 1)
		return -1;
	if (memcmp(addr_r, mta_v4mapped_prefix, sizeof(mta_v4mapped_prefix)) == 0) {
		memmove(addr_r, addr_r + 12, 4);
		memset(addr_r + 4, 0, 12);
		*family_r = 4;
		return 0;
	}
	*family_r = 6;
	return 0;
}

/* mta_bits_match - the first prefix bits of a and b are equal. */
static bool mta_bits_match(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned full = prefix / 8;
	unsigned rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int mta_cidr_parse(const char *s, struct mta_cidr *c_r, struct sg_error *err)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *slash;
	const char *h = s;
	size_t hlen;
	uint64_t prefix = 0;
	bool has_prefix;
	unsigned maxp;
	bool mapped = false;

	memset(c_r, 0, sizeof(*c_r));
	if (s == NULL || *s == '\0') {
		sg_error_set(err, SG_E_INVAL, "empty network");
		return -1;
	}
	slash = strchr(s, '/');
	hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	has_prefix = slash != NULL;
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		sg_error_set(err, SG_E_INVAL, "bad network '%s'", s);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (strchr(host, '%') != NULL) {
		sg_error_set(err, SG_E_INVAL, "bad network '%s': zone index", s);
		return -1;
	}
	if (inet_pton(AF_INET, host, c_r->addr) == 1) {
		c_r->family = 4;
	} else if (inet_pton(AF_INET6, host, c_r->addr) == 1) {
		c_r->family = 6;
	} else {
		sg_error_set(err, SG_E_INVAL, "bad network '%s': not an IP address", s);
		return -1;
	}
	maxp = c_r->family == 4 ? 32 : 128;
	if (has_prefix && sg_parse_u64(slash + 1, maxp, &prefix) < 0) {
		sg_error_set(err, SG_E_INVAL, "bad network '%s': prefix length must be 0..%u",
			s, maxp);
		return -1;
	}
	c_r->prefix = has_prefix ? (unsigned)prefix : maxp;
	/* ::ffff:a.b.c.d/n with n >= 96 is the IPv4 network a.b.c.d/(n-96). */
	if (c_r->family == 6 && c_r->prefix >= 96 &&
		memcmp(c_r->addr, mta_v4mapped_prefix, sizeof(mta_v4mapped_prefix)) == 0) {
		memmove(c_r->addr, c_r->addr + 12, 4);
		memset(c_r->addr + 4, 0, 12);
		c_r->family = 4;
		c_r->prefix -= 96;
		mapped = true;
	}
	maxp = c_r->family == 4 ? 32 : 128;
	/* Host bits must be zero: "10.1.2.3/8" is almost always a typo. */
	{
		unsigned char masked[16];
		unsigned i;

		memcpy(masked, c_r->addr, 16);
		for (i = c_r->prefix; i < maxp; i++)
			masked[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
		if (memcmp(masked, c_r->addr, 16) != 0) {
			sg_error_set(err, SG_E_INVAL,
				"bad network '%s': host bits set after /%u", s,
				c_r->prefix + (mapped ? 96 : 0));
			return -1;
		}
	}
	return 0;
}

void mta_cidr_format(const struct mta_cidr *c, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, host,
		sizeof(host)) == NULL)
		sg_strlcpy(host, "?", sizeof(host));
	snprintf(out, outsz, "%s/%u", host, c->prefix);
}

bool mta_cidr_contains(const struct mta_cidr *c, const char *addr)
{
	unsigned char a[16];
	int family;

	if (addr == NULL || mta_addr_parse(addr, &family, a) < 0)
		return false;
	if (family != c->family)
		return false;
	return mta_bits_match(a, c->addr, c->prefix);
}

bool mta_is_my_network(const struct mta_settings *s, const char *addr)
{
	unsigned char a[16];
	int family;
	size_t i;

	if (s == NULL || addr == NULL || mta_addr_parse(addr, &family, a) < 0)
		return false;
	for (i = 0; i < s->n_my_networks; i++) {
		const struct mta_cidr *c = &s->my_cidrs[i];

		if (c->family == family && mta_bits_match(a, c->addr, c->prefix))
			return true;
	}
	return false;
}

bool mta_is_relay_domain(const struct mta_settings *s, const char *domain)
{
	size_t dlen;
	size_t i;

	if (s == NULL || domain == NULL)
		return false;
	dlen = strlen(domain);
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (dlen == 0)
		return false;
	for (i = 0; i < s->n_relay_domains; i++) {
		const char *r = s->relay_domains[i];
		size_t rlen = strlen(r);

		if (dlen == rlen && strncasecmp(domain, r, rlen) == 0)
			return true;
		if (s->relay_domains_match_subdomains && dlen > rlen + 1 &&
			domain[dlen - rlen - 1] == '.' &&
			strncasecmp(domain + dlen - rlen, r, rlen) == 0)
			return true;
	}
	return false;
}

const struct mta_sasl *mta_sasl_find(const struct mta_settings *s, const char *host,
	unsigned port)
{
	size_t i;

	if (s == NULL || host == NULL)
		return NULL;
	for (i = 0; i < s->n_sasl; i++) {
		if (s->sasl[i].port == port && strcasecmp(s->sasl[i].host, host) == 0)
			return &s->sasl[i];
	}
	return NULL;
}
