/*
 * mpa.h - the message processing pipeline (DESIGN.md "life of a message").
 *
 * One struct mpa per worker thread. mpa_process_spooled takes a message from
 * incoming/, parses it (GMime, streaming), determines the originator
 * (From -> Sender -> envelope sender) and the envelope recipients, groups the
 * recipients by identical decision, runs the stages (pass-through for now;
 * policy, S/MIME, PDF, DLP plug in here) and commits every output message to
 * outgoing/ through one spool batch, so a crash at any point neither loses the
 * message nor produces an output twice.
 *
 * `sealgate process` runs the same code offline with mpa_process_stream: the
 * outputs go to a callback instead of the spool.
 */
#ifndef SG_MPA_H
#define SG_MPA_H

#include <stdio.h>

#include "lib/lib.h"
#include "spool/spool.h"
#include "store/store.h"

struct mpa_conf {
	const struct sg_config *cfg; /* hostname, data_dir, ... (borrowed) */
	struct store *db;            /* may be NULL (no policy lookups yet) */
	uint64_t max_size;           /* after-filter size limit, 0 = none */
};

struct mpa;

struct mpa *mpa_new(const struct mpa_conf *conf, struct sg_error *err);
void mpa_free(struct mpa **mp);

/*
 * mpa_process_spooled - process incoming/<id>. Returns 0 when the message has
 * left incoming/ (outputs committed to outgoing/, or the message moved to
 * error/ because processing failed permanently: fail closed, logged with the
 * reason); -1 with err on a temporary failure (database down, disk full): the
 * message stays in incoming/ and is retried later. A message already handled
 * by an earlier (crashed) run is completed, not processed again.
 *
 * Callers must not process the same id in two threads or processes at once
 * (the daemon's work queue guarantees this). Permanent failures (error/):
 * a damaged spool file, an envelope without recipients or with a recipient
 * or sender that is not an address, a stage failing closed. An output larger
 * than conf->max_size is not sent (SPEC D-7): its recipients get nothing and
 * an internal originator (domain in the MTA relay domains; needs conf->db)
 * gets a notification (kind notification, envelope sender <>). One log line
 * per processed message: "<id>: from=<...>, to=<...>,..., action=pass,
 * outputs=N".
 */
int mpa_process_spooled(struct mpa *mpa, struct spool *sp, const char *id,
	struct sg_error *err);

/* One output of the pipeline, for mpa_process_stream's callback. */
struct mpa_output {
	const struct spool_env *env;  /* from, rcpts, kind */
	int fd;                       /* body: read len bytes from offset */
	uint64_t offset, len;
};
typedef int mpa_output_fn(void *arg, const struct mpa_output *out, struct sg_error *err);

/*
 * mpa_process_stream - run the pipeline on the message in fd (whole file,
 * a regular file) with envelope env (env->id may be empty: a new ID is
 * made); every output is passed to fn in order, with a fresh env->id and
 * parent_id = the input's ID. out->fd is valid only during the call (an
 * unchanged output is fd itself; read it with pread). 0 on success, -1 with
 * err: fn's error, or what mpa_process_spooled would treat as temporary or
 * permanent (the caller decides; nothing was kept).
 */
int mpa_process_stream(struct mpa *mpa, const struct spool_env *env, int fd,
	mpa_output_fn *fn, void *arg, struct sg_error *err);

#endif
