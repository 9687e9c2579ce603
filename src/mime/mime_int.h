/*
 * mime_int.h - the message object shared by the files of src/mime/.
 * Private to the module.
 */
#ifndef SG_MIME_INT_H
#define SG_MIME_INT_H

#include "mime.h"

enum mime_msg_flags {
	MIME_MSG_MODIFIED = 1u << 0,   /* re-serialise instead of copying */
	MIME_MSG_NO_HEADERS = 1u << 1, /* input wrapped as one text/plain part */
	MIME_MSG_CRLF = 1u << 2,       /* the input's first line ended in CRLF */
	MIME_MSG_OPAQUE = 1u << 3,     /* only the header section was parsed */
};

struct mime_msg {
	GMimeMessage *gm;    /* NULL until first needed (mime_msg_open_fd) */
	GMimeStream *src;    /* GMimeStreamFs over fd (not owner), or NULL */
	int fd;              /* our dup of the caller's fd, or -1 (generated) */
	uint64_t offset;     /* source byte range in fd */
	uint64_t len;
	unsigned flags;      /* enum mime_msg_flags */
};

/* mime_msg_gm - the GMime message, parsed from the source now if it was
 * opened with mime_msg_open_fd and not parsed yet (never NULL). Every use
 * of m->gm and of the flags set by the parse goes through here. */
GMimeMessage *mime_msg_gm(const struct mime_msg *m);

#endif
