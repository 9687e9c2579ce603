/*
 * sms_test.h - fixtures shared by the SMS tests: a fresh migrated database
 * per test (a SQLite file in a temp dir, or with SMS_TEST_PG a private
 * PostgreSQL database on SG_TEST_PG_URL or on a server started with
 * scripts/test-pg), and a small in-process HTTP server on 127.0.0.1 that
 * records requests and answers from a script (status, body, delay).
 */
#ifndef SG_SMS_TEST_H
#define SG_SMS_TEST_H

#include <pthread.h>
#include <stdbool.h>

#include "lib/lib.h"
#include "store/store.h"
#include "sms/sms.h"

struct stest_fx {
	struct store *db;
	char url[768];
	char dbname[96];
	char path[512];
};

bool stest_is_pg(void);
/* the group's temp dir (files for the file transport go here) */
const char *stest_tmpdir(void);
int stest_group_setup(void **state);
int stest_group_teardown(void **state);
/* per test: new database, store_init'ed; *state = struct stest_fx */
int stest_setup(void **state);
int stest_teardown(void **state);
/* stest_open2 - a second connection to the same database */
struct store *stest_open2(struct stest_fx *f);
/* stest_set - sms_setting_set asserting success */
void stest_set(struct store *db, const char *name, const char *value);

/* ------------------------------------------------------- test HTTP server */

struct thttp_reply {
	int status;        /* HTTP status */
	const char *body;  /* response body */
	int delay_ms;      /* wait before answering */
	const char *headers;  /* extra header lines, each ending in CRLF, or NULL */
};

#define THTTP_MAX_REQ 16
#define THTTP_REQ_MAX 8192

struct thttp {
	int fd;
	void *tls;         /* SSL_CTX * when serving HTTPS (thttp_start_tls) */
	unsigned port;
	pthread_t th;
	pthread_mutex_t mu;
	bool stop;
	struct thttp_reply script[8];  /* reply i for request i; the last repeats */
	size_t n_script;
	char req[THTTP_MAX_REQ][THTTP_REQ_MAX];  /* raw requests (head + body) */
	size_t n_req;
};

/* thttp_start - listen on 127.0.0.1:0 and serve from a thread; 0 ok */
int thttp_start(struct thttp *h);
/* thttp_start_tls - the same over TLS with a PEM certificate and key */
int thttp_start_tls(struct thttp *h, const char *cert, const char *key);
void thttp_stop(struct thttp *h);
/* thttp_script - set the replies (copied; resets the request log) */
void thttp_script(struct thttp *h, const struct thttp_reply *r, size_t n);
/* thttp_count - requests received so far */
size_t thttp_count(struct thttp *h);
/* thttp_request - copy of request i ("" when absent) into out */
void thttp_request(struct thttp *h, size_t i, char *out, size_t outsz);

#endif
