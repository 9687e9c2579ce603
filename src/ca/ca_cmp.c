/*
 * ca_cmp.c - the CMP certificate request handler (F-CA-4): an external CA
 * (EJBCA and others) over RFC 4210 CMP with OpenSSL's OSSL_CMP client, HTTP
 * transport (RFC 6712).
 *
 * Called through ca_request_submit in the caller's thread; blocks for at most
 * CA_CMP_TOTAL_TIMEOUT seconds. Authentication is either a pre-shared secret
 * (settings cmp_ref + cmp_secret: PBM MAC-protected messages, an
 * Initialization Request) or a client certificate (cmp_client_cert +
 * cmp_client_key: signature-protected, a Certification Request); cmp_trusted
 * names the trust anchors for signature-protected responses. The end-user key
 * is generated here (or given by the caller) and never sent: the request
 * carries its proof of possession only. The client rejects a certificate whose
 * public key does not match the key (OpenSSL's check; no certConf callback
 * overrides it). The issued certificate and key go into the PKI store;
 * certificates the server sends along (extraCerts, caPubs) are stored as
 * untrusted certificates for path building, never as roots.
 */
#include "ca/ca_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/cmp.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define CA_CMP_MSG_TIMEOUT 30
#define CA_CMP_TOTAL_TIMEOUT 120

static int setting(struct ca *ca, const char *name, char **v_r, struct sg_error *err)
{
	return ca_setting_get(ca, name, v_r, err);
}

/* cmp_log - OpenSSL's CMP diagnostics into our log (not to stderr) */
static int cmp_log(const char *func, const char *file, int line, OSSL_CMP_severity level,
	const char *msg)
{
	char esc[512];

	(void)func;
	(void)file;
	(void)line;
	sg_log(level <= OSSL_CMP_LOG_ERR ? SG_LOG_WARN : SG_LOG_DEBUG, "ca: cmp: %s",
		sg_log_esc(esc, sizeof(esc), msg, strlen(msg)));
	return 1;
}


/* name_parse - "/CN=Mock CA/O=Example" (OpenSSL's one-line form, no escapes)
 * into a name; NULL with err on a bad component */
static X509_NAME *name_parse(const char *s, struct sg_error *err)
{
	X509_NAME *n = X509_NAME_new();
	char *copy = sg_xstrdup(s), *p, *next, *eq;

	if (n == NULL || copy[0] != '/')
		goto bad;
	for (p = copy + 1; p != NULL && *p != '\0'; p = next) {
		next = strchr(p, '/');
		if (next != NULL)
			*next++ = '\0';
		eq = strchr(p, '=');
		if (eq == NULL || eq == p)
			goto bad;
		*eq = '\0';
		if (X509_NAME_add_entry_by_txt(n, p, MBSTRING_UTF8, (unsigned char *)eq + 1, -1,
			-1, 0) != 1)
			goto bad;
	}
	if (X509_NAME_entry_count(n) == 0)
		goto bad;
	free(copy);
	return n;
bad:
	sg_error_set_openssl(err, SG_E_CONFIG, "cmp_recipient: /TYPE=value/... expected");
	free(copy);
	X509_NAME_free(n);
	return NULL;
}

/* cmp_recipient - the optional recipient name (RFC 4210 PKIHeader) */
static int cmp_recipient(struct ca *ca, OSSL_CMP_CTX *ctx, struct sg_error *err)
{
	X509_NAME *n = NULL;
	char *v = NULL;
	int rc = -1;

	if (setting(ca, "cmp_recipient", &v, err) < 0)
		return -1;
	if (v == NULL)
		return 0;
	n = name_parse(v, err);
	if (n != NULL && OSSL_CMP_CTX_set1_recipient(ctx, n) == 1)
		rc = 0;
	else if (n != NULL)
		sg_error_set_openssl(err, SG_E_CONFIG, "cmp_recipient");
	X509_NAME_free(n);
	free(v);
	return rc;
}

/* cmp_server - host, port and path from the cmp_url setting */
static int cmp_server(OSSL_CMP_CTX *ctx, const char *url, struct sg_error *err)
{
	char *host = NULL, *port = NULL, *path = NULL;
	int ssl = 0, portnum = 0, rc = -1;

	if (OSSL_HTTP_parse_url(url, &ssl, NULL, &host, &port, &portnum, &path, NULL,
		NULL) != 1) {
		sg_error_set_openssl(err, SG_E_CONFIG, "cmp_url");
		return -1;
	}
	if (ssl) {
		sg_error_set(err, SG_E_CONFIG, "cmp_url: https is not supported (use http; "
			"CMP messages are protected themselves)");
		goto out;
	}
	if (OSSL_CMP_CTX_set1_server(ctx, host) != 1 ||
		OSSL_CMP_CTX_set_serverPort(ctx, portnum) != 1 ||
		OSSL_CMP_CTX_set1_serverPath(ctx, path) != 1) {
		sg_error_set_openssl(err, SG_E_CONFIG, "cmp_url");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(host);
	OPENSSL_free(port);
	OPENSSL_free(path);
	return rc;
}

static X509 *cert_from_file(const char *path, struct sg_error *err)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	if (x == NULL)
		sg_error_set_openssl(err, SG_E_CONFIG, "cmp certificate file %s", path);
	return x;
}

/* cmp_auth - secret (IR) or client certificate (CR); *type_r the request type */
static int cmp_auth(struct ca *ca, OSSL_CMP_CTX *ctx, int *type_r, struct sg_error *err)
{
	char *ref = NULL, *secret = NULL, *cert = NULL, *key = NULL, *trusted = NULL;
	char *pem = NULL;
	size_t len = 0;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	X509_STORE *ts = NULL;
	int rc = -1;

	if (setting(ca, "cmp_ref", &ref, err) < 0 || setting(ca, "cmp_secret", &secret, err) < 0 ||
		setting(ca, "cmp_client_cert", &cert, err) < 0 ||
		setting(ca, "cmp_client_key", &key, err) < 0 ||
		setting(ca, "cmp_trusted", &trusted, err) < 0)
		goto out;
	if (secret != NULL) {
		*type_r = OSSL_CMP_IR;
		if ((ref != NULL && OSSL_CMP_CTX_set1_referenceValue(ctx, (unsigned char *)ref,
			(int)strlen(ref)) != 1) || OSSL_CMP_CTX_set1_secretValue(ctx,
			(unsigned char *)secret, (int)strlen(secret)) != 1) {
			sg_error_set_openssl(err, SG_E_CRYPTO, "cmp secret");
			goto out;
		}
	} else if (cert != NULL && key != NULL) {
		*type_r = OSSL_CMP_CR;
		x = cert_from_file(cert, err);
		if (x == NULL)
			goto out;
		/* the CMP client key is the administrator's file, not a stored key */
		if (sg_file_read(key, 1 << 20, &pem, &len, err) < 0)
			goto out;
		k = ca_key_from_pem(pem, err);
		if (k == NULL)
			goto out;
		if (OSSL_CMP_CTX_set1_cert(ctx, x) != 1 || OSSL_CMP_CTX_set1_pkey(ctx, k) != 1) {
			sg_error_set_openssl(err, SG_E_CONFIG, "cmp client certificate/key");
			goto out;
		}
	} else {
		sg_error_set(err, SG_E_CONFIG, "CMP needs cmp_secret (and cmp_ref) or "
			"cmp_client_cert and cmp_client_key");
		goto out;
	}
	if (trusted != NULL) {
		ts = X509_STORE_new();
		if (ts == NULL || X509_STORE_load_file(ts, trusted) != 1) {
			sg_error_set_openssl(err, SG_E_CONFIG, "cmp_trusted %s", trusted);
			goto out;
		}
		if (OSSL_CMP_CTX_set0_trustedStore(ctx, ts) != 1)
			goto out;
		ts = NULL;
	} else if (secret == NULL) {
		sg_error_set(err, SG_E_CONFIG, "cmp_trusted is required with a client "
			"certificate (to verify the server's signed responses)");
		goto out;
	}
	rc = 0;
out:
	X509_STORE_free(ts);
	X509_free(x);
	EVP_PKEY_free(k);
	if (pem != NULL) {
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
	if (secret != NULL) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	free(ref);
	free(cert);
	free(key);
	free(trusted);
	return rc;
}

/* cmp_template - subject and the S/MIME extensions asked for */
static int cmp_template(OSSL_CMP_CTX *ctx, const struct ca_subject *s, bool ec,
	struct sg_error *err)
{
	X509_NAME *n = X509_NAME_new();
	X509_EXTENSIONS *exts = NULL;
	X509_EXTENSION *e = NULL;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *g = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	int rc = -1;

	if (n == NULL || ca_name_build(n, s, err) < 0)
		goto out;
	if (OSSL_CMP_CTX_set1_subjectName(ctx, n) != 1)
		goto ossl;
	gens = sk_GENERAL_NAME_new_null();
	g = GENERAL_NAME_new();
	ia5 = ASN1_IA5STRING_new();
	if (gens == NULL || g == NULL || ia5 == NULL || ASN1_STRING_set(ia5, s->email, -1) != 1)
		goto ossl;
	GENERAL_NAME_set0_value(g, GEN_EMAIL, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(gens, g) <= 0)
		goto ossl;
	g = NULL;
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, 0) != 1)
		goto ossl;
	e = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, ec ?
		"critical,digitalSignature,keyAgreement" : "critical,digitalSignature,keyEncipherment");
	if (e == NULL || X509v3_add_ext(&exts, e, -1) == NULL)
		goto ossl;
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "emailProtection");
	if (e == NULL || X509v3_add_ext(&exts, e, -1) == NULL)
		goto ossl;
	if (OSSL_CMP_CTX_set0_reqExtensions(ctx, exts) != 1)
		goto ossl;
	exts = NULL;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "CMP request template");
out:
	X509_EXTENSION_free(e);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(n);
	return rc;
}

/* store_extra - the server's extra certificates as untrusted certificates */
static int store_extra(struct ca *ca, STACK_OF(X509) *sk, struct sg_error *err)
{
	struct pki_cert *c;
	int i;

	for (i = 0; i < sk_X509_num(sk); i++) {
		c = pki_cert_from_x509(sk_X509_value(sk, i), err);
		if (c == NULL || pki_cert_add(ca->pki, c, 0, err) < 0) {
			pki_cert_free(&c);
			return -1;
		}
		pki_cert_free(&c);
	}
	return 0;
}

int ca_cmp_request(struct ca *ca, const struct ca_request *rq, struct ca_issued *r,
	struct sg_error *err)
{
	struct ca_subject s = rq->subject;
	char email_lc[CA_VALUE_MAX + 1], status[256];
	char *url = NULL, *kt_s = NULL, *serial = NULL;
	enum ca_key_type kt = CA_KEY_RSA2048;
	OSSL_CMP_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *extra = NULL;
	BIGNUM *bn = NULL;
	int type = OSSL_CMP_IR, rc = -1;

	memset(r, 0, sizeof(*r));
	if (s.email == NULL || ca_subject_check(&s, "request", err) < 0)
		return -1;
	ca_name_lower(s.email, email_lc, sizeof(email_lc));
	s.email = email_lc;
	if (s.cn == NULL || s.cn[0] == '\0')
		s.cn = s.email;
	if (setting(ca, "cmp_url", &url, err) < 0)
		return -1;
	if (url == NULL) {
		sg_error_set(err, SG_E_CONFIG, "CA setting cmp_url is not set");
		return -1;
	}
	ctx = OSSL_CMP_CTX_new(NULL, NULL);
	if (ctx == NULL) {
		sg_error_set_openssl(err, SG_E_NOMEM, "CMP context");
		goto out;
	}
	OSSL_CMP_CTX_set_log_cb(ctx, cmp_log);
	OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_MSG_TIMEOUT, CA_CMP_MSG_TIMEOUT);
	OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_TOTAL_TIMEOUT, CA_CMP_TOTAL_TIMEOUT);
	if (cmp_server(ctx, url, err) < 0 || cmp_auth(ca, ctx, &type, err) < 0 ||
		cmp_recipient(ca, ctx, err) < 0)
		goto out;
	if (rq->key_pem != NULL) {
		key = ca_key_from_pem(rq->key_pem, err);
	} else {
		if (setting(ca, "cmp_key_type", &kt_s, err) < 0)
			goto out;
		if (kt_s != NULL && ca_key_type_parse(kt_s, &kt) < 0)
			kt = CA_KEY_RSA2048;
		key = ca_key_generate(kt, err);
	}
	if (key == NULL || cmp_template(ctx, &s, ca_key_is_ec(key), err) < 0)
		goto out;
	if (EVP_PKEY_up_ref(key) != 1 || OSSL_CMP_CTX_set0_newPkey(ctx, 1, key) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "CMP new key");
		goto out;
	}
	cert = OSSL_CMP_exec_certreq(ctx, type, NULL);
	if (cert == NULL) {
		if (OSSL_CMP_CTX_snprint_PKIStatus(ctx, status, sizeof(status)) == NULL)
			sg_strlcpy(status, "no response status", sizeof(status));
		sg_error_set_openssl(err, SG_E_PEER_TEMP, "CMP %s to %s failed (%s)",
			type == OSSL_CMP_IR ? "IR" : "CR", url, status);
		goto out;
	}
	cert = X509_dup(cert);   /* exec_certreq returns a borrowed pointer */
	if (cert == NULL) {
		sg_error_set_openssl(err, SG_E_NOMEM, "CMP certificate");
		goto out;
	}
	if (pki_batch_begin(ca->pki, err) < 0)
		goto out;
	extra = OSSL_CMP_CTX_get1_extraCertsIn(ctx);
	rc = store_extra(ca, extra, err);
	sk_X509_pop_free(extra, X509_free);
	extra = OSSL_CMP_CTX_get1_caPubs(ctx);
	if (rc == 0)
		rc = store_extra(ca, extra, err);
	if (rc == 0)
		rc = ca_keypair_store(ca, key, cert, r->thumbprint, err);
	rc = pki_batch_end(ca->pki, rc, err);
	if (rc < 0)
		goto out;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	serial = bn != NULL ? BN_bn2hex(bn) : NULL;
	sg_strlcpy(r->serial, serial != NULL ? serial : "", sizeof(r->serial));
	sg_str_lower(r->serial);
	sg_strlcpy(r->ca_name, "cmp", sizeof(r->ca_name));
	sg_log(SG_LOG_INFO, "ca: CMP %s issued %.16s... for %s from %s",
		type == OSSL_CMP_IR ? "IR" : "CR", r->thumbprint, s.email, url);
out:
	OPENSSL_free(serial);
	BN_free(bn);
	sk_X509_pop_free(extra, X509_free);
	X509_free(cert);
	EVP_PKEY_free(key);
	OSSL_CMP_CTX_free(ctx);
	free(kt_s);
	free(url);
	return rc;
}
