/*
 * store_test_pg.h - helpers for the PostgreSQL store tests: run a command and
 * capture its output, start/stop/restart a private server with
 * scripts/test-pg, and create/drop a private database per test so parallel
 * test runs sharing one server never see each other's tables.
 */
#ifndef SG_STORE_TEST_PG_H
#define SG_STORE_TEST_PG_H

#include <stdbool.h>
#include <stddef.h>

struct store;

/* run_cmd - fork/exec argv (PATH search), stdout into out (may be NULL);
 * returns the exit status, or -1 if it could not run or was killed. */
int run_cmd(char *const argv[], char *out, size_t outsz);

/* pg_server_start - test-pg start DIR (DIR created by the caller); the URL into
 * url. 0 ok, -1 err. */
int pg_server_start(const char *dir, char *url, size_t urlsz);
void pg_server_stop(const char *dir);
/* pg_server_restart - start again the server test-pg made in dir, same port. */
int pg_server_restart(const char *dir, const char *url);

/* pg_url_with_db - url with its database name replaced by db. */
void pg_url_with_db(const char *url, const char *db, char *out, size_t outsz);

/* pg_db_create/drop - CREATE DATABASE name / DROP DATABASE name WITH (FORCE)
 * through admin_url. 0 ok, -1 err (printed). */
int pg_db_create(const char *admin_url, const char *name);
int pg_db_drop(const char *admin_url, const char *name);

/*
 * A database environment for module tests: a temp dir, and on PostgreSQL the
 * server of SG_TEST_PG_URL or a private one started here. Each test then gets
 * a fresh, initialised store: a SQLite file in the temp dir, or a database of
 * its own on the server (so parallel test programs never share tables).
 */
struct store_test_env {
	char tmpdir[256];
	char admin_url[512];
	bool is_pg;
	bool own_server;
	unsigned seq;
};
struct store_test_db {
	struct store *db;
	char url[768];
	char dbname[96];
	char path[512];
};
/* store_test_env_begin - name goes into the temp dir's name. 0 ok, -1 err. */
int store_test_env_begin(struct store_test_env *e, const char *name, bool is_pg);
/* store_test_env_end - stop an own server, remove the temp dir. */
void store_test_env_end(struct store_test_env *e);
/* store_test_db_open - a new store, opened and initialised (store_init);
 * prefix names the PostgreSQL database. 0 ok, -1 (printed). */
int store_test_db_open(struct store_test_env *e, const char *prefix,
	struct store_test_db *d);
/* store_test_db_drop - close d->db (if open) and remove its file/database. */
void store_test_db_drop(struct store_test_env *e, struct store_test_db *d);

#endif
