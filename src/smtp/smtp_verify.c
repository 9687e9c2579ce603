/*
 * smtp_verify.c - "reject unverified recipient" (standalone mode, F-ADM-5):
 * probe the internal relay host with RCPT TO for a recipient, cache the
 * answer, and hand it back to the session that asked.
 *
 * Called by smtp_session.c (cache look-up and submit, in a loop thread) and
 * smtp_server.c (new/free). Probes run in their own worker threads because
 * they block (connect, read with a timeout); the answer is posted to the
 * asking loop's mailbox with the session serial, never as a pointer, so a
 * session freed meanwhile is never touched.
 *
 * RFC 5321 (client side of a minimal transaction: EHLO/HELO, MAIL FROM:<>,
 * RCPT TO, QUIT; no DATA is ever sent). Like Postfix's address verification
 * probes the sender is the null sender, so a probe can never cause a bounce.
 *
 * Cache: answers 2xx (positive) and 5xx (negative) are kept for their
 * lifetimes; failed probes (connect error, timeout, 4xx) are never cached. The
 * cache is bounded (SMTP_VERIFY_CACHE_MAX entries): when full, expired entries
 * are dropped first, then the oldest one. Thread-safe (one mutex).
 *
 * XXX: the relay host is resolved with getaddrinfo; the MX flag of the relay
 * setting is not honoured by the probe (tests and most sites use literals).
 */
#include "smtp_int.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SMTP_VERIFY_CACHE_MAX 10000
#define SMTP_VERIFY_QUEUE_MAX 1000
#define SMTP_VERIFY_REPLY_MAX 4096

struct smtp_verify_entry {
	char *key;
	int code;
	int64_t expires;   /* sg_mono_ms deadline */
	int64_t added;
};

struct smtp_verify_job {
	struct smtp_verify_job *next;
	char *host;
	unsigned port;
	char *helo;
	char *addr;
	unsigned ttl_pos, ttl_neg;
	struct smtp_loop *loop;
	uint64_t serial;
};

struct smtp_verify {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	unsigned timeout_ms;
	pthread_t *threads;
	unsigned nthreads;
	struct smtp_verify_job *head, *tail;
	unsigned queued;
	struct smtp_verify_entry *cache;
	size_t ncache;
};

/* smtp_verify_key - "host:port:addr" with host and the address domain lower-case. */
static char *smtp_verify_key(const char *host, unsigned port, const char *addr)
{
	char *key = sg_xasprintf("%s:%u:%s", host, port, addr);
	char *at = strrchr(key, '@');
	char *colon = strchr(key, ':');

	if (colon != NULL)
		*colon = '\0';
	sg_str_lower(key);
	if (colon != NULL)
		*colon = ':';
	if (at != NULL)
		sg_str_lower(at);
	return key;
}

int smtp_verify_cached(struct smtp_verify *v, const char *host, unsigned port,
	const char *addr, int *code_r)
{
	char *key = smtp_verify_key(host, port, addr);
	int64_t now = sg_mono_ms();
	int found = 0;
	size_t i;

	pthread_mutex_lock(&v->mu);
	for (i = 0; i < v->ncache; i++) {
		if (strcmp(v->cache[i].key, key) == 0) {
			if (v->cache[i].expires > now) {
				*code_r = v->cache[i].code;
				found = 1;
			}
			break;
		}
	}
	pthread_mutex_unlock(&v->mu);
	free(key);
	return found;
}

/* smtp_verify_store - remember code for key (mutex held by the caller). */
static void smtp_verify_store(struct smtp_verify *v, char *key, int code, unsigned ttl_s)
{
	int64_t now = sg_mono_ms();
	size_t i, victim = 0;

	for (i = 0; i < v->ncache; i++) {
		if (strcmp(v->cache[i].key, key) == 0) {
			free(key);
			v->cache[i].code = code;
			v->cache[i].expires = now + (int64_t)ttl_s * 1000;
			v->cache[i].added = now;
			return;
		}
	}
	if (v->ncache == SMTP_VERIFY_CACHE_MAX) {
		/* Drop expired entries; if none, the oldest. */
		size_t w = 0;

		for (i = 0; i < v->ncache; i++) {
			if (v->cache[i].expires <= now)
				free(v->cache[i].key);
			else
				v->cache[w++] = v->cache[i];
		}
		v->ncache = w;
		if (v->ncache == SMTP_VERIFY_CACHE_MAX) {
			for (i = 1; i < v->ncache; i++) {
				if (v->cache[i].added < v->cache[victim].added)
					victim = i;
			}
			free(v->cache[victim].key);
			v->cache[victim] = v->cache[--v->ncache];
		}
	}
	if (v->cache == NULL)
		v->cache = sg_xcalloc(SMTP_VERIFY_CACHE_MAX, sizeof(*v->cache));
	v->cache[v->ncache].key = key;
	v->cache[v->ncache].code = code;
	v->cache[v->ncache].expires = now + (int64_t)ttl_s * 1000;
	v->cache[v->ncache].added = now;
	v->ncache++;
}

/* probe_connect - TCP connect to host:port within deadline; fd or -1. */
static int probe_connect(const char *host, unsigned port, int64_t deadline)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		int soerr = 0;
		socklen_t slen = sizeof(soerr);
		int64_t left;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			left = deadline - sg_mono_ms();
			if (left > 0 && poll(&pfd, 1, (int)left) == 1 &&
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0)
				break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* probe_reply - read one (possibly multi-line) reply; its code, or -1. */
static int probe_reply(int fd, char *buf, size_t *have, int64_t deadline)
{
	for (;;) {
		char *line = buf;
		char *eol;
		struct pollfd pfd;
		ssize_t n;
		int64_t left;

		/* A complete reply in buf: "ddd " line ends it. */
		while ((eol = memchr(line, '\n', *have - (size_t)(line - buf))) != NULL) {
			size_t llen = (size_t)(eol - line);

			if (llen >= 4 && line[0] >= '2' && line[0] <= '5' &&
				line[1] >= '0' && line[1] <= '9' && line[2] >= '0' && line[2] <= '9' &&
				(line[3] == ' ' || line[3] == '\r')) {
				int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
				size_t used = (size_t)(eol + 1 - buf);

				memmove(buf, eol + 1, *have - used);
				*have -= used;
				return code;
			}
			if (llen < 4 || line[3] != '-')
				return -1;
			line = eol + 1;
		}
		if (*have >= SMTP_VERIFY_REPLY_MAX - 1)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		left = deadline - sg_mono_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
			return -1;
		n = recv(fd, buf + *have, SMTP_VERIFY_REPLY_MAX - 1 - *have, 0);
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
}

/* probe_cmd - send one command line and read its reply code (-1 on failure). */
static int probe_cmd(int fd, const char *line, char *buf, size_t *have, int64_t deadline)
{
	size_t len = strlen(line);
	size_t off = 0;

	while (off < len) {
		struct pollfd pfd = {fd, POLLOUT, 0};
		ssize_t n;
		int64_t left = deadline - sg_mono_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
			return -1;
		n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return probe_reply(fd, buf, have, deadline);
}

int smtp_verify_probe(const char *host, unsigned port, const char *helo,
	const char *addr, unsigned timeout_ms)
{
	int64_t deadline = sg_mono_ms() + timeout_ms;
	char buf[SMTP_VERIFY_REPLY_MAX];
	char line[SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 32];
	size_t have = 0;
	int fd = probe_connect(host, port, deadline);
	int code = 0;
	int rc;

	if (fd < 0)
		return 0;
	if (probe_reply(fd, buf, &have, deadline) != 220)
		goto out;
	snprintf(line, sizeof(line), "EHLO %s\r\n", helo != NULL && *helo != '\0' ?
		helo : "localhost");
	rc = probe_cmd(fd, line, buf, &have, deadline);
	if (rc >= 500 && rc < 600) {
		snprintf(line, sizeof(line), "HELO %s\r\n", helo != NULL && *helo != '\0' ?
			helo : "localhost");
		rc = probe_cmd(fd, line, buf, &have, deadline);
	}
	if (rc < 200 || rc >= 300)
		goto out;
	if (probe_cmd(fd, "MAIL FROM:<>\r\n", buf, &have, deadline) / 100 != 2)
		goto out;
	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", addr);
	rc = probe_cmd(fd, line, buf, &have, deadline);
	if ((rc >= 200 && rc < 300) || (rc >= 500 && rc < 600))
		code = rc;
	(void)probe_cmd(fd, "QUIT\r\n", buf, &have, sg_mono_ms() + 1000);
out:
	close(fd);
	return code;
}

static void smtp_verify_job_free(struct smtp_verify_job *j)
{
	free(j->host);
	free(j->helo);
	free(j->addr);
	free(j);
}

static void *smtp_verify_worker(void *arg)
{
	struct smtp_verify *v = arg;

	for (;;) {
		struct smtp_verify_job *j;
		struct smtp_msg *m;
		int code;

		pthread_mutex_lock(&v->mu);
		while (v->head == NULL && !v->stopping)
			pthread_cond_wait(&v->cv, &v->mu);
		if (v->head == NULL) {
			pthread_mutex_unlock(&v->mu);
			return NULL;
		}
		j = v->head;
		v->head = j->next;
		if (v->head == NULL)
			v->tail = NULL;
		v->queued--;
		pthread_mutex_unlock(&v->mu);

		code = v->stopping ? 0 : smtp_verify_probe(j->host, j->port, j->helo, j->addr,
			v->timeout_ms);
		sg_trace(SG_TRACE_SMTP, "verify <%s> at %s:%u: %d", j->addr, j->host, j->port,
			code);
		if (code != 0) {
			pthread_mutex_lock(&v->mu);
			smtp_verify_store(v, smtp_verify_key(j->host, j->port, j->addr), code,
				code < 300 ? j->ttl_pos : j->ttl_neg);
			pthread_mutex_unlock(&v->mu);
		}
		m = sg_xcalloc(1, sizeof(*m));
		m->kind = SMTP_MSG_VERIFY;
		m->serial = j->serial;
		m->code = code;
		smtp_loop_post(j->loop, m);
		smtp_verify_job_free(j);
	}
}

void smtp_verify_submit(struct smtp_verify *v, const char *host, unsigned port,
	const char *helo, const char *addr, unsigned ttl_pos, unsigned ttl_neg,
	struct smtp_loop *loop, uint64_t serial)
{
	struct smtp_verify_job *j;

	pthread_mutex_lock(&v->mu);
	if (v->stopping || v->queued >= SMTP_VERIFY_QUEUE_MAX || v->nthreads == 0) {
		struct smtp_msg *m;

		/* Overloaded: answer "probe failed" (450) at once rather than queue
		 * without bound. */
		pthread_mutex_unlock(&v->mu);
		m = sg_xcalloc(1, sizeof(*m));
		m->kind = SMTP_MSG_VERIFY;
		m->serial = serial;
		m->code = 0;
		smtp_loop_post(loop, m);
		return;
	}
	j = sg_xcalloc(1, sizeof(*j));
	j->host = sg_xstrdup(host);
	j->port = port;
	j->helo = sg_xstrdup(helo != NULL ? helo : "");
	j->addr = sg_xstrdup(addr);
	j->ttl_pos = ttl_pos;
	j->ttl_neg = ttl_neg;
	j->loop = loop;
	j->serial = serial;
	if (v->tail != NULL)
		v->tail->next = j;
	else
		v->head = j;
	v->tail = j;
	v->queued++;
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

struct smtp_verify *smtp_verify_new(unsigned threads, unsigned timeout_ms,
	struct sg_error *err)
{
	struct smtp_verify *v = sg_xcalloc(1, sizeof(*v));
	unsigned i;

	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	v->timeout_ms = timeout_ms;
	v->threads = sg_xcalloc(threads, sizeof(*v->threads));
	for (i = 0; i < threads; i++) {
		int e = pthread_create(&v->threads[i], NULL, smtp_verify_worker, v);

		if (e != 0) {
			sg_error_set_errno(err, SG_E_INTERNAL, e, "smtp: verify thread");
			smtp_verify_free(&v);
			return NULL;
		}
		v->nthreads++;
	}
	return v;
}

void smtp_verify_free(struct smtp_verify **vp)
{
	struct smtp_verify *v;
	struct smtp_verify_job *j, *next;
	unsigned i;
	size_t k;

	if (vp == NULL || *vp == NULL)
		return;
	v = *vp;
	*vp = NULL;
	pthread_mutex_lock(&v->mu);
	v->stopping = true;
	/* Queued probes are dropped: their sessions are going away too. */
	for (j = v->head; j != NULL; j = next) {
		next = j->next;
		smtp_verify_job_free(j);
	}
	v->head = v->tail = NULL;
	v->queued = 0;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
	for (i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
	free(v->threads);
	for (k = 0; k < v->ncache; k++)
		free(v->cache[k].key);
	free(v->cache);
	pthread_cond_destroy(&v->cv);
	pthread_mutex_destroy(&v->mu);
	free(v);
}
