/*
 * template_int.h - shared inside src/template/: the template language
 * (template_engine.c) used by the MIME renderer (template_mime.c).
 */
#ifndef SG_TEMPLATE_INT_H
#define SG_TEMPLATE_INT_H

#include "template/template.h"

/* Where a rendered value lands: decides its escaping (template.h). */
enum tpl_ctx {
	TPL_CTX_HEADER,
	TPL_CTX_TEXT,
	TPL_CTX_HTML,
	TPL_CTX_SMS,
};

struct tpl;       /* a parsed template (AST + its own copy of the source) */
struct tpl_vars;  /* the variables of one render call, indexed by name */

/*
 * tpl_parse - parse src[0..len) (no NUL needed) and check every variable
 * reference against def's variables. line0/col0 are the position of src[0]
 * in the file (1-based), so errors name file positions. NULL + err
 * (SG_E_PARSE "line L, column C: ...") on a syntax error.
 */
struct tpl *tpl_parse(const struct template_def *def, const char *src, size_t len,
	unsigned line0, unsigned col0, struct sg_error *err);
void tpl_free(struct tpl **tp);
/* tpl_is_plain - the template has no directive and no variable. */
bool tpl_is_plain(const struct tpl *t);

/*
 * tpl_vars_new - index vars for def. NULL + err: an unknown name or a field
 * not in the definition (SG_E_INVAL), too many (SG_E_LIMIT).
 * tpl_vars_sample - def's sample values (two records/items per list).
 */
struct tpl_vars *tpl_vars_new(const struct template_def *def, const struct template_var *vars,
	size_t n, struct sg_error *err);
struct tpl_vars *tpl_vars_sample(const struct template_def *def);
void tpl_vars_free(struct tpl_vars **vp);

/* tpl_render - append the rendering of t with vars in context ctx to out
 * (capped). 0 ok, -1 err (SG_E_LIMIT when out is full). */
int tpl_render(const struct tpl *t, const struct tpl_vars *vars, enum tpl_ctx ctx,
	struct sg_buf *out, struct sg_error *err);

/* tpl_has_syntax - s[0..len) holds "${" or "<#" or "</#" (template syntax). */
bool tpl_has_syntax(const char *s, size_t len);

/* tpl_utf8_chars - number of UTF-8 characters of a valid UTF-8 string. */
size_t tpl_utf8_chars(const char *s);

#endif
