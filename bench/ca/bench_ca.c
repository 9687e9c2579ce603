/*
 * bench_ca.c - the built-in CA's throughput (issue #4): certificates issued
 * per second with RSA-2048, RSA-4096 and P-256 end-user keys (key generation,
 * signing inside pki_key, storing key + certificate), and a bulk request of
 * ROWS CSV rows (default 10,000) through the built-in handler (P-256 keys) and
 * through the delayed handler (queueing, then the worker): wall time and peak
 * RSS. SQLite in a temp directory (or -U URL). Measures; never fails on a
 * number.
 *
 * usage: bench_ca [-t SECONDS per key type] [-b ROWS] [-U URL]
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ca/ca.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void die(const char *what, const struct sg_error *err)
{
	fprintf(stderr, "bench_ca: %s: %s\n", what, err->msg);
	exit(1);
}

static void rate(struct ca *ca, enum ca_key_type kt, double secs)
{
	struct ca_issue_opts o = CA_ISSUE_OPTS_INIT;
	struct ca_issued r;
	struct sg_error err;
	char email[64];
	double t0 = now_s(), t;
	unsigned n = 0;

	o.key = (int)kt;
	do {
		snprintf(email, sizeof(email), "rate-%s-%u@example.com", ca_key_type_name(kt), n);
		o.subject.email = email;
		if (ca_issue(ca, &o, &r, &err) < 0)
			die("issue", &err);
		n++;
		t = now_s() - t0;
	} while (t < secs || n < 3);
	printf("issue %-8s %6u certificates in %6.2f s = %8.1f/s (%.1f ms each)\n",
		ca_key_type_name(kt), n, t, n / t, 1000.0 * t / n);
}

static char *csv_make(size_t rows, const char *prefix, size_t *len_r)
{
	size_t cap = 64 + rows * 96, off, i;
	char *s = malloc(cap);

	if (s == NULL)
		exit(1);
	off = (size_t)snprintf(s, cap, "e,cn,org,fn,ln\n");
	for (i = 0; i < rows; i++)
		off += (size_t)snprintf(s + off, cap - off,
			"%s%zu@example.com,\"User %zu\",\"Example, Inc.\",First,Last\n", prefix, i, i);
	*len_r = off;
	return s;
}

static void bulk(struct ca *ca, size_t rows, int handler, const char *prefix)
{
	struct ca_csv csv;
	struct sg_error err;
	size_t len;
	char *s = csv_make(rows, prefix, &len);
	double t0 = now_s(), t1, t2, t3 = 0;
	int failed, issued = 0;

	if (ca_csv_parse(s, len, rows, &csv, &err) < 0)
		die("parse", &err);
	t1 = now_s();
	failed = ca_bulk(ca, &csv, handler, NULL, NULL, &err);
	if (failed != 0)
		die("bulk", &err);
	t2 = now_s();
	if (handler == CA_HANDLER_DELAYED) {
		issued = ca_worker_run(ca, 0, &err);
		if (issued < 0)
			die("worker", &err);
		t3 = now_s() - t2;
	}
	printf("bulk %zu rows (%s, p256): parse %.3f s, %s %.2f s (%.0f rows/s)",
		rows, ca_handler_name((enum ca_handler)handler), t1 - t0,
		handler == CA_HANDLER_DELAYED ? "queue" : "issue", t2 - t1, rows / (t2 - t1));
	if (handler == CA_HANDLER_DELAYED)
		printf(", worker issued %d in %.2f s (%.0f/s)", issued, t3, issued / t3);
	printf("; wall %.2f s, peak RSS %ld MB\n", now_s() - t0, rss_mb());
	ca_csv_free(&csv);
	free(s);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/sg-bench-ca-XXXXXX", url[600];
	const char *U = NULL;
	double secs = 5;
	size_t rows = 10000;
	struct sg_error err;
	struct store *db;
	struct pki *pki;
	struct pki_keys *keys;
	struct ca *ca;
	struct ca_create_opts o;
	int c;

	while ((c = getopt(argc, argv, "t:b:U:")) != -1) {
		switch (c) {
		case 't': secs = strtod(optarg, NULL); break;
		case 'b': rows = (size_t)strtoul(optarg, NULL, 10); break;
		case 'U': U = optarg; break;
		default:
			fprintf(stderr, "usage: bench_ca [-t SECONDS] [-b ROWS] [-U URL]\n");
			return 2;
		}
	}
	sg_log_init("bench_ca", SG_LOGDEST_STDERR, SG_LOG_WARN);
	OPENSSL_init_crypto(0, NULL);
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(url, sizeof(url), "sqlite:%s/db", dir);
	db = store_open(U != NULL ? U : url, &err);
	if (db == NULL || store_migrate(db, &err) < 0)
		die("store", &err);
	pki = pki_open(db, &err);
	keys = pki != NULL ? pki_keys_open(pki, dir, &err) : NULL;
	ca = keys != NULL ? ca_open(pki, keys, &err) : NULL;
	if (ca == NULL)
		die("open", &err);
	memset(&o, 0, sizeof(o));
	o.name = "bench";
	o.key = CA_KEY_RSA2048;
	o.md = CA_MD_SHA256;
	if (ca_create(ca, &o, NULL, &err) < 0)
		die("create", &err);
	printf("CA: RSA-2048 root + intermediate, SHA-256; store %s\n", U != NULL ? U : url);
	if (ca_setting_set(ca, "key_type", "p256", &err) < 0)
		die("setting", &err);
	if (rows > 0) {
		bulk(ca, rows, CA_HANDLER_DELAYED, "queued");
		bulk(ca, rows, CA_HANDLER_BUILTIN, "bulk");
	}
	rate(ca, CA_KEY_P256, secs);
	rate(ca, CA_KEY_RSA2048, secs);
	rate(ca, CA_KEY_RSA4096, secs);
	printf("peak RSS %ld MB\n", rss_mb());
	ca_close(&ca);
	pki_keys_close(&keys);
	pki_close(&pki);
	store_close(&db);
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : 1;
}
