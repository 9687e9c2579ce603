/*
 * smtp_test.c - see smtp_test.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "smtp_test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static struct mta_settings *tsrv_settings_get(void *arg)
{
	struct tsrv *t = arg;
	struct mta_settings *ms = NULL;

	pthread_mutex_lock(&t->mu);
	if (!t->no_settings && t->ms != NULL)
		ms = mta_settings_ref(t->ms);
	pthread_mutex_unlock(&t->mu);
	return ms;
}

static bool tsrv_store_ok(void *arg)
{
	struct tsrv *t = arg;
	bool ok;

	pthread_mutex_lock(&t->mu);
	ok = !t->store_down;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

static void tsrv_on_queued(void *arg, const char *id)
{
	struct tsrv *t = arg;
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/spool/incoming/%s", t->dir, id);
	pthread_mutex_lock(&t->mu);
	if (t->nqueued < TSRV_MAX_QUEUED)
		sg_strlcpy(t->queued[t->nqueued++], id, SG_MAIL_ID_LEN + 1);
	t->queued_file_seen = stat(path, &st) == 0;
	pthread_mutex_unlock(&t->mu);
}

void tsrv_path(const struct tsrv *t, const char *rel, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", t->dir, rel);
}

void tsrv_init(struct tsrv *t)
{
	struct sg_error err;
	char path[512], url[600];

	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/sg-smtp-test-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	pthread_mutex_init(&t->mu, NULL);
	tsrv_path(t, "spool", path, sizeof(path));
	t->spool = spool_open(path, &err);
	assert_non_null(t->spool);
	tsrv_path(t, "sealgate.db", path, sizeof(path));
	snprintf(url, sizeof(url), "sqlite:%s", path);
	t->db = store_open(url, &err);
	if (t->db == NULL)
		fail_msg("store_open: %s", err.msg);
	if (store_migrate(t->db, &err) < 0)
		fail_msg("store_migrate: %s", err.msg);
	t->ms = mta_settings_load(t->db, "mx.test.example", &err);
	if (t->ms == NULL)
		fail_msg("mta_settings_load: %s", err.msg);
}

void tsrv_set(struct tsrv *t, const char *name, const char *value)
{
	struct sg_error err;
	struct mta_settings *ms, *old;

	if (mta_setting_set(t->db, name, value, &err) < 0)
		fail_msg("mta_setting_set %s=%s: %s", name, value, err.msg);
	ms = mta_settings_load(t->db, "mx.test.example", &err);
	if (ms == NULL)
		fail_msg("mta_settings_load: %s", err.msg);
	pthread_mutex_lock(&t->mu);
	old = t->ms;
	t->ms = ms;
	pthread_mutex_unlock(&t->mu);
	mta_settings_free(&old);
}

/* tsrv_make_cert - a self-signed P-256 certificate + key in one PEM file. */
static void tsrv_make_cert(const char *path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		(const unsigned char *)"mx.test.example", -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void *tsrv_thread(void *arg)
{
	struct tsrv *t = arg;
	struct sg_error err;

	if (smtp_server_run(t->srv, &err) < 0)
		fprintf(stderr, "smtp_server_run: %s\n", err.msg);
	return NULL;
}

void tsrv_start(struct tsrv *t, const struct tsrv_opts *o)
{
	struct smtp_server_conf conf;
	struct sg_error err;
	char cert[512];

	memset(&conf, 0, sizeof(conf));
	sg_strlcpy(conf.listen.host, o->listen_host != NULL ? o->listen_host : "127.0.0.1",
		sizeof(conf.listen.host));
	conf.listen.port = 0;
	conf.threads = 2;
	conf.max_sessions = o->max_sessions;
	conf.idle_timeout_ms = o->idle_timeout_ms != 0 ? o->idle_timeout_ms : 10000;
	conf.max_errors = o->max_errors;
	conf.hostname = "mx.test.example";
	conf.mode = o->mode;
	conf.spool = t->spool;
	conf.verify_timeout_ms = o->verify_timeout_ms != 0 ? o->verify_timeout_ms : 3000;
	conf.on_queued = tsrv_on_queued;
	conf.on_queued_arg = t;
	conf.settings_get = tsrv_settings_get;
	conf.settings_arg = t;
	conf.store_is_ok = tsrv_store_ok;
	conf.store_arg = t;
	if (o->with_tls) {
		tsrv_path(t, "tls.pem", cert, sizeof(cert));
		tsrv_make_cert(cert);
		conf.tls_cert_file = cert;
	}
	t->srv = smtp_server_new(&conf, &err);
	if (t->srv == NULL)
		fail_msg("smtp_server_new: %s", err.msg);
	t->port = smtp_server_port(t->srv);
	assert_true(t->port > 0);
	assert_int_equal(pthread_create(&t->thr, NULL, tsrv_thread, t), 0);
	t->running = true;
}

static void tsrv_rmtree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[1024];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		tsrv_rmtree(sub);
	}
	closedir(d);
	rmdir(path);
}

void tsrv_done(struct tsrv *t)
{
	if (t->running) {
		smtp_server_stop(t->srv);
		pthread_join(t->thr, NULL);
		t->running = false;
	}
	smtp_server_free(&t->srv);
	mta_settings_free(&t->ms);
	store_close(&t->db);
	spool_close(&t->spool);
	pthread_mutex_destroy(&t->mu);
	tsrv_rmtree(t->dir);
}

unsigned tsrv_count(struct tsrv *t, const char *q)
{
	char path[512];
	DIR *d;
	struct dirent *de;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/spool/%s", t->dir, q);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------------ client */

void tcli_connect(struct tcli *c, const char *host, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct timeval tv = {10, 0};

	memset(c, 0, sizeof(*c));
	memset(&ss, 0, sizeof(ss));
	if (strchr(host, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET6, host, &s6->sin6_addr), 1);
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		assert_int_equal(inet_pton(AF_INET, host, &s4->sin_addr), 1);
		sslen = sizeof(*s4);
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&ss, sslen) < 0)
		fail_msg("connect %s:%u: %s", host, port, strerror(errno));
}

void tcli_open(struct tcli *c, unsigned port)
{
	tcli_connect(c, "127.0.0.1", port);
	assert_int_equal(tcli_reply(c), 220);
}

void tcli_close(struct tcli *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void tcli_send_raw(struct tcli *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n;

		if (c->ssl != NULL)
			n = SSL_write(c->ssl, p, (int)(len > 65536 ? 65536 : len));
		else
			n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail_msg("send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

void tcli_send(struct tcli *c, const char *fmt, ...)
{
	char *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	tcli_send_raw(c, s, (size_t)n);
	free(s);
}

/* tcli_fill - read more into buf; bytes read, 0 on EOF, -1 on timeout/error. */
static ssize_t tcli_fill(struct tcli *c)
{
	ssize_t n;

	if (c->have >= sizeof(c->buf) - 1)
		return -1;
	if (c->ssl != NULL)
		n = SSL_read(c->ssl, c->buf + c->have, (int)(sizeof(c->buf) - 1 - c->have));
	else
		n = recv(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have, 0);
	if (n < 0)
		return -1;
	c->have += (size_t)n;
	return n;
}

int tcli_reply(struct tcli *c)
{
	size_t lo = 0;

	c->last[0] = '\0';
	for (;;) {
		char *eol;

		while ((eol = memchr(c->buf, '\n', c->have)) != NULL) {
			size_t llen = (size_t)(eol - c->buf);
			bool final = llen >= 4 && c->buf[3] == ' ';
			int code = atoi(c->buf);
			size_t copy = llen > 0 && c->buf[llen - 1] == '\r' ? llen - 1 : llen;

			if (lo + copy + 2 < sizeof(c->last)) {
				if (lo > 0)
					c->last[lo++] = '\n';
				memcpy(c->last + lo, c->buf, copy);
				lo += copy;
				c->last[lo] = '\0';
			}
			memmove(c->buf, eol + 1, c->have - llen - 1);
			c->have -= llen + 1;
			if (final || llen == 3)
				return code;
		}
		if (tcli_fill(c) <= 0)
			return -1;
	}
}

int tcli_cmd(struct tcli *c, const char *line)
{
	tcli_send(c, "%s\r\n", line);
	return tcli_reply(c);
}

bool tcli_is_closed(struct tcli *c)
{
	int64_t end = sg_mono_ms() + 5000;

	c->have = 0;
	while (sg_mono_ms() < end) {
		ssize_t n = tcli_fill(c);

		if (n == 0)
			return true;
		if (n < 0)
			return errno == ECONNRESET;
		c->have = 0; /* discard anything still in flight */
	}
	return false;
}

void tcli_ehlo(struct tcli *c)
{
	assert_int_equal(tcli_cmd(c, "EHLO client.test.example"), 250);
}

void tcli_starttls(struct tcli *c)
{
	static SSL_CTX *ctx;
	SSL *ssl;

	if (ctx == NULL) {
		ctx = SSL_CTX_new(TLS_client_method());
		assert_non_null(ctx);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	assert_int_equal(tcli_cmd(c, "STARTTLS"), 220);
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	SSL_set_fd(ssl, c->fd);
	SSL_set_tlsext_host_name(ssl, "mx.test.example");
	if (SSL_connect(ssl) != 1)
		fail_msg("TLS handshake failed");
	c->ssl = ssl;
}

/* --------------------------------------------------------------- messages */

void tmsg_load(struct tsrv *t, const char *id, struct tmsg *m)
{
	struct sg_error err;
	struct spool_msg *sm = spool_msg_open(t->spool, SPOOL_Q_INCOMING, id, &err);
	uint64_t off, len;
	int fd;

	if (sm == NULL)
		fail_msg("spool_msg_open %s: %s", id, err.msg);
	memset(m, 0, sizeof(*m));
	spool_env_copy(&m->env, spool_msg_env(sm));
	fd = spool_msg_body_fd(sm, &off, &len);
	assert_true(fd >= 0);
	m->body = malloc(len + 1);
	assert_non_null(m->body);
	assert_int_equal(pread(fd, m->body, len, (off_t)off), (ssize_t)len);
	m->body[len] = '\0';
	m->len = len;
	spool_msg_close(&sm);
}

void tmsg_free(struct tmsg *m)
{
	spool_env_free_fields(&m->env);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

const char *tmsg_body_after_received(const struct tmsg *m, size_t *len_r)
{
	const char *p = m->body;
	const char *end = m->body + m->len;

	/* Our header: "Received: ..." plus continuation lines starting with TAB. */
	if (m->len < 10 || strncmp(p, "Received: ", 10) != 0)
		fail_msg("body does not start with our Received: header");
	for (;;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		assert_non_null(eol);
		p = eol + 1;
		if (p >= end || *p != '\t')
			break;
	}
	*len_r = (size_t)(end - p);
	return p;
}

void tid_from_reply(const struct tcli *c, char *id)
{
	const char *p = strstr(c->last, "queued as ");

	if (p == NULL)
		fail_msg("no ID in reply: %s", c->last);
	sg_strlcpy(id, p + 10, SG_MAIL_ID_LEN + 1);
	assert_true(sg_mail_id_is_valid(id));
}
