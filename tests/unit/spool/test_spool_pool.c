/* test_spool_pool.c - recycled message files (spool_pool.c): a finished
 * message's file goes to free/ cut to the format's 8-byte magic (no message
 * text) and is reused for the next message
 * (same inode, no allocation), only in a spool that ran recovery; recovery
 * empties free/; a recycled file holds exactly the new message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool_testutil.h"

static ino_t inode_of(struct tu_fix *f, const char *sub, const char *id)
{
	char path[4096];
	struct stat st;

	tu_path(path, sizeof(path), f->spooldir, sub, id);
	if (stat(path, &st) < 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	return st.st_ino;
}

static void put(struct tu_fix *f, const char *body, enum spool_queue q, char *id)
{
	struct spool_env env;
	struct sg_error err;

	tu_env(&env, "a@example.org", 1);
	if (tu_write_msg(f->sp, &env, body, q, id, &err) < 0)
		fail_msg("write: %s", err.msg);
	spool_env_free_fields(&env);
}

/* body_is - the message id in q opens (trailer and SHA-256 checked) with body. */
static void body_is(struct tu_fix *f, enum spool_queue q, const char *id, const char *want)
{
	struct sg_error err;
	struct spool_msg *m = spool_msg_open(f->sp, q, id, &err);
	char *body;

	if (m == NULL)
		fail_msg("open %s: %s", id, err.msg);
	body = tu_read_body(m);
	assert_string_equal(body, want);
	free(body);
	spool_msg_close(&m);
}

/* done - spool_done of q's message id with its envelope as read (as the
 * delivery does); an absent message is passed with an envelope holding
 * only its ID. */
static int done(struct tu_fix *f, enum spool_queue q, const char *id, struct sg_error *err)
{
	struct spool_env env;
	int rc;

	if (spool_env_read(f->sp, q, id, &env, NULL, NULL) < 0) {
		memset(&env, 0, sizeof(env));
		snprintf(env.id, sizeof(env.id), "%s", id);
	}
	rc = spool_done(f->sp, q, &env, err);
	spool_env_free_fields(&env);
	return rc;
}

/* Without recovery (the CLI, tests): a delivered message is unlinked. */
static void test_no_pool_without_recovery(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct sg_error err;

	put(f, "one\r\n", SPOOL_Q_OUTGOING, id);
	assert_int_equal(done(f, SPOOL_Q_OUTGOING, id, &err), 0);
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 0);
	assert_int_equal(tu_count(f->spooldir, "free"), 0);
}

/* After recovery: the file of a delivered message is kept in free/, cut to
 * the 8-byte magic, and the next message is written into it (same inode),
 * fully replaced: a long old message and a short new one. */
static void test_delivered_file_reused(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], id2[SG_MAIL_ID_LEN + 1], path[4096];
	char *big = sg_xmalloc(200000);
	struct sg_error err;
	struct stat st;
	ino_t ino;
	DIR *d;
	struct dirent *de;

	memset(big, 'x', 199997);
	memcpy(big + 199997, "\r\n", 3);
	assert_int_equal(spool_recover(f->sp, &err), 0);
	put(f, big, SPOOL_Q_OUTGOING, id);
	ino = inode_of(f, "outgoing", id);
	assert_int_equal(done(f, SPOOL_Q_OUTGOING, id, &err), 0);
	assert_false(tu_exists(f->spooldir, "outgoing", id));
	assert_int_equal(tu_count(f->spooldir, "free"), 1);
	/* cut to the magic: no message text stays behind */
	d = opendir(tu_path(path, sizeof(path), f->spooldir, "free", ""));
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_int_equal(stat(tu_path(path, sizeof(path), f->spooldir, "free",
			de->d_name), &st), 0);
		assert_int_equal(st.st_size, 8);
		assert_int_equal(st.st_ino, ino);
		{
			size_t len = 0;
			unsigned char *raw = tu_read_file(path, &len);

			assert_int_equal(len, 8);
			assert_memory_equal(raw, "SGSPOOL\x01", 8);
			free(raw);
		}
	}
	closedir(d);
	put(f, "short\r\n", SPOOL_Q_INCOMING, id2);
	assert_int_equal(inode_of(f, "incoming", id2), ino);
	assert_int_equal(tu_count(f->spooldir, "free"), 0);
	body_is(f, SPOOL_Q_INCOMING, id2, "short\r\n");
	/* the pool is empty again: the next file is a new one */
	put(f, "third\r\n", SPOOL_Q_INCOMING, id);
	assert_true(inode_of(f, "incoming", id) != ino);
	free(big);
}

/* The input a batch consumes is recycled too: it waits in done/ until its
 * output is delivered, then both files go to the pool. */
static void test_batch_input_reused(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], id2[SG_MAIL_ID_LEN + 1], out[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_writer *w;
	struct spool_env env;
	struct sg_error err;
	ino_t ino;

	assert_int_equal(spool_recover(f->sp, &err), 0);
	put(f, "input\r\n", SPOOL_Q_INCOMING, id);
	ino = inode_of(f, "incoming", id);
	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	tu_env(&env, "a@example.org", 1);
	env.parent_id = sg_xstrdup(id);
	w = spool_batch_writer(b, &env, 0, &err);
	assert_non_null(w);
	snprintf(out, sizeof(out), "%s", spool_writer_id(w));
	assert_int_equal(spool_writer_write(w, "output\r\n", 8, &err), 0);
	assert_int_equal(spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(spool_batch_commit(&b, &err), 0);
	assert_true(tu_exists(f->spooldir, "done", id));
	assert_int_equal(tu_count(f->spooldir, "free"), 0);
	assert_int_equal(done(f, SPOOL_Q_OUTGOING, out, &err), 0);
	assert_false(tu_exists(f->spooldir, "done", id));
	assert_int_equal(tu_count(f->spooldir, "free"), 2);
	/* the input went in first, so it comes out second */
	put(f, "next\r\n", SPOOL_Q_INCOMING, id2);
	put(f, "next 2\r\n", SPOOL_Q_INCOMING, out);
	assert_int_equal(inode_of(f, "incoming", out), ino);
	assert_int_equal(tu_count(f->spooldir, "free"), 0);
	body_is(f, SPOOL_Q_INCOMING, id2, "next\r\n");
	body_is(f, SPOOL_Q_INCOMING, out, "next 2\r\n");
	spool_env_free_fields(&env);
}

/* Recovery empties free/ (a crash may leave a file there before it was
 * truncated) and counts it; a pooled name that disappeared (another
 * process, the admin) is skipped and a new file made. */
static void test_recovery_and_vanished(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], path[4096];
	struct spool_recovery r;
	struct sg_error err;

	tu_write_file(tu_path(path, sizeof(path), f->spooldir, "free", "0000000000ABCDEF"),
		"old message text", 16);
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.free_removed, 1);
	assert_int_equal(r.tmp_removed, 0);
	assert_int_equal(tu_count(f->spooldir, "free"), 0);
	put(f, "a\r\n", SPOOL_Q_OUTGOING, id);
	assert_int_equal(done(f, SPOOL_Q_OUTGOING, id, &err), 0);
	assert_int_equal(tu_count(f->spooldir, "free"), 1);
	tu_rm_rf(tu_path(path, sizeof(path), f->spooldir, "free", ""));
	assert_int_equal(mkdir(path, 0700), 0);
	put(f, "b\r\n", SPOOL_Q_INCOMING, id);
	body_is(f, SPOOL_Q_INCOMING, id, "b\r\n");
	/* spool_done of a message that is gone: not found, nothing pooled */
	assert_int_equal(done(f, SPOOL_Q_OUTGOING, id, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(tu_count(f->spooldir, "free"), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_no_pool_without_recovery),
		T(test_delivered_file_reused),
		T(test_batch_input_reused),
		T(test_recovery_and_vanished),
	};
#undef T

	sg_log_init("test_spool_pool", SG_LOGDEST_STDERR, SG_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
