/*
 * ca_int.h - shared inside src/ca/ only: the context and the X.509 helpers
 * (key generation, names, extensions, signing through pki_key_sign).
 */
#ifndef SG_CA_INT_H
#define SG_CA_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"

struct ca {
	struct pki *pki;           /* borrowed */
	struct pki_keys *keys;     /* borrowed */
	struct store *db;          /* borrowed (pki's) */
};

/* Upper bound on the day counts accepted anywhere (100 years). */
#define CA_DAYS_MAX 36500u

/* ca_x509.c */
const char *ca_md_ossl(enum ca_digest d);
EVP_PKEY *ca_key_generate(enum ca_key_type t, struct sg_error *err);
bool ca_key_is_ec(const EVP_PKEY *k);
/* ca_key_from_pem - an unencrypted RSA (>= 2048 bits) or EC private key */
EVP_PKEY *ca_key_from_pem(const char *pem, struct sg_error *err);
int ca_serial_set(X509 *x, struct sg_error *err);
bool ca_email_is_usable(const char *email);
int ca_subject_check(const struct ca_subject *s, const char *what, struct sg_error *err);
int ca_name_build(X509_NAME *n, const struct ca_subject *s, struct sg_error *err);
int ca_ext_add_conf(X509 *x, X509 *issuer, int nid, const char *value,
	struct sg_error *err);
int ca_ext_add_email(X509 *x, const char *email, struct sg_error *err);
int ca_ext_add_crl_dp(X509 *x, const char *url, struct sg_error *err);
/* ca_x509_sign_stored - sign x with the stored key of signer (whose
 * certificate is signer_x509) via pki_key_sign; *out_r is a new certificate
 * parsed from the signed DER and checked against the signer's public key. */
int ca_x509_sign_stored(struct ca *ca, X509 *x, const char *signer_thumb,
	X509 *signer_x509, enum ca_digest md, X509 **out_r, struct sg_error *err);
int ca_crl_sign_stored(struct ca *ca, X509_CRL *crl, const char *signer_thumb,
	X509 *signer_x509, enum ca_digest md, X509_CRL **out_r, struct sg_error *err);
/* ca_keypair_store - key + certificate into the PKI store (pki_key). */
int ca_keypair_store(struct ca *ca, EVP_PKEY *key, X509 *cert, char *thumb_r,
	struct sg_error *err);
void ca_x509_thumbprint(X509 *x, char *out);

/* ca_core.c */
int ca_setting_int(struct ca *ca, const char *name, int64_t min, int64_t max,
	int64_t *v_r, struct sg_error *err);
void ca_name_lower(const char *in, char *out, size_t outsz);

/* ca_cmp.c */
int ca_cmp_request(struct ca *ca, const struct ca_request *rq, struct ca_issued *r,
	struct sg_error *err);

#endif
