/* policy_test.c - see policy_test.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy_test.h"
#include "../store/store_test_pg.h"

#ifdef POLICY_TEST_PG
#define IS_PG 1
#else
#define IS_PG 0
#endif

static struct store_test_env E;

bool ptest_is_pg(void)
{
	return IS_PG;
}

int ptest_group_setup(void **state)
{
	(void)state;
	return store_test_env_begin(&E, "policy", IS_PG);
}

int ptest_group_teardown(void **state)
{
	(void)state;
	store_test_env_end(&E);
	return 0;
}

int ptest_setup(void **state)
{
	struct ptest_fx *f = calloc(1, sizeof(*f));
	struct store_test_db t;

	if (f == NULL)
		return -1;
	if (store_test_db_open(&E, "sg_ptest", &t) < 0) {
		free(f);
		return -1;
	}
	f->db = t.db;
	memcpy(f->url, t.url, sizeof(f->url));
	memcpy(f->dbname, t.dbname, sizeof(f->dbname));
	memcpy(f->path, t.path, sizeof(f->path));
	f->p = policy_new(f->db, &(struct policy_opts){.hostname = "gw.example.net"});
	*state = f;
	return 0;
}

int ptest_teardown(void **state)
{
	struct ptest_fx *f = *state;
	struct store_test_db t;

	policy_free(&f->p);
	t = (struct store_test_db){.db = f->db};
	memcpy(t.dbname, f->dbname, sizeof(t.dbname));
	memcpy(t.path, f->path, sizeof(t.path));
	store_test_db_drop(&E, &t);
	free(f);
	return 0;
}

struct store *ptest_open2(struct ptest_fx *f)
{
	struct sg_error err;
	struct store *db = store_open(f->url, &err);

	if (db == NULL)
		fail_msg("open2: %s", err.msg);
	return db;
}

int ptest_set_err(struct policy *p, enum policy_kind kind, const char *name,
	const char *prop, const char *value, struct sg_error *err)
{
	struct policy_change ch = {prop, value};

	return policy_object_apply(p, kind, name, &ch, 1, err);
}

void ptest_set(struct policy *p, enum policy_kind kind, const char *name,
	const char *prop, const char *value)
{
	struct sg_error err;

	if (ptest_set_err(p, kind, name, prop, value, &err) < 0)
		fail_msg("set %s %s=%s: %s", name != NULL ? name : "global", prop,
			value != NULL ? value : "(unset)", err.msg);
}
