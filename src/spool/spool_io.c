/*
 * spool_io.c - the spool's write and fsync calls, with the fault-injection
 * test hook spool_test_fail_after() (disk-full and crash tests, unit and
 * e2e). Every write(2), pwrite(2), fsync(2) of a spool file or directory
 * and every state/manifest replacement passes through here, in any thread.
 *
 * The hook is the module's only global mutable state: two atomics, set by
 * tests only. Production code never calls spool_test_fail_after().
 */
#include "spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdatomic.h>
#include <unistd.h>

static _Atomic unsigned spool_fail_countdown;
static _Atomic int spool_fail_errno;

void spool_test_fail_after(unsigned n, int errnum)
{
	spool_fail_errno = errnum;
	spool_fail_countdown = errnum != 0 ? n : 0;
}

/* spool_io_inject - count one I/O step; -1 with errno set when it must fail. */
int spool_io_inject(void)
{
	unsigned cur = atomic_load(&spool_fail_countdown);

	while (cur > 0) {
		if (atomic_compare_exchange_weak(&spool_fail_countdown, &cur, cur - 1)) {
			if (cur == 1) {
				if (spool_fail_errno == SPOOL_TEST_CRASH)
					_exit(SPOOL_TEST_CRASH_STATUS);
				errno = spool_fail_errno;
				return -1;
			}
			return 0;
		}
	}
	return 0;
}

int spool_io_write(int fd, const void *buf, size_t len)
{
	if (spool_io_inject() < 0)
		return -1;
	return sg_write_all(fd, buf, len);
}

int spool_io_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;

	if (spool_io_inject() < 0)
		return -1;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int spool_io_fsync(int fd)
{
	if (spool_io_inject() < 0)
		return -1;
	return fsync(fd);
}

int spool_io_fsync_dir(const char *path, struct sg_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "open directory %s", path);
		return -1;
	}
	if (spool_io_fsync(fd) < 0) {
		int e = errno;

		close(fd);
		sg_error_set_errno(err, SG_E_IO, e, "fsync directory %s", path);
		return -1;
	}
	close(fd);
	return 0;
}

/* spool_io_rename - rename without replacing an existing target (two
 * messages must never share a name); falls back to rename(2) on file
 * systems without RENAME_NOREPLACE. Counts as one step for the hook. */
int spool_io_rename(const char *from, const char *to)
{
	if (spool_io_inject() < 0)
		return -1;
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	return rename(from, to);
}
