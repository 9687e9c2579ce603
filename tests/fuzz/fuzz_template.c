/*
 * fuzz_template.c - libFuzzer target for templates (F-TPL-1): the first byte
 * picks the template, the rest is the template text. It is validated and, if
 * valid, rendered with hostile values (CR/LF with a header line, invalid
 * UTF-8, HTML, list items and records). Oracle besides the sanitizers: no
 * value may add a field to the rendered message's header section (unless the
 * template itself has such a field).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"

#define EVIL "x\r\nX-Injected: 1\r\n\r\n<b>&\xff\xfe"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	const struct template_def *d;
	struct template_var vars[64];
	char names[64][TEMPLATE_NAME_MAX * 2];
	struct sg_error err;
	struct mime_msg *m = NULL;
	enum template_id id;
	size_t i, f, n = 0;
	char *text, *out = NULL;

	if (!initialised) {
		g_mime_init();
		initialised = 1;
	}
	if (size < 1 || size > TEMPLATE_SOURCE_MAX + 2)
		return 0;
	id = (enum template_id)(data[0] % TEMPLATE__COUNT);
	d = template_def(id);
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (template_validate(id, text, size - 1, &err) < 0 || strlen(text) != size - 1)
		goto out;
	for (i = 0; i < d->nvars && n + 8 < 64; i++) {
		const struct template_var_def *v = &d->vars[i];
		size_t k;

		for (k = 0; k < (v->type == TEMPLATE_VAR_TEXT ? 1u : 2u); k++) {
			if (v->type != TEMPLATE_VAR_RECORDS) {
				vars[n].name = v->name;
				vars[n++].value = EVIL;
				continue;
			}
			for (f = 0; v->fields[f] != NULL && n < 63; f++) {
				snprintf(names[n], sizeof(names[n]), "%s.%s", v->name, v->fields[f]);
				vars[n].name = names[n];
				vars[n++].value = EVIL;
			}
		}
	}
	if (d->kind == TEMPLATE_KIND_SMS) {
		if (template_render_sms(id, text, vars, n, &out, &err) == 0)
			free(out);
		goto out;
	}
	if (template_render_mail(id, text, vars, n, NULL, &m, &err) == 0) {
		char *s = g_mime_object_to_string(GMIME_OBJECT(mime_msg_get0_gmime(m)), NULL);
		char *end = strstr(s, "\n\n");

		if (end != NULL)
			*end = '\0';
		/* (a field the template itself writes is not an injection) */
		if (strcasestr(text, "X-Injected") == NULL &&
			strcasestr(s, "\nX-Injected:") != NULL)
			abort();
		g_free(s);
		mime_msg_free(&m);
	}
out:
	free(text);
	return 0;
}
