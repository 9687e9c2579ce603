/*
 * daemon_workq.h - a bounded-memory work queue of mail IDs shared by the
 * daemon's producer (SMTP listener, directory scans) and worker threads (MPA,
 * delivery). An ID is queued at most once: pushing an ID that is queued or in
 * progress is a no-op, so periodic directory rescans never double-process.
 * Private to the daemon.
 */
#ifndef SG_DAEMON_WORKQ_H
#define SG_DAEMON_WORKQ_H

#include "lib/lib.h"

struct daemon_workq;

struct daemon_workq *daemon_workq_new(void);
void daemon_workq_free(struct daemon_workq **qp);
/* daemon_workq_push - queue id unless queued or in progress; wakes one worker. */
void daemon_workq_push(struct daemon_workq *q, const char *id);
/*
 * daemon_workq_pop - wait for an ID (copied into id_r, SG_MAIL_ID_LEN + 1
 * bytes); the ID is "in progress" until daemon_workq_done. Returns 1 with an
 * ID, 0 when the queue was closed.
 */
int daemon_workq_pop(struct daemon_workq *q, char *id_r);
/*
 * daemon_workq_pop_timed - daemon_workq_pop waiting at most timeout_ms
 * (monotonic clock). Returns 1 with an ID, 0 when nothing came within
 * timeout_ms, -1 when the queue was closed.
 */
int daemon_workq_pop_timed(struct daemon_workq *q, char *id_r, unsigned timeout_ms);
void daemon_workq_done(struct daemon_workq *q, const char *id);
/* daemon_workq_close - wake every waiter; pop returns 0 from now on (queued
 * IDs are dropped: their files stay in the spool for the next start). */
void daemon_workq_close(struct daemon_workq *q);
size_t daemon_workq_len(struct daemon_workq *q);

#endif
