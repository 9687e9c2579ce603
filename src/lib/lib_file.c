/*
 * lib_file.c - durable file helpers: write-all, fsync of directories,
 * mkdir -p, atomic file replacement (tmp -> fsync -> rename -> fsync dir,
 * the Redis rdbSave recipe) and bounded whole-file reads.
 */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sg_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t sg_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int sg_fsync_dir(const char *dir, struct sg_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "open directory %s", dir);
		return -1;
	}
	if (fsync(fd) < 0) {
		int e = errno;

		close(fd);
		sg_error_set_errno(err, SG_E_IO, e, "fsync directory %s", dir);
		return -1;
	}
	close(fd);
	return 0;
}

int sg_mkdir_p(const char *dir, mode_t mode, struct sg_error *err)
{
	char path[4096];
	char *p;

	if (sg_strlcpy(path, dir, sizeof(path)) >= sizeof(path)) {
		sg_error_set(err, SG_E_INVAL, "path too long");
		return -1;
	}
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST) {
			sg_error_set_errno(err, SG_E_IO, errno, "mkdir %s", path);
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		sg_error_set_errno(err, SG_E_IO, errno, "mkdir %s", path);
		return -1;
	}
	return 0;
}

int sg_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
	struct sg_error *err)
{
	char tmp[4096];
	char dir[4096];
	char *slash;
	int fd = -1;
	int rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid())
		>= sizeof(tmp)) {
		sg_error_set(err, SG_E_INVAL, "path too long");
		return -1;
	}
	sg_strlcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash == NULL)
		sg_strlcpy(dir, ".", sizeof(dir));
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "create %s", tmp);
		goto out;
	}
	if (sg_write_all(fd, data, len) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "write %s", tmp);
		goto out;
	}
	if (fsync(fd) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "fsync %s", tmp);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		sg_error_set_errno(err, SG_E_IO, errno, "close %s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "rename %s", path);
		goto out;
	}
	rc = sg_fsync_dir(dir, err);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int sg_file_read(const char *path, size_t max, char **data_r, size_t *len_r,
	struct sg_error *err)
{
	struct stat st;
	char *data = NULL;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sg_error_set_errno(err, errno == ENOENT ? SG_E_NOTFOUND : SG_E_IO, errno,
			"open %s", path);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "stat %s", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		sg_error_set(err, SG_E_LIMIT, "%s is larger than %zu bytes", path, max);
		close(fd);
		return -1;
	}
	data = sg_xmalloc((size_t)st.st_size + 1);
	n = sg_read_full(fd, data, (size_t)st.st_size);
	close(fd);
	if (n < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "read %s", path);
		free(data);
		return -1;
	}
	data[n] = '\0';
	*data_r = data;
	if (len_r != NULL)
		*len_r = (size_t)n;
	return 0;
}
