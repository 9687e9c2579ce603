/*
 * spool_file.c - writing and reading message files (F-FLOW-1, STYLE §9).
 *
 * Writers run in the SMTP receive path (one writer per transaction, one
 * thread) and in MPA workers (batch outputs). Readers run in MPA and
 * delivery workers and in the CLI. The format is described in spool_int.h.
 *
 * Invariants:
 *  - a file in a queue directory was completely written, fsync'ed and
 *    renamed there; only tmp/ holds partial files;
 *  - a reader accepts a file only if every record is well formed and
 *    bounded, the trailer sits exactly at the end of the file, and its body
 *    length (and, for spool_msg_open, SHA-256) matches the body;
 *  - the body streams: the writer buffers at most SPOOL_WBUF_SIZE bytes,
 *    the reader hands out an fd and a byte range.
 */
#include "spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_DAMAGED "incomplete or damaged spool file"

/* ----------------------------------------------------------------- writer */

/* env_check_str - a field written to a record must fit SPOOL_FIELD_MAX. */
static int env_check_str(const char *what, const char *s, struct sg_error *err)
{
	if (s != NULL && strlen(s) > SPOOL_FIELD_MAX) {
		sg_error_set(err, SG_E_LIMIT, "envelope %s longer than %d bytes", what,
			SPOOL_FIELD_MAX);
		return -1;
	}
	return 0;
}

/* spool_env_check - the envelope fits the file format's bounds. */
static int spool_env_check(const struct spool_env *env, struct sg_error *err)
{
	size_t i;

	if (env->nrcpts > SPOOL_RCPTS_MAX) {
		sg_error_set(err, SG_E_LIMIT, "more than %d recipients", SPOOL_RCPTS_MAX);
		return -1;
	}
	if ((unsigned)env->kind > SPOOL_KIND_BOUNCE) {
		sg_error_set(err, SG_E_INVAL, "bad message kind %d", (int)env->kind);
		return -1;
	}
	if (env->parent_id != NULL && !sg_mail_id_is_valid(env->parent_id)) {
		sg_error_set(err, SG_E_INVAL, "bad parent id");
		return -1;
	}
	if (env_check_str("sender", env->sender, err) < 0 ||
		env_check_str("client address", env->client_addr, err) < 0 ||
		env_check_str("client HELO", env->client_helo, err) < 0 ||
		env_check_str("DSN ENVID", env->dsn_envid, err) < 0)
		return -1;
	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].addr == NULL) {
			sg_error_set(err, SG_E_INVAL, "recipient %zu has no address", i);
			return -1;
		}
		if (env_check_str("recipient", env->rcpts[i].addr, err) < 0 ||
			env_check_str("ORCPT", env->rcpts[i].orcpt, err) < 0)
			return -1;
		if (env->rcpts[i].notify > 0xF) {
			sg_error_set(err, SG_E_INVAL, "bad NOTIFY flags");
			return -1;
		}
	}
	return 0;
}

/* writer_flush - write the buffered bytes; marks the writer failed on error. */
static int writer_flush(struct spool_writer *w, struct sg_error *err)
{
	if (w->wlen == 0)
		return 0;
	if (spool_io_write(w->fd, w->wbuf, w->wlen) < 0) {
		w->is_failed = true;
		sg_error_set_errno(err, SG_E_IO, errno, "%s: write spool file", w->env.id);
		return -1;
	}
	w->wlen = 0;
	return 0;
}

static int writer_put(struct spool_writer *w, const void *data, size_t len,
	struct sg_error *err)
{
	const unsigned char *p = data;

	while (len > 0) {
		size_t n = SPOOL_WBUF_SIZE - w->wlen;

		if (n > len)
			n = len;
		memcpy(w->wbuf + w->wlen, p, n);
		w->wlen += n;
		p += n;
		len -= n;
		if (w->wlen == SPOOL_WBUF_SIZE && writer_flush(w, err) < 0)
			return -1;
	}
	return 0;
}

static int writer_put_rec(struct spool_writer *w, enum spool_rec type, const void *data,
	size_t len, struct sg_error *err)
{
	unsigned char hdr[SPOOL_REC_HDR_LEN];

	hdr[0] = (unsigned char)type;
	spool_put_u32(hdr + 1, (uint32_t)len);
	if (writer_put(w, hdr, sizeof(hdr), err) < 0)
		return -1;
	return writer_put(w, data, len, err);
}

static int writer_put_str(struct spool_writer *w, enum spool_rec type, const char *s,
	struct sg_error *err)
{
	if (s == NULL)
		return 0;
	return writer_put_rec(w, type, s, strlen(s), err);
}

/* writer_put_rcpt - notify u8, has-orcpt u8, u16 address length, address, orcpt. */
static int writer_put_rcpt(struct spool_writer *w, const struct spool_rcpt *r,
	struct sg_error *err)
{
	unsigned char rec[SPOOL_REC_MAX];
	size_t alen = strlen(r->addr);
	size_t olen = r->orcpt != NULL ? strlen(r->orcpt) : 0;

	rec[0] = (unsigned char)r->notify;
	rec[1] = r->orcpt != NULL;
	rec[2] = (unsigned char)(alen >> 8);
	rec[3] = (unsigned char)alen;
	memcpy(rec + 4, r->addr, alen);
	if (olen > 0)
		memcpy(rec + 4 + alen, r->orcpt, olen);
	return writer_put_rec(w, SPOOL_REC_RCPT, rec, 4 + alen + olen, err);
}

static int writer_put_env(struct spool_writer *w, struct sg_error *err)
{
	const struct spool_env *env = &w->env;
	unsigned char b[8];
	size_t i;

	if (writer_put_rec(w, SPOOL_REC_ID, env->id, SG_MAIL_ID_LEN, err) < 0 ||
		writer_put_rec(w, SPOOL_REC_SENDER, env->sender != NULL ? env->sender : "",
			env->sender != NULL ? strlen(env->sender) : 0, err) < 0)
		return -1;
	for (i = 0; i < env->nrcpts; i++) {
		if (writer_put_rcpt(w, &env->rcpts[i], err) < 0)
			return -1;
	}
	b[0] = (unsigned char)env->kind;
	if (writer_put_rec(w, SPOOL_REC_KIND, b, 1, err) < 0)
		return -1;
	b[0] = (unsigned char)((env->dsn_ret_hdrs ? SPOOL_FL_RET_HDRS : 0) |
		(env->smtputf8 ? SPOOL_FL_SMTPUTF8 : 0) | (env->body_8bit ? SPOOL_FL_8BIT : 0) |
		(w->is_batch ? SPOOL_FL_BATCH_OUT : 0));
	if (writer_put_rec(w, SPOOL_REC_FLAGS, b, 1, err) < 0)
		return -1;
	spool_put_u64(b, (uint64_t)env->arrival);
	if (writer_put_rec(w, SPOOL_REC_ARRIVAL, b, 8, err) < 0)
		return -1;
	if (writer_put_str(w, SPOOL_REC_CLIENT_ADDR, env->client_addr, err) < 0 ||
		writer_put_str(w, SPOOL_REC_CLIENT_HELO, env->client_helo, err) < 0 ||
		writer_put_str(w, SPOOL_REC_PARENT, env->parent_id, err) < 0 ||
		writer_put_str(w, SPOOL_REC_ENVID, env->dsn_envid, err) < 0)
		return -1;
	return 0;
}

struct spool_writer *spool_writer_new(struct spool *sp, const struct spool_env *env,
	uint64_t max_size, struct sg_error *err)
{
	struct spool_writer *w = NULL;
	unsigned char hdr[SPOOL_BODY_OFFSET];
	int tries;

	if (spool_env_check(env, err) < 0)
		return NULL;
	w = sg_xcalloc(1, sizeof(*w));
	w->sp = sp;
	w->fd = -1;
	w->max_size = max_size;
	spool_env_copy(&w->env, env);
	/* Delivery state starts fresh; it lives in state/<id> anyway. */
	w->env.attempts = 0;
	w->env.next_attempt = 0;
	free(w->env.last_error);
	w->env.last_error = NULL;
	for (tries = 0; tries < 8 && w->fd < 0; tries++) {
		sg_mail_id_new(w->env.id);
		if (spool_path(sp, SPOOL_DIR_TMP, w->env.id, w->tmp_path, sizeof(w->tmp_path),
			err) < 0)
			goto fail;
		w->fd = spool_pool_open(sp, w->tmp_path);
		if (w->fd < 0 && errno != EEXIST) {
			sg_error_set_errno(err, SG_E_IO, errno, "create %s", w->tmp_path);
			w->tmp_path[0] = '\0';
			goto fail;
		}
	}
	if (w->fd < 0) {
		sg_error_set(err, SG_E_IO, "cannot allocate a unique mail ID");
		w->tmp_path[0] = '\0';
		goto fail;
	}
	w->md = EVP_MD_CTX_new();
	if (w->md == NULL || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "SHA-256 init");
		goto fail;
	}
	w->wbuf = sg_xmalloc(SPOOL_WBUF_SIZE);
	memcpy(hdr, SPOOL_MAGIC, SPOOL_MAGIC_LEN);
	hdr[SPOOL_MAGIC_LEN] = SPOOL_REC_BODY;
	spool_put_u64(hdr + SPOOL_MAGIC_LEN + 1, SPOOL_BODY_PLACEHOLDER);
	if (writer_put(w, hdr, sizeof(hdr), err) < 0)
		goto fail;
	return w;
fail:
	spool_writer_abort(&w);
	return NULL;
}

const char *spool_writer_id(const struct spool_writer *w)
{
	return w->env.id;
}

struct spool_env *spool_writer_env(struct spool_writer *w)
{
	return &w->env;
}

uint64_t spool_writer_size(const struct spool_writer *w)
{
	return w->body_len;
}

int spool_writer_write(struct spool_writer *w, const void *data, size_t len,
	struct sg_error *err)
{
	if (w->is_failed) {
		sg_error_set(err, SG_E_IO, "%s: spool file write failed earlier", w->env.id);
		return -1;
	}
	if (w->max_size != 0 && (len > w->max_size || w->body_len > w->max_size - len)) {
		sg_error_set(err, SG_E_LIMIT, "message size exceeds %llu bytes",
			(unsigned long long)w->max_size);
		return -1;
	}
	if (len == 0)
		return 0;
	if (EVP_DigestUpdate(w->md, data, len) != 1) {
		w->is_failed = true;
		sg_error_set_openssl(err, SG_E_CRYPTO, "SHA-256 update");
		return -1;
	}
	w->body_len += len;
	return writer_put(w, data, len, err);
}

/* ------------------------------------------------------ verified files */

/*
 * Reading a message checks its body against the trailer's SHA-256 (damage,
 * a torn write before a crash). A file this process wrote and fsync'ed, or
 * already checked, and that is unchanged since (inode, size, mtime) does not
 * need the check again: the pipeline and delivery each open every message,
 * and hashing 1 MB three times was a third of the daemon's CPU. Files of an
 * earlier run, and every file read by another process (the CLI), are
 * checked in full. Only this process's own writes change a spool file; the
 * entry is refreshed at every commit, so a recycled inode never matches an
 * entry of its earlier content unless size and mtime are equal too, and
 * then the entry is the new content's (written by the same writer).
 */
void spool_verified_init(struct spool *sp)
{
	pthread_mutex_init(&sp->ver_mu, NULL);
	sp->ver = sg_xcalloc(SPOOL_VERIFIED_SLOTS, sizeof(*sp->ver));
}

void spool_verified_deinit(struct spool *sp)
{
	pthread_mutex_destroy(&sp->ver_mu);
	free(sp->ver);
	sp->ver = NULL;
}

static struct spool_verified *verified_slot(struct spool *sp, const struct stat *st)
{
	return &sp->ver[((uint64_t)st->st_ino * 0x9E3779B97F4A7C15ull >> 40) %
		SPOOL_VERIFIED_SLOTS];
}

static void verified_set(struct spool *sp, const struct stat *st)
{
	struct spool_verified *v = verified_slot(sp, st);

	pthread_mutex_lock(&sp->ver_mu);
	v->dev = st->st_dev;
	v->ino = st->st_ino;
	v->size = st->st_size;
	v->mtime = st->st_mtim;
	pthread_mutex_unlock(&sp->ver_mu);
}

static bool verified_has(struct spool *sp, const struct stat *st)
{
	struct spool_verified *v = verified_slot(sp, st);
	bool ok;

	pthread_mutex_lock(&sp->ver_mu);
	ok = v->ino == st->st_ino && v->dev == st->st_dev && v->size == st->st_size &&
		v->mtime.tv_sec == st->st_mtim.tv_sec && v->mtime.tv_nsec == st->st_mtim.tv_nsec;
	pthread_mutex_unlock(&sp->ver_mu);
	return ok;
}

/* spool_writer_finish - patch the body length, append envelope and trailer,
 * fsync and close (a batch output: neither; its batch does). The file stays
 * in tmp/. */
int spool_writer_finish(struct spool_writer *w, struct sg_error *err)
{
	unsigned char len_be[8];
	unsigned char end[8 + 32];
	unsigned int mdlen = 0;
	struct stat st;

	if (w->is_failed) {
		sg_error_set(err, SG_E_IO, "%s: spool file write failed earlier", w->env.id);
		return -1;
	}
	if (spool_env_check(&w->env, err) < 0)
		return -1;
	if (writer_flush(w, err) < 0)
		return -1;
	spool_put_u64(len_be, w->body_len);
	if (spool_io_pwrite(w->fd, len_be, 8, SPOOL_MAGIC_LEN + 1) < 0) {
		w->is_failed = true;
		sg_error_set_errno(err, SG_E_IO, errno, "%s: write spool file", w->env.id);
		return -1;
	}
	if (writer_put_env(w, err) < 0)
		return -1;
	spool_put_u64(end, w->body_len);
	if (EVP_DigestFinal_ex(w->md, end + 8, &mdlen) != 1 || mdlen != 32) {
		w->is_failed = true;
		sg_error_set_openssl(err, SG_E_CRYPTO, "SHA-256 final");
		return -1;
	}
	if (writer_put_rec(w, SPOOL_REC_END, end, sizeof(end), err) < 0 ||
		writer_flush(w, err) < 0)
		return -1;
	w->is_failed = true; /* whatever happens next, no more writes */
	if (w->is_batch) {
		/* A batch output: spool_batch_commit decides whether it needs an
		 * fsync (see spool_batch.c) and takes over the open fd. */
		if (fstat(w->fd, &st) == 0)
			verified_set(w->sp, &st);
		return 0;
	}
	if (spool_io_fsync(w->fd) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: fsync spool file", w->env.id);
		return -1;
	}
	if (fstat(w->fd, &st) == 0)
		verified_set(w->sp, &st);
	if (close(w->fd) < 0) {
		w->fd = -1;
		sg_error_set_errno(err, SG_E_IO, errno, "%s: close spool file", w->env.id);
		return -1;
	}
	w->fd = -1;
	return 0;
}

void spool_writer_free_keep(struct spool_writer **wp)
{
	struct spool_writer *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	if (w->fd >= 0)
		close(w->fd);
	EVP_MD_CTX_free(w->md);
	free(w->wbuf);
	spool_env_free_fields(&w->env);
	free(w);
}

void spool_writer_abort(struct spool_writer **wp)
{
	struct spool_writer *w = *wp;

	if (w == NULL)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	if (w->tmp_path[0] != '\0')
		(void)unlink(w->tmp_path);
	spool_writer_free_keep(wp);
}

/* spool_writer_commit - finish, rename tmp/<id> into q, fsync q. */
int spool_writer_commit(struct spool_writer **wp, enum spool_queue q,
	struct sg_error *err)
{
	struct spool_writer *w = *wp;
	char dst[4096];
	char qdir[4096];
	bool renamed = false;
	int rc = -1;

	if (w == NULL) {
		sg_error_set(err, SG_E_INTERNAL, "no spool writer");
		return -1;
	}
	*wp = NULL;
	if (w->is_batch) {
		sg_error_set(err, SG_E_INTERNAL, "%s: batch output committed directly",
			w->env.id);
		goto out;
	}
	if (!spool_queue_is_valid(q)) {
		sg_error_set(err, SG_E_INVAL, "bad queue %d", (int)q);
		goto out;
	}
	if (spool_path(w->sp, spool_queue_name(q), w->env.id, dst, sizeof(dst), err) < 0 ||
		spool_path(w->sp, spool_queue_name(q), NULL, qdir, sizeof(qdir), err) < 0)
		goto out;
	if (spool_writer_finish(w, err) < 0)
		goto out;
	if (spool_io_rename(w->tmp_path, dst) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: rename into %s", w->env.id,
			spool_queue_name(q));
		goto out;
	}
	renamed = true;
	if (spool_io_fsync_dir(qdir, err) < 0) {
		sg_error_prefix(err, "%s: ", w->env.id);
		goto out;
	}
	sg_trace(SG_TRACE_SPOOL, "%s: committed to %s, size=%llu", w->env.id,
		spool_queue_name(q), (unsigned long long)w->body_len);
	rc = 0;
out:
	/* Not durable means not accepted: the caller answers 4xx, so the file
	 * must not be processed either. */
	if (rc < 0 && renamed)
		(void)unlink(dst);
	if (rc == 0)
		spool_writer_free_keep(&w);
	else
		spool_writer_abort(&w);
	return rc;
}

/* ----------------------------------------------------------------- reader */

/* pread_full - exactly len bytes at off; a short read means damaged. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off, struct sg_error *err)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			sg_error_set_errno(err, SG_E_IO, errno, "read spool file");
			return -1;
		}
		if (n == 0) {
			sg_error_set(err, SG_E_PARSE, SPOOL_DAMAGED ": short file");
			return -1;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int damaged(struct sg_error *err, const char *why)
{
	sg_error_set(err, SG_E_PARSE, SPOOL_DAMAGED ": %s", why);
	return -1;
}

/* rec_str - a record's bytes as a string: bounded, no NUL inside. */
static int rec_str(const unsigned char *data, size_t len, char **out_r,
	struct sg_error *err)
{
	if (len > SPOOL_FIELD_MAX)
		return damaged(err, "field too long");
	if (memchr(data, '\0', len) != NULL)
		return damaged(err, "NUL byte in field");
	*out_r = sg_xstrndup((const char *)data, len);
	return 0;
}

static int rec_id(const unsigned char *data, size_t len, char *out)
{
	if (len != SG_MAIL_ID_LEN)
		return -1;
	memcpy(out, data, len);
	out[len] = '\0';
	return sg_mail_id_is_valid(out) ? 0 : -1;
}

static int parse_rcpt(struct spool_env *env, const unsigned char *d, size_t len,
	struct sg_error *err)
{
	size_t alen, olen;
	struct spool_rcpt *r;

	if (env->nrcpts >= SPOOL_RCPTS_MAX)
		return damaged(err, "too many recipients");
	if (len < 4)
		return damaged(err, "short recipient record");
	alen = ((size_t)d[2] << 8) | d[3];
	if (d[0] > 0xF || d[1] > 1 || alen > len - 4)
		return damaged(err, "bad recipient record");
	olen = len - 4 - alen;
	if (alen > SPOOL_FIELD_MAX || olen > SPOOL_FIELD_MAX || (d[1] == 0 && olen != 0))
		return damaged(err, "bad recipient record");
	if (memchr(d + 4, '\0', alen + olen) != NULL)
		return damaged(err, "NUL byte in recipient");
	spool_env_add_rcpt(env, "", NULL, d[0]);
	r = &env->rcpts[env->nrcpts - 1];
	free(r->addr);
	r->addr = sg_xstrndup((const char *)d + 4, alen);
	if (d[1] != 0)
		r->orcpt = sg_xstrndup((const char *)d + 4 + alen, olen);
	return 0;
}

/* parse_env_rec - one envelope record into env; seen tracks single records. */
static int parse_env_rec(struct spool_env *env, unsigned type, const unsigned char *d,
	size_t len, uint32_t *seen, struct sg_error *err)
{
	char pid[SG_MAIL_ID_LEN + 1];
	uint32_t bit;

	if (type == SPOOL_REC_RCPT)
		return parse_rcpt(env, d, len, err);
	if (type < 'A' || type > 'Z')
		return damaged(err, "unknown record type");
	bit = 1u << (type - 'A');
	if ((*seen & bit) != 0)
		return damaged(err, "duplicate record");
	*seen |= bit;
	switch (type) {
	case SPOOL_REC_ID:
		if (rec_id(d, len, env->id) < 0)
			return damaged(err, "bad id record");
		return 0;
	case SPOOL_REC_SENDER:
		return rec_str(d, len, &env->sender, err);
	case SPOOL_REC_KIND:
		if (len != 1 || d[0] > SPOOL_KIND_BOUNCE)
			return damaged(err, "bad kind record");
		env->kind = (enum spool_kind)d[0];
		return 0;
	case SPOOL_REC_FLAGS:
		if (len != 1 || d[0] > SPOOL_FL_ALL)
			return damaged(err, "bad flags record");
		env->dsn_ret_hdrs = (d[0] & SPOOL_FL_RET_HDRS) != 0;
		env->smtputf8 = (d[0] & SPOOL_FL_SMTPUTF8) != 0;
		env->body_8bit = (d[0] & SPOOL_FL_8BIT) != 0;
		env->batch_output = (d[0] & SPOOL_FL_BATCH_OUT) != 0;
		return 0;
	case SPOOL_REC_ARRIVAL:
		if (len != 8)
			return damaged(err, "bad arrival record");
		env->arrival = (int64_t)spool_get_u64(d);
		return 0;
	case SPOOL_REC_CLIENT_ADDR:
		return rec_str(d, len, &env->client_addr, err);
	case SPOOL_REC_CLIENT_HELO:
		return rec_str(d, len, &env->client_helo, err);
	case SPOOL_REC_ENVID:
		return rec_str(d, len, &env->dsn_envid, err);
	case SPOOL_REC_PARENT:
		if (rec_id(d, len, pid) < 0)
			return damaged(err, "bad parent record");
		env->parent_id = sg_xstrdup(pid);
		return 0;
	default:
		return damaged(err, "unknown record type");
	}
}

/* verify_hash - stream the body through SHA-256 and compare with want. */
static int verify_hash(int fd, uint64_t off, uint64_t len, const unsigned char *want,
	struct sg_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = sg_xmalloc(SPOOL_WBUF_SIZE);
	unsigned char got[32];
	unsigned int glen = 0;
	int rc = -1;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "SHA-256 init");
		goto out;
	}
	while (len > 0) {
		size_t n = len > SPOOL_WBUF_SIZE ? SPOOL_WBUF_SIZE : (size_t)len;

		if (pread_full(fd, buf, n, off, err) < 0)
			goto out;
		if (EVP_DigestUpdate(md, buf, n) != 1) {
			sg_error_set_openssl(err, SG_E_CRYPTO, "SHA-256 update");
			goto out;
		}
		off += n;
		len -= n;
	}
	if (EVP_DigestFinal_ex(md, got, &glen) != 1 || glen != 32) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "SHA-256 final");
		goto out;
	}
	if (memcmp(got, want, 32) != 0) {
		damaged(err, "body SHA-256 mismatch");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

/* spool_file_parse - check a message file's structure and trailer and read
 * its envelope into env (zeroed first; freed again on failure). */
int spool_file_parse(int fd, const char *want_id, enum spool_parse_flags flags,
	struct spool_env *env, uint64_t *body_off_r, uint64_t *body_len_r,
	struct sg_error *err)
{
	unsigned char hdr[SPOOL_BODY_OFFSET];
	unsigned char end[SPOOL_END_LEN];
	unsigned char rec[SPOOL_REC_MAX];
	struct stat st;
	uint64_t size, body_len, pos, env_end;
	uint32_t seen = 0;
	const uint32_t need = (1u << (SPOOL_REC_ID - 'A')) | (1u << (SPOOL_REC_SENDER - 'A')) |
		(1u << (SPOOL_REC_KIND - 'A')) | (1u << (SPOOL_REC_FLAGS - 'A')) |
		(1u << (SPOOL_REC_ARRIVAL - 'A'));

	memset(env, 0, sizeof(*env));
	if (fstat(fd, &st) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "stat spool file");
		return -1;
	}
	if (!S_ISREG(st.st_mode))
		return damaged(err, "not a regular file");
	size = (uint64_t)st.st_size;
	if (size < SPOOL_BODY_OFFSET + SPOOL_END_LEN)
		return damaged(err, "short file");
	if (pread_full(fd, hdr, sizeof(hdr), 0, err) < 0)
		goto fail;
	if (memcmp(hdr, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != 0 ||
		hdr[SPOOL_MAGIC_LEN] != SPOOL_REC_BODY) {
		damaged(err, "bad magic");
		goto fail;
	}
	body_len = spool_get_u64(hdr + SPOOL_MAGIC_LEN + 1);
	if (body_len > size - SPOOL_BODY_OFFSET - SPOOL_END_LEN) {
		damaged(err, "body length past end of file");
		goto fail;
	}
	env_end = size - SPOOL_END_LEN;
	if (pread_full(fd, end, sizeof(end), env_end, err) < 0)
		goto fail;
	if (end[0] != SPOOL_REC_END || spool_get_u32(end + 1) != 40 ||
		spool_get_u64(end + SPOOL_REC_HDR_LEN) != body_len) {
		damaged(err, "missing or bad trailer");
		goto fail;
	}
	for (pos = SPOOL_BODY_OFFSET + body_len; pos < env_end;) {
		unsigned char rh[SPOOL_REC_HDR_LEN];
		uint32_t len;

		if (env_end - pos < SPOOL_REC_HDR_LEN) {
			damaged(err, "truncated record");
			goto fail;
		}
		if (pread_full(fd, rh, sizeof(rh), pos, err) < 0)
			goto fail;
		len = spool_get_u32(rh + 1);
		if (len > SPOOL_REC_MAX || len > env_end - pos - SPOOL_REC_HDR_LEN) {
			damaged(err, "record too long or truncated");
			goto fail;
		}
		if (pread_full(fd, rec, len, pos + SPOOL_REC_HDR_LEN, err) < 0)
			goto fail;
		if (parse_env_rec(env, rh[0], rec, len, &seen, err) < 0)
			goto fail;
		pos += SPOOL_REC_HDR_LEN + len;
	}
	if ((seen & need) != need) {
		damaged(err, "missing envelope record");
		goto fail;
	}
	if (want_id != NULL && strcmp(env->id, want_id) != 0) {
		damaged(err, "id does not match file name");
		goto fail;
	}
	if ((flags & SPOOL_PARSE_VERIFY_HASH) != 0 &&
		verify_hash(fd, SPOOL_BODY_OFFSET, body_len, end + SPOOL_REC_HDR_LEN + 8,
			err) < 0)
		goto fail;
	*body_off_r = SPOOL_BODY_OFFSET;
	*body_len_r = body_len;
	return 0;
fail:
	spool_env_free_fields(env);
	return -1;
}

/* spool_file_open - open queue q's file id read-only: fd or -1. */
static int spool_file_open(struct spool *sp, enum spool_queue q, const char *id,
	struct sg_error *err)
{
	char path[4096];
	int fd;

	if (spool_check_id(id, err) < 0)
		return -1;
	if (!spool_queue_is_valid(q)) {
		sg_error_set(err, SG_E_INVAL, "bad queue %d", (int)q);
		return -1;
	}
	if (spool_path(sp, spool_queue_name(q), id, path, sizeof(path), err) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			sg_error_set(err, SG_E_NOTFOUND, "no such message %s in %s", id,
				spool_queue_name(q));
		else
			sg_error_set_errno(err, SG_E_IO, errno, "open %s", path);
		return -1;
	}
	return fd;
}

/* spool_file_load - open and parse, merge the state file; 0 or -1. */
static int spool_file_load(struct spool *sp, enum spool_queue q, const char *id,
	enum spool_parse_flags flags, int *fd_r, struct spool_env *env,
	uint64_t *off_r, uint64_t *len_r, struct sg_error *err)
{
	struct spool_state_extra extra;
	struct stat st;
	bool is_known = false;
	int fd;

	fd = spool_file_open(sp, q, id, err);
	if (fd < 0)
		return -1;
	if ((flags & SPOOL_PARSE_VERIFY_HASH) != 0 && fstat(fd, &st) == 0) {
		is_known = verified_has(sp, &st);
		if (is_known)
			flags &= ~(unsigned)SPOOL_PARSE_VERIFY_HASH;
	}
	if (spool_file_parse(fd, id, flags, env, off_r, len_r, err) < 0) {
		sg_error_prefix(err, "%s/%s: ", spool_queue_name(q), id);
		close(fd);
		return -1;
	}
	if ((flags & SPOOL_PARSE_VERIFY_HASH) != 0 && !is_known)
		verified_set(sp, &st);
	if (spool_state_load(sp, env, &extra, err) < 0) {
		spool_env_free_fields(env);
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

struct spool_msg *spool_msg_open(struct spool *sp, enum spool_queue q, const char *id,
	struct sg_error *err)
{
	struct spool_msg *m = sg_xcalloc(1, sizeof(*m));

	if (spool_file_load(sp, q, id, SPOOL_PARSE_VERIFY_HASH, &m->fd, &m->env,
		&m->body_off, &m->body_len, err) < 0) {
		free(m);
		return NULL;
	}
	return m;
}

int spool_env_read(struct spool *sp, enum spool_queue q, const char *id,
	struct spool_env *env_r, uint64_t *size_r, struct sg_error *err)
{
	uint64_t off, len;
	int fd;

	if (spool_file_load(sp, q, id, 0, &fd, env_r, &off, &len, err) < 0)
		return -1;
	close(fd);
	if (size_r != NULL)
		*size_r = len;
	return 0;
}

/* spool_file_check - structure and trailer of queue q's file id (recovery). */
int spool_file_check(struct spool *sp, enum spool_queue q, const char *id,
	struct spool_env *env_r, struct sg_error *err)
{
	struct spool_env env;
	uint64_t off, len;
	int fd, rc;

	fd = spool_file_open(sp, q, id, err);
	if (fd < 0)
		return -1;
	rc = spool_file_parse(fd, id, 0, &env, &off, &len, err);
	close(fd);
	if (rc == 0) {
		if (env_r != NULL)
			*env_r = env;
		else
			spool_env_free_fields(&env);
	}
	return rc;
}

const struct spool_env *spool_msg_env(const struct spool_msg *m)
{
	return &m->env;
}

int spool_msg_body_fd(const struct spool_msg *m, uint64_t *offset_r, uint64_t *len_r)
{
	*offset_r = m->body_off;
	*len_r = m->body_len;
	return m->fd;
}

uint64_t spool_msg_size(const struct spool_msg *m)
{
	return m->body_len;
}

/* hdr_put - append one byte unless the cap is reached. */
static void hdr_put(struct sg_buf *b, size_t max, char c)
{
	if (b->len < max)
		(void)sg_buf_append(b, &c, 1, NULL);
}

/* spool_msg_read_headers - the body up to (not including) the first empty
 * line (LF or CRLF), at most max bytes. */
int spool_msg_read_headers(const struct spool_msg *m, size_t max, char **hdrs_r,
	struct sg_error *err)
{
	struct sg_buf b;
	char chunk[4096];
	uint64_t pos = 0;
	bool at_bol = true, cr_pending = false, done = false;

	sg_buf_init(&b, max + 1);
	while (!done && pos < m->body_len && b.len < max) {
		size_t want = sizeof(chunk);
		size_t i;

		if (want > m->body_len - pos)
			want = (size_t)(m->body_len - pos);
		if (pread_full(m->fd, chunk, want, m->body_off + pos, err) < 0) {
			sg_buf_deinit(&b);
			return -1;
		}
		for (i = 0; i < want && !done; i++) {
			char c = chunk[i];

			if (cr_pending) {
				cr_pending = false;
				if (c == '\n') {
					done = true;
					break;
				}
				hdr_put(&b, max, '\r');
				at_bol = false;
			}
			if (at_bol && c == '\n') {
				done = true;
				break;
			}
			if (at_bol && c == '\r') {
				cr_pending = true;
				continue;
			}
			hdr_put(&b, max, c);
			at_bol = c == '\n';
		}
		pos += want;
	}
	if (cr_pending)
		hdr_put(&b, max, '\r');
	*hdrs_r = sg_buf_steal(&b);
	return 0;
}

void spool_msg_close(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	if (m->fd >= 0)
		close(m->fd);
	spool_env_free_fields(&m->env);
	free(m);
}
