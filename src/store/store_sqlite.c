/*
 * store_sqlite.c - SQLite backend of the store (the default, embedded).
 *
 * One sqlite3 handle per struct store, used by one thread at a time (opened
 * with SQLITE_OPEN_NOMUTEX). The file is created with mode 0600 before SQLite
 * opens it (the -wal/-shm files inherit that mode); the connection runs in WAL
 * mode with synchronous=NORMAL, foreign keys on and a 5 s busy timeout.
 * Transactions start with BEGIN IMMEDIATE so a writer takes the write lock up
 * front and waits on the busy timeout, instead of failing with SQLITE_BUSY
 * when a read transaction is later upgraded.
 *
 * Errors: SQLITE_BUSY/LOCKED (after the timeout), I/O and full-disk errors are
 * SG_E_STORE; SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY are SG_E_EXISTS; anything
 * else is SG_E_STORE with SQLite's message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store_int.h"

#define SQLITE_BUSY_MS 5000

/*
 * Prepared-statement cache: a freed statement is reset and kept for the next
 * prepare of the same SQL text on this connection, so hot paths (policy and
 * certificate lookups per recipient) do not compile their SQL every time.
 * A statement is handed to one user at a time; a second concurrent prepare of
 * the same SQL gets a fresh, uncached one. SQLite re-prepares a cached
 * statement by itself after a schema change.
 */
#define STMT_CACHE_MAX 64

struct stmt_cache_entry {
	char *sql;
	uint64_t hash;
	sqlite3_stmt *s;
	bool in_use;
};

struct store_sqlite {
	struct store base;  /* first: struct store * casts to this */
	sqlite3 *h;
	char *path;
	struct stmt_cache_entry cache[STMT_CACHE_MAX];
	size_t ncache;
};

struct stmt_sqlite {
	struct store_stmt base;
	sqlite3_stmt *s;
	struct stmt_cache_entry *cached;  /* or NULL: finalized when freed */
	int64_t changes;
	int bind_rc;  /* first bind failure, reported by step */
};

static uint64_t sql_hash(const char *sql)
{
	uint64_t h = 1469598103934665603ull;

	for (; *sql != '\0'; sql++)
		h = (h ^ (unsigned char)*sql) * 1099511628211ull;
	return h;
}

static const struct store_ops sqlite_ops;

static sqlite3 *handle(struct store *db)
{
	return ((struct store_sqlite *)db)->h;
}

/* set_err - map the connection's last error to our codes */
static void set_err(struct store *db, struct sg_error *err, const char *what)
{
	sqlite3 *h = handle(db);
	int x = sqlite3_extended_errcode(h);
	enum sg_errc code = SG_E_STORE;

	if (x == SQLITE_CONSTRAINT_UNIQUE || x == SQLITE_CONSTRAINT_PRIMARYKEY)
		code = SG_E_EXISTS;
	store_error_backend(err, code, what, sqlite3_errmsg(h));
}

static int sqlite_exec(struct store *db, const char *sql, struct sg_error *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(handle(db), sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		/* sqlite3_exec's message equals sqlite3_errmsg; use the mapped one */
		set_err(db, err, "store: exec");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static struct store_stmt *sqlite_prepare(struct store *db, const char *sql,
	struct sg_error *err)
{
	struct store_sqlite *d = (struct store_sqlite *)db;
	struct stmt_sqlite *st;
	sqlite3_stmt *s = NULL;
	const char *tail = NULL;
	uint64_t h = sql_hash(sql);
	size_t i;

	for (i = 0; i < d->ncache; i++) {
		struct stmt_cache_entry *e = &d->cache[i];

		if (!e->in_use && e->hash == h && strcmp(e->sql, sql) == 0) {
			e->in_use = true;
			st = sg_xcalloc(1, sizeof(*st));
			st->base.db = db;
			st->s = e->s;
			st->cached = e;
			return &st->base;
		}
	}
	if (sqlite3_prepare_v2(handle(db), sql, -1, &s, &tail) != SQLITE_OK) {
		set_err(db, err, "store: prepare");
		return NULL;
	}
	if (s == NULL) {
		sg_error_set(err, SG_E_INVAL, "store: prepare: empty SQL");
		return NULL;
	}
	while (tail != NULL && (*tail == ' ' || *tail == '\n' || *tail == '\t' ||
		*tail == ';' || *tail == '\r'))
		tail++;
	if (tail != NULL && *tail != '\0') {
		sqlite3_finalize(s);
		sg_error_set(err, SG_E_INVAL, "store: prepare: more than one statement");
		return NULL;
	}
	st = sg_xcalloc(1, sizeof(*st));
	st->base.db = db;
	st->s = s;
	if (d->ncache < STMT_CACHE_MAX) {
		struct stmt_cache_entry *e = &d->cache[d->ncache++];

		e->sql = sg_xstrdup(sql);
		e->hash = h;
		e->s = s;
		e->in_use = true;
		st->cached = e;
	}
	return &st->base;
}

static struct stmt_sqlite *S(struct store_stmt *st)
{
	return (struct stmt_sqlite *)st;
}

static int bind_result(struct store_stmt *st, int rc)
{
	if (rc == SQLITE_OK)
		return 0;
	if (S(st)->bind_rc == SQLITE_OK)
		S(st)->bind_rc = rc;
	return -1;
}

static int sqlite_bind_text(struct store_stmt *st, int idx, const char *v)
{
	return bind_result(st, sqlite3_bind_text(S(st)->s, idx, v, -1, SQLITE_TRANSIENT));
}

static int sqlite_bind_int64(struct store_stmt *st, int idx, int64_t v)
{
	return bind_result(st, sqlite3_bind_int64(S(st)->s, idx, v));
}

static int sqlite_bind_blob(struct store_stmt *st, int idx, const void *v, size_t len)
{
	return bind_result(st, sqlite3_bind_blob64(S(st)->s, idx, v, len,
		SQLITE_TRANSIENT));
}

static int sqlite_bind_null(struct store_stmt *st, int idx)
{
	return bind_result(st, sqlite3_bind_null(S(st)->s, idx));
}

static int sqlite_step(struct store_stmt *st, struct sg_error *err)
{
	struct stmt_sqlite *s = S(st);
	int rc;

	if (s->bind_rc != SQLITE_OK) {
		sg_error_set(err, SG_E_INVAL, "store: bind: %s", sqlite3_errstr(s->bind_rc));
		return -1;
	}
	rc = sqlite3_step(s->s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		s->changes = sqlite3_changes64(handle(st->db));
		return 0;
	}
	set_err(st->db, err, "store");
	/* A failed step leaves the statement needing a reset before reuse. */
	sqlite3_reset(s->s);
	return -1;
}

static int sqlite_reset(struct store_stmt *st)
{
	S(st)->bind_rc = SQLITE_OK;
	S(st)->changes = 0;
	sqlite3_reset(S(st)->s);
	return sqlite3_clear_bindings(S(st)->s) == SQLITE_OK ? 0 : -1;
}

static int sqlite_col_count(struct store_stmt *st)
{
	return sqlite3_column_count(S(st)->s);
}

static bool col_ok(struct store_stmt *st, int col)
{
	return col >= 0 && col < sqlite3_column_count(S(st)->s);
}

static bool sqlite_col_is_null(struct store_stmt *st, int col)
{
	return !col_ok(st, col) || sqlite3_column_type(S(st)->s, col) == SQLITE_NULL;
}

static const char *sqlite_col_text(struct store_stmt *st, int col)
{
	if (sqlite_col_is_null(st, col))
		return NULL;
	return (const char *)sqlite3_column_text(S(st)->s, col);
}

static int64_t sqlite_col_int64(struct store_stmt *st, int col)
{
	if (!col_ok(st, col))
		return 0;
	return sqlite3_column_int64(S(st)->s, col);
}

static const void *sqlite_col_blob(struct store_stmt *st, int col, size_t *len_r)
{
	const void *p;

	*len_r = 0;
	if (sqlite_col_is_null(st, col))
		return NULL;
	p = sqlite3_column_blob(S(st)->s, col);
	*len_r = (size_t)sqlite3_column_bytes(S(st)->s, col);
	/* An empty, non-NULL blob: SQLite returns NULL; callers must be able to
	 * tell it from SQL NULL. */
	return p != NULL ? p : "";
}

static int64_t sqlite_changes(struct store_stmt *st)
{
	return S(st)->changes;
}

static void sqlite_stmt_free(struct store_stmt *st)
{
	if (S(st)->cached != NULL) {
		/* back to the cache: no open cursor, no bound values kept */
		sqlite3_reset(S(st)->s);
		sqlite3_clear_bindings(S(st)->s);
		S(st)->cached->in_use = false;
	} else {
		sqlite3_finalize(S(st)->s);
	}
	free(st);
}

static int sqlite_begin(struct store *db, struct sg_error *err)
{
	return sqlite_exec(db, "BEGIN IMMEDIATE", err);
}

static int sqlite_commit(struct store *db, struct sg_error *err)
{
	if (sqlite_exec(db, "COMMIT", err) == 0)
		return 0;
	/* A failed COMMIT may leave the transaction open: end it. */
	if (!sqlite3_get_autocommit(handle(db)))
		sqlite3_exec(handle(db), "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int sqlite_rollback(struct store *db, struct sg_error *err)
{
	if (sqlite3_get_autocommit(handle(db)))
		return 0;  /* SQLite already rolled back (e.g. after SQLITE_FULL) */
	return sqlite_exec(db, "ROLLBACK", err);
}

static int sqlite_lock_migrations(struct store *db, struct sg_error *err)
{
	return 0;  /* BEGIN IMMEDIATE already holds the write lock */
}

static int sqlite_table_exists(struct store *db, const char *table, struct sg_error *err)
{
	struct store_stmt *st = sqlite_prepare(db,
		"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", err);
	int rc;

	if (st == NULL)
		return -1;
	sqlite_bind_text(st, 1, table);
	rc = sqlite_step(st, err);
	sqlite_stmt_free(st);
	return rc;
}

static void sqlite_close(struct store *db)
{
	struct store_sqlite *d = (struct store_sqlite *)db;
	size_t i;

	/* Statements must be freed first; close_v2 defers if one leaked. */
	for (i = 0; i < d->ncache; i++) {
		sqlite3_finalize(d->cache[i].s);
		free(d->cache[i].sql);
	}
	sqlite3_close_v2(d->h);
	free(d->path);
	free(d);
}

/* pragma_text - run a pragma returning one text value into out */
static int pragma_text(sqlite3 *h, const char *sql, char *out, size_t outsz)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	out[0] = '\0';
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		sg_strlcpy(out, t != NULL ? (const char *)t : "", outsz);
		rc = 0;
	}
	sqlite3_finalize(s);
	return rc;
}

/* store_sqlite_open - create (0600) and open path, set WAL and pragmas */
struct store *store_sqlite_open(const char *path, struct sg_error *err)
{
	struct store_sqlite *d = NULL;
	char esc[128], mode[32];
	int fd;

	sg_log_esc(esc, sizeof(esc), path, strlen(path));
	/*
	 * Create a missing file ourselves so the mode is 0600 (SQLite would use
	 * 0644). Never open()/close() an EXISTING database file: closing any
	 * descriptor of the file drops every POSIX lock this process holds on
	 * it, including those of other connections (threads) in the process,
	 * which lets concurrent writers corrupt the database (SQLite FAQ,
	 * "How To Corrupt Your Database Files", 2.2).
	 */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd >= 0) {
		close(fd);
	} else if (errno != EEXIST) {
		sg_error_set_errno(err, SG_E_STORE, errno, "store: cannot open %s", esc);
		return NULL;
	}

	d = sg_xcalloc(1, sizeof(*d));
	d->base.ops = &sqlite_ops;
	d->base.backend = STORE_SQLITE;
	d->path = sg_xstrdup(path);
	if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		store_error_backend(err, SG_E_STORE, "store: sqlite open",
			d->h != NULL ? sqlite3_errmsg(d->h) : "out of memory");
		sg_error_prefix(err, "%s: ", esc);
		goto fail;
	}
	sqlite3_extended_result_codes(d->h, 1);
	sqlite3_busy_timeout(d->h, SQLITE_BUSY_MS);
	/* journal_mode is the first statement that reads the file: it fails on
	 * a file that is not a database. */
	if (pragma_text(d->h, "PRAGMA journal_mode = WAL", mode, sizeof(mode)) < 0) {
		set_err(&d->base, err, "store: sqlite");
		sg_error_prefix(err, "%s: ", esc);
		goto fail;
	}
	if (strcmp(mode, "wal") != 0) {
		sg_error_set(err, SG_E_STORE, "store: %s: cannot enable WAL mode (got '%s')",
			esc, mode);
		goto fail;
	}
	if (sqlite_exec(&d->base, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
		err) < 0) {
		sg_error_prefix(err, "%s: ", esc);
		goto fail;
	}
	return &d->base;
fail:
	sqlite_close(&d->base);
	return NULL;
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sqlite_close,
	.exec = sqlite_exec,
	.prepare = sqlite_prepare,
	.bind_text = sqlite_bind_text,
	.bind_int64 = sqlite_bind_int64,
	.bind_blob = sqlite_bind_blob,
	.bind_null = sqlite_bind_null,
	.step = sqlite_step,
	.reset = sqlite_reset,
	.col_count = sqlite_col_count,
	.col_is_null = sqlite_col_is_null,
	.col_text = sqlite_col_text,
	.col_int64 = sqlite_col_int64,
	.col_blob = sqlite_col_blob,
	.changes = sqlite_changes,
	.stmt_free = sqlite_stmt_free,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.lock_migrations = sqlite_lock_migrations,
	.table_exists = sqlite_table_exists,
};
