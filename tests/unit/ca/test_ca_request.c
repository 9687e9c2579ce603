/*
 * test_ca_request.c - F-CA-4/5/6: the request interface with the built-in
 * and delayed handlers, the queue (list, cancel, retry, worker), auto request
 * and bulk requests skipping addresses with a valid signing certificate.
 */
#include "ca_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct plist {
	int64_t ids[16];
	char states[16][16];
	size_t n;
};

static int plist_cb(const struct ca_pending *p, void *arg, struct sg_error *err)
{
	struct plist *l = arg;

	(void)err;
	if (l->n < 16) {
		l->ids[l->n] = p->id;
		sg_strlcpy(l->states[l->n++], p->state, sizeof(l->states[0]));
	}
	return 0;
}

static void test_builtin_issues_now(void **state)
{
	struct cenv *e = *state;
	struct ca_request rq = {{0}, NULL, NULL};
	struct ca_issued is;
	struct sg_error err;
	int64_t id = 0;

	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	rq.subject.email = "a@example.com";
	assert_int_equal(ca_request_submit(e->ca, CA_HANDLER_BUILTIN, &rq, &is, &id, &err),
		CA_REQ_ISSUED);
	assert_int_equal(ca_has_signing_cert(e->ca, "a@example.com", &err), 1);
	assert_int_equal(ca_has_signing_cert(e->ca, "b@example.com", &err), 0);
}

static void test_delayed_queue_and_worker(void **state)
{
	struct cenv *e = *state;
	struct ca_request rq = {{0}, NULL, NULL};
	struct ca_issued is;
	struct plist l = {0};
	struct sg_error err;
	int64_t id1 = 0, id2 = 0, id3 = 0;

	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	assert_int_equal(ca_setting_set(e->ca, "handler", "delayed", &err), 0);
	rq.subject.email = "q1@example.com";
	assert_int_equal(ca_request_submit(e->ca, -1, &rq, &is, &id1, &err), CA_REQ_QUEUED);
	rq.subject.email = "q2@example.com";
	rq.subject.cn = "Queue Two";
	assert_int_equal(ca_request_submit(e->ca, -1, &rq, &is, &id2, &err), CA_REQ_QUEUED);
	rq.subject.email = "q3@example.com";
	rq.ca_name = "gone";    /* fails in the worker: no such CA */
	assert_int_equal(ca_request_submit(e->ca, -1, &rq, &is, &id3, &err), CA_REQ_QUEUED);
	assert_true(id1 < id2 && id2 < id3);
	assert_int_equal(ca_has_signing_cert(e->ca, "q1@example.com", &err), 0);
	assert_int_equal(ca_pending_list(e->ca, NULL, plist_cb, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.states[0], "pending");
	assert_int_equal(ca_pending_cancel(e->ca, id2, &err), 0);
	assert_int_equal(ca_pending_cancel(e->ca, id2, &err), -1);   /* not pending now */
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_int_equal(ca_worker_run(e->ca, 0, &err), 1);   /* q1 issued, q3 failed */
	assert_int_equal(ca_has_signing_cert(e->ca, "q1@example.com", &err), 1);
	assert_int_equal(ca_has_signing_cert(e->ca, "q2@example.com", &err), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(ca_pending_list(e->ca, NULL, plist_cb, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ids[0], id3);
	assert_string_equal(l.states[0], "failed");
	memset(&l, 0, sizeof(l));
	assert_int_equal(ca_pending_list(e->ca, "issued", plist_cb, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ids[0], id1);
	/* retry the cancelled one: issued by the next run */
	assert_int_equal(ca_pending_retry(e->ca, id2, &err), 0);
	assert_int_equal(ca_worker_run(e->ca, 1, &err), 1);
	assert_int_equal(ca_has_signing_cert(e->ca, "q2@example.com", &err), 1);
	assert_int_equal(ca_pending_retry(e->ca, 999, &err), -1);
	assert_int_equal(ca_worker_run(e->ca, 0, &err), 0);   /* nothing pending */
}

/* a request left "working" by a worker that died is issued by the next run;
 * a recent "working" one (another worker busy with it) is left alone */
static void test_worker_recovers_stale(void **state)
{
	struct cenv *e = *state;
	struct ca_request rq = {{0}, NULL, NULL};
	struct ca_issued is;
	struct sg_error err;
	int64_t id = 0;
	char sql[160];

	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	rq.subject.email = "stale@example.com";
	assert_int_equal(ca_request_submit(e->ca, CA_HANDLER_DELAYED, &rq, &is, &id, &err),
		CA_REQ_QUEUED);
	snprintf(sql, sizeof(sql), "UPDATE ca_request SET state = 'working', updated = %lld "
		"WHERE id = %lld", (long long)sg_now(), (long long)id);
	assert_int_equal(store_exec(e->db, sql, &err), 0);
	assert_int_equal(ca_worker_run(e->ca, 0, &err), 0);
	snprintf(sql, sizeof(sql), "UPDATE ca_request SET updated = %lld WHERE id = %lld",
		(long long)(sg_now() - 3600), (long long)id);
	assert_int_equal(store_exec(e->db, sql, &err), 0);
	assert_int_equal(ca_worker_run(e->ca, 0, &err), 1);
	assert_int_equal(ca_has_signing_cert(e->ca, "stale@example.com", &err), 1);
	/* the delayed handler never queues a key */
	rq.key_pem = "-----BEGIN PRIVATE KEY-----";
	assert_int_equal(ca_request_submit(e->ca, CA_HANDLER_DELAYED, &rq, &is, &id, &err), -1);
	assert_int_equal(err.code, SG_E_INVAL);
}

struct worker {
	const struct cenv *e;
	int issued;
};

/* worker_main - a second process' worth of context: own connection, pki,
 * key store and ca */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sg_error err;
	struct store *db = store_open(w->e->url, &err);
	struct pki *pki = db != NULL ? pki_open(db, &err) : NULL;
	struct pki_keys *keys = pki != NULL ? pki_keys_open(pki, w->e->dir, &err) : NULL;
	struct ca *ca = keys != NULL ? ca_open(pki, keys, &err) : NULL;

	w->issued = ca != NULL ? ca_worker_run(ca, 0, &err) : -1;
	if (w->issued < 0)
		fprintf(stderr, "worker: %s\n", err.msg);
	ca_close(&ca);
	pki_keys_close(&keys);
	pki_close(&pki);
	store_close(&db);
	return NULL;
}

/* two workers on their own connections issue every request exactly once */
static void test_two_workers_no_double_issue(void **state)
{
	struct cenv *e = *state;
	struct ca_request rq = {{0}, NULL, NULL};
	struct ca_issued is;
	struct worker w[2] = {{e, 0}, {e, 0}};
	pthread_t th[2];
	struct sg_error err;
	char email[64], thumbs[4][PKI_THUMBPRINT_LEN + 1];
	int64_t id;
	int i;

	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	for (i = 0; i < 16; i++) {
		snprintf(email, sizeof(email), "w%d@example.com", i);
		rq.subject.email = email;
		assert_int_equal(ca_request_submit(e->ca, CA_HANDLER_DELAYED, &rq, &is, &id, &err),
			CA_REQ_QUEUED);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(w[0].issued >= 0 && w[1].issued >= 0);
	assert_int_equal(w[0].issued + w[1].issued, 16);
	for (i = 0; i < 16; i++) {
		snprintf(email, sizeof(email), "w%d@example.com", i);
		assert_int_equal(pki_cert_find_email(e->pki, email, thumbs, 4, &err), 1);
	}
}

/* F-CA-5: built-in issues at once; delayed queues once (no duplicate) */
static void test_auto_request(void **state)
{
	struct cenv *e = *state;
	struct ca_issued is;
	struct plist l = {0};
	struct sg_error err;

	assert_int_equal(ca_auto_request(e->ca, "s@example.com", &is, &err), -1);
	assert_int_equal(err.code, SG_E_NOTFOUND);    /* no CA */
	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	assert_int_equal(ca_auto_request(e->ca, "s@example.com", &is, &err), 1);
	assert_int_equal(ca_has_signing_cert(e->ca, "s@example.com", &err), 1);
	assert_int_equal(ca_setting_set(e->ca, "handler", "delayed", &err), 0);
	assert_int_equal(ca_auto_request(e->ca, "t@example.com", &is, &err), 0);
	assert_int_equal(ca_auto_request(e->ca, "T@example.com", &is, &err), 0);
	assert_int_equal(ca_pending_list(e->ca, NULL, plist_cb, &l, &err), 0);
	assert_int_equal(l.n, 1);
}

struct outcomes {
	char text[8][300];
	unsigned line[8];
	size_t n;
};

static void bulk_cb(const struct ca_csv_row *row, const char *outcome, void *arg)
{
	struct outcomes *o = arg;

	if (o->n < 8) {
		sg_strlcpy(o->text[o->n], outcome, sizeof(o->text[0]));
		o->line[o->n++] = row->line;
	}
}

/* F-CA-6: rows with a valid signing certificate are skipped; others issued */
static void test_bulk_skips_valid_signers(void **state)
{
	struct cenv *e = *state;
	static const char csv_text[] = "e,cn,org\n"
		"old@example.com,Old,O\n"
		"new1@example.com,New One,O\n"
		"\"new2@example.com\",\"New, Two\",\"O\"\n";
	struct ca_csv csv;
	struct ca_issued is;
	struct outcomes out = {0};
	struct sg_error err;

	cenv_ca(e, "corp", CA_KEY_P256, CA_MD_SHA256);
	cenv_issue(e, "old@example.com", &is);
	assert_int_equal(ca_csv_parse(csv_text, strlen(csv_text), 0, &csv, &err), 0);
	assert_int_equal(ca_bulk(e->ca, &csv, CA_HANDLER_BUILTIN, bulk_cb, &out, &err), 0);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.text[0], "skipped (valid signing certificate)");
	assert_int_equal(out.line[0], 2);
	assert_true(strncmp(out.text[1], "issued ", 7) == 0);
	assert_true(strncmp(out.text[2], "issued ", 7) == 0);
	assert_int_equal(ca_has_signing_cert(e->ca, "new2@example.com", &err), 1);
	{
		struct pki_cert *c = cenv_cert(e, out.text[2] + 7);

		assert_non_null(strstr(c->subject, "New\\, Two"));
		pki_cert_free(&c);
	}
	/* a second run skips everything */
	memset(&out, 0, sizeof(out));
	assert_int_equal(ca_bulk(e->ca, &csv, CA_HANDLER_BUILTIN, bulk_cb, &out, &err), 0);
	assert_string_equal(out.text[1], "skipped (valid signing certificate)");
	assert_string_equal(out.text[2], "skipped (valid signing certificate)");
	ca_csv_free(&csv);
}

/* bulk through the delayed handler queues; a row error names its line */
static void test_bulk_delayed_and_row_error(void **state)
{
	struct cenv *e = *state;
	static const char csv_text[] = "e,cn\na@example.com,A\nb@example.com,B\n";
	struct ca_csv csv;
	struct outcomes out = {0};
	struct sg_error err;

	assert_int_equal(ca_csv_parse(csv_text, strlen(csv_text), 0, &csv, &err), 0);
	/* built-in without any CA: every row fails, the run goes on */
	assert_int_equal(ca_bulk(e->ca, &csv, CA_HANDLER_BUILTIN, bulk_cb, &out, &err), 2);
	assert_non_null(strstr(out.text[0], "error line 2: no default CA"));
	assert_non_null(strstr(out.text[1], "error line 3:"));
	memset(&out, 0, sizeof(out));
	assert_int_equal(ca_bulk(e->ca, &csv, CA_HANDLER_DELAYED, bulk_cb, &out, &err), 0);
	assert_true(strncmp(out.text[0], "queued ", 7) == 0);
	memset(&out, 0, sizeof(out));
	assert_int_equal(ca_bulk(e->ca, &csv, CA_HANDLER_DELAYED, bulk_cb, &out, &err), 0);
	assert_string_equal(out.text[0], "skipped (request pending)");
	ca_csv_free(&csv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_builtin_issues_now, cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_delayed_queue_and_worker, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_worker_recovers_stale, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_two_workers_no_double_issue, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_auto_request, cenv_setup, cenv_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_skips_valid_signers, cenv_setup,
			cenv_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_delayed_and_row_error, cenv_setup,
			cenv_teardown),
	};

	return cmocka_run_group_tests(tests, cenv_group_setup, cenv_group_teardown);
}
