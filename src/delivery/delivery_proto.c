/*
 * delivery_proto.c - the SMTP protocol pieces of the delivery client that
 * need no connection: the reply parser (multi-line, enhanced status codes,
 * bounded), the EHLO extension parser, DATA dot-stuffing with CRLF
 * normalisation, and per-recipient result helpers. Pure functions, called
 * by delivery_client.c (any thread). RFCs: 5321 (replies, dot-stuffing),
 * 1869 and followers (EHLO keywords), 2034/3463 (enhanced status codes).
 *
 * Invariants: a reply is at most DELIVERY_REPLY_LINES_MAX lines of
 * DELIVERY_REPLY_LINE_MAX bytes; malformed replies are errors, never
 * guessed at.
 */
#include "delivery_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------- reply parser */

void delivery_reply_init(struct delivery_reply *r)
{
	memset(r, 0, sizeof(*r));
	sg_buf_init(&r->text, (size_t)DELIVERY_REPLY_LINES_MAX * (DELIVERY_REPLY_LINE_MAX + 1));
}

void delivery_reply_deinit(struct delivery_reply *r)
{
	sg_buf_deinit(&r->text);
}

void delivery_reply_reset(struct delivery_reply *r)
{
	r->code = 0;
	r->enh[0] = '\0';
	r->nlines = 0;
	r->is_complete = false;
	sg_buf_reset(&r->text);
}

/* reply_parse_enh - "X.Y.Z" at s (X = class) followed by space or end; copies
 * it into enh and returns its length, or 0. */
static size_t reply_parse_enh(const char *s, size_t len, int cls, char *enh, size_t enhsz)
{
	size_t i = 0;
	int part;

	if (len < 5 || s[0] != (char)('0' + cls) || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		size_t start = i;

		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			i++;
		if (i == start)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	if (i + 1 > enhsz)
		return 0;
	memcpy(enh, s, i);
	enh[i] = '\0';
	return i;
}

int delivery_reply_feed(struct delivery_reply *r, const char *line, size_t len,
	struct sg_error *err)
{
	int code;
	bool is_last;

	if (r->is_complete)
		delivery_reply_reset(r);
	if (len > DELIVERY_REPLY_LINE_MAX) {
		sg_error_set(err, SG_E_LIMIT, "reply line longer than %d bytes",
			DELIVERY_REPLY_LINE_MAX);
		return -1;
	}
	if (r->nlines >= DELIVERY_REPLY_LINES_MAX) {
		sg_error_set(err, SG_E_LIMIT, "reply has more than %d lines",
			DELIVERY_REPLY_LINES_MAX);
		return -1;
	}
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		sg_error_set(err, SG_E_PARSE, "malformed reply line");
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code) {
		sg_error_set(err, SG_E_PARSE, "reply code changed from %d to %d", r->code, code);
		return -1;
	}
	is_last = len == 3 || line[3] == ' ';
	if (r->nlines == 0) {
		r->code = code;
		if (len > 4)
			reply_parse_enh(line + 4, len - 4, code / 100, r->enh, sizeof(r->enh));
	} else if (sg_buf_append(&r->text, "\n", 1, err) < 0) {
		return -1;
	}
	if (len > 4 && sg_buf_append(&r->text, line + 4, len - 4, err) < 0)
		return -1;
	if (r->text.data == NULL && sg_buf_append(&r->text, "", 0, err) < 0)
		return -1;
	r->nlines++;
	r->is_complete = is_last;
	return is_last ? 1 : 0;
}

void delivery_reply_summary(const struct delivery_reply *r, char *out, size_t outsz)
{
	char tmp[1024];
	size_t n, i;

	n = (size_t)snprintf(tmp, sizeof(tmp), "%d", r->code);
	if (r->text.len > 0 && n + 1 < sizeof(tmp)) {
		tmp[n++] = ' ';
		for (i = 0; i < r->text.len && n + 1 < sizeof(tmp); i++)
			tmp[n++] = r->text.data[i] == '\n' ? ' ' : r->text.data[i];
	}
	if (n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	tmp[n] = '\0';
	sg_log_esc(out, outsz, tmp, n);
}

const char *delivery_reply_enh(const struct delivery_reply *r, char *buf, size_t bufsz)
{
	if (r->enh[0] != '\0')
		snprintf(buf, bufsz, "%s", r->enh);
	else
		snprintf(buf, bufsz, "%d.0.0", r->code / 100);
	return buf;
}

/* caps_word - does the EHLO line (len bytes) start with keyword kw? Returns
 * the rest (after one space) or NULL. */
static const char *caps_word(const char *line, size_t len, const char *kw)
{
	size_t kl = strlen(kw);

	if (len < kl || strncasecmp(line, kw, kl) != 0)
		return NULL;
	if (len == kl)
		return line + kl;
	if (line[kl] != ' ' && line[kl] != '=')
		return NULL;
	return line + kl + 1;
}

void delivery_caps_parse(const struct delivery_reply *r, struct delivery_caps *caps_r)
{
	const char *p, *end, *nl, *rest;
	unsigned lineno = 0;

	memset(caps_r, 0, sizeof(*caps_r));
	if (r->code != 250 || r->text.data == NULL)
		return;
	p = r->text.data;
	end = p + r->text.len;
	for (; p < end; p = nl + 1, lineno++) {
		size_t len;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (lineno == 0)
			continue; /* the greeting name */
		if (caps_word(p, len, "STARTTLS") != NULL)
			caps_r->ext |= DELIVERY_EXT_STARTTLS;
		else if (caps_word(p, len, "PIPELINING") != NULL)
			caps_r->ext |= DELIVERY_EXT_PIPELINING;
		else if (caps_word(p, len, "8BITMIME") != NULL)
			caps_r->ext |= DELIVERY_EXT_8BITMIME;
		else if (caps_word(p, len, "SMTPUTF8") != NULL)
			caps_r->ext |= DELIVERY_EXT_SMTPUTF8;
		else if (caps_word(p, len, "DSN") != NULL)
			caps_r->ext |= DELIVERY_EXT_DSN;
		else if ((rest = caps_word(p, len, "SIZE")) != NULL) {
			char num[24];
			size_t nl2 = (size_t)(nl - rest);
			uint64_t v;

			caps_r->ext |= DELIVERY_EXT_SIZE;
			if (rest < nl && nl2 < sizeof(num)) {
				memcpy(num, rest, nl2);
				num[nl2] = '\0';
				if (sg_parse_u64(num, UINT64_MAX, &v) == 0)
					caps_r->size_max = v;
			}
		} else if ((rest = caps_word(p, len, "AUTH")) != NULL) {
			const char *w = rest;

			while (w < nl) {
				const char *we = w;

				while (we < nl && *we != ' ')
					we++;
				if (we - w == 5 && strncasecmp(w, "PLAIN", 5) == 0)
					caps_r->ext |= DELIVERY_EXT_AUTH_PLAIN;
				else if (we - w == 5 && strncasecmp(w, "LOGIN", 5) == 0)
					caps_r->ext |= DELIVERY_EXT_AUTH_LOGIN;
				w = we + 1;
			}
		}
	}
}

/* ------------------------------------------------------------ dot-stuffing */

#define STUFF_MIDLINE 1u  /* not at the start of a line */
#define STUFF_CR 2u       /* previous byte was a CR not yet written */

size_t delivery_dot_stuff(unsigned *state, const char *in, size_t len, char *out)
{
	unsigned st = *state;
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (st == STUFF_MIDLINE) {
			/* inside a line: copy up to its CR or LF at once */
			const char *p = memchr(in + i, '\n', len - i);
			size_t lim = p != NULL ? (size_t)(p - (in + i)) : len - i;

			p = memchr(in + i, '\r', lim);
			if (p != NULL)
				lim = (size_t)(p - (in + i));
			if (lim > 0) {
				memcpy(out + o, in + i, lim);
				o += lim;
				i += lim - 1;
				continue;
			}
		}
		if (st & STUFF_CR) {
			st &= ~STUFF_CR;
			out[o++] = '\r';
			if (c == '\n') {
				out[o++] = '\n';
				st &= ~STUFF_MIDLINE;
				continue;
			}
			st |= STUFF_MIDLINE; /* a bare CR is passed through */
		}
		if (c == '\r') {
			st |= STUFF_CR;
			continue;
		}
		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			st &= ~STUFF_MIDLINE;
			continue;
		}
		if (c == '.' && !(st & STUFF_MIDLINE))
			out[o++] = '.';
		out[o++] = c;
		st |= STUFF_MIDLINE;
	}
	*state = st;
	return o;
}

size_t delivery_dot_stuff_end(unsigned state, char *out)
{
	size_t o = 0;

	if (state & STUFF_CR) {
		out[o++] = '\r';
		out[o++] = '\n';
	} else if (state & STUFF_MIDLINE) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* ---------------------------------------------------------------- results */

void delivery_result_set(struct delivery_result *res, enum delivery_rstatus st,
	const char *enh, const char *fmt, ...)
{
	va_list ap;

	res->status = st;
	snprintf(res->enh, sizeof(res->enh), "%s", enh);
	res->relay[0] = '\0';
	res->is_reply = false;
	res->is_expired = false;
	res->is_reported = false;
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

bool delivery_has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}
