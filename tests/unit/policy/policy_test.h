/*
 * policy_test.h - fixtures shared by the policy tests: a fresh migrated
 * database per test (a SQLite file in a temp dir, or with POLICY_TEST_PG a
 * private PostgreSQL database on SG_TEST_PG_URL or on a server started with
 * scripts/test-pg) and a resolver on it.
 */
#ifndef SG_POLICY_TEST_H
#define SG_POLICY_TEST_H

#include <stdbool.h>

#include "lib/lib.h"
#include "store/store.h"
#include "policy/policy.h"

struct ptest_fx {
	struct store *db;
	struct policy *p;
	char url[768];
	char dbname[96];
	char path[512];
};

/* ptest_is_pg - this executable runs against PostgreSQL */
bool ptest_is_pg(void);
/* group setup/teardown: temp dir, PostgreSQL server when needed */
int ptest_group_setup(void **state);
int ptest_group_teardown(void **state);
/* per test: new database, migrated, store_init'ed, with *state = struct ptest_fx */
int ptest_setup(void **state);
int ptest_teardown(void **state);
/* ptest_open2 - a second connection + resolver on the same database */
struct store *ptest_open2(struct ptest_fx *f);

/* set/unset one property, asserting success; ptest_set_fail returns the error */
void ptest_set(struct policy *p, enum policy_kind kind, const char *name,
	const char *prop, const char *value);
int ptest_set_err(struct policy *p, enum policy_kind kind, const char *name,
	const char *prop, const char *value, struct sg_error *err);

#endif
