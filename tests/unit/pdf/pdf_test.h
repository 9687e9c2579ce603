/* pdf_test.h - helpers for the PDF tests (header-only): temp dirs, running
 * the independent checkers (qpdf, poppler-utils) and rendering messages. */
#ifndef SG_PDF_TEST_H
#define SG_PDF_TEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "mime/mime.h"
#include "pdf/pdf.h"

/* test_mkdtemp - a new private directory (caller frees the path) */
static inline char *test_mkdtemp(void)
{
	char *d = strdup("/tmp/sg-pdf-test.XXXXXX");

	if (d == NULL || mkdtemp(d) == NULL)
		abort();
	return d;
}

/* test_rm_rf - remove a directory tree one level deep (plus subdirs) */
static inline void test_rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];
	struct stat st;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			test_rm_rf(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* test_dir_entries - number of entries in dir (without . and ..) */
static inline unsigned test_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/*
 * test_run - run argv (PATH lookup), stdout (and stderr when merge) into
 * *out_r (NUL-terminated, caller frees; may be NULL). Returns the exit
 * status, or -1 when it did not exit normally.
 */
static inline int test_run(const char *const argv[], char **out_r, int merge)
{
	int pfd[2], status;
	pid_t pid;
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	ssize_t n;

	if (buf == NULL || pipe(pfd) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(merge ? pfd[1] : devnull, 2);
		close(pfd[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], buf + len, cap - len - 1)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
	}
	close(pfd[0]);
	buf[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (out_r != NULL)
		*out_r = buf;
	else
		free(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* test_parse - parse len bytes of text through a temp file */
static inline struct mime_msg *test_parse(const char *text, size_t len)
{
	char path[] = "/tmp/sg-pdf-msg.XXXXXX";
	int fd = mkstemp(path);
	struct sg_error err;
	struct mime_msg *m;

	if (fd < 0)
		abort();
	unlink(path);
	if (sg_write_all(fd, text, len) < 0)
		abort();
	m = mime_msg_parse_fd(fd, 0, len, &err);
	close(fd);
	if (m == NULL) {
		fprintf(stderr, "parse: %s\n", err.msg);
		abort();
	}
	return m;
}

/*
 * test_render - render text with opt into dir/name; returns pdf_message_write's
 * result (0/-1), err filled. The output file is created in any case.
 */
static inline int test_render(const char *text, size_t len, const struct pdf_options *opt,
	const char *dir, const char *name, struct pdf_result *res, struct sg_error *err)
{
	char path[4096];
	struct mime_msg *m = test_parse(text, len);
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	rc = pdf_message_write(m, opt, fd, res, err);
	close(fd);
	mime_msg_free(&m);
	return rc;
}

/* test_file_size - size of path or -1 */
static inline long long test_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* test_read_file - whole file (caller frees) */
static inline char *test_read_file(const char *path, size_t *len_r)
{
	char *data;
	size_t len;
	struct sg_error err;

	if (sg_file_read(path, 256u << 20, &data, &len, &err) < 0)
		return NULL;
	if (len_r != NULL)
		*len_r = len;
	return data;
}

#endif
