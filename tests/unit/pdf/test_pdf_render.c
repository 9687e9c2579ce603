/* test_pdf_render.c - F-PDF-1/F-PDF-2 end to end: messages rendered to
 * encrypted PDFs and checked with independent tools only: qpdf --check and
 * --show-encryption, pdftotext -upw (text, wrong/missing password),
 * pdfdetach -upw (every attachment byte-identical), pdffonts, pdftoppm.
 * Bad input: 1,000 attachments, 0-byte attachments, broken base64, unknown
 * charsets, an attachment over the size limit, too many pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pdf_test.h"

#define PW "Sesam-Öffne-Dich 42"
#define PW128 "Open-Sesame-42"

static char *g_work;   /* tmp_dir given to pdf_message_write: must stay empty */

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

static struct pdf_options opts(const char *pw)
{
	struct pdf_options o;

	memset(&o, 0, sizeof(o));
	o.user_password = pw;
	o.cipher = PDF_CIPHER_AES256;
	o.tmp_dir = g_work;
	o.mail_id = "0123456789ABCDEF";
	return o;
}

/* check_pdf - qpdf --check clean, the right security handler, unreadable
 * without or with a wrong password; returns the text (caller frees) */
static char *check_pdf(const char *path, const char *pw, const char *want_r)
{
	char pwarg[256], *out = NULL;
	const char *check[] = { "qpdf", "--check", pwarg, path, NULL };
	const char *enc[] = { "qpdf", "--show-encryption", pwarg, path, NULL };
	const char *text[] = { "pdftotext", "-enc", "UTF-8", "-upw", pw, path, "-", NULL };
	const char *nopw[] = { "pdftotext", path, "-", NULL };
	const char *badpw[] = { "pdftotext", "-upw", "wrong password", path, "-", NULL };
	int rc;

	snprintf(pwarg, sizeof(pwarg), "--password=%s", pw);
	rc = test_run(check, &out, 1);
	if (rc != 0 || strstr(out, "No syntax or stream encoding errors found") == NULL)
		fail_msg("qpdf --check %s: rc %d: %s", path, rc, out);
	free(out);
	assert_int_equal(test_run(enc, &out, 1), 0);
	if (strstr(out, want_r) == NULL)
		fail_msg("show-encryption: want %s in %s", want_r, out);
	free(out);
	assert_int_not_equal(test_run(nopw, NULL, 0), 0);
	assert_int_not_equal(test_run(badpw, NULL, 0), 0);
	assert_int_equal(test_run(text, &out, 0), 0);
	return out;
}

static void assert_has(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("want \"%s\" in the PDF text:\n%.3000s", want, text);
}

static void assert_lacks(const char *text, const char *bad)
{
	if (strstr(text, bad) != NULL)
		fail_msg("\"%s\" must not be in the PDF text", bad);
}

static const char msg_plain[] =
	"From: Alice Example <alice@example.com>\r\n"
	"To: Bob Beispiel <bob@example.net>\r\n"
	"Cc: carol@example.org\r\n"
	"Date: Mon, 30 Nov 2026 18:00:00 +0000\r\n"
	"Subject: =?UTF-8?Q?Quartalsbericht_f=C3=BCr_Q4?=\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"Hello Bob,\r\n"
	"\r\n"
	"CJK: \xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\r\n"
	"Arabic: \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7\r\n"
	"Hebrew: \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d\r\n"
	"Tab\there and control\x01 bytes \x7f dropped.\r\n"
	"Regards, Alice\r\n";

/* F-PDF-1/2: header block, body incl. CJK and Arabic, AES-256 (R6), fonts,
 * page image. */
static void test_F_PDF_1_plain_text_headers_scripts(void **state)
{
	char *dir = test_mkdtemp(), path[4096], png[4200], *text, *fonts = NULL;
	struct pdf_options o = opts(PW);
	struct pdf_result res;
	struct sg_error err;
	const char *pf[] = { "pdffonts", "-upw", PW, path, NULL };
	const char *ppm[] = { "pdftoppm", "-upw", PW, "-r", "60", "-f", "1", "-l", "1", "-png",
		path, png, NULL };
	const char *look = getenv("SG_PDF_LOOK");
	char *img;
	size_t imglen;

	(void)state;
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", &res,
		&err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	assert_int_equal(res.size, (uint64_t)test_file_size(path));
	assert_int_equal(res.pages, 1);
	assert_int_equal(res.attachments, 0);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "From:");
	assert_has(text, "Alice Example <alice@example.com>");
	assert_has(text, "Bob Beispiel <bob@example.net>");
	assert_has(text, "Cc:");
	assert_has(text, "carol@example.org");
	assert_has(text, "Mon, 30 Nov 2026 18:00:00 +0000");
	assert_has(text, "Quartalsbericht f\xc3\xbcr Q4");
	assert_has(text, "Hello Bob,");
	assert_has(text, "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c");
	assert_has(text, "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7");
	/* Hebrew is drawn too; pdftotext splits its words at glyph gaps, so
	 * only the prefix is checked */
	assert_has(text, "Hebrew:");
	assert_has(text, "bytes");
	assert_lacks(text, "\x01");
	free(text);
	/* a CJK font was really used (no hex boxes) */
	assert_int_equal(test_run(pf, &fonts, 0), 0);
	if (strstr(fonts, "WenQuanYi") == NULL && strstr(fonts, "Noto") == NULL &&
	    strstr(fonts, "CJK") == NULL)
		fail_msg("no CJK font embedded:\n%s", fonts);
	free(fonts);
	/* the page renders to an image */
	snprintf(png, sizeof(png), "%s/page", dir);
	assert_int_equal(test_run(ppm, NULL, 0), 0);
	snprintf(png, sizeof(png), "%s/page-1.png", dir);
	img = test_read_file(png, &imglen);
	assert_non_null(img);
	assert_true(imglen > 1000);
	assert_memory_equal(img, "\x89PNG", 4);
	if (look != NULL && look[0] != '\0') {
		struct sg_error e2;

		sg_file_write_atomic(look, img, imglen, 0644, &e2);
	}
	free(img);
	assert_int_equal(test_dir_entries(g_work), 0);
	test_rm_rf(dir);
	free(dir);
}

/* F-PDF-2: AES-128 is R4 with AES (AESV2). */
static void test_F_PDF_2_aes128(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *text;
	struct pdf_options o = opts(PW128);
	struct sg_error err;

	(void)state;
	o.cipher = PDF_CIPHER_AES128;
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	text = check_pdf(path, PW128, "R = 4");
	assert_has(text, "Hello Bob,");
	free(text);
	{
		char *out = NULL;
		const char *enc[] = { "qpdf", "--show-encryption", "--password=" PW128, path, NULL };

		assert_int_equal(test_run(enc, &out, 1), 0);
		assert_has(out, "AESv2");
		free(out);
	}
	test_rm_rf(dir);
	free(dir);
}

static void test_F_PDF_2_bad_passwords_and_links(void **state)
{
	char *dir = test_mkdtemp();
	struct pdf_options o = opts("");
	struct sg_error err;
	char path[4096];

	(void)state;
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.user_password = "p\xc3\xa4ss";
	o.cipher = PDF_CIPHER_AES128; /* R4 passwords are PDFDocEncoding: ASCII only */
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.user_password = "123456789012345678901234567890123"; /* 33 > 32 */
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.user_password = "tab\tin password";
	o.cipher = PDF_CIPHER_AES256;
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.user_password = PW;
	o.reply_link = "javascript:alert(1)";
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	o.reply_link = "https://x.example/a b";
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(test_file_size(path), 0);
	assert_int_equal(test_dir_entries(g_work), 0);
	test_rm_rf(dir);
	free(dir);
}

/* --------------------------------------------------------- attachments */

/* b64 - base64 of data in 76-column lines (caller frees) */
static char *b64(const void *data, size_t len)
{
	gchar *flat = g_base64_encode(data, len);
	size_t n = strlen(flat), i, o = 0;
	char *out = malloc(n + n / 76 * 2 + 4);

	assert_non_null(out);
	for (i = 0; i < n; i++) {
		out[o++] = flat[i];
		if (i % 76 == 75) {
			out[o++] = '\r';
			out[o++] = '\n';
		}
	}
	out[o] = '\0';
	g_free(flat);
	return out;
}

static void fill_random(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;
	uint32_t x = seed * 2654435761u + 1;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

/* compare_file - dir/name holds exactly data */
static void compare_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096], *got;
	size_t glen = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	got = test_read_file(path, &glen);
	if (got == NULL)
		fail_msg("attachment %s was not extracted", name);
	if (glen != len || (len > 0 && memcmp(got, data, len) != 0))
		fail_msg("attachment %s differs: %zu bytes, want %zu", name, glen, len);
	free(got);
}

/* F-PDF-1: every attachment, 0-byte ones, RFC 2231 names, a nested message
 * (as .eml, its own attachment too, its body shown); byte-identical. */
static void test_F_PDF_1_attachments_byte_identical(void **state)
{
	char *dir = test_mkdtemp(), *xdir, path[4096], *text, *list = NULL, *msg, *b1;
	static unsigned char bin[150000];
	static const char csv[] = "a;b\r\n1;2\r\n";
	/* the CRLF before a boundary belongs to the boundary (RFC 2046) */
	static const char resume[] = "r\xc3\xa9sum\xc3\xa9 text";
	struct pdf_options o = opts(PW);
	struct pdf_result res;
	struct sg_error err;
	const char *lst[] = { "pdfdetach", "-upw", PW, "-list", path, NULL };
	const char *qlst[] = { "qpdf", "--password=" PW, "--list-attachments", "--verbose",
		path, NULL };
	char *ql = NULL;

	(void)state;
	fill_random(bin, sizeof(bin), 7);
	b1 = b64(bin, sizeof(bin));
	msg = g_strdup_printf(
		"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: files\r\n"
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
		"--outer\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the files.\r\n"
		"--outer\r\nContent-Type: application/octet-stream; name=\"report.bin\"\r\n"
		"Content-Disposition: attachment; filename=\"report.bin\"\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
		"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Disposition: attachment; filename*=utf-8''r%%C3%%A9sum%%C3%%A9.txt\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nr=C3=A9sum=C3=A9 text\r\n"
		"--outer\r\nContent-Type: application/x-empty\r\n"
		"Content-Disposition: attachment; filename=\"empty.dat\"\r\n\r\n"
		"--outer\r\nContent-Type: application/vnd.test; name=\"../../etc/evil.txt\"\r\n"
		"Content-Disposition: attachment; filename=\"../../etc/evil.txt\"\r\n\r\nx\r\n"
		"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
		"From: dave@example.com\r\nTo: alice@example.com\r\nSubject: inner subject\r\n"
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n"
		"--inner\r\nContent-Type: text/plain\r\n\r\nInner body text.\r\n"
		"--inner\r\nContent-Type: text/csv; name=inner.csv\r\n"
		"Content-Disposition: attachment; filename=inner.csv\r\n\r\n%s"
		"\r\n--inner--\r\n"
		"\r\n--outer--\r\n", b1, "a;b\r\n1;2\r\n");
	assert_int_equal(test_render(msg, strlen(msg), &o, dir, "a.pdf", &res, &err), 0);
	assert_int_equal(res.attachments, 6);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "See the files.");
	assert_has(text, "Attached:");
	assert_has(text, "report.bin (146.5 KB)");
	assert_has(text, "empty.dat (0 bytes)");
	assert_has(text, "inner subject");
	assert_has(text, "dave@example.com");
	assert_has(text, "Inner body text.");
	free(text);
	{
		/* nothing readable without the password: names, subject, text */
		size_t rawlen = 0;
		char *raw = test_read_file(path, &rawlen);

		assert_non_null(raw);
		assert_null(memmem(raw, rawlen, "report.bin", 10));
		assert_null(memmem(raw, rawlen, "inner.csv", 9));
		assert_null(memmem(raw, rawlen, "files", 5)); /* the subject (title) */
		assert_null(memmem(raw, rawlen, "dave@example.com", 16));
		/* the whole CSV body: a 3-byte pattern turns up by chance in
		 * about 1 of 100 encrypted files of this size */
		assert_null(memmem(raw, rawlen, "a;b\r\n1;2\r\n", 10));
		free(raw);
	}
	assert_int_equal(test_run(lst, &list, 0), 0);
	assert_has(list, "6 embedded files");
	assert_has(list, "r\xc3\xa9sum\xc3\xa9.txt");
	assert_has(list, "evil.txt");
	assert_lacks(list, "../");
	free(list);
	/* MIME types are recorded (qpdf shows /Subtype) */
	assert_int_equal(test_run(qlst, &ql, 1), 0);
	assert_has(ql, "application/octet-stream");
	assert_has(ql, "message/rfc822");
	assert_has(ql, "text/csv");
	assert_has(ql, "application/x-empty");
	free(ql);
	xdir = g_strdup_printf("%s/x", dir);
	assert_int_equal(mkdir(xdir, 0700), 0);
	{
		const char *save[] = { "pdfdetach", "-upw", PW, "-saveall", "-o", xdir, path, NULL };

		assert_int_equal(test_run(save, NULL, 0), 0);
	}
	compare_file(xdir, "report.bin", bin, sizeof(bin));
	compare_file(xdir, "r\xc3\xa9sum\xc3\xa9.txt", resume, strlen(resume));
	compare_file(xdir, "empty.dat", "", 0);
	compare_file(xdir, "evil.txt", "x", 1);
	compare_file(xdir, "inner.csv", csv, strlen(csv));
	{
		/* the .eml is the nested message */
		char p[4200], *eml;

		snprintf(p, sizeof(p), "%s/message-1.eml", xdir);
		eml = test_read_file(p, NULL);
		assert_non_null(eml);
		assert_has(eml, "Subject: inner subject");
		assert_has(eml, "Inner body text.");
		assert_has(eml, "filename=inner.csv");
		free(eml);
	}
	assert_int_equal(test_dir_entries(xdir), 6);
	assert_int_equal(test_dir_entries(g_work), 0);
	g_free(xdir);
	g_free(msg);
	free(b1);
	test_rm_rf(dir);
	free(dir);
}

/* repeated file names get " (2)": nothing is overwritten on extraction */
static void test_F_PDF_1_duplicate_names(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *list = NULL;
	static const char msg[] =
		"From: a@example.com\r\nSubject: dup\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt"
		"\r\n\r\none\r\n"
		"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=A.txt"
		"\r\n\r\ntwo\r\n"
		"--b\r\nContent-Type: image/png\r\n\r\nnoname\r\n"
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
		"filename*=utf-8''invoice%E2%80%AEtxt.exe\r\n\r\nMZ\r\n--b--\r\n";
	struct pdf_options o = opts(PW);
	struct sg_error err;
	const char *lst[] = { "pdfdetach", "-upw", PW, "-list", path, NULL };

	(void)state;
	assert_int_equal(test_render(msg, strlen(msg), &o, dir, "a.pdf", NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	assert_int_equal(test_run(lst, &list, 0), 0);
	assert_has(list, "a.txt");
	assert_has(list, "A (2).txt");
	assert_has(list, "attachment-3.png");
	/* the right-to-left override that would show "exe.txt" is removed */
	assert_has(list, "invoicetxt.exe");
	assert_lacks(list, "\xe2\x80\xae");
	free(list);
	test_rm_rf(dir);
	free(dir);
}

/* ------------------------------------------------------------------ HTML */

/* F-PDF-1: HTML shown as text (structure, links, tables, lists); scripts
 * and styles dropped; nothing fetched: a listener on 127.0.0.1 named by
 * img, link and iframe sees no connection. */
static void test_F_PDF_1_html_as_text_no_fetch(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *text, *msg;
	struct pdf_options o = opts(PW);
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct sg_error err;
	int ls, one = 1, port, c;

	(void)state;
	ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(ls >= 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 8), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &salen), 0);
	port = ntohs(sa.sin_port);
	msg = g_strdup_printf(
		"From: news@example.com\r\nTo: bob@example.net\r\nSubject: html\r\n"
		"MIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"<html><head><title>TITLE-HIDDEN</title>"
		"<link rel=3Dstylesheet href=3D\"http://127.0.0.1:%d/s.css\">"
		"<style>body { color: red }</style></head><body>"
		"<script>alert('SCRIPT-HIDDEN')</script>"
		"<h1>Quarterly Report</h1><p>Read <a href=3D\"https://example.com/r\">the report"
		"</a> or <a href=3D\"https://example.org/\">https://example.org/</a>.</p>"
		"<table><tr><th>Name</th><th>Value</th></tr><tr><td>alpha</td><td>42</td></tr>"
		"</table><ul><li>first item</li><li>second item</li></ul>"
		"<ol><li>one</li><li><p>two</p></li></ol>"
		"<img src=3D\"http://127.0.0.1:%d/pixel.gif\" alt=3D\"Company logo\">"
		"<iframe src=3D\"http://127.0.0.1:%d/f\"></iframe>"
		"<p>Caf=E9 &amp; cr&egrave;me &#x4e16;&#x754c;</p>"
		"<pre>  indented\n    code</pre>"
		"<blockquote>quoted text</blockquote>"
		"</body></html>\r\n", port, port, port);
	assert_int_equal(test_render(msg, strlen(msg), &o, dir, "a.pdf", NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "Quarterly Report");
	assert_has(text, "the report <https://example.com/r>");
	assert_has(text, "https://example.org/");
	assert_lacks(text, "<https://example.org/>"); /* text equal to URL: shown once */
	assert_has(text, "Name | Value");
	assert_has(text, "alpha | 42");
	assert_has(text, "\xe2\x80\xa2 first item");
	assert_has(text, "1. one");
	assert_has(text, "2. two");
	assert_has(text, "[image: Company logo]");
	assert_has(text, "Caf\xc3\xa9 & cr\xc3\xa8me \xe4\xb8\x96\xe7\x95\x8c");
	assert_has(text, "indented");
	assert_has(text, "quoted text");
	assert_lacks(text, "SCRIPT-HIDDEN");
	assert_lacks(text, "TITLE-HIDDEN");
	assert_lacks(text, "color: red");
	free(text);
	c = accept(ls, NULL, NULL);
	assert_int_equal(c, -1); /* nobody connected */
	close(ls);
	g_free(msg);
	test_rm_rf(dir);
	free(dir);
}

/* multipart/alternative: the text/plain version is shown, the HTML one is
 * neither shown nor embedded; a forwarded file inside it still is. */
static void test_F_PDF_1_alternative_prefers_plain(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *text;
	static const char msg[] =
		"From: a@example.com\r\nTo: b@example.net\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nPLAIN VERSION\r\n"
		"--b\r\nContent-Type: multipart/related; boundary=c\r\n\r\n"
		"--c\r\nContent-Type: text/html\r\n\r\n<p>HTML VERSION</p>\r\n"
		"--c\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n\r\nPNGDATA\r\n"
		"--c\r\nContent-Type: application/pdf\r\n"
		"Content-Disposition: attachment; filename=keep.pdf\r\n\r\nPDFDATA\r\n"
		"--c--\r\n--b--\r\n";
	struct pdf_options o = opts(PW);
	struct pdf_result res;
	struct sg_error err;

	(void)state;
	assert_int_equal(test_render(msg, strlen(msg), &o, dir, "a.pdf", &res, &err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "PLAIN VERSION");
	assert_lacks(text, "HTML VERSION");
	assert_has(text, "keep.pdf");
	assert_int_equal(res.attachments, 1);
	free(text);
	test_rm_rf(dir);
	free(dir);
}

/* format=flowed (RFC 3676): soft breaks join, stuffing goes, "-- " and
 * quote depth changes stay hard. */
static void test_F_PDF_1_format_flowed(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *text;
	static const char msg[] =
		"From: a@example.com\r\nSubject: flowed\r\nMIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
		"This paragraph was wrapped \r\nby the sender's client \r\nat 72 columns.\r\n"
		" From here on: stuffed line.\r\n"
		"> Quoted text that \r\n> flows too.\r\n"
		"Back to depth zero.\r\n"
		"-- \r\nSignature\r\n";
	struct pdf_options o = opts(PW);
	struct sg_error err;

	(void)state;
	assert_int_equal(test_render(msg, strlen(msg), &o, dir, "a.pdf", NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "This paragraph was wrapped by the sender's client at 72 columns.");
	assert_has(text, "\nFrom here on: stuffed line.");
	assert_has(text, "> Quoted text that flows too.");
	assert_has(text, "\nBack to depth zero.");
	/* pdftotext joins a line ending in "--" with the next (dehyphenation),
	 * so only check that the signature line was not soft-joined */
	assert_has(text, "Signature");
	assert_lacks(text, "-- Signature");
	free(text);
	test_rm_rf(dir);
	free(dir);
}

/* --------------------------------------------------------- big bodies */

/* Long lines wrap, a big body paginates; the last line is on the last page. */
static void test_F_PDF_1_long_lines_and_pagination(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *text = NULL, *np = NULL, last[16];
	struct pdf_options o = opts(PW);
	struct pdf_result res;
	struct sg_error err;
	struct sg_buf b;
	unsigned i;
	const char *npages[] = { "qpdf", "--show-npages", "--password=" PW, path, NULL };
	const char *lastp[] = { "pdftotext", "-upw", PW, "-f", last, "-l", last, path, "-",
		NULL };

	(void)state;
	sg_buf_init(&b, 64u << 20);
	sg_buf_append_str(&b, "From: a@example.com\r\nSubject: big\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n\r\nSTART-OF-LONG-LINE", &err);
	for (i = 0; i < 20000; i++)
		sg_buf_append_str(&b, i % 2 ? "x" : "\xe4\xb8\x96", &err); /* no spaces */
	sg_buf_append_str(&b, "END-OF-LONG-LINE\r\n", &err);
	for (i = 0; i < 12000; i++)
		sg_buf_printf(&b, &err, "Line %u of the body, lorem ipsum dolor sit amet.\r\n", i);
	assert_int_equal(test_render(b.data, b.len, &o, dir, "a.pdf", &res, &err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	assert_true(res.pages > 150);
	assert_int_equal(test_run(npages, &np, 0), 0);
	assert_int_equal(strtoul(np, NULL, 10), res.pages);
	free(np);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "START-OF-LONG-LINE");
	assert_has(text, "END-OF-LONG-LINE");
	assert_has(text, "Line 0 of the body");
	free(text);
	snprintf(last, sizeof(last), "%u", res.pages);
	assert_int_equal(test_run(lastp, &text, 0), 0);
	assert_has(text, "Line 11999 of the body");
	free(text);
	/* the same body with a page cap fails with SG_E_LIMIT, writes nothing */
	o.max_pages = 20;
	assert_int_equal(test_render(b.data, b.len, &o, dir, "b.pdf", NULL, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	snprintf(path, sizeof(path), "%s/b.pdf", dir);
	assert_int_equal(test_file_size(path), 0);
	assert_int_equal(test_dir_entries(g_work), 0);
	sg_buf_deinit(&b);
	test_rm_rf(dir);
	free(dir);
}

/* ------------------------------------------------------------ bad input */

/* build a multipart/mixed with n small attachments */
static char *many_attachments(unsigned n, size_t *len_r)
{
	struct sg_buf b;
	struct sg_error err;
	unsigned i;

	sg_buf_init(&b, 64u << 20);
	sg_buf_append_str(&b, "From: a@example.com\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n", &err);
	for (i = 0; i < n; i++)
		sg_buf_printf(&b, &err, "--b\r\nContent-Type: text/plain\r\n"
			"Content-Disposition: attachment; filename=\"f%04u.txt\"\r\n\r\n"
			"content of attachment %u\r\n", i, i);
	sg_buf_append_str(&b, "--b--\r\n", &err);
	*len_r = b.len;
	return sg_buf_steal(&b);
}

/* The walk bound (MIME_MAX_PARTS = 1000 parts) holds: 998 attachments plus
 * the body and the multipart are embedded and extract byte-identical;
 * 1,000 attachments fail with SG_E_LIMIT and leave nothing behind. */
static void test_F_PDF_1_many_attachments(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *xdir, *msg, want[64], name[32];
	struct pdf_options o = opts(PW);
	struct pdf_result res;
	struct sg_error err;
	size_t len;
	unsigned i;

	(void)state;
	msg = many_attachments(998, &len);
	assert_int_equal(test_render(msg, len, &o, dir, "a.pdf", &res, &err), 0);
	free(msg);
	assert_int_equal(res.attachments, 998);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	free(check_pdf(path, PW, "R = 6"));
	xdir = g_strdup_printf("%s/x", dir);
	assert_int_equal(mkdir(xdir, 0700), 0);
	{
		const char *save[] = { "pdfdetach", "-upw", PW, "-saveall", "-o", xdir, path, NULL };

		assert_int_equal(test_run(save, NULL, 0), 0);
	}
	assert_int_equal(test_dir_entries(xdir), 998);
	for (i = 0; i < 998; i++) {
		snprintf(name, sizeof(name), "f%04u.txt", i);
		snprintf(want, sizeof(want), "content of attachment %u", i);
		compare_file(xdir, name, want, strlen(want));
	}
	g_free(xdir);
	msg = many_attachments(1000, &len);
	assert_int_equal(test_render(msg, len, &o, dir, "b.pdf", &res, &err), -1);
	free(msg);
	assert_int_equal(err.code, SG_E_LIMIT);
	snprintf(path, sizeof(path), "%s/b.pdf", dir);
	assert_int_equal(test_file_size(path), 0);
	assert_int_equal(test_dir_entries(g_work), 0);
	test_rm_rf(dir);
	free(dir);
}

/* Broken base64 decodes leniently (junk skipped, as GMime and mail clients
 * do); unknown charsets show as UTF-8 with a note; a known 8-bit charset is
 * converted. */
static void test_F_PDF_1_broken_encoding_unknown_charset(void **state)
{
	char *dir = test_mkdtemp(), path[4096], *text, *xdir;
	static const char msg[] =
		"From: a@example.com\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n"
		"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln, bad \xff byte\r\n"
		"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
		"Stra\xdf" "e in M\xfcnchen\r\n"
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n"
		"QmFzZTY0!!IGJvZHkgdGV4dA=*=\r\n"
		"--b\r\nContent-Type: application/octet-stream\r\n"
		"Content-Disposition: attachment; filename=broken.bin\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n"
		"SGVs!!bG8g*d29y\r\nbGQ=\r\n"
		"--b--\r\n";
	struct pdf_options o = opts(PW);
	struct sg_error err;

	(void)state;
	assert_int_equal(test_render(msg, strlen(msg), &o, dir, "a.pdf", NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "[unknown character set: shown as UTF-8]");
	assert_has(text, "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln, bad \xef\xbf\xbd byte");
	assert_has(text, "Stra\xc3\x9f" "e in M\xc3\xbcnchen");
	assert_has(text, "Base64 body text");
	free(text);
	xdir = g_strdup_printf("%s/x", dir);
	assert_int_equal(mkdir(xdir, 0700), 0);
	{
		const char *save[] = { "pdfdetach", "-upw", PW, "-saveall", "-o", xdir, path, NULL };

		assert_int_equal(test_run(save, NULL, 0), 0);
	}
	compare_file(xdir, "broken.bin", "Hello world", 11);
	g_free(xdir);
	test_rm_rf(dir);
	free(dir);
}

/* A 50 MB attachment over pdf_max_size (25 MB here): SG_E_LIMIT, nothing
 * written, work files gone; under the limit the same size passes the
 * budget check only when it fits. */
static void test_F_PDF_4_attachment_over_max_size(void **state)
{
	char *dir = test_mkdtemp(), path[4096];
	struct pdf_options o = opts(PW);
	struct sg_error err;
	struct sg_buf b;
	size_t i, line = 76;
	char row[80];

	(void)state;
	memset(row, 'A', line);
	memcpy(row + line, "\r\n", 2);
	sg_buf_init(&b, 80u << 20);
	sg_buf_append_str(&b, "From: a@example.com\r\nSubject: huge\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
		"--b\r\nContent-Type: application/octet-stream\r\n"
		"Content-Disposition: attachment; filename=huge.bin\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n", &err);
	/* 57 decoded bytes per line: 920,000 lines = 52.4 MB decoded */
	for (i = 0; i < 920000; i++)
		assert_int_equal(sg_buf_append(&b, row, line + 2, &err), 0);
	sg_buf_append_str(&b, "--b--\r\n", &err);
	o.max_size = 25u << 20;
	assert_int_equal(test_render(b.data, b.len, &o, dir, "a.pdf", NULL, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	assert_int_equal(test_file_size(path), 0);
	assert_int_equal(test_dir_entries(g_work), 0);
	sg_buf_deinit(&b);
	test_rm_rf(dir);
	free(dir);
}

/* The finished PDF itself over max_size: SG_E_LIMIT. */
static void test_F_PDF_4_result_over_max_size(void **state)
{
	char *dir = test_mkdtemp();
	struct pdf_options o = opts(PW);
	struct sg_error err;

	(void)state;
	o.max_size = 2000; /* a one-page PDF with fonts is bigger */
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(test_dir_entries(g_work), 0);
	test_rm_rf(dir);
	free(dir);
}

/* F-PDF-5: the reply link is a link annotation with the exact URL. */
static void test_F_PDF_5_reply_link_in_pdf(void **state)
{
	char *dir = test_mkdtemp(), path[4096], qdf[4200], *text, *data, *url;
	struct pdf_options o = opts(PW);
	struct sg_error err;
	const char *dec[] = { "qpdf", "--password=" PW, "--decrypt", "--qdf",
		"--object-streams=disable", path, qdf, NULL };

	(void)state;
	url = pdf_reply_link_make("https://portal.example.com/pdf/reply", "srv",
		"bob@example.net", "alice@example.com", 1900000000, &err);
	assert_non_null(url);
	o.reply_link = url;
	o.reply_text = "Sicher antworten";
	assert_int_equal(test_render(msg_plain, strlen(msg_plain), &o, dir, "a.pdf", NULL,
		&err), 0);
	snprintf(path, sizeof(path), "%s/a.pdf", dir);
	snprintf(qdf, sizeof(qdf), "%s/plain.pdf", dir);
	text = check_pdf(path, PW, "R = 6");
	assert_has(text, "Reply: Sicher antworten");
	free(text);
	assert_int_equal(test_run(dec, NULL, 0), 0);
	data = test_read_file(qdf, NULL);
	assert_non_null(data);
	assert_has(data, "/URI");
	assert_has(data, url);
	free(data);
	free(url);
	test_rm_rf(dir);
	free(dir);
}

/* attachment_mail - one attachment of len bytes (base64) after a text body */
static char *attachment_mail(const void *data, size_t len, const char *type, size_t *len_r)
{
	char *enc = b64(data, len);
	char *msg = g_strdup_printf("From: a@example.com\r\nTo: b@example.net\r\n"
		"Subject: one file\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
		"Body \xe4\xbd\xa0\xe5\xa5\xbd\r\n"
		"--b\r\nContent-Type: %s\r\nContent-Disposition: attachment; filename=f.dat\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b--\r\n", type, enc);

	free(enc);
	*len_r = strlen(msg);
	return msg;
}

/* Compressible attachments are deflated, incompressible ones stored as
 * they are (deflating them again would only cost time). */
static void test_F_PDF_1_compression_choice(void **state)
{
	char *dir = test_mkdtemp(), *msg, path[4096];
	size_t i, len, n = 2u << 20;
	unsigned char *data = malloc(n);
	struct pdf_options o = opts(PW);
	struct pdf_result res;
	struct sg_error err;

	(void)state;
	assert_non_null(data);
	for (i = 0; i < n; i++)
		data[i] = (unsigned char)"Lorem ipsum dolor sit amet, consectetur.\n"[i % 42];
	msg = attachment_mail(data, n, "text/plain", &len);
	assert_int_equal(test_render(msg, len, &o, dir, "a.pdf", &res, &err), 0);
	g_free(msg);
	assert_true(res.size < n / 10);
	fill_random(data, n, 3);
	msg = attachment_mail(data, n, "application/octet-stream", &len);
	assert_int_equal(test_render(msg, len, &o, dir, "b.pdf", &res, &err), 0);
	g_free(msg);
	assert_true(res.size > n);
	snprintf(path, sizeof(path), "%s/b.pdf", dir);
	free(check_pdf(path, PW, "R = 6"));
	{
		char *xdir = g_strdup_printf("%s/x", dir);
		const char *save[] = { "pdfdetach", "-upw", PW, "-saveall", "-o", xdir, path, NULL };

		assert_int_equal(mkdir(xdir, 0700), 0);
		assert_int_equal(test_run(save, NULL, 0), 0);
		compare_file(xdir, "f.dat", data, n);
		g_free(xdir);
	}
	free(data);
	test_rm_rf(dir);
	free(dir);
}

struct thread_arg {
	const char *msg;
	size_t len;
	char *dir;
	unsigned index;
	int failures;
};

static void *render_thread(void *p)
{
	struct thread_arg *a = p;
	struct pdf_options o = opts(PW);
	struct sg_error err;
	char name[32];
	unsigned k;

	for (k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "t%u-%u.pdf", a->index, k);
		if (test_render(a->msg, a->len, &o, a->dir, name, NULL, &err) < 0) {
			fprintf(stderr, "thread %u: %s\n", a->index, err.msg);
			a->failures++;
		}
	}
	return NULL;
}

/* The MPA renders in several worker threads at once. */
static void test_F_PDF_1_concurrent_threads(void **state)
{
	char *dir = test_mkdtemp(), *msg, path[4096], name[32], *text;
	unsigned char data[3000];
	struct thread_arg args[4];
	pthread_t th[4];
	size_t len;
	unsigned i, k;

	(void)state;
	fill_random(data, sizeof(data), 11);
	msg = attachment_mail(data, sizeof(data), "application/octet-stream", &len);
	for (i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ msg, len, dir, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, render_thread, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	for (i = 0; i < 4; i++) {
		for (k = 0; k < 3; k++) {
			const char *t[] = { "pdftotext", "-upw", PW, path, "-", NULL };

			snprintf(name, sizeof(name), "t%u-%u.pdf", i, k);
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			assert_int_equal(test_run(t, &text, 0), 0);
			assert_has(text, "Body \xe4\xbd\xa0\xe5\xa5\xbd");
			assert_has(text, "f.dat (2.9 KB)");
			free(text);
		}
	}
	assert_int_equal(test_dir_entries(g_work), 0);
	g_free(msg);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_F_PDF_1_plain_text_headers_scripts),
		cmocka_unit_test(test_F_PDF_2_aes128),
		cmocka_unit_test(test_F_PDF_2_bad_passwords_and_links),
		cmocka_unit_test(test_F_PDF_1_attachments_byte_identical),
		cmocka_unit_test(test_F_PDF_1_duplicate_names),
		cmocka_unit_test(test_F_PDF_1_html_as_text_no_fetch),
		cmocka_unit_test(test_F_PDF_1_alternative_prefers_plain),
		cmocka_unit_test(test_F_PDF_1_format_flowed),
		cmocka_unit_test(test_F_PDF_1_long_lines_and_pagination),
		cmocka_unit_test(test_F_PDF_1_many_attachments),
		cmocka_unit_test(test_F_PDF_1_broken_encoding_unknown_charset),
		cmocka_unit_test(test_F_PDF_4_attachment_over_max_size),
		cmocka_unit_test(test_F_PDF_4_result_over_max_size),
		cmocka_unit_test(test_F_PDF_5_reply_link_in_pdf),
		cmocka_unit_test(test_F_PDF_1_compression_choice),
		cmocka_unit_test(test_F_PDF_1_concurrent_threads),
	};
	struct sg_error err;
	int rc;

	g_mime_init();
	if (pdf_init(&err) < 0) {
		fprintf(stderr, "pdf_init: %s\n", err.msg);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, setup, teardown);
	pdf_deinit();
	g_mime_shutdown();
	return rc;
}
