/* mpa_test.h - helpers shared by the mpa unit tests (header-only): a temp
 * spool, putting a message into incoming/, reading outputs back, capturing
 * the log (stderr). */
#ifndef SG_MPA_TEST_H
#define SG_MPA_TEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "mpa/mpa.h"

static int mt_rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static inline void mt_rm_rf(const char *dir)
{
	(void)nftw(dir, mt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* mt_tmpdir - a fresh directory (caller frees the string, mt_rm_rf the dir). */
static inline char *mt_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = sg_xasprintf("%s/sgmpa.XXXXXX", base != NULL ? base : "/tmp");

	if (mkdtemp(p) == NULL)
		abort();
	return p;
}

/* mt_count - entries in dir/sub (not . and ..), -1 if it cannot be read. */
static inline int mt_count(const char *dir, const char *sub)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* mt_first - name of the first entry of dir/sub into out (17+ bytes); 0/-1. */
static inline int mt_first(const char *dir, const char *sub, char *out, size_t outsz)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			sg_strlcpy(out, de->d_name, outsz);
			rc = 0;
			break;
		}
	}
	closedir(d);
	return rc;
}

/* mt_env - an envelope with DSN fields on every recipient. */
static inline void mt_env(struct spool_env *env, const char *sender, unsigned nrcpts)
{
	unsigned i;

	memset(env, 0, sizeof(*env));
	env->sender = sg_xstrdup(sender);
	env->arrival = 1700000000;
	env->dsn_envid = sg_xstrdup("ENV-ID-42");
	env->dsn_ret_hdrs = true;
	env->smtputf8 = true;
	env->body_8bit = true;
	env->client_addr = sg_xstrdup("127.0.0.1");
	env->client_helo = sg_xstrdup("client.example");
	for (i = 0; i < nrcpts; i++) {
		char a[64], o[80];

		snprintf(a, sizeof(a), "rcpt%u@example.org", i);
		snprintf(o, sizeof(o), "rfc822;orig%u@example.org", i);
		spool_env_add_rcpt(env, a, o, i % 2 == 0 ?
			(SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE) : SPOOL_NOTIFY_NEVER);
	}
}

/* mt_put - commit body (len bytes) with env into incoming/; id_out gets the ID. */
static inline int mt_put(struct spool *sp, const struct spool_env *env, const void *body,
	size_t len, char *id_out)
{
	struct sg_error err;
	struct spool_writer *w = spool_writer_new(sp, env, 0, &err);

	if (w == NULL)
		return -1;
	sg_strlcpy(id_out, spool_writer_id(w), SG_MAIL_ID_LEN + 1);
	if (spool_writer_write(w, body, len, &err) < 0) {
		spool_writer_abort(&w);
		return -1;
	}
	return spool_writer_commit(&w, SPOOL_Q_INCOMING, &err);
}

/* mt_body - the body of queue q's message id (caller frees); NULL on error. */
static inline char *mt_body(struct spool *sp, enum spool_queue q, const char *id,
	size_t *len_r)
{
	struct sg_error err;
	struct spool_msg *m = spool_msg_open(sp, q, id, &err);
	uint64_t off, len;
	char *buf;
	int fd;

	if (m == NULL)
		return NULL;
	fd = spool_msg_body_fd(m, &off, &len);
	buf = sg_xmalloc(len + 1);
	if (len > 0 && pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
		free(buf);
		spool_msg_close(&m);
		return NULL;
	}
	buf[len] = '\0';
	*len_r = len;
	spool_msg_close(&m);
	return buf;
}

/* Log capture: stderr goes to a temp file between mt_log_start and
 * mt_log_stop, which returns what was logged (caller frees). */
struct mt_log {
	int saved;
	int fd;
};

static inline void mt_log_start(struct mt_log *l)
{
	char path[] = "/tmp/sgmpa-log.XXXXXX";

	l->fd = mkstemp(path);
	if (l->fd < 0)
		abort();
	unlink(path);
	l->saved = dup(STDERR_FILENO);
	dup2(l->fd, STDERR_FILENO);
}

static inline char *mt_log_stop(struct mt_log *l)
{
	off_t end = lseek(l->fd, 0, SEEK_END);
	char *buf = sg_xmalloc((size_t)end + 1);

	dup2(l->saved, STDERR_FILENO);
	close(l->saved);
	if (pread(l->fd, buf, (size_t)end, 0) != (ssize_t)end)
		abort();
	buf[end] = '\0';
	close(l->fd);
	/* show it as well, for the test's own output */
	(void)sg_write_all(STDERR_FILENO, buf, (size_t)end);
	return buf;
}

#endif
