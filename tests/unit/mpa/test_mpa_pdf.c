/* test_mpa_pdf.c - the PDF method of the pipeline (F-PDF-1..5, D-2,
 * F-SMS-3): a recipient without a certificate whose encryption is required
 * gets a carrier mail from the route's template with an encrypted PDF that
 * poppler's pdftotext opens with the right password (and not without or
 * with a wrong one) and qpdf checks; password routes static, generated +
 * passwords notification to the originator (reuse while valid), SMS (stored
 * number, number in the subject, refused for several recipients), OTP with
 * the portal (the password is pdf_otp_derive of the client secret and the
 * password ID, the secret created when missing); the reply link verifies;
 * pdf_max_size exceeded fails closed with the notification while other
 * recipients are unaffected; no route -> plain when only allowed, nothing
 * when required. SQLite store in a temp dir; peers: pdftotext, qpdf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/wait.h>

#include <openssl/pem.h>

#include "mpa_test.h"
#include "mime/mime.h"
#include "mta/mta.h"
#include "pdf/pdf.h"
#include "pki/pki.h"
#include "pki/pki_key.h"
#include "policy/policy.h"
#include "sms/sms.h"
#include "../pki/pki_test.h"

#define MAXOUT 8
#define SECRET "test-server-secret-0123456789"

struct fixture {
	char *dir;
	char *url;
	struct spool *sp;
	struct store *db;
	struct policy *pol;
	struct sg_config *cfg;
};

/* fpath - dir/name (static buffer, one at a time per slot) */
static const char *fpath(const struct fixture *f, const char *name)
{
	static char buf[4][4096];
	static int slot;

	slot = (slot + 1) % 4;
	snprintf(buf[slot], sizeof(buf[0]), "%s/%s", f->dir, name);
	return buf[slot];
}

static char *read_file(const char *path, size_t *len_r)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = sg_xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len_r = (size_t)n;
	return buf;
}

/* sh - run a shell command (output to dir/sh.log); its exit code */
static int sh(const struct fixture *f, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd) - 200);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " >>%s/sh.log 2>&1", f->dir);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void set(struct fixture *f, enum policy_kind kind, const char *name,
	const char *prop, const char *value)
{
	struct policy_change ch = {prop, value};
	struct sg_error err;

	if (policy_object_apply(f->pol, kind, name, &ch, 1, &err) < 0)
		fail_msg("set %s=%s: %s", prop, value != NULL ? value : "(unset)", err.msg);
}

/* prop - bob's (or any user's) resolved value of prop (caller frees; NULL
 * when unset) */
static char *prop(struct fixture *f, const char *user, const char *name)
{
	struct policy_props *pp = NULL;
	enum policy_prop_id id;
	struct sg_error err;
	const char *v;
	char *r;

	assert_int_equal(policy_prop_find(name, &id), 1);
	if (policy_resolve_user(f->pol, user, &pp, &err) < 0)
		fail_msg("resolve %s: %s", user, err.msg);
	v = policy_props_get(pp, id, NULL);
	r = v != NULL ? sg_xstrdup(v) : NULL;
	policy_props_free(&pp);
	return r;
}

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
	assert_int_equal(mta_setting_set(f->db, "relay_domains", "example.com", &err), 0);
	f->pol = policy_new(f->db, NULL);
	f->cfg = sg_config_defaults();
	free(f->cfg->data_dir);
	f->cfg->data_dir = sg_xstrdup(f->dir);
	set(f, POLICY_KIND_GLOBAL, NULL, "server_secret", SECRET);
	set(f, POLICY_KIND_DOMAIN, "example.com", "locality", "internal");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sg_config_free(&f->cfg);
	policy_free(&f->pol);
	store_close(&f->db);
	spool_close(&f->sp);
	mt_rm_rf(f->dir);
	free(f->dir);
	free(f->url);
	free(f);
	return 0;
}

struct out {
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

static void clear_dir(struct fixture *f, const char *sub)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(fpath(f, sub));

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", f->dir, sub, de->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
}

static void collect(struct fixture *f, struct outs *o)
{
	struct dirent *de;
	struct sg_error err;
	DIR *d;

	memset(o, 0, sizeof(*o));
	d = opendir(fpath(f, "outgoing"));
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		struct out *x;

		if (de->d_name[0] == '.')
			continue;
		assert_true(o->n < MAXOUT);
		x = &o->v[o->n++];
		if (spool_env_read(f->sp, SPOOL_Q_OUTGOING, de->d_name, &x->env, NULL, &err) < 0)
			fail_msg("env %s: %s", de->d_name, err.msg);
		x->body = mt_body(f->sp, SPOOL_Q_OUTGOING, de->d_name, &x->len);
		assert_non_null(x->body);
	}
	closedir(d);
}

/* find_to - the output whose first envelope recipient is addr */
static const struct out *find_to(const struct outs *o, const char *addr)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].env.nrcpts > 0 && strcmp(o->v[i].env.rcpts[0].addr, addr) == 0)
			return &o->v[i];
	return NULL;
}

/* run - msg from sender to rcpts (NULL-terminated) through a fresh
 * pipeline; outputs into o; the log into *log_r (caller frees) */
static void run(struct fixture *f, const char *sender, const char *const *rcpts,
	const char *msg, struct outs *o, char **log_r)
{
	struct mpa_conf conf = {.cfg = f->cfg, .db = f->db, .max_size = 0};
	struct spool_env env;
	struct sg_error err;
	struct mpa *mpa;
	struct mt_log log;
	char id[SG_MAIL_ID_LEN + 1];
	size_t i;
	int rc;

	clear_dir(f, "outgoing");
	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup(sender);
	env.arrival = 1700000000;
	for (i = 0; rcpts[i] != NULL; i++)
		spool_env_add_rcpt(&env, rcpts[i], NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, msg, strlen(msg), id), 0);
	spool_env_free_fields(&env);
	mpa = mpa_new(&conf, &err);
	assert_non_null(mpa);
	mt_log_start(&log);
	rc = mpa_process_spooled(mpa, f->sp, id, &err);
	*log_r = mt_log_stop(&log);
	mpa_free(&mpa);
	if (rc != 0)
		fail_msg("process: %s\n%s", err.msg, *log_r);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	collect(f, o);
	/* the work directory keeps nothing behind (-1: never made) */
	assert_true(mt_count(f->dir, "pdf") <= 0);
}

/* pdf_of - the application/pdf attachment of x decoded into dir/<name>;
 * returns the number of PDF parts found */
static int pdf_of(struct fixture *f, const struct out *x, const char *name)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(x->body, x->len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
	GMimePartIter *it;
	int found = 0;

	assert_non_null(m);
	it = g_mime_part_iter_new((GMimeObject *)m);
	do {
		GMimeObject *o = g_mime_part_iter_get_current(it);
		GMimeContentType *ct;

		if (o == NULL || !GMIME_IS_PART(o))
			continue;
		ct = g_mime_object_get_content_type(o);
		if (g_mime_content_type_is_type(ct, "application", "pdf")) {
			GMimeDataWrapper *w = g_mime_part_get_content((GMimePart *)o);
			FILE *fp = fopen(fpath(f, name), "wb");
			GMimeStream *fs;

			assert_non_null(fp);
			fs = g_mime_stream_file_new(fp);
			assert_true(g_mime_data_wrapper_write_to_stream(w, fs) > 0);
			g_mime_stream_flush(fs);
			g_object_unref(fs);
			found++;
		}
	} while (g_mime_part_iter_next(it));
	g_mime_part_iter_free(it);
	g_object_unref(m);
	g_object_unref(p);
	g_object_unref(st);
	return found;
}

/* pdf_text - pdftotext -upw pw of dir/name into a string (caller frees);
 * NULL when pdftotext fails (wrong or missing password) */
static char *pdf_text(struct fixture *f, const char *name, const char *pw)
{
	size_t len;
	int rc;

	(void)unlink(fpath(f, "text.txt"));
	if (pw != NULL)
		rc = sh(f, "pdftotext -enc UTF-8 -upw '%s' %s %s", pw, fpath(f, name),
			fpath(f, "text.txt"));
	else
		rc = sh(f, "pdftotext -enc UTF-8 %s %s", fpath(f, name), fpath(f, "text.txt"));
	if (rc != 0)
		return NULL;
	return read_file(fpath(f, "text.txt"), &len);
}

/* pdf_opens_only_with - pdftotext shows want with pw, fails without a
 * password and with a wrong one; qpdf --check passes */
static void pdf_opens_only_with(struct fixture *f, const char *name, const char *pw,
	const char *want)
{
	char *t = pdf_text(f, name, pw);

	if (t == NULL)
		fail_msg("pdftotext with the password failed");
	if (strstr(t, want) == NULL)
		fail_msg("PDF text lacks '%s':\n%s", want, t);
	free(t);
	assert_null(pdf_text(f, name, NULL));
	assert_null(pdf_text(f, name, "WRONG-PASSWORD-1"));
	assert_int_equal(sh(f, "qpdf --check --password='%s' %s", pw, fpath(f, name)), 0);
}

/* between - the text after prefix up to the first of stop (static buffer) */
static const char *between(const char *s, const char *prefix, const char *stop)
{
	static char buf[256];
	const char *p = strstr(s, prefix);
	size_t n;

	if (p == NULL)
		return NULL;
	p += strlen(prefix);
	n = strcspn(p, stop);
	assert_true(n < sizeof(buf));
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

#define MSG(subject) \
	"From: Alice <alice@example.com>\nTo: bob@partner.net\n" \
	"Subject: " subject "\nMessage-ID: <m1@example.com>\nMIME-Version: 1.0\n" \
	"Content-Type: multipart/mixed; boundary=\"b1\"\n" \
	"\n--b1\nContent-Type: text/plain; charset=utf-8\n\n" \
	"Hello Bob, the code is SECRET-4711.\n" \
	"\n--b1\nContent-Type: application/octet-stream\n" \
	"Content-Disposition: attachment; filename=\"data.bin\"\n" \
	"Content-Transfer-Encoding: base64\n\nAAECAwQFBgcICQ==\n--b1--\n"

/* F-PDF-1/2 static password: a mandatory recipient without a certificate
 * gets the encrypted_pdf carrier (from the original sender, nothing of the
 * content in clear) whose PDF opens only with the password and shows the
 * headers and body; the reply link in it verifies with the server secret. */
static void test_static_password(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log, *qdf, *rcpt = NULL, *sender = NULL;
	const char *uri;
	size_t len;

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "password", "Static-Pass-42");
	run(f, "alice@example.com", rcpts, MSG("Offer"), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_string_equal(x->env.sender, "alice@example.com");
	assert_int_equal(x->env.nrcpts, 1);
	assert_null(strstr(x->body, "SECRET-4711"));
	assert_non_null(strstr(x->body, "Use the password you received earlier"));
	assert_non_null(strstr(x->body, "From: Alice <alice@example.com>\n"));
	assert_non_null(strstr(x->body, "\nAlice <alice@example.com> sent you an encrypted"));
	assert_non_null(strstr(x->body, "Subject: Offer"));
	assert_non_null(strstr(x->body, "To: bob@partner.net"));
	assert_non_null(strstr(x->body, "alice@example.com"));
	assert_int_equal(pdf_of(f, x, "static.pdf"), 1);
	pdf_opens_only_with(f, "static.pdf", "Static-Pass-42", "SECRET-4711");
	{
		char *t = pdf_text(f, "static.pdf", "Static-Pass-42");

		assert_non_null(t);
		assert_non_null(strstr(t, "Offer"));
		assert_non_null(strstr(t, "alice@example.com"));
		assert_non_null(strstr(t, "data.bin"));
		free(t);
	}
	assert_int_equal(sh(f, "pdfdetach -upw Static-Pass-42 -list %s | grep -q data.bin",
		fpath(f, "static.pdf")), 0);
	/* the reply link (pdf_reply_allowed is on by default) */
	assert_int_equal(sh(f, "qpdf --password=Static-Pass-42 --decrypt --qdf "
		"--object-streams=disable %s %s", fpath(f, "static.pdf"),
		fpath(f, "plain.pdf")), 0);
	qdf = read_file(fpath(f, "plain.pdf"), &len);
	assert_non_null(qdf);
	/* the file holds binary streams: search the bytes */
	uri = memmem(qdf, len, "/URI (", 6);
	assert_non_null(uri);
	uri = between(uri, "/URI (", ")");
	assert_non_null(uri);
	assert_int_equal(strncmp(uri, "https://localhost:8443/portal/reply?", 36), 0);
	assert_int_equal(pdf_reply_link_verify(uri, SECRET, sg_now(), &rcpt, &sender, NULL),
		PDF_REPLY_VALID);
	assert_string_equal(rcpt, "bob@partner.net");
	assert_string_equal(sender, "alice@example.com");
	assert_int_equal(pdf_reply_link_verify(uri, "other-secret", sg_now(), NULL, NULL,
		NULL), PDF_REPLY_TAMPERED);
	assert_non_null(strstr(log, "route=existing"));
	assert_null(strstr(log, "Static-Pass-42"));
	free(rcpt);
	free(sender);
	free(qdf);
	outs_free(&o);
	free(log);
}

/* D-2 send to originator: a generated password (stored on the recipient
 * with ID and date) goes to the internal originator in the passwords
 * notification; the PDF opens with it. validity 0: a new password (and ID)
 * for the next message; validity > 0: the stored one is reused (template
 * encrypted_pdf, no new notification). */
static void test_generated_to_originator(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x, *n;
	struct outs o;
	char *log, *pw1, *id1, *stored, *date;
	const char *p;

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "alice@example.com", "password_send_to_originator", "true");
	run(f, "alice@example.com", rcpts, MSG("Gen"), &o, &log);
	assert_int_equal(o.n, 2);
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	assert_string_equal(n->env.sender, "");
	assert_int_equal(n->env.kind, SPOOL_KIND_NOTIFICATION);
	assert_non_null(strstr(n->body, "Passwords for your encrypted message"));
	assert_non_null(strstr(n->body, "X-Sealgate-Marker:"));
	assert_null(strstr(n->body, "SECRET-4711"));
	p = between(n->body, "bob@partner.net: ", " \r\n");
	assert_non_null(p);
	pw1 = sg_xstrdup(p);
	assert_int_equal(strlen(pw1), 16);
	assert_int_equal(strspn(pw1, PDF_PASSWORD_ALPHABET), 16);
	p = between(n->body, "(ID ", ")");
	assert_non_null(p);
	id1 = sg_xstrdup(p);
	assert_int_equal(strlen(id1), PDF_PASSWORD_ID_LEN);
	stored = prop(f, "bob@partner.net", "password");
	assert_string_equal(stored, pw1);
	free(stored);
	stored = prop(f, "bob@partner.net", "password_id");
	assert_string_equal(stored, id1);
	free(stored);
	date = prop(f, "bob@partner.net", "password_date_set");
	assert_non_null(date);
	free(date);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, id1));
	assert_null(strstr(x->body, pw1));
	assert_int_equal(pdf_of(f, x, "gen.pdf"), 1);
	pdf_opens_only_with(f, "gen.pdf", pw1, "SECRET-4711");
	assert_null(strstr(log, pw1));
	outs_free(&o);
	free(log);

	/* validity 0 (factory): a new password and ID for the next message */
	run(f, "alice@example.com", rcpts, MSG("Gen 2"), &o, &log);
	assert_int_equal(o.n, 2);
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	p = between(n->body, "bob@partner.net: ", " \r\n");
	assert_non_null(p);
	assert_string_not_equal(p, pw1);
	p = between(n->body, "(ID ", ")");
	assert_string_not_equal(p, id1);
	outs_free(&o);
	free(log);

	/* validity 60 minutes: the stored password is reused, no notification */
	set(f, POLICY_KIND_USER, "bob@partner.net", "password_validity_minutes", "60");
	free(pw1);
	pw1 = prop(f, "bob@partner.net", "password");
	run(f, "alice@example.com", rcpts, MSG("Gen 3"), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "Use the password you received earlier"));
	assert_int_equal(pdf_of(f, x, "gen3.pdf"), 1);
	pdf_opens_only_with(f, "gen3.pdf", pw1, "SECRET-4711");
	assert_non_null(strstr(log, "route=existing"));
	outs_free(&o);
	free(log);
	free(pw1);
	free(id1);
}

/* sms_one - the only queued SMS (checked), its text and phone (caller
 * frees the text) */
static char *sms_one(struct fixture *f, char *phone, size_t phonesz)
{
	struct sms_list l = {0};
	struct sg_error err;
	char *text;

	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 1);
	sg_strlcpy(phone, l.v[0].phone, phonesz);
	text = sg_xstrdup(l.v[0].text);
	assert_int_equal(sms_delete(f->db, l.v[0].id, &err), 0);
	sms_list_deinit(&l);
	return text;
}

/* D-2 SMS route: a generated password is queued as an SMS to the stored
 * number (template sms_password), the carrier is encrypted_pdf_sms with the
 * masked number; the PDF opens with the SMS's password. */
static void test_sms_stored_number(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log, *text, phone[SMS_PHONE_MAX], *stored;
	const char *pw;

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "sms_phone_number", "+31612345678");
	run(f, "alice@example.com", rcpts, MSG("Via SMS"), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "sent to you by SMS (+31******678)"));
	assert_null(strstr(x->body, "+31612345678"));
	text = sms_one(f, phone, sizeof(phone));
	assert_string_equal(phone, "+31612345678");
	assert_non_null(strstr(text, "alice@example.com"));
	pw = between(text, ": ", " ");
	assert_non_null(pw);
	stored = prop(f, "bob@partner.net", "password");
	assert_string_equal(stored, pw);
	assert_int_equal(pdf_of(f, x, "sms.pdf"), 1);
	pdf_opens_only_with(f, "sms.pdf", stored, "SECRET-4711");
	assert_non_null(strstr(log, "route=sms"));
	free(stored);
	free(text);
	outs_free(&o);
	free(log);
}

/* F-SMS-3: a number after the subject trigger (default country code for a
 * leading 0) is used for a message with one recipient, and removed from
 * the subject with the trigger; with two recipients it is refused: they
 * get nothing, the originator the notification with the reason, and no SMS
 * is queued. */
static void test_sms_subject_number(void **state)
{
	struct fixture *f = *state;
	const char *one[] = {"bob@partner.net", NULL};
	const char *two[] = {"bob@partner.net", "carol@partner.net", NULL};
	const struct out *x, *n;
	struct outs o;
	struct sms_list l = {0};
	struct sg_error err;
	char *log, *text, phone[SMS_PHONE_MAX];

	set(f, POLICY_KIND_USER, "alice@example.com", "subject_trigger_enabled", "true");
	set(f, POLICY_KIND_USER, "alice@example.com", "sms_phone_number_in_subject_allowed",
		"true");
	set(f, POLICY_KIND_USER, "alice@example.com", "sms_default_country_code", "31");
	run(f, "alice@example.com", one, MSG("Contract [encrypt] 0612345678"), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "Subject: Contract\n"));
	assert_non_null(strstr(x->body, "encrypted message"));
	text = sms_one(f, phone, sizeof(phone));
	assert_string_equal(phone, "+31612345678");
	free(text);
	outs_free(&o);
	free(log);

	run(f, "alice@example.com", two, MSG("Contract [encrypt] 0612345678"), &o, &log);
	assert_int_equal(o.n, 1);
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	assert_non_null(strstr(n->body, "only allowed for a"));
	assert_non_null(strstr(n->body, "bob@partner.net"));
	assert_non_null(strstr(n->body, "carol@partner.net"));
	assert_null(find_to(&o, "bob@partner.net"));
	assert_null(find_to(&o, "carol@partner.net"));
	assert_int_equal(sms_list(f->db, 0, &l, &err), 0);
	assert_int_equal(l.n, 0);
	sms_list_deinit(&l);
	outs_free(&o);
	free(log);
}

/* D-2 OTP: with the portal (a portal password) the carrier is
 * encrypted_pdf_otp with a new password ID and the OTP URL; the PDF opens
 * with pdf_otp_derive(client secret, ID). Without a portal password but
 * auto invite: encrypted_pdf_otp_invite; a missing client secret is created
 * and stored (auto-create). */
static void test_otp(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	struct sg_error err;
	char *log, *secret, *stored_id, id[PDF_PASSWORD_ID_LEN + 1], otp[17];
	const char *p;

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "otp_enabled", "true");
	set(f, POLICY_KIND_USER, "bob@partner.net", "otp_client_secret", "bobs-client-secret");
	set(f, POLICY_KIND_USER, "bob@partner.net", "portal_enabled", "true");
	set(f, POLICY_KIND_USER, "bob@partner.net", "portal_password",
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA");
	run(f, "alice@example.com", rcpts, MSG("OTP"), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "https://localhost:8443/portal/otp"));
	p = between(x->body, "Password ID: ", "\r\n");
	assert_non_null(p);
	sg_strlcpy(id, p, sizeof(id));
	assert_int_equal(strlen(id), PDF_PASSWORD_ID_LEN);
	stored_id = prop(f, "bob@partner.net", "password_id");
	assert_string_equal(stored_id, id);
	free(stored_id);
	assert_int_equal(pdf_otp_derive("bobs-client-secret", id, 16, otp, sizeof(otp), &err),
		0);
	assert_int_equal(pdf_of(f, x, "otp.pdf"), 1);
	pdf_opens_only_with(f, "otp.pdf", otp, "SECRET-4711");
	assert_non_null(strstr(log, "route=otp"));
	outs_free(&o);
	free(log);

	/* auto invite, no portal password, no client secret: created */
	set(f, POLICY_KIND_USER, "bob@partner.net", "portal_password", NULL);
	set(f, POLICY_KIND_USER, "bob@partner.net", "otp_client_secret", NULL);
	set(f, POLICY_KIND_USER, "bob@partner.net", "portal_auto_invite", "true");
	run(f, "alice@example.com", rcpts, MSG("OTP invite"), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "first choose your own portal"));
	assert_non_null(strstr(x->body, "https://localhost:8443/portal/invite"));
	p = between(x->body, "Password ID: ", "\r\n");
	assert_non_null(p);
	sg_strlcpy(id, p, sizeof(id));
	secret = prop(f, "bob@partner.net", "otp_client_secret");
	assert_non_null(secret);
	assert_int_equal(strlen(secret), PDF_CLIENT_SECRET_LEN);
	assert_int_equal(pdf_otp_derive(secret, id, 16, otp, sizeof(otp), &err), 0);
	assert_int_equal(pdf_of(f, x, "invite.pdf"), 1);
	pdf_opens_only_with(f, "invite.pdf", otp, "SECRET-4711");
	assert_non_null(strstr(log, "route=otp_invite"));
	assert_null(strstr(log, secret));
	free(secret);
	outs_free(&o);
	free(log);
}

/* pdf_max_size exceeded by the finished PDF: the recipient gets nothing
 * (fail closed, never plain), the originator the encryption-failed
 * notification with the reason; another PDF recipient and a plain one are
 * unaffected. */
static void test_max_size_fail_closed(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", "dave@partner.net", "carol@partner.net",
		NULL};
	const struct out *x, *n;
	struct outs o;
	char *log;

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "password", "Static-Pass-42");
	/* the message (< 1 KB) passes the policy's size check, the PDF with
	 * its fonts does not */
	set(f, POLICY_KIND_USER, "bob@partner.net", "pdf_max_size", "2000");
	set(f, POLICY_KIND_USER, "dave@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "dave@partner.net", "password", "Daves-Pass-77");
	run(f, "alice@example.com", rcpts, MSG("Big"), &o, &log);
	assert_int_equal(o.n, 3);
	assert_null(find_to(&o, "bob@partner.net"));
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	assert_non_null(strstr(n->body, "PDF encryption failed"));
	assert_non_null(strstr(n->body, "limit"));
	assert_non_null(strstr(n->body, "bob@partner.net"));
	assert_null(strstr(n->body, "SECRET-4711"));
	x = find_to(&o, "dave@partner.net");
	assert_non_null(x);
	assert_int_equal(x->env.nrcpts, 1);
	assert_null(strstr(x->body, "SECRET-4711"));
	assert_int_equal(pdf_of(f, x, "dave.pdf"), 1);
	pdf_opens_only_with(f, "dave.pdf", "Daves-Pass-77", "SECRET-4711");
	x = find_to(&o, "carol@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "SECRET-4711"));
	assert_int_equal(pdf_of(f, x, "carol.pdf"), 0);
	assert_non_null(strstr(log, "encrypt-failed"));
	outs_free(&o);
	free(log);
}

/* pdf_sign_email (F-PDF-4): the carrier is S/MIME signed with the
 * originator's certificate (openssl verifies it under the root) and still
 * carries the PDF, which opens with the password. */
static void test_sign_email(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", NULL};
	struct tcert *root, *alice;
	struct pki *pki;
	struct pki_keys *keys;
	struct pki_cert *c;
	struct sg_error err;
	const struct out *x;
	struct outs o;
	unsigned char *der, *p12;
	size_t len;
	char *log, *pem, *ver;
	FILE *fp;

	pki = pki_open(f->db, &err);
	assert_non_null(pki);
	keys = pki_keys_open(pki, f->dir, &err);
	assert_non_null(keys);
	root = tcert_make(&(struct tspec){.cn = "PDF Sign Root", .ca = true, .nb_days = -2,
		.na_days = 3650});
	alice = tcert_make(&(struct tspec){.cn = "Alice", .san = "email:alice@example.com",
		.issuer = root, .nb_days = -1, .ku = "digitalSignature,keyEncipherment",
		.eku = "emailProtection"});
	der = tcert_der(root, &len);
	c = pki_cert_from_der(der, len, &err);
	assert_non_null(c);
	assert_true(pki_cert_add(pki, c, PKI_ADD_ROOT, &err) >= 0);
	pki_cert_free(&c);
	free(der);
	p12 = tp12_make(alice, (const struct tcert *const *)&root, 1, "pw", &len);
	if (pki_key_import_p12(keys, p12, len, "pw", NULL, NULL, &err) < 0)
		fail_msg("p12 import: %s", err.msg);
	free(p12);
	pem = tcert_pem(root);
	fp = fopen(fpath(f, "root.pem"), "w");
	assert_non_null(fp);
	fputs(pem, fp);
	fclose(fp);
	free(pem);

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "password", "Static-Pass-42");
	set(f, POLICY_KIND_USER, "alice@example.com", "pdf_sign_email", "true");
	run(f, "alice@example.com", rcpts, MSG("Signed"), &o, &log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "multipart/signed"));
	assert_null(strstr(x->body, "SECRET-4711"));
	fp = fopen(fpath(f, "signed.eml"), "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(x->body, 1, x->len, fp), x->len);
	fclose(fp);
	assert_int_equal(sh(f, "openssl cms -verify -in %s -CAfile %s -out %s",
		fpath(f, "signed.eml"), fpath(f, "root.pem"), fpath(f, "ver.out")), 0);
	ver = read_file(fpath(f, "ver.out"), &len);
	assert_non_null(ver);
	assert_non_null(strstr(ver, "application/pdf"));
	assert_non_null(strstr(ver, "Use the password you received earlier"));
	free(ver);
	assert_int_equal(pdf_of(f, x, "signed.pdf"), 1);
	pdf_opens_only_with(f, "signed.pdf", "Static-Pass-42", "SECRET-4711");
	outs_free(&o);
	free(log);
	tcert_free(&alice);
	tcert_free(&root);
	pki_keys_close(&keys);
	pki_close(&pki);
}

/* A message with more parts than the PDF renderer takes (MIME_MAX_PARTS):
 * the PDF recipient gets nothing (not the message in clear), the
 * originator the notification; a plain recipient still gets it. */
static void test_too_many_parts(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", "carol@partner.net", NULL};
	const struct out *n;
	struct sg_buf b;
	struct outs o;
	char *log, *msg;
	int i;

	sg_buf_init(&b, 1u << 20);
	assert_int_equal(sg_buf_append_str(&b, "From: alice@example.com\nTo: bob@partner.net\n"
		"Subject: many\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
		"boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nSECRET-4711\n", NULL), 0);
	for (i = 0; i < 1000; i++)
		assert_int_equal(sg_buf_printf(&b, NULL, "--b\nContent-Type: text/plain\n"
			"Content-Disposition: attachment; filename=\"f%d.txt\"\n\nx%d\n", i, i), 0);
	assert_int_equal(sg_buf_append_str(&b, "--b--\n", NULL), 0);
	msg = sg_buf_steal(&b);
	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "password", "Static-Pass-42");
	run(f, "alice@example.com", rcpts, msg, &o, &log);
	assert_int_equal(o.n, 2);
	assert_null(find_to(&o, "bob@partner.net"));
	assert_non_null(find_to(&o, "carol@partner.net"));
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	assert_non_null(strstr(n->body, "PDF encryption failed"));
	assert_non_null(strstr(n->body, "bob@partner.net"));
	outs_free(&o);
	free(log);
	free(msg);
}

/* A temporary failure while making the PDF (the work directory cannot be
 * made: a file is in its place) defers the whole message: nothing goes
 * out, it stays in incoming/; once the problem is gone the same message is
 * processed and the recipient gets the PDF. */
static void test_io_error_defers(void **state)
{
	struct fixture *f = *state;
	struct mpa_conf conf = {.cfg = f->cfg, .db = f->db, .max_size = 0};
	struct spool_env env;
	struct sg_error err;
	struct mpa *mpa;
	struct mt_log log;
	struct outs o;
	char id[SG_MAIL_ID_LEN + 1], *text;
	FILE *fp;

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "password", "Static-Pass-42");
	fp = fopen(fpath(f, "pdf"), "w");
	assert_non_null(fp);
	fclose(fp);
	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup("alice@example.com");
	env.arrival = 1700000000;
	spool_env_add_rcpt(&env, "bob@partner.net", NULL, 0);
	assert_int_equal(mt_put(f->sp, &env, MSG("Later"), strlen(MSG("Later")), id), 0);
	spool_env_free_fields(&env);
	mpa = mpa_new(&conf, &err);
	assert_non_null(mpa);
	mt_log_start(&log);
	assert_int_equal(mpa_process_spooled(mpa, f->sp, id, &err), -1);
	text = mt_log_stop(&log);
	free(text);
	assert_int_equal(sg_errc_class(err.code), SG_EC_TEMPORARY);
	assert_int_equal(mt_count(f->dir, "incoming"), 1);
	assert_int_equal(mt_count(f->dir, "outgoing"), 0);
	assert_int_equal(mt_count(f->dir, "error"), 0);
	assert_int_equal(unlink(fpath(f, "pdf")), 0);
	mt_log_start(&log);
	assert_int_equal(mpa_process_spooled(mpa, f->sp, id, &err), 0);
	text = mt_log_stop(&log);
	free(text);
	mpa_free(&mpa);
	assert_int_equal(mt_count(f->dir, "incoming"), 0);
	collect(f, &o);
	assert_int_equal(o.n, 1);
	assert_int_equal(pdf_of(f, find_to(&o, "bob@partner.net"), "later.pdf"), 1);
	pdf_opens_only_with(f, "later.pdf", "Static-Pass-42", "SECRET-4711");
	outs_free(&o);
}

/* The carrier's From is the original's first mailbox as one address,
 * also when the display name holds a comma inside an encoded word. */
static void test_carrier_from_display_name(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", NULL};
	const struct out *x;
	struct outs o;
	char *log;
	GMimeStream *st;
	GMimeParser *p;
	GMimeMessage *m;
	InternetAddressList *from;
	InternetAddress *ia;

	set(f, POLICY_KIND_USER, "bob@partner.net", "encrypt_mode", "mandatory");
	set(f, POLICY_KIND_USER, "bob@partner.net", "password", "Static-Pass-42");
	run(f, "hans@example.com", rcpts, "From: =?utf-8?q?M=C3=BCller=2C_Hans?= "
		"<hans@example.com>\nTo: bob@partner.net\nSubject: Komma\n\nSECRET-4711\n", &o,
		&log);
	assert_int_equal(o.n, 1);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	st = g_mime_stream_mem_new_with_buffer(x->body, x->len);
	p = g_mime_parser_new_with_stream(st);
	m = g_mime_parser_construct_message(p, NULL);
	assert_non_null(m);
	from = g_mime_message_get_from(m);
	assert_int_equal(internet_address_list_length(from), 1);
	ia = internet_address_list_get_address(from, 0);
	assert_true(INTERNET_ADDRESS_IS_MAILBOX(ia));
	assert_string_equal(internet_address_mailbox_get_addr((InternetAddressMailbox *)ia),
		"hans@example.com");
	assert_string_equal(internet_address_get_name(ia), "M\xc3\xbcller, Hans");
	g_object_unref(m);
	g_object_unref(p);
	g_object_unref(st);
	outs_free(&o);
	free(log);
}

/* can_pdf: without any route, an "allow" recipient gets the message as it
 * is, a mandatory one nothing (encryption failed); the pdf method never
 * runs for them. */
static void test_no_route(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = {"bob@partner.net", "erin@partner.net", NULL};
	const struct out *x, *n;
	struct outs o;
	char *log;

	set(f, POLICY_KIND_USER, "erin@partner.net", "encrypt_mode", "mandatory");
	run(f, "alice@example.com", rcpts, MSG("None"), &o, &log);
	assert_int_equal(o.n, 2);
	x = find_to(&o, "bob@partner.net");
	assert_non_null(x);
	assert_non_null(strstr(x->body, "SECRET-4711"));
	assert_null(find_to(&o, "erin@partner.net"));
	n = find_to(&o, "alice@example.com");
	assert_non_null(n);
	assert_non_null(strstr(n->body, "erin@partner.net"));
	assert_null(strstr(log, "PDF encrypted"));
	outs_free(&o);
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_static_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generated_to_originator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sms_stored_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sms_subject_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_otp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_size_fail_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_email, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_parts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_error_defers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_carrier_from_display_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_route, setup, teardown),
	};
	struct sg_error err;
	int rc;

	sg_log_init("test_mpa_pdf", SG_LOGDEST_STDERR, SG_LOG_INFO);
	g_mime_init();
	if (pdf_init(&err) < 0) {
		fprintf(stderr, "pdf_init: %s\n", err.msg);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pdf_deinit();
	g_mime_shutdown();
	return rc;
}
