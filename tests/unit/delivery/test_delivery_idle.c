/* test_delivery_idle.c - what a delivery thread does while it has no work
 * (issue 2, connection reuse): the work queue's timed pop (times out, returns
 * an ID pushed while it waits, reports a closed queue), the connection cache
 * being per thread, and the worker loop of sealgated's delivery threads
 * (pop with a timeout while connections are cached, close them after the
 * idle time and at exit) closing them with QUIT. The daemon's own loop
 * (daemon_delivery_worker) follows the same shape; it is not linkable here. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "daemon/daemon_workq.h"
#include "delivery/delivery_int.h"
#include "smtpd_stub.h"

static void id_of(unsigned n, char *out)
{
	snprintf(out, SG_MAIL_ID_LEN + 1, "%016X", n);
}

/* ------------------------------------------------------------- timed pop */

static void test_pop_timed_times_out(void **state)
{
	struct daemon_workq *q = daemon_workq_new();
	char got[SG_MAIL_ID_LEN + 1];
	int64_t t0 = sg_mono_ms(), dt;

	(void)state;
	assert_int_equal(daemon_workq_pop_timed(q, got, 150), 0);
	dt = sg_mono_ms() - t0;
	if (dt < 140 || dt > 2000)
		fail_msg("waited %lld ms, want about 150", (long long)dt);
	/* an ID already queued comes back at once */
	id_of(7, got);
	daemon_workq_push(q, got);
	memset(got, 0, sizeof(got));
	t0 = sg_mono_ms();
	assert_int_equal(daemon_workq_pop_timed(q, got, 5000), 1);
	assert_true(sg_mono_ms() - t0 < 1000);
	assert_string_equal(got, "0000000000000007");
	daemon_workq_done(q, got);
	daemon_workq_free(&q);
}

struct pusher {
	struct daemon_workq *q;
	unsigned delay_ms;
	bool is_close;
};

static void *push_later(void *arg)
{
	struct pusher *p = arg;
	char id[SG_MAIL_ID_LEN + 1];

	usleep(p->delay_ms * 1000);
	if (p->is_close) {
		daemon_workq_close(p->q);
	} else {
		id_of(42, id);
		daemon_workq_push(p->q, id);
	}
	return NULL;
}

static void test_pop_timed_wakes_on_push_and_close(void **state)
{
	struct daemon_workq *q = daemon_workq_new();
	struct pusher p = {.q = q, .delay_ms = 100};
	char got[SG_MAIL_ID_LEN + 1];
	pthread_t t;
	int64_t t0;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, push_later, &p), 0);
	t0 = sg_mono_ms();
	assert_int_equal(daemon_workq_pop_timed(q, got, 10000), 1);
	assert_true(sg_mono_ms() - t0 < 5000);
	assert_string_equal(got, "000000000000002A");
	pthread_join(t, NULL);
	daemon_workq_done(q, got);

	p.is_close = true;
	assert_int_equal(pthread_create(&t, NULL, push_later, &p), 0);
	t0 = sg_mono_ms();
	assert_int_equal(daemon_workq_pop_timed(q, got, 10000), -1);
	assert_true(sg_mono_ms() - t0 < 5000);
	pthread_join(t, NULL);
	/* closed: no waiting at all */
	assert_int_equal(daemon_workq_pop_timed(q, got, 10000), -1);
	daemon_workq_free(&q);
}

/* ------------------------------------------------- idle worker, per thread */

static char tmpdir[256];
static const char body[] = "Subject: t\r\n\r\nhello\r\n";

struct worker {
	struct daemon_workq *q;
	unsigned port;
	int body_fd;
	unsigned idle_ms;
	unsigned delivered;
	unsigned cached_after_last;   /* cache count right after the last delivery */
	unsigned idle_closes;         /* times the idle timeout closed the cache */
};

/* worker_deliver - one message to the stub on w->port. */
static int worker_deliver(struct worker *w)
{
	struct spool_rcpt r = {.addr = "a@ext.test"};
	struct spool_rcpt *rp = &r;
	struct delivery_session_opts o = {.helo = "gw.test", .server_name = "localhost",
		.tls = MTA_TLS_NONE, .connect_timeout = 5, .io_timeout = 5};
	struct delivery_tx tx = {.mail_id = "TESTID", .sender = "s@int.test", .rcpts = &rp,
		.nrcpts = 1, .body_fd = w->body_fd, .body_len = sizeof(body) - 1};
	struct delivery_result res;
	struct sockaddr_in sin = {.sin_family = AF_INET};

	sin.sin_port = htons((uint16_t)w->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (delivery_client_send(&o, (const struct sockaddr *)&sin, sizeof(sin), &tx, &res) < 0 ||
	    res.status != DELIVERY_R_OK)
		return -1;
	return 0;
}

/* worker_main - the delivery thread's loop: blocking pop while nothing is
 * cached, a timed pop while connections are; close them when idle and at
 * exit. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char id[SG_MAIL_ID_LEN + 1];

	for (;;) {
		int rc;

		if (delivery_conn_cache_count() == 0)
			rc = daemon_workq_pop(w->q, id) == 1 ? 1 : -1;
		else
			rc = daemon_workq_pop_timed(w->q, id, w->idle_ms);
		if (rc < 0)
			break;
		if (rc == 0) {
			delivery_conn_cache_close();
			w->idle_closes++;
			continue;
		}
		if (worker_deliver(w) == 0)
			w->delivered++;
		w->cached_after_last = delivery_conn_cache_count();
		daemon_workq_done(w->q, id);
	}
	delivery_conn_cache_close();
	return NULL;
}

static int wait_for(struct stub_smtpd *s, unsigned *counter, unsigned want, int ms)
{
	for (; ms > 0; ms -= 10) {
		unsigned v;

		pthread_mutex_lock(&s->mu);
		v = *counter;
		pthread_mutex_unlock(&s->mu);
		if (v >= want)
			return 0;
		usleep(10 * 1000);
	}
	return -1;
}

static void test_worker_closes_idle_connections(void **state)
{
	struct stub_smtpd stub;
	struct worker w = {.idle_ms = 300};
	char path[300], id[SG_MAIL_ID_LEN + 1];
	pthread_t t;

	(void)state;
	assert_int_equal(stub_start(&stub, NULL), 0);
	snprintf(path, sizeof(path), "%s/body", tmpdir);
	w.body_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(w.body_fd >= 0);
	assert_int_equal(write(w.body_fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
	w.q = daemon_workq_new();
	w.port = stub.port;
	assert_int_equal(pthread_create(&t, NULL, worker_main, &w), 0);

	id_of(1, id);
	daemon_workq_push(w.q, id);
	assert_int_equal(wait_for(&stub, &stub.messages, 1, 5000), 0);
	id_of(2, id);
	daemon_workq_push(w.q, id);
	assert_int_equal(wait_for(&stub, &stub.messages, 2, 5000), 0);
	/* both on one connection, kept open by the worker thread only */
	assert_int_equal(stub.sessions, 1);
	assert_int_equal(delivery_conn_cache_count(), 0);
	/* no work for idle_ms: the worker QUITs the connection */
	assert_int_equal(wait_for(&stub, &stub.quits, 1, 5000), 0);

	/* new work opens a new connection; closing the queue QUITs it at exit */
	id_of(3, id);
	daemon_workq_push(w.q, id);
	assert_int_equal(wait_for(&stub, &stub.messages, 3, 5000), 0);
	daemon_workq_close(w.q);
	pthread_join(t, NULL);
	assert_int_equal(stub.sessions, 2);
	assert_int_equal(stub.quits, 2);
	assert_int_equal(w.delivered, 3);
	assert_int_equal(w.idle_closes, 1);
	assert_int_equal(w.cached_after_last, 1);

	daemon_workq_free(&w.q);
	stub_stop(&stub);
	close(w.body_fd);
	unlink(path);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-dlv-idle-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pop_timed_times_out),
		cmocka_unit_test(test_pop_timed_wakes_on_push_and_close),
		cmocka_unit_test(test_worker_closes_idle_connections),
	};

	signal(SIGPIPE, SIG_IGN);
	sg_log_init("test_delivery_idle", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
