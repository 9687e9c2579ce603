/*
 * smime_mime.c - split a message into the header fields that stay outside an
 * S/MIME layer and the top-level MIME entity (Content-* fields + body) that
 * is signed or encrypted (RFC 8551 §3.1), keeping the original bytes.
 *
 * Called by smime_sign.c, smime_encrypt.c and smime_open.c, in the caller's
 * thread. GMime parses the header section (raw names, raw folded values and
 * their offsets); the body is the byte range after the last header field and
 * its terminating empty line, taken from the input as is. The only change is
 * RFC 8551 canonicalisation: a bare LF becomes CRLF.
 *
 * Invariant: outer never holds Content-* or MIME-Version fields; entity is
 * the entity's fields (original order), an empty line and the body.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <openssl/bio.h>

#include "smime/smime_int.h"

size_t
smime_effective_max(size_t m)
{
	return m ? m : SMIME_DEFAULT_MAX;
}

void
smime_out_rollback(struct sg_buf *out, size_t len)
{
	if (out == NULL || out->data == NULL || len > out->len)
		return;
	out->len = len;
	out->data[len] = '\0';
}

/* smime_crlf_append - copy runs without bare LF in one append each. */
int
smime_crlf_append(struct sg_buf *b, const void *data, size_t len, struct sg_error *err)
{
	const char *p = data, *end = p + len, *run = p;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));

		if (lf == NULL)
			break;
		if (lf == (const char *)data || lf[-1] != '\r') {
			if (sg_buf_append(b, run, (size_t)(lf - run), err) < 0 ||
			    sg_buf_append(b, "\r\n", 2, err) < 0)
				return -1;
			run = lf + 1;
		}
		p = lf + 1;
	}
	return sg_buf_append(b, run, (size_t)(end - run), err);
}

int
smime_bio_append(BIO *bio, struct sg_buf *b, struct sg_error *err)
{
	char tmp[16384];
	int n;

	while ((n = BIO_read(bio, tmp, sizeof(tmp))) > 0) {
		if (sg_buf_append(b, tmp, (size_t)n, err) < 0)
			return -1;
	}
	return 0;
}

static char *
lower_dup(const char *s)
{
	char *r;

	if (s == NULL)
		return NULL;
	r = sg_xstrdup(s);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

/* append_field - "name:rawvalue" canonicalised; the raw value keeps its
 * folding and ends in the line break GMime kept. */
static int
append_field(struct sg_buf *b, GMimeHeader *h, struct sg_error *err)
{
	const char *name = g_mime_header_get_raw_name(h);
	const char *value = g_mime_header_get_raw_value(h);
	size_t vlen;

	if (name == NULL || value == NULL)
		return 0;
	vlen = strlen(value);
	if (sg_buf_append_str(b, name, err) < 0 || sg_buf_append(b, ":", 1, err) < 0 ||
	    smime_crlf_append(b, value, vlen, err) < 0)
		return -1;
	if (vlen == 0 || value[vlen - 1] != '\n')
		return sg_buf_append(b, "\r\n", 2, err);
	return 0;
}

/* field_end - offset just past header h in the source, or -1 (generated). */
static gint64
field_end(GMimeHeader *h)
{
	gint64 off = g_mime_header_get_offset(h);
	const char *name = g_mime_header_get_raw_name(h);
	const char *value = g_mime_header_get_raw_value(h);

	if (off < 0 || name == NULL || value == NULL)
		return -1;
	return off + (gint64)strlen(name) + 1 + (gint64)strlen(value);
}

/*
 * split_headers - the fields of gm (or, with gm NULL, all of the top-level
 * part's fields) that stay outside into outer, the entity's Content-* fields
 * (those of part) into entity. *body_r: where the header fields end.
 */
static int
split_headers(GMimeMessage *gm, GMimeObject *part, size_t len, struct smime_split *s,
	size_t *body_r, struct sg_error *err)
{
	GMimeHeaderList *hl = gm != NULL ? g_mime_object_get_header_list(GMIME_OBJECT(gm)) :
		g_mime_object_get_header_list(part);
	gint64 end = 0;
	int n = g_mime_header_list_get_count(hl);

	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		gint64 e = field_end(h);

		if (e < 0)
			continue;
		if (e > end)
			end = e;
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "MIME-Version") == 0 ||
		    g_ascii_strncasecmp(g_mime_header_get_name(h), "Content-", 8) == 0)
			continue;
		if (append_field(&s->outer, h, err) < 0)
			return -1;
	}
	hl = part ? g_mime_object_get_header_list(part) : NULL;
	n = hl ? g_mime_header_list_get_count(hl) : 0;
	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		gint64 e = field_end(h);

		if (e < 0)
			continue;
		if (e > end)
			end = e;
		/* a part read as the top level holds every field */
		if (gm == NULL && g_ascii_strncasecmp(g_mime_header_get_name(h), "Content-", 8) != 0)
			continue;
		if (append_field(&s->entity, h, err) < 0)
			return -1;
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "Content-Type") == 0 &&
		    s->ctype.len == 0 && append_field(&s->ctype, h, err) < 0)
			return -1;
	}
	if ((uint64_t)end > len) {
		sg_error_set(err, SG_E_PARSE, "header section beyond the message");
		return -1;
	}
	*body_r = (size_t)end;
	return 0;
}

/* header_section_len - bytes up to and including the first empty line (the
 * end of the RFC 5322 header section), or len when there is none. */
static size_t
header_section_len(const char *p, size_t len)
{
	const char *q = p, *end = p + len;

	if (len > 0 && (p[0] == '\n' || (len > 1 && p[0] == '\r' && p[1] == '\n')))
		return p[0] == '\n' ? 1 : 2;
	while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		q++;
		if (q < end && *q == '\n')
			return (size_t)(q + 1 - p);
		if (q + 1 < end && q[0] == '\r' && q[1] == '\n')
			return (size_t)(q + 2 - p);
	}
	return len;
}

int
smime_split_head(const void *hdr, size_t hlen, uint64_t len, size_t max,
	struct smime_split *s, uint64_t *body_r, struct sg_error *err)
{
	const char *p = hdr;
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *gm = NULL;
	GMimeObject *part = NULL, *top = NULL;
	GMimeContentType *ct;
	size_t body = 0, hsl;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	sg_buf_init(&s->outer, max);
	sg_buf_init(&s->entity, max);
	sg_buf_init(&s->ctype, 64 * 1024);
	/* GMime sees the header section only: the body is never parsed here (no
	 * cost, no memory per part on hostile structure - see mime.h) */
	/* (read as one part, it costs less than as a message, which builds
	 * address lists, dates etc.; the same fields with the same offsets
	 * come out. What GMime reads only as a message - an mbox "From "
	 * line first - is read as one.) */
	hsl = header_section_len(p, hlen);
	stream = g_mime_stream_mem_new_with_buffer(hdr, hsl);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	top = g_mime_parser_construct_part(parser, NULL);
	if (top != NULL) {
		part = top;
	} else {
		g_object_unref(parser);
		g_object_unref(stream);
		stream = g_mime_stream_mem_new_with_buffer(hdr, hsl);
		parser = g_mime_parser_new_with_stream(stream);
		g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
		gm = g_mime_parser_construct_message(parser, NULL);
		if (gm == NULL) {
			sg_error_set(err, SG_E_PARSE, "not a MIME message");
			goto out;
		}
		part = g_mime_message_get_mime_part(gm);
	}
	if (split_headers(gm, part, hlen, s, &body, err) < 0)
		goto out;
	/* the empty line that ends the header section */
	if (body > 0) {
		if (body + 1 < hlen && p[body] == '\r' && p[body + 1] == '\n')
			body += 2;
		else if (body < hlen && p[body] == '\n')
			body += 1;
	}
	if (sg_buf_append(&s->entity, "\r\n", 2, err) < 0)
		goto out;
	s->entity_body = s->entity.len;
	ct = part ? g_mime_object_get_content_type(part) : NULL;
	if (ct != NULL && s->ctype.len > 0) {
		const char *t = g_mime_content_type_get_media_type(ct);
		const char *st = g_mime_content_type_get_media_subtype(ct);

		s->media = sg_xasprintf("%s/%s", t ? t : "text", st ? st : "plain");
		for (char *q = s->media; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		s->protocol = lower_dup(g_mime_content_type_get_parameter(ct, "protocol"));
		s->smime_type = lower_dup(g_mime_content_type_get_parameter(ct, "smime-type"));
		s->name = lower_dup(g_mime_content_type_get_parameter(ct, "name"));
		if (g_mime_content_type_get_parameter(ct, "boundary") != NULL)
			s->boundary = sg_xstrdup(g_mime_content_type_get_parameter(ct, "boundary"));
	} else {
		s->media = sg_xstrdup("text/plain");
	}
	if ((uint64_t)body > len) {
		sg_error_set(err, SG_E_PARSE, "header section beyond the message");
		goto out;
	}
	*body_r = body;
	rc = 0;
out:
	if (gm)
		g_object_unref(gm);
	if (top)
		g_object_unref(top);
	if (parser)
		g_object_unref(parser);
	if (stream)
		g_object_unref(stream);
	if (rc < 0)
		smime_split_deinit(s);
	return rc;
}

int
smime_split_msg(const void *msg, size_t len, size_t max, struct smime_split *s,
	struct sg_error *err)
{
	const char *p = msg;
	uint64_t body = 0;

	if (smime_split_head(msg, len, len, max, s, &body, err) < 0)
		return -1;
	if (smime_crlf_append(&s->entity, p + body, len - (size_t)body, err) < 0) {
		smime_split_deinit(s);
		return -1;
	}
	return 0;
}

void
smime_split_deinit(struct smime_split *s)
{
	sg_buf_deinit(&s->outer);
	sg_buf_deinit(&s->entity);
	sg_buf_deinit(&s->ctype);
	free(s->media);
	free(s->protocol);
	free(s->smime_type);
	free(s->name);
	free(s->boundary);
	s->media = s->protocol = s->smime_type = s->name = s->boundary = NULL;
}

int
smime_split_signed_ctype(const struct smime_split *s, struct sg_buf *b, struct sg_error *err)
{
	const char *bd = s->boundary;
	bool token = bd != NULL && *bd != '\0';

	if (bd == NULL || strlen(bd) > 200 || strpbrk(bd, "\"\\\r\n") != NULL) {
		sg_error_set(err, SG_E_PARSE, "multipart/signed: missing or bad boundary");
		return -1;
	}
	for (const char *p = bd; *p && token; p++)
		token = g_ascii_isalnum(*p) || strchr("'+_-.", *p) != NULL;
	return sg_buf_printf(b, err, "Content-Type: multipart/signed; protocol=\"%s\"; "
		"boundary=%s%s%s\r\n", s->protocol ? s->protocol : "application/pkcs7-signature",
		token ? "" : "\"", bd, token ? "" : "\"");
}

int
smime_split_kind(const struct smime_split *s)
{
	const char *m = s->media;

	if (m == NULL)
		return 0;
	if (strcmp(m, "multipart/signed") == 0 && s->protocol != NULL &&
	    (strcmp(s->protocol, "application/pkcs7-signature") == 0 ||
	     strcmp(s->protocol, "application/x-pkcs7-signature") == 0))
		return 1;
	if (strcmp(m, "application/pkcs7-mime") == 0 ||
	    strcmp(m, "application/x-pkcs7-mime") == 0)
		return 2;
	/* some clients label it octet-stream with a .p7m name (RFC 8551 §3.2.1) */
	if (strcmp(m, "application/octet-stream") == 0 && s->name != NULL) {
		size_t n = strlen(s->name);

		if (n > 4 && strcmp(s->name + n - 4, ".p7m") == 0)
			return 2;
	}
	return 0;
}

int
smime_is_smime(const void *msg, size_t len)
{
	struct smime_split s;
	struct sg_error e;
	int kind;

	if (smime_split_msg(msg, len, len * 2 + 1024, &s, &e) < 0)
		return 0;
	kind = smime_split_kind(&s);
	smime_split_deinit(&s);
	return kind != 0;
}

int
smime_name_find(const struct smime_name *tab, size_t n, const char *s, int *v_r)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++) {
		if (strcasecmp(s, tab[i].name) == 0) {
			*v_r = tab[i].value;
			return 0;
		}
	}
	return -1;
}
