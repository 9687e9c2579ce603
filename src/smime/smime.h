/*
 * smime.h - S/MIME (RFC 8551, CMS RFC 5652/5083) for the pipeline: sign
 * (clear multipart/signed or opaque), encrypt (EnvelopedData or AES-GCM
 * AuthEnvelopedData; RSA PKCS#1 v1.5 / RSA-OAEP key transport, ECDH key
 * agreement), and the incoming side: decrypt and verify, layer by layer,
 * to a bounded depth (F-SMIME-1..4, F-SMIME-6 encrypt headers/remove
 * signature).
 *
 * Messages are byte strings (a whole RFC 5322 message). The signed or
 * encrypted entity is the ORIGINAL top-level MIME entity (its Content-*
 * header fields and its body, bytes as received); the only change is the
 * RFC 8551 canonical form: a bare LF becomes CRLF (a CRLF message is
 * signed byte for byte). Nothing is re-encoded: 8-bit and binary parts and
 * any charset come back byte-identical from smime_open. In outputs, the
 * lines this module writes end in CRLF, but the base64 lines OpenSSL writes
 * (the signature part, the pkcs7-mime body) end in a bare LF; that is
 * outside any signed content, and delivery sends every line with CRLF (as
 * SMTP requires). The header fields of the message that are not Content-*
 * stay outside (unchanged, raw); MIME-Version is rewritten to 1.0.
 *
 * Private keys never enter this module (STYLE §8): signing goes through a
 * raw-signature callback (pki_key_sign has that shape), decryption through
 * a callback that receives the CMS and the recipient identifiers and decides
 * which key may be used (strict mode, F-SMIME-3) - pki_key_cms_decrypt has
 * the shape of its key step. Path validation of signers is the caller's
 * (pki_cert_verify) through smime_trust_fn.
 *
 * OpenSSL types appear here (STYLE §1 allows it for smime.h); all pointers
 * passed in are borrowed for the duration of the call. Threads: no shared
 * state; one call per message per thread. OpenSSL must be initialised by the
 * program; GMime too (g_mime_init in main).
 *
 * Conventions: 0 ok / -1 error with err filled (SG_E_PARSE malformed input,
 * SG_E_LIMIT over a bound, SG_E_CRYPTO a crypto failure, SG_E_INVAL bad
 * arguments). Fail closed: on -1 the output buffer holds nothing usable.
 *
 * Memory (issue 7): the _fd functions stream between files. The message is
 * read with pread in 16 KB pieces, the entity to sign or encrypt is produced
 * on the fly (its fields, then the body canonicalised as it is read),
 * OpenSSL encrypts while it copies (CMS_STREAM: BER with indefinite
 * lengths) and the output goes to an fd. So clear signing, encryption and
 * sign+encrypt hold the header section and a few 16 KB buffers, whatever
 * the message size (test_smime_memory: +3 MB peak RSS for 20 MB). Not flat,
 * because OpenSSL holds the data in memory there:
 *  - opaque signing: the canonical entity once (the signature is made
 *    before the content is written; OpenSSL's streaming encoder would sign
 *    at the end itself, but the key is behind smime_sign_fn);
 *  - decrypting and opaque-signed verify: d2i reads the whole CMS (the DER,
 *    3/4 of the base64 body) into one growing buffer and decodes it into a
 *    structure holding the content again; an indefinite-length content (as
 *    streaming senders, us included, write it) is collected into a buffer
 *    grown by realloc. Peak per layer about 2 x the DER for DER input and
 *    up to about 4 x for BER input (20 MB signed+encrypted message, DER
 *    21 MB: +80 MB). Everything is freed before the next layer is read;
 *  - clear-signed verify of a multipart/signed that is not well formed
 *    (not exactly two parts and a closing delimiter, no signature
 *    Content-Type): OpenSSL's multipart reader keeps the signed part in a
 *    memory BIO, about 1.5 x at the peak. A well-formed one is cut by us
 *    (the delimiter lines found in the file, as OpenSSL's reader finds
 *    them): OpenSSL decodes only the signature part and the signed content
 *    streams from the file through the digest (flat).
 * What OpenSSL holds is taken from the process's memory budget
 * (sg_budget: 3 x the layer's body) while it holds it.
 * Decrypted and verified content streams from OpenSSL's BIOs to a file.
 * smime_sign, smime_encrypt and smime_open are the same over buffers (their
 * input and output are in memory by definition). max_output caps each
 * output.
 */
#ifndef SG_SMIME_H
#define SG_SMIME_H

#include <openssl/cms.h>
#include <openssl/x509.h>

#include "lib/lib.h"

#define SMIME_MAX_DEPTH 8             /* nested S/MIME layers smime_open unwraps */
#define SMIME_DEFAULT_MAX (64u << 20) /* output cap when an opts max is 0 */
#define SMIME_MAX_RECIPIENTS 10000    /* recipient infos smime_open accepts */
#define SMIME_MAX_SIGNERS 100         /* signer infos per signed layer */
#define SMIME_MAX_CRLS 16             /* CRLs offered per signed layer */

/* ------------------------------------------------------------------ sign */

enum smime_digest {
	SMIME_DIGEST_SHA256 = 0,   /* default */
	SMIME_DIGEST_SHA384,
	SMIME_DIGEST_SHA512,
	SMIME_DIGEST_SHA1,         /* legacy, only when configured */
};

/* smime_digest_name - "SHA256", ...; NULL for an unknown value. */
const char *smime_digest_name(enum smime_digest d);
/* smime_digest_parse - "sha256"/"SHA-256"/... (case-insensitive): 0 or -1. */
int smime_digest_parse(const char *s, enum smime_digest *d_r);

/*
 * smime_sign_fn - produce the raw signature over tbs (the DER of the signed
 * attributes) with the private key of the signer certificate, hashing with
 * md ("SHA256", "SHA384", "SHA512", "SHA1"): RSA PKCS#1 v1.5 or DER ECDSA,
 * appended to sig. 0 ok, -1 error (err set). The shape of pki_key_sign: wire
 * it as pki_key_sign(keys, thumbprint, md, tbs, len, sig, err).
 */
typedef int smime_sign_fn(void *arg, const char *md, const void *tbs, size_t len,
	struct sg_buf *sig, struct sg_error *err);

struct smime_signer {
	X509 *cert;               /* the signing certificate (borrowed, required) */
	STACK_OF(X509) *chain;    /* issuer chain to include (borrowed, may be NULL) */
	smime_sign_fn *sign;      /* required */
	void *sign_arg;
};

enum smime_sign_flags {
	SMIME_SIGN_OPAQUE = 1u << 0,  /* application/pkcs7-mime signed-data instead
	                                 of multipart/signed */
};

/*
 * struct smime_signed - what smime_sign_fd tells about the message it just
 * wrote, for smime_encrypt_fd of that same message (sign, then encrypt), so
 * that the encryption does not read its header section back and parse it
 * again: the header fields that stay outside (as the signing split them,
 * CRLF form) and where the signed entity (OpenSSL's Content-* fields, the
 * empty line, the body) starts. is_set is false when smime_sign_fd could not
 * vouch for that shape (the encryption then parses as usual). Initialise
 * to {0}; free with smime_signed_deinit.
 */
struct smime_signed {
	bool is_set;
	struct sg_buf outer;
	uint64_t entity_off;
	uint64_t len;             /* the signed message's length */
};
void smime_signed_deinit(struct smime_signed *s);

struct smime_sign_opts {
	enum smime_digest digest;
	unsigned flags;           /* enum smime_sign_flags */
	int64_t signing_time;     /* signingTime attribute; 0 = now */
	size_t max_output;        /* 0 = SMIME_DEFAULT_MAX */
	struct smime_signed *signed_r;  /* may be NULL; filled on success
	                                   (smime_sign_fd only) */
};

/*
 * smime_sign - sign the message msg[0..len): the entity (Content-* fields +
 * body) is signed with signer, the certificate and chain are included, the
 * signed attributes are contentType, signingTime, messageDigest and
 * SMIMECapabilities. The new message (outer fields + multipart/signed or
 * application/pkcs7-mime; smime-type=signed-data) is appended to out (which
 * the caller initialised). opts may be NULL (defaults). 0 / -1.
 */
int smime_sign(const void *msg, size_t len, const struct smime_signer *signer,
	const struct smime_sign_opts *opts, struct sg_buf *out, struct sg_error *err);

/*
 * smime_sign_fd - smime_sign over files: the message is bytes [0, len) of
 * in_fd (read with pread; its offset is not used), the new message is
 * written to out_fd at its current offset, *size_r (may be NULL) gets its
 * length. Clear signing holds no more than the header section and a few
 * 16 KB buffers in memory; opaque signing holds the canonical entity once.
 * On -1 out_fd is cut back to where it was. 0 / -1.
 */
int smime_sign_fd(int in_fd, uint64_t len, const struct smime_signer *signer,
	const struct smime_sign_opts *opts, int out_fd, uint64_t *size_r,
	struct sg_error *err);

/* --------------------------------------------------------------- encrypt */

enum smime_cipher {
	SMIME_CIPHER_AES256_CBC = 0,  /* default */
	SMIME_CIPHER_AES192_CBC,
	SMIME_CIPHER_AES128_CBC,
	SMIME_CIPHER_3DES,            /* DES-EDE3-CBC, old clients */
	SMIME_CIPHER_AES128_GCM,      /* AuthEnvelopedData (RFC 5083/5084) */
	SMIME_CIPHER_AES256_GCM,      /* AuthEnvelopedData */
};

/* smime_cipher_name - OpenSSL name ("AES-256-CBC", ...); NULL if unknown. */
const char *smime_cipher_name(enum smime_cipher c);
/* smime_cipher_parse - "aes256"/"aes-256-cbc"/"3des"/"aes256-gcm"/...: 0 or -1. */
int smime_cipher_parse(const char *s, enum smime_cipher *c_r);

enum smime_key_transport {
	SMIME_KT_PKCS1 = 0,   /* RSA PKCS#1 v1.5 (default; NSS and gpgsm read only this) */
	SMIME_KT_OAEP,        /* RSAES-OAEP, SHA-256 + MGF1-SHA-256 (RFC 8017/4055) */
};

enum smime_encrypt_flags {
	/*
	 * Protect the headers (F-SMIME-6 "encrypt headers"): the WHOLE original
	 * message (all header fields + body) is encrypted as a message/rfc822
	 * entity (RFC 8551 §3.1); outside stay only the fields needed for
	 * transport and threading (From, Sender, To, Cc, Reply-To, Date,
	 * Message-ID, In-Reply-To, References) and Subject becomes "...".
	 */
	SMIME_ENC_PROTECT_HEADERS = 1u << 0,
};

struct smime_encrypt_opts {
	enum smime_cipher cipher;
	enum smime_key_transport kt;  /* RSA recipients; EC recipients always use
	                                 ECDH (ephemeral-static, RFC 5753) */
	unsigned flags;               /* enum smime_encrypt_flags */
	size_t max_output;            /* 0 = SMIME_DEFAULT_MAX */
	/* in_fd holds exactly the message smime_sign_fd described here (its
	 * signed_r); NULL or !is_set: the header section is parsed */
	const struct smime_signed *signed_in;
};

/*
 * smime_encrypt - encrypt the entity of msg to every certificate in recips
 * (the recipient group's certificates plus the additional certificates; at
 * least one; RSA or EC keys). Output: outer fields + application/pkcs7-mime;
 * smime-type=enveloped-data (authEnveloped-data for GCM), appended to out.
 * The recipient infos name exactly recips (privacy: callers pass one group).
 * A certificate whose key cannot be used fails the whole call (fail closed).
 */
int smime_encrypt(const void *msg, size_t len, STACK_OF(X509) *recips,
	const struct smime_encrypt_opts *opts, struct sg_buf *out, struct sg_error *err);

/*
 * smime_encrypt_fd - smime_encrypt over files (as smime_sign_fd): bytes
 * [0, len) of in_fd in, the new message appended at out_fd's offset,
 * *size_r its length. Streaming (CMS_STREAM): the EnvelopedData is BER with
 * indefinite lengths and the content is never held whole in memory. On -1
 * out_fd is cut back to where it was. 0 / -1.
 */
int smime_encrypt_fd(int in_fd, uint64_t len, STACK_OF(X509) *recips,
	const struct smime_encrypt_opts *opts, int out_fd, uint64_t *size_r,
	struct sg_error *err);

/* ------------------------------------------------------ decrypt / verify */

enum smime_rid_kind {
	SMIME_RID_KTRI,   /* key transport (RSA) */
	SMIME_RID_KARI,   /* key agreement (ECDH), one per recipient encrypted key */
	SMIME_RID_OTHER,  /* KEK, password, other: no certificate key applies */
};

/* One recipient of an EnvelopedData, as named in the message. Pointers are
 * borrowed from the CMS and valid during the callback only. */
struct smime_rid {
	enum smime_rid_kind kind;
	const X509_NAME *issuer;          /* issuerAndSerialNumber, or NULL */
	const ASN1_INTEGER *serial;
	const ASN1_OCTET_STRING *ski;     /* subjectKeyIdentifier, or NULL */
};

/* smime_rid_match - 1 if rid names cert (issuer+serial or SKI), else 0. */
int smime_rid_match(const struct smime_rid *rid, X509 *cert);
/* smime_rid_serial_hex - the rid's serial as lower-case hex without leading
 * zeros ("0" for 0), the form pki_cert_query.serial takes, into buf (n >= 3).
 * 0, or -1 when the rid has no serial (SKI or other) or buf is too small. */
int smime_rid_serial_hex(const struct smime_rid *rid, char *buf, size_t n);

/*
 * smime_decrypt_fn - decrypt cms (an EnvelopedData or AuthEnvelopedData,
 * read-only for the callback) with a key the callback chooses among the
 * recipients rids[0..n) and allows (strict mode: F-SMIME-3 rules a/b/c);
 * write the plaintext to out. Returns 1 decrypted (*used_r = index of the
 * rid whose key was used), 0 no usable key (the message stays encrypted),
 * -1 error (a key was found but decryption failed, or a store error).
 * Wire as: find the certificate matching a rid (smime_rid_match), then
 * pki_key_cms_decrypt(keys, thumbprint, cms, out, err).
 */
typedef int smime_decrypt_fn(void *arg, CMS_ContentInfo *cms,
	const struct smime_rid *rids, size_t n, BIO *out, size_t *used_r,
	struct sg_error *err);

/*
 * smime_trust_fn - path validation of a signer certificate (pki_cert_verify
 * with PKI_PURPOSE_SIGN): certs holds every certificate of the message plus
 * opts->extra_certs (untrusted intermediates); at is the signing time (0 if
 * the signature has none). Returns 1 trusted, 0 not trusted (a reason in
 * info[0..infolen)), -1 error.
 */
typedef int smime_trust_fn(void *arg, X509 *signer, STACK_OF(X509) *certs,
	int64_t at, char *info, size_t infolen, struct sg_error *err);

/*
 * smime_crl_fn - one CRL carried in a signed layer (the crls field of its
 * SignedData, RFC 5652 §5.1), offered before that layer's signers are
 * checked for trust, so that a CRL the signature carries already counts for
 * them (F-SMIME-4). idx is its position in the layer (0 for the first, so
 * per-layer work is done once); certs holds every certificate of the
 * signature plus opts->extra_certs (candidate issuers), the same for every
 * CRL of the layer. crl and certs are borrowed for the call; the CRL is
 * hostile input: the callback decides whether it is kept (its signature
 * checked against a trusted issuer). At most SMIME_MAX_CRLS per layer are
 * offered. Returns 0 to go on, -1 error (err set: smime_open fails with
 * it, e.g. a store error).
 */
typedef int smime_crl_fn(void *arg, X509_CRL *crl, size_t idx, STACK_OF(X509) *certs,
	struct sg_error *err);

enum smime_open_flags {
	/* Unwrap signatures (F-SMIME-6 "remove signature"): the output holds the
	 * signed content instead of the multipart/signed or signed-data. Without
	 * it, a signed layer stays in the output as it was, unless an S/MIME
	 * layer inside it must be unwrapped (then the signature goes). */
	SMIME_OPEN_REMOVE_SIGNATURE = 1u << 0,
};

struct smime_open_opts {
	smime_decrypt_fn *decrypt;    /* NULL: encrypted layers stay encrypted */
	void *decrypt_arg;
	smime_trust_fn *trust;        /* NULL: trust is not checked (-1 below) */
	void *trust_arg;
	smime_crl_fn *crl;            /* NULL: CRLs in signatures are ignored */
	void *crl_arg;
	STACK_OF(X509) *extra_certs;  /* signer certificates the message may lack
	                                 (borrowed, may be NULL) */
	unsigned flags;               /* enum smime_open_flags */
	unsigned max_depth;           /* 0 = SMIME_MAX_DEPTH; more is SG_E_LIMIT */
	size_t max_output;            /* 0 = SMIME_DEFAULT_MAX */
};

enum smime_layer_kind {
	SMIME_LAYER_ENVELOPED,        /* enveloped-data */
	SMIME_LAYER_AUTH_ENVELOPED,   /* authEnveloped-data (AES-GCM) */
	SMIME_LAYER_SIGNED_CLEAR,     /* multipart/signed */
	SMIME_LAYER_SIGNED_OPAQUE,    /* application/pkcs7-mime signed-data */
};

enum smime_sig_status {
	SMIME_SIG_VALID,              /* signature and content digest check out */
	SMIME_SIG_TAMPERED,           /* content does not match the signature */
	SMIME_SIG_BAD_SIGNATURE,      /* signature over the signed attributes invalid */
	SMIME_SIG_UNKNOWN_SIGNER,     /* signer certificate not in message nor extra */
	SMIME_SIG_UNSUPPORTED,        /* algorithm this OpenSSL cannot verify */
};

/* smime_sig_status_name - "valid", "tampered", "bad-signature",
 * "unknown-signer", "unsupported". */
const char *smime_sig_status_name(enum smime_sig_status s);

struct smime_signer_info {
	enum smime_sig_status status;
	char reason[256];             /* why not valid (OpenSSL reason); "" if valid */
	X509 *cert;                   /* the signer certificate (owned; NULL if unknown) */
	char digest[32];              /* "SHA256", ... ("" if unknown) */
	int64_t signing_time;         /* signingTime, 0 if absent */
	int trusted;                  /* smime_trust_fn: 1 trusted, 0 not, -1 unchecked */
	char trust_info[256];         /* reason when trusted == 0 */
};

struct smime_layer {
	enum smime_layer_kind kind;
	/* encrypted layers */
	bool is_decrypted;            /* false: no usable key (Decryption-Key-Not-Found) */
	char cipher[32];              /* content cipher, e.g. "AES-256-CBC" ("" unknown) */
	char **recipients;            /* "issuer=<RFC 2253>, serial=<hex>" or
	                                 "ski=<hex>", one per recipient (owned) */
	size_t n_recipients;
	ssize_t used_recipient;       /* index into recipients, -1 none */
	/* signed layers */
	struct smime_signer_info *signers;  /* owned */
	size_t n_signers;
	STACK_OF(X509) *certs;        /* every certificate in the signature (owned,
	                                 may be NULL): collect into the store */
	size_t n_crls;                /* CRLs the signature carries (all of them,
	                                 also those past SMIME_MAX_CRLS) */
};

struct smime_result {
	struct smime_layer *layers;   /* outermost first; layers[i] is level i */
	size_t n_layers;
	bool is_changed;              /* out differs from the input */
};

/* smime_result_deinit - free what smime_open put into r; r may be zeroed or
 * already deinitialised. */
void smime_result_deinit(struct smime_result *r);

/* smime_is_smime - 1 if msg's top-level entity is S/MIME (multipart/signed
 * with a PKCS#7 protocol, or application/(x-)pkcs7-mime), 0 otherwise. */
int smime_is_smime(const void *msg, size_t len);

/*
 * smime_open - the incoming path: unwrap the S/MIME layers of msg from the
 * outside in (decrypt with opts->decrypt, verify every signer, offer the
 * CRLs of each signature to opts->crl, then check trust with opts->trust),
 * up to max_depth layers; more is -1 SG_E_LIMIT. Fills
 * res (the caller zero-initialises it and always calls smime_result_deinit)
 * and appends the resulting message to out: the outer fields of msg + the
 * innermost entity reached, or msg itself when nothing was unwrapped. An
 * encrypted layer without a usable key ends the walk (is_decrypted false;
 * that layer and everything inside stays as it was). An invalid signature
 * is not an error: it is reported in res. A message that is not S/MIME
 * gives 0 layers and out = msg. Malformed CMS/MIME in an S/MIME layer is -1
 * SG_E_PARSE.
 */
int smime_open(const void *msg, size_t len, const struct smime_open_opts *opts,
	struct smime_result *res, struct sg_buf *out, struct sg_error *err);

/*
 * smime_open_fd - smime_open over files: the message is bytes [0, len) of
 * in_fd (pread), the result is written to out_fd at its offset (*size_r,
 * may be NULL, its length; a copy of the input when nothing was unwrapped:
 * check res->is_changed). Each layer is unwrapped from one anonymous
 * temporary file (memfd) into the next; the CMS of a layer is freed before
 * the next one is read. Memory per layer: the header section, 16 KB buffers
 * and what OpenSSL's decoders hold (see "Memory" above: the CMS structure of
 * an encrypted or opaque-signed layer, the signed part of a malformed
 * multipart/signed). On -1 out_fd is cut back to where it was. 0 / -1.
 */
int smime_open_fd(int in_fd, uint64_t len, const struct smime_open_opts *opts,
	struct smime_result *res, int out_fd, uint64_t *size_r, struct sg_error *err);

#endif
