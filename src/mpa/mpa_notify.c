/*
 * mpa_notify.c - the notification an originator gets when some of their
 * recipients got nothing: "encryption failed" (F-POL-6: encryption required
 * but impossible, or no module for the method; D-7: after-filter size limit
 * exceeded, reason "larger than the size limit"), rendered from the
 * encryption_failed template (SPEC §9 F-TPL-1) in force for the ORIGINATOR
 * (user <- domain <- wildcard <- global <- factory, through the originator's
 * resolved properties).
 *
 * D-4: generated mail has From system_mail_from (the originator's resolved
 * property: domain or global, default postmaster@<hostname>), envelope
 * sender <>, Auto-Submitted: auto-generated (set even when an edited
 * template lacks it), goes only to internal originators (domain in the
 * relay domains: no backscatter to outsiders) and never carries the
 * original content: the template gets subject, mail ID, recipients and
 * reason only. Never sent about generated mail (spool kind, or the
 * gateway's own mail recognised by its marker). F-FLOW-7: every
 * notification carries the own-mail marker (mpa_marker.c).
 *
 * One notification per distinct reason (the template has one reason), at
 * most MPA_NOTIFY_MAX per message: further reasons are merged into the last
 * one. At most MPA_NOTIFY_RCPTS_MAX recipients are named per notification,
 * then "... and N more".
 *
 * Encryption notification (POLICY_D_NOTIFY_ENCRYPTED, template
 * encryption_notification, variables from/to/subject/mail_id/recipients/
 * method): mpa_notify_encrypted (mpa_smime.c), called by the runner after
 * the outputs, one per method ("S/MIME", "PDF") through
 * mpa_notify_originator.
 *
 * mpa_notify_originator renders any other notification the same way (the
 * PDF method's passwords notification, mpa_pdf.c).
 *
 * Runs in MPA worker threads; GMime objects stay in this message's ctx.
 */
#include "mpa_int.h"

#include <stdlib.h>
#include <string.h>

#include "mta/mta.h"
#include "template/template.h"

/* Recipients named per notification; the rest are counted. */
#define MPA_NOTIFY_RCPTS_MAX 1000
/* Notifications (distinct reasons) per message. */
#define MPA_NOTIFY_MAX 8

/* mpa_originator_internal - 1 internal, 0 not (or unknown), -1 err. */
int mpa_originator_internal(struct mpa_ctx *ctx, struct sg_error *err)
{
	struct mta_settings *s;
	const char *dom = sg_addr_domain(ctx->originator);
	int rc;

	if (dom == NULL)
		return 0;
	if (ctx->mpa->conf.db == NULL) {
		sg_log_mail(SG_LOG_WARN, ctx->id, "no database: cannot tell whether the "
			"originator is internal; no notification");
		return 0;
	}
	s = mta_settings_load(ctx->mpa->conf.db, ctx->mpa->hostname, err);
	if (s == NULL) {
		sg_error_prefix(err, "mta settings: ");
		return -1;
	}
	rc = mta_is_relay_domain(s, dom) ? 1 : 0;
	mta_settings_free(&s);
	return rc;
}

/* A set of template variables being built. */
struct mpa_vars {
	struct template_var *v;
	size_t n, cap;
};

static void mpa_var(struct mpa_vars *vs, const char *name, const char *value)
{
	if (vs->n == vs->cap) {
		vs->cap = vs->cap == 0 ? 16 : vs->cap * 2;
		vs->v = sg_xrealloc(vs->v, vs->cap * sizeof(*vs->v));
	}
	vs->v[vs->n].name = name;
	vs->v[vs->n].value = value;
	vs->n++;
}

/* mpa_notify_from - D-4: system_mail_from of the originator's properties
 * (derived default postmaster@<hostname>), "Mail Gateway <addr>"; caller
 * frees. */
static char *mpa_notify_from(struct mpa_ctx *ctx)
{
	const char *v = policy_props_get(ctx->results[0]->sender_props,
		POLICY_P_SYSTEM_MAIL_FROM, NULL);

	if (v != NULL && v[0] != '\0')
		return sg_xasprintf("Mail Gateway <%s>", v);
	return sg_xasprintf("Mail Gateway <postmaster@%s>", ctx->mpa->hostname);
}

/*
 * mpa_notify_render - template id for the originator (their inheritance
 * chain) with vars into *msg_r, with the D-4 fields and the marker. A stored
 * template that no longer renders falls back to the factory text (logged):
 * the originator must still learn what was not sent. 0 or -1 (database).
 */
static int mpa_notify_render(struct mpa_ctx *ctx, enum template_id id,
	const struct mpa_vars *vs, struct mime_msg **msg_r, struct sg_error *err)
{
	struct template_render_opts opts = {ctx->mpa->hostname, 0};
	struct template_src *src = NULL;
	struct sg_error rerr;
	int rc;

	*msg_r = NULL;
	if (template_load_props(ctx->mpa->conf.db, id, ctx->results[0]->sender_props, &src,
		err) < 0) {
		sg_error_prefix(err, "template %s: ", template_def(id)->name);
		return -1;
	}
	rc = template_render_mail(id, src->text, vs->v, vs->n, &opts, msg_r, &rerr);
	if (rc < 0) {
		sg_log_mail(SG_LOG_ERR, ctx->id, "template %s of %s does not render (%s): "
			"factory text used", template_def(id)->name,
			src->owner[0] != '\0' ? src->owner : "factory", rerr.msg);
		rc = template_render_mail(id, template_def(id)->factory, vs->v, vs->n, &opts,
			msg_r, err);
	}
	template_src_free(&src);
	if (rc < 0) {
		sg_error_prefix(err, "template %s: ", template_def(id)->name);
		return -1;
	}
	if (mime_msg_header_set(*msg_r, "Auto-Submitted", "auto-generated", err) < 0 ||
	    mpa_marker_add(ctx, *msg_r, err) < 0) {
		mime_msg_free(msg_r);
		return -1;
	}
	return 0;
}

/* mpa_notify_append - a rendered notification m (owned) to the originator
 * into ctx->extras (kind notification, envelope sender <>). */
static void mpa_notify_append(struct mpa_ctx *ctx, struct mime_msg *m)
{
	struct mpa_extra *x;

	ctx->extras = sg_xrealloc(ctx->extras, (ctx->nextras + 1) * sizeof(*ctx->extras));
	x = &ctx->extras[ctx->nextras++];
	memset(x, 0, sizeof(*x));
	x->env.sender = sg_xstrdup("");
	x->env.kind = SPOOL_KIND_NOTIFICATION;
	x->env.parent_id = sg_xstrdup(ctx->id);
	x->env.arrival = sg_now();
	spool_env_add_rcpt(&x->env, ctx->originator, NULL, 0);
	x->msg = m;
}

/* mpa_notify_originator - template id to the originator (see mpa_int.h) */
int mpa_notify_originator(struct mpa_ctx *ctx, enum template_id id,
	const struct template_var *vars, size_t n, struct sg_error *err)
{
	struct mpa_vars vs = {0};
	struct mime_msg *m = NULL;
	char *from = mpa_notify_from(ctx);
	size_t i;
	int rc;

	/* first occurrence of a text variable wins: D-4 fields first */
	mpa_var(&vs, "from", from);
	mpa_var(&vs, "to", ctx->originator);
	for (i = 0; i < n; i++)
		mpa_var(&vs, vars[i].name, vars[i].value);
	rc = mpa_notify_render(ctx, id, &vs, &m, err);
	free(vs.v);
	free(from);
	if (rc < 0)
		return -1;
	mpa_notify_append(ctx, m);
	return 0;
}

/* mpa_notify_one - the encryption-failed notification for the groups
 * g[0..n) whose reason is reason; appended to ctx->extras. 0 or -1. */
static int mpa_notify_one(struct mpa_ctx *ctx, const char *reason, const size_t *gi,
	size_t n, const char *from, struct sg_error *err)
{
	struct mpa_vars vs = {0};
	struct mime_msg *m = NULL;
	const char *subject = mime_msg_header_get(ctx->msg, "Subject");
	char *more = NULL;
	size_t k, i, listed = 0, total = 0;
	int rc;

	mpa_var(&vs, "from", from);
	mpa_var(&vs, "to", ctx->originator);
	mpa_var(&vs, "subject", subject != NULL ? subject : "");
	mpa_var(&vs, "mail_id", ctx->id);
	mpa_var(&vs, "reason", reason);
	for (k = 0; k < n; k++) {
		const struct mpa_group *grp = &ctx->groups[gi[k]];

		for (i = 0; i < grp->nrcpts; i++, total++)
			if (listed < MPA_NOTIFY_RCPTS_MAX) {
				mpa_var(&vs, "recipients", ctx->env->rcpts[grp->rcpts[i]].addr);
				listed++;
			}
	}
	if (total > listed) {
		more = sg_xasprintf("... and %zu more", total - listed);
		mpa_var(&vs, "recipients", more);
	}
	rc = mpa_notify_render(ctx, TEMPLATE_ENCRYPTION_FAILED, &vs, &m, err);
	free(vs.v);
	free(more);
	if (rc < 0)
		return -1;
	mpa_notify_append(ctx, m);
	return 0;
}

enum mpa_result mpa_notify_dropped(struct mpa_ctx *ctx, struct sg_error *err)
{
	/* per distinct reason: the indexes of its groups */
	struct {
		const char *reason;
		size_t *gi, n;
	} nt[MPA_NOTIFY_MAX];
	char *from = NULL, *merged = NULL;
	size_t g, k, nnt = 0;
	enum mpa_result r = MPA_NEXT;
	int internal;

	for (g = 0; g < ctx->ngroups; g++)
		if (ctx->groups[g].action != MPA_ACT_PASS)
			break;
	if (g == ctx->ngroups || ctx->env->kind != SPOOL_KIND_MESSAGE || ctx->is_own_mail ||
	    ctx->originator[0] == '\0')
		return MPA_NEXT;
	internal = mpa_originator_internal(ctx, err);
	if (internal < 0)
		return mpa_result_of_error(err);
	if (internal == 0) {
		sg_log_mail(SG_LOG_INFO, ctx->id, "originator not internal: no notification");
		return MPA_NEXT;
	}
	if (ctx->nresults == 0) /* internal needs the database, which decided */
		return MPA_NEXT;
	for (g = 0; g < ctx->ngroups; g++) {
		const struct mpa_group *grp = &ctx->groups[g];

		if (grp->action == MPA_ACT_PASS)
			continue;
		for (k = 0; k < nnt; k++)
			if (strcmp(nt[k].reason, grp->reason) == 0)
				break;
		if (k == nnt && nnt == MPA_NOTIFY_MAX) {
			k = nnt - 1;
			if (merged == NULL) {
				merged = sg_xasprintf("%s; and other reasons (see the gateway log "
					"for mail ID %s)", nt[k].reason, ctx->id);
				nt[k].reason = merged;
			}
		} else if (k == nnt) {
			nt[nnt].reason = grp->reason;
			nt[nnt].gi = NULL;
			nt[nnt].n = 0;
			nnt++;
		}
		nt[k].gi = sg_xrealloc(nt[k].gi, (nt[k].n + 1) * sizeof(*nt[k].gi));
		nt[k].gi[nt[k].n++] = g;
	}
	from = mpa_notify_from(ctx);
	for (k = 0; k < nnt && r == MPA_NEXT; k++)
		if (mpa_notify_one(ctx, nt[k].reason, nt[k].gi, nt[k].n, from, err) < 0)
			r = mpa_result_of_error(err);
	for (k = 0; k < nnt; k++)
		free(nt[k].gi);
	free(merged);
	free(from);
	return r;
}
