/*
 * mpa_decide.c - the policy step of the pipeline (DESIGN "life of a
 * message" steps 2-3, SPEC F-POL-3..9): fill struct policy_msg from the
 * parsed message and the envelope, ask src/policy for every envelope
 * recipient's decision, answer its capability questions (an encryption
 * certificate through src/pki; a PDF password route: mpa_pdf.c), and group
 * the recipients by identical decision.
 *
 * Called by the runner (mpa_run.c) in an MPA worker thread, with that
 * worker's policy resolver and PKI context (struct mpa).
 *
 * Fail closed: any error of the policy or PKI lookup stops the message
 * (database errors are temporary: the message stays in incoming/; the rest
 * sends it to error/). Nothing is ever sent on a partial decision.
 */
#include "mpa_int.h"

#include <stdlib.h>
#include <ctype.h>
#include <string.h>

void mpa_results_free(struct mpa_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->nresults; i++)
		policy_result_free(&ctx->results[i]);
	free(ctx->results);
	ctx->results = NULL;
	ctx->nresults = 0;
}

/* mpa_header_nth - policy_header_fn over the input's top-level header */
static const char *mpa_header_nth(void *arg, const char *name, size_t idx)
{
	return mime_msg_header_get_nth(arg, name, idx);
}

/* mpa_owner_chain - policy's owner strings ("user:a@x", "domain:x",
 * "wildcard:*.x", "global") as src/pki owners; names borrowed from owners. */
static size_t mpa_owner_chain(char owners[4][POLICY_OWNER_MAX], size_t n,
	struct pki_owner *chain)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		const char *o = owners[i];

		if (strncmp(o, "user:", 5) == 0)
			chain[k++] = (struct pki_owner){PKI_OWNER_USER, o + 5};
		else if (strncmp(o, "domain:", 7) == 0)
			chain[k++] = (struct pki_owner){PKI_OWNER_DOMAIN, o + 7};
		else if (strncmp(o, "wildcard:", 9) == 0)
			chain[k++] = (struct pki_owner){PKI_OWNER_DOMAIN, o + 9};
		else if (strcmp(o, "global") == 0)
			chain[k++] = (struct pki_owner){PKI_OWNER_GLOBAL, ""};
	}
	return k;
}

/* mpa_has_cert - policy_env.has_encryption_cert: does the recipient have a
 * certificate valid for encryption now (manual selections along its owner
 * chain, plus certificates for the address when auto-select is on)? */
static int mpa_has_cert(void *arg, const char *recipient, const struct policy_props *rprops,
	struct sg_error *err)
{
	struct mpa_ctx *ctx = arg;
	char owners[4][POLICY_OWNER_MAX];
	struct pki_owner chain[4];
	struct pki_selection sel = {0};
	unsigned flags = 0, vflags = 0;
	size_t n = 0;
	int rc;

	if (policy_owner_chain(rprops, owners, &n) < 0) {
		sg_error_set(err, SG_E_INTERNAL, "policy: no owner chain for %s", recipient);
		return -1;
	}
	n = mpa_owner_chain(owners, n, chain);
	if (policy_props_is_true(rprops, POLICY_P_SMIME_AUTO_SELECT_CERTIFICATES))
		flags |= PKI_SELECT_AUTO;
	if (policy_props_is_true(rprops, POLICY_P_CRL_REQUIRED))
		vflags |= PKI_VERIFY_CRL_REQUIRED;
	if (pki_select_encryption(ctx->mpa->pki, recipient, chain, n, flags, vflags, &sel,
		err) < 0) {
		sg_error_prefix(err, "certificates of %s: ", recipient);
		return -1;
	}
	rc = sel.n > 0 ? 1 : 0;
	pki_selection_free(&sel);
	return rc;
}

/* mpa_policy_msg - the message facts the policy needs */
static void mpa_policy_msg(struct mpa_ctx *ctx, struct policy_msg *pm)
{
	memset(pm, 0, sizeof(*pm));
	pm->from_header = mime_msg_header_get_raw(ctx->msg, "From");
	pm->sender_header = mime_msg_header_get_raw(ctx->msg, "Sender");
	pm->envelope_sender = ctx->env->sender;
	pm->subject = mime_msg_header_get(ctx->msg, "Subject");
	pm->header_fn = mpa_header_nth;
	pm->header_arg = ctx->msg;
	pm->size = mime_msg_source_size(ctx->msg);
	if (mime_msg_is_calendar(ctx->msg))
		pm->flags |= POLICY_MSG_CALENDAR;
	/* XXX: POLICY_MSG_DLP_MUST_ENCRYPT comes from the DLP stage (issue 7),
	 * which must then run before this step */
}

/* mpa_decide_all - policy_decide over the recipients, POLICY_RCPT_MAX at a
 * time (the envelope may hold up to SPOOL_MAX_RCPTS). 0 or -1. */
static int mpa_decide_all(struct mpa_ctx *ctx, struct sg_error *err)
{
	const struct spool_env *env = ctx->env;
	struct policy_env penv = {mpa_has_cert, mpa_pdf_can, ctx};
	struct policy_msg pm;
	const char **addrs = sg_xcalloc(env->nrcpts, sizeof(*addrs));
	size_t i, off;
	int rc = -1;

	mpa_policy_msg(ctx, &pm);
	for (i = 0; i < env->nrcpts; i++)
		addrs[i] = env->rcpts[i].addr;
	ctx->nresults = 0;
	ctx->results = sg_xcalloc(env->nrcpts / POLICY_RCPT_MAX + 1, sizeof(*ctx->results));
	for (off = 0; off < env->nrcpts; off += POLICY_RCPT_MAX) {
		size_t n = env->nrcpts - off < POLICY_RCPT_MAX ? env->nrcpts - off :
			POLICY_RCPT_MAX;

		if (policy_decide(ctx->mpa->policy, &pm, addrs + off, n, &penv,
			&ctx->results[ctx->nresults], err) < 0) {
			sg_error_prefix(err, "policy: ");
			goto out;
		}
		ctx->nresults++;
	}
	rc = 0;
out:
	free(addrs);
	return rc;
}

/* mpa_rcpt_decision - recipient i's decision */
static const struct policy_decision *mpa_rcpt_decision(const struct mpa_ctx *ctx, size_t i)
{
	return &ctx->results[i / POLICY_RCPT_MAX]->rcpt[i % POLICY_RCPT_MAX];
}

/* mpa_rcpt_subject - the Subject recipient i's output gets: the decision's
 * (trigger removed for external recipients, subject filter for internal
 * ones), else the message-level one (trigger removed: F-FLOW-8 for internal
 * recipients), NULL = unchanged */
static const char *mpa_rcpt_subject(const struct mpa_ctx *ctx, size_t i)
{
	const struct policy_decision *d = mpa_rcpt_decision(ctx, i);

	return d->subject != NULL ? d->subject : ctx->results[0]->subject_out;
}

static bool mpa_str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Finding a recipient's group: an open-addressing table over (decision key,
 * subject), so that a message with many groups (each PDF or strict-decrypt
 * recipient is one) costs O(recipients), not O(recipients x groups). */
struct mpa_gtab {
	size_t *slot;   /* group index + 1; 0 = empty */
	size_t mask;
};

static uint64_t mpa_ghash(const struct policy_decision *d, const char *subject,
	const char *solo)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	const char *p;

	for (p = solo != NULL ? solo : ""; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;

	for (p = d != NULL ? d->key : ""; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ (subject != NULL ? 0x01 : 0x02)) * 1099511628211ull;
	for (p = subject != NULL ? subject : ""; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static bool mpa_group_is(const struct mpa_group *c, const struct policy_decision *d,
	const char *subject, const char *solo)
{
	return (c->dec == NULL) == (d == NULL) && (d == NULL ||
		strcmp(c->dec->key, d->key) == 0) && mpa_str_same(c->subject, subject) &&
		mpa_str_same(c->solo, solo);
}

/* mpa_addr_in - addr (an envelope address) appears in the address field
 * value v as a whole address (case-insensitive; bounded by characters that
 * cannot be part of an address). */
static bool mpa_addr_in(const char *v, const char *addr)
{
	size_t n = strlen(addr);
	const char *p;

	if (n == 0)
		return false;
	for (p = strcasestr(v, addr); p != NULL; p = strcasestr(p + 1, addr)) {
		char before = p == v ? ' ' : p[-1], after = p[n];

		/* (strchr finds the terminating NUL too: test for it first) */
		if (!(isalnum((unsigned char)before) ||
			strchr(".-_+=!#$%&'*/?^`{|}~", before) != NULL) &&
		    (after == '\0' || !(isalnum((unsigned char)after) ||
			strchr(".-_@", after) != NULL)))
			return true;
	}
	return false;
}

/* mpa_is_bcc - envelope recipient i is named in no To or Cc field. */
static bool mpa_is_bcc(struct mpa_ctx *ctx, size_t i)
{
	static const char *const fields[] = {"To", "Cc"};
	const char *addr = ctx->env->rcpts[i].addr, *v;
	size_t f, k;

	for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
		for (k = 0; (v = mime_msg_header_get_nth(ctx->msg, fields[f], k)) != NULL; k++)
			if (mpa_addr_in(v, addr))
				return false;
	return true;
}

/* mpa_group_add - recipient i into the group with the same decision key and
 * subject (the policy's key leaves a per-recipient subject filter out), or
 * a new group, in the order of first appearance */
static void mpa_group_add(struct mpa_ctx *ctx, struct mpa_gtab *t, size_t i,
	const struct policy_decision *d, const char *subject)
{
	struct mpa_group *grp;
	const char *solo = d != NULL && d->method == POLICY_METHOD_SMIME && mpa_is_bcc(ctx, i) ?
		ctx->env->rcpts[i].addr : NULL;
	size_t s = (size_t)mpa_ghash(d, subject, solo) & t->mask;

	while (t->slot[s] != 0 &&
		!mpa_group_is(&ctx->groups[t->slot[s] - 1], d, subject, solo))
		s = (s + 1) & t->mask;
	if (t->slot[s] == 0) {
		/* groups <= recipients < table size / 2: there is a free slot */
		ctx->groups = sg_xrealloc(ctx->groups, (ctx->ngroups + 1) * sizeof(*ctx->groups));
		grp = &ctx->groups[ctx->ngroups++];
		memset(grp, 0, sizeof(*grp));
		grp->action = MPA_ACT_PASS;
		grp->dec = d;
		grp->subject = subject;
		grp->solo = solo;
		t->slot[s] = ctx->ngroups;
	}
	grp = &ctx->groups[t->slot[s] - 1];
	if (grp->nrcpts == grp->rcpts_cap) {
		grp->rcpts_cap = grp->rcpts_cap == 0 ? 8 : grp->rcpts_cap * 2;
		grp->rcpts = sg_xrealloc(grp->rcpts, grp->rcpts_cap * sizeof(*grp->rcpts));
	}
	grp->rcpts[grp->nrcpts++] = i;
}

enum mpa_result mpa_decide_groups(struct mpa_ctx *ctx, struct sg_error *err)
{
	struct mpa_gtab t;
	size_t i, size = 16;

	/* the envelope holds at most SPOOL_MAX_RCPTS recipients: bounded */
	while (size < 2 * ctx->env->nrcpts + 2)
		size *= 2;
	t.slot = sg_xcalloc(size, sizeof(*t.slot));
	t.mask = size - 1;
	if (ctx->mpa->policy == NULL || ctx->is_own_mail) {
		/* no database: factory pass-through, nothing to decide; the
		 * gateway's own mail (F-FLOW-7) is not processed again */
		for (i = 0; i < ctx->env->nrcpts; i++)
			mpa_group_add(ctx, &t, i, NULL, NULL);
		free(t.slot);
		return MPA_NEXT;
	}
	if (mpa_decide_all(ctx, err) < 0) {
		free(t.slot);
		return mpa_result_of_error(err);
	}
	for (i = 0; i < ctx->env->nrcpts; i++)
		mpa_group_add(ctx, &t, i, mpa_rcpt_decision(ctx, i), mpa_rcpt_subject(ctx, i));
	free(t.slot);
	if (sg_log_is_tracing(SG_TRACE_MPA)) {
		for (i = 0; i < ctx->ngroups; i++) {
			const struct policy_decision *d = ctx->groups[i].dec;

			sg_trace(SG_TRACE_MPA, "%s: group %zu: %zu recipient(s), encrypt=%s, "
				"method=%s, sign=%s", ctx->id, i, ctx->groups[i].nrcpts,
				policy_encrypt_name(d->encrypt), policy_method_name(d->method),
				policy_sign_name(d->sign));
		}
	}
	return MPA_NEXT;
}
