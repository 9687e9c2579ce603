/* test_pdf_memory.c - F-PDF-1 streaming (DESIGN "Streaming", issue 5 peak
 * RSS): rendering does not load the message; peak memory depends on the
 * stored size of the largest embedded file only, not on the number or total
 * size of the attachments.
 *
 * The bound asserted is the one libqpdf 11.3 (Debian 12) allows: about TWO
 * copies of the largest embedded file as stored in the PDF (deflated when
 * it compresses). QPDFWriter::unparseObject collects every stream in a
 * Pl_Buffer (one copy, a std::string) to learn its /Length, and
 * Pl_Buffer::getBuffer then memcpy()s that into a new Buffer (the second)
 * before the first is freed; see pdf.h "Memory". qpdf 11.7 moves the data
 * instead of copying it, which would leave one copy.
 *
 * Each render runs in a fresh child process, so each peak RSS is its own.
 * The ASan build runs this with quarantine_size_mb=0 (set by CMake): freed
 * memory would otherwise stay resident and be counted; its shadow memory
 * (1/8 of what is touched) is allowed for in the bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "pdf_test.h"

#define MB (1024.0 * 1024.0)

#if defined(__SANITIZE_ADDRESS__)
#define COPY_FACTOR 2.0 * 1.125 /* shadow bytes of both copies */
#define SLACK_MB 10.0
#else
#define COPY_FACTOR 2.0
#define SLACK_MB 6.0
#endif

static char *g_dir;

enum fill {
	FILL_RANDOM,        /* incompressible (like ZIP, JPEG, PDF) */
	FILL_COMPRESSIBLE,  /* deflates to about half */
};

/* write_mail - a message with n attachments of size bytes each, written to
 * a file without holding it in memory */
static char *write_mail(const char *name, unsigned n, size_t size, enum fill fill)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	/* FILL_COMPRESSIBLE: base64 characters from 4 values, so each
	 * decoded 6-bit group carries 2 bits */
	unsigned mask = fill == FILL_RANDOM ? 63 : 3;
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
				row[j] = b64[x & mask];
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

/* peak_mb - peak RSS (MB) of a child that renders path once; *pdf_mb_r
 * (may be NULL) gets the size of the PDF it wrote */
static double peak_mb(const char *path, double *pdf_mb_r)
{
	char *out = g_strdup_printf("%s/out.pdf", g_dir);
	struct rusage ru;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct pdf_options o;
		struct pdf_result res;
		struct sg_error err;
		struct mime_msg *m;
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
	if (pdf_mb_r != NULL)
		*pdf_mb_r = (double)test_file_size(out) / MB;
	g_free(out);
	return ru.ru_maxrss / 1024.0;
}

static int setup(void **state)
{
	(void)state;
	g_dir = test_mkdtemp();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_rm_rf(g_dir);
	free(g_dir);
	return 0;
}

/* 28 MB more attachments (8 x 4 MB instead of 1 x 4 MB) cost (almost)
 * nothing more: qpdf holds one embedded file at a time, the rest stream
 * from the work files; the work directory is gone afterwards. */
static void test_F_PDF_1_memory_independent_of_attachment_count(void **state)
{
	char *text = write_mail("text.eml", 0, 0, FILL_RANDOM);
	char *one4 = write_mail("one4.eml", 1, 4u << 20, FILL_RANDOM);
	char *eight4 = write_mail("eight4.eml", 8, 4u << 20, FILL_RANDOM);
	double p_text, p_one4, p_eight4;

	(void)state;
	p_text = peak_mb(text, NULL);
	p_one4 = peak_mb(one4, NULL);
	p_eight4 = peak_mb(eight4, NULL);
	print_message("peak RSS: text %.1f MB, 1 x 4 MB %.1f, 8 x 4 MB %.1f\n", p_text, p_one4,
		p_eight4);
	if (p_eight4 - p_one4 > 6.0)
		fail_msg("8 x 4 MB took %.1f MB more than 1 x 4 MB", p_eight4 - p_one4);
	assert_int_equal(test_dir_entries(g_dir), 4); /* 3 mails + out.pdf, no work dirs */
	g_free(text);
	g_free(one4);
	g_free(eight4);
}

/* A 40 MB incompressible attachment: peak RSS - text-only peak is at most
 * two copies of what the PDF stores of it plus a constant (libqpdf 11.3),
 * and each further MB of attachment costs at most two MB. */
static void test_F_PDF_1_memory_two_copies_of_largest_attachment(void **state)
{
	char *text = write_mail("text.eml", 0, 0, FILL_RANDOM);
	char *small = write_mail("r8.eml", 1, 8u << 20, FILL_RANDOM);
	char *big = write_mail("r40.eml", 1, 40u << 20, FILL_RANDOM);
	double p_text, p_small, p_big, pdf_small, pdf_big, per_mb;

	(void)state;
	p_text = peak_mb(text, NULL);
	p_small = peak_mb(small, &pdf_small);
	p_big = peak_mb(big, &pdf_big);
	per_mb = (p_big - p_small) / (pdf_big - pdf_small);
	print_message("peak RSS: text %.1f MB, 8 MB %.1f (PDF %.1f MB), 40 MB %.1f (PDF %.1f MB): "
		"%.2f MB per MB of attachment\n", p_text, p_small, pdf_small, p_big, pdf_big, per_mb);
	/* random data is stored as it is */
	assert_true(pdf_big > 40.0 && pdf_big < 40.5);
	if (p_big - p_text > COPY_FACTOR * pdf_big + SLACK_MB)
		fail_msg("a 40 MB attachment took %.1f MB (bound %.1f)", p_big - p_text,
			COPY_FACTOR * pdf_big + SLACK_MB);
	if (per_mb > COPY_FACTOR + 0.1)
		fail_msg("%.2f MB of memory per MB of attachment", per_mb);
	g_free(text);
	g_free(small);
	g_free(big);
}

/* A 40 MB attachment that deflates: the PDF stores it deflated, and the
 * peak follows the stored size (two copies of it), far below the
 * incompressible case. */
static void test_F_PDF_1_memory_follows_stored_size(void **state)
{
	char *text = write_mail("text.eml", 0, 0, FILL_RANDOM);
	char *big = write_mail("c40.eml", 1, 40u << 20, FILL_COMPRESSIBLE);
	double p_text, p_big, pdf_big;

	(void)state;
	p_text = peak_mb(text, NULL);
	p_big = peak_mb(big, &pdf_big);
	print_message("peak RSS: text %.1f MB, compressible 40 MB %.1f (PDF %.1f MB)\n", p_text,
		p_big, pdf_big);
	assert_true(pdf_big < 30.0); /* it was deflated */
	if (p_big - p_text > COPY_FACTOR * pdf_big + SLACK_MB)
		fail_msg("a 40 MB attachment stored as %.1f MB took %.1f MB (bound %.1f)", pdf_big,
			p_big - p_text, COPY_FACTOR * pdf_big + SLACK_MB);
	g_free(text);
	g_free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_F_PDF_1_memory_independent_of_attachment_count,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_F_PDF_1_memory_two_copies_of_largest_attachment,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_F_PDF_1_memory_follows_stored_size, setup,
			teardown),
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
