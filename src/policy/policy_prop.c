/*
 * policy_prop.c - the property catalogue (SPEC §11) as one table: name, type,
 * factory default, allowed levels, sender/recipient use, secret flag and
 * bounds; and the validator that turns an administrator's value into the
 * normalised form that is stored.
 *
 * Called by the CLI/API (set), the resolver (defaults) and the decision code.
 * Pure functions over const data; any thread.
 *
 * Invariants: every stored value went through policy_prop_validate(); error
 * messages never contain the value of a secret property.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy_int.h"

#define S POLICY_PF_SENDER
#define R POLICY_PF_RECIPIENT
#define G POLICY_PF_GLOBAL_ONLY
#define X POLICY_PF_SECRET
#define D POLICY_PF_DERIVED

#define STR_MAX 1024
#define MINUTES_MAX 5256000 /* ten years */

static const char *const ev_locality[] = {"internal", "external", NULL};
static const char *const ev_encrypt_mode[] = {"no_encryption", "allow", "mandatory", "force",
	NULL};
static const char *const ev_enc_alg[] = {"aes256", "aes192", "aes128", "aes256-gcm",
	"aes128-gcm", "3des", "rc2", "cast5", "camellia256", "camellia192", "camellia128", "seed",
	NULL};
static const char *const ev_sign_alg[] = {"sha256", "sha384", "sha512", "sha1", NULL};
static const char *const ev_sign_mode[] = {"clear", "opaque", NULL};
static const char *const ev_key_transport[] = {"pkcs1v15", "oaep", NULL};
static const char *const ev_pfx[] = {"aes256", "legacy3des", NULL};

#define DEFAULT_SUBJECT_FILTER \
	"/\\[(decrypted|signed|signed by:.*|invalid signature!)\\]$/"

/* The catalogue, indexed by enum policy_prop_id (checked by a unit test). */
static const struct policy_prop_def defs[POLICY_P__COUNT] = {
	[POLICY_P_LOCALITY] = {"locality", POLICY_T_ENUM, "external", R | S, ev_locality, 0, 0,
		16, "internal (decrypt) or external (encrypt) user"},
	[POLICY_P_ENCRYPT_MODE] = {"encrypt_mode", POLICY_T_ENUM, "allow", S | R,
		ev_encrypt_mode, 0, 0, 16, "no_encryption, allow, mandatory or force (F-POL-6)"},
	[POLICY_P_ENCRYPTION_NOTIFICATION] = {"encryption_notification", POLICY_T_BOOL, "false",
		S, NULL, 0, 0, 8, "notify the sender when a message was encrypted"},
	[POLICY_P_PASSWORD] = {"password", POLICY_T_SECRET, NULL, R | X, NULL, 0, 0, 256,
		"PDF password (static or last generated)"},
	[POLICY_P_PASSWORD_ID] = {"password_id", POLICY_T_STRING, NULL, R, NULL, 0, 0, 64,
		"ID of the last generated password"},
	[POLICY_P_PASSWORD_VALIDITY_MINUTES] = {"password_validity_minutes", POLICY_T_INT, "0",
		R, NULL, -1, MINUTES_MAX, 16, "password validity; 0 new per message, -1 never expires"},
	[POLICY_P_PASSWORD_LENGTH] = {"password_length", POLICY_T_INT, "16", R, NULL, 4, 256, 8,
		"length of generated passwords in bytes"},
	[POLICY_P_PASSWORD_DATE_SET] = {"password_date_set", POLICY_T_TIMESTAMP, NULL, R, NULL, 0,
		0, 32, "when the password was set (empty: never expires)"},
	[POLICY_P_PASSWORD_SEND_TO_ORIGINATOR] = {"password_send_to_originator", POLICY_T_BOOL,
		"false", S, NULL, 0, 0, 8, "send generated passwords to the originator"},
	[POLICY_P_OTP_ENABLED] = {"otp_enabled", POLICY_T_BOOL, "false", R, NULL, 0, 0, 8,
		"one-time-password mode for PDF"},
	[POLICY_P_OTP_CLIENT_SECRET] = {"otp_client_secret", POLICY_T_SECRET, NULL, R | X, NULL,
		0, 0, 256, "OTP client secret"},
	[POLICY_P_OTP_AUTO_CREATE_CLIENT_SECRET] = {"otp_auto_create_client_secret",
		POLICY_T_BOOL, "true", R, NULL, 0, 0, 8, "create a client secret when missing"},
	[POLICY_P_OTP_URL] = {"otp_url", POLICY_T_URL, NULL, R | D, NULL, 0, 0, STR_MAX,
		"OTP page URL (default: portal_base_url + /otp)"},
	[POLICY_P_SMIME_ALLOWED] = {"smime_allowed", POLICY_T_BOOL, "true", S | R, NULL, 0, 0, 8,
		"S/MIME signing and encryption allowed"},
	[POLICY_P_SMIME_STRICT] = {"smime_strict", POLICY_T_BOOL, "false", R, NULL, 0, 0, 8,
		"strict decryption for internal recipients (F-SMIME-3)"},
	[POLICY_P_SMIME_ONLY_SIGN_WHEN_ENCRYPT] = {"smime_only_sign_when_encrypt", POLICY_T_BOOL,
		"false", S | R, NULL, 0, 0, 8, "sign only messages that are S/MIME encrypted"},
	[POLICY_P_SMIME_MAX_SIZE] = {"smime_max_size", POLICY_T_BYTES, "52428800", S | R, NULL, 1,
		(int64_t)1 << 40, 16, "largest message that is S/MIME signed or encrypted"},
	[POLICY_P_SMIME_ENCRYPTION_ALGORITHM] = {"smime_encryption_algorithm", POLICY_T_ENUM,
		"aes256", R, ev_enc_alg, 0, 0, 16, "S/MIME content encryption algorithm"},
	[POLICY_P_SMIME_SIGNING_ALGORITHM] = {"smime_signing_algorithm", POLICY_T_ENUM, "sha256",
		R, ev_sign_alg, 0, 0, 16, "S/MIME signature digest"},
	[POLICY_P_SMIME_SIGNING_MODE] = {"smime_signing_mode", POLICY_T_ENUM, "clear", S,
		ev_sign_mode, 0, 0, 16, "clear (multipart/signed) or opaque (signed-data)"},
	[POLICY_P_SMIME_KEY_TRANSPORT] = {"smime_key_transport", POLICY_T_ENUM, "pkcs1v15", R,
		ev_key_transport, 0, 0, 16, "RSA key transport: pkcs1v15 or oaep"},
	[POLICY_P_SMIME_AUTO_SELECT_CERTIFICATES] = {"smime_auto_select_certificates",
		POLICY_T_BOOL, "true", R, NULL, 0, 0, 8, "select valid certificates automatically"},
	[POLICY_P_SMIME_ALWAYS_USE_FRESHEST_SIGNING_CERTIFICATE] = {
		"smime_always_use_freshest_signing_certificate", POLICY_T_BOOL, "false", S, NULL,
		0, 0, 8, "sign with the newest valid signing certificate"},
	[POLICY_P_SMIME_AUTO_REQUEST_CERTIFICATE] = {"smime_auto_request_certificate",
		POLICY_T_BOOL, "false", S, NULL, 0, 0, 8, "request a signing certificate when missing"},
	[POLICY_P_SMIME_ADD_USER] = {"smime_add_user", POLICY_T_BOOL, "false", R, NULL, 0, 0, 8,
		"create the user when a message is S/MIME encrypted"},
	[POLICY_P_SMIME_ENCRYPT_HEADERS] = {"smime_encrypt_headers", POLICY_T_BOOL, "false", R,
		NULL, 0, 0, 8, "protect headers inside the encrypted part"},
	[POLICY_P_SMIME_REMOVE_SIGNATURE] = {"smime_remove_signature", POLICY_T_BOOL, "false", R,
		NULL, 0, 0, 8, "remove signatures from incoming mail"},
	[POLICY_P_SMIME_SKIP_CALENDAR] = {"smime_skip_calendar", POLICY_T_BOOL, "true", S | R,
		NULL, 0, 0, 8, "do not sign/encrypt calendar messages unless required"},
	[POLICY_P_SMIME_SKIP_SIGNING_CALENDAR] = {"smime_skip_signing_calendar", POLICY_T_BOOL,
		"true", S | R, NULL, 0, 0, 8, "do not sign calendar messages"},
	[POLICY_P_SMIME_ADD_ADDITIONAL_CERTIFICATES] = {"smime_add_additional_certificates",
		POLICY_T_BOOL, "true", R, NULL, 0, 0, 8, "also encrypt for the additional certificates"},
	[POLICY_P_SUBJECT_TRIGGER] = {"subject_trigger", POLICY_T_STRING, "[encrypt]", S, NULL, 0,
		0, 256, "keyword or regex in the subject that forces encryption"},
	[POLICY_P_SUBJECT_TRIGGER_ENABLED] = {"subject_trigger_enabled", POLICY_T_BOOL, "false",
		S, NULL, 0, 0, 8, "subject trigger active"},
	[POLICY_P_SUBJECT_TRIGGER_IS_REGEX] = {"subject_trigger_is_regex", POLICY_T_BOOL, "false",
		S, NULL, 0, 0, 8, "subject trigger is a PCRE2 regex (Java-style flags)"},
	[POLICY_P_SUBJECT_TRIGGER_REMOVE_MATCH] = {"subject_trigger_remove_match", POLICY_T_BOOL,
		"true", S, NULL, 0, 0, 8, "remove the trigger from the subject"},
	[POLICY_P_FORCE_ENCRYPT_ALLOWED] = {"force_encrypt_allowed", POLICY_T_BOOL, "false", S,
		NULL, 0, 0, 8, "honour the force-encrypt header trigger"},
	[POLICY_P_FORCE_ENCRYPT_TRIGGER] = {"force_encrypt_trigger", POLICY_T_TRIGGER,
		"X-Sealgate-Encrypt", S, NULL, 0, 0, POLICY_REGEX_MAX + 80, "HEADER[:REGEX]"},
	[POLICY_P_FORCE_SIGNING_ALLOWED] = {"force_signing_allowed", POLICY_T_BOOL, "false", S,
		NULL, 0, 0, 8, "honour the force-sign header trigger"},
	[POLICY_P_FORCE_SIGNING_TRIGGER] = {"force_signing_trigger", POLICY_T_TRIGGER,
		"X-Sealgate-Sign", S, NULL, 0, 0, POLICY_REGEX_MAX + 80, "HEADER[:REGEX]"},
	[POLICY_P_PDF_ENCRYPTION_ALLOWED] = {"pdf_encryption_allowed", POLICY_T_BOOL, "true",
		S | R, NULL, 0, 0, 8, "PDF encryption allowed"},
	[POLICY_P_PDF_MAX_SIZE] = {"pdf_max_size", POLICY_T_BYTES, "26214400", S | R, NULL, 1,
		(int64_t)1 << 40, 16, "largest message converted to PDF"},
	[POLICY_P_PDF_ONLY_IF_MANDATORY] = {"pdf_only_if_mandatory", POLICY_T_BOOL, "false",
		S | R, NULL, 0, 0, 8, "PDF only when encryption is required"},
	[POLICY_P_PDF_SIGN_EMAIL] = {"pdf_sign_email", POLICY_T_BOOL, "false", S, NULL, 0, 0, 8,
		"S/MIME sign the message carrying the PDF"},
	[POLICY_P_PDF_REPLY_ALLOWED] = {"pdf_reply_allowed", POLICY_T_BOOL, "true", S | R, NULL,
		0, 0, 8, "reply link in the PDF"},
	[POLICY_P_PDF_REPLY_VALIDITY_MINUTES] = {"pdf_reply_validity_minutes", POLICY_T_INT,
		"20160", S, NULL, 1, MINUTES_MAX, 16, "reply link validity"},
	[POLICY_P_PDF_REPLY_URL] = {"pdf_reply_url", POLICY_T_URL, NULL, S | D, NULL, 0, 0,
		STR_MAX, "reply page URL (default: portal_base_url + /reply)"},
	[POLICY_P_PDF_REPLY_SENDER] = {"pdf_reply_sender", POLICY_T_ADDRESS, NULL, S, NULL, 0, 0,
		POLICY_ADDR_MAX, "envelope sender of portal replies"},
	[POLICY_P_ADD_SECURITY_INFO] = {"add_security_info", POLICY_T_BOOL, "false", R, NULL, 0,
		0, 8, "add security tags to the subject of incoming mail"},
	[POLICY_P_SECURITY_INFO_DECRYPTED_TAG] = {"security_info_decrypted_tag", POLICY_T_STRING,
		"[decrypted]", R | G, NULL, 0, 0, 128, "subject tag of decrypted mail"},
	[POLICY_P_SECURITY_INFO_SIGNED_TAG] = {"security_info_signed_tag", POLICY_T_STRING,
		"[signed]", R | G, NULL, 0, 0, 128, "subject tag of validly signed mail"},
	[POLICY_P_SECURITY_INFO_SIGNED_BY_TAG] = {"security_info_signed_by_tag", POLICY_T_STRING,
		"[signed by: %s]", R | G, NULL, 0, 0, 128, "tag when the signer differs (%s = signer)"},
	[POLICY_P_SECURITY_INFO_INVALID_SIGNATURE_TAG] = {"security_info_invalid_signature_tag",
		POLICY_T_STRING, "[invalid signature!]", R | G, NULL, 0, 0, 128,
		"subject tag of an invalid signature"},
	[POLICY_P_SUBJECT_FILTER_ENABLED] = {"subject_filter_enabled", POLICY_T_BOOL, "false", R,
		NULL, 0, 0, 8, "filter the subject of incoming mail"},
	[POLICY_P_SUBJECT_FILTER] = {"subject_filter", POLICY_T_FILTER, DEFAULT_SUBJECT_FILTER,
		R | G, NULL, 0, 0, POLICY_REGEX_MAX + 260, "/REGEX/ VALUE"},
	[POLICY_P_SERVER_SECRET] = {"server_secret", POLICY_T_SECRET, NULL, G | X, NULL, 0, 0,
		256, "HMAC secret (generated by init)"},
	[POLICY_P_SMS_PHONE_NUMBER] = {"sms_phone_number", POLICY_T_PHONE, NULL, R, NULL, 0, 0,
		32, "phone number in international format"},
	[POLICY_P_SMS_SEND_ALLOWED] = {"sms_send_allowed", POLICY_T_BOOL, "true", S, NULL, 0, 0,
		8, "sender may send SMS"},
	[POLICY_P_SMS_RECEIVE_ALLOWED] = {"sms_receive_allowed", POLICY_T_BOOL, "true", R, NULL,
		0, 0, 8, "recipient may receive SMS"},
	[POLICY_P_SMS_PHONE_NUMBER_IN_SUBJECT_ALLOWED] = {"sms_phone_number_in_subject_allowed",
		POLICY_T_BOOL, "false", S, NULL, 0, 0, 8, "phone number after the subject trigger"},
	[POLICY_P_SMS_DEFAULT_COUNTRY_CODE] = {"sms_default_country_code", POLICY_T_COUNTRY,
		NULL, S, NULL, 0, 0, 8, "country code for subject numbers starting with 0"},
	[POLICY_P_PORTAL_PASSWORD] = {"portal_password", POLICY_T_HASH, NULL, R | X, NULL, 0, 0,
		512, "portal login (Argon2id hash)"},
	[POLICY_P_PORTAL_ENABLED] = {"portal_enabled", POLICY_T_BOOL, "false", R, NULL, 0, 0, 8,
		"user may log in to the portal"},
	[POLICY_P_PORTAL_AUTO_INVITE] = {"portal_auto_invite", POLICY_T_BOOL, "false", R, NULL, 0,
		0, 8, "invite users without a portal password"},
	[POLICY_P_PORTAL_BASE_URL] = {"portal_base_url", POLICY_T_URL,
		"https://localhost:8443/portal", G, NULL, 0, 0, STR_MAX, "external portal URL"},
	[POLICY_P_LAST_USED_PFX_PASSWORD] = {"last_used_pfx_password", POLICY_T_SECRET, NULL,
		R | X, NULL, 0, 0, 256, "password of the last PFX sent"},
	[POLICY_P_DLP_ENABLED] = {"dlp_enabled", POLICY_T_BOOL, "false", S, NULL, 0, 0, 8,
		"scan outgoing mail with DLP"},
	[POLICY_P_SYSTEM_MAIL_FROM] = {"system_mail_from", POLICY_T_ADDRESS, NULL, G | D, NULL, 0,
		0, POLICY_ADDR_MAX, "From of generated mail (default postmaster@<hostname>)"},
	[POLICY_P_CRL_REQUIRED] = {"crl_required", POLICY_T_BOOL, "false", G, NULL, 0, 0, 8,
		"no current CRL makes a certificate invalid"},
	[POLICY_P_PFX_ENCRYPTION] = {"pfx_encryption", POLICY_T_ENUM, "aes256", R, ev_pfx, 0, 0,
		16, "PKCS#12 encryption: aes256 or legacy3des"},
};

static const char *const level_names[] = {"factory", "global", "wildcard", "domain", "user"};

const char *policy_level_name(enum policy_level level)
{
	if ((unsigned)level > POLICY_LEVEL_USER)
		return "?";
	return level_names[level];
}

const struct policy_prop_def *policy_prop_def(enum policy_prop_id id)
{
	if ((unsigned)id >= POLICY_P__COUNT)
		return NULL;
	return &defs[id];
}

int policy_prop_find(const char *name, enum policy_prop_id *id_r)
{
	unsigned i;

	if (name == NULL)
		return 0;
	for (i = 0; i < POLICY_P__COUNT; i++) {
		if (strcmp(defs[i].name, name) == 0) {
			*id_r = (enum policy_prop_id)i;
			return 1;
		}
	}
	return 0;
}

/* policy_derived_compute - otp_url, pdf_reply_url from the effective base URL
 * of the global entry, system_mail_from from the host name. */
void policy_derived_compute(struct policy_entry *g, const char *hostname)
{
	const char *base = defs[POLICY_P_PORTAL_BASE_URL].def;
	size_t i, len;

	for (i = 0; i < g->n; i++) {
		if (g->vals[i].id == POLICY_P_PORTAL_BASE_URL)
			base = g->vals[i].value;
	}
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	g->derived[POLICY_DV_OTP_URL] = sg_xasprintf("%.*s/otp", (int)len, base);
	g->derived[POLICY_DV_PDF_REPLY_URL] = sg_xasprintf("%.*s/reply", (int)len, base);
	g->derived[POLICY_DV_SYSTEM_MAIL_FROM] = sg_xasprintf("postmaster@%s",
		hostname != NULL && *hostname != '\0' ? hostname : "localhost");
}

/* has_ctl - any byte < 0x20 or 0x7f */
static bool has_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* utf8_is_valid - well-formed UTF-8 without overlongs or surrogates */
static bool utf8_is_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		unsigned c = *p, n, cp, i;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
			(cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

static int check_url(const char *v)
{
	const char *host;

	if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else
		return -1;
	if (*host == '\0' || *host == '/' || strpbrk(v, " \"<>\\^`{|}") != NULL)
		return -1;
	return has_ctl(v) ? -1 : 0;
}

/* parse_timestamp - epoch seconds or "YYYY-MM-DDTHH:MM:SSZ" */
static int parse_timestamp(const char *v, int64_t *t_r)
{
	struct tm tm;
	const char *end;
	int64_t t;

	if (sg_parse_i64(v, 0, (int64_t)253402300799, &t) == 0) {
		*t_r = t;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL || strcmp(end, "Z") != 0)
		return -1;
	t = (int64_t)timegm(&tm);
	if (t < 0)
		return -1;
	*t_r = t;
	return 0;
}

/* norm_phone - "+31 (6) 123-45678" style E.164 for stored numbers */
static int norm_phone(const char *v, char *out, size_t outsz)
{
	size_t digits = 0, o = 0;

	if (*v != '+' || outsz < 18)
		return -1;
	out[o++] = '+';
	for (v++; *v != '\0'; v++) {
		if (*v >= '0' && *v <= '9') {
			if (++digits > 15)
				return -1;
			out[o++] = *v;
		} else if (strchr(" -()", *v) == NULL) {
			return -1;
		}
	}
	out[o] = '\0';
	return digits >= 6 && out[1] != '0' ? 0 : -1;
}

/* check_signed_by - exactly one "%s" and no other '%' conversion */
static int check_signed_by(const char *v)
{
	unsigned n = 0;

	for (; *v != '\0'; v++) {
		if (*v != '%')
			continue;
		if (v[1] == 's')
			n++;
		else if (v[1] != '%')
			return -1;
		v++;
	}
	return n == 1 ? 0 : -1;
}

/* validate_typed - type-specific check of v; writes the normal form */
static int validate_typed(const struct policy_prop_def *d, const char *v, char **norm_r,
	struct sg_error *err)
{
	char buf[POLICY_ADDR_MAX + 64];
	const char *bad = NULL;
	bool b;
	int64_t i64;
	uint64_t u64;
	size_t k;

	switch (d->type) {
	case POLICY_T_BOOL:
		if (sg_parse_bool(v, &b) < 0) {
			bad = "want true or false";
			break;
		}
		*norm_r = sg_xstrdup(b ? "true" : "false");
		return 0;
	case POLICY_T_INT:
		if (sg_parse_i64(v, d->min, d->max, &i64) < 0) {
			sg_error_set(err, SG_E_INVAL, "%s: want an integer from %lld to %lld",
				d->name, (long long)d->min, (long long)d->max);
			return -1;
		}
		*norm_r = sg_xasprintf("%lld", (long long)i64);
		return 0;
	case POLICY_T_BYTES:
		if (sg_parse_size(v, &u64) < 0 || u64 < (uint64_t)d->min ||
			u64 > (uint64_t)d->max) {
			sg_error_set(err, SG_E_INVAL,
				"%s: want a size in bytes from %lld to %lld (suffix k, M, G allowed)",
				d->name, (long long)d->min, (long long)d->max);
			return -1;
		}
		*norm_r = sg_xasprintf("%llu", (unsigned long long)u64);
		return 0;
	case POLICY_T_ENUM:
		for (k = 0; d->enum_values[k] != NULL; k++) {
			if (strcasecmp(d->enum_values[k], v) == 0) {
				*norm_r = sg_xstrdup(d->enum_values[k]);
				return 0;
			}
		}
		{
			struct sg_buf lst;

			sg_buf_init(&lst, 512);
			for (k = 0; d->enum_values[k] != NULL; k++)
				sg_buf_printf(&lst, NULL, "%s%s", k ? ", " : "", d->enum_values[k]);
			sg_error_set(err, SG_E_INVAL, "%s: want one of %s", d->name,
				lst.data != NULL ? lst.data : "");
			sg_buf_deinit(&lst);
		}
		return -1;
	case POLICY_T_STRING:
	case POLICY_T_SECRET:
		if (has_ctl(v) || !utf8_is_valid(v)) {
			bad = "control characters or invalid UTF-8";
			break;
		}
		if (d - defs == POLICY_P_SECURITY_INFO_SIGNED_BY_TAG && check_signed_by(v) < 0) {
			bad = "must contain exactly one %s (and %% for a literal %)";
			break;
		}
		if (d - defs == POLICY_P_SUBJECT_TRIGGER && *v == '\0') {
			bad = "empty trigger";
			break;
		}
		if (d - defs == POLICY_P_SERVER_SECRET && strlen(v) < 16) {
			bad = "too short (at least 16 characters)";
			break;
		}
		*norm_r = sg_xstrdup(v);
		return 0;
	case POLICY_T_HASH:
		if (strncmp(v, "$argon2id$", 10) != 0 || has_ctl(v) || strchr(v, ' ') != NULL) {
			bad = "want an Argon2id encoded hash ($argon2id$...)";
			break;
		}
		*norm_r = sg_xstrdup(v);
		return 0;
	case POLICY_T_URL:
		if (check_url(v) < 0) {
			bad = "want an http:// or https:// URL";
			break;
		}
		*norm_r = sg_xstrdup(v);
		return 0;
	case POLICY_T_ADDRESS:
		if (policy_addr_normalize(v, buf, sizeof(buf), err) < 0) {
			sg_error_prefix(err, "%s: ", d->name);
			return -1;
		}
		*norm_r = sg_xstrdup(buf);
		return 0;
	case POLICY_T_TRIGGER: {
		struct policy_header_trigger *t = policy_header_trigger_parse(v, err);

		if (t == NULL) {
			sg_error_prefix(err, "%s: ", d->name);
			return -1;
		}
		policy_header_trigger_free(&t);
		*norm_r = sg_xstrdup(v);
		return 0;
	}
	case POLICY_T_FILTER: {
		struct policy_subject_filter *f = policy_subject_filter_parse(v, err);

		if (f == NULL) {
			sg_error_prefix(err, "%s: ", d->name);
			return -1;
		}
		policy_subject_filter_free(&f);
		*norm_r = sg_xstrdup(v);
		return 0;
	}
	case POLICY_T_TIMESTAMP:
		if (parse_timestamp(v, &i64) < 0) {
			bad = "want YYYY-MM-DDTHH:MM:SSZ or seconds since the epoch";
			break;
		}
		sg_time_iso8601(i64, buf, sizeof(buf));
		*norm_r = sg_xstrdup(buf);
		return 0;
	case POLICY_T_PHONE:
		if (norm_phone(v, buf, sizeof(buf)) < 0) {
			bad = "want an international number: + then 6 to 15 digits";
			break;
		}
		*norm_r = sg_xstrdup(buf);
		return 0;
	case POLICY_T_COUNTRY:
		if (*v == '+')
			v++;
		if (sg_parse_u64(v, 999, &u64) < 0 || *v == '0' || strlen(v) > 3) {
			bad = "want a country calling code of 1 to 3 digits";
			break;
		}
		*norm_r = sg_xasprintf("%llu", (unsigned long long)u64);
		return 0;
	}
	if (bad == NULL)
		bad = "unsupported type";
	sg_error_set(err, SG_E_INVAL, "%s: bad value: %s", d->name, bad);
	return -1;
}

int policy_prop_validate(enum policy_prop_id id, const char *value, enum policy_level level,
	char **norm_r, struct sg_error *err)
{
	const struct policy_prop_def *d = policy_prop_def(id);
	char *tmp = NULL;
	int rc;

	*norm_r = NULL;
	if (d == NULL) {
		sg_error_set(err, SG_E_INVAL, "unknown property");
		return -1;
	}
	if ((d->flags & POLICY_PF_GLOBAL_ONLY) && level != POLICY_LEVEL_GLOBAL) {
		sg_error_set(err, SG_E_INVAL, "%s can only be set at the global level", d->name);
		return -1;
	}
	if (level == POLICY_LEVEL_FACTORY) {
		sg_error_set(err, SG_E_INVAL, "%s: the factory level is read-only", d->name);
		return -1;
	}
	if (value == NULL || strlen(value) > d->max_len) {
		sg_error_set(err, SG_E_INVAL, "%s: value %s (at most %zu bytes)", d->name,
			value == NULL ? "missing" : "too long", d->max_len);
		return -1;
	}
	tmp = sg_xstrdup(value);
	/* Surrounding blanks are never meaningful except in strings/secrets. */
	if (d->type != POLICY_T_STRING && d->type != POLICY_T_SECRET)
		policy_trim_ws(tmp);
	if (*tmp == '\0' && d->type != POLICY_T_STRING) {
		sg_error_set(err, SG_E_INVAL, "%s: empty value (use unset to inherit)", d->name);
		free(tmp);
		return -1;
	}
	rc = validate_typed(d, tmp, norm_r, err);
	free(tmp);
	return rc;
}
