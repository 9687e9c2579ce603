/*
 * template_engine.c - the template language of template.h: a parser that
 * turns template text into a small tree (text, ${var}, <#if>, <#list>) and
 * checks every variable against the template's catalogue entry, and an
 * evaluator that writes the tree with a set of variables into a capped
 * buffer, escaping each value for its context (header, text, HTML, SMS).
 *
 * Called by template_mime.c (validation and rendering) in any thread; no
 * state outside the objects passed in. Invariants: parsing never recurses
 * deeper than TEMPLATE_DEPTH_MAX, output never grows past the buffer's cap,
 * every value is valid UTF-8 once escaped.
 */
#include "template_int.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

enum tpl_node_type { TPL_N_TEXT, TPL_N_VAR, TPL_N_IF, TPL_N_LIST };

struct tpl_node {
	enum tpl_node_type type;
	struct tpl_node *next;
	size_t off, len;          /* TPL_N_TEXT: slice of tpl->src */
	int var;                  /* catalogue index of the variable / list */
	int alias;                /* >= 0: an item of the <#list> at this depth */
	int field;                /* field index, -1 none */
	bool negate;              /* <#if !x> */
	struct tpl_node *body;    /* if: then-part; list: the loop body */
	struct tpl_node *alt;     /* if: else-part */
};

struct tpl {
	char *src;
	size_t len;
	const struct template_def *def;
	struct tpl_node *root;
	bool is_plain;
};

struct tpl_scope {
	char name[TEMPLATE_NAME_MAX];
	int var;
};

struct tpl_parser {
	const char *s;
	size_t len, pos;
	unsigned line0, col0;
	const struct template_def *def;
	struct tpl_scope scope[TEMPLATE_DEPTH_MAX];
	int depth;
	bool has_syntax;
	struct sg_error *err;
};

enum tpl_end { TPL_END_EOF, TPL_END_ELSE, TPL_END_IF, TPL_END_LIST };
enum tpl_use { TPL_USE_VALUE, TPL_USE_IF, TPL_USE_LIST };

/* tpl_perr - a syntax error at offset off, as "line L, column C: ...". */
static void SG_PRINTF(3, 4) tpl_perr(struct tpl_parser *p, size_t off, const char *fmt, ...)
{
	unsigned line = p->line0, col = p->col0;
	char msg[SG_ERROR_MSG_MAX];
	va_list ap;
	size_t i;

	for (i = 0; i < off && i < p->len; i++) {
		if (p->s[i] == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)p->s[i] & 0xc0) != 0x80) {
			col++;  /* count characters, not UTF-8 continuation bytes */
		}
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sg_error_set(p->err, SG_E_PARSE, "line %u, column %u: %s", line, col, msg);
}

static void tpl_nodes_free(struct tpl_node *n)
{
	while (n != NULL) {
		struct tpl_node *next = n->next;

		tpl_nodes_free(n->body);
		tpl_nodes_free(n->alt);
		free(n);
		n = next;
	}
}

static struct tpl_node *tpl_node_new(enum tpl_node_type type)
{
	struct tpl_node *n = sg_xcalloc(1, sizeof(*n));

	n->type = type;
	n->var = -1;
	n->alias = -1;
	n->field = -1;
	return n;
}

static bool tpl_starts(const struct tpl_parser *p, size_t off, const char *lit)
{
	size_t n = strlen(lit);

	return off + n <= p->len && memcmp(p->s + off, lit, n) == 0;
}

static bool tpl_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void tpl_skip_ws(struct tpl_parser *p)
{
	while (p->pos < p->len && (tpl_is_blank(p->s[p->pos]) || p->s[p->pos] == '\r' ||
		p->s[p->pos] == '\n'))
		p->pos++;
}

/* tpl_ident - [A-Za-z_][A-Za-z0-9_]* into out; 0 ok, -1 err. */
static int tpl_ident(struct tpl_parser *p, char *out, const char *what)
{
	size_t start = p->pos, n;

	while (p->pos < p->len) {
		char c = p->s[p->pos];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			(p->pos > start && c >= '0' && c <= '9')))
			break;
		p->pos++;
	}
	n = p->pos - start;
	if (n == 0) {
		tpl_perr(p, start, "expected %s", what);
		return -1;
	}
	if (n >= TEMPLATE_NAME_MAX) {
		tpl_perr(p, start, "%s is longer than %d characters", what, TEMPLATE_NAME_MAX - 1);
		return -1;
	}
	memcpy(out, p->s + start, n);
	out[n] = '\0';
	return 0;
}

static int tpl_def_var(const struct template_def *def, const char *name)
{
	size_t i;

	for (i = 0; i < def->nvars; i++)
		if (strcmp(def->vars[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int tpl_def_field(const struct template_var_def *v, const char *name)
{
	size_t i;

	for (i = 0; v->fields != NULL && v->fields[i] != NULL; i++)
		if (strcmp(v->fields[i], name) == 0)
			return (int)i;
	return -1;
}

/* tpl_resolve - bind NAME[.FIELD] at off to a variable or list item of n. */
static int tpl_resolve(struct tpl_parser *p, size_t off, const char *name, const char *field,
	enum tpl_use use, struct tpl_node *n)
{
	const struct template_var_def *v;
	int d;

	for (d = p->depth - 1; d >= 0; d--) {
		if (p->scope[d].var >= 0 && strcmp(p->scope[d].name, name) == 0)
			break;
	}
	if (d >= 0) {
		v = &p->def->vars[p->scope[d].var];
		n->var = p->scope[d].var;
		n->alias = d;
		if (use == TPL_USE_LIST) {
			tpl_perr(p, off, "'%s' is an item, not a list", name);
			return -1;
		}
		if (v->type == TEMPLATE_VAR_LIST) {
			if (field[0] != '\0') {
				tpl_perr(p, off, "'%s' has no fields", name);
				return -1;
			}
			return 0;
		}
		if (field[0] == '\0') {
			tpl_perr(p, off, "'%s' is a record: use %s.FIELD", name, name);
			return -1;
		}
		n->field = tpl_def_field(v, field);
		if (n->field < 0) {
			tpl_perr(p, off, "unknown field '%s' of '%s'", field, name);
			return -1;
		}
		return 0;
	}
	n->var = tpl_def_var(p->def, name);
	if (n->var < 0) {
		tpl_perr(p, off, "unknown variable '%s'", name);
		return -1;
	}
	v = &p->def->vars[n->var];
	if (field[0] != '\0') {
		tpl_perr(p, off, "'%s' has no fields", name);
		return -1;
	}
	if (use == TPL_USE_VALUE && v->type == TEMPLATE_VAR_RECORDS) {
		tpl_perr(p, off, "'%s' is a list of records: use <#list %s as ITEM>", name, name);
		return -1;
	}
	if (use == TPL_USE_LIST && v->type == TEMPLATE_VAR_TEXT) {
		tpl_perr(p, off, "'%s' is not a list", name);
		return -1;
	}
	return 0;
}

/* tpl_path - NAME or NAME.FIELD at p->pos. */
static int tpl_path(struct tpl_parser *p, char *name, char *field)
{
	if (tpl_ident(p, name, "a variable name") < 0)
		return -1;
	field[0] = '\0';
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (tpl_ident(p, field, "a field name") < 0)
			return -1;
	}
	return 0;
}

/* tpl_close - optional blanks, then '>' ending the tag opened at off. */
static int tpl_close(struct tpl_parser *p, size_t off, const char *tag)
{
	tpl_skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != '>') {
		tpl_perr(p, off, "%s: expected '>'", tag);
		return -1;
	}
	p->pos++;
	return 0;
}

/* tpl_var - "${" PATH "}" at p->pos (which points at '$'). */
static struct tpl_node *tpl_var(struct tpl_parser *p)
{
	char name[TEMPLATE_NAME_MAX], field[TEMPLATE_NAME_MAX];
	size_t off = p->pos;
	struct tpl_node *n;

	p->pos += 2;
	tpl_skip_ws(p);
	if (tpl_path(p, name, field) < 0)
		return NULL;
	tpl_skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != '}') {
		tpl_perr(p, off, "'${' without a closing '}'");
		return NULL;
	}
	p->pos++;
	n = tpl_node_new(TPL_N_VAR);
	if (tpl_resolve(p, off, name, field, TPL_USE_VALUE, n) < 0) {
		free(n);
		return NULL;
	}
	return n;
}

/* tpl_standalone - the tag [start, end) is alone on its line (only blanks
 * around it, nothing of the pending text before text_start on that line):
 * *cut_r = where the pending text ends, *next_r = after the line's newline. */
static bool tpl_standalone(const struct tpl_parser *p, size_t text_start, size_t start,
	size_t end, size_t *cut_r, size_t *next_r)
{
	size_t ls = start, i;

	while (ls > 0 && p->s[ls - 1] != '\n')
		ls--;
	if (text_start > ls)
		return false;
	for (i = ls; i < start; i++)
		if (!tpl_is_blank(p->s[i]))
			return false;
	for (i = end; i < p->len && tpl_is_blank(p->s[i]); i++)
		;
	if (i < p->len && p->s[i] == '\r')
		i++;
	if (i < p->len && p->s[i] != '\n')
		return false;
	*cut_r = ls;
	*next_r = i < p->len ? i + 1 : i;
	return true;
}

static struct tpl_node *tpl_block(struct tpl_parser *p, enum tpl_end *end_r);

static void tpl_append(struct tpl_node ***tailp, struct tpl_node *n)
{
	**tailp = n;
	*tailp = &n->next;
}

static void tpl_text(struct tpl_node ***tailp, size_t from, size_t to)
{
	struct tpl_node *n;

	if (to <= from)
		return;
	n = tpl_node_new(TPL_N_TEXT);
	n->off = from;
	n->len = to - from;
	tpl_append(tailp, n);
}

enum tpl_tag_kind { TPL_TAG_COMMENT, TPL_TAG_IF, TPL_TAG_LIST, TPL_TAG_ELSE, TPL_TAG_END_IF,
	TPL_TAG_END_LIST };

struct tpl_tag {
	enum tpl_tag_kind kind;
	size_t off;
	bool negate;
	char name[TEMPLATE_NAME_MAX];
	char field[TEMPLATE_NAME_MAX];
	char alias[TEMPLATE_NAME_MAX];
};

/* tpl_if - the body of "<#if [!]PATH>" up to "</#if>"; p->pos after the tag. */
static struct tpl_node *tpl_if(struct tpl_parser *p, const struct tpl_tag *tag)
{
	struct tpl_node *n = tpl_node_new(TPL_N_IF);
	enum tpl_end end;

	n->negate = tag->negate;
	if (tpl_resolve(p, tag->off, tag->name, tag->field, TPL_USE_IF, n) < 0)
		goto fail;
	if (p->depth >= TEMPLATE_DEPTH_MAX) {
		tpl_perr(p, tag->off, "directives nested deeper than %d", TEMPLATE_DEPTH_MAX);
		goto fail;
	}
	p->scope[p->depth].var = -1;
	p->depth++;
	n->body = tpl_block(p, &end);
	if (n->body == NULL && p->err->code != SG_E_OK)
		goto fail_pop;
	if (end == TPL_END_ELSE) {
		n->alt = tpl_block(p, &end);
		if (n->alt == NULL && p->err->code != SG_E_OK)
			goto fail_pop;
	}
	if (end != TPL_END_IF) {
		tpl_perr(p, tag->off, end == TPL_END_EOF ? "<#if> without </#if>" :
			"<#if> closed by the wrong tag");
		goto fail_pop;
	}
	p->depth--;
	return n;
fail_pop:
	p->depth--;
fail:
	tpl_nodes_free(n);
	return NULL;
}

/* tpl_list - the body of "<#list PATH as ALIAS>" up to "</#list>". */
static struct tpl_node *tpl_list(struct tpl_parser *p, const struct tpl_tag *tag)
{
	struct tpl_node *n = tpl_node_new(TPL_N_LIST);
	enum tpl_end end;

	if (tpl_resolve(p, tag->off, tag->name, tag->field, TPL_USE_LIST, n) < 0)
		goto fail;
	if (tpl_def_var(p->def, tag->alias) >= 0) {
		tpl_perr(p, tag->off, "list item '%s' hides the variable of that name", tag->alias);
		goto fail;
	}
	if (p->depth >= TEMPLATE_DEPTH_MAX) {
		tpl_perr(p, tag->off, "directives nested deeper than %d", TEMPLATE_DEPTH_MAX);
		goto fail;
	}
	sg_strlcpy(p->scope[p->depth].name, tag->alias, sizeof(p->scope[p->depth].name));
	p->scope[p->depth].var = n->var;
	n->alias = p->depth;  /* the depth its items are bound at */
	p->depth++;
	n->body = tpl_block(p, &end);
	p->depth--;
	if (n->body == NULL && p->err->code != SG_E_OK)
		goto fail;
	if (end != TPL_END_LIST) {
		tpl_perr(p, tag->off, end == TPL_END_EOF ? "<#list> without </#list>" :
			"<#list> closed by the wrong tag");
		goto fail;
	}
	return n;
fail:
	tpl_nodes_free(n);
	return NULL;
}

/* tpl_tag - parse the tag at p->pos ("<#..." or "</#...") into *tag, leaving
 * p->pos after it. 0 ok, -1 err. */
static int tpl_tag(struct tpl_parser *p, struct tpl_tag *tag)
{
	char word[TEMPLATE_NAME_MAX], *name;
	bool closing = p->s[p->pos + 1] == '/';

	memset(tag, 0, sizeof(*tag));
	tag->off = p->pos;
	name = tag->name;
	if (!closing && tpl_starts(p, p->pos, "<#--")) {
		const char *e = memmem(p->s + p->pos + 4, p->len - p->pos - 4, "-->", 3);

		if (e == NULL) {
			tpl_perr(p, tag->off, "'<#--' without '-->'");
			return -1;
		}
		p->pos = (size_t)(e - p->s) + 3;
		tag->kind = TPL_TAG_COMMENT;
		return 0;
	}
	p->pos += closing ? 3 : 2;
	if (tpl_ident(p, word, "a directive name") < 0)
		return -1;
	if (closing) {
		if (strcmp(word, "if") != 0 && strcmp(word, "list") != 0) {
			tpl_perr(p, tag->off, "unknown directive </#%s>", word);
			return -1;
		}
		tag->kind = word[0] == 'i' ? TPL_TAG_END_IF : TPL_TAG_END_LIST;
		return tpl_close(p, tag->off, word);
	}
	if (strcmp(word, "else") == 0) {
		tag->kind = TPL_TAG_ELSE;
		return tpl_close(p, tag->off, "<#else");
	}
	if (strcmp(word, "if") != 0 && strcmp(word, "list") != 0) {
		tpl_perr(p, tag->off, "unknown directive <#%s>", word);
		return -1;
	}
	tag->kind = word[0] == 'i' ? TPL_TAG_IF : TPL_TAG_LIST;
	tpl_skip_ws(p);
	if (tag->kind == TPL_TAG_IF && p->pos < p->len && p->s[p->pos] == '!') {
		tag->negate = true;
		p->pos++;
		tpl_skip_ws(p);
	}
	if (tpl_path(p, name, tag->field) < 0)
		return -1;
	if (tag->kind == TPL_TAG_IF)
		return tpl_close(p, tag->off, "<#if");
	tpl_skip_ws(p);
	if (tpl_ident(p, word, "'as'") < 0)
		return -1;
	if (strcmp(word, "as") != 0) {
		tpl_perr(p, tag->off, "<#list %s: expected 'as'", name);
		return -1;
	}
	tpl_skip_ws(p);
	if (tpl_ident(p, tag->alias, "an item name") < 0)
		return -1;
	return tpl_close(p, tag->off, "<#list");
}

/*
 * tpl_block - nodes up to the end of input or a closing/else tag (*end_r).
 * Returns the list (NULL when empty or on error: then p->err->code is set).
 */
static struct tpl_node *tpl_block(struct tpl_parser *p, enum tpl_end *end_r)
{
	struct tpl_node *head = NULL, **tail = &head, *n;
	size_t text_start = p->pos;
	struct tpl_tag tag;

	*end_r = TPL_END_EOF;
	while (p->pos < p->len) {
		size_t start = p->pos, cut, next;

		if (tpl_starts(p, p->pos, "$${")) {
			/* literal "${": the text so far, then skip one '$' */
			tpl_text(&tail, text_start, p->pos);
			p->has_syntax = true;
			text_start = p->pos + 1;
			p->pos += 3;
			continue;
		}
		if (tpl_starts(p, p->pos, "${")) {
			tpl_text(&tail, text_start, p->pos);
			p->has_syntax = true;
			n = tpl_var(p);
			if (n == NULL)
				goto fail;
			tpl_append(&tail, n);
			text_start = p->pos;
			continue;
		}
		if (!tpl_starts(p, p->pos, "<#") && !tpl_starts(p, p->pos, "</#")) {
			p->pos++;
			continue;
		}
		p->has_syntax = true;
		if (tpl_tag(p, &tag) < 0)
			goto fail;
		/* a tag alone on its line takes the whole line with it */
		if (tpl_standalone(p, text_start, start, p->pos, &cut, &next)) {
			tpl_text(&tail, text_start, cut);
			p->pos = next;
		} else {
			tpl_text(&tail, text_start, start);
		}
		switch (tag.kind) {
		case TPL_TAG_COMMENT:
			break;
		case TPL_TAG_IF:
		case TPL_TAG_LIST:
			n = tag.kind == TPL_TAG_IF ? tpl_if(p, &tag) : tpl_list(p, &tag);
			if (n == NULL)
				goto fail;
			tpl_append(&tail, n);
			break;
		case TPL_TAG_ELSE:
		case TPL_TAG_END_IF:
		case TPL_TAG_END_LIST:
			*end_r = tag.kind == TPL_TAG_ELSE ? TPL_END_ELSE :
				tag.kind == TPL_TAG_END_IF ? TPL_END_IF : TPL_END_LIST;
			return head;
		}
		text_start = p->pos;
	}
	tpl_text(&tail, text_start, p->pos);
	return head;
fail:
	tpl_nodes_free(head);
	return NULL;
}

struct tpl *tpl_parse(const struct template_def *def, const char *src, size_t len,
	unsigned line0, unsigned col0, struct sg_error *err)
{
	struct tpl_parser p;
	struct sg_error local;
	struct tpl *t;
	enum tpl_end end;

	if (err == NULL)
		err = &local;
	sg_error_clear(err);
	memset(&p, 0, sizeof(p));
	p.s = src;
	p.len = len;
	p.line0 = line0;
	p.col0 = col0;
	p.def = def;
	p.err = err;
	t = sg_xcalloc(1, sizeof(*t));
	t->root = tpl_block(&p, &end);
	if (t->root == NULL && err->code != SG_E_OK) {
		free(t);
		return NULL;
	}
	if (end != TPL_END_EOF) {
		tpl_perr(&p, p.pos, "%s without an opening tag",
			end == TPL_END_ELSE ? "<#else>" : end == TPL_END_IF ? "</#if>" : "</#list>");
		tpl_nodes_free(t->root);
		free(t);
		return NULL;
	}
	t->src = sg_xstrndup(src, len);
	t->len = len;
	t->def = def;
	t->is_plain = !p.has_syntax;
	return t;
}

void tpl_free(struct tpl **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	tpl_nodes_free((*tp)->root);
	free((*tp)->src);
	free(*tp);
	*tp = NULL;
}

bool tpl_is_plain(const struct tpl *t)
{
	return t->is_plain;
}

bool tpl_has_syntax(const char *s, size_t len)
{
	return memmem(s, len, "${", 2) != NULL || memmem(s, len, "<#", 2) != NULL ||
		memmem(s, len, "</#", 3) != NULL;
}

size_t tpl_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* ------------------------------------------------------------- variables */

struct tpl_values {
	const char **v;
	size_t n, cap;
};

struct tpl_vars {
	const struct template_def *def;
	size_t *slot;              /* first slot of each catalogue variable */
	struct tpl_values *vals;   /* one per slot */
	size_t nslots;
	char **owned;              /* sample strings made by tpl_vars_sample */
	size_t nowned;
};

static size_t tpl_nfields(const struct template_var_def *v)
{
	size_t n = 0;

	if (v->type != TEMPLATE_VAR_RECORDS)
		return 1;
	while (v->fields != NULL && v->fields[n] != NULL)
		n++;
	return n;
}

static struct tpl_vars *tpl_vars_alloc(const struct template_def *def)
{
	struct tpl_vars *tv = sg_xcalloc(1, sizeof(*tv));
	size_t i;

	tv->def = def;
	tv->slot = sg_xcalloc(def->nvars + 1, sizeof(*tv->slot));
	for (i = 0; i < def->nvars; i++) {
		tv->slot[i] = tv->nslots;
		tv->nslots += tpl_nfields(&def->vars[i]);
	}
	tv->vals = sg_xcalloc(tv->nslots + 1, sizeof(*tv->vals));
	return tv;
}

static void tpl_values_add(struct tpl_values *tv, const char *v)
{
	if (tv->n == tv->cap) {
		tv->cap = tv->cap == 0 ? 4 : tv->cap * 2;
		tv->v = sg_xrealloc(tv->v, tv->cap * sizeof(*tv->v));
	}
	tv->v[tv->n++] = v != NULL ? v : "";
}

struct tpl_vars *tpl_vars_new(const struct template_def *def, const struct template_var *vars,
	size_t n, struct sg_error *err)
{
	struct tpl_vars *tv;
	size_t i;

	if (n > TEMPLATE_VARS_MAX) {
		sg_error_set(err, SG_E_LIMIT, "template %s: %zu variables (at most %d)", def->name,
			n, TEMPLATE_VARS_MAX);
		return NULL;
	}
	tv = tpl_vars_alloc(def);
	for (i = 0; i < n; i++) {
		const char *name = vars[i].name != NULL ? vars[i].name : "";
		const char *dot = strchr(name, '.');
		char base[TEMPLATE_NAME_MAX];
		size_t blen = dot != NULL ? (size_t)(dot - name) : strlen(name);
		const struct template_var_def *v;
		int vi, fi = 0;

		vi = -1;
		if (blen < sizeof(base)) {
			memcpy(base, name, blen);
			base[blen] = '\0';
			vi = tpl_def_var(def, base);
		}
		if (vi < 0)
			goto unknown;
		v = &def->vars[vi];
		if ((v->type == TEMPLATE_VAR_RECORDS) != (dot != NULL))
			goto unknown;
		if (dot != NULL) {
			fi = tpl_def_field(v, dot + 1);
			if (fi < 0)
				goto unknown;
		}
		if (v->type == TEMPLATE_VAR_TEXT && tv->vals[tv->slot[vi]].n > 0)
			continue;  /* a text variable keeps its first value */
		tpl_values_add(&tv->vals[tv->slot[vi] + (size_t)fi], vars[i].value);
		continue;
unknown:
		{
			char esc[80];

			sg_error_set(err, SG_E_INVAL, "template %s has no variable '%s'", def->name,
				sg_log_esc(esc, sizeof(esc), name, strlen(name)));
			tpl_vars_free(&tv);
			return NULL;
		}
	}
	return tv;
}

struct tpl_vars *tpl_vars_sample(const struct template_def *def)
{
	struct tpl_vars *tv = tpl_vars_alloc(def);
	size_t i, f, k;

	tv->owned = sg_xcalloc(2 * tv->nslots + 1, sizeof(*tv->owned));
	for (i = 0; i < def->nvars; i++) {
		const struct template_var_def *v = &def->vars[i];

		if (v->type == TEMPLATE_VAR_TEXT) {
			tpl_values_add(&tv->vals[tv->slot[i]], v->sample);
			continue;
		}
		for (f = 0; f < tpl_nfields(v); f++) {
			for (k = 1; k <= 2; k++) {
				char *s = v->type == TEMPLATE_VAR_LIST ?
					sg_xasprintf("%s%zu", v->sample, k) :
					sg_xasprintf("%s-%s%zu", v->sample, v->fields[f], k);

				tv->owned[tv->nowned++] = s;
				tpl_values_add(&tv->vals[tv->slot[i] + f], s);
			}
		}
	}
	return tv;
}

void tpl_vars_free(struct tpl_vars **vp)
{
	struct tpl_vars *tv;
	size_t i;

	if (vp == NULL || *vp == NULL)
		return;
	tv = *vp;
	for (i = 0; i < tv->nslots; i++)
		free(tv->vals[i].v);
	for (i = 0; i < tv->nowned; i++)
		free(tv->owned[i]);
	free(tv->owned);
	free(tv->vals);
	free(tv->slot);
	free(tv);
	*vp = NULL;
}

/* ------------------------------------------------------------ rendering */

struct tpl_env {
	const struct tpl *t;
	const struct tpl_vars *vars;
	enum tpl_ctx ctx;
	size_t item[TEMPLATE_DEPTH_MAX];  /* current item index per list depth */
	struct sg_buf *out;
	struct sg_error *err;
};

/* tpl_put_value - append v escaped for env->ctx. */
static int tpl_put_value(struct tpl_env *e, const char *v)
{
	gchar *fixed = NULL;
	const unsigned char *s;
	char chunk[256];
	size_t n = 0;
	int rc = 0;

	if (!g_utf8_validate(v, -1, NULL)) {
		fixed = g_utf8_make_valid(v, -1);
		v = fixed;
	}
	for (s = (const unsigned char *)v; *s != '\0' && rc == 0; s++) {
		const char *rep = NULL;
		char one = (char)*s;

		if (*s < 0x20 || *s == 0x7f) {
			if (e->ctx == TPL_CTX_HEADER)
				one = ' ';
			else if (*s != '\n' && *s != '\t')
				continue;
		} else if (e->ctx == TPL_CTX_HTML) {
			switch (*s) {
			case '&': rep = "&amp;"; break;
			case '<': rep = "&lt;"; break;
			case '>': rep = "&gt;"; break;
			case '"': rep = "&quot;"; break;
			case '\'': rep = "&#39;"; break;
			default: break;
			}
		}
		if (n + 8 > sizeof(chunk)) {
			rc = sg_buf_append(e->out, chunk, n, e->err);
			n = 0;
		}
		if (rep != NULL) {
			memcpy(chunk + n, rep, strlen(rep));
			n += strlen(rep);
		} else {
			chunk[n++] = one;
		}
	}
	if (rc == 0 && n > 0)
		rc = sg_buf_append(e->out, chunk, n, e->err);
	g_free(fixed);
	return rc;
}

static const struct tpl_values *tpl_slot(const struct tpl_env *e, const struct tpl_node *n,
	int field)
{
	return &e->vars->vals[e->vars->slot[n->var] + (size_t)(field < 0 ? 0 : field)];
}

/* tpl_count - items of the list variable n refers to. */
static size_t tpl_count(const struct tpl_env *e, const struct tpl_node *n)
{
	const struct template_var_def *v = &e->t->def->vars[n->var];
	size_t f, max = 0;

	for (f = 0; f < tpl_nfields(v); f++) {
		const struct tpl_values *tv = tpl_slot(e, n, (int)f);

		if (tv->n > max)
			max = tv->n;
	}
	return max;
}

/* tpl_value - the scalar value of a reference ("" when unset); NULL for a
 * whole list variable (joined by the caller). */
static const char *tpl_value(const struct tpl_env *e, const struct tpl_node *n)
{
	const struct tpl_values *tv;
	size_t i;

	if (n->alias >= 0) {
		tv = tpl_slot(e, n, n->field);
		i = e->item[n->alias];
		return i < tv->n ? tv->v[i] : "";
	}
	tv = tpl_slot(e, n, -1);
	if (e->t->def->vars[n->var].type != TEMPLATE_VAR_TEXT)
		return NULL;
	return tv->n > 0 ? tv->v[0] : "";
}

static int tpl_eval(struct tpl_env *e, const struct tpl_node *n);

static int tpl_eval_node(struct tpl_env *e, const struct tpl_node *n)
{
	const char *v;
	size_t i, count;
	bool truth;

	switch (n->type) {
	case TPL_N_TEXT:
		return sg_buf_append(e->out, e->t->src + n->off, n->len, e->err);
	case TPL_N_VAR:
		v = tpl_value(e, n);
		if (v != NULL)
			return tpl_put_value(e, v);
		for (i = 0; i < tpl_slot(e, n, -1)->n; i++) {
			if (i > 0 && sg_buf_append_str(e->out, ", ", e->err) < 0)
				return -1;
			if (tpl_put_value(e, tpl_slot(e, n, -1)->v[i]) < 0)
				return -1;
		}
		return 0;
	case TPL_N_IF:
		v = tpl_value(e, n);
		truth = v != NULL ? v[0] != '\0' : tpl_count(e, n) > 0;
		if (n->negate)
			truth = !truth;
		return tpl_eval(e, truth ? n->body : n->alt);
	case TPL_N_LIST:
		count = tpl_count(e, n);
		for (i = 0; i < count; i++) {
			e->item[n->alias] = i;
			if (tpl_eval(e, n->body) < 0)
				return -1;
		}
		return 0;
	}
	return 0;
}

static int tpl_eval(struct tpl_env *e, const struct tpl_node *n)
{
	for (; n != NULL; n = n->next)
		if (tpl_eval_node(e, n) < 0)
			return -1;
	return 0;
}

int tpl_render(const struct tpl *t, const struct tpl_vars *vars, enum tpl_ctx ctx,
	struct sg_buf *out, struct sg_error *err)
{
	struct tpl_env e;

	memset(&e, 0, sizeof(e));
	e.t = t;
	e.vars = vars;
	e.ctx = ctx;
	e.out = out;
	e.err = err;
	if (vars->def != t->def) {
		sg_error_set(err, SG_E_INTERNAL, "template variables of another template");
		return -1;
	}
	return tpl_eval(&e, t->root);
}
