/* test_mpa_policy.c - the pipeline with the policy engine (F-POL-3..9,
 * F-FLOW-1, D-4): per-recipient decisions from the store, groups, the
 * trigger edits (subject, header), fail closed when encryption is required
 * but impossible or its module is absent (nothing to the recipient, the
 * encryption-failed notification to an internal originator only), database
 * errors temporary, other policy errors to error/, and crash safety with
 * several outputs. SQLite store in a temp dir; properties set through the
 * policy API; certificates generated with tests/unit/pki's helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "mpa_test.h"
#include "mime/mime.h"
#include "mta/mta.h"
#include "pki/pki.h"
#include "policy/policy.h"
#include "../pki/pki_test.h"

#define SECRET "SECRET-BODY-TEXT-4711"
#define MAXOUT 8

struct fixture {
	char *dir;
	char *url;
	struct spool *sp;
	struct store *db;
	struct policy *pol;
};

static int setup(void **state)
{
	struct fixture *f = sg_xcalloc(1, sizeof(*f));
	struct sg_error err;

	f->dir = mt_tmpdir();
	f->sp = spool_open(f->dir, &err);
	assert_non_null(f->sp);
	f->url = sg_xasprintf("sqlite:%s/sealgate.db", f->dir);
	f->db = store_open(f->url, &err);
	assert_non_null(f->db);
	assert_int_equal(store_migrate(f->db, &err), 0);
	/* internal originators (D-4) are those of the relay domains */
	assert_int_equal(mta_setting_set(f->db, "relay_domains", "example.com", &err), 0);
	f->pol = policy_new(f->db, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	spool_test_fail_after(0, 0);
	policy_free(&f->pol);
	store_close(&f->db);
	spool_close(&f->sp);
	mt_rm_rf(f->dir);
	free(f->dir);
	free(f->url);
	free(f);
	return 0;
}

/* set - one NAME=VALUE on a user, domain ("x") or global (name NULL) */
static void set(struct fixture *f, enum policy_kind kind, const char *name,
	const char *prop, const char *value)
{
	struct policy_change ch = {prop, value};
	struct sg_error err;

	if (policy_object_apply(f->pol, kind, name, &ch, 1, &err) < 0)
		fail_msg("set %s=%s: %s", prop, value, err.msg);
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

/* collect - every message in dir's outgoing/ (envelope and body) */
static void collect(const char *dir, struct spool *sp, struct outs *o)
{
	char path[4096];
	struct dirent *de;
	struct sg_error err;
	DIR *d;

	memset(o, 0, sizeof(*o));
	snprintf(path, sizeof(path), "%s/outgoing", dir);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		struct out *x;

		if (de->d_name[0] == '.')
			continue;
		assert_true(o->n < MAXOUT);
		x = &o->v[o->n++];
		sg_strlcpy(x->id, de->d_name, sizeof(x->id));
		if (spool_env_read(sp, SPOOL_Q_OUTGOING, x->id, &x->env, NULL, &err) < 0)
			fail_msg("env %s: %s", x->id, err.msg);
		x->body = mt_body(sp, SPOOL_Q_OUTGOING, x->id, &x->len);
		assert_non_null(x->body);
	}
	closedir(d);
}

/* find_to - the output whose first envelope recipient is addr, or NULL */
static const struct out *find_to(const struct outs *o, const char *addr)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].env.nrcpts > 0 && strcmp(o->v[i].env.rcpts[0].addr, addr) == 0)
			return &o->v[i];
	return NULL;
}

/* find_with - the output whose first envelope recipient is addr and whose
 * body contains text, or NULL */
static const struct out *find_with(const struct outs *o, const char *addr, const char *text)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].env.nrcpts > 0 && strcmp(o->v[i].env.rcpts[0].addr, addr) == 0 &&
		    strstr(o->v[i].body, text) != NULL)
			return &o->v[i];
	return NULL;
}

/* has_rcpt - addr is one of out's envelope recipients */
static bool has_rcpt(const struct out *x, const char *addr)
{
	size_t i;

	for (i = 0; i < x->env.nrcpts; i++)
		if (strcmp(x->env.rcpts[i].addr, addr) == 0)
			return true;
	return false;
}

/* run - put msg from sender to rcpts (NULL-terminated) into incoming/ and
 * process it with a fresh pipeline on the fixture's database; returns
 * mpa_process_spooled's result, err filled; *log_r the log (caller frees). */
static int run(struct fixture *f, const char *sender, const char *const *rcpts,
	const char *msg, char *id, char **log_r, struct sg_error *err)
{
	struct mpa_conf conf = {.cfg = NULL, .db = f->db, .max_size = 0};
	struct spool_env env;
	struct mpa *mpa;
	struct mt_log log;
	size_t i;
	int rc;

	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup(sender);
	env.arrival = 1700000000;
	for (i = 0; rcpts[i] != NULL; i++)
		spool_env_add_rcpt(&env, rcpts[i], NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
	spool_env_free_fields(&env);
	mpa = mpa_new(&conf, err);
	assert_non_null(mpa);
	mt_log_start(&log);
	rc = mpa_process_spooled(mpa, f->sp, id, err);
	*log_r = mt_log_stop(&log);
	mpa_free(&mpa);
	return rc;
}

/* The factory policy (allow/allow, no certificates, triggers off) passes
 * everything byte for byte in one output, even text that would be a trigger
 * if triggers were enabled or allowed. */
static void test_default_policy_byte_identical(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: Alice <alice@example.com>\nTo: bob@partner.net\n"
		"Subject: Hello [encrypt]\nX-Sealgate-Encrypt: yes\n\n" SECRET "\n";
	const char *rcpts[] = {"bob@partner.net", "carol@example.com", "dave@plain.org",
		NULL};
	char id[SG_MAIL_ID_LEN + 1], *log;
	struct sg_error err;
	struct outs o;

	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.v[0].env.nrcpts, 3);
	assert_int_equal(o.v[0].env.kind, SPOOL_KIND_MESSAGE);
	assert_int_equal(o.v[0].len, strlen(msg));
	assert_memory_equal(o.v[0].body, msg, o.v[0].len);
	assert_non_null(strstr(log, "action=pass, outputs=1"));
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	outs_free(&o);
	free(log);
}

/* check_notification - x is the encryption-failed notification about id to
 * to, naming subject and failed recipient, never the content */
static void check_notification(const struct out *x, const char *id, const char *to,
	const char *subject, const char *failed, const char *reason)
{
	assert_non_null(x);
	assert_int_equal(x->env.kind, SPOOL_KIND_NOTIFICATION);
	assert_string_equal(x->env.sender, "");
	assert_int_equal(x->env.nrcpts, 1);
	assert_string_equal(x->env.rcpts[0].addr, to);
	assert_string_equal(x->env.parent_id, id);
	assert_non_null(strstr(x->body, "Subject: Message not sent: encryption failed"));
	assert_non_null(strstr(x->body, "Auto-Submitted: auto-generated"));
	if (strstr(x->body, subject) == NULL)
		fail_msg("subject '%s' missing in:\n%s", subject, x->body);
	assert_non_null(strstr(x->body, failed));
	if (strstr(x->body, reason) == NULL)
		fail_msg("reason '%s' missing in:\n%s", reason, x->body);
	assert_non_null(strstr(x->body, id));
	assert_null(strstr(x->body, SECRET));
}

/* F-POL-7 + F-POL-6: the subject trigger makes encryption required for the
 * external recipient, who has no certificate: nothing for them, the internal
 * originator gets the encryption-failed notification; the internal
 * recipient (never encrypted) gets the message with the trigger removed
 * from the subject (F-FLOW-8) and everything else intact. */
static void test_subject_trigger_no_cert(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: Alice <alice@example.com>\nTo: bob@partner.net\n"
		"Subject: Contract [encrypt] draft\nMessage-ID: <m1@example.com>\n\n"
		SECRET "\n";
	const char *rcpts[] = {"bob@partner.net", "carol@example.com", NULL};
	char id[SG_MAIL_ID_LEN + 1], *log;
	const struct out *x;
	struct sg_error err;
	struct outs o;

	set(f, POLICY_KIND_GLOBAL, NULL, "subject_trigger_enabled", "true");
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 2);
	x = find_to(&o, "carol@example.com");
	assert_non_null(x);
	assert_int_equal(x->env.nrcpts, 1);
	assert_int_equal(x->env.kind, SPOOL_KIND_MESSAGE);
	assert_string_equal(x->env.sender, "alice@example.com");
	assert_non_null(strstr(x->body, "Subject: Contract draft\n"));
	assert_null(strstr(x->body, "[encrypt]"));
	assert_non_null(strstr(x->body, "Message-ID: <m1@example.com>\n"));
	assert_non_null(strstr(x->body, "\n\n" SECRET "\n"));
	check_notification(find_to(&o, "alice@example.com"), id, "alice@example.com",
		"Contract [encrypt] draft", "bob@partner.net", "no valid certificate");
	/* nothing went to bob in any form */
	assert_null(find_to(&o, "bob@partner.net"));
	assert_false(has_rcpt(x, "bob@partner.net"));
	assert_non_null(strstr(log, "encrypt-failed"));
	assert_non_null(strstr(log, "outputs=2"));
	outs_free(&o);
	free(log);
}

/* F-POL-6 mandatory: the recipient domain requires encryption, no
 * certificate -> nothing for it; the other recipients (allow, internal) get
 * the message byte-identical (no trigger: nothing to edit). Then a
 * mandatory originator to a no_encryption recipient: blocked, nothing
 * either. */
static void test_mandatory_no_cert(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: alice@example.com\nSubject: Offer\n\n" SECRET "\n";
	const char *msg2 = "From: boss@example.com\nSubject: Memo\n\n" SECRET "\n";
	const char *rcpts[] = {"bob@partner.net", "dave@plain.org", "carol@example.com",
		NULL};
	const char *rcpts2[] = {"eve@closed.org", "carol@example.com", NULL};
	char id[SG_MAIL_ID_LEN + 1], *log;
	const struct out *x;
	struct sg_error err;
	struct outs o;
	size_t i;

	set(f, POLICY_KIND_DOMAIN, "partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_DOMAIN, "closed.org", "encrypt_mode", "no_encryption");
	set(f, POLICY_KIND_USER, "boss@example.com", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 3);
	x = find_to(&o, "dave@plain.org");
	assert_non_null(x);
	assert_int_equal(x->env.nrcpts, 1);
	assert_int_equal(x->len, strlen(msg));
	assert_memory_equal(x->body, msg, x->len);
	x = find_to(&o, "carol@example.com");
	assert_non_null(x);
	assert_int_equal(x->len, strlen(msg));
	assert_memory_equal(x->body, msg, x->len);
	for (i = 0; i < o.n; i++)
		assert_false(has_rcpt(&o.v[i], "bob@partner.net"));
	check_notification(find_to(&o, "alice@example.com"), id, "alice@example.com", "Offer",
		"bob@partner.net", "no valid certificate");
	for (i = 0; i < o.n; i++)
		assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, o.v[i].id, &err), 0);
	outs_free(&o);
	free(log);

	assert_int_equal(run(f, "boss@example.com", rcpts2, msg2, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 2);
	x = find_to(&o, "carol@example.com");
	assert_non_null(x);
	assert_memory_equal(x->body, msg2, strlen(msg2));
	for (i = 0; i < o.n; i++)
		assert_false(has_rcpt(&o.v[i], "eve@closed.org"));
	check_notification(find_to(&o, "boss@example.com"), id, "boss@example.com", "Memo",
		"eve@closed.org", "does not allow it");
	outs_free(&o);
	free(log);
}

/* F-POL-8: an allowed originator's force-encrypt header fires (the external
 * recipient fails closed) and is removed from every output; with a value
 * regex that does not match it does not fire but is still removed; an
 * originator not allowed to use it: no effect, the header stays. */
static void test_header_trigger(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: alice@example.com\nSubject: Plans\n"
		"X-Sealgate-Encrypt: yes\nX-Other: kept\n\n" SECRET "\n";
	const char *msg_no = "From: alice@example.com\nSubject: Plans\n"
		"X-Secure: no\nX-Other: kept\n\n" SECRET "\n";
	const char *rcpts[] = {"bob@partner.net", "carol@example.com", NULL};
	char id[SG_MAIL_ID_LEN + 1], *log;
	const struct out *x;
	struct sg_error err;
	struct outs o;
	size_t i;

	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	/* not allowed (factory): the header is ordinary content */
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 2);   /* external plain + internal, both unchanged */
	for (i = 0; i < o.n; i++) {
		assert_int_equal(o.v[i].len, strlen(msg));
		assert_memory_equal(o.v[i].body, msg, o.v[i].len);
		assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, o.v[i].id, &err), 0);
	}
	outs_free(&o);
	free(log);

	/* allowed: fires, removed */
	set(f, POLICY_KIND_USER, "alice@example.com", "force_encrypt_allowed", "true");
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 2);
	x = find_to(&o, "carol@example.com");
	assert_non_null(x);
	assert_null(strstr(x->body, "X-Sealgate-Encrypt"));
	assert_non_null(strstr(x->body, "X-Other: kept\n"));
	assert_non_null(strstr(x->body, "Subject: Plans\n"));
	assert_non_null(strstr(x->body, SECRET));
	check_notification(find_to(&o, "alice@example.com"), id, "alice@example.com", "Plans",
		"bob@partner.net", "encryption is required");
	for (i = 0; i < o.n; i++)
		assert_int_equal(spool_delete(f->sp, SPOOL_Q_OUTGOING, o.v[i].id, &err), 0);
	outs_free(&o);
	free(log);

	/* a value regex that does not match: no trigger, the header still goes */
	set(f, POLICY_KIND_USER, "alice@example.com", "force_encrypt_trigger", "X-Secure:^yes$");
	assert_int_equal(run(f, "alice@example.com", rcpts, msg_no, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 2);
	for (i = 0; i < o.n; i++) {
		assert_int_equal(o.v[i].env.kind, SPOOL_KIND_MESSAGE);
		assert_null(strstr(o.v[i].body, "X-Secure"));
		assert_non_null(strstr(o.v[i].body, "X-Other: kept\n"));
		assert_non_null(strstr(o.v[i].body, SECRET));
	}
	assert_non_null(find_to(&o, "bob@partner.net"));
	assert_non_null(strstr(log, "action=pass, outputs=2"));
	outs_free(&o);
	free(log);
}

/* A recipient with a valid encryption certificate gets method S/MIME: the
 * group's output is S/MIME encrypted (never plain text), while a recipient
 * without a certificate still gets the message in the clear (allow/allow).
 * The certificate may also come from a manual selection up the recipient's
 * owner chain (here: the wildcard domain *.tunnel.org for
 * gw@sub.tunnel.org). Mandatory without a certificate (zed) fails closed
 * with the notification naming only zed. (The S/MIME output itself is
 * checked in test_mpa_smime.) */
static void test_smime_with_cert_encrypted(void **state)
{
	struct fixture *f = *state;
	/* all named in To: bob and the tunnel share one output (a recipient
	 * only in the envelope would get a copy of its own: test_mpa_smime) */
	const char *msg = "From: alice@example.com\nTo: bob@partner.net, dave@plain.org, "
		"zed@secure.org, gw@sub.tunnel.org\nSubject: Quote\n\n" SECRET "\n";
	const char *rcpts[] = {"bob@partner.net", "dave@plain.org", "zed@secure.org",
		"gw@sub.tunnel.org", NULL};
	const struct out *x;
	struct tcert *root = tcert_make(&(struct tspec){.cn = "MPA Root", .ca = true});
	struct tcert *leaf = tcert_make(&(struct tspec){.cn = "Bob", .issuer = root,
		.san = "email:bob@partner.net", .nb_days = -1});
	struct tcert *tunnel = tcert_make(&(struct tspec){.cn = "Tunnel", .issuer = root,
		.nb_days = -1});
	char id[SG_MAIL_ID_LEN + 1], *log;
	struct pki *pki;
	struct pki_cert *c;
	const struct tcert *add[] = {root, leaf, tunnel};
	const struct pki_owner wild = {PKI_OWNER_DOMAIN, "*.tunnel.org"};
	struct sg_error err;
	struct outs o;
	size_t i;

	pki = pki_open(f->db, &err);
	assert_non_null(pki);
	for (i = 0; i < 3; i++) {
		size_t len;
		unsigned char *der = tcert_der(add[i], &len);

		c = pki_cert_from_der(der, len, &err);
		assert_non_null(c);
		assert_int_equal(pki_cert_add(pki, c, i == 0 ? PKI_ADD_ROOT : 0, &err), 1);
		pki_cert_free(&c);
		free(der);
	}
	assert_int_equal(pki_select_add(pki, &wild, PKI_SEL_ENCRYPT, tunnel->thumb, &err), 1);
	pki_close(&pki);
	/* the wildcard must exist as a policy object to be in the chain */
	set(f, POLICY_KIND_DOMAIN, "*.tunnel.org", "smime_allowed", "true");
	set(f, POLICY_KIND_DOMAIN, "secure.org", "encrypt_mode", "mandatory");
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 3);
	assert_non_null(find_to(&o, "dave@plain.org"));
	assert_int_equal(find_to(&o, "dave@plain.org")->env.nrcpts, 1);
	assert_memory_equal(find_to(&o, "dave@plain.org")->body, msg, strlen(msg));
	for (i = 0; i < o.n; i++)
		assert_false(has_rcpt(&o.v[i], "zed@secure.org"));
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_true(has_rcpt(x, "gw@sub.tunnel.org"));
	assert_non_null(strstr(x->body, "application/pkcs7-mime"));
	assert_null(strstr(x->body, SECRET));
	x = find_with(&o, "alice@example.com", "no valid certificate");
	check_notification(x, id, "alice@example.com", "Quote", "zed@secure.org",
		"no valid certificate");
	assert_null(strstr(x->body, "bob@partner.net"));
	assert_null(strstr(x->body, "gw@sub.tunnel.org"));
	assert_non_null(strstr(log, "encrypt-failed"));
	outs_free(&o);
	free(log);
	tcert_free(&tunnel);
	tcert_free(&leaf);
	tcert_free(&root);
}

/* D-4: an external originator never gets a notification (no backscatter);
 * the message is still processed (out of incoming/, not in error/). */
static void test_external_originator_no_notification(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: mallory@other.net\nSubject: Hi\n\n" SECRET "\n";
	const char *rcpts[] = {"bob@partner.net", NULL};
	char id[SG_MAIL_ID_LEN + 1], *log;
	struct sg_error err;

	set(f, POLICY_KIND_DOMAIN, "partner.net", "encrypt_mode", "mandatory");
	assert_int_equal(run(f, "mallory@other.net", rcpts, msg, id, &log, &err), 0);
	assert_int_equal(mt_count(f->dir, "outgoing"), 0);
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	assert_non_null(strstr(log, "originator not internal"));
	assert_non_null(strstr(log, "action=encrypt-failed, outputs=0"));
	free(log);
}

/* The database fails during the decision: temporary, the input stays in
 * incoming/ and nothing of the attempt is left (never sent undecided). */
static void test_database_error_temporary(void **state)
{
	struct fixture *f = *state;
	static const char *const tables[] = {"policy_generation", "pki_cert_email"};
	const char *msg = "From: alice@example.com\nSubject: x\n\nbody\n";
	const char *rcpts[] = {"bob@partner.net", NULL};
	char id[SG_MAIL_ID_LEN + 1], *log, *sql;
	struct sg_error err;
	size_t t;

	for (t = 0; t < 2; t++) {
		sql = sg_xasprintf("DROP TABLE %s", tables[t]);
		assert_int_equal(store_exec(f->db, sql, &err), 0);
		free(sql);
		assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), -1);
		if (sg_errc_class(err.code) != SG_EC_TEMPORARY)
			fail_msg("%s dropped: %s (%s) is not temporary", tables[t], err.msg,
				sg_errc_name(err.code));
		assert_int_equal(mt_count(f->dir, "incoming"), 1);
		assert_int_equal(mt_count(f->dir, "outgoing"), 0);
		assert_int_equal(mt_count(f->dir, "error"), 0);
		assert_int_equal(mt_count(f->dir, "tmp"), 0);
		assert_int_equal(mt_count(f->dir, "batch"), 0);
		assert_int_equal(spool_delete(f->sp, SPOOL_Q_INCOMING, id, &err), 0);
		free(log);
		if (t == 0) {
			/* back, so that the next failure is the certificate lookup's */
			assert_int_equal(store_exec(f->db, "CREATE TABLE policy_generation "
				"(id INTEGER PRIMARY KEY, gen INTEGER NOT NULL)", &err), 0);
			assert_int_equal(store_exec(f->db, "INSERT INTO policy_generation "
				"VALUES (1, 0)", &err), 0);
		}
	}
}

/* A policy error that is not the database's (a recipient the policy cannot
 * read as an address) fails closed permanently: error/, nothing sent. */
static void test_policy_error_to_error_queue(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: alice@example.com\nSubject: x\n\nbody\n";
	const char *rcpts[] = {"bob@partner.net", "root@localhost", NULL};
	char id[SG_MAIL_ID_LEN + 1], *log;
	struct sg_error err;

	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	assert_int_equal(mt_count(f->dir, "outgoing"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 1);
	assert_non_null(strstr(log, "moved to error queue: policy: "));
	free(log);
}

/* A message whose MIME structure was too big to parse (mime_msg_is_opaque)
 * cannot be rebuilt without the trigger: it must not leave with it either,
 * so it goes to error/ (fail closed); without a trigger it passes
 * byte-identical as before. */
static void test_opaque_message_with_trigger(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"carol@example.com", NULL};
	struct sg_buf b;
	char id[SG_MAIL_ID_LEN + 1], *log, *msg;
	struct sg_error err;
	struct outs o;
	int i;

	set(f, POLICY_KIND_GLOBAL, NULL, "subject_trigger_enabled", "true");
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	sg_buf_init(&b, 1u << 20);
	assert_int_equal(sg_buf_append_str(&b, "From: alice@example.com\n"
		"Subject: Big [encrypt]\nContent-Type: multipart/mixed; boundary=x\n\n",
		&err), 0);
	for (i = 0; i < MIME_MAX_BOUNDARY_LINES + 10; i++)
		assert_int_equal(sg_buf_append_str(&b, "--x\n\n", &err), 0);
	msg = sg_buf_steal(&b);
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	assert_int_equal(mt_count(f->dir, "outgoing"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 1);
	assert_non_null(strstr(log, "too many MIME parts"));
	free(log);
	/* no trigger: byte-identical */
	memcpy(strstr(msg, "[encrypt]"), "(crypt)..", 9);
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.v[0].len, strlen(msg));
	assert_memory_equal(o.v[0].body, msg, o.v[0].len);
	outs_free(&o);
	free(log);
	free(msg);
}

/* More recipients than one policy_decide call takes (POLICY_RCPT_MAX): the
 * decisions are made in chunks and still line up with the envelope - the
 * one mandatory recipient, in the second chunk, is the only one left out. */
static void test_many_recipients_chunked(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: alice@example.com\nSubject: All hands\n\n" SECRET "\n";
	size_t n = POLICY_RCPT_MAX + 2, i, k;
	const char **rcpts = sg_xcalloc(n + 1, sizeof(*rcpts));
	char **addrs = sg_xcalloc(n, sizeof(*addrs));
	char id[SG_MAIL_ID_LEN + 1], *log;
	const struct out *x;
	struct sg_error err;
	struct outs o;

	set(f, POLICY_KIND_USER, "u10000@partner.net", "encrypt_mode", "mandatory");
	for (i = 0; i < n; i++) {
		addrs[i] = sg_xasprintf("u%zu@partner.net", i);
		rcpts[i] = addrs[i];
	}
	assert_int_equal(run(f, "alice@example.com", rcpts, msg, id, &log, &err), 0);
	collect(f->dir, f->sp, &o);
	assert_int_equal(o.n, 2);
	x = find_to(&o, "u0@partner.net");
	assert_non_null(x);
	assert_int_equal(x->env.nrcpts, n - 1);
	for (i = 0, k = 0; i < n; i++) {
		if (i == POLICY_RCPT_MAX)
			continue;
		assert_string_equal(x->env.rcpts[k++].addr, addrs[i]);
	}
	assert_false(has_rcpt(x, "u10000@partner.net"));
	assert_memory_equal(x->body, msg, strlen(msg));
	check_notification(find_to(&o, "alice@example.com"), id, "alice@example.com",
		"All hands", "u10000@partner.net", "no valid certificate");
	outs_free(&o);
	free(log);
	for (i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
	free(rcpts);
}

/* kill -9 at every I/O step of a batch with two outputs (the edited message
 * and the notification), then restart: exactly those two outputs, the input
 * gone, no debris - never only one of them, never twice. */
static void test_crash_with_policy_outputs(void **state)
{
	struct fixture *f = *state;
	const char *msg = "From: alice@example.com\nSubject: Deal [encrypt]\n\n"
		SECRET "\n";
	unsigned n, crashes = 0;
	bool finished = false;

	set(f, POLICY_KIND_GLOBAL, NULL, "subject_trigger_enabled", "true");
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	for (n = 1; n < 100 && !finished; n++) {
		struct spool *sp;
		struct spool_env env;
		struct sg_error err;
		struct outs o;
		char *dir = mt_tmpdir();
		char id[SG_MAIL_ID_LEN + 1];
		pid_t pid;
		int st;

		sp = spool_open(dir, &err);
		assert_non_null(sp);
		memset(&env, 0, sizeof(env));
		env.sender = sg_xstrdup("alice@example.com");
		spool_env_add_rcpt(&env, "bob@partner.net", NULL, 0);
		spool_env_add_rcpt(&env, "carol@example.com", NULL, 0);
		assert_int_equal(mt_put(sp, &env, msg, strlen(msg), id), 0);
		spool_env_free_fields(&env);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* the child has its own connection (SQLite across fork: no) */
			struct store *db = store_open(f->url, &err);
			struct mpa_conf conf = {.cfg = NULL, .db = db, .max_size = 0};
			struct mpa *mpa = mpa_new(&conf, &err);

			spool_test_fail_after(n, SPOOL_TEST_CRASH);
			_exit(mpa != NULL && mpa_process_spooled(mpa, sp, id, &err) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st) == 0) {
			finished = true;
		} else {
			struct mpa_conf conf = {.cfg = NULL, .db = f->db, .max_size = 0};
			struct mpa *mpa = mpa_new(&conf, &err);

			assert_int_equal(WEXITSTATUS(st), SPOOL_TEST_CRASH_STATUS);
			crashes++;
			assert_int_equal(spool_recover(sp, &err), 0);
			if (mt_count(dir, "incoming") == 1)
				assert_int_equal(mpa_process_spooled(mpa, sp, id, &err), 0);
			mpa_free(&mpa);
		}
		assert_int_equal(mt_count(dir, "incoming"), 0);
		assert_int_equal(mt_count(dir, "error"), 0);
		assert_int_equal(mt_count(dir, "tmp"), 0);
		assert_int_equal(mt_count(dir, "batch"), 0);
		collect(dir, sp, &o);
		assert_int_equal(o.n, 2);
		assert_non_null(find_to(&o, "carol@example.com"));
		assert_non_null(strstr(find_to(&o, "carol@example.com")->body,
			"Subject: Deal\n"));
		assert_non_null(find_to(&o, "alice@example.com"));
		assert_int_equal(find_to(&o, "alice@example.com")->env.kind,
			SPOOL_KIND_NOTIFICATION);
		outs_free(&o);
		spool_close(&sp);
		mt_rm_rf(dir);
		free(dir);
	}
	assert_true(finished);
	assert_true(crashes > 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_policy_byte_identical, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_subject_trigger_no_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mandatory_no_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_trigger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smime_with_cert_encrypted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_external_originator_no_notification, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_database_error_temporary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_error_to_error_queue, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_opaque_message_with_trigger, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_many_recipients_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_with_policy_outputs, setup, teardown),
	};

	sg_log_init("test_mpa_policy", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
