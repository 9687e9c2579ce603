/*
 * pki_test.h - helpers for the pki tests: certificates, keys, CRLs and
 * PKCS#12 files generated at test time with the OpenSSL API, and a fresh
 * database per test (SQLite in a temp dir; PostgreSQL when built with
 * PKI_TEST_PG, using SG_TEST_PG_URL or a server of its own).
 */
#ifndef PKI_TEST_H
#define PKI_TEST_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/lib.h"
#include "pki/pki.h"
#include "store/store.h"

#define DAY 86400

struct tcert {
	X509 *x;
	EVP_PKEY *k;  /* the key certified (owned) */
	char thumb[PKI_THUMBPRINT_LEN + 1];
};

struct tspec {
	const char *cn;
	const char *email;        /* subject emailAddress, or NULL */
	const char *san;          /* "email:a@x,email:b@y" or NULL */
	const struct tcert *issuer; /* NULL: self-signed */
	bool ca;
	long nb_days;             /* notBefore = now + nb_days */
	long na_days;             /* notAfter = now + na_days (0: +365) */
	long na_secs;             /* if not 0: notAfter = now + na_secs instead */
	const char *ku;           /* "digitalSignature,keyEncipherment" or NULL */
	const char *eku;          /* "emailProtection" or NULL */
	const char *cdp;          /* "URI:http://..." or NULL */
	long serial;              /* 0: random */
	bool rsa;                 /* RSA-2048 (shared key) instead of a fresh P-256 */
	const EVP_PKEY *key;      /* reuse this key (up-ref) */
};

/* tcert_make - a certificate per spec; aborts the test on failure. */
struct tcert *tcert_make(const struct tspec *s);
void tcert_free(struct tcert **tp);
/* tcert_der - DER bytes (malloc'ed) */
unsigned char *tcert_der(const struct tcert *t, size_t *len_r);
/* tcert_pem - PEM text (malloc'ed) */
char *tcert_pem(const struct tcert *t);

/* tcrl_make - a CRL by issuer listing serials, DER (malloc'ed). signer NULL
 * = issuer's key. */
unsigned char *tcrl_make(const struct tcert *issuer, const long *serials, size_t n,
	long this_days, long next_days, const EVP_PKEY *signer, long crl_number,
	size_t *len_r);

/* tcrl_make_secs - as tcrl_make with times in seconds from now: thisUpdate,
 * nextUpdate and the revocation date of every entry. */
unsigned char *tcrl_make_secs(const struct tcert *issuer, const long *serials, size_t n,
	long this_secs, long next_secs, long revoked_secs, const EVP_PKEY *signer,
	long crl_number, size_t *len_r);

/* tp12_make - PKCS#12 (DER, malloc'ed) of leaf + key + ca certs. */
unsigned char *tp12_make(const struct tcert *leaf, const struct tcert *const *ca,
	size_t nca, const char *password, size_t *len_r);

/* tx509_thumb - SHA-512 hex of the DER, computed independently of pki. */
void tx509_thumb(X509 *x, char *out);

/* test environment */
struct tenv {
	char dir[256];         /* fresh temp dir for this test */
	char url[768];
	char dbname[96];
	struct store *db;
	struct pki *pki;
};
/* tenv_group_setup / teardown - once per executable */
int tenv_group_setup(void **state);
int tenv_group_teardown(void **state);
/* tenv_setup / teardown - a fresh database (migrated) + pki per test; *state
 * is the struct tenv */
int tenv_setup(void **state);
int tenv_teardown(void **state);
/* tenv_add - parse + add a test certificate (asserts); returns 1/0 of add */
int tenv_add(struct tenv *e, const struct tcert *t, unsigned flags);
/* tenv_write - write data to dir/name; returns the path (static buffer) */
const char *tenv_write(struct tenv *e, const char *name, const void *data, size_t len);
/* tenv_tmpbase - the per-executable temp dir */
const char *tenv_tmpbase(void);

#endif
