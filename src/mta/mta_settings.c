/*
 * mta_settings.c - the MTA settings snapshot (SPEC F-ADM-5): factory
 * defaults, loading "mta.<name>" keys from the store, validation and
 * normalisation of one setting (mta_setting_set), SASL credentials, and the
 * text/JSON listing for `sealgate mta show`.
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
#include "mta.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define MTA_KEY_PREFIX "mta."
#define MTA_SASL_INDEX "mta.sasl_hosts"
#define MTA_SASL_PREFIX "mta.sasl."
#define MTA_LIST_MAX 4096        /* entries in one list setting */
#define MTA_VALUE_MAX 65536      /* bytes of one setting value */
#define MTA_SASL_MAX 1024

enum mta_kind {
	MTA_K_DOMAINS,
	MTA_K_NETWORKS,
	MTA_K_BOOL,
	MTA_K_HOSTNAME,
	MTA_K_RELAY,
	MTA_K_SIZE,
	MTA_K_UINT,
	MTA_K_DURATION,
	MTA_K_CODE,
	MTA_K_TLS,
};

struct mta_def {
	const char *name;
	enum mta_kind kind;
	size_t off;
	uint64_t min, max;
	const char *factory;
};

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

static const char *const mta_tls_names[] = {"none", "may", "encrypt", "verify"};

static const struct mta_def *mta_def_find(const char *name)
{
	size_t i;

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

static void mta_strv_free(char ***vp, size_t *np)
{
	size_t i;

	for (i = 0; *vp != NULL && i < *np; i++)
		free((*vp)[i]);
	free(*vp);
	*vp = NULL;
	*np = 0;
}

/* mta_hostname_is_valid - LDH labels of 1..63, total <= 253, no empty label. */
static bool mta_hostname_is_valid(const char *h)
{
	size_t len = strlen(h);
	size_t label = 0;
	const char *p;

	if (len == 0 || len > 253)
		return false;
	for (p = h; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
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
	*v_r = v;
	*n_r = n;
	return 0;
}

/* mta_duration_parse - seconds, or a number with s/m/h/d/w. */
static int mta_duration_parse(const char *s, uint64_t max, uint64_t *out_r)
{
	char num[32];
	size_t len = strlen(s);
	uint64_t mult = 1;
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
		if (!mta_hostname_is_valid(v[i])) {
			char esc[128];

			sg_error_set(err, SG_E_INVAL, "bad domain '%s'",
				sg_log_esc(esc, sizeof(esc), v[i], strlen(v[i])));
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
	if (sg_hostport_parse(value, 25, &hp, err) < 0)
		return -1;
	if (strchr(hp.host, ':') != NULL) {
		struct mta_cidr c;

		/* an IPv6 literal must be a plain address */
		if (mta_cidr_parse(hp.host, &c, NULL) < 0 || c.prefix != 128) {
			sg_error_set(err, SG_E_INVAL, "bad IPv6 address in '%s'", value);
			return -1;
		}
	}
	sg_str_lower(hp.host);
	free(r->host);
	r->host = sg_xstrdup(hp.host);
	r->port = hp.port;
	return 0;
}

/* mta_apply - parse value for def into s; err names the setting on failure. */
static int mta_apply(struct mta_settings *s, const struct mta_def *d, const char *value,
	struct sg_error *err)
{
	char *base = (char *)s;
	uint64_t u = 0;
	bool b = false;
	size_t i;
	int rc = -1;

	switch (d->kind) {
	case MTA_K_DOMAINS:
		rc = mta_apply_domains(s, value, err);
		break;
	case MTA_K_NETWORKS:
		rc = mta_apply_networks(s, value, err);
		break;
	case MTA_K_BOOL:
		if (sg_parse_bool(value, &b) < 0) {
			sg_error_set(err, SG_E_INVAL, "expected yes or no");
			break;
		}
		*(bool *)(base + d->off) = b;
		rc = 0;
		break;
	case MTA_K_HOSTNAME: {
		char **fp = (char **)(base + d->off);
		char *h = sg_xstrdup(value);
		size_t len = strlen(h);

		if (len > 1 && h[len - 1] == '.')
			h[len - 1] = '\0';
		sg_str_lower(h);
		if (*h != '\0' && !mta_hostname_is_valid(h)) {
			sg_error_set(err, SG_E_INVAL, "bad host name");
			free(h);
			break;
		}
		free(*fp);
		*fp = h;
		rc = 0;
		break;
	}
	case MTA_K_RELAY:
		rc = mta_apply_relay((struct mta_relay *)(base + d->off), value, err);
		break;
	case MTA_K_SIZE:
		if (sg_parse_size(value, &u) < 0 || u < d->min || u > d->max) {
			sg_error_set(err, SG_E_INVAL,
				"expected a size from %llu to %llu bytes (k/M/G suffixes allowed)",
				(unsigned long long)d->min, (unsigned long long)d->max);
			break;
		}
		*(uint64_t *)(base + d->off) = u;
		rc = 0;
		break;
	case MTA_K_UINT:
		if (sg_parse_u64(value, d->max, &u) < 0 || u < d->min) {
			sg_error_set(err, SG_E_INVAL, "expected a number from %llu to %llu",
				(unsigned long long)d->min, (unsigned long long)d->max);
			break;
		}
		*(unsigned *)(base + d->off) = (unsigned)u;
		rc = 0;
		break;
	case MTA_K_DURATION:
		if (mta_duration_parse(value, d->max, &u) < 0 || u < d->min) {
			sg_error_set(err, SG_E_INVAL,
				"expected a duration from %llus to %llus (s/m/h/d/w suffixes allowed)",
				(unsigned long long)d->min, (unsigned long long)d->max);
			break;
		}
		*(unsigned *)(base + d->off) = (unsigned)u;
		rc = 0;
		break;
	case MTA_K_CODE:
		if (strcmp(value, "450") != 0 && strcmp(value, "550") != 0) {
			sg_error_set(err, SG_E_INVAL, "expected 450 or 550");
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
			sg_error_set(err, SG_E_INVAL, "expected none, may, encrypt or verify");
		break;
	}
	if (rc < 0)
		sg_error_prefix(err, "setting %s: ", d->name);
	return rc;
}

/* mta_format_value - the normalised value of def in s (caller frees). */
static char *mta_format_value(const struct mta_settings *s, const struct mta_def *d)
{
	const char *base = (const char *)s;
	struct sg_buf b;
	size_t i;

	sg_buf_init(&b, MTA_VALUE_MAX * 2);
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

		if (r->host == NULL || r->host[0] == '\0')
			break;
		if (strchr(r->host, ':') != NULL)
			(void)sg_buf_printf(&b, NULL, "[%s]:%u", r->host, r->port);
		else
			(void)sg_buf_printf(&b, NULL, "%s:%u", r->host, r->port);
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
			mta_tls_names[*(const enum mta_tls_level *)(base + d->off)], NULL);
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

static void mta_sasl_clear(struct mta_sasl *a)
{
	free(a->host);
	free(a->username);
	if (a->password != NULL) {
		explicit_bzero(a->password, strlen(a->password));
		free(a->password);
	}
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

int mta_setting_check(const char *name, const char *value, struct sg_error *err)
{
	const struct mta_def *d = name != NULL ? mta_def_find(name) : NULL;
	struct mta_settings *s;
	int rc;

	if (d == NULL) {
		sg_error_set(err, SG_E_INVAL, "unknown setting '%s'",
			name != NULL ? name : "(null)");
		return -1;
	}
	if (value != NULL && strlen(value) > MTA_VALUE_MAX) {
		sg_error_set(err, SG_E_INVAL, "setting %s: value too long", name);
		return -1;
	}
	s = mta_settings_defaults(NULL);
	rc = mta_apply(s, d, value != NULL ? value : d->factory, err);
	mta_settings_free(&s);
	return rc;
}

int mta_setting_set(struct store *db, const char *name, const char *value,
	struct sg_error *err)
{
	const struct mta_def *d = name != NULL ? mta_def_find(name) : NULL;
	struct mta_settings *s = NULL;
	char *norm = NULL;
	char *key = NULL;
	int rc = -1;

	if (mta_setting_check(name, value, err) < 0)
		return -1;
	key = sg_xasprintf(MTA_KEY_PREFIX "%s", d->name);
	if (value == NULL || *value == '\0') {
		rc = store_setting_delete(db, key, err);
		goto out;
	}
	s = mta_settings_defaults(NULL);
	if (mta_apply(s, d, value, err) < 0)
		goto out;
	norm = mta_format_value(s, d);
	rc = store_setting_set(db, key, norm, err);
out:
	free(norm);
	free(key);
	mta_settings_free(&s);
	return rc;
}

/* mta_sasl_key - "mta.sasl.<host>:<port>" ([host] for IPv6). Caller frees. */
static char *mta_sasl_hostport(const char *host, unsigned port)
{
	if (strchr(host, ':') != NULL)
		return sg_xasprintf("[%s]:%u", host, port);
	return sg_xasprintf("%s:%u", host, port);
}

/* mta_sasl_load - fill s->sasl from the index and the per-host keys. */
static int mta_sasl_load(struct store *db, struct mta_settings *s, struct sg_error *err)
{
	char *index = NULL;
	char **hosts = NULL;
	size_t nhosts = 0, i;
	int rc = -1;
	int found;

	found = store_setting_get(db, MTA_SASL_INDEX, &index, err);
	if (found < 0)
		return -1;
	if (found == 0)
		return 0;
	if (mta_split(index, &hosts, &nhosts, err) < 0)
		goto out;
	if (nhosts > MTA_SASL_MAX)
		nhosts = MTA_SASL_MAX;
	s->sasl = sg_xcalloc(nhosts > 0 ? nhosts : 1, sizeof(*s->sasl));
	for (i = 0; i < nhosts; i++) {
		struct sg_hostport hp;
		char *key = NULL;
		char *val = NULL;
		char *nl;

		if (sg_hostport_parse(hosts[i], 25, &hp, err) < 0) {
			sg_error_prefix(err, "setting " MTA_SASL_INDEX ": ");
			err->code = SG_E_CONFIG;
			goto out;
		}
		key = sg_xasprintf(MTA_SASL_PREFIX "%s", hosts[i]);
		found = store_setting_get(db, key, &val, err);
		free(key);
		if (found < 0)
			goto out;
		if (found == 0)
			continue; /* index ahead of a removal: ignore */
		nl = strchr(val, '\n');
		if (nl == NULL || nl == val) {
			free(val);
			sg_error_set(err, SG_E_CONFIG, "setting " MTA_SASL_PREFIX "%s: malformed",
				hosts[i]);
			goto out;
		}
		*nl = '\0';
		s->sasl[s->n_sasl].host = sg_xstrdup(hp.host);
		s->sasl[s->n_sasl].port = hp.port;
		s->sasl[s->n_sasl].username = sg_xstrdup(val);
		s->sasl[s->n_sasl].password = sg_xstrdup(nl + 1);
		s->n_sasl++;
		explicit_bzero(val, strlen(nl + 1) + (size_t)(nl - val) + 1);
		free(val);
	}
	rc = 0;
out:
	mta_strv_free(&hosts, &nhosts);
	free(index);
	return rc;
}

struct mta_settings *mta_settings_load(struct store *db, const char *cfg_hostname,
	struct sg_error *err)
{
	struct mta_settings *s = mta_settings_defaults(cfg_hostname);
	bool helo_set = false;
	size_t i;

	for (i = 0; i < MTA_NDEFS; i++) {
		const struct mta_def *d = &mta_defs[i];
		char key[128];
		char *val = NULL;
		int found;

		snprintf(key, sizeof(key), MTA_KEY_PREFIX "%s", d->name);
		found = store_setting_get(db, key, &val, err);
		if (found < 0)
			goto fail;
		if (found == 0)
			continue;
		if (d->kind == MTA_K_HOSTNAME && *val == '\0') {
			free(val);
			continue;
		}
		if (mta_apply(s, d, val, err) < 0) {
			free(val);
			err->code = SG_E_CONFIG;
			sg_error_prefix(err, "stored ");
			goto fail;
		}
		if (strcmp(d->name, "helo_name") == 0)
			helo_set = true;
		free(val);
	}
	if (!helo_set) {
		free(s->helo_name);
		s->helo_name = sg_xstrdup(s->hostname);
	}
	if (s->backoff_max < s->backoff_min)
		s->backoff_max = s->backoff_min;
	if (mta_sasl_load(db, s, err) < 0)
		goto fail;
	return s;
fail:
	mta_settings_free(&s);
	return NULL;
}

/* mta_sasl_index_edit - add or remove hp in the index value; caller frees. */
static char *mta_sasl_index_edit(const char *index, const char *hp, bool add,
	bool *present_r)
{
	char **v = NULL;
	size_t n = 0, i;
	struct sg_buf b;

	*present_r = false;
	sg_buf_init(&b, SIZE_MAX / 2);
	if (index != NULL)
		(void)mta_split(index, &v, &n, NULL);
	for (i = 0; i < n; i++) {
		if (strcasecmp(v[i], hp) == 0) {
			*present_r = true;
			continue;
		}
		(void)sg_buf_printf(&b, NULL, "%s%s", b.len > 0 ? " " : "", v[i]);
	}
	if (add)
		(void)sg_buf_printf(&b, NULL, "%s%s", b.len > 0 ? " " : "", hp);
	mta_strv_free(&v, &n);
	return sg_buf_steal(&b);
}

int mta_sasl_set(struct store *db, const char *host, unsigned port, const char *username,
	const char *password, struct sg_error *err)
{
	struct sg_hostport hp;
	char *hps = NULL;
	char *key = NULL;
	char *index = NULL;
	char *newindex = NULL;
	char *val = NULL;
	bool present = false;
	bool in_tx = false;
	const char *p;
	int rc = -1;

	if (host == NULL || port == 0 || port > 65535) {
		sg_error_set(err, SG_E_INVAL, "sasl: bad host or port");
		return -1;
	}
	hps = mta_sasl_hostport(host, port);
	if (sg_hostport_parse(hps, 25, &hp, err) < 0) {
		sg_error_prefix(err, "sasl: ");
		goto out;
	}
	free(hps);
	sg_str_lower(hp.host);
	hps = mta_sasl_hostport(hp.host, hp.port);
	if (password != NULL) {
		if (username == NULL || *username == '\0' || strlen(username) > 512) {
			sg_error_set(err, SG_E_INVAL, "sasl: empty or too long user name");
			goto out;
		}
		for (p = username; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				sg_error_set(err, SG_E_INVAL,
					"sasl: control character in user name");
				goto out;
			}
		}
		if (strlen(password) > 4096 || strchr(password, '\n') != NULL) {
			sg_error_set(err, SG_E_INVAL, "sasl: password too long or multi-line");
			goto out;
		}
	}
	key = sg_xasprintf(MTA_SASL_PREFIX "%s", hps);
	if (store_begin(db, err) < 0)
		goto out;
	in_tx = true;
	if (store_setting_get(db, MTA_SASL_INDEX, &index, err) < 0)
		goto out;
	newindex = mta_sasl_index_edit(index, hps, password != NULL, &present);
	if (password == NULL) {
		if (!present) {
			sg_error_set(err, SG_E_NOTFOUND, "sasl: no credentials for %s", hps);
			goto out;
		}
		if (store_setting_delete(db, key, err) < 0)
			goto out;
	} else {
		val = sg_xasprintf("%s\n%s", username, password);
		if (store_setting_set(db, key, val, err) < 0)
			goto out;
	}
	if (store_setting_set(db, MTA_SASL_INDEX, newindex, err) < 0)
		goto out;
	if (store_commit(db, err) < 0)
		goto out;
	in_tx = false;
	rc = 0;
out:
	if (in_tx)
		(void)store_rollback(db, NULL);
	if (val != NULL) {
		explicit_bzero(val, strlen(val));
		free(val);
	}
	free(newindex);
	free(index);
	free(key);
	free(hps);
	return rc;
}

/* mta_sasl_format - "host:port username ***" entries. Caller frees. */
static char *mta_sasl_format(const struct mta_settings *s)
{
	struct sg_buf b;
	size_t i;

	sg_buf_init(&b, SIZE_MAX / 2);
	for (i = 0; i < s->n_sasl; i++) {
		char *hp = mta_sasl_hostport(s->sasl[i].host, s->sasl[i].port);

		(void)sg_buf_printf(&b, NULL, "%s%s %s ***", i > 0 ? ", " : "", hp,
			s->sasl[i].username);
		free(hp);
	}
	return sg_buf_steal(&b);
}

char *mta_settings_format(const struct mta_settings *s, enum mta_print_flags flags)
{
	struct sg_buf b;
	json_t *obj = NULL;
	json_t *arr = NULL;
	size_t i;

	if (flags == MTA_PRINT_JSON) {
		char *out;
		char *dump;

		obj = json_object();
		for (i = 0; i < MTA_NDEFS; i++) {
			char *v = mta_format_value(s, &mta_defs[i]);

			json_object_set_new(obj, mta_defs[i].name, json_string(v));
			free(v);
		}
		arr = json_array();
		for (i = 0; i < s->n_sasl; i++) {
			json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:s}", "host",
				s->sasl[i].host, "port", (int)s->sasl[i].port, "username",
				s->sasl[i].username, "password", "***"));
		}
		json_object_set_new(obj, "sasl", arr);
		dump = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(obj);
		out = sg_xasprintf("%s\n", dump != NULL ? dump : "{}");
		free(dump);
		return out;
	}
	sg_buf_init(&b, SIZE_MAX / 2);
	for (i = 0; i < MTA_NDEFS; i++) {
		char *v = mta_format_value(s, &mta_defs[i]);

		(void)sg_buf_printf(&b, NULL, "%s = %s\n", mta_defs[i].name, v);
		free(v);
	}
	{
		char *v = mta_sasl_format(s);

		(void)sg_buf_printf(&b, NULL, "sasl = %s\n", v);
		free(v);
	}
	return sg_buf_steal(&b);
}
