/*
 * store_core.c - the backend-independent half of the store: URL dispatch,
 * the public API forwarding to the backend vtable (store_int.h), portable SQL
 * tokens, numbered migrations, store_init and the settings table.
 *
 * Called by every process and thread that touches the database (daemon
 * threads, CLI, tests); one struct store per thread. No global state: the
 * migration table is const data generated at build time.
 *
 * Invariants: a migration is applied at most once per database, inside one
 * transaction that also records it in schema_version, while holding the
 * backend's migration lock (SQLite BEGIN IMMEDIATE, PostgreSQL advisory xact
 * lock); pending migrations are found by set membership, not by max version,
 * so module number ranges can grow independently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define STORE_SQL_MAX (16u * 1024 * 1024)
#define STORE_SECRET_BYTES 32

/* store_error_backend - code + "what: message", the message escaped and
 * stripped of the trailing newline libpq adds. */
void store_error_backend(struct sg_error *err, enum sg_errc code, const char *what,
	const char *msg)
{
	char esc[SG_ERROR_MSG_MAX];
	size_t len;

	if (msg == NULL)
		msg = "unknown error";
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r' ||
		msg[len - 1] == ' '))
		len--;
	sg_log_esc(esc, sizeof(esc), msg, len);
	sg_error_set(err, code, "%s: %s", what, esc);
}

/* store_open - dispatch on the URL scheme */
struct store *store_open(const char *url, struct sg_error *err)
{
	if (url == NULL || *url == '\0') {
		sg_error_set(err, SG_E_INVAL, "store: empty database URL");
		return NULL;
	}
	if (strncmp(url, "sqlite:", 7) == 0) {
		const char *path = url + 7;

		if (path[0] != '/') {
			sg_error_set(err, SG_E_INVAL,
				"store: bad database URL: sqlite needs an absolute path (sqlite:/path/to/file.db)");
			return NULL;
		}
		return store_sqlite_open(path, err);
	}
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
		return store_pg_open(url, err);
	{
		char esc[64];
		const char *colon = strchr(url, ':');
		size_t n = colon != NULL ? (size_t)(colon - url) : strlen(url);

		sg_log_esc(esc, sizeof(esc), url, n);
		sg_error_set(err, SG_E_INVAL,
			"store: bad database URL: unknown scheme '%s' (want sqlite:/PATH or postgresql://...)",
			esc);
	}
	return NULL;
}

void store_close(struct store **dbp)
{
	struct store *db;

	if (dbp == NULL || *dbp == NULL)
		return;
	db = *dbp;
	*dbp = NULL;
	db->ops->close(db);
}

enum store_backend store_backend(const struct store *db)
{
	return db->backend;
}

int store_exec(struct store *db, const char *sql, struct sg_error *err)
{
	return db->ops->exec(db, sql, err);
}

int store_begin(struct store *db, struct sg_error *err)
{
	if (db->in_tx) {
		sg_error_set(err, SG_E_INTERNAL, "store: transaction already open");
		return -1;
	}
	if (db->ops->begin(db, err) < 0)
		return -1;
	db->in_tx = true;
	return 0;
}

int store_commit(struct store *db, struct sg_error *err)
{
	if (!db->in_tx) {
		sg_error_set(err, SG_E_INTERNAL, "store: commit without a transaction");
		return -1;
	}
	/* Whatever the outcome the transaction is over (a failed COMMIT rolls
	 * back on both backends). */
	db->in_tx = false;
	return db->ops->commit(db, err);
}

int store_rollback(struct store *db, struct sg_error *err)
{
	if (!db->in_tx) {
		sg_error_set(err, SG_E_INTERNAL, "store: rollback without a transaction");
		return -1;
	}
	db->in_tx = false;
	return db->ops->rollback(db, err);
}

struct store_stmt *store_prepare(struct store *db, const char *sql, struct sg_error *err)
{
	return db->ops->prepare(db, sql, err);
}

int store_bind_text(struct store_stmt *st, int idx, const char *v)
{
	if (v == NULL)
		return st->db->ops->bind_null(st, idx);
	return st->db->ops->bind_text(st, idx, v);
}

int store_bind_int64(struct store_stmt *st, int idx, int64_t v)
{
	return st->db->ops->bind_int64(st, idx, v);
}

int store_bind_blob(struct store_stmt *st, int idx, const void *v, size_t len)
{
	if (v == NULL && len > 0)
		return -1;
	return st->db->ops->bind_blob(st, idx, v != NULL ? v : "", len);
}

int store_bind_null(struct store_stmt *st, int idx)
{
	return st->db->ops->bind_null(st, idx);
}

int store_stmt_step(struct store_stmt *st, struct sg_error *err)
{
	return st->db->ops->step(st, err);
}

int store_stmt_reset(struct store_stmt *st)
{
	return st->db->ops->reset(st);
}

int store_col_count(struct store_stmt *st)
{
	return st->db->ops->col_count(st);
}

bool store_col_is_null(struct store_stmt *st, int col)
{
	return st->db->ops->col_is_null(st, col);
}

const char *store_col_text(struct store_stmt *st, int col)
{
	return st->db->ops->col_text(st, col);
}

int64_t store_col_int64(struct store_stmt *st, int col)
{
	return st->db->ops->col_int64(st, col);
}

const void *store_col_blob(struct store_stmt *st, int col, size_t *len_r)
{
	size_t dummy;

	return st->db->ops->col_blob(st, col, len_r != NULL ? len_r : &dummy);
}

int64_t store_changes(struct store_stmt *st)
{
	return st->db->ops->changes(st);
}

void store_stmt_free(struct store_stmt **stp)
{
	struct store_stmt *st;

	if (stp == NULL || *stp == NULL)
		return;
	st = *stp;
	*stp = NULL;
	st->db->ops->stmt_free(st);
}

/* ------------------------------------------------------------ SQL tokens */

static const struct {
	const char *token;
	const char *sqlite;
	const char *pg;
} sql_tokens[] = {
	{"BLOB", "BLOB", "BYTEA"},
	{"SERIAL_PK", "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"},
	{"BIGINT", "INTEGER", "BIGINT"},
	{"NOCASE", "COLLATE NOCASE", ""},
};

char *store_sql_tokens(const char *sql, enum store_backend backend, struct sg_error *err)
{
	struct sg_buf b;
	const char *p = sql;
	const char *open;

	sg_buf_init(&b, STORE_SQL_MAX);
	while ((open = strstr(p, "{{")) != NULL) {
		const char *close = strstr(open + 2, "}}");
		size_t n, i;
		const char *rep = NULL;
		char esc[48];

		if (sg_buf_append(&b, p, (size_t)(open - p), err) < 0)
			goto fail;
		if (close == NULL) {
			sg_error_set(err, SG_E_INVAL, "store: unterminated '{{' token in SQL");
			goto fail;
		}
		n = (size_t)(close - (open + 2));
		for (i = 0; i < sizeof(sql_tokens) / sizeof(sql_tokens[0]); i++) {
			if (strlen(sql_tokens[i].token) == n &&
				memcmp(sql_tokens[i].token, open + 2, n) == 0) {
				rep = backend == STORE_SQLITE ? sql_tokens[i].sqlite :
					sql_tokens[i].pg;
				break;
			}
		}
		if (rep == NULL) {
			sg_log_esc(esc, sizeof(esc), open + 2, n);
			sg_error_set(err, SG_E_INVAL, "store: unknown SQL token {{%s}}", esc);
			goto fail;
		}
		if (sg_buf_append_str(&b, rep, err) < 0)
			goto fail;
		p = close + 2;
	}
	if (sg_buf_append_str(&b, p, err) < 0)
		goto fail;
	return sg_buf_steal(&b);
fail:
	sg_buf_deinit(&b);
	return NULL;
}

/* ------------------------------------------------------------ migrations */

int store_schema_latest(void)
{
	if (store_migrations_count == 0)
		return 0;
	return store_migrations[store_migrations_count - 1].version;
}

/* query_int - run sql (one int64 bind, or none if bind < 0) and return the
 * first column of the first row: 1 row found (*v_r set), 0 none, -1 err. */
static int query_int(struct store *db, const char *sql, int64_t bind, int64_t *v_r,
	struct sg_error *err)
{
	struct store_stmt *st = store_prepare(db, sql, err);
	int rc;

	if (st == NULL)
		return -1;
	if (bind >= 0)
		store_bind_int64(st, 1, bind);
	rc = store_stmt_step(st, err);
	if (rc == 1)
		*v_r = store_col_is_null(st, 0) ? 0 : store_col_int64(st, 0);
	store_stmt_free(&st);
	return rc;
}

int store_schema_version(struct store *db, struct sg_error *err)
{
	int64_t v = 0;
	int rc = db->ops->table_exists(db, "schema_version", err);

	if (rc <= 0)
		return rc;  /* -1 error, 0 no table = nothing applied */
	if (query_int(db, "SELECT MAX(version) FROM schema_version", -1, &v, err) < 0)
		return -1;
	return (int)v;
}

static const char schema_version_sql[] =
	"CREATE TABLE IF NOT EXISTS schema_version ("
	"version {{BIGINT}} PRIMARY KEY, name TEXT NOT NULL, applied {{BIGINT}} NOT NULL)";

/* migrate_one - apply m unless present, all under the migration lock */
static int migrate_one(struct store *db, const struct store_migration *m,
	struct sg_error *err)
{
	struct store_stmt *st = NULL;
	char *sql = NULL;
	int64_t dummy;
	int rc = -1, found;

	if (store_begin(db, err) < 0)
		goto out;
	if (db->ops->lock_migrations(db, err) < 0)
		goto out;
	sql = store_sql_tokens(schema_version_sql, db->backend, err);
	if (sql == NULL || store_exec(db, sql, err) < 0)
		goto out;
	free(sql);
	sql = NULL;
	found = query_int(db, "SELECT version FROM schema_version WHERE version = ?",
		m->version, &dummy, err);
	if (found < 0)
		goto out;
	if (found == 0) {
		sql = store_sql_tokens(m->sql, db->backend, err);
		if (sql == NULL || store_exec(db, sql, err) < 0)
			goto out;
		st = store_prepare(db, "INSERT INTO schema_version (version, name, applied) "
			"VALUES (?, ?, ?)", err);
		if (st == NULL)
			goto out;
		store_bind_int64(st, 1, m->version);
		store_bind_text(st, 2, m->name);
		store_bind_int64(st, 3, sg_now());
		if (store_stmt_step(st, err) < 0)
			goto out;
	}
	if (store_commit(db, err) < 0)
		goto out;
	if (found == 0)
		sg_log(SG_LOG_INFO, "store: applied migration %04d_%s", m->version, m->name);
	rc = 0;
out:
	if (rc < 0) {
		if (db->in_tx)
			store_rollback(db, NULL);
		sg_error_prefix(err, "migration %04d_%s: ", m->version, m->name);
	}
	store_stmt_free(&st);
	free(sql);
	return rc;
}

/* applied_versions - mark in done[] (indexed like store_migrations) those
 * already recorded; 0 ok, -1 err. */
static int applied_versions(struct store *db, bool *done, struct sg_error *err)
{
	struct store_stmt *st = NULL;
	int rc;
	size_t i;

	rc = db->ops->table_exists(db, "schema_version", err);
	if (rc <= 0)
		return rc;
	st = store_prepare(db, "SELECT version FROM schema_version", err);
	if (st == NULL)
		return -1;
	while ((rc = store_stmt_step(st, err)) == 1) {
		int64_t v = store_col_int64(st, 0);

		for (i = 0; i < store_migrations_count; i++) {
			if (store_migrations[i].version == v)
				done[i] = true;
		}
		if (v > store_schema_latest())
			sg_log(SG_LOG_WARN, "store: database has migration %lld, newer than "
				"this program knows (%d)", (long long)v, store_schema_latest());
	}
	store_stmt_free(&st);
	return rc < 0 ? -1 : 0;
}

int store_migrate(struct store *db, struct sg_error *err)
{
	bool *done;
	size_t i;
	int rc = -1;

	if (db->in_tx) {
		sg_error_set(err, SG_E_INTERNAL, "store: migrate inside a transaction");
		return -1;
	}
	done = sg_xcalloc(store_migrations_count + 1, sizeof(*done));
	if (applied_versions(db, done, err) < 0)
		goto out;
	for (i = 0; i < store_migrations_count; i++) {
		if (done[i])
			continue;
		if (migrate_one(db, &store_migrations[i], err) < 0)
			goto out;
	}
	rc = 0;
out:
	free(done);
	return rc;
}

/* -------------------------------------------------------------- settings */

int store_setting_get(struct store *db, const char *key, char **value_r,
	struct sg_error *err)
{
	struct store_stmt *st;
	int rc;

	*value_r = NULL;
	if (key == NULL) {
		sg_error_set(err, SG_E_INVAL, "store: setting key is NULL");
		return -1;
	}
	st = store_prepare(db, "SELECT value FROM settings WHERE key = ?", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, key);
	rc = store_stmt_step(st, err);
	if (rc == 1)
		*value_r = sg_xstrdup(store_col_text(st, 0) != NULL ? store_col_text(st, 0) : "");
	store_stmt_free(&st);
	return rc;
}

/* run_kv - run a settings statement binding key, value (if given), now. */
static int run_kv(struct store *db, const char *sql, const char *key,
	const char *value, struct sg_error *err)
{
	struct store_stmt *st;
	int rc, idx = 1;

	if (key == NULL) {
		sg_error_set(err, SG_E_INVAL, "store: setting key is NULL");
		return -1;
	}
	st = store_prepare(db, sql, err);
	if (st == NULL)
		return -1;
	store_bind_text(st, idx++, key);
	if (value != NULL) {
		store_bind_text(st, idx++, value);
		store_bind_int64(st, idx++, sg_now());
	}
	rc = store_stmt_step(st, err);
	store_stmt_free(&st);
	return rc < 0 ? -1 : 0;
}

int store_setting_set(struct store *db, const char *key, const char *value,
	struct sg_error *err)
{
	if (value == NULL) {
		sg_error_set(err, SG_E_INVAL, "store: setting value is NULL");
		return -1;
	}
	return run_kv(db, "INSERT INTO settings (key, value, updated) VALUES (?, ?, ?) "
		"ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
		"updated = excluded.updated", key, value, err);
}

int store_setting_delete(struct store *db, const char *key, struct sg_error *err)
{
	return run_kv(db, "DELETE FROM settings WHERE key = ?", key, NULL, err);
}

int store_init(struct store *db, struct sg_error *err)
{
	unsigned char raw[STORE_SECRET_BYTES];
	char hex[2 * STORE_SECRET_BYTES + 1];
	int rc;

	if (store_migrate(db, err) < 0)
		return -1;
	if (sg_random_bytes(raw, sizeof(raw), err) < 0)
		return -1;
	sg_hex(hex, raw, sizeof(raw));
	/* Insert-if-absent: two racing inits keep the first secret. */
	rc = run_kv(db, "INSERT INTO settings (key, value, updated) VALUES (?, ?, ?) "
		"ON CONFLICT (key) DO NOTHING", "server_secret", hex, err);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(hex, sizeof(hex));
	return rc;
}

int store_ping(struct store *db, struct sg_error *err)
{
	int64_t v = 0;
	int rc = query_int(db, "SELECT 1", -1, &v, err);

	if (rc < 0)
		return -1;
	if (rc == 0 || v != 1) {
		sg_error_set(err, SG_E_STORE, "store: ping returned no row");
		return -1;
	}
	return 0;
}
