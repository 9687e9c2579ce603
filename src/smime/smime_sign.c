/*
 * smime_sign.c - S/MIME signing (F-SMIME-2; RFC 8551 §3.5, CMS SignedData
 * RFC 5652 §5): clear-signed multipart/signed (RFC 1847) or opaque
 * application/pkcs7-mime; smime-type=signed-data.
 *
 * Called by the pipeline (per originator) in a worker thread. The private key
 * never comes here: OpenSSL builds the SignedData around the signer's PUBLIC
 * key (CMS_PARTIAL), this file adds the signed attributes, encodes them with
 * OpenSSL's own SET OF template (PKCS7_ATTR_SIGN, the same template CMS uses
 * when it signs), and the caller's smime_sign_fn signs those bytes (keyd /
 * pki_key_sign). The content is the message's top-level entity in canonical
 * CRLF form, never re-encoded.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>

#include "smime/smime_int.h"

static const char *const digest_names[] = {
	[SMIME_DIGEST_SHA256] = "SHA256",
	[SMIME_DIGEST_SHA384] = "SHA384",
	[SMIME_DIGEST_SHA512] = "SHA512",
	[SMIME_DIGEST_SHA1] = "SHA1",
};

const char *
smime_digest_name(enum smime_digest d)
{
	if ((unsigned)d >= sizeof(digest_names) / sizeof(digest_names[0]))
		return NULL;
	return digest_names[d];
}

int
smime_digest_parse(const char *s, enum smime_digest *d_r)
{
	static const struct smime_name tab[] = {
		{"sha256", SMIME_DIGEST_SHA256}, {"sha-256", SMIME_DIGEST_SHA256},
		{"sha384", SMIME_DIGEST_SHA384}, {"sha-384", SMIME_DIGEST_SHA384},
		{"sha512", SMIME_DIGEST_SHA512}, {"sha-512", SMIME_DIGEST_SHA512},
		{"sha1", SMIME_DIGEST_SHA1}, {"sha-1", SMIME_DIGEST_SHA1},
	};
	int v;

	if (smime_name_find(tab, sizeof(tab) / sizeof(tab[0]), s, &v) < 0)
		return -1;
	*d_r = (enum smime_digest)v;
	return 0;
}

/*
 * The SMIMECapabilities attribute of every signature is OpenSSL's standard
 * list; building it looks up every cipher and digest through the providers
 * (measured 1.7% of the daemon's CPU per signed message), so it is built and
 * encoded (as CMS_add_smimecap encodes it) once per process and only added
 * per signature. Read-only after the once (a file-scope cache invisible to
 * callers, STYLE §7); NULL if building it failed: then every signature
 * builds its own, as before.
 */
static pthread_once_t smcap_once = PTHREAD_ONCE_INIT;
static unsigned char *smcap_der;
static int smcap_len;

static void
smcap_init(void)
{
	STACK_OF(X509_ALGOR) *std = NULL;

	if (CMS_add_standard_smimecap(&std))
		smcap_len = i2d_X509_ALGORS(std, &smcap_der);
	if (smcap_len <= 0) {
		OPENSSL_free(smcap_der);
		smcap_der = NULL;
	}
	sk_X509_ALGOR_pop_free(std, X509_ALGOR_free);
}

/* add_smimecap - the standard SMIMECapabilities attribute to si */
static int
add_smimecap(CMS_SignerInfo *si)
{
	STACK_OF(X509_ALGOR) *own = NULL;
	int ok;

	(void)pthread_once(&smcap_once, smcap_init);
	if (smcap_der != NULL)
		return CMS_signed_add1_attr_by_NID(si, NID_SMIMECapabilities, V_ASN1_SEQUENCE,
			smcap_der, smcap_len);
	ok = CMS_add_standard_smimecap(&own) && CMS_add_smimecap(si, own);
	sk_X509_ALGOR_pop_free(own, X509_ALGOR_free);
	return ok;
}

/* add_signed_attrs - contentType, signingTime, messageDigest (dig[0..dlen),
 * the digest of the content). */
static int
add_signed_attrs(CMS_SignerInfo *si, const unsigned char *dig, unsigned int dlen,
	int64_t when, struct sg_error *err)
{
	ASN1_TIME *t = NULL;
	int rc = -1;

	t = X509_time_adj_ex(NULL, 0, 0, (time_t[]){ when ? (time_t)when : time(NULL) });
	if (t == NULL)
		goto ossl;
	if (CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) < 0 &&
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
		    OBJ_nid2obj(NID_pkcs7_data), -1))
		goto ossl;
	if (!CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, t->type, t, -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
		    dig, (int)dlen))
		goto ossl;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "signed attributes");
out:
	ASN1_TIME_free(t);
	return rc;
}

/* sign_attrs - DER of the signed attributes (SET OF), signed by the callback. */
static int
sign_attrs(CMS_SignerInfo *si, const struct smime_signer *signer, const char *mdname,
	struct sg_error *err)
{
	STACK_OF(X509_ATTRIBUTE) *sk = sk_X509_ATTRIBUTE_new_null();
	unsigned char *der = NULL;
	struct sg_buf sig;
	int n = CMS_signed_get_attr_count(si), dlen, rc = -1;

	sg_buf_init(&sig, 64 * 1024);
	if (sk == NULL)
		goto ossl;
	for (int i = 0; i < n; i++) {
		if (!sk_X509_ATTRIBUTE_push(sk, CMS_signed_get_attr(si, i)))
			goto ossl;
	}
	dlen = ASN1_item_i2d((ASN1_VALUE *)sk, &der, ASN1_ITEM_rptr(PKCS7_ATTR_SIGN));
	if (dlen <= 0)
		goto ossl;
	if (signer->sign(signer->sign_arg, mdname, der, (size_t)dlen, &sig, err) < 0) {
		sg_error_prefix(err, "sign: ");
		goto out;
	}
	if (sig.len == 0 || sig.len > INT32_MAX) {
		sg_error_set(err, SG_E_CRYPTO, "sign: empty signature");
		goto out;
	}
	if (!ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig.data, (int)sig.len))
		goto ossl;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "encode signed attributes");
out:
	OPENSSL_free(der);
	sk_X509_ATTRIBUTE_free(sk);   /* the attributes belong to si */
	sg_buf_deinit(&sig);
	return rc;
}

/* add_chain - the issuer chain, skipping certificates already present. */
static int
add_chain(CMS_ContentInfo *cms, X509 *cert, STACK_OF(X509) *chain, struct sg_error *err)
{
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		bool dup = X509_cmp(x, cert) == 0;

		for (int j = 0; !dup && j < i; j++)
			dup = X509_cmp(x, sk_X509_value(chain, j)) == 0;
		if (!dup && !CMS_add1_cert(cms, x)) {
			sg_error_set_openssl(err, SG_E_CRYPTO, "add chain certificate");
			return -1;
		}
	}
	return 0;
}

/* digest_src - the digest of everything src yields (the canonical entity) */
static int
digest_src(BIO *src, EVP_MD_CTX *mctx, unsigned char *dig, unsigned int *dlen_r,
	struct sg_error *err)
{
	char *tmp = sg_xmalloc(16 * 1024);
	int n, rc = -1;

	while ((n = BIO_read(src, tmp, 16 * 1024)) > 0) {
		if (!EVP_DigestUpdate(mctx, tmp, (size_t)n)) {
			sg_error_set_openssl(err, SG_E_CRYPTO, "digest");
			goto out;
		}
	}
	if (smime_src_check(src, err) < 0)
		goto out;
	if (!EVP_DigestFinal_ex(mctx, dig, dlen_r)) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "digest");
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

/* set_content - the content (everything src yields) embedded (opaque). */
static int
set_content(CMS_ContentInfo *cms, BIO *src, size_t max, struct sg_error *err)
{
	ASN1_OCTET_STRING **pos;
	struct sg_buf content;
	size_t len;
	int rc = -1;

	/* XXX: opaque signing holds the content once in memory: the signature
	 * is made before the content is written (the key is behind
	 * smime_sign_fn), and OpenSSL's streaming encoder would sign itself at
	 * the end of the stream. */
	sg_buf_init(&content, max < INT32_MAX ? max : INT32_MAX);
	if (smime_bio_append(src, &content, err) < 0 || smime_src_check(src, err) < 0)
		goto out;
	if (!CMS_set_detached(cms, 0))
		goto ossl;
	pos = CMS_get0_content(cms);
	if (pos == NULL)
		goto ossl;
	if (*pos == NULL)
		*pos = ASN1_OCTET_STRING_new();
	if (*pos == NULL)
		goto ossl;
	/* the buffer moves into the OCTET STRING: no second copy */
	len = content.len;
	ASN1_STRING_set0(*pos, len > 0 ? sg_buf_steal(&content) : NULL, (int)len);
	/* the content is complete: not a streaming placeholder */
	(*pos)->flags &= ~ASN1_STRING_FLAG_CONT;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "set content");
out:
	sg_buf_deinit(&content);
	return rc;
}

void
smime_signed_deinit(struct smime_signed *s)
{
	if (s == NULL)
		return;
	sg_buf_deinit(&s->outer);
	memset(s, 0, sizeof(*s));
}

/* The header OpenSSL writes after the outer fields starts so (SMIME_CRLFEOL). */
#define SIGNED_MIME_VERSION "MIME-Version: 1.0\r\n"
/* How much of that header is looked at. */
#define SIGNED_HEAD_MAX 4096

/*
 * describe_signed - fill d for the message just written at [start, start +
 * written) of fd, whose outer fields were outer: is_set only when what
 * OpenSSL wrote after them is "MIME-Version: 1.0", then only Content-*
 * fields (or their continuation lines), every line ending in CRLF, then the
 * empty line - the shape the header split would give back as exactly those
 * outer fields and an entity starting right after MIME-Version. (Our own
 * output, checked, not parsed: anything else is left to the split.)
 */
static int
describe_signed(int fd, uint64_t start, const struct sg_buf *outer, int64_t written,
	struct smime_signed *d, struct sg_error *err)
{
	char head[SIGNED_HEAD_MAX];
	size_t vlen = strlen(SIGNED_MIME_VERSION), n, i, line;
	uint64_t from = start + outer->len;
	ssize_t r;

	smime_signed_deinit(d);
	if ((uint64_t)written <= outer->len)
		return 0;
	n = (uint64_t)written - outer->len < sizeof(head) ?
		(size_t)((uint64_t)written - outer->len) : sizeof(head);
	r = smime_fd_pread(fd, head, n, from, err);
	if (r < 0)
		return -1;
	n = (size_t)r;
	if (n < vlen || memcmp(head, SIGNED_MIME_VERSION, vlen) != 0)
		return 0;
	for (i = vlen; i < n; i = line + 2) {
		const char *cr = memchr(head + i, '\r', n - i);

		if (cr == NULL || (size_t)(cr - head) + 1 >= n || cr[1] != '\n' ||
		    memchr(head + i, '\n', (size_t)(cr - head) - i) != NULL)
			return 0;   /* not CRLF, or not within what was read */
		line = (size_t)(cr - head);
		if (line == i) {
			/* the empty line: the shape holds */
			sg_buf_init(&d->outer, outer->max);
			if (sg_buf_append(&d->outer, outer->data ? outer->data : "", outer->len,
				err) < 0)
				return -1;
			d->entity_off = outer->len + vlen;
			d->len = (uint64_t)written;
			d->is_set = true;
			return 0;
		}
		if (head[i] != ' ' && head[i] != '\t' &&
		    (line - i < 9 || strncasecmp(head + i, "Content-", 8) != 0 ||
		     memchr(head + i, ':', line - i) == NULL))
			return 0;
	}
	return 0;
}

int
smime_sign_fd(int in_fd, uint64_t len, const struct smime_signer *signer,
	const struct smime_sign_opts *opts, int out_fd, uint64_t *size_r,
	struct sg_error *err)
{
	static const struct smime_sign_opts defaults = { 0 };
	struct smime_split s = { 0 };
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	EVP_MD *md = NULL;
	EVP_MD_CTX *mctx = NULL;
	BIO *data = NULL, *out = NULL;
	const char *mdname;
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	unsigned fl = CMS_BINARY | CMS_PARTIAL;
	uint64_t body = 0;
	off_t start;
	int64_t written;
	size_t max;
	bool opaque;
	int rc = -1;

	if (opts == NULL)
		opts = &defaults;
	opaque = (opts->flags & SMIME_SIGN_OPAQUE) != 0;
	mdname = smime_digest_name(opts->digest);
	max = smime_effective_max(opts->max_output);
	if (signer == NULL || signer->cert == NULL || signer->sign == NULL || mdname == NULL ||
	    in_fd < 0 || out_fd < 0) {
		sg_error_set(err, SG_E_INVAL, "smime_sign: bad arguments");
		return -1;
	}
	start = lseek(out_fd, 0, SEEK_CUR);
	if (start < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "lseek");
		return -1;
	}
	if (smime_split_fd(in_fd, len, max, &s, &body, err) < 0)
		return -1;
	md = EVP_MD_fetch(NULL, mdname, NULL);
	mctx = EVP_MD_CTX_new();
	if (md == NULL || mctx == NULL || !EVP_DigestInit_ex(mctx, md, NULL)) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "digest %s", mdname);
		goto out;
	}
	/* the entity (its fields, then the body in canonical form) is read
	 * from the message twice: digested here, copied out below */
	data = smime_src_open(in_fd, body, len, &s.entity, max, err);
	if (data == NULL || digest_src(data, mctx, dig, &dlen, err) < 0)
		goto out;
	BIO_free(data);
	data = smime_src_open(in_fd, body, len, &s.entity, max, err);
	if (data == NULL)
		goto out;
	cms = CMS_sign(NULL, NULL, NULL, NULL, fl | (opaque ? 0 : CMS_DETACHED));
	if (cms == NULL)
		goto ossl;
	/* the public key stands in for the private one: nothing is signed here */
	si = CMS_add1_signer(cms, signer->cert, X509_get0_pubkey(signer->cert), md,
		fl | CMS_NOSMIMECAP);
	if (si == NULL || !add_smimecap(si))
		goto ossl;
	if (add_chain(cms, signer->cert, signer->chain, err) < 0 ||
	    add_signed_attrs(si, dig, dlen, opts->signing_time, err) < 0 ||
	    sign_attrs(si, signer, mdname, err) < 0)
		goto out;
	out = smime_out_open(out_fd, err);
	if (out == NULL)
		goto out;
	if (s.outer.len > 0 && BIO_write(out, s.outer.data, (int)s.outer.len) != (int)s.outer.len)
		goto ossl;
	if (opaque) {
		if (set_content(cms, data, max, err) < 0)
			goto out;
		if (!SMIME_write_CMS(out, cms, NULL, CMS_BINARY | SMIME_CRLFEOL))
			goto ossl;
	} else {
		/* REUSE_DIGEST: copy the content in pieces; do not finalise
		 * (re-sign) again */
		if (!SMIME_write_CMS(out, cms, data, CMS_DETACHED | CMS_BINARY |
			CMS_REUSE_DIGEST | SMIME_CRLFEOL) || smime_src_check(data, err) < 0) {
			if (smime_src_check(data, err) < 0)
				goto out;
			goto ossl;
		}
	}
	if (smime_out_finish(&out, out_fd, (uint64_t)start, max, &written, err) < 0)
		goto out;
	if (opts->signed_r != NULL &&
	    describe_signed(out_fd, (uint64_t)start, &s.outer, written, opts->signed_r, err) < 0)
		goto out;
	if (size_r != NULL)
		*size_r = (uint64_t)written;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "sign");
out:
	BIO_free_all(out);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	EVP_MD_CTX_free(mctx);
	EVP_MD_free(md);
	smime_split_deinit(&s);
	if (rc < 0 && ftruncate(out_fd, start) == 0)
		(void)lseek(out_fd, start, SEEK_SET);
	return rc;
}

/* smime_sign - the in-memory form: through two temporary files */
struct sign_args {
	const struct smime_signer *signer;
	const struct smime_sign_opts *opts;
};

static int sign_op(int in_fd, uint64_t len, int out_fd, uint64_t *n_r, const void *arg,
	struct sg_error *err)
{
	const struct sign_args *a = arg;

	return smime_sign_fd(in_fd, len, a->signer, a->opts, out_fd, n_r, err);
}

int
smime_sign(const void *msg, size_t len, const struct smime_signer *signer,
	const struct smime_sign_opts *opts, struct sg_buf *out, struct sg_error *err)
{
	struct sign_args a = {signer, opts};

	return smime_buf_via_fds(msg, len, out, "smime_sign", sign_op, &a, err);
}
