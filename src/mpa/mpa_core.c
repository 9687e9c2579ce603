/*
 * mpa_core.c - the pipeline object: one struct mpa per worker thread. With a
 * database it owns that thread's policy resolver (its cache lives as long as
 * the worker) and PKI context, both on the worker's own store connection;
 * without one (`sealgate process` without -c) the pipeline is a pure
 * pass-through.
 */
#include "mpa_int.h"
#include "pki/pki_key.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Policy changes made elsewhere (CLI, admin API) are seen within this time. */
#define MPA_POLICY_SYNC_MS 1000

struct mpa *mpa_new(const struct mpa_conf *conf, struct sg_error *err)
{
	struct mpa *mpa;
	const char *host = "localhost";

	if (conf == NULL) {
		sg_error_set(err, SG_E_INVAL, "mpa: no configuration");
		return NULL;
	}
	mpa = sg_xcalloc(1, sizeof(*mpa));
	mpa->conf = *conf;
	if (conf->cfg != NULL && conf->cfg->hostname != NULL && conf->cfg->hostname[0] != '\0')
		host = conf->cfg->hostname;
	sg_strlcpy(mpa->hostname, host, sizeof(mpa->hostname));
	if (conf->db == NULL)
		return mpa;
	mpa->pki = pki_open(conf->db, err);
	if (mpa->pki == NULL) {
		sg_error_prefix(err, "mpa: pki: ");
		mpa_free(&mpa);
		return NULL;
	}
	mpa->policy = policy_new(conf->db, &(struct policy_opts){
		.hostname = mpa->hostname, .sync_interval_ms = MPA_POLICY_SYNC_MS});
	return mpa;
}

void mpa_free(struct mpa **mp)
{
	struct mpa *mpa = *mp;

	if (mpa == NULL)
		return;
	while (mpa->nscratch > 0)
		close(mpa->scratch[--mpa->nscratch]);
	policy_free(&mpa->policy);
	pki_keys_close(&mpa->keys);
	pki_close(&mpa->pki);
	free(mpa);
	*mp = NULL;
}
