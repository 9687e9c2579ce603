/*
 * spool_state.c - the mutable delivery state of a message, state/<id>:
 * attempts, next attempt, last error, per-recipient status and last reply,
 * and the queue a held message came from. The message file itself is
 * immutable; this small file is replaced atomically (sg_file_write_atomic)
 * by delivery workers and the CLI. Format in spool_int.h; every record is
 * bounded and the file is capped at SPOOL_STATE_MAX.
 */
#include "spool_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_STATE_DAMAGED "damaged state file"

static int state_damaged(struct sg_error *err, const char *why)
{
	sg_error_set(err, SG_E_PARSE, SPOOL_STATE_DAMAGED ": %s", why);
	return -1;
}

/* state_put_rec - append one record; long strings are cut to SPOOL_FIELD_MAX. */
static int state_put_rec(struct sg_buf *b, enum spool_rec type, const void *data,
	size_t len, struct sg_error *err)
{
	unsigned char hdr[SPOOL_REC_HDR_LEN];

	hdr[0] = (unsigned char)type;
	spool_put_u32(hdr + 1, (uint32_t)len);
	if (sg_buf_append(b, hdr, sizeof(hdr), err) < 0)
		return -1;
	return sg_buf_append(b, data, len, err);
}

static size_t cut_len(const char *s)
{
	size_t n = strlen(s);

	return n > SPOOL_FIELD_MAX ? SPOOL_FIELD_MAX : n;
}

/* state_serialize - env's state and extra into b. */
static int state_serialize(struct sg_buf *b, const struct spool_env *env,
	const struct spool_state_extra *extra, struct sg_error *err)
{
	unsigned char v[8];
	unsigned char rec[6 + SPOOL_FIELD_MAX];
	size_t i;

	if (sg_buf_append(b, SPOOL_STATE_MAGIC, SPOOL_MAGIC_LEN, err) < 0 ||
		state_put_rec(b, SPOOL_REC_ID, env->id, SG_MAIL_ID_LEN, err) < 0)
		return -1;
	spool_put_u32(v, env->attempts);
	if (state_put_rec(b, SPOOL_REC_ATTEMPTS, v, 4, err) < 0)
		return -1;
	spool_put_u64(v, (uint64_t)env->next_attempt);
	if (state_put_rec(b, SPOOL_REC_NEXT, v, 8, err) < 0)
		return -1;
	if (env->last_error != NULL &&
		state_put_rec(b, SPOOL_REC_LAST_ERROR, env->last_error,
			cut_len(env->last_error), err) < 0)
		return -1;
	if (extra != NULL && extra->held_from >= 0) {
		v[0] = (unsigned char)extra->held_from;
		if (state_put_rec(b, SPOOL_REC_HELD_FROM, v, 1, err) < 0)
			return -1;
	}
	for (i = 0; i < env->nrcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];
		size_t rlen = r->last_reply != NULL ? cut_len(r->last_reply) : 0;

		if (r->status == SPOOL_RCPT_PENDING && r->last_reply == NULL)
			continue;
		spool_put_u32(rec, (uint32_t)i);
		rec[4] = (unsigned char)r->status;
		rec[5] = r->last_reply != NULL;
		if (rlen > 0)
			memcpy(rec + 6, r->last_reply, rlen);
		if (state_put_rec(b, SPOOL_REC_RCPT_STATE, rec, 6 + rlen, err) < 0)
			return -1;
	}
	return 0;
}

static int state_str(const unsigned char *d, size_t len, char **out_r,
	struct sg_error *err)
{
	if (len > SPOOL_FIELD_MAX)
		return state_damaged(err, "field too long");
	if (memchr(d, '\0', len) != NULL)
		return state_damaged(err, "NUL byte in field");
	free(*out_r);
	*out_r = sg_xstrndup((const char *)d, len);
	return 0;
}

/* state_rcpt - 'r' record: u32 index, u8 status, u8 has-reply, reply. */
static int state_rcpt(struct spool_env *env, const unsigned char *d, size_t len,
	struct sg_error *err)
{
	uint32_t idx;
	struct spool_rcpt *r;

	if (len < 6 || d[4] > SPOOL_RCPT_FAILED || d[5] > 1 || (d[5] == 0 && len != 6))
		return state_damaged(err, "bad recipient record");
	if (env == NULL)
		return 0;
	idx = spool_get_u32(d);
	if (idx >= env->nrcpts)
		return state_damaged(err, "recipient index out of range");
	r = &env->rcpts[idx];
	r->status = (enum spool_rcpt_status)d[4];
	if (d[5] != 0)
		return state_str(d + 6, len - 6, &r->last_reply, err);
	return 0;
}

/* spool_state_parse - merge state bytes into env (NULL: only extra is read)
 * and extra. The id record must match env->id when env is given. */
int spool_state_parse(const unsigned char *data, size_t len, struct spool_env *env,
	struct spool_state_extra *extra, struct sg_error *err)
{
	size_t pos = SPOOL_MAGIC_LEN;
	bool have_id = false;
	char id[SG_MAIL_ID_LEN + 1];

	extra->held_from = -1;
	if (len < SPOOL_MAGIC_LEN || memcmp(data, SPOOL_STATE_MAGIC, SPOOL_MAGIC_LEN) != 0)
		return state_damaged(err, "bad magic");
	while (pos < len) {
		const unsigned char *d;
		uint32_t rlen;
		unsigned type;

		if (len - pos < SPOOL_REC_HDR_LEN)
			return state_damaged(err, "truncated record");
		type = data[pos];
		rlen = spool_get_u32(data + pos + 1);
		pos += SPOOL_REC_HDR_LEN;
		if (rlen > SPOOL_REC_MAX || rlen > len - pos)
			return state_damaged(err, "record too long or truncated");
		d = data + pos;
		pos += rlen;
		switch (type) {
		case SPOOL_REC_ID:
			if (rlen != SG_MAIL_ID_LEN)
				return state_damaged(err, "bad id record");
			memcpy(id, d, SG_MAIL_ID_LEN);
			id[SG_MAIL_ID_LEN] = '\0';
			if (!sg_mail_id_is_valid(id) || (env != NULL && strcmp(id, env->id) != 0))
				return state_damaged(err, "id does not match");
			have_id = true;
			break;
		case SPOOL_REC_ATTEMPTS:
			if (rlen != 4)
				return state_damaged(err, "bad attempts record");
			if (env != NULL)
				env->attempts = spool_get_u32(d);
			break;
		case SPOOL_REC_NEXT:
			if (rlen != 8)
				return state_damaged(err, "bad next-attempt record");
			if (env != NULL)
				env->next_attempt = (int64_t)spool_get_u64(d);
			break;
		case SPOOL_REC_LAST_ERROR:
			if (env != NULL) {
				if (state_str(d, rlen, &env->last_error, err) < 0)
					return -1;
			} else if (rlen > SPOOL_FIELD_MAX) {
				return state_damaged(err, "field too long");
			}
			break;
		case SPOOL_REC_HELD_FROM:
			if (rlen != 1 || d[0] >= SPOOL_Q__COUNT)
				return state_damaged(err, "bad held-from record");
			extra->held_from = d[0];
			break;
		case SPOOL_REC_RCPT_STATE:
			if (state_rcpt(env, d, rlen, err) < 0)
				return -1;
			break;
		default:
			return state_damaged(err, "unknown record type");
		}
	}
	if (!have_id)
		return state_damaged(err, "missing id record");
	return 0;
}

/* state_read - the raw state file of id; 1 read, 0 absent, -1 error. */
static int state_read(struct spool *sp, const char *id, char **data_r, size_t *len_r,
	struct sg_error *err)
{
	char path[4096];
	struct sg_error e2;

	if (spool_path(sp, SPOOL_DIR_STATE, id, path, sizeof(path), err) < 0)
		return -1;
	if (sg_file_read(path, SPOOL_STATE_MAX, data_r, len_r, &e2) < 0) {
		if (e2.code == SG_E_NOTFOUND)
			return 0;
		if (err != NULL)
			*err = e2;
		return -1;
	}
	return 1;
}

/* state_reset - env's delivery state as for a message never tried. */
static void state_reset(struct spool_env *env, struct spool_state_extra *extra)
{
	size_t i;

	extra->held_from = -1;
	env->attempts = 0;
	env->next_attempt = 0;
	free(env->last_error);
	env->last_error = NULL;
	for (i = 0; i < env->nrcpts; i++) {
		env->rcpts[i].status = SPOOL_RCPT_PENDING;
		free(env->rcpts[i].last_reply);
		env->rcpts[i].last_reply = NULL;
	}
}

/* spool_state_load - merge state/<env->id> into env; absent = fresh state;
 * damaged = fresh state, logged. -1 only on I/O errors. */
int spool_state_load(struct spool *sp, struct spool_env *env,
	struct spool_state_extra *extra, struct sg_error *err)
{
	struct sg_error perr;
	char *data = NULL;
	size_t len = 0;
	int rc;

	extra->held_from = -1;
	rc = state_read(sp, env->id, &data, &len, err);
	if (rc <= 0)
		return rc;
	rc = spool_state_parse((const unsigned char *)data, len, env, extra, &perr);
	free(data);
	if (rc < 0) {
		/* The message file is intact; a damaged state (disk corruption:
		 * the file is replaced atomically) must not make it unreadable,
		 * or it could never be delivered or requeued. Start afresh:
		 * recipients already delivered may get a duplicate, nothing is
		 * lost. The next spool_state_save replaces the file. */
		sg_log_mail(SG_LOG_ERR, env->id, "state/%s ignored: %s", env->id, perr.msg);
		state_reset(env, extra);
	}
	return 0;
}

/* spool_state_write - replace state/<id> atomically (one hook step). */
int spool_state_write(struct spool *sp, const struct spool_env *env,
	const struct spool_state_extra *extra, struct sg_error *err)
{
	struct sg_buf b;
	char path[4096];
	int rc = -1;

	sg_buf_init(&b, SPOOL_STATE_MAX);
	/* A batch output whose input still waits in done/ becomes durable on
	 * its own before its state changes (spool_batch.c). */
	if (spool_batch_settle(sp, env, err) < 0 ||
		spool_path(sp, SPOOL_DIR_STATE, env->id, path, sizeof(path), err) < 0)
		goto out;
	if (state_serialize(&b, env, extra, err) < 0) {
		sg_error_prefix(err, "%s: state: ", env->id);
		goto out;
	}
	if (spool_io_inject() < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: write state", env->id);
		goto out;
	}
	rc = sg_file_write_atomic(path, b.data, b.len, 0600, err);
out:
	sg_buf_deinit(&b);
	return rc;
}

int spool_state_save(struct spool *sp, const struct spool_env *env,
	struct sg_error *err)
{
	struct spool_state_extra extra = {.held_from = -1};
	char *data = NULL;
	size_t len = 0;
	int rc;

	if (spool_check_id(env->id, err) < 0)
		return -1;
	/* Keep the held-from queue (set by spool_hold) across saves. A damaged
	 * old state is simply replaced. */
	rc = state_read(sp, env->id, &data, &len, err);
	if (rc < 0)
		return -1;
	if (rc > 0 && spool_state_parse((const unsigned char *)data, len, NULL, &extra,
		NULL) < 0)
		extra.held_from = -1;
	free(data);
	return spool_state_write(sp, env, &extra, err);
}

int spool_state_remove(struct spool *sp, const char *id, struct sg_error *err)
{
	char path[4096];

	if (spool_path(sp, SPOOL_DIR_STATE, id, path, sizeof(path), err) < 0)
		return -1;
	if (unlink(path) < 0 && errno != ENOENT) {
		sg_error_set_errno(err, SG_E_IO, errno, "%s: remove state", id);
		return -1;
	}
	return 0;
}
