/*
 * fuzz_smtp_cmd.c - libFuzzer target for the SMTP listener's parsers
 * (smtp_cmd.c, smtp_data.c): every input line goes through the verb lookup
 * and, for MAIL/RCPT/HELO/EHLO, the argument parsers, exactly as the session
 * hands them over (CR/LF stripped, capped at SMTP_EXT_LINE_MAX, NUL-
 * terminated). The whole input also goes through the DATA scanner twice, at
 * once and in small chunks, and the two outputs must agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_int.h"

static void fuzz_line(const char *line, size_t len)
{
	char buf[SMTP_EXT_LINE_MAX + 1];
	const char *args;
	enum smtp_verb v;
	struct smtp_status st;

	if (len > SMTP_EXT_LINE_MAX)
		return; /* the session refuses such lines before parsing */
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL)
		return; /* refused before parsing too */
	v = smtp_cmd_verb(buf, len, &args);
	if (v == SMTP_V_MAIL) {
		struct smtp_mail_args a;

		if (smtp_cmd_mail(args, &a, &st) == 0) {
			if (strlen(a.addr) > SMTP_PATH_MAX || strlen(a.envid) > SMTP_ENVID_MAX)
				abort();
			if (a.addr_8bit && !a.smtputf8)
				abort();
		} else if (st.code < 500 || st.code > 555 || st.enh == NULL) {
			abort();
		}
	} else if (v == SMTP_V_RCPT) {
		struct smtp_rcpt_args a;
		bool utf8 = len > 0 && (buf[len - 1] & 1) != 0;

		if (smtp_cmd_rcpt(args, utf8, &a, &st) == 0) {
			if (strlen(a.addr) > SMTP_PATH_MAX || strlen(a.orcpt) > SMTP_ORCPT_MAX)
				abort();
			if (a.addr_8bit && !utf8)
				abort();
			if ((a.notify & SMTP_NOTIFY_NEVER) != 0 && a.notify != SMTP_NOTIFY_NEVER)
				abort();
		} else if (st.code < 500 || st.code > 555 || st.enh == NULL) {
			abort();
		}
	} else if (v == SMTP_V_HELO || v == SMTP_V_EHLO) {
		(void)smtp_cmd_helo_ok(args);
	}
	(void)smtp_utf8_is_valid((const unsigned char *)buf, len);
	(void)smtp_verb_name(v);
}

static void fuzz_scan(const uint8_t *data, size_t size)
{
	struct smtp_data_scan a, b;
	char *out_a = malloc(2 * size + 4);
	char *out_b = malloc(2 * size + 4);
	char tmp[2 * 7 + 4];
	size_t la = 0, lb = 0, used_a, used_b = 0;

	if (out_a == NULL || out_b == NULL)
		abort();
	smtp_data_scan_init(&a);
	used_a = smtp_data_scan_feed(&a, (const char *)data, size, out_a, &la);
	if (la > 2 * size + 4 || (used_a < size && !a.done))
		abort();
	smtp_data_scan_init(&b);
	while (used_b < size && !b.done) {
		size_t n = size - used_b < 7 ? size - used_b : 7;
		size_t olen = 0;
		size_t used = smtp_data_scan_feed(&b, (const char *)data + used_b, n, tmp, &olen);

		memcpy(out_b + lb, tmp, olen);
		lb += olen;
		used_b += used;
	}
	if (la != lb || memcmp(out_a, out_b, la) != 0 || used_a != used_b ||
		a.done != b.done || a.received != b.received || a.nul_bytes != b.nul_bytes ||
		a.long_lines != b.long_lines)
		abort();
	free(out_a);
	free(out_b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *end = p + size;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);

		fuzz_line(p, len > 0 && p[len - 1] == '\r' ? len - 1 : len);
		p += len + (eol != NULL ? 1 : 0);
	}
	fuzz_scan(data, size);
	return 0;
}
