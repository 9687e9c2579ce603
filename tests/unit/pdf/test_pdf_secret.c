/* test_pdf_secret.c - F-PDF-3 generated passwords, password IDs, validity
 * and OTP derivation; F-PDF-5 reply links (valid / expired / tampered);
 * F-PORTAL-2 invitation links (valid / expired / tampered / wrong purpose).
 * The known answers were computed independently (Python's hmac and hashlib
 * modules, openssl dgst -hmac) from the algorithm text in pdf.h, not with
 * this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pdf/pdf.h"

static bool in_alphabet(const char *s)
{
	for (; *s != '\0'; s++)
		if (strchr(PDF_PASSWORD_ALPHABET, *s) == NULL)
			return false;
	return true;
}

/* The alphabet has 32 distinct characters and none of 0 O 1 I l o. */
static void test_F_PDF_3_alphabet_unambiguous(void **state)
{
	const char *a = PDF_PASSWORD_ALPHABET;
	size_t i, j;

	(void)state;
	assert_int_equal(strlen(a), 32);
	for (i = 0; i < 32; i++)
		for (j = i + 1; j < 32; j++)
			assert_true(a[i] != a[j]);
	assert_null(strpbrk(a, "0O1IlOo"));
}

static void test_F_PDF_3_generate_length_alphabet(void **state)
{
	char pw[PDF_PASSWORD_MAX_LEN + 1], other[PDF_PASSWORD_MAX_LEN + 1];
	unsigned seen[32] = { 0 }, len, i, k;
	struct sg_error err;

	(void)state;
	for (len = PDF_PASSWORD_MIN_LEN; len <= PDF_PASSWORD_MAX_LEN; len++) {
		assert_int_equal(pdf_password_generate(len, pw, sizeof(pw), &err), 0);
		assert_int_equal(strlen(pw), len);
		assert_true(in_alphabet(pw));
	}
	/* every character occurs over many draws (uniform low 5 bits) */
	for (k = 0; k < 200; k++) {
		assert_int_equal(pdf_password_generate(32, pw, sizeof(pw), &err), 0);
		for (i = 0; i < 32; i++)
			seen[strchr(PDF_PASSWORD_ALPHABET, pw[i]) - PDF_PASSWORD_ALPHABET]++;
	}
	for (i = 0; i < 32; i++)
		assert_true(seen[i] > 50); /* expected 200 each */
	assert_int_equal(pdf_password_generate(16, pw, sizeof(pw), &err), 0);
	assert_int_equal(pdf_password_generate(16, other, sizeof(other), &err), 0);
	assert_string_not_equal(pw, other);
}

static void test_F_PDF_3_generate_bounds(void **state)
{
	char pw[64];
	struct sg_error err;

	(void)state;
	assert_int_equal(pdf_password_generate(PDF_PASSWORD_MIN_LEN - 1, pw, sizeof(pw), &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pdf_password_generate(PDF_PASSWORD_MAX_LEN + 1, pw, sizeof(pw), &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pdf_password_generate(16, pw, 16, &err), -1); /* no room for NUL */
	assert_int_equal(err.code, SG_E_INVAL);
}

static void test_F_PDF_3_password_id(void **state)
{
	char a[PDF_PASSWORD_ID_LEN + 1], b[PDF_PASSWORD_ID_LEN + 1];
	struct sg_error err;

	(void)state;
	assert_int_equal(pdf_password_id_new(a, sizeof(a), &err), 0);
	assert_int_equal(pdf_password_id_new(b, sizeof(b), &err), 0);
	assert_int_equal(strlen(a), PDF_PASSWORD_ID_LEN);
	assert_true(in_alphabet(a));
	assert_string_not_equal(a, b);
	assert_int_equal(pdf_password_id_new(a, PDF_PASSWORD_ID_LEN, &err), -1);
}

/* Validity rule of F-PDF-3 / guide §4.1.2, table-driven. */
static void test_F_PDF_3_password_is_current(void **state)
{
	static const struct {
		const char *name, *pw;
		int64_t date_set, validity, now;
		bool want;
	} cases[] = {
		{ "no password", NULL, 1000, -1, 2000, false },
		{ "empty password", "", 1000, -1, 2000, false },
		{ "-1 never expires", "pw", 1000, -1, INT64_C(99999999999), true },
		{ "no date set = static", "pw", 0, 10, INT64_C(99999999999), true },
		{ "0 = new per message", "pw", 1000, 0, 1000, false },
		{ "inside interval", "pw", 1000, 10, 1000 + 599, true },
		{ "at the end", "pw", 1000, 10, 1000 + 600, false },
		{ "after the end", "pw", 1000, 10, 1000 + 601, false },
		{ "huge interval", "pw", 1000, INT64_MAX, 5000, true },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = pdf_password_is_current(cases[i].pw, cases[i].date_set,
			cases[i].validity, cases[i].now);

		if (got != cases[i].want)
			fail_msg("%s: got %d want %d", cases[i].name, got, cases[i].want);
	}
}

/* Reuse while current; a new password always comes with a new ID. */
static void test_F_PDF_3_password_next(void **state)
{
	struct pdf_password p1, p2, p3;
	struct sg_error err;

	(void)state;
	/* nothing stored: generated, with an ID, dated now */
	assert_int_equal(pdf_password_next(NULL, NULL, 0, 60, 16, 5000, &p1, &err), 1);
	assert_int_equal(strlen(p1.password), 16);
	assert_true(in_alphabet(p1.password));
	assert_int_equal(strlen(p1.id), PDF_PASSWORD_ID_LEN);
	assert_int_equal(p1.date_set, 5000);
	/* still valid 59 minutes later: reused as stored */
	assert_int_equal(pdf_password_next(p1.password, p1.id, p1.date_set, 60, 16,
		5000 + 59 * 60, &p2, &err), 0);
	assert_string_equal(p2.password, p1.password);
	assert_string_equal(p2.id, p1.id);
	assert_int_equal(p2.date_set, 5000);
	/* expired: new password and new ID */
	assert_int_equal(pdf_password_next(p1.password, p1.id, p1.date_set, 60, 20,
		5000 + 60 * 60, &p3, &err), 1);
	assert_int_equal(strlen(p3.password), 20);
	assert_string_not_equal(p3.password, p1.password);
	assert_string_not_equal(p3.id, p1.id);
	assert_int_equal(p3.date_set, 5000 + 3600);
	/* validity 0: new every time even one second later */
	assert_int_equal(pdf_password_next(p3.password, p3.id, p3.date_set, 0, 16,
		p3.date_set, &p2, &err), 1);
	assert_string_not_equal(p2.id, p3.id);
	/* a static password (no date) is kept, with no ID */
	assert_int_equal(pdf_password_next("Static Pässword", NULL, 0, 30, 16, INT64_C(9000000000), &p2,
		&err), 0);
	assert_string_equal(p2.password, "Static Pässword");
	assert_string_equal(p2.id, "");
	/* bad length only matters when generating */
	assert_int_equal(pdf_password_next(NULL, NULL, 0, 0, 3, 1, &p2, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

static void test_F_PDF_3_client_secret(void **state)
{
	char a[PDF_CLIENT_SECRET_LEN + 1], b[PDF_CLIENT_SECRET_LEN + 1];
	struct sg_error err;
	size_t i;

	(void)state;
	assert_int_equal(pdf_otp_client_secret_new(a, sizeof(a), &err), 0);
	assert_int_equal(pdf_otp_client_secret_new(b, sizeof(b), &err), 0);
	assert_int_equal(strlen(a), PDF_CLIENT_SECRET_LEN);
	for (i = 0; i < PDF_CLIENT_SECRET_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_string_not_equal(a, b);
	assert_int_equal(pdf_otp_client_secret_new(a, PDF_CLIENT_SECRET_LEN, &err), -1);
}

/* Known answers (Python: hmac.new(secret, b"sealgate-pdf-otp-v1\0" + id,
 * sha256), 5 bits per character into the alphabet). */
static void test_F_PDF_3_otp_known_answers(void **state)
{
	static const struct {
		const char *secret, *id;
		unsigned len;
		const char *want;
	} cases[] = {
		{ "secret", "ABCDEFGHJKLM", 16, "YJQDU4EFRWZP2QMJ" },
		{ "secret", "ABCDEFGHJKLM", 32, "YJQDU4EFRWZP2QMJBAL3YVNGPECYS62W" },
		{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		  "Q7XK2M9PR4TZ", 8, "SENJ582X" },
		{ "geheim-\xc3\xbc", "ABCDEFGHJKLN", 16, "NJ36W9AT8FF2XA2N" },
	};
	char out[PDF_PASSWORD_MAX_LEN + 1];
	struct sg_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(pdf_otp_derive(cases[i].secret, cases[i].id, cases[i].len, out,
			sizeof(out), &err), 0);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got %s want %s", i, out, cases[i].want);
	}
}

static void test_F_PDF_3_otp_errors(void **state)
{
	char out[PDF_PASSWORD_MAX_LEN + 1];
	struct sg_error err;

	(void)state;
	assert_int_equal(pdf_otp_derive("", "ID", 16, out, sizeof(out), &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(pdf_otp_derive("s", "", 16, out, sizeof(out), &err), -1);
	assert_int_equal(pdf_otp_derive("s", "ID", 33, out, sizeof(out), &err), -1);
	assert_int_equal(pdf_otp_derive("s", "ID", 16, out, 16, &err), -1);
	/* a different ID or secret gives a different OTP */
	{
		char a[17], b[17], c[17];

		assert_int_equal(pdf_otp_derive("s", "ID1", 16, a, sizeof(a), &err), 0);
		assert_int_equal(pdf_otp_derive("s", "ID2", 16, b, sizeof(b), &err), 0);
		assert_int_equal(pdf_otp_derive("t", "ID1", 16, c, sizeof(c), &err), 0);
		assert_string_not_equal(a, b);
		assert_string_not_equal(a, c);
	}
}

/* ------------------------------------------------------------ D-2 route */

/* D-2 order, table-driven: each row changes one fact of a base recipient. */
static void test_D_2_password_route(void **state)
{
	enum { PW = 1, DATED = 2, ORIG = 4, OTP = 8, SECRET = 16, AUTO = 32, PORTAL = 64,
		PPW = 128, INVITE = 256, SEND = 512, RECV = 1024, PHONE = 2048 };
	static const struct {
		const char *name;
		unsigned facts;
		int64_t validity;
		enum pdf_route want;
	} cases[] = {
		{ "nothing", 0, 0, PDF_ROUTE_NONE },
		{ "static password (no date)", PW, 0, PDF_ROUTE_EXISTING },
		{ "static beats everything", PW | ORIG | OTP | SECRET | PORTAL | PPW | SEND |
		  RECV | PHONE, -1, PDF_ROUTE_EXISTING },
		{ "dated password still valid", PW | DATED, 60, PDF_ROUTE_EXISTING },
		{ "dated password expired -> originator", PW | DATED | ORIG, 1,
		  PDF_ROUTE_ORIGINATOR },
		{ "validity 0 -> new each time (sms)", PW | DATED | SEND | RECV | PHONE, 0,
		  PDF_ROUTE_SMS },
		{ "originator beats otp and sms", ORIG | OTP | SECRET | PORTAL | PPW | SEND |
		  RECV | PHONE, 0, PDF_ROUTE_ORIGINATOR },
		{ "otp with portal password", OTP | SECRET | PORTAL | PPW | SEND | RECV | PHONE,
		  0, PDF_ROUTE_OTP },
		{ "otp with auto-created secret", OTP | AUTO | PORTAL | PPW, 0, PDF_ROUTE_OTP },
		{ "otp invite", OTP | SECRET | PORTAL | INVITE, 0, PDF_ROUTE_OTP_INVITE },
		{ "otp without portal -> sms", OTP | SECRET | PPW | SEND | RECV | PHONE, 0,
		  PDF_ROUTE_SMS },
		{ "otp unreachable -> none", OTP | SECRET | PORTAL, 0, PDF_ROUTE_NONE },
		{ "otp without secret -> none", OTP | PORTAL | PPW, 0, PDF_ROUTE_NONE },
		{ "sms needs send", RECV | PHONE, 0, PDF_ROUTE_NONE },
		{ "sms needs receive", SEND | PHONE, 0, PDF_ROUTE_NONE },
		{ "sms needs a phone", SEND | RECV, 0, PDF_ROUTE_NONE },
		{ "sms send right alone", SEND, 0, PDF_ROUTE_NONE },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned f = cases[i].facts;
		struct pdf_route_input in = {
			.password = f & PW ? "pw" : NULL,
			.password_date_set = f & DATED ? 1000 : 0,
			.password_validity_minutes = cases[i].validity,
			.is_send_to_originator = (f & ORIG) != 0,
			.has_originator = (f & ORIG) != 0,
			.is_otp_enabled = (f & OTP) != 0,
			.has_client_secret = (f & SECRET) != 0,
			.is_client_secret_auto = (f & AUTO) != 0,
			.is_portal_enabled = (f & PORTAL) != 0,
			.has_portal_password = (f & PPW) != 0,
			.is_portal_auto_invite = (f & INVITE) != 0,
			.can_sms_send = (f & SEND) != 0,
			.can_sms_receive = (f & RECV) != 0,
			.has_phone = (f & PHONE) != 0,
			.now = 1000 + 30 * 60,
		};
		enum pdf_route got = pdf_route_choose(&in);

		if (got != cases[i].want)
			fail_msg("%s: got %s want %s", cases[i].name, pdf_route_name(got),
				pdf_route_name(cases[i].want));
	}
	/* send-to-originator needs an originator address */
	{
		struct pdf_route_input in = { .is_send_to_originator = true, .now = 1 };

		assert_int_equal(pdf_route_choose(&in), PDF_ROUTE_NONE);
	}
}

/* ------------------------------------------------------------ reply links */

#define SECRET "server-secret"
#define URL "https://portal.example.com/web/portal/pdf/reply"

/* The MAC (Python: hmac.new(b"server-secret", b"sealgate-pdf-reply-v1\0"
 * b"bob@example.net\0alice@example.com\0" b"1900000000", sha256)). */
static void test_F_PDF_5_link_known_answer(void **state)
{
	struct sg_error err;
	char *url = pdf_reply_link_make(URL, SECRET, "bob@example.net", "alice@example.com",
		1900000000, &err);

	(void)state;
	assert_non_null(url);
	assert_string_equal(url, URL "?r=bob%40example.net&s=alice%40example.com&e=1900000000"
		"&h=9e43271d88da553caa2520fe3962776d66cf6794e580aea148f3b14275a9b336");
	free(url);
}

static void test_F_PDF_5_link_valid_and_expired(void **state)
{
	struct sg_error err;
	char *r = NULL, *s = NULL;
	int64_t exp = 0;
	char *url = pdf_reply_link_make(URL "?lang=de", SECRET, "b\xc3\xb6" "b+x@example.net",
		"\"a b\"@example.com", pdf_reply_expiry(1000, 60), &err);

	(void)state;
	assert_non_null(url);
	assert_non_null(strstr(url, "?lang=de&r="));
	assert_int_equal(pdf_reply_link_verify(url, SECRET, 1000 + 3599, &r, &s, &exp),
		PDF_LINK_VALID);
	assert_string_equal(r, "b\xc3\xb6" "b+x@example.net");
	assert_string_equal(s, "\"a b\"@example.com");
	assert_int_equal(exp, 1000 + 3600);
	free(r);
	free(s);
	/* the query string alone verifies too */
	assert_int_equal(pdf_reply_link_verify(strchr(url, '?'), SECRET, 1000, NULL, NULL,
		NULL), PDF_LINK_VALID);
	assert_int_equal(pdf_reply_link_verify(url, SECRET, 1000 + 3600, &r, &s, &exp),
		PDF_LINK_EXPIRED);
	assert_string_equal(r, "b\xc3\xb6" "b+x@example.net");
	free(r);
	free(s);
	free(url);
	/* validity < 0: never expires */
	assert_int_equal(pdf_reply_expiry(1000, -1), 0);
	url = pdf_reply_link_make(URL, SECRET, "r@x.example", "s@y.example", 0, &err);
	assert_non_null(url);
	assert_int_equal(pdf_reply_link_verify(url, SECRET, INT64_C(99999999999), NULL, NULL,
		NULL), PDF_LINK_VALID);
	free(url);
}

/* replace the first occurrence of from in s by to (test helper) */
static char *subst(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	char *out;

	assert_non_null(p);
	out = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, s, (size_t)(p - s));
	strcpy(out + (p - s), to);
	strcat(out, p + strlen(from));
	return out;
}

static void test_F_PDF_5_link_tampered(void **state)
{
	struct sg_error err;
	char *url = pdf_reply_link_make(URL, SECRET, "bob@example.net", "alice@example.com",
		1900000000, &err);
	char *r = (char *)"x", *s = (char *)"x";
	int64_t exp = 5;
	const struct {
		const char *name, *from, *to;
	} cases[] = {
		{ "recipient changed", "r=bob", "r=eve" },
		{ "sender changed", "s=alice", "s=mallory" },
		{ "expiry extended", "e=1900000000", "e=1900000001" },
		{ "expiry removed (never)", "e=1900000000", "e=0" },
		{ "expiry with leading zero", "e=1900000000", "e=01900000000" },
		{ "mac changed", "&h=9e", "&h=9f" },
		{ "mac truncated", "b336", "b33" },
		{ "mac missing", "&h=", "&x=" },
		{ "recipient missing", "?r=", "?x=" },
		{ "duplicate recipient", "&s=", "&r=eve%40example.net&s=" },
		{ "bad percent escape", "%40example.net", "%4gexample.net" },
		{ "NUL escape", "bob%40", "bob%00" },
	};
	size_t i;

	(void)state;
	assert_non_null(url);
	assert_int_equal(pdf_reply_link_verify(url, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_VALID);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *bad = subst(url, cases[i].from, cases[i].to);
		enum pdf_link_status st = pdf_reply_link_verify(bad, SECRET, 1000, NULL, NULL,
			NULL);

		if (st != PDF_LINK_TAMPERED)
			fail_msg("%s: got %s want tampered", cases[i].name, pdf_link_status_name(st));
		free(bad);
	}
	/* wrong server secret; outputs are cleared on TAMPERED */
	assert_int_equal(pdf_reply_link_verify(url, "other", 1000, &r, &s, &exp),
		PDF_LINK_TAMPERED);
	assert_null(r);
	assert_null(s);
	assert_int_equal(exp, 0);
	/* upper-case hex MAC is the same MAC */
	{
		char *up = strdup(url), *h = strstr(up, "&h=") + 3;

		for (; *h != '\0'; h++)
			if (*h >= 'a' && *h <= 'f')
				*h = (char)(*h - 'a' + 'A');
		assert_int_equal(pdf_reply_link_verify(up, SECRET, 1000, NULL, NULL, NULL),
			PDF_LINK_VALID);
		free(up);
	}
	assert_int_equal(pdf_reply_link_verify("", SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	assert_int_equal(pdf_reply_link_verify(NULL, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	free(url);
}

static void test_F_PDF_5_link_make_refuses(void **state)
{
	struct sg_error err;

	(void)state;
	assert_null(pdf_reply_link_make("ftp://x.example/r", SECRET, "a@b", "c@d", 1, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(pdf_reply_link_make(URL "#frag", SECRET, "a@b", "c@d", 1, &err));
	assert_null(pdf_reply_link_make(URL "'x", SECRET, "a@b", "c@d", 1, &err));
	assert_null(pdf_reply_link_make(URL, "", "a@b", "c@d", 1, &err));
	assert_null(pdf_reply_link_make(URL, SECRET, "", "c@d", 1, &err));
	assert_null(pdf_reply_link_make(URL, SECRET, "a@b\r\nX: y", "c@d", 1, &err));
	assert_null(pdf_reply_link_make(URL, SECRET, "a@b", "c@d", -5, &err));
}

/* ---------------------------------------------------------- invite links */

#define IURL "https://portal.example.com/portal/invite"
/* openssl dgst -sha256 -hmac server-secret over "sealgate-pdf-invite-v1\0"
 * "bob@example.net\0ABCDEFGHJKLM\0" "1900000000" (printf '...\000...'),
 * computed outside this code */
#define IMAC "a97058bb1e26eac8acb4aebed51a665d3c9421d98d3d07005319b6dc4fb8e848"
#define ILINK IURL "?p=invite&r=bob%40example.net&i=ABCDEFGHJKLM&e=1900000000&h=" IMAC

static void test_F_PORTAL_2_invite_known_answer(void **state)
{
	struct sg_error err;
	char *url = pdf_invite_link_make(IURL, SECRET, "bob@example.net", "ABCDEFGHJKLM",
		1900000000, &err);

	(void)state;
	assert_non_null(url);
	assert_string_equal(url, ILINK);
	free(url);
	/* the hand-written known link verifies, with its values */
	{
		char *r = NULL, *id = NULL;
		int64_t exp = 0;

		assert_int_equal(pdf_invite_link_verify(ILINK, SECRET, 1000, &r, &id, &exp),
			PDF_LINK_VALID);
		assert_string_equal(r, "bob@example.net");
		assert_string_equal(id, "ABCDEFGHJKLM");
		assert_int_equal(exp, 1900000000);
		free(r);
		free(id);
	}
}

static void test_F_PORTAL_2_invite_valid_and_expired(void **state)
{
	struct sg_error err;
	char *r = NULL, *id = NULL;
	int64_t exp = 0, e = pdf_invite_expiry(1000, 0);
	char *url;

	(void)state;
	/* default validity: 7 days; an explicit one is taken as it is */
	assert_int_equal(e, 1000 + 60 * PDF_INVITE_VALIDITY_MINUTES);
	assert_int_equal(PDF_INVITE_VALIDITY_MINUTES, 7 * 24 * 60);
	assert_int_equal(pdf_invite_expiry(1000, -1), e);
	assert_int_equal(pdf_invite_expiry(1000, 60), 1000 + 3600);
	url = pdf_invite_link_make(IURL "?lang=de", SECRET, "b\xc3\xb6" "b+x@example.net",
		"ZZZZ2345ABCD", e, &err);
	assert_non_null(url);
	assert_non_null(strstr(url, "?lang=de&p=invite&r=b%C3%B6b%2Bx%40example.net&i="));
	assert_int_equal(pdf_invite_link_verify(url, SECRET, e - 1, &r, &id, &exp),
		PDF_LINK_VALID);
	assert_string_equal(r, "b\xc3\xb6" "b+x@example.net");
	assert_string_equal(id, "ZZZZ2345ABCD");
	assert_int_equal(exp, e);
	free(r);
	free(id);
	/* the query string alone, with or without '?' */
	assert_int_equal(pdf_invite_link_verify(strchr(url, '?'), SECRET, 1000, NULL, NULL,
		NULL), PDF_LINK_VALID);
	assert_int_equal(pdf_invite_link_verify(strchr(url, '?') + 1, SECRET, 1000, NULL,
		NULL, NULL), PDF_LINK_VALID);
	/* expired at exactly e; the values are still returned */
	assert_int_equal(pdf_invite_link_verify(url, SECRET, e, &r, &id, &exp),
		PDF_LINK_EXPIRED);
	assert_string_equal(r, "b\xc3\xb6" "b+x@example.net");
	assert_string_equal(id, "ZZZZ2345ABCD");
	assert_int_equal(exp, e);
	free(r);
	free(id);
	free(url);
}

static void test_F_PORTAL_2_invite_tampered(void **state)
{
	char *r = (char *)"x", *id = (char *)"x";
	int64_t exp = 5;
	const struct {
		const char *name, *from, *to;
	} cases[] = {
		{ "recipient changed", "r=bob", "r=eve" },
		{ "password ID changed", "i=ABCDEFGHJKLM", "i=ABCDEFGHJKLN" },
		{ "expiry extended", "e=1900000000", "e=1900000001" },
		{ "expiry removed (never)", "e=1900000000", "e=0" },
		{ "expiry with leading zero", "e=1900000000", "e=01900000000" },
		{ "expiry negative", "e=1900000000", "e=-1900000000" },
		{ "mac changed", "&h=a9", "&h=a8" },
		{ "mac truncated", "e848", "e84" },
		{ "mac missing", "&h=", "&x=" },
		{ "password ID missing", "&i=", "&x=" },
		{ "recipient missing", "&r=", "&x=" },
		{ "purpose missing", "?p=invite&", "?" },
		{ "duplicate password ID", "&e=", "&i=ZZZZ&e=" },
		{ "duplicate purpose", "&r=", "&p=invite&r=" },
		{ "bad percent escape", "%40example.net", "%4gexample.net" },
		{ "NUL escape", "bob%40", "bob%00" },
		{ "control character", "bob%40", "bob%0A" },
	};
	size_t i;

	(void)state;
	assert_int_equal(pdf_invite_link_verify(ILINK, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_VALID);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *bad = subst(ILINK, cases[i].from, cases[i].to);
		enum pdf_link_status st = pdf_invite_link_verify(bad, SECRET, 1000, NULL, NULL,
			NULL);

		if (st != PDF_LINK_TAMPERED)
			fail_msg("%s: got %s want tampered", cases[i].name, pdf_link_status_name(st));
		free(bad);
	}
	/* wrong server secret (also for an expired link); outputs cleared */
	assert_int_equal(pdf_invite_link_verify(ILINK, "other", 1000, &r, &id, &exp),
		PDF_LINK_TAMPERED);
	assert_null(r);
	assert_null(id);
	assert_int_equal(exp, 0);
	assert_int_equal(pdf_invite_link_verify(ILINK, "other", INT64_C(2000000000), NULL,
		NULL, NULL), PDF_LINK_TAMPERED);
	assert_int_equal(pdf_invite_link_verify(ILINK, "", 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	assert_int_equal(pdf_invite_link_verify(ILINK, NULL, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	assert_int_equal(pdf_invite_link_verify("", SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	assert_int_equal(pdf_invite_link_verify(NULL, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
}

/*
 * A reply link is never accepted as an invitation and an invitation never
 * as a reply link: a genuine link of the other purpose is WRONG_PURPOSE
 * (expired or not), a forged one TAMPERED; relabelling a link (adding or
 * removing p=invite, renaming its parameters) does not make its MAC valid
 * for the other purpose.
 */
static void test_F_PORTAL_2_invite_reply_wrong_purpose(void **state)
{
	struct sg_error err;
	char *reply = pdf_reply_link_make(URL, SECRET, "bob@example.net", "alice@example.com",
		1900000000, &err);
	char *invite = pdf_invite_link_make(IURL, SECRET, "bob@example.net", "alice@example.com",
		1900000000, &err);
	char *r = (char *)"x", *x = (char *)"x", *bad;
	int64_t exp = 5;

	(void)state;
	assert_non_null(reply);
	assert_non_null(invite);
	/* same field values, different purposes: different MACs */
	assert_string_not_equal(strstr(reply, "&h="), strstr(invite, "&h="));
	assert_int_equal(pdf_reply_link_verify(reply, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_VALID);
	assert_int_equal(pdf_invite_link_verify(invite, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_VALID);
	assert_int_equal(pdf_invite_link_verify(reply, SECRET, 1000, &r, &x, &exp),
		PDF_LINK_WRONG_PURPOSE);
	assert_null(r);
	assert_null(x);
	assert_int_equal(exp, 0);
	assert_int_equal(pdf_reply_link_verify(invite, SECRET, 1000, &r, &x, &exp),
		PDF_LINK_WRONG_PURPOSE);
	assert_null(r);
	assert_null(x);
	/* expired and of the other purpose: still the purpose is wrong */
	assert_int_equal(pdf_invite_link_verify(reply, SECRET, 1900000000, NULL, NULL, NULL),
		PDF_LINK_WRONG_PURPOSE);
	assert_int_equal(pdf_reply_link_verify(ILINK, SECRET, 1900000000, NULL, NULL, NULL),
		PDF_LINK_WRONG_PURPOSE);
	/* a forged link of the other purpose is tampered, not wrong purpose */
	bad = subst(ILINK, "r=bob", "r=eve");
	assert_int_equal(pdf_reply_link_verify(bad, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	free(bad);
	bad = subst(reply, "r=bob", "r=eve");
	assert_int_equal(pdf_invite_link_verify(bad, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	free(bad);
	/* relabelled: a reply link presented as an invitation (p=invite added,
	 * s renamed to i) and an invitation presented as a reply link */
	bad = subst(reply, "?r=", "?p=invite&r=");
	assert_int_equal(pdf_invite_link_verify(bad, SECRET, 1000, NULL, NULL, NULL),
		PDF_LINK_TAMPERED);
	free(bad);
	{
		char *t = subst(reply, "?r=", "?p=invite&r=");

		bad = subst(t, "&s=", "&i=");
		free(t);
		assert_int_equal(pdf_invite_link_verify(bad, SECRET, 1000, NULL, NULL, NULL),
			PDF_LINK_TAMPERED);
		free(bad);
		t = subst(invite, "?p=invite&", "?");
		bad = subst(t, "&i=", "&s=");
		free(t);
		assert_int_equal(pdf_reply_link_verify(bad, SECRET, 1000, NULL, NULL, NULL),
			PDF_LINK_TAMPERED);
		free(bad);
	}
	assert_string_equal(pdf_link_status_name(PDF_LINK_WRONG_PURPOSE), "wrong_purpose");
	free(reply);
	free(invite);
}

static void test_F_PORTAL_2_invite_make_refuses(void **state)
{
	struct sg_error err;

	(void)state;
	assert_null(pdf_invite_link_make("ftp://x.example/i", SECRET, "a@b", "ID", 1, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(pdf_invite_link_make(IURL "#frag", SECRET, "a@b", "ID", 1, &err));
	assert_null(pdf_invite_link_make(IURL "\"x", SECRET, "a@b", "ID", 1, &err));
	assert_null(pdf_invite_link_make(NULL, SECRET, "a@b", "ID", 1, &err));
	assert_null(pdf_invite_link_make(IURL, "", "a@b", "ID", 1, &err));
	assert_null(pdf_invite_link_make(IURL, NULL, "a@b", "ID", 1, &err));
	assert_null(pdf_invite_link_make(IURL, SECRET, "", "ID", 1, &err));
	assert_null(pdf_invite_link_make(IURL, SECRET, "a@b", "", 1, &err));
	assert_null(pdf_invite_link_make(IURL, SECRET, "a@b", NULL, 1, &err));
	assert_null(pdf_invite_link_make(IURL, SECRET, "a@b\r\nX: y", "ID", 1, &err));
	/* an invitation always expires */
	assert_null(pdf_invite_link_make(IURL, SECRET, "a@b", "ID", 0, &err));
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(pdf_invite_link_make(IURL, SECRET, "a@b", "ID", -5, &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_F_PDF_3_alphabet_unambiguous),
		cmocka_unit_test(test_F_PDF_3_generate_length_alphabet),
		cmocka_unit_test(test_F_PDF_3_generate_bounds),
		cmocka_unit_test(test_F_PDF_3_password_id),
		cmocka_unit_test(test_F_PDF_3_password_is_current),
		cmocka_unit_test(test_F_PDF_3_password_next),
		cmocka_unit_test(test_F_PDF_3_client_secret),
		cmocka_unit_test(test_F_PDF_3_otp_known_answers),
		cmocka_unit_test(test_F_PDF_3_otp_errors),
		cmocka_unit_test(test_D_2_password_route),
		cmocka_unit_test(test_F_PDF_5_link_known_answer),
		cmocka_unit_test(test_F_PDF_5_link_valid_and_expired),
		cmocka_unit_test(test_F_PDF_5_link_tampered),
		cmocka_unit_test(test_F_PDF_5_link_make_refuses),
		cmocka_unit_test(test_F_PORTAL_2_invite_known_answer),
		cmocka_unit_test(test_F_PORTAL_2_invite_valid_and_expired),
		cmocka_unit_test(test_F_PORTAL_2_invite_tampered),
		cmocka_unit_test(test_F_PORTAL_2_invite_reply_wrong_purpose),
		cmocka_unit_test(test_F_PORTAL_2_invite_make_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
