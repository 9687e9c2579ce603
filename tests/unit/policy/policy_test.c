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

static struct {
	char tmpdir[256];
	char admin_url[512];
	bool own_server;
	unsigned seq;
} E;

bool ptest_is_pg(void)
{
	return IS_PG;
}

int ptest_group_setup(void **state)
{
	const char *env = getenv("SG_TEST_PG_URL");
	char dir[300];

	(void)state;
	snprintf(E.tmpdir, sizeof(E.tmpdir), "/tmp/sg-test-policy-XXXXXX");
	if (mkdtemp(E.tmpdir) == NULL)
		return -1;
	if (!IS_PG)
		return 0;
	if (env != NULL && *env != '\0') {
		snprintf(E.admin_url, sizeof(E.admin_url), "%s", env);
		return 0;
	}
	chmod(E.tmpdir, 0755);
	snprintf(dir, sizeof(dir), "%s/pg", E.tmpdir);
	if (pg_server_start(dir, E.admin_url, sizeof(E.admin_url)) < 0)
		return -1;
	E.own_server = true;
	return 0;
}

int ptest_group_teardown(void **state)
{
	char *rm[] = {"rm", "-rf", E.tmpdir, NULL};
	char dir[300];

	(void)state;
	if (E.own_server) {
		snprintf(dir, sizeof(dir), "%s/pg", E.tmpdir);
		pg_server_stop(dir);
	}
	run_cmd(rm, NULL, 0);
	return 0;
}

int ptest_setup(void **state)
{
	struct ptest_fx *f = calloc(1, sizeof(*f));
	struct sg_error err;

	if (f == NULL)
		return -1;
	if (!IS_PG) {
		snprintf(f->path, sizeof(f->path), "%s/t%u.db", E.tmpdir, E.seq++);
		snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	} else {
		unsigned char r[4];
		char hex[9];

		sg_random_bytes(r, sizeof(r), NULL);
		sg_hex(hex, r, sizeof(r));
		snprintf(f->dbname, sizeof(f->dbname), "sg_ptest_%d_%u_%s", (int)getpid(),
			E.seq++, hex);
		if (pg_db_create(E.admin_url, f->dbname) < 0)
			return -1;
		pg_url_with_db(E.admin_url, f->dbname, f->url, sizeof(f->url));
	}
	f->db = store_open(f->url, &err);
	if (f->db == NULL || store_init(f->db, &err) < 0) {
		fprintf(stderr, "store %s: %s\n", f->url, err.msg);
		return -1;
	}
	f->p = policy_new(f->db, &(struct policy_opts){.hostname = "gw.example.net"});
	*state = f;
	return 0;
}

int ptest_teardown(void **state)
{
	struct ptest_fx *f = *state;

	policy_free(&f->p);
	store_close(&f->db);
	if (IS_PG)
		pg_db_drop(E.admin_url, f->dbname);
	else
		unlink(f->path);
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
