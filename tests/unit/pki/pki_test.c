/* pki_test.c - see pki_test.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "pki_test.h"
#include "../store/store_test_pg.h"

#ifdef PKI_TEST_PG
#define IS_PG 1
#else
#define IS_PG 0
#endif

static struct {
	char tmp[256];
	char admin_url[512];
	bool own_server;
	unsigned seq;
	EVP_PKEY *rsa;
} G;

const char *tenv_tmpbase(void)
{
	return G.tmp;
}

static EVP_PKEY *key_ec(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, val);

	if (e == NULL) {
		ERR_print_errors_fp(stderr);
		fail_msg("extension %d=%s", nid, val);
	}
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

void tx509_thumb(X509 *x, char *out)
{
	unsigned char *der = NULL, md[64];
	int len = i2d_X509(x, &der);
	size_t i;

	assert_true(len > 0);
	assert_non_null(SHA512(der, (size_t)len, md));
	for (i = 0; i < 64; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	OPENSSL_free(der);
}

struct tcert *tcert_make(const struct tspec *s)
{
	struct tcert *t = calloc(1, sizeof(*t));
	X509_NAME *n;
	X509V3_CTX ctx;
	time_t now = time(NULL);

	assert_non_null(t);
	if (s->key != NULL) {
		t->k = (EVP_PKEY *)s->key;
		EVP_PKEY_up_ref(t->k);
	} else if (s->rsa) {
		if (G.rsa == NULL)
			G.rsa = EVP_RSA_gen(2048);
		assert_non_null(G.rsa);
		t->k = G.rsa;
		EVP_PKEY_up_ref(t->k);
	} else {
		t->k = key_ec();
	}
	t->x = X509_new();
	assert_non_null(t->x);
	X509_set_version(t->x, 2);
	if (s->serial != 0) {
		ASN1_INTEGER_set(X509_get_serialNumber(t->x), s->serial);
	} else {
		unsigned char r[8];
		BIGNUM *bn;

		RAND_bytes(r, sizeof(r));
		r[0] &= 0x7f;
		bn = BN_bin2bn(r, sizeof(r), NULL);
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(t->x));
		BN_free(bn);
	}
	X509_time_adj_ex(X509_getm_notBefore(t->x), (int)s->nb_days, 0, &now);
	X509_time_adj_ex(X509_getm_notAfter(t->x), s->na_secs ? 0 :
		s->na_days ? (int)s->na_days : 365, s->na_secs, &now);
	n = X509_get_subject_name(t->x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn, -1,
		-1, 0);
	if (s->email != NULL)
		X509_NAME_add_entry_by_txt(n, "emailAddress", MBSTRING_ASC,
			(const unsigned char *)s->email, -1, -1, 0);
	X509_set_issuer_name(t->x, s->issuer ? X509_get_subject_name(s->issuer->x) : n);
	X509_set_pubkey(t->x, t->k);
	X509V3_set_ctx(&ctx, s->issuer ? s->issuer->x : t->x, t->x, NULL, NULL, 0);
	add_ext(t->x, &ctx, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "CA:FALSE");
	add_ext(t->x, &ctx, NID_subject_key_identifier, "hash");
	if (s->issuer != NULL)
		add_ext(t->x, &ctx, NID_authority_key_identifier, "keyid:always");
	if (s->ca)
		add_ext(t->x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	else if (s->ku != NULL)
		add_ext(t->x, &ctx, NID_key_usage, s->ku);
	if (s->eku != NULL)
		add_ext(t->x, &ctx, NID_ext_key_usage, s->eku);
	if (s->san != NULL)
		add_ext(t->x, &ctx, NID_subject_alt_name, s->san);
	if (s->cdp != NULL)
		add_ext(t->x, &ctx, NID_crl_distribution_points, s->cdp);
	assert_true(X509_sign(t->x, s->issuer ? s->issuer->k : t->k, EVP_sha256()) > 0);
	tx509_thumb(t->x, t->thumb);
	return t;
}

void tcert_free(struct tcert **tp)
{
	if (*tp == NULL)
		return;
	X509_free((*tp)->x);
	EVP_PKEY_free((*tp)->k);
	free(*tp);
	*tp = NULL;
}

unsigned char *tcert_der(const struct tcert *t, size_t *len_r)
{
	unsigned char *der = NULL, *out;
	int len = i2d_X509(t->x, &der);

	assert_true(len > 0);
	out = malloc((size_t)len);
	assert_non_null(out);
	memcpy(out, der, (size_t)len);
	OPENSSL_free(der);
	*len_r = (size_t)len;
	return out;
}

char *tcert_pem(const struct tcert *t)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out;
	long len;

	assert_int_equal(PEM_write_bio_X509(b, t->x), 1);
	len = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)len);
	BIO_free(b);
	return out;
}

unsigned char *tcrl_make(const struct tcert *issuer, const long *serials, size_t n,
	long this_days, long next_days, const EVP_PKEY *signer, long crl_number,
	size_t *len_r)
{
	return tcrl_make_secs(issuer, serials, n, this_days * DAY, next_days * DAY,
		(this_days - 1) * DAY, signer, crl_number, len_r);
}

unsigned char *tcrl_make_secs(const struct tcert *issuer, const long *serials, size_t n,
	long this_secs, long next_secs, long revoked_secs, const EVP_PKEY *signer,
	long crl_number, size_t *len_r)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *tm = ASN1_TIME_new();
	time_t now = time(NULL);
	unsigned char *der = NULL, *out;
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	size_t i;
	int len;

	assert_non_null(crl);
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer->x));
	X509_time_adj_ex(tm, 0, this_secs, &now);
	X509_CRL_set1_lastUpdate(crl, tm);
	X509_time_adj_ex(tm, 0, next_secs, &now);
	X509_CRL_set1_nextUpdate(crl, tm);
	for (i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();

		ASN1_INTEGER_set(s, serials[i]);
		X509_REVOKED_set_serialNumber(r, s);
		X509_time_adj_ex(tm, 0, revoked_secs, &now);
		X509_REVOKED_set_revocationDate(r, tm);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(s);
	}
	X509V3_set_ctx(&ctx, issuer->x, NULL, NULL, crl, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	assert_non_null(e);
	X509_CRL_add_ext(crl, e, -1);
	X509_EXTENSION_free(e);
	{
		ASN1_INTEGER *num = ASN1_INTEGER_new();

		ASN1_INTEGER_set(num, crl_number);
		assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0), 1);
		ASN1_INTEGER_free(num);
	}
	X509_CRL_sort(crl);
	assert_true(X509_CRL_sign(crl, signer ? (EVP_PKEY *)signer : issuer->k,
		EVP_sha256()) > 0);
	len = i2d_X509_CRL(crl, &der);
	assert_true(len > 0);
	out = malloc((size_t)len);
	memcpy(out, der, (size_t)len);
	OPENSSL_free(der);
	ASN1_TIME_free(tm);
	X509_CRL_free(crl);
	*len_r = (size_t)len;
	return out;
}

unsigned char *tp12_make(const struct tcert *leaf, const struct tcert *const *ca,
	size_t nca, const char *password, size_t *len_r)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	unsigned char *der = NULL, *out;
	PKCS12 *p12;
	size_t i;
	int len;

	for (i = 0; i < nca; i++)
		sk_X509_push(sk, ca[i]->x);
	p12 = PKCS12_create(password, "test", leaf->k, leaf->x, sk, 0, 0, 0, 0, 0);
	assert_non_null(p12);
	len = i2d_PKCS12(p12, &der);
	assert_true(len > 0);
	out = malloc((size_t)len);
	memcpy(out, der, (size_t)len);
	OPENSSL_free(der);
	PKCS12_free(p12);
	sk_X509_free(sk);
	*len_r = (size_t)len;
	return out;
}

/* ----------------------------------------------------------- environment */

int tenv_group_setup(void **state)
{
	const char *env = getenv("SG_TEST_PG_URL");

	(void)state;
	snprintf(G.tmp, sizeof(G.tmp), "/tmp/sg-test-pki-XXXXXX");
	if (mkdtemp(G.tmp) == NULL)
		return -1;
	if (!IS_PG)
		return 0;
	if (env != NULL && *env != '\0') {
		snprintf(G.admin_url, sizeof(G.admin_url), "%s", env);
		return 0;
	}
	{
		char dir[300];

		chmod(G.tmp, 0755);
		snprintf(dir, sizeof(dir), "%s/pg", G.tmp);
		if (pg_server_start(dir, G.admin_url, sizeof(G.admin_url)) < 0)
			return -1;
		G.own_server = true;
	}
	return 0;
}

int tenv_group_teardown(void **state)
{
	char *rm[] = {"rm", "-rf", G.tmp, NULL};

	(void)state;
	if (G.own_server) {
		char dir[300];

		snprintf(dir, sizeof(dir), "%s/pg", G.tmp);
		pg_server_stop(dir);
	}
	run_cmd(rm, NULL, 0);
	EVP_PKEY_free(G.rsa);
	G.rsa = NULL;
	return 0;
}

int tenv_setup(void **state)
{
	struct tenv *e = calloc(1, sizeof(*e));
	struct sg_error err;

	if (e == NULL)
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/t%u", G.tmp, G.seq++);
	if (mkdir(e->dir, 0700) < 0)
		return -1;
	if (!IS_PG) {
		snprintf(e->url, sizeof(e->url), "sqlite:%s/db", e->dir);
	} else {
		unsigned char r[4];
		char hex[9];

		sg_random_bytes(r, sizeof(r), NULL);
		sg_hex(hex, r, sizeof(r));
		snprintf(e->dbname, sizeof(e->dbname), "sg_test_pki_%d_%u_%s", (int)getpid(),
			G.seq, hex);
		if (pg_db_create(G.admin_url, e->dbname) < 0)
			return -1;
		pg_url_with_db(G.admin_url, e->dbname, e->url, sizeof(e->url));
	}
	e->db = store_open(e->url, &err);
	if (e->db == NULL || store_migrate(e->db, &err) < 0) {
		fprintf(stderr, "store %s: %s\n", e->url, err.msg);
		return -1;
	}
	e->pki = pki_open(e->db, &err);
	if (e->pki == NULL)
		return -1;
	*state = e;
	return 0;
}

int tenv_teardown(void **state)
{
	struct tenv *e = *state;

	pki_close(&e->pki);
	store_close(&e->db);
	if (IS_PG && e->dbname[0] != '\0')
		pg_db_drop(G.admin_url, e->dbname);
	free(e);
	return 0;
}

int tenv_add(struct tenv *e, const struct tcert *t, unsigned flags)
{
	struct pki_cert *c;
	struct sg_error err;
	size_t len;
	unsigned char *der = tcert_der(t, &len);
	int r;

	c = pki_cert_from_der(der, len, &err);
	if (c == NULL)
		fail_msg("parse: %s", err.msg);
	r = pki_cert_add(e->pki, c, flags, &err);
	if (r < 0)
		fail_msg("add: %s", err.msg);
	pki_cert_free(&c);
	free(der);
	return r;
}

const char *tenv_write(struct tenv *e, const char *name, const void *data, size_t len)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}
