/*
 * smime_test.h - helpers for the smime tests: a temp dir with a test CA and
 * keys made by the openssl CLI, subprocess runner, file I/O, and the
 * callbacks (sign / decrypt with EVP_PKEYs the TEST holds, trust with an
 * X509_STORE) that the pipeline implements with pki/pki_key in production.
 */
#ifndef SMIME_TEST_H
#define SMIME_TEST_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "smime/smime.h"

struct tkey {
	char name[32];
	char cert_path[512];   /* PEM */
	char key_path[512];    /* PEM PKCS#8, unencrypted */
	char p12_path[512];    /* 3DES PKCS#12 (legacy), password "test", with CA */
	X509 *cert;
	EVP_PKEY *pkey;
};

/* tenv_init - temp dir + CA (once per process); tenv_dir the path. */
void tenv_init(void);
void tenv_cleanup(void);
const char *tenv_dir(void);
const char *tenv_ca_path(void);
X509 *tenv_ca(void);
/* tkey_get - the key called name, made on first use: alg "rsa2048",
 * "rsa4096", "ec256". Lives until tenv_cleanup. */
struct tkey *tkey_get(const char *name, const char *alg);

/* trun - run a shell command line (built with printf format); returns the
 * exit status (or -1). */
int trun(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* tpath - tenv_dir()/name in a static rotating buffer. */
const char *tpath(const char *name);
/* tfile_write / tfile_read - whole files (read: NUL-terminated, caller frees). */
void tfile_write(const char *path, const void *data, size_t len);
char *tfile_read(const char *path, size_t *len_r);
/* tprog - 1 if the program is on PATH. */
int tprog(const char *name);

/* Callbacks. */
int tsign_cb(void *arg, const char *md, const void *tbs, size_t len,
	struct sg_buf *sig, struct sg_error *err);
struct tkeyring {
	struct tkey **keys;
	size_t n;
	int calls;
};
int tdecrypt_cb(void *arg, CMS_ContentInfo *cms, const struct smime_rid *rids, size_t n,
	BIO *out, size_t *used_r, struct sg_error *err);
/* ttrust_cb - arg is an X509_STORE *; validates at the signing time. */
int ttrust_cb(void *arg, X509 *signer, STACK_OF(X509) *certs, int64_t at, char *info,
	size_t infolen, struct sg_error *err);

/* tsigner - a smime_signer for k (chain = the CA). */
struct smime_signer tsigner(struct tkey *k);
/* tstore - X509_STORE with the CA (caller frees). */
X509_STORE *tstore(void);
/* load helpers */
X509 *tload_cert(const char *path);
EVP_PKEY *tload_key(const char *path, const char *pass);

/* tmsg_sample - a message with an 8-bit UTF-8 body and a base64 binary
 * attachment (with CRLF or LF line endings); caller frees. */
char *tmsg_sample(int crlf, size_t *len_r);
/* tmem_find - 1 if needle occurs in hay[0..len). */
int tmem_find(const void *hay, size_t len, const char *needle);

#endif
