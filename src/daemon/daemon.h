/*
 * daemon.h - shared state of `sealgated` (private to src/daemon/): the
 * configuration snapshot, the spool, the work queues, the current MTA
 * settings snapshot and the database health flag that the SMTP listener reads.
 */
#ifndef SG_DAEMON_H
#define SG_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>

#include "daemon_workq.h"
#include "lib/lib.h"
#include "mta/mta.h"
#include "spool/spool.h"

struct daemon_mta_ref {
	struct mta_settings *s;
	_Atomic int refs;
};

struct daemon {
	struct sg_config *cfg;
	struct spool *spool;
	struct daemon_workq *mpa_q;
	struct daemon_workq *dlv_q;
	pthread_mutex_t mta_lock;
	struct daemon_mta_ref *mta;      /* current snapshot, under mta_lock */
	char *server_secret;             /* own-mail marker key (F-FLOW-7), under mta_lock */
	_Atomic bool store_ok;           /* last database health check */
	_Atomic bool stopping;
	pthread_mutex_t sleep_lock;
	pthread_cond_t sleep_cond;       /* wakes the scheduler early on stop */
	_Atomic bool outgoing_dirty;     /* an MPA batch produced outputs */
};

/* daemon_mta_get - a reference to the current MTA settings; release it. */
struct daemon_mta_ref *daemon_mta_get(struct daemon *d);
void daemon_mta_release(struct daemon_mta_ref **refp);

#endif
