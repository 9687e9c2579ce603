/*
 * store.h - database access for every module: one API over two backends,
 * SQLite (default, WAL mode) and PostgreSQL, with numbered migrations.
 *
 * A struct store is ONE connection and is used by one thread at a time; every
 * thread (SMTP loop, MPA worker, delivery worker, CLI) opens its own. SQL is
 * written once with '?' placeholders and a portable subset of SQL; the
 * PostgreSQL backend rewrites '?' to $1..$n. Migrations are numbered and are
 * applied in order inside a transaction; the applied version is recorded in
 * table schema_version.
 *
 * Errors: connection loss, busy timeouts and server unavailability are
 * SG_E_STORE (temporary: the caller defers, SMTP answers 451). Constraint
 * violations on unique keys are SG_E_EXISTS.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include "lib/lib.h"

struct store;
struct store_stmt;

enum store_backend { STORE_SQLITE, STORE_POSTGRES };

/*
 * store_open - connect to url ("sqlite:/abs/path.db", "postgresql://..." or
 * "postgres://..."). SQLite: creates the file (mode 0600) and sets WAL, a busy
 * timeout and foreign keys. Does not migrate. NULL on error (err set).
 */
struct store *store_open(const char *url, struct sg_error *err);
/* store_close - close the connection; accepts NULL, clears *dbp. */
void store_close(struct store **dbp);
enum store_backend store_backend(const struct store *db);

/* store_migrate - apply all pending migrations; 0 ok, -1 err. Safe to race. */
int store_migrate(struct store *db, struct sg_error *err);
/* store_schema_version - highest applied migration number, -1 on error. */
int store_schema_version(struct store *db, struct sg_error *err);
/*
 * store_init - migrate, then create the server secret (setting "server_secret",
 * 32 random bytes hex) if absent. Idempotent. 0 ok, -1 err.
 */
int store_init(struct store *db, struct sg_error *err);
/* store_ping - cheap round trip proving the database answers; 0 ok, -1 err. */
int store_ping(struct store *db, struct sg_error *err);

/* Transactions (not nestable). */
int store_begin(struct store *db, struct sg_error *err);
int store_commit(struct store *db, struct sg_error *err);
int store_rollback(struct store *db, struct sg_error *err);

/* store_exec - run SQL without parameters or result rows (may hold several
 * statements on SQLite; one on PostgreSQL). */
int store_exec(struct store *db, const char *sql, struct sg_error *err);

/*
 * Prepared statements. Placeholders are '?', numbered from 1 in bind calls.
 * Columns are numbered from 0. Column getters return values borrowed until the
 * next step/reset/free. store_stmt_step: 1 = a row is available, 0 = done,
 * -1 = error. store_stmt_reset clears bindings' results so the statement can be
 * re-bound and re-run.
 */
struct store_stmt *store_prepare(struct store *db, const char *sql, struct sg_error *err);
int store_bind_text(struct store_stmt *st, int idx, const char *v); /* NULL = SQL NULL */
int store_bind_int64(struct store_stmt *st, int idx, int64_t v);
int store_bind_blob(struct store_stmt *st, int idx, const void *v, size_t len);
int store_bind_null(struct store_stmt *st, int idx);
int store_stmt_step(struct store_stmt *st, struct sg_error *err);
int store_stmt_reset(struct store_stmt *st);
int store_col_count(struct store_stmt *st);
bool store_col_is_null(struct store_stmt *st, int col);
const char *store_col_text(struct store_stmt *st, int col); /* NULL for SQL NULL */
int64_t store_col_int64(struct store_stmt *st, int col);
const void *store_col_blob(struct store_stmt *st, int col, size_t *len_r);
/* store_changes - rows changed by the last step of an INSERT/UPDATE/DELETE. */
int64_t store_changes(struct store_stmt *st);
void store_stmt_free(struct store_stmt **stp);

/*
 * Settings: a key/value table for global settings that are not user/domain
 * properties (MTA settings "mta.*", the server secret, scheduler state).
 * store_setting_get returns 1 found (*value_r malloc'ed, caller frees), 0 not
 * found, -1 error.
 */
int store_setting_get(struct store *db, const char *key, char **value_r,
	struct sg_error *err);
int store_setting_set(struct store *db, const char *key, const char *value,
	struct sg_error *err);
int store_setting_delete(struct store *db, const char *key, struct sg_error *err);

#endif
