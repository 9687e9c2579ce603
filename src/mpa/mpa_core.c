/*
 * mpa_core.c - the pipeline object: one struct mpa per worker thread (it
 * holds only borrowed configuration, so creating one is cheap).
 */
#include "mpa_int.h"

#include <stdlib.h>
#include <string.h>

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
	return mpa;
}

void mpa_free(struct mpa **mp)
{
	if (*mp == NULL)
		return;
	free(*mp);
	*mp = NULL;
}
