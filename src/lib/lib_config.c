/*
 * lib_config.c - the start-up configuration file (SPEC §13): INI sections with
 * "key = value" lines, parsed against a schema table. Unknown sections/keys, bad
 * values, duplicate keys and bad addresses are errors naming FILE:LINE. The
 * result is an immutable, refcounted snapshot (STYLE §7).
 */
#include "lib.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX_FILE (1024 * 1024)
#define CONFIG_MAX_LINE 4096

enum cfg_type {
	CFG_STR,
	CFG_PATH,      /* absolute path */
	CFG_HOSTPORT,  /* host:port, must parse */
	CFG_LISTEN,    /* host:port or empty (disabled) */
	CFG_UINT,
	CFG_MODE,
	CFG_LOGLEVEL,
	CFG_DATABASE,  /* sqlite:PATH | postgresql://... | postgres://... */
};

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	size_t offset;
	unsigned min, max;  /* CFG_UINT */
};

#define OFF(f) offsetof(struct sg_config, f)

static const struct cfg_key cfg_schema[] = {
	{"general", "data_dir", CFG_PATH, OFF(data_dir), 0, 0},
	{"general", "database", CFG_DATABASE, OFF(database), 0, 0},
	{"general", "hostname", CFG_STR, OFF(hostname), 0, 0},
	{"general", "log_level", CFG_LOGLEVEL, OFF(log_level), 0, 0},
	{"smtp", "mode", CFG_MODE, OFF(mode), 0, 0},
	{"smtp", "listen", CFG_HOSTPORT, OFF(smtp_listen), 0, 0},
	{"smtp", "next_hop", CFG_HOSTPORT, OFF(next_hop), 0, 0},
	{"smtp", "tls_certificate", CFG_PATH, OFF(smtp_tls_certificate), 0, 0},
	{"smtp", "tls_key", CFG_PATH, OFF(smtp_tls_key), 0, 0},
	{"smtp", "threads", CFG_UINT, OFF(smtp_threads), 1, 64},
	{"smtp", "max_sessions", CFG_UINT, OFF(max_sessions), 1, 100000},
	{"smtp", "idle_timeout", CFG_UINT, OFF(idle_timeout), 5, 3600},
	{"mpa", "workers", CFG_UINT, OFF(mpa_workers), 1, 256},
	{"mpa", "memory_budget_mb", CFG_UINT, OFF(mpa_memory_budget_mb), 0, 1048576},
	{"delivery", "workers", CFG_UINT, OFF(delivery_workers), 1, 1024},
	{"http", "listen", CFG_LISTEN, OFF(http_listen), 0, 0},
	{"http", "tls_certificate", CFG_PATH, OFF(http_tls_certificate), 0, 0},
	{"http", "tls_key", CFG_PATH, OFF(http_tls_key), 0, 0},
	{"portal", "listen", CFG_LISTEN, OFF(portal_listen), 0, 0},
};

#define CFG_NKEYS (sizeof(cfg_schema) / sizeof(cfg_schema[0]))

static char *system_hostname(void)
{
	char h[256];

	if (gethostname(h, sizeof(h)) < 0 || h[0] == '\0')
		return sg_xstrdup("localhost");
	h[sizeof(h) - 1] = '\0';
	return sg_xstrdup(h);
}

struct sg_config *sg_config_defaults(void)
{
	struct sg_config *c = sg_xcalloc(1, sizeof(*c));

	c->path = sg_xstrdup("");
	c->data_dir = sg_xstrdup("/var/lib/sealgate");
	c->database = NULL; /* derived from data_dir at the end of loading */
	c->hostname = system_hostname();
	c->log_level = SG_LOG_INFO;
	c->mode = SG_MODE_STANDALONE;
	c->smtp_listen = sg_xstrdup("127.0.0.1:10025");
	c->next_hop = sg_xstrdup("127.0.0.1:10026");
	c->smtp_threads = 4;
	c->max_sessions = 200;
	c->idle_timeout = 300;
	c->mpa_workers = 8;
	c->mpa_memory_budget_mb = 16;
	c->delivery_workers = 16;
	c->http_listen = sg_xstrdup("127.0.0.1:8443");
	c->portal_listen = sg_xstrdup("");
	c->refcount = 1;
	return c;
}

static void config_finish(struct sg_config *c)
{
	if (c->database == NULL)
		c->database = sg_xasprintf("sqlite:%s/sealgate.db", c->data_dir);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* config_set - validate value for key k and store it; -1 with err on bad value. */
static int config_set(struct sg_config *c, const struct cfg_key *k, const char *val,
	struct sg_error *err)
{
	char **sp = (char **)((char *)c + k->offset);
	struct sg_hostport hp;
	uint64_t u;

	switch (k->type) {
	case CFG_STR:
		if (*val == '\0') {
			sg_error_set(err, SG_E_CONFIG, "%s must not be empty", k->key);
			return -1;
		}
		break;
	case CFG_PATH:
		if (val[0] != '/') {
			sg_error_set(err, SG_E_CONFIG, "%s must be an absolute path, got '%s'",
				k->key, val);
			return -1;
		}
		break;
	case CFG_LISTEN:
		if (*val == '\0')
			break;
		/* fall through */
	case CFG_HOSTPORT:
		if (sg_hostport_parse(val, 0, &hp, err) < 0) {
			sg_error_prefix(err, "%s: ", k->key);
			return -1;
		}
		break;
	case CFG_UINT:
		if (sg_parse_u64(val, k->max, &u) < 0 || u < k->min) {
			sg_error_set(err, SG_E_CONFIG, "%s must be a number from %u to %u, got '%s'",
				k->key, k->min, k->max, val);
			return -1;
		}
		*(unsigned *)(void *)sp = (unsigned)u;
		return 0;
	case CFG_MODE:
		if (strcmp(val, "standalone") == 0)
			c->mode = SG_MODE_STANDALONE;
		else if (strcmp(val, "postfix") == 0)
			c->mode = SG_MODE_POSTFIX;
		else {
			sg_error_set(err, SG_E_CONFIG,
				"mode must be 'standalone' or 'postfix', got '%s'", val);
			return -1;
		}
		return 0;
	case CFG_LOGLEVEL:
		if (strcmp(val, "error") == 0)
			c->log_level = SG_LOG_ERR;
		else if (strcmp(val, "warning") == 0)
			c->log_level = SG_LOG_WARN;
		else if (strcmp(val, "info") == 0)
			c->log_level = SG_LOG_INFO;
		else if (strcmp(val, "debug") == 0)
			c->log_level = SG_LOG_DEBUG;
		else {
			sg_error_set(err, SG_E_CONFIG,
				"log_level must be error, warning, info or debug, got '%s'", val);
			return -1;
		}
		return 0;
	case CFG_DATABASE:
		if (strncmp(val, "sqlite:", 7) == 0) {
			if (val[7] != '/') {
				sg_error_set(err, SG_E_CONFIG,
					"database: sqlite path must be absolute, got '%s'", val);
				return -1;
			}
		} else if (strncmp(val, "postgresql://", 13) != 0
			&& strncmp(val, "postgres://", 11) != 0) {
			sg_error_set(err, SG_E_CONFIG,
				"database must be sqlite:/PATH or postgresql://..., got '%s'", val);
			return -1;
		}
		break;
	}
	free(*sp);
	*sp = sg_xstrdup(val);
	return 0;
}

struct sg_config *sg_config_load_string(const char *name, const char *text, size_t len,
	struct sg_error *err)
{
	struct sg_config *c = sg_config_defaults();
	bool seen[CFG_NKEYS];
	char section[64] = "";
	char line[CONFIG_MAX_LINE + 2];
	size_t pos = 0;
	unsigned lineno = 0;

	memset(seen, 0, sizeof(seen));
	free(c->path);
	c->path = sg_xstrdup(name);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		char *s, *eq, *key, *val;
		size_t i;

		lineno++;
		if (l > CONFIG_MAX_LINE) {
			sg_error_set(err, SG_E_CONFIG, "%s:%u: line too long", name, lineno);
			goto fail;
		}
		memcpy(line, text + pos, l);
		line[l] = '\0';
		pos += l + (nl != NULL ? 1 : 0);
		if (memchr(line, '\0', l) != NULL) {
			sg_error_set(err, SG_E_CONFIG, "%s:%u: NUL byte", name, lineno);
			goto fail;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');
			bool known = false;

			if (e == NULL || trim(e + 1)[0] != '\0' || e - s - 1 <= 0
				|| (size_t)(e - s - 1) >= sizeof(section)) {
				sg_error_set(err, SG_E_CONFIG, "%s:%u: bad section header", name,
					lineno);
				goto fail;
			}
			*e = '\0';
			sg_strlcpy(section, trim(s + 1), sizeof(section));
			for (i = 0; i < CFG_NKEYS; i++)
				known |= strcmp(cfg_schema[i].section, section) == 0;
			if (!known) {
				char esc[128];

				sg_error_set(err, SG_E_CONFIG, "%s:%u: unknown section [%s]", name,
					lineno, sg_log_esc(esc, sizeof(esc), section, strlen(section)));
				goto fail;
			}
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL) {
			sg_error_set(err, SG_E_CONFIG, "%s:%u: expected 'key = value'", name,
				lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (section[0] == '\0') {
			sg_error_set(err, SG_E_CONFIG, "%s:%u: key outside of a [section]", name,
				lineno);
			goto fail;
		}
		for (i = 0; i < CFG_NKEYS; i++) {
			if (strcmp(cfg_schema[i].section, section) == 0
				&& strcmp(cfg_schema[i].key, key) == 0)
				break;
		}
		if (i == CFG_NKEYS) {
			char esc[128];

			sg_error_set(err, SG_E_CONFIG, "%s:%u: unknown key '%s' in section [%s]",
				name, lineno, sg_log_esc(esc, sizeof(esc), key, strlen(key)),
				section);
			goto fail;
		}
		if (seen[i]) {
			sg_error_set(err, SG_E_CONFIG, "%s:%u: duplicate key '%s'", name, lineno,
				key);
			goto fail;
		}
		seen[i] = true;
		if (config_set(c, &cfg_schema[i], val, err) < 0) {
			sg_error_prefix(err, "%s:%u: [%s] ", name, lineno, section);
			goto fail;
		}
	}
	if ((c->smtp_tls_certificate == NULL) != (c->smtp_tls_key == NULL)) {
		sg_error_set(err, SG_E_CONFIG,
			"%s: [smtp] tls_certificate and tls_key must be set together", name);
		goto fail;
	}
	if ((c->http_tls_certificate == NULL) != (c->http_tls_key == NULL)) {
		sg_error_set(err, SG_E_CONFIG,
			"%s: [http] tls_certificate and tls_key must be set together", name);
		goto fail;
	}
	config_finish(c);
	return c;
fail:
	if (err != NULL)
		err->code = SG_E_CONFIG;
	sg_config_free(&c);
	return NULL;
}

struct sg_config *sg_config_load(const char *path, struct sg_error *err)
{
	struct sg_config *c;
	char *data = NULL;
	size_t len = 0;

	if (sg_file_read(path, CONFIG_MAX_FILE, &data, &len, err) < 0) {
		sg_error_prefix(err, "cannot read configuration: ");
		if (err != NULL)
			err->code = SG_E_CONFIG;
		return NULL;
	}
	c = sg_config_load_string(path, data, len, err);
	free(data);
	return c;
}

struct sg_config *sg_config_ref(struct sg_config *cfg)
{
	__atomic_fetch_add(&cfg->refcount, 1, __ATOMIC_SEQ_CST);
	return cfg;
}

void sg_config_free(struct sg_config **cfgp)
{
	struct sg_config *c = *cfgp;

	if (c == NULL)
		return;
	*cfgp = NULL;
	if (__atomic_fetch_sub(&c->refcount, 1, __ATOMIC_SEQ_CST) != 1)
		return;
	free(c->path);
	free(c->data_dir);
	free(c->database);
	free(c->hostname);
	free(c->smtp_listen);
	free(c->next_hop);
	free(c->smtp_tls_certificate);
	free(c->smtp_tls_key);
	free(c->http_listen);
	free(c->http_tls_certificate);
	free(c->http_tls_key);
	free(c->portal_listen);
	free(c);
}
