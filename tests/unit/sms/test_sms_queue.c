/*
 * test_sms_queue.c - F-SMS-1 (queue) and F-SMS-3 (phone numbers): enqueue
 * validation and normalisation, list/get/delete/retry, and sms_run_due with
 * scripted transports: sent rows are deleted, temporary failures back off
 * exponentially, permanent failures and an exceeded lifetime fail, a claimed
 * message is not sent by a second worker until its lease expires, transport
 * none leaves the queue alone. Built twice: SQLite (unit) and PostgreSQL (e2e).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sms_test.h"

/* ------------------------------------------------------------ phone numbers */

static void test_phone_normalize_guide_cases(void **state)
{
	static const struct {
		const char *in, *cc, *want;  /* want NULL: refused */
	} cases[] = {
		/* guide §4.5: '+', spaces and "-()" */
		{"+31123456", NULL, "+31123456"},
		{"+31-(123)456", NULL, "+31123456"},
		{" +31 6 1234 5678 ", NULL, "+31612345678"},
		{"0031 6-1234-5678", NULL, "+31612345678"},
		/* national trunk 0 replaced by the default country code */
		{"06 12345678", "31", "+31612345678"},
		{"(0)6-12345678", "49", "+49612345678"},
		{"0612345678", NULL, NULL},
		{"0612345678", "", NULL},
		/* guide §4.5 invalid example and other refusals */
		{"31=456", NULL, NULL},
		{"31612345678", NULL, NULL},
		{"+31 12a456", NULL, NULL},
		{"+12345", NULL, NULL},
		{"+1234567890123456", NULL, NULL},
		{"+0123456789", NULL, NULL},
		{"", NULL, NULL},
		{"++31123456", NULL, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[SMS_PHONE_MAX];
		struct sg_error err;
		int rc = sms_phone_normalize(cases[i].in, cases[i].cc, out, sizeof(out), &err);

		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("'%s' cc=%s: accepted as %s, want refused", cases[i].in,
					cases[i].cc ? cases[i].cc : "-", out);
			assert_int_equal(err.code, SG_E_INVAL);
			assert_non_null(strstr(err.msg, "bad phone number"));
		} else {
			if (rc != 0)
				fail_msg("'%s': refused (%s), want %s", cases[i].in, err.msg,
					cases[i].want);
			if (strcmp(out, cases[i].want) != 0)
				fail_msg("'%s': got %s want %s", cases[i].in, out, cases[i].want);
		}
	}
}

/* ------------------------------------------------------------------ enqueue */

static void test_enqueue_list_get(void **state)
{
	struct stest_fx *f = *state;
	struct sg_error err;
	struct sms_list l;
	struct sms_entry e;
	int64_t id1, id2;
	int64_t t0 = sg_now();

	assert_int_equal(sms_enqueue(f->db, "0031 6 1234-5678", "pw: 3x!€", "18F3A2B4C5D6E7F8",
		&id1, &err), 0);
	assert_int_equal(sms_enqueue(f->db, "+44 20 7946 0000", "second", NULL, &id2, &err), 0);
	assert_true(id2 > id1);
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].id, id1);
	assert_string_equal(l.v[0].phone, "+31612345678");
	assert_string_equal(l.v[0].text, "pw: 3x!€");
	assert_string_equal(l.v[0].ref, "18F3A2B4C5D6E7F8");
	assert_int_equal(l.v[0].status, SMS_ST_QUEUED);
	assert_int_equal(l.v[0].attempts, 0);
	assert_true(l.v[0].created >= t0 && l.v[0].created <= sg_now());
	assert_true(l.v[0].next_attempt == l.v[0].created);
	assert_null(l.v[0].last_error);
	assert_string_equal(l.v[1].phone, "+442079460000");
	assert_null(l.v[1].ref);
	sms_list_deinit(&l);
	assert_int_equal(sms_list(f->db, 1, &l, &err), 0);
	assert_int_equal(l.n, 1);
	sms_list_deinit(&l);
	assert_int_equal(sms_get(f->db, id2, &e, &err), 1);
	assert_string_equal(e.text, "second");
	sms_entry_deinit(&e);
	assert_int_equal(sms_get(f->db, id2 + 100, &e, &err), 0);
}

static void test_enqueue_refusals(void **state)
{
	struct stest_fx *f = *state;
	struct sg_error err;
	struct sms_list l;
	char big[SMS_TEXT_MAX + 2];
	static const char bad_utf8[] = {'a', (char)0xc3, '(', 0};
	static const char surrogate[] = {(char)0xed, (char)0xa0, (char)0x80, 0};
	static const char overlong[] = {(char)0xc0, (char)0xaf, 0};

	assert_int_equal(sms_enqueue(f->db, "0612345678", "x", NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(sms_enqueue(f->db, "31=456", "x", NULL, NULL, &err), -1);
	assert_int_equal(sms_enqueue(f->db, "+31612345678", "", NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(sms_enqueue(f->db, "+31612345678", big, NULL, NULL, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	big[SMS_TEXT_MAX] = '\0';  /* exactly the maximum is fine */
	assert_int_equal(sms_enqueue(f->db, "+31612345678", big, NULL, NULL, &err), 0);
	assert_int_equal(sms_enqueue(f->db, "+31612345678", bad_utf8, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "UTF-8"));
	assert_int_equal(sms_enqueue(f->db, "+31612345678", surrogate, NULL, NULL, &err), -1);
	assert_int_equal(sms_enqueue(f->db, "+31612345678", overlong, NULL, NULL, &err), -1);
	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", "has space", NULL, &err), -1);
	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", "", NULL, &err), -1);
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);  /* only the maximum-length one */
	sms_list_deinit(&l);
}

static void test_delete_and_retry(void **state)
{
	struct stest_fx *f = *state;
	struct sg_error err;
	struct sms_entry e;
	int64_t id;

	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, &id, &err), 0);
	assert_int_equal(sms_delete(f->db, id, &err), 0);
	assert_int_equal(sms_get(f->db, id, &e, &err), 0);
	assert_int_equal(sms_delete(f->db, id, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(sms_retry(f->db, id, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);
}

/* ---------------------------------------------------------- backoff and run */

static void test_backoff_table(void **state)
{
	static const struct {
		unsigned min, max, attempts;
		int64_t want;
	} cases[] = {
		{60, 3600, 1, 60}, {60, 3600, 2, 120}, {60, 3600, 3, 240}, {60, 3600, 6, 1920},
		{60, 3600, 7, 3600}, {60, 3600, 1000, 3600}, {10, 10, 5, 10}, {1, 604800, 40,
		604800},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = sms_backoff(cases[i].min, cases[i].max, cases[i].attempts);

		if (got != cases[i].want)
			fail_msg("backoff(%u,%u,%u): got %lld want %lld", cases[i].min,
				cases[i].max, cases[i].attempts, (long long)got,
				(long long)cases[i].want);
	}
}

/* A scripted transport: outcome[i] for call i (the last repeats). */
struct fake {
	enum sg_errc outcome[8];  /* SG_E_OK = accept */
	size_t n_outcome;
	size_t calls;
	char last_phone[SMS_PHONE_MAX];
	char last_text[256];
	/* optional hook run inside send (to act from "another process") */
	void (*hook)(struct fake *fk, const struct sms_message *m);
	struct stest_fx *f;
	struct sms_run_stats hook_stats;
	int hook_rc;
};

static int fake_send(void *arg, const struct sms_message *m, struct sg_error *err)
{
	struct fake *fk = arg;
	enum sg_errc o = fk->outcome[fk->calls < fk->n_outcome ? fk->calls :
		fk->n_outcome - 1];

	fk->calls++;
	sg_strlcpy(fk->last_phone, m->phone, sizeof(fk->last_phone));
	sg_strlcpy(fk->last_text, m->text, sizeof(fk->last_text));
	if (fk->hook != NULL)
		fk->hook(fk, m);
	if (o == SG_E_OK)
		return 0;
	sg_error_set(err, o, "scripted %s", sg_errc_name(o));
	return -1;
}

static void test_run_sent_deleted(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_OK}, 1, 0, "", "", NULL, NULL, {0, 0, 0}, 0};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct sms_list l;

	assert_int_equal(sms_enqueue(f->db, "+31612345678", "hello", NULL, NULL, &err), 0);
	assert_int_equal(sms_run_due(f->db, t, sg_now(), 0, &st, &err), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.deferred + st.failed, 0);
	assert_string_equal(fk.last_phone, "+31612345678");
	assert_string_equal(fk.last_text, "hello");
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 0);  /* sent messages do not stay in the database */
	sms_list_deinit(&l);
	/* nothing left: a second run sends nothing */
	assert_int_equal(sms_run_due(f->db, t, sg_now(), 0, &st, &err), 0);
	assert_int_equal(st.sent, 0);
	assert_int_equal(fk.calls, 1);
	sms_transport_close(&t);
	assert_null(t);
}

static void test_run_temporary_backoff_then_sent(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_PEER_TEMP, SG_E_CONFIG, SG_E_OK}, 3, 0, "", "", NULL, NULL,
		{0, 0, 0}, 0};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct sms_entry e;
	int64_t id, now;

	stest_set(f->db, "backoff_min", "1m");
	stest_set(f->db, "backoff_max", "1h");
	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, &id, &err), 0);
	now = sg_now();
	assert_int_equal(sms_run_due(f->db, t, now, 0, &st, &err), 0);
	assert_int_equal(st.deferred, 1);
	assert_int_equal(sms_get(f->db, id, &e, &err), 1);
	assert_int_equal(e.status, SMS_ST_QUEUED);
	assert_int_equal(e.attempts, 1);
	assert_int_equal(e.next_attempt, now + 60);
	assert_string_equal(e.last_error, "scripted peer-temp");
	sms_entry_deinit(&e);
	/* not due before the backoff */
	assert_int_equal(sms_run_due(f->db, t, now + 59, 0, &st, &err), 0);
	assert_int_equal(st.sent + st.deferred + st.failed, 0);
	assert_int_equal(fk.calls, 1);
	/* an internal error (misconfigured transport) is retried too, doubled */
	assert_int_equal(sms_run_due(f->db, t, now + 60, 0, &st, &err), 0);
	assert_int_equal(st.deferred, 1);
	assert_int_equal(sms_get(f->db, id, &e, &err), 1);
	assert_int_equal(e.attempts, 2);
	assert_int_equal(e.next_attempt, now + 60 + 120);
	sms_entry_deinit(&e);
	assert_int_equal(sms_run_due(f->db, t, now + 180, 0, &st, &err), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(sms_get(f->db, id, &e, &err), 0);
	assert_int_equal(fk.calls, 3);
	sms_transport_close(&t);
}

static void test_run_permanent_fails_then_retry(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_PEER_PERM, SG_E_OK}, 2, 0, "", "", NULL, NULL, {0, 0, 0}, 0};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct sms_entry e;
	int64_t id, now = sg_now();

	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, &id, &err), 0);
	assert_int_equal(sms_run_due(f->db, t, now, 0, &st, &err), 0);
	assert_int_equal(st.failed, 1);
	assert_int_equal(sms_get(f->db, id, &e, &err), 1);
	assert_int_equal(e.status, SMS_ST_FAILED);
	assert_string_equal(e.last_error, "scripted peer-perm");
	sms_entry_deinit(&e);
	/* failed messages are never picked up again by themselves */
	assert_int_equal(sms_run_due(f->db, t, now + 30 * 86400, 0, &st, &err), 0);
	assert_int_equal(st.sent + st.deferred + st.failed, 0);
	assert_int_equal(fk.calls, 1);
	/* until the administrator retries them */
	assert_int_equal(sms_retry(f->db, id, &err), 0);
	assert_int_equal(sms_run_due(f->db, t, sg_now(), 0, &st, &err), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(sms_get(f->db, id, &e, &err), 0);
	sms_transport_close(&t);
}

static void test_run_lifetime_exceeded(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_PEER_TEMP}, 1, 0, "", "", NULL, NULL, {0, 0, 0}, 0};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct sms_entry e;
	int64_t id;

	stest_set(f->db, "lifetime", "10m");
	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, &id, &err), 0);
	assert_int_equal(sms_get(f->db, id, &e, &err), 1);
	/* still young: deferred */
	assert_int_equal(sms_run_due(f->db, t, e.created + 599, 0, &st, &err), 0);
	assert_int_equal(st.deferred, 1);
	/* after the lifetime a temporary failure is final */
	assert_int_equal(sms_run_due(f->db, t, e.created + 3600, 0, &st, &err), 0);
	assert_int_equal(st.failed, 1);
	sms_entry_deinit(&e);
	assert_int_equal(sms_get(f->db, id, &e, &err), 1);
	assert_int_equal(e.status, SMS_ST_FAILED);
	assert_int_equal(e.attempts, 2);
	assert_non_null(strstr(e.last_error, "lifetime exceeded: scripted"));
	sms_entry_deinit(&e);
	sms_transport_close(&t);
}

static void test_run_max_and_order(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_OK}, 1, 0, "", "", NULL, NULL, {0, 0, 0}, 0};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct sms_list l;

	assert_int_equal(sms_enqueue(f->db, "+31600000001", "one", NULL, NULL, &err), 0);
	assert_int_equal(sms_enqueue(f->db, "+31600000002", "two", NULL, NULL, &err), 0);
	assert_int_equal(sms_enqueue(f->db, "+31600000003", "three", NULL, NULL, &err), 0);
	assert_int_equal(sms_run_due(f->db, t, sg_now(), 2, &st, &err), 0);
	assert_int_equal(st.sent, 2);
	assert_string_equal(fk.last_text, "two");
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].text, "three");
	sms_list_deinit(&l);
	sms_transport_close(&t);
}

static void test_run_stops_after_temporary_failure(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_PEER_PERM, SG_E_PEER_TEMP, SG_E_OK}, 3, 0, "", "", NULL, NULL,
		{0, 0, 0}, 0};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct sms_entry e;
	int64_t id[4], now;
	int i;

	for (i = 0; i < 4; i++)
		assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, &id[i], &err), 0);
	now = sg_now();
	/* 1: permanent (the run goes on), 2: temporary (the run stops) */
	assert_int_equal(sms_run_due(f->db, t, now, 0, &st, &err), 0);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.deferred, 1);
	assert_int_equal(st.sent, 0);
	assert_int_equal(fk.calls, 2);
	assert_int_equal(sms_get(f->db, id[2], &e, &err), 1);
	assert_int_equal(e.attempts, 0);  /* not tried */
	assert_int_equal(e.status, SMS_ST_QUEUED);
	sms_entry_deinit(&e);
	/* the next run goes on with the others (2 waits for its backoff) */
	assert_int_equal(sms_run_due(f->db, t, now + 1, 0, &st, &err), 0);
	assert_int_equal(st.sent, 2);
	assert_int_equal(sms_get(f->db, id[1], &e, &err), 1);
	assert_int_equal(e.attempts, 1);
	sms_entry_deinit(&e);
	sms_transport_close(&t);
}

/* hook: a second worker on its own connection runs while we are sending */
static void hook_second_worker(struct fake *fk, const struct sms_message *m)
{
	struct store *db2 = stest_open2(fk->f);
	struct fake other = {{SG_E_OK}, 1, 0, "", "", NULL, NULL, {0, 0, 0}, 0};
	struct sms_transport *t2 = sms_transport_new_custom("other", fake_send, &other);
	struct sg_error err;

	(void)m;
	fk->hook_rc = sms_run_due(db2, t2, sg_now() + 30, 0, &fk->hook_stats, &err);
	if (other.calls != 0)
		fk->hook_rc = -2;
	sms_transport_close(&t2);
	store_close(&db2);
}

static void test_run_claim_excludes_second_worker(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_OK}, 1, 0, "", "", hook_second_worker, f, {9, 9, 9}, -1};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;

	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, NULL, &err), 0);
	assert_int_equal(sms_run_due(f->db, t, sg_now(), 0, &st, &err), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(fk.hook_rc, 0);  /* -2: the second worker sent it too */
	assert_int_equal(fk.hook_stats.sent + fk.hook_stats.deferred + fk.hook_stats.failed,
		0);
	sms_transport_close(&t);
}

static void test_run_expired_lease_is_resent(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_OK}, 1, 0, "", "", NULL, NULL, {0, 0, 0}, 0};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct store_stmt *s;
	int64_t id, now = sg_now();

	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, &id, &err), 0);
	/* a sender claimed it and died: status sending, lease until now + 90 */
	s = store_prepare(f->db, "UPDATE sms_queue SET status = 'sending', attempts = 1, "
		"lease_until = ? WHERE id = ?", &err);
	assert_non_null(s);
	store_bind_int64(s, 1, now + 90);
	store_bind_int64(s, 2, id);
	assert_int_equal(store_stmt_step(s, &err), 0);
	store_stmt_free(&s);
	assert_int_equal(sms_run_due(f->db, t, now + 89, 0, &st, &err), 0);
	assert_int_equal(st.sent, 0);
	assert_int_equal(sms_retry(f->db, id, &err), -1);  /* being sent */
	assert_int_equal(sms_run_due(f->db, t, now + 90, 0, &st, &err), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(fk.calls, 1);
	sms_transport_close(&t);
}

/* hook: the administrator deletes the message while it is being sent */
static void hook_delete(struct fake *fk, const struct sms_message *m)
{
	struct store *db2 = stest_open2(fk->f);
	struct sg_error err;

	fk->hook_rc = sms_delete(db2, m->id, &err);
	store_close(&db2);
}

static void test_run_deleted_while_sending(void **state)
{
	struct stest_fx *f = *state;
	struct fake fk = {{SG_E_PEER_TEMP}, 1, 0, "", "", hook_delete, f, {0, 0, 0}, -1};
	struct sms_transport *t = sms_transport_new_custom("fake", fake_send, &fk);
	struct sms_run_stats st;
	struct sg_error err;
	struct sms_list l;

	assert_int_equal(sms_enqueue(f->db, "+31612345678", "x", NULL, NULL, &err), 0);
	assert_int_equal(sms_run_due(f->db, t, sg_now(), 0, &st, &err), 0);
	assert_int_equal(fk.hook_rc, 0);
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 0);  /* the deferral did not resurrect it */
	sms_list_deinit(&l);
	sms_transport_close(&t);
}

static void test_run_transport_none_and_file(void **state)
{
	struct stest_fx *f = *state;
	struct sms_run_stats st = {7, 7, 7};
	struct sg_error err;
	struct sms_list l;
	char path[512], *data = NULL;
	size_t len;
	int64_t id;

	assert_int_equal(sms_enqueue(f->db, "+31612345678", "line1\nline2\t\\", NULL, &id,
		&err), 0);
	/* default transport none: nothing happens, no error */
	assert_int_equal(sms_run_due(f->db, NULL, sg_now(), 0, &st, &err), 0);
	assert_int_equal(st.sent + st.deferred + st.failed, 0);
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	sms_list_deinit(&l);
	/* file transport without a path: the run fails naming the setting and
	 * the message stays queued */
	stest_set(f->db, "transport", "file");
	assert_int_equal(sms_run_due(f->db, NULL, sg_now(), 0, &st, &err), -1);
	assert_int_equal(err.code, SG_E_CONFIG);
	assert_non_null(strstr(err.msg, "sms.file.path"));
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].attempts, 0);
	sms_list_deinit(&l);
	snprintf(path, sizeof(path), "%s/sms-%s.txt", stest_tmpdir(),
		stest_is_pg() ? "pg" : "sqlite");
	unlink(path);
	stest_set(f->db, "file.path", path);
	assert_int_equal(sms_run_due(f->db, NULL, sg_now(), 0, &st, &err), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(sg_file_read(path, 4096, &data, &len, &err), 0);
	{
		char want[128];

		snprintf(want, sizeof(want), "\t%lld\t+31612345678\tline1\\nline2\\t\\\\\n",
			(long long)id);
		if (strstr(data, want) == NULL)
			fail_msg("file transport wrote '%s', want a line ending in '%s'", data, want);
		assert_int_equal(data[4], '-');  /* ISO time first */
	}
	free(data);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phone_normalize_guide_cases),
		cmocka_unit_test(test_backoff_table),
		cmocka_unit_test_setup_teardown(test_enqueue_list_get, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_enqueue_refusals, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_retry, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_sent_deleted, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_temporary_backoff_then_sent, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_permanent_fails_then_retry, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_lifetime_exceeded, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_max_and_order, stest_setup, stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_stops_after_temporary_failure, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_claim_excludes_second_worker, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_expired_lease_is_resent, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_deleted_while_sending, stest_setup,
			stest_teardown),
		cmocka_unit_test_setup_teardown(test_run_transport_none_and_file, stest_setup,
			stest_teardown),
	};

	sg_log_init("test_sms_queue", SG_LOGDEST_STDERR, SG_LOG_ERR);
	return cmocka_run_group_tests(tests, stest_group_setup, stest_group_teardown);
}
