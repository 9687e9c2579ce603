/*
 * mpa.h - the message processing pipeline (DESIGN.md "life of a message").
 *
 * One struct mpa per worker thread. mpa_process_spooled takes a message from
 * incoming/, parses it (GMime, streaming), determines the originator
 * (From -> Sender -> envelope sender) and the envelope recipients, asks the
 * policy engine (src/policy) for every recipient's decision, groups the
 * recipients by identical decision, runs the stages per group and commits
 * every output message to outgoing/ through one spool batch, so a crash at
 * any point neither loses the message nor produces an output twice.
 *
 * Stages per group (mpa_stage.c): "edit" - the policy's message-level edits
 * (honoured force-encrypt/-sign trigger headers removed, subject trigger
 * removed from the subject) on a copy of its own, so outputs without edits
 * stay byte-identical to the input; "method" - dispatch by the decision's
 * method through ONE table in mpa_method.c ({method, name, function}):
 * plain -> sent as is; decrypt (internal recipients) -> sent as received
 * until the S/MIME module fills in its function; none (encryption required
 * but impossible, or mandatory against no_encryption) and smime/pdf while
 * their module is absent (function NULL) -> fail closed: the group gets
 * nothing, and an internal originator an "encryption failed" notification
 * (template encryption_failed, one per distinct reason) naming such
 * recipients and the reason, never the content (D-4). The S/MIME and PDF
 * features plug in by filling in their entry's function; the contract is
 * mpa_method_fn in mpa_int.h.
 *
 * Own mail (F-FLOW-7): generated messages carry X-Sealgate-Marker (HMAC
 * with the server secret, lib.h). An incoming message with envelope sender
 * <> whose marker verifies passes through unchanged to all its recipients
 * (no policy, no triggers, no notification); any other marker is removed
 * from every output and the message is processed as ordinary mail.
 *
 * Without a database (conf.db NULL: `sealgate process` without -c) there is
 * no policy (src/policy needs a store): every message passes through
 * unchanged with one output, as the factory policy would for recipients
 * without certificates.
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
	struct store *db;            /* this thread's connection (borrowed; must
	                                outlive the struct mpa); NULL = no policy:
	                                pure pass-through */
	uint64_t max_size;           /* after-filter size limit, 0 = none */
	/* Called by mpa_process_spooled with each output's mail ID once the
	 * outputs are committed to outgoing/ (the daemon hands them straight to
	 * delivery instead of finding them by a directory scan). May be NULL. */
	void (*on_output)(void *arg, const char *id);
	void *on_output_arg;
};

struct mpa;

/* mpa_new - a pipeline; with conf->db it owns a policy resolver (changes
 * made elsewhere are seen within a second) and a PKI context on that
 * connection. NULL + err on failure. mpa_free before closing conf->db. */
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
 * (the daemon's work queue guarantees this). Temporary: a database error
 * while deciding (policy, certificates, relay domains) among others.
 * Permanent failures (error/): a damaged spool file, an envelope without
 * recipients or with a recipient or sender that is not an address, any
 * other policy error (e.g. a recipient the policy cannot read as an
 * address), a stage failing closed. Recipients whose policy requires
 * encryption that cannot be done get nothing (not an error: the message
 * leaves incoming/). An output larger than conf->max_size is not sent
 * (SPEC D-7) either. For both, an internal originator (domain in the MTA
 * relay domains; needs conf->db) gets a notification per reason (kind
 * notification, envelope sender <>, From system_mail_from, with the
 * own-mail marker). One log line per processed
 * message: "<id>: from=<...>, to=<...>,..., action=A[,B...], outputs=N"
 * with the distinct group actions: what was sent (pass = as received or
 * with the policy's edits, smime-sign, smime-encrypt, smime-sign-encrypt,
 * already-encrypted, decrypt, verify, smime-info, strip-info, pdf,
 * pdf-signed) or why nothing was (encrypt-failed, drop = size).
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
