/*
 * sms_int.h - shared inside src/sms/ only: placeholder expansion of the HTTP
 * parameter template (used by the settings validation and the transport, so
 * that what `sms settings set` accepts is exactly what the transport sends).
 */
#ifndef SG_SMS_INT_H
#define SG_SMS_INT_H

#include "sms.h"

#define SMS_KEY_PREFIX "sms."
#define SMS_PARAMS_MAX 64        /* parameters in http.params */
#define SMS_VALUE_MAX 4096       /* bytes of one setting value */

/* Values for the placeholders of http.params. All borrowed, never NULL. */
struct sms_vars {
	const char *number;         /* E.164 with '+' */
	const char *number_digits;  /* without '+' */
	const char *text;
	const char *username;
	const char *password;
	const char *api_id;
	const char *from;
	const char *id;
};

/*
 * sms_params_expand - expand tmpl ("name=value&...") with v into the
 * form-encoded string out (each name and value URL-encoded after
 * substitution; "name=${x}" with x empty is left out). 0 ok, -1 err
 * (SG_E_INVAL: unknown placeholder, unterminated "${", a parameter without
 * '=' or name; SG_E_LIMIT: out's cap).
 */
int sms_params_expand(const char *tmpl, const struct sms_vars *v, struct sg_buf *out,
	struct sg_error *err);

#endif
