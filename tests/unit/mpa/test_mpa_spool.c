/* test_mpa_spool.c - mpa_process_spooled (F-FLOW-1, F-FLOW-4): byte-exact
 * pass-through of all kinds of input, the envelope of the output, the log
 * line, damaged input and unusable envelopes to error/, temporary failures
 * at every I/O step leaving the input, and a crash (kill -9) at every step
 * followed by recovery giving exactly one output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "mpa_test.h"

struct fixture {
	char *dir;
	struct spool *sp;
	struct mpa *mpa;
};

static int setup(void **state)
{
	struct fixture *f = sg_xcalloc(1, sizeof(*f));
	struct mpa_conf conf;
	struct sg_error err;

	memset(&conf, 0, sizeof(conf));
	f->dir = mt_tmpdir();
	f->sp = spool_open(f->dir, &err);
	assert_non_null(f->sp);
	f->mpa = mpa_new(&conf, &err);
	assert_non_null(f->mpa);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	spool_test_fail_after(0, 0);
	mpa_free(&f->mpa);
	spool_close(&f->sp);
	mt_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Every one of these passes through unchanged, byte for byte. */
static const struct {
	const char *name;
	const char *data;
	size_t len;  /* 0 = strlen */
} passthrough_cases[] = {
	{"simple LF", "From: a@example.com\nTo: b@example.org\nSubject: x\n\nbody\n", 0},
	{"CRLF", "From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\n\r\nbody\r\n"
		"line 2\r\n", 0},
	{"mixed line endings", "From: a@example.com\r\nTo: b@example.org\n\r\nx\ny\r\n", 0},
	{"no trailing newline", "From: a@example.com\nSubject: y\n\nlast line", 0},
	{"headers only", "From: a@example.com\nSubject: only headers\n", 0},
	{"headers only, no newline", "From: a@example.com\nSubject: z", 0},
	{"8bit body", "From: a@example.com\nMIME-Version: 1.0\nContent-Type: text/plain; "
		"charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nGr\xfc\xdf"
		"e, \xc3\xa4\xc3\xb6\xc3\xbc \xe2\x82\xac\n", 0},
	{"binary-ish", "From: a@example.com\nContent-Type: application/octet-stream\n"
		"Content-Transfer-Encoding: binary\n\n\x00\x01\x02\xff\xfe\r\r\n\x00\n\x7f",
		85},
	{"broken MIME", "From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/"
		"mixed; boundary=\"zz\"\n\n--zz\nContent-Type: text/plain\nContent-Transfer-"
		"Encoding: base64\n\n!!!not base64!!!\n--zz\nContent-Type: multipart/"
		"alternative; boundary=\n\n--zz\nno closing boundary\n", 0},
	{"invalid UTF-8 headers", "From: \xff\xfe Mall\xc3ory <m@example.com>\nSubject: "
		"=?utf-8?B?////?= \xc0\xaf\x80\nX-Bad: \xed\xa0\x80\n\nbody\n", 0},
	{"no header section", "just some text\nwithout headers\n", 0},
	{"folded and long header", "Subject: a\n b\n\tc\nX-Long: "
		"0123456789012345678901234567890123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789\n\n.\n..\n", 0},
};

/* check_output_env - unchanged mail moves on as the input itself: the same
 * ID and envelope (DSN fields kept), no parent, not a batch output. */
static void check_output_env(const struct spool_env *in, const struct spool_env *out,
	const char *input_id)
{
	size_t i;

	assert_string_equal(out->sender, in->sender);
	assert_int_equal(out->nrcpts, in->nrcpts);
	for (i = 0; i < in->nrcpts; i++) {
		assert_string_equal(out->rcpts[i].addr, in->rcpts[i].addr);
		assert_string_equal(out->rcpts[i].orcpt, in->rcpts[i].orcpt);
		assert_int_equal(out->rcpts[i].notify, in->rcpts[i].notify);
		assert_int_equal(out->rcpts[i].status, SPOOL_RCPT_PENDING);
	}
	assert_int_equal(out->kind, SPOOL_KIND_MESSAGE);
	assert_null(out->parent_id);
	assert_false(out->batch_output);
	assert_string_equal(out->dsn_envid, in->dsn_envid);
	assert_true(out->dsn_ret_hdrs == in->dsn_ret_hdrs);
	assert_true(out->smtputf8 == in->smtputf8);
	assert_true(out->body_8bit == in->body_8bit);
	assert_int_equal(out->arrival, in->arrival);
	assert_string_equal(out->id, input_id);
}

static void test_passthrough_byte_exact(void **state)
{
	struct fixture *f = *state;
	size_t c;

	for (c = 0; c < sizeof(passthrough_cases) / sizeof(passthrough_cases[0]); c++) {
		const char *data = passthrough_cases[c].data;
		size_t len = passthrough_cases[c].len ? passthrough_cases[c].len : strlen(data);
		struct spool_env env, outenv;
		struct sg_error err;
		char id[SG_MAIL_ID_LEN + 1], out[64];
		char *body;
		size_t blen = 0;

		mt_env(&env, "sender@example.com", 3);
		assert_int_equal(mt_put(f->sp, &env, data, len, id), 0);
		if (mpa_process_spooled(f->mpa, f->sp, id, &err) != 0)
			fail_msg("%s: %s", passthrough_cases[c].name, err.msg);
		assert_int_equal(mt_count(f->dir, "incoming"), 0);
		assert_int_equal(mt_count(f->dir, "error"), 0);
		assert_int_equal(mt_count(f->dir, "outgoing"), 1);
		assert_int_equal(mt_first(f->dir, "outgoing", out, sizeof(out)), 0);
		body = mt_body(f->sp, SPOOL_Q_OUTGOING, out, &blen);
		assert_non_null(body);
		if (blen != len || memcmp(body, data, len) != 0)
			fail_msg("%s: output differs (got %zu bytes, want %zu)",
				passthrough_cases[c].name, blen, len);
		assert_int_equal(spool_env_read(f->sp, SPOOL_Q_OUTGOING, out, &outenv, NULL,
			&err), 0);
		check_output_env(&env, &outenv, id);
		spool_env_free_fields(&outenv);
		assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, out, &err), 0);
		free(body);
		spool_env_free_fields(&env);
	}
	assert_int_equal(mt_count(f->dir, "tmp"), 0);
	assert_int_equal(mt_count(f->dir, "batch"), 0);
}

/* An empty message (zero bytes) passes as zero bytes. */
static void test_passthrough_empty(void **state)
{
	struct fixture *f = *state;
	struct spool_env env;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1], out[64];
	char *body;
	size_t blen = 99;

	mt_env(&env, "", 1);
	assert_int_equal(mt_put(f->sp, &env, "", 0, id), 0);
	assert_int_equal(mpa_process_spooled(f->mpa, f->sp, id, &err), 0);
	assert_int_equal(mt_first(f->dir, "outgoing", out, sizeof(out)), 0);
	body = mt_body(f->sp, SPOOL_Q_OUTGOING, out, &blen);
	assert_non_null(body);
	assert_int_equal(blen, 0);
	free(body);
	spool_env_free_fields(&env);
}

/* Hostile structure: 100,000 tiny parts pass through unchanged (the MIME
 * module parses only the header section of such a message). */
static void test_passthrough_many_parts(void **state)
{
	struct fixture *f = *state;
	struct spool_env env;
	struct sg_error err;
	struct sg_buf b;
	char id[SG_MAIL_ID_LEN + 1], out[64];
	char *body;
	size_t blen = 0;
	unsigned i;

	sg_buf_init(&b, 4u << 20);
	assert_int_equal(sg_buf_append_str(&b, "From: a@example.com\nContent-Type: "
		"multipart/mixed; boundary=q\n\n", &err), 0);
	for (i = 0; i < 100000; i++)
		assert_int_equal(sg_buf_append_str(&b, "--q\n\nx\n", &err), 0);
	mt_env(&env, "sender@example.com", 1);
	assert_int_equal(mt_put(f->sp, &env, b.data, b.len, id), 0);
	assert_int_equal(mpa_process_spooled(f->mpa, f->sp, id, &err), 0);
	assert_int_equal(mt_first(f->dir, "outgoing", out, sizeof(out)), 0);
	body = mt_body(f->sp, SPOOL_Q_OUTGOING, out, &blen);
	assert_non_null(body);
	assert_int_equal(blen, b.len);
	assert_memory_equal(body, b.data, blen);
	free(body);
	sg_buf_deinit(&b);
	spool_env_free_fields(&env);
}

/* F-FLOW-4: one line per message, "<ID>: from=<...>, to=<...>, action=pass,
 * outputs=N". */
static void test_log_line(void **state)
{
	struct fixture *f = *state;
	struct spool_env env;
	struct sg_error err;
	struct mt_log log;
	char id[SG_MAIL_ID_LEN + 1];
	char *text, *want;
	const char *msg = "From: x@example.com\n\nhi\n";

	mt_env(&env, "sender@example.com", 2);
	assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
	sg_log_set_level(SG_LOG_INFO);
	mt_log_start(&log);
	assert_int_equal(mpa_process_spooled(f->mpa, f->sp, id, &err), 0);
	text = mt_log_stop(&log);
	want = sg_xasprintf("%s: from=<sender@example.com>, to=<rcpt0@example.org>,"
		"<rcpt1@example.org>, action=pass, outputs=1\n", id);
	assert_non_null(strstr(text, want));
	free(want);
	free(text);
	spool_env_free_fields(&env);
}

/* A message file whose body no longer matches its trailer goes to error/. */
static void test_damaged_input_to_error(void **state)
{
	struct fixture *f = *state;
	struct spool_env env;
	struct sg_error err;
	struct mt_log log;
	char id[SG_MAIL_ID_LEN + 1], path[4096];
	char *text;
	const char *msg = "From: x@example.com\n\nintact body\n";
	int fd;

	mt_env(&env, "sender@example.com", 1);
	assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
	snprintf(path, sizeof(path), "%s/incoming/%s", f->dir, id);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	/* the body starts after magic (8) + 'B' + u64: flip "intact" to "Intact" */
	assert_int_equal(pwrite(fd, "I", 1, 17 + 21), 1);
	close(fd);
	mt_log_start(&log);
	assert_int_equal(mpa_process_spooled(f->mpa, f->sp, id, &err), 0);
	text = mt_log_stop(&log);
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	assert_int_equal(mt_count(f->dir, "outgoing"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 1);
	assert_non_null(strstr(text, id));
	assert_non_null(strstr(text, "moved to error queue"));
	free(text);
	spool_env_free_fields(&env);
}

/* Unusable envelopes fail permanently: error/, nothing sent. */
static void test_bad_envelope_to_error(void **state)
{
	struct fixture *f = *state;
	static const char *const bad_rcpts[] = {NULL, "no-at-sign", "a@", "@example.org",
		"a\x01b@example.org", "<a@example.org>"};
	size_t c;

	for (c = 0; c < sizeof(bad_rcpts) / sizeof(bad_rcpts[0]); c++) {
		struct spool_env env;
		struct sg_error err;
		char id[SG_MAIL_ID_LEN + 1];
		const char *msg = "Subject: s\n\nx\n";

		mt_env(&env, "sender@example.com", 0);
		if (bad_rcpts[c] != NULL)
			spool_env_add_rcpt(&env, bad_rcpts[c], NULL, 0);
		assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
		assert_int_equal(mpa_process_spooled(f->mpa, f->sp, id, &err), 0);
		assert_int_equal(mt_count(f->dir, "incoming"), 0);
		assert_int_equal(mt_count(f->dir, "outgoing"), 0);
		assert_int_equal((int)c + 1, mt_count(f->dir, "error"));
		spool_env_free_fields(&env);
	}
}

/* Addresses the SMTP server accepts but sg_addr_is_valid does not (quoted
 * local part with a space, UTF-8) still pass: error/ is for broken input. */
static void test_unusual_addresses_pass(void **state)
{
	struct fixture *f = *state;
	struct spool_env env, oenv;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1], out[64];
	const char *msg = "Subject: s\n\nx\n";

	mt_env(&env, "\"john doe\"@example.com", 0);
	spool_env_add_rcpt(&env, "\"jane roe\"@example.org", NULL, 0);
	spool_env_add_rcpt(&env, "j\xc3\xbc" "rgen@b\xc3\xbc" "cher.example", NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
	assert_int_equal(mpa_process_spooled(f->mpa, f->sp, id, &err), 0);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	assert_int_equal(mt_first(f->dir, "outgoing", out, sizeof(out)), 0);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_OUTGOING, out, &oenv, NULL, &err), 0);
	assert_string_equal(oenv.sender, env.sender);
	assert_int_equal(oenv.nrcpts, 2);
	assert_string_equal(oenv.rcpts[0].addr, env.rcpts[0].addr);
	assert_string_equal(oenv.rcpts[1].addr, env.rcpts[1].addr);
	spool_env_free_fields(&oenv);
	spool_env_free_fields(&env);
}

/* An ID that is not in incoming/ any more is done, not an error. */
static void test_gone_and_bad_id(void **state)
{
	struct fixture *f = *state;
	struct sg_error err;

	assert_int_equal(mpa_process_spooled(f->mpa, f->sp, "0123456789ABCDEF", &err), 0);
	assert_int_equal(mpa_process_spooled(f->mpa, f->sp, "../etc/passwd", &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

/* check_one_output - exactly one output equal to msg, input gone, no debris. */
static void check_one_output(const char *dir, struct spool *sp, const char *msg)
{
	char out[64];
	char *body;
	size_t blen = 0;

	assert_int_equal(mt_count(dir, "incoming"), 0);
	assert_int_equal(mt_count(dir, "outgoing"), 1);
	assert_int_equal(mt_count(dir, "error"), 0);
	assert_int_equal(mt_count(dir, "tmp"), 0);
	assert_int_equal(mt_count(dir, "batch"), 0);
	assert_int_equal(mt_first(dir, "outgoing", out, sizeof(out)), 0);
	body = mt_body(sp, SPOOL_Q_OUTGOING, out, &blen);
	assert_non_null(body);
	assert_int_equal(blen, strlen(msg));
	assert_memory_equal(body, msg, blen);
	free(body);
}

static const char crash_msg[] = "From: a@example.com\nTo: b@example.org\n\nbody\n";

/* Temporary failure (disk full, I/O error) at every I/O step of the pass
 * (the rename into outgoing/): the attempt returns -1 and the input stays;
 * the retry gives exactly one output. (Batches with written outputs:
 * tests/unit/spool/test_spool_batch.c.) */
static void test_temp_failure_every_step(void **state)
{
	struct fixture *f = *state;
	unsigned n;
	bool finished = false;

	for (n = 1; n < 100 && !finished; n++) {
		struct spool *sp;
		struct spool_env env;
		struct sg_error err;
		char *dir = mt_tmpdir();
		char id[SG_MAIL_ID_LEN + 1];
		int rc;

		sp = spool_open(dir, &err);
		assert_non_null(sp);
		mt_env(&env, "s@example.com", 2);
		assert_int_equal(mt_put(sp, &env, crash_msg, strlen(crash_msg), id), 0);
		spool_test_fail_after(n, n % 2 ? ENOSPC : EIO);
		rc = mpa_process_spooled(f->mpa, sp, id, &err);
		spool_test_fail_after(0, 0);
		if (rc == 0) {
			finished = true; /* n is past the last step: nothing failed */
		} else {
			assert_true(err.code == SG_E_IO || err.code == SG_E_NOSPACE);
			/* the input is still there, or the batch is decided (maybe
			 * complete but for a final directory fsync): never lost */
			assert_true(mt_count(dir, "incoming") + mt_count(dir, "batch") +
				mt_count(dir, "outgoing") >= 1);
			assert_int_equal(mt_count(dir, "error"), 0);
			assert_int_equal(mpa_process_spooled(f->mpa, sp, id, &err), 0);
		}
		check_one_output(dir, sp, crash_msg);
		spool_env_free_fields(&env);
		spool_close(&sp);
		mt_rm_rf(dir);
		free(dir);
	}
	assert_true(finished);
	assert_true(n > 2); /* at least one step failed */
}

/* kill -9 at every I/O step (in a child), then restart: recovery and a new
 * attempt give exactly one output and remove the input. */
static void test_crash_every_step(void **state)
{
	struct fixture *f = *state;
	unsigned n, crashes = 0;
	bool finished = false;

	for (n = 1; n < 100 && !finished; n++) {
		struct spool *sp;
		struct spool_env env;
		struct sg_error err;
		char *dir = mt_tmpdir();
		char id[SG_MAIL_ID_LEN + 1];
		pid_t pid;
		int st;

		sp = spool_open(dir, &err);
		assert_non_null(sp);
		mt_env(&env, "s@example.com", 1);
		assert_int_equal(mt_put(sp, &env, crash_msg, strlen(crash_msg), id), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			spool_test_fail_after(n, SPOOL_TEST_CRASH);
			_exit(mpa_process_spooled(f->mpa, sp, id, &err) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st) == 0) {
			finished = true;
		} else {
			assert_int_equal(WEXITSTATUS(st), SPOOL_TEST_CRASH_STATUS);
			crashes++;
			/* restart: recovery, then the scan hands incoming/ to a worker */
			assert_int_equal(spool_recover(sp, &err), 0);
			if (mt_count(dir, "incoming") == 1)
				assert_int_equal(mpa_process_spooled(f->mpa, sp, id, &err), 0);
		}
		check_one_output(dir, sp, crash_msg);
		spool_env_free_fields(&env);
		spool_close(&sp);
		mt_rm_rf(dir);
		free(dir);
	}
	assert_true(finished);
	assert_true(crashes >= 1);
}

/* two_outputs - what a pipeline with two groups commits: a batch of two
 * outputs of input id (the manifest form). */
static int two_outputs(struct spool *sp, const char *id, struct sg_error *err)
{
	struct spool_batch *b = spool_batch_new(sp, SPOOL_Q_INCOMING, id);
	int i;

	for (i = 0; i < 2; i++) {
		struct spool_env env;
		struct spool_writer *w;

		mt_env(&env, "s@example.com", 1);
		env.parent_id = sg_xstrdup(id);
		w = spool_batch_writer(b, &env, 0, err);
		spool_env_free_fields(&env);
		if (w == NULL || spool_writer_write(w, crash_msg, strlen(crash_msg), err) < 0 ||
			spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, err) < 0) {
			spool_writer_abort(&w);
			spool_batch_abort(&b);
			return -1;
		}
	}
	return spool_batch_commit(&b, err);
}

/* A crash after the manifest, before recovery ran: the next attempt on the
 * same ID completes the batch instead of processing the message again. */
static void test_pending_batch_completed_not_reprocessed(void **state)
{
	struct fixture *f = *state;
	unsigned n;
	bool seen_pending = false;

	for (n = 1; n < 100 && !seen_pending; n++) {
		struct spool *sp;
		struct spool_env env;
		struct sg_error err;
		char *dir = mt_tmpdir();
		char id[SG_MAIL_ID_LEN + 1], path[4096];
		pid_t pid;
		int st;

		sp = spool_open(dir, &err);
		assert_non_null(sp);
		mt_env(&env, "s@example.com", 1);
		assert_int_equal(mt_put(sp, &env, crash_msg, strlen(crash_msg), id), 0);
		pid = fork();
		if (pid == 0) {
			spool_test_fail_after(n, SPOOL_TEST_CRASH);
			_exit(two_outputs(sp, id, &err) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			spool_env_free_fields(&env);
			spool_close(&sp);
			mt_rm_rf(dir);
			free(dir);
			break;
		}
		snprintf(path, sizeof(path), "%s/batch/%s", dir, id);
		if (access(path, F_OK) == 0 && mt_count(dir, "incoming") == 1) {
			seen_pending = true;
			/* no spool_recover: the worker itself must finish the batch */
			assert_int_equal(mpa_process_spooled(f->mpa, sp, id, &err), 0);
			assert_int_equal(mt_count(dir, "incoming"), 0);
			assert_int_equal(mt_count(dir, "outgoing"), 2);
			assert_int_equal(mt_count(dir, "batch"), 0);
			assert_int_equal(mt_count(dir, "tmp"), 0);
		}
		spool_env_free_fields(&env);
		spool_close(&sp);
		mt_rm_rf(dir);
		free(dir);
	}
	assert_true(seen_pending);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_passthrough_byte_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passthrough_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passthrough_many_parts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_input_to_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_envelope_to_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusual_addresses_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_and_bad_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_temp_failure_every_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_every_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_batch_completed_not_reprocessed,
			setup, teardown),
	};

	sg_log_init("test_mpa_spool", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
