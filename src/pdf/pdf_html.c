/*
 * pdf_html.c - text/html shown as readable text on the PDF canvas (F-PDF-1).
 *
 * Uses libxml2's HTML parser in SAX push mode: the body streams through in
 * chunks, no tree is built, so memory does not grow with the HTML. The parser
 * runs with HTML_PARSE_NONET and we never resolve a URL: images, style
 * sheets and frames are not fetched (only an image's alt text is shown).
 * The input is already UTF-8 (GMime converted it); any <meta charset> is
 * ignored (HTML_PARSE_IGNORE_ENC).
 *
 * Mapping: block elements start new paragraphs; h1-h6 are bold; <pre> keeps
 * its lines in a monospace font; lists indent and get "•" or "1."; table
 * rows become lines with cells separated by " | "; a link shows as
 * "text <URL>" (the URL once when it equals the text; "#..." and
 * "javascript:" targets are dropped); script, style, head, template and
 * similar elements are skipped. Whitespace collapses as in a browser.
 * Runs in the thread that renders the message.
 */
#include <string.h>

#include <glib.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include "pdf/pdf_int.h"

#define PDF_HTML_LIST_MAX 16
#define PDF_HTML_HREF_MAX 2048
#define PDF_HTML_LINKTEXT_MAX 2048

struct pdf_html {
	struct pdf_canvas *c;
	htmlParserCtxtPtr ctxt;
	unsigned skip;                 /* inside script/style/...: depth */
	unsigned pre;                  /* inside <pre> */
	unsigned heading;              /* inside h1-h6 */
	unsigned quote;                /* blockquote depth */
	unsigned nlist;                /* list nesting */
	unsigned list_num[PDF_HTML_LIST_MAX]; /* 0 = <ul>, else next number */
	bool pending_space;            /* collapsed whitespace not yet written */
	bool cell_open;                /* a cell was written in this row */
	bool marker_only;              /* the line holds only a list marker */
	bool in_link;
	char *href;
	GString *link_text;
	bool failed;
	struct sg_error err;
};

/* Elements whose content is not shown. */
static const char *const pdf_html_skip[] = {
	"script", "style", "head", "title", "template", "noscript", "iframe", "object",
	"embed", "svg", "math", "select", "option", "button", "textarea", "frameset",
	NULL,
};

/* Elements that start and end a paragraph. */
static const char *const pdf_html_block[] = {
	"p", "div", "section", "article", "header", "footer", "nav", "aside", "main",
	"address", "center", "form", "fieldset", "figure", "figcaption", "dl", "dt", "dd",
	"table", "caption", "thead", "tbody", "tfoot", "h1", "h2", "h3", "h4", "h5", "h6",
	"ul", "ol", "li", "blockquote", "pre", "body", "html", NULL,
};

/* Blocks followed by a little vertical space, as browsers do. */
static const char *const pdf_html_spaced[] = {
	"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre",
	"dl", NULL,
};

static bool pdf_html_in(const char *const *set, const char *name)
{
	for (; *set != NULL; set++)
		if (g_ascii_strcasecmp(*set, name) == 0)
			return true;
	return false;
}

static void pdf_html_error(struct pdf_html *h, struct sg_error *err)
{
	if (!h->failed) {
		h->failed = true;
		h->err = *err;
	}
	xmlStopParser(h->ctxt);
}

/* pdf_html_out - write text to the canvas (and into the link text) */
static void pdf_html_out(struct pdf_html *h, const char *s, size_t n)
{
	struct sg_error err;

	if (h->failed || n == 0)
		return;
	h->marker_only = false;
	if (h->in_link && h->link_text->len < PDF_HTML_LINKTEXT_MAX)
		g_string_append_len(h->link_text, s, (gssize)n);
	if (pdf_canvas_write(h->c, s, n, &err) < 0)
		pdf_html_error(h, &err);
}

/* pdf_html_newline - end the current paragraph if it has text */
static void pdf_html_newline(struct pdf_html *h)
{
	struct sg_error err;

	h->pending_space = false;
	h->marker_only = false;
	if (h->failed || pdf_canvas_line_is_empty(h->c))
		return;
	if (pdf_canvas_write(h->c, "\n", 1, &err) < 0)
		pdf_html_error(h, &err);
}

static void pdf_html_apply_style(struct pdf_html *h)
{
	pdf_canvas_set_style(h->c, h->pre > 0 ? PDF_STYLE_MONO :
		h->heading > 0 ? PDF_STYLE_HEADING : PDF_STYLE_BODY);
	pdf_canvas_set_indent(h->c, h->quote + h->nlist);
}

static const char *pdf_html_attr(const xmlChar **atts, const char *name)
{
	if (atts == NULL)
		return NULL;
	for (; atts[0] != NULL; atts += 2)
		if (g_ascii_strcasecmp((const char *)atts[0], name) == 0)
			return atts[1] != NULL ? (const char *)atts[1] : "";
	return NULL;
}

/* pdf_html_is_heading - h1..h6 */
static bool pdf_html_is_heading(const char *n)
{
	return (n[0] == 'h' || n[0] == 'H') && n[1] >= '1' && n[1] <= '6' && n[2] == '\0';
}

static void pdf_html_start(void *ctx, const xmlChar *xname, const xmlChar **atts)
{
	struct pdf_html *h = ctx;
	const char *name = (const char *)xname;
	const char *v;
	char num[32];

	if (h->failed)
		return;
	if (pdf_html_in(pdf_html_skip, name)) {
		h->skip++;
		return;
	}
	if (h->skip > 0)
		return;
	/* <li><p>text: the text stays beside its marker */
	if (pdf_html_in(pdf_html_block, name) && !h->marker_only)
		pdf_html_newline(h);
	if (pdf_html_is_heading(name)) {
		h->heading++;
	} else if (g_ascii_strcasecmp(name, "pre") == 0) {
		h->pre++;
	} else if (g_ascii_strcasecmp(name, "blockquote") == 0) {
		h->quote++;
	} else if (g_ascii_strcasecmp(name, "ul") == 0 || g_ascii_strcasecmp(name, "ol") == 0) {
		if (h->nlist < PDF_HTML_LIST_MAX)
			h->list_num[h->nlist] = name[0] == 'o' || name[0] == 'O' ? 1 : 0;
		h->nlist++;
	} else if (g_ascii_strcasecmp(name, "br") == 0) {
		if (pdf_canvas_line_is_empty(h->c))
			pdf_html_out(h, " ", 1); /* <br><br> gives an empty line */
		pdf_html_newline(h);
		return;
	} else if (g_ascii_strcasecmp(name, "hr") == 0) {
		struct sg_error err;

		pdf_html_newline(h);
		if (!h->failed && pdf_canvas_rule(h->c, &err) < 0)
			pdf_html_error(h, &err);
		return;
	} else if (g_ascii_strcasecmp(name, "tr") == 0) {
		pdf_html_newline(h);
		h->cell_open = false;
	} else if (g_ascii_strcasecmp(name, "td") == 0 || g_ascii_strcasecmp(name, "th") == 0) {
		if (h->cell_open)
			pdf_html_out(h, " | ", 3);
		h->cell_open = true;
		h->pending_space = false;
	} else if (g_ascii_strcasecmp(name, "a") == 0) {
		v = pdf_html_attr(atts, "href");
		g_free(h->href);
		h->href = NULL;
		if (v != NULL && v[0] != '#' && !sg_str_has_prefix_ci(v, "javascript:") &&
		    strlen(v) < PDF_HTML_HREF_MAX)
			h->href = g_strstrip(g_strdup(v));
		h->in_link = true;
		g_string_truncate(h->link_text, 0);
	} else if (g_ascii_strcasecmp(name, "img") == 0) {
		v = pdf_html_attr(atts, "alt");
		if (v != NULL && v[0] != '\0') {
			if (h->pending_space)
				pdf_html_out(h, " ", 1);
			h->pending_space = false;
			pdf_html_out(h, "[image: ", 8);
			pdf_html_out(h, v, strnlen(v, 512));
			pdf_html_out(h, "]", 1);
		}
		return;
	}
	pdf_html_apply_style(h);
	if (g_ascii_strcasecmp(name, "li") == 0) {
		unsigned d = h->nlist > 0 ? h->nlist - 1 : 0;

		if (d < PDF_HTML_LIST_MAX && h->nlist > 0 && h->list_num[d] > 0) {
			snprintf(num, sizeof(num), "%u. ", h->list_num[d]);
			if (h->list_num[d] < 1000000)
				h->list_num[d]++;
			pdf_html_out(h, num, strlen(num));
		} else {
			pdf_html_out(h, "\xe2\x80\xa2 ", 4);
		}
		h->marker_only = true;
	}
}

static void pdf_html_end(void *ctx, const xmlChar *xname)
{
	struct pdf_html *h = ctx;
	const char *name = (const char *)xname;

	if (h->failed)
		return;
	if (pdf_html_in(pdf_html_skip, name)) {
		if (h->skip > 0)
			h->skip--;
		return;
	}
	if (h->skip > 0)
		return;
	if (g_ascii_strcasecmp(name, "a") == 0 && h->in_link) {
		h->in_link = false;
		if (h->href != NULL && h->href[0] != '\0' &&
		    strcmp(g_strstrip(h->link_text->str), h->href) != 0) {
			pdf_html_out(h, " <", 2);
			pdf_html_out(h, h->href, strlen(h->href));
			pdf_html_out(h, ">", 1);
		}
		g_free(h->href);
		h->href = NULL;
		return;
	}
	if (pdf_html_in(pdf_html_block, name) || g_ascii_strcasecmp(name, "tr") == 0)
		pdf_html_newline(h);
	if (pdf_html_in(pdf_html_spaced, name))
		pdf_canvas_space(h->c);
	if (pdf_html_is_heading(name) && h->heading > 0)
		h->heading--;
	else if (g_ascii_strcasecmp(name, "pre") == 0 && h->pre > 0)
		h->pre--;
	else if (g_ascii_strcasecmp(name, "blockquote") == 0 && h->quote > 0)
		h->quote--;
	else if ((g_ascii_strcasecmp(name, "ul") == 0 || g_ascii_strcasecmp(name, "ol") == 0) &&
		 h->nlist > 0)
		h->nlist--;
	pdf_html_apply_style(h);
}

static void pdf_html_chars(void *ctx, const xmlChar *ch, int len)
{
	struct pdf_html *h = ctx;
	const char *s = (const char *)ch;
	int i, start;

	if (h->failed || h->skip > 0 || len <= 0)
		return;
	if (h->pre > 0) {
		pdf_html_out(h, s, (size_t)len);
		return;
	}
	/* collapse runs of white space into one space; none at a line start */
	for (i = 0; i < len;) {
		if (g_ascii_isspace(s[i])) {
			h->pending_space = true;
			i++;
			continue;
		}
		start = i;
		while (i < len && !g_ascii_isspace(s[i]))
			i++;
		if (h->pending_space && !pdf_canvas_line_is_empty(h->c))
			pdf_html_out(h, " ", 1);
		h->pending_space = false;
		pdf_html_out(h, s + start, (size_t)(i - start));
	}
}

struct pdf_html *pdf_html_new(struct pdf_canvas *c)
{
	struct pdf_html *h = sg_xcalloc(1, sizeof(*h));
	htmlSAXHandler sax;

	memset(&sax, 0, sizeof(sax));
	sax.startElement = pdf_html_start;
	sax.endElement = pdf_html_end;
	sax.characters = pdf_html_chars;
	sax.cdataBlock = pdf_html_chars;
	h->c = c;
	h->link_text = g_string_new(NULL);
	h->ctxt = htmlCreatePushParserCtxt(&sax, h, NULL, 0, NULL, XML_CHAR_ENCODING_UTF8);
	if (h->ctxt == NULL) {
		g_string_free(h->link_text, TRUE);
		free(h);
		return NULL;
	}
	htmlCtxtUseOptions(h->ctxt, HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
		HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_NOIMPLIED |
		HTML_PARSE_IGNORE_ENC);
	return h;
}

int pdf_html_feed(struct pdf_html *h, const char *data, size_t len, struct sg_error *err)
{
	while (len > 0 && !h->failed) {
		int n = len > 65536 ? 65536 : (int)len;

		htmlParseChunk(h->ctxt, data, n, 0);
		data += n;
		len -= (size_t)n;
	}
	if (h->failed) {
		*err = h->err;
		return -1;
	}
	return 0;
}

int pdf_html_finish(struct pdf_html **hp, struct sg_error *err)
{
	struct pdf_html *h = *hp;
	int rc = 0;

	if (h == NULL)
		return 0;
	*hp = NULL;
	if (!h->failed)
		htmlParseChunk(h->ctxt, NULL, 0, 1);
	if (!h->failed)
		pdf_html_newline(h);
	if (h->failed) {
		if (err != NULL)
			*err = h->err;
		rc = -1;
	}
	pdf_canvas_set_style(h->c, PDF_STYLE_BODY);
	pdf_canvas_set_indent(h->c, 0);
	htmlFreeParserCtxt(h->ctxt);
	g_free(h->href);
	g_string_free(h->link_text, TRUE);
	free(h);
	return rc;
}
