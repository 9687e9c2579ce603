/*
 * smime_open.c - the incoming S/MIME path (F-SMIME-3/4, F-SMIME-6 remove
 * signature): unwrap enveloped-data / authEnveloped-data, verify clear
 * (multipart/signed, RFC 1847/8551 §3.5.3) and opaque (signed-data)
 * signatures, layer by layer from the outside in, at most max_depth layers.
 *
 * Called by the pipeline for internal recipients, in a worker thread. The
 * message is hostile input: OpenSSL parses the MIME wrapper of the CMS
 * (SMIME_read_CMS_ex, the parser of `openssl cms`) and the CMS; GMime splits
 * the header section. Keys come only through smime_decrypt_fn, trust only
 * through smime_trust_fn. Each signer gets its own verdict: the signature
 * over the signed attributes (CMS_SignerInfo_verify) and the content digest
 * (CMS_SignerInfo_verify_content) are checked separately so that "tampered"
 * and "bad signature" are told apart. The CRLs a signature carries are
 * offered to the caller's smime_crl_fn before its signers' trust is checked.
 *
 * Invariant: the output is either the input unchanged or the outer fields of
 * the input + MIME-Version + the innermost entity unwrapped (CRLF).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "smime/smime_int.h"

static const char *const sig_status_names[] = {
	[SMIME_SIG_VALID] = "valid",
	[SMIME_SIG_TAMPERED] = "tampered",
	[SMIME_SIG_BAD_SIGNATURE] = "bad-signature",
	[SMIME_SIG_UNKNOWN_SIGNER] = "unknown-signer",
	[SMIME_SIG_UNSUPPORTED] = "unsupported",
};

const char *
smime_sig_status_name(enum smime_sig_status s)
{
	if ((unsigned)s >= sizeof(sig_status_names) / sizeof(sig_status_names[0]))
		return "unknown";
	return sig_status_names[s];
}

static void
layer_deinit(struct smime_layer *l)
{
	for (size_t i = 0; i < l->n_recipients; i++)
		free(l->recipients[i]);
	free(l->recipients);
	for (size_t i = 0; i < l->n_signers; i++)
		X509_free(l->signers[i].cert);
	free(l->signers);
	sk_X509_pop_free(l->certs, X509_free);
	memset(l, 0, sizeof(*l));
}

void
smime_result_deinit(struct smime_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_layers; i++)
		layer_deinit(&r->layers[i]);
	free(r->layers);
	memset(r, 0, sizeof(*r));
}

static struct smime_layer *
layer_add(struct smime_result *r, enum smime_layer_kind kind)
{
	struct smime_layer *l;

	r->layers = sg_xrealloc(r->layers, (r->n_layers + 1) * sizeof(*r->layers));
	l = &r->layers[r->n_layers++];
	memset(l, 0, sizeof(*l));
	l->kind = kind;
	l->used_recipient = -1;
	return l;
}

/* reason_from_queue - the last OpenSSL reason string, queue cleared. */
static void
reason_from_queue(char *buf, size_t n, const char *fallback)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last != 0 && ERR_reason_error_string(last) != NULL)
		snprintf(buf, n, "%s", ERR_reason_error_string(last));
	else
		snprintf(buf, n, "%s", fallback);
}

/* ------------------------------------------------------------ reading */

/*
 * find_delims - the delimiter lines of a multipart/signed body, bytes
 * [from, to) of fd (lines that start with "--" and the boundary, as
 * OpenSSL's reader tells them): where each starts and where its line ends
 * (after the LF), and whether it is the closing one ("--boundary--"); at
 * most SMIME_MP_DELIMS are recorded (d->n counts on past that). Read in
 * bounded pieces; a line start too close to the end of a piece is read again
 * at the start of the next one. 0 / -1 (read error). A multipart/signed has
 * exactly two parts (RFC 1847), so more than three delimiter lines are
 * refused by the caller before OpenSSL's reader, which keeps one memory BIO
 * per part (hostile input: 2 MB of empty parts cost it seconds and ~80 MB).
 */
#define SMIME_MP_DELIMS 3
struct mp_delims {
	size_t n;
	uint64_t start[SMIME_MP_DELIMS], end[SMIME_MP_DELIMS];
	bool closing[SMIME_MP_DELIMS];
};

static int
find_delims(int fd, uint64_t from, uint64_t to, const char *boundary, struct mp_delims *d,
	struct sg_error *err)
{
	size_t blen_b = strlen(boundary), cap = 16 * 1024;
	char *buf = sg_xmalloc(cap);
	bool at_start = true;    /* buf[0] starts a line */
	bool want_end = false;   /* the last delimiter's line end is not known yet */
	int rc = -1;

	memset(d, 0, sizeof(*d));
	while (from < to) {
		size_t want = to - from < cap ? (size_t)(to - from) : cap;
		ssize_t r = pread(fd, buf, want, (off_t)from);
		const char *p = buf, *end, *resume = NULL;
		bool last;

		if (r <= 0) {
			sg_error_set_errno(err, SG_E_IO, r < 0 ? errno : EIO, "read");
			goto out;
		}
		end = buf + r;
		last = from + (uint64_t)r >= to;
		if (!at_start) {
			p = memchr(buf, '\n', (size_t)r);
			p = p != NULL ? p + 1 : end;
			if (want_end && p < end) {
				d->end[d->n - 1] = from + (uint64_t)(p - buf);
				want_end = false;
			}
		}
		while (p < end) {
			const char *nl;
			bool is_delim;

			if (!last && (size_t)(end - p) < blen_b + 4 && p > buf) {
				resume = p;   /* too short to tell: again next time */
				break;
			}
			is_delim = (size_t)(end - p) >= blen_b + 2 && p[0] == '-' && p[1] == '-' &&
				memcmp(p + 2, boundary, blen_b) == 0;
			nl = memchr(p, '\n', (size_t)(end - p));
			if (is_delim) {
				if (d->n < SMIME_MP_DELIMS) {
					d->start[d->n] = from + (uint64_t)(p - buf);
					d->end[d->n] = nl != NULL ? from + (uint64_t)(nl + 1 - buf) : to;
					d->closing[d->n] = (size_t)(end - p) >= blen_b + 4 &&
						p[blen_b + 2] == '-' && p[blen_b + 3] == '-';
					want_end = nl == NULL && !last;
				}
				d->n++;
			}
			if (nl == NULL)
				break;
			p = nl + 1;
		}
		if (resume != NULL) {
			from += (uint64_t)(resume - buf);
			at_start = true;
		} else {
			from += (uint64_t)r;
			at_start = end[-1] == '\n';
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* sig_ctype_ok - the fields hdr[0, len) of a multipart/signed's second part
 * have a Content-Type of application/pkcs7-signature or
 * application/x-pkcs7-signature (case-insensitive; what OpenSSL's reader
 * demands) */
static bool
sig_ctype_ok(const char *hdr, size_t len)
{
	static const char *const ok[] = { "application/pkcs7-signature",
		"application/x-pkcs7-signature" };
	const char *p = hdr, *end = hdr + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;

		if ((size_t)(le - p) > 13 && strncasecmp(p, "content-type:", 13) == 0) {
			const char *v = p + 13, *ve;

			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			for (ve = v; ve < le && *ve != ';' && *ve != ' ' && *ve != '\t' &&
			     *ve != '\r'; ve++)
				;
			for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
				if ((size_t)(ve - v) == strlen(ok[i]) &&
				    strncasecmp(v, ok[i], (size_t)(ve - v)) == 0)
					return true;
			return false;
		}
		p = le + 1;
	}
	return false;
}

/*
 * signed_parts - the two parts of a well-formed multipart/signed in fd with
 * delimiter lines d (find_delims): the signed content [*c_from, *c_to) and the
 * signature part's body [*s_from, *s_to) - as OpenSSL's multipart reader
 * cuts them (the line break before a delimiter belongs to it; the last
 * line's trailing CRs go too). 1 found, 0 not this simple shape (OpenSSL's
 * reader gets it and says what is wrong), -1 read error.
 */
static int
signed_parts(int fd, const struct mp_delims *d, uint64_t *c_from, uint64_t *c_to,
	uint64_t *s_from, uint64_t *s_to, struct sg_error *err)
{
	char hdr[8192];
	const char *sep;
	ssize_t r;
	size_t i;

	if (d->n != 3 || d->closing[0] || d->closing[1] || !d->closing[2])
		return 0;
	for (i = 0; i < 2; i++) {
		uint64_t a = d->end[i], b = d->start[i + 1];
		size_t n = b - a < sizeof(hdr) ? (size_t)(b - a) : sizeof(hdr);

		/* the line break before the delimiter, then the CRs before it
		 * (OpenSSL strips them from the last line; within 8 KB) */
		if (n > 0 && pread(fd, hdr, n, (off_t)(b - n)) != (ssize_t)n) {
			sg_error_set_errno(err, SG_E_IO, errno ? errno : EIO, "read");
			return -1;
		}
		if (n > 0 && hdr[n - 1] == '\n') {
			n--;
			b--;
		}
		while (n > 0 && hdr[n - 1] == '\r') {
			n--;
			b--;
		}
		if (i == 0) {
			*c_from = a;
			*c_to = b;
		} else {
			*s_from = a;
			*s_to = b;
		}
	}
	/* the signature part: its fields, then base64 (OpenSSL ignores its
	 * Content-Transfer-Encoding); the Content-Type must name a signature */
	r = pread(fd, hdr, *s_to - *s_from < sizeof(hdr) - 1 ? (size_t)(*s_to - *s_from) :
		sizeof(hdr) - 1, (off_t)*s_from);
	if (r < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "read");
		return -1;
	}
	hdr[r] = '\0';
	sep = strstr(hdr, "\r\n\r\n");
	if (sep != NULL)
		sep += 4;
	else if ((sep = strstr(hdr, "\n\n")) != NULL)
		sep += 2;
	else
		return 0;
	if (!sig_ctype_ok(hdr, (size_t)(sep - hdr)))
		return 0;
	*s_from += (uint64_t)(sep - hdr);
	return 1;
}

/*
 * read_cms - the CMS of an S/MIME entity (kind 1 multipart/signed, 2
 * pkcs7-mime) whose body is bytes [body, len) of fd: OpenSSL's MIME reader
 * gets a minimal entity, pre (the Content-Type field and an empty line) and
 * the canonical body, streamed from the file. For multipart/signed *bcont_r
 * receives the signed content (a memory BIO: OpenSSL's multipart reader
 * holds the signed part once). OpenSSL's decoder holds the CMS structure in
 * memory (d2i reads all of it).
 */
static CMS_ContentInfo *
read_cms(int fd, uint64_t body, uint64_t len, const struct sg_buf *pre, int kind,
	size_t max, BIO **bcont_r, struct sg_error *err)
{
	CMS_ContentInfo *cms = NULL;
	BIO *src, *bio = NULL;

	*bcont_r = NULL;
	src = smime_src_open(fd, body, len, pre, max, err);
	if (src == NULL)
		return NULL;
	bio = BIO_new(BIO_f_buffer());   /* OpenSSL reads lines with BIO_gets */
	if (bio == NULL) {
		sg_error_set_openssl(err, SG_E_NOMEM, "BIO_new");
		BIO_free(src);
		return NULL;
	}
	bio = BIO_push(bio, src);
	cms = SMIME_read_CMS_ex(bio, 0, bcont_r, NULL);
	if (smime_src_check(src, err) < 0) {
		CMS_ContentInfo_free(cms);
		BIO_free(*bcont_r);
		*bcont_r = NULL;
		BIO_free_all(bio);
		return NULL;
	}
	BIO_free_all(bio);
	if (cms == NULL && kind == 2) {
		/* Content-Transfer-Encoding: binary - the body is the DER itself */
		ERR_clear_error();
		src = smime_src_open(fd, body, len, NULL, max, err);
		if (src == NULL)
			return NULL;
		cms = d2i_CMS_bio(src, NULL);
		if (cms == NULL && smime_src_check(src, err) < 0) {
			BIO_free(src);
			return NULL;
		}
		BIO_free(src);
	}
	if (cms == NULL)
		sg_error_set_openssl(err, SG_E_PARSE, "S/MIME structure");
	return cms;
}

/* -------------------------------------------------------- enveloped data */

static char *
rid_text(const struct smime_rid *rid)
{
	char *r = NULL, *iss = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL;

	if (rid->issuer != NULL && rid->serial != NULL) {
		BIO *mem = BIO_new(BIO_s_mem());
		BUF_MEM *bm;

		if (mem != NULL && X509_NAME_print_ex(mem, rid->issuer, 0,
			XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
			BIO_get_mem_ptr(mem, &bm);
			iss = sg_xstrndup(bm->data, bm->length);
		}
		BIO_free(mem);
		bn = ASN1_INTEGER_to_BN(rid->serial, NULL);
		hex = bn ? BN_bn2hex(bn) : NULL;
		r = sg_xasprintf("issuer=%s, serial=%s", iss ? iss : "?", hex ? hex : "?");
	} else if (rid->ski != NULL) {
		hex = OPENSSL_buf2hexstr(rid->ski->data, rid->ski->length);
		r = sg_xasprintf("ski=%s", hex ? hex : "?");
	} else {
		r = sg_xstrdup("other");
	}
	free(iss);
	BN_free(bn);
	OPENSSL_free(hex);
	return r;
}

int
smime_rid_match(const struct smime_rid *rid, X509 *cert)
{
	if (rid == NULL || cert == NULL)
		return 0;
	if (rid->issuer != NULL && rid->serial != NULL)
		return X509_NAME_cmp(rid->issuer, X509_get_issuer_name(cert)) == 0 &&
		    ASN1_INTEGER_cmp(rid->serial, X509_get0_serialNumber(cert)) == 0;
	if (rid->ski != NULL) {
		const ASN1_OCTET_STRING *k = X509_get0_subject_key_id(cert);

		return k != NULL && ASN1_OCTET_STRING_cmp(k, rid->ski) == 0;
	}
	return 0;
}

int
smime_rid_serial_hex(const struct smime_rid *rid, char *buf, size_t n)
{
	BIGNUM *bn;
	char *hex = NULL, *p;
	int rc = -1;

	if (rid == NULL || rid->serial == NULL || n < 3)
		return -1;
	bn = ASN1_INTEGER_to_BN(rid->serial, NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	if (hex != NULL) {
		p = hex + (*hex == '-');
		while (p[0] == '0' && p[1] != '\0')
			p++;
		if (strlen(p) + (*hex == '-') < n) {
			snprintf(buf, n, "%s%s", *hex == '-' ? "-" : "", p);
			for (char *q = buf; *q; q++)
				*q = (char)tolower((unsigned char)*q);
			rc = 0;
		}
	}
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

/* collect_rids - one smime_rid per key transport recipient and per key
 * agreement recipient key; *rids_r is the caller's (free()). At most
 * SMIME_MAX_RECIPIENTS (hostile input): more returns (size_t)-1. */
static size_t
collect_rids(CMS_ContentInfo *cms, struct smime_rid **rids_r)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	struct smime_rid *rids = NULL;
	size_t n = 0;

	for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		ASN1_OCTET_STRING *keyid = NULL;
		X509_NAME *issuer = NULL;
		ASN1_INTEGER *sno = NULL;

		if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS) {
			if (!CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &sno))
				continue;
			if (n >= SMIME_MAX_RECIPIENTS)
				goto limit;
			rids = sg_xrealloc(rids, (n + 1) * sizeof(*rids));
			rids[n++] = (struct smime_rid){ SMIME_RID_KTRI, issuer, sno, keyid };
		} else if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks =
				CMS_RecipientInfo_kari_get0_reks(ri);

			for (int j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks); j++) {
				CMS_RecipientEncryptedKey *rek =
					sk_CMS_RecipientEncryptedKey_value(reks, j);

				keyid = NULL, issuer = NULL, sno = NULL;
				if (!CMS_RecipientEncryptedKey_get0_id(rek, &keyid, NULL, NULL,
					&issuer, &sno))
					continue;
				if (n >= SMIME_MAX_RECIPIENTS)
					goto limit;
				rids = sg_xrealloc(rids, (n + 1) * sizeof(*rids));
				rids[n++] = (struct smime_rid){ SMIME_RID_KARI, issuer, sno, keyid };
			}
		} else {
			if (n >= SMIME_MAX_RECIPIENTS)
				goto limit;
			rids = sg_xrealloc(rids, (n + 1) * sizeof(*rids));
			rids[n++] = (struct smime_rid){ SMIME_RID_OTHER, NULL, NULL, NULL };
		}
	}
	*rids_r = rids;
	return n;
limit:
	free(rids);
	*rids_r = NULL;
	return (size_t)-1;
}

/* tlv_enter / tlv_skip - step through the DER OpenSSL itself re-encoded. */
static int
tlv_enter(const unsigned char **p, long *remain, int want_tag, int want_class)
{
	const unsigned char *q = *p;
	long len;
	int tag, cls;

	if (*remain <= 0 || (ASN1_get_object(&q, &len, &tag, &cls, *remain) & 0x80) ||
	    tag != want_tag || cls != want_class)
		return -1;
	*remain -= (long)(q - *p);
	*p = q;
	return 0;
}

static int
tlv_skip(const unsigned char **p, long *remain)
{
	const unsigned char *q = *p;
	long len;
	int tag, cls;

	if (*remain <= 0 || (ASN1_get_object(&q, &len, &tag, &cls, *remain) & 0x80) ||
	    len > *remain - (long)(q - *p))
		return -1;
	q += len;
	*remain -= (long)(q - *p);
	*p = q;
	return 0;
}

/*
 * content_cipher - the contentEncryptionAlgorithm of an (Auth)EnvelopedData.
 * OpenSSL 3.0 has no getter for it, so the DER that i2d produces (definite
 * lengths) is stepped through with ASN1_get_object and the algorithm read
 * with d2i_X509_ALGOR.
 */
static void
content_cipher(CMS_ContentInfo *cms, char *buf, size_t n)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj;
	long remain;
	int len, nid;

	snprintf(buf, n, "%s", "");
	len = i2d_CMS_ContentInfo(cms, &der);
	if (len <= 0)
		goto out;
	p = der;
	remain = len;
	if (tlv_enter(&p, &remain, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL) < 0 ||
	    tlv_skip(&p, &remain) < 0 ||                      /* contentType */
	    tlv_enter(&p, &remain, 0, V_ASN1_CONTEXT_SPECIFIC) < 0 ||
	    tlv_enter(&p, &remain, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL) < 0 ||
	    tlv_skip(&p, &remain) < 0)                        /* version */
		goto out;
	/* [0] originatorInfo OPTIONAL, then recipientInfos SET */
	if (remain > 0 && *p == 0xa0 && tlv_skip(&p, &remain) < 0)
		goto out;
	if (tlv_skip(&p, &remain) < 0 ||
	    tlv_enter(&p, &remain, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL) < 0 ||
	    tlv_skip(&p, &remain) < 0)                        /* contentType */
		goto out;
	alg = d2i_X509_ALGOR(NULL, &p, remain);
	if (alg == NULL)
		goto out;
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	nid = OBJ_obj2nid(obj);
	switch (nid) {
	case NID_aes_128_gcm: snprintf(buf, n, "AES-128-GCM"); break;
	case NID_aes_192_gcm: snprintf(buf, n, "AES-192-GCM"); break;
	case NID_aes_256_gcm: snprintf(buf, n, "AES-256-GCM"); break;
	case NID_undef: OBJ_obj2txt(buf, (int)n, obj, 1); break;
	default: snprintf(buf, n, "%s", OBJ_nid2sn(nid)); break;
	}
out:
	ERR_clear_error();
	X509_ALGOR_free(alg);
	OPENSSL_free(der);
}

/*
 * open_enveloped - one encrypted layer. 1 decrypted (plain gets the entity),
 * 0 no usable key, -1 error.
 */
static int
open_enveloped(CMS_ContentInfo *cms, const struct smime_open_opts *o,
	struct smime_layer *l, struct smime_canon *plain, struct sg_error *err)
{
	struct smime_rid *rids = NULL;
	size_t n = collect_rids(cms, &rids), used = (size_t)-1;
	BIO *mem = NULL;
	int64_t plen;
	int pfd = -1, r = 0;

	if (n == (size_t)-1) {
		sg_error_set(err, SG_E_LIMIT, "more than %d recipients", SMIME_MAX_RECIPIENTS);
		return -1;
	}
	content_cipher(cms, l->cipher, sizeof(l->cipher));
	l->recipients = sg_xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		l->recipients[i] = rid_text(&rids[i]);
	l->n_recipients = n;
	if (o->decrypt == NULL)
		goto out;
	/* the plaintext goes to a temporary file (the callback may BIO_reset
	 * it between keys: the length is where the last attempt ended) */
	pfd = smime_tmp_fd(err);
	mem = pfd >= 0 ? smime_out_open(pfd, err) : NULL;
	if (mem == NULL) {
		r = -1;
		goto out;
	}
	r = o->decrypt(o->decrypt_arg, cms, rids, n, mem, &used, err);
	if (r < 0) {
		sg_error_prefix(err, "decrypt: ");
		goto out;
	}
	if (r == 0)
		goto out;
	l->is_decrypted = true;
	l->used_recipient = used < n ? (ssize_t)used : -1;
	if (smime_out_close(&mem, err) < 0) {
		r = -1;
		goto out;
	}
	plen = smime_fd_since(pfd, 0, err);
	if (plen < 0 || smime_canon_put_fd(plain, pfd, 0, (uint64_t)plen, err) < 0)
		r = -1;
out:
	ERR_clear_error();
	BIO_free_all(mem);
	if (pfd >= 0)
		close(pfd);
	free(rids);
	return r;
}

/* ----------------------------------------------------------- signed data */

static int64_t
signing_time(CMS_SignerInfo *si)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	struct tm tm;

	if (idx < 0)
		return 0;
	a = CMS_signed_get_attr(si, idx);
	t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
	if (t == NULL || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME))
		return 0;
	memset(&tm, 0, sizeof(tm));
	if (!ASN1_TIME_to_tm(t->value.utctime, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void
signer_basics(CMS_SignerInfo *si, struct smime_signer_info *info)
{
	X509 *signer = NULL;
	X509_ALGOR *dig = NULL;
	const ASN1_OBJECT *obj = NULL;

	CMS_SignerInfo_get0_algs(si, NULL, &signer, &dig, NULL);
	if (dig != NULL) {
		X509_ALGOR_get0(&obj, NULL, NULL, dig);
		if (OBJ_obj2nid(obj) != NID_undef)
			snprintf(info->digest, sizeof(info->digest), "%s",
				OBJ_nid2sn(OBJ_obj2nid(obj)));
	}
	info->signing_time = signing_time(si);
	info->trusted = -1;
	if (signer != NULL) {
		X509_up_ref(signer);
		info->cert = signer;
	}
}

/* free_upto - free the BIO chain CMS_dataInit built, not the caller's cont. */
static void
free_upto(BIO *b, BIO *upto)
{
	while (b != NULL && b != upto) {
		BIO *next = BIO_pop(b);

		BIO_free(b);
		b = next;
	}
}

/* embedded_content - the encapsulated content (opaque signed-data). */
static int
embedded_content(CMS_ContentInfo *cms, struct smime_canon *content, struct sg_error *err)
{
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);

	if (pos == NULL || *pos == NULL) {
		sg_error_set(err, SG_E_PARSE, "signed-data without content");
		return -1;
	}
	return smime_canon_put(content, ASN1_STRING_get0_data(*pos),
		(size_t)ASN1_STRING_length(*pos), err);
}

/* bio_canon - everything readable from bio into content, in pieces */
static int
bio_canon(BIO *bio, struct smime_canon *content, struct sg_error *err)
{
	char *tmp = sg_xmalloc(16 * 1024);
	int n, rc = 0;

	while ((n = BIO_read(bio, tmp, 16 * 1024)) > 0) {
		if (smime_canon_put(content, tmp, (size_t)n, err) < 0) {
			rc = -1;
			break;
		}
	}
	free(tmp);
	return rc;
}

/*
 * check_content - read the content through CMS_dataInit's digest BIOs into
 * content (streamed) and check each signer's digest. A digest OpenSSL does
 * not know makes every signer UNSUPPORTED (the content is still returned).
 */
static int
check_content(CMS_ContentInfo *cms, BIO *dcont, struct smime_layer *l,
	STACK_OF(CMS_SignerInfo) *sis, struct smime_canon *content, struct sg_error *err)
{
	BIO *chain;
	int rc = -1;

	chain = CMS_dataInit(cms, dcont);
	if (chain == NULL) {
		for (size_t i = 0; i < l->n_signers; i++) {
			if (l->signers[i].status != SMIME_SIG_VALID)
				continue;
			l->signers[i].status = SMIME_SIG_UNSUPPORTED;
			reason_from_queue(l->signers[i].reason, sizeof(l->signers[i].reason),
				"unsupported digest");
		}
		if (dcont == NULL)
			rc = embedded_content(cms, content, err);
		else
			rc = bio_canon(dcont, content, err);
		goto out;
	}
	if (bio_canon(chain, content, err) < 0)
		goto out;
	for (int i = 0; i < sk_CMS_SignerInfo_num(sis); i++) {
		struct smime_signer_info *info = &l->signers[i];

		if (info->status != SMIME_SIG_VALID)
			continue;
		if (CMS_SignerInfo_verify_content(sk_CMS_SignerInfo_value(sis, i), chain) <= 0) {
			info->status = SMIME_SIG_TAMPERED;
			reason_from_queue(info->reason, sizeof(info->reason),
				"content does not match the signature");
		}
	}
	rc = 0;
out:
	ERR_clear_error();
	free_upto(chain, dcont);
	return rc;
}

/* all_certs - the layer's certificates + extra_certs, borrowed (free the
 * stack with sk_X509_free); NULL + err when out of memory. */
static STACK_OF(X509) *
all_certs(const struct smime_open_opts *o, const struct smime_layer *l, struct sg_error *err)
{
	STACK_OF(X509) *all = sk_X509_new_null();

	if (all == NULL) {
		sg_error_set(err, SG_E_NOMEM, "certificate list");
		return NULL;
	}
	for (int i = 0; l->certs != NULL && i < sk_X509_num(l->certs); i++)
		if (!sk_X509_push(all, sk_X509_value(l->certs, i)))
			goto nomem;
	for (int i = 0; o->extra_certs != NULL && i < sk_X509_num(o->extra_certs); i++)
		if (!sk_X509_push(all, sk_X509_value(o->extra_certs, i)))
			goto nomem;
	return all;
nomem:
	sk_X509_free(all);
	sg_error_set(err, SG_E_NOMEM, "certificate list");
	return NULL;
}

/*
 * offer_crls - the CRLs the signature carries to the caller's smime_crl_fn
 * (at most SMIME_MAX_CRLS), before the trust checks. 0 / -1.
 */
static int
offer_crls(CMS_ContentInfo *cms, const struct smime_open_opts *o, struct smime_layer *l,
	struct sg_error *err)
{
	STACK_OF(X509_CRL) *crls = CMS_get1_crls(cms);
	STACK_OF(X509) *all = NULL;
	int n = crls != NULL ? sk_X509_CRL_num(crls) : 0, rc = -1;

	ERR_clear_error();   /* no crls field is not an error */
	l->n_crls = n > 0 ? (size_t)n : 0;
	if (n <= 0 || o->crl == NULL) {
		rc = 0;
		goto out;
	}
	all = all_certs(o, l, err);
	if (all == NULL)
		goto out;
	for (int i = 0; i < n && i < SMIME_MAX_CRLS; i++)
		if (o->crl(o->crl_arg, sk_X509_CRL_value(crls, i), (size_t)i, all, err) < 0) {
			sg_error_prefix(err, "CRL %d: ", i);
			goto out;
		}
	rc = 0;
out:
	sk_X509_free(all);   /* the certificates are borrowed */
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return rc;
}

/* check_trust - the caller's path validation for every known signer. */
static int
check_trust(const struct smime_open_opts *o, struct smime_layer *l, struct sg_error *err)
{
	STACK_OF(X509) *all = all_certs(o, l, err);
	int rc = -1;

	if (all == NULL)
		return -1;
	for (size_t i = 0; i < l->n_signers; i++) {
		struct smime_signer_info *info = &l->signers[i];
		int r;

		if (info->cert == NULL || o->trust == NULL)
			continue;
		r = o->trust(o->trust_arg, info->cert, all, info->signing_time,
			info->trust_info, sizeof(info->trust_info), err);
		if (r < 0) {
			sg_error_prefix(err, "signer trust: ");
			goto out;
		}
		info->trusted = r > 0;
	}
	rc = 0;
out:
	sk_X509_free(all);   /* the certificates are borrowed */
	return rc;
}

/*
 * open_signed - verify one signed layer (dcont: the multipart/signed
 * content, or NULL for signed-data with encapsulated content); content gets
 * the signed entity. 0 / -1 (an invalid signature is not an error).
 */
static int
open_signed(CMS_ContentInfo *cms, BIO *dcont, const struct smime_open_opts *o,
	struct smime_layer *l, struct smime_canon *content, struct sg_error *err)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	int n = sk_CMS_SignerInfo_num(sis);

	if (n < 0)
		n = 0;
	if (n > SMIME_MAX_SIGNERS) {
		sg_error_set(err, SG_E_LIMIT, "more than %d signers", SMIME_MAX_SIGNERS);
		return -1;
	}
	l->certs = CMS_get1_certs(cms);
	l->signers = sg_xcalloc(n ? (size_t)n : 1, sizeof(*l->signers));
	l->n_signers = (size_t)n;
	/* attach signer certificates from the message and extra_certs */
	CMS_set1_signers_certs(cms, o->extra_certs, 0);
	ERR_clear_error();
	for (int i = 0; i < n; i++) {
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, i);
		struct smime_signer_info *info = &l->signers[i];

		signer_basics(si, info);
		if (info->cert == NULL) {
			info->status = SMIME_SIG_UNKNOWN_SIGNER;
			snprintf(info->reason, sizeof(info->reason),
				"signer certificate not found");
			continue;
		}
		if (CMS_signed_get_attr_count(si) >= 0 && CMS_SignerInfo_verify(si) <= 0) {
			info->status = SMIME_SIG_BAD_SIGNATURE;
			reason_from_queue(info->reason, sizeof(info->reason),
				"signature verification failure");
		}
	}
	if (dcont == NULL && CMS_is_detached(cms)) {
		sg_error_set(err, SG_E_PARSE, "detached signed-data without content");
		return -1;
	}
	if (check_content(cms, dcont, l, sis, content, err) < 0 ||
	    offer_crls(cms, o, l, err) < 0)
		return -1;
	return check_trust(o, l, err);
}

/* ---------------------------------------------------------------- walk */

/* is_smime_fd - 1 if bytes [0, len) of fd are S/MIME at the top level */
static int
is_smime_fd(int fd, uint64_t len, size_t max)
{
	struct smime_split s;
	struct sg_error e;
	uint64_t body;
	int kind;

	if (smime_split_fd(fd, len, max, &s, &body, &e) < 0)
		return 0;
	kind = smime_split_kind(&s);
	smime_split_deinit(&s);
	return kind != 0;
}

/*
 * open_layer - one S/MIME layer of bytes [0, curlen) of cur: 1 unwrapped
 * (*next_r: a new temporary file with the message with this layer removed,
 * *nlen_r bytes), 0 stop here (cur is the result), -1 error. Between the
 * steps everything is in temporary files; in memory are the CMS structure
 * (and, for multipart/signed, the signed part OpenSSL's reader keeps).
 */
static int
open_layer(int cur, uint64_t curlen, const struct smime_open_opts *o,
	struct smime_result *res, int *next_r, uint64_t *nlen_r, size_t max,
	struct sg_error *err)
{
	struct smime_split s = { 0 };
	struct sg_buf pre;
	struct smime_canon *inner = NULL;
	CMS_ContentInfo *cms = NULL;
	BIO *bcont = NULL;
	struct smime_layer *l;
	uint64_t body = 0, held = 0;
	int kind, nid, r = -1;

	*next_r = -1;
	sg_buf_init(&pre, 64 * 1024);
	if (smime_split_fd(cur, curlen, max, &s, &body, err) < 0)
		goto done;
	kind = smime_split_kind(&s);
	if (kind == 0) {
		r = 0;
		goto out;
	}
	if (res->n_layers >= (o->max_depth ? o->max_depth : SMIME_MAX_DEPTH)) {
		sg_error_set(err, SG_E_LIMIT, "more than %zu nested S/MIME layers",
			res->n_layers);
		goto out;
	}
	/* OpenSSL gets a minimal entity: the Content-Type field and the body */
	if (kind == 1) {
		if (smime_split_signed_ctype(&s, &pre, err) < 0)
			goto out;
	} else if (sg_buf_append_str(&pre, "Content-Type: application/pkcs7-mime\r\n", err) < 0) {
		goto out;
	}
	if (sg_buf_append(&pre, "\r\n", 2, err) < 0)
		goto out;
	/* A well-formed multipart/signed is cut here: OpenSSL gets only the
	 * signature part, and the signed content streams from the file into
	 * the verification (OpenSSL 3.0's multipart reader reads it a byte at
	 * a time and keeps it in memory). More than two parts are refused;
	 * any other shape takes OpenSSL's reader, which reports what is wrong.
	 * (The canonical form moves no line start: the raw body is scanned.) */
	if (kind == 1) {
		struct mp_delims d;
		uint64_t c_from, c_to, s_from, s_to;
		int sp;

		if (find_delims(cur, body, curlen, s.boundary, &d, err) < 0)
			goto out;
		if (d.n > SMIME_MP_DELIMS) {
			sg_error_set(err, SG_E_PARSE, "multipart/signed with more than two parts");
			goto out;
		}
		sp = signed_parts(cur, &d, &c_from, &c_to, &s_from, &s_to, err);
		if (sp < 0)
			goto out;
		if (sp == 1) {
			struct sg_buf spre;

			sg_buf_init(&spre, 64);
			(void)sg_buf_append_str(&spre, "Content-Type: application/pkcs7-mime\r\n\r\n",
				NULL);
			held = 3 * (s_to - s_from);
			sg_budget_acquire(held);
			cms = read_cms(cur, s_from, s_to, &spre, 2, max + 1024, &bcont, err);
			sg_buf_deinit(&spre);
			BIO_free(bcont);
			bcont = NULL;
			if (cms == NULL)
				goto out;
			bcont = smime_src_open(cur, c_from, c_to, NULL, max, err);
			if (bcont == NULL)
				goto out;
		}
	}
	/* OpenSSL holds the layer in memory: the DER read into a growing
	 * buffer and the structure decoded from it, or the signed part of a
	 * multipart/signed in a growing memory BIO - up to about 3 x the
	 * layer's body (test_smime_memory measures 2.5 x and 4 x the DER).
	 * That is taken from the process's budget (sg_budget, [mpa]
	 * memory_budget_mb), so concurrent workers on large messages do not
	 * multiply it. */
	if (cms == NULL) {
		held = 3 * (curlen - body);
		sg_budget_acquire(held);
		cms = read_cms(cur, body, curlen, &pre, kind, max + 1024, &bcont, err);
		if (cms == NULL)
			goto out;
	}
	/* what replaces the layer: outer + MIME-Version + the inner entity */
	sg_buf_reset(&pre);
	if (sg_buf_append(&pre, s.outer.data ? s.outer.data : "", s.outer.len, err) < 0 ||
	    sg_buf_append_str(&pre, "MIME-Version: 1.0\r\n", err) < 0)
		goto out;
	inner = smime_canon_open(&pre, NULL, max, err);
	if (inner == NULL)
		goto out;
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid == NID_pkcs7_enveloped || nid == NID_id_smime_ct_authEnvelopedData) {
		l = layer_add(res, nid == NID_pkcs7_enveloped ? SMIME_LAYER_ENVELOPED :
			SMIME_LAYER_AUTH_ENVELOPED);
		r = open_enveloped(cms, o, l, inner, err);
		if (r <= 0)
			goto out;
		r = -1;
	} else if (nid == NID_pkcs7_signed) {
		l = layer_add(res, kind == 1 ? SMIME_LAYER_SIGNED_CLEAR :
			SMIME_LAYER_SIGNED_OPAQUE);
		if (kind == 1 && bcont == NULL) {
			sg_error_set(err, SG_E_PARSE, "multipart/signed without content");
			goto out;
		}
		if (open_signed(cms, kind == 1 ? bcont : NULL, o, l, inner, err) < 0)
			goto out;
	} else {
		sg_error_set(err, SG_E_PARSE, "unsupported CMS content type %s",
			OBJ_nid2sn(nid));
		goto out;
	}
	/* the CMS goes before the next layer is read */
	BIO_free(bcont);
	bcont = NULL;
	CMS_ContentInfo_free(cms);
	cms = NULL;
	sg_budget_release(held);
	held = 0;
	*next_r = smime_canon_close(&inner, nlen_r, err);
	if (*next_r < 0)
		goto out;
	r = 1;
	/* a signed layer stays unless asked to remove it or S/MIME is inside */
	if (l->kind >= SMIME_LAYER_SIGNED_CLEAR &&
	    !(o->flags & SMIME_OPEN_REMOVE_SIGNATURE) && !is_smime_fd(*next_r, *nlen_r, max))
		r = 0;
out:
	smime_split_deinit(&s);
done:
	if (r != 1 && *next_r >= 0) {
		close(*next_r);
		*next_r = -1;
	}
	smime_canon_free(&inner);
	BIO_free(bcont);
	CMS_ContentInfo_free(cms);
	if (held > 0)
		sg_budget_release(held);
	sg_buf_deinit(&pre);
	ERR_clear_error();
	return r;
}

int
smime_open_fd(int in_fd, uint64_t len, const struct smime_open_opts *opts,
	struct smime_result *res, int out_fd, uint64_t *size_r, struct sg_error *err)
{
	static const struct smime_open_opts defaults = { 0 };
	uint64_t curlen = len, nlen = 0;
	size_t max;
	off_t start;
	int cur = in_fd, next = -1, r, rc = -1;

	if (opts == NULL)
		opts = &defaults;
	max = smime_effective_max(opts->max_output);
	if (in_fd < 0 || out_fd < 0 || res == NULL) {
		sg_error_set(err, SG_E_INVAL, "smime_open: bad arguments");
		return -1;
	}
	start = lseek(out_fd, 0, SEEK_CUR);
	if (start < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "lseek");
		return -1;
	}
	for (;;) {
		r = open_layer(cur, curlen, opts, res, &next, &nlen, max, err);
		if (r < 0) {
			sg_error_prefix(err, "S/MIME layer %zu: ", res->n_layers);
			goto out;
		}
		if (r == 0)
			break;
		if (cur != in_fd)
			close(cur);
		cur = next;
		curlen = nlen;
		next = -1;
		res->is_changed = true;
	}
	if (curlen > max && cur != in_fd) {
		sg_error_set(err, SG_E_LIMIT, "S/MIME output over %zu bytes", max);
		goto out;
	}
	if (smime_fd_copy(cur, curlen, out_fd, err) < 0)
		goto out;
	if (size_r != NULL)
		*size_r = curlen;
	rc = 0;
out:
	if (cur != in_fd)
		close(cur);
	if (rc < 0 && ftruncate(out_fd, start) == 0)
		(void)lseek(out_fd, start, SEEK_SET);
	return rc;
}

/* smime_open - the in-memory form: through two temporary files */
struct open_args {
	const struct smime_open_opts *opts;
	struct smime_result *res;
};

static int open_op(int in_fd, uint64_t len, int out_fd, uint64_t *n_r, const void *arg,
	struct sg_error *err)
{
	const struct open_args *a = arg;

	return smime_open_fd(in_fd, len, a->opts, a->res, out_fd, n_r, err);
}

int
smime_open(const void *msg, size_t len, const struct smime_open_opts *opts,
	struct smime_result *res, struct sg_buf *out, struct sg_error *err)
{
	struct open_args a = {opts, res};

	return smime_buf_via_fds(msg, len, out, "smime_open", open_op, &a, err);
}
