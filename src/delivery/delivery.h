/*
 * delivery.h - the delivery agent (F-FLOW-1/2/3/6, D-1, D-4, D-8): takes a
 * message from the outgoing queue, relays it to its next hop(s) over SMTP,
 * records per-recipient results, defers with backoff on temporary failures
 * and bounces (RFC 3464 DSN) on permanent ones.
 *
 * Threading: blocking I/O with poll() timeouts; the daemon runs N delivery
 * threads, each calling delivery_message() for one message at a time. Two
 * threads must never deliver the same id at once (the caller dispatches each
 * id to one worker). Every function here is thread-safe otherwise. Each
 * thread keeps its own idle SMTP connections (see "Connection cache"). The
 * process must ignore SIGPIPE (sealgated does): a write on a TLS connection
 * the server closed would otherwise kill it.
 *
 * Next hop (delivery_route.c):
 *   postfix mode      conf->next_hop for every recipient (no MX lookup)
 *   standalone mode   internal relay host for recipients in relay domains,
 *                     external relay host otherwise; a relay host with the mx
 *                     flag is reached through its MX records; no relay host:
 *                     MX of the recipient domain (preference order, A/AAAA
 *                     fallback, null MX => bounce 5.1.10, an MX that is
 *                     ourselves => deferred "mail loops back to myself").
 *
 * Per-recipient results are kept in the spool state (spool_rcpt.last_reply)
 * in the form "<enh> relay=<host>[<ip>]:<port> reply=<smtp reply>" or
 * "<enh> local=<text>", with "expired " after <enh> when the queue lifetime
 * ran out and "reported " once the failure was bounced; the bounce is built
 * from them. A permanent failure is bounced at the end of the attempt that
 * found it, even when other recipients are deferred; the message leaves
 * the queue only once every recipient is final.
 */
#ifndef SG_DELIVERY_H
#define SG_DELIVERY_H

#include "lib/lib.h"
#include "mta/mta.h"
#include "spool/spool.h"

/* Who gets a bounce (D-4: only internal originators, i.e. senders whose
 * domain is a relay domain; DELIVERY_BOUNCE_ANY also bounces to external
 * senders). Bounces, notifications and the null sender never get one. */
enum delivery_bounce_policy {
	DELIVERY_BOUNCE_INTERNAL = 0,
	DELIVERY_BOUNCE_ANY,
};

/* One MX record (pref, exchange host name; "." is the null MX). */
struct delivery_mx {
	unsigned pref;
	char host[256];
};

/*
 * delivery_mx_lookup_fn - resolve the MX records of domain. Returns 1 with
 * *mx_r (malloc'ed array, caller frees) and *n_r set, 0 when the domain exists
 * but has no MX records (use its A/AAAA), -1 on error: SG_E_PEER_TEMP for a
 * temporary DNS failure, SG_E_NOTFOUND when the domain does not exist.
 * The default (conf->mx_lookup NULL) uses res_nquery; tests plug in a table.
 */
typedef int delivery_mx_lookup_fn(void *arg, const char *domain,
	struct delivery_mx **mx_r, size_t *n_r, struct sg_error *err);

struct delivery_conf {
	enum sg_smtp_mode mode;
	struct sg_hostport next_hop;   /* postfix mode: where to re-inject */
	const char *hostname;          /* our name: Reporting-MTA, MAILER-DAEMON@ */
	const char *system_mail_from;  /* From of bounces (D-4), NULL/"" =
	                                  MAILER-DAEMON@hostname; borrowed */
	const char *server_secret;     /* F-FLOW-7: key of the X-Sealgate-Marker
	                                  on bounces (the store's "server_secret"
	                                  setting); NULL/"" = bounces without
	                                  marker; borrowed */
	struct sg_hostport listen;     /* our SMTP listener (mail loop check), port 0 = unknown */
	unsigned connect_timeout;      /* seconds, 0 = 30 */
	unsigned io_timeout;           /* seconds per read/write, 0 = 300 */
	unsigned mx_port;              /* port for MX delivery, 0 = 25 (tests use others) */
	unsigned max_rcpts_per_txn;    /* recipients per SMTP transaction, 0 = 50 */
	uint64_t bounce_full_max;      /* return the full message when smaller, 0 = 50000 */
	enum delivery_bounce_policy bounce_policy;
	const char *tls_ca_file;       /* CA bundle for verify, NULL = system store */
	/* SMTP connection reuse (see delivery_conn_cache_close): a connection is
	 * reused while younger than conn_max_age seconds (0 = 300), for at most
	 * conn_max_tx transactions (0 = 100; 1 turns reuse off) and only when it
	 * was idle for less than conn_idle_ms (0 = 2000). */
	unsigned conn_max_age;
	unsigned conn_max_tx;
	unsigned conn_idle_ms;
	delivery_mx_lookup_fn *mx_lookup; /* NULL = DNS */
	void *mx_lookup_arg;
};

/* delivery_conf_init - defaults for every field (mode standalone, hostname
 * borrowed; the struct keeps the pointer, so it must outlive conf). */
void delivery_conf_init(struct delivery_conf *conf, const char *hostname);

enum delivery_outcome {
	DELIVERY_DONE,      /* every recipient delivered or failed (bounced); removed */
	DELIVERY_DEFERRED,  /* some recipients failed temporarily; moved to deferred/ */
};

/*
 * delivery_message - deliver outgoing/<id>: group the pending recipients by
 * next hop, run one SMTP transaction per group, save each recipient's result
 * in the spool state, then either remove the message (creating the bounce
 * for not yet reported failures in the same spool batch, so "bounce created
 * + original removed" happens exactly once) or defer it (attempts+1,
 * next_attempt = now + backoff, moved to deferred/; permanent failures found
 * in this attempt are bounced first and marked reported). A message older than
 * mta->max_queue_lifetime whose recipients still fail temporarily is bounced
 * ("delivery time expired", 4.4.7). Logs one line per recipient result.
 * Returns 0 and *outcome_r (may be NULL) when the message was handled; -1
 * with err on a local failure (message missing, spool I/O); a damaged file
 * (SG_E_PARSE) is moved to error/ before returning -1.
 */
int delivery_message(const struct delivery_conf *conf, const struct mta_settings *mta,
	struct spool *sp, const char *id, enum delivery_outcome *outcome_r,
	struct sg_error *err);

/*
 * Connection cache. After a transaction that ended in a clean state (the
 * final reply to DATA was read, or a transaction without accepted recipients
 * was reset with RSET), delivery_message keeps the SMTP connection open in a
 * small cache of the calling thread (thread-local: no locking, never shared)
 * instead of sending QUIT, and the next delivery to the same destination
 * with the same HELO name, TLS level, server name, CA file and SASL
 * credentials reuses it (see delivery_conf for the limits). Connections whose
 * server closed them or sent something (421) while idle are dropped before
 * use; one whose first command fails before any reply is replaced by a new
 * connection without a deferral.
 *
 * A thread keeps at most 4 idle connections (the longest idle one is closed
 * to make room); expired ones are closed at its next delivery.
 *
 * delivery_conn_cache_close - QUIT and close every idle connection of the
 * calling thread (waits at most 200 ms for each QUIT reply). Delivery
 * threads call it after about 2 s without work, and must call it before
 * they exit (else the connections and their memory leak).
 * delivery_conn_cache_count - how many idle connections the thread holds.
 */
void delivery_conn_cache_close(void);
unsigned delivery_conn_cache_count(void);

/*
 * delivery_requeue_due - move deferred messages whose next_attempt <= now
 * back to outgoing/. Returns how many were moved, or -1 with err. Messages
 * that cannot be read are skipped (logged).
 */
int delivery_requeue_due(struct spool *sp, int64_t now, struct sg_error *err);

/*
 * delivery_backoff - seconds to wait after the attempts'th failed attempt
 * (attempts >= 1): backoff_min doubling per attempt, capped at backoff_max,
 * with +-10% jitter taken from rnd. Always >= 1.
 */
int64_t delivery_backoff(const struct mta_settings *mta, unsigned attempts, uint32_t rnd);

#endif
