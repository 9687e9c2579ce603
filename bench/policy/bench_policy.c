/*
 * bench_policy.c - issue 3 benchmark: full per-recipient decisions
 * (policy_decide, one originator, one envelope recipient) against a store
 * holding N users (default 1,000,000) and M domains (default 10,000, one in
 * a hundred also a wildcard), on one core.
 *
 *   bench_policy [-u USERS] [-d DOMAINS] [-n DECISIONS] [-s SYNC_MS] [-U URL]
 *
 * Reports, for a cold pass (every recipient loaded from the store) and a warm
 * pass (cache filled), p50/p99 latency and decisions/s; then checks that a
 * change made through ANOTHER connection is visible (after at most SYNC_MS
 * with -s, immediately with the default 0). The store is filled with plain
 * SQL in one transaction (setup only; the measured path is the public API).
 * Without -U a SQLite database in a temp dir is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "policy/policy.h"

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, const struct sg_error *err)
{
	fprintf(stderr, "bench_policy: %s: %s\n", what, err != NULL ? err->msg : "");
	exit(1);
}

static void exec_or_die(struct store *db, const char *sql)
{
	struct sg_error err;

	if (store_exec(db, sql, &err) < 0)
		die(sql, &err);
}

/* fill - users uNNN@dNNN.example, domains dNNN.example; every 10th user and
 * every domain sets properties; every 100th domain has a wildcard */
static void fill(struct store *db, unsigned users, unsigned domains)
{
	struct sg_error err;
	struct store_stmt *su, *sd, *sp;
	char name[128], owner[160];
	unsigned i;

	if (store_begin(db, &err) < 0)
		die("begin", &err);
	su = store_prepare(db, "INSERT INTO policy_user (email, domain, created) VALUES (?, ?, 0)",
		&err);
	sd = store_prepare(db, "INSERT INTO policy_domain (name, created) VALUES (?, 0)", &err);
	sp = store_prepare(db, "INSERT INTO policy_prop (owner, name, value, updated) "
		"VALUES (?, ?, ?, 0)", &err);
	if (su == NULL || sd == NULL || sp == NULL)
		die("prepare", &err);
	for (i = 0; i < domains; i++) {
		snprintf(name, sizeof(name), "d%u.example", i);
		store_bind_text(sd, 1, name);
		if (store_stmt_step(sd, &err) < 0)
			die("domain", &err);
		store_stmt_reset(sd);
		snprintf(owner, sizeof(owner), "domain:%s", name);
		store_bind_text(sp, 1, owner);
		store_bind_text(sp, 2, "encrypt_mode");
		store_bind_text(sp, 3, i % 3 == 0 ? "mandatory" : "allow");
		if (store_stmt_step(sp, &err) < 0)
			die("prop", &err);
		store_stmt_reset(sp);
		if (i % 100 == 0) {
			snprintf(name, sizeof(name), "*.d%u.example", i);
			store_bind_text(sd, 1, name);
			if (store_stmt_step(sd, &err) < 0)
				die("wildcard", &err);
			store_stmt_reset(sd);
			snprintf(owner, sizeof(owner), "wildcard:%s", name);
			store_bind_text(sp, 1, owner);
			store_bind_text(sp, 2, "smime_strict");
			store_bind_text(sp, 3, "true");
			if (store_stmt_step(sp, &err) < 0)
				die("prop", &err);
			store_stmt_reset(sp);
		}
	}
	for (i = 0; i < users; i++) {
		char dom[64];

		snprintf(dom, sizeof(dom), "d%u.example", i % domains);
		snprintf(name, sizeof(name), "u%u@%s", i, dom);
		store_bind_text(su, 1, name);
		store_bind_text(su, 2, dom);
		if (store_stmt_step(su, &err) < 0)
			die("user", &err);
		store_stmt_reset(su);
		if (i % 10 == 0) {
			snprintf(owner, sizeof(owner), "user:%s", name);
			store_bind_text(sp, 1, owner);
			store_bind_text(sp, 2, "smime_encryption_algorithm");
			store_bind_text(sp, 3, "aes128");
			if (store_stmt_step(sp, &err) < 0)
				die("prop", &err);
			store_stmt_reset(sp);
		}
	}
	store_stmt_free(&su);
	store_stmt_free(&sd);
	store_stmt_free(&sp);
	exec_or_die(db, "UPDATE policy_generation SET gen = gen + 1 WHERE id = 1");
	if (store_commit(db, &err) < 0)
		die("commit", &err);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int env_cert(void *arg, const char *r, const struct policy_props *pp,
	struct sg_error *err)
{
	(void)arg;
	(void)pp;
	(void)err;
	return r[1] % 2;  /* half of the recipients "have" a certificate */
}

/* run - n decisions for random users; latencies into lat */
static void run(struct policy *p, unsigned users, unsigned domains, unsigned n,
	int64_t *lat, const char *label)
{
	struct policy_env env = {env_cert, NULL, NULL};
	struct policy_msg msg = {.from_header = "Boss <u0@d0.example>", .subject = "hello",
		.size = 10000};
	struct sg_error err;
	int64_t t0 = now_ns(), total;
	uint64_t hits, misses;
	unsigned i;

	rng_state = 88172645463325252ULL;  /* the same recipients in every pass */
	for (i = 0; i < n; i++) {
		char rcpt[96];
		const char *rc1[1] = {rcpt};
		struct policy_result *res = NULL;
		unsigned u = (unsigned)(rng() % users);
		int64_t s = now_ns();

		snprintf(rcpt, sizeof(rcpt), "u%u@d%u.example", u, u % domains);
		if (policy_decide(p, &msg, rc1, 1, &env, &res, &err) < 0)
			die("decide", &err);
		lat[i] = now_ns() - s;
		policy_result_free(&res);
	}
	total = now_ns() - t0;
	qsort(lat, n, sizeof(*lat), cmp_i64);
	policy_cache_stats(p, &hits, &misses);
	printf("%-5s decisions=%u p50=%.1fus p99=%.1fus rate=%.0f/s (cache hits=%llu "
		"misses=%llu)\n", label, n, (double)lat[n / 2] / 1000.0,
		(double)lat[(size_t)n * 99 / 100] / 1000.0, (double)n * 1e9 / (double)total,
		(unsigned long long)hits, (unsigned long long)misses);
}

/* check_change - a change through a second connection is seen */
static int check_change(struct policy *p, const char *url, int64_t sync_ms)
{
	struct sg_error err;
	struct store *db2 = store_open(url, &err);
	struct policy *p2;
	struct policy_change ch = {"encrypt_mode", "no_encryption"};
	struct policy_msg msg = {.from_header = "u1@d1.example"};
	const char *rc1[1] = {"u5@d5.example"};
	struct policy_result *res = NULL;
	int ok;

	if (db2 == NULL)
		die("open2", &err);
	p2 = policy_new(db2, NULL);
	if (policy_object_apply(p2, POLICY_KIND_DOMAIN, "d5.example", &ch, 1, &err) < 0)
		die("apply", &err);
	if (sync_ms > 0)
		usleep((useconds_t)(sync_ms + 5) * 1000);
	if (policy_decide(p, &msg, rc1, 1, NULL, &res, &err) < 0)
		die("decide", &err);
	ok = res->rcpt[0].encrypt == POLICY_ENC_NO;
	printf("after a change on another connection: encrypt=%s (%s)\n",
		policy_encrypt_name(res->rcpt[0].encrypt), ok ? "correct" : "STALE");
	policy_result_free(&res);
	policy_free(&p2);
	store_close(&db2);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	unsigned users = 1000000, domains = 10000, n = 200000;
	int64_t sync_ms = 0, *lat, t0;
	char url[600] = "", dir[64] = "";
	struct sg_error err;
	struct store *db;
	struct policy *p;
	struct policy_opts o = {.hostname = "bench.example"};
	int opt, rc;

	while ((opt = getopt(argc, argv, "u:d:n:s:U:")) != -1) {
		switch (opt) {
		case 'u':
			users = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			domains = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			n = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			sync_ms = strtoll(optarg, NULL, 10);
			break;
		case 'U':
			snprintf(url, sizeof(url), "%s", optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_policy [-u USERS] [-d DOMAINS] [-n N] "
				"[-s SYNC_MS] [-U URL]\n");
			return 2;
		}
	}
	if (users == 0 || domains == 0 || n == 0)
		return 2;
	g_mime_init();
	sg_log_init("bench_policy", SG_LOGDEST_STDERR, SG_LOG_WARN);
	if (url[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/sg-bench-policy-XXXXXX");
		if (mkdtemp(dir) == NULL)
			return 1;
		snprintf(url, sizeof(url), "sqlite:%s/bench.db", dir);
	}
	db = store_open(url, &err);
	if (db == NULL || store_init(db, &err) < 0)
		die("store", &err);
	t0 = now_ns();
	fill(db, users, domains);
	printf("store: %u users, %u domains (+%u wildcards) filled in %.1fs\n", users, domains,
		(domains + 99) / 100, (double)(now_ns() - t0) / 1e9);
	o.cache_max = (size_t)users * 2 + (size_t)domains * 4 + 16;
	o.sync_interval_ms = sync_ms;
	p = policy_new(db, &o);
	lat = calloc(n, sizeof(*lat));
	if (lat == NULL)
		return 1;
	printf("sync: generation read %s\n", sync_ms > 0 ? "at most every -s ms" :
		"on every decision");
	run(p, users, domains, n, lat, "cold");
	run(p, users, domains, n, lat, "warm");
	rc = check_change(p, url, sync_ms);
	free(lat);
	policy_free(&p);
	store_close(&db);
	if (dir[0] != '\0') {
		char path[128];

		snprintf(path, sizeof(path), "%s/bench.db", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/bench.db-wal", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/bench.db-shm", dir);
		unlink(path);
		rmdir(dir);
	}
	g_mime_shutdown();
	return rc;
}
