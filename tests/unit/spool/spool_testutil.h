/* spool_testutil.h - helpers shared by the spool unit tests: temp spool
 * directories, counting files, writing a test message. Header-only. */
#ifndef SPOOL_TESTUTIL_H
#define SPOOL_TESTUTIL_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "spool/spool.h"

static int tu_rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* tu_rm_rf - remove a directory tree. */
static inline void tu_rm_rf(const char *dir)
{
	(void)nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* tu_tmpdir - a fresh directory under $TMPDIR (caller frees). */
static inline char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = sg_xasprintf("%s/sgspool.XXXXXX", base != NULL ? base : "/tmp");

	if (mkdtemp(p) == NULL)
		abort();
	return p;
}

/* tu_count - number of entries (except . and ..) in spooldir/sub. */
static inline int tu_count(const char *spooldir, const char *sub)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", spooldir, sub);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

/* tu_exists - spooldir/sub/name exists. */
static inline bool tu_exists(const char *spooldir, const char *sub, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s/%s", spooldir, sub, name);
	return access(path, F_OK) == 0;
}

/* tu_env - a small envelope (caller frees fields). */
static inline void tu_env(struct spool_env *env, const char *sender, unsigned nrcpts)
{
	unsigned i;

	memset(env, 0, sizeof(*env));
	env->sender = sg_xstrdup(sender);
	env->arrival = 1700000000;
	for (i = 0; i < nrcpts; i++) {
		char a[64];

		snprintf(a, sizeof(a), "rcpt%u@example.org", i);
		spool_env_add_rcpt(env, a, NULL, 0);
	}
}

/* tu_write_msg - commit a message with body into q; id_out gets its ID. */
static inline int tu_write_msg(struct spool *sp, const struct spool_env *env,
	const char *body, enum spool_queue q, char *id_out, struct sg_error *err)
{
	struct spool_writer *w = spool_writer_new(sp, env, 0, err);

	if (w == NULL)
		return -1;
	if (id_out != NULL)
		sg_strlcpy(id_out, spool_writer_id(w), SG_MAIL_ID_LEN + 1);
	if (spool_writer_write(w, body, strlen(body), err) < 0) {
		spool_writer_abort(&w);
		return -1;
	}
	return spool_writer_commit(&w, q, err);
}

/* tu_read_file - whole file into a malloc'ed buffer. */
static inline unsigned char *tu_read_file(const char *path, size_t *len_r)
{
	char *data = NULL;
	struct sg_error err;

	if (sg_file_read(path, 1u << 30, &data, len_r, &err) < 0)
		return NULL;
	return (unsigned char *)data;
}

static inline void tu_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
}

/* ------------------------------------------------------------ fixtures */

/* A temp spool per test: cmocka setup/teardown state. */
struct tu_fix {
	char *dir;          /* the temp directory */
	char *spooldir;     /* dir/spool */
	struct spool *sp;
};

static inline int tu_setup(void **state)
{
	struct tu_fix *f = sg_xcalloc(1, sizeof(*f));
	struct sg_error err;

	f->dir = tu_tmpdir();
	f->spooldir = sg_xasprintf("%s/spool", f->dir);
	f->sp = spool_open(f->spooldir, &err);
	if (f->sp == NULL) {
		fprintf(stderr, "spool_open: %s\n", err.msg);
		return -1;
	}
	spool_test_fail_after(0, 0);
	*state = f;
	return 0;
}

static inline int tu_teardown(void **state)
{
	struct tu_fix *f = *state;

	spool_test_fail_after(0, 0);
	spool_close(&f->sp);
	tu_rm_rf(f->dir);
	free(f->spooldir);
	free(f->dir);
	free(f);
	return 0;
}

/* tu_path - "spooldir/sub/name" into a static-size caller buffer. */
static inline char *tu_path(char *out, size_t outsz, const char *spooldir,
	const char *sub, const char *name)
{
	snprintf(out, outsz, "%s/%s/%s", spooldir, sub, name);
	return out;
}

/* tu_read_body - the body of an open message (caller frees). */
static inline char *tu_read_body(const struct spool_msg *m)
{
	uint64_t off, len;
	int fd = spool_msg_body_fd(m, &off, &len);
	char *buf = sg_xmalloc((size_t)len + 1);

	if (pread(fd, buf, (size_t)len, (off_t)off) != (ssize_t)len)
		abort();
	buf[len] = '\0';
	return buf;
}

/* --------------------------------------------- raw message file builder */

/* Builds message files byte by byte (format in src/spool/spool_int.h), to
 * test the reader against files our writer never produces. */
static inline void tu_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline void tu_be64(unsigned char *p, uint64_t v)
{
	tu_be32(p, (uint32_t)(v >> 32));
	tu_be32(p + 4, (uint32_t)v);
}

/* tu_raw_begin - magic and body record. */
static inline void tu_raw_begin(struct sg_buf *b, const char *body)
{
	unsigned char hdr[9];

	sg_buf_init(b, 1u << 24);
	(void)sg_buf_append(b, "SGSPOOL\x01", 8, NULL);
	hdr[0] = 'B';
	tu_be64(hdr + 1, strlen(body));
	(void)sg_buf_append(b, hdr, 9, NULL);
	(void)sg_buf_append(b, body, strlen(body), NULL);
}

static inline void tu_raw_rec(struct sg_buf *b, char type, const void *data, size_t len)
{
	unsigned char hdr[5];

	hdr[0] = (unsigned char)type;
	tu_be32(hdr + 1, (uint32_t)len);
	(void)sg_buf_append(b, hdr, 5, NULL);
	(void)sg_buf_append(b, data, len, NULL);
}

/* tu_raw_rcpt - a recipient record: notify, has-orcpt, u16 length, addr, orcpt. */
static inline void tu_raw_rcpt(struct sg_buf *b, const char *addr, const char *orcpt)
{
	unsigned char rec[2100];
	size_t alen = strlen(addr), olen = orcpt != NULL ? strlen(orcpt) : 0;

	rec[0] = 0;
	rec[1] = orcpt != NULL;
	rec[2] = (unsigned char)(alen >> 8);
	rec[3] = (unsigned char)alen;
	memcpy(rec + 4, addr, alen);
	if (olen > 0)
		memcpy(rec + 4 + alen, orcpt, olen);
	tu_raw_rec(b, 'R', rec, 4 + alen + olen);
}

/* tu_raw_std_env - the mandatory records (id, sender, kind, flags, arrival). */
static inline void tu_raw_std_env(struct sg_buf *b, const char *id)
{
	unsigned char v[8];

	tu_raw_rec(b, 'I', id, strlen(id));
	tu_raw_rec(b, 'S', "a@example.org", 13);
	v[0] = 0;
	tu_raw_rec(b, 'K', v, 1);
	tu_raw_rec(b, 'F', v, 1);
	tu_be64(v, 1700000000);
	tu_raw_rec(b, 'T', v, 8);
}

/* tu_raw_end - the trailer: END, body length, SHA-256 of body. */
static inline void tu_raw_end(struct sg_buf *b, const char *body)
{
	unsigned char end[40];
	unsigned int mdlen = 0;

	tu_be64(end, strlen(body));
	if (EVP_Digest(body, strlen(body), end + 8, &mdlen, EVP_sha256(), NULL) != 1)
		abort();
	tu_raw_rec(b, 'Z', end, sizeof(end));
}

#endif
