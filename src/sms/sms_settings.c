/*
 * sms_settings.c - the SMS gateway settings (SPEC F-SMS-2, guide §15, §21):
 * factory defaults and the Clickatell preset, loading the "sms.*" keys from
 * the store in one query, validation and normalisation of every value, the
 * all-or-nothing update behind `sealgate sms settings set`, and formatting
 * (text or JSON, secrets hidden unless revealed).
 *
 * Callers: sms_run_due (loads them on every run, so changes apply at the
 * next run without a reload), the CLI. Any thread.
 *
 * One table (sms_defs) names every setting with its kind, bounds and factory
 * value; the same parser validates input, stored values and defaults.
 */
#include "sms_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "policy/policy.h"

#define SMS_UPDATE_MAX 64
#define SMS_PG_LOCK_ID "1397969747" /* advisory lock of SMS settings updates */
#define DAY 86400u

enum sms_kind {
	K_TRANSPORT,
	K_METHOD,
	K_AUTH,
	K_STR,       /* one line of printable text */
	K_SECRET,    /* like K_STR, hidden when shown */
	K_URL,       /* "" or http(s)://... */
	K_PROXY,     /* "" or a proxy URL / host:port without spaces */
	K_PARAMS,    /* http.params template */
	K_UINT,
	K_DURATION,
	K_CODES,
	K_REGEX,
	K_BOOL,
	K_PATH,      /* "" or an absolute path */
};

#define OFF(f) offsetof(struct sms_settings, f)

struct sms_def {
	const char *name;
	enum sms_kind kind;
	size_t off;
	unsigned lo, hi;
	const char *def;
	const char *clickatell;  /* preset default, or NULL */
};

#define SMS_CLICKATELL_URL "https://api.clickatell.com/http/sendmsg"
#define SMS_CLICKATELL_PARAMS "api_id=${api_id}&user=${username}&password=${password}" \
	"&to=${number_digits}&text=${text}&from=${from}"

static const struct sms_def sms_defs[] = {
	{"transport", K_TRANSPORT, OFF(transport), 0, 0, "none", NULL},
	{"http.url", K_URL, OFF(url), 0, 0, "", SMS_CLICKATELL_URL},
	{"http.method", K_METHOD, OFF(is_post), 0, 0, "post", NULL},
	{"http.params", K_PARAMS, OFF(params), 0, 0, "to=${number}&text=${text}",
		SMS_CLICKATELL_PARAMS},
	{"http.auth", K_AUTH, OFF(is_basic_auth), 0, 0, "none", NULL},
	{"http.username", K_STR, OFF(username), 0, 0, "", NULL},
	{"http.password", K_SECRET, OFF(password), 0, 0, "", NULL},
	{"http.api_id", K_STR, OFF(api_id), 0, 0, "", NULL},
	{"http.from", K_STR, OFF(from), 0, 0, "", NULL},
	{"http.proxy", K_PROXY, OFF(proxy), 0, 0, "", NULL},
	{"http.proxy_username", K_STR, OFF(proxy_username), 0, 0, "", NULL},
	{"http.proxy_password", K_SECRET, OFF(proxy_password), 0, 0, "", NULL},
	{"http.timeout", K_UINT, OFF(timeout), 1, 600, "30", NULL},
	{"http.success_codes", K_CODES, OFF(codes), 0, 0, "200-299", NULL},
	{"http.success_body", K_REGEX, OFF(success_body), 0, 0, "", "^ID:"},
	{"http.tls_verify", K_BOOL, OFF(is_tls_verify), 0, 0, "yes", NULL},
	{"http.ca_file", K_PATH, OFF(ca_file), 0, 0, "", NULL},
	{"file.path", K_PATH, OFF(file_path), 0, 0, "", NULL},
	{"backoff_min", K_DURATION, OFF(backoff_min), 1, DAY, "60", NULL},
	{"backoff_max", K_DURATION, OFF(backoff_max), 1, 7 * DAY, "3600", NULL},
	{"lifetime", K_DURATION, OFF(lifetime), 0, 30 * DAY, "86400", NULL},
};
#define SMS_NDEFS (sizeof(sms_defs) / sizeof(sms_defs[0]))

static const char *const transport_words[] = {"none", "http", "clickatell", "file"};

/* def_find - the definition of name ("sms." prefix allowed), or NULL */
static const struct sms_def *def_find(const char *name)
{
	size_t i;

	if (strncmp(name, SMS_KEY_PREFIX, strlen(SMS_KEY_PREFIX)) == 0)
		name += strlen(SMS_KEY_PREFIX);
	for (i = 0; i < SMS_NDEFS; i++) {
		if (strcmp(sms_defs[i].name, name) == 0)
			return &sms_defs[i];
	}
	return NULL;
}

/* word_index - index of s (case-insensitive) in words, or -1 */
static int word_index(const char *s, const char *const *words, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcasecmp(s, words[i]) == 0)
			return (int)i;
	}
	return -1;
}

/* is_line - printable (no control characters; UTF-8 allowed) */
static bool is_line(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

/* is_string_kind - the field of this kind is a char * */
static bool is_string_kind(enum sms_kind k)
{
	return k == K_STR || k == K_SECRET || k == K_URL || k == K_PROXY || k == K_PARAMS ||
		k == K_REGEX || k == K_PATH;
}

/* parse_duration - "N", "Ns", "Nm", "Nh", "Nd" into seconds */
static int parse_duration(const char *v, uint64_t *out)
{
	char num[32];
	size_t len = strlen(v);
	uint64_t mul = 1, n;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, v, len + 1);
	switch (num[len - 1]) {
	case 's':
		num[--len] = '\0';
		break;
	case 'm':
		mul = 60;
		num[--len] = '\0';
		break;
	case 'h':
		mul = 3600;
		num[--len] = '\0';
		break;
	case 'd':
		mul = DAY;
		num[--len] = '\0';
		break;
	default:
		break;
	}
	if (sg_parse_u64(num, UINT32_MAX, &n) < 0 || n * mul > UINT32_MAX)
		return -1;
	*out = n * mul;
	return 0;
}

/* parse_codes - "200-299, 202" into ranges; normalised text into norm */
static int parse_codes(const char *v, struct sms_code_range *r, size_t *n_r,
	struct sg_buf *norm)
{
	char *tmp = sg_xstrdup(v), *save = NULL, *tok;
	size_t n = 0;
	int rc = -1;

	for (tok = strtok_r(tmp, ", \t", &save); tok != NULL;
		tok = strtok_r(NULL, ", \t", &save)) {
		char *dash = strchr(tok, '-');
		uint64_t lo, hi;

		if (dash != NULL)
			*dash = '\0';
		if (sg_parse_u64(tok, 599, &lo) < 0 || lo < 100)
			goto out;
		hi = lo;
		if (dash != NULL && (sg_parse_u64(dash + 1, 599, &hi) < 0 || hi < lo))
			goto out;
		if (n == SMS_CODE_RANGES_MAX)
			goto out;
		r[n].lo = (unsigned)lo;
		r[n].hi = (unsigned)hi;
		if (lo == hi)
			sg_buf_printf(norm, NULL, "%s%u", n ? "," : "", r[n].lo);
		else
			sg_buf_printf(norm, NULL, "%s%u-%u", n ? "," : "", r[n].lo, r[n].hi);
		n++;
	}
	if (n > 0)
		rc = 0;
out:
	free(tmp);
	*n_r = n;
	return rc;
}

/* check_url - http:// or https:// with a host, one line, no spaces */
static bool is_http_url(const char *v)
{
	const char *host;

	if (sg_str_has_prefix_ci(v, "http://"))
		host = v + 7;
	else if (sg_str_has_prefix_ci(v, "https://"))
		host = v + 8;
	else
		return false;
	return *host != '\0' && *host != '/' && strpbrk(v, " \t") == NULL && is_line(v);
}

/* text_bad - why v is not a valid text-like value for d, or NULL */
static const char *text_bad(const struct sms_def *d, const char *v)
{
	switch (d->kind) {
	case K_URL:
		return *v != '\0' && !is_http_url(v) ? "want an http:// or https:// URL" : NULL;
	case K_PROXY:
		return !is_line(v) || strpbrk(v, " \t") != NULL ?
			"want a proxy URL such as http://proxy.example:3128" : NULL;
	case K_PATH:
		return *v != '\0' && (*v != '/' || !is_line(v)) ? "want an absolute path" : NULL;
	default:
		return !is_line(v) ? "control characters are not allowed" : NULL;
	}
}

/* check_params - v expands without error (the transport's own expander) */
static int check_params(const struct sms_def *d, const char *v, struct sg_error *err)
{
	struct sms_vars dummy = {"+1", "1", "x", "u", "p", "a", "f", "1"};
	struct sg_buf tmp;
	int rc;

	if (!is_line(v)) {
		sg_error_set(err, SG_E_INVAL, "sms.%s: bad value: control characters are "
			"not allowed", d->name);
		return -1;
	}
	sg_buf_init(&tmp, 4 * SMS_VALUE_MAX);
	rc = sms_params_expand(v, &dummy, &tmp, err);
	sg_buf_deinit(&tmp);
	if (rc < 0)
		sg_error_prefix(err, "sms.%s: bad value: ", d->name);
	return rc;
}

/* check_regex - v is "" or compiles */
static int check_regex(const struct sms_def *d, const char *v, struct sg_error *err)
{
	struct policy_regex *re;

	if (*v == '\0')
		return 0;
	re = policy_regex_new(v, 0, err);
	if (re == NULL) {
		sg_error_prefix(err, "sms.%s: bad value: ", d->name);
		return -1;
	}
	policy_regex_free(&re);
	return 0;
}

/* word_parse - the word kinds: the index of v in the kind's words, or -1;
 * *why_r says what is wanted */
static int word_parse(enum sms_kind kind, const char *v, const char *const **words_r,
	const char **why_r)
{
	static const char *const method[] = {"get", "post"};
	static const char *const auth[] = {"none", "basic"};
	static const char *const boolw[] = {"no", "yes"};
	bool bv;

	switch (kind) {
	case K_TRANSPORT:
		*words_r = transport_words;
		*why_r = "want none, http, clickatell or file";
		return word_index(v, transport_words, 4);
	case K_METHOD:
		*words_r = method;
		*why_r = "want get or post";
		return word_index(v, method, 2);
	case K_AUTH:
		*words_r = auth;
		*why_r = "want none or basic";
		return word_index(v, auth, 2);
	default:
		*words_r = boolw;
		*why_r = "want yes or no";
		return sg_parse_bool(v, &bv) < 0 ? -1 : bv ? 1 : 0;
	}
}

/*
 * value_parse - validate v for d; the normalised value into *norm_r (caller
 * frees) and, when s is not NULL, the typed value into s. 0 ok, -1 err.
 */
static int value_parse(const struct sms_def *d, const char *v, struct sms_settings *s,
	char **norm_r, struct sg_error *err)
{
	void *field = s != NULL ? (char *)s + d->off : NULL;
	const char *const *words;
	const char *bad = NULL;
	struct sg_buf b;
	uint64_t u = 0;
	int i;

	*norm_r = NULL;
	if (strlen(v) > SMS_VALUE_MAX) {
		sg_error_set(err, SG_E_INVAL, "sms.%s: bad value: too long", d->name);
		return -1;
	}
	sg_buf_init(&b, SMS_VALUE_MAX + 1);
	switch (d->kind) {
	case K_TRANSPORT:
	case K_METHOD:
	case K_AUTH:
	case K_BOOL:
		i = word_parse(d->kind, v, &words, &bad);
		if (i < 0)
			break;
		bad = NULL;
		if (field != NULL && d->kind == K_TRANSPORT)
			*(enum sms_transport_kind *)field = (enum sms_transport_kind)i;
		else if (field != NULL)
			*(bool *)field = i == 1;
		sg_buf_append_str(&b, words[i], NULL);
		break;
	case K_UINT:
	case K_DURATION:
		if ((d->kind == K_UINT ? sg_parse_u64(v, d->hi, &u) : parse_duration(v, &u)) < 0 ||
			u < d->lo || u > d->hi) {
			bad = d->kind == K_UINT ? "out of range" :
				"want a duration (N, Ns, Nm, Nh, Nd) in range";
			break;
		}
		if (field != NULL)
			*(unsigned *)field = (unsigned)u;
		sg_buf_printf(&b, NULL, "%llu", (unsigned long long)u);
		break;
	case K_CODES: {
		struct sms_code_range r[SMS_CODE_RANGES_MAX];
		size_t n = 0;

		if (parse_codes(v, r, &n, &b) < 0) {
			bad = "want HTTP status codes or ranges 100..599, e.g. 200-299,302";
			break;
		}
		if (s != NULL) {
			memcpy(s->codes, r, sizeof(r));
			s->n_codes = n;
		}
		break;
	}
	case K_PARAMS:
	case K_REGEX:
		if ((d->kind == K_PARAMS ? check_params(d, v, err) : check_regex(d, v, err)) < 0) {
			sg_buf_deinit(&b);
			return -1;
		}
		sg_buf_append_str(&b, v, NULL);
		break;
	default:
		bad = text_bad(d, v);
		if (bad == NULL)
			sg_buf_append_str(&b, v, NULL);
		break;
	}
	if (bad != NULL) {
		sg_error_set(err, SG_E_INVAL, "sms.%s: bad value: %s", d->name, bad);
		sg_buf_deinit(&b);
		return -1;
	}
	*norm_r = sg_buf_steal(&b);
	sg_buf_deinit(&b);
	if (field != NULL && is_string_kind(d->kind)) {
		char **sp = field;

		free(*sp);
		*sp = sg_xstrdup(*norm_r);
	}
	return 0;
}

/* free_secret - wipe and free */
static void free_secret(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void sms_settings_free(struct sms_settings **sp)
{
	struct sms_settings *s = sp != NULL ? *sp : NULL;

	if (s == NULL)
		return;
	free(s->url);
	free(s->params);
	free(s->username);
	free_secret(&s->password);
	free(s->api_id);
	free(s->from);
	free(s->proxy);
	free(s->proxy_username);
	free_secret(&s->proxy_password);
	free(s->success_body);
	free(s->ca_file);
	free(s->file_path);
	free(s);
	*sp = NULL;
}

/* settings_build - effective settings from stored values vals[] (NULL =
 * unset); NULL + err when a stored value is invalid */
static struct sms_settings *settings_build(char *const *vals, struct sg_error *err)
{
	struct sms_settings *s = sg_xcalloc(1, sizeof(*s));
	size_t i;
	char *norm = NULL;

	/* transport first: the preset decides the other defaults */
	for (i = 0; i < SMS_NDEFS; i++) {
		const struct sms_def *d = &sms_defs[i];
		const char *v = vals != NULL ? vals[i] : NULL;

		if (v == NULL && d->clickatell != NULL &&
			s->transport == SMS_TRANSPORT_CLICKATELL)
			v = d->clickatell;
		if (v == NULL)
			v = d->def;
		if (value_parse(d, v, s, &norm, err) < 0) {
			sg_error_set(err, SG_E_CONFIG, "stored setting sms.%s is invalid "
				"(fix it with: sealgate sms settings set %s=...)", d->name, d->name);
			free_secret(&norm);
			sms_settings_free(&s);
			return NULL;
		}
		free_secret(&norm);
	}
	return s;
}

struct sms_settings *sms_settings_defaults(void)
{
	struct sms_settings *s = settings_build(NULL, NULL);

	if (s == NULL)
		abort();  /* the factory values are broken: a build bug */
	return s;
}

/* load_vals - the stored "sms.*" values into vals[] (caller frees each) */
static int load_vals(struct store *db, char **vals, struct sg_error *err)
{
	struct store_stmt *st;
	int rc;

	st = store_prepare(db, "SELECT key, value FROM settings WHERE key LIKE 'sms.%'", err);
	if (st == NULL)
		return -1;
	while ((rc = store_stmt_step(st, err)) == 1) {
		const char *k = store_col_text(st, 0), *v = store_col_text(st, 1);
		const struct sms_def *d = k != NULL ? def_find(k) : NULL;

		if (d == NULL || v == NULL || strncmp(k, SMS_KEY_PREFIX, 4) != 0)
			continue;  /* written by a newer version */
		free_secret(&vals[d - sms_defs]);
		vals[d - sms_defs] = sg_xstrdup(v);
	}
	store_stmt_free(&st);
	return rc < 0 ? -1 : 0;
}

struct sms_settings *sms_settings_load(struct store *db, struct sg_error *err)
{
	char *vals[SMS_NDEFS] = {NULL};
	struct sms_settings *s = NULL;
	size_t i;

	if (load_vals(db, vals, err) == 0)
		s = settings_build(vals, err);
	for (i = 0; i < SMS_NDEFS; i++)
		free_secret(&vals[i]);
	return s;
}

int sms_settings_update(struct store *db, const char *const *assignments, size_t n,
	struct sg_error *err)
{
	char *names_seen[SMS_NDEFS] = {NULL};
	struct sms_settings *s = NULL;
	size_t i;
	int rc = -1;
	bool in_tx = false;

	if (n == 0 || n > SMS_UPDATE_MAX) {
		sg_error_set(err, SG_E_INVAL, "give 1 to %d NAME=VALUE assignments",
			SMS_UPDATE_MAX);
		return -1;
	}
	if (store_begin(db, err) < 0)
		return -1;
	in_tx = true;
	if (store_backend(db) == STORE_POSTGRES &&
		store_exec(db, "SELECT pg_advisory_xact_lock(" SMS_PG_LOCK_ID ")", err) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		const char *a = assignments[i], *eq = strchr(a, '=');
		const struct sms_def *d;
		char name[64], key[80], *norm = NULL;
		int r;

		if (eq == NULL || eq == a || (size_t)(eq - a) >= sizeof(name)) {
			sg_error_set(err, SG_E_INVAL, "'%.40s': want NAME=VALUE", a);
			goto out;
		}
		memcpy(name, a, (size_t)(eq - a));
		name[eq - a] = '\0';
		d = def_find(name);
		if (d == NULL) {
			sg_error_set(err, SG_E_INVAL, "unknown SMS setting '%s'", name);
			goto out;
		}
		if (names_seen[d - sms_defs] != NULL) {
			sg_error_set(err, SG_E_INVAL, "sms.%s given twice", d->name);
			goto out;
		}
		names_seen[d - sms_defs] = (char *)d->name;
		snprintf(key, sizeof(key), SMS_KEY_PREFIX "%s", d->name);
		if (eq[1] == '\0') {
			if (store_setting_delete(db, key, err) < 0)
				goto out;
			continue;
		}
		if (value_parse(d, eq + 1, NULL, &norm, err) < 0)
			goto out;
		r = store_setting_set(db, key, norm, err);
		free_secret(&norm);
		if (r < 0)
			goto out;
	}
	s = sms_settings_load(db, err);
	if (s == NULL)
		goto out;
	if (s->backoff_max < s->backoff_min) {
		sg_error_set(err, SG_E_INVAL, "sms.backoff_max (%u) is below sms.backoff_min "
			"(%u)", s->backoff_max, s->backoff_min);
		goto out;
	}
	if (store_commit(db, err) < 0) {
		in_tx = false;
		goto out;
	}
	in_tx = false;
	rc = 0;
out:
	if (in_tx)
		store_rollback(db, NULL);
	sms_settings_free(&s);
	return rc;
}

int sms_setting_set(struct store *db, const char *name, const char *value,
	struct sg_error *err)
{
	char *a = sg_xasprintf("%s=%s", name, value != NULL ? value : "");
	const char *one[1] = {a};
	int rc = sms_settings_update(db, one, 1, err);

	explicit_bzero(a, strlen(a));
	free(a);
	return rc;
}

/* value_show - the effective value of d in s as text (caller frees) */
static char *value_show(const struct sms_settings *s, const struct sms_def *d)
{
	const void *f = (const char *)s + d->off;
	struct sg_buf b;
	size_t i;

	switch (d->kind) {
	case K_TRANSPORT:
		return sg_xstrdup(transport_words[*(const enum sms_transport_kind *)f]);
	case K_METHOD:
		return sg_xstrdup(*(const bool *)f ? "post" : "get");
	case K_AUTH:
		return sg_xstrdup(*(const bool *)f ? "basic" : "none");
	case K_BOOL:
		return sg_xstrdup(*(const bool *)f ? "yes" : "no");
	case K_UINT:
	case K_DURATION:
		return sg_xasprintf("%u", *(const unsigned *)f);
	case K_CODES:
		sg_buf_init(&b, 1024);
		for (i = 0; i < s->n_codes; i++) {
			if (s->codes[i].lo == s->codes[i].hi)
				sg_buf_printf(&b, NULL, "%s%u", i ? "," : "", s->codes[i].lo);
			else
				sg_buf_printf(&b, NULL, "%s%u-%u", i ? "," : "", s->codes[i].lo,
					s->codes[i].hi);
		}
		return sg_buf_steal(&b);
	default:
		return sg_xstrdup(*(char *const *)f);
	}
}

char *sms_settings_format(const struct sms_settings *s, enum sms_print_flags flags)
{
	struct sg_buf b;
	json_t *o = NULL;
	size_t i;
	char *out;

	sg_buf_init(&b, 1 << 20);
	if (flags & SMS_PRINT_JSON)
		o = json_object();
	for (i = 0; i < SMS_NDEFS; i++) {
		const struct sms_def *d = &sms_defs[i];
		char *v = value_show(s, d);

		if (d->kind == K_SECRET && *v != '\0' && !(flags & SMS_PRINT_REVEAL)) {
			free_secret(&v);
			v = sg_xstrdup("***");
		}
		if (o == NULL) {
			sg_buf_printf(&b, NULL, "%-20s = %s\n", d->name, v);
		} else if (d->kind == K_UINT || d->kind == K_DURATION) {
			json_object_set_new(o, d->name, json_integer(*(const unsigned *)
				((const char *)s + d->off)));
		} else if (d->kind == K_BOOL) {
			json_object_set_new(o, d->name, json_boolean(*(const bool *)
				((const char *)s + d->off)));
		} else {
			json_object_set_new(o, d->name, json_string(v));
		}
		free_secret(&v);
	}
	if (o != NULL) {
		out = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(o);
		sg_buf_printf(&b, NULL, "%s\n", out != NULL ? out : "{}");
		free_secret(&out);
	}
	return sg_buf_steal(&b);
}
