/*
 * delivery_dsn.c - RFC 3464 delivery status notifications (bounces) for the
 * delivery agent: a multipart/report (RFC 6522) with a human-readable part,
 * a message/delivery-status part and the original headers
 * (text/rfc822-headers) or, when RET is not HDRS and the message is small,
 * the whole message (message/rfc822).
 *
 * Called by delivery_queue.c when every recipient of a message is final and
 * some failed. Reads the failed recipients' last_reply (format in
 * delivery.h). The original is streamed from its spool fd in bounded chunks.
 * D-4: From conf->system_mail_from (the daemon passes the policy property;
 * default MAILER-DAEMON@<hostname>), envelope sender <>, Auto-Submitted:
 * auto-generated. F-FLOW-7: with conf->server_secret the bounce carries the
 * own-mail marker (sg_marker_make over the bounced message's ID and the
 * bounce's Message-ID), so that the pipeline does not process it again
 * when it comes back through the gateway.
 */
#include "delivery_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DSN_TEXT_MAX (64u << 10)    /* generated text per recipient / block */
#define DSN_HEADERS_MAX (256u << 10) /* original headers returned */
#define DSN_CHUNK 65536

bool delivery_dsn_wanted(const struct spool_rcpt *rcpt)
{
	if (rcpt->notify == 0)
		return true;
	if (rcpt->notify & SPOOL_NOTIFY_NEVER)
		return false;
	return (rcpt->notify & SPOOL_NOTIFY_FAILURE) != 0;
}

bool delivery_rcpt_needs_dsn(const struct spool_rcpt *rcpt)
{
	return rcpt->status == SPOOL_RCPT_FAILED && delivery_dsn_wanted(rcpt) &&
		!delivery_rcpt_is_reported(rcpt);
}

/* dsn_esc - printable ASCII copy of an untrusted string for the report. */
static const char *dsn_esc(char *out, size_t outsz, const char *s)
{
	if (s == NULL)
		s = "";
	return sg_log_esc(out, outsz, s, strlen(s));
}

/* dsn_xtext_decode - RFC 3461 xtext ("+2B" -> '+') into out (printable). */
static void dsn_xtext_decode(const char *in, char *out, size_t outsz)
{
	char tmp[600];
	size_t o = 0;

	for (; *in != '\0' && o + 1 < sizeof(tmp); in++) {
		unsigned v;

		if (in[0] == '+' && in[1] != '\0' && in[2] != '\0' &&
		    sscanf(in + 1, "%2X", &v) == 1) {
			tmp[o++] = (char)v;
			in += 2;
		} else {
			tmp[o++] = *in;
		}
	}
	tmp[o] = '\0';
	dsn_esc(out, outsz, tmp);
}

/* dsn_remote_host - "host" of "host[ip]:port". */
static void dsn_remote_host(const char *relay, char *out, size_t outsz)
{
	const char *b = strchr(relay, '[');
	size_t n = b != NULL ? (size_t)(b - relay) : strlen(relay);

	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, relay, n);
	out[n] = '\0';
}

/* dsn_copy - copy body bytes [off, off+len) into w in chunks. */
static int dsn_copy(struct spool_writer *w, int fd, uint64_t off, uint64_t len,
	struct sg_error *err)
{
	char *buf = sg_xmalloc(DSN_CHUNK);
	uint64_t done = 0;
	int rc = -1;

	while (done < len) {
		size_t want = len - done > DSN_CHUNK ? DSN_CHUNK : (size_t)(len - done);
		ssize_t got = pread(fd, buf, want, (off_t)(off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			sg_error_set_errno(err, SG_E_IO, got < 0 ? errno : EIO,
				"read original message");
			goto out;
		}
		if (spool_writer_write(w, buf, (size_t)got, err) < 0)
			goto out;
		done += (uint64_t)got;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* dsn_header_len - length of the original's header block (up to and
 * including the empty line), capped at DSN_HEADERS_MAX on a line boundary. */
static int dsn_header_len(int fd, uint64_t off, uint64_t len, uint64_t *hlen_r,
	struct sg_error *err)
{
	char *buf = sg_xmalloc(DSN_CHUNK);
	uint64_t pos = 0, last_eol = 0;
	bool is_bol = true, is_cr_bol = false;
	int rc = -1;

	*hlen_r = 0;
	while (pos < len && pos < DSN_HEADERS_MAX) {
		size_t want = len - pos > DSN_CHUNK ? DSN_CHUNK : (size_t)(len - pos);
		ssize_t got = pread(fd, buf, want, (off_t)(off + pos));
		ssize_t i;

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			sg_error_set_errno(err, SG_E_IO, got < 0 ? errno : EIO,
				"read original message");
			goto out;
		}
		for (i = 0; i < got && pos < DSN_HEADERS_MAX; i++, pos++) {
			char c = buf[i];

			if (c == '\n') {
				if (is_bol || is_cr_bol) { /* empty line: end of headers */
					*hlen_r = pos + 1;
					rc = 0;
					goto out;
				}
				last_eol = pos + 1;
				is_bol = true;
				is_cr_bol = false;
				continue;
			}
			is_cr_bol = is_bol && c == '\r';
			is_bol = false;
		}
	}
	/* No empty line: the whole (small) message is headers, or cut it. */
	*hlen_r = pos >= len ? len : last_eol;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* dsn_rcpt_block - the per-recipient fields of the delivery-status part and
 * one line of the human-readable part. */
static int dsn_rcpt(const struct spool_rcpt *r, int64_t now, struct sg_buf *human,
	struct sg_buf *status, struct sg_error *err)
{
	struct delivery_result res;
	bool is_expired;
	char addr[600], orcpt[600], host[300], date[40], diag[600];

	if (delivery_result_parse(r->last_reply, &res) < 0)
		delivery_result_set(&res, DELIVERY_R_PERM, "5.0.0", "%s",
			r->last_reply != NULL ? r->last_reply : "delivery failed");
	is_expired = res.is_expired;
	dsn_esc(addr, sizeof(addr), r->addr);
	dsn_esc(diag, sizeof(diag), res.text);
	if (sg_buf_printf(human, err, "<%s>: %s%s%s%s%s\r\n", addr,
		    is_expired ? "delivery time expired; last error: " : "",
		    res.is_reply ? "host " : "", res.is_reply ? res.relay : "",
		    res.is_reply ? " said: " : "", diag) < 0)
		return -1;
	if (sg_buf_printf(status, err, "\r\nFinal-Recipient: rfc822; %s\r\n", addr) < 0)
		return -1;
	if (r->orcpt != NULL && *r->orcpt != '\0') {
		const char *semi = strchr(r->orcpt, ';');

		dsn_xtext_decode(semi != NULL ? semi + 1 : r->orcpt, orcpt, sizeof(orcpt));
		if (sg_buf_printf(status, err, "Original-Recipient: rfc822; %s\r\n",
			    orcpt + strspn(orcpt, " ")) < 0)
			return -1;
	}
	sg_time_rfc5322(now, date, sizeof(date));
	if (sg_buf_printf(status, err, "Action: failed\r\nStatus: %s\r\nLast-Attempt-Date: "
		    "%s\r\n", res.enh[0] == '2' ? "5.0.0" : res.enh, date) < 0)
		return -1;
	if (res.relay[0] != '\0') {
		dsn_remote_host(res.relay, host, sizeof(host));
		if (sg_buf_printf(status, err, "Remote-MTA: dns; %s\r\n", host) < 0)
			return -1;
	}
	if (res.is_reply && sg_buf_printf(status, err, "Diagnostic-Code: smtp; %s\r\n",
		    diag) < 0)
		return -1;
	if (!res.is_reply && sg_buf_printf(status, err, "Diagnostic-Code: x-sealgate; %s%s\r\n",
		    is_expired ? "delivery time expired; " : "", diag) < 0)
		return -1;
	return 0;
}

/* dsn_flush - write b to w and empty it. */
static int dsn_flush(struct spool_writer *w, struct sg_buf *b, struct sg_error *err)
{
	if (b->len > 0 && spool_writer_write(w, b->data, b->len, err) < 0)
		return -1;
	sg_buf_reset(b);
	return 0;
}

int delivery_dsn_write(const struct delivery_conf *conf, const struct spool_env *env,
	int body_fd, uint64_t off, uint64_t len, int64_t now, struct spool_writer *w,
	struct sg_error *err)
{
	struct sg_buf head, human, status;
	char date[40], arrival[40], to[600], host[300], envid[300], from[600];
	char msgid[400], marker[SG_MARKER_MAX + 32];
	const char *bid = spool_writer_id(w);
	bool is_full = !env->dsn_ret_hdrs &&
		len <= (conf->bounce_full_max ? conf->bounce_full_max : 50000);
	uint64_t hlen = 0;
	size_t i;
	int rc = -1;

	sg_buf_init(&head, DSN_TEXT_MAX);
	sg_buf_init(&human, DSN_TEXT_MAX);
	sg_buf_init(&status, DSN_TEXT_MAX);
	dsn_esc(host, sizeof(host), conf->hostname);
	dsn_esc(to, sizeof(to), env->sender);
	if (conf->system_mail_from != NULL && conf->system_mail_from[0] != '\0' &&
	    sg_addr_is_valid(conf->system_mail_from))
		dsn_esc(from, sizeof(from), conf->system_mail_from);
	else
		snprintf(from, sizeof(from), "MAILER-DAEMON@%s", host);
	sg_time_rfc5322(now, date, sizeof(date));
	sg_time_rfc5322(env->arrival, arrival, sizeof(arrival));
	snprintf(msgid, sizeof(msgid), "<%s.dsn@%s>", bid, host);
	marker[0] = '\0';
	if (conf->server_secret != NULL && conf->server_secret[0] != '\0') {
		char val[SG_MARKER_MAX];
		struct sg_error merr;

		if (sg_marker_make(conf->server_secret, env->id, msgid, val, sizeof(val),
			&merr) == 0)
			snprintf(marker, sizeof(marker), "%s: %s\r\n", SG_MARKER_HEADER, val);
		else
			sg_log_mail(SG_LOG_WARN, env->id, "bounce without %s: %s",
				SG_MARKER_HEADER, merr.msg);
	}
	if (sg_buf_printf(&head, err,
		    "From: Mail Delivery System <%s>\r\n"
		    "To: <%s>\r\n"
		    "Subject: Undelivered Mail Returned to Sender\r\n"
		    "Date: %s\r\n"
		    "Message-ID: %s\r\n"
		    "Auto-Submitted: auto-generated\r\n"
		    "%s"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		    "\tboundary=\"=_sg_%s\"\r\n"
		    "\r\n"
		    "This is a MIME-encapsulated message.\r\n"
		    "\r\n"
		    "--=_sg_%s\r\n"
		    "Content-Description: Notification\r\n"
		    "Content-Type: text/plain; charset=us-ascii\r\n"
		    "\r\n"
		    "This is the mail gateway at %s.\r\n"
		    "\r\n"
		    "Your message (queue ID %s) could not be delivered to one or more\r\n"
		    "recipients. The reasons are listed below; the %s attached.\r\n"
		    "\r\n",
		    from, to, date, msgid, marker, bid, bid, host, env->id,
		    is_full ? "original message is" : "headers of the original message are") < 0)
		goto out;
	/* Streamed recipient by recipient: a bounce for 100k recipients does
	 * not need 100k lines in memory. Pass 1: the human-readable lines. */
	if (dsn_flush(w, &head, err) < 0)
		goto out;
	for (i = 0; i < env->nrcpts; i++) {
		if (!delivery_rcpt_needs_dsn(&env->rcpts[i]))
			continue;
		if (dsn_rcpt(&env->rcpts[i], now, &human, &status, err) < 0 ||
		    dsn_flush(w, &human, err) < 0)
			goto out;
		sg_buf_reset(&status);
	}
	if (sg_buf_printf(&human, err, "\r\n") < 0 || dsn_flush(w, &human, err) < 0)
		goto out;
	/* Pass 2: the message/delivery-status part. */
	if (sg_buf_printf(&status, err, "--=_sg_%s\r\n"
		    "Content-Description: Delivery report\r\n"
		    "Content-Type: message/delivery-status\r\n"
		    "\r\n"
		    "Reporting-MTA: dns; %s\r\n"
		    "X-Sealgate-Queue-ID: %s\r\n", bid, host, env->id) < 0)
		goto out;
	if (env->dsn_envid != NULL && *env->dsn_envid != '\0') {
		dsn_xtext_decode(env->dsn_envid, envid, sizeof(envid));
		if (sg_buf_printf(&status, err, "Original-Envelope-Id: %s\r\n", envid) < 0)
			goto out;
	}
	if (sg_buf_printf(&status, err, "Arrival-Date: %s\r\n", arrival) < 0 ||
	    dsn_flush(w, &status, err) < 0)
		goto out;
	for (i = 0; i < env->nrcpts; i++) {
		if (!delivery_rcpt_needs_dsn(&env->rcpts[i]))
			continue;
		if (dsn_rcpt(&env->rcpts[i], now, &human, &status, err) < 0 ||
		    dsn_flush(w, &status, err) < 0)
			goto out;
		sg_buf_reset(&human);
	}
	if (sg_buf_printf(&status, err, "\r\n--=_sg_%s\r\n", bid) < 0)
		goto out;
	if (is_full) {
		if (sg_buf_printf(&status, err, "Content-Description: Undelivered Message\r\n"
			    "Content-Type: message/rfc822\r\n%s\r\n",
			    env->body_8bit || env->smtputf8 ?
			    "Content-Transfer-Encoding: 8bit\r\n" : "") < 0)
			goto out;
	} else {
		if (dsn_header_len(body_fd, off, len, &hlen, err) < 0)
			goto out;
		if (sg_buf_printf(&status, err, "Content-Description: Undelivered Message "
			    "Headers\r\nContent-Type: text/rfc822-headers\r\n%s\r\n",
			    env->smtputf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "") < 0)
			goto out;
	}
	if (dsn_flush(w, &status, err) < 0)
		goto out;
	if (dsn_copy(w, body_fd, off, is_full ? len : hlen, err) < 0)
		goto out;
	sg_buf_reset(&head);
	if (sg_buf_printf(&head, err, "\r\n--=_sg_%s--\r\n", bid) < 0 ||
	    spool_writer_write(w, head.data, head.len, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		sg_error_prefix(err, "bounce: ");
	sg_buf_deinit(&head);
	sg_buf_deinit(&human);
	sg_buf_deinit(&status);
	return rc;
}
