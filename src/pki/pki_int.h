/*
 * pki_int.h - private to src/pki/: the context struct, the verdict cache and
 * helpers shared by pki_store.c, pki_import.c, pki_verify.c, pki_crl.c,
 * pki_ctl.c, pki_select.c and pki_key.c.
 */
#ifndef SG_PKI_INT_H
#define SG_PKI_INT_H

#include <pthread.h>

#include <openssl/asn1.h>

#include "pki/pki.h"

#define PKI_CACHE_SLOTS 8192   /* direct-mapped verdict cache per context */
#define PKI_CHAIN_MAX_CERTS 64 /* candidates gathered for one path build */
#define PKI_CHAIN_MAX_DEPTH 10

struct pki_cache_slot {
	char thumbprint[PKI_THUMBPRINT_LEN + 1];
	unsigned char purpose;
	unsigned char flags;
	int64_t generation;
	int64_t expires;           /* verdict holds until this time */
	struct pki_verdict v;
};

/*
 * pki_memo.c - per-context memos of what every message asks again: the
 * selections (pki_select_*) and the signers' chains (pki_cert_chain_get1).
 * Each entry is tagged with the store's generation ("pki.generation", bumped
 * by every change to certificates, keys, selections, roots, CRLs and the
 * CTL) and holds until the earliest expiry of the verdicts it was built from
 * (10 minutes at most, never past a notAfter).
 */
#define PKI_MEMO_SLOTS 512
#define PKI_MEMO_KEY_MAX 2048
struct pki_memo_slot {
	char *key;                 /* owned; NULL = empty */
	int64_t generation;
	int64_t expires;           /* holds while now < expires */
	int found;                 /* signing: 1 found, 0 none */
	struct pki_selection sel;  /* owned copy (signing: one entry or none) */
};
struct pki_chain_slot {
	char thumbprint[PKI_THUMBPRINT_LEN + 1];  /* "" = empty */
	int64_t generation;
	int64_t expires;
	X509 *cert;                /* owned reference */
	STACK_OF(X509) *issuers;   /* owned, without cert */
};
#define PKI_CHAIN_SLOTS 256

struct pki {
	struct store *db;
	struct pki_cache_slot *cache;  /* PKI_CACHE_SLOTS */
	int64_t cache_hits;
	int64_t cache_misses;
	bool in_tx;                /* a transaction is open (batch or own) */
	unsigned pin_depth;        /* pki_pin_begin calls not ended yet */
	int64_t pin_gen;           /* the generation while pinned */
	struct pki_memo_slot *memo;    /* PKI_MEMO_SLOTS, allocated at first use */
	struct pki_chain_slot *chains; /* PKI_CHAIN_SLOTS, allocated at first use */
};

/* pki_memo_get - the memo for key under gen still current at now: 1 (a copy
 * of the selection into sel_r, *found_r), 0 none. */
int pki_memo_get(struct pki *pki, const char *key, int64_t gen, struct pki_selection *sel_r,
	int *found_r);
/* pki_memo_put - remember a copy of sel (and found) for key under gen until
 * expires. */
void pki_memo_put(struct pki *pki, const char *key, int64_t gen, int64_t expires,
	const struct pki_selection *sel, int found);
/* pki_memo_free - the memos and chains of pki (at pki_close). */
void pki_memo_free(struct pki *pki);

/* pki_objcache.c - decoded objects by their exact source bytes (see there). */
#define PKI_OBJCACHE_SLOTS 1024
#define PKI_OBJCACHE_MAX_BYTES 65536
struct pki_objcache_slot {
	unsigned char *bytes;
	size_t len;
	void *obj;
};
struct pki_objcache {
	pthread_mutex_t mu;
	int (*up_ref)(void *obj);
	void (*free)(void *obj);
	struct pki_objcache_slot slots[PKI_OBJCACHE_SLOTS];
};
/* pki_objcache_get - the object decoded from bytes (an up-reference the
 * caller frees), or NULL. */
void *pki_objcache_get(struct pki_objcache *c, const void *bytes, size_t len);
/* pki_objcache_put - remember obj (takes its own reference) for bytes. */
void pki_objcache_put(struct pki_objcache *c, const void *bytes, size_t len, void *obj);

/* pki_x509_from_der - a certificate decoded from exactly len DER bytes
 * (through the cache); the caller frees it. NULL if it does not decode. */
X509 *pki_x509_from_der(const void *der, size_t len);

/* pki_asn1_time - ASN1_TIME to epoch seconds; -1 if unparseable. */
int64_t pki_asn1_time(const ASN1_TIME *t);
/* pki_serial_hex - lower-case hex of an INTEGER (malloc'ed, NULL on error). */
char *pki_serial_hex(const ASN1_INTEGER *i);
/* pki_name_str - RFC 2253 UTF-8 text of a name (malloc'ed, never NULL). */
char *pki_name_str(const X509_NAME *n);
/* pki_name_hash - 8 hex digits of X509_NAME_hash_ex into out (>= 9). */
void pki_name_hash(const X509_NAME *n, char *out);
/* pki_akid_hex - authority key id of a CRL as hex into out ("" if none). */
void pki_crl_akid_hex(const X509_CRL *crl, char *out, size_t outsz);

/* pki_tx_begin/end - a transaction unless one is open; end commits on rc 0,
 * rolls back otherwise. *own_r records whether we opened it. */
int pki_tx_begin(struct pki *pki, bool *own_r, struct sg_error *err);
int pki_tx_end(struct pki *pki, bool own, int rc, struct sg_error *err);

/* pki_generation - the current verdict generation (settings "pki.generation"),
 * or the pinned one (pki_pin_begin). */
int pki_generation(struct pki *pki, int64_t *gen_r, struct sg_error *err);

/* pki_cert_load_der - as pki_cert_get but from a stored row's columns. */
struct pki_cert *pki_cert_from_row(struct store_stmt *st, struct sg_error *err);
#define PKI_CERT_COLS "thumbprint, der, is_root, has_key"

/* pki_crl_check - revocation of c issued by issuer (in the chain) at time at.
 * 1 revoked (reason filled), 0 not revoked (warning may be filled), 2 no
 * current CRL (only reported, caller decides), -1 error. *changes_r is
 * lowered to the first time after at when the answer may change with no
 * change to the store (a CRL's nextUpdate passes, a later thisUpdate or
 * revocation date comes). */
int pki_crl_check(struct pki *pki, X509 *c, X509 *issuer, int64_t at,
	char *reason, size_t reasonsz, char *warning, size_t warnsz, int64_t *changes_r,
	struct sg_error *err);

/*
 * pki_chain_build - build and verify the path of leaf at time at through the
 * stores (roots and white-listed certificates trusted, the rest untrusted
 * candidates). Returns 0 with *chain_r (caller frees with
 * OSSL_STACK_OF_X509_free-like sk_X509_pop_free) holding the chain built (as
 * far as it got), *x509_err_r the OpenSSL verify error (X509_V_OK when the path
 * verified), *err_depth_r its depth; -1 on store/alloc error.
 */
int pki_chain_build(struct pki *pki, X509 *leaf, int64_t at, STACK_OF(X509) **chain_r,
	int *x509_err_r, int *err_depth_r, struct sg_error *err);
/* pki_verify_thumb - pki_cert_verify at now by thumbprint, answering from the
 * cache without loading the certificate when possible; 1 verdict, 0 the
 * certificate is not stored, -1 error. */
int pki_verify_thumb(struct pki *pki, const char *thumbprint, enum pki_purpose purpose,
	unsigned flags, struct pki_verdict *v_r, struct sg_error *err);
/* pki_verify_thumb_gen - pki_verify_thumb with the generation gen already
 * read; *expires_r gets when the verdict stops holding (INT64_MAX for a
 * certificate that is not stored: until the store changes). */
int pki_verify_thumb_gen(struct pki *pki, const char *thumbprint, enum pki_purpose purpose,
	unsigned flags, int64_t gen, struct pki_verdict *v_r, int64_t *expires_r,
	struct sg_error *err);
/* pki_x509_thumbprint - SHA-512 hex of x into out (>= 129). */
void pki_x509_thumbprint(X509 *x, char *out);

/* pki_cdp_record - remember the CRL distribution point URLs of x. */
int pki_cdp_record(struct pki *pki, X509 *x, struct sg_error *err);

/* pki_key_set_flag - mark has_key on a stored certificate. */
int pki_cert_set_has_key(struct pki *pki, const char *thumbprint, bool has,
	struct sg_error *err);

#endif
