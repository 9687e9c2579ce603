/*
 * mta_settings.c - the MTA settings snapshot (SPEC F-ADM-5, guide §3):
 * factory defaults, loading the "mta.*" keys from the store in one query,
 * validation and normalisation of every value, the atomic multi-setting
 * update behind `sealgate mta set`, and SASL credentials per relay host.
 *
 * Callers: the daemon (periodic reload, hands snapshots to the SMTP listener
 * and the delivery agent), the CLI. Any thread; a snapshot is immutable after
 * load and shared by reference count (atomic).
 *
 * One table (mta_defs) names every setting with its kind, bounds and factory
 * value. The same parser validates `mta set`, the stored values at load time
 * and the factory values, and the same formatter produces the normalised value
 * that is stored and the value that is shown, so the three cannot drift.
 */
#include "mta_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MTA_KEY_PREFIX "mta."
#define MTA_SASL_NAME_PREFIX "sasl."
#define MTA_SASL_PREFIX MTA_KEY_PREFIX MTA_SASL_NAME_PREFIX
#define MTA_LIST_MAX 4096        /* entries in one list setting */
#define MTA_VALUE_MAX 65536      /* bytes of one setting value */
#define MTA_SASL_MAX 1024        /* SASL entries loaded */
#define MTA_USER_MAX 512
#define MTA_PASSWORD_MAX 4096
#define MTA_UPDATE_MAX 256       /* assignments in one update */
#define MTA_PG_LOCK_ID "1397181780" /* advisory lock of MTA updates ("SGMT") */

#define OFF(f) offsetof(struct mta_settings, f)
#define DAY (24u * 3600u)

static const struct mta_def mta_defs[] = {
	{"relay_domains", MTA_K_DOMAINS, OFF(relay_domains), 0, 0, ""},
	{"relay_domains_match_subdomains", MTA_K_BOOL,
		OFF(relay_domains_match_subdomains), 0, 0, "yes"},
	{"my_networks", MTA_K_NETWORKS, OFF(my_networks), 0, 0, "127.0.0.0/8 ::1/128"},
	{"hostname", MTA_K_HOSTNAME, OFF(hostname), 0, 0, ""},
	{"helo_name", MTA_K_HOSTNAME, OFF(helo_name), 0, 0, ""},
	{"internal_relay_host", MTA_K_RELAY, OFF(internal_relay), 0, 0, ""},
	{"internal_relay_mx", MTA_K_BOOL, OFF(internal_relay.use_mx), 0, 0, "no"},
	{"external_relay_host", MTA_K_RELAY, OFF(external_relay), 0, 0, ""},
	{"external_relay_mx", MTA_K_BOOL, OFF(external_relay.use_mx), 0, 0, "no"},
	{"before_filter_size", MTA_K_SIZE, OFF(before_filter_size), 1024,
		1ull << 40, "10240000"},
	{"after_filter_size", MTA_K_SIZE, OFF(after_filter_size), 1024, 1ull << 40,
		"512000000"},
	{"max_received_headers", MTA_K_UINT, OFF(max_received_headers), 1, 1000, "100"},
	{"max_recipients", MTA_K_UINT, OFF(max_recipients), 1, 100000, "1000"},
	{"reject_unverified_recipient", MTA_K_BOOL, OFF(reject_unverified_recipient), 0,
		0, "no"},
	{"unverified_recipient_code", MTA_K_CODE, OFF(unverified_recipient_code), 0, 0,
		"450"},
	{"verify_cache_positive", MTA_K_DURATION, OFF(verify_cache_positive), 0,
		365 * DAY, "2678400"},
	{"verify_cache_negative", MTA_K_DURATION, OFF(verify_cache_negative), 0,
		365 * DAY, "259200"},
	{"tls_level", MTA_K_TLS, OFF(tls_level), 0, 0, "may"},
	{"max_queue_lifetime", MTA_K_DURATION, OFF(max_queue_lifetime), 0, 100 * DAY,
		"432000"},
	{"backoff_min", MTA_K_DURATION, OFF(backoff_min), 1, 7 * DAY, "300"},
	{"backoff_max", MTA_K_DURATION, OFF(backoff_max), 1, 7 * DAY, "4000"},
};
#define MTA_NDEFS (sizeof(mta_defs) / sizeof(mta_defs[0]))

/* Input-only synonyms (clear names used by scripts and the e2e harness). */
static const struct {
	const char *alias, *name;
} mta_aliases[] = {
	{"internal_relay", "internal_relay_host"},
	{"external_relay", "external_relay_host"},
	{"max_message_size", "before_filter_size"},
	{"reject_unverified_code", "unverified_recipient_code"},
	{"queue_lifetime", "max_queue_lifetime"},
};

static const char *const mta_tls_names[] = {"none", "may", "encrypt", "verify"};

size_t mta_def_count(void)
{
	return MTA_NDEFS;
}

const struct mta_def *mta_def_at(size_t i)
{
	return i < MTA_NDEFS ? &mta_defs[i] : NULL;
}

const char *mta_tls_level_name(enum mta_tls_level l)
{
	return (unsigned)l < sizeof(mta_tls_names) / sizeof(mta_tls_names[0]) ?
		mta_tls_names[l] : "?";
}

/* mta_def_find - the setting called name (aliases resolved), or NULL. */
static const struct mta_def *mta_def_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(mta_aliases) / sizeof(mta_aliases[0]); i++) {
		if (strcmp(mta_aliases[i].alias, name) == 0) {
			name = mta_aliases[i].name;
			break;
		}
	}
	for (i = 0; i < MTA_NDEFS; i++) {
		if (strcmp(mta_defs[i].name, name) == 0)
			return &mta_defs[i];
	}
	return NULL;
}

bool mta_setting_is_known(const char *name)
{
	return name != NULL && mta_def_find(name) != NULL;
}

/* mta_esc - untrusted text for an error message (short, escaped). */
static const char *mta_esc(char *out, size_t outsz, const char *in)
{
	return sg_log_esc(out, outsz, in, strlen(in));
}

static void mta_strv_free(char ***vp, size_t *np)
{
	size_t i;

	for (i = 0; *vp != NULL && i < *np; i++)
		free((*vp)[i]);
	free(*vp);
	*vp = NULL;
	*np = 0;
}

/* mta_domain_is_valid - LDH labels of 1..63 without a leading or trailing
 * '-', total <= 253, and a last label that is not all digits (RFC 1123 2.1,
 * RFC 3696 2: that would be an IPv4 address). */
static bool mta_domain_is_valid(const char *h)
{
	size_t len = strlen(h);
	size_t label = 0;
	bool all_digits = true;
	const char *p;

	if (len == 0 || len > 253)
		return false;
	for (p = h; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			all_digits = true;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return false;
		if (label == 0 && c == '-')
			return false;
		if (!isdigit(c))
			all_digits = false;
		if (++label > 63)
			return false;
	}
	return label > 0 && p[-1] != '-' && !all_digits;
}

/* mta_host_normalise - check a relay host (name, IPv4 or IPv6 address without
 * brackets) and rewrite it in canonical form (lower case, canonical address
 * text) in place; host has room for 256 bytes. */
static int mta_host_normalise(char *host, struct sg_error *err)
{
	unsigned char a[16];
	char esc[96];
	const char *last;

	if (strchr(host, ':') != NULL) {
		if (inet_pton(AF_INET6, host, a) != 1) {
			sg_error_set(err, SG_E_INVAL, "bad IPv6 address '%s'",
				mta_esc(esc, sizeof(esc), host));
			return -1;
		}
		inet_ntop(AF_INET6, a, host, 256);
		return 0;
	}
	last = strrchr(host, '.');
	last = last != NULL ? last + 1 : host;
	if (*last != '\0' && strspn(last, "0123456789") == strlen(last)) {
		if (inet_pton(AF_INET, host, a) != 1) {
			sg_error_set(err, SG_E_INVAL, "bad IPv4 address '%s'",
				mta_esc(esc, sizeof(esc), host));
			return -1;
		}
		inet_ntop(AF_INET, a, host, 256);
		return 0;
	}
	sg_str_lower(host);
	if (!mta_domain_is_valid(host)) {
		sg_error_set(err, SG_E_INVAL, "bad host name '%s'",
			mta_esc(esc, sizeof(esc), host));
		return -1;
	}
	return 0;
}

/* mta_host_is_ip - host is an IPv4 or IPv6 address (no MX lookup possible). */
static bool mta_host_is_ip(const char *host)
{
	unsigned char a[16];

	return host != NULL && (inet_pton(AF_INET, host, a) == 1 ||
		inet_pton(AF_INET6, host, a) == 1);
}

/* mta_hostport_parse - "host", "host:port", "[host]:port", "[v6]:port" into
 * a normalised host and port (default 25). */
static int mta_hostport_parse(const char *value, struct sg_hostport *hp_r,
	struct sg_error *err)
{
	if (sg_hostport_parse(value, 25, hp_r, err) < 0)
		return -1;
	return mta_host_normalise(hp_r->host, err);
}

char *mta_sasl_hostport(const char *host, unsigned port)
{
	if (strchr(host, ':') != NULL)
		return sg_xasprintf("[%s]:%u", host, port);
	return sg_xasprintf("%s:%u", host, port);
}

/* mta_split - split a comma/space separated list into tokens (copies). */
static int mta_split(const char *value, char ***v_r, size_t *n_r, struct sg_error *err)
{
	const char *p = value;
	char **v = NULL;
	size_t n = 0;

	*v_r = NULL;
	*n_r = 0;
	while (*p != '\0') {
		size_t len;

		p += strspn(p, ", \t\r\n");
		if (*p == '\0')
			break;
		len = strcspn(p, ", \t\r\n");
		if (n >= MTA_LIST_MAX) {
			sg_error_set(err, SG_E_INVAL, "more than %d entries", MTA_LIST_MAX);
			mta_strv_free(&v, &n);
			return -1;
		}
		v = sg_xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = sg_xstrndup(p, len);
		p += len;
	}
	/* "none" is the explicit empty list (an empty value means "default"). */
	if (n == 1 && strcasecmp(v[0], "none") == 0)
		mta_strv_free(&v, &n);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* mta_duration_parse - seconds, or a number with s/m/h/d/w. */
static int mta_duration_parse(const char *s, uint64_t max, uint64_t *out_r)
{
	char num[32];
	size_t len = strlen(s);
	uint64_t mult;
	uint64_t v;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len + 1);
	switch (tolower((unsigned char)num[len - 1])) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = DAY;
		break;
	case 'w':
		mult = 7 * DAY;
		break;
	default:
		mult = 0;
		break;
	}
	if (mult != 0)
		num[len - 1] = '\0';
	else
		mult = 1;
	if (sg_parse_u64(num, max / mult, &v) < 0)
		return -1;
	*out_r = v * mult;
	return 0;
}

static int mta_apply_domains(struct mta_settings *s, const char *value,
	struct sg_error *err)
{
	char **v = NULL;
	size_t n = 0, i;

	if (mta_split(value, &v, &n, err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		size_t len = strlen(v[i]);

		if (len > 1 && v[i][len - 1] == '.')
			v[i][len - 1] = '\0';
		sg_str_lower(v[i]);
		if (!mta_domain_is_valid(v[i])) {
			char esc[128];

			sg_error_set(err, SG_E_INVAL, "bad domain '%s'",
				mta_esc(esc, sizeof(esc), v[i]));
			mta_strv_free(&v, &n);
			return -1;
		}
	}
	mta_strv_free(&s->relay_domains, &s->n_relay_domains);
	s->relay_domains = v;
	s->n_relay_domains = n;
	return 0;
}

static int mta_apply_networks(struct mta_settings *s, const char *value,
	struct sg_error *err)
{
	char **v = NULL;
	size_t n = 0, i;
	struct mta_cidr *c = NULL;

	if (mta_split(value, &v, &n, err) < 0)
		return -1;
	c = sg_xcalloc(n > 0 ? n : 1, sizeof(*c));
	for (i = 0; i < n; i++) {
		char canon[64];

		if (mta_cidr_parse(v[i], &c[i], err) < 0) {
			mta_strv_free(&v, &n);
			free(c);
			return -1;
		}
		mta_cidr_format(&c[i], canon, sizeof(canon));
		free(v[i]);
		v[i] = sg_xstrdup(canon);
	}
	mta_strv_free(&s->my_networks, &s->n_my_networks);
	free(s->my_cidrs);
	s->my_networks = v;
	s->n_my_networks = n;
	s->my_cidrs = c;
	return 0;
}

static int mta_apply_relay(struct mta_relay *r, const char *value, struct sg_error *err)
{
	struct sg_hostport hp;

	if (*value == '\0') {
		free(r->host);
		r->host = NULL;
		r->port = 25;
		return 0;
	}
	if (mta_hostport_parse(value, &hp, err) < 0)
		return -1;
	free(r->host);
	r->host = sg_xstrdup(hp.host);
	r->port = hp.port;
	return 0;
}

static int mta_apply_hostname(char **fp, const char *value, struct sg_error *err)
{
	char *h = sg_xstrdup(value);
	size_t len = strlen(h);
	char esc[96];

	if (len > 1 && h[len - 1] == '.')
		h[len - 1] = '\0';
	sg_str_lower(h);
	if (*h != '\0' && !mta_domain_is_valid(h)) {
		sg_error_set(err, SG_E_INVAL, "bad host name '%s'", mta_esc(esc, sizeof(esc), h));
		free(h);
		return -1;
	}
	free(*fp);
	*fp = h;
	return 0;
}

/* mta_apply - parse value for d into s; err names the setting on failure. */
static int mta_apply(struct mta_settings *s, const struct mta_def *d, const char *value,
	struct sg_error *err)
{
	char *base = (char *)s;
	char esc[64];
	uint64_t u = 0;
	bool b = false;
	size_t i;
	int rc = -1;

	(void)mta_esc(esc, sizeof(esc), value); /* for the messages below */
	switch (d->kind) {
	case MTA_K_DOMAINS:
		rc = mta_apply_domains(s, value, err);
		break;
	case MTA_K_NETWORKS:
		rc = mta_apply_networks(s, value, err);
		break;
	case MTA_K_BOOL:
		if (sg_parse_bool(value, &b) < 0) {
			sg_error_set(err, SG_E_INVAL, "expected yes or no, got '%s'", esc);
			break;
		}
		*(bool *)(base + d->off) = b;
		rc = 0;
		break;
	case MTA_K_HOSTNAME:
		rc = mta_apply_hostname((char **)(base + d->off), value, err);
		break;
	case MTA_K_RELAY:
		rc = mta_apply_relay((struct mta_relay *)(base + d->off), value, err);
		break;
	case MTA_K_SIZE:
		if (sg_parse_size(value, &u) < 0 || u < d->min || u > d->max) {
			sg_error_set(err, SG_E_INVAL,
				"expected a size from %llu to %llu bytes (k/M/G suffixes allowed), "
				"got '%s'", (unsigned long long)d->min,
				(unsigned long long)d->max, esc);
			break;
		}
		*(uint64_t *)(base + d->off) = u;
		rc = 0;
		break;
	case MTA_K_UINT:
		if (sg_parse_u64(value, d->max, &u) < 0 || u < d->min) {
			sg_error_set(err, SG_E_INVAL, "expected a number from %llu to %llu, got '%s'",
				(unsigned long long)d->min, (unsigned long long)d->max, esc);
			break;
		}
		*(unsigned *)(base + d->off) = (unsigned)u;
		rc = 0;
		break;
	case MTA_K_DURATION:
		if (mta_duration_parse(value, d->max, &u) < 0 || u < d->min) {
			sg_error_set(err, SG_E_INVAL,
				"expected a duration from %llus to %llus (s/m/h/d/w suffixes "
				"allowed), got '%s'", (unsigned long long)d->min,
				(unsigned long long)d->max, esc);
			break;
		}
		*(unsigned *)(base + d->off) = (unsigned)u;
		rc = 0;
		break;
	case MTA_K_CODE:
		if (strcmp(value, "450") != 0 && strcmp(value, "550") != 0) {
			sg_error_set(err, SG_E_INVAL, "expected 450 or 550, got '%s'", esc);
			break;
		}
		*(unsigned *)(base + d->off) = value[0] == '4' ? 450 : 550;
		rc = 0;
		break;
	case MTA_K_TLS:
		for (i = 0; i < sizeof(mta_tls_names) / sizeof(mta_tls_names[0]); i++) {
			if (strcasecmp(value, mta_tls_names[i]) == 0) {
				*(enum mta_tls_level *)(base + d->off) = (enum mta_tls_level)i;
				rc = 0;
				break;
			}
		}
		if (rc < 0)
			sg_error_set(err, SG_E_INVAL,
				"expected none, may, encrypt or verify, got '%s'", esc);
		break;
	}
	if (rc < 0)
		sg_error_prefix(err, "setting %s: ", d->name);
	return rc;
}

char *mta_def_format(const struct mta_settings *s, const struct mta_def *d)
{
	const char *base = (const char *)s;
	struct sg_buf b;
	size_t i;

	sg_buf_init(&b, SIZE_MAX / 2);
	switch (d->kind) {
	case MTA_K_DOMAINS:
	case MTA_K_NETWORKS: {
		char *const *v = d->kind == MTA_K_DOMAINS ? s->relay_domains : s->my_networks;
		size_t n = d->kind == MTA_K_DOMAINS ? s->n_relay_domains : s->n_my_networks;

		for (i = 0; i < n; i++)
			(void)sg_buf_printf(&b, NULL, "%s%s", i > 0 ? ", " : "", v[i]);
		break;
	}
	case MTA_K_BOOL:
		(void)sg_buf_append_str(&b, *(const bool *)(base + d->off) ? "yes" : "no",
			NULL);
		break;
	case MTA_K_HOSTNAME: {
		const char *h = *(char *const *)(base + d->off);

		(void)sg_buf_append_str(&b, h != NULL ? h : "", NULL);
		break;
	}
	case MTA_K_RELAY: {
		const struct mta_relay *r = (const struct mta_relay *)(base + d->off);
		char *hp;

		if (r->host == NULL || r->host[0] == '\0')
			break;
		hp = mta_sasl_hostport(r->host, r->port);
		(void)sg_buf_append_str(&b, hp, NULL);
		free(hp);
		break;
	}
	case MTA_K_SIZE:
		(void)sg_buf_printf(&b, NULL, "%llu",
			(unsigned long long)*(const uint64_t *)(base + d->off));
		break;
	case MTA_K_UINT:
	case MTA_K_DURATION:
	case MTA_K_CODE:
		(void)sg_buf_printf(&b, NULL, "%u", *(const unsigned *)(base + d->off));
		break;
	case MTA_K_TLS:
		(void)sg_buf_append_str(&b,
			mta_tls_level_name(*(const enum mta_tls_level *)(base + d->off)), NULL);
		break;
	}
	return sg_buf_steal(&b);
}

struct mta_settings *mta_settings_defaults(const char *cfg_hostname)
{
	struct mta_settings *s = sg_xcalloc(1, sizeof(*s));
	struct sg_error err;
	size_t i;

	s->refcount = 1;
	s->internal_relay.port = 25;
	s->external_relay.port = 25;
	for (i = 0; i < MTA_NDEFS; i++) {
		/* The factory table is ours: a bad entry is a broken invariant. */
		if (mta_apply(s, &mta_defs[i], mta_defs[i].factory, &err) < 0) {
			sg_log(SG_LOG_ERR, "mta: factory value: %s", err.msg);
			abort();
		}
	}
	free(s->hostname);
	s->hostname = sg_xstrdup(cfg_hostname != NULL && *cfg_hostname != '\0' ?
		cfg_hostname : "localhost");
	free(s->helo_name);
	s->helo_name = sg_xstrdup(s->hostname);
	return s;
}

struct mta_settings *mta_settings_ref(struct mta_settings *s)
{
	if (s != NULL)
		__atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
	return s;
}

static void mta_secret_free(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static void mta_sasl_clear(struct mta_sasl *a)
{
	free(a->host);
	free(a->username);
	mta_secret_free(&a->password);
	memset(a, 0, sizeof(*a));
}

void mta_settings_free(struct mta_settings **sp)
{
	struct mta_settings *s;
	size_t i;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	*sp = NULL;
	if (__atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	mta_strv_free(&s->relay_domains, &s->n_relay_domains);
	mta_strv_free(&s->my_networks, &s->n_my_networks);
	free(s->my_cidrs);
	free(s->hostname);
	free(s->helo_name);
	free(s->internal_relay.host);
	free(s->external_relay.host);
	for (i = 0; i < s->n_sasl; i++)
		mta_sasl_clear(&s->sasl[i]);
	free(s->sasl);
	free(s);
}

/* mta_sasl_cred_check - username (non-empty, no ':' or control characters)
 * and password (non-empty, no line break) limits. */
static int mta_sasl_cred_check(const char *username, const char *password,
	struct sg_error *err)
{
	const char *p;

	if (username == NULL || *username == '\0' || strlen(username) > MTA_USER_MAX) {
		sg_error_set(err, SG_E_INVAL, "empty or too long user name");
		return -1;
	}
	for (p = username; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ':') {
			sg_error_set(err, SG_E_INVAL,
				"user name must not contain ':' or control characters");
			return -1;
		}
	}
	if (password == NULL || *password == '\0' || strlen(password) > MTA_PASSWORD_MAX ||
		strpbrk(password, "\r\n") != NULL) {
		sg_error_set(err, SG_E_INVAL,
			"password empty, longer than %d bytes or multi-line", MTA_PASSWORD_MAX);
		return -1;
	}
	return 0;
}

/* mta_sasl_add - parse one stored entry (key without "mta.sasl.", value
 * "user\npassword") into s->sasl. */
static int mta_sasl_add(struct mta_settings *s, const char *hostport, const char *value,
	struct sg_error *err)
{
	struct sg_hostport hp;
	const char *nl = strchr(value, '\n');
	char *user = NULL;
	int rc = -1;

	if (s->n_sasl >= MTA_SASL_MAX) {
		sg_error_set(err, SG_E_INVAL, "more than %d entries", MTA_SASL_MAX);
		return -1;
	}
	if (mta_hostport_parse(hostport, &hp, err) < 0)
		return -1;
	if (nl == NULL) {
		sg_error_set(err, SG_E_INVAL, "malformed credentials");
		return -1;
	}
	user = sg_xstrndup(value, (size_t)(nl - value));
	if (mta_sasl_cred_check(user, nl + 1, err) < 0)
		goto out;
	if (s->n_sasl % 16 == 0)
		s->sasl = sg_xrealloc(s->sasl, (s->n_sasl + 16) * sizeof(*s->sasl));
	s->sasl[s->n_sasl].host = sg_xstrdup(hp.host);
	s->sasl[s->n_sasl].port = hp.port;
	s->sasl[s->n_sasl].username = user;
	s->sasl[s->n_sasl].password = sg_xstrdup(nl + 1);
	s->n_sasl++;
	user = NULL;
	rc = 0;
out:
	free(user);
	return rc;
}

enum mta_read_mode {
	MTA_READ_STRICT,   /* a bad stored value is an error (load) */
	MTA_READ_LENIENT,  /* skip bad values and SASL entries (update check) */
};

/* mta_settings_read - overlay the stored "mta.*" keys on s (one query). */
static int mta_settings_read(struct store *db, struct mta_settings *s,
	enum mta_read_mode mode, bool *helo_set_r, struct sg_error *err)
{
	struct store_stmt *st = NULL;
	int rc = -1;
	int step;

	*helo_set_r = false;
	st = store_prepare(db, "SELECT key, value FROM settings WHERE substr(key, 1, 4) = ? "
		"ORDER BY key", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, MTA_KEY_PREFIX);
	while ((step = store_stmt_step(st, err)) == 1) {
		const char *key = store_col_text(st, 0);
		const char *val = store_col_text(st, 1);
		const struct mta_def *d;

		if (key == NULL || val == NULL)
			continue;
		if (strncmp(key, MTA_SASL_PREFIX, strlen(MTA_SASL_PREFIX)) == 0) {
			if (mode == MTA_READ_LENIENT)
				continue;
			if (mta_sasl_add(s, key + strlen(MTA_SASL_PREFIX), val, err) < 0) {
				err->code = SG_E_CONFIG;
				sg_error_prefix(err, "stored setting %s: ", key);
				goto out;
			}
			continue;
		}
		/* Only canonical names are stored; anything else is a newer
		 * version's (or a foreign) key. */
		d = mta_def_find(key + strlen(MTA_KEY_PREFIX));
		if (d == NULL || strcmp(d->name, key + strlen(MTA_KEY_PREFIX)) != 0) {
			sg_log(SG_LOG_DEBUG, "mta: ignoring unknown setting %s", key);
			continue;
		}
		if (d->kind == MTA_K_HOSTNAME && *val == '\0')
			continue;
		if (mta_apply(s, d, val, err) < 0) {
			if (mode == MTA_READ_LENIENT)
				continue;
			err->code = SG_E_CONFIG;
			sg_error_prefix(err, "stored ");
			goto out;
		}
		if (d->off == OFF(helo_name))
			*helo_set_r = true;
	}
	if (step < 0)
		goto out;
	rc = 0;
out:
	store_stmt_free(&st);
	return rc;
}

struct mta_settings *mta_settings_load(struct store *db, const char *cfg_hostname,
	struct sg_error *err)
{
	struct mta_settings *s = mta_settings_defaults(cfg_hostname);
	bool helo_set = false;

	if (mta_settings_read(db, s, MTA_READ_STRICT, &helo_set, err) < 0) {
		mta_settings_free(&s);
		return NULL;
	}
	if (!helo_set) {
		free(s->helo_name);
		s->helo_name = sg_xstrdup(s->hostname);
	}
	/* mta_settings_update refuses these combinations; values stored by
	 * other means are made safe rather than refused. */
	if (s->backoff_max < s->backoff_min)
		s->backoff_max = s->backoff_min;
	if (mta_host_is_ip(s->internal_relay.host))
		s->internal_relay.use_mx = false;
	if (mta_host_is_ip(s->external_relay.host))
		s->external_relay.use_mx = false;
	return s;
}

/* mta_settings_check_consistency - rules between settings (see mta.h). */
static int mta_settings_check_consistency(const struct mta_settings *s,
	struct sg_error *err)
{
	if (s->after_filter_size < s->before_filter_size) {
		sg_error_set(err, SG_E_INVAL, "setting after_filter_size (%llu) must not be "
			"smaller than before_filter_size (%llu)",
			(unsigned long long)s->after_filter_size,
			(unsigned long long)s->before_filter_size);
		return -1;
	}
	if (s->backoff_max < s->backoff_min) {
		sg_error_set(err, SG_E_INVAL, "setting backoff_max (%us) must not be smaller "
			"than backoff_min (%us)", s->backoff_max, s->backoff_min);
		return -1;
	}
	if (s->internal_relay.use_mx && mta_host_is_ip(s->internal_relay.host)) {
		sg_error_set(err, SG_E_INVAL, "setting internal_relay_mx: internal_relay_host "
			"%s is an IP address (no MX lookup)", s->internal_relay.host);
		return -1;
	}
	if (s->external_relay.use_mx && mta_host_is_ip(s->external_relay.host)) {
		sg_error_set(err, SG_E_INVAL, "setting external_relay_mx: external_relay_host "
			"%s is an IP address (no MX lookup)", s->external_relay.host);
		return -1;
	}
	return 0;
}

/* One parsed assignment of an update. */
struct mta_change {
	const struct mta_def *d;  /* NULL: a SASL entry */
	char *key;                /* "mta.<name>" or "mta.sasl.<host>:<port>" */
	char *value;              /* normalised value to store; NULL = delete */
};

static void mta_change_clear(struct mta_change *c)
{
	free(c->key);
	mta_secret_free(&c->value);
	memset(c, 0, sizeof(*c));
}

/* mta_normalise - validate value for d and return its stored form. */
static char *mta_normalise(const struct mta_def *d, const char *value,
	struct sg_error *err)
{
	struct mta_settings *s = mta_settings_defaults(NULL);
	char *norm = NULL;

	if (strlen(value) > MTA_VALUE_MAX)
		sg_error_set(err, SG_E_INVAL, "setting %s: value longer than %d bytes", d->name,
			MTA_VALUE_MAX);
	else if (mta_apply(s, d, value, err) == 0)
		norm = mta_def_format(s, d);
	mta_settings_free(&s);
	return norm;
}

/* mta_change_parse_sasl - "sasl.HOST[:PORT]" = "USER:PASSWORD" or "". */
static int mta_change_parse_sasl(const char *name, const char *value,
	struct mta_change *c, struct sg_error *err)
{
	struct sg_hostport hp;
	const char *colon;
	char *user = NULL;
	char *hps = NULL;
	int rc = -1;

	if (mta_hostport_parse(name + strlen(MTA_SASL_NAME_PREFIX), &hp, err) < 0)
		goto out;
	hps = mta_sasl_hostport(hp.host, hp.port);
	if (*value != '\0') {
		colon = strchr(value, ':');
		if (colon == NULL) {
			sg_error_set(err, SG_E_INVAL, "expected USER:PASSWORD");
			goto out;
		}
		user = sg_xstrndup(value, (size_t)(colon - value));
		if (mta_sasl_cred_check(user, colon + 1, err) < 0)
			goto out;
		c->value = sg_xasprintf("%s\n%s", user, colon + 1);
	}
	c->key = sg_xasprintf(MTA_SASL_PREFIX "%s", hps);
	rc = 0;
out:
	if (rc < 0) {
		char esc[96];

		sg_error_prefix(err, "setting %s: ", mta_esc(esc, sizeof(esc), name));
	}
	free(user);
	free(hps);
	return rc;
}

/* mta_change_parse - one "NAME=VALUE" into c (validated, normalised). */
static int mta_change_parse(const char *a, struct mta_change *c, struct sg_error *err)
{
	const char *eq = strchr(a, '=');
	char name[300];
	const char *value;
	char esc[96];

	memset(c, 0, sizeof(*c));
	if (eq == NULL || eq == a) {
		sg_error_set(err, SG_E_INVAL, "'%s': expected NAME=VALUE",
			mta_esc(esc, sizeof(esc), a));
		return -1;
	}
	value = eq + 1;
	if ((size_t)(eq - a) >= sizeof(name)) {
		sg_error_set(err, SG_E_INVAL, "unknown setting '%.*s...'", 40, a);
		return -1;
	}
	memcpy(name, a, (size_t)(eq - a));
	name[eq - a] = '\0';
	if (strncmp(name, MTA_SASL_NAME_PREFIX, strlen(MTA_SASL_NAME_PREFIX)) == 0)
		return mta_change_parse_sasl(name, value, c, err);
	c->d = mta_def_find(name);
	if (c->d == NULL) {
		sg_error_set(err, SG_E_INVAL, "unknown setting '%s'",
			mta_esc(esc, sizeof(esc), name));
		return -1;
	}
	if (*value != '\0') {
		c->value = mta_normalise(c->d, value, err);
		if (c->value == NULL)
			return -1;
	}
	c->key = sg_xasprintf(MTA_KEY_PREFIX "%s", c->d->name);
	return 0;
}

/* mta_update_check - the stored settings with the changes applied must be
 * consistent. Runs inside the update's transaction. */
static int mta_update_check(struct store *db, const struct mta_change *cs, size_t n,
	struct sg_error *err)
{
	struct mta_settings *s = mta_settings_defaults(NULL);
	bool helo_set;
	size_t i;
	int rc = -1;

	if (mta_settings_read(db, s, MTA_READ_LENIENT, &helo_set, err) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		const struct mta_def *d = cs[i].d;

		if (d == NULL)
			continue;
		if (mta_apply(s, d, cs[i].value != NULL ? cs[i].value : d->factory, err) < 0)
			goto out;
	}
	rc = mta_settings_check_consistency(s, err);
out:
	mta_settings_free(&s);
	return rc;
}

/* mta_update_write - store the changes (inside the transaction). */
static int mta_update_write(struct store *db, const struct mta_change *cs, size_t n,
	struct sg_error *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct mta_change *c = &cs[i];

		if (c->value != NULL) {
			if (store_setting_set(db, c->key, c->value, err) < 0)
				return -1;
			continue;
		}
		if (c->d == NULL) {
			char *old = NULL;
			int found = store_setting_get(db, c->key, &old, err);

			mta_secret_free(&old);
			if (found < 0)
				return -1;
			if (found == 0) {
				sg_error_set(err, SG_E_NOTFOUND, "setting %s: no credentials stored",
					c->key + strlen(MTA_KEY_PREFIX));
				return -1;
			}
		}
		if (store_setting_delete(db, c->key, err) < 0)
			return -1;
	}
	return 0;
}

int mta_settings_update(struct store *db, const char *const *assignments, size_t n,
	struct sg_error *err)
{
	struct mta_change *cs = NULL;
	size_t i, j;
	bool in_tx = false;
	int rc = -1;

	if (n == 0 || n > MTA_UPDATE_MAX) {
		sg_error_set(err, SG_E_INVAL, "expected 1 to %d NAME=VALUE assignments",
			MTA_UPDATE_MAX);
		return -1;
	}
	cs = sg_xcalloc(n, sizeof(*cs));
	for (i = 0; i < n; i++) {
		if (mta_change_parse(assignments[i], &cs[i], err) < 0)
			goto out;
		for (j = 0; j < i; j++) {
			if (strcmp(cs[j].key, cs[i].key) == 0) {
				sg_error_set(err, SG_E_INVAL, "setting %s given twice",
					cs[i].key + strlen(MTA_KEY_PREFIX));
				goto out;
			}
		}
	}
	if (store_begin(db, err) < 0)
		goto out;
	in_tx = true;
	/* SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL (read
	 * committed) needs a lock so that two concurrent updates cannot each
	 * pass the consistency check against the other's old values. */
	if (store_backend(db) == STORE_POSTGRES &&
		store_exec(db, "SELECT pg_advisory_xact_lock(" MTA_PG_LOCK_ID ")", err) < 0)
		goto out;
	if (mta_update_check(db, cs, n, err) < 0)
		goto out;
	if (mta_update_write(db, cs, n, err) < 0)
		goto out;
	in_tx = false;
	if (store_commit(db, err) < 0)
		goto out;
	rc = 0;
out:
	if (in_tx)
		(void)store_rollback(db, NULL);
	for (i = 0; i < n; i++)
		mta_change_clear(&cs[i]);
	free(cs);
	return rc;
}

int mta_setting_check(const char *name, const char *value, struct sg_error *err)
{
	const struct mta_def *d = name != NULL ? mta_def_find(name) : NULL;
	char *norm;
	char esc[96];

	if (d == NULL) {
		sg_error_set(err, SG_E_INVAL, "unknown setting '%s'",
			name != NULL ? mta_esc(esc, sizeof(esc), name) : "(null)");
		return -1;
	}
	norm = mta_normalise(d, value != NULL ? value : d->factory, err);
	if (norm == NULL)
		return -1;
	free(norm);
	return 0;
}

int mta_setting_set(struct store *db, const char *name, const char *value,
	struct sg_error *err)
{
	char *a;
	int rc;

	if (name == NULL || strchr(name, '=') != NULL) {
		sg_error_set(err, SG_E_INVAL, "bad setting name");
		return -1;
	}
	a = sg_xasprintf("%s=%s", name, value != NULL ? value : "");
	rc = mta_settings_update(db, (const char *const *)&a, 1, err);
	mta_secret_free(&a);
	return rc;
}

int mta_sasl_set(struct store *db, const char *host, unsigned port, const char *username,
	const char *password, struct sg_error *err)
{
	char *hp;
	char *a;
	int rc = -1;

	if (host == NULL || *host == '\0' || strchr(host, '[') != NULL || port == 0 ||
		port > 65535) {
		sg_error_set(err, SG_E_INVAL, "sasl: bad host or port");
		return -1;
	}
	if (password != NULL && mta_sasl_cred_check(username, password, err) < 0) {
		sg_error_prefix(err, "sasl: ");
		return -1;
	}
	hp = mta_sasl_hostport(host, port);
	if (password != NULL)
		a = sg_xasprintf(MTA_SASL_NAME_PREFIX "%s=%s:%s", hp, username, password);
	else
		a = sg_xasprintf(MTA_SASL_NAME_PREFIX "%s=", hp);
	rc = mta_settings_update(db, (const char *const *)&a, 1, err);
	mta_secret_free(&a);
	free(hp);
	return rc;
}
