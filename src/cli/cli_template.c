/*
 * cli_template.c - `sealgate template list|show|set|reset` (SPEC §13,
 * F-TPL-1): the templates of generated mail and SMS, per user, domain or
 * globally, with inheritance user <- domain <- wildcard <- global <- factory.
 *
 *   template list [--user EMAIL|--domain DOMAIN] [--json]
 *        every template with the level its text in force comes from
 *   template show NAME [--user EMAIL|--domain DOMAIN] [--json] [--raw] [--sample]
 *        the text in force and its level (--raw: only the text, as `set`
 *        takes it; --sample: the message rendered with sample values)
 *   template set NAME [--user EMAIL|--domain DOMAIN] FILE
 *        validate FILE ("-" = standard input) and store it at that level
 *        (global without --user/--domain)
 *   template reset NAME [--user EMAIL|--domain DOMAIN]
 *        delete that level's text (the next level applies again)
 *
 * Runs in the administrator's shell, single-threaded.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "template/template.h"

struct cli_tpl_args {
	const char *name;      /* template name (show/set/reset) */
	const char *file;      /* set */
	enum policy_kind kind; /* the level chosen by --user/--domain */
	const char *object;    /* the user or domain */
	bool is_raw;
	bool is_sample;
};

/* cli_tpl_parse - options and positional words (npos of them) of argv. */
static int cli_tpl_parse(int argc, char **argv, size_t npos, bool allow_show_flags,
	struct cli_tpl_args *a)
{
	const char *pos[2] = {NULL, NULL};
	size_t n = 0;
	int i;

	memset(a, 0, sizeof(*a));
	a->kind = POLICY_KIND_GLOBAL;
	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--user") == 0 || strcmp(argv[i], "--domain") == 0) &&
			i + 1 < argc && a->object == NULL) {
			a->kind = argv[i][2] == 'u' ? POLICY_KIND_USER : POLICY_KIND_DOMAIN;
			a->object = argv[++i];
		} else if (allow_show_flags && strcmp(argv[i], "--raw") == 0) {
			a->is_raw = true;
		} else if (allow_show_flags && strcmp(argv[i], "--sample") == 0) {
			a->is_sample = true;
		} else if ((argv[i][0] != '-' || strcmp(argv[i], "-") == 0) && n < npos) {
			pos[n++] = argv[i];
		} else {
			return -1;
		}
	}
	if (n != npos)
		return -1;
	a->name = pos[0];
	a->file = pos[1];
	return 0;
}

static int cli_tpl_find(const char *cmd, const char *name, enum template_id *id_r)
{
	if (name != NULL && template_find(name, id_r) == 1)
		return 0;
	return cli_error("template %s: unknown template '%s' (see: sealgate template list)", cmd,
		name != NULL ? name : "");
}

/* cli_tpl_load - the template in force for the chosen level's chain. */
static int cli_tpl_load(struct cli_ctx *ctx, struct store *db, const struct cli_tpl_args *a,
	enum template_id id, struct template_src **src_r, struct sg_error *err)
{
	struct policy_opts o = {.hostname = ctx->cfg->hostname};
	struct policy_props *pp = NULL;
	struct policy *p;
	int rc;

	if (a->kind == POLICY_KIND_GLOBAL)
		return template_load(db, id, NULL, 0, src_r, err);
	p = policy_new(db, &o);
	rc = a->kind == POLICY_KIND_USER ? policy_resolve_user(p, a->object, &pp, err) :
		policy_resolve_domain(p, a->object, &pp, err);
	if (rc == 0)
		rc = template_load_props(db, id, pp, src_r, err);
	policy_props_free(&pp);
	policy_free(&p);
	return rc;
}

static void cli_tpl_json_print(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		puts(s);
		free(s);
	}
	json_decref(o);
}

static const char *cli_tpl_kind(const struct template_def *d)
{
	return d->kind == TEMPLATE_KIND_SMS ? "sms" : "mail";
}

static const char *cli_tpl_var_type(enum template_var_type t)
{
	return t == TEMPLATE_VAR_TEXT ? "text" : t == TEMPLATE_VAR_LIST ? "list" : "records";
}

static int cli_template_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_tpl_args a;
	struct sg_error err;
	struct store *db;
	json_t *arr = NULL;
	size_t i;

	if (cli_tpl_parse(argc, argv, 0, false, &a) < 0)
		return cli_usage("template", "list");
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	if (ctx->json)
		arr = json_array();
	else
		printf("%-26s %-5s %-9s %s\n", "NAME", "KIND", "LEVEL", "TITLE");
	for (i = 0; i < TEMPLATE__COUNT; i++) {
		const struct template_def *d = template_def((enum template_id)i);
		struct template_src *src = NULL;

		if (cli_tpl_load(ctx, db, &a, (enum template_id)i, &src, &err) < 0) {
			json_decref(arr);
			return cli_error("template list: %s", err.msg);
		}
		if (arr != NULL) {
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b, s:s, s:s}",
				"name", d->name, "title", d->title, "kind", cli_tpl_kind(d),
				"global_only", (d->flags & TEMPLATE_F_GLOBAL_ONLY) != 0,
				"level", policy_level_name(src->level), "owner", src->owner));
		} else {
			printf("%-26s %-5s %-9s %s%s\n", d->name, cli_tpl_kind(d),
				policy_level_name(src->level), d->title,
				(d->flags & TEMPLATE_F_GLOBAL_ONLY) != 0 ? " (global only)" : "");
		}
		template_src_free(&src);
	}
	if (arr != NULL)
		cli_tpl_json_print(arr);
	return 0;
}

/* cli_tpl_sample - src rendered with the catalogue's sample values. */
static char *cli_tpl_sample(struct cli_ctx *ctx, const struct template_def *d,
	const struct template_src *src, struct sg_error *err)
{
	struct template_var vars[64];
	char names[64][TEMPLATE_NAME_MAX * 2];
	struct template_render_opts o = {.msgid_domain = ctx->cfg->hostname};
	struct mime_msg *m = NULL;
	size_t i, n = 0, f;
	char *out = NULL;

	for (i = 0; i < d->nvars && n + 8 < 64; i++) {
		const struct template_var_def *v = &d->vars[i];

		if (v->type != TEMPLATE_VAR_RECORDS) {
			vars[n].name = v->name;
			vars[n++].value = v->sample;
			continue;
		}
		for (f = 0; v->fields[f] != NULL && n + 1 < 64; f++) {
			snprintf(names[n], sizeof(names[n]), "%s.%s", v->name, v->fields[f]);
			vars[n].name = names[n];
			vars[n].value = v->sample;
			n++;
		}
	}
	if (d->kind == TEMPLATE_KIND_SMS) {
		if (template_render_sms(src->id, src->text, vars, n, &out, err) < 0)
			return NULL;
		return out;
	}
	if (template_render_mail(src->id, src->text, vars, n, &o, &m, err) < 0)
		return NULL;
	{
		char *s = g_mime_object_to_string(GMIME_OBJECT(mime_msg_get0_gmime(m)), NULL);

		out = sg_xstrdup(s);
		g_free(s);
	}
	mime_msg_free(&m);
	return out;
}

/* cli_tpl_show_json - `template show --json`: the catalogue entry and text. */
static void cli_tpl_show_json(const struct template_def *d, const struct template_src *src,
	const char *sample)
{
	json_t *o = json_object(), *vars = json_array();
	size_t i;

	for (i = 0; i < d->nvars; i++) {
		const struct template_var_def *v = &d->vars[i];
		json_t *jv = json_pack("{s:s, s:s, s:s}", "name", v->name, "type",
			cli_tpl_var_type(v->type), "help", v->help);

		if (v->type == TEMPLATE_VAR_RECORDS) {
			json_t *fields = json_array();
			size_t f;

			for (f = 0; v->fields[f] != NULL; f++)
				json_array_append_new(fields, json_string(v->fields[f]));
			json_object_set_new(jv, "fields", fields);
		}
		json_array_append_new(vars, jv);
	}
	json_object_set_new(o, "name", json_string(d->name));
	json_object_set_new(o, "title", json_string(d->title));
	json_object_set_new(o, "kind", json_string(cli_tpl_kind(d)));
	json_object_set_new(o, "global_only",
		json_boolean((d->flags & TEMPLATE_F_GLOBAL_ONLY) != 0));
	json_object_set_new(o, "level", json_string(policy_level_name(src->level)));
	json_object_set_new(o, "owner", json_string(src->owner));
	json_object_set_new(o, "updated", json_integer(src->updated));
	json_object_set_new(o, "variables", vars);
	json_object_set_new(o, "text", json_string(src->text));
	if (sample != NULL)
		json_object_set_new(o, "sample", json_string(sample));
	cli_tpl_json_print(o);
}

static int cli_template_show(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct template_def *d;
	struct template_src *src = NULL;
	struct cli_tpl_args a;
	enum template_id id;
	struct sg_error err;
	struct store *db;
	char *sample = NULL;
	size_t i;

	if (cli_tpl_parse(argc, argv, 1, true, &a) < 0)
		return cli_usage("template", "show");
	if (cli_tpl_find("show", a.name, &id) != 0)
		return 1;
	d = template_def(id);
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	if (cli_tpl_load(ctx, db, &a, id, &src, &err) < 0)
		return cli_error("template show: %s", err.msg);
	if (a.is_sample) {
		sample = cli_tpl_sample(ctx, d, src, &err);
		if (sample == NULL) {
			template_src_free(&src);
			return cli_error("template show: %s", err.msg);
		}
	}
	if (ctx->json) {
		cli_tpl_show_json(d, src, sample);
	} else if (a.is_sample) {
		fputs(sample, stdout);
		if (sample[0] != '\0' && sample[strlen(sample) - 1] != '\n')
			putchar('\n');
	} else if (a.is_raw) {
		fputs(src->text, stdout);
	} else {
		printf("name: %s\ntitle: %s\nkind: %s\nlevel: %s%s%s%s\nvariables:",
			d->name, d->title, cli_tpl_kind(d), policy_level_name(src->level),
			src->owner[0] != '\0' ? " (" : "", src->owner,
			src->owner[0] != '\0' ? ")" : "");
		for (i = 0; i < d->nvars; i++)
			printf(" %s%s", d->vars[i].name,
				d->vars[i].type == TEMPLATE_VAR_TEXT ? "" : "[]");
		printf("\n\n%s", src->text);
	}
	free(sample);
	template_src_free(&src);
	return 0;
}

/* cli_tpl_owner - the owner string of the level chosen on the command line. */
static int cli_tpl_owner(const char *cmd, const struct cli_tpl_args *a, char *out,
	size_t outsz)
{
	struct sg_error err;

	if (template_owner(a->kind, a->object, out, outsz, &err) < 0)
		return cli_error("template %s: %s", cmd, err.msg);
	return 0;
}

/* cli_tpl_read - FILE or standard input ("-"), at most TEMPLATE_SOURCE_MAX + 1. */
static char *cli_tpl_read(const char *file, size_t *len_r, struct sg_error *err)
{
	struct sg_buf b;
	char chunk[4096];
	size_t n;
	FILE *fp = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");

	if (fp == NULL) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s", file);
		return NULL;
	}
	sg_buf_init(&b, TEMPLATE_SOURCE_MAX + 1);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (sg_buf_append(&b, chunk, n, NULL) < 0) {
			sg_error_set(err, SG_E_LIMIT, "%s: larger than %u bytes", file,
				TEMPLATE_SOURCE_MAX);
			break;
		}
	}
	if (ferror(fp) && err->code == SG_E_OK)
		sg_error_set(err, SG_E_IO, "%s: read error", file);
	if (fp != stdin)
		fclose(fp);
	if (err->code != SG_E_OK) {
		sg_buf_deinit(&b);
		return NULL;
	}
	*len_r = b.len;
	return sg_buf_steal(&b);
}

static int cli_template_set(struct cli_ctx *ctx, int argc, char **argv)
{
	char owner[POLICY_OWNER_MAX];
	struct cli_tpl_args a;
	enum template_id id;
	struct sg_error err;
	struct store *db;
	char *text;
	size_t len = 0;
	int rc;

	if (cli_tpl_parse(argc, argv, 2, false, &a) < 0)
		return cli_usage("template", "set");
	if (cli_tpl_find("set", a.name, &id) != 0 || cli_tpl_owner("set", &a, owner,
		sizeof(owner)) != 0)
		return 1;
	sg_error_clear(&err);
	text = cli_tpl_read(a.file, &len, &err);
	if (text == NULL)
		return cli_error("template set: %s", err.msg);
	db = cli_db(ctx);
	if (db == NULL) {
		free(text);
		return 1;
	}
	rc = template_save(db, id, owner, text, len, &err);
	free(text);
	if (rc < 0)
		return cli_error("template set: %s (nothing was changed)", err.msg);
	if (strncmp(owner, "wildcard:", 9) == 0) {
		struct policy_opts o = {.hostname = ctx->cfg->hostname};
		struct policy *p = policy_new(db, &o);

		if (policy_object_exists(p, POLICY_KIND_DOMAIN, owner + 9, &err) == 0)
			fprintf(stderr, "sealgate: warning: domain %s does not exist; the template "
				"applies once it is added (sealgate domain add)\n", owner + 9);
		policy_free(&p);
	}
	return 0;
}

static int cli_template_reset(struct cli_ctx *ctx, int argc, char **argv)
{
	char owner[POLICY_OWNER_MAX];
	struct cli_tpl_args a;
	enum template_id id;
	struct sg_error err;
	struct store *db;
	int rc;

	if (cli_tpl_parse(argc, argv, 1, false, &a) < 0)
		return cli_usage("template", "reset");
	if (cli_tpl_find("reset", a.name, &id) != 0 || cli_tpl_owner("reset", &a, owner,
		sizeof(owner)) != 0)
		return 1;
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	rc = template_reset(db, id, owner, &err);
	if (rc < 0)
		return cli_error("template reset: %s", err.msg);
	printf("%s: %s\n", owner, rc == 1 ? "reset (inherited again)" : "was not set");
	return 0;
}

static const struct cli_command cli_template_cmds[] = {
	{"template", "list", cli_template_list, "[--user EMAIL|--domain DOMAIN] [--json]",
		"templates and the level each one in force comes from"},
	{"template", "show", cli_template_show,
		"NAME [--user EMAIL|--domain DOMAIN] [--json] [--raw] [--sample]",
		"the template in force, its level and variables"},
	{"template", "set", cli_template_set, "NAME [--user EMAIL|--domain DOMAIN] FILE|-",
		"validate and store a template at a level (global by default)"},
	{"template", "reset", cli_template_reset, "NAME [--user EMAIL|--domain DOMAIN]",
		"remove a level's template so the next level applies"},
};
CLI_REGISTER(cli_template_cmds)
