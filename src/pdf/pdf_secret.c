/*
 * pdf_secret.c - generated PDF passwords, password IDs, OTP derivation and
 * HMAC-protected reply links (F-PDF-3, F-PDF-5; guide §4.1.2-4.1.3, §13.2).
 *
 * Called by the pipeline (passwords for a PDF recipient, reply links) and by
 * the portal (OTP, reply-link verification). Pure functions apart from the
 * CSPRNG; safe in any thread. The algorithms are specified in pdf.h so that
 * third parties can compute OTPs; changing them breaks every issued PDF.
 * Invariant: no secret, password or MAC is logged or put into an error text.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pdf/pdf.h"

#define PDF_OTP_LABEL "sealgate-pdf-otp-v1"
#define PDF_REPLY_LABEL "sealgate-pdf-reply-v1"
#define PDF_REPLY_ADDR_MAX 998
#define PDF_MAC_LEN 32

/* pdf_alpha_fill - out[0..len) = alphabet characters from the low 5 bits of
 * CSPRNG bytes (32 divides 256, so every character is equally likely). */
static int pdf_alpha_fill(char *out, unsigned len, struct sg_error *err)
{
	unsigned char rnd[PDF_PASSWORD_MAX_LEN];
	unsigned i;

	if (sg_random_bytes(rnd, len, err) < 0)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = PDF_PASSWORD_ALPHABET[rnd[i] & 31];
	out[len] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

int pdf_password_generate(unsigned len, char *out, size_t outsz, struct sg_error *err)
{
	if (len < PDF_PASSWORD_MIN_LEN || len > PDF_PASSWORD_MAX_LEN) {
		sg_error_set(err, SG_E_INVAL, "pdf: password length %u not in %u..%u", len,
			PDF_PASSWORD_MIN_LEN, PDF_PASSWORD_MAX_LEN);
		return -1;
	}
	if (out == NULL || outsz < (size_t)len + 1) {
		sg_error_set(err, SG_E_INVAL, "pdf: password buffer too small");
		return -1;
	}
	return pdf_alpha_fill(out, len, err);
}

int pdf_password_id_new(char *out, size_t outsz, struct sg_error *err)
{
	if (out == NULL || outsz < PDF_PASSWORD_ID_LEN + 1) {
		sg_error_set(err, SG_E_INVAL, "pdf: password ID buffer too small");
		return -1;
	}
	return pdf_alpha_fill(out, PDF_PASSWORD_ID_LEN, err);
}

bool pdf_password_is_current(const char *password, int64_t date_set,
	int64_t validity_minutes, int64_t now)
{
	if (password == NULL || password[0] == '\0')
		return false;
	if (validity_minutes < 0 || date_set == 0)
		return true;
	if (validity_minutes == 0)
		return false;
	/* cap so that the product cannot overflow (about 17,000 years) */
	if (validity_minutes > INT64_C(9000000000))
		return true;
	return now < date_set + 60 * validity_minutes;
}

int pdf_password_next(const char *stored_pw, const char *stored_id,
	int64_t stored_date_set, int64_t validity_minutes, unsigned length, int64_t now,
	struct pdf_password *pw_r, struct sg_error *err)
{
	memset(pw_r, 0, sizeof(*pw_r));
	if (pdf_password_is_current(stored_pw, stored_date_set, validity_minutes, now)) {
		if (strlen(stored_pw) >= sizeof(pw_r->password)) {
			sg_error_set(err, SG_E_INVAL, "pdf: stored password too long");
			return -1;
		}
		sg_strlcpy(pw_r->password, stored_pw, sizeof(pw_r->password));
		if (stored_id != NULL)
			sg_strlcpy(pw_r->id, stored_id, sizeof(pw_r->id));
		pw_r->date_set = stored_date_set;
		return 0;
	}
	if (pdf_password_generate(length, pw_r->password, sizeof(pw_r->password), err) < 0 ||
	    pdf_password_id_new(pw_r->id, sizeof(pw_r->id), err) < 0) {
		OPENSSL_cleanse(pw_r, sizeof(*pw_r));
		return -1;
	}
	pw_r->date_set = now;
	return 1;
}

int pdf_otp_client_secret_new(char *out, size_t outsz, struct sg_error *err)
{
	unsigned char rnd[PDF_CLIENT_SECRET_LEN / 2];

	if (out == NULL || outsz < PDF_CLIENT_SECRET_LEN + 1) {
		sg_error_set(err, SG_E_INVAL, "pdf: client secret buffer too small");
		return -1;
	}
	if (sg_random_bytes(rnd, sizeof(rnd), err) < 0)
		return -1;
	sg_hex(out, rnd, sizeof(rnd));
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

/* pdf_hmac - HMAC-SHA256 over the concatenation of n (ptr, len) pieces */
static int pdf_hmac(const char *key, const void *const *parts, const size_t *lens,
	unsigned n, unsigned char mac[PDF_MAC_LEN], struct sg_error *err)
{
	EVP_MAC *alg = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t maclen = 0;
	unsigned i;
	int rc = -1;

	alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (alg == NULL)
		goto out;
	ctx = EVP_MAC_CTX_new(alg);
	if (ctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key), params))
		goto out;
	for (i = 0; i < n; i++)
		if (!EVP_MAC_update(ctx, parts[i], lens[i]))
			goto out;
	if (!EVP_MAC_final(ctx, mac, &maclen, PDF_MAC_LEN) || maclen != PDF_MAC_LEN)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		sg_error_set_openssl(err, SG_E_CRYPTO, "pdf: HMAC-SHA256");
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(alg);
	return rc;
}

int pdf_otp_derive(const char *client_secret, const char *password_id, unsigned len,
	char *out, size_t outsz, struct sg_error *err)
{
	unsigned char mac[PDF_MAC_LEN];
	const void *parts[3];
	size_t lens[3];
	unsigned i, bit, v, b;

	if (client_secret == NULL || client_secret[0] == '\0' || password_id == NULL ||
	    password_id[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "pdf: OTP needs a client secret and a password ID");
		return -1;
	}
	if (len < PDF_PASSWORD_MIN_LEN || len > PDF_PASSWORD_MAX_LEN || out == NULL ||
	    outsz < (size_t)len + 1) {
		sg_error_set(err, SG_E_INVAL, "pdf: OTP length %u not in %u..%u or buffer too small",
			len, PDF_PASSWORD_MIN_LEN, PDF_PASSWORD_MAX_LEN);
		return -1;
	}
	parts[0] = PDF_OTP_LABEL;
	lens[0] = sizeof(PDF_OTP_LABEL); /* includes the 0x00 separator */
	parts[1] = password_id;
	lens[1] = strlen(password_id);
	if (pdf_hmac(client_secret, parts, lens, 2, mac, err) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		v = 0;
		for (b = 0; b < 5; b++) {
			bit = 5 * i + b;
			v = (v << 1) | ((mac[bit / 8] >> (7 - bit % 8)) & 1u);
		}
		out[i] = PDF_PASSWORD_ALPHABET[v];
	}
	out[len] = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

/* ---------------------------------------------------------- D-2 route */

enum pdf_route pdf_route_choose(const struct pdf_route_input *in)
{
	if (pdf_password_is_current(in->password, in->password_date_set,
	    in->password_validity_minutes, in->now))
		return PDF_ROUTE_EXISTING;
	if (in->is_send_to_originator && in->has_originator)
		return PDF_ROUTE_ORIGINATOR;
	if (in->is_otp_enabled && (in->has_client_secret || in->is_client_secret_auto) &&
	    in->is_portal_enabled) {
		if (in->has_portal_password)
			return PDF_ROUTE_OTP;
		if (in->is_portal_auto_invite)
			return PDF_ROUTE_OTP_INVITE;
	}
	if (in->can_sms_send && in->can_sms_receive && in->has_phone)
		return PDF_ROUTE_SMS;
	return PDF_ROUTE_NONE;
}

const char *pdf_route_name(enum pdf_route r)
{
	switch (r) {
	case PDF_ROUTE_NONE:
		return "none";
	case PDF_ROUTE_EXISTING:
		return "existing";
	case PDF_ROUTE_ORIGINATOR:
		return "originator";
	case PDF_ROUTE_OTP:
		return "otp";
	case PDF_ROUTE_OTP_INVITE:
		return "otp_invite";
	case PDF_ROUTE_SMS:
		return "sms";
	}
	return "?";
}

/* ------------------------------------------------------------ reply links */

int64_t pdf_reply_expiry(int64_t now, int64_t validity_minutes)
{
	if (validity_minutes < 0)
		return 0;
	if (validity_minutes > INT64_C(9000000000))
		validity_minutes = INT64_C(9000000000);
	return now + 60 * validity_minutes;
}

const char *pdf_reply_status_name(enum pdf_reply_status s)
{
	switch (s) {
	case PDF_REPLY_VALID:
		return "valid";
	case PDF_REPLY_EXPIRED:
		return "expired";
	case PDF_REPLY_TAMPERED:
		return "tampered";
	}
	return "?";
}

/* pdf_reply_mac - hex MAC of (recipient, sender, expires) into hex (65 bytes) */
static int pdf_reply_mac(const char *secret, const char *recipient, const char *sender,
	int64_t expires, char hex[2 * PDF_MAC_LEN + 1], struct sg_error *err)
{
	unsigned char mac[PDF_MAC_LEN];
	char exp[24];
	const void *parts[6];
	size_t lens[6];
	static const char zero = '\0';

	snprintf(exp, sizeof(exp), "%lld", (long long)expires);
	parts[0] = PDF_REPLY_LABEL;
	lens[0] = sizeof(PDF_REPLY_LABEL); /* with the 0x00 separator */
	parts[1] = recipient;
	lens[1] = strlen(recipient);
	parts[2] = &zero;
	lens[2] = 1;
	parts[3] = sender;
	lens[3] = strlen(sender);
	parts[4] = &zero;
	lens[4] = 1;
	parts[5] = exp;
	lens[5] = strlen(exp);
	if (pdf_hmac(secret, parts, lens, 6, mac, err) < 0)
		return -1;
	sg_hex(hex, mac, sizeof(mac));
	return 0;
}

/* pdf_reply_value_ok - non-empty, bounded, no control characters */
static bool pdf_reply_value_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > PDF_REPLY_ADDR_MAX)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* pdf_pct_encode - append s percent-encoded (RFC 3986 unreserved kept) */
static int pdf_pct_encode(struct sg_buf *b, const char *s, struct sg_error *err)
{
	static const char hexd[] = "0123456789ABCDEF";
	char enc[3];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			if (sg_buf_append(b, s, 1, err) < 0)
				return -1;
			continue;
		}
		enc[0] = '%';
		enc[1] = hexd[c >> 4];
		enc[2] = hexd[c & 15];
		if (sg_buf_append(b, enc, 3, err) < 0)
			return -1;
	}
	return 0;
}

char *pdf_reply_link_make(const char *reply_url, const char *server_secret,
	const char *recipient, const char *sender, int64_t expires, struct sg_error *err)
{
	struct sg_buf b;
	char mac[2 * PDF_MAC_LEN + 1];
	size_t i;

	if (reply_url == NULL || (!sg_str_has_prefix_ci(reply_url, "https://") &&
	    !sg_str_has_prefix_ci(reply_url, "http://")) || strchr(reply_url, '#') != NULL) {
		sg_error_set(err, SG_E_INVAL, "pdf: reply URL must be http(s):// without '#'");
		return NULL;
	}
	for (i = 0; reply_url[i] != '\0'; i++) {
		unsigned char c = (unsigned char)reply_url[i];

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' ||
		    c == '\\') {
			sg_error_set(err, SG_E_INVAL, "pdf: reply URL has a character not allowed in a URL");
			return NULL;
		}
	}
	if (server_secret == NULL || server_secret[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "pdf: reply link needs the server secret");
		return NULL;
	}
	if (!pdf_reply_value_ok(recipient) || !pdf_reply_value_ok(sender) || expires < 0) {
		sg_error_set(err, SG_E_INVAL, "pdf: bad reply link recipient, sender or expiry");
		return NULL;
	}
	if (pdf_reply_mac(server_secret, recipient, sender, expires, mac, err) < 0)
		return NULL;
	sg_buf_init(&b, 16384);
	if (sg_buf_append_str(&b, reply_url, err) < 0 ||
	    sg_buf_append_str(&b, strchr(reply_url, '?') != NULL ? "&r=" : "?r=", err) < 0 ||
	    pdf_pct_encode(&b, recipient, err) < 0 || sg_buf_append_str(&b, "&s=", err) < 0 ||
	    pdf_pct_encode(&b, sender, err) < 0 ||
	    sg_buf_printf(&b, err, "&e=%lld&h=%s", (long long)expires, mac) < 0) {
		sg_buf_deinit(&b);
		return NULL;
	}
	return sg_buf_steal(&b);
}

/* pdf_hexval - value of a hex digit or -1 */
static int pdf_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* pdf_pct_decode - decode [s, s+n) strictly (bad %XX, NUL -> NULL) */
static char *pdf_pct_decode(const char *s, size_t n)
{
	char *out = sg_xmalloc(n + 1);
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= n)
				goto bad;
			hi = pdf_hexval(s[i + 1]);
			lo = pdf_hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

enum pdf_reply_status pdf_reply_link_verify(const char *url, const char *server_secret,
	int64_t now, char **recipient_r, char **sender_r, int64_t *expires_r)
{
	enum pdf_reply_status st = PDF_REPLY_TAMPERED;
	char *vals[4] = { NULL, NULL, NULL, NULL }; /* r s e h */
	static const char names[] = "rseh";
	char mac[2 * PDF_MAC_LEN + 1];
	const char *q, *p, *end, *eq;
	uint64_t exp_u = 0;
	struct sg_error err;
	unsigned i;

	if (recipient_r != NULL)
		*recipient_r = NULL;
	if (sender_r != NULL)
		*sender_r = NULL;
	if (expires_r != NULL)
		*expires_r = 0;
	if (url == NULL || server_secret == NULL || server_secret[0] == '\0')
		return PDF_REPLY_TAMPERED;
	q = strchr(url, '?');
	q = q != NULL ? q + 1 : url;
	for (p = q; *p != '\0'; p = *end == '\0' ? end : end + 1) {
		const char *hit;

		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq - p != 1)
			continue;
		hit = strchr(names, *p);
		if (hit == NULL || *p == '\0')
			continue;
		i = (unsigned)(hit - names);
		if (vals[i] != NULL)
			goto out; /* duplicate parameter */
		vals[i] = pdf_pct_decode(eq + 1, (size_t)(end - eq - 1));
		if (vals[i] == NULL)
			goto out;
	}
	for (i = 0; i < 4; i++)
		if (vals[i] == NULL)
			goto out;
	if (!pdf_reply_value_ok(vals[0]) || !pdf_reply_value_ok(vals[1]) ||
	    strlen(vals[3]) != 2 * PDF_MAC_LEN)
		goto out;
	/* canonical decimal only: the MAC covers the decimal text */
	if (sg_parse_u64(vals[2], (uint64_t)INT64_MAX, &exp_u) < 0 ||
	    (vals[2][0] == '0' && vals[2][1] != '\0'))
		goto out;
	if (pdf_reply_mac(server_secret, vals[0], vals[1], (int64_t)exp_u, mac, &err) < 0)
		goto out;
	for (i = 0; i < 2 * PDF_MAC_LEN; i++)
		vals[3][i] = (char)tolower((unsigned char)vals[3][i]);
	if (CRYPTO_memcmp(mac, vals[3], 2 * PDF_MAC_LEN) != 0)
		goto out;
	st = exp_u != 0 && now >= (int64_t)exp_u ? PDF_REPLY_EXPIRED : PDF_REPLY_VALID;
	if (recipient_r != NULL) {
		*recipient_r = vals[0];
		vals[0] = NULL;
	}
	if (sender_r != NULL) {
		*sender_r = vals[1];
		vals[1] = NULL;
	}
	if (expires_r != NULL)
		*expires_r = (int64_t)exp_u;
out:
	for (i = 0; i < 4; i++)
		free(vals[i]);
	return st;
}
