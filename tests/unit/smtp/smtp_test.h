/*
 * smtp_test.h - helpers for the SMTP listener tests: a real smtp_server
 * running in a thread on 127.0.0.1:<free port> over a temporary spool, with
 * its MTA settings in a temporary SQLite store (set through the public
 * mta_setting_set API), and a small blocking TCP client that speaks SMTP.
 */
#ifndef SMTP_TEST_H
#define SMTP_TEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/lib.h"
#include "mta/mta.h"
#include "smtp/smtp.h"
#include "spool/spool.h"
#include "store/store.h"

#define TSRV_MAX_QUEUED 64

struct tsrv {
	char dir[256];             /* temp dir: spool/, sealgate.db, tls files */
	struct spool *spool;
	struct store *db;
	pthread_mutex_t mu;
	struct mta_settings *ms;   /* current snapshot (under mu) */
	bool store_down;           /* store_is_ok returns false */
	bool no_settings;          /* settings_get returns NULL */
	char queued[TSRV_MAX_QUEUED][SG_MAIL_ID_LEN + 1];
	unsigned nqueued;
	bool queued_file_seen;     /* incoming/<id> existed when on_queued ran */
	struct smtp_server *srv;
	pthread_t thr;
	bool running;
	unsigned port;
};

struct tsrv_opts {
	enum sg_smtp_mode mode;
	unsigned idle_timeout_ms;  /* 0 = 10000 */
	unsigned max_errors;       /* 0 = server default */
	unsigned max_sessions;
	const char *listen_host;   /* default 127.0.0.1 */
	bool with_tls;             /* generate a self-signed cert, offer STARTTLS */
	unsigned verify_timeout_ms;
};

/* tsrv_init - temp dir, spool and store (no server yet). Asserts on failure. */
void tsrv_init(struct tsrv *t);
/* tsrv_set - set an MTA setting in the store and reload the snapshot. */
void tsrv_set(struct tsrv *t, const char *name, const char *value);
/* tsrv_start - start the server in a thread. */
void tsrv_start(struct tsrv *t, const struct tsrv_opts *o);
/* tsrv_stop - stop, join, free everything and remove the temp dir. */
void tsrv_done(struct tsrv *t);
/* tsrv_count - files in spool queue dir q ("incoming", "tmp", ...). */
unsigned tsrv_count(struct tsrv *t, const char *q);
/* tsrv_path - "<dir>/<rel>" into a static-per-call buffer of the caller. */
void tsrv_path(const struct tsrv *t, const char *rel, char *out, size_t outsz);

/* A blocking client with a 10 s receive timeout. */
struct tcli {
	int fd;
	char buf[65536];
	size_t have;
	char last[8192];    /* last reply, lines joined with '\n' */
	void *ssl;          /* SSL * after tcli_starttls */
};

/* tcli_connect - connect to host:port (IPv4 or IPv6 literal); asserts. */
void tcli_connect(struct tcli *c, const char *host, unsigned port);
/* tcli_open - connect to 127.0.0.1 and read the greeting (asserts 220). */
void tcli_open(struct tcli *c, unsigned port);
void tcli_close(struct tcli *c);
/* tcli_send - write the formatted text as is (no CRLF added). */
void tcli_send(struct tcli *c, const char *fmt, ...) SG_PRINTF(2, 3);
void tcli_send_raw(struct tcli *c, const void *data, size_t len);
/* tcli_reply - read one complete reply; its code, or -1 on EOF/timeout.
 * The text is in c->last. */
int tcli_reply(struct tcli *c);
/* tcli_cmd - send "line\r\n" and return the reply code. */
int tcli_cmd(struct tcli *c, const char *line);
/* tcli_is_closed - the server closed the connection (EOF within 5 s). */
bool tcli_is_closed(struct tcli *c);
/* tcli_ehlo - EHLO test.example; asserts 250. */
void tcli_ehlo(struct tcli *c);
/* tcli_starttls - STARTTLS + handshake; asserts. */
void tcli_starttls(struct tcli *c);

/* Reading what was spooled. */
struct tmsg {
	struct spool_env env;
	char *body;
	size_t len;
};
/* tmsg_load - open incoming/<id>; asserts. */
void tmsg_load(struct tsrv *t, const char *id, struct tmsg *m);
void tmsg_free(struct tmsg *m);
/* tmsg_body_after_received - the body after our own Received: header. */
const char *tmsg_body_after_received(const struct tmsg *m, size_t *len_r);
/* tid_from_reply - the ID in "250 2.0.0 Ok: queued as <ID>" (c->last). */
void tid_from_reply(const struct tcli *c, char *id);

#endif
