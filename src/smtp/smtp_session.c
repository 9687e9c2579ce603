/*
 * smtp_session.c - one SMTP server session: the state machine, the command
 * table and its handlers, DATA streaming into the spool, STARTTLS, timeouts,
 * limits and logging.
 *
 * Runs in the loop thread that owns the session (smtp_server.c); never blocks
 * except for the spool commit's fsync (deliberately synchronous: several loop
 * threads give fsync concurrency, and the 250 must follow the fsync anyway).
 * Recipient probes run in smtp_verify.c workers; the session is parked (reads
 * disabled) and the answer comes back by serial through the loop mailbox, so
 * a session freed meanwhile is never touched.
 *
 * RFCs: 5321 (protocol, reply codes), 1869/1870 (EHLO, SIZE), 2920
 * (PIPELINING), 6152 (8BITMIME), 2034/3463 (enhanced codes), 3207 (STARTTLS:
 * state reset, buffered plaintext discarded - CVE-2011-0411), 6531
 * (SMTPUTF8), 3461 (DSN).
 *
 * Invariants: exactly one state setter (smtp_set_state); a 250 after DATA only
 * after spool_writer_commit succeeded; input is never buffered without bound
 * (command lines are capped and discarded when too long, DATA streams through
 * the scanner in chunks, reading stops while replies pile up unread).
 */
#include "smtp_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#define SMTP_CHUNK 16384            /* DATA bytes handled per step */
#define SMTP_INPUT_HIWAT 65536      /* stop reading past this much unprocessed input */
#define SMTP_OUTPUT_MAX 65536       /* stop processing while replies are unread */
#define SMTP_CLOSE_POLL_MS 20
#define SMTP_CLOSE_POLL_MAX 100
#define SMTP_LINGER_MS 1000         /* read-and-discard after our last reply */

_Static_assert(SMTP_NOTIFY_NEVER == SPOOL_NOTIFY_NEVER &&
	SMTP_NOTIFY_SUCCESS == SPOOL_NOTIFY_SUCCESS &&
	SMTP_NOTIFY_FAILURE == SPOOL_NOTIFY_FAILURE &&
	SMTP_NOTIFY_DELAY == SPOOL_NOTIFY_DELAY, "notify flags differ from spool.h");

enum smtp_state {
	SMTP_S_CONNECTED,   /* greeting sent, no HELO/EHLO yet */
	SMTP_S_HELO,        /* greeted, no transaction */
	SMTP_S_MAIL,        /* MAIL accepted */
	SMTP_S_RCPT,        /* at least one RCPT accepted */
	SMTP_S_DATA,        /* receiving the message */
	SMTP_S_TLS,         /* TLS handshake in progress */
	SMTP_S_CLOSING,     /* last reply written, closing when flushed */
};

#define SMTP_M(s) (1u << (s))
#define SMTP_M_ANY (SMTP_M(SMTP_S_CONNECTED) | SMTP_M(SMTP_S_HELO) | \
	SMTP_M(SMTP_S_MAIL) | SMTP_M(SMTP_S_RCPT))

struct smtp_session {
	struct smtp_session *next, *prev;   /* loop's list */
	struct smtp_loop *loop;
	struct smtp_server *srv;
	uint64_t serial;
	char sid[17];
	struct bufferevent *bev;
	enum smtp_state state;
	char client[64];
	char helo[SMTP_DOMAIN_MAX + 1];
	bool esmtp;
	bool tls;
	bool discarding;        /* inside an overlong command line */
	bool parked;            /* waiting for a recipient probe */
	bool out_blocked;       /* replies unread: input processing paused */
	bool lingering;         /* closing: write side shut, draining input */
	unsigned errors;
	unsigned ncommands;
	unsigned njunk;         /* junk commands (SMTP_JUNK_MAX) */
	unsigned rcpt_overshoot; /* RCPTs refused for max_recipients */
	unsigned close_polls;
	struct event *close_timer;
	/* transaction */
	struct mta_settings *settings;      /* snapshot taken at MAIL */
	struct spool_env env;
	struct smtp_rcpt_args pending;      /* RCPT waiting for the probe */
	struct spool_writer *writer;
	struct smtp_data_scan scan;
	uint64_t data_size;
	bool data_too_big;
	struct sg_error data_err;           /* code != OK: spool write failed */
	char mail_id[SG_MAIL_ID_LEN + 1];
};

static void smtp_process(struct smtp_session *s);
static void smtp_close(struct smtp_session *s);
static void smtp_setcb(struct smtp_session *s);

static const char *smtp_state_name(enum smtp_state st)
{
	static const char *const names[] = {"CONNECTED", "HELO", "MAIL", "RCPT", "DATA",
		"TLS", "CLOSING"};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* smtp_set_state - the only way to change the state; traces old -> new. */
static void smtp_set_state(struct smtp_session *s, enum smtp_state st)
{
	sg_trace(SG_TRACE_SMTP, "s=%s state %s -> %s", s->sid, smtp_state_name(s->state),
		smtp_state_name(st));
	s->state = st;
}

static SG_PRINTF(2, 3) void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* smtp_error - a client error reply; too many of them end the session. */
static SG_PRINTF(2, 3) void smtp_error(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	if (++s->errors >= s->srv->conf.max_errors) {
		sg_log_sess(SG_LOG_WARN, s->sid, "too many errors from [%s]", s->client);
		smtp_reply(s, "421 4.7.0 %s Error: too many errors", s->srv->conf.hostname);
		smtp_close(s);
	}
}

/* smtp_tx_reset - forget the transaction (RSET, HELO, end of DATA, close). */
static void smtp_tx_reset(struct smtp_session *s)
{
	spool_writer_abort(&s->writer);
	spool_env_free_fields(&s->env);
	memset(&s->env, 0, sizeof(s->env));
	mta_settings_free(&s->settings);
	s->mail_id[0] = '\0';
	s->rcpt_overshoot = 0;
	s->data_size = 0;
	s->data_too_big = false;
	sg_error_clear(&s->data_err);
}

static void smtp_close_poll(evutil_socket_t fd, short what, void *arg);

/*
 * smtp_try_free - once the last reply left (TLS: also the filter), half-close
 * and linger: keep reading and discarding until the client closes or
 * SMTP_LINGER_MS pass, then free. Closing a socket with unread input makes
 * the kernel send RST, which can destroy our last reply (421 after a flood of
 * pipelined commands) before the client reads it.
 */
static void smtp_try_free(struct smtp_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	size_t pending = evbuffer_get_length(bufferevent_get_output(s->bev));
	struct timeval tv = {0, SMTP_CLOSE_POLL_MS * 1000};

	if (s->lingering) {
		smtp_session_free_now(s);
		return;
	}
	if (under != NULL)
		pending += evbuffer_get_length(bufferevent_get_output(under));
	if (s->close_timer == NULL)
		s->close_timer = evtimer_new(s->loop->base, smtp_close_poll, s);
	if (s->close_timer == NULL) {
		smtp_session_free_now(s);
		return;
	}
	if (pending > 0 && s->close_polls++ < SMTP_CLOSE_POLL_MAX) {
		evtimer_add(s->close_timer, &tv);
		return;
	}
	s->lingering = true;
	(void)shutdown(bufferevent_getfd(under != NULL ? under : s->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(s->bev),
		evbuffer_get_length(bufferevent_get_input(s->bev)));
	bufferevent_enable(s->bev, EV_READ);
	tv.tv_sec = SMTP_LINGER_MS / 1000;
	tv.tv_usec = (SMTP_LINGER_MS % 1000) * 1000;
	evtimer_add(s->close_timer, &tv);
}

static void smtp_close_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	smtp_try_free(arg);
}

/* smtp_close - stop reading; free when the output is flushed. */
static void smtp_close(struct smtp_session *s)
{
	if (s->state == SMTP_S_CLOSING)
		return;
	smtp_tx_reset(s);
	smtp_set_state(s, SMTP_S_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
	/* Never free here: callers still use s after smtp_close returns. The
	 * write callback (output drained) or this timer calls smtp_try_free. */
	if (s->close_timer == NULL)
		s->close_timer = evtimer_new(s->loop->base, smtp_close_poll, s);
	if (s->close_timer != NULL) {
		struct timeval tv = {0, 0};

		evtimer_add(s->close_timer, &tv);
	}
}

void smtp_session_free_now(struct smtp_session *s)
{
	struct smtp_loop *loop = s->loop;

	smtp_tx_reset(s);
	if (s->close_timer != NULL)
		event_free(s->close_timer);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		loop->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	loop->nsessions--;
	__atomic_sub_fetch(&s->srv->nsessions, 1, __ATOMIC_ACQ_REL);
	sg_log_sess(SG_LOG_INFO, s->sid, "disconnect from [%s] commands=%u", s->client,
		s->ncommands);
	free(s);
	if (loop->stopping && loop->nsessions == 0)
		event_base_loopexit(loop->base, NULL);
}

struct smtp_session *smtp_session_next(struct smtp_session *s)
{
	return s->next;
}

void smtp_session_shutdown(struct smtp_session *s)
{
	if (s->state == SMTP_S_CLOSING)
		return;
	if (s->state == SMTP_S_DATA && s->writer != NULL)
		sg_log_mail(SG_LOG_INFO, s->mail_id, "discarded: server shutting down");
	smtp_reply(s, "421 4.3.2 %s Service shutting down", s->srv->conf.hostname);
	smtp_close(s);
}

/* ---------------------------------------------------------------- handlers */

static struct mta_settings *smtp_settings(struct smtp_session *s)
{
	return s->srv->conf.settings_get(s->srv->conf.settings_arg);
}

static void smtp_cmd_helo_common(struct smtp_session *s, const char *args, bool ehlo)
{
	struct mta_settings *ms;

	if (!smtp_cmd_helo_ok(args) ||
		!smtp_utf8_is_valid((const unsigned char *)args, strlen(args))) {
		smtp_error(s, "501 5.5.4 Syntax: %s hostname", ehlo ? "EHLO" : "HELO");
		return;
	}
	smtp_tx_reset(s);
	sg_strlcpy(s->helo, args, sizeof(s->helo));
	s->esmtp = ehlo;
	smtp_set_state(s, SMTP_S_HELO);
	if (!ehlo) {
		smtp_reply(s, "250 %s", s->srv->conf.hostname);
		return;
	}
	smtp_reply(s, "250-%s", s->srv->conf.hostname);
	smtp_reply(s, "250-PIPELINING");
	ms = smtp_settings(s);
	if (ms != NULL)
		smtp_reply(s, "250-SIZE %llu", (unsigned long long)ms->before_filter_size);
	else
		smtp_reply(s, "250-SIZE");
	mta_settings_free(&ms);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->srv->tls != NULL && !s->tls)
		smtp_reply(s, "250-STARTTLS");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250 DSN");
}

static void smtp_h_helo(struct smtp_session *s, const char *args)
{
	smtp_cmd_helo_common(s, args, false);
}

static void smtp_h_ehlo(struct smtp_session *s, const char *args)
{
	smtp_cmd_helo_common(s, args, true);
}

static void smtp_h_mail(struct smtp_session *s, const char *args)
{
	struct smtp_mail_args a;
	struct smtp_status st;
	struct mta_settings *ms = NULL;

	if (s->srv->conf.store_is_ok != NULL &&
		!s->srv->conf.store_is_ok(s->srv->conf.store_arg)) {
		smtp_reply(s, "451 4.3.0 Error: database unavailable, try again later");
		return;
	}
	ms = smtp_settings(s);
	if (ms == NULL) {
		smtp_reply(s, "451 4.3.0 Error: settings unavailable, try again later");
		return;
	}
	if (smtp_cmd_mail(args, &a, &st) < 0) {
		mta_settings_free(&ms);
		smtp_error(s, "%d %s %s", st.code, st.enh, st.text);
		return;
	}
	if (a.smtputf8 && !s->esmtp) {
		mta_settings_free(&ms);
		smtp_error(s, "555 5.5.4 SMTPUTF8 requires EHLO");
		return;
	}
	if (a.has_size && a.size > ms->before_filter_size) {
		char esc[SMTP_PATH_MAX * 4 + 8];

		sg_log_mail(SG_LOG_INFO, NULL,
			"reject: MAIL from [%s]: 552 5.3.4 size %llu over %llu; from=<%s>",
			s->client, (unsigned long long)a.size,
			(unsigned long long)ms->before_filter_size,
			sg_log_esc(esc, sizeof(esc), a.addr, strlen(a.addr)));
		mta_settings_free(&ms);
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	smtp_tx_reset(s);
	s->settings = ms;
	s->env.sender = sg_xstrdup(a.addr);
	s->env.smtputf8 = a.smtputf8;
	s->env.body_8bit = a.body == SMTP_BODY_8BITMIME;
	s->env.dsn_ret_hdrs = a.ret == SMTP_RET_HDRS;
	s->env.dsn_envid = a.envid[0] != '\0' ? sg_xstrdup(a.envid) : NULL;
	s->env.client_addr = sg_xstrdup(s->client);
	s->env.client_helo = s->helo[0] != '\0' ? sg_xstrdup(s->helo) : NULL;
	s->env.kind = SPOOL_KIND_MESSAGE;
	smtp_set_state(s, SMTP_S_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}

static void smtp_log_reject(struct smtp_session *s, const char *reply, const char *to)
{
	char f[SMTP_PATH_MAX * 4 + 8], t[SMTP_PATH_MAX * 4 + 8];

	sg_log_mail(SG_LOG_INFO, NULL, "reject: RCPT from [%s]: %s; from=<%s> to=<%s>",
		s->client, reply,
		sg_log_esc(f, sizeof(f), s->env.sender, strlen(s->env.sender)),
		sg_log_esc(t, sizeof(t), to, strlen(to)));
}

/* smtp_rcpt_accept - add the recipient and say 250. */
static void smtp_rcpt_accept(struct smtp_session *s, const struct smtp_rcpt_args *a)
{
	spool_env_add_rcpt(&s->env, a->addr, a->orcpt[0] != '\0' ? a->orcpt : NULL,
		a->notify);
	smtp_set_state(s, SMTP_S_RCPT);
	smtp_reply(s, "250 2.1.5 Ok");
}

/* smtp_rcpt_verified - apply a probe answer (code 0 = probe failed). */
static void smtp_rcpt_verified(struct smtp_session *s, const struct smtp_rcpt_args *a,
	int code)
{
	char reply[128];

	if (code >= 200 && code < 300) {
		smtp_rcpt_accept(s, a);
		return;
	}
	if (code >= 500 && code < 600 && s->settings->unverified_recipient_code == 550)
		snprintf(reply, sizeof(reply),
			"550 5.1.1 Recipient address rejected: undeliverable address");
	else if (code >= 500 && code < 600)
		snprintf(reply, sizeof(reply),
			"450 4.1.1 Recipient address rejected: undeliverable address");
	else
		snprintf(reply, sizeof(reply),
			"450 4.1.1 Recipient address rejected: unverified address: "
			"probe failed");
	smtp_log_reject(s, reply, a->addr);
	smtp_reply(s, "%s", reply);
}

static void smtp_h_rcpt(struct smtp_session *s, const char *args)
{
	struct smtp_rcpt_args a;
	struct smtp_status st;
	const struct mta_settings *ms = s->settings;
	const char *domain;
	bool relay_domain;
	int code;

	if (smtp_cmd_rcpt(args, s->env.smtputf8, &a, &st) < 0) {
		smtp_error(s, "%d %s %s", st.code, st.enh, st.text);
		return;
	}
	if (s->env.nrcpts >= ms->max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, the client sends the rest later. Only a
		 * client that keeps going far past the limit is treated as broken. */
		if (s->rcpt_overshoot++ == 0)
			smtp_log_reject(s, "452 4.5.3 Too many recipients", a.addr);
		if (s->rcpt_overshoot > SMTP_RCPT_OVERSHOOT_MAX)
			smtp_error(s, "452 4.5.3 Error: too many recipients");
		else
			smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	domain = sg_addr_domain(a.addr);
	relay_domain = domain != NULL && domain[0] != '[' && mta_is_relay_domain(ms, domain);
	if (s->srv->conf.mode == SG_MODE_STANDALONE && !relay_domain &&
		!mta_is_my_network(ms, s->client)) {
		char reply[SMTP_PATH_MAX + 64];

		snprintf(reply, sizeof(reply), "554 5.7.1 <%s>: Relay access denied", a.addr);
		smtp_log_reject(s, reply, a.addr);
		smtp_error(s, "%s", reply);
		return;
	}
	if (s->srv->conf.mode == SG_MODE_STANDALONE && relay_domain &&
		ms->reject_unverified_recipient && ms->internal_relay.host != NULL &&
		ms->internal_relay.host[0] != '\0') {
		if (smtp_verify_cached(s->srv->verify, ms->internal_relay.host,
			ms->internal_relay.port, a.addr, &code) == 1) {
			smtp_rcpt_verified(s, &a, code);
			return;
		}
		/* Park: no more input is processed until the answer arrives. */
		s->pending = a;
		s->parked = true;
		bufferevent_disable(s->bev, EV_READ);
		smtp_verify_submit(s->srv->verify, ms->internal_relay.host,
			ms->internal_relay.port, ms->helo_name, a.addr, ms->verify_cache_positive,
			ms->verify_cache_negative, s->loop, s->serial);
		return;
	}
	smtp_rcpt_accept(s, &a);
}

void smtp_session_verify_done(struct smtp_loop *loop, uint64_t serial, int code)
{
	struct smtp_session *s;

	for (s = loop->sessions; s != NULL; s = s->next) {
		if (s->serial == serial)
			break;
	}
	if (s == NULL || !s->parked || s->state == SMTP_S_CLOSING)
		return; /* the session went away meanwhile */
	s->parked = false;
	smtp_rcpt_verified(s, &s->pending, code);
	bufferevent_enable(s->bev, EV_READ);
	smtp_process(s);
}

/* smtp_received - our Received: header (RFC 5321 4.4). Caller frees. */
static char *smtp_received(struct smtp_session *s, const char *id)
{
	char date[40];
	char helo[SMTP_DOMAIN_MAX * 4 + 8];
	const char *proto = s->esmtp ? (s->tls ? "ESMTPS" : "ESMTP") : "SMTP";

	if (s->env.smtputf8)
		proto = s->tls ? "UTF8SMTPS" : "UTF8SMTP";
	sg_time_rfc5322(sg_now(), date, sizeof(date));
	/* The HELO name has no CR/LF (it is one command line); escape the rest. */
	sg_log_esc(helo, sizeof(helo), s->helo, strlen(s->helo));
	if (s->env.nrcpts == 1)
		return sg_xasprintf("Received: from %s ([%s])\r\n\tby %s (Sealgate) with %s id %s"
			"\r\n\tfor <%s>; %s\r\n", helo, s->client, s->srv->conf.hostname, proto, id,
			s->env.rcpts[0].addr, date);
	return sg_xasprintf("Received: from %s ([%s])\r\n\tby %s (Sealgate) with %s id %s;"
		"\r\n\t%s\r\n", helo, s->client, s->srv->conf.hostname, proto, id, date);
}

static void smtp_h_data(struct smtp_session *s, const char *args)
{
	struct sg_error err;
	char *hdr = NULL;

	if (*args != '\0') {
		smtp_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	s->env.arrival = sg_now();
	s->writer = spool_writer_new(s->srv->conf.spool, &s->env,
		s->settings->before_filter_size + 4096, &err);
	if (s->writer == NULL) {
		const struct sg_smtp_status *ss = sg_errc_smtp(err.code);

		sg_log_mail(SG_LOG_ERR, NULL, "spool: %s (client [%s])", err.msg, s->client);
		smtp_reply(s, "%d %s Error: %s", ss->smtp_code, ss->enh, ss->text);
		return;
	}
	sg_strlcpy(s->mail_id, spool_writer_id(s->writer), sizeof(s->mail_id));
	hdr = smtp_received(s, s->mail_id);
	if (spool_writer_write(s->writer, hdr, strlen(hdr), &err) < 0) {
		const struct sg_smtp_status *ss = sg_errc_smtp(err.code);

		sg_log_mail(SG_LOG_ERR, s->mail_id, "spool: %s", err.msg);
		spool_writer_abort(&s->writer);
		smtp_reply(s, "%d %s Error: %s", ss->smtp_code, ss->enh, ss->text);
		free(hdr);
		return;
	}
	free(hdr);
	smtp_data_scan_init(&s->scan);
	s->data_size = 0;
	s->data_too_big = false;
	sg_error_clear(&s->data_err);
	smtp_set_state(s, SMTP_S_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void smtp_h_rset(struct smtp_session *s, const char *args)
{
	smtp_tx_reset(s);
	if (s->state != SMTP_S_CONNECTED)
		smtp_set_state(s, SMTP_S_HELO);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void smtp_h_noop(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void smtp_h_quit(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_close(s);
}

static void smtp_h_vrfy(struct smtp_session *s, const char *args)
{
	if (*args == '\0') {
		smtp_error(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt "
		"delivery");
}

static void smtp_h_help(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY "
		"HELP STARTTLS");
}

/* smtp_h_notimpl - a known command this listener does not offer (EXPN,
 * TURN, AUTH, BDAT, STARTTLS without a certificate): 502 per RFC 5321 4.2.4. */
static void smtp_h_notimpl(struct smtp_session *s, const char *args)
{
	smtp_error(s, "502 5.5.1 Error: command not offered by this server");
}

static void smtp_h_starttls(struct smtp_session *s, const char *args)
{
	SSL *ssl = NULL;
	struct bufferevent *tb;

	if (s->srv->tls == NULL) {
		smtp_h_notimpl(s, args);
		return;
	}
	if (s->tls) {
		smtp_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (*args != '\0') {
		smtp_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	ssl = SSL_new(s->srv->tls);
	if (ssl == NULL) {
		smtp_reply(s, "454 4.7.0 TLS not available due to local problem");
		return;
	}
	/* RFC 3207 / CVE-2011-0411: nothing sent before the handshake counts. */
	evbuffer_drain(bufferevent_get_input(s->bev),
		evbuffer_get_length(bufferevent_get_input(s->bev)));
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	tb = bufferevent_openssl_filter_new(s->loop->base, s->bev, ssl,
		BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		smtp_reply(s, "421 4.7.0 %s TLS failure", s->srv->conf.hostname);
		smtp_close(s);
		return;
	}
	s->bev = tb;
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	smtp_setcb(s);
	smtp_tx_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	s->tls = true;
	smtp_set_state(s, SMTP_S_TLS);
}

/* The command table: verb, handler, states in which it is allowed. */
static const struct smtp_cmd {
	enum smtp_verb verb;
	void (*fn)(struct smtp_session *s, const char *args);
	unsigned states;
	const char *badseq;   /* 503 text when not allowed */
	bool is_junk;         /* counts towards SMTP_JUNK_MAX */
} smtp_cmds[] = {
	{SMTP_V_HELO, smtp_h_helo, SMTP_M_ANY, NULL, true},
	{SMTP_V_EHLO, smtp_h_ehlo, SMTP_M_ANY, NULL, true},
	{SMTP_V_MAIL, smtp_h_mail, SMTP_M(SMTP_S_HELO), NULL, false},
	{SMTP_V_RCPT, smtp_h_rcpt, SMTP_M(SMTP_S_MAIL) | SMTP_M(SMTP_S_RCPT),
		"503 5.5.1 Error: need MAIL command", false},
	{SMTP_V_DATA, smtp_h_data, SMTP_M(SMTP_S_RCPT), NULL, false},
	{SMTP_V_RSET, smtp_h_rset, SMTP_M_ANY, NULL, true},
	{SMTP_V_NOOP, smtp_h_noop, SMTP_M_ANY, NULL, true},
	{SMTP_V_QUIT, smtp_h_quit, SMTP_M_ANY, NULL, false},
	{SMTP_V_VRFY, smtp_h_vrfy, SMTP_M_ANY, NULL, true},
	{SMTP_V_HELP, smtp_h_help, SMTP_M_ANY, NULL, true},
	{SMTP_V_EXPN, smtp_h_notimpl, SMTP_M_ANY, NULL, true},
	{SMTP_V_AUTH, smtp_h_notimpl, SMTP_M_ANY, NULL, true},
	{SMTP_V_BDAT, smtp_h_notimpl, SMTP_M_ANY, NULL, true},
	{SMTP_V_STARTTLS, smtp_h_starttls, SMTP_M(SMTP_S_HELO),
		"503 5.5.1 Error: send EHLO first (and no transaction)", false},
};

/* smtp_badseq_text - the 503 reply for a verb out of sequence. */
static const char *smtp_badseq_text(const struct smtp_cmd *c, enum smtp_state st)
{
	if (c->badseq != NULL)
		return c->badseq;
	if (st == SMTP_S_CONNECTED)
		return "503 5.5.1 Error: send HELO/EHLO first";
	if (c->verb == SMTP_V_MAIL)
		return "503 5.5.1 Error: nested MAIL command";
	if (c->verb == SMTP_V_DATA && st == SMTP_S_MAIL)
		return "554 5.5.1 Error: no valid recipients";
	if (c->verb == SMTP_V_DATA)
		return "503 5.5.1 Error: need RCPT command";
	return "503 5.5.1 Error: bad sequence of commands";
}

/* smtp_dispatch - one complete command line (CR/LF stripped). */
static void smtp_dispatch(struct smtp_session *s, char *line, size_t len)
{
	const char *args;
	enum smtp_verb v;
	size_t i;

	s->ncommands++;
	if (memchr(line, '\0', len) != NULL) {
		smtp_error(s, "500 5.5.2 Error: NUL character in command");
		return;
	}
	if (memchr(line, '\r', len) != NULL) {
		smtp_error(s, "500 5.5.2 Error: bare <CR> in command");
		return;
	}
	v = smtp_cmd_verb(line, len, &args);
	if (v == SMTP_V_UNKNOWN) {
		smtp_error(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (v != SMTP_V_MAIL && v != SMTP_V_RCPT && len > SMTP_LINE_MAX - 2) {
		smtp_error(s, "500 5.5.2 Error: line too long");
		return;
	}
	for (i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++) {
		const struct smtp_cmd *c = &smtp_cmds[i];

		if (c->verb != v)
			continue;
		if ((c->states & SMTP_M(s->state)) == 0) {
			const char *t = smtp_badseq_text(c, s->state);

			smtp_error(s, "%s", t);
			return;
		}
		if (c->is_junk && ++s->njunk > SMTP_JUNK_MAX) {
			/* Answer it, but let it count towards max_errors. */
			s->errors++;
			if (s->errors >= s->srv->conf.max_errors) {
				sg_log_sess(SG_LOG_WARN, s->sid, "too many commands from [%s]",
					s->client);
				smtp_reply(s, "421 4.7.0 %s Error: too many commands",
					s->srv->conf.hostname);
				smtp_close(s);
				return;
			}
		}
		c->fn(s, args);
		return;
	}
	smtp_h_notimpl(s, args);
}

/* smtp_data_end - the end marker arrived: commit (250) or reject. */
static void smtp_data_end(struct smtp_session *s)
{
	struct sg_error err;
	char from[SMTP_PATH_MAX * 4 + 8];
	const char *reply = NULL;
	char id[SG_MAIL_ID_LEN + 1];

	sg_strlcpy(id, s->mail_id, sizeof(id));
	if (s->data_too_big)
		reply = "552 5.3.4 Error: message file too big";
	else if (s->scan.long_lines > 0)
		reply = "500 5.5.2 Error: message line too long (limit 1000 octets "
			"incl. CRLF)";
	else if (s->scan.nul_bytes > 0)
		reply = "554 5.6.0 Error: message contains NUL characters";
	else if (s->scan.received > s->settings->max_received_headers)
		reply = "554 5.4.6 Error: too many hops";
	if (reply != NULL) {
		sg_log_mail(SG_LOG_INFO, id, "reject: DATA from [%s]: %s; size=%llu", s->client,
			reply, (unsigned long long)s->data_size);
		spool_writer_abort(&s->writer);
		smtp_reply(s, "%s", reply);
		goto out;
	}
	if (s->data_err.code != SG_E_OK || s->writer == NULL) {
		const struct sg_smtp_status *ss = sg_errc_smtp(s->data_err.code != SG_E_OK ?
			s->data_err.code : SG_E_INTERNAL);

		sg_log_mail(SG_LOG_ERR, id, "spool write failed: %s", s->data_err.msg);
		spool_writer_abort(&s->writer);
		smtp_reply(s, "%d %s Error: %s", ss->smtp_code, ss->enh, ss->text);
		goto out;
	}
	if (spool_writer_commit(&s->writer, SPOOL_Q_INCOMING, &err) < 0) {
		const struct sg_smtp_status *ss = sg_errc_smtp(err.code);

		sg_log_mail(SG_LOG_ERR, id, "spool commit failed: %s", err.msg);
		smtp_reply(s, "%d %s Error: %s", ss->smtp_code, ss->enh, ss->text);
		goto out;
	}
	sg_log_mail(SG_LOG_INFO, id, "from=<%s>, size=%llu, nrcpt=%zu, client=[%s]",
		sg_log_esc(from, sizeof(from), s->env.sender, strlen(s->env.sender)),
		(unsigned long long)s->data_size, s->env.nrcpts, s->client);
	if (s->srv->conf.on_queued != NULL)
		s->srv->conf.on_queued(s->srv->conf.on_queued_arg, id);
	smtp_reply(s, "250 2.0.0 Ok: queued as %s", id);
out:
	smtp_tx_reset(s);
	smtp_set_state(s, SMTP_S_HELO);
}

/* smtp_data_chunk - feed one chunk of DATA; 1 if the end marker was seen. */
static int smtp_data_chunk(struct smtp_session *s, struct evbuffer *in)
{
	char chunk[SMTP_CHUNK];
	char out[2 * SMTP_CHUNK + 4];
	ev_ssize_t n = evbuffer_copyout(in, chunk, sizeof(chunk));
	size_t used, olen = 0;

	if (n <= 0)
		return 0;
	used = smtp_data_scan_feed(&s->scan, chunk, (size_t)n, out, &olen);
	evbuffer_drain(in, used);
	if (s->writer != NULL && !s->data_too_big && s->data_err.code == SG_E_OK) {
		if (s->scan.long_lines > 0 || s->scan.nul_bytes > 0) {
			/* Rejected at the end anyway: stop writing now. */
			spool_writer_abort(&s->writer);
		} else if (s->data_size + olen > s->settings->before_filter_size) {
			/* Keep reading and discarding; 552 at the end (RFC 5321 4.5.3.1.10). */
			s->data_too_big = true;
			spool_writer_abort(&s->writer);
		} else if (olen > 0 && spool_writer_write(s->writer, out, olen,
			&s->data_err) < 0) {
			spool_writer_abort(&s->writer);
		}
	}
	s->data_size += olen;
	return s->scan.done ? 1 : 0;
}

/* smtp_process - handle buffered input until it runs out or we must wait. */
static void smtp_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);

	while (s->state != SMTP_S_CLOSING && s->state != SMTP_S_TLS && !s->parked) {
		struct evbuffer_ptr eol;
		size_t eol_len = 0;
		char *line;
		size_t len;

		if (evbuffer_get_length(out) > SMTP_OUTPUT_MAX) {
			/* The client does not read our replies: stop reading it. */
			s->out_blocked = true;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SMTP_S_DATA) {
			if (evbuffer_get_length(in) == 0)
				return;
			if (smtp_data_chunk(s, in) == 1)
				smtp_data_end(s);
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			size_t have = evbuffer_get_length(in);

			if (have > SMTP_EXT_LINE_MAX) {
				/* Never buffer an endless line: drop it, reply at its LF. */
				evbuffer_drain(in, have);
				s->discarding = true;
			}
			return;
		}
		if (s->discarding) {
			evbuffer_drain(in, (size_t)eol.pos + eol_len);
			s->discarding = false;
			s->ncommands++;
			smtp_error(s, "500 5.5.2 Error: line too long");
			continue;
		}
		if ((size_t)eol.pos > SMTP_EXT_LINE_MAX) {
			evbuffer_drain(in, (size_t)eol.pos + eol_len);
			s->ncommands++;
			smtp_error(s, "500 5.5.2 Error: line too long");
			continue;
		}
		len = (size_t)eol.pos;
		line = sg_xmalloc(len + 1);
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		line[len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		smtp_dispatch(s, line, len);
		free(line);
	}
}

/* smtp_io - the session's one event callback (read, write drained, events). */
static void smtp_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_S_CLOSING) {
		/* lingering: discard whatever the client still sends */
		evbuffer_drain(bufferevent_get_input(bev),
			evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	smtp_process(s);
}

static void smtp_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->state == SMTP_S_CLOSING) {
		if (!s->lingering)
			smtp_try_free(s);
		return;
	}
	if (s->out_blocked) {
		s->out_blocked = false;
		if (!s->parked)
			bufferevent_enable(s->bev, EV_READ);
		smtp_process(s);
	}
}

static void smtp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if ((what & BEV_EVENT_CONNECTED) != 0 && s->state == SMTP_S_TLS) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

		sg_log_sess(SG_LOG_INFO, s->sid, "TLS established with [%s]: %s %s", s->client,
			SSL_get_version(ssl), SSL_get_cipher_name(ssl));
		smtp_set_state(s, SMTP_S_CONNECTED);
		smtp_process(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) != 0) {
		if (s->state == SMTP_S_CLOSING) {
			smtp_session_free_now(s);
			return;
		}
		sg_log_sess(SG_LOG_INFO, s->sid, "timeout after %s from [%s]",
			smtp_state_name(s->state), s->client);
		if (s->state == SMTP_S_DATA && s->mail_id[0] != '\0')
			sg_log_mail(SG_LOG_INFO, s->mail_id, "discarded: timeout during DATA");
		if (s->state == SMTP_S_TLS) {
			smtp_session_free_now(s);
			return;
		}
		smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->conf.hostname);
		smtp_close(s);
		return;
	}
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0) {
		if (s->state == SMTP_S_TLS || (what & BEV_EVENT_ERROR) != 0)
			sg_log_sess(SG_LOG_INFO, s->sid, "%s from [%s] in state %s",
				(what & BEV_EVENT_EOF) != 0 ? "lost connection" : "I/O error",
				s->client, smtp_state_name(s->state));
		if (s->state == SMTP_S_DATA && s->mail_id[0] != '\0')
			sg_log_mail(SG_LOG_INFO, s->mail_id, "discarded: lost connection in DATA");
		smtp_session_free_now(s);
	}
}

static void smtp_setcb(struct smtp_session *s)
{
	unsigned ms = s->srv->conf.idle_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	bufferevent_setcb(s->bev, smtp_read_cb, smtp_write_cb, smtp_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_INPUT_HIWAT);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void smtp_session_start(struct smtp_loop *loop, int fd, const char *addr)
{
	struct smtp_server *srv = loop->srv;
	struct smtp_session *s = sg_xcalloc(1, sizeof(*s));
	unsigned char rnd[8];
	struct mta_settings *ms = NULL;

	s->loop = loop;
	s->srv = srv;
	s->serial = __atomic_add_fetch(&srv->next_serial, 1, __ATOMIC_RELAXED);
	if (sg_random_bytes(rnd, sizeof(rnd), NULL) < 0)
		memcpy(rnd, &s->serial, sizeof(rnd));
	sg_hex(s->sid, rnd, sizeof(rnd));
	sg_strlcpy(s->client, addr, sizeof(s->client));
	s->state = SMTP_S_CONNECTED;
	s->bev = bufferevent_socket_new(loop->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->next = loop->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	loop->sessions = s;
	loop->nsessions++;
	sg_log_sess(SG_LOG_INFO, s->sid, "connect from [%s]", s->client);
	if (s->bev == NULL) {
		close(fd);
		smtp_session_free_now(s);
		return;
	}
	smtp_setcb(s);
	if (srv->conf.mode == SG_MODE_POSTFIX) {
		ms = smtp_settings(s);
		if (ms == NULL || !mta_is_my_network(ms, s->client)) {
			sg_log_sess(SG_LOG_WARN, s->sid,
				"refused [%s]: not in my_networks (postfix mode)", s->client);
			mta_settings_free(&ms);
			smtp_reply(s, "554 5.7.1 %s Access denied", srv->conf.hostname);
			smtp_close(s);
			return;
		}
		mta_settings_free(&ms);
	}
	smtp_reply(s, "220 %s ESMTP Sealgate", srv->conf.hostname);
}
