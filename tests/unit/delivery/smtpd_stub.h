/*
 * smtpd_stub.h - a scripted SMTP receiver for the delivery tests: a thread
 * listening on 127.0.0.1:<free port> that answers with configured replies
 * (optionally STARTTLS with a test certificate and AUTH PLAIN/LOGIN with
 * expected credentials) and records what it received.
 */
#ifndef SMTPD_STUB_H
#define SMTPD_STUB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#define STUB_MAX_RCPT_RULES 8

struct stub_rcpt_rule {
	const char *addr;    /* recipient address (exact) */
	const char *reply;   /* full reply line(s) without final CRLF, e.g. "550 5.1.1 no" */
};

struct stub_conf {
	const char *greeting;     /* default "220 stub ESMTP" */
	const char *ehlo_ext;     /* extension lines, '\n'-separated, e.g. "PIPELINING\nSIZE 1000" */
	bool ehlo_refused;        /* answer EHLO with 502 (client must use HELO) */
	const char *mail_reply;   /* default "250 2.1.0 Ok" */
	struct stub_rcpt_rule rcpt_rules[STUB_MAX_RCPT_RULES];
	const char *data_reply;   /* reply to DATA, default "354 go" */
	const char *final_reply;  /* after ".", default "250 2.0.0 Ok: queued" */
	SSL_CTX *tls;             /* offer STARTTLS when set */
	const char *auth_user;    /* offer AUTH PLAIN LOGIN when set */
	const char *auth_pass;
};

struct stub_smtpd {
	int lfd;
	unsigned port;
	pthread_t thr;
	pthread_mutex_t mu;
	bool is_stopping;
	struct stub_conf conf;
	/* recorded (under mu) */
	unsigned sessions;
	unsigned messages;       /* transactions that ended with a 2xx final reply */
	char *transcript;        /* every command line received, '\n'-separated */
	size_t transcript_len;
	char *data;              /* raw DATA bytes of the last transaction (dot-stuffed) */
	size_t data_len;
	bool saw_tls;
	bool auth_ok;
	bool auth_seen;          /* any AUTH command was received */
};

/* stub_start - listen and start the thread; 0 ok. */
int stub_start(struct stub_smtpd *s, const struct stub_conf *conf);
void stub_stop(struct stub_smtpd *s);
/* stub_set_conf - replace the script (between sessions). */
void stub_set_conf(struct stub_smtpd *s, const struct stub_conf *conf);
/* stub_has_cmd - transcript contains a line starting with prefix. */
bool stub_has_cmd(struct stub_smtpd *s, const char *prefix);

/* stub_tls_ctx - server SSL_CTX with a fresh self-signed certificate for
 * CN/SAN "localhost" made with `openssl req -x509` in dir; the certificate
 * path is written to cert_path (the CA file for verification). */
SSL_CTX *stub_tls_ctx(const char *dir, char *cert_path, size_t cert_path_sz);

/* stub_free_port - a free TCP port on 127.0.0.1 (bound and closed). */
unsigned stub_free_port(void);

#endif
