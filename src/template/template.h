/*
 * template.h - the messages the gateway generates (SPEC §9 F-TPL-1, guide
 * §6): a catalogue of templates with the variables each receives, factory
 * defaults, per-owner storage with user <- domain <- wildcard <- global <-
 * factory inheritance, validation on save and rendering into a MIME message
 * (mail templates) or a short text (SMS templates).
 *
 * Template language (a small subset of FreeMarker, which the reference used):
 *     ${name}                  the value of a variable (escaped for where it
 *                              stands, see below); a list variable gives its
 *                              items joined with ", "
 *     ${item} ${item.field}    inside <#list>: the current item / its field
 *     <#if name> ... <#else> ... </#if>
 *                              true when the value is not empty (a list: has
 *                              items); "<#if !name>" negates
 *     <#list name as item> ... </#list>
 *                              once per item of a list variable
 *     <#-- comment -->         dropped
 *     $${                      a literal "${"
 * A line holding only a directive (and blanks) leaves no empty line behind.
 * Directives nest at most TEMPLATE_DEPTH_MAX deep. Any other "<#"/"</#" tag,
 * an unterminated tag, an unknown variable or a field of a variable without
 * fields is a syntax error reported with line and column.
 *
 * Mail templates are complete MIME messages (headers + body) written with the
 * variables in them; the template is parsed as MIME (GMime) and then each
 * header value and each text part is rendered on its own, so a directive
 * may not span several header fields or parts, and no value can change the
 * structure. Escaping by context:
 *     header fields   control characters (CR, LF, TAB, ...) in values become
 *                     spaces (no header injection); non-ASCII is encoded per
 *                     RFC 2047 when the message is written (encoded words
 *                     written in the template are decoded first, except in
 *                     address fields); a field that renders empty is dropped.
 *                     Template syntax is refused in MIME-Version and Content-*
 *                     fields. A value in an address field is parsed as an
 *                     address list: pass one address (or "Name <addr>").
 *     text/html       values are HTML-escaped (& < > " ')
 *     other text parts values as given (newlines kept, other controls dropped)
 *     SMS             like text; at most TEMPLATE_SMS_MAX characters
 * Values that are not valid UTF-8 are repaired (U+FFFD). Rendered text parts
 * are stored as UTF-8 with quoted-printable or base64 transfer encoding, so
 * the output is 7-bit clean. Non-text parts (the dummy PDF of the encrypted
 * PDF templates) are copied unchanged: see template_msg_attach.
 * The renderer adds Date, Message-ID and MIME-Version when the template has
 * none. Mail templates must have From, To and Subject fields.
 *
 * Storage: table "template" (migration 0300), one row per (owner, name); the
 * owner strings are those of the policy module ("user:a@x.com",
 * "domain:x.com", "wildcard:*.x.com", "global"). Global-only templates
 * (pfx_email, sms_pfx_password) are stored and looked up at "global" only.
 *
 * Thread safety: the catalogue is constant; every other function works on
 * the objects it is given (one store connection per thread, as in store.h).
 * GMime must be initialised by the program (g_mime_init()).
 */
#ifndef SG_TEMPLATE_H
#define SG_TEMPLATE_H

#include "lib/lib.h"
#include "mime/mime.h"
#include "policy/policy.h"
#include "store/store.h"

#define TEMPLATE_SOURCE_MAX (256u * 1024u)  /* bytes of one template */
#define TEMPLATE_OUTPUT_MAX (1024u * 1024u) /* bytes of one rendered field/part */
#define TEMPLATE_DEPTH_MAX 16               /* nested <#if>/<#list> */
#define TEMPLATE_VARS_MAX 100000            /* entries in one render call */
#define TEMPLATE_SMS_MAX 160                /* characters of a rendered SMS */
#define TEMPLATE_NAME_MAX 64

/* The templates (guide §6; the BlackBerry one is out of scope, F-ADM-8). */
enum template_id {
	TEMPLATE_ENCRYPTED_PDF,            /* PDF; existing/static password */
	TEMPLATE_ENCRYPTED_PDF_SMS,        /* PDF; new password sent by SMS */
	TEMPLATE_ENCRYPTED_PDF_OTP,        /* PDF; one-time password */
	TEMPLATE_ENCRYPTED_PDF_OTP_INVITE, /* PDF; OTP, no portal password yet */
	TEMPLATE_ENCRYPTION_FAILED,        /* to the originator (D-4, D-7) */
	TEMPLATE_ENCRYPTION_NOTIFICATION,  /* to the originator */
	TEMPLATE_PASSWORDS_NOTIFICATION,   /* generated passwords to the originator */
	TEMPLATE_SMS_PASSWORD,             /* SMS with the PDF password */
	TEMPLATE_SMS_PFX_PASSWORD,         /* SMS with the PFX password (global only) */
	TEMPLATE_PFX_EMAIL,                /* mail carrying a .pfx (global only) */
	TEMPLATE_DLP_WARNING,
	TEMPLATE_DLP_QUARANTINE,
	TEMPLATE_DLP_BLOCK,
	TEMPLATE_DLP_ERROR,
	TEMPLATE_DLP_RELEASE_NOTIFICATION,
	TEMPLATE_DLP_DELETE_NOTIFICATION,
	TEMPLATE_DLP_EXPIRE_NOTIFICATION,
	TEMPLATE__COUNT
};

enum template_kind {
	TEMPLATE_KIND_MAIL, /* a MIME message */
	TEMPLATE_KIND_SMS,  /* plain text, <= TEMPLATE_SMS_MAX characters */
};

enum template_flag {
	TEMPLATE_F_GLOBAL_ONLY = 1u << 0, /* editable at the global level only */
};

enum template_var_type {
	TEMPLATE_VAR_TEXT,    /* one value */
	TEMPLATE_VAR_LIST,    /* zero or more values: pass the name once per item */
	TEMPLATE_VAR_RECORDS, /* zero or more records: pass "name.field" once per
	                         record for each field (the i-th occurrence of each
	                         field forms record i; a missing field is "") */
};

struct template_var_def {
	const char *name;
	enum template_var_type type;
	const char *const *fields; /* TEMPLATE_VAR_RECORDS: NULL-terminated */
	const char *sample;        /* used by validation and `template show --sample` */
	const char *help;          /* one line */
};

struct template_def {
	const char *name;   /* CLI/store identifier, e.g. "encryption_failed" */
	const char *title;  /* the guide's name, e.g. "Encryption failed notification" */
	enum template_kind kind;
	unsigned flags;     /* enum template_flag */
	const struct template_var_def *vars;
	size_t nvars;
	const char *factory; /* the factory default text (valid) */
	const char *attach_type; /* mail templates with a placeholder part for
	                            template_msg_attach ("application/pdf"), or NULL */
};

/* template_def - the definition of id (never NULL for a valid id). */
const struct template_def *template_def(enum template_id id);
/* template_find - 1 found (*id_r set), 0 unknown name (exact, lower case). */
int template_find(const char *name, enum template_id *id_r);

/* ------------------------------------------------------------ rendering */

/*
 * A variable given to a render call. Names: a TEXT variable once (later
 * occurrences are ignored), a LIST variable once per item in order, a RECORDS
 * variable as "name.field" once per record for each field. Values are UTF-8
 * (repaired otherwise); NULL counts as "". Both strings are borrowed for the
 * call only.
 */
struct template_var {
	const char *name;
	const char *value;
};

struct template_render_opts {
	const char *msgid_domain; /* right side of a generated Message-ID;
	                             NULL = "localhost" */
	int64_t now;              /* time of a generated Date; 0 = sg_now() */
};

/*
 * template_validate - check text as template id: size (<= TEMPLATE_SOURCE_MAX),
 * UTF-8 without NUL, syntax and variable names (SG_E_PARSE, message starts
 * "line L, column C: "), then for mail templates the MIME structure: required
 * fields, no syntax in MIME-Version/Content-* fields, each field/part
 * renders with the sample values (SG_E_PARSE naming the field or part); for
 * SMS templates the sample rendering must fit TEMPLATE_SMS_MAX (SG_E_LIMIT).
 * 0 valid, -1 not (err set).
 */
int template_validate(enum template_id id, const char *text, size_t len,
	struct sg_error *err);

/*
 * template_render_mail - render mail template id from text with vars into a
 * new message (*msg_r, free with mime_msg_free). opts may be NULL. Fails
 * (-1, *msg_r NULL) on an invalid template (as template_validate), an unknown
 * variable name in vars (SG_E_INVAL), more than TEMPLATE_VARS_MAX vars or an
 * output over TEMPLATE_OUTPUT_MAX (SG_E_LIMIT), or an SMS template
 * (SG_E_INVAL). 0 ok.
 */
int template_render_mail(enum template_id id, const char *text, const struct template_var *vars,
	size_t nvars, const struct template_render_opts *opts, struct mime_msg **msg_r,
	struct sg_error *err);

/*
 * template_render_sms - render SMS template id into *text_r (malloc'ed,
 * caller frees; leading/trailing blanks trimmed). SG_E_LIMIT when the result
 * is longer than TEMPLATE_SMS_MAX characters (never truncated: the password
 * must arrive whole); otherwise as template_render_mail. 0 ok, -1 err.
 */
int template_render_sms(enum template_id id, const char *text, const struct template_var *vars,
	size_t nvars, char **text_r, struct sg_error *err);

/*
 * template_msg_attach - put the content of fd (read from its start to EOF,
 * streamed when the message is written; fd is dup()ed, the caller keeps its
 * own) into msg as an attachment of content_type named filename, base64
 * encoded. It replaces the first non-text leaf part whose content type is
 * content_type (the template's placeholder, e.g. the dummy PDF), else it is
 * added to a top-level multipart/mixed (a single-part message is wrapped into
 * one first). filename may be NULL (the placeholder's name is kept). 0 ok,
 * -1 err (SG_E_INVAL bad content type, SG_E_IO dup failed).
 */
int template_msg_attach(struct mime_msg *msg, const char *content_type, const char *filename,
	int fd, struct sg_error *err);

/* -------------------------------------------------------------- storage */

/* A loaded template: the text in force for an owner chain and where it is from. */
struct template_src {
	enum template_id id;
	char *text;                /* NUL-terminated */
	enum policy_level level;   /* POLICY_LEVEL_FACTORY when not customised */
	char *owner;               /* "user:a@x.com", ..., "global"; "" for factory */
	int64_t updated;           /* seconds since the epoch; 0 for factory */
};
void template_src_free(struct template_src **srcp);

/*
 * template_load - the template id in force for owners (most specific first,
 * as policy_owner_chain gives them; n <= 8; NULL/0 = global only): the first
 * owner with a stored text, else the factory default. Global-only templates
 * consider "global" only. *src_r is new (template_src_free). 0 ok, -1 err
 * (SG_E_STORE, SG_E_INVAL for an unknown owner form).
 */
int template_load(struct store *db, enum template_id id, const char *const *owners,
	size_t nowners, struct template_src **src_r, struct sg_error *err);
/* template_load_props - template_load with the owner chain of pp
 * (policy_owner_chain: the user's or domain's resolved properties). */
int template_load_props(struct store *db, enum template_id id, const struct policy_props *pp,
	struct template_src **src_r, struct sg_error *err);

/*
 * template_owner - the owner string for a user (email) or domain ("x.com" or
 * "*.x.com"), normalised as the policy module does, or "global" (name
 * ignored). 0 ok, -1 err (SG_E_INVAL bad name).
 */
int template_owner(enum policy_kind kind, const char *name, char *out, size_t outsz,
	struct sg_error *err);

/*
 * template_save - validate text (template_validate) and store it for owner
 * (replacing what was there). Global-only templates below "global" are
 * refused (SG_E_INVAL). 0 ok, -1 err.
 */
int template_save(struct store *db, enum template_id id, const char *owner, const char *text,
	size_t len, struct sg_error *err);

/* template_reset - delete owner's text of id (back to inheritance). 1 deleted,
 * 0 there was none, -1 err. */
int template_reset(struct store *db, enum template_id id, const char *owner,
	struct sg_error *err);

/* One stored (customised) template. */
struct template_stored {
	enum template_id id;
	char *owner;
	int64_t updated;
};
/*
 * template_list_stored - every stored template (owner NULL) or those of one
 * owner, ordered by name then owner; at most limit rows (0 = 100000). *items_r
 * (free with template_stored_free) and *n_r. Rows with names this program
 * does not know are skipped. 0 ok, -1 err.
 */
int template_list_stored(struct store *db, const char *owner, size_t limit,
	struct template_stored **items_r, size_t *n_r, struct sg_error *err);
void template_stored_free(struct template_stored *items, size_t n);

#endif
