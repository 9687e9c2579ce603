/*
 * store_pg.c - PostgreSQL backend of the store (libpq), for several nodes
 * sharing one database.
 *
 * One PGconn per struct store, used by one thread at a time. SQL written with
 * '?' is rewritten to $1..$n once, at prepare time (store_pg_rewrite). Each
 * execution is one PQexecParams round trip with the unnamed statement: text
 * and integers are sent as text, blobs as binary (paramFormats = 1, type
 * bytea) so NUL bytes need no escaping; results come back in text format
 * (bytea decoded with PQunescapeBytea, integers parsed), which keeps one
 * code path for every column type and no dependence on binary layouts.
 * store_stmt_step walks the rows of the result one at a time.
 *
 * Connection loss: a call made while the connection is bad and no
 * transaction is open first runs PQreset, so a daemon survives a database
 * restart; while the server is down every call fails with SG_E_STORE. A
 * statement is never retried after it was sent: the server may have run it.
 *
 * Errors: SQLSTATE 23505 (unique_violation) is SG_E_EXISTS; everything else,
 * including connection failures, is SG_E_STORE with the server's message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store/store_int.h"

#define PG_OID_INT8 20
#define PG_OID_BYTEA 17
/* Key of the advisory lock serialising migrators ("SGMI"). */
#define PG_MIGRATION_LOCK "1397180745"
#define PG_CONNECT_TIMEOUT "10"

struct store_pg {
	struct store base;  /* first: struct store * casts to this */
	PGconn *c;
};

struct pg_param {
	char *val;  /* NULL = SQL NULL */
	int len;
	int fmt;    /* 0 text, 1 binary */
	unsigned type;
};

struct stmt_pg {
	struct store_stmt base;
	char *sql;         /* rewritten to $n */
	int nparams;
	struct pg_param *params;
	bool bind_bad;     /* a bind failed: step reports it */
	int bad_idx;
	PGresult *res;     /* NULL until executed */
	bool executed;
	int row;           /* current row, -1 before the first step */
	int64_t changes;
	unsigned char **blobs;  /* per column, decoded bytea of the current row */
	size_t *blob_lens;
	int nblobs;
};

static const struct store_ops pg_ops;

static PGconn *conn(struct store *db)
{
	return ((struct store_pg *)db)->c;
}

static struct stmt_pg *P(struct store_stmt *st)
{
	return (struct stmt_pg *)st;
}

/* ------------------------------------------------------ placeholder rewrite */

char *store_pg_rewrite(const char *sql, int *nparams_r, struct sg_error *err)
{
	struct sg_buf b;
	const char *p = sql;
	int n = 0;

	*nparams_r = 0;
	sg_buf_init(&b, 16u * 1024 * 1024);
	while (*p != '\0') {
		const char *start = p;

		if (*p == '\'' || *p == '"') {
			/* E'...' strings also end a quote with backslash escapes */
			char q = *p;
			bool bs = q == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
				(p - 1 == sql || !(p[-2] == '_' || (p[-2] >= 'a' && p[-2] <= 'z') ||
				(p[-2] >= 'A' && p[-2] <= 'Z') || (p[-2] >= '0' && p[-2] <= '9')));

			p++;
			while (*p != '\0') {
				if (bs && *p == '\\' && p[1] != '\0') {
					p += 2;
					continue;
				}
				if (*p == q) {
					if (p[1] == q) {  /* doubled quote inside */
						p += 2;
						continue;
					}
					p++;
					break;
				}
				p++;
			}
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");

			p = end != NULL ? end + 2 : p + strlen(p);
		} else if (*p == '?') {
			if (n >= STORE_MAX_PARAMS) {
				sg_error_set(err, SG_E_LIMIT, "store: more than %d parameters",
					STORE_MAX_PARAMS);
				goto fail;
			}
			n++;
			if (sg_buf_printf(&b, err, "$%d", n) < 0)
				goto fail;
			p++;
			continue;
		} else {
			p++;
		}
		if (sg_buf_append(&b, start, (size_t)(p - start), err) < 0)
			goto fail;
	}
	*nparams_r = n;
	return sg_buf_steal(&b);
fail:
	sg_buf_deinit(&b);
	return NULL;
}

/* ------------------------------------------------------------------- errors */

/* set_err - map a failed result (or the connection state) to our codes */
static void set_err(struct store *db, const PGresult *res, struct sg_error *err,
	const char *what)
{
	PGconn *c = conn(db);
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	enum sg_errc code = SG_E_STORE;

	if (PQstatus(c) == CONNECTION_BAD) {
		store_error_backend(err, SG_E_STORE, "store: connection to PostgreSQL lost",
			PQerrorMessage(c));
		return;
	}
	if (state != NULL && strcmp(state, "23505") == 0)
		code = SG_E_EXISTS;
	if (msg == NULL || *msg == '\0')
		msg = res != NULL ? PQresultErrorMessage(res) : NULL;
	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(c);
	store_error_backend(err, code, what, msg);
	if (state != NULL)
		sg_error_prefix(err, "[%.5s] ", state);
}

/* ensure_conn - reconnect a dropped connection when no transaction is open */
static int ensure_conn(struct store *db, struct sg_error *err)
{
	PGconn *c = conn(db);

	if (PQstatus(c) == CONNECTION_OK)
		return 0;
	if (db->in_tx) {
		sg_error_set(err, SG_E_STORE,
			"store: connection to PostgreSQL lost inside a transaction");
		return -1;
	}
	PQreset(c);
	if (PQstatus(c) != CONNECTION_OK) {
		store_error_backend(err, SG_E_STORE, "store: cannot reconnect to PostgreSQL",
			PQerrorMessage(c));
		return -1;
	}
	sg_log(SG_LOG_INFO, "store: reconnected to PostgreSQL");
	return 0;
}

/* run - PQexec sql, expecting no error; 0 ok, -1 err */
static int run(struct store *db, const char *sql, const char *what,
	struct sg_error *err)
{
	PGresult *res;
	ExecStatusType s;

	if (ensure_conn(db, err) < 0)
		return -1;
	res = PQexec(conn(db), sql);
	s = PQresultStatus(res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		set_err(db, res, err, what);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static int pg_exec(struct store *db, const char *sql, struct sg_error *err)
{
	return run(db, sql, "store: exec", err);
}

/* --------------------------------------------------------------- statements */

static struct store_stmt *pg_prepare(struct store *db, const char *sql,
	struct sg_error *err)
{
	struct stmt_pg *st;
	int n = 0;
	char *q = store_pg_rewrite(sql, &n, err);

	if (q == NULL)
		return NULL;
	st = sg_xcalloc(1, sizeof(*st));
	st->base.db = db;
	st->sql = q;
	st->nparams = n;
	st->params = sg_xcalloc((size_t)n + 1, sizeof(*st->params));
	st->row = -1;
	return &st->base;
}

static void clear_blobs(struct stmt_pg *s)
{
	int i;

	for (i = 0; i < s->nblobs; i++) {
		if (s->blobs[i] != NULL)
			PQfreemem(s->blobs[i]);
		s->blobs[i] = NULL;
	}
}

/* set_param - store a copy of the value (len bytes + NUL) for idx */
static int set_param(struct store_stmt *st, int idx, const void *v, size_t len,
	int fmt, unsigned type)
{
	struct stmt_pg *s = P(st);
	struct pg_param *pp;

	if (idx < 1 || idx > s->nparams || len > INT32_MAX) {
		if (!s->bind_bad)
			s->bad_idx = idx;
		s->bind_bad = true;
		return -1;
	}
	pp = &s->params[idx - 1];
	free(pp->val);
	pp->val = NULL;
	pp->len = 0;
	pp->fmt = fmt;
	pp->type = type;
	if (v != NULL) {
		pp->val = sg_xmalloc(len + 1);
		memcpy(pp->val, v, len);
		pp->val[len] = '\0';
		pp->len = (int)len;
	}
	return 0;
}

static int pg_bind_text(struct store_stmt *st, int idx, const char *v)
{
	return set_param(st, idx, v, strlen(v), 0, 0);
}

static int pg_bind_int64(struct store_stmt *st, int idx, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	return set_param(st, idx, num, (size_t)n, 0, PG_OID_INT8);
}

static int pg_bind_blob(struct store_stmt *st, int idx, const void *v, size_t len)
{
	return set_param(st, idx, v, len, 1, PG_OID_BYTEA);
}

static int pg_bind_null(struct store_stmt *st, int idx)
{
	return set_param(st, idx, NULL, 0, 0, 0);
}

/* execute - one PQexecParams round trip for the bound values */
static int execute(struct stmt_pg *s, struct sg_error *err)
{
	struct store *db = s->base.db;
	const char **vals = NULL;
	int *lens = NULL, *fmts = NULL;
	Oid *types = NULL;
	ExecStatusType status;
	int i, rc = -1;
	int64_t n;

	if (s->bind_bad) {
		sg_error_set(err, SG_E_INVAL, "store: bind: bad parameter index %d (statement has %d)",
			s->bad_idx, s->nparams);
		return -1;
	}
	if (ensure_conn(db, err) < 0)
		return -1;
	vals = sg_xcalloc((size_t)s->nparams + 1, sizeof(*vals));
	lens = sg_xcalloc((size_t)s->nparams + 1, sizeof(*lens));
	fmts = sg_xcalloc((size_t)s->nparams + 1, sizeof(*fmts));
	types = sg_xcalloc((size_t)s->nparams + 1, sizeof(*types));
	for (i = 0; i < s->nparams; i++) {
		vals[i] = s->params[i].val;
		lens[i] = s->params[i].len;
		fmts[i] = s->params[i].fmt;
		types[i] = s->params[i].type;
	}
	s->executed = true;
	s->res = PQexecParams(conn(db), s->sql, s->nparams, types, vals, lens, fmts, 0);
	status = PQresultStatus(s->res);
	if (status == PGRES_TUPLES_OK) {
		s->nblobs = PQnfields(s->res);
		s->blobs = sg_xcalloc((size_t)s->nblobs + 1, sizeof(*s->blobs));
		s->blob_lens = sg_xcalloc((size_t)s->nblobs + 1, sizeof(*s->blob_lens));
	} else if (status == PGRES_COMMAND_OK) {
		if (sg_parse_i64(PQcmdTuples(s->res), 0, INT64_MAX, &n) == 0)
			s->changes = n;
	} else {
		set_err(db, s->res, err, "store");
		PQclear(s->res);
		s->res = NULL;
		goto out;
	}
	rc = 0;
out:
	free(vals);
	free(lens);
	free(fmts);
	free(types);
	return rc;
}

static int pg_step(struct store_stmt *st, struct sg_error *err)
{
	struct stmt_pg *s = P(st);

	if (!s->executed && execute(s, err) < 0)
		return -1;
	clear_blobs(s);
	if (s->res == NULL || PQresultStatus(s->res) != PGRES_TUPLES_OK)
		return 0;
	if (s->row < PQntuples(s->res))
		s->row++;
	return s->row < PQntuples(s->res) ? 1 : 0;
}

static int pg_reset(struct store_stmt *st)
{
	struct stmt_pg *s = P(st);
	int i;

	clear_blobs(s);
	free(s->blobs);
	free(s->blob_lens);
	s->blobs = NULL;
	s->blob_lens = NULL;
	s->nblobs = 0;
	PQclear(s->res);
	s->res = NULL;
	s->executed = false;
	s->row = -1;
	s->changes = 0;
	s->bind_bad = false;
	for (i = 0; i < s->nparams; i++) {
		free(s->params[i].val);
		memset(&s->params[i], 0, sizeof(s->params[i]));
	}
	return 0;
}

/* on_row - true when col is a valid column of the current row */
static bool on_row(struct stmt_pg *s, int col)
{
	return s->res != NULL && PQresultStatus(s->res) == PGRES_TUPLES_OK &&
		s->row >= 0 && s->row < PQntuples(s->res) && col >= 0 &&
		col < PQnfields(s->res);
}

static int pg_col_count(struct store_stmt *st)
{
	struct stmt_pg *s = P(st);

	if (s->res == NULL || PQresultStatus(s->res) != PGRES_TUPLES_OK)
		return 0;
	return PQnfields(s->res);
}

static bool pg_col_is_null(struct store_stmt *st, int col)
{
	struct stmt_pg *s = P(st);

	return !on_row(s, col) || PQgetisnull(s->res, s->row, col);
}

static const char *pg_col_text(struct store_stmt *st, int col)
{
	struct stmt_pg *s = P(st);

	if (pg_col_is_null(st, col))
		return NULL;
	return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_col_int64(struct store_stmt *st, int col)
{
	const char *t = pg_col_text(st, col);
	int64_t v;

	if (t == NULL)
		return 0;
	/* booleans come back as t/f: make them 1/0 like SQLite */
	if (strcmp(t, "t") == 0)
		return 1;
	if (strcmp(t, "f") == 0)
		return 0;
	if (sg_parse_i64(t, INT64_MIN, INT64_MAX, &v) < 0)
		return 0;
	return v;
}

static const void *pg_col_blob(struct store_stmt *st, int col, size_t *len_r)
{
	struct stmt_pg *s = P(st);
	const char *t = pg_col_text(st, col);
	size_t len = 0;

	*len_r = 0;
	if (t == NULL)
		return NULL;
	if (PQftype(s->res, col) != PG_OID_BYTEA) {
		/* not bytea (e.g. a TEXT column): the bytes as they are */
		*len_r = (size_t)PQgetlength(s->res, s->row, col);
		return t;
	}
	if (s->blobs[col] == NULL) {
		s->blobs[col] = PQunescapeBytea((const unsigned char *)t, &len);
		if (s->blobs[col] == NULL)
			return NULL;  /* out of memory */
		s->blob_lens[col] = len;
	}
	*len_r = s->blob_lens[col];
	return s->blobs[col];
}

static int64_t pg_changes(struct store_stmt *st)
{
	return P(st)->changes;
}

static void pg_stmt_free(struct store_stmt *st)
{
	struct stmt_pg *s = P(st);

	pg_reset(st);
	free(s->params);
	free(s->sql);
	free(s);
}

/* ------------------------------------------------------------- transactions */

static int pg_begin(struct store *db, struct sg_error *err)
{
	return run(db, "BEGIN", "store: begin", err);
}

static int pg_commit(struct store *db, struct sg_error *err)
{
	PGresult *res;
	int rc = -1;

	if (PQstatus(conn(db)) != CONNECTION_OK) {
		sg_error_set(err, SG_E_STORE,
			"store: commit: connection to PostgreSQL lost, transaction rolled back");
		return -1;
	}
	res = PQexec(conn(db), "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		set_err(db, res, err, "store: commit");
	} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		/* COMMIT of a transaction that had an error answers ROLLBACK */
		sg_error_set(err, SG_E_STORE,
			"store: commit: transaction had failed and was rolled back");
	} else {
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static int pg_rollback(struct store *db, struct sg_error *err)
{
	if (PQstatus(conn(db)) != CONNECTION_OK)
		return 0;  /* the server dropped the transaction with the connection */
	return run(db, "ROLLBACK", "store: rollback", err);
}

static int pg_lock_migrations(struct store *db, struct sg_error *err)
{
	return run(db, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")",
		"store: migration lock", err);
}

static int pg_table_exists(struct store *db, const char *table, struct sg_error *err)
{
	struct store_stmt *st = pg_prepare(db, "SELECT 1 FROM information_schema.tables "
		"WHERE table_schema = current_schema() AND table_name = ?", err);
	int rc;

	if (st == NULL)
		return -1;
	pg_bind_text(st, 1, table);
	rc = pg_step(st, err);
	pg_stmt_free(st);
	return rc;
}

/* -------------------------------------------------------------- connection */

static void pg_close(struct store *db)
{
	PQfinish(conn(db));
	free(db);
}

/* notice - route server notices ("relation exists, skipping") to the trace log */
static void notice(void *arg, const char *msg)
{
	char esc[256];
	size_t len = strlen(msg);

	while (len > 0 && msg[len - 1] == '\n')
		len--;
	sg_log_esc(esc, sizeof(esc), msg, len);
	sg_trace(SG_TRACE_STORE, "store: postgres: %s", esc);
}

/* store_pg_open - connect; the URL's own parameters override our defaults */
struct store *store_pg_open(const char *url, struct sg_error *err)
{
	/* dbname (the URL, expanded) comes last so its settings win */
	static const char *const kw[] = {"connect_timeout", "application_name",
		"client_encoding", "dbname", NULL};
	const char *vals[] = {PG_CONNECT_TIMEOUT, "sealgate", "UTF8", url, NULL};
	struct store_pg *d;
	PQconninfoOption *opts;
	char *perr = NULL;

	opts = PQconninfoParse(url, &perr);
	if (opts == NULL) {
		store_error_backend(err, SG_E_INVAL, "store: bad database URL",
			perr != NULL ? perr : "out of memory");
		PQfreemem(perr);
		return NULL;
	}
	PQconninfoFree(opts);

	d = sg_xcalloc(1, sizeof(*d));
	d->base.ops = &pg_ops;
	d->base.backend = STORE_POSTGRES;
	d->c = PQconnectdbParams(kw, vals, 1);
	if (d->c == NULL) {
		sg_error_set(err, SG_E_NOMEM, "store: PostgreSQL: out of memory");
		free(d);
		return NULL;
	}
	PQsetNoticeProcessor(d->c, notice, NULL);
	if (PQstatus(d->c) != CONNECTION_OK) {
		store_error_backend(err, SG_E_STORE, "store: cannot connect to PostgreSQL",
			PQerrorMessage(d->c));
		pg_close(&d->base);
		return NULL;
	}
	return &d->base;
}

static const struct store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.exec = pg_exec,
	.prepare = pg_prepare,
	.bind_text = pg_bind_text,
	.bind_int64 = pg_bind_int64,
	.bind_blob = pg_bind_blob,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.reset = pg_reset,
	.col_count = pg_col_count,
	.col_is_null = pg_col_is_null,
	.col_text = pg_col_text,
	.col_int64 = pg_col_int64,
	.col_blob = pg_col_blob,
	.changes = pg_changes,
	.stmt_free = pg_stmt_free,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.lock_migrations = pg_lock_migrations,
	.table_exists = pg_table_exists,
};
