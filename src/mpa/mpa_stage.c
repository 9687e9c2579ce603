/*
 * mpa_stage.c - the stage table (STYLE §10, OpenSMTPD filter_execs). Each
 * stage works on ctx->group and returns an enum mpa_result; the runner
 * (mpa_run.c) logs and applies the fail-closed rules. Stages run in MPA
 * worker threads and must keep no state outside ctx.
 *
 * Order as in DESIGN "life of a message" step 3: DLP -> triggers ->
 * decrypt/verify (internal recipients) -> encrypt/sign or PDF (external) ->
 * notifications. The policy decision itself is made per message before the
 * stages (mpa_decide.c); here: "edit" applies its message-level edits
 * (trigger header removed, subject rewritten), "method" dispatches by method
 * (mpa_method.c: S/MIME, PDF, decrypt plug in there), "pass" outputs.
 */
#include "mpa_int.h"

#include <stdlib.h>
#include <string.h>

/* mpa_needs_edit - does the group's output differ from the input? */
static bool mpa_needs_edit(struct mpa_ctx *ctx, const struct mpa_group *g)
{
	const struct policy_result *res = ctx->results[0];
	const char *cur;
	size_t k;

	if (ctx->is_marker_forged)
		return true;
	for (k = 0; k < 2 && res->remove_headers[k] != NULL; k++)
		if (mime_msg_header_count(ctx->msg, res->remove_headers[k]) > 0)
			return true;
	if (g->subject == NULL)
		return false;
	cur = mime_msg_header_get(ctx->msg, "Subject");
	return cur == NULL || strcmp(cur, g->subject) != 0;
}

/*
 * mpa_stage_edit - the policy's edits for this group (F-POL-7, F-POL-8,
 * F-FLOW-8): the honoured trigger headers leave every output, the subject
 * loses the trigger, a forged own-mail marker is removed (F-FLOW-7). The group gets its own copy of the message (parsed
 * again from the spool file), so that other groups and an unchanged output
 * stay byte-identical.
 */
static enum mpa_result mpa_stage_edit(struct mpa_ctx *ctx, struct sg_error *err)
{
	struct mpa_group *g = ctx->group;
	const struct policy_result *res;
	size_t k;

	if (g->dec == NULL || g->action != MPA_ACT_PASS || g->dec->method == POLICY_METHOD_NONE
		|| !mpa_needs_edit(ctx, g))
		return MPA_NEXT;
	if (mime_msg_is_opaque(ctx->msg)) {
		/* its structure was not parsed: it cannot be rebuilt without the
		 * trigger, and must not leave with it */
		sg_error_set(err, SG_E_LIMIT, "the message has too many MIME parts to "
			"remove the encryption trigger or the forged marker");
		return MPA_ERROR;
	}
	if (g->msg == NULL) {
		g->msg = mime_msg_reparse(ctx->msg, err);
		if (g->msg == NULL)
			return mpa_result_of_error(err);
	}
	res = ctx->results[0];
	for (k = 0; k < 2 && res->remove_headers[k] != NULL; k++)
		(void)mime_msg_header_remove(g->msg, res->remove_headers[k]);
	if (ctx->is_marker_forged)
		(void)mime_msg_header_remove(g->msg, SG_MARKER_HEADER);
	if (g->subject != NULL) {
		/* a decoded subject may hold line breaks (encoded words): they
		 * must not start new header fields */
		char *subj = sg_xstrdup(g->subject), *p;
		int rc;

		for (p = subj; *p != '\0'; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
		rc = mime_msg_header_set(g->msg, "Subject", subj, err);
		free(subj);
		if (rc < 0)
			return MPA_ERROR;
	}
	if (sg_log_is_tracing(SG_TRACE_MPA))
		sg_trace(SG_TRACE_MPA, "%s: edited output for %zu recipient(s)%s%s", ctx->id,
			g->nrcpts, res->remove_headers[0] != NULL ? ", trigger header removed" : "",
			g->subject != NULL ? ", subject rewritten" : "");
	return MPA_NEXT;
}

/* mpa_stage_pass - the group's output is the message as it is now (the
 * input itself when no earlier stage built another). */
static enum mpa_result mpa_stage_pass(struct mpa_ctx *ctx, struct sg_error *err)
{
	(void)err;
	if (ctx->group->action != MPA_ACT_PASS)
		return MPA_NEXT;
	return MPA_DONE;
}

const struct mpa_stage mpa_stages[] = {
	{"edit", mpa_stage_edit},
	{"method", mpa_stage_method},
	{"pass", mpa_stage_pass},
};
const size_t mpa_nstages = sizeof(mpa_stages) / sizeof(mpa_stages[0]);
