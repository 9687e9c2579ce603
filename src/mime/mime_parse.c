/*
 * mime_parse.c - parse a message from a byte range of a file (a spool body,
 * a temp file of `sealgate process`) with GMime 3, streaming.
 *
 * Called by the MPA workers (several threads, one message per thread) and by
 * the fuzzer. RFC 5322 (message format), RFC 2045/2046 (MIME).
 *
 * Invariants: the source file is only read (never through our caller's file
 * offset expectations: we seek our dup, callers use pread); part contents are
 * GMime substreams of the source (persist-stream mode), so memory does not
 * grow with the body; malformed input never fails a parse.
 */
#include "mime_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read to find the line ending style of the first line. */
#define MIME_NL_PROBE 4096
/* Read size of the boundary prescan. */
#define MIME_PRESCAN_CHUNK (64 * 1024)

/* mime_probe_crlf - does the first line of the range end in CRLF? */
static bool mime_probe_crlf(int fd, uint64_t offset, uint64_t len)
{
	char buf[MIME_NL_PROBE];
	size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
	ssize_t n;
	const char *nl;

	if (want == 0)
		return false;
	do {
		n = pread(fd, buf, want, (off_t)offset);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return false;
	nl = memchr(buf, '\n', (size_t)n);
	return nl != NULL && nl > buf && nl[-1] == '\r';
}

/*
 * mime_prescan - one streaming pass over the range before GMime sees it:
 * count lines that start with "--" (each possible boundary can open a part,
 * and GMime keeps about 1.3 KiB per part in memory, so 10 MB of tiny parts
 * would cost gigabytes) and find the end of the header section (the bytes up
 * to and including the first empty line, or the whole range). Counting stops
 * above MIME_MAX_BOUNDARY_LINES. 0 or -1 (read error, errno set).
 */
static int mime_prescan(int fd, uint64_t offset, uint64_t len, uint64_t *hdr_len_r,
	unsigned *dashes_r)
{
	char *buf = sg_xmalloc(MIME_PRESCAN_CHUNK);
	uint64_t pos = 0;
	unsigned dashes = 0;
	int col = 0;            /* 0 line start, 1 "-" seen, 2 CR at start, 3 rest */
	bool hdr_done = false;
	int rc = -1;

	*hdr_len_r = len;
	while (pos < len && (!hdr_done || dashes <= MIME_MAX_BOUNDARY_LINES)) {
		size_t want = len - pos < MIME_PRESCAN_CHUNK ? (size_t)(len - pos) :
			MIME_PRESCAN_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)(offset + pos));
		ssize_t i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto out;
		}
		for (i = 0; i < n; i++) {
			char c;

			if (col == 3) {
				/* inside a line: only its end matters */
				const char *nl = memchr(buf + i, '\n', (size_t)(n - i));

				if (nl == NULL)
					break;
				i = nl - buf;
			}
			c = buf[i];
			if (c == '\n') {
				if (!hdr_done && (col == 0 || col == 2)) {
					hdr_done = true;
					*hdr_len_r = pos + (uint64_t)i + 1;
				}
				col = 0;
			} else if (col == 0 && c == '-') {
				col = 1;
			} else if (col == 1 && c == '-') {
				dashes++;
				col = 3;
			} else if (col == 0 && c == '\r') {
				col = 2;
			} else {
				col = 3;
			}
		}
		pos += (uint64_t)n;
	}
	rc = 0;
out:
	*dashes_r = dashes;
	free(buf);
	return rc;
}

/*
 * mime_wrap_headerless - a message for input GMime cannot read as a message
 * (no header section at all: empty, binary, plain text): one text/plain part
 * whose content is the whole input, so it can still be passed through or
 * protected as a unit.
 */
static GMimeMessage *mime_wrap_headerless(GMimeStream *src, uint64_t offset, uint64_t len)
{
	GMimeMessage *gm = g_mime_message_new(FALSE);
	GMimePart *part = g_mime_part_new_with_type("text", "plain");
	GMimeStream *sub = g_mime_stream_substream(src, (gint64)offset,
		(gint64)(offset + len));
	GMimeDataWrapper *dw = g_mime_data_wrapper_new_with_stream(sub,
		GMIME_CONTENT_ENCODING_DEFAULT);

	g_mime_part_set_content(part, dw);
	g_mime_message_set_mime_part(gm, GMIME_OBJECT(part));
	g_object_unref(dw);
	g_object_unref(sub);
	g_object_unref(part);
	return gm;
}

/* mime_parser_options - tolerant options: we must read whatever arrives. */
static GMimeParserOptions *mime_parser_options(void)
{
	GMimeParserOptions *o = g_mime_parser_options_new();

	g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
	return o;
}

/* mime_msg_build - parse m's source range (once); -1 on a read error,
 * leaving m unparsed */
static int mime_msg_build(struct mime_msg *m)
{
	GMimeStream *sub = NULL;
	GMimeParser *parser = NULL;
	GMimeParserOptions *opts = NULL;
	uint64_t hdr_len = 0, len = m->len, offset = m->offset;
	unsigned dashes = 0;

	if (m->gm != NULL || m->fd < 0)
		return 0;
	if (mime_prescan(m->fd, offset, len, &hdr_len, &dashes) < 0)
		return -1;
	if (mime_probe_crlf(m->fd, offset, len))
		m->flags |= MIME_MSG_CRLF;
	m->src = g_mime_stream_fs_new_with_bounds(m->fd, 0, -1);
	g_mime_stream_fs_set_owner(GMIME_STREAM_FS(m->src), FALSE);
	if (dashes > MIME_MAX_BOUNDARY_LINES) {
		/* too many possible parts to build in memory: only the header
		 * section is parsed; the body stays opaque source bytes */
		m->flags |= MIME_MSG_OPAQUE;
		len = hdr_len;
	}
	sub = g_mime_stream_substream(m->src, (gint64)offset, (gint64)(offset + len));
	parser = g_mime_parser_new_with_stream(sub);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	g_mime_parser_set_persist_stream(parser, TRUE);
	opts = mime_parser_options();
	m->gm = g_mime_parser_construct_message(parser, opts);
	if (m->gm == NULL) {
		/* one opaque part of the whole input: nothing is built per part */
		m->flags &= ~(unsigned)MIME_MSG_OPAQUE;
		m->gm = mime_wrap_headerless(m->src, offset, m->len);
		m->flags |= MIME_MSG_NO_HEADERS;
	}
	g_mime_parser_options_free(opts);
	g_object_unref(parser);
	g_object_unref(sub);
	return 0;
}

GMimeMessage *mime_msg_gm(const struct mime_msg *cm)
{
	/* the parse is done on first use; the object was never const */
	struct mime_msg *m = (struct mime_msg *)(uintptr_t)cm;

	if (mime_msg_build(m) < 0) {
		/* a read error after the open: an empty message that cannot be
		 * walked or rebuilt (fail closed); unchanged, it is still copied
		 * from the source (or that copy fails the same way) */
		m->gm = g_mime_message_new(FALSE);
		m->flags |= MIME_MSG_OPAQUE;
	}
	return m->gm;
}

/* mime_msg_open_fd - dup fd and check the range; the parse waits */
struct mime_msg *mime_msg_open_fd(int fd, uint64_t offset, uint64_t len,
	struct sg_error *err)
{
	struct mime_msg *m = NULL;
	struct stat st;

	if (fd < 0 || offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset) {
		sg_error_set(err, SG_E_INVAL, "mime: bad source range");
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "mime: fstat");
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		sg_error_set(err, SG_E_INVAL, "mime: source is not a regular file");
		return NULL;
	}
	if ((uint64_t)st.st_size < offset + len) {
		sg_error_set(err, SG_E_IO, "mime: source has %jd bytes, range ends at %ju",
			(intmax_t)st.st_size, (uintmax_t)(offset + len));
		return NULL;
	}
	m = sg_xcalloc(1, sizeof(*m));
	m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (m->fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "mime: dup");
		free(m);
		return NULL;
	}
	m->offset = offset;
	m->len = len;
	return m;
}

/* mime_msg_parse_fd - mime_msg_open_fd, then parse at once (a read error
 * fails here, not later) */
struct mime_msg *mime_msg_parse_fd(int fd, uint64_t offset, uint64_t len,
	struct sg_error *err)
{
	struct mime_msg *m = mime_msg_open_fd(fd, offset, len, err);

	if (m == NULL)
		return NULL;
	if (mime_msg_build(m) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "mime: read source");
		mime_msg_free(&m);
		return NULL;
	}
	return m;
}

/* mime_msg_reparse - a fresh parse of m's source range */
struct mime_msg *mime_msg_reparse(const struct mime_msg *m, struct sg_error *err)
{
	if (m->fd < 0) {
		sg_error_set(err, SG_E_INVAL, "mime: generated message has no source to parse");
		return NULL;
	}
	return mime_msg_parse_fd(m->fd, m->offset, m->len, err);
}

/* mime_msg_is_calendar - D-3 */
bool mime_msg_is_calendar(struct mime_msg *m)
{
	GMimeObject *top = g_mime_message_get_mime_part(mime_msg_gm(m));
	GMimeContentType *ct;
	int i, n;

	if (top == NULL)
		return false;
	ct = g_mime_object_get_content_type(top);
	if (g_mime_content_type_is_type(ct, "text", "calendar"))
		return true;
	if (!GMIME_IS_MULTIPART(top) ||
		!g_mime_content_type_is_type(ct, "multipart", "alternative"))
		return false;
	n = g_mime_multipart_get_count(GMIME_MULTIPART(top));
	for (i = 0; i < n; i++) {
		GMimeObject *part = g_mime_multipart_get_part(GMIME_MULTIPART(top), i);

		if (g_mime_content_type_is_type(g_mime_object_get_content_type(part),
			"text", "calendar"))
			return true;
	}
	return false;
}

struct mime_msg *mime_msg_new_gmime(GMimeMessage *gm)
{
	struct mime_msg *m = sg_xcalloc(1, sizeof(*m));

	m->gm = g_object_ref(gm);
	m->fd = -1;
	m->flags = MIME_MSG_MODIFIED;
	return m;
}

void mime_msg_free(struct mime_msg **mp)
{
	struct mime_msg *m = *mp;

	if (m == NULL)
		return;
	/* The message's substreams hold references to src: drop it first. */
	if (m->gm != NULL)
		g_object_unref(m->gm);
	if (m->src != NULL)
		g_object_unref(m->src);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	*mp = NULL;
}

GMimeMessage *mime_msg_get0_gmime(struct mime_msg *m)
{
	return mime_msg_gm(m);
}

uint64_t mime_msg_source_size(const struct mime_msg *m)
{
	return m->fd >= 0 ? m->len : 0;
}

bool mime_msg_has_headers(const struct mime_msg *m)
{
	(void)mime_msg_gm(m);
	return (m->flags & MIME_MSG_NO_HEADERS) == 0;
}

bool mime_msg_is_opaque(const struct mime_msg *m)
{
	(void)mime_msg_gm(m);
	return (m->flags & MIME_MSG_OPAQUE) != 0;
}

bool mime_msg_is_modified(const struct mime_msg *m)
{
	return (m->flags & MIME_MSG_MODIFIED) != 0;
}

void mime_msg_set_modified(struct mime_msg *m)
{
	m->flags |= MIME_MSG_MODIFIED;
}
