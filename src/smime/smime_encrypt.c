/*
 * smime_encrypt.c - S/MIME encryption (F-SMIME-1; RFC 8551 §3.3, CMS
 * EnvelopedData RFC 5652 §6, AuthEnvelopedData RFC 5083 with AES-GCM RFC
 * 5084; RSA-OAEP RFC 3560/8017; ECDH key agreement RFC 5753).
 *
 * Called by the pipeline once per recipient group, in a worker thread. The
 * entity (or, with header protection, the whole original message as
 * message/rfc822) is encrypted as it is, in CRLF form. Only public keys are
 * used here.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "smime/smime_int.h"

static const char *const cipher_names[] = {
	[SMIME_CIPHER_AES256_CBC] = "AES-256-CBC",
	[SMIME_CIPHER_AES192_CBC] = "AES-192-CBC",
	[SMIME_CIPHER_AES128_CBC] = "AES-128-CBC",
	[SMIME_CIPHER_3DES] = "DES-EDE3-CBC",
	[SMIME_CIPHER_AES128_GCM] = "AES-128-GCM",
	[SMIME_CIPHER_AES256_GCM] = "AES-256-GCM",
};

const char *
smime_cipher_name(enum smime_cipher c)
{
	if ((unsigned)c >= sizeof(cipher_names) / sizeof(cipher_names[0]))
		return NULL;
	return cipher_names[c];
}

int
smime_cipher_parse(const char *s, enum smime_cipher *c_r)
{
	static const struct smime_name tab[] = {
		{"aes256", SMIME_CIPHER_AES256_CBC}, {"aes-256-cbc", SMIME_CIPHER_AES256_CBC},
		{"aes192", SMIME_CIPHER_AES192_CBC}, {"aes-192-cbc", SMIME_CIPHER_AES192_CBC},
		{"aes128", SMIME_CIPHER_AES128_CBC}, {"aes-128-cbc", SMIME_CIPHER_AES128_CBC},
		{"3des", SMIME_CIPHER_3DES}, {"des-ede3-cbc", SMIME_CIPHER_3DES},
		{"aes128-gcm", SMIME_CIPHER_AES128_GCM}, {"aes-128-gcm", SMIME_CIPHER_AES128_GCM},
		{"aes256-gcm", SMIME_CIPHER_AES256_GCM}, {"aes-256-gcm", SMIME_CIPHER_AES256_GCM},
	};
	int v;

	if (smime_name_find(tab, sizeof(tab) / sizeof(tab[0]), s, &v) < 0)
		return -1;
	*c_r = (enum smime_cipher)v;
	return 0;
}

/* The header fields that stay outside when headers are protected. */
static const char *const transport_fields[] = {
	"From", "Sender", "To", "Cc", "Reply-To", "Date", "Message-ID",
	"In-Reply-To", "References",
};

/* protect_headers - entity := the header of a message/rfc822 entity (the
 * whole message follows it as its body); outer := the transport fields of
 * it, Subject "[...]" (RFC 9788 §4.4 obscured). */
static int
protect_headers(struct smime_split *s, struct sg_error *err)
{
	struct sg_buf outer;
	const char *p = s->outer.data;
	size_t n = s->outer.len;
	bool skip = true;

	sg_buf_init(&outer, s->outer.max);
	/* outer holds complete CRLF fields: keep those named in the table */
	for (size_t i = 0; i < n;) {
		const char *eol = memchr(p + i, '\n', n - i);
		size_t line = eol ? (size_t)(eol - (p + i)) + 1 : n - i;

		if (p[i] != ' ' && p[i] != '\t') {
			skip = true;
			for (size_t k = 0; k < sizeof(transport_fields) / sizeof(*transport_fields); k++) {
				size_t fl = strlen(transport_fields[k]);

				if (line > fl && strncasecmp(p + i, transport_fields[k], fl) == 0 &&
				    (p[i + fl] == ':' || p[i + fl] == ' ' || p[i + fl] == '\t'))
					skip = false;
			}
		}
		if (!skip && sg_buf_append(&outer, p + i, line, err) < 0)
			goto fail;
		i += line;
	}
	if (sg_buf_append_str(&outer, "Subject: [...]\r\n", err) < 0)
		goto fail;
	sg_buf_reset(&s->entity);
	if (sg_buf_append_str(&s->entity,
		    "Content-Type: message/rfc822\r\n\r\n", err) < 0)
		goto fail;
	sg_buf_deinit(&s->outer);
	s->outer = outer;
	return 0;
fail:
	sg_buf_deinit(&outer);
	return -1;
}

/* add_recipient - one recipient info; OAEP (SHA-256) for RSA when asked. */
static int
add_recipient(CMS_ContentInfo *cms, X509 *x, enum smime_key_transport kt,
	struct sg_error *err)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	bool oaep = kt == SMIME_KT_OAEP && pk != NULL && EVP_PKEY_is_a(pk, "RSA");
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;
	char subj[256];

	/* RSA key transport or ECDH (RFC 5753) only: OpenSSL 3.0 has no X25519/
	 * X448 CMS, and a failure at CMS_final could not name the certificate */
	if (pk == NULL || (!EVP_PKEY_is_a(pk, "RSA") && !EVP_PKEY_is_a(pk, "EC"))) {
		X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
		sg_error_set(err, SG_E_CRYPTO, "recipient %s: unsupported key type %s", subj,
			pk ? EVP_PKEY_get0_type_name(pk) : "(none)");
		return -1;
	}
	ri = CMS_add1_recipient_cert(cms, x, CMS_BINARY | (oaep ? CMS_KEY_PARAM : 0));
	if (ri == NULL)
		goto fail;
	if (oaep) {
		pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
		if (pctx == NULL ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
			goto fail;
	}
	return 0;
fail:
	X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
	sg_error_set_openssl(err, SG_E_CRYPTO, "recipient %s", subj);
	return -1;
}

int
smime_encrypt_fd(int in_fd, uint64_t len, STACK_OF(X509) *recips,
	const struct smime_encrypt_opts *opts, int out_fd, uint64_t *size_r,
	struct sg_error *err)
{
	static const struct smime_encrypt_opts defaults = { 0 };
	struct smime_split s = { 0 };
	CMS_ContentInfo *cms = NULL;
	EVP_CIPHER *cipher = NULL;
	BIO *in = NULL, *out = NULL;
	const char *cname;
	uint64_t body = 0;
	off_t start;
	int64_t written;
	size_t max;
	int rc = -1;

	if (opts == NULL)
		opts = &defaults;
	cname = smime_cipher_name(opts->cipher);
	max = smime_effective_max(opts->max_output);
	if (recips == NULL || sk_X509_num(recips) < 1 || cname == NULL || in_fd < 0 ||
	    out_fd < 0) {
		sg_error_set(err, SG_E_INVAL, "smime_encrypt: no recipient or bad cipher");
		return -1;
	}
	start = lseek(out_fd, 0, SEEK_CUR);
	if (start < 0) {
		sg_error_set_errno(err, SG_E_IO, errno, "lseek");
		return -1;
	}
	if (opts->signed_in != NULL && opts->signed_in->is_set && opts->signed_in->len == len &&
	    opts->signed_in->entity_off <= len && opts->signed_in->outer.len <= max) {
		/* the message smime_sign_fd just wrote: its outer fields are
		 * known, its entity starts right after MIME-Version (the
		 * canonical form of those CRLF lines is themselves) */
		sg_buf_init(&s.outer, max);
		sg_buf_init(&s.entity, max);
		sg_buf_init(&s.ctype, 64 * 1024);
		if (sg_buf_append(&s.outer, opts->signed_in->outer.data ?
			opts->signed_in->outer.data : "", opts->signed_in->outer.len, err) < 0)
			goto out;
		body = opts->signed_in->entity_off;
	} else if (smime_split_fd(in_fd, len, max, &s, &body, err) < 0) {
		return -1;
	}
	if (opts->flags & SMIME_ENC_PROTECT_HEADERS) {
		if (protect_headers(&s, err) < 0)
			goto out;
		body = 0;   /* the whole message is the body of message/rfc822 */
	}
	cipher = EVP_CIPHER_fetch(NULL, cname, NULL);
	if (cipher == NULL) {
		sg_error_set_openssl(err, SG_E_CRYPTO, "cipher %s", cname);
		goto out;
	}
	/* an AEAD cipher makes OpenSSL build AuthEnvelopedData; CMS_STREAM: the
	 * content is encrypted while SMIME_write_CMS copies it (BER with
	 * indefinite lengths), never held whole in memory */
	cms = CMS_encrypt_ex(NULL, NULL, cipher, CMS_BINARY | CMS_PARTIAL | CMS_STREAM,
		NULL, NULL);
	if (cms == NULL)
		goto ossl;
	for (int i = 0; i < sk_X509_num(recips); i++) {
		if (add_recipient(cms, sk_X509_value(recips, i), opts->kt, err) < 0)
			goto out;
	}
	/* the entity streams from the message: its fields, then the body in
	 * canonical form */
	in = smime_src_open(in_fd, body, len, &s.entity, max, err);
	out = in != NULL ? smime_out_open(out_fd, err) : NULL;
	if (out == NULL)
		goto out;
	if (s.outer.len > 0 && BIO_write(out, s.outer.data, (int)s.outer.len) != (int)s.outer.len)
		goto ossl;
	if (!SMIME_write_CMS(out, cms, in, CMS_STREAM | CMS_BINARY | SMIME_CRLFEOL)) {
		if (smime_src_check(in, err) < 0)
			goto out;
		goto ossl;
	}
	if (smime_src_check(in, err) < 0)
		goto out;
	if (smime_out_finish(&out, out_fd, (uint64_t)start, max, &written, err) < 0)
		goto out;
	if (size_r != NULL)
		*size_r = (uint64_t)written;
	rc = 0;
	goto out;
ossl:
	sg_error_set_openssl(err, SG_E_CRYPTO, "encrypt");
out:
	BIO_free_all(out);
	BIO_free_all(in);
	CMS_ContentInfo_free(cms);
	EVP_CIPHER_free(cipher);
	smime_split_deinit(&s);
	if (rc < 0 && ftruncate(out_fd, start) == 0)
		(void)lseek(out_fd, start, SEEK_SET);
	return rc;
}

/* smime_encrypt - the in-memory form: through two temporary files */
struct encrypt_args {
	STACK_OF(X509) *recips;
	const struct smime_encrypt_opts *opts;
};

static int encrypt_op(int in_fd, uint64_t len, int out_fd, uint64_t *n_r,
	const void *arg, struct sg_error *err)
{
	const struct encrypt_args *a = arg;

	return smime_encrypt_fd(in_fd, len, a->recips, a->opts, out_fd, n_r, err);
}

int
smime_encrypt(const void *msg, size_t len, STACK_OF(X509) *recips,
	const struct smime_encrypt_opts *opts, struct sg_buf *out, struct sg_error *err)
{
	struct encrypt_args a = {recips, opts};

	return smime_buf_via_fds(msg, len, out, "smime_encrypt", encrypt_op, &a, err);
}
