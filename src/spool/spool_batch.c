/*
 * spool_batch.c - exactly-once MPA outputs (F-FLOW-1, DESIGN "life of a
 * message" step 4). One MPA worker thread owns a batch.
 *
 * Protocol (each step durable before the next):
 *   1. every output is written and fsync'ed in tmp/<out-id>, then tmp/
 *      itself is fsync'ed (recovery relies on the names being there);
 *   2. the manifest is written to batch/<input-id>.tmp, fsync'ed, renamed
 *      to batch/<input-id> (the batch is decided at this rename) and batch/
 *      is fsync'ed:
 *        SGBATCH 1
 *        input <queue> <input-id>
 *        output <out-id> <queue>      (one line per output)
 *        end
 *   3. each output is renamed tmp/<out-id> -> <queue>/<out-id>; the target
 *      directories are fsync'ed;
 *   4. the input and its state are removed; its directory is fsync'ed;
 *   5. the manifest is removed; batch/ is fsync'ed.
 * A crash before the rename in 2 leaves only tmp/ files: recovery deletes
 * them and the input is processed again. A crash after 2 is completed by recovery
 * (steps 3-5 are idempotent: an output missing from tmp/ was already
 * renamed), so every output appears exactly once and the input goes away.
 *
 * Short forms (no manifest; see spool.h):
 *   - no output: the input is removed, its directory fsync'ed;
 *   - one output to outgoing/, input in incoming/ (the common case: a
 *     message signed or encrypted): nothing is fsync'ed. The input is
 *     renamed to done/, then the output (flagged batch_output, parent_id =
 *     the input) from tmp/ into outgoing/. The input in done/ stays the
 *     durable copy until the output no longer needs it: delivered (then
 *     spool_done removes input and output, input first) or about to change
 *     state (deferral, hold, a state file: spool_batch_settle fsyncs the
 *     output and its directory, then removes the input). Recovery checks
 *     the body hash of every output whose input still exists (done/ or
 *     incoming/): intact, it is made durable and the input removed;
 *     damaged (a power loss before writeback), it is dropped and the input
 *     processed again. An input left in done/ without an output goes back
 *     to incoming/. Saves two fsyncs per processed message.
 *   - one output elsewhere (hold, error, ...): the output is fsync'ed,
 *     renamed into its queue and that directory fsync'ed (decided), then
 *     the input is removed (not fsync'ed); recovery removes an input that
 *     an output names.
 *   - pass: the input is renamed into the output queue, nothing fsync'ed
 *     (kill -9 loses no completed rename; after a power loss the file is in
 *     one of the two queues).
 */
#include "spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_MANIFEST_MAX (64 + SPOOL_BATCH_MAX * 48)

struct spool_batch_out {
	char id[SG_MAIL_ID_LEN + 1];
	enum spool_queue q;
	int fd;                  /* open until commit: fsync'ed there if needed */
};

struct spool_batch {
	struct spool *sp;
	enum spool_queue input_q;
	char input_id[SG_MAIL_ID_LEN + 1];
	struct spool_batch_out *outs;
	size_t nouts;
	bool pass;               /* spool_batch_pass: the input is the output */
	enum spool_queue pass_q;
};

struct spool_batch *spool_batch_new(struct spool *sp, enum spool_queue input_q,
	const char *input_id)
{
	struct spool_batch *b;

	if (!spool_queue_is_valid(input_q) || input_id == NULL ||
		!sg_mail_id_is_valid(input_id))
		return NULL;
	b = sg_xcalloc(1, sizeof(*b));
	b->sp = sp;
	b->input_q = input_q;
	sg_strlcpy(b->input_id, input_id, sizeof(b->input_id));
	return b;
}

struct spool_writer *spool_batch_writer(struct spool_batch *b, const struct spool_env *env,
	uint64_t max_size, struct sg_error *err)
{
	struct spool_writer *w;

	if (b->pass) {
		sg_error_set(err, SG_E_INVAL, "%s: batch passes its input", b->input_id);
		return NULL;
	}
	if (b->nouts >= SPOOL_BATCH_MAX) {
		sg_error_set(err, SG_E_LIMIT, "%s: more than %d outputs", b->input_id,
			SPOOL_BATCH_MAX);
		return NULL;
	}
	w = spool_writer_new(b->sp, env, max_size, err);
	if (w != NULL)
		w->is_batch = true;
	return w;
}

int spool_batch_writer_finish(struct spool_batch *b, struct spool_writer **wp,
	enum spool_queue q, struct sg_error *err)
{
	struct spool_writer *w = *wp;

	*wp = NULL;
	if (!spool_queue_is_valid(q)) {
		sg_error_set(err, SG_E_INVAL, "bad queue %d", (int)q);
		goto fail;
	}
	if (b->nouts >= SPOOL_BATCH_MAX) {
		sg_error_set(err, SG_E_LIMIT, "%s: more than %d outputs", b->input_id,
			SPOOL_BATCH_MAX);
		goto fail;
	}
	if (spool_writer_finish(w, err) < 0)
		goto fail;
	b->outs = sg_xrealloc(b->outs, (b->nouts + 1) * sizeof(*b->outs));
	sg_strlcpy(b->outs[b->nouts].id, w->env.id, sizeof(b->outs[b->nouts].id));
	b->outs[b->nouts].q = q;
	b->outs[b->nouts].fd = w->fd;
	w->fd = -1;
	b->nouts++;
	spool_writer_free_keep(&w);
	return 0;
fail:
	spool_writer_abort(&w);
	return -1;
}

int spool_batch_pass(struct spool_batch *b, enum spool_queue q, struct sg_error *err)
{
	if (!spool_queue_is_valid(q) || q == b->input_q) {
		sg_error_set(err, SG_E_INVAL, "bad queue %d", (int)q);
		return -1;
	}
	if (b->nouts > 0 || b->pass) {
		sg_error_set(err, SG_E_INVAL, "%s: pass in a batch with outputs",
			b->input_id);
		return -1;
	}
	b->pass = true;
	b->pass_q = q;
	return 0;
}

/* outs_close - close the outputs' fds; fsync each first when sync (a
 * hook step each). 0, or -1 after the first failed fsync (all closed). */
static int outs_close(struct spool_batch *b, bool sync, struct sg_error *err)
{
	int rc = 0;
	size_t i;

	for (i = 0; i < b->nouts; i++) {
		if (b->outs[i].fd < 0)
			continue;
		if (sync && rc == 0 && spool_io_fsync(b->outs[i].fd) < 0) {
			sg_error_set_errno(err, SG_E_IO, errno, "%s: fsync output %s",
				b->input_id, b->outs[i].id);
			rc = -1;
		}
		(void)close(b->outs[i].fd);
		b->outs[i].fd = -1;
	}
	return rc;
}

/* manifest_format - the text of the manifest (format above). */
static char *manifest_format(const struct spool_batch *b, size_t *len_r)
{
	struct sg_buf buf;
	size_t i;

	/* Bounded by SPOOL_BATCH_MAX outputs, so appends cannot fail. */
	sg_buf_init(&buf, SPOOL_MANIFEST_MAX);
	(void)sg_buf_printf(&buf, NULL, "SGBATCH 1\ninput %s %s\n",
		spool_queue_name(b->input_q), b->input_id);
	for (i = 0; i < b->nouts; i++)
		(void)sg_buf_printf(&buf, NULL, "output %s %s\n", b->outs[i].id,
			spool_queue_name(b->outs[i].q));
	(void)sg_buf_append_str(&buf, "end\n", NULL);
	*len_r = buf.len;
	return sg_buf_steal(&buf);
}

/* manifest_parse - text into b (outs appended); 0 or -1 (SG_E_PARSE). */
static int manifest_parse(char *text, struct spool_batch *b, struct sg_error *err)
{
	char *line = text, *nl;
	unsigned n = 0;
	bool ended = false;

	while (*line != '\0') {
		char w1[16], w2[24], w3[24];
		char extra;
		enum spool_queue q;

		nl = strchr(line, '\n');
		if (nl == NULL || ended || nl - line > 60)
			goto bad;
		*nl = '\0';
		if (n == 0) {
			if (strcmp(line, "SGBATCH 1") != 0)
				goto bad;
		} else if (strcmp(line, "end") == 0) {
			ended = true;
		} else if (sscanf(line, "%15s %23s %23s %c", w1, w2, w3, &extra) != 3) {
			goto bad;
		} else if (n == 1) {
			if (strcmp(w1, "input") != 0 || spool_queue_from_name(w2, &q) < 0 ||
				strcmp(w3, b->input_id) != 0)
				goto bad;
			b->input_q = q;
		} else {
			if (strcmp(w1, "output") != 0 || !sg_mail_id_is_valid(w2) ||
				spool_queue_from_name(w3, &q) < 0 || b->nouts >= SPOOL_BATCH_MAX)
				goto bad;
			b->outs = sg_xrealloc(b->outs, (b->nouts + 1) * sizeof(*b->outs));
			sg_strlcpy(b->outs[b->nouts].id, w2, sizeof(b->outs[b->nouts].id));
			b->outs[b->nouts].q = q;
			b->outs[b->nouts].fd = -1;
			b->nouts++;
		}
		n++;
		line = nl + 1;
	}
	if (!ended || n < 3)
		goto bad;
	return 0;
bad:
	sg_error_set(err, SG_E_PARSE, "damaged batch manifest (line %u)", n + 1);
	return -1;
}

/* remove_input - unlink the input and its state; fsync its directory when
 * sync (a one-output batch does not: its output names the input, so
 * recovery removes an input that comes back after a power loss). */
static int remove_input(struct spool_batch *b, bool sync, struct sg_error *err)
{
	char src[4096], dir[4096];
	struct spool_env env;

	if (spool_path(b->sp, spool_queue_name(b->input_q), b->input_id, src, sizeof(src),
		err) < 0 ||
		spool_path(b->sp, spool_queue_name(b->input_q), NULL, dir, sizeof(dir),
			err) < 0)
		return -1;
	/* An input that is itself a batch output (a message bounced from
	 * outgoing/) may still hold its own input in done/. */
	if (b->input_q != SPOOL_Q_INCOMING &&
		spool_env_read(b->sp, b->input_q, b->input_id, &env, NULL, NULL) == 0) {
		spool_batch_parent_drop(b->sp, &env);
		spool_env_free_fields(&env);
	}
	if (spool_pool_put(b->sp, src) < 0 && errno != ENOENT) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: remove input", b->input_id);
		return -1;
	}
	if ((sync && spool_io_fsync_dir(dir, err) < 0) ||
		spool_state_remove(b->sp, b->input_id, err) < 0)
		return -1;
	return 0;
}

/* batch_complete - steps 3-5; idempotent, so recovery may repeat it. */
static int batch_complete(struct spool_batch *b, struct sg_error *err)
{
	char src[4096], dst[4096], dir[4096];
	unsigned dirs = 0;
	size_t i;
	unsigned q;

	for (i = 0; i < b->nouts; i++) {
		const char *qn = spool_queue_name(b->outs[i].q);

		if (spool_path(b->sp, SPOOL_DIR_TMP, b->outs[i].id, src, sizeof(src), err) < 0 ||
			spool_path(b->sp, qn, b->outs[i].id, dst, sizeof(dst), err) < 0)
			return -1;
		if (spool_io_rename(src, dst) < 0) {
			/* ENOENT: renamed before a crash (and maybe delivered since). */
			if (errno != ENOENT) {
				sg_error_set_errno(err, SG_E_IO, errno, "%s: output %s -> %s",
					b->input_id, b->outs[i].id, qn);
				return -1;
			}
		}
		dirs |= 1u << b->outs[i].q;
	}
	for (q = 0; q < SPOOL_Q__COUNT; q++) {
		if ((dirs & (1u << q)) == 0)
			continue;
		if (spool_path(b->sp, spool_queue_name((enum spool_queue)q), NULL, dir,
			sizeof(dir), err) < 0 || spool_io_fsync_dir(dir, err) < 0)
			return -1;
	}
	/* Step 4: the input. Already gone is fine (an earlier attempt). */
	if (remove_input(b, true, err) < 0)
		return -1;
	/* Step 5: the manifest. */
	if (spool_path(b->sp, SPOOL_DIR_BATCH, b->input_id, src, sizeof(src), err) < 0 ||
		spool_path(b->sp, SPOOL_DIR_BATCH, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	if (unlink(src) < 0 && errno != ENOENT) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: remove batch manifest",
			b->input_id);
		return -1;
	}
	/* No fsync of batch/ here: a manifest that comes back after a crash
	 * only makes recovery repeat these steps, which find every output
	 * renamed and the input gone (idempotent). Saves one fsync per message. */
	(void)dir;
	return 0;
}

static void batch_free(struct spool_batch **bp)
{
	struct spool_batch *b = *bp;

	if (b == NULL)
		return;
	*bp = NULL;
	(void)outs_close(b, false, NULL);
	free(b->outs);
	free(b);
}

/*
 * manifest_write - write batch/<input-id> durably: batch/<input-id>.tmp,
 * fsync, rename, fsync batch/. Every step is a hook step. *decided_r tells
 * the caller whether the manifest may exist after a crash (it was renamed
 * into place): then the batch must be completed, never rolled back.
 */
static int manifest_write(struct spool_batch *b, const char *text, size_t len,
	bool *decided_r, struct sg_error *err)
{
	char path[4096], tmp[4096], dir[4096];
	int fd = -1;
	int rc = -1;

	*decided_r = false;
	if (spool_path(b->sp, SPOOL_DIR_BATCH, b->input_id, path, sizeof(path), err) < 0 ||
		spool_path(b->sp, SPOOL_DIR_BATCH, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		sg_error_set(err, SG_E_INVAL, "spool path too long");
		return -1;
	}
	fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "create batch manifest");
		return -1;
	}
	if (spool_io_write(fd, text, len) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "write batch manifest");
		goto out;
	}
	if (spool_io_fsync(fd) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "fsync batch manifest");
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		sg_error_set_errno(err, SG_E_IO, errno, "close batch manifest");
		goto out;
	}
	fd = -1;
	/* rename(2), not spool_io_rename: a stale manifest of the same input
	 * cannot exist (callers run spool_batch_finish_pending first). */
	if (spool_io_inject() < 0 || rename(tmp, path) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "rename batch manifest");
		goto out;
	}
	*decided_r = true;
	rc = spool_io_fsync_dir(dir, err);
out:
	if (fd >= 0)
		close(fd);
	if (!*decided_r)
		(void)unlink(tmp);
	return rc;
}

/* commit_lazy - one output to outgoing/ of an input in incoming/ (file
 * comment): input -> done/, output -> outgoing/, nothing fsync'ed. In this
 * order, so that the output's delivery (which removes done/<input>) never
 * comes before the input is there. 0 or -1 (not decided: the input is back
 * in incoming/). */
static int commit_lazy(struct spool_batch *b, bool *decided_r, struct sg_error *err)
{
	char in[4096], done[4096], src[4096], dst[4096];

	*decided_r = false;
	(void)outs_close(b, false, err);
	if (spool_path(b->sp, spool_queue_name(SPOOL_Q_INCOMING), b->input_id, in,
		sizeof(in), err) < 0 ||
		spool_path(b->sp, SPOOL_DIR_DONE, b->input_id, done, sizeof(done), err) < 0 ||
		spool_path(b->sp, SPOOL_DIR_TMP, b->outs[0].id, src, sizeof(src), err) < 0 ||
		spool_path(b->sp, spool_queue_name(SPOOL_Q_OUTGOING), b->outs[0].id, dst,
			sizeof(dst), err) < 0)
		return -1;
	if (spool_io_rename(in, done) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: input -> done", b->input_id);
		return -1;
	}
	if (spool_io_rename(src, dst) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: output %s -> outgoing",
			b->input_id, b->outs[0].id);
		/* Undo; if even that fails, recovery moves it back at the next
		 * start (the input is not lost, only delayed). */
		if (rename(done, in) < 0)
			sg_log_mail(SG_LOG_ERR, b->input_id, "cannot move the input back "
				"from done/ to incoming/ (%s); it is processed after the next "
				"restart", strerror(errno));
		return -1;
	}
	*decided_r = true;
	return 0;
}

/* commit_short - the forms without a manifest (file comment): 0 done, -1
 * with *decided_r telling whether the outputs are already visible. */
static int commit_short(struct spool_batch *b, bool *decided_r, struct sg_error *err)
{
	char src[4096], dst[4096], dir[4096];
	const char *qn;

	*decided_r = false;
	if (b->pass) {
		qn = spool_queue_name(b->pass_q);
		if (spool_path(b->sp, spool_queue_name(b->input_q), b->input_id, src,
			sizeof(src), err) < 0 ||
			spool_path(b->sp, qn, b->input_id, dst, sizeof(dst), err) < 0)
			return -1;
		if (spool_io_rename(src, dst) < 0) {
			sg_error_set_errno(err, errno == ENOSPC ? SG_E_NOSPACE : SG_E_IO, errno,
				"%s: pass to %s", b->input_id, qn);
			return -1;
		}
		*decided_r = true;
		/* an input's state (e.g. where it was held from) is not the
		 * output's delivery state */
		return spool_state_remove(b->sp, b->input_id, err);
	}
	if (b->nouts == 1 && b->outs[0].q == SPOOL_Q_OUTGOING)
		return commit_lazy(b, decided_r, err);
	if (b->nouts == 1) {
		qn = spool_queue_name(b->outs[0].q);
		if (spool_path(b->sp, SPOOL_DIR_TMP, b->outs[0].id, src, sizeof(src), err) < 0 ||
			spool_path(b->sp, qn, b->outs[0].id, dst, sizeof(dst), err) < 0 ||
			spool_path(b->sp, qn, NULL, dir, sizeof(dir), err) < 0 ||
			outs_close(b, true, err) < 0)
			return -1;
		if (spool_io_rename(src, dst) < 0) {
			sg_error_set_errno(err, SG_E_IO, errno, "%s: output %s -> %s",
				b->input_id, b->outs[0].id, qn);
			return -1;
		}
		/* Visible from here: a failure is not rolled back (the output may
		 * be delivered any moment); recovery removes the input. */
		*decided_r = true;
		if (spool_io_fsync_dir(dir, err) < 0)
			return -1;
		return remove_input(b, false, err);
	}
	return remove_input(b, true, err);
}

int spool_batch_commit(struct spool_batch **bp, struct sg_error *err)
{
	struct spool_batch *b = *bp;
	char dir[4096];
	char *text = NULL;
	size_t len = 0;
	size_t i;
	bool decided = false;
	int rc = -1;

	*bp = NULL;
	/* A manifest already there belongs to an earlier attempt at this input
	 * that was decided but not completed (the caller did not call
	 * spool_batch_finish_pending). That attempt wins: complete it and
	 * discard these outputs, so nothing is produced twice. */
	if (spool_path(b->sp, SPOOL_DIR_BATCH, b->input_id, dir, sizeof(dir), err) < 0)
		goto abort;
	if (access(dir, F_OK) == 0) {
		struct sg_error e2;
		int fp = spool_batch_finish_pending(b->sp, b->input_id, &e2);

		sg_error_set(err, SG_E_EXISTS, "%s: an earlier batch of this input was "
			"pending (%s); these outputs are discarded", b->input_id,
			fp == 1 ? "now completed" : fp == 0 ? "gone" : e2.msg);
		sg_log_mail(SG_LOG_WARN, b->input_id, "%s", err != NULL ? err->msg : "");
		goto abort;
	}
	if (b->pass || b->nouts == 0 ||
		(b->nouts == 1 && b->input_q == SPOOL_Q_INCOMING)) {
		if (commit_short(b, &decided, err) < 0) {
			sg_error_prefix(err, "%s: batch: ", b->input_id);
			if (!decided)
				goto abort;
			/* The output is visible but the input is still there: a
			 * manifest lets spool_batch_finish_pending (the worker's
			 * next attempt) complete the batch without a restart. */
			if (!b->pass && b->nouts == 1) {
				struct sg_error e2;
				bool d2;

				text = manifest_format(b, &len);
				if (manifest_write(b, text, len, &d2, &e2) < 0 && !d2)
					sg_log_mail(SG_LOG_ERR, b->input_id, "batch manifest: %s",
						e2.msg);
			}
			sg_log_mail(SG_LOG_ERR, b->input_id, "batch commit incomplete, "
				"will be finished by recovery: %s", err != NULL ? err->msg : "");
			goto out;
		}
		goto done;
	}
	/* The outputs and their names in tmp/ must be durable before a
	 * manifest names them: recovery takes a listed output missing from
	 * tmp/ for one that was already renamed into its queue. */
	if (b->nouts > 0 &&
		(outs_close(b, true, err) < 0 ||
			spool_path(b->sp, SPOOL_DIR_TMP, NULL, dir, sizeof(dir), err) < 0 ||
			spool_io_fsync_dir(dir, err) < 0)) {
		sg_error_prefix(err, "%s: batch: ", b->input_id);
		goto abort;
	}
	text = manifest_format(b, &len);
	if (manifest_write(b, text, len, &decided, err) < 0) {
		sg_error_prefix(err, "%s: batch manifest: ", b->input_id);
		if (!decided)
			goto abort;
		sg_log_mail(SG_LOG_ERR, b->input_id, "batch commit incomplete, "
			"will be finished by recovery: %s", err != NULL ? err->msg : "");
		goto out;
	}
	/* From here on the batch is decided: a failure leaves the manifest for
	 * spool_batch_finish_pending / spool_recover, never a rollback. */
	if (batch_complete(b, err) < 0) {
		sg_log_mail(SG_LOG_ERR, b->input_id, "batch commit incomplete, "
			"will be finished by recovery: %s", err != NULL ? err->msg : "");
		goto out;
	}
done:
	if (b->pass)
		sg_trace(SG_TRACE_SPOOL, "%s: passed to %s", b->input_id,
			spool_queue_name(b->pass_q));
	for (i = 0; i < b->nouts; i++)
		sg_trace(SG_TRACE_SPOOL, "%s: output %s queued in %s", b->input_id,
			b->outs[i].id, spool_queue_name(b->outs[i].q));
	rc = 0;
	goto out;
abort:
	spool_batch_abort(&b);
out:
	free(text);
	batch_free(&b);
	return rc;
}

void spool_batch_abort(struct spool_batch **bp)
{
	struct spool_batch *b = *bp;
	char path[4096];
	size_t i;

	if (b == NULL)
		return;
	(void)outs_close(b, false, NULL);
	for (i = 0; i < b->nouts; i++) {
		if (spool_path(b->sp, SPOOL_DIR_TMP, b->outs[i].id, path, sizeof(path),
			NULL) == 0)
			(void)unlink(path);
	}
	batch_free(bp);
}

/* batch_finish_file - complete the batch of manifest batch/<id>. */
static int batch_finish_file(struct spool *sp, const char *id, struct sg_error *err)
{
	struct spool_batch b;
	char path[4096];
	char *text = NULL;
	int rc = -1;

	memset(&b, 0, sizeof(b));
	b.sp = sp;
	sg_strlcpy(b.input_id, id, sizeof(b.input_id));
	if (spool_path(sp, SPOOL_DIR_BATCH, id, path, sizeof(path), err) < 0)
		return -1;
	if (sg_file_read(path, SPOOL_MANIFEST_MAX, &text, NULL, err) < 0)
		return -1;
	if (manifest_parse(text, &b, err) < 0)
		goto out;
	rc = batch_complete(&b, err);
	if (rc == 0)
		sg_log_mail(SG_LOG_INFO, id, "interrupted batch completed: outputs=%zu",
			b.nouts);
out:
	free(text);
	free(b.outs);
	return rc;
}

int spool_batch_finish_pending(struct spool *sp, const char *input_id,
	struct sg_error *err)
{
	struct sg_error e2;

	if (spool_check_id(input_id, err) < 0)
		return -1;
	if (batch_finish_file(sp, input_id, &e2) < 0) {
		if (e2.code == SG_E_NOTFOUND)
			return 0;
		if (err != NULL)
			*err = e2;
		return -1;
	}
	return 1;
}

/* spool_batch_recover - finish every batch that has a manifest. A damaged
 * manifest is renamed to <id>.damaged (kept for the admin); its outputs are
 * then removed with tmp/ and the input is processed again. */
int spool_batch_recover(struct spool *sp, unsigned *done_r, unsigned *damaged_r,
	struct sg_error *err)
{
	char dir[4096], path[4096], bad[4096];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*done_r = 0;
	*damaged_r = 0;
	if (spool_path(sp, SPOOL_DIR_BATCH, NULL, dir, sizeof(dir), err) < 0)
		return -1;
	d = opendir(dir);
	if (d == NULL) {
		sg_error_set_errno(err, SG_E_IO, errno, "open %s", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct sg_error e2;
		size_t nlen = strlen(de->d_name);

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (nlen > 8 && strcmp(de->d_name + nlen - 8, ".damaged") == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
			sizeof(path))
			continue;
		if (!sg_mail_id_is_valid(de->d_name)) {
			/* a manifest that was never renamed into place */
			(void)unlink(path);
			continue;
		}
		if (batch_finish_file(sp, de->d_name, &e2) == 0) {
			(*done_r)++;
			continue;
		}
		if (e2.code != SG_E_PARSE) {
			if (err != NULL)
				*err = e2;
			rc = -1;
			break;
		}
		sg_log_mail(SG_LOG_ERR, de->d_name, "%s; kept as batch/%s.damaged", e2.msg,
			de->d_name);
		snprintf(bad, sizeof(bad), "%s.damaged", path);
		(void)rename(path, bad);
		(*damaged_r)++;
	}
	closedir(d);
	return rc;
}

/* parent_of - done/<input> (into path) of a batch output env: false when
 * env is not one. */
static bool parent_of(struct spool *sp, const struct spool_env *env, const char *sub,
	char *path, size_t pathsz)
{
	return env->batch_output && env->parent_id != NULL &&
		sg_mail_id_is_valid(env->parent_id) &&
		spool_path(sp, sub, env->parent_id, path, pathsz, NULL) == 0;
}

void spool_batch_parent_drop(struct spool *sp, const struct spool_env *env)
{
	char path[4096];
	struct sg_error err;

	if (!parent_of(sp, env, SPOOL_DIR_DONE, path, sizeof(path)))
		return;
	if (spool_pool_put(sp, path) < 0) {
		if (errno == ENOENT)
			return;
		sg_log_mail(SG_LOG_ERR, env->parent_id, "cannot remove the processed input "
			"done/%s: %s", env->parent_id, strerror(errno));
		return;
	}
	if (spool_state_remove(sp, env->parent_id, &err) < 0)
		sg_log_mail(SG_LOG_WARN, env->parent_id, "%s", err.msg);
}

/* fsync_file - open path read-only and fsync it (a hook step). */
static int fsync_file(const char *path, const char *id, struct sg_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		sg_error_set_errno(err, errno == ENOENT ? SG_E_NOTFOUND : SG_E_IO, errno,
			"%s: open", id);
		return -1;
	}
	rc = spool_io_fsync(fd);
	if (rc < 0)
		sg_error_set_errno(err, SG_E_IO, errno, "%s: fsync", id);
	(void)close(fd);
	return rc;
}

/* output_make_durable - fsync q/<id> and q/. */
static int output_make_durable(struct spool *sp, enum spool_queue q, const char *id,
	struct sg_error *err)
{
	char path[4096], dir[4096];

	if (spool_path(sp, spool_queue_name(q), id, path, sizeof(path), err) < 0 ||
		spool_path(sp, spool_queue_name(q), NULL, dir, sizeof(dir), err) < 0 ||
		fsync_file(path, id, err) < 0)
		return -1;
	return spool_io_fsync_dir(dir, err);
}

int spool_batch_settle(struct spool *sp, const struct spool_env *env,
	struct sg_error *err)
{
	char path[4096];
	enum spool_queue q;
	int found;

	if (!parent_of(sp, env, SPOOL_DIR_DONE, path, sizeof(path)) ||
		access(path, F_OK) < 0)
		return 0;
	found = spool_find(sp, env->id, &q, err);
	if (found < 0)
		return -1;
	if (found > 0 && output_make_durable(sp, q, env->id, err) < 0) {
		sg_error_prefix(err, "settle output: ");
		return -1;
	}
	spool_batch_parent_drop(sp, env);
	sg_trace(SG_TRACE_SPOOL, "%s: output %s settled", env->parent_id, env->id);
	return 0;
}

int spool_batch_output_recover(struct spool *sp, enum spool_queue q,
	const struct spool_env *env, struct sg_error *err)
{
	char done[4096], in[4096], out[4096], dir[4096];
	struct spool_msg *m;
	struct spool_batch b;
	struct sg_error verr;
	bool in_done;

	if (!parent_of(sp, env, SPOOL_DIR_DONE, done, sizeof(done)) ||
		!parent_of(sp, env, spool_queue_name(SPOOL_Q_INCOMING), in, sizeof(in)))
		return 0;
	in_done = access(done, F_OK) == 0;
	if (!in_done && access(in, F_OK) < 0)
		return 0;
	/* The output may never have been fsync'ed: check its body in full. */
	m = spool_msg_open(sp, q, env->id, &verr);
	if (m != NULL) {
		spool_msg_close(&m);
		if (output_make_durable(sp, q, env->id, err) < 0)
			return -1;
		memset(&b, 0, sizeof(b));
		b.sp = sp;
		b.input_q = SPOOL_Q_INCOMING;
		sg_strlcpy(b.input_id, env->parent_id, sizeof(b.input_id));
		if (in_done) {
			spool_batch_parent_drop(sp, env);
		} else if (remove_input(&b, true, err) < 0) {
			return -1;
		}
		sg_log_mail(SG_LOG_INFO, env->parent_id, "interrupted batch completed: "
			"output %s exists", env->id);
		return 1;
	}
	if (verr.code != SG_E_PARSE) {
		if (err != NULL)
			*err = verr;
		return -1;
	}
	/* Damaged: the output was not written back before a power loss. Its
	 * input is intact, so it is processed again. */
	if (spool_path(sp, spool_queue_name(q), env->id, out, sizeof(out), err) < 0 ||
		spool_path(sp, spool_queue_name(SPOOL_Q_INCOMING), NULL, dir, sizeof(dir),
			err) < 0)
		return -1;
	if (in_done && rename(done, in) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: done -> incoming", env->parent_id);
		return -1;
	}
	if (spool_io_fsync_dir(dir, err) < 0)
		return -1;
	if (unlink(out) < 0 && errno != ENOENT) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: remove damaged output", env->id);
		return -1;
	}
	(void)spool_state_remove(sp, env->id, NULL);
	sg_log_mail(SG_LOG_WARN, env->parent_id, "output %s was incomplete (%s); removed, "
		"the input is processed again", env->id, verr.msg);
	return 2;
}

struct requeue {
	struct spool *sp;
	unsigned n;
};

/* requeue_cb - done/<id> back to incoming/<id>. */
static int requeue_cb(const char *id, void *arg)
{
	struct requeue *rq = arg;
	char from[4096], to[4096];

	if (spool_path(rq->sp, SPOOL_DIR_DONE, id, from, sizeof(from), NULL) < 0 ||
		spool_path(rq->sp, spool_queue_name(SPOOL_Q_INCOMING), id, to, sizeof(to),
			NULL) < 0)
		return 0;
	if (rename(from, to) < 0) {
		sg_log_mail(SG_LOG_ERR, id, "spool recovery: done -> incoming: %s",
			strerror(errno));
		return 0;
	}
	sg_log_mail(SG_LOG_INFO, id, "spool recovery: processed input without an output, "
		"processed again");
	rq->n++;
	return 0;
}

int spool_batch_requeue_done(struct spool *sp, unsigned *count_r, struct sg_error *err)
{
	struct requeue rq = {.sp = sp, .n = 0};
	char dir[4096];

	*count_r = 0;
	if (spool_list_dir(sp, SPOOL_DIR_DONE, requeue_cb, &rq, err) < 0)
		return -1;
	if (rq.n > 0 &&
		(spool_path(sp, spool_queue_name(SPOOL_Q_INCOMING), NULL, dir, sizeof(dir),
			err) < 0 || spool_io_fsync_dir(dir, err) < 0))
		return -1;
	*count_r = rq.n;
	return 0;
}
