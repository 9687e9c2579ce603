/* test_delivery_client.c - the delivery SMTP client (F-FLOW-2, F-FLOW-6,
 * D-8): reply and EHLO parsers, dot-stuffing, and whole sessions against
 * the scripted receiver: pipelining, HELO fallback, 421 greeting, STARTTLS
 * (opportunistic, mandatory, verified), AUTH PLAIN/LOGIN, never AUTH or
 * mail in clear when TLS is required. */
#include <setjmp.h>
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

/* ------------------------------------------------------------ reply parser */

static void test_reply_parse(void **state)
{
	struct delivery_reply r;
	struct sg_error err;
	char sum[256], enh[16];

	(void)state;
	delivery_reply_init(&r);
	assert_int_equal(delivery_reply_feed(&r, "250-first", 9, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "250-SIZE 100", 12, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "250 PIPELINING", 14, &err), 1);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 3);
	delivery_reply_summary(&r, sum, sizeof(sum));
	assert_string_equal(sum, "250 first SIZE 100 PIPELINING");

	assert_int_equal(delivery_reply_feed(&r, "550 5.1.1 <x@y>: unknown", 24, &err), 1);
	assert_string_equal(r.enh, "5.1.1");
	assert_string_equal(delivery_reply_enh(&r, enh, sizeof(enh)), "5.1.1");
	assert_int_equal(delivery_reply_feed(&r, "451 try later", 13, &err), 1);
	assert_string_equal(r.enh, "");
	assert_string_equal(delivery_reply_enh(&r, enh, sizeof(enh)), "4.0.0");
	/* enhanced code of another class is not taken */
	assert_int_equal(delivery_reply_feed(&r, "450 5.1.1 mixed", 15, &err), 1);
	assert_string_equal(r.enh, "");
	assert_int_equal(delivery_reply_feed(&r, "220", 3, &err), 1);
	assert_int_equal(r.code, 220);
	delivery_reply_deinit(&r);
}

static void test_reply_bad(void **state)
{
	static const char *const bad[] = {"hello", "25", "199 x", "600 x", "2x0 x", "250x"};
	struct delivery_reply r;
	struct sg_error err;
	char longline[DELIVERY_REPLY_LINE_MAX + 10];
	size_t i;

	(void)state;
	delivery_reply_init(&r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		delivery_reply_reset(&r);
		if (delivery_reply_feed(&r, bad[i], strlen(bad[i]), &err) != -1)
			fail_msg("'%s': accepted, want rejected", bad[i]);
		assert_int_equal(err.code, SG_E_PARSE);
	}
	delivery_reply_reset(&r);
	assert_int_equal(delivery_reply_feed(&r, "250-a", 5, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "251 b", 5, &err), -1);
	delivery_reply_reset(&r);
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "250 ", 4);
	assert_int_equal(delivery_reply_feed(&r, longline, sizeof(longline), &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	delivery_reply_reset(&r);
	for (i = 0; i < DELIVERY_REPLY_LINES_MAX; i++)
		assert_int_equal(delivery_reply_feed(&r, "250-x", 5, &err), 0);
	assert_int_equal(delivery_reply_feed(&r, "250 x", 5, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	delivery_reply_deinit(&r);
}

static void test_caps_parse(void **state)
{
	static const char *const lines[] = {"250-stub.test", "250-PIPELINING",
		"250-SIZE 1000", "250-STARTTLS", "250-AUTH LOGIN PLAIN CRAM-MD5", "250-8BITMIME",
		"250-DSN", "250 SMTPUTF8"};
	struct delivery_reply r;
	struct delivery_caps caps;
	struct sg_error err;
	size_t i;

	(void)state;
	delivery_reply_init(&r);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		delivery_reply_feed(&r, lines[i], strlen(lines[i]), &err);
	delivery_caps_parse(&r, &caps);
	assert_int_equal(caps.ext, DELIVERY_EXT_PIPELINING | DELIVERY_EXT_SIZE |
		DELIVERY_EXT_STARTTLS | DELIVERY_EXT_AUTH_LOGIN | DELIVERY_EXT_AUTH_PLAIN |
		DELIVERY_EXT_8BITMIME | DELIVERY_EXT_DSN | DELIVERY_EXT_SMTPUTF8);
	assert_int_equal(caps.size_max, 1000);
	/* The greeting line never counts as an extension. */
	delivery_reply_reset(&r);
	delivery_reply_feed(&r, "250-STARTTLS", 12, &err);
	delivery_reply_feed(&r, "250 AUTH LOGIN", 14, &err);
	delivery_caps_parse(&r, &caps);
	assert_int_equal(caps.ext, DELIVERY_EXT_AUTH_LOGIN);
	delivery_reply_deinit(&r);
}

/* ----------------------------------------------------------- dot-stuffing */

static void test_dot_stuff(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{".x\r\n", "..x\r\n.\r\n"},
		{"a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
		{"bare\nlf\n", "bare\r\nlf\r\n.\r\n"},
		{"cr\rin line\r\n", "cr\rin line\r\n.\r\n"},
		{"no eol", "no eol\r\n.\r\n"},
		{"", ".\r\n"},
		{"end cr\r", "end cr\r\n.\r\n"},
		{"a.b\r\n..\r\n", "a.b\r\n...\r\n.\r\n"},
	};
	char out[256];
	size_t i, split;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);

		/* every split point: state carries across chunk boundaries */
		for (split = 0; split <= len; split++) {
			unsigned st = 0;
			size_t n = delivery_dot_stuff(&st, cases[i].in, split, out);

			n += delivery_dot_stuff(&st, cases[i].in + split, len - split, out + n);
			n += delivery_dot_stuff_end(st, out + n);
			out[n] = '\0';
			if (strcmp(out, cases[i].want) != 0)
				fail_msg("case %zu split %zu: got '%s' want '%s'", i, split, out,
					cases[i].want);
		}
	}
}

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
		cmocka_unit_test(test_reply_parse),
		cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_caps_parse),
		cmocka_unit_test(test_dot_stuff),
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
	};

	sg_log_init("test_delivery_client", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
