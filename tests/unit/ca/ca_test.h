/*
 * ca_test.h - helpers for the ca tests: a fresh database (SQLite in a temp
 * dir; PostgreSQL when built with CA_TEST_PG, via SG_TEST_PG_URL or a private
 * server started with scripts/test-pg), a pki context, its key store and a ca
 * context per test.
 */
#ifndef CA_TEST_H
#define CA_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ca/ca.h"

struct cenv {
	char dir[256];
	char url[768];
	char dbname[96];
	struct store *db;
	struct pki *pki;
	struct pki_keys *keys;
	struct ca *ca;
};

int cenv_group_setup(void **state);
int cenv_group_teardown(void **state);
int cenv_setup(void **state);
int cenv_teardown(void **state);
/* cenv_ca - create a CA named name (asserts) with key type k and digest md */
void cenv_ca(struct cenv *e, const char *name, enum ca_key_type k, enum ca_digest md);
/* cenv_issue - issue for email from the default CA (asserts) */
void cenv_issue(struct cenv *e, const char *email, struct ca_issued *r);
/* cenv_cert - load a stored certificate (asserts found) */
struct pki_cert *cenv_cert(struct cenv *e, const char *thumb);

#endif
