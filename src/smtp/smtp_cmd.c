/*
 * smtp_cmd.c - the SMTP command-line parser of the listener: verb lookup and
 * the arguments of MAIL and RCPT (reverse-/forward-path and ESMTP parameters).
 * Pure functions over one line (no I/O, no allocation); called by
 * smtp_session.c in a listener thread, and by the unit tests and the fuzzer.
 *
 * RFCs: 5321 (4.1.2 path syntax, 4.5.3.1 limits, source routes ignored),
 * 1870 (SIZE), 6152 (8BITMIME), 6531 (SMTPUTF8), 3461 (DSN: RET, ENVID,
 * NOTIFY, ORCPT and xtext), 2034 (enhanced status codes in the replies).
 *
 * Decisions: angle brackets are required (as Postfix strict_rfc821_envelopes
 * would; every real client sends them), but spaces after "FROM:"/"TO:" are
 * tolerated. Quoted local parts are kept verbatim (with their quotes). Non-
 * ASCII bytes are allowed in addresses only with SMTPUTF8 and only as valid
 * UTF-8; otherwise 553 5.6.7.
 */
#include "smtp_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
	{"HELO", SMTP_V_HELO}, {"EHLO", SMTP_V_EHLO}, {"MAIL", SMTP_V_MAIL},
	{"RCPT", SMTP_V_RCPT}, {"DATA", SMTP_V_DATA}, {"RSET", SMTP_V_RSET},
	{"NOOP", SMTP_V_NOOP}, {"QUIT", SMTP_V_QUIT}, {"VRFY", SMTP_V_VRFY},
	{"EXPN", SMTP_V_EXPN}, {"HELP", SMTP_V_HELP}, {"STARTTLS", SMTP_V_STARTTLS},
	{"AUTH", SMTP_V_AUTH}, {"BDAT", SMTP_V_BDAT},
};

static const struct smtp_status st_mail_syntax = {501, "5.5.4",
	"Syntax: MAIL FROM:<address> [parameters]"};
static const struct smtp_status st_rcpt_syntax = {501, "5.5.4",
	"Syntax: RCPT TO:<address> [parameters]"};
static const struct smtp_status st_bad_sender = {501, "5.1.7",
	"Bad sender address syntax"};
static const struct smtp_status st_bad_rcpt = {501, "5.1.3",
	"Bad recipient address syntax"};
static const struct smtp_status st_need_utf8 = {553, "5.6.7",
	"Non-ASCII address requires SMTPUTF8"};
static const struct smtp_status st_bad_utf8 = {553, "5.6.7",
	"Malformed UTF-8 in address"};
static const struct smtp_status st_param_unknown = {555, "5.5.4",
	"Unsupported MAIL/RCPT parameter"};
static const struct smtp_status st_param_dup = {501, "5.5.4",
	"Duplicate MAIL/RCPT parameter"};
static const struct smtp_status st_param_syntax = {501, "5.5.4",
	"Bad MAIL/RCPT parameter syntax"};
static const struct smtp_status st_size = {501, "5.5.4", "Bad SIZE parameter"};
static const struct smtp_status st_body = {501, "5.5.4", "Unsupported BODY type"};
static const struct smtp_status st_ret = {501, "5.5.4", "Bad RET parameter"};
static const struct smtp_status st_envid = {501, "5.5.4", "Bad ENVID parameter"};
static const struct smtp_status st_notify = {501, "5.5.4", "Bad NOTIFY parameter"};
static const struct smtp_status st_orcpt = {501, "5.5.4", "Bad ORCPT parameter"};
static const struct smtp_status st_smtputf8 = {501, "5.5.4",
	"SMTPUTF8 takes no value"};

enum smtp_verb smtp_cmd_verb(const char *line, size_t len, const char **args_r)
{
	size_t vlen = 0;
	size_t i;

	while (vlen < len && line[vlen] != ' ')
		vlen++;
	*args_r = vlen < len ? line + vlen + 1 : line + len;
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
		if (strlen(smtp_verbs[i].name) == vlen &&
			strncasecmp(line, smtp_verbs[i].name, vlen) == 0)
			return smtp_verbs[i].verb;
	}
	return SMTP_V_UNKNOWN;
}

const char *smtp_verb_name(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
		if (smtp_verbs[i].verb == v)
			return smtp_verbs[i].name;
	}
	return "UNKNOWN";
}

bool smtp_utf8_is_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
			(cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static bool smtp_is_atext(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL || c >= 0x80;
}

/* smtp_domain_scan - a domain or address literal at p; returns its length or 0. */
static size_t smtp_domain_scan(const char *p)
{
	const char *q = p;

	if (*q == '[') {
		char lit[64];
		const char *end = strchr(q, ']');
		size_t n;
		unsigned char bin[16];

		if (end == NULL)
			return 0;
		n = (size_t)(end - q - 1);
		if (n == 0 || n >= sizeof(lit))
			return 0;
		memcpy(lit, q + 1, n);
		lit[n] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0) {
			if (inet_pton(AF_INET6, lit + 5, bin) != 1)
				return 0;
		} else if (inet_pton(AF_INET, lit, bin) != 1) {
			return 0;
		}
		return n + 2;
	}
	for (;;) {
		size_t label = 0;

		while (isalnum((unsigned char)*q) || *q == '-' || *q == '_' ||
			(unsigned char)*q >= 0x80) {
			q++;
			label++;
		}
		if (label == 0 || q[-1] == '-' || q[-(ptrdiff_t)label] == '-')
			return 0;
		if (*q != '.')
			break;
		q++;
	}
	return (size_t)(q - p);
}

/*
 * smtp_path_parse - "<...>" at *pp into addr; advances *pp past '>'.
 * null_ok: "<>" allowed (MAIL). 0 ok, -1 syntax, -2 too long.
 */
static int smtp_path_parse(const char **pp, bool null_ok, char *addr, bool *has8_r)
{
	const char *p = *pp;
	const char *start;
	size_t llen, dlen;
	size_t i;

	*has8_r = false;
	addr[0] = '\0';
	if (*p != '<')
		return -1;
	p++;
	if (*p == '>') {
		if (!null_ok)
			return -1;
		*pp = p + 1;
		return 0;
	}
	/* A-d-l (source route): "@a,@b:" is accepted and ignored (RFC 5321 4.1.2). */
	if (*p == '@') {
		for (;;) {
			size_t n;

			p++;
			n = smtp_domain_scan(p);
			if (n == 0)
				return -1;
			p += n;
			if (*p == ',' && p[1] == '@') {
				p++;
				continue;
			}
			if (*p != ':')
				return -1;
			p++;
			break;
		}
	}
	start = p;
	if (*p == '"') {
		p++;
		while (*p != '"') {
			unsigned char c = (unsigned char)*p;

			if (c == '\\') {
				if ((unsigned char)p[1] < 32 || (unsigned char)p[1] == 127)
					return -1;
				p += 2;
				continue;
			}
			if (c < 32 || c == 127)
				return -1;
			p++;
		}
		p++;
	} else {
		for (;;) {
			const char *atom = p;

			while (smtp_is_atext((unsigned char)*p))
				p++;
			if (p == atom)
				return -1;
			if (*p != '.')
				break;
			p++;
		}
	}
	llen = (size_t)(p - start);
	if (*p != '@')
		return -1; /* XXX: RCPT TO:<postmaster> without a domain is refused */
	p++;
	dlen = smtp_domain_scan(p);
	if (dlen == 0)
		return -1;
	p += dlen;
	if (*p != '>')
		return -1;
	if (llen > SMTP_LOCAL_MAX || dlen > SMTP_DOMAIN_MAX || llen + 1 + dlen > SMTP_PATH_MAX)
		return -2;
	memcpy(addr, start, llen + 1 + dlen);
	addr[llen + 1 + dlen] = '\0';
	for (i = 0; addr[i] != '\0'; i++) {
		if ((unsigned char)addr[i] >= 0x80)
			*has8_r = true;
	}
	*pp = p + 1;
	return 0;
}

/* smtp_xtext_ok - RFC 3461 xtext: 33..126 except '+' and '=', or "+HH". */
static bool smtp_xtext_ok(const char *s, bool utf8)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '+') {
			if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]) ||
				islower((unsigned char)s[1]) || islower((unsigned char)s[2]))
				return false;
			s += 2;
			continue;
		}
		if (c >= 0x80 && utf8)
			continue;
		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return true;
}

struct smtp_param {
	char key[32];
	char value[SMTP_ORCPT_MAX + 1];
	bool has_value;
};

/* smtp_param_next - next "KEY[=VALUE]" at *pp; 1 got one, 0 end, -1 syntax. */
static int smtp_param_next(const char **pp, struct smtp_param *prm)
{
	const char *p = *pp;
	size_t klen = 0, vlen = 0;

	while (*p == ' ')
		p++;
	if (*p == '\0') {
		*pp = p;
		return 0;
	}
	if (!isalnum((unsigned char)*p))
		return -1;
	while (isalnum((unsigned char)p[klen]) || p[klen] == '-')
		klen++;
	if (klen >= sizeof(prm->key))
		return -1;
	memcpy(prm->key, p, klen);
	prm->key[klen] = '\0';
	p += klen;
	prm->has_value = false;
	prm->value[0] = '\0';
	if (*p == '=') {
		p++;
		while (p[vlen] != '\0' && p[vlen] != ' ') {
			unsigned char c = (unsigned char)p[vlen];

			if (c < 33 || c == 127 || c == '=')
				return -1;
			vlen++;
		}
		if (vlen == 0 || vlen >= sizeof(prm->value))
			return -1;
		memcpy(prm->value, p, vlen);
		prm->value[vlen] = '\0';
		prm->has_value = true;
		p += vlen;
	}
	if (*p != '\0' && *p != ' ')
		return -1;
	*pp = p;
	return 1;
}

/* smtp_prefix - args starts with word (case-insensitive); skip it and spaces. */
static const char *smtp_prefix(const char *args, const char *word)
{
	size_t n = strlen(word);

	if (strncasecmp(args, word, n) != 0)
		return NULL;
	args += n;
	while (*args == ' ')
		args++;
	return args;
}

static int smtp_fail(struct smtp_status *st, const struct smtp_status *what)
{
	*st = *what;
	return -1;
}

int smtp_cmd_mail(const char *args, struct smtp_mail_args *a, struct smtp_status *st)
{
	const char *p = smtp_prefix(args, "FROM:");
	struct smtp_param prm;
	unsigned seen = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	if (p == NULL)
		return smtp_fail(st, &st_mail_syntax);
	rc = smtp_path_parse(&p, true, a->addr, &a->addr_8bit);
	if (rc < 0)
		return smtp_fail(st, &st_bad_sender);
	if (*p != '\0' && *p != ' ')
		return smtp_fail(st, &st_bad_sender);
	while ((rc = smtp_param_next(&p, &prm)) > 0) {
		unsigned bit;

		if (strcasecmp(prm.key, "SIZE") == 0) {
			size_t i;

			bit = 1;
			if (!prm.has_value || strlen(prm.value) > 20)
				return smtp_fail(st, &st_size);
			for (i = 0; prm.value[i] != '\0'; i++) {
				if (!isdigit((unsigned char)prm.value[i]))
					return smtp_fail(st, &st_size);
			}
			if (sg_parse_u64(prm.value, UINT64_MAX, &a->size) < 0)
				a->size = UINT64_MAX; /* 20 digits: over any limit */
			a->has_size = true;
		} else if (strcasecmp(prm.key, "BODY") == 0) {
			bit = 2;
			if (prm.has_value && strcasecmp(prm.value, "7BIT") == 0)
				a->body = SMTP_BODY_7BIT;
			else if (prm.has_value && strcasecmp(prm.value, "8BITMIME") == 0)
				a->body = SMTP_BODY_8BITMIME;
			else
				return smtp_fail(st, &st_body);
		} else if (strcasecmp(prm.key, "SMTPUTF8") == 0) {
			bit = 4;
			if (prm.has_value)
				return smtp_fail(st, &st_smtputf8);
			a->smtputf8 = true;
		} else if (strcasecmp(prm.key, "RET") == 0) {
			bit = 8;
			if (prm.has_value && strcasecmp(prm.value, "FULL") == 0)
				a->ret = SMTP_RET_FULL;
			else if (prm.has_value && strcasecmp(prm.value, "HDRS") == 0)
				a->ret = SMTP_RET_HDRS;
			else
				return smtp_fail(st, &st_ret);
		} else if (strcasecmp(prm.key, "ENVID") == 0) {
			bit = 16;
			if (!prm.has_value || strlen(prm.value) > SMTP_ENVID_MAX ||
				!smtp_xtext_ok(prm.value, false))
				return smtp_fail(st, &st_envid);
			sg_strlcpy(a->envid, prm.value, sizeof(a->envid));
		} else {
			return smtp_fail(st, &st_param_unknown);
		}
		if ((seen & bit) != 0)
			return smtp_fail(st, &st_param_dup);
		seen |= bit;
	}
	if (rc < 0)
		return smtp_fail(st, &st_param_syntax);
	if (a->addr_8bit) {
		if (!a->smtputf8)
			return smtp_fail(st, &st_need_utf8);
		if (!smtp_utf8_is_valid((const unsigned char *)a->addr, strlen(a->addr)))
			return smtp_fail(st, &st_bad_utf8);
	}
	return 0;
}

/* smtp_notify_parse - "NEVER" or a list of SUCCESS, FAILURE, DELAY. */
static int smtp_notify_parse(const char *v, unsigned *notify_r)
{
	unsigned n = 0;

	while (*v != '\0') {
		size_t len = strcspn(v, ",");
		unsigned bit;

		if (len == 5 && strncasecmp(v, "NEVER", 5) == 0)
			bit = SMTP_NOTIFY_NEVER;
		else if (len == 7 && strncasecmp(v, "SUCCESS", 7) == 0)
			bit = SMTP_NOTIFY_SUCCESS;
		else if (len == 7 && strncasecmp(v, "FAILURE", 7) == 0)
			bit = SMTP_NOTIFY_FAILURE;
		else if (len == 5 && strncasecmp(v, "DELAY", 5) == 0)
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if ((n & bit) != 0)
			return -1;
		n |= bit;
		v += len;
		if (*v == ',') {
			v++;
			if (*v == '\0')
				return -1;
		}
	}
	if (n == 0 || ((n & SMTP_NOTIFY_NEVER) != 0 && n != SMTP_NOTIFY_NEVER))
		return -1;
	*notify_r = n;
	return 0;
}

/* smtp_orcpt_ok - "addr-type;xtext" (RFC 3461 4.2, utf-8 type RFC 6533). */
static bool smtp_orcpt_ok(const char *v, bool utf8)
{
	const char *semi = strchr(v, ';');
	const char *p;

	if (semi == NULL || semi == v || semi[1] == '\0')
		return false;
	for (p = v; p < semi; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
	}
	if (!smtp_xtext_ok(semi + 1, utf8))
		return false;
	return smtp_utf8_is_valid((const unsigned char *)v, strlen(v));
}

int smtp_cmd_rcpt(const char *args, bool smtputf8, struct smtp_rcpt_args *a,
	struct smtp_status *st)
{
	const char *p = smtp_prefix(args, "TO:");
	struct smtp_param prm;
	unsigned seen = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	if (p == NULL)
		return smtp_fail(st, &st_rcpt_syntax);
	rc = smtp_path_parse(&p, false, a->addr, &a->addr_8bit);
	if (rc < 0)
		return smtp_fail(st, &st_bad_rcpt);
	if (*p != '\0' && *p != ' ')
		return smtp_fail(st, &st_bad_rcpt);
	while ((rc = smtp_param_next(&p, &prm)) > 0) {
		unsigned bit;

		if (strcasecmp(prm.key, "NOTIFY") == 0) {
			bit = 1;
			if (!prm.has_value || smtp_notify_parse(prm.value, &a->notify) < 0)
				return smtp_fail(st, &st_notify);
		} else if (strcasecmp(prm.key, "ORCPT") == 0) {
			bit = 2;
			if (!prm.has_value || strlen(prm.value) > SMTP_ORCPT_MAX ||
				!smtp_orcpt_ok(prm.value, smtputf8))
				return smtp_fail(st, &st_orcpt);
			sg_strlcpy(a->orcpt, prm.value, sizeof(a->orcpt));
		} else {
			return smtp_fail(st, &st_param_unknown);
		}
		if ((seen & bit) != 0)
			return smtp_fail(st, &st_param_dup);
		seen |= bit;
	}
	if (rc < 0)
		return smtp_fail(st, &st_param_syntax);
	if (a->addr_8bit) {
		if (!smtputf8)
			return smtp_fail(st, &st_need_utf8);
		if (!smtp_utf8_is_valid((const unsigned char *)a->addr, strlen(a->addr)))
			return smtp_fail(st, &st_bad_utf8);
	}
	return 0;
}

bool smtp_cmd_helo_ok(const char *arg)
{
	size_t len = strlen(arg);
	size_t i;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)arg[i];

		if (c <= 32 || c == 127)
			return false;
	}
	return true;
}
