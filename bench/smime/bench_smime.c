/*
 * bench_smime.c - messages per second of the S/MIME library (src/smime) for
 * sign (clear, SHA-256), encrypt (AES-256-CBC, one recipient), sign+encrypt
 * and decrypt+verify, on 20 KB and 1 MB messages, with T threads each
 * running the operation in a loop for S seconds. Also prints the peak RSS
 * after each size. Keys come from the run script (openssl CLI). The
 * streaming API is measured, as the pipeline uses it (mpa_smime.c): the
 * message is read from a memfd, every output goes to a new memfd.
 *
 * usage: bench_smime -c CERT -k KEY [-s SECONDS] [-t THREADS]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* memfd_create (the run script compiles with plain cc) */
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/cms.h>
#include <openssl/pem.h>

#include "smime/smime.h"

static X509 *cert;
static EVP_PKEY *pkey;
static STACK_OF(X509) *recips;

static int
sign_cb(void *arg, const char *md, const void *tbs, size_t len, struct sg_buf *sig,
	struct sg_error *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[1024];
	size_t slen = sizeof(buf);
	int rc = -1;

	if (ctx && EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) > 0 &&
	    EVP_DigestSign(ctx, buf, &slen, tbs, len) > 0)
		rc = sg_buf_append(sig, buf, slen, err);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int
decrypt_cb(void *arg, CMS_ContentInfo *cms, const struct smime_rid *rids, size_t n, BIO *out,
	size_t *used_r, struct sg_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (smime_rid_match(&rids[i], cert)) {
			*used_r = i;
			return CMS_decrypt(cms, pkey, cert, NULL, out, 0) ? 1 : -1;
		}
	}
	return 0;
}

enum op { OP_SIGN, OP_ENCRYPT, OP_SIGN_ENCRYPT, OP_DECRYPT_VERIFY };
static const char *const op_names[] = { "sign", "encrypt", "sign+encrypt", "decrypt+verify" };

struct job {
	enum op op;
	double seconds;
	atomic_long *count;
	atomic_int *failed;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* mfd - a new memfd (the pipeline's temporary files), or -1 */
static int
mfd(void)
{
	return memfd_create("bench-smime", MFD_CLOEXEC);
}

/* The message (and the decrypt+verify input, its sign+encrypt) in memfds,
 * read by every thread with pread. */
static int msg_fd = -1, dv_fd = -1;
static uint64_t msg_len, dv_len;

static int
one(const struct job *j)
{
	struct smime_signer s = { cert, NULL, sign_cb, NULL };
	struct smime_open_opts oo = { .decrypt = decrypt_cb,
		.flags = SMIME_OPEN_REMOVE_SIGNATURE };
	struct smime_result res = { 0 };
	struct sg_error err;
	uint64_t alen = 0, blen = 0;
	int a = mfd(), b = mfd(), rc = -1;

	if (a < 0 || b < 0) {
		snprintf(err.msg, sizeof(err.msg), "memfd_create failed");
		goto out;
	}
	switch (j->op) {
	case OP_SIGN:
		rc = smime_sign_fd(msg_fd, msg_len, &s, NULL, a, &alen, &err);
		break;
	case OP_ENCRYPT:
		rc = smime_encrypt_fd(msg_fd, msg_len, recips, NULL, a, &alen, &err);
		break;
	case OP_SIGN_ENCRYPT:
		rc = smime_sign_fd(msg_fd, msg_len, &s, NULL, a, &alen, &err);
		if (rc == 0)
			rc = smime_encrypt_fd(a, alen, recips, NULL, b, &blen, &err);
		break;
	case OP_DECRYPT_VERIFY:
		rc = smime_open_fd(dv_fd, dv_len, &oo, &res, a, &alen, &err);
		if (rc == 0 && (res.n_layers != 2 || !res.layers[0].is_decrypted ||
			res.layers[1].signers[0].status != SMIME_SIG_VALID)) {
			snprintf(err.msg, sizeof(err.msg), "not decrypted or not valid");
			rc = -1;
		}
		break;
	}
out:
	if (rc < 0)
		fprintf(stderr, "%s: %s\n", op_names[j->op], err.msg);
	smime_result_deinit(&res);
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return rc;
}

static void *
worker(void *arg)
{
	const struct job *j = arg;
	double end = now() + j->seconds;

	while (now() < end) {
		if (one(j) < 0) {
			atomic_store(j->failed, 1);
			break;
		}
		atomic_fetch_add(j->count, 1);
	}
	return NULL;
}

static char *
make_msg(size_t size, size_t *len_r)
{
	struct sg_buf b;
	struct sg_error e;
	size_t line = 0;

	sg_buf_init(&b, size + 4096);
	sg_buf_append_str(&b, "From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n"
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n", &e);
	while (b.len < size)
		sg_buf_printf(&b, &e, "line %zu: Gr\xc3\xbc\xc3\x9f" "e \xe4\xbd\xa0\xe5\xa5\xbd "
			"the quick brown fox jumps over the lazy dog\r\n", line++);
	*len_r = b.len;
	return sg_buf_steal(&b);
}

int
main(int argc, char **argv)
{
	const char *cpath = NULL, *kpath = NULL;
	double seconds = 2;
	int threads = 1, c;
	static const size_t sizes[] = { 20 * 1024, 1024 * 1024 };
	FILE *f;

	while ((c = getopt(argc, argv, "c:k:s:t:")) != -1) {
		switch (c) {
		case 'c': cpath = optarg; break;
		case 'k': kpath = optarg; break;
		case 's': seconds = strtod(optarg, NULL); break;
		case 't': threads = (int)strtol(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (cpath == NULL || kpath == NULL || threads < 1 || threads > 64)
		return 2;
	g_mime_init();
	f = fopen(cpath, "r");
	cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	f = fopen(kpath, "r");
	pkey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (cert == NULL || pkey == NULL)
		return 1;
	recips = sk_X509_new_null();
	sk_X509_push(recips, cert);
	printf("%-16s %8s %8s %12s\n", "operation", "size", "threads", "msgs/s");
	for (size_t si = 0; si < 2; si++) {
		size_t len;
		char *msg = make_msg(sizes[si], &len);
		struct smime_signer s = { cert, NULL, sign_cb, NULL };
		struct sg_error err;
		uint64_t slen = 0;
		struct rusage ru;
		int sig = mfd();

		msg_fd = mfd();
		dv_fd = mfd();
		msg_len = len;
		if (sig < 0 || msg_fd < 0 || dv_fd < 0 ||
		    write(msg_fd, msg, len) != (ssize_t)len ||
		    smime_sign_fd(msg_fd, msg_len, &s, NULL, sig, &slen, &err) < 0 ||
		    smime_encrypt_fd(sig, slen, recips, NULL, dv_fd, &dv_len, &err) < 0)
			return 1;
		close(sig);
		free(msg);
		for (int op = 0; op < 4; op++) {
			atomic_long count = 0;
			atomic_int failed = 0;
			struct job j = { (enum op)op, seconds, &count, &failed };
			pthread_t tid[64];
			double t0 = now();

			for (int t = 0; t < threads; t++)
				pthread_create(&tid[t], NULL, worker, &j);
			for (int t = 0; t < threads; t++)
				pthread_join(tid[t], NULL);
			if (atomic_load(&failed))
				return 1;
			printf("%-16s %8zu %8d %12.1f\n", op_names[op], sizes[si], threads,
				(double)atomic_load(&count) / (now() - t0));
			fflush(stdout);
		}
		getrusage(RUSAGE_SELF, &ru);
		printf("peak RSS after %zu-byte messages: %ld KB\n", sizes[si], ru.ru_maxrss);
		close(msg_fd);
		close(dv_fd);
	}
	sk_X509_free(recips);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return 0;
}
