/* test_delivery_queue.c - the delivery agent on a real spool against the
 * scripted receiver (F-FLOW-1/2/3, D-1, D-4): byte-exact delivery, mixed
 * per-recipient replies, deferral and retry of only the pending
 * recipients, backoff, requeue_due, queue lifetime expiry, RFC 3464 bounce
 * content (parsed with GMime), no bounce for a bounce / null sender /
 * NOTIFY=NEVER / external sender, connection refused, mandatory TLS without
 * STARTTLS, routing (internal vs external relay, MX preference, null MX,
 * MX loop) and streaming of a 200 MB body without raising RSS. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>
#include <sys/resource.h>
#include <cmocka.h>

#include <gmime/gmime.h>

#include "delivery/delivery_int.h"
#include "smtpd_stub.h"

#define DAY 86400

struct fx {
	char dir[256];
	struct spool *sp;
	struct stub_smtpd stub;
	struct delivery_conf conf;
	struct mta_settings *mta;
};

/* The MX table of these tests: ext.test is the stub (via conf.mx_port). */
static int fx_mx_lookup(void *arg, const char *domain, struct delivery_mx **mx_r,
	size_t *n_r, struct sg_error *err)
{
	(void)arg;
	if (strcmp(domain, "nullmx.test") == 0) {
		*mx_r = sg_xcalloc(1, sizeof(**mx_r));
		snprintf((*mx_r)[0].host, sizeof((*mx_r)[0].host), ".");
		*n_r = 1;
		return 1;
	}
	if (strcmp(domain, "pref.test") == 0) {
		/* the best MX refuses connections; the second is the stub */
		*mx_r = sg_xcalloc(2, sizeof(**mx_r));
		(*mx_r)[0].pref = 20;
		snprintf((*mx_r)[0].host, sizeof((*mx_r)[0].host), "127.0.0.1");
		(*mx_r)[1].pref = 10;
		snprintf((*mx_r)[1].host, sizeof((*mx_r)[1].host), "127.0.0.2");
		*n_r = 2;
		return 1;
	}
	if (strcmp(domain, "ext.test") == 0 || strcmp(domain, "ext2.test") == 0) {
		*mx_r = sg_xcalloc(1, sizeof(**mx_r));
		(*mx_r)[0].pref = 10;
		snprintf((*mx_r)[0].host, sizeof((*mx_r)[0].host), "127.0.0.1");
		*n_r = 1;
		return 1;
	}
	sg_error_set(err, SG_E_NOTFOUND, "5.1.2 domain not found: %s", domain);
	return -1;
}

static int fx_setup(void **state)
{
	struct fx *f = sg_xcalloc(1, sizeof(*f));
	struct sg_error err;
	char path[300];
	struct stub_conf sc = {.keep_data = true, .ehlo_ext = "PIPELINING"};

	snprintf(f->dir, sizeof(f->dir), "/tmp/sg-dlv-queue-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/spool", f->dir);
	f->sp = spool_open(path, &err);
	assert_non_null(f->sp);
	assert_int_equal(stub_start(&f->stub, &sc), 0);
	delivery_conf_init(&f->conf, "gw.test");
	f->conf.mx_lookup = fx_mx_lookup;
	f->conf.mx_port = f->stub.port;
	f->conf.connect_timeout = 5;
	f->conf.io_timeout = 10;
	f->mta = mta_settings_defaults("gw.test");
	f->mta->relay_domains = sg_xcalloc(2, sizeof(char *));
	f->mta->relay_domains[0] = sg_xstrdup("int.test");
	f->mta->n_relay_domains = 1;
	f->mta->tls_level = MTA_TLS_MAY;
	*state = f;
	return 0;
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR)
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	delivery_conn_cache_close();
	stub_stop(&f->stub);
	spool_close(&f->sp);
	mta_settings_free(&f->mta);
	rm_tree(f->dir);
	free(f);
	return 0;
}

struct msg_spec {
	const char *sender;
	const char *rcpts[4];
	unsigned notify[4];
	enum spool_kind kind;
	int64_t arrival;        /* 0 = now */
	bool ret_hdrs;
	const char *body;
};

static const char default_body[] =
	"From: Sender <s@int.test>\r\n"
	"To: a@ext.test\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@int.test>\r\n"
	"\r\n"
	"line one\r\n"
	".starts with a dot\r\n"
	"..two dots\r\n"
	".\r\n"
	"BODY-MARKER last line\r\n";

static void put_msg(struct fx *f, const struct msg_spec *m, char *id)
{
	struct spool_env env;
	struct spool_writer *w;
	struct sg_error err;
	const char *b = m->body != NULL ? m->body : default_body;
	size_t i;

	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup(m->sender);
	env.kind = m->kind;
	env.arrival = m->arrival ? m->arrival : sg_now();
	env.dsn_ret_hdrs = m->ret_hdrs;
	for (i = 0; i < 4 && m->rcpts[i] != NULL; i++)
		spool_env_add_rcpt(&env, m->rcpts[i], NULL, m->notify[i]);
	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	snprintf(id, SG_MAIL_ID_LEN + 1, "%s", spool_writer_id(w));
	assert_int_equal(spool_writer_write(w, b, strlen(b), &err), 0);
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_OUTGOING, &err), 0);
	spool_env_free_fields(&env);
}

static int deliver(struct fx *f, const char *id, enum delivery_outcome *out)
{
	struct sg_error err;
	int rc = delivery_message(&f->conf, f->mta, f->sp, id, out, &err);

	if (rc < 0)
		print_error("delivery_message: %s\n", err.msg);
	return rc;
}

static enum spool_queue where(struct fx *f, const char *id)
{
	enum spool_queue q;
	struct sg_error err;
	int rc = spool_find(f->sp, id, &q, &err);

	assert_true(rc >= 0);
	return rc == 0 ? SPOOL_Q__COUNT : q;
}

static void env_of(struct fx *f, enum spool_queue q, const char *id, struct spool_env *env)
{
	struct sg_error err;

	assert_int_equal(spool_env_read(f->sp, q, id, env, NULL, &err), 0);
}

/* ---------------------------------------------------- queue inspection */

struct idlist {
	char ids[16][SG_MAIL_ID_LEN + 1];
	size_t n;
};

static int collect(const char *id, void *arg)
{
	struct idlist *l = arg;

	if (l->n < 16)
		snprintf(l->ids[l->n++], SG_MAIL_ID_LEN + 1, "%s", id);
	return 0;
}

/* bounces_in_outgoing - ids of the bounce messages in outgoing/. */
static size_t bounces_in_outgoing(struct fx *f, struct idlist *bl)
{
	struct idlist all = {0};
	struct sg_error err;
	size_t i;

	memset(bl, 0, sizeof(*bl));
	assert_int_equal(spool_list(f->sp, SPOOL_Q_OUTGOING, collect, &all, &err), 0);
	for (i = 0; i < all.n; i++) {
		struct spool_env env;

		env_of(f, SPOOL_Q_OUTGOING, all.ids[i], &env);
		if (env.kind == SPOOL_KIND_BOUNCE)
			snprintf(bl->ids[bl->n++], SG_MAIL_ID_LEN + 1, "%s", all.ids[i]);
		spool_env_free_fields(&env);
	}
	return bl->n;
}

/* ------------------------------------------------------- bounce parsing */

struct bounce {
	GMimeMessage *msg;
	char *status;        /* the message/delivery-status content */
	char *returned;      /* the third part as text */
	char *raw;
};

static char *object_text(GMimeObject *o)
{
	GMimeStream *ms = g_mime_stream_mem_new();
	GByteArray *ba;
	char *s;

	if (GMIME_IS_PART(o)) {
		GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(o));

		g_mime_data_wrapper_write_to_stream(dw, ms);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));

		g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, ms);
	} else {
		g_mime_object_write_to_stream(o, NULL, ms);
	}
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
	s = sg_xstrndup((const char *)ba->data, ba->len);
	g_object_unref(ms);
	return s;
}

static void bounce_load(struct fx *f, const char *id, struct bounce *b)
{
	struct spool_msg *m;
	struct sg_error err;
	uint64_t off, len;
	int fd;
	GMimeStream *st;
	GMimeParser *p;
	GMimeObject *body;
	GMimeMultipart *mp;

	memset(b, 0, sizeof(*b));
	m = spool_msg_open(f->sp, SPOOL_Q_OUTGOING, id, &err);
	assert_non_null(m);
	fd = spool_msg_body_fd(m, &off, &len);
	b->raw = sg_xmalloc(len + 1);
	assert_int_equal(pread(fd, b->raw, len, (off_t)off), (ssize_t)len);
	b->raw[len] = '\0';
	spool_msg_close(&m);
	st = g_mime_stream_mem_new_with_buffer(b->raw, len);
	p = g_mime_parser_new_with_stream(st);
	b->msg = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(st);
	assert_non_null(b->msg);
	body = g_mime_message_get_mime_part(b->msg);
	assert_true(GMIME_IS_MULTIPART(body));
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(body),
		"multipart", "report"));
	assert_string_equal(g_mime_object_get_content_type_parameter(body, "report-type"),
		"delivery-status");
	mp = GMIME_MULTIPART(body);
	assert_int_equal(g_mime_multipart_get_count(mp), 3);
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(
		g_mime_multipart_get_part(mp, 0)), "text", "plain"));
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(
		g_mime_multipart_get_part(mp, 1)), "message", "delivery-status"));
	b->status = object_text(g_mime_multipart_get_part(mp, 1));
	b->returned = object_text(g_mime_multipart_get_part(mp, 2));
}

static void bounce_free(struct bounce *b)
{
	if (b->msg != NULL)
		g_object_unref(b->msg);
	free(b->status);
	free(b->returned);
	free(b->raw);
}

/*
 * status_field - value of field in per-recipient group rcpt_idx (0-based;
 * -1 = the per-message group) of the delivery-status text. Each group is
 * parsed with GMime as a header block. Returns a malloc'ed string or NULL.
 */
static char *status_field(const char *status, int group, const char *field)
{
	const char *p = status;
	char *res = NULL;
	int g = -1;

	while (*p == '\r' || *p == '\n')
		p++;
	while (*p != '\0') {
		const char *end = strstr(p, "\r\n\r\n");
		size_t len = end != NULL ? (size_t)(end - p) + 2 : strlen(p);

		if (g == group) {
			char *block = sg_xasprintf("%.*s\r\n", (int)len, p);
			GMimeStream *st = g_mime_stream_mem_new_with_buffer(block, strlen(block));
			GMimeParser *ps = g_mime_parser_new_with_stream(st);
			GMimeMessage *m = g_mime_parser_construct_message(ps, NULL);
			const char *v = m != NULL ? g_mime_object_get_header(GMIME_OBJECT(m), field) :
				NULL;

			if (v != NULL)
				res = sg_xstrdup(v);
			if (m != NULL)
				g_object_unref(m);
			g_object_unref(ps);
			g_object_unref(st);
			free(block);
			return res;
		}
		g++;
		if (end == NULL)
			break;
		p = end + 4;
	}
	return NULL;
}

static void assert_field(const char *status, int group, const char *field, const char *want)
{
	char *v = status_field(status, group, field);

	if (v == NULL)
		fail_msg("group %d: no %s field in:\n%s", group, field, status);
	if (strstr(v, want) == NULL)
		fail_msg("group %d: %s = '%s', want it to contain '%s'", group, field, v, want);
	free(v);
}

/* ------------------------------------------------------------------ tests */

static void test_deliver_byte_exact(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	static const char want[] =
		"From: Sender <s@int.test>\r\n"
		"To: a@ext.test\r\n"
		"Subject: hello\r\n"
		"Message-ID: <m1@int.test>\r\n"
		"\r\n"
		"line one\r\n"
		"..starts with a dot\r\n"
		"...two dots\r\n"
		"..\r\n"
		"BODY-MARKER last line\r\n";
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	char path[400];

	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(f->stub.messages, 1);
	assert_true(stub_has_cmd(&f->stub, "MAIL FROM:<s@int.test>"));
	assert_true(stub_has_cmd(&f->stub, "RCPT TO:<a@ext.test>"));
	assert_int_equal(f->stub.data_len, sizeof(want) - 1);
	assert_memory_equal(f->stub.data, want, sizeof(want) - 1);
	/* gone from every queue, state included */
	assert_int_equal(where(f, id), SPOOL_Q__COUNT);
	snprintf(path, sizeof(path), "%s/spool/state/%s", f->dir, id);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_mixed_replies_defer_and_retry(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test",
		.rcpts = {"a@ext.test", "b@ext.test", "c@ext.test"}};
	struct stub_conf sc = {.keep_data = true, .ehlo_ext = "PIPELINING"};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct spool_env env;
	struct idlist bl;
	struct bounce b;
	struct sg_error err;
	int64_t t0 = sg_now();

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"b@ext.test", "450 4.2.1 mailbox busy"};
	sc.rcpt_rules[1] = (struct stub_rcpt_rule){"c@ext.test", "550 5.1.1 no such user"};
	stub_set_conf(&f->stub, &sc);
	f->mta->backoff_min = 300;
	f->mta->backoff_max = 4000;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	assert_int_equal(where(f, id), SPOOL_Q_DEFERRED);
	env_of(f, SPOOL_Q_DEFERRED, id, &env);
	assert_int_equal(env.rcpts[0].status, SPOOL_RCPT_DELIVERED);
	assert_int_equal(env.rcpts[1].status, SPOOL_RCPT_PENDING);
	assert_int_equal(env.rcpts[2].status, SPOOL_RCPT_FAILED);
	assert_non_null(strstr(env.rcpts[1].last_reply, "450 4.2.1 mailbox busy"));
	assert_non_null(strstr(env.rcpts[2].last_reply, "550 5.1.1 no such user"));
	assert_int_equal(env.attempts, 1);
	/* first backoff: backoff_min +-10% */
	assert_true(env.next_attempt >= t0 + 270 && env.next_attempt <= sg_now() + 330);
	assert_non_null(strstr(env.last_error, "mailbox busy"));
	spool_env_free_fields(&env);
	/* the permanent failure is reported right away (not after the retries) */
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	assert_field(b.status, 0, "Final-Recipient", "c@ext.test");
	assert_null(status_field(b.status, 1, "Final-Recipient"));
	bounce_free(&b);
	assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, bl.ids[0], &err), 0);

	/* not due yet: stays deferred */
	assert_int_equal(delivery_requeue_due(f->sp, sg_now(), &err), 0);
	assert_int_equal(where(f, id), SPOOL_Q_DEFERRED);
	/* due: back to outgoing; the retry sends to b only */
	assert_int_equal(delivery_requeue_due(f->sp, sg_now() + 400, &err), 1);
	assert_int_equal(where(f, id), SPOOL_Q_OUTGOING);
	stub_reset(&f->stub);
	sc.rcpt_rules[0].addr = NULL;
	sc.rcpt_rules[1].addr = NULL;
	stub_set_conf(&f->stub, &sc);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(stub_count_cmd(&f->stub, "RCPT TO:"), 1);
	assert_true(stub_has_cmd(&f->stub, "RCPT TO:<b@ext.test>"));
	assert_int_equal(where(f, id), SPOOL_Q__COUNT);
	/* c was already reported: no second bounce */
	assert_int_equal(bounces_in_outgoing(f, &bl), 0);
}

static void test_early_bounce_failure_postponed(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test", "b@ext.test"}};
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct spool_env env;
	struct idlist bl;
	struct bounce b;
	struct sg_error err;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"a@ext.test", "550 5.1.1 gone"};
	sc.rcpt_rules[1] = (struct stub_rcpt_rule){"b@ext.test", "450 4.2.1 busy"};
	stub_set_conf(&f->stub, &sc);
	put_msg(f, &m, id);
	/* I/O steps: two state saves, then the bounce's first write: disk full */
	spool_test_fail_after(3, ENOSPC);
	assert_int_equal(deliver(f, id, &out), 0);
	spool_test_fail_after(0, 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	assert_int_equal(bounces_in_outgoing(f, &bl), 0);
	env_of(f, SPOOL_Q_DEFERRED, id, &env);
	assert_int_equal(env.rcpts[0].status, SPOOL_RCPT_FAILED);
	assert_true(delivery_rcpt_needs_dsn(&env.rcpts[0]));
	spool_env_free_fields(&env);
	/* next attempt: b delivered, a's failure bounced now */
	sc.rcpt_rules[1].addr = NULL;
	stub_set_conf(&f->stub, &sc);
	assert_int_equal(delivery_requeue_due(f->sp, sg_now() + 100000, &err), 1);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	assert_field(b.status, 0, "Final-Recipient", "a@ext.test");
	assert_null(status_field(b.status, 1, "Final-Recipient"));
	bounce_free(&b);
}

static void test_backoff(void **state)
{
	static const struct {
		unsigned attempts;
		int64_t base;
	} cases[] = {{1, 300}, {2, 600}, {3, 1200}, {4, 2400}, {5, 4000}, {6, 4000},
		{40, 4000}};
	struct mta_settings *m = mta_settings_defaults("gw.test");
	size_t i;

	(void)state;
	m->backoff_min = 300;
	m->backoff_max = 4000;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t lo = delivery_backoff(m, cases[i].attempts, 0);
		int64_t hi = delivery_backoff(m, cases[i].attempts, (uint32_t)(cases[i].base / 5));
		int64_t mid = delivery_backoff(m, cases[i].attempts, (uint32_t)(cases[i].base / 10));

		if (lo != cases[i].base - cases[i].base / 10 ||
		    hi != cases[i].base + cases[i].base / 10 || mid != cases[i].base)
			fail_msg("attempt %u: got %lld..%lld..%lld want %lld +-10%%",
				cases[i].attempts, (long long)lo, (long long)mid, (long long)hi,
				(long long)cases[i].base);
	}
	/* never below one second */
	m->backoff_min = 1;
	m->backoff_max = 1;
	assert_int_equal(delivery_backoff(m, 1, 12345), 1);
	mta_settings_free(&m);
}

static void test_requeue_due(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	char id1[SG_MAIL_ID_LEN + 1], id2[SG_MAIL_ID_LEN + 1];
	struct spool_env env;
	struct sg_error err;
	int64_t now = sg_now();

	put_msg(f, &m, id1);
	put_msg(f, &m, id2);
	env_of(f, SPOOL_Q_OUTGOING, id1, &env);
	env.next_attempt = now - 10;
	env.attempts = 1;
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	spool_env_free_fields(&env);
	env_of(f, SPOOL_Q_OUTGOING, id2, &env);
	env.next_attempt = now + 1000;
	env.attempts = 1;
	assert_int_equal(spool_state_save(f->sp, &env, &err), 0);
	spool_env_free_fields(&env);
	assert_int_equal(spool_move(f->sp, id1, SPOOL_Q_OUTGOING, SPOOL_Q_DEFERRED, &err), 0);
	assert_int_equal(spool_move(f->sp, id2, SPOOL_Q_OUTGOING, SPOOL_Q_DEFERRED, &err), 0);
	assert_int_equal(delivery_requeue_due(f->sp, now, &err), 1);
	assert_int_equal(where(f, id1), SPOOL_Q_OUTGOING);
	assert_int_equal(where(f, id2), SPOOL_Q_DEFERRED);
	assert_int_equal(delivery_requeue_due(f->sp, now + 1000, &err), 1);
	assert_int_equal(where(f, id2), SPOOL_Q_OUTGOING);
	assert_int_equal(delivery_requeue_due(f->sp, now + 99999, &err), 0);
}

static void test_lifetime_expiry_bounces(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"},
		.arrival = sg_now() - 6 * DAY};
	struct stub_conf sc = {.keep_data = true};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;
	struct bounce b;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"a@ext.test", "451 4.3.0 still busy"};
	stub_set_conf(&f->stub, &sc);
	f->mta->max_queue_lifetime = 5 * DAY;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(where(f, id), SPOOL_Q__COUNT);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	assert_field(b.status, 0, "Final-Recipient", "rfc822; a@ext.test");
	assert_field(b.status, 0, "Action", "failed");
	assert_field(b.status, 0, "Status", "4.4.7");
	assert_field(b.status, 0, "Diagnostic-Code", "451 4.3.0 still busy");
	assert_non_null(strstr(b.raw, "delivery time expired"));
	bounce_free(&b);
}

static void test_lifetime_not_expired_defers(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"},
		.arrival = sg_now() - 4 * DAY};
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"a@ext.test", "451 4.3.0 still busy"};
	stub_set_conf(&f->stub, &sc);
	f->mta->max_queue_lifetime = 5 * DAY;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	assert_int_equal(bounces_in_outgoing(f, &bl), 0);
}

static void test_bounce_content_full(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test", "c@ext.test"}};
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;
	struct bounce b;
	struct spool_env env;
	InternetAddressList *to;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"c@ext.test", "550 5.1.1 <c@ext.test>: "
		"Recipient address rejected"};
	stub_set_conf(&f->stub, &sc);
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	/* envelope: null sender, to the original sender, kind bounce */
	env_of(f, SPOOL_Q_OUTGOING, bl.ids[0], &env);
	assert_string_equal(env.sender, "");
	assert_int_equal(env.nrcpts, 1);
	assert_string_equal(env.rcpts[0].addr, "s@int.test");
	assert_int_equal(env.kind, SPOOL_KIND_BOUNCE);
	assert_string_equal(env.parent_id, id);
	spool_env_free_fields(&env);

	bounce_load(f, bl.ids[0], &b);
	to = g_mime_message_get_to(b.msg);
	assert_int_equal(internet_address_list_length(to), 1);
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(
		internet_address_list_get_address(to, 0))), "s@int.test");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(b.msg), "Auto-Submitted"),
		"auto-generated");
	assert_non_null(strstr(g_mime_object_get_header(GMIME_OBJECT(b.msg), "From"),
		"<MAILER-DAEMON@gw.test>"));
	assert_field(b.status, -1, "Reporting-MTA", "dns; gw.test");
	assert_field(b.status, -1, "Arrival-Date", " ");
	assert_field(b.status, 0, "Final-Recipient", "rfc822; c@ext.test");
	assert_field(b.status, 0, "Action", "failed");
	assert_field(b.status, 0, "Status", "5.1.1");
	assert_field(b.status, 0, "Remote-MTA", "dns; 127.0.0.1");
	assert_field(b.status, 0, "Diagnostic-Code",
		"smtp; 550 5.1.1 <c@ext.test>: Recipient address rejected");
	/* only the failed recipient is reported */
	assert_null(status_field(b.status, 1, "Final-Recipient"));
	assert_null(strstr(b.status, "a@ext.test"));
	/* the whole original is returned (small, RET not HDRS) */
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(
		g_mime_multipart_get_part(GMIME_MULTIPART(g_mime_message_get_mime_part(b.msg)), 2)),
		"message", "rfc822"));
	assert_non_null(strstr(b.returned, "Subject: hello"));
	assert_non_null(strstr(b.returned, "BODY-MARKER"));
	bounce_free(&b);
}

static void test_bounce_ret_hdrs_system_mail_from(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"c@ext.test"}, .ret_hdrs = true};
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;
	struct bounce b;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"c@ext.test", "550 5.1.1 unknown"};
	stub_set_conf(&f->stub, &sc);
	f->conf.system_mail_from = "postmaster@int.test";
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	/* D-4: From is system_mail_from when set */
	assert_non_null(strstr(g_mime_object_get_header(GMIME_OBJECT(b.msg), "From"),
		"<postmaster@int.test>"));
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(
		g_mime_multipart_get_part(GMIME_MULTIPART(g_mime_message_get_mime_part(b.msg)), 2)),
		"text", "rfc822-headers"));
	assert_non_null(strstr(b.returned, "Subject: hello"));
	assert_null(strstr(b.returned, "BODY-MARKER"));
	bounce_free(&b);
}

/* F-FLOW-7: with the server secret a bounce carries the own-mail marker,
 * naming the bounced message and valid for the bounce's Message-ID under
 * that secret only; without a secret there is no marker. */
static void test_bounce_marker(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"c@ext.test"}};
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;
	struct bounce b;
	const char *marker, *msgid;
	const char *secret = "6f1c2a9be07d4e5f8a3b2c1d0e9f8a7b";
	struct sg_error err;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"c@ext.test", "550 5.1.1 unknown"};
	stub_set_conf(&f->stub, &sc);
	f->conf.server_secret = secret;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	marker = g_mime_object_get_header(GMIME_OBJECT(b.msg), SG_MARKER_HEADER);
	msgid = g_mime_object_get_header(GMIME_OBJECT(b.msg), "Message-ID");
	assert_non_null(marker);
	assert_non_null(msgid);
	assert_true(strncmp(marker, id, SG_MAIL_ID_LEN) == 0);
	assert_true(sg_marker_verify(secret, marker, msgid));
	assert_false(sg_marker_verify("another-secret-of-32-characters!", marker, msgid));
	assert_false(sg_marker_verify(secret, marker, "<other@gw.test>"));
	bounce_free(&b);
	assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, bl.ids[0], &err), 0);

	f->conf.server_secret = NULL;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	assert_null(g_mime_object_get_header(GMIME_OBJECT(b.msg), SG_MARKER_HEADER));
	assert_null(strstr(b.raw, SG_MARKER_HEADER));
	bounce_free(&b);
}

static void test_bounce_several_failed(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test",
		.rcpts = {"a@ext.test", "b@ext.test", "c@ext.test", "d@ext.test"},
		.notify = {0, SPOOL_NOTIFY_NEVER, SPOOL_NOTIFY_FAILURE, 0}};
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;
	struct bounce b;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"a@ext.test", "550 5.1.1 user a unknown"};
	sc.rcpt_rules[1] = (struct stub_rcpt_rule){"b@ext.test", "550 5.1.1 user b unknown"};
	sc.rcpt_rules[2] = (struct stub_rcpt_rule){"c@ext.test", "552 5.2.2 mailbox c full"};
	stub_set_conf(&f->stub, &sc);
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(f->stub.messages, 1); /* d was delivered */
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	/* a and c in order; b asked NOTIFY=NEVER; d was delivered */
	assert_field(b.status, 0, "Final-Recipient", "rfc822; a@ext.test");
	assert_field(b.status, 0, "Diagnostic-Code", "user a unknown");
	assert_field(b.status, 1, "Final-Recipient", "rfc822; c@ext.test");
	assert_field(b.status, 1, "Status", "5.2.2");
	assert_null(status_field(b.status, 2, "Final-Recipient"));
	assert_null(strstr(b.raw, "b@ext.test"));
	assert_null(strstr(b.status, "d@ext.test"));
	/* the human-readable part names both */
	assert_non_null(strstr(b.raw, "<a@ext.test>: host "));
	assert_non_null(strstr(b.raw, "<c@ext.test>: host "));
	bounce_free(&b);
}

static void no_bounce_case(struct fx *f, const struct msg_spec *m)
{
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"c@ext.test", "550 5.1.1 unknown"};
	stub_set_conf(&f->stub, &sc);
	put_msg(f, m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(where(f, id), SPOOL_Q__COUNT);
	assert_true(stub_has_cmd(&f->stub, "RCPT TO:<c@ext.test>"));
	assert_int_equal(bounces_in_outgoing(f, &bl), 0);
}

static void test_no_bounce_for_bounce(void **state)
{
	struct msg_spec m = {.sender = "", .rcpts = {"c@ext.test"}, .kind = SPOOL_KIND_BOUNCE};

	no_bounce_case(*state, &m);
}

static void test_no_bounce_for_null_sender(void **state)
{
	struct msg_spec m = {.sender = "", .rcpts = {"c@ext.test"}};

	no_bounce_case(*state, &m);
}

static void test_no_bounce_for_notification(void **state)
{
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"c@ext.test"},
		.kind = SPOOL_KIND_NOTIFICATION};

	no_bounce_case(*state, &m);
}

static void test_no_bounce_notify_never(void **state)
{
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"c@ext.test"},
		.notify = {SPOOL_NOTIFY_NEVER}};

	no_bounce_case(*state, &m);
}

static void test_no_bounce_external_sender(void **state)
{
	/* D-4: bounces only to internal originators (no backscatter) */
	struct msg_spec m = {.sender = "x@ext2.test", .rcpts = {"c@ext.test"}};

	no_bounce_case(*state, &m);
}

static void test_bounce_external_sender_policy_any(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "x@ext2.test", .rcpts = {"c@ext.test"}};
	struct stub_conf sc = {0};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;

	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"c@ext.test", "550 5.1.1 unknown"};
	stub_set_conf(&f->stub, &sc);
	f->conf.bounce_policy = DELIVERY_BOUNCE_ANY;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
}

static void test_connection_refused_deferred(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct spool_env env;

	f->conf.mx_port = stub_free_port();
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	env_of(f, SPOOL_Q_DEFERRED, id, &env);
	assert_int_equal(env.rcpts[0].status, SPOOL_RCPT_PENDING);
	assert_non_null(strstr(env.last_error, "connect"));
	assert_true(env.next_attempt > sg_now());
	spool_env_free_fields(&env);
}

static void test_greeting_421_deferred(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	struct stub_conf sc = {.greeting = "421 4.3.2 service not available"};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct spool_env env;

	stub_set_conf(&f->stub, &sc);
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	assert_false(stub_has_cmd(&f->stub, "EHLO"));
	env_of(f, SPOOL_Q_DEFERRED, id, &env);
	assert_int_equal(env.rcpts[0].status, SPOOL_RCPT_PENDING);
	assert_non_null(strstr(env.last_error, "421 4.3.2 service not available"));
	spool_env_free_fields(&env);
}

static void test_next_hop_down_then_back(void **state)
{
	/* Outages: next hop down -> deferred; back -> delivered on retry */
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct sg_error err;
	unsigned port = f->conf.mx_port;

	f->conf.mx_port = stub_free_port();
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	f->conf.mx_port = port;
	assert_int_equal(delivery_requeue_due(f->sp, sg_now() + 100000, &err), 1);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(f->stub.messages, 1);
}

static void test_tls_mandatory_no_starttls_deferred(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct spool_env env;

	f->mta->tls_level = MTA_TLS_ENCRYPT;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	assert_false(stub_has_cmd(&f->stub, "MAIL"));
	assert_int_equal(f->stub.data_len, 0);
	env_of(f, SPOOL_Q_DEFERRED, id, &env);
	assert_non_null(strstr(env.last_error, "TLS is required"));
	spool_env_free_fields(&env);
}

static void test_starttls_and_auth_to_relay(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	struct stub_conf sc = {.auth_user = "gw", .auth_pass = "pw1", .auth_required = true};
	char id[SG_MAIL_ID_LEN + 1], ca[300];
	enum delivery_outcome out;

	sc.tls = stub_tls_ctx(f->dir, ca, sizeof(ca));
	assert_non_null(sc.tls);
	stub_set_conf(&f->stub, &sc);
	f->mta->external_relay.host = sg_xstrdup("localhost");
	f->mta->external_relay.port = f->stub.port;
	f->mta->tls_level = MTA_TLS_VERIFY;
	f->conf.tls_ca_file = ca;
	f->mta->sasl = sg_xcalloc(1, sizeof(*f->mta->sasl));
	f->mta->sasl[0].host = sg_xstrdup("localhost");
	f->mta->sasl[0].port = f->stub.port;
	f->mta->sasl[0].username = sg_xstrdup("gw");
	f->mta->sasl[0].password = sg_xstrdup("pw1");
	f->mta->n_sasl = 1;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_true(f->stub.saw_tls);
	assert_true(f->stub.auth_ok);
	assert_false(f->stub.auth_in_clear);
	assert_int_equal(f->stub.messages, 1);
	stub_set_conf(&f->stub, &(struct stub_conf){0});
	SSL_CTX_free(sc.tls);
}

static void test_route_internal_external(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test",
		.rcpts = {"a@int.test", "b@ext.test", "c@sub.int.test"}};
	struct stub_smtpd internal;
	struct stub_conf sc = {.keep_data = true};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;

	assert_int_equal(stub_start(&internal, &sc), 0);
	f->mta->internal_relay.host = sg_xstrdup("127.0.0.1");
	f->mta->internal_relay.port = internal.port;
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	/* relay-domain recipients (subdomains too) to the internal relay, in one
	 * transaction; the rest by MX (the stub via the lookup hook) */
	assert_int_equal(internal.messages, 1);
	assert_int_equal(stub_count_cmd(&internal, "RCPT TO:"), 2);
	assert_true(stub_has_cmd(&internal, "RCPT TO:<a@int.test>"));
	assert_true(stub_has_cmd(&internal, "RCPT TO:<c@sub.int.test>"));
	assert_int_equal(f->stub.messages, 1);
	assert_int_equal(stub_count_cmd(&f->stub, "RCPT TO:"), 1);
	assert_true(stub_has_cmd(&f->stub, "RCPT TO:<b@ext.test>"));
	stub_stop(&internal);
}

static void test_route_mx_preference(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@pref.test"}};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;

	/* pref 10 = 127.0.0.2 (nothing listens: refused), pref 20 = the stub */
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(f->stub.messages, 1);
}

static void test_route_null_mx_bounces(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@nullmx.test"}};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct idlist bl;
	struct bounce b;

	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(f->stub.sessions, 0);
	assert_int_equal(bounces_in_outgoing(f, &bl), 1);
	bounce_load(f, bl.ids[0], &b);
	assert_field(b.status, 0, "Status", "5.1.10");
	assert_field(b.status, 0, "Final-Recipient", "a@nullmx.test");
	bounce_free(&b);
}

static void test_route_mx_self_loop_deferred(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	struct spool_env env;

	snprintf(f->conf.listen.host, sizeof(f->conf.listen.host), "127.0.0.1");
	f->conf.listen.port = f->conf.mx_port; /* the MX of ext.test is "us" */
	put_msg(f, &m, id);
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DEFERRED);
	assert_int_equal(f->stub.sessions, 0);
	env_of(f, SPOOL_Q_DEFERRED, id, &env);
	assert_non_null(strstr(env.last_error, "loops back to myself"));
	spool_env_free_fields(&env);
}

/* Connection reuse across messages (issue 2): two messages to the same
 * next hop share one SMTP connection; a cached connection that the server
 * dropped meanwhile costs a reconnect, never a deferral. */
static void test_reuse_two_messages_one_connection(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test"}};
	char id1[SG_MAIL_ID_LEN + 1], id2[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;

	put_msg(f, &m, id1);
	put_msg(f, &m, id2);
	assert_int_equal(deliver(f, id1, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(deliver(f, id2, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(f->stub.sessions, 1);
	assert_int_equal(f->stub.messages, 2);
	assert_int_equal(stub_count_cmd(&f->stub, "EHLO"), 1);
	assert_int_equal(where(f, id1), SPOOL_Q__COUNT);
	assert_int_equal(where(f, id2), SPOOL_Q__COUNT);
}

static void test_reuse_dropped_connection_not_deferred(void **state)
{
	struct fx *f = *state;
	struct msg_spec m = {.sender = "s@int.test", .rcpts = {"a@ext.test", "b@ext.test"}};
	struct stub_conf sc = {.keep_data = true, .ehlo_ext = "PIPELINING",
		.drop_second_mail = true};
	char id1[SG_MAIL_ID_LEN + 1], id2[SG_MAIL_ID_LEN + 1], id3[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;

	stub_set_conf(&f->stub, &sc);
	put_msg(f, &m, id1);
	put_msg(f, &m, id2);
	put_msg(f, &m, id3);
	assert_int_equal(deliver(f, id1, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	/* the server drops the connection when the next MAIL arrives */
	assert_int_equal(deliver(f, id2, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	/* the server closes the idle connection (421) before the next one */
	assert_int_equal(stub_close_idle(&f->stub, "421 4.4.2 idle too long"), 0);
	assert_int_equal(deliver(f, id3, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	assert_int_equal(f->stub.sessions, 3);
	assert_int_equal(f->stub.messages, 3);
	assert_int_equal(where(f, id2), SPOOL_Q__COUNT);
	assert_int_equal(where(f, id3), SPOOL_Q__COUNT);
}

static void test_large_message_streams(void **state)
{
	struct fx *f = *state;
	struct stub_conf sc = {.keep_data = false};
	struct spool_env env;
	struct spool_writer *w;
	struct sg_error err;
	struct rusage ru;
	char id[SG_MAIL_ID_LEN + 1];
	enum delivery_outcome out;
	char *line = sg_xmalloc(1 << 20);
	const size_t total_mb = 200;
	long before_kb;
	size_t i;

	stub_set_conf(&f->stub, &sc);
	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup("s@int.test");
	env.arrival = sg_now();
	spool_env_add_rcpt(&env, "a@ext.test", NULL, 0);
	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	snprintf(id, sizeof(id), "%s", spool_writer_id(w));
	assert_int_equal(spool_writer_write(w, "Subject: big\r\n\r\n", 16, &err), 0);
	for (i = 0; i + 100 <= (1 << 20); i += 100) {
		memset(line + i, 'x', 98);
		line[i + 98] = '\r';
		line[i + 99] = '\n';
	}
	line[0] = '.'; /* a dot-stuffed line in every MB */
	for (i = 0; i < total_mb; i++)
		assert_int_equal(spool_writer_write(w, line, (1 << 20) - 76, &err), 0);
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_OUTGOING, &err), 0);
	spool_env_free_fields(&env);
	free(line);
	getrusage(RUSAGE_SELF, &ru);
	before_kb = ru.ru_maxrss;
	assert_int_equal(deliver(f, id, &out), 0);
	assert_int_equal(out, DELIVERY_DONE);
	getrusage(RUSAGE_SELF, &ru);
	/* the stub saw every byte, plus one stuffed dot per MB chunk */
	assert_int_equal(f->stub.data_bytes, 16 + total_mb * ((1 << 20) - 76) + total_mb);
	if (ru.ru_maxrss - before_kb > 16 * 1024)
		fail_msg("peak RSS grew by %ld kB delivering %zu MB", ru.ru_maxrss - before_kb,
			total_mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliver_byte_exact, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mixed_replies_defer_and_retry, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_early_bounce_failure_postponed, fx_setup,
			fx_teardown),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_requeue_due, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lifetime_expiry_bounces, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_lifetime_not_expired_defers, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_bounce_content_full, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bounce_marker, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bounce_ret_hdrs_system_mail_from, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_bounce_several_failed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_bounce_for_bounce, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_bounce_for_null_sender, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_bounce_for_notification, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_bounce_notify_never, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_bounce_external_sender, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_bounce_external_sender_policy_any, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_connection_refused_deferred, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_greeting_421_deferred, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_next_hop_down_then_back, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_tls_mandatory_no_starttls_deferred, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_starttls_and_auth_to_relay, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_route_internal_external, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_route_mx_preference, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_route_null_mx_bounces, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_route_mx_self_loop_deferred, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_large_message_streams, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reuse_two_messages_one_connection, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_reuse_dropped_connection_not_deferred,
			fx_setup, fx_teardown),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	sg_log_init("test_delivery_queue", SG_LOGDEST_STDERR, SG_LOG_WARN);
	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
