/*
 * pki_key.c - private keys: the key-encryption key (KEK) in the data
 * directory, keys stored as AES-256-GCM(KEK, PKCS#8 DER) with the certificate
 * thumbprint as AAD, PKCS#12 import/export (RFC 7292), and the key operations
 * (sign, CMS decrypt, CMS sign) so that no private EVP_PKEY leaves this file.
 *
 * Called by the CLI, the HTTP API and the MPA (smime), any thread with its own
 * struct pki_keys. Invariants: a stored key always matches the public key of
 * the certificate row it is attached to (checked on import); has_key in
 * pki_cert mirrors the presence of a pki_key row; plaintext key bytes are
 * cleansed before they are freed.
 *
 * Stored blob: 0x01 | nonce (12) | ciphertext | tag (16).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "pki/pki_int.h"
#include "pki/pki_key.h"

#define KEY_BLOB_VERSION 1
#define KEY_NONCE_LEN 12
#define KEY_TAG_LEN 16
#define KEY_DER_MAX (64u << 10)

struct pki_keys {
	struct pki *pki;
	unsigned char kek[PKI_KEK_LEN];
};

/* ------------------------------------------------------------------- KEK */

/* kek_read - 1 read, 0 absent, -1 error (bad mode/size) */
static int kek_read(const char *path, unsigned char *kek, struct sg_error *err)
{
	struct stat sb;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		sg_error_set_errno(err, SG_E_IO, errno, "key-encryption key %s", path);
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		sg_error_set(err, SG_E_CONFIG, "key-encryption key %s: not a regular file", path);
		return -1;
	}
	if ((sb.st_mode & 077) != 0) {
		close(fd);
		sg_error_set(err, SG_E_CONFIG, "key-encryption key %s: mode %03o, must be 0600",
			path, (unsigned)(sb.st_mode & 0777));
		return -1;
	}
	n = sb.st_size == PKI_KEK_LEN ? sg_read_full(fd, kek, PKI_KEK_LEN) : -1;
	close(fd);
	if (n != PKI_KEK_LEN) {
		sg_error_set(err, SG_E_CONFIG, "key-encryption key %s: want %d bytes", path,
			PKI_KEK_LEN);
		return -1;
	}
	return 1;
}

/* kek_create - write a fresh KEK to a temp file, fsync, link() into place
 * (fails if another process won the race: then its KEK is used) */
static int kek_create(const char *dir, const char *path, struct sg_error *err)
{
	unsigned char kek[PKI_KEK_LEN];
	char tmp[4200];
	int fd, rc = -1;

	snprintf(tmp, sizeof(tmp), "%s/.pki.kek.%ld", dir, (long)getpid());
	if (sg_random_bytes(kek, sizeof(kek), err) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "create %s", tmp);
		goto out;
	}
	if (fchmod(fd, 0600) < 0 || sg_write_all(fd, kek, sizeof(kek)) < 0 || fsync(fd) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "write %s", tmp);
		close(fd);
		goto out_unlink;
	}
	if (close(fd) < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "close %s", tmp);
		goto out_unlink;
	}
	if (link(tmp, path) < 0 && errno != EEXIST) {
		sg_error_set_errno(err, SG_E_IO, errno, "link %s", path);
		goto out_unlink;
	}
	rc = sg_fsync_dir(dir, err);
out_unlink:
	unlink(tmp);
out:
	OPENSSL_cleanse(kek, sizeof(kek));
	return rc;
}

struct pki_keys *pki_keys_open(struct pki *pki, const char *data_dir, struct sg_error *err)
{
	struct pki_keys *k;
	char path[4096];
	int r;

	if (pki == NULL || data_dir == NULL || data_dir[0] == '\0') {
		sg_error_set(err, SG_E_INVAL, "pki keys: no data directory");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", data_dir, PKI_KEK_FILE);
	k = sg_xcalloc(1, sizeof(*k));
	k->pki = pki;
	r = kek_read(path, k->kek, err);
	if (r == 0) {
		if (sg_mkdir_p(data_dir, 0700, err) < 0 || kek_create(data_dir, path, err) < 0)
			r = -1;
		else
			r = kek_read(path, k->kek, err);
	}
	if (r != 1) {
		if (r == 0)
			sg_error_set(err, SG_E_IO, "key-encryption key %s vanished", path);
		pki_keys_close(&k);
		return NULL;
	}
	return k;
}

void pki_keys_close(struct pki_keys **kp)
{
	if (kp == NULL || *kp == NULL)
		return;
	OPENSSL_cleanse((*kp)->kek, sizeof((*kp)->kek));
	free(*kp);
	*kp = NULL;
}

/* ------------------------------------------------------- seal and unseal */

/* gcm - AES-256-GCM one shot; enc 1 seals in -> out (+tag), 0 opens */
static int gcm(const unsigned char *kek, int enc, const unsigned char *nonce,
	const char *aad, const unsigned char *in, int inlen, unsigned char *out,
	unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, ok = 0;

	if (ctx == NULL)
		return 0;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek, nonce, enc) != 1 ||
		EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)aad,
			(int)strlen(aad)) != 1 ||
		EVP_CipherUpdate(ctx, out, &len, in, inlen) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KEY_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + len, &len) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KEY_TAG_LEN, tag) != 1)
		goto out;
	ok = 1;
out:
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/* key_store - seal pkey for thumb and insert the row, set has_key */
static int key_store(struct pki_keys *k, const char *thumb, EVP_PKEY *pkey,
	struct sg_error *err)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
	unsigned char *der = NULL, *blob = NULL;
	struct store_stmt *st = NULL;
	int len = 0, rc = -1;
	size_t blen;

	if (p8 != NULL)
		len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	if (len <= 0 || (size_t)len > KEY_DER_MAX) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "private key: cannot encode PKCS#8");
		goto out;
	}
	blen = 1 + KEY_NONCE_LEN + (size_t)len + KEY_TAG_LEN;
	blob = sg_xmalloc(blen);
	blob[0] = KEY_BLOB_VERSION;
	if (sg_random_bytes(blob + 1, KEY_NONCE_LEN, err) < 0)
		goto out;
	if (!gcm(k->kek, 1, blob + 1, thumb, der, len, blob + 1 + KEY_NONCE_LEN,
		blob + 1 + KEY_NONCE_LEN + len)) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "private key: cannot encrypt");
		goto out;
	}
	st = store_prepare(pki_store(k->pki), "INSERT INTO pki_key (thumbprint, enc, created) "
		"VALUES (?, ?, ?)", err);
	if (st == NULL)
		goto out;
	store_bind_text(st, 1, thumb);
	store_bind_blob(st, 2, blob, blen);
	store_bind_int64(st, 3, sg_now());
	if (store_stmt_step(st, err) < 0)
		goto out;
	rc = pki_cert_set_has_key(k->pki, thumb, true, err);
out:
	store_stmt_free(&st);
	if (der != NULL) {
		OPENSSL_cleanse(der, (size_t)len);
		OPENSSL_free(der);
	}
	free(blob);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return rc;
}

static int pkey_up_ref(void *k)
{
	return EVP_PKEY_up_ref(k);
}

static void pkey_free(void *k)
{
	EVP_PKEY_free(k);
}

/* Decrypted keys by their stored (encrypted) blob: the row is still read
 * every time (a deleted key is gone at once), only the AES-GCM and PKCS#8
 * decoding are saved. Decrypted keys stay in this process's memory, as the
 * key-encryption key does anyway. */
static struct pki_objcache key_cache = {PTHREAD_MUTEX_INITIALIZER, pkey_up_ref,
	pkey_free, {{NULL, 0, NULL}}};

/* key_load - 1 + *pkey_r (this file only), 0 no key, -1 error */
static int key_load(struct pki_keys *k, const char *thumbprint, EVP_PKEY **pkey_r,
	struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	unsigned char tag[KEY_TAG_LEN];
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	struct store_stmt *st = NULL;
	unsigned char *plain = NULL, *ckey = NULL;
	const unsigned char *blob, *p;
	size_t blen = 0, clen = 0;
	int r, rc = -1;

	*pkey_r = NULL;
	sg_strlcpy(t, thumbprint, sizeof(t));
	if (strlen(thumbprint) != PKI_THUMBPRINT_LEN || pki_thumbprint_normalize(t, err) < 0)
		return -1;
	st = store_prepare(pki_store(k->pki), "SELECT enc FROM pki_key WHERE thumbprint = ?",
		err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, t);
	r = store_stmt_step(st, err);
	if (r <= 0) {
		rc = r;
		goto out;
	}
	blob = store_col_blob(st, 0, &blen);
	if (blen < 1 + KEY_NONCE_LEN + KEY_TAG_LEN + 1 || blob[0] != KEY_BLOB_VERSION ||
		blen > KEY_DER_MAX + 64) {
		sg_error_set(err, SG_E_CRYPTO, "private key %.16s...: bad stored format", t);
		goto out;
	}
	/* the cache key is KEK || blob: a blob only decrypts under its KEK */
	ckey = sg_xmalloc(sizeof(k->kek) + blen);
	memcpy(ckey, k->kek, sizeof(k->kek));
	memcpy(ckey + sizeof(k->kek), blob, blen);
	*pkey_r = pki_objcache_get(&key_cache, ckey, sizeof(k->kek) + blen);
	if (*pkey_r != NULL) {
		rc = 1;
		goto out;
	}
	clen = blen - 1 - KEY_NONCE_LEN - KEY_TAG_LEN;
	memcpy(tag, blob + 1 + KEY_NONCE_LEN + clen, KEY_TAG_LEN);
	plain = sg_xmalloc(clen);
	if (!gcm(k->kek, 0, blob + 1, t, blob + 1 + KEY_NONCE_LEN, (int)clen, plain, tag)) {
		ERR_clear_error();
		sg_error_set(err, SG_E_CRYPTO, "private key %.16s...: cannot decrypt (wrong "
			"key-encryption key or corrupt)", t);
		goto out;
	}
	p = plain;
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)clen);
	*pkey_r = p8 != NULL ? EVP_PKCS82PKEY(p8) : NULL;
	if (*pkey_r == NULL) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "private key %.16s...: bad PKCS#8", t);
		goto out;
	}
	pki_objcache_put(&key_cache, ckey, sizeof(k->kek) + blen, *pkey_r);
	rc = 1;
out:
	store_stmt_free(&st);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (plain != NULL) {
		OPENSSL_cleanse(plain, clen);
		free(plain);
	}
	if (ckey != NULL) {
		OPENSSL_cleanse(ckey, sizeof(k->kek));
		free(ckey);
	}
	return rc;
}

int pki_key_has(struct pki_keys *keys, const char *thumbprint, struct sg_error *err)
{
	char t[PKI_THUMBPRINT_LEN + 1];
	struct store_stmt *st;
	int r;

	sg_strlcpy(t, thumbprint, sizeof(t));
	if (strlen(thumbprint) != PKI_THUMBPRINT_LEN || pki_thumbprint_normalize(t, NULL) < 0)
		return 0;
	st = store_prepare(pki_store(keys->pki), "SELECT 1 FROM pki_key WHERE thumbprint = ?",
		err);
	if (st == NULL)
		return -1;
	store_bind_text(st, 1, t);
	r = store_stmt_step(st, err);
	store_stmt_free(&st);
	return r;
}

/* ------------------------------------------------------------ PKCS#12 in */

/*
 * The legacy provider, loaded once on first need (a documented, thread-safe
 * cache invisible to callers, STYLE §7) and unloaded at exit (our atexit
 * handler runs before OpenSSL's own cleanup, registered earlier).
 */
static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;
static OSSL_PROVIDER *legacy_prov;  /* written once under legacy_once */
static bool legacy_loaded;

static void legacy_unload(void)
{
	OSSL_PROVIDER_unload(legacy_prov);
	legacy_prov = NULL;
}

/* legacy_load - OpenSSL's legacy provider for RC2/RC4/DES-based PKCS#12 (the
 * default provider stays available: retain_fallbacks) */
static void legacy_load(void)
{
	legacy_prov = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
	legacy_loaded = legacy_prov != NULL;
	if (legacy_loaded)
		atexit(legacy_unload);
}

/* p12_decode - DER, or PEM/base64-armoured DER (some tools write that) */
static PKCS12 *p12_decode(const void *data, size_t len)
{
	const unsigned char *p = data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	BIO *b, *b64;

	if (p12 != NULL || len > PKI_IMPORT_MAX)
		return p12;
	ERR_clear_error();
	b = BIO_new_mem_buf(data, (int)len);
	if (b == NULL)
		return NULL;
	if (memmem(data, len, "-----BEGIN", 10) != NULL) {
		char *name = NULL, *hdr = NULL;
		unsigned char *der = NULL;
		long dlen = 0;

		if (PEM_read_bio(b, &name, &hdr, &der, &dlen) == 1) {
			p = der;
			p12 = d2i_PKCS12(NULL, &p, dlen);
		}
		OPENSSL_free(name);
		OPENSSL_free(hdr);
		OPENSSL_free(der);
		BIO_free(b);
		return p12;
	}
	b64 = BIO_new(BIO_f_base64());
	if (b64 != NULL) {
		b = BIO_push(b64, b);
		p12 = d2i_PKCS12_bio(b, NULL);
	}
	BIO_free_all(b);
	return p12;
}

/* p12_open - MAC check (wrong password), then parse with legacy fallback */
static int p12_open(const void *data, size_t len, const char *password, EVP_PKEY **pkey_r,
	X509 **cert_r, STACK_OF(X509) **ca_r, struct sg_error *err)
{
	PKCS12 *p12 = p12_decode(data, len);
	const char *pw = password;
	int rc = -1;

	if (p12 == NULL) {
		sg_error_set_openssl(err, SG_E_PARSE, "not a PKCS#12 file");
		return -1;
	}
	if (PKCS12_mac_present(p12)) {
		if (PKCS12_verify_mac(p12, pw, -1) != 1) {
			pw = NULL;
			if (password[0] != '\0' || PKCS12_verify_mac(p12, NULL, 0) != 1) {
				ERR_clear_error();
				sg_error_set(err, SG_E_CRYPTO, "PKCS#12: wrong password (MAC "
					"verification failed)");
				goto out;
			}
		}
	}
	if (PKCS12_parse(p12, pw, pkey_r, cert_r, ca_r) != 1) {
		unsigned long e = ERR_peek_last_error();

		ERR_clear_error();
		pthread_once(&legacy_once, legacy_load);
		if (!legacy_loaded || PKCS12_parse(p12, pw, pkey_r, cert_r, ca_r) != 1) {
			sg_error_set(err, SG_E_CRYPTO, "PKCS#12: cannot decrypt (%s)%s",
				ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?",
				legacy_loaded ? "" : "; the OpenSSL legacy provider is not available");
			ERR_clear_error();
			goto out;
		}
	}
	rc = 0;
out:
	PKCS12_free(p12);
	return rc;
}

/* import_one - add x (and pkey when it matches) and report it */
static int import_one(struct pki_keys *k, X509 *x, EVP_PKEY *pkey, pki_import_cb *cb,
	void *arg, struct sg_error *err)
{
	struct pki_cert *c = pki_cert_from_x509(x, err);
	enum pki_import_state state;
	int added, has, rc = -1;

	if (c == NULL)
		return -1;
	added = pki_cert_add(k->pki, c, 0, err);
	if (added < 0)
		goto out;
	state = added ? PKI_IMPORTED : PKI_IMPORT_EXISTS;
	has = pki_key_has(k, c->thumbprint, err);
	if (has < 0)
		goto out;
	if (pkey != NULL && has == 0) {
		if (key_store(k, c->thumbprint, pkey, err) < 0)
			goto out;
		if (!added)
			state = PKI_IMPORT_KEY_ADDED;
		has = 1;
	}
	rc = cb != NULL ? cb(c, state, has == 1, arg, err) : 0;
out:
	pki_cert_free(&c);
	return rc;
}

int pki_key_import_p12(struct pki_keys *keys, const void *data, size_t len,
	const char *password, pki_import_cb *cb, void *arg, struct sg_error *err)
{
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	bool own = false;
	int i, rc = -1;

	if (data == NULL || len == 0 || len > PKI_IMPORT_MAX) {
		sg_error_set(err, SG_E_PARSE, "PKCS#12: bad size %zu", len);
		return -1;
	}
	if (p12_open(data, len, password != NULL ? password : "", &pkey, &cert, &ca,
		err) < 0)
		return -1;
	if (pkey != NULL && cert == NULL) {
		sg_error_set(err, SG_E_PARSE, "PKCS#12: private key without its certificate");
		goto out;
	}
	if (pkey != NULL && X509_check_private_key(cert, pkey) != 1) {
		ERR_clear_error();
		sg_error_set(err, SG_E_PARSE, "PKCS#12: the private key does not match the "
			"certificate");
		goto out;
	}
	if (cert == NULL && sk_X509_num(ca) == 0) {
		sg_error_set(err, SG_E_PARSE, "PKCS#12: no certificate in it");
		goto out;
	}
	if (pki_tx_begin(keys->pki, &own, err) < 0)
		goto out;
	rc = 0;
	if (cert != NULL)
		rc = import_one(keys, cert, pkey, cb, arg, err);
	for (i = 0; rc == 0 && i < sk_X509_num(ca); i++)
		rc = import_one(keys, sk_X509_value(ca, i), NULL, cb, arg, err);
	rc = pki_tx_end(keys->pki, own, rc, err);
out:
	EVP_PKEY_free(pkey);
	X509_free(cert);
	sk_X509_pop_free(ca, X509_free);
	return rc;
}

/* ----------------------------------------------------------- PKCS#12 out */

/* p12_add_pair - the certificate bag and shrouded key bag of one thumbprint */
static int p12_add_pair(struct pki_keys *k, const char *thumb, const char *password,
	unsigned flags, STACK_OF(PKCS12_SAFEBAG) **certbags,
	STACK_OF(PKCS12_SAFEBAG) **keybags, struct sg_error *err)
{
	int nid_key = (flags & PKI_P12_LEGACY) ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC :
		NID_aes_256_cbc;
	unsigned char keyid[EVP_MAX_MD_SIZE];
	unsigned int idlen = 0;
	struct pki_cert *c = NULL;
	PKCS12_SAFEBAG *bag;
	EVP_PKEY *pkey = NULL;
	STACK_OF(X509) *chain = NULL;
	int r, j, rc = -1;

	r = pki_cert_get(k->pki, thumb, &c, err);
	if (r <= 0) {
		if (r == 0)
			sg_error_set(err, SG_E_NOTFOUND, "certificate %.20s... not found", thumb);
		goto out;
	}
	r = key_load(k, c->thumbprint, &pkey, err);
	if (r <= 0) {
		if (r == 0)
			sg_error_set(err, SG_E_NOTFOUND, "certificate %.20s... has no private key",
				thumb);
		goto out;
	}
	if (X509_digest(c->x509, EVP_sha1(), keyid, &idlen) != 1)
		goto ossl;
	bag = PKCS12_add_cert(certbags, c->x509);
	if (bag == NULL || PKCS12_add_localkeyid(bag, keyid, (int)idlen) != 1)
		goto ossl;
	bag = PKCS12_add_key(keybags, pkey, 0, PKCS12_DEFAULT_ITER, nid_key, password);
	if (bag == NULL || PKCS12_add_localkeyid(bag, keyid, (int)idlen) != 1)
		goto ossl;
	if ((flags & PKI_P12_CHAIN) != 0) {
		int xerr, depth;

		if (pki_chain_build(k->pki, c->x509, sg_now(), &chain, &xerr, &depth, err) < 0)
			goto out;
		for (j = 1; j < sk_X509_num(chain); j++) {
			if (PKCS12_add_cert(certbags, sk_X509_value(chain, j)) == NULL)
				goto ossl;
		}
	}
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "PKCS#12: cannot add %.16s...", thumb);
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(pkey);
	pki_cert_free(&c);
	return rc;
}

int pki_key_export_p12(struct pki_keys *keys, const char *const *thumbprints, size_t n,
	const char *password, unsigned flags, struct sg_buf *out, struct sg_error *err)
{
	int nid_cert = (flags & PKI_P12_LEGACY) ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC :
		NID_aes_256_cbc;
	const EVP_MD *mac_md = (flags & PKI_P12_LEGACY) ? EVP_sha1() : EVP_sha256();
	STACK_OF(PKCS12_SAFEBAG) *certbags = NULL, *keybags = NULL;
	STACK_OF(PKCS7) *safes = NULL;
	unsigned char *der = NULL;
	PKCS12 *p12 = NULL;
	int len, rc = -1;
	size_t i;

	if (n == 0 || password == NULL) {
		sg_error_set(err, SG_E_INVAL, "PKCS#12 export: no certificate or no password");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (p12_add_pair(keys, thumbprints[i], password, flags, &certbags, &keybags,
			err) < 0)
			goto out;
	}
	if (PKCS12_add_safe(&safes, certbags, nid_cert, PKCS12_DEFAULT_ITER, password) != 1 ||
		PKCS12_add_safe(&safes, keybags, -1, 0, NULL) != 1)
		goto ossl;
	p12 = PKCS12_add_safes(safes, 0);
	if (p12 == NULL || PKCS12_set_mac(p12, password, -1, NULL, 0, PKCS12_DEFAULT_ITER,
		mac_md) != 1)
		goto ossl;
	len = i2d_PKCS12(p12, &der);
	if (len <= 0)
		goto ossl;
	rc = sg_buf_append(out, der, (size_t)len, err);
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "PKCS#12: cannot build");
out:
	OPENSSL_free(der);
	PKCS12_free(p12);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	sk_PKCS12_SAFEBAG_pop_free(certbags, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(keybags, PKCS12_SAFEBAG_free);
	return rc;
}

/* ------------------------------------------------------- key operations */

/* need_key - key_load with "no key" as SG_E_NOTFOUND */
static EVP_PKEY *need_key(struct pki_keys *k, const char *thumb, struct sg_error *err)
{
	EVP_PKEY *pkey = NULL;
	int r = key_load(k, thumb, &pkey, err);

	if (r == 0)
		sg_error_set(err, SG_E_NOTFOUND, "no private key for %.16s...", thumb);
	return r == 1 ? pkey : NULL;
}

int pki_key_sign(struct pki_keys *keys, const char *thumbprint, const char *md,
	const void *data, size_t len, struct sg_buf *sig, struct sg_error *err)
{
	EVP_PKEY *pkey = need_key(keys, thumbprint, err);
	EVP_MD_CTX *ctx = NULL;
	unsigned char *s = NULL;
	size_t slen = 0;
	int rc = -1;

	if (pkey == NULL)
		return -1;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) != 1 ||
		EVP_DigestSign(ctx, NULL, &slen, data, len) != 1)
		goto ossl;
	s = OPENSSL_malloc(slen);
	if (s == NULL || EVP_DigestSign(ctx, s, &slen, data, len) != 1)
		goto ossl;
	rc = sg_buf_append(sig, s, slen, err);
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "sign with %.16s...", thumbprint);
out:
	OPENSSL_free(s);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return rc;
}

int pki_key_cms_decrypt(struct pki_keys *keys, const char *thumbprint,
	CMS_ContentInfo *cms, BIO *out, struct sg_error *err)
{
	X509 *x = NULL;
	EVP_PKEY *pkey = NULL;
	int r, rc = -1;

	/* the decoded certificate only (kept by the context, pki_memo.c) */
	r = pki_cert_x509_get1(keys->pki, thumbprint, &x, err);
	if (r <= 0) {
		if (r == 0)
			sg_error_set(err, SG_E_NOTFOUND, "certificate %.16s... not found",
				thumbprint);
		return -1;
	}
	pkey = need_key(keys, thumbprint, err);
	if (pkey == NULL)
		goto out;
	if (CMS_decrypt(cms, pkey, x, NULL, out, 0) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "CMS decrypt with %.16s...", thumbprint);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	X509_free(x);
	return rc;
}

int pki_key_cms_sign(struct pki_keys *keys, const char *thumbprint, BIO *in,
	STACK_OF(X509) *certs, unsigned cms_flags, CMS_ContentInfo **cms_r,
	struct sg_error *err)
{
	struct pki_cert *c = NULL;
	EVP_PKEY *pkey = NULL;
	int r;

	*cms_r = NULL;
	r = pki_cert_get(keys->pki, thumbprint, &c, err);
	if (r <= 0) {
		if (r == 0)
			sg_error_set(err, SG_E_NOTFOUND, "certificate %.16s... not found",
				thumbprint);
		return -1;
	}
	pkey = need_key(keys, thumbprint, err);
	if (pkey != NULL) {
		*cms_r = CMS_sign(c->x509, pkey, certs, in, cms_flags);
		if (*cms_r == NULL)
			sg_error_set_openssl(err, SG_E_CRYPTO, "CMS sign with %.16s...",
				thumbprint);
	}
	EVP_PKEY_free(pkey);
	pki_cert_free(&c);
	return *cms_r != NULL ? 0 : -1;
}
