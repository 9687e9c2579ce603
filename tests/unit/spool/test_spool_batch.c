/* test_spool_batch.c - exactly-once MPA outputs (F-FLOW-1, DESIGN step 4):
 * a batch turns one input into N outputs; a crash or an I/O error at any
 * step leaves either the input (no outputs) or all outputs (no input),
 * never both, never an output twice. The same for the short forms: one
 * output (no manifest) and a pass (the input itself moves on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool_testutil.h"

#define NOUT 3

/* outputs per batch in run_batch/check_state: NOUT (manifest) or 1 */
static unsigned nout = NOUT;

static void put_input(struct tu_fix *f, char *id)
{
	struct spool_env env;
	struct sg_error err;

	tu_env(&env, "a@example.org", 2);
	if (tu_write_msg(f->sp, &env, "Subject: in\r\n\r\ninput\r\n", SPOOL_Q_INCOMING, id,
		&err) < 0)
		fail_msg("commit input: %s", err.msg);
	spool_env_free_fields(&env);
}

/* run_batch - NOUT outputs "output <i>" of input id into outgoing; the
 * result of spool_batch_commit (or -1 earlier). */
static int run_batch(struct tu_fix *f, const char *id, struct sg_error *err)
{
	struct spool_batch *b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	int i;

	if (b == NULL)
		return -1;
	for (i = 0; i < (int)nout; i++) {
		struct spool_env env;
		struct spool_writer *w;
		char body[64];

		tu_env(&env, "a@example.org", 1);
		env.parent_id = sg_xstrdup(id);
		w = spool_batch_writer(b, &env, 0, err);
		spool_env_free_fields(&env);
		if (w == NULL)
			goto fail;
		snprintf(body, sizeof(body), "output %d\r\n", i);
		if (spool_writer_write(w, body, strlen(body), err) < 0) {
			spool_writer_abort(&w);
			goto fail;
		}
		if (spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, err) < 0)
			goto fail;
	}
	return spool_batch_commit(&b, err);
fail:
	spool_batch_abort(&b);
	return -1;
}

struct outs {
	struct tu_fix *f;
	const char *input;
	unsigned seen[NOUT];
	unsigned other;
};

static int outs_cb(const char *id, void *arg)
{
	struct outs *o = arg;
	struct sg_error err;
	struct spool_msg *m = spool_msg_open(o->f->sp, SPOOL_Q_OUTGOING, id, &err);
	char *body;
	int n;

	if (m == NULL)
		fail_msg("output %s unreadable: %s", id, err.msg);
	body = tu_read_body(m);
	if (spool_msg_env(m)->parent_id == NULL ||
		strcmp(spool_msg_env(m)->parent_id, o->input) != 0 ||
		!spool_msg_env(m)->batch_output ||
		sscanf(body, "output %d", &n) != 1 || n < 0 || n >= (int)nout)
		o->other++;
	else
		o->seen[n]++;
	free(body);
	spool_msg_close(&m);
	return 0;
}

/* check_state - exactly one of: input present and no outputs, or input gone
 * and every output exactly once. Returns true if the batch is done. No
 * leftovers in tmp/ or batch/ either way. */
static bool check_state(struct tu_fix *f, const char *input, const char *when)
{
	struct outs o;
	struct sg_error err;
	bool has_input = tu_exists(f->spooldir, "incoming", input);
	unsigned i;

	memset(&o, 0, sizeof(o));
	o.f = f;
	o.input = input;
	assert_int_equal(spool_list(f->sp, SPOOL_Q_OUTGOING, outs_cb, &o, &err), 0);
	if (o.other != 0)
		fail_msg("%s: %u unexpected outputs", when, o.other);
	for (i = 0; i < nout; i++) {
		if (o.seen[i] != (has_input ? 0u : 1u))
			fail_msg("%s: output %u seen %u times, input %s", when, i, o.seen[i],
				has_input ? "present" : "gone");
	}
	if (tu_count(f->spooldir, "tmp") != 0 || tu_count(f->spooldir, "batch") != 0)
		fail_msg("%s: leftovers tmp=%d batch=%d", when, tu_count(f->spooldir, "tmp"),
			tu_count(f->spooldir, "batch"));
	if (!has_input && tu_exists(f->spooldir, "state", input))
		fail_msg("%s: state of the consumed input left behind", when);
	return !has_input;
}

static void reset_spool(struct tu_fix *f)
{
	struct sg_error err;

	spool_close(&f->sp);
	tu_rm_rf(f->spooldir);
	f->sp = spool_open(f->spooldir, &err);
	assert_non_null(f->sp);
}

static void test_batch_commit(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_env env;
	struct sg_error err;

	put_input(f, id);
	/* the input's delivery state goes with it */
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &env, NULL, &err), 0);
	env.attempts = 1;
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	spool_env_free_fields(&env);
	assert_int_equal(run_batch(f, id, &err), 0);
	assert_true(check_state(f, id, "commit"));
	assert_int_equal(tu_count(f->spooldir, "outgoing"), NOUT);
	assert_int_equal(tu_count(f->spooldir, "state"), 0);
	/* nothing pending afterwards */
	assert_int_equal(spool_batch_finish_pending(f->sp, id, &err), 0);
}

static void test_batch_no_outputs(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct sg_error err;

	put_input(f, id);
	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	assert_non_null(b);
	assert_int_equal(spool_batch_commit(&b, &err), 0);
	assert_null(b);
	assert_int_equal(tu_count(f->spooldir, "incoming"), 0);
	assert_int_equal(tu_count(f->spooldir, "batch"), 0);
}

static void test_batch_abort(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_writer *w;
	struct spool_env env;
	struct sg_error err;

	put_input(f, id);
	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	tu_env(&env, "a@example.org", 1);
	w = spool_batch_writer(b, &env, 0, &err);
	assert_non_null(w);
	assert_int_equal(spool_writer_write(w, "x", 1, &err), 0);
	assert_int_equal(spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 1);
	spool_batch_abort(&b);
	assert_null(b);
	spool_batch_abort(&b);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 0);
	assert_true(tu_exists(f->spooldir, "incoming", id));
	spool_env_free_fields(&env);
}

static void test_batch_misuse(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_writer *w;
	struct spool_env env;
	struct sg_error err;

	put_input(f, id);
	assert_null(spool_batch_new(f->sp, SPOOL_Q_INCOMING, "not-an-id"));
	assert_null(spool_batch_new(f->sp, SPOOL_Q_INCOMING, NULL));
	assert_null(spool_batch_new(f->sp, (enum spool_queue)12, id));
	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	tu_env(&env, "a@example.org", 1);
	/* a batch output committed on its own would bypass the manifest */
	w = spool_batch_writer(b, &env, 0, &err);
	assert_non_null(w);
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_OUTGOING, &err), -1);
	assert_int_equal(err.code, SG_E_INTERNAL);
	assert_null(w);
	w = spool_batch_writer(b, &env, 0, &err);
	assert_int_equal(spool_batch_writer_finish(b, &w, (enum spool_queue)12, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(w);
	spool_batch_abort(&b);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 0);
	assert_int_equal(spool_batch_finish_pending(f->sp, "bad", &err), -1);
	spool_env_free_fields(&env);
}

/* kill -9 at every I/O step of a batch (in a child), then recovery: the
 * batch is either rolled back (input processed again, giving the outputs
 * once) or completed from its manifest; never both, never twice. */
static void crash_every_step(struct tu_fix *f, unsigned min_crashes, unsigned min_completed,
	unsigned min_rolled_back)
{
	unsigned n, crashes = 0, completed = 0, rolled_back = 0;

	for (n = 1; n < 200; n++) {
		char id[SG_MAIL_ID_LEN + 1], when[64];
		struct spool_recovery r;
		struct sg_error err;
		int status = 0;
		pid_t pid;

		reset_spool(f);
		put_input(f, id);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			spool_test_fail_after(n, SPOOL_TEST_CRASH);
			_exit(run_batch(f, id, &err) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 0) {
			assert_true(check_state(f, id, "no crash"));
			break;
		}
		assert_int_equal(WEXITSTATUS(status), SPOOL_TEST_CRASH_STATUS);
		crashes++;
		assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
		assert_int_equal(r.batches_damaged, 0);
		assert_int_equal(r.damaged, 0);
		snprintf(when, sizeof(when), "crash at step %u", n);
		if (check_state(f, id, when)) {
			/* 0 only for a crash at the very last step (manifest already
			 * unlinked, its directory not yet fsync'ed) */
			assert_true(r.batches_completed <= 1);
			completed += r.batches_completed;
			continue;
		}
		assert_int_equal(r.batches_completed, 0);
		rolled_back++;
		/* the worker processes the input again after the restart */
		assert_int_equal(spool_batch_finish_pending(f->sp, id, &err), 0);
		assert_int_equal(run_batch(f, id, &err), 0);
		assert_true(check_state(f, id, "reprocessed"));
	}
	if (crashes < min_crashes || completed < min_completed ||
		rolled_back < min_rolled_back)
		fail_msg("crashes=%u completed=%u rolled_back=%u", crashes, completed,
			rolled_back);
}

static void test_batch_crash_every_step(void **state)
{
	/* outputs (3 x write, fsync), tmp/ fsync, manifest (write, fsync,
	 * rename, dir fsync), renames, fsyncs, ... */
	nout = NOUT;
	crash_every_step(*state, 15, 5, 5);
}

/* One output: no manifest, no fsync; the steps are the output's writes and
 * the two renames (input -> done/, output -> outgoing/). A crash at any of
 * them rolls back: recovery puts the input back from done/. (A crash after
 * the last one: test_single_recovery_intact.) */
static void test_single_crash_every_step(void **state)
{
	nout = 1;
	crash_every_step(*state, 5, 0, 5);
	nout = NOUT;
}

/* An I/O error at every step, no restart: the caller sees -1; either the
 * input is untouched, or the batch is decided and finish_pending (what the
 * worker calls before reprocessing) completes it. */
static void error_every_step(struct tu_fix *f, unsigned min_failures, unsigned min_pending)
{
	unsigned n, failures = 0, pending = 0;

	for (n = 1; n < 200; n++) {
		char id[SG_MAIL_ID_LEN + 1], when[64];
		struct sg_error err;
		int rc, fp;

		reset_spool(f);
		put_input(f, id);
		spool_test_fail_after(n, ENOSPC);
		rc = run_batch(f, id, &err);
		spool_test_fail_after(0, 0);
		if (rc == 0) {
			assert_true(check_state(f, id, "no error"));
			break;
		}
		failures++;
		if (err.code != SG_E_NOSPACE)
			fail_msg("step %u: got %s want nospace (%s)", n, sg_errc_name(err.code),
				err.msg);
		fp = spool_batch_finish_pending(f->sp, id, &err);
		assert_true(fp == 0 || fp == 1);
		if (fp == 1)
			pending++;
		/* the tmp outputs of a decided batch were consumed by finish_pending;
		 * those of an undecided one were removed by the failed commit */
		snprintf(when, sizeof(when), "error at step %u", n);
		if (!check_state(f, id, when)) {
			assert_int_equal(fp, 0);
			assert_int_equal(run_batch(f, id, &err), 0);
			assert_true(check_state(f, id, "reprocessed"));
		}
	}
	if (failures < min_failures || pending < min_pending)
		fail_msg("failures=%u pending=%u", failures, pending);
}

static void test_batch_error_every_step(void **state)
{
	nout = NOUT;
	error_every_step(*state, 15, 3);
}

/* One output: nothing can fail once the output is visible (it is the last
 * step), so every error leaves the input in incoming/ and no output. */
static void test_single_error_every_step(void **state)
{
	nout = 1;
	error_every_step(*state, 5, 0);
	nout = NOUT;
}

/* only_id - the name of the only file in sub/ */
static void only_id(struct tu_fix *f, const char *sub, char *id)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int n = 0;

	d = opendir(tu_path(path, sizeof(path), f->spooldir, sub, ""));
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(id, SG_MAIL_ID_LEN + 1, "%s", de->d_name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
}

/* lazy - a one-output batch of a new input: its IDs */
static void lazy(struct tu_fix *f, char *in, char *out)
{
	struct sg_error err;

	nout = 1;
	put_input(f, in);
	assert_int_equal(run_batch(f, in, &err), 0);
	only_id(f, "outgoing", out);
	nout = NOUT;
}

/* reopen - a fresh struct spool, as after a restart (nothing verified yet) */
static void reopen(struct tu_fix *f)
{
	struct sg_error err;

	spool_close(&f->sp);
	f->sp = spool_open(f->spooldir, &err);
	assert_non_null(f->sp);
}

/* The one-output form writes no manifest, flags its output and keeps the
 * input in done/ until the output is delivered; then both go. */
static void test_single_commit(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], out[SG_MAIL_ID_LEN + 1];
	struct spool_env env;
	struct sg_error err;

	lazy(f, id, out);
	nout = 1;
	assert_true(check_state(f, id, "single"));
	nout = NOUT;
	assert_int_equal(tu_count(f->spooldir, "batch"), 0);
	assert_true(tu_exists(f->spooldir, "done", id));
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_OUTGOING, out, &env, NULL, &err), 0);
	assert_true(env.batch_output);
	assert_int_equal(spool_done(f->sp, SPOOL_Q_OUTGOING, &env, &err), 0);
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 0);
	assert_int_equal(tu_count(f->spooldir, "incoming"), 0);
	spool_env_free_fields(&env);
}

/* kill -9 after the commit: the output is intact (its body hash checked in
 * full by a new process), so it is kept and the input removed. */
static void test_single_recovery_intact(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], out[SG_MAIL_ID_LEN + 1];
	struct spool_recovery r;
	struct sg_error err;

	lazy(f, id, out);
	reopen(f);
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.batches_completed, 1);
	assert_int_equal(r.outputs_dropped, 0);
	assert_int_equal(r.inputs_requeued, 0);
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
	assert_int_equal(tu_count(f->spooldir, "incoming"), 0);
	assert_true(tu_exists(f->spooldir, "outgoing", out));
}

/* A power loss before the output was written back: a body that does not
 * match its hash is removed and the input processed again; a file without
 * its trailer goes to error/ and the input, left alone in done/, back to
 * incoming/ too. */
static void test_single_recovery_damaged(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], out[SG_MAIL_ID_LEN + 1], path[4096];
	struct spool_recovery r;
	struct sg_error err;
	unsigned char *raw;
	size_t len;
	char *p;

	lazy(f, id, out);
	tu_path(path, sizeof(path), f->spooldir, "outgoing", out);
	raw = tu_read_file(path, &len);
	p = memmem(raw, len, "output 0", 8);
	assert_non_null(p);
	p[7] = '9';
	tu_write_file(path, raw, len);
	free(raw);
	reopen(f);
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.outputs_dropped, 1);
	assert_int_equal(r.batches_completed, 0);
	assert_int_equal(r.damaged, 0);
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 0);
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
	assert_true(tu_exists(f->spooldir, "incoming", id));

	reset_spool(f);
	lazy(f, id, out);
	assert_int_equal(truncate(tu_path(path, sizeof(path), f->spooldir, "outgoing", out),
		20), 0);
	reopen(f);
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.damaged, 1);
	assert_int_equal(r.inputs_requeued, 1);
	assert_true(tu_exists(f->spooldir, "error", out));
	assert_true(tu_exists(f->spooldir, "incoming", id));
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
}

/* Recovery also completes the older form (input still in incoming/ while
 * an output names it), and leaves alone an input that an ordinary message
 * names as its parent. */
static void test_single_recovery_by_parent(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], other[SG_MAIL_ID_LEN + 1], dsn[SG_MAIL_ID_LEN + 1];
	char out[SG_MAIL_ID_LEN + 1], path[4096], path2[4096];
	struct spool_recovery r;
	struct spool_env env;
	struct sg_error err;

	lazy(f, id, out);
	/* the input back in incoming/, as the older form left it */
	assert_int_equal(rename(tu_path(path, sizeof(path), f->spooldir, "done", id),
		tu_path(path2, sizeof(path2), f->spooldir, "incoming", id)), 0);
	/* a message naming "other" as parent without being a batch output */
	put_input(f, other);
	tu_env(&env, "a@example.org", 1);
	env.parent_id = sg_xstrdup(other);
	assert_int_equal(tu_write_msg(f->sp, &env, "dsn", SPOOL_Q_OUTGOING, dsn, &err), 0);
	spool_env_free_fields(&env);
	reopen(f);
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.batches_completed, 1);
	assert_false(tu_exists(f->spooldir, "incoming", id));
	assert_true(tu_exists(f->spooldir, "incoming", other));
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 2);
}

/* An input left in done/ without any output (its output was removed by
 * hand, or lost) is processed again. */
static void test_done_leftover_requeued(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], out[SG_MAIL_ID_LEN + 1], path[4096];
	struct spool_recovery r;
	struct sg_error err;

	lazy(f, id, out);
	assert_int_equal(unlink(tu_path(path, sizeof(path), f->spooldir, "outgoing", out)), 0);
	reopen(f);
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.inputs_requeued, 1);
	assert_true(tu_exists(f->spooldir, "incoming", id));
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
}

/* Any change of the output's state first makes it durable on its own and
 * drops the input: a state file (deferral), an admin hold, an admin
 * delete, a bounce batch that consumes it. */
static void test_single_settle(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], out[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_writer *w;
	struct spool_env env;
	struct sg_error err;

	lazy(f, id, out);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_OUTGOING, out, &env, NULL, &err), 0);
	env.attempts = 1;
	/* the output's fsync fails: no state, the input stays in done/ */
	spool_test_fail_after(1, EIO);
	assert_int_equal(spool_state_save(f->sp, &env, &err), -1);
	spool_test_fail_after(0, 0);
	assert_int_equal(err.code, SG_E_IO);
	assert_true(tu_exists(f->spooldir, "done", id));
	assert_false(tu_exists(f->spooldir, "state", out));
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	spool_env_free_fields(&env);
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
	assert_true(tu_exists(f->spooldir, "outgoing", out));
	assert_int_equal(tu_count(f->spooldir, "incoming"), 0);

	reset_spool(f);
	lazy(f, id, out);
	assert_int_equal(spool_hold(f->sp, out, &err), 0);
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
	assert_true(tu_exists(f->spooldir, "hold", out));

	reset_spool(f);
	lazy(f, id, out);
	assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, out, &err), 0);
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 0);

	reset_spool(f);
	lazy(f, id, out);
	b = spool_batch_new(f->sp, SPOOL_Q_OUTGOING, out);
	tu_env(&env, "", 1);
	env.kind = SPOOL_KIND_BOUNCE;
	env.parent_id = sg_xstrdup(out);
	w = spool_batch_writer(b, &env, 0, &err);
	assert_int_equal(spool_writer_write(w, "dsn", 3, &err), 0);
	assert_int_equal(spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(spool_batch_commit(&b, &err), 0);
	spool_env_free_fields(&env);
	assert_int_equal(tu_count(f->spooldir, "done"), 0);
	assert_false(tu_exists(f->spooldir, "outgoing", out));
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 1);
}

/* A pass moves the input on under its own ID, byte for byte, without its
 * state; a crash at the rename leaves it in incoming/, never in both. */
static void test_pass(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_env env;
	struct spool_msg *m;
	struct sg_error err;
	char *body;
	unsigned n;
	bool done = false;

	put_input(f, id);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &env, NULL, &err), 0);
	env.attempts = 2;
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	spool_env_free_fields(&env);
	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	assert_int_equal(spool_batch_pass(b, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(spool_batch_commit(&b, &err), 0);
	assert_false(tu_exists(f->spooldir, "incoming", id));
	assert_false(tu_exists(f->spooldir, "state", id));
	m = spool_msg_open(f->sp, SPOOL_Q_OUTGOING, id, &err);
	assert_non_null(m);
	body = tu_read_body(m);
	assert_string_equal(body, "Subject: in\r\n\r\ninput\r\n");
	assert_int_equal(spool_msg_env(m)->attempts, 0);
	free(body);
	spool_msg_close(&m);

	for (n = 1; n < 20 && !done; n++) {
		int status = 0;
		pid_t pid;

		reset_spool(f);
		put_input(f, id);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
			spool_test_fail_after(n, SPOOL_TEST_CRASH);
			if (spool_batch_pass(b, SPOOL_Q_OUTGOING, &err) < 0)
				_exit(2);
			_exit(spool_batch_commit(&b, &err) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		done = WEXITSTATUS(status) == 0;
		if (!done)
			assert_int_equal(WEXITSTATUS(status), SPOOL_TEST_CRASH_STATUS);
		assert_int_equal(spool_recover(f->sp, &err), 0);
		assert_int_equal(tu_count(f->spooldir, "incoming") +
			tu_count(f->spooldir, "outgoing"), 1);
		assert_true(tu_exists(f->spooldir, done ? "outgoing" : "incoming", id));
	}
	assert_true(done);
	assert_true(n > 2);  /* at least one crash (at the rename) */
}

/* A pass is the batch's only output. */
static void test_pass_misuse(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_writer *w;
	struct spool_env env;
	struct sg_error err;

	put_input(f, id);
	tu_env(&env, "a@example.org", 1);
	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	assert_int_equal(spool_batch_pass(b, SPOOL_Q_INCOMING, &err), -1);
	assert_int_equal(spool_batch_pass(b, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(spool_batch_pass(b, SPOOL_Q_OUTGOING, &err), -1);
	assert_null(spool_batch_writer(b, &env, 0, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	spool_batch_abort(&b);
	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	w = spool_batch_writer(b, &env, 0, &err);
	assert_non_null(w);
	assert_int_equal(spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(spool_batch_pass(b, SPOOL_Q_OUTGOING, &err), -1);
	spool_batch_abort(&b);
	assert_true(tu_exists(f->spooldir, "incoming", id));
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 0);
	spool_env_free_fields(&env);
}

/* A manifest that cannot be read is kept aside; its outputs (still in tmp/)
 * are dropped and the input is processed again. */
static void test_batch_damaged_manifest(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], path[4096], name[64];
	struct spool_recovery r;
	struct sg_error err;

	put_input(f, id);
	tu_write_file(tu_path(path, sizeof(path), f->spooldir, "batch", id),
		"SGBATCH 1\ninput incoming ", 25);
	tu_write_file(tu_path(path, sizeof(path), f->spooldir, "tmp", "0000000000AAAAAA"),
		"x", 1);
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.batches_damaged, 1);
	assert_int_equal(r.batches_completed, 0);
	snprintf(name, sizeof(name), "%s.damaged", id);
	assert_true(tu_exists(f->spooldir, "batch", name));
	assert_true(tu_exists(f->spooldir, "incoming", id));
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
	/* a damaged manifest is not taken for a pending batch */
	assert_int_equal(spool_batch_finish_pending(f->sp, id, &err), 0);
	/* and the next recovery leaves it alone */
	assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
	assert_int_equal(r.batches_damaged, 0);
}

/* A manifest for an input in a different queue (delivery: bounces from an
 * outgoing message) is completed against that queue. */
static void test_batch_outgoing_input(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_writer *w;
	struct spool_env env;
	struct sg_error err;

	tu_env(&env, "a@example.org", 1);
	assert_int_equal(tu_write_msg(f->sp, &env, "x", SPOOL_Q_OUTGOING, id, &err), 0);
	b = spool_batch_new(f->sp, SPOOL_Q_OUTGOING, id);
	env.kind = SPOOL_KIND_BOUNCE;
	env.parent_id = sg_xstrdup(id);
	w = spool_batch_writer(b, &env, 0, &err);
	assert_int_equal(spool_writer_write(w, "dsn", 3, &err), 0);
	assert_int_equal(spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, &err), 0);
	/* fail right after the manifest is durable (steps: tmp/ fsync, manifest
	 * write, fsync, rename, dir fsync), at the first output rename */
	spool_test_fail_after(6, EIO);
	assert_int_equal(spool_batch_commit(&b, &err), -1);
	spool_test_fail_after(0, 0);
	assert_int_equal(tu_count(f->spooldir, "batch"), 1);
	assert_int_equal(spool_batch_finish_pending(f->sp, id, &err), 1);
	assert_false(tu_exists(f->spooldir, "outgoing", id));
	assert_int_equal(tu_count(f->spooldir, "outgoing"), 1);
	assert_int_equal(tu_count(f->spooldir, "batch"), 0);
	spool_env_free_fields(&env);
}

/* A caller that does not call finish_pending before reprocessing: the
 * earlier, decided batch wins and the new outputs are discarded. */
static void test_batch_earlier_pending_wins(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1];
	struct spool_batch *b;
	struct spool_writer *w;
	struct spool_env env;
	struct sg_error err;

	put_input(f, id);
	/* 3 outputs x 4 steps, tmp/ fsync, manifest x 4: step 18 is the first
	 * output rename, after the batch is decided */
	spool_test_fail_after(18, EIO);
	assert_int_equal(run_batch(f, id, &err), -1);
	spool_test_fail_after(0, 0);
	assert_int_equal(tu_count(f->spooldir, "batch"), 1);
	assert_true(tu_exists(f->spooldir, "incoming", id));

	b = spool_batch_new(f->sp, SPOOL_Q_INCOMING, id);
	tu_env(&env, "a@example.org", 1);
	env.parent_id = sg_xstrdup(id);
	w = spool_batch_writer(b, &env, 0, &err);
	assert_int_equal(spool_writer_write(w, "second attempt", 14, &err), 0);
	assert_int_equal(spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, &err), 0);
	assert_int_equal(spool_batch_commit(&b, &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	assert_true(check_state(f, id, "earlier batch completed"));
	assert_int_equal(tu_count(f->spooldir, "outgoing"), NOUT);
	spool_env_free_fields(&env);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_batch_commit),
		T(test_batch_no_outputs),
		T(test_batch_abort),
		T(test_batch_misuse),
		T(test_batch_crash_every_step),
		T(test_batch_error_every_step),
		T(test_batch_damaged_manifest),
		T(test_batch_outgoing_input),
		T(test_batch_earlier_pending_wins),
		T(test_single_commit),
		T(test_single_crash_every_step),
		T(test_single_error_every_step),
		T(test_single_recovery_intact),
		T(test_single_recovery_damaged),
		T(test_single_recovery_by_parent),
		T(test_done_leftover_requeued),
		T(test_single_settle),
		T(test_pass),
		T(test_pass_misuse),
	};
#undef T

	sg_log_init("test_spool_batch", SG_LOGDEST_STDERR, SG_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
