/*
 * pdf_secret.c - generated PDF passwords, password IDs, OTP derivation and
 * HMAC-protected portal links: reply links and OTP invitation links
 * (F-PDF-3, F-PDF-5, F-PORTAL-2; guide §4.1.2-4.1.3, §13.2).
 *
 * Called by the pipeline (passwords for a PDF recipient, reply and invite
 * links) and by the portal (OTP, link verification). Pure functions apart from the
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
#define PDF_INVITE_LABEL "sealgate-pdf-invite-v1"
#define PDF_LINK_VALUE_MAX 998
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

/* ------------------------------------------------------- signed links */

/* One purpose of a signed link (the format is in pdf.h). */
struct pdf_link_kind {
	const char *label;    /* MAC label, the purpose */
	const char *purpose;  /* value of p=, NULL = no p parameter (reply) */
	char name1, name2;    /* parameter names of FIELD1, FIELD2 */
	bool is_eternal_ok;   /* expires 0 (never) allowed */
};

static const struct pdf_link_kind pdf_link_reply = {
	PDF_REPLY_LABEL, NULL, 'r', 's', true,
};
static const struct pdf_link_kind pdf_link_invite = {
	PDF_INVITE_LABEL, "invite", 'r', 'i', false,
};

/* Parameters a link may carry; the index is the slot in pdf_link_parsed. */
static const char pdf_link_names[] = "prsieh";

struct pdf_link_parsed {
	char *vals[6];  /* decoded values in the order of pdf_link_names, NULL = absent */
};

static int64_t pdf_minutes_after(int64_t now, int64_t validity_minutes)
{
	/* cap so that the product cannot overflow (about 17,000 years) */
	if (validity_minutes > INT64_C(9000000000))
		validity_minutes = INT64_C(9000000000);
	return now + 60 * validity_minutes;
}

int64_t pdf_reply_expiry(int64_t now, int64_t validity_minutes)
{
	if (validity_minutes < 0)
		return 0;
	return pdf_minutes_after(now, validity_minutes);
}

int64_t pdf_invite_expiry(int64_t now, int64_t validity_minutes)
{
	return pdf_minutes_after(now, validity_minutes > 0 ? validity_minutes :
		PDF_INVITE_VALIDITY_MINUTES);
}

const char *pdf_link_status_name(enum pdf_link_status s)
{
	switch (s) {
	case PDF_LINK_VALID:
		return "valid";
	case PDF_LINK_EXPIRED:
		return "expired";
	case PDF_LINK_TAMPERED:
		return "tampered";
	case PDF_LINK_WRONG_PURPOSE:
		return "wrong_purpose";
	}
	return "?";
}

/* pdf_link_mac - hex MAC of (field1, field2, expires) for kind into hex */
static int pdf_link_mac(const struct pdf_link_kind *kind, const char *secret,
	const char *f1, const char *f2, int64_t expires, char hex[2 * PDF_MAC_LEN + 1],
	struct sg_error *err)
{
	unsigned char mac[PDF_MAC_LEN];
	char exp[24];
	const void *parts[6];
	size_t lens[6];
	static const char zero = '\0';

	snprintf(exp, sizeof(exp), "%lld", (long long)expires);
	parts[0] = kind->label;
	lens[0] = strlen(kind->label) + 1; /* with the 0x00 separator */
	parts[1] = f1;
	lens[1] = strlen(f1);
	parts[2] = &zero;
	lens[2] = 1;
	parts[3] = f2;
	lens[3] = strlen(f2);
	parts[4] = &zero;
	lens[4] = 1;
	parts[5] = exp;
	lens[5] = strlen(exp);
	if (pdf_hmac(secret, parts, lens, 6, mac, err) < 0)
		return -1;
	sg_hex(hex, mac, sizeof(mac));
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

/* pdf_link_value_ok - non-empty, bounded, no control characters */
static bool pdf_link_value_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > PDF_LINK_VALUE_MAX)
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

/* pdf_link_url_ok - an http(s) URL of printable ASCII without '#' and
 * without characters that would break out of an HTML attribute */
static bool pdf_link_url_ok(const char *url)
{
	size_t i;

	if (url == NULL || (!sg_str_has_prefix_ci(url, "https://") &&
	    !sg_str_has_prefix_ci(url, "http://")) || strchr(url, '#') != NULL)
		return false;
	for (i = 0; url[i] != '\0'; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' ||
		    c == '\\')
			return false;
	}
	return true;
}

/* pdf_link_make - base URL plus the signed parameters of kind */
static char *pdf_link_make(const struct pdf_link_kind *kind, const char *base,
	const char *secret, const char *f1, const char *f2, int64_t expires,
	struct sg_error *err)
{
	struct sg_buf b;
	char mac[2 * PDF_MAC_LEN + 1];
	char sep = strchr(base, '?') != NULL ? '&' : '?';

	if (pdf_link_mac(kind, secret, f1, f2, expires, mac, err) < 0)
		return NULL;
	sg_buf_init(&b, 16384);
	if (sg_buf_append_str(&b, base, err) < 0 ||
	    (kind->purpose != NULL && sg_buf_printf(&b, err, "%cp=%s", sep, kind->purpose) < 0) ||
	    sg_buf_printf(&b, err, "%c%c=", kind->purpose != NULL ? '&' : sep, kind->name1) < 0 ||
	    pdf_pct_encode(&b, f1, err) < 0 || sg_buf_printf(&b, err, "&%c=", kind->name2) < 0 ||
	    pdf_pct_encode(&b, f2, err) < 0 ||
	    sg_buf_printf(&b, err, "&e=%lld&h=%s", (long long)expires, mac) < 0) {
		sg_buf_deinit(&b);
		return NULL;
	}
	return sg_buf_steal(&b);
}

/* pdf_link_make_checked - argument checks shared by both make functions */
static char *pdf_link_make_checked(const struct pdf_link_kind *kind, const char *what,
	const char *base, const char *secret, const char *f1, const char *f2,
	int64_t expires, struct sg_error *err)
{
	if (!pdf_link_url_ok(base)) {
		sg_error_set(err, SG_E_INVAL, "pdf: %s URL must be http(s):// of printable "
			"characters without '#'", what);
		return NULL;
	}
	if (secret == NULL || secret[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "pdf: %s link needs the server secret", what);
		return NULL;
	}
	if (!pdf_link_value_ok(f1) || !pdf_link_value_ok(f2) || expires < 0 ||
	    (expires == 0 && !kind->is_eternal_ok)) {
		sg_error_set(err, SG_E_INVAL, "pdf: bad %s link value or expiry", what);
		return NULL;
	}
	return pdf_link_make(kind, base, secret, f1, f2, expires, err);
}

char *pdf_reply_link_make(const char *reply_url, const char *server_secret,
	const char *recipient, const char *sender, int64_t expires, struct sg_error *err)
{
	return pdf_link_make_checked(&pdf_link_reply, "reply", reply_url, server_secret,
		recipient, sender, expires, err);
}

char *pdf_invite_link_make(const char *invite_url, const char *server_secret,
	const char *recipient, const char *password_id, int64_t expires,
	struct sg_error *err)
{
	return pdf_link_make_checked(&pdf_link_invite, "invite", invite_url, server_secret,
		recipient, password_id, expires, err);
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

static void pdf_link_parsed_free(struct pdf_link_parsed *lp)
{
	unsigned i;

	for (i = 0; i < 6; i++) {
		free(lp->vals[i]);
		lp->vals[i] = NULL;
	}
}

/* pdf_link_parse - the known parameters of url (or its query) into lp.
 * 0, or -1 (duplicate parameter, bad escape) with lp freed. */
static int pdf_link_parse(const char *url, struct pdf_link_parsed *lp)
{
	const char *q, *p, *end, *eq, *hit;
	unsigned i;

	memset(lp, 0, sizeof(*lp));
	q = strchr(url, '?');
	q = q != NULL ? q + 1 : url;
	for (p = q; *p != '\0'; p = *end == '\0' ? end : end + 1) {
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq - p != 1)
			continue;
		hit = strchr(pdf_link_names, *p);
		if (hit == NULL)
			continue;
		i = (unsigned)(hit - pdf_link_names);
		if (lp->vals[i] != NULL)
			goto bad; /* duplicate parameter */
		lp->vals[i] = pdf_pct_decode(eq + 1, (size_t)(end - eq - 1));
		if (lp->vals[i] == NULL)
			goto bad;
	}
	return 0;
bad:
	pdf_link_parsed_free(lp);
	return -1;
}

/* pdf_link_val - the parsed value of parameter name */
static char **pdf_link_val(struct pdf_link_parsed *lp, char name)
{
	return &lp->vals[strchr(pdf_link_names, name) - pdf_link_names];
}

/* pdf_link_kind_of - the purpose a parsed link claims: p=invite is an
 * invitation, anything else a reply link (whose p is not its own) */
static const struct pdf_link_kind *pdf_link_kind_of(struct pdf_link_parsed *lp)
{
	const char *p = *pdf_link_val(lp, 'p');

	return p != NULL && strcmp(p, "invite") == 0 ? &pdf_link_invite : &pdf_link_reply;
}

/* pdf_link_check - the MAC and expiry of lp as a link of kind: VALID,
 * EXPIRED or TAMPERED; *expires_r on VALID and EXPIRED */
static enum pdf_link_status pdf_link_check(const struct pdf_link_kind *kind,
	struct pdf_link_parsed *lp, const char *secret, int64_t now, int64_t *expires_r)
{
	const char *f1 = *pdf_link_val(lp, kind->name1), *f2 = *pdf_link_val(lp, kind->name2);
	const char *e = *pdf_link_val(lp, 'e');
	char *h = *pdf_link_val(lp, 'h');
	char mac[2 * PDF_MAC_LEN + 1];
	uint64_t exp_u = 0;
	struct sg_error err;
	size_t i;
	int diff;

	if (!pdf_link_value_ok(f1) || !pdf_link_value_ok(f2) || e == NULL || h == NULL ||
	    strlen(h) != 2 * PDF_MAC_LEN)
		return PDF_LINK_TAMPERED;
	/* canonical decimal only: the MAC covers the decimal text */
	if (sg_parse_u64(e, (uint64_t)INT64_MAX, &exp_u) < 0 || (e[0] == '0' && e[1] != '\0'))
		return PDF_LINK_TAMPERED;
	if (exp_u == 0 && !kind->is_eternal_ok)
		return PDF_LINK_TAMPERED;
	if (pdf_link_mac(kind, secret, f1, f2, (int64_t)exp_u, mac, &err) < 0)
		return PDF_LINK_TAMPERED;
	for (i = 0; i < 2 * PDF_MAC_LEN; i++)
		h[i] = (char)tolower((unsigned char)h[i]);
	diff = CRYPTO_memcmp(mac, h, 2 * PDF_MAC_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	if (diff != 0)
		return PDF_LINK_TAMPERED;
	*expires_r = (int64_t)exp_u;
	return exp_u != 0 && now >= (int64_t)exp_u ? PDF_LINK_EXPIRED : PDF_LINK_VALID;
}

/* pdf_link_verify - check url as a link of kind (see pdf.h) */
static enum pdf_link_status pdf_link_verify(const struct pdf_link_kind *kind,
	const char *url, const char *secret, int64_t now, char **f1_r, char **f2_r,
	int64_t *expires_r)
{
	const struct pdf_link_kind *claimed;
	struct pdf_link_parsed lp;
	enum pdf_link_status st;
	int64_t exp = 0;

	if (f1_r != NULL)
		*f1_r = NULL;
	if (f2_r != NULL)
		*f2_r = NULL;
	if (expires_r != NULL)
		*expires_r = 0;
	if (url == NULL || secret == NULL || secret[0] == '\0' || pdf_link_parse(url, &lp) < 0)
		return PDF_LINK_TAMPERED;
	claimed = pdf_link_kind_of(&lp);
	st = pdf_link_check(claimed, &lp, secret, now, &exp);
	if (claimed != kind) {
		/* only a genuine link of the other purpose is "wrong purpose" */
		pdf_link_parsed_free(&lp);
		return st == PDF_LINK_TAMPERED ? PDF_LINK_TAMPERED : PDF_LINK_WRONG_PURPOSE;
	}
	if (st != PDF_LINK_TAMPERED) {
		if (f1_r != NULL) {
			*f1_r = *pdf_link_val(&lp, kind->name1);
			*pdf_link_val(&lp, kind->name1) = NULL;
		}
		if (f2_r != NULL) {
			*f2_r = *pdf_link_val(&lp, kind->name2);
			*pdf_link_val(&lp, kind->name2) = NULL;
		}
		if (expires_r != NULL)
			*expires_r = exp;
	}
	pdf_link_parsed_free(&lp);
	return st;
}

enum pdf_link_status pdf_reply_link_verify(const char *url, const char *server_secret,
	int64_t now, char **recipient_r, char **sender_r, int64_t *expires_r)
{
	return pdf_link_verify(&pdf_link_reply, url, server_secret, now, recipient_r,
		sender_r, expires_r);
}

enum pdf_link_status pdf_invite_link_verify(const char *url, const char *server_secret,
	int64_t now, char **recipient_r, char **password_id_r, int64_t *expires_r)
{
	return pdf_link_verify(&pdf_link_invite, url, server_secret, now, recipient_r,
		password_id_r, expires_r);
}
