/*
 * smtpd_stub.h - a scripted SMTP receiver for the delivery tests: a thread
 * listening on 127.0.0.1:<free port> that answers with configured replies
 * (optionally STARTTLS with a test certificate and AUTH PLAIN/LOGIN with
 * expected credentials) and records what it received. Sessions run
 * concurrently (a thread each), as the client keeps idle connections open;
 * every read gives up after 10 s so a broken client cannot hang a test.
 * Between transactions a session closes its connection (without a reply)
 * when the script changed (stub_set_conf) or stub_close_idle asks, so that a
 * client's cached connection never runs an old script.
 */
#ifndef SMTPD_STUB_H
#define SMTPD_STUB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define STUB_MAX_RCPT_RULES 8

struct stub_rcpt_rule {
	const char *addr;    /* recipient address (exact, without <>) */
	const char *reply;   /* full reply line(s) without final CRLF, e.g. "550 5.1.1 no" */
};

struct stub_conf {
	const char *greeting;     /* default "220 stub ESMTP"; a 4xx/5xx closes after it */
	const char *ehlo_ext;     /* extension lines, '\n'-separated, e.g. "PIPELINING\nSIZE 1000" */
	bool ehlo_refused;        /* answer EHLO with 502 (client must use HELO) */
	const char *mail_reply;   /* default "250 2.1.0 Ok" */
	struct stub_rcpt_rule rcpt_rules[STUB_MAX_RCPT_RULES]; /* others: 250 2.1.5 */
	const char *data_reply;   /* reply to DATA, default "354 go" */
	const char *final_reply;  /* after ".", default "250 2.0.0 Ok: queued" */
	SSL_CTX *tls;             /* offer STARTTLS when set (borrowed) */
	const char *auth_user;    /* offer AUTH when set; credentials checked */
	const char *auth_pass;
	const char *auth_mechs;   /* offered mechanisms, default "PLAIN LOGIN" */
	bool auth_required;       /* MAIL before a successful AUTH gets 530 */
	bool keep_data;           /* keep the DATA bytes (else only count them) */
	bool drop_second_mail;    /* close when a second MAIL arrives in one
	                             session, after second_mail_reply if set */
	const char *second_mail_reply;
};

struct stub_smtpd {
	int lfd;
	unsigned port;
	pthread_t thr;
	pthread_mutex_t mu;
	bool is_stopping;
	struct stub_conf conf;
	unsigned conf_gen;       /* bumped by stub_set_conf */
	unsigned kick_gen;       /* bumped by stub_close_idle */
	const char *kick_reply;  /* what stub_close_idle sends first, or NULL */
	unsigned active;         /* sessions running */
	/* recorded (under mu) */
	unsigned sessions;       /* connections accepted */
	unsigned messages;       /* transactions that ended with a 2xx final reply */
	unsigned quits;          /* QUIT commands received */
	unsigned idle_closed;    /* sessions closed while idle (kick, new script,
	                            drop_second_mail) */
	char *transcript;        /* every command line received, '\n'-separated */
	size_t transcript_len;
	char *data;              /* raw DATA bytes of the last transaction, as received
	                            (dot-stuffed, without the final ".\r\n") */
	size_t data_len;
	uint64_t data_bytes;     /* DATA bytes of the last transaction (keep_data or not) */
	bool saw_tls;            /* a TLS handshake completed */
	bool auth_ok;            /* an AUTH succeeded */
	bool auth_seen;          /* any AUTH command was received */
	bool auth_in_clear;      /* an AUTH command arrived without TLS */
	bool mail_in_clear;      /* a MAIL command arrived without TLS */
	char auth_mech[16];      /* mechanism of the last AUTH */
	bool saw_pipelining;     /* RCPT arrived before the MAIL reply was sent */
};

/* stub_start - listen on 127.0.0.1:0 and start the thread; 0 ok, -1 err. */
int stub_start(struct stub_smtpd *s, const struct stub_conf *conf);
/* stub_stop - stop the thread, close, free the records. */
void stub_stop(struct stub_smtpd *s);
/* stub_set_conf - replace the script (takes effect at the next session). */
void stub_set_conf(struct stub_smtpd *s, const struct stub_conf *conf);
/* stub_close_idle - make every session that waits between transactions
 * send reply (when not NULL, e.g. "421 4.4.2 idle") and close; waits up to
 * 2 s until no session is running. 0 when none is left, -1 otherwise. */
int stub_close_idle(struct stub_smtpd *s, const char *reply);
/* stub_active - sessions running now. */
unsigned stub_active(struct stub_smtpd *s);
/* stub_reset - clear every record (transcript, data, counters, flags). */
void stub_reset(struct stub_smtpd *s);
/* stub_has_cmd - transcript contains a line starting with prefix (case-sens.). */
bool stub_has_cmd(struct stub_smtpd *s, const char *prefix);
/* stub_count_cmd - number of transcript lines starting with prefix. */
unsigned stub_count_cmd(struct stub_smtpd *s, const char *prefix);

/* stub_tls_ctx - server SSL_CTX with a fresh self-signed P-256 certificate
 * for CN/SAN "localhost" (made with the OpenSSL API); the certificate is
 * written to <dir>/stub-cert.pem whose path goes to cert_path (the CA file
 * for verification). NULL on error. */
SSL_CTX *stub_tls_ctx(const char *dir, char *cert_path, size_t cert_path_sz);

/* stub_free_port - a TCP port on 127.0.0.1 that nobody listens on (bound and
 * closed). */
unsigned stub_free_port(void);

#endif
