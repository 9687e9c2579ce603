/*
 * lib_budget.c - a process-wide budget for memory that cannot be streamed.
 *
 * OpenSSL decodes a CMS structure whole (d2i reads all of it): decrypting
 * or verifying an opaque-signed message holds one copy of it in memory.
 * With N pipeline workers on large messages that is N copies, so the
 * daemon's peak RSS grew with message size. Callers take the bytes they
 * are about to hold from this budget first and give them back after: at
 * most `limit` bytes are held at once, except by a single request larger
 * than the limit, which runs alone. Requests are served in arrival order
 * (a ticket each), so a large one is not starved by a stream of small
 * ones. The state is the module's only global: one budget per process.
 */
#include "lib.h"

#include <pthread.h>

static pthread_mutex_t budget_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t budget_cv = PTHREAD_COND_INITIALIZER;
static uint64_t budget_limit;      /* 0: unlimited */
static uint64_t budget_used;
static uint64_t budget_next;       /* next ticket to hand out */
static uint64_t budget_serving;    /* ticket allowed to take next */
static uint64_t budget_peak;

void sg_budget_set(uint64_t limit)
{
	pthread_mutex_lock(&budget_mu);
	budget_limit = limit;
	pthread_cond_broadcast(&budget_cv);
	pthread_mutex_unlock(&budget_mu);
}

void sg_budget_acquire(uint64_t n)
{
	uint64_t ticket;

	pthread_mutex_lock(&budget_mu);
	ticket = budget_next++;
	while (ticket != budget_serving ||
		(budget_limit > 0 && budget_used > 0 && budget_used + n > budget_limit))
		pthread_cond_wait(&budget_cv, &budget_mu);
	budget_serving++;
	budget_used += n;
	if (budget_used > budget_peak)
		budget_peak = budget_used;
	pthread_cond_broadcast(&budget_cv);
	pthread_mutex_unlock(&budget_mu);
}

void sg_budget_release(uint64_t n)
{
	pthread_mutex_lock(&budget_mu);
	budget_used = n > budget_used ? 0 : budget_used - n;
	pthread_cond_broadcast(&budget_cv);
	pthread_mutex_unlock(&budget_mu);
}

uint64_t sg_budget_peak(bool reset)
{
	uint64_t p;

	pthread_mutex_lock(&budget_mu);
	p = budget_peak;
	if (reset)
		budget_peak = budget_used;
	pthread_mutex_unlock(&budget_mu);
	return p;
}
