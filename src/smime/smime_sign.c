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
#include <string.h>
#include <strings.h>
#include <time.h>

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
	static const struct {
		const char *name;
		enum smime_digest d;
	} tab[] = {
		{"sha256", SMIME_DIGEST_SHA256}, {"sha-256", SMIME_DIGEST_SHA256},
		{"sha384", SMIME_DIGEST_SHA384}, {"sha-384", SMIME_DIGEST_SHA384},
		{"sha512", SMIME_DIGEST_SHA512}, {"sha-512", SMIME_DIGEST_SHA512},
		{"sha1", SMIME_DIGEST_SHA1}, {"sha-1", SMIME_DIGEST_SHA1},
	};

	for (size_t i = 0; s != NULL && i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strcasecmp(s, tab[i].name) == 0) {
			*d_r = tab[i].d;
			return 0;
		}
	}
	return -1;
}

/* smime_write_out - outer fields + OpenSSL's S/MIME rendering of cms into out. */
int
smime_write_out(const struct sg_buf *outer, CMS_ContentInfo *cms, BIO *data, int flags,
	struct sg_buf *out, struct sg_error *err)
{
	BIO *mem = BIO_new(BIO_s_mem());
	int rc = -1;

	if (mem == NULL) {
		sg_error_set_openssl(err, SG_E_NOMEM, "BIO_new");
		return -1;
	}
	if (outer->len > 0 && sg_buf_append(out, outer->data, outer->len, err) < 0)
		goto out;
	if (!SMIME_write_CMS(mem, cms, data, flags | SMIME_CRLFEOL)) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "SMIME_write_CMS");
		goto out;
	}
	if (smime_bio_append(mem, out, err) < 0)
		goto out;
	rc = 0;
out:
	BIO_free(mem);
	return rc;
}

/* add_signed_attrs - contentType, signingTime, messageDigest over content. */
static int
add_signed_attrs(CMS_SignerInfo *si, const EVP_MD *md, const struct sg_buf *content,
	int64_t when, struct sg_error *err)
{
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	ASN1_TIME *t = NULL;
	int rc = -1;

	if (!EVP_Digest(content->data, content->len, dig, &dlen, md, NULL)) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "digest");
		return -1;
	}
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

static int
set_content(CMS_ContentInfo *cms, const struct sg_buf *content, struct sg_error *err)
{
	ASN1_OCTET_STRING **pos;

	if (!CMS_set_detached(cms, 0))
		goto ossl;
	pos = CMS_get0_content(cms);
	if (pos == NULL)
		goto ossl;
	if (*pos == NULL)
		*pos = ASN1_OCTET_STRING_new();
	if (*pos == NULL || content->len > INT32_MAX ||
	    !ASN1_OCTET_STRING_set(*pos, (unsigned char *)content->data, (int)content->len))
		goto ossl;
	/* the content is complete: not a streaming placeholder */
	(*pos)->flags &= ~ASN1_STRING_FLAG_CONT;
	return 0;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "set content");
	return -1;
}

int
smime_sign(const void *msg, size_t len, const struct smime_signer *signer,
	const struct smime_sign_opts *opts, struct sg_buf *out, struct sg_error *err)
{
	static const struct smime_sign_opts defaults = { 0 };
	struct smime_split s;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	EVP_MD *md = NULL;
	BIO *data = NULL;
	const char *mdname;
	unsigned fl = CMS_BINARY | CMS_PARTIAL;
	bool opaque;
	size_t start = out != NULL ? out->len : 0;
	int rc = -1;

	if (opts == NULL)
		opts = &defaults;
	opaque = (opts->flags & SMIME_SIGN_OPAQUE) != 0;
	mdname = smime_digest_name(opts->digest);
	if (signer == NULL || signer->cert == NULL || signer->sign == NULL || mdname == NULL) {
		sg_error_set(err, SG_E_INVAL, "smime_sign: bad arguments");
		return -1;
	}
	if (smime_split_msg(msg, len, smime_effective_max(opts->max_output), &s, err) < 0)
		return -1;
	md = EVP_MD_fetch(NULL, mdname, NULL);
	if (md == NULL) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "digest %s", mdname);
		goto out;
	}
	cms = CMS_sign(NULL, NULL, NULL, NULL, fl | (opaque ? 0 : CMS_DETACHED));
	if (cms == NULL)
		goto ossl;
	/* the public key stands in for the private one: nothing is signed here */
	si = CMS_add1_signer(cms, signer->cert, X509_get0_pubkey(signer->cert), md, fl);
	if (si == NULL)
		goto ossl;
	if (add_chain(cms, signer->cert, signer->chain, err) < 0 ||
	    add_signed_attrs(si, md, &s.entity, opts->signing_time, err) < 0 ||
	    sign_attrs(si, signer, mdname, err) < 0)
		goto out;
	if (opaque) {
		if (set_content(cms, &s.entity, err) < 0 ||
		    smime_write_out(&s.outer, cms, NULL, CMS_BINARY, out, err) < 0)
			goto out;
	} else {
		data = BIO_new_mem_buf(s.entity.data, (int)s.entity.len);
		if (data == NULL || s.entity.len > INT32_MAX)
			goto ossl;
		/* REUSE_DIGEST: copy the content; do not finalise (re-sign) again */
		if (smime_write_out(&s.outer, cms, data,
			CMS_DETACHED | CMS_BINARY | CMS_REUSE_DIGEST, out, err) < 0)
			goto out;
	}
	if (out->len - start > smime_effective_max(opts->max_output)) {
		sg_error_set(err, SG_E_LIMIT, "S/MIME output over %zu bytes",
			smime_effective_max(opts->max_output));
		goto out;
	}
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "sign");
out:
	BIO_free(data);
	CMS_ContentInfo_free(cms);
	EVP_MD_free(md);
	smime_split_deinit(&s);
	if (rc < 0)
		smime_out_rollback(out, start);
	return rc;
}
