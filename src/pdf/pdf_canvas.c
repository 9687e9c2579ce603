/*
 * pdf_canvas.c - the page canvas: lays out UTF-8 text of any script with
 * pango and draws it into a cairo PDF surface that streams finished pages to
 * an fd (F-PDF-1).
 *
 * Called by pdf_message.c and pdf_html.c in the MPA worker thread that
 * renders one message; a canvas belongs to one thread. pango's default font
 * map is per thread, fontconfig picks a fallback font for each character
 * (CJK, Arabic, Hebrew...) and pango applies the Unicode bidi algorithm per
 * paragraph, so right-to-left paragraphs come out right-aligned.
 *
 * Invariants: pango never sees more than PDF_PARA_MAX bytes at once, never
 * invalid UTF-8 and never control characters; pages are bounded by
 * max_pages; memory does not grow with the text (one paragraph at a time,
 * cairo writes each page when it is finished).
 */
#include <errno.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <pango/pangocairo.h>

#include "pdf/pdf_int.h"

#define PAGE_W 595.28    /* A4 in points */
#define PAGE_H 841.89
#define MARGIN_X 56.0
#define MARGIN_TOP 56.0
#define MARGIN_BOTTOM 60.0
#define LABEL_W 80.0     /* header label column */
#define INDENT_W 18.0

struct pdf_canvas {
	int fd;
	int write_errno;
	cairo_surface_t *surface;
	cairo_t *cr;
	PangoLayout *layout;
	PangoLayout *footer;            /* own layout: drawn while layout is iterated */
	PangoFontDescription *font[4];  /* by enum pdf_style */
	PangoFontDescription *bold;
	double y;                       /* next free y on the current page */
	unsigned pages;
	unsigned max_pages;
	enum pdf_style style;
	unsigned indent;
	bool failed;
	struct sg_error err;            /* sticky first error */
	size_t plen;
	char para[PDF_PARA_MAX + 8];
};

static const char *const pdf_font_names[] = {
	[PDF_STYLE_BODY] = "Sans 10",
	[PDF_STYLE_MONO] = "Monospace 9",
	[PDF_STYLE_HEADING] = "Sans Bold 12",
	[PDF_STYLE_SMALL] = "Sans 8",
};

/* pdf_canvas_write_fn - cairo stream callback: everything to the fd */
static cairo_status_t pdf_canvas_write_fn(void *closure, const unsigned char *data,
	unsigned int length)
{
	struct pdf_canvas *c = closure;

	if (c->write_errno != 0)
		return CAIRO_STATUS_WRITE_ERROR;
	if (sg_write_all(c->fd, data, length) < 0) {
		c->write_errno = errno != 0 ? errno : EIO;
		return CAIRO_STATUS_WRITE_ERROR;
	}
	return CAIRO_STATUS_SUCCESS;
}

/* pdf_canvas_fail - remember the first error; always returns -1 */
static int pdf_canvas_fail(struct pdf_canvas *c, struct sg_error *err)
{
	if (!c->failed) {
		c->failed = true;
		if (err != NULL)
			c->err = *err;
	}
	if (err != NULL && err != &c->err)
		*err = c->err;
	return -1;
}

/* pdf_canvas_check - cairo's sticky status as our error */
static int pdf_canvas_check(struct pdf_canvas *c, struct sg_error *err)
{
	cairo_status_t st;

	if (c->failed) {
		if (err != NULL)
			*err = c->err;
		return -1;
	}
	st = cairo_status(c->cr);
	if (st == CAIRO_STATUS_SUCCESS)
		st = cairo_surface_status(c->surface);
	if (st == CAIRO_STATUS_SUCCESS)
		return 0;
	if (c->write_errno != 0)
		sg_error_set_errno(err, SG_E_IO, c->write_errno, "pdf: writing the page PDF");
	else
		sg_error_set(err, SG_E_INTERNAL, "pdf: cairo: %s", cairo_status_to_string(st));
	return pdf_canvas_fail(c, err);
}

/* pdf_canvas_footer - the page number at the bottom of the current page */
static void pdf_canvas_footer(struct pdf_canvas *c)
{
	char num[32];
	int w, h;

	snprintf(num, sizeof(num), "%u", c->pages);
	pango_layout_set_text(c->footer, num, -1);
	pango_layout_get_size(c->footer, &w, &h);
	cairo_set_source_rgb(c->cr, 0.4, 0.4, 0.4);
	cairo_move_to(c->cr, (PAGE_W - (double)w / PANGO_SCALE) / 2,
		PAGE_H - MARGIN_BOTTOM / 2 - (double)h / PANGO_SCALE / 2);
	pango_cairo_show_layout(c->cr, c->footer);
	cairo_set_source_rgb(c->cr, 0, 0, 0);
}

/* pdf_canvas_new_page - finish the current page (if any), start the next */
static int pdf_canvas_new_page(struct pdf_canvas *c, struct sg_error *err)
{
	if (c->failed)
		return pdf_canvas_check(c, err);
	if (c->pages >= c->max_pages) {
		sg_error_set(err, SG_E_LIMIT, "pdf: more than %u pages", c->max_pages);
		return pdf_canvas_fail(c, err);
	}
	if (c->pages > 0)
		cairo_show_page(c->cr);
	c->pages++;
	c->y = MARGIN_TOP;
	pdf_canvas_footer(c);
	return pdf_canvas_check(c, err);
}

static int pdf_canvas_ensure_page(struct pdf_canvas *c, struct sg_error *err)
{
	if (c->pages == 0)
		return pdf_canvas_new_page(c, err);
	return pdf_canvas_check(c, err);
}

struct pdf_canvas *pdf_canvas_open(int fd, unsigned max_pages, const char *title,
	struct sg_error *err)
{
	struct pdf_canvas *c = sg_xcalloc(1, sizeof(*c));
	unsigned i;

	c->fd = fd;
	c->max_pages = max_pages;
	c->surface = cairo_pdf_surface_create_for_stream(pdf_canvas_write_fn, c, PAGE_W,
		PAGE_H);
	c->cr = cairo_create(c->surface);
	if (cairo_surface_status(c->surface) != CAIRO_STATUS_SUCCESS ||
	    cairo_status(c->cr) != CAIRO_STATUS_SUCCESS) {
		sg_error_set(err, SG_E_INTERNAL, "pdf: cannot create the cairo PDF surface");
		cairo_destroy(c->cr);
		cairo_surface_destroy(c->surface);
		free(c);
		return NULL;
	}
	cairo_pdf_surface_set_metadata(c->surface, CAIRO_PDF_METADATA_CREATOR, "Sealgate");
	if (title != NULL && title[0] != '\0' && g_utf8_validate(title, -1, NULL))
		cairo_pdf_surface_set_metadata(c->surface, CAIRO_PDF_METADATA_TITLE, title);
	c->layout = pango_cairo_create_layout(c->cr);
	for (i = 0; i < 4; i++)
		c->font[i] = pango_font_description_from_string(pdf_font_names[i]);
	c->bold = pango_font_description_from_string("Sans Bold 10");
	c->footer = pango_cairo_create_layout(c->cr);
	pango_layout_set_font_description(c->footer, c->font[PDF_STYLE_SMALL]);
	pango_layout_set_wrap(c->layout, PANGO_WRAP_WORD_CHAR);
	pango_layout_set_auto_dir(c->layout, TRUE);
	cairo_set_source_rgb(c->cr, 0, 0, 0);
	return c;
}

unsigned pdf_canvas_pages(const struct pdf_canvas *c)
{
	return c->pages;
}

/* pdf_canvas_destroy - free everything (the surface is finished first) */
static void pdf_canvas_destroy(struct pdf_canvas *c)
{
	unsigned i;

	g_object_unref(c->layout);
	g_object_unref(c->footer);
	for (i = 0; i < 4; i++)
		pango_font_description_free(c->font[i]);
	pango_font_description_free(c->bold);
	cairo_destroy(c->cr);
	cairo_surface_finish(c->surface);
	cairo_surface_destroy(c->surface);
	free(c);
}

int pdf_canvas_close(struct pdf_canvas **cp, struct sg_error *err)
{
	struct pdf_canvas *c = *cp;
	int rc = 0;

	if (c == NULL)
		return 0;
	*cp = NULL;
	if (pdf_canvas_end_para(c, err) < 0 || pdf_canvas_ensure_page(c, err) < 0) {
		pdf_canvas_destroy(c);
		return -1;
	}
	cairo_show_page(c->cr);
	cairo_surface_finish(c->surface);
	rc = pdf_canvas_check(c, err);
	pdf_canvas_destroy(c);
	return rc;
}

/*
 * pdf_canvas_draw_layout - draw the current layout at x line by line,
 * breaking pages between lines; advances y.
 */
static int pdf_canvas_draw_layout(struct pdf_canvas *c, double x, struct sg_error *err)
{
	PangoLayoutIter *it;
	double shift, top, h;
	int rc = 0;

	if (pdf_canvas_ensure_page(c, err) < 0)
		return -1;
	shift = c->y;
	it = pango_layout_get_iter(c->layout);
	do {
		PangoRectangle logical;
		PangoLayoutLine *line = pango_layout_iter_get_line_readonly(it);

		pango_layout_iter_get_line_extents(it, NULL, &logical);
		top = shift + (double)logical.y / PANGO_SCALE;
		h = (double)logical.height / PANGO_SCALE;
		if (top + h > PAGE_H - MARGIN_BOTTOM && top > MARGIN_TOP + 0.5) {
			if (pdf_canvas_new_page(c, err) < 0) {
				rc = -1;
				break;
			}
			shift = MARGIN_TOP - (double)logical.y / PANGO_SCALE;
			top = MARGIN_TOP;
		}
		cairo_move_to(c->cr, x + (double)logical.x / PANGO_SCALE,
			shift + (double)pango_layout_iter_get_baseline(it) / PANGO_SCALE);
		pango_cairo_show_layout_line(c->cr, line);
		c->y = top + h;
	} while (pango_layout_iter_next_line(it));
	pango_layout_iter_free(it);
	if (rc < 0)
		return -1;
	return pdf_canvas_check(c, err);
}

/* pdf_canvas_set_layout - font, width and (valid UTF-8) text of the layout */
static void pdf_canvas_set_layout(struct pdf_canvas *c, const PangoFontDescription *font,
	double width, const char *text, int len)
{
	pango_layout_set_font_description(c->layout, font);
	pango_layout_set_width(c->layout, width < 0 ? -1 : (int)(width * PANGO_SCALE));
	pango_layout_set_text(c->layout, text, len);
}

/* pdf_clean_utf8 - copy text without control characters (but LF), valid UTF-8, at
 * most max bytes (cut on a character boundary, marked with " …") */
static char *pdf_clean_utf8(const char *s, size_t max)
{
	char *valid = g_utf8_make_valid(s, -1);
	size_t n = strlen(valid), i, o = 0;
	char *out = sg_xmalloc((n < max ? n : max) + 8);
	bool cut = false;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)valid[i];

		if (o >= max && (ch & 0xc0) != 0x80) {
			cut = true;
			break;
		}
		if (o >= max)
			continue;
		if (ch == '\n')
			out[o++] = '\n'; /* a line break the caller asked for */
		else if (ch == '\t')
			out[o++] = ' ';
		else if (ch >= 0x20 && ch != 0x7f)
			out[o++] = (char)ch;
	}
	/* the cut may have left a partial character: drop it */
	while (o > 0 && (unsigned char)out[o - 1] >= 0x80 &&
	       !g_utf8_validate(out, (gssize)o, NULL))
		o--;
	if (cut) {
		memcpy(out + o, " \xe2\x80\xa6", 4);
		o += 4;
	}
	out[o] = '\0';
	g_free(valid);
	return out;
}

int pdf_canvas_field(struct pdf_canvas *c, const char *label, const char *value,
	struct sg_error *err)
{
	char *v = pdf_clean_utf8(value != NULL ? value : "", PDF_FIELD_MAX);
	PangoLayoutIter *it;
	PangoRectangle logical;
	int rc = -1;

	if (pdf_canvas_end_para(c, err) < 0 || pdf_canvas_ensure_page(c, err) < 0)
		goto out;
	/* the label goes on the page of the value's first line */
	pdf_canvas_set_layout(c, c->font[PDF_STYLE_BODY], PAGE_W - 2 * MARGIN_X - LABEL_W,
		v, -1);
	it = pango_layout_get_iter(c->layout);
	pango_layout_iter_get_line_extents(it, NULL, &logical);
	pango_layout_iter_free(it);
	if (c->y + (double)logical.height / PANGO_SCALE > PAGE_H - MARGIN_BOTTOM &&
	    pdf_canvas_new_page(c, err) < 0)
		goto out;
	pdf_canvas_set_layout(c, c->bold, -1, label, -1);
	pango_layout_set_auto_dir(c->layout, FALSE);
	cairo_move_to(c->cr, MARGIN_X, c->y);
	pango_cairo_show_layout(c->cr, c->layout);
	pango_layout_set_auto_dir(c->layout, TRUE);
	pdf_canvas_set_layout(c, c->font[PDF_STYLE_BODY], PAGE_W - 2 * MARGIN_X - LABEL_W,
		v, -1);
	rc = pdf_canvas_draw_layout(c, MARGIN_X + LABEL_W, err);
out:
	free(v);
	return rc;
}

/* pdf_cairo_attr_quote - append s to the cairo tag attribute value */
static void pdf_cairo_attr_quote(GString *g, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\'' || *s == '\\')
			g_string_append_c(g, '\\');
		g_string_append_c(g, *s);
	}
}

int pdf_canvas_link(struct pdf_canvas *c, const char *label, const char *text,
	const char *uri, struct sg_error *err)
{
	GString *attr = g_string_new("uri='");
	char *t = pdf_clean_utf8(text, 1024);
	int lw, lh, rc = -1;

	pdf_cairo_attr_quote(attr, uri);
	g_string_append_c(attr, '\'');
	if (pdf_canvas_end_para(c, err) < 0 || pdf_canvas_ensure_page(c, err) < 0)
		goto out;
	pdf_canvas_set_layout(c, c->bold, PAGE_W - 2 * MARGIN_X, label, -1);
	pango_layout_get_size(c->layout, &lw, &lh);
	if (c->y + (double)lh / PANGO_SCALE > PAGE_H - MARGIN_BOTTOM &&
	    pdf_canvas_new_page(c, err) < 0)
		goto out;
	cairo_move_to(c->cr, MARGIN_X, c->y);
	pango_cairo_show_layout(c->cr, c->layout);
	pdf_canvas_set_layout(c, c->font[PDF_STYLE_BODY],
		PAGE_W - 2 * MARGIN_X - (double)lw / PANGO_SCALE - 6, t, -1);
	cairo_set_source_rgb(c->cr, 0.0, 0.2, 0.7);
	cairo_tag_begin(c->cr, CAIRO_TAG_LINK, attr->str);
	cairo_move_to(c->cr, MARGIN_X + (double)lw / PANGO_SCALE + 6, c->y);
	pango_cairo_show_layout(c->cr, c->layout);
	cairo_tag_end(c->cr, CAIRO_TAG_LINK);
	cairo_set_source_rgb(c->cr, 0, 0, 0);
	c->y += (double)lh / PANGO_SCALE;
	rc = pdf_canvas_check(c, err);
out:
	g_string_free(attr, TRUE);
	free(t);
	return rc;
}

int pdf_canvas_rule(struct pdf_canvas *c, struct sg_error *err)
{
	if (pdf_canvas_end_para(c, err) < 0 || pdf_canvas_ensure_page(c, err) < 0)
		return -1;
	if (c->y + 12 > PAGE_H - MARGIN_BOTTOM)
		return pdf_canvas_new_page(c, err);
	c->y += 5;
	cairo_set_line_width(c->cr, 0.6);
	cairo_set_source_rgb(c->cr, 0.5, 0.5, 0.5);
	cairo_move_to(c->cr, MARGIN_X, c->y);
	cairo_line_to(c->cr, PAGE_W - MARGIN_X, c->y);
	cairo_stroke(c->cr);
	cairo_set_source_rgb(c->cr, 0, 0, 0);
	c->y += 7;
	return pdf_canvas_check(c, err);
}

void pdf_canvas_space(struct pdf_canvas *c)
{
	if (c->pages > 0 && c->y > MARGIN_TOP)
		c->y += 6;
}

void pdf_canvas_set_style(struct pdf_canvas *c, enum pdf_style style)
{
	if ((unsigned)style < 4)
		c->style = style;
}

void pdf_canvas_set_indent(struct pdf_canvas *c, unsigned level)
{
	c->indent = level > PDF_INDENT_MAX ? PDF_INDENT_MAX : level;
}

bool pdf_canvas_line_is_empty(const struct pdf_canvas *c)
{
	return c->plen == 0;
}

/* pdf_canvas_flush - draw para[0..n) as one paragraph, keep the rest */
static int pdf_canvas_flush(struct pdf_canvas *c, size_t n, struct sg_error *err)
{
	const char *text = c->para;
	char *fixed = NULL;
	double indent = INDENT_W * c->indent;
	int rc;

	if (!g_utf8_validate(c->para, (gssize)n, NULL)) {
		fixed = g_utf8_make_valid(c->para, (gssize)n);
		text = fixed;
	}
	pdf_canvas_set_layout(c, c->font[c->style], PAGE_W - 2 * MARGIN_X - indent, text,
		fixed != NULL ? -1 : (int)n);
	rc = pdf_canvas_draw_layout(c, MARGIN_X + indent, err);
	g_free(fixed);
	memmove(c->para, c->para + n, c->plen - n);
	c->plen -= n;
	return rc;
}

int pdf_canvas_end_para(struct pdf_canvas *c, struct sg_error *err)
{
	if (c->failed)
		return pdf_canvas_check(c, err);
	if (c->plen == 0)
		return 0;
	return pdf_canvas_flush(c, c->plen, err);
}

int pdf_canvas_write(struct pdf_canvas *c, const char *data, size_t len,
	struct sg_error *err)
{
	size_t i, cut;

	if (c->failed)
		return pdf_canvas_check(c, err);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)data[i];

		if (ch == '\n') {
			/* an empty paragraph is an empty line */
			if (c->plen == 0) {
				c->para[0] = ' ';
				c->plen = 1;
			}
			if (pdf_canvas_flush(c, c->plen, err) < 0)
				return -1;
			continue;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			continue;
		c->para[c->plen++] = (char)ch;
		if (c->plen < PDF_PARA_MAX)
			continue;
		/* a very long line: draw up to the last character boundary */
		cut = c->plen;
		while (cut > c->plen - 4 && ((unsigned char)c->para[cut - 1] & 0xc0) == 0x80)
			cut--;
		if (cut > 0 && (unsigned char)c->para[cut - 1] >= 0xc0)
			cut--;
		if (cut == 0)
			cut = c->plen;
		if (pdf_canvas_flush(c, cut, err) < 0)
			return -1;
	}
	return 0;
}
