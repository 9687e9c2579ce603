/*
 * store.h - database access for every module: one API over two backends,
 * SQLite (default, WAL mode) and PostgreSQL, with numbered migrations.
 *
 * A struct store is ONE connection and is used by one thread at a time; every
 * thread (SMTP loop, MPA worker, delivery worker, CLI) opens its own. SQL is
 * written once with '?' placeholders and a portable subset of SQL; the
 * PostgreSQL backend rewrites '?' to $1..$n ('?' inside '...' literals, "..."
 * identifiers and comments is left alone). Upserts use
 * "INSERT ... ON CONFLICT (col) DO UPDATE SET x = excluded.x" (both backends).
 *
 * Errors: connection loss, busy timeouts and server unavailability are
 * SG_E_STORE (temporary: the caller defers, SMTP answers 451). Constraint
 * violations on unique keys are SG_E_EXISTS. Other SQL errors are SG_E_STORE
 * with the backend's message. On PostgreSQL a dropped connection is
 * re-established (PQreset) on the next call made outside a transaction, so a
 * daemon survives a database restart; the call that first notices the drop
 * fails with SG_E_STORE (a statement is never re-sent: it may have run).
 *
 * Migrations
 * ----------
 * Each schema change is a file src/store/migrations/NNNN_<name>.sql (4 digits,
 * lower-case name [a-z0-9_]). The build embeds every such file into the
 * library (re-globbed on each build: dropping in a new file is enough, no
 * list to edit). Number ranges per module:
 *     0001-0099 store (core)      0100-0199 policy
 *     0200-0299 pki               0300-     later modules (claim a range)
 * store_migrate applies every embedded migration not yet recorded in table
 * schema_version(version, name, applied), in number order, each in its own
 * transaction together with its schema_version row, under a lock (SQLite
 * BEGIN IMMEDIATE, PostgreSQL pg_advisory_xact_lock), so concurrent migrators
 * are safe. Pending migrations are found by membership, not by "greater than
 * the max", so a module may add 0105 after 0201 was applied. Never edit a
 * migration that was released: add a new one.
 *
 * A migration file may hold several statements (separated by ';') in portable
 * SQL plus these tokens, substituted per backend:
 *     {{BLOB}}       BLOB                               | BYTEA
 *     {{SERIAL_PK}}  INTEGER PRIMARY KEY AUTOINCREMENT  | BIGSERIAL PRIMARY KEY
 *     {{BIGINT}}     INTEGER                            | BIGINT
 *     {{NOCASE}}     COLLATE NOCASE                     | (empty)
 * An unknown {{TOKEN}} fails the migration. {{NOCASE}} only exists on SQLite:
 * for portable case-insensitive keys store them lower-cased. Use TEXT for
 * strings, {{BIGINT}} for integers and times (seconds since the epoch),
 * {{BLOB}} for bytes; no '?' placeholders in migrations. Core migration 0001
 * creates settings(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated BIGINT).
 *
 * Types: bind/col text is UTF-8; int64 round-trips exactly; blobs may hold NUL
 * bytes. Read blob columns with store_col_blob (store_col_text of a bytea
 * column on PostgreSQL is its hex text form). store_col_int64 of a PostgreSQL
 * boolean is 1/0, of SQL NULL or non-numeric text 0.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include "lib/lib.h"

struct store;
struct store_stmt;

enum store_backend { STORE_SQLITE, STORE_POSTGRES };

/*
 * store_open - connect to url ("sqlite:/abs/path.db", "postgresql://..." or
 * "postgres://..."). SQLite: creates the file (mode 0600) and sets WAL,
 * synchronous=NORMAL, a 5 s busy timeout and foreign keys. PostgreSQL: libpq
 * URI; connect_timeout defaults to 10 s unless the URL sets it. Does not
 * migrate. NULL on error (err set): SG_E_INVAL for a malformed URL or unknown
 * scheme, SG_E_STORE when the database cannot be opened/reached.
 */
struct store *store_open(const char *url, struct sg_error *err);
/* store_close - close the connection; accepts NULL, clears *dbp. */
void store_close(struct store **dbp);
enum store_backend store_backend(const struct store *db);

/* store_migrate - apply all pending migrations; 0 ok, -1 err. Safe to race. */
int store_migrate(struct store *db, struct sg_error *err);
/* store_schema_version - highest applied migration number (0 when none was
 * applied), -1 on error. */
int store_schema_version(struct store *db, struct sg_error *err);
/* store_schema_latest - highest migration number embedded in this program. */
int store_schema_latest(void);
/*
 * store_init - migrate, then create the server secret (setting "server_secret",
 * 32 random bytes hex) if absent. Idempotent. 0 ok, -1 err.
 */
int store_init(struct store *db, struct sg_error *err);
/* store_ping - cheap round trip proving the database answers; 0 ok, -1 err. */
int store_ping(struct store *db, struct sg_error *err);

/*
 * Transactions (not nestable: store_begin inside one is SG_E_INTERNAL).
 * SQLite starts them with BEGIN IMMEDIATE (the write lock is taken up front,
 * waiting up to the busy timeout); PostgreSQL with BEGIN (read committed).
 * After store_commit fails the transaction is over (rolled back).
 * store_rollback after a lost connection returns 0: the server discarded it.
 */
int store_begin(struct store *db, struct sg_error *err);
int store_commit(struct store *db, struct sg_error *err);
int store_rollback(struct store *db, struct sg_error *err);

/* store_exec - run SQL without parameters; result rows are discarded. May
 * hold several statements separated by ';' on both backends. */
int store_exec(struct store *db, const char *sql, struct sg_error *err);

/*
 * Prepared statements: ONE SQL statement each. Placeholders are '?', numbered
 * from 1 in bind calls; an unbound parameter is NULL. Bind calls copy the
 * value and return 0, or -1 for a bad index (the next step then fails with
 * SG_E_INVAL). Columns are numbered from 0. Column getters return values
 * borrowed until the next step/reset/free; a bad column reads as NULL.
 * store_stmt_step: 1 = a row is available, 0 = done, -1 = error (err set).
 * On PostgreSQL the first step runs the statement and buffers its result.
 * store_stmt_reset clears bindings and results so the statement can be
 * re-bound and re-run. Free every statement before store_close.
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
/* store_col_blob - NULL (len 0) for SQL NULL; an empty blob is non-NULL. */
const void *store_col_blob(struct store_stmt *st, int col, size_t *len_r);
/* store_changes - rows changed by the last step of an INSERT/UPDATE/DELETE. */
int64_t store_changes(struct store_stmt *st);
void store_stmt_free(struct store_stmt **stp);

/*
 * Settings: a key/value table for global settings that are not user/domain
 * properties (MTA settings "mta.*", the server secret, scheduler state).
 * store_setting_get returns 1 found (*value_r malloc'ed, caller frees), 0 not
 * found, -1 error. store_setting_set inserts or replaces (value not NULL) and
 * stamps "updated"; store_setting_delete of an absent key is not an error.
 */
int store_setting_get(struct store *db, const char *key, char **value_r,
	struct sg_error *err);
int store_setting_set(struct store *db, const char *key, const char *value,
	struct sg_error *err);
int store_setting_delete(struct store *db, const char *key, struct sg_error *err);

#endif
