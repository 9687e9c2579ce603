/* test_lib_budget.c - the process-wide budget for memory that cannot be
 * streamed (lib_budget.c): never more than the limit held at once, a request
 * over the limit runs alone, arrival order is kept (a large request is not
 * starved), unlimited when the limit is 0. Threads hammer it and record how
 * much they hold together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/lib.h"

#define KB 1024u

struct worker {
	uint64_t size;
	unsigned rounds;
};

static atomic_uint_fast64_t held;     /* what the workers hold right now */
static atomic_uint_fast64_t held_max; /* the most seen at once */
static atomic_uint_fast64_t alone_violations;

static void hold(uint64_t n, uint64_t limit)
{
	uint64_t now, max;

	sg_budget_acquire(n);
	now = atomic_fetch_add(&held, n) + n;
	max = atomic_load(&held_max);
	while (now > max && !atomic_compare_exchange_weak(&held_max, &max, now))
		;
	/* a request over the limit must be alone */
	if (limit > 0 && n > limit && now != n)
		atomic_fetch_add(&alone_violations, 1);
	usleep(200);
	atomic_fetch_sub(&held, n);
	sg_budget_release(n);
}

static uint64_t g_limit;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	for (i = 0; i < w->rounds; i++)
		hold(w->size, g_limit);
	return NULL;
}

static void run(uint64_t limit, const struct worker *ws, size_t n)
{
	pthread_t t[16];
	struct worker copy[16];
	size_t i;

	assert_true(n <= 16);
	g_limit = limit;
	atomic_store(&held, 0);
	atomic_store(&held_max, 0);
	atomic_store(&alone_violations, 0);
	sg_budget_set(limit);
	(void)sg_budget_peak(true);
	for (i = 0; i < n; i++) {
		copy[i] = ws[i];
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &copy[i]), 0);
	}
	for (i = 0; i < n; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	sg_budget_set(0);
}

/* Eight workers of 300 KB under a 1 MB limit: never more than the limit at
 * once, and the budget's own peak agrees. */
static void test_limit_holds(void **state)
{
	struct worker ws[8];
	size_t i;

	(void)state;
	for (i = 0; i < 8; i++)
		ws[i] = (struct worker){.size = 300 * KB, .rounds = 50};
	run(1024 * KB, ws, 8);
	assert_true(atomic_load(&held_max) <= 1024 * KB);
	assert_true(sg_budget_peak(false) <= 1024 * KB);
}

static pthread_barrier_t bar;
static atomic_bool got_it;

static void *hold_at_barrier(void *arg)
{
	uint64_t n = *(const uint64_t *)arg;

	sg_budget_acquire(n);
	pthread_barrier_wait(&bar);  /* all holders hold */
	pthread_barrier_wait(&bar);  /* the main thread checked the waiter */
	sg_budget_release(n);
	return NULL;
}

static void *late(void *arg)
{
	uint64_t n = *(const uint64_t *)arg;

	sg_budget_acquire(n);
	atomic_store(&got_it, true);
	sg_budget_release(n);
	return NULL;
}

/* Three holders of 300 KB fit under 1 MB together (they all reach the
 * barrier while holding); a fourth waits until they give back. */
static void test_fits_then_waits(void **state)
{
	uint64_t n = 300 * KB;
	pthread_t t[3], w;
	size_t i;

	(void)state;
	sg_budget_set(1024 * KB);
	atomic_store(&got_it, false);
	assert_int_equal(pthread_barrier_init(&bar, NULL, 4), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hold_at_barrier, &n), 0);
	pthread_barrier_wait(&bar);
	assert_int_equal(pthread_create(&w, NULL, late, &n), 0);
	usleep(50 * 1000);
	assert_false(atomic_load(&got_it));
	pthread_barrier_wait(&bar);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(pthread_join(w, NULL), 0);
	assert_true(atomic_load(&got_it));
	pthread_barrier_destroy(&bar);
	sg_budget_set(0);
}

/* A request over the limit runs alone, and mixed with small ones it is
 * still served (arrival order: the test would hang otherwise). */
static void test_oversize_alone(void **state)
{
	struct worker ws[6] = {
		{.size = 3000 * KB, .rounds = 20},
		{.size = 100 * KB, .rounds = 200},
		{.size = 100 * KB, .rounds = 200},
		{.size = 100 * KB, .rounds = 200},
		{.size = 100 * KB, .rounds = 200},
		{.size = 2000 * KB, .rounds = 20},
	};

	(void)state;
	run(1024 * KB, ws, 6);
	assert_int_equal(atomic_load(&alone_violations), 0);
	assert_true(atomic_load(&held_max) <= 3000 * KB);
}

/* Limit 0: nobody waits; eight holders of 1 MB all hold at once. */
static void test_unlimited(void **state)
{
	uint64_t n = 1024 * KB;
	pthread_t t[8];
	size_t i;

	(void)state;
	sg_budget_set(0);
	assert_int_equal(pthread_barrier_init(&bar, NULL, 9), 0);
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hold_at_barrier, &n), 0);
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&bar);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_holds),
		cmocka_unit_test(test_fits_then_waits),
		cmocka_unit_test(test_oversize_alone),
		cmocka_unit_test(test_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
