/*
 * mpa_spool.c - mpa_process_spooled: one message from incoming/ through the
 * pipeline into one spool batch (outputs to outgoing/, input removed), so
 * that a crash at any step neither loses the message nor produces an output
 * twice (F-FLOW-1, DESIGN "life of a message" step 4, spool.h batches).
 *
 * Mail that leaves unchanged (one output: the input's bytes and envelope)
 * is not copied: the input file moves on to outgoing/ under its own ID
 * (spool_batch_pass), the common pass-through case costs no write.
 *
 * Called by the daemon's MPA worker threads (one message per call; a
 * struct spool is shared, the batch belongs to this thread).
 *
 * Failure classes: temporary (I/O, disk full, database down, a stage asking
 * to retry) -> -1, the message stays in incoming/ and nothing of this attempt
 * is left behind; permanent (damaged spool file, unusable envelope, a stage
 * failing closed) -> the message moves to error/ with the reason logged.
 */
#include "mpa_int.h"

#include <string.h>

struct mpa_spool_sink {
	struct spool_batch *batch;
	const char *id;
	const struct spool_env *in_env;       /* the input's envelope */
	struct mime_msg *in_msg;              /* the input as parsed */
	uint64_t in_size;
	char (*out_ids)[SG_MAIL_ID_LEN + 1];  /* outputs of the batch, for on_output */
	size_t nout;
	bool pass;                            /* first output = the input, unchanged */
	struct spool_env pass_env;            /* its envelope while undecided */
	uint64_t pass_max;
};

static int mpa_spool_write(void *arg, const void *data, size_t len, struct sg_error *err)
{
	return spool_writer_write(arg, data, len, err);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* is_unchanged - the output would be the input byte for byte with the same
 * envelope (sender, kind, recipients in order with ORCPT and NOTIFY, DSN
 * parameters, flags): pass-through mail, the common case. */
static bool is_unchanged(const struct mpa_spool_sink *s, const struct spool_env *env,
	const struct mime_msg *msg, uint64_t max)
{
	const struct spool_env *in = s->in_env;
	size_t i;

	if (msg != s->in_msg || mime_msg_is_modified(msg) || (max > 0 && s->in_size > max))
		return false;
	if (!str_eq(env->sender, in->sender) || env->kind != in->kind ||
		env->nrcpts != in->nrcpts || !str_eq(env->dsn_envid, in->dsn_envid) ||
		env->dsn_ret_hdrs != in->dsn_ret_hdrs || env->smtputf8 != in->smtputf8 ||
		env->body_8bit != in->body_8bit)
		return false;
	for (i = 0; i < env->nrcpts; i++) {
		if (!str_eq(env->rcpts[i].addr, in->rcpts[i].addr) ||
			!str_eq(env->rcpts[i].orcpt, in->rcpts[i].orcpt) ||
			env->rcpts[i].notify != in->rcpts[i].notify)
			return false;
	}
	return true;
}

static int mpa_spool_write_out(struct mpa_spool_sink *s, const struct spool_env *env,
	struct mime_msg *msg, uint64_t max, struct sg_error *err);

/* mpa_spool_emit - one output. The input itself, unchanged, as the first
 * output is kept back: if it stays the only one, the batch passes the input
 * file on (no copy); otherwise it is written like any output. */
static int mpa_spool_emit(void *arg, const struct spool_env *env, struct mime_msg *msg,
	uint64_t max, struct sg_error *err)
{
	struct mpa_spool_sink *s = arg;

	if (s->nout == 0 && !s->pass && is_unchanged(s, env, msg, max)) {
		s->pass = true;
		spool_env_copy(&s->pass_env, env);
		s->pass_max = max;
		return 0;
	}
	if (s->pass) {
		s->pass = false;
		if (mpa_spool_write_out(s, &s->pass_env, s->in_msg, s->pass_max, err) < 0)
			return -1;
	}
	return mpa_spool_write_out(s, env, msg, max, err);
}

/* mpa_spool_write_out - batch writer, body, finish (fsync in tmp/). */
static int mpa_spool_write_out(struct mpa_spool_sink *s, const struct spool_env *env,
	struct mime_msg *msg, uint64_t max, struct sg_error *err)
{
	struct spool_writer *w = spool_batch_writer(s->batch, env, 0, err);

	if (w == NULL)
		return -1;
	if (mime_msg_write(msg, max, mpa_spool_write, w, NULL, err) < 0) {
		spool_writer_abort(&w);
		return -1;
	}
	if (sg_log_is_tracing(SG_TRACE_MPA))
		sg_trace(SG_TRACE_MPA, "%s: output %s (%s, %zu recipients, %ju bytes)", s->id,
			spool_writer_id(w), spool_kind_name(env->kind), env->nrcpts,
			(uintmax_t)spool_writer_size(w));
	s->out_ids = sg_xrealloc(s->out_ids, (s->nout + 1) * sizeof(*s->out_ids));
	sg_strlcpy(s->out_ids[s->nout++], spool_writer_id(w), sizeof(*s->out_ids));
	return spool_batch_writer_finish(s->batch, &w, SPOOL_Q_OUTGOING, err);
}

/* mpa_to_error - fail closed: keep the message in error/ for the admin. */
static int mpa_to_error(struct spool *sp, const char *id, const struct sg_error *why,
	struct sg_error *err)
{
	sg_log_mail(SG_LOG_ERR, id, "processing failed, moved to error queue: %s (%s)",
		why->msg, sg_errc_name(why->code));
	if (spool_move(sp, id, SPOOL_Q_INCOMING, SPOOL_Q_ERROR, err) < 0) {
		sg_error_prefix(err, "move to error queue: ");
		return -1;
	}
	return 0;
}

int mpa_process_spooled(struct mpa *mpa, struct spool *sp, const char *id,
	struct sg_error *err)
{
	struct spool_msg *sm = NULL;
	struct mime_msg *mm = NULL;
	struct mpa_spool_sink sink_arg;
	struct mpa_sink sink = {mpa_spool_emit, &sink_arg};
	struct mpa_ctx ctx;
	struct sg_error why;
	uint64_t off, len;
	enum mpa_result r;
	int fd, rc = -1;

	memset(&ctx, 0, sizeof(ctx));
	memset(&sink_arg, 0, sizeof(sink_arg));
	sink_arg.id = id;
	if (id == NULL || !sg_mail_id_is_valid(id)) {
		sg_error_set(err, SG_E_INVAL, "mpa: bad mail ID");
		return -1;
	}
	/* A crashed earlier run may have decided this message already. */
	switch (spool_batch_finish_pending(sp, id, err)) {
	case 1:
		return 0;
	case 0:
		break;
	default:
		return -1;
	}
	sm = spool_msg_open(sp, SPOOL_Q_INCOMING, id, &why);
	if (sm == NULL) {
		if (why.code == SG_E_NOTFOUND) {
			/* another worker or an earlier run finished it */
			sg_trace(SG_TRACE_MPA, "%s: no longer in incoming", id);
			return 0;
		}
		if (why.code == SG_E_PARSE)
			return mpa_to_error(sp, id, &why, err);
		*err = why;
		return -1;
	}
	fd = spool_msg_body_fd(sm, &off, &len);
	mm = mime_msg_parse_fd(fd, off, len, &why);
	if (mm == NULL) {
		/* the spool file was just verified: a read error is temporary */
		*err = why;
		goto out;
	}
	sink_arg.batch = spool_batch_new(sp, SPOOL_Q_INCOMING, id);
	sink_arg.in_env = spool_msg_env(sm);
	sink_arg.in_msg = mm;
	sink_arg.in_size = spool_msg_size(sm);
	ctx.mpa = mpa;
	ctx.id = id;
	ctx.env = spool_msg_env(sm);
	ctx.msg = mm;
	r = mpa_run(&ctx, &sink, &why);
	if (r == MPA_DONE) {
		if (sink_arg.pass) {
			/* the only output is the input: it moves on under its ID */
			if (spool_batch_pass(sink_arg.batch, SPOOL_Q_OUTGOING, err) < 0)
				goto out;
			sg_trace(SG_TRACE_MPA, "%s: output %s (unchanged, passed on)", id, id);
			sink_arg.out_ids = sg_xrealloc(sink_arg.out_ids, sizeof(*sink_arg.out_ids));
			sg_strlcpy(sink_arg.out_ids[0], id, sizeof(*sink_arg.out_ids));
			sink_arg.nout = 1;
		}
		if (spool_batch_commit(&sink_arg.batch, err) < 0) {
			sg_error_prefix(err, "commit: ");
			goto out;
		}
		mpa_log_done(&ctx);
		if (mpa->conf.on_output != NULL) {
			size_t i;

			for (i = 0; i < sink_arg.nout; i++)
				mpa->conf.on_output(mpa->conf.on_output_arg, sink_arg.out_ids[i]);
		}
		rc = 0;
		goto out;
	}
	spool_batch_abort(&sink_arg.batch);
	if (r == MPA_DEFER) {
		*err = why;
		goto out;
	}
	rc = mpa_to_error(sp, id, &why, err);
out:
	spool_batch_abort(&sink_arg.batch);
	spool_env_free_fields(&sink_arg.pass_env);
	free(sink_arg.out_ids);
	mpa_ctx_deinit(&ctx);
	mime_msg_free(&mm);
	spool_msg_close(&sm);
	return rc;
}
