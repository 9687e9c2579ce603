/* fuzz_pki_db.h - a throw-away SQLite database + KEK for the pki fuzzers that
 * need a store (PKCS#12 and CRL import); created once, removed at exit. */
#ifndef FUZZ_PKI_DB_H
#define FUZZ_PKI_DB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pki/pki.h"
#include "pki/pki_key.h"

static struct {
	char dir[64];
	struct store *db;
	struct pki *pki;
	struct pki_keys *keys;
} fz;

static void fz_cleanup(void)
{
	static const char *const files[] = {"db", "db-wal", "db-shm", "pki.kek"};
	char p[128];
	size_t i;

	pki_keys_close(&fz.keys);
	pki_close(&fz.pki);
	store_close(&fz.db);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fz.dir, files[i]);
		unlink(p);
	}
	rmdir(fz.dir);
}

static struct pki *fz_pki(void)
{
	struct sg_error err;
	char url[128];

	if (fz.pki != NULL)
		return fz.pki;
	snprintf(fz.dir, sizeof(fz.dir), "/tmp/sg-fuzz-pki-XXXXXX");
	if (mkdtemp(fz.dir) == NULL)
		abort();
	snprintf(url, sizeof(url), "sqlite:%s/db", fz.dir);
	fz.db = store_open(url, &err);
	if (fz.db == NULL || store_migrate(fz.db, &err) < 0)
		abort();
	fz.pki = pki_open(fz.db, &err);
	fz.keys = pki_keys_open(fz.pki, fz.dir, &err);
	if (fz.pki == NULL || fz.keys == NULL)
		abort();
	sg_log_set_level(SG_LOG_ERR);
	atexit(fz_cleanup);
	return fz.pki;
}

#endif
