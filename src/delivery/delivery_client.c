/*
 * delivery_client.c - the SMTP client of the delivery agent: one blocking
 * SMTP transaction (delivery_client_send) with STARTTLS (OpenSSL) and AUTH
 * PLAIN/LOGIN (replies, EHLO keywords and dot-stuffing: delivery_proto.c),
 * and the per-thread cache of idle SMTP connections that lets the next
 * transaction to the same destination skip connect, greeting, EHLO,
 * STARTTLS and AUTH (as Postfix's connection cache does).
 *
 * Called by delivery_queue.c in a delivery worker thread; every read and
 * write waits with poll() and the configured timeout. The connection cache
 * is thread-local (each delivery thread has its own; no locking); a thread
 * closes its idle connections with delivery_conn_cache_close. RFCs: 5321 (SMTP),
 * 3207 (STARTTLS), 4954 + 4616 (AUTH, PLAIN), 1870 (SIZE), 6152 (8BITMIME),
 * 6531 (SMTPUTF8), 2920 (PIPELINING), 3461 (DSN parameters), 2034/3463
 * (enhanced status codes).
 *
 * Invariants: credentials are sent only over an established TLS session
 * (D-8); the body is streamed in bounded chunks, never loaded whole;
 * plaintext received after "220" to STARTTLS is refused (injection);
 * replies are bounded (line and line-count caps).
 */
#include "delivery_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define CLIENT_RBUF 8192
/* Body chunk: the dot-stuffed output buffer (2 x chunk) stays below the
 * daemon's 128 KB mmap threshold, so sending a message does not mmap and
 * munmap a buffer each time (1% of the daemon's CPU with 64 KB). */
#define CLIENT_CHUNK 32768

/* connection cache: slots per thread, defaults of the reuse limits (the
 * idle limit is Postfix's smtp_connection_cache_time_limit), and how long a
 * closing QUIT waits for its reply */
#define CONN_CACHE_SLOTS 4
#define CONN_REUSE_MAX_AGE_S 300
#define CONN_REUSE_MAX_TX 100
#define CONN_REUSE_IDLE_MS 2000
#define CONN_QUIT_WAIT_MS 200

/* --------------------------------------------------------------- connection */

struct client_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	unsigned timeout_ms;
	char rbuf[CLIENT_RBUF];
	size_t rpos, rlen;
	const char *mail_id;
	char relay[320];
	unsigned nreplies;       /* complete replies read on this connection */
	bool is_peer_closed;     /* the last error was EOF/reset from the peer */
};

/* conn_wait - poll fd for events within the I/O timeout; 0 ready, -1 err. */
static int conn_wait(struct client_conn *c, short events, struct sg_error *err)
{
	struct pollfd pfd = {.fd = c->fd, .events = events};
	int rc;

	do {
		rc = poll(&pfd, 1, (int)c->timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		sg_error_set_errno(err, SG_E_PEER_TEMP, errno, "poll");
		return -1;
	}
	if (rc == 0) {
		sg_error_set(err, SG_E_PEER_TEMP, "conversation with %s timed out", c->relay);
		return -1;
	}
	return 0;
}

/* conn_ssl_wait - after an SSL_* call returned rc <= 0: wait and return 0 to
 * retry, or -1 on a real error. */
static int conn_ssl_wait(struct client_conn *c, int rc, const char *what,
	struct sg_error *err)
{
	int e = SSL_get_error(c->ssl, rc);

	if (e == SSL_ERROR_WANT_READ)
		return conn_wait(c, POLLIN, err);
	if (e == SSL_ERROR_WANT_WRITE)
		return conn_wait(c, POLLOUT, err);
	if (e == SSL_ERROR_ZERO_RETURN) {
		c->is_peer_closed = true;
		sg_error_set(err, SG_E_PEER_TEMP, "lost connection with %s (TLS close)",
			c->relay);
		return -1;
	}
	if (e == SSL_ERROR_SYSCALL || (e == SSL_ERROR_SSL &&
	    ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
		c->is_peer_closed = true;
	sg_error_set_openssl(err, SG_E_PEER_TEMP, "TLS %s with %s failed", what, c->relay);
	return -1;
}

static int conn_write(struct client_conn *c, const void *buf, size_t len,
	struct sg_error *err)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int rc;

			ERR_clear_error();
			rc = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
			if (rc <= 0) {
				if (conn_ssl_wait(c, rc, "write", err) < 0)
					return -1;
				continue;
			}
			n = rc;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					if (conn_wait(c, POLLOUT, err) < 0)
						return -1;
					continue;
				}
				c->is_peer_closed = errno == EPIPE || errno == ECONNRESET;
				sg_error_set_errno(err, SG_E_PEER_TEMP, errno,
					"lost connection with %s while sending", c->relay);
				return -1;
			}
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* conn_fill - read more bytes into rbuf (compacting first). */
static int conn_fill(struct client_conn *c, struct sg_error *err)
{
	ssize_t n;

	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	for (;;) {
		if (c->ssl != NULL) {
			int rc;

			ERR_clear_error();
			rc = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof(c->rbuf) - c->rlen));
			if (rc <= 0) {
				if (conn_ssl_wait(c, rc, "read", err) < 0)
					return -1;
				continue;
			}
			n = rc;
		} else {
			n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					if (conn_wait(c, POLLIN, err) < 0)
						return -1;
					continue;
				}
				c->is_peer_closed = errno == ECONNRESET;
				sg_error_set_errno(err, SG_E_PEER_TEMP, errno,
					"lost connection with %s", c->relay);
				return -1;
			}
			if (n == 0) {
				c->is_peer_closed = true;
				sg_error_set(err, SG_E_PEER_TEMP, "lost connection with %s",
					c->relay);
				return -1;
			}
		}
		c->rlen += (size_t)n;
		return 0;
	}
}

/* conn_read_reply - read one complete (possibly multi-line) reply. */
static int conn_read_reply(struct client_conn *c, struct delivery_reply *r,
	struct sg_error *err)
{
	delivery_reply_reset(r);
	for (;;) {
		char *nl = memchr(c->rbuf + c->rpos, '\n', c->rlen - c->rpos);
		size_t len;
		int rc;

		if (nl == NULL) {
			if (c->rlen - c->rpos > DELIVERY_REPLY_LINE_MAX + 1) {
				sg_error_set(err, SG_E_PEER_TEMP,
					"reply line from %s longer than %d bytes", c->relay,
					DELIVERY_REPLY_LINE_MAX);
				return -1;
			}
			if (conn_fill(c, err) < 0)
				return -1;
			continue;
		}
		len = (size_t)(nl - (c->rbuf + c->rpos));
		if (len > 0 && c->rbuf[c->rpos + len - 1] == '\r')
			len--;
		rc = delivery_reply_feed(r, c->rbuf + c->rpos, len, err);
		c->rpos = (size_t)(nl - c->rbuf) + 1;
		if (rc < 0) {
			sg_error_prefix(err, "bad reply from %s: ", c->relay);
			err->code = SG_E_PEER_TEMP;
			return -1;
		}
		if (rc == 1)
			break;
	}
	c->nreplies++;
	if (sg_log_is_tracing(SG_TRACE_DELIVERY)) {
		char sum[600];

		delivery_reply_summary(r, sum, sizeof(sum));
		sg_trace(SG_TRACE_DELIVERY, "%s: %s < %s", c->mail_id, c->relay, sum);
	}
	return 0;
}

/* conn_cmd - send a command line (CRLF added); secret commands are not traced. */
enum cmd_flags { CMD_TRACE = 0, CMD_SECRET = 1 };

static int conn_cmd(struct client_conn *c, enum cmd_flags flags, struct sg_error *err,
	const char *fmt, ...) SG_PRINTF(4, 5);

static int conn_cmd(struct client_conn *c, enum cmd_flags flags, struct sg_error *err,
	const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		sg_error_set(err, SG_E_PEER_PERM, "command line too long");
		return -1;
	}
	if (flags == CMD_TRACE)
		sg_trace(SG_TRACE_DELIVERY, "%s: %s > %.*s", c->mail_id, c->relay, n, line);
	line[n++] = '\r';
	line[n++] = '\n';
	n = conn_write(c, line, (size_t)n, err);
	OPENSSL_cleanse(line, sizeof(line));
	return n;
}

/* conn_connect - non-blocking connect with timeout. */
static int conn_connect(struct client_conn *c, const struct sockaddr *sa, socklen_t salen,
	unsigned timeout_s, struct sg_error *err)
{
	struct pollfd pfd;
	int rc, soerr = 0, one = 1;
	socklen_t sl = sizeof(soerr);

	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		sg_error_set_errno(err, SG_E_PEER_TEMP, errno, "socket");
		return -1;
	}
	/* Commands, the body's last piece and the final dot are small writes
	 * followed by a wait for the reply: without TCP_NODELAY, Nagle holds
	 * them until the peer's delayed ACK (40 ms on Linux) each time. */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = connect(c->fd, sa, salen);
	if (rc < 0 && errno != EINPROGRESS) {
		sg_error_set_errno(err, SG_E_PEER_TEMP, errno, "connect to %s", c->relay);
		return -1;
	}
	if (rc < 0) {
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		do {
			rc = poll(&pfd, 1, (int)(timeout_s * 1000));
		} while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			sg_error_set(err, SG_E_PEER_TEMP, "connect to %s: timed out", c->relay);
			return -1;
		}
		if (rc < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
			sg_error_set_errno(err, SG_E_PEER_TEMP, errno, "connect to %s", c->relay);
			return -1;
		}
		if (soerr != 0) {
			sg_error_set_errno(err, SG_E_PEER_TEMP, soerr, "connect to %s", c->relay);
			return -1;
		}
	}
	return 0;
}

static bool name_is_ip(const char *s)
{
	unsigned char b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* conn_starttls - TLS handshake on the connected socket (after 220). */
static int conn_starttls(struct client_conn *c, const struct delivery_session_opts *o,
	struct sg_error *err)
{
	int rc;
	bool is_verify = o->tls == MTA_TLS_VERIFY;

	if (c->rpos != c->rlen) {
		sg_error_set(err, SG_E_PEER_TEMP,
			"%s sent data after the STARTTLS reply (injection attempt?)", c->relay);
		return -1;
	}
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL) {
		sg_error_set_openssl(err, SG_E_PEER_TEMP, "SSL_CTX_new");
		return -1;
	}
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	if (is_verify) {
		rc = o->ca_file != NULL ?
			SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) :
			SSL_CTX_set_default_verify_paths(c->ctx);
		if (rc != 1) {
			sg_error_set_openssl(err, SG_E_PEER_TEMP, "cannot load CA certificates");
			return -1;
		}
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	}
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		sg_error_set_openssl(err, SG_E_PEER_TEMP, "SSL_new");
		return -1;
	}
	if (o->server_name != NULL && !name_is_ip(o->server_name)) {
		SSL_set_tlsext_host_name(c->ssl, o->server_name);
		if (is_verify && SSL_set1_host(c->ssl, o->server_name) != 1) {
			sg_error_set_openssl(err, SG_E_PEER_TEMP, "SSL_set1_host");
			return -1;
		}
	} else if (is_verify && o->server_name != NULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);

		if (X509_VERIFY_PARAM_set1_ip_asc(vp, o->server_name) != 1) {
			sg_error_set_openssl(err, SG_E_PEER_TEMP, "set verify ip");
			return -1;
		}
	}
	for (;;) {
		ERR_clear_error();
		rc = SSL_connect(c->ssl);
		if (rc == 1)
			break;
		if (SSL_get_error(c->ssl, rc) == SSL_ERROR_SSL &&
		    SSL_get_verify_result(c->ssl) != X509_V_OK) {
			sg_error_set(err, SG_E_PEER_TEMP,
				"TLS certificate of %s does not verify: %s", c->relay,
				X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
			ERR_clear_error();
			return -1;
		}
		if (conn_ssl_wait(c, rc, "handshake", err) < 0)
			return -1;
	}
	sg_log_mail(SG_LOG_DEBUG, c->mail_id, "TLS connection established to %s: %s with %s",
		c->relay, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	return 0;
}

static void conn_close(struct client_conn *c)
{
	if (c->ssl != NULL) {
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->ctx != NULL) {
		SSL_CTX_free(c->ctx);
		c->ctx = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

/* ------------------------------------------------------------ SMTP session */

/* How a transaction left the session: whether the connection may be kept
 * for the next transaction. */
enum session_end {
	SESSION_END_BROKEN = 0,  /* unknown state (I/O error mid-way): close */
	SESSION_END_CLEAN,       /* no transaction open: reusable */
	SESSION_END_RSET,        /* reusable once RSET got 250 */
};

struct session {
	struct client_conn c;
	struct delivery_reply r;
	struct delivery_caps caps;
	const struct delivery_session_opts *o;
	const struct delivery_tx *tx;
	struct delivery_result *res;
	bool is_tls;
	bool is_tls_broken;  /* the TLS handshake failed */
	bool saw_421;        /* the server announced it is closing */
	int first_code;      /* code of the first reply on this connection since
	                        it was opened or taken from the cache, or 0 */
	enum session_end end;
};

/* session_all - set every still-undecided recipient result from the reply. */
static void session_set_from_reply(struct session *s, struct delivery_result *res)
{
	char enh[16];

	res->status = s->r.code < 400 ? DELIVERY_R_OK :
		s->r.code < 500 ? DELIVERY_R_TEMP : DELIVERY_R_PERM;
	snprintf(res->enh, sizeof(res->enh), "%s", delivery_reply_enh(&s->r, enh, sizeof(enh)));
	snprintf(res->relay, sizeof(res->relay), "%s", s->c.relay);
	res->is_reply = true;
	delivery_reply_summary(&s->r, res->text, sizeof(res->text));
}

static void session_all_reply(struct session *s, const bool *skip)
{
	size_t i;

	for (i = 0; i < s->tx->nrcpts; i++)
		if (skip == NULL || !skip[i])
			session_set_from_reply(s, &s->res[i]);
}

static void session_all_local(struct session *s, enum delivery_rstatus st, const char *enh,
	const char *text, const bool *skip)
{
	size_t i;

	for (i = 0; i < s->tx->nrcpts; i++) {
		if (skip != NULL && skip[i])
			continue;
		delivery_result_set(&s->res[i], st, enh, "%s", text);
		snprintf(s->res[i].relay, sizeof(s->res[i].relay), "%s", s->c.relay);
	}
}

/* session_expect - read a reply; -1 on I/O error, else 0 with s->r set. */
static int session_expect(struct session *s, struct sg_error *err)
{
	if (conn_read_reply(&s->c, &s->r, err) < 0)
		return -1;
	if (s->r.code == 421)
		s->saw_421 = true;
	if (s->first_code == 0)
		s->first_code = s->r.code;
	return 0;
}

/* session_hello - EHLO (HELO when EHLO is refused). 0 ok, -1 host failure. */
static int session_hello(struct session *s, struct sg_error *err)
{
	char sum[512];

	if (conn_cmd(&s->c, CMD_TRACE, err, "EHLO %s", s->o->helo) < 0 ||
	    session_expect(s, err) < 0)
		return -1;
	if (s->r.code == 250) {
		delivery_caps_parse(&s->r, &s->caps);
		return 0;
	}
	memset(&s->caps, 0, sizeof(s->caps));
	if (s->r.code >= 500 && !s->is_tls) {
		if (conn_cmd(&s->c, CMD_TRACE, err, "HELO %s", s->o->helo) < 0 ||
		    session_expect(s, err) < 0)
			return -1;
		if (s->r.code == 250)
			return 0;
	}
	delivery_reply_summary(&s->r, sum, sizeof(sum));
	sg_error_set(err, SG_E_PEER_TEMP, "host %s refused to talk to me: %s", s->c.relay, sum);
	return -1;
}

/* session_tls - STARTTLS according to the TLS level. 0 ok, -1 host failure. */
static int session_tls(struct session *s, struct sg_error *err)
{
	bool is_required = s->o->tls == MTA_TLS_ENCRYPT || s->o->tls == MTA_TLS_VERIFY;
	char sum[512];

	if (s->o->tls == MTA_TLS_NONE)
		return 0;
	if (!(s->caps.ext & DELIVERY_EXT_STARTTLS)) {
		if (!is_required)
			return 0;
		sg_error_set(err, SG_E_PEER_TEMP,
			"TLS is required, but was not offered by host %s", s->c.relay);
		return -1;
	}
	if (conn_cmd(&s->c, CMD_TRACE, err, "STARTTLS") < 0 || session_expect(s, err) < 0)
		return -1;
	if (s->r.code != 220) {
		if (!is_required)
			return 0;
		delivery_reply_summary(&s->r, sum, sizeof(sum));
		sg_error_set(err, SG_E_PEER_TEMP, "TLS is required, but host %s refused "
			"STARTTLS: %s", s->c.relay, sum);
		return -1;
	}
	if (conn_starttls(&s->c, s->o, err) < 0) {
		s->is_tls_broken = true;
		return -1;
	}
	s->is_tls = true;
	return session_hello(s, err);
}

/* b64 - base64 of len bytes into a malloc'ed string (caller cleanses). */
static char *b64(const void *in, size_t len)
{
	char *out = sg_xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* session_auth - AUTH PLAIN or LOGIN over TLS only (D-8). 0 ok, -1 failure. */
static int session_auth(struct session *s, struct sg_error *err)
{
	const struct mta_sasl *a = s->o->sasl;
	char *tok = NULL, *plain = NULL;
	size_t ul, pl;
	char sum[512];
	int rc = -1;

	if (a == NULL || a->username == NULL || a->password == NULL)
		return 0;
	if (!s->is_tls) {
		sg_error_set(err, SG_E_PEER_TEMP, "SASL credentials for %s are only sent over "
			"TLS, and TLS is not available", s->c.relay);
		return -1;
	}
	if (!(s->caps.ext & (DELIVERY_EXT_AUTH_PLAIN | DELIVERY_EXT_AUTH_LOGIN))) {
		/* The server may accept us without AUTH (by address). */
		sg_log_mail(SG_LOG_DEBUG, s->tx->mail_id, "%s offers no AUTH PLAIN/LOGIN; "
			"sending without authentication", s->c.relay);
		return 0;
	}
	ul = strlen(a->username);
	pl = strlen(a->password);
	if (ul > 255 || pl > 255) {
		sg_error_set(err, SG_E_PEER_TEMP, "SASL username or password too long");
		return -1;
	}
	if (s->caps.ext & DELIVERY_EXT_AUTH_PLAIN) {
		plain = sg_xmalloc(ul + pl + 2);
		plain[0] = '\0';
		memcpy(plain + 1, a->username, ul);
		plain[1 + ul] = '\0';
		memcpy(plain + 2 + ul, a->password, pl);
		tok = b64(plain, ul + pl + 2);
		sg_trace(SG_TRACE_DELIVERY, "%s: %s > AUTH PLAIN ***", s->tx->mail_id, s->c.relay);
		if (conn_cmd(&s->c, CMD_SECRET, err, "AUTH PLAIN %s", tok) < 0 ||
		    session_expect(s, err) < 0)
			goto out;
	} else {
		if (conn_cmd(&s->c, CMD_TRACE, err, "AUTH LOGIN") < 0 || session_expect(s, err) < 0)
			goto out;
		if (s->r.code == 334) {
			tok = b64(a->username, ul);
			if (conn_cmd(&s->c, CMD_SECRET, err, "%s", tok) < 0 ||
			    session_expect(s, err) < 0)
				goto out;
			OPENSSL_cleanse(tok, strlen(tok));
			free(tok);
			tok = NULL;
		}
		if (s->r.code == 334) {
			tok = b64(a->password, pl);
			if (conn_cmd(&s->c, CMD_SECRET, err, "%s", tok) < 0 ||
			    session_expect(s, err) < 0)
				goto out;
		}
	}
	if (s->r.code != 235) {
		delivery_reply_summary(&s->r, sum, sizeof(sum));
		sg_error_set(err, SG_E_PEER_TEMP, "SASL authentication failed; server %s said: %s",
			s->c.relay, sum);
		goto out;
	}
	rc = 0;
out:
	if (tok != NULL) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	if (plain != NULL) {
		OPENSSL_cleanse(plain, ul + pl + 2);
		free(plain);
	}
	return rc;
}

/* session_mail_params - " SIZE=n BODY=8BITMIME SMTPUTF8 RET= ENVID=" into b. */
static void session_mail_params(struct session *s, char *b, size_t bsz)
{
	const struct delivery_tx *tx = s->tx;
	size_t n = 0;

	b[0] = '\0';
	if (s->caps.ext & DELIVERY_EXT_SIZE)
		n += (size_t)snprintf(b + n, bsz - n, " SIZE=%llu",
			(unsigned long long)tx->body_len);
	if (tx->body_8bit && (s->caps.ext & DELIVERY_EXT_8BITMIME) && n < bsz)
		n += (size_t)snprintf(b + n, bsz - n, " BODY=8BITMIME");
	if (tx->smtputf8 && (s->caps.ext & DELIVERY_EXT_SMTPUTF8) && n < bsz)
		n += (size_t)snprintf(b + n, bsz - n, " SMTPUTF8");
	if ((s->caps.ext & DELIVERY_EXT_DSN) && n < bsz) {
		if (tx->ret_hdrs)
			n += (size_t)snprintf(b + n, bsz - n, " RET=HDRS");
		if (tx->envid != NULL && *tx->envid != '\0' && strlen(tx->envid) <= 100 &&
		    strchr(tx->envid, ' ') == NULL && !delivery_has_ctl(tx->envid) && n < bsz)
			snprintf(b + n, bsz - n, " ENVID=%s", tx->envid);
	}
}

/* session_rcpt_params - " NOTIFY=... ORCPT=..." for one recipient. */
static void session_rcpt_params(struct session *s, const struct spool_rcpt *r, char *b,
	size_t bsz)
{
	size_t n = 0;

	b[0] = '\0';
	if (!(s->caps.ext & DELIVERY_EXT_DSN))
		return;
	if (r->notify & SPOOL_NOTIFY_NEVER) {
		n += (size_t)snprintf(b, bsz, " NOTIFY=NEVER");
	} else if (r->notify != 0) {
		const char *sep = " NOTIFY=";

		if (r->notify & SPOOL_NOTIFY_SUCCESS) {
			n += (size_t)snprintf(b + n, bsz - n, "%sSUCCESS", sep);
			sep = ",";
		}
		if ((r->notify & SPOOL_NOTIFY_FAILURE) && n < bsz) {
			n += (size_t)snprintf(b + n, bsz - n, "%sFAILURE", sep);
			sep = ",";
		}
		if ((r->notify & SPOOL_NOTIFY_DELAY) && n < bsz)
			n += (size_t)snprintf(b + n, bsz - n, "%sDELAY", sep);
	}
	if (r->orcpt != NULL && strchr(r->orcpt, ';') != NULL && strlen(r->orcpt) <= 500 &&
	    strchr(r->orcpt, ' ') == NULL && !delivery_has_ctl(r->orcpt) && n < bsz)
		snprintf(b + n, bsz - n, " ORCPT=%s", r->orcpt);
}

/* session_data - stream the body with dot-stuffing and CRLF normalisation. */
static int session_data(struct session *s, struct sg_error *err)
{
	const struct delivery_tx *tx = s->tx;
	char *in = NULL, *out = NULL;
	uint64_t done = 0;
	unsigned st = 0;
	size_t n;
	int rc = -1;

	in = sg_xmalloc(CLIENT_CHUNK);
	out = sg_xmalloc(2 * CLIENT_CHUNK + 8);
	while (done < tx->body_len) {
		size_t want = tx->body_len - done > CLIENT_CHUNK ? CLIENT_CHUNK :
			(size_t)(tx->body_len - done);
		ssize_t got = pread(tx->body_fd, in, want, (off_t)(tx->body_off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			sg_error_set_errno(err, SG_E_IO, got < 0 ? errno : EIO,
				"read message body");
			goto out;
		}
		n = delivery_dot_stuff(&st, in, (size_t)got, out);
		if (conn_write(&s->c, out, n, err) < 0)
			goto out;
		done += (uint64_t)got;
	}
	n = delivery_dot_stuff_end(st, out);
	if (conn_write(&s->c, out, n, err) < 0)
		goto out;
	rc = 0;
out:
	free(in);
	free(out);
	return rc;
}

/*
 * session_transaction - MAIL, RCPT..., DATA after a successful hello. Fills
 * every result. Returns 0 (results definite) or -1 (I/O error mid-way:
 * undecided recipients get a temporary failure from err).
 */
static int session_transaction(struct session *s, struct sg_error *err)
{
	const struct delivery_tx *tx = s->tx;
	char params[700];
	bool *done = NULL;
	size_t i, naccepted = 0;
	bool is_pipelined = (s->caps.ext & DELIVERY_EXT_PIPELINING) != 0;
	int rc = -1;

	done = sg_xcalloc(tx->nrcpts ? tx->nrcpts : 1, sizeof(*done));
	if (tx->smtputf8 && !(s->caps.ext & DELIVERY_EXT_SMTPUTF8)) {
		session_all_local(s, DELIVERY_R_PERM, "5.6.7", "SMTPUTF8 is required, but "
			"was not offered by the host", NULL);
		s->end = SESSION_END_CLEAN; /* nothing was sent */
		rc = 0;
		goto out;
	}
	if (s->caps.size_max > 0 && tx->body_len > s->caps.size_max) {
		session_all_local(s, DELIVERY_R_PERM, "5.3.4",
			"message size exceeds fixed limit of the host", NULL);
		s->end = SESSION_END_CLEAN;
		rc = 0;
		goto out;
	}
	session_mail_params(s, params, sizeof(params));
	if (conn_cmd(&s->c, CMD_TRACE, err, "MAIL FROM:<%s>%s", tx->sender, params) < 0)
		goto out;
	if (is_pipelined) {
		for (i = 0; i < tx->nrcpts; i++) {
			session_rcpt_params(s, tx->rcpts[i], params, sizeof(params));
			if (conn_cmd(&s->c, CMD_TRACE, err, "RCPT TO:<%s>%s", tx->rcpts[i]->addr,
				    params) < 0)
				goto out;
		}
	}
	if (session_expect(s, err) < 0)
		goto out;
	if (s->r.code != 250) {
		session_all_reply(s, NULL);
		rc = 0;
		s->end = SESSION_END_RSET;
		if (is_pipelined) /* drain the RCPT replies */
			for (i = 0; i < tx->nrcpts; i++)
				if (session_expect(s, err) < 0) {
					s->end = SESSION_END_BROKEN;
					break;
				}
		goto out;
	}
	for (i = 0; i < tx->nrcpts; i++) {
		if (!is_pipelined) {
			session_rcpt_params(s, tx->rcpts[i], params, sizeof(params));
			if (conn_cmd(&s->c, CMD_TRACE, err, "RCPT TO:<%s>%s", tx->rcpts[i]->addr,
				    params) < 0)
				goto out;
		}
		if (session_expect(s, err) < 0)
			goto out;
		if (s->r.code == 250 || s->r.code == 251) {
			naccepted++;
			continue;
		}
		session_set_from_reply(s, &s->res[i]);
		if (s->res[i].status == DELIVERY_R_OK) /* 2xx other than 250/251 */
			s->res[i].status = DELIVERY_R_TEMP;
		done[i] = true;
	}
	if (naccepted == 0) {
		s->end = SESSION_END_RSET;
		rc = 0;
		goto out;
	}
	if (conn_cmd(&s->c, CMD_TRACE, err, "DATA") < 0 || session_expect(s, err) < 0)
		goto out;
	if (s->r.code != 354) {
		session_all_reply(s, done);
		if (s->r.code < 400)
			for (i = 0; i < tx->nrcpts; i++)
				if (!done[i])
					s->res[i].status = DELIVERY_R_TEMP;
		s->end = SESSION_END_RSET;
		rc = 0;
		goto out;
	}
	if (session_data(s, err) < 0 || session_expect(s, err) < 0)
		goto out;
	session_all_reply(s, done);
	if (s->r.code != 250)
		for (i = 0; i < tx->nrcpts; i++)
			if (!done[i] && s->res[i].status == DELIVERY_R_OK)
				s->res[i].status = DELIVERY_R_TEMP;
	s->end = SESSION_END_CLEAN; /* whatever the final reply said */
	rc = 0;
out:
	if (rc < 0) {
		const char *enh = err->code == SG_E_IO ? "4.3.0" : "4.4.2";

		s->end = SESSION_END_BROKEN;
		session_all_local(s, DELIVERY_R_TEMP, enh, err->msg, done);
	}
	free(done);
	return rc;
}

/* ------------------------------------------------------- connection cache */

/* What defines a session: a cached connection is reused only for the same
 * address, TLS level and (by SHA-256, so that no copy of the password is
 * kept) HELO name, server name, CA file and SASL credentials. */
struct conn_key {
	struct sockaddr_storage sa;
	socklen_t salen;
	enum mta_tls_level tls;
	unsigned char digest[SHA256_DIGEST_LENGTH];
	bool is_valid;           /* false: digest failed, never cached */
};

struct conn_meta {
	int64_t t_connect;       /* sg_mono_ms at connect */
	int64_t t_idle;          /* sg_mono_ms when it went idle */
	unsigned ntx;            /* transactions so far */
};

struct conn_entry {
	struct conn_key key;
	struct conn_meta meta;
	struct client_conn c;
	struct delivery_caps caps;
	bool is_tls;
};

/* The calling thread's idle connections (NULL = free slot). Invisible to
 * callers; thread-local, so no locking. */
static _Thread_local struct conn_entry *conn_cache[CONN_CACHE_SLOTS];

/* key_digest_str - feed "present flag, length, bytes" of s (NULL allowed). */
static int key_digest_str(EVP_MD_CTX *md, const char *s)
{
	unsigned char hdr[9];
	uint64_t len = s != NULL ? strlen(s) : 0;
	int i;

	hdr[0] = s != NULL;
	for (i = 0; i < 8; i++)
		hdr[1 + i] = (unsigned char)(len >> (8 * i));
	if (EVP_DigestUpdate(md, hdr, sizeof(hdr)) != 1)
		return -1;
	return len == 0 || EVP_DigestUpdate(md, s, (size_t)len) == 1 ? 0 : -1;
}

/* conn_key_init - the cache key of a session with o to sa. */
static void conn_key_init(struct conn_key *k, const struct delivery_session_opts *o,
	const struct sockaddr *sa, socklen_t salen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const struct mta_sasl *a = o->sasl;
	unsigned int dlen = 0;

	memset(k, 0, sizeof(*k));
	if (md == NULL || (size_t)salen > sizeof(k->sa))
		goto out;
	memcpy(&k->sa, sa, salen);
	k->salen = salen;
	k->tls = o->tls;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    key_digest_str(md, o->helo) < 0 || key_digest_str(md, o->server_name) < 0 ||
	    key_digest_str(md, o->ca_file) < 0 ||
	    key_digest_str(md, a != NULL ? a->username : NULL) < 0 ||
	    key_digest_str(md, a != NULL ? a->password : NULL) < 0 ||
	    EVP_DigestFinal_ex(md, k->digest, &dlen) != 1 || dlen != sizeof(k->digest))
		goto out;
	k->is_valid = true;
out:
	EVP_MD_CTX_free(md);
	ERR_clear_error();
}

static bool conn_key_is_equal(const struct conn_key *a, const struct conn_key *b)
{
	return a->is_valid && b->is_valid && a->salen == b->salen && a->tls == b->tls &&
		memcmp(&a->sa, &b->sa, a->salen) == 0 &&
		memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}

/* conn_entry_close - QUIT (waiting CONN_QUIT_WAIT_MS at most for the
 * reply), close, free. */
static void conn_entry_close(struct conn_entry **ep)
{
	struct conn_entry *e = *ep;
	struct delivery_reply r;
	struct sg_error err;

	if (e == NULL)
		return;
	*ep = NULL;
	e->c.timeout_ms = CONN_QUIT_WAIT_MS;
	delivery_reply_init(&r);
	if (conn_cmd(&e->c, CMD_TRACE, &err, "QUIT") == 0)
		(void)conn_read_reply(&e->c, &r, &err);
	delivery_reply_deinit(&r);
	conn_close(&e->c);
	free(e);
}

/* conn_is_alive - an idle connection shows nothing to read: readable means
 * EOF, a reset or an unsolicited reply (421 before closing). */
static bool conn_is_alive(struct client_conn *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int rc;

	if (c->rpos != c->rlen || (c->ssl != NULL && SSL_pending(c->ssl) > 0))
		return false;
	do {
		rc = poll(&pfd, 1, 0);
	} while (rc < 0 && errno == EINTR);
	return rc == 0;
}

static int64_t reuse_max_age_ms(const struct delivery_session_opts *o)
{
	return (int64_t)(o->reuse_max_age ? o->reuse_max_age : CONN_REUSE_MAX_AGE_S) * 1000;
}

static unsigned reuse_max_tx(const struct delivery_session_opts *o)
{
	return o->reuse_max_tx ? o->reuse_max_tx : CONN_REUSE_MAX_TX;
}

static int64_t reuse_idle_ms(const struct delivery_session_opts *o)
{
	return o->reuse_idle_ms ? o->reuse_idle_ms : CONN_REUSE_IDLE_MS;
}

/*
 * conn_cache_take - move the idle connection for key (if any, and within
 * o's limits and still alive) into s; 1 taken, 0 none. Connections past the
 * limits are closed on the way (QUIT), dead ones without QUIT.
 */
static int conn_cache_take(const struct conn_key *key, const struct delivery_session_opts *o,
	struct session *s, struct conn_meta *meta_r)
{
	int64_t now = sg_mono_ms();
	struct conn_entry *e = NULL;
	size_t i;

	for (i = 0; i < CONN_CACHE_SLOTS; i++) {
		struct conn_entry *x = conn_cache[i];

		if (x == NULL)
			continue;
		if (now - x->meta.t_idle >= reuse_idle_ms(o) ||
		    now - x->meta.t_connect >= reuse_max_age_ms(o) || x->meta.ntx >= reuse_max_tx(o)) {
			conn_entry_close(&conn_cache[i]);
			continue;
		}
		if (e == NULL && conn_key_is_equal(&x->key, key)) {
			e = x;
			conn_cache[i] = NULL;
		}
	}
	if (e == NULL)
		return 0;
	if (!conn_is_alive(&e->c)) {
		sg_log_mail(SG_LOG_DEBUG, s->tx->mail_id, "idle connection to %s was closed by "
			"the server; connecting anew", e->c.relay);
		conn_close(&e->c);
		free(e);
		return 0;
	}
	s->c = e->c;
	s->c.mail_id = s->tx->mail_id;
	s->c.timeout_ms = (o->io_timeout ? o->io_timeout : 300) * 1000u;
	s->c.nreplies = 0;
	s->c.is_peer_closed = false;
	s->caps = e->caps;
	s->is_tls = e->is_tls;
	*meta_r = e->meta;
	free(e);
	return 1;
}

/* conn_cache_put - keep s's connection (moved out of s) for key; evicts the
 * longest-idle entry when every slot is taken. */
static void conn_cache_put(const struct conn_key *key, struct session *s,
	const struct conn_meta *meta)
{
	struct conn_entry *e = sg_xcalloc(1, sizeof(*e));
	size_t i, slot = 0;

	e->key = *key;
	e->meta = *meta;
	e->meta.t_idle = sg_mono_ms();
	e->c = s->c;
	e->c.mail_id = "NOQUEUE";  /* the borrowed mail ID ends with this delivery */
	e->caps = s->caps;
	e->is_tls = s->is_tls;
	s->c.fd = -1;
	s->c.ssl = NULL;
	s->c.ctx = NULL;
	for (i = 0; i < CONN_CACHE_SLOTS; i++) {
		if (conn_cache[i] == NULL) {
			slot = i;
			break;
		}
		if (conn_cache[i]->meta.t_idle < conn_cache[slot]->meta.t_idle)
			slot = i;
	}
	conn_entry_close(&conn_cache[slot]);
	conn_cache[slot] = e;
}

void delivery_conn_cache_close(void)
{
	size_t i;

	for (i = 0; i < CONN_CACHE_SLOTS; i++)
		conn_entry_close(&conn_cache[i]);
}

unsigned delivery_conn_cache_count(void)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < CONN_CACHE_SLOTS; i++)
		n += conn_cache[i] != NULL;
	return n;
}

/* ------------------------------------------------------------ one delivery */

/* session_finish - after a transaction with definite results: RSET when
 * needed, then keep the connection in the cache when it is clean and within
 * the limits, else QUIT. The connection is closed by the caller unless it
 * moved into the cache. */
static void session_finish(struct session *s, const struct conn_key *key,
	struct conn_meta *meta)
{
	struct sg_error err;

	meta->ntx++;
	if (s->end == SESSION_END_RSET) {
		if (conn_cmd(&s->c, CMD_TRACE, &err, "RSET") < 0 || session_expect(s, &err) < 0)
			return;
		s->end = s->r.code == 250 ? SESSION_END_CLEAN : SESSION_END_BROKEN;
	}
	if (s->end == SESSION_END_CLEAN && !s->saw_421 && key->is_valid &&
	    meta->ntx < reuse_max_tx(s->o) &&
	    sg_mono_ms() - meta->t_connect < reuse_max_age_ms(s->o) &&
	    s->c.rpos == s->c.rlen && (s->c.ssl == NULL || SSL_pending(s->c.ssl) == 0)) {
		conn_cache_put(key, s, meta);
		return;
	}
	if (conn_cmd(&s->c, CMD_TRACE, &err, "QUIT") == 0)
		(void)session_expect(s, &err);
}

/* session_open - connect, greeting, EHLO, STARTTLS, AUTH. 0 ok, -1 host
 * failure (err set). */
static int session_open(struct session *s, const struct sockaddr *sa, socklen_t salen,
	struct sg_error *err)
{
	const struct delivery_session_opts *o = s->o;

	if (conn_connect(&s->c, sa, salen, o->connect_timeout ? o->connect_timeout : 30,
		    err) < 0)
		return -1;
	if (session_expect(s, err) < 0)
		return -1;
	if (s->r.code != 220) {
		char sum[512];

		delivery_reply_summary(&s->r, sum, sizeof(sum));
		sg_error_set(err, SG_E_PEER_TEMP, "host %s refused to talk to me: %s",
			s->c.relay, sum);
		return -1;
	}
	if (session_hello(s, err) < 0 || session_tls(s, err) < 0 || session_auth(s, err) < 0)
		return -1;
	return 0;
}

/* session_reset_conn - forget a failed connection so that it can be opened
 * anew (caps, TLS and the reply counters start over). */
static void session_reset_conn(struct session *s)
{
	conn_close(&s->c);
	s->c.rpos = s->c.rlen = 0;
	s->c.nreplies = 0;
	s->c.is_peer_closed = false;
	memset(&s->caps, 0, sizeof(s->caps));
	s->is_tls = false;
	s->saw_421 = false;
	s->first_code = 0;
	s->end = SESSION_END_BROKEN;
}

/* client_send_once - one transaction, on a cached connection for key or a
 * new one; *is_tls_broken_r tells whether it failed in the TLS handshake. */
static int client_send_once(const struct delivery_session_opts *o, const struct conn_key *key,
	const struct sockaddr *sa, socklen_t salen, const struct delivery_tx *tx,
	struct delivery_result *res, bool *is_tls_broken_r)
{
	struct session s;
	struct conn_meta meta;
	struct sg_error err;
	char ip[64] = "?";
	unsigned port = 0;
	size_t i;
	int rc = -1, is_reused;
	bool is_done;

	memset(&s, 0, sizeof(s));
	memset(&meta, 0, sizeof(meta));
	s.c.fd = -1;
	s.c.timeout_ms = (o->io_timeout ? o->io_timeout : 300) * 1000u;
	s.c.mail_id = tx->mail_id;
	s.o = o;
	s.tx = tx;
	s.res = res;
	delivery_reply_init(&s.r);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
		port = ntohs(in4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(s.c.relay, sizeof(s.c.relay), "%s[%s]:%u",
		o->server_name != NULL ? o->server_name : ip, ip, port);
	is_reused = conn_cache_take(key, o, &s, &meta);
	if (is_reused)
		sg_log_mail(SG_LOG_DEBUG, tx->mail_id, "reusing connection to %s (transaction "
			"%u, connected %lld ms ago)", s.c.relay, meta.ntx + 1,
			(long long)(sg_mono_ms() - meta.t_connect));
	for (;;) {
		for (i = 0; i < tx->nrcpts; i++)
			memset(&res[i], 0, sizeof(res[i]));
		if (!is_reused) {
			meta.t_connect = sg_mono_ms();
			meta.ntx = 0;
			if (session_open(&s, sa, salen, &err) < 0)
				goto out;
		}
		/* From here on the host gave definite answers: no other host is tried. */
		rc = 0;
		is_done = session_transaction(&s, &err) == 0;
		/* A cached connection that the server closed meanwhile: its first
		 * command got no reply (EOF or a reset) or a 421 (closing). The
		 * server has not taken the message (no DATA was sent), so connect
		 * anew instead of deferring. */
		if (is_reused && s.first_code == 421) {
			snprintf(err.msg, sizeof(err.msg), "421 reply to MAIL FROM");
		} else if (is_done) {
			session_finish(&s, key, &meta);
			break;
		} else if (!is_reused || s.c.nreplies != 0 || !s.c.is_peer_closed) {
			break;
		}
		sg_log_mail(SG_LOG_DEBUG, tx->mail_id, "cached connection to %s was closed by "
			"the server (%s); connecting anew", s.c.relay, err.msg);
		session_reset_conn(&s);
		is_reused = 0;
		rc = -1;
	}
out:
	if (rc < 0) {
		for (i = 0; i < tx->nrcpts; i++) {
			delivery_result_set(&res[i], DELIVERY_R_TEMP, "4.4.1", "%s", err.msg);
			snprintf(res[i].relay, sizeof(res[i].relay), "%s", s.c.relay);
		}
	}
	*is_tls_broken_r = s.is_tls_broken;
	conn_close(&s.c);
	delivery_reply_deinit(&s.r);
	return rc;
}

int delivery_client_send(const struct delivery_session_opts *o, const struct sockaddr *sa,
	socklen_t salen, const struct delivery_tx *tx, struct delivery_result *res)
{
	struct delivery_session_opts plain;
	struct conn_key key;
	bool is_tls_broken = false;
	int rc;

	/* The key is that of the requested options: a level "may" session
	 * that fell back to plain text is reused for level "may". */
	conn_key_init(&key, o, sa, salen);
	rc = client_send_once(o, &key, sa, salen, tx, res, &is_tls_broken);
	if (rc == 0 || !is_tls_broken || o->tls != MTA_TLS_MAY)
		return rc;
	/* Opportunistic TLS whose handshake failed: one more session in plain
	 * text (as Postfix does at level "may"); SASL credentials are still
	 * never sent without TLS (D-8). Mandatory levels never get here. */
	sg_log_mail(SG_LOG_INFO, tx->mail_id, "%s: %s; retrying without TLS", res[0].relay,
		res[0].text);
	plain = *o;
	plain.tls = MTA_TLS_NONE;
	return client_send_once(&plain, &key, sa, salen, tx, res, &is_tls_broken);
}
