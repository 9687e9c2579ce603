/* test_mpa_memory.c - DESIGN "Streaming": a 200 MB message goes through
 * mpa_process_spooled with the peak RSS growing by less than 32 MB, and
 * comes out unchanged. Runs in a child so that ru_maxrss starts clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/wait.h>

#include "mpa_test.h"

#define BIG_SIZE (200ull << 20)
#define MAX_GROWTH_KB (32 * 1024)
#define LINE_LEN 76

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	while (n-- > 0)
		h = (h ^ *p++) * 1099511628211ull;
	return h;
}

/* big_message - a multipart message with a base64-looking attachment of
 * about BIG_SIZE bytes, written to incoming/; returns its hash. */
static uint64_t big_message(struct spool *sp, char *id, uint64_t *size_r)
{
	static const char head[] =
		"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n"
		"Subject: big\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n"
		"--BOUND\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
		"--BOUND\r\nContent-Type: application/octet-stream\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n";
	static const char tail[] = "--BOUND--\r\n";
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct spool_env env;
	struct sg_error err;
	struct spool_writer *w;
	unsigned char *chunk = sg_xmalloc(65536);
	uint64_t h = 14695981039346656037ull, size = 0;
	size_t i, pos = 0;
	unsigned seed = 1;

	mt_env(&env, "alice@example.com", 1);
	w = spool_writer_new(sp, &env, 0, &err);
	assert_non_null(w);
	sg_strlcpy(id, spool_writer_id(w), SG_MAIL_ID_LEN + 1);
	assert_int_equal(spool_writer_write(w, head, strlen(head), &err), 0);
	h = fnv(h, (const unsigned char *)head, strlen(head));
	size += strlen(head);
	/* lines of 76 base64 characters + CRLF, 65532-byte chunks (whole lines) */
	while (size < BIG_SIZE) {
		pos = 0;
		while (pos + LINE_LEN + 2 <= 65536) {
			for (i = 0; i < LINE_LEN; i++) {
				seed = seed * 1103515245u + 12345u;
				chunk[pos++] = (unsigned char)b64[(seed >> 16) & 63];
			}
			chunk[pos++] = '\r';
			chunk[pos++] = '\n';
		}
		assert_int_equal(spool_writer_write(w, chunk, pos, &err), 0);
		h = fnv(h, chunk, pos);
		size += pos;
	}
	assert_int_equal(spool_writer_write(w, tail, strlen(tail), &err), 0);
	h = fnv(h, (const unsigned char *)tail, strlen(tail));
	size += strlen(tail);
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_INCOMING, &err), 0);
	spool_env_free_fields(&env);
	free(chunk);
	*size_r = size;
	return h;
}

/* output_hash - hash of the only message in outgoing/. */
static uint64_t output_hash(struct spool *sp, const char *dir, uint64_t *size_r)
{
	char id[64];
	struct sg_error err;
	struct spool_msg *m;
	unsigned char *buf = sg_xmalloc(65536);
	uint64_t off, len, pos = 0, h = 14695981039346656037ull;
	int fd;

	assert_int_equal(mt_first(dir, "outgoing", id, sizeof(id)), 0);
	m = spool_msg_open(sp, SPOOL_Q_OUTGOING, id, &err);
	assert_non_null(m);
	fd = spool_msg_body_fd(m, &off, &len);
	while (pos < len) {
		size_t want = len - pos < 65536 ? (size_t)(len - pos) : 65536;
		ssize_t n = pread(fd, buf, want, (off_t)(off + pos));

		assert_true(n > 0);
		h = fnv(h, buf, (size_t)n);
		pos += (uint64_t)n;
	}
	spool_msg_close(&m);
	free(buf);
	*size_r = len;
	return h;
}

static void test_200mb_streams(void **state)
{
	char *dir = mt_tmpdir();
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mpa_conf conf;
		struct sg_error err;
		struct spool *sp = spool_open(dir, &err);
		struct mpa *mpa;
		char id[SG_MAIL_ID_LEN + 1];
		uint64_t h_in, h_out, size_in, size_out;
		long before, after;

		memset(&conf, 0, sizeof(conf));
		conf.max_size = 512000000;
		if (sp == NULL)
			_exit(10);
		mpa = mpa_new(&conf, &err);
		h_in = big_message(sp, id, &size_in);
		before = maxrss_kb();
		if (mpa_process_spooled(mpa, sp, id, &err) != 0) {
			fprintf(stderr, "process: %s\n", err.msg);
			_exit(11);
		}
		after = maxrss_kb();
		fprintf(stderr, "maxrss before %ld KiB, after %ld KiB, growth %ld KiB "
			"(limit %d)\n", before, after, after - before, MAX_GROWTH_KB);
		if (after - before >= MAX_GROWTH_KB)
			_exit(12);
		if (mt_count(dir, "incoming") != 0 || mt_count(dir, "outgoing") != 1)
			_exit(13);
		h_out = output_hash(sp, dir, &size_out);
		if (size_out != size_in || h_out != h_in)
			_exit(14);
		mpa_free(&mpa);
		spool_close(&sp);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	mt_rm_rf(dir);
	free(dir);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_200mb_streams),
	};

	sg_log_init("test_mpa_memory", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
