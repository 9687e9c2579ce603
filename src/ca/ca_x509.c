/*
 * ca_x509.c - X.509 building blocks of the built-in CA: key generation,
 * random serials, subject names, extensions, and signing a certificate or CRL
 * with a key that stays in the PKI key store.
 *
 * Called by ca_core.c, ca_issue.c and ca_crl.c in the caller's thread.
 *
 * Signing without the private key (STYLE §8): OpenSSL builds the to-be-signed
 * part (TBSCertificate / TBSCertList) only through X509_sign, which needs a
 * private key. We therefore sign first with a throw-away key of the same
 * algorithm (RSA or EC: the AlgorithmIdentifier depends only on key algorithm
 * and digest), take the re-encoded TBS (i2d_re_X509_tbs), have pki_key_sign
 * sign it with the CA key, and put TBS + AlgorithmIdentifier + signature BIT
 * STRING together as an ASN.1 SEQUENCE with OpenSSL's generic encoder. The
 * result is parsed back and its signature verified with the CA certificate's
 * public key before anyone sees it. The throw-away keys are a process-wide
 * cache created once (pthread_once), never used for anything that is kept.
 */
#include "ca/ca_int.h"

#include <pthread.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

const char *ca_md_ossl(enum ca_digest d)
{
	switch (d) {
	case CA_MD_SHA384: return "SHA384";
	case CA_MD_SHA512: return "SHA512";
	case CA_MD_SHA256: break;
	}
	return "SHA256";
}

EVP_PKEY *ca_key_generate(enum ca_key_type t, struct sg_error *err)
{
	EVP_PKEY *k = NULL;

	switch (t) {
	case CA_KEY_RSA2048: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
	case CA_KEY_RSA3072: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072); break;
	case CA_KEY_RSA4096: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096); break;
	case CA_KEY_P256: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
	case CA_KEY_P384: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"); break;
	}
	if (k == NULL)
		sg_error_set_openssl(err, SG_E_CRYPTO, "generate %s key", ca_key_type_name(t));
	return k;
}

EVP_PKEY *ca_key_from_pem(const char *pem, struct sg_error *err)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;

	BIO_free(b);
	if (k == NULL) {
		sg_error_set_openssl(err, SG_E_PARSE, "private key (unencrypted PEM expected)");
		return NULL;
	}
	if (!(ca_key_is_ec(k) || (EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= 2048))) {
		EVP_PKEY_free(k);
		sg_error_set(err, SG_E_INVAL, "key must be RSA (>= 2048 bits) or EC");
		return NULL;
	}
	return k;
}

bool ca_key_is_ec(const EVP_PKEY *k)
{
	return EVP_PKEY_is_a(k, "EC");
}

/* ca_serial_set - a random positive 127-bit serial (>= 64 bits of entropy,
 * CA/B S/MIME BR 7.1), never zero */
int ca_serial_set(X509 *x, struct sg_error *err)
{
	BIGNUM *bn = BN_new();
	int rc = -1;

	if (bn == NULL || BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "random serial");
		goto out;
	}
	rc = 0;
out:
	BN_free(bn);
	return rc;
}

static int field_check(const char *v, const char *what, const char *field,
	struct sg_error *err)
{
	const unsigned char *p;

	if (v == NULL)
		return 0;
	if (strlen(v) > CA_VALUE_MAX) {
		sg_error_set(err, SG_E_LIMIT, "%s %s longer than %d bytes", what, field,
			CA_VALUE_MAX);
		return -1;
	}
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			sg_error_set(err, SG_E_INVAL, "%s %s has a control character", what, field);
			return -1;
		}
	}
	return 0;
}

/* ca_email_is_usable - a valid ASCII address (rfc822Name is an IA5String;
 * RFC 8398 SmtpUTF8Mailbox is not supported) without a comma */
bool ca_email_is_usable(const char *email)
{
	const unsigned char *p;

	for (p = (const unsigned char *)email; *p != '\0'; p++)
		if (*p >= 0x80 || *p == ',')
			return false;
	return sg_addr_is_valid(email);
}

/* ca_subject_check - lengths, no control characters, a valid address */
int ca_subject_check(const struct ca_subject *s, const char *what, struct sg_error *err)
{
	char esc[80];

	if (field_check(s->cn, what, "common name", err) < 0 ||
		field_check(s->org, what, "organisation", err) < 0 ||
		field_check(s->email, what, "email", err) < 0 ||
		field_check(s->first_name, what, "first name", err) < 0 ||
		field_check(s->last_name, what, "last name", err) < 0)
		return -1;
	if (s->email != NULL && s->email[0] != '\0' && !ca_email_is_usable(s->email)) {
		sg_error_set(err, SG_E_INVAL, "%s: invalid email address '%s'", what,
			sg_log_esc(esc, sizeof(esc), s->email, strlen(s->email)));
		return -1;
	}
	return 0;
}

static int name_add(X509_NAME *n, int nid, const char *v, struct sg_error *err)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	if (X509_NAME_add_entry_by_NID(n, nid, nid == NID_pkcs9_emailAddress ?
		MBSTRING_ASC : MBSTRING_UTF8, (const unsigned char *)v, -1, -1, 0) != 1) {
		sg_error_set_openssl(err, SG_E_INVAL, "subject field %s", OBJ_nid2sn(nid));
		return -1;
	}
	return 0;
}

/* ca_name_build - O, givenName, surname, CN, emailAddress (in this order) */
int ca_name_build(X509_NAME *n, const struct ca_subject *s, struct sg_error *err)
{
	if (name_add(n, NID_organizationName, s->org, err) < 0 ||
		name_add(n, NID_givenName, s->first_name, err) < 0 ||
		name_add(n, NID_surname, s->last_name, err) < 0 ||
		name_add(n, NID_commonName, s->cn, err) < 0 ||
		name_add(n, NID_pkcs9_emailAddress, s->email, err) < 0)
		return -1;
	return 0;
}

/* ca_ext_add_conf - one extension from a fixed, trusted config string (never
 * from input: values with commas would add entries) */
int ca_ext_add_conf(X509 *x, X509 *issuer, int nid, const char *value,
	struct sg_error *err)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "extension %s", OBJ_nid2sn(nid));
		return -1;
	}
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (ok != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "add extension %s", OBJ_nid2sn(nid));
		return -1;
	}
	return 0;
}

static GENERAL_NAME *gen_ia5(int type, const char *v)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (g == NULL || s == NULL || ASN1_STRING_set(s, v, -1) != 1) {
		GENERAL_NAME_free(g);
		ASN1_IA5STRING_free(s);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, type, s);
	return g;
}

/* ca_ext_add_email - subjectAltName rfc822Name (built, not parsed) */
int ca_ext_add_email(X509 *x, const char *email, struct sg_error *err)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = gen_ia5(GEN_EMAIL, email);
	int rc = -1;

	if (gens == NULL || g == NULL || sk_GENERAL_NAME_push(gens, g) <= 0)
		goto ossl;
	g = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND) != 1)
		goto ossl;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "subjectAltName");
out:
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	return rc;
}

/* ca_ext_add_crl_dp - cRLDistributionPoints with one fullName URI */
int ca_ext_add_crl_dp(X509 *x, const char *url, struct sg_error *err)
{
	CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
	DIST_POINT *dp = DIST_POINT_new();
	GENERAL_NAME *g = gen_ia5(GEN_URI, url);
	int rc = -1;

	if (dps == NULL || dp == NULL || g == NULL)
		goto ossl;
	dp->distpoint = DIST_POINT_NAME_new();
	if (dp->distpoint == NULL)
		goto ossl;
	dp->distpoint->type = 0;
	dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
	if (dp->distpoint->name.fullname == NULL ||
		sk_GENERAL_NAME_push(dp->distpoint->name.fullname, g) <= 0)
		goto ossl;
	g = NULL;
	if (sk_DIST_POINT_push(dps, dp) <= 0)
		goto ossl;
	dp = NULL;
	if (X509_add1_ext_i2d(x, NID_crl_distribution_points, dps, 0, X509V3_ADD_APPEND) != 1)
		goto ossl;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "cRLDistributionPoints");
out:
	GENERAL_NAME_free(g);
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(dps);
	return rc;
}

void ca_x509_thumbprint(X509 *x, char *out)
{
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);

	if (len <= 0) {
		out[0] = '\0';
		return;
	}
	pki_thumbprint(der, (size_t)len, out);
	OPENSSL_free(der);
}

/* --------------------------------------------------- signing via pki_key */

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static EVP_PKEY *dummy_rsa;    /* throw-away keys, see the file comment */
static EVP_PKEY *dummy_ec;

static void dummy_init(void)
{
	/* 1024 bits: the smallest RSA key that holds a SHA-512 DigestInfo */
	dummy_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	dummy_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static EVP_PKEY *dummy_for(X509 *signer, struct sg_error *err)
{
	EVP_PKEY *pub = X509_get0_pubkey(signer);
	EVP_PKEY *d;

	pthread_once(&dummy_once, dummy_init);
	if (pub == NULL) {
		sg_error_set(err, SG_E_CRYPTO, "signer certificate has no public key");
		return NULL;
	}
	d = ca_key_is_ec(pub) ? dummy_ec : EVP_PKEY_is_a(pub, "RSA") ? dummy_rsa : NULL;
	if (d == NULL)
		sg_error_set(err, SG_E_CRYPTO, "signer key algorithm not supported");
	return d;
}

static int type_push(ASN1_SEQUENCE_ANY *seq, int type, const unsigned char *der,
	size_t len)
{
	ASN1_TYPE *t = ASN1_TYPE_new();
	ASN1_STRING *s = ASN1_STRING_type_new(type);

	if (t == NULL || s == NULL || len > INT32_MAX || ASN1_STRING_set(s, der, (int)len) != 1)
		goto fail;
	if (type == V_ASN1_BIT_STRING) {
		/* a signature: whole bytes, no unused bits */
		s->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07L);
		s->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	}
	ASN1_TYPE_set(t, type, s);
	s = NULL;
	if (sk_ASN1_TYPE_push(seq, t) <= 0)
		goto fail;
	return 0;
fail:
	ASN1_STRING_free(s);
	ASN1_TYPE_free(t);
	return -1;
}

/* assemble - SEQUENCE { tbs, algorithm, BIT STRING sig } as DER (*der_r is
 * OPENSSL_malloc'ed) */
static int assemble(const unsigned char *tbs, size_t tbslen, const X509_ALGOR *alg,
	const struct sg_buf *sig, unsigned char **der_r, int *len_r, struct sg_error *err)
{
	ASN1_SEQUENCE_ANY *seq = sk_ASN1_TYPE_new_null();
	unsigned char *algder = NULL;
	int alglen, rc = -1;

	*der_r = NULL;
	alglen = i2d_X509_ALGOR(alg, &algder);
	if (seq == NULL || alglen <= 0 ||
		type_push(seq, V_ASN1_SEQUENCE, tbs, tbslen) < 0 ||
		type_push(seq, V_ASN1_SEQUENCE, algder, (size_t)alglen) < 0 ||
		type_push(seq, V_ASN1_BIT_STRING, (const unsigned char *)sig->data, sig->len) < 0)
		goto ossl;
	*len_r = i2d_ASN1_SEQUENCE_ANY(seq, der_r);
	if (*len_r <= 0)
		goto ossl;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "encode signed structure");
out:
	OPENSSL_free(algder);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return rc;
}

/* stored_sign - pki_key_sign over tbs into sig */
static int stored_sign(struct ca *ca, const char *signer_thumb, enum ca_digest md,
	const unsigned char *tbs, int tbslen, struct sg_buf *sig, struct sg_error *err)
{
	if (tbslen <= 0) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "encode to-be-signed part");
		return -1;
	}
	if (pki_key_sign(ca->keys, signer_thumb, ca_md_ossl(md), tbs, (size_t)tbslen, sig,
		err) < 0) {
		sg_error_prefix(err, "CA signature: ");
		return -1;
	}
	return 0;
}

int ca_x509_sign_stored(struct ca *ca, X509 *x, const char *signer_thumb,
	X509 *signer_x509, enum ca_digest md, X509 **out_r, struct sg_error *err)
{
	EVP_PKEY *dummy = dummy_for(signer_x509, err);
	unsigned char *tbs = NULL, *der = NULL;
	const unsigned char *p;
	struct sg_buf sig;
	int tbslen = 0, len = 0, rc = -1;
	X509 *out = NULL;

	sg_buf_init(&sig, 4096);
	*out_r = NULL;
	if (dummy == NULL)
		goto out;
	if (X509_sign(x, dummy, EVP_get_digestbyname(ca_md_ossl(md))) <= 0) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "prepare certificate");
		goto out;
	}
	tbslen = i2d_re_X509_tbs(x, &tbs);
	if (stored_sign(ca, signer_thumb, md, tbs, tbslen, &sig, err) < 0 ||
		assemble(tbs, (size_t)tbslen, X509_get0_tbs_sigalg(x), &sig, &der, &len,
			err) < 0)
		goto out;
	p = der;
	out = d2i_X509(NULL, &p, len);
	if (out == NULL || p != der + len ||
		X509_verify(out, X509_get0_pubkey(signer_x509)) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "signed certificate does not verify");
		goto out;
	}
	*out_r = out;
	out = NULL;
	rc = 0;
out:
	X509_free(out);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	sg_buf_deinit(&sig);
	return rc;
}

int ca_crl_sign_stored(struct ca *ca, X509_CRL *crl, const char *signer_thumb,
	X509 *signer_x509, enum ca_digest md, X509_CRL **out_r, struct sg_error *err)
{
	EVP_PKEY *dummy = dummy_for(signer_x509, err);
	unsigned char *tbs = NULL, *der = NULL;
	const unsigned char *p;
	const ASN1_BIT_STRING *dsig = NULL;
	const X509_ALGOR *alg = NULL;
	struct sg_buf sig;
	int tbslen = 0, len = 0, rc = -1;
	X509_CRL *out = NULL;

	sg_buf_init(&sig, 4096);
	*out_r = NULL;
	if (dummy == NULL)
		goto out;
	if (X509_CRL_sign(crl, dummy, EVP_get_digestbyname(ca_md_ossl(md))) <= 0) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "prepare CRL");
		goto out;
	}
	/* X509_CRL_sign set the inner and outer AlgorithmIdentifier alike */
	X509_CRL_get0_signature(crl, &dsig, &alg);
	tbslen = i2d_re_X509_CRL_tbs(crl, &tbs);
	if (stored_sign(ca, signer_thumb, md, tbs, tbslen, &sig, err) < 0 ||
		assemble(tbs, (size_t)tbslen, alg, &sig, &der, &len, err) < 0)
		goto out;
	p = der;
	out = d2i_X509_CRL(NULL, &p, len);
	if (out == NULL || p != der + len ||
		X509_CRL_verify(out, X509_get0_pubkey(signer_x509)) != 1) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "signed CRL does not verify");
		goto out;
	}
	*out_r = out;
	out = NULL;
	rc = 0;
out:
	X509_CRL_free(out);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	sg_buf_deinit(&sig);
	return rc;
}

/*
 * ca_keypair_store - hand key + certificate to the PKI key store. pki_key.h
 * takes keys only as PKCS#12, so this wraps them in a transient in-memory
 * PKCS#12 under a random one-time password (one PBKDF iteration: the password
 * is 128 random bits and the blob never leaves this function).
 */
int ca_keypair_store(struct ca *ca, EVP_PKEY *key, X509 *cert, char *thumb_r,
	struct sg_error *err)
{
	unsigned char rnd[16];
	char pw[33];
	PKCS12 *p12 = NULL;
	unsigned char *der = NULL;
	int len = 0, rc = -1;

	if (sg_random_bytes(rnd, sizeof(rnd), err) < 0)
		return -1;
	sg_hex(pw, rnd, sizeof(rnd));
	p12 = PKCS12_create(pw, NULL, key, cert, NULL, 0, -1, 1, 1, 0);
	if (p12 != NULL)
		len = i2d_PKCS12(p12, &der);
	if (len <= 0) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "wrap key for the key store");
		goto out;
	}
	if (pki_key_import_p12(ca->keys, der, (size_t)len, pw, NULL, NULL, err) < 0) {
		sg_error_prefix(err, "store key: ");
		goto out;
	}
	if (thumb_r != NULL)
		ca_x509_thumbprint(cert, thumb_r);
	rc = 0;
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	if (der != NULL)
		OPENSSL_clear_free(der, (size_t)len);
	PKCS12_free(p12);
	return rc;
}
