/*
 * ca_csv.c - the bulk certificate request file of guide App. G (F-CA-6).
 *
 * Pure parser (no store, no OpenSSL): called by ca_bulk's callers (CLI, API)
 * and the fuzz target, in the caller's thread. Hostile input: every size is
 * capped (file, rows, value length), no recursion, errors name the line.
 *
 * Format decisions (open questions App. G): RFC 4180 quoting ("" inside a
 * quoted value, commas and line breaks allowed inside quotes); records end at
 * LF, CRLF or CR; unquoted values are trimmed of spaces and tabs (the guide's
 * own example has "testA1@example.com, cn1"), quoted values are kept as they
 * are; empty lines are skipped; US-ASCII unless a BOM says UTF-8, UTF-16LE or
 * UTF-16BE (converted to UTF-8 with iconv; UTF-32 is refused); the limit of
 * 256 characters counts Unicode characters; unknown or repeated column names
 * are errors; every row must have as many values as the header has columns;
 * addresses must be ASCII (certificates carry them as IA5String).
 */
#include "ca/ca_int.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

enum col { COL_EMAIL, COL_ORG, COL_CN, COL_FN, COL_LN, COL__N };

static const struct {
	const char *alias;
	enum col col;
} aliases[] = {
	{"email", COL_EMAIL}, {"e", COL_EMAIL},
	{"organisation", COL_ORG}, {"org", COL_ORG}, {"o", COL_ORG},
	{"commonname", COL_CN}, {"cn", COL_CN},
	{"firstname", COL_FN}, {"fn", COL_FN}, {"givenname", COL_FN}, {"gn", COL_FN},
	{"lastname", COL_LN}, {"ln", COL_LN}, {"surname", COL_LN}, {"sn", COL_LN},
};
static const char *const col_names[COL__N] = {
	"EMAIL", "ORGANISATION", "COMMONNAME", "FIRSTNAME", "LASTNAME",
};

#define CSV_FIELD_BYTES (CA_VALUE_MAX * 4)  /* 256 characters of UTF-8 */
#define CSV_COLS_MAX 32

struct csv_state {
	const unsigned char *p, *end;
	unsigned line;              /* current physical line */
	bool is_utf8;               /* a BOM allowed non-ASCII */
};

struct csv_record {
	unsigned line;              /* where the record starts */
	size_t n;
	char *v[CSV_COLS_MAX];
};

static void record_clear(struct csv_record *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	r->n = 0;
}

/* utf8_chars - characters in a valid UTF-8 string; -1 when invalid */
static long utf8_chars(const unsigned char *s, size_t len)
{
	size_t i = 0, k;
	long n = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t need;
		unsigned long cp;

		if (c < 0x80) {
			i++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return -1;
		}
		if (len - i <= need)
			return -1;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
			(need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return -1;
		i += need + 1;
		n++;
	}
	return n;
}

/*
 * field_end - finish one value: trim when unquoted, check encoding and
 * length, store it in the record.
 */
static int field_end(struct csv_state *s, struct csv_record *r, char *buf, size_t len,
	bool quoted, struct sg_error *err)
{
	size_t a = 0, b = len, i;
	long chars;

	if (!quoted) {
		while (a < b && (buf[a] == ' ' || buf[a] == '\t'))
			a++;
		while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t'))
			b--;
	}
	if (r->n >= CSV_COLS_MAX) {
		sg_error_set(err, SG_E_LIMIT, "line %u: more than %d values", r->line,
			CSV_COLS_MAX);
		return -1;
	}
	for (i = a; i < b; i++) {
		if ((unsigned char)buf[i] >= 0x80 && !s->is_utf8) {
			sg_error_set(err, SG_E_PARSE, "line %u: non-ASCII character in a file "
				"without a byte order mark (save it as UTF-8 with BOM)", r->line);
			return -1;
		}
		if (buf[i] == '\0') {
			sg_error_set(err, SG_E_PARSE, "line %u: NUL byte", r->line);
			return -1;
		}
	}
	chars = utf8_chars((unsigned char *)buf + a, b - a);
	if (chars < 0) {
		sg_error_set(err, SG_E_PARSE, "line %u: invalid UTF-8", r->line);
		return -1;
	}
	if (chars > CA_VALUE_MAX) {
		sg_error_set(err, SG_E_LIMIT, "line %u: value %zu is longer than %d characters",
			r->line, r->n + 1, CA_VALUE_MAX);
		return -1;
	}
	r->v[r->n++] = sg_xstrndup(buf + a, b - a);
	return 0;
}

/* next_record - one record into r; 1 read, 0 end of input, -1 error */
static int next_record(struct csv_state *s, struct csv_record *r, struct sg_error *err)
{
	char buf[CSV_FIELD_BYTES + 1];
	size_t len = 0;
	bool quoted = false, in_quotes = false, after_quote = false, any = false;
	unsigned qline = 0;

	record_clear(r);
	r->line = s->line;
	if (s->p >= s->end)
		return 0;
	while (s->p < s->end) {
		unsigned char c = *s->p++;

		if (in_quotes) {
			if (c == '"') {
				if (s->p < s->end && *s->p == '"') {
					s->p++;
				} else {
					in_quotes = false;
					after_quote = true;
					continue;
				}
			} else if (c == '\n' || (c == '\r' && (s->p >= s->end || *s->p != '\n'))) {
				s->line++;
			}
			if (len >= CSV_FIELD_BYTES) {
				sg_error_set(err, SG_E_LIMIT, "line %u: value %zu is longer than %d "
					"characters", r->line, r->n + 1, CA_VALUE_MAX);
				return -1;
			}
			buf[len++] = (char)c;
			continue;
		}
		if (c == ',') {
			if (field_end(s, r, buf, len, quoted, err) < 0)
				return -1;
			len = 0;
			quoted = after_quote = false;
			any = true;
			continue;
		}
		if (c == '\r' || c == '\n') {
			if (c == '\r' && s->p < s->end && *s->p == '\n')
				s->p++;
			s->line++;
			if (!any && len == 0 && !quoted) {
				/* an empty line: skip it */
				r->line = s->line;
				continue;
			}
			return field_end(s, r, buf, len, quoted, err) < 0 ? -1 : 1;
		}
		if (after_quote) {
			if (c == ' ' || c == '\t')
				continue;
			sg_error_set(err, SG_E_PARSE, "line %u: text after a closing quote",
				s->line);
			return -1;
		}
		if (c == '"') {
			size_t k;

			for (k = 0; k < len; k++)
				if (buf[k] != ' ' && buf[k] != '\t')
					break;
			if (k < len) {
				sg_error_set(err, SG_E_PARSE, "line %u: quote inside an unquoted value",
					s->line);
				return -1;
			}
			len = 0;
			quoted = in_quotes = true;
			qline = s->line;
			continue;
		}
		if (len >= CSV_FIELD_BYTES) {
			sg_error_set(err, SG_E_LIMIT, "line %u: value %zu is longer than %d "
				"characters", r->line, r->n + 1, CA_VALUE_MAX);
			return -1;
		}
		buf[len++] = (char)c;
	}
	if (in_quotes) {
		sg_error_set(err, SG_E_PARSE, "line %u: unbalanced quotes (a quoted value is "
			"never closed)", qline);
		return -1;
	}
	if (!any && len == 0 && !quoted)
		return 0;
	return field_end(s, r, buf, len, quoted, err) < 0 ? -1 : 1;
}

/* decode - strip a BOM; UTF-16 is converted to UTF-8 into *conv_r */
static int decode(const unsigned char *d, size_t len, struct csv_state *s,
	char **conv_r, struct sg_error *err)
{
	const char *from = NULL;
	iconv_t cd;
	char *in, *out;
	size_t inleft, outleft, cap;

	*conv_r = NULL;
	s->is_utf8 = false;
	if (len >= 4 && ((d[0] == 0xff && d[1] == 0xfe && d[2] == 0 && d[3] == 0) ||
		(d[0] == 0 && d[1] == 0 && d[2] == 0xfe && d[3] == 0xff))) {
		sg_error_set(err, SG_E_PARSE, "line 1: UTF-32 is not supported (use UTF-8)");
		return -1;
	}
	if (len >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf) {
		s->p = d + 3;
		s->end = d + len;
		s->is_utf8 = true;
		return 0;
	}
	if (len >= 2 && d[0] == 0xff && d[1] == 0xfe)
		from = "UTF-16LE";
	else if (len >= 2 && d[0] == 0xfe && d[1] == 0xff)
		from = "UTF-16BE";
	if (from == NULL) {
		s->p = d;
		s->end = d + len;
		return 0;
	}
	if ((len - 2) % 2 != 0) {
		sg_error_set(err, SG_E_PARSE, "line 1: %s file with an odd number of bytes",
			from);
		return -1;
	}
	cd = iconv_open("UTF-8", from);
	if (cd == (iconv_t)-1) {
		sg_error_set_errno(err, SG_E_INTERNAL, errno, "iconv %s", from);
		return -1;
	}
	cap = (len - 2) / 2 * 3 + 1;   /* each UTF-16 unit -> at most 3 bytes */
	*conv_r = malloc(cap);
	if (*conv_r == NULL) {
		iconv_close(cd);
		sg_error_set(err, SG_E_NOMEM, "out of memory");
		return -1;
	}
	in = (char *)d + 2;
	inleft = len - 2;
	out = *conv_r;
	outleft = cap;
	if (iconv(cd, &in, &inleft, &out, &outleft) == (size_t)-1) {
		iconv_close(cd);
		free(*conv_r);
		*conv_r = NULL;
		sg_error_set(err, SG_E_PARSE, "invalid %s data near byte %zu", from,
			(size_t)(in - (char *)d));
		return -1;
	}
	iconv_close(cd);
	s->p = (unsigned char *)*conv_r;
	s->end = (unsigned char *)out;
	s->is_utf8 = true;
	return 0;
}

/* header - map each column of the header record */
static int header(const struct csv_record *r, int *map, struct sg_error *err)
{
	bool seen[COL__N] = {false};
	size_t i, k;
	char esc[64];

	for (i = 0; i < r->n; i++) {
		map[i] = -1;
		for (k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++) {
			if (strcasecmp(r->v[i], aliases[k].alias) == 0) {
				map[i] = (int)aliases[k].col;
				break;
			}
		}
		if (map[i] < 0) {
			sg_error_set(err, SG_E_PARSE, "line %u: unknown column '%s' (known: EMAIL, "
				"ORGANISATION, COMMONNAME, FIRSTNAME, LASTNAME and aliases)", r->line,
				sg_log_esc(esc, sizeof(esc), r->v[i], strlen(r->v[i])));
			return -1;
		}
		if (seen[map[i]]) {
			sg_error_set(err, SG_E_PARSE, "line %u: column %s given twice", r->line,
				col_names[map[i]]);
			return -1;
		}
		seen[map[i]] = true;
	}
	if (!seen[COL_EMAIL] || !seen[COL_CN]) {
		sg_error_set(err, SG_E_PARSE, "line %u: mandatory column %s is missing", r->line,
			!seen[COL_EMAIL] ? "EMAIL" : "COMMONNAME");
		return -1;
	}
	return 0;
}

static int row_take(struct csv_record *r, const int *map, size_t ncols,
	struct ca_csv_row *row, struct sg_error *err)
{
	char *vals[COL__N] = {NULL};
	char esc[80];
	size_t i;

	if (r->n != ncols) {
		sg_error_set(err, SG_E_PARSE, "line %u: %zu values, %zu columns expected",
			r->line, r->n, ncols);
		return -1;
	}
	for (i = 0; i < r->n; i++)
		vals[map[i]] = r->v[i];
	if (vals[COL_EMAIL][0] == '\0' || vals[COL_CN][0] == '\0') {
		sg_error_set(err, SG_E_PARSE, "line %u: %s is empty (mandatory)", r->line,
			vals[COL_EMAIL][0] == '\0' ? "EMAIL" : "COMMONNAME");
		return -1;
	}
	if (!ca_email_is_usable(vals[COL_EMAIL])) {
		sg_error_set(err, SG_E_PARSE, "line %u: invalid email address '%s'", r->line,
			sg_log_esc(esc, sizeof(esc), vals[COL_EMAIL], strlen(vals[COL_EMAIL])));
		return -1;
	}
	for (i = 0; i < r->n; i++) {
		const unsigned char *p;

		for (p = (unsigned char *)r->v[i]; *p != '\0'; p++) {
			if (*p < 0x20 || *p == 0x7f) {
				sg_error_set(err, SG_E_PARSE, "line %u: control character in %s",
					r->line, col_names[map[i]]);
				return -1;
			}
		}
	}
	memset(row, 0, sizeof(*row));
	row->line = r->line;
	/* take ownership of the values of the mapped columns */
	for (i = 0; i < r->n; i++) {
		char **dst = map[i] == COL_EMAIL ? &row->email : map[i] == COL_ORG ? &row->org :
			map[i] == COL_CN ? &row->cn : map[i] == COL_FN ? &row->first_name :
			&row->last_name;

		*dst = r->v[i];
		r->v[i] = NULL;
	}
	r->n = 0;
	return 0;
}

static void row_free(struct ca_csv_row *row)
{
	free(row->email);
	free(row->org);
	free(row->cn);
	free(row->first_name);
	free(row->last_name);
}

void ca_csv_free(struct ca_csv *csv)
{
	size_t i;

	if (csv == NULL)
		return;
	for (i = 0; i < csv->n; i++)
		row_free(&csv->rows[i]);
	free(csv->rows);
	csv->rows = NULL;
	csv->n = 0;
}

int ca_csv_parse(const void *data, size_t len, size_t max_rows, struct ca_csv *csv_r,
	struct sg_error *err)
{
	struct csv_state s = {NULL, NULL, 1, false};
	struct csv_record r = {0};
	int map[CSV_COLS_MAX];
	size_t ncols, cap = 0;
	char *conv = NULL;
	int got, rc = -1;

	csv_r->rows = NULL;
	csv_r->n = 0;
	if (max_rows == 0)
		max_rows = CA_CSV_ROWS_MAX;
	if (len > CA_CSV_FILE_MAX) {
		sg_error_set(err, SG_E_LIMIT, "file larger than %u bytes", CA_CSV_FILE_MAX);
		return -1;
	}
	if (decode(data, len, &s, &conv, err) < 0)
		return -1;
	got = next_record(&s, &r, err);
	if (got <= 0) {
		if (got == 0)
			sg_error_set(err, SG_E_PARSE, "line 1: empty file (a header row is required)");
		goto out;
	}
	if (header(&r, map, err) < 0)
		goto out;
	ncols = r.n;
	while ((got = next_record(&s, &r, err)) > 0) {
		if (csv_r->n >= max_rows) {
			sg_error_set(err, SG_E_LIMIT, "line %u: more than %zu requests in one file",
				r.line, max_rows);
			goto out;
		}
		if (csv_r->n == cap) {
			cap = cap ? cap * 2 : 64;
			if (cap > max_rows)
				cap = max_rows;
			csv_r->rows = sg_xrealloc(csv_r->rows, cap * sizeof(*csv_r->rows));
		}
		if (row_take(&r, map, ncols, &csv_r->rows[csv_r->n], err) < 0)
			goto out;
		csv_r->n++;
	}
	if (got < 0)
		goto out;
	if (csv_r->n == 0) {
		sg_error_set(err, SG_E_PARSE, "no requests after the header row");
		goto out;
	}
	rc = 0;
out:
	record_clear(&r);
	free(conv);
	if (rc < 0)
		ca_csv_free(csv_r);
	return rc;
}
