/*
 * policy_name.c - names the policy keys on: domain names (lower-case ASCII,
 * IDN labels as A-labels via libidn2 (RFC 5890/5891, UTS #46), one trailing
 * dot removed, wildcard "*.x"), e-mail addresses (whole address lower-cased:
 * one user per mailbox whatever the case, as certificate search is
 * case-insensitive too), and the first mailbox of a raw From/Sender header
 * value (parsed by GMime through mime_addr_first).
 *
 * Pure functions; any thread. Input is hostile (headers): every buffer is
 * capped and nothing recurses.
 */
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "mime/mime.h"
#include "policy/policy_int.h"

#define POLICY_HEADER_SCAN_MAX 65536

char *policy_trim_ws(char *s)
{
	size_t len = strlen(s), start = 0;

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
		s[len - 1] == '\n'))
		len--;
	while (start < len && (s[start] == ' ' || s[start] == '\t' || s[start] == '\r' ||
		s[start] == '\n'))
		start++;
	memmove(s, s + start, len - start);
	s[len - start] = '\0';
	return s;
}

/* ----------------------------------------------------------------- domains */

static bool is_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* norm_label - one label into out (appended at *o); 0 ok, -1 bad */
static int norm_label(const char *lab, size_t len, char *out, size_t outsz, size_t *o)
{
	char tmp[128];
	size_t i, tl = 0;
	bool is_ascii = true;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if ((unsigned char)lab[i] >= 0x80)
			is_ascii = false;
	}
	if (is_ascii) {
		if (len > 63)
			return -1;
		for (i = 0; i < len; i++) {
			char c = lab[i];

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (!is_label_char(c))
				return -1;
			tmp[tl++] = c;
		}
		tmp[tl] = '\0';
	} else {
		/* IDNA2008 + UTS #46 mapping (case folding, NFC) by libidn2 */
		char in[256];
		char *a = NULL;
		int rc;

		if (len >= sizeof(in))
			return -1;
		memcpy(in, lab, len);
		in[len] = '\0';
		rc = idn2_to_ascii_8z(in, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
		if (rc != IDN2_OK || a == NULL || strlen(a) > 63 || strchr(a, '.') != NULL) {
			idn2_free(a);
			return -1;
		}
		for (i = 0; a[i] != '\0'; i++) {
			char c = a[i];

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (!is_label_char(c)) {
				idn2_free(a);
				return -1;
			}
			tmp[i] = c;
		}
		tl = i;
		tmp[tl] = '\0';
		idn2_free(a);
	}
	if (tmp[0] == '-' || tmp[tl - 1] == '-')
		return -1;
	if (*o + tl + 1 >= outsz)
		return -1;
	memcpy(out + *o, tmp, tl);
	*o += tl;
	out[*o] = '\0';
	return 0;
}

int policy_domain_normalize(const char *domain, unsigned flags, char *out, size_t outsz,
	struct sg_error *err)
{
	char esc[80];
	const char *p, *dot;
	size_t len, o = 0;

	if (domain == NULL || outsz < 4)
		goto bad;
	len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > 512)
		goto bad;
	p = domain;
	if (len >= 2 && p[0] == '*' && p[1] == '.') {
		if (!(flags & POLICY_DOM_ALLOW_WILDCARD))
			goto bad;
		memcpy(out, "*.", 2);
		o = 2;
		p += 2;
		len -= 2;
	}
	while (len > 0) {
		dot = memchr(p, '.', len);
		size_t ll = dot != NULL ? (size_t)(dot - p) : len;

		if (o > 0 && !(o == 2 && out[0] == '*')) {
			if (o + 2 >= outsz)
				goto bad;
			out[o++] = '.';
		}
		if (norm_label(p, ll, out, outsz, &o) < 0)
			goto bad;
		if (dot == NULL)
			break;
		p = dot + 1;
		len -= ll + 1;
		if (len == 0)
			goto bad;  /* "a..", inner empty label */
	}
	out[o] = '\0';
	if (strlen(out) - (out[0] == '*' ? 2 : 0) > 253)
		goto bad;
	return 0;
bad:
	sg_log_esc(esc, sizeof(esc), domain != NULL ? domain : "", domain != NULL ?
		strlen(domain) : 0);
	sg_error_set(err, SG_E_INVAL, "bad domain name '%s'", esc);
	if (outsz > 0)
		out[0] = '\0';
	return -1;
}

/* ---------------------------------------------------------------- addresses */

static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL || c >= 0x80;
}

/* local_is_valid - dot-atom (UTF-8 allowed, RFC 6531) or quoted string */
static bool local_is_valid(const char *l, size_t len)
{
	size_t i;

	if (len == 0 || len > 64)
		return false;
	if (l[0] == '"') {
		if (len < 2 || l[len - 1] != '"')
			return false;
		for (i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)l[i];

			if (c == '\\') {
				if (++i + 1 >= len)
					return false;
				continue;
			}
			if (c < 0x20 || c == 0x7f || c == '"')
				return false;
		}
		return true;
	}
	if (l[0] == '.' || l[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (l[i] == '.') {
			if (l[i + 1] == '.')
				return false;
			continue;
		}
		if (!is_atext((unsigned char)l[i]))
			return false;
	}
	return true;
}

int policy_addr_normalize(const char *addr, char *out, size_t outsz, struct sg_error *err)
{
	char dom[POLICY_DOMAIN_MAX];
	char esc[80];
	const char *at;
	size_t llen, i;

	if (addr == NULL)
		goto bad;
	at = strrchr(addr, '@');
	if (at == NULL)
		goto bad;
	llen = (size_t)(at - addr);
	if (!local_is_valid(addr, llen))
		goto bad;
	if (policy_domain_normalize(at + 1, 0, dom, sizeof(dom), NULL) < 0 ||
		strchr(dom, '.') == NULL)
		goto bad;
	if (llen + 1 + strlen(dom) + 1 > outsz)
		goto bad;
	for (i = 0; i < llen; i++) {
		char c = addr[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[llen] = '@';
	memcpy(out + llen + 1, dom, strlen(dom) + 1);
	return 0;
bad:
	sg_log_esc(esc, sizeof(esc), addr != NULL ? addr : "", addr != NULL ? strlen(addr) : 0);
	sg_error_set(err, SG_E_INVAL, "bad e-mail address '%s'", esc);
	if (outsz > 0)
		out[0] = '\0';
	return -1;
}

/* --------------------------------------------------------- first mailbox */

int policy_addr_first_mailbox(const char *value, char *out, size_t outsz)
{
	char *addr = NULL;
	int rc = 0;

	if (outsz == 0)
		return 0;
	out[0] = '\0';
	/* GMime's address-list parser (via the mime module) does the syntax. */
	if (value == NULL || strlen(value) > POLICY_HEADER_SCAN_MAX ||
		mime_addr_first(value, &addr) != 1)
		goto out;
	if (policy_addr_normalize(addr, out, outsz, NULL) == 0)
		rc = 1;
out:
	free(addr);
	return rc;
}
