/* test_pdf_errors.c - error paths of pdf_message_write (fail closed, work
 * directory always removed): a full disk while decoding attachments, an
 * unwritable output fd, a missing work directory, nesting deeper than
 * MIME_MAX_DEPTH, an opaque message, bad arguments. No external programs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/resource.h>

#include "pdf_test.h"

static char *g_work;

static int setup(void **state)
{
	(void)state;
	g_work = test_mkdtemp();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_rm_rf(g_work);
	free(g_work);
	return 0;
}

static struct pdf_options opts(void)
{
	struct pdf_options o;

	memset(&o, 0, sizeof(o));
	o.user_password = "ERRORTEST234";
	o.tmp_dir = g_work;
	return o;
}

static const char small_msg[] = "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n";

/* render into a fresh output file in g_work's parent dir; returns rc */
static int render_to(const char *text, size_t len, const struct pdf_options *o, int out_fd,
	struct sg_error *err)
{
	struct mime_msg *m = test_parse(text, len);
	int rc = pdf_message_write(m, o, out_fd, NULL, err);

	mime_msg_free(&m);
	return rc;
}

/* A write error on a work file (the file size limit stands in for a full
 * disk): SG_E_IO, nothing written to the output, no work files left. Runs
 * in a child because the limit is per process. */
static void test_F_PDF_1_work_file_write_error(void **state)
{
	struct sg_buf b;
	struct sg_error err;
	unsigned i;
	int status;
	pid_t pid;

	(void)state;
	sg_buf_init(&b, 16u << 20);
	sg_buf_append_str(&b, "From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		"Content-Type: application/octet-stream\r\n"
		"Content-Disposition: attachment; filename=big.bin\r\n\r\n", &err);
	for (i = 0; i < 40000; i++) /* 2.4 MB */
		sg_buf_append_str(&b, "0123456789012345678901234567890123456789012345678901234567\r\n",
			&err);
	sg_buf_append_str(&b, "--b--\r\n", &err);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 1u << 20, 1u << 20 };
		struct pdf_options o = opts();
		struct mime_msg *m = test_parse(b.data, b.len); /* before the limit */
		char out[4096];
		int fd, rc;

		snprintf(out, sizeof(out), "%s.out", g_work);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		signal(SIGXFSZ, SIG_IGN);
		if (fd < 0 || setrlimit(RLIMIT_FSIZE, &rl) < 0)
			_exit(10);
		rc = pdf_message_write(m, &o, fd, NULL, &err);
		close(fd);
		if (rc != -1 || err.code != SG_E_IO)
			_exit(11);
		if (strstr(err.msg, "attachment 1") == NULL)
			_exit(12);
		if (test_file_size(out) != 0 || test_dir_entries(g_work) != 0)
			_exit(13);
		unlink(out);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	sg_buf_deinit(&b);
}

/* The output fd refuses writes: SG_E_IO after the PDF was built. */
static void test_F_PDF_1_output_write_error(void **state)
{
	struct pdf_options o = opts();
	struct sg_error err;
	int fd = open("/dev/null", O_RDONLY);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(render_to(small_msg, strlen(small_msg), &o, fd, &err), -1);
	assert_int_equal(err.code, SG_E_IO);
	close(fd);
	assert_int_equal(test_dir_entries(g_work), 0);
}

static void test_F_PDF_1_missing_work_dir(void **state)
{
	struct pdf_options o = opts();
	struct sg_error err;
	int fd = open("/dev/null", O_WRONLY);

	(void)state;
	o.tmp_dir = "/nonexistent/sealgate-pdf-test";
	assert_int_equal(render_to(small_msg, strlen(small_msg), &o, fd, &err), -1);
	assert_int_equal(err.code, SG_E_IO);
	close(fd);
}

/* MIME_MAX_DEPTH nested messages and more: SG_E_LIMIT (fail closed). */
static void test_F_PDF_1_too_deep(void **state)
{
	struct pdf_options o = opts();
	struct sg_error err;
	struct sg_buf b;
	unsigned i;
	int fd = open("/dev/null", O_WRONLY);

	(void)state;
	sg_buf_init(&b, 1u << 20);
	for (i = 0; i < MIME_MAX_DEPTH + 5; i++)
		sg_buf_append_str(&b, "From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n",
			&err);
	sg_buf_append_str(&b, "From: z@example.com\r\n\r\ninnermost\r\n", &err);
	assert_int_equal(render_to(b.data, b.len, &o, fd, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(test_dir_entries(g_work), 0);
	close(fd);
	sg_buf_deinit(&b);
}

/* More possible boundaries than the MIME layer parses: the message is
 * opaque and cannot be rendered: SG_E_LIMIT. */
static void test_F_PDF_1_opaque_message(void **state)
{
	struct pdf_options o = opts();
	struct sg_error err;
	struct sg_buf b;
	unsigned i;
	int fd = open("/dev/null", O_WRONLY);

	(void)state;
	sg_buf_init(&b, 1u << 20);
	sg_buf_append_str(&b, "From: a@example.com\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=x\r\n\r\n", &err);
	for (i = 0; i < MIME_MAX_BOUNDARY_LINES + 10; i++)
		sg_buf_append_str(&b, "--x\r\n\r\n", &err);
	{
		struct mime_msg *m = test_parse(b.data, b.len);

		assert_true(mime_msg_is_opaque(m));
		assert_int_equal(pdf_message_write(m, &o, fd, NULL, &err), -1);
		assert_int_equal(err.code, SG_E_LIMIT);
		mime_msg_free(&m);
	}
	assert_int_equal(test_dir_entries(g_work), 0);
	close(fd);
	sg_buf_deinit(&b);
}

static void test_F_PDF_1_bad_arguments(void **state)
{
	struct pdf_options o = opts();
	struct sg_error err;
	struct mime_msg *m = test_parse(small_msg, strlen(small_msg));

	(void)state;
	assert_int_equal(pdf_message_write(NULL, &o, 1, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pdf_message_write(m, NULL, 1, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pdf_message_write(m, &o, -1, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.cipher = (enum pdf_cipher)7;
	assert_int_equal(pdf_message_write(m, &o, 1, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o = opts();
	o.user_password = NULL;
	assert_int_equal(pdf_message_write(m, &o, 1, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	mime_msg_free(&m);
	assert_int_equal(test_dir_entries(g_work), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_F_PDF_1_work_file_write_error),
		cmocka_unit_test(test_F_PDF_1_output_write_error),
		cmocka_unit_test(test_F_PDF_1_missing_work_dir),
		cmocka_unit_test(test_F_PDF_1_too_deep),
		cmocka_unit_test(test_F_PDF_1_opaque_message),
		cmocka_unit_test(test_F_PDF_1_bad_arguments),
	};
	struct sg_error err;
	int rc;

	g_mime_init();
	if (pdf_init(&err) < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, setup, teardown);
	pdf_deinit();
	g_mime_shutdown();
	return rc;
}
