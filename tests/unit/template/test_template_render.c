/*
 * test_template_render.c - F-TPL-1: templates as MIME (template_mime.c):
 * every factory default validates and renders into valid MIME (parsed back
 * with GMime), header injection through a variable is neutralised, UTF-8 in
 * headers is RFC 2047-encoded, HTML parts escape values, validation refuses
 * bad templates naming line/column or the field/part, SMS length, and
 * attachments replace the template's placeholder part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "template/template.h"

#define SVMAX 64
struct sample {
	struct template_var v[SVMAX];
	char names[SVMAX][64];
	char vals[SVMAX][96];
	size_t n;
};

static void sample_add(struct sample *s, const char *name, const char *value)
{
	assert_true(s->n < SVMAX);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	snprintf(s->vals[s->n], sizeof(s->vals[0]), "%s", value);
	s->v[s->n].name = s->names[s->n];
	s->v[s->n].value = s->vals[s->n];
	s->n++;
}

/* sample_vars - every variable of def: a text its catalogue sample, a list
 * two items "<name>-1", "<name>-2", records two records with each field
 * "<name>-<field>-<k>". */
static void sample_vars(const struct template_def *def, struct sample *s)
{
	char name[64], val[96];
	size_t i, f, k;

	s->n = 0;
	for (i = 0; i < def->nvars; i++) {
		const struct template_var_def *vd = &def->vars[i];

		if (vd->type == TEMPLATE_VAR_TEXT) {
			sample_add(s, vd->name, vd->sample);
			continue;
		}
		for (k = 1; k <= 2; k++) {
			if (vd->type == TEMPLATE_VAR_LIST) {
				snprintf(val, sizeof(val), "%s-%zu", vd->name, k);
				sample_add(s, vd->name, val);
				continue;
			}
			for (f = 0; vd->fields[f] != NULL; f++) {
				snprintf(name, sizeof(name), "%s.%s", vd->name, vd->fields[f]);
				snprintf(val, sizeof(val), "%s-%s-%zu", vd->name, vd->fields[f], k);
				sample_add(s, name, val);
			}
		}
	}
}

static char *msg_to_string(struct mime_msg *m)
{
	return g_mime_object_to_string(GMIME_OBJECT(mime_msg_get0_gmime(m)), NULL);
}

static GMimeMessage *reparse(const char *text)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(text, strlen(text));
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(st);
	assert_non_null(m);
	return m;
}

/* all_text - the decoded text of every text part, concatenated. */
static void all_text_cb(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	GString *s = data;

	(void)parent;
	if (GMIME_IS_TEXT_PART(part)) {
		char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(part));

		g_string_append(s, t);
		g_free(t);
	}
}

static char *all_text(GMimeMessage *m)
{
	GString *s = g_string_new("");

	g_mime_message_foreach(m, all_text_cb, s);
	return g_string_free(s, FALSE);
}

static void assert_7bit(const char *s, const char *what)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			fail_msg("%s: 8-bit byte in output", what);
}

static void test_factory_defaults_validate(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < TEMPLATE__COUNT; i++) {
		const struct template_def *d = template_def((enum template_id)i);
		struct sg_error err;
		enum template_id id;

		assert_non_null(d);
		if (template_validate((enum template_id)i, d->factory, strlen(d->factory), &err) < 0)
			fail_msg("factory %s: %s", d->name, err.msg);
		assert_int_equal(template_find(d->name, &id), 1);
		assert_int_equal(id, i);
	}
	assert_null(template_def(TEMPLATE__COUNT));
}

/* Every factory mail template renders with values into MIME that GMime
 * parses back with the required fields, no template syntax left, 7-bit. */
static void test_factory_defaults_render(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < TEMPLATE__COUNT; i++) {
		const struct template_def *d = template_def((enum template_id)i);
		struct template_render_opts o = {"gw.example.net", 0};
		struct sample s;
		struct sg_error err;
		struct mime_msg *m;
		GMimeMessage *back;
		char *out, *text;

		if (d->kind != TEMPLATE_KIND_MAIL)
			continue;
		sample_vars(d, &s);
		if (template_render_mail((enum template_id)i, d->factory, s.v, s.n, &o, &m, &err) < 0)
			fail_msg("%s: %s", d->name, err.msg);
		out = msg_to_string(m);
		assert_7bit(out, d->name);
		if (strstr(out, "${") != NULL || strstr(out, "<#") != NULL)
			fail_msg("%s: template syntax left in output", d->name);
		back = reparse(out);
		assert_non_null(g_mime_object_get_header(GMIME_OBJECT(back), "From"));
		assert_non_null(g_mime_object_get_header(GMIME_OBJECT(back), "To"));
		assert_non_null(g_mime_message_get_subject(back));
		assert_non_null(g_mime_object_get_header(GMIME_OBJECT(back), "Date"));
		assert_non_null(strstr(g_mime_message_get_message_id(back), "@gw.example.net"));
		assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(back), "MIME-Version"),
			"1.0");
		assert_int_equal(internet_address_list_length(
			g_mime_message_get_to(back)), 1);
		/* the list and record variables show up in the body (each item) */
		text = all_text(back);
		for (k = 0; k < d->nvars; k++) {
			char want[96];

			if (d->vars[k].type == TEMPLATE_VAR_TEXT)
				continue;
			if (d->vars[k].type == TEMPLATE_VAR_LIST)
				snprintf(want, sizeof(want), "%s-2", d->vars[k].name);
			else
				snprintf(want, sizeof(want), "%s-%s-2", d->vars[k].name,
					d->vars[k].fields[0]);
			if (strstr(text, want) == NULL)
				fail_msg("%s: body lacks '%s'", d->name, want);
		}
		if (d->attach_type != NULL)
			assert_non_null(strstr(out, d->attach_type));
		g_free(text);
		g_object_unref(back);
		g_free(out);
		mime_msg_free(&m);
	}
}

static void test_encryption_failed_content(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_ENCRYPTION_FAILED);
	struct template_var v[] = {
		{"from", "Mail Gateway <postmaster@example.com>"}, {"to", "alice@example.com"},
		{"subject", "Budget"}, {"mail_id", "18F3A2B4C5D6E7F8"},
		{"recipients", "bob@example.net"}, {"recipients", "carol@example.org"},
		{"reason", "no valid certificate"},
	};
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	char *out, *text;

	(void)state;
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, d->factory, v, 7, NULL,
		&m, &err), 0);
	out = msg_to_string(m);
	back = reparse(out);
	text = all_text(back);
	assert_non_null(strstr(text, "Reason: no valid certificate\n"));
	assert_non_null(strstr(text, "Recipients:\n  bob@example.net\n  carol@example.org\n"));
	assert_non_null(strstr(text, "Subject: Budget\nMail ID: 18F3A2B4C5D6E7F8\n"));
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(back), "Auto-Submitted"),
		"auto-generated");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(
		internet_address_list_get_address(g_mime_message_get_to(back), 0))),
		"alice@example.com");
	g_free(text);
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

/* A value with CR/LF cannot add header fields or end the header section. */
static void test_header_injection(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_ENCRYPTION_NOTIFICATION);
	struct template_var v[] = {
		{"from", "postmaster@example.com"},
		{"to", "alice@example.com\r\nBcc: evil@example.org"},
		{"subject", "Hi\r\nBcc: evil@example.org\r\n\r\ninjected body"},
		{"recipients", "bob@example.net"},
	};
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	GMimeHeaderList *hl;
	char *out, *hdr_end;
	int i, nsubj = 0;

	(void)state;
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_NOTIFICATION, d->factory, v, 4,
		NULL, &m, &err), 0);
	out = msg_to_string(m);
	back = reparse(out);
	hl = g_mime_object_get_header_list(GMIME_OBJECT(back));
	for (i = 0; i < g_mime_header_list_get_count(hl); i++) {
		const char *name = g_mime_header_get_name(g_mime_header_list_get_header_at(hl, i));

		assert_true(strcasecmp(name, "Bcc") != 0);
		nsubj += strcasecmp(name, "Subject") == 0;
	}
	assert_int_equal(nsubj, 1);
	assert_null(g_mime_message_get_bcc(back) != NULL &&
		internet_address_list_length(g_mime_message_get_bcc(back)) > 0 ? "bcc" : NULL);
	assert_string_equal(g_mime_message_get_subject(back),
		"Message sent encrypted: Hi  Bcc: evil@example.org    injected body");
	/* the header section ends at the first empty line: nothing injected
	 * there (the body may show the value on several lines: harmless) */
	hdr_end = strstr(out, "\n\n");
	assert_non_null(hdr_end);
	*hdr_end = '\0';
	assert_null(strstr(out, "\nBcc:"));
	assert_null(strstr(out, "\ninjected body"));
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

/* UTF-8 in the template and in values: encoded words, decoded back equal. */
static void test_utf8_header_rfc2047(void **state)
{
	static const char text[] =
		"From: ${from}\n"
		"To: ${to}\n"
		"Subject: Grüße: ${subject}\n"
		"MIME-Version: 1.0\n"
		"Content-Type: text/plain; charset=utf-8\n"
		"\n"
		"Betreff: ${subject}\n";
	struct template_var v[] = {
		{"from", "Jürgen Groß <jg@example.com>"}, {"to", "alice@example.com"},
		{"subject", "日本語のテスト"}, {"recipients", "x@example.net"},
	};
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	InternetAddress *from;
	char *out, *body, *subj_line;

	(void)state;
	if (template_render_mail(TEMPLATE_ENCRYPTION_NOTIFICATION, text, v, 4, NULL, &m,
		&err) < 0)
		fail_msg("%s", err.msg);
	out = msg_to_string(m);
	assert_7bit(out, "utf-8 template");
	subj_line = strstr(out, "Subject:");
	assert_non_null(subj_line);
	assert_true(strncasecmp(subj_line, "Subject: =?utf-8?", 17) == 0);
	back = reparse(out);
	assert_string_equal(g_mime_message_get_subject(back), "Grüße: 日本語のテスト");
	from = internet_address_list_get_address(g_mime_message_get_from(back), 0);
	assert_string_equal(internet_address_get_name(from), "Jürgen Groß");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(from)),
		"jg@example.com");
	body = all_text(back);
	assert_string_equal(body, "Betreff: 日本語のテスト\n");
	g_free(body);
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

static void test_html_part_escaped(void **state)
{
	static const char text[] =
		"From: ${from}\n"
		"To: ${to}\n"
		"Subject: ${subject}\n"
		"MIME-Version: 1.0\n"
		"Content-Type: multipart/alternative; boundary=\"b\"\n"
		"\n"
		"--b\n"
		"Content-Type: text/plain; charset=utf-8\n"
		"\n"
		"S=${subject}\n"
		"--b\n"
		"Content-Type: text/html; charset=utf-8\n"
		"\n"
		"<p>S=${subject}</p>\n"
		"--b--\n";
	struct template_var v[] = {
		{"from", "p@example.com"}, {"to", "a@example.com"},
		{"subject", "<script>alert(1)</script> & co"},
	};
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	char *out, *body;

	(void)state;
	if (template_render_mail(TEMPLATE_ENCRYPTION_NOTIFICATION, text, v, 3, NULL, &m,
		&err) < 0)
		fail_msg("%s", err.msg);
	out = msg_to_string(m);
	back = reparse(out);
	body = all_text(back);
	/* (the line break before a boundary belongs to the boundary) */
	assert_string_equal(body, "S=<script>alert(1)</script> & co"
		"<p>S=&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>");
	g_free(body);
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

struct bad_case {
	const char *name;
	const char *text;
	enum sg_errc code;
	const char *want;
};

#define HDR "From: ${from}\nTo: ${to}\nSubject: ${subject}\nMIME-Version: 1.0\n"

static const struct bad_case bad_cases[] = {
	{"syntax error in the body", HDR "Content-Type: text/plain\n\nline 6\nline 7 ${reason\n",
		SG_E_PARSE, "line 8, column 8: '${' without a closing '}'"},
	{"unknown variable in a field", "From: ${from}\nTo: ${to}\nSubject: ${subjekt}\n\nx\n",
		SG_E_PARSE, "line 3, column 10: unknown variable 'subjekt'"},
	{"variable in Content-Type",
		HDR "Content-Type: text/plain; charset=${reason}\n\nx\n", SG_E_PARSE,
		"field Content-Type: variables and directives are not allowed"},
	{"no From", "To: ${to}\nSubject: s\n\nx\n", SG_E_PARSE, "no From field"},
	{"no To", "From: ${from}\nSubject: s\n\nx\n", SG_E_PARSE, "no To field"},
	{"no Subject", "From: ${from}\nTo: ${to}\n\nx\n", SG_E_PARSE, "no Subject field"},
	{"directive across parts",
		HDR "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\n<#if reason>\nx\n"
		"--b\n\n</#if>\n--b--\n", SG_E_PARSE, "part 2 (text/plain): line 1, column 1: "
		"<#if> without </#if>"},
	{"not UTF-8", HDR "\n\xff\xfe\n", SG_E_PARSE, "not valid UTF-8"},
	{"unknown directive", HDR "\n<#include \"x\">\n", SG_E_PARSE,
		"line 6, column 1: unknown directive <#include>"},
};

static void test_validation_refusals(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct sg_error err;

		if (template_validate(TEMPLATE_ENCRYPTION_FAILED, c->text, strlen(c->text),
			&err) == 0)
			fail_msg("%s: accepted", c->name);
		if (err.code != c->code || strstr(err.msg, c->want) == NULL)
			fail_msg("%s: got %s '%s' want '%s'", c->name, sg_errc_name(err.code), err.msg,
				c->want);
	}
}

static void test_validation_limits(void **state)
{
	char *big = malloc(TEMPLATE_SOURCE_MAX + 2);
	const char withnul[] = "From: a\nTo: b\nSubject: c\n\nx\0y\n";
	struct sg_error err;

	(void)state;
	memset(big, 'a', TEMPLATE_SOURCE_MAX + 1);
	big[TEMPLATE_SOURCE_MAX + 1] = '\0';
	assert_int_equal(template_validate(TEMPLATE_ENCRYPTION_FAILED, big, strlen(big), &err),
		-1);
	assert_int_equal(err.code, SG_E_LIMIT);
	free(big);
	assert_int_equal(template_validate(TEMPLATE_ENCRYPTION_FAILED, withnul,
		sizeof(withnul) - 1, &err), -1);
	assert_non_null(strstr(err.msg, "NUL"));
	/* deep nesting / many parts: refused before GMime builds them */
	{
		struct sg_buf b;
		int i;

		sg_buf_init(&b, TEMPLATE_SOURCE_MAX);
		sg_buf_append_str(&b, "From: ${from}\nTo: ${to}\nSubject: s\n"
			"Content-Type: multipart/mixed; boundary=\"b0\"\n\n", NULL);
		for (i = 1; i < 400; i++)
			sg_buf_printf(&b, NULL, "--b%d\nContent-Type: multipart/mixed; "
				"boundary=\"b%d\"\n\n", i - 1, i);
		assert_int_equal(template_validate(TEMPLATE_ENCRYPTION_FAILED, b.data, b.len,
			&err), -1);
		assert_int_equal(err.code, SG_E_LIMIT);
		sg_buf_reset(&b);
		sg_buf_append_str(&b, "From: ${from}\nTo: ${to}\nSubject: s\n"
			"Content-Type: multipart/mixed; boundary=\"b0\"\n\n", NULL);
		for (i = 1; i < 12; i++)
			sg_buf_printf(&b, NULL, "--b%d\nContent-Type: multipart/mixed; "
				"boundary=\"b%d\"\n\n", i - 1, i);
		assert_int_equal(template_validate(TEMPLATE_ENCRYPTION_FAILED, b.data, b.len,
			&err), -1);
		assert_int_equal(err.code, SG_E_LIMIT);
		assert_non_null(strstr(err.msg, "levels"));
		sg_buf_deinit(&b);
	}
}

static void test_sms(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_SMS_PASSWORD);
	struct template_var v[] = {
		{"password", "Xk4pQ9"}, {"password_id", "K7QX2M"}, {"from", "alice@example.com"},
	};
	char long_text[300];
	struct sg_error err;
	char *out;

	(void)state;
	assert_int_equal(template_render_sms(TEMPLATE_SMS_PASSWORD, d->factory, v, 3, &out,
		&err), 0);
	assert_string_equal(out, "Password for the encrypted message from alice@example.com: "
		"Xk4pQ9 (ID K7QX2M)");
	free(out);
	/* without an ID the conditional part disappears */
	assert_int_equal(template_render_sms(TEMPLATE_SMS_PASSWORD, d->factory, v, 1, &out,
		&err), 0);
	assert_string_equal(out, "Password for the encrypted message from : Xk4pQ9");
	free(out);
	/* a template over 160 characters with the samples is refused on save */
	memset(long_text, 'x', 170);
	strcpy(long_text + 170, " ${password}");
	assert_int_equal(template_validate(TEMPLATE_SMS_PASSWORD, long_text, strlen(long_text),
		&err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_non_null(strstr(err.msg, "with the sample values"));
	/* 160 characters of UTF-8 (more bytes) are fine; a long value is not */
	assert_int_equal(template_validate(TEMPLATE_SMS_PASSWORD,
		"äöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöü"
		"${password}", strlen("äöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöüäöü"
		"${password}"), &err), 0);
	{
		char pw[200];
		struct template_var lv = {"password", pw};

		memset(pw, 'p', 199);
		pw[199] = '\0';
		assert_int_equal(template_render_sms(TEMPLATE_SMS_PASSWORD, d->factory, &lv, 1,
			&out, &err), -1);
		assert_int_equal(err.code, SG_E_LIMIT);
		assert_null(out);
	}
}

static void test_render_refusals(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_ENCRYPTION_FAILED);
	struct template_var bad = {"colour", "red"};
	struct sg_error err;
	struct mime_msg *m;
	char *out;

	(void)state;
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, d->factory, &bad, 1,
		NULL, &m, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_non_null(strstr(err.msg, "has no variable 'colour'"));
	assert_null(m);
	assert_int_equal(template_render_mail(TEMPLATE_SMS_PASSWORD, "x", NULL, 0, NULL, &m,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(template_render_sms(TEMPLATE_ENCRYPTION_FAILED, "x", NULL, 0, &out,
		&err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

static void test_date_and_ids(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_ENCRYPTION_FAILED);
	struct template_render_opts o = {"gw.example.net", 1700000000};
	struct sg_error err;
	struct mime_msg *m1, *m2;
	GMimeMessage *g1, *g2;

	(void)state;
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, d->factory, NULL, 0, &o,
		&m1, &err), 0);
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, d->factory, NULL, 0, &o,
		&m2, &err), 0);
	g1 = mime_msg_get0_gmime(m1);
	g2 = mime_msg_get0_gmime(m2);
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(g1), "Date"),
		"Tue, 14 Nov 2023 22:13:20 +0000");
	assert_string_not_equal(g_mime_message_get_message_id(g1),
		g_mime_message_get_message_id(g2));
	mime_msg_free(&m1);
	mime_msg_free(&m2);
}

/* template_msg_attach: the real PDF replaces the dummy, byte for byte. */
static void test_attach_replaces_placeholder(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_ENCRYPTED_PDF);
	unsigned char data[3000];
	char path[] = "/tmp/sg-test-tpl-XXXXXX";
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	GMimeMultipart *mp;
	GMimeObject *pdf = NULL;
	GMimeStream *mem;
	GByteArray *ba;
	char *out;
	size_t i;
	int fd, npdf = 0;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + i / 256);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTED_PDF, d->factory, NULL, 0, NULL,
		&m, &err), 0);
	assert_int_equal(template_msg_attach(m, "application/pdf", "Budget.pdf", fd, &err), 0);
	close(fd);  /* the message holds its own descriptor */
	out = msg_to_string(m);
	back = reparse(out);
	mp = GMIME_MULTIPART(g_mime_message_get_mime_part(back));
	assert_int_equal(g_mime_multipart_get_count(mp), 2);
	for (i = 0; i < 2; i++) {
		GMimeObject *p = g_mime_multipart_get_part(mp, (int)i);

		if (g_mime_content_type_is_type(g_mime_object_get_content_type(p), "application",
			"pdf")) {
			npdf++;
			pdf = p;
		}
	}
	assert_int_equal(npdf, 1);
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(pdf)), "Budget.pdf");
	mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(pdf)), mem);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	assert_int_equal(ba->len, sizeof(data));
	assert_memory_equal(ba->data, data, sizeof(data));
	g_object_unref(mem);
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

/* Without a placeholder the attachment is added; a single part is wrapped. */
static void test_attach_adds_part(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_ENCRYPTION_FAILED);
	char path[] = "/tmp/sg-test-tpl-XXXXXX";
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	GMimeObject *top;
	char *out;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, d->factory, NULL, 0,
		NULL, &m, &err), 0);
	assert_int_equal(template_msg_attach(m, "multipart/x", NULL, fd, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(template_msg_attach(m, "application/octet-stream", "a.bin", fd, &err),
		0);
	close(fd);
	out = msg_to_string(m);
	back = reparse(out);
	top = g_mime_message_get_mime_part(back);
	assert_true(GMIME_IS_MULTIPART(top));
	assert_int_equal(g_mime_multipart_get_count(GMIME_MULTIPART(top)), 2);
	assert_true(GMIME_IS_TEXT_PART(g_mime_multipart_get_part(GMIME_MULTIPART(top), 0)));
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(g_mime_multipart_get_part(
		GMIME_MULTIPART(top), 1))), "a.bin");
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

/* A field that renders empty is dropped; encoded words in the template are
 * decoded before the value is re-encoded. */
static void test_fields_empty_and_encoded(void **state)
{
	static const char text[] =
		"From: ${from}\n"
		"To: ${to}\n"
		"Cc: ${reason}\n"
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= ${subject}\n"
		"\n"
		"x\n";
	struct template_var v[] = {
		{"from", "p@example.com"}, {"to", "a@example.com"}, {"subject", "x"},
		{"reason", "c@example.com"},
	};
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	char *out;

	(void)state;
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, text, v, 3, NULL, &m,
		&err), 0);
	out = msg_to_string(m);
	back = reparse(out);
	assert_null(g_mime_object_get_header(GMIME_OBJECT(back), "Cc"));
	assert_string_equal(g_mime_message_get_subject(back), "Grüße x");
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, text, v, 4, NULL, &m,
		&err), 0);
	out = msg_to_string(m);
	back = reparse(out);
	assert_int_equal(internet_address_list_length(g_mime_message_get_cc(back)), 1);
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

/* Templates saved with CRLF line ends (edited on Windows) work the same. */
static void test_crlf_template(void **state)
{
	static const char text[] =
		"From: ${from}\r\n"
		"To: ${to}\r\n"
		"Subject: s\r\n"
		"\r\n"
		"Recipients:\r\n"
		"<#list recipients as r>\r\n"
		"  ${r}\r\n"
		"</#list>\r\n"
		"end\r\n";
	struct template_var v[] = {
		{"from", "p@example.com"}, {"to", "a@example.com"},
		{"recipients", "b@example.net"}, {"recipients", "c@example.net"},
	};
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	char *out, *body;

	(void)state;
	if (template_render_mail(TEMPLATE_ENCRYPTION_FAILED, text, v, 4, NULL, &m, &err) < 0)
		fail_msg("%s", err.msg);
	out = msg_to_string(m);
	back = reparse(out);
	body = all_text(back);
	/* GMime's text may keep CR; compare with CR removed */
	{
		char *r, *w;

		for (r = w = body; *r != '\0'; r++)
			if (*r != '\r')
				*w++ = *r;
		*w = '\0';
	}
	assert_string_equal(body, "Recipients:\n  b@example.net\n  c@example.net\nend\n");
	g_free(body);
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
}

/* 10,000 recipients (the policy's per-message maximum) render in one go. */
static void test_many_recipients(void **state)
{
	const struct template_def *d = template_def(TEMPLATE_ENCRYPTION_FAILED);
	enum { N = 10000 };
	struct template_var *v = calloc(N + 1, sizeof(*v));
	char (*addr)[32] = calloc(N, sizeof(*addr));
	struct sg_error err;
	struct mime_msg *m;
	GMimeMessage *back;
	char *out, *body;
	size_t i;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(addr[i], sizeof(addr[i]), "r%zu@example.net", i);
		v[i].name = "recipients";
		v[i].value = addr[i];
	}
	v[N].name = "subject";
	v[N].value = "many";
	assert_int_equal(template_render_mail(TEMPLATE_ENCRYPTION_FAILED, d->factory, v, N + 1,
		NULL, &m, &err), 0);
	out = msg_to_string(m);
	back = reparse(out);
	body = all_text(back);
	assert_non_null(strstr(body, "  r0@example.net\n  r1@example.net\n"));
	assert_non_null(strstr(body, "  r9999@example.net\n"));
	g_free(body);
	g_free(out);
	g_object_unref(back);
	mime_msg_free(&m);
	free(addr);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_factory_defaults_validate),
		cmocka_unit_test(test_factory_defaults_render),
		cmocka_unit_test(test_encryption_failed_content),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_utf8_header_rfc2047),
		cmocka_unit_test(test_html_part_escaped),
		cmocka_unit_test(test_fields_empty_and_encoded),
		cmocka_unit_test(test_crlf_template),
		cmocka_unit_test(test_many_recipients),
		cmocka_unit_test(test_validation_refusals),
		cmocka_unit_test(test_validation_limits),
		cmocka_unit_test(test_sms),
		cmocka_unit_test(test_render_refusals),
		cmocka_unit_test(test_date_and_ids),
		cmocka_unit_test(test_attach_replaces_placeholder),
		cmocka_unit_test(test_attach_adds_part),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
