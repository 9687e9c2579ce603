/*
 * mta_show.c - the listing of a settings snapshot for `sealgate mta show`:
 * "name = value" text lines or a typed JSON object (jansson). SASL passwords
 * are masked unless the caller asks for MTA_PRINT_REVEAL.
 * Any thread; reads an immutable snapshot.
 */
#include "mta_int.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define MTA_MASK "***"

/* mta_json_list - a JSON array of the strings v[0..n). */
static json_t *mta_json_list(char *const *v, size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_string(v[i]));
	return arr;
}

/* mta_json_value - d's value in s as a typed JSON value. */
static json_t *mta_json_value(const struct mta_settings *s, const struct mta_def *d)
{
	const char *base = (const char *)s;
	char *text;
	json_t *j;

	switch (d->kind) {
	case MTA_K_DOMAINS:
		return mta_json_list(s->relay_domains, s->n_relay_domains);
	case MTA_K_NETWORKS:
		return mta_json_list(s->my_networks, s->n_my_networks);
	case MTA_K_BOOL:
		return json_boolean(*(const bool *)(base + d->off));
	case MTA_K_SIZE:
		return json_integer((json_int_t)*(const uint64_t *)(base + d->off));
	case MTA_K_UINT:
	case MTA_K_DURATION:
	case MTA_K_CODE:
		return json_integer((json_int_t)*(const unsigned *)(base + d->off));
	case MTA_K_HOSTNAME:
	case MTA_K_RELAY:
	case MTA_K_TLS:
		break;
	}
	text = mta_def_format(s, d);
	j = json_string(text);
	free(text);
	return j;
}

static char *mta_format_json(const struct mta_settings *s, bool reveal)
{
	json_t *obj = json_object();
	json_t *arr = json_array();
	char *dump;
	char *out;
	size_t i;

	for (i = 0; i < mta_def_count(); i++) {
		const struct mta_def *d = mta_def_at(i);

		json_object_set_new(obj, d->name, mta_json_value(s, d));
	}
	for (i = 0; i < s->n_sasl; i++) {
		json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:s}",
			"host", s->sasl[i].host, "port", (json_int_t)s->sasl[i].port,
			"username", s->sasl[i].username,
			"password", reveal ? s->sasl[i].password : MTA_MASK));
	}
	json_object_set_new(obj, "sasl", arr);
	dump = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(obj);
	out = sg_xasprintf("%s\n", dump != NULL ? dump : "{}");
	if (dump != NULL) {
		if (reveal)
			explicit_bzero(dump, strlen(dump));
		free(dump);
	}
	return out;
}

char *mta_settings_format(const struct mta_settings *s, enum mta_print_flags flags)
{
	bool reveal = (flags & MTA_PRINT_REVEAL) != 0;
	struct sg_buf b;
	size_t i;

	if ((flags & MTA_PRINT_JSON) != 0)
		return mta_format_json(s, reveal);
	sg_buf_init(&b, SIZE_MAX / 2);
	for (i = 0; i < mta_def_count(); i++) {
		const struct mta_def *d = mta_def_at(i);
		char *v = mta_def_format(s, d);

		/* An empty list is shown as "none", the value that sets it. */
		if (*v == '\0' && (d->kind == MTA_K_DOMAINS || d->kind == MTA_K_NETWORKS))
			(void)sg_buf_printf(&b, NULL, "%s = none\n", d->name);
		else
			(void)sg_buf_printf(&b, NULL, "%s = %s\n", d->name, v);
		free(v);
	}
	for (i = 0; i < s->n_sasl; i++) {
		char *hp = mta_sasl_hostport(s->sasl[i].host, s->sasl[i].port);

		(void)sg_buf_printf(&b, NULL, "sasl.%s = %s:%s\n", hp, s->sasl[i].username,
			reveal ? s->sasl[i].password : MTA_MASK);
		free(hp);
	}
	return sg_buf_steal(&b);
}
