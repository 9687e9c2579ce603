/*
 * ca_test.c - see ca_test.h.
 */
#include "ca_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../store/store_test_pg.h"

#ifdef CA_TEST_PG
#define IS_PG 1
#else
#define IS_PG 0
#endif

static struct {
	char tmp[128];
	char admin_url[512];
	unsigned seq;
	bool own_server;
} G;

int cenv_group_setup(void **state)
{
	const char *env = getenv("SG_TEST_PG_URL");
	char dir[300];

	(void)state;
	snprintf(G.tmp, sizeof(G.tmp), "/tmp/sg-test-ca-XXXXXX");
	if (mkdtemp(G.tmp) == NULL)
		return -1;
	if (!IS_PG)
		return 0;
	if (env != NULL && *env != '\0') {
		snprintf(G.admin_url, sizeof(G.admin_url), "%s", env);
		return 0;
	}
	chmod(G.tmp, 0755);
	snprintf(dir, sizeof(dir), "%s/pg", G.tmp);
	if (pg_server_start(dir, G.admin_url, sizeof(G.admin_url)) < 0)
		return -1;
	G.own_server = true;
	return 0;
}

int cenv_group_teardown(void **state)
{
	char *rm[] = {"rm", "-rf", G.tmp, NULL};
	char dir[300];

	(void)state;
	if (G.own_server) {
		snprintf(dir, sizeof(dir), "%s/pg", G.tmp);
		pg_server_stop(dir);
	}
	run_cmd(rm, NULL, 0);
	return 0;
}

int cenv_setup(void **state)
{
	struct cenv *e = calloc(1, sizeof(*e));
	struct sg_error err;

	if (e == NULL)
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/t%u", G.tmp, G.seq++);
	if (mkdir(e->dir, 0700) < 0)
		return -1;
	if (!IS_PG) {
		snprintf(e->url, sizeof(e->url), "sqlite:%s/db", e->dir);
	} else {
		unsigned char r[4];
		char hex[9];

		sg_random_bytes(r, sizeof(r), NULL);
		sg_hex(hex, r, sizeof(r));
		snprintf(e->dbname, sizeof(e->dbname), "sg_test_ca_%d_%u_%s", (int)getpid(),
			G.seq, hex);
		if (pg_db_create(G.admin_url, e->dbname) < 0)
			return -1;
		pg_url_with_db(G.admin_url, e->dbname, e->url, sizeof(e->url));
	}
	e->db = store_open(e->url, &err);
	if (e->db == NULL || store_migrate(e->db, &err) < 0) {
		fprintf(stderr, "store %s: %s\n", e->url, err.msg);
		return -1;
	}
	e->pki = pki_open(e->db, &err);
	e->keys = e->pki != NULL ? pki_keys_open(e->pki, e->dir, &err) : NULL;
	e->ca = e->keys != NULL ? ca_open(e->pki, e->keys, &err) : NULL;
	if (e->ca == NULL) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	*state = e;
	return 0;
}

int cenv_teardown(void **state)
{
	struct cenv *e = *state;

	ca_close(&e->ca);
	pki_keys_close(&e->keys);
	pki_close(&e->pki);
	store_close(&e->db);
	if (IS_PG && e->dbname[0] != '\0')
		pg_db_drop(G.admin_url, e->dbname);
	free(e);
	return 0;
}

void cenv_ca(struct cenv *e, const char *name, enum ca_key_type k, enum ca_digest md)
{
	struct ca_create_opts o;
	struct sg_error err;

	memset(&o, 0, sizeof(o));
	o.name = name;
	o.key = k;
	o.md = md;
	o.root.org = "Example Org";
	if (ca_create(e->ca, &o, NULL, &err) < 0)
		fail_msg("ca_create %s: %s", name, err.msg);
}

void cenv_issue(struct cenv *e, const char *email, struct ca_issued *r)
{
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;
	struct sg_error err;

	o.subject.email = email;
	if (ca_issue(e->ca, &o, r, &err) < 0)
		fail_msg("ca_issue %s: %s", email, err.msg);
}

struct pki_cert *cenv_cert(struct cenv *e, const char *thumb)
{
	struct pki_cert *c = NULL;
	struct sg_error err;

	if (pki_cert_get(e->pki, thumb, &c, &err) != 1)
		fail_msg("certificate %.16s not found", thumb);
	return c;
}
