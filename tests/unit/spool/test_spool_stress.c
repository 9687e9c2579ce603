/* test_spool_stress.c - concurrent writers and movers on one spool, and a
 * real full disk (F-FLOW-1: "disk full -> 452, nothing accepted is lost").
 *
 * The disk-full test mounts a 1 MiB tmpfs in a private mount namespace
 * (as root: unshare(CLONE_NEWNS); otherwise through a user namespace). If
 * neither works the test FAILS: it never passes without having filled a
 * disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool_testutil.h"

#define NWRITERS 8
#define PER_WRITER 40

struct writer_arg {
	struct tu_fix *f;
	unsigned t;
	char ids[PER_WRITER][SG_MAIL_ID_LEN + 1];
	int failed;
	char why[256];
};

static _Atomic int writers_left;

static void *writer_thread(void *p)
{
	struct writer_arg *a = p;
	unsigned i;

	for (i = 0; i < PER_WRITER; i++) {
		struct spool_env env;
		struct sg_error err;
		char body[128];

		tu_env(&env, "a@example.org", 1 + i % 3);
		snprintf(body, sizeof(body), "Subject: t%u m%u\r\n\r\nwriter %u message %u\r\n",
			a->t, i, a->t, i);
		if (tu_write_msg(a->f->sp, &env, body, SPOOL_Q_INCOMING, a->ids[i], &err) < 0) {
			a->failed = 1;
			snprintf(a->why, sizeof(a->why), "writer %u msg %u: %s", a->t, i, err.msg);
		}
		spool_env_free_fields(&env);
		if (a->failed)
			break;
	}
	atomic_fetch_sub(&writers_left, 1);
	return NULL;
}

struct mover_arg {
	struct tu_fix *f;
	unsigned moved;
	int failed;
	char why[256];
};

static int mover_cb(const char *id, void *arg)
{
	struct mover_arg *m = arg;
	struct sg_error err;

	if (spool_move(m->f->sp, id, SPOOL_Q_INCOMING, SPOOL_Q_OUTGOING, &err) == 0)
		m->moved++;
	else if (err.code != SG_E_NOTFOUND && !m->failed) {
		m->failed = 1;
		snprintf(m->why, sizeof(m->why), "move %s: %s", id, err.msg);
	}
	return 0;
}

/* mover_thread - like a worker: move whatever is in incoming to outgoing
 * while writers keep committing. */
static void *mover_thread(void *p)
{
	struct mover_arg *m = p;
	struct sg_error err;

	while (atomic_load(&writers_left) > 0)
		(void)spool_list(m->f->sp, SPOOL_Q_INCOMING, mover_cb, m, &err);
	return NULL;
}

/* Several SMTP sessions commit at once while a worker moves messages: every
 * message arrives exactly once with its own ID and body. */
static void test_concurrent_writers(void **state)
{
	struct tu_fix *f = *state;
	struct writer_arg *wa = sg_xcalloc(NWRITERS, sizeof(*wa));
	struct mover_arg ma;
	pthread_t wt[NWRITERS], mt;
	unsigned t, i, j;

	memset(&ma, 0, sizeof(ma));
	ma.f = f;
	atomic_store(&writers_left, NWRITERS);
	for (t = 0; t < NWRITERS; t++) {
		wa[t].f = f;
		wa[t].t = t;
		assert_int_equal(pthread_create(&wt[t], NULL, writer_thread, &wa[t]), 0);
	}
	assert_int_equal(pthread_create(&mt, NULL, mover_thread, &ma), 0);
	for (t = 0; t < NWRITERS; t++)
		pthread_join(wt[t], NULL);
	pthread_join(mt, NULL);
	if (ma.failed)
		fail_msg("%s", ma.why);
	for (t = 0; t < NWRITERS; t++) {
		if (wa[t].failed)
			fail_msg("%s", wa[t].why);
	}
	assert_int_equal(tu_count(f->spooldir, "incoming") + tu_count(f->spooldir, "outgoing"),
		NWRITERS * PER_WRITER);
	assert_int_equal(tu_count(f->spooldir, "outgoing"), (int)ma.moved);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
	for (t = 0; t < NWRITERS; t++) {
		for (i = 0; i < PER_WRITER; i++) {
			struct spool_msg *m;
			struct sg_error err;
			enum spool_queue q;
			char want[64], *body;

			/* IDs are unique across all threads */
			for (j = i + 1; j < PER_WRITER; j++)
				assert_string_not_equal(wa[t].ids[i], wa[t].ids[j]);
			if (t + 1 < NWRITERS)
				for (j = 0; j < PER_WRITER; j++)
					assert_string_not_equal(wa[t].ids[i], wa[t + 1].ids[j]);
			assert_int_equal(spool_find(f->sp, wa[t].ids[i], &q, &err), 1);
			m = spool_msg_open(f->sp, q, wa[t].ids[i], &err);
			if (m == NULL)
				fail_msg("%s: %s", wa[t].ids[i], err.msg);
			body = tu_read_body(m);
			snprintf(want, sizeof(want), "writer %u message %u\r\n", t, i);
			assert_non_null(strstr(body, want));
			assert_int_equal(spool_msg_env(m)->nrcpts, 1 + i % 3);
			free(body);
			spool_msg_close(&m);
		}
	}
	free(wa);
}

/* private_tmpfs - mount a 1 MiB tmpfs on dir in a new mount namespace of
 * this (single-threaded) process; 0 ok, -1 with the reason in why. */
static int private_tmpfs(const char *dir, char *why, size_t whysz)
{
	if (unshare(CLONE_NEWNS) < 0) {
		/* not root: a user namespace gives us CAP_SYS_ADMIN over mounts */
		uid_t uid = getuid();
		gid_t gid = getgid();
		char map[64];
		int fd;

		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
			snprintf(why, whysz, "unshare: %s (need root or user namespaces)",
				strerror(errno));
			return -1;
		}
		fd = open("/proc/self/setgroups", O_WRONLY);
		if (fd >= 0) {
			(void)!write(fd, "deny", 4);
			close(fd);
		}
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		fd = open("/proc/self/uid_map", O_WRONLY);
		if (fd < 0 || write(fd, map, strlen(map)) < 0) {
			snprintf(why, whysz, "uid_map: %s", strerror(errno));
			return -1;
		}
		close(fd);
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		fd = open("/proc/self/gid_map", O_WRONLY);
		if (fd < 0 || write(fd, map, strlen(map)) < 0) {
			snprintf(why, whysz, "gid_map: %s", strerror(errno));
			return -1;
		}
		close(fd);
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(why, whysz, "make / private: %s", strerror(errno));
		return -1;
	}
	if (mount("sgtest", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") < 0) {
		snprintf(why, whysz, "mount tmpfs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* fill_until_full - commit messages of size sz until the disk is full;
 * every failure must be SG_E_NOSPACE with no tmp/ file left. Returns the
 * number committed; their IDs are appended to ids. */
static unsigned fill_until_full(struct spool *sp, const char *spooldir, size_t sz,
	char (*ids)[SG_MAIL_ID_LEN + 1], unsigned *nids, unsigned max)
{
	char *body = sg_xmalloc(sz + 1);
	unsigned ok = 0;

	memset(body, 'f', sz);
	body[sz] = '\0';
	while (*nids < max) {
		struct spool_env env;
		struct sg_error err;
		int rc;

		tu_env(&env, "a@example.org", 1);
		rc = tu_write_msg(sp, &env, body, SPOOL_Q_INCOMING, ids[*nids], &err);
		spool_env_free_fields(&env);
		if (rc < 0) {
			if (err.code != SG_E_NOSPACE)
				fail_msg("size %zu: got %s want nospace: %s", sz,
					sg_errc_name(err.code), err.msg);
			if (tu_count(spooldir, "tmp") != 0)
				fail_msg("size %zu: tmp/ file left after a failed commit", sz);
			break;
		}
		(*nids)++;
		ok++;
	}
	free(body);
	return ok;
}

/* A real full disk: commits fail with SG_E_NOSPACE (452 at SMTP) at
 * whatever step runs out of space, leave nothing behind, and every message
 * committed before is intact; freeing space makes commits work again. */
static void test_disk_full_tmpfs(void **state)
{
	static char ids[2000][SG_MAIL_ID_LEN + 1];
	static const size_t sizes[] = {100000, 20000, 3000, 500, 50, 1};
	char *base = tu_tmpdir();
	char *mnt = sg_xasprintf("%s/mnt", base);
	char *spooldir = sg_xasprintf("%s/spool", mnt);
	char why[256];
	struct spool *sp;
	struct sg_error err;
	struct spool_env env;
	unsigned nids = 0, i, first_round = 0;
	size_t s;

	(void)state;
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (private_tmpfs(mnt, why, sizeof(why)) < 0)
		fail_msg("cannot mount a small tmpfs for the disk-full test: %s", why);
	sp = spool_open(spooldir, &err);
	assert_non_null(sp);
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned n = fill_until_full(sp, spooldir, sizes[s], ids, &nids, 2000);

		if (s == 0)
			first_round = n;
	}
	/* 1 MiB holds a few 100 kB messages, and the disk really filled up */
	assert_true(first_round >= 5 && first_round <= 11);
	assert_true(nids < 2000);
	/* the delivery state cannot be saved either, and says so */
	tu_env(&env, "a@example.org", 1);
	sg_strlcpy(env.id, ids[0], sizeof(env.id));
	env.attempts = 1;
	env.last_error = sg_xstrdup("451 try again later, with a long enough reason to "
		"need a block of its own");
	for (i = 0; i < 64; i++) {
		if (spool_state_save(sp, &env, &err) < 0)
			break;
	}
	assert_true(i < 64);
	assert_int_equal(err.code, SG_E_NOSPACE);
	/* every accepted message survived the full disk */
	for (i = 0; i < nids; i++) {
		struct spool_msg *m = spool_msg_open(sp, SPOOL_Q_INCOMING, ids[i], &err);

		if (m == NULL)
			fail_msg("message %u (%s) lost: %s", i, ids[i], err.msg);
		spool_msg_close(&m);
	}
	assert_int_equal(tu_count(spooldir, "incoming"), (int)nids);
	assert_int_equal(tu_count(spooldir, "tmp"), 0);
	/* free space: the next commit works */
	assert_int_equal(spool_delete(sp, SPOOL_Q_INCOMING, ids[0], &err), 0);
	assert_int_equal(spool_delete(sp, SPOOL_Q_INCOMING, ids[1], &err), 0);
	assert_int_equal(tu_write_msg(sp, &env, "Subject: after\r\n\r\nok\r\n",
		SPOOL_Q_INCOMING, ids[nids], &err), 0);
	spool_env_free_fields(&env);
	spool_close(&sp);
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
	tu_rm_rf(base);
	free(spooldir);
	free(mnt);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_writers, tu_setup, tu_teardown),
	};
	const struct CMUnitTest tests_nospace[] = {
		cmocka_unit_test(test_disk_full_tmpfs),
	};
	int rc;
	pid_t pid;
	int status = 0;

	sg_log_init("test_spool_stress", SG_LOGDEST_STDERR, SG_LOG_ERR);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	/* The mount namespace needs a single-threaded process, and the mount
	 * must not outlive the test: run it in a fresh child. */
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
		_exit(cmocka_run_group_tests(tests_nospace, NULL, NULL) != 0);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		WEXITSTATUS(status) != 0)
		rc++;
	return rc;
}
