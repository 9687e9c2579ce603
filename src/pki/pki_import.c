/*
 * pki_import.c - certificate file formats: parse DER, PEM (one or many
 * certificates, PKCS#7 blocks), PKCS#7 certs-only bundles (.p7b, DER or PEM)
 * into struct pki_cert lists, and export stored certificates as PEM, DER or
 * .p7b, optionally with their issuers up to the root.
 *
 * Called by the CLI and the HTTP API (import/export), any thread, own struct
 * pki. Input is hostile: every decoder is OpenSSL's, sizes are capped
 * (PKI_IMPORT_MAX, PKI_CERTS_PER_FILE_MAX) and nothing here asserts.
 * RFC 5280 (certificates), RFC 2315/5652 (certs-only SignedData), RFC 7468 (PEM).
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>

#include "pki/pki_int.h"

/* list_push - append c (taking ownership); -1 past the per-file cap */
static int list_push(struct pki_cert_list *l, struct pki_cert *c, struct sg_error *err)
{
	if (l->n >= PKI_CERTS_PER_FILE_MAX) {
		pki_cert_free(&c);
		sg_error_set(err, SG_E_LIMIT, "more than %u certificates in one file",
			PKI_CERTS_PER_FILE_MAX);
		return -1;
	}
	l->v = sg_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = c;
	return 0;
}

/* push_x509 - wrap x (borrowed) and append */
static int push_x509(struct pki_cert_list *l, X509 *x, struct sg_error *err)
{
	struct pki_cert *c = pki_cert_from_x509(x, err);

	if (c == NULL)
		return -1;
	return list_push(l, c, err);
}

/* p7_certs - the certificates of a PKCS#7 SignedData (certs-only or not) */
static int p7_certs(PKCS7 *p7, struct pki_cert_list *l, struct sg_error *err)
{
	STACK_OF(X509) *certs = NULL;
	int i;

	if (PKCS7_type_is_signed(p7) && p7->d.sign != NULL)
		certs = p7->d.sign->cert;
	else if (PKCS7_type_is_signedAndEnveloped(p7) && p7->d.signed_and_enveloped != NULL)
		certs = p7->d.signed_and_enveloped->cert;
	if (certs == NULL || sk_X509_num(certs) == 0) {
		sg_error_set(err, SG_E_PARSE, "PKCS#7: no certificates in it");
		return -1;
	}
	for (i = 0; i < sk_X509_num(certs); i++) {
		if (push_x509(l, sk_X509_value(certs, i), err) < 0)
			return -1;
	}
	return 0;
}

/* parse_der - one DER certificate, a DER .p7b, or a clear error */
static int parse_der(const unsigned char *data, size_t len, struct pki_cert_list *l,
	struct sg_error *err)
{
	const unsigned char *p = data;
	struct pki_cert *c;
	PKCS7 *p7;
	PKCS12 *p12;
	int rc;

	c = pki_cert_from_der(data, len, err);
	if (c != NULL)
		return list_push(l, c, err);
	p = data;
	p7 = d2i_PKCS7(NULL, &p, (long)len);
	if (p7 != NULL && p == data + len) {
		rc = p7_certs(p7, l, err);
		PKCS7_free(p7);
		return rc;
	}
	PKCS7_free(p7);
	p = data;
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	PKCS12_free(p12);
	ERR_clear_error();
	if (p12 != NULL) {
		sg_error_set(err, SG_E_PARSE, "this is a PKCS#12 file: import it with "
			"\"key import FILE --password-file F\"");
		return -1;
	}
	/* Keep the certificate parser's message: it names truncation. */
	sg_error_prefix(err, "not a DER certificate or PKCS#7 bundle: ");
	return -1;
}

/* pem_block - one decoded PEM block by its label */
static int pem_block(const char *name, const unsigned char *der, long len,
	struct pki_cert_list *l, struct sg_error *err)
{
	const unsigned char *p = der;
	int rc = -1;

	if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0) {
		struct pki_cert *c = pki_cert_from_der(der, (size_t)len, err);

		return c != NULL ? list_push(l, c, err) : -1;
	}
	if (strcmp(name, PEM_STRING_X509_TRUSTED) == 0) {
		X509 *x = d2i_X509_AUX(NULL, &p, len);

		if (x == NULL) {
			sg_error_set_openssl(err, SG_E_PARSE, "bad TRUSTED CERTIFICATE block");
			return -1;
		}
		rc = push_x509(l, x, err);
		X509_free(x);
		return rc;
	}
	if (strcmp(name, PEM_STRING_PKCS7) == 0 || strcmp(name, "CERTIFICATES") == 0) {
		PKCS7 *p7 = d2i_PKCS7(NULL, &p, len);

		if (p7 == NULL) {
			sg_error_set_openssl(err, SG_E_PARSE, "bad PKCS7 block");
			return -1;
		}
		rc = p7_certs(p7, l, err);
		PKCS7_free(p7);
		return rc;
	}
	return 0;  /* keys, CRLs, ...: not certificates, skipped */
}

/* parse_pem - every certificate-bearing block of a PEM file */
static int parse_pem(const void *data, size_t len, struct pki_cert_list *l,
	struct sg_error *err)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long dlen = 0;
	size_t before = l->n;
	int rc = -1, blocks = 0;

	if (b == NULL) {
		sg_error_set(err, SG_E_NOMEM, "out of memory");
		return -1;
	}
	for (;;) {
		if (PEM_read_bio(b, &name, &header, &der, &dlen) != 1) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
				ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;  /* end of input */
			}
			sg_error_set_openssl(err, SG_E_PARSE, "PEM block %d is corrupt",
				blocks + 1);
			goto out;
		}
		blocks++;
		if (pem_block(name, der, dlen, l, err) < 0) {
			sg_error_prefix(err, "PEM block %d: ", blocks);
			goto out;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
	}
	if (l->n == before) {
		sg_error_set(err, SG_E_PARSE, "no certificate in the PEM data (%d block%s)",
			blocks, blocks == 1 ? "" : "s");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(b);
	return rc;
}

int pki_certs_parse(const void *data, size_t len, struct pki_cert_list *list_r,
	struct sg_error *err)
{
	if (data == NULL || len == 0) {
		sg_error_set(err, SG_E_PARSE, "empty input");
		return -1;
	}
	if (len > PKI_IMPORT_MAX) {
		sg_error_set(err, SG_E_LIMIT, "input of %zu bytes is over the limit of %u",
			len, PKI_IMPORT_MAX);
		return -1;
	}
	if (len > (size_t)INT32_MAX)
		return -1;
	if (memmem(data, len, "-----BEGIN ", 11) != NULL)
		return parse_pem(data, len, list_r, err);
	return parse_der(data, len, list_r, err);
}

/* ------------------------------------------------------------------ export */

/* stack_add_unique - push x (up-ref) unless a certificate equal to it is in */
static int stack_add_unique(STACK_OF(X509) *sk, X509 *x, struct sg_error *err)
{
	int i;

	for (i = 0; i < sk_X509_num(sk); i++) {
		if (X509_cmp(sk_X509_value(sk, i), x) == 0)
			return 0;
	}
	if (!sk_X509_push(sk, x)) {
		sg_error_set(err, SG_E_NOMEM, "out of memory");
		return -1;
	}
	X509_up_ref(x);
	return 0;
}

/* collect - the certificates to export, in order, each once */
static int collect(struct pki *pki, const char *const *thumbs, size_t n, unsigned flags,
	STACK_OF(X509) *out, struct sg_error *err)
{
	struct pki_cert *c = NULL;
	size_t i;
	int r, j;

	for (i = 0; i < n; i++) {
		r = pki_cert_get(pki, thumbs[i], &c, err);
		if (r < 0)
			return -1;
		if (r == 0) {
			sg_error_set(err, SG_E_NOTFOUND, "certificate %.20s... not found",
				thumbs[i]);
			return -1;
		}
		r = stack_add_unique(out, c->x509, err);
		if (r == 0 && (flags & PKI_EXPORT_CHAIN) != 0) {
			STACK_OF(X509) *chain = NULL;
			int xerr, depth;

			r = pki_chain_build(pki, c->x509, sg_now(), &chain, &xerr, &depth, err);
			for (j = 1; r == 0 && j < sk_X509_num(chain); j++)
				r = stack_add_unique(out, sk_X509_value(chain, j), err);
			sk_X509_pop_free(chain, X509_free);
		}
		pki_cert_free(&c);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* bio_to_buf - append a memory BIO's content to out */
static int bio_to_buf(BIO *b, struct sg_buf *out, struct sg_error *err)
{
	char *p = NULL;
	long len = BIO_get_mem_data(b, &p);

	return sg_buf_append(out, p, len > 0 ? (size_t)len : 0, err);
}

/* p7b_write - a degenerate certs-only SignedData (RFC 5652 §5 "certs-only") */
static int p7b_write(STACK_OF(X509) *certs, BIO *b, struct sg_error *err)
{
	PKCS7 *p7 = PKCS7_new();
	int i, rc = -1;

	if (p7 == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
		PKCS7_content_new(p7, NID_pkcs7_data) != 1)
		goto out;
	for (i = 0; i < sk_X509_num(certs); i++) {
		if (PKCS7_add_certificate(p7, sk_X509_value(certs, i)) != 1)
			goto out;
	}
	if (i2d_PKCS7_bio(b, p7) != 1)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		sg_error_set_openssl(err, SG_E_CRYPTO, "cannot build the PKCS#7 bundle");
	PKCS7_free(p7);
	return rc;
}

int pki_certs_export(struct pki *pki, const char *const *thumbprints, size_t n,
	enum pki_format fmt, unsigned flags, struct sg_buf *out, struct sg_error *err)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *b = BIO_new(BIO_s_mem());
	int i, rc = -1;

	if (certs == NULL || b == NULL) {
		sg_error_set(err, SG_E_NOMEM, "out of memory");
		goto out;
	}
	if (n == 0) {
		sg_error_set(err, SG_E_INVAL, "no certificate to export");
		goto out;
	}
	if (collect(pki, thumbprints, n, flags, certs, err) < 0)
		goto out;
	switch (fmt) {
	case PKI_FMT_DER:
		if (sk_X509_num(certs) != 1) {
			sg_error_set(err, SG_E_INVAL, "DER holds one certificate, not %d: use "
				"pem or p7b", sk_X509_num(certs));
			goto out;
		}
		if (i2d_X509_bio(b, sk_X509_value(certs, 0)) != 1) {
			sg_error_set_openssl(err, SG_E_CRYPTO, "cannot encode DER");
			goto out;
		}
		break;
	case PKI_FMT_P7B:
		if (p7b_write(certs, b, err) < 0)
			goto out;
		break;
	case PKI_FMT_PEM:
	default:
		for (i = 0; i < sk_X509_num(certs); i++) {
			if (PEM_write_bio_X509(b, sk_X509_value(certs, i)) != 1) {
				sg_error_set_openssl(err, SG_E_CRYPTO, "cannot encode PEM");
				goto out;
			}
		}
		break;
	}
	rc = bio_to_buf(b, out, err);
out:
	BIO_free(b);
	sk_X509_pop_free(certs, X509_free);
	return rc;
}
