/* sms_test.c - see sms_test.h. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include <openssl/ssl.h>

#include "sms_test.h"
#include "store_test_pg.h"

#ifdef SMS_TEST_PG
#define IS_PG 1
#else
#define IS_PG 0
#endif

static struct store_test_env E;

bool stest_is_pg(void)
{
	return IS_PG;
}

const char *stest_tmpdir(void)
{
	return E.tmpdir;
}

int stest_group_setup(void **state)
{
	(void)state;
	return store_test_env_begin(&E, "sms", IS_PG);
}

int stest_group_teardown(void **state)
{
	(void)state;
	store_test_env_end(&E);
	return 0;
}

int stest_setup(void **state)
{
	struct stest_fx *f = calloc(1, sizeof(*f));
	struct store_test_db t;

	if (f == NULL)
		return -1;
	if (store_test_db_open(&E, "sg_stest", &t) < 0) {
		free(f);
		return -1;
	}
	f->db = t.db;
	memcpy(f->url, t.url, sizeof(f->url));
	memcpy(f->dbname, t.dbname, sizeof(f->dbname));
	memcpy(f->path, t.path, sizeof(f->path));
	*state = f;
	return 0;
}

int stest_teardown(void **state)
{
	struct stest_fx *f = *state;

	struct store_test_db t = {.db = f->db};

	memcpy(t.dbname, f->dbname, sizeof(t.dbname));
	memcpy(t.path, f->path, sizeof(t.path));
	store_test_db_drop(&E, &t);
	free(f);
	return 0;
}

struct store *stest_open2(struct stest_fx *f)
{
	struct sg_error err;
	struct store *db = store_open(f->url, &err);

	if (db == NULL)
		fail_msg("second connection: %s", err.msg);
	return db;
}

void stest_set(struct store *db, const char *name, const char *value)
{
	struct sg_error err;

	if (sms_setting_set(db, name, value, &err) < 0)
		fail_msg("sms setting %s=%s: %s", name, value, err.msg);
}

/* ------------------------------------------------------- test HTTP server */

/* conn_read/conn_write - over TLS when ssl is not NULL */
static ssize_t conn_read(int fd, SSL *ssl, char *buf, size_t len)
{
	if (ssl != NULL) {
		int n = SSL_read(ssl, buf, (int)len);

		return n > 0 ? n : -1;
	}
	return recv(fd, buf, len, 0);
}

static void conn_write(int fd, SSL *ssl, const char *buf, size_t len)
{
	if (ssl != NULL)
		(void)SSL_write(ssl, buf, (int)len);
	else
		(void)send(fd, buf, len, MSG_NOSIGNAL);
}

/* read_request - head and Content-Length body into buf; bytes read */
static size_t read_request(int fd, SSL *ssl, char *buf, size_t bufsz)
{
	size_t len = 0, want = 0;
	char *head_end = NULL;

	while (len + 1 < bufsz) {
		ssize_t n = conn_read(fd, ssl, buf + len, bufsz - 1 - len);

		if (n < 0 && errno == EINTR && ssl == NULL)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (head_end == NULL) {
			head_end = strstr(buf, "\r\n\r\n");
			if (head_end != NULL) {
				const char *cl = strcasestr(buf, "\r\nContent-Length:");

				want = (size_t)(head_end + 4 - buf);
				if (cl != NULL && cl < head_end)
					want += strtoul(cl + 17, NULL, 10);
			}
		}
		if (head_end != NULL && len >= want)
			break;
	}
	buf[len] = '\0';
	return len;
}

/* serve_one - answer one connection from the script */
static void serve_one(struct thttp *h, int c)
{
	char *buf = malloc(THTTP_REQ_MAX), out[THTTP_REQ_MAX + 256];
	struct thttp_reply r = {200, "", 0, NULL};
	size_t idx;
	int waited = 0, n;
	SSL *ssl = NULL;

	if (h->tls != NULL) {
		ssl = SSL_new(h->tls);
		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) != 1) {  /* e.g. the client refused our certificate */
			SSL_free(ssl);
			free(buf);
			return;
		}
	}
	read_request(c, ssl, buf, THTTP_REQ_MAX);
	pthread_mutex_lock(&h->mu);
	idx = h->n_req;
	if (h->n_req < THTTP_MAX_REQ)
		snprintf(h->req[h->n_req], THTTP_REQ_MAX, "%s", buf);
	h->n_req++;
	if (h->n_script > 0)
		r = h->script[idx < h->n_script ? idx : h->n_script - 1];
	pthread_mutex_unlock(&h->mu);
	while (waited < r.delay_ms && !__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST)) {
		struct pollfd p = {c, POLLIN, 0};
		char ch;

		/* stop waiting when the client gave up (EOF) */
		if (poll(&p, 1, 20) > 0 && recv(c, &ch, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
			break;
		waited += 20;
	}
	n = snprintf(out, sizeof(out), "HTTP/1.1 %d Test\r\nContent-Type: text/plain\r\n"
		"%sContent-Length: %zu\r\nConnection: close\r\n\r\n", r.status,
		r.headers != NULL ? r.headers : "", strlen(r.body));
	conn_write(c, ssl, out, (size_t)n);
	conn_write(c, ssl, r.body, strlen(r.body));
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	free(buf);
}

static void *thttp_main(void *arg)
{
	struct thttp *h = arg;

	while (!__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST)) {
		struct pollfd p = {h->fd, POLLIN, 0};
		int c;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(h->fd, NULL, NULL);
		if (c < 0)
			continue;
		serve_one(h, c);
		close(c);
	}
	return NULL;
}

int thttp_start(struct thttp *h)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		listen(h->fd, 16) < 0 || getsockname(h->fd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	h->port = ntohs(a.sin_port);
	pthread_mutex_init(&h->mu, NULL);
	h->stop = false;
	return pthread_create(&h->th, NULL, thttp_main, h) == 0 ? 0 : -1;
}

int thttp_start_tls(struct thttp *h, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		SSL_CTX_free(ctx);
		return -1;
	}
	h->tls = ctx;
	return thttp_start(h);
}

void thttp_stop(struct thttp *h)
{
	__atomic_store_n(&h->stop, true, __ATOMIC_SEQ_CST);
	pthread_join(h->th, NULL);
	close(h->fd);
	pthread_mutex_destroy(&h->mu);
	SSL_CTX_free(h->tls);
	h->tls = NULL;
}

void thttp_script(struct thttp *h, const struct thttp_reply *r, size_t n)
{
	pthread_mutex_lock(&h->mu);
	if (n > sizeof(h->script) / sizeof(h->script[0]))
		n = sizeof(h->script) / sizeof(h->script[0]);
	memcpy(h->script, r, n * sizeof(*r));
	h->n_script = n;
	h->n_req = 0;
	pthread_mutex_unlock(&h->mu);
}

size_t thttp_count(struct thttp *h)
{
	size_t n;

	pthread_mutex_lock(&h->mu);
	n = h->n_req;
	pthread_mutex_unlock(&h->mu);
	return n;
}

void thttp_request(struct thttp *h, size_t i, char *out, size_t outsz)
{
	pthread_mutex_lock(&h->mu);
	snprintf(out, outsz, "%s", i < h->n_req && i < THTTP_MAX_REQ ? h->req[i] : "");
	pthread_mutex_unlock(&h->mu);
}
