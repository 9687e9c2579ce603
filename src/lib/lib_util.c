/*
 * lib_util.c - small helpers: strings, number parsing, hex, randomness,
 * host:port and address syntax, time formatting and mail IDs.
 */
#include "lib.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

size_t sg_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len >= size ? size - 1 : len;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

void sg_str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

bool sg_str_has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int sg_parse_u64(const char *s, uint64_t max, uint64_t *out_r)
{
	unsigned long long v;
	char *end = NULL;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		return -1;
	*out_r = v;
	return 0;
}

int sg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out_r)
{
	long long v;
	char *end = NULL;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out_r = v;
	return 0;
}

int sg_parse_size(const char *s, uint64_t *out_r)
{
	char num[32];
	size_t len = s != NULL ? strlen(s) : 0;
	uint64_t mult = 1;
	uint64_t v;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 'k': case 'K':
		mult = 1024;
		break;
	case 'm': case 'M':
		mult = 1024 * 1024;
		break;
	case 'g': case 'G':
		mult = 1024ull * 1024 * 1024;
		break;
	default:
		break;
	}
	if (mult != 1)
		num[len - 1] = '\0';
	if (sg_parse_u64(num, UINT64_MAX / mult, &v) < 0)
		return -1;
	*out_r = v * mult;
	return 0;
}

int sg_parse_bool(const char *s, bool *out_r)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out_r = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out_r = false;
			return 0;
		}
	}
	return -1;
}

void sg_hex(char *out, const unsigned char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int sg_random_bytes(void *buf, size_t len, struct sg_error *err)
{
	if (RAND_bytes(buf, (int)len) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "random number generator failed");
		return -1;
	}
	return 0;
}

static bool hostname_is_valid(const char *h)
{
	size_t len = strlen(h);
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (; *h != '\0'; h++) {
		unsigned char c = (unsigned char)*h;

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

int sg_hostport_parse(const char *s, unsigned default_port, struct sg_hostport *hp_r,
	struct sg_error *err)
{
	const char *host = s;
	const char *end;
	const char *colon = NULL;
	size_t hlen;
	uint64_t port = default_port;

	memset(hp_r, 0, sizeof(*hp_r));
	if (s == NULL || *s == '\0') {
		sg_error_set(err, SG_E_INVAL, "empty address");
		return -1;
	}
	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL) {
			sg_error_set(err, SG_E_INVAL, "missing ']' in '%s'", s);
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(end - host);
		if (end[1] == ':')
			colon = end + 1;
		else if (end[1] != '\0') {
			sg_error_set(err, SG_E_INVAL, "junk after ']' in '%s'", s);
			return -1;
		}
		hp_r->is_bracketed = true;
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon) {
			sg_error_set(err, SG_E_INVAL,
				"IPv6 address must be written as [addr]:port in '%s'", s);
			return -1;
		}
		hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen >= sizeof(hp_r->host)) {
		sg_error_set(err, SG_E_INVAL, "bad host in '%s'", s);
		return -1;
	}
	memcpy(hp_r->host, host, hlen);
	hp_r->host[hlen] = '\0';
	if (colon != NULL && sg_parse_u64(colon + 1, 65535, &port) < 0) {
		sg_error_set(err, SG_E_INVAL, "bad port in '%s'", s);
		return -1;
	}
	if (port == 0) {
		sg_error_set(err, SG_E_INVAL, "port missing or zero in '%s'", s);
		return -1;
	}
	if (strchr(hp_r->host, ':') == NULL && !hostname_is_valid(hp_r->host)) {
		sg_error_set(err, SG_E_INVAL, "bad host name in '%s'", s);
		return -1;
	}
	hp_r->port = (unsigned)port;
	return 0;
}

bool sg_addr_is_valid(const char *addr)
{
	const char *at = strrchr(addr, '@');
	const char *p;
	size_t len = strlen(addr);

	if (at == NULL || at == addr || len > 254)
		return false;
	if ((size_t)(at - addr) > 64)
		return false;
	for (p = addr; p < at; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',')
			return false;
	}
	if (at[1] == '[') /* address literal */
		return at[len - (size_t)(at - addr) - 1] == ']';
	for (p = at + 1; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		/* UTF-8 domains are allowed (SMTPUTF8); ASCII must be LDH or '.' */
		if (c < 0x80 && !isalnum(c) && c != '-' && c != '.' && c != '_')
			return false;
	}
	return at[1] != '\0' && at[1] != '.';
}

const char *sg_addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : NULL;
}

int64_t sg_now(void)
{
	return (int64_t)time(NULL);
}

int64_t sg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sg_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *sg_time_iso8601(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

char *sg_time_rfc5322(int64_t t, char *out, size_t outsz)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
		tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		tm.tm_sec);
	return out;
}

void sg_mail_id_new(char *out)
{
	struct timespec ts;
	uint64_t us;
	unsigned char rnd[3] = {0, 0, 0};

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		/* RAND failing is a broken invariant; fall back to time noise. */
		rnd[0] = (unsigned char)(ts.tv_nsec & 0xff);
		rnd[1] = (unsigned char)((ts.tv_nsec >> 8) & 0xff);
		rnd[2] = (unsigned char)((ts.tv_nsec >> 16) & 0xff);
	}
	snprintf(out, SG_MAIL_ID_LEN + 1, "%010llX%02X%02X%02X",
		(unsigned long long)(us & 0xFFFFFFFFFFull), rnd[0], rnd[1], rnd[2]);
}

bool sg_mail_id_is_valid(const char *id)
{
	size_t i;

	for (i = 0; i < SG_MAIL_ID_LEN; i++) {
		char c = id[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return id[SG_MAIL_ID_LEN] == '\0';
}
