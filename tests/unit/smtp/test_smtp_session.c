/*
 * test_smtp_session.c - the SMTP listener end to end over TCP (F-FLOW-1,
 * F-FLOW-5, F-FLOW-6, F-ADM-5): a real smtp_server on 127.0.0.1:<free port>
 * with a temporary spool, driven by a small client. Each test starts its own
 * server (setup) and stops it (teardown).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "smtp_test.h"
#include "smtp/smtp_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

static struct tsrv T;

static int setup(void **state)
{
	(void)state;
	tsrv_init(&T);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	spool_test_fail_after(0, 0);
	tsrv_done(&T);
	return 0;
}

static void start(void)
{
	struct tsrv_opts o = {0};

	tsrv_start(&T, &o);
}

/* envelope - EHLO, MAIL, RCPT (each must be 250) and DATA (354). */
static void envelope(struct tcli *c, const char *from, const char *to)
{
	char line[512];

	tcli_ehlo(c);
	snprintf(line, sizeof(line), "MAIL FROM:<%s>", from);
	assert_int_equal(tcli_cmd(c, line), 250);
	snprintf(line, sizeof(line), "RCPT TO:<%s>", to);
	assert_int_equal(tcli_cmd(c, line), 250);
	assert_int_equal(tcli_cmd(c, "DATA"), 354);
}

static bool last_has(const struct tcli *c, const char *s)
{
	return strstr(c->last, s) != NULL;
}

/* send_message - a whole transaction; returns the final reply code. */
static int send_message(struct tcli *c, const char *raw_data)
{
	envelope(c, "sender@test.example", "rcpt@dest.example");
	tcli_send(c, "%s", raw_data);
	return tcli_reply(c);
}

static void test_ehlo_capabilities(void **state)
{
	struct tcli c;

	(void)state;
	start();
	tcli_open(&c, T.port);
	assert_true(last_has(&c, "220 mx.test.example ESMTP"));
	assert_int_equal(tcli_cmd(&c, "EHLO client.test.example"), 250);
	assert_true(last_has(&c, "250-mx.test.example"));
	assert_true(last_has(&c, "PIPELINING"));
	assert_true(last_has(&c, "SIZE 10240000"));
	assert_true(last_has(&c, "8BITMIME"));
	assert_true(last_has(&c, "ENHANCEDSTATUSCODES"));
	assert_true(last_has(&c, "SMTPUTF8"));
	assert_true(last_has(&c, "DSN"));
	/* no certificate configured: no STARTTLS, and the verb is refused */
	assert_false(last_has(&c, "STARTTLS"));
	assert_int_equal(tcli_cmd(&c, "STARTTLS"), 502);
	assert_int_equal(tcli_cmd(&c, "HELO client.test.example"), 250);
	assert_int_equal(tcli_cmd(&c, "QUIT"), 221);
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
}

static void test_transaction_byte_exact(void **state)
{
	static const char body[] = "From: a@test.example\r\nSubject: hi\r\n\r\n"
		"line 1\r\n\r\n  spaced\t tab\r\nlast\r\n";
	struct tcli c;
	struct tmsg m;
	char id[SG_MAIL_ID_LEN + 1];
	const char *b;
	size_t blen;
	char want_id[64];

	(void)state;
	start();
	tcli_open(&c, T.port);
	envelope(&c, "sender@test.example", "rcpt@dest.example");
	tcli_send(&c, "%s.\r\n", body);
	assert_int_equal(tcli_reply(&c), 250);
	assert_true(last_has(&c, "250 2.0.0 Ok: queued as "));
	tid_from_reply(&c, id);
	/* on_queued ran with this ID, after the file was in incoming/ */
	assert_int_equal(T.nqueued, 1);
	assert_string_equal(T.queued[0], id);
	assert_true(T.queued_file_seen);
	assert_int_equal(tsrv_count(&T, "incoming"), 1);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);

	tmsg_load(&T, id, &m);
	assert_string_equal(m.env.id, id);
	assert_string_equal(m.env.sender, "sender@test.example");
	assert_int_equal(m.env.nrcpts, 1);
	assert_string_equal(m.env.rcpts[0].addr, "rcpt@dest.example");
	assert_null(m.env.rcpts[0].orcpt);
	assert_int_equal(m.env.rcpts[0].notify, 0);
	assert_string_equal(m.env.client_addr, "127.0.0.1");
	assert_string_equal(m.env.client_helo, "client.test.example");
	assert_int_equal(m.env.kind, SPOOL_KIND_MESSAGE);
	assert_false(m.env.smtputf8);
	assert_false(m.env.body_8bit);
	assert_true(m.env.arrival > 0);
	b = tmsg_body_after_received(&m, &blen);
	assert_int_equal(blen, strlen(body));
	assert_memory_equal(b, body, blen);
	snprintf(want_id, sizeof(want_id), "with ESMTP id %s", id);
	assert_non_null(strstr(m.body, want_id));
	assert_non_null(strstr(m.body, "for <rcpt@dest.example>"));
	tmsg_free(&m);

	/* a second transaction on the same connection gets a new ID */
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send(&c, "x\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	assert_false(last_has(&c, id));
	assert_int_equal(tsrv_count(&T, "incoming"), 2);
	tcli_close(&c);
}

static void test_durable_before_250(void **state)
{
	struct tcli c;
	char id[SG_MAIL_ID_LEN + 1];
	char path[512], rel[64];
	struct stat st;

	(void)state;
	start();
	tcli_open(&c, T.port);
	assert_int_equal(send_message(&c, "Subject: d\r\n\r\nbody\r\n.\r\n"), 250);
	tid_from_reply(&c, id);
	/* the moment the client has the 250, the committed file is in incoming/ */
	snprintf(rel, sizeof(rel), "spool/incoming/%s", id);
	tsrv_path(&T, rel, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_true(T.queued_file_seen);
	tcli_close(&c);
}

/* Every spool I/O step of a commit may fail: a 250 is only ever sent for a
 * file that is complete in incoming/, and a failure leaves nothing behind. */
static void test_io_failure_never_acknowledged(void **state)
{
	struct tcli c;
	unsigned n, failures = 0, before;

	(void)state;
	start();
	tcli_open(&c, T.port);
	for (n = 1; n <= 8; n++) {
		int code;

		before = tsrv_count(&T, "incoming");
		envelope(&c, "sender@test.example", "rcpt@dest.example");
		spool_test_fail_after(n, EIO);
		tcli_send(&c, "Subject: io %u\r\n\r\nbody\r\n.\r\n", n);
		code = tcli_reply(&c);
		spool_test_fail_after(0, 0);
		if (code == 250) {
			char id[SG_MAIL_ID_LEN + 1];
			struct tmsg m;

			tid_from_reply(&c, id);
			tmsg_load(&T, id, &m); /* complete and verifiable */
			tmsg_free(&m);
			assert_int_equal(tsrv_count(&T, "incoming"), before + 1);
		} else {
			assert_int_equal(code, 451);
			assert_true(last_has(&c, "4.3.0"));
			assert_int_equal(tsrv_count(&T, "incoming"), before);
			failures++;
		}
		assert_int_equal(tsrv_count(&T, "tmp"), 0);
	}
	/* write, fsync, rename and directory fsync at least */
	assert_true(failures >= 3);
	tcli_close(&c);
}

static void test_disk_full_452(void **state)
{
	struct tcli c;
	char *big;
	size_t i;

	(void)state;
	start();
	tcli_open(&c, T.port);
	/* the first I/O step (the first 64 KiB chunk of a big body) fails */
	envelope(&c, "sender@test.example", "rcpt@dest.example");
	spool_test_fail_after(1, ENOSPC);
	big = malloc(300 * 1024 + 1);
	assert_non_null(big);
	for (i = 0; i < 300 * 1024; i++)
		big[i] = (i % 100 == 98) ? '\r' : (i % 100 == 99) ? '\n' : 'a';
	big[300 * 1024] = '\0';
	tcli_send(&c, "%s.\r\n", big);
	free(big);
	assert_int_equal(tcli_reply(&c), 452);
	assert_true(last_has(&c, "452 4.3.1"));
	assert_int_equal(tsrv_count(&T, "incoming"), 0);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
	assert_int_equal(T.nqueued, 0);
	/* disk full at DATA time (creating the file) */
	spool_test_fail_after(0, 0);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r@dest.example>"), 250);
	spool_test_fail_after(1, ENOSPC);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send(&c, "small\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 452);
	assert_int_equal(tsrv_count(&T, "incoming"), 0);
	/* space again: the next message is accepted */
	spool_test_fail_after(0, 0);
	assert_int_equal(send_message(&c, "ok\r\n.\r\n"), 250);
	assert_int_equal(tsrv_count(&T, "incoming"), 1);
	tcli_close(&c);
}

static void test_store_down_451(void **state)
{
	struct tcli c;

	(void)state;
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	pthread_mutex_lock(&T.mu);
	T.store_down = true;
	pthread_mutex_unlock(&T.mu);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 451);
	assert_true(last_has(&c, "451 4.3.0"));
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r@dest.example>"), 503);
	pthread_mutex_lock(&T.mu);
	T.store_down = false;
	T.no_settings = true;
	pthread_mutex_unlock(&T.mu);
	/* no settings snapshot either: also 451 */
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 451);
	pthread_mutex_lock(&T.mu);
	T.no_settings = false;
	pthread_mutex_unlock(&T.mu);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 250);
	assert_int_equal(tsrv_count(&T, "incoming"), 0);
	tcli_close(&c);
}

static void test_dot_unstuffing(void **state)
{
	struct tcli c;
	struct tmsg m;
	char id[SG_MAIL_ID_LEN + 1];
	const char *b;
	size_t blen;
	static const char want[] = "Subject: dots\r\n\r\n.leading\r\n.\r\n..two\r\n"
		"mid.dle\r\n";

	(void)state;
	start();
	tcli_open(&c, T.port);
	assert_int_equal(send_message(&c, "Subject: dots\r\n\r\n..leading\r\n..\r\n"
		"...two\r\nmid.dle\r\n.\r\n"), 250);
	tid_from_reply(&c, id);
	tmsg_load(&T, id, &m);
	b = tmsg_body_after_received(&m, &blen);
	assert_int_equal(blen, strlen(want));
	assert_memory_equal(b, want, blen);
	tmsg_free(&m);
	tcli_close(&c);
}

static void test_pipelining(void **state)
{
	struct tcli c;
	static const int want[] = {250, 250, 250, 550, 250, 354, 250, 250, 221};
	size_t i;

	(void)state;
	tsrv_set(&T, "my_networks", "192.0.2.0/24");
	tsrv_set(&T, "relay_domains", "dest.example");
	start();
	tcli_open(&c, T.port);
	/* everything in one write, as a PIPELINING client does (RFC 2920) */
	tcli_send(&c, "EHLO client.test.example\r\nMAIL FROM:<s@test.example>\r\n"
		"RCPT TO:<a@dest.example>\r\nRCPT TO:<b@elsewhere.example>\r\n"
		"RCPT TO:<c@dest.example>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\n"
		"NOOP\r\nQUIT\r\n");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int code = tcli_reply(&c);

		if (want[i] == 550)
			assert_true(code == 554 || code == 550);
		else
			assert_int_equal(code, want[i]);
	}
	assert_int_equal(tsrv_count(&T, "incoming"), 1);
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
}

static void test_bad_sequence(void **state)
{
	struct tcli c;

	(void)state;
	start();
	tcli_open(&c, T.port);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 503);
	assert_true(last_has(&c, "5.5.1"));
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r@dest.example>"), 503);
	assert_int_equal(tcli_cmd(&c, "DATA"), 503);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 503);
	assert_int_equal(tcli_cmd(&c, "DATA"), 554); /* no valid recipients */
	assert_int_equal(tcli_cmd(&c, "RSET"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r@dest.example>"), 503);
	assert_int_equal(tcli_cmd(&c, "FOO bar"), 500);
	assert_int_equal(tcli_cmd(&c, "EXPN list"), 502);
	assert_int_equal(tcli_cmd(&c, "VRFY someone"), 252);
	assert_int_equal(tcli_cmd(&c, "EHLO"), 501);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:missing-brackets@x.example"), 501);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example> FOO=1"), 555);
	tcli_close(&c);
}

static void test_too_many_errors(void **state)
{
	struct tcli c;
	struct tsrv_opts o = {0};

	(void)state;
	o.max_errors = 3;
	tsrv_start(&T, &o);
	tcli_open(&c, T.port);
	assert_int_equal(tcli_cmd(&c, "BOGUS 1"), 500);
	assert_int_equal(tcli_cmd(&c, "BOGUS 2"), 500);
	tcli_send(&c, "BOGUS 3\r\n");
	assert_int_equal(tcli_reply(&c), 500);
	assert_int_equal(tcli_reply(&c), 421);
	assert_true(last_has(&c, "too many errors"));
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
}

static void test_junk_command_limit(void **state)
{
	struct tcli c;
	struct tsrv_opts o = {0};
	unsigned i;
	int code = 0;

	(void)state;
	o.max_errors = 5;
	tsrv_start(&T, &o);
	tcli_open(&c, T.port);
	for (i = 0; i < SMTP_JUNK_MAX; i++)
		assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	/* past the junk limit each NOOP counts as an error: 421 after 5 */
	for (i = 0; i < 10; i++) {
		code = tcli_cmd(&c, "NOOP");
		if (code != 250)
			break;
	}
	assert_int_equal(code, 421);
	assert_int_equal(i, 4);
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
}

static void test_line_too_long(void **state)
{
	struct tcli c;
	char line[700];

	(void)state;
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	/* 510 octets + CRLF = 512 is the limit (RFC 5321 4.5.3.1.4) */
	memset(line, 0, sizeof(line));
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', 505);
	assert_int_equal(tcli_cmd(&c, line), 250);
	line[510] = 'x';
	assert_int_equal(tcli_cmd(&c, line), 500);
	assert_true(last_has(&c, "500 5.5.2"));
	assert_true(last_has(&c, "too long"));
	/* the session goes on */
	assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	tcli_close(&c);
}

static void test_ten_mb_command_line(void **state)
{
	struct tcli c;
	size_t len = 10 * 1024 * 1024;
	char *big = malloc(len);

	(void)state;
	assert_non_null(big);
	memset(big, 'A', len);
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	tcli_send_raw(&c, "NOOP ", 5);
	tcli_send_raw(&c, big, len);
	tcli_send_raw(&c, "\r\n", 2);
	assert_int_equal(tcli_reply(&c), 500);
	assert_true(last_has(&c, "too long"));
	assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	/* and a 10 MB line inside DATA: streamed, refused at the end */
	tsrv_set(&T, "before_filter_size", "20M");
	envelope(&c, "s@test.example", "r@dest.example");
	tcli_send_raw(&c, "Subject: x\r\n\r\n", 14);
	tcli_send_raw(&c, big, len);
	tcli_send_raw(&c, "\r\n.\r\n", 5);
	assert_int_equal(tcli_reply(&c), 500);
	assert_true(last_has(&c, "500 5.5.2"));
	assert_true(last_has(&c, "line too long"));
	assert_int_equal(tsrv_count(&T, "incoming"), 0);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
	assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	free(big);
	tcli_close(&c);
}

static void test_data_line_limit(void **state)
{
	struct tcli c;
	char *line = malloc(SMTP_TEXT_LINE_MAX);

	(void)state;
	assert_non_null(line);
	start();
	tcli_open(&c, T.port);
	/* Lines over RFC 5321's 1000 octets are accepted (real mail has them);
	 * SMTP_TEXT_LINE_MAX octets incl. CRLF is the limit. */
	memset(line, 'y', SMTP_TEXT_LINE_MAX);
	envelope(&c, "s@test.example", "r@dest.example");
	tcli_send(&c, "Subject: l\r\n\r\n");
	tcli_send_raw(&c, line, 5000);
	tcli_send(&c, "\r\n");
	tcli_send_raw(&c, line, SMTP_TEXT_LINE_MAX - 2);
	tcli_send(&c, "\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	envelope(&c, "s@test.example", "r@dest.example");
	tcli_send(&c, "Subject: l\r\n\r\n");
	tcli_send_raw(&c, line, SMTP_TEXT_LINE_MAX - 1);
	tcli_send(&c, "\r\nmore\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 500);
	assert_true(last_has(&c, "500 5.5.2"));
	assert_int_equal(tsrv_count(&T, "incoming"), 1);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
	assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	tcli_close(&c);
	free(line);
}

static void test_nul_bytes(void **state)
{
	struct tcli c;

	(void)state;
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	tcli_send_raw(&c, "NO\0OP\r\n", 7);
	assert_int_equal(tcli_reply(&c), 500);
	assert_true(last_has(&c, "NUL"));
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send_raw(&c, "Subject: n\r\n\r\na\0b\r\n.\r\n", 22);
	assert_int_equal(tcli_reply(&c), 554);
	assert_true(last_has(&c, "554 5.6.0"));
	assert_int_equal(tsrv_count(&T, "incoming"), 0);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
	tcli_close(&c);
}

static void test_bare_lf_cr(void **state)
{
	struct tcli c;
	struct tmsg m;
	char id[SG_MAIL_ID_LEN + 1];
	const char *b;
	size_t blen;
	static const char want[] = "Subject: lf\r\n\r\na\r\nb\rc\r\n\r\n.\r\n"
		"MAIL FROM:<smuggled@x.example>\r\n";

	(void)state;
	start();
	tcli_open(&c, T.port);
	/* bare LF ends a command line; a bare CR inside one is refused */
	tcli_send(&c, "EHLO client.test.example\n");
	assert_int_equal(tcli_reply(&c), 250);
	assert_int_equal(tcli_cmd(&c, "NOOP\rX"), 500);
	assert_true(last_has(&c, "bare <CR>"));
	/* in DATA: bare LF becomes CRLF, bare CR stays content, and
	 * "<LF>.<LF>" / "<LF>.<CR><LF>" are not the end of data (smuggling) */
	envelope(&c, "s@test.example", "r@dest.example");
	tcli_send(&c, "Subject: lf\r\n\r\na\nb\rc\r\n\n..\n"
		"MAIL FROM:<smuggled@x.example>\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	tid_from_reply(&c, id);
	tmsg_load(&T, id, &m);
	b = tmsg_body_after_received(&m, &blen);
	assert_int_equal(blen, strlen(want));
	assert_memory_equal(b, want, blen);
	tmsg_free(&m);
	assert_int_equal(tsrv_count(&T, "incoming"), 1);
	assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	tcli_close(&c);
}

static void test_invalid_utf8(void **state)
{
	struct tcli c;
	struct tmsg m;
	char id[SG_MAIL_ID_LEN + 1];

	(void)state;
	start();
	tcli_open(&c, T.port);
	assert_int_equal(tcli_cmd(&c, "EHLO bad\xff\xfe.example"), 501);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<j\xc3\xb6rg@test.example>"), 553);
	assert_true(last_has(&c, "5.6.7"));
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<j\xff\xfe@test.example> SMTPUTF8"), 553);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<j\xc0\xaf@test.example> SMTPUTF8"), 553);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<j\xc3\xb6rg@test.example> SMTPUTF8 "
		"BODY=8BITMIME"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<\xed\xa0\x80@dest.example>"), 553);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<m\xc3\xbcller@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	/* invalid UTF-8 in the body is content: stored byte for byte */
	tcli_send(&c, "Subject: u\r\n\r\nbad \xff\xfe bytes\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	tid_from_reply(&c, id);
	tmsg_load(&T, id, &m);
	assert_true(m.env.smtputf8);
	assert_true(m.env.body_8bit);
	assert_string_equal(m.env.sender, "j\xc3\xb6rg@test.example");
	assert_string_equal(m.env.rcpts[0].addr, "m\xc3\xbcller@dest.example");
	assert_non_null(strstr(m.body, "bad \xff\xfe bytes\r\n"));
	assert_non_null(strstr(m.body, "with UTF8SMTP id"));
	tmsg_free(&m);
	tcli_close(&c);
}

static void test_dsn_params_stored(void **state)
{
	struct tcli c;
	struct tmsg m;
	char id[SG_MAIL_ID_LEN + 1];

	(void)state;
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example> RET=HDRS "
		"ENVID=QQ314159+2Bx"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<a@dest.example> NOTIFY=SUCCESS,DELAY "
		"ORCPT=rfc822;a+2Bold@dest.example"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<b@dest.example> NOTIFY=NEVER"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<c@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<d@dest.example> NOTIFY=NEVER,SUCCESS"),
		501);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<d@dest.example> ORCPT=nosemicolon"), 501);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send(&c, "Subject: dsn\r\n\r\nx\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	tid_from_reply(&c, id);
	tmsg_load(&T, id, &m);
	assert_true(m.env.dsn_ret_hdrs);
	assert_string_equal(m.env.dsn_envid, "QQ314159+2Bx");
	assert_int_equal(m.env.nrcpts, 3);
	assert_int_equal(m.env.rcpts[0].notify, SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_DELAY);
	assert_string_equal(m.env.rcpts[0].orcpt, "rfc822;a+2Bold@dest.example");
	assert_int_equal(m.env.rcpts[1].notify, SPOOL_NOTIFY_NEVER);
	assert_null(m.env.rcpts[1].orcpt);
	assert_int_equal(m.env.rcpts[2].notify, 0);
	tmsg_free(&m);
	/* RET=FULL is not HDRS */
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example> RET=FULL"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<a@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send(&c, "x\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	tid_from_reply(&c, id);
	tmsg_load(&T, id, &m);
	assert_false(m.env.dsn_ret_hdrs);
	assert_null(m.env.dsn_envid);
	tmsg_free(&m);
	tcli_close(&c);
}

static void test_size_limit_at_mail(void **state)
{
	struct tcli c;

	(void)state;
	tsrv_set(&T, "before_filter_size", "2000");
	start();
	tcli_open(&c, T.port);
	assert_int_equal(tcli_cmd(&c, "EHLO client.test.example"), 250);
	assert_true(last_has(&c, "SIZE 2000"));
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example> SIZE=2001"), 552);
	assert_true(last_has(&c, "552 5.3.4"));
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example> SIZE="
		"99999999999999999999"), 552);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example> SIZE=-1"), 501);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example> SIZE=2000"), 250);
	tcli_close(&c);
}

/* make_body - size octets of message in 80-octet lines, then ".\r\n". */
static char *make_body(size_t size)
{
	char *b = malloc(size + 4);
	size_t off = 0;

	assert_non_null(b);
	while (off < size) {
		size_t line = size - off >= 160 || size - off == 80 ? 80 : size - off;
		size_t k;

		for (k = 0; k + 2 < line; k++)
			b[off + k] = 'z';
		b[off + line - 2] = '\r';
		b[off + line - 1] = '\n';
		off += line;
	}
	memcpy(b + size, ".\r\n", 4);
	return b;
}

static void test_size_limit_at_end_of_data(void **state)
{
	struct tcli c;
	char *body;

	(void)state;
	tsrv_set(&T, "before_filter_size", "2000");
	start();
	tcli_open(&c, T.port);
	/* exactly 2000 octets of message (without SIZE=): accepted */
	body = make_body(2000);
	assert_int_equal(send_message(&c, body), 250);
	free(body);
	/* 2001 octets: 552 at the end of DATA, nothing spooled */
	body = make_body(2001);
	assert_int_equal(send_message(&c, body), 552);
	free(body);
	assert_true(last_has(&c, "552 5.3.4"));
	assert_int_equal(tsrv_count(&T, "incoming"), 1);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
	/* far over it: the rest is read and discarded, the session goes on */
	body = make_body(200000);
	assert_int_equal(send_message(&c, body), 552);
	free(body);
	assert_int_equal(tcli_cmd(&c, "NOOP"), 250);
	tcli_close(&c);
}

static void test_hop_count(void **state)
{
	struct tcli c;

	(void)state;
	tsrv_set(&T, "max_received_headers", "3");
	start();
	tcli_open(&c, T.port);
	assert_int_equal(send_message(&c, "Received: from a\r\nReceived: from b\r\n"
		"received : from c\r\nSubject: 3 hops\r\n\r\nReceived: in body\r\n.\r\n"), 250);
	assert_int_equal(send_message(&c, "Received: from a\r\nReceived: from b\r\n"
		"Received: from c\r\nRECEIVED: from d\r\n\tcontinued\r\nSubject: 4\r\n\r\n"
		"x\r\n.\r\n"), 554);
	assert_true(last_has(&c, "554 5.4.6"));
	assert_int_equal(tsrv_count(&T, "incoming"), 1);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
	tcli_close(&c);
}

static void test_max_recipients(void **state)
{
	struct tcli c;
	struct tmsg m;
	char id[SG_MAIL_ID_LEN + 1];

	(void)state;
	tsrv_set(&T, "max_recipients", "3");
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r1@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r2@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r3@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r4@dest.example>"), 452);
	assert_true(last_has(&c, "452 4.5.3"));
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send(&c, "x\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	tid_from_reply(&c, id);
	tmsg_load(&T, id, &m);
	assert_int_equal(m.env.nrcpts, 3);
	tmsg_free(&m);
	tcli_close(&c);
}

struct flood {
	int fd;
	unsigned n;
	unsigned sent;
};

static void *flood_thread(void *arg)
{
	struct flood *f = arg;
	char chunk[64 * 64];
	unsigned i;

	for (i = 0; i < f->n; i += 64) {
		size_t len = 0;
		unsigned k;

		for (k = 0; k < 64; k++)
			len += (size_t)snprintf(chunk + len, sizeof(chunk) - len,
				"RCPT TO:<u%u@dest.example>\r\n", i + k);
		if (send(f->fd, chunk, len, MSG_NOSIGNAL) != (ssize_t)len)
			break; /* the server closed the connection */
		f->sent = i + 64;
	}
	return NULL;
}

static void test_100k_recipients(void **state)
{
	struct tcli c;
	struct flood f;
	pthread_t thr;
	unsigned ok = 0, full = 0, other = 0;
	int code;

	(void)state;
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 250);
	f.fd = c.fd;
	f.n = 100000;
	f.sent = 0;
	assert_int_equal(pthread_create(&thr, NULL, flood_thread, &f), 0);
	while ((code = tcli_reply(&c)) > 0) {
		if (code == 250)
			ok++;
		else if (code == 452)
			full++;
		else if (code == 421)
			break;
		else
			other++;
	}
	shutdown(c.fd, SHUT_RDWR);
	pthread_join(thr, NULL);
	/* 1000 (max_recipients) accepted, then 452s, then the client is cut off
	 * after the overshoot and error limits: a clear reply, no crash */
	assert_int_equal(ok, 1000);
	assert_true(full >= 1000);
	assert_int_equal(other, 0);
	assert_int_equal(code, 421);
	tcli_close(&c);
	/* the server still serves others */
	tcli_open(&c, T.port);
	assert_int_equal(send_message(&c, "x\r\n.\r\n"), 250);
	tcli_close(&c);
}

static void test_idle_timeout(void **state)
{
	struct tcli c;
	struct tsrv_opts o = {0};
	int64_t t0;

	(void)state;
	o.idle_timeout_ms = 300;
	tsrv_start(&T, &o);
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	t0 = sg_mono_ms();
	assert_int_equal(tcli_reply(&c), 421);
	assert_true(last_has(&c, "421 4.4.2"));
	assert_true(sg_mono_ms() - t0 >= 250);
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
	/* also in the middle of DATA: the partial message is discarded */
	tcli_open(&c, T.port);
	envelope(&c, "s@test.example", "r@dest.example");
	tcli_send(&c, "Subject: partial\r\n");
	assert_int_equal(tcli_reply(&c), 421);
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
	assert_int_equal(tsrv_count(&T, "incoming"), 0);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
}

static void test_max_sessions(void **state)
{
	struct tcli a, b, c;
	struct tsrv_opts o = {0};

	(void)state;
	o.max_sessions = 2;
	tsrv_start(&T, &o);
	tcli_open(&a, T.port);
	tcli_open(&b, T.port);
	tcli_connect(&c, "127.0.0.1", T.port);
	assert_int_equal(tcli_reply(&c), 421);
	assert_true(last_has(&c, "421 4.7.0"));
	tcli_close(&c);
	assert_int_equal(tcli_cmd(&a, "QUIT"), 221);
	assert_true(tcli_is_closed(&a));
	tcli_close(&a);
	/* the server frees the session once it sees our close */
	{
		int64_t end = sg_mono_ms() + 3000;

		while (smtp_server_sessions(T.srv) > 1 && sg_mono_ms() < end)
			usleep(10000);
	}
	assert_int_equal(smtp_server_sessions(T.srv), 1);
	tcli_open(&c, T.port); /* a slot is free again */
	tcli_close(&c);
	tcli_close(&b);
}

static void test_relay_ipv4(void **state)
{
	struct tcli c;

	(void)state;
	tsrv_set(&T, "relay_domains", "dest.example");
	tsrv_set(&T, "my_networks", "192.0.2.0/24 10.0.0.0/8");
	start();
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	/* outside -> outside: relay denied */
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@other.example>"), 554);
	assert_true(last_has(&c, "5.7.1"));
	assert_true(last_has(&c, "Relay access denied"));
	/* outside -> relay domain, any case, and its subdomains (default yes) */
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@DEST.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@sub.dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@notdest.example>"), 554);
	tcli_close(&c);

	tsrv_set(&T, "relay_domains_match_subdomains", "no");
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@sub.dest.example>"), 554);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@dest.example>"), 250);
	tcli_close(&c);

	/* a client in my_networks may relay anywhere */
	tsrv_set(&T, "my_networks", "127.0.0.0/8");
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@inside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@other.example>"), 250);
	tcli_close(&c);
	tsrv_set(&T, "my_networks", "127.0.0.1");
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@inside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@other.example>"), 250);
	tcli_close(&c);
}

static void test_relay_ipv6(void **state)
{
	struct tcli c;
	struct tsrv_opts o = {0};

	(void)state;
	o.listen_host = "::1";
	tsrv_set(&T, "relay_domains", "dest.example");
	tsrv_set(&T, "my_networks", "127.0.0.0/8 2001:db8::/32");
	tsrv_start(&T, &o);
	tcli_connect(&c, "::1", T.port);
	assert_int_equal(tcli_reply(&c), 220);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@other.example>"), 554);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@dest.example>"), 250);
	tcli_close(&c);
	tsrv_set(&T, "my_networks", "127.0.0.0/8 ::/127");
	tcli_connect(&c, "::1", T.port);
	assert_int_equal(tcli_reply(&c), 220);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@inside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@other.example>"), 250);
	assert_int_equal(send_message(&c, "x\r\n.\r\n"), 250);
	tcli_close(&c);
	{
		struct tmsg m;
		char id[SG_MAIL_ID_LEN + 1];

		tid_from_reply(&c, id);
		tmsg_load(&T, id, &m);
		assert_string_equal(m.env.client_addr, "::1");
		tmsg_free(&m);
	}
}

static void test_postfix_mode(void **state)
{
	struct tcli c;
	struct tsrv_opts o = {0};

	(void)state;
	o.mode = SG_MODE_POSTFIX;
	tsrv_set(&T, "relay_domains", "dest.example");
	tsrv_start(&T, &o);
	/* Postfix did the relay checks: any recipient is taken */
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@outside.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<x@other.example>"), 250);
	tcli_close(&c);
	/* but only from my_networks (the content filter port is not public) */
	tsrv_set(&T, "my_networks", "192.0.2.0/24");
	tcli_connect(&c, "127.0.0.1", T.port);
	assert_int_equal(tcli_reply(&c), 554);
	assert_true(last_has(&c, "5.7.1"));
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
}

static void test_starttls(void **state)
{
	struct tcli c;
	struct tsrv_opts o = {0};
	struct tmsg m;
	char id[SG_MAIL_ID_LEN + 1];

	(void)state;
	o.with_tls = true;
	tsrv_start(&T, &o);
	tcli_open(&c, T.port);
	assert_int_equal(tcli_cmd(&c, "EHLO client.test.example"), 250);
	assert_true(last_has(&c, "STARTTLS"));
	assert_int_equal(tcli_cmd(&c, "STARTTLS extra"), 501);
	/* plaintext pipelined after STARTTLS must be discarded (RFC 3207 5) */
	tcli_send(&c, "STARTTLS\r\nMAIL FROM:<injected@x.example>\r\n");
	assert_int_equal(tcli_reply(&c), 220);
	{
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		SSL *ssl = SSL_new(ctx);

		SSL_set_fd(ssl, c.fd);
		assert_int_equal(SSL_connect(ssl), 1);
		c.ssl = ssl;
		SSL_CTX_free(ctx); /* ssl keeps a reference */
	}
	/* state was reset: MAIL needs a new EHLO, and no injected MAIL is there */
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 503);
	assert_int_equal(tcli_cmd(&c, "EHLO client.test.example"), 250);
	assert_false(last_has(&c, "STARTTLS"));
	assert_int_equal(tcli_cmd(&c, "STARTTLS"), 503);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<s@test.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r@dest.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "DATA"), 354);
	tcli_send(&c, "Subject: tls\r\n\r\nsecret\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 250);
	tid_from_reply(&c, id);
	tmsg_load(&T, id, &m);
	assert_non_null(strstr(m.body, "with ESMTPS id"));
	assert_string_equal(m.env.sender, "s@test.example");
	tmsg_free(&m);
	assert_int_equal(tcli_cmd(&c, "QUIT"), 221);
	tcli_close(&c);
}

static void test_stop_during_data(void **state)
{
	struct tcli c;

	(void)state;
	start();
	tcli_open(&c, T.port);
	envelope(&c, "s@test.example", "r@dest.example");
	tcli_send(&c, "Subject: unfinished\r\n\r\nhalf");
	smtp_server_stop(T.srv);
	assert_int_equal(tcli_reply(&c), 421);
	assert_true(last_has(&c, "421 4.3.2"));
	assert_true(tcli_is_closed(&c));
	pthread_join(T.thr, NULL);
	T.running = false;
	assert_int_equal(smtp_server_sessions(T.srv), 0);
	assert_int_equal(tsrv_count(&T, "incoming"), 0);
	assert_int_equal(tsrv_count(&T, "tmp"), 0);
	assert_int_equal(T.nqueued, 0);
	tcli_close(&c);
}

static void test_tls_garbage_handshake(void **state)
{
	struct tcli c;
	struct tsrv_opts o = {0};
	int64_t end;

	(void)state;
	o.with_tls = true;
	tsrv_start(&T, &o);
	tcli_open(&c, T.port);
	tcli_ehlo(&c);
	assert_int_equal(tcli_cmd(&c, "STARTTLS"), 220);
	/* not a ClientHello: the server drops the connection, nothing else */
	tcli_send(&c, "EHLO plain.text.example\r\nMAIL FROM:<x@y.example>\r\n");
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
	end = sg_mono_ms() + 3000;
	while (smtp_server_sessions(T.srv) > 0 && sg_mono_ms() < end)
		usleep(10000);
	assert_int_equal(smtp_server_sessions(T.srv), 0);
}

/* F-FLOW-4: every log line about a message carries its ID (NOQUEUE before
 * one exists). stderr is captured into a file for the test. */
static void test_log_lines_carry_id(void **state)
{
	struct tcli c;
	char path[512], id1[SG_MAIL_ID_LEN + 1], id2[SG_MAIL_ID_LEN + 1];
	char *log = NULL, *line, *next;
	size_t loglen;
	struct sg_error err;
	int fd, saved;
	bool seen_ok = false, seen_rej = false, seen_noqueue = false;

	(void)state;
	tsrv_set(&T, "max_received_headers", "1");
	tsrv_set(&T, "relay_domains", "dest.example");
	tsrv_set(&T, "my_networks", "192.0.2.0/24");
	tsrv_path(&T, "stderr.log", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	sg_log_set_level(SG_LOG_INFO);
	start();
	tcli_open(&c, T.port);
	assert_int_equal(send_message(&c, "Subject: ok\r\n\r\nx\r\n.\r\n"), 250);
	tid_from_reply(&c, id1);
	envelope(&c, "sender@test.example", "rcpt@dest.example");
	tcli_send(&c, "Received: a\r\nReceived: b\r\n\r\nx\r\n.\r\n");
	assert_int_equal(tcli_reply(&c), 554);
	assert_int_equal(tcli_cmd(&c, "MAIL FROM:<sender@test.example>"), 250);
	assert_int_equal(tcli_cmd(&c, "RCPT TO:<r@elsewhere.example>"), 554);
	assert_int_equal(tcli_cmd(&c, "QUIT"), 221);
	assert_true(tcli_is_closed(&c));
	tcli_close(&c);
	smtp_server_stop(T.srv);
	pthread_join(T.thr, NULL);
	T.running = false;
	sg_log_set_level(SG_LOG_WARN);
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (sg_file_read(path, 1 << 20, &log, &loglen, &err) < 0)
		fail_msg("read log: %s", err.msg);
	id2[0] = '\0';
	for (line = log; line != NULL && *line != '\0'; line = next) {
		char want[64];
		char *nl = strchr(line, '\n');

		next = nl != NULL ? nl + 1 : NULL;
		if (nl != NULL)
			*nl = '\0';

		snprintf(want, sizeof(want), "info: %s: from=<sender@test.example>", id1);
		if (strstr(line, want) != NULL)
			seen_ok = true;
		if (strstr(line, "reject: DATA") != NULL) {
			const char *p = strstr(line, "info: ");

			assert_non_null(p);
			sg_strlcpy(id2, p + 6, sizeof(id2));
			assert_true(sg_mail_id_is_valid(id2));
			assert_non_null(strstr(line, "5.4.6"));
			seen_rej = true;
		}
		if (strstr(line, "NOQUEUE: reject: RCPT") != NULL &&
			strstr(line, "to=<r@elsewhere.example>") != NULL)
			seen_noqueue = true;
		/* any line about a message: starts with an ID or NOQUEUE */
		if (strstr(line, "from=<") != NULL || strstr(line, "reject:") != NULL) {
			const char *p = strstr(line, "info: ");
			char idbuf[SG_MAIL_ID_LEN + 1];

			assert_non_null(p);
			sg_strlcpy(idbuf, p + 6, sizeof(idbuf));
			if (!sg_mail_id_is_valid(idbuf) && strncmp(p + 6, "NOQUEUE: ", 9) != 0)
				fail_msg("log line without mail ID: %s", line);
		}
	}
	free(log);
	assert_true(seen_ok);
	assert_true(seen_rej);
	assert_true(seen_noqueue);
	assert_string_not_equal(id1, id2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ehlo_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction_byte_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_before_250, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_failure_never_acknowledged, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_452, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_down_451, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_unstuffing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_junk_command_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ten_mb_command_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_line_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bare_lf_cr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsn_params_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit_at_mail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit_at_end_of_data, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_hop_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_100k_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_ipv4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_postfix_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_during_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_garbage_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_lines_carry_id, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	OPENSSL_init_ssl(0, NULL);
	sg_log_init("test_smtp_session", SG_LOGDEST_STDERR, SG_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
