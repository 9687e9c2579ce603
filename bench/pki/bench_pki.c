/*
 * bench_pki.c - issue 6 benchmark (F-PKI-7): import N certificates (default
 * 1,000,000) into the certificate store (rate, disk size, RSS); e-mail lookup
 * and encryption-certificate selection latency p50/p99 with N stored;
 * validation of a 3-level chain per second, cold (no cache) and cached; a CRL
 * with M entries (default 1,000,000): import time and revocation lookups/s.
 *
 *   bench_pki [-n CERTS] [-m CRL_ENTRIES] [-q QUERIES] [-U URL]
 *
 * Certificates are generated here (one P-256 key, distinct subjects, serials
 * and addresses; issued by one intermediate under one root), then imported
 * through the public API (pki_cert_from_der + pki_cert_add, 10,000 per
 * transaction). Without -U a SQLite database in a temp dir is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

static void die(const char *what, const struct sg_error *err)
{
	fprintf(stderr, "bench_pki: %s: %s\n", what, err ? err->msg : "failed");
	exit(1);
}

static void ext(X509 *x, X509 *iss, int nid, const char *v)
{
	X509V3_CTX c;
	X509_EXTENSION *e;

	X509V3_set_ctx(&c, iss, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &c, nid, v);
	if (e == NULL || !X509_add_ext(x, e, -1))
		die("extension", NULL);
	X509_EXTENSION_free(e);
}

/* make - a certificate of cn (email may be NULL) issued by iss/ik */
static X509 *make(const char *cn, const char *email, long serial, bool ca, X509 *iss,
	EVP_PKEY *ik, EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	time_t now = time(NULL);

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now);
	X509_time_adj_ex(X509_getm_notAfter(x), 365, 0, &now);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, iss ? X509_get_subject_name(iss) : n);
	X509_set_pubkey(x, key);
	ext(x, iss ? iss : x, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca) {
		ext(x, iss ? iss : x, NID_subject_key_identifier, "hash");
		ext(x, iss ? iss : x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		char san[128];

		snprintf(san, sizeof(san), "email:%s", email);
		ext(x, iss, NID_subject_alt_name, san);
		ext(x, iss, NID_key_usage, "digitalSignature,keyAgreement");
	}
	if (!X509_sign(x, ik ? ik : key, EVP_sha256()))
		die("sign", NULL);
	return x;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *lat, size_t n)
{
	qsort(lat, n, sizeof(*lat), cmp64);
	printf("%-34s p50 %8.1f us  p99 %8.1f us  (%zu samples)\n", what,
		(double)lat[n / 2] / 1000.0, (double)lat[n * 99 / 100] / 1000.0, n);
}

static void add_x509(struct pki *pki, X509 *x, unsigned flags)
{
	struct sg_error err;
	struct pki_cert *c = pki_cert_from_x509(x, &err);

	if (c == NULL || pki_cert_add(pki, c, flags, &err) < 0)
		die("add", &err);
	pki_cert_free(&c);
}

int main(int argc, char **argv)
{
	long n = 1000000, m = 1000000, q = 10000, i;
	const char *url = NULL;
	char dir[64] = "", dburl[128], path[128];
	struct sg_error err;
	struct store *db;
	struct pki *pki;
	EVP_PKEY *rk, *mk, *lk;
	X509 *root, *mid, *probe = NULL;
	int64_t t0, t1, *lat;
	int opt;

	while ((opt = getopt(argc, argv, "n:m:q:U:")) != -1) {
		switch (opt) {
		case 'n':
			n = atol(optarg);
			break;
		case 'm':
			m = atol(optarg);
			break;
		case 'q':
			q = atol(optarg);
			break;
		case 'U':
			url = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_pki [-n CERTS] [-m CRL_ENTRIES] [-q QUERIES] "
				"[-U URL]\n");
			return 2;
		}
	}
	if (n < 1 || q < 1)
		return 2;
	sg_log_init("bench_pki", SG_LOGDEST_STDERR, SG_LOG_WARN);
	if (url == NULL) {
		snprintf(dir, sizeof(dir), "/tmp/sg-bench-pki-XXXXXX");
		if (mkdtemp(dir) == NULL)
			die("mkdtemp", NULL);
		snprintf(dburl, sizeof(dburl), "sqlite:%s/db", dir);
		url = dburl;
	}
	db = store_open(url, &err);
	if (db == NULL || store_migrate(db, &err) < 0)
		die("store", &err);
	pki = pki_open(db, &err);
	rk = EVP_EC_gen("P-256");
	mk = EVP_EC_gen("P-256");
	lk = EVP_EC_gen("P-256");
	root = make("Bench Root", NULL, 1, true, NULL, NULL, rk);
	mid = make("Bench Intermediate", NULL, 2, true, root, rk, mk);
	add_x509(pki, root, PKI_ADD_ROOT);
	add_x509(pki, mid, 0);
	printf("bench_pki: %ld certificates, CRL of %ld entries, %ld queries, %s\n", n, m, q,
		url);

	/* ------------------------------------------------------------ import */
	{
		int64_t gen = 0, imp = 0;
		struct stat sb;
		long disk = 0;

		for (i = 0; i < n; i++) {
			char cn[64], email[64];
			struct pki_cert *c;
			X509 *x;

			if (i % 10000 == 0 && pki_batch_begin(pki, &err) < 0)
				die("begin", &err);
			snprintf(cn, sizeof(cn), "User %ld", i);
			snprintf(email, sizeof(email), "user%ld@d%ld.example", i, i % 1000);
			t0 = now_ns();
			x = make(cn, email, 1000 + i, false, mid, mk, lk);
			t1 = now_ns();
			gen += t1 - t0;
			c = pki_cert_from_x509(x, &err);
			if (c == NULL || pki_cert_add(pki, c, 0, &err) < 0)
				die("import", &err);
			imp += now_ns() - t1;
			pki_cert_free(&c);
			if (i == 0)
				probe = x;
			else
				X509_free(x);
			if (i % 10000 == 9999 || i == n - 1) {
				t0 = now_ns();
				if (pki_batch_end(pki, 0, &err) < 0)
					die("commit", &err);
				imp += now_ns() - t0;
			}
		}
		if (dir[0] != '\0') {
			snprintf(path, sizeof(path), "%s/db", dir);
			if (stat(path, &sb) == 0)
				disk += (long)(sb.st_size >> 20);
			snprintf(path, sizeof(path), "%s/db-wal", dir);
			if (stat(path, &sb) == 0)
				disk += (long)(sb.st_size >> 20);
		}
		printf("import: %ld certificates in %.1f s = %.0f/s (generation %.1f s apart); "
			"disk %ld MB; RSS %ld MB\n", n, (double)imp / 1e9,
			(double)n / ((double)imp / 1e9), (double)gen / 1e9, disk, rss_mb());
	}

	lat = malloc((size_t)q * sizeof(*lat));
	/* ------------------------------------------------------- e-mail lookup */
	{
		char thumbs[4][PKI_THUMBPRINT_LEN + 1], email[64];

		for (i = 0; i < q; i++) {
			long k = (long)(((uint64_t)i * 2654435761u) % (uint64_t)n);

			snprintf(email, sizeof(email), "USER%ld@d%ld.example", k, k % 1000);
			t0 = now_ns();
			if (pki_cert_find_email(pki, email, thumbs, 4, &err) != 1)
				die("lookup", &err);
			lat[i] = now_ns() - t0;
		}
		report("email lookup", lat, (size_t)q);
	}
	/* ------------------------------------------- encryption selection */
	{
		char email[64], dom[32];
		int pass;

		for (pass = 0; pass < 2; pass++) {
			for (i = 0; i < q; i++) {
				long k = (long)(((uint64_t)i * 40503u) % (uint64_t)n);
				struct pki_selection s;
				struct pki_owner chain[3];

				snprintf(email, sizeof(email), "user%ld@d%ld.example", k, k % 1000);
				snprintf(dom, sizeof(dom), "d%ld.example", k % 1000);
				chain[0] = (struct pki_owner){PKI_OWNER_USER, email};
				chain[1] = (struct pki_owner){PKI_OWNER_DOMAIN, dom};
				chain[2] = (struct pki_owner){PKI_OWNER_GLOBAL, ""};
				t0 = now_ns();
				if (pki_select_encryption(pki, email, chain, 3, PKI_SELECT_AUTO, 0, &s,
					&err) < 0 || s.n != 1)
					die("select", &err);
				lat[i] = now_ns() - t0;
				pki_selection_free(&s);
			}
			report(pass == 0 ? "encryption selection (cold)" :
				"encryption selection (cached)", lat, (size_t)q);
		}
	}
	/* -------------------------------------------------------- validation */
	{
		struct pki_cert *c = pki_cert_from_x509(probe, &err);
		struct pki_verdict v;
		unsigned flags[] = {PKI_VERIFY_NO_CACHE, 0};
		int k;

		for (k = 0; k < 2; k++) {
			long iters = k == 0 ? 2000 : 200000;

			t0 = now_ns();
			for (i = 0; i < iters; i++) {
				if (pki_cert_verify(pki, c, PKI_PURPOSE_ENCRYPT, 0, flags[k], &v,
					&err) < 0 || !v.is_valid)
					die("verify", &err);
			}
			t1 = now_ns();
			printf("validation 3-level chain %-8s %10.0f/s\n", k == 0 ? "cold:" : "cached:",
				(double)iters / ((double)(t1 - t0) / 1e9));
		}
		pki_cert_free(&c);
	}
	/* --------------------------------------------------------------- CRL */
	if (m > 0) {
		X509_CRL *crl = X509_CRL_new();
		ASN1_TIME *tm = ASN1_TIME_new();
		unsigned char *der = NULL;
		struct pki_crl_info info;
		struct pki_cert *c = pki_cert_from_x509(probe, &err);
		struct pki_verdict v;
		time_t now = time(NULL);
		int len;

		X509_CRL_set_version(crl, 1);
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(mid));
		X509_time_adj_ex(tm, -1, 0, &now);
		X509_CRL_set1_lastUpdate(crl, tm);
		X509_time_adj_ex(tm, 7, 0, &now);
		X509_CRL_set1_nextUpdate(crl, tm);
		X509_time_adj_ex(tm, -2, 0, &now);
		for (i = 0; i < m; i++) {
			X509_REVOKED *r = X509_REVOKED_new();
			ASN1_INTEGER *s = ASN1_INTEGER_new();

			/* serials above the issued ones: the probe stays valid */
			ASN1_INTEGER_set(s, 100000000L + i * 7);
			X509_REVOKED_set_serialNumber(r, s);
			X509_REVOKED_set_revocationDate(r, tm);
			X509_CRL_add0_revoked(crl, r);
			ASN1_INTEGER_free(s);
		}
		X509_CRL_sign(crl, mk, EVP_sha256());
		len = i2d_X509_CRL(crl, &der);
		X509_CRL_free(crl);
		ASN1_TIME_free(tm);
		t0 = now_ns();
		if (len <= 0 || pki_crl_import(pki, der, (size_t)len, "bench", &info, &err) !=
			PKI_CRL_ADDED)
			die("CRL import", &err);
		t1 = now_ns();
		printf("CRL: %ld entries (%d bytes) imported in %.1f s; RSS %ld MB\n", m, len,
			(double)(t1 - t0) / 1e9, rss_mb());
		OPENSSL_free(der);
		t0 = now_ns();
		for (i = 0; i < 2000; i++) {
			if (pki_cert_verify(pki, c, PKI_PURPOSE_ENCRYPT, 0, PKI_VERIFY_NO_CACHE, &v,
				&err) < 0 || !v.is_valid)
				die("verify with CRL", &err);
		}
		t1 = now_ns();
		printf("validation with the %ld-entry CRL (cold, incl. revocation lookup): "
			"%.0f/s\n", m, 2000.0 / ((double)(t1 - t0) / 1e9));
		pki_cert_free(&c);
	}
	printf("max RSS %ld MB\n", rss_mb());
	free(lat);
	X509_free(probe);
	X509_free(root);
	X509_free(mid);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(mk);
	EVP_PKEY_free(lk);
	pki_close(&pki);
	store_close(&db);
	if (dir[0] != '\0') {
		char *rm = sg_xasprintf("rm -rf '%s'", dir);

		fflush(stdout);

		if (strncmp(dir, "/tmp/sg-bench-pki-", 18) == 0 && execl("/bin/sh", "sh", "-c", rm,
			(char *)NULL) < 0)
			free(rm);
	}
	return 0;
}
