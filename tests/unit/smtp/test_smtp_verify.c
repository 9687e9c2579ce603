/*
 * test_smtp_verify.c - reject unverified recipient (standalone, F-ADM-5):
 * the listener probes the internal relay host (a scripted stub on
 * 127.0.0.1) with RCPT, caches the answer, and replies 450/550 as set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "smtp_test.h"
#include "smtp/smtp_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

/* ------------------------------------------------------------ relay stub */

struct relay {
	int lfd;
	unsigned port;
	pthread_t thr;
	pthread_mutex_t mu;
	unsigned rcpts;     /* RCPT commands seen */
	char last_mail[256];
	char last_helo[256];
};

static void relay_say(int fd, const char *s)
{
	(void)send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static void relay_session(struct relay *r, int fd)
{
	char buf[4096];
	size_t have = 0;

	relay_say(fd, "220 relay.test ESMTP\r\n");
	for (;;) {
		char *eol;
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);

		if (n <= 0)
			return;
		have += (size_t)n;
		while ((eol = memchr(buf, '\n', have)) != NULL) {
			size_t len = (size_t)(eol - buf) + 1;
			char line[4096];

			memcpy(line, buf, len);
			line[len] = '\0';
			memmove(buf, buf + len, have - len);
			have -= len;
			if (strncmp(line, "EHLO", 4) == 0) {
				pthread_mutex_lock(&r->mu);
				snprintf(r->last_helo, sizeof(r->last_helo), "%s", line);
				pthread_mutex_unlock(&r->mu);
				relay_say(fd, "250-relay.test\r\n250 PIPELINING\r\n");
			} else if (strncmp(line, "MAIL", 4) == 0) {
				pthread_mutex_lock(&r->mu);
				snprintf(r->last_mail, sizeof(r->last_mail), "%s", line);
				pthread_mutex_unlock(&r->mu);
				relay_say(fd, "250 2.1.0 Ok\r\n");
			} else if (strncmp(line, "RCPT", 4) == 0) {
				pthread_mutex_lock(&r->mu);
				r->rcpts++;
				pthread_mutex_unlock(&r->mu);
				if (strstr(line, "good") != NULL)
					relay_say(fd, "250 2.1.5 Ok\r\n");
				else if (strstr(line, "temp") != NULL)
					relay_say(fd, "450 4.2.0 try later\r\n");
				else if (strstr(line, "slow") != NULL) {
					usleep(1500 * 1000);
					relay_say(fd, "250 2.1.5 Ok\r\n");
				} else
					relay_say(fd, "550 5.1.1 no such user\r\n");
			} else if (strncmp(line, "QUIT", 4) == 0) {
				relay_say(fd, "221 bye\r\n");
				return;
			} else {
				relay_say(fd, "502 no\r\n");
			}
		}
	}
}

static void *relay_thread(void *arg)
{
	struct relay *r = arg;

	for (;;) {
		int fd = accept(r->lfd, NULL, NULL);

		if (fd < 0)
			return NULL; /* listening socket shut down */
		relay_session(r, fd);
		close(fd);
	}
}

static void relay_start(struct relay *r)
{
	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(r->lfd, 16), 0);
	assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&sa, &slen), 0);
	r->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&r->thr, NULL, relay_thread, r), 0);
}

static void relay_stop(struct relay *r)
{
	shutdown(r->lfd, SHUT_RDWR);
	pthread_join(r->thr, NULL);
	close(r->lfd);
	pthread_mutex_destroy(&r->mu);
}

static unsigned relay_rcpts(struct relay *r)
{
	unsigned n;

	pthread_mutex_lock(&r->mu);
	n = r->rcpts;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* closed_port - a loopback port nobody listens on. */
static unsigned closed_port(void)
{
	struct sockaddr_in sa;
	socklen_t slen = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* ------------------------------------------------------------------ tests */

static struct tsrv T;
static struct relay R;

static int setup(void **state)
{
	char hp[64];

	(void)state;
	relay_start(&R);
	tsrv_init(&T);
	snprintf(hp, sizeof(hp), "127.0.0.1:%u", R.port);
	tsrv_set(&T, "relay_domains", "dest.example");
	tsrv_set(&T, "my_networks", "192.0.2.0/24");
	tsrv_set(&T, "internal_relay_host", hp);
	tsrv_set(&T, "reject_unverified_recipient", "yes");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tsrv_done(&T);
	relay_stop(&R);
	return 0;
}

static void start(enum sg_smtp_mode mode)
{
	struct tsrv_opts o = {0};

	o.mode = mode;
	o.verify_timeout_ms = 1000;
	tsrv_start(&T, &o);
}

static void test_probe_direct(void **state)
{
	(void)state;
	assert_int_equal(smtp_verify_probe("127.0.0.1", R.port, "mx.test.example",
		"good@dest.example", 3000), 250);
	assert_int_equal(smtp_verify_probe("127.0.0.1", R.port, "mx.test.example",
		"bad@dest.example", 3000), 550);
	/* 4xx is no answer: 0 */
	assert_int_equal(smtp_verify_probe("127.0.0.1", R.port, "mx.test.example",
		"temp@dest.example", 3000), 0);
	/* the probe uses the null sender and our HELO name */
	assert_non_null(strstr(R.last_mail, "MAIL FROM:<>"));
	assert_non_null(strstr(R.last_helo, "EHLO mx.test.example"));
	/* nobody listening, or too slow: 0 */
	assert_int_equal(smtp_verify_probe("127.0.0.1", closed_port(), "h",
		"good@dest.example", 1000), 0);
	assert_int_equal(smtp_verify_probe("127.0.0.1", R.port, "h", "slow@dest.example",
		500), 0);
}

static void test_reject_550_and_cache(void **state)
{
	struct tcli c;
	unsigned n;

	(void)state;
	tsrv_set(&T, "unverified_recipient_code", "550");
	start(SG_MODE_STANDALONE);
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<good@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<bad@dest.example>"), 550);
	assert_non_null(strstr(c.last, "550 5.1.1"));
	n = relay_rcpts(&R);
	assert_int_equal(n, 2);
	/* both answers are cached: no new probes */
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<bad@dest.example>"), 550);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<good@DEST.example>"), 250);
	assert_int_equal(relay_rcpts(&R), n);
	/* not a relay domain: never probed (and here denied: not my_networks) */
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<bad@other.example>"), 554);
	assert_int_equal(relay_rcpts(&R), n);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send(&c, "x\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	tcli_close(&c);
}

static void test_reject_450_default(void **state)
{
	struct tcli c;

	(void)state;
	start(SG_MODE_STANDALONE);
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<bad@dest.example>"), 450);
	assert_non_null(strstr(c.last, "450 4.1.1"));
	/* a temporary answer from the relay is not cached: probed each time */
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<temp@dest.example>"), 450);
	assert_non_null(strstr(c.last, "probe failed"));
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<temp@dest.example>"), 450);
	assert_int_equal(relay_rcpts(&R), 3);
	tcli_close(&c);
}

static void test_relay_down(void **state)
{
	struct tcli c;
	char hp[64];

	(void)state;
	snprintf(hp, sizeof(hp), "127.0.0.1:%u", closed_port());
	tsrv_set(&T, "internal_relay_host", hp);
	tsrv_set(&T, "unverified_recipient_code", "550");
	start(SG_MODE_STANDALONE);
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	/* unknown is never 5xx: 450 even when 550 is configured */
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<good@dest.example>"), 450);
	assert_non_null(strstr(c.last, "4.1.1"));
	tcli_close(&c);
}

static void test_pipelined_probes_keep_order(void **state)
{
	struct tcli c;
	static const int want[] = {250, 250, 250, 550, 250, 354, 250};
	size_t i;

	(void)state;
	tsrv_set(&T, "unverified_recipient_code", "550");
	start(SG_MODE_STANDALONE);
	tcli_open(&c, T.port);
	tcli_send(&c, "EHLO c.test.example\r\nMAIL FROM:<s@outside.example>\r\n"
		"RCPT TO:<good1@dest.example>\r\nRCPT TO:<bad1@dest.example>\r\n"
		"RCPT TO:<good2@dest.example>\r\nDATA\r\nx\r\n.\r\n");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(tcli_reply(&c), want[i]);
	{
		struct tmsg m;
		char id[SG_MAIL_ID_LEN + 1];

		tid_from_reply(&c, id);
		tmsg_load(&T, id, &m);
		assert_int_equal(m.env.nrcpts, 2);
		assert_string_equal(m.env.rcpts[0].addr, "good1@dest.example");
		assert_string_equal(m.env.rcpts[1].addr, "good2@dest.example");
		tmsg_free(&m);
	}
	tcli_close(&c);
}

static void test_disconnect_while_probing(void **state)
{
	struct tcli c;

	(void)state;
	start(SG_MODE_STANDALONE);
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	tcli_send(&c, "RCPT TO:<slow@dest.example>\r\n");
	tcli_close(&c);
	/* the answer arrives for a session that is gone: nothing happens */
	usleep(1800 * 1000);
	tcli_open(&c, T.port);
	assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	tcli_close(&c);
}

static void test_postfix_mode_no_probe(void **state)
{
	struct tcli c;

	(void)state;
	tsrv_set(&T, "my_networks", "127.0.0.0/8");
	start(SG_MODE_POSTFIX);
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<bad@dest.example>"), 250);
	assert_int_equal(relay_rcpts(&R), 0);
	tcli_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probe_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_550_and_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_450_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_probes_keep_order, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_while_probing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_postfix_mode_no_probe, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	OPENSSL_init_ssl(0, NULL);
	sg_log_init("test_smtp_verify", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
