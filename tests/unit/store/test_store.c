/*
 * test_store.c - the store API, table-driven, against one backend per build:
 * test_store_sqlite (STORE_TEST_PG undefined, label unit) uses a file in a
 * temp dir; test_store_pg (STORE_TEST_PG=1, label e2e) uses SG_TEST_PG_URL or
 * starts its own server with scripts/test-pg. Every test gets a fresh
 * database: a new file, or CREATE DATABASE sg_test_<pid>_<n>_<random> dropped
 * afterwards, so parallel runs on one server do not interfere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/lib.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store_test_pg.h"

#ifdef STORE_TEST_PG
#define IS_PG 1
#else
#define IS_PG 0
#endif

static struct {
	char tmpdir[256];
	char admin_url[512];  /* PG: server URL (its own database) */
	bool own_server;
	unsigned seq;
} E;

struct fx {
	struct store *db;
	char url[768];
	char dbname[96];
	char path[512];  /* SQLite file */
};

static int group_setup(void **state)
{
	const char *env = getenv("SG_TEST_PG_URL");

	(void)state;
	snprintf(E.tmpdir, sizeof(E.tmpdir), "/tmp/sg-test-store-XXXXXX");
	if (mkdtemp(E.tmpdir) == NULL)
		return -1;
	if (!IS_PG)
		return 0;
	if (env != NULL && *env != '\0') {
		snprintf(E.admin_url, sizeof(E.admin_url), "%s", env);
		return 0;
	}
	/* No shared server: start our own (postgres must reach the dir). */
	{
		char dir[300];

		chmod(E.tmpdir, 0755);
		snprintf(dir, sizeof(dir), "%s/pg", E.tmpdir);
		if (pg_server_start(dir, E.admin_url, sizeof(E.admin_url)) < 0)
			return -1;
		E.own_server = true;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char *rm[] = {"rm", "-rf", E.tmpdir, NULL};

	(void)state;
	if (E.own_server) {
		char dir[300];

		snprintf(dir, sizeof(dir), "%s/pg", E.tmpdir);
		pg_server_stop(dir);
	}
	run_cmd(rm, NULL, 0);
	return 0;
}

/* fx_url - a URL for a fresh, empty database */
static int fx_make(struct fx *f)
{
	if (!IS_PG) {
		snprintf(f->path, sizeof(f->path), "%s/t%u.db", E.tmpdir, E.seq++);
		snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
		return 0;
	}
	{
		unsigned char r[4];
		char hex[9];

		sg_random_bytes(r, sizeof(r), NULL);
		sg_hex(hex, r, sizeof(r));
		snprintf(f->dbname, sizeof(f->dbname), "sg_test_%d_%u_%s", (int)getpid(),
			E.seq++, hex);
		if (pg_db_create(E.admin_url, f->dbname) < 0)
			return -1;
		pg_url_with_db(E.admin_url, f->dbname, f->url, sizeof(f->url));
	}
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sg_error err;

	if (f == NULL || fx_make(f) < 0)
		return -1;
	f->db = store_open(f->url, &err);
	if (f->db == NULL) {
		fprintf(stderr, "store_open %s: %s\n", f->url, err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(&f->db);
	if (IS_PG)
		pg_db_drop(E.admin_url, f->dbname);
	else
		unlink(f->path);
	free(f);
	return 0;
}

/* exec_ok - store_exec with tokens substituted, asserting success */
static void exec_ok(struct store *db, const char *sql)
{
	struct sg_error err;
	char *q = store_sql_tokens(sql, store_backend(db), &err);

	assert_non_null(q);
	if (store_exec(db, q, &err) < 0)
		fail_msg("exec '%s': %s", sql, err.msg);
	free(q);
}

static int64_t count_rows(struct store *db, const char *sql)
{
	struct sg_error err;
	struct store_stmt *st = store_prepare(db, sql, &err);
	int64_t n;

	assert_non_null(st);
	assert_int_equal(store_stmt_step(st, &err), 1);
	n = store_col_int64(st, 0);
	store_stmt_free(&st);
	return n;
}

/* ------------------------------------------------------------------- tests */

static void test_open_close(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store *db2;

	assert_int_equal(store_backend(f->db), IS_PG ? STORE_POSTGRES : STORE_SQLITE);
	assert_int_equal(store_ping(f->db, &err), 0);
	/* a second connection to the same database */
	db2 = store_open(f->url, &err);
	assert_non_null(db2);
	assert_int_equal(store_ping(db2, &err), 0);
	store_close(&db2);
	assert_null(db2);
	store_close(&db2);  /* NULL is fine */
	store_close(NULL);
}

static void test_migrate(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store_stmt *st;
	size_t i = 0;
	int rc;

	assert_true(store_migrations_count >= 1);
	assert_int_equal(store_migrations[0].version, 1);
	assert_int_equal(store_schema_latest(),
		store_migrations[store_migrations_count - 1].version);
	assert_int_equal(store_schema_version(f->db, &err), 0);
	assert_int_equal(store_migrate(f->db, &err), 0);
	assert_int_equal(store_schema_version(f->db, &err), store_schema_latest());
	/* idempotent */
	assert_int_equal(store_migrate(f->db, &err), 0);
	assert_int_equal(store_schema_version(f->db, &err), store_schema_latest());
	/* each embedded migration recorded exactly once, in order, with its name */
	st = store_prepare(f->db, "SELECT version, name, applied FROM schema_version "
		"ORDER BY version", &err);
	assert_non_null(st);
	while ((rc = store_stmt_step(st, &err)) == 1) {
		assert_true(i < store_migrations_count);
		assert_int_equal(store_col_int64(st, 0), store_migrations[i].version);
		assert_string_equal(store_col_text(st, 1), store_migrations[i].name);
		assert_true(store_col_int64(st, 2) > sg_now() - 600);
		i++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(i, store_migrations_count);
	store_stmt_free(&st);
	/* the core table exists */
	assert_int_equal(count_rows(f->db, "SELECT COUNT(*) FROM settings"), 0);
}

/* test_migrate_gap - a migration missing below the max is still applied
 * (module ranges grow independently). */
static void test_migrate_gap(void **state)
{
	struct fx *f = *state;
	struct sg_error err;

	assert_int_equal(store_migrate(f->db, &err), 0);
	/* forget 0001 and its table, pretend a higher version is applied */
	exec_ok(f->db, "DROP TABLE settings");
	exec_ok(f->db, "DELETE FROM schema_version WHERE version = 1");
	exec_ok(f->db, "INSERT INTO schema_version (version, name, applied) "
		"VALUES (9999, 'future', 0)");
	assert_int_equal(store_migrate(f->db, &err), 0);
	assert_int_equal(count_rows(f->db,
		"SELECT COUNT(*) FROM schema_version WHERE version = 1"), 1);
	assert_int_equal(count_rows(f->db, "SELECT COUNT(*) FROM settings"), 0);
	assert_int_equal(store_schema_version(f->db, &err), 9999);
}

static void test_init(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store *db2;
	char *s1 = NULL, *s2 = NULL, *s3 = NULL;
	size_t i;

	assert_int_equal(store_init(f->db, &err), 0);
	assert_int_equal(store_setting_get(f->db, "server_secret", &s1, &err), 1);
	assert_int_equal(strlen(s1), 64);
	for (i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdef", s1[i]));
	/* idempotent, stable, from another connection too */
	assert_int_equal(store_init(f->db, &err), 0);
	assert_int_equal(store_setting_get(f->db, "server_secret", &s2, &err), 1);
	assert_string_equal(s1, s2);
	db2 = store_open(f->url, &err);
	assert_non_null(db2);
	assert_int_equal(store_init(db2, &err), 0);
	assert_int_equal(store_setting_get(db2, "server_secret", &s3, &err), 1);
	assert_string_equal(s1, s3);
	store_close(&db2);
	free(s1);
	free(s2);
	free(s3);
}

struct race {
	const char *url;
	int rc;
	char secret[80];
	char msg[SG_ERROR_MSG_MAX];
};

static void *race_init(void *arg)
{
	struct race *r = arg;
	struct sg_error err;
	struct store *db = store_open(r->url, &err);
	char *s = NULL;

	r->rc = -1;
	if (db == NULL) {
		snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
		return NULL;
	}
	if (store_init(db, &err) == 0 &&
		store_setting_get(db, "server_secret", &s, &err) == 1) {
		snprintf(r->secret, sizeof(r->secret), "%s", s);
		r->rc = 0;
	} else {
		snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
	}
	free(s);
	store_close(&db);
	return NULL;
}

/* test_migrate_race - concurrent store_init on a fresh database: all succeed,
 * every migration applied once, one secret. */
static void test_migrate_race(void **state)
{
	struct fx *f = *state;
	struct race r[4];
	pthread_t t[4];
	size_t i;

	for (i = 0; i < 4; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].url = f->url;
		assert_int_equal(pthread_create(&t[i], NULL, race_init, &r[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 4; i++) {
		if (r[i].rc != 0)
			fail_msg("racer %zu: %s", i, r[i].msg);
		assert_string_equal(r[i].secret, r[0].secret);
	}
	assert_int_equal(count_rows(f->db, "SELECT COUNT(*) FROM schema_version"),
		(int64_t)store_migrations_count);
	assert_int_equal(count_rows(f->db,
		"SELECT COUNT(*) FROM settings WHERE key = 'server_secret'"), 1);
}

static void test_settings(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	char *v = (char *)"sentinel";
	int64_t before = sg_now();

	assert_int_equal(store_migrate(f->db, &err), 0);
	assert_int_equal(store_setting_get(f->db, "mta.relay_domains", &v, &err), 0);
	assert_null(v);
	assert_int_equal(store_setting_set(f->db, "mta.relay_domains", "a.example", &err), 0);
	assert_int_equal(store_setting_get(f->db, "mta.relay_domains", &v, &err), 1);
	assert_string_equal(v, "a.example");
	free(v);
	/* upsert */
	assert_int_equal(store_setting_set(f->db, "mta.relay_domains", "b.example ü", &err), 0);
	assert_int_equal(store_setting_get(f->db, "mta.relay_domains", &v, &err), 1);
	assert_string_equal(v, "b.example ü");
	free(v);
	assert_true(count_rows(f->db, "SELECT updated FROM settings") >= before);
	/* empty value is a value */
	assert_int_equal(store_setting_set(f->db, "empty", "", &err), 0);
	assert_int_equal(store_setting_get(f->db, "empty", &v, &err), 1);
	assert_string_equal(v, "");
	free(v);
	/* delete, delete again */
	assert_int_equal(store_setting_delete(f->db, "mta.relay_domains", &err), 0);
	assert_int_equal(store_setting_get(f->db, "mta.relay_domains", &v, &err), 0);
	assert_int_equal(store_setting_delete(f->db, "mta.relay_domains", &err), 0);
	/* bad arguments */
	assert_int_equal(store_setting_set(f->db, NULL, "x", &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(store_setting_set(f->db, "k", NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(store_setting_get(f->db, NULL, &v, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(store_setting_delete(f->db, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

/* test_settings_no_table - settings before migrate: an SQL error, SG_E_STORE */
static void test_settings_no_table(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	char *v = NULL;

	assert_int_equal(store_setting_get(f->db, "k", &v, &err), -1);
	assert_int_equal(err.code, SG_E_STORE);
	assert_non_null(strstr(err.msg, "settings"));
	assert_int_equal(store_setting_set(f->db, "k", "v", &err), -1);
	assert_int_equal(err.code, SG_E_STORE);
}

static const unsigned char blob_nul[] = {0x00, 0x01, 0x00, 0xff, 0x5c, 0x78, 0x00};

static const struct type_case {
	const char *name;
	int64_t n;
	bool n_null;
	const char *s;            /* NULL = SQL NULL */
	const unsigned char *b;   /* NULL = SQL NULL */
	size_t blen;
} type_cases[] = {
	{"zero/empty", 0, false, "", (const unsigned char *)"", 0},
	{"min", INT64_MIN, false, "plain ascii", blob_nul, sizeof(blob_nul)},
	{"max", INT64_MAX, false, "grüß 日本 🙂", blob_nul, 1},
	{"negative", -1, false, "quote ' and ? and \\ and \"", (const unsigned char *)"\\x41", 4},
	{"all null", 0, true, NULL, NULL, 0},
	{"big text", 1234567890123LL, false,
		"0123456789012345678901234567890123456789012345678901234567890123456789"
		"0123456789012345678901234567890123456789012345678901234567890123456789",
		(const unsigned char *)"a", 1},
};

static void test_types(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store_stmt *ins, *sel;
	unsigned char all[256];
	size_t i;

	for (i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)i;
	exec_ok(f->db, "CREATE TABLE t (id {{BIGINT}} PRIMARY KEY, n {{BIGINT}}, "
		"s TEXT, b {{BLOB}})");
	ins = store_prepare(f->db, "INSERT INTO t (id, n, s, b) VALUES (?, ?, ?, ?)", &err);
	assert_non_null(ins);
	sel = store_prepare(f->db, "SELECT n, s, b, id FROM t WHERE id = ?", &err);
	assert_non_null(sel);
	for (i = 0; i <= sizeof(type_cases) / sizeof(type_cases[0]); i++) {
		/* the last round is every byte value */
		const struct type_case all_case = {"all bytes", 42, false, "x", all, sizeof(all)};
		const struct type_case *c = i < sizeof(type_cases) / sizeof(type_cases[0]) ?
			&type_cases[i] : &all_case;
		const void *b;
		size_t blen = 99;

		assert_int_equal(store_bind_int64(ins, 1, (int64_t)i), 0);
		if (c->n_null)
			assert_int_equal(store_bind_null(ins, 2), 0);
		else
			assert_int_equal(store_bind_int64(ins, 2, c->n), 0);
		assert_int_equal(store_bind_text(ins, 3, c->s), 0);
		if (c->b == NULL)
			assert_int_equal(store_bind_null(ins, 4), 0);
		else
			assert_int_equal(store_bind_blob(ins, 4, c->b, c->blen), 0);
		if (store_stmt_step(ins, &err) != 0)
			fail_msg("%s: insert: %s", c->name, err.msg);
		assert_int_equal(store_changes(ins), 1);
		assert_int_equal(store_stmt_reset(ins), 0);

		assert_int_equal(store_bind_int64(sel, 1, (int64_t)i), 0);
		assert_int_equal(store_stmt_step(sel, &err), 1);
		assert_int_equal(store_col_count(sel), 4);
		assert_int_equal(store_col_is_null(sel, 0), c->n_null);
		assert_true(store_col_int64(sel, 0) == (c->n_null ? 0 : c->n));
		assert_int_equal(store_col_int64(sel, 3), (int64_t)i);
		if (c->s == NULL) {
			assert_true(store_col_is_null(sel, 1));
			assert_null(store_col_text(sel, 1));
		} else {
			assert_false(store_col_is_null(sel, 1));
			assert_string_equal(store_col_text(sel, 1), c->s);
		}
		b = store_col_blob(sel, 2, &blen);
		if (c->b == NULL) {
			assert_true(store_col_is_null(sel, 2));
			assert_null(b);
			assert_int_equal(blen, 0);
		} else {
			assert_non_null(b);
			assert_int_equal(blen, c->blen);
			assert_memory_equal(b, c->b, c->blen);
			/* a second read of the same column gives the same bytes */
			b = store_col_blob(sel, 2, &blen);
			assert_int_equal(blen, c->blen);
			assert_memory_equal(b, c->b, c->blen);
		}
		/* out-of-range columns read as NULL */
		assert_true(store_col_is_null(sel, 4));
		assert_null(store_col_text(sel, -1));
		assert_int_equal(store_stmt_step(sel, &err), 0);
		assert_int_equal(store_stmt_reset(sel), 0);
	}
	store_stmt_free(&ins);
	store_stmt_free(&sel);
	assert_null(ins);
	store_stmt_free(&ins);
}

static void test_placeholders_in_literals(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store_stmt *st;

	exec_ok(f->db, "CREATE TABLE q (a TEXT, b TEXT)");
	st = store_prepare(f->db, "INSERT INTO q (a, b) VALUES ('it''s ?', ?) -- why?\n", &err);
	assert_non_null(st);
	assert_int_equal(store_bind_text(st, 1, "x?y"), 0);
	/* only one placeholder: index 2 does not exist */
	assert_int_equal(store_bind_text(st, 2, "no"), -1);
	assert_int_equal(store_stmt_step(st, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(store_stmt_reset(st), 0);
	assert_int_equal(store_bind_text(st, 1, "x?y"), 0);
	assert_int_equal(store_stmt_step(st, &err), 0);
	store_stmt_free(&st);
	st = store_prepare(f->db, "SELECT a, b FROM q WHERE /* ? */ b = ? AND a <> '?'", &err);
	assert_non_null(st);
	assert_int_equal(store_bind_text(st, 1, "x?y"), 0);
	assert_int_equal(store_stmt_step(st, &err), 1);
	assert_string_equal(store_col_text(st, 0), "it's ?");
	assert_string_equal(store_col_text(st, 1), "x?y");
	assert_int_equal(store_stmt_step(st, &err), 0);
	store_stmt_free(&st);
}

static void test_rewrite(void **state)
{
	static const struct {
		const char *in, *want;
		int n;
	} cases[] = {
		{"SELECT 1", "SELECT 1", 0},
		{"a = ? AND b = ?", "a = $1 AND b = $2", 2},
		{"'?' ?", "'?' $1", 1},
		{"'it''s ?' ?", "'it''s ?' $1", 1},
		{"\"col?\" = ?", "\"col?\" = $1", 1},
		{"E'a\\'?' ?", "E'a\\'?' $1", 1},
		{"x = ? -- is ?\n AND ?", "x = $1 -- is ?\n AND $2", 2},
		{"/* ? */ ?", "/* ? */ $1", 1},
		{"'unterminated ?", "'unterminated ?", 0},
		{"?,?,?,?,?,?,?,?,?,?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10", 10},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		int n = -1;
		char *got = store_pg_rewrite(cases[i].in, &n, &err);

		assert_non_null(got);
		if (strcmp(got, cases[i].want) != 0 || n != cases[i].n)
			fail_msg("rewrite '%s': got '%s' (%d) want '%s' (%d)", cases[i].in,
				got, n, cases[i].want, cases[i].n);
		free(got);
	}
}

static void test_tokens(void **state)
{
	static const struct {
		const char *in;
		const char *sqlite, *pg;  /* NULL = error */
	} cases[] = {
		{"x {{BLOB}}", "x BLOB", "x BYTEA"},
		{"{{SERIAL_PK}},", "INTEGER PRIMARY KEY AUTOINCREMENT,", "BIGSERIAL PRIMARY KEY,"},
		{"{{BIGINT}}{{BIGINT}}", "INTEGERINTEGER", "BIGINTBIGINT"},
		{"t TEXT {{NOCASE}}", "t TEXT COLLATE NOCASE", "t TEXT "},
		{"no tokens", "no tokens", "no tokens"},
		{"{{BOGUS}}", NULL, NULL},
		{"{{BLOB", NULL, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		char *a = store_sql_tokens(cases[i].in, STORE_SQLITE, &err);
		char *b = store_sql_tokens(cases[i].in, STORE_POSTGRES, &err);

		if (cases[i].sqlite == NULL) {
			assert_null(a);
			assert_null(b);
			assert_int_equal(err.code, SG_E_INVAL);
			continue;
		}
		assert_string_equal(a, cases[i].sqlite);
		assert_string_equal(b, cases[i].pg);
		free(a);
		free(b);
	}
}

static void test_unique_violation(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store_stmt *st;

	exec_ok(f->db, "CREATE TABLE u (id {{SERIAL_PK}}, k TEXT NOT NULL UNIQUE)");
	st = store_prepare(f->db, "INSERT INTO u (k) VALUES (?)", &err);
	assert_non_null(st);
	store_bind_text(st, 1, "a@example.org");
	assert_int_equal(store_stmt_step(st, &err), 0);
	store_stmt_reset(st);
	store_bind_text(st, 1, "a@example.org");
	assert_int_equal(store_stmt_step(st, &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	store_stmt_free(&st);
	/* primary key too */
	exec_ok(f->db, "CREATE TABLE p (k TEXT PRIMARY KEY)");
	exec_ok(f->db, "INSERT INTO p VALUES ('x')");
	assert_int_equal(store_exec(f->db, "INSERT INTO p VALUES ('x')", &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	/* other constraint and SQL errors are SG_E_STORE with the backend message */
	assert_int_equal(store_exec(f->db, "INSERT INTO u (k) VALUES (NULL)", &err), -1);
	assert_int_equal(err.code, SG_E_STORE);
	assert_int_equal(store_exec(f->db, "SELEKT 1", &err), -1);
	assert_int_equal(err.code, SG_E_STORE);
	assert_non_null(strstr(err.msg, "syntax"));
	st = store_prepare(f->db, "SELECT * FROM no_such_table", &err);
	if (st != NULL) {  /* PostgreSQL reports at execution */
		assert_int_equal(store_stmt_step(st, &err), -1);
		store_stmt_free(&st);
	}
	assert_int_equal(err.code, SG_E_STORE);
	assert_non_null(strstr(err.msg, "no_such_table"));
	/* SERIAL_PK counts up */
	assert_int_equal(count_rows(f->db, "SELECT MAX(id) FROM u"), 1);
}

static void test_transactions(void **state)
{
	struct fx *f = *state;
	struct sg_error err;

	exec_ok(f->db, "CREATE TABLE x (k TEXT PRIMARY KEY)");
	assert_int_equal(store_begin(f->db, &err), 0);
	exec_ok(f->db, "INSERT INTO x VALUES ('rolled back')");
	assert_int_equal(store_begin(f->db, &err), -1);  /* not nestable */
	assert_int_equal(err.code, SG_E_INTERNAL);
	assert_int_equal(store_rollback(f->db, &err), 0);
	assert_int_equal(count_rows(f->db, "SELECT COUNT(*) FROM x"), 0);

	assert_int_equal(store_begin(f->db, &err), 0);
	exec_ok(f->db, "INSERT INTO x VALUES ('a'); INSERT INTO x VALUES ('b')");
	assert_int_equal(store_commit(f->db, &err), 0);
	assert_int_equal(count_rows(f->db, "SELECT COUNT(*) FROM x"), 2);

	assert_int_equal(store_commit(f->db, &err), -1);
	assert_int_equal(err.code, SG_E_INTERNAL);
	assert_int_equal(store_rollback(f->db, &err), -1);
	assert_int_equal(err.code, SG_E_INTERNAL);

	/* another connection does not see uncommitted rows */
	{
		struct store *db2 = store_open(f->url, &err);

		assert_non_null(db2);
		assert_int_equal(store_begin(f->db, &err), 0);
		exec_ok(f->db, "INSERT INTO x VALUES ('c')");
		assert_int_equal(count_rows(db2, "SELECT COUNT(*) FROM x"), 2);
		assert_int_equal(store_commit(f->db, &err), 0);
		assert_int_equal(count_rows(db2, "SELECT COUNT(*) FROM x"), 3);
		store_close(&db2);
	}
	/* migrate refuses to run inside a transaction */
	assert_int_equal(store_begin(f->db, &err), 0);
	assert_int_equal(store_migrate(f->db, &err), -1);
	assert_int_equal(err.code, SG_E_INTERNAL);
	assert_int_equal(store_rollback(f->db, &err), 0);
}

static void test_changes_and_reuse(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store_stmt *st;
	int i;

	exec_ok(f->db, "CREATE TABLE c (k {{BIGINT}}, v TEXT)");
	st = store_prepare(f->db, "INSERT INTO c (k, v) VALUES (?, ?)", &err);
	assert_non_null(st);
	for (i = 0; i < 5; i++) {
		store_bind_int64(st, 1, i);
		store_bind_text(st, 2, i % 2 ? "odd" : "even");
		assert_int_equal(store_stmt_step(st, &err), 0);
		assert_int_equal(store_changes(st), 1);
		store_stmt_reset(st);
	}
	/* after reset, unbound parameters are NULL */
	store_bind_int64(st, 1, 99);
	assert_int_equal(store_stmt_step(st, &err), 0);
	store_stmt_free(&st);
	assert_int_equal(count_rows(f->db, "SELECT COUNT(*) FROM c WHERE v IS NULL"), 1);

	st = store_prepare(f->db, "UPDATE c SET v = ? WHERE v = ?", &err);
	assert_non_null(st);
	store_bind_text(st, 1, "E");
	store_bind_text(st, 2, "even");
	assert_int_equal(store_stmt_step(st, &err), 0);
	assert_int_equal(store_changes(st), 3);
	store_stmt_reset(st);
	store_bind_text(st, 1, "E");
	store_bind_text(st, 2, "none");
	assert_int_equal(store_stmt_step(st, &err), 0);
	assert_int_equal(store_changes(st), 0);
	store_stmt_free(&st);

	/* rows one at a time, in order */
	st = store_prepare(f->db, "SELECT k FROM c WHERE k < ? ORDER BY k", &err);
	assert_non_null(st);
	store_bind_int64(st, 1, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(store_stmt_step(st, &err), 1);
		assert_int_equal(store_col_int64(st, 0), i);
	}
	assert_int_equal(store_stmt_step(st, &err), 0);
	store_stmt_free(&st);

	/* one statement per prepare */
	st = store_prepare(f->db, "SELECT 1; SELECT 2", &err);
	if (st != NULL) {
		assert_int_equal(store_stmt_step(st, &err), -1);
		store_stmt_free(&st);
	}
}


/* test_param_exprs - parameters in expressions, written portably: a text or
 * NULL value whose type the context does not fix needs CAST(? AS TEXT) on
 * PostgreSQL (its parameters are untyped), integers are typed (int8). */
static void test_param_exprs(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store_stmt *st;

	st = store_prepare(f->db, "SELECT CAST(? AS TEXT), ? + 1, CAST(? AS TEXT) IS NULL, "
		"? * 2, CAST(? AS TEXT) || 'x'", &err);
	assert_non_null(st);
	store_bind_text(st, 1, "t");
	store_bind_int64(st, 2, 41);
	store_bind_null(st, 3);
	store_bind_int64(st, 4, -4000000000LL);
	store_bind_text(st, 5, "ü");
	if (store_stmt_step(st, &err) != 1)
		fail_msg("step: %s", err.msg);
	assert_string_equal(store_col_text(st, 0), "t");
	assert_int_equal(store_col_int64(st, 1), 42);
	assert_int_equal(store_col_int64(st, 2), 1);  /* boolean true */
	assert_true(store_col_int64(st, 3) == -8000000000LL);
	assert_string_equal(store_col_text(st, 4), "üx");
	store_stmt_free(&st);
	/* integers and text against integer columns; LIMIT; LIKE */
	exec_ok(f->db, "CREATE TABLE pe (i INTEGER, b {{BIGINT}}, s TEXT)");
	exec_ok(f->db, "INSERT INTO pe VALUES (1, 10, 'abc'), (2, 20, 'abd'), (3, 30, 'x')");
	st = store_prepare(f->db, "SELECT i FROM pe WHERE i >= ? AND b <= ? AND s LIKE ? "
		"ORDER BY i LIMIT ?", &err);
	assert_non_null(st);
	store_bind_int64(st, 1, 1);
	store_bind_int64(st, 2, 30);
	store_bind_text(st, 3, "ab%");
	store_bind_int64(st, 4, 1);
	assert_int_equal(store_stmt_step(st, &err), 1);
	assert_int_equal(store_col_int64(st, 0), 1);
	assert_int_equal(store_stmt_step(st, &err), 0);
	store_stmt_free(&st);
}

#ifndef STORE_TEST_PG
static void test_sqlite_file(void **state)
{
	struct fx *f = *state;
	struct stat sb;
	struct store_stmt *st;
	struct sg_error err;

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	st = store_prepare(f->db, "PRAGMA journal_mode", &err);
	assert_int_equal(store_stmt_step(st, &err), 1);
	assert_string_equal(store_col_text(st, 0), "wal");
	store_stmt_free(&st);
	assert_int_equal(count_rows(f->db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(count_rows(f->db, "PRAGMA busy_timeout"), 5000);
	assert_int_equal(count_rows(f->db, "PRAGMA synchronous"), 1);  /* NORMAL */
	/* foreign keys are enforced */
	exec_ok(f->db, "CREATE TABLE parent (id INTEGER PRIMARY KEY); "
		"CREATE TABLE child (p INTEGER REFERENCES parent(id))");
	assert_int_equal(store_exec(f->db, "INSERT INTO child VALUES (7)", &err), -1);
	assert_int_equal(err.code, SG_E_STORE);
}

/* test_sqlite_busy - a writer blocked past the busy timeout gets SG_E_STORE */
static void test_sqlite_busy(void **state)
{
	struct fx *f = *state;
	struct sg_error err;
	struct store *db2 = store_open(f->url, &err);
	int64_t t0;

	assert_non_null(db2);
	/* shorten the wait so the test stays fast */
	assert_int_equal(store_exec(db2, "PRAGMA busy_timeout = 200", &err), 0);
	assert_int_equal(store_begin(f->db, &err), 0);
	t0 = sg_mono_ms();
	assert_int_equal(store_begin(db2, &err), -1);
	assert_true(sg_mono_ms() - t0 >= 150);
	assert_int_equal(err.code, SG_E_STORE);
	assert_non_null(strstr(err.msg, "locked"));
	assert_int_equal(store_rollback(f->db, &err), 0);
	assert_int_equal(store_begin(db2, &err), 0);
	assert_int_equal(store_rollback(db2, &err), 0);
	store_close(&db2);
}

static void test_bad_urls(void **state)
{
	char notdir[300], notdb[300], missing[300], u1[400], u2[400], u3[400];
	const struct {
		const char *url;
		enum sg_errc code;
		const char *want;
	} cases[] = {
		{NULL, SG_E_INVAL, "empty database URL"},
		{"", SG_E_INVAL, "empty database URL"},
		{"mysql://localhost/x", SG_E_INVAL, "unknown scheme 'mysql'"},
		{"/abs/path.db", SG_E_INVAL, "unknown scheme"},
		{"sqlite:relative.db", SG_E_INVAL, "absolute path"},
		{"sqlite:", SG_E_INVAL, "absolute path"},
		{"postgresql://host:notaport/db?bogus_option=1", SG_E_INVAL, "bad database URL"},
		{u1, SG_E_STORE, "Not a directory"},
		{u2, SG_E_STORE, "No such file or directory"},
		{u3, SG_E_STORE, "not a database"},
	};
	size_t i;
	FILE *fp;

	(void)state;
	/* unwritable locations that stay unwritable for root too */
	snprintf(notdir, sizeof(notdir), "%s/plainfile", E.tmpdir);
	fp = fopen(notdir, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(u1, sizeof(u1), "sqlite:%s/x.db", notdir);
	snprintf(missing, sizeof(missing), "%s/no/such/dir", E.tmpdir);
	snprintf(u2, sizeof(u2), "sqlite:%s/x.db", missing);
	snprintf(notdb, sizeof(notdb), "%s/garbage.db", E.tmpdir);
	fp = fopen(notdb, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, it is just long enough text to "
		"fill a header of one hundred bytes.............................\n", fp);
	fclose(fp);
	snprintf(u3, sizeof(u3), "sqlite:%s", notdb);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_error err;
		struct store *db;

		memset(&err, 0, sizeof(err));
		db = store_open(cases[i].url, &err);
		if (db != NULL)
			fail_msg("'%s' opened", cases[i].url);
		if (err.code != cases[i].code || strstr(err.msg, cases[i].want) == NULL)
			fail_msg("'%s': got %s '%s' want %s '%s'", cases[i].url,
				sg_errc_name(err.code), err.msg, sg_errc_name(cases[i].code),
				cases[i].want);
	}
	unlink(notdir);
	unlink(notdb);
}
#else
static void test_pg_bad_server(void **state)
{
	struct sg_error err;
	struct store *db;

	(void)state;
	/* nothing listens on port 1 */
	db = store_open("postgresql://sealgate@127.0.0.1:1/x?connect_timeout=3", &err);
	assert_null(db);
	assert_int_equal(err.code, SG_E_STORE);
	assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL"));
	/* bad URI syntax is a URL error */
	db = store_open("postgresql://[::1/x", &err);
	assert_null(db);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_non_null(strstr(err.msg, "bad database URL"));
	/* unknown database on a live server */
	{
		char url[768];

		pg_url_with_db(E.admin_url, "sg_no_such_db", url, sizeof(url));
		db = store_open(url, &err);
		assert_null(db);
		assert_int_equal(err.code, SG_E_STORE);
		assert_non_null(strstr(err.msg, "sg_no_such_db"));
	}
}

/* test_pg_failed_tx - an error aborts a PostgreSQL transaction; COMMIT then
 * fails instead of pretending the work was saved. */
static void test_pg_failed_tx(void **state)
{
	struct fx *f = *state;
	struct sg_error err;

	exec_ok(f->db, "CREATE TABLE y (k TEXT PRIMARY KEY)");
	assert_int_equal(store_begin(f->db, &err), 0);
	exec_ok(f->db, "INSERT INTO y VALUES ('a')");
	assert_int_equal(store_exec(f->db, "INSERT INTO y VALUES ('a')", &err), -1);
	assert_int_equal(err.code, SG_E_EXISTS);
	assert_int_equal(store_commit(f->db, &err), -1);
	assert_int_equal(err.code, SG_E_STORE);
	assert_non_null(strstr(err.msg, "rolled back"));
	assert_int_equal(count_rows(f->db, "SELECT COUNT(*) FROM y"), 0);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings_no_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_placeholders_in_literals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unique_violation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_param_exprs, setup, teardown),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_tokens),
#ifndef STORE_TEST_PG
		cmocka_unit_test_setup_teardown(test_sqlite_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_busy, setup, teardown),
		cmocka_unit_test(test_bad_urls),
#else
		cmocka_unit_test(test_pg_bad_server),
		cmocka_unit_test_setup_teardown(test_pg_failed_tx, setup, teardown),
#endif
	};

	sg_log_init("test_store", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests_name(IS_PG ? "store-postgresql" : "store-sqlite",
		tests, group_setup, group_teardown);
}
