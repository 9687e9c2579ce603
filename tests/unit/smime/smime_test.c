/* smime_test.c - see smime_test.h. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "smime_test.h"

#define TKEYS_MAX 32

static struct {
	char dir[256];
	char ca_path[512];
	X509 *ca;
	struct tkey *keys[TKEYS_MAX];
	size_t n;
	unsigned serial;
} G;

int
trun(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	pid_t pid;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *
tpath(const char *name)
{
	static char bufs[8][1024];
	static unsigned i;
	char *b = bufs[i++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", G.dir, name);
	return b;
}

void
tfile_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

char *
tfile_read(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 65536) {
			cap = cap * 2 + 65536;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

int
tprog(const char *name)
{
	return trun("command -v %s >/dev/null 2>&1", name) == 0;
}

X509 *
tload_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

EVP_PKEY *
tload_key(const char *path, const char *pass)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, (void *)pass);
	fclose(f);
	return k;
}

void
tenv_init(void)
{
	if (G.dir[0] != '\0')
		return;
	snprintf(G.dir, sizeof(G.dir), "/tmp/sg-smime-XXXXXX");
	assert_non_null(mkdtemp(G.dir));
	snprintf(G.ca_path, sizeof(G.ca_path), "%s/ca.pem", G.dir);
	assert_int_equal(trun("cd %s && openssl req -x509 -newkey rsa:2048 -nodes "
		"-keyout ca.key -out ca.pem -subj '/O=Sealgate Test/CN=Sealgate Test CA' "
		"-days 3650 -addext basicConstraints=critical,CA:TRUE "
		"-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null", G.dir), 0);
	G.ca = tload_cert(G.ca_path);
	assert_non_null(G.ca);
}

void
tenv_cleanup(void)
{
	for (size_t i = 0; i < G.n; i++) {
		X509_free(G.keys[i]->cert);
		EVP_PKEY_free(G.keys[i]->pkey);
		free(G.keys[i]);
	}
	G.n = 0;
	X509_free(G.ca);
	G.ca = NULL;
	if (G.dir[0] != '\0' && getenv("SMIME_TEST_KEEP") == NULL)
		trun("rm -rf %s", G.dir);
	G.dir[0] = '\0';
}

const char *
tenv_dir(void)
{
	return G.dir;
}

const char *
tenv_ca_path(void)
{
	return G.ca_path;
}

X509 *
tenv_ca(void)
{
	return G.ca;
}

struct tkey *
tkey_get(const char *name, const char *alg)
{
	const char *newkey, *ku;
	struct tkey *k;

	for (size_t i = 0; i < G.n; i++) {
		if (strcmp(G.keys[i]->name, name) == 0)
			return G.keys[i];
	}
	assert_true(G.n < TKEYS_MAX);
	if (strcmp(alg, "rsa4096") == 0) {
		newkey = "-newkey rsa:4096";
		ku = "digitalSignature,nonRepudiation,keyEncipherment";
	} else if (strcmp(alg, "ec256") == 0) {
		newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256";
		ku = "digitalSignature,nonRepudiation,keyAgreement";
	} else {
		newkey = "-newkey rsa:2048";
		ku = "digitalSignature,nonRepudiation,keyEncipherment";
	}
	k = calloc(1, sizeof(*k));
	assert_non_null(k);
	snprintf(k->name, sizeof(k->name), "%s", name);
	snprintf(k->cert_path, sizeof(k->cert_path), "%s/%s.pem", G.dir, name);
	snprintf(k->key_path, sizeof(k->key_path), "%s/%s.key", G.dir, name);
	snprintf(k->p12_path, sizeof(k->p12_path), "%s/%s.p12", G.dir, name);
	assert_int_equal(trun("cd %s && printf 'basicConstraints=CA:FALSE\\n"
		"keyUsage=critical,%s\\nextendedKeyUsage=emailProtection\\n"
		"subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n"
		"subjectAltName=email:%s@example.org\\n' > %s.ext && "
		"openssl req %s -nodes -keyout %s.key -out %s.csr "
		"-subj '/O=Sealgate Test/CN=%s/emailAddress=%s@example.org' 2>/dev/null && "
		"openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -set_serial %u "
		"-days 3650 -extfile %s.ext -out %s.pem 2>/dev/null && "
		"openssl pkcs12 -export -legacy -name %s -in %s.pem -inkey %s.key -certfile ca.pem "
		"-passout pass:test -out %s.p12 2>/dev/null",
		G.dir, ku, name, name, newkey, name, name, name, name, name,
		1000 + G.serial++, name, name, name, name, name, name), 0);
	k->cert = tload_cert(k->cert_path);
	k->pkey = tload_key(k->key_path, NULL);
	assert_non_null(k->cert);
	assert_non_null(k->pkey);
	G.keys[G.n++] = k;
	return k;
}

int
tsign_cb(void *arg, const char *md, const void *tbs, size_t len, struct sg_buf *sig,
	struct sg_error *err)
{
	struct tkey *k = arg;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = NULL;
	size_t slen = 0;
	int rc = -1;

	if (ctx == NULL || EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, k->pkey, NULL) <= 0 ||
	    EVP_DigestSign(ctx, NULL, &slen, tbs, len) <= 0)
		goto out;
	buf = OPENSSL_malloc(slen);
	if (buf == NULL || EVP_DigestSign(ctx, buf, &slen, tbs, len) <= 0)
		goto out;
	rc = sg_buf_append(sig, buf, slen, err);
out:
	if (rc < 0 && err->code == SG_E_OK)
		sg_error_set_openssl(err, SG_E_CRYPTO, "test sign");
	OPENSSL_free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
tdecrypt_cb(void *arg, CMS_ContentInfo *cms, const struct smime_rid *rids, size_t n,
	BIO *out, size_t *used_r, struct sg_error *err)
{
	struct tkeyring *ring = arg;

	ring->calls++;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < ring->n; j++) {
			struct tkey *k = ring->keys[j];

			if (!smime_rid_match(&rids[i], k->cert))
				continue;
			if (!CMS_decrypt(cms, k->pkey, k->cert, NULL, out, 0)) {
				sg_error_set_openssl(err, SG_E_CRYPTO, "CMS_decrypt");
				return -1;
			}
			*used_r = i;
			return 1;
		}
	}
	return 0;
}

int
ttrust_cb(void *arg, X509 *signer, STACK_OF(X509) *certs, int64_t at, char *info,
	size_t infolen, struct sg_error *err)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	if (ctx == NULL || !X509_STORE_CTX_init(ctx, arg, signer, certs)) {
		X509_STORE_CTX_free(ctx);
		sg_error_set_openssl(err, SG_E_CRYPTO, "trust ctx");
		return -1;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN);
	if (at > 0)
		X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	ok = X509_verify_cert(ctx) > 0;
	if (!ok)
		snprintf(info, infolen, "%s",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ok ? 1 : 0;
}

struct smime_signer
tsigner(struct tkey *k)
{
	static STACK_OF(X509) *chain;

	if (chain == NULL) {
		chain = sk_X509_new_null();
		sk_X509_push(chain, G.ca);
	} else {
		sk_X509_set(chain, 0, G.ca);
	}
	return (struct smime_signer){ k->cert, chain, tsign_cb, k };
}

X509_STORE *
tstore(void)
{
	X509_STORE *st = X509_STORE_new();

	assert_non_null(st);
	assert_int_equal(X509_STORE_add_cert(st, G.ca), 1);
	return st;
}

char *
tmsg_sample(int crlf, size_t *len_r)
{
	static const char *const lines[] = {
		"From: Alice <alice@example.org>",
		"To: Bob <bob@example.net>",
		"Subject: =?UTF-8?B?R3LDvMOfZQ==?=",
		"Date: Mon, 30 Nov 2026 18:00:00 +0000",
		"Message-ID: <sample-1@example.org>",
		"X-Custom: kept outside",
		"MIME-Version: 1.0",
		"Content-Type: multipart/mixed; boundary=\"b1\"",
		"",
		"preamble",
		"--b1",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x94 \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
			"\xe4\xbd\xa0\xe5\xa5\xbd \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",
		"trailing space line   ",
		"From the start of a line",
		"--b1",
		"Content-Type: application/octet-stream; name=\"blob.bin\"",
		"Content-Transfer-Encoding: base64",
		"Content-Disposition: attachment; filename=\"blob.bin\"",
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v",
		"MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f",
		"gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqusra6v",
		"--b1--",
		"",
	};
	struct sg_buf b;
	struct sg_error e;

	sg_buf_init(&b, 1 << 20);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		assert_int_equal(sg_buf_append_str(&b, lines[i], &e), 0);
		assert_int_equal(sg_buf_append_str(&b, crlf ? "\r\n" : "\n", &e), 0);
	}
	*len_r = b.len;
	return sg_buf_steal(&b);
}

int
tmem_find(const void *hay, size_t len, const char *needle)
{
	return memmem(hay, len, needle, strlen(needle)) != NULL;
}
