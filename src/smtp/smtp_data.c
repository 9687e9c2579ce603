/*
 * smtp_data.c - the DATA scanner: turns the dot-stuffed SMTP DATA stream into
 * message bytes as they arrive, finds the end marker, normalises bare LF to
 * CRLF, counts NUL bytes and the Received: headers of the header section.
 * Pure and O(1) in memory (lines of any length stream through); called by
 * smtp_session.c in a listener thread for every chunk read from the socket.
 *
 * RFC 5321 4.1.1.4 (end of data), 4.5.2 (transparency), 2.3.8 (line ends).
 * Smuggling defence (CVE-2023-51764/51765/51766): the end of data is only
 * <CRLF>.<CRLF>; a "." line ending in a bare LF, or following a line ending in
 * a bare LF, is content.
 */
#include "smtp_int.h"

#include <string.h>
#include <strings.h>

enum {
	SCAN_BOL,    /* at the beginning of a line */
	SCAN_DOT,    /* "." at the beginning of a line (dropped: unstuffing) */
	SCAN_DOT_CR, /* ".\r" at the beginning of a line */
	SCAN_TEXT,   /* inside a line */
	SCAN_CR,     /* "\r" inside a line (held until we see what follows) */
};

void smtp_data_scan_init(struct smtp_data_scan *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->state = SCAN_BOL;
	sc->in_headers = true;
	sc->prev_crlf = true;
}

/* scan_is_received - the line start in hdr is a "Received:" header. */
static bool scan_is_received(const struct smtp_data_scan *sc)
{
	size_t n = sc->hdr_len < sizeof(sc->hdr) ? sc->hdr_len : sizeof(sc->hdr);
	size_t i = 8;

	if (n < 9 || strncasecmp(sc->hdr, "Received", 8) != 0)
		return false;
	while (i < n && (sc->hdr[i] == ' ' || sc->hdr[i] == '\t'))
		i++;
	return i < n && sc->hdr[i] == ':';
}

/* scan_content - one content byte of the current line. */
static void scan_content(struct smtp_data_scan *sc, char c, char *out, size_t *o)
{
	out[(*o)++] = c;
	sc->line_len++;
	if (c == '\0')
		sc->nul_bytes++;
	if (sc->hdr_len < sizeof(sc->hdr))
		sc->hdr[sc->hdr_len] = c;
	if (sc->hdr_len < sizeof(sc->hdr) + 1)
		sc->hdr_len++;
	sc->state = SCAN_TEXT;
}

/* scan_eol - the current line ended (CRLF written by the caller). */
static void scan_eol(struct smtp_data_scan *sc, bool crlf)
{
	if (!crlf)
		sc->bare_lf++;
	if (sc->line_len + 2 > SMTP_TEXT_LINE_MAX)
		sc->long_lines++;
	sc->line_len = 0;
	sc->prev_crlf = crlf;
	if (sc->in_headers) {
		if (sc->hdr_len == 0)
			sc->in_headers = false;
		else if (scan_is_received(sc))
			sc->received++;
	}
	sc->hdr_len = 0;
	sc->state = SCAN_BOL;
}

/* scan_text - c inside a line (state TEXT or just after the line start). */
static void scan_text(struct smtp_data_scan *sc, char c, char *out, size_t *o)
{
	if (c == '\r') {
		sc->state = SCAN_CR;
	} else if (c == '\n') {
		out[(*o)++] = '\r';
		out[(*o)++] = '\n';
		scan_eol(sc, false);
	} else {
		scan_content(sc, c, out, o);
	}
}

/* plain_span - bytes at the start of in[0..len) that are ordinary line
 * content: no CR, LF or NUL (memchr is vectorised; most of a message is
 * such runs). */
static size_t plain_span(const char *in, size_t len)
{
	const char *p = memchr(in, '\n', len);
	size_t lim = p != NULL ? (size_t)(p - in) : len;

	p = memchr(in, '\r', lim);
	if (p != NULL)
		lim = (size_t)(p - in);
	p = memchr(in, '\0', lim);
	return p != NULL ? (size_t)(p - in) : lim;
}

/* scan_run - n ordinary content bytes at once (what n scan_content calls
 * would do). */
static void scan_run(struct smtp_data_scan *sc, const char *in, size_t n, char *out,
	size_t *o)
{
	memcpy(out + *o, in, n);
	*o += n;
	sc->line_len += n;
	if (sc->hdr_len < sizeof(sc->hdr)) {
		size_t k = sizeof(sc->hdr) - sc->hdr_len;

		memcpy(sc->hdr + sc->hdr_len, in, n < k ? n : k);
	}
	sc->hdr_len = sc->hdr_len + n < sizeof(sc->hdr) + 1 ? sc->hdr_len + n :
		sizeof(sc->hdr) + 1;
}

size_t smtp_data_scan_feed(struct smtp_data_scan *sc, const char *in, size_t len,
	char *out, size_t *outlen_r)
{
	size_t i;
	size_t o = 0;

	for (i = 0; i < len && !sc->done; i++) {
		char c = in[i];

		if (sc->state == SCAN_TEXT) {
			size_t n = plain_span(in + i, len - i);

			if (n > 0) {
				scan_run(sc, in + i, n, out, &o);
				i += n - 1;
				continue;
			}
		}
		switch (sc->state) {
		case SCAN_BOL:
			if (c == '.')
				sc->state = SCAN_DOT;
			else
				scan_text(sc, c, out, &o);
			break;
		case SCAN_DOT:
			if (c == '\r')
				sc->state = SCAN_DOT_CR;
			else
				scan_text(sc, c, out, &o);
			break;
		case SCAN_DOT_CR:
			if (c == '\n' && sc->prev_crlf) {
				sc->done = true;
				break;
			}
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				scan_eol(sc, true);
				break;
			}
			scan_content(sc, '\r', out, &o);
			scan_text(sc, c, out, &o);
			break;
		case SCAN_TEXT:
			scan_text(sc, c, out, &o);
			break;
		case SCAN_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				scan_eol(sc, true);
			} else if (c == '\r') {
				scan_content(sc, '\r', out, &o);
				sc->state = SCAN_CR;
			} else {
				scan_content(sc, '\r', out, &o);
				scan_text(sc, c, out, &o);
			}
			break;
		default:
			break;
		}
	}
	*outlen_r = o;
	return i;
}
