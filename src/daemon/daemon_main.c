/*
 * daemon_main.c - `sealgated`: start-up, worker pools, scheduler, shutdown.
 *
 * Process/thread layout (one process for now; DESIGN.md/STYLE §8 describe the
 * later split):
 *   main thread      parse options, load config, init libraries, open the
 *                    store (migrate + server secret), recover the spool, start
 *                    the threads below, then wait for SIGTERM/SIGINT/SIGHUP.
 *   smtp thread(s)   the SMTP listener (src/smtp): writes incoming/ and calls
 *                    daemon_on_queued() after each durable commit.
 *   mpa workers      take IDs from mpa_q, run the pipeline (src/mpa), which
 *                    moves the message from incoming/ to outgoing/ (exactly once).
 *   delivery workers take IDs from dlv_q and relay them (src/delivery).
 *   scheduler        every second: rescans incoming/ and outgoing/ (work that
 *                    a retry or a restart left behind), moves due deferred
 *                    messages back to outgoing/, checks database health and
 *                    reloads the MTA settings every 30 s (and on SIGHUP).
 * Invariant: work is handed between threads by spool file + ID only, never by
 * memory, so a crash at any point loses nothing (STYLE §8, §9).
 */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gmime/gmime.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "ca/ca.h"
#include "delivery/delivery.h"
#include "mpa/mpa.h"
#include "pdf/pdf.h"
#include "pki/pki.h"
#include "pki/pki_key.h"
#include "policy/policy.h"
#include "sms/sms.h"
#include "smtp/smtp.h"
#include "store/store.h"

#define DAEMON_MTA_RELOAD_SECONDS 30
#define DAEMON_HEALTH_SECONDS 2
/* How often the CRL thread asks the PKI module for due distribution points
 * (each point has its own schedule there: 12 h, backing off on failures). */
#define DAEMON_CRL_CHECK_SECONDS 300
/* How often the background thread sends due SMS (F-SMS-1) and issues
 * delayed certificate requests (F-CA-3). */
#define DAEMON_SMS_SECONDS 10
#define DAEMON_CA_SECONDS 10

/* Set by the signal thread on SIGHUP; read by the scheduler. */
static _Atomic bool daemon_reload_requested;

static void daemon_sleep(struct daemon *d, int64_t ms);
static void daemon_on_output(void *arg, const char *id);

struct daemon_mta_ref *daemon_mta_get(struct daemon *d)
{
	struct daemon_mta_ref *r;

	pthread_mutex_lock(&d->mta_lock);
	r = d->mta;
	atomic_fetch_add(&r->refs, 1);
	pthread_mutex_unlock(&d->mta_lock);
	return r;
}

void daemon_mta_release(struct daemon_mta_ref **refp)
{
	struct daemon_mta_ref *r = *refp;

	if (r == NULL)
		return;
	*refp = NULL;
	if (atomic_fetch_sub(&r->refs, 1) == 1) {
		mta_settings_free(&r->s);
		free(r);
	}
}

/* daemon_mta_install - make s the current snapshot (takes ownership). */
static void daemon_mta_install(struct daemon *d, struct mta_settings *s)
{
	struct daemon_mta_ref *r = sg_xcalloc(1, sizeof(*r));
	struct daemon_mta_ref *old;

	r->s = s;
	atomic_init(&r->refs, 1);
	pthread_mutex_lock(&d->mta_lock);
	old = d->mta;
	d->mta = r;
	pthread_mutex_unlock(&d->mta_lock);
	daemon_mta_release(&old);
}

/* daemon_secret_reload - the server secret as the pipeline sees it (the
 * global policy property server_secret, which an admin may override), for
 * the marker on bounces. Kept when it cannot be read. */
static void daemon_secret_reload(struct daemon *d, struct store *db)
{
	struct sg_error err;
	struct policy_opts o = {.hostname = d->cfg->hostname};
	struct policy *p = policy_new(db, &o);
	struct policy_props *gp = NULL;
	const char *v;

	if (p == NULL || policy_resolve_global(p, &gp, &err) < 0) {
		sg_log(SG_LOG_WARN, "cannot read the server secret: %s",
			p == NULL ? "policy" : err.msg);
		policy_free(&p);
		return;
	}
	v = policy_props_get(gp, POLICY_P_SERVER_SECRET, NULL);
	pthread_mutex_lock(&d->mta_lock);
	free(d->server_secret);
	d->server_secret = v != NULL && v[0] != '\0' ? sg_xstrdup(v) : NULL;
	pthread_mutex_unlock(&d->mta_lock);
	policy_props_free(&gp);
	policy_free(&p);
}

/* daemon_secret_get - a copy of the current server secret or NULL; free it. */
static char *daemon_secret_get(struct daemon *d)
{
	char *s;

	pthread_mutex_lock(&d->mta_lock);
	s = d->server_secret != NULL ? sg_xstrdup(d->server_secret) : NULL;
	pthread_mutex_unlock(&d->mta_lock);
	return s;
}

/* daemon_mta_reload - reload MTA settings from db; keep the old ones on error. */
static int daemon_mta_reload(struct daemon *d, struct store *db)
{
	struct sg_error err;
	struct mta_settings *s;

	daemon_secret_reload(d, db);
	s = mta_settings_load(db, d->cfg->hostname, &err);

	if (s == NULL) {
		sg_log(SG_LOG_WARN, "cannot load MTA settings, keeping the current ones: %s",
			err.msg);
		return -1;
	}
	daemon_mta_install(d, s);
	return 0;
}

/* ------------------------------------------------------------- workers */

static int daemon_scan_cb(const char *id, void *arg)
{
	daemon_workq_push(arg, id);
	return 0;
}

static void daemon_scan(struct daemon *d, enum spool_queue q, struct daemon_workq *wq)
{
	struct sg_error err;

	if (spool_list(d->spool, q, daemon_scan_cb, wq, &err) < 0)
		sg_log(SG_LOG_WARN, "scan of %s failed: %s", spool_queue_name(q), err.msg);
}

static void daemon_on_queued(void *arg, const char *id)
{
	struct daemon *d = arg;

	daemon_workq_push(d->mpa_q, id);
}

/* daemon_after_filter_size - the current MTA after-filter size limit. */
static uint64_t daemon_after_filter_size(struct daemon *d)
{
	struct daemon_mta_ref *r = daemon_mta_get(d);
	uint64_t v = r->s->after_filter_size;

	daemon_mta_release(&r);
	return v;
}

/*
 * daemon_mpa_new - a pipeline for one worker with its own store connection
 * (one connection per thread). The database is required: policy decisions
 * come from it, and a pipeline without them would send in the clear what
 * policy may require encrypted (fail closed). NULL + err when unavailable.
 */
static struct mpa *daemon_mpa_new(struct daemon *d, struct store **db_r,
	uint64_t *max_size_r, struct sg_error *err)
{
	struct mpa_conf conf;
	struct mpa *mpa;

	memset(&conf, 0, sizeof(conf));
	*db_r = store_open(d->cfg->database, err);
	if (*db_r == NULL)
		return NULL;
	conf.cfg = d->cfg;
	conf.db = *db_r;
	conf.max_size = *max_size_r = daemon_after_filter_size(d);
	conf.on_output = daemon_on_output;
	conf.on_output_arg = d;
	mpa = mpa_new(&conf, err);
	if (mpa == NULL)
		store_close(db_r);
	return mpa;
}

/* daemon_mpa_ready - make sure *mpap is a pipeline for the current settings:
 * created on first use (or after a failure), recreated when the after-filter
 * limit changed (MTA settings reload). 0 ok, -1 (logged) when none can be made. */
static int daemon_mpa_ready(struct daemon *d, struct mpa **mpap, struct store **dbp,
	uint64_t *max_size)
{
	struct sg_error err;
	struct store *db2 = NULL;
	struct mpa *fresh;
	uint64_t size2;

	if (*mpap != NULL && daemon_after_filter_size(d) == *max_size)
		return 0;
	fresh = daemon_mpa_new(d, &db2, &size2, &err);
	if (fresh == NULL) {
		sg_log(SG_LOG_WARN, "mpa worker: cannot start the pipeline: %s", err.msg);
		return *mpap != NULL ? 0 : -1;   /* keep the old one if there is one */
	}
	mpa_free(mpap);
	store_close(dbp);
	*mpap = fresh;
	*dbp = db2;
	*max_size = size2;
	return 0;
}

/* daemon_on_output - a committed pipeline output goes straight to delivery
 * (the scheduler's scan of outgoing/ stays as the safety net). */
static void daemon_on_output(void *arg, const char *id)
{
	struct daemon *d = arg;

	daemon_workq_push(d->dlv_q, id);
}

static void *daemon_mpa_worker(void *arg)
{
	struct daemon *d = arg;
	struct sg_error err;
	struct mpa *mpa = NULL;
	struct store *db = NULL;
	uint64_t max_size = 0;
	char id[SG_MAIL_ID_LEN + 1];

	while (daemon_workq_pop(d->mpa_q, id) == 1) {
		if (daemon_mpa_ready(d, &mpa, &db, &max_size) < 0) {
			/* stays in incoming/; the scheduler rescans it later */
			daemon_workq_done(d->mpa_q, id);
			daemon_sleep(d, 1000);
			continue;
		}
		if (mpa_process_spooled(mpa, d->spool, id, &err) < 0) {
			/* temporary: stays in incoming/, the scheduler rescans it */
			sg_log_mail(SG_LOG_WARN, id, "processing deferred: %s", err.msg);
		}
		/* outputs were handed to delivery by daemon_on_output */
		daemon_workq_done(d->mpa_q, id);
	}
	mpa_free(&mpa);
	store_close(&db);
	return NULL;
}

/* daemon_delivery_conf - the delivery agent's settings from the config. */
static void daemon_delivery_conf(struct daemon *d, struct delivery_conf *conf)
{
	struct sg_error err;

	delivery_conf_init(conf, d->cfg->hostname);
	conf->mode = d->cfg->mode;
	if (d->cfg->next_hop != NULL && d->cfg->next_hop[0] != '\0'
		&& sg_hostport_parse(d->cfg->next_hop, 25, &conf->next_hop, &err) < 0)
		sg_log(SG_LOG_ERR, "[smtp] next_hop: %s", err.msg); /* checked at start */
	if (sg_hostport_parse(d->cfg->smtp_listen, 25, &conf->listen, &err) < 0)
		memset(&conf->listen, 0, sizeof(conf->listen));
}

/* daemon_delivery_worker - a delivery thread. SMTP connections stay open
 * between messages (delivery's per-thread connection cache); after
 * DAEMON_DLV_IDLE_MS without work, and before the thread exits, it closes
 * them (QUIT). With no idle connection it waits without a timeout. */
#define DAEMON_DLV_IDLE_MS 2000u

static void *daemon_delivery_worker(void *arg)
{
	struct daemon *d = arg;
	struct delivery_conf conf;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1];

	daemon_delivery_conf(d, &conf);
	for (;;) {
		struct daemon_mta_ref *mta;
		char *secret;
		enum delivery_outcome outcome;
		int rc;

		if (delivery_conn_cache_count() == 0)
			rc = daemon_workq_pop(d->dlv_q, id) == 1 ? 1 : -1;
		else
			rc = daemon_workq_pop_timed(d->dlv_q, id, DAEMON_DLV_IDLE_MS);
		if (rc < 0)
			break;
		if (rc == 0) {
			delivery_conn_cache_close();
			continue;
		}
		mta = daemon_mta_get(d);
		secret = daemon_secret_get(d);

		conf.server_secret = secret;
		if (delivery_message(&conf, mta->s, d->spool, id, &outcome, &err) < 0
			&& err.code != SG_E_NOTFOUND)
			sg_log_mail(SG_LOG_WARN, id, "delivery failed locally: %s", err.msg);
		daemon_mta_release(&mta);
		conf.server_secret = NULL;
		free(secret);
		daemon_workq_done(d->dlv_q, id);
	}
	delivery_conn_cache_close();
	return NULL;
}

/* daemon_sleep - wait up to ms or until woken (stop, new outputs). */
static void daemon_sleep(struct daemon *d, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&d->sleep_lock);
	if (!atomic_load(&d->stopping) && !atomic_load(&d->outgoing_dirty))
		pthread_cond_timedwait(&d->sleep_cond, &d->sleep_lock, &ts);
	pthread_mutex_unlock(&d->sleep_lock);
}

static void *daemon_scheduler(void *arg)
{
	struct daemon *d = arg;
	struct sg_error err;
	struct store *db = NULL;
	int64_t last_reload = sg_mono_ms(), last_health = 0, last_scan = 0;

	while (!atomic_load(&d->stopping)) {
		int64_t now = sg_mono_ms();

		if (now - last_health >= DAEMON_HEALTH_SECONDS * 1000) {
			last_health = now;
			if (db == NULL)
				db = store_open(d->cfg->database, &err);
			if (db == NULL || store_ping(db, &err) < 0) {
				if (atomic_exchange(&d->store_ok, false))
					sg_log(SG_LOG_ERR, "database unavailable: %s", err.msg);
				store_close(&db);
			} else if (!atomic_exchange(&d->store_ok, true)) {
				sg_log(SG_LOG_INFO, "database available again");
			}
		}
		if (db != NULL && (now - last_reload >= DAEMON_MTA_RELOAD_SECONDS * 1000
			|| atomic_exchange(&daemon_reload_requested, false))) {
			last_reload = now;
			daemon_mta_reload(d, db);
		}
		if (delivery_requeue_due(d->spool, sg_now(), &err) < 0)
			sg_log(SG_LOG_WARN, "deferred queue scan failed: %s", err.msg);
		/* Outputs of the MPA and deferred messages made due are found by a
		 * scan of outgoing/; incoming/ is rescanned for messages whose
		 * processing was deferred (database down) — at most every 5 s. */
		atomic_store(&d->outgoing_dirty, false);
		daemon_scan(d, SPOOL_Q_OUTGOING, d->dlv_q);
		if (now - last_scan >= 5000) {
			last_scan = now;
			if (atomic_load(&d->store_ok))
				daemon_scan(d, SPOOL_Q_INCOMING, d->mpa_q);
		}
		daemon_sleep(d, 1000);
		/* Under load every processed message wakes us: a directory scan
		 * per message costs more than the message (readdir of a churning
		 * directory); gather 50 ms of outputs per scan instead. */
		if (atomic_load(&d->outgoing_dirty) && !atomic_load(&d->stopping))
			usleep(50 * 1000);
	}
	store_close(&db);
	return NULL;
}

/* daemon_crl_cb - log one distribution point's download result. */
static void daemon_crl_cb(const char *url, int ok, const char *msg, void *arg)
{
	(void)arg;
	sg_log(ok ? SG_LOG_INFO : SG_LOG_WARN, "crl update %s: %s", url,
		ok ? "ok" : (msg != NULL ? msg : "failed"));
}

/* daemon_crl_round - download due CRLs; logs its own failures. */
static void daemon_crl_round(struct store *db)
{
	struct sg_error err;
	struct pki *pki = pki_open(db, &err);
	char *proxy = NULL;

	if (pki == NULL || pki_crl_proxy_get(pki, &proxy, &err) < 0 ||
	    pki_crl_update(pki, proxy, 0, daemon_crl_cb, NULL, &err) < 0)
		sg_log(SG_LOG_WARN, "crl update: %s", err.msg);
	free(proxy);
	pki_close(&pki);
}

/* daemon_sms_round - send due SMS through the configured transport. */
static void daemon_sms_round(struct store *db)
{
	struct sg_error err;
	struct sms_run_stats st;

	memset(&st, 0, sizeof(st));
	if (sms_run_due(db, NULL, sg_now(), 50, &st, &err) < 0)
		sg_log(SG_LOG_WARN, "sms: %s", err.msg);
	else if (st.sent + st.deferred + st.failed > 0)
		sg_log(SG_LOG_INFO, "sms: sent=%u, deferred=%u, failed=%u", st.sent,
			st.deferred, st.failed);
}

/* daemon_ca_round - issue queued (delayed handler) certificate requests. */
static void daemon_ca_round(struct daemon *d, struct store *db)
{
	struct sg_error err;
	struct pki *pki = pki_open(db, &err);
	struct pki_keys *keys = pki != NULL ? pki_keys_open(pki, d->cfg->data_dir, &err) : NULL;
	struct ca *ca = keys != NULL ? ca_open(pki, keys, &err) : NULL;
	int n;

	if (ca == NULL) {
		sg_log(SG_LOG_WARN, "ca worker: %s", err.msg);
	} else if ((n = ca_worker_run(ca, 100, &err)) < 0) {
		sg_log(SG_LOG_WARN, "ca worker: %s", err.msg);
	} else if (n > 0) {
		sg_log(SG_LOG_INFO, "ca worker: issued %d certificate(s)", n);
	}
	ca_close(&ca);
	pki_keys_close(&keys);
	pki_close(&pki);
}

/*
 * daemon_background_thread - jobs that may block for a network timeout and so
 * run outside the scheduler: CRL downloads (the PKI module keeps each
 * distribution point's schedule: 12 h, backoff on failure), the SMS queue and
 * delayed certificate requests (every 10 s).
 * Its own store connection; a database outage only delays the next round.
 */
static void *daemon_background_thread(void *arg)
{
	struct daemon *d = arg;
	int64_t next_crl = sg_mono_ms() + 10 * 1000;   /* shortly after start */
	int64_t next_sms = sg_mono_ms();

	while (!atomic_load(&d->stopping)) {
		struct sg_error err;
		struct store *db;
		int64_t now = sg_mono_ms();

		if (now < next_crl && now < next_sms) {
			usleep(500 * 1000);   /* checks stopping twice a second */
			continue;
		}
		db = store_open(d->cfg->database, &err);
		if (db == NULL) {
			sg_log(SG_LOG_DEBUG, "background jobs: %s", err.msg);
		} else {
			if (now >= next_sms) {
				daemon_sms_round(db);
				daemon_ca_round(d, db);
			}
			if (now >= next_crl)
				daemon_crl_round(db);
		}
		store_close(&db);
		if (now >= next_sms)
			next_sms = now + DAEMON_SMS_SECONDS * 1000;
		if (now >= next_crl)
			next_crl = now + DAEMON_CRL_CHECK_SECONDS * 1000;
	}
	return NULL;
}

struct daemon_signals {
	struct daemon *d;
	struct smtp_server *smtp;
	sigset_t set;
};

/* daemon_signal_thread - sigwait loop: TERM/INT stop, HUP reloads settings. */
static void *daemon_signal_thread(void *arg)
{
	struct daemon_signals *sig = arg;
	int signo;

	for (;;) {
		if (sigwait(&sig->set, &signo) != 0)
			continue;
		if (signo == SIGHUP) {
			sg_log(SG_LOG_INFO, "SIGHUP: reloading MTA settings");
			atomic_store(&daemon_reload_requested, true);
			continue;
		}
		if (signo == SIGUSR1) /* internal: wake-up at shutdown */
			return NULL;
		sg_log(SG_LOG_INFO, "signal %d: shutting down", signo);
		atomic_store(&sig->d->stopping, true);
		smtp_server_stop(sig->smtp);
		return NULL;
	}
}

static bool daemon_store_ok(void *arg)
{
	struct daemon *d = arg;

	return atomic_load(&d->store_ok);
}

static struct mta_settings *daemon_settings_get(void *arg)
{
	struct daemon *d = arg;
	struct daemon_mta_ref *r = daemon_mta_get(d);
	struct mta_settings *copy = mta_settings_ref(r->s);

	daemon_mta_release(&r);
	return copy;
}

static void usage(void)
{
	fprintf(stderr, "usage: sealgated -c FILE [--check]\n"
		"  -c, --config FILE   configuration file (required)\n"
		"      --check         validate the configuration and exit\n");
}

/* daemon_open_store - open, migrate and initialise the database (idempotent). */
static int daemon_open_store(struct daemon *d, struct store **db_r, struct sg_error *err)
{
	*db_r = store_open(d->cfg->database, err);
	if (*db_r == NULL)
		return -1;
	if (store_init(*db_r, err) < 0) {
		store_close(db_r);
		return -1;
	}
	return 0;
}

static int daemon_start(struct daemon *d)
{
	struct sg_error err;
	struct store *db = NULL;
	struct mta_settings *mta = NULL;
	struct smtp_server *smtp = NULL;
	struct smtp_server_conf sconf;
	struct daemon_signals sig;
	pthread_t *mpa_threads = NULL, *dlv_threads = NULL;
	pthread_t sched_thread, sig_thread, crl_thread;
	char spool_dir[4096];
	unsigned i, n_mpa = 0, n_dlv = 0;
	bool sched_started = false, sig_started = false, crl_started = false;
	int rc = 1;

	/* Signals go to the signal thread only: blocked before any thread
	 * starts, so every thread inherits the mask. */
	sigemptyset(&sig.set);
	sigaddset(&sig.set, SIGTERM);
	sigaddset(&sig.set, SIGINT);
	sigaddset(&sig.set, SIGHUP);
	sigaddset(&sig.set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sig.set, NULL);
	if (sg_mkdir_p(d->cfg->data_dir, 0700, &err) < 0) {
		sg_log(SG_LOG_ERR, "data directory: %s", err.msg);
		return 1;
	}
	/* The database must be usable at start: fail fast with a clear message. */
	if (daemon_open_store(d, &db, &err) < 0) {
		sg_log(SG_LOG_ERR, "database %s: %s", d->cfg->database, err.msg);
		goto out;
	}
	atomic_store(&d->store_ok, true);
	mta = mta_settings_load(db, d->cfg->hostname, &err);
	if (mta == NULL) {
		sg_log(SG_LOG_ERR, "MTA settings: %s", err.msg);
		goto out;
	}
	daemon_mta_install(d, mta);
	daemon_secret_reload(d, db);
	store_close(&db);

	snprintf(spool_dir, sizeof(spool_dir), "%s/spool", d->cfg->data_dir);
	d->spool = spool_open(spool_dir, &err);
	if (d->spool == NULL) {
		sg_log(SG_LOG_ERR, "spool: %s", err.msg);
		goto out;
	}
	if (spool_recover(d->spool, &err) < 0) {
		sg_log(SG_LOG_ERR, "spool recovery: %s", err.msg);
		goto out;
	}

	memset(&sconf, 0, sizeof(sconf));
	if (sg_hostport_parse(d->cfg->smtp_listen, 25, &sconf.listen, &err) < 0) {
		sg_log(SG_LOG_ERR, "[smtp] listen: %s", err.msg);
		goto out;
	}
	sconf.threads = d->cfg->smtp_threads;
	sconf.max_sessions = d->cfg->max_sessions;
	sconf.idle_timeout_ms = d->cfg->idle_timeout * 1000;
	sconf.hostname = d->cfg->hostname;
	sconf.tls_cert_file = d->cfg->smtp_tls_certificate;
	sconf.tls_key_file = d->cfg->smtp_tls_key;
	sconf.mode = d->cfg->mode;
	sconf.spool = d->spool;
	sconf.on_queued = daemon_on_queued;
	sconf.on_queued_arg = d;
	sconf.settings_get = daemon_settings_get;
	sconf.settings_arg = d;
	sconf.store_is_ok = daemon_store_ok;
	sconf.store_arg = d;
	smtp = smtp_server_new(&sconf, &err);
	if (smtp == NULL) {
		sg_log(SG_LOG_ERR, "SMTP listener %s: %s", d->cfg->smtp_listen, err.msg);
		goto out;
	}

	sig.d = d;
	sig.smtp = smtp;
	if (pthread_create(&sig_thread, NULL, daemon_signal_thread, &sig) != 0)
		goto out;
	sig_started = true;

	/* Decrypting and verifying opaque signatures hold the whole CMS
	 * structure (OpenSSL decodes it whole): the workers share a budget so
	 * that peak memory does not grow with workers x message size. */
	sg_budget_set((uint64_t)d->cfg->mpa_memory_budget_mb << 20);
	mpa_threads = sg_xcalloc(d->cfg->mpa_workers, sizeof(*mpa_threads));
	for (n_mpa = 0; n_mpa < d->cfg->mpa_workers; n_mpa++)
		if (pthread_create(&mpa_threads[n_mpa], NULL, daemon_mpa_worker, d) != 0)
			goto out;
	dlv_threads = sg_xcalloc(d->cfg->delivery_workers, sizeof(*dlv_threads));
	for (n_dlv = 0; n_dlv < d->cfg->delivery_workers; n_dlv++)
		if (pthread_create(&dlv_threads[n_dlv], NULL, daemon_delivery_worker, d) != 0)
			goto out;
	/* Recovered work first, then the scheduler keeps rescanning. */
	daemon_scan(d, SPOOL_Q_INCOMING, d->mpa_q);
	daemon_scan(d, SPOOL_Q_OUTGOING, d->dlv_q);
	if (pthread_create(&sched_thread, NULL, daemon_scheduler, d) != 0)
		goto out;
	sched_started = true;
	if (pthread_create(&crl_thread, NULL, daemon_background_thread, d) != 0)
		goto out;
	crl_started = true;

	sg_log(SG_LOG_INFO, "sealgated ready: mode=%s, smtp=%s:%u, database=%s, "
		"mpa_workers=%u, delivery_workers=%u",
		d->cfg->mode == SG_MODE_POSTFIX ? "postfix" : "standalone",
		sconf.listen.host, smtp_server_port(smtp), d->cfg->database,
		d->cfg->mpa_workers, d->cfg->delivery_workers);
	if (smtp_server_run(smtp, &err) < 0) {
		sg_log(SG_LOG_ERR, "SMTP listener: %s", err.msg);
		goto out;
	}
	rc = 0;
out:
	atomic_store(&d->stopping, true);
	if (sig_started) {
		pthread_kill(sig_thread, SIGUSR1);
		pthread_join(sig_thread, NULL);
	}
	daemon_workq_close(d->mpa_q);
	daemon_workq_close(d->dlv_q);
	pthread_mutex_lock(&d->sleep_lock);
	pthread_cond_broadcast(&d->sleep_cond);
	pthread_mutex_unlock(&d->sleep_lock);
	for (i = 0; i < n_mpa; i++)
		pthread_join(mpa_threads[i], NULL);
	for (i = 0; i < n_dlv; i++)
		pthread_join(dlv_threads[i], NULL);
	if (sched_started)
		pthread_join(sched_thread, NULL);
	if (crl_started)
		pthread_join(crl_thread, NULL);
	free(mpa_threads);
	free(dlv_threads);
	smtp_server_free(&smtp);
	store_close(&db);
	spool_close(&d->spool);
	if (rc == 0)
		sg_log(SG_LOG_INFO, "sealgated stopped");
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct daemon d;
	struct sg_error err;
	const char *path = NULL;
	bool check = false;
	int opt, rc;

	/* Large buffers (message parts, CMS data) straight from mmap: glibc's
	 * adaptive threshold otherwise keeps freed ones in each worker
	 * thread's heap (measured: decrypt+verify of 1 MB messages, peak RSS
	 * 62 -> 39 MB). */
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage();
		return 2;
	}
	sg_log_init("sealgated", SG_LOGDEST_STDERR, SG_LOG_INFO);
	memset(&d, 0, sizeof(d));
	d.cfg = sg_config_load(path, &err);
	if (d.cfg == NULL) {
		fprintf(stderr, "sealgated: %s\n", err.msg);
		return 1;
	}
	if (check) {
		printf("%s: configuration ok\n", path);
		sg_config_free(&d.cfg);
		return 0;
	}
	sg_log_set_level(d.cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	OPENSSL_init_ssl(0, NULL);
	g_mime_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);   /* before any thread (CRL, SMS) */
	if (pdf_init(&err) < 0)
		sg_log(SG_LOG_WARN, "%s: PDF encryption fails closed", err.msg);
	pthread_mutex_init(&d.mta_lock, NULL);
	pthread_mutex_init(&d.sleep_lock, NULL);
	pthread_cond_init(&d.sleep_cond, NULL);
	d.mpa_q = daemon_workq_new();
	d.dlv_q = daemon_workq_new();

	rc = daemon_start(&d);

	daemon_workq_free(&d.mpa_q);
	daemon_workq_free(&d.dlv_q);
	daemon_mta_release(&d.mta);
	free(d.server_secret);
	sg_config_free(&d.cfg);
	pdf_deinit();   /* after every worker thread was joined (daemon_start) */
	curl_global_cleanup();
	g_mime_shutdown();
	return rc;
}
