/*
 * mpa_notify.c - the notification an originator gets when some of their
 * recipients got nothing: "encryption failed" (F-POL-6: encryption required
 * but impossible, or no module for the method; D-7: after-filter size limit
 * exceeded, subject "too large").
 *
 * D-4: generated mail has From system_mail_from (the global policy
 * property; postmaster@<hostname> without a database), envelope sender <>,
 * Auto-Submitted: auto-generated, goes only to internal originators (domain
 * in the relay domains: no backscatter to outsiders) and never carries the
 * original content: subject, recipients and reason only. Never sent about a
 * message that is itself generated mail.
 *
 * XXX: the text is built in; the template module (SPEC §9) replaces it. The
 * F-FLOW-7 marker header (HMAC with the server secret) is not added yet.
 *
 * Runs in MPA worker threads; GMime objects stay in this message's ctx.
 */
#include "mpa_int.h"

#include <stdlib.h>
#include <string.h>

#include "mta/mta.h"

/* Recipients named in the notification text; the rest are counted. */
#define MPA_NOTIFY_RCPTS_MAX 50

/* mpa_originator_internal - 1 internal, 0 not (or unknown), -1 err. */
static int mpa_originator_internal(struct mpa_ctx *ctx, struct sg_error *err)
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

/* mpa_notify_text - the body: what was not sent, to whom, and why (one
 * paragraph per group that got nothing). */
static char *mpa_notify_text(struct mpa_ctx *ctx)
{
	struct sg_buf b;
	const char *subject = mime_msg_header_get(ctx->msg, "Subject");
	size_t g, i, listed = 0, unlisted = 0;

	sg_buf_init(&b, 1u << 20);
	(void)sg_buf_printf(&b, NULL,
		"Your message could not be sent to the recipients below.\n\n"
		"Mail ID: %s\nSubject: %s\n", ctx->id, subject != NULL ? subject : "(none)");
	for (g = 0; g < ctx->ngroups; g++) {
		const struct mpa_group *grp = &ctx->groups[g];

		if (grp->action == MPA_ACT_PASS)
			continue;
		if (listed >= MPA_NOTIFY_RCPTS_MAX) {
			unlisted += grp->nrcpts;
			continue;
		}
		(void)sg_buf_printf(&b, NULL, "\nReason: %s\nRecipients:\n", grp->reason);
		for (i = 0; i < grp->nrcpts; i++) {
			if (listed >= MPA_NOTIFY_RCPTS_MAX) {
				unlisted += grp->nrcpts - i;
				break;
			}
			(void)sg_buf_printf(&b, NULL, "  %s\n",
				ctx->env->rcpts[grp->rcpts[i]].addr);
			listed++;
		}
	}
	if (unlisted > 0)
		(void)sg_buf_printf(&b, NULL, "\n... and %zu more recipients\n", unlisted);
	(void)sg_buf_append_str(&b, "\nThe message was not sent in any other form.\n", NULL);
	return sg_buf_steal(&b);
}

/* mpa_notify_from - D-4: system_mail_from (global property, derived default
 * postmaster@<hostname>) into *from_r (caller frees). 0 or -1. */
static int mpa_notify_from(struct mpa_ctx *ctx, char **from_r, struct sg_error *err)
{
	struct policy_props *gp = NULL;
	const char *v;

	if (ctx->mpa->policy == NULL) {
		*from_r = sg_xasprintf("postmaster@%s", ctx->mpa->hostname);
		return 0;
	}
	if (policy_resolve_global(ctx->mpa->policy, &gp, err) < 0) {
		sg_error_prefix(err, "system_mail_from: ");
		return -1;
	}
	v = policy_props_get(gp, POLICY_P_SYSTEM_MAIL_FROM, NULL);
	*from_r = v != NULL && v[0] != '\0' ? sg_xstrdup(v) :
		sg_xasprintf("postmaster@%s", ctx->mpa->hostname);
	policy_props_free(&gp);
	return 0;
}

/* mpa_notify_build - the notification message (GMime, in memory: small);
 * from is consumed. The subject says "too large" when that is the only
 * reason (D-7), else "encryption failed". */
static struct mime_msg *mpa_notify_build(struct mpa_ctx *ctx, bool is_size_only,
	char *from)
{
	GMimeMessage *gm = g_mime_message_new(TRUE);
	GMimeTextPart *tp = g_mime_text_part_new_with_subtype("plain");
	GDateTime *now = g_date_time_new_now_utc();
	char *msgid = NULL, *text = mpa_notify_text(ctx);
	char rid[SG_MAIL_ID_LEN + 1];
	struct mime_msg *m;

	sg_mail_id_new(rid);
	msgid = sg_xasprintf("%s.%s@%s", ctx->id, rid, ctx->mpa->hostname);
	g_mime_message_add_mailbox(gm, GMIME_ADDRESS_TYPE_FROM, "Mail Gateway", from);
	g_mime_message_add_mailbox(gm, GMIME_ADDRESS_TYPE_TO, NULL, ctx->originator);
	g_mime_message_set_subject(gm, is_size_only ? "Message not sent: too large" :
		"Message not sent: encryption failed", "utf-8");
	g_mime_message_set_date(gm, now);
	g_mime_message_set_message_id(gm, msgid);
	g_mime_object_set_header(GMIME_OBJECT(gm), "Auto-Submitted", "auto-generated",
		"utf-8");
	g_mime_text_part_set_text(tp, text);
	g_mime_message_set_mime_part(gm, GMIME_OBJECT(tp));
	m = mime_msg_new_gmime(gm);
	g_object_unref(tp);
	g_object_unref(gm);
	g_date_time_unref(now);
	free(from);
	free(msgid);
	free(text);
	return m;
}

enum mpa_result mpa_notify_dropped(struct mpa_ctx *ctx, struct sg_error *err)
{
	struct mpa_extra *x;
	char *from = NULL;
	bool is_dropped = false, is_size_only = true;
	size_t g;
	int internal;

	for (g = 0; g < ctx->ngroups; g++) {
		if (ctx->groups[g].action == MPA_ACT_PASS)
			continue;
		is_dropped = true;
		if (ctx->groups[g].action != MPA_ACT_DROP)
			is_size_only = false;
	}
	if (!is_dropped || ctx->env->kind != SPOOL_KIND_MESSAGE || ctx->originator[0] == '\0')
		return MPA_NEXT;
	internal = mpa_originator_internal(ctx, err);
	if (internal < 0)
		return mpa_result_of_error(err);
	if (internal == 0) {
		sg_log_mail(SG_LOG_INFO, ctx->id, "originator not internal: no notification");
		return MPA_NEXT;
	}
	if (mpa_notify_from(ctx, &from, err) < 0)
		return mpa_result_of_error(err);
	ctx->extras = sg_xrealloc(ctx->extras, (ctx->nextras + 1) * sizeof(*ctx->extras));
	x = &ctx->extras[ctx->nextras++];
	memset(x, 0, sizeof(*x));
	x->env.sender = sg_xstrdup("");
	x->env.kind = SPOOL_KIND_NOTIFICATION;
	x->env.parent_id = sg_xstrdup(ctx->id);
	x->env.arrival = sg_now();
	spool_env_add_rcpt(&x->env, ctx->originator, NULL, 0);
	x->msg = mpa_notify_build(ctx, is_size_only, from);
	return MPA_NEXT;
}
