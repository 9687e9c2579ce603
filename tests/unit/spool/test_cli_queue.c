/* test_cli_queue.c - `sealgate queue ...` (F-FLOW-3, SPEC §13) run as the
 * built binary ($SG_BUILD/sealgate) against a spool this test prepares with
 * the spool API: outputs (text and --json), effects and exit statuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "spool_testutil.h"

extern char **environ;

struct cq {
	char *dir;       /* temp dir */
	char *conf;      /* dir/sealgate.conf, data_dir = dir/data */
	char *spooldir;  /* dir/data/spool */
	char *bin;
	struct spool *sp;
	char a[SG_MAIL_ID_LEN + 1]; /* incoming, 2 recipients */
	char b[SG_MAIL_ID_LEN + 1]; /* deferred, with delivery state */
	char c[SG_MAIL_ID_LEN + 1]; /* error, damaged */
	char d[SG_MAIL_ID_LEN + 1]; /* hold */
	char *out, *err;            /* of the last run */
};

static const char body_a[] = "Subject: hello\r\nFrom: alice@example.org\r\n\r\nbody\r\n";

static void put(struct cq *t, enum spool_queue q, const char *sender, const char *body,
	char *id)
{
	struct spool_env env;
	struct sg_error err;

	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup(sender);
	env.arrival = 1700000000;
	spool_env_add_rcpt(&env, "bob@example.net", NULL, SPOOL_NOTIFY_FAILURE);
	spool_env_add_rcpt(&env, "carol@example.net", NULL, 0);
	if (tu_write_msg(t->sp, &env, body, q, id, &err) < 0)
		fail_msg("commit: %s", err.msg);
	spool_env_free_fields(&env);
}

static int cq_setup(void **state)
{
	struct cq *t = sg_xcalloc(1, sizeof(*t));
	const char *build = getenv("SG_BUILD");
	struct spool_env env;
	struct sg_error err;
	char path[4096], *conf;

	t->dir = tu_tmpdir();
	t->conf = sg_xasprintf("%s/sealgate.conf", t->dir);
	t->spooldir = sg_xasprintf("%s/data/spool", t->dir);
	t->bin = sg_xasprintf("%s/sealgate", build != NULL ? build : ".");
	conf = sg_xasprintf("[general]\ndata_dir = %s/data\n", t->dir);
	tu_write_file(t->conf, conf, strlen(conf));
	free(conf);
	t->sp = spool_open(t->spooldir, &err);
	if (t->sp == NULL)
		return -1;
	put(t, SPOOL_Q_INCOMING, "alice@example.org", body_a, t->a);
	put(t, SPOOL_Q_DEFERRED, "dave@example.org", "Subject: later\r\n\r\nx\r\n", t->b);
	put(t, SPOOL_Q_ERROR, "eve@example.org", "Subject: broken\r\n\r\nx\r\n", t->c);
	put(t, SPOOL_Q_HOLD, "", "Subject: held\r\n\r\nx\r\n", t->d);
	if (spool_env_read(t->sp, SPOOL_Q_DEFERRED, t->b, &env, NULL, &err) < 0)
		return -1;
	env.attempts = 2;
	env.next_attempt = 1900000000;
	env.last_error = sg_xstrdup("451 4.4.1 no answer");
	env.rcpts[0].status = SPOOL_RCPT_DELIVERED;
	env.rcpts[0].last_reply = sg_xstrdup("250 2.0.0 ok");
	if (spool_state_save(t->sp, &env, &err) < 0)
		return -1;
	spool_env_free_fields(&env);
	if (truncate(tu_path(path, sizeof(path), t->spooldir, "error", t->c), 40) < 0)
		return -1;
	*state = t;
	return 0;
}

static int cq_teardown(void **state)
{
	struct cq *t = *state;

	spool_close(&t->sp);
	tu_rm_rf(t->dir);
	free(t->dir);
	free(t->conf);
	free(t->spooldir);
	free(t->bin);
	free(t->out);
	free(t->err);
	free(t);
	return 0;
}

/* run - sealgate -c conf args...; stdout/stderr into t->out/t->err; exit
 * status returned (-1 if it did not exit normally). */
static int run(struct cq *t, const char *conf, ...)
{
	char *argv[16];
	char *outp = sg_xasprintf("%s/stdout", t->dir);
	char *errp = sg_xasprintf("%s/stderr", t->dir);
	posix_spawn_file_actions_t fa;
	va_list ap;
	size_t len;
	pid_t pid;
	int n = 0, status = 0;

	argv[n++] = t->bin;
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)(conf != NULL ? conf : t->conf);
	va_start(ap, conf);
	while (n < 15 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (posix_spawn(&pid, t->bin, &fa, NULL, argv, environ) != 0)
		fail_msg("cannot run %s (build the sealgate target)", t->bin);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	free(t->out);
	free(t->err);
	t->out = (char *)tu_read_file(outp, &len);
	t->err = (char *)tu_read_file(errp, &len);
	assert_non_null(t->out);
	assert_non_null(t->err);
	free(outp);
	free(errp);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static json_t *parse_out(struct cq *t)
{
	json_error_t je;
	json_t *j = json_loads(t->out, 0, &je);

	if (j == NULL)
		fail_msg("stdout is not JSON (%s): %s", je.text, t->out);
	return j;
}

/* entry - the element of a listing with id. */
static json_t *entry(json_t *arr, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(arr, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0)
			return e;
	}
	fail_msg("%s not in the listing", id);
	return NULL;
}

static const char *jget(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_string(v))
		fail_msg("field %s is not a string", k);
	return json_string_value(v);
}

static void where_is(struct cq *t, const char *id, enum spool_queue want)
{
	struct sg_error err;
	enum spool_queue q;

	assert_int_equal(spool_find(t->sp, id, &q, &err), 1);
	if (q != want)
		fail_msg("%s is in %s want %s", id, spool_queue_name(q), spool_queue_name(want));
}

static void test_list_json(void **state)
{
	struct cq *t = *state;
	json_t *arr, *e, *to;
	char when[40];

	assert_int_equal(run(t, NULL, "queue", "list", "--json", NULL), 0);
	arr = parse_out(t);
	assert_true(json_is_array(arr));
	assert_int_equal(json_array_size(arr), 4);

	e = entry(arr, t->a);
	assert_string_equal(jget(e, "queue"), "incoming");
	assert_string_equal(jget(e, "from"), "alice@example.org");
	to = json_object_get(e, "to");
	assert_int_equal(json_array_size(to), 2);
	assert_string_equal(json_string_value(json_array_get(to, 0)), "bob@example.net");
	assert_string_equal(json_string_value(json_array_get(to, 1)), "carol@example.net");
	assert_int_equal(json_integer_value(json_object_get(e, "size")), strlen(body_a));
	assert_string_equal(jget(e, "arrival"), "2023-11-14T22:13:20Z");
	assert_int_equal(json_integer_value(json_object_get(e, "attempts")), 0);
	assert_true(json_is_null(json_object_get(e, "next_attempt")));

	e = entry(arr, t->b);
	assert_string_equal(jget(e, "queue"), "deferred");
	assert_int_equal(json_integer_value(json_object_get(e, "attempts")), 2);
	assert_string_equal(jget(e, "next_attempt"),
		sg_time_iso8601(1900000000, when, sizeof(when)));
	assert_string_equal(jget(e, "last_error"), "451 4.4.1 no answer");

	e = entry(arr, t->c);
	assert_string_equal(jget(e, "queue"), "error");
	assert_true(json_is_true(json_object_get(e, "damaged")));
	assert_non_null(strstr(jget(e, "error"), "damaged"));

	e = entry(arr, t->d);
	assert_string_equal(jget(e, "queue"), "hold");
	assert_string_equal(jget(e, "from"), "");
	json_decref(arr);

	/* one queue only */
	assert_int_equal(run(t, NULL, "queue", "list", "deferred", "--json", NULL), 0);
	arr = parse_out(t);
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(jget(json_array_get(arr, 0), "id"), t->b);
	json_decref(arr);
}

static void test_list_text(void **state)
{
	struct cq *t = *state;

	assert_int_equal(run(t, NULL, "queue", "list", NULL), 0);
	assert_non_null(strstr(t->out, t->a));
	assert_non_null(strstr(t->out, "<alice@example.org> -> <bob@example.net>, "
		"<carol@example.net>"));
	assert_non_null(strstr(t->out, "(451 4.4.1 no answer)"));
	assert_non_null(strstr(t->out, "damaged"));
	assert_non_null(strstr(t->out, "4 messages"));
	assert_string_equal(t->err, "");
	assert_int_equal(run(t, NULL, "queue", "list", "hold", NULL), 0);
	assert_non_null(strstr(t->out, t->d));
	assert_null(strstr(t->out, t->a));
	assert_non_null(strstr(t->out, "1 message\n"));
}

static void test_list_errors(void **state)
{
	struct cq *t = *state;
	char *conf = sg_xasprintf("%s/empty.conf", t->dir);
	char *text = sg_xasprintf("[general]\ndata_dir = %s/nothing-yet\n", t->dir);

	assert_int_equal(run(t, NULL, "queue", "list", "quarantined", NULL), 1);
	assert_non_null(strstr(t->err, "unknown queue 'quarantined'"));
	assert_string_equal(t->out, "");
	assert_int_equal(run(t, NULL, "queue", "list", "incoming", "extra", NULL), 2);
	/* no spool yet: an empty listing, and nothing is created */
	tu_write_file(conf, text, strlen(text));
	assert_int_equal(run(t, conf, "queue", "list", "--json", NULL), 0);
	assert_string_equal(t->out, "[]\n");
	assert_int_equal(tu_count(t->dir, "nothing-yet"), -1);
	free(conf);
	free(text);
}

static void test_show(void **state)
{
	struct cq *t = *state;
	json_t *o, *r;

	assert_int_equal(run(t, NULL, "queue", "show", t->b, "--json", NULL), 0);
	o = parse_out(t);
	assert_string_equal(jget(o, "id"), t->b);
	assert_string_equal(jget(o, "queue"), "deferred");
	assert_string_equal(jget(o, "from"), "dave@example.org");
	assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 2);
	assert_non_null(strstr(jget(o, "headers"), "Subject: later"));
	r = json_object_get(o, "recipients");
	assert_int_equal(json_array_size(r), 2);
	assert_string_equal(jget(json_array_get(r, 0), "address"), "bob@example.net");
	assert_string_equal(jget(json_array_get(r, 0), "status"), "delivered");
	assert_string_equal(jget(json_array_get(r, 0), "last_reply"), "250 2.0.0 ok");
	assert_string_equal(json_string_value(json_array_get(json_object_get(
		json_array_get(r, 0), "notify"), 0)), "failure");
	assert_string_equal(jget(json_array_get(r, 1), "status"), "pending");
	json_decref(o);

	assert_int_equal(run(t, NULL, "queue", "show", t->a, NULL), 0);
	assert_non_null(strstr(t->out, "queue:        incoming"));
	assert_non_null(strstr(t->out, "<carol@example.net> pending"));
	assert_non_null(strstr(t->out, "Subject: hello\nFrom: alice@example.org\n"));
	assert_null(strstr(t->out, "body"));
}

static void test_show_errors(void **state)
{
	struct cq *t = *state;
	char absent[SG_MAIL_ID_LEN + 1];

	sg_mail_id_new(absent);
	assert_int_equal(run(t, NULL, "queue", "show", absent, NULL), 1);
	assert_non_null(strstr(t->err, "no such message"));
	assert_non_null(strstr(t->err, absent));
	assert_string_equal(t->out, "");
	assert_int_equal(run(t, NULL, "queue", "show", "../../etc/passwd", NULL), 1);
	assert_non_null(strstr(t->err, "invalid mail ID"));
	assert_int_equal(run(t, NULL, "queue", "show", t->c, NULL), 1);
	assert_non_null(strstr(t->err, "damaged spool file in error"));
	assert_int_equal(run(t, NULL, "queue", "show", NULL), 2);
	assert_non_null(strstr(t->err, "usage: sealgate queue show"));
}

static void test_hold_release_requeue(void **state)
{
	struct cq *t = *state;
	json_t *o;

	assert_int_equal(run(t, NULL, "queue", "hold", t->a, "--json", NULL), 0);
	o = parse_out(t);
	assert_string_equal(jget(o, "action"), "held");
	assert_string_equal(jget(o, "from"), "incoming");
	assert_string_equal(jget(o, "queue"), "hold");
	json_decref(o);
	where_is(t, t->a, SPOOL_Q_HOLD);
	assert_int_equal(run(t, NULL, "queue", "hold", t->a, NULL), 1);
	assert_non_null(strstr(t->err, "hold"));

	assert_int_equal(run(t, NULL, "queue", "release", t->a, NULL), 0);
	assert_non_null(strstr(t->out, "released (hold -> incoming)"));
	where_is(t, t->a, SPOOL_Q_INCOMING);
	assert_int_equal(run(t, NULL, "queue", "release", t->a, NULL), 1);
	assert_non_null(strstr(t->err, "not on hold"));

	/* deferred: delivery now, history kept */
	assert_int_equal(run(t, NULL, "queue", "requeue", t->b, NULL), 0);
	assert_non_null(strstr(t->out, "requeued (deferred -> outgoing)"));
	where_is(t, t->b, SPOOL_Q_OUTGOING);
	assert_int_equal(run(t, NULL, "queue", "show", t->b, "--json", NULL), 0);
	o = parse_out(t);
	assert_true(json_is_null(json_object_get(o, "next_attempt")));
	assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 2);
	json_decref(o);
	assert_int_equal(run(t, NULL, "queue", "requeue", t->a, NULL), 1);
	assert_non_null(strstr(t->err, "already queued"));
	/* a damaged file stays in error/ */
	assert_int_equal(run(t, NULL, "queue", "requeue", t->c, NULL), 1);
	where_is(t, t->c, SPOOL_Q_ERROR);
	/* hold -> requeue behaves as release (origin unknown: processed again) */
	assert_int_equal(run(t, NULL, "queue", "requeue", t->d, NULL), 0);
	where_is(t, t->d, SPOOL_Q_INCOMING);
}

static void test_delete(void **state)
{
	struct cq *t = *state;
	struct sg_error err;
	enum spool_queue q;

	assert_int_equal(run(t, NULL, "queue", "delete", t->c, NULL), 0);
	assert_non_null(strstr(t->out, "deleted (was in error)"));
	assert_int_equal(spool_find(t->sp, t->c, &q, &err), 0);
	assert_int_equal(run(t, NULL, "queue", "delete", t->c, NULL), 1);
	assert_non_null(strstr(t->err, "no such message"));
	assert_int_equal(run(t, NULL, "queue", "delete", t->b, NULL), 0);
	assert_false(tu_exists(t->spooldir, "state", t->b));
	assert_int_equal(run(t, NULL, "queue", "list", "--json", NULL), 0);
	assert_non_null(strstr(t->out, t->a));
	assert_null(strstr(t->out, t->b));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, cq_setup, cq_teardown)
	const struct CMUnitTest tests[] = {
		T(test_list_json),
		T(test_list_text),
		T(test_list_errors),
		T(test_show),
		T(test_show_errors),
		T(test_hold_release_requeue),
		T(test_delete),
	};
#undef T

	sg_log_init("test_cli_queue", SG_LOGDEST_STDERR, SG_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
