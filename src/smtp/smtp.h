/*
 * smtp.h - the SMTP listener (server side; SPEC F-FLOW-1/2/5/6, F-ADM-5).
 *
 * Accepts mail over ESMTP (PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES,
 * STARTTLS, SMTPUTF8, DSN), checks relay permission (standalone: my_networks or
 * relay domains; postfix mode: my_networks clients only), size limit, hop count
 * and recipient count, optionally verifies recipients against the internal
 * relay host, streams DATA into a spool file and answers 250 only after the
 * file is committed (fsync + rename + dir fsync) to incoming/.
 *
 * Threads: smtp_server_run runs N libevent loops (one per thread, the caller's
 * thread is loop 0). Loop 0 accepts and hands connections round-robin to the
 * loops. Every callback in smtp_server_conf may be called from any loop thread
 * (and must be thread-safe); none may block for long.
 *
 * Replies the admin will see (all with RFC 3463 enhanced codes):
 *   250 2.0.0 Ok: queued as <ID>   only after the spool commit (fsync file,
 *                                  rename into incoming/, fsync directory)
 *   451 4.3.0  database unavailable (store_is_ok false) or no settings, at
 *              MAIL; spool I/O error at DATA or end of DATA
 *   452 4.3.1  spool disk full (SG_E_NOSPACE): nothing is acknowledged
 *   452 4.5.3  more than max_recipients RCPTs
 *   552 5.3.4  before_filter_size exceeded (MAIL SIZE= or at end of DATA)
 *   554 5.4.6  more Received: headers than max_received_headers
 *   554 5.6.0  NUL bytes in the message
 *   500 5.5.2  command line over 512 octets (MAIL/RCPT: 2048), message line
 *              over SMTP_TEXT_LINE_MAX (1 MiB), NUL or bare CR in a command,
 *              unknown verb
 *   554 5.7.1  relay denied (standalone: recipient outside relay domains
 *              and client outside my_networks)
 *   450/550 x.1.1  recipient refused by the internal relay host probe
 *   421 4.4.2 idle timeout; 421 4.7.0 too many errors / sessions;
 *   421 4.3.2 server stopping
 * Bare LF ends a command line and is normalised to CRLF in DATA; the end of
 * DATA is only <CRLF>.<CRLF> (SMTP smuggling defence).
 *
 * Start-up requirements (one-time library initialisation is the caller's job,
 * STYLE §7): OpenSSL initialised (OPENSSL_init_ssl) when a certificate is
 * configured; SIGPIPE ignored. libevent threading (evthread_use_pthreads) is
 * NOT required: cross-thread wake-ups use the server's own pipes.
 */
#ifndef SG_SMTP_H
#define SG_SMTP_H

#include "lib/lib.h"
#include "mta/mta.h"
#include "spool/spool.h"

struct smtp_server;

/* on_queued - a message was durably committed to incoming/ (called right
 * before the 250 is sent, in the session's loop thread: must not block). id
 * is borrowed for the call. */
typedef void smtp_on_queued_fn(void *arg, const char *id);
/* settings_get - a NEW reference to the current settings snapshot (the
 * session frees it with mta_settings_free), or NULL when none is available
 * (then MAIL gets 451 4.3.0). */
typedef struct mta_settings *smtp_settings_fn(void *arg);
/* store_is_ok - the database is reachable; false makes MAIL answer 451 4.3.0
 * (the message could not be processed anyway). Called at every MAIL in a
 * loop thread: must be cheap (e.g. an atomic flag kept by a health check). */
typedef bool smtp_store_ok_fn(void *arg);

struct smtp_server_conf {
	struct sg_hostport listen;      /* e.g. 127.0.0.1:10025; port 0 = any free */
	unsigned threads;               /* event loops, 1..64 (0 = 2) */
	unsigned max_sessions;          /* over it: 421 4.7.0 and close (0 = 200) */
	unsigned idle_timeout_ms;       /* per command / DATA chunk / TLS handshake
	                                   (0 = 300000); then 421 4.4.2 and close */
	unsigned max_errors;            /* client errors before 421 (0 = 20) */
	const char *hostname;           /* greeting and Received: (NULL = settings) */
	const char *tls_cert_file;      /* PEM chain; NULL = no STARTTLS */
	const char *tls_key_file;       /* PEM key (NULL = same file as cert) */
	enum sg_smtp_mode mode;         /* SG_MODE_STANDALONE or SG_MODE_POSTFIX */
	struct spool *spool;            /* borrowed; must outlive the server */
	unsigned verify_timeout_ms;     /* recipient probe (0 = 10000) */
	unsigned verify_threads;        /* probe workers (0 = 2) */
	smtp_on_queued_fn *on_queued;   /* may be NULL */
	void *on_queued_arg;
	smtp_settings_fn *settings_get; /* required */
	void *settings_arg;
	smtp_store_ok_fn *store_is_ok;  /* may be NULL (= always ok) */
	void *store_arg;
};

/*
 * smtp_server_new - validate conf, load the TLS certificate, bind and listen
 * (so smtp_server_port is known before run). conf and its strings are copied.
 * NULL + err on failure (SG_E_IO for bind errors, SG_E_CRYPTO for TLS).
 */
struct smtp_server *smtp_server_new(const struct smtp_server_conf *conf,
	struct sg_error *err);
/* smtp_server_port - the bound TCP port (useful with port 0). */
unsigned smtp_server_port(const struct smtp_server *s);
/*
 * smtp_server_run - serve until smtp_server_stop; blocks the calling thread
 * (loop 0) and runs threads-1 more threads. On stop every session gets
 * "421 4.3.2 Service shutting down" (a DATA in progress is discarded, its temp
 * file removed) and run returns 0 once all loops ended (at most ~2 s later).
 * Returns -1 + err if a thread cannot be started. Call at most once.
 */
int smtp_server_run(struct smtp_server *s, struct sg_error *err);
/* smtp_server_stop - ask run to return; any thread, async-signal-unsafe but
 * lock-free apart from a mutex; idempotent. */
void smtp_server_stop(struct smtp_server *s);
/* smtp_server_free - close the listener and free everything (waits for
 * running recipient probes, at most verify_timeout_ms); run must have
 * returned (or never been called). Accepts NULL, clears *sp. */
void smtp_server_free(struct smtp_server **sp);

/* smtp_server_sessions - sessions currently open (for status/metrics). */
unsigned smtp_server_sessions(const struct smtp_server *s);

#endif
