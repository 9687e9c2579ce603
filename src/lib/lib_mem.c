/*
 * lib_mem.c - aborting allocators for small fixed-size allocations and the
 * capped growable buffer (sg_buf) for anything sized by input.
 */
#include "lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mem_oom(size_t n)
{
	char msg[96];
	int len = snprintf(msg, sizeof(msg), "fatal: out of memory (%zu bytes)\n", n);

	if (len > 0)
		(void)sg_write_all(2, msg, (size_t)len);
	abort();
}

void *sg_xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);

	if (p == NULL)
		mem_oom(n);
	return p;
}

void *sg_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);

	if (p == NULL)
		mem_oom(n * size);
	return p;
}

void *sg_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n != 0 ? n : 1);

	if (q == NULL)
		mem_oom(n);
	return q;
}

char *sg_xstrdup(const char *s)
{
	return sg_xstrndup(s, strlen(s));
}

char *sg_xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = sg_xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *sg_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		mem_oom(0);
	return s;
}

void sg_buf_init(struct sg_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void sg_buf_deinit(struct sg_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void sg_buf_reset(struct sg_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

int sg_buf_append(struct sg_buf *b, const void *data, size_t len, struct sg_error *err)
{
	size_t need;

	if (len > b->max || b->len > b->max - len) {
		sg_error_set(err, SG_E_LIMIT, "buffer limit of %zu bytes exceeded", b->max);
		return -1;
	}
	need = b->len + len + 1;
	if (need > b->cap) {
		size_t ncap = b->cap != 0 ? b->cap : 64;

		while (ncap < need)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		b->data = sg_xrealloc(b->data, ncap);
		b->cap = ncap;
	}
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int sg_buf_append_str(struct sg_buf *b, const char *s, struct sg_error *err)
{
	return sg_buf_append(b, s, strlen(s), err);
}

int sg_buf_printf(struct sg_buf *b, struct sg_error *err, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;
	int rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sg_error_set(err, SG_E_NOMEM, "out of memory");
		return -1;
	}
	rc = sg_buf_append(b, s, (size_t)n, err);
	free(s);
	return rc;
}

char *sg_buf_steal(struct sg_buf *b)
{
	char *p = b->data != NULL ? b->data : sg_xstrdup("");

	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
