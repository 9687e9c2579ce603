/*
 * mpa_method.c - the encryption method dispatch: one table from the policy's
 * method (F-POL-6, F-POL-9) to the function that makes a group's output.
 * The S/MIME and PDF features plug in here by filling in their entry's
 * function (contract: mpa_int.h, mpa_method_fn); nothing else in the
 * pipeline changes.
 *
 * Runs in MPA worker threads as the "method" stage (mpa_stage.c), after the
 * policy's message edits and before the pass stage.
 *
 * Fail closed (F-FLOW-1, DESIGN "Rules"): a recipient whose policy requires
 * encryption gets the encrypted message or nothing, and the originator the
 * encryption-failed notification (D-4). Method "none" (required but
 * impossible, or mandatory against no_encryption) and a method whose module
 * is not in this build (fn NULL) both end there - whether the policy said
 * "required" or only "if possible": a recipient with a certificate must not
 * get plain text just because S/MIME is missing from the build.
 */
#include "mpa_int.h"

#include <stdio.h>
#include <string.h>

/* mpa_method_plain - sent without encryption; signed (multipart/signed)
 * when g->dec->flags has POLICY_D_SIGN_OUTPUT and the originator has a
 * usable signing certificate (mpa_smime.c). */
static enum mpa_result mpa_method_plain(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err)
{
	if (!(g->dec->flags & POLICY_D_SIGN_OUTPUT))
		return MPA_NEXT;
	return mpa_smime_sign_only(ctx, g, err);
}

/* mpa_method_none - F-POL-6: required but impossible, or blocked */
static enum mpa_result mpa_method_none(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err)
{
	(void)ctx;
	(void)err;
	if (g->dec->encrypt == POLICY_ENC_BLOCKED)
		mpa_group_reject(g, MPA_ACT_ENCRYPT_FAILED, "encryption is mandatory, but "
			"the policy of the sender or the recipient does not allow it");
	else
		mpa_group_reject(g, MPA_ACT_ENCRYPT_FAILED, "encryption is required, but "
			"there is no valid certificate and no PDF password for the recipient");
	return MPA_REJECT;
}

/* The dispatch table, indexed by nothing: looked up by method. */
static const struct mpa_method mpa_methods[] = {
	{POLICY_METHOD_PLAIN, "plain", mpa_method_plain},
	{POLICY_METHOD_SMIME, "smime", mpa_smime_out},   /* mpa_smime.c */
	{POLICY_METHOD_PDF, "pdf", mpa_pdf_out},         /* mpa_pdf.c */
	{POLICY_METHOD_DECRYPT, "decrypt", mpa_smime_in},   /* mpa_smime_in.c */
	{POLICY_METHOD_NONE, "none", mpa_method_none},
};

const struct mpa_method *mpa_method_find(enum policy_method m)
{
	size_t i;

	for (i = 0; i < sizeof(mpa_methods) / sizeof(mpa_methods[0]); i++)
		if (mpa_methods[i].method == m)
			return &mpa_methods[i];
	return NULL;
}

enum mpa_result mpa_stage_method(struct mpa_ctx *ctx, struct sg_error *err)
{
	struct mpa_group *g = ctx->group;
	const struct mpa_method *m;
	char reason[sizeof(g->reason)];

	if (g->dec == NULL || g->action != MPA_ACT_PASS)
		return MPA_NEXT;   /* no database: pass-through; or already dropped */
	m = mpa_method_find(g->dec->method);
	if (m == NULL) {
		sg_error_set(err, SG_E_INTERNAL, "unknown method %d", (int)g->dec->method);
		return MPA_ERROR;
	}
	if (m->fn != NULL)
		return m->fn(ctx, g, err);
	snprintf(reason, sizeof(reason), "%s encryption is not available on this gateway",
		strcmp(m->name, "smime") == 0 ? "S/MIME" : strcmp(m->name, "pdf") == 0 ?
		"PDF" : m->name);
	mpa_group_reject(g, MPA_ACT_ENCRYPT_FAILED, reason);
	return MPA_REJECT;
}
