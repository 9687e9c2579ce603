/*
 * mpa_int.h - the pipeline's per-message context, recipient groups, the stage
 * table and the output sink shared by the files of src/mpa/. Private to the
 * module (other modules include mpa.h only).
 *
 * Shape (STYLE §10): the runner (mpa_run.c) parses nothing itself; it takes a
 * parsed message and its envelope, groups the recipients by decision, runs
 * the stage table once per group, then hands every output (one per group that
 * was not dropped, plus generated notifications) to a sink: the spool batch
 * (mpa_spool.c) or a callback (mpa_stream.c). The runner, not the stages,
 * logs stage results and applies the fail-closed rules.
 */
#ifndef SG_MPA_INT_H
#define SG_MPA_INT_H

#include "mpa.h"
#include "mime/mime.h"
#include "pki/pki.h"
#include "policy/policy.h"
#include "template/template.h"

/* Anonymous temporary files an S/MIME stage keeps for the next message (the
 * message in, the signed message), and the largest one kept. */
#define MPA_SCRATCH_FDS 2
#define MPA_SCRATCH_KEEP (1u << 20)

/* What a stage tells the runner (STYLE §10). */
enum mpa_result {
	MPA_NEXT,    /* go on with the next stage */
	MPA_DONE,    /* this group is finished: output what it has */
	MPA_DEFER,   /* temporary failure: the whole message is retried later */
	MPA_REJECT,  /* the group's recipients get nothing (policy said so) */
	MPA_ERROR,   /* unexpected failure: fail closed, message to error/ */
};

const char *mpa_result_name(enum mpa_result r);

/* What happens to a group of recipients (the log line's action=). */
enum mpa_action {
	MPA_ACT_PASS,           /* sent (unchanged, or with the policy's edits) */
	MPA_ACT_DROP,           /* nothing is sent (after-filter size limit) */
	MPA_ACT_ENCRYPT_FAILED, /* nothing is sent: encryption required but not
	                           possible; the originator is notified (F-POL-6) */
};

const char *mpa_action_name(enum mpa_action a);

/* Recipients with the same decision; each gets the same output message. */
struct mpa_group {
	size_t *rcpts;          /* indexes into ctx->env->rcpts (owned) */
	size_t nrcpts, rcpts_cap;
	enum mpa_action action;
	/* the policy decision shared by the group (of its first recipient;
	 * borrowed from ctx->results), NULL without a database */
	const struct policy_decision *dec;
	const char *subject;    /* new Subject for this output (borrowed from
	                           ctx->results), NULL = unchanged */
	struct mime_msg *msg;   /* output message if a stage made one (owned),
	                           NULL = the input message (ctx->msg) */
	char reason[160];       /* why dropped, human text ("" otherwise) */
	/* what the method stage made of a group that is sent (action stays
	 * MPA_ACT_PASS): "smime-sign", "smime-encrypt", "smime-sign-encrypt",
	 * "already-encrypted", "decrypt", ... (static string), NULL = as is */
	const char *done;
	/* the only recipient of a group of its own: an S/MIME recipient not
	 * named in To/Cc (Bcc) gets its own copy, so the recipient infos of one
	 * encrypted message never reveal it to the others (issue 7); NULL else
	 * (borrowed from ctx->env) */
	const char *solo;
};

/* A generated message (notification, bounce) waiting for the sink. */
struct mpa_extra {
	struct spool_env env;   /* owned: sender, rcpts, kind, parent_id */
	struct mime_msg *msg;   /* owned */
};

struct mpa {
	struct mpa_conf conf;   /* borrowed pointers, as given to mpa_new */
	char hostname[256];
	struct policy *policy;  /* on conf.db (owned), NULL without a database */
	struct pki *pki;        /* on conf.db (owned), NULL without a database */
	struct pki_keys *keys;  /* private-key API, opened at first use (owned;
	                           mpa_keys_open) */
	/* scratch files kept for the next message (mpa_scratch_get/put) */
	int scratch[MPA_SCRATCH_FDS];
	size_t nscratch;
};

struct mpa_ctx {
	struct mpa *mpa;
	const char *id;                 /* the input's mail ID */
	const struct spool_env *env;    /* input envelope (borrowed) */
	struct mime_msg *msg;           /* parsed input (borrowed) */
	char *originator;               /* F-POL-3 address ("" = none; owned) */
	enum mime_origin origin;
	/* policy decisions, POLICY_RCPT_MAX recipients per result (owned):
	 * recipient i is results[i / POLICY_RCPT_MAX]->rcpt[i % POLICY_RCPT_MAX] */
	struct policy_result **results;
	size_t nresults;
	struct mpa_group *groups;       /* owned */
	size_t ngroups;
	struct mpa_group *group;        /* the group the per-group stages work on */
	struct mpa_extra *extras;       /* owned */
	size_t nextras;
	size_t noutputs;                /* outputs accepted by the sink */
	bool is_own_mail;               /* valid own-mail marker: pass through */
	bool is_marker_forged;          /* invalid marker: removed from outputs */
	/* mpa_pdf.c: is the originator internal (D-4, passwords notification)?
	 * 0 not asked yet, 1 yes, -1 no */
	signed char pdf_orig_internal;
};

/* A stage: examines/changes ctx->group (STYLE §10). */
typedef enum mpa_result mpa_stage_fn(struct mpa_ctx *ctx, struct sg_error *err);

struct mpa_stage {
	const char *name;
	mpa_stage_fn *fn;
};

/* mpa_stage.c: the stage table, in order; later features insert here. */
extern const struct mpa_stage mpa_stages[];
extern const size_t mpa_nstages;

/*
 * Where outputs go. emit writes msg (at most max bytes, 0 = no limit; one
 * byte more fails with SG_E_LIMIT and nothing is kept) with envelope env.
 * 0 or -1 with err.
 */
struct mpa_sink {
	int (*emit)(void *arg, const struct spool_env *env, struct mime_msg *msg,
		uint64_t max, struct sg_error *err);
	void *arg;
};

/*
 * mpa_run - the pipeline for one parsed message: check the envelope,
 * originator, groups, stages, outputs to sink, the log line. Returns MPA_DONE
 * (processed; ctx->noutputs outputs emitted), MPA_DEFER (temporary, err set)
 * or MPA_ERROR (permanent: fail closed, err says why). Nothing is logged
 * about the outcome (see mpa_log_done). ctx must have mpa,
 * id, env and msg set and everything else zero; free it with
 * mpa_ctx_deinit.
 */
enum mpa_result mpa_run(struct mpa_ctx *ctx, const struct mpa_sink *sink,
	struct sg_error *err);
void mpa_ctx_deinit(struct mpa_ctx *ctx);
/* mpa_log_done - the one line per message, "<id>: from=<...>, to=<...>,
 * action=..., outputs=N" (F-FLOW-4); the caller logs it once the outputs are
 * durable (spool) or delivered to the callback (stream). */
void mpa_log_done(const struct mpa_ctx *ctx);

/* mpa_result_of_error - MPA_DEFER for temporary error codes, else MPA_ERROR. */
enum mpa_result mpa_result_of_error(const struct sg_error *err);

/* mpa_group_reject - for stages: the group's recipients get nothing; action
 * (a dropping one) and reason (human text for the log and the notification)
 * say why. The stage then returns MPA_REJECT; the runner notifies the
 * originator for MPA_ACT_ENCRYPT_FAILED. */
void mpa_group_reject(struct mpa_group *g, enum mpa_action action, const char *reason);

/*
 * mpa_decide.c: mpa_decide_groups - ask the policy for every recipient's
 * decision (ctx->results) and group the recipients by identical decision
 * and output subject; without a database one group with no decision (pure
 * pass-through). MPA_NEXT, MPA_DEFER (database error: retry) or MPA_ERROR
 * (any other policy error: fail closed), err set.
 */
enum mpa_result mpa_decide_groups(struct mpa_ctx *ctx, struct sg_error *err);
/* mpa_results_free - ctx->results */
void mpa_results_free(struct mpa_ctx *ctx);

/*
 * mpa_method.c: the encryption method dispatch (the "method" stage).
 *
 * A method function turns ctx->group's message (g->msg, or the input
 * ctx->msg when NULL; the policy's edits are already applied) into the
 * output for the group's recipients. It may read g->dec (the decision:
 * flags, algorithms, sign rule), ctx->results[0] (originator, sender
 * properties), ctx->mpa->pki (certificates) and ctx->mpa->policy. It
 * returns
 *   MPA_NEXT    the output is g->msg (set it to a new owned message, freeing
 *               the old one, and set g->action), later stages continue;
 *   MPA_REJECT  after mpa_group_reject(g, MPA_ACT_ENCRYPT_FAILED, reason):
 *               these recipients get nothing, an internal originator the
 *               encryption-failed notification (fail closed);
 *   MPA_DEFER   temporary failure (err set): the whole message is retried;
 *   MPA_ERROR   permanent failure (err set): the message goes to error/.
 * A method whose module is not in the build has no function: the table
 * entry's fn is NULL and its groups fail closed (encrypt-failed).
 */
typedef enum mpa_result mpa_method_fn(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err);
struct mpa_method {
	enum policy_method method;
	const char *name;
	mpa_method_fn *fn;
};
/* mpa_method_find - the table entry of m (never NULL for a valid method). */
const struct mpa_method *mpa_method_find(enum policy_method m);
/* mpa_stage_method - the "method" stage: dispatch ctx->group by its
 * decision's method through the table. */
enum mpa_result mpa_stage_method(struct mpa_ctx *ctx, struct sg_error *err);

/* mpa_notify.c: mpa_notify_dropped - after the outputs: D-4 notifications
 * (template encryption_failed of the originator, with the own-mail marker)
 * to an internal originator, one per distinct reason of the groups that got
 * nothing (action other than MPA_ACT_PASS: encryption failed, size limit
 * D-7), naming their recipients; appended to ctx->extras. Nothing when every
 * group was sent, for generated mail (spool kind or valid marker), or for
 * an external or missing originator. MPA_NEXT, MPA_DEFER (database down
 * while deciding "internal", loading the template or the secret) or
 * MPA_ERROR. */
enum mpa_result mpa_notify_dropped(struct mpa_ctx *ctx, struct sg_error *err);
/* mpa_originator_internal - is the originator's domain a relay domain
 * (D-4: only internal originators get generated mail)? 1 yes, 0 no (or no
 * originator, or no database), -1 err (database). */
int mpa_originator_internal(struct mpa_ctx *ctx, struct sg_error *err);
/* mpa_notify_originator - render template id of the originator's chain with
 * from (system_mail_from) and to (the originator) set, then vars (borrowed),
 * with Auto-Submitted and the own-mail marker, and append it to ctx->extras
 * to the originator (envelope sender <>). The caller has checked that the
 * originator is internal. 0 or -1 with err (database). */
int mpa_notify_originator(struct mpa_ctx *ctx, enum template_id id,
	const struct template_var *vars, size_t n, struct sg_error *err);

/*
 * mpa_smime.c, mpa_smime_in.c: the S/MIME methods (F-SMIME-0..5), contract as
 * mpa_method_fn. mpa_smime_out - method smime (external recipients): sign
 * (when the decision says so and the originator has a usable signing
 * certificate with key), then encrypt to the certificates of every recipient
 * of the group plus the additional certificates; already encrypted mail
 * passes. mpa_smime_sign_only - method plain with POLICY_D_SIGN_OUTPUT:
 * sign when possible, else send as is. mpa_smime_in - method decrypt
 * (internal recipients): spoofed X-Sealgate-* fields removed, decrypt
 * (strict or not), verify, collect signer certificates, X-Sealgate-Info-*
 * fields and subject tags.
 */
enum mpa_result mpa_smime_out(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err);
enum mpa_result mpa_smime_sign_only(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err);
enum mpa_result mpa_smime_in(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err);
/* mpa_notify_encrypted - after the outputs: the encryption notification
 * (template encryption_notification, POLICY_D_NOTIFY_ENCRYPTED) to an
 * internal originator, one per method ("S/MIME", "PDF") naming the
 * recipients of the sent groups that method encrypted (g->done); nothing
 * for generated mail. MPA_NEXT, MPA_DEFER (database) or MPA_ERROR. */
enum mpa_result mpa_notify_encrypted(struct mpa_ctx *ctx, struct sg_error *err);

/*
 * mpa_pdf.c: the PDF method (F-PDF-1..5, D-2). mpa_pdf_can - the policy's
 * can_pdf callback (struct policy_env; arg is the struct mpa_ctx): 1 when a
 * D-2 password route exists for recipient, 0 not, -1 err (database).
 * mpa_pdf_out - method pdf, contract as mpa_method_fn: the group's one
 * recipient gets the carrier mail of the route's template with the
 * encrypted PDF; side outputs: new passwords stored on the recipient, the
 * passwords notification to the originator, the password SMS queued.
 */
int mpa_pdf_can(void *arg, const char *recipient, const struct policy_props *rprops,
	struct sg_error *err);
enum mpa_result mpa_pdf_out(struct mpa_ctx *ctx, struct mpa_group *g,
	struct sg_error *err);

/*
 * mpa_marker.c (F-FLOW-7): mpa_marker_check - before the policy: a valid
 * X-Sealgate-Marker on mail with envelope sender <> sets ctx->is_own_mail (one pass-through group, no
 * stages' edits, no notification), any other marker ctx->is_marker_forged
 * (the "edit" stage removes it). Needs the server secret: MPA_DEFER on a
 * database error. Nothing without a database.
 */
enum mpa_result mpa_marker_check(struct mpa_ctx *ctx, struct sg_error *err);
/* mpa_marker_add - put the marker (for ctx->id and m's Message-ID, which is
 * made when m has none) on generated message m, replacing any; without a
 * server secret none (logged). 0 or -1 (database). */
int mpa_marker_add(struct mpa_ctx *ctx, struct mime_msg *m, struct sg_error *err);

#endif
