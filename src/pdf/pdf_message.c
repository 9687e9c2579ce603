/*
 * pdf_message.c - a message to an encrypted PDF (F-PDF-1, F-PDF-2):
 * classify the parts (bounded mime_msg_walk), decode attachments into work
 * files, draw the header block and the bodies on the canvas, then let qpdf
 * embed the files and encrypt; copy the result to the caller's fd.
 *
 * Called by the MPA for one recipient group whose method is PDF, in a worker
 * thread; one message per call, nothing shared between calls.
 * RFCs: 2045/2046 (MIME structure, transfer encodings), 2047/2231 (decoded
 * header values and file names, via GMime), 2183 (Content-Disposition).
 * Invariants: part contents stream (64 KiB at a time) from the spool file
 * into work files or onto the canvas, so our own memory does not grow with
 * the message (qpdf's does: two copies of the largest embedded file, see
 * pdf.h "Memory"); the work directory is private (0700) and always removed; out_fd
 * receives bytes only after the PDF was completely built (fail closed).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "mime/mime.h"
#include "pdf/pdf_int.h"

#define PDF_CHUNK 65536
#define PDF_NAME_MAX 200

enum pdf_item_kind {
	PDF_ITEM_TEXT,     /* inline text/plain body */
	PDF_ITEM_HTML,     /* inline text/html body */
	PDF_ITEM_MESSAGE,  /* message/rfc822: headers shown + embedded as .eml */
	PDF_ITEM_FILE,     /* embedded file */
};

struct pdf_item {
	enum pdf_item_kind kind;
	GMimeObject *obj;  /* borrowed from the message */
	unsigned level;    /* nested messages around it */
	int embed;         /* index into job->embeds, -1 = none */
	bool render;       /* a MESSAGE whose parts are shown */
};

/* Part info kept during the walk (GHashTable value bits). */
#define PDF_PI_SEEN 0x1u
#define PDF_PI_SKIP 0x2u     /* not shown (an alternative not chosen) */
#define PDF_PI_LEVEL(v) ((v) >> 8)

struct pdf_job {
	const struct pdf_options *opt;
	struct mime_msg *msg;
	char dir[PATH_MAX];
	bool have_dir;
	GHashTable *info;    /* GMimeObject * -> flags | level << 8 */
	GHashTable *names;   /* display names in use (lower case) */
	struct pdf_item *items;
	unsigned nitems;
	struct pdf_embed *embeds;
	unsigned nembeds;
	unsigned nmsg;       /* message-N.eml counter */
	uint64_t total;      /* decoded bytes of all embedded files */
};

/* ------------------------------------------------------------- the walk */

/* pdf_add_item - append an item (bounded: at most one per walked part) */
static struct pdf_item *pdf_add_item(struct pdf_job *job, enum pdf_item_kind kind,
	GMimeObject *obj, unsigned level)
{
	struct pdf_item *it;

	if (job->nitems % 64 == 0)
		job->items = sg_xrealloc(job->items, (job->nitems + 64) * sizeof(*job->items));
	it = &job->items[job->nitems++];
	it->kind = kind;
	it->obj = obj;
	it->level = level;
	it->embed = -1;
	it->render = false;
	return it;
}

static bool pdf_is_attachment(GMimeObject *p)
{
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(p);

	return d != NULL && g_mime_content_disposition_is_attachment(d);
}

/* pdf_is_inline_text - a text/<subtype> part shown as body */
static bool pdf_is_inline_text(GMimeObject *p, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(p);

	return GMIME_IS_PART(p) && ct != NULL && g_mime_content_type_is_type(ct, "text", subtype) &&
	       !pdf_is_attachment(p) && g_mime_part_get_filename(GMIME_PART(p)) == NULL;
}

/* pdf_choose_alternative - mark every child but the shown one as skipped:
 * the first inline text/plain, else the last (richest, RFC 2046 §5.1.4) */
static void pdf_choose_alternative(struct pdf_job *job, GMimeMultipart *mp)
{
	int i, n = g_mime_multipart_get_count(mp), chosen = n - 1;

	for (i = 0; i < n; i++) {
		if (pdf_is_inline_text(g_mime_multipart_get_part(mp, i), "plain")) {
			chosen = i;
			break;
		}
	}
	for (i = 0; i < n; i++)
		if (i != chosen)
			g_hash_table_insert(job->info, g_mime_multipart_get_part(mp, i),
				GUINT_TO_POINTER(PDF_PI_SKIP));
}

/* pdf_walk_fn - classify one part (mime_walk_fn) */
static int pdf_walk_fn(const struct mime_part_ref *ref, void *arg, struct sg_error *err)
{
	struct pdf_job *job = arg;
	GMimeObject *p = ref->part;
	unsigned self = GPOINTER_TO_UINT(g_hash_table_lookup(job->info, p));
	unsigned pinfo = 0, level = 0;
	bool skipped = (self & PDF_PI_SKIP) != 0;
	struct pdf_item *it;

	if (ref->parent != NULL) {
		pinfo = GPOINTER_TO_UINT(g_hash_table_lookup(job->info, ref->parent));
		level = PDF_PI_LEVEL(pinfo) + (GMIME_IS_MESSAGE_PART(ref->parent) ? 1 : 0);
		if (pinfo & PDF_PI_SKIP)
			skipped = true;
	}
	g_hash_table_insert(job->info, p, GUINT_TO_POINTER(PDF_PI_SEEN |
		(skipped ? PDF_PI_SKIP : 0) | level << 8));
	if (GMIME_IS_MULTIPART(p)) {
		GMimeContentType *ct = g_mime_object_get_content_type(p);

		if (!skipped && ct != NULL && g_mime_content_type_is_type(ct, "multipart",
		    "alternative"))
			pdf_choose_alternative(job, GMIME_MULTIPART(p));
		return 0;
	}
	if (GMIME_IS_MESSAGE_PART(p)) {
		if (skipped && !pdf_is_attachment(p))
			return 0;
		it = pdf_add_item(job, PDF_ITEM_MESSAGE, p, level);
		/* a nested message inside a hidden alternative is embedded only */
		it->render = !skipped &&
			g_mime_message_part_get_message(GMIME_MESSAGE_PART(p)) != NULL;
		if (skipped) /* its children stay hidden */
			g_hash_table_insert(job->info, p, GUINT_TO_POINTER(PDF_PI_SEEN |
				PDF_PI_SKIP | level << 8));
		return 0;
	}
	if (!GMIME_IS_PART(p))
		return 0;
	if (skipped) {
		if (pdf_is_attachment(p))
			pdf_add_item(job, PDF_ITEM_FILE, p, level);
		return 0;
	}
	if (pdf_is_inline_text(p, "plain"))
		pdf_add_item(job, PDF_ITEM_TEXT, p, level);
	else if (pdf_is_inline_text(p, "html"))
		pdf_add_item(job, PDF_ITEM_HTML, p, level);
	else
		pdf_add_item(job, PDF_ITEM_FILE, p, level);
	(void)err;
	return 0;
}

/* ----------------------------------------------------------- file names */

static const struct {
	const char *type;
	const char *ext;
} pdf_ext_table[] = {
	{ "text/plain", ".txt" }, { "text/html", ".html" }, { "text/calendar", ".ics" },
	{ "text/csv", ".csv" }, { "image/png", ".png" }, { "image/jpeg", ".jpg" },
	{ "image/gif", ".gif" }, { "application/pdf", ".pdf" },
	{ "application/zip", ".zip" }, { "message/rfc822", ".eml" },
};

/* pdf_mime_type - lower-case "type/subtype" of p, application/octet-stream
 * when missing or not two RFC 2045 tokens (caller frees) */
static char *pdf_mime_type(GMimeObject *p)
{
	GMimeContentType *ct = g_mime_object_get_content_type(p);
	char *t = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
	char *out;
	size_t i, slashes = 0;
	bool ok = t != NULL && t[0] != '/' && strlen(t) < 128;

	for (i = 0; ok && t[i] != '\0'; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c == '/')
			slashes++;
		else if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"[]?=", c) != NULL)
			ok = false;
	}
	ok = ok && slashes == 1 && t[i - 1] != '/';
	out = sg_xstrdup(ok ? t : "application/octet-stream");
	sg_str_lower(out);
	g_free(t);
	return out;
}

/* pdf_is_bidi_control - LRM/RLM, embeddings/overrides, isolates: in a file
 * name they only serve to disguise the extension ("txt.exe" shown as
 * "exe.txt") */
static bool pdf_is_bidi_control(gunichar u)
{
	return u == 0x200e || u == 0x200f || (u >= 0x202a && u <= 0x202e) ||
	       (u >= 0x2066 && u <= 0x2069) || u == 0x061c;
}

/* pdf_clean_name - a display file name: no directory, no control or bidi
 * control characters, valid UTF-8, at most PDF_NAME_MAX bytes; NULL when
 * nothing is left */
static char *pdf_clean_name(const char *raw)
{
	const char *base, *p;
	char *valid, *out;
	size_t n, o = 0;

	if (raw == NULL)
		return NULL;
	base = raw;
	for (p = raw; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	valid = g_utf8_make_valid(base, -1);
	n = strlen(valid);
	out = sg_xmalloc(n + 1);
	for (p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar u = g_utf8_get_char(p);
		size_t clen = (size_t)(g_utf8_next_char(p) - p);

		if (u < 0x20 || (u >= 0x7f && u < 0xa0) || pdf_is_bidi_control(u))
			continue;
		if (o + clen > PDF_NAME_MAX)
			break;
		memcpy(out + o, p, clen);
		o += clen;
	}
	out[o] = '\0';
	g_free(valid);
	g_strstrip(out);
	if (out[0] == '\0' || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* pdf_unique_name - name, or "stem (k).ext" when it is taken (caller frees) */
static char *pdf_unique_name(struct pdf_job *job, char *name)
{
	const char *dot = strrchr(name, '.');
	size_t stem = dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);
	char *cand = sg_xstrdup(name), *key;
	unsigned k;

	for (k = 2;; k++) {
		key = g_utf8_strdown(cand, -1);
		if (!g_hash_table_contains(job->names, key))
			break;
		g_free(key);
		free(cand);
		cand = sg_xasprintf("%.*s (%u)%s", (int)stem, name, k, name + stem);
	}
	g_hash_table_add(job->names, key);
	free(name);
	return cand;
}

/* pdf_item_name - display name of an embedded part (caller frees) */
static char *pdf_item_name(struct pdf_job *job, const struct pdf_item *it,
	const char *mime_type)
{
	char *name = NULL;
	size_t i;

	if (it->kind == PDF_ITEM_MESSAGE) {
		name = pdf_clean_name(g_mime_object_get_content_disposition_parameter(it->obj,
			"filename"));
		if (name == NULL)
			name = sg_xasprintf("message-%u.eml", ++job->nmsg);
	} else {
		name = pdf_clean_name(g_mime_part_get_filename(GMIME_PART(it->obj)));
		if (name == NULL) {
			const char *ext = ".bin";

			for (i = 0; i < sizeof(pdf_ext_table) / sizeof(pdf_ext_table[0]); i++)
				if (strcmp(pdf_ext_table[i].type, mime_type) == 0)
					ext = pdf_ext_table[i].ext;
			name = sg_xasprintf("attachment-%u%s", job->nembeds + 1, ext);
		}
	}
	return pdf_unique_name(job, name);
}

/* ------------------------------------------------------------- decoding */

/* pdf_decoded_stream - a stream of p's content without its transfer
 * encoding, positioned at the start (caller unrefs); NULL = no content */
static GMimeStream *pdf_decoded_stream(GMimeObject *p, bool to_utf8, bool *bad_charset_r)
{
	GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(p));
	GMimeStream *src, *fs;
	GMimeContentEncoding enc;
	GMimeFilter *f;

	if (bad_charset_r != NULL)
		*bad_charset_r = false;
	if (dw == NULL)
		return NULL;
	src = g_mime_data_wrapper_get_stream(dw);
	if (src == NULL)
		return NULL;
	fs = g_mime_stream_filter_new(src);
	enc = g_mime_data_wrapper_get_encoding(dw);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		f = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
		g_object_unref(f);
	}
	if (to_utf8) {
		const char *cs = g_mime_object_get_content_type_parameter(p, "charset");

		if (cs != NULL && g_ascii_strcasecmp(cs, "utf-8") != 0 &&
		    g_ascii_strcasecmp(cs, "utf8") != 0 && g_ascii_strcasecmp(cs, "us-ascii") != 0) {
			f = g_mime_filter_charset_new(cs, "UTF-8");
			if (f != NULL) {
				g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
				g_object_unref(f);
			} else if (bad_charset_r != NULL) {
				*bad_charset_r = true;
			}
		}
	}
	g_mime_stream_reset(fs);
	return fs;
}

/* pdf_open_work - create a new file in the work dir (0600) */
static int pdf_open_work(struct pdf_job *job, const char *name, char **path_r,
	struct sg_error *err)
{
	char *path = sg_xasprintf("%s/%s", job->dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "pdf: create work file");
		free(path);
		return -1;
	}
	*path_r = path;
	return fd;
}

/* pdf_budget - count n decoded bytes against max_size */
static int pdf_budget(struct pdf_job *job, uint64_t n, struct sg_error *err)
{
	job->total += n;
	if (job->opt->max_size > 0 && job->total > job->opt->max_size) {
		sg_error_set(err, SG_E_LIMIT,
			"pdf: attachments larger than the PDF size limit of %llu bytes",
			(unsigned long long)job->opt->max_size);
		return -1;
	}
	return 0;
}

/* pdf_is_compressible - deflate (level 1) shrinks the sample by 5% or more.
 * Already compressed files (JPEG, ZIP, most PDFs) do not, and deflating
 * them again costs most of the time of a PDF with a big attachment. */
static bool pdf_is_compressible(const char *data, size_t len)
{
	uLongf outlen = compressBound((uLong)len);
	Bytef *out = sg_xmalloc(outlen);
	bool yes = false;

	if (len < 64)
		yes = true; /* too small to tell and to matter */
	else if (compress2(out, &outlen, (const Bytef *)data, (uLong)len, 1) == Z_OK)
		yes = outlen < len - len / 20;
	free(out);
	return yes;
}

/* pdf_write_part - decoded content of a leaf part into fd; the first chunk
 * decides *compressible_r */
static int pdf_write_part(struct pdf_job *job, GMimeObject *p, int fd, uint64_t *size_r,
	bool *compressible_r, struct sg_error *err)
{
	GMimeStream *s = pdf_decoded_stream(p, false, NULL);
	char *buf;
	ssize_t n;
	int rc = 0;

	*size_r = 0;
	*compressible_r = true;
	if (s == NULL)
		return 0;
	buf = sg_xmalloc(PDF_CHUNK);
	while ((n = g_mime_stream_read(s, buf, PDF_CHUNK)) > 0) {
		if (*size_r == 0)
			*compressible_r = pdf_is_compressible(buf, (size_t)n);
		if (pdf_budget(job, (uint64_t)n, err) < 0) {
			rc = -1;
			break;
		}
		if (sg_write_all(fd, buf, (size_t)n) < 0) {
			sg_error_set_errno(err, SG_E_IO, errno, "pdf: write work file");
			rc = -1;
			break;
		}
		*size_r += (uint64_t)n;
	}
	if (rc == 0 && n < 0) {
		sg_error_set(err, SG_E_IO, "pdf: reading a part of the message failed");
		rc = -1;
	}
	free(buf);
	g_object_unref(s);
	return rc;
}

/* pdf_write_message - a nested message as it is (.eml) into fd */
static int pdf_write_message(struct pdf_job *job, GMimeObject *p, int fd, uint64_t *size_r,
	struct sg_error *err)
{
	GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(p));
	GMimeStream *out;
	ssize_t n;
	int dfd;

	*size_r = 0;
	if (inner == NULL)
		return 0;
	dfd = dup(fd);
	if (dfd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "pdf: dup");
		return -1;
	}
	out = g_mime_stream_fs_new(dfd); /* owns dfd */
	n = g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, out);
	if (n >= 0 && g_mime_stream_flush(out) < 0)
		n = -1;
	g_object_unref(out);
	if (n < 0) {
		sg_error_set(err, SG_E_IO, "pdf: writing a nested message failed");
		return -1;
	}
	*size_r = (uint64_t)n;
	return pdf_budget(job, (uint64_t)n, err);
}

/* pdf_decode_files - every FILE and MESSAGE item into a work file */
static int pdf_decode_files(struct pdf_job *job, struct sg_error *err)
{
	unsigned i;

	job->embeds = sg_xcalloc(job->nitems + 1, sizeof(*job->embeds));
	for (i = 0; i < job->nitems; i++) {
		struct pdf_item *it = &job->items[i];
		struct pdf_embed *e;
		char fname[32];
		int fd, rc;

		if (it->kind != PDF_ITEM_FILE && it->kind != PDF_ITEM_MESSAGE)
			continue;
		e = &job->embeds[job->nembeds];
		snprintf(fname, sizeof(fname), "f%05u", job->nembeds + 1);
		fd = pdf_open_work(job, fname, &e->path, err);
		if (fd < 0)
			return -1;
		e->mime_type = it->kind == PDF_ITEM_MESSAGE ? sg_xstrdup("message/rfc822") :
			pdf_mime_type(it->obj);
		e->name = pdf_item_name(job, it, e->mime_type);
		it->embed = (int)job->nembeds++;
		e->is_compressible = true; /* a message is mostly text */
		if (it->kind == PDF_ITEM_MESSAGE)
			rc = pdf_write_message(job, it->obj, fd, &e->size, err);
		else
			rc = pdf_write_part(job, it->obj, fd, &e->size, &e->is_compressible, err);
		if (close(fd) < 0 && rc == 0) {
			sg_error_set_errno(err, SG_E_IO, errno, "pdf: close work file");
			rc = -1;
		}
		if (rc < 0) {
			sg_error_prefix(err, "attachment %u: ", job->nembeds);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ rendering */

/* pdf_fmt_size - "0 bytes", "512 bytes", "12.3 KB", "5.0 MB" */
static void pdf_fmt_size(uint64_t n, char *out, size_t outsz)
{
	if (n < 1024)
		snprintf(out, outsz, "%llu bytes", (unsigned long long)n);
	else if (n < 1024 * 1024)
		snprintf(out, outsz, "%.1f KB", (double)n / 1024);
	else
		snprintf(out, outsz, "%.1f MB", (double)n / (1024 * 1024));
}

/* pdf_inner_header - decoded header of a nested message, or NULL */
static const char *pdf_inner_header(GMimeMessage *m, const char *name)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	GMimeHeader *h = hl != NULL ? g_mime_header_list_get_header(hl, name) : NULL;

	return h != NULL ? g_mime_header_get_value(h) : NULL;
}

static const char *const pdf_fields[] = { "From", "To", "Cc", "Date", "Subject" };

/* pdf_draw_headers - the header block of the message (inner == NULL) or of
 * a nested message */
static int pdf_draw_headers(struct pdf_job *job, struct pdf_canvas *c, GMimeMessage *inner,
	struct sg_error *err)
{
	unsigned i;

	for (i = 0; i < sizeof(pdf_fields) / sizeof(pdf_fields[0]); i++) {
		const char *v = inner != NULL ? pdf_inner_header(inner, pdf_fields[i]) :
			mime_msg_header_get(job->msg, pdf_fields[i]);
		char label[16];

		if (v == NULL)
			continue;
		snprintf(label, sizeof(label), "%s:", pdf_fields[i]);
		if (pdf_canvas_field(c, label, v, err) < 0)
			return -1;
	}
	return 0;
}

/* pdf_draw_attachment_list - "Attachments:" name (size), ... */
static int pdf_draw_attachment_list(struct pdf_job *job, struct pdf_canvas *c,
	struct sg_error *err)
{
	GString *g;
	char sz[32];
	unsigned i;
	int rc;

	if (job->nembeds == 0)
		return 0;
	g = g_string_new(NULL);
	for (i = 0; i < job->nembeds && g->len < PDF_FIELD_MAX; i++) {
		pdf_fmt_size(job->embeds[i].size, sz, sizeof(sz));
		g_string_append_printf(g, "%s%s (%s)", i > 0 ? "\n" : "", job->embeds[i].name, sz);
	}
	rc = pdf_canvas_field(c, "Attached:", g->str, err);
	g_string_free(g, TRUE);
	return rc;
}

/* pdf_utf8_feed - pass [data, len) to the HTML parser as valid UTF-8 without
 * control characters; an incomplete character at the end waits in carry */
static int pdf_utf8_feed(struct pdf_html *h, GString *carry, const char *data, size_t len,
	bool last, struct sg_error *err)
{
	size_t n, keep = 0, i, o;
	char *valid;
	int rc;

	g_string_append_len(carry, data, (gssize)len);
	n = carry->len;
	if (!last) {
		/* hold back a trailing lead byte and its continuation bytes */
		for (i = n; i > 0 && n - i < 4; i--) {
			unsigned char c = (unsigned char)carry->str[i - 1];

			if ((c & 0xc0) == 0x80)
				continue;
			if (c >= 0xc0) {
				size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

				if (n - (i - 1) < need)
					keep = n - (i - 1);
			}
			break;
		}
	}
	valid = g_utf8_make_valid(carry->str, (gssize)(n - keep));
	for (i = 0, o = 0; valid[i] != '\0'; i++) {
		unsigned char c = (unsigned char)valid[i];

		if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r')
			valid[o++] = (char)c;
	}
	rc = pdf_html_feed(h, valid, o, err);
	g_free(valid);
	g_string_erase(carry, 0, (gssize)(n - keep));
	return rc;
}

/*
 * format=flowed (RFC 3676): a line ending in a space continues on the next
 * line (soft break), a leading space is stuffing, "-- " stays a hard line.
 * Quoted lines ("> ") join only with lines of the same quote depth, whose
 * marks are then dropped. Streams byte by byte, no line buffer.
 */
struct pdf_flowed {
	bool is_delsp;     /* DelSp=yes: the soft-break space is not text */
	bool at_bol;       /* before the first character of a line */
	bool held_space;   /* a space that may be the soft-break marker */
	bool soft;         /* the previous line ended in a soft break */
	unsigned depth;    /* quote marks of this line */
	unsigned prev_depth;
	unsigned line_len; /* characters after the quote marks */
	char head[3];
};

static void pdf_flowed_init(struct pdf_flowed *f, GMimeObject *p)
{
	const char *delsp = g_mime_object_get_content_type_parameter(p, "delsp");

	memset(f, 0, sizeof(*f));
	f->is_delsp = delsp != NULL && g_ascii_strcasecmp(delsp, "yes") == 0;
	f->at_bol = true;
}

static bool pdf_is_flowed(GMimeObject *p)
{
	const char *fmt = g_mime_object_get_content_type_parameter(p, "format");

	return fmt != NULL && g_ascii_strcasecmp(fmt, "flowed") == 0;
}

/* pdf_flowed_write - unflow [data, len) onto the canvas */
static int pdf_flowed_write(struct pdf_flowed *f, struct pdf_canvas *c, const char *data,
	size_t len, struct sg_error *err)
{
	/* every output byte stands for an input byte of this or the previous
	 * chunk (held quote marks, at most 64, and a held space) */
	char *out = sg_xmalloc(len + 160);
	size_t i, o = 0;
	unsigned k;
	int rc;

	for (i = 0; i < len; i++) {
		char ch = data[i];

		if (ch == '\r')
			continue;
		if (f->at_bol && ch == '>' && f->depth < 64) {
			f->depth++;
			continue;
		}
		if (ch == '\n') {
			bool sig = f->line_len == 3 && memcmp(f->head, "-- ", 3) == 0;

			if (f->at_bol && f->depth > 0 && !(f->soft && f->depth == f->prev_depth))
				for (k = 0; k < f->depth; k++)
					out[o++] = '>';
			f->soft = f->held_space && !sig;
			if (f->held_space && (!f->soft || !f->is_delsp))
				out[o++] = ' ';
			if (!f->soft)
				out[o++] = '\n';
			f->prev_depth = f->depth;
			f->held_space = false;
			f->at_bol = true;
			f->depth = 0;
			f->line_len = 0;
			continue;
		}
		if (f->at_bol) {
			bool join = f->soft && f->depth == f->prev_depth;

			f->at_bol = false;
			if (!join) {
				if (f->soft)
					out[o++] = '\n'; /* quote depth changed: no join */
				for (k = 0; k < f->depth; k++)
					out[o++] = '>';
			}
			if (ch == ' ' && (f->depth == 0 || join))
				continue; /* space-stuffing */
		}
		if (f->line_len < 3)
			f->head[f->line_len] = ch;
		f->line_len++;
		if (ch == ' ') {
			if (f->held_space)
				out[o++] = ' ';
			f->held_space = true;
			continue;
		}
		if (f->held_space)
			out[o++] = ' ';
		f->held_space = false;
		out[o++] = ch;
	}
	rc = pdf_canvas_write(c, out, o, err);
	free(out);
	return rc;
}

/* pdf_draw_body - one inline text/plain or text/html part */
static int pdf_draw_body(struct pdf_canvas *c, const struct pdf_item *it,
	struct sg_error *err)
{
	bool bad_charset = false;
	GMimeStream *s = pdf_decoded_stream(it->obj, true, &bad_charset);
	struct pdf_html *h = NULL;
	GString *carry = NULL;
	struct pdf_flowed fl;
	bool flowed = it->kind == PDF_ITEM_TEXT && pdf_is_flowed(it->obj);
	char *buf = NULL;
	ssize_t n = 0;
	int rc = -1;

	if (s == NULL)
		return 0;
	pdf_flowed_init(&fl, it->obj);
	if (bad_charset) {
		pdf_canvas_set_style(c, PDF_STYLE_SMALL);
		if (pdf_canvas_write(c, "[unknown character set: shown as UTF-8]\n", 41, err) < 0)
			goto out;
		pdf_canvas_set_style(c, PDF_STYLE_BODY);
	}
	if (it->kind == PDF_ITEM_HTML) {
		h = pdf_html_new(c);
		if (h == NULL) {
			sg_error_set(err, SG_E_NOMEM, "pdf: cannot create the HTML parser");
			goto out;
		}
		carry = g_string_new(NULL);
	}
	buf = sg_xmalloc(PDF_CHUNK);
	while ((n = g_mime_stream_read(s, buf, PDF_CHUNK)) > 0) {
		if (h != NULL)
			rc = pdf_utf8_feed(h, carry, buf, (size_t)n, false, err);
		else if (flowed)
			rc = pdf_flowed_write(&fl, c, buf, (size_t)n, err);
		else
			rc = pdf_canvas_write(c, buf, (size_t)n, err);
		if (rc < 0)
			goto out;
		rc = -1;
	}
	if (n < 0) {
		sg_error_set(err, SG_E_IO, "pdf: reading a body part failed");
		goto out;
	}
	if (h != NULL && pdf_utf8_feed(h, carry, "", 0, true, err) < 0)
		goto out;
	if (h != NULL && pdf_html_finish(&h, err) < 0)
		goto out;
	if (pdf_canvas_end_para(c, err) < 0)
		goto out;
	rc = 0;
out:
	if (h != NULL)
		pdf_html_finish(&h, NULL);
	if (carry != NULL)
		g_string_free(carry, TRUE);
	free(buf);
	g_object_unref(s);
	return rc;
}

/* pdf_render - the whole visible document into fd */
static int pdf_render(struct pdf_job *job, int fd, unsigned *pages_r, struct sg_error *err)
{
	unsigned max_pages = job->opt->max_pages > 0 ? job->opt->max_pages :
		PDF_DEFAULT_MAX_PAGES;
	struct pdf_canvas *c;
	unsigned i, level = 0;
	bool body_started = false;

	c = pdf_canvas_open(fd, max_pages, mime_msg_header_get(job->msg, "Subject"), err);
	if (c == NULL)
		return -1;
	if (job->opt->reply_link != NULL &&
	    (pdf_canvas_link(c, "Reply:", job->opt->reply_text != NULL ? job->opt->reply_text :
	     "Reply securely to this message", job->opt->reply_link, err) < 0))
		goto fail;
	if (job->opt->reply_link != NULL)
		pdf_canvas_space(c);
	if (pdf_draw_headers(job, c, NULL, err) < 0 || pdf_draw_attachment_list(job, c, err) < 0 ||
	    pdf_canvas_rule(c, err) < 0)
		goto fail;
	for (i = 0; i < job->nitems; i++) {
		const struct pdf_item *it = &job->items[i];

		if (it->level < level) {
			/* back in an outer message after a nested one */
			if (pdf_canvas_rule(c, err) < 0)
				goto fail;
		}
		level = it->level;
		if (it->kind == PDF_ITEM_MESSAGE && it->render) {
			if (pdf_canvas_rule(c, err) < 0)
				goto fail;
			pdf_canvas_set_style(c, PDF_STYLE_SMALL);
			if (pdf_canvas_write(c, "Attached message\n", 17, err) < 0)
				goto fail;
			pdf_canvas_set_style(c, PDF_STYLE_BODY);
			if (pdf_draw_headers(job, c, g_mime_message_part_get_message(
			    GMIME_MESSAGE_PART(it->obj)), err) < 0)
				goto fail;
			pdf_canvas_space(c);
			level = it->level + 1;
		} else if (it->kind == PDF_ITEM_TEXT || it->kind == PDF_ITEM_HTML) {
			if (body_started)
				pdf_canvas_space(c);
			if (pdf_draw_body(c, it, err) < 0)
				goto fail;
			body_started = true;
		}
	}
	*pages_r = pdf_canvas_pages(c);
	return pdf_canvas_close(&c, err);
fail:
	pdf_canvas_close(&c, NULL);
	return -1;
}

/* ----------------------------------------------------------------- main */

/* pdf_check_password - see pdf_options.user_password */
static int pdf_check_password(const char *pw, enum pdf_cipher cipher, struct sg_error *err)
{
	size_t n = pw != NULL ? strlen(pw) : 0, i;

	if (cipher != PDF_CIPHER_AES256 && cipher != PDF_CIPHER_AES128) {
		sg_error_set(err, SG_E_INVAL, "pdf: unknown cipher %d", (int)cipher);
		return -1;
	}
	if (n == 0 || n > (cipher == PDF_CIPHER_AES128 ? 32 : 127) ||
	    !g_utf8_validate(pw, (gssize)n, NULL)) {
		sg_error_set(err, SG_E_INVAL, "pdf: the user password is empty, too long or not UTF-8");
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pw[i];

		if (c < 0x20 || c == 0x7f || (cipher == PDF_CIPHER_AES128 && c >= 0x80)) {
			sg_error_set(err, SG_E_INVAL, "pdf: the user password has a character "
				"not allowed for this cipher");
			return -1;
		}
	}
	return 0;
}

/* pdf_check_link - a reply link is NULL or an http(s) URL of printable
 * ASCII (what pdf_reply_link_make produces) */
static int pdf_check_link(const char *url, struct sg_error *err)
{
	const char *p;

	if (url == NULL)
		return 0;
	if (!sg_str_has_prefix_ci(url, "https://") && !sg_str_has_prefix_ci(url, "http://")) {
		sg_error_set(err, SG_E_INVAL, "pdf: the reply link is not an http(s) URL");
		return -1;
	}
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			sg_error_set(err, SG_E_INVAL, "pdf: the reply link has a character "
				"not allowed in a URL");
			return -1;
		}
	}
	return 0;
}

/* pdf_copy_out - the finished PDF into out_fd (after the size check) */
static int pdf_copy_out(struct pdf_job *job, const char *path, int out_fd, uint64_t *size_r,
	struct sg_error *err)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "pdf: open the finished PDF");
		goto out;
	}
	if (job->opt->max_size > 0 && (uint64_t)st.st_size > job->opt->max_size) {
		sg_error_set(err, SG_E_LIMIT, "pdf: the PDF (%llu bytes) is over the limit of %llu",
			(unsigned long long)st.st_size, (unsigned long long)job->opt->max_size);
		goto out;
	}
	buf = sg_xmalloc(PDF_CHUNK);
	*size_r = 0;
	while ((n = read(fd, buf, PDF_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sg_error_set_errno(err, SG_E_IO, errno, "pdf: read the finished PDF");
			goto out;
		}
		if (sg_write_all(out_fd, buf, (size_t)n) < 0) {
			sg_error_set_errno(err, SG_E_IO, errno, "pdf: write the PDF");
			goto out;
		}
		*size_r += (uint64_t)n;
	}
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* pdf_qpdf_flags_for - deflate the embedded files when at least a quarter
 * of their bytes is compressible (qpdf decides for all files at once) */
static unsigned pdf_qpdf_flags_for(const struct pdf_job *job)
{
	uint64_t all = 0, comp = 0;
	unsigned i;

	for (i = 0; i < job->nembeds; i++) {
		all += job->embeds[i].size;
		if (job->embeds[i].is_compressible)
			comp += job->embeds[i].size;
	}
	return comp * 4 >= all ? PDF_QPDF_COMPRESS : 0;
}

/* pdf_job_cleanup - remove the work files and free the job */
static void pdf_job_cleanup(struct pdf_job *job)
{
	unsigned i;
	char *p;

	for (i = 0; i < job->nembeds; i++) {
		if (job->embeds[i].path != NULL)
			unlink(job->embeds[i].path);
		free(job->embeds[i].path);
		free(job->embeds[i].name);
		free(job->embeds[i].mime_type);
	}
	free(job->embeds);
	free(job->items);
	if (job->have_dir) {
		p = sg_xasprintf("%s/page.pdf", job->dir);
		unlink(p);
		free(p);
		p = sg_xasprintf("%s/out.pdf", job->dir);
		unlink(p);
		free(p);
		if (rmdir(job->dir) < 0)
			sg_log_mail(SG_LOG_WARN, job->opt->mail_id, "pdf: cannot remove %s: %s",
				job->dir, strerror(errno));
	}
	if (job->info != NULL)
		g_hash_table_destroy(job->info);
	if (job->names != NULL)
		g_hash_table_destroy(job->names);
}

int pdf_message_write(struct mime_msg *m, const struct pdf_options *opt, int out_fd,
	struct pdf_result *res_r, struct sg_error *err)
{
	struct pdf_job job;
	struct pdf_result res;
	const char *base;
	char *page_path = NULL, *out_path = NULL;
	int fd = -1, rc = -1;

	memset(&job, 0, sizeof(job));
	memset(&res, 0, sizeof(res));
	job.opt = opt;
	job.msg = m;
	if (m == NULL || opt == NULL || out_fd < 0) {
		sg_error_set(err, SG_E_INVAL, "pdf: no message, options or output");
		return -1;
	}
	if (pdf_check_password(opt->user_password, opt->cipher, err) < 0 ||
	    pdf_check_link(opt->reply_link, err) < 0)
		return -1;
	base = opt->tmp_dir != NULL ? opt->tmp_dir : getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if ((size_t)snprintf(job.dir, sizeof(job.dir), "%s/sg-pdf-XXXXXX", base) >=
	    sizeof(job.dir) - 16) {
		sg_error_set(err, SG_E_INVAL, "pdf: work directory path too long");
		return -1;
	}
	if (mkdtemp(job.dir) == NULL) {
		sg_error_set_errno(err, SG_E_IO, errno, "pdf: create a work directory in %s", base);
		return -1;
	}
	job.have_dir = true;
	job.info = g_hash_table_new(g_direct_hash, g_direct_equal);
	job.names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (mime_msg_walk(m, pdf_walk_fn, &job, err) < 0 || pdf_decode_files(&job, err) < 0)
		goto out;
	fd = pdf_open_work(&job, "page.pdf", &page_path, err);
	if (fd < 0 || pdf_render(&job, fd, &res.pages, err) < 0)
		goto out;
	if (close(fd) < 0) {
		fd = -1;
		sg_error_set_errno(err, SG_E_IO, errno, "pdf: close the page PDF");
		goto out;
	}
	fd = -1;
	out_path = sg_xasprintf("%s/out.pdf", job.dir);
	if (pdf_qpdf_run(page_path, out_path, job.embeds, job.nembeds, opt->user_password,
	    opt->cipher, pdf_qpdf_flags_for(&job), err) < 0)
		goto out;
	if (pdf_copy_out(&job, out_path, out_fd, &res.size, err) < 0)
		goto out;
	res.attachments = job.nembeds;
	sg_log_mail(SG_LOG_DEBUG, opt->mail_id,
		"pdf: pages=%u, attachments=%u, size=%llu, cipher=%s", res.pages,
		res.attachments, (unsigned long long)res.size,
		opt->cipher == PDF_CIPHER_AES128 ? "aes128" : "aes256");
	if (res_r != NULL)
		*res_r = res;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(page_path);
	free(out_path);
	pdf_job_cleanup(&job);
	return rc;
}
