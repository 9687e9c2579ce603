/*
 * spool_queue.c - the spool directory and its queues (F-FLOW-1, F-FLOW-3):
 * open, paths, moves between queues, delete, find, list, the admin
 * operations hold/release/requeue (CLI `sealgate queue ...`, the API and the
 * web UI call the same functions) and start-up recovery.
 *
 * Runs in every process that touches the spool, in any thread: struct
 * spool is immutable after spool_open. A move is a rename(2) without
 * replacement followed by an fsync of both directories; IDs are checked
 * with sg_mail_id_is_valid() before they reach a path.
 */
#include "spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int spool_check_id(const char *id, struct sg_error *err)
{
	if (id == NULL || !sg_mail_id_is_valid(id)) {
		sg_error_set(err, SG_E_INVAL, "invalid mail ID");
		return -1;
	}
	return 0;
}

static int check_queue(enum spool_queue q, struct sg_error *err)
{
	if (!spool_queue_is_valid(q)) {
		sg_error_set(err, SG_E_INVAL, "bad queue %d", (int)q);
		return -1;
	}
	return 0;
}

int spool_path(const struct spool *sp, const char *sub, const char *id, char *out,
	size_t outsz, struct sg_error *err)
{
	int n;

	if (id != NULL)
		n = snprintf(out, outsz, "%s/%s/%s", sp->dir, sub, id);
	else
		n = snprintf(out, outsz, "%s/%s", sp->dir, sub);
	if (n < 0 || (size_t)n >= outsz) {
		sg_error_set(err, SG_E_INVAL, "spool path too long");
		return -1;
	}
	return 0;
}

struct spool *spool_open(const char *dir, struct sg_error *err)
{
	static const char *const extra[] = {SPOOL_DIR_TMP, SPOOL_DIR_STATE, SPOOL_DIR_BATCH,
		SPOOL_DIR_FREE, SPOOL_DIR_DONE};
	struct spool *sp;
	char path[4096];
	size_t i;

	if (dir == NULL || *dir == '\0' || strlen(dir) > 3000) {
		sg_error_set(err, SG_E_INVAL, "bad spool directory");
		return NULL;
	}
	sp = sg_xcalloc(1, sizeof(*sp));
	sp->dir = sg_xstrdup(dir);
	spool_pool_init(sp);
	spool_verified_init(sp);
	if (sg_mkdir_p(dir, 0700, err) < 0)
		goto fail;
	for (i = 0; i < SPOOL_Q__COUNT + sizeof(extra) / sizeof(extra[0]); i++) {
		const char *sub = i < SPOOL_Q__COUNT ? spool_queue_name((enum spool_queue)i) :
			extra[i - SPOOL_Q__COUNT];

		if (spool_path(sp, sub, NULL, path, sizeof(path), err) < 0 ||
			sg_mkdir_p(path, 0700, err) < 0)
			goto fail;
	}
	return sp;
fail:
	sg_error_prefix(err, "spool %s: ", dir);
	spool_close(&sp);
	return NULL;
}

void spool_close(struct spool **spp)
{
	struct spool *sp = *spp;

	if (sp == NULL)
		return;
	*spp = NULL;
	spool_pool_deinit(sp);
	spool_verified_deinit(sp);
	free(sp->dir);
	free(sp);
}

const char *spool_dir(const struct spool *sp)
{
	return sp->dir;
}

/* spool_move - rename without replacing, then fsync target and source dirs. */
int spool_move(struct spool *sp, const char *id, enum spool_queue from,
	enum spool_queue to, struct sg_error *err)
{
	char src[4096], dst[4096], sdir[4096], ddir[4096];

	if (spool_check_id(id, err) < 0 || check_queue(from, err) < 0 ||
		check_queue(to, err) < 0)
		return -1;
	if (from == to) {
		sg_error_set(err, SG_E_INVAL, "%s: already in %s", id, spool_queue_name(to));
		return -1;
	}
	if (spool_path(sp, spool_queue_name(from), id, src, sizeof(src), err) < 0 ||
		spool_path(sp, spool_queue_name(to), id, dst, sizeof(dst), err) < 0 ||
		spool_path(sp, spool_queue_name(from), NULL, sdir, sizeof(sdir), err) < 0 ||
		spool_path(sp, spool_queue_name(to), NULL, ddir, sizeof(ddir), err) < 0)
		return -1;
	if (spool_io_rename(src, dst) < 0) {
		if (errno == ENOENT)
			sg_error_set(err, SG_E_NOTFOUND, "no such message %s in %s", id,
				spool_queue_name(from));
		else if (errno == EEXIST)
			sg_error_set(err, SG_E_EXISTS, "%s: already exists in %s", id,
				spool_queue_name(to));
		else
			sg_error_set_errno(err, SG_E_IO, errno, "%s: move %s -> %s", id,
				spool_queue_name(from), spool_queue_name(to));
		return -1;
	}
	if (spool_io_fsync_dir(ddir, err) < 0 || spool_io_fsync_dir(sdir, err) < 0) {
		sg_error_prefix(err, "%s: ", id);
		return -1;
	}
	sg_trace(SG_TRACE_SPOOL, "%s: moved %s -> %s", id, spool_queue_name(from),
		spool_queue_name(to));
	return 0;
}

/* delete_msg - unlink id from q (and its state); fsync q when sync. The
 * input a batch output env still holds in done/ goes first (env may be
 * NULL): removing the output first would let a crash in between bring the
 * input back for a second processing. */
static int delete_msg(struct spool *sp, enum spool_queue q, const char *id,
	const struct spool_env *env, bool sync, struct sg_error *err)
{
	char path[4096], dir[4096];

	if (spool_check_id(id, err) < 0 || check_queue(q, err) < 0)
		return -1;
	if (spool_path(sp, spool_queue_name(q), id, path, sizeof(path), err) < 0 ||
		spool_path(sp, spool_queue_name(q), NULL, dir, sizeof(dir), err) < 0)
		return -1;
	if (env != NULL)
		spool_batch_parent_drop(sp, env);
	if ((sync ? unlink(path) : spool_pool_put(sp, path)) < 0) {
		if (errno == ENOENT)
			sg_error_set(err, SG_E_NOTFOUND, "no such message %s in %s", id,
				spool_queue_name(q));
		else
			sg_error_set_errno(err, SG_E_IO, errno, "%s: delete", id);
		return -1;
	}
	if (sync && spool_io_fsync_dir(dir, err) < 0) {
		sg_error_prefix(err, "%s: ", id);
		return -1;
	}
	return spool_state_remove(sp, id, err);
}

int spool_delete(struct spool *sp, enum spool_queue q, const char *id,
	struct sg_error *err)
{
	struct spool_env env;
	int rc;

	/* a damaged file has no readable envelope: deleted all the same */
	if (spool_check_id(id, err) < 0 || check_queue(q, err) < 0)
		return -1;
	if (spool_env_read(sp, q, id, &env, NULL, NULL) < 0)
		return delete_msg(sp, q, id, NULL, true, err);
	rc = delete_msg(sp, q, id, &env, true, err);
	spool_env_free_fields(&env);
	return rc;
}

int spool_done(struct spool *sp, enum spool_queue q, const struct spool_env *env,
	struct sg_error *err)
{
	return delete_msg(sp, q, env->id, env, false, err);
}

/* find_once - one lstat() per queue: 1 found, 0 not, -1 error. */
static int find_once(struct spool *sp, const char *id, enum spool_queue *q_r,
	struct sg_error *err)
{
	char path[4096];
	struct stat st;
	unsigned i;

	for (i = 0; i < SPOOL_Q__COUNT; i++) {
		if (spool_path(sp, spool_queue_name((enum spool_queue)i), id, path,
			sizeof(path), err) < 0)
			return -1;
		if (lstat(path, &st) == 0) {
			*q_r = (enum spool_queue)i;
			return 1;
		}
		if (errno != ENOENT) {
			sg_error_set_errno(err, SG_E_IO, errno, "stat %s", path);
			return -1;
		}
	}
	return 0;
}

int spool_find(struct spool *sp, const char *id, enum spool_queue *q_r,
	struct sg_error *err)
{
	int rc;

	if (spool_check_id(id, err) < 0)
		return -1;
	/* A message moved by a worker between two lstat() calls (deferred ->
	 * outgoing is checked in the other order) is missed by one pass, so a
	 * miss is confirmed by a second one. */
	rc = find_once(sp, id, q_r, err);
	if (rc == 0)
		rc = find_once(sp, id, q_r, err);
	return rc;
}

/* spool_list_dir - call cb for every valid mail ID named in sub/. */
int spool_list_dir(struct spool *sp, const char *sub, spool_list_cb *cb,
	void *arg, struct sg_error *err)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	if (spool_path(sp, sub, NULL, path, sizeof(path), err) < 0)
		return -1;
	d = opendir(path);
	if (d == NULL) {
		sg_error_set_errno(err, SG_E_IO, errno, "open %s", path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!sg_mail_id_is_valid(de->d_name))
			continue;
		if (cb(de->d_name, arg) != 0)
			break;
	}
	closedir(d);
	return 0;
}

int spool_list(struct spool *sp, enum spool_queue q, spool_list_cb *cb, void *arg,
	struct sg_error *err)
{
	if (check_queue(q, err) < 0)
		return -1;
	return spool_list_dir(sp, spool_queue_name(q), cb, arg, err);
}

/* ------------------------------------------------------------ admin ops */

/* find_existing - like spool_find but "no such message" when absent. */
static int find_existing(struct spool *sp, const char *id, enum spool_queue *q_r,
	struct sg_error *err)
{
	int rc = spool_find(sp, id, q_r, err);

	if (rc == 0) {
		sg_error_set(err, SG_E_NOTFOUND, "no such message %s", id);
		return -1;
	}
	return rc < 0 ? -1 : 0;
}

/* is_output - produced by the gateway: never goes through the MPA again. */
static bool is_output(const struct spool_env *env)
{
	return env->parent_id != NULL || env->kind != SPOOL_KIND_MESSAGE;
}

/* set_state_and_move - write state (next_attempt reset, held_from given),
 * then move id from -> to. */
static int set_state_and_move(struct spool *sp, struct spool_env *env,
	int held_from, enum spool_queue from, enum spool_queue to, struct sg_error *err)
{
	struct spool_state_extra extra = {.held_from = held_from};

	if (to == SPOOL_Q_OUTGOING || to == SPOOL_Q_INCOMING)
		env->next_attempt = 0;
	if (spool_state_write(sp, env, &extra, err) < 0)
		return -1;
	return spool_move(sp, env->id, from, to, err);
}

int spool_hold(struct spool *sp, const char *id, struct sg_error *err)
{
	struct spool_env env;
	enum spool_queue q;
	struct spool_state_extra extra = {.held_from = -1};
	int rc;

	memset(&env, 0, sizeof(env));
	if (find_existing(sp, id, &q, err) < 0)
		return -1;
	if (q == SPOOL_Q_HOLD || q == SPOOL_Q_ERROR) {
		sg_error_set(err, SG_E_INVAL, "%s: message is in the %s queue", id,
			spool_queue_name(q));
		return -1;
	}
	if (spool_env_read(sp, q, id, &env, NULL, err) < 0)
		return -1;
	extra.held_from = (int)q;
	rc = spool_state_write(sp, &env, &extra, err);
	if (rc == 0)
		rc = spool_move(sp, id, q, SPOOL_Q_HOLD, err);
	if (rc == 0)
		sg_log_mail(SG_LOG_INFO, id, "held by admin, from=%s", spool_queue_name(q));
	spool_env_free_fields(&env);
	return rc;
}

/* release_target - see spool.h (spool_release). */
static enum spool_queue release_target(const struct spool_env *env, int held_from)
{
	if (held_from == SPOOL_Q_INCOMING)
		return SPOOL_Q_INCOMING;
	if (held_from == SPOOL_Q_OUTGOING || held_from == SPOOL_Q_DEFERRED)
		return SPOOL_Q_OUTGOING;
	return is_output(env) ? SPOOL_Q_OUTGOING : SPOOL_Q_INCOMING;
}

/* release_from - move id out of queue from (hold or error) to its target. */
static int release_from(struct spool *sp, const char *id, enum spool_queue from,
	enum spool_queue *to_r, struct sg_error *err)
{
	struct spool_env env;
	struct spool_state_extra extra;
	enum spool_queue to;
	int rc = -1;

	if (spool_env_read(sp, from, id, &env, NULL, err) < 0)
		return -1;
	/* spool_env_read merged the state; read held_from again (cheap). */
	if (spool_state_load(sp, &env, &extra, err) < 0)
		goto out;
	if (from == SPOOL_Q_HOLD)
		to = release_target(&env, extra.held_from);
	else
		to = is_output(&env) ? SPOOL_Q_OUTGOING : SPOOL_Q_INCOMING;
	if (set_state_and_move(sp, &env, -1, from, to, err) < 0)
		goto out;
	sg_log_mail(SG_LOG_INFO, id, "released by admin, from=%s, to=%s",
		spool_queue_name(from), spool_queue_name(to));
	if (to_r != NULL)
		*to_r = to;
	rc = 0;
out:
	spool_env_free_fields(&env);
	return rc;
}

int spool_release(struct spool *sp, const char *id, enum spool_queue *to_r,
	struct sg_error *err)
{
	enum spool_queue q;

	if (find_existing(sp, id, &q, err) < 0)
		return -1;
	if (q != SPOOL_Q_HOLD) {
		sg_error_set(err, SG_E_INVAL, "%s: message is not on hold (it is in %s)", id,
			spool_queue_name(q));
		return -1;
	}
	return release_from(sp, id, q, to_r, err);
}

int spool_requeue(struct spool *sp, const char *id, enum spool_queue *to_r,
	struct sg_error *err)
{
	struct spool_env env;
	struct spool_state_extra extra;
	enum spool_queue q;
	int rc;

	if (find_existing(sp, id, &q, err) < 0)
		return -1;
	switch (q) {
	case SPOOL_Q_HOLD:
	case SPOOL_Q_ERROR:
		return release_from(sp, id, q, to_r, err);
	case SPOOL_Q_DEFERRED:
		break;
	default:
		sg_error_set(err, SG_E_INVAL, "%s: message is already queued (%s)", id,
			spool_queue_name(q));
		return -1;
	}
	if (spool_env_read(sp, q, id, &env, NULL, err) < 0)
		return -1;
	rc = spool_state_load(sp, &env, &extra, err);
	if (rc == 0)
		rc = set_state_and_move(sp, &env, extra.held_from, q, SPOOL_Q_OUTGOING, err);
	if (rc == 0) {
		sg_log_mail(SG_LOG_INFO, id, "requeued by admin, from=%s, to=outgoing",
			spool_queue_name(q));
		if (to_r != NULL)
			*to_r = SPOOL_Q_OUTGOING;
	}
	spool_env_free_fields(&env);
	return rc;
}

/* --------------------------------------------------------------- recovery */

/* unlink_all - remove every regular file in sub/ for which keep() is false. */
static int unlink_all(struct spool *sp, const char *sub, bool (*keep)(const char *),
	unsigned *count, struct sg_error *err)
{
	char path[4096], file[4096];
	struct dirent *de;
	DIR *d;

	if (spool_path(sp, sub, NULL, path, sizeof(path), err) < 0)
		return -1;
	d = opendir(path);
	if (d == NULL) {
		sg_error_set_errno(err, SG_E_IO, errno, "open %s", path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (keep != NULL && keep(de->d_name))
			continue;
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", path, de->d_name) >=
			sizeof(file))
			continue;
		if (unlink(file) == 0)
			(*count)++;
		else
			sg_log(SG_LOG_WARN, "spool recovery: cannot remove %s/%s: %s", sub,
				de->d_name, strerror(errno));
	}
	closedir(d);
	return 0;
}

static bool keep_valid_id(const char *name)
{
	return sg_mail_id_is_valid(name);
}

struct recover_scan {
	struct spool *sp;
	enum spool_queue q;
	unsigned damaged;
	unsigned orphans;
	unsigned inputs_done;
	unsigned outputs_dropped;
};

/* recover_check_cb - a damaged message file goes to error/ (logged); the
 * input of a one-output batch that was decided goes away. */
static int recover_check_cb(const char *id, void *arg)
{
	struct recover_scan *rs = arg;
	struct sg_error err, merr;
	struct spool_env env;

	if (spool_file_check(rs->sp, rs->q, id, &env, &err) == 0) {
		int r = rs->q == SPOOL_Q_INCOMING ? 0 :
			spool_batch_output_recover(rs->sp, rs->q, &env, &merr);

		if (r == 1)
			rs->inputs_done++;
		else if (r == 2)
			rs->outputs_dropped++;
		else if (r < 0)
			sg_log_mail(SG_LOG_ERR, id, "spool recovery: %s", merr.msg);
		spool_env_free_fields(&env);
		return 0;
	}
	if (err.code != SG_E_PARSE)
		return 0;
	if (spool_move(rs->sp, id, rs->q, SPOOL_Q_ERROR, &merr) < 0) {
		sg_log_mail(SG_LOG_ERR, id, "damaged spool file in %s, cannot move it to the "
			"error queue: %s (%s)", spool_queue_name(rs->q), merr.msg, err.msg);
		return 0;
	}
	sg_log_mail(SG_LOG_ERR, id, "damaged spool file moved from %s to the error queue: %s",
		spool_queue_name(rs->q), err.msg);
	rs->damaged++;
	return 0;
}

/* recover_state_cb - state of a message that no longer exists. */
static int recover_state_cb(const char *id, void *arg)
{
	struct recover_scan *rs = arg;
	enum spool_queue q;
	struct sg_error err;

	if (spool_find(rs->sp, id, &q, &err) != 0)
		return 0;
	if (spool_state_remove(rs->sp, id, &err) == 0)
		rs->orphans++;
	return 0;
}

int spool_recover_report(struct spool *sp, struct spool_recovery *r_r,
	struct sg_error *err)
{
	/* outgoing/ and deferred/ before incoming/: their batch outputs
	 * decide which inputs are already done. */
	static const enum spool_queue check[] = {SPOOL_Q_OUTGOING, SPOOL_Q_DEFERRED,
		SPOOL_Q_INCOMING};
	struct spool_recovery r;
	struct recover_scan rs;
	size_t i;

	memset(&r, 0, sizeof(r));
	memset(&rs, 0, sizeof(rs));
	rs.sp = sp;
	/* 1. Batches with a manifest are completed before tmp/ is emptied:
	 *    their outputs are still there. */
	if (spool_batch_recover(sp, &r.batches_completed, &r.batches_damaged, err) < 0)
		return -1;
	/* 2. Never-acknowledged files, and leftovers of atomic state writes. */
	if (unlink_all(sp, SPOOL_DIR_TMP, NULL, &r.tmp_removed, err) < 0 ||
		unlink_all(sp, SPOOL_DIR_FREE, NULL, &r.free_removed, err) < 0 ||
		unlink_all(sp, SPOOL_DIR_STATE, keep_valid_id, &r.tmp_removed, err) < 0)
		return -1;
	/* 3. Damaged message files go to error/; outputs whose input still
	 *    exists are checked (spool_batch_output_recover); inputs left in
	 *    done/ without an output go back to incoming/ before that is
	 *    checked. */
	for (i = 0; i < sizeof(check) / sizeof(check[0]); i++) {
		rs.q = check[i];
		if (rs.q == SPOOL_Q_INCOMING &&
			spool_batch_requeue_done(sp, &r.inputs_requeued, err) < 0)
			return -1;
		if (spool_list(sp, rs.q, recover_check_cb, &rs, err) < 0)
			return -1;
	}
	r.damaged = rs.damaged;
	r.batches_completed += rs.inputs_done;
	r.outputs_dropped = rs.outputs_dropped;
	/* 4. State files whose message is gone. */
	if (spool_list_dir(sp, SPOOL_DIR_STATE, recover_state_cb, &rs, err) < 0)
		return -1;
	r.orphan_states = rs.orphans;
	spool_pool_enable(sp);
	sg_log(SG_LOG_INFO, "spool recovery: tmp_removed=%u, batches_completed=%u, "
		"batches_damaged=%u, damaged_to_error=%u, orphan_states=%u, "
		"recycled_files_removed=%u, incomplete_outputs_removed=%u, "
		"inputs_requeued=%u", r.tmp_removed, r.batches_completed,
		r.batches_damaged, r.damaged, r.orphan_states, r.free_removed,
		r.outputs_dropped, r.inputs_requeued);
	if (r_r != NULL)
		*r_r = r;
	return 0;
}

int spool_recover(struct spool *sp, struct sg_error *err)
{
	return spool_recover_report(sp, NULL, err);
}
