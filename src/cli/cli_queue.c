/*
 * cli_queue.c - `sealgate queue list|show|delete|hold|release|requeue`
 * (F-FLOW-3, SPEC §13): the administrator's view of the spool at
 * <data_dir>/spool, the same directory the daemon opens. Works with the
 * daemon running or stopped: every operation is one of the spool's atomic
 * renames/unlinks (spool.h), so the daemon sees a message either before or
 * after it. Runs single-threaded in the admin's shell.
 *
 * Output: text for people, or with --json one JSON value on stdout
 * (list: an array; everything else: an object). Errors go to stderr with
 * exit status 1 (2 for usage errors). Message data (addresses, headers) is
 * untrusted: text output escapes control bytes, JSON output escapes
 * invalid UTF-8 as \xHH.
 */
#include "cli.h"
#include "spool/spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#define CLI_QUEUE_HEADERS_MAX 8192  /* bytes of headers shown by `queue show` */
#define CLI_QUEUE_LIST_RCPTS 3      /* recipients per line in text listings */
#define CLI_QUEUE_ESC_MAX 2048

/* cli_queue_spool - open <data_dir>/spool: 1 opened, 0 there is no spool
 * yet (nothing was ever received), -1 error (printed). */
static int cli_queue_spool(struct cli_ctx *ctx, struct spool **sp_r)
{
	struct sg_error err;
	struct stat st;
	char *dir = sg_xasprintf("%s/spool", ctx->cfg->data_dir);
	int rc = -1;

	*sp_r = NULL;
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			rc = 0;
		else
			cli_error("spool %s: %s", dir, strerror(errno));
		goto out;
	}
	*sp_r = spool_open(dir, &err);
	if (*sp_r == NULL) {
		cli_error("%s", err.msg);
		goto out;
	}
	rc = 1;
out:
	free(dir);
	return rc;
}

/* esc - untrusted text for a terminal line (static buffer per slot). */
static const char *esc(const char *s, unsigned slot)
{
	static char buf[4][CLI_QUEUE_ESC_MAX];

	if (s == NULL)
		return "";
	return sg_log_esc(buf[slot % 4], sizeof(buf[0]), s, strlen(s));
}

/* jstr - a JSON string, null for NULL; invalid UTF-8 is escaped. */
static json_t *jstr(const char *s)
{
	char buf[CLI_QUEUE_ESC_MAX];
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	if (j != NULL)
		return j;
	return json_string(sg_log_esc(buf, sizeof(buf), s, strlen(s)));
}

static json_t *jtime(int64_t t)
{
	char buf[40];

	if (t <= 0)
		return json_null();
	return json_string(sg_time_iso8601(t, buf, sizeof(buf)));
}

/* json_print - dump j on stdout and free it. */
static int json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);

	json_decref(j);
	if (s == NULL)
		return cli_error("cannot format JSON output");
	printf("%s\n", s);
	free(s);
	return 0;
}

/* cli_queue_id - validate the ID argument; 0 ok, 1 error printed. */
static int cli_queue_id(const char *id)
{
	if (!sg_mail_id_is_valid(id))
		return cli_error("invalid mail ID '%s' (16 upper-case hex digits)", esc(id, 0));
	return 0;
}

/* ------------------------------------------------------------------- list */

struct id_list {
	char (*ids)[SG_MAIL_ID_LEN + 1];
	size_t n, cap;
};

static int id_list_add(const char *id, void *arg)
{
	struct id_list *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap < 64 ? 64 : l->cap * 2;
		l->ids = sg_xrealloc(l->ids, l->cap * sizeof(*l->ids));
	}
	sg_strlcpy(l->ids[l->n++], id, SG_MAIL_ID_LEN + 1);
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* env_json - the fields every listing carries (see the admin guide). */
static json_t *env_json(const char *id, enum spool_queue q, const struct spool_env *env,
	uint64_t size)
{
	json_t *o = json_object();
	json_t *to = json_array();
	size_t i;

	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "queue", json_string(spool_queue_name(q)));
	json_object_set_new(o, "kind", json_string(spool_kind_name(env->kind)));
	json_object_set_new(o, "from", jstr(env->sender != NULL ? env->sender : ""));
	for (i = 0; i < env->nrcpts; i++)
		json_array_append_new(to, jstr(env->rcpts[i].addr));
	json_object_set_new(o, "to", to);
	json_object_set_new(o, "size", json_integer((json_int_t)size));
	json_object_set_new(o, "arrival", jtime(env->arrival));
	json_object_set_new(o, "attempts", json_integer(env->attempts));
	json_object_set_new(o, "next_attempt", jtime(env->next_attempt));
	json_object_set_new(o, "last_error", jstr(env->last_error));
	return o;
}

/* damaged_json - a listing entry for a file the spool cannot read. */
static json_t *damaged_json(const char *id, enum spool_queue q, const char *why)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "queue", json_string(spool_queue_name(q)));
	json_object_set_new(o, "kind", json_null());
	json_object_set_new(o, "from", json_null());
	json_object_set_new(o, "to", json_array());
	json_object_set_new(o, "size", json_null());
	json_object_set_new(o, "arrival", json_null());
	json_object_set_new(o, "attempts", json_integer(0));
	json_object_set_new(o, "next_attempt", json_null());
	json_object_set_new(o, "last_error", json_null());
	json_object_set_new(o, "damaged", json_true());
	json_object_set_new(o, "error", jstr(why));
	return o;
}

static void list_text_line(const char *id, enum spool_queue q, const struct spool_env *env,
	uint64_t size)
{
	char when[40];
	size_t i;

	printf("%-16s  %-8s  %10llu  %-20s  %3u  <%s> ->", id, spool_queue_name(q),
		(unsigned long long)size, sg_time_iso8601(env->arrival, when, sizeof(when)),
		env->attempts, esc(env->sender, 0));
	for (i = 0; i < env->nrcpts && i < CLI_QUEUE_LIST_RCPTS; i++)
		printf("%s <%s>", i > 0 ? "," : "", esc(env->rcpts[i].addr, 1));
	if (env->nrcpts > CLI_QUEUE_LIST_RCPTS)
		printf(" (+%zu more)", env->nrcpts - CLI_QUEUE_LIST_RCPTS);
	putchar('\n');
	if (env->last_error != NULL)
		printf("%18s(%s)\n", "", esc(env->last_error, 2));
}

/* list_queue - print (or add to arr) every message of q in ID order. */
static int list_queue(struct spool *sp, enum spool_queue q, json_t *arr, size_t *count)
{
	struct id_list l = {0};
	struct sg_error err;
	size_t i;

	if (spool_list(sp, q, id_list_add, &l, &err) < 0) {
		free(l.ids);
		return cli_error("%s", err.msg);
	}
	if (l.n > 1)
		qsort(l.ids, l.n, sizeof(*l.ids), id_cmp);
	for (i = 0; i < l.n; i++) {
		struct spool_env env;
		uint64_t size = 0;

		if (spool_env_read(sp, q, l.ids[i], &env, &size, &err) < 0) {
			/* moved or delivered since the directory was read */
			if (err.code == SG_E_NOTFOUND)
				continue;
			if (arr != NULL)
				json_array_append_new(arr, damaged_json(l.ids[i], q, err.msg));
			else
				printf("%-16s  %-8s  damaged: %s\n", l.ids[i], spool_queue_name(q),
					esc(err.msg, 0));
			(*count)++;
			continue;
		}
		if (arr != NULL)
			json_array_append_new(arr, env_json(l.ids[i], q, &env, size));
		else
			list_text_line(l.ids[i], q, &env, size);
		spool_env_free_fields(&env);
		(*count)++;
	}
	free(l.ids);
	return 0;
}

static int cli_queue_list(struct cli_ctx *ctx, int argc, char **argv)
{
	struct spool *sp = NULL;
	enum spool_queue only = SPOOL_Q__COUNT;
	json_t *arr = NULL;
	size_t count = 0;
	unsigned q;
	int rc = 1;

	if (argc > 2)
		return cli_usage("queue", "list");
	if (argc == 2 && spool_queue_from_name(argv[1], &only) < 0)
		return cli_error("unknown queue '%s' (incoming, outgoing, deferred, error, "
			"hold)", esc(argv[1], 0));
	if (cli_queue_spool(ctx, &sp) < 0)
		return 1;
	if (ctx->json)
		arr = json_array();
	else
		printf("%-16s  %-8s  %10s  %-20s  %3s  %s\n", "ID", "QUEUE", "SIZE", "ARRIVAL",
			"ATT", "FROM -> TO");
	for (q = 0; sp != NULL && q < SPOOL_Q__COUNT; q++) {
		if (only != SPOOL_Q__COUNT && q != only)
			continue;
		if (list_queue(sp, (enum spool_queue)q, arr, &count) != 0)
			goto out;
	}
	if (arr != NULL) {
		rc = json_print(arr);
		arr = NULL;
	} else {
		printf("%zu message%s\n", count, count == 1 ? "" : "s");
		rc = 0;
	}
out:
	json_decref(arr);
	spool_close(&sp);
	return rc;
}

/* ------------------------------------------------------------------- show */

/* find_msg - open the spool and find id: 0 ok (*sp_r, *q_r), 1 error printed. */
static int find_msg(struct cli_ctx *ctx, const char *id, struct spool **sp_r,
	enum spool_queue *q_r)
{
	struct sg_error err;
	int rc;

	if (cli_queue_id(id) != 0)
		return 1;
	rc = cli_queue_spool(ctx, sp_r);
	if (rc < 0)
		return 1;
	if (rc == 0)
		return cli_error("no such message %s", id);
	rc = spool_find(*sp_r, id, q_r, &err);
	if (rc < 0) {
		spool_close(sp_r);
		return cli_error("%s", err.msg);
	}
	if (rc == 0) {
		spool_close(sp_r);
		return cli_error("no such message %s", id);
	}
	return 0;
}

static json_t *notify_json(unsigned notify)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{SPOOL_NOTIFY_NEVER, "never"}, {SPOOL_NOTIFY_SUCCESS, "success"},
		{SPOOL_NOTIFY_FAILURE, "failure"}, {SPOOL_NOTIFY_DELAY, "delay"}};
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((notify & names[i].bit) != 0)
			json_array_append_new(a, json_string(names[i].name));
	return a;
}

static json_t *show_json(const char *id, enum spool_queue q, const struct spool_env *env,
	uint64_t size, const char *hdrs)
{
	json_t *o = env_json(id, q, env, size);
	json_t *rc = json_array();
	size_t i;

	json_object_set_new(o, "client_address", jstr(env->client_addr));
	json_object_set_new(o, "client_helo", jstr(env->client_helo));
	json_object_set_new(o, "parent_id", jstr(env->parent_id));
	json_object_set_new(o, "dsn_envid", jstr(env->dsn_envid));
	json_object_set_new(o, "dsn_ret", json_string(env->dsn_ret_hdrs ? "hdrs" : "full"));
	json_object_set_new(o, "smtputf8", json_boolean(env->smtputf8));
	json_object_set_new(o, "body_8bit", json_boolean(env->body_8bit));
	for (i = 0; i < env->nrcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];
		json_t *ro = json_object();

		json_object_set_new(ro, "address", jstr(r->addr));
		json_object_set_new(ro, "orcpt", jstr(r->orcpt));
		json_object_set_new(ro, "notify", notify_json(r->notify));
		json_object_set_new(ro, "status", json_string(spool_rcpt_status_name(r->status)));
		json_object_set_new(ro, "last_reply", jstr(r->last_reply));
		json_array_append_new(rc, ro);
	}
	json_object_set_new(o, "recipients", rc);
	json_object_set_new(o, "headers", jstr(hdrs));
	return o;
}

/* print_headers - header text with control bytes escaped, CR dropped. */
static void print_headers(const char *h)
{
	const unsigned char *p;

	for (p = (const unsigned char *)h; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\n' || *p == '\t' || (*p >= 0x20 && *p != 0x7f))
			putchar(*p);
		else
			printf("\\x%02X", *p);
	}
	if (p != (const unsigned char *)h && p[-1] != '\n')
		putchar('\n');
}

static void show_text(const char *id, enum spool_queue q, const struct spool_env *env,
	uint64_t size, const char *hdrs)
{
	char t1[40], t2[40];
	size_t i;

	printf("id:           %s\n", id);
	printf("queue:        %s\n", spool_queue_name(q));
	printf("kind:         %s\n", spool_kind_name(env->kind));
	printf("from:         <%s>\n", esc(env->sender, 0));
	printf("size:         %llu\n", (unsigned long long)size);
	printf("arrival:      %s\n", sg_time_iso8601(env->arrival, t1, sizeof(t1)));
	printf("attempts:     %u\n", env->attempts);
	printf("next attempt: %s\n", env->next_attempt > 0 ?
		sg_time_iso8601(env->next_attempt, t2, sizeof(t2)) : "-");
	if (env->last_error != NULL)
		printf("last error:   %s\n", esc(env->last_error, 0));
	if (env->client_addr != NULL)
		printf("client:       [%s] helo=%s\n", esc(env->client_addr, 0),
			esc(env->client_helo, 1));
	if (env->parent_id != NULL)
		printf("parent:       %s\n", esc(env->parent_id, 0));
	printf("recipients:   %zu\n", env->nrcpts);
	for (i = 0; i < env->nrcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		printf("  <%s> %s", esc(r->addr, 0), spool_rcpt_status_name(r->status));
		if (r->last_reply != NULL)
			printf(" (%s)", esc(r->last_reply, 1));
		putchar('\n');
	}
	printf("\n");
	print_headers(hdrs);
}

static int cli_queue_show(struct cli_ctx *ctx, int argc, char **argv)
{
	struct spool *sp = NULL;
	struct spool_msg *m = NULL;
	struct sg_error err;
	enum spool_queue q;
	char *hdrs = NULL;
	int rc = 1;

	if (argc != 2)
		return cli_usage("queue", "show");
	if (find_msg(ctx, argv[1], &sp, &q) != 0)
		return 1;
	/* Opening checks the whole file incl. the body's SHA-256. */
	m = spool_msg_open(sp, q, argv[1], &err);
	if (m == NULL) {
		if (err.code == SG_E_PARSE)
			cli_error("%s: damaged spool file in %s: %s", argv[1], spool_queue_name(q),
				err.msg);
		else
			cli_error("%s", err.msg);
		goto out;
	}
	if (spool_msg_read_headers(m, CLI_QUEUE_HEADERS_MAX, &hdrs, &err) < 0) {
		cli_error("%s: %s", argv[1], err.msg);
		goto out;
	}
	if (ctx->json) {
		rc = json_print(show_json(argv[1], q, spool_msg_env(m), spool_msg_size(m),
			hdrs));
	} else {
		show_text(argv[1], q, spool_msg_env(m), spool_msg_size(m), hdrs);
		rc = 0;
	}
out:
	free(hdrs);
	spool_msg_close(&m);
	spool_close(&sp);
	return rc;
}

/* ---------------------------------------------------------------- actions */

/* action_done - report the result of an action on id. */
static int action_done(struct cli_ctx *ctx, const char *id, const char *action,
	enum spool_queue from, int to)
{
	if (ctx->json) {
		json_t *o = json_object();

		json_object_set_new(o, "id", json_string(id));
		json_object_set_new(o, "action", json_string(action));
		json_object_set_new(o, "from", json_string(spool_queue_name(from)));
		json_object_set_new(o, "queue", to >= 0 ?
			json_string(spool_queue_name((enum spool_queue)to)) : json_null());
		return json_print(o);
	}
	if (to >= 0)
		printf("%s: %s (%s -> %s)\n", id, action, spool_queue_name(from),
			spool_queue_name((enum spool_queue)to));
	else
		printf("%s: %s (was in %s)\n", id, action, spool_queue_name(from));
	return 0;
}

enum queue_action { QA_DELETE, QA_HOLD, QA_RELEASE, QA_REQUEUE };

static int cli_queue_action(struct cli_ctx *ctx, int argc, char **argv,
	enum queue_action act)
{
	static const char *const names[] = {"delete", "hold", "release", "requeue"};
	static const char *const done[] = {"deleted", "held", "released", "requeued"};
	struct spool *sp = NULL;
	struct sg_error err;
	enum spool_queue from, to = SPOOL_Q_HOLD;
	int rc;

	if (argc != 2)
		return cli_usage("queue", names[act]);
	if (find_msg(ctx, argv[1], &sp, &from) != 0)
		return 1;
	switch (act) {
	case QA_DELETE:
		rc = spool_delete(sp, from, argv[1], &err);
		break;
	case QA_HOLD:
		rc = spool_hold(sp, argv[1], &err);
		break;
	case QA_RELEASE:
		rc = spool_release(sp, argv[1], &to, &err);
		break;
	case QA_REQUEUE:
	default:
		rc = spool_requeue(sp, argv[1], &to, &err);
		break;
	}
	spool_close(&sp);
	if (rc < 0)
		return cli_error("%s %s: %s", names[act], argv[1], err.msg);
	return action_done(ctx, argv[1], done[act], from, act == QA_DELETE ? -1 : (int)to);
}

static int cli_queue_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_queue_action(ctx, argc, argv, QA_DELETE);
}

static int cli_queue_hold(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_queue_action(ctx, argc, argv, QA_HOLD);
}

static int cli_queue_release(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_queue_action(ctx, argc, argv, QA_RELEASE);
}

static int cli_queue_requeue(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_queue_action(ctx, argc, argv, QA_REQUEUE);
}

static const struct cli_command cli_queue_commands[] = {
	{"queue", "list", cli_queue_list, "[QUEUE] [--json]",
		"list spooled messages (incoming, outgoing, deferred, error, hold)"},
	{"queue", "show", cli_queue_show, "ID [--json]",
		"envelope, delivery state and headers of a spooled message"},
	{"queue", "delete", cli_queue_delete, "ID", "remove a message from the spool"},
	{"queue", "hold", cli_queue_hold, "ID", "put a message on hold"},
	{"queue", "release", cli_queue_release, "ID",
		"release a held message to where it came from"},
	{"queue", "requeue", cli_queue_requeue, "ID",
		"retry a deferred, error or held message now"},
};
CLI_REGISTER(cli_queue_commands)
