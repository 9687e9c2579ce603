/*
 * ca_request.c - certificate request handlers behind one interface (F-CA-4),
 * the delayed-request queue and its worker, auto request (F-CA-5) and bulk
 * requests (F-CA-6).
 *
 * Called by the CLI, the MPA (auto request) and the daemon's scheduler
 * (ca_worker_run), each in its own thread with its own struct ca. The queue is
 * table ca_request: state pending -> issued | failed | cancelled; failed and
 * cancelled requests can be retried (back to pending). A worker claims a
 * request with a conditional UPDATE (state still 'pending'), so two workers
 * never issue the same request twice.
 */
#include "ca/ca_int.h"

#include <stdlib.h>
#include <string.h>

static int req_builtin(struct ca *ca, const struct ca_request *rq, struct ca_issued *r,
	struct sg_error *err)
{
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;

	o.ca_name = rq->ca_name;
	o.subject = rq->subject;
	o.key_pem = rq->key_pem;
	return ca_issue(ca, &o, r, err);
}

static int req_enqueue(struct ca *ca, const struct ca_request *rq, int64_t *id_r,
	struct sg_error *err)
{
	struct store_stmt *st;
	const struct ca_subject *s = &rq->subject;
	char lc[CA_VALUE_MAX + 1];
	int64_t now = sg_now();
	int r;

	if (rq->key_pem != NULL) {
		sg_error_set(err, SG_E_INVAL, "the delayed handler does not take a key");
		return -1;
	}
	if (ca_subject_check(s, "request", err) < 0)
		return -1;
	ca_name_lower(s->email, lc, sizeof(lc));
	st = store_prepare(ca->db, "INSERT INTO ca_request (email, cn, org, first_name, "
		"last_name, ca_name, handler, state, attempts, created, updated) "
		"VALUES (?, ?, ?, ?, ?, ?, 'delayed', 'pending', 0, ?, ?) RETURNING id", err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, lc);
	store_bind_text(st, 2, s->cn != NULL && s->cn[0] != '\0' ? s->cn : lc);
	store_bind_text(st, 3, s->org);
	store_bind_text(st, 4, s->first_name);
	store_bind_text(st, 5, s->last_name);
	store_bind_text(st, 6, rq->ca_name);
	store_bind_int64(st, 7, now);
	store_bind_int64(st, 8, now);
	r = store_stmt_step(st, err);
	if (r > 0)
		*id_r = store_col_int64(st, 0);
	else if (r == 0)
		sg_error_set(err, SG_E_STORE, "queue request: no id returned");
	store_stmt_free(&st);
	if (r > 0)
		sg_log(SG_LOG_INFO, "ca: queued certificate request %lld for %s", (long long)*id_r,
			lc);
	return r > 0 ? 0 : -1;
}

int ca_request_submit(struct ca *ca, int h, const struct ca_request *rq,
	struct ca_issued *issued, int64_t *id_r, struct sg_error *err)
{
	enum ca_handler handler;
	char *v = NULL;

	if (rq->subject.email == NULL || rq->subject.email[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "an email address is required");
		return -1;
	}
	if (h < 0) {
		if (ca_setting_get(ca, "handler", &v, err) < 0)
			return -1;
		if (ca_handler_parse(v, &handler) < 0)
			handler = CA_HANDLER_BUILTIN;
		free(v);
	} else {
		handler = (enum ca_handler)h;
	}
	switch (handler) {
	case CA_HANDLER_DELAYED:
		return req_enqueue(ca, rq, id_r, err) < 0 ? -1 : CA_REQ_QUEUED;
	case CA_HANDLER_CMP:
		return ca_cmp_request(ca, rq, issued, err) < 0 ? -1 : CA_REQ_ISSUED;
	case CA_HANDLER_BUILTIN:
		break;
	}
	return req_builtin(ca, rq, issued, err) < 0 ? -1 : CA_REQ_ISSUED;
}

/* ---------------------------------------------------------------- queue */

static void pending_fill(struct store_stmt *st, struct ca_pending *p)
{
	const char *v;

	memset(p, 0, sizeof(*p));
	p->id = store_col_int64(st, 0);
	v = store_col_text(st, 1);
	sg_strlcpy(p->email, v != NULL ? v : "", sizeof(p->email));
	v = store_col_text(st, 2);
	sg_strlcpy(p->cn, v != NULL ? v : "", sizeof(p->cn));
	v = store_col_text(st, 3);
	sg_strlcpy(p->ca_name, v != NULL ? v : "", sizeof(p->ca_name));
	v = store_col_text(st, 4);
	sg_strlcpy(p->handler, v != NULL ? v : "", sizeof(p->handler));
	v = store_col_text(st, 5);
	sg_strlcpy(p->state, v != NULL ? v : "", sizeof(p->state));
	p->attempts = store_col_int64(st, 6);
	p->created = store_col_int64(st, 7);
	p->updated = store_col_int64(st, 8);
	v = store_col_text(st, 9);
	sg_strlcpy(p->last_error, v != NULL ? v : "", sizeof(p->last_error));
	v = store_col_text(st, 10);
	sg_strlcpy(p->thumbprint, v != NULL ? v : "", sizeof(p->thumbprint));
}

#define PENDING_COLS "SELECT id, email, cn, ca_name, handler, state, attempts, created, " \
	"updated, last_error, thumbprint FROM ca_request "

int ca_pending_list(struct ca *ca, const char *state, ca_pending_cb *cb, void *arg,
	struct sg_error *err)
{
	struct store_stmt *st;
	struct ca_pending p;
	int r, cr;

	if (state == NULL)
		st = store_prepare(ca->db, PENDING_COLS "WHERE state IN ('pending', 'working', "
			"'failed') ORDER BY id", err);
	else
		st = store_prepare(ca->db, PENDING_COLS "WHERE state = ? ORDER BY id", err);
	if (st == NULL)
		return -1;
	if (state != NULL)
		store_bind_text(st, 1, state);
	while ((r = store_stmt_step(st, err)) > 0) {
		pending_fill(st, &p);
		cr = cb(&p, arg, err);
		if (cr != 0) {
			r = cr < 0 ? -1 : 0;
			break;
		}
	}
	store_stmt_free(&st);
	return r < 0 ? -1 : 0;
}

/* req_state - move request id from one of the states in `from` to `to` */
static int req_state(struct ca *ca, int64_t id, const char *from_sql, const char *to,
	const char *error, const char *thumb, struct sg_error *err)
{
	struct store_stmt *st;
	char sql[300];
	int64_t n;
	int r;

	snprintf(sql, sizeof(sql), "UPDATE ca_request SET state = ?, updated = ?, "
		"last_error = ?, thumbprint = COALESCE(?, thumbprint) WHERE id = ? AND state IN %s",
		from_sql);
	st = store_prepare(ca->db, sql, err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, to);
	store_bind_int64(st, 2, sg_now());
	store_bind_text(st, 3, error);
	store_bind_text(st, 4, thumb);
	store_bind_int64(st, 5, id);
	r = store_stmt_step(st, err);
	n = store_changes(st);
	store_stmt_free(&st);
	if (r < 0)
		return -1;
	return n > 0 ? 1 : 0;
}

int ca_pending_cancel(struct ca *ca, int64_t id, struct sg_error *err)
{
	int r = req_state(ca, id, "('pending', 'failed')", "cancelled", NULL, NULL, err);

	if (r == 0)
		sg_error_set(err, SG_E_NOTFOUND, "no pending or failed request %lld",
			(long long)id);
	return r > 0 ? 0 : -1;
}

int ca_pending_retry(struct ca *ca, int64_t id, struct sg_error *err)
{
	int r = req_state(ca, id, "('failed', 'cancelled', 'pending')", "pending", NULL, NULL,
		err);

	if (r == 0)
		sg_error_set(err, SG_E_NOTFOUND, "no failed, cancelled or pending request %lld",
			(long long)id);
	return r > 0 ? 0 : -1;
}

/* claim - mark the oldest pending request as being worked on; 1 claimed */
static int claim(struct ca *ca, struct ca_pending *p, char **org, char **fn, char **ln,
	struct sg_error *err)
{
	struct store_stmt *st;
	const char *v;
	int r;

	for (;;) {
		st = store_prepare(ca->db, "SELECT id, email, cn, ca_name, handler, state, "
			"attempts, created, updated, last_error, thumbprint, org, first_name, "
			"last_name FROM ca_request WHERE state = 'pending' ORDER BY id LIMIT 1", err);
		if (st == NULL)
			return -1;
		r = store_stmt_step(st, err);
		if (r <= 0) {
			store_stmt_free(&st);
			return r;
		}
		pending_fill(st, p);
		v = store_col_text(st, 11);
		*org = v != NULL ? sg_xstrdup(v) : NULL;
		v = store_col_text(st, 12);
		*fn = v != NULL ? sg_xstrdup(v) : NULL;
		v = store_col_text(st, 13);
		*ln = v != NULL ? sg_xstrdup(v) : NULL;
		store_stmt_free(&st);
		st = store_prepare(ca->db, "UPDATE ca_request SET state = 'working', "
			"attempts = attempts + 1, updated = ? WHERE id = ? AND state = 'pending'", err);
		if (st == NULL)
			return -1;
		store_bind_int64(st, 1, sg_now());
		store_bind_int64(st, 2, p->id);
		r = store_stmt_step(st, err);
		r = r < 0 ? -1 : store_changes(st) > 0 ? 1 : 0;
		store_stmt_free(&st);
		if (r != 0)
			return r;
		/* another worker took it: try the next one */
		free(*org);
		free(*fn);
		free(*ln);
		*org = *fn = *ln = NULL;
	}
}

/* requeue_stale - requests left "working" by a worker that died go back to
 * pending after CA_WORKING_STALE seconds */
#define CA_WORKING_STALE 600
static int requeue_stale(struct ca *ca, struct sg_error *err)
{
	struct store_stmt *st = store_prepare(ca->db, "UPDATE ca_request SET state = "
		"'pending', updated = ? WHERE state = 'working' AND updated < ?", err);
	int r;

	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, sg_now());
	store_bind_int64(st, 2, sg_now() - CA_WORKING_STALE);
	r = store_stmt_step(st, err);
	store_stmt_free(&st);
	return r < 0 ? -1 : 0;
}

int ca_worker_run(struct ca *ca, size_t max, struct sg_error *err)
{
	struct ca_pending p;
	struct ca_request rq;
	struct ca_issued is;
	struct sg_error e;
	char *org = NULL, *fn = NULL, *ln = NULL;
	size_t done = 0;
	int issued = 0, r;

	if (requeue_stale(ca, err) < 0)
		return -1;
	while (max == 0 || done < max) {
		r = claim(ca, &p, &org, &fn, &ln, err);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done++;
		memset(&rq, 0, sizeof(rq));
		rq.subject.email = p.email;
		rq.subject.cn = p.cn;
		rq.subject.org = org;
		rq.subject.first_name = fn;
		rq.subject.last_name = ln;
		rq.ca_name = p.ca_name[0] != '\0' ? p.ca_name : NULL;
		if (req_builtin(ca, &rq, &is, &e) < 0) {
			sg_log(SG_LOG_WARN, "ca: request %lld for %s failed: %s", (long long)p.id,
				p.email, e.msg);
			if (req_state(ca, p.id, "('working')", "failed", e.msg, NULL, err) < 0)
				r = -1;
		} else {
			issued++;
			if (req_state(ca, p.id, "('working')", "issued", NULL, is.thumbprint, err) < 0)
				r = -1;
		}
		free(org);
		free(fn);
		free(ln);
		org = fn = ln = NULL;
		if (r < 0)
			return -1;
	}
	return issued;
}

/* ------------------------------------------------------- auto / bulk */

int ca_has_signing_cert(struct ca *ca, const char *email, struct sg_error *err)
{
	struct pki_owner chain[1] = {{PKI_OWNER_USER, email}};
	struct pki_selected sel;

	return pki_select_signing(ca->pki, email, chain, 1, PKI_SELECT_AUTO, 0, &sel, err);
}

/* has_pending - 1 when a delayed request for email is pending */
static int has_pending(struct ca *ca, const char *email, struct sg_error *err)
{
	struct store_stmt *st = store_prepare(ca->db, "SELECT id FROM ca_request WHERE "
		"email = ? AND state IN ('pending', 'working') LIMIT 1", err);
	char lc[CA_VALUE_MAX + 1];
	int r;

	if (st == NULL)
		return -1;
	ca_name_lower(email, lc, sizeof(lc));
	store_bind_text(st, 1, lc);
	r = store_stmt_step(st, err);
	store_stmt_free(&st);
	return r;
}

int ca_auto_request(struct ca *ca, const char *email, struct ca_issued *issued,
	struct sg_error *err)
{
	struct ca_request rq;
	int64_t id = 0;
	int r;

	r = has_pending(ca, email, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	memset(&rq, 0, sizeof(rq));
	rq.subject.email = email;
	r = ca_request_submit(ca, -1, &rq, issued, &id, err);
	if (r < 0)
		return -1;
	return r == CA_REQ_ISSUED ? 1 : 0;
}

int ca_bulk(struct ca *ca, const struct ca_csv *csv, int h, ca_bulk_cb *cb, void *arg,
	struct sg_error *err)
{
	struct ca_request rq;
	struct ca_issued is;
	struct sg_error e;
	char out[SG_ERROR_MSG_MAX + 160];
	int64_t id = 0;
	size_t i;
	int failed = 0, r;

	for (i = 0; i < csv->n; i++) {
		const struct ca_csv_row *row = &csv->rows[i];

		r = ca_has_signing_cert(ca, row->email, &e);
		if (r < 0 && e.code == SG_E_STORE) {
			*err = e;
			return -1;
		}
		if (r > 0) {
			if (cb != NULL)
				cb(row, "skipped (valid signing certificate)", arg);
			continue;
		}
		if (r == 0)
			r = has_pending(ca, row->email, &e);
		if (r > 0) {
			if (cb != NULL)
				cb(row, "skipped (request pending)", arg);
			continue;
		}
		memset(&rq, 0, sizeof(rq));
		rq.subject.email = row->email;
		rq.subject.cn = row->cn;
		rq.subject.org = row->org;
		rq.subject.first_name = row->first_name;
		rq.subject.last_name = row->last_name;
		if (r == 0)
			r = ca_request_submit(ca, h, &rq, &is, &id, &e);
		if (r < 0) {
			failed++;
			snprintf(out, sizeof(out), "error line %u: %s", row->line, e.msg);
			if (e.code == SG_E_STORE) {
				*err = e;
				return -1;
			}
		} else if (r == CA_REQ_ISSUED) {
			snprintf(out, sizeof(out), "issued %s", is.thumbprint);
		} else {
			snprintf(out, sizeof(out), "queued %lld", (long long)id);
		}
		if (cb != NULL)
			cb(row, out, arg);
	}
	return failed;
}
