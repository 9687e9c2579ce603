/* mime_test.h - helpers shared by the mime unit tests (header-only). */
#ifndef SG_MIME_TEST_H
#define SG_MIME_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime/mime.h"

/* test_tmpfd - an unlinked temp file holding prefix then data; offset at 0. */
static inline int test_tmpfd(const char *prefix, const void *data, size_t len)
{
	char path[] = "/tmp/sg-mime-test.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	unlink(path);
	if (prefix != NULL && sg_write_all(fd, prefix, strlen(prefix)) < 0)
		abort();
	if (len > 0 && sg_write_all(fd, data, len) < 0)
		abort();
	if (lseek(fd, 0, SEEK_SET) < 0)
		abort();
	return fd;
}

/* test_parse_str - parse a NUL-terminated message held in a temp file. */
static inline struct mime_msg *test_parse_str(const char *text)
{
	struct sg_error err;
	int fd = test_tmpfd(NULL, text, strlen(text));
	struct mime_msg *m = mime_msg_parse_fd(fd, 0, strlen(text), &err);

	close(fd);
	if (m == NULL) {
		fprintf(stderr, "parse failed: %s\n", err.msg);
		abort();
	}
	return m;
}

/* test_collect - mime_write_fn appending to a heap buffer (sg_buf, 64 MiB). */
static inline int test_collect(void *arg, const void *data, size_t len,
	struct sg_error *err)
{
	return sg_buf_append((struct sg_buf *)arg, data, len, err);
}

/* test_serialise - the message as written by mime_msg_write; caller frees. */
static inline char *test_serialise(struct mime_msg *m, size_t *len_r)
{
	struct sg_buf b;
	struct sg_error err;

	sg_buf_init(&b, 64u << 20);
	if (mime_msg_write(m, 0, test_collect, &b, NULL, &err) < 0) {
		fprintf(stderr, "write failed: %s\n", err.msg);
		abort();
	}
	if (len_r != NULL)
		*len_r = b.len;
	return sg_buf_steal(&b);
}

#endif
