/*
 * test_store_pg_outage.c - PostgreSQL going away and coming back: while the
 * server is down every call fails with SG_E_STORE (temporary), after it is
 * back the same struct store works again without reopening (PQreset), and a
 * transaction cut by the outage is not half-applied. Uses its own throwaway
 * server (scripts/test-pg), never the shared one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/lib.h"
#include "store/store.h"
#include "store_test_pg.h"

static char tmpdir[256], pgdir[300], url[512];

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-store-outage-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	chmod(tmpdir, 0755);
	snprintf(pgdir, sizeof(pgdir), "%s/pg", tmpdir);
	return pg_server_start(pgdir, url, sizeof(url));
}

static int group_teardown(void **state)
{
	char *rm[] = {"rm", "-rf", tmpdir, NULL};

	(void)state;
	pg_server_stop(pgdir);
	run_cmd(rm, NULL, 0);
	return 0;
}

static void assert_store_err(int rc, const struct sg_error *err, const char *what)
{
	if (rc != -1 || err->code != SG_E_STORE)
		fail_msg("%s: got rc %d %s '%s', want -1 SG_E_STORE", what, rc,
			sg_errc_name(err->code), err->msg);
	assert_int_equal(sg_errc_class(err->code), SG_EC_TEMPORARY);
}

static void test_server_restart(void **state)
{
	struct sg_error err;
	struct store *db, *db2;
	struct store_stmt *st;
	char *secret = NULL, *v = NULL;

	(void)state;
	db = store_open(url, &err);
	assert_non_null(db);
	assert_int_equal(store_init(db, &err), 0);
	assert_int_equal(store_setting_get(db, "server_secret", &secret, &err), 1);
	st = store_prepare(db, "SELECT value FROM settings WHERE key = ?", &err);
	assert_non_null(st);

	pg_server_stop(pgdir);
	/* the call that finds the connection dead, then calls while it is down */
	assert_store_err(store_ping(db, &err), &err, "ping after stop");
	assert_store_err(store_ping(db, &err), &err, "ping while down");
	assert_store_err(store_setting_get(db, "server_secret", &v, &err), &err,
		"setting_get while down");
	assert_store_err(store_begin(db, &err), &err, "begin while down");
	store_bind_text(st, 1, "server_secret");
	assert_store_err(store_stmt_step(st, &err), &err, "step while down");
	store_stmt_reset(st);
	db2 = store_open(url, &err);
	assert_null(db2);
	assert_int_equal(err.code, SG_E_STORE);

	assert_int_equal(pg_server_restart(pgdir, url), 0);
	/* same handle, same prepared statement: transparent reconnect */
	assert_int_equal(store_ping(db, &err), 0);
	store_bind_text(st, 1, "server_secret");
	assert_int_equal(store_stmt_step(st, &err), 1);
	assert_string_equal(store_col_text(st, 0), secret);
	store_stmt_free(&st);
	assert_int_equal(store_setting_get(db, "server_secret", &v, &err), 1);
	assert_string_equal(v, secret);
	free(v);
	free(secret);
	store_close(&db);
}

static void test_outage_inside_transaction(void **state)
{
	struct sg_error err;
	struct store *db;
	char *v = NULL;

	(void)state;
	db = store_open(url, &err);
	assert_non_null(db);
	assert_int_equal(store_init(db, &err), 0);
	assert_int_equal(store_begin(db, &err), 0);
	assert_int_equal(store_setting_set(db, "half", "done", &err), 0);

	pg_server_stop(pgdir);
	assert_store_err(store_setting_set(db, "other", "x", &err), &err, "set in tx");
	/* no silent reconnect inside a transaction: its work is gone */
	assert_store_err(store_ping(db, &err), &err, "ping in broken tx");
	assert_store_err(store_commit(db, &err), &err, "commit of broken tx");
	assert_int_equal(pg_server_restart(pgdir, url), 0);

	assert_int_equal(store_ping(db, &err), 0);
	assert_int_equal(store_setting_get(db, "half", &v, &err), 0);
	/* a new transaction works */
	assert_int_equal(store_begin(db, &err), 0);
	assert_int_equal(store_setting_set(db, "half", "again", &err), 0);
	assert_int_equal(store_commit(db, &err), 0);
	assert_int_equal(store_setting_get(db, "half", &v, &err), 1);
	assert_string_equal(v, "again");
	free(v);

	/* rollback after the connection died is fine (the server dropped it) */
	assert_int_equal(store_begin(db, &err), 0);
	pg_server_stop(pgdir);
	assert_store_err(store_setting_set(db, "x", "y", &err), &err, "set in tx 2");
	assert_int_equal(store_rollback(db, &err), 0);
	assert_int_equal(pg_server_restart(pgdir, url), 0);
	assert_int_equal(store_ping(db, &err), 0);
	store_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_restart),
		cmocka_unit_test(test_outage_inside_transaction),
	};

	sg_log_init("test_store_pg_outage", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests_name("store-pg-outage", tests, group_setup,
		group_teardown);
}
