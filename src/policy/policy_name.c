/*
 * policy_name.c - names the policy keys on: domain names (lower-case ASCII,
 * IDN labels as punycode per RFC 3492, one trailing dot removed, wildcard
 * "*.x"), e-mail addresses (whole address lower-cased), and the first
 * mailbox of a raw From/Sender header value (RFC 5322 §3.4 mailbox-list with
 * obsolete forms tolerated).
 *
 * Pure functions; any thread. Input is hostile (headers): every buffer is
 * capped, comments nest at most POLICY_COMMENT_DEPTH deep, nothing recurses.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define POLICY_COMMENT_DEPTH 16
#define POLICY_HEADER_SCAN_MAX 65536
#define POLICY_UNIT_MAX 1024

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

/* ------------------------------------------------------------- punycode */

#define PUNY_BASE 36
#define PUNY_TMIN 1
#define PUNY_TMAX 26
#define PUNY_SKEW 38
#define PUNY_DAMP 700

static uint32_t puny_adapt(uint32_t delta, uint32_t numpoints, bool is_first)
{
	uint32_t k = 0;

	delta = is_first ? delta / PUNY_DAMP : delta / 2;
	delta += delta / numpoints;
	while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
		delta /= PUNY_BASE - PUNY_TMIN;
		k += PUNY_BASE;
	}
	return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

static char puny_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* puny_encode - RFC 3492 encode cps[0..n) into out; 0 ok, -1 too long/overflow */
static int puny_encode(const uint32_t *cps, size_t n, char *out, size_t outsz)
{
	uint32_t cp_n = 128, delta = 0, bias = 72, h, b = 0, m, q, k, t;
	size_t o = 0, i;

	for (i = 0; i < n; i++) {
		if (cps[i] < 0x80) {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)cps[i];
			b++;
		}
	}
	h = b;
	if (b > 0) {
		if (o + 1 >= outsz)
			return -1;
		out[o++] = '-';
	}
	while (h < n) {
		m = UINT32_MAX;
		for (i = 0; i < n; i++) {
			if (cps[i] >= cp_n && cps[i] < m)
				m = cps[i];
		}
		if ((uint64_t)(m - cp_n) * (h + 1) + delta > UINT32_MAX / 2)
			return -1;
		delta += (m - cp_n) * (h + 1);
		cp_n = m;
		for (i = 0; i < n; i++) {
			if (cps[i] < cp_n)
				delta++;
			if (cps[i] != cp_n)
				continue;
			q = delta;
			for (k = PUNY_BASE;; k += PUNY_BASE) {
				t = k <= bias ? PUNY_TMIN : k >= bias + PUNY_TMAX ? PUNY_TMAX : k - bias;
				if (q < t)
					break;
				if (o + 1 >= outsz)
					return -1;
				out[o++] = puny_digit(t + (q - t) % (PUNY_BASE - t));
				q = (q - t) / (PUNY_BASE - t);
			}
			if (o + 1 >= outsz)
				return -1;
			out[o++] = puny_digit(q);
			bias = puny_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		cp_n++;
	}
	out[o] = '\0';
	return 0;
}

/* utf8_decode - code points of s[0..len) into cps (max maxcp); count or -1 */
static ssize_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cps, size_t maxcp)
{
	size_t i = 0, n = 0;

	while (i < len) {
		uint32_t c = s[i], cp;
		size_t k, extra;

		if (c < 0x80) {
			extra = 0;
			cp = c;
		} else if (c >= 0xc2 && c <= 0xdf) {
			extra = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			extra = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			extra = 3;
			cp = c & 0x07;
		} else {
			return -1;
		}
		if (i + extra >= len && extra > 0)
			return -1;
		for (k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
			(cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		if (n >= maxcp)
			return -1;
		cps[n++] = cp;
		i += extra + 1;
	}
	return (ssize_t)n;
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
		uint32_t cps[64];
		ssize_t n = utf8_decode((const unsigned char *)lab, len, cps, 63);

		if (n <= 0)
			return -1;
		for (i = 0; i < (size_t)n; i++) {
			if (cps[i] >= 'A' && cps[i] <= 'Z')
				cps[i] = cps[i] - 'A' + 'a';
			else if (cps[i] < 0x80 && !is_label_char((char)cps[i]))
				return -1;
		}
		memcpy(tmp, "xn--", 4);
		if (puny_encode(cps, (size_t)n, tmp + 4, sizeof(tmp) - 4) < 0)
			return -1;
		tl = strlen(tmp);
		if (tl > 63)
			return -1;
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

struct unit {
	char spec[POLICY_UNIT_MAX];  /* bare addr-spec text (comments removed) */
	size_t slen;
	char angle[POLICY_UNIT_MAX]; /* <...> content */
	size_t alen;
	bool has_angle;
	bool is_phrase;              /* words separated by blanks: a display name */
	bool is_overflow;
	bool pending_ws;
};

static void unit_put(struct unit *u, bool in_angle, char c)
{
	char *buf = in_angle ? u->angle : u->spec;
	size_t *len = in_angle ? &u->alen : &u->slen;

	if (!in_angle && u->pending_ws && *len > 0) {
		char prev = buf[*len - 1];

		if (prev != '@' && prev != '.' && c != '@' && c != '.')
			u->is_phrase = true;
	}
	u->pending_ws = false;
	if (*len + 1 >= POLICY_UNIT_MAX) {
		u->is_overflow = true;
		return;
	}
	buf[(*len)++] = c;
	buf[*len] = '\0';
}

/* unit_take - the unit's address if usable; 1 found (out), 0 not */
static int unit_take(struct unit *u, char *out, size_t outsz)
{
	const char *cand;
	int rc = 0;

	if (u->is_overflow)
		goto out;
	if (u->has_angle) {
		cand = u->angle;
		/* obsolete route "@a,@b:user@x" */
		if (cand[0] == '@') {
			const char *colon = strchr(cand, ':');

			if (colon == NULL)
				goto out;
			cand = colon + 1;
		}
	} else {
		if (u->is_phrase)
			goto out;
		cand = u->spec;
	}
	if (*cand != '\0' && policy_addr_normalize(cand, out, outsz, NULL) == 0)
		rc = 1;
out:
	memset(u, 0, sizeof(*u));
	return rc;
}

int policy_addr_first_mailbox(const char *value, char *out, size_t outsz)
{
	struct unit *u;
	const char *p;
	size_t scanned = 0;
	int depth = 0, rc = 0;
	bool in_quote = false, in_angle = false, angle_done = false;

	if (value == NULL || outsz == 0)
		return 0;
	out[0] = '\0';
	u = sg_xcalloc(1, sizeof(*u));
	for (p = value; *p != '\0' && scanned < POLICY_HEADER_SCAN_MAX; p++, scanned++) {
		char c = *p;

		if (depth > 0) {  /* inside a comment */
			if (c == '\\' && p[1] != '\0')
				p++;
			else if (c == '(' && ++depth > POLICY_COMMENT_DEPTH)
				goto out;
			else if (c == ')')
				depth--;
			continue;
		}
		if (in_quote) {
			if (c == '\r' || c == '\n')
				continue;  /* folding inside a quoted string */
			if (!angle_done)
				unit_put(u, in_angle, c);
			if (c == '\\' && p[1] != '\0') {
				p++;
				if (!angle_done)
					unit_put(u, in_angle, *p);
			} else if (c == '"') {
				in_quote = false;
			}
			continue;
		}
		switch (c) {
		case '(':
			depth = 1;
			u->pending_ws = true;
			break;
		case '"':
			in_quote = true;
			if (!angle_done)
				unit_put(u, in_angle, c);
			break;
		case '<':
			if (in_angle || angle_done) {
				u->is_overflow = true;  /* nested or second angle: garbage */
				break;
			}
			in_angle = true;
			u->has_angle = true;
			break;
		case '>':
			if (in_angle) {
				in_angle = false;
				angle_done = true;
			}
			break;
		case ',':
		case ';':
			if (in_angle) {
				unit_put(u, true, c);  /* route list */
				break;
			}
			if (unit_take(u, out, outsz) == 1) {
				rc = 1;
				goto out;
			}
			angle_done = false;
			break;
		case ':':
			if (in_angle) {
				unit_put(u, true, c);
				break;
			}
			/* group display name "team:" - discard what came before */
			u->slen = 0;
			u->spec[0] = '\0';
			u->is_phrase = false;
			u->pending_ws = false;
			break;
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			if (!in_angle)
				u->pending_ws = true;
			break;
		default:
			if (!angle_done)
				unit_put(u, in_angle, c);
			break;
		}
	}
	if (!in_angle && !in_quote && depth == 0 && unit_take(u, out, outsz) == 1)
		rc = 1;
out:
	free(u);
	if (rc == 0)
		out[0] = '\0';
	return rc;
}
