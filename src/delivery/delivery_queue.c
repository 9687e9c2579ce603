/*
 * delivery_queue.c - the delivery agent's queue side: takes outgoing/<id>,
 * groups its pending recipients by next hop, runs one SMTP transaction per
 * group (delivery_client.c), records per-recipient results in the spool
 * state, and then removes the message (with an RFC 3464 bounce for failed
 * recipients, created in the same spool batch: exactly once), or defers it
 * with exponential backoff. delivery_requeue_due moves due deferred
 * messages back to outgoing/.
 *
 * Runs in the daemon's delivery worker threads (one message per thread at a
 * time). Logs one line per recipient result, Postfix style:
 *   "<id>: to=<rcpt>, relay=host[ip]:port, delay=3, dsn=2.0.0, status=sent (250 ...)"
 * Invariants: never bounce a bounce, a notification or the null sender;
 * bounces go to internal originators only (D-4) unless the conf says any.
 */
#include "delivery_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_REQUEUE_MAX 10000  /* ids examined per delivery_requeue_due call */

void delivery_conf_init(struct delivery_conf *conf, const char *hostname)
{
	memset(conf, 0, sizeof(*conf));
	conf->mode = SG_MODE_STANDALONE;
	conf->hostname = hostname;
	conf->connect_timeout = 30;
	conf->io_timeout = 300;
	conf->mx_port = 25;
	conf->max_rcpts_per_txn = 50;
	conf->bounce_full_max = 50000;
	conf->bounce_policy = DELIVERY_BOUNCE_INTERNAL;
	conf->conn_max_age = 300;
	conf->conn_max_tx = 100;
	conf->conn_idle_ms = 2000;
}

int64_t delivery_backoff(const struct mta_settings *mta, unsigned attempts, uint32_t rnd)
{
	int64_t min = mta->backoff_min ? mta->backoff_min : 300;
	int64_t max = mta->backoff_max ? mta->backoff_max : 4000;
	int64_t d = min, span;
	unsigned i;

	if (max < min)
		max = min;
	for (i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	span = d / 5;
	if (span > 0)
		d = d - d / 10 + (int64_t)(rnd % (uint64_t)(span + 1));
	return d < 1 ? 1 : d;
}

/* ------------------------------------------------------ last_reply format */

char *delivery_result_format(const struct delivery_result *res)
{
	return sg_xasprintf("%s %s%s%s%s%s%s%s", res->enh[0] ? res->enh : "4.0.0",
		res->is_expired ? "expired " : "", res->is_reported ? "reported " : "",
		res->relay[0] ? "relay=" : "", res->relay, res->relay[0] ? " " : "",
		res->is_reply ? "reply=" : "local=", res->text);
}

int delivery_result_parse(const char *s, struct delivery_result *res_r)
{
	const char *sp;

	memset(res_r, 0, sizeof(*res_r));
	if (s == NULL)
		return -1;
	sp = strchr(s, ' ');
	if (sp == NULL || sp == s || (size_t)(sp - s) >= sizeof(res_r->enh) ||
	    (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return -1;
	memcpy(res_r->enh, s, (size_t)(sp - s));
	res_r->status = s[0] == '2' ? DELIVERY_R_OK : s[0] == '4' ? DELIVERY_R_TEMP :
		DELIVERY_R_PERM;
	s = sp + 1;
	for (;;) {
		if (strncmp(s, "expired ", 8) == 0) {
			res_r->is_expired = true;
			s += 8;
		} else if (strncmp(s, "reported ", 9) == 0) {
			res_r->is_reported = true;
			s += 9;
		} else {
			break;
		}
	}
	if (strncmp(s, "relay=", 6) == 0) {
		sp = strchr(s, ' ');
		if (sp == NULL || (size_t)(sp - s - 6) >= sizeof(res_r->relay))
			return -1;
		memcpy(res_r->relay, s + 6, (size_t)(sp - s - 6));
		s = sp + 1;
	}
	if (strncmp(s, "reply=", 6) == 0)
		res_r->is_reply = true;
	else if (strncmp(s, "local=", 6) != 0)
		return -1;
	snprintf(res_r->text, sizeof(res_r->text), "%s", s + 6);
	return 0;
}

/* delivery_rcpt_is_reported - rcpt failed and that failure was bounced. */
bool delivery_rcpt_is_reported(const struct spool_rcpt *rcpt)
{
	struct delivery_result res;

	return rcpt->status == SPOOL_RCPT_FAILED &&
		delivery_result_parse(rcpt->last_reply, &res) == 0 && res.is_reported;
}

/* ----------------------------------------------------------- one message */

struct queue_ctx {
	const struct delivery_conf *conf;
	const struct mta_settings *mta;
	struct spool *sp;
	const char *id;
	struct spool_env env;
	int body_fd;
	uint64_t body_off;
	uint64_t body_len;
	int64_t now;
	char last_temp[600];
};

/* result_from_error - local result from err ("<enh> text" messages). */
static void result_from_error(struct delivery_result *res, const struct sg_error *err)
{
	enum delivery_rstatus st = err->code == SG_E_PEER_PERM ? DELIVERY_R_PERM :
		DELIVERY_R_TEMP;
	const char *msg = err->msg;
	const char *sp = strchr(msg, ' ');
	char enh[16];

	if ((msg[0] == '4' || msg[0] == '5') && msg[1] == '.' && sp != NULL &&
	    (size_t)(sp - msg) < sizeof(enh)) {
		memcpy(enh, msg, (size_t)(sp - msg));
		enh[sp - msg] = '\0';
		enh[0] = st == DELIVERY_R_PERM ? '5' : '4';
		delivery_result_set(res, st, enh, "%s", sp + 1);
	} else {
		delivery_result_set(res, st, st == DELIVERY_R_PERM ? "5.0.0" : "4.0.0", "%s",
			msg);
	}
}

/* queue_log_result - the Postfix-style per-recipient line. */
static void queue_log_result(struct queue_ctx *q, const struct spool_rcpt *r,
	const struct delivery_result *res)
{
	static const char *const names[] = {"sent", "deferred", "bounced"};
	char to[300];

	sg_log_esc(to, sizeof(to), r->addr, strlen(r->addr));
	/* parent=: the ID the message was received under, so that grepping that
	 * one ID shows reception, processing and delivery (F-FLOW-4). */
	sg_log_mail(SG_LOG_INFO, q->id, "to=<%s>, %s%s%srelay=%s, delay=%lld, dsn=%s, "
		"status=%s (%s%s%s%s)", to,
		q->env.parent_id != NULL ? "parent=" : "",
		q->env.parent_id != NULL ? q->env.parent_id : "",
		q->env.parent_id != NULL ? ", " : "", res->relay[0] ? res->relay : "none",
		(long long)(q->now - q->env.arrival > 0 ? q->now - q->env.arrival : 0),
		res->enh, names[res->status], res->is_reply ? "host " : "",
		res->is_reply ? res->relay : "", res->is_reply ? " said: " : "", res->text);
}

/* queue_apply - store one recipient's result in the envelope and log it. */
static void queue_apply(struct queue_ctx *q, struct spool_rcpt *r,
	const struct delivery_result *res)
{
	free(r->last_reply);
	r->last_reply = delivery_result_format(res);
	if (res->status == DELIVERY_R_OK)
		r->status = SPOOL_RCPT_DELIVERED;
	else if (res->status == DELIVERY_R_PERM)
		r->status = SPOOL_RCPT_FAILED;
	else
		snprintf(q->last_temp, sizeof(q->last_temp), "%s", res->text);
	queue_log_result(q, r, res);
}

/* queue_group - one transaction for recipients idx[0..n) sharing hop. */
static void queue_group(struct queue_ctx *q, const struct delivery_hop *hop,
	const size_t *idx, size_t n)
{
	struct delivery_result *res = sg_xcalloc(n, sizeof(*res));
	struct spool_rcpt **rcpts = sg_xcalloc(n, sizeof(*rcpts));
	struct delivery_addr *addrs = NULL;
	struct delivery_session_opts o;
	struct delivery_tx tx;
	struct sg_error err;
	size_t naddrs = 0, i;

	for (i = 0; i < n; i++)
		rcpts[i] = &q->env.rcpts[idx[i]];
	if (delivery_route_resolve(q->conf, hop, &addrs, &naddrs, &err) < 0) {
		for (i = 0; i < n; i++)
			result_from_error(&res[i], &err);
		goto apply;
	}
	memset(&o, 0, sizeof(o));
	o.helo = q->mta->helo_name && *q->mta->helo_name ? q->mta->helo_name :
		q->mta->hostname && *q->mta->hostname ? q->mta->hostname : q->conf->hostname;
	o.tls = hop->tls;
	o.sasl = hop->sasl;
	o.connect_timeout = q->conf->connect_timeout;
	o.io_timeout = q->conf->io_timeout;
	o.ca_file = q->conf->tls_ca_file;
	o.reuse_max_age = q->conf->conn_max_age;
	o.reuse_max_tx = q->conf->conn_max_tx;
	o.reuse_idle_ms = q->conf->conn_idle_ms;
	memset(&tx, 0, sizeof(tx));
	tx.mail_id = q->id;
	tx.sender = q->env.sender;
	tx.rcpts = rcpts;
	tx.nrcpts = n;
	tx.smtputf8 = q->env.smtputf8;
	tx.body_8bit = q->env.body_8bit;
	tx.envid = q->env.dsn_envid;
	tx.ret_hdrs = q->env.dsn_ret_hdrs;
	tx.body_fd = q->body_fd;
	tx.body_off = q->body_off;
	tx.body_len = q->body_len;
	for (i = 0; i < naddrs; i++) {
		o.server_name = addrs[i].host;
		if (delivery_client_send(&o, (const struct sockaddr *)&addrs[i].sa,
			    addrs[i].salen, &tx, res) == 0)
			break;
		sg_log_mail(SG_LOG_DEBUG, q->id, "%s: %s", res[0].relay, res[0].text);
	}
apply:
	for (i = 0; i < n; i++)
		queue_apply(q, rcpts[i], &res[i]);
	free(addrs);
	free(rcpts);
	free(res);
}

/* queue_deliver_pending - group pending recipients by hop and deliver. */
static int queue_deliver_pending(struct queue_ctx *q, struct sg_error *err)
{
	size_t n = q->env.nrcpts, i, j, k;
	unsigned max = q->conf->max_rcpts_per_txn ? q->conf->max_rcpts_per_txn : 50;
	struct delivery_hop *hops = sg_xcalloc(n ? n : 1, sizeof(*hops));
	bool *is_routed = sg_xcalloc(n ? n : 1, sizeof(*is_routed));
	size_t *idx = sg_xcalloc(n ? n : 1, sizeof(*idx));
	int rc = -1;

	for (i = 0; i < n; i++) {
		struct spool_rcpt *r = &q->env.rcpts[i];
		struct delivery_result res;
		struct sg_error rerr;

		if (r->status != SPOOL_RCPT_PENDING) {
			is_routed[i] = true;
			continue;
		}
		if (r->addr == NULL || delivery_has_ctl(r->addr) || strchr(r->addr, '>') ||
		    delivery_route_hop(q->conf, q->mta, r->addr, &hops[i], &rerr) < 0) {
			delivery_result_set(&res, DELIVERY_R_PERM, "5.1.3",
				"bad recipient address syntax");
			queue_apply(q, r, &res);
			is_routed[i] = true;
		}
	}
	if (delivery_has_ctl(q->env.sender) || strchr(q->env.sender, '>') != NULL) {
		for (i = 0; i < n; i++) {
			struct delivery_result res;

			if (is_routed[i])
				continue;
			delivery_result_set(&res, DELIVERY_R_PERM, "5.1.7",
				"bad sender address syntax");
			queue_apply(q, &q->env.rcpts[i], &res);
			is_routed[i] = true;
		}
	}
	for (i = 0; i < n; i++) {
		if (is_routed[i])
			continue;
		k = 0;
		for (j = i; j < n && k < max; j++) {
			if (!is_routed[j] && delivery_hop_same(&hops[i], &hops[j])) {
				idx[k++] = j;
				is_routed[j] = true;
			}
		}
		queue_group(q, &hops[i], idx, k);
		/* Save after a transaction when another one follows: a crash
		 * re-sends only later groups. After the last one the caller saves
		 * (deferral, early bounce, expiry) or removes the message, so a
		 * save here would only cost two fsyncs per delivered message. */
		for (j = i + 1; j < n && is_routed[j]; j++)
			;
		if (j < n && spool_state_save(q->sp, &q->env, err) < 0)
			goto out;
		/* Recipients of the same hop beyond max form the next group when
		 * the loop reaches the first of them. */
	}
	rc = 0;
out:
	free(hops);
	free(is_routed);
	free(idx);
	return rc;
}

/* queue_bounce_wanted - does this message get a bounce now (D-4)? Some
 * recipient failed, asked for a DSN and was not reported yet; never for a
 * bounce, a notification or the null sender. */
static bool queue_bounce_wanted(const struct queue_ctx *q)
{
	const char *dom;
	size_t i;

	if (q->env.kind != SPOOL_KIND_MESSAGE || q->env.sender == NULL ||
	    q->env.sender[0] == '\0')
		return false;
	if (q->conf->bounce_policy != DELIVERY_BOUNCE_ANY) {
		dom = sg_addr_domain(q->env.sender);
		if (dom == NULL || !mta_is_relay_domain(q->mta, dom))
			return false;
	}
	for (i = 0; i < q->env.nrcpts; i++)
		if (delivery_rcpt_needs_dsn(&q->env.rcpts[i]))
			return true;
	return false;
}

/* queue_bounce_env - envelope of the bounce: null sender, to the sender. */
static void queue_bounce_env(const struct queue_ctx *q, struct spool_env *benv)
{
	bool is_8bit = false;
	const char *p;

	memset(benv, 0, sizeof(*benv));
	for (p = q->env.sender; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			is_8bit = true;
	benv->sender = sg_xstrdup("");
	benv->kind = SPOOL_KIND_BOUNCE;
	benv->parent_id = sg_xstrdup(q->id);
	benv->arrival = q->now;
	benv->smtputf8 = is_8bit;
	benv->body_8bit = q->env.body_8bit || q->env.smtputf8 || is_8bit;
	spool_env_add_rcpt(benv, q->env.sender, NULL, SPOOL_NOTIFY_NEVER);
}

/* queue_bounce_logged - log lines of a created bounce. */
static void queue_bounce_logged(const struct queue_ctx *q, const char *bid)
{
	char from[300];

	sg_log_esc(from, sizeof(from), q->env.sender, strlen(q->env.sender));
	sg_log_mail(SG_LOG_INFO, q->id, "sender non-delivery notification: %s", bid);
	sg_log_mail(SG_LOG_INFO, bid, "from=<>, to=<%s>, kind=bounce, parent=%s", from, q->id);
}

/* queue_mark_reported - the failures just bounced are not bounced again. */
static void queue_mark_reported(struct queue_ctx *q)
{
	size_t i;

	for (i = 0; i < q->env.nrcpts; i++) {
		struct spool_rcpt *r = &q->env.rcpts[i];
		struct delivery_result res;

		if (!delivery_rcpt_needs_dsn(r))
			continue;
		if (delivery_result_parse(r->last_reply, &res) < 0)
			delivery_result_set(&res, DELIVERY_R_PERM, "5.0.0", "delivery failed");
		res.is_reported = true;
		free(r->last_reply);
		r->last_reply = delivery_result_format(&res);
	}
}

/*
 * queue_bounce_early - some recipients failed permanently while others are
 * still deferred: bounce those now (Postfix does the same) and remember it
 * in the state. A crash between the bounce commit and the state save sends
 * that bounce twice (at least once, never lost).
 */
static int queue_bounce_early(struct queue_ctx *q, struct sg_error *err)
{
	struct spool_writer *w = NULL;
	struct spool_env benv;
	char bid[SG_MAIL_ID_LEN + 1];
	int rc = -1;

	queue_bounce_env(q, &benv);
	w = spool_writer_new(q->sp, &benv, 0, err);
	if (w == NULL)
		goto out;
	snprintf(bid, sizeof(bid), "%s", spool_writer_id(w));
	if (delivery_dsn_write(q->conf, &q->env, q->body_fd, q->body_off, q->body_len, q->now,
		    w, err) < 0 ||
	    spool_writer_commit(&w, SPOOL_Q_OUTGOING, err) < 0)
		goto out;
	queue_bounce_logged(q, bid);
	queue_mark_reported(q);
	rc = spool_state_save(q->sp, &q->env, err);
out:
	spool_writer_abort(&w);
	spool_env_free_fields(&benv);
	return rc;
}

/* queue_finish - every recipient is final: bounce (batch) or delete. */
static int queue_finish(struct queue_ctx *q, struct sg_error *err)
{
	struct spool_batch *b = NULL;
	struct spool_writer *w = NULL;
	struct spool_env benv;
	char bid[SG_MAIL_ID_LEN + 1];
	int rc = -1;

	memset(&benv, 0, sizeof(benv));
	if (!queue_bounce_wanted(q)) {
		if (spool_done(q->sp, SPOOL_Q_OUTGOING, &q->env, err) < 0)
			goto out;
		sg_log_mail(SG_LOG_INFO, q->id, "removed");
		rc = 0;
		goto out;
	}
	/* Bounce and removal of the original in one batch: exactly once. */
	queue_bounce_env(q, &benv);
	b = spool_batch_new(q->sp, SPOOL_Q_OUTGOING, q->id);
	if (b == NULL) {
		sg_error_set(err, SG_E_IO, "cannot start a spool batch");
		goto out;
	}
	w = spool_batch_writer(b, &benv, 0, err);
	if (w == NULL)
		goto out;
	snprintf(bid, sizeof(bid), "%s", spool_writer_id(w));
	if (delivery_dsn_write(q->conf, &q->env, q->body_fd, q->body_off, q->body_len, q->now,
		    w, err) < 0)
		goto out;
	if (spool_batch_writer_finish(b, &w, SPOOL_Q_OUTGOING, err) < 0 ||
	    spool_batch_commit(&b, err) < 0)
		goto out;
	queue_bounce_logged(q, bid);
	sg_log_mail(SG_LOG_INFO, q->id, "removed");
	rc = 0;
out:
	if (rc < 0)
		sg_error_prefix(err, "finish %s: ", q->id);
	spool_writer_abort(&w);
	spool_batch_abort(&b);
	spool_env_free_fields(&benv);
	return rc;
}

/* queue_expire - queue lifetime over: pending recipients fail with 4.4.7. */
static void queue_expire(struct queue_ctx *q)
{
	char from[300];
	size_t i;

	for (i = 0; i < q->env.nrcpts; i++) {
		struct spool_rcpt *r = &q->env.rcpts[i];
		struct delivery_result res;

		if (r->status != SPOOL_RCPT_PENDING)
			continue;
		if (delivery_result_parse(r->last_reply, &res) < 0)
			delivery_result_set(&res, DELIVERY_R_TEMP, "4.4.7",
				"delivery time expired");
		snprintf(res.enh, sizeof(res.enh), "4.4.7");
		res.is_expired = true;
		free(r->last_reply);
		r->last_reply = delivery_result_format(&res);
		r->status = SPOOL_RCPT_FAILED;
	}
	sg_log_esc(from, sizeof(from), q->env.sender, strlen(q->env.sender));
	sg_log_mail(SG_LOG_INFO, q->id, "from=<%s>, status=expired, returned to sender", from);
}

/* queue_defer - attempts+1, next attempt after backoff, move to deferred/. */
static int queue_defer(struct queue_ctx *q, struct sg_error *err)
{
	uint32_t rnd = 0;
	int64_t wait;

	(void)sg_random_bytes(&rnd, sizeof(rnd), NULL);
	q->env.attempts++;
	wait = delivery_backoff(q->mta, q->env.attempts, rnd);
	q->env.next_attempt = q->now + wait;
	free(q->env.last_error);
	q->env.last_error = sg_xstrdup(q->last_temp);
	if (spool_state_save(q->sp, &q->env, err) < 0 ||
	    spool_move(q->sp, q->id, SPOOL_Q_OUTGOING, SPOOL_Q_DEFERRED, err) < 0)
		return -1;
	sg_log_mail(SG_LOG_INFO, q->id, "deferred, attempts=%u, next attempt in %llds",
		q->env.attempts, (long long)wait);
	return 0;
}

int delivery_message(const struct delivery_conf *conf, const struct mta_settings *mta,
	struct spool *sp, const char *id, enum delivery_outcome *outcome_r,
	struct sg_error *err)
{
	struct spool_msg *m = NULL;
	struct queue_ctx q;
	struct sg_error merr;
	size_t i, npending = 0;
	int rc = -1;

	memset(&q, 0, sizeof(q));
	q.conf = conf;
	q.mta = mta;
	q.sp = sp;
	q.id = id;
	q.now = sg_now();
	m = spool_msg_open(sp, SPOOL_Q_OUTGOING, id, err);
	if (m == NULL) {
		if (err != NULL && err->code == SG_E_PARSE) {
			sg_log_mail(SG_LOG_ERR, id, "damaged spool file, moved to the error "
				"queue: %s", err->msg);
			if (spool_move(sp, id, SPOOL_Q_OUTGOING, SPOOL_Q_ERROR, &merr) < 0)
				sg_log_mail(SG_LOG_ERR, id, "%s", merr.msg);
		}
		return -1;
	}
	spool_env_copy(&q.env, spool_msg_env(m));
	if (q.env.sender == NULL)
		q.env.sender = sg_xstrdup("");
	q.body_fd = spool_msg_body_fd(m, &q.body_off, &q.body_len);
	if (q.body_fd < 0) {
		sg_error_set(err, SG_E_INTERNAL, "no body fd for %s", id);
		goto out;
	}
	if (queue_deliver_pending(&q, err) < 0)
		goto out;
	for (i = 0; i < q.env.nrcpts; i++)
		if (q.env.rcpts[i].status == SPOOL_RCPT_PENDING)
			npending++;
	if (npending > 0 && mta->max_queue_lifetime > 0 &&
	    q.now - q.env.arrival >= (int64_t)mta->max_queue_lifetime) {
		queue_expire(&q);
		if (spool_state_save(sp, &q.env, err) < 0)
			goto out;
		npending = 0;
	}
	if (npending > 0) {
		/* A failed early bounce is not fatal: the failures stay
		 * unreported and are bounced at the next attempt or at the end;
		 * deferring now keeps the retry schedule (no busy loop). */
		if (queue_bounce_wanted(&q) && queue_bounce_early(&q, &merr) < 0)
			sg_log_mail(SG_LOG_WARN, id, "bounce postponed: %s", merr.msg);
		if (queue_defer(&q, err) < 0)
			goto out;
		if (outcome_r != NULL)
			*outcome_r = DELIVERY_DEFERRED;
	} else {
		if (queue_finish(&q, err) < 0)
			goto out;
		if (outcome_r != NULL)
			*outcome_r = DELIVERY_DONE;
	}
	rc = 0;
out:
	if (rc < 0)
		sg_log_mail(SG_LOG_ERR, id, "delivery failed locally: %s", err->msg);
	spool_msg_close(&m);
	spool_env_free_fields(&q.env);
	return rc;
}

/* --------------------------------------------------------------- requeue */

struct requeue_list {
	char (*ids)[SG_MAIL_ID_LEN + 1];
	size_t n, cap;
};

static int requeue_collect(const char *id, void *arg)
{
	struct requeue_list *l = arg;

	if (!sg_mail_id_is_valid(id))
		return 0;
	if (l->n == QUEUE_REQUEUE_MAX)
		return 1;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->ids = sg_xrealloc(l->ids, l->cap * sizeof(*l->ids));
	}
	snprintf(l->ids[l->n++], SG_MAIL_ID_LEN + 1, "%s", id);
	return 0;
}

int delivery_requeue_due(struct spool *sp, int64_t now, struct sg_error *err)
{
	struct requeue_list l = {0};
	size_t i;
	int moved = 0;

	if (spool_list(sp, SPOOL_Q_DEFERRED, requeue_collect, &l, err) < 0) {
		free(l.ids);
		return -1;
	}
	for (i = 0; i < l.n; i++) {
		struct sg_error e;
		struct spool_env env;
		int64_t next;

		/* Structure and trailer only (no SHA-256): cheap for big messages. */
		if (spool_env_read(sp, SPOOL_Q_DEFERRED, l.ids[i], &env, NULL, &e) < 0) {
			if (e.code != SG_E_NOTFOUND)
				sg_log_mail(SG_LOG_WARN, l.ids[i], "cannot read deferred message: %s",
					e.msg);
			continue;
		}
		next = env.next_attempt;
		spool_env_free_fields(&env);
		if (next > now)
			continue;
		if (spool_move(sp, l.ids[i], SPOOL_Q_DEFERRED, SPOOL_Q_OUTGOING, &e) < 0) {
			if (e.code != SG_E_NOTFOUND)
				sg_log_mail(SG_LOG_WARN, l.ids[i], "requeue: %s", e.msg);
			continue;
		}
		sg_trace(SG_TRACE_DELIVERY, "%s: requeued from deferred", l.ids[i]);
		moved++;
	}
	free(l.ids);
	return moved;
}
