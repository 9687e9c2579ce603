/*
 * lib.h - Sealgate's base library: errors, logging with mail IDs, memory helpers,
 * capped buffers, durable file helpers, the configuration file and time.
 *
 * The only header of src/lib/. It knows nothing about mail policy. Every other
 * module may include it. All symbols start with sg_ (module prefix of lib/).
 */
#ifndef SG_LIB_H
#define SG_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ------------------------------------------------------------------ errors */

/*
 * Error codes. Each belongs to exactly one class (sg_errc_class): temporary
 * (retry, 4xx, defer), permanent (5xx, bounce) or internal (error queue).
 */
enum sg_errc {
	SG_E_OK = 0,
	SG_E_IO,         /* local I/O failure (temporary) */
	SG_E_NOSPACE,    /* disk full (temporary, 452) */
	SG_E_NOMEM,      /* out of memory (temporary) */
	SG_E_LIMIT,      /* input over a configured limit (permanent) */
	SG_E_PARSE,      /* malformed input (permanent) */
	SG_E_CONFIG,     /* bad configuration (internal) */
	SG_E_CRYPTO,     /* crypto failure (internal) */
	SG_E_POLICY,     /* refused by policy (permanent) */
	SG_E_STORE,      /* database unavailable or failed (temporary) */
	SG_E_NOTFOUND,   /* object not found (permanent) */
	SG_E_EXISTS,     /* object already exists (permanent) */
	SG_E_INVAL,      /* invalid argument / value (permanent) */
	SG_E_PEER_TEMP,  /* remote peer said 4xx or is unreachable (temporary) */
	SG_E_PEER_PERM,  /* remote peer said 5xx (permanent) */
	SG_E_INTERNAL,   /* broken invariant (internal) */
	SG_E__COUNT
};

enum sg_errc_class {
	SG_EC_TEMPORARY,
	SG_EC_PERMANENT,
	SG_EC_INTERNAL,
};

#define SG_ERROR_MSG_MAX 256

struct sg_error {
	enum sg_errc code;
	char msg[SG_ERROR_MSG_MAX]; /* human text, escaped, never secrets */
};

/* sg_error_set - fill err (may be NULL) with code and a formatted message. */
void sg_error_set(struct sg_error *err, enum sg_errc code, const char *fmt, ...)
	SG_PRINTF(3, 4);
/* sg_error_prefix - prepend formatted context to err->msg (truncates safely). */
void sg_error_prefix(struct sg_error *err, const char *fmt, ...) SG_PRINTF(2, 3);
/* sg_error_set_errno - like sg_error_set with ": strerror(errnum)" appended; ENOSPC
 * and EDQUOT map to SG_E_NOSPACE, everything else to code. */
void sg_error_set_errno(struct sg_error *err, enum sg_errc code, int errnum,
	const char *fmt, ...) SG_PRINTF(4, 5);
/* sg_error_set_openssl - set code and message, appending the drained OpenSSL queue. */
void sg_error_set_openssl(struct sg_error *err, enum sg_errc code, const char *fmt, ...)
	SG_PRINTF(3, 4);
void sg_error_clear(struct sg_error *err);
const char *sg_errc_name(enum sg_errc code);
enum sg_errc_class sg_errc_class(enum sg_errc code);

/*
 * The one table mapping error codes to SMTP replies (Postfix cleanup_stat_map).
 * smtp_code is 451/452/552/554/550..., enh the enhanced status "4.3.0".
 */
struct sg_smtp_status {
	int smtp_code;
	const char *enh;
	const char *text;
};
const struct sg_smtp_status *sg_errc_smtp(enum sg_errc code);

/* --------------------------------------------------------------- logging */

enum sg_log_level { SG_LOG_ERR = 3, SG_LOG_WARN = 4, SG_LOG_INFO = 6, SG_LOG_DEBUG = 7 };

enum sg_log_dest { SG_LOGDEST_STDERR, SG_LOGDEST_SYSLOG };

enum sg_trace {
	SG_TRACE_SMTP = 1u << 0,
	SG_TRACE_MPA = 1u << 1,
	SG_TRACE_SPOOL = 1u << 2,
	SG_TRACE_STORE = 1u << 3,
	SG_TRACE_DELIVERY = 1u << 4,
};

/* sg_log_init - set destination, threshold and program name. Thread-safe after. */
void sg_log_init(const char *progname, enum sg_log_dest dest, enum sg_log_level level);
void sg_log_set_level(enum sg_log_level level);
void sg_log_set_trace(unsigned mask);
bool sg_log_is_tracing(enum sg_trace t);
/* sg_log - a line without a message context ("NOQUEUE: " is NOT added). */
void sg_log(enum sg_log_level level, const char *fmt, ...) SG_PRINTF(2, 3);
/* sg_log_mail - a line about one message: "<id>: ..." (id NULL -> "NOQUEUE: "). */
void sg_log_mail(enum sg_log_level level, const char *mail_id, const char *fmt, ...)
	SG_PRINTF(3, 4);
/* sg_log_sess - a line about a connection: "s=<sid> ...". */
void sg_log_sess(enum sg_log_level level, const char *sid, const char *fmt, ...)
	SG_PRINTF(3, 4);
void sg_trace(enum sg_trace t, const char *fmt, ...) SG_PRINTF(2, 3);
/*
 * sg_log_esc - escape untrusted bytes for a log line into out (size outsz, always
 * NUL-terminated): non-printable bytes become \xHH, the result is truncated with
 * "..." when it does not fit. Returns out.
 */
char *sg_log_esc(char *out, size_t outsz, const char *in, size_t inlen);

/* ------------------------------------------------------------------ memory */

/* Abort on out-of-memory. Only for small allocations not sized by input. */
void *sg_xmalloc(size_t n);
void *sg_xcalloc(size_t n, size_t size);
void *sg_xrealloc(void *p, size_t n);
char *sg_xstrdup(const char *s);
char *sg_xstrndup(const char *s, size_t n);
char *sg_xasprintf(const char *fmt, ...) SG_PRINTF(1, 2);

/* Capped growable buffer (curl dynbuf): appends past max fail with SG_E_LIMIT. */
struct sg_buf {
	char *data;  /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max;
};
void sg_buf_init(struct sg_buf *b, size_t max);
void sg_buf_deinit(struct sg_buf *b);
void sg_buf_reset(struct sg_buf *b);
int sg_buf_append(struct sg_buf *b, const void *data, size_t len, struct sg_error *err);
int sg_buf_append_str(struct sg_buf *b, const char *s, struct sg_error *err);
int sg_buf_printf(struct sg_buf *b, struct sg_error *err, const char *fmt, ...)
	SG_PRINTF(3, 4);
/* sg_buf_steal - return data (caller frees, never NULL) and reset the buffer. */
char *sg_buf_steal(struct sg_buf *b);

/*
 * Process-wide budget for memory that cannot be streamed (a CMS structure
 * OpenSSL decodes whole; lib_budget.c). sg_budget_acquire blocks until n
 * more bytes fit under the limit, or nothing else is held (a request over
 * the limit runs alone); requests are served in arrival order. Every
 * acquire needs a release of the same n. Limit 0 (the default): unlimited.
 */
void sg_budget_set(uint64_t limit);
void sg_budget_acquire(uint64_t n);
void sg_budget_release(uint64_t n);
/* sg_budget_peak - the most held at once (since the last reset). */
uint64_t sg_budget_peak(bool reset);

/* ----------------------------------------------------------- strings/misc */

size_t sg_strlcpy(char *dst, const char *src, size_t size);
void sg_str_lower(char *s);
bool sg_str_has_prefix_ci(const char *s, const char *prefix);
/* sg_parse_u64 - whole-string decimal parse with bounds; 0 ok, -1 bad. */
int sg_parse_u64(const char *s, uint64_t max, uint64_t *out_r);
int sg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out_r);
/* sg_parse_size - "10M", "512k", "1G", or bytes; 0 ok, -1 bad. */
int sg_parse_size(const char *s, uint64_t *out_r);
/* sg_parse_bool - yes/no/true/false/on/off/1/0; 0 ok, -1 bad. */
int sg_parse_bool(const char *s, bool *out_r);
/* sg_hex - lower-case hex of len bytes into out (size >= 2*len+1). */
void sg_hex(char *out, const unsigned char *in, size_t len);
/* sg_random_bytes - cryptographically secure; 0 ok, -1 err. */
int sg_random_bytes(void *buf, size_t len, struct sg_error *err);

/* Host and port: "127.0.0.1:25", "[::1]:25", "host.example:587", "[host]:25". */
struct sg_hostport {
	char host[256];
	unsigned port;
	bool is_bracketed;  /* written as [host]: no MX lookup (Postfix convention) */
};
/* sg_hostport_parse - default_port used when no ":port"; 0 ok, -1 bad (err set). */
int sg_hostport_parse(const char *s, unsigned default_port, struct sg_hostport *hp_r,
	struct sg_error *err);

/* Email address checks (RFC 5321 Mailbox, permissive for local parts). */
bool sg_addr_is_valid(const char *addr);
/* sg_addr_domain - borrowed pointer to the domain part after the last '@', or NULL. */
const char *sg_addr_domain(const char *addr);

/* ------------------------------------------------------------------- time */

int64_t sg_now(void);          /* seconds since the epoch */
int64_t sg_now_ms(void);       /* milliseconds, CLOCK_REALTIME */
int64_t sg_mono_ms(void);      /* milliseconds, CLOCK_MONOTONIC */
/* sg_time_iso8601 - "2026-11-22T04:28:37Z" into out (>= 21 bytes). */
char *sg_time_iso8601(int64_t t, char *out, size_t outsz);
/* sg_time_rfc5322 - "Sun, 22 Nov 2026 04:28:37 +0000" into out (>= 32 bytes). */
char *sg_time_rfc5322(int64_t t, char *out, size_t outsz);

/* ------------------------------------------------------------ durable I/O */

/* sg_write_all - write every byte, retrying on EINTR; 0 ok, -1 err (errno kept). */
int sg_write_all(int fd, const void *buf, size_t len);
/* sg_read_full - read up to len bytes until EOF; returns bytes read or -1. */
ssize_t sg_read_full(int fd, void *buf, size_t len);
/* sg_fsync_dir - open the directory and fsync it (Redis fsyncFileDir). */
int sg_fsync_dir(const char *dir, struct sg_error *err);
/* sg_mkdir_p - create dir and parents with mode; existing dirs are fine. */
int sg_mkdir_p(const char *dir, mode_t mode, struct sg_error *err);
/*
 * sg_file_write_atomic - write data to path durably: tmp file, fsync, rename,
 * fsync dir. The file is created with mode.
 */
int sg_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
	struct sg_error *err);
/* sg_file_read - read a whole small file (<= max bytes) into *data_r (NUL-terminated,
 * caller frees). */
int sg_file_read(const char *path, size_t max, char **data_r, size_t *len_r,
	struct sg_error *err);

/* ----------------------------------------------------------------- mail ID */

#define SG_MAIL_ID_LEN 16
/*
 * sg_mail_id_new - a unique, sortable message ID: 10 hex digits of microsecond
 * time + 6 random hex digits, upper case, e.g. "18F3A2B4C5D6E7F8". out must hold
 * SG_MAIL_ID_LEN + 1 bytes.
 */
void sg_mail_id_new(char *out);
/* sg_mail_id_is_valid - exactly SG_MAIL_ID_LEN upper-case hex digits. */
bool sg_mail_id_is_valid(const char *id);

/* --------------------------------------------------- own-mail marker (F-FLOW-7) */

/*
 * Every message the gateway generates (notifications, bounces) carries
 *     X-Sealgate-Marker: <mail ID>; <MAC>
 * MAC = base64(HMAC-SHA256(key  = the server secret's bytes,
 *                          data = "sealgate-marker-1" NUL <mail ID> NUL <msgid>))
 * where <mail ID> is the ID of the message the generated mail is about
 * (the input of a notification, the bounced message; sg_mail_id_is_valid)
 * and <msgid> the generated message's Message-ID without blanks (CR, LF,
 * SP, TAB) and
 * without the enclosing angle brackets. The label keeps these MACs apart
 * from other uses of the same secret. A message whose marker verifies was
 * made by this gateway (or one sharing its secret) and is not processed
 * again; the marker binds the Message-ID, not the body (see lib_marker.c).
 */
#define SG_MARKER_HEADER "X-Sealgate-Marker"
#define SG_MARKER_MAX 80 /* bytes of a marker value with its NUL */

/* sg_marker_make - the marker value for mail_id and msgid (the Message-ID
 * field's value, angle brackets and folding allowed) into out (>=
 * SG_MARKER_MAX). SG_E_INVAL for an empty secret, an invalid mail ID or an
 * empty msgid. 0 or -1. */
int sg_marker_make(const char *secret, const char *mail_id, const char *msgid, char *out,
	size_t outsz, struct sg_error *err);
/* sg_marker_verify - true when value (a marker field's value; surrounding
 * blanks ignored) is the marker of a message with Message-ID msgid under
 * secret. False for anything else: NULL/empty arguments, malformed value,
 * wrong MAC (compared in constant time). */
bool sg_marker_verify(const char *secret, const char *value, const char *msgid);

/* ------------------------------------------------------------ configuration */

/*
 * The configuration file: INI-style "key = value" lines in [sections]; '#' and
 * ';' start comments. It only says how to start (SPEC §13, DESIGN "one source of
 * truth"); every other setting lives in the database. Unknown sections or keys,
 * bad values and bad addresses are errors naming FILE:LINE.
 */
enum sg_smtp_mode { SG_MODE_STANDALONE, SG_MODE_POSTFIX };

struct sg_config {
	char *path;                 /* file it was read from ("" for defaults) */
	/* [general] */
	char *data_dir;             /* default /var/lib/sealgate */
	char *database;             /* default sqlite:<data_dir>/sealgate.db */
	char *hostname;             /* default: system host name */
	enum sg_log_level log_level;
	/* [smtp] */
	enum sg_smtp_mode mode;     /* standalone (default) | postfix */
	char *smtp_listen;          /* default 127.0.0.1:10025 */
	char *next_hop;             /* default 127.0.0.1:10026 (postfix mode) */
	char *smtp_tls_certificate; /* optional PEM for STARTTLS */
	char *smtp_tls_key;
	unsigned smtp_threads;      /* listener event loops, default 4 */
	unsigned max_sessions;      /* default 200 */
	unsigned idle_timeout;      /* seconds, default 300 */
	/* [mpa] */
	unsigned mpa_workers;       /* default 8 */
	unsigned mpa_memory_budget_mb; /* default 16: S/MIME structures decoded
	                            * whole, held at once (sg_budget); 0 = no cap */
	/* [delivery] */
	unsigned delivery_workers;  /* default 16 */
	/* [http] */
	char *http_listen;          /* default 127.0.0.1:8443 */
	char *http_tls_certificate;
	char *http_tls_key;
	/* [portal] */
	char *portal_listen;        /* default "" (off) */
	/* the "sealgate" CLI / test hooks */
	unsigned refcount;
};

/* sg_config_defaults - a config with every default (no file). Caller frees. */
struct sg_config *sg_config_defaults(void);
/* sg_config_load - parse path into a new config; NULL on error (err says FILE:LINE). */
struct sg_config *sg_config_load(const char *path, struct sg_error *err);
/* sg_config_load_string - parse text as if it were file name. For tests/fuzzing. */
struct sg_config *sg_config_load_string(const char *name, const char *text, size_t len,
	struct sg_error *err);
struct sg_config *sg_config_ref(struct sg_config *cfg);
void sg_config_free(struct sg_config **cfgp);

#endif
