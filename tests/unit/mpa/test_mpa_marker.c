/* test_mpa_marker.c - generated mail in the pipeline: the encryption-failed
 * notification rendered from the template in force for the originator
 * (F-TPL-1: user <- domain <- global <- factory, set through the template
 * API) with the D-4 fields, and the own-mail marker (F-FLOW-7): every
 * notification carries a valid one; an incoming message with a valid
 * marker passes through byte-identical without policy (a subject trigger
 * in it does nothing); a forged or otherwise invalid marker is removed and
 * the message processed as ordinary mail. SQLite store made by store_init
 * (which creates the server secret) in a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mpa_test.h"
#include "mta/mta.h"
#include "policy/policy.h"
#include "template/template.h"

#define SECRET "SECRET-BODY-TEXT-0815"
#define MAXOUT 8

struct fixture {
	char *dir;
	struct spool *sp;
	struct store *db;
	struct policy *pol;
	char *secret;
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
	assert_int_equal(store_init(f->db, &err), 0);
	assert_int_equal(store_setting_get(f->db, "server_secret", &f->secret, &err), 1);
	assert_int_equal(mta_setting_set(f->db, "relay_domains", "example.com", &err), 0);
	f->pol = policy_new(f->db, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	policy_free(&f->pol);
	store_close(&f->db);
	spool_close(&f->sp);
	mt_rm_rf(f->dir);
	free(f->secret);
	free(f->dir);
	free(f);
	return 0;
}

static void set(struct fixture *f, enum policy_kind kind, const char *name,
	const char *prop, const char *value)
{
	struct policy_change ch = {prop, value};
	struct sg_error err;

	if (policy_object_apply(f->pol, kind, name, &ch, 1, &err) < 0)
		fail_msg("set %s=%s: %s", prop, value, err.msg);
}

/* The policy of every test: internal example.com, partner.net requires
 * encryption (nobody has certificates), subject trigger on. */
static void policy_std(struct fixture *f)
{
	set(f, POLICY_KIND_GLOBAL, NULL, "subject_trigger_enabled", "true");
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	set(f, POLICY_KIND_DOMAIN, "partner.net", "encrypt_mode", "mandatory");
}

struct out {
	char id[64];
	struct spool_env env;
	char *body;
	size_t len;
};

struct outs {
	struct out v[MAXOUT];
	size_t n;
};

static void outs_free(struct outs *o)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		spool_env_free_fields(&o->v[i].env);
		free(o->v[i].body);
	}
	o->n = 0;
}

static int collect_cb(const char *id, void *arg)
{
	struct outs *o = arg;

	assert_true(o->n < MAXOUT);
	sg_strlcpy(o->v[o->n++].id, id, sizeof(o->v[0].id));
	return 0;
}

/* collect - every message in outgoing/ (envelope and body), then removed
 * from the spool, so the next run starts empty */
static void collect(struct fixture *f, struct outs *o)
{
	struct sg_error err;
	size_t i;

	memset(o, 0, sizeof(*o));
	assert_int_equal(spool_list(f->sp, SPOOL_Q_OUTGOING, collect_cb, o, &err), 0);
	for (i = 0; i < o->n; i++) {
		struct out *x = &o->v[i];

		if (spool_env_read(f->sp, SPOOL_Q_OUTGOING, x->id, &x->env, NULL, &err) < 0)
			fail_msg("env %s: %s", x->id, err.msg);
		x->body = mt_body(f->sp, SPOOL_Q_OUTGOING, x->id, &x->len);
		assert_non_null(x->body);
		assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, x->id, &err), 0);
	}
}

static const struct out *find_to(const struct outs *o, const char *addr)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].env.nrcpts > 0 && strcmp(o->v[i].env.rcpts[0].addr, addr) == 0)
			return &o->v[i];
	return NULL;
}

/* run - msg (len bytes) from sender to rcpts (NULL-terminated) through a
 * fresh pipeline; *log_r the log (caller frees). Must succeed. */
static void run(struct fixture *f, const char *sender, const char *const *rcpts,
	const char *msg, size_t len, char *id, char **log_r)
{
	struct mpa_conf conf = {.cfg = NULL, .db = f->db, .max_size = 0};
	struct spool_env env;
	struct sg_error err;
	struct mpa *mpa;
	struct mt_log log;
	size_t i;
	int rc;

	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup(sender);
	env.arrival = 1700000000;
	for (i = 0; rcpts[i] != NULL; i++)
		spool_env_add_rcpt(&env, rcpts[i], NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, msg, len, id), 0);
	spool_env_free_fields(&env);
	mpa = mpa_new(&conf, &err);
	assert_non_null(mpa);
	mt_log_start(&log);
	rc = mpa_process_spooled(mpa, f->sp, id, &err);
	*log_r = mt_log_stop(&log);
	mpa_free(&mpa);
	if (rc != 0)
		fail_msg("process: %s", err.msg);
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 0);
}

/* A parsed output, for its header fields. */
static GMimeMessage *parse(const struct out *x)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(x->body, x->len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(st);
	assert_non_null(m);
	return m;
}

static const char *hdr(GMimeMessage *m, const char *name)
{
	return g_mime_object_get_header(GMIME_OBJECT(m), name);
}

/* check_own_marker - x carries exactly one marker, about mail id, valid for
 * its Message-ID under the fixture's secret (and no other). */
static void check_own_marker(struct fixture *f, const struct out *x, const char *id)
{
	GMimeMessage *m = parse(x);
	const char *mk = hdr(m, SG_MARKER_HEADER), *mid = hdr(m, "Message-ID");
	const char *p;
	unsigned n = 0;

	for (p = x->body; (p = strstr(p, SG_MARKER_HEADER ":")) != NULL; p++)
		n++;
	assert_int_equal(n, 1);
	assert_non_null(mk);
	assert_non_null(mid);
	assert_true(strncmp(mk, id, SG_MAIL_ID_LEN) == 0);
	assert_true(sg_marker_verify(f->secret, mk, mid));
	assert_false(sg_marker_verify("0123456789abcdef0123456789abcdef", mk, mid));
	g_object_unref(m);
}

/* The domain's encryption_failed template (saved through the template API)
 * is what an originator of that domain gets; a user's own template wins
 * over it; an originator outside the domain (a subdomain is another
 * domain) gets the factory text. D-4 fields and the marker on each. */
static void test_notification_from_domain_template(void **state)
{
	struct fixture *f = *state;
	const char *dom_tpl =
		"From: ${from}\nTo: ${to}\nSubject: Not delivered: ${subject}\n"
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
		"DOMAIN-TEMPLATE reason=${reason}\n"
		"<#list recipients as r>\nRCPT ${r}\n</#list>\nID ${mail_id}\n";
	const char *user_tpl =
		"From: ${from}\nTo: ${to}\nSubject: Yours: ${subject}\n"
		"Auto-Submitted: auto-generated\n"
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
		"USER-TEMPLATE ${reason}\n";
	const char *rcpts[] = {"bob@partner.net", "carol@example.com", NULL};
	char id[SG_MAIL_ID_LEN + 1], *log, owner[POLICY_OWNER_MAX];
	const struct {
		const char *from, *want, *subject;
	} cases[] = {
		{"alice@example.com", "DOMAIN-TEMPLATE reason=", "Not delivered: Offer"},
		{"boss@example.com", "USER-TEMPLATE ", "Yours: Offer"},
		{"ann@sub.example.com", "Your message could not be encrypted",
			"Message not sent: encryption failed"},
	};
	struct sg_error err;
	size_t c;

	policy_std(f);
	set(f, POLICY_KIND_GLOBAL, NULL, "system_mail_from", "gateway@example.com");
	assert_int_equal(template_owner(POLICY_KIND_DOMAIN, "example.com", owner,
		sizeof(owner), &err), 0);
	assert_int_equal(template_save(f->db, TEMPLATE_ENCRYPTION_FAILED, owner, dom_tpl,
		strlen(dom_tpl), &err), 0);
	set(f, POLICY_KIND_USER, "boss@example.com", "encryption_notification", "false");
	assert_int_equal(template_owner(POLICY_KIND_USER, "boss@example.com", owner,
		sizeof(owner), &err), 0);
	assert_int_equal(template_save(f->db, TEMPLATE_ENCRYPTION_FAILED, owner, user_tpl,
		strlen(user_tpl), &err), 0);
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char *msg = sg_xasprintf("From: %s\nSubject: Offer\n\n" SECRET "\n",
			cases[c].from);
		const struct out *x;
		GMimeMessage *m;
		struct outs o;

		run(f, cases[c].from, rcpts, msg, strlen(msg), id, &log);
		collect(f, &o);
		assert_int_equal(o.n, 2);
		assert_non_null(find_to(&o, "carol@example.com"));
		x = find_to(&o, cases[c].from);
		if (x == NULL)
			fail_msg("%s: no notification", cases[c].from);
		assert_int_equal(x->env.kind, SPOOL_KIND_NOTIFICATION);
		assert_string_equal(x->env.sender, "");
		assert_int_equal(x->env.nrcpts, 1);
		assert_string_equal(x->env.parent_id, id);
		if (strstr(x->body, cases[c].want) == NULL)
			fail_msg("%s: '%s' missing in:\n%s", cases[c].from, cases[c].want,
				x->body);
		assert_null(strstr(x->body, SECRET));
		m = parse(x);
		assert_string_equal(hdr(m, "Subject"), cases[c].subject);
		/* D-4 even when the template lacks it */
		assert_string_equal(hdr(m, "Auto-Submitted"), "auto-generated");
		assert_non_null(strstr(hdr(m, "From"), "gateway@example.com"));
		assert_non_null(strstr(hdr(m, "To"), cases[c].from));
		g_object_unref(m);
		if (c == 0) {
			assert_non_null(strstr(x->body, "RCPT bob@partner.net"));
			assert_null(strstr(x->body, "RCPT carol@example.com"));
			if (strstr(x->body, "reason=encryption is required, but there is no valid "
				"certificate") == NULL)
				fail_msg("reason missing in:\n%s", x->body);
			assert_non_null(strstr(x->body, id));
		}
		check_own_marker(f, x, id);
		outs_free(&o);
		free(log);
		free(msg);
	}
}

/* A valid marker: the message passes to every recipient byte-identical in
 * one output, although the policy would otherwise refuse bob (mandatory,
 * no certificate) and the subject trigger would fire: no policy, no edits,
 * no notification. Shown with a notification the pipeline made itself
 * (its subject holds the trigger of the original subject) and with a
 * CRLF message marked by hand. */
static void test_valid_marker_passthrough(void **state)
{
	struct fixture *f = *state;
	const char *tpl =
		"From: ${from}\nTo: ${to}\nSubject: Not delivered: ${subject}\n"
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
		"reason=${reason}\n";
	const char *rcpts[] = {"bob@partner.net", "carol@example.com", NULL};
	char id[SG_MAIL_ID_LEN + 1], id2[SG_MAIL_ID_LEN + 1], *log, owner[POLICY_OWNER_MAX];
	char mid[SG_MAIL_ID_LEN + 1], val[SG_MARKER_MAX];
	const char *msg = "From: alice@example.com\nSubject: Offer [encrypt]\n\n" SECRET "\n";
	struct sg_error err;
	struct outs o;
	char *notif, *hand;
	size_t nlen;
	int pass;

	policy_std(f);
	assert_int_equal(template_owner(POLICY_KIND_DOMAIN, "example.com", owner,
		sizeof(owner), &err), 0);
	assert_int_equal(template_save(f->db, TEMPLATE_ENCRYPTION_FAILED, owner, tpl,
		strlen(tpl), &err), 0);
	run(f, "alice@example.com", rcpts, msg, strlen(msg), id, &log);
	free(log);
	collect(f, &o);
	assert_int_equal(o.n, 2);
	assert_non_null(find_to(&o, "alice@example.com"));
	nlen = find_to(&o, "alice@example.com")->len;
	notif = sg_xmalloc(nlen);
	memcpy(notif, find_to(&o, "alice@example.com")->body, nlen);
	outs_free(&o);
	assert_non_null(memmem(notif, nlen, "[encrypt]", 9));

	sg_mail_id_new(mid);
	assert_int_equal(sg_marker_make(f->secret, mid, "<hand.1@gw.example.com>", val,
		sizeof(val), &err), 0);
	hand = sg_xasprintf("From: alice@example.com\r\nSubject: Report [encrypt]\r\n"
		"Message-ID: <hand.1@gw.example.com>\r\n%s: %s\r\n\r\n" SECRET "\r\n",
		SG_MARKER_HEADER, val);

	for (pass = 0; pass < 2; pass++) {
		const char *in = pass == 0 ? notif : hand;
		size_t len = pass == 0 ? nlen : strlen(hand);

		run(f, "", rcpts, in, len, id2, &log);
		collect(f, &o);
		assert_int_equal(o.n, 1);
		assert_int_equal(o.v[0].env.nrcpts, 2);
		assert_int_equal(o.v[0].env.kind, SPOOL_KIND_MESSAGE);
		/* unchanged: the input itself moved on */
		assert_string_equal(o.v[0].env.id, id2);
		assert_null(o.v[0].env.parent_id);
		assert_int_equal(o.v[0].len, len);
		assert_memory_equal(o.v[0].body, in, len);
		assert_non_null(strstr(log, "own mail"));
		assert_non_null(strstr(log, "action=pass, outputs=1"));
		outs_free(&o);
		free(log);
	}
	free(notif);
	free(hand);
}

/* Invalid markers of every kind (with the null envelope sender of
 * generated mail, and a genuine marker re-sent by a user with their own
 * sender): removed from the output and the message processed as ordinary
 * mail (bob gets nothing, alice the notification,
 * carol the message with the trigger removed from the subject and without
 * the marker). */
static void test_forged_marker_removed(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", "carol@example.com", NULL};
	const char *msgid = "<forged.1@gw.example.com>";
	char mid[SG_MAIL_ID_LEN + 1], good[SG_MARKER_MAX], other[SG_MARKER_MAX];
	char flipped[SG_MARKER_MAX], *log;
	struct sg_error err;
	size_t c;
	struct {
		const char *name;
		char *fields; /* Message-ID and marker fields */
		const char *sender;
	} cases[7];

	policy_std(f);
	sg_mail_id_new(mid);
	assert_int_equal(sg_marker_make(f->secret, mid, msgid, good, sizeof(good), &err), 0);
	assert_int_equal(sg_marker_make("a-secret-someone-guessed-wrongly", mid, msgid, other,
		sizeof(other), &err), 0);
	sg_strlcpy(flipped, good, sizeof(flipped));
	flipped[SG_MAIL_ID_LEN + 5] = flipped[SG_MAIL_ID_LEN + 5] == 'A' ? 'B' : 'A';
	cases[0].name = "other secret";
	cases[0].fields = sg_xasprintf("Message-ID: %s\n%s: %s\n", msgid, SG_MARKER_HEADER,
		other);
	cases[1].name = "one MAC character changed";
	cases[1].fields = sg_xasprintf("Message-ID: %s\n%s: %s\n", msgid, SG_MARKER_HEADER,
		flipped);
	cases[2].name = "marker of another Message-ID";
	cases[2].fields = sg_xasprintf("Message-ID: <copied@elsewhere.example>\n%s: %s\n",
		SG_MARKER_HEADER, good);
	cases[3].name = "no Message-ID";
	cases[3].fields = sg_xasprintf("%s: %s\n", SG_MARKER_HEADER, good);
	cases[4].name = "two markers";
	cases[4].fields = sg_xasprintf("Message-ID: %s\n%s: %s\n%s: %s\n", msgid,
		SG_MARKER_HEADER, good, SG_MARKER_HEADER, good);
	cases[5].name = "garbage";
	cases[5].fields = sg_xasprintf("Message-ID: %s\n%s: yes\n", msgid, SG_MARKER_HEADER);
	cases[6].name = "genuine marker, envelope sender not <>";
	cases[6].fields = sg_xasprintf("Message-ID: %s\n%s: %s\n", msgid, SG_MARKER_HEADER,
		good);
	for (c = 0; c < 6; c++)
		cases[c].sender = ""; /* as generated mail has: only the MAC is wrong */
	cases[6].sender = "alice@example.com";

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char *msg = sg_xasprintf("From: alice@example.com\nSubject: Plan [encrypt]\n%s\n"
			SECRET "\n", cases[c].fields);
		char id[SG_MAIL_ID_LEN + 1];
		const struct out *x;
		struct outs o;

		run(f, cases[c].sender, rcpts, msg, strlen(msg), id, &log);
		collect(f, &o);
		if (o.n != 2)
			fail_msg("%s: %zu outputs, want 2", cases[c].name, o.n);
		assert_null(find_to(&o, "bob@partner.net"));
		x = find_to(&o, "carol@example.com");
		assert_non_null(x);
		assert_int_equal(x->env.nrcpts, 1);
		if (strstr(x->body, SG_MARKER_HEADER) != NULL)
			fail_msg("%s: marker left in:\n%s", cases[c].name, x->body);
		assert_non_null(strstr(x->body, "Subject: Plan\n"));
		assert_non_null(strstr(x->body, SECRET));
		x = find_to(&o, "alice@example.com");
		assert_non_null(x);
		assert_int_equal(x->env.kind, SPOOL_KIND_NOTIFICATION);
		check_own_marker(f, x, id);
		assert_non_null(strstr(log, "invalid " SG_MARKER_HEADER));
		assert_null(strstr(log, "own mail"));
		if (c == 6)
			assert_non_null(strstr(log, "envelope sender not <>"));
		outs_free(&o);
		free(log);
		free(msg);
		free(cases[c].fields);
	}
}

/* A database without a server secret (never initialised): notifications
 * go without a marker (logged), and no marker can be valid - one is
 * removed like a forged one. */
static void test_no_secret(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", "carol@example.com", NULL};
	char mid[SG_MAIL_ID_LEN + 1], val[SG_MARKER_MAX], id[SG_MAIL_ID_LEN + 1], *log;
	struct sg_error err;
	const struct out *x;
	struct outs o;
	char *msg;

	policy_std(f);
	sg_mail_id_new(mid);
	assert_int_equal(sg_marker_make(f->secret, mid, "<n.1@gw.example.com>", val,
		sizeof(val), &err), 0);
	assert_int_equal(store_setting_delete(f->db, "server_secret", &err), 0);
	msg = sg_xasprintf("From: alice@example.com\nSubject: Memo\n"
		"Message-ID: <n.1@gw.example.com>\n%s: %s\n\n" SECRET "\n",
		SG_MARKER_HEADER, val);
	run(f, "", rcpts, msg, strlen(msg), id, &log);
	collect(f, &o);
	assert_int_equal(o.n, 2);
	x = find_to(&o, "carol@example.com");
	assert_non_null(x);
	assert_null(strstr(x->body, SG_MARKER_HEADER));
	x = find_to(&o, "alice@example.com");
	assert_non_null(x);
	assert_int_equal(x->env.kind, SPOOL_KIND_NOTIFICATION);
	assert_null(strstr(x->body, SG_MARKER_HEADER));
	assert_non_null(strstr(log, "no server secret"));
	assert_non_null(strstr(log, "invalid " SG_MARKER_HEADER));
	assert_null(strstr(log, "envelope sender not <>"));
	outs_free(&o);
	free(log);
	free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_notification_from_domain_template, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_valid_marker_passthrough, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_marker_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret, setup, teardown),
	};

	sg_log_init("test_mpa_marker", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
