/*
 * pdf.h - PDF encryption (SPEC §6, F-PDF-1..5; guide §4.1.2-4.1.3, §13):
 * render a message as a PDF that looks like the email, embed every
 * attachment, encrypt it with a password; generated passwords, password IDs,
 * OTP derivation and HMAC-protected portal links (PDF reply links, OTP
 * invitation links).
 *
 * Libraries: cairo + pango (layout of any script into PDF; fontconfig picks
 * a fallback font per character, so CJK needs a CJK font installed),
 * libxml2's HTML parser in SAX push mode (text/html to text, streaming, no
 * network), libqpdf's job API (embedded files + AES encryption).
 *
 * Threads: every function may run in several threads at once on different
 * messages; pdf_init() must have run once before (in main()).
 * No function here logs or returns a password, OTP or secret except through
 * the output parameters named for it.
 */
#ifndef SG_PDF_H
#define SG_PDF_H

#include "lib/lib.h"

struct mime_msg;

/*
 * pdf_init - one-time library set-up, called by main() before threads start
 * (libxml2's parser globals). Idempotent. Returns 0, or -1 with SG_E_CONFIG
 * when fontconfig finds no font at all (nothing could be rendered). A missing
 * CJK font is only logged as a warning (CJK text would render as boxes).
 */
int pdf_init(struct sg_error *err);

/* pdf_deinit - free the calling thread's font map, cairo's and
 * fontconfig's caches and libxml2's globals at exit, after every other
 * thread that rendered has ended. */
void pdf_deinit(void);

/* ============================================================ passwords */

/*
 * Generated passwords, password IDs and OTPs use one alphabet of 32
 * characters without the ambiguous 0 O 1 I (and no lower case, so l and
 * case mix-ups cannot happen). Index i (0..31) is the i-th character:
 */
#define PDF_PASSWORD_ALPHABET "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
/* Length bounds (characters = bytes, ASCII). 32 is the most a PDF
 * AES-128 (R4) password can hold; the password_length setting is clamped by
 * the caller or refused here. Each character carries 5 bits: 16 -> 80 bits. */
#define PDF_PASSWORD_MIN_LEN 8
#define PDF_PASSWORD_MAX_LEN 32
/* A password ID: 12 characters of the alphabet (60 random bits). */
#define PDF_PASSWORD_ID_LEN 12
/* A client secret from pdf_otp_client_secret_new: 64 lower-case hex digits
 * (32 random bytes). */
#define PDF_CLIENT_SECRET_LEN 64

/*
 * pdf_password_generate - a random password of len characters (each chosen
 * uniformly: the low 5 bits of one CSPRNG byte index the alphabet) into out
 * (outsz >= len + 1). 0, or -1 with SG_E_INVAL (len out of bounds, out too
 * small) or SG_E_CRYPTO (no randomness).
 */
int pdf_password_generate(unsigned len, char *out, size_t outsz, struct sg_error *err);

/* pdf_password_id_new - a new password ID (PDF_PASSWORD_ID_LEN characters,
 * same alphabet) into out (outsz >= PDF_PASSWORD_ID_LEN + 1). 0 or -1. */
int pdf_password_id_new(char *out, size_t outsz, struct sg_error *err);

/*
 * pdf_password_is_current - F-PDF-3 validity rule for a stored password:
 * false when password is NULL or ""; true when validity_minutes < 0 (never
 * expires) or date_set == 0 (no date set = static password); false when
 * validity_minutes == 0 (a new password per message); else true while
 * now < date_set + 60 * validity_minutes. Times are seconds since the epoch.
 */
bool pdf_password_is_current(const char *password, int64_t date_set,
	int64_t validity_minutes, int64_t now);

struct pdf_password {
	char password[PDF_PASSWORD_MAX_LEN * 4 + 1]; /* a stored static one may be UTF-8 */
	char id[PDF_PASSWORD_ID_LEN + 1];            /* "" when a stored one had none */
	int64_t date_set;                            /* as stored, or now when generated */
};

/*
 * pdf_password_next - the password to use for one message: the stored one
 * (stored_pw, stored_id may be NULL, stored_date_set) while
 * pdf_password_is_current(); otherwise a newly generated one of length
 * characters with a NEW password ID and date_set = now. Returns 0 when the
 * stored one is reused, 1 when a new one was generated (the caller stores
 * password, id and date_set for the recipient), -1 on error (length out of
 * bounds, stored password longer than pdf_password.password can hold, no
 * randomness).
 */
int pdf_password_next(const char *stored_pw, const char *stored_id,
	int64_t stored_date_set, int64_t validity_minutes, unsigned length, int64_t now,
	struct pdf_password *pw_r, struct sg_error *err);

/*
 * pdf_otp_client_secret_new - a new random OTP client secret
 * (PDF_CLIENT_SECRET_LEN hex digits) into out (outsz >= 65). 0 or -1.
 */
int pdf_otp_client_secret_new(char *out, size_t outsz, struct sg_error *err);

/*
 * pdf_otp_derive - the one-time password for a password ID (F-PDF-3, OTP).
 * The exact algorithm, so that the portal or a third party can compute it:
 *
 *   mac = HMAC-SHA256(key  = the bytes of client_secret as stored (UTF-8,
 *                            without a terminating NUL),
 *                     data = "sealgate-pdf-otp-v1" 0x00 password_id)
 *         (password_id as its ASCII bytes, no terminating NUL)
 *   Read mac as a big-endian bit string; character i (0-based) of the OTP is
 *   PDF_PASSWORD_ALPHABET[bits 5i .. 5i+4 of mac] (the 5-bit value with the
 *   first bit most significant). The first len characters are the OTP
 *   (the scheme defines up to 51; this function takes the password bounds).
 *
 * Known answers (tests/unit/pdf/test_pdf_secret.c): secret "secret", ID
 * "ABCDEFGHJKLM": len 16 -> "YJQDU4EFRWZP2QMJ", len 32 ->
 * "YJQDU4EFRWZP2QMJBAL3YVNGPECYS62W".
 * len must be PDF_PASSWORD_MIN_LEN..PDF_PASSWORD_MAX_LEN, client_secret and
 * password_id non-empty; out must hold len + 1 bytes. 0 or -1 (SG_E_INVAL,
 * SG_E_CRYPTO).
 */
int pdf_otp_derive(const char *client_secret, const char *password_id, unsigned len,
	char *out, size_t outsz, struct sg_error *err);

/* ======================================================= password route */

/*
 * D-2: which password a PDF recipient gets, in this order:
 *  1. a current (pdf_password_is_current) static or earlier password;
 *  2. send to originator (a new password goes to the sender);
 *  3. OTP, only when the recipient can fetch it: OTP enabled, a client
 *     secret (or auto-create on), the portal enabled, and a portal password
 *     (PDF_ROUTE_OTP) or auto invite (PDF_ROUTE_OTP_INVITE);
 *  4. SMS: the sender may send and the recipient receive SMS and a phone
 *     number is known (stored, or from the subject);
 *  none ⇒ PDF_ROUTE_NONE: PDF is not possible (F-POL-6 fail closed).
 * Templates: EXISTING → "encrypted PDF"; ORIGINATOR → "encrypted PDF" plus
 * "passwords notification" to the sender; OTP → "encrypted PDF OTP";
 * OTP_INVITE → "encrypted PDF OTP invite"; SMS → "encrypted PDF via SMS".
 * Every route but EXISTING with a shared static password gives each
 * recipient a message of their own.
 */
enum pdf_route {
	PDF_ROUTE_NONE,
	PDF_ROUTE_EXISTING,    /* use the stored password */
	PDF_ROUTE_ORIGINATOR,  /* pdf_password_next, password to the sender */
	PDF_ROUTE_OTP,         /* new password ID, pdf_otp_derive */
	PDF_ROUTE_OTP_INVITE,  /* as OTP, recipient invited to set a portal password */
	PDF_ROUTE_SMS,         /* pdf_password_next, password by SMS */
};

struct pdf_route_input {
	const char *password;           /* recipient's stored password or NULL */
	int64_t password_date_set;      /* 0 = not set */
	int64_t password_validity_minutes;
	bool is_send_to_originator;     /* sender's password_send_to_originator */
	bool has_originator;            /* a valid originator address exists */
	bool is_otp_enabled;
	bool has_client_secret;
	bool is_client_secret_auto;     /* otp_auto_create_client_secret */
	bool is_portal_enabled;
	bool has_portal_password;
	bool is_portal_auto_invite;
	bool can_sms_send;              /* sender's sms_send_allowed */
	bool can_sms_receive;           /* recipient's sms_receive_allowed */
	bool has_phone;                 /* stored number or one from the subject */
	int64_t now;
};

/* pdf_route_choose - the D-2 decision above (pure). */
enum pdf_route pdf_route_choose(const struct pdf_route_input *in);
/* pdf_route_name - "none", "existing", "originator", "otp", "otp_invite", "sms". */
const char *pdf_route_name(enum pdf_route r);

/* ================================================== signed portal links */

/*
 * Two links carry a token signed with the server secret: the reply link in
 * the PDF (F-PDF-5) and the invitation link of the "encrypted PDF OTP
 * invite" mail (route OTP_INVITE, F-PORTAL-2 auto invite). The portal
 * refuses a link that was changed, that expired, or that was made for the
 * other purpose. The exact format, so that the portal or a third party can
 * make and check them:
 *
 * URL       base URL, then '?' (or '&' when the base URL already has a
 *           query), then the parameters below joined by '&', in this order.
 * values    percent-encoded: every byte except A-Z a-z 0-9 - . _ ~ becomes
 *           %XX (upper-case hex); the MAC is computed over the raw (decoded)
 *           bytes. Raw values are 1..998 bytes without control characters.
 *           The checks decode %XX in either case and '+' as a space (HTML
 *           forms); %00 is refused.
 * expires   decimal seconds since the epoch, no sign, no leading zero.
 * mac       64 lower-case hex digits (upper case is accepted):
 *             HMAC-SHA256(key  = the server_secret bytes (no NUL),
 *                         data = LABEL 0x00 FIELD1 0x00 FIELD2 0x00 expires)
 *
 * Reply link (base: pdf_reply_url, made by pdf_reply_link_make):
 *   r=<recipient>&s=<sender>&e=<expires>&h=<mac>
 *   LABEL "sealgate-pdf-reply-v1", FIELD1 the PDF's recipient (who replies),
 *   FIELD2 the original sender (who gets the reply); expires 0 = never.
 *
 * Invite link (base: portal_base_url + "/invite", made by
 * pdf_invite_link_make):
 *   p=invite&r=<recipient>&i=<password_id>&e=<expires>&h=<mac>
 *   LABEL "sealgate-pdf-invite-v1", FIELD1 the invited recipient (whose
 *   portal password may be set), FIELD2 the password ID of the PDF that
 *   came with the invitation; expires > 0 (an invitation always expires,
 *   default PDF_INVITE_VALIDITY_MINUTES after it was made). "p=invite"
 *   is required; it is not under the MAC (the LABEL is).
 *
 * Known answer (tests/unit/pdf/test_pdf_secret.c; the MAC was computed
 * with openssl dgst -sha256 -hmac, not with this code): server secret
 * "server-secret", base "https://portal.example.com/portal/invite",
 * recipient "bob@example.net", password ID "ABCDEFGHJKLM", expires
 * 1900000000 give (one line)
 *   https://portal.example.com/portal/invite?p=invite&r=bob%40example.net
 *   &i=ABCDEFGHJKLM&e=1900000000
 *   &h=a97058bb1e26eac8acb4aebed51a665d3c9421d98d3d07005319b6dc4fb8e848
 *
 * The labels differ, so no MAC of one purpose is valid for the other. The
 * token is not single-use: the portal should refuse an invitation once the
 * user has a portal password (and may refuse one whose password ID is not
 * the user's current password_id).
 */

/* Default lifetime of an invitation link: 7 days. */
#define PDF_INVITE_VALIDITY_MINUTES 10080

enum pdf_link_status {
	PDF_LINK_VALID,         /* MAC matches, not expired, the asked purpose */
	PDF_LINK_EXPIRED,       /* MAC matches, now >= expires (expires != 0) */
	PDF_LINK_TAMPERED,      /* missing/duplicate/malformed parameter or wrong MAC */
	PDF_LINK_WRONG_PURPOSE, /* a genuine link of this server (MAC matches, expired
	                           or not) made for the other purpose */
};

/* The names before invite links existed (tests/unit/mpa still uses them). */
#define PDF_REPLY_VALID PDF_LINK_VALID
#define PDF_REPLY_EXPIRED PDF_LINK_EXPIRED
#define PDF_REPLY_TAMPERED PDF_LINK_TAMPERED

/* pdf_link_status_name - "valid", "expired", "tampered", "wrong_purpose". */
const char *pdf_link_status_name(enum pdf_link_status s);

/* pdf_reply_expiry - expires value for a link made at now with the
 * pdf_reply_validity_minutes setting: 0 (never) when minutes < 0, else
 * now + 60 * minutes. */
int64_t pdf_reply_expiry(int64_t now, int64_t validity_minutes);

/* pdf_invite_expiry - expires value for an invitation made at now:
 * now + 60 * validity_minutes, PDF_INVITE_VALIDITY_MINUTES when
 * validity_minutes <= 0 (an invitation never lasts for ever). */
int64_t pdf_invite_expiry(int64_t now, int64_t validity_minutes);

/*
 * pdf_reply_link_make - the reply URL (caller frees). reply_url must be an
 * http:// or https:// URL without '#'; recipient and sender non-empty, at
 * most 998 bytes, without control characters; server_secret non-empty;
 * expires >= 0. NULL with SG_E_INVAL otherwise.
 */
char *pdf_reply_link_make(const char *reply_url, const char *server_secret,
	const char *recipient, const char *sender, int64_t expires, struct sg_error *err);

/*
 * pdf_invite_link_make - the invitation URL (caller frees). invite_url as
 * reply_url above; recipient and password_id as the reply link's values;
 * expires > 0. NULL with SG_E_INVAL otherwise.
 */
char *pdf_invite_link_make(const char *invite_url, const char *server_secret,
	const char *recipient, const char *password_id, int64_t expires,
	struct sg_error *err);

/*
 * pdf_reply_link_verify / pdf_invite_link_verify - check a link (the whole
 * URL, or only its query string, with or without the leading '?') as the
 * portal receives it. Parameters other than p r s i e h are ignored (the
 * portal may add its own); any of those six given twice is TAMPERED. A link
 * with p=invite is checked as an invitation, any other as a reply link
 * (other p values are ignored there; s is ignored in an invitation, i in a
 * reply link). The
 * MAC is compared in constant time and checked before the expiry, so
 * EXPIRED and WRONG_PURPOSE are only reported for links this server made
 * (WRONG_PURPOSE: an invite link given to the reply check or the other way
 * round). On VALID and EXPIRED, *recipient_r and *sender_r /
 * *password_id_r (each may be NULL) get the decoded values (caller frees)
 * and *expires_r (may be NULL) the expiry; otherwise they are set to
 * NULL / 0. server_secret NULL or "" gives TAMPERED.
 */
enum pdf_link_status pdf_reply_link_verify(const char *url, const char *server_secret,
	int64_t now, char **recipient_r, char **sender_r, int64_t *expires_r);
enum pdf_link_status pdf_invite_link_verify(const char *url, const char *server_secret,
	int64_t now, char **recipient_r, char **password_id_r, int64_t *expires_r);

/* ============================================================ rendering */

enum pdf_cipher {
	PDF_CIPHER_AES256 = 0, /* AES-256, PDF 2.0 security handler R6 (default) */
	PDF_CIPHER_AES128,     /* AES-128, R4 (older readers) */
};

/* Default page cap when pdf_options.max_pages is 0 (about 300,000 lines). */
#define PDF_DEFAULT_MAX_PAGES 5000

struct pdf_options {
	/* Required. AES-256: 1..127 bytes of UTF-8 without control characters;
	 * AES-128: 1..32 printable ASCII characters. The owner password is
	 * always random (32 hex digits from the CSPRNG) and never returned. */
	const char *user_password;
	enum pdf_cipher cipher;
	/* NULL: no reply link. Else the URL from pdf_reply_link_make (http://
	 * or https://, no control characters, else SG_E_INVAL); it is shown as
	 * a clickable line at the top of the first page. */
	const char *reply_link;
	/* Text of that link (UTF-8); NULL = "Reply securely to this message". */
	const char *reply_text;
	/* Directory for the work files (NULL: $TMPDIR, else /tmp). A private
	 * 0700 directory is made inside it and removed before returning; it holds
	 * the decoded attachments in clear while the PDF is built, so pass a
	 * directory under the data dir, not a shared one. */
	const char *tmp_dir;
	/* 0 = no limit. Else SG_E_LIMIT when the decoded attachments together
	 * or the finished PDF are larger (the pdf_max_size setting). */
	uint64_t max_size;
	unsigned max_pages;   /* 0 = PDF_DEFAULT_MAX_PAGES; more -> SG_E_LIMIT
	                         (header pages count) */
	const char *mail_id;  /* for log lines; NULL = NOQUEUE */
};

struct pdf_result {
	uint64_t size;          /* bytes written to out_fd */
	unsigned pages;
	unsigned attachments;   /* embedded files */
};

/*
 * pdf_message_write - F-PDF-1/2: render m as an encrypted PDF and write it
 * to out_fd at its current offset (any writable fd). What the PDF holds:
 *  - with opt->reply_link, a line "Reply: <reply_text>" at the top of
 *    page 1 whose text links to the URL;
 *  - a header block: From, To, Cc, Date, Subject (those present; decoded
 *    RFC 2047 values, at most 8 KiB each) and "Attached:" with every
 *    embedded file's name and size, one per line;
 *  - the body: of a multipart/alternative the first inline text/plain part
 *    is shown (else the last part, RFC 2046 §5.1.4); every inline
 *    text/plain or text/html part without a file name is rendered in order,
 *    converted to UTF-8 from its charset; text/plain with format=flowed
 *    (RFC 3676, DelSp too) is unflowed first. Long lines wrap (a line longer
 *    than 4 KiB is also broken there), pages break as needed (A4, page
 *    numbers), right-to-left paragraphs are right-aligned (Unicode bidi),
 *    any script is drawn with a fontconfig fallback font. HTML is shown as
 *    text: headings bold, paragraphs, lists ("•" / "1."), tables (cells
 *    separated by " | ", one row per line), links as "text <URL>", images
 *    as "[image: alt]", <pre> in a monospace font; script, style, head and
 *    similar elements are dropped and nothing is ever fetched;
 *  - each nested message/rfc822 part starts a block "Attached message" with
 *    its own headers, and its bodies are rendered the same way;
 *  - embedded files (PDF file attachments with file name and MIME type):
 *    every part that is not a rendered body (parts with a file name or
 *    disposition attachment, 0-byte parts, non-text parts, parts inside
 *    nested messages) and every nested message/rfc822 part as a .eml file
 *    as well (so attachments of a nested message are both inside its .eml
 *    and on their own). Parts of a multipart/alternative that is not shown
 *    are not embedded unless their disposition is "attachment". File names
 *    lose any directory part, control and bidi control characters (U+202E
 *    etc.) and are cut at 200 bytes; a repeated name (case-insensitive)
 *    gets " (2)", " (3)"... before the extension; a part without a name is
 *    "attachment-N.<ext>" (ext from the MIME type, else .bin), a message
 *    part "message-N.eml". A MIME type that is not "token/token" becomes
 *    application/octet-stream. Embedded files are deflated when at least a
 *    quarter of their bytes compresses (decided on the first 64 KiB of
 *    each); JPEG/ZIP/PDF-like data is stored as it is.
 * Hostile input: a transfer encoding that does not decode (broken base64,
 * quoted-printable) is decoded leniently as GMime does (invalid characters
 * are skipped); an unknown charset is read as UTF-8 (invalid sequences shown
 * as U+FFFD) under a small note "[unknown character set: shown as UTF-8]";
 * control characters are dropped.
 * Memory: part contents stream in 64 KiB pieces into work files; the
 * message is never loaded. Peak memory is a constant (about 15-20 MB:
 * fonts, cairo, libraries) plus TWO copies of the largest embedded file as
 * the PDF stores it (deflated when it compresses, else as it is), one file
 * at a time: libqpdf 11.3's QPDFWriter collects each stream in a Pl_Buffer
 * to learn its /Length, and Pl_Buffer::getBuffer then copies it into a new
 * Buffer while the first copy is still held (qpdf 11.7 and later move it:
 * one copy). No qpdf job option avoids this (measured: compress-streams,
 * stream-data=preserve, decode-level=none, object streams off, attaching
 * and encrypting in separate passes all give the same peak). A 50 MB
 * incompressible attachment: about 113 MB; see bench/pdf and
 * tests/unit/pdf/test_pdf_memory.c.
 * Returns 0 (res_r, may be NULL, filled) or -1 with err:
 *  - SG_E_INVAL: missing/invalid password, cipher or arguments;
 *  - SG_E_LIMIT: more than MIME_MAX_PARTS (1,000) parts, multiparts and
 *    bodies included (so a message with 1,000 attachments fails; 998 plus
 *    a body in a multipart/mixed work), deeper than MIME_MAX_DEPTH, an
 *    opaque message (mime_msg_is_opaque), more
 *    than max_pages pages, over max_size (the decoded attachments together,
 *    checked while decoding, or the finished PDF);
 *  - SG_E_IO / SG_E_NOSPACE: work files or out_fd;
 *  - SG_E_NOMEM, SG_E_CRYPTO, SG_E_INTERNAL: library failures (cairo, qpdf).
 * Fail closed: out_fd receives bytes only after the PDF was built
 * completely (a write error on out_fd itself may leave part of it there);
 * the work directory is removed on every path. On any error the caller must
 * not send the message in clear.
 */
int pdf_message_write(struct mime_msg *m, const struct pdf_options *opt, int out_fd,
	struct pdf_result *res_r, struct sg_error *err);

#endif
