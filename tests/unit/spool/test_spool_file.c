/* test_spool_file.c - message files (F-FLOW-1): writer/commit/read round
 * trip, streaming of a large body, envelope bounds, damaged files refused,
 * disk full and crashes during a commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool_testutil.h"

static const char tbody[] = "From: a@example.org\r\nSubject: hi\r\n\r\nbody line\r\n";

/* commit_one - a committed message with tbody in q; id into id_out. */
static void commit_one(struct tu_fix *f, enum spool_queue q, char *id_out)
{
	struct spool_env env;
	struct sg_error err;

	tu_env(&env, "a@example.org", 2);
	if (tu_write_msg(f->sp, &env, tbody, q, id_out, &err) < 0)
		fail_msg("commit: %s", err.msg);
	spool_env_free_fields(&env);
}

static void test_roundtrip_envelope(void **state)
{
	struct tu_fix *f = *state;
	struct spool_env env;
	struct spool_writer *w;
	struct spool_msg *m;
	const struct spool_env *got;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1];
	char parent[SG_MAIL_ID_LEN + 1];
	char *body;

	memset(&env, 0, sizeof(env));
	sg_mail_id_new(parent);
	env.sender = sg_xstrdup("s\xc3\xa9nder@example.org");
	spool_env_add_rcpt(&env, "one@example.org", NULL, 0);
	spool_env_add_rcpt(&env, "two@example.net", "rfc822;Two@Example.NET",
		SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_DELAY);
	spool_env_add_rcpt(&env, "three@example.com", "", SPOOL_NOTIFY_NEVER);
	env.kind = SPOOL_KIND_NOTIFICATION;
	env.client_addr = sg_xstrdup("192.0.2.7");
	env.client_helo = sg_xstrdup("mx.example.org");
	env.parent_id = sg_xstrdup(parent);
	env.dsn_envid = sg_xstrdup("ENV-1+2");
	env.dsn_ret_hdrs = true;
	env.smtputf8 = true;
	env.body_8bit = true;
	env.arrival = 1712345678;
	/* delivery state in the template is never written to a new message */
	env.attempts = 7;
	env.next_attempt = 99;
	env.last_error = sg_xstrdup("old error");

	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	sg_strlcpy(id, spool_writer_id(w), sizeof(id));
	assert_true(sg_mail_id_is_valid(id));
	assert_true(tu_exists(f->spooldir, "tmp", id));
	assert_int_equal(spool_writer_write(w, tbody, 10, &err), 0);
	assert_int_equal(spool_writer_write(w, tbody + 10, strlen(tbody) - 10, &err), 0);
	assert_int_equal(spool_writer_size(w), strlen(tbody));
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_INCOMING, &err), 0);
	assert_null(w);
	assert_false(tu_exists(f->spooldir, "tmp", id));
	assert_true(tu_exists(f->spooldir, "incoming", id));

	m = spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err);
	if (m == NULL)
		fail_msg("open: %s", err.msg);
	got = spool_msg_env(m);
	assert_string_equal(got->id, id);
	assert_string_equal(got->sender, env.sender);
	assert_int_equal(got->nrcpts, 3);
	assert_string_equal(got->rcpts[0].addr, "one@example.org");
	assert_null(got->rcpts[0].orcpt);
	assert_int_equal(got->rcpts[0].notify, 0);
	assert_string_equal(got->rcpts[1].addr, "two@example.net");
	assert_string_equal(got->rcpts[1].orcpt, "rfc822;Two@Example.NET");
	assert_int_equal(got->rcpts[1].notify, SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_DELAY);
	assert_string_equal(got->rcpts[2].orcpt, "");
	assert_int_equal(got->rcpts[2].notify, SPOOL_NOTIFY_NEVER);
	assert_int_equal(got->rcpts[2].status, SPOOL_RCPT_PENDING);
	assert_int_equal(got->kind, SPOOL_KIND_NOTIFICATION);
	assert_string_equal(got->client_addr, "192.0.2.7");
	assert_string_equal(got->client_helo, "mx.example.org");
	assert_string_equal(got->parent_id, parent);
	assert_string_equal(got->dsn_envid, "ENV-1+2");
	assert_true(got->dsn_ret_hdrs);
	assert_true(got->smtputf8);
	assert_true(got->body_8bit);
	assert_int_equal(got->arrival, 1712345678);
	assert_int_equal(got->attempts, 0);
	assert_int_equal(got->next_attempt, 0);
	assert_null(got->last_error);
	assert_int_equal(spool_msg_size(m), strlen(tbody));
	body = tu_read_body(m);
	assert_string_equal(body, tbody);
	free(body);
	spool_msg_close(&m);
	assert_null(m);
	spool_msg_close(&m); /* NULL is fine */
	spool_env_free_fields(&env);
}

static void test_roundtrip_minimal(void **state)
{
	struct tu_fix *f = *state;
	struct spool_env env, got;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1];
	uint64_t size = 1;

	/* NULL sender is stored as the null sender "", no recipients, no body */
	memset(&env, 0, sizeof(env));
	assert_int_equal(tu_write_msg(f->sp, &env, "", SPOOL_Q_OUTGOING, id, &err), 0);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_OUTGOING, id, &got, &size, &err), 0);
	assert_string_equal(got.sender, "");
	assert_int_equal(got.nrcpts, 0);
	assert_null(got.client_addr);
	assert_null(got.parent_id);
	assert_int_equal(got.kind, SPOOL_KIND_MESSAGE);
	assert_false(got.dsn_ret_hdrs || got.smtputf8 || got.body_8bit);
	assert_int_equal(size, 0);
	spool_env_free_fields(&got);
}

/* The envelope may change after the body was written (the SMTP session
 * learns things late; the MPA fills outputs while streaming). */
static void test_writer_env_changed_before_commit(void **state)
{
	struct tu_fix *f = *state;
	struct spool_env env, got;
	struct spool_writer *w;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1];

	tu_env(&env, "a@example.org", 1);
	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	sg_strlcpy(id, spool_writer_id(w), sizeof(id));
	assert_int_equal(spool_writer_write(w, tbody, strlen(tbody), &err), 0);
	spool_env_add_rcpt(spool_writer_env(w), "late@example.org", NULL, 0);
	spool_writer_env(w)->body_8bit = true;
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_INCOMING, &err), 0);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &got, NULL, &err), 0);
	assert_int_equal(got.nrcpts, 2);
	assert_string_equal(got.rcpts[1].addr, "late@example.org");
	assert_true(got.body_8bit);
	spool_env_free_fields(&got);
	spool_env_free_fields(&env);
}

static void test_abort_removes_tmp(void **state)
{
	struct tu_fix *f = *state;
	struct spool_env env;
	struct spool_writer *w;
	struct sg_error err;

	tu_env(&env, "a@example.org", 1);
	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	assert_int_equal(spool_writer_write(w, tbody, strlen(tbody), &err), 0);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 1);
	spool_writer_abort(&w);
	assert_null(w);
	spool_writer_abort(&w);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
	assert_int_equal(tu_count(f->spooldir, "incoming"), 0);
	spool_env_free_fields(&env);
}

/* rss_kb - current resident set size of this process in KiB. */
static long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *fp = fopen("/proc/self/status", "r");

	if (fp == NULL)
		fail_msg("open /proc/self/status: %s", strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0 && sscanf(line + 6, "%ld", &kb) == 1)
			break;
	}
	fclose(fp);
	if (kb < 0)
		fail_msg("no VmRSS in /proc/self/status");
	return kb;
}

/* fill_chunk - deterministic pseudo-random bytes for chunk number i. */
static void fill_chunk(unsigned char *buf, size_t len, unsigned i)
{
	uint32_t x = 2463534242u ^ (i * 2654435761u);
	size_t k;

	for (k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[k] = (unsigned char)x;
	}
}

/* A 50 MB body streams to disk: the writer's memory does not grow with the
 * body, the reader hands out an fd, and the bytes and hash survive. */
static void test_large_body_streamed(void **state)
{
	enum { CHUNK = 65536 + 123, NCHUNK = 800 }; /* ~50 MB, odd-sized writes */
	struct tu_fix *f = *state;
	struct spool_env env;
	struct spool_writer *w;
	struct spool_msg *m;
	struct sg_error err;
	unsigned char *buf = sg_xmalloc(CHUNK);
	unsigned char want[32], got[32];
	unsigned int mdlen = 0;
	char id[SG_MAIL_ID_LEN + 1];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t off, len, pos;
	long base, peak;
	unsigned i;
	int fd;

	tu_env(&env, "big@example.org", 1);
	base = rss_kb();
	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	sg_strlcpy(id, spool_writer_id(w), sizeof(id));
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (i = 0; i < NCHUNK; i++) {
		fill_chunk(buf, CHUNK, i);
		EVP_DigestUpdate(md, buf, CHUNK);
		if (spool_writer_write(w, buf, CHUNK, &err) < 0)
			fail_msg("write chunk %u: %s", i, err.msg);
	}
	EVP_DigestFinal_ex(md, want, &mdlen);
	peak = rss_kb();
	/* 50 MB written; buffering it would add ~51200 KiB */
	if (peak - base > 8192)
		fail_msg("RSS grew by %ld KiB while writing a 50 MB body", peak - base);
	assert_int_equal(spool_writer_size(w), (uint64_t)CHUNK * NCHUNK);
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_INCOMING, &err), 0);

	m = spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err);
	if (m == NULL)
		fail_msg("open: %s", err.msg);
	fd = spool_msg_body_fd(m, &off, &len);
	assert_true(fd >= 0);
	assert_int_equal(len, (uint64_t)CHUNK * NCHUNK);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (pos = 0; pos < len; pos += CHUNK) {
		ssize_t n = pread(fd, buf, CHUNK, (off_t)(off + pos));

		assert_int_equal(n, CHUNK);
		EVP_DigestUpdate(md, buf, CHUNK);
	}
	EVP_DigestFinal_ex(md, got, &mdlen);
	assert_memory_equal(got, want, 32);
	peak = rss_kb();
	if (peak - base > 8192)
		fail_msg("RSS grew by %ld KiB while reading a 50 MB body", peak - base);
	spool_msg_close(&m);
	EVP_MD_CTX_free(md);
	free(buf);
	spool_env_free_fields(&env);
}

static void test_max_size(void **state)
{
	struct tu_fix *f = *state;
	struct spool_env env;
	struct spool_writer *w;
	struct sg_error err;
	char big[101];

	memset(big, 'x', sizeof(big));
	tu_env(&env, "a@example.org", 1);
	w = spool_writer_new(f->sp, &env, 100, &err);
	assert_non_null(w);
	assert_int_equal(spool_writer_write(w, big, 60, &err), 0);
	assert_int_equal(spool_writer_write(w, big, 41, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(spool_writer_size(w), 60);
	assert_int_equal(spool_writer_write(w, big, 40, &err), 0); /* exactly 100 */
	assert_int_equal(spool_writer_write(w, big, 1, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_INCOMING, &err), 0);
	assert_int_equal(tu_count(f->spooldir, "incoming"), 1);
	spool_env_free_fields(&env);
}

/* envelope bounds: table of (mutation, expected result) */
static void test_envelope_limits(void **state)
{
	struct tu_fix *f = *state;
	char longs[SPOOL_MAX_FIELD + 2];
	char maxs[SPOOL_MAX_FIELD + 1];
	struct {
		const char *name;
		int field; /* 0 sender 1 rcpt 2 orcpt 3 helo 4 envid 5 client 6 parent */
		const char *value;
		enum sg_errc want; /* SG_E_OK: accepted */
	} cases[] = {
		{"sender max", 0, maxs, SG_E_OK},
		{"sender too long", 0, longs, SG_E_LIMIT},
		{"rcpt max", 1, maxs, SG_E_OK},
		{"rcpt too long", 1, longs, SG_E_LIMIT},
		{"orcpt too long", 2, longs, SG_E_LIMIT},
		{"helo too long", 3, longs, SG_E_LIMIT},
		{"envid too long", 4, longs, SG_E_LIMIT},
		{"client too long", 5, longs, SG_E_LIMIT},
		{"parent not an id", 6, "not-an-id", SG_E_INVAL},
	};
	size_t i;

	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	memset(maxs, 'b', sizeof(maxs) - 1);
	maxs[sizeof(maxs) - 1] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool_env env, got;
		struct sg_error err;
		char id[SG_MAIL_ID_LEN + 1];
		char **fld[] = {&env.sender, NULL, NULL, &env.client_helo, &env.dsn_envid,
			&env.client_addr, &env.parent_id};
		int rc;

		tu_env(&env, "a@example.org", 1);
		if (cases[i].field == 1) {
			free(env.rcpts[0].addr);
			env.rcpts[0].addr = sg_xstrdup(cases[i].value);
		} else if (cases[i].field == 2) {
			env.rcpts[0].orcpt = sg_xstrdup(cases[i].value);
		} else {
			free(*fld[cases[i].field]);
			*fld[cases[i].field] = sg_xstrdup(cases[i].value);
		}
		memset(&err, 0, sizeof(err));
		rc = tu_write_msg(f->sp, &env, "x", SPOOL_Q_INCOMING, id, &err);
		if (cases[i].want == SG_E_OK) {
			if (rc != 0)
				fail_msg("%s: got error %s want success", cases[i].name, err.msg);
			assert_int_equal(spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &got,
				NULL, &err), 0);
			assert_int_equal(strlen(cases[i].field == 0 ? got.sender :
				got.rcpts[0].addr), SPOOL_MAX_FIELD);
			spool_env_free_fields(&got);
		} else if (rc != -1 || err.code != cases[i].want) {
			fail_msg("%s: got rc %d code %s want %s", cases[i].name, rc,
				sg_errc_name(err.code), sg_errc_name(cases[i].want));
		}
		spool_env_free_fields(&env);
	}
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
}

/* SPOOL_MAX_RCPTS recipients round-trip; one more is refused, also when the
 * recipient is added through spool_writer_env after the writer started. */
static void test_recipient_limit(void **state)
{
	struct tu_fix *f = *state;
	struct spool_env env, got;
	struct spool_writer *w;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1];

	tu_env(&env, "a@example.org", SPOOL_MAX_RCPTS);
	assert_int_equal(tu_write_msg(f->sp, &env, "x", SPOOL_Q_INCOMING, id, &err), 0);
	assert_int_equal(spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &got, NULL, &err), 0);
	assert_int_equal(got.nrcpts, SPOOL_MAX_RCPTS);
	assert_string_equal(got.rcpts[SPOOL_MAX_RCPTS - 1].addr, "rcpt99999@example.org");
	spool_env_free_fields(&got);

	w = spool_writer_new(f->sp, &env, 0, &err);
	assert_non_null(w);
	spool_env_add_rcpt(spool_writer_env(w), "one-more@example.org", NULL, 0);
	assert_int_equal(spool_writer_commit(&w, SPOOL_Q_INCOMING, &err), -1);
	assert_int_equal(err.code, SG_E_LIMIT);
	spool_env_add_rcpt(&env, "one-more@example.org", NULL, 0);
	assert_null(spool_writer_new(f->sp, &env, 0, &err));
	assert_int_equal(err.code, SG_E_LIMIT);
	assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
	assert_int_equal(tu_count(f->spooldir, "incoming"), 1);
	spool_env_free_fields(&env);
}

static void test_open_errors(void **state)
{
	struct tu_fix *f = *state;
	struct sg_error err;
	struct spool_env env;
	char id[SG_MAIL_ID_LEN + 1];

	sg_mail_id_new(id);
	assert_null(spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err));
	assert_int_equal(err.code, SG_E_NOTFOUND);
	assert_non_null(strstr(err.msg, "no such message"));
	assert_null(spool_msg_open(f->sp, SPOOL_Q_INCOMING, "../../etc/passwd", &err));
	assert_int_equal(err.code, SG_E_INVAL);
	assert_null(spool_msg_open(f->sp, SPOOL_Q_INCOMING, "0123456789abcdef", &err));
	assert_int_equal(err.code, SG_E_INVAL);
	assert_int_equal(spool_env_read(f->sp, (enum spool_queue)99, id, &env, NULL, &err),
		-1);
	assert_int_equal(err.code, SG_E_INVAL);
}

/* mutate - how a valid file is damaged */
enum mutate {
	MUT_FLIP_BODY,      /* one body byte: only the SHA-256 check notices */
	MUT_FLIP_HASH,      /* one byte of the trailer's SHA-256 */
	MUT_TRAILER_LEN,    /* trailer's body length */
	MUT_TRAILER_TYPE,   /* the END record type */
	MUT_APPEND,         /* a byte after the trailer */
	MUT_MAGIC,          /* the file magic */
	MUT_BODY_LEN,       /* the body record's length (placeholder of a crash) */
};

static void test_damaged_file_refused(void **state)
{
	struct tu_fix *f = *state;
	static const struct {
		const char *name;
		enum mutate how;
		bool env_read_ok; /* spool_env_read does not hash the body */
	} cases[] = {
		{"body byte flipped", MUT_FLIP_BODY, true},
		{"trailer hash flipped", MUT_FLIP_HASH, true},
		{"trailer length wrong", MUT_TRAILER_LEN, false},
		{"trailer type wrong", MUT_TRAILER_TYPE, false},
		{"byte after trailer", MUT_APPEND, false},
		{"bad magic", MUT_MAGIC, false},
		{"body length placeholder", MUT_BODY_LEN, false},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[SG_MAIL_ID_LEN + 1], path[4096];
		struct spool_env env;
		struct sg_error err;
		struct spool_msg *m;
		struct spool *sp2;
		unsigned char *data;
		size_t len;
		int rc;

		commit_one(f, SPOOL_Q_INCOMING, id);
		tu_path(path, sizeof(path), f->spooldir, "incoming", id);
		data = tu_read_file(path, &len);
		assert_non_null(data);
		switch (cases[i].how) {
		case MUT_FLIP_BODY:
			data[17 + 3] ^= 0x20;
			break;
		case MUT_FLIP_HASH:
			data[len - 1] ^= 1;
			break;
		case MUT_TRAILER_LEN:
			data[len - 33] ^= 1;
			break;
		case MUT_TRAILER_TYPE:
			data[len - 45] = 'Y';
			break;
		case MUT_APPEND:
			data = sg_xrealloc(data, len + 1);
			data[len++] = '\n';
			break;
		case MUT_MAGIC:
			data[0] = 'X';
			break;
		case MUT_BODY_LEN:
			memset(data + 9, 0xff, 8);
			break;
		}
		tu_write_file(path, data, len);
		free(data);
		/* read as after a restart or by the CLI: another spool handle
		 * (this one wrote the file and would trust it while it looks
		 * unchanged: see test_checked_once_per_process) */
		sp2 = spool_open(f->spooldir, &err);
		assert_non_null(sp2);
		m = spool_msg_open(sp2, SPOOL_Q_INCOMING, id, &err);
		spool_close(&sp2);
		if (m != NULL)
			fail_msg("%s: damaged file accepted", cases[i].name);
		if (err.code != SG_E_PARSE)
			fail_msg("%s: got %s want parse (%s)", cases[i].name,
				sg_errc_name(err.code), err.msg);
		rc = spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &env, NULL, &err);
		if (rc != (cases[i].env_read_ok ? 0 : -1))
			fail_msg("%s: spool_env_read got %d", cases[i].name, rc);
		if (rc == 0)
			spool_env_free_fields(&env);
		else
			assert_int_equal(err.code, SG_E_PARSE);
	}
}

/* The body's SHA-256 is checked once per process: a file this spool handle
 * wrote (or checked) and that looks unchanged (inode, size, mtime) is not
 * hashed again; a change of mtime, or another handle (another process, a
 * restart), checks it in full. */
static void test_checked_once_per_process(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], path[4096];
	struct timespec ts[2];
	struct sg_error err;
	struct spool_msg *m;
	struct spool *sp2;
	struct stat st;
	int fd;

	commit_one(f, SPOOL_Q_INCOMING, id);
	m = spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err);
	assert_non_null(m);
	spool_msg_close(&m);
	tu_path(path, sizeof(path), f->spooldir, "incoming", id);
	assert_int_equal(stat(path, &st), 0);
	/* damage one body byte behind the spool's back, keeping size and mtime */
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 17 + 2), 1);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
	sp2 = spool_open(f->spooldir, &err);
	assert_non_null(sp2);
	assert_null(spool_msg_open(sp2, SPOOL_Q_INCOMING, id, &err));
	assert_int_equal(err.code, SG_E_PARSE);
	spool_close(&sp2);
	/* a newer mtime: this handle checks it again too */
	ts[1].tv_sec += 1;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_null(spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err));
	assert_int_equal(err.code, SG_E_PARSE);
}

/* Every truncation of a valid file (a crash mid-write that somehow reached
 * a queue, or a damaged disk) is refused, never half-read. */
static void test_truncated_file_refused(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], path[4096];
	unsigned char *data;
	size_t len, cut;

	commit_one(f, SPOOL_Q_INCOMING, id);
	tu_path(path, sizeof(path), f->spooldir, "incoming", id);
	data = tu_read_file(path, &len);
	assert_non_null(data);
	for (cut = 0; cut < len; cut++) {
		struct sg_error err;
		struct spool_env env;

		tu_write_file(path, data, cut);
		if (spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &env, NULL, &err) == 0)
			fail_msg("file cut at %zu of %zu accepted", cut, len);
		if (err.code != SG_E_PARSE)
			fail_msg("cut %zu: got %s want parse", cut, sg_errc_name(err.code));
	}
	tu_write_file(path, data, len);
	free(data);
}

/* Files our writer never produces: each must be refused with SG_E_PARSE. */
static void test_bad_records_refused(void **state)
{
	struct tu_fix *f = *state;
	static const char *const names[] = {
		"valid (control)", "missing sender", "duplicate sender", "unknown record",
		"NUL in sender", "field too long", "record length past end",
		"bad recipient record", "second body record", "END record inside",
		"bad kind", "bad flags", "id does not match name", "bad arrival length",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char id[SG_MAIL_ID_LEN + 1], other[SG_MAIL_ID_LEN + 1], path[4096];
		unsigned char v[8] = {0};
		char longf[SPOOL_MAX_FIELD + 1];
		struct sg_buf b;
		struct sg_error err;
		struct spool_env env;
		int rc;

		sg_mail_id_new(id);
		tu_raw_begin(&b, "body\r\n");
		switch (i) {
		case 0:
			tu_raw_std_env(&b, id);
			tu_raw_rcpt(&b, "r@example.org", "rfc822;r@example.org");
			break;
		case 1:
			tu_raw_rec(&b, 'I', id, SG_MAIL_ID_LEN);
			tu_raw_rec(&b, 'K', v, 1);
			tu_raw_rec(&b, 'F', v, 1);
			tu_raw_rec(&b, 'T', v, 8);
			break;
		case 2:
			tu_raw_std_env(&b, id);
			tu_raw_rec(&b, 'S', "x@y", 3);
			break;
		case 3:
			tu_raw_std_env(&b, id);
			tu_raw_rec(&b, 'Q', "x", 1);
			break;
		case 4:
			tu_raw_std_env(&b, id);
			tu_raw_rec(&b, 'H', "he\0lo", 5);
			break;
		case 5:
			memset(longf, 'h', sizeof(longf));
			tu_raw_std_env(&b, id);
			tu_raw_rec(&b, 'H', longf, sizeof(longf));
			break;
		case 6:
			tu_raw_std_env(&b, id);
			v[0] = 'H';
			tu_be32(v + 1, 900);
			(void)sg_buf_append(&b, v, 5, NULL);
			break;
		case 7:
			tu_raw_std_env(&b, id);
			v[0] = 0;
			v[1] = 0;
			v[2] = 0x10; /* address length 4096 > record */
			v[3] = 0;
			tu_raw_rec(&b, 'R', v, 4);
			break;
		case 8:
			tu_raw_std_env(&b, id);
			tu_raw_rec(&b, 'B', "x", 1);
			break;
		case 9:
			tu_raw_std_env(&b, id);
			tu_raw_end(&b, "body\r\n");
			break;
		case 10:
			tu_raw_rec(&b, 'I', id, SG_MAIL_ID_LEN);
			tu_raw_rec(&b, 'S', "", 0);
			v[0] = 9;
			tu_raw_rec(&b, 'K', v, 1);
			v[0] = 0;
			tu_raw_rec(&b, 'F', v, 1);
			tu_raw_rec(&b, 'T', v, 8);
			break;
		case 11:
			tu_raw_rec(&b, 'I', id, SG_MAIL_ID_LEN);
			tu_raw_rec(&b, 'S', "", 0);
			tu_raw_rec(&b, 'K', v, 1);
			v[0] = 0x80;
			tu_raw_rec(&b, 'F', v, 1);
			v[0] = 0;
			tu_raw_rec(&b, 'T', v, 8);
			break;
		case 12:
			sg_mail_id_new(other);
			while (strcmp(other, id) == 0)
				sg_mail_id_new(other);
			tu_raw_std_env(&b, other);
			break;
		case 13:
			tu_raw_rec(&b, 'I', id, SG_MAIL_ID_LEN);
			tu_raw_rec(&b, 'S', "", 0);
			tu_raw_rec(&b, 'K', v, 1);
			tu_raw_rec(&b, 'F', v, 1);
			tu_raw_rec(&b, 'T', v, 4);
			break;
		}
		tu_raw_end(&b, "body\r\n");
		tu_path(path, sizeof(path), f->spooldir, "incoming", id);
		tu_write_file(path, b.data, b.len);
		sg_buf_deinit(&b);
		rc = spool_env_read(f->sp, SPOOL_Q_INCOMING, id, &env, NULL, &err);
		if (i == 0) {
			if (rc != 0)
				fail_msg("%s: refused: %s", names[i], err.msg);
			assert_string_equal(env.rcpts[0].orcpt, "rfc822;r@example.org");
			spool_env_free_fields(&env);
			continue;
		}
		if (rc == 0)
			fail_msg("%s: accepted", names[i]);
		if (err.code != SG_E_PARSE)
			fail_msg("%s: got %s want parse", names[i], sg_errc_name(err.code));
	}
}

static void test_not_a_regular_file(void **state)
{
	struct tu_fix *f = *state;
	char id[SG_MAIL_ID_LEN + 1], path[4096];
	struct sg_error err;

	sg_mail_id_new(id);
	tu_path(path, sizeof(path), f->spooldir, "incoming", id);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_null(spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err));
	assert_int_equal(err.code, SG_E_PARSE);
	rmdir(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err));
	assert_int_equal(err.code, SG_E_PARSE);
}

static void test_read_headers(void **state)
{
	struct tu_fix *f = *state;
	static const struct {
		const char *body;
		size_t max;
		const char *want;
	} cases[] = {
		{"A: 1\r\nB: 2\r\n\r\nbody\r\n", 1000, "A: 1\r\nB: 2\r\n"},
		{"A: 1\nB: 2\n\nbody\n", 1000, "A: 1\nB: 2\n"},
		{"A: 1\r\nB: 2\r\n", 1000, "A: 1\r\nB: 2\r\n"},
		{"A: 1\r\nB: 2\r\n\r\nbody", 4, "A: 1"},
		{"\r\nbody", 1000, ""},
		{"", 1000, ""},
		{"A: x\ry\r\n\r\n", 1000, "A: x\ry\r\n"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool_env env;
		struct spool_msg *m;
		struct sg_error err;
		char id[SG_MAIL_ID_LEN + 1];
		char *h = NULL;

		tu_env(&env, "a@example.org", 1);
		assert_int_equal(tu_write_msg(f->sp, &env, cases[i].body, SPOOL_Q_INCOMING, id,
			&err), 0);
		spool_env_free_fields(&env);
		m = spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err);
		assert_non_null(m);
		assert_int_equal(spool_msg_read_headers(m, cases[i].max, &h, &err), 0);
		if (strcmp(h, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\" want \"%s\"", i, h, cases[i].want);
		free(h);
		spool_msg_close(&m);
	}
}

/* A large header block crossing the reader's 4 KiB chunks. */
static void test_read_headers_long(void **state)
{
	struct tu_fix *f = *state;
	struct sg_buf b;
	struct spool_env env;
	struct spool_msg *m;
	struct sg_error err;
	char id[SG_MAIL_ID_LEN + 1];
	char *h = NULL;
	size_t hlen;
	int i;

	sg_buf_init(&b, 1 << 20);
	for (i = 0; i < 500; i++)
		(void)sg_buf_printf(&b, NULL, "X-Header-%03d: value\r\n", i);
	hlen = b.len;
	(void)sg_buf_append_str(&b, "\r\nbody\r\n", NULL);
	tu_env(&env, "a@example.org", 1);
	assert_int_equal(tu_write_msg(f->sp, &env, b.data, SPOOL_Q_INCOMING, id, &err), 0);
	m = spool_msg_open(f->sp, SPOOL_Q_INCOMING, id, &err);
	assert_non_null(m);
	assert_int_equal(spool_msg_read_headers(m, 1 << 20, &h, &err), 0);
	assert_int_equal(strlen(h), hlen);
	assert_memory_equal(h, b.data, hlen);
	free(h);
	spool_msg_close(&m);
	sg_buf_deinit(&b);
	spool_env_free_fields(&env);
}

/* commit_big - write a ~200 KiB message (several buffer flushes) and commit;
 * returns the commit's result, the error in err, the ID in id. */
static int commit_big(struct tu_fix *f, char *id, struct sg_error *err)
{
	static char chunk[50000];
	struct spool_env env;
	struct spool_writer *w;
	int i, rc = -1;

	memset(chunk, 'm', sizeof(chunk));
	tu_env(&env, "a@example.org", 3);
	w = spool_writer_new(f->sp, &env, 0, err);
	if (w == NULL)
		goto out;
	sg_strlcpy(id, spool_writer_id(w), SG_MAIL_ID_LEN + 1);
	for (i = 0; i < 4; i++) {
		if (spool_writer_write(w, chunk, sizeof(chunk), err) < 0) {
			spool_writer_abort(&w);
			goto out;
		}
	}
	rc = spool_writer_commit(&w, SPOOL_Q_INCOMING, err);
out:
	spool_env_free_fields(&env);
	return rc;
}

/* Disk full (ENOSPC) or an I/O error at every I/O step of a commit: the
 * commit fails with SG_E_NOSPACE (the SMTP server's 452) or SG_E_IO, and no
 * file is left behind in tmp/ or in the queue (nothing acknowledged). */
static void test_commit_fails_at_every_step(void **state)
{
	struct tu_fix *f = *state;
	static const struct {
		int errnum;
		enum sg_errc want;
	} errs[] = {{ENOSPC, SG_E_NOSPACE}, {EDQUOT, SG_E_NOSPACE}, {EIO, SG_E_IO}};
	size_t e;

	for (e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
		unsigned n, failures = 0;

		for (n = 1; n < 100; n++) {
			char id[SG_MAIL_ID_LEN + 1] = "";
			struct sg_error err;
			int rc;

			spool_test_fail_after(n, errs[e].errnum);
			rc = commit_big(f, id, &err);
			spool_test_fail_after(0, 0);
			assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
			if (rc == 0) {
				/* n is past the last step: the message is there and whole */
				struct spool_msg *m = spool_msg_open(f->sp, SPOOL_Q_INCOMING, id,
					&err);

				assert_non_null(m);
				spool_msg_close(&m);
				assert_int_equal(tu_count(f->spooldir, "incoming"), 1);
				assert_int_equal(spool_delete(f->sp, SPOOL_Q_INCOMING, id, &err), 0);
				break;
			}
			failures++;
			if (err.code != errs[e].want)
				fail_msg("step %u errno %d: got %s want %s (%s)", n, errs[e].errnum,
					sg_errc_name(err.code), sg_errc_name(errs[e].want), err.msg);
			assert_int_equal(tu_count(f->spooldir, "incoming"), 0);
		}
		/* 4 body flushes + length patch + envelope/trailer + fsync + rename
		 * + dir fsync */
		if (failures < 8)
			fail_msg("errno %d: only %u failing steps found", errs[e].errnum, failures);
	}
}

/* kill -9 at every I/O step of a commit (in a child): after recovery the
 * message is either absent or complete in incoming/, never damaged, and
 * tmp/ is empty. Past the rename the file is already in incoming/. */
static void test_crash_during_commit(void **state)
{
	struct tu_fix *f = *state;
	unsigned n, crashes = 0, survived = 0;

	for (n = 1; n < 100; n++) {
		struct spool_recovery r;
		struct sg_error err;
		int status = 0;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			char id[SG_MAIL_ID_LEN + 1];

			spool_test_fail_after(n, SPOOL_TEST_CRASH);
			_exit(commit_big(f, id, &err) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(spool_recover_report(f->sp, &r, &err), 0);
		assert_int_equal(r.damaged, 0);
		assert_int_equal(tu_count(f->spooldir, "tmp"), 0);
		assert_int_equal(tu_count(f->spooldir, "error"), 0);
		if (WEXITSTATUS(status) == 0)
			break;
		assert_int_equal(WEXITSTATUS(status), SPOOL_TEST_CRASH_STATUS);
		crashes++;
		if (tu_count(f->spooldir, "incoming") == 1)
			survived++;
		else
			assert_int_equal(tu_count(f->spooldir, "incoming"), 0);
		tu_rm_rf(f->spooldir);
		spool_close(&f->sp);
		f->sp = spool_open(f->spooldir, &err);
		assert_non_null(f->sp);
	}
	assert_true(crashes >= 8);
	/* only the crash at the final directory fsync leaves a complete file */
	assert_int_equal(survived, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_envelope, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_minimal, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_writer_env_changed_before_commit, tu_setup,
			tu_teardown),
		cmocka_unit_test_setup_teardown(test_abort_removes_tmp, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_large_body_streamed, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_max_size, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_envelope_limits, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_recipient_limit, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file_refused, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_checked_once_per_process, tu_setup,
			tu_teardown),
		cmocka_unit_test_setup_teardown(test_truncated_file_refused, tu_setup,
			tu_teardown),
		cmocka_unit_test_setup_teardown(test_bad_records_refused, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_not_a_regular_file, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_read_headers, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_read_headers_long, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_commit_fails_at_every_step, tu_setup,
			tu_teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_commit, tu_setup, tu_teardown),
	};

	sg_log_init("test_spool_file", SG_LOGDEST_STDERR, SG_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
