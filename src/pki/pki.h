/*
 * pki.h - the certificate store, the roots store, the e-mail index, path
 * validation with CRLs and the certificate trust list (CTL), and certificate
 * selection for users, domains and the global settings (SPEC §4, F-PKI-1..7).
 *
 * The only header of src/pki/ other modules include, except pki_key.h (the
 * one API touching private keys). It holds no private-key type.
 *
 * A struct pki wraps ONE store connection (borrowed, one thread at a time) and
 * a verdict cache; open one per thread. Certificates are addressed by their
 * thumbprint: SHA-512 of the DER, 128 lower-case hex digits. E-mail addresses
 * (subject emailAddress + SAN rfc822Name) are indexed lower-cased.
 *
 * Conventions: 0 ok / -1 error; lookups 1 found / 0 not found / -1 error;
 * err is filled on failure only.
 */
#ifndef SG_PKI_H
#define SG_PKI_H

#include <openssl/x509.h>

#include "lib/lib.h"
#include "store/store.h"

#define PKI_THUMBPRINT_LEN 128      /* hex digits */
#define PKI_IMPORT_MAX (64u << 20)  /* largest certificate/p7b/p12 file accepted */
#define PKI_CRL_MAX (512u << 20)    /* largest CRL accepted (1M+ entries) */
#define PKI_CERTS_PER_FILE_MAX 10000
#define PKI_REASON_MAX 256

struct pki;

/*
 * pki_open - a PKI context over db (borrowed; must outlive the context and
 * be migrated). NULL on error.
 */
struct pki *pki_open(struct store *db, struct sg_error *err);
/* pki_close - free the context (not the store); accepts NULL, clears *pp. */
void pki_close(struct pki **pp);
/*
 * pki_batch_begin/pki_batch_end - group many changes into one transaction (bulk
 * import). pki_batch_end commits when rc is 0, rolls back otherwise; returns
 * the commit result (or rc when rc < 0).
 */
int pki_batch_begin(struct pki *pki, struct sg_error *err);
int pki_batch_end(struct pki *pki, int rc, struct sg_error *err);
/* pki_store - the borrowed store the context was opened on. */
struct store *pki_store(struct pki *pki);

/* ------------------------------------------------------------ certificates */

struct pki_cert {
	X509 *x509;                 /* owned */
	char thumbprint[PKI_THUMBPRINT_LEN + 1];
	char *subject;              /* RFC 2253, UTF-8 */
	char *issuer;
	char *serial;               /* lower-case hex, no leading zeros ("0" for 0) */
	int64_t not_before;
	int64_t not_after;
	char **emails;              /* lower-cased, unique */
	size_t n_emails;
	bool is_ca;                 /* basicConstraints cA */
	bool is_root;               /* in the roots store (from the store only) */
	bool has_key;               /* a private key is stored (from the store only) */
};

/* pki_cert_from_der - parse one DER certificate; NULL + SG_E_PARSE on error. */
struct pki_cert *pki_cert_from_der(const void *der, size_t len, struct sg_error *err);
/* pki_cert_from_x509 - wrap a copy (up-ref) of x; NULL on error. */
struct pki_cert *pki_cert_from_x509(X509 *x, struct sg_error *err);
void pki_cert_free(struct pki_cert **cp);

/* A parsed list of certificates (owned array of owned certificates). */
struct pki_cert_list {
	struct pki_cert **v;
	size_t n;
};
void pki_cert_list_free(struct pki_cert_list *l);

/*
 * pki_certs_parse - parse data holding DER, one or more PEM certificates, or a
 * PKCS#7 certs-only bundle (.p7b, DER or PEM). Appends to list_r (initialise
 * it to {0}). At most PKI_CERTS_PER_FILE_MAX. 0 ok (at least one certificate),
 * -1 error (SG_E_PARSE for garbage, truncated DER or no certificate).
 */
int pki_certs_parse(const void *data, size_t len, struct pki_cert_list *list_r,
	struct sg_error *err);

enum pki_add_flags {
	PKI_ADD_ROOT = 1u << 0,     /* into the roots store (trusted) */
};
/*
 * pki_cert_add - store c (and its e-mail index rows). Returns 1 added, 0 it
 * was already there (duplicate by thumbprint; with PKI_ADD_ROOT an existing
 * non-root is moved into the roots store and 1 returned), -1 error.
 */
int pki_cert_add(struct pki *pki, const struct pki_cert *c, unsigned flags,
	struct sg_error *err);
/*
 * pki_x509_collect - store x (a certificate found in mail) unless a
 * certificate with its thumbprint is stored already (checked first, without
 * building a struct pki_cert or opening a transaction): pki_cert_add without
 * flags. 1 added, 0 already there, -1 error (SG_E_PARSE: not a usable
 * certificate).
 */
int pki_x509_collect(struct pki *pki, X509 *x, struct sg_error *err);
/* pki_cert_get - load by thumbprint (any case); 1 found (*c_r caller frees),
 * 0 not found, -1 error. */
int pki_cert_get(struct pki *pki, const char *thumbprint, struct pki_cert **c_r,
	struct sg_error *err);
/*
 * pki_cert_x509_get1 - only the decoded certificate of a stored thumbprint
 * (any case), without the text fields of struct pki_cert; kept per context
 * under the store's generation (a delete is seen by the next call). 1 found
 * (*x_r is a new reference: X509_free), 0 not found, -1.
 */
int pki_cert_x509_get1(struct pki *pki, const char *thumbprint, X509 **x_r,
	struct sg_error *err);
/*
 * pki_cert_chain_get1 - a stored certificate and its issuers as
 * pki_certs_export with PKI_EXPORT_CHAIN exports them (the path built now
 * through the stores, up to and including the root as far as it got,
 * without the certificate itself, each once): for a signer's chain. Kept
 * per context under the generation of the store (any change to the roots,
 * certificates, CRLs or the CTL is seen by the next call) for at most 10
 * minutes and never past a notAfter of the chain. 1 found (*cert_r and
 * *issuers_r new references: X509_free, sk_X509_pop_free(.., X509_free)),
 * 0 not stored, -1 error.
 */
int pki_cert_chain_get1(struct pki *pki, const char *thumbprint, X509 **cert_r,
	STACK_OF(X509) **issuers_r, struct sg_error *err);
/*
 * pki_cert_delete - remove a certificate (and its key and index rows). Fails
 * with SG_E_POLICY when it is selected by a user, domain or global settings,
 * SG_E_NOTFOUND when absent.
 */
int pki_cert_delete(struct pki *pki, const char *thumbprint, struct sg_error *err);

struct pki_cert_query {
	const char *email;          /* exact address, case-insensitive (indexed) */
	const char *subject;        /* substring of the subject */
	const char *issuer;         /* substring of the issuer */
	const char *serial;         /* hex, exact */
	int roots;                  /* -1 both stores, 0 certificates, 1 roots */
	int has_key;                /* -1 any, 0 without, 1 with a key */
	int64_t valid_at;           /* 0 any, else notBefore <= t <= notAfter */
	size_t limit;               /* 0 = no limit */
	size_t offset;
};
#define PKI_CERT_QUERY_INIT {NULL, NULL, NULL, NULL, -1, -1, 0, 0, 0}

/* pki_cert_cb - called once per certificate (borrowed); return 0 to go on, 1 to
 * stop, -1 to fail (set err). */
typedef int pki_cert_cb(struct pki_cert *c, void *arg, struct sg_error *err);
/* pki_cert_search - ordered by thumbprint (paged by limit/offset). 0 / -1. */
int pki_cert_search(struct pki *pki, const struct pki_cert_query *q, pki_cert_cb *cb,
	void *arg, struct sg_error *err);
/* pki_cert_find_email - the thumbprints indexed for addr, in thumbprint order,
 * at most max; returns the count (0..max) or -1. */
int pki_cert_find_email(struct pki *pki, const char *addr,
	char (*thumbs_r)[PKI_THUMBPRINT_LEN + 1], size_t max, struct sg_error *err);

enum pki_format { PKI_FMT_PEM, PKI_FMT_DER, PKI_FMT_P7B };
enum pki_export_flags { PKI_EXPORT_CHAIN = 1u << 0 };
/*
 * pki_certs_export - the certificates (with PKI_EXPORT_CHAIN also their
 * issuers up to and including the root, each once) appended to out in fmt.
 * DER allows exactly one certificate. SG_E_NOTFOUND names a missing thumbprint.
 */
int pki_certs_export(struct pki *pki, const char *const *thumbprints, size_t n,
	enum pki_format fmt, unsigned flags, struct sg_buf *out, struct sg_error *err);

/* pki_thumbprint - SHA-512 of der as 128 hex digits into out (>= 129 bytes). */
void pki_thumbprint(const void *der, size_t len, char *out);
/* pki_thumbprint_normalize - lower-case in place; 0 if it is 128 hex digits. */
int pki_thumbprint_normalize(char *t, struct sg_error *err);

/* ------------------------------------------------------------- validation */

enum pki_purpose {
	PKI_PURPOSE_ANY,            /* chain valid and usable to sign or encrypt */
	PKI_PURPOSE_ENCRYPT,        /* keyEncipherment (RSA) / keyAgreement (EC) */
	PKI_PURPOSE_SIGN,           /* digitalSignature or nonRepudiation */
	PKI_PURPOSE_CRL_SIGN,       /* a CRL issuer: cRLSign when it has a key
	                               usage; no S/MIME EKU needed */
};

enum pki_verify_flags {
	PKI_VERIFY_CRL_REQUIRED = 1u << 0, /* no current CRL for an issuer = invalid */
	PKI_VERIFY_NO_CACHE = 1u << 1,
};

struct pki_verdict {
	bool is_valid;
	char reason[PKI_REASON_MAX];   /* why not valid; "" when valid */
	char warning[PKI_REASON_MAX];  /* e.g. an expired CRL was used; may be "" */
};

/*
 * pki_cert_verify - validate c for purpose at time at (0 = now): path to a root
 * (or a white-listed certificate) through the store, dates, KU/EKU, CRLs from
 * the CRL store, CTL. Fills v_r with the verdict and returns 0; -1 only when
 * the verdict could not be reached (store error). Verdicts at "now" are cached
 * until the store changes (certificates, keys, selections, roots, CRLs, CTL:
 * the generation), for at most 10 minutes and never past a notAfter.
 */
int pki_cert_verify(struct pki *pki, const struct pki_cert *c, enum pki_purpose purpose,
	int64_t at, unsigned flags, struct pki_verdict *v_r, struct sg_error *err);
/* pki_generation_bump - invalidate cached verdicts, selections and chains
 * (all processes, at their next call). */
/*
 * pki_pin_begin/pki_pin_end - between them, this context reads the store's
 * generation once (at the outermost begin) instead of at every call: its
 * cached verdicts, selections and chains answer for that moment, e.g. one
 * message (changes made through this context are still seen at once;
 * changes by others at the next pin). Calls nest. begin: 0 / -1 (store).
 */
int pki_pin_begin(struct pki *pki, struct sg_error *err);
void pki_pin_end(struct pki *pki);
int pki_generation_bump(struct pki *pki, struct sg_error *err);

/* -------------------------------------------------------------------- CTL */

enum pki_ctl_kind { PKI_CTL_WHITE, PKI_CTL_BLACK };
enum pki_ctl_flags { PKI_CTL_ALLOW_EXPIRED = 1u << 0 };

struct pki_ctl_entry {
	char thumbprint[PKI_THUMBPRINT_LEN + 1];
	enum pki_ctl_kind kind;
	bool allow_expired;
	int64_t created;
};
/* pki_ctl_set - add or replace the entry for thumbprint (allow-expired only
 * with white: SG_E_INVAL otherwise). */
int pki_ctl_set(struct pki *pki, const char *thumbprint, enum pki_ctl_kind kind,
	unsigned flags, struct sg_error *err);
/* pki_ctl_get - 1 found, 0 not, -1 error. */
int pki_ctl_get(struct pki *pki, const char *thumbprint, struct pki_ctl_entry *e_r,
	struct sg_error *err);
int pki_ctl_delete(struct pki *pki, const char *thumbprint, struct sg_error *err);
typedef int pki_ctl_cb(const struct pki_ctl_entry *e, void *arg, struct sg_error *err);
int pki_ctl_list(struct pki *pki, pki_ctl_cb *cb, void *arg, struct sg_error *err);
const char *pki_ctl_kind_name(enum pki_ctl_kind k);

/* ------------------------------------------------------------------- CRLs */

struct pki_crl_info {
	int64_t id;
	char thumbprint[PKI_THUMBPRINT_LEN + 1];
	char issuer[512];
	char crl_number[80];        /* hex or "" */
	int64_t this_update;
	int64_t next_update;        /* 0 when absent */
	int64_t n_entries;
	char signer[PKI_THUMBPRINT_LEN + 1]; /* verified issuer certificate or "" */
	char source[256];           /* "import" or the URL */
};

enum pki_crl_result { PKI_CRL_ADDED = 1, PKI_CRL_OLDER = 0 };
/*
 * pki_crl_import - parse (DER or PEM) and store a CRL, replacing an older one of
 * the same issuer. When the issuer certificate is in the store the signature is
 * verified (a bad signature is SG_E_CRYPTO and nothing is stored); otherwise it
 * is verified when first used. Returns PKI_CRL_ADDED, PKI_CRL_OLDER (not newer
 * than the stored one: kept the stored one) or -1. info_r may be NULL.
 */
int pki_crl_import(struct pki *pki, const void *data, size_t len, const char *source,
	struct pki_crl_info *info_r, struct sg_error *err);
enum pki_crl_import_flags {
	/*
	 * For CRLs from untrusted sources (carried in a signature, F-SMIME-4):
	 * store the CRL only when its signature verifies with a stored issuer
	 * certificate that is itself valid now (pki_cert_verify with
	 * PKI_PURPOSE_CRL_SIGN: path to a root, not revoked, not black-listed).
	 * Otherwise nothing is stored and -1: SG_E_NOTFOUND no issuer
	 * certificate in the store, SG_E_CRYPTO the signature does not verify,
	 * SG_E_POLICY the issuer certificate is not valid.
	 */
	PKI_CRL_IMPORT_TRUSTED_ISSUER = 1u << 0,
};
/* pki_crl_import_ex - pki_crl_import with flags (enum pki_crl_import_flags);
 * the same store rules (newest per issuer, PKI_CRL_OLDER). */
int pki_crl_import_ex(struct pki *pki, const void *data, size_t len, const char *source,
	unsigned flags, struct pki_crl_info *info_r, struct sg_error *err);
typedef int pki_crl_cb(const struct pki_crl_info *i, void *arg, struct sg_error *err);
int pki_crl_list(struct pki *pki, pki_crl_cb *cb, void *arg, struct sg_error *err);
/* pki_crl_get - 1 found, 0 not, -1 error. */
int pki_crl_get(struct pki *pki, int64_t id, struct pki_crl_info *i_r, struct sg_error *err);
typedef int pki_crl_entry_cb(const char *serial, int64_t revoked_at, int reason,
	void *arg, struct sg_error *err);
int pki_crl_entries(struct pki *pki, int64_t id, pki_crl_entry_cb *cb, void *arg,
	struct sg_error *err);
int pki_crl_delete(struct pki *pki, int64_t id, struct sg_error *err);
/* pki_crl_reason_name - RFC 5280 CRLReason name ("keyCompromise"). */
const char *pki_crl_reason_name(int reason);

/*
 * pki_crl_update - download the CRLs of the distribution points (HTTP, HTTPS,
 * LDAP via libcurl, through proxy when non-NULL) recorded from stored
 * certificates, those due now (or all with PKI_CRL_UPDATE_ALL); failures keep
 * the last CRL and back off. Reports each URL through cb (may be NULL).
 * Returns the number of failures (>= 0) or -1 on a store error.
 */
/*
 * pki_crl_proxy_get/set - the HTTP proxy for CRL downloads (F-ADM-7), kept in
 * the settings table ("pki.crl_proxy"); *proxy_r is NULL when none is set
 * (caller frees). Setting NULL or "" removes it. A proxy is an http:// or
 * https:// URL (SG_E_INVAL otherwise).
 */
int pki_crl_proxy_get(struct pki *pki, char **proxy_r, struct sg_error *err);
int pki_crl_proxy_set(struct pki *pki, const char *proxy, struct sg_error *err);

enum pki_crl_update_flags { PKI_CRL_UPDATE_ALL = 1u << 0 };
typedef void pki_crl_update_cb(const char *url, int ok, const char *msg, void *arg);
int pki_crl_update(struct pki *pki, const char *proxy, unsigned flags,
	pki_crl_update_cb *cb, void *arg, struct sg_error *err);

/* -------------------------------------------------------------- selection */

/*
 * Owners: (kind, name) with kind user (name = address), domain (name = domain,
 * "*.x.com" for a wildcard domain) or global (name ""). Users and domains
 * belong to the policy module; PKI stores selections by these strings only
 * (no foreign key). The caller (policy) supplies the chain of owners for a
 * user, most specific first, e.g. {user a@x.com, domain x.com, domain *.x.com,
 * global}.
 */
enum pki_owner_kind { PKI_OWNER_USER, PKI_OWNER_DOMAIN, PKI_OWNER_GLOBAL };
struct pki_owner {
	enum pki_owner_kind kind;
	const char *name;           /* borrowed; "" or NULL for global */
};
const char *pki_owner_kind_name(enum pki_owner_kind k);
/* pki_owner_is_valid - a user with an address, a domain (optionally "*."), or
 * global. */
bool pki_owner_is_valid(const struct pki_owner *o);

enum pki_sel_kind { PKI_SEL_ENCRYPT, PKI_SEL_SIGN, PKI_SEL_ADDITIONAL };
const char *pki_sel_kind_name(enum pki_sel_kind k);

/* pki_select_add - select thumbprint (must be stored: SG_E_NOTFOUND) for
 * owner. SIGN replaces the owner's previous signing certificate; 1 added,
 * 0 already selected, -1 error. Names are stored lower-cased. */
int pki_select_add(struct pki *pki, const struct pki_owner *owner, enum pki_sel_kind kind,
	const char *thumbprint, struct sg_error *err);
/* pki_select_remove - remove one selection; 1 removed, 0 was not selected. */
int pki_select_remove(struct pki *pki, const struct pki_owner *owner,
	enum pki_sel_kind kind, const char *thumbprint, struct sg_error *err);
/* pki_select_clear - remove all selections of kind for owner (e.g. back to the
 * automatic signing certificate); returns the number removed or -1. */
int pki_select_clear(struct pki *pki, const struct pki_owner *owner,
	enum pki_sel_kind kind, struct sg_error *err);

struct pki_selected {
	char thumbprint[PKI_THUMBPRINT_LEN + 1];
	enum pki_sel_kind kind;
	char origin[300];           /* "user a@x.com", "domain x.com", "global", "auto" */
	bool is_usable;
	char reason[PKI_REASON_MAX]; /* why not usable; "" when usable */
};
struct pki_selection {
	struct pki_selected *v;
	size_t n;
};
void pki_selection_free(struct pki_selection *s);

enum pki_select_flags {
	PKI_SELECT_AUTO = 1u << 0,        /* add/choose certificates by address */
	PKI_SELECT_FRESHEST = 1u << 1,    /* signing: latest notBefore wins */
	PKI_SELECT_UNUSABLE = 1u << 2,    /* also list unusable ones (explain) */
};
#define PKI_SELECT_MAX 1000          /* certificates returned at most */
/*
 * pki_select_encryption - the encryption certificates for address email
 * (may be NULL for a domain/global listing): the union of the manual selections
 * of every owner in chain plus, with PKI_SELECT_AUTO, every valid certificate
 * indexed for email; each thumbprint once. Only usable ones (valid for
 * encryption now) unless PKI_SELECT_UNUSABLE. sel_r is initialised here;
 * free it with pki_selection_free. 0 / -1.
 */
int pki_select_encryption(struct pki *pki, const char *email,
	const struct pki_owner *chain, size_t n, unsigned flags, unsigned verify_flags,
	struct pki_selection *sel_r, struct sg_error *err);
/* pki_select_additional - the union of the additional certificates of chain
 * (valid for encryption). */
int pki_select_additional(struct pki *pki, const struct pki_owner *chain, size_t n,
	unsigned flags, unsigned verify_flags, struct pki_selection *sel_r,
	struct sg_error *err);
/*
 * pki_select_signing - the signing certificate: the first owner in chain with a
 * manual selection, if usable (valid for signing with a key); else, with
 * PKI_SELECT_AUTO, the first usable certificate for email with a key (oldest
 * import first), or the latest notBefore with PKI_SELECT_FRESHEST.
 * 1 found (*sel_r), 0 none, -1 error.
 */
int pki_select_signing(struct pki *pki, const char *email, const struct pki_owner *chain,
	size_t n, unsigned flags, unsigned verify_flags, struct pki_selected *sel_r,
	struct sg_error *err);
/* pki_select_list - the manual selections of one owner (any usability) with
 * their verdicts; sel_r is initialised here. 0 / -1. */
int pki_select_list(struct pki *pki, const struct pki_owner *owner,
	unsigned verify_flags, struct pki_selection *sel_r, struct sg_error *err);

/* pki_usage_cb - one selection naming a certificate. */
typedef int pki_usage_cb(const struct pki_owner *owner, enum pki_sel_kind kind,
	void *arg, struct sg_error *err);
int pki_cert_usage(struct pki *pki, const char *thumbprint, pki_usage_cb *cb, void *arg,
	struct sg_error *err);

#endif
