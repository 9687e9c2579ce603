/*
 * fuzz_spool.c - libFuzzer target for the spool's on-disk readers: the
 * message file (records, trailer, SHA-256) and the delivery state file.
 * Each input is written as a file into a private temp spool and read back
 * through the public API, as the daemon and the CLI would after a crash or
 * a damaged disk handed them arbitrary bytes.
 *
 * Input: first byte even -> the rest is incoming/<FUZZ_ID>; odd -> the rest
 * is the state file of a valid message with three recipients (its random
 * ID replaces every SEED_BASE_ID in the input).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool/spool.h"

#define FUZZ_ID "0123456789ABCDEF"
#define SEED_BASE_ID "00112233445566AA"

static struct spool *fz_sp;            /* the fuzzer's temp spool (process-wide) */
static char fz_dir[4096];
static char fz_base[SG_MAIL_ID_LEN + 1];  /* a valid message in incoming/ */

static void fz_write(const char *sub, const char *id, const uint8_t *d, size_t n)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", fz_dir, sub, id);
	f = fopen(path, "wb");
	if (f == NULL)
		abort();
	if (n > 0 && fwrite(d, 1, n, f) != n)
		abort();
	fclose(f);
}

static void fz_unlink(const char *sub, const char *id)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s/%s", fz_dir, sub, id);
	(void)unlink(path);
}

static void fz_cleanup(void)
{
	static const char *const subs[] = {"incoming", "outgoing", "deferred", "error", "hold",
		"tmp", "state", "batch"};
	char path[4200];
	size_t i;

	fz_unlink("incoming", FUZZ_ID);
	fz_unlink("error", FUZZ_ID);
	if (fz_base[0] != '\0') {
		fz_unlink("incoming", fz_base);
		fz_unlink("state", fz_base);
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fz_dir, subs[i]);
		(void)rmdir(path);
	}
	(void)rmdir(fz_dir);
	spool_close(&fz_sp);
}

static void fz_init(void)
{
	const char *tmp = getenv("TMPDIR");
	struct spool_env env;
	struct spool_writer *w;
	struct sg_error err;
	static const char body[] = "Subject: base\r\n\r\nbase\r\n";

	/* damaged inputs are logged at err level: keep the fuzzer quiet */
	sg_log_init("fuzz_spool", SG_LOGDEST_STDERR, (enum sg_log_level)0);
	snprintf(fz_dir, sizeof(fz_dir), "%s/fuzz_spool.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(fz_dir) == NULL)
		abort();
	fz_sp = spool_open(fz_dir, &err);
	if (fz_sp == NULL)
		abort();
	atexit(fz_cleanup);
	memset(&env, 0, sizeof(env));
	env.sender = sg_xstrdup("a@example.org");
	spool_env_add_rcpt(&env, "r0@example.org", NULL, 0);
	spool_env_add_rcpt(&env, "r1@example.org", "rfc822;r1@example.org", 0);
	spool_env_add_rcpt(&env, "r2@example.org", NULL, 0);
	w = spool_writer_new(fz_sp, &env, 0, &err);
	if (w == NULL || spool_writer_write(w, body, sizeof(body) - 1, &err) < 0)
		abort();
	sg_strlcpy(fz_base, spool_writer_id(w), sizeof(fz_base));
	if (spool_writer_commit(&w, SPOOL_Q_INCOMING, &err) < 0)
		abort();
	spool_env_free_fields(&env);
}

/* fz_message - read incoming/FUZZ_ID every way the daemon and CLI do. */
static void fz_message(const uint8_t *d, size_t n)
{
	struct spool_recovery r;
	struct spool_env env;
	struct spool_msg *m;
	struct sg_error err;
	uint64_t size;

	fz_write("incoming", FUZZ_ID, d, n);
	m = spool_msg_open(fz_sp, SPOOL_Q_INCOMING, FUZZ_ID, &err);
	if (m != NULL) {
		uint64_t off, len;
		unsigned char buf[64];
		char *h = NULL;
		int fd = spool_msg_body_fd(m, &off, &len);

		if (len > 0 && pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf),
			(off_t)off) < 0)
			abort();
		if (spool_msg_read_headers(m, 4096, &h, &err) == 0)
			free(h);
		if (spool_msg_env(m)->nrcpts > SPOOL_MAX_RCPTS)
			abort();
		spool_msg_close(&m);
	}
	if (spool_env_read(fz_sp, SPOOL_Q_INCOMING, FUZZ_ID, &env, &size, &err) == 0)
		spool_env_free_fields(&env);
	/* recovery's damaged-file check (moves a bad file to error/) */
	(void)spool_recover_report(fz_sp, &r, &err);
	fz_unlink("incoming", FUZZ_ID);
	fz_unlink("error", FUZZ_ID);
}

/* fz_state - a state file merged into a valid message, then re-saved. */
static void fz_state(const uint8_t *d, size_t n)
{
	struct spool_env env;
	struct spool_msg *m;
	struct sg_error err;

	/* seeds name the message SEED_BASE_ID; the real one is random */
	if (n > 0) {
		uint8_t *copy = sg_xmalloc(n);
		size_t i;

		memcpy(copy, d, n);
		for (i = 0; i + SG_MAIL_ID_LEN <= n; i++) {
			if (memcmp(copy + i, SEED_BASE_ID, SG_MAIL_ID_LEN) == 0)
				memcpy(copy + i, fz_base, SG_MAIL_ID_LEN);
		}
		fz_write("state", fz_base, copy, n);
		free(copy);
	} else {
		fz_write("state", fz_base, d, n);
	}
	m = spool_msg_open(fz_sp, SPOOL_Q_INCOMING, fz_base, &err);
	if (m == NULL)
		abort(); /* a bad state must never make a good message unreadable */
	spool_msg_close(&m);
	if (spool_env_read(fz_sp, SPOOL_Q_INCOMING, fz_base, &env, NULL, &err) < 0)
		abort();
	(void)spool_state_save(fz_sp, &env, &err);
	spool_env_free_fields(&env);
	fz_unlink("state", fz_base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_sp == NULL)
		fz_init();
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0)
		fz_message(data + 1, size - 1);
	else
		fz_state(data + 1, size - 1);
	return 0;
}
