/*
 * cli_policy.c - `sealgate user|domain|global ...` and `sealgate policy ...`
 * (SPEC §13, F-POL-1..9): users, domains (wildcards allowed), the global
 * settings and their properties, the property catalogue, and `policy
 * explain`, which prints each recipient's resolved properties and decision.
 *
 *   user add|delete EMAIL...          domain add|delete DOMAIN...
 *   user list [SEARCH] [--limit N] [--offset N]      (same for domain)
 *   user show EMAIL                   every property with its level
 *   user set EMAIL NAME=VALUE...      all or nothing; validated
 *   user unset EMAIL NAME...          back to inheriting
 *   domain show|set|unset DOMAIN ...; global show|set|unset ...
 *   policy properties                 the catalogue
 *   policy explain --from ADDR --to ADDR... [--subject S] [--header 'N: V']...
 *       [--size N] [--calendar] [--dlp] [--cert-available] [--pdf-available]
 *       [FILE]
 *
 * show/list/explain accept --json; secrets print as *** unless --reveal.
 * Runs in the administrator's shell, single-threaded.
 */
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <jansson.h>

#include "mime/mime.h"
#include "policy/policy.h"

#define CLI_POLICY_HEADERS_MAX 64

/* cli_policy_open - the resolver on the CLI's store */
static struct policy *cli_policy_open(struct cli_ctx *ctx)
{
	struct store *db = cli_db(ctx);
	struct policy_opts o = {.hostname = ctx->cfg->hostname};

	if (db == NULL)
		return NULL;
	return policy_new(db, &o);
}

static enum policy_kind kind_of(const char *group)
{
	if (strcmp(group, "user") == 0)
		return POLICY_KIND_USER;
	if (strcmp(group, "domain") == 0)
		return POLICY_KIND_DOMAIN;
	return POLICY_KIND_GLOBAL;
}

/* json_value - the typed JSON form of a stored value (NULL = unset) */
static json_t *json_value(const struct policy_prop_def *d, const char *v, bool reveal)
{
	int64_t i;

	if (v == NULL)
		return json_null();
	if ((d->flags & POLICY_PF_SECRET) && !reveal)
		return json_string("***");
	switch (d->type) {
	case POLICY_T_BOOL:
		return json_boolean(strcmp(v, "true") == 0);
	case POLICY_T_INT:
	case POLICY_T_BYTES:
		if (sg_parse_i64(v, INT64_MIN, INT64_MAX, &i) == 0)
			return json_integer((json_int_t)i);
		break;
	default:
		break;
	}
	return json_string(v);
}

/* props_json - {"name": {"value": ..., "level": ...}, ...} */
static json_t *props_json(const struct policy_props *pp, bool reveal)
{
	json_t *o = json_object();
	unsigned i;

	for (i = 0; i < POLICY_P__COUNT; i++) {
		const struct policy_prop_def *d = policy_prop_def((enum policy_prop_id)i);
		enum policy_level lvl;
		const char *v = policy_props_get(pp, (enum policy_prop_id)i, &lvl);
		json_t *e = json_object();

		json_object_set_new(e, "value", json_value(d, v, reveal));
		json_object_set_new(e, "level", json_string(policy_level_name(lvl)));
		if (*policy_props_owner(pp, lvl) != '\0')
			json_object_set_new(e, "from", json_string(policy_props_owner(pp, lvl)));
		json_object_set_new(o, d->name, e);
	}
	return o;
}

static void json_print(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		puts(s);
		free(s);
	}
	json_decref(o);
}

/* props_print - "name  value  level"; own-level values unmarked, inherited
 * ones as "(inherited: domain example.com)" */
static void props_print(const struct policy_props *pp, enum policy_level own, bool reveal,
	const char *indent)
{
	unsigned i;

	for (i = 0; i < POLICY_P__COUNT; i++) {
		const struct policy_prop_def *d = policy_prop_def((enum policy_prop_id)i);
		enum policy_level lvl;
		const char *v = policy_props_get(pp, (enum policy_prop_id)i, &lvl);
		const char *owner = policy_props_owner(pp, lvl);
		char shown[96];

		if (v == NULL)
			snprintf(shown, sizeof(shown), "(unset)");
		else if ((d->flags & POLICY_PF_SECRET) && !reveal)
			snprintf(shown, sizeof(shown), "***");
		else
			snprintf(shown, sizeof(shown), "%s", v);
		if (lvl == own)
			printf("%s%-46s %s\n", indent, d->name, shown);
		else
			printf("%s%-46s %-32s (inherited: %s%s%s)\n", indent, d->name, shown,
				policy_level_name(lvl), *owner ? " " : "", owner);
	}
}

/* ------------------------------------------------------------ user/domain */

static int cli_obj_add(struct cli_ctx *ctx, int argc, char **argv, const char *group)
{
	struct policy *p;
	struct sg_error err;
	int i, rc = 0;

	if (argc < 2)
		return cli_usage(group, "add");
	p = cli_policy_open(ctx);
	if (p == NULL)
		return 1;
	for (i = 1; i < argc; i++) {
		if (policy_object_add(p, kind_of(group), argv[i], &err) < 0)
			rc = cli_error("%s add: %s", group, err.msg);
	}
	policy_free(&p);
	return rc;
}

static int cli_obj_delete(struct cli_ctx *ctx, int argc, char **argv, const char *group)
{
	struct policy *p;
	struct sg_error err;
	int i, rc = 0;

	if (argc < 2)
		return cli_usage(group, "delete");
	p = cli_policy_open(ctx);
	if (p == NULL)
		return 1;
	for (i = 1; i < argc; i++) {
		if (policy_object_delete(p, kind_of(group), argv[i], &err) < 0)
			rc = cli_error("%s delete: %s", group, err.msg);
	}
	policy_free(&p);
	return rc;
}

static int cli_obj_list(struct cli_ctx *ctx, int argc, char **argv, const char *group)
{
	static const struct option opts[] = {
		{"limit", required_argument, NULL, 'l'},
		{"offset", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct policy *p;
	struct policy_list l;
	struct sg_error err;
	uint64_t limit = 0, offset = 0;
	const char *search = NULL;
	size_t i;
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'l' && sg_parse_u64(optarg, 100000, &limit) == 0)
			continue;
		if (opt == 'o' && sg_parse_u64(optarg, INT64_MAX, &offset) == 0)
			continue;
		return cli_usage(group, "list");
	}
	if (argc - optind > 1)
		return cli_usage(group, "list");
	if (optind < argc)
		search = argv[optind];
	p = cli_policy_open(ctx);
	if (p == NULL)
		return 1;
	if (policy_object_list(p, kind_of(group), search, (size_t)limit, (size_t)offset, &l,
		&err) < 0) {
		policy_free(&p);
		return cli_error("%s list: %s", group, err.msg);
	}
	if (ctx->json) {
		json_t *a = json_array();

		for (i = 0; i < l.count; i++) {
			char ts[32];

			json_array_append_new(a, json_pack("{s:s, s:s, s:i}", "name", l.items[i].name,
				"created", sg_time_iso8601(l.items[i].created, ts, sizeof(ts)),
				"properties", (int)l.items[i].nprops));
		}
		json_print(a);
	} else {
		for (i = 0; i < l.count; i++)
			printf("%s\t%u properties\n", l.items[i].name, l.items[i].nprops);
		if ((int64_t)l.count < l.total)
			fprintf(stderr, "(%zu of %lld shown; use --limit/--offset)\n", l.count,
				(long long)l.total);
	}
	policy_list_deinit(&l);
	policy_free(&p);
	return 0;
}

static int cli_obj_show(struct cli_ctx *ctx, int argc, char **argv, const char *group)
{
	enum policy_kind kind = kind_of(group);
	struct policy_props *pp = NULL;
	struct policy *p;
	struct sg_error err;
	enum policy_level own = POLICY_LEVEL_GLOBAL;
	int rc;

	if (argc != (kind == POLICY_KIND_GLOBAL ? 1 : 2))
		return cli_usage(group, "show");
	p = cli_policy_open(ctx);
	if (p == NULL)
		return 1;
	if (kind == POLICY_KIND_USER) {
		own = POLICY_LEVEL_USER;
		rc = policy_resolve_user(p, argv[1], &pp, &err);
	} else if (kind == POLICY_KIND_DOMAIN) {
		own = argv[1][0] == '*' ? POLICY_LEVEL_WILDCARD : POLICY_LEVEL_DOMAIN;
		rc = policy_resolve_domain(p, argv[1], &pp, &err);
	} else {
		rc = policy_resolve_global(p, &pp, &err);
	}
	if (rc < 0) {
		policy_free(&p);
		return cli_error("%s show: %s", group, err.msg);
	}
	if (ctx->json)
		json_print(props_json(pp, ctx->reveal));
	else
		props_print(pp, own, ctx->reveal, "");
	policy_props_free(&pp);
	policy_free(&p);
	return 0;
}

/* cli_obj_change - set (NAME=VALUE) or unset (NAME) in one transaction */
static int cli_obj_change(struct cli_ctx *ctx, int argc, char **argv, const char *group,
	bool is_set)
{
	enum policy_kind kind = kind_of(group);
	int first = kind == POLICY_KIND_GLOBAL ? 1 : 2, i, rc = 0;
	struct policy_change *ch;
	struct policy *p;
	struct sg_error err;
	size_t n = 0;

	if (argc <= first)
		return cli_usage(group, is_set ? "set" : "unset");
	ch = sg_xcalloc((size_t)argc, sizeof(*ch));
	for (i = first; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (is_set != (eq != NULL)) {
			free(ch);
			return cli_error("%s %s: want %s, got '%s'", group, is_set ? "set" : "unset",
				is_set ? "NAME=VALUE" : "NAME", argv[i]);
		}
		if (eq != NULL)
			*eq = '\0';
		ch[n].name = argv[i];
		ch[n].value = eq != NULL ? eq + 1 : NULL;
		n++;
	}
	p = cli_policy_open(ctx);
	if (p == NULL) {
		free(ch);
		return 1;
	}
	if (policy_object_apply(p, kind, kind == POLICY_KIND_GLOBAL ? NULL : argv[1], ch, n,
		&err) < 0)
		rc = cli_error("%s %s: %s (nothing was changed)", group, is_set ? "set" : "unset",
			err.msg);
	policy_free(&p);
	free(ch);
	return rc;
}

#define CLI_OBJ_WRAPPERS(g) \
	static int cli_##g##_add(struct cli_ctx *c, int n, char **v) \
	{ return cli_obj_add(c, n, v, #g); } \
	static int cli_##g##_delete(struct cli_ctx *c, int n, char **v) \
	{ return cli_obj_delete(c, n, v, #g); } \
	static int cli_##g##_list(struct cli_ctx *c, int n, char **v) \
	{ return cli_obj_list(c, n, v, #g); }

CLI_OBJ_WRAPPERS(user)
CLI_OBJ_WRAPPERS(domain)

#define CLI_PROP_WRAPPERS(g) \
	static int cli_##g##_show(struct cli_ctx *c, int n, char **v) \
	{ return cli_obj_show(c, n, v, #g); } \
	static int cli_##g##_set(struct cli_ctx *c, int n, char **v) \
	{ return cli_obj_change(c, n, v, #g, true); } \
	static int cli_##g##_unset(struct cli_ctx *c, int n, char **v) \
	{ return cli_obj_change(c, n, v, #g, false); }

CLI_PROP_WRAPPERS(user)
CLI_PROP_WRAPPERS(domain)
CLI_PROP_WRAPPERS(global)

/* --------------------------------------------------------------- catalogue */

static const char *const type_names[] = {"bool", "int", "bytes", "enum", "string",
	"secret", "url", "address", "header-trigger", "subject-filter", "timestamp", "phone",
	"country-code", "password-hash"};

static int cli_policy_properties(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *a = ctx->json ? json_array() : NULL;
	unsigned i;

	(void)argv;
	if (argc != 1)
		return cli_usage("policy", "properties");
	for (i = 0; i < POLICY_P__COUNT; i++) {
		const struct policy_prop_def *d = policy_prop_def((enum policy_prop_id)i);
		char use[16];

		snprintf(use, sizeof(use), "%s%s%s", (d->flags & POLICY_PF_SENDER) ? "S" : "",
			(d->flags & POLICY_PF_RECIPIENT) ? "R" : "",
			(d->flags & POLICY_PF_GLOBAL_ONLY) ? "G" : "");
		if (a != NULL) {
			json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s}", "name", d->name,
				"type", type_names[d->type], "use", use,
				"global_only", (d->flags & POLICY_PF_GLOBAL_ONLY) != 0,
				"secret", (d->flags & POLICY_PF_SECRET) != 0, "help", d->help);

			json_object_set_new(o, "default", d->def != NULL ? json_string(d->def) :
				json_null());
			if (d->enum_values != NULL) {
				json_t *ev = json_array();
				size_t k;

				for (k = 0; d->enum_values[k] != NULL; k++)
					json_array_append_new(ev, json_string(d->enum_values[k]));
				json_object_set_new(o, "values", ev);
			}
			json_array_append_new(a, o);
		} else {
			printf("%-46s %-14s %-4s %-24s %s\n", d->name, type_names[d->type], use,
				d->def != NULL ? d->def : (d->flags & POLICY_PF_DERIVED) ? "(derived)" :
				"(unset)", d->help);
		}
	}
	if (a != NULL)
		json_print(a);
	return 0;
}

/* ----------------------------------------------------------------- explain */

struct explain_hdrs {
	GMimeHeaderList *list;           /* from FILE, or NULL */
	char *names[CLI_POLICY_HEADERS_MAX];  /* --header */
	char *values[CLI_POLICY_HEADERS_MAX];
	size_t n;
};

/* explain_header - idx-th field called name: --header values first, then
 * the file's (decoded, unfolded by GMime) */
static const char *explain_header(void *arg, const char *name, size_t idx)
{
	struct explain_hdrs *h = arg;
	size_t i, seen = 0;
	int k, n;

	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->names[i], name) == 0 && seen++ == idx)
			return h->values[i];
	}
	if (h->list == NULL)
		return NULL;
	n = g_mime_header_list_get_count(h->list);
	for (k = 0; k < n; k++) {
		GMimeHeader *hd = g_mime_header_list_get_header_at(h->list, k);

		if (strcasecmp(g_mime_header_get_name(hd), name) == 0 && seen++ == idx) {
			const char *v = g_mime_header_get_value(hd);

			return v != NULL ? v : "";
		}
	}
	return NULL;
}

/* is_calendar - text/calendar at the top or inside multipart/alternative (D-3) */
static bool is_calendar(struct mime_msg *m)
{
	GMimeObject *top = g_mime_message_get_mime_part(mime_msg_get0_gmime(m));
	GMimeContentType *ct;
	int i, n;

	if (top == NULL)
		return false;
	ct = g_mime_object_get_content_type(top);
	if (g_mime_content_type_is_type(ct, "text", "calendar"))
		return true;
	if (!GMIME_IS_MULTIPART(top) || !g_mime_content_type_is_type(ct, "multipart",
		"alternative"))
		return false;
	n = g_mime_multipart_get_count(GMIME_MULTIPART(top));
	for (i = 0; i < n; i++) {
		GMimeObject *part = g_mime_multipart_get_part(GMIME_MULTIPART(top), i);

		if (g_mime_content_type_is_type(g_mime_object_get_content_type(part), "text",
			"calendar"))
			return true;
	}
	return false;
}

struct explain_env {
	bool has_cert, can_pdf;
};

static int explain_cert(void *arg, const char *r, const struct policy_props *pp,
	struct sg_error *err)
{
	(void)r;
	(void)pp;
	(void)err;
	return ((struct explain_env *)arg)->has_cert ? 1 : 0;
}

static int explain_pdf(void *arg, const char *r, const struct policy_props *pp,
	struct sg_error *err)
{
	(void)r;
	(void)pp;
	(void)err;
	return ((struct explain_env *)arg)->can_pdf ? 1 : 0;
}

static json_t *bits_json(enum policy_bits_kind kind, unsigned bits)
{
	json_t *a = json_array();
	unsigned b;

	for (b = 1; b != 0; b <<= 1) {
		if (bits & b)
			json_array_append_new(a, json_string(policy_bit_name(kind, b)));
	}
	return a;
}

static void bits_print(enum policy_bits_kind kind, unsigned bits)
{
	unsigned b;
	bool is_first = true;

	for (b = 1; b != 0; b <<= 1) {
		if (bits & b) {
			printf("%s%s", is_first ? "" : ", ", policy_bit_name(kind, b));
			is_first = false;
		}
	}
	if (is_first)
		printf("-");
}

static void explain_output(struct cli_ctx *ctx, const struct policy_result *r,
	const size_t *groups, size_t ngroups)
{
	size_t i;

	if (ctx->json) {
		json_t *o = json_object(), *rc = json_array();

		json_object_set_new(o, "originator", json_string(r->originator));
		json_object_set_new(o, "origin", json_string(policy_origin_name(r->origin)));
		json_object_set_new(o, "subject_trigger", json_boolean(r->is_subject_triggered));
		json_object_set_new(o, "force_encrypt_header",
			json_boolean(r->is_header_encrypt_triggered));
		json_object_set_new(o, "force_sign_header",
			json_boolean(r->is_header_sign_triggered));
		json_object_set_new(o, "subject", r->subject_out != NULL ?
			json_string(r->subject_out) : json_null());
		json_object_set_new(o, "phone", *r->phone ? json_string(r->phone) : json_null());
		json_object_set_new(o, "remove_headers", json_array());
		for (i = 0; i < 2 && r->remove_headers[i] != NULL; i++)
			json_array_append_new(json_object_get(o, "remove_headers"),
				json_string(r->remove_headers[i]));
		json_object_set_new(o, "sender_properties", props_json(r->sender_props,
			ctx->reveal));
		for (i = 0; i < r->nrcpt; i++) {
			const struct policy_decision *d = &r->rcpt[i];
			json_t *e = json_object();

			json_object_set_new(e, "recipient", json_string(d->recipient));
			json_object_set_new(e, "group", json_integer((json_int_t)groups[i]));
			json_object_set_new(e, "locality", json_string(d->is_internal ? "internal" :
				"external"));
			json_object_set_new(e, "encrypt", json_string(policy_encrypt_name(d->encrypt)));
			json_object_set_new(e, "method", json_string(policy_method_name(d->method)));
			json_object_set_new(e, "sign", json_string(policy_sign_name(d->sign)));
			json_object_set_new(e, "why", bits_json(POLICY_BITS_WHY, d->why));
			json_object_set_new(e, "flags", bits_json(POLICY_BITS_FLAGS, d->flags));
			json_object_set_new(e, "encryption_algorithm", json_string(d->enc_alg));
			json_object_set_new(e, "signing_algorithm", json_string(d->sign_alg));
			json_object_set_new(e, "key_transport", json_string(d->key_transport));
			json_object_set_new(e, "subject", d->subject != NULL ?
				json_string(d->subject) : json_null());
			json_object_set_new(e, "properties", props_json(d->props, ctx->reveal));
			json_array_append_new(rc, e);
		}
		json_object_set_new(o, "recipients", rc);
		json_object_set_new(o, "groups", json_integer((json_int_t)ngroups));
		json_print(o);
		return;
	}
	printf("originator: %s (%s)\n", *r->originator ? r->originator : "(none)",
		policy_origin_name(r->origin));
	printf("triggers: subject=%s force-encrypt-header=%s force-sign-header=%s\n",
		r->is_subject_triggered ? "yes" : "no", r->is_header_encrypt_triggered ? "yes" :
		"no", r->is_header_sign_triggered ? "yes" : "no");
	if (r->subject_out != NULL)
		printf("new subject: %s\n", r->subject_out);
	if (*r->phone)
		printf("phone from subject: %s\n", r->phone);
	for (i = 0; i < 2 && r->remove_headers[i] != NULL; i++)
		printf("header removed: %s\n", r->remove_headers[i]);
	printf("sender properties:\n");
	props_print(r->sender_props, POLICY_LEVEL_USER, ctx->reveal, "  ");
	for (i = 0; i < r->nrcpt; i++) {
		const struct policy_decision *d = &r->rcpt[i];

		printf("\nrecipient %s (group %zu, %s)\n", d->recipient, groups[i],
			d->is_internal ? "internal" : "external");
		printf("  decision: encrypt=%s method=%s sign=%s\n",
			policy_encrypt_name(d->encrypt), policy_method_name(d->method),
			policy_sign_name(d->sign));
		printf("  why: ");
		bits_print(POLICY_BITS_WHY, d->why);
		printf("\n  flags: ");
		bits_print(POLICY_BITS_FLAGS, d->flags);
		printf("\n");
		if (d->subject != NULL)
			printf("  subject: %s\n", d->subject);
		printf("  properties:\n");
		props_print(d->props, POLICY_LEVEL_USER, ctx->reveal, "    ");
	}
	printf("\n%zu recipient(s) in %zu group(s)\n", r->nrcpt, ngroups);
}

static int cli_policy_explain(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"subject", required_argument, NULL, 's'},
		{"header", required_argument, NULL, 'H'},
		{"size", required_argument, NULL, 'z'},
		{"calendar", no_argument, NULL, 'C'},
		{"dlp", no_argument, NULL, 'D'},
		{"cert-available", no_argument, NULL, 'c'},
		{"pdf-available", no_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	struct explain_hdrs h;
	struct explain_env ee = {false, false};
	struct policy_env env = {explain_cert, explain_pdf, &ee};
	struct policy_msg msg;
	struct policy_result *res = NULL;
	struct policy *p = NULL;
	struct mime_msg *m = NULL;
	struct sg_error err;
	const char **rcpts = NULL;
	size_t nr = 0, *groups = NULL, ngroups, i;
	uint64_t size = 0;
	bool has_size = false;
	int opt, rc = 1, fd = -1;

	memset(&h, 0, sizeof(h));
	memset(&msg, 0, sizeof(msg));
	rcpts = sg_xcalloc((size_t)argc + 1, sizeof(*rcpts));
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			msg.envelope_sender = optarg;
			break;
		case 't':
			rcpts[nr++] = optarg;
			break;
		case 's':
			msg.subject = optarg;
			break;
		case 'H': {
			char *colon = strchr(optarg, ':');

			if (colon == NULL || h.n >= CLI_POLICY_HEADERS_MAX) {
				rc = cli_error("policy explain: --header wants 'Name: value'");
				goto out;
			}
			h.names[h.n] = sg_xstrndup(optarg, (size_t)(colon - optarg));
			h.values[h.n] = sg_xstrdup(colon + 1 + strspn(colon + 1, " \t"));
			h.n++;
			break;
		}
		case 'z':
			if (sg_parse_size(optarg, &size) < 0) {
				rc = cli_usage("policy", "explain");
				goto out;
			}
			has_size = true;
			break;
		case 'C':
			msg.flags |= POLICY_MSG_CALENDAR;
			break;
		case 'D':
			msg.flags |= POLICY_MSG_DLP_MUST_ENCRYPT;
			break;
		case 'c':
			ee.has_cert = true;
			break;
		case 'p':
			ee.can_pdf = true;
			break;
		default:
			rc = cli_usage("policy", "explain");
			goto out;
		}
	}
	if (nr == 0 || argc - optind > 1) {
		rc = cli_usage("policy", "explain");
		goto out;
	}
	if (optind < argc) {
		struct stat stt;

		fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &stt) < 0) {
			rc = cli_error("policy explain: %s: cannot open", argv[optind]);
			goto out;
		}
		m = mime_msg_parse_fd(fd, 0, (uint64_t)stt.st_size, &err);
		if (m == NULL) {
			rc = cli_error("policy explain: %s: %s", argv[optind], err.msg);
			goto out;
		}
		msg.from_header = mime_msg_header_get_raw(m, "From");
		msg.sender_header = mime_msg_header_get_raw(m, "Sender");
		if (msg.subject == NULL)
			msg.subject = mime_msg_header_get(m, "Subject");
		h.list = g_mime_object_get_header_list(GMIME_OBJECT(mime_msg_get0_gmime(m)));
		if (is_calendar(m))
			msg.flags |= POLICY_MSG_CALENDAR;
		if (!has_size)
			size = (uint64_t)stt.st_size;
	}
	msg.size = size;
	msg.header_fn = explain_header;
	msg.header_arg = &h;
	p = cli_policy_open(ctx);
	if (p == NULL)
		goto out;
	if (policy_decide(p, &msg, rcpts, nr, &env, &res, &err) < 0) {
		rc = cli_error("policy explain: %s", err.msg);
		goto out;
	}
	groups = sg_xcalloc(nr, sizeof(*groups));
	ngroups = policy_result_group(res, groups);
	explain_output(ctx, res, groups, ngroups);
	rc = 0;
out:
	for (i = 0; i < h.n; i++) {
		free(h.names[i]);
		free(h.values[i]);
	}
	policy_result_free(&res);
	policy_free(&p);
	mime_msg_free(&m);
	if (fd >= 0)
		close(fd);
	free(groups);
	free(rcpts);
	return rc;
}

static const struct cli_command cli_policy_commands[] = {
	{"user", "add", cli_user_add, "EMAIL...", "add users"},
	{"user", "delete", cli_user_delete, "EMAIL...", "delete users and their properties"},
	{"user", "list", cli_user_list, "[SEARCH] [--limit N] [--offset N]",
		"list users (search: part of the address)"},
	{"user", "show", cli_user_show, "EMAIL", "every property with the level it comes from"},
	{"user", "set", cli_user_set, "EMAIL NAME=VALUE...", "set properties (all or nothing)"},
	{"user", "unset", cli_user_unset, "EMAIL NAME...", "inherit properties again"},
	{"domain", "add", cli_domain_add, "DOMAIN...", "add domains (*.example.com: wildcard)"},
	{"domain", "delete", cli_domain_delete, "DOMAIN...",
		"delete domains without users"},
	{"domain", "list", cli_domain_list, "[SEARCH] [--limit N] [--offset N]",
		"list domains"},
	{"domain", "show", cli_domain_show, "DOMAIN", "every property with its level"},
	{"domain", "set", cli_domain_set, "DOMAIN NAME=VALUE...", "set properties"},
	{"domain", "unset", cli_domain_unset, "DOMAIN NAME...", "inherit properties again"},
	{"global", "show", cli_global_show, "", "the global settings with their level"},
	{"global", "set", cli_global_set, "NAME=VALUE...", "set global properties"},
	{"global", "unset", cli_global_unset, "NAME...", "back to the factory value"},
	{"policy", "properties", cli_policy_properties, "", "the property catalogue"},
	{"policy", "explain", cli_policy_explain,
		"--from ADDR --to ADDR... [--subject S] [--header 'N: V'] [--size N] "
		"[--calendar] [--dlp] [--cert-available] [--pdf-available] [FILE]",
		"resolved properties and the decision for each recipient"},
};
CLI_REGISTER(cli_policy_commands)
