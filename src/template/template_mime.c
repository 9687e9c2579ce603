/*
 * template_mime.c - validate and render templates (template.h): a mail
 * template is parsed as a MIME message by GMime, then every header field
 * that holds template syntax or non-ASCII text and every text part is
 * rendered on its own with the context's escaping and written back through
 * GMime (RFC 2047 for headers, quoted-printable/base64 for text parts), so
 * variables can never change the structure of the message. SMS templates
 * are plain text. Also puts a real attachment in place of a template's
 * placeholder part (template_msg_attach).
 *
 * Called by the MPA stages (S/MIME, PDF, DLP, CA), the CLI and the HTTP API
 * in any thread; needs g_mime_init() done by the program. RFCs: 5322
 * (message format), 2045-2047 (MIME, encoded words), 2183 (Content-
 * Disposition). Invariants: the walk over a template's parts is bounded
 * (TPL_MIME_DEPTH_MAX, TPL_MIME_PARTS_MAX); every rendered piece is capped at
 * TEMPLATE_OUTPUT_MAX bytes.
 */
#include "template_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TPL_MIME_DEPTH_MAX 8
#define TPL_MIME_PARTS_MAX 64

struct tpl_job {
	const struct template_def *def;
	const struct tpl_vars *vars;
	const char *text;       /* the template source (for line numbers) */
	size_t len;
	unsigned nparts;
	struct sg_error *err;
};

static bool tpl_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* tpl_is_structural - fields whose values shape the MIME structure. */
static bool tpl_is_structural(const char *name)
{
	return sg_str_has_prefix_ci(name, "Content-") || strcasecmp(name, "MIME-Version") == 0;
}

/* tpl_is_address_field - fields GMime parses as address lists. */
static bool tpl_is_address_field(const char *name)
{
	static const char *const names[] = {"From", "To", "Cc", "Bcc", "Reply-To", "Sender"};
	size_t i;

	if (sg_str_has_prefix_ci(name, "Resent-"))
		return true;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

/* tpl_line_of - 1-based line of byte offset off in the source. */
static unsigned tpl_line_of(const struct tpl_job *j, gint64 off)
{
	unsigned line = 1;
	size_t i;

	if (off < 0)
		return 0;
	for (i = 0; i < (size_t)off && i < j->len; i++)
		if (j->text[i] == '\n')
			line++;
	return line;
}

/* tpl_unfold - the field value without folding line breaks, trimmed. */
static char *tpl_unfold(const char *raw)
{
	char *out = sg_xmalloc(strlen(raw) + 1), *o = out;
	const char *s = raw;

	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s != '\0'; s++)
		if (*s != '\r' && *s != '\n')
			*o++ = *s;
	while (o > out && (o[-1] == ' ' || o[-1] == '\t'))
		o--;
	*o = '\0';
	return out;
}

/* tpl_render_piece - parse src as template and render it into *out_r. */
static int tpl_render_piece(struct tpl_job *j, const char *src, size_t len, unsigned line,
	unsigned col, enum tpl_ctx ctx, char **out_r)
{
	struct sg_buf b;
	struct tpl *t;
	int rc;

	*out_r = NULL;
	t = tpl_parse(j->def, src, len, line, col, j->err);
	if (t == NULL)
		return -1;
	sg_buf_init(&b, TEMPLATE_OUTPUT_MAX);
	rc = tpl_render(t, j->vars, ctx, &b, j->err);
	tpl_free(&t);
	if (rc < 0) {
		sg_buf_deinit(&b);
		return -1;
	}
	*out_r = sg_buf_steal(&b);
	return 0;
}

/* tpl_mime_headers - render the template fields of one object's header. */
static int tpl_mime_headers(struct tpl_job *j, GMimeObject *obj)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	int i, n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		const char *raw = g_mime_header_get_raw_value(h);
		unsigned line;
		char *val, *out;
		int rc;

		if (raw == NULL || (tpl_is_ascii(raw) && !tpl_has_syntax(raw, strlen(raw))))
			continue;
		line = tpl_line_of(j, g_mime_header_get_offset(h));
		if (tpl_is_structural(name)) {
			if (!tpl_has_syntax(raw, strlen(raw)))
				continue;
			sg_error_set(j->err, SG_E_PARSE, "line %u: field %s: variables and "
				"directives are not allowed in MIME-Version and Content-* fields", line,
				name);
			return -1;
		}
		val = tpl_unfold(raw);
		if (!tpl_is_address_field(name)) {
			/* encoded words the template author wrote are text, not
			 * literal "=?...?=": decode before the value is re-encoded */
			char *dec = g_mime_utils_header_decode_text(NULL, val);

			free(val);
			val = sg_xstrdup(dec);
			g_free(dec);
		}
		rc = tpl_render_piece(j, val, strlen(val), line, (unsigned)strlen(name) + 3,
			TPL_CTX_HEADER, &out);
		free(val);
		if (rc < 0) {
			sg_error_prefix(j->err, "field %s: ", name);
			return -1;
		}
		g_strstrip(out);
		if (out[0] == '\0') {
			/* an optional field ("Cc: ${cc}") that came out empty goes */
			g_mime_header_list_remove_at(hl, i);
			i--;
			n--;
		} else {
			g_mime_header_set_value(h, NULL, out, "utf-8");
		}
		free(out);
	}
	return 0;
}

/* tpl_mime_text - render one text part (its content decoded to UTF-8). */
static int tpl_mime_text(struct tpl_job *j, GMimeTextPart *tp, unsigned partno)
{
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(tp));
	bool is_html = ct != NULL && g_mime_content_type_is_type(ct, "text", "html");
	char *content = g_mime_text_part_get_text(tp), *out = NULL;
	GMimeContentEncoding enc;
	int rc;

	if (content == NULL)
		content = g_strdup("");
	rc = tpl_render_piece(j, content, strlen(content), 1, 1,
		is_html ? TPL_CTX_HTML : TPL_CTX_TEXT, &out);
	g_free(content);
	if (rc < 0) {
		sg_error_prefix(j->err, "part %u (text/%s): ", partno,
			ct != NULL && ct->subtype != NULL ? ct->subtype : "plain");
		return -1;
	}
	g_mime_text_part_set_text(tp, out);
	enc = g_mime_part_get_best_content_encoding(GMIME_PART(tp),
		GMIME_ENCODING_CONSTRAINT_7BIT);
	g_mime_part_set_content_encoding(GMIME_PART(tp), enc);
	free(out);
	return 0;
}

/* tpl_mime_walk - headers and text parts of obj and its children (bounded). */
static int tpl_mime_walk(struct tpl_job *j, GMimeObject *obj, unsigned depth)
{
	unsigned partno;

	if (depth > TPL_MIME_DEPTH_MAX || j->nparts >= TPL_MIME_PARTS_MAX) {
		sg_error_set(j->err, SG_E_LIMIT, "more than %d parts or %d levels",
			TPL_MIME_PARTS_MAX, TPL_MIME_DEPTH_MAX);
		return -1;
	}
	partno = ++j->nparts;
	if (tpl_mime_headers(j, obj) < 0)
		return -1;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int i, n = g_mime_multipart_get_count(mp);

		for (i = 0; i < n; i++)
			if (tpl_mime_walk(j, g_mime_multipart_get_part(mp, i), depth + 1) < 0)
				return -1;
		return 0;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		GMimeObject *body = m != NULL ? g_mime_message_get_mime_part(m) : NULL;

		if (m != NULL && tpl_mime_headers(j, GMIME_OBJECT(m)) < 0)
			return -1;
		return body != NULL ? tpl_mime_walk(j, body, depth + 1) : 0;
	}
	if (GMIME_IS_TEXT_PART(obj))
		return tpl_mime_text(j, GMIME_TEXT_PART(obj), partno);
	return 0;
}

/* tpl_check_source - size, UTF-8, no NUL; then the whole text's syntax with
 * file positions (errors in one field or part are reported later with it). */
static int tpl_check_source(const struct template_def *def, const char *text, size_t len,
	struct sg_error *err)
{
	struct tpl *t;

	if (len > TEMPLATE_SOURCE_MAX) {
		sg_error_set(err, SG_E_LIMIT, "template %s: %zu bytes (at most %u)", def->name, len,
			TEMPLATE_SOURCE_MAX);
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		sg_error_set(err, SG_E_PARSE, "template %s: contains a NUL byte", def->name);
		return -1;
	}
	if (!g_utf8_validate(text, (gssize)len, NULL)) {
		sg_error_set(err, SG_E_PARSE, "template %s: not valid UTF-8", def->name);
		return -1;
	}
	t = tpl_parse(def, text, len, 1, 1, err);
	if (t == NULL)
		return -1;
	tpl_free(&t);
	return 0;
}

/* tpl_boundary_lines - lines starting with "--" (possible boundaries): GMime
 * builds every part in memory and recurses per level, so a hostile template
 * with thousands is refused before it is parsed (as the mime module does). */
static size_t tpl_boundary_lines(const char *text, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i + 1 < len; i++)
		if ((i == 0 || text[i - 1] == '\n') && text[i] == '-' && text[i + 1] == '-')
			n++;
	return n;
}

static GMimeMessage *tpl_mime_parse(const char *text, size_t len)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(text, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);

	g_object_unref(parser);
	g_object_unref(st);
	return m;
}

/* tpl_mail - render mail template text with vars into a new GMime message. */
static GMimeMessage *tpl_mail(const struct template_def *def, const char *text, size_t len,
	const struct tpl_vars *vars, const struct template_render_opts *opts,
	struct sg_error *err)
{
	static const char *const required[] = {"From", "To", "Subject"};
	GMimeMessage *gm = NULL;
	GMimeObject *body;
	struct tpl_job j;
	size_t i;

	if (tpl_check_source(def, text, len, err) < 0)
		return NULL;
	if (tpl_boundary_lines(text, len) > 4 * TPL_MIME_PARTS_MAX) {
		sg_error_set(err, SG_E_LIMIT, "template %s: more than %d lines starting with "
			"\"--\"", def->name, 4 * TPL_MIME_PARTS_MAX);
		return NULL;
	}
	gm = tpl_mime_parse(text, len);
	body = gm != NULL ? g_mime_message_get_mime_part(gm) : NULL;
	if (body == NULL) {
		sg_error_set(err, SG_E_PARSE, "template %s: not a MIME message with a body",
			def->name);
		goto fail;
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (g_mime_object_get_header(GMIME_OBJECT(gm), required[i]) == NULL) {
			sg_error_set(err, SG_E_PARSE, "template %s: no %s field in the header",
				def->name, required[i]);
			goto fail;
		}
	}
	memset(&j, 0, sizeof(j));
	j.def = def;
	j.vars = vars;
	j.text = text;
	j.len = len;
	j.err = err;
	if (tpl_mime_headers(&j, GMIME_OBJECT(gm)) < 0 || tpl_mime_walk(&j, body, 0) < 0) {
		sg_error_prefix(err, "template %s: ", def->name);
		goto fail;
	}
	if (g_mime_object_get_header(GMIME_OBJECT(gm), "Date") == NULL) {
		int64_t now = opts != NULL && opts->now != 0 ? opts->now : sg_now();
		GDateTime *dt = g_date_time_new_from_unix_utc(now);

		g_mime_message_set_date(gm, dt);
		g_date_time_unref(dt);
	}
	if (g_mime_object_get_header(GMIME_OBJECT(gm), "Message-Id") == NULL) {
		char id[SG_MAIL_ID_LEN + 1], rnd[9], *msgid;
		unsigned char r[4];

		sg_mail_id_new(id);
		if (sg_random_bytes(r, sizeof(r), NULL) < 0)
			memset(r, 0, sizeof(r));
		sg_hex(rnd, r, sizeof(r));
		msgid = sg_xasprintf("%s.%s@%s", id, rnd, opts != NULL &&
			opts->msgid_domain != NULL ? opts->msgid_domain : "localhost");
		g_mime_message_set_message_id(gm, msgid);
		free(msgid);
	}
	if (g_mime_object_get_header(GMIME_OBJECT(gm), "MIME-Version") == NULL)
		g_mime_object_set_header(GMIME_OBJECT(gm), "MIME-Version", "1.0", NULL);
	return gm;
fail:
	if (gm != NULL)
		g_object_unref(gm);
	return NULL;
}

/* tpl_sms - render SMS template text into *out_r (trimmed). */
static int tpl_sms(const struct template_def *def, const char *text, size_t len,
	const struct tpl_vars *vars, char **out_r, struct sg_error *err)
{
	struct sg_buf b;
	struct tpl *t;
	size_t n;
	char *s;

	*out_r = NULL;
	if (tpl_check_source(def, text, len, err) < 0)
		return -1;
	t = tpl_parse(def, text, len, 1, 1, err);
	if (t == NULL)
		return -1;
	sg_buf_init(&b, TEMPLATE_OUTPUT_MAX);
	if (tpl_render(t, vars, TPL_CTX_SMS, &b, err) < 0) {
		tpl_free(&t);
		sg_buf_deinit(&b);
		return -1;
	}
	tpl_free(&t);
	s = sg_buf_steal(&b);
	g_strstrip(s);
	n = tpl_utf8_chars(s);
	if (n > TEMPLATE_SMS_MAX) {
		sg_error_set(err, SG_E_LIMIT, "template %s: the SMS has %zu characters (at most %d)",
			def->name, n, TEMPLATE_SMS_MAX);
		free(s);
		return -1;
	}
	*out_r = s;
	return 0;
}

static const struct template_def *tpl_def_of(enum template_id id, enum template_kind kind,
	struct sg_error *err)
{
	const struct template_def *def = template_def(id);

	if (def == NULL) {
		sg_error_set(err, SG_E_INVAL, "unknown template %d", (int)id);
		return NULL;
	}
	if (def->kind != kind) {
		sg_error_set(err, SG_E_INVAL, "template %s is %s template", def->name,
			def->kind == TEMPLATE_KIND_SMS ? "an SMS" : "a mail");
		return NULL;
	}
	return def;
}

int template_validate(enum template_id id, const char *text, size_t len,
	struct sg_error *err)
{
	const struct template_def *def = template_def(id);
	struct tpl_vars *vars;
	GMimeMessage *gm;
	char *sms = NULL;
	int rc;

	if (def == NULL) {
		sg_error_set(err, SG_E_INVAL, "unknown template %d", (int)id);
		return -1;
	}
	vars = tpl_vars_sample(def);
	if (def->kind == TEMPLATE_KIND_SMS) {
		rc = tpl_sms(def, text, len, vars, &sms, err);
		if (rc < 0 && err != NULL && err->code == SG_E_LIMIT)
			sg_error_prefix(err, "with the sample values: ");
		free(sms);
	} else {
		gm = tpl_mail(def, text, len, vars, NULL, err);
		rc = gm != NULL ? 0 : -1;
		if (gm != NULL)
			g_object_unref(gm);
	}
	tpl_vars_free(&vars);
	return rc;
}

int template_render_mail(enum template_id id, const char *text, const struct template_var *vars,
	size_t nvars, const struct template_render_opts *opts, struct mime_msg **msg_r,
	struct sg_error *err)
{
	const struct template_def *def = tpl_def_of(id, TEMPLATE_KIND_MAIL, err);
	struct tpl_vars *tv;
	GMimeMessage *gm;

	*msg_r = NULL;
	if (def == NULL)
		return -1;
	tv = tpl_vars_new(def, vars, nvars, err);
	if (tv == NULL)
		return -1;
	gm = tpl_mail(def, text, strlen(text), tv, opts, err);
	tpl_vars_free(&tv);
	if (gm == NULL)
		return -1;
	*msg_r = mime_msg_new_gmime(gm);
	g_object_unref(gm);
	return 0;
}

int template_render_sms(enum template_id id, const char *text, const struct template_var *vars,
	size_t nvars, char **text_r, struct sg_error *err)
{
	const struct template_def *def = tpl_def_of(id, TEMPLATE_KIND_SMS, err);
	struct tpl_vars *tv;
	int rc;

	*text_r = NULL;
	if (def == NULL)
		return -1;
	tv = tpl_vars_new(def, vars, nvars, err);
	if (tv == NULL)
		return -1;
	rc = tpl_sms(def, text, strlen(text), tv, text_r, err);
	tpl_vars_free(&tv);
	return rc;
}

/* tpl_find_placeholder - the first non-text leaf part of type ct (bounded). */
static GMimePart *tpl_find_placeholder(GMimeObject *obj, GMimeContentType *ct, unsigned depth,
	unsigned *seen)
{
	if (depth > TPL_MIME_DEPTH_MAX || ++*seen > TPL_MIME_PARTS_MAX)
		return NULL;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int i, n = g_mime_multipart_get_count(mp);

		for (i = 0; i < n; i++) {
			GMimePart *p = tpl_find_placeholder(g_mime_multipart_get_part(mp, i), ct,
				depth + 1, seen);

			if (p != NULL)
				return p;
		}
		return NULL;
	}
	if (GMIME_IS_PART(obj) && !GMIME_IS_TEXT_PART(obj)) {
		GMimeContentType *pct = g_mime_object_get_content_type(obj);

		if (pct != NULL && g_mime_content_type_is_type(pct, ct->type, ct->subtype))
			return GMIME_PART(obj);
	}
	return NULL;
}

int template_msg_attach(struct mime_msg *msg, const char *content_type, const char *filename,
	int fd, struct sg_error *err)
{
	GMimeMessage *gm = mime_msg_get0_gmime(msg);
	GMimeContentType *ct = NULL;
	GMimeStream *st = NULL;
	GMimeDataWrapper *dw = NULL;
	GMimePart *part;
	GMimeObject *top;
	unsigned seen = 0;
	int dfd = -1, rc = -1;

	if (content_type == NULL || strchr(content_type, '/') == NULL ||
		strpbrk(content_type, "\r\n") != NULL) {
		sg_error_set(err, SG_E_INVAL, "attach: bad content type");
		return -1;
	}
	ct = g_mime_content_type_parse(NULL, content_type);
	if (ct == NULL || ct->type == NULL || ct->subtype == NULL || ct->type[0] == '\0' ||
		ct->subtype[0] == '\0' || g_ascii_strcasecmp(ct->type, "multipart") == 0) {
		sg_error_set(err, SG_E_INVAL, "attach: bad content type");
		goto out;
	}
	dfd = dup(fd);
	if (dfd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "attach: dup");
		goto out;
	}
	st = g_mime_stream_fs_new_with_bounds(dfd, 0, -1);
	dfd = -1;  /* owned by the stream */
	dw = g_mime_data_wrapper_new_with_stream(st, GMIME_CONTENT_ENCODING_DEFAULT);
	top = g_mime_message_get_mime_part(gm);
	part = top != NULL ? tpl_find_placeholder(top, ct, 0, &seen) : NULL;
	if (part != NULL) {
		g_mime_part_set_content(part, dw);
	} else {
		part = g_mime_part_new_with_type(ct->type, ct->subtype);
		g_mime_part_set_content(part, dw);
		g_mime_object_set_disposition(GMIME_OBJECT(part), "attachment");
		if (top != NULL && GMIME_IS_MULTIPART(top) && g_mime_content_type_is_type(
			g_mime_object_get_content_type(top), "multipart", "mixed")) {
			g_mime_multipart_add(GMIME_MULTIPART(top), GMIME_OBJECT(part));
		} else {
			GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");

			if (top != NULL)
				g_mime_multipart_add(mixed, top);
			g_mime_multipart_add(mixed, GMIME_OBJECT(part));
			g_mime_message_set_mime_part(gm, GMIME_OBJECT(mixed));
			g_object_unref(mixed);
		}
		g_object_unref(part);
	}
	g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
	if (filename != NULL)
		g_mime_part_set_filename(part, filename);
	mime_msg_set_modified(msg);
	rc = 0;
out:
	if (dw != NULL)
		g_object_unref(dw);
	if (st != NULL)
		g_object_unref(st);
	if (ct != NULL)
		g_object_unref(ct);
	if (dfd >= 0)
		close(dfd);
	return rc;
}
