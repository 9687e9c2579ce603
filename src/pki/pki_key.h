/*
 * pki_key.h - the ONLY API that touches private keys (STYLE §8, DESIGN
 * "Private keys"). Keys are stored in table pki_key as AES-256-GCM(KEK,
 * PKCS#8 DER) with the certificate thumbprint as associated data; the
 * key-encryption key (KEK) is 32 random bytes in <data_dir>/pki.kek, mode
 * 0600, created on first use. Keys are addressed by certificate thumbprint
 * and no function here hands out a private EVP_PKEY: callers get the result
 * of the key operation (a signature, a decrypted CMS, a PKCS#12 blob). Moving
 * key use into a separate process must change this API's implementation only.
 *
 * One struct pki_keys per thread (it borrows a struct pki, hence one store
 * connection). Conventions as in pki.h: 0 ok / -1 error, err on failure only.
 */
#ifndef SG_PKI_KEY_H
#define SG_PKI_KEY_H

#include <openssl/cms.h>

#include "pki/pki.h"

#define PKI_KEK_FILE "pki.kek"
#define PKI_KEK_LEN 32

struct pki_keys;

/*
 * pki_keys_open - load the KEK from <data_dir>/pki.kek, creating it (0600,
 * durably, race-free with other processes) when absent. A KEK file that is
 * group/other accessible or not PKI_KEK_LEN bytes is refused (SG_E_CONFIG).
 * pki is borrowed and must outlive the result. NULL on error.
 */
struct pki_keys *pki_keys_open(struct pki *pki, const char *data_dir, struct sg_error *err);
/* pki_keys_close - wipe the KEK and free; accepts NULL, clears *kp. */
void pki_keys_close(struct pki_keys **kp);

enum pki_import_state {
	PKI_IMPORTED,           /* new certificate (with its key when it has one) */
	PKI_IMPORT_EXISTS,      /* certificate and key (if any) were already stored */
	PKI_IMPORT_KEY_ADDED,   /* certificate was stored; its key is new */
};
/* pki_import_cb - one certificate of an import; return 0 to go on, -1 to fail. */
typedef int pki_import_cb(const struct pki_cert *c, enum pki_import_state state,
	bool has_key, void *arg, struct sg_error *err);

/*
 * pki_key_import_p12 - import a PKCS#12 file (DER, or PEM-armoured DER):
 * every certificate into the certificate store, the private key encrypted
 * under the KEK with the certificate it matches. password may be "" (tries
 * both empty and absent passwords); legacy RC2/3DES files are read through
 * OpenSSL's legacy provider (loaded once on first need). A wrong password is
 * SG_E_CRYPTO "wrong password"; a key without a matching certificate is
 * SG_E_PARSE. All or nothing: one transaction. cb may be NULL.
 */
int pki_key_import_p12(struct pki_keys *keys, const void *data, size_t len,
	const char *password, pki_import_cb *cb, void *arg, struct sg_error *err);

enum pki_p12_flags {
	PKI_P12_LEGACY = 1u << 0,    /* PBE-SHA1-3DES + SHA-1 MAC (SPEC D-9) */
	PKI_P12_CHAIN = 1u << 1,     /* add the issuer chain certificates */
};
/*
 * pki_key_export_p12 - one PKCS#12 (AES-256 PBES2 + SHA-256 MAC by default)
 * holding the certificates and private keys of thumbprints; every one must
 * have a key (SG_E_NOTFOUND otherwise). Appended to out as DER.
 */
int pki_key_export_p12(struct pki_keys *keys, const char *const *thumbprints, size_t n,
	const char *password, unsigned flags, struct sg_buf *out, struct sg_error *err);

/* pki_key_has - 1 a key is stored for thumbprint, 0 not, -1 error. */
int pki_key_has(struct pki_keys *keys, const char *thumbprint, struct sg_error *err);

/*
 * pki_key_sign - sign data with the key of thumbprint using digest md
 * ("SHA256"...; RSA PKCS#1 v1.5, ECDSA): the signature appended to sig.
 */
int pki_key_sign(struct pki_keys *keys, const char *thumbprint, const char *md,
	const void *data, size_t len, struct sg_buf *sig, struct sg_error *err);

/*
 * pki_key_cms_decrypt - decrypt an EnvelopedData/AuthEnvelopedData cms (read
 * only) for the certificate thumbprint into out (CMS_decrypt with the stored
 * key, checking the recipient matches the certificate). SG_E_NOTFOUND when no
 * key is stored, SG_E_CRYPTO when decryption fails.
 */
int pki_key_cms_decrypt(struct pki_keys *keys, const char *thumbprint,
	CMS_ContentInfo *cms, BIO *out, struct sg_error *err);

/*
 * pki_key_cms_sign - CMS SignedData over in with the key and certificate of
 * thumbprint; certs (may be NULL) are added; cms_flags as CMS_sign
 * (CMS_DETACHED, CMS_BINARY, ...). *cms_r is the caller's.
 */
int pki_key_cms_sign(struct pki_keys *keys, const char *thumbprint, BIO *in,
	STACK_OF(X509) *certs, unsigned cms_flags, CMS_ContentInfo **cms_r,
	struct sg_error *err);

#endif
