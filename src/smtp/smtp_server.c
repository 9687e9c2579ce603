/*
 * smtp_server.c - the listener's threads and sockets: bind/listen, the TLS
 * context for STARTTLS, N libevent loops (one per thread), the accept loop
 * handing connections round-robin to the loops, per-loop mailboxes (mutex +
 * wake pipe) for cross-thread messages, and orderly shutdown.
 *
 * Called by the daemon (and the session tests). smtp_server_run blocks in the
 * caller's thread, which runs loop 0 and the accept callback; loops 1..N-1
 * run in their own threads. Each session lives entirely in one loop thread.
 *
 * Why one accept loop and not SO_REUSEPORT listeners per thread: the port may
 * be 0 (tests), max_sessions is global, round-robin is deterministic, and a
 * REUSEPORT socket lets any process of the same uid join the port group.
 * Why a private pipe per loop and not evthread locking: it keeps every libevent
 * object single-threaded (no lock-order questions inside bufferevents) and
 * needs no global libevent initialisation from the caller.
 */
#include "smtp_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define SMTP_STOP_GRACE_MS 2000

void smtp_loop_post(struct smtp_loop *loop, struct smtp_msg *msg)
{
	char b = 1;
	ssize_t n;

	msg->next = NULL;
	pthread_mutex_lock(&loop->mu);
	if (loop->tail != NULL)
		loop->tail->next = msg;
	else
		loop->head = msg;
	loop->tail = msg;
	pthread_mutex_unlock(&loop->mu);
	/* EAGAIN: the pipe is full, so the loop is already due to wake up. */
	do {
		n = write(loop->wake[1], &b, 1);
	} while (n < 0 && errno == EINTR);
}

/* smtp_loop_stop_timer - the grace period is over: leave the loop. */
static void smtp_loop_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_loop *loop = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(loop->base);
}

/* smtp_loop_stop - close the listener (loop 0), 421 to every session. */
static void smtp_loop_stop(struct smtp_loop *loop)
{
	struct smtp_session *s, *next;
	struct timeval tv = {SMTP_STOP_GRACE_MS / 1000, (SMTP_STOP_GRACE_MS % 1000) * 1000};

	if (loop->stopping)
		return;
	loop->stopping = true;
	if (loop->idx == 0 && loop->srv->listener != NULL)
		evconnlistener_disable(loop->srv->listener);
	for (s = loop->sessions; s != NULL; s = next) {
		next = smtp_session_next(s);
		smtp_session_shutdown(s);
	}
	loop->stop_timer = evtimer_new(loop->base, smtp_loop_stop_timer, loop);
	if (loop->stop_timer != NULL)
		evtimer_add(loop->stop_timer, &tv);
	if (loop->nsessions == 0)
		event_base_loopexit(loop->base, NULL);
}

/* smtp_loop_wake - drain the pipe and handle queued messages. */
static void smtp_loop_wake(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_loop *loop = arg;
	struct smtp_msg *m;
	char buf[256];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&loop->mu);
	m = loop->head;
	loop->head = loop->tail = NULL;
	pthread_mutex_unlock(&loop->mu);
	while (m != NULL) {
		struct smtp_msg *next = m->next;

		switch (m->kind) {
		case SMTP_MSG_CONN:
			if (loop->stopping)
				close(m->fd);
			else
				smtp_session_start(loop, m->fd, m->addr);
			break;
		case SMTP_MSG_VERIFY:
			smtp_session_verify_done(loop, m->serial, m->code);
			break;
		case SMTP_MSG_STOP:
			smtp_loop_stop(loop);
			break;
		}
		free(m);
		m = next;
	}
}

/* smtp_send_now - best-effort reply on a socket we will close at once. */
static void smtp_send_now(int fd, const char *text)
{
	ssize_t n;

	do {
		n = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
}

/* smtp_accept - loop 0: admit or refuse, then hand fd to the next loop. */
static void smtp_accept(struct evconnlistener *l, evutil_socket_t fd,
	struct sockaddr *sa, int salen, void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_loop *loop;
	struct smtp_msg *m;
	char addr[64] = "unknown";
	char line[300];
	unsigned n;
	int one = 1;

	(void)l;
	(void)salen;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, addr,
			sizeof(addr));
	n = __atomic_add_fetch(&srv->nsessions, 1, __ATOMIC_ACQ_REL);
	if (n > srv->conf.max_sessions) {
		__atomic_sub_fetch(&srv->nsessions, 1, __ATOMIC_ACQ_REL);
		snprintf(line, sizeof(line),
			"421 4.7.0 %s Error: too many connections\r\n", srv->conf.hostname);
		smtp_send_now(fd, line);
		sg_log(SG_LOG_WARN, "smtp: refused [%s]: too many connections (%u)", addr,
			srv->conf.max_sessions);
		close(fd);
		return;
	}
	/* Replies are small writes the client waits for: no Nagle delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	loop = &srv->loops[srv->next_loop];
	srv->next_loop = (srv->next_loop + 1) % srv->nloops;
	if (loop->idx == 0) {
		smtp_session_start(loop, fd, addr);
		return;
	}
	m = sg_xcalloc(1, sizeof(*m));
	m->kind = SMTP_MSG_CONN;
	m->fd = fd;
	sg_strlcpy(m->addr, addr, sizeof(m->addr));
	smtp_loop_post(loop, m);
}

/* smtp_tls_new - server context: TLS >= 1.2, cert chain + key. */
static SSL_CTX *smtp_tls_new(const char *cert, const char *key, struct sg_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* XXX: the listener key is read here, not through pki_key (STYLE §8);
	 * move it behind the keyd seam when that exists. */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "TLS certificate %s", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key != NULL ? key : cert, SSL_FILETYPE_PEM) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "TLS key %s", key != NULL ? key : cert);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "TLS key does not match certificate");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* smtp_bind - socket, SO_REUSEADDR, bind, listen; returns fd or -1. */
static int smtp_bind(const struct sg_hostport *hp, unsigned *port_r, struct sg_error *err)
{
	struct addrinfo hints, *res = NULL;
	char port[16];
	int fd = -1;
	int one = 1;
	int rc;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", hp->port);
	rc = getaddrinfo(hp->host, port, &hints, &res);
	if (rc != 0) {
		sg_error_set(err, SG_E_IO, "listen %s: %s", hp->host, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "socket");
		goto fail;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "bind %s:%u", hp->host, hp->port);
		goto fail;
	}
	if (listen(fd, 128) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "listen %s:%u", hp->host, hp->port);
		goto fail;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "getsockname");
		goto fail;
	}
	*port_r = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		((struct sockaddr_in6 *)&ss)->sin6_port);
	freeaddrinfo(res);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

static int smtp_loop_init(struct smtp_server *srv, struct smtp_loop *loop, unsigned idx,
	struct sg_error *err)
{
	loop->srv = srv;
	loop->idx = idx;
	loop->wake[0] = loop->wake[1] = -1;
	pthread_mutex_init(&loop->mu, NULL);
	loop->base = event_base_new();
	if (loop->base == NULL) {
		sg_error_set(err, SG_E_NOMEM, "event_base_new failed");
		return -1;
	}
	if (pipe2(loop->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "pipe");
		return -1;
	}
	loop->wake_ev = event_new(loop->base, loop->wake[0], EV_READ | EV_PERSIST,
		smtp_loop_wake, loop);
	if (loop->wake_ev == NULL || event_add(loop->wake_ev, NULL) < 0) {
		sg_error_set(err, SG_E_NOMEM, "event_new failed");
		return -1;
	}
	return 0;
}

static void smtp_loop_deinit(struct smtp_loop *loop)
{
	struct smtp_msg *m, *next;

	while (loop->sessions != NULL)
		smtp_session_free_now(loop->sessions);
	for (m = loop->head; m != NULL; m = next) {
		next = m->next;
		if (m->kind == SMTP_MSG_CONN) {
			close(m->fd);
			__atomic_sub_fetch(&loop->srv->nsessions, 1, __ATOMIC_ACQ_REL);
		}
		free(m);
	}
	loop->head = loop->tail = NULL;
	if (loop->stop_timer != NULL)
		event_free(loop->stop_timer);
	if (loop->wake_ev != NULL)
		event_free(loop->wake_ev);
	if (loop->wake[0] >= 0)
		close(loop->wake[0]);
	if (loop->wake[1] >= 0)
		close(loop->wake[1]);
	if (loop->base != NULL)
		event_base_free(loop->base);
	pthread_mutex_destroy(&loop->mu);
	memset(loop, 0, sizeof(*loop));
	loop->wake[0] = loop->wake[1] = -1;
}

struct smtp_server *smtp_server_new(const struct smtp_server_conf *conf,
	struct sg_error *err)
{
	struct smtp_server *srv = NULL;
	unsigned i;

	if (conf == NULL || conf->spool == NULL || conf->settings_get == NULL) {
		sg_error_set(err, SG_E_INVAL, "smtp: spool and settings_get are required");
		return NULL;
	}
	if (conf->threads > 64) {
		sg_error_set(err, SG_E_INVAL, "smtp: threads must be 1..64");
		return NULL;
	}
	srv = sg_xcalloc(1, sizeof(*srv));
	srv->listen_fd = -1;
	srv->conf.threads = conf->threads != 0 ? conf->threads : 2;
	srv->conf.max_sessions = conf->max_sessions != 0 ? conf->max_sessions : 200;
	srv->conf.idle_timeout_ms = conf->idle_timeout_ms != 0 ? conf->idle_timeout_ms :
		300000;
	srv->conf.max_errors = conf->max_errors != 0 ? conf->max_errors : 20;
	srv->conf.hostname = conf->hostname != NULL ? sg_xstrdup(conf->hostname) : NULL;
	srv->conf.mode = conf->mode;
	srv->conf.spool = conf->spool;
	srv->conf.verify_timeout_ms = conf->verify_timeout_ms != 0 ?
		conf->verify_timeout_ms : 10000;
	srv->conf.verify_threads = conf->verify_threads != 0 ? conf->verify_threads : 2;
	srv->conf.on_queued = conf->on_queued;
	srv->conf.on_queued_arg = conf->on_queued_arg;
	srv->conf.settings_get = conf->settings_get;
	srv->conf.settings_arg = conf->settings_arg;
	srv->conf.store_is_ok = conf->store_is_ok;
	srv->conf.store_arg = conf->store_arg;
	if (srv->conf.hostname == NULL) {
		struct mta_settings *ms = conf->settings_get(conf->settings_arg);

		srv->conf.hostname = sg_xstrdup(ms != NULL ? ms->hostname : "localhost");
		mta_settings_free(&ms);
	}
	if (conf->tls_cert_file != NULL && conf->tls_cert_file[0] != '\0') {
		srv->tls = smtp_tls_new(conf->tls_cert_file, conf->tls_key_file, err);
		if (srv->tls == NULL)
			goto fail;
	}
	srv->verify = smtp_verify_new(srv->conf.verify_threads, srv->conf.verify_timeout_ms,
		err);
	if (srv->verify == NULL)
		goto fail;
	srv->nloops = srv->conf.threads;
	srv->loops = sg_xcalloc(srv->nloops, sizeof(*srv->loops));
	for (i = 0; i < srv->nloops; i++) {
		srv->loops[i].wake[0] = srv->loops[i].wake[1] = -1;
		if (smtp_loop_init(srv, &srv->loops[i], i, err) < 0)
			goto fail;
	}
	srv->listen_fd = smtp_bind(&conf->listen, &srv->port, err);
	if (srv->listen_fd < 0)
		goto fail;
	srv->listener = evconnlistener_new(srv->loops[0].base, smtp_accept, srv,
		LEV_OPT_CLOSE_ON_FREE, -1, srv->listen_fd);
	if (srv->listener == NULL) {
		sg_error_set(err, SG_E_IO, "evconnlistener_new failed");
		goto fail;
	}
	return srv;
fail:
	smtp_server_free(&srv);
	return NULL;
}

unsigned smtp_server_port(const struct smtp_server *s)
{
	return s->port;
}

unsigned smtp_server_sessions(const struct smtp_server *s)
{
	return __atomic_load_n(&s->nsessions, __ATOMIC_ACQUIRE);
}

static void *smtp_loop_thread(void *arg)
{
	struct smtp_loop *loop = arg;

	event_base_dispatch(loop->base);
	return NULL;
}

int smtp_server_run(struct smtp_server *s, struct sg_error *err)
{
	unsigned i;
	int rc = 0;

	for (i = 1; i < s->nloops; i++) {
		int e = pthread_create(&s->loops[i].thread, NULL, smtp_loop_thread,
			&s->loops[i]);

		if (e != 0) {
			sg_error_set_errno(err, SG_E_INTERNAL, e, "smtp: thread");
			smtp_server_stop(s);
			rc = -1;
			break;
		}
		s->loops[i].thread_started = true;
	}
	sg_log(SG_LOG_INFO, "smtp: listening on port %u (%u threads, mode %s)", s->port,
		s->nloops, s->conf.mode == SG_MODE_POSTFIX ? "postfix" : "standalone");
	event_base_dispatch(s->loops[0].base);
	for (i = 1; i < s->nloops; i++) {
		if (s->loops[i].thread_started) {
			pthread_join(s->loops[i].thread, NULL);
			s->loops[i].thread_started = false;
		}
	}
	/* Sessions left after the grace period: free them in this thread now that
	 * every loop has ended. */
	for (i = 0; i < s->nloops; i++) {
		while (s->loops[i].sessions != NULL)
			smtp_session_free_now(s->loops[i].sessions);
	}
	return rc;
}

void smtp_server_stop(struct smtp_server *s)
{
	unsigned i;

	if (s == NULL || __atomic_exchange_n(&s->stopping, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (i = 0; i < s->nloops; i++) {
		struct smtp_msg *m = sg_xcalloc(1, sizeof(*m));

		m->kind = SMTP_MSG_STOP;
		smtp_loop_post(&s->loops[i], m);
	}
}

void smtp_server_free(struct smtp_server **sp)
{
	struct smtp_server *s;
	unsigned i;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	*sp = NULL;
	/* Probe workers post into the loops: stop them before the loops go. */
	smtp_verify_free(&s->verify);
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	else if (s->listen_fd >= 0)
		close(s->listen_fd);
	for (i = 0; s->loops != NULL && i < s->nloops; i++)
		smtp_loop_deinit(&s->loops[i]);
	free(s->loops);
	if (s->tls != NULL)
		SSL_CTX_free(s->tls);
	free(s->conf.hostname);
	free(s);
}
