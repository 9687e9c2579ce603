/*
 * store_test_pg.h - helpers for the PostgreSQL store tests: run a command and
 * capture its output, start/stop/restart a private server with
 * scripts/test-pg, and create/drop a private database per test so parallel
 * test runs sharing one server never see each other's tables.
 */
#ifndef SG_STORE_TEST_PG_H
#define SG_STORE_TEST_PG_H

#include <stddef.h>

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

#endif
