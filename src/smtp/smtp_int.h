/*
 * smtp_int.h - structures and helpers shared inside src/smtp/ (and by its unit
 * tests and fuzzer): the command-line parser (smtp_cmd.c), the DATA scanner
 * (smtp_data.c), the recipient verifier (smtp_verify.c). Not a public API.
 */
#ifndef SG_SMTP_INT_H
#define SG_SMTP_INT_H

#include "lib/lib.h"
#include "smtp/smtp.h"

/* RFC 5321 4.5.3.1: command line 512 octets incl. CRLF; path 256; local part 64;
 * domain 255. Extensions add to the line length (SIZE, DSN: RFC 3461 adds
 * 100 ENVID + 500 ORCPT...), so MAIL/RCPT lines may be longer. */
#define SMTP_LINE_MAX 512
#define SMTP_EXT_LINE_MAX 2048 /* MAIL/RCPT with ESMTP parameters */
#define SMTP_PATH_MAX 256
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
/* DATA text line incl. CRLF. RFC 5321 4.5.3.1.6 says 1000, but real mail
 * (generated HTML, long header fields) exceeds it and Postfix accepts it: a
 * gateway must not refuse what the MTA in front of it took. Lines are
 * streamed; only absurd ones are refused, to protect the MIME stages. */
#define SMTP_TEXT_LINE_MAX (1024 * 1024)
/* Junk commands (NOOP, RSET, VRFY, HELP, HELO/EHLO) and recipients over the
 * limit are answered normally up to these counts; past them each one also
 * counts as a client error (max_errors then ends the session with 421), as
 * Postfix's smtpd_junk_command_limit / smtpd_recipient_overshoot_limit. */
#define SMTP_JUNK_MAX 100
#define SMTP_RCPT_OVERSHOOT_MAX 1000

enum smtp_verb {
	SMTP_V_UNKNOWN = 0,
	SMTP_V_HELO,
	SMTP_V_EHLO,
	SMTP_V_MAIL,
	SMTP_V_RCPT,
	SMTP_V_DATA,
	SMTP_V_RSET,
	SMTP_V_NOOP,
	SMTP_V_QUIT,
	SMTP_V_VRFY,
	SMTP_V_EXPN,
	SMTP_V_HELP,
	SMTP_V_STARTTLS,
	SMTP_V_AUTH,
	SMTP_V_BDAT,
	SMTP_V__COUNT
};

/* A reply decided by a parser: code, enhanced code, text (all static). */
struct smtp_status {
	int code;
	const char *enh;
	const char *text;
};

enum smtp_body { SMTP_BODY_7BIT = 0, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_args {
	char addr[SMTP_PATH_MAX + 1];   /* "" for <> */
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext as given, "" = none */
	bool addr_8bit;                 /* address has non-ASCII bytes */
};

struct smtp_rcpt_args {
	char addr[SMTP_PATH_MAX + 1];
	unsigned notify;                /* enum spool_notify flags, 0 = not given */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "rfc822;user@example" as given, "" = none */
	bool addr_8bit;
};

/* Same values as enum spool_notify (spool.h); kept here so the parser has no
 * dependency on the spool. smtp_session.c checks they agree. */
#define SMTP_NOTIFY_NEVER (1u << 0)
#define SMTP_NOTIFY_SUCCESS (1u << 1)
#define SMTP_NOTIFY_FAILURE (1u << 2)
#define SMTP_NOTIFY_DELAY (1u << 3)

/*
 * smtp_cmd_verb - identify the verb of a command line (without CRLF, len
 * bytes, may contain NUL). *args_r points after the verb and one space (or at
 * the end). Verbs are case-insensitive and end at a space or end of line.
 */
enum smtp_verb smtp_cmd_verb(const char *line, size_t len, const char **args_r);
const char *smtp_verb_name(enum smtp_verb v);

/*
 * smtp_cmd_mail - parse the argument of MAIL ("FROM:<a@b> SIZE=1 ...", args
 * as returned by smtp_cmd_verb). 0 ok (*a filled), -1 with st set to the reply
 * (501 syntax, 555 unknown parameter, 553 non-ASCII without SMTPUTF8...).
 * utf8_ok: the server advertised SMTPUTF8.
 */
int smtp_cmd_mail(const char *args, struct smtp_mail_args *a, struct smtp_status *st);
/* smtp_cmd_rcpt - parse "TO:<a@b> NOTIFY=... ORCPT=..."; smtputf8 says whether
 * the transaction's MAIL carried SMTPUTF8 (else non-ASCII is 553). */
int smtp_cmd_rcpt(const char *args, bool smtputf8, struct smtp_rcpt_args *a,
	struct smtp_status *st);
/* smtp_cmd_domain - validate a HELO/EHLO argument (domain or address literal). */
bool smtp_cmd_helo_ok(const char *arg);
/* smtp_utf8_is_valid - well-formed UTF-8 (no overlongs, no surrogates). */
bool smtp_utf8_is_valid(const unsigned char *s, size_t len);

/* ----------------------------------------------------------- DATA scanner */

/*
 * The DATA scanner turns the dot-stuffed SMTP stream into the message:
 *  - a line starting with '.' loses that dot (RFC 5321 4.5.2);
 *  - end of data is ONLY <CRLF>.<CRLF> (the line before ends in CRLF, or it is
 *    the first line); "<LF>.<LF>" and friends are content (SMTP smuggling
 *    defence, CVE-2023-51766 family);
 *  - a bare LF line end is normalised to CRLF (as Postfix 3.9 "normalize");
 *    bare CR is kept as-is;
 *  - NUL bytes are counted (the session rejects such messages with 554);
 *  - lines longer than SMTP_TEXT_LINE_MAX (incl. CRLF) are counted (the
 *    session rejects such messages with 500 5.5.2);
 *  - "Received:" header lines in the header section (until the first empty
 *    line) are counted for the hop limit.
 * It keeps O(1) state: lines of any length stream through.
 */
struct smtp_data_scan {
	int state;
	bool in_headers;
	bool prev_crlf;       /* last line ended with CRLF (or none yet) */
	bool done;
	unsigned received;    /* Received: headers seen in the header section */
	uint64_t nul_bytes;
	uint64_t bare_lf;
	uint64_t line_len;    /* content bytes of the current line so far */
	uint64_t long_lines;  /* lines over SMTP_TEXT_LINE_MAX incl. CRLF */
	char hdr[16];         /* start of the current header line */
	size_t hdr_len;
	bool hdr_checked;
};

void smtp_data_scan_init(struct smtp_data_scan *sc);
/*
 * smtp_data_scan_feed - consume input up to and including the end marker.
 * Writes the message bytes to out (capacity at least 2 * len + 4) and sets
 * *outlen_r. Returns the number of input bytes consumed (< len only when the
 * end marker was found; then sc->done is true and the rest is pipelined input).
 */
size_t smtp_data_scan_feed(struct smtp_data_scan *sc, const char *in, size_t len,
	char *out, size_t *outlen_r);

/* -------------------------------------------------- server internals */

#include <pthread.h>

struct event_base;
struct event;
struct evconnlistener;
struct bufferevent;
struct ssl_ctx_st;
struct smtp_server;
struct smtp_session;
struct smtp_verify;
struct spool;
struct mta_settings;

/* Messages posted to a loop from other threads (mailbox + wake pipe). */
enum smtp_msg_kind { SMTP_MSG_CONN, SMTP_MSG_VERIFY, SMTP_MSG_STOP };

struct smtp_msg {
	struct smtp_msg *next;
	enum smtp_msg_kind kind;
	int fd;                 /* CONN: accepted socket */
	char addr[64];          /* CONN: client address text */
	uint64_t serial;        /* VERIFY: session serial */
	int code;               /* VERIFY: 2xx/5xx from the relay, 0 = probe failed */
};

struct smtp_loop {
	struct smtp_server *srv;
	unsigned idx;
	struct event_base *base;
	pthread_t thread;
	bool thread_started;
	int wake[2];
	struct event *wake_ev;
	struct event *stop_timer;
	pthread_mutex_t mu;
	struct smtp_msg *head, *tail;
	struct smtp_session *sessions; /* doubly linked, owned by this loop */
	unsigned nsessions;
	bool stopping;
};

/* smtp_loop_post - queue msg (malloc'ed, ownership passes) to loop; any thread. */
void smtp_loop_post(struct smtp_loop *loop, struct smtp_msg *msg);

/* The bits of the server the sessions read (immutable after _new). */
struct smtp_server {
	struct smtp_server_conf_copy {
		unsigned threads, max_sessions, idle_timeout_ms, max_errors;
		char *hostname;
		enum sg_smtp_mode mode;
		struct spool *spool;
		unsigned verify_timeout_ms, verify_threads;
		void (*on_queued)(void *, const char *);
		void *on_queued_arg;
		struct mta_settings *(*settings_get)(void *);
		void *settings_arg;
		bool (*store_is_ok)(void *);
		void *store_arg;
	} conf;
	struct ssl_ctx_st *tls;
	int listen_fd;
	unsigned port;
	struct evconnlistener *listener;
	struct smtp_loop *loops;
	unsigned nloops;
	unsigned next_loop;
	unsigned nsessions;      /* atomic */
	uint64_t next_serial;    /* atomic */
	int stopping;            /* atomic */
	struct smtp_verify *verify;
};

/* smtp_session_start - take over fd (accepted socket) in loop; closes fd on
 * failure. */
void smtp_session_start(struct smtp_loop *loop, int fd, const char *addr);
/* smtp_session_next - the next session in the loop's list (or NULL). */
struct smtp_session *smtp_session_next(struct smtp_session *sess);
/* smtp_session_shutdown - 421 and close (server stop). */
void smtp_session_shutdown(struct smtp_session *sess);
/* smtp_session_free_now - free without a reply (loop teardown). */
void smtp_session_free_now(struct smtp_session *sess);
/* smtp_session_verify_done - deliver a probe result to the session serial. */
void smtp_session_verify_done(struct smtp_loop *loop, uint64_t serial, int code);

/* ------------------------------------------------- recipient verification */

/* smtp_verify_new - cache + worker threads probing the relay host. */
struct smtp_verify *smtp_verify_new(unsigned threads, unsigned timeout_ms,
	struct sg_error *err);
/* smtp_verify_free - stop workers (pending probes finish or time out). */
void smtp_verify_free(struct smtp_verify **vp);
/* smtp_verify_cached - 1 + *code_r (2xx/5xx) if a fresh answer is cached. */
int smtp_verify_cached(struct smtp_verify *v, const char *host, unsigned port,
	const char *addr, int *code_r);
/* smtp_verify_submit - probe host:port for addr in a worker; the answer (also
 * cached with the given lifetimes) is posted to loop as SMTP_MSG_VERIFY. */
void smtp_verify_submit(struct smtp_verify *v, const char *host, unsigned port,
	const char *helo, const char *addr, unsigned ttl_pos, unsigned ttl_neg,
	struct smtp_loop *loop, uint64_t serial);
/* smtp_verify_probe - one blocking probe (exposed for tests): returns the RCPT
 * reply code, or 0 when the probe failed (connect, timeout, 4xx before RCPT). */
int smtp_verify_probe(const char *host, unsigned port, const char *helo,
	const char *addr, unsigned timeout_ms);

#endif
