/*
 * mpa_stage.c - the stage table (STYLE §10, OpenSMTPD filter_execs). Each
 * stage works on ctx->group and returns an enum mpa_result; the runner
 * (mpa_run.c) logs and applies the fail-closed rules. Stages run in MPA
 * worker threads and must keep no state outside ctx.
 *
 * Order as in DESIGN "life of a message" step 3: DLP -> triggers ->
 * decrypt/verify (internal recipients) -> encrypt/sign or PDF (external) ->
 * notifications. Only the pass-through stage exists yet; the features insert
 * theirs before it.
 */
#include "mpa_int.h"

/* mpa_stage_pass - the group's output is the message as it is now (the
 * input itself when no earlier stage built another). */
static enum mpa_result mpa_stage_pass(struct mpa_ctx *ctx, struct sg_error *err)
{
	(void)err;
	if (ctx->group->action != MPA_ACT_PASS)
		return MPA_NEXT;
	return MPA_DONE;
}

const struct mpa_stage mpa_stages[] = {
	{"pass", mpa_stage_pass},
};
const size_t mpa_nstages = sizeof(mpa_stages) / sizeof(mpa_stages[0]);
