/*
 * policy.h - the property hierarchy and the per-recipient decision (SPEC §2
 * F-POL-1..9, §11 property catalogue, §13 user/domain/global commands).
 *
 * Objects: users (normalised e-mail address), domains ("example.com"),
 * wildcard domains ("*.example.com": applies to example.com itself and to
 * every subdomain at any depth; the most specific wildcard wins), the global
 * level and the read-only factory defaults. A property not set at one level
 * is inherited from the next: user <- domain <- wildcard <- global <- factory.
 *
 * A struct policy is a resolver bound to ONE store connection (one per
 * thread, like the store). It caches resolved levels in memory; every write
 * through this API bumps a generation counter in the database, and
 * policy_sync() (called by policy_decide() and the resolve functions) drops
 * the cache when another process or thread changed anything.
 *
 * The policy module does not parse MIME: the caller (the MPA glue, the CLI)
 * fills struct policy_msg with raw header values. Certificate availability
 * and PDF possibility come from later modules through struct policy_env.
 */
#ifndef SG_POLICY_H
#define SG_POLICY_H

#include "lib/lib.h"
#include "store/store.h"

/* ------------------------------------------------------ property catalogue */

enum policy_level {
	POLICY_LEVEL_FACTORY,
	POLICY_LEVEL_GLOBAL,
	POLICY_LEVEL_WILDCARD,
	POLICY_LEVEL_DOMAIN,
	POLICY_LEVEL_USER,
};
/* policy_level_name - "factory", "global", "wildcard", "domain", "user". */
const char *policy_level_name(enum policy_level level);

enum policy_type {
	POLICY_T_BOOL,      /* "true" | "false" (input: sg_parse_bool words) */
	POLICY_T_INT,       /* decimal within [min, max] */
	POLICY_T_BYTES,     /* size in bytes; input may use k/M/G suffixes */
	POLICY_T_ENUM,      /* one of enum_values (case-insensitive input) */
	POLICY_T_STRING,    /* printable UTF-8, no control characters */
	POLICY_T_SECRET,    /* like STRING; never shown unless revealed */
	POLICY_T_URL,       /* http:// or https:// URL */
	POLICY_T_ADDRESS,   /* e-mail address (normalised to lower case) */
	POLICY_T_TRIGGER,   /* HEADER[:REGEX] header trigger */
	POLICY_T_FILTER,    /* /REGEX/ VALUE subject filter */
	POLICY_T_TIMESTAMP, /* ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" or epoch seconds */
	POLICY_T_PHONE,     /* E.164 "+<6..15 digits>" */
	POLICY_T_COUNTRY,   /* country calling code, 1-3 digits ("31" or "+31") */
	POLICY_T_HASH,      /* an Argon2id encoded hash "$argon2id$..." (secret) */
};

/* Flags of a property definition. */
enum policy_prop_flag {
	POLICY_PF_SENDER = 1u << 0,      /* used for the originator */
	POLICY_PF_RECIPIENT = 1u << 1,   /* used for the recipient */
	POLICY_PF_GLOBAL_ONLY = 1u << 2, /* settable at global level only */
	POLICY_PF_SECRET = 1u << 3,      /* never printed unless revealed */
	POLICY_PF_DERIVED = 1u << 4,     /* factory value derived at run time */
};

/* Property ids, in catalogue order (SPEC §11). */
enum policy_prop_id {
	POLICY_P_LOCALITY,
	POLICY_P_ENCRYPT_MODE,
	POLICY_P_ENCRYPTION_NOTIFICATION,
	POLICY_P_PASSWORD,
	POLICY_P_PASSWORD_ID,
	POLICY_P_PASSWORD_VALIDITY_MINUTES,
	POLICY_P_PASSWORD_LENGTH,
	POLICY_P_PASSWORD_DATE_SET,
	POLICY_P_PASSWORD_SEND_TO_ORIGINATOR,
	POLICY_P_OTP_ENABLED,
	POLICY_P_OTP_CLIENT_SECRET,
	POLICY_P_OTP_AUTO_CREATE_CLIENT_SECRET,
	POLICY_P_OTP_URL,
	POLICY_P_SMIME_ALLOWED,
	POLICY_P_SMIME_STRICT,
	POLICY_P_SMIME_ONLY_SIGN_WHEN_ENCRYPT,
	POLICY_P_SMIME_MAX_SIZE,
	POLICY_P_SMIME_ENCRYPTION_ALGORITHM,
	POLICY_P_SMIME_SIGNING_ALGORITHM,
	POLICY_P_SMIME_SIGNING_MODE,
	POLICY_P_SMIME_KEY_TRANSPORT,
	POLICY_P_SMIME_AUTO_SELECT_CERTIFICATES,
	POLICY_P_SMIME_ALWAYS_USE_FRESHEST_SIGNING_CERTIFICATE,
	POLICY_P_SMIME_AUTO_REQUEST_CERTIFICATE,
	POLICY_P_SMIME_ADD_USER,
	POLICY_P_SMIME_ENCRYPT_HEADERS,
	POLICY_P_SMIME_REMOVE_SIGNATURE,
	POLICY_P_SMIME_SKIP_CALENDAR,
	POLICY_P_SMIME_SKIP_SIGNING_CALENDAR,
	POLICY_P_SMIME_ADD_ADDITIONAL_CERTIFICATES,
	POLICY_P_SUBJECT_TRIGGER,
	POLICY_P_SUBJECT_TRIGGER_ENABLED,
	POLICY_P_SUBJECT_TRIGGER_IS_REGEX,
	POLICY_P_SUBJECT_TRIGGER_REMOVE_MATCH,
	POLICY_P_FORCE_ENCRYPT_ALLOWED,
	POLICY_P_FORCE_ENCRYPT_TRIGGER,
	POLICY_P_FORCE_SIGNING_ALLOWED,
	POLICY_P_FORCE_SIGNING_TRIGGER,
	POLICY_P_PDF_ENCRYPTION_ALLOWED,
	POLICY_P_PDF_MAX_SIZE,
	POLICY_P_PDF_ONLY_IF_MANDATORY,
	POLICY_P_PDF_SIGN_EMAIL,
	POLICY_P_PDF_REPLY_ALLOWED,
	POLICY_P_PDF_REPLY_VALIDITY_MINUTES,
	POLICY_P_PDF_REPLY_URL,
	POLICY_P_PDF_REPLY_SENDER,
	POLICY_P_ADD_SECURITY_INFO,
	POLICY_P_SECURITY_INFO_DECRYPTED_TAG,
	POLICY_P_SECURITY_INFO_SIGNED_TAG,
	POLICY_P_SECURITY_INFO_SIGNED_BY_TAG,
	POLICY_P_SECURITY_INFO_INVALID_SIGNATURE_TAG,
	POLICY_P_SUBJECT_FILTER_ENABLED,
	POLICY_P_SUBJECT_FILTER,
	POLICY_P_SERVER_SECRET,
	POLICY_P_SMS_PHONE_NUMBER,
	POLICY_P_SMS_SEND_ALLOWED,
	POLICY_P_SMS_RECEIVE_ALLOWED,
	POLICY_P_SMS_PHONE_NUMBER_IN_SUBJECT_ALLOWED,
	POLICY_P_SMS_DEFAULT_COUNTRY_CODE,
	POLICY_P_PORTAL_PASSWORD,
	POLICY_P_PORTAL_ENABLED,
	POLICY_P_PORTAL_AUTO_INVITE,
	POLICY_P_PORTAL_BASE_URL,
	POLICY_P_LAST_USED_PFX_PASSWORD,
	POLICY_P_DLP_ENABLED,
	POLICY_P_SYSTEM_MAIL_FROM,
	POLICY_P_CRL_REQUIRED,
	POLICY_P_PFX_ENCRYPTION,
	POLICY_P__COUNT
};

struct policy_prop_def {
	const char *name;               /* CLI/API/store identifier */
	enum policy_type type;
	const char *def;                /* factory value (normalised) or NULL = unset */
	unsigned flags;                 /* enum policy_prop_flag */
	const char *const *enum_values; /* POLICY_T_ENUM: NULL-terminated list */
	int64_t min, max;               /* POLICY_T_INT / POLICY_T_BYTES bounds */
	size_t max_len;                 /* longest accepted value in bytes */
	const char *help;               /* one line */
};

/* policy_prop_def - the definition of id (never NULL for a valid id). */
const struct policy_prop_def *policy_prop_def(enum policy_prop_id id);
/* policy_prop_find - 1 found (*id_r set), 0 unknown name. Exact, lower case. */
int policy_prop_find(const char *name, enum policy_prop_id *id_r);

/*
 * policy_prop_validate - check value for property id at level and write its
 * normalised form (what is stored) into *norm_r (malloc'ed, caller frees).
 * Refuses (SG_E_INVAL, message names the property and the reason, including
 * the PCRE2 message for a bad regex) bad values and global-only properties
 * below POLICY_LEVEL_GLOBAL. Never copies a secret value into err.
 */
int policy_prop_validate(enum policy_prop_id id, const char *value, enum policy_level level,
	char **norm_r, struct sg_error *err);

/* ------------------------------------------------ names and addresses */

#define POLICY_ADDR_MAX 320   /* 64 + 1 + 255 */
#define POLICY_DOMAIN_MAX 256 /* 253 + "*." + NUL, rounded */

/* Flags of policy_domain_normalize(). */
enum policy_domain_flag {
	POLICY_DOM_ALLOW_WILDCARD = 1u << 0, /* accept "*.example.com" */
};

/*
 * policy_domain_normalize - lower-case ASCII, one trailing dot removed,
 * non-ASCII labels converted to punycode ("xn--..."), labels checked (1..63
 * of [a-z0-9-_], total <= 253). Writes out (size outsz). 0 ok, -1 bad (err).
 */
int policy_domain_normalize(const char *domain, unsigned flags, char *out, size_t outsz,
	struct sg_error *err);
/*
 * policy_addr_normalize - "Local@Domain." -> "local@domain" (whole address
 * lower-cased, domain as policy_domain_normalize). 0 ok, -1 bad (err).
 */
int policy_addr_normalize(const char *addr, char *out, size_t outsz, struct sg_error *err);
/*
 * policy_addr_first_mailbox - the first usable mailbox's addr-spec in a raw
 * header value (From, Sender, ...), parsed by GMime through the mime module
 * (folding, display names, quoted strings, comments, encoded words, groups);
 * a display name that looks like an address is never taken. The result is
 * normalised (policy_addr_normalize). 1 found, 0 none usable (absent, empty
 * group, garbage); out is "" then. Needs g_mime_init().
 */
int policy_addr_first_mailbox(const char *value, char *out, size_t outsz);

/* ------------------------------------------------------------- triggers */

/*
 * Regular expressions: PCRE2 in UTF mode with Unicode properties, with
 * Java-style inline flags: (?i) (?m) (?s) (?x) as PCRE2; Java's (?u), (?U),
 * (?d) are accepted and dropped (Unicode case folding and classes are always
 * on; LF is the only newline). Matching is "find" (anywhere), with PCRE2 match
 * and depth limits. Patterns are capped at POLICY_REGEX_MAX bytes.
 */
#define POLICY_REGEX_MAX 1024
struct policy_regex;
enum policy_regex_flag {
	POLICY_RE_LITERAL = 1u << 0,  /* the pattern is a plain string */
	POLICY_RE_CASELESS = 1u << 1, /* case-insensitive (Unicode) */
};
/* policy_regex_new - compile; NULL + err (SG_E_INVAL with the PCRE2 message and
 * offset) on a bad pattern. */
struct policy_regex *policy_regex_new(const char *pattern, unsigned flags,
	struct sg_error *err);
void policy_regex_free(struct policy_regex **rep);
/* policy_regex_find - 1 match (*start_r, *end_r: byte offsets, may be NULL),
 * 0 no match, -1 error (e.g. match limit: err set). */
int policy_regex_find(const struct policy_regex *re, const char *s, size_t len,
	size_t offset, size_t *start_r, size_t *end_r, struct sg_error *err);
/*
 * policy_regex_replace_all - replace every match in s by repl (literal) into
 * *out_r (malloc'ed). 1 something replaced, 0 no match (*out_r NULL), -1 err.
 */
int policy_regex_replace_all(const struct policy_regex *re, const char *s,
	const char *repl, char **out_r, struct sg_error *err);

/* Header lookup: the idx-th (from 0) occurrence of header name (case-
 * insensitive), value unfolded with leading whitespace removed; NULL when
 * there is none. */
typedef const char *policy_header_fn(void *arg, const char *name, size_t idx);

/* A parsed HEADER[:REGEX] trigger (guide §4.2.1). */
struct policy_header_trigger;
/* policy_header_trigger_parse - NULL + err on a bad name or regex. An empty or
 * missing REGEX matches any value. */
struct policy_header_trigger *policy_header_trigger_parse(const char *spec,
	struct sg_error *err);
void policy_header_trigger_free(struct policy_header_trigger **tp);
/* policy_header_trigger_name - the header name (borrowed). */
const char *policy_header_trigger_name(const struct policy_header_trigger *t);
/* policy_header_trigger_match - 1 some occurrence matches, 0 none, -1 err. */
int policy_header_trigger_match(const struct policy_header_trigger *t, policy_header_fn *fn,
	void *arg, struct sg_error *err);

/* A parsed "/REGEX/ VALUE" subject filter (guide §4.3.2). */
struct policy_subject_filter;
struct policy_subject_filter *policy_subject_filter_parse(const char *spec,
	struct sg_error *err);
void policy_subject_filter_free(struct policy_subject_filter **fp);
/* policy_subject_filter_apply - replace every match by VALUE, trim, and repeat
 * (at most 8 rounds) while it changes: 1 changed (*out_r malloc'ed), 0 no
 * change (*out_r NULL), -1 err. */
int policy_subject_filter_apply(const struct policy_subject_filter *f, const char *subject,
	char **out_r, struct sg_error *err);

/* Flags of policy_subject_trigger(). */
enum policy_subject_flag {
	POLICY_SUBJ_REGEX = 1u << 0,  /* trigger is a regex (else a caseless keyword) */
	POLICY_SUBJ_REMOVE = 1u << 1, /* remove every match from the subject */
};
/*
 * policy_subject_trigger - look for trigger in subject. 1 fired, 0 not, -1
 * err (bad regex). When fired: *tail_off_r (may be NULL) = byte offset just
 * after the last match in the ORIGINAL subject; with POLICY_SUBJ_REMOVE,
 * *subject_r = the subject with all matches removed and whitespace at the
 * seams collapsed and trimmed (malloc'ed), else *subject_r = NULL.
 */
int policy_subject_trigger(const char *subject, const char *trigger, unsigned flags,
	char **subject_r, size_t *tail_off_r, struct sg_error *err);
/*
 * policy_phone_from_tail - the rest of the subject after the trigger must be
 * only a phone number: optional '+', digits, spaces and "-()", 6..15 digits.
 * "00" and "+" mean international; a single leading 0 is a national trunk
 * prefix replaced by default_cc (digits, may be NULL: then no number).
 * Writes E.164 "+NNN" into out. 1 found, 0 none.
 */
int policy_phone_from_tail(const char *tail, const char *default_cc, char *out,
	size_t outsz);

/* ------------------------------------------------------------- resolver */

struct policy;
struct policy_props;

struct policy_opts {
	const char *hostname;  /* for system_mail_from's default; NULL = "localhost" */
	size_t cache_max;      /* cached objects before the cache is flushed; 0 = 262144 */
	/* Read the store's generation counter at most every sync_interval_ms
	 * (0 = on every resolve/decide call: changes made anywhere are seen at
	 * once). Writes through this struct policy are always seen at once. */
	int64_t sync_interval_ms;
};

/* policy_new - a resolver on db (borrowed; must outlive it). Never NULL. */
struct policy *policy_new(struct store *db, const struct policy_opts *opts);
void policy_free(struct policy **pp);
/*
 * policy_sync - read the generation counter; drop the cache if it changed.
 * 0 ok, -1 err. Called by policy_decide and policy_resolve_*.
 */
int policy_sync(struct policy *p, struct sg_error *err);
/* policy_cache_stats - hits and misses since policy_new (for benchmarks). */
void policy_cache_stats(const struct policy *p, uint64_t *hits_r, uint64_t *misses_r);

/*
 * Resolve the effective properties of a user (unknown users resolve as if
 * they existed with nothing set), of a domain (starts at the domain level, or
 * the wildcard level for "*.x"), or of the global level. The result is
 * immutable and independent of later cache flushes. 0 ok, -1 err.
 */
int policy_resolve_user(struct policy *p, const char *email, struct policy_props **props_r,
	struct sg_error *err);
int policy_resolve_domain(struct policy *p, const char *domain,
	struct policy_props **props_r, struct sg_error *err);
int policy_resolve_global(struct policy *p, struct policy_props **props_r,
	struct sg_error *err);
void policy_props_free(struct policy_props **pp);
/* policy_props_get - the value (borrowed, NULL = unset) and its level. */
const char *policy_props_get(const struct policy_props *pp, enum policy_prop_id id,
	enum policy_level *level_r);
/* policy_props_owner - the object name the level came from ("" for global
 * and factory), e.g. "*.example.com" for POLICY_LEVEL_WILDCARD. */
const char *policy_props_owner(const struct policy_props *pp, enum policy_level level);
/*
 * policy_owner_chain - the owner strings of the objects pp was resolved from,
 * most specific first, as src/pki keys certificate selections:
 * "user:a@x.com", "domain:x.com" (both even when the object does not exist),
 * "wildcard:*.x.com" (only the wildcard that applied), "global". *n_r <= 4.
 */
#define POLICY_OWNER_MAX (POLICY_DOMAIN_MAX + 80)
int policy_owner_chain(const struct policy_props *pp, char owners[4][POLICY_OWNER_MAX],
	size_t *n_r);
/* Typed getters; the value was validated when stored. */
bool policy_props_is_true(const struct policy_props *pp, enum policy_prop_id id);
int64_t policy_props_int(const struct policy_props *pp, enum policy_prop_id id);

/* --------------------------------------------------- objects and properties */

enum policy_kind { POLICY_KIND_USER, POLICY_KIND_DOMAIN, POLICY_KIND_GLOBAL };

/* policy_object_add - 0 ok, -1 err (SG_E_EXISTS if present, SG_E_INVAL bad name). */
int policy_object_add(struct policy *p, enum policy_kind kind, const char *name,
	struct sg_error *err);
/*
 * policy_object_delete - delete a user or domain and its properties. A domain
 * that still has users (for "*.x": users of x or any subdomain) is refused
 * with SG_E_POLICY. 0 ok, -1 err (SG_E_NOTFOUND if absent).
 */
int policy_object_delete(struct policy *p, enum policy_kind kind, const char *name,
	struct sg_error *err);
/* policy_object_exists - 1 yes, 0 no, -1 err. Global always exists. */
int policy_object_exists(struct policy *p, enum policy_kind kind, const char *name,
	struct sg_error *err);

struct policy_list_entry {
	char *name;
	int64_t created;
	unsigned nprops;  /* properties set on the object */
};
struct policy_list {
	struct policy_list_entry *items;
	size_t count;
	int64_t total;    /* rows matching the search, ignoring limit/offset */
};
/* policy_object_list - users or domains whose name contains search (NULL =
 * all, case-insensitive), ordered by name, limit (0 = 1000, max 100000) and
 * offset. 0 ok, -1 err. */
int policy_object_list(struct policy *p, enum policy_kind kind, const char *search,
	size_t limit, size_t offset, struct policy_list *list_r, struct sg_error *err);
void policy_list_deinit(struct policy_list *list);

/* A NAME=VALUE (set) or NAME (value NULL: unset) change. */
struct policy_change {
	const char *name;
	const char *value;
};
/*
 * policy_object_apply - apply changes to one object atomically (all or
 * nothing). Users and domains are created by a set when absent (an unset
 * alone creates nothing). Every value is
 * validated (policy_prop_validate); afterwards the object's effective subject
 * trigger must compile when it is a regex. Bumps the generation. 0 ok, -1 err
 * (SG_E_INVAL with a message naming the property).
 */
int policy_object_apply(struct policy *p, enum policy_kind kind, const char *name,
	const struct policy_change *changes, size_t n, struct sg_error *err);

/* ------------------------------------------------------------- decision */

/* The message facts the policy needs (filled by the MPA glue or the CLI). */
enum policy_msg_flag {
	POLICY_MSG_CALENDAR = 1u << 0,        /* a text/calendar message (D-3) */
	POLICY_MSG_DLP_MUST_ENCRYPT = 1u << 1, /* DLP decided "must encrypt" */
};
struct policy_msg {
	const char *from_header;      /* raw (possibly folded) value or NULL */
	const char *sender_header;    /* raw value or NULL */
	const char *envelope_sender;  /* MAIL FROM address, "" or NULL for <> */
	const char *subject;          /* decoded UTF-8 subject or NULL */
	policy_header_fn *header_fn;  /* header lookup for triggers (may be NULL) */
	void *header_arg;
	uint64_t size;                /* message size in bytes */
	unsigned flags;               /* enum policy_msg_flag */
};

/* Capabilities supplied by later modules. Each returns 1 yes, 0 no, -1 err.
 * A NULL callback means "no". */
struct policy_env {
	int (*has_encryption_cert)(void *arg, const char *recipient,
		const struct policy_props *rprops, struct sg_error *err);
	int (*can_pdf)(void *arg, const char *recipient, const struct policy_props *rprops,
		struct sg_error *err);
	void *arg;
};

enum policy_origin { POLICY_ORIG_FROM, POLICY_ORIG_SENDER, POLICY_ORIG_ENVELOPE,
	POLICY_ORIG_NONE };
const char *policy_origin_name(enum policy_origin o);

enum policy_encrypt {
	POLICY_ENC_NO,          /* not encrypted */
	POLICY_ENC_IF_POSSIBLE, /* allow/allow: encrypt when a method is possible */
	POLICY_ENC_REQUIRED,    /* force, mandatory or a trigger */
	POLICY_ENC_BLOCKED,     /* mandatory vs no_encryption: nothing goes out */
};
const char *policy_encrypt_name(enum policy_encrypt e);

enum policy_method {
	POLICY_METHOD_PLAIN,   /* sent without encryption */
	POLICY_METHOD_SMIME,   /* S/MIME encrypted */
	POLICY_METHOD_PDF,     /* encrypted PDF */
	POLICY_METHOD_DECRYPT, /* internal recipient: decrypt/verify candidate */
	POLICY_METHOD_NONE,    /* nothing to this recipient; notify the sender */
};
const char *policy_method_name(enum policy_method m);

enum policy_sign { POLICY_SIGN_NO, POLICY_SIGN_YES, POLICY_SIGN_WHEN_ENCRYPTED };
const char *policy_sign_name(enum policy_sign s);

/* Why the encrypt value is what it is (bits). */
enum policy_why {
	POLICY_WHY_SENDER_FORCE = 1u << 0,
	POLICY_WHY_RECIPIENT_FORCE = 1u << 1,
	POLICY_WHY_SUBJECT_TRIGGER = 1u << 2,
	POLICY_WHY_HEADER_TRIGGER = 1u << 3,
	POLICY_WHY_DLP = 1u << 4,
	POLICY_WHY_SENDER_MANDATORY = 1u << 5,
	POLICY_WHY_RECIPIENT_MANDATORY = 1u << 6,
	POLICY_WHY_SENDER_NO_ENCRYPTION = 1u << 7,
	POLICY_WHY_RECIPIENT_NO_ENCRYPTION = 1u << 8,
	POLICY_WHY_INTERNAL = 1u << 9,
	POLICY_WHY_CALENDAR_SKIP = 1u << 10,
	POLICY_WHY_TOO_BIG = 1u << 11,
};

/* Decision flags (bits of policy_decision.flags). */
enum policy_dflag {
	POLICY_D_SMIME_ALLOWED = 1u << 0,     /* both sides allow S/MIME, size ok */
	POLICY_D_PDF_ALLOWED = 1u << 1,       /* both sides allow PDF, size ok */
	POLICY_D_PDF_ONLY_IF_MANDATORY = 1u << 2,
	POLICY_D_HAS_CERT = 1u << 3,          /* input: a valid encryption certificate */
	POLICY_D_CAN_PDF = 1u << 4,           /* input: a PDF password route exists */
	POLICY_D_SIGN_OUTPUT = 1u << 5,       /* final: sign this output */
	POLICY_D_SIGN_FORCED = 1u << 6,       /* force-sign header trigger */
	POLICY_D_DECRYPT_STRICT = 1u << 7,    /* internal: strict decryption */
	POLICY_D_NOTIFY_FAILED = 1u << 8,     /* sender gets "encryption failed" */
	POLICY_D_NOTIFY_ENCRYPTED = 1u << 9,  /* sender gets "encryption notification" */
	POLICY_D_PASSWORDS_TO_ORIGINATOR = 1u << 10,
	POLICY_D_ENCRYPT_HEADERS = 1u << 11,
	POLICY_D_ADD_ADDITIONAL_CERTS = 1u << 12,
	POLICY_D_REMOVE_SIGNATURE = 1u << 13, /* internal */
	POLICY_D_ADD_SECURITY_INFO = 1u << 14, /* internal */
	POLICY_D_SUBJECT_FILTER = 1u << 15,   /* internal: subject filter applied */
	POLICY_D_PDF_REPLY = 1u << 16,
	POLICY_D_ADD_USER = 1u << 17,
};

/* Names of single bits of policy_decision.why and .flags ("sender_force",
 * "has_cert", ...) for logs and `policy explain`. */
enum policy_bits_kind { POLICY_BITS_WHY, POLICY_BITS_FLAGS };
const char *policy_bit_name(enum policy_bits_kind kind, unsigned bit);

#define POLICY_KEY_MAX 512
#define POLICY_RCPT_MAX 10000  /* recipients per policy_decide call */

struct policy_decision {
	char recipient[POLICY_ADDR_MAX];  /* normalised envelope recipient */
	struct policy_props *props;       /* recipient's resolved properties */
	bool is_internal;
	enum policy_encrypt encrypt;
	unsigned why;                     /* enum policy_why */
	enum policy_method method;
	enum policy_sign sign;            /* the sign rule before the method */
	unsigned flags;                   /* enum policy_dflag */
	const char *enc_alg;              /* borrowed from props (recipient's) */
	const char *sign_alg;
	const char *key_transport;
	uint64_t smime_max_size;          /* min of both sides */
	uint64_t pdf_max_size;
	char *subject;                    /* new subject for this output; NULL = same */
	char key[POLICY_KEY_MAX];         /* equal keys = identical treatment */
};

struct policy_result {
	char originator[POLICY_ADDR_MAX]; /* "" when none */
	enum policy_origin origin;
	struct policy_props *sender_props;
	bool is_subject_triggered;        /* subject trigger fired */
	bool is_header_encrypt_triggered; /* honoured force-encrypt header */
	bool is_header_sign_triggered;    /* honoured force-sign header */
	char *subject_out;                /* subject with the trigger (and the phone
	                                     number after it) removed; NULL = same */
	char phone[24];                   /* phone from the subject ("" none) */
	/* trigger headers to remove from every output (NULL ends): the force-
	 * encrypt/-sign header of an originator allowed to use it, present in
	 * the message, whether or not its value matched */
	const char *remove_headers[2];
	char remove_header_buf[2][128];
	size_t nrcpt;
	struct policy_decision *rcpt;
};

/*
 * policy_decide - resolve the originator and each envelope recipient and
 * compute each recipient's decision (F-POL-3..9). rcpts are envelope
 * addresses; an invalid one is an error (SG_E_INVAL). Errors from env
 * callbacks or the store fail the whole call (fail closed). 0 ok, -1 err.
 */
int policy_decide(struct policy *p, const struct policy_msg *msg, const char *const *rcpts,
	size_t nrcpt, const struct policy_env *env, struct policy_result **res_r,
	struct sg_error *err);
void policy_result_free(struct policy_result **rp);
/*
 * policy_result_group - group recipients with identical keys: group_r[i] is
 * the group number (0..n-1, in order of first appearance) of recipient i.
 * Returns the number of groups.
 */
size_t policy_result_group(const struct policy_result *r, size_t *group_r);

#endif
