/* test_pdf_memory.c - F-PDF-1 streaming (DESIGN "Streaming"): rendering does
 * not load the message; peak memory depends on the largest attachment only
 * (libqpdf 11 holds one embedded stream at a time, at most about two copies
 * of it), not on the number or total size of the attachments.
 * Each render runs in a fresh child process, so each peak RSS is its own.
 * The ASan build runs this with quarantine_size_mb=0 (set by CMake): freed
 * memory would otherwise stay resident and be counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "pdf_test.h"

#define MB (1024.0 * 1024.0)

static char *g_dir;

/* write_mail - a message with n attachments of size bytes each, written to
 * a file without holding it in memory */
static char *write_mail(const char *name, unsigned n, size_t size)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *path = g_strdup_printf("%s/%s", g_dir, name);
	FILE *f = fopen(path, "wb");
	uint32_t x = 99;
	size_t lines = (size + 56) / 57, i, j;
	unsigned k;
	char row[80];

	assert_non_null(f);
	fputs("From: a@example.com\r\nTo: b@example.net\r\nSubject: mem\r\n"
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n", f);
	for (k = 0; k < n; k++) {
		fprintf(f, "--b\r\nContent-Type: application/octet-stream\r\n"
			"Content-Disposition: attachment; filename=f%u.bin\r\n"
			"Content-Transfer-Encoding: base64\r\n\r\n", k);
		for (i = 0; i < lines; i++) {
			for (j = 0; j < 76; j++) {
				x ^= x << 13;
				x ^= x >> 17;
				x ^= x << 5;
				row[j] = b64[x & 63];
			}
			row[76] = '\r';
			row[77] = '\n';
			fwrite(row, 1, 78, f);
		}
	}
	fputs("--b--\r\n", f);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* peak_mb - peak RSS (MB) of a child that renders path once */
static double peak_mb(const char *path)
{
	struct rusage ru;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct pdf_options o;
		struct pdf_result res;
		struct sg_error err;
		struct mime_msg *m;
		char *out = g_strdup_printf("%s/out.pdf", g_dir);
		int fd = open(path, O_RDONLY), ofd;
		off_t len = lseek(fd, 0, SEEK_END);

		m = mime_msg_parse_fd(fd, 0, (uint64_t)len, &err);
		close(fd);
		ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		memset(&o, 0, sizeof(o));
		o.user_password = "MEMTEST2345";
		o.tmp_dir = g_dir;
		if (m == NULL || ofd < 0 || pdf_message_write(m, &o, ofd, &res, &err) < 0)
			_exit(1);
		_exit(0);
	}
	assert_true(wait4(pid, &status, 0, &ru) == pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return ru.ru_maxrss / 1024.0;
}

static void test_F_PDF_1_memory_bounded_by_largest_attachment(void **state)
{
	char *text, *one4, *eight4, *one16;
	double p_text, p_one4, p_eight4, p_one16;

	(void)state;
	g_dir = test_mkdtemp();
	text = write_mail("text.eml", 0, 0);
	one4 = write_mail("one4.eml", 1, 4u << 20);
	eight4 = write_mail("eight4.eml", 8, 4u << 20);
	one16 = write_mail("one16.eml", 1, 16u << 20);
	p_text = peak_mb(text);
	p_one4 = peak_mb(one4);
	p_eight4 = peak_mb(eight4);
	p_one16 = peak_mb(one16);
	print_message("peak RSS: text %.1f MB, 1x4 MB %.1f, 8x4 MB %.1f, 1x16 MB %.1f\n",
		p_text, p_one4, p_eight4, p_one16);
	/* 28 MB more attachments cost (almost) nothing more */
	if (p_eight4 - p_one4 > 6.0)
		fail_msg("8 x 4 MB took %.1f MB more than 1 x 4 MB", p_eight4 - p_one4);
	/* at most ~2 copies of the largest attachment (qpdf's stream buffer) */
	if (p_one16 - p_text > 2.5 * 16)
		fail_msg("a 16 MB attachment took %.1f MB", p_one16 - p_text);
	if (p_one16 - p_one4 > 2.5 * 12)
		fail_msg("16 MB vs 4 MB attachment: +%.1f MB", p_one16 - p_one4);
	assert_int_equal(test_dir_entries(g_dir), 5); /* 4 mails + out.pdf, no work dirs */
	g_free(text);
	g_free(one4);
	g_free(eight4);
	g_free(one16);
	test_rm_rf(g_dir);
	free(g_dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_F_PDF_1_memory_bounded_by_largest_attachment),
	};
	struct sg_error err;
	int rc;

	g_mime_init();
	if (pdf_init(&err) < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pdf_deinit();
	g_mime_shutdown();
	return rc;
}
