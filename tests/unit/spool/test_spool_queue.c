/* test_spool_queue.c - queue operations (F-FLOW-3): move, delete, find,
 * list, delivery state save/merge, hold/release/requeue, start-up recovery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool_testutil.h"

/* put - a committed message in q with kind/parent; ID into id. */
static void put(struct tu_fix *f, enum spool_queue q, enum spool_kind kind,
	const char *parent, char *id)
{
	struct spool_env env;
	struct sg_error err;

	tu_env(&env, "a@example.org", 3);
	env.kind = kind;
	if (parent != NULL)
		env.parent_id = sg_xstrdup(parent);
	if (tu_write_msg(f->sp, &env, "Subject: t\r\n\r\nx\r\n", q, id, &err) < 0)
		fail_msg("commit: %s", err.msg);
	spool_env_free_fields(&env);
}

static void put_msg(struct tu_fix *f, enum spool_queue q, char *id)
{
	put(f, q, SPOOL_KIND_MESSAGE, NULL, id);
}

/* where - the queue holding id (fails the test when absent). */
static enum spool_queue where(struct tu_fix *f, const char *id)
{
	enum spool_queue q = SPOOL_Q__COUNT;
	struct sg_error err;

	if (spool_find(f->sp, id, &q, &err) != 1)
		fail_msg("%s not found", id);
	return q;
}

static void test_queue_names(void **state)
{
	unsigned i;
	enum spool_queue q;

	(void)state;
	for (i = 0; i < SPOOL_Q__COUNT; i++) {
		assert_int_equal(spool_queue_from_name(spool_queue_name((enum spool_queue)i), &q),
			0);
		assert_int_equal(q, i);
	}
	assert_string_equal(spool_queue_name(SPOOL_Q_DEFERRED), "deferred");
	assert_int_equal(spool_queue_from_name("quarantine", &q), -1);
	assert_int_equal(spool_queue_from_name(NULL, &q), -1);
	assert_string_equal(spool_queue_name((enum spool_queue)42), "?");
	assert_string_equal(spool_kind_name(SPOOL_KIND_BOUNCE), "bounce");
	assert_string_equal(spool_rcpt_status_name(SPOOL_RCPT_DELIVERED), "delivered");
}

static void test_open_creates_layout(void **state)
{
	struct tu_fix *f = *state;
	static const char *const dirs[] = {"incoming", "outgoing", "deferred", "error", "hold",
		"tmp", "state", "batch"};
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		assert_int_equal(tu_count(f->spooldir, dirs[i]), 0);
	assert_string_equal(spool_dir(f->sp), f->spooldir);
}

static void test_move(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], path[4096], other[4096];
	struct sg_error err;
	struct spool_msg *m;

	put_msg(f, SPOOL_Q_INCOMING, id);
	assert_int_equal(spool_move(f->sp, id, SPOOL_Q_INCOMING, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(where(f, id), SPOOL_Q_OUTGOING);
	assert_false(tu_exists(f->spooldir, "incoming", id));
	m = spool_msg_open(f->sp, SPOOL_Q_OUTGOING, id, &err);
	assert_non_null(m);
	spool_msg_close(&m);
	/* gone from the source */
	assert_int_equal(spool_move(f->sp, id, SPOOL_Q_INCOMING, SPOOL_Q_DEFERRED, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	/* same queue */
	assert_int_equal(spool_move(f->sp, id, SPOOL_Q_OUTGOING, SPOOL_Q_OUTGOING, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	/* never replaces a file of the same name in the target */
	tu_path(path, sizeof(path), f->spooldir, "outgoing", id);
	tu_path(other, sizeof(other), f->spooldir, "deferred", id);
	assert_int_equal(link(path, other), 0);
	assert_int_equal(spool_move(f->sp, id, SPOOL_Q_OUTGOING, SPOOL_Q_DEFERRED, &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	assert_true(tu_exists(f->spooldir, "outgoing", id));
	/* bad arguments */
	assert_int_equal(spool_move(f->sp, "nope", SPOOL_Q_OUTGOING, SPOOL_Q_HOLD, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(spool_move(f->sp, id, SPOOL_Q_OUTGOING, (enum spool_queue)7, &err),
		-1);
	assert_int_equal(err.code, SG_E_INVAL);
}

/* A move fails cleanly at each of its I/O steps (rename, two dir fsyncs). */
static void test_move_io_errors(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct sg_error err;
	unsigned n;

	put_msg(f, SPOOL_Q_OUTGOING, id);
	spool_test_fail_after(1, ENOSPC);
	assert_int_equal(spool_move(f->sp, id, SPOOL_Q_OUTGOING, SPOOL_Q_DEFERRED, &err), -1);
	assert_int_equal(err.code, SG_E_NOSPACE);
	assert_int_equal(where(f, id), SPOOL_Q_OUTGOING);
	/* past the rename, the message has moved but the caller hears of the
	 * failed fsync; it is in exactly one queue either way */
	for (n = 2; n <= 3; n++) {
		enum spool_queue from = where(f, id);
		enum spool_queue to = from == SPOOL_Q_OUTGOING ? SPOOL_Q_DEFERRED :
			SPOOL_Q_OUTGOING;

		spool_test_fail_after(n, EIO);
		assert_int_equal(spool_move(f->sp, id, from, to, &err), -1);
		assert_int_equal(err.code, SG_E_IO);
		assert_int_equal(where(f, id), to);
		assert_false(tu_exists(f->spooldir, spool_queue_name(from), id));
	}
}

static void test_delete(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct sg_error err;
	struct spool_msg *m;
	struct spool_env env;
	enum spool_queue q;

	put_msg(f, SPOOL_Q_DEFERRED, id);
	m = spool_msg_open(f->sp, SPOOL_Q_DEFERRED, id, &err);
	spool_env_copy(&env, spool_msg_env(m));
	spool_msg_close(&m);
	env.attempts = 2;
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	assert_true(tu_exists(f->spooldir, "state", id));
	assert_int_equal(spool_delete(f->sp, SPOOL_Q_DEFERRED, id, &err), 0);
	assert_false(tu_exists(f->spooldir, "deferred", id));
	assert_false(tu_exists(f->spooldir, "state", id));
	assert_int_equal(spool_find(f->sp, id, &q, &err), 0);
	assert_int_equal(spool_delete(f->sp, SPOOL_Q_DEFERRED, id, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(spool_delete(f->sp, SPOOL_Q_DEFERRED, "../state/x", &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	spool_env_free_fields(&env);
}

static void test_find(void **state)
{
	struct tu_fix *f = *state;
	char ids[SPOOL_Q__COUNT][SG_MAIL_ID_LEN + 1];
	char absent[SG_MAIL_ID_LEN + 1];
	struct sg_error err;
	enum spool_queue q;
	unsigned i;

	for (i = 0; i < SPOOL_Q__COUNT; i++) {
		put_msg(f, (enum spool_queue)i, ids[i]);
		assert_int_equal(spool_find(f->sp, ids[i], &q, &err), 1);
		assert_int_equal(q, i);
	}
	sg_mail_id_new(absent);
	assert_int_equal(spool_find(f->sp, absent, &q, &err), 0);
	assert_int_equal(spool_find(f->sp, "bad/../id", &q, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

struct collect {
	char ids[64][SG_MAIL_ID_LEN + 1];
	unsigned n;
	unsigned stop_after; /* 0: never */
};

static int collect_cb(const char *id, void *arg)
{
	struct collect *c = arg;

	if (c->n < 64)
		sg_strlcpy(c->ids[c->n], id, sizeof(c->ids[0]));
	c->n++;
	return c->stop_after != 0 && c->n >= c->stop_after;
}

static bool has_id(const struct collect *c, const char *id)
{
	unsigned i;

	for (i = 0; i < c->n && i < 64; i++)
		if (strcmp(c->ids[i], id) == 0)
			return true;
	return false;
}

static void test_list(void **state)
{
	struct tu_fix *f = *state;
	char in[5][SG_MAIL_ID_LEN + 1], out[2][SG_MAIL_ID_LEN + 1], path[4096];
	struct collect c;
	struct sg_error err;
	unsigned i;

	for (i = 0; i < 5; i++)
		put_msg(f, SPOOL_Q_INCOMING, in[i]);
	for (i = 0; i < 2; i++)
		put_msg(f, SPOOL_Q_OUTGOING, out[i]);
	/* names that are not mail IDs are not messages */
	tu_write_file(tu_path(path, sizeof(path), f->spooldir, "incoming", "junk"), "x", 1);
	tu_write_file(tu_path(path, sizeof(path), f->spooldir, "incoming",
		"0123456789abcdef"), "x", 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_list(f->sp, SPOOL_Q_INCOMING, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 5);
	for (i = 0; i < 5; i++)
		assert_true(has_id(&c, in[i]));
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_list(f->sp, SPOOL_Q_OUTGOING, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_true(has_id(&c, out[0]) && has_id(&c, out[1]));
	memset(&c, 0, sizeof(c));
	assert_int_equal(spool_list(f->sp, SPOOL_Q_HOLD, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 0);
	/* the callback stops the listing */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(spool_list(f->sp, SPOOL_Q_INCOMING, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(spool_list(f->sp, (enum spool_queue)9, collect_cb, &c, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

/* Delivery state: saved durably, merged by every reader, follows moves. */
static void test_state_save_merge(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	char longreply[SPOOL_MAX_FIELD + 50];
	struct sg_error err;
	struct spool_msg *m;
	struct spool_env env, got;

	put_msg(f, SPOOL_Q_OUTGOING, id);
	m = spool_msg_open(f->sp, SPOOL_Q_OUTGOING, id, &err);
	assert_non_null(m);
	spool_env_copy(&env, spool_msg_env(m));
	spool_msg_close(&m);
	memset(longreply, 'r', sizeof(longreply) - 1);
	longreply[sizeof(longreply) - 1] = '\0';
	env.attempts = 3;
	env.next_attempt = 1800000000;
	env.last_error = sg_xstrdup("451 4.3.0 try later");
	env.rcpts[1].status = SPOOL_RCPT_DELIVERED;
	env.rcpts[1].last_reply = sg_xstrdup("250 2.0.0 ok");
	env.rcpts[2].status = SPOOL_RCPT_FAILED;
	env.rcpts[2].last_reply = sg_xstrdup(longreply);
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	assert_int_equal(spool_move(f->sp, id, SPOOL_Q_OUTGOING, SPOOL_Q_DEFERRED, &err), 0);

	m = spool_msg_open(f->sp, SPOOL_Q_DEFERRED, id, &err);
	assert_non_null(m);
	assert_int_equal(spool_msg_env(m)->attempts, 3);
	assert_int_equal(spool_msg_env(m)->rcpts[1].status, SPOOL_RCPT_DELIVERED);
	spool_msg_close(&m);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_DEFERRED, id, &got, NULL, &err), 0);
	assert_int_equal(got.attempts, 3);
	assert_int_equal(got.next_attempt, 1800000000);
	assert_string_equal(got.last_error, "451 4.3.0 try later");
	assert_int_equal(got.rcpts[0].status, SPOOL_RCPT_PENDING);
	assert_null(got.rcpts[0].last_reply);
	assert_string_equal(got.rcpts[1].last_reply, "250 2.0.0 ok");
	assert_int_equal(got.rcpts[2].status, SPOOL_RCPT_FAILED);
	/* replies longer than a field are cut, not refused */
	assert_int_equal(strlen(got.rcpts[2].last_reply), SPOOL_MAX_FIELD);
	spool_env_free_fields(&got);

	/* a second save replaces the first */
	env.attempts = 4;
	free(env.last_error);
	env.last_error = NULL;
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_DEFERRED, id, &got, NULL, &err), 0);
	assert_int_equal(got.attempts, 4);
	assert_null(got.last_error);
	spool_env_free_fields(&got);

	/* disk full while saving: error reported, old state intact */
	env.attempts = 5;
	spool_test_fail_after(1, ENOSPC);
	assert_int_equal(spool_state_save(f->sp, &env, &err), -1);
	assert_int_equal(err.code, SG_E_NOSPACE);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_DEFERRED, id, &got, NULL, &err), 0);
	assert_int_equal(got.attempts, 4);
	spool_env_free_fields(&got);
	spool_env_free_fields(&env);
}

/* A damaged state file does not make the message unreadable: the reader
 * starts from a fresh state (a duplicate at worst, never a loss). */
static void test_state_damaged_ignored(void **state)
{
	struct tu_fix *f = *state;
	static const struct {
		const char *data;
		size_t len;
	} bad[] = {
		{"garbage", 7},
		{"SGSTATE\x01", 8},               /* no id record */
		{"SGSTATE\x01N\0\0\0\x09", 13}, /* record past the end */
	};
	char id[SG_MAIL_ID_LEN + 1], path[4096];
	struct sg_error err;
	struct spool_env got;
	size_t i;

	put_msg(f, SPOOL_Q_DEFERRED, id);
	tu_path(path, sizeof(path), f->spooldir, "state", id);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write_file(path, bad[i].data, bad[i].len);
		assert_int_equal(spool_env_read(f->sp, SPOOL_Q_DEFERRED, id, &got, NULL, &err),
			0);
		assert_int_equal(got.attempts, 0);
		assert_int_equal(got.rcpts[0].status, SPOOL_RCPT_PENDING);
		spool_env_free_fields(&got);
	}
	/* and requeue still works on it */
	assert_int_equal(spool_requeue(f->sp, id, NULL, &err), 0);
	assert_int_equal(where(f, id), SPOOL_Q_OUTGOING);
}

/* the queue a held message returns to, by origin (spool.h spool_release) */
static void test_hold_release(void **state)
{
	struct tu_fix *f = *state;
	static const struct {
		enum spool_queue from, back;
	} cases[] = {
		{SPOOL_Q_INCOMING, SPOOL_Q_INCOMING},
		{SPOOL_Q_OUTGOING, SPOOL_Q_OUTGOING},
		{SPOOL_Q_DEFERRED, SPOOL_Q_OUTGOING},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[SG_MAIL_ID_LEN + 1];
		struct sg_error err;
		struct spool_env env;
		enum spool_queue to = SPOOL_Q__COUNT;

		put_msg(f, cases[i].from, id);
		assert_int_equal(spool_env_read(f->sp, cases[i].from, id, &env, NULL, &err), 0);
		env.attempts = 2;
		env.next_attempt = 1900000000;
		assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
		spool_env_free_fields(&env);

		assert_int_equal(spool_hold(f->sp, id, &err), 0);
		assert_int_equal(where(f, id), SPOOL_Q_HOLD);
		assert_int_equal(spool_hold(f->sp, id, &err), -1);
		assert_int_equal(err.code, SG_E_INVAL);
		/* a delivery state save while held keeps the origin */
		assert_int_equal(spool_env_read(f->sp, SPOOL_Q_HOLD, id, &env, NULL, &err), 0);
		assert_int_equal(env.attempts, 2);
		assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
		spool_env_free_fields(&env);

		assert_int_equal(spool_release(f->sp, id, &to, &err), 0);
		if (to != cases[i].back)
			fail_msg("held from %s: released to %s want %s",
				spool_queue_name(cases[i].from), spool_queue_name(to),
				spool_queue_name(cases[i].back));
		assert_int_equal(where(f, id), cases[i].back);
		assert_int_equal(spool_env_read(f->sp, to, id, &env, NULL, &err), 0);
		assert_int_equal(env.attempts, 2);        /* history kept */
		assert_int_equal(env.next_attempt, 0);    /* due now */
		spool_env_free_fields(&env);
		assert_int_equal(spool_release(f->sp, id, NULL, &err), -1);
		assert_int_equal(err.code, SG_E_INVAL);
	}
}

/* Held with no known origin (state lost, or placed in hold/ by hand). */
static void test_release_unknown_origin(void **state)
{
	struct tu_fix *f = *state;
	char parent[SG_MAIL_ID_LEN + 1];
	static const struct {
		enum spool_kind kind;
		bool has_parent;
		enum spool_queue want;
	} cases[] = {
		{SPOOL_KIND_MESSAGE, false, SPOOL_Q_INCOMING},
		{SPOOL_KIND_MESSAGE, true, SPOOL_Q_OUTGOING},
		{SPOOL_KIND_BOUNCE, false, SPOOL_Q_OUTGOING},
		{SPOOL_KIND_NOTIFICATION, false, SPOOL_Q_OUTGOING},
	};
	size_t i;

	sg_mail_id_new(parent);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[SG_MAIL_ID_LEN + 1];
		struct sg_error err;
		enum spool_queue to;

		put(f, SPOOL_Q_HOLD, cases[i].kind, cases[i].has_parent ? parent : NULL, id);
		assert_int_equal(spool_release(f->sp, id, &to, &err), 0);
		assert_int_equal(to, cases[i].want);
		assert_int_equal(where(f, id), cases[i].want);
	}
}

static void test_hold_refused(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], absent[SG_MAIL_ID_LEN + 1];
	struct sg_error err;

	put_msg(f, SPOOL_Q_ERROR, id);
	assert_int_equal(spool_hold(f->sp, id, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(where(f, id), SPOOL_Q_ERROR);
	sg_mail_id_new(absent);
	assert_int_equal(spool_hold(f->sp, absent, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_non_null(strstr(err.msg, "no such message"));
	assert_int_equal(spool_release(f->sp, absent, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(spool_requeue(f->sp, absent, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(spool_hold(f->sp, "x", &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

static void test_requeue(void **state)
{
	struct tu_fix *f = *state;
	char parent[SG_MAIL_ID_LEN + 1];
	static const struct {
		const char *name;
		enum spool_queue from;
		enum spool_kind kind;
		bool has_parent;
		int rc;
		enum spool_queue want; /* where it is afterwards */
	} cases[] = {
		{"deferred", SPOOL_Q_DEFERRED, SPOOL_KIND_MESSAGE, false, 0, SPOOL_Q_OUTGOING},
		{"error input", SPOOL_Q_ERROR, SPOOL_KIND_MESSAGE, false, 0, SPOOL_Q_INCOMING},
		{"error output", SPOOL_Q_ERROR, SPOOL_KIND_MESSAGE, true, 0, SPOOL_Q_OUTGOING},
		{"error bounce", SPOOL_Q_ERROR, SPOOL_KIND_BOUNCE, false, 0, SPOOL_Q_OUTGOING},
		{"hold", SPOOL_Q_HOLD, SPOOL_KIND_MESSAGE, false, 0, SPOOL_Q_INCOMING},
		{"incoming", SPOOL_Q_INCOMING, SPOOL_KIND_MESSAGE, false, -1, SPOOL_Q_INCOMING},
		{"outgoing", SPOOL_Q_OUTGOING, SPOOL_KIND_MESSAGE, false, -1, SPOOL_Q_OUTGOING},
	};
	size_t i;

	sg_mail_id_new(parent);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[SG_MAIL_ID_LEN + 1];
		struct sg_error err;
		struct spool_env env;
		enum spool_queue to = SPOOL_Q__COUNT;
		int rc;

		put(f, cases[i].from, cases[i].kind, cases[i].has_parent ? parent : NULL, id);
		assert_int_equal(spool_env_read(f->sp, cases[i].from, id, &env, NULL, &err), 0);
		env.attempts = 6;
		env.next_attempt = 1900000000;
		assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
		spool_env_free_fields(&env);
		rc = spool_requeue(f->sp, id, &to, &err);
		if (rc != cases[i].rc)
			fail_msg("%s: got rc %d want %d (%s)", cases[i].name, rc, cases[i].rc,
				rc < 0 ? err.msg : "");
		assert_int_equal(where(f, id), cases[i].want);
		if (rc < 0) {
			assert_int_equal(err.code, SG_E_INVAL);
			continue;
		}
		assert_int_equal(to, cases[i].want);
		assert_int_equal(spool_env_read(f->sp, to, id, &env, NULL, &err), 0);
		assert_int_equal(env.next_attempt, 0);
		assert_int_equal(env.attempts, 6);
		spool_env_free_fields(&env);
	}
}

/* A damaged file in error/ cannot be requeued (it would fail again). */
static void test_requeue_damaged(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], path[4096];
	struct sg_error err;

	put_msg(f, SPOOL_Q_ERROR, id);
	tu_path(path, sizeof(path), f->spooldir, "error", id);
	assert_int_equal(truncate(path, 20), 0);
	assert_int_equal(spool_requeue(f->sp, id, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_PARSE);
	assert_int_equal(where(f, id), SPOOL_Q_ERROR);
}

static void test_recover_clean(void **state)
{
	struct tu_fix *f = *state;
	struct spool_recovery r;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1];

	put_msg(f, SPOOL_Q_INCOMING, id);
	memset(&r, 0xff, sizeof(r));
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.tmp_removed, 0);
	assert_int_equal(r.batches_completed, 0);
	assert_int_equal(r.batches_damaged, 0);
	assert_int_equal(r.damaged, 0);
	assert_int_equal(r.orphan_states, 0);
	assert_int_equal(where(f, id), SPOOL_Q_INCOMING);
	assert_int_equal(spool_recover(f->sp, &err), 0);
}

/* Start-up recovery: unacknowledged tmp files and stale state temps go,
 * damaged files move to error/, orphan states go, good files stay. */
static void test_recover(void **state)
{
	struct tu_fix *f = *state;
	char good_in[SG_MAIL_ID_LEN + 1], good_def[SG_MAIL_ID_LEN + 1];
	char bad_in[SG_MAIL_ID_LEN + 1], bad_out[SG_MAIL_ID_LEN + 1];
	char held_bad[SG_MAIL_ID_LEN + 1], orphan[SG_MAIL_ID_LEN + 1];
	char path[4096], name[64];
	struct spool_recovery r;
	struct spool_env env;
	struct spool_writer *w;
	struct sg_error err;

	put_msg(f, SPOOL_Q_INCOMING, good_in);
	put_msg(f, SPOOL_Q_DEFERRED, good_def);
	put_msg(f, SPOOL_Q_INCOMING, bad_in);
	put_msg(f, SPOOL_Q_OUTGOING, bad_out);
	put_msg(f, SPOOL_Q_HOLD, held_bad);
	/* a writer interrupted by a crash: its tmp file stays behind */
	tu_env(&env, "a@example.org", 1);
	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	assert_int_equal(spool_writer_write(w, "partial", 7, &err), 0);
	/* state of the deferred message, and a state whose message is gone */
	sg_strlcpy(env.id, good_def, sizeof(env.id));
	env.attempts = 1;
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	sg_mail_id_new(orphan);
	sg_strlcpy(env.id, orphan, sizeof(env.id));
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	/* stale temp of an atomic state write, and a junk tmp file */
	snprintf(name, sizeof(name), "%s.tmp.12345", good_def);
	tu_write_file(tu_path(path, sizeof(path), f->spooldir, "state", name), "x", 1);
	tu_write_file(tu_path(path, sizeof(path), f->spooldir, "tmp", "junk"), "x", 1);
	/* damage: truncated and trailer-less files */
	assert_int_equal(truncate(tu_path(path, sizeof(path), f->spooldir, "incoming",
		bad_in), 30), 0);
	assert_int_equal(truncate(tu_path(path, sizeof(path), f->spooldir, "outgoing",
		bad_out), 60), 0);
	assert_int_equal(truncate(tu_path(path, sizeof(path), f->spooldir, "hold",
		held_bad), 60), 0);

	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.tmp_removed, 3);
	assert_int_equal(r.damaged, 2);
	assert_int_equal(r.orphan_states, 1);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
	assert_int_equal(where(f, good_in), SPOOL_Q_INCOMING);
	assert_int_equal(where(f, good_def), SPOOL_Q_DEFERRED);
	assert_int_equal(where(f, bad_in), SPOOL_Q_ERROR);
	assert_int_equal(where(f, bad_out), SPOOL_Q_ERROR);
	assert_int_equal(where(f, held_bad), SPOOL_Q_HOLD); /* the admin's business */
	assert_true(tu_exists(f->spooldir, "state", good_def));
	assert_false(tu_exists(f->spooldir, "state", orphan));
	assert_false(tu_exists(f->spooldir, "state", name));
	assert_int_equal(tu_count(f->spooldir, "state"), 1);
	/* the interrupted writer's file is gone; aborting it now is harmless */
	spool_writer_abort(&w);
	/* idempotent */
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.tmp_removed + r.damaged + r.orphan_states, 0);
	spool_env_free_fields(&env);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_names),
		T(test_open_creates_layout),
		T(test_move),
		T(test_move_io_errors),
		T(test_delete),
		T(test_find),
		T(test_list),
		T(test_state_save_merge),
		T(test_state_damaged_ignored),
		T(test_hold_release),
		T(test_release_unknown_origin),
		T(test_hold_refused),
		T(test_requeue),
		T(test_requeue_damaged),
		T(test_recover_clean),
		T(test_recover),
	};
#undef T

	sg_log_init("test_spool_queue", SG_LOGDEST_STDERR, SG_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
