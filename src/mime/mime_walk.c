/*
 * mime_walk.c - a bounded depth-first walk over the parts of a message
 * (RFC 2046 multiparts, message/rfc822 parts).
 *
 * Hostile input: GMime itself tolerates deep nesting (it stops at 1024
 * levels); our walk stops at MIME_MAX_DEPTH levels and MIME_MAX_PARTS parts,
 * so no caller recurses or loops without a bound (STYLE §13). The recursion
 * below is at most MIME_MAX_DEPTH + 1 frames deep.
 */
#include "mime_int.h"

struct mime_walk {
	mime_walk_fn *fn;
	void *arg;
	unsigned count;
	struct sg_error *err;
};

/* mime_walk_part - visit part, then its children; 0 go on, 1 stop, -1 error */
static int mime_walk_part(struct mime_walk *w, GMimeObject *part, GMimeObject *parent,
	unsigned depth)
{
	struct mime_part_ref ref;
	int rc, i, n;

	if (depth > MIME_MAX_DEPTH) {
		sg_error_set(w->err, SG_E_LIMIT, "mime: parts nested deeper than %u levels",
			MIME_MAX_DEPTH);
		return -1;
	}
	if (w->count >= MIME_MAX_PARTS) {
		sg_error_set(w->err, SG_E_LIMIT, "mime: more than %u parts", MIME_MAX_PARTS);
		return -1;
	}
	ref.part = part;
	ref.parent = parent;
	ref.depth = depth;
	ref.index = w->count++;
	rc = w->fn(&ref, w->arg, w->err);
	if (rc != 0)
		return rc;
	if (GMIME_IS_MULTIPART(part)) {
		n = g_mime_multipart_get_count(GMIME_MULTIPART(part));
		for (i = 0; i < n; i++) {
			GMimeObject *child = g_mime_multipart_get_part(GMIME_MULTIPART(part), i);

			if (child == NULL)
				continue;
			rc = mime_walk_part(w, child, part, depth + 1);
			if (rc != 0)
				return rc;
		}
	} else if (GMIME_IS_MESSAGE_PART(part)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
		GMimeObject *body = inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;

		if (body != NULL)
			return mime_walk_part(w, body, part, depth + 1);
	}
	return 0;
}

int mime_msg_walk(struct mime_msg *m, mime_walk_fn *fn, void *arg, struct sg_error *err)
{
	struct mime_walk w = {fn, arg, 0, err};
	GMimeObject *top = g_mime_message_get_mime_part(mime_msg_gm(m));
	int rc;

	if ((m->flags & MIME_MSG_OPAQUE) != 0) {
		sg_error_set(err, SG_E_LIMIT, "message has more than %d possible MIME "
			"parts: structure not parsed", MIME_MAX_BOUNDARY_LINES);
		return -1;
	}
	if (top == NULL)
		return 0;
	rc = mime_walk_part(&w, top, NULL, 0);
	return rc < 0 ? -1 : 0;
}
