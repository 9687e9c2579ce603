/*
 * mpa_marker.c - the own-mail marker in the pipeline (SPEC F-FLOW-7; the
 * HMAC itself is sg_marker_make/sg_marker_verify in src/lib, shared with
 * the bounces of src/delivery).
 *
 * Incoming: a message with the null envelope sender <> (all generated mail
 * has it, D-4) and exactly one X-Sealgate-Marker field that verifies
 * against its (single) Message-ID under the server secret is the gateway's
 * own mail: it passes through unchanged to every recipient, with no
 * policy, no triggers and no notification (mpa_decide_groups makes the one
 * pass-through group). Any other marker (wrong MAC, no or several
 * Message-IDs, several markers, no server secret, or a genuine marker
 * re-sent with a sender: the MAC does not cover the body, so a user who
 * got a notification could otherwise reuse its marker to send anything
 * past the policy) is invalid: every marker field is removed (mpa_stage.c
 * "edit") and the message is ordinary mail.
 * Without a database there is no secret and no policy: markers are neither
 * checked nor removed, and every message passes through unchanged anyway.
 *
 * Outgoing: mpa_marker_add puts the marker on a generated message.
 *
 * The secret is the global policy property server_secret (the settings row
 * made by store_init), read through the worker's policy resolver cache.
 */
#include "mpa_int.h"

#include <stdlib.h>
#include <string.h>

/* mpa_secret - the server secret into *secret_r (caller frees; NULL when
 * unset). 0, or -1 with err (database). */
static int mpa_secret(struct mpa_ctx *ctx, char **secret_r, struct sg_error *err)
{
	struct policy_props *gp = NULL;
	const char *v;

	*secret_r = NULL;
	if (ctx->mpa->policy == NULL)
		return 0;
	if (policy_resolve_global(ctx->mpa->policy, &gp, err) < 0) {
		sg_error_prefix(err, "server secret: ");
		return -1;
	}
	v = policy_props_get(gp, POLICY_P_SERVER_SECRET, NULL);
	if (v != NULL && v[0] != '\0')
		*secret_r = sg_xstrdup(v);
	policy_props_free(&gp);
	return 0;
}

static void mpa_secret_free(char **sp)
{
	if (*sp != NULL) {
		explicit_bzero(*sp, strlen(*sp));
		free(*sp);
		*sp = NULL;
	}
}

enum mpa_result mpa_marker_check(struct mpa_ctx *ctx, struct sg_error *err)
{
	unsigned n;
	char *secret = NULL;
	bool is_valid;

	if (ctx->mpa->policy == NULL)
		return MPA_NEXT;
	n = mime_msg_header_count(ctx->msg, SG_MARKER_HEADER);
	if (n == 0)
		return MPA_NEXT;
	if (mpa_secret(ctx, &secret, err) < 0)
		return mpa_result_of_error(err);
	is_valid = n == 1 && ctx->env->sender[0] == '\0' &&
		mime_msg_header_count(ctx->msg, "Message-ID") == 1 &&
		sg_marker_verify(secret, mime_msg_header_get_raw(ctx->msg, SG_MARKER_HEADER),
			mime_msg_header_get_raw(ctx->msg, "Message-ID"));
	mpa_secret_free(&secret);
	if (is_valid) {
		ctx->is_own_mail = true;
		sg_log_mail(SG_LOG_INFO, ctx->id, "own mail (valid %s): passed through "
			"unprocessed", SG_MARKER_HEADER);
	} else {
		ctx->is_marker_forged = true;
		sg_log_mail(SG_LOG_WARN, ctx->id, "invalid %s (%u field(s)%s): removed, "
			"processed as ordinary mail", SG_MARKER_HEADER, n,
			ctx->env->sender[0] != '\0' ? ", envelope sender not <>" : "");
	}
	return MPA_NEXT;
}

int mpa_marker_add(struct mpa_ctx *ctx, struct mime_msg *m, struct sg_error *err)
{
	char *secret = NULL;
	char val[SG_MARKER_MAX];
	const char *msgid;
	int rc = -1;

	(void)mime_msg_header_remove(m, SG_MARKER_HEADER);
	if (mpa_secret(ctx, &secret, err) < 0)
		return -1;
	if (secret == NULL) {
		/* store_init makes it; a database that never saw init has none */
		sg_log_mail(SG_LOG_WARN, ctx->id, "no server secret (run sealgate init): "
			"generated mail goes without %s", SG_MARKER_HEADER);
		return 0;
	}
	msgid = mime_msg_header_get_raw(m, "Message-ID");
	if (msgid == NULL || mime_msg_header_count(m, "Message-ID") != 1) {
		char rid[SG_MAIL_ID_LEN + 1];
		char *id;

		sg_mail_id_new(rid);
		id = sg_xasprintf("<%s.%s@%s>", ctx->id, rid, ctx->mpa->hostname);
		rc = mime_msg_header_set(m, "Message-ID", id, err);
		free(id);
		if (rc < 0)
			goto out;
		msgid = mime_msg_header_get_raw(m, "Message-ID");
	}
	rc = -1;
	if (sg_marker_make(secret, ctx->id, msgid, val, sizeof(val), err) < 0 ||
	    mime_msg_header_append(m, SG_MARKER_HEADER, val, err) < 0)
		goto out;
	rc = 0;
out:
	mpa_secret_free(&secret);
	return rc;
}
