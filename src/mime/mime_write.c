/*
 * mime_write.c - stream a message out: the source bytes unchanged when
 * nothing was modified (pass-through is byte-identical), else GMime's
 * serialisation through a small GMimeStream that forwards every write to a
 * callback (the spool writer, a file), so nothing is held in memory.
 *
 * Called by the MPA output sinks, one message per thread.
 */
#include "mime_int.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define MIME_COPY_CHUNK (64 * 1024)

/* ------------------------------------------------- callback stream (GObject) */

typedef struct {
	GMimeStream parent_object;
	mime_write_fn *fn;
	void *arg;
	uint64_t max;
	uint64_t written;
	struct sg_error *err;
	bool failed;        /* err is set; every later write fails */
} MimeCbStream;

typedef struct {
	GMimeStreamClass parent_class;
} MimeCbStreamClass;

static GType mime_cb_stream_get_type(void);
G_DEFINE_TYPE(MimeCbStream, mime_cb_stream, GMIME_TYPE_STREAM)

/* mime_cb_stream_write - enforce the cap, then hand the bytes on */
static ssize_t mime_cb_stream_write(GMimeStream *stream, const char *buf, size_t len)
{
	MimeCbStream *s = (MimeCbStream *)stream;

	if (s->failed)
		return -1;
	if (s->max > 0 && len > s->max - s->written) {
		sg_error_set(s->err, SG_E_LIMIT, "message larger than %ju bytes",
			(uintmax_t)s->max);
		s->failed = true;
		return -1;
	}
	if (len > 0 && s->fn(s->arg, buf, len, s->err) < 0) {
		s->failed = true;
		return -1;
	}
	s->written += len;
	stream->position += (gint64)len;
	return (ssize_t)len;
}

static ssize_t mime_cb_stream_read(GMimeStream *stream, char *buf, size_t len)
{
	return -1;
}

static int mime_cb_stream_flush(GMimeStream *stream)
{
	return ((MimeCbStream *)stream)->failed ? -1 : 0;
}

static int mime_cb_stream_close(GMimeStream *stream)
{
	return 0;
}

static gboolean mime_cb_stream_eos(GMimeStream *stream)
{
	return FALSE;
}

static int mime_cb_stream_reset(GMimeStream *stream)
{
	return -1;
}

static gint64 mime_cb_stream_seek(GMimeStream *stream, gint64 offset,
	GMimeSeekWhence whence)
{
	return -1;
}

static gint64 mime_cb_stream_tell(GMimeStream *stream)
{
	return stream->position;
}

static gint64 mime_cb_stream_length(GMimeStream *stream)
{
	return -1;
}

static GMimeStream *mime_cb_stream_substream(GMimeStream *stream, gint64 start,
	gint64 end)
{
	return NULL;
}

static void mime_cb_stream_class_init(MimeCbStreamClass *klass)
{
	GMimeStreamClass *sc = GMIME_STREAM_CLASS(klass);

	sc->read = mime_cb_stream_read;
	sc->write = mime_cb_stream_write;
	sc->flush = mime_cb_stream_flush;
	sc->close = mime_cb_stream_close;
	sc->eos = mime_cb_stream_eos;
	sc->reset = mime_cb_stream_reset;
	sc->seek = mime_cb_stream_seek;
	sc->tell = mime_cb_stream_tell;
	sc->length = mime_cb_stream_length;
	sc->substream = mime_cb_stream_substream;
}

static void mime_cb_stream_init(MimeCbStream *s)
{
	s->fn = NULL;
	s->failed = false;
}

/* ---------------------------------------------------------------- writing */

/* mime_copy_source - pread the source range and pass it on unchanged */
static int mime_copy_source(struct mime_msg *m, uint64_t max, mime_write_fn *fn,
	void *arg, uint64_t *size_r, struct sg_error *err)
{
	char *buf = NULL;
	uint64_t pos = 0;
	int rc = -1;

	if (max > 0 && m->len > max) {
		sg_error_set(err, SG_E_LIMIT, "message larger than %ju bytes", (uintmax_t)max);
		goto out;
	}
	buf = sg_xmalloc(MIME_COPY_CHUNK);
	while (pos < m->len) {
		size_t want = m->len - pos < MIME_COPY_CHUNK ? (size_t)(m->len - pos) :
			MIME_COPY_CHUNK;
		ssize_t n = pread(m->fd, buf, want, (off_t)(m->offset + pos));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sg_error_set_errno(err, SG_E_IO, errno, "mime: read source");
			goto out;
		}
		if (n == 0) {
			sg_error_set(err, SG_E_IO, "mime: source truncated at %ju of %ju bytes",
				(uintmax_t)pos, (uintmax_t)m->len);
			goto out;
		}
		if (fn(arg, buf, (size_t)n, err) < 0)
			goto out;
		pos += (uint64_t)n;
	}
	rc = 0;
out:
	if (size_r != NULL)
		*size_r = pos;
	free(buf);
	return rc;
}

/* mime_serialise - GMime writes the (modified) message into a callback stream */
static int mime_serialise(struct mime_msg *m, uint64_t max, mime_write_fn *fn, void *arg,
	uint64_t *size_r, struct sg_error *err)
{
	MimeCbStream *s = g_object_new(mime_cb_stream_get_type(), NULL);
	GMimeFormatOptions *fo = g_mime_format_options_new();
	ssize_t n;
	int rc = -1;

	g_mime_stream_construct(GMIME_STREAM(s), 0, -1);
	s->fn = fn;
	s->arg = arg;
	s->max = max;
	s->err = err;
	g_mime_format_options_set_newline_format(fo, (m->flags & MIME_MSG_CRLF) != 0 ?
		GMIME_NEWLINE_FORMAT_DOS : GMIME_NEWLINE_FORMAT_UNIX);
	n = g_mime_object_write_to_stream(GMIME_OBJECT(m->gm), fo, GMIME_STREAM(s));
	if (n >= 0 && !s->failed)
		(void)g_mime_stream_flush(GMIME_STREAM(s));
	if (s->failed)
		goto out;
	if (n < 0) {
		sg_error_set(err, SG_E_IO, "mime: serialising failed (source unreadable?)");
		goto out;
	}
	rc = 0;
out:
	if (size_r != NULL)
		*size_r = s->written;
	g_mime_format_options_free(fo);
	g_object_unref(s);
	return rc;
}

int mime_msg_write(struct mime_msg *m, uint64_t max, mime_write_fn *fn, void *arg,
	uint64_t *size_r, struct sg_error *err)
{
	if ((m->flags & MIME_MSG_MODIFIED) == 0 && m->fd >= 0)
		return mime_copy_source(m, max, fn, arg, size_r, err);
	(void)mime_msg_gm(m);   /* (modified: parsed already) */
	if ((m->flags & MIME_MSG_OPAQUE) != 0) {
		/* its body was never parsed: rebuilding it would drop the body */
		if (size_r != NULL)
			*size_r = 0;
		sg_error_set(err, SG_E_LIMIT, "message has more than %d possible MIME "
			"parts: cannot be rewritten", MIME_MAX_BOUNDARY_LINES);
		return -1;
	}
	return mime_serialise(m, max, fn, arg, size_r, err);
}

static int mime_fd_write(void *arg, const void *data, size_t len, struct sg_error *err)
{
	int fd = *(int *)arg;

	if (sg_write_all(fd, data, len) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "mime: write");
		return -1;
	}
	return 0;
}

int mime_msg_write_fd(struct mime_msg *m, int fd, uint64_t max, uint64_t *size_r,
	struct sg_error *err)
{
	return mime_msg_write(m, max, mime_fd_write, &fd, size_r, err);
}
