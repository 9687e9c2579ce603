/*
 * sms.h - the SMS gateway (SPEC F-SMS-1..3, guide §4.5, §15): a queue of text
 * messages in the database with retries and exponential backoff, transports
 * behind one interface (generic HTTP(S) via libcurl with a Clickatell
 * preset, a file transport for tests), phone-number normalisation, and the
 * "sms.*" settings.
 *
 * Callers: the PDF feature and the CA enqueue passwords (sms_enqueue); the
 * daemon's scheduler calls sms_run_due; `sealgate sms ...` lists, adds,
 * deletes, retries, runs the queue and edits the settings. Every function
 * takes the store connection of the calling thread (store.h: one connection
 * per thread); nothing here keeps global state.
 *
 * Queue semantics
 * ---------------
 * A message is "queued" until a transport accepted it; then its row is
 * DELETED (the text usually carries a password: it must not linger in the
 * database; the log line records the delivery). A temporary failure
 * (timeout, connection error, HTTP 5xx/408/429, a success status whose body
 * does not match, a transport that is misconfigured) leaves it queued with
 * next_attempt = now + min(backoff_max, backoff_min * 2^(attempts-1)) and
 * last_error set; once the message is older than "lifetime" seconds (0 =
 * never) a temporary failure makes it "failed" instead. A permanent failure
 * (HTTP 4xx other than 408/429, another status not listed as success) makes
 * it "failed" at once. Failed messages stay for the administrator (`sms
 * list`, `sms retry`, `sms delete`). While being sent a message is
 * "sending", claimed with a lease (now + timeout + 60 s) by a conditional
 * UPDATE, so several daemons sharing a PostgreSQL database never send it
 * twice; a sender that dies leaves the lease to expire and the message is
 * sent again (at-least-once).
 *
 * Settings (store settings table, key "sms.<name>", normalised values; `sms
 * settings set NAME=VALUE`, "NAME=" resets to the default):
 *   transport            none|http|clickatell|file (default none: nothing
 *                        is sent, messages stay queued)
 *   http.url             http:// or https:// URL (clickatell default
 *                        https://api.clickatell.com/http/sendmsg)
 *   http.method          get|post (default post; get appends the parameters
 *                        to the URL, post sends them form-encoded)
 *   http.params          "name=value&name=value" with placeholders
 *                        ${number} (E.164 with '+'), ${number_digits} (no
 *                        '+'), ${text}, ${username}, ${password},
 *                        ${api_id}, ${from}, ${id} (queue id); names and
 *                        values are URL-encoded after substitution; a
 *                        parameter whose value is a lone placeholder that
 *                        expands to "" is left out. Default
 *                        "to=${number}&text=${text}"; clickatell default
 *                        "api_id=${api_id}&user=${username}&password=
 *                        ${password}&to=${number_digits}&text=${text}&from=
 *                        ${from}"
 *   http.auth            none|basic (HTTP basic authentication with
 *                        http.username/http.password; default none)
 *   http.username, http.api_id, http.from     strings (default "")
 *   http.password        secret (default ""; shown as *** unless revealed)
 *   http.proxy           proxy URL ("" = direct; *_proxy environment
 *                        variables are ignored)
 *   http.proxy_username  string; http.proxy_password secret
 *   http.timeout         seconds 1..600 for the whole request (default 30)
 *   http.success_codes   "200-299" (default), list of codes/ranges "200,202"
 *   http.success_body    PCRE2 regex the response body must match ("" =
 *                        any; clickatell default "^ID:")
 *   http.tls_verify      yes|no (default yes)
 *   http.ca_file         PEM file of CA certificates to verify the gateway
 *                        with ("" = the system's trust store)
 *   file.path            absolute path the file transport appends to
 *   backoff_min          duration (N, Ns, Nm, Nh, Nd) 1s..1d (default 60)
 *   backoff_max          duration 1s..7d, >= backoff_min (default 3600)
 *   lifetime             duration 0..30d (default 86400; 0 = retry forever)
 * With transport clickatell, http.url, http.params and http.success_body
 * fall back to the Clickatell defaults when unset.
 */
#ifndef SG_SMS_H
#define SG_SMS_H

#include "lib/lib.h"
#include "store/store.h"

#define SMS_PHONE_MAX 24     /* "+" and up to 15 digits, NUL; with room */
#define SMS_TEXT_MAX 1600    /* bytes of one message text (UTF-8) */
#define SMS_REF_MAX 64       /* bytes of a caller reference */

/* ----------------------------------------------------------- phone numbers */

/*
 * sms_phone_normalize - phone number in E.164 ("+" then 6..15 digits) into
 * out (outsz >= SMS_PHONE_MAX). Accepts the guide §4.5 forms: an optional
 * '+', "00" as international prefix, spaces, tabs and "-()"; a number with a
 * single leading 0 is national: the 0 is replaced by default_cc (1..3
 * digits, may be NULL or "": such numbers are then refused). Uses the policy
 * module's parser (policy_phone_from_tail). 0 ok, -1 err (SG_E_INVAL).
 */
int sms_phone_normalize(const char *in, const char *default_cc, char *out, size_t outsz,
	struct sg_error *err);

/* ------------------------------------------------------------------ queue */

enum sms_status {
	SMS_ST_QUEUED,   /* waiting for (another) attempt */
	SMS_ST_SENDING,  /* claimed by a sender (lease) */
	SMS_ST_FAILED,   /* permanent failure or lifetime exceeded */
};
/* sms_status_name - "queued", "sending", "failed". */
const char *sms_status_name(enum sms_status st);

struct sms_entry {
	int64_t id;
	char phone[SMS_PHONE_MAX];  /* E.164 */
	char *text;                 /* UTF-8; may contain a password */
	char *ref;                  /* caller reference (mail ID, ...) or NULL */
	enum sms_status status;
	unsigned attempts;          /* attempts started so far */
	int64_t created;            /* seconds since the epoch */
	int64_t next_attempt;       /* when queued: not before this */
	int64_t updated;            /* last change */
	char *last_error;           /* NULL when no attempt failed */
};

struct sms_list {
	struct sms_entry *v;
	size_t n;
};

/*
 * sms_enqueue - queue text for phone. phone is normalised with
 * sms_phone_normalize(phone, NULL, ...): international numbers only (callers
 * with a default country code normalise first). text: valid UTF-8, 1..
 * SMS_TEXT_MAX bytes. ref: optional reference for logs (a mail ID or a
 * password ID, <= SMS_REF_MAX bytes, printable ASCII; NULL = none). The
 * message is due at once. *id_r (may be NULL) = the new id. 0 ok, -1 err
 * (SG_E_INVAL/SG_E_LIMIT for bad input, SG_E_STORE).
 */
int sms_enqueue(struct store *db, const char *phone, const char *text, const char *ref,
	int64_t *id_r, struct sg_error *err);
/*
 * sms_list - every message, oldest first, at most max (0 = 10000) into
 * *list_r (deinit with sms_list_deinit, also after an error). 0 ok, -1 err.
 */
int sms_list(struct store *db, size_t max, struct sms_list *list_r, struct sg_error *err);
void sms_list_deinit(struct sms_list *list);
/* sms_get - one message: 1 found (*e_r filled; sms_entry_deinit it), 0 not
 * found, -1 err. */
int sms_get(struct store *db, int64_t id, struct sms_entry *e_r, struct sg_error *err);
void sms_entry_deinit(struct sms_entry *e);
/* sms_delete - remove a message in any state. 0 ok, -1 err (SG_E_NOTFOUND
 * when there is no such id). */
int sms_delete(struct store *db, int64_t id, struct sg_error *err);
/* sms_retry - make a failed (or queued) message due now; attempts and
 * created are kept, the lifetime counts from now. 0 ok, -1 err
 * (SG_E_NOTFOUND; SG_E_INVAL when it is being sent). */
int sms_retry(struct store *db, int64_t id, struct sg_error *err);
/* sms_backoff - delay in seconds after attempt number attempts (>= 1). */
int64_t sms_backoff(unsigned backoff_min, unsigned backoff_max, unsigned attempts);

/* ------------------------------------------------------------- settings */

enum sms_transport_kind {
	SMS_TRANSPORT_NONE,
	SMS_TRANSPORT_HTTP,
	SMS_TRANSPORT_CLICKATELL,
	SMS_TRANSPORT_FILE,
};

struct sms_code_range {
	unsigned lo, hi;
};

#define SMS_CODE_RANGES_MAX 16

/* The effective settings (defaults and presets applied). Strings are never
 * NULL ("" = unset). */
struct sms_settings {
	enum sms_transport_kind transport;
	char *url;
	bool is_post;
	char *params;
	bool is_basic_auth;
	char *username;
	char *password;          /* secret */
	char *api_id;
	char *from;
	char *proxy;
	char *proxy_username;
	char *proxy_password;    /* secret */
	unsigned timeout;        /* seconds */
	struct sms_code_range codes[SMS_CODE_RANGES_MAX];
	size_t n_codes;
	char *success_body;      /* regex, "" = any body */
	bool is_tls_verify;
	char *ca_file;
	char *file_path;
	unsigned backoff_min;    /* seconds */
	unsigned backoff_max;
	unsigned lifetime;       /* seconds, 0 = forever */
};

/* sms_settings_load - defaults overlaid with the "sms.*" keys in db. Unknown
 * stored names are ignored. NULL + err (SG_E_STORE; SG_E_CONFIG naming the
 * setting when a stored value is invalid). */
struct sms_settings *sms_settings_load(struct store *db, struct sg_error *err);
/* sms_settings_defaults - factory settings. Never NULL. */
struct sms_settings *sms_settings_defaults(void);
/* sms_settings_free - accepts NULL, clears *sp, wipes the secrets. */
void sms_settings_free(struct sms_settings **sp);
/*
 * sms_settings_update - apply n assignments "NAME=VALUE" (names as listed at
 * the top, with or without the "sms." prefix) in one transaction: all or
 * nothing. Values are validated and stored normalised; "NAME=" deletes the
 * key (factory value). The result must be consistent (backoff_max >=
 * backoff_min). Errors: SG_E_INVAL naming the setting; store errors.
 */
int sms_settings_update(struct store *db, const char *const *assignments, size_t n,
	struct sg_error *err);
/* sms_setting_set - one assignment (value NULL or "" resets). */
int sms_setting_set(struct store *db, const char *name, const char *value,
	struct sg_error *err);

enum sms_print_flags {
	SMS_PRINT_TEXT = 0,
	SMS_PRINT_JSON = 1 << 0,
	SMS_PRINT_REVEAL = 1 << 1,  /* print secrets instead of "***" */
};
/* sms_settings_format - "name = value" lines for every setting (effective
 * values; secrets "***" when set, unless SMS_PRINT_REVEAL), or with
 * SMS_PRINT_JSON one JSON object (numbers as integers, yes/no as booleans).
 * Caller frees; never NULL. */
char *sms_settings_format(const struct sms_settings *s, enum sms_print_flags flags);

/* ------------------------------------------------------------ transports */

/* What a transport sends. All borrowed. */
struct sms_message {
	int64_t id;           /* queue id (0 when not queued) */
	const char *phone;    /* E.164 */
	const char *text;
	const char *ref;      /* may be NULL */
};

/*
 * A transport send function: 0 = the gateway accepted the message; -1 =
 * failed, err set: a code of the temporary or internal class
 * (SG_E_PEER_TEMP, SG_E_IO, SG_E_CONFIG, ...) means retry later, a permanent
 * one (SG_E_PEER_PERM, SG_E_INVAL, ...) means give up.
 */
typedef int sms_send_fn(void *arg, const struct sms_message *m, struct sg_error *err);

struct sms_transport;

/*
 * sms_transport_open - the transport the settings name (borrowed only during
 * the call: the transport copies what it needs). NULL + err: SG_E_CONFIG for
 * transport none or incomplete settings (no URL, no file path), SG_E_INVAL
 * for a bad success regex.
 */
struct sms_transport *sms_transport_open(const struct sms_settings *s,
	struct sg_error *err);
/* sms_transport_new_custom - a transport calling fn(arg, ...) (tests, future
 * transports). name is copied. Never NULL. */
struct sms_transport *sms_transport_new_custom(const char *name, sms_send_fn *fn,
	void *arg);
/* sms_transport_send - send one message (see sms_send_fn). Blocks up to the
 * configured timeout. */
int sms_transport_send(struct sms_transport *t, const struct sms_message *m,
	struct sg_error *err);
/* sms_transport_name - "http", "clickatell", "file" or the custom name. */
const char *sms_transport_name(const struct sms_transport *t);
/* sms_transport_close - accepts NULL, clears *tp. */
void sms_transport_close(struct sms_transport **tp);

/* ------------------------------------------------------------ the worker */

struct sms_run_stats {
	unsigned sent;      /* accepted by the transport (rows deleted) */
	unsigned deferred;  /* temporary failure: queued again */
	unsigned failed;    /* permanent failure or lifetime exceeded */
};

/*
 * sms_run_due - send up to max (0 = 100) messages due at time now (seconds
 * since the epoch): queued with next_attempt <= now, or sending with an
 * expired lease. t is the transport to use (borrowed), or NULL for the one
 * the stored settings name (with transport none nothing is sent and 0 is
 * returned). Messages are tried oldest due first; the run stops after the
 * first temporary failure (the gateway is probably down or overloaded: the
 * rest wait for the next run, so an outage costs one timeout per run). Runs
 * synchronously in the calling thread: each send blocks up to the HTTP
 * timeout, so a scheduler should call it from a worker, not from an event
 * loop. Each outcome is logged (info: sent; warn: deferred/failed).
 * *stats_r (may be NULL) counts the outcomes. 0 ok (transport failures are
 * outcomes, not errors), -1 err (store or settings failure).
 */
int sms_run_due(struct store *db, struct sms_transport *t, int64_t now, unsigned max,
	struct sms_run_stats *stats_r, struct sg_error *err);

#endif
