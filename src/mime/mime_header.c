/*
 * mime_header.c - get, set and remove the top-level header fields of a
 * message (RFC 5322 §2.2, §3.6; RFC 2047 for encoded values).
 *
 * Called by the MPA stages (hygiene strips X-Sealgate-*, later stages add
 * result headers). Any change marks the message modified, so it is
 * re-serialised instead of copied byte for byte.
 */
#include "mime_int.h"

#include <string.h>
#include <strings.h>

static GMimeHeaderList *mime_headers(struct mime_msg *m)
{
	return g_mime_object_get_header_list(GMIME_OBJECT(mime_msg_gm(m)));
}

/* mime_check_field - a field name is printable ASCII without ':'; a value
 * holds no line breaks (they would inject header fields). */
static int mime_check_field(const char *name, const char *value, struct sg_error *err)
{
	const char *p;

	if (name == NULL || name[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "mime: empty header name");
		return -1;
	}
	for (p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || c == ':') {
			sg_error_set(err, SG_E_INVAL, "mime: bad header name");
			return -1;
		}
	}
	if (value == NULL || strpbrk(value, "\r\n") != NULL) {
		sg_error_set(err, SG_E_INVAL, "mime: header %s: bad value", name);
		return -1;
	}
	return 0;
}

const char *mime_msg_header_get(struct mime_msg *m, const char *name)
{
	GMimeHeader *h = g_mime_header_list_get_header(mime_headers(m), name);

	return h != NULL ? g_mime_header_get_value(h) : NULL;
}

const char *mime_msg_header_get_raw(struct mime_msg *m, const char *name)
{
	GMimeHeader *h = g_mime_header_list_get_header(mime_headers(m), name);

	return h != NULL ? g_mime_header_get_raw_value(h) : NULL;
}

const char *mime_msg_header_get_nth(struct mime_msg *m, const char *name, size_t idx)
{
	GMimeHeaderList *hl = mime_headers(m);
	int i, n = g_mime_header_list_get_count(hl);
	size_t seen = 0;

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *v;

		if (strcasecmp(g_mime_header_get_name(h), name) != 0 || seen++ != idx)
			continue;
		v = g_mime_header_get_value(h);
		return v != NULL ? v : "";
	}
	return NULL;
}

unsigned mime_msg_header_count(struct mime_msg *m, const char *name)
{
	GMimeHeaderList *hl = mime_headers(m);
	int i, n = g_mime_header_list_get_count(hl);
	unsigned found = 0;

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);

		if (strcasecmp(g_mime_header_get_name(h), name) == 0)
			found++;
	}
	return found;
}

/* mime_msg_header_set - replace the first field, drop later duplicates */
int mime_msg_header_set(struct mime_msg *m, const char *name, const char *value,
	struct sg_error *err)
{
	GMimeHeaderList *hl;
	bool seen = false;
	int i;

	if (mime_check_field(name, value, err) < 0)
		return -1;
	hl = mime_headers(m);
	g_mime_header_list_set(hl, name, value, NULL);
	for (i = 0; i < g_mime_header_list_get_count(hl); i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);

		if (strcasecmp(g_mime_header_get_name(h), name) != 0)
			continue;
		if (!seen) {
			seen = true;
			continue;
		}
		g_mime_header_list_remove_at(hl, i);
		i--;
	}
	m->flags |= MIME_MSG_MODIFIED;
	return 0;
}

int mime_msg_header_append(struct mime_msg *m, const char *name, const char *value,
	struct sg_error *err)
{
	if (mime_check_field(name, value, err) < 0)
		return -1;
	g_mime_header_list_append(mime_headers(m), name, value, NULL);
	m->flags |= MIME_MSG_MODIFIED;
	return 0;
}

unsigned mime_msg_header_remove(struct mime_msg *m, const char *name)
{
	GMimeHeaderList *hl = mime_headers(m);
	unsigned n = 0;

	while (g_mime_header_list_remove(hl, name))
		n++;
	if (n > 0)
		m->flags |= MIME_MSG_MODIFIED;
	return n;
}

unsigned mime_msg_header_remove_prefix(struct mime_msg *m, const char *prefix)
{
	GMimeHeaderList *hl = mime_headers(m);
	int i = g_mime_header_list_get_count(hl);
	unsigned n = 0;

	while (i-- > 0) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);

		if (!sg_str_has_prefix_ci(g_mime_header_get_name(h), prefix))
			continue;
		g_mime_header_list_remove_at(hl, i);
		n++;
	}
	if (n > 0)
		m->flags |= MIME_MSG_MODIFIED;
	return n;
}
