/*
 * smtpd_stub.c - the scripted SMTP receiver of the delivery tests (see
 * smtpd_stub.h). An accept thread plus one detached thread per session;
 * blocking sockets with receive and send timeouts, reads wait in 20 ms poll
 * slices to notice stop, script changes and stub_close_idle; OpenSSL for
 * STARTTLS. Test code only.
 */
#include "smtpd_stub.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define STUB_LINE_MAX 65536
#define STUB_READ_WAIT_MS 10000
#define STUB_SLICE_MS 20

struct stub_conn {
	struct stub_smtpd *s;
	struct stub_conf conf;   /* snapshot for this session */
	int fd;
	SSL *ssl;
	char buf[STUB_LINE_MAX];
	size_t pos, len;
	bool is_authed;
	bool is_idle;         /* waiting for a command between transactions */
	unsigned conf_gen;    /* s->conf_gen when conf was copied */
	unsigned kick_gen;    /* s->kick_gen at session start */
	unsigned nmail;       /* MAIL commands in this session */
};

static void stub_record(struct stub_smtpd *s, const char *line, size_t len)
{
	pthread_mutex_lock(&s->mu);
	s->transcript = realloc(s->transcript, s->transcript_len + len + 2);
	memcpy(s->transcript + s->transcript_len, line, len);
	s->transcript_len += len;
	s->transcript[s->transcript_len++] = '\n';
	s->transcript[s->transcript_len] = '\0';
	pthread_mutex_unlock(&s->mu);
}

static int conn_send(struct stub_conn *c, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int rc = SSL_write(c->ssl, p, (int)len);

			if (rc <= 0)
				return -1;
			n = rc;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* conn_reply - send text (lines separated by '\n') with CRLF line ends. */
static int conn_reply(struct stub_conn *c, const char *text)
{
	char out[8192];
	size_t o = 0;

	for (; *text != '\0' && o + 3 < sizeof(out); text++) {
		if (*text == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			out[o++] = *text;
		}
	}
	out[o++] = '\r';
	out[o++] = '\n';
	return conn_send(c, out, o);
}

/* conn_wait_input - wait until the socket is readable: 0, or -1 to close
 * (stop, time-out, or idle while the script changed or a kick came). */
static int conn_wait_input(struct stub_conn *c)
{
	struct stub_smtpd *s = c->s;
	int waited = 0;

	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		const char *kick_reply = NULL;
		bool is_stop, is_kick = false, is_readable;

		/* poll first, check after: a command that arrives after the script
		 * changed is never run under the old script */
		is_readable = (c->ssl != NULL && SSL_pending(c->ssl) > 0) ||
			poll(&pfd, 1, STUB_SLICE_MS) == 1;
		pthread_mutex_lock(&s->mu);
		is_stop = s->is_stopping;
		if (c->is_idle && (s->conf_gen != c->conf_gen || s->kick_gen != c->kick_gen)) {
			is_kick = true;
			if (s->kick_gen != c->kick_gen)
				kick_reply = s->kick_reply;
			s->idle_closed++;
		}
		pthread_mutex_unlock(&s->mu);
		if (is_stop)
			return -1;
		if (is_kick) {
			if (kick_reply != NULL)
				(void)conn_reply(c, kick_reply);
			return -1;
		}
		if (is_readable)
			return 0;
		waited += STUB_SLICE_MS;
		if (waited >= STUB_READ_WAIT_MS)
			return -1;
	}
}

static int conn_fill(struct stub_conn *c)
{
	ssize_t n;

	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len == sizeof(c->buf))
		return -1;
	if (conn_wait_input(c) < 0)
		return -1;
	if (c->ssl != NULL) {
		int rc = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));

		if (rc <= 0)
			return -1;
		n = rc;
	} else {
		do {
			n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		} while (n < 0 && errno == EINTR);
		if (n <= 0)
			return -1;
	}
	c->len += (size_t)n;
	return 0;
}

/* conn_line - next line (CRLF or LF stripped) into line_r and len_r, pointing
 * into the buffer (valid until the next call). 0 ok, -1 eof/error. */
static int conn_line(struct stub_conn *c, char **line_r, size_t *len_r, bool *has_cr_r)
{
	for (;;) {
		char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);

		if (nl != NULL) {
			char *start = c->buf + c->pos;
			size_t len = (size_t)(nl - start);

			*has_cr_r = len > 0 && start[len - 1] == '\r';
			if (*has_cr_r)
				len--;
			c->pos = (size_t)(nl - c->buf) + 1;
			*line_r = start;
			*len_r = len;
			return 0;
		}
		if (conn_fill(c) < 0)
			return -1;
	}
}

/* conn_more_pending - bytes are buffered or arrive within ms. */
static bool conn_more_pending(struct stub_conn *c, int ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

	if (c->pos < c->len)
		return true;
	if (c->ssl != NULL && SSL_pending(c->ssl) > 0)
		return true;
	return poll(&pfd, 1, ms) == 1;
}

static void b64dec(const char *in, size_t len, unsigned char *out, size_t outsz,
	size_t *outlen)
{
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	int n1 = 0, n2 = 0;

	*outlen = 0;
	if (len / 4 * 3 + 3 > outsz) {
		EVP_ENCODE_CTX_free(ctx);
		return;
	}
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *)in, (int)len) < 0 ||
	    EVP_DecodeFinal(ctx, out + n1, &n2) < 0) {
		EVP_ENCODE_CTX_free(ctx);
		return;
	}
	*outlen = (size_t)(n1 + n2);
	EVP_ENCODE_CTX_free(ctx);
}

/* stub_auth - AUTH PLAIN [token] / AUTH LOGIN; 0 to continue, -1 to close. */
static int stub_auth(struct stub_conn *c, const char *args)
{
	struct stub_smtpd *s = c->s;
	unsigned char dec[1024];
	char user[512] = "", pass[512] = "";
	size_t n;
	char *line;
	size_t len;
	bool cr;
	bool is_ok;

	pthread_mutex_lock(&s->mu);
	s->auth_seen = true;
	if (c->ssl == NULL)
		s->auth_in_clear = true;
	snprintf(s->auth_mech, sizeof(s->auth_mech), "%.5s", args);
	pthread_mutex_unlock(&s->mu);
	if (strncasecmp(args, "PLAIN", 5) == 0) {
		const char *tok = args + 5;

		if (*tok == ' ') {
			tok++;
		} else {
			if (conn_reply(c, "334 ") < 0 || conn_line(c, &line, &len, &cr) < 0)
				return -1;
			line[len] = '\0';
			tok = line;
		}
		b64dec(tok, strlen(tok), dec, sizeof(dec) - 1, &n);
		dec[n] = '\0';
		/* authzid \0 authcid \0 passwd */
		if (n > 0) {
			const char *a = memchr(dec, '\0', n);

			if (a != NULL && (size_t)(a - (char *)dec) + 1 < n) {
				const char *p = memchr(a + 1, '\0', n - (size_t)(a + 1 - (char *)dec));

				if (p != NULL) {
					snprintf(user, sizeof(user), "%s", a + 1);
					snprintf(pass, sizeof(pass), "%.*s",
						(int)(n - (size_t)(p + 1 - (char *)dec)), p + 1);
				}
			}
		}
	} else if (strncasecmp(args, "LOGIN", 5) == 0) {
		if (conn_reply(c, "334 VXNlcm5hbWU6") < 0 || conn_line(c, &line, &len, &cr) < 0)
			return -1;
		b64dec(line, len, dec, sizeof(dec) - 1, &n);
		dec[n] = '\0';
		snprintf(user, sizeof(user), "%s", (char *)dec);
		if (conn_reply(c, "334 UGFzc3dvcmQ6") < 0 || conn_line(c, &line, &len, &cr) < 0)
			return -1;
		b64dec(line, len, dec, sizeof(dec) - 1, &n);
		dec[n] = '\0';
		snprintf(pass, sizeof(pass), "%s", (char *)dec);
	} else {
		return conn_reply(c, "504 5.5.4 mechanism not supported");
	}
	is_ok = c->conf.auth_user != NULL && strcmp(user, c->conf.auth_user) == 0 &&
		c->conf.auth_pass != NULL && strcmp(pass, c->conf.auth_pass) == 0;
	if (is_ok) {
		c->is_authed = true;
		pthread_mutex_lock(&s->mu);
		s->auth_ok = true;
		pthread_mutex_unlock(&s->mu);
		return conn_reply(c, "235 2.7.0 Authentication successful");
	}
	return conn_reply(c, "535 5.7.8 Authentication credentials invalid");
}

static int stub_ehlo(struct stub_conn *c)
{
	char out[4096];
	size_t o;
	const char *p;

	if (c->conf.ehlo_refused)
		return conn_reply(c, "502 5.5.2 EHLO not implemented");
	o = (size_t)snprintf(out, sizeof(out), "250-stub.test");
	if (c->conf.tls != NULL && c->ssl == NULL)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "\n250-STARTTLS");
	if (c->conf.auth_user != NULL)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "\n250-AUTH %s",
			c->conf.auth_mechs != NULL ? c->conf.auth_mechs : "PLAIN LOGIN");
	for (p = c->conf.ehlo_ext; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);

		o += (size_t)snprintf(out + o, sizeof(out) - o, "\n250-%.*s", (int)l, p);
		p += l + (nl != NULL);
	}
	o += (size_t)snprintf(out + o, sizeof(out) - o, "\n250 HELP");
	return conn_reply(c, out);
}

static const char *stub_rcpt_reply(struct stub_conn *c, const char *cmd)
{
	const char *lt = strchr(cmd, '<'), *gt;
	size_t i;

	if (lt == NULL || (gt = strchr(lt, '>')) == NULL)
		return "501 5.1.3 bad address";
	for (i = 0; i < STUB_MAX_RCPT_RULES && c->conf.rcpt_rules[i].addr != NULL; i++) {
		const char *a = c->conf.rcpt_rules[i].addr;

		if (strlen(a) == (size_t)(gt - lt - 1) && strncasecmp(a, lt + 1, strlen(a)) == 0)
			return c->conf.rcpt_rules[i].reply;
	}
	return "250 2.1.5 Ok";
}

/* stub_data - read the DATA bytes up to the ".\r\n" line. */
static int stub_data(struct stub_conn *c)
{
	struct stub_smtpd *s = c->s;
	bool keep = c->conf.keep_data;
	char *data = NULL;
	size_t dlen = 0, dcap = 0;
	uint64_t bytes = 0;

	for (;;) {
		char *line;
		size_t len;
		bool cr;

		if (conn_line(c, &line, &len, &cr) < 0) {
			free(data);
			return -1;
		}
		if (len == 1 && line[0] == '.' && cr)
			break;
		bytes += len + (cr ? 2 : 1);
		if (keep) {
			if (dlen + len + 2 > dcap) {
				dcap = (dlen + len + 2) * 2;
				data = realloc(data, dcap);
			}
			memcpy(data + dlen, line, len);
			dlen += len;
			if (cr)
				data[dlen++] = '\r';
			data[dlen++] = '\n';
		}
	}
	pthread_mutex_lock(&s->mu);
	free(s->data);
	s->data = data;
	s->data_len = dlen;
	s->data_bytes = bytes;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int stub_starttls(struct stub_conn *c)
{
	if (conn_reply(c, "220 2.0.0 Ready to start TLS") < 0)
		return -1;
	c->pos = c->len = 0;
	c->ssl = SSL_new(c->conf.tls);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1)
		return -1;
	pthread_mutex_lock(&c->s->mu);
	c->s->saw_tls = true;
	pthread_mutex_unlock(&c->s->mu);
	return 0;
}

/* stub_session - one SMTP session on fd. */
static void stub_session(struct stub_smtpd *s, int fd)
{
	struct stub_conn *c = calloc(1, sizeof(*c));
	const char *greet;
	bool in_mail = false;
	unsigned nrcpt_ok = 0;

	c->s = s;
	c->fd = fd;
	pthread_mutex_lock(&s->mu);
	c->conf = s->conf;
	c->conf_gen = s->conf_gen;
	c->kick_gen = s->kick_gen;
	s->sessions++;
	pthread_mutex_unlock(&s->mu);
	greet = c->conf.greeting != NULL ? c->conf.greeting : "220 stub ESMTP";
	if (conn_reply(c, greet) < 0 || greet[0] != '2')
		goto out;
	for (;;) {
		char *line;
		size_t len;
		bool cr;
		int rc = 0;

		c->is_idle = !in_mail;
		if (conn_line(c, &line, &len, &cr) < 0)
			break;
		c->is_idle = false;
		line[len] = '\0';
		stub_record(s, line, len);
		if (strncasecmp(line, "EHLO ", 5) == 0) {
			rc = stub_ehlo(c);
		} else if (strncasecmp(line, "HELO ", 5) == 0) {
			rc = conn_reply(c, "250 stub.test");
		} else if (strcasecmp(line, "STARTTLS") == 0 && c->conf.tls != NULL &&
			   c->ssl == NULL) {
			rc = stub_starttls(c);
		} else if (strncasecmp(line, "AUTH ", 5) == 0 && c->conf.auth_user != NULL) {
			char args[1024];

			snprintf(args, sizeof(args), "%s", line + 5);
			rc = stub_auth(c, args);
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			const char *r = c->conf.mail_reply != NULL ? c->conf.mail_reply :
				"250 2.1.0 Ok";

			if (c->conf.drop_second_mail && ++c->nmail >= 2) {
				pthread_mutex_lock(&s->mu);
				s->idle_closed++;
				pthread_mutex_unlock(&s->mu);
				if (c->conf.second_mail_reply != NULL)
					(void)conn_reply(c, c->conf.second_mail_reply);
				break;
			}
			pthread_mutex_lock(&s->mu);
			if (c->ssl == NULL)
				s->mail_in_clear = true;
			pthread_mutex_unlock(&s->mu);
			if (c->conf.auth_required && !c->is_authed)
				r = "530 5.7.0 Authentication required";
			/* A pipelining client sends its RCPTs without waiting. */
			if (c->conf.ehlo_ext != NULL && strstr(c->conf.ehlo_ext, "PIPELINING") &&
			    conn_more_pending(c, 1000)) {
				pthread_mutex_lock(&s->mu);
				s->saw_pipelining = true;
				pthread_mutex_unlock(&s->mu);
			}
			in_mail = r[0] == '2';
			nrcpt_ok = 0;
			rc = conn_reply(c, r);
		} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
			const char *r = in_mail ? stub_rcpt_reply(c, line) :
				"503 5.5.1 need MAIL";

			if (r[0] == '2')
				nrcpt_ok++;
			rc = conn_reply(c, r);
		} else if (strcasecmp(line, "DATA") == 0) {
			const char *r = c->conf.data_reply != NULL ? c->conf.data_reply : "354 go";

			if (!in_mail || nrcpt_ok == 0) {
				rc = conn_reply(c, "554 5.5.1 no valid recipients");
				continue;
			}
			if (conn_reply(c, r) < 0)
				break;
			if (r[0] != '3')
				continue;
			if (stub_data(c) < 0)
				break;
			r = c->conf.final_reply != NULL ? c->conf.final_reply :
				"250 2.0.0 Ok: queued";
			if (r[0] == '2') {
				pthread_mutex_lock(&s->mu);
				s->messages++;
				pthread_mutex_unlock(&s->mu);
			}
			in_mail = false;
			rc = conn_reply(c, r);
		} else if (strcasecmp(line, "RSET") == 0) {
			in_mail = false;
			rc = conn_reply(c, "250 2.0.0 Ok");
		} else if (strcasecmp(line, "NOOP") == 0) {
			rc = conn_reply(c, "250 2.0.0 Ok");
		} else if (strcasecmp(line, "QUIT") == 0) {
			pthread_mutex_lock(&s->mu);
			s->quits++;
			pthread_mutex_unlock(&s->mu);
			(void)conn_reply(c, "221 2.0.0 Bye");
			break;
		} else {
			rc = conn_reply(c, "502 5.5.2 command not recognized");
		}
		if (rc < 0)
			break;
	}
out:
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(fd);
	free(c);
}

struct stub_sess_arg {
	struct stub_smtpd *s;
	int fd;
};

static void *stub_session_thread(void *arg)
{
	struct stub_sess_arg *a = arg;
	struct stub_smtpd *s = a->s;

	stub_session(s, a->fd);
	free(a);
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void *stub_thread(void *arg)
{
	struct stub_smtpd *s = arg;

	for (;;) {
		struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
		struct timeval tv = {.tv_sec = 10};
		bool stop;
		int fd;

		pthread_mutex_lock(&s->mu);
		stop = s->is_stopping;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		if (poll(&pfd, 1, 50) != 1)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		{
			struct stub_sess_arg *a = malloc(sizeof(*a));
			pthread_attr_t attr;
			pthread_t t;

			a->s = s;
			a->fd = fd;
			pthread_mutex_lock(&s->mu);
			s->active++;
			pthread_mutex_unlock(&s->mu);
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			if (pthread_create(&t, &attr, stub_session_thread, a) != 0) {
				pthread_mutex_lock(&s->mu);
				s->active--;
				pthread_mutex_unlock(&s->mu);
				close(fd);
				free(a);
			}
			pthread_attr_destroy(&attr);
		}
	}
	return NULL;
}

unsigned stub_active(struct stub_smtpd *s)
{
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->active;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* stub_wait_idle - wait up to ms for every session to end; 0 or -1. */
static int stub_wait_idle(struct stub_smtpd *s, int ms)
{
	for (; ms > 0; ms -= 5) {
		if (stub_active(s) == 0)
			return 0;
		usleep(5000);
	}
	return stub_active(s) == 0 ? 0 : -1;
}

int stub_close_idle(struct stub_smtpd *s, const char *reply)
{
	pthread_mutex_lock(&s->mu);
	s->kick_gen++;
	s->kick_reply = reply;
	pthread_mutex_unlock(&s->mu);
	return stub_wait_idle(s, 2000);
}

int stub_start(struct stub_smtpd *s, const struct stub_conf *conf)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int one = 1;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	if (conf != NULL)
		s->conf = *conf;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -1;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(s->lfd, 16) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&sin, &sl) < 0) {
		close(s->lfd);
		return -1;
	}
	s->port = ntohs(sin.sin_port);
	if (pthread_create(&s->thr, NULL, stub_thread, s) != 0) {
		close(s->lfd);
		return -1;
	}
	return 0;
}

void stub_stop(struct stub_smtpd *s)
{
	pthread_mutex_lock(&s->mu);
	s->is_stopping = true;
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thr, NULL);
	(void)stub_wait_idle(s, 2 * STUB_READ_WAIT_MS);
	close(s->lfd);
	free(s->transcript);
	free(s->data);
	s->transcript = s->data = NULL;
	pthread_mutex_destroy(&s->mu);
}

void stub_set_conf(struct stub_smtpd *s, const struct stub_conf *conf)
{
	pthread_mutex_lock(&s->mu);
	s->conf = *conf;
	s->conf_gen++;
	pthread_mutex_unlock(&s->mu);
}

void stub_reset(struct stub_smtpd *s)
{
	pthread_mutex_lock(&s->mu);
	free(s->transcript);
	free(s->data);
	s->transcript = s->data = NULL;
	s->transcript_len = s->data_len = 0;
	s->data_bytes = 0;
	s->sessions = s->messages = s->quits = s->idle_closed = 0;
	s->saw_tls = s->auth_ok = s->auth_seen = s->auth_in_clear = false;
	s->mail_in_clear = s->saw_pipelining = false;
	s->auth_mech[0] = '\0';
	pthread_mutex_unlock(&s->mu);
}

unsigned stub_count_cmd(struct stub_smtpd *s, const char *prefix)
{
	unsigned n = 0;
	const char *p;
	size_t pl = strlen(prefix);

	pthread_mutex_lock(&s->mu);
	for (p = s->transcript; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, prefix, pl) == 0)
			n++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	pthread_mutex_unlock(&s->mu);
	return n;
}

bool stub_has_cmd(struct stub_smtpd *s, const char *prefix)
{
	return stub_count_cmd(s, prefix) > 0;
}

SSL_CTX *stub_tls_ctx(const char *dir, char *cert_path, size_t cert_path_sz)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	SSL_CTX *ctx = NULL;
	FILE *f = NULL;

	if (pkey == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
		-1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		goto out;
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		goto out;
	if (X509_sign(x, pkey, EVP_sha256()) == 0)
		goto out;
	snprintf(cert_path, cert_path_sz, "%s/stub-cert.pem", dir);
	f = fopen(cert_path, "w");
	if (f == NULL || PEM_write_X509(f, x) != 1)
		goto out;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
out:
	if (f != NULL)
		fclose(f);
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ctx;
}

unsigned stub_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}
