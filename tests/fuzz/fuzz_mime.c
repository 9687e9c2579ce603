/*
 * fuzz_mime.c - libFuzzer target for MIME parsing as the MPA does it: the
 * bytes go into a file, mime_msg_parse_fd reads them, then the bounded walk,
 * the originator (F-POL-3), X-Sealgate-* stripping and both output paths.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mime/mime.h"

static int fuzz_part(const struct mime_part_ref *ref, void *arg, struct sg_error *err)
{
	GMimeContentType *ct = g_mime_object_get_content_type(ref->part);

	if (ct != NULL)
		*(size_t *)arg += strlen(g_mime_content_type_get_media_type(ct));
	return 0;
}

static int fuzz_sink(void *arg, const void *data, size_t len, struct sg_error *err)
{
	*(uint64_t *)arg += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct sg_error err;
	struct mime_msg *m;
	char *orig = NULL;
	size_t seen = 0;
	uint64_t out = 0;
	int fd;

	if (!initialised) {
		g_mime_init();
		initialised = 1;
	}
	fd = memfd_create("fuzz_mime", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size > 0 && sg_write_all(fd, data, size) < 0)
		abort();
	m = mime_msg_parse_fd(fd, 0, size, &err);
	close(fd);
	if (m == NULL)
		abort(); /* a readable file always parses */
	(void)mime_msg_walk(m, fuzz_part, &seen, &err);
	(void)mime_msg_originator(m, "env@example.com", &orig);
	free(orig);
	if (mime_msg_write(m, 0, fuzz_sink, &out, NULL, &err) < 0 || out != size)
		abort(); /* unmodified output is the input, byte for byte */
	(void)mime_msg_header_remove_prefix(m, "X-Sealgate-");
	mime_msg_set_modified(m);
	(void)mime_msg_write(m, 4u << 20, fuzz_sink, &out, NULL, &err);
	mime_msg_free(&m);
	return 0;
}
