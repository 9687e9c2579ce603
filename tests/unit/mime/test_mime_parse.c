/* test_mime_parse.c - parsing from an fd range, tolerance of broken MIME,
 * the bounded walk, streaming serialisation and memory use (DESIGN
 * "Streaming"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/resource.h>

#include "mime_test.h"

static const char simple_msg[] =
	"From: Alice <alice@example.com>\n"
	"To: bob@example.net\n"
	"Subject: hi\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\n"
	"\n"
	"preamble\n"
	"--b1\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Gr\xc3\xbc\xc3\x9f" "e \xff\xfe raw 8-bit\n"
	"--b1\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"From: inner@example.org\n"
	"Subject: inner\n"
	"\n"
	"inner body\n"
	"--b1--\n"
	"epilogue\n";

/* The message sits at an offset inside a bigger file (as in a spool file):
 * only the range is parsed, and unmodified output is the range, exactly. */
static void test_parse_range_passthrough(void **state)
{
	const char *prefix = "SPOOLRECORDS\n\x01\x02\x03";
	int fd = test_tmpfd(prefix, simple_msg, strlen(simple_msg));
	struct sg_error err;
	struct mime_msg *m;
	char *out;
	size_t len;

	(void)state;
	/* trailing bytes after the range must not be read either */
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)(strlen(prefix) + strlen(simple_msg)));
	assert_int_equal(sg_write_all(fd, "TRAILER", 7), 0);
	m = mime_msg_parse_fd(fd, strlen(prefix), strlen(simple_msg), &err);
	assert_non_null(m);
	close(fd); /* the message keeps its own dup */
	assert_true(mime_msg_has_headers(m));
	assert_false(mime_msg_is_modified(m));
	assert_int_equal(mime_msg_source_size(m), strlen(simple_msg));
	assert_string_equal(mime_msg_header_get(m, "Subject"), "hi");
	out = test_serialise(m, &len);
	assert_int_equal(len, strlen(simple_msg));
	assert_memory_equal(out, simple_msg, len);
	free(out);
	/* a re-serialisation (modified) keeps the 8-bit body bytes */
	mime_msg_set_modified(m);
	out = test_serialise(m, &len);
	assert_non_null(strstr(out, "Gr\xc3\xbc\xc3\x9f" "e \xff\xfe raw 8-bit\n"));
	assert_non_null(strstr(out, "inner body\n"));
	assert_null(strstr(out, "TRAILER"));
	assert_null(strstr(out, "SPOOLRECORDS"));
	free(out);
	mime_msg_free(&m);
	mime_msg_free(&m); /* NULL is fine */
}

static void test_parse_bad_args(void **state)
{
	int fd = test_tmpfd(NULL, "abc", 3);
	int pfd[2];
	struct sg_error err;

	(void)state;
	assert_null(mime_msg_parse_fd(fd, 0, 4, &err));
	assert_int_equal(err.code, SG_E_IO);
	assert_null(mime_msg_parse_fd(fd, 2, 2, &err));
	assert_int_equal(err.code, SG_E_IO);
	assert_null(mime_msg_parse_fd(fd, UINT64_MAX, 1, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(mime_msg_parse_fd(-1, 0, 0, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pipe(pfd), 0);
	assert_null(mime_msg_parse_fd(pfd[0], 0, 0, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	close(pfd[0]);
	close(pfd[1]);
	close(fd);
}

/* Input GMime cannot read as a message still parses (as one text/plain part)
 * and passes through unchanged. */
static void test_parse_headerless(void **state)
{
	static const struct {
		const char *name;
		const char *data;
		size_t len;
	} cases[] = {
#define BYTES(s) s, sizeof(s) - 1
		{"empty", BYTES("")},
		{"plain text", BYTES("just a line of text\nand another\n")},
		{"binary garbage", BYTES("\x01\x02garbage\xff\xfe no colon\n\nbody")},
		{"NUL bytes", BYTES("\0\0\0From: x@y\n\n\0body\0")},
#undef BYTES
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		int fd = test_tmpfd(NULL, cases[i].data, cases[i].len);
		struct mime_msg *m = mime_msg_parse_fd(fd, 0, cases[i].len, &err);
		char *out;
		size_t len;

		close(fd);
		if (m == NULL)
			fail_msg("%s: parse failed: %s", cases[i].name, err.msg);
		if (mime_msg_has_headers(m))
			fail_msg("%s: has headers", cases[i].name);
		out = test_serialise(m, &len);
		if (len != cases[i].len || memcmp(out, cases[i].data, len) != 0)
			fail_msg("%s: output differs (%zu bytes)", cases[i].name, len);
		free(out);
		/* modified: GMime writes the content after a Content-Type header */
		mime_msg_set_modified(m);
		out = test_serialise(m, &len);
		if (cases[i].len > 0 && memmem(out, len, cases[i].data, cases[i].len) == NULL)
			fail_msg("%s: content lost on re-serialisation", cases[i].name);
		free(out);
		mime_msg_free(&m);
	}
}

struct walk_rec {
	unsigned n;
	unsigned max_depth;
	unsigned stop_at;      /* return 1 at this index (0 = never) */
	unsigned fail_at;      /* return -1 at this index (0 = never) */
	char types[16][48];
};

static int walk_cb(const struct mime_part_ref *ref, void *arg, struct sg_error *err)
{
	struct walk_rec *r = arg;
	GMimeContentType *ct = g_mime_object_get_content_type(ref->part);

	assert_int_equal(ref->index, r->n);
	if (ref->depth > r->max_depth)
		r->max_depth = ref->depth;
	if (r->n < 16 && ct != NULL)
		snprintf(r->types[r->n], sizeof(r->types[0]), "%u:%s/%s", ref->depth,
			g_mime_content_type_get_media_type(ct),
			g_mime_content_type_get_media_subtype(ct));
	r->n++;
	if (r->stop_at != 0 && ref->index == r->stop_at)
		return 1;
	if (r->fail_at != 0 && ref->index == r->fail_at) {
		sg_error_set(err, SG_E_POLICY, "stop here");
		return -1;
	}
	return 0;
}

static void test_walk(void **state)
{
	struct mime_msg *m = test_parse_str(simple_msg);
	struct walk_rec r;
	struct sg_error err;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(mime_msg_walk(m, walk_cb, &r, &err), 0);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.types[0], "0:multipart/mixed");
	assert_string_equal(r.types[1], "1:text/plain");
	assert_string_equal(r.types[2], "1:message/rfc822");
	assert_string_equal(r.types[3], "2:text/plain");

	memset(&r, 0, sizeof(r));
	r.stop_at = 1;
	assert_int_equal(mime_msg_walk(m, walk_cb, &r, &err), 0);
	assert_int_equal(r.n, 2);

	memset(&r, 0, sizeof(r));
	r.fail_at = 2;
	assert_int_equal(mime_msg_walk(m, walk_cb, &r, &err), -1);
	assert_int_equal(err.code, SG_E_POLICY);
	assert_int_equal(r.n, 3);
	mime_msg_free(&m);
}

/* A multipart whose final boundary is missing (truncated message). */
static void test_missing_final_boundary(void **state)
{
	static const char text[] =
		"From: a@example.com\n"
		"Content-Type: multipart/mixed; boundary=\"zz\"\n"
		"\n"
		"--zz\n"
		"Content-Type: text/plain\n"
		"\n"
		"one\n"
		"--zz\n"
		"Content-Type: application/octet-stream\n"
		"Content-Transfer-Encoding: base64\n"
		"\n"
		"QUJD\n"
		"QUJ";
	struct mime_msg *m = test_parse_str(text);
	struct walk_rec r;
	struct sg_error err;
	char *out;
	size_t len;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(mime_msg_walk(m, walk_cb, &r, &err), 0);
	assert_int_equal(r.n, 3);
	out = test_serialise(m, &len);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(out, text, len);
	free(out);
	mime_msg_free(&m);
}

/* gen_nested - a file with depth nested multiparts (or message/rfc822). */
static int gen_nested(unsigned depth, bool rfc822, size_t *len_r)
{
	struct sg_buf b;
	struct sg_error err;
	unsigned i;
	int fd;

	sg_buf_init(&b, 1u << 20);
	assert_int_equal(sg_buf_append_str(&b, "From: deep@example.com\n", &err), 0);
	for (i = 0; i < depth; i++) {
		if (rfc822)
			assert_int_equal(sg_buf_printf(&b, &err,
				"Content-Type: message/rfc822\n\nFrom: l%u@example.com\n", i), 0);
		else
			assert_int_equal(sg_buf_printf(&b, &err,
				"Content-Type: multipart/mixed; boundary=\"b%u\"\n\n--b%u\n", i, i), 0);
	}
	assert_int_equal(sg_buf_append_str(&b, "Content-Type: text/plain\n\nleaf\n", &err), 0);
	fd = test_tmpfd(NULL, b.data, b.len);
	*len_r = b.len;
	sg_buf_deinit(&b);
	return fd;
}

/* Nesting beyond MIME_MAX_DEPTH stops the walk with SG_E_LIMIT; within it the
 * walk completes. Both multipart and message/rfc822 nesting. */
static void test_walk_depth_limit(void **state)
{
	static const struct {
		unsigned depth;
		bool rfc822;
		int want_rc;
	} cases[] = {
		{MIME_MAX_DEPTH, false, 0},
		{MIME_MAX_DEPTH + 1, false, -1},
		{5000, false, -1},
		{MIME_MAX_DEPTH, true, 0},
		{MIME_MAX_DEPTH + 1, true, -1},
		{5000, true, -1},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		int fd = gen_nested(cases[i].depth, cases[i].rfc822, &len);
		struct sg_error err;
		struct mime_msg *m = mime_msg_parse_fd(fd, 0, len, &err);
		struct walk_rec r;
		int rc;

		close(fd);
		assert_non_null(m);
		memset(&r, 0, sizeof(r));
		rc = mime_msg_walk(m, walk_cb, &r, &err);
		if (rc != cases[i].want_rc)
			fail_msg("depth %u rfc822 %d: got rc %d want %d", cases[i].depth,
				cases[i].rfc822, rc, cases[i].want_rc);
		if (rc < 0)
			assert_int_equal(err.code, SG_E_LIMIT);
		assert_true(r.max_depth <= MIME_MAX_DEPTH);
		mime_msg_free(&m);
	}
}

/* More than MIME_MAX_PARTS parts stop the walk with SG_E_LIMIT. */
static void test_walk_part_limit(void **state)
{
	struct sg_buf b;
	struct sg_error err;
	struct walk_rec r;
	struct mime_msg *m;
	unsigned i;
	int fd;

	(void)state;
	sg_buf_init(&b, 1u << 20);
	assert_int_equal(sg_buf_append_str(&b,
		"From: many@example.com\nContent-Type: multipart/mixed; boundary=x\n\n", &err), 0);
	for (i = 0; i < MIME_MAX_PARTS; i++)
		assert_int_equal(sg_buf_append_str(&b, "--x\n\np\n", &err), 0);
	assert_int_equal(sg_buf_append_str(&b, "--x--\n", &err), 0);
	fd = test_tmpfd(NULL, b.data, b.len);
	m = mime_msg_parse_fd(fd, 0, b.len, &err);
	close(fd);
	sg_buf_deinit(&b);
	assert_non_null(m);
	memset(&r, 0, sizeof(r));
	/* the multipart itself + MIME_MAX_PARTS children: one too many */
	assert_int_equal(mime_msg_walk(m, walk_cb, &r, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(r.n, MIME_MAX_PARTS);
	mime_msg_free(&m);
}

/* A modified CRLF message is written with CRLF only (no mixed endings). */
static void test_crlf_preserved(void **state)
{
	static const char text[] =
		"From: a@example.com\r\n"
		"X-Sealgate-Info: spoof\r\n"
		"Subject: folded\r\n"
		" line\r\n"
		"Content-Type: multipart/mixed; boundary=\"q\"\r\n"
		"\r\n"
		"--q\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"body\r\n"
		"--q--\r\n";
	struct mime_msg *m = test_parse_str(text);
	char *out;
	size_t len, i;

	(void)state;
	assert_int_equal(mime_msg_header_remove_prefix(m, "X-Sealgate-"), 1);
	out = test_serialise(m, &len);
	for (i = 0; i < len; i++)
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			fail_msg("bare LF at %zu", i);
	assert_non_null(strstr(out, "Subject: folded\r\n line\r\n"));
	assert_null(strstr(out, "X-Sealgate-Info"));
	free(out);
	mime_msg_free(&m);
}

/* max caps both the byte copy and the re-serialisation. */
static void test_write_limit(void **state)
{
	struct mime_msg *m = test_parse_str(simple_msg);
	struct sg_buf b;
	struct sg_error err;
	uint64_t size = 0;

	(void)state;
	sg_buf_init(&b, 1u << 20);
	assert_int_equal(mime_msg_write(m, strlen(simple_msg), test_collect, &b, &size,
		&err), 0);
	assert_int_equal(size, strlen(simple_msg));
	sg_buf_reset(&b);
	assert_int_equal(mime_msg_write(m, strlen(simple_msg) - 1, test_collect, &b, NULL,
		&err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(b.len, 0); /* refused before writing anything */
	mime_msg_set_modified(m);
	sg_buf_reset(&b);
	assert_int_equal(mime_msg_write(m, 100, test_collect, &b, &size, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_true(size <= 100);
	sg_buf_deinit(&b);
	mime_msg_free(&m);
}

static int fail_writer(void *arg, const void *data, size_t len, struct sg_error *err)
{
	sg_error_set(err, SG_E_NOSPACE, "disk full");
	return -1;
}

/* A failing sink fails the write with the sink's error, both paths. */
static void test_write_sink_error(void **state)
{
	struct mime_msg *m = test_parse_str(simple_msg);
	struct sg_error err;
	int fd;

	(void)state;
	assert_int_equal(mime_msg_write(m, 0, fail_writer, NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOSPACE);
	mime_msg_set_modified(m);
	memset(&err, 0, sizeof(err));
	assert_int_equal(mime_msg_write(m, 0, fail_writer, NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_NOSPACE);
	/* write_fd into a read-only fd */
	fd = open("/dev/null", O_RDONLY);
	assert_int_equal(mime_msg_write_fd(m, fd, 0, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_IO);
	close(fd);
	mime_msg_free(&m);
}

/* The source shrinks after parsing (it never should): the copy notices. */
static void test_source_truncated(void **state)
{
	int fd = test_tmpfd(NULL, simple_msg, strlen(simple_msg));
	struct sg_error err;
	struct mime_msg *m = mime_msg_parse_fd(fd, 0, strlen(simple_msg), &err);
	struct sg_buf b;

	(void)state;
	assert_non_null(m);
	assert_int_equal(ftruncate(fd, 10), 0);
	sg_buf_init(&b, 1u << 20);
	assert_int_equal(mime_msg_write(m, 0, test_collect, &b, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_IO);
	sg_buf_deinit(&b);
	mime_msg_free(&m);
	close(fd);
}

/* A message built in memory is always serialised. */
static void test_new_gmime(void **state)
{
	GMimeMessage *gm = g_mime_message_new(FALSE);
	GMimeTextPart *tp = g_mime_text_part_new_with_subtype("plain");
	struct mime_msg *m;
	char *out;

	(void)state;
	g_mime_text_part_set_text(tp, "generated\n");
	g_mime_message_set_mime_part(gm, GMIME_OBJECT(tp));
	m = mime_msg_new_gmime(gm);
	g_object_unref(tp);
	g_object_unref(gm);
	assert_true(mime_msg_is_modified(m));
	assert_int_equal(mime_msg_source_size(m), 0);
	out = test_serialise(m, NULL);
	assert_non_null(strstr(out, "generated\n"));
	free(out);
	mime_msg_free(&m);
}

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int null_writer(void *arg, const void *data, size_t len, struct sg_error *err)
{
	*(uint64_t *)arg += len;
	return 0;
}

/* DESIGN "Streaming": a 50 MB message is parsed, walked, copied and
 * re-serialised with less than 20 MB of extra peak memory. */
static void test_large_message_small_rss(void **state)
{
	static const char head[] =
		"From: big@example.com\n"
		"Content-Type: multipart/mixed; boundary=\"big\"\n"
		"\n"
		"--big\n"
		"Content-Type: text/plain\n"
		"\n"
		"see attachment\n"
		"--big\n"
		"Content-Type: application/octet-stream\n"
		"Content-Transfer-Encoding: base64\n"
		"\n";
	static const char tail[] = "--big--\n";
	char line[77];
	char *chunk;
	size_t chunk_len = 0, total;
	struct sg_error err;
	struct mime_msg *m;
	struct walk_rec r;
	uint64_t written = 0;
	long before;
	int fd, i;

	(void)state;
	memset(line, 'Q', 76);
	line[76] = '\n';
	chunk = malloc(77 * 1024);
	for (i = 0; i < 1024; i++, chunk_len += 77)
		memcpy(chunk + chunk_len, line, 77);
	fd = test_tmpfd(head, NULL, 0);
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)strlen(head));
	total = strlen(head);
	while (total < 50u * 1024 * 1024) {
		assert_int_equal(sg_write_all(fd, chunk, chunk_len), 0);
		total += chunk_len;
	}
	assert_int_equal(sg_write_all(fd, tail, strlen(tail)), 0);
	total += strlen(tail);
	free(chunk);

	before = maxrss_kb();
	m = mime_msg_parse_fd(fd, 0, total, &err);
	assert_non_null(m);
	memset(&r, 0, sizeof(r));
	assert_int_equal(mime_msg_walk(m, walk_cb, &r, &err), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(mime_msg_write(m, 0, null_writer, &written, NULL, &err), 0);
	assert_int_equal(written, total);
	mime_msg_set_modified(m);
	written = 0;
	assert_int_equal(mime_msg_write(m, 0, null_writer, &written, NULL, &err), 0);
	assert_true(written >= total - 100);
	mime_msg_free(&m);
	close(fd);
	if (maxrss_kb() - before >= 20 * 1024)
		fail_msg("maxrss grew by %ld KB", maxrss_kb() - before);
}

static int test_collect_discard(void *arg, const void *data, size_t len,
	struct sg_error *err)
{
	return 0;
}

/* many_parts_fd - a multipart message with n parts in a temp file; the
 * body's last part holds a marker. *len_r gets the size. */
static int many_parts_fd(unsigned n, const char *nl, char **text_r, size_t *len_r)
{
	struct sg_buf b;
	struct sg_error err;
	unsigned i;
	int fd;

	sg_buf_init(&b, 8u << 20);
	assert_int_equal(sg_buf_printf(&b, &err, "From: Many <many@example.com>%sSubject: "
		"lots%sContent-Type: multipart/mixed; boundary=x%s%s", nl, nl, nl, nl), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(sg_buf_printf(&b, &err, "--x%s%sp%s", nl, nl, nl), 0);
	assert_int_equal(sg_buf_printf(&b, &err, "--x--%sMARKER%s", nl, nl), 0);
	fd = test_tmpfd(NULL, b.data, b.len);
	*len_r = b.len;
	*text_r = sg_buf_steal(&b);
	return fd;
}

/* Hostile input: tens of thousands of tiny parts would make GMime build
 * every part in memory (about 1.3 KiB each). Above MIME_MAX_BOUNDARY_LINES
 * possible boundaries only the header section is parsed: headers and the
 * originator work, pass-through is byte-exact, the walk and a rewrite fail
 * with SG_E_LIMIT (fail closed), and memory stays small. */
static void test_many_parts_opaque(void **state)
{
	static const char *const nls[] = {"\n", "\r\n"};
	unsigned k;

	(void)state;
	for (k = 0; k < 2; k++) {
		struct sg_error err;
		struct walk_rec r;
		struct mime_msg *m;
		char *text, *out, *orig = NULL;
		size_t len, olen;
		int fd = many_parts_fd(200000, nls[k], &text, &len);
		long before = maxrss_kb();

		m = mime_msg_parse_fd(fd, 0, len, &err);
		close(fd);
		assert_non_null(m);
		/* 200,000 parts fully built would need well over 200 MB */
		assert_true(maxrss_kb() - before < 32 * 1024);
		assert_true(mime_msg_is_opaque(m));
		assert_true(mime_msg_has_headers(m));
		assert_string_equal(mime_msg_header_get(m, "Subject"), "lots");
		assert_int_equal(mime_msg_originator(m, "env@example.com", &orig),
			MIME_ORIGIN_FROM);
		assert_string_equal(orig, "many@example.com");
		free(orig);
		out = test_serialise(m, &olen);
		assert_int_equal(olen, len);
		assert_memory_equal(out, text, len);
		free(out);
		memset(&r, 0, sizeof(r));
		assert_int_equal(mime_msg_walk(m, walk_cb, &r, &err), -1);
		assert_int_equal(err.code, SG_E_LIMIT);
		assert_int_equal(r.n, 0);
		assert_int_equal(mime_msg_header_set(m, "Subject", "changed", &err), 0);
		mime_msg_set_modified(m);
		assert_int_equal(mime_msg_write(m, 0, test_collect_discard, NULL, NULL, &err),
			-1);
		assert_int_equal(err.code, SG_E_LIMIT);
		mime_msg_free(&m);
		free(text);
	}
}

/* At the bound (MIME_MAX_BOUNDARY_LINES lines starting with "--", counting
 * the closing one) the message is still parsed normally. */
static void test_many_parts_at_bound(void **state)
{
	struct sg_error err;
	struct mime_msg *m;
	char *text;
	size_t len;
	int fd = many_parts_fd(MIME_MAX_BOUNDARY_LINES - 1, "\n", &text, &len);

	(void)state;
	m = mime_msg_parse_fd(fd, 0, len, &err);
	close(fd);
	assert_non_null(m);
	assert_false(mime_msg_is_opaque(m));
	assert_true(GMIME_IS_MULTIPART(g_mime_message_get_mime_part(mime_msg_get0_gmime(m))));
	assert_int_equal(g_mime_multipart_get_count(GMIME_MULTIPART(
		g_mime_message_get_mime_part(mime_msg_get0_gmime(m)))),
		MIME_MAX_BOUNDARY_LINES - 1);
	mime_msg_free(&m);
	free(text);
	fd = many_parts_fd(MIME_MAX_BOUNDARY_LINES, "\n", &text, &len);
	m = mime_msg_parse_fd(fd, 0, len, &err);
	close(fd);
	assert_non_null(m);
	assert_true(mime_msg_is_opaque(m));
	mime_msg_free(&m);
	free(text);
}

/* mime_msg_reparse: an independent copy from the same source - changing it
 * leaves the original byte-identical; a generated message has no source. */
static void test_reparse_independent(void **state)
{
	const char text[] = "From: a@example.com\nSubject: Hello [encrypt]\n"
		"X-Trigger: yes\n\nbody line\n";
	struct mime_msg *m = test_parse_str(text), *c, *g;
	struct sg_error err;
	char *out;

	(void)state;
	c = mime_msg_reparse(m, &err);
	assert_non_null(c);
	assert_false(mime_msg_is_modified(c));
	assert_int_equal(mime_msg_header_remove(c, "X-Trigger"), 1);
	assert_int_equal(mime_msg_header_set(c, "Subject", "Hello", &err), 0);
	out = test_serialise(c, NULL);
	assert_null(strstr(out, "X-Trigger"));
	assert_non_null(strstr(out, "Subject: Hello\n"));
	assert_non_null(strstr(out, "\n\nbody line\n"));
	free(out);
	/* the original is untouched and still copied byte for byte */
	assert_false(mime_msg_is_modified(m));
	out = test_serialise(m, NULL);
	assert_string_equal(out, text);
	free(out);
	mime_msg_free(&c);
	g = mime_msg_new_gmime(mime_msg_get0_gmime(m));
	assert_null(mime_msg_reparse(g, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	mime_msg_free(&g);
	mime_msg_free(&m);
}

/* mime_msg_open_fd: nothing is parsed until needed - written out unchanged
 * it is the source range byte for byte; a field read parses it then (the
 * same answers as mime_msg_parse_fd); a change re-serialises it with the
 * input's line ends. */
static void test_open_lazy(void **state)
{
	const char *prefix = "SPOOLRECORDS\n";
	const char crlf_msg[] = "From: a@example.com\r\nSubject: lazy\r\n\r\nbody\r\n";
	int fd = test_tmpfd(prefix, simple_msg, strlen(simple_msg));
	struct sg_error err;
	struct mime_msg *m;
	char *out;
	size_t len;

	(void)state;
	assert_int_equal(sg_write_all(fd, "TRAILER", 7), 0);
	m = mime_msg_open_fd(fd, strlen(prefix), strlen(simple_msg), &err);
	assert_non_null(m);
	close(fd);
	assert_false(mime_msg_is_modified(m));
	assert_int_equal(mime_msg_source_size(m), strlen(simple_msg));
	out = test_serialise(m, &len);
	assert_int_equal(len, strlen(simple_msg));
	assert_memory_equal(out, simple_msg, len);
	free(out);
	assert_true(mime_msg_has_headers(m));
	assert_false(mime_msg_is_opaque(m));
	assert_string_equal(mime_msg_header_get(m, "Subject"), "hi");
	mime_msg_free(&m);
	/* fields first, then a change: GMime writes it, CRLF kept */
	fd = test_tmpfd(NULL, crlf_msg, strlen(crlf_msg));
	m = mime_msg_open_fd(fd, 0, strlen(crlf_msg), &err);
	assert_non_null(m);
	close(fd);
	assert_int_equal(mime_msg_header_set(m, "Subject", "changed", &err), 0);
	assert_true(mime_msg_is_modified(m));
	out = test_serialise(m, NULL);
	assert_non_null(strstr(out, "Subject: changed\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nbody\r\n"));
	free(out);
	mime_msg_free(&m);
	/* the same argument checks as mime_msg_parse_fd */
	assert_null(mime_msg_open_fd(-1, 0, 1, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	fd = test_tmpfd(NULL, crlf_msg, strlen(crlf_msg));
	assert_null(mime_msg_open_fd(fd, 0, strlen(crlf_msg) + 1, &err));
	assert_int_equal(err.code, SG_E_IO);
	close(fd);
}

/* D-3: text/calendar at the top or inside a top-level multipart/alternative;
 * not deeper, not as an attachment of multipart/mixed. */
static void test_is_calendar(void **state)
{
	static const struct {
		const char *name, *text;
		bool want;
	} cases[] = {
		{"top-level", "Content-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\n",
			true},
		{"alternative", "Content-Type: multipart/alternative; boundary=b\n\n--b\n"
			"Content-Type: text/plain\n\nx\n--b\nContent-Type: text/calendar\n\n"
			"BEGIN:VCALENDAR\n--b--\n", true},
		{"mixed attachment", "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
			"Content-Type: text/plain\n\nx\n--b\nContent-Type: text/calendar\n\n"
			"BEGIN:VCALENDAR\n--b--\n", false},
		{"plain", "Subject: x\n\nhello\n", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mime_msg *m = test_parse_str(cases[i].text);

		if (mime_msg_is_calendar(m) != cases[i].want)
			fail_msg("%s: got %d want %d", cases[i].name, !cases[i].want,
				cases[i].want);
		mime_msg_free(&m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_range_passthrough),
		cmocka_unit_test(test_open_lazy),
		cmocka_unit_test(test_parse_bad_args),
		cmocka_unit_test(test_parse_headerless),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_missing_final_boundary),
		cmocka_unit_test(test_walk_depth_limit),
		cmocka_unit_test(test_walk_part_limit),
		cmocka_unit_test(test_crlf_preserved),
		cmocka_unit_test(test_write_limit),
		cmocka_unit_test(test_write_sink_error),
		cmocka_unit_test(test_source_truncated),
		cmocka_unit_test(test_new_gmime),
		cmocka_unit_test(test_large_message_small_rss),
		cmocka_unit_test(test_many_parts_opaque),
		cmocka_unit_test(test_many_parts_at_bound),
		cmocka_unit_test(test_reparse_independent),
		cmocka_unit_test(test_is_calendar),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
