/*
 * cli_sms.c - `sealgate sms ...`: the SMS queue and the SMS gateway settings
 * (SPEC F-SMS-1..3, §13, guide §15).
 *
 *   sms list [--json]                 every queued/failed message
 *   sms add NUMBER TEXT [--ref REF] [--country CC]
 *                                     queue a message; NUMBER as in guide
 *                                     §4.5 (+CC, 00CC, spaces, "-()"); a
 *                                     national 0... number takes the country
 *                                     code from --country or the global
 *                                     sms_default_country_code
 *   sms delete ID...                  remove messages (any state)
 *   sms retry ID...                   make failed messages due again
 *   sms run [--max N]                 send the due messages now (the daemon
 *                                     does this on its own schedule)
 *   sms settings [--json] [--reveal]  the "sms.*" settings (secrets *** unless
 *                                     --reveal)
 *   sms settings set NAME=VALUE...    change them, all or nothing ("NAME="
 *                                     resets to the default)
 *
 * Runs in the administrator's shell, single-threaded.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy.h"
#include "sms/sms.h"

/* cli_sms_id - parse a queue id */
static int cli_sms_id(const char *s, int64_t *id_r)
{
	if (sg_parse_i64(s, 1, INT64_MAX, id_r) < 0) {
		cli_error("sms: bad id '%s'", s);
		return -1;
	}
	return 0;
}

/* cli_sms_json - one entry as a JSON object */
static json_t *cli_sms_json(const struct sms_entry *e)
{
	char c[32], n[32], u[32];

	return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:i, s:s, s:s, s:s, s:s?}",
		"id", (json_int_t)e->id, "phone", e->phone, "text", e->text, "ref", e->ref,
		"status", sms_status_name(e->status), "attempts", (int)e->attempts,
		"created", sg_time_iso8601(e->created, c, sizeof(c)),
		"next_attempt", sg_time_iso8601(e->next_attempt, n, sizeof(n)),
		"updated", sg_time_iso8601(e->updated, u, sizeof(u)),
		"last_error", e->last_error);
}

static int cli_sms_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct sms_list list;
	struct store *db;
	size_t i;

	(void)argv;
	if (argc != 1)
		return cli_usage("sms", "list");
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	if (sms_list(db, 0, &list, &err) < 0) {
		sms_list_deinit(&list);
		return cli_error("sms list: %s", err.msg);
	}
	if (ctx->json) {
		json_t *a = json_array();
		char *out;

		for (i = 0; i < list.n; i++)
			json_array_append_new(a, cli_sms_json(&list.v[i]));
		out = json_dumps(a, JSON_INDENT(2));
		printf("%s\n", out != NULL ? out : "[]");
		free(out);
		json_decref(a);
	} else {
		if (list.n > 0)
			printf("%-6s %-8s %-8s %-20s %-16s %s\n", "ID", "STATUS", "ATTEMPTS",
				"NEXT ATTEMPT", "PHONE", "TEXT / LAST ERROR");
		for (i = 0; i < list.n; i++) {
			const struct sms_entry *e = &list.v[i];
			char t[32], esc[200];

			sg_log_esc(esc, sizeof(esc), e->text, strlen(e->text));
			printf("%-6lld %-8s %-8u %-20s %-16s %s\n", (long long)e->id,
				sms_status_name(e->status), e->attempts,
				sg_time_iso8601(e->next_attempt, t, sizeof(t)), e->phone, esc);
			if (e->last_error != NULL) {
				sg_log_esc(esc, sizeof(esc), e->last_error, strlen(e->last_error));
				printf("%-63s error: %s\n", "", esc);
			}
		}
	}
	sms_list_deinit(&list);
	return 0;
}

/* cli_sms_default_cc - the global sms_default_country_code (malloc'ed), or
 * NULL when unset or on error (printed) with *failed set */
static char *cli_sms_default_cc(struct store *db, bool *failed)
{
	struct sg_error err;
	struct policy *p = policy_new(db, &(struct policy_opts){0});
	struct policy_props *pp = NULL;
	const char *v;
	char *cc = NULL;

	*failed = false;
	if (policy_resolve_global(p, &pp, &err) < 0) {
		cli_error("sms add: %s", err.msg);
		*failed = true;
	} else {
		v = policy_props_get(pp, POLICY_P_SMS_DEFAULT_COUNTRY_CODE, NULL);
		if (v != NULL)
			cc = sg_xstrdup(v);
	}
	policy_props_free(&pp);
	policy_free(&p);
	return cc;
}

static int cli_sms_add(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct store *db;
	const char *ref = NULL, *cc_opt = NULL;
	char *cc = NULL, e164[SMS_PHONE_MAX];
	int64_t id;
	int i, rc = 1;
	bool failed;

	if (argc != 3 && argc != 5 && argc != 7)
		return cli_usage("sms", "add");
	for (i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--ref") == 0 && ref == NULL)
			ref = argv[i + 1];
		else if (strcmp(argv[i], "--country") == 0 && cc_opt == NULL)
			cc_opt = argv[i + 1];
		else
			return cli_usage("sms", "add");
	}
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	if (cc_opt != NULL) {
		cc = sg_xstrdup(cc_opt[0] == '+' ? cc_opt + 1 : cc_opt);
	} else {
		cc = cli_sms_default_cc(db, &failed);
		if (failed)
			return 1;
	}
	if (sms_phone_normalize(argv[1], cc, e164, sizeof(e164), &err) < 0) {
		cli_error("sms add: %s", err.msg);
		goto out;
	}
	if (sms_enqueue(db, e164, argv[2], ref, &id, &err) < 0) {
		cli_error("sms add: %s", err.msg);
		goto out;
	}
	if (ctx->json)
		printf("{\"id\": %lld, \"phone\": \"%s\"}\n", (long long)id, e164);
	else
		printf("queued %lld %s\n", (long long)id, e164);
	rc = 0;
out:
	free(cc);
	return rc;
}

static int cli_sms_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct store *db;
	int64_t id;
	int i, rc = 0;
	bool is_retry = strcmp(argv[0], "retry") == 0;

	if (argc < 2)
		return cli_usage("sms", argv[0]);
	for (i = 1; i < argc; i++) {
		if (cli_sms_id(argv[i], &id) < 0)
			return 2;
	}
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	for (i = 1; i < argc; i++) {
		cli_sms_id(argv[i], &id);
		if ((is_retry ? sms_retry(db, id, &err) : sms_delete(db, id, &err)) < 0)
			rc = cli_error("sms %s %lld: %s", argv[0], (long long)id, err.msg);
	}
	return rc;
}

static int cli_sms_run(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct sms_run_stats st;
	struct store *db;
	uint64_t max = 0;

	if (argc != 1 && !(argc == 3 && strcmp(argv[1], "--max") == 0 &&
		sg_parse_u64(argv[2], 100000, &max) == 0 && max > 0))
		return cli_usage("sms", "run");
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	if (sms_run_due(db, NULL, sg_now(), (unsigned)max, &st, &err) < 0)
		return cli_error("sms run: %s", err.msg);
	if (ctx->json)
		printf("{\"sent\": %u, \"deferred\": %u, \"failed\": %u}\n", st.sent,
			st.deferred, st.failed);
	else
		printf("sent %u, deferred %u, failed %u\n", st.sent, st.deferred, st.failed);
	return 0;
}

static int cli_sms_settings(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sg_error err;
	struct sms_settings *s;
	struct store *db;
	unsigned flags = SMS_PRINT_TEXT;
	char *out;

	if (argc >= 2 && strcmp(argv[1], "set") == 0) {
		if (argc < 3)
			return cli_usage("sms", "settings");
		db = cli_db(ctx);
		if (db == NULL)
			return 1;
		if (sms_settings_update(db, (const char *const *)(argv + 2),
			(size_t)(argc - 2), &err) < 0)
			return cli_error("sms settings set: %s (nothing was changed)", err.msg);
		return 0;
	}
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "show") != 0))
		return cli_usage("sms", "settings");
	db = cli_db(ctx);
	if (db == NULL)
		return 1;
	s = sms_settings_load(db, &err);
	if (s == NULL)
		return cli_error("sms settings: %s", err.msg);
	if (ctx->json)
		flags |= SMS_PRINT_JSON;
	if (ctx->reveal)
		flags |= SMS_PRINT_REVEAL;
	out = sms_settings_format(s, (enum sms_print_flags)flags);
	fputs(out, stdout);
	explicit_bzero(out, strlen(out));
	free(out);
	sms_settings_free(&s);
	return 0;
}

static const struct cli_command cli_sms_commands[] = {
	{"sms", "list", cli_sms_list, "[--json]", "list the SMS queue (queued and failed)"},
	{"sms", "add", cli_sms_add, "NUMBER TEXT [--ref REF] [--country CC]",
		"queue an SMS text message"},
	{"sms", "delete", cli_sms_delete, "ID...", "remove SMS messages from the queue"},
	{"sms", "retry", cli_sms_delete, "ID...", "make failed SMS messages due again"},
	{"sms", "run", cli_sms_run, "[--max N]", "send the due SMS messages now"},
	{"sms", "settings", cli_sms_settings,
		"[show] [--json] [--reveal] | set NAME=VALUE...",
		"SMS gateway settings (secrets only with --reveal; NAME= resets)"},
};
CLI_REGISTER(cli_sms_commands)
