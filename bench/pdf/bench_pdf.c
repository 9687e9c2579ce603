/*
 * bench_pdf.c - PDF encryption throughput and memory (issue 5 benchmark):
 * PDFs per second for a 20 KB text mail and for a mail with a 5 MB
 * attachment, and the peak RSS of a process that renders one mail with an
 * attachment of 5, 20 and 50 MB of random (incompressible) data, each
 * scenario in its own child process, so each peak is its own. The peak
 * over the text mail divided by the attachment size is the number of
 * copies held (2 with libqpdf 11.3, see src/pdf/pdf.h "Memory"). The
 * message is parsed from a file as the MPA does (mime_msg_parse_fd), the
 * PDF is written to a file.
 *
 * usage: bench_pdf [-n TEXT_ITERATIONS] [-m ATTACHMENT_ITERATIONS] [-d DIR]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <qpdf/qpdf-c.h>

#include "mime/mime.h"
#include "pdf/pdf.h"

static const char *g_dir = "/tmp";

/* write_text_mail - about 20 KB of text/plain */
static void write_text_mail(FILE *f)
{
	unsigned i;

	fputs("From: Alice <alice@example.com>\r\nTo: Bob <bob@example.net>\r\n"
		"Date: Mon, 30 Nov 2026 18:00:00 +0000\r\nSubject: Quarterly figures\r\n"
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", f);
	for (i = 0; i < 280; i++)
		fprintf(f, "%s%u: Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n",
			i % 10 == 0 ? "\r\n" : "", i);
}

/* write_attachment_mail - a short text and one attachment of size bytes */
static void write_attachment_mail(FILE *f, size_t size)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t x = 12345;
	size_t lines = (size + 56) / 57, i, j;
	char row[80];

	fputs("From: Alice <alice@example.com>\r\nTo: Bob <bob@example.net>\r\n"
		"Subject: The file\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nHere is the file.\r\n"
		"--b\r\nContent-Type: application/octet-stream; name=data.bin\r\n"
		"Content-Disposition: attachment; filename=data.bin\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n", f);
	/* random-looking base64 (does not compress), 57 bytes per 76 chars */
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
	fputs("--b--\r\n", f);
}

static char *make_file(const char *name, size_t attachment)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", g_dir, name) < 0)
		abort();
	f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	if (attachment == 0)
		write_text_mail(f);
	else
		write_attachment_mail(f, attachment);
	if (fclose(f) != 0)
		exit(1);
	return path;
}

/* render_once - parse path and write one encrypted PDF; returns its size */
static uint64_t render_once(const char *path)
{
	struct pdf_options o;
	struct pdf_result res;
	struct sg_error err;
	struct mime_msg *m;
	char *out;
	int fd, ofd;
	off_t len;

	fd = open(path, O_RDONLY);
	len = lseek(fd, 0, SEEK_END);
	m = mime_msg_parse_fd(fd, 0, (uint64_t)len, &err);
	close(fd);
	if (m == NULL) {
		fprintf(stderr, "parse: %s\n", err.msg);
		exit(1);
	}
	if (asprintf(&out, "%s/bench-out.pdf", g_dir) < 0)
		abort();
	ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	memset(&o, 0, sizeof(o));
	o.user_password = "BENCHPASSWORD234";
	o.tmp_dir = g_dir;
	if (pdf_message_write(m, &o, ofd, &res, &err) < 0) {
		fprintf(stderr, "pdf: %s\n", err.msg);
		exit(1);
	}
	close(ofd);
	unlink(out);
	free(out);
	mime_msg_free(&m);
	return res.size;
}

/* rate - PDFs per second over n renders of path (after one warm-up) */
static void rate(const char *label, const char *path, unsigned n)
{
	int64_t t0, t1;
	uint64_t size = render_once(path);
	unsigned i;

	t0 = sg_mono_ms();
	for (i = 0; i < n; i++)
		render_once(path);
	t1 = sg_mono_ms();
	printf("%-28s %8.1f PDFs/s  (%u renders in %.2f s, PDF %llu bytes)\n", label,
		n * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1), n, (t1 - t0) / 1000.0,
		(unsigned long long)size);
}

/* peak - peak RSS (MB) of a child that renders path once */
static double peak(const char *path)
{
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		render_once(path);
		_exit(0);
	}
	if (pid < 0 || wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child failed\n");
		exit(1);
	}
	return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv)
{
	unsigned n_text = 100, n_att = 10;
	static const size_t sizes[] = { 5u << 20, 20u << 20, 50u << 20 };
	char *text, *att[3], name[32];
	double base, mb;
	struct sg_error err;
	int c;
	size_t i;

	while ((c = getopt(argc, argv, "n:m:d:")) != -1) {
		if (c == 'n')
			n_text = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'm')
			n_att = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'd')
			g_dir = optarg;
		else
			return 2;
	}
	g_mime_init();
	if (pdf_init(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	text = make_file("bench-text.eml", 0);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "bench-att%zu.eml", i);
		att[i] = make_file(name, sizes[i]);
	}
	printf("bench/pdf: AES-256 (R6), one thread, messages parsed from files, libqpdf %s\n",
		qpdf_get_qpdf_version());
	rate("20 KB text mail", text, n_text);
	rate("mail + 5 MB attachment", att[0], n_att);
	base = peak(text);
	printf("peak RSS, 20 KB text mail:  %7.1f MB\n", base);
	for (i = 0; i < 3; i++) {
		mb = peak(att[i]);
		printf("peak RSS, %2zu MB attachment: %7.1f MB  (+%.1f MB over the text mail = "
			"%.2f x the attachment)\n", sizes[i] >> 20, mb, mb - base,
			(mb - base) / (double)(sizes[i] >> 20));
	}
	/* libqpdf before 11.7 copies each stream once more while writing it
	 * (Pl_Buffer::getBuffer), so expect about 2 x on 11.3 */
	printf("(random attachment data, stored as it is; libqpdf < 11.7 holds two copies of "
		"the largest embedded file while writing it)\n");
	unlink(text);
	free(text);
	for (i = 0; i < 3; i++) {
		unlink(att[i]);
		free(att[i]);
	}
	pdf_deinit();
	g_mime_shutdown();
	return 0;
}
