/*
 * spool_pool.c - recycled message files.
 *
 * Creating a file on ext4 allocates an inode, and the allocator skips every
 * inode freed in the last minutes: with thousands of messages a minute each
 * creation scans further (measured: 85% of the daemon's CPU time in open()
 * at 350 messages/s). So a finished message file is not unlinked but
 * renamed into free/<random-id> and truncated, and the next message file is
 * made by renaming one back: no inode is allocated or freed in the steady
 * state.
 *
 * Truncated to the format's magic (8 bytes), not to 0, and reopened
 * without O_TRUNC (every message file is longer, so the writer overwrites
 * it all): ext4 marks a file truncated to size 0 for "allocate on close"
 * (auto_da_alloc) and then starts its writeback at the next close - for an
 * output that is never fsync'ed (spool_batch.c) that was a disk write per
 * message, and 1.5% of the daemon's CPU in close().
 *
 * Only a spool that ran spool_recover (the daemon) pools: recovery empties
 * free/ (a crash may leave a file there untruncated), so no other process
 * leaves files behind. Names in free/ are fresh mail IDs, so processes never
 * collide; a name another process took first (rename ENOENT) is skipped.
 * Pool operations are not fault-injection steps (spool_test_fail_after).
 */
#include "spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_POOL_CAP 4096

void spool_pool_init(struct spool *sp)
{
	pthread_mutex_init(&sp->pool_mu, NULL);
}

void spool_pool_deinit(struct spool *sp)
{
	pthread_mutex_destroy(&sp->pool_mu);
	free(sp->pool);
	sp->pool = NULL;
}

void spool_pool_enable(struct spool *sp)
{
	pthread_mutex_lock(&sp->pool_mu);
	if (sp->pool == NULL)
		sp->pool = sg_xcalloc(SPOOL_POOL_CAP, sizeof(*sp->pool));
	pthread_mutex_unlock(&sp->pool_mu);
}

/* pool_rename - rename without replacing; -1 with errno. */
static int pool_rename(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (access(to, F_OK) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

int spool_pool_open(struct spool *sp, const char *path)
{
	char name[SG_MAIL_ID_LEN + 1], src[4096];
	int fd;

	for (;;) {
		pthread_mutex_lock(&sp->pool_mu);
		if (sp->pool == NULL || sp->pool_n == 0) {
			pthread_mutex_unlock(&sp->pool_mu);
			break;
		}
		memcpy(name, sp->pool[--sp->pool_n], sizeof(name));
		pthread_mutex_unlock(&sp->pool_mu);
		if (spool_path(sp, SPOOL_DIR_FREE, name, src, sizeof(src), NULL) < 0)
			continue;
		if (pool_rename(src, path) < 0) {
			if (errno == EEXIST)
				return -1;
			continue;  /* gone (another process, or the admin) */
		}
		fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		(void)unlink(path);
	}
	return open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
}

int spool_pool_put(struct spool *sp, const char *path)
{
	char name[SG_MAIL_ID_LEN + 1], dst[4096];
	bool is_full;

	pthread_mutex_lock(&sp->pool_mu);
	is_full = sp->pool == NULL || sp->pool_n >= SPOOL_POOL_CAP;
	pthread_mutex_unlock(&sp->pool_mu);
	if (!is_full) {
		sg_mail_id_new(name);
		if (spool_path(sp, SPOOL_DIR_FREE, name, dst, sizeof(dst), NULL) == 0 &&
			pool_rename(path, dst) == 0) {
			/* No message text stays behind in free/: only the magic. */
			if (truncate(dst, SPOOL_MAGIC_LEN) < 0) {
				(void)unlink(dst);
				return 0;
			}
			pthread_mutex_lock(&sp->pool_mu);
			if (sp->pool_n < SPOOL_POOL_CAP)
				memcpy(sp->pool[sp->pool_n++], name, sizeof(name));
			else
				(void)unlink(dst);
			pthread_mutex_unlock(&sp->pool_mu);
			return 0;
		}
		if (errno == ENOENT)
			return -1;
	}
	return unlink(path);
}

size_t spool_pool_size(struct spool *sp)
{
	size_t n;

	pthread_mutex_lock(&sp->pool_mu);
	n = sp->pool_n;
	pthread_mutex_unlock(&sp->pool_mu);
	return n;
}
