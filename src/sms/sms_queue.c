/*
 * sms_queue.c - the SMS queue (SPEC F-SMS-1): enqueue, list, get, delete,
 * retry, and sms_run_due, the worker step that claims due messages, hands
 * them to a transport and records the outcome with backoff. Phone numbers
 * are normalised with the policy module's parser (guide §4.5).
 *
 * Callers: the PDF feature and the CA (sms_enqueue), the daemon's scheduler
 * (sms_run_due), the CLI. Any thread, with that thread's store connection.
 *
 * Invariants: a message is deleted only after its transport accepted it or
 * on an explicit delete; a claim (status 'sending') is taken by one
 * conditional UPDATE whose row count tells whether this caller won it, so
 * concurrent workers on one database never send a message twice while its
 * lease runs. Texts are never logged (they carry passwords).
 */
#include "sms_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define SMS_LIST_DEFAULT 10000
#define SMS_RUN_DEFAULT 100
#define SMS_LEASE_EXTRA 60

int sms_phone_normalize(const char *in, const char *default_cc, char *out, size_t outsz,
	struct sg_error *err)
{
	char esc[64];

	if (in != NULL && strlen(in) <= 64 && outsz >= SMS_PHONE_MAX &&
		policy_phone_from_tail(in, default_cc, out, outsz) == 1)
		return 0;
	sg_log_esc(esc, sizeof(esc), in != NULL ? in : "", in != NULL ? strlen(in) : 0);
	if (default_cc != NULL && *default_cc != '\0')
		sg_error_set(err, SG_E_INVAL, "bad phone number '%s': want +CC..., 00CC... "
			"or 0... (country code %s) with 6 to 15 digits", esc, default_cc);
	else
		sg_error_set(err, SG_E_INVAL, "bad phone number '%s': want +CC... or "
			"00CC... with 6 to 15 digits", esc);
	return -1;
}

const char *sms_status_name(enum sms_status st)
{
	switch (st) {
	case SMS_ST_QUEUED:
		return "queued";
	case SMS_ST_SENDING:
		return "sending";
	case SMS_ST_FAILED:
		return "failed";
	}
	return "?";
}

/* status_parse - the stored status word; unknown words read as failed */
static enum sms_status status_parse(const char *s)
{
	if (s != NULL && strcmp(s, "queued") == 0)
		return SMS_ST_QUEUED;
	if (s != NULL && strcmp(s, "sending") == 0)
		return SMS_ST_SENDING;
	return SMS_ST_FAILED;
}

/* utf8_is_valid - strict UTF-8 (no overlongs, surrogates or > U+10FFFF) */
static bool utf8_is_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i], need, cp, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (k = 1; k <= need; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
			(need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += need + 1;
	}
	return true;
}

/* text_check - what sms_enqueue accepts as a message text */
static int text_check(const char *text, struct sg_error *err)
{
	size_t len = text != NULL ? strlen(text) : 0;

	if (len == 0) {
		sg_error_set(err, SG_E_INVAL, "SMS text is empty");
		return -1;
	}
	if (len > SMS_TEXT_MAX) {
		sg_error_set(err, SG_E_LIMIT, "SMS text has %zu bytes, at most %d allowed",
			len, SMS_TEXT_MAX);
		return -1;
	}
	if (!utf8_is_valid((const unsigned char *)text, len)) {
		sg_error_set(err, SG_E_INVAL, "SMS text is not valid UTF-8");
		return -1;
	}
	return 0;
}

/* ref_check - a reference is short printable ASCII without spaces */
static int ref_check(const char *ref, struct sg_error *err)
{
	const char *p;

	if (ref == NULL)
		return 0;
	if (*ref == '\0' || strlen(ref) > SMS_REF_MAX)
		goto bad;
	for (p = ref; *p != '\0'; p++) {
		if (*p <= ' ' || *p > '~')
			goto bad;
	}
	return 0;
bad:
	sg_error_set(err, SG_E_INVAL, "SMS reference must be 1..%d printable characters",
		SMS_REF_MAX);
	return -1;
}

/* sms_log - one line about a queued message (with the mail ID when the
 * reference is one) */
static void sms_log(enum sg_log_level lvl, const char *ref, const char *fmt, ...)
	SG_PRINTF(3, 4);
static void sms_log(enum sg_log_level lvl, const char *ref, const char *fmt, ...)
{
	char line[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (ref != NULL && sg_mail_id_is_valid(ref))
		sg_log_mail(lvl, ref, "%s", line);
	else if (ref != NULL)
		sg_log(lvl, "sms: %s, ref=%s", line, ref);
	else
		sg_log(lvl, "sms: %s", line);
}

int sms_enqueue(struct store *db, const char *phone, const char *text, const char *ref,
	int64_t *id_r, struct sg_error *err)
{
	struct store_stmt *st = NULL;
	char e164[SMS_PHONE_MAX];
	int64_t now = sg_now(), id = 0;
	int rc = -1;

	if (sms_phone_normalize(phone, NULL, e164, sizeof(e164), err) < 0 ||
		text_check(text, err) < 0 || ref_check(ref, err) < 0)
		return -1;
	st = store_prepare(db, "INSERT INTO sms_queue (phone, text, ref, status, attempts, "
		"created, next_attempt, lease_until, updated) "
		"VALUES (?, ?, ?, 'queued', 0, ?, ?, 0, ?) RETURNING id", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, e164);
	store_bind_text(st, 2, text);
	store_bind_text(st, 3, ref);
	store_bind_int64(st, 4, now);
	store_bind_int64(st, 5, now);
	store_bind_int64(st, 6, now);
	if (store_stmt_step(st, err) != 1) {
		if (err != NULL && err->code == SG_E_OK)
			sg_error_set(err, SG_E_STORE, "sms: insert returned no id");
		goto out;
	}
	id = store_col_int64(st, 0);
	/* drain: PostgreSQL buffered the result, SQLite finishes the insert */
	if (store_stmt_step(st, err) < 0)
		goto out;
	sms_log(SG_LOG_INFO, ref, "sms=%lld to=%s, status=queued", (long long)id, e164);
	if (id_r != NULL)
		*id_r = id;
	rc = 0;
out:
	store_stmt_free(&st);
	if (rc < 0)
		sg_error_prefix(err, "sms enqueue: ");
	return rc;
}

#define SMS_COLS "id, phone, text, ref, status, attempts, created, next_attempt, " \
	"updated, last_error"

/* entry_read - the current row (SMS_COLS) into e */
static void entry_read(struct store_stmt *st, struct sms_entry *e)
{
	const char *s;

	memset(e, 0, sizeof(*e));
	e->id = store_col_int64(st, 0);
	sg_strlcpy(e->phone, store_col_text(st, 1) ? store_col_text(st, 1) : "",
		sizeof(e->phone));
	e->text = sg_xstrdup(store_col_text(st, 2) ? store_col_text(st, 2) : "");
	s = store_col_text(st, 3);
	e->ref = s != NULL ? sg_xstrdup(s) : NULL;
	e->status = status_parse(store_col_text(st, 4));
	e->attempts = (unsigned)store_col_int64(st, 5);
	e->created = store_col_int64(st, 6);
	e->next_attempt = store_col_int64(st, 7);
	e->updated = store_col_int64(st, 8);
	s = store_col_text(st, 9);
	e->last_error = s != NULL ? sg_xstrdup(s) : NULL;
}

void sms_entry_deinit(struct sms_entry *e)
{
	if (e == NULL)
		return;
	if (e->text != NULL) {
		explicit_bzero(e->text, strlen(e->text));
		free(e->text);
	}
	free(e->ref);
	free(e->last_error);
	memset(e, 0, sizeof(*e));
}

int sms_list(struct store *db, size_t max, struct sms_list *list_r, struct sg_error *err)
{
	struct store_stmt *st;
	size_t cap = 0;
	int rc;

	memset(list_r, 0, sizeof(*list_r));
	if (max == 0)
		max = SMS_LIST_DEFAULT;
	st = store_prepare(db, "SELECT " SMS_COLS " FROM sms_queue ORDER BY id LIMIT ?", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, (int64_t)max);
	while ((rc = store_stmt_step(st, err)) == 1) {
		if (list_r->n == cap) {
			cap = cap ? cap * 2 : 16;
			list_r->v = sg_xrealloc(list_r->v, cap * sizeof(*list_r->v));
		}
		entry_read(st, &list_r->v[list_r->n++]);
	}
	store_stmt_free(&st);
	return rc < 0 ? -1 : 0;
}

void sms_list_deinit(struct sms_list *list)
{
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < list->n; i++)
		sms_entry_deinit(&list->v[i]);
	free(list->v);
	memset(list, 0, sizeof(*list));
}

int sms_get(struct store *db, int64_t id, struct sms_entry *e_r, struct sg_error *err)
{
	struct store_stmt *st;
	int rc;

	memset(e_r, 0, sizeof(*e_r));
	st = store_prepare(db, "SELECT " SMS_COLS " FROM sms_queue WHERE id = ?", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	rc = store_stmt_step(st, err);
	if (rc == 1)
		entry_read(st, e_r);
	store_stmt_free(&st);
	return rc;
}

/* exec_changes - run a bound INSERT/UPDATE/DELETE; the number of rows it
 * changed, or -1 */
static int64_t exec_changes(struct store_stmt *st, struct sg_error *err)
{
	int64_t n;

	if (store_stmt_step(st, err) < 0)
		return -1;
	n = store_changes(st);
	return n;
}

int sms_delete(struct store *db, int64_t id, struct sg_error *err)
{
	struct store_stmt *st;
	int64_t n;

	st = store_prepare(db, "DELETE FROM sms_queue WHERE id = ?", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, id);
	n = exec_changes(st, err);
	store_stmt_free(&st);
	if (n < 0)
		return -1;
	if (n == 0) {
		sg_error_set(err, SG_E_NOTFOUND, "no SMS with id %lld", (long long)id);
		return -1;
	}
	sg_log(SG_LOG_INFO, "sms: sms=%lld, status=deleted", (long long)id);
	return 0;
}

int sms_retry(struct store *db, int64_t id, struct sg_error *err)
{
	struct store_stmt *st;
	struct sms_entry e;
	int64_t n, now = sg_now();
	int rc;

	rc = sms_get(db, id, &e, err);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		sg_error_set(err, SG_E_NOTFOUND, "no SMS with id %lld", (long long)id);
		return -1;
	}
	sms_entry_deinit(&e);
	/* created moves to now so that the lifetime counts afresh */
	st = store_prepare(db, "UPDATE sms_queue SET status = 'queued', next_attempt = ?, "
		"created = ?, updated = ? WHERE id = ? AND status <> 'sending'", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, now);
	store_bind_int64(st, 2, now);
	store_bind_int64(st, 3, now);
	store_bind_int64(st, 4, id);
	n = exec_changes(st, err);
	store_stmt_free(&st);
	if (n < 0)
		return -1;
	if (n == 0) {
		sg_error_set(err, SG_E_INVAL, "SMS %lld is being sent or was removed",
			(long long)id);
		return -1;
	}
	sg_log(SG_LOG_INFO, "sms: sms=%lld, status=queued (retry)", (long long)id);
	return 0;
}

int64_t sms_backoff(unsigned backoff_min, unsigned backoff_max, unsigned attempts)
{
	int64_t d = backoff_min > 0 ? backoff_min : 1;
	unsigned i;

	for (i = 1; i < attempts && d < (int64_t)backoff_max; i++)
		d *= 2;
	if (d > (int64_t)backoff_max)
		d = backoff_max;
	return d;
}

/* ------------------------------------------------------------------ worker */

/* due_ids - ids of up to max due messages into ids (caller frees) */
static int due_ids(struct store *db, int64_t now, unsigned max, int64_t **ids_r,
	size_t *n_r, struct sg_error *err)
{
	struct store_stmt *st;
	int64_t *ids = sg_xcalloc(max, sizeof(*ids));
	size_t n = 0;
	int rc;

	*ids_r = NULL;
	*n_r = 0;
	st = store_prepare(db, "SELECT id FROM sms_queue WHERE "
		"(status = 'queued' AND next_attempt <= ?) OR "
		"(status = 'sending' AND lease_until <= ?) ORDER BY next_attempt, id LIMIT ?",
		err);
	if (st == NULL) {
		free(ids);
		return -1;
	}
	store_bind_int64(st, 1, now);
	store_bind_int64(st, 2, now);
	store_bind_int64(st, 3, max);
	while ((rc = store_stmt_step(st, err)) == 1 && n < max)
		ids[n++] = store_col_int64(st, 0);
	store_stmt_free(&st);
	if (rc < 0) {
		free(ids);
		return -1;
	}
	*ids_r = ids;
	*n_r = n;
	return 0;
}

/* claim - take message id for sending: 1 ours (e filled), 0 someone else has
 * it or it is gone, -1 err */
static int claim(struct store *db, int64_t id, int64_t now, int64_t lease,
	struct sms_entry *e, struct sg_error *err)
{
	struct store_stmt *st;
	int64_t n;

	st = store_prepare(db, "UPDATE sms_queue SET status = 'sending', lease_until = ?, "
		"attempts = attempts + 1, updated = ? WHERE id = ? AND "
		"((status = 'queued' AND next_attempt <= ?) OR "
		"(status = 'sending' AND lease_until <= ?))", err);
	if (st == NULL)
		return -1;
	store_bind_int64(st, 1, now + lease);
	store_bind_int64(st, 2, now);
	store_bind_int64(st, 3, id);
	store_bind_int64(st, 4, now);
	store_bind_int64(st, 5, now);
	n = exec_changes(st, err);
	store_stmt_free(&st);
	if (n <= 0)
		return n < 0 ? -1 : 0;
	return sms_get(db, id, e, err);
}

/* finish - record the outcome of one attempt (only if the claim still
 * stands: an administrator may have deleted the message meanwhile) */
static int finish(struct store *db, const struct sms_entry *e, enum sms_status st_new,
	int64_t next, const char *errmsg, struct sg_error *err)
{
	struct store_stmt *st;
	int64_t n;

	if (errmsg == NULL)
		st = store_prepare(db, "DELETE FROM sms_queue WHERE id = ? AND "
			"status = 'sending'", err);
	else
		st = store_prepare(db, "UPDATE sms_queue SET status = ?, next_attempt = ?, "
			"lease_until = 0, last_error = ?, updated = ? WHERE id = ? AND "
			"status = 'sending'", err);
	if (st == NULL)
		return -1;
	if (errmsg == NULL) {
		store_bind_int64(st, 1, e->id);
	} else {
		store_bind_text(st, 1, sms_status_name(st_new));
		store_bind_int64(st, 2, next);
		store_bind_text(st, 3, errmsg);
		store_bind_int64(st, 4, sg_now());
		store_bind_int64(st, 5, e->id);
	}
	n = exec_changes(st, err);
	store_stmt_free(&st);
	return n < 0 ? -1 : 0;
}

/* run_one - send one claimed message and record the outcome */
static int run_one(struct store *db, struct sms_transport *t,
	const struct sms_settings *s, const struct sms_entry *e, int64_t now,
	struct sms_run_stats *stats, struct sg_error *err)
{
	struct sms_message m = {e->id, e->phone, e->text, e->ref};
	struct sg_error terr;
	enum sg_errc_class cls;
	int64_t next;
	char msg[SG_ERROR_MSG_MAX + 64];

	sg_error_clear(&terr);
	if (sms_transport_send(t, &m, &terr) == 0) {
		if (finish(db, e, SMS_ST_QUEUED, 0, NULL, err) < 0)
			return -1;
		stats->sent++;
		sms_log(SG_LOG_INFO, e->ref, "sms=%lld to=%s, transport=%s, attempts=%u, "
			"status=sent", (long long)e->id, e->phone, sms_transport_name(t),
			e->attempts);
		return 0;
	}
	cls = sg_errc_class(terr.code);
	if (cls == SG_EC_PERMANENT || (s->lifetime > 0 &&
		now - e->created >= (int64_t)s->lifetime)) {
		snprintf(msg, sizeof(msg), "%s%s", cls == SG_EC_PERMANENT ? "" :
			"lifetime exceeded: ", terr.msg);
		if (finish(db, e, SMS_ST_FAILED, 0, msg, err) < 0)
			return -1;
		stats->failed++;
		sms_log(SG_LOG_WARN, e->ref, "sms=%lld to=%s, transport=%s, attempts=%u, "
			"status=failed (%s)", (long long)e->id, e->phone, sms_transport_name(t),
			e->attempts, msg);
		return 0;
	}
	next = now + sms_backoff(s->backoff_min, s->backoff_max, e->attempts);
	if (finish(db, e, SMS_ST_QUEUED, next, terr.msg, err) < 0)
		return -1;
	stats->deferred++;
	sms_log(SG_LOG_WARN, e->ref, "sms=%lld to=%s, transport=%s, attempts=%u, "
		"status=deferred, delay=%llds (%s)", (long long)e->id, e->phone,
		sms_transport_name(t), e->attempts, (long long)(next - now), terr.msg);
	return 0;
}

int sms_run_due(struct store *db, struct sms_transport *t, int64_t now, unsigned max,
	struct sms_run_stats *stats_r, struct sg_error *err)
{
	struct sms_settings *s = NULL;
	struct sms_transport *own = NULL;
	struct sms_run_stats stats = {0, 0, 0};
	int64_t *ids = NULL;
	size_t n = 0, i;
	unsigned deferred;
	int rc = -1;

	if (max == 0)
		max = SMS_RUN_DEFAULT;
	s = sms_settings_load(db, err);
	if (s == NULL)
		goto out;
	if (t == NULL) {
		if (s->transport == SMS_TRANSPORT_NONE) {
			rc = 0;
			goto out;
		}
		own = sms_transport_open(s, err);
		if (own == NULL) {
			sg_error_prefix(err, "sms transport: ");
			goto out;
		}
		t = own;
	}
	if (due_ids(db, now, max, &ids, &n, err) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct sms_entry e;
		int c = claim(db, ids[i], now, (int64_t)s->timeout + SMS_LEASE_EXTRA, &e, err);

		if (c < 0)
			goto out;
		if (c == 0)
			continue;
		deferred = stats.deferred;
		c = run_one(db, t, s, &e, now, &stats, err);
		sms_entry_deinit(&e);
		if (c < 0)
			goto out;
		/* a gateway that failed temporarily (down, slow, overloaded) would
		 * most likely fail the rest too: leave them to the next run, so an
		 * outage costs one timeout per run, not one per message */
		if (stats.deferred > deferred)
			break;
	}
	rc = 0;
out:
	if (stats_r != NULL)
		*stats_r = stats;
	free(ids);
	sms_transport_close(&own);
	sms_settings_free(&s);
	return rc;
}
