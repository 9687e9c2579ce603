/*
 * ca.h - the built-in certificate authority and certificate requests (SPEC §5,
 * F-CA-1..8; guide §12, App. G).
 *
 * A CA is a self-signed root plus an intermediate that issues the end-user
 * S/MIME certificates and the CRL. Both keys live in the PKI key store
 * (pki_key.h, encrypted under the KEK); after creation they are only used
 * through pki_key_sign, so no CA private key is held by this module. CAs are
 * named (unique, case-insensitive); one is the default. CA settings (F-CA-2)
 * are rows "ca.*" of the store's settings table.
 *
 * Certificate requests go through one interface (ca_request_submit) to a
 * handler: "built-in" (issue now), "delayed" (queued in table ca_request and
 * issued by ca_worker_run, which the daemon calls), or "cmp" (an external CA
 * over RFC 4210 CMP with OpenSSL's client). End-user keys are generated here
 * and never leave the gateway (also with CMP: no central key generation).
 *
 * A struct ca borrows a pki context and its key API (one store connection):
 * one per thread. Conventions: 0 ok / -1 error, lookups 1 / 0 / -1, err filled
 * on failure only. No OpenSSL type appears in this header.
 */
#ifndef SG_CA_H
#define SG_CA_H

#include "lib/lib.h"
#include "pki/pki.h"
#include "pki/pki_key.h"

#define CA_NAME_MAX 64              /* bytes of a CA name */
#define CA_VALUE_MAX 256            /* subject field / CSV value (App. G) */
#define CA_CSV_ROWS_MAX 10000       /* requests per bulk file (App. G) */
#define CA_CSV_FILE_MAX (16u << 20) /* largest bulk file read */
#define CA_SERIAL_HEX_MAX 40        /* hex digits of a serial (RFC 5280: 20 octets) */

struct ca;

/* ca_open - a CA context over pki and keys (borrowed, must outlive it). */
struct ca *ca_open(struct pki *pki, struct pki_keys *keys, struct sg_error *err);
void ca_close(struct ca **cp);

/* ---------------------------------------------------------- key / digest */

enum ca_key_type { CA_KEY_RSA2048, CA_KEY_RSA3072, CA_KEY_RSA4096, CA_KEY_P256,
	CA_KEY_P384 };
enum ca_digest { CA_MD_SHA256, CA_MD_SHA384, CA_MD_SHA512 };
/* "rsa2048" "rsa3072" "rsa4096" "p256" "p384" (also "2048", "ec256", ...) */
int ca_key_type_parse(const char *s, enum ca_key_type *t_r);
const char *ca_key_type_name(enum ca_key_type t);
/* "sha256" "sha384" "sha512" (case-insensitive) */
int ca_digest_parse(const char *s, enum ca_digest *d_r);
const char *ca_digest_name(enum ca_digest d);

/* ------------------------------------------------------------- the CAs */

/* Subject fields (UTF-8, each <= CA_VALUE_MAX bytes; NULL/"" = absent). */
struct ca_subject {
	const char *cn;
	const char *org;
	const char *email;
	const char *first_name;     /* givenName */
	const char *last_name;      /* surname */
};

enum ca_create_flags { CA_CREATE_DEFAULT = 1u << 0 };  /* make it the default */

struct ca_create_opts {
	const char *name;           /* [A-Za-z0-9._-], 1..CA_NAME_MAX */
	struct ca_subject root;     /* cn NULL = "<name> Root CA" */
	struct ca_subject inter;    /* cn NULL = "<name> Intermediate CA"; org,
	                               email, names default to root's */
	unsigned root_days;         /* 0 = 7300 */
	unsigned inter_days;        /* 0 = 3650 (never past the root) */
	enum ca_key_type key;
	enum ca_digest md;
	unsigned flags;
};

struct ca_info {
	char name[CA_NAME_MAX + 1];
	char root_thumbprint[PKI_THUMBPRINT_LEN + 1];
	char inter_thumbprint[PKI_THUMBPRINT_LEN + 1];
	char root_subject[512];
	char inter_subject[512];
	enum ca_key_type key;
	enum ca_digest md;
	int64_t created;
	int64_t not_after;          /* of the intermediate */
	int64_t crl_number;         /* last CRL issued (0 = none) */
	bool is_default;
};

/*
 * ca_create - generate root and intermediate keys and certificates, store the
 * root in the roots store and the intermediate in the certificate store, both
 * with their keys (pki_key), and record the CA. The first CA becomes the
 * default; CA_CREATE_DEFAULT makes this one the default. Errors: SG_E_EXISTS
 * for a used name or a common name used by another CA (or root CN equal to
 * intermediate CN: SG_E_INVAL), SG_E_INVAL for bad options. All or nothing.
 */
int ca_create(struct ca *ca, const struct ca_create_opts *o, struct ca_info *info_r,
	struct sg_error *err);
/* ca_get - by name (NULL = the default CA); 1 found, 0 not, -1 error. */
int ca_get(struct ca *ca, const char *name, struct ca_info *info_r, struct sg_error *err);
typedef int ca_info_cb(const struct ca_info *i, void *arg, struct sg_error *err);
/* ca_list - every CA, by name. */
int ca_list(struct ca *ca, ca_info_cb *cb, void *arg, struct sg_error *err);
/* ca_default_set - make name the default (SG_E_NOTFOUND when absent). */
int ca_default_set(struct ca *ca, const char *name, struct sg_error *err);

/* ------------------------------------------------------------- settings */

/*
 * CA settings (F-CA-2, guide §12.2), stored as settings "ca.<name>":
 *   validity_days (int, 1..36500, default 1095), key_type (default rsa2048),
 *   signature_algorithm (default sha256), add_crl_dp (bool, default false),
 *   crl_dp (http(s)/ldap URL, default unset), ca_email (address, default
 *   unset), pfx_password_length (bytes, 8..64, default 16), store_password
 *   (bool, default false), pfx_encryption (aes256|legacy3des, default aes256),
 *   handler (built-in|delayed|cmp, default built-in), cmp_url (http://host:
 *   port/path), cmp_ref + cmp_secret (secret: MAC-protected messages, IR) or
 *   cmp_client_cert + cmp_client_key (PEM files: signature-protected, CR),
 *   cmp_trusted (PEM file: trust anchors for signed CMP responses),
 *   cmp_recipient (/CN=.../O=...: the PKIHeader recipient, e.g. the CA's DN),
 *   cmp_key_type (key generated for CMP requests, default rsa2048).
 */
struct ca_setting_def {
	const char *name;
	const char *def;            /* NULL = unset */
	const char *help;
	bool is_secret;
};
/* ca_settings_catalogue - the table above, terminated by {NULL}. */
const struct ca_setting_def *ca_settings_catalogue(void);
/* ca_setting_get - the value or default: 1 (*value_r caller frees), 0 unset, -1. */
int ca_setting_get(struct ca *ca, const char *name, char **value_r, struct sg_error *err);
/* ca_setting_flag - a boolean setting (unset = false). */
int ca_setting_flag(struct ca *ca, const char *name, bool *v_r, struct sg_error *err);
/* ca_setting_set - validate and store (value NULL = back to the default).
 * SG_E_NOTFOUND unknown name, SG_E_INVAL bad value naming the setting. */
int ca_setting_set(struct ca *ca, const char *name, const char *value, struct sg_error *err);

/* ------------------------------------------------------------- issuing */

struct ca_issue_opts {
	const char *ca_name;        /* NULL = default CA */
	struct ca_subject subject;  /* email mandatory; cn NULL = email */
	unsigned days;              /* 0 = setting validity_days */
	int key;                    /* -1 = setting key_type, else enum ca_key_type */
	int md;                     /* -1 = setting signature_algorithm */
	const char *crl_dp;         /* NULL = from the settings (when add_crl_dp) */
	const char *key_pem;        /* an existing unencrypted private key (PEM) to
	                               certify instead of a new one; NULL = new */
};
#define CA_ISSUE_OPTS_INIT {NULL, {NULL, NULL, NULL, NULL, NULL}, 0, -1, -1, NULL, NULL}

struct ca_issued {
	char thumbprint[PKI_THUMBPRINT_LEN + 1];
	char serial[2 * 20 + 1];    /* lower-case hex */
	char ca_name[CA_NAME_MAX + 1];
};

/*
 * ca_issue - issue an S/MIME end-user certificate (SAN email, emailProtection
 * EKU, digitalSignature + keyEncipherment (RSA) / keyAgreement (EC), AKI/SKI,
 * CRL distribution point when set, random 127-bit serial) signed by the CA's
 * intermediate through pki_key_sign; the new key and certificate go into the
 * PKI store. SG_E_NOTFOUND when there is no (default) CA, SG_E_INVAL for a bad
 * address or field.
 */
int ca_issue(struct ca *ca, const struct ca_issue_opts *o, struct ca_issued *r,
	struct sg_error *err);

enum ca_pfx_flags {
	CA_PFX_LEGACY = 1u << 0,    /* 3DES/SHA-1 (SPEC D-9); default AES-256 */
};
/* ca_pfx_password_new - a random password of `bytes` random bytes (base64url
 * without padding, 0 = setting pfx_password_length) into out (caller frees). */
int ca_pfx_password_new(struct ca *ca, unsigned bytes, char **pw_r, struct sg_error *err);
/*
 * ca_pfx_export - PKCS#12 of the certificates thumbprints (each with its key
 * and chain) appended to out. CA certificates are refused (SG_E_POLICY,
 * F-CA-8); with expect_email non-NULL every certificate must carry that
 * address (SG_E_POLICY "address mismatch") unless CA_PFX_ALLOW_MISMATCH.
 */
#define CA_PFX_ALLOW_MISMATCH (1u << 1)
int ca_pfx_export(struct ca *ca, const char *const *thumbprints, size_t n,
	const char *password, const char *expect_email, unsigned flags,
	struct sg_buf *out, struct sg_error *err);

/*
 * Delivery hooks (F-CA-3/8): the template and SMS modules plug in here; the
 * CA never sends mail itself. send_pfx gets the DER PKCS#12 and the sender
 * (setting ca_email, which must be set: SG_E_CONFIG otherwise); sms_password
 * queues the password for the recipient's phone; store_password records the
 * user's last_used_pfx_password. Each may be NULL (= not available).
 */
struct ca_delivery {
	int (*send_pfx)(void *arg, const char *from, const char *to, const void *p12,
		size_t len, struct sg_error *err);
	int (*sms_password)(void *arg, const char *to, const char *password,
		struct sg_error *err);
	int (*store_password)(void *arg, const char *email, const char *password,
		struct sg_error *err);
	void *arg;
};
enum ca_send_flags {
	CA_SEND_SMS = 1u << 0,          /* password by SMS (needs sms_password) */
	CA_SEND_STORE_PASSWORD = 1u << 1,
	CA_SEND_ALLOW_MISMATCH = CA_PFX_ALLOW_MISMATCH,
};
/*
 * ca_send - F-CA-8: export thumbprints as one PKCS#12 under password and hand
 * it to d->send_pfx for `to` (address checks as ca_pfx_export), then the
 * optional SMS / store hooks. SG_E_CONFIG when a needed hook or ca_email is
 * missing.
 */
int ca_send(struct ca *ca, const char *const *thumbprints, size_t n, const char *to,
	const char *password, unsigned flags, const struct ca_delivery *d,
	struct sg_error *err);

/* ----------------------------------------------------------------- CRLs */

enum ca_crl_flags {
	CA_CRL_NEW = 1u << 0,   /* only the given serials (default: add to the old) */
};
struct ca_crl_opts {
	const char *ca_name;            /* NULL = default CA */
	const char *const *serials;     /* hex (":" and "0x" allowed) */
	size_t n_serials;
	unsigned next_update_days;      /* 0 = 7 */
	int md;                         /* -1 = the CA's */
	int reason;                     /* CRLReason of these serials (RFC 5280
	                                   5.3.1, ca_crl_reason_parse), -1 = none */
	unsigned flags;
};
/* ca_crl_reason_parse - "keyCompromise", "superseded", ... (case-insensitive,
 * not "removeFromCRL") to the RFC 5280 code; -1 when unknown. */
int ca_crl_reason_parse(const char *s);
/*
 * ca_crl - create or update the CRL of the CA's intermediate (CRL number + 1,
 * AKI, revocation time = first revocation; a reason given later replaces the
 * earlier one, e.g. certificateHold -> keyCompromise), import it into the PKI
 * CRL store
 * and append its DER to der_out (may be NULL). SG_E_INVAL names a bad serial.
 */
int ca_crl(struct ca *ca, const struct ca_crl_opts *o, struct sg_buf *der_out,
	struct pki_crl_info *info_r, struct sg_error *err);

/* ------------------------------------------------------------ bulk CSV */

struct ca_csv_row {
	unsigned line;              /* 1-based physical line of the record */
	char *email, *org, *cn, *first_name, *last_name;
};
struct ca_csv {
	struct ca_csv_row *rows;
	size_t n;
};
/*
 * ca_csv_parse - App. G: a header row naming the columns (aliases,
 * case-insensitive), RFC 4180 quoting, US-ASCII unless a BOM says UTF-8 or
 * UTF-16LE/BE, unquoted values trimmed, empty lines skipped, EMAIL and
 * COMMONNAME mandatory, at most max_rows (0 = CA_CSV_ROWS_MAX) rows and
 * CA_VALUE_MAX bytes per value, every address valid. The first error is
 * returned with "line N: ..." (SG_E_PARSE, SG_E_LIMIT). csv_r is
 * initialised here; free with ca_csv_free.
 */
int ca_csv_parse(const void *data, size_t len, size_t max_rows, struct ca_csv *csv_r,
	struct sg_error *err);
void ca_csv_free(struct ca_csv *csv);

/* ------------------------------------------------------------ requests */

enum ca_handler { CA_HANDLER_BUILTIN, CA_HANDLER_DELAYED, CA_HANDLER_CMP };
int ca_handler_parse(const char *s, enum ca_handler *h_r);
const char *ca_handler_name(enum ca_handler h);

struct ca_request {
	struct ca_subject subject;  /* email mandatory */
	const char *ca_name;        /* built-in/delayed: NULL = default CA */
	const char *key_pem;        /* built-in/CMP: existing key (PEM) or NULL =
	                               generate one (the delayed handler refuses it:
	                               keys are never queued) */
};

enum ca_request_result { CA_REQ_ISSUED = 1, CA_REQ_QUEUED = 2 };
/*
 * ca_request_submit - request a certificate through handler h (-1 = the
 * setting "handler"). Returns CA_REQ_ISSUED (issued->thumbprint set: key and
 * certificate are in the store), CA_REQ_QUEUED (*id_r = pending request id)
 * or -1.
 */
int ca_request_submit(struct ca *ca, int h, const struct ca_request *rq,
	struct ca_issued *issued, int64_t *id_r, struct sg_error *err);

/*
 * ca_auto_request - F-CA-5: the caller (MPA) found no usable signing
 * certificate for sender email (pki_select_signing) and the sender has
 * smime_auto_request_certificate; request one from the default handler
 * (setting "handler") and the default CA. 1 issued (key and certificate are
 * stored: select again and sign now), 0 queued or a request is already
 * pending (nothing to sign with yet: the caller applies its policy, e.g.
 * sends unsigned unless signing is mandatory), -1 error (no default CA:
 * SG_E_NOTFOUND; CMP server down: SG_E_PEER_TEMP).
 */
int ca_auto_request(struct ca *ca, const char *email, struct ca_issued *issued,
	struct sg_error *err);

struct ca_pending {
	int64_t id;
	char email[CA_VALUE_MAX + 1];
	char cn[CA_VALUE_MAX + 1];
	char ca_name[CA_NAME_MAX + 1];
	char handler[16];
	char state[16];             /* pending | failed | issued | cancelled */
	int64_t attempts;
	int64_t created;
	int64_t updated;
	char last_error[SG_ERROR_MSG_MAX];
	char thumbprint[PKI_THUMBPRINT_LEN + 1];
};
typedef int ca_pending_cb(const struct ca_pending *p, void *arg, struct sg_error *err);
/* ca_pending_list - requests in state (NULL = pending, working and failed),
 * by id. */
int ca_pending_list(struct ca *ca, const char *state, ca_pending_cb *cb, void *arg,
	struct sg_error *err);
/* ca_pending_cancel / ca_pending_retry - SG_E_NOTFOUND unless pending/failed. */
int ca_pending_cancel(struct ca *ca, int64_t id, struct sg_error *err);
int ca_pending_retry(struct ca *ca, int64_t id, struct sg_error *err);
/*
 * ca_worker_run - issue up to max pending requests (0 = all); a request that
 * fails stays "failed" with its error (retry it with ca_pending_retry).
 * Requests left "working" for 10 minutes (a worker died) are pending again.
 * Returns the number issued, or -1 on a store error.
 */
int ca_worker_run(struct ca *ca, size_t max, struct sg_error *err);

/*
 * ca_bulk - F-CA-6: for each row, skip an address that already has a usable
 * signing certificate with a key, else submit through handler h. cb (may be
 * NULL) is told each row's outcome: "issued THUMB", "queued ID", "skipped
 * (valid signing certificate)", "skipped (request pending)" (a delayed request
 * for the address waits), or "error line N: ..." (a row error does not stop
 * the others). Returns the number of rows that failed, or -1 (store error).
 */
typedef void ca_bulk_cb(const struct ca_csv_row *row, const char *outcome, void *arg);
int ca_bulk(struct ca *ca, const struct ca_csv *csv, int h, ca_bulk_cb *cb, void *arg,
	struct sg_error *err);
/* ca_has_signing_cert - 1 when email has a usable signing certificate with a
 * key in the store, 0 not, -1 error. */
int ca_has_signing_cert(struct ca *ca, const char *email, struct sg_error *err);

#endif
