/*
 * mpa_run.c - the pipeline runner (DESIGN "life of a message" steps 2-4):
 * envelope check, originator (F-POL-3), the policy decisions and recipient
 * groups (mpa_decide.c), the stage table per group, the outputs, one
 * notification about the groups that got nothing (mpa_notify.c) and the one
 * log line per message (F-FLOW-4).
 *
 * Called by mpa_process_spooled (daemon MPA worker threads, one message per
 * thread) and mpa_process_stream (`sealgate process`). Fail closed
 * (F-FLOW-1): a stage error or an output that cannot be made stops the whole
 * message (error/ or retry); an output is never replaced by a weaker one. The
 * after-filter size limit (F-FLOW-5, D-7): a group whose output is larger
 * gets nothing and the originator is notified (mpa_notify.c).
 */
#include "mpa_int.h"

#include <stdlib.h>
#include <string.h>

/* Recipients named in the log line; the rest are counted. */
#define MPA_LOG_TO_MAX 900

const char *mpa_result_name(enum mpa_result r)
{
	switch (r) {
	case MPA_NEXT:
		return "next";
	case MPA_DONE:
		return "done";
	case MPA_DEFER:
		return "defer";
	case MPA_REJECT:
		return "reject";
	case MPA_ERROR:
		return "error";
	}
	return "?";
}

const char *mpa_action_name(enum mpa_action a)
{
	switch (a) {
	case MPA_ACT_PASS:
		return "pass";
	case MPA_ACT_DROP:
		return "drop";
	case MPA_ACT_ENCRYPT_FAILED:
		return "encrypt-failed";
	}
	return "?";
}

enum mpa_result mpa_result_of_error(const struct sg_error *err)
{
	return sg_errc_class(err->code) == SG_EC_TEMPORARY ? MPA_DEFER : MPA_ERROR;
}

/* mpa_addr_is_usable - an envelope address the next hop can be given:
 * local part and domain non-empty, no control characters, no angle
 * brackets. Deliberately looser than sg_addr_is_valid: the SMTP server
 * already checked the syntax (quoted local parts may hold spaces), and a
 * message must not land in error/ over a syntax nuance. */
static bool mpa_addr_is_usable(const char *a)
{
	const char *at = strrchr(a, '@');
	const unsigned char *p;

	if (at == NULL || at == a || at[1] == '\0' || strlen(a) > SPOOL_MAX_FIELD)
		return false;
	for (p = (const unsigned char *)a; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	return true;
}

/* mpa_env_check - the envelope must be usable: a sender that is empty (<>)
 * or an address, at least one recipient, every recipient an address. */
static int mpa_env_check(const struct spool_env *env, struct sg_error *err)
{
	char esc[128];
	size_t i;

	if (env->sender == NULL || (env->sender[0] != '\0' && !mpa_addr_is_usable(env->sender))) {
		sg_log_esc(esc, sizeof(esc), env->sender ? env->sender : "(none)",
			env->sender ? strlen(env->sender) : 6);
		sg_error_set(err, SG_E_PARSE, "bad envelope sender <%s>", esc);
		return -1;
	}
	if (env->nrcpts == 0) {
		sg_error_set(err, SG_E_PARSE, "envelope without recipients");
		return -1;
	}
	for (i = 0; i < env->nrcpts; i++) {
		const char *a = env->rcpts[i].addr;

		if (a == NULL || !mpa_addr_is_usable(a)) {
			sg_log_esc(esc, sizeof(esc), a ? a : "(none)", a ? strlen(a) : 6);
			sg_error_set(err, SG_E_PARSE, "bad envelope recipient <%s>", esc);
			return -1;
		}
	}
	return 0;
}

/* mpa_group_reject - the group's recipients get nothing (see mpa_int.h). */
void mpa_group_reject(struct mpa_group *g, enum mpa_action action, const char *reason)
{
	g->action = action;
	sg_strlcpy(g->reason, reason, sizeof(g->reason));
	mime_msg_free(&g->msg);
}

/* mpa_group_rejected - after a stage's MPA_REJECT: log it (the originator
 * is told once for all such groups, after the outputs: mpa_notify_dropped). */
static void mpa_group_rejected(struct mpa_ctx *ctx, const char *stage)
{
	struct mpa_group *g = ctx->group;
	const char *first = ctx->env->rcpts[g->rcpts[0]].addr;
	char esc[SPOOL_MAX_FIELD + 64];

	if (g->action == MPA_ACT_PASS)
		mpa_group_reject(g, MPA_ACT_DROP, stage);
	mime_msg_free(&g->msg);
	sg_log_esc(esc, sizeof(esc), first, strlen(first));
	sg_log_mail(SG_LOG_WARN, ctx->id, "not sent to %zu recipient(s) (first <%s>): %s: %s",
		g->nrcpts, esc, mpa_action_name(g->action), g->reason);
}

/* mpa_run_stages - the stage table for ctx->group. */
static enum mpa_result mpa_run_stages(struct mpa_ctx *ctx, struct sg_error *err)
{
	size_t s;

	for (s = 0; s < mpa_nstages; s++) {
		const struct mpa_stage *st = &mpa_stages[s];
		enum mpa_result r = st->fn(ctx, err);

		if (sg_log_is_tracing(SG_TRACE_MPA))
			sg_trace(SG_TRACE_MPA, "%s: stage %s: %s (%zu recipients)", ctx->id,
				st->name, mpa_result_name(r), ctx->group->nrcpts);
		switch (r) {
		case MPA_NEXT:
			continue;
		case MPA_DONE:
			return MPA_NEXT;
		case MPA_REJECT:
			mpa_group_rejected(ctx, st->name);
			return MPA_NEXT;
		case MPA_DEFER:
		case MPA_ERROR:
			sg_error_prefix(err, "stage %s: ", st->name);
			return r;
		}
	}
	return MPA_NEXT;
}

/* mpa_out_env - the envelope of a group's output: the input's with the
 * group's recipients (ORCPT and NOTIFY kept) and parent_id = the input. */
static void mpa_out_env(const struct mpa_ctx *ctx, const struct mpa_group *g,
	struct spool_env *out)
{
	const struct spool_env *in = ctx->env;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->sender = sg_xstrdup(in->sender);
	out->kind = in->kind;
	out->client_addr = in->client_addr ? sg_xstrdup(in->client_addr) : NULL;
	out->client_helo = in->client_helo ? sg_xstrdup(in->client_helo) : NULL;
	out->parent_id = sg_xstrdup(ctx->id);
	out->dsn_envid = in->dsn_envid ? sg_xstrdup(in->dsn_envid) : NULL;
	out->dsn_ret_hdrs = in->dsn_ret_hdrs;
	out->smtputf8 = in->smtputf8;
	out->body_8bit = in->body_8bit;
	out->arrival = in->arrival;
	for (i = 0; i < g->nrcpts; i++) {
		const struct spool_rcpt *r = &in->rcpts[g->rcpts[i]];

		spool_env_add_rcpt(out, r->addr, r->orcpt, r->notify);
	}
}

/* mpa_emit_group - hand the group's output to the sink; an output over the
 * after-filter limit drops the group (D-7) instead. */
static enum mpa_result mpa_emit_group(struct mpa_ctx *ctx, struct mpa_group *g,
	const struct mpa_sink *sink, struct sg_error *err)
{
	struct spool_env env;
	struct mime_msg *msg = g->msg != NULL ? g->msg : ctx->msg;
	enum mpa_result r = MPA_NEXT;

	mpa_out_env(ctx, g, &env);
	if (sink->emit(sink->arg, &env, msg, ctx->mpa->conf.max_size, err) == 0) {
		ctx->noutputs++;
		goto out;
	}
	if (err->code != SG_E_LIMIT) {
		r = mpa_result_of_error(err);
		sg_error_prefix(err, "output: ");
		goto out;
	}
	sg_log_mail(SG_LOG_WARN, ctx->id, "output for %zu recipient(s) exceeds the "
		"after-filter size limit (%ju bytes): not sent", g->nrcpts,
		(uintmax_t)ctx->mpa->conf.max_size);
	mpa_group_reject(g, MPA_ACT_DROP,
		"the processed message is larger than the size limit");
out:
	spool_env_free_fields(&env);
	return r;
}

/* mpa_group_action - the log's action of a group: what the method made of
 * a sent group ("smime-encrypt", "decrypt", "pdf", ...), else its action */
static const char *mpa_group_action(const struct mpa_group *g)
{
	return g->action == MPA_ACT_PASS && g->done != NULL ? g->done :
		mpa_action_name(g->action);
}

/* mpa_log_done - the one line per message (F-FLOW-4). */
void mpa_log_done(const struct mpa_ctx *ctx)
{
	struct sg_buf to, act;
	char esc[SPOOL_MAX_FIELD + 64];
	size_t i, shown = 0;

	sg_buf_init(&to, MPA_LOG_TO_MAX + SPOOL_MAX_FIELD * 4 + 64);
	sg_buf_init(&act, 256);
	for (i = 0; i < ctx->env->nrcpts && to.len < MPA_LOG_TO_MAX; i++) {
		const char *a = ctx->env->rcpts[i].addr;

		sg_log_esc(esc, sizeof(esc), a, strlen(a));
		(void)sg_buf_printf(&to, NULL, "%s<%s>", i > 0 ? "," : "", esc);
		shown++;
	}
	if (shown < ctx->env->nrcpts)
		(void)sg_buf_printf(&to, NULL, " (+%zu more)", ctx->env->nrcpts - shown);
	for (i = 0; i < ctx->ngroups; i++) {
		const char *name = mpa_group_action(&ctx->groups[i]);
		size_t j;
		bool seen = false;

		for (j = 0; j < i; j++)
			seen = seen || strcmp(mpa_group_action(&ctx->groups[j]), name) == 0;
		if (!seen)
			(void)sg_buf_printf(&act, NULL, "%s%s", act.len > 0 ? "," : "", name);
	}
	sg_log_esc(esc, sizeof(esc), ctx->env->sender, strlen(ctx->env->sender));
	sg_log_mail(SG_LOG_INFO, ctx->id, "from=<%s>, to=%s, action=%s, outputs=%zu",
		esc, to.data ? to.data : "", act.data ? act.data : "", ctx->noutputs);
	sg_buf_deinit(&to);
	sg_buf_deinit(&act);
}

static enum mpa_result mpa_run_pinned(struct mpa_ctx *ctx, const struct mpa_sink *sink,
	struct sg_error *err);

/* mpa_run - the message with the PKI context pinned to one moment of the
 * store (pki_pin_begin): its caches answer every question about this
 * message after one read of the store's generation; the next message reads
 * it again, so it sees any change made meanwhile. */
enum mpa_result mpa_run(struct mpa_ctx *ctx, const struct mpa_sink *sink,
	struct sg_error *err)
{
	struct pki *pki = ctx->mpa->pki;
	enum mpa_result r;

	if (pki != NULL && pki_pin_begin(pki, err) < 0) {
		sg_error_prefix(err, "pki: ");
		return mpa_result_of_error(err);
	}
	r = mpa_run_pinned(ctx, sink, err);
	pki_pin_end(pki);
	return r;
}

static enum mpa_result mpa_run_pinned(struct mpa_ctx *ctx, const struct mpa_sink *sink,
	struct sg_error *err)
{
	enum mpa_result r;
	size_t g;

	if (mpa_env_check(ctx->env, err) < 0)
		return MPA_ERROR;
	ctx->origin = mime_msg_originator(ctx->msg, ctx->env->sender, &ctx->originator);
	if (sg_log_is_tracing(SG_TRACE_MPA))
		sg_trace(SG_TRACE_MPA, "%s: originator <%s> (%s)", ctx->id, ctx->originator,
			mime_origin_name(ctx->origin));
	r = mpa_marker_check(ctx, err);
	if (r != MPA_NEXT) {
		sg_error_prefix(err, "marker: ");
		return r;
	}
	r = mpa_decide_groups(ctx, err);
	if (r != MPA_NEXT)
		return r;
	for (g = 0; g < ctx->ngroups; g++) {
		ctx->group = &ctx->groups[g];
		r = mpa_run_stages(ctx, err);
		if (r != MPA_NEXT)
			return r;
	}
	ctx->group = NULL;
	for (g = 0; g < ctx->ngroups; g++) {
		if (ctx->groups[g].action != MPA_ACT_PASS)
			continue;
		r = mpa_emit_group(ctx, &ctx->groups[g], sink, err);
		if (r != MPA_NEXT)
			return r;
	}
	r = mpa_notify_dropped(ctx, err);
	if (r == MPA_NEXT)
		r = mpa_notify_encrypted(ctx, err);
	if (r != MPA_NEXT) {
		sg_error_prefix(err, "notification: ");
		return r;
	}
	for (g = 0; g < ctx->nextras; g++) {
		/* generated mail is small and bounded (no content of the input):
		 * the after-filter limit is for processed mail, and applying it
		 * here would turn "too large" into an error-queue case */
		if (sink->emit(sink->arg, &ctx->extras[g].env, ctx->extras[g].msg, 0,
			err) < 0) {
			sg_error_prefix(err, "notification: ");
			return mpa_result_of_error(err);
		}
		ctx->noutputs++;
	}
	return MPA_DONE;
}

void mpa_ctx_deinit(struct mpa_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->ngroups; i++) {
		free(ctx->groups[i].rcpts);
		mime_msg_free(&ctx->groups[i].msg);
	}
	free(ctx->groups);
	for (i = 0; i < ctx->nextras; i++) {
		spool_env_free_fields(&ctx->extras[i].env);
		mime_msg_free(&ctx->extras[i].msg);
	}
	free(ctx->extras);
	free(ctx->originator);
	mpa_results_free(ctx);
	memset(ctx, 0, sizeof(*ctx));
}
