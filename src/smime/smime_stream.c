/*
 * smime_stream.c - file-backed plumbing for the streaming S/MIME API
 * (smime_sign_fd, smime_encrypt_fd, smime_open_fd): read the header section
 * of a message from an fd, a source BIO that yields the entity to sign or
 * encrypt (its fields, then the body in canonical CRLF form, RFC 8551
 * §3.1.1) straight from the message file, a canonicalising writer into an
 * anonymous temporary file (memfd) for the content an incoming layer
 * unwraps, and buffered BIOs over fds.
 *
 * Called by smime_sign.c, smime_encrypt.c and smime_open.c in the caller's
 * thread. Memory per call is a few 16 KB buffers plus the header section;
 * the body of a message is never held in memory here. The only static state
 * is the source BIO's method table, made once (pthread_once) and read-only
 * afterwards.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/bio.h>

#include "smime/smime_int.h"

/* Pieces read and written; small enough that buffers of a 20 KB message
 * cost little, large enough that a big one takes few system calls. */
#define SMIME_CHUNK (16u * 1024)

int
smime_tmp_fd(struct sg_error *err)
{
	int fd = memfd_create("sealgate-smime", MFD_CLOEXEC);

	if (fd < 0)
		sg_error_set_errno(err, SG_E_IO, errno, "memfd_create");
	return fd;
}

int
smime_fd_write(int fd, const void *data, size_t len, struct sg_error *err)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			sg_error_set_errno(err, SG_E_IO, w < 0 ? errno : EIO, "write");
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

ssize_t
smime_fd_pread(int fd, void *buf, size_t n, uint64_t off, struct sg_error *err)
{
	ssize_t r;

	do
		r = pread(fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		sg_error_set_errno(err, SG_E_IO, errno, "read");
	return r;
}

/* has_empty_line - does p[0..n) hold LF LF or LF CR LF? One pass from line
 * break to line break: it stops at the first empty line (the end of a
 * header section) instead of searching the whole piece twice. */
static bool
has_empty_line(const char *p, size_t n)
{
	const char *q = p, *end = p + n;

	while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		q++;
		if (q < end && *q == '\n')
			return true;
		if (end - q >= 2 && q[0] == '\r' && q[1] == '\n')
			return true;
	}
	return false;
}

int
smime_split_fd(int fd, uint64_t len, size_t max, struct smime_split *s, uint64_t *body_r,
	struct sg_error *err)
{
	struct sg_buf h;
	char tmp[8192];
	int rc = -1;

	/* the header section alone, in pieces, until its empty line */
	sg_buf_init(&h, max);
	while (h.len < len) {
		size_t want = len - h.len < sizeof(tmp) ? (size_t)(len - h.len) : sizeof(tmp);
		size_t scan = h.len > 2 ? h.len - 2 : 0;
		ssize_t r = smime_fd_pread(fd, tmp, want, h.len, err);

		if (r < 0)
			goto out;
		if (r == 0) {
			sg_error_set(err, SG_E_IO, "message shorter than %llu bytes",
				(unsigned long long)len);
			goto out;
		}
		if (sg_buf_append(&h, tmp, (size_t)r, err) < 0)
			goto out;
		/* an empty line complete within what was read: at the start, or
		 * in the new piece (looking back over the previous piece's last
		 * line break) - each byte is searched a bounded number of times */
		if ((scan == 0 && (h.data[0] == '\n' ||
			(h.len >= 2 && h.data[0] == '\r' && h.data[1] == '\n'))) ||
		    has_empty_line(h.data + scan, h.len - scan))
			break;
	}
	rc = smime_split_head(h.data != NULL ? h.data : "", h.len, len, max, s, body_r, err);
out:
	sg_buf_deinit(&h);
	return rc;
}

/* smime_canon - one canonicalising copy into a temporary file */
struct smime_canon {
	int fd;
	EVP_MD_CTX *md;
	bool prev_cr;          /* the last byte put was CR */
	char buf[SMIME_CHUNK];
	size_t n;
	uint64_t total, max;
};

static int
canon_flush(struct smime_canon *o, struct sg_error *err)
{
	if (o->n == 0)
		return 0;
	if (o->md != NULL && !EVP_DigestUpdate(o->md, o->buf, o->n)) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "digest");
		return -1;
	}
	if (smime_fd_write(o->fd, o->buf, o->n, err) < 0)
		return -1;
	o->total += o->n;
	o->n = 0;
	if (o->total > o->max) {
		sg_error_set(err, SG_E_LIMIT, "S/MIME entity over %llu bytes",
			(unsigned long long)o->max);
		return -1;
	}
	return 0;
}

/* canon_raw - append bytes as they are */
static int
canon_raw(struct smime_canon *o, const char *p, size_t n, struct sg_error *err)
{
	while (n > 0) {
		size_t k = SMIME_CHUNK - o->n < n ? SMIME_CHUNK - o->n : n;

		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p += k;
		n -= k;
		if (o->n == SMIME_CHUNK && canon_flush(o, err) < 0)
			return -1;
	}
	return 0;
}

struct smime_canon *
smime_canon_open(const struct sg_buf *prefix, EVP_MD_CTX *md, uint64_t max,
	struct sg_error *err)
{
	struct smime_canon *o = sg_xmalloc(sizeof(*o));

	o->fd = smime_tmp_fd(err);
	o->md = md;
	o->prev_cr = false;
	o->n = 0;
	o->total = 0;
	o->max = max;
	if (o->fd < 0 || (prefix != NULL && prefix->len > 0 &&
		canon_raw(o, prefix->data, prefix->len, err) < 0)) {
		smime_canon_free(&o);
		return NULL;
	}
	return o;
}

int
smime_canon_put(struct smime_canon *o, const void *data, size_t len, struct sg_error *err)
{
	const char *in = data, *p = in, *end = in + len, *run = in;

	if (len == 0)
		return 0;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));

		if (lf == NULL)
			break;
		if (lf == in ? !o->prev_cr : lf[-1] != '\r') {
			if (canon_raw(o, run, (size_t)(lf - run), err) < 0 ||
			    canon_raw(o, "\r\n", 2, err) < 0)
				return -1;
			run = lf + 1;
		}
		p = lf + 1;
	}
	if (canon_raw(o, run, (size_t)(end - run), err) < 0)
		return -1;
	o->prev_cr = end[-1] == '\r';
	return 0;
}

int
smime_canon_put_fd(struct smime_canon *o, int fd, uint64_t from, uint64_t to,
	struct sg_error *err)
{
	char *in = sg_xmalloc(SMIME_CHUNK);
	int rc = -1;

	while (from < to) {
		size_t want = to - from < SMIME_CHUNK ? (size_t)(to - from) : SMIME_CHUNK;
		ssize_t r = smime_fd_pread(fd, in, want, from, err);

		if (r < 0)
			goto out;
		if (r == 0) {
			sg_error_set(err, SG_E_IO, "message shorter than %llu bytes",
				(unsigned long long)to);
			goto out;
		}
		if (smime_canon_put(o, in, (size_t)r, err) < 0)
			goto out;
		from += (uint64_t)r;
	}
	rc = 0;
out:
	free(in);
	return rc;
}

int
smime_canon_close(struct smime_canon **op, uint64_t *len_r, struct sg_error *err)
{
	struct smime_canon *o = *op;
	int fd;

	if (canon_flush(o, err) < 0)
		goto fail;
	if (lseek(o->fd, 0, SEEK_SET) != 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "lseek");
		goto fail;
	}
	*len_r = o->total;
	fd = o->fd;
	o->fd = -1;
	smime_canon_free(op);
	return fd;
fail:
	smime_canon_free(op);
	return -1;
}

void
smime_canon_free(struct smime_canon **op)
{
	if (*op == NULL)
		return;
	if ((*op)->fd >= 0)
		close((*op)->fd);
	free(*op);
	*op = NULL;
}

/* ------------------------------------------------- source BIO */

/* A read-only BIO: a borrowed prefix as it is, then bytes [off, end) of fd
 * with bare LF -> CRLF (RFC 8551 canonical form), read with pread. */
struct smime_src {
	int fd;
	uint64_t off, end, produced, max;
	const char *pre;
	size_t pre_len, pre_off;
	bool prev_cr;       /* the last body byte handed out was CR */
	bool owe_lf;        /* a bare LF became CR; its LF is still owed */
	bool is_over;       /* more than max bytes: reading failed */
	bool is_ioerr;
	size_t raw_pos, raw_len;
	char raw[SMIME_CHUNK];
};

static size_t
src_body(struct smime_src *c, char *out, size_t outl)
{
	size_t n = 0;

	while (n < outl) {
		const char *p, *lf;
		size_t avail, run;

		if (c->owe_lf) {
			out[n++] = '\n';
			c->owe_lf = false;
			c->prev_cr = false;
			continue;
		}
		if (c->raw_pos == c->raw_len) {
			size_t want = c->end - c->off < SMIME_CHUNK ? (size_t)(c->end - c->off) :
				SMIME_CHUNK;
			ssize_t r;

			if (want == 0)
				break;
			do
				r = pread(c->fd, c->raw, want, (off_t)c->off);
			while (r < 0 && errno == EINTR);
			if (r <= 0) {
				c->is_ioerr = true;
				break;
			}
			c->off += (uint64_t)r;
			c->raw_pos = 0;
			c->raw_len = (size_t)r;
		}
		p = c->raw + c->raw_pos;
		avail = c->raw_len - c->raw_pos;
		lf = memchr(p, '\n', avail);
		run = lf != NULL ? (size_t)(lf - p) : avail;
		if (run > outl - n)
			run = outl - n;
		if (run > 0) {
			memcpy(out + n, p, run);
			n += run;
			c->raw_pos += run;
			c->prev_cr = p[run - 1] == '\r';
			continue;
		}
		/* at an LF */
		c->raw_pos++;
		if (c->prev_cr) {
			out[n++] = '\n';
			c->prev_cr = false;
		} else {
			out[n++] = '\r';
			c->owe_lf = true;
		}
	}
	return n;
}

static int
src_read(BIO *b, char *out, int outl)
{
	struct smime_src *c = BIO_get_data(b);
	size_t n = 0;

	BIO_clear_retry_flags(b);
	if (c == NULL || outl <= 0 || c->is_over || c->is_ioerr)
		return c != NULL && !c->is_over && !c->is_ioerr ? 0 : -1;
	if (c->pre_off < c->pre_len) {
		n = c->pre_len - c->pre_off < (size_t)outl ? c->pre_len - c->pre_off : (size_t)outl;
		memcpy(out, c->pre + c->pre_off, n);
		c->pre_off += n;
	}
	n += src_body(c, out + n, (size_t)outl - n);
	if (c->is_ioerr)
		return -1;
	c->produced += n;
	if (c->produced > c->max) {
		c->is_over = true;
		return -1;
	}
	return (int)n;
}

static long
src_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct smime_src *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_EOF:
		return c == NULL || (c->pre_off == c->pre_len && !c->owe_lf &&
			c->raw_pos == c->raw_len && c->off >= c->end);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int
src_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *src_method;   /* made once (pthread_once), never changed */
static pthread_once_t src_once = PTHREAD_ONCE_INIT;

static void
src_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
		"sealgate smime source");

	if (m != NULL && (!BIO_meth_set_read(m, src_read) || !BIO_meth_set_ctrl(m, src_ctrl) ||
	    !BIO_meth_set_destroy(m, src_destroy))) {
		BIO_meth_free(m);
		m = NULL;
	}
	src_method = m;
}

BIO *
smime_src_open(int fd, uint64_t from, uint64_t to, const struct sg_buf *prefix,
	uint64_t max, struct sg_error *err)
{
	struct smime_src *c;
	BIO *b;

	(void)pthread_once(&src_once, src_method_init);
	b = src_method != NULL ? BIO_new(src_method) : NULL;
	if (b == NULL) {
		sg_error_set_openssl(err, SG_E_NOMEM, "BIO_new");
		return NULL;
	}
	c = sg_xmalloc(sizeof(*c));
	c->fd = fd;
	c->off = from;
	c->end = to > from ? to : from;
	c->produced = 0;
	c->max = max;
	c->pre = prefix != NULL && prefix->data != NULL ? prefix->data : "";
	c->pre_len = prefix != NULL ? prefix->len : 0;
	c->pre_off = 0;
	c->prev_cr = c->owe_lf = c->is_over = c->is_ioerr = false;
	c->raw_pos = c->raw_len = 0;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	return b;
}

int
smime_src_check(BIO *b, struct sg_error *err)
{
	struct smime_src *c = b != NULL ? BIO_get_data(b) : NULL;

	if (c == NULL)
		return 0;
	if (c->is_over) {
		sg_error_set(err, SG_E_LIMIT, "S/MIME entity over %llu bytes",
			(unsigned long long)c->max);
		return -1;
	}
	if (c->is_ioerr) {
		sg_error_set(err, SG_E_IO, "read of the message failed or it was shorter "
			"than %llu bytes", (unsigned long long)c->end);
		return -1;
	}
	return 0;
}

int
smime_fd_copy(int from_fd, uint64_t len, int to_fd, struct sg_error *err)
{
	char *buf = sg_xmalloc(SMIME_CHUNK);
	uint64_t off = 0;
	int rc = -1;

	while (off < len) {
		size_t want = len - off < SMIME_CHUNK ? (size_t)(len - off) : SMIME_CHUNK;
		ssize_t r = smime_fd_pread(from_fd, buf, want, off, err);

		if (r < 0)
			goto out;
		if (r == 0) {
			sg_error_set(err, SG_E_IO, "file shorter than %llu bytes",
				(unsigned long long)len);
			goto out;
		}
		if (smime_fd_write(to_fd, buf, (size_t)r, err) < 0)
			goto out;
		off += (uint64_t)r;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

BIO *
smime_out_open(int fd, struct sg_error *err)
{
	BIO *f = BIO_new_fd(fd, BIO_NOCLOSE), *b = BIO_new(BIO_f_buffer());

	if (f == NULL || b == NULL || !BIO_set_write_buffer_size(b, SMIME_CHUNK)) {
		sg_error_set_openssl(err, SG_E_NOMEM, "BIO_new");
		BIO_free(f);
		BIO_free(b);
		return NULL;
	}
	return BIO_push(b, f);
}

int
smime_out_close(BIO **bp, struct sg_error *err)
{
	int rc = 0;

	if (*bp == NULL)
		return 0;
	if (BIO_flush(*bp) <= 0) {
		sg_error_set_openssl(err, SG_E_IO, "write S/MIME output");
		rc = -1;
	}
	BIO_free_all(*bp);
	*bp = NULL;
	return rc;
}

int64_t
smime_fd_since(int fd, uint64_t start, struct sg_error *err)
{
	off_t cur = lseek(fd, 0, SEEK_CUR);

	if (cur < 0 || (uint64_t)cur < start) {
		sg_error_set_errno(err, SG_E_IO, cur < 0 ? errno : EINVAL, "lseek");
		return -1;
	}
	return (int64_t)((uint64_t)cur - start);
}

int
smime_fd_to_buf(int fd, uint64_t len, struct sg_buf *out, struct sg_error *err)
{
	char tmp[16384];
	uint64_t off = 0;

	while (off < len) {
		size_t want = len - off < sizeof(tmp) ? (size_t)(len - off) : sizeof(tmp);
		ssize_t r = smime_fd_pread(fd, tmp, want, off, err);

		if (r < 0)
			return -1;
		if (r == 0) {
			sg_error_set(err, SG_E_IO, "output shorter than written");
			return -1;
		}
		if (sg_buf_append(out, tmp, (size_t)r, err) < 0)
			return -1;
		off += (uint64_t)r;
	}
	return 0;
}

int
smime_out_finish(BIO **bp, int out_fd, uint64_t start, size_t max, int64_t *written_r,
	struct sg_error *err)
{
	if (smime_out_close(bp, err) < 0)
		return -1;
	*written_r = smime_fd_since(out_fd, start, err);
	if (*written_r < 0)
		return -1;
	if ((uint64_t)*written_r > max) {
		sg_error_set(err, SG_E_LIMIT, "S/MIME output over %zu bytes", max);
		return -1;
	}
	return 0;
}

int
smime_buf_via_fds(const void *msg, size_t len, struct sg_buf *out, const char *what,
	smime_fd_op *op, const void *arg, struct sg_error *err)
{
	int ifd = -1, ofd = -1, rc = -1;
	uint64_t n = 0;
	size_t start;

	if (out == NULL || (msg == NULL && len > 0)) {
		sg_error_set(err, SG_E_INVAL, "%s: bad arguments", what);
		return -1;
	}
	ifd = smime_tmp_fd(err);
	ofd = ifd >= 0 ? smime_tmp_fd(err) : -1;
	if (ofd < 0 || smime_fd_write(ifd, msg, len, err) < 0 ||
	    op(ifd, len, ofd, &n, arg, err) < 0)
		goto out;
	start = out->len;
	rc = smime_fd_to_buf(ofd, n, out, err);
	if (rc < 0)
		smime_out_rollback(out, start);
out:
	if (ifd >= 0)
		close(ifd);
	if (ofd >= 0)
		close(ofd);
	return rc;
}
