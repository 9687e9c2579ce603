/*
 * mpa_stream.c - mpa_process_stream: the same pipeline as the daemon on a
 * message in a file, outputs to a callback (`sealgate process`, tests).
 *
 * Runs in the caller's thread. An unmodified output is handed over as the
 * input file itself (no copy); a changed or generated one is written to an
 * unlinked temporary file ($TMPDIR or /tmp) first, so memory does not grow
 * with the message size.
 */
#include "mpa_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mpa_stream_sink {
	struct mime_msg *input;
	int fd;
	uint64_t size;
	mpa_output_fn *fn;
	void *arg;
};

/* mpa_tmpfile - an anonymous temporary file for one output. */
static int mpa_tmpfile(struct sg_error *err)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* file systems without O_TMPFILE */
	path = sg_xasprintf("%s/sealgate-mpa.XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		(void)unlink(path);
	else
		sg_error_set_errno(err, SG_E_IO, errno, "temporary file in %s", dir);
	free(path);
	return fd;
}

static int mpa_stream_emit(void *arg, const struct spool_env *env, struct mime_msg *msg,
	uint64_t max, struct sg_error *err)
{
	struct mpa_stream_sink *s = arg;
	struct spool_env oenv;
	struct mpa_output out;
	uint64_t len = 0;
	int fd = -1, rc = -1;

	/* each output gets its own ID, as in the spool */
	oenv = *env;
	sg_mail_id_new(oenv.id);
	out.env = &oenv;
	if (msg == s->input && !mime_msg_is_modified(msg)) {
		if (max > 0 && s->size > max) {
			sg_error_set(err, SG_E_LIMIT, "message larger than %ju bytes",
				(uintmax_t)max);
			return -1;
		}
		out.fd = s->fd;
		out.offset = 0;
		out.len = s->size;
		return s->fn(s->arg, &out, err);
	}
	fd = mpa_tmpfile(err);
	if (fd < 0)
		return -1;
	if (mime_msg_write_fd(msg, fd, max, &len, err) < 0)
		goto out;
	out.fd = fd;
	out.offset = 0;
	out.len = len;
	rc = s->fn(s->arg, &out, err);
out:
	close(fd);
	return rc;
}

int mpa_process_stream(struct mpa *mpa, const struct spool_env *env, int fd,
	mpa_output_fn *fn, void *arg, struct sg_error *err)
{
	struct mpa_stream_sink sink_arg;
	struct mpa_sink sink = {mpa_stream_emit, &sink_arg};
	struct mpa_ctx ctx;
	struct mime_msg *mm = NULL;
	struct stat st;
	char id[SG_MAIL_ID_LEN + 1];
	enum mpa_result r;

	memset(&ctx, 0, sizeof(ctx));
	memset(&sink_arg, 0, sizeof(sink_arg));
	if (env == NULL || fn == NULL) {
		sg_error_set(err, SG_E_INVAL, "mpa: no envelope or output callback");
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "mpa: fstat input");
		return -1;
	}
	if (sg_mail_id_is_valid(env->id))
		sg_strlcpy(id, env->id, sizeof(id));
	else
		sg_mail_id_new(id);
	mm = mime_msg_parse_fd(fd, 0, (uint64_t)st.st_size, err);
	if (mm == NULL)
		return -1;
	sink_arg.input = mm;
	sink_arg.fd = fd;
	sink_arg.size = (uint64_t)st.st_size;
	sink_arg.fn = fn;
	sink_arg.arg = arg;
	ctx.mpa = mpa;
	ctx.id = id;
	ctx.env = env;
	ctx.msg = mm;
	r = mpa_run(&ctx, &sink, err);
	if (r == MPA_DONE)
		mpa_log_done(&ctx);
	else
		sg_log_mail(SG_LOG_ERR, id, "processing failed: %s", err->msg);
	mpa_ctx_deinit(&ctx);
	mime_msg_free(&mm);
	return r == MPA_DONE ? 0 : -1;
}
