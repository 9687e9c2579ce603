/*
 * policy_regex.c - the pattern side of the policy: PCRE2 regular expressions
 * with Java-style inline flags (guide §4.1.5 "(?i)(\[secure\]|\[encrypt\])"),
 * the subject trigger with removal of the match (F-POL-7), the HEADER[:REGEX]
 * force-encrypt / force-sign triggers (F-POL-8, guide §4.2.1/§4.2.4), the
 * "/REGEX/ VALUE" subject filter (guide §4.3.2) and the phone number at the
 * end of the subject after the trigger (guide §4.5).
 *
 * Called by the validator (when a value is saved), by policy_decide (per
 * message) and by the fuzz target. Any thread: a struct policy_regex is
 * immutable after policy_regex_new; match data is per call.
 *
 * Invariants: patterns are capped at POLICY_REGEX_MAX bytes; matching runs
 * with PCRE2 match and depth limits, so a hostile subject or header cannot
 * make a match run for long; invalid UTF-8 in the subject never matches
 * (PCRE2_MATCH_INVALID_UTF) instead of failing; nothing recurses.
 */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "policy/policy_int.h"

#define POLICY_MATCH_LIMIT 200000
#define POLICY_DEPTH_LIMIT 2000
#define POLICY_REPLACE_MAX (256 * 1024)
#define POLICY_HEADER_OCC_MAX 64
#define POLICY_FILTER_ROUNDS 8

struct policy_regex {
	pcre2_code *code;
	pcre2_match_context *mctx;
};

/* java_flags_rewrite - copy pattern into out, dropping Java's inline flags
 * that PCRE2 lacks or reads differently: (?u) and (?d) mean nothing here, and
 * Java's (?U) (Unicode classes, always on) would be PCRE2's "ungreedy". */
static void java_flags_rewrite(const char *pat, size_t len, struct sg_buf *out)
{
	size_t i = 0;
	bool in_class = false;

	while (i < len) {
		char c = pat[i];

		if (c == '\\') {
			if (i + 1 < len && pat[i + 1] == 'Q') {
				const char *e = NULL;
				size_t k;

				for (k = i + 2; k + 1 < len; k++) {
					if (pat[k] == '\\' && pat[k + 1] == 'E') {
						e = pat + k;
						break;
					}
				}
				k = e != NULL ? (size_t)(e - pat) + 2 : len;
				sg_buf_append(out, pat + i, k - i, NULL);
				i = k;
				continue;
			}
			sg_buf_append(out, pat + i, i + 1 < len ? 2 : 1, NULL);
			i += 2;
			continue;
		}
		if (in_class) {
			if (c == ']')
				in_class = false;
			sg_buf_append(out, &c, 1, NULL);
			i++;
			continue;
		}
		if (c == '[') {
			size_t k = i + 1;

			in_class = true;
			if (k < len && pat[k] == '^')
				k++;
			if (k < len && pat[k] == ']')
				k++;  /* a leading ']' is literal */
			sg_buf_append(out, pat + i, k - i, NULL);
			i = k;
			continue;
		}
		if (c == '(' && i + 1 < len && pat[i + 1] == '?') {
			size_t k = i + 2;

			while (k < len && strchr("idmsuxU-", pat[k]) != NULL && pat[k] != '\0')
				k++;
			if (k > i + 2 && k < len && (pat[k] == ')' || pat[k] == ':')) {
				char flags[64];
				size_t f = 0, j;
				bool has_letter = false;

				for (j = i + 2; j < k && f + 1 < sizeof(flags); j++) {
					if (pat[j] == 'u' || pat[j] == 'U' || pat[j] == 'd')
						continue;
					if (pat[j] != '-')
						has_letter = true;
					flags[f++] = pat[j];
				}
				flags[f] = '\0';
				if (!has_letter && pat[k] == ')') {
					i = k + 1;  /* "(?u)" -> nothing */
					continue;
				}
				if (!has_letter)
					f = 0;  /* "(?u:" -> "(?:" */
				sg_buf_append(out, "(?", 2, NULL);
				sg_buf_append(out, flags, f, NULL);
				sg_buf_append(out, pat + k, 1, NULL);
				i = k + 1;
				continue;
			}
		}
		sg_buf_append(out, &c, 1, NULL);
		i++;
	}
	if (out->data == NULL)
		sg_buf_append(out, "", 0, NULL);
}

struct policy_regex *policy_regex_new(const char *pattern, unsigned flags,
	struct sg_error *err)
{
	struct policy_regex *re = NULL;
	struct sg_buf b;
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	int code;
	PCRE2_SIZE off;
	size_t len = pattern != NULL ? strlen(pattern) : 0;

	sg_buf_init(&b, POLICY_REGEX_MAX * 2 + 16);
	if (pattern == NULL || len > POLICY_REGEX_MAX) {
		sg_error_set(err, SG_E_INVAL, "regular expression too long (at most %d bytes)",
			POLICY_REGEX_MAX);
		goto out;
	}
	if (flags & POLICY_RE_LITERAL) {
		opts |= PCRE2_LITERAL;
		sg_buf_append(&b, pattern, len, NULL);
		if (b.data == NULL)
			sg_buf_append(&b, "", 0, NULL);
	} else {
		opts |= PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C;
		java_flags_rewrite(pattern, len, &b);
	}
	if (flags & POLICY_RE_CASELESS)
		opts |= PCRE2_CASELESS;
	re = sg_xcalloc(1, sizeof(*re));
	re->code = pcre2_compile((PCRE2_SPTR)b.data, b.len, opts, &code, &off, NULL);
	if (re->code == NULL) {
		PCRE2_UCHAR msg[160];

		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			strcpy((char *)msg, "unknown error");
		sg_error_set(err, SG_E_INVAL, "bad regular expression at offset %zu: %s",
			(size_t)off, (const char *)msg);
		policy_regex_free(&re);
		goto out;
	}
	re->mctx = pcre2_match_context_create(NULL);
	if (re->mctx == NULL)
		abort();
	pcre2_set_match_limit(re->mctx, POLICY_MATCH_LIMIT);
	pcre2_set_depth_limit(re->mctx, POLICY_DEPTH_LIMIT);
out:
	sg_buf_deinit(&b);
	return re;
}

void policy_regex_free(struct policy_regex **rep)
{
	struct policy_regex *re = *rep;

	if (re == NULL)
		return;
	pcre2_code_free(re->code);
	pcre2_match_context_free(re->mctx);
	free(re);
	*rep = NULL;
}

int policy_regex_find(const struct policy_regex *re, const char *s, size_t len,
	size_t offset, size_t *start_r, size_t *end_r, struct sg_error *err)
{
	pcre2_match_data *md;
	int rc;

	if (offset > len)
		return 0;
	md = pcre2_match_data_create_from_pattern(re->code, NULL);
	if (md == NULL)
		abort();
	rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, offset, 0, md, re->mctx);
	if (rc >= 0) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

		if (start_r != NULL)
			*start_r = ov[0];
		if (end_r != NULL)
			*end_r = ov[1] < ov[0] ? ov[0] : ov[1];  /* \K can invert */
		rc = 1;
	} else if (rc == PCRE2_ERROR_NOMATCH) {
		rc = 0;
	} else {
		PCRE2_UCHAR msg[160];

		if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
			strcpy((char *)msg, "unknown error");
		sg_error_set(err, rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ?
			SG_E_LIMIT : SG_E_INTERNAL, "regular expression match: %s",
			(const char *)msg);
		rc = -1;
	}
	pcre2_match_data_free(md);
	return rc;
}

/* utf8_step - length of the character at s (1 for a stray byte) */
static size_t utf8_step(const char *s, size_t left)
{
	unsigned char c = (unsigned char)*s;
	size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

	return n > left ? left : n;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * replace_loop - copy s with every match replaced by repl (NULL: removed and
 * the blanks at the seam collapsed to one). *nmatch_r = matches; *last_end_r
 * = end offset of the last match. 0 ok, -1 err.
 */
static int replace_loop(const struct policy_regex *re, const char *s, const char *repl,
	struct sg_buf *out, unsigned *nmatch_r, size_t *last_end_r, struct sg_error *err)
{
	size_t len = strlen(s), pos = 0, st, en;
	unsigned n = 0;
	int rc;

	sg_buf_append(out, "", 0, NULL);
	while (pos <= len) {
		rc = policy_regex_find(re, s, len, pos, &st, &en, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		n++;
		*last_end_r = en;
		if (sg_buf_append(out, s + pos, st - pos, err) < 0)
			return -1;
		if (repl != NULL) {
			if (sg_buf_append_str(out, repl, err) < 0)
				return -1;
		} else {
			/* collapse blanks around the removed text to one */
			size_t k = en;

			if (out->len > 0 && is_blank(out->data[out->len - 1])) {
				while (k < len && is_blank(s[k]))
					k++;
			}
			en = k;
		}
		if (en == st) {  /* empty match: keep one character and move on */
			size_t step = st < len ? utf8_step(s + st, len - st) : 1;

			if (st < len && sg_buf_append(out, s + st, step, err) < 0)
				return -1;
			pos = st + step;
			continue;
		}
		pos = en;
	}
	if (pos < len && sg_buf_append(out, s + pos, len - pos, err) < 0)
		return -1;
	*nmatch_r = n;
	return 0;
}

int policy_regex_replace_all(const struct policy_regex *re, const char *s,
	const char *repl, char **out_r, struct sg_error *err)
{
	struct sg_buf b;
	unsigned n = 0;
	size_t last = 0;

	*out_r = NULL;
	sg_buf_init(&b, POLICY_REPLACE_MAX);
	if (replace_loop(re, s, repl != NULL ? repl : "", &b, &n, &last, err) < 0) {
		sg_buf_deinit(&b);
		return -1;
	}
	if (n == 0) {
		sg_buf_deinit(&b);
		return 0;
	}
	*out_r = sg_buf_steal(&b);
	return 1;
}

/* ----------------------------------------------------------- subject trigger */

int policy_subject_trigger_re(const struct policy_regex *re, const char *subject,
	unsigned flags, char **subject_r, size_t *tail_off_r, struct sg_error *err)
{
	struct sg_buf b;
	unsigned n = 0;
	size_t last = 0;

	*subject_r = NULL;
	if (subject == NULL)
		return 0;
	sg_buf_init(&b, POLICY_REPLACE_MAX);
	if (replace_loop(re, subject, NULL, &b, &n, &last, err) < 0) {
		sg_buf_deinit(&b);
		return -1;
	}
	if (n == 0) {
		sg_buf_deinit(&b);
		return 0;
	}
	if (tail_off_r != NULL)
		*tail_off_r = last;
	if (flags & POLICY_SUBJ_REMOVE)
		*subject_r = policy_trim_ws(sg_buf_steal(&b));
	sg_buf_deinit(&b);
	return 1;
}

int policy_subject_trigger(const char *subject, const char *trigger, unsigned flags,
	char **subject_r, size_t *tail_off_r, struct sg_error *err)
{
	struct policy_regex *re;
	int rc;

	*subject_r = NULL;
	re = policy_regex_new(trigger, (flags & POLICY_SUBJ_REGEX) ? 0 :
		POLICY_RE_LITERAL | POLICY_RE_CASELESS, err);
	if (re == NULL) {
		sg_error_prefix(err, "subject trigger: ");
		return -1;
	}
	rc = policy_subject_trigger_re(re, subject, flags, subject_r, tail_off_r, err);
	policy_regex_free(&re);
	return rc;
}

int policy_phone_from_tail(const char *tail, const char *default_cc, char *out,
	size_t outsz)
{
	char digits[32];
	size_t nd = 0;
	const char *p = tail;
	bool is_plus = false;

	if (tail == NULL || outsz < 18)
		return 0;
	out[0] = '\0';
	while (is_blank(*p))
		p++;
	if (*p == '+') {
		is_plus = true;
		p++;
	}
	for (; *p != '\0'; p++) {
		if (*p >= '0' && *p <= '9') {
			if (nd + 1 >= sizeof(digits))
				return 0;
			digits[nd++] = *p;
		} else if (strchr(" \t-()", *p) == NULL) {
			return 0;
		}
	}
	digits[nd] = '\0';
	if (nd == 0)
		return 0;
	if (is_plus) {
		if (digits[0] == '0')
			return 0;
		memmove(digits + 1, digits, nd + 1);
	} else if (nd > 2 && digits[0] == '0' && digits[1] == '0') {
		memmove(digits + 1, digits + 2, nd - 1);  /* "00" international prefix */
		nd -= 2;
		if (digits[1] == '0')
			return 0;
	} else if (digits[0] == '0' && digits[1] != '0') {
		/* national number: the trunk 0 is replaced by the country code */
		size_t cl;

		if (default_cc == NULL || *default_cc == '\0')
			return 0;
		cl = strlen(default_cc);
		if (cl > 3 || nd - 1 + cl + 1 >= sizeof(digits))
			return 0;
		memmove(digits + 1 + cl, digits + 1, nd);
		memcpy(digits + 1, default_cc, cl);
		nd = nd - 1 + cl;
	} else {
		return 0;  /* neither international nor national: refuse */
	}
	digits[0] = '+';
	if (!is_plus && digits[1] == '\0')
		return 0;
	nd = strlen(digits + 1);
	if (nd < 6 || nd > 15)
		return 0;
	sg_strlcpy(out, digits, outsz);
	return 1;
}

/* ------------------------------------------------------------ header trigger */

struct policy_header_trigger {
	char name[POLICY_HEADER_NAME_MAX];
	struct policy_regex *re;  /* NULL: any value */
};

int policy_header_trigger_split(const char *spec, char *name, size_t namesz,
	char **re_r, struct sg_error *err)
{
	char *tmp = sg_xstrdup(spec != NULL ? spec : ""), *colon, *rx;
	size_t i;
	int rc = -1;

	*re_r = NULL;
	colon = strchr(tmp, ':');
	if (colon != NULL)
		*colon = '\0';
	policy_trim_ws(tmp);
	if (*tmp == '\0' || strlen(tmp) >= namesz) {
		sg_error_set(err, SG_E_INVAL, "header trigger: want HEADER[:REGEX] with a "
			"header name of 1 to %zu characters", namesz - 1);
		goto out;
	}
	for (i = 0; tmp[i] != '\0'; i++) {
		unsigned char c = (unsigned char)tmp[i];

		if (c <= 32 || c >= 127) {  /* RFC 5322 ftext; ':' was split off */
			sg_error_set(err, SG_E_INVAL, "header trigger: bad character in the "
				"header name (printable ASCII, no blanks)");
			goto out;
		}
	}
	sg_strlcpy(name, tmp, namesz);
	if (colon != NULL) {
		rx = policy_trim_ws(colon + 1);
		/* "HEADER:" and the reference guide's "HEADER:*." both mean any value */
		if (*rx != '\0' && strcmp(rx, "*.") != 0 && strcmp(rx, "*") != 0)
			*re_r = sg_xstrdup(rx);
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

struct policy_header_trigger *policy_header_trigger_parse(const char *spec,
	struct sg_error *err)
{
	struct policy_header_trigger *t = sg_xcalloc(1, sizeof(*t));
	char *rx = NULL;

	if (policy_header_trigger_split(spec, t->name, sizeof(t->name), &rx, err) < 0)
		goto bad;
	if (rx != NULL) {
		t->re = policy_regex_new(rx, 0, err);
		if (t->re == NULL) {
			sg_error_prefix(err, "header trigger: ");
			goto bad;
		}
	}
	free(rx);
	return t;
bad:
	free(rx);
	policy_header_trigger_free(&t);
	return NULL;
}

void policy_header_trigger_free(struct policy_header_trigger **tp)
{
	struct policy_header_trigger *t = *tp;

	if (t == NULL)
		return;
	policy_regex_free(&t->re);
	free(t);
	*tp = NULL;
}

const char *policy_header_trigger_name(const struct policy_header_trigger *t)
{
	return t->name;
}

int policy_header_match(const char *name, const struct policy_regex *re,
	policy_header_fn *fn, void *arg, struct sg_error *err)
{
	size_t idx;

	if (fn == NULL)
		return 0;
	for (idx = 0; idx < POLICY_HEADER_OCC_MAX; idx++) {
		const char *v = fn(arg, name, idx);
		int rc;

		if (v == NULL)
			break;
		if (re == NULL)
			return 1;
		rc = policy_regex_find(re, v, strlen(v), 0, NULL, NULL, err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int policy_header_trigger_match(const struct policy_header_trigger *t, policy_header_fn *fn,
	void *arg, struct sg_error *err)
{
	return policy_header_match(t->name, t->re, fn, arg, err);
}

/* ------------------------------------------------------------ subject filter */

struct policy_subject_filter {
	struct policy_regex *re;
	char *value;
};

struct policy_subject_filter *policy_subject_filter_parse(const char *spec,
	struct sg_error *err)
{
	struct policy_subject_filter *f = NULL;
	struct sg_buf rx;
	const char *p;
	bool is_closed = false;

	sg_buf_init(&rx, POLICY_REGEX_MAX + 1);
	if (spec == NULL || spec[0] != '/') {
		sg_error_set(err, SG_E_INVAL, "subject filter: want /REGEX/ VALUE");
		goto bad;
	}
	/* The regex ends at the first '/' not escaped by a backslash; "\/" stays
	 * in the pattern, where PCRE2 reads it as a literal slash. */
	for (p = spec + 1; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			if (sg_buf_append(&rx, p, 2, err) < 0)
				goto bad;
			p++;
			continue;
		}
		if (*p == '/') {
			is_closed = true;
			p++;
			break;
		}
		if (sg_buf_append(&rx, p, 1, err) < 0) {
			sg_error_set(err, SG_E_INVAL, "subject filter: regex too long");
			goto bad;
		}
	}
	if (!is_closed || rx.len == 0) {
		sg_error_set(err, SG_E_INVAL, "subject filter: want /REGEX/ VALUE "
			"(non-empty regex, closing '/'; write \\/ for a slash in it)");
		goto bad;
	}
	if (*p != '\0' && !is_blank(*p)) {
		sg_error_set(err, SG_E_INVAL, "subject filter: want a blank between /REGEX/ "
			"and VALUE");
		goto bad;
	}
	f = sg_xcalloc(1, sizeof(*f));
	f->re = policy_regex_new(rx.data, 0, err);
	if (f->re == NULL) {
		sg_error_prefix(err, "subject filter: ");
		goto bad;
	}
	f->value = policy_trim_ws(sg_xstrdup(p));
	sg_buf_deinit(&rx);
	return f;
bad:
	sg_buf_deinit(&rx);
	policy_subject_filter_free(&f);
	return NULL;
}

void policy_subject_filter_free(struct policy_subject_filter **fp)
{
	struct policy_subject_filter *f = *fp;

	if (f == NULL)
		return;
	policy_regex_free(&f->re);
	free(f->value);
	free(f);
	*fp = NULL;
}

int policy_subject_filter_apply(const struct policy_subject_filter *f, const char *subject,
	char **out_r, struct sg_error *err)
{
	char *cur = NULL, *next = NULL;
	unsigned round;
	int rc;

	*out_r = NULL;
	if (subject == NULL)
		return 0;
	cur = sg_xstrdup(subject);
	for (round = 0; round < POLICY_FILTER_ROUNDS; round++) {
		rc = policy_regex_replace_all(f->re, cur, f->value, &next, err);
		if (rc < 0) {
			free(cur);
			return -1;
		}
		if (rc == 0)
			break;
		policy_trim_ws(next);
		if (strcmp(next, cur) == 0) {
			free(next);
			break;
		}
		free(cur);
		cur = next;
		next = NULL;
	}
	if (strcmp(cur, subject) == 0) {
		free(cur);
		return 0;
	}
	*out_r = cur;
	return 1;
}
