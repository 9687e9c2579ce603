/* test_mpa_stream.c - mpa_process_stream (the `sealgate process` path): the
 * same pipeline with outputs to a callback: unchanged bytes, the envelope,
 * IDs, generated output through a temporary file, and every failure
 * returned (fail closed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mpa_test.h"
#include "mta/mta.h"

struct collected {
	unsigned n;
	char *body[4];
	size_t len[4];
	struct spool_env env[4];
	int fail_with;   /* != 0: the callback fails with this code */
};

static int collect(void *arg, const struct mpa_output *out, struct sg_error *err)
{
	struct collected *c = arg;
	char *buf;

	if (c->fail_with != 0) {
		sg_error_set(err, (enum sg_errc)c->fail_with, "callback refused");
		return -1;
	}
	assert_true(c->n < 4);
	buf = sg_xmalloc(out->len + 1);
	if (out->len > 0)
		assert_int_equal(pread(out->fd, buf, out->len, (off_t)out->offset),
			(ssize_t)out->len);
	buf[out->len] = '\0';
	c->body[c->n] = buf;
	c->len[c->n] = out->len;
	spool_env_copy(&c->env[c->n], out->env);
	c->n++;
	return 0;
}

static void collected_free(struct collected *c)
{
	unsigned i;

	for (i = 0; i < c->n; i++) {
		free(c->body[i]);
		spool_env_free_fields(&c->env[i]);
	}
	memset(c, 0, sizeof(*c));
}

static int msg_fd(const char *data, size_t len)
{
	char path[] = "/tmp/sgmpa-stream.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(sg_write_all(fd, data, len), 0);
	return fd;
}

static const char msg[] = "From: Alice <alice@example.com>\r\nSubject: s\r\n\r\nbody\r\n";

static void test_stream_passthrough(void **state)
{
	struct mpa_conf conf;
	struct sg_error err;
	struct mpa *mpa;
	struct spool_env env;
	struct collected c;
	int fd = msg_fd(msg, strlen(msg));
	unsigned i;

	(void)state;
	memset(&conf, 0, sizeof(conf));
	memset(&c, 0, sizeof(c));
	mpa = mpa_new(&conf, &err);
	mt_env(&env, "alice@example.com", 3);
	/* no ID given: one is made, and it is the outputs' parent */
	assert_int_equal(mpa_process_stream(mpa, &env, fd, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.len[0], strlen(msg));
	assert_memory_equal(c.body[0], msg, strlen(msg));
	assert_string_equal(c.env[0].sender, "alice@example.com");
	assert_int_equal(c.env[0].kind, SPOOL_KIND_MESSAGE);
	assert_int_equal(c.env[0].nrcpts, 3);
	for (i = 0; i < 3; i++) {
		assert_string_equal(c.env[0].rcpts[i].addr, env.rcpts[i].addr);
		assert_string_equal(c.env[0].rcpts[i].orcpt, env.rcpts[i].orcpt);
		assert_int_equal(c.env[0].rcpts[i].notify, env.rcpts[i].notify);
	}
	assert_true(sg_mail_id_is_valid(c.env[0].id));
	assert_non_null(c.env[0].parent_id);
	assert_true(sg_mail_id_is_valid(c.env[0].parent_id));
	assert_string_not_equal(c.env[0].parent_id, c.env[0].id);
	collected_free(&c);
	/* with an ID: kept as the parent */
	sg_strlcpy(env.id, "0123456789ABCDEF", sizeof(env.id));
	assert_int_equal(mpa_process_stream(mpa, &env, fd, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.env[0].parent_id, "0123456789ABCDEF");
	collected_free(&c);
	spool_env_free_fields(&env);
	mpa_free(&mpa);
	close(fd);
}

/* A generated output (the D-7 notification) is written to a temporary file
 * and handed over from there. */
static void test_stream_generated_output(void **state)
{
	char *dir = mt_tmpdir();
	char *url = sg_xasprintf("sqlite:%s/db", dir);
	struct sg_error err;
	struct store *db = store_open(url, &err);
	struct mpa_conf conf = {.cfg = NULL, .db = db, .max_size = 10};
	struct mpa *mpa;
	struct spool_env env;
	struct collected c;
	int fd = msg_fd(msg, strlen(msg));

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_non_null(db);
	assert_int_equal(store_migrate(db, &err), 0);
	assert_int_equal(mta_setting_set(db, "relay_domains", "example.com", &err), 0);
	mpa = mpa_new(&conf, &err);
	mt_env(&env, "alice@example.com", 1);
	assert_int_equal(mpa_process_stream(mpa, &env, fd, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.env[0].kind, SPOOL_KIND_NOTIFICATION);
	assert_string_equal(c.env[0].sender, "");
	assert_string_equal(c.env[0].rcpts[0].addr, "alice@example.com");
	assert_non_null(strstr(c.body[0], "Auto-Submitted: auto-generated"));
	assert_null(strstr(c.body[0], "body"));
	assert_int_equal(c.len[0], strlen(c.body[0]));
	collected_free(&c);
	spool_env_free_fields(&env);
	mpa_free(&mpa);
	store_close(&db);
	close(fd);
	mt_rm_rf(dir);
	free(dir);
	free(url);
}

/* Failures are returned, never turned into a partial success. */
static void test_stream_failures(void **state)
{
	struct mpa_conf conf;
	struct sg_error err;
	struct mpa *mpa;
	struct spool_env env;
	struct collected c;
	int fd = msg_fd(msg, strlen(msg));
	int pfd[2];

	(void)state;
	memset(&conf, 0, sizeof(conf));
	memset(&c, 0, sizeof(c));
	mpa = mpa_new(&conf, &err);
	mt_env(&env, "alice@example.com", 1);
	c.fail_with = SG_E_NOSPACE;
	assert_int_equal(mpa_process_stream(mpa, &env, fd, collect, &c, &err), -1);
	assert_int_equal(err.code, SG_E_NOSPACE);
	c.fail_with = 0;
	spool_env_free_fields(&env);
	mt_env(&env, "alice@example.com", 0);
	assert_int_equal(mpa_process_stream(mpa, &env, fd, collect, &c, &err), -1);
	assert_int_equal(err.code, SG_E_PARSE);
	spool_env_free_fields(&env);
	mt_env(&env, "not-an-address", 1);
	assert_int_equal(mpa_process_stream(mpa, &env, fd, collect, &c, &err), -1);
	assert_int_equal(err.code, SG_E_PARSE);
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(mpa_process_stream(mpa, &env, pfd[0], collect, &c, &err), -1);
	assert_int_equal(mpa_process_stream(mpa, NULL, fd, collect, &c, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(c.n, 0);
	close(pfd[0]);
	close(pfd[1]);
	spool_env_free_fields(&env);
	mpa_free(&mpa);
	assert_null(mpa_new(NULL, &err));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_passthrough),
		cmocka_unit_test(test_stream_generated_output),
		cmocka_unit_test(test_stream_failures),
	};

	sg_log_init("test_mpa_stream", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
