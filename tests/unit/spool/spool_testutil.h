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

#endif
