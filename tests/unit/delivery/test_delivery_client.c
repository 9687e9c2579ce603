/* test_delivery_client.c - the delivery SMTP client (F-FLOW-2, F-FLOW-6,
 * D-8): whole sessions against
 * the scripted receiver: pipelining, HELO fallback, 421 greeting, STARTTLS
 * (opportunistic, mandatory, verified), AUTH PLAIN/LOGIN, never AUTH or
 * mail in clear when TLS is required; the per-thread connection cache
 * (reuse, key, server closing idle connections, limits, idle close). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "delivery/delivery_int.h"
#include "smtpd_stub.h"

static char tmpdir[256];

/* ---------------------------------------------------------------- sessions */

struct sess {
	struct stub_smtpd stub;
	struct delivery_session_opts o;
	struct delivery_tx tx;
	struct spool_rcpt r[3];
	struct spool_rcpt *rp[3];
	struct delivery_result res[3];
	struct sockaddr_in sin;
	int fd;
};

static const char body[] = "Subject: t\r\n\r\nhello\r\n.dot\r\n";

static void sess_setup(struct sess *s, const struct stub_conf *sc, size_t nrcpts)
{
	char path[300];
	size_t i;
	static const char *const addrs[] = {"a@ext.test", "b@ext.test", "c@ext.test"};

	memset(s, 0, sizeof(*s));
	assert_int_equal(stub_start(&s->stub, sc), 0);
	s->o.helo = "gw.test";
	s->o.server_name = "localhost";
	s->o.tls = MTA_TLS_MAY;
	s->o.connect_timeout = 5;
	s->o.io_timeout = 5;
	snprintf(path, sizeof(path), "%s/body", tmpdir);
	s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(s->fd >= 0);
	assert_int_equal(write(s->fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
	for (i = 0; i < nrcpts; i++) {
		s->r[i].addr = (char *)addrs[i];
		s->rp[i] = &s->r[i];
	}
	s->tx.mail_id = "TESTID";
	s->tx.sender = "s@int.test";
	s->tx.rcpts = s->rp;
	s->tx.nrcpts = nrcpts;
	s->tx.body_fd = s->fd;
	s->tx.body_len = sizeof(body) - 1;
	s->sin.sin_family = AF_INET;
	s->sin.sin_port = htons((uint16_t)s->stub.port);
	s->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int sess_send(struct sess *s)
{
	return delivery_client_send(&s->o, (const struct sockaddr *)&s->sin, sizeof(s->sin),
		&s->tx, s->res);
}

static void sess_teardown(struct sess *s)
{
	delivery_conn_cache_close();
	stub_stop(&s->stub);
	close(s->fd);
}

static void test_session_pipelined(void **state)
{
	struct stub_conf sc = {.ehlo_ext = "PIPELINING\n8BITMIME", .keep_data = true};
	struct sess s;

	(void)state;
	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"b@ext.test", "450 4.2.0 busy"};
	sc.rcpt_rules[1] = (struct stub_rcpt_rule){"c@ext.test", "550 5.1.1 no such user"};
	sess_setup(&s, &sc, 3);
	assert_int_equal(sess_send(&s), 0);
	assert_true(s.stub.saw_pipelining);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_string_equal(s.res[0].enh, "2.0.0");
	assert_true(s.res[0].is_reply);
	assert_int_equal(s.res[1].status, DELIVERY_R_TEMP);
	assert_string_equal(s.res[1].enh, "4.2.0");
	assert_string_equal(s.res[1].text, "450 4.2.0 busy");
	assert_int_equal(s.res[2].status, DELIVERY_R_PERM);
	assert_string_equal(s.res[2].enh, "5.1.1");
	assert_non_null(strstr(s.res[2].relay, "[127.0.0.1]:"));
	assert_int_equal(s.stub.messages, 1);
	assert_int_equal(s.stub.data_len, strlen("Subject: t\r\n\r\nhello\r\n..dot\r\n"));
	assert_memory_equal(s.stub.data, "Subject: t\r\n\r\nhello\r\n..dot\r\n", s.stub.data_len);
	/* the clean session stays open for the next message; closing it QUITs */
	assert_false(stub_has_cmd(&s.stub, "QUIT"));
	assert_int_equal(delivery_conn_cache_count(), 1);
	delivery_conn_cache_close();
	assert_true(stub_has_cmd(&s.stub, "QUIT"));
	sess_teardown(&s);
}

static void test_session_not_pipelined_helo(void **state)
{
	struct stub_conf sc = {.ehlo_refused = true};
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 2);
	assert_int_equal(sess_send(&s), 0);
	assert_false(s.stub.saw_pipelining);
	assert_true(stub_has_cmd(&s.stub, "EHLO gw.test"));
	assert_true(stub_has_cmd(&s.stub, "HELO gw.test"));
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.res[1].status, DELIVERY_R_OK);
	assert_int_equal(stub_count_cmd(&s.stub, "RCPT TO:"), 2);
	sess_teardown(&s);
}

static void test_session_421_greeting(void **state)
{
	struct stub_conf sc = {.greeting = "421 4.3.2 too busy"};
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 1);
	assert_int_equal(sess_send(&s), -1);
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_non_null(strstr(s.res[0].text, "421 4.3.2 too busy"));
	assert_false(stub_has_cmd(&s.stub, "MAIL"));
	sess_teardown(&s);
}

static void test_session_refused(void **state)
{
	struct sess s;

	(void)state;
	sess_setup(&s, NULL, 1);
	s.sin.sin_port = htons((uint16_t)stub_free_port());
	assert_int_equal(sess_send(&s), -1);
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_string_equal(s.res[0].enh, "4.4.1");
	assert_non_null(strstr(s.res[0].text, "connect"));
	sess_teardown(&s);
}

static void test_session_mail_rejected(void **state)
{
	struct stub_conf sc = {.ehlo_ext = "PIPELINING", .mail_reply = "553 5.7.1 sender no"};
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 2);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_PERM);
	assert_int_equal(s.res[1].status, DELIVERY_R_PERM);
	assert_string_equal(s.res[1].enh, "5.7.1");
	assert_false(stub_has_cmd(&s.stub, "DATA"));
	sess_teardown(&s);
}

static void test_session_final_reply_temp(void **state)
{
	struct stub_conf sc = {.final_reply = "451 4.3.0 queue trouble"};
	struct sess s;

	(void)state;
	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"b@ext.test", "550 5.1.1 unknown"};
	sess_setup(&s, &sc, 2);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_string_equal(s.res[0].enh, "4.3.0");
	/* the RCPT rejection stays the recipient's result */
	assert_int_equal(s.res[1].status, DELIVERY_R_PERM);
	assert_string_equal(s.res[1].enh, "5.1.1");
	sess_teardown(&s);
}

static void test_session_size_limit(void **state)
{
	struct stub_conf sc = {.ehlo_ext = "SIZE 10"};
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 1);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_PERM);
	assert_string_equal(s.res[0].enh, "5.3.4");
	assert_false(stub_has_cmd(&s.stub, "MAIL"));
	sess_teardown(&s);
}

static void test_session_starttls_may(void **state)
{
	struct stub_conf sc = {0};
	char ca[300];
	struct sess s;

	(void)state;
	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	assert_non_null(sc.tls);
	sess_setup(&s, &sc, 1);
	assert_int_equal(sess_send(&s), 0);
	assert_true(s.stub.saw_tls);
	assert_false(s.stub.mail_in_clear);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(stub_count_cmd(&s.stub, "EHLO"), 2);
	sess_teardown(&s);
	SSL_CTX_free(sc.tls);
}

static void test_session_tls_none(void **state)
{
	struct stub_conf sc = {0};
	char ca[300];
	struct sess s;

	(void)state;
	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	sess_setup(&s, &sc, 1);
	s.o.tls = MTA_TLS_NONE;
	assert_int_equal(sess_send(&s), 0);
	assert_false(s.stub.saw_tls);
	assert_false(stub_has_cmd(&s.stub, "STARTTLS"));
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	sess_teardown(&s);
	SSL_CTX_free(sc.tls);
}

static void test_session_tls_mandatory_unavailable(void **state)
{
	struct stub_conf sc = {0};
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 1);
	s.o.tls = MTA_TLS_ENCRYPT;
	assert_int_equal(sess_send(&s), -1);
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_non_null(strstr(s.res[0].text, "TLS is required"));
	/* never falls back to plaintext */
	assert_false(s.stub.mail_in_clear);
	assert_false(stub_has_cmd(&s.stub, "MAIL"));
	sess_teardown(&s);
}

static void tls_broken_case(enum mta_tls_level level)
{
	struct stub_conf sc = {0};
	char ca[300];
	struct sess s;

	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	/* the server only speaks TLS 1.1, the client needs 1.2: handshake fails */
	SSL_CTX_set_max_proto_version(sc.tls, TLS1_1_VERSION);
	sess_setup(&s, &sc, 1);
	s.o.tls = level;
	if (level == MTA_TLS_MAY) {
		assert_int_equal(sess_send(&s), 0);
		assert_int_equal(s.res[0].status, DELIVERY_R_OK);
		assert_int_equal(s.stub.sessions, 2);
		assert_int_equal(stub_count_cmd(&s.stub, "STARTTLS"), 1);
		assert_int_equal(s.stub.messages, 1);
	} else {
		assert_int_equal(sess_send(&s), -1);
		assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
		assert_int_equal(s.stub.sessions, 1);
		assert_false(stub_has_cmd(&s.stub, "MAIL"));
	}
	assert_false(s.stub.saw_tls);
	sess_teardown(&s);
	SSL_CTX_free(sc.tls);
}

static void test_session_tls_may_broken_falls_back(void **state)
{
	(void)state;
	tls_broken_case(MTA_TLS_MAY);
}

static void test_session_tls_encrypt_broken_defers(void **state)
{
	(void)state;
	tls_broken_case(MTA_TLS_ENCRYPT);
}

static void test_session_tls_verify(void **state)
{
	struct stub_conf sc = {0};
	char ca[300], other[300], odir[300];
	struct sess s;
	SSL_CTX *octx;

	(void)state;
	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	sess_setup(&s, &sc, 1);
	s.o.tls = MTA_TLS_VERIFY;
	s.o.ca_file = ca;
	assert_int_equal(sess_send(&s), 0);
	assert_true(s.stub.saw_tls);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);

	/* a CA that did not issue the server certificate: deferred, no MAIL */
	snprintf(odir, sizeof(odir), "%s/other", tmpdir);
	assert_int_equal(mkdir(odir, 0700), 0);
	octx = stub_tls_ctx(odir, other, sizeof(other));
	assert_non_null(octx);
	stub_reset(&s.stub);
	s.o.ca_file = other;
	assert_int_equal(sess_send(&s), -1);
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_non_null(strstr(s.res[0].text, "verif"));
	assert_false(stub_has_cmd(&s.stub, "MAIL"));

	/* right CA, wrong name */
	stub_reset(&s.stub);
	s.o.ca_file = ca;
	s.o.server_name = "mx.other.test";
	assert_int_equal(sess_send(&s), -1);
	assert_false(stub_has_cmd(&s.stub, "MAIL"));
	sess_teardown(&s);
	SSL_CTX_free(octx);
	SSL_CTX_free(sc.tls);
}

static void auth_case(const char *mechs, const char *pass, bool want_ok,
	const char *want_mech)
{
	struct stub_conf sc = {.auth_user = "gwuser", .auth_pass = "s3cret pass",
		.auth_mechs = mechs, .auth_required = true};
	struct mta_sasl cred = {.host = "localhost", .port = 25, .username = "gwuser"};
	char ca[300];
	struct sess s;

	cred.password = (char *)pass;
	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	sess_setup(&s, &sc, 1);
	s.o.sasl = &cred;
	if (want_ok) {
		assert_int_equal(sess_send(&s), 0);
		assert_true(s.stub.auth_ok);
		assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	} else {
		assert_int_equal(sess_send(&s), -1);
		assert_false(s.stub.auth_ok);
		assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
		assert_non_null(strstr(s.res[0].text, "authentication failed"));
		assert_false(stub_has_cmd(&s.stub, "MAIL"));
	}
	assert_true(s.stub.auth_seen);
	assert_false(s.stub.auth_in_clear);
	assert_string_equal(s.stub.auth_mech, want_mech);
	sess_teardown(&s);
	SSL_CTX_free(sc.tls);
}

static void test_session_auth_plain(void **state)
{
	(void)state;
	auth_case("PLAIN LOGIN", "s3cret pass", true, "PLAIN");
}

static void test_session_auth_login(void **state)
{
	(void)state;
	auth_case("LOGIN", "s3cret pass", true, "LOGIN");
}

static void test_session_auth_bad_password(void **state)
{
	(void)state;
	auth_case("PLAIN", "wrong", false, "PLAIN");
}

static void test_session_auth_never_in_clear(void **state)
{
	struct stub_conf sc = {.auth_user = "gwuser", .auth_pass = "pw"};
	struct mta_sasl cred = {.host = "localhost", .port = 25, .username = "gwuser",
		.password = "pw"};
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 1); /* no STARTTLS offered */
	s.o.sasl = &cred;
	assert_int_equal(sess_send(&s), -1);
	assert_false(s.stub.auth_seen);
	assert_false(stub_has_cmd(&s.stub, "MAIL"));
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_non_null(strstr(s.res[0].text, "only sent over TLS"));
	sess_teardown(&s);
}

/* ------------------------------------------------------- connection cache */

/* Log capture: stderr (where the tests log) into a file, debug level. */
struct logcap {
	int saved_fd;
	char path[300];
};

static void logcap_start(struct logcap *l)
{
	int fd;

	snprintf(l->path, sizeof(l->path), "%s/log", tmpdir);
	fd = open(l->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	l->saved_fd = dup(2);
	assert_true(l->saved_fd >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	sg_log_set_level(SG_LOG_DEBUG);
}

/* logcap_stop - restore stderr; the captured text (caller frees). */
static char *logcap_stop(struct logcap *l)
{
	char *text = sg_xcalloc(1, 65537);
	ssize_t n;
	int fd;

	sg_log_set_level(SG_LOG_WARN);
	fflush(stderr);
	dup2(l->saved_fd, 2);
	close(l->saved_fd);
	fd = open(l->path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, text, 65536);
	assert_true(n >= 0);
	close(fd);
	unlink(l->path);
	return text;
}

/* Each test starts with an empty cache and leaves none behind. */
static int cache_empty(void **state)
{
	(void)state;
	delivery_conn_cache_close();
	return delivery_conn_cache_count() == 0 ? 0 : -1;
}

static void test_reuse_same_hop(void **state)
{
	struct stub_conf sc = {.ehlo_ext = "PIPELINING"};
	struct logcap lc;
	char *log;
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 2);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(delivery_conn_cache_count(), 1);
	logcap_start(&lc);
	assert_int_equal(sess_send(&s), 0);
	log = logcap_stop(&lc);
	if (strstr(log, "TESTID: reusing connection to localhost[127.0.0.1]:") == NULL)
		fail_msg("no reuse log line in: %s", log);
	free(log);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.res[1].status, DELIVERY_R_OK);
	assert_int_equal(s.stub.sessions, 1);
	assert_int_equal(s.stub.messages, 2);
	assert_int_equal(stub_count_cmd(&s.stub, "EHLO"), 1);
	assert_int_equal(stub_count_cmd(&s.stub, "MAIL FROM:"), 2);
	assert_false(stub_has_cmd(&s.stub, "RSET"));
	assert_false(stub_has_cmd(&s.stub, "QUIT"));
	sess_teardown(&s);
}

static void test_reuse_tls_auth(void **state)
{
	struct stub_conf sc = {.auth_user = "gwuser", .auth_pass = "pw",
		.auth_required = true};
	struct mta_sasl cred = {.host = "localhost", .port = 25, .username = "gwuser",
		.password = "pw"};
	char ca[300];
	struct sess s;

	(void)state;
	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	assert_non_null(sc.tls);
	sess_setup(&s, &sc, 1);
	s.o.tls = MTA_TLS_VERIFY;
	s.o.ca_file = ca;
	s.o.sasl = &cred;
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.stub.sessions, 1);
	assert_int_equal(s.stub.messages, 3);
	assert_int_equal(stub_count_cmd(&s.stub, "STARTTLS"), 1);
	assert_int_equal(stub_count_cmd(&s.stub, "AUTH"), 1);
	assert_false(s.stub.mail_in_clear);
	sess_teardown(&s);
	SSL_CTX_free(sc.tls);
}

/* The second delivery differs from the first in one part of the key (or in
 * none, with the strings in other buffers): how many connections result. */
enum key_change {
	KEY_SAME_NEW_BUFFERS,
	KEY_OTHER_HELO,
	KEY_OTHER_TLS_LEVEL,
	KEY_OTHER_SERVER_NAME,
	KEY_OTHER_CA_FILE,
	KEY_OTHER_PASSWORD,
	KEY_OTHER_USER,
};

static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	ssize_t n;
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

static void test_reuse_key(void **state)
{
	static const struct {
		const char *name;
		enum key_change change;
		unsigned want_sessions;
		int want_rc;
	} cases[] = {
		{"same key in new buffers", KEY_SAME_NEW_BUFFERS, 1, 0},
		{"other HELO name", KEY_OTHER_HELO, 2, 0},
		{"other TLS level", KEY_OTHER_TLS_LEVEL, 2, 0},
		{"other server name", KEY_OTHER_SERVER_NAME, 2, 0},
		{"other CA file", KEY_OTHER_CA_FILE, 2, 0},
		/* reused, the old AUTH would have let it through */
		{"other password", KEY_OTHER_PASSWORD, 2, -1},
		{"other user", KEY_OTHER_USER, 2, -1},
	};
	struct stub_conf sc = {.auth_user = "gwuser", .auth_pass = "pw",
		.auth_required = true};
	char ca[300], ca2[300], user[32], pass[32], helo[32], name[32];
	struct mta_sasl cred = {.host = "localhost", .port = 25};
	struct sess s;
	size_t i;

	(void)state;
	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	assert_non_null(sc.tls);
	snprintf(ca2, sizeof(ca2), "%s/ca-copy.pem", tmpdir);
	copy_file(ca, ca2);
	sess_setup(&s, &sc, 1);
	cred.username = user;
	cred.password = pass;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		delivery_conn_cache_close();
		assert_int_equal(stub_close_idle(&s.stub, NULL), 0);
		stub_reset(&s.stub);
		snprintf(user, sizeof(user), "gwuser");
		snprintf(pass, sizeof(pass), "pw");
		snprintf(helo, sizeof(helo), "gw.test");
		snprintf(name, sizeof(name), "localhost");
		s.o.helo = helo;
		s.o.server_name = name;
		s.o.tls = MTA_TLS_ENCRYPT;
		s.o.ca_file = ca;
		s.o.sasl = &cred;
		assert_int_equal(sess_send(&s), 0);
		switch (cases[i].change) {
		case KEY_SAME_NEW_BUFFERS: {
			static char helo2[] = "gw.test", name2[] = "localhost";
			static char user2[] = "gwuser", pass2[] = "pw";
			static struct mta_sasl cred2 = {.host = "localhost", .port = 25};

			cred2.username = user2;
			cred2.password = pass2;
			s.o.helo = helo2;
			s.o.server_name = name2;
			s.o.sasl = &cred2;
			break;
		}
		case KEY_OTHER_HELO:
			snprintf(helo, sizeof(helo), "gw2.test");
			break;
		case KEY_OTHER_TLS_LEVEL:
			s.o.tls = MTA_TLS_MAY;
			break;
		case KEY_OTHER_SERVER_NAME:
			snprintf(name, sizeof(name), "127.0.0.1");
			break;
		case KEY_OTHER_CA_FILE:
			s.o.ca_file = ca2;
			break;
		case KEY_OTHER_PASSWORD: /* same buffer, other contents */
			snprintf(pass, sizeof(pass), "px");
			break;
		case KEY_OTHER_USER:
			snprintf(user, sizeof(user), "gwusex");
			break;
		}
		rc = sess_send(&s);
		if (rc != cases[i].want_rc || s.stub.sessions != cases[i].want_sessions)
			fail_msg("%s: got rc %d, %u connections; want rc %d, %u", cases[i].name,
				rc, s.stub.sessions, cases[i].want_rc, cases[i].want_sessions);
	}
	sess_teardown(&s);
	unlink(ca2);
	SSL_CTX_free(sc.tls);
}

static void test_reuse_other_port(void **state)
{
	struct stub_conf sc = {.ehlo_ext = "PIPELINING"};
	struct stub_smtpd other;
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 1);
	assert_int_equal(stub_start(&other, &sc), 0);
	assert_int_equal(sess_send(&s), 0);
	s.sin.sin_port = htons((uint16_t)other.port);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.stub.sessions, 1);
	assert_int_equal(other.sessions, 1);
	assert_int_equal(other.messages, 1);
	/* both stay cached, one per destination */
	assert_int_equal(delivery_conn_cache_count(), 2);
	delivery_conn_cache_close();
	stub_stop(&other);
	sess_teardown(&s);
}

static void test_reuse_evicts_longest_idle(void **state)
{
	struct stub_smtpd more[4];
	struct sess s;
	size_t i;

	(void)state;
	sess_setup(&s, NULL, 1);
	assert_int_equal(sess_send(&s), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(stub_start(&more[i], NULL), 0);
		s.sin.sin_port = htons((uint16_t)more[i].port);
		assert_int_equal(sess_send(&s), 0);
	}
	/* five destinations, four slots: the first (longest idle) was closed */
	assert_int_equal(delivery_conn_cache_count(), 4);
	assert_int_equal(s.stub.quits, 1);
	for (i = 0; i < 4; i++)
		assert_int_equal(more[i].quits, 0);
	delivery_conn_cache_close();
	for (i = 0; i < 4; i++) {
		assert_int_equal(more[i].quits, 1);
		stub_stop(&more[i]);
	}
	sess_teardown(&s);
}

/* server_gone_case - the server drops the idle connection in one of three
 * ways; the next delivery still succeeds, on a new connection. */
static void server_gone_case(const char *kick_reply, bool is_drop_at_mail)
{
	struct stub_conf sc = {.ehlo_ext = "PIPELINING", .drop_second_mail = is_drop_at_mail};

	if (is_drop_at_mail && kick_reply != NULL) {
		/* not pipelined: the 421 is read as the reply to MAIL (with RCPTs
		 * following, their write would fail first) */
		sc.second_mail_reply = kick_reply;
		sc.ehlo_ext = NULL;
	}
	struct logcap lc;
	char *log;
	struct sess s;

	sess_setup(&s, &sc, 2);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(delivery_conn_cache_count(), 1);
	if (!is_drop_at_mail)
		assert_int_equal(stub_close_idle(&s.stub, kick_reply), 0);
	logcap_start(&lc);
	assert_int_equal(sess_send(&s), 0);
	log = logcap_stop(&lc);
	/* a dead idle connection is noticed before use (nothing sent on it);
	 * one that dies under the first command is replaced after it */
	if (strstr(log, is_drop_at_mail ? "cached connection to" : "idle connection to") ==
	    NULL || strstr(log, "was closed by the server") == NULL)
		fail_msg("wrong or no log line in: %s", log);
	free(log);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.res[1].status, DELIVERY_R_OK);
	assert_int_equal(s.stub.sessions, 2);
	assert_int_equal(s.stub.idle_closed, 1);
	assert_int_equal(s.stub.messages, 2);
	/* the dropped MAIL was never answered; the new session sent it again */
	assert_int_equal(stub_count_cmd(&s.stub, "MAIL FROM:"), is_drop_at_mail ? 3 : 2);
	sess_teardown(&s);
}

static void test_reuse_server_closed_idle(void **state)
{
	(void)state;
	server_gone_case(NULL, false);
}

static void test_reuse_server_421_idle(void **state)
{
	(void)state;
	server_gone_case("421 4.4.2 stub.test idle timeout", false);
}

static void test_reuse_server_closed_at_mail(void **state)
{
	(void)state;
	server_gone_case(NULL, true);
}

static void test_reuse_server_421_at_mail(void **state)
{
	(void)state;
	server_gone_case("421 4.3.2 stub.test shutting down", true);
}

static void test_reuse_server_closed_at_mail_tls(void **state)
{
	struct stub_conf sc = {.drop_second_mail = true};
	char ca[300];
	struct sess s;

	(void)state;
	sc.tls = stub_tls_ctx(tmpdir, ca, sizeof(ca));
	assert_non_null(sc.tls);
	sess_setup(&s, &sc, 1);
	s.o.tls = MTA_TLS_ENCRYPT;
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.stub.sessions, 2);
	assert_int_equal(s.stub.messages, 2);
	sess_teardown(&s);
	SSL_CTX_free(sc.tls);
}

static void test_reuse_idle_limit(void **state)
{
	struct sess s;

	(void)state;
	sess_setup(&s, NULL, 1);
	s.o.reuse_idle_ms = 100;
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(sess_send(&s), 0); /* well within 100 ms */
	assert_int_equal(s.stub.sessions, 1);
	usleep(200 * 1000);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.stub.sessions, 2);
	/* the expired connection was closed politely */
	assert_int_equal(s.stub.quits, 1);
	sess_teardown(&s);
}

static void test_reuse_age_limit(void **state)
{
	struct sess s;

	(void)state;
	sess_setup(&s, NULL, 1);
	s.o.reuse_max_age = 1;
	s.o.reuse_idle_ms = 5000;
	assert_int_equal(sess_send(&s), 0);
	usleep(600 * 1000);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.stub.sessions, 1);
	usleep(600 * 1000); /* idle 0.6 s, but 1.2 s since connect */
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.stub.sessions, 2);
	assert_int_equal(s.stub.quits, 1);
	sess_teardown(&s);
}

static void test_reuse_tx_limit(void **state)
{
	struct sess s;
	int i;

	(void)state;
	sess_setup(&s, NULL, 1);
	s.o.reuse_max_tx = 3;
	for (i = 0; i < 7; i++)
		assert_int_equal(sess_send(&s), 0);
	/* 3 + 3 + 1 transactions; the full ones ended with QUIT */
	assert_int_equal(s.stub.sessions, 3);
	assert_int_equal(s.stub.messages, 7);
	assert_int_equal(s.stub.quits, 2);
	/* 1 turns reuse off */
	delivery_conn_cache_close();
	stub_reset(&s.stub);
	s.o.reuse_max_tx = 1;
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(delivery_conn_cache_count(), 0);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.stub.sessions, 2);
	sess_teardown(&s);
}

static void test_reuse_after_rcpts_rejected(void **state)
{
	struct stub_conf sc = {.ehlo_ext = "PIPELINING"};
	struct sess s;

	(void)state;
	sc.rcpt_rules[0] = (struct stub_rcpt_rule){"a@ext.test", "550 5.1.1 no such user"};
	sess_setup(&s, &sc, 1);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_PERM);
	assert_false(stub_has_cmd(&s.stub, "DATA"));
	/* no recipient accepted: RSET, then the connection is kept */
	assert_true(stub_has_cmd(&s.stub, "RSET"));
	assert_int_equal(delivery_conn_cache_count(), 1);
	s.r[0].addr = "b@ext.test";
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_OK);
	assert_int_equal(s.stub.sessions, 1);
	assert_int_equal(s.stub.messages, 1);
	sess_teardown(&s);
}

static void test_no_reuse_after_421(void **state)
{
	struct stub_conf sc = {.final_reply = "421 4.3.0 shutting down"};
	struct sess s;

	(void)state;
	sess_setup(&s, &sc, 1);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_int_equal(delivery_conn_cache_count(), 0);
	sess_teardown(&s);
}

static void test_no_reuse_after_io_error(void **state)
{
	struct stub_conf sc = {.data_reply = "354 go"};
	struct sess s;

	(void)state;
	/* a message whose body cannot be read: the session breaks mid-DATA */
	sess_setup(&s, &sc, 1);
	s.tx.body_len = 1 << 20; /* more than the file holds */
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(s.res[0].status, DELIVERY_R_TEMP);
	assert_int_equal(delivery_conn_cache_count(), 0);
	sess_teardown(&s);
}

static void test_idle_close_quits(void **state)
{
	struct sess s;

	(void)state;
	sess_setup(&s, NULL, 1);
	assert_int_equal(sess_send(&s), 0);
	assert_int_equal(delivery_conn_cache_count(), 1);
	assert_int_equal(stub_active(&s.stub), 1);
	delivery_conn_cache_close();
	assert_int_equal(delivery_conn_cache_count(), 0);
	assert_int_equal(s.stub.quits, 1);
	/* the server saw the connection end (QUIT, then close) */
	assert_int_equal(stub_close_idle(&s.stub, NULL), 0);
	assert_int_equal(s.stub.idle_closed, 0);
	sess_teardown(&s);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-dlv-client-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "%s/other/stub-cert.pem", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/other", tmpdir);
	rmdir(cmd);
	snprintf(cmd, sizeof(cmd), "%s/stub-cert.pem", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/body", tmpdir);
	unlink(cmd);
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_pipelined),
		cmocka_unit_test(test_session_not_pipelined_helo),
		cmocka_unit_test(test_session_421_greeting),
		cmocka_unit_test(test_session_refused),
		cmocka_unit_test(test_session_mail_rejected),
		cmocka_unit_test(test_session_final_reply_temp),
		cmocka_unit_test(test_session_size_limit),
		cmocka_unit_test(test_session_starttls_may),
		cmocka_unit_test(test_session_tls_none),
		cmocka_unit_test(test_session_tls_mandatory_unavailable),
		cmocka_unit_test(test_session_tls_may_broken_falls_back),
		cmocka_unit_test(test_session_tls_encrypt_broken_defers),
		cmocka_unit_test(test_session_tls_verify),
		cmocka_unit_test(test_session_auth_plain),
		cmocka_unit_test(test_session_auth_login),
		cmocka_unit_test(test_session_auth_bad_password),
		cmocka_unit_test(test_session_auth_never_in_clear),
		cmocka_unit_test_setup(test_reuse_same_hop, cache_empty),
		cmocka_unit_test_setup(test_reuse_tls_auth, cache_empty),
		cmocka_unit_test_setup(test_reuse_key, cache_empty),
		cmocka_unit_test_setup(test_reuse_other_port, cache_empty),
		cmocka_unit_test_setup(test_reuse_evicts_longest_idle, cache_empty),
		cmocka_unit_test_setup(test_reuse_server_closed_idle, cache_empty),
		cmocka_unit_test_setup(test_reuse_server_421_idle, cache_empty),
		cmocka_unit_test_setup(test_reuse_server_closed_at_mail, cache_empty),
		cmocka_unit_test_setup(test_reuse_server_421_at_mail, cache_empty),
		cmocka_unit_test_setup(test_reuse_server_closed_at_mail_tls, cache_empty),
		cmocka_unit_test_setup(test_reuse_idle_limit, cache_empty),
		cmocka_unit_test_setup(test_reuse_age_limit, cache_empty),
		cmocka_unit_test_setup(test_reuse_tx_limit, cache_empty),
		cmocka_unit_test_setup(test_reuse_after_rcpts_rejected, cache_empty),
		cmocka_unit_test_setup(test_no_reuse_after_421, cache_empty),
		cmocka_unit_test_setup(test_no_reuse_after_io_error, cache_empty),
		cmocka_unit_test_setup(test_idle_close_quits, cache_empty),
	};

	/* a peer that closes while we write must be an error, not a signal */
	signal(SIGPIPE, SIG_IGN);
	sg_log_init("test_delivery_client", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
