/*
 * pdf_int.h - shared inside src/pdf: the page canvas (cairo + pango), the
 * HTML-to-text converter and the qpdf job. Not for other modules.
 */
#ifndef SG_PDF_INT_H
#define SG_PDF_INT_H

#include "pdf/pdf.h"

/* Paragraph styles of the canvas. */
enum pdf_style {
	PDF_STYLE_BODY = 0,  /* proportional text, wrapped */
	PDF_STYLE_MONO,      /* monospace (HTML <pre>) */
	PDF_STYLE_HEADING,   /* bold, larger */
	PDF_STYLE_SMALL,     /* smaller grey text (notes) */
};

/* A paragraph longer than this many bytes is cut into pieces (on a UTF-8
 * boundary) so that pango never lays out unbounded text. */
#define PDF_PARA_MAX 4096
/* Header values longer than this are cut with " …". */
#define PDF_FIELD_MAX 8192
#define PDF_INDENT_MAX 8

struct pdf_canvas;

/*
 * pdf_canvas_open - a new A4 PDF written to fd while pages are finished
 * (cairo PDF stream surface). title (may be NULL) becomes the document title.
 * NULL on error.
 */
struct pdf_canvas *pdf_canvas_open(int fd, unsigned max_pages, const char *title,
	struct sg_error *err);
/* pdf_canvas_close - finish the PDF (fonts, trailer) and free the canvas.
 * 0 or -1 (a write failed, or an earlier drawing error). NULL-safe. */
int pdf_canvas_close(struct pdf_canvas **cp, struct sg_error *err);
/* pdf_canvas_pages - pages started so far. */
unsigned pdf_canvas_pages(const struct pdf_canvas *c);

/* pdf_canvas_field - one header line: bold label, value wrapped beside it. */
int pdf_canvas_field(struct pdf_canvas *c, const char *label, const char *value,
	struct sg_error *err);
/* pdf_canvas_link - one line "label text" where text is a link to uri. */
int pdf_canvas_link(struct pdf_canvas *c, const char *label, const char *text,
	const char *uri, struct sg_error *err);
/* pdf_canvas_rule - a horizontal line with some space around it. */
int pdf_canvas_rule(struct pdf_canvas *c, struct sg_error *err);
/* pdf_canvas_space - vertical space of about half a line. */
void pdf_canvas_space(struct pdf_canvas *c);

/*
 * Text stream: pdf_canvas_write appends UTF-8 (possibly invalid) bytes; each
 * '\n' ends a paragraph, which is drawn with the style and indent current at
 * that moment. CR and other control characters except TAB are dropped,
 * invalid UTF-8 becomes U+FFFD. pdf_canvas_end_para ends a pending partial
 * paragraph (no-op when none). 0 or -1 (SG_E_LIMIT over max_pages, cairo
 * errors).
 */
int pdf_canvas_write(struct pdf_canvas *c, const char *data, size_t len,
	struct sg_error *err);
int pdf_canvas_end_para(struct pdf_canvas *c, struct sg_error *err);
/* pdf_canvas_set_style / _indent - for the following paragraphs. */
void pdf_canvas_set_style(struct pdf_canvas *c, enum pdf_style style);
void pdf_canvas_set_indent(struct pdf_canvas *c, unsigned level);
/* pdf_canvas_line_is_empty - true when no text is pending in the paragraph. */
bool pdf_canvas_line_is_empty(const struct pdf_canvas *c);

/*
 * HTML to text (libxml2 SAX push parser). pdf_html_new binds a converter to a
 * canvas; pdf_html_feed passes UTF-8 HTML in chunks of any size;
 * pdf_html_finish flushes and frees. Never fetches anything.
 */
struct pdf_html;
struct pdf_html *pdf_html_new(struct pdf_canvas *c);
int pdf_html_feed(struct pdf_html *h, const char *data, size_t len, struct sg_error *err);
int pdf_html_finish(struct pdf_html **hp, struct sg_error *err);

/* One embedded file for the qpdf job. */
struct pdf_embed {
	char *path;       /* work file with the decoded content */
	char *name;       /* display file name (UTF-8) */
	char *mime_type;  /* "type/subtype" */
	uint64_t size;
	bool is_compressible;  /* a sample shrinks with deflate */
};

enum pdf_qpdf_flags {
	PDF_QPDF_COMPRESS = 1 << 0,  /* deflate the embedded files */
};

/*
 * pdf_qpdf_run - read in_path (the rendered PDF), embed files, encrypt with
 * user_pw (owner password random) and write out_path. 0 or -1.
 */
int pdf_qpdf_run(const char *in_path, const char *out_path, const struct pdf_embed *files,
	unsigned nfiles, const char *user_pw, enum pdf_cipher cipher, unsigned flags,
	struct sg_error *err);

#endif
