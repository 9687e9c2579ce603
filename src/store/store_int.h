/*
 * store_int.h - private to src/store/: the backend vtable shared by the
 * dispatch layer (store_core.c) and the backends (store_sqlite.c,
 * store_pg.c), the embedded migration table (generated at build time from
 * src/store/migrations/NNNN_name.sql) and helpers exposed for unit tests.
 */
#ifndef SG_STORE_INT_H
#define SG_STORE_INT_H

#include "store/store.h"

/* Bound parameters are capped so a caller bug cannot make us allocate wildly. */
#define STORE_MAX_PARAMS 32766

struct store_ops {
	const char *name;
	void (*close)(struct store *db);
	int (*exec)(struct store *db, const char *sql, struct sg_error *err);
	struct store_stmt *(*prepare)(struct store *db, const char *sql,
		struct sg_error *err);
	int (*bind_text)(struct store_stmt *st, int idx, const char *v);
	int (*bind_int64)(struct store_stmt *st, int idx, int64_t v);
	int (*bind_blob)(struct store_stmt *st, int idx, const void *v, size_t len);
	int (*bind_null)(struct store_stmt *st, int idx);
	int (*step)(struct store_stmt *st, struct sg_error *err);
	int (*reset)(struct store_stmt *st);
	int (*col_count)(struct store_stmt *st);
	bool (*col_is_null)(struct store_stmt *st, int col);
	const char *(*col_text)(struct store_stmt *st, int col);
	int64_t (*col_int64)(struct store_stmt *st, int col);
	const void *(*col_blob)(struct store_stmt *st, int col, size_t *len_r);
	int64_t (*changes)(struct store_stmt *st);
	void (*stmt_free)(struct store_stmt *st);
	/* begin: SQLite BEGIN IMMEDIATE; PostgreSQL BEGIN (+ reconnect first). */
	int (*begin)(struct store *db, struct sg_error *err);
	int (*commit)(struct store *db, struct sg_error *err);
	int (*rollback)(struct store *db, struct sg_error *err);
	/* lock_migrations: inside a transaction, serialise concurrent migrators. */
	int (*lock_migrations)(struct store *db, struct sg_error *err);
	/* table_exists: 1 yes, 0 no, -1 error. */
	int (*table_exists)(struct store *db, const char *table, struct sg_error *err);
};

/* Common head of every backend's connection struct. */
struct store {
	const struct store_ops *ops;
	enum store_backend backend;
	bool in_tx;  /* between store_begin and store_commit/rollback */
};

/* Common head of every backend's statement struct. */
struct store_stmt {
	struct store *db;
};

struct store *store_sqlite_open(const char *path, struct sg_error *err);
struct store *store_pg_open(const char *url, struct sg_error *err);

/*
 * store_pg_rewrite - copy sql replacing each '?' placeholder with $1..$n,
 * leaving '?' inside '...' literals (with '' escapes), "..." identifiers,
 * -- line comments and block comments untouched. Returns a malloc'ed string
 * and the number of placeholders in *nparams_r, or NULL with err set if
 * there are more than STORE_MAX_PARAMS.
 */
char *store_pg_rewrite(const char *sql, int *nparams_r, struct sg_error *err);

/*
 * store_sql_tokens - substitute the portable tokens ({{BLOB}}, {{SERIAL_PK}},
 * {{BIGINT}}, {{NOCASE}}) for backend; an unknown {{...}} token is an error.
 * Returns malloc'ed SQL or NULL with err set.
 */
char *store_sql_tokens(const char *sql, enum store_backend backend,
	struct sg_error *err);

/* An embedded migration (generated into store_migrations_gen.c). */
struct store_migration {
	int version;
	const char *name;  /* "core" for 0001_core.sql */
	const char *sql;   /* file contents, NUL-terminated */
};
extern const struct store_migration store_migrations[];
extern const size_t store_migrations_count;

/* store_error_backend - set err to code: "what: <escaped backend message>". */
void store_error_backend(struct sg_error *err, enum sg_errc code, const char *what,
	const char *msg);

#endif
