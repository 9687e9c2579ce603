/*
 * spool_env.c - the message envelope (struct spool_env) and queue names.
 * Pure data helpers, used by every spool caller in any thread.
 */
#include "spool_int.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static const char *const spool_queue_names[SPOOL_Q__COUNT] = {
	[SPOOL_Q_INCOMING] = "incoming",
	[SPOOL_Q_OUTGOING] = "outgoing",
	[SPOOL_Q_DEFERRED] = "deferred",
	[SPOOL_Q_ERROR] = "error",
	[SPOOL_Q_HOLD] = "hold",
};

bool spool_queue_is_valid(enum spool_queue q)
{
	return (unsigned)q < SPOOL_Q__COUNT;
}

const char *spool_queue_name(enum spool_queue q)
{
	if (!spool_queue_is_valid(q))
		return "?";
	return spool_queue_names[q];
}

int spool_queue_from_name(const char *name, enum spool_queue *q_r)
{
	unsigned i;

	if (name == NULL)
		return -1;
	for (i = 0; i < SPOOL_Q__COUNT; i++) {
		if (strcmp(name, spool_queue_names[i]) == 0) {
			*q_r = (enum spool_queue)i;
			return 0;
		}
	}
	return -1;
}

const char *spool_kind_name(enum spool_kind kind)
{
	switch (kind) {
	case SPOOL_KIND_MESSAGE:
		return "message";
	case SPOOL_KIND_NOTIFICATION:
		return "notification";
	case SPOOL_KIND_BOUNCE:
		return "bounce";
	}
	return "?";
}

const char *spool_rcpt_status_name(enum spool_rcpt_status st)
{
	switch (st) {
	case SPOOL_RCPT_PENDING:
		return "pending";
	case SPOOL_RCPT_DELIVERED:
		return "delivered";
	case SPOOL_RCPT_FAILED:
		return "failed";
	}
	return "?";
}

void spool_env_free_fields(struct spool_env *env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].orcpt);
		free(env->rcpts[i].last_reply);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->client_addr);
	free(env->client_helo);
	free(env->parent_id);
	free(env->dsn_envid);
	free(env->last_error);
	memset(env, 0, sizeof(*env));
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? sg_xstrdup(s) : NULL;
}

void spool_env_copy(struct spool_env *dst, const struct spool_env *src)
{
	size_t i;

	*dst = *src;
	dst->sender = dup_or_null(src->sender);
	dst->client_addr = dup_or_null(src->client_addr);
	dst->client_helo = dup_or_null(src->client_helo);
	dst->parent_id = dup_or_null(src->parent_id);
	dst->dsn_envid = dup_or_null(src->dsn_envid);
	dst->last_error = dup_or_null(src->last_error);
	dst->rcpts = NULL;
	if (src->nrcpts > 0) {
		dst->rcpts = sg_xcalloc(src->nrcpts, sizeof(*dst->rcpts));
		for (i = 0; i < src->nrcpts; i++) {
			dst->rcpts[i] = src->rcpts[i];
			dst->rcpts[i].addr = dup_or_null(src->rcpts[i].addr);
			dst->rcpts[i].orcpt = dup_or_null(src->rcpts[i].orcpt);
			dst->rcpts[i].last_reply = dup_or_null(src->rcpts[i].last_reply);
		}
	}
}

/* spool_env_add_rcpt - grow geometrically; the capacity is taken from the
 * allocator (malloc_usable_size), so this works whoever allocated rcpts. */
void spool_env_add_rcpt(struct spool_env *env, const char *addr, const char *orcpt,
	unsigned notify)
{
	struct spool_rcpt *r;
	size_t n = env->nrcpts;

	if (env->rcpts == NULL ||
		(n + 1) * sizeof(*env->rcpts) > malloc_usable_size(env->rcpts))
		env->rcpts = sg_xrealloc(env->rcpts, (n < 4 ? 8 : n * 2) * sizeof(*env->rcpts));
	r = &env->rcpts[n];
	memset(r, 0, sizeof(*r));
	r->addr = sg_xstrdup(addr != NULL ? addr : "");
	r->orcpt = dup_or_null(orcpt);
	r->notify = notify;
	r->status = SPOOL_RCPT_PENDING;
	env->nrcpts = n + 1;
}
