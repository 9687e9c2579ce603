/*
 * lib_error.c - the sg_error struct, error classes and the one table that maps
 * error codes to SMTP replies (Postfix cleanup_stat_map). Used by every module,
 * in every thread; no allocation on error paths (fixed-size message buffer).
 */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static const struct {
	const char *name;
	enum sg_errc_class cls;
	struct sg_smtp_status smtp;
} errc_table[SG_E__COUNT] = {
	[SG_E_OK] = {"ok", SG_EC_PERMANENT, {250, "2.0.0", "Ok"}},
	[SG_E_IO] = {"io", SG_EC_TEMPORARY,
		{451, "4.3.0", "Local error in processing"}},
	[SG_E_NOSPACE] = {"nospace", SG_EC_TEMPORARY,
		{452, "4.3.1", "Insufficient system storage"}},
	[SG_E_NOMEM] = {"nomem", SG_EC_TEMPORARY,
		{451, "4.3.0", "Local error: out of memory"}},
	[SG_E_LIMIT] = {"limit", SG_EC_PERMANENT,
		{552, "5.3.4", "Message size exceeds fixed limit"}},
	[SG_E_PARSE] = {"parse", SG_EC_PERMANENT,
		{554, "5.6.0", "Malformed message"}},
	[SG_E_CONFIG] = {"config", SG_EC_INTERNAL,
		{451, "4.3.5", "Server configuration error"}},
	[SG_E_CRYPTO] = {"crypto", SG_EC_INTERNAL,
		{451, "4.7.0", "Local cryptographic error"}},
	[SG_E_POLICY] = {"policy", SG_EC_PERMANENT,
		{554, "5.7.1", "Rejected by policy"}},
	[SG_E_STORE] = {"store", SG_EC_TEMPORARY,
		{451, "4.3.0", "Local error: database unavailable"}},
	[SG_E_NOTFOUND] = {"notfound", SG_EC_PERMANENT,
		{550, "5.1.1", "Not found"}},
	[SG_E_EXISTS] = {"exists", SG_EC_PERMANENT,
		{550, "5.0.0", "Already exists"}},
	[SG_E_INVAL] = {"inval", SG_EC_PERMANENT,
		{501, "5.5.4", "Invalid argument"}},
	[SG_E_PEER_TEMP] = {"peer-temp", SG_EC_TEMPORARY,
		{451, "4.4.1", "Next hop temporarily unavailable"}},
	[SG_E_PEER_PERM] = {"peer-perm", SG_EC_PERMANENT,
		{550, "5.0.0", "Rejected by next hop"}},
	[SG_E_INTERNAL] = {"internal", SG_EC_INTERNAL,
		{451, "4.3.0", "Internal error"}},
};

static enum sg_errc errc_checked(enum sg_errc code)
{
	if ((unsigned)code >= SG_E__COUNT)
		return SG_E_INTERNAL;
	return code;
}

const char *sg_errc_name(enum sg_errc code)
{
	return errc_table[errc_checked(code)].name;
}

enum sg_errc_class sg_errc_class(enum sg_errc code)
{
	return errc_table[errc_checked(code)].cls;
}

const struct sg_smtp_status *sg_errc_smtp(enum sg_errc code)
{
	return &errc_table[errc_checked(code)].smtp;
}

static __attribute__((format(printf, 3, 0))) void error_vset(struct sg_error *err, enum sg_errc code, const char *fmt,
	va_list ap)
{
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

void sg_error_set(struct sg_error *err, enum sg_errc code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	error_vset(err, code, fmt, ap);
	va_end(ap);
}

void sg_error_set_errno(struct sg_error *err, enum sg_errc code, int errnum,
	const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err == NULL)
		return;
	if (errnum == ENOSPC || errnum == EDQUOT)
		code = SG_E_NOSPACE;
	else if (errnum == ENOMEM)
		code = SG_E_NOMEM;
	va_start(ap, fmt);
	error_vset(err, code, fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(errnum));
}

void sg_error_set_openssl(struct sg_error *err, enum sg_errc code, const char *fmt, ...)
{
	va_list ap;
	unsigned long e;
	size_t n;
	char ebuf[160];

	if (err == NULL) {
		ERR_clear_error();
		return;
	}
	va_start(ap, fmt);
	error_vset(err, code, fmt, ap);
	va_end(ap);
	/* Report the first (root cause) error, drain the rest. */
	e = ERR_get_error();
	if (e != 0) {
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", ebuf);
	}
	ERR_clear_error();
}

void sg_error_prefix(struct sg_error *err, const char *fmt, ...)
{
	char tmp[SG_ERROR_MSG_MAX];
	char prefix[SG_ERROR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(tmp, sizeof(tmp), "%s%s", prefix, err->msg);
	memcpy(err->msg, tmp, sizeof(err->msg));
}

void sg_error_clear(struct sg_error *err)
{
	if (err == NULL)
		return;
	err->code = SG_E_OK;
	err->msg[0] = '\0';
}
