/* test_mpa_notify.c - the after-filter size limit (F-FLOW-5, D-7): the
 * recipients get nothing, the originator (F-POL-3: From -> Sender ->
 * envelope sender) gets a notification when internal (D-4), never the
 * content; no notification about generated mail or to outsiders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mpa_test.h"
#include "mta/mta.h"

struct fixture {
	char *dir;
	struct spool *sp;
	struct store *db;
};

static int setup(void **state)
{
	struct fixture *f = sg_xcalloc(1, sizeof(*f));
	struct sg_error err;
	char *url;

	f->dir = mt_tmpdir();
	f->sp = spool_open(f->dir, &err);
	assert_non_null(f->sp);
	url = sg_xasprintf("sqlite:%s/sealgate.db", f->dir);
	f->db = store_open(url, &err);
	free(url);
	assert_non_null(f->db);
	assert_int_equal(store_migrate(f->db, &err), 0);
	assert_int_equal(mta_setting_set(f->db, "relay_domains", "example.com", &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->db);
	spool_close(&f->sp);
	mt_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

#define SECRET "SECRET-BODY-TEXT"

static const struct {
	const char *name;
	const char *headers;
	const char *env_sender;
	const char *want_to;    /* notification recipient, NULL = none */
} origin_cases[] = {
	{"From", "From: Alice <alice@example.com>\nSender: bob@example.com\n",
		"env@example.com", "alice@example.com"},
	{"Sender when no From", "Sender: Bob <bob@example.com>\n", "env@example.com",
		"bob@example.com"},
	{"Sender when From has no mailbox", "From: undisclosed-recipients:;\n"
		"Sender: bob@sub.example.com\n", "env@example.com", "bob@sub.example.com"},
	{"envelope when neither", "X-Note: no originator headers\n", "env@example.com",
		"env@example.com"},
	{"external originator", "From: someone@other.net\n", "env@example.com", NULL},
	{"null originator", "X-Note: nothing\n", "", NULL},
};

/* run_case - put the message, process with max_size, return the number of
 * outputs; *notif_r gets the only output's ID (if any). */
static int run_case(struct fixture *f, struct mpa *mpa, const char *msg,
	const char *sender, enum spool_kind kind, char *id, char *out_id)
{
	struct spool_env env;
	struct sg_error err;

	mt_env(&env, sender, 3);
	env.kind = kind;
	assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
	spool_env_free_fields(&env);
	if (mpa_process_spooled(mpa, f->sp, id, &err) != 0)
		fail_msg("process: %s", err.msg);
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	if (mt_count(f->dir, "outgoing") == 1)
		assert_int_equal(mt_first(f->dir, "outgoing", out_id, 64), 0);
	return mt_count(f->dir, "outgoing");
}

static void test_size_limit_notifies_originator(void **state)
{
	struct fixture *f = *state;
	size_t c;

	for (c = 0; c < sizeof(origin_cases) / sizeof(origin_cases[0]); c++) {
		struct mpa_conf conf = {.cfg = NULL, .db = f->db, .max_size = 10};
		struct sg_error err;
		struct mpa *mpa = mpa_new(&conf, &err);
		char *msg = sg_xasprintf("%sSubject: Quarterly report\n\n" SECRET "\n",
			origin_cases[c].headers);
		char id[SG_MAIL_ID_LEN + 1], out[64];
		struct spool_env oenv;
		char *body;
		size_t blen;
		int n;

		n = run_case(f, mpa, msg, origin_cases[c].env_sender, SPOOL_KIND_MESSAGE, id,
			out);
		if (origin_cases[c].want_to == NULL) {
			if (n != 0)
				fail_msg("%s: got %d outputs, want none", origin_cases[c].name, n);
			goto next;
		}
		if (n != 1)
			fail_msg("%s: got %d outputs, want 1", origin_cases[c].name, n);
		assert_int_equal(spool_env_read(f->sp, SPOOL_Q_OUTGOING, out, &oenv, NULL,
			&err), 0);
		assert_int_equal(oenv.kind, SPOOL_KIND_NOTIFICATION);
		assert_string_equal(oenv.sender, "");
		assert_int_equal(oenv.nrcpts, 1);
		if (strcmp(oenv.rcpts[0].addr, origin_cases[c].want_to) != 0)
			fail_msg("%s: notification to %s, want %s", origin_cases[c].name,
				oenv.rcpts[0].addr, origin_cases[c].want_to);
		assert_string_equal(oenv.parent_id, id);
		spool_env_free_fields(&oenv);
		body = mt_body(f->sp, SPOOL_Q_OUTGOING, out, &blen);
		assert_non_null(body);
		assert_non_null(strstr(body, "Auto-Submitted: auto-generated"));
		assert_non_null(strstr(body, "postmaster@localhost"));
		if (strstr(body, "Quarterly report") == NULL)
			fail_msg("%s: subject missing in:\n%s", origin_cases[c].name, body);
		assert_non_null(strstr(body, "rcpt0@example.org"));
		assert_non_null(strstr(body, "rcpt2@example.org"));
		assert_non_null(strstr(body, id));
		assert_null(strstr(body, SECRET));
		free(body);
		assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, out, &err), 0);
next:
		free(msg);
		mpa_free(&mpa);
	}
}

/* The limit is inclusive: exactly max bytes pass, one byte less does not. */
static void test_size_limit_boundary(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: someone@other.net\n\n12345\n";
	struct mpa_conf conf = {.cfg = NULL, .db = f->db, .max_size = strlen(msg)};
	struct sg_error err;
	struct mpa *mpa = mpa_new(&conf, &err);
	char id[SG_MAIL_ID_LEN + 1], out[64];

	assert_int_equal(run_case(f, mpa, msg, "a@other.net", SPOOL_KIND_MESSAGE, id, out),
		1);
	assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, out, &err), 0);
	mpa_free(&mpa);
	conf.max_size = strlen(msg) - 1;
	mpa = mpa_new(&conf, &err);
	assert_int_equal(run_case(f, mpa, msg, "a@other.net", SPOOL_KIND_MESSAGE, id, out),
		0);
	mpa_free(&mpa);
}

/* Generated mail never causes a notification (no loops); without a
 * database "internal" cannot be decided: no notification either. */
static void test_no_notification_cases(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: alice@example.com\n\n" SECRET "\n";
	struct mpa_conf conf = {.cfg = NULL, .db = f->db, .max_size = 5};
	struct sg_error err;
	struct mpa *mpa = mpa_new(&conf, &err);
	char id[SG_MAIL_ID_LEN + 1], out[64];
	struct mt_log log;
	char *text;

	assert_int_equal(run_case(f, mpa, msg, "", SPOOL_KIND_NOTIFICATION, id, out), 0);
	assert_int_equal(run_case(f, mpa, msg, "", SPOOL_KIND_BOUNCE, id, out), 0);
	mpa_free(&mpa);
	conf.db = NULL;
	mpa = mpa_new(&conf, &err);
	mt_log_start(&log);
	assert_int_equal(run_case(f, mpa, msg, "alice@example.com", SPOOL_KIND_MESSAGE, id,
		out), 0);
	text = mt_log_stop(&log);
	assert_non_null(strstr(text, "after-filter size limit"));
	assert_non_null(strstr(text, "outputs=0"));
	free(text);
	mpa_free(&mpa);
}

/* The database fails while deciding whether the originator is internal:
 * a temporary failure, the input stays in incoming/ and nothing of the
 * attempt is left (retried later, never sent without the notification). */
static void test_store_failure_is_temporary(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: alice@example.com\n\nbody\n";
	struct mpa_conf conf = {.cfg = NULL, .db = f->db, .max_size = 5};
	struct sg_error err;
	struct mpa *mpa = mpa_new(&conf, &err);
	struct spool_env env;
	char id[SG_MAIL_ID_LEN + 1];

	mt_env(&env, "alice@example.com", 1);
	assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
	spool_env_free_fields(&env);
	assert_int_equal(store_exec(f->db, "DROP TABLE settings", &err), 0);
	assert_int_equal(mpa_process_spooled(mpa, f->sp, id, &err), -1);
	assert_int_equal(sg_errc_class(err.code), SG_EC_TEMPORARY);
	assert_int_equal(mt_count(f->dir, "incoming"), 1);
	assert_int_equal(mt_count(f->dir, "outgoing"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	assert_int_equal(mt_count(f->dir, "tmp"), 0);
	assert_int_equal(mt_count(f->dir, "batch"), 0);
	mpa_free(&mpa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_size_limit_notifies_originator, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_size_limit_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_notification_cases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_failure_is_temporary, setup, teardown),
	};

	sg_log_init("test_mpa_notify", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
