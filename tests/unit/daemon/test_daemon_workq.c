/* test_daemon_workq.c - the daemon's ID work queue: FIFO order, an ID queued
 * or in progress is not queued twice, close wakes waiters, concurrent
 * producers and consumers see every ID exactly once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon_workq.h"

static void id_of(unsigned n, char *out)
{
	snprintf(out, SG_MAIL_ID_LEN + 1, "%016X", n);
}

static void test_fifo_and_dedup(void **state)
{
	struct daemon_workq *q = daemon_workq_new();
	char a[SG_MAIL_ID_LEN + 1], b[SG_MAIL_ID_LEN + 1], got[SG_MAIL_ID_LEN + 1];

	(void)state;
	id_of(1, a);
	id_of(2, b);
	daemon_workq_push(q, a);
	daemon_workq_push(q, b);
	daemon_workq_push(q, a);  /* queued: no-op */
	assert_int_equal(daemon_workq_len(q), 2);
	assert_int_equal(daemon_workq_pop(q, got), 1);
	assert_string_equal(got, a);
	daemon_workq_push(q, a);  /* in progress: no-op */
	assert_int_equal(daemon_workq_len(q), 1);
	daemon_workq_done(q, a);
	daemon_workq_push(q, a);  /* done: may be queued again */
	assert_int_equal(daemon_workq_len(q), 2);
	assert_int_equal(daemon_workq_pop(q, got), 1);
	assert_string_equal(got, b);
	assert_int_equal(daemon_workq_pop(q, got), 1);
	assert_string_equal(got, a);
	daemon_workq_done(q, a);
	daemon_workq_done(q, b);
	daemon_workq_free(&q);
	assert_null(q);
}

static void *pop_one(void *arg)
{
	char id[SG_MAIL_ID_LEN + 1];

	return (void *)(intptr_t)daemon_workq_pop(arg, id);
}

static void test_close_wakes_waiters(void **state)
{
	struct daemon_workq *q = daemon_workq_new();
	pthread_t t[3];
	void *rc;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, pop_one, q), 0);
	usleep(50000);
	daemon_workq_close(q);
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], &rc);
		assert_int_equal((intptr_t)rc, 0);
	}
	daemon_workq_free(&q);
}

#define N_IDS 20000
#define N_THREADS 4

struct mt {
	struct daemon_workq *q;
	pthread_mutex_t lock;
	unsigned seen[N_IDS];
};

static void *producer(void *arg)
{
	struct mt *m = arg;
	char id[SG_MAIL_ID_LEN + 1];
	unsigned i;

	/* Every producer pushes every ID (like overlapping directory scans). */
	for (i = 0; i < N_IDS; i++) {
		id_of(i, id);
		daemon_workq_push(m->q, id);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct mt *m = arg;
	char id[SG_MAIL_ID_LEN + 1];

	while (daemon_workq_pop(m->q, id) == 1) {
		unsigned n = (unsigned)strtoul(id, NULL, 16);

		pthread_mutex_lock(&m->lock);
		m->seen[n]++;
		pthread_mutex_unlock(&m->lock);
		/* not marked done: a later push of the same ID must stay a no-op */
	}
	return NULL;
}

static void test_concurrent_exactly_once(void **state)
{
	struct mt *m = calloc(1, sizeof(*m));
	pthread_t prod[N_THREADS], cons[N_THREADS];
	unsigned i;

	(void)state;
	m->q = daemon_workq_new();
	pthread_mutex_init(&m->lock, NULL);
	for (i = 0; i < N_THREADS; i++) {
		pthread_create(&cons[i], NULL, consumer, m);
		pthread_create(&prod[i], NULL, producer, m);
	}
	for (i = 0; i < N_THREADS; i++)
		pthread_join(prod[i], NULL);
	while (daemon_workq_len(m->q) > 0)
		usleep(1000);
	daemon_workq_close(m->q);
	for (i = 0; i < N_THREADS; i++)
		pthread_join(cons[i], NULL);
	for (i = 0; i < N_IDS; i++)
		if (m->seen[i] != 1)
			fail_msg("ID %u processed %u times", i, m->seen[i]);
	daemon_workq_free(&m->q);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_and_dedup),
		cmocka_unit_test(test_close_wakes_waiters),
		cmocka_unit_test(test_concurrent_exactly_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
