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
 * mpa_process_stream - run the pipeline on the message in fd (whole file) with
 * envelope env (env->id may be empty: a new ID is made); every output is
 * passed to fn in order. 0 on success, -1 with err.
 */
int mpa_process_stream(struct mpa *mpa, const struct spool_env *env, int fd,
	mpa_output_fn *fn, void *arg, struct sg_error *err);

#endif
