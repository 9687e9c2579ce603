/*
 * daemon_workq.c - FIFO of mail IDs with duplicate suppression (see
 * daemon_workq.h). A mutex + condition variable; the set of known IDs is a
 * small open-addressing hash table that grows with the number of queued IDs.
 */
#include "daemon_workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct workq_item {
	char id[SG_MAIL_ID_LEN + 1];
	struct workq_item *next;
};

struct daemon_workq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct workq_item *head, *tail;
	size_t len;
	bool closed;
	/* known = queued or in progress; linear probing, tombstones as "\1" */
	char (*known)[SG_MAIL_ID_LEN + 1];
	size_t known_cap, known_used;
};

static size_t workq_hash(const char *id, size_t cap)
{
	uint64_t h = 1469598103934665603ull;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return (size_t)(h & (cap - 1));
}

static bool workq_known_find(struct daemon_workq *q, const char *id, size_t *slot_r)
{
	size_t i = workq_hash(id, q->known_cap);
	size_t first_free = SIZE_MAX;

	for (;;) {
		if (q->known[i][0] == '\0') {
			*slot_r = first_free != SIZE_MAX ? first_free : i;
			return false;
		}
		if (q->known[i][0] == '\1') {
			if (first_free == SIZE_MAX)
				first_free = i;
		} else if (strcmp(q->known[i], id) == 0) {
			*slot_r = i;
			return true;
		}
		i = (i + 1) & (q->known_cap - 1);
	}
}

static void workq_known_grow(struct daemon_workq *q)
{
	char (*old)[SG_MAIL_ID_LEN + 1] = q->known;
	size_t oldcap = q->known_cap;
	size_t i, slot;

	q->known_cap = oldcap * 2;
	q->known = sg_xcalloc(q->known_cap, sizeof(*q->known));
	q->known_used = 0;
	for (i = 0; i < oldcap; i++) {
		if (old[i][0] == '\0' || old[i][0] == '\1')
			continue;
		workq_known_find(q, old[i], &slot);
		memcpy(q->known[slot], old[i], sizeof(old[i]));
		q->known_used++;
	}
	free(old);
}

struct daemon_workq *daemon_workq_new(void)
{
	struct daemon_workq *q = sg_xcalloc(1, sizeof(*q));
	pthread_condattr_t ca;

	pthread_mutex_init(&q->lock, NULL);
	/* timed pops measure with the monotonic clock (immune to clock steps) */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	q->known_cap = 1024;
	q->known = sg_xcalloc(q->known_cap, sizeof(*q->known));
	return q;
}

void daemon_workq_free(struct daemon_workq **qp)
{
	struct daemon_workq *q = *qp;
	struct workq_item *it, *next;

	if (q == NULL)
		return;
	*qp = NULL;
	for (it = q->head; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q->known);
	free(q);
}

void daemon_workq_push(struct daemon_workq *q, const char *id)
{
	struct workq_item *it;
	size_t slot;

	if (!sg_mail_id_is_valid(id))
		return;
	pthread_mutex_lock(&q->lock);
	if (q->closed || workq_known_find(q, id, &slot)) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	/* keep the load factor under 1/2 (tombstones count as used) */
	if ((q->known_used + 1) * 2 > q->known_cap) {
		workq_known_grow(q);
		workq_known_find(q, id, &slot);
	}
	if (q->known[slot][0] == '\0')
		q->known_used++;
	memcpy(q->known[slot], id, SG_MAIL_ID_LEN + 1);
	it = sg_xmalloc(sizeof(*it));
	memcpy(it->id, id, SG_MAIL_ID_LEN + 1);
	it->next = NULL;
	if (q->tail != NULL)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->len++;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* workq_take - with the lock held and an item queued: dequeue it into id_r
 * and unlock. */
static void workq_take(struct daemon_workq *q, char *id_r)
{
	struct workq_item *it = q->head;

	q->head = it->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->len--;
	pthread_mutex_unlock(&q->lock);
	memcpy(id_r, it->id, SG_MAIL_ID_LEN + 1);
	free(it);
}

int daemon_workq_pop(struct daemon_workq *q, char *id_r)
{
	pthread_mutex_lock(&q->lock);
	while (q->head == NULL && !q->closed)
		pthread_cond_wait(&q->cond, &q->lock);
	if (q->closed) {
		/* queued IDs are still on disk; the next start picks them up */
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	workq_take(q, id_r);
	return 1;
}

int daemon_workq_pop_timed(struct daemon_workq *q, char *id_r, unsigned timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->lock);
	while (q->head == NULL && !q->closed && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&q->cond, &q->lock, &ts);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return -1;
	}
	if (q->head == NULL) {
		pthread_mutex_unlock(&q->lock);
		return 0;
	}
	workq_take(q, id_r);
	return 1;
}

void daemon_workq_done(struct daemon_workq *q, const char *id)
{
	size_t slot;

	pthread_mutex_lock(&q->lock);
	if (workq_known_find(q, id, &slot))
		q->known[slot][0] = '\1';
	pthread_mutex_unlock(&q->lock);
}

void daemon_workq_close(struct daemon_workq *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

size_t daemon_workq_len(struct daemon_workq *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len;
	pthread_mutex_unlock(&q->lock);
	return n;
}
